//! Where the store commands (`explain`, `state`, `jobs`, `silence`) read and write: the store itself
//! when no daemon runs, or the running daemon's admin socket when it holds the store. Both give
//! the same answers; the commands do not care which.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{open_store, Failure};
use crate::admin::{self, CallError};
use crate::config::Settings;
use crate::engine::explain::{explain_run, ExplainedEvent};
use crate::engine::replay::{replay, Replayed};
use crate::executor::admin::{self as jobs, AdminError};
use crate::rules::compile::read_sources;
use crate::rules::RuleSet;
use crate::store::{
    JobRecord, NewSilence, RunRecord, SilenceRecord, Store, StoreError, TransitionRecord,
};

/// How long the running daemon has to answer.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the running daemon has to replay history with candidate rules.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(600);

/// The store, or the daemon holding it.
pub(super) enum Target {
    Store(Store),
    Daemon(PathBuf),
}

impl Target {
    /// Opens the store the settings name, or, when a running daemon holds it, its admin socket
    /// (a note on stderr says so).
    pub(super) fn open(settings: &Settings) -> Result<Target, Failure> {
        match open_store(settings) {
            Ok(store) => Ok(Target::Store(store)),
            Err(Failure::Runtime(error)) if held_by_a_daemon(&error) => {
                let socket = admin::socket_path(&settings.store.path);
                eprintln!(
                    "note: the store is in use by the running daemon; asking it on {}",
                    socket.display()
                );
                Ok(Target::Daemon(socket))
            }
            Err(other) => Err(other),
        }
    }

    pub(super) async fn explain(
        &self,
        orgs: &[i64],
        one_org: Option<i64>,
        run_id: i64,
    ) -> Result<Vec<ExplainedEvent>, Failure> {
        match self {
            Target::Store(store) => {
                Ok(explain_run(store, orgs, run_id).context("reading the store")?)
            }
            Target::Daemon(socket) => {
                let mut uri = format!("/explain/{run_id}");
                if let Some(org) = one_org {
                    uri.push_str(&format!("?org={org}"));
                }
                self.answer(admin::get_json(socket, &uri, DAEMON_TIMEOUT).await)
            }
        }
    }

    pub(super) async fn runs(&self, org: Option<i64>) -> Result<Vec<RunRecord>, Failure> {
        match self {
            Target::Store(store) => Ok(admin::runs(store, org).context("reading runs")?),
            Target::Daemon(socket) => {
                let uri = match org {
                    Some(org) => format!("/state/runs?org={org}"),
                    None => "/state/runs".to_owned(),
                };
                self.answer(admin::get_json(socket, &uri, DAEMON_TIMEOUT).await)
            }
        }
    }

    pub(super) async fn transitions(
        &self,
        run: Option<i64>,
        org: Option<i64>,
    ) -> Result<Vec<TransitionRecord>, Failure> {
        match self {
            Target::Store(store) => {
                Ok(admin::transitions(store, run, org).context("reading transitions")?)
            }
            Target::Daemon(socket) => {
                let mut query: Vec<String> = Vec::new();
                query.extend(run.map(|r| format!("run={r}")));
                query.extend(org.map(|o| format!("org={o}")));
                let uri = format!("/state/transitions?{}", query.join("&"));
                self.answer(admin::get_json(socket, &uri, DAEMON_TIMEOUT).await)
            }
        }
    }

    /// Open jobs, or the dead letters.
    pub(super) async fn jobs(&self, dead: bool) -> Result<Vec<JobRecord>, Failure> {
        match self {
            Target::Store(store) => Ok(jobs::list(store, dead).context("reading jobs")?),
            Target::Daemon(socket) => {
                let uri = format!("/jobs?dead={dead}");
                self.answer(admin::get_json(socket, &uri, DAEMON_TIMEOUT).await)
            }
        }
    }

    pub(super) async fn job(&self, id: u64) -> Result<Option<JobRecord>, Failure> {
        match self {
            Target::Store(store) => Ok(store.job(id).context("reading the job")?),
            Target::Daemon(socket) => {
                let uri = format!("/jobs/{id}");
                match admin::get_json(socket, &uri, DAEMON_TIMEOUT).await {
                    Err(CallError::Refused { status: 404, .. }) => Ok(None),
                    other => self.answer(other).map(Some),
                }
            }
        }
    }

    /// Sends a dead letter back to the queue.
    pub(super) async fn retry(&self, id: u64) -> Result<JobRecord, Failure> {
        self.change_job(id, "retry", jobs::retry).await
    }

    pub(super) async fn drop_job(&self, id: u64) -> Result<JobRecord, Failure> {
        self.change_job(id, "drop", jobs::drop_job).await
    }

    /// Job `id` changed by `change` on the store (made durable), or by the daemon's
    /// `/jobs/{id}/{verb}`.
    async fn change_job(
        &self,
        id: u64,
        verb: &str,
        change: fn(&Store, u64) -> Result<JobRecord, AdminError>,
    ) -> Result<JobRecord, Failure> {
        match self {
            Target::Store(store) => {
                let job = change(store, id).map_err(job_failure)?;
                flush(store).await?;
                Ok(job)
            }
            Target::Daemon(socket) => {
                let uri = format!("/jobs/{id}/{verb}");
                self.answer(admin::post_json(socket, &uri, &(), DAEMON_TIMEOUT).await)
            }
        }
    }

    pub(super) async fn silences(&self) -> Result<Vec<SilenceRecord>, Failure> {
        match self {
            Target::Store(store) => Ok(store
                .silences()
                .collect::<Result<Vec<_>, _>>()
                .context("reading silences")?),
            Target::Daemon(socket) => {
                self.answer(admin::get_json(socket, "/silences", DAEMON_TIMEOUT).await)
            }
        }
    }

    pub(super) async fn add_silence(&self, silence: NewSilence) -> Result<SilenceRecord, Failure> {
        match self {
            Target::Store(store) => Ok(admin::add_silence_to(store, silence)
                .await
                .context("recording the silence")?),
            Target::Daemon(socket) => {
                let answer = admin::post_json(socket, "/silences", &silence, DAEMON_TIMEOUT).await;
                self.answer(answer)
            }
        }
    }

    /// None when there is no such silence.
    pub(super) async fn expire_silence(&self, id: u64) -> Result<Option<SilenceRecord>, Failure> {
        match self {
            Target::Store(store) => Ok(admin::expire_silence_in(store, id)
                .await
                .context("expiring the silence")?),
            Target::Daemon(socket) => {
                let uri = format!("/silences/{id}/expire");
                match admin::post_json(socket, &uri, &(), DAEMON_TIMEOUT).await {
                    Err(CallError::Refused { status: 404, .. }) => Ok(None),
                    other => self.answer(other).map(Some),
                }
            }
        }
    }

    /// The stored events since `since` re-evaluated with the candidate rules `set`, compiled
    /// from `paths` (the daemon compiles the same files' text with its own config).
    pub(super) async fn replay(
        &self,
        set: &RuleSet,
        paths: &[PathBuf],
        vars: &Map<String, Value>,
        since: DateTime<Utc>,
    ) -> Result<Replayed, Failure> {
        match self {
            Target::Store(store) => {
                Ok(replay(store, set, vars, since).context("replaying stored events")?)
            }
            Target::Daemon(socket) => {
                let request = admin::ReplayRequest {
                    since,
                    sources: read_sources(paths),
                };
                // Replaying a long history takes longer than the other commands take to answer.
                let answer = admin::post_json(socket, "/replay", &request, REPLAY_TIMEOUT).await;
                self.answer(answer)
            }
        }
    }

    /// A refusal is the user's to fix (exit 2); no answer is a runtime failure naming the socket.
    fn answer<T>(&self, answer: Result<T, CallError>) -> Result<T, Failure> {
        answer.map_err(|error| match error {
            CallError::Refused { message, .. } => Failure::Usage(message),
            CallError::Failed(error) => {
                let socket = match self {
                    Target::Daemon(socket) => socket.display().to_string(),
                    Target::Store(_) => String::new(),
                };
                Failure::Runtime(anyhow::anyhow!(
                    "the store is in use and the daemon did not answer on {socket}: {error:#}"
                ))
            }
        })
    }
}

/// Whether opening the store failed because another process (the daemon) holds it.
fn held_by_a_daemon(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| matches!(cause.downcast_ref(), Some(StoreError::Locked { .. })))
}

fn job_failure(err: AdminError) -> Failure {
    match err {
        AdminError::NotFound(_) | AdminError::NotDead { .. } => Failure::Usage(err.to_string()),
        AdminError::Store(e) => Failure::Runtime(anyhow::Error::new(e).context("updating the job")),
    }
}

async fn flush(store: &Store) -> Result<(), Failure> {
    store.flush().await.context("flushing the store")?;
    Ok(())
}
