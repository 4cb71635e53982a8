//! `codegen-sentinel api ...` end to end: the real binary against the simulator, one test per
//! resource, plus exit codes and the token never being printed.

mod common;

use std::process::Output;
use std::time::Duration;

use codegen_sentinel::sim::RunPlan;
use common::*;
use serde_json::Value;

/// Runs the binary with the token in `CODEGEN_API_TOKEN`.
async fn api(base_url: &str, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_codegen-sentinel"));
    cmd.arg("api")
        .args(args)
        .env("CODEGEN_API_TOKEN", TOKEN)
        .env("CODEGEN_API_BASE_URL", base_url)
        .env_remove("SENTINEL_CONFIG")
        .env("RUST_LOG", "debug");
    tokio::task::spawn_blocking(move || cmd.output().expect("binary runs"))
        .await
        .unwrap()
}

/// Succeeds and prints JSON; the token is in no output.
fn ok_json(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}: {stderr}",
        out.status.code()
    );
    assert!(
        !stdout.contains(TOKEN) && !stderr.contains(TOKEN),
        "token leaked"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

async fn world() -> (codegen_sentinel::sim::SimServer, i64) {
    let server = serve(seeded_sim()).await;
    let run = server.sim.create_run(ORG, RunPlan::completes());
    server.sim.advance(Duration::from_secs(3600));
    (server, run)
}

const ORG_S: &str = "7";

#[tokio::test(flavor = "multi_thread")]
async fn orgs_list() {
    let (server, _) = world().await;
    let page = ok_json(&api(&server.base_url, &["orgs", "list"]).await);
    assert_eq!(page["items"][0]["id"], ORG);
    let all = ok_json(&api(&server.base_url, &["orgs", "list", "--all", "--limit", "1"]).await);
    assert_eq!(all.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn users_list_get_me() {
    let (server, _) = world().await;
    let b = &server.base_url;
    let page = ok_json(&api(b, &["users", "list", "--org", ORG_S]).await);
    assert_eq!(page["items"][0]["github_username"], "octo");
    let user = ok_json(&api(b, &["users", "get", "--org", ORG_S, "--user", "1"]).await);
    assert_eq!(user["id"], USER);
    let me = ok_json(&api(b, &["users", "me"]).await);
    assert_eq!(me["id"], USER);
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_every_verb() {
    let (server, run) = world().await;
    let b = &server.base_url;
    let r = run.to_string();
    let target = ["--org", ORG_S, "--run", r.as_str()];

    let list = ok_json(&api(b, &["runs", "list", "--org", ORG_S, "--source-type", "API"]).await);
    assert_eq!(list["items"][0]["id"], run);
    let got = ok_json(&api(b, &[&["runs", "get"][..], &target].concat()).await);
    assert_eq!(got["status"], "COMPLETE");

    let created = ok_json(
        &api(
            b,
            &[
                "runs",
                "create",
                "--org",
                ORG_S,
                "--prompt",
                "hi",
                "--repo-id",
                "10",
                "--metadata",
                r#"{"ticket": "OPS-1"}"#,
                "--agent-type",
                "codegen",
            ],
        )
        .await,
    );
    assert_eq!(created["metadata"]["ticket"], "OPS-1");

    let resumed = ok_json(
        &api(
            b,
            &[&["runs", "resume"][..], &target, &["--prompt", "more"]].concat(),
        )
        .await,
    );
    assert_eq!(resumed["status"], "ACTIVE");
    for verb in ["ban", "unban", "remove-from-pr"] {
        ok_json(&api(b, &[&["runs", verb][..], &target].concat()).await);
    }
    assert!(server.sim.is_banned(ORG, run));

    let logs = ok_json(
        &api(
            b,
            &[&["runs", "logs"][..], &target, &["--all", "--reverse"]].concat(),
        )
        .await,
    );
    assert_eq!(
        logs["logs"].as_array().unwrap().len() as i64,
        logs["total_logs"].as_i64().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn repos_and_check_suite_settings() {
    let (server, _) = world().await;
    let b = &server.base_url;
    let repos = ok_json(&api(b, &["repos", "list", "--org", ORG_S, "--all"]).await);
    assert_eq!(repos[0]["full_name"], "acme/widgets");
    let settings = ["repos", "check-suite-settings"];
    ok_json(
        &api(
            b,
            &[
                &settings[..],
                &[
                    "set",
                    "--org",
                    ORG_S,
                    "--repo",
                    "10",
                    "--check-retry-count",
                    "5",
                ],
                &["--ignored-check", "lint"],
            ]
            .concat(),
        )
        .await,
    );
    let now = ok_json(
        &api(
            b,
            &[&settings[..], &["get", "--org", ORG_S, "--repo", "10"]].concat(),
        )
        .await,
    );
    assert_eq!(now["check_retry_count"], 5);
    assert_eq!(now["ignored_checks"][0], "lint");
}

#[tokio::test(flavor = "multi_thread")]
async fn prs_edit() {
    let (server, run) = world().await;
    let pr = server.sim.add_pr(ORG, run).to_string();
    let out = api(
        &server.base_url,
        &[
            "prs",
            "edit",
            "--org",
            ORG_S,
            "--pr",
            &pr,
            "--state",
            "ready-for-review",
        ],
    )
    .await;
    assert_eq!(ok_json(&out)["success"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn integrations_setup_commands_sandbox_and_cli_rules() {
    let (server, _) = world().await;
    let b = &server.base_url;
    let integrations = ok_json(&api(b, &["integrations", "list", "--org", ORG_S]).await);
    assert_eq!(integrations["organization_id"], ORG);
    let setup = ok_json(
        &api(
            b,
            &["setup-commands", "generate", "--org", ORG_S, "--repo", "10"],
        )
        .await,
    );
    assert!(setup["agent_run_id"].is_i64());
    let analysis = ok_json(
        &api(
            b,
            &["sandbox", "analyze-logs", "--org", ORG_S, "--sandbox", "42"],
        )
        .await,
    );
    assert!(analysis["agent_run_id"].is_i64());
    let rules = ok_json(&api(b, &["cli-rules", "get", "--org", ORG_S]).await);
    assert!(rules.get("organization_rules").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn mcp_providers_oauth_and_slack_connect() {
    let (server, _) = world().await;
    let b = &server.base_url;
    assert!(ok_json(&api(b, &["mcp-providers", "list"]).await).is_array());
    ok_json(&api(b, &["oauth", "status", "--org", ORG_S]).await);
    ok_json(
        &api(
            b,
            &["oauth", "revoke", "--org", ORG_S, "--provider", "github"],
        )
        .await,
    );
    let token = ok_json(&api(b, &["slack-connect", "token", "--org", ORG_S]).await);
    assert!(token["token"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn api_errors_exit_1_on_stderr_and_never_show_the_token() {
    let (server, _) = world().await;
    let out = api(
        &server.base_url,
        &["runs", "get", "--org", ORG_S, "--run", "999999"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not found (404)"), "{stderr}");
    assert!(!stderr.contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_mistakes_exit_2() {
    let (server, _) = world().await;
    let out = api(&server.base_url, &["runs", "get", "--org", ORG_S]).await;
    assert_eq!(out.status.code(), Some(2), "missing --run");
    let out = api(
        &server.base_url,
        &["runs", "list", "--org", ORG_S, "--limit", "500"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "limit out of range");
    let out = api(
        &server.base_url,
        &[
            "runs",
            "create",
            "--org",
            ORG_S,
            "--prompt",
            "x",
            "--metadata",
            "[1]",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "metadata must be an object");

    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_codegen-sentinel"));
    cmd.args([
        "api",
        "users",
        "me",
        "--token-env",
        "SENTINEL_TEST_NO_SUCH_VAR",
    ])
    .env("CODEGEN_API_BASE_URL", &server.base_url)
    .env_remove("SENTINEL_CONFIG");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SENTINEL_TEST_NO_SUCH_VAR"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_and_base_url_come_from_the_config_file() {
    let (server, run) = world().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sentinel.yaml");
    std::fs::write(
        &config,
        format!(
            "codegen:\n  base_url: {}\n  token_env: SENTINEL_CLI_TEST_TOKEN\n  org_ids: [7]\n",
            server.base_url
        ),
    )
    .unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_codegen-sentinel"));
    cmd.args([
        "api",
        "runs",
        "get",
        "--org",
        ORG_S,
        "--run",
        &run.to_string(),
        "--config",
    ])
    .arg(&config)
    .env("SENTINEL_CLI_TEST_TOKEN", TOKEN)
    .env_remove("CODEGEN_API_TOKEN")
    .env_remove("CODEGEN_API_BASE_URL");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(ok_json(&out)["id"], run);

    // A config naming a variable that is not set is a configuration error, located.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_codegen-sentinel"));
    cmd.args(["api", "users", "me", "--config"])
        .arg(&config)
        .env_remove("SENTINEL_CLI_TEST_TOKEN");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sentinel.yaml:3:"), "{stderr}");
    assert!(stderr.contains("SENTINEL_CLI_TEST_TOKEN"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn simulate_serve_prints_a_base_url_and_token_that_the_api_command_accepts() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_codegen-sentinel"))
        .args(["simulate", "serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (base_url, token) = tokio::task::spawn_blocking(move || {
        let mut base_url = None;
        let mut token = None;
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(v) = line.strip_prefix("base_url: ") {
                base_url = Some(v.to_owned());
            }
            if let Some(v) = line.strip_prefix("token: ") {
                token = Some(v.to_owned());
            }
            if base_url.is_some() && token.is_some() {
                break;
            }
        }
        (base_url.unwrap(), token.unwrap())
    })
    .await
    .unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_codegen-sentinel"));
    cmd.args(["api", "runs", "list", "--org", ORG_S, "--limit", "5"])
        .env("CODEGEN_API_TOKEN", &token)
        .env("CODEGEN_API_BASE_URL", &base_url)
        .env_remove("SENTINEL_CONFIG");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let page: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(page["total"].as_i64().unwrap() > 5, "seeded runs: {page}");
    child.kill().unwrap();
    child.wait().unwrap();
}
