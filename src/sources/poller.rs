//! The reconciling poller: one loop per organization that compares what the Codegen API says with
//! what the store holds and records every real change once.
//!
//! A tick lists runs newest first, page by page, while pages still hold new runs or enough of the
//! non-terminal runs it tracks to be worth a page; the tracked runs older than the pages it read
//! are fetched one by one. A periodic deep resync walks every page, to catch finished runs resumed
//! long after they were created. The first tick after start is recorded with source `startup`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::observe::{record_run, ObserveContext, Observed};
use crate::api::{AgentRun, ApiError, CodegenClient, OrgId, PageRequest, RunFilter, RunId};
use crate::clock::Clock;
use crate::events::EventSink;
use crate::retry::RetryPolicy;
use crate::store::{EventRecord, EventSource, Store, StoreError};

/// The page size of list calls: the API's maximum, to spend as few requests as possible.
pub const PAGE_SIZE: u32 = 100;
/// The longest wait between two tries while the API is failing.
pub const MAX_FAILURE_BACKOFF: Duration = Duration::from_secs(300);
/// A stalled run (unchanged for `stall_after`, already reported) is fetched on its own only once
/// per this many intervals: it is waiting for a person, and each GET spends the budget.
const STALLED_RECHECK_INTERVALS: u32 = 4;
/// A page is fetched for tracked runs only if it is expected to hold at least this many of them;
/// fewer are cheaper to fetch one by one.
const MIN_TRACKED_PER_PAGE: usize = 2;

/// Settings of one organization's poller.
#[derive(Debug, Clone)]
pub struct PollerConfig {
    pub org: OrgId,
    pub interval: Duration,
    pub stall_after: Duration,
    /// How often every page is walked.
    pub deep_resync: Duration,
    /// On the first sync of an empty store, how far back runs are recorded.
    pub backfill: Duration,
}

impl PollerConfig {
    /// The poller of `org` with `sentinel.yaml`'s defaults.
    pub fn defaults(org: OrgId) -> PollerConfig {
        use crate::config::{
            DEFAULT_BACKFILL, DEFAULT_DEEP_RESYNC, DEFAULT_POLL_INTERVAL, DEFAULT_STALL_AFTER,
        };
        PollerConfig {
            org,
            interval: DEFAULT_POLL_INTERVAL,
            stall_after: DEFAULT_STALL_AFTER,
            deep_resync: DEFAULT_DEEP_RESYNC,
            backfill: DEFAULT_BACKFILL,
        }
    }
}

/// Why a tick failed.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("Codegen API: {0}")]
    Api(ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

// Not `#[from]`: that would make the API error the `source()` as well as part of the message,
// and a whole error chain would say it twice.
impl From<ApiError> for PollError {
    fn from(error: ApiError) -> PollError {
        PollError::Api(error)
    }
}

/// What one tick did.
#[derive(Debug, Clone, Default)]
pub struct TickReport {
    pub pages: u32,
    pub single_gets: u32,
    pub observed: u32,
    pub transitions: u32,
    pub events: Vec<EventRecord>,
}

impl TickReport {
    /// API requests spent by the tick.
    pub fn requests(&self) -> u32 {
        self.pages + self.single_gets
    }
}

/// Shared health of the pollers, for `/readyz` and `/status`.
#[derive(Debug, Default)]
pub struct PollerHealth {
    first_reconcile_done: AtomicBool,
    consecutive_failures: AtomicU32,
    last_success: Mutex<Option<DateTime<Utc>>>,
}

impl PollerHealth {
    pub fn first_reconcile_done(&self) -> bool {
        self.first_reconcile_done.load(Ordering::Acquire)
    }

    pub fn last_success(&self) -> Option<DateTime<Utc>> {
        *self.last_success.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures.load(Ordering::Relaxed)
    }

    fn succeeded(&self, at: DateTime<Utc>) {
        self.first_reconcile_done.store(true, Ordering::Release);
        self.consecutive_failures.store(0, Ordering::Relaxed);
        *self.last_success.lock().unwrap_or_else(|p| p.into_inner()) = Some(at);
    }

    fn failed(&self) -> u32 {
        self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// What the poller remembers of the org's stored runs, to plan its requests.
#[derive(Debug, Default)]
struct RunIndex {
    created: HashMap<i64, DateTime<Utc>>,
    open: HashSet<i64>,
    /// Open runs already reported stalled, with when they were last fetched.
    stalled: HashMap<i64, Option<DateTime<Utc>>>,
    /// (created, id) newest first; rebuilt when dirty.
    order: Vec<(DateTime<Utc>, i64)>,
    dirty: bool,
}

impl RunIndex {
    /// Keeps track of stalled runs after an observation at `at`.
    fn note_observed(&mut self, id: i64, observed: &Observed, at: DateTime<Utc>) {
        let stalled_now = observed.events.iter().any(|e| e.kind == "run.stalled");
        if observed.transitioned {
            self.stalled.remove(&id);
        }
        if stalled_now || self.stalled.contains_key(&id) {
            self.stalled.insert(id, Some(at));
        }
    }

    /// A stalled run checked recently enough to skip this tick.
    fn skip_stalled(&self, id: i64, now: DateTime<Utc>, recheck: Duration) -> bool {
        match self.stalled.get(&id) {
            Some(Some(last)) => (now - *last).to_std().unwrap_or(Duration::ZERO) < recheck,
            Some(None) | None => false,
        }
    }

    fn note(&mut self, run: &AgentRun, fallback: DateTime<Utc>) {
        let id = run.id.0;
        if let std::collections::hash_map::Entry::Vacant(slot) = self.created.entry(id) {
            let created = run.created_at.as_ref().and_then(|t| t.to_utc());
            slot.insert(created.unwrap_or(fallback));
            self.dirty = true;
        }
        if run.status.as_ref().is_some_and(|s| s.is_terminal()) {
            self.open.remove(&id);
        } else {
            self.open.insert(id);
        }
    }

    fn sort(&mut self) {
        if self.dirty {
            self.order = self.created.iter().map(|(&id, &at)| (at, id)).collect();
            self.order.sort_by(|a, b| b.cmp(a));
            self.dirty = false;
        }
    }

    /// How many known runs are newer than `id`.
    fn rank(&self, id: i64) -> usize {
        match self.created.get(&id) {
            Some(&at) => self.order.partition_point(|&(t, i)| (t, i) > (at, id)),
            None => 0,
        }
    }
}

/// One organization's poller.
pub struct Poller {
    config: PollerConfig,
    client: CodegenClient,
    store: Store,
    clock: Arc<dyn Clock>,
    sink: Arc<dyn EventSink>,
    health: Arc<PollerHealth>,
    feed: Option<broadcast::Sender<Arc<EventRecord>>>,
    index: RunIndex,
    /// The org had its first (baseline) sync; from then on every new run is an event.
    synced: bool,
    ticks: u64,
    last_deep: Option<Instant>,
}

impl Poller {
    /// A poller that starts from what the store holds for the org.
    pub fn new(
        config: PollerConfig,
        client: CodegenClient,
        store: Store,
        clock: Arc<dyn Clock>,
        sink: Arc<dyn EventSink>,
    ) -> anyhow::Result<Poller> {
        let mut index = RunIndex::default();
        for record in store.runs_of_org(config.org.0) {
            let record = record?;
            let run: Option<AgentRun> = serde_json::from_value(record.raw.clone()).ok();
            let created = run
                .as_ref()
                .and_then(|r| r.created_at.as_ref())
                .and_then(|t| t.to_utc())
                .unwrap_or(record.first_seen);
            index.created.insert(record.run_id, created);
            if !record.is_terminal() {
                index.open.insert(record.run_id);
                if record.stalled_reported {
                    index.stalled.insert(record.run_id, None);
                }
            }
        }
        index.dirty = true;
        let synced = store.meta(&synced_key(config.org))?.is_some();
        Ok(Poller {
            config,
            client,
            store,
            clock,
            sink,
            health: Arc::new(PollerHealth::default()),
            feed: None,
            index,
            synced,
            ticks: 0,
            last_deep: None,
        })
    }

    /// Shares a health record (one per daemon, updated by every org's poller).
    pub fn with_health(mut self, health: Arc<PollerHealth>) -> Self {
        self.health = health;
        self
    }

    /// Publishes every new event, after it is durable.
    pub fn with_feed(mut self, feed: broadcast::Sender<Arc<EventRecord>>) -> Self {
        self.feed = Some(feed);
        self
    }

    pub fn health(&self) -> Arc<PollerHealth> {
        self.health.clone()
    }

    /// The tracked non-terminal runs.
    pub fn tracked_open(&self) -> usize {
        self.index.open.len()
    }

    fn next_source(&self) -> EventSource {
        if self.ticks == 0 {
            EventSource::Startup
        } else {
            EventSource::Poll
        }
    }

    /// One reconcile: new runs and every tracked non-terminal run. Not yet flushed.
    pub async fn poll_once(&mut self) -> Result<TickReport, PollError> {
        self.tick(false).await
    }

    /// A reconcile that walks every page. Not yet flushed.
    pub async fn deep_resync(&mut self) -> Result<TickReport, PollError> {
        self.tick(true).await
    }

    async fn tick(&mut self, deep: bool) -> Result<TickReport, PollError> {
        let source = self.next_source();
        let now = self.clock.now();
        let baseline = !self.synced;
        let ctx = ObserveContext {
            at: now,
            source,
            stall_after: self.config.stall_after,
            baseline,
        };
        let horizon = now - chrono::Duration::from_std(self.config.backfill).unwrap_or_default();
        self.index.sort();
        let mut report = TickReport::default();
        let mut unseen: HashSet<i64> = self.index.open.clone();
        let mut new_runs = 0usize;
        let mut page = PageRequest {
            skip: 0,
            limit: PAGE_SIZE,
        };
        loop {
            let got = self
                .client
                .list_runs(self.config.org, &RunFilter::default(), page)
                .await?;
            report.pages += 1;
            let mut reached_known = false;
            let mut oldest: Option<DateTime<Utc>> = None;
            for run in &got.items {
                if self.index.created.contains_key(&run.id.0) {
                    reached_known = true;
                } else {
                    new_runs += 1;
                }
                unseen.remove(&run.id.0);
                let created = run.created_at.as_ref().and_then(|t| t.to_utc());
                oldest = oldest.min(created).or(created);
                self.observe(run, &ctx, &mut report)?;
            }
            page.skip = page.skip.saturating_add(page.limit);
            let end = got.items.len() < page.limit as usize || i64::from(page.skip) >= got.total;
            if end || deep {
                if end {
                    break;
                }
                continue;
            }
            if baseline {
                if oldest.is_some_and(|t| t < horizon) {
                    break;
                }
                continue;
            }
            if !reached_known {
                continue;
            }
            if self.tracked_on_page(&unseen, new_runs, page) < MIN_TRACKED_PER_PAGE {
                break;
            }
        }
        let recheck = self.config.interval * STALLED_RECHECK_INTERVALS;
        let mut rest: Vec<i64> = unseen
            .into_iter()
            .filter(|id| !self.index.skip_stalled(*id, now, recheck))
            .collect();
        rest.sort_unstable();
        for id in rest {
            report.single_gets += 1;
            match self.client.get_run(self.config.org, RunId(id)).await {
                Ok(run) => self.observe(&run, &ctx, &mut report)?,
                Err(ApiError::NotFound { .. }) => {
                    tracing::warn!(org = %self.config.org, run = id, "Tracked run no longer exists; no longer polled");
                    self.index.open.remove(&id);
                }
                Err(e) => return Err(e.into()),
            }
        }
        if baseline {
            let key = synced_key(self.config.org);
            self.store.transaction(|tx| tx.put_meta(&key, "1"))?;
            self.synced = true;
            tracing::info!(org = %self.config.org, runs = report.observed, "Baseline recorded: earlier runs raise no events");
        }
        self.ticks += 1;
        Ok(report)
    }

    /// How many unseen tracked runs the page at `page.skip` is expected to hold.
    fn tracked_on_page(&self, unseen: &HashSet<i64>, new_runs: usize, page: PageRequest) -> usize {
        let start = page.skip as usize;
        let end = start + page.limit as usize;
        unseen
            .iter()
            .filter(|id| (start..end).contains(&(self.index.rank(**id) + new_runs)))
            .count()
    }

    fn observe(
        &mut self,
        run: &AgentRun,
        ctx: &ObserveContext,
        report: &mut TickReport,
    ) -> Result<(), PollError> {
        let raw = serde_json::to_value(run).unwrap_or(Value::Null);
        let sink = self.sink.clone();
        let observed: Observed = self
            .store
            .transaction(|tx| record_run(tx, run, &raw, ctx, sink.as_ref()))?;
        self.index.note(run, ctx.at);
        self.index.note_observed(run.id.0, &observed, ctx.at);
        report.observed += 1;
        if observed.transitioned {
            report.transitions += 1;
        }
        for event in &observed.events {
            metrics::counter!(
                "sentinel_events_total",
                "type" => event.kind.clone(),
                "source" => event.source.as_str()
            )
            .increment(1);
        }
        report.events.extend(observed.events);
        Ok(())
    }

    /// Polls until cancelled: reconcile, flush, publish, wait; backs off while the API fails.
    pub async fn run(mut self, cancel: CancellationToken) -> anyhow::Result<()> {
        let org = self.config.org;
        loop {
            let deep = self
                .last_deep
                .is_none_or(|at| at.elapsed() >= self.config.deep_resync);
            let result = tokio::select! {
                _ = cancel.cancelled() => break,
                r = self.tick(deep) => r,
            };
            let wait = match result {
                Ok(report) => {
                    if deep {
                        self.last_deep = Some(Instant::now());
                    }
                    self.store.flush().await?;
                    self.health.succeeded(self.clock.now());
                    metrics::counter!("sentinel_polls_total", "outcome" => "ok").increment(1);
                    tracing::debug!(%org, requests = report.requests(), transitions = report.transitions, events = report.events.len(), deep, "Poll done");
                    self.publish(report.events);
                    self.config.interval
                }
                Err(error) => {
                    // What was recorded before the failure is kept and made durable.
                    self.store.flush().await?;
                    let failures = self.health.failed();
                    metrics::counter!("sentinel_polls_total", "outcome" => "error").increment(1);
                    let wait = failure_backoff(self.config.interval, failures);
                    tracing::warn!(%org, %error, failures, ?wait, "Poll failed; backing off");
                    wait
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        self.store.flush().await?;
        Ok(())
    }

    fn publish(&self, events: Vec<EventRecord>) {
        if let Some(feed) = &self.feed {
            for event in events {
                // No receiver is fine: the feed only wakes whoever listens.
                let _ = feed.send(Arc::new(event));
            }
        }
    }
}

/// The `meta` key marking an org's baseline sync as done.
fn synced_key(org: OrgId) -> String {
    format!("poller/synced/{org}")
}

/// The wait after `failures` failed polls in a row: doubling from the interval, capped, jittered.
fn failure_backoff(interval: Duration, failures: u32) -> Duration {
    let policy = RetryPolicy {
        max_attempts: u32::MAX,
        base: interval,
        cap: MAX_FAILURE_BACKOFF,
    };
    interval.max(policy.delay(failures + 1, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_backoff_grows_from_the_interval_to_the_cap() {
        let interval = Duration::from_secs(15);
        for failures in 1..20 {
            let wait = failure_backoff(interval, failures);
            assert!(wait >= interval && wait <= MAX_FAILURE_BACKOFF, "{wait:?}");
        }
        let late: Vec<Duration> = (0..200).map(|_| failure_backoff(interval, 8)).collect();
        assert!(
            late.iter().any(|w| *w > Duration::from_secs(120)),
            "it grows"
        );
    }
}
