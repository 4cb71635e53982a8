//! Requests per poller tick against the simulator, compared with the naive approach of one GET
//! per non-terminal run plus a page for new runs. Counts, not times: the figures are exact.
//!
//! `cargo bench --bench poller` prints a table; docs/poller.md records it. Without `--bench` (as
//! under `cargo test --all-targets`) it runs a small smoke version of the same scenarios.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use codegen_sentinel::api::{CodegenClient, OrgId, RateBudget};
use codegen_sentinel::clock::{Clock, ManualClock};
use codegen_sentinel::events::NoSink;
use codegen_sentinel::retry::RetryPolicy;
use codegen_sentinel::sim::{RunPlan, SimConfig, Simulator};
use codegen_sentinel::sources::poller::{Poller, PollerConfig};
use codegen_sentinel::store::{Store, StoreOptions};
use secrecy::SecretString;

const ORG: i64 = 7;
/// The full run's sizes: (stored runs, non-terminal, new per tick, ticks).
const FULL: Sizes = Sizes {
    stored: 10_000,
    active: 200,
    new_per_tick: 20,
    ticks: 40,
};
/// The smoke run's sizes.
const SMOKE: Sizes = Sizes {
    stored: 600,
    active: 40,
    new_per_tick: 4,
    ticks: 4,
};
const INTERVAL: Duration = Duration::from_secs(15);
/// Ticks per deep resync at the defaults (15 s interval, 1 h resync).
const TICKS_PER_DEEP: f64 = 240.0;

#[derive(Clone, Copy)]
struct Sizes {
    stored: usize,
    active: usize,
    new_per_tick: usize,
    ticks: usize,
}

struct Scenario {
    name: &'static str,
    /// How many of the non-terminal runs are old ones, spread through the history.
    scattered: usize,
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let n = if std::env::args().any(|a| a == "--bench") {
        FULL
    } else {
        SMOKE
    };
    println!(
        "{} stored runs, {} non-terminal, {} new per tick, {} ticks\n",
        n.stored, n.active, n.new_per_tick, n.ticks
    );
    println!("| scenario | poller requests/tick | + deep resync (amortized) | naive requests/tick | ratio |");
    println!("|---|---|---|---|---|");
    for scenario in [
        Scenario {
            name: "non-terminal runs are the newest",
            scattered: 0,
        },
        Scenario {
            name: "a quarter of them paused long ago, spread through history",
            scattered: n.active / 4,
        },
        Scenario {
            name: "all of them paused long ago, spread through history",
            scattered: n.active,
        },
    ] {
        rt.block_on(run(&scenario, n))?;
    }
    Ok(())
}

async fn run(scenario: &Scenario, n: Sizes) -> anyhow::Result<()> {
    let (stored, active, new_per_tick, ticks) = (n.stored, n.active, n.new_per_tick, n.ticks);
    let sim = Simulator::new(SimConfig::default());
    sim.set_rate_limits(false);
    sim.add_org(ORG, "bench");
    sim.add_user(ORG, 1, "bench");
    sim.add_token("bench-token", 1);
    let mut ids = Vec::with_capacity(stored);
    for i in 0..stored {
        ids.push(sim.create_run(ORG, RunPlan::ends("COMPLETE")));
        if i % 50 == 0 {
            sim.advance(Duration::from_secs(1));
        }
    }
    sim.advance(Duration::from_secs(3600));
    // Old non-terminal runs (paused long ago), evenly spread; the rest are the newest runs.
    let step = stored / scenario.scattered.max(1);
    for k in 0..scenario.scattered {
        sim.set_status(ORG, ids[k * step], Some("PAUSED"));
    }
    let mut rotating: VecDeque<i64> = ids
        .iter()
        .rev()
        .take(active - scenario.scattered)
        .rev()
        .copied()
        .collect();
    for &id in &rotating {
        sim.set_status(ORG, id, Some("active"));
    }
    let server = sim.clone().serve("127.0.0.1:0".parse()?).await?;
    let client = CodegenClient::builder(&server.base_url, SecretString::from("bench-token"))
        .budget(Arc::new(RateBudget::unlimited()))
        .retry(RetryPolicy::never())
        .build()?;
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreOptions::new(dir.path()))?;
    let clock = ManualClock::new(sim.now());
    let config = PollerConfig {
        org: OrgId(ORG),
        interval: INTERVAL,
        stall_after: Duration::from_secs(30 * 60),
        deep_resync: Duration::from_secs(3600),
        backfill: Duration::from_secs(365 * 24 * 3600),
    };
    let clock_dyn: Arc<dyn Clock> = Arc::new(clock.clone());
    let mut poller = Poller::new(config, client, store, clock_dyn, Arc::new(NoSink))?;
    let deep = poller.deep_resync().await?.requests();
    assert_eq!(poller.tracked_open(), active);
    // The paused runs have been paused for more than `stall_after` by the time we measure.
    clock.advance(Duration::from_secs(31 * 60));
    poller.poll_once().await?;

    let mut total = 0u32;
    for _ in 0..ticks {
        // Steady state: 20 new active runs, the 20 oldest active ones finish.
        for _ in 0..new_per_tick {
            let id = sim.create_run(ORG, RunPlan::completes());
            sim.set_status(ORG, id, Some("active"));
            rotating.push_back(id);
            if let Some(done) = rotating.pop_front() {
                sim.set_status(ORG, done, Some("COMPLETE"));
            }
        }
        sim.advance(INTERVAL);
        clock.advance(INTERVAL);
        total += poller.poll_once().await?.requests();
    }
    assert_eq!(poller.tracked_open(), active);
    let per_tick = f64::from(total) / ticks as f64;
    let amortized = per_tick + f64::from(deep) / TICKS_PER_DEEP;
    // One GET per non-terminal run, plus one page for the new runs.
    let naive = (active + 1) as f64;
    println!(
        "| {} | {per_tick:.1} | {amortized:.1} | {naive:.0} | {:.3}x |",
        scenario.name,
        amortized / naive
    );
    server.shutdown().await;
    Ok(())
}
