//! `codegen-sentinel demo` end to end: no token, no network, a feed and a summary.

use std::process::Command;

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
}
