//! Demo data and background activity: a seeded world with a realistic run history, a steady
//! stream of new runs with a realistic outcome mix, and a wall-clock driver for the virtual clock.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::plan::RunPlan;
use super::Simulator;

/// The organisation the demo token works in.
pub(crate) const DEMO_ORG: i64 = 7;
/// The token `seed_demo` returns.
const DEMO_TOKEN: &str = "sim-demo-token-acme";
/// The demo user behind that token.
const DEMO_USER: i64 = 101;
/// The sandbox with setup logs (the one DESIGN's example config names).
const DEMO_SANDBOX: i64 = 42;
/// How often the real-time clock moves the virtual clock.
const CLOCK_TICK: Duration = Duration::from_secs(1);
/// Seed of the run stream, so a demo is reproducible.
const STREAM_SEED: u64 = 0x5e_17_1e;

impl Simulator {
    /// Orgs, users, tokens, repos, sandboxes and a realistic set of runs (finished, failed,
    /// running, paused, unknown and null statuses). Returns the accepted token.
    pub fn seed_demo(&self) -> String {
        self.add_org(DEMO_ORG, "Acme Robotics");
        self.add_org(8, "Globex Labs");
        self.add_user(DEMO_ORG, DEMO_USER, "acme-ops");
        self.add_user(DEMO_ORG, 102, "alice-dev");
        self.add_user(DEMO_ORG, 103, "bob-dev");
        self.add_user(8, 201, "globex-admin");
        self.add_token(DEMO_TOKEN, DEMO_USER);
        self.add_token("sim-demo-token-globex", 201);
        self.add_repo(DEMO_ORG, 301, "acme/robot-firmware");
        self.add_repo(DEMO_ORG, 302, "acme/control-plane");
        self.add_repo(DEMO_ORG, 303, "acme/legacy-docs");
        self.archive_repo(303);
        self.add_repo(8, 401, "globex/lab-notes");
        self.add_sandbox(DEMO_ORG, DEMO_SANDBOX, true);
        self.add_sandbox(DEMO_ORG, 43, false);
        self.connect_oauth(DEMO_USER, DEMO_ORG, "linear");
        self.connect_oauth(DEMO_USER, DEMO_ORG, "notion");
        self.seed_history();
        DEMO_TOKEN.to_owned()
    }

    fn seed_history(&self) {
        let org = DEMO_ORG;
        let minute = Duration::from_secs(60);
        let first = self.create_run(
            org,
            RunPlan::completes()
                .user(102)
                .prompt("Add retries to the telemetry uploader")
                .metadata(json!({"ticket": "ENG-101"})),
        );
        self.create_run(
            org,
            RunPlan::ends("FAILED")
                .prompt("Upgrade the motor controller SDK")
                .metadata(json!({"sandbox_id": DEMO_SANDBOX})),
        );
        self.create_run(
            org,
            RunPlan::completes()
                .source_type("GITHUB")
                .repo(302)
                .prompt("Fix the race in the scheduler"),
        );
        self.advance(2 * minute);
        if let Some(pr) = self.first_pr(first) {
            self.create_run(
                org,
                RunPlan::completes()
                    .on_pr(pr)
                    .source_type("GITHUB_CHECK_SUITE")
                    .prompt("Fix the failing lint check"),
            );
        }
        self.create_run(org, RunPlan::ends("ERROR").source_type("SLACK"));
        self.create_run(org, RunPlan::ends("TIMEOUT").source_type("LINEAR"));
        self.create_run(org, RunPlan::ends("PAUSED").source_type("CHAT"));
        self.create_run(org, RunPlan::ends("CANCELLED"));
        self.advance(2 * minute);
        let unknown = self.create_run(org, RunPlan::completes().prompt("Profile the planner"));
        self.set_status(org, unknown, Some("RUNNING"));
        let null = self.create_run(org, RunPlan::completes().source_type("LOCAL"));
        self.set_status(org, null, None);
        self.create_run(org, RunPlan::completes().starts_pending().user(103));
        self.create_run(org, RunPlan::completes().prompt("Document the REST API"));
        self.advance(Duration::from_secs(20));
    }

    fn first_pr(&self, run_id: i64) -> Option<i64> {
        let state = self.lock();
        state
            .runs
            .get(&run_id)
            .and_then(|r| r.pr_ids.first().copied())
    }

    /// Starts a new run every `every` in the first org that has repositories, until `cancel`.
    pub fn spawn_run_stream(&self, every: Duration, cancel: CancellationToken) {
        let sim = self.clone();
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(STREAM_SEED);
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = ticks.tick() => { sim.start_stream_run(&mut rng); }
                }
            }
        });
    }

    /// Moves the virtual clock with the tokio clock, once per second, until `cancel`.
    pub fn spawn_realtime_clock(&self, cancel: CancellationToken) {
        let sim = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(CLOCK_TICK);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut last = Instant::now();
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = ticks.tick() => {
                        let now = Instant::now();
                        sim.advance(now - last);
                        last = now;
                    }
                }
            }
        });
    }

    /// Creates one run with an outcome drawn from the demo mix; `None` without a suitable org.
    pub(crate) fn start_stream_run(&self, rng: &mut StdRng) -> Option<i64> {
        let (org, open_pr) = {
            let state = self.lock();
            let org = state.repos.values().map(|r| r.org_id).min()?;
            let open_pr = state
                .prs
                .iter()
                .filter(|(_, pr)| pr.org_id == org && !pr.banned && pr.state == "open")
                .map(|(id, _)| *id)
                .next_back();
            (org, open_pr)
        };
        let roll: usize = rng.random_range(0..100);
        let plan = match roll {
            0..55 => {
                let plan = RunPlan::completes().prompt(PROMPTS[roll % PROMPTS.len()]);
                if roll % 4 == 0 {
                    plan.starts_pending()
                } else {
                    plan
                }
            }
            55..63 => RunPlan::completes().source_type(["GITHUB", "SLACK", "LINEAR"][roll % 3]),
            63..71 => match open_pr {
                Some(pr) => RunPlan::completes()
                    .on_pr(pr)
                    .source_type("GITHUB_CHECK_SUITE")
                    .prompt("Fix the failing CI check"),
                None => RunPlan::completes(),
            },
            71..78 => RunPlan::ends("FAILED"),
            78..84 => RunPlan::ends("ERROR"),
            84..88 => RunPlan::ends("TIMEOUT"),
            88..90 => RunPlan::ends("MAX_ITERATIONS_REACHED"),
            90..92 => RunPlan::ends("OUT_OF_TOKENS"),
            92..95 => RunPlan::ends("CANCELLED"),
            95..98 => RunPlan::ends("PAUSED").source_type("CHAT"),
            _ => RunPlan::steps(vec![
                (Some("ACTIVE"), Duration::from_secs(20)),
                (Some("RUNNING"), Duration::from_secs(40)),
                (Some("COMPLETE"), Duration::ZERO),
            ]),
        };
        let plan = plan.metadata(json!({"sandbox_id": DEMO_SANDBOX, "stream": true}));
        Some(self.create_run(org, plan))
    }
}

/// Prompts of streamed API runs.
const PROMPTS: [&str; 5] = [
    "Add a health endpoint to the control plane",
    "Fix the flaky serial-port test",
    "Bump the embedded HAL crate",
    "Translate the setup guide to German",
    "Reduce allocations in the path planner",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimConfig;

    #[test]
    fn demo_seed_has_a_realistic_mix() {
        let sim = Simulator::new(SimConfig::default());
        let token = sim.seed_demo();
        assert_eq!(token, DEMO_TOKEN);
        let statuses: Vec<Option<String>> = sim
            .run_ids(DEMO_ORG)
            .into_iter()
            .filter_map(|id| sim.run_json(DEMO_ORG, id))
            .map(|r| r["status"].as_str().map(str::to_owned))
            .collect();
        for wanted in [
            "COMPLETE", "FAILED", "ERROR", "TIMEOUT", "PAUSED", "RUNNING", "ACTIVE",
        ] {
            assert!(
                statuses.iter().any(|s| s.as_deref() == Some(wanted)),
                "{wanted} missing from {statuses:?}"
            );
        }
        assert!(statuses.contains(&None));
    }

    #[test]
    fn stream_mix_is_mostly_complete_with_some_failures() {
        let sim = Simulator::new(SimConfig::default());
        sim.seed_demo();
        let mut rng = StdRng::seed_from_u64(STREAM_SEED);
        for _ in 0..200 {
            sim.start_stream_run(&mut rng);
        }
        sim.advance(Duration::from_secs(600));
        let runs: Vec<serde_json::Value> = sim
            .run_ids(DEMO_ORG)
            .into_iter()
            .filter_map(|id| sim.run_json(DEMO_ORG, id))
            .collect();
        let count = |s: &str| runs.iter().filter(|r| r["status"] == s).count();
        assert!(count("COMPLETE") > 100);
        assert!(count("FAILED") + count("ERROR") > 10);
        assert!(count("PAUSED") > 0);
        let with_pr = runs
            .iter()
            .filter(|r| {
                r["github_pull_requests"]
                    .as_array()
                    .is_some_and(|p| !p.is_empty())
            })
            .count();
        assert!(with_pr > 80);
    }
}
