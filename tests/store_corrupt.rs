//! A damaged record is an error naming its tree and key, never a panic, and does not hide the
//! records around it.

use chrono::{TimeZone, Utc};
use codegen_sentinel::store::{
    EventSource, NewTransition, RetentionPolicy, RunRecord, Store, StoreError, StoreOptions,
};
use serde_json::json;

fn run(run_id: i64) -> RunRecord {
    let when = Utc.with_ymd_and_hms(2025, 3, 1, 10, 0, 0).unwrap();
    RunRecord {
        org_id: 7,
        run_id,
        status: Some("ACTIVE".into()),
        raw: json!({ "id": run_id }),
        pr_ids: vec![],
        last_seq: 0,
        status_since: when,
        stalled_reported: false,
        first_seen: when,
        last_seen: when,
    }
}

/// The `runs` / `transitions` key of (7, run_id[, seq]) as the store lays it out: big-endian
/// with the sign bit flipped. Written out here independently of the store's own encoder.
fn raw_key(run_id: i64, seq: Option<u32>) -> Vec<u8> {
    let mut k = Vec::new();
    k.extend_from_slice(&((7i64 as u64) ^ (1 << 63)).to_be_bytes());
    k.extend_from_slice(&((run_id as u64) ^ (1 << 63)).to_be_bytes());
    if let Some(seq) = seq {
        k.extend_from_slice(&seq.to_be_bytes());
    }
    k
}

/// Stores runs 1..=3 (with one transition each), then damages run 2 and its transition with
/// sled directly, as a disk or a bug could.
fn damaged_store(dir: &tempfile::TempDir) -> Store {
    let path = dir.path().join("db");
    {
        let store = Store::open(StoreOptions::new(&path)).unwrap();
        store
            .transaction(|tx| {
                for id in 1..=3 {
                    let mut r = run(id);
                    let change = NewTransition {
                        from: None,
                        to: Some("ACTIVE".into()),
                        first_sight: true,
                        at: Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap(),
                        source: EventSource::Poll,
                    };
                    tx.append_transition(&mut r, change)?;
                }
                Ok(())
            })
            .unwrap();
    }
    {
        let db = open_raw(&path);
        db.open_tree("runs")
            .unwrap()
            .insert(raw_key(2, None), &b"{\"v\":\"1\",\"org_id\":"[..])
            .unwrap();
        db.open_tree("transitions")
            .unwrap()
            .insert(raw_key(2, Some(1)), &b"\xff\xfe"[..])
            .unwrap();
        db.flush().unwrap();
    }
    Store::open(StoreOptions::new(&path)).unwrap()
}

/// sled releases its lock from a background thread after drop: retry briefly, as the store does.
fn open_raw(path: &std::path::Path) -> sled::Db {
    for _ in 0..100 {
        if let Ok(db) = sled::open(path) {
            return db;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("store still locked");
}

#[test]
fn damaged_run_is_an_error_naming_tree_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = damaged_store(&dir);
    let err = store.get_run(7, 2).unwrap_err();
    assert!(
        matches!(&err, StoreError::Decode { tree: "runs", key, .. } if key == "7/2"),
        "{err:?}"
    );
    assert!(err.to_string().contains("tree `runs` at key 7/2"), "{err}");
    assert_eq!(store.get_run(7, 1).unwrap().unwrap().run_id, 1);
}

#[test]
fn scans_report_the_damaged_record_and_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = damaged_store(&dir);
    let results: Vec<_> = store.runs_of_org(7).collect();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].as_ref().unwrap().run_id, 1);
    assert!(matches!(&results[1], Err(StoreError::Decode { key, .. }) if key == "7/2"));
    assert_eq!(results[2].as_ref().unwrap().run_id, 3);
    let err = store.transitions_of_run(7, 2).unwrap_err();
    assert!(
        err.to_string().contains("tree `transitions` at key 7/2/1"),
        "{err}"
    );
}

#[test]
fn retention_skips_damaged_records_and_prunes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = damaged_store(&dir);
    let stats = store
        .prune_once(Utc::now(), &RetentionPolicy::default())
        .unwrap();
    assert_eq!((stats.transitions, stats.damaged), (2, 1));
    assert_eq!(
        store.transitions(None).count(),
        1,
        "the damaged transition is left in place"
    );
}

#[test]
fn damaged_record_inside_a_transaction_aborts_it_with_the_same_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = damaged_store(&dir);
    let err = store.transaction(|tx| tx.get_run(7, 2)).unwrap_err();
    assert!(
        matches!(&err, StoreError::Decode { tree: "runs", key, .. } if key == "7/2"),
        "{err:?}"
    );
}
