//! The background drivers behind `demo` and `simulate serve`, under tokio paused time: the
//! real-time clock, the stream of new runs, and the standalone server's shutdown.

mod sim_support;

use std::time::Duration;

use codegen_sentinel::sim::{serve_standalone, SimConfig, Simulator};
use tokio_util::sync::CancellationToken;

/// The org `seed_demo` puts the demo token in.
const DEMO_ORG: i64 = 7;

#[tokio::test(start_paused = true)]
async fn realtime_clock_moves_the_virtual_clock_and_runs_with_it() {
    let sim = Simulator::new(SimConfig::default());
    let token = sim.seed_demo();
    let env = sim_support::start_with(sim.clone()).await;
    let cancel = CancellationToken::new();
    sim.spawn_realtime_clock(cancel.clone());
    let start = sim.now();
    let answer = env
        .call(
            reqwest::Method::POST,
            &format!("/v1/organizations/{DEMO_ORG}/agent/run"),
            Some(&token),
            Some(serde_json::json!({"prompt": "Follow the clock"})),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let id = answer.body["id"].as_i64().expect("run id");
    tokio::time::sleep(Duration::from_secs(120)).await;
    let moved = sim.now() - start;
    assert!(moved >= chrono::Duration::seconds(118), "{moved}");
    let run = sim.run_json(DEMO_ORG, id).expect("run");
    assert_eq!(run["status"], "COMPLETE");
    cancel.cancel();
    tokio::task::yield_now().await;
    let stopped = sim.now();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(sim.now(), stopped, "a cancelled clock stays put");
}

#[tokio::test(start_paused = true)]
async fn run_stream_starts_a_run_every_period_until_cancelled() {
    let sim = Simulator::new(SimConfig::default());
    sim.seed_demo();
    let before = sim.run_ids(DEMO_ORG).len();
    let cancel = CancellationToken::new();
    sim.spawn_run_stream(Duration::from_secs(20), cancel.clone());
    tokio::time::sleep(Duration::from_secs(201)).await;
    let started = sim.run_ids(DEMO_ORG).len() - before;
    assert_eq!(started, 10);
    cancel.cancel();
    tokio::time::sleep(Duration::from_secs(200)).await;
    assert_eq!(sim.run_ids(DEMO_ORG).len() - before, 10);
}

#[tokio::test(start_paused = true)]
async fn standalone_server_returns_when_cancelled() {
    let cancel = CancellationToken::new();
    let task = tokio::spawn(serve_standalone(([127, 0, 0, 1], 0).into(), cancel.clone()));
    tokio::time::sleep(Duration::from_secs(90)).await;
    assert!(!task.is_finished());
    cancel.cancel();
    let result = task.await.expect("task joins");
    assert!(result.is_ok(), "{result:?}");
}
