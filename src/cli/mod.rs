//! The command line: one module per command group. `main.rs` parses, then calls [`run`].

pub mod api;
mod config_source;
pub mod jobs;
pub mod run;
pub mod state;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// codegen-sentinel: automation for Codegen agent runs.
#[derive(Debug, Parser)]
#[command(name = "codegen-sentinel", version, about, max_term_width = 100)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The daemon: poll Codegen, record transitions, until SIGTERM/SIGINT.
    Run(run::RunArgs),
    /// Inspect what the store holds: runs and their transitions.
    State(state::StateArgs),
    /// Call the Codegen API: one subcommand per operation, JSON on stdout.
    Api(api::ApiArgs),
    /// List, show, retry or drop durable jobs and dead letters (with the daemon stopped).
    Jobs(jobs::JobsArgs),
}

/// A command failed: a usage or configuration mistake (exit 2) or a runtime failure (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

impl Failure {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Usage(_) => ExitCode::from(2),
            Failure::Runtime(_) => ExitCode::from(1),
        }
    }
}

/// Opens the store the settings name; a store held by a running daemon is a runtime failure.
fn open_store(settings: &crate::config::Settings) -> Result<crate::store::Store, Failure> {
    crate::daemon::open_store(settings).map_err(Failure::Runtime)
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Run(args) => run::run(args).await,
        Command::State(args) => state::run(args),
        Command::Api(args) => api::run(args).await,
        Command::Jobs(args) => jobs::run(args),
    }
}

/// Sets up logging on stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
