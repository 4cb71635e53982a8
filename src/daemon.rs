//! The daemon: the store, the shared Codegen client and one poller per organization, every loop
//! under one cancellation token.
//!
//! Shutdown: the token is cancelled (first SIGTERM/SIGINT), loops stop taking new work, the store
//! is flushed, and `run` returns. A loop that ends while it should still be running ends the
//! daemon with an error, so the supervisor (systemd, Kubernetes) restarts it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::actions::{GithubClient, Notifiers};
use crate::api::{CodegenClient, OrgId, RateBudget};
use crate::clock::{Clock, SystemClock};
use crate::config::{Secrets, Settings};
use crate::engine::Engine;
use crate::events::EventSink;
use crate::executor::{Executor, StepReport};
use crate::rules::reload::RuleSource;
use crate::rules::Rules;
use crate::server::AppState;
use crate::sources::poller::{Poller, PollerConfig, PollerHealth};
use crate::sources::webhook::Webhooks;
use crate::store::{EventRecord, RetentionPolicy, Store, StoreOptions};

/// How many events the live feed buffers for slow listeners.
const FEED_CAPACITY: usize = 1024;
/// How many step reports the step feed buffers for slow listeners.
const STEP_FEED_CAPACITY: usize = 1024;

/// Opens the store the settings describe.
pub fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let options = StoreOptions {
        path: settings.store.path.clone(),
        cache_capacity: settings.store.cache_size,
        flush_every: Some(settings.store.flush_every),
    };
    Store::open(options).with_context(|| {
        format!(
            "could not open the store at {}",
            settings.store.path.display()
        )
    })
}

/// Everything a running daemon shares between its loops.
pub struct Daemon {
    pub settings: Settings,
    pub store: Store,
    pub client: CodegenClient,
    pub clock: Arc<dyn Clock>,
    pub health: Arc<PollerHealth>,
    pub feed: broadcast::Sender<Arc<EventRecord>>,
    /// Each step's outcome, once saved (the executor reports only while someone subscribes).
    pub step_feed: broadcast::Sender<StepReport>,
    pub rules: Arc<Rules>,
    secrets: Secrets,
    metrics: PrometheusHandle,
    /// Taken by `run`.
    executor: Option<Executor>,
    sink: Arc<dyn EventSink>,
}

impl Daemon {
    /// Resolves secrets, loads the rules, opens the store and builds the client. Fails fast on
    /// anything missing.
    pub fn start(settings: Settings) -> anyhow::Result<Daemon> {
        let secrets = settings.resolve_secrets().map_err(|diagnostics| {
            let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
            anyhow::anyhow!(lines.join("\n"))
        })?;
        // Installed before any loop runs, so no early counter is lost.
        let metrics = crate::metrics::install();
        let token = secrets.codegen_token.clone();
        let client = CodegenClient::builder(settings.codegen_base_url(), token)
            .budget(Arc::new(RateBudget::published()))
            .timeout(settings.codegen.request_timeout)
            .build()?;
        let rules = Rules::load(RuleSource::from_settings(&settings)).map_err(|diagnostics| {
            let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("the rules do not load:\n{}", lines.join("\n"))
        })?;
        let rules = Arc::new(rules);
        let store = open_store(&settings)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let engine = Engine::new(
            store.clone(),
            rules.shared(),
            settings.vars.clone(),
            clock.clone(),
        );
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        let github = match (&settings.github, &secrets.github) {
            (Some(config), Some(github_secrets)) => {
                GithubClient::from_config(config, github_secrets, clock.clone())
                    .context("could not set up the GitHub client")?
            }
            _ => None,
        };
        let notifiers = Notifiers::from_config(&settings.notifiers, &secrets.notifiers);
        let (step_feed, _) = broadcast::channel(STEP_FEED_CAPACITY);
        let executor = Executor::new(
            store.clone(),
            client.clone(),
            github,
            notifiers,
            settings.executor.clone(),
            clock.clone(),
        )
        .with_step_feed(step_feed.clone());
        Ok(Daemon {
            settings,
            secrets,
            store,
            client,
            clock,
            health: Arc::new(PollerHealth::default()),
            feed,
            step_feed,
            rules,
            metrics,
            executor: Some(executor),
            sink: Arc::new(engine),
        })
    }

    fn poller(&self, org: u64) -> anyhow::Result<Poller> {
        let codegen = &self.settings.codegen;
        let config = PollerConfig {
            org: OrgId(i64::try_from(org).context("org id out of range")?),
            interval: codegen.poll_interval,
            stall_after: codegen.stall_after,
            deep_resync: codegen.deep_resync,
            backfill: codegen.backfill,
        };
        let poller = Poller::new(
            config,
            self.client.clone(),
            self.store.clone(),
            self.clock.clone(),
            self.sink.clone(),
        )?;
        Ok(poller
            .with_health(self.health.clone())
            .with_feed(self.feed.clone()))
    }

    /// The HTTP surface: webhooks, health, readiness, metrics, status.
    fn http_app(&self) -> axum::Router {
        let secrets = self
            .secrets
            .github
            .as_ref()
            .map(|g| g.webhook_secrets.clone())
            .unwrap_or_default();
        let webhooks = Webhooks::new(
            self.store.clone(),
            self.sink.clone(),
            &secrets,
            self.settings.server.max_body,
        )
        .with_clock(self.clock.clone())
        .with_feed(self.feed.clone());
        let rules = self.rules.clone();
        let rules_status = self.rules.clone();
        let state = AppState::new(
            self.store.clone(),
            Arc::new(webhooks),
            self.health.clone(),
            self.settings.codegen.poll_interval,
        )
        .with_orgs(self.settings.org_ids().to_vec())
        .with_rules_hash(move || Some(rules.status().hash))
        .with_rules_status(move || {
            serde_json::to_value(rules_status.status()).unwrap_or(serde_json::Value::Null)
        })
        .with_rate_budget(self.client.budget().clone())
        .with_clock(self.clock.clone());
        crate::server::app(state)
    }

    /// Runs every loop until `shutdown` is cancelled or one of them fails.
    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut loops: JoinSet<(String, anyhow::Result<()>)> = JoinSet::new();
        let listen = self.settings.server.listen;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("could not listen on {listen}"))?;
        let (app, cancel) = (self.http_app(), shutdown.clone());
        loops.spawn(async move {
            let result = crate::server::serve(listener, app, cancel).await;
            (
                "HTTP server".to_owned(),
                result.map_err(anyhow::Error::from),
            )
        });
        let socket = crate::admin::socket_path(&self.settings.store.path);
        let orgs = self
            .settings
            .org_ids()
            .iter()
            .filter_map(|o| i64::try_from(*o).ok())
            .collect();
        let executor_handle = self.executor.as_ref().map(Executor::handle);
        let (admin, cancel) = (
            crate::admin::router(
                self.store.clone(),
                orgs,
                executor_handle,
                crate::rules::CompileEnv::from_settings(&self.settings),
            ),
            shutdown.clone(),
        );
        loops.spawn(async move {
            // Not worth stopping the daemon for: only `explain` while it runs needs the socket.
            if let Err(error) = crate::admin::serve(&socket, admin, cancel.clone()).await {
                tracing::warn!(
                    error = %format!("{error:#}"),
                    "Admin socket unavailable; `explain` cannot ask this daemon"
                );
                cancel.cancelled().await;
            }
            ("admin socket".to_owned(), Ok(()))
        });
        let (feed, cancel) = (self.feed.subscribe(), shutdown.clone());
        let executor = self.executor.take().context("the daemon runs only once")?;
        loops.spawn(async move { ("executor".to_owned(), executor.run(feed, cancel).await) });
        let (metrics, cancel) = (self.metrics.clone(), shutdown.clone());
        loops.spawn(async move {
            crate::metrics::run_upkeep(metrics, cancel).await;
            ("metrics upkeep".to_owned(), Ok(()))
        });
        for &org in self.settings.org_ids() {
            let poller = self.poller(org)?;
            let cancel = shutdown.clone();
            loops.spawn(async move { (format!("poller of org {org}"), poller.run(cancel).await) });
        }
        let store = self.store.clone();
        let policy = RetentionPolicy {
            max_age: self.settings.store.retention,
        };
        let cancel = shutdown.clone();
        loops.spawn(async move {
            crate::store::run_retention(store, policy, cancel).await;
            ("retention".to_owned(), Ok(()))
        });
        let (store, rules, sink, clock, cancel) = (
            self.store.clone(),
            self.rules.shared(),
            self.sink.clone(),
            self.clock.clone(),
            shutdown.clone(),
        );
        let feed = Some(self.feed.clone());
        loops.spawn(async move {
            let result =
                crate::sources::scheduler::run_scheduler(store, rules, sink, clock, feed, cancel)
                    .await;
            ("scheduler".to_owned(), result)
        });
        let (rules, cancel) = (self.rules.clone(), shutdown.clone());
        loops.spawn(async move {
            (
                "rule reload".to_owned(),
                crate::rules::run_reload(rules, cancel).await,
            )
        });
        let (health, store, cancel) = (self.health.clone(), self.store.clone(), shutdown.clone());
        loops.spawn(async move {
            crate::systemd::run_notifier(health, store, cancel).await;
            ("systemd notifier".to_owned(), Ok(()))
        });
        let status = self.rules.status();
        tracing::info!(
            %listen,
            rules = status.rules,
            rules_hash = %status.hash,
            orgs = ?self.settings.org_ids(),
            store = %self.settings.store.path.display(),
            "Daemon started"
        );

        let mut failure: Option<anyhow::Error> = None;
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => {}
            Some(ended) = loops.join_next() => {
                // A panicked loop is a failure like any other: the rest still stop in order.
                let (name, result) = ended.unwrap_or_else(|panicked| {
                    ("a daemon loop".to_owned(), Err(anyhow::anyhow!("{panicked}")))
                });
                if shutdown.is_cancelled() && result.is_ok() {
                    // It stopped because we are stopping: not a failure.
                    return self.finish(&mut loops, None).await;
                }
                let error = result.err().unwrap_or_else(|| anyhow::anyhow!("ended unexpectedly"));
                tracing::error!(loop_name = %name, error = %format!("{error:#}"), "A daemon loop stopped; shutting down");
                failure = Some(error.context(format!("{name} stopped")));
                shutdown.cancel();
            }
        }
        self.finish(&mut loops, failure).await
    }

    /// Drains the loops within the grace period, flushes the store, and reports `failure`.
    async fn finish(
        &self,
        loops: &mut JoinSet<(String, anyhow::Result<()>)>,
        failure: Option<anyhow::Error>,
    ) -> anyhow::Result<()> {
        drain(loops, self.settings.executor.shutdown_grace).await;
        let flushed = self.store.flush().await.context("final flush");
        tracing::info!("Daemon stopped");
        match (failure, flushed) {
            (None, flushed) => flushed.map(drop),
            (Some(failure), Ok(_)) => Err(failure),
            // The loop's failure is what the exit reports: the flush most likely failed of the
            // same cause (a full disk fails both).
            (Some(failure), Err(flush)) => {
                tracing::error!(error = %format!("{flush:#}"), "Final flush failed");
                Err(failure)
            }
        }
    }
}

/// Waits for the loops to finish, at most `grace`; what is left is aborted.
async fn drain(loops: &mut JoinSet<(String, anyhow::Result<()>)>, grace: Duration) {
    let deadline = tokio::time::sleep(grace);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = loops.join_next() => match next {
                None => return,
                Some(Ok((name, Err(error)))) => {
                    tracing::warn!(loop_name = %name, error = %format!("{error:#}"), "Loop failed while stopping");
                }
                Some(_) => {}
            },
            _ = &mut deadline => {
                tracing::warn!(left = loops.len(), "Shutdown grace period over; aborting the rest");
                loops.abort_all();
                return;
            }
        }
    }
}
