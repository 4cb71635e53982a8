//! The cron scheduler: `schedule:` rules fire once per tick, even across restarts, and never
//! flood after downtime.
//!
//! Each scheduled rule's next fire time is persisted (`schedule_marks`). A due tick is recorded
//! as a `schedule` event with the stable id `schedule/<rule>/<tick>` in one transaction with the
//! mark moving past it and the engine's decision, so a tick is offered to its rule exactly once.
//! Ticks missed while the daemon was down fire once, at the first pass after start, with source
//! `startup`; the mark then jumps to the next tick after now.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::engine::summary::summarize;
use crate::events::{EventKind, EventSink};
use crate::rules::eval::rfc3339;
use crate::rules::{Rule, RuleSet};
use crate::store::{EventRecord, EventSource, NewEvent, ScheduleMark, Store, StoreError};

/// Longest wait between two passes: rule reloads (new or changed schedules) are seen within it.
pub const MAX_NAP: Duration = Duration::from_secs(30);
/// Wait after a failed pass (the store failing) before trying again.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// The stable id of one tick of a rule.
pub fn tick_id(rule: &str, tick: DateTime<Utc>) -> String {
    format!("schedule/{rule}/{}", rfc3339(tick))
}

/// What one pass did.
#[derive(Debug, Default)]
pub struct PassReport {
    /// The schedule events recorded (offered to the engine).
    pub events: Vec<EventRecord>,
    /// The earliest next tick of any scheduled rule.
    pub next: Option<DateTime<Utc>>,
}

/// Fires the due ticks of scheduled rules.
pub struct Scheduler {
    store: Store,
    rules: Arc<ArcSwap<RuleSet>>,
    sink: Arc<dyn EventSink>,
    clock: Arc<dyn Clock>,
    passes: u64,
}

enum Plan {
    /// Nothing due; the mark says when.
    Wait(DateTime<Utc>),
    /// The mark was missing or stale (schedule changed): set it, fire nothing.
    Reset(Option<DateTime<Utc>>),
    /// This tick is due.
    Fire(DateTime<Utc>),
}

impl Scheduler {
    pub fn new(
        store: Store,
        rules: Arc<ArcSwap<RuleSet>>,
        sink: Arc<dyn EventSink>,
        clock: Arc<dyn Clock>,
    ) -> Scheduler {
        Scheduler {
            store,
            rules,
            sink,
            clock,
            passes: 0,
        }
    }

    /// One pass: fire every due tick (durably), set missing marks. The first pass after start
    /// records the ticks missed while the daemon was down, with source `startup`.
    pub async fn pass(&mut self) -> Result<PassReport, StoreError> {
        let now = self.clock.now();
        let source = if self.passes == 0 {
            EventSource::Startup
        } else {
            EventSource::Schedule
        };
        let set = self.rules.load_full();
        let mut report = PassReport::default();
        let mut summary: Option<Value> = None;
        for rule in set.scheduled() {
            let next = match self.plan(rule, now)? {
                Plan::Wait(at) => Some(at),
                Plan::Reset(next) => {
                    self.set_mark(rule, next)?;
                    next
                }
                Plan::Fire(tick) => {
                    if summary.is_none() {
                        summary = Some(summarize(&self.store, now)?);
                    }
                    let data = json!({
                        "rule": rule.name,
                        "tick": rfc3339(tick),
                        "summary": summary.clone().unwrap_or(Value::Null),
                    });
                    let (event, next) = self.fire(rule, tick, now, source, data)?;
                    report.events.extend(event);
                    next
                }
            };
            report.next = match (report.next, next) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        self.store.flush().await?;
        self.passes += 1;
        Ok(report)
    }

    fn plan(&self, rule: &Rule, now: DateTime<Utc>) -> Result<Plan, StoreError> {
        let Some(schedule) = rule.schedule() else {
            return Ok(Plan::Wait(now));
        };
        Ok(match self.store.schedule_mark(&rule.name)? {
            None => Plan::Reset(schedule.next_after(now)),
            // The rule's schedule changed since the mark was written: start afresh.
            Some(mark) if !schedule.is_tick(mark.next_fire) => {
                Plan::Reset(schedule.next_after(now))
            }
            Some(mark) if mark.next_fire <= now => Plan::Fire(mark.next_fire),
            Some(mark) => Plan::Wait(mark.next_fire),
        })
    }

    fn set_mark(&self, rule: &Rule, next: Option<DateTime<Utc>>) -> Result<(), StoreError> {
        let Some(next_fire) = next else {
            return Ok(());
        };
        self.store.transaction(|tx| {
            let last_fired = tx.get_schedule_mark(&rule.name)?.and_then(|m| m.last_fired);
            tx.put_schedule_mark(
                &rule.name,
                &ScheduleMark {
                    next_fire,
                    last_fired,
                },
            )
        })
    }

    /// Records the tick's event and moves the mark past now, in one transaction.
    fn fire(
        &self,
        rule: &Rule,
        tick: DateTime<Utc>,
        now: DateTime<Utc>,
        source: EventSource,
        data: Value,
    ) -> Result<(Option<EventRecord>, Option<DateTime<Utc>>), StoreError> {
        let next = rule.schedule().and_then(|s| s.next_after(now));
        let sink = self.sink.clone();
        let event = self.store.transaction(|tx| {
            // Another pass (or process) may have fired this tick meanwhile.
            let current = tx.get_schedule_mark(&rule.name)?;
            if current.as_ref().map(|m| m.next_fire) != Some(tick) {
                return Ok(None);
            }
            // A schedule that never fires again keeps its mark on the fired tick.
            let mark = ScheduleMark {
                next_fire: next.unwrap_or(tick),
                last_fired: Some(tick),
            };
            tx.put_schedule_mark(&rule.name, &mark)?;
            let new = NewEvent {
                id: tick_id(&rule.name, tick),
                kind: EventKind::Schedule.as_str(),
                at: now,
                source,
                org_id: None,
                run_id: None,
                data: data.clone(),
            };
            let Some(seq) = tx.insert_event(new.clone())? else {
                return Ok(None);
            };
            let record = new.into_record(seq);
            sink.on_event(tx, &record)?;
            Ok(Some(record))
        })?;
        if event.is_some() {
            metrics::counter!("sentinel_schedule_ticks_total", "source" => source.as_str())
                .increment(1);
            tracing::info!(rule = %rule.name, tick = %rfc3339(tick), source = source.as_str(), "Schedule tick");
        }
        Ok((event, next))
    }
}

/// Fires scheduled rules until cancelled. Each pass is durable before the next wait; its events
/// are then published on `feed` (which wakes the executor for the jobs they fired).
pub async fn run_scheduler(
    store: Store,
    rules: Arc<ArcSwap<RuleSet>>,
    sink: Arc<dyn EventSink>,
    clock: Arc<dyn Clock>,
    feed: Option<broadcast::Sender<Arc<EventRecord>>>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut scheduler = Scheduler::new(store, rules, sink, clock.clone());
    loop {
        let wait = match scheduler.pass().await {
            Ok(report) => {
                if let Some(feed) = &feed {
                    for event in &report.events {
                        // No listener is fine: the feed only wakes whoever listens.
                        let _ = feed.send(Arc::new(event.clone()));
                    }
                }
                report
                    .next
                    .map(|next| (next - clock.now()).to_std().unwrap_or(Duration::ZERO))
                    .map_or(MAX_NAP, |until| until.min(MAX_NAP))
            }
            Err(error) => {
                tracing::warn!(%error, "Schedule pass failed; retrying");
                RETRY_AFTER_FAILURE
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
