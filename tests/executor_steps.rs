//! Step reports through `Executor::run`: one per step outcome (done, retrying, failed, skipped,
//! waiting), in order per job, each sent only once its outcome is in the store.

mod executor_support;
mod github_fake;

use std::time::Duration;

use chrono::Utc;
use codegen_sentinel::executor::admin;
use codegen_sentinel::executor::job::{Progress, StepStatus};
use codegen_sentinel::executor::{StepOutcome, StepReport};
use codegen_sentinel::sim::RunPlan;
use codegen_sentinel::store::{RunRecord, Store};
use executor_support::*;
use github_fake::Fault;
use serde_json::{json, Value};
use tokio::sync::broadcast;

const MINUTE: Duration = Duration::from_secs(60);

fn store_run(rig: &Rig, run: i64, status: &str) {
    let now = Utc::now();
    rig.store
        .transaction(|tx| {
            tx.put_run(&RunRecord {
                org_id: ORG,
                run_id: run,
                status: Some(status.to_owned()),
                raw: run_json(run, status),
                pr_ids: vec![],
                last_seq: 0,
                status_since: now,
                stalled_reported: false,
                first_seen: now,
                last_seen: now,
            })
        })
        .unwrap();
}

/// Checks, the moment a report arrives, that the store already holds what it announces.
fn assert_saved(store: &Store, report: &StepReport) {
    let job = store.job(report.job_id).unwrap().unwrap();
    let step = Progress::of(&job.data).unwrap().steps[report.index].clone();
    let expected = match &report.outcome {
        StepOutcome::Done => step.status == StepStatus::Done,
        StepOutcome::Skipped => step.status == StepStatus::Skipped,
        StepOutcome::Failed { .. } => step.status == StepStatus::Failed,
        StepOutcome::Retrying { .. } => step.attempts >= report.attempts && step.error.is_some(),
        StepOutcome::Waiting { .. } => step.status == StepStatus::Waiting || step.status.is_final(),
    };
    assert!(expected, "reported {report:?} but the store has {step:?}");
}

/// The reports of one job, in the order they came.
fn of_job(reports: &[StepReport], id: u64) -> Vec<&StepReport> {
    reports.iter().filter(|r| r.job_id == id).collect()
}

#[tokio::test(start_paused = true)]
async fn each_step_outcome_is_reported_once_saved_in_order() {
    let rig = Rig::new().await;
    let run = rig.sim.create_run(ORG, RunPlan::ends("FAILED"));
    rig.sim.advance(Duration::from_secs(120));
    let ctx = run_context(rig.sim.run_json(ORG, run).unwrap(), Value::Null, Utc::now());
    // Done, retried once then done, skipped.
    let retried = rig.add_job(
        "diagnose",
        "run/1",
        ctx.clone(),
        json!([
            {"id": "logs", "action": "codegen.fetch_logs", "with": {"limit": 10}},
            {"action": "notify", "with": {"to": "audit", "text": "logs: {{ steps.logs.total }}"}},
            {"action": "notify", "when": "false", "with": {"to": "audit", "text": "never"}},
        ]),
    );
    rig.hook_chaos.inject(Fault::Status(503), 1, Some("/audit"));
    // Retried, then given up: a dead letter.
    let dead = rig.add_job(
        "tell-ops",
        "run/2",
        ctx,
        json!([{"action": "notify", "retry": {"max_attempts": 2},
                "with": {"to": "ops", "text": "hello"}}]),
    );
    rig.hook_chaos.inject(Fault::Status(503), 2, Some("/slack"));
    // Parked on a run that never ends, then failed at its deadline.
    store_run(&rig, 55, "ACTIVE");
    let waits = rig.add_job(
        "wait",
        "run/55",
        run_context(run_json(55, "ACTIVE"), Value::Null, Utc::now()),
        json!([{"action": "codegen.wait_for_run", "with": {"timeout": "10m"}}]),
    );

    let (steps, mut reports) = broadcast::channel(64);
    let executor = rig.executor(settings(4)).with_step_feed(steps);
    let cancel = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(executor.run(rig.feed.subscribe(), cancel.clone()));
    let store = rig.store.clone();
    let watcher = tokio::spawn(async move {
        let mut seen = Vec::new();
        // Ends when the executor stops and drops the feed.
        while let Ok(report) = reports.recv().await {
            assert_saved(&store, &report);
            seen.push(report);
        }
        seen
    });
    rig.until_settled(11 * MINUTE).await;
    cancel.cancel();
    task.await.unwrap().unwrap();
    let seen = watcher.await.unwrap();

    let steps: Vec<(usize, &StepOutcome)> = of_job(&seen, retried)
        .iter()
        .map(|r| (r.index, &r.outcome))
        .collect();
    assert!(
        matches!(
            steps.as_slice(),
            [
                (0, StepOutcome::Done),
                (1, StepOutcome::Retrying { .. }),
                (1, StepOutcome::Done),
                (2, StepOutcome::Skipped)
            ]
        ),
        "{steps:#?}"
    );
    let job = of_job(&seen, retried);
    for r in &job {
        assert_eq!(
            (r.rule.as_str(), r.event_id.as_str(), r.total),
            ("diagnose", "test/diagnose/run/1", 3)
        );
    }
    let actions: Vec<&str> = job.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        ["codegen.fetch_logs", "notify", "notify", "notify"]
    );
    assert_eq!(job[0].step_id.as_deref(), Some("logs"));
    assert!(job[0].duration.is_some() && job[2].duration.is_some());
    assert_eq!(job[3].duration, None, "a skipped step made no attempt");
    match &job[1].outcome {
        StepOutcome::Retrying {
            error,
            max_attempts,
            retry_at,
            retry_in,
        } => {
            assert!(error.contains("503"), "{error}");
            assert_eq!((job[1].attempts, *max_attempts), (1, 5));
            assert_eq!(
                *retry_at,
                job[1].at + chrono::Duration::from_std(*retry_in).unwrap()
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(job[2].attempts, 2);

    let job = of_job(&seen, dead);
    assert_eq!(job.len(), 2, "{job:#?}");
    assert!(matches!(
        job[0].outcome,
        StepOutcome::Retrying {
            max_attempts: 2,
            ..
        }
    ));
    match &job[1].outcome {
        StepOutcome::Failed { error, dead } => {
            assert!(error.contains("503"), "{error}");
            assert!(dead);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!((job[0].attempts, job[1].attempts), (1, 2));

    let job = of_job(&seen, waits);
    assert_eq!(
        job.len(),
        2,
        "one report when parked, not one per look: {job:#?}"
    );
    match &job[0].outcome {
        StepOutcome::Waiting { org, run, until } => {
            assert_eq!((*org, *run), (ORG, 55));
            assert_eq!(*until, job[0].at + chrono::Duration::minutes(10));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        &job[1].outcome,
        StepOutcome::Failed { error, dead: true } if error.contains("not terminal within 10m")
    ));
    assert_eq!(seen.len(), 8, "nothing else was reported: {seen:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_feed_nobody_listens_to_changes_nothing() {
    let rig = Rig::new().await;
    let ctx = run_context(run_json(1, "FAILED"), Value::Null, Utc::now());
    let id = rig.add_job(
        "diagnose",
        "run/1",
        ctx,
        json!([{"action": "notify", "with": {"to": "audit", "text": "hi"}}]),
    );
    rig.hook_chaos.inject(Fault::Status(503), 1, Some("/audit"));
    let (steps, reports) = broadcast::channel(4);
    drop(reports);
    let executor = rig.executor(settings(1)).with_step_feed(steps);
    let cancel = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(executor.run(rig.feed.subscribe(), cancel.clone()));
    rig.until_settled(MINUTE).await;
    cancel.cancel();
    task.await.unwrap().unwrap();
    let p = Progress::of(&rig.job(id).data).unwrap();
    assert_eq!(p.steps[0].status, StepStatus::Done);
    assert_eq!(p.steps[0].attempts, 2, "retried once, then done");
    assert_eq!(rig.receiver.deliveries().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_outcome_the_store_no_longer_takes_is_not_reported() {
    let rig = Rig::new().await;
    let ctx = run_context(run_json(1, "FAILED"), Value::Null, Utc::now());
    let id = rig.add_job(
        "tell",
        "run/1",
        ctx,
        json!([{"action": "notify", "with": {"to": "audit", "text": "hi"}}]),
    );
    rig.hook_chaos
        .inject(Fault::Delay(Duration::from_secs(2)), 1, Some("/audit"));
    let (steps, mut reports) = broadcast::channel(4);
    let executor = rig.executor(settings(1)).with_step_feed(steps);
    let cancel = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(executor.run(rig.feed.subscribe(), cancel.clone()));
    rig.until(MINUTE, "the attempt to start", || {
        rig.store.job(id).unwrap().is_some_and(|j| {
            Progress::of(&j.data).unwrap().step(0).map(|s| s.status) == Some(StepStatus::Running)
        })
    })
    .await;
    // Dropped by an operator while its step is in flight: the step succeeds, but its outcome
    // is never saved, so it is not reported either.
    admin::drop_job(&rig.store, id).unwrap();
    rig.until(MINUTE, "the notification", || {
        rig.receiver.deliveries().len() == 1
    })
    .await;
    rig.until_settled(MINUTE).await;
    cancel.cancel();
    task.await.unwrap().unwrap();
    assert!(rig.store.job(id).unwrap().is_none());
    assert!(
        matches!(
            reports.try_recv(),
            Err(broadcast::error::TryRecvError::Closed)
        ),
        "nothing was reported"
    );
}
