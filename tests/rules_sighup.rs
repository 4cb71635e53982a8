//! SIGHUP reloads the rules. Alone in its test binary: the signal is sent to the whole process,
//! after the reload loop has installed its handler.

#![cfg(unix)]

use std::sync::Arc;
use std::time::Duration;

use codegen_sentinel::rules::reload::{run_reload, RuleSource};
use codegen_sentinel::rules::Rules;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    // A single file (not a directory): only its parent directory is watched.
    let file = dir.path().join("only.yaml");
    std::fs::write(&file, "rules: []\n").unwrap();
    let rules = Arc::new(
        Rules::load(RuleSource {
            paths: vec![file.clone()],
            env: Default::default(),
        })
        .unwrap(),
    );
    assert!(rules.current().is_empty());
    // A listener of our own makes a HUP harmless to the process from now on (the default
    // action would end it), whether or not the reload loop has registered yet.
    let _guard = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
    // Changed before the loop starts, so no file event can be what reloads it: only the HUP.
    let rule = "rules:\n  - name: added\n    trigger: run.created\n    steps: [{ action: log, with: { message: hi } }]\n";
    std::fs::write(&file, rule).unwrap();
    let mut reloads = rules.subscribe();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run_reload(rules.clone(), cancel.clone()));
    let pid = std::process::id().to_string();
    let reloaded = tokio::time::timeout(Duration::from_secs(20), async {
        while rules.current().rule("added").is_none() {
            // Sent again until the loop has registered and reloaded.
            std::process::Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap();
            let _ = tokio::time::timeout(Duration::from_millis(500), reloads.changed()).await;
        }
    })
    .await;
    assert!(reloaded.is_ok(), "no reload: {:?}", rules.status());
    cancel.cancel();
    task.await.unwrap().unwrap();
}
