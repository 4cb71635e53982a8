//! Reload through the file watch: an editor's write-and-rename, a checkout that replaces the
//! directory, and a broken file (which keeps the old set). Each step waits for the reload it
//! caused (bounded), never for a fixed time.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use codegen_sentinel::rules::reload::{run_reload, RuleSource};
use codegen_sentinel::rules::Rules;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Longest wait for the file system to report a change (CI machines can be slow).
const WAIT: Duration = Duration::from_secs(20);

fn rule(name: &str) -> String {
    format!(
        "rules:\n  - name: {name}\n    trigger: run.finished\n    steps: [{{ action: log, with: {{ message: hi }} }}]\n"
    )
}

/// Writes like an editor that saves to a temporary file and renames it over the original.
fn save_by_rename(file: &Path, text: &str) {
    let tmp = file.with_extension("yaml.tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

/// Waits until the rule set in force has `name`, or `WAIT` passes.
async fn until(rules: &Rules, reloads: &mut watch::Receiver<u64>, check: impl Fn(&Rules) -> bool) {
    let waited = tokio::time::timeout(WAIT, async {
        while !check(rules) {
            reloads.changed().await.unwrap();
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "no reload seen; status {:?}",
        rules.status()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_checkouts_and_broken_files_are_handled_by_the_watch() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("rules");
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("main.yaml");
    std::fs::write(&file, rule("first")).unwrap();
    let rules = Arc::new(
        Rules::load(RuleSource {
            paths: vec![dir.clone()],
            env: Default::default(),
        })
        .unwrap(),
    );
    let mut reloads = rules.subscribe();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run_reload(rules.clone(), cancel.clone()));
    // The watch is armed before the first change is made: wait until a harmless touch reloads.
    let touched = tokio::time::timeout(WAIT, async {
        loop {
            std::fs::write(dir.join("touch.yml"), "rules: []\n").unwrap();
            if tokio::time::timeout(Duration::from_millis(500), reloads.changed())
                .await
                .is_ok()
            {
                break;
            }
        }
    })
    .await;
    assert!(touched.is_ok(), "the watch never reported a change");

    save_by_rename(&file, &rule("second"));
    until(&rules, &mut reloads, |r| {
        r.current().rule("second").is_some()
    })
    .await;
    let second_hash = rules.current().hash().to_owned();

    // A checkout that swaps the whole directory.
    let next = root.path().join("rules.next");
    std::fs::create_dir(&next).unwrap();
    std::fs::write(next.join("main.yaml"), rule("third")).unwrap();
    std::fs::rename(&dir, root.path().join("rules.old")).unwrap();
    std::fs::rename(&next, &dir).unwrap();
    until(&rules, &mut reloads, |r| {
        r.current().rule("third").is_some()
    })
    .await;

    // And the watch follows the new directory: a broken edit there keeps `third` in force.
    let third_hash = rules.current().hash().to_owned();
    assert_ne!(third_hash, second_hash);
    save_by_rename(
        &dir.join("main.yaml"),
        "rules:\n  - name: third\n    trigger: run.finshed\n",
    );
    until(&rules, &mut reloads, |r| r.status().last_error.is_some()).await;
    assert_eq!(rules.current().hash(), third_hash);
    assert!(rules
        .status()
        .last_error
        .unwrap()
        .contains("unknown event type `run.finshed`"));

    cancel.cancel();
    task.await.unwrap().unwrap();
}
