//! `pr_runs`: which agent runs opened which pull request, looked up by PR (repository and
//! number) or by head branch, so a GitHub delivery about a PR finds its run.
//!
//! The index follows `runs`: [`Tx::put_run`](super::Tx::put_run) adds the keys of every PR in
//! the run's `github_pull_requests`, so whoever stores a run keeps it current. Entries are only
//! added (a run's PRs do not go away and runs are never pruned). Stores written before the index
//! existed are indexed once when opened (the key `#indexed` records that it was done).
//!
//! Keys are UTF-8: `pr:<owner/repo>#<number>` and `branch:<owner/repo>:<branch>`, the repository
//! lowercased (GitHub treats it case-insensitively), the branch as is. Values are the (org, run)
//! keys of the runs, 16 bytes each, in key order, at most [`MAX_RUNS_PER_KEY`] of them.

use serde_json::Value;

use super::error::StoreError;
use super::keys;
use super::records::RunRecord;
use super::trees::TreeName;
use super::tx::TxAbort;
use super::writes::Tx;
use super::Store;

/// Runs kept per key; a branch name reused by many runs keeps its newest ones.
pub const MAX_RUNS_PER_KEY: usize = 32;

/// Key set in the index itself once every stored run has been indexed (no PR or branch key
/// starts with `#`).
const INDEXED_KEY: &[u8] = b"#indexed";

/// Runs indexed per transaction when an older store is indexed on open.
const BACKFILL_BATCH: usize = 256;

/// The index key of pull request `number` of `repo` (`owner/name`).
pub fn pr_key(repo: &str, number: u64) -> String {
    format!("pr:{}#{number}", repo.to_ascii_lowercase())
}

/// The index key of head branch `branch` in `repo` (`owner/name`).
pub fn branch_key(repo: &str, branch: &str) -> String {
    format!("branch:{}:{branch}", repo.to_ascii_lowercase())
}

/// Reads a pull request URL into (`owner/repo`, number): the web form
/// `https://HOST/OWNER/REPO/pull/N` and the API form `https://HOST/repos/OWNER/REPO/pulls/N`
/// (any host, so GitHub Enterprise URLs work too).
pub fn parse_pr_url(url: &str) -> Option<(String, u64)> {
    let parsed = url::Url::parse(url).ok()?;
    let parts: Vec<&str> = parsed.path_segments()?.filter(|s| !s.is_empty()).collect();
    let (owner, repo, number) = match parts.as_slice() {
        ["repos", owner, repo, "pulls", number, ..] => (owner, repo, number),
        // GitHub Enterprise serves its API under /api/v3.
        ["api", "v3", "repos", owner, repo, "pulls", number, ..] => (owner, repo, number),
        [owner, repo, "pull", number, ..] => (owner, repo, number),
        _ => return None,
    };
    Some((format!("{owner}/{repo}"), number.parse().ok()?))
}

/// The index keys of every PR of a run, from its API JSON (`github_pull_requests[].url` and
/// `head_branch_name`). A PR whose URL cannot be read has no keys: its repository is unknown.
pub(crate) fn run_keys(raw: &Value) -> Vec<String> {
    let Some(prs) = raw.get("github_pull_requests").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for pr in prs {
        let url = pr.get("url").and_then(Value::as_str);
        let Some((repo, number)) = url.and_then(parse_pr_url) else {
            continue;
        };
        out.push(pr_key(&repo, number));
        if let Some(branch) = pr.get("head_branch_name").and_then(Value::as_str) {
            out.push(branch_key(&repo, branch));
        }
    }
    out
}

fn decode_runs(value: &[u8]) -> Vec<(i64, i64)> {
    value
        .chunks_exact(16)
        .map(|k| (keys::i64_from(&k[..8]), keys::i64_from(&k[8..])))
        .collect()
}

impl Tx<'_> {
    /// The runs (org, run id) whose PRs match `key` ([`pr_key`] or [`branch_key`]), oldest id first.
    pub fn runs_for_pr(&self, key: &str) -> Result<Vec<(i64, i64)>, TxAbort> {
        Ok(self
            .tree(TreeName::PrRuns)
            .get(key.as_bytes())?
            .map(|v| decode_runs(&v))
            .unwrap_or_default())
    }

    /// Adds `run` under the keys of its PRs (see the module docs).
    pub(crate) fn index_run_prs(&self, run: &RunRecord) -> Result<(), TxAbort> {
        let entry = keys::run(run.org_id, run.run_id);
        let tree = self.tree(TreeName::PrRuns);
        for key in run_keys(&run.raw) {
            let current = tree.get(key.as_bytes())?;
            let mut entries: Vec<[u8; 16]> = current
                .as_deref()
                .unwrap_or_default()
                .chunks_exact(16)
                .map(|k| {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(k);
                    a
                })
                .collect();
            if entries.contains(&entry) {
                continue;
            }
            entries.push(entry);
            entries.sort_unstable();
            if entries.len() > MAX_RUNS_PER_KEY {
                let excess = entries.len() - MAX_RUNS_PER_KEY;
                entries.drain(..excess);
            }
            tree.insert(key.as_bytes(), entries.concat())?;
        }
        Ok(())
    }
}

impl Store {
    /// The runs (org, run id) whose PRs match `key` ([`pr_key`] or [`branch_key`]), oldest id first.
    pub fn runs_for_pr(&self, key: &str) -> Result<Vec<(i64, i64)>, StoreError> {
        super::tx::ensure_outside_tx("runs_for_pr")?;
        let value = self
            .tree(TreeName::PrRuns)
            .get(key.as_bytes())
            .map_err(StoreError::storage("get"))?;
        Ok(value.map(|v| decode_runs(&v)).unwrap_or_default())
    }

    /// Indexes every stored run once, for stores written before the index existed.
    pub(crate) fn backfill_pr_index(&self) -> Result<(), StoreError> {
        let tree = self.tree(TreeName::PrRuns);
        if tree
            .contains_key(INDEXED_KEY)
            .map_err(StoreError::storage("get"))?
        {
            return Ok(());
        }
        let mut batch = Vec::with_capacity(BACKFILL_BATCH);
        let index = |batch: &mut Vec<RunRecord>| -> Result<(), StoreError> {
            let runs = std::mem::take(batch);
            self.transaction(|tx| runs.iter().try_for_each(|run| tx.index_run_prs(run)))
        };
        for run in self.runs() {
            batch.push(run?);
            if batch.len() >= BACKFILL_BATCH {
                index(&mut batch)?;
            }
        }
        index(&mut batch)?;
        self.transaction(|tx| {
            tx.tree(TreeName::PrRuns).insert(INDEXED_KEY, &[][..])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;
    use chrono::Utc;
    use serde_json::json;

    fn run(run_id: i64, pr_url: &str, branch: &str) -> RunRecord {
        let now = Utc::now();
        RunRecord {
            org_id: 7,
            run_id,
            status: Some("ACTIVE".into()),
            raw: json!({"id": run_id, "github_pull_requests": [
                {"id": run_id * 10, "url": pr_url, "head_branch_name": branch}
            ]}),
            pr_ids: vec![run_id * 10],
            last_seq: 0,
            status_since: now,
            stalled_reported: false,
            first_seen: now,
            last_seen: now,
        }
    }

    #[test]
    fn stored_runs_are_found_by_pr_and_branch_once_each_and_after_a_backfill() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreOptions::new(dir.path())).unwrap();
        let first = run(5, "https://github.com/Acme/W/pull/3", "codegen/a");
        let second = run(9, "https://github.com/acme/w/pull/3", "codegen/b");
        for r in [&first, &first, &second] {
            store.transaction(|tx| tx.put_run(r)).unwrap();
        }
        assert_eq!(
            store.runs_for_pr(&pr_key("acme/w", 3)).unwrap(),
            vec![(7, 5), (7, 9)]
        );
        assert_eq!(
            store
                .runs_for_pr(&branch_key("ACME/w", "codegen/b"))
                .unwrap(),
            vec![(7, 9)]
        );
        assert!(store
            .runs_for_pr(&branch_key("acme/w", "main"))
            .unwrap()
            .is_empty());

        // A store written before the index existed: no entries, no marker.
        let key = pr_key("acme/w", 3);
        store
            .transaction(|tx| {
                tx.remove(TreeName::PrRuns, key.as_bytes())?;
                tx.remove(TreeName::PrRuns, INDEXED_KEY)
            })
            .unwrap();
        drop(store);
        let store = Store::open(StoreOptions::new(dir.path())).unwrap();
        assert_eq!(store.runs_for_pr(&key).unwrap(), vec![(7, 5), (7, 9)]);
    }

    #[test]
    fn a_busy_key_keeps_its_newest_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreOptions::new(dir.path())).unwrap();
        for id in 1..=(MAX_RUNS_PER_KEY as i64 + 3) {
            let r = run(id, "https://github.com/acme/w/pull/1", "main");
            store.transaction(|tx| tx.put_run(&r)).unwrap();
        }
        let runs = store.runs_for_pr(&branch_key("acme/w", "main")).unwrap();
        assert_eq!(runs.len(), MAX_RUNS_PER_KEY);
        assert_eq!(runs.first(), Some(&(7, 4)));
    }

    #[test]
    fn web_and_api_pr_urls_name_the_same_pr() {
        let web = parse_pr_url("https://github.com/Acme/Widgets/pull/42");
        let api = parse_pr_url("https://api.github.com/repos/Acme/Widgets/pulls/42");
        let ghe = parse_pr_url("https://ghe.example.com/api/v3/repos/Acme/Widgets/pulls/42");
        assert_eq!(web, Some(("Acme/Widgets".into(), 42)));
        assert_eq!(web, api);
        assert_eq!(web, ghe);
        assert_eq!(
            parse_pr_url("https://github.com/acme/widgets/issues/42"),
            None
        );
        assert_eq!(parse_pr_url("https://github.com/acme/widgets/pull/x"), None);
        assert_eq!(pr_key("Acme/Widgets", 42), pr_key("acme/widgets", 42));
    }

    #[test]
    fn run_keys_cover_url_and_branch_and_skip_unreadable_prs() {
        let raw = json!({"github_pull_requests": [
            {"id": 1, "url": "https://github.com/acme/w/pull/3", "head_branch_name": "codegen/fix"},
            {"id": 2, "url": null, "head_branch_name": "orphan"},
            {"id": 3, "url": "https://github.com/acme/w/pull/4"}
        ]});
        assert_eq!(
            run_keys(&raw),
            vec![
                "pr:acme/w#3".to_owned(),
                "branch:acme/w:codegen/fix".to_owned(),
                "pr:acme/w#4".to_owned()
            ]
        );
        assert!(run_keys(&json!({"github_pull_requests": null})).is_empty());
    }
}
