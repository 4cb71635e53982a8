//! The engine behind the real poller and the simulator: the shipped rules fire on the events
//! the poller records, in the same transaction, once per (rule, key), across repeated polls
//! and restarts, with journal entries for every candidate rule and jobs in the job contract.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use codegen_sentinel::api::{OrgId, RateBudget};
use codegen_sentinel::clock::{Clock, ManualClock};
use codegen_sentinel::config::load_settings;
use codegen_sentinel::engine::Engine;
use codegen_sentinel::rules::{compile_paths, CompileEnv, RuleSet};
use codegen_sentinel::sim::RunPlan;
use codegen_sentinel::sources::poller::{Poller, PollerConfig};
use codegen_sentinel::store::{JobRecord, JobState, JournalRecord, Store, StoreOptions};
use common::*;

struct Rig {
    server: codegen_sentinel::sim::SimServer,
    dir: tempfile::TempDir,
    clock: ManualClock,
    rules: Arc<ArcSwap<RuleSet>>,
}

fn shipped_rules() -> RuleSet {
    let settings = load_settings(Path::new("tests/fixtures/config/design-example.yaml")).unwrap();
    let compiled = compile_paths(
        &[PathBuf::from("rules")],
        &CompileEnv::from_settings(&settings),
    );
    compiled.into_result().unwrap()
}

impl Rig {
    async fn new() -> Rig {
        let sim = seeded_sim();
        let clock = ManualClock::new(sim.now());
        Rig {
            server: serve(sim).await,
            dir: tempfile::tempdir().unwrap(),
            clock,
            rules: Arc::new(ArcSwap::from_pointee(shipped_rules())),
        }
    }

    fn store(&self) -> Store {
        Store::open(StoreOptions::new(self.dir.path())).unwrap()
    }

    fn advance(&self, by: Duration) {
        self.server.sim.advance(by);
        self.clock.advance(by);
    }

    fn poller(&self, store: &Store) -> Poller {
        let config = PollerConfig::defaults(OrgId(ORG));
        let client = client_with(
            &self.server.base_url,
            Arc::new(RateBudget::unlimited()),
            fast_retry(),
        );
        let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
        let vars = serde_json::json!({"default_sandbox_id": 42})
            .as_object()
            .unwrap()
            .clone();
        let engine = Engine::new(store.clone(), self.rules.clone(), vars, clock.clone());
        Poller::new(config, client, store.clone(), clock, Arc::new(engine)).unwrap()
    }
}

fn jobs(store: &Store) -> Vec<JobRecord> {
    store.jobs().map(Result::unwrap).collect()
}

/// Every journal entry of a run's events: (event type, rule, outcome).
fn journal_of_run(store: &Store, run: i64) -> Vec<(String, JournalRecord)> {
    let mut out = Vec::new();
    for event in store.events_of_run(ORG, run).unwrap() {
        for entry in store.journal_of_event(event.seq).unwrap() {
            out.push((event.kind.clone(), entry));
        }
    }
    out
}

#[tokio::test]
async fn a_failed_run_is_diagnosed_once_with_a_job_in_the_contract_shape() {
    let rig = Rig::new().await;
    let store = rig.store();
    let mut poller = rig.poller(&store);
    poller.poll_once().await.unwrap();
    let run = rig.server.sim.create_run(ORG, RunPlan::ends("FAILED"));
    for _ in 0..6 {
        poller.poll_once().await.unwrap();
        rig.advance(Duration::from_secs(600));
    }
    let jobs = jobs(&store);
    let diagnose: Vec<&JobRecord> = jobs
        .iter()
        .filter(|j| j.rule == "diagnose-failed-runs")
        .collect();
    assert_eq!(diagnose.len(), 1, "{jobs:#?}");
    let job = diagnose[0];
    assert_eq!(job.state, JobState::Pending);
    assert_eq!(job.key, job.event_id);
    assert!(job.event_id.ends_with("/finished"));
    let data = &job.data;
    assert_eq!(data["version"], 1);
    assert_eq!(data["rules_hash"], rig.rules.load().hash());
    assert_eq!(data["rule"]["name"], "diagnose-failed-runs");
    assert_eq!(
        data["rule"]["description"],
        "Fetch the logs of a failed run, start a log analysis, tell ops."
    );
    let ctx = &data["context"];
    assert_eq!(ctx["event"]["type"], "run.finished");
    assert_eq!(ctx["event"]["id"], job.event_id.as_str());
    assert_eq!(ctx["event"]["source"], "poll");
    assert_eq!(
        (ctx["event"]["from"].as_str(), ctx["event"]["to"].as_str()),
        (Some("ACTIVE"), Some("FAILED"))
    );
    assert_eq!(ctx["run"]["id"], run);
    assert_eq!(ctx["run"]["status"], "FAILED");
    assert_eq!(ctx["vars"]["default_sandbox_id"], 42);
    assert_eq!(ctx["rule"]["name"], "diagnose-failed-runs");
    assert!(ctx["now"].as_str().unwrap().ends_with('Z'));
    for key in ["pr", "payload", "summary"] {
        assert!(ctx.get(key).is_some(), "context lacks {key}");
    }
    let actions: Vec<&str> = data["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["codegen.fetch_logs", "codegen.analyze_logs", "notify"]
    );
    assert_eq!(
        data["steps"][0]["with"],
        serde_json::json!({"limit": 50, "reverse": true})
    );
    assert_eq!(data["progress"], serde_json::json!({}));

    let journal = journal_of_run(&store, run);
    let finished: Vec<_> = journal
        .iter()
        .filter(|(k, j)| k == "run.finished" && j.rule == "diagnose-failed-runs")
        .collect();
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0].1.outcome, "fired");
    assert!(finished[0]
        .1
        .reason
        .as_deref()
        .unwrap()
        .ends_with(&format!("job {}", job.id)));
    assert!(journal
        .iter()
        .all(|(_, j)| j.rules_hash == rig.rules.load().hash()));
}

#[tokio::test]
async fn a_completed_run_is_journaled_as_not_matched_with_the_reason() {
    let rig = Rig::new().await;
    let store = rig.store();
    let mut poller = rig.poller(&store);
    poller.poll_once().await.unwrap();
    let run = rig
        .server
        .sim
        .create_run(ORG, RunPlan::completes().source_type("LOCAL"));
    for _ in 0..8 {
        poller.poll_once().await.unwrap();
        rig.advance(Duration::from_secs(60));
    }
    let journal = journal_of_run(&store, run);
    let decisions: Vec<(&str, &str, &str)> = journal
        .iter()
        .map(|(k, j)| (k.as_str(), j.rule.as_str(), j.outcome.as_str()))
        .collect();
    assert!(
        decisions.contains(&("run.finished", "diagnose-failed-runs", "not_matched")),
        "{decisions:?}"
    );
    assert!(
        decisions.contains(&("run.pr_opened", "ban-checks-on-agent-prs", "not_matched")),
        "{decisions:?}"
    );
    let reason = journal
        .iter()
        .find(|(_, j)| j.rule == "diagnose-failed-runs")
        .and_then(|(_, j)| j.reason.clone())
        .unwrap();
    assert_eq!(
        reason,
        r#"`when` is false: run.status in ["FAILED", "ERROR"] (run.status = "COMPLETE")"#
    );
    assert!(jobs(&store).is_empty());
}

#[tokio::test]
async fn an_api_run_opening_a_pr_gets_its_checks_banned_once_per_pr() {
    let rig = Rig::new().await;
    let store = rig.store();
    let mut poller = rig.poller(&store);
    poller.poll_once().await.unwrap();
    let run = rig.server.sim.create_run(ORG, RunPlan::completes());
    for _ in 0..8 {
        poller.poll_once().await.unwrap();
        rig.advance(Duration::from_secs(60));
    }
    let bans: Vec<JobRecord> = jobs(&store)
        .into_iter()
        .filter(|j| j.rule == "ban-checks-on-agent-prs")
        .collect();
    assert_eq!(bans.len(), 1);
    let pr_url = rig.server.sim.run_json(ORG, run).unwrap()["github_pull_requests"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(bans[0].key, pr_url);
    assert_eq!(bans[0].data["context"]["pr"]["url"], pr_url.as_str());
    let firing = store
        .firing("ban-checks-on-agent-prs", &pr_url)
        .unwrap()
        .unwrap();
    assert_eq!(firing.count_in_window, 1);
    assert!(
        !firing.by_event,
        "keyed by the rule's own key: kept by retention"
    );
}

#[tokio::test]
async fn the_same_event_offered_twice_yields_one_job() {
    let rig = Rig::new().await;
    let store = rig.store();
    let mut poller = rig.poller(&store);
    poller.poll_once().await.unwrap();
    rig.server.sim.create_run(ORG, RunPlan::ends("ERROR"));
    for _ in 0..4 {
        poller.poll_once().await.unwrap();
        poller.deep_resync().await.unwrap();
        rig.advance(Duration::from_secs(600));
    }
    let finished = store
        .events_after(0)
        .map(Result::unwrap)
        .find(|e| e.kind == "run.finished")
        .unwrap();
    // Offer the stored event to the engine again, as a redelivery would.
    let vars = serde_json::Map::new();
    let clock: Arc<dyn Clock> = Arc::new(rig.clock.clone());
    let engine = Engine::new(store.clone(), rig.rules.clone(), vars, clock);
    for _ in 0..2 {
        store
            .transaction(|tx| codegen_sentinel::events::EventSink::on_event(&engine, tx, &finished))
            .unwrap();
    }
    let diagnose = jobs(&store)
        .into_iter()
        .filter(|j| j.rule == "diagnose-failed-runs")
        .count();
    assert_eq!(diagnose, 1);
}

#[tokio::test]
async fn a_restart_between_evaluation_and_execution_yields_one_job() {
    let rig = Rig::new().await;
    let run;
    {
        let store = rig.store();
        let mut poller = rig.poller(&store);
        poller.poll_once().await.unwrap();
        run = rig.server.sim.create_run(ORG, RunPlan::ends("FAILED"));
        rig.advance(Duration::from_secs(600));
        poller.poll_once().await.unwrap();
        store.flush().await.unwrap();
        assert_eq!(jobs(&store).len(), 1);
        // The daemon stops here: the job was written, nothing executed it.
    }
    let store = rig.store();
    let mut poller = rig.poller(&store);
    for _ in 0..3 {
        poller.poll_once().await.unwrap();
        rig.advance(Duration::from_secs(60));
    }
    let all = jobs(&store);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].state, JobState::Pending);
    assert_eq!(store.open_jobs().unwrap().len(), 1);
    assert_eq!(all[0].data["context"]["run"]["id"], run);
    // After the restart the first poll is a `startup` one; it saw nothing new.
    let sources: Vec<_> = store
        .events_of_run(ORG, run)
        .unwrap()
        .iter()
        .map(|e| e.source)
        .collect();
    assert!(
        sources.iter().all(|s| s.as_str() != "startup"),
        "{sources:?}"
    );
}
