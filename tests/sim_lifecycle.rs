//! Run lifecycle over HTTP on the virtual clock: plan progression, logs, resume, ban / unban /
//! remove-from-pr, status overrides, ordering, filters and pagination.

mod sim_support;

use std::time::Duration;

use codegen_sentinel::sim::RunPlan;
use serde_json::{json, Value};
use sim_support::{start, ORG};

const MINUTE: Duration = Duration::from_secs(60);

fn logs_path(run: i64, query: &str) -> String {
    format!("/v1/alpha/organizations/{ORG}/agent/run/{run}/logs{query}")
}

#[tokio::test]
async fn created_run_goes_active_evaluation_complete_with_result_and_pr() {
    let env = start().await;
    let id = env.create_run("Add a health endpoint").await;
    env.sim.advance(Duration::from_secs(30));
    assert_eq!(env.run(id).await["status"], "ACTIVE");
    assert_eq!(env.run(id).await["github_pull_requests"], json!([]));
    env.sim.advance(Duration::from_secs(35));
    assert_eq!(env.run(id).await["status"], "EVALUATION");
    env.sim.advance(MINUTE);
    let run = env.run(id).await;
    assert_eq!(run["status"], "COMPLETE");
    assert!(run["result"].is_string());
    assert!(run["summary"].is_string());
    let prs = run["github_pull_requests"].as_array().expect("PR list");
    assert_eq!(prs.len(), 1);
    let pr = &prs[0];
    assert!(pr["id"].is_i64());
    assert_eq!(pr["url"], "https://github.com/acme/firmware/pull/1");
    assert_eq!(pr["head_branch_name"], format!("codegen-bot/run-{id}"));
    assert!(pr["title"].is_string() && pr["created_at"].is_string());
}

#[tokio::test]
async fn pending_start_has_null_pr_list_then_goes_active() {
    let env = start().await;
    env.sim
        .push_create_plan(RunPlan::completes().starts_pending());
    let id = env.create_run("Queue me").await;
    let run = env.run(id).await;
    assert_eq!(run["status"], "PENDING");
    assert_eq!(run["github_pull_requests"], Value::Null);
    env.sim.advance(Duration::from_secs(6));
    assert_eq!(env.run(id).await["status"], "ACTIVE");
}

#[tokio::test]
async fn failure_endings_leave_an_error_log_and_no_pr() {
    let env = start().await;
    let endings = [
        "FAILED",
        "ERROR",
        "TIMEOUT",
        "MAX_ITERATIONS_REACHED",
        "OUT_OF_TOKENS",
    ];
    let ids: Vec<i64> = endings
        .iter()
        .map(|s| env.sim.create_run(ORG, RunPlan::ends(s)))
        .collect();
    let cancelled = env.sim.create_run(ORG, RunPlan::ends("CANCELLED"));
    env.sim.advance(10 * MINUTE);
    for (id, status) in ids.iter().zip(endings) {
        let run = env.run(*id).await;
        assert_eq!(run["status"], status);
        assert_eq!(run["github_pull_requests"], json!([]));
        let logs = env.get(&logs_path(*id, "?reverse=true&limit=1")).await;
        assert_eq!(logs.body["logs"][0]["message_type"], "ERROR");
        assert!(logs.body["logs"][0]["observation"].is_string());
    }
    assert_eq!(env.run(cancelled).await["status"], "CANCELLED");
}

#[tokio::test]
async fn logs_grow_while_active_in_order_and_reverse() {
    let env = start().await;
    let id = env.create_run("Log a lot").await;
    let empty = env.get(&logs_path(id, "")).await;
    assert_eq!(empty.body["total_logs"], 0);
    assert_eq!(empty.body["logs"], json!([]));
    env.sim.advance(Duration::from_secs(45));
    let first = env.get(&logs_path(id, "")).await;
    let total = first.body["total_logs"].as_i64().expect("total");
    assert!(total >= 4, "{total}");
    env.sim.advance(MINUTE);
    let all = env.get(&logs_path(id, "")).await;
    assert!(all.body["total_logs"].as_i64().expect("total") > total);
    let logs = all.body["logs"].as_array().expect("logs");
    let stamps: Vec<&str> = logs
        .iter()
        .filter_map(|l| l["created_at"].as_str())
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]));
    let types: Vec<&str> = logs
        .iter()
        .filter_map(|l| l["message_type"].as_str())
        .collect();
    assert!(types.contains(&"ACTION") && types.contains(&"PLAN_EVALUATION"));
    assert_eq!(types.last(), Some(&"FINAL_ANSWER"));
    let action = logs
        .iter()
        .find(|l| l["message_type"] == "ACTION")
        .expect("action");
    assert!(action["tool_name"].is_string());
    assert!(action["tool_input"].is_object() && action["tool_output"].is_object());
    assert!(logs.iter().any(|l| l["observation"].is_string()));
    assert!(logs.iter().any(|l| l["observation"].is_object()));
    assert!(logs.iter().all(|l| l["agent_run_id"] == id));

    let newest = env.get(&logs_path(id, "?reverse=true&limit=2")).await;
    assert_eq!(newest.body["logs"][0], logs[logs.len() - 1]);
    assert_eq!(newest.body["logs"][1], logs[logs.len() - 2]);
    assert_eq!(newest.body["size"], 2);
    assert_eq!(newest.body["status"], "COMPLETE");
    assert!(
        newest.body.get("summary").is_none(),
        "the logs response has no summary"
    );
}

#[tokio::test]
async fn resume_restarts_complete_and_paused_runs_with_a_user_message() {
    let env = start().await;
    let done = env.create_run("First pass").await;
    let paused = env.sim.create_run(ORG, RunPlan::ends("PAUSED"));
    env.sim.advance(5 * MINUTE);
    assert_eq!(env.run(paused).await["status"], "PAUSED");
    let path = format!("/v1/organizations/{ORG}/agent/run/resume");
    for id in [done, paused] {
        let answer = env
            .post(
                &path,
                json!({"agent_run_id": id, "prompt": "Also update the docs"}),
            )
            .await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["status"], "ACTIVE");
        assert_eq!(answer.body["id"], id);
        let last = env.get(&logs_path(id, "?reverse=true&limit=1")).await;
        assert_eq!(last.body["logs"][0]["message_type"], "USER_MESSAGE");
        assert_eq!(last.body["logs"][0]["observation"], "Also update the docs");
    }
    env.sim.advance(5 * MINUTE);
    let run = env.run(done).await;
    assert_eq!(run["status"], "COMPLETE");
    assert_eq!(
        run["github_pull_requests"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(env.run(paused).await["status"], "COMPLETE");

    for body in [
        json!({"agent_run_id": done, "prompt": ""}),
        json!({"agent_run_id": done}),
    ] {
        let answer = env.post(&path, body).await;
        assert_eq!(answer.status, 422);
        assert_eq!(answer.body["detail"][0]["loc"], json!(["body", "prompt"]));
    }
}

#[tokio::test]
async fn ban_stops_runs_on_the_pr_and_unban_clears_the_flag() {
    let env = start().await;
    let parent = env.create_run("Open a PR").await;
    env.sim.advance(5 * MINUTE);
    let pr = env.run(parent).await["github_pull_requests"][0]["id"]
        .as_i64()
        .expect("PR id");
    let fixer = env.sim.create_run(
        ORG,
        RunPlan::completes()
            .on_pr(pr)
            .source_type("GITHUB_CHECK_SUITE"),
    );
    let bystander = env.create_run("Unrelated").await;
    let answer = env
        .post(
            &format!("/v1/organizations/{ORG}/agent/run/ban"),
            json!({"agent_run_id": parent, "before_card_order_id": "a0"}),
        )
        .await;
    assert_eq!(answer.status, 200);
    assert!(answer.body.is_object());
    assert_eq!(env.run(fixer).await["status"], "CANCELLED");
    assert_eq!(env.run(parent).await["status"], "COMPLETE");
    assert_eq!(env.run(bystander).await["status"], "ACTIVE");
    assert!(env.sim.is_banned(ORG, parent) && env.sim.is_banned(ORG, fixer));

    let answer = env
        .post(
            &format!("/v1/organizations/{ORG}/agent/run/unban"),
            json!({"agent_run_id": parent}),
        )
        .await;
    assert_eq!(answer.status, 200);
    assert!(!env.sim.is_banned(ORG, parent));
}

#[tokio::test]
async fn remove_from_pr_cancels_the_running_run_itself() {
    let env = start().await;
    let run = env.create_run("Working").await;
    env.sim.advance(Duration::from_secs(10));
    env.sim.add_pr(ORG, run);
    let answer = env
        .post(
            &format!("/v1/organizations/{ORG}/agent/run/remove-from-pr"),
            json!({"agent_run_id": run}),
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(env.run(run).await["status"], "CANCELLED");
    assert!(env.sim.is_banned(ORG, run));
    env.sim.advance(10 * MINUTE);
    assert_eq!(
        env.run(run).await["status"],
        "CANCELLED",
        "a cancelled run stays put"
    );
    let missing = env
        .post(&format!("/v1/organizations/{ORG}/agent/run/ban"), json!({}))
        .await;
    assert_eq!(missing.status, 422);
}

#[tokio::test]
async fn status_overrides_null_and_unknown() {
    let env = start().await;
    let id = env.create_run("Odd").await;
    env.sim.set_status(ORG, id, None);
    assert_eq!(env.run(id).await["status"], Value::Null);
    env.sim.set_status(ORG, id, Some("RUNNING"));
    env.sim.advance(10 * MINUTE);
    assert_eq!(env.run(id).await["status"], "RUNNING");
}

#[tokio::test]
async fn list_is_newest_first_filters_and_pages() {
    let env = start().await;
    let mut ids = Vec::new();
    for i in 0..25 {
        let plan = if i % 5 == 0 {
            RunPlan::completes().source_type("SLACK").user(102)
        } else {
            RunPlan::completes()
        };
        ids.push(env.sim.create_run(ORG, plan));
        if i % 2 == 0 {
            env.sim.advance(Duration::from_secs(1));
        }
    }
    let base = format!("/v1/organizations/{ORG}/agent/runs");
    let all = env.get(&format!("{base}?limit=100")).await;
    let listed: Vec<i64> = all.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["id"].as_i64())
        .collect();
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(
        listed, expected,
        "newest first, equal times by id descending"
    );

    let page = env.get(&format!("{base}?skip=20&limit=10")).await;
    assert_eq!(page.body["items"].as_array().map(Vec::len), Some(5));
    assert_eq!(
        (
            &page.body["total"],
            &page.body["page"],
            &page.body["size"],
            &page.body["pages"]
        ),
        (&json!(25), &json!(3), &json!(10), &json!(3))
    );
    let beyond = env.get(&format!("{base}?skip=30&limit=10")).await;
    assert_eq!(beyond.status, 200);
    assert_eq!(beyond.body["items"], json!([]));
    assert_eq!(beyond.body["page"], 4);

    let slack = env.get(&format!("{base}?source_type=SLACK")).await;
    assert_eq!(slack.body["total"], 5);
    let by_user = env.get(&format!("{base}?user_id=102")).await;
    assert_eq!(by_user.body["total"], 5);
    let api_by_me = env
        .get(&format!("{base}?user_id=101&source_type=API"))
        .await;
    assert_eq!(api_by_me.body["total"], 20);
    let defaults = env.get(&base).await;
    assert_eq!(
        (defaults.body["size"].clone(), defaults.body["page"].clone()),
        (json!(100), json!(1))
    );
}

#[tokio::test]
async fn logs_pagination_fields() {
    let env = start().await;
    let id = env.create_run("Paginate logs").await;
    env.sim.advance(Duration::from_secs(50));
    let all = env.get(&logs_path(id, "")).await;
    let total = all.body["total_logs"].as_i64().expect("total");
    assert_eq!(total, 5, "logs at 2, 12, 22, 32 and 42 s");
    let second = env.get(&logs_path(id, "?skip=2&limit=2")).await;
    assert_eq!(second.body["logs"].as_array().map(Vec::len), Some(2));
    assert_eq!(second.body["logs"][0], all.body["logs"][2]);
    assert_eq!(
        (second.body["page"].clone(), second.body["pages"].clone()),
        (json!(2), json!(3))
    );
    let bad = env.get(&logs_path(id, "?limit=500&reverse=maybe")).await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.body["detail"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn local_sessions_have_a_null_web_url() {
    let env = start().await;
    let local = env
        .sim
        .create_run(ORG, RunPlan::completes().source_type("LOCAL"));
    assert_eq!(env.run(local).await["web_url"], Value::Null);
    let api = env.create_run("Traced").await;
    assert_eq!(
        env.run(api).await["web_url"],
        format!("https://codegen.com/agent/trace/{api}")
    );
}
