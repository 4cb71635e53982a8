//! Simulator knobs and the small public types tests program against: configuration, route
//! classes, injectable faults and the recorded-request log entry.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

/// How `created_at` values are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampStyle {
    /// RFC 3339 with microseconds and a `Z`, as the docs show: `2025-06-21T11:20:04.338398Z`.
    Rfc3339,
    /// Space separator and no offset, as seen in the wild: `2025-06-21 11:20:04.338398`.
    Naive,
}

/// Shape of non-validation error bodies (403, 404, 402, 400, 401, injected 5xx).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorStyle {
    /// The spec's documented models: `{"message": ..., "status_code": ...}`.
    Message,
    /// FastAPI's default `HTTPException` body: `{"detail": ...}`.
    Detail,
}

/// What `POST .../agent/run` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The run is created.
    Ok,
    /// 402: the billing plan's run quota is used up.
    QuotaExceeded,
    /// 404: the organisation has no repositories.
    NoRepos,
    /// 429 regardless of the sliding window.
    RateLimited,
}

/// Rate-limit class of a route; also used to aim injected faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteClass {
    /// 60 requests per 30 s: reads, and the state-changing run routes that state no number.
    Standard,
    /// Agent-run creation, 10 per minute.
    Create,
    /// The alpha logs route, 60 per 60 s.
    Logs,
    /// Sandbox log analysis, 5 per minute.
    AnalyzeLogs,
    /// Setup-commands generation, 5 per minute.
    SetupCommands,
    /// Both PR edit routes, 30 per minute.
    PrEdit,
    /// CLI rules, 30 per minute.
    CliRules,
    /// Routes whose spec entry lists no 429 at all (check-suite settings, MCP providers,
    /// OAuth status/revoke, Slack connect).
    Unlimited,
}

impl RouteClass {
    /// The sliding window for this class: (requests, window), or `None` when unlimited.
    pub fn limit(self) -> Option<(usize, Duration)> {
        let minute = Duration::from_secs(60);
        match self {
            RouteClass::Standard => Some((60, Duration::from_secs(30))),
            RouteClass::Create => Some((10, minute)),
            RouteClass::Logs => Some((60, minute)),
            RouteClass::AnalyzeLogs => Some((5, minute)),
            RouteClass::SetupCommands => Some((5, minute)),
            RouteClass::PrEdit => Some((30, minute)),
            RouteClass::CliRules => Some((30, minute)),
            RouteClass::Unlimited => None,
        }
    }
}

/// A fault applied to the next matching requests, before authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and a small error body.
    Status(u16),
    /// Sleep (tokio time) before handling the request normally.
    Delay(Duration),
    /// Close the connection without sending a complete response.
    DropConnection,
    /// Handle normally, then send only part of the JSON body.
    MalformedJson,
    /// Handle normally, then turn the first id-like integer into a string (valid JSON, wrong
    /// type), so a decoder can name the offending path.
    WrongType,
    /// Answer 429 with the configured body and `Retry-After` policy.
    RateLimited,
}

/// One request as the simulator saw it, including rejected ones.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// HTTP method, upper case.
    pub method: String,
    /// Request path without the query.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// The body parsed as JSON, when it was JSON.
    pub body: Option<serde_json::Value>,
    /// Status sent; 0 when the connection was dropped instead.
    pub status: u16,
    /// The bearer token was known and, when the request names an organisation, its user is a
    /// member of it.
    pub authorized: bool,
    /// Arrival time on the tokio clock (agrees with paused-time tests).
    pub at: tokio::time::Instant,
}

/// Simulator configuration; every field can also be switched at run time.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Enforce the per-token sliding windows.
    pub rate_limits: bool,
    /// Send `Retry-After: N` on 429 when set.
    pub retry_after: Option<u64>,
    /// Status for a missing or unknown token (the guide says 401; the spec lists none).
    pub unauthorized_status: u16,
    /// Format of `created_at`.
    pub timestamp_style: TimestampStyle,
    /// Add unknown fields to every typed response object.
    pub extra_fields: bool,
    /// Shape of error bodies.
    pub error_style: ErrorStyle,
    /// Send the older `{"detail":"Rate limit exceeded","status_code":429}` body on 429.
    pub legacy_429_body: bool,
    /// Start of the virtual clock.
    pub start_time: DateTime<Utc>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            rate_limits: true,
            retry_after: None,
            unauthorized_status: 401,
            timestamp_style: TimestampStyle::Rfc3339,
            extra_fields: false,
            error_style: ErrorStyle::Message,
            legacy_429_body: false,
            start_time: default_start_time(),
        }
    }
}

/// 2025-06-21T11:20:04.338398Z: the instant from a recorded response, so fractions are exercised.
fn default_start_time() -> DateTime<Utc> {
    let base = Utc.with_ymd_and_hms(2025, 6, 21, 11, 20, 4).single();
    base.unwrap_or(DateTime::<Utc>::UNIX_EPOCH) + chrono::Duration::microseconds(338_398)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_start_time_has_microseconds() {
        let t = SimConfig::default().start_time;
        assert_eq!(t.to_rfc3339(), "2025-06-21T11:20:04.338398+00:00");
    }

    #[test]
    fn only_unlimited_class_has_no_window() {
        assert_eq!(RouteClass::Unlimited.limit(), None);
        assert_eq!(
            RouteClass::Standard.limit(),
            Some((60, Duration::from_secs(30)))
        );
    }
}
