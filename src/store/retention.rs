//! Retention: pruning history older than a policy's age, never current state or pending work.
//!
//! Pruned: transitions, events (with their `event_ids` and `run_events` entries), journal
//! entries, processed deliveries, and jobs that finished (`done`) before the cutoff; and the
//! firing records of rules keyed by event (no `key`) that last fired before the cutoff and whose
//! event is gone. Kept whatever their age: runs, open jobs and dead letters (an operator
//! retries or drops those), the events of open jobs (and their journal entries), unprocessed
//! deliveries, every delivery younger than [`MIN_DELIVERY_AGE`] (GitHub redelivers for days;
//! the delivery id is the dedupe key), and firing records under a rule's own `key` (without
//! cooldown or throttle, such a key fires once, ever).
//! Once an event is pruned its stable id can be inserted again.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::codec::{self, Record};
use super::error::StoreError;
use super::keys;
use super::records::*;
use super::trees::TreeName;
use super::Store;

/// How often the retention loop prunes (the first pass runs at start).
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// Deliveries are kept at least this long whatever the policy.
pub const MIN_DELIVERY_AGE: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Default age after which history is pruned.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Keys removed per transaction: bounds how long one prune step holds sled's writer lock.
const PRUNE_BATCH: usize = 512;

/// What to prune.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// History older than this is pruned.
    pub max_age: Duration,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            max_age: DEFAULT_MAX_AGE,
        }
    }
}

/// Records removed by one pass, per tree (event index entries go with their event).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneStats {
    pub transitions: u64,
    pub events: u64,
    pub journal: u64,
    pub deliveries: u64,
    pub jobs: u64,
    pub firings: u64,
    /// Records that could not be decoded: left in place and logged.
    pub damaged: u64,
}

/// Prunes every [`RETENTION_INTERVAL`] until `cancel` fires; a failed pass is logged and retried
/// at the next interval. A pass in progress finishes before this returns.
pub async fn run_retention(store: Store, policy: RetentionPolicy, cancel: CancellationToken) {
    let mut interval = tokio::time::interval(RETENTION_INTERVAL);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            _ = interval.tick() => {}
        }
        let (store, policy) = (store.clone(), policy.clone());
        // A pass scans whole trees: keep it off the async workers.
        let pass = tokio::task::spawn_blocking(move || store.prune_once(Utc::now(), &policy));
        match pass.await {
            Ok(Ok(stats)) => tracing::debug!(?stats, "Retention pass done"),
            Ok(Err(error)) => tracing::warn!(%error, "Retention pass failed"),
            Err(error) => tracing::warn!(%error, "Retention pass panicked"),
        }
    }
}

/// `now - age`, or the beginning of time when that underflows (nothing is that old).
fn cutoff(now: DateTime<Utc>, age: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(age)
        .ok()
        .and_then(|age| now.checked_sub_signed(age))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// What retention reads of an event (fields every version of `EventRecord` has).
#[derive(serde::Deserialize)]
struct EventStamp {
    seq: u64,
    id: String,
    at: DateTime<Utc>,
}

/// When a job finished: the time the executor records in its progress (`progress.finished_at`),
/// else its creation (jobs finished before that was recorded). A dead letter retried long after
/// it was created counts from its new finish, not from its creation.
fn finished_at(job: &JobRecord) -> DateTime<Utc> {
    job.data["progress"]["finished_at"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(job.created_at, |t| t.with_timezone(&Utc))
}

impl Store {
    /// One retention pass at `now`: removes what `policy` lets go (see the module docs).
    pub fn prune_once(
        &self,
        now: DateTime<Utc>,
        policy: &RetentionPolicy,
    ) -> Result<PruneStats, StoreError> {
        let history = cutoff(now, policy.max_age);
        let deliveries = cutoff(now, policy.max_age.max(MIN_DELIVERY_AGE));
        let (kept_ids, kept_seqs) = self.events_of_open_jobs()?;
        let mut stats = PruneStats::default();

        stats.transitions =
            self.prune_tree(&mut stats.damaged, |_, t: &TransitionRecord| t.at < history)?;
        stats.journal = self.prune_tree(&mut stats.damaged, |key, j: &JournalRecord| {
            let seq = keys::decode_journal_seq(key).ok();
            j.at < history && seq.is_none_or(|seq| !kept_seqs.contains(&seq))
        })?;
        stats.deliveries = self.prune_tree(&mut stats.damaged, |_, d: &DeliveryRecord| {
            d.processed && d.received_at < deliveries
        })?;
        stats.jobs = self.prune_tree(&mut stats.damaged, |_, j: &JobRecord| {
            j.state == JobState::Done && finished_at(j) < history
        })?;
        stats.events = self.prune_events(&mut stats.damaged, history, &kept_ids)?;
        // After the events: a firing keyed by an event pruned just now goes in the same pass.
        let event_ids = self.tree(TreeName::EventIds);
        stats.firings = self.prune_tree(&mut stats.damaged, |key, f: &FiringRecord| {
            f.by_event
                && f.last_at < history
                && keys::firing_parts(key)
                    .is_some_and(|(_, k)| matches!(event_ids.contains_key(k), Ok(false)))
        })?;
        Ok(stats)
    }

    /// Stable ids and seqs of the events that open jobs were created for.
    fn events_of_open_jobs(&self) -> Result<(HashSet<String>, HashSet<u64>), StoreError> {
        let mut ids = HashSet::new();
        let mut seqs = HashSet::new();
        for job in self.open_jobs()? {
            if let Some(event) = self.event_by_id(&job.event_id)? {
                seqs.insert(event.seq);
            }
            ids.insert(job.event_id);
        }
        Ok((ids, seqs))
    }

    /// Removes every record of `R`'s tree for which `expired(key, record)` holds.
    fn prune_tree<R: Record>(
        &self,
        damaged: &mut u64,
        expired: impl Fn(&[u8], &R) -> bool,
    ) -> Result<u64, StoreError> {
        let mut batch = Vec::new();
        let mut removed = 0;
        for item in self.tree(R::TREE).iter() {
            let (key, value) = item.map_err(StoreError::storage("scan"))?;
            match codec::decode::<R>(&key, &value) {
                Ok(record) if expired(&key, &record) => batch.push(key),
                Ok(_) => {}
                Err(error) => {
                    *damaged += 1;
                    tracing::warn!(%error, "Retention skipped a damaged record");
                }
            }
            if batch.len() >= PRUNE_BATCH {
                removed += self.remove_keys(R::TREE, &std::mem::take(&mut batch))?;
            }
        }
        removed += self.remove_keys(R::TREE, &batch)?;
        Ok(removed)
    }

    fn remove_keys(&self, tree: TreeName, batch: &[sled::IVec]) -> Result<u64, StoreError> {
        self.transaction(|tx| {
            for key in batch {
                tx.remove(tree, key)?;
            }
            Ok(())
        })?;
        Ok(batch.len() as u64)
    }

    /// Removes expired events with their index entries, sparing those of open jobs.
    fn prune_events(
        &self,
        damaged: &mut u64,
        history: DateTime<Utc>,
        kept_ids: &HashSet<String>,
    ) -> Result<u64, StoreError> {
        let mut batch = Vec::new();
        let mut removed = 0;
        let flush = |batch: &mut Vec<u64>| -> Result<u64, StoreError> {
            let seqs = std::mem::take(batch);
            self.transaction(|tx| {
                let mut n = 0;
                for &seq in &seqs {
                    n += u64::from(tx.remove_event(seq)?);
                }
                Ok(n)
            })
        };
        for item in self.tree(TreeName::Events).iter() {
            let (key, value) = item.map_err(StoreError::storage("scan"))?;
            // Only the stamp, read around a compressed payload: decompressing and parsing every
            // stored webhook body would make a pass cost ~20 µs per event.
            match codec::decode_fields::<EventRecord, EventStamp>(&key, &value) {
                Ok(e) if e.at < history && !kept_ids.contains(&e.id) => batch.push(e.seq),
                Ok(_) => {}
                Err(error) => {
                    *damaged += 1;
                    tracing::warn!(%error, "Retention skipped a damaged event");
                }
            }
            if batch.len() >= PRUNE_BATCH {
                removed += flush(&mut batch)?;
            }
        }
        removed += flush(&mut batch)?;
        Ok(removed)
    }
}
