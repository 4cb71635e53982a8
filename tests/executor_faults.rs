//! The executor under faults on every target (Codegen, GitHub, the webhook receiver): 5xx before
//! and after the handler acted, 429 with and without `Retry-After`, timeouts and dropped
//! connections. Every job finishes or is dead-lettered; comments and created runs happen exactly
//! once; notifications arrive at least once with one key; no request beats a `Retry-After`.

mod executor_support;
mod github_fake;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::Utc;
use codegen_sentinel::actions::codegen::KEY_FIELD;
use codegen_sentinel::actions::github::comment_marker;
use codegen_sentinel::config::ExecutorSettings;
use codegen_sentinel::executor::job::Progress;
use codegen_sentinel::sim::RunPlan;
use codegen_sentinel::store::JobState;
use executor_support::*;
use github_fake::{Chaos, Fault};
use serde_json::{json, Value};

const HOUR: Duration = Duration::from_secs(3600);

fn patient(concurrency: usize) -> ExecutorSettings {
    ExecutorSettings {
        max_attempts: 12,
        ..settings(concurrency)
    }
}

/// One of each fault kind.
fn every_fault() -> Vec<Fault> {
    vec![
        Fault::Status(500),
        Fault::Status(503),
        Fault::StatusAfter(502),
        Fault::RateLimited(Some(3)),
        Fault::RateLimited(None),
        Fault::Delay(Duration::from_secs(30)),
        Fault::DelayAfter(Duration::from_secs(30)),
        Fault::Drop,
        Fault::DropAfter,
    ]
}

/// Every target meets each kind once, then at random: 20% 5xx (before or after the handler
/// acted) and 10% 429s with and without Retry-After, timeouts and dropped connections.
fn unleash(chaos: &Chaos, seed: u64) {
    for fault in every_fault() {
        chaos.inject(fault, 1, None);
    }
    let mut mix = vec![
        Fault::Status(500),
        Fault::Status(503),
        Fault::StatusAfter(502),
        Fault::Status(500),
        Fault::Status(503),
        Fault::StatusAfter(502),
    ];
    mix.extend(every_fault().into_iter().skip(3));
    chaos.random(0.3, mix, seed, None);
}

fn no_violations(name: &str, chaos: &Chaos) {
    let violations = chaos.violations();
    assert!(
        violations.is_empty(),
        "{name}: requests before a Retry-After passed: {violations:#?}"
    );
}

/// The key of step `index` of job `id`, as the executor derives it.
fn key_of(rig: &Rig, id: u64, index: usize) -> String {
    let instance = rig.store.meta("executor_instance").unwrap().unwrap();
    format!("{instance}-{id}-{index}")
}

#[tokio::test(start_paused = true)]
async fn under_faults_on_every_target_each_job_finishes_or_is_dead_lettered_and_effects_hold() {
    let rig = Rig::new().await;
    let run = rig.sim.create_run(ORG, RunPlan::completes());
    rig.sim.advance(Duration::from_secs(120));
    let run_raw = rig.sim.run_json(ORG, run).unwrap();
    let ctx = run_context(run_raw, Value::Null, Utc::now());
    let mut kinds: BTreeMap<u64, &str> = BTreeMap::new();
    for i in 0..10u64 {
        let pr = 100 + i;
        rig.github.add_pr(REPO, pr);
        rig.sim.add_sandbox(ORG, 500 + i as i64, true);
        let jobs: [(&str, Value); 6] = [
            (
                "comment",
                json!([{"action": "github.comment", "with": {"pr": format!("acme/widgets#{pr}"), "body": format!("job {i}")}}]),
            ),
            (
                "create",
                json!([{"action": "codegen.create_run", "with": {"prompt": format!("job {i}"), "repo_id": REPO_ID}}]),
            ),
            (
                "notify",
                json!([{"action": "notify", "with": {"to": "audit", "text": format!("job {i}")}}]),
            ),
            (
                "codegen",
                json!([
                    {"id": "logs", "action": "codegen.fetch_logs", "with": {"limit": 10}},
                    {"action": "codegen.ban_checks"},
                ]),
            ),
            (
                "github",
                json!([
                    {"action": "github.add_labels", "with": {"pr": format!("acme/widgets#{pr}"), "labels": ["agent"]}},
                    {"action": "github.commit_status", "with": {"repo": REPO, "sha": format!("{i:040x}"), "state": "success"}},
                ]),
            ),
            (
                "analyze",
                json!([{"action": "codegen.analyze_logs", "with": {"sandbox_id": 500 + i}}]),
            ),
        ];
        for (kind, steps) in jobs {
            let id = rig.add_job(kind, &format!("{kind}-{i}"), ctx.clone(), steps);
            kinds.insert(id, kind);
        }
    }
    for (n, chaos) in [&rig.sim_chaos, &rig.github_chaos, &rig.hook_chaos]
        .into_iter()
        .enumerate()
    {
        unleash(chaos, 7 + n as u64);
    }
    let running = rig.start(patient(8));
    rig.until_settled(6 * HOUR).await;
    running.stop().await;

    let mut done = HashMap::<&str, usize>::new();
    for (&id, &kind) in &kinds {
        let job = rig.job(id);
        assert!(
            matches!(job.state, JobState::Done | JobState::Dead),
            "job {id}: {:?}",
            job.state
        );
        if job.state == JobState::Done {
            *done.entry(kind).or_default() += 1;
        } else {
            assert_eq!(
                kind, "analyze",
                "only an uncertain analysis may give up: job {id}"
            );
        }
    }
    for kind in ["comment", "create", "notify", "codegen", "github"] {
        assert_eq!(done.get(kind), Some(&10), "{kind}: {done:?}");
    }

    // Comments: exactly once each.
    for i in 0..10u64 {
        let comments = rig.github.comments(REPO, 100 + i);
        assert_eq!(comments.len(), 1, "PR {}: {comments:?}", 100 + i);
    }
    // Created runs: exactly one per job's key.
    let created: Vec<Value> = rig
        .sim
        .run_ids(ORG)
        .into_iter()
        .filter_map(|id| rig.sim.run_json(ORG, id))
        .filter(|r| r["metadata"].get(KEY_FIELD).is_some())
        .collect();
    for (&id, _) in kinds.iter().filter(|(_, k)| **k == "create") {
        let key = key_of(&rig, id, 0);
        let n = created
            .iter()
            .filter(|r| r["metadata"][KEY_FIELD] == json!(key))
            .count();
        assert_eq!(n, 1, "job {id} created {n} runs");
        let output = Progress::of(&rig.job(id).data).unwrap().steps[0]
            .output
            .clone()
            .unwrap();
        assert_eq!(output["metadata"][KEY_FIELD], json!(key));
    }
    // Notifications: at least once, one key, identical bytes, valid signatures.
    let deliveries = rig.receiver.deliveries();
    for (&id, _) in kinds.iter().filter(|(_, k)| **k == "notify") {
        let key = key_of(&rig, id, 0);
        let mine: Vec<_> = deliveries
            .iter()
            .filter(|d| d.idempotency_key.as_deref() == Some(&key))
            .collect();
        assert!(!mine.is_empty(), "job {id} was never delivered");
        assert!(mine
            .iter()
            .all(|d| d.raw == mine[0].raw && d.signature_valid));
    }
    // Analyses: never started twice for one sandbox.
    for i in 0..10 {
        let path = format!("/v1/organizations/{ORG}/sandbox/{}/analyze-logs", 500 + i);
        let handled = rig
            .sim_chaos
            .log()
            .iter()
            .filter(|r| r.path() == path && r.handled)
            .count();
        assert!(handled <= 1, "sandbox {}: {handled} analyses", 500 + i);
    }
    // Every kind of fault was met on every target.
    for (name, chaos) in [
        ("codegen", &rig.sim_chaos),
        ("github", &rig.github_chaos),
        ("webhook", &rig.hook_chaos),
    ] {
        let met: Vec<Fault> = chaos.log().into_iter().filter_map(|r| r.fault).collect();
        for fault in every_fault() {
            assert!(met.contains(&fault), "{name}: {fault:?} never happened");
        }
        // A request held past the client's timeout is dropped with its connection, unhandled.
        let held = chaos
            .log()
            .into_iter()
            .filter(|r| r.fault == Some(Fault::Delay(Duration::from_secs(30))));
        assert!(
            held.clone().all(|r| !r.handled),
            "{name}: a held request was carried out"
        );
        let share = met.len() as f64 / chaos.log().len() as f64;
        assert!(share > 0.2, "{name}: only {share:.2} of requests faulted");
    }
    no_violations("codegen", &rig.sim_chaos);
    no_violations("github", &rig.github_chaos);
    no_violations("webhook", &rig.hook_chaos);
}

#[tokio::test(start_paused = true)]
async fn repeated_uncertain_failures_still_comment_and_create_exactly_once() {
    let rig = Rig::new().await;
    rig.github.add_pr(REPO, 9);
    // Comment: a 502, a failed search, a 503, then a post that lands but never answers.
    rig.github_chaos.inject(Fault::Status(502), 1, Some("POST"));
    rig.github_chaos.inject(Fault::Status(500), 1, Some("GET"));
    rig.github_chaos.inject(Fault::Status(503), 1, Some("POST"));
    rig.github_chaos.inject(Fault::DropAfter, 1, Some("POST"));
    // Create: a 502, then one that is created but answers 500, then a timeout on the search.
    rig.sim_chaos.inject(
        Fault::Status(502),
        1,
        Some("POST /v1/organizations/7/agent/run"),
    );
    rig.sim_chaos.inject(
        Fault::StatusAfter(500),
        1,
        Some("POST /v1/organizations/7/agent/run"),
    );
    // (twice: the client retries a read once itself)
    rig.sim_chaos.inject(
        Fault::Delay(Duration::from_secs(60)),
        2,
        Some("GET /v1/organizations/7/agent/runs"),
    );
    let ctx = run_context(run_json(1, "COMPLETE"), Value::Null, Utc::now());
    let comment = rig.add_job(
        "c",
        "pr-9",
        ctx.clone(),
        json!([
            {"action": "github.comment", "with": {"pr": "acme/widgets#9", "body": "once"}},
        ]),
    );
    let create = rig.add_job(
        "r",
        "create",
        ctx,
        json!([
            {"action": "codegen.create_run", "with": {"prompt": "once"}},
        ]),
    );
    let running = rig.start(patient(2));
    rig.until_settled(HOUR).await;
    running.stop().await;

    assert_eq!(rig.job(comment).state, JobState::Done);
    let comments = rig.github.comments(REPO, 9);
    assert_eq!(comments.len(), 1);
    assert!(comments[0]
        .body
        .ends_with(&comment_marker(&key_of(&rig, comment, 0))));
    let posts: Vec<_> = rig
        .github_chaos
        .log()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 3, "three posts, one landed");
    assert_eq!(posts.iter().filter(|r| r.handled).count(), 1);

    assert_eq!(rig.job(create).state, JobState::Done);
    assert_eq!(rig.sim.run_ids(ORG).len(), 1, "one run created");
    let creates: Vec<_> = rig
        .sim_chaos
        .log()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(creates.len(), 2);
    let attempts = Progress::of(&rig.job(create).data).unwrap().steps[0].attempts;
    assert_eq!(attempts, 4, "502, created-but-500, search timed out, found");
}

#[tokio::test(start_paused = true)]
async fn a_webhook_repeated_after_uncertain_failures_keeps_its_key() {
    let rig = Rig::new().await;
    rig.hook_chaos.inject(Fault::StatusAfter(500), 1, None);
    rig.hook_chaos.inject(Fault::DropAfter, 1, None);
    rig.hook_chaos
        .inject(Fault::DelayAfter(Duration::from_secs(60)), 1, None);
    rig.hook_chaos.inject(Fault::Status(503), 1, None);
    let ctx = run_context(run_json(1, "FAILED"), Value::Null, Utc::now());
    let id = rig.add_job("n", "k", ctx, json!([
        {"action": "notify", "with": {"to": "audit", "text": "at least once", "payload": {"n": 1}}},
    ]));
    let running = rig.start(patient(1));
    rig.until_settled(HOUR).await;
    running.stop().await;
    assert_eq!(rig.job(id).state, JobState::Done);
    let got = rig.receiver.deliveries();
    assert_eq!(
        got.len(),
        4,
        "three landed without an answer, then one answered"
    );
    let key = key_of(&rig, id, 0);
    assert!(got
        .iter()
        .all(|d| d.idempotency_key.as_deref() == Some(key.as_str())));
    assert!(got.iter().all(|d| d.raw == got[0].raw && d.signature_valid));
    assert_eq!(got[0].body["idempotency_key"], json!(key));
}

#[tokio::test(start_paused = true)]
async fn no_request_is_sent_before_a_retry_after_has_passed() {
    let rig = Rig::new().await;
    for i in 0..20u64 {
        rig.github.add_pr(REPO, i + 1);
    }
    for chaos in [&rig.sim_chaos, &rig.github_chaos, &rig.hook_chaos] {
        for secs in [5, 17, 2, 40] {
            chaos.inject(Fault::RateLimited(Some(secs)), 2, None);
            chaos.inject(Fault::RateLimited(None), 1, None);
        }
    }
    let ctx = run_context(run_json(1, "FAILED"), Value::Null, Utc::now());
    for i in 0..20u64 {
        rig.add_job("m", &format!("k{i}"), ctx.clone(), json!([
            {"action": "github.add_labels", "with": {"pr": format!("acme/widgets#{}", i + 1), "labels": ["x"]}},
            {"action": "codegen.create_run", "with": {"prompt": format!("p{i}")}},
            {"action": "notify", "with": {"to": "audit", "text": "t"}},
            {"action": "notify", "with": {"to": "ops", "text": "t"}},
        ]));
    }
    let running = rig.start(patient(8));
    rig.until_settled(3 * HOUR).await;
    running.stop().await;
    assert!(
        rig.states().iter().all(|s| *s == JobState::Done),
        "{:?}",
        rig.states()
    );
    for (name, chaos) in [
        ("codegen", &rig.sim_chaos),
        ("github", &rig.github_chaos),
        ("webhook", &rig.hook_chaos),
    ] {
        assert!(chaos.blocks_announced() >= 4, "{name}");
        no_violations(name, chaos);
    }
    assert_eq!(rig.sim.run_ids(ORG).len(), 20);
}
