//! The daemon's Prometheus metrics: every name in one place, their descriptions, and the
//! process-wide recorder `/metrics` renders.
//!
//! Code records through the `metrics` macros with the names below; [`install`] sets the global
//! recorder once per process and returns the handle the server renders. Without it the macros
//! record nothing (tests of other modules do not need it).

use std::sync::OnceLock;
use std::time::Duration;

use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// Counter `{outcome}`: reconcile ticks of the pollers (`ok`, `error`).
pub const POLLS: &str = "sentinel_polls_total";
/// Counter `{endpoint, status}`: Codegen API requests.
pub const API_REQUESTS: &str = "sentinel_api_requests_total";
/// Counter: requests that waited for the client-side rate budget.
pub const RATE_LIMIT_WAITS: &str = "sentinel_rate_limit_waits_total";
/// Counter: seconds spent waiting for the rate budget.
pub const RATE_LIMIT_WAIT_SECONDS: &str = "sentinel_rate_limit_wait_seconds_total";
/// Counter `{type, source}`: events recorded.
pub const EVENTS: &str = "sentinel_events_total";
/// Counter `{rule, outcome}`: rule decisions (`fired`, `skipped`, `throttled`, `silenced`, ...).
pub const RULE_OUTCOMES: &str = "sentinel_rule_outcomes_total";
/// Counter `{action, outcome}`: action steps run (`ok`, `retry`, `failed`).
pub const ACTIONS: &str = "sentinel_actions_total";
/// Gauge: jobs not finished yet (pending, running or waiting).
pub const JOBS_PENDING: &str = "sentinel_jobs_pending";
/// Gauge: jobs in the dead-letter list.
pub const JOBS_DEAD: &str = "sentinel_jobs_dead";
/// Counter `{outcome}`: GitHub webhook deliveries (`accepted`, `duplicate`, `ping`,
/// `unauthorized`, `too_large`, `malformed`, `timeout`, `error`).
pub const WEBHOOK_DELIVERIES: &str = "sentinel_webhook_deliveries_total";
/// Histogram: seconds from a delivery's first byte to its answer.
pub const WEBHOOK_SECONDS: &str = "sentinel_webhook_seconds";
/// Histogram: deliveries recorded by one transaction and flush of the delivery writer.
pub const WEBHOOK_BATCH: &str = "sentinel_webhook_batch_deliveries";
/// Histogram: seconds from an observed transition (or delivery) to the first effect of a rule.
pub const TRANSITION_TO_ACTION_SECONDS: &str = "sentinel_transition_to_action_seconds";
/// Gauge: bytes used by the store's files.
pub const STORE_SIZE_BYTES: &str = "sentinel_store_size_bytes";
/// Counter `{outcome}`: rule reloads (`ok`, `error`).
pub const RULE_RELOADS: &str = "sentinel_rule_reloads_total";

/// Buckets of the latency histograms, in seconds: a webhook answers in milliseconds, an action
/// may wait minutes for retries.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];

/// Buckets of [`WEBHOOK_BATCH`]: up to the writer's largest batch.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// How often histogram samples are folded into their buckets when nobody scrapes.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder's handle; installs the recorder and describes every metric on the
/// first call. If another recorder was installed first, the handle renders only the
/// descriptions (a warning says so): metrics go to the other recorder.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = || {
                PrometheusBuilder::new()
                    .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                    .and_then(|b| {
                        b.set_buckets_for_metric(Matcher::Full(WEBHOOK_BATCH.into()), BATCH_BUCKETS)
                    })
            };
            let handle = match builder().and_then(PrometheusBuilder::install_recorder) {
                Ok(handle) => handle,
                Err(error) => {
                    tracing::warn!(%error, "Metrics recorder not installed; /metrics shows no samples");
                    // The bucket list is a non-empty constant: only installing can fail.
                    PrometheusBuilder::new().build_recorder().handle()
                }
            };
            describe();
            register_fixed_series();
            handle
        })
        .clone()
}

/// Folds histogram samples every [`UPKEEP_INTERVAL`] until `cancel` fires, so memory stays
/// bounded between scrapes.
pub async fn run_upkeep(handle: PrometheusHandle, cancel: CancellationToken) {
    let mut interval = tokio::time::interval(UPKEEP_INTERVAL);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = interval.tick() => handle.run_upkeep(),
        }
    }
}

/// Outcomes of [`WEBHOOK_DELIVERIES`].
pub const WEBHOOK_OUTCOMES: [&str; 8] = [
    "accepted",
    "duplicate",
    "ping",
    "unauthorized",
    "too_large",
    "malformed",
    "timeout",
    "error",
];

/// Series whose labels are a fixed set start at zero, so dashboards and alerts see them before
/// the first occurrence (a rate over a missing series is empty, not zero).
fn register_fixed_series() {
    for outcome in WEBHOOK_OUTCOMES {
        metrics::counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).increment(0);
    }
    for outcome in ["ok", "error"] {
        metrics::counter!(POLLS, "outcome" => outcome).increment(0);
        metrics::counter!(RULE_RELOADS, "outcome" => outcome).increment(0);
    }
    metrics::counter!(RATE_LIMIT_WAITS).increment(0);
    metrics::counter!(RATE_LIMIT_WAIT_SECONDS).increment(0);
    metrics::gauge!(JOBS_PENDING).set(0.0);
    metrics::gauge!(JOBS_DEAD).set(0.0);
    metrics::gauge!(STORE_SIZE_BYTES).set(0.0);
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(POLLS, "Reconcile ticks of the Codegen pollers, by outcome.");
    describe_counter!(
        API_REQUESTS,
        "Codegen API requests, by endpoint and HTTP status."
    );
    describe_counter!(
        RATE_LIMIT_WAITS,
        "Codegen requests that waited for the client-side rate budget."
    );
    describe_counter!(
        RATE_LIMIT_WAIT_SECONDS,
        Unit::Seconds,
        "Time spent waiting for the client-side rate budget."
    );
    describe_counter!(EVENTS, "Events recorded, by type and source.");
    describe_counter!(
        RULE_OUTCOMES,
        "Rule decisions on events, by rule and outcome."
    );
    describe_counter!(ACTIONS, "Action steps run, by action and outcome.");
    describe_gauge!(JOBS_PENDING, "Jobs not finished yet.");
    describe_gauge!(JOBS_DEAD, "Jobs in the dead-letter list.");
    describe_counter!(WEBHOOK_DELIVERIES, "GitHub webhook deliveries, by outcome.");
    describe_histogram!(
        WEBHOOK_SECONDS,
        Unit::Seconds,
        "Time to answer a GitHub webhook delivery (stored and flushed when accepted)."
    );
    describe_histogram!(
        WEBHOOK_BATCH,
        "Deliveries recorded by one transaction and flush of the delivery writer."
    );
    describe_histogram!(
        TRANSITION_TO_ACTION_SECONDS,
        Unit::Seconds,
        "Time from an observed transition or delivery to the first effect of a rule it fired."
    );
    describe_gauge!(
        STORE_SIZE_BYTES,
        Unit::Bytes,
        "Bytes used by the store's files."
    );
    describe_counter!(RULE_RELOADS, "Rule set reloads, by outcome.");
}
