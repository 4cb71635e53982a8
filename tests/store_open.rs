//! Opening the store: data survives reopen, a second opener gets `Locked`, a newer schema is
//! refused, and stats count records per tree.

use chrono::{TimeZone, Utc};
use codegen_sentinel::store::{
    EventSource, JobState, NewEvent, NewJob, NewTransition, RunRecord, Store, StoreError,
    StoreOptions, TreeName, SCHEMA_VERSION,
};
use serde_json::json;

/// Env var that turns `lock_probe_child` into the second process of the lock test.
const PROBE_ENV: &str = "STORE_LOCK_PROBE_PATH";

fn opts(dir: &tempfile::TempDir) -> StoreOptions {
    StoreOptions::new(dir.path().join("db"))
}

fn run(org_id: i64, run_id: i64) -> RunRecord {
    let when = Utc.with_ymd_and_hms(2025, 3, 1, 10, 0, 0).unwrap();
    RunRecord {
        org_id,
        run_id,
        status: Some("ACTIVE".into()),
        raw: json!({ "id": run_id, "status": "ACTIVE", "web_url": "https://codegen.com/x" }),
        pr_ids: vec![1, 2],
        last_seq: 0,
        status_since: when,
        stalled_reported: false,
        first_seen: when,
        last_seen: when,
    }
}

/// Writes a run with one transition, one event and one job; returns the job id.
fn write_observation(store: &Store) -> u64 {
    let when = Utc.with_ymd_and_hms(2025, 3, 1, 10, 0, 0).unwrap();
    store
        .transaction(|tx| {
            let mut r = run(7, 123);
            let change = NewTransition {
                from: None,
                to: r.status.clone(),
                first_sight: true,
                at: when,
                source: EventSource::Startup,
            };
            tx.append_transition(&mut r, change)?;
            let event = NewEvent {
                id: "run/7/123/1/created".into(),
                kind: "run.created".into(),
                at: when,
                source: EventSource::Startup,
                org_id: Some(7),
                run_id: Some(123),
                data: json!({}),
            };
            tx.insert_event(event)?;
            let job = NewJob {
                rule: "r".into(),
                event_id: "run/7/123/1/created".into(),
                key: "k".into(),
                created_at: when,
                data: json!({ "step": 0 }),
            };
            Ok(tx.insert_job(job)?.id)
        })
        .unwrap()
}

#[tokio::test]
async fn reopened_store_keeps_flushed_data() {
    let dir = tempfile::tempdir().unwrap();
    let job_id = {
        let store = Store::open(opts(&dir)).unwrap();
        let id = write_observation(&store);
        store.flush().await.unwrap();
        id
    };
    let store = Store::open(opts(&dir)).unwrap();
    let stored = store.get_run(7, 123).unwrap().unwrap();
    assert_eq!(
        stored,
        RunRecord {
            last_seq: 1,
            ..run(7, 123)
        }
    );
    assert_eq!(store.transitions_of_run(7, 123).unwrap().len(), 1);
    assert_eq!(store.events_of_run(7, 123).unwrap()[0].kind, "run.created");
    let job = store.job(job_id).unwrap().unwrap();
    assert_eq!(
        (job.state, job.data),
        (JobState::Pending, json!({ "step": 0 }))
    );
    assert_eq!(store.open_jobs().unwrap().len(), 1);
    assert_eq!(
        store.meta("schema_version").unwrap(),
        Some(SCHEMA_VERSION.to_string())
    );
}

#[test]
fn second_open_in_the_same_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(opts(&dir)).unwrap();
    let err = Store::open(opts(&dir)).unwrap_err();
    match &err {
        StoreError::Locked { path } => assert_eq!(path, &dir.path().join("db")),
        other => panic!("expected Locked, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("is locked") && message.contains("another"),
        "{message}"
    );
}

#[test]
fn second_process_on_the_same_path_is_locked_and_data_is_intact() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(opts(&dir)).unwrap();
    write_observation(&store);
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "lock_probe_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PROBE_ENV, dir.path().join("db"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("PROBE: locked"), "{stdout}");
    assert_eq!(store.transitions_of_run(7, 123).unwrap().len(), 1);
}

/// The second process of the test above; does nothing when run on its own.
#[test]
fn lock_probe_child() {
    let Some(path) = std::env::var_os(PROBE_ENV) else {
        return;
    };
    match Store::open(StoreOptions::new(path)) {
        Err(StoreError::Locked { .. }) => println!("PROBE: locked"),
        Err(other) => println!("PROBE: other error {other}"),
        Ok(_) => println!("PROBE: opened"),
    }
}

#[test]
fn store_written_by_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(opts(&dir)).unwrap();
        let newer = (SCHEMA_VERSION + 1).to_string();
        store
            .transaction(|tx| tx.put_meta("schema_version", &newer))
            .unwrap();
    }
    let err = Store::open(opts(&dir)).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, supported, .. }
            if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("upgrade codegen-sentinel"),
        "{err}"
    );
}

#[test]
fn older_stores_are_marked_current_so_that_older_builds_refuse_them() {
    assert_eq!(SCHEMA_VERSION, 4);
    for older in ["1", "2", "3"] {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(opts(&dir)).unwrap();
            store
                .transaction(|tx| tx.put_meta("schema_version", older))
                .unwrap();
        }
        let store = Store::open(opts(&dir)).unwrap();
        assert_eq!(
            store.meta("schema_version").unwrap().as_deref(),
            Some("4"),
            "a version-{older} store"
        );
    }
}

#[test]
fn stats_count_records_per_tree() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(opts(&dir)).unwrap();
    write_observation(&store);
    let stats = store.stats().unwrap();
    for (tree, expected) in [
        (TreeName::Runs, 1),
        (TreeName::RunsActive, 1),
        (TreeName::Transitions, 1),
        (TreeName::Events, 1),
        (TreeName::EventIds, 1),
        (TreeName::RunEvents, 1),
        (TreeName::Jobs, 1),
        (TreeName::JobsOpen, 1),
        (TreeName::Journal, 0),
        (TreeName::Meta, 1),
    ] {
        assert_eq!(stats.records(tree), expected, "{tree}");
    }
    assert_eq!(stats.trees.len(), TreeName::ALL.len());
    assert!(stats.size_on_disk > 0);
    assert!(stats.logical_bytes() > 0);
}

#[test]
fn store_handles_are_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Store>();
}
