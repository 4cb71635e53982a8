//! Store transactions: one transition per real change under concurrent observers, idempotent
//! events, aborts that write nothing, jobs and the other typed trees.

use std::sync::{Arc, Barrier};

use chrono::{DateTime, Duration, TimeZone, Utc};
use codegen_sentinel::store::{
    DeliveryRecord, EventSource, FiringRecord, JobState, JobUpdate, JournalRecord, NewEvent,
    NewJob, NewSilence, NewTransition, RunRecord, ScheduleMark, Store, StoreError, StoreOptions,
    TxAbort,
};
use serde_json::json;

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 10, 0, 0).unwrap() + Duration::minutes(minute)
}

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(StoreOptions::new(dir.path().join("db"))).unwrap()
}

fn new_run(org_id: i64, run_id: i64, when: DateTime<Utc>) -> RunRecord {
    RunRecord {
        org_id,
        run_id,
        status: None,
        raw: json!({ "id": run_id, "organization_id": org_id }),
        pr_ids: vec![],
        last_seq: 0,
        status_since: when,
        stalled_reported: false,
        first_seen: when,
        last_seen: when,
    }
}

/// What the poller does for one snapshot: record a transition and an event when the status
/// differs from the stored one. Returns the new transition's seq.
fn observe(store: &Store, org: i64, run: i64, status: &str, when: DateTime<Utc>) -> Option<u32> {
    store
        .transaction(|tx| {
            let stored = tx.get_run(org, run)?;
            if let Some(r) = &stored {
                if r.status.as_deref() == Some(status) {
                    return Ok(None);
                }
            }
            let first_sight = stored.is_none();
            let mut record = stored.unwrap_or_else(|| new_run(org, run, when));
            let from = record.status.replace(status.to_string());
            record.status_since = when;
            record.last_seen = when;
            let change = NewTransition {
                from,
                to: Some(status.to_string()),
                first_sight,
                at: when,
                source: EventSource::Poll,
            };
            let t = tx.append_transition(&mut record, change)?;
            let event = NewEvent {
                id: format!("run/{org}/{run}/{}/status_changed", t.seq),
                kind: "run.status_changed".into(),
                at: when,
                source: EventSource::Poll,
                org_id: Some(org),
                run_id: Some(run),
                data: json!({ "from": t.from, "to": t.to }),
            };
            tx.insert_event(event)?;
            Ok(Some(t.seq))
        })
        .unwrap()
}

#[test]
fn concurrent_observers_of_one_run_record_one_transition_per_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let statuses = [
        "QUEUED", "ACTIVE", "ACTIVE", "PAUSED", "ACTIVE", "COMPLETE", "COMPLETE",
    ];
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut recorded = 0;
                for (minute, status) in statuses.iter().enumerate() {
                    // Every observer sees each snapshot at the same moment, like overlapping polls.
                    barrier.wait();
                    recorded +=
                        usize::from(observe(&store, 7, 123, status, at(minute as i64)).is_some());
                }
                recorded
            })
        })
        .collect();
    let recorded: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();

    let transitions = store.transitions_of_run(7, 123).unwrap();
    let path: Vec<_> = transitions.iter().map(|t| t.to.clone().unwrap()).collect();
    assert_eq!(path, ["QUEUED", "ACTIVE", "PAUSED", "ACTIVE", "COMPLETE"]);
    assert_eq!(recorded, 5);
    assert_eq!(
        transitions.iter().map(|t| t.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert!(transitions[0].first_sight && transitions[0].from.is_none());
    assert_eq!(transitions[4].from.as_deref(), Some("ACTIVE"));
    assert_eq!(store.get_run(7, 123).unwrap().unwrap().last_seq, 5);
    assert_eq!(store.events_of_run(7, 123).unwrap().len(), 5);
}

#[test]
fn event_with_existing_stable_id_is_inserted_once_also_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let event = NewEvent {
        id: "github/delivery-1".into(),
        kind: "github.check_suite".into(),
        at: at(0),
        source: EventSource::Webhook,
        org_id: None,
        run_id: None,
        data: json!({ "action": "completed" }),
    };
    let first = {
        let store = open(&dir);
        let seq = store
            .transaction(|tx| tx.insert_event(event.clone()))
            .unwrap();
        assert!(seq.is_some());
        let again = store
            .transaction(|tx| tx.insert_event(event.clone()))
            .unwrap();
        assert_eq!(again, None);
        seq
    };
    let store = open(&dir);
    assert_eq!(
        store
            .transaction(|tx| tx.insert_event(event.clone()))
            .unwrap(),
        None
    );
    let stored: Vec<_> = store.events_after(0).collect::<Result<_, _>>().unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(Some(stored[0].seq), first);
    assert_eq!(
        store.event_by_id("github/delivery-1").unwrap().unwrap().seq,
        stored[0].seq
    );
}

#[test]
fn aborted_transaction_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let err = store
        .transaction(|tx| -> Result<(), TxAbort> {
            tx.put_run(&new_run(7, 1, at(0)))?;
            Err(TxAbort::abort("rule evaluation failed"))
        })
        .unwrap_err();
    assert!(matches!(&err, StoreError::Aborted(e) if e.to_string() == "rule evaluation failed"));
    assert_eq!(store.get_run(7, 1).unwrap(), None);
}

#[test]
fn store_calls_inside_a_transaction_fail_instead_of_deadlocking() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let inner = store
        .transaction(|_tx| Ok(store.get_run(7, 1).map(|_| ()).unwrap_err().to_string()))
        .unwrap();
    assert!(inner.contains("inside a transaction"), "{inner}");
    let nested = store.transaction(|_tx| Ok(store.transaction(|_| Ok(())).is_err()));
    assert!(nested.unwrap());
    // Iterators made outside and advanced inside report the mistake too.
    observe(&store, 7, 2, "ACTIVE", at(0));
    let runs = std::cell::RefCell::new(store.runs());
    let active = std::cell::RefCell::new(store.active_runs());
    let (from_runs, from_active) = store
        .transaction(|_tx| Ok((runs.borrow_mut().next(), active.borrow_mut().next())))
        .unwrap();
    assert!(matches!(
        from_runs,
        Some(Err(StoreError::InsideTransaction { .. }))
    ));
    assert!(matches!(
        from_active,
        Some(Err(StoreError::InsideTransaction { .. }))
    ));
    assert!(runs.borrow_mut().next().is_none() && active.borrow_mut().next().is_none());
    // The store is usable again afterwards.
    assert_eq!(store.get_run(7, 1).unwrap(), None);
    assert_eq!(store.active_runs().count(), 1);
}

#[test]
fn job_lifecycle_keeps_the_open_index_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let new_job = |rule: &str| NewJob {
        rule: rule.into(),
        event_id: "run/7/1/1/finished".into(),
        key: "7/1".into(),
        created_at: at(0),
        data: json!({}),
    };
    let (a, b) = store
        .transaction(|tx| Ok((tx.insert_job(new_job("a"))?, tx.insert_job(new_job("b"))?)))
        .unwrap();
    assert!(a.id < b.id);
    assert_eq!(a.state, JobState::Pending);
    assert_eq!(store.open_jobs().unwrap(), vec![a.clone(), b.clone()]);

    let done = store
        .update_job(a.id, |job| {
            Some(JobRecord {
                state: JobState::Done,
                ..job.clone()
            })
        })
        .unwrap();
    assert!(matches!(&done, JobUpdate::Updated(j) if j.state == JobState::Done));
    assert_eq!(store.open_jobs().unwrap(), vec![b.clone()]);
    assert_eq!(store.job(a.id).unwrap().unwrap().state, JobState::Done);

    // Compare-and-set: an update that expected a Running job leaves a Pending one alone.
    let cas = store
        .update_job(b.id, |job| {
            (job.state == JobState::Running).then(|| JobRecord {
                state: JobState::Dead,
                ..job.clone()
            })
        })
        .unwrap();
    assert_eq!(cas, JobUpdate::Unchanged(b.clone()));
    assert_eq!(
        store.update_job(999_999, |j| Some(j.clone())).unwrap(),
        JobUpdate::Missing
    );

    let dead = store
        .update_job(b.id, |job| {
            Some(JobRecord {
                state: JobState::Dead,
                ..job.clone()
            })
        })
        .unwrap();
    assert!(matches!(dead, JobUpdate::Updated(_)));
    assert!(store.open_jobs().unwrap().is_empty());
    assert_eq!(store.jobs().count(), 2);
}

use codegen_sentinel::store::JobRecord;

#[test]
fn runs_are_listed_in_numeric_order_per_org() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .transaction(|tx| {
            for (org, run) in [(7, 300), (7, -2), (7, 10), (8, 1), (-1, 5)] {
                tx.put_run(&new_run(org, run, at(0)))?;
            }
            Ok(())
        })
        .unwrap();
    let ids = |iter: codegen_sentinel::store::Records<RunRecord>| {
        iter.map(|r| r.map(|r| (r.org_id, r.run_id)))
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    };
    assert_eq!(ids(store.runs_of_org(7)), [(7, -2), (7, 10), (7, 300)]);
    assert_eq!(
        ids(store.runs()),
        [(-1, 5), (7, -2), (7, 10), (7, 300), (8, 1)]
    );
}

#[test]
fn events_journal_and_reads_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for (minute, status) in ["QUEUED", "ACTIVE", "FAILED"].iter().enumerate() {
        observe(&store, 7, 1, status, at(minute as i64 * 10));
    }
    observe(&store, 7, 2, "ACTIVE", at(5));
    let events: Vec<_> = store.events_after(0).collect::<Result<_, _>>().unwrap();
    assert_eq!(events.len(), 4);
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    let tail: Vec<_> = store
        .events_after(events[1].seq)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tail, events[2..]);
    let recent: Vec<_> = store
        .events_since(at(10))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        recent.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["run/7/1/2/status_changed", "run/7/1/3/status_changed"]
    );
    let recent_transitions = store.transitions(Some(at(5))).count();
    assert_eq!(recent_transitions, 3);
    assert_eq!(store.transitions(None).count(), 4);

    let seq = events[2].seq;
    let entry = |rule: &str, outcome: &str| JournalRecord {
        event_id: events[2].id.clone(),
        rule: rule.into(),
        outcome: outcome.into(),
        reason: None,
        rules_hash: "h1".into(),
        at: at(20),
    };
    store
        .transaction(|tx| {
            tx.put_journal(seq, &entry("zeta", "skipped"))?;
            tx.put_journal(seq, &entry("alpha", "fired"))
        })
        .unwrap();
    let journal = store.journal_of_event(seq).unwrap();
    assert_eq!(
        journal,
        vec![entry("alpha", "fired"), entry("zeta", "skipped")]
    );
    assert!(store.journal_of_event(events[3].seq).unwrap().is_empty());
}

#[test]
fn deliveries_firings_marks_and_silences_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let delivery = DeliveryRecord {
        id: "d-1".into(),
        event: "pull_request".into(),
        received_at: at(0),
        body: br#"{"action":"opened"}"#.to_vec(),
        processed: false,
    };
    let firing = FiringRecord {
        first_at: at(0),
        last_at: at(1),
        count_in_window: 2,
        window_start: at(0),
        by_event: false,
    };
    let mark = ScheduleMark {
        next_fire: at(60),
        last_fired: None,
    };
    let silence = |rule: &str, until| NewSilence {
        rule: rule.into(),
        key: Some("pr-1".into()),
        until,
        reason: "noisy".into(),
        created_at: at(0),
        created_by: None,
    };
    let (inserted, repeated, ended) = store
        .transaction(|tx| {
            let inserted = tx.insert_delivery(&delivery)?;
            let repeated = tx.insert_delivery(&delivery)?;
            tx.put_firing("ban", "pr-1", &firing)?;
            tx.put_schedule_mark("digest", &mark)?;
            tx.insert_silence(silence("ban", at(30)))?;
            let ended = tx.insert_silence(silence("notify", at(30)))?;
            tx.put_silence(&codegen_sentinel::store::SilenceRecord {
                expired: true,
                ..ended.clone()
            })?;
            Ok((inserted, repeated, ended))
        })
        .unwrap();
    assert!(inserted && !repeated);
    assert_eq!(store.delivery("d-1").unwrap(), Some(delivery));
    assert_eq!(store.firing("ban", "pr-1").unwrap(), Some(firing));
    assert_eq!(store.firing("ban", "pr-2").unwrap(), None);
    assert_eq!(store.schedule_mark("digest").unwrap(), Some(mark));
    let active = store.active_silences(at(10)).unwrap();
    assert_eq!(
        active.iter().map(|s| s.rule.as_str()).collect::<Vec<_>>(),
        ["ban"]
    );
    assert!(store.active_silences(at(30)).unwrap().is_empty());
    assert_eq!(store.silences().count(), 2);
    assert!(store.silences().any(|s| s.unwrap().id == ended.id));
}

#[test]
fn active_runs_follow_the_stored_status() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    observe(&store, 7, 1, "ACTIVE", at(0));
    observe(&store, 7, 2, "ACTIVE", at(0));
    observe(&store, 7, 3, "SOME_NEW_STATUS", at(0));
    observe(&store, 7, 2, "FAILED", at(1));
    let active = |store: &Store| {
        store
            .active_runs()
            .map(|r| r.unwrap().run_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(active(&store), [1, 3], "unknown statuses stay watched");
    observe(&store, 7, 2, "ACTIVE", at(2));
    observe(&store, 7, 1, "COMPLETE", at(2));
    assert_eq!(active(&store), [2, 3]);
    assert_eq!(store.runs().count(), 3);
}

#[test]
fn stale_run_record_is_refused_instead_of_reusing_a_seq() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    observe(&store, 7, 1, "QUEUED", at(0));
    let stale = store.get_run(7, 1).unwrap().unwrap();
    observe(&store, 7, 1, "ACTIVE", at(1));
    let err = store
        .transaction(|tx| {
            let mut run = stale.clone();
            let change = NewTransition {
                from: Some("QUEUED".into()),
                to: Some("FAILED".into()),
                first_sight: false,
                at: at(2),
                source: EventSource::Poll,
            };
            tx.append_transition(&mut run, change)
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Invariant {
                tree: "transitions",
                ..
            }
        ),
        "{err:?}"
    );
    let err = store.transaction(|tx| tx.put_run(&stale)).unwrap_err();
    assert!(err.to_string().contains("stale"), "{err}");
    assert_eq!(store.transitions_of_run(7, 1).unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_flushes_share_fsyncs_and_all_return() {
    // sled 0.34 deadlocks with about seven flushes of its own in flight; the store keeps one.
    // Half the flushes block a thread (as the webhook writer's do), half are awaited: all of
    // them return, and what each covered is there after a reopen.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreOptions::new(dir.path())).unwrap();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .transaction(|tx| tx.put_meta(&format!("k{i}"), "v"))
                .unwrap();
            if i % 2 == 0 {
                store.flush().await.unwrap()
            } else {
                tokio::task::spawn_blocking(move || store.flush_blocking())
                    .await
                    .unwrap()
                    .unwrap()
            }
        }));
    }
    let mut written = Vec::new();
    for task in tasks {
        written.push(
            tokio::time::timeout(std::time::Duration::from_secs(30), task)
                .await
                .expect("no deadlock")
                .unwrap(),
        );
    }
    assert!(written.contains(&0), "some flushes were covered by another");
    drop(store);
    let store = Store::open(StoreOptions::new(dir.path())).unwrap();
    for i in 0..64 {
        assert_eq!(store.meta(&format!("k{i}")).unwrap().as_deref(), Some("v"));
    }
}
