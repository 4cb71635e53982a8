//! Job semantics through `Executor::run`: steps in order with outputs for later steps, `when`,
//! `continue_on_error`, retries and their overrides, permanent errors, dead letters and operator
//! retry/drop, per-key order, the concurrency bound, and durable waits for runs.

mod executor_support;
mod github_fake;

use std::time::Duration;

use chrono::Utc;
use codegen_sentinel::executor::admin;
use codegen_sentinel::executor::job::{Progress, StepStatus};
use codegen_sentinel::sim::RunPlan;
use codegen_sentinel::store::{EventRecord, EventSource, JobState, RunRecord};
use executor_support::*;
use github_fake::Fault;
use serde_json::{json, Value};

const MINUTE: Duration = Duration::from_secs(60);

fn progress(rig: &Rig, id: u64) -> Progress {
    Progress::of(&rig.job(id).data).unwrap()
}

#[tokio::test(start_paused = true)]
async fn steps_run_in_order_and_later_steps_see_earlier_outputs() {
    let rig = Rig::new().await;
    let run = rig.sim.create_run(ORG, RunPlan::ends("FAILED"));
    rig.sim.advance(Duration::from_secs(120));
    let ctx = run_context(rig.sim.run_json(ORG, run).unwrap(), Value::Null, Utc::now());
    let id = rig.add_job(
        "diagnose",
        &format!("run/{run}"),
        ctx,
        json!([
            {"id": "logs", "action": "codegen.fetch_logs", "with": {"limit": 50, "reverse": true}},
            {"id": "analysis", "action": "codegen.analyze_logs",
             "with": {"sandbox_id": "{{ run.metadata.sandbox_id | default(vars.default_sandbox_id) }}"}},
            {"action": "notify", "with": {"to": "audit",
             "text": "Run {{ run.id }} ended {{ run.status }}: {{ steps.logs.total }} logs (analysis run {{ steps.analysis.agent_run_id }})"}},
        ]),
    );
    let running = rig.start(settings(4));
    rig.until_settled(MINUTE).await;
    running.stop().await;

    let job = rig.job(id);
    assert_eq!(job.state, JobState::Done);
    let p = progress(&rig, id);
    assert_eq!(p.step, 3);
    assert!(p
        .steps
        .iter()
        .all(|s| s.status == StepStatus::Done && s.attempts == 1));
    assert_eq!(
        p.steps[1].params.as_ref().unwrap()["sandbox_id"],
        json!(SANDBOX)
    );
    let analysis = p.steps[1].output.clone().unwrap();
    let total = p.steps[0].output.as_ref().unwrap()["total"].clone();
    let got = rig.receiver.deliveries();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].body["text"],
        json!(format!(
            "Run {run} ended FAILED: {total} logs (analysis run {})",
            analysis["agent_run_id"]
        ))
    );
    assert!(got[0].signature_valid);
    let paths: Vec<String> = rig
        .sim_chaos
        .log()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path()))
        .collect();
    assert_eq!(
        paths,
        vec![
            format!("GET /v1/alpha/organizations/{ORG}/agent/run/{run}/logs"),
            format!("POST /v1/organizations/{ORG}/sandbox/{SANDBOX}/analyze-logs"),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn when_skips_a_step_and_continue_on_error_goes_on() {
    let rig = Rig::new().await;
    let ctx = run_context(run_json(1, "COMPLETE"), Value::Null, Utc::now());
    let id = rig.add_job(
        "r",
        "k",
        ctx,
        json!([
            {"action": "notify", "when": "run.status == 'FAILED'", "with": {"to": "audit", "text": "skipped"}},
            {"id": "ban", "action": "codegen.ban_checks", "with": {"run_id": 999999}, "continue_on_error": true},
            {"action": "notify", "when": "steps.ban is not defined", "with": {"to": "ops", "text": "went on"}},
        ]),
    );
    let running = rig.start(settings(2));
    rig.until_settled(MINUTE).await;
    running.stop().await;
    assert_eq!(rig.job(id).state, JobState::Done);
    let p = progress(&rig, id);
    let statuses: Vec<_> = p.steps.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        vec![StepStatus::Skipped, StepStatus::Failed, StepStatus::Done]
    );
    assert!(p.steps[1].error.as_deref().unwrap().contains("404"));
    assert_eq!(p.steps[1].attempts, 1, "a 404 is not retried");
    let got = rig.receiver.deliveries();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, json!({"text": "went on"}));
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_dead_letters_the_job_until_an_operator_retries_it() {
    let rig = Rig::new().await;
    let ctx = run_context(run_json(1, "COMPLETE"), Value::Null, Utc::now());
    let id = rig.add_job(
        "comment",
        "pr",
        ctx,
        json!([
            {"action": "log", "with": {"message": "first"}},
            {"action": "github.comment", "with": {"pr": "acme/widgets#5", "body": "hi"}},
        ]),
    );
    let running = rig.start(settings(2));
    rig.until_settled(MINUTE).await;
    let job = rig.job(id);
    assert_eq!(job.state, JobState::Dead);
    let summary = admin::summarize(&job);
    assert_eq!((summary.step, summary.attempts), (2, 1));
    assert!(summary
        .error
        .unwrap()
        .starts_with("step 2 (github.comment): GitHub answered 404"));
    assert_eq!(rig.github_chaos.log().len(), 1, "not retried");
    assert_eq!(admin::list(&rig.store, true).unwrap().len(), 1);

    rig.github.add_pr(REPO, 5);
    admin::retry(&rig.store, id).unwrap();
    running.handle.wake();
    rig.until_settled(MINUTE).await;
    running.stop().await;
    let p = progress(&rig, id);
    assert_eq!(rig.job(id).state, JobState::Done);
    assert_eq!(p.retried, 1);
    assert_eq!(
        p.steps[0].attempts, 1,
        "the finished step did not run again"
    );
    assert_eq!(rig.github.comments(REPO, 5).len(), 1);
    assert!(matches!(
        admin::retry(&rig.store, id),
        Err(admin::AdminError::NotDead { .. })
    ));
    admin::drop_job(&rig.store, id).unwrap();
    assert!(rig.store.job(id).unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn transient_errors_are_retried_and_a_step_can_lower_its_attempts() {
    let rig = Rig::new().await;
    rig.github.add_pr(REPO, 1);
    rig.github.add_pr(REPO, 2);
    rig.github_chaos
        .inject(Fault::Status(500), 2, Some("/issues/1/labels"));
    rig.github_chaos
        .inject(Fault::Status(500), 5, Some("/issues/2/labels"));
    let ctx = run_context(run_json(1, "COMPLETE"), Value::Null, Utc::now());
    let ok = rig.add_job(
        "a",
        "pr1",
        ctx.clone(),
        json!([
            {"action": "github.add_labels", "with": {"pr": "acme/widgets#1", "labels": ["agent"]}},
        ]),
    );
    let dead = rig.add_job(
        "b",
        "pr2",
        ctx,
        json!([
            {"action": "github.add_labels", "with": {"pr": "acme/widgets#2", "labels": ["agent"]},
             "retry": {"max_attempts": 2, "backoff": "10s", "cap": "10s"}},
        ]),
    );
    let running = rig.start(settings(2));
    rig.until_settled(10 * MINUTE).await;
    running.stop().await;
    assert_eq!(rig.job(ok).state, JobState::Done);
    assert_eq!(progress(&rig, ok).steps[0].attempts, 3);
    assert_eq!(rig.github.labels(REPO, 1), vec!["agent"]);
    assert_eq!(rig.job(dead).state, JobState::Dead);
    assert_eq!(progress(&rig, dead).steps[0].attempts, 2);
    let tries: Vec<_> = rig
        .github_chaos
        .log()
        .into_iter()
        .filter(|r| r.uri.contains("/issues/2/"))
        .collect();
    assert_eq!(tries.len(), 2);
    assert!(
        tries[1].at.duration_since(tries[0].at) <= Duration::from_secs(11),
        "cap of 10s (+ a little)"
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_is_waited_out_before_the_next_attempt() {
    let rig = Rig::new().await;
    rig.hook_chaos.inject(Fault::RateLimited(Some(30)), 1, None);
    let ctx = run_context(run_json(1, "FAILED"), Value::Null, Utc::now());
    let id = rig.add_job(
        "n",
        "k",
        ctx,
        json!([{"action": "notify", "with": {"to": "audit", "text": "x"}}]),
    );
    let running = rig.start(settings(1));
    rig.until_settled(5 * MINUTE).await;
    running.stop().await;
    assert_eq!(rig.job(id).state, JobState::Done);
    let log = rig.hook_chaos.log();
    assert_eq!(log.len(), 2);
    assert!(log[1].at.duration_since(log[0].at) >= Duration::from_secs(30));
    assert!(rig.hook_chaos.violations().is_empty());
}

#[tokio::test(start_paused = true)]
async fn jobs_of_one_key_run_one_at_a_time_in_creation_order() {
    let rig = Rig::new().await;
    // The first job's first attempt fails: the others of its key must wait for it.
    rig.hook_chaos.inject(Fault::Status(503), 1, Some("/audit"));
    let ctx = run_context(run_json(1, "FAILED"), Value::Null, Utc::now());
    let notify =
        |to: &str, text: &str| json!([{"action": "notify", "with": {"to": to, "text": text}}]);
    rig.add_job("r", "pr-1", ctx.clone(), notify("audit", "one"));
    rig.add_job("r", "pr-1", ctx.clone(), notify("audit", "two"));
    rig.add_job("r", "pr-2", ctx.clone(), notify("ops", "other"));
    rig.add_job("r", "pr-1", ctx, notify("audit", "three"));
    let running = rig.start(settings(4));
    rig.until_settled(5 * MINUTE).await;
    running.stop().await;
    let texts: Vec<String> = rig
        .hook_chaos
        .log()
        .iter()
        .filter(|r| r.path() == "/audit")
        .map(|r| r.json()["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, vec!["one", "one", "two", "three"]);
    let statuses: Vec<u16> = rig
        .hook_chaos
        .log()
        .iter()
        .filter(|r| r.path() == "/audit")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![503, 200, 200, 200]);
    assert_eq!(
        rig.hook_chaos
            .log()
            .iter()
            .filter(|r| r.path() == "/slack")
            .count(),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn no_more_jobs_run_at_once_than_the_concurrency_bound() {
    let rig = Rig::new().await;
    rig.hook_chaos
        .inject(Fault::Delay(Duration::from_secs(2)), 6, None);
    let ctx = run_context(run_json(1, "FAILED"), Value::Null, Utc::now());
    for i in 0..6 {
        rig.add_job(
            "r",
            &format!("k{i}"),
            ctx.clone(),
            json!([{"action": "notify", "with": {"to": "audit", "text": i.to_string()}}]),
        );
    }
    let running = rig.start(settings(2));
    rig.until_settled(5 * MINUTE).await;
    running.stop().await;
    let mut arrivals: Vec<_> = rig.hook_chaos.log().iter().map(|r| r.at).collect();
    arrivals.sort();
    assert_eq!(arrivals.len(), 6);
    for pair in arrivals.windows(3) {
        assert!(
            pair[2].duration_since(pair[0]) >= Duration::from_secs(2),
            "three at once"
        );
    }
}

fn store_run(rig: &Rig, run: i64, status: &str) {
    let now = Utc::now();
    let raw = run_json(run, status);
    rig.store
        .transaction(|tx| {
            let last_seq = tx.get_run(ORG, run)?.map_or(0, |r| r.last_seq);
            tx.put_run(&RunRecord {
                org_id: ORG,
                run_id: run,
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
}

fn run_event(run: i64, kind: &str) -> std::sync::Arc<EventRecord> {
    std::sync::Arc::new(EventRecord {
        seq: 1,
        id: format!("run/{ORG}/{run}/2/{kind}"),
        kind: format!("run.{kind}"),
        at: Utc::now(),
        source: EventSource::Poll,
        org_id: Some(ORG),
        run_id: Some(run),
        data: json!({}),
    })
}

#[tokio::test(start_paused = true)]
async fn a_wait_parks_without_holding_a_worker_and_wakes_on_the_runs_event() {
    let rig = Rig::new().await;
    store_run(&rig, 55, "ACTIVE");
    let ctx = run_context(run_json(55, "ACTIVE"), Value::Null, Utc::now());
    let waiting = rig.add_job("w", "run/55", ctx.clone(), json!([
        {"id": "w", "action": "codegen.wait_for_run", "with": {"timeout": "2h"}},
        {"action": "notify", "with": {"to": "audit", "text": "run {{ steps.w.id }} ended {{ steps.w.status }}"}},
    ]));
    let other = rig.add_job(
        "o",
        "run/56",
        ctx,
        json!([{"action": "notify", "with": {"to": "ops", "text": "other"}}]),
    );
    let running = rig.start(settings(1));
    rig.until(MINUTE, "the other job", || {
        rig.job(other).state == JobState::Done
    })
    .await;
    assert_eq!(
        rig.job(waiting).state,
        JobState::Waiting,
        "parked, and the only worker was free"
    );
    let p = progress(&rig, waiting);
    assert_eq!(p.waiting_for.map(|w| (w.org, w.run)), Some((ORG, 55)));

    tokio::time::sleep(10 * MINUTE).await;
    store_run(&rig, 55, "FAILED");
    rig.feed.send(run_event(55, "finished")).unwrap();
    rig.until_settled(Duration::from_secs(5)).await;
    running.stop().await;
    assert_eq!(rig.job(waiting).state, JobState::Done);
    let texts: Vec<Value> = rig
        .receiver
        .deliveries()
        .iter()
        .map(|d| d.body["text"].clone())
        .collect();
    assert_eq!(texts, vec![json!("other"), json!("run 55 ended FAILED")]);
    assert!(
        rig.sim_chaos.log().is_empty(),
        "a tracked run is read from the store only"
    );
}

#[tokio::test(start_paused = true)]
async fn a_wait_that_outlives_its_timeout_is_dead_lettered() {
    let rig = Rig::new().await;
    store_run(&rig, 57, "ACTIVE");
    let ctx = run_context(run_json(57, "ACTIVE"), Value::Null, Utc::now());
    let id = rig.add_job(
        "w",
        "run/57",
        ctx,
        json!([
            {"action": "codegen.wait_for_run", "with": {"timeout": "10m"}},
        ]),
    );
    let running = rig.start(settings(1));
    rig.until_settled(11 * MINUTE).await;
    running.stop().await;
    let summary = admin::summarize(&rig.job(id));
    assert_eq!(summary.state, JobState::Dead);
    assert!(summary.error.unwrap().contains("not terminal within 10m"));
}

#[tokio::test(start_paused = true)]
async fn a_wait_for_a_run_nobody_polls_reads_the_api() {
    let rig = Rig::new().await;
    let run = rig.sim.create_run(ORG, RunPlan::completes());
    let ctx = json!({"run": null, "vars": {}});
    let id = rig.add_job(
        "w",
        "k",
        ctx,
        json!([
            {"id": "w", "action": "codegen.wait_for_run", "with": {"run_id": run, "org_id": ORG}},
        ]),
    );
    let running = rig.start(settings(1));
    rig.until(MINUTE, "the job to park", || {
        rig.job(id).state == JobState::Waiting
    })
    .await;
    rig.sim.advance(Duration::from_secs(120));
    rig.until_settled(3 * MINUTE).await;
    running.stop().await;
    let p = progress(&rig, id);
    assert_eq!(p.steps[0].output.as_ref().unwrap()["status"], "COMPLETE");
    let gets = rig.sim_chaos.log().len();
    assert!((2..=4).contains(&gets), "one read a minute: {gets}");
}

#[tokio::test(start_paused = true)]
async fn bad_parameters_and_unreadable_jobs_go_to_the_dead_letters() {
    let rig = Rig::new().await;
    let ctx = run_context(run_json(1, "FAILED"), Value::Null, Utc::now());
    let bad_param = rig.add_job("r", "a", ctx.clone(), json!([
        {"action": "codegen.analyze_logs", "with": {"sandbox_id": "{{ run.metadata.nothing }}"}},
    ]));
    let bad_template = rig.add_job(
        "r",
        "b",
        ctx.clone(),
        json!([
            {"action": "log", "with": {"message": "{{ run.id "}},
        ]),
    );
    let unknown = rig.add_job("r", "c", ctx, json!([{"action": "shell.exec", "with": {}}]));
    let unreadable = rig
        .store
        .transaction(|tx| {
            Ok(tx
                .insert_job(codegen_sentinel::store::NewJob {
                    rule: "r".into(),
                    event_id: "e".into(),
                    key: "d".into(),
                    created_at: Utc::now(),
                    data: json!({"version": 9, "steps": []}),
                })?
                .id)
        })
        .unwrap();
    let running = rig.start(settings(2));
    rig.until_settled(MINUTE).await;
    running.stop().await;
    let error = |id| admin::summarize(&rig.job(id)).error.unwrap();
    assert!(
        error(bad_param).contains("`sandbox_id`: is required"),
        "{}",
        error(bad_param)
    );
    assert!(
        error(bad_template).contains("rendering `with`"),
        "{}",
        error(bad_template)
    );
    assert!(
        error(unknown).contains("unknown action"),
        "{}",
        error(unknown)
    );
    assert!(error(unreadable).contains("newer"), "{}", error(unreadable));
    assert!(rig.sim_chaos.log().is_empty());
}
