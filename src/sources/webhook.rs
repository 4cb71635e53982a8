//! `POST /webhooks/github`: verified GitHub deliveries stored durably before they are answered.
//!
//! Order of checks, cheapest first and nothing parsed before the signature holds: a declared
//! length over `max_body` → 413 (nothing read); no secret or no usable `X-Hub-Signature-256`
//! → 401 (nothing read); the body, read up to `max_body` → 413 past it; the HMAC-SHA256 of the
//! raw bytes under each configured secret → 401; `X-GitHub-Event` / `X-GitHub-Delivery` → 400
//! when missing or odd; `ping` → 200; a body that is not a JSON object → 400. Otherwise the
//! delivery goes to the one delivery writer ([`Intake`]): a delivery id already stored → 200,
//! nothing processed, once the first copy is durable; else the delivery and its
//! `github.<event>` event are recorded in a transaction shared with the deliveries queued
//! alongside (the event sink reacting inside it), flushed, and answered 202.

mod body;
mod intake;
mod outcome;
mod record;
mod reject_log;
mod signature;
mod skeleton;
mod subject;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use secrecy::SecretString;
use tokio::sync::broadcast;

use crate::clock::{Clock, SystemClock};
use crate::events::{EventKind, EventSink};
use crate::metrics as names;
use crate::store::{EventRecord, Store};

pub use body::{BodyError, BODY_TIMEOUT, MIN_BODY_BUDGET};
pub use intake::{Intake, IntakeError};
pub use record::{event_id, record_delivery, take_payload, Delivery, Parsed, Recorded};
pub use signature::{sign, Rejection, Verifier};
pub use subject::{pr_subject, PrSubject};

use body::BodyReader;
use outcome::{log_outcome, Outcome};
use reject_log::RejectLog;

/// Where GitHub posts.
pub const PATH: &str = "/webhooks/github";
/// Longest accepted `X-GitHub-Delivery` (GitHub sends UUIDs).
pub const MAX_DELIVERY_ID: usize = 128;
/// Longest accepted `X-GitHub-Event`.
pub const MAX_EVENT_NAME: usize = 64;

/// The webhook receiver: verifier, body limits, the delivery writer and the sink events go to.
pub struct Webhooks {
    verifier: Verifier,
    reader: BodyReader,
    sink: Arc<dyn EventSink>,
    intake: Intake,
    clock: Arc<dyn Clock>,
    rejections: RejectLog,
    feed: Option<broadcast::Sender<Arc<EventRecord>>>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("verifier", &self.verifier)
            .field("max_body", &self.reader.max_body())
            .field("intake", &self.intake)
            .finish_non_exhaustive()
    }
}

impl Webhooks {
    /// A receiver accepting deliveries signed with any of `secrets` (none refuses all), with
    /// bodies up to `max_body` bytes, recording into `store` and handing events to `sink`.
    pub fn new(
        store: Store,
        sink: Arc<dyn EventSink>,
        secrets: &[SecretString],
        max_body: u64,
    ) -> Webhooks {
        Webhooks {
            verifier: Verifier::new(secrets),
            reader: BodyReader::new(max_body),
            intake: Intake::new(store, sink.clone()),
            sink,
            clock: Arc::new(SystemClock),
            rejections: RejectLog::default(),
            feed: None,
        }
    }

    /// Uses `clock` for `received_at` and event times.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Webhooks {
        self.clock = clock;
        self
    }

    /// Publishes every new event once it is durable (the daemon's live feed).
    pub fn with_feed(mut self, feed: broadcast::Sender<Arc<EventRecord>>) -> Webhooks {
        self.feed = Some(feed);
        self
    }

    /// How many secrets are accepted.
    pub fn secrets(&self) -> usize {
        self.verifier.secrets()
    }
}

/// The routes of the receiver.
pub fn router(webhooks: Arc<Webhooks>) -> Router {
    Router::new()
        .route(PATH, post(handle_github))
        .with_state(webhooks)
}

async fn handle_github(State(hooks): State<Arc<Webhooks>>, request: Request) -> Response {
    let started = Instant::now();
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let outcome = receive(&hooks, headers, body).await;
    let delivery = header_str(headers, "x-github-delivery");
    let event = header_str(headers, "x-github-event");
    log_outcome(&hooks, &outcome, delivery, event, remote);
    metrics::counter!(names::WEBHOOK_DELIVERIES, "outcome" => outcome.label()).increment(1);
    metrics::histogram!(names::WEBHOOK_SECONDS).record(started.elapsed().as_secs_f64());
    if let Outcome::Accepted(event) = &outcome {
        metrics::counter!(names::EVENTS, "type" => event.kind.clone(), "source" => "webhook")
            .increment(1);
        if let Some(feed) = &hooks.feed {
            // No receiver is fine: the feed only wakes whoever listens.
            let _ = feed.send(Arc::new(event.clone()));
        }
    }
    outcome.into_response(delivery)
}

async fn receive(hooks: &Arc<Webhooks>, headers: &HeaderMap, body: axum::body::Body) -> Outcome {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if hooks.reader.check_declared(declared).is_err() {
        return Outcome::TooLarge;
    }
    let signature = headers.get("x-hub-signature-256").map(|v| v.as_bytes());
    let digest = match hooks.verifier.precheck(signature) {
        Ok(digest) => digest,
        Err(rejection) => return Outcome::Unauthorized(rejection),
    };
    let mut held = match hooks.reader.read(body, declared).await {
        Ok(held) => held,
        Err(BodyError::TooLarge) => return Outcome::TooLarge,
        Err(BodyError::Timeout) => return Outcome::Timeout,
        Err(BodyError::Read(_)) => return Outcome::Malformed("body could not be read"),
    };
    if let Err(rejection) = hooks.verifier.verify(held.chunks(), &digest) {
        return Outcome::Unauthorized(rejection);
    }
    let Some(event) = header_str(headers, "x-github-event").filter(|e| valid_event(e)) else {
        return Outcome::Malformed("missing or invalid X-GitHub-Event");
    };
    if event == "ping" {
        return Outcome::Ping;
    }
    let Some(id) = header_str(headers, "x-github-delivery").filter(|d| valid_delivery(d)) else {
        return Outcome::Malformed("missing or invalid X-GitHub-Delivery");
    };
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    // A redelivery is found by the writer, inside its transaction, and answered once the copy
    // that was first is durable. Not looked up here: a store read waits while the writer's
    // transaction holds sled's global lock, and here it would stall a runtime worker.
    let full = hooks
        .sink
        .wants(&EventKind::Github(event.to_owned()).as_str());
    let (raw, parsed) = match parse_payload(held.take_bytes(), form, full) {
        Ok(read) => read,
        Err(why) => return Outcome::Malformed(why),
    };
    let delivery = Delivery::new(
        id.to_owned(),
        event.to_owned(),
        hooks.clock.now(),
        raw,
        parsed,
    );
    // The body's share of the memory budget is held until the delivery is recorded.
    let recorded = hooks.intake.record(delivery).await;
    drop(held);
    match recorded {
        Ok(Recorded::New(event)) => Outcome::Accepted(event),
        Ok(Recorded::Duplicate) => Outcome::Duplicate,
        Err(IntakeError::Store(e)) => Outcome::Failed(e),
        Err(IntakeError::Stopped) => Outcome::Internal,
    }
}

/// The payload, as its JSON text and read (in `full` or as its skeleton, checked alike): the
/// JSON body, or the `payload` field of a form-encoded one (GitHub's other content type). Only a
/// JSON object is a payload.
fn parse_payload(body: Vec<u8>, form: bool, full: bool) -> Result<(String, Parsed), &'static str> {
    const MALFORMED: &str = "malformed JSON payload";
    let text = if form {
        url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| v.into_owned())
            .ok_or("form body without a payload field")?
    } else {
        String::from_utf8(body).map_err(|_| MALFORMED)?
    };
    let read = if full {
        skeleton::full(&text).map(Parsed::Full)
    } else {
        skeleton::skeleton(&text).map(Parsed::Skeleton)
    };
    // Which of the two refusals it was is worked out only for a refused payload.
    let parsed = read.map_err(|_| {
        if nesting_depth(text.as_bytes()) > MAX_PAYLOAD_DEPTH {
            "payload nested too deeply"
        } else {
            MALFORMED
        }
    })?;
    let (Parsed::Full(value) | Parsed::Skeleton(value)) = &parsed;
    if !value.is_object() {
        return Err("payload is not a JSON object");
    }
    Ok((text, parsed))
}

/// Deepest nesting of objects and arrays a payload may have. The stored event holds the payload
/// two levels down, and serde_json reads at most 128 levels: a payload that parses alone but not
/// inside its record would be acknowledged and then unreadable. GitHub's payloads nest about 6.
pub const MAX_PAYLOAD_DEPTH: usize = 100;

/// How deeply `json` nests objects and arrays (brackets inside strings do not count).
fn nesting_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Event names become event types (`github.<name>`): lowercase words only.
fn valid_event(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_EVENT_NAME
        && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// Delivery ids are store keys and part of event ids: a bounded, printable alphabet.
fn valid_delivery(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_DELIVERY_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_are_checked() {
        assert!(valid_event("check_suite"));
        assert!(!valid_event("Check-Suite"));
        assert!(!valid_event(""));
        assert!(valid_delivery("72d3162e-cc78-11e3-81ab-4c9367dc0958"));
        assert!(!valid_delivery("a/b"));
        assert!(!valid_delivery(&"x".repeat(MAX_DELIVERY_ID + 1)));
    }

    #[test]
    fn form_bodies_carry_the_payload_field() {
        let body = b"payload=%7B%22action%22%3A%22opened%22%7D";
        for full in [true, false] {
            let (raw, parsed) = parse_payload(body.to_vec(), true, full).unwrap();
            assert_eq!(raw, r#"{"action":"opened"}"#);
            let (Parsed::Full(value) | Parsed::Skeleton(value)) = parsed;
            assert_eq!(value["action"], "opened");
            assert!(parse_payload(br#"{"a":1}"#.to_vec(), false, full).is_ok());
            assert!(parse_payload(b"[1]".to_vec(), false, full).is_err());
            assert!(parse_payload(b"{".to_vec(), false, full).is_err());
            assert!(parse_payload(b"x=1".to_vec(), true, full).is_err());
            assert!(parse_payload(br#"{"a":"\ud800"}"#.to_vec(), false, full).is_err());
            let deep = |n: usize| format!("{{\"a\":{}1{}}}", "[".repeat(n - 1), "]".repeat(n - 1));
            assert!(parse_payload(deep(MAX_PAYLOAD_DEPTH).into_bytes(), false, full).is_ok());
            assert_eq!(
                parse_payload(deep(MAX_PAYLOAD_DEPTH + 1).into_bytes(), false, full).unwrap_err(),
                "payload nested too deeply"
            );
        }
        assert_eq!(nesting_depth(br#"{"a": "[[[{{", "b": [{"c": "\"]"}]}"#), 3);
    }
}
