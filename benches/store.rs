//! Store figures: durable transitions per second with group commit, reopen time, RSS and space
//! use with a large history, and a retention pass over stored webhook events. `cargo bench --bench store` prints them (docs/store.md);
//! without `--bench` (as under `cargo test --all-targets`) it runs a small smoke version.
//!
//! Knobs (env): STORE_BENCH_DIR (default: the system temp dir), STORE_BENCH_RUNS (100000),
//! STORE_BENCH_TRANSITIONS_PER_RUN (10), STORE_BENCH_OBSERVATIONS (20000), STORE_BENCH_BATCH (100),
//! STORE_BENCH_CACHE_MIB (32), STORE_BENCH_RESULT_BYTES (80: size of each run's `result` text),
//! STORE_BENCH_WEBHOOK_EVENTS (20000: events with the 28 KB `pull_request.opened` payload),
//! STORE_BENCH_KEEP=1 keeps the databases (the reopen step alone is
//! then `<bench binary> reopen-child <dir>/history`).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use codegen_sentinel::store::{
    EventSource, NewEvent, NewTransition, Payload, RetentionPolicy, RunRecord, Store, StoreOptions,
    Tx, TxAbort,
};
use serde_json::{json, Value};

const MIB: f64 = 1024.0 * 1024.0;

struct Sizes {
    runs: i64,
    transitions_per_run: u32,
    observations: u64,
    batch: u64,
    webhook_events: u64,
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "reopen-child") {
        reopen_child(Path::new(&args[pos + 1]));
        return;
    }
    let full = args.iter().any(|a| a == "--bench");
    let sizes = if full {
        Sizes {
            runs: env_or("STORE_BENCH_RUNS", 100_000) as i64,
            transitions_per_run: env_or("STORE_BENCH_TRANSITIONS_PER_RUN", 10) as u32,
            observations: env_or("STORE_BENCH_OBSERVATIONS", 20_000),
            batch: env_or("STORE_BENCH_BATCH", 100),
            webhook_events: env_or("STORE_BENCH_WEBHOOK_EVENTS", 20_000),
        }
    } else {
        Sizes {
            runs: 200,
            transitions_per_run: 3,
            observations: 300,
            batch: 100,
            webhook_events: 200,
        }
    };
    let base = std::env::var_os("STORE_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let dir = tempfile::tempdir_in(base).expect("bench dir");
    let keep = std::env::var_os("STORE_BENCH_KEEP").is_some();
    println!(
        "store bench in {} ({} mode)",
        dir.path().display(),
        if full { "full" } else { "smoke" }
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    group_commit(&rt, &dir.path().join("throughput"), &sizes);
    webhook_retention(&dir.path().join("webhooks"), sizes.webhook_events);
    let path = dir.path().join("history");
    populate(&rt, &path, &sizes);
    let status = Command::new(std::env::current_exe().expect("exe"))
        .arg("reopen-child")
        .arg(&path)
        .status()
        .expect("reopen child");
    assert!(status.success(), "reopen child failed");
    if keep {
        println!("kept {}", dir.keep().display());
    }
}

fn options(path: &Path) -> StoreOptions {
    let cache_mib = env_or("STORE_BENCH_CACHE_MIB", 32);
    StoreOptions {
        cache_capacity: cache_mib * 1024 * 1024,
        ..StoreOptions::new(path)
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap()
}

/// A run roughly as the Codegen API returns it.
fn raw_run(org: i64, id: i64, status: &str) -> Value {
    json!({
        "id": id,
        "organization_id": org,
        "status": status,
        "created_at": "2025-03-01T00:00:00.000000",
        "web_url": format!("https://codegen.com/agent/trace/{id}"),
        "result": result_text(),
        "summary": "Fix flaky test",
        "source_type": "API",
        "github_pull_requests": [{
            "id": id * 10,
            "title": "Fix flaky payments test",
            "url": format!("https://github.com/acme/payments/pull/{}", id % 5000),
            "created_at": "2025-03-01T00:10:00.000000",
            "head_branch_name": format!("codegen-bot/fix-flaky-{id}"),
        }],
        "metadata": { "sandbox_id": 42, "requested_by": "ops" },
    })
}

/// The run's `result` text: real runs often carry long markdown here.
fn result_text() -> String {
    let len = env_or("STORE_BENCH_RESULT_BYTES", 80) as usize;
    "Opened a pull request that fixes the flaky integration test. ".repeat(len / 61 + 1)[..len]
        .to_string()
}

fn new_run(org: i64, id: i64, at: DateTime<Utc>) -> RunRecord {
    RunRecord {
        org_id: org,
        run_id: id,
        status: None,
        raw: Value::Null,
        pr_ids: vec![],
        last_seq: 0,
        status_since: at,
        stalled_reported: false,
        first_seen: at,
        last_seen: at,
    }
}

/// One poller observation: new snapshot, transition and event in one transaction.
fn observe(tx: &Tx<'_>, org: i64, id: i64, status: &str, at: DateTime<Utc>) -> Result<(), TxAbort> {
    let stored = tx.get_run(org, id)?;
    let first_sight = stored.is_none();
    let mut run = stored.unwrap_or_else(|| new_run(org, id, at));
    let from = run.status.replace(status.to_string());
    run.raw = raw_run(org, id, status);
    run.status_since = at;
    run.last_seen = at;
    let change = NewTransition {
        from,
        to: Some(status.into()),
        first_sight,
        at,
        source: EventSource::Poll,
    };
    let t = tx.append_transition(&mut run, change)?;
    let event = NewEvent {
        id: format!("run/{org}/{id}/{}/status_changed", t.seq),
        kind: "run.status_changed".into(),
        at,
        source: EventSource::Poll,
        org_id: Some(org),
        run_id: Some(id),
        data: json!({ "from": t.from, "to": t.to }),
    };
    tx.insert_event(event)?;
    Ok(())
}

const STATUSES: [&str; 4] = ["QUEUED", "ACTIVE", "EVALUATION", "COMPLETE"];

fn group_commit(rt: &tokio::runtime::Runtime, path: &Path, sizes: &Sizes) {
    let store = Store::open(options(path)).expect("open");
    let runs = (sizes.observations / 4).max(1) as i64;
    let start = Instant::now();
    let mut flushes = 0u64;
    let mut flushing = Duration::ZERO;
    for i in 0..sizes.observations {
        let id = (i as i64) % runs;
        let status = STATUSES[(i as i64 / runs) as usize % STATUSES.len()];
        let at = t0() + chrono::Duration::seconds(i as i64);
        store
            .transaction(|tx| observe(tx, 7, id, status, at))
            .expect("observe");
        if (i + 1) % sizes.batch == 0 {
            let flush_start = Instant::now();
            rt.block_on(store.flush()).expect("flush");
            flushing += flush_start.elapsed();
            flushes += 1;
        }
    }
    rt.block_on(store.flush()).expect("flush");
    let elapsed = start.elapsed();
    println!(
        "group commit: {} observations (run + transition + event each), flush every {}: {:.2} s, {:.0} durable transitions/s ({} flushes, {:.2} ms per flushed batch of which {:.2} ms flushing)",
        sizes.observations,
        sizes.batch,
        elapsed.as_secs_f64(),
        sizes.observations as f64 / elapsed.as_secs_f64(),
        flushes + 1,
        elapsed.as_secs_f64() * 1000.0 / (flushes + 1) as f64,
        flushing.as_secs_f64() * 1000.0 / flushes.max(1) as f64,
    );

    // For comparison: a flush after every transaction.
    let single = (sizes.observations / 20).max(10);
    let start = Instant::now();
    for i in 0..single {
        let at = t0() + chrono::Duration::days(1) + chrono::Duration::seconds(i as i64);
        store
            .transaction(|tx| observe(tx, 8, i as i64, "ACTIVE", at))
            .expect("observe");
        rt.block_on(store.flush()).expect("flush");
    }
    let elapsed = start.elapsed();
    println!(
        "no group commit: {} observations, flush after each: {:.0} durable transitions/s",
        single,
        single as f64 / elapsed.as_secs_f64()
    );
}

fn populate(rt: &tokio::runtime::Runtime, path: &Path, sizes: &Sizes) {
    let store = Store::open(options(path)).expect("open");
    let start = Instant::now();
    let per_run = sizes.transitions_per_run;
    for id in 0..sizes.runs {
        let org = 7 + id % 3;
        store
            .transaction(|tx| {
                for seq in 0..per_run {
                    let status = if seq + 1 == per_run {
                        "COMPLETE"
                    } else {
                        STATUSES[seq as usize % 3]
                    };
                    let at = t0() + chrono::Duration::seconds(id * 60 + i64::from(seq));
                    let stored = tx.get_run(org, id)?;
                    let first_sight = stored.is_none();
                    let mut run = stored.unwrap_or_else(|| new_run(org, id, at));
                    let from = run.status.replace(status.to_string());
                    let change = NewTransition {
                        from,
                        to: Some(status.into()),
                        first_sight,
                        at,
                        source: EventSource::Poll,
                    };
                    tx.append_transition(&mut run, change)?;
                }
                let mut run = tx.get_run(org, id)?.expect("run written above");
                // The newest 1% of runs are still active, as in a store with a long history:
                // what the startup scan looks for.
                if id >= sizes.runs - sizes.runs / 100 {
                    run.status = Some("ACTIVE".into());
                }
                run.raw = raw_run(org, id, run.status.as_deref().unwrap_or("ACTIVE"));
                tx.put_run(&run)
            })
            .expect("populate");
        if (id + 1) % 1000 == 0 {
            rt.block_on(store.flush()).expect("flush");
        }
    }
    rt.block_on(store.flush()).expect("flush");
    let elapsed = start.elapsed();
    let total = sizes.runs as u64 * u64::from(per_run);
    println!(
        "populate: {} runs, {} transitions in {:.1} s ({:.0} transitions/s, one transaction per run)",
        sizes.runs,
        total,
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    let stats = store.stats().expect("stats");
    println!(
        "space: {:.1} MiB logical (keys + values), {:.1} MiB on disk, {:.2} bytes on disk per stored byte",
        stats.logical_bytes() as f64 / MIB,
        stats.size_on_disk as f64 / MIB,
        stats.size_on_disk as f64 / stats.logical_bytes() as f64
    );
    println!("writer process peak RSS: {}", rss("VmHWM"));
}

/// Stores `n` webhook events as the receiver does (payload compressed before the transaction),
/// then times a retention pass that finds nothing due: what every hourly pass costs them.
fn webhook_retention(path: &Path, n: u64) {
    const PAYLOAD: &str = include_str!("../tests/fixtures/github/pull_request.opened.json");
    let store = Store::open(options(path)).expect("open");
    let start = Instant::now();
    for first in (0..n).step_by(100) {
        store
            .transaction(|tx| {
                for i in first..(first + 100).min(n) {
                    let event = NewEvent {
                        id: format!("github/bench-{i}"),
                        kind: "github.pull_request".into(),
                        at: Utc::now(),
                        source: EventSource::Webhook,
                        org_id: None,
                        run_id: None,
                        data: json!({"action": "opened", "delivery": format!("bench-{i}")}),
                    };
                    tx.insert_event_with_payload(&event, &Payload::new(PAYLOAD.to_owned()))?;
                }
                Ok(())
            })
            .expect("store webhook events");
    }
    store.flush_blocking().expect("flush");
    println!("webhook events: {n} stored in {}", ms(start.elapsed()));
    let policy = RetentionPolicy {
        max_age: Duration::from_secs(10 * 365 * 24 * 3600),
    };
    let start = Instant::now();
    let pruned = store.prune_once(Utc::now(), &policy).expect("prune");
    assert_eq!(pruned.events, 0);
    println!(
        "retention pass over {n} webhook events (nothing due): {}",
        ms(start.elapsed())
    );
}

/// Runs in a fresh process so that RSS reflects only reopening and reading the store.
fn reopen_child(path: &Path) {
    println!("reopen: fresh process, RSS before open {}", rss("VmRSS"));
    let start = Instant::now();
    let store = Store::open(options(path)).expect("reopen");
    let open = start.elapsed();
    println!("reopen: open took {}, RSS {}", ms(open), rss("VmRSS"));

    let start = Instant::now();
    let mut active = 0u64;
    for run in store.active_runs() {
        run.expect("run decodes");
        active += 1;
    }
    println!(
        "startup scan of active runs (runs_active index): {active} runs in {}, RSS {}",
        ms(start.elapsed()),
        rss("VmRSS")
    );

    let start = Instant::now();
    let transitions = store.transitions_of_run(7, 99).expect("transitions").len();
    println!(
        "transitions of one run: {transitions} in {}",
        ms(start.elapsed())
    );

    let start = Instant::now();
    let mut runs = 0u64;
    for run in store.runs() {
        run.expect("run decodes");
        runs += 1;
    }
    println!(
        "full scan of all runs: {runs} runs in {}, RSS {}",
        ms(start.elapsed()),
        rss("VmRSS")
    );

    let start = Instant::now();
    let policy = RetentionPolicy {
        max_age: Duration::from_secs(10 * 365 * 24 * 3600),
    };
    let pruned = store.prune_once(Utc::now(), &policy).expect("prune");
    println!(
        "retention pass over everything (nothing due): {} ({:?}), RSS {}",
        ms(start.elapsed()),
        pruned,
        rss("VmRSS")
    );
    println!("reopen process peak RSS: {}", rss("VmHWM"));
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// A field of /proc/self/status (Linux), e.g. VmRSS or VmHWM, in MiB.
fn rss(field: &str) -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or_else(|| "n/a".into(), |kb| format!("{:.1} MiB", kb / 1024.0))
}
