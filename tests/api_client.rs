//! Every operation of the Codegen spec, through the client, against the simulator.

mod common;

use std::time::Duration;

use codegen_sentinel::api::{
    collect_pages, ApiError, CheckSuiteSettingsUpdate, CreateRunInput, OrgId, PageRequest, PrState,
    ResumeRunInput, RunFilter, RunId, RunStatus, SetupCommandsInput, SourceType, StopRunInput,
};
use codegen_sentinel::sim::RunPlan;
use common::*;

const O: OrgId = OrgId(ORG);

#[tokio::test]
async fn organizations_and_users() {
    let server = serve(seeded_sim()).await;
    let client = client(&server.base_url);

    let orgs = client.list_orgs(PageRequest::default()).await.unwrap();
    assert_eq!(
        orgs.items.len(),
        1,
        "only the orgs the token's user belongs to"
    );
    assert_eq!(orgs.items[0].id, O);
    assert_eq!(orgs.items[0].name, "acme");

    let users = client.list_users(O, PageRequest::default()).await.unwrap();
    assert_eq!(users.items[0].github_username, "octo");
    let user = client.get_user(O, USER).await.unwrap();
    assert_eq!(user.id, USER);
    let me = client.me().await.unwrap();
    assert_eq!(me.id, USER);

    let missing = client.get_user(O, 999).await.unwrap_err();
    assert!(matches!(missing, ApiError::NotFound { .. }), "{missing}");
    let forbidden = client
        .list_users(OrgId(OTHER_ORG), PageRequest::default())
        .await
        .unwrap_err();
    assert!(
        matches!(forbidden, ApiError::Forbidden { .. }),
        "{forbidden}"
    );
}

#[tokio::test]
async fn run_lifecycle_create_get_list_resume() {
    let server = serve(seeded_sim()).await;
    let sim = server.sim.clone();
    let client = client(&server.base_url);

    let input = CreateRunInput {
        prompt: "Fix the flaky test".into(),
        repo_id: Some(REPO),
        metadata: Some(serde_json::json!({"sentinel_key": "k-1"})),
        ..Default::default()
    };
    let created = client.create_run(O, &input).await.unwrap();
    assert_eq!(created.organization_id, O);
    assert_eq!(created.source_type, Some(SourceType::Api));
    assert_eq!(created.metadata.as_ref().unwrap()["sentinel_key"], "k-1");
    assert!(created.status.as_ref().is_some_and(RunStatus::is_active));

    let fetched = client.get_run(O, created.id).await.unwrap();
    assert_eq!(fetched.id, created.id);

    // Drive the simulator's clock until the run finishes with a PR.
    for _ in 0..120 {
        sim.advance(Duration::from_secs(30));
        if client
            .get_run(O, created.id)
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.is_terminal())
        {
            break;
        }
    }
    let done = client.get_run(O, created.id).await.unwrap();
    assert_eq!(done.status, Some(RunStatus::Complete));
    assert!(done.result.is_some() && done.summary.is_some());
    assert_eq!(done.pull_requests().len(), 1);

    let resumed = client
        .resume_run(
            O,
            &ResumeRunInput {
                agent_run_id: created.id,
                prompt: "Also update the docs".into(),
                images: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(resumed.status, Some(RunStatus::Active));

    let other = sim.create_run(ORG, RunPlan::completes().source_type("GITHUB"));
    let all = client
        .list_runs(O, &RunFilter::default(), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(all.items[0].id, RunId(other), "newest first");
    let api_only = client
        .list_runs(
            O,
            &RunFilter {
                source_type: Some(SourceType::Api),
                user_id: None,
            },
            PageRequest::default(),
        )
        .await
        .unwrap();
    assert!(api_only
        .items
        .iter()
        .all(|r| r.source_type == Some(SourceType::Api)));
    assert!(api_only.items.iter().any(|r| r.id == created.id));

    let unknown = client.get_run(O, RunId(424242)).await.unwrap_err();
    assert!(matches!(unknown, ApiError::NotFound { .. }));
}

#[tokio::test]
async fn ban_unban_and_remove_from_pr() {
    let server = serve(seeded_sim()).await;
    let sim = server.sim.clone();
    let client = client(&server.base_url);
    let run = RunId(sim.create_run(ORG, RunPlan::completes()));

    client.ban_checks(O, &StopRunInput::run(run)).await.unwrap();
    assert!(sim.is_banned(ORG, run.0));
    assert_eq!(
        client.get_run(O, run).await.unwrap().status,
        Some(RunStatus::Cancelled),
        "ban stops the running agent"
    );
    client
        .unban_checks(O, &StopRunInput::run(run))
        .await
        .unwrap();
    assert!(!sim.is_banned(ORG, run.0));
    client
        .remove_from_pr(O, &StopRunInput::run(run))
        .await
        .unwrap();
    assert!(sim.is_banned(ORG, run.0));

    let err = client
        .ban_checks(O, &StopRunInput::run(RunId(9_999)))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::NotFound { .. }));
}

#[tokio::test]
async fn logs_page_and_walk_in_both_orders() {
    let server = serve(seeded_sim()).await;
    let sim = server.sim.clone();
    let client = client(&server.base_url);
    let run = RunId(sim.create_run(ORG, RunPlan::ends("FAILED")));
    for _ in 0..60 {
        sim.advance(Duration::from_secs(20));
    }
    let first = client
        .run_logs(O, run, PageRequest { skip: 0, limit: 3 }, false)
        .await
        .unwrap();
    assert_eq!(first.logs.len(), 3);
    let total = first.total_logs.unwrap();
    assert!(total > 3, "logs grew while the run was active");

    let all = client.all_run_logs(O, run, false).await.unwrap();
    assert_eq!(all.logs.len() as i64, total);
    let newest_first = client.all_run_logs(O, run, true).await.unwrap();
    assert_eq!(newest_first.logs.first(), all.logs.last());
    assert!(all
        .logs
        .iter()
        .any(|l| l.message_type.as_deref() == Some("ERROR")));
}

#[tokio::test]
async fn repos_settings_and_pr_edits() {
    let server = serve(seeded_sim()).await;
    let sim = server.sim.clone();
    let client = client(&server.base_url);

    let repos = client.list_repos(O, PageRequest::default()).await.unwrap();
    assert_eq!(repos.items[0].full_name, "acme/widgets");

    let before = client.check_suite_settings(O, REPO).await.unwrap();
    let update = CheckSuiteSettingsUpdate {
        check_retry_count: Some(before.check_retry_count + 1),
        ignored_checks: Some(vec!["lint".into()]),
        ..Default::default()
    };
    client
        .set_check_suite_settings(O, REPO, &update)
        .await
        .unwrap();
    let after = client.check_suite_settings(O, REPO).await.unwrap();
    assert_eq!(after.check_retry_count, before.check_retry_count + 1);
    assert_eq!(after.ignored_checks, vec!["lint".to_string()]);

    let run = sim.create_run(ORG, RunPlan::completes());
    let pr = sim.add_pr(ORG, run);
    let edited = client.edit_pr(O, None, pr, PrState::Closed).await.unwrap();
    assert!(edited.success);
    let edited = client
        .edit_pr(O, Some(REPO), pr, PrState::Open)
        .await
        .unwrap();
    assert!(edited.success);
}

#[tokio::test]
async fn integrations_setup_commands_analysis_and_the_rest() {
    let server = serve(seeded_sim()).await;
    let client = client(&server.base_url);

    let integrations = client.integrations(O).await.unwrap();
    assert_eq!(integrations.organization_id, O);

    let setup = client
        .generate_setup_commands(
            O,
            &SetupCommandsInput {
                repo_id: REPO,
                prompt: None,
                trigger_source: "setup-commands".into(),
            },
        )
        .await
        .unwrap();
    client.get_run(O, setup.agent_run_id).await.unwrap();

    let analysis = client.analyze_logs(O, SANDBOX).await.unwrap();
    let analysis_run = client.get_run(O, analysis.agent_run_id).await.unwrap();
    assert_eq!(analysis_run.id, analysis.agent_run_id);
    let err = client.analyze_logs(O, SANDBOX_NO_LOGS).await.unwrap_err();
    assert!(
        matches!(err, ApiError::Validation { status: 400, .. }),
        "{err}"
    );
    let err = client.analyze_logs(O, 777).await.unwrap_err();
    assert!(matches!(err, ApiError::NotFound { .. }), "{err}");

    client.cli_rules(O).await.unwrap();
    client.mcp_providers().await.unwrap();
    client.oauth_status(O).await.unwrap();
    client.oauth_revoke(O, "github").await.unwrap();
    let token = client.slack_connect_token(O).await.unwrap();
    assert!(!token.token.is_empty() && token.expires_in_minutes > 0);
}

#[tokio::test]
async fn paging_walks_every_page_and_stops() {
    let server = serve(seeded_sim()).await;
    let sim = server.sim.clone();
    let client = client(&server.base_url);
    let ids: Vec<i64> = (0..23)
        .map(|_| sim.create_run(ORG, RunPlan::completes()))
        .collect();
    sim.clear_requests();
    let filter = RunFilter::default();
    let runs = collect_pages(10, |page| client.list_runs(O, &filter, page))
        .await
        .unwrap();
    assert_eq!(runs.len(), ids.len());
    assert_eq!(sim.requests().len(), 3, "23 runs in pages of 10");
    let mut seen: Vec<i64> = runs.iter().map(|r| r.id.0).collect();
    seen.reverse();
    assert_eq!(seen, ids, "newest first, nothing skipped or repeated");
}

#[tokio::test]
async fn bad_and_foreign_tokens_are_told_apart() {
    let server = serve(seeded_sim()).await;
    let bad = codegen_sentinel::api::CodegenClient::builder(
        server.base_url.clone(),
        secrecy::SecretString::from("nope".to_string()),
    )
    .build()
    .unwrap();
    let err = bad.me().await.unwrap_err();
    assert!(matches!(err, ApiError::Unauthorized { .. }), "{err}");
    assert!(!format!("{err:?}").contains("nope"));
}
