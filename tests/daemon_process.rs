//! The `run` daemon as a real process against the simulator: graceful shutdown, the `state`
//! view, a second daemon on the same store, and kill -9 at 100 random moments.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use codegen_sentinel::sim::RunPlan;
use codegen_sentinel::store::{Store, StoreOptions};
use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

const POLL: Duration = Duration::from_millis(200);
const TICK: Duration = Duration::from_millis(50);

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_codegen-sentinel"));
    cmd.env("SENTINEL_TEST_TOKEN", TOKEN)
        .env_remove("SENTINEL_CONFIG")
        .env("RUST_LOG", "info");
    cmd
}

/// A config polling `base_url` every 200 ms into a store under `dir`.
fn write_config(dir: &Path, base_url: &str) -> PathBuf {
    let path = dir.join("sentinel.yaml");
    let text = format!(
        "codegen:\n  base_url: {base_url}\n  token_env: SENTINEL_TEST_TOKEN\n  org_ids: [{ORG}]\n  \
         poll_interval: 200ms\n  stall_after: 1h\n  request_timeout: 5s\n\
         store:\n  path: {}\nserver:\n  listen: 127.0.0.1:0\n",
        dir.join("store").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn start(config: &Path) -> Child {
    bin()
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("daemon starts")
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the process, at most `limit`.
async fn wait_exit(mut child: Child, limit: Duration) -> Output {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
                .await
                .unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the daemon did not exit within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_records_transitions_and_stops_gracefully_on_sigterm() {
    let sim = seeded_sim();
    sim.set_rate_limits(false);
    let server = serve(sim).await;
    let run = server.sim.create_run(ORG, RunPlan::completes());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &server.base_url);

    let child = start(&config);
    tokio::time::sleep(Duration::from_millis(600)).await;
    server.sim.advance(Duration::from_secs(3600));
    // Wait until the daemon has polled after the change, then stop it.
    let polled = server.sim.requests().len();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while server.sim.requests().len() < polled + 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the daemon stopped polling"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sigterm(&child);
    let out = wait_exit(child, Duration::from_secs(10)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("Daemon stopped"), "{stderr}");
    assert!(!stderr.contains(TOKEN));

    let out = bin()
        .args(["state", "transitions", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mine: Vec<_> = lines.iter().filter(|l| l["run_id"] == run).collect();
    assert_eq!(mine.len(), 2, "{lines:?}");
    assert_eq!(mine[0]["from"], serde_json::Value::Null);
    assert_eq!(mine[0]["to"], "ACTIVE");
    assert_eq!(mine[1]["from"], "ACTIVE");
    assert_eq!(mine[1]["to"], "COMPLETE");
    for key in ["org_id", "seq", "at", "source"] {
        assert!(mine[1].get(key).is_some(), "{key} missing");
    }

    let out = bin()
        .args(["state", "runs", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("ORG"), "{table}");
    assert!(table.contains("COMPLETE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_the_same_store_fails_clearly() {
    let server = serve(seeded_sim()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &server.base_url);
    let first = start(&config);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = start(&config);
    let out = wait_exit(second, Duration::from_secs(20)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("in use") || stderr.contains("lock"),
        "{stderr}"
    );
    sigterm(&first);
    assert_eq!(
        wait_exit(first, Duration::from_secs(10))
            .await
            .status
            .code(),
        Some(0)
    );
}

/// A run whose statuses each last 1.5–3 s, sometimes pausing and resuming on the way.
fn random_plan(rng: &mut StdRng) -> RunPlan {
    let hold = |rng: &mut StdRng| Duration::from_millis(rng.random_range(1500..3000));
    let mut steps = vec![(Some("ACTIVE"), hold(rng))];
    if rng.random_bool(0.3) {
        steps.push((Some("PAUSED"), hold(rng)));
        steps.push((Some("ACTIVE"), hold(rng)));
    }
    steps.push((Some("EVALUATION"), hold(rng)));
    let end = ["COMPLETE", "COMPLETE", "FAILED", "ERROR", "TIMEOUT"][rng.random_range(0..5)];
    steps.push((Some(end), Duration::ZERO));
    let plan = RunPlan::steps(steps);
    if rng.random_bool(0.2) {
        plan.starts_pending()
    } else {
        plan
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_100_random_moments_loses_no_held_status_and_records_none_twice() {
    let seed: u64 = std::env::var("SENTINEL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00c0_ffee);
    println!("crash test seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let sim = seeded_sim();
    sim.set_rate_limits(false);
    let server = serve(sim).await;
    let sim = server.sim.clone();
    let cancel = CancellationToken::new();
    drive_clock(sim.clone(), 1, TICK, cancel.clone());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &server.base_url);

    for round in 0..100 {
        for _ in 0..rng.random_range(0..3) {
            sim.create_run(ORG, random_plan(&mut rng));
        }
        let mut child = start(&config);
        let alive = Duration::from_millis(rng.random_range(50..700));
        tokio::time::sleep(alive).await;
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "round {round}: the daemon exited by itself ({status}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }

    // A last daemon, not killed, watches every run to its end.
    let child = start(&config);
    let finished = |run: i64| {
        let history = sim.status_history(ORG, run);
        let last = history
            .last()
            .and_then(|(s, _)| s.clone())
            .unwrap_or_default();
        ["COMPLETE", "FAILED", "ERROR", "TIMEOUT", "CANCELLED"].contains(&last.as_str())
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !sim.run_ids(ORG).into_iter().all(finished) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "runs did not finish"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    sigterm(&child);
    let out = wait_exit(child, Duration::from_secs(10)).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cancel.cancel();

    let store = Store::open(StoreOptions::new(dir.path().join("store"))).unwrap();
    let mut checked = 0;
    for run in sim.run_ids(ORG) {
        let history = sim.status_history(ORG, run);
        let recorded: Vec<Option<String>> = store
            .transitions_of_run(ORG, run)
            .unwrap()
            .into_iter()
            .map(|t| t.to)
            .collect();
        let mut next = 0;
        for (i, (status, since)) in history.iter().enumerate() {
            let held = history.get(i + 1).map_or(Duration::MAX, |(_, until)| {
                (*until - *since).to_std().unwrap()
            });
            if recorded.get(next) == Some(status) {
                next += 1;
            } else {
                assert!(
                    held < POLL,
                    "run {run}: {status:?} held {held:?} was not recorded; history {history:?}, recorded {recorded:?}"
                );
            }
        }
        assert_eq!(
            next,
            recorded.len(),
            "run {run}: recorded {recorded:?} is not the history {history:?} (a duplicate or an invented status)"
        );
        checked += history.len();
    }
    assert!(checked > 200, "only {checked} statuses were exercised");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_hears_ready_after_the_first_reconcile_then_watchdog_pings() {
    use std::os::unix::net::UnixDatagram;
    let server = serve(seeded_sim()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &server.base_url);
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // systemd names the pid the watchdog is for; `exec` keeps the shell's pid.
    let child = Command::new("sh")
        .args([
            "-c",
            r#"WATCHDOG_PID=$$ exec "$SENTINEL_BIN" run --config "$SENTINEL_CONFIG_PATH""#,
        ])
        .env("SENTINEL_TEST_TOKEN", TOKEN)
        .env_remove("SENTINEL_CONFIG")
        .env("SENTINEL_BIN", env!("CARGO_BIN_EXE_codegen-sentinel"))
        .env("SENTINEL_CONFIG_PATH", &config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let messages = tokio::task::spawn_blocking(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while got
            .iter()
            .filter(|m: &&String| m.contains("WATCHDOG=1"))
            .count()
            < 3
        {
            let n = socket.recv(&mut buf).expect("a notification within 10 s");
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        got
    })
    .await
    .unwrap();
    assert!(messages[0].contains("READY=1"), "{messages:?}");
    assert!(
        !server.sim.requests().is_empty(),
        "ready only after talking to the API"
    );
    sigterm(&child);
    assert_eq!(
        wait_exit(child, Duration::from_secs(10))
            .await
            .status
            .code(),
        Some(0)
    );
}
