//! Rules, jobs and effects through the real `run` process: the DESIGN rules end to end against
//! the simulator, the fake GitHub and a webhook receiver; and kill -9 at 100 random moments while
//! 300 jobs execute, after which every job is done and no effect was doubled.

mod common;
mod github_fake;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use std::time::Duration;

use codegen_sentinel::actions::codegen::KEY_FIELD;
use codegen_sentinel::sim::RunPlan;
use codegen_sentinel::store::{JobState, Store, StoreOptions};
use common::*;
use github_fake::{one_scope, Chaos, FakeGithub, Fault, Receiver, TokioClock};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const GITHUB_TOKEN: &str = "ghp-daemon-test";
const HOOK_SECRET: &str = "audit-hook-secret";
const PRS: u64 = 400;

struct World {
    sim: codegen_sentinel::sim::SimServer,
    github: FakeGithub,
    chaos: Chaos,
    receiver: Receiver,
    _served: Vec<github_fake::Served>,
    dir: tempfile::TempDir,
    config: PathBuf,
}

async fn world(rules: &str) -> World {
    let sim = seeded_sim();
    sim.set_rate_limits(false);
    let sim = common::serve(sim).await;
    let github = FakeGithub::new(GITHUB_TOKEN);
    for n in 1..=PRS {
        github.add_pr("acme/widgets", n);
    }
    let chaos = Chaos::new(one_scope, TokioClock::new().func());
    let github_served = github_fake::serve_github(&github, &chaos).await;
    let receiver = Receiver::new(Some(HOOK_SECRET));
    let receiver_served = github_fake::net::serve(receiver.router()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/rules.yaml"), rules).unwrap();
    let config = dir.path().join("sentinel.yaml");
    std::fs::write(
        &config,
        format!(
            "codegen:\n  base_url: {}\n  token_env: SENTINEL_TEST_TOKEN\n  org_ids: [{ORG}]\n  poll_interval: 200ms\n\
             store:\n  path: {}\n\
             server:\n  listen: 127.0.0.1:0\n\
             rules:\n  paths: [{}]\n\
             github:\n  base_url: {}\n  token_env: SENTINEL_TEST_GITHUB_TOKEN\n\
             notifiers:\n  audit:\n    type: webhook\n    url: {}/audit\n    secret_env: SENTINEL_TEST_HOOK_SECRET\n\
             vars:\n  default_sandbox_id: {SANDBOX}\n\
             executor:\n  backoff_base: 100ms\n  backoff_cap: 1s\n",
            sim.base_url,
            dir.path().join("store").display(),
            dir.path().join("rules").display(),
            github_served.base_url,
            receiver_served.base_url,
        ),
    )
    .unwrap();
    World {
        sim,
        github,
        chaos,
        receiver,
        _served: vec![github_served, receiver_served],
        dir,
        config,
    }
}

fn start(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_codegen-sentinel"))
        .args(["run", "--config"])
        .arg(config)
        .env("SENTINEL_TEST_TOKEN", TOKEN)
        .env("SENTINEL_TEST_GITHUB_TOKEN", GITHUB_TOKEN)
        .env("SENTINEL_TEST_HOOK_SECRET", HOOK_SECRET)
        .env_remove("SENTINEL_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn stop(child: Child) -> String {
    let out = terminate(child).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    stderr
}

const DESIGN_RULES: &str = r#"
rules:
  - name: diagnose-failed-runs
    trigger: run.finished
    when: run.status in ["FAILED", "ERROR"]
    steps:
      - id: logs
        action: codegen.fetch_logs
        with: { limit: 50, reverse: true }
      - id: analysis
        action: codegen.analyze_logs
        with: { sandbox_id: "{{ run.metadata.sandbox_id | default(vars.default_sandbox_id) }}" }
      - action: notify
        with:
          to: audit
          text: "Run {{ run.id }} ended {{ run.status }}: {{ run.web_url }} (analysis run {{ steps.analysis.agent_run_id }})"
  - name: ban-checks-on-agent-prs
    trigger: run.pr_opened
    when: run.source_type == "API"
    key: "{{ pr.url }}"
    cooldown: 1h
    steps:
      - action: codegen.ban_checks
      - action: github.comment
        with:
          pr: "{{ pr.url }}"
          body: "Opened by Codegen run {{ run.id }}; automatic check fixes are off for this PR."
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_is_diagnosed_and_an_agent_pr_banned_through_the_daemon() {
    let w = world(DESIGN_RULES).await;
    let sim = w.sim.sim.clone();
    let child = start(&w.config);
    // The first sync of an empty store is a silent baseline: let it happen first.
    wait_for("the first poll", Duration::from_secs(20), || {
        !sim.requests().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let failed = sim.create_run(ORG, RunPlan::ends("FAILED"));
    let agent = sim.create_run(ORG, RunPlan::completes());
    let cancel = CancellationToken::new();
    drive_clock(sim.clone(), 20, Duration::from_millis(50), cancel.clone());

    let receiver = w.receiver.clone();
    wait_for("the notification", Duration::from_secs(30), || {
        receiver.deliveries().iter().any(|d| {
            d.body["text"]
                .as_str()
                .is_some_and(|t| t.contains(&format!("Run {failed} ended FAILED")))
        })
    })
    .await;
    let github = w.github.clone();
    wait_for("the PR comment", Duration::from_secs(30), || {
        !github.comments("acme/widgets", 1).is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    cancel.cancel();
    stop(child).await;

    let requests = sim.requests();
    let logs_path = format!("/v1/alpha/organizations/{ORG}/agent/run/{failed}/logs");
    assert!(
        requests
            .iter()
            .any(|r| r.path == logs_path && r.status == 200),
        "logs fetched"
    );
    let analyze = format!("/v1/organizations/{ORG}/sandbox/{SANDBOX}/analyze-logs");
    assert_eq!(
        requests.iter().filter(|r| r.path == analyze).count(),
        1,
        "one analysis, of sandbox {SANDBOX}"
    );
    let notes: Vec<_> = w
        .receiver
        .deliveries()
        .into_iter()
        .filter(|d| {
            d.body["text"]
                .as_str()
                .is_some_and(|t| t.contains(&format!("Run {failed} ")))
        })
        .collect();
    assert!(notes
        .iter()
        .all(|d| d.signature_valid && d.idempotency_key.is_some()));
    assert!(notes[0].body["text"]
        .as_str()
        .unwrap()
        .contains("analysis run "));
    assert!(sim.is_banned(ORG, agent), "checks banned on the agent's PR");
    let comments = w.github.comments("acme/widgets", 1);
    assert_eq!(comments.len(), 1, "one comment: {comments:?}");
    assert!(comments[0]
        .body
        .contains(&format!("Opened by Codegen run {agent}")));
    drop(w.dir);
}

const CRASH_RULES: &str = r#"
rules:
  - name: follow-up
    trigger: run.created
    when: run.source_type == "GITHUB"
    steps:
      - action: github.comment
        when: run.metadata.pr % 3 == 0
        with:
          pr: "acme/widgets#{{ run.metadata.pr }}"
          body: "Seen run {{ run.id }}."
      - action: codegen.create_run
        when: run.metadata.pr % 30 == 0
        with:
          prompt: "Follow up on run {{ run.id }}"
      - action: notify
        with:
          to: audit
          text: "Handled run {{ run.id }}"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_100_random_moments_during_300_jobs_loses_none_and_doubles_no_effect() {
    let seed: u64 = std::env::var("SENTINEL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    println!("crash test seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let w = world(CRASH_RULES).await;
    let sim = w.sim.sim.clone();

    // A first daemon records the (empty) baseline, then the 300 triggering runs appear.
    let child = start(&w.config);
    wait_for("the first poll", Duration::from_secs(20), || {
        !sim.requests().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut triggers = BTreeMap::new();
    // Slow GitHub answers, some after the comment is posted: a kill then leaves an attempt whose
    // outcome the next daemon does not know.
    w.chaos.random(
        0.5,
        vec![
            Fault::DelayAfter(Duration::from_millis(300)),
            Fault::Delay(Duration::from_millis(150)),
        ],
        seed,
        None,
    );
    // Three triggering runs appear before each start, so kills land while jobs execute.
    let mut next_pr = 1..=300u64;
    let mut first = Some(child);
    for round in 0..100 {
        for n in next_pr.by_ref().take(3) {
            let plan = RunPlan::ends("PAUSED")
                .source_type("GITHUB")
                .metadata(json!({ "pr": n }));
            triggers.insert(sim.create_run(ORG, plan), n);
        }
        let mut victim = first.take().unwrap_or_else(|| start(&w.config));
        let alive = Duration::from_millis(rng.random_range(100..700));
        tokio::time::sleep(alive).await;
        if let Some(status) = victim.try_wait().unwrap() {
            let out = victim.wait_with_output().unwrap();
            panic!(
                "round {round}: the daemon exited by itself ({status}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        victim.kill().unwrap();
        victim.wait().unwrap();
    }
    {
        // Between crashes the store opens cleanly; show how far the jobs got.
        let store = Store::open(StoreOptions::new(w.dir.path().join("store"))).unwrap();
        let open = store.open_jobs().unwrap().len();
        println!(
            "after 100 kills: {} jobs, {open} still open",
            store.jobs().count()
        );
    }

    // How often a restart had to look for a comment an interrupted attempt may have posted.
    let rechecks = w
        .chaos
        .log()
        .iter()
        .filter(|l| l.method == "GET" && l.path().ends_with("/comments"))
        .count();
    println!("comment lists checked after uncertain attempts: {rechecks}");

    // A last daemon, not killed, finishes what is left.
    w.chaos.calm();
    let child = start(&w.config);
    let (github, receiver) = (w.github.clone(), w.receiver.clone());
    wait_for(
        "every comment and notification",
        Duration::from_secs(120),
        || {
            let commented = (3..=300)
                .step_by(3)
                .all(|n| !github.comments("acme/widgets", n).is_empty());
            let notified: BTreeSet<String> = receiver
                .deliveries()
                .iter()
                .filter_map(|d| d.body["text"].as_str().map(str::to_owned))
                .collect();
            commented && notified.len() >= 300
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop(child).await;

    let store = Store::open(StoreOptions::new(w.dir.path().join("store"))).unwrap();
    let jobs: Vec<_> = store.jobs().map(Result::unwrap).collect();
    assert_eq!(jobs.len(), 300, "one job per triggering run");
    let unfinished: Vec<_> = jobs
        .iter()
        .filter(|j| j.state != JobState::Done)
        .map(|j| (j.id, j.state))
        .collect();
    assert!(unfinished.is_empty(), "jobs not done: {unfinished:?}");
    for n in 1..=300 {
        let expected = usize::from(n % 3 == 0);
        let comments = w.github.comments("acme/widgets", n);
        assert_eq!(comments.len(), expected, "PR {n}: {comments:?}");
    }
    // Every created run carries its step's idempotency key: no key twice, one per creating job.
    let mut created: BTreeMap<String, usize> = BTreeMap::new();
    for id in sim.run_ids(ORG) {
        let run = sim.run_json(ORG, id).unwrap();
        if let Some(key) = run["metadata"][KEY_FIELD].as_str() {
            *created.entry(key.to_owned()).or_default() += 1;
        }
    }
    assert_eq!(created.len(), 10, "10 jobs create a run: {created:?}");
    assert!(
        created.values().all(|n| *n == 1),
        "a run was created twice: {created:?}"
    );
    let mut by_text: BTreeMap<String, BTreeSet<Option<String>>> = BTreeMap::new();
    for d in w.receiver.deliveries() {
        assert!(d.signature_valid);
        let text = d.body["text"].as_str().unwrap_or_default().to_owned();
        by_text
            .entry(text)
            .or_default()
            .insert(d.idempotency_key.clone());
    }
    assert_eq!(by_text.len(), 300, "every notification arrived");
    assert!(
        by_text.values().all(|keys| keys.len() == 1),
        "repeats carry the same Idempotency-Key"
    );
    assert_eq!(triggers.len(), 300);
}
