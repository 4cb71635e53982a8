//! Deliveries about a pull request carry `pr`, and `run` when an agent run opened that PR
//! (matched by PR URL or head branch), so a rule can react to a check suite failing on an
//! agent's PR; the run is found whether it was written directly or recorded by the poller.

mod common;
mod webhook_support;

use std::sync::Arc;

use axum::http::StatusCode;
use codegen_sentinel::api::{OrgId, RateBudget};
use codegen_sentinel::clock::ManualClock;
use codegen_sentinel::events::NoSink;
use codegen_sentinel::sim::RunPlan;
use codegen_sentinel::sources::poller::{Poller, PollerConfig};
use codegen_sentinel::store::{JobState, RunRecord};
use serde_json::{json, Value};
use webhook_support::*;

const AGENT_ORG: i64 = 7;
const AGENT_RUN: i64 = 4242;
/// The Codegen id of the agent's PR (not GitHub's).
const CODEGEN_PR_ID: i64 = 991;

/// An agent run whose PR is the fixtures' `Codertocat/Hello-World#2` on branch `changes`.
fn agent_run(pr_url: &str, branch: &str) -> RunRecord {
    let raw = json!({
        "id": AGENT_RUN,
        "organization_id": AGENT_ORG,
        "status": "COMPLETE",
        "web_url": "https://codegen.com/agent/trace/4242",
        "github_pull_requests": [{
            "id": CODEGEN_PR_ID,
            "title": "Update README",
            "url": pr_url,
            "head_branch_name": branch,
            "created_at": "2019-05-15T15:20:33Z"
        }]
    });
    RunRecord {
        org_id: AGENT_ORG,
        run_id: AGENT_RUN,
        status: Some("COMPLETE".into()),
        raw,
        pr_ids: vec![CODEGEN_PR_ID],
        last_seq: 0,
        status_since: now(),
        stalled_reported: false,
        first_seen: now(),
        last_seen: now(),
    }
}

/// The real check_suite delivery, concluded as a failure.
fn failed_check_suite() -> Value {
    let mut payload = fixture_json("check_suite.completed.json");
    payload["check_suite"]["conclusion"] = json!("failure");
    payload
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

#[tokio::test]
async fn a_failed_check_suite_on_an_agent_pr_carries_its_run_and_pr_and_fires_a_rule() {
    let rig = Rig::new(&[SECRET]);
    let run = agent_run(
        "https://github.com/Codertocat/Hello-World/pull/2",
        "changes",
    );
    rig.store.transaction(|tx| tx.put_run(&run)).unwrap();

    let body = bytes(&failed_check_suite());
    let (status, _) = rig.send(signed("check_suite", "cs-1", body, SECRET)).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let event = rig.store.event_by_id("github/cs-1").unwrap().unwrap();
    assert_eq!(event.kind, "github.check_suite");
    assert_eq!(
        (event.org_id, event.run_id),
        (Some(AGENT_ORG), Some(AGENT_RUN))
    );
    assert_eq!(event.data["action"], "completed");
    assert_eq!(event.data["run"], run.raw);
    assert_eq!(
        event.data["pr"],
        json!({
            "id": CODEGEN_PR_ID,
            "url": "https://github.com/Codertocat/Hello-World/pull/2",
            "title": "Update README",
            "head_branch": "changes",
            "repo": "Codertocat/Hello-World",
            "number": 2
        })
    );
    // Listed among the run's events, and the rule fired in the same transaction.
    let of_run = rig.store.events_of_run(AGENT_ORG, AGENT_RUN).unwrap();
    assert_eq!(
        of_run.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["github/cs-1"]
    );
    let journal = rig.store.journal_of_event(event.seq).unwrap();
    assert_eq!(journal[0].outcome, "fired");
    let jobs: Vec<_> = rig.store.jobs().map(Result::unwrap).collect();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].rule, RULE);
    assert_eq!(jobs[0].state, JobState::Pending);
    assert_eq!(jobs[0].event_id, "github/cs-1");
}

#[tokio::test]
async fn a_successful_suite_is_correlated_but_does_not_fire() {
    let rig = Rig::new(&[SECRET]);
    let run = agent_run(
        "https://github.com/Codertocat/Hello-World/pull/2",
        "changes",
    );
    rig.store.transaction(|tx| tx.put_run(&run)).unwrap();
    let body = fixture("check_suite.completed.json");
    rig.send(signed("check_suite", "cs-ok", body, SECRET)).await;
    let event = rig.store.event_by_id("github/cs-ok").unwrap().unwrap();
    assert_eq!(event.run_id, Some(AGENT_RUN));
    assert_eq!(
        rig.store.journal_of_event(event.seq).unwrap()[0].outcome,
        "skipped"
    );
    assert_eq!(rig.store.jobs().count(), 0);
}

#[tokio::test]
async fn a_suite_without_pr_numbers_is_matched_by_its_head_branch() {
    let rig = Rig::new(&[SECRET]);
    // The run's PR has another number: only the branch can match.
    let run = agent_run(
        "https://github.com/codertocat/hello-world/pull/77",
        "changes",
    );
    rig.store.transaction(|tx| tx.put_run(&run)).unwrap();
    let mut payload = failed_check_suite();
    payload["check_suite"]["pull_requests"] = json!([]); // as for a PR from a fork
    let (status, _) = rig
        .send(signed("check_suite", "cs-2", bytes(&payload), SECRET))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let event = rig.store.event_by_id("github/cs-2").unwrap().unwrap();
    assert_eq!(event.run_id, Some(AGENT_RUN));
    assert_eq!(event.data["pr"]["id"], CODEGEN_PR_ID);
    assert_eq!(event.data["pr"]["number"], 77);
}

#[tokio::test]
async fn a_pr_no_agent_opened_carries_pr_from_the_payload_and_no_run() {
    let rig = Rig::new(&[SECRET]);
    let other = agent_run(
        "https://github.com/Codertocat/Hello-World/pull/3",
        "elsewhere",
    );
    rig.store.transaction(|tx| tx.put_run(&other)).unwrap();
    let body = fixture("pull_request.opened.json");
    rig.send(signed("pull_request", "pr-1", body, SECRET)).await;
    let event = rig.store.event_by_id("github/pr-1").unwrap().unwrap();
    assert_eq!((event.org_id, event.run_id), (None, None));
    assert_eq!(event.data["run"], Value::Null);
    assert_eq!(
        event.data["pr"],
        json!({
            "id": null,
            "url": "https://github.com/Codertocat/Hello-World/pull/2",
            "title": "Update the README with new information.",
            "head_branch": "changes",
            "repo": "Codertocat/Hello-World",
            "number": 2
        })
    );
}

#[tokio::test]
async fn a_comment_on_an_issue_carries_neither_pr_nor_run() {
    let rig = Rig::new(&[SECRET]);
    let body = fixture("issue_comment.created.json");
    rig.send(signed("issue_comment", "ic-1", body, SECRET))
        .await;
    let event = rig.store.event_by_id("github/ic-1").unwrap().unwrap();
    assert_eq!(event.data["pr"], Value::Null);
    assert_eq!(event.data["run"], Value::Null);
    assert_eq!(event.data["action"], "created");
}

#[tokio::test]
async fn a_run_recorded_by_the_poller_is_found_from_its_pr() {
    let sim = common::seeded_sim();
    let clock = ManualClock::new(sim.now());
    let server = common::serve(sim).await;
    let rig = Rig::new(&[SECRET]);
    let config = PollerConfig::defaults(OrgId(common::ORG));
    let client = common::client_with(
        &server.base_url,
        Arc::new(RateBudget::unlimited()),
        common::fast_retry(),
    );
    let mut poller = Poller::new(
        config,
        client,
        rig.store.clone(),
        Arc::new(clock),
        Arc::new(NoSink),
    )
    .unwrap();
    poller.poll_once().await.unwrap();
    let run = server.sim.create_run(common::ORG, RunPlan::completes());
    server.sim.add_pr(common::ORG, run);
    poller.poll_once().await.unwrap();

    let pr = server.sim.run_json(common::ORG, run).unwrap()["github_pull_requests"][0].clone();
    let url = pr["url"].as_str().unwrap();
    let (repo, number) = codegen_sentinel::store::pr_index::parse_pr_url(url).unwrap();
    let mut payload = failed_check_suite();
    payload["repository"]["full_name"] = json!(repo);
    payload["check_suite"]["pull_requests"][0]["number"] = json!(number);
    let (status, _) = rig
        .send(signed("check_suite", "cs-sim", bytes(&payload), SECRET))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let event = rig.store.event_by_id("github/cs-sim").unwrap().unwrap();
    assert_eq!(event.run_id, Some(run));
    assert_eq!(event.data["pr"]["id"], pr["id"]);
    assert_eq!(event.data["pr"]["url"], pr["url"]);
    assert_eq!(rig.store.jobs().count(), 1);
}
