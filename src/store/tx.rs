//! Atomic multi-tree writes: `Store::transaction` and the typed `Tx` view its closure receives.
//!
//! sled 0.34 runs a multi-tree transaction under a process-wide lock and may run the closure more
//! than once, so the closure must be short and pure apart from `Tx` writes: no network, no
//! channel sends, no effects, no store methods (those would deadlock; they return
//! `StoreError::InsideTransaction` instead). Build inputs before, act on the returned value after.

use std::cell::Cell;
use std::error::Error as StdError;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, Transactional, TransactionalTree,
    UnabortableTransactionError,
};

use super::codec::{self, Record};
use super::error::StoreError;
use super::keys;
use super::records::*;
use super::trees::TreeName;
use super::Store;

/// Why a transaction closure stopped. Propagate the errors of `Tx` methods with `?` unchanged:
/// one of them asks sled to retry the closure. Use [`TxAbort::abort`] for your own reasons.
#[derive(Debug)]
pub struct TxAbort(AbortKind);

#[derive(Debug)]
enum AbortKind {
    /// sled detected a conflict and will rerun the closure.
    Conflict,
    Storage(sled::Error),
    Store(StoreError),
    Caller(Box<dyn StdError + Send + Sync>),
}

impl TxAbort {
    /// Aborts the transaction with the caller's own error: nothing is written and
    /// `Store::transaction` returns `StoreError::Aborted(err)`.
    pub fn abort(err: impl Into<Box<dyn StdError + Send + Sync>>) -> TxAbort {
        TxAbort(AbortKind::Caller(err.into()))
    }

    fn store(err: StoreError) -> TxAbort {
        TxAbort(AbortKind::Store(err))
    }
}

impl std::fmt::Display for TxAbort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            AbortKind::Conflict => f.write_str("transaction conflict (retried by the store)"),
            AbortKind::Storage(e) => write!(f, "storage error: {e}"),
            AbortKind::Store(e) => e.fmt(f),
            AbortKind::Caller(e) => write!(f, "aborted: {e}"),
        }
    }
}

impl From<UnabortableTransactionError> for TxAbort {
    fn from(e: UnabortableTransactionError) -> Self {
        match e {
            UnabortableTransactionError::Conflict => TxAbort(AbortKind::Conflict),
            UnabortableTransactionError::Storage(e) => TxAbort(AbortKind::Storage(e)),
        }
    }
}

/// What a transaction ended with when it did not commit.
enum Failure {
    Store(StoreError),
    Caller(Box<dyn StdError + Send + Sync>),
}

thread_local! {
    /// Set while this thread runs a transaction closure (sled's lock is not re-entrant).
    static IN_TX: Cell<bool> = const { Cell::new(false) };
}

struct InTx;

impl InTx {
    fn enter() -> Result<InTx, StoreError> {
        ensure_outside_tx("transaction")?;
        IN_TX.with(|c| c.set(true));
        Ok(InTx)
    }
}

impl Drop for InTx {
    fn drop(&mut self) {
        IN_TX.with(|c| c.set(false));
    }
}

/// Refuses store calls from inside a transaction closure instead of deadlocking.
pub(crate) fn ensure_outside_tx(op: &'static str) -> Result<(), StoreError> {
    if IN_TX.with(Cell::get) {
        return Err(StoreError::InsideTransaction { op });
    }
    Ok(())
}

impl Store {
    /// Runs `f` as one atomic, serializable write over every tree and returns its value.
    ///
    /// `f` may run more than once (sled retries on conflict), so it must be pure apart from `Tx`
    /// writes; nothing is written when it returns an error. Writes are atomic but durable only
    /// after [`Store::flush`]: flush before acknowledging anything or starting an effect. The
    /// call blocks (briefly) on a process-wide lock; keep closures short.
    pub fn transaction<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: Fn(&Tx<'_>) -> Result<T, TxAbort>,
    {
        let _in_tx = InTx::enter()?;
        let trees = self.inner.trees.as_slice();
        let result = <[sled::Tree] as Transactional<Failure>>::transaction(trees, |view| {
            f(&Tx { view }).map_err(|abort| match abort.0 {
                AbortKind::Conflict => ConflictableTransactionError::Conflict,
                AbortKind::Storage(e) => ConflictableTransactionError::Storage(e),
                AbortKind::Store(e) => ConflictableTransactionError::Abort(Failure::Store(e)),
                AbortKind::Caller(e) => ConflictableTransactionError::Abort(Failure::Caller(e)),
            })
        });
        result.map_err(|e| match e {
            TransactionError::Abort(Failure::Store(e)) => e,
            TransactionError::Abort(Failure::Caller(e)) => StoreError::Aborted(e),
            TransactionError::Storage(source) => StoreError::Storage {
                op: "transaction",
                source,
            },
        })
    }
}

/// A transition to append to a run (see [`Tx::append_transition`]).
#[derive(Clone, Debug, PartialEq)]
pub struct NewTransition {
    pub from: Option<String>,
    pub to: Option<String>,
    pub first_sight: bool,
    pub at: DateTime<Utc>,
    pub source: EventSource,
}

/// An event to insert (see [`Tx::insert_event`]); the store assigns its `seq`.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub id: String,
    pub kind: String,
    pub at: DateTime<Utc>,
    pub source: EventSource,
    pub org_id: Option<i64>,
    pub run_id: Option<i64>,
    pub data: Value,
}

/// A job to create (see [`Tx::insert_job`]); the store assigns its `id`, state `Pending`.
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    pub rule: String,
    pub event_id: String,
    pub key: String,
    pub created_at: DateTime<Utc>,
    pub data: Value,
}

/// A silence to create (see [`Tx::insert_silence`]); the store assigns its `id`.
#[derive(Clone, Debug, PartialEq)]
pub struct NewSilence {
    pub rule: String,
    pub key: Option<String>,
    pub until: DateTime<Utc>,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
}

/// The typed view of every tree inside one transaction. Reads see this transaction's own writes.
pub struct Tx<'a> {
    view: &'a [TransactionalTree],
}

impl Tx<'_> {
    fn tree(&self, name: TreeName) -> &TransactionalTree {
        &self.view[name.index()]
    }

    fn get_record<R: Record>(&self, key: &[u8]) -> Result<Option<R>, TxAbort> {
        match self.tree(R::TREE).get(key)? {
            Some(bytes) => codec::decode(key, &bytes).map(Some).map_err(TxAbort::store),
            None => Ok(None),
        }
    }

    fn put_record<R: Record>(&self, key: &[u8], record: &R) -> Result<(), TxAbort> {
        let bytes = codec::encode(record).map_err(TxAbort::store)?;
        self.tree(R::TREE).insert(key, bytes)?;
        Ok(())
    }

    fn next_id(&self) -> Result<u64, TxAbort> {
        // Any tree shares the database-wide counter: monotonic, gaps allowed, never reused.
        // sled counts from 0; ids start at 1 so that 0 can mean "before every id".
        let id = self
            .tree(TreeName::Meta)
            .generate_id()
            .map_err(|e| TxAbort(AbortKind::Storage(e)))?;
        Ok(id.saturating_add(1))
    }

    fn invariant(tree: TreeName, key: &[u8], message: &'static str) -> TxAbort {
        TxAbort::store(StoreError::Invariant {
            tree: tree.as_str(),
            key: keys::describe(tree, key),
            message,
        })
    }

    /// The stored snapshot of a run, if any.
    pub fn get_run(&self, org_id: i64, run_id: i64) -> Result<Option<RunRecord>, TxAbort> {
        self.get_record(&keys::run(org_id, run_id))
    }

    /// Stores the snapshot of a run (insert or replace).
    pub fn put_run(&self, run: &RunRecord) -> Result<(), TxAbort> {
        self.put_record(&keys::run(run.org_id, run.run_id), run)
    }

    /// Appends the run's next transition (seq = `run.last_seq + 1`), bumps `run.last_seq` and
    /// stores `run`. Status fields of `run` are the caller's to set; put it again after further
    /// changes. Fails if that seq is already taken (the run record was stale).
    pub fn append_transition(
        &self,
        run: &mut RunRecord,
        change: NewTransition,
    ) -> Result<TransitionRecord, TxAbort> {
        let seq = run.last_seq.saturating_add(1);
        let key = keys::transition(run.org_id, run.run_id, seq);
        let tree = TreeName::Transitions;
        if run.last_seq == u32::MAX || self.tree(tree).get(key)?.is_some() {
            return Err(Self::invariant(tree, &key, "transition seq already used"));
        }
        let record = TransitionRecord {
            org_id: run.org_id,
            run_id: run.run_id,
            seq,
            from: change.from,
            to: change.to,
            first_sight: change.first_sight,
            at: change.at,
            source: change.source,
        };
        self.put_record(&key, &record)?;
        run.last_seq = seq;
        self.put_run(run)?;
        Ok(record)
    }

    /// One stored transition of a run.
    pub fn get_transition(
        &self,
        org_id: i64,
        run_id: i64,
        seq: u32,
    ) -> Result<Option<TransitionRecord>, TxAbort> {
        self.get_record(&keys::transition(org_id, run_id, seq))
    }

    /// Inserts an event and its indexes; returns its new seq, or None (writing nothing) when an
    /// event with the same stable id already exists.
    pub fn insert_event(&self, event: NewEvent) -> Result<Option<u64>, TxAbort> {
        let ids = self.tree(TreeName::EventIds);
        if ids.get(event.id.as_bytes())?.is_some() {
            return Ok(None);
        }
        let seq = self.next_id()?;
        if let (Some(org), Some(run)) = (event.org_id, event.run_id) {
            self.tree(TreeName::RunEvents)
                .insert(&keys::run_event(org, run, seq)[..], &[][..])?;
        }
        ids.insert(event.id.as_bytes(), &keys::id(seq)[..])?;
        let record = EventRecord {
            seq,
            id: event.id,
            kind: event.kind,
            at: event.at,
            source: event.source,
            org_id: event.org_id,
            run_id: event.run_id,
            data: event.data,
        };
        self.put_record(&keys::id(seq), &record)?;
        Ok(Some(seq))
    }

    /// The seq of the event with this stable id, if stored.
    pub fn event_seq(&self, stable_id: &str) -> Result<Option<u64>, TxAbort> {
        match self.tree(TreeName::EventIds).get(stable_id.as_bytes())? {
            Some(v) => keys::decode_id(TreeName::EventIds, &v)
                .map(Some)
                .map_err(TxAbort::store),
            None => Ok(None),
        }
    }

    /// One stored event.
    pub fn get_event(&self, seq: u64) -> Result<Option<EventRecord>, TxAbort> {
        self.get_record(&keys::id(seq))
    }

    /// Records the decision of `entry.rule` on the event `event_seq` (insert or replace).
    pub fn put_journal(&self, event_seq: u64, entry: &JournalRecord) -> Result<(), TxAbort> {
        self.put_record(&keys::journal(event_seq, &entry.rule), entry)
    }

    /// Creates a `Pending` job with a fresh id and lists it as open.
    pub fn insert_job(&self, job: NewJob) -> Result<JobRecord, TxAbort> {
        let record = JobRecord {
            id: self.next_id()?,
            rule: job.rule,
            event_id: job.event_id,
            key: job.key,
            created_at: job.created_at,
            state: JobState::Pending,
            data: job.data,
        };
        self.put_job(&record)?;
        Ok(record)
    }

    /// One stored job.
    pub fn get_job(&self, id: u64) -> Result<Option<JobRecord>, TxAbort> {
        self.get_record(&keys::id(id))
    }

    /// Stores a job and keeps `jobs_open` in step with its state.
    pub fn put_job(&self, job: &JobRecord) -> Result<(), TxAbort> {
        let key = keys::id(job.id);
        self.put_record(&key, job)?;
        let open = self.tree(TreeName::JobsOpen);
        if job.state.is_open() {
            open.insert(&key[..], &[][..])?;
        } else {
            open.remove(&key[..])?;
        }
        Ok(())
    }

    /// Deletes a job and its `jobs_open` entry (an operator dropping it); false if there was none.
    pub fn remove_job(&self, id: u64) -> Result<bool, TxAbort> {
        let key = keys::id(id);
        self.tree(TreeName::JobsOpen).remove(&key[..])?;
        Ok(self.tree(TreeName::Jobs).remove(&key[..])?.is_some())
    }

    /// Dedupe/cooldown/throttle state of `rule` for `key`.
    pub fn get_firing(&self, rule: &str, key: &str) -> Result<Option<FiringRecord>, TxAbort> {
        self.get_record(&keys::firing(rule, key))
    }

    pub fn put_firing(&self, rule: &str, key: &str, firing: &FiringRecord) -> Result<(), TxAbort> {
        self.put_record(&keys::firing(rule, key), firing)
    }

    /// The cron position of a scheduled rule.
    pub fn get_schedule_mark(&self, rule: &str) -> Result<Option<ScheduleMark>, TxAbort> {
        self.get_record(rule.as_bytes())
    }

    pub fn put_schedule_mark(&self, rule: &str, mark: &ScheduleMark) -> Result<(), TxAbort> {
        self.put_record(rule.as_bytes(), mark)
    }

    /// A stored webhook delivery.
    pub fn get_delivery(&self, id: &str) -> Result<Option<DeliveryRecord>, TxAbort> {
        self.get_record(id.as_bytes())
    }

    /// Stores a new delivery; returns false (writing nothing) if its id is already stored.
    pub fn insert_delivery(&self, delivery: &DeliveryRecord) -> Result<bool, TxAbort> {
        if self
            .tree(TreeName::Deliveries)
            .get(delivery.id.as_bytes())?
            .is_some()
        {
            return Ok(false);
        }
        self.put_delivery(delivery)?;
        Ok(true)
    }

    /// Stores a delivery (insert or replace), e.g. to mark it processed.
    pub fn put_delivery(&self, delivery: &DeliveryRecord) -> Result<(), TxAbort> {
        self.put_record(delivery.id.as_bytes(), delivery)
    }

    /// Creates a silence with a fresh id.
    pub fn insert_silence(&self, silence: NewSilence) -> Result<SilenceRecord, TxAbort> {
        let record = SilenceRecord {
            id: self.next_id()?,
            rule: silence.rule,
            key: silence.key,
            until: silence.until,
            reason: silence.reason,
            created_at: silence.created_at,
            created_by: silence.created_by,
            expired: false,
        };
        self.put_silence(&record)?;
        Ok(record)
    }

    pub fn get_silence(&self, id: u64) -> Result<Option<SilenceRecord>, TxAbort> {
        self.get_record(&keys::id(id))
    }

    /// Stores a silence (insert or replace), e.g. to expire it early.
    pub fn put_silence(&self, silence: &SilenceRecord) -> Result<(), TxAbort> {
        self.put_record(&keys::id(silence.id), silence)
    }

    /// A small string value from `meta`.
    pub fn get_meta(&self, key: &str) -> Result<Option<String>, TxAbort> {
        match self.tree(TreeName::Meta).get(key.as_bytes())? {
            Some(v) => Ok(Some(String::from_utf8_lossy(&v).into_owned())),
            None => Ok(None),
        }
    }

    pub fn put_meta(&self, key: &str, value: &str) -> Result<(), TxAbort> {
        self.tree(TreeName::Meta)
            .insert(key.as_bytes(), value.as_bytes())?;
        Ok(())
    }

    /// Removes an event with its `event_ids` and `run_events` entries (retention only).
    pub(crate) fn remove_event(&self, seq: u64) -> Result<bool, TxAbort> {
        let key = keys::id(seq);
        let Some(event) = self.get_record::<EventRecord>(&key)? else {
            return Ok(false);
        };
        self.tree(TreeName::Events).remove(&key[..])?;
        if self.event_seq(&event.id)? == Some(seq) {
            self.tree(TreeName::EventIds).remove(event.id.as_bytes())?;
        }
        if let (Some(org), Some(run)) = (event.org_id, event.run_id) {
            self.tree(TreeName::RunEvents)
                .remove(&keys::run_event(org, run, seq)[..])?;
        }
        Ok(true)
    }

    /// Removes one key of `tree` (retention only).
    pub(crate) fn remove(&self, tree: TreeName, key: &[u8]) -> Result<(), TxAbort> {
        self.tree(tree).remove(key)?;
        Ok(())
    }
}
