//! `codegen-sentinel demo` end to end: no token, no network, a feed and a summary.

use std::process::Command;

/// The number after `label` on the summary line that starts with it.
fn summary_count(stdout: &str, label: &str) -> usize {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} line: {stdout}"));
    line.trim_start()[label.len()..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count on {line:?}"))
}

#[test]
fn demo_runs_without_token_or_network_and_prints_a_summary() {
    let out = Command::new(env!("CARGO_BIN_EXE_codegen-sentinel"))
        .args(["demo", "--duration", "6s", "--speed", "20"])
        .current_dir(std::env::temp_dir())
        .env_remove("CODEGEN_API_TOKEN")
        .env_remove("SENTINEL_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("(5 rules)"),
        "the built-in rules load: {stdout}"
    );
    assert!(stdout.contains("run.created"), "{stdout}");
    assert!(stdout.contains("Summary after"), "{stdout}");
    assert!(stdout.contains("rules fired"), "{stdout}");

    // One `✓` line per step done and one `✗` line per step given up, as the store counts them.
    let marked = |mark: &str| {
        stdout
            .lines()
            .filter(|l| l.trim_start().starts_with(mark) && l.contains(" job "))
            .count()
    };
    let done_lines = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("✓ job ") && l.contains(" done"))
        .count();
    assert!(done_lines > 0, "at least one step is done: {stdout}");
    assert_eq!(done_lines, marked("✓"));
    assert_eq!(
        summary_count(&stdout, "actions done"),
        done_lines,
        "{stdout}"
    );
    assert_eq!(summary_count(&stdout, "failures"), marked("✗"), "{stdout}");
    assert!(
        !stdout.contains("not shown"),
        "nothing was dropped: {stdout}"
    );
}
