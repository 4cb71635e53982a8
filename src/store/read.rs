//! Reads outside transactions: typed lookups and ordered scans of every tree.
//!
//! Reads are not a snapshot across trees: a record found through an index may be gone (pruned)
//! by the time it is fetched, and such entries are skipped.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};

use super::codec::{self, Record};
use super::error::StoreError;
use super::keys;
use super::records::*;
use super::trees::TreeName;
use super::tx::ensure_outside_tx;
use super::Store;

/// Decoded records of one tree in key order; each item fails alone (a damaged record names its
/// tree and key and the scan goes on).
pub struct Records<R> {
    iter: sled::Iter,
    done: bool,
    _record: PhantomData<fn() -> R>,
}

impl<R: Record> Records<R> {
    fn new(iter: sled::Iter) -> Records<R> {
        Records {
            iter,
            done: false,
            _record: PhantomData,
        }
    }
}

impl<R: Record> Iterator for Records<R> {
    type Item = Result<R, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Err(e) = ensure_outside_tx("scan") {
            self.done = true;
            return Some(Err(e));
        }
        let item = self.iter.next()?;
        Some(match item {
            Ok((key, value)) => codec::decode(&key, &value),
            Err(error) => Err(StoreError::Storage { op: "scan", error }),
        })
    }
}

/// Outcome of [`Store::update_job`].
#[derive(Clone, Debug, PartialEq)]
pub enum JobUpdate {
    /// No job has that id.
    Missing,
    /// The closure declined; this is the job as stored.
    Unchanged(JobRecord),
    /// The closure's record was stored.
    Updated(JobRecord),
}

impl Store {
    fn get<R: Record>(&self, key: &[u8]) -> Result<Option<R>, StoreError> {
        ensure_outside_tx("get")?;
        match self
            .tree(R::TREE)
            .get(key)
            .map_err(StoreError::storage("get"))?
        {
            Some(bytes) => codec::decode(key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn scan<R: Record>(&self, prefix: &[u8]) -> Records<R> {
        Records::new(self.tree(R::TREE).scan_prefix(prefix))
    }

    /// The stored snapshot of one run.
    pub fn get_run(&self, org_id: i64, run_id: i64) -> Result<Option<RunRecord>, StoreError> {
        self.get(&keys::run(org_id, run_id))
    }

    /// Every stored run, by (org, run id). Filter for non-terminal ones as you iterate.
    pub fn runs(&self) -> Records<RunRecord> {
        self.scan(&[])
    }

    /// The runs whose stored status is not terminal, by (org, run id), through the
    /// `runs_active` index: cheap however many finished runs are stored.
    pub fn active_runs(&self) -> impl Iterator<Item = Result<RunRecord, StoreError>> + '_ {
        let mut index = self.tree(TreeName::RunsActive).iter();
        let mut done = false;
        std::iter::from_fn(move || loop {
            if done {
                return None;
            }
            // Checked before touching sled: inside a transaction the next read would deadlock.
            if let Err(e) = ensure_outside_tx("active_runs") {
                done = true;
                return Some(Err(e));
            }
            let found = match index.next()? {
                Ok((key, _)) => keys::decode_run(TreeName::RunsActive, &key)
                    .and_then(|(org, run)| self.get_run(org, run)),
                Err(error) => Err(StoreError::Storage { op: "scan", error }),
            };
            match found {
                Ok(Some(run)) => return Some(Ok(run)),
                // An index entry without its run: nothing to report.
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        })
    }

    /// The stored runs of one organization, by run id.
    pub fn runs_of_org(&self, org_id: i64) -> Records<RunRecord> {
        self.scan(&keys::org(org_id))
    }

    /// Every transition of one run, in seq order.
    pub fn transitions_of_run(
        &self,
        org_id: i64,
        run_id: i64,
    ) -> Result<Vec<TransitionRecord>, StoreError> {
        self.scan(&keys::run(org_id, run_id)).collect()
    }

    /// Transitions of every run (by run, then seq), only those at or after `since` if given.
    /// A full scan: meant for replay, reports and CLI listings.
    pub fn transitions(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> impl Iterator<Item = Result<TransitionRecord, StoreError>> {
        self.scan::<TransitionRecord>(&[])
            .filter(move |t| match (t, since) {
                (Ok(t), Some(since)) => t.at >= since,
                _ => true,
            })
    }

    /// One event by its global seq.
    pub fn event(&self, seq: u64) -> Result<Option<EventRecord>, StoreError> {
        self.get(&keys::id(seq))
    }

    /// One event by its stable id.
    pub fn event_by_id(&self, stable_id: &str) -> Result<Option<EventRecord>, StoreError> {
        ensure_outside_tx("event_by_id")?;
        let ids = self.tree(TreeName::EventIds);
        match ids.get(stable_id).map_err(StoreError::storage("get"))? {
            Some(seq) => self.event(keys::decode_id(TreeName::EventIds, &seq)?),
            None => Ok(None),
        }
    }

    /// Events with a seq greater than `after`, in seq order (pass 0 for all). Seqs follow
    /// allocation, not commit order, so do not use this as a tailing cursor across writers.
    pub fn events_after(&self, after: u64) -> Records<EventRecord> {
        let events = self.tree(TreeName::Events);
        Records::new(match after.checked_add(1) {
            Some(start) => events.range(keys::id(start)..),
            // Nothing comes after the largest seq: an empty range.
            None => events.range(keys::id(after)..keys::id(after)),
        })
    }

    /// Events at or after `since`, in seq order (a full scan).
    pub fn events_since(
        &self,
        since: DateTime<Utc>,
    ) -> impl Iterator<Item = Result<EventRecord, StoreError>> {
        self.events_after(0).filter(move |e| match e {
            Ok(e) => e.at >= since,
            Err(_) => true,
        })
    }

    /// Every event of one run, in seq order.
    pub fn events_of_run(&self, org_id: i64, run_id: i64) -> Result<Vec<EventRecord>, StoreError> {
        ensure_outside_tx("events_of_run")?;
        let mut events = Vec::new();
        for item in self
            .tree(TreeName::RunEvents)
            .scan_prefix(keys::run(org_id, run_id))
        {
            let (key, _) = item.map_err(StoreError::storage("scan"))?;
            let (_, _, seq) = keys::decode_run_event(&key)?;
            if let Some(event) = self.event(seq)? {
                events.push(event);
            }
        }
        Ok(events)
    }

    /// The decisions recorded for one event, by rule name.
    pub fn journal_of_event(&self, event_seq: u64) -> Result<Vec<JournalRecord>, StoreError> {
        self.scan(&keys::id(event_seq)).collect()
    }

    /// One job.
    pub fn job(&self, id: u64) -> Result<Option<JobRecord>, StoreError> {
        self.get(&keys::id(id))
    }

    /// Every job, finished ones included (dead letters are the `Dead` ones), by id.
    pub fn jobs(&self) -> Records<JobRecord> {
        self.scan(&[])
    }

    /// Jobs that are not finished (`Pending`, `Running`, `Waiting`), by id.
    pub fn open_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        ensure_outside_tx("open_jobs")?;
        let mut jobs = Vec::new();
        for item in self.tree(TreeName::JobsOpen).iter() {
            let (key, _) = item.map_err(StoreError::storage("scan"))?;
            if let Some(job) = self.job(keys::decode_id(TreeName::JobsOpen, &key)?)? {
                jobs.push(job);
            }
        }
        Ok(jobs)
    }

    /// Ids of the jobs that are not finished, in id order: a scan of the `jobs_open` keys only,
    /// cheap enough to repeat whenever new jobs may have been written.
    pub fn open_job_ids(&self) -> Result<Vec<u64>, StoreError> {
        ensure_outside_tx("open_job_ids")?;
        let mut ids = Vec::new();
        for item in self.tree(TreeName::JobsOpen).iter().keys() {
            let key = item.map_err(StoreError::storage("scan"))?;
            ids.push(keys::decode_id(TreeName::JobsOpen, &key)?);
        }
        Ok(ids)
    }

    /// Atomically replaces job `id` by `f(current)`; `f` sees the latest stored record and
    /// returns None to leave it as is (say, it was dropped meanwhile). `f` may run more than once.
    pub fn update_job<F>(&self, id: u64, f: F) -> Result<JobUpdate, StoreError>
    where
        F: Fn(&JobRecord) -> Option<JobRecord>,
    {
        self.transaction(|tx| {
            let Some(current) = tx.get_job(id)? else {
                return Ok(JobUpdate::Missing);
            };
            match f(&current) {
                Some(mut next) => {
                    next.id = id;
                    tx.put_job(&next)?;
                    Ok(JobUpdate::Updated(next))
                }
                None => Ok(JobUpdate::Unchanged(current)),
            }
        })
    }

    /// Every silence, expired ones included, by id.
    pub fn silences(&self) -> Records<SilenceRecord> {
        self.scan(&[])
    }

    /// Silences that mute firings at `at`.
    pub fn active_silences(&self, at: DateTime<Utc>) -> Result<Vec<SilenceRecord>, StoreError> {
        let mut active = Vec::new();
        for silence in self.silences() {
            let silence = silence?;
            if silence.is_active_at(at) {
                active.push(silence);
            }
        }
        Ok(active)
    }

    /// One stored webhook delivery.
    pub fn delivery(&self, id: &str) -> Result<Option<DeliveryRecord>, StoreError> {
        self.get(id.as_bytes())
    }

    /// Every stored delivery, by delivery id.
    pub fn deliveries(&self) -> Records<DeliveryRecord> {
        self.scan(&[])
    }

    /// Dedupe/cooldown/throttle state of `rule` for `key`.
    pub fn firing(&self, rule: &str, key: &str) -> Result<Option<FiringRecord>, StoreError> {
        self.get(&keys::firing(rule, key))
    }

    /// The cron position of a scheduled rule.
    pub fn schedule_mark(&self, rule: &str) -> Result<Option<ScheduleMark>, StoreError> {
        self.get(rule.as_bytes())
    }

    /// A small string value from `meta`.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        ensure_outside_tx("meta")?;
        let value = self
            .tree(TreeName::Meta)
            .get(key)
            .map_err(StoreError::storage("get"))?;
        Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}
