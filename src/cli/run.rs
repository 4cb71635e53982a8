//! `codegen-sentinel run --config FILE`: the daemon, until SIGTERM or SIGINT.

use std::path::PathBuf;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::{config_source, Failure};
use crate::daemon::Daemon;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Config file [default: $SENTINEL_CONFIG, then ./sentinel.yaml].
    #[arg(long)]
    pub config: Option<PathBuf>,
}

pub async fn run(args: RunArgs) -> Result<(), Failure> {
    let settings = config_source::required(args.config.as_deref())?;
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    let daemon = Daemon::start(settings).map_err(Failure::Runtime)?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signals(shutdown.clone()));
    daemon.run(shutdown).await.map_err(Failure::Runtime)
}

/// The first SIGTERM/SIGINT asks for a graceful stop; a second one exits at once.
async fn stop_on_signals(shutdown: CancellationToken) {
    if let Err(error) = wait_for_signal().await {
        tracing::error!(%error, "Cannot listen for signals; stop the daemon with SIGKILL");
        return;
    }
    tracing::info!("Signal received; stopping (send it again to exit at once)");
    shutdown.cancel();
    if wait_for_signal().await.is_ok() {
        tracing::warn!("Second signal; exiting without waiting");
        std::process::exit(130);
    }
}

#[cfg(unix)]
async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}
