//! The GitHub webhook receiver alone on a socket, for `bench/webhook.sh`: the real router and
//! store (deliveries flushed before each answer), events going to no rules.
//!
//! `webhook_server serve ADDR STORE_DIR` serves until SIGINT/SIGTERM, secrets from
//! `$SENTINEL_BENCH_SECRETS` (comma-separated); `webhook_server count STORE_DIR` prints how many
//! deliveries and events the store holds.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use codegen_sentinel::config::DEFAULT_MAX_BODY;
use codegen_sentinel::events::NoSink;
use codegen_sentinel::server::{app, serve, AppState};
use codegen_sentinel::sources::poller::PollerHealth;
use codegen_sentinel::sources::webhook::Webhooks;
use codegen_sentinel::store::{Store, StoreOptions};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

fn main() -> anyhow::Result<()> {
    // As the `codegen-sentinel` binary does, so that the figures are the daemon's.
    codegen_sentinel::memory::tune_malloc();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async_main())
}

async fn async_main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["serve", addr, dir] => run(addr, dir).await,
        ["count", dir] => count(dir),
        _ => anyhow::bail!("usage: webhook_server serve ADDR STORE_DIR | count STORE_DIR"),
    }
}

async fn run(addr: &str, dir: &str) -> anyhow::Result<()> {
    let secrets: Vec<SecretString> = std::env::var("SENTINEL_BENCH_SECRETS")
        .context("SENTINEL_BENCH_SECRETS is not set")?
        .split(',')
        .map(SecretString::from)
        .collect();
    let store = Store::open(StoreOptions::new(dir))?;
    let webhooks = Webhooks::new(store.clone(), Arc::new(NoSink), &secrets, DEFAULT_MAX_BODY);
    let health = Arc::new(PollerHealth::default());
    let state = AppState::new(
        store.clone(),
        Arc::new(webhooks),
        health,
        Duration::from_secs(15),
    );
    let cancel = CancellationToken::new();
    tokio::spawn(codegen_sentinel::metrics::run_upkeep(
        state.metrics.clone(),
        cancel.clone(),
    ));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let stop = cancel.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        stop.cancel();
    });
    serve(listener, app(state), cancel).await?;
    store.flush().await?;
    Ok(())
}

fn count(dir: &str) -> anyhow::Result<()> {
    let store = Store::open(StoreOptions::new(dir))?;
    let deliveries = store.deliveries().count();
    let events = store.events_after(0).count();
    println!("{deliveries} {events}");
    Ok(())
}
