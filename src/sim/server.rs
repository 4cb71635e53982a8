//! Serving the simulator over TCP: the in-process server tests use, and the standalone
//! `simulate serve` entry point.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::conn::{ConnHandle, KillableListener};
use super::Simulator;

/// How often `simulate serve` starts a new run.
const STANDALONE_RUN_EVERY: Duration = Duration::from_secs(20);

/// A running simulator server; it stops on [`SimServer::shutdown`] or when dropped.
pub struct SimServer {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base_url: String,
    /// The simulator it serves, for scripting and inspection.
    pub sim: Simulator,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SimServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimServer")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl SimServer {
    /// Stops accepting, lets in-flight requests finish and waits for the server task.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "Simulator server task failed");
            }
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Simulator {
    /// Binds `addr` (use `127.0.0.1:0` in tests), serves the router on a spawned task and
    /// returns the server with its base URL.
    pub async fn serve(self, addr: SocketAddr) -> anyhow::Result<SimServer> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the Codegen simulator to {addr}"))?;
        let local = listener
            .local_addr()
            .context("reading the simulator's bound address")?;
        let cancel = CancellationToken::new();
        let app = self
            .router()
            .into_make_service_with_connect_info::<ConnHandle>();
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            let served = axum::serve(KillableListener::new(listener), app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "Codegen simulator stopped");
            }
        });
        Ok(SimServer {
            base_url: format!("http://{local}"),
            sim: self,
            cancel,
            task: Some(task),
        })
    }
}

/// `simulate serve`: seeds demo data, prints the base URL and the accepted token, then streams
/// new runs and advances the clock in real time until `cancel` fires.
pub async fn serve_standalone(addr: SocketAddr, cancel: CancellationToken) -> anyhow::Result<()> {
    let sim = Simulator::new(super::SimConfig::default());
    let token = sim.seed_demo();
    let server = sim.clone().serve(addr).await?;
    println!("Codegen simulator listening on {}", server.base_url);
    println!("base_url: {}", server.base_url);
    println!("token: {token}");
    println!("org_id: {}", super::seed::DEMO_ORG);
    sim.spawn_run_stream(STANDALONE_RUN_EVERY, cancel.child_token());
    sim.spawn_realtime_clock(cancel.child_token());
    cancel.cancelled().await;
    server.shutdown().await;
    Ok(())
}
