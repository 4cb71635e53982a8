//! Unit tests of compiling: warnings, the rule-set hash, step JSON, several files at once.

use std::path::PathBuf;

use super::*;

fn compile(files: &[(&str, &str)]) -> Compiled {
    let sources: Vec<(PathBuf, String)> = files
        .iter()
        .map(|(name, text)| (PathBuf::from(name), (*text).to_owned()))
        .collect();
    compile_sources(&sources, &CompileEnv::default())
}

fn lines(diagnostics: impl Iterator<Item = impl ToString>) -> Vec<String> {
    diagnostics.map(|d| d.to_string()).collect()
}

#[test]
fn warnings_do_not_stop_a_set_from_loading() {
    let compiled = compile(&[(
        "w.yaml",
        r#"rules:
  - name: off-rule
    trigger: run.finished
    mode: off
    cooldown: 1h
    steps: [{ action: log, with: { message: hi } }]
  - name: once
    trigger: run.created
    key: global
    when: "false"
    steps: [{ action: log, with: { message: hi } }]
"#,
    )]);
    assert!(!compiled.has_errors());
    assert_eq!(
        lines(compiled.warnings()),
        vec![
            "w.yaml:4:11: off-rule › mode: rule is off: it never fires",
            "w.yaml:5:15: off-rule › cooldown: `cooldown` has no effect without `key`: each event is its own key (hint: set `key`, e.g. `key: \"{{ pr.url }}\"`)",
            "w.yaml:9:10: once › key: constant key without cooldown or throttle: the rule fires once, ever (hint: use a template such as `{{ run.id }}`, or add `cooldown`)",
            "w.yaml:10:11: once › when: `when` is always false: the rule never fires",
        ]
    );
    assert_eq!(compiled.set.unwrap().len(), 2);
}

#[test]
fn duplicate_names_are_found_across_files_and_errors_of_every_file_reported() {
    let rule = "rules:\n  - name: same\n    trigger: run.created\n    steps: [{ action: log, with: { message: hi } }]\n";
    let compiled = compile(&[
        ("a.yaml", rule),
        ("b.yaml", rule),
        ("c.yaml", "rules: [{name: x}]"),
    ]);
    assert_eq!(
        lines(compiled.errors()),
        vec![
            "b.yaml:2:11: same › name: duplicate rule name `same` (hint: it is first defined at a.yaml:2:5)",
            "c.yaml:1:9: x: missing `trigger` or `schedule` (hint: e.g. `trigger: run.finished` or `schedule: \"0 0 9 * * *\"`)",
            "c.yaml:1:9: x › steps: a rule needs at least one step (hint: e.g. `steps: [{action: log, with: {message: \"...\"}}]`)",
        ]
    );
    assert!(compiled.set.is_none());
}

#[test]
fn the_hash_ignores_layout_and_comments_but_not_content() {
    let one = "rules:\n  - name: a\n    trigger: run.created\n    steps: [{ action: log, with: { message: hi } }]\n";
    let two = "# a comment\nrules:\n  - trigger: run.created\n    name: a\n    steps:\n      - action: log\n        with:\n          message: hi\n";
    let hash = |text: &str| compile(&[("r.yaml", text)]).set.unwrap().hash().to_owned();
    assert_eq!(hash(one), hash(two));
    assert_ne!(hash(one), hash(&one.replace("hi", "ho")));
    assert_eq!(hash(one).len(), 16);
}

#[test]
fn steps_are_copied_in_the_job_contract_shape() {
    let compiled = compile(&[(
        "s.yaml",
        r#"rules:
  - name: s
    trigger: run.finished
    steps:
      - id: logs
        action: codegen.fetch_logs
        with: { limit: 50 }
        retry: { max_attempts: 3 }
      - action: log
        when: steps.logs.total > 0
        continue_on_error: true
        with: { message: "{{ steps.logs.total }}" }
"#,
    )]);
    let set = compiled.set.unwrap();
    assert_eq!(
        set.rule("s").unwrap().steps_json,
        serde_json::json!([
            {"id": "logs", "action": "codegen.fetch_logs", "with": {"limit": 50}, "when": null,
             "continue_on_error": false, "retry": {"max_attempts": 3, "backoff": "1s", "cap": "5m"}},
            {"id": null, "action": "log", "with": {"message": "{{ steps.logs.total }}"},
             "when": "steps.logs.total > 0", "continue_on_error": true, "retry": null},
        ])
    );
}

#[test]
fn an_empty_file_warns_and_a_timezone_schedule_ticks_in_local_time() {
    let compiled = compile(&[
        ("empty.yaml", ""),
        (
            "tz.yaml",
            "rules:\n  - name: paris\n    schedule: \"0 0 9 * * *\"\n    timezone: Europe/Paris\n    steps: [{ action: log, with: { message: hi } }]\n",
        ),
    ]);
    assert_eq!(
        lines(compiled.warnings()),
        vec!["empty.yaml:1:1: no rules in this file"]
    );
    let set = compiled.set.unwrap();
    let schedule = set.rule("paris").unwrap().schedule().unwrap();
    let winter = chrono::DateTime::parse_from_rfc3339("2025-01-06T00:00:00Z")
        .unwrap()
        .to_utc();
    assert_eq!(
        schedule.next_after(winter).unwrap().to_rfc3339(),
        "2025-01-06T08:00:00+00:00"
    );
    let summer = chrono::DateTime::parse_from_rfc3339("2025-07-07T00:00:00Z")
        .unwrap()
        .to_utc();
    assert_eq!(
        schedule.next_after(summer).unwrap().to_rfc3339(),
        "2025-07-07T07:00:00+00:00"
    );
}
