//! The executor's test rig: a store in a temp dir, the Codegen simulator, the fake GitHub and a
//! webhook receiver, each behind fault switches, a clock that follows tokio's (paused) time, and
//! helpers to write jobs in the engine's shape and to run, stop and restart the executor.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use chrono::{DateTime, Utc};
use codegen_sentinel::actions::github::{GithubAuth, GithubClient};
use codegen_sentinel::actions::{Notifier, Notifiers};
use codegen_sentinel::api::{CodegenClient, RateBudget};
use codegen_sentinel::clock::Clock;
use codegen_sentinel::config::ExecutorSettings;
use codegen_sentinel::executor::admin;
use codegen_sentinel::executor::{Executor, ExecutorHandle};
use codegen_sentinel::retry::RetryPolicy;
use codegen_sentinel::sim::{SimConfig, Simulator};
use codegen_sentinel::store::{EventRecord, JobRecord, JobState, NewJob, Store, StoreOptions};
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::github_fake::{
    by_path, one_scope, serve, Chaos, FakeGithub, Receiver, Served, TokioClock,
};

pub const CODEGEN_TOKEN: &str = "sk-exec-test";
pub const GITHUB_TOKEN: &str = "ghp-exec-test";
pub const HOOK_SECRET: &str = "audit-secret";
pub const ORG: i64 = 7;
pub const REPO_ID: i64 = 10;
pub const REPO: &str = "acme/widgets";
pub const SANDBOX: i64 = 42;

/// Everything an executor test needs.
pub struct Rig {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub clock: TokioClock,
    pub sim: Simulator,
    pub sim_chaos: Chaos,
    pub github: FakeGithub,
    pub github_chaos: Chaos,
    pub receiver: Receiver,
    pub hook_chaos: Chaos,
    pub feed: broadcast::Sender<Arc<EventRecord>>,
    pub codegen_url: String,
    pub github_url: String,
    pub hook_url: String,
    _served: Vec<Served>,
}

/// The scope a Codegen `Retry-After` applies to: the client's limit class.
pub fn codegen_scope(method: &Method, path: &str) -> String {
    let class = match (method.as_str(), path) {
        ("POST", p) if p.ends_with("/agent/run") => "create",
        ("POST", p) if p.ends_with("/analyze-logs") => "analyze",
        ("GET", p) if p.starts_with("/v1/alpha/") => "logs",
        ("PATCH", _) => "pr_edit",
        _ => "standard",
    };
    class.to_owned()
}

impl Rig {
    pub async fn new() -> Rig {
        let clock = TokioClock::new();
        let sim = Simulator::new(SimConfig::default());
        sim.set_rate_limits(false);
        sim.add_org(ORG, "acme");
        sim.add_user(ORG, 1, "octo");
        sim.add_token(CODEGEN_TOKEN, 1);
        sim.add_repo(ORG, REPO_ID, REPO);
        sim.add_sandbox(ORG, SANDBOX, true);
        let sim_chaos = Chaos::new(codegen_scope, clock.func());
        let github = FakeGithub::new(GITHUB_TOKEN);
        let github_chaos = Chaos::new(one_scope, clock.func());
        let receiver = Receiver::new(Some(HOOK_SECRET));
        let hook_chaos = Chaos::new(by_path, clock.func());
        let served_sim = serve(sim_chaos.wrap(sim.router())).await;
        let served_github = serve(github_chaos.wrap(github.router())).await;
        let served_hook = serve(hook_chaos.wrap(receiver.router())).await;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreOptions::new(dir.path().join("db"))).unwrap();
        let (feed, _) = broadcast::channel(256);
        Rig {
            dir,
            store,
            clock,
            sim,
            sim_chaos,
            github,
            github_chaos,
            receiver,
            hook_chaos,
            feed,
            codegen_url: served_sim.base_url.clone(),
            github_url: served_github.base_url.clone(),
            hook_url: served_hook.base_url.clone(),
            _served: vec![served_sim, served_github, served_hook],
        }
    }

    pub fn codegen(&self) -> CodegenClient {
        CodegenClient::builder(self.codegen_url.clone(), SecretString::from(CODEGEN_TOKEN))
            .budget(Arc::new(RateBudget::unlimited()))
            .retry(RetryPolicy {
                max_attempts: 2,
                base: Duration::from_millis(100),
                cap: Duration::from_secs(1),
            })
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    }

    pub fn github_client(&self) -> GithubClient {
        GithubClient::builder(
            self.github_url.clone(),
            GithubAuth::Token(SecretString::from(GITHUB_TOKEN)),
            Arc::new(self.clock.clone()),
        )
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
    }

    pub fn notifiers(&self) -> Notifiers {
        let url = |path: &str| SecretString::from(format!("{}{path}", self.hook_url));
        Notifiers::new([
            (
                "audit".to_owned(),
                Notifier::webhook(url("/audit"), Some(SecretString::from(HOOK_SECRET)))
                    .timeout(Duration::from_secs(5)),
            ),
            (
                "ops".to_owned(),
                Notifier::slack(url("/slack")).timeout(Duration::from_secs(5)),
            ),
        ])
    }

    pub fn executor(&self, settings: ExecutorSettings) -> Executor {
        Executor::new(
            self.store.clone(),
            self.codegen(),
            Some(self.github_client()),
            self.notifiers(),
            settings,
            Arc::new(self.clock.clone()),
        )
    }

    /// Runs an executor in the background.
    pub fn start(&self, settings: ExecutorSettings) -> Running {
        let executor = self.executor(settings);
        let handle = executor.handle();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(executor.run(self.feed.subscribe(), cancel.clone()));
        Running {
            cancel,
            task,
            handle,
        }
    }

    /// Writes a job the way the rules engine does; returns its id.
    pub fn add_job(&self, rule: &str, key: &str, context: Value, steps: Value) -> u64 {
        let data = json!({
            "version": 1,
            "rules_hash": "test",
            "rule": {"name": rule, "description": null},
            "context": context,
            "steps": steps,
            "progress": {},
        });
        let created_at = self.clock.now();
        self.store
            .transaction(|tx| {
                let job = tx.insert_job(NewJob {
                    rule: rule.to_owned(),
                    event_id: format!("test/{rule}/{key}"),
                    key: key.to_owned(),
                    created_at,
                    data: data.clone(),
                })?;
                Ok(job.id)
            })
            .unwrap()
    }

    pub fn job(&self, id: u64) -> JobRecord {
        self.store.job(id).unwrap().unwrap()
    }

    /// Waits (in tokio time) until no job is open; panics with their summaries after `limit`.
    pub async fn until_settled(&self, limit: Duration) {
        let step = Duration::from_millis(200);
        let mut waited = Duration::ZERO;
        while !self.store.open_job_ids().unwrap().is_empty() {
            if waited >= limit {
                let open: Vec<_> = self
                    .store
                    .open_jobs()
                    .unwrap()
                    .iter()
                    .map(admin::summarize)
                    .collect();
                panic!("jobs still open after {limit:?}: {open:#?}");
            }
            tokio::time::sleep(step).await;
            waited += step;
        }
    }

    /// Waits (in tokio time) until `check` holds; panics after `limit`.
    pub async fn until(&self, limit: Duration, what: &str, check: impl Fn() -> bool) {
        let step = Duration::from_millis(50);
        let mut waited = Duration::ZERO;
        while !check() {
            assert!(waited < limit, "timed out waiting for {what}");
            tokio::time::sleep(step).await;
            waited += step;
        }
    }

    pub fn states(&self) -> Vec<JobState> {
        self.store.jobs().map(|j| j.unwrap().state).collect()
    }
}

/// A running executor.
pub struct Running {
    pub cancel: CancellationToken,
    pub task: JoinHandle<anyhow::Result<()>>,
    pub handle: ExecutorHandle,
}

impl Running {
    /// Stops it gracefully.
    pub async fn stop(self) {
        self.cancel.cancel();
        self.task.await.unwrap().unwrap();
    }

    /// Drops it wherever it is, mid-step included (the in-process stand-in for kill -9).
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Settings with quick retries.
pub fn settings(concurrency: usize) -> ExecutorSettings {
    ExecutorSettings {
        concurrency,
        max_attempts: 5,
        backoff_base: Duration::from_secs(1),
        backoff_cap: Duration::from_secs(30),
        shutdown_grace: Duration::from_secs(5),
    }
}

/// The context of a job fired by a run event.
pub fn run_context(run: Value, pr: Value, at: DateTime<Utc>) -> Value {
    json!({
        "event": {"id": "run/7/1/2/finished", "type": "run.finished", "at": at, "source": "poll",
                  "from": "ACTIVE", "to": run["status"], "action": null},
        "run": run,
        "pr": pr,
        "payload": null,
        "vars": {"default_sandbox_id": SANDBOX},
        "rule": {"name": "test-rule", "description": null},
        "now": at,
        "summary": null,
    })
}

/// A run JSON as the API would show it.
pub fn run_json(id: i64, status: &str) -> Value {
    json!({"id": id, "organization_id": ORG, "status": status, "metadata": null,
           "web_url": format!("https://codegen.com/agent/trace/{id}"), "source_type": "API"})
}
