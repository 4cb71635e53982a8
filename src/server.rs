//! The HTTP surface (DESIGN §7): `POST /webhooks/github`, `/healthz`, `/readyz`, `/metrics`
//! and `/status`, as one router ([`app`]) that tests drive without a socket, and [`serve`].
//!
//! What the probes report comes from [`Probes`], filled by the daemon: the poller's health,
//! whether rules are loaded (their hash), job counts. Nothing here prints a secret: the only
//! secret the server holds is inside the webhook verifier.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::RateBudget;
use crate::clock::{Clock, SystemClock};
use crate::metrics as names;
use crate::sources::poller::PollerHealth;
use crate::sources::webhook::{self, Webhooks};
use crate::store::{JobState, Store, StoreError};

/// `/readyz` wants a successful poll within this many poll intervals.
pub const READY_POLL_INTERVALS: u32 = 3;

/// The Prometheus text format's content type.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A yes/no input of a probe, asked at each request.
pub type Check = Arc<dyn Fn() -> bool + Send + Sync>;

/// Jobs by state, for `/status` and the job gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobCounts {
    pub pending: u64,
    pub running: u64,
    pub waiting: u64,
    pub dead: u64,
}

impl JobCounts {
    /// Jobs with work left.
    pub fn open(&self) -> u64 {
        self.pending + self.running + self.waiting
    }
}

/// Counts jobs by state from the store: open ones from their index, dead ones by a scan of
/// every job (fine for a status page; a daemon with an executor can count in memory instead).
pub fn count_jobs(store: &Store) -> Result<JobCounts, StoreError> {
    let mut counts = JobCounts::default();
    for job in store.open_jobs()? {
        match job.state {
            JobState::Pending => counts.pending += 1,
            JobState::Running => counts.running += 1,
            JobState::Waiting => counts.waiting += 1,
            JobState::Done | JobState::Dead => {}
        }
    }
    for job in store.jobs() {
        if job?.state == JobState::Dead {
            counts.dead += 1;
        }
    }
    Ok(counts)
}

/// What `/healthz`, `/readyz` and `/status` report, supplied by the daemon.
#[derive(Clone)]
pub struct Probes {
    /// The build's version.
    pub version: String,
    /// Organizations polled.
    pub orgs: Vec<u64>,
    /// The pollers' interval: `/readyz` wants a success within [`READY_POLL_INTERVALS`] of them.
    pub poll_interval: Duration,
    /// The pollers' shared health.
    pub poller: Arc<PollerHealth>,
    /// Whether every loop of the daemon is running (`/healthz`).
    pub alive: Check,
    /// Hash of the loaded rule set; None while no rules are loaded (`/readyz` waits for it).
    pub rules_hash: Arc<dyn Fn() -> Option<String> + Send + Sync>,
    /// What `/status` shows of the rules (count, files, last reload error); null when unknown.
    pub rules: Arc<dyn Fn() -> serde_json::Value + Send + Sync>,
    /// Jobs by state.
    pub jobs: Arc<dyn Fn() -> Result<JobCounts, StoreError> + Send + Sync>,
    /// The Codegen client's rate budget, for the rate-limit wait counters.
    pub rate_budget: Option<Arc<RateBudget>>,
    /// Time, for poll recency and active silences.
    pub clock: Arc<dyn Clock>,
}

/// Everything the router needs.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub webhooks: Arc<Webhooks>,
    pub metrics: PrometheusHandle,
    pub probes: Probes,
}

impl AppState {
    /// State with defaults for what the daemon may fill in later: alive, no rules loaded yet,
    /// jobs counted from the store, no orgs, the system clock, the process-wide metrics recorder.
    pub fn new(
        store: Store,
        webhooks: Arc<Webhooks>,
        poller: Arc<PollerHealth>,
        poll_interval: Duration,
    ) -> AppState {
        let jobs_store = store.clone();
        AppState {
            probes: Probes {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                orgs: Vec::new(),
                poll_interval,
                poller,
                alive: Arc::new(|| true),
                rules_hash: Arc::new(|| None),
                rules: Arc::new(|| serde_json::Value::Null),
                jobs: Arc::new(move || count_jobs(&jobs_store)),
                rate_budget: None,
                clock: Arc::new(SystemClock),
            },
            store,
            webhooks,
            metrics: crate::metrics::install(),
        }
    }

    pub fn with_orgs(mut self, orgs: Vec<u64>) -> AppState {
        self.probes.orgs = orgs;
        self
    }

    pub fn with_rules_hash(
        mut self,
        f: impl Fn() -> Option<String> + Send + Sync + 'static,
    ) -> AppState {
        self.probes.rules_hash = Arc::new(f);
        self
    }

    /// What `/status` shows under `rules` (the daemon passes the rule set's status).
    pub fn with_rules_status(
        mut self,
        f: impl Fn() -> serde_json::Value + Send + Sync + 'static,
    ) -> AppState {
        self.probes.rules = Arc::new(f);
        self
    }

    pub fn with_alive(mut self, f: impl Fn() -> bool + Send + Sync + 'static) -> AppState {
        self.probes.alive = Arc::new(f);
        self
    }

    pub fn with_jobs(
        mut self,
        f: impl Fn() -> Result<JobCounts, StoreError> + Send + Sync + 'static,
    ) -> AppState {
        self.probes.jobs = Arc::new(f);
        self
    }

    pub fn with_rate_budget(mut self, budget: Arc<RateBudget>) -> AppState {
        self.probes.rate_budget = Some(budget);
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> AppState {
        self.probes.clock = clock;
        self
    }
}

/// The whole HTTP surface.
pub fn app(state: AppState) -> Router {
    let webhooks = webhook::router(state.webhooks.clone());
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .with_state(state)
        .merge(webhooks)
}

/// Serves `app` on `listener` until `cancel` fires, then stops accepting and lets requests in
/// flight finish (each delivery is durable before its answer, so none is lost either way).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
}

async fn healthz(State(state): State<AppState>) -> Response {
    if (state.probes.alive)() {
        (StatusCode::OK, Json(json!({"status": "ok"}))).into_response()
    } else {
        let body = json!({"status": "a daemon loop stopped"});
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

/// Runs store reads off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

async fn readyz(State(state): State<AppState>) -> Response {
    let store = state.store.clone();
    let store_ok = blocking(move || store.is_readable()).await.unwrap_or(false);
    let probes = &state.probes;
    let checks = json!({
        "store": store_ok,
        "rules_loaded": (probes.rules_hash)().is_some(),
        "first_reconcile": probes.poller.first_reconcile_done(),
        "recent_poll": poll_recent(probes),
    });
    let ready = checks
        .as_object()
        .is_some_and(|c| c.values().all(|v| v == &Value::Bool(true)));
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({"ready": ready, "checks": checks}))).into_response()
}

fn poll_recent(probes: &Probes) -> bool {
    let window = probes.poll_interval.saturating_mul(READY_POLL_INTERVALS);
    let Some(last) = probes.poller.last_success() else {
        return false;
    };
    let age = probes.clock.now() - last;
    age.to_std().map_or(true, |age| age <= window)
}

async fn metrics(State(state): State<AppState>) -> Response {
    let (store, jobs) = (state.store.clone(), state.probes.jobs.clone());
    let gauges = blocking(move || (store.size_on_disk(), jobs())).await;
    if let Some((size, jobs)) = gauges {
        match size {
            Ok(bytes) => metrics::gauge!(names::STORE_SIZE_BYTES).set(bytes as f64),
            Err(error) => tracing::warn!(%error, "Store size unavailable for metrics"),
        }
        match jobs {
            Ok(counts) => {
                metrics::gauge!(names::JOBS_PENDING).set(counts.open() as f64);
                metrics::gauge!(names::JOBS_DEAD).set(counts.dead as f64);
            }
            Err(error) => tracing::warn!(%error, "Job counts unavailable for metrics"),
        }
    }
    if let Some(budget) = &state.probes.rate_budget {
        let (waits, waited) = budget.wait_stats();
        metrics::counter!(names::RATE_LIMIT_WAITS).absolute(waits);
        let seconds = waited.as_secs();
        metrics::counter!(names::RATE_LIMIT_WAIT_SECONDS).absolute(seconds);
    }
    state.metrics.run_upkeep();
    let text = state.metrics.render();
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response()
}

async fn status(State(state): State<AppState>) -> Response {
    let probes = state.probes.clone();
    let store = state.store.clone();
    let now = probes.clock.now();
    let gathered = blocking(move || {
        let jobs = (probes.jobs)();
        let silences = store.active_silences(now);
        let size = store.size_on_disk();
        (jobs, silences, size)
    })
    .await;
    let Some((jobs, silences, size)) = gathered else {
        return unavailable("status could not be gathered");
    };
    let (jobs, silences) = match (jobs, silences) {
        (Ok(jobs), Ok(silences)) => (jobs, silences),
        (Err(error), _) | (_, Err(error)) => {
            tracing::warn!(%error, "Status unavailable");
            return unavailable("store unavailable");
        }
    };
    let probes = &state.probes;
    let last_poll = probes.poller.last_success();
    let body = json!({
        "version": probes.version,
        "rules_hash": (probes.rules_hash)(),
        "rules": (probes.rules)(),
        "orgs": probes.orgs,
        "last_poll": {
            "at": last_poll,
            "age_seconds": last_poll.map(|at| age_seconds(now, at)),
            "first_reconcile_done": probes.poller.first_reconcile_done(),
            "consecutive_failures": probes.poller.consecutive_failures(),
        },
        "queue_depth": jobs.open(),
        "jobs": {"pending": jobs.pending, "running": jobs.running, "waiting": jobs.waiting},
        "dead_letters": jobs.dead,
        "silences": silences.iter().map(|s| json!({
            "id": s.id,
            "rule": s.rule,
            "key": s.key,
            "until": s.until,
            "reason": s.reason,
            "created_by": s.created_by,
        })).collect::<Vec<_>>(),
        "webhooks": {"secrets": state.webhooks.secrets()},
        "store": {"path": state.store.path(), "size_bytes": size.ok()},
    });
    (StatusCode::OK, Json(body)).into_response()
}

fn age_seconds(now: DateTime<Utc>, at: DateTime<Utc>) -> f64 {
    (now - at).num_milliseconds() as f64 / 1000.0
}

fn unavailable(why: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": why})),
    )
        .into_response()
}
