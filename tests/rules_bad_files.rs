//! The corpus of broken rule files (`tests/fixtures/rules/bad/`): each file names its exact
//! expected error in a `# expect:` comment. Compiling must report exactly that, `check` must
//! exit 2 on it, and a reload into it must keep the previous rules in force.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use codegen_sentinel::config::load_settings;
use codegen_sentinel::rules::reload::{ReloadOutcome, RuleSource};
use codegen_sentinel::rules::{compile_paths, CompileEnv, Rules};

const BAD: &str = "tests/fixtures/rules/bad";
const CONFIG: &str = "tests/fixtures/config/design-example.yaml";

fn bad_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(BAD)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| Path::new(BAD).join(p.file_name().unwrap()))
        .collect();
    files.sort();
    files
}

/// The `# expect: line:col: ...` lines of a file, prefixed with its path.
fn expected(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|e| format!("{}:{e}", file.display()))
        .collect()
}

fn env() -> CompileEnv {
    CompileEnv::from_settings(&load_settings(Path::new(CONFIG)).unwrap())
}

#[test]
fn the_corpus_holds_at_least_forty_files_each_with_an_expectation() {
    let files = bad_files();
    assert!(files.len() >= 40, "only {} bad files", files.len());
    for file in &files {
        assert!(
            !expected(file).is_empty(),
            "{} has no `# expect:` line",
            file.display()
        );
    }
}

#[test]
fn every_bad_file_fails_with_exactly_its_expected_errors() {
    let env = env();
    for file in bad_files() {
        let compiled = compile_paths(std::slice::from_ref(&file), &env);
        assert!(compiled.set.is_none(), "{} compiled", file.display());
        let errors: Vec<String> = compiled.errors().map(ToString::to_string).collect();
        assert_eq!(errors, expected(&file), "{}", file.display());
    }
}

#[test]
fn check_exits_2_on_every_bad_file_and_prints_its_error() {
    for file in bad_files() {
        let output = Command::cargo_bin("codegen-sentinel")
            .unwrap()
            .args(["check", "--config", CONFIG])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{}", file.display());
        let stdout = String::from_utf8(output.stdout).unwrap();
        for line in expected(&file) {
            assert!(
                stdout.lines().any(|l| l == line),
                "{}: {stdout}",
                file.display()
            );
        }
    }
}

const GOOD: &str = r#"
rules:
  - name: notify-failures
    trigger: run.finished
    when: run.status == "FAILED"
    steps:
      - action: notify
        with: { to: ops, text: "Run {{ run.id }} failed" }
"#;

#[test]
fn reloading_any_bad_file_keeps_the_previous_rules() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, GOOD).unwrap();
    let source = RuleSource {
        paths: vec![dir.path().to_path_buf()],
        env: env(),
    };
    let rules = Rules::load(source).unwrap();
    let good_hash = rules.current().hash().to_owned();
    assert_eq!(rules.current().len(), 1);
    for bad in bad_files() {
        std::fs::copy(&bad, &file).unwrap();
        let outcome = rules.reload();
        assert!(
            matches!(outcome, ReloadOutcome::Rejected(_)),
            "{}: {outcome:?}",
            bad.display()
        );
        assert_eq!(rules.current().hash(), good_hash, "{}", bad.display());
        assert!(rules.current().rule("notify-failures").is_some());
        let status = rules.status();
        assert_eq!(status.hash, good_hash);
        assert!(status.last_error.is_some(), "{}", bad.display());
    }
    std::fs::write(&file, GOOD).unwrap();
    assert_eq!(rules.reload(), ReloadOutcome::Unchanged);
    assert_eq!(rules.status().last_error, None);
}
