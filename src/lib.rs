//! codegen-sentinel: an automation daemon around Codegen agent runs.
//!
//! # Layout
//! - [`actions`]: the action catalogue (parameters, outputs), parameter coercion, and every effect:
//!   Codegen through the client, GitHub through octocrab, notifiers, log.
//! - [`executor`]: durable jobs: steps in order, recorded before and after each effect, retries,
//!   dead letters, per-key ordering, durable waits for runs.
//! - [`api`]: the typed Codegen REST client, its wire models, errors and the shared rate budget.
//! - [`retry`]: the one retry policy (full-jitter exponential backoff, `Retry-After` honoured).
//! - [`sim`]: an in-process Codegen simulator (tests, benches, `demo`, `simulate serve`).
//! - [`config`]: `sentinel.yaml` loaded into validated settings; secrets resolved and held in secrecy types.
//! - [`yaml`]: the YAML loader shared by config and rules: limits, positions, `file:line:col` diagnostics.
//! - [`secret`]: secret references (`*_env`, `*_file`, systemd credentials) and their resolution.
//! - [`store`]: the only code that touches sled: trees, typed keys, versioned records, transactions.
//! - [`events`]: the event types rules react to, their stable ids and data.
//! - [`sources`]: where events come from: the reconciling poller, GitHub webhooks and the cron
//!   scheduler.
//! - [`rules`]: the rule language: YAML files → a checked rule set → pure evaluation; rule tests,
//!   JSON Schema, and reload on SIGHUP or file changes.
//! - [`engine`]: each event's rule decisions (journal) and jobs, written in the event's
//!   transaction; replay of history and schedule summaries.
//! - [`server`]: the HTTP surface: webhooks, `/healthz`, `/readyz`, `/metrics`, `/status`.
//! - [`metrics`]: metric names, descriptions and the Prometheus recorder.
//! - [`daemon`]: every loop under one cancellation token; startup and graceful shutdown.
//! - [`systemd`]: `Type=notify` readiness and watchdog pings.
//! - [`clock`]: wall-clock time behind a trait, for tests.
//! - [`template`]: the minijinja environment of rule conditions, keys and step parameters.
//! - [`cli`]: one module per command group; `main.rs` only parses and dispatches.

pub mod actions;
pub mod admin;
pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod events;
pub mod executor;
pub mod memory;
pub mod metrics;
pub mod retry;
pub mod rules;
pub mod secret;
pub mod server;
pub mod sim;
pub mod sources;
pub mod store;
pub mod systemd;
pub mod template;
pub mod yaml;
