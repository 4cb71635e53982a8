//! Executor figures (docs/executor.md): the overhead of a step without a remote call (the `log`
//! action), its durable records included, one job alone and many at once; and steps per second
//! against the Codegen simulator with its limits lifted. `cargo bench --bench executor` prints
//! them; without `--bench` (as under `cargo test --all-targets`) a small smoke version runs.
//!
//! Knobs (env): EXECUTOR_BENCH_DIR (default: the system temp dir), EXECUTOR_BENCH_STEPS (2000),
//! EXECUTOR_BENCH_JOBS (200), EXECUTOR_BENCH_CONCURRENCY (32).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use codegen_sentinel::actions::Notifiers;
use codegen_sentinel::api::{CodegenClient, RateBudget};
use codegen_sentinel::clock::SystemClock;
use codegen_sentinel::config::ExecutorSettings;
use codegen_sentinel::executor::Executor;
use codegen_sentinel::retry::RetryPolicy;
use codegen_sentinel::sim::{RunPlan, SimConfig, Simulator};
use codegen_sentinel::store::{JobState, NewJob, Store, StoreOptions};
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "bench-token";
const ORG: i64 = 7;

struct Sizes {
    steps: usize,
    jobs: usize,
    concurrency: usize,
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full {
        Sizes {
            steps: env_or("EXECUTOR_BENCH_STEPS", 2000),
            jobs: env_or("EXECUTOR_BENCH_JOBS", 200),
            concurrency: env_or("EXECUTOR_BENCH_CONCURRENCY", 32),
        }
    } else {
        Sizes {
            steps: 40,
            jobs: 10,
            concurrency: 4,
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench(sizes, full));
}

async fn bench(sizes: Sizes, full: bool) {
    let base = std::env::var_os("EXECUTOR_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    println!(
        "executor bench ({} mode)",
        if full { "full" } else { "smoke" }
    );
    let sim = Simulator::new(SimConfig::default());
    sim.set_rate_limits(false);
    sim.add_org(ORG, "bench");
    sim.add_user(ORG, 1, "bench");
    sim.add_token(TOKEN, 1);
    sim.add_repo(ORG, 10, "bench/repo");
    let server = sim
        .clone()
        .serve("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("simulator");
    let client = CodegenClient::builder(server.base_url.clone(), SecretString::from(TOKEN))
        .budget(Arc::new(RateBudget::unlimited()))
        .retry(RetryPolicy::never())
        .build()
        .expect("client");
    let run = sim.create_run(ORG, RunPlan::completes());

    // The floor: one small durable write, as the store does it, on this disk.
    let floor = flush_floor(&base, sizes.steps.min(500)).await;
    println!(
        "store write + flush, alone:          {:>8.3} ms/write",
        floor.as_secs_f64() * 1000.0
    );
    // One job at a time (five steps each): every step waits for its own fsync.
    let log_step = json!({"id": null, "action": "log", "with": {"message": "step {{ run.id }}", "level": "debug"}});
    let alone = measure(&base, &client, 1, sizes.steps / 5, 5, &log_step, run).await;
    println!(
        "log steps, one job at a time:        {:>8.3} ms/step  ({} steps in {:.2?})",
        alone.per_step_ms(),
        alone.steps,
        alone.elapsed
    );
    // Many jobs at once: workers share fsyncs (group commit).
    let steps_each = (sizes.steps / sizes.jobs).max(5);
    let many = measure(
        &base,
        &client,
        sizes.concurrency,
        sizes.jobs,
        steps_each,
        &log_step,
        run,
    )
    .await;
    println!(
        "log steps, {:>3} jobs, concurrency {:>3}: {:>8.3} ms/step  ({:.0} steps/s)",
        sizes.jobs,
        sizes.concurrency,
        many.per_step_ms(),
        many.per_second()
    );
    // Against the simulator: each step is one POST (ban) with its records.
    let ban_step = json!({"id": null, "action": "codegen.ban_checks", "with": {}});
    let remote = measure(
        &base,
        &client,
        sizes.concurrency,
        sizes.jobs,
        steps_each,
        &ban_step,
        run,
    )
    .await;
    println!(
        "ban steps against the simulator:     {:>8.3} ms/step  ({:.0} steps/s)",
        remote.per_step_ms(),
        remote.per_second()
    );
    server.shutdown().await;
}

/// The mean time of one small transaction followed by a flush.
async fn flush_floor(base: &std::path::Path, n: usize) -> Duration {
    let dir = tempfile::tempdir_in(base).expect("bench dir");
    let store = Store::open(StoreOptions::new(dir.path().join("db"))).expect("store");
    let started = Instant::now();
    for i in 0..n {
        store
            .transaction(|tx| tx.put_meta("bench", &i.to_string()))
            .expect("write");
        store.flush().await.expect("flush");
    }
    started.elapsed() / n.max(1) as u32
}

struct Measured {
    steps: usize,
    elapsed: Duration,
}

impl Measured {
    fn per_step_ms(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1000.0 / self.steps as f64
    }

    fn per_second(&self) -> f64 {
        self.steps as f64 / self.elapsed.as_secs_f64()
    }
}

/// Writes `jobs` jobs of `steps` copies of `step`, runs an executor until they are all done and
/// returns how long that took.
async fn measure(
    base: &std::path::Path,
    client: &CodegenClient,
    concurrency: usize,
    jobs: usize,
    steps: usize,
    step: &Value,
    run: i64,
) -> Measured {
    let dir = tempfile::tempdir_in(base).expect("bench dir");
    let store = Store::open(StoreOptions::new(dir.path().join("db"))).expect("store");
    let data = json!({
        "version": 1, "rules_hash": "bench", "rule": {"name": "bench", "description": null},
        "context": {"run": {"id": run, "organization_id": ORG}, "vars": {}},
        "steps": vec![step.clone(); steps], "progress": {},
    });
    store
        .transaction(|tx| {
            for i in 0..jobs {
                tx.insert_job(NewJob {
                    rule: "bench".into(),
                    event_id: format!("bench/{i}"),
                    key: format!("key-{i}"),
                    created_at: Utc::now(),
                    data: data.clone(),
                })?;
            }
            Ok(())
        })
        .expect("jobs written");
    store.flush().await.expect("flush");
    let settings = ExecutorSettings {
        concurrency,
        max_attempts: 3,
        backoff_base: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(100),
        shutdown_grace: Duration::from_secs(5),
    };
    let executor = Executor::new(
        store.clone(),
        client.clone(),
        None,
        Notifiers::default(),
        settings,
        Arc::new(SystemClock),
    );
    let (_feed, events) = broadcast::channel(16);
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let task = tokio::spawn(executor.run(events, cancel.clone()));
    while !store.open_job_ids().expect("scan").is_empty() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    cancel.cancel();
    task.await.expect("executor task").expect("executor");
    let done = store
        .jobs()
        .filter(|j| matches!(j, Ok(j) if j.state == JobState::Done))
        .count();
    assert_eq!(done, jobs, "every job finished");
    Measured {
        steps: jobs * steps,
        elapsed,
    }
}
