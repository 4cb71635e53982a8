//! The daemon: the store, the shared Codegen client and one poller per organization, every loop
//! under one cancellation token.
//!
//! Shutdown: the token is cancelled (first SIGTERM/SIGINT), loops stop taking new work, the store
//! is flushed, and `run` returns. A loop that ends while it should still be running ends the
//! daemon with an error, so the supervisor (systemd, Kubernetes) restarts it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use secrecy::SecretString;
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::{CodegenClient, OrgId, RateBudget};
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::engine::Engine;
use crate::events::EventSink;
use crate::rules::reload::RuleSource;
use crate::rules::Rules;
use crate::sources::poller::{Poller, PollerConfig, PollerHealth};
use crate::store::{EventRecord, RetentionPolicy, Store, StoreOptions};

/// How many events the live feed buffers for slow listeners.
const FEED_CAPACITY: usize = 1024;

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
    pub rules: Arc<Rules>,
    sink: Arc<dyn EventSink>,
}

impl Daemon {
    /// Resolves secrets, opens the store and builds the client. Fails fast on anything missing.
    pub fn start(settings: Settings) -> anyhow::Result<Daemon> {
        let token = settings.resolve_codegen_token().map_err(|diagnostics| {
            let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
            anyhow::anyhow!(lines.join("\n"))
        })?;
        Daemon::start_with_token(settings, token)
    }

    /// Like [`Daemon::start`], with the Codegen token already in hand (the demo).
    pub fn start_with_token(settings: Settings, token: SecretString) -> anyhow::Result<Daemon> {
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
        Ok(Daemon {
            settings,
            store,
            client,
            clock,
            health: Arc::new(PollerHealth::default()),
            feed,
            rules,
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

    /// Runs every loop until `shutdown` is cancelled or one of them fails.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut loops: JoinSet<(String, anyhow::Result<()>)> = JoinSet::new();
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
        loops.spawn(async move {
            let result =
                crate::sources::scheduler::run_scheduler(store, rules, sink, clock, cancel).await;
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
                let (name, result) = ended.context("a daemon loop panicked")?;
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
        self.store.flush().await.context("final flush")?;
        tracing::info!("Daemon stopped");
        match failure {
            Some(error) => Err(error),
            None => Ok(()),
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
