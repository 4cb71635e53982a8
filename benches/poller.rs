//! Requests per poller tick against the simulator, compared with the naive approach of one GET
//! per non-terminal run plus a page for new runs. Counts, not times: the figures are exact.
//!
//! `cargo bench --bench poller` prints a table; docs/poller.md records it.

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
const STORED: usize = 10_000;
const ACTIVE: usize = 200;
const NEW_PER_TICK: usize = 20;
const TICKS: usize = 40;
const INTERVAL: Duration = Duration::from_secs(15);
/// Ticks per deep resync at the defaults (15 s interval, 1 h resync).
const TICKS_PER_DEEP: f64 = 240.0;

struct Scenario {
    name: &'static str,
    /// How many of the non-terminal runs are old ones, spread through the history.
    scattered: usize,
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "{STORED} stored runs, {ACTIVE} non-terminal, {NEW_PER_TICK} new per tick, {TICKS} ticks\n"
    );
    println!("| scenario | poller requests/tick | + deep resync (amortized) | naive requests/tick | ratio |");
    println!("|---|---|---|---|---|");
    for scenario in [
        Scenario {
            name: "non-terminal runs are the newest",
            scattered: 0,
        },
        Scenario {
            name: "50 of them paused long ago, spread through history",
            scattered: 50,
        },
        Scenario {
            name: "all 200 paused long ago, spread through history",
            scattered: 200,
        },
    ] {
        rt.block_on(run(&scenario))?;
    }
    Ok(())
}

async fn run(scenario: &Scenario) -> anyhow::Result<()> {
    let sim = Simulator::new(SimConfig::default());
    sim.set_rate_limits(false);
    sim.add_org(ORG, "bench");
    sim.add_user(ORG, 1, "bench");
    sim.add_token("bench-token", 1);
    let mut ids = Vec::with_capacity(STORED);
    for i in 0..STORED {
        ids.push(sim.create_run(ORG, RunPlan::ends("COMPLETE")));
        if i % 50 == 0 {
            sim.advance(Duration::from_secs(1));
        }
    }
    sim.advance(Duration::from_secs(3600));
    // Old non-terminal runs (paused long ago), evenly spread; the rest are the newest runs.
    let step = STORED / scenario.scattered.max(1);
    for k in 0..scenario.scattered {
        sim.set_status(ORG, ids[k * step], Some("PAUSED"));
    }
    let mut rotating: VecDeque<i64> = ids
        .iter()
        .rev()
        .take(ACTIVE - scenario.scattered)
        .rev()
        .copied()
        .collect();
    for &id in &rotating {
        sim.set_status(ORG, id, Some("ACTIVE"));
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
    assert_eq!(poller.tracked_open(), ACTIVE);
    // The paused runs have been paused for more than `stall_after` by the time we measure.
    clock.advance(Duration::from_secs(31 * 60));
    poller.poll_once().await?;

    let mut total = 0u32;
    for _ in 0..TICKS {
        // Steady state: 20 new active runs, the 20 oldest active ones finish.
        for _ in 0..NEW_PER_TICK {
            let id = sim.create_run(ORG, RunPlan::completes());
            sim.set_status(ORG, id, Some("ACTIVE"));
            rotating.push_back(id);
            if let Some(done) = rotating.pop_front() {
                sim.set_status(ORG, done, Some("COMPLETE"));
            }
        }
        sim.advance(INTERVAL);
        clock.advance(INTERVAL);
        total += poller.poll_once().await?.requests();
    }
    assert_eq!(poller.tracked_open(), ACTIVE);
    let per_tick = f64::from(total) / TICKS as f64;
    let amortized = per_tick + f64::from(deep) / TICKS_PER_DEEP;
    // One GET per non-terminal run, plus one page for the new runs.
    let naive = (ACTIVE + 1) as f64;
    println!(
        "| {} | {per_tick:.1} | {amortized:.1} | {naive:.0} | {:.3}x |",
        scenario.name,
        amortized / naive
    );
    server.shutdown().await;
    Ok(())
}
