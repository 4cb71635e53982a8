//! Crash safety in process: the executor is dropped mid-step (the stand-in for kill -9: nothing
//! after the last durable record happens) and a new one is started on the same store. A cut-off
//! step resumes, its target is checked before anything is repeated, finished steps never run
//! again, and waits (retry times, parked runs) survive.

mod executor_support;
mod github_fake;

use std::time::Duration;

use chrono::Utc;
use codegen_sentinel::executor::job::{Progress, StepStatus};
use codegen_sentinel::store::{JobState, RunRecord};
use executor_support::*;
use github_fake::Fault;
use serde_json::{json, Value};

const MINUTE: Duration = Duration::from_secs(60);
const HOLD: Duration = Duration::from_secs(3600);

fn progress(rig: &Rig, id: u64) -> Progress {
    Progress::of(&rig.job(id).data).unwrap()
}

fn ctx() -> Value {
    run_context(run_json(1, "COMPLETE"), Value::Null, Utc::now())
}

#[tokio::test(start_paused = true)]
async fn a_comment_cut_off_mid_step_is_not_posted_again_after_a_restart() {
    let rig = Rig::new().await;
    rig.github.add_pr(REPO, 3);
    rig.github_chaos
        .inject(Fault::DelayAfter(HOLD), 1, Some("POST"));
    let id = rig.add_job("c", "pr", ctx(), json!([
        {"action": "github.comment", "with": {"pr": "https://github.com/acme/widgets/pull/3", "body": "Banned checks."}},
    ]));
    let first = rig.start(settings(2));
    rig.until(MINUTE, "the comment to land", || {
        rig.github.comments(REPO, 3).len() == 1
    })
    .await;
    first.kill().await;

    let job = rig.job(id);
    assert_eq!(job.state, JobState::Running, "cut off mid-step");
    let p = progress(&rig, id);
    assert_eq!(
        (p.steps[0].status, p.steps[0].attempts),
        (StepStatus::Running, 1)
    );

    rig.github_chaos.calm();
    let second = rig.start(settings(2));
    rig.until_settled(MINUTE).await;
    second.stop().await;
    assert_eq!(rig.job(id).state, JobState::Done);
    assert_eq!(rig.github.comments(REPO, 3).len(), 1, "exactly once");
    let calls: Vec<String> = rig
        .github_chaos
        .log()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path()))
        .collect();
    assert_eq!(
        calls,
        vec![
            "POST /repos/acme/widgets/issues/3/comments",
            "GET /repos/acme/widgets/issues/3/comments",
        ]
    );
    let p = progress(&rig, id);
    assert_eq!(p.steps[0].attempts, 2);
    assert_eq!(
        p.steps[0].output.as_ref().unwrap()["id"],
        json!(rig.github.comments(REPO, 3)[0].id)
    );
}

#[tokio::test(start_paused = true)]
async fn a_create_cut_off_mid_step_is_found_by_its_key_after_a_restart() {
    let rig = Rig::new().await;
    rig.sim_chaos.inject(
        Fault::DelayAfter(HOLD),
        1,
        Some("POST /v1/organizations/7/agent/run"),
    );
    let id = rig.add_job("c", "k", ctx(), json!([
        {"id": "new", "action": "codegen.create_run", "with": {"prompt": "Fix the build", "repo_id": REPO_ID}},
        {"action": "notify", "with": {"to": "ops", "text": "created {{ steps.new.id }}"}},
    ]));
    let first = rig.start(settings(2));
    rig.until(MINUTE, "the run to be created", || {
        rig.sim.run_ids(ORG).len() == 1
    })
    .await;
    first.kill().await;
    assert_eq!(rig.job(id).state, JobState::Running);

    rig.sim_chaos.calm();
    let second = rig.start(settings(2));
    rig.until_settled(MINUTE).await;
    second.stop().await;
    let runs = rig.sim.run_ids(ORG);
    assert_eq!(runs.len(), 1, "created once");
    let creates = rig
        .sim_chaos
        .log()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(creates, 1);
    assert_eq!(
        rig.receiver.deliveries()[0].body["text"],
        json!(format!("created {}", runs[0]))
    );
}

#[tokio::test(start_paused = true)]
async fn a_finished_step_never_runs_again_after_a_restart() {
    let rig = Rig::new().await;
    rig.github.add_pr(REPO, 4);
    rig.github_chaos
        .inject(Fault::DelayAfter(HOLD), 1, Some("POST"));
    let id = rig.add_job(
        "c",
        "pr",
        ctx(),
        json!([
            {"action": "notify", "with": {"to": "audit", "text": "before the comment"}},
            {"action": "github.comment", "with": {"pr": "acme/widgets#4", "body": "x"}},
            {"action": "notify", "with": {"to": "ops", "text": "after"}},
        ]),
    );
    let first = rig.start(settings(1));
    rig.until(MINUTE, "the comment to land", || {
        rig.github.comments(REPO, 4).len() == 1
    })
    .await;
    first.kill().await;
    rig.github_chaos.calm();
    let second = rig.start(settings(1));
    rig.until_settled(MINUTE).await;
    second.stop().await;
    assert_eq!(rig.job(id).state, JobState::Done);
    let paths: Vec<String> = rig
        .receiver
        .deliveries()
        .iter()
        .map(|d| d.path.clone())
        .collect();
    assert_eq!(
        paths,
        vec!["/audit", "/slack"],
        "the first notification was not sent again"
    );
    assert_eq!(rig.github.comments(REPO, 4).len(), 1);
    let attempts: Vec<u32> = progress(&rig, id)
        .steps
        .iter()
        .map(|s| s.attempts)
        .collect();
    assert_eq!(attempts, vec![1, 2, 1]);
}

#[tokio::test(start_paused = true)]
async fn a_notification_cut_off_is_sent_again_with_the_same_key_and_bytes() {
    let rig = Rig::new().await;
    rig.hook_chaos.inject(Fault::DelayAfter(HOLD), 1, None);
    rig.add_job("n", "k", ctx(), json!([
        {"action": "notify", "with": {"to": "audit", "text": "at least once", "payload": {"a": 1}}},
    ]));
    let first = rig.start(settings(1));
    rig.until(MINUTE, "the delivery", || {
        rig.receiver.deliveries().len() == 1
    })
    .await;
    first.kill().await;
    rig.hook_chaos.calm();
    let second = rig.start(settings(1));
    rig.until_settled(MINUTE).await;
    second.stop().await;
    let got = rig.receiver.deliveries();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].idempotency_key, got[1].idempotency_key);
    assert_eq!(got[0].raw, got[1].raw);
    assert!(got.iter().all(|d| d.signature_valid));
}

#[tokio::test(start_paused = true)]
async fn a_graceful_stop_finishes_the_step_in_flight_and_the_rest_waits_for_the_restart() {
    let rig = Rig::new().await;
    rig.hook_chaos
        .inject(Fault::Delay(Duration::from_secs(2)), 1, Some("/audit"));
    let id = rig.add_job(
        "n",
        "k",
        ctx(),
        json!([
            {"action": "notify", "with": {"to": "audit", "text": "slow"}},
            {"action": "notify", "with": {"to": "ops", "text": "later"}},
        ]),
    );
    let first = rig.start(settings(1));
    rig.until(MINUTE, "the slow request", || {
        !rig.hook_chaos.log().is_empty()
    })
    .await;
    first.stop().await;
    let job = rig.job(id);
    assert_eq!(job.state, JobState::Pending);
    let p = progress(&rig, id);
    assert_eq!((p.step, p.steps[0].status), (1, StepStatus::Done));
    assert_eq!(rig.receiver.deliveries().len(), 1);

    let second = rig.start(settings(1));
    rig.until_settled(MINUTE).await;
    second.stop().await;
    assert_eq!(rig.job(id).state, JobState::Done);
    assert_eq!(rig.receiver.deliveries().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_retry_time_survives_a_restart() {
    let rig = Rig::new().await;
    rig.hook_chaos
        .inject(Fault::RateLimited(Some(120)), 1, None);
    let id = rig.add_job(
        "n",
        "k",
        ctx(),
        json!([{"action": "notify", "with": {"to": "audit", "text": "x"}}]),
    );
    let first = rig.start(settings(1));
    rig.until(MINUTE, "the 429", || rig.job(id).state == JobState::Waiting)
        .await;
    first.kill().await;
    let second = rig.start(settings(1));
    rig.until_settled(5 * MINUTE).await;
    second.stop().await;
    let log = rig.hook_chaos.log();
    assert_eq!(log.len(), 2);
    assert!(log[1].at.duration_since(log[0].at) >= Duration::from_secs(120));
    assert!(rig.hook_chaos.violations().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_parked_wait_looks_again_at_once_after_a_restart() {
    let rig = Rig::new().await;
    let put = |status: &str| {
        let now = Utc::now();
        let raw = run_json(77, status);
        rig.store
            .transaction(|tx| {
                let last_seq = tx.get_run(ORG, 77)?.map_or(0, |r| r.last_seq);
                tx.put_run(&RunRecord {
                    org_id: ORG,
                    run_id: 77,
                    status: Some(status.to_owned()),
                    raw: raw.clone(),
                    pr_ids: vec![],
                    last_seq,
                    status_since: now,
                    stalled_reported: false,
                    first_seen: now,
                    last_seen: now,
                })
            })
            .unwrap();
    };
    put("ACTIVE");
    let ctx = run_context(run_json(77, "ACTIVE"), Value::Null, Utc::now());
    let id = rig.add_job(
        "w",
        "run/77",
        ctx,
        json!([
            {"action": "codegen.wait_for_run", "with": {"timeout": "1h"}},
        ]),
    );
    let first = rig.start(settings(1));
    rig.until(MINUTE, "the job to park", || {
        rig.job(id).state == JobState::Waiting
    })
    .await;
    first.kill().await;
    // The run finished while nobody listened: no event will come.
    put("COMPLETE");
    let second = rig.start(settings(1));
    rig.until_settled(Duration::from_secs(1)).await;
    second.stop().await;
    assert_eq!(rig.job(id).state, JobState::Done);
}
