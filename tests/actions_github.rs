//! GitHub actions against the fake GitHub through octocrab: the exact requests of each action,
//! the comment marker and its check after uncertain attempts, error classes, and the rate limits
//! (Retry-After, an exhausted limit until its reset, 80 content-creating requests a minute).

mod github_fake;

use std::sync::Arc;
use std::time::Duration;

use codegen_sentinel::actions::github::{self, GithubAuth, GithubClient};
use codegen_sentinel::actions::{self, ActionError, StepCall};
use github_fake::{one_scope, serve_github, Chaos, FakeGithub, Fault, Served, TokioClock};
use secrecy::SecretString;
use serde_json::{json, Value};

const TOKEN: &str = "ghp-test-token";
const REPO: &str = "acme/widgets";

struct Rig {
    github: FakeGithub,
    chaos: Chaos,
    client: GithubClient,
    _served: Served,
}

async fn rig() -> Rig {
    let clock = TokioClock::new();
    let github = FakeGithub::new(TOKEN);
    github.add_pr(REPO, 7);
    let chaos = Chaos::new(one_scope, clock.func());
    let served = serve_github(&github, &chaos).await;
    let client = GithubClient::builder(
        served.base_url.clone(),
        GithubAuth::Token(SecretString::from(TOKEN)),
        Arc::new(clock),
    )
    .timeout(Duration::from_secs(5))
    .build()
    .unwrap();
    Rig {
        github,
        chaos,
        client,
        _served: served,
    }
}

impl Rig {
    async fn run(
        &self,
        action: &str,
        params: Value,
        key: &str,
        uncertain: bool,
    ) -> Result<Value, ActionError> {
        let spec = actions::action(action).unwrap();
        let params = actions::prepare(spec, params.as_object().unwrap()).unwrap();
        let context = json!({});
        let call = StepCall {
            action: spec,
            params: &params,
            context: &context,
            key,
            uncertain,
            job_id: 1,
            rule: "test",
        };
        github::execute(&self.client, &call).await
    }

    fn requests(&self) -> Vec<String> {
        self.chaos
            .log()
            .iter()
            .map(|r| format!("{} {}", r.method, r.uri))
            .collect()
    }
}

#[tokio::test]
async fn a_comment_carries_the_hidden_marker_and_is_posted_once() {
    let rig = rig().await;
    let out = rig
        .run(
            "github.comment",
            json!({"pr": "https://github.com/acme/widgets/pull/7", "body": "Opened by run 5."}),
            "k1-9-1",
            false,
        )
        .await
        .unwrap();
    let comments = rig.github.comments(REPO, 7);
    assert_eq!(comments.len(), 1);
    assert_eq!(
        comments[0].body,
        "Opened by run 5.\n\n<!-- codegen-sentinel:k1-9-1 -->"
    );
    assert_eq!(out["id"], json!(comments[0].id));
    assert!(out["url"].as_str().unwrap().contains("#issuecomment-"));
    assert_eq!(
        rig.requests(),
        vec!["POST /repos/acme/widgets/issues/7/comments"]
    );
    let log = rig.chaos.log();
    assert_eq!(
        log[0].header("authorization").as_deref(),
        Some("Bearer ghp-test-token")
    );
}

#[tokio::test]
async fn after_an_uncertain_post_the_marker_is_found_and_nothing_is_posted_again() {
    let rig = rig().await;
    rig.github.add_comment(REPO, 7, "an unrelated comment");
    rig.chaos.inject(Fault::DropAfter, 1, Some("POST"));
    let params = json!({"pr": "acme/widgets#7", "body": "hello"});
    let err = rig
        .run("github.comment", params.clone(), "k-3-0", false)
        .await
        .unwrap_err();
    assert!(!err.is_permanent() && err.maybe_applied, "{err:?}");
    let out = rig
        .run("github.comment", params, "k-3-0", true)
        .await
        .unwrap();
    let comments = rig.github.comments(REPO, 7);
    assert_eq!(comments.len(), 2, "posted exactly once");
    assert_eq!(out["id"], json!(comments[1].id));
    assert_eq!(
        rig.requests(),
        vec![
            "POST /repos/acme/widgets/issues/7/comments",
            "GET /repos/acme/widgets/issues/7/comments?per_page=100&page=1",
        ]
    );
}

#[tokio::test]
async fn after_an_uncertain_failure_that_did_not_post_the_comment_is_posted() {
    let rig = rig().await;
    rig.chaos.inject(Fault::Status(502), 1, Some("POST"));
    let params = json!({"pr": "acme/widgets#7", "body": "hello"});
    let err = rig
        .run("github.comment", params.clone(), "k-4-0", false)
        .await
        .unwrap_err();
    assert!(err.maybe_applied, "a 5xx after sending is uncertain");
    rig.run("github.comment", params, "k-4-0", true)
        .await
        .unwrap();
    assert_eq!(rig.github.comments(REPO, 7).len(), 1);
    assert_eq!(rig.requests().len(), 3, "{:?}", rig.requests());
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_post_is_checked_for_before_posting_again() {
    let rig = rig().await;
    rig.chaos
        .inject(Fault::DelayAfter(Duration::from_secs(60)), 1, Some("POST"));
    let params = json!({"pr": "acme/widgets#7", "body": "slow"});
    let err = rig
        .run("github.comment", params.clone(), "k-5-0", false)
        .await
        .unwrap_err();
    assert!(
        err.message.contains("timed out") && err.maybe_applied,
        "{err:?}"
    );
    rig.run("github.comment", params, "k-5-0", true)
        .await
        .unwrap();
    assert_eq!(rig.github.comments(REPO, 7).len(), 1);
}

#[tokio::test]
async fn the_marker_search_walks_every_page_of_comments() {
    let rig = rig().await;
    for i in 0..150 {
        rig.github.add_comment(REPO, 7, &format!("comment {i}"));
    }
    rig.github
        .add_comment(REPO, 7, "earlier\n\n<!-- codegen-sentinel:k-6-0 -->");
    let out = rig
        .run(
            "github.comment",
            json!({"pr": "acme/widgets#7", "body": "x"}),
            "k-6-0",
            true,
        )
        .await
        .unwrap();
    assert_eq!(out["id"], json!(rig.github.comments(REPO, 7)[150].id));
    assert_eq!(rig.requests().len(), 2, "two pages, no post");
}

#[tokio::test]
async fn labels_reviewers_and_statuses_reach_github() {
    let rig = rig().await;
    let pr = "https://github.com/acme/widgets/pull/7";
    rig.run(
        "github.add_labels",
        json!({"pr": pr, "labels": "agent, needs review"}),
        "a",
        false,
    )
    .await
    .unwrap();
    assert_eq!(rig.github.labels(REPO, 7), vec!["agent", "needs review"]);
    rig.run(
        "github.remove_labels",
        json!({"pr": pr, "labels": ["needs review", "absent"]}),
        "b",
        false,
    )
    .await
    .unwrap();
    assert_eq!(rig.github.labels(REPO, 7), vec!["agent"]);
    rig.run(
        "github.request_reviewers",
        json!({"pr": pr, "reviewers": ["octo"], "team_reviewers": "ops"}),
        "c",
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        rig.github.review_requests(REPO, 7),
        (vec!["octo".into()], vec!["ops".into()])
    );
    rig.run(
        "github.commit_status",
        json!({"repo": REPO, "sha": "abc123", "state": "failure", "description": "run failed"}),
        "d",
        false,
    )
    .await
    .unwrap();
    let statuses = rig.github.statuses(REPO);
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].context, "codegen-sentinel");
    assert_eq!(statuses[0].state, "failure");
    assert_eq!(statuses[0].description.as_deref(), Some("run failed"));
    assert_eq!(
        rig.requests(),
        vec![
            "POST /repos/acme/widgets/issues/7/labels",
            "DELETE /repos/acme/widgets/issues/7/labels/needs%20review",
            "DELETE /repos/acme/widgets/issues/7/labels/absent",
            "POST /repos/acme/widgets/pulls/7/requested_reviewers",
            "POST /repos/acme/widgets/statuses/abc123",
        ]
    );
    assert_eq!(
        rig.chaos.log()[0].json(),
        json!({"labels": ["agent", "needs review"]})
    );
}

#[tokio::test]
async fn client_errors_are_permanent_and_server_errors_retried() {
    let rig = rig().await;
    let err = rig
        .run(
            "github.comment",
            json!({"pr": "acme/widgets#99", "body": "x"}),
            "k",
            false,
        )
        .await
        .unwrap_err();
    assert!(err.is_permanent() && err.message.contains("404"), "{err:?}");
    rig.chaos.inject(Fault::Status(503), 1, None);
    let err = rig
        .run(
            "github.add_labels",
            json!({"pr": "acme/widgets#7", "labels": ["x"]}),
            "k",
            false,
        )
        .await
        .unwrap_err();
    assert!(!err.is_permanent(), "{err:?}");
    let bad = GithubClient::builder(
        rig.client.base_url().to_owned(),
        GithubAuth::Token(SecretString::from("wrong")),
        Arc::new(TokioClock::new()),
    )
    .build()
    .unwrap();
    let spec = actions::action("github.add_labels").unwrap();
    let params = actions::prepare(
        spec,
        json!({"pr": "acme/widgets#7", "labels": ["x"]})
            .as_object()
            .unwrap(),
    )
    .unwrap();
    let ctx = json!({});
    let call = StepCall {
        action: spec,
        params: &params,
        context: &ctx,
        key: "k",
        uncertain: false,
        job_id: 1,
        rule: "t",
    };
    let err = github::execute(&bad, &call).await.unwrap_err();
    assert!(err.is_permanent() && err.message.contains("401"), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_holds_every_request_until_it_has_passed() {
    let rig = rig().await;
    rig.chaos.inject(Fault::RateLimited(Some(30)), 1, None);
    let labels = json!({"pr": "acme/widgets#7", "labels": ["x"]});
    let err = rig
        .run("github.add_labels", labels.clone(), "k", false)
        .await
        .unwrap_err();
    assert_eq!(err.retry_after, Some(Duration::from_secs(30)));
    assert!(!err.maybe_applied && !err.not_sent);
    // Anything else is held back without being sent.
    let err = rig
        .run(
            "github.comment",
            json!({"pr": "acme/widgets#7", "body": "b"}),
            "k2",
            false,
        )
        .await
        .unwrap_err();
    assert!(
        err.not_sent && err.retry_after.unwrap() <= Duration::from_secs(30),
        "{err:?}"
    );
    assert_eq!(rig.chaos.log().len(), 1);
    tokio::time::sleep(Duration::from_secs(30)).await;
    rig.run("github.add_labels", labels, "k", false)
        .await
        .unwrap();
    assert!(
        rig.chaos.violations().is_empty(),
        "{:?}",
        rig.chaos.violations()
    );
}

#[tokio::test(start_paused = true)]
async fn a_429_without_retry_after_waits_a_minute() {
    let rig = rig().await;
    rig.chaos.inject(Fault::RateLimited(None), 1, None);
    let err = rig
        .run(
            "github.add_labels",
            json!({"pr": "acme/widgets#7", "labels": ["x"]}),
            "k",
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(err.retry_after, Some(Duration::from_secs(60)));
    assert!(rig.client.blocked_until().is_some());
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_rate_limit_holds_requests_until_its_reset() {
    let rig = rig().await;
    rig.chaos.inject(Fault::LimitExhausted(120), 1, None);
    let params = json!({"pr": "acme/widgets#7", "labels": ["x"]});
    let err = rig
        .run("github.add_labels", params.clone(), "k", false)
        .await
        .unwrap_err();
    let wait = err.retry_after.unwrap();
    assert!(
        wait >= Duration::from_secs(120) && wait <= Duration::from_secs(121),
        "{wait:?}"
    );
    let err = rig
        .run("github.add_labels", params.clone(), "k", false)
        .await
        .unwrap_err();
    assert!(err.not_sent);
    tokio::time::sleep(wait).await;
    rig.run("github.add_labels", params, "k", false)
        .await
        .unwrap();
    assert_eq!(rig.chaos.log().len(), 2);
    assert!(
        rig.chaos.violations().is_empty(),
        "{:?}",
        rig.chaos.violations()
    );
}

#[tokio::test(start_paused = true)]
async fn content_creating_requests_stay_under_80_a_minute() {
    let rig = Arc::new(rig().await);
    let mut tasks = Vec::new();
    for i in 0..100 {
        let rig = rig.clone();
        tasks.push(tokio::spawn(async move {
            rig.run(
                "github.add_labels",
                json!({"pr": "acme/widgets#7", "labels": [format!("l{i}")]}),
                "k",
                false,
            )
            .await
        }));
    }
    let mut refused = 0;
    for task in tasks {
        if let Err(err) = task.await.unwrap() {
            assert!(
                err.not_sent && err.retry_after.unwrap() <= Duration::from_secs(60),
                "{err:?}"
            );
            refused += 1;
        }
    }
    assert_eq!(refused, 20);
    let log = rig.chaos.log();
    assert_eq!(log.len(), 80);
    let first = log.iter().map(|r| r.at).min().unwrap();
    assert!(log
        .iter()
        .all(|r| r.at.duration_since(first) < Duration::from_secs(60)));
    // Reads are not content and pass.
    rig.run(
        "github.comment",
        json!({"pr": "acme/widgets#7", "body": "x"}),
        "k",
        true,
    )
    .await
    .unwrap_err();
    assert_eq!(
        rig.chaos.log().len(),
        81,
        "the marker search went out, the post did not"
    );
}
