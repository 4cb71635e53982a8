//! Which open job may run now: each job waits for its due time (a retry backoff, a parked wait's
//! re-check) and for every older open job of the same key, so the jobs of one run or PR run one
//! at a time in creation order. Pure bookkeeping in memory; the store holds the truth.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tokio::time::Instant;

/// One open job as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    /// `None`: the job is ordered with no other (empty key).
    key: Option<String>,
    running: bool,
    /// Not before then; `None` means now.
    due: Option<Instant>,
    /// Parked on this (org, run) until it is terminal.
    parked_on: Option<(i64, i64)>,
    /// Its run changed while a worker had it: due at once when released.
    rewake: bool,
}

/// The open jobs known to the executor.
#[derive(Debug, Default)]
pub struct Schedule {
    slots: BTreeMap<u64, Slot>,
    keys: HashMap<String, BTreeSet<u64>>,
}

impl Schedule {
    pub fn contains(&self, id: u64) -> bool {
        self.slots.contains_key(&id)
    }

    /// Open jobs known.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Jobs being executed now.
    pub fn running(&self) -> usize {
        self.slots.values().filter(|s| s.running).count()
    }

    /// Adds an open job found in the store.
    pub fn insert(
        &mut self,
        id: u64,
        key: &str,
        due: Option<Instant>,
        parked_on: Option<(i64, i64)>,
    ) {
        let key = (!key.is_empty()).then(|| key.to_owned());
        if let Some(key) = &key {
            self.keys.entry(key.clone()).or_default().insert(id);
        }
        self.slots.insert(
            id,
            Slot {
                key,
                running: false,
                due,
                parked_on,
                rewake: false,
            },
        );
    }

    /// Forgets a job (finished, dead or dropped).
    pub fn remove(&mut self, id: u64) {
        let Some(slot) = self.slots.remove(&id) else {
            return;
        };
        if let Some(key) = slot.key {
            if let Some(ids) = self.keys.get_mut(&key) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.keys.remove(&key);
                }
            }
        }
    }

    /// Forgets idle jobs that are no longer open in the store (dropped by an operator).
    pub fn retain_open(&mut self, open: &BTreeSet<u64>) {
        let gone: Vec<u64> = self
            .slots
            .iter()
            .filter(|(id, slot)| !slot.running && !open.contains(id))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.remove(id);
        }
    }

    /// Whether no older open job shares the job's key.
    fn is_head(&self, id: u64, slot: &Slot) -> bool {
        match &slot.key {
            None => true,
            Some(key) => self
                .keys
                .get(key)
                .and_then(|ids| ids.first())
                .is_none_or(|first| *first == id),
        }
    }

    /// Up to `max` jobs that may start now, oldest first; they are marked running.
    pub fn take_ready(&mut self, now: Instant, max: usize) -> Vec<u64> {
        let mut ready = Vec::new();
        if max == 0 {
            return ready;
        }
        for (id, slot) in &self.slots {
            if !slot.running && slot.due.is_none_or(|due| due <= now) && self.is_head(*id, slot) {
                ready.push(*id);
                if ready.len() == max {
                    break;
                }
            }
        }
        for id in &ready {
            if let Some(slot) = self.slots.get_mut(id) {
                slot.running = true;
                slot.due = None;
            }
        }
        ready
    }

    /// A worker stopped with the job still open: it is due again at `due` (None: now),
    /// possibly parked on a run.
    pub fn release(&mut self, id: u64, due: Option<Instant>, parked_on: Option<(i64, i64)>) {
        if let Some(slot) = self.slots.get_mut(&id) {
            slot.running = false;
            slot.due = if std::mem::take(&mut slot.rewake) && parked_on.is_some() {
                None
            } else {
                due
            };
            slot.parked_on = parked_on;
        }
    }

    /// Makes the jobs parked on (org, run) due now; returns how many. A job a worker holds
    /// is woken when released, so a change seen while it was being parked is not lost.
    pub fn wake_run(&mut self, org: i64, run: i64) -> usize {
        let mut woken = 0;
        for slot in self.slots.values_mut() {
            if slot.running {
                slot.rewake = true;
            } else if slot.parked_on == Some((org, run)) {
                slot.due = None;
                woken += 1;
            }
        }
        woken
    }

    /// Makes every parked job due now (events were missed).
    pub fn wake_parked(&mut self) {
        for slot in self.slots.values_mut() {
            if slot.running {
                slot.rewake = true;
            } else if slot.parked_on.is_some() {
                slot.due = None;
            }
        }
    }

    /// The earliest future due time of a job that could then start.
    pub fn next_due(&self, now: Instant) -> Option<Instant> {
        self.slots
            .iter()
            .filter(|(id, slot)| !slot.running && self.is_head(**id, slot))
            .filter_map(|(_, slot)| slot.due.filter(|due| *due > now))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn jobs_of_one_key_run_one_at_a_time_in_order() {
        let now = Instant::now();
        let mut s = Schedule::default();
        s.insert(3, "pr-1", None, None);
        s.insert(1, "pr-1", None, None);
        s.insert(2, "pr-2", None, None);
        s.insert(4, "", None, None);
        s.insert(5, "", None, None);
        assert_eq!(s.take_ready(now, 10), vec![1, 2, 4, 5]);
        assert!(s.take_ready(now, 10).is_empty(), "3 waits for 1");
        s.remove(1);
        assert_eq!(s.take_ready(now, 10), vec![3]);
        assert_eq!(s.running(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn due_times_and_the_concurrency_bound_hold() {
        let now = Instant::now();
        let later = now + Duration::from_secs(5);
        let mut s = Schedule::default();
        s.insert(1, "a", Some(later), None);
        s.insert(2, "a", None, None);
        s.insert(3, "b", None, None);
        s.insert(4, "c", None, None);
        assert_eq!(s.take_ready(now, 1), vec![3]);
        assert_eq!(s.take_ready(now, 5), vec![4], "2 waits behind 1's backoff");
        assert_eq!(s.next_due(now), Some(later));
        assert_eq!(s.take_ready(later, 5), vec![1]);
        s.release(1, Some(later + Duration::from_secs(1)), None);
        assert_eq!(s.next_due(later), Some(later + Duration::from_secs(1)));
    }

    #[tokio::test(start_paused = true)]
    async fn parked_jobs_wake_on_their_run_only() {
        let now = Instant::now();
        let far = now + Duration::from_secs(3600);
        let mut s = Schedule::default();
        s.insert(1, "a", Some(far), Some((7, 10)));
        s.insert(2, "b", Some(far), Some((7, 11)));
        assert!(s.take_ready(now, 5).is_empty());
        assert_eq!(s.wake_run(7, 10), 1);
        assert_eq!(s.take_ready(now, 5), vec![1]);
        s.wake_parked();
        assert_eq!(s.take_ready(now, 5), vec![2]);
        s.wake_run(7, 10);
        s.release(1, Some(far), Some((7, 10)));
        assert_eq!(
            s.take_ready(now, 5),
            vec![1],
            "woken while it was being parked"
        );
        let open = BTreeSet::from([1]);
        s.retain_open(&open);
        assert!(s.contains(1) && s.contains(2), "running jobs are kept");
        s.release(2, None, None);
        s.retain_open(&open);
        assert!(!s.contains(2));
    }
}
