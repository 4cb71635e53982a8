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
    tokio::spawn(super::signals::stop_on_signals(shutdown.clone()));
    daemon.run(shutdown).await.map_err(Failure::Runtime)
}
