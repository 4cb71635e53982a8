//! Retention prunes exactly the history older than the policy and keeps runs, open jobs with
//! their events, unprocessed deliveries and every delivery younger than seven days.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, TimeZone, Utc};
use codegen_sentinel::store::{
    run_retention, DeliveryRecord, EventSource, FiringRecord, JournalRecord, NewEvent, NewJob,
    NewTransition, Payload, PruneStats, RetentionPolicy, RunRecord, Store, StoreOptions,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
}

fn days_ago(days: i64) -> DateTime<Utc> {
    now() - Duration::days(days)
}

const DAY: StdDuration = StdDuration::from_secs(24 * 60 * 60);

/// Run 1: transitions 40 and 5 days old with one event each (the old event fires a job that is
/// still open when `job_open`); a journal entry per event; deliveries of several ages.
fn populate(store: &Store, job_open: bool) {
    store
        .transaction(|tx| {
            let mut run = RunRecord {
                org_id: 7,
                run_id: 1,
                status: None,
                raw: json!({ "id": 1 }),
                pr_ids: vec![],
                last_seq: 0,
                status_since: days_ago(40),
                stalled_reported: false,
                first_seen: days_ago(40),
                last_seen: days_ago(5),
            };
            for (age, to) in [(40, "ACTIVE"), (5, "FAILED")] {
                let change = NewTransition {
                    from: None,
                    to: Some(to.into()),
                    first_sight: age == 40,
                    at: days_ago(age),
                    source: EventSource::Poll,
                };
                let t = tx.append_transition(&mut run, change)?;
                let event_id = format!("run/7/1/{}/status_changed", t.seq);
                let event = NewEvent {
                    id: event_id.clone(),
                    kind: "run.status_changed".into(),
                    at: days_ago(age),
                    source: EventSource::Poll,
                    org_id: Some(7),
                    run_id: Some(1),
                    data: json!({}),
                };
                let seq = tx.insert_event(event)?.expect("new event");
                let entry = JournalRecord {
                    event_id: event_id.clone(),
                    rule: "notify".into(),
                    outcome: "fired".into(),
                    reason: None,
                    rules_hash: "h".into(),
                    at: days_ago(age),
                };
                tx.put_journal(seq, &entry)?;
                let job = NewJob {
                    rule: "notify".into(),
                    event_id,
                    key: "k".into(),
                    created_at: days_ago(age),
                    data: json!({}),
                };
                let mut job = tx.insert_job(job)?;
                if age == 5 || !job_open {
                    job.state = codegen_sentinel::store::JobState::Done;
                    tx.put_job(&job)?;
                }
            }
            for (id, age, processed) in
                [("old", 10, true), ("week", 6, true), ("pending", 30, false)]
            {
                let delivery = DeliveryRecord {
                    id: id.into(),
                    event: "ping".into(),
                    received_at: days_ago(age),
                    body: b"{}".to_vec(),
                    processed,
                };
                tx.put_delivery(&delivery)?;
            }
            Ok(())
        })
        .unwrap();
}

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(StoreOptions::new(dir.path().join("db"))).unwrap()
}

fn ids<T>(
    items: impl Iterator<Item = Result<T, codegen_sentinel::store::StoreError>>,
    f: impl Fn(T) -> String,
) -> Vec<String> {
    items.map(|i| f(i.unwrap())).collect()
}

#[test]
fn prune_removes_exactly_the_expired_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    populate(&store, false);
    let policy = RetentionPolicy { max_age: DAY };

    // An old dead letter stays until an operator retries or drops it.
    let dead = store
        .transaction(|tx| {
            let mut job = tx.insert_job(NewJob {
                rule: "notify".into(),
                event_id: "gone".into(),
                key: "k".into(),
                created_at: days_ago(90),
                data: json!({}),
            })?;
            job.state = codegen_sentinel::store::JobState::Dead;
            tx.put_job(&job)?;
            Ok(job.id)
        })
        .unwrap();

    // Created 90 days ago, retried, finished yesterday: young by its finish.
    let late = store
        .transaction(|tx| {
            let mut job = tx.insert_job(NewJob {
                rule: "notify".into(),
                event_id: "late".into(),
                key: "k".into(),
                created_at: days_ago(90),
                data: json!({"progress": {"finished_at": days_ago(1)}}),
            })?;
            job.state = codegen_sentinel::store::JobState::Done;
            tx.put_job(&job)?;
            Ok(job.id)
        })
        .unwrap();

    let stats = store
        .prune_once(now(), &RetentionPolicy { max_age: 30 * DAY })
        .unwrap();
    assert_eq!(
        stats,
        PruneStats {
            transitions: 1,
            events: 1,
            journal: 1,
            deliveries: 0,
            jobs: 1,
            firings: 0,
            damaged: 0
        }
    );
    let transitions = store.transitions_of_run(7, 1).unwrap();
    assert_eq!(transitions.iter().map(|t| t.seq).collect::<Vec<_>>(), [2]);
    let events = store.events_of_run(7, 1).unwrap();
    assert_eq!(
        events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["run/7/1/2/status_changed"]
    );
    assert_eq!(store.event_by_id("run/7/1/1/status_changed").unwrap(), None);
    assert_eq!(store.journal_of_event(events[0].seq).unwrap().len(), 1);
    assert!(
        store.get_run(7, 1).unwrap().is_some(),
        "runs are never pruned"
    );
    let jobs: Vec<_> = store.jobs().map(Result::unwrap).collect();
    assert_eq!(
        jobs.len(),
        3,
        "the 40-day-old done job went; the recent ones and the dead stay"
    );
    assert!(jobs.iter().any(|j| j.id == dead));
    assert!(jobs.iter().any(|j| j.id == late));
    assert!(jobs.iter().any(|j| j.created_at == days_ago(5)));

    // A one-day policy still keeps deliveries younger than a week and unprocessed ones.
    let stats = store.prune_once(now(), &policy).unwrap();
    assert_eq!(stats.deliveries, 1);
    assert_eq!(ids(store.deliveries(), |d| d.id), ["pending", "week"]);
    assert_eq!(
        (stats.transitions, stats.events, stats.journal, stats.jobs),
        (1, 1, 1, 1)
    );
    assert_eq!(
        ids(store.jobs(), |j| j.id.to_string()),
        [dead.to_string(), late.to_string()]
    );
    assert_eq!(store.transitions(None).count(), 0);
    assert_eq!(store.events_after(0).count(), 0);
    let left = store.stats().unwrap();
    for tree in [
        codegen_sentinel::store::TreeName::EventIds,
        codegen_sentinel::store::TreeName::RunEvents,
        codegen_sentinel::store::TreeName::Journal,
    ] {
        assert_eq!(left.records(tree), 0, "{tree}");
    }

    // A pruned stable id can be inserted again; a second pass finds nothing.
    let again = NewEvent {
        id: "run/7/1/1/status_changed".into(),
        kind: "run.status_changed".into(),
        at: now(),
        source: EventSource::Poll,
        org_id: Some(7),
        run_id: Some(1),
        data: json!({}),
    };
    assert!(store
        .transaction(|tx| tx.insert_event(again.clone()))
        .unwrap()
        .is_some());
    assert_eq!(
        store.prune_once(now(), &policy).unwrap(),
        PruneStats::default()
    );
}

/// Webhook events are stored with their payload compressed in the middle of the record, and
/// retention reads their time around it.
#[test]
fn webhook_events_with_compressed_payloads_are_pruned_by_their_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let payload = include_str!("fixtures/github/pull_request.opened.json");
    store
        .transaction(|tx| {
            for (id, age) in [("old", 40), ("young", 5)] {
                let event = NewEvent {
                    id: format!("github/{id}"),
                    kind: "github.pull_request".into(),
                    at: days_ago(age),
                    source: EventSource::Webhook,
                    org_id: None,
                    run_id: None,
                    data: json!({"action": "opened", "delivery": id}),
                };
                tx.insert_event_with_payload(&event, &Payload::new(payload.to_owned()))?;
            }
            Ok(())
        })
        .unwrap();
    let stats = store
        .prune_once(now(), &RetentionPolicy { max_age: 30 * DAY })
        .unwrap();
    assert_eq!((stats.events, stats.damaged), (1, 0));
    assert!(store.event_by_id("github/old").unwrap().is_none());
    let young = store.event_by_id("github/young").unwrap().unwrap();
    assert_eq!(young.data["payload"]["action"], "opened", "read back whole");
    assert_eq!(young.at, days_ago(5));
}

/// A firing record `days` old, keyed by event or by the rule's own key.
fn firing(days: i64, by_event: bool) -> FiringRecord {
    FiringRecord {
        first_at: days_ago(days),
        last_at: days_ago(days),
        count_in_window: 1,
        window_start: days_ago(days),
        by_event,
    }
}

#[test]
fn firings_keyed_by_a_pruned_event_go_and_every_other_firing_stays() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    // Event 1 (40 days) has an open job, event 2 is 5 days old: both stay at first.
    populate(&store, true);
    let (old_event, young_event) = ("run/7/1/1/status_changed", "run/7/1/2/status_changed");
    store
        .transaction(|tx| {
            tx.put_firing("notify", old_event, &firing(40, true))?;
            tx.put_firing("notify", young_event, &firing(5, true))?;
            tx.put_firing("notify", "run/7/9/1/created", &firing(40, true))?;
            // The rule's own key: "fires once, ever" whatever its age.
            tx.put_firing("ban", "https://github.com/a/b/pull/1", &firing(400, false))?;
            // Written before `by_event` existed: read as false, kept.
            tx.put_firing("notify", "github/old-build", &firing(400, false))
        })
        .unwrap();
    let policy = RetentionPolicy { max_age: 30 * DAY };

    // The event of the open job stays, so does its firing; the firing of an event already
    // gone is old enough to go.
    let stats = store.prune_once(now(), &policy).unwrap();
    assert_eq!((stats.events, stats.firings), (0, 1));
    assert!(store
        .firing("notify", "run/7/9/1/created")
        .unwrap()
        .is_none());
    assert!(store.firing("notify", old_event).unwrap().is_some());

    // The job finishes: its event and the firing keyed by it go in the same pass.
    let open_jobs = store.open_jobs().unwrap();
    assert_eq!(open_jobs.len(), 1);
    store
        .transaction(|tx| {
            for job in &open_jobs {
                let done = codegen_sentinel::store::JobState::Done;
                tx.put_job(&codegen_sentinel::store::JobRecord {
                    state: done,
                    ..job.clone()
                })?;
            }
            Ok(())
        })
        .unwrap();
    let stats = store.prune_once(now(), &policy).unwrap();
    assert_eq!((stats.events, stats.firings), (1, 1));
    assert!(store.firing("notify", old_event).unwrap().is_none());
    assert!(store.firing("notify", young_event).unwrap().is_some());
    assert!(store
        .firing("ban", "https://github.com/a/b/pull/1")
        .unwrap()
        .is_some());
    assert!(store
        .firing("notify", "github/old-build")
        .unwrap()
        .is_some());
}

#[test]
fn events_of_open_jobs_and_their_journal_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    populate(&store, true);
    let stats = store
        .prune_once(now(), &RetentionPolicy { max_age: DAY })
        .unwrap();
    assert_eq!((stats.transitions, stats.events, stats.journal), (2, 1, 1));
    let kept = store
        .event_by_id("run/7/1/1/status_changed")
        .unwrap()
        .expect("kept for the open job");
    assert_eq!(store.events_of_run(7, 1).unwrap(), vec![kept.clone()]);
    assert_eq!(store.journal_of_event(kept.seq).unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn retention_loop_prunes_and_stops_when_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    // Data that is old relative to the real clock the loop uses.
    populate(&store, false);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run_retention(
        store.clone(),
        RetentionPolicy { max_age: DAY },
        cancel.clone(),
    ));
    // The first pass starts at once; wait for its effect, then stop the loop.
    while store.transitions(None).count() != 0 {
        tokio::task::yield_now().await;
    }
    cancel.cancel();
    task.await.unwrap();
    assert_eq!(store.events_after(0).count(), 0);
}
