//! The command line: one module per command group. `main.rs` parses, then calls [`run`].

pub mod api;
pub mod check;
mod config_source;
pub mod demo;
pub mod explain;
pub mod healthcheck;
pub mod jobs;
pub mod rules;
pub mod run;
mod signals;
pub mod silence;
pub mod simulate;
pub mod state;
mod target;

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
    /// The daemon against the built-in Codegen simulator, with a live feed; no token, no network.
    Demo(demo::DemoArgs),
    /// The daemon: poll Codegen, record transitions, until SIGTERM/SIGINT.
    Run(run::RunArgs),
    /// Inspect what the store holds: runs and their transitions.
    State(state::StateArgs),
    /// Call the Codegen API: one subcommand per operation, JSON on stdout.
    Api(api::ApiArgs),
    /// Exit 0 when the local daemon answers ready (for container HEALTHCHECK).
    Healthcheck(healthcheck::HealthcheckArgs),
    /// The Codegen simulator.
    Simulate(simulate::SimulateArgs),
    /// Validate the config and rule files; exit 0 when valid, 2 when not.
    Check(check::CheckArgs),
    /// Test rules, replay stored history with candidate rules, print the rule file schema.
    Rules(rules::RulesArgs),
    /// Every event of a run and what each rule decided, and why.
    Explain(explain::ExplainArgs),
    /// Pause a rule (or one key of it) until a time; list and expire silences.
    Silence(silence::SilenceArgs),
    /// List, show, retry or drop durable jobs and dead letters (through the running daemon, or
    /// the store when it is stopped).
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
        Command::State(args) => state::run(args).await,
        Command::Api(args) => api::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Healthcheck(args) => healthcheck::run(args).await,
        Command::Simulate(args) => simulate::run(args).await,
        Command::Check(args) => check::run(args),
        Command::Rules(args) => rules::run(args).await,
        Command::Explain(args) => explain::run(args).await,
        Command::Silence(args) => silence::run(args).await,
        Command::Jobs(args) => jobs::run(args).await,
    }
}

impl Cli {
    /// The log level when `RUST_LOG` is not set: the demo keeps stderr quiet for its feed, which
    /// already shows every warning worth seeing there (failed and retried steps) as a line.
    pub fn default_log_level(&self) -> &'static str {
        match self.command {
            Command::Demo(_) => "error",
            _ => "info",
        }
    }
}

/// Sets up logging on stderr, filtered by `RUST_LOG` (default `default_level`).
pub fn init_tracing(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
