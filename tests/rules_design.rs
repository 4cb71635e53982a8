//! The example rules of DESIGN §4 load as written (with the DESIGN §3 config) and mean what
//! the design says: the fixture is the block verbatim, compared with the design when present.

use std::path::{Path, PathBuf};
use std::time::Duration;

use codegen_sentinel::config::load_settings;
use codegen_sentinel::rules::{compile_paths, CompileEnv, Mode};

const EXAMPLES: &str = "tests/fixtures/rules/design-examples.yaml";

#[test]
fn the_design_examples_compile_with_the_design_config() {
    let settings = load_settings(Path::new("tests/fixtures/config/design-example.yaml")).unwrap();
    let compiled = compile_paths(
        &[PathBuf::from(EXAMPLES)],
        &CompileEnv::from_settings(&settings),
    );
    assert_eq!(compiled.diagnostics, vec![], "no error and no warning");
    let set = compiled.set.unwrap();
    let names: Vec<&str> = set.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "diagnose-failed-runs",
            "ban-checks-on-agent-prs",
            "weekday-digest"
        ]
    );

    let diagnose = set.rule("diagnose-failed-runs").unwrap();
    assert!(diagnose.matches_kind("run.finished") && !diagnose.matches_kind("run.created"));
    assert_eq!(diagnose.steps.len(), 3);
    let ban = set.rule("ban-checks-on-agent-prs").unwrap();
    assert_eq!(ban.key.as_deref(), Some("{{ pr.url }}"));
    assert_eq!(ban.cooldown, Some(Duration::from_secs(3600)));
    let digest = set.rule("weekday-digest").unwrap();
    assert_eq!(digest.mode, Mode::Shadow);
    let tick = digest.schedule().unwrap();
    let saturday = chrono::DateTime::parse_from_rfc3339("2025-01-04T10:00:00Z")
        .unwrap()
        .to_utc();
    assert_eq!(
        tick.next_after(saturday).unwrap().to_rfc3339(),
        "2025-01-06T09:00:00+00:00"
    );
}

#[test]
fn the_fixture_is_the_design_block_verbatim() {
    let Ok(design) = std::fs::read_to_string("../shared/DESIGN.md") else {
        eprintln!("../shared/DESIGN.md not found beside the repository; comparison skipped");
        return;
    };
    let section =
        &design[design.find("## 4. Rules").unwrap()..design.find("## 5. Events").unwrap()];
    let start = section.find("```yaml\n").unwrap() + "```yaml\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    assert_eq!(std::fs::read_to_string(EXAMPLES).unwrap(), block);
}
