//! Contract tests: the simulator's answers and the client's requests, checked against the
//! official spec's schemas (tests/fixtures/codegen-openapi3.json), so a serde mistake on either
//! side cannot cancel itself out.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use codegen_sentinel::api::{
    CheckSuiteSettingsUpdate, CreateRunInput, OrgId, PageRequest, PrState, ResumeRunInput,
    RunFilter, RunId, SetupCommandsInput, SourceType, StopRunInput,
};
use codegen_sentinel::sim::{RunPlan, TimestampStyle};
use common::spec::Spec;
use common::*;
use serde_json::{json, Value};

const O: OrgId = OrgId(ORG);

/// Sends one raw request and checks the answer against the spec's schema for its status.
async fn check_answer(
    spec: &Spec,
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    expect_status: u16,
) -> Value {
    let url = format!("{base}{path}");
    let mut request = http
        .request(method.parse().unwrap(), &url)
        .bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, expect_status, "{method} {path}: {answer}");
    let route = path.split('?').next().unwrap();
    let template = spec
        .template_of(method, route)
        .unwrap_or_else(|| panic!("{method} {route} is not in the spec"));
    let schema = spec
        .response_schema(method, &template, status)
        .unwrap_or_else(|| panic!("no {status} schema for {method} {template}"));
    if let Err(e) = spec.check(&schema, &answer) {
        panic!("{method} {path} answered {status} outside the spec: {e}\n{answer:#}");
    }
    answer
}

#[tokio::test]
async fn every_simulator_answer_matches_the_spec() {
    for style in [TimestampStyle::Rfc3339, TimestampStyle::Naive] {
        let spec = Spec::load();
        let sim = seeded_sim();
        sim.set_timestamp_style(style);
        sim.set_extra_fields(true);
        let server = serve(sim).await;
        let sim = server.sim.clone();
        let done = sim.create_run(ORG, RunPlan::completes());
        let failed = sim.create_run(ORG, RunPlan::ends("FAILED"));
        let pr = sim.add_pr(ORG, done);
        sim.advance(Duration::from_secs(3600));
        let http = reqwest::Client::new();
        let b = server.base_url.trim_end_matches('/');

        let ok = [
            ("GET", "/v1/organizations?skip=0&limit=10".to_string(), None),
            ("GET", format!("/v1/organizations/{ORG}/users"), None),
            ("GET", format!("/v1/organizations/{ORG}/users/{USER}"), None),
            ("GET", "/v1/users/me".to_string(), None),
            (
                "POST",
                format!("/v1/organizations/{ORG}/agent/run"),
                Some(json!({"prompt": "p", "metadata": {"k": 1}})),
            ),
            (
                "GET",
                format!("/v1/organizations/{ORG}/agent/run/{done}"),
                None,
            ),
            (
                "GET",
                format!("/v1/organizations/{ORG}/agent/runs?limit=2"),
                None,
            ),
            (
                "GET",
                format!("/v1/organizations/{ORG}/agent/runs?source_type=API&user_id={USER}"),
                None,
            ),
            (
                "POST",
                format!("/v1/organizations/{ORG}/agent/run/resume"),
                Some(json!({"agent_run_id": done, "prompt": "more"})),
            ),
            (
                "POST",
                format!("/v1/organizations/{ORG}/agent/run/ban"),
                Some(json!({"agent_run_id": done})),
            ),
            (
                "POST",
                format!("/v1/organizations/{ORG}/agent/run/unban"),
                Some(json!({"agent_run_id": done})),
            ),
            (
                "POST",
                format!("/v1/organizations/{ORG}/agent/run/remove-from-pr"),
                Some(json!({"agent_run_id": done})),
            ),
            ("GET", format!("/v1/organizations/{ORG}/repos"), None),
            (
                "GET",
                format!("/v1/organizations/{ORG}/repos/check-suite-settings?repo_id={REPO}"),
                None,
            ),
            (
                "PUT",
                format!("/v1/organizations/{ORG}/repos/check-suite-settings?repo_id={REPO}"),
                Some(json!({"check_retry_count": 2})),
            ),
            (
                "PATCH",
                format!("/v1/organizations/{ORG}/prs/{pr}"),
                Some(json!({"state": "draft"})),
            ),
            (
                "PATCH",
                format!("/v1/organizations/{ORG}/repos/{REPO}/prs/{pr}"),
                Some(json!({"state": "ready_for_review"})),
            ),
            ("GET", format!("/v1/organizations/{ORG}/integrations"), None),
            (
                "POST",
                format!("/v1/organizations/{ORG}/setup-commands/generate"),
                Some(json!({"repo_id": REPO})),
            ),
            ("GET", "/v1/mcp-providers".to_string(), None),
            ("GET", format!("/v1/oauth/tokens/status?org_id={ORG}"), None),
            (
                "POST",
                format!("/v1/oauth/tokens/revoke?provider=github&org_id={ORG}"),
                None,
            ),
            (
                "POST",
                format!("/v1/organizations/{ORG}/sandbox/{SANDBOX}/analyze-logs"),
                None,
            ),
            ("GET", format!("/v1/organizations/{ORG}/cli/rules"), None),
            (
                "POST",
                "/v1/slack-connect/generate-token".to_string(),
                Some(json!({"org_id": ORG})),
            ),
            (
                "GET",
                format!("/v1/alpha/organizations/{ORG}/agent/run/{failed}/logs?limit=5"),
                None,
            ),
            (
                "GET",
                format!(
                    "/v1/alpha/organizations/{ORG}/agent/run/{failed}/logs?reverse=true&skip=2"
                ),
                None,
            ),
        ];
        let mut covered = BTreeSet::new();
        for (method, path, body) in ok {
            check_answer(&spec, &http, b, method, &path, body, 200).await;
            let route = path.split('?').next().unwrap();
            covered.insert((method.to_string(), spec.template_of(method, route).unwrap()));
        }
        assert_eq!(covered.len(), 25, "all 25 operations answered");

        // Documented error answers match their schemas too.
        let errors = [
            (
                "GET",
                format!("/v1/organizations/{ORG}/agent/run/999999"),
                None,
                404,
            ),
            (
                "GET",
                format!("/v1/organizations/{OTHER_ORG}/agent/runs"),
                None,
                403,
            ),
            (
                "GET",
                format!("/v1/organizations/{ORG}/agent/runs?limit=500"),
                None,
                422,
            ),
            (
                "GET",
                format!("/v1/organizations/{ORG}/agent/run/abc"),
                None,
                422,
            ),
            (
                "POST",
                format!("/v1/organizations/{ORG}/agent/run"),
                Some(json!({"repo_id": REPO})),
                422,
            ),
            (
                "GET",
                format!("/v1/organizations/{ORG}/users/4040"),
                None,
                404,
            ),
        ];
        for (method, path, body, status) in errors {
            check_answer(&spec, &http, b, method, &path, body, status).await;
        }
    }
}

#[tokio::test]
async fn every_client_request_matches_the_spec() {
    let spec = Spec::load();
    let server = serve(seeded_sim()).await;
    let sim = server.sim.clone();
    let client = client(&server.base_url);
    let run = RunId(sim.create_run(ORG, RunPlan::completes()));
    let pr = sim.add_pr(ORG, run.0);

    // One call of every operation, with optional fields set where there are any.
    client.list_orgs(PageRequest::default()).await.unwrap();
    client
        .list_users(O, PageRequest { skip: 0, limit: 5 })
        .await
        .unwrap();
    client.get_user(O, USER).await.unwrap();
    client.me().await.unwrap();
    let input = CreateRunInput {
        prompt: "p".into(),
        images: Some(vec!["data:image/png;base64,AAAA".into()]),
        metadata: Some(json!({"sentinel_key": "x"})),
        repo_id: Some(REPO),
        model: Some("default".into()),
        agent_type: Some(codegen_sentinel::api::AgentType::ClaudeCode),
    };
    client.create_run(O, &input).await.unwrap();
    client.get_run(O, run).await.unwrap();
    let filter = RunFilter {
        user_id: Some(USER),
        source_type: Some(SourceType::GithubCheckSuite),
    };
    client
        .list_runs(O, &filter, PageRequest::default())
        .await
        .unwrap();
    sim.advance(Duration::from_secs(3600));
    let resume = ResumeRunInput {
        agent_run_id: run,
        prompt: "again".into(),
        images: None,
    };
    client.resume_run(O, &resume).await.unwrap();
    let stop = StopRunInput {
        agent_run_id: run,
        before_card_order_id: Some("a0".into()),
        after_card_order_id: None,
    };
    client.ban_checks(O, &stop).await.unwrap();
    client.unban_checks(O, &stop).await.unwrap();
    client.remove_from_pr(O, &stop).await.unwrap();
    client
        .run_logs(O, run, PageRequest::default(), true)
        .await
        .unwrap();
    client.list_repos(O, PageRequest::default()).await.unwrap();
    client.check_suite_settings(O, REPO).await.unwrap();
    let update = CheckSuiteSettingsUpdate {
        check_retry_count: Some(3),
        ignored_checks: Some(vec!["lint".into()]),
        check_retry_counts: Some(serde_json::from_value(json!({"ci": 2})).unwrap()),
        custom_prompts: Some(serde_json::from_value(json!({"ci": "be careful"})).unwrap()),
        high_priority_apps: Some(vec!["github-actions".into()]),
    };
    client
        .set_check_suite_settings(O, REPO, &update)
        .await
        .unwrap();
    client.edit_pr(O, None, pr, PrState::Closed).await.unwrap();
    client
        .edit_pr(O, Some(REPO), pr, PrState::ReadyForReview)
        .await
        .unwrap();
    client.integrations(O).await.unwrap();
    let setup = SetupCommandsInput {
        repo_id: REPO,
        prompt: Some("install deps".into()),
        trigger_source: "setup-commands".into(),
    };
    client.generate_setup_commands(O, &setup).await.unwrap();
    client.mcp_providers().await.unwrap();
    client.oauth_status(O).await.unwrap();
    client.oauth_revoke(O, "linear").await.unwrap();
    client.analyze_logs(O, SANDBOX).await.unwrap();
    client.cli_rules(O).await.unwrap();
    client.slack_connect_token(O).await.unwrap();

    let mut covered = BTreeSet::new();
    for request in sim.requests() {
        assert_eq!(request.status, 200, "{} {}", request.method, request.path);
        let template = spec
            .template_of(&request.method, &request.path)
            .unwrap_or_else(|| panic!("{} {} is not in the spec", request.method, request.path));
        covered.insert((request.method.clone(), template.clone()));

        match (
            spec.request_schema(&request.method, &template),
            &request.body,
        ) {
            (Some(schema), Some(body)) => spec
                .check(&schema, body)
                .unwrap_or_else(|e| panic!("{} {template} body: {e}", request.method)),
            (Some(_), None) => panic!("{} {template} needs a body", request.method),
            (None, Some(body)) => panic!("{} {template} takes no body, got {body}", request.method),
            (None, None) => {}
        }

        let sent: Vec<(String, String)> =
            url::form_urlencoded::parse(request.query.as_deref().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let declared = spec.query_params(&request.method, &template);
        for (name, value) in &sent {
            let (_, _, schema) = declared
                .iter()
                .find(|(n, _, _)| n == name)
                .unwrap_or_else(|| panic!("{template}: undeclared query parameter {name}"));
            let typed: Value = serde_json::from_str(value).unwrap_or(Value::String(value.clone()));
            spec.check(schema, &typed)
                .unwrap_or_else(|e| panic!("{template}: query {name}={value}: {e}"));
        }
        for (name, required, _) in declared {
            assert!(
                !required || sent.iter().any(|(n, _)| *n == name),
                "{template}: required query parameter {name} missing"
            );
        }
    }
    assert_eq!(
        covered.len(),
        25,
        "all 25 operations were called: {covered:?}"
    );
}
