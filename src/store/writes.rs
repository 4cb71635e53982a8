//! The typed writes and reads of one transaction: [`Tx`] and the inputs of its inserts.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sled::transaction::TransactionalTree;

use super::codec::{self, Record};
use super::error::StoreError;
use super::keys;
use super::raw_event::{self, Payload, RawEvent};
use super::records::*;
use super::trees::TreeName;
use super::tx::TxAbort;

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

impl NewEvent {
    /// The stored event this becomes under `seq`.
    pub fn into_record(self, seq: u64) -> EventRecord {
        EventRecord {
            seq,
            id: self.id,
            kind: self.kind,
            at: self.at,
            source: self.source,
            org_id: self.org_id,
            run_id: self.run_id,
            data: self.data,
        }
    }
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
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
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

impl<'a> Tx<'a> {
    pub(super) fn new(view: &'a [TransactionalTree]) -> Tx<'a> {
        Tx { view }
    }
}

impl Tx<'_> {
    pub(super) fn tree(&self, name: TreeName) -> &TransactionalTree {
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
            .map_err(TxAbort::storage)?;
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

    /// Stores the snapshot of a run (insert or replace) and keeps `runs_active` in step with its
    /// status. Read the run in the same transaction: a record whose `last_seq` is behind the
    /// stored one is refused, so a stale copy can never reuse a transition seq.
    pub fn put_run(&self, run: &RunRecord) -> Result<(), TxAbort> {
        let key = keys::run(run.org_id, run.run_id);
        if let Some(stored) = self.get_record::<RunRecord>(&key)? {
            if run.last_seq < stored.last_seq {
                return Err(Self::invariant(
                    TreeName::Runs,
                    &key,
                    "run record is stale (last_seq behind the stored one)",
                ));
            }
        }
        self.put_record(&key, run)?;
        let active = self.tree(TreeName::RunsActive);
        if run.is_terminal() {
            active.remove(&key[..])?;
        } else {
            active.insert(&key[..], &[][..])?;
        }
        self.index_run_prs(run)
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
        let Some(seq) = self.claim_event(&event)? else {
            return Ok(None);
        };
        self.put_record(&keys::id(seq), &event.into_record(seq))?;
        Ok(Some(seq))
    }

    /// [`Tx::insert_event`] for an event whose `data.payload` is `payload`'s JSON text, stored
    /// verbatim (any `payload` entry of `event.data` is left out): a webhook body written once,
    /// without re-serializing it, and compressed before the transaction. The caller has checked
    /// that the text is JSON (as strictly as a parse into a `Value`: reads parse it so).
    /// `event.data` must be an object.
    pub fn insert_event_with_payload(
        &self,
        event: &NewEvent,
        payload: &Payload,
    ) -> Result<Option<u64>, TxAbort> {
        let empty = serde_json::Map::new();
        let data = match &event.data {
            Value::Object(map) => map,
            Value::Null => &empty,
            _ => {
                return Err(Tx::invariant(
                    TreeName::Events,
                    event.id.as_bytes(),
                    "event data with a raw payload must be an object",
                ))
            }
        };
        let Some(seq) = self.claim_event(event)? else {
            return Ok(None);
        };
        let bytes = raw_event::encode(RawEvent {
            seq,
            id: &event.id,
            kind: &event.kind,
            at: event.at,
            source: event.source,
            org_id: event.org_id,
            run_id: event.run_id,
            data,
            payload,
        })
        .map_err(|error| {
            TxAbort::store(StoreError::Encode {
                tree: TreeName::Events.as_str(),
                error,
            })
        })?;
        self.tree(TreeName::Events)
            .insert(&keys::id(seq)[..], bytes)?;
        Ok(Some(seq))
    }

    /// A new seq for `event` with its indexes written, or None when its stable id is taken.
    fn claim_event(&self, event: &NewEvent) -> Result<Option<u64>, TxAbort> {
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
    /// The decision of `rule` on the event `event_seq`, if one is recorded.
    pub fn get_journal(
        &self,
        event_seq: u64,
        rule: &str,
    ) -> Result<Option<JournalRecord>, TxAbort> {
        self.get_record(&keys::journal(event_seq, rule))
    }

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
        self.put_record(&keys::id(silence.id), silence)?;
        self.index_silence(silence)
    }

    /// The silences of `rule` that are not expired by hand (their `until` may be past): what
    /// the rules engine checks, inside the event's transaction, without scanning the tree.
    pub fn silences_of_rule(&self, rule: &str) -> Result<Vec<SilenceRecord>, TxAbort> {
        let mut silences = Vec::new();
        for id in self.silence_ids(rule)? {
            if let Some(silence) = self.get_silence(id)? {
                silences.push(silence);
            }
        }
        Ok(silences)
    }

    fn silence_ids(&self, rule: &str) -> Result<Vec<u64>, TxAbort> {
        let Some(text) = self.get_meta(&silence_index_key(rule))? else {
            return Ok(Vec::new());
        };
        // The index is ours; an unreadable one is treated as empty and rebuilt by the next write.
        Ok(serde_json::from_str(&text).unwrap_or_default())
    }

    /// Keeps the per-rule index of live silences in step: expired ones (by hand, or whose end
    /// is before this one's creation) leave it.
    fn index_silence(&self, silence: &SilenceRecord) -> Result<(), TxAbort> {
        let mut live = Vec::new();
        for id in self.silence_ids(&silence.rule)? {
            if id == silence.id {
                continue;
            }
            if let Some(other) = self.get_silence(id)? {
                if !other.expired && other.until > silence.created_at {
                    live.push(id);
                }
            }
        }
        if !silence.expired {
            live.push(silence.id);
        }
        let text = serde_json::to_string(&live).unwrap_or_else(|_| "[]".to_owned());
        self.put_meta(&silence_index_key(&silence.rule), &text)
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

/// The `meta` key listing the live silence ids of a rule.
fn silence_index_key(rule: &str) -> String {
    format!("silences/of_rule/{rule}")
}
