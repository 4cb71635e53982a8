//! The durable job executor: runs the jobs fired rules left in the store (the outbox), a
//! bounded number at once, the jobs of one key one at a time in order, each step recorded before
//! and after its effect so a restart resumes where it stopped (see [`worker`]).
//!
//! The loop learns of new jobs from the event feed (jobs are written in the transaction that
//! recorded their event, and the feed carries events after they are flushed) and from
//! [`ExecutorHandle::wake`]. Jobs waiting for a retry or for a run (`codegen.wait_for_run`) hold
//! no worker: the loop keeps their due time and wakes a parked job when its run's next event
//! arrives.
//!
//! Whoever wants to watch can ask for a [`StepReport`] after each step outcome is saved
//! ([`Executor::with_step_feed`]).

pub mod admin;
pub mod job;
pub mod report;
pub mod schedule;
pub mod wait;
pub mod worker;

pub use report::{StepOutcome, StepReport};

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::actions::{Actions, GithubClient, Notifiers};
use crate::api::CodegenClient;
use crate::clock::Clock;
use crate::config::ExecutorSettings;
use crate::retry::RetryPolicy;
use crate::store::{EventRecord, JobRecord, JobState, Store, StoreError};
use job::Progress;
use schedule::Schedule;
use worker::{Outcome, Shared, STORE_ERROR_BACKOFF};

/// The `meta` key holding this store's executor id (part of every idempotency key, so keys
/// never repeat across stores even though job ids do).
const INSTANCE_KEY: &str = "executor_instance";

/// Wakes the executor when jobs were written outside the event feed (webhooks, the CLI).
#[derive(Debug, Clone, Default)]
pub struct ExecutorHandle {
    wake: Arc<Notify>,
}

impl ExecutorHandle {
    /// Asks the executor to look for new open jobs.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// The executor; build it with [`Executor::new`], then `run` it.
pub struct Executor {
    store: Store,
    actions: Actions,
    settings: ExecutorSettings,
    clock: Arc<dyn Clock>,
    handle: ExecutorHandle,
    step_feed: Option<broadcast::Sender<StepReport>>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Executor {
    /// An executor over `store`'s jobs, acting through the Codegen client, GitHub (when
    /// configured) and the notifiers.
    pub fn new(
        store: Store,
        client: CodegenClient,
        github: Option<GithubClient>,
        notifiers: Notifiers,
        settings: ExecutorSettings,
        clock: Arc<dyn Clock>,
    ) -> Executor {
        Executor {
            store,
            actions: Actions {
                codegen: client,
                github,
                notifiers,
            },
            settings,
            clock,
            handle: ExecutorHandle::default(),
            step_feed: None,
        }
    }

    /// Reports each step's outcome on `feed` once it is saved. Reports are only made while the
    /// feed has receivers; they change nothing the executor does or records.
    pub fn with_step_feed(mut self, feed: broadcast::Sender<StepReport>) -> Executor {
        self.step_feed = Some(feed);
        self
    }

    /// A handle to wake the executor once `run` owns it.
    pub fn handle(&self) -> ExecutorHandle {
        self.handle.clone()
    }

    /// Asks the executor to look for new open jobs.
    pub fn wake(&self) {
        self.handle.wake();
    }

    /// The default retry policy of steps.
    fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.settings.max_attempts.max(1),
            base: self.settings.backoff_base,
            cap: self.settings.backoff_cap,
        }
    }

    /// Runs jobs until `cancel`; then lets in-flight steps finish for `shutdown_grace`, aborts
    /// the rest (they resume on the next start) and flushes the store. Fails only on a store
    /// error the loop cannot work around.
    pub async fn run(
        self,
        mut feed: broadcast::Receiver<Arc<EventRecord>>,
        cancel: CancellationToken,
    ) -> anyhow::Result<()> {
        let instance = instance_id(&self.store).context("reading the executor id")?;
        let shared = Arc::new(Shared {
            store: self.store.clone(),
            actions: self.actions.clone(),
            clock: self.clock.clone(),
            env: crate::template::environment(),
            policy: self.policy(),
            instance,
            cancel: cancel.clone(),
            step_feed: self.step_feed.clone(),
        });
        let mut pool = Pool {
            shared,
            schedule: Schedule::default(),
            workers: JoinSet::new(),
            tasks: HashMap::new(),
            concurrency: self.settings.concurrency.max(1),
        };
        let mut sync = true;
        let mut feed_open = true;
        tracing::info!(concurrency = pool.concurrency, "Executor started");
        loop {
            if std::mem::take(&mut sync) {
                pool.sync().context("loading open jobs")?;
            }
            pool.dispatch();
            let next = pool.schedule.next_due(Instant::now());
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                Some(joined) = pool.workers.join_next_with_id(), if !pool.workers.is_empty() => {
                    pool.settle(joined);
                }
                _ = self.handle.wake.notified() => sync = true,
                received = feed.recv(), if feed_open => {
                    feed_open = pool.take_events(received, &mut feed);
                    sync = true;
                }
                _ = sleep_until(next), if next.is_some() => {}
            }
        }
        pool.drain(self.settings.shutdown_grace).await;
        pool.shared
            .store
            .flush()
            .await
            .context("flushing the store")?;
        tracing::info!("Executor stopped");
        Ok(())
    }
}

/// The loop's state: known open jobs and the workers running some of them.
struct Pool {
    shared: Arc<Shared>,
    schedule: Schedule,
    workers: JoinSet<Result<Outcome, StoreError>>,
    tasks: HashMap<tokio::task::Id, u64>,
    concurrency: usize,
}

impl Pool {
    /// Adds open jobs the loop does not know yet; forgets idle ones no longer open.
    fn sync(&mut self) -> Result<(), StoreError> {
        let open: BTreeSet<u64> = self.shared.store.open_job_ids()?.into_iter().collect();
        self.schedule.retain_open(&open);
        for id in open {
            if self.schedule.contains(id) {
                continue;
            }
            if let Some(job) = self.shared.store.job(id)? {
                let (due, parked) = self.timing(&job);
                self.schedule.insert(id, &job.key, due, parked);
            }
        }
        Ok(())
    }

    /// When a job found in the store is due. A parked job looks once at once: its run may
    /// have changed while nobody listened.
    fn timing(&self, job: &JobRecord) -> (Option<Instant>, Option<(i64, i64)>) {
        let progress = Progress::of(&job.data).unwrap_or_default();
        let parked = progress.waiting_for.map(|w| (w.org, w.run));
        let due = match (job.state, progress.next_attempt_at) {
            (JobState::Waiting, Some(at)) if parked.is_none() => Some(self.instant_for(at)),
            _ => None,
        };
        (due, parked)
    }

    /// The tokio instant of a wall-clock time (the executor's clock can be a test's).
    fn instant_for(&self, at: DateTime<Utc>) -> Instant {
        let wait = (at - self.shared.clock.now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        Instant::now() + wait
    }

    /// Starts workers for due jobs up to the concurrency bound.
    fn dispatch(&mut self) {
        if self.shared.cancel.is_cancelled() {
            return;
        }
        let free = self.concurrency.saturating_sub(self.workers.len());
        for id in self.schedule.take_ready(Instant::now(), free) {
            let shared = self.shared.clone();
            let handle = self.workers.spawn(async move { shared.drive(id).await });
            self.tasks.insert(handle.id(), id);
        }
    }

    /// Applies where a worker left its job.
    fn settle(
        &mut self,
        joined: Result<(tokio::task::Id, Result<Outcome, StoreError>), tokio::task::JoinError>,
    ) {
        let (task, result) = match joined {
            Ok((task, result)) => (task, result),
            Err(e) => {
                let id = self.tasks.remove(&e.id());
                tracing::error!(job = ?id, error = %e, "A job worker panicked; retrying the job later");
                if let Some(id) = id {
                    let due = Instant::now() + STORE_ERROR_BACKOFF;
                    self.schedule.release(id, Some(due), None);
                }
                return;
            }
        };
        let Some(id) = self.tasks.remove(&task) else {
            return;
        };
        match result {
            Ok(Outcome::Closed) => self.schedule.remove(id),
            Ok(Outcome::RetryAt(at)) => {
                let due = self.instant_for(at);
                self.schedule.release(id, Some(due), None);
            }
            Ok(Outcome::Parked {
                org,
                run,
                recheck_at,
            }) => {
                let due = self.instant_for(recheck_at);
                self.schedule.release(id, Some(due), Some((org, run)));
            }
            Ok(Outcome::Stopped) => self.schedule.release(id, None, None),
            Err(e) => {
                tracing::error!(job = id, error = %e, "Store failure while running a job; retrying it later");
                let due = Instant::now() + STORE_ERROR_BACKOFF;
                self.schedule.release(id, Some(due), None);
            }
        }
    }

    /// Takes one received event and every other one already queued; parked jobs of their runs
    /// become due. Returns false once the feed is closed.
    fn take_events(
        &mut self,
        first: Result<Arc<EventRecord>, broadcast::error::RecvError>,
        feed: &mut broadcast::Receiver<Arc<EventRecord>>,
    ) -> bool {
        use broadcast::error::{RecvError, TryRecvError};
        let mut next = match first {
            Ok(event) => Some(event),
            Err(RecvError::Closed) => return false,
            Err(RecvError::Lagged(missed)) => {
                tracing::debug!(
                    missed,
                    "Event feed overflowed; re-checking every parked job"
                );
                self.schedule.wake_parked();
                None
            }
        };
        loop {
            if let Some(event) = next.take() {
                if let (Some(org), Some(run)) = (event.org_id, event.run_id) {
                    self.schedule.wake_run(org, run);
                }
            }
            match feed.try_recv() {
                Ok(event) => next = Some(event),
                Err(TryRecvError::Lagged(_)) => self.schedule.wake_parked(),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Closed) => return false,
            }
        }
    }

    /// Lets in-flight workers reach a step boundary for up to `grace`, then aborts the rest.
    async fn drain(&mut self, grace: Duration) {
        if self.workers.is_empty() {
            return;
        }
        tracing::info!(
            in_flight = self.workers.len(),
            "Executor stopping; letting in-flight steps finish"
        );
        let deadline = tokio::time::sleep(grace);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                joined = self.workers.join_next_with_id() => match joined {
                    Some(joined) => self.settle(joined),
                    None => return,
                },
                _ = &mut deadline => {
                    tracing::warn!(left = self.workers.len(), "Shutdown grace over; aborting steps (they resume on the next start)");
                    self.workers.abort_all();
                    while self.workers.join_next().await.is_some() {}
                    return;
                }
            }
        }
    }
}

/// Sleeps until `at` (the caller only polls this when it is set).
async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

/// This store's executor id: created once, random, kept in `meta`.
fn instance_id(store: &Store) -> Result<String, StoreError> {
    let fresh = format!("{:08x}", rand::random::<u32>());
    store.transaction(|tx| {
        if let Some(id) = tx.get_meta(INSTANCE_KEY)? {
            return Ok(id);
        }
        tx.put_meta(INSTANCE_KEY, &fresh)?;
        Ok(fresh.clone())
    })
}
