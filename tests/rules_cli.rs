//! The rule commands end to end: `check`, `rules test|schema|replay`, `explain` and `silence`,
//! run as the binary against files and a store in a temporary directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use assert_cmd::Command;
use chrono::Utc;
use codegen_sentinel::clock::{Clock, SystemClock};
use codegen_sentinel::engine::Engine;
use codegen_sentinel::events::EventSink;
use codegen_sentinel::rules::{compile_paths, CompileEnv};
use codegen_sentinel::store::{EventSource, NewEvent, Store, StoreOptions};
use serde_json::{json, Value};

const DESIGN_CONFIG: &str = "tests/fixtures/config/design-example.yaml";

fn bin() -> Command {
    Command::cargo_bin("codegen-sentinel").unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn rules_test_runs_every_shipped_test() {
    let out = bin()
        .args(["rules", "test", "rules/", "--config", DESIGN_CONFIG])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let last = stdout.lines().last().unwrap();
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
    let passed: usize = last.split_whitespace().next().unwrap().parse().unwrap();
    assert!(passed >= 12, "{stdout}");
}

#[test]
fn a_failing_rule_test_says_what_differs_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.yaml");
    std::fs::write(
        &file,
        r#"rules:
  - name: r
    trigger: run.finished
    steps: [{ action: log, with: { message: "run {{ run.id }}" } }]
tests:
  - name: wrong message
    event: { type: run.finished, run: { id: 5 } }
    expect: [{ rule: r, steps: [{ with: { message: "run 6" } }] }]
"#,
    )
    .unwrap();
    let out = bin().args(["rules", "test"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(r#"`r` step 1 (log): `message` is "run 5", expected "run 6""#),
        "{stdout}"
    );
    assert!(stdout.ends_with("0 passed, 1 failed\n"), "{stdout}");
}

#[test]
fn check_accepts_the_shipped_rules_and_denies_warnings_on_request() {
    let out = bin()
        .args(["check", "--config", DESIGN_CONFIG, "rules/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = bin().args(["check", "rules/"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("notifier names (`to:`) and `vars.*` are not checked"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("off.yaml");
    std::fs::write(&file, "rules:\n  - name: r\n    trigger: run.created\n    mode: off\n    steps: [{ action: log, with: { message: hi } }]\n").unwrap();
    let out = bin().arg("check").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let out = bin()
        .args(["check", "--deny-warnings"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stdout),
        format!(
            "warning: {}:4:11: r › mode: rule is off: it never fires\n",
            file.display()
        )
    );
}

#[test]
fn the_schema_accepts_every_shipped_rule_file_and_refuses_mistakes() {
    let out = bin().args(["rules", "schema"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for entry in std::fs::read_dir("rules").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let doc: Value =
                serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        }
    }
    let bad = json!({"rules": [{"name": "x", "trigger": "run.finished", "steps": [{"action": "codegen.fetch_logs", "with": {"limt": 5}}]}]});
    assert!(!validator.is_valid(&bad));
    let bad = json!({"rules": [{"name": "x", "trigger": "run.finished", "steps": [{"action": "codegen.analyze_logs"}]}]});
    assert!(!validator.is_valid(&bad));
}

/// A config with its store in `dir` and the shipped rules.
fn config(dir: &Path) -> PathBuf {
    let rules = std::path::absolute("rules").unwrap();
    let text = format!(
        "codegen:\n  token_env: CODEGEN_API_TOKEN\n  org_ids: [7]\nstore:\n  path: {}\nrules:\n  paths: [{}]\nnotifiers:\n  ops: {{ type: slack, url_env: SLACK_URL }}\nvars:\n  default_sandbox_id: 42\n",
        dir.join("store").display(),
        rules.display()
    );
    let file = dir.join("sentinel.yaml");
    std::fs::write(&file, text).unwrap();
    file
}

/// Records run 123's `run.finished` (FAILED) and `run.pr_opened` events through the engine
/// with the shipped rules, as the daemon would.
fn seed(dir: &Path) {
    let store = Store::open(StoreOptions::new(dir.join("store"))).unwrap();
    let env = CompileEnv {
        notifiers: Some(["ops".to_owned()].into()),
        vars: None,
    };
    let set = compile_paths(&[PathBuf::from("rules")], &env)
        .into_result()
        .unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let vars = json!({"default_sandbox_id": 42})
        .as_object()
        .unwrap()
        .clone();
    let engine = Engine::new(
        store.clone(),
        Arc::new(ArcSwap::from_pointee(set)),
        vars,
        clock,
    );
    let run = json!({"id": 123, "organization_id": 7, "status": "FAILED", "source_type": "LOCAL"});
    for (id, kind) in [
        ("run/7/123/2/finished", "run.finished"),
        ("run/7/123/pr/9", "run.pr_opened"),
    ] {
        store
            .transaction(|tx| {
                let new = NewEvent {
                    id: id.into(),
                    kind: kind.into(),
                    at: Utc::now(),
                    source: EventSource::Poll,
                    org_id: Some(7),
                    run_id: Some(123),
                    data: json!({"run": run, "from": "ACTIVE", "to": "FAILED", "pr": {"url": "https://github.com/a/b/pull/1"}}),
                };
                let seq = tx.insert_event(new)?.unwrap();
                engine.on_event(tx, &tx.get_event(seq)?.unwrap())
            })
            .unwrap();
    }
}

#[test]
fn explain_shows_every_event_of_a_run_and_each_rules_decision() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    seed(dir.path());
    let out = bin()
        .args(["explain", "123", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].contains("run.finished (poll) run/7/123/2/finished  ACTIVE -> FAILED"),
        "{stdout}"
    );
    assert!(
        lines[1].contains("diagnose-failed-runs")
            && lines[1].contains("fired")
            && lines[1].contains("[job "),
        "{stdout}"
    );
    assert!(stdout.contains("ban-checks-on-agent-prs  not_matched  `when` is false: run.source_type == \"API\" (run.source_type = \"LOCAL\")"), "{stdout}");
    assert!(
        stdout.contains("trigger run.stalled does not match run.finished"),
        "{stdout}"
    );
    assert!(
        stdout.contains("weekday-digest")
            && stdout.contains("scheduled rule: sees only its own ticks")
    );

    let out = bin()
        .args(["explain", "123", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let first: Value = serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["decisions"][0]["outcome"], "fired");
    assert_eq!(first["jobs"][0]["rule"], "diagnose-failed-runs");

    let out = bin()
        .args(["explain", "999", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no events recorded for run 999"));
}

#[test]
fn replay_shows_what_candidate_rules_would_fire_differently() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    seed(dir.path());
    let candidate = dir.path().join("candidate");
    std::fs::create_dir(&candidate).unwrap();
    std::fs::write(
        candidate.join("r.yaml"),
        r#"rules:
  - name: ban-checks-on-agent-prs
    trigger: run.pr_opened
    key: "{{ pr.url }}"
    steps: [{ action: codegen.ban_checks }]
"#,
    )
    .unwrap();
    let out = bin()
        .args(["rules", "replay", "--since", "7d", "--config"])
        .arg(&config)
        .arg("--rules")
        .arg(&candidate)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with("- ") && lines[0].contains("diagnose-failed-runs: was fired"),
        "{stdout}"
    );
    assert!(lines[0].ends_with("now not offered"), "{stdout}");
    assert!(
        lines[1].starts_with("+ ") && lines[1].contains("ban-checks-on-agent-prs: was not_matched"),
        "{stdout}"
    );
    assert!(text(&out.stderr).contains("replayed 2 event(s)"));
    assert!(text(&out.stderr).contains("1 would fire that did not, 1 fired that would not"));
}

#[test]
fn silences_are_added_listed_and_expired() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let out = bin()
        .args([
            "silence",
            "add",
            "diagnose-failed-runs",
            "--key",
            "run/7/1/2/finished",
            "--until",
            "2h",
            "--reason",
            "known outage",
            "--by",
            "ops",
        ])
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let id: u64 = text(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let out = bin()
        .args(["silence", "list", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let listed = text(&out.stdout);
    assert!(
        listed.contains("active")
            && listed.contains("diagnose-failed-runs [key \"run/7/1/2/finished\"]")
            && listed.contains("known outage"),
        "{listed}"
    );

    let out = bin()
        .args([
            "silence",
            "add",
            "diagnose-failed-run",
            "--until",
            "1h",
            "--reason",
            "x",
        ])
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("did you mean `diagnose-failed-runs`?"));

    let out = bin()
        .args(["silence", "expire", &id.to_string(), "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let out = bin()
        .args(["silence", "list", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(text(&out.stdout).is_empty());
    let out = bin()
        .args(["silence", "list", "--all", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let record: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(record["expired"], true);
    assert_eq!(record["created_by"], "ops");
}
