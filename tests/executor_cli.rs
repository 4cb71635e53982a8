//! `codegen-sentinel jobs list|show|retry|drop`: the real binary on a store with an open job and
//! a dead letter.

use std::path::Path;
use std::process::Output;

use chrono::Utc;
use codegen_sentinel::store::{JobState, NewJob, Store, StoreOptions};
use serde_json::{json, Value};

fn config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("sentinel.yaml");
    let text = format!(
        "codegen:\n  token_env: CODEGEN_API_TOKEN\n  org_ids: [7]\nstore:\n  path: {}\n",
        dir.join("db").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn jobs(config: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_codegen-sentinel"))
        .arg("jobs")
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("SENTINEL_CONFIG")
        .output()
        .expect("binary runs")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An open job and a dead letter; returns their ids.
fn seed(dir: &Path) -> (u64, u64) {
    let store = Store::open(StoreOptions::new(dir.join("db"))).unwrap();
    let data = |action: &str| {
        json!({"version": 1, "rules_hash": "h", "rule": {"name": "r"}, "context": {},
               "steps": [{"id": null, "action": action, "with": {"message": "m"}}], "progress": {}})
    };
    let (open, dead) = store
        .transaction(|tx| {
            let new = |rule: &str, action: &str| NewJob {
                rule: rule.into(),
                event_id: "e".into(),
                key: format!("key-{rule}"),
                created_at: Utc::now(),
                data: data(action),
            };
            let open = tx.insert_job(new("ban-checks", "log"))?;
            let mut dead = tx.insert_job(new("diagnose", "codegen.analyze_logs"))?;
            dead.state = JobState::Dead;
            dead.data["progress"] = json!({"step": 0, "error": "step 1 (codegen.analyze_logs): quota exceeded (402)",
                                           "steps": [{"status": "failed", "attempts": 1, "params": {"sandbox_id": 4}, "error": "quota exceeded (402)"}]});
            tx.put_job(&dead)?;
            Ok((open.id, dead.id))
        })
        .unwrap();
    futures::executor::block_on(store.flush()).unwrap();
    (open, dead)
}

#[test]
fn jobs_are_listed_shown_retried_and_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (open, dead) = seed(dir.path());
    let config = config(dir.path());

    let table = stdout(&jobs(&config, &["list"]));
    assert!(table.starts_with("ID  STATE"), "{table}");
    assert!(
        table.contains("ban-checks") && !table.contains("diagnose"),
        "{table}"
    );

    let letters = stdout(&jobs(&config, &["list", "--dead", "--json"]));
    let lines: Vec<Value> = letters
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["id"], json!(dead));
    assert_eq!(lines[0]["state"], "dead");
    assert_eq!(
        lines[0]["error"],
        "step 1 (codegen.analyze_logs): quota exceeded (402)"
    );

    let shown: Value =
        serde_json::from_str(&stdout(&jobs(&config, &["show", &dead.to_string()]))).unwrap();
    assert_eq!(shown["data"]["steps"][0]["action"], "codegen.analyze_logs");
    assert_eq!(shown["summary"]["attempts"], 1);

    let retried = stdout(&jobs(&config, &["retry", &dead.to_string()]));
    assert!(retried.contains("queued again"), "{retried}");
    let open_now = stdout(&jobs(&config, &["list", "--json"]));
    assert_eq!(open_now.lines().count(), 2, "{open_now}");

    let refused = jobs(&config, &["retry", &open.to_string()]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a dead letter"));

    stdout(&jobs(&config, &["drop", &open.to_string()]));
    let missing = jobs(&config, &["show", &open.to_string()]);
    assert_eq!(missing.status.code(), Some(2));
    let left = stdout(&jobs(&config, &["list", "--json"]));
    assert_eq!(left.lines().count(), 1);
}
