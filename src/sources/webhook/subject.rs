//! What a GitHub payload says about the pull request it concerns: its repository, numbers and
//! head branches (to find the agent run), and the `pr` context rules see when no run matches.
//!
//! Read from the fields GitHub uses across event types rather than per event name, so new
//! events with the same shapes work unchanged: `pull_request` (pull_request, review, review
//! comment), `issue.pull_request` (comments on PRs), `check_suite`, `check_run`,
//! `workflow_run`, `workflow_job` (`pull_requests[]` and head branches), `push` (`ref`).

use serde_json::{json, Value};

/// The pull request side of one payload.
#[derive(Debug, Clone, PartialEq)]
pub struct PrSubject {
    /// `owner/name` of the repository the delivery is about.
    pub repo: String,
    /// PR numbers named by the payload, most specific first.
    pub numbers: Vec<u64>,
    /// Head branches named by the payload, most specific first.
    pub branches: Vec<String>,
    /// The `pr` context built from the payload (id null: GitHub's ids are not Codegen's), when
    /// the payload names a PR.
    pub context: Option<Value>,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, key| v.get(key))?.as_str()
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: Option<T>) {
    if let Some(item) = item {
        if !list.contains(&item) {
            list.push(item);
        }
    }
}

/// Reads the PR side of `payload`; None when it names no repository or no PR and no branch.
pub fn pr_subject(payload: &Value) -> Option<PrSubject> {
    let repo = str_at(payload, &["repository", "full_name"])?.to_owned();
    let mut numbers = Vec::new();
    let mut branches = Vec::new();
    let mut context = None;

    if let Some(pr) = payload.get("pull_request").filter(|v| v.is_object()) {
        let number = pr.get("number").and_then(Value::as_u64);
        let branch = str_at(pr, &["head", "ref"]).map(str::to_owned);
        push_unique(&mut numbers, number);
        push_unique(&mut branches, branch.clone());
        context = Some(json!({
            "id": null,
            "url": pr.get("html_url"),
            "title": pr.get("title"),
            "head_branch": branch,
            "repo": repo,
            "number": number,
        }));
    }
    if let Some(issue) = payload.get("issue") {
        if let Some(link) = issue.get("pull_request").filter(|v| v.is_object()) {
            let number = issue.get("number").and_then(Value::as_u64);
            push_unique(&mut numbers, number);
            context.get_or_insert_with(|| {
                json!({
                    "id": null,
                    "url": link.get("html_url"),
                    "title": issue.get("title"),
                    "head_branch": null,
                    "repo": repo,
                    "number": number,
                })
            });
        }
    }
    for holder in ["check_suite", "check_run", "workflow_run", "workflow_job"] {
        let Some(object) = payload.get(holder) else {
            continue;
        };
        for pr in object
            .get("pull_requests")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            push_unique(&mut numbers, pr.get("number").and_then(Value::as_u64));
            push_unique(
                &mut branches,
                str_at(pr, &["head", "ref"]).map(str::to_owned),
            );
        }
        push_unique(
            &mut branches,
            str_at(object, &["head_branch"]).map(str::to_owned),
        );
        let suite_branch = str_at(object, &["check_suite", "head_branch"]);
        push_unique(&mut branches, suite_branch.map(str::to_owned));
    }
    if let Some(branch) = str_at(payload, &["ref"]).and_then(|r| r.strip_prefix("refs/heads/")) {
        push_unique(&mut branches, Some(branch.to_owned()));
    }
    if numbers.is_empty() && branches.is_empty() {
        return None;
    }
    if context.is_none() {
        context = numbers.first().map(|&number| {
            let url = str_at(payload, &["repository", "html_url"])
                .map(|base| format!("{}/pull/{number}", base.trim_end_matches('/')));
            json!({
                "id": null,
                "url": url,
                "title": null,
                "head_branch": branches.first(),
                "repo": repo,
                "number": number,
            })
        });
    }
    Some(PrSubject {
        repo,
        numbers,
        branches,
        context,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_suite_names_its_prs_and_branch() {
        let payload = json!({
            "repository": {"full_name": "acme/w", "html_url": "https://github.com/acme/w"},
            "check_suite": {
                "head_branch": "codegen/fix",
                "pull_requests": [{"number": 7, "head": {"ref": "codegen/fix"}}]
            }
        });
        let subject = pr_subject(&payload).unwrap();
        assert_eq!(subject.numbers, vec![7]);
        assert_eq!(subject.branches, vec!["codegen/fix".to_owned()]);
        let context = subject.context.unwrap();
        assert_eq!(context["url"], "https://github.com/acme/w/pull/7");
        assert_eq!(context["id"], Value::Null);
    }

    #[test]
    fn comments_on_issues_are_not_about_a_pr() {
        let payload = json!({
            "repository": {"full_name": "acme/w"},
            "issue": {"number": 3, "title": "bug"}
        });
        assert_eq!(pr_subject(&payload), None);
        let on_pr = json!({
            "repository": {"full_name": "acme/w"},
            "issue": {"number": 3, "title": "t", "pull_request": {"html_url": "https://github.com/acme/w/pull/3"}}
        });
        let subject = pr_subject(&on_pr).unwrap();
        assert_eq!(subject.numbers, vec![3]);
        assert_eq!(subject.context.unwrap()["title"], "t");
    }

    #[test]
    fn pushes_name_their_branch_only() {
        let payload = json!({"repository": {"full_name": "acme/w"}, "ref": "refs/heads/codegen/x"});
        let subject = pr_subject(&payload).unwrap();
        assert!(subject.numbers.is_empty());
        assert_eq!(subject.branches, vec!["codegen/x".to_owned()]);
        assert_eq!(subject.context, None);
    }
}
