//! Every simulated route over real HTTP: its happy path and its documented errors (auth,
//! access, validation, not found).

mod sim_support;

use reqwest::Method;
use serde_json::json;
use sim_support::{start, EMPTY_ORG, ORG, OTHER_ORG, OTHER_TOKEN, TOKEN};

#[tokio::test]
async fn missing_or_unknown_token_gets_401_and_header_name_case_does_not_matter() {
    let env = start().await;
    let path = format!("/v1/organizations/{ORG}/users");
    let none = env.call(Method::GET, &path, None, None).await;
    assert_eq!(none.status, 401);
    let unknown = env.call(Method::GET, &path, Some("nope"), None).await;
    assert_eq!(unknown.status, 401);
    for name in ["authorization", "AUTHORIZATION"] {
        let resp = env
            .http
            .get(env.url(&path))
            .header(name, format!("Bearer {TOKEN}"))
            .send()
            .await
            .expect("request completes");
        assert_eq!(resp.status(), 200);
    }
    env.sim.set_unauthorized_status(403);
    assert_eq!(env.call(Method::GET, &path, None, None).await.status, 403);
}

#[tokio::test]
async fn token_without_access_to_the_org_gets_the_permissions_body() {
    let env = start().await;
    for path in [
        format!("/v1/organizations/{OTHER_ORG}/users"),
        format!("/v1/organizations/{OTHER_ORG}/agent/runs"),
        format!("/v1/organizations/{OTHER_ORG}/repos"),
        format!("/v1/organizations/{OTHER_ORG}/cli/rules"),
        format!("/v1/oauth/tokens/status?org_id={OTHER_ORG}"),
    ] {
        let answer = env.get(&path).await;
        assert_eq!(answer.status, 403, "{path}");
        assert_eq!(
            answer.body,
            json!({"message": "You do not have access to this organization.", "status_code": 403})
        );
    }
}

#[tokio::test]
async fn unknown_route_and_wrong_method_are_fastapi_shaped() {
    let env = start().await;
    let answer = env.get("/v1/organizations/7/agent/run/1/resume").await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.body, json!({"detail": "Not Found"}));
    // The guide's logs path without /alpha does not exist.
    let answer = env.get("/v1/organizations/7/agent/run/1/logs").await;
    assert_eq!(answer.body, json!({"detail": "Not Found"}));
    let answer = env
        .call(Method::DELETE, "/v1/users/me", Some(TOKEN), None)
        .await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.body, json!({"detail": "Method Not Allowed"}));
}

#[tokio::test]
async fn validation_errors_are_422_with_locations() {
    let env = start().await;
    let answer = env.get("/v1/organizations/abc/agent/run/1").await;
    assert_eq!(answer.status, 422);
    assert_eq!(answer.body["detail"][0]["loc"], json!(["path", "org_id"]));
    assert_eq!(answer.body["detail"][0]["type"], "int_parsing");

    let answer = env
        .get(&format!(
            "/v1/organizations/{ORG}/agent/runs?limit=0&skip=-1&source_type=EMAIL"
        ))
        .await;
    assert_eq!(answer.status, 422);
    let locs: Vec<_> = answer.body["detail"]
        .as_array()
        .expect("detail list")
        .iter()
        .map(|e| e["loc"].clone())
        .collect();
    assert_eq!(
        locs,
        [
            json!(["query", "source_type"]),
            json!(["query", "skip"]),
            json!(["query", "limit"])
        ]
    );
    let answer = env
        .get(&format!("/v1/organizations/{ORG}/repos?limit=101"))
        .await;
    assert_eq!(answer.body["detail"][0]["type"], "less_than_equal");

    let answer = env
        .post(
            &format!("/v1/organizations/{ORG}/agent/run"),
            json!({"repo_id": 301}),
        )
        .await;
    assert_eq!(answer.status, 422);
    assert_eq!(answer.body["detail"][0]["loc"], json!(["body", "prompt"]));
    assert_eq!(answer.body["detail"][0]["msg"], "Field required");

    let answer = env
        .patch(
            &format!("/v1/organizations/{ORG}/prs/1"),
            json!({"state": "merged"}),
        )
        .await;
    assert_eq!(answer.status, 422);
    assert_eq!(answer.body["detail"][0]["type"], "enum");
}

#[tokio::test]
async fn validation_comes_before_authentication() {
    let env = start().await;
    let answer = env
        .call(Method::GET, "/v1/organizations/x/users", None, None)
        .await;
    assert_eq!(answer.status, 422);
}

#[tokio::test]
async fn users_me_and_organizations() {
    let env = start().await;
    let me = env.get("/v1/users/me").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["id"], 101);
    assert_eq!(me.body["github_username"], "acme-ops");
    assert!(me.body["github_user_id"].is_string());

    let users = env.get(&format!("/v1/organizations/{ORG}/users")).await;
    assert_eq!(users.body["total"], 2);
    assert_eq!(users.body["items"][0]["role"], "ADMIN");
    assert_eq!(users.body["items"][1]["role"], "MEMBER");

    let user = env.get(&format!("/v1/organizations/{ORG}/users/102")).await;
    assert_eq!(user.body["github_username"], "alice");
    let missing = env.get(&format!("/v1/organizations/{ORG}/users/201")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.body,
        json!({"message": "User not found.", "status_code": 404})
    );

    let orgs = env.get("/v1/organizations").await;
    let ids: Vec<i64> = orgs.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|o| o["id"].as_i64())
        .collect();
    assert_eq!(ids, [ORG, EMPTY_ORG]);
    assert_eq!(
        orgs.body["items"][0]["settings"]["enable_pr_creation"],
        true
    );
}

#[tokio::test]
async fn repos_integrations_and_cli_rules() {
    let env = start().await;
    let repos = env.get(&format!("/v1/organizations/{ORG}/repos")).await;
    assert_eq!(repos.body["total"], 2);
    let repo = &repos.body["items"][0];
    assert_eq!(repo["full_name"], "acme/firmware");
    assert_eq!(repo["name"], "firmware");
    assert!(repo["github_id"].is_string());
    assert!(repo
        .as_object()
        .expect("object")
        .contains_key("description"));

    let integrations = env
        .get(&format!("/v1/organizations/{ORG}/integrations"))
        .await;
    assert_eq!(integrations.body["organization_name"], "Acme");
    let active = integrations.body["integrations"]
        .as_array()
        .expect("list")
        .iter()
        .filter(|i| i["active"] == true)
        .count();
    assert_eq!(integrations.body["total_active_integrations"], active);

    let rules = env.get(&format!("/v1/organizations/{ORG}/cli/rules")).await;
    assert!(rules.body["organization_rules"].is_string());
    assert!(rules
        .body
        .as_object()
        .expect("object")
        .contains_key("user_custom_prompt"));
}

#[tokio::test]
async fn create_get_and_list_runs() {
    let env = start().await;
    let answer = env
        .post(
            &format!("/v1/organizations/{ORG}/agent/run"),
            json!({"prompt": "Fix it", "metadata": {"k": "v"}, "repo_id": 302,
                   "model": "claude", "agent_type": "claude_code"}),
        )
        .await;
    assert_eq!(answer.status, 200);
    let run = answer.body;
    assert_eq!(run["status"], "ACTIVE");
    assert_eq!(run["source_type"], "API");
    assert_eq!(run["metadata"], json!({"k": "v"}));
    assert_eq!(run["organization_id"], ORG);
    for key in [
        "result",
        "summary",
        "web_url",
        "created_at",
        "github_pull_requests",
    ] {
        assert!(run.as_object().expect("object").contains_key(key), "{key}");
    }
    assert!(run["result"].is_null());
    let id = run["id"].as_i64().expect("id");
    assert_eq!(env.run(id).await, run);

    let list = env
        .get(&format!("/v1/organizations/{ORG}/agent/runs"))
        .await;
    assert_eq!(list.body["total"], 1);
    assert_eq!(list.body["items"][0]["id"], id);

    let bad_agent = env
        .post(
            &format!("/v1/organizations/{ORG}/agent/run"),
            json!({"prompt": "x", "agent_type": "gpt"}),
        )
        .await;
    assert_eq!(bad_agent.status, 422);
}

#[tokio::test]
async fn create_errors_quota_no_repos_and_forced_429() {
    use codegen_sentinel::sim::CreateOutcome;
    let env = start().await;
    let path = format!("/v1/organizations/{ORG}/agent/run");
    env.sim.set_create_outcome(CreateOutcome::QuotaExceeded);
    let answer = env.post(&path, json!({"prompt": "x"})).await;
    assert_eq!(answer.status, 402);
    assert_eq!(answer.body["status_code"], 402);
    env.sim.set_create_outcome(CreateOutcome::NoRepos);
    let answer = env.post(&path, json!({"prompt": "x"})).await;
    assert_eq!(answer.status, 404);
    assert_eq!(
        answer.body["message"],
        "No repos found in the organization. Please add some repos and try again."
    );
    env.sim.set_create_outcome(CreateOutcome::RateLimited);
    assert_eq!(env.post(&path, json!({"prompt": "x"})).await.status, 429);
    env.sim.set_create_outcome(CreateOutcome::Ok);
    let empty = env
        .post(
            &format!("/v1/organizations/{EMPTY_ORG}/agent/run"),
            json!({"prompt": "x"}),
        )
        .await;
    assert_eq!(empty.status, 404, "an org without repos cannot run agents");
}

#[tokio::test]
async fn unknown_run_or_run_of_another_org_is_404() {
    let env = start().await;
    let other = env
        .sim
        .create_run(OTHER_ORG, codegen_sentinel::sim::RunPlan::completes());
    let not_found = json!({"message": "Agent run not found.", "status_code": 404});
    for path in [
        format!("/v1/organizations/{ORG}/agent/run/999999"),
        format!("/v1/organizations/{ORG}/agent/run/{other}"),
        format!("/v1/alpha/organizations/{ORG}/agent/run/{other}/logs"),
    ] {
        let answer = env.get(&path).await;
        assert_eq!(answer.status, 404, "{path}");
        assert_eq!(answer.body, not_found);
    }
    for op in ["resume", "ban", "unban", "remove-from-pr"] {
        let answer = env
            .post(
                &format!("/v1/organizations/{ORG}/agent/run/{op}"),
                json!({"agent_run_id": other, "prompt": "go"}),
            )
            .await;
        assert_eq!(answer.status, 404, "{op}");
        assert_eq!(answer.body, not_found);
    }
    let answer = env
        .call(
            Method::GET,
            &format!("/v1/organizations/{OTHER_ORG}/agent/run/{other}"),
            Some(OTHER_TOKEN),
            None,
        )
        .await;
    assert_eq!(answer.status, 200);
}

#[tokio::test]
async fn check_suite_settings_round_trip() {
    let env = start().await;
    let path = format!("/v1/organizations/{ORG}/repos/check-suite-settings?repo_id=301");
    let got = env.get(&path).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["check_retry_count"], 3);
    assert!(got.body["available_check_suite_names"].is_array());
    let put = env
        .call(
            Method::PUT,
            &path,
            Some(TOKEN),
            Some(json!({"check_retry_count": 5, "ignored_checks": ["lint"],
                        "check_retry_counts": {"test": 2}})),
        )
        .await;
    assert_eq!(put.status, 200);
    let got = env.get(&path).await;
    assert_eq!(got.body["check_retry_count"], 5);
    assert_eq!(got.body["ignored_checks"], json!(["lint"]));
    assert_eq!(got.body["check_retry_counts"], json!({"test": 2}));

    let bad = env
        .call(
            Method::PUT,
            &path,
            Some(TOKEN),
            Some(json!({"check_retry_count": 11})),
        )
        .await;
    assert_eq!(bad.status, 422);
    let missing = env
        .get(&format!(
            "/v1/organizations/{ORG}/repos/check-suite-settings"
        ))
        .await;
    assert_eq!(missing.status, 422);
    assert_eq!(
        missing.body["detail"][0]["loc"],
        json!(["query", "repo_id"])
    );
    let foreign = env
        .get(&format!(
            "/v1/organizations/{ORG}/repos/check-suite-settings?repo_id=401"
        ))
        .await;
    assert_eq!(foreign.status, 404);
}

#[tokio::test]
async fn pr_edit_on_both_paths() {
    let env = start().await;
    let run = env.create_run("Open a PR").await;
    let pr = env.sim.add_pr(ORG, run);
    let simple = env
        .patch(
            &format!("/v1/organizations/{ORG}/prs/{pr}"),
            json!({"state": "draft"}),
        )
        .await;
    assert_eq!(simple.status, 200);
    assert_eq!(simple.body["success"], true);
    assert_eq!(simple.body["state"], "draft");
    assert_eq!(simple.body["number"], 1);
    let in_repo = env
        .patch(
            &format!("/v1/organizations/{ORG}/repos/301/prs/{pr}"),
            json!({"state": "closed"}),
        )
        .await;
    assert_eq!(in_repo.body["state"], "closed");
    let wrong_repo = env
        .patch(
            &format!("/v1/organizations/{ORG}/repos/302/prs/{pr}"),
            json!({"state": "open"}),
        )
        .await;
    assert_eq!(wrong_repo.status, 200);
    assert_eq!(wrong_repo.body["success"], false);
    assert!(wrong_repo.body["error"].is_string());
}

#[tokio::test]
async fn setup_commands_start_a_run() {
    let env = start().await;
    let path = format!("/v1/organizations/{ORG}/setup-commands/generate");
    let answer = env.post(&path, json!({"repo_id": 301})).await;
    assert_eq!(answer.status, 200);
    let id = answer.body["agent_run_id"].as_i64().expect("run id");
    assert_eq!(answer.body["status"], "ACTIVE");
    assert_eq!(env.run(id).await["source_type"], "SETUP_COMMANDS");
    assert_eq!(env.post(&path, json!({"repo_id": 999})).await.status, 404);
    assert_eq!(env.post(&path, json!({})).await.status, 422);
    env.sim.archive_repo(302);
    assert_eq!(env.post(&path, json!({"repo_id": 302})).await.status, 400);
}

#[tokio::test]
async fn analyze_logs_has_no_body_and_starts_a_run() {
    let env = start().await;
    let answer = env
        .call(
            Method::POST,
            &format!("/v1/organizations/{ORG}/sandbox/42/analyze-logs"),
            Some(TOKEN),
            None,
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["status"], "ACTIVE");
    assert!(answer.body["message"].is_string());
    let id = answer.body["agent_run_id"].as_i64().expect("run id");
    assert_eq!(env.run(id).await["metadata"]["sandbox_id"], 42);

    let unknown = env
        .call(
            Method::POST,
            &format!("/v1/organizations/{ORG}/sandbox/77/analyze-logs"),
            Some(TOKEN),
            None,
        )
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body["message"], "Sandbox not found");
    let no_logs = env
        .call(
            Method::POST,
            &format!("/v1/organizations/{ORG}/sandbox/43/analyze-logs"),
            Some(TOKEN),
            None,
        )
        .await;
    assert_eq!(no_logs.status, 400);
    assert_eq!(no_logs.body["message"], "No logs available for analysis");
}

#[tokio::test]
async fn mcp_oauth_and_slack_connect() {
    let env = start().await;
    let providers = env.get("/v1/mcp-providers").await;
    assert_eq!(providers.status, 200);
    let list = providers.body.as_array().expect("array");
    assert!(!list.is_empty() && list.iter().all(|p| p["is_mcp"] == true));

    env.sim.connect_oauth(101, ORG, "linear");
    let status = env
        .get(&format!("/v1/oauth/tokens/status?org_id={ORG}"))
        .await;
    assert_eq!(status.body, json!(["linear"]));
    let revoke = env
        .call(
            Method::POST,
            &format!("/v1/oauth/tokens/revoke?provider=linear&org_id={ORG}"),
            Some(TOKEN),
            None,
        )
        .await;
    assert_eq!(revoke.status, 200);
    let status = env
        .get(&format!("/v1/oauth/tokens/status?org_id={ORG}"))
        .await;
    assert_eq!(status.body, json!([]));
    let missing = env
        .call(
            Method::POST,
            "/v1/oauth/tokens/revoke?org_id=7",
            Some(TOKEN),
            None,
        )
        .await;
    assert_eq!(missing.status, 422);

    let slack = env
        .post("/v1/slack-connect/generate-token", json!({"org_id": ORG}))
        .await;
    assert_eq!(slack.status, 200);
    assert_eq!(slack.body["expires_in_minutes"], 10);
    let token = slack.body["token"].as_str().expect("token");
    assert!(slack.body["message"]
        .as_str()
        .expect("message")
        .contains(token));
    assert_eq!(
        env.post("/v1/slack-connect/generate-token", json!({}))
            .await
            .status,
        422
    );
}
