//! Shared test harness: a seeded simulator and a client pointed at it.
#![allow(dead_code)]

pub mod spec;

use std::time::Duration;

use codegen_sentinel::api::{CodegenClient, RateBudget};
use codegen_sentinel::retry::RetryPolicy;
use codegen_sentinel::sim::{SimConfig, SimServer, Simulator};
use secrecy::SecretString;
use std::sync::Arc;

pub const TOKEN: &str = "sk-test-canary-1f2e3d";
pub const OTHER_TOKEN: &str = "sk-test-outsider";
pub const ORG: i64 = 7;
pub const OTHER_ORG: i64 = 8;
pub const USER: i64 = 1;
pub const REPO: i64 = 10;
pub const SANDBOX: i64 = 42;
pub const SANDBOX_NO_LOGS: i64 = 43;

/// A simulator with two orgs, a user in org 7 only, a repo and two sandboxes.
pub fn seeded_sim() -> Simulator {
    let sim = Simulator::new(SimConfig::default());
    sim.add_org(ORG, "acme");
    sim.add_org(OTHER_ORG, "elsewhere");
    sim.add_user(ORG, USER, "octo");
    sim.add_user(OTHER_ORG, 2, "stranger");
    sim.add_token(TOKEN, USER);
    sim.add_token(OTHER_TOKEN, 2);
    sim.add_repo(ORG, REPO, "acme/widgets");
    sim.add_sandbox(ORG, SANDBOX, true);
    sim.add_sandbox(ORG, SANDBOX_NO_LOGS, false);
    sim
}

pub async fn serve(sim: Simulator) -> SimServer {
    sim.serve("127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts")
}

/// A client with the published budget and quick retries.
pub fn client(base_url: &str) -> CodegenClient {
    client_with(base_url, Arc::new(RateBudget::published()), fast_retry())
}

pub fn client_with(base_url: &str, budget: Arc<RateBudget>, retry: RetryPolicy) -> CodegenClient {
    CodegenClient::builder(base_url, SecretString::from(TOKEN))
        .budget(budget)
        .retry(retry)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client builds")
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base: Duration::from_millis(10),
        cap: Duration::from_millis(50),
    }
}

/// Sends SIGTERM to a daemon process and waits for it to exit.
pub async fn terminate(child: std::process::Child) -> std::process::Output {
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(term.success());
    tokio::task::spawn_blocking(move || child.wait_with_output().expect("the daemon exits"))
        .await
        .expect("waiting task")
}

/// Moves the simulator's clock `speed` times as fast as tokio's, in steps of `tick`, until
/// `cancel` fires.
pub fn drive_clock(
    sim: Simulator,
    speed: u32,
    tick: Duration,
    cancel: tokio_util::sync::CancellationToken,
) {
    tokio::spawn(async move {
        let mut last = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(tick) => {
                    let now = tokio::time::Instant::now();
                    sim.advance((now - last) * speed);
                    last = now;
                }
            }
        }
    });
}

/// Waits until `done` holds, checking every 50 ms; fails naming `what` after `limit`.
pub async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
