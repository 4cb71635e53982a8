//! `codegen-sentinel simulate serve --listen ADDR`: the Codegen simulator as a standalone server.

use std::net::SocketAddr;

use clap::{Args, Subcommand};
use tokio_util::sync::CancellationToken;

use super::Failure;

#[derive(Debug, Args)]
pub struct SimulateArgs {
    #[command(subcommand)]
    pub what: SimulateCmd,
}

#[derive(Debug, Subcommand)]
pub enum SimulateCmd {
    /// Serve the simulator, seeded with orgs, repos, users and a steady stream of runs; prints
    /// its base URL and the token it accepts.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8700")]
        listen: SocketAddr,
    },
}

pub async fn run(args: SimulateArgs) -> Result<(), Failure> {
    match args.what {
        SimulateCmd::Serve { listen } => {
            let cancel = CancellationToken::new();
            tokio::spawn(super::signals::stop_on_signals(cancel.clone()));
            crate::sim::serve_standalone(listen, cancel)
                .await
                .map_err(Failure::Runtime)
        }
    }
}
