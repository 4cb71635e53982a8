//! GitHub App authentication against the fake GitHub in App mode: installation tokens fetched
//! with the App's JWT once per owner and shared by its repositories, replaced before they expire
//! (by an explicit clock the fake shares), fetched anew after GitHub refused one, a wrong key
//! named without key material, and the daemon commenting as an App.

mod common;
mod github_fake;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use codegen_sentinel::actions::github::{
    self, GithubAuth, GithubClient, GithubError, TOKEN_REFRESH_MARGIN,
};
use codegen_sentinel::actions::{self, ActionError, StepCall};
use codegen_sentinel::clock::{Clock, ManualClock};
use codegen_sentinel::sim::RunPlan;
use common::wait_for;
use github_fake::{FakeGithub, Served};
use secrecy::SecretString;
use serde_json::{json, Value};

const APP_ID: u64 = 4242;
const ACME: u64 = 11;
const GLOBEX: u64 = 22;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).unwrap()
}

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/github-app")
        .join(name)
}

struct Rig {
    github: FakeGithub,
    clock: ManualClock,
    client: GithubClient,
    chaos: github_fake::Chaos,
    _served: Served,
}

/// The fake with App 4242 installed on acme and globex, and a client signing with `key`; both
/// read the same hand-moved clock for installation tokens.
async fn rig(key: &str) -> Rig {
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2025, 6, 21, 11, 20, 0).unwrap());
    let seen_by_fake = clock.clone();
    let github = FakeGithub::app(
        APP_ID,
        &fixture("app-public-key.pem"),
        &[("acme", ACME), ("globex", GLOBEX)],
        Arc::new(move || seen_by_fake.now()),
    );
    github.add_pr("acme/widgets", 7);
    github.add_pr("acme/gadgets", 3);
    github.add_pr("globex/tools", 5);
    // Calm unless a test injects a fault.
    let seen_by_chaos = clock.clone();
    let chaos = github_fake::Chaos::new(
        github_fake::one_scope,
        Arc::new(move || seen_by_chaos.now()),
    );
    let served = github_fake::serve(chaos.wrap(github.router())).await;
    let auth = GithubAuth::App {
        app_id: APP_ID,
        private_key: SecretString::from(key.to_owned()),
    };
    let client = GithubClient::builder(served.base_url.clone(), auth, Arc::new(clock.clone()))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    Rig {
        github,
        clock,
        client,
        chaos,
        _served: served,
    }
}

async fn app_rig() -> Rig {
    rig(&fixture("app-private-key.pem")).await
}

impl Rig {
    async fn run(&self, action: &str, params: Value) -> Result<Value, ActionError> {
        let spec = actions::action(action).unwrap();
        let params = actions::prepare(spec, params.as_object().unwrap()).unwrap();
        let context = json!({});
        let call = StepCall {
            action: spec,
            params: &params,
            context: &context,
            key: "k",
            uncertain: false,
            job_id: 1,
            rule: "test",
        };
        github::execute(&self.client, &call).await
    }

    async fn comment(&self, pr: &str, body: &str) -> Result<Value, ActionError> {
        self.run("github.comment", json!({"pr": pr, "body": body}))
            .await
    }

    /// The tokens the fake let REST requests through with, in order.
    fn tokens_used(&self) -> Vec<String> {
        self.github
            .authorized()
            .into_iter()
            .map(|a| a.token)
            .collect()
    }

    fn tokens_issued(&self) -> Vec<String> {
        self.github
            .tokens_issued()
            .into_iter()
            .map(|t| t.token)
            .collect()
    }
}

#[tokio::test]
async fn requests_carry_the_owners_installation_token_fetched_once_per_owner() {
    let r = app_rig().await;
    // Two repositories of one owner at once: one lookup, one token.
    let (a, b) = tokio::join!(
        r.comment("acme/widgets#7", "first"),
        r.run(
            "github.add_labels",
            json!({"pr": "acme/gadgets#3", "labels": ["triaged"]})
        ),
    );
    a.unwrap();
    b.unwrap();
    r.comment("acme/gadgets#3", "second").await.unwrap();
    r.comment("globex/tools#5", "third").await.unwrap();

    assert_eq!(
        r.github.comments("acme/widgets", 7)[0].body.lines().next(),
        Some("first")
    );
    assert_eq!(r.github.labels("acme/gadgets", 3), vec!["triaged"]);
    assert_eq!(r.github.comments("globex/tools", 5).len(), 1);

    let issued = r.github.tokens_issued();
    let installations: Vec<u64> = issued.iter().map(|t| t.installation).collect();
    assert_eq!(installations, vec![ACME, GLOBEX], "one token per owner");
    assert_eq!(r.github.installation_lookups(), 2);
    let used: Vec<(String, u64, String)> = r
        .github
        .authorized()
        .into_iter()
        .map(|a| (a.owner, a.installation, a.token))
        .collect();
    assert_eq!(used.len(), 4);
    for (owner, installation, token) in &used {
        let expected = if owner == "acme" {
            &issued[0]
        } else {
            &issued[1]
        };
        assert_eq!(
            (installation, token),
            (&expected.installation, &expected.token)
        );
    }
    assert!(r.github.refusals().is_empty(), "{:?}", r.github.refusals());
}

#[tokio::test]
async fn tokens_are_replaced_before_they_expire() {
    let r = app_rig().await;
    let minute = Duration::from_secs(60);
    r.github
        .set_token_lifetime(TOKEN_REFRESH_MARGIN + 2 * minute);
    r.comment("acme/widgets#7", "1").await.unwrap();
    // More than the margin left: the same token.
    r.clock.advance(minute);
    r.comment("acme/widgets#7", "2").await.unwrap();
    assert_eq!(r.tokens_issued().len(), 1);
    // Less than the margin left, though still valid: a new token before this request.
    r.clock.advance(minute + Duration::from_secs(1));
    r.comment("acme/widgets#7", "3").await.unwrap();
    let issued = r.tokens_issued();
    assert_eq!(issued.len(), 2);
    assert_eq!(
        r.tokens_used(),
        vec![issued[0].clone(), issued[0].clone(), issued[1].clone()]
    );

    // Tokens that live less than the margin: once the current one is inside the margin, each
    // request gets a fresh token, even after the clock jumped far beyond every expiry.
    r.github
        .set_token_lifetime(TOKEN_REFRESH_MARGIN - Duration::from_secs(1));
    for (n, jump) in [3 * minute, Duration::ZERO, 120 * minute]
        .into_iter()
        .enumerate()
    {
        r.clock.advance(jump);
        r.comment("acme/widgets#7", "again").await.unwrap();
        let issued = r.tokens_issued();
        assert_eq!(issued.len(), 3 + n, "a new token for each request");
        assert_eq!(r.tokens_used().last(), issued.last());
    }
    assert_eq!(r.github.comments("acme/widgets", 7).len(), 6);
    assert!(r.github.refusals().is_empty(), "{:?}", r.github.refusals());
}

#[tokio::test]
async fn a_failed_refresh_keeps_using_the_current_token_until_it_expires() {
    let r = app_rig().await;
    let minute = Duration::from_secs(60);
    r.github.set_token_lifetime(TOKEN_REFRESH_MARGIN + minute);
    r.comment("acme/widgets#7", "1").await.unwrap();
    // Inside the margin, GitHub cannot mint: the current token, still valid, carries on.
    r.clock.advance(2 * minute);
    r.chaos
        .inject(github_fake::Fault::Status(502), 1, Some("access_tokens"));
    r.comment("acme/widgets#7", "2").await.unwrap();
    let issued = r.tokens_issued();
    assert_eq!(issued.len(), 1);
    assert_eq!(r.tokens_used(), vec![issued[0].clone(), issued[0].clone()]);
    // The next request refreshes.
    r.comment("acme/widgets#7", "3").await.unwrap();
    assert_eq!(r.tokens_issued().len(), 2);
    // Past its expiry, a failed refresh is an error, not a stale token.
    r.clock.advance(TOKEN_REFRESH_MARGIN + 2 * minute);
    r.chaos
        .inject(github_fake::Fault::Status(502), 1, Some("access_tokens"));
    assert!(r.comment("acme/widgets#7", "4").await.is_err());
    assert!(r.github.refusals().is_empty(), "{:?}", r.github.refusals());
}

#[tokio::test]
async fn a_refused_token_is_dropped_and_the_next_attempt_fetches_a_new_one() {
    let r = app_rig().await;
    r.comment("acme/widgets#7", "before").await.unwrap();
    r.github.revoke_tokens();

    let err = r.comment("acme/widgets#7", "refused").await.unwrap_err();
    assert!(!err.is_permanent(), "a new token may be accepted: {err:?}");
    assert!(!err.maybe_applied, "GitHub did nothing on a 401: {err:?}");
    assert!(
        err.message
            .contains("refused the App installation token for acme"),
        "{err:?}"
    );
    assert!(!err.message.contains("ghs_"), "no token in {err:?}");
    assert_eq!(
        r.github.comments("acme/widgets", 7).len(),
        1,
        "nothing posted"
    );

    r.comment("acme/widgets#7", "after").await.unwrap();
    let issued = r.tokens_issued();
    assert_eq!(issued.len(), 2);
    assert_eq!(r.tokens_used(), vec![issued[0].clone(), issued[1].clone()]);
    assert_eq!(
        r.github.installation_lookups(),
        2,
        "the installation is looked up again"
    );
    assert_eq!(r.github.comments("acme/widgets", 7).len(), 2);
    let refusals = r.github.refusals();
    assert_eq!(refusals.len(), 1);
    assert!(refusals[0].starts_with("revoked token"), "{refusals:?}");
}

#[tokio::test]
async fn a_wrong_private_key_is_named_without_key_material() {
    let other = fixture("other-private-key.pem");
    let r = rig(&other).await;
    let err = r.comment("acme/widgets#7", "never").await.unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    assert!(
        err.message.contains("GitHub App installation for acme") && err.message.contains("401"),
        "{err:?}"
    );
    let key_body = other.lines().nth(1).unwrap();
    for secret in ["PRIVATE KEY", key_body, "eyJ", "ghs_"] {
        assert!(!err.message.contains(secret), "{secret:?} in {err:?}");
    }
    assert!(r.github.tokens_issued().is_empty());
    assert!(r.github.comments("acme/widgets", 7).is_empty());
    assert!(
        r.github.refusals()[0].starts_with("JWT:"),
        "{:?}",
        r.github.refusals()
    );
    assert!(!format!("{:?}", r.client).contains(key_body));

    // Not a key at all: the client is not built, and the message names the App, not the text.
    let garbage = "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LW5vdC1hLWtleQ==\n-----END RSA PRIVATE KEY-----\n";
    let auth = GithubAuth::App {
        app_id: APP_ID,
        private_key: SecretString::from(garbage),
    };
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let err = GithubClient::builder("http://127.0.0.1:9", auth, clock)
        .build()
        .unwrap_err();
    assert!(matches!(err, GithubError::Setup(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("GitHub App 4242 private key"), "{text}");
    assert!(!text.contains("c2VjcmV0"), "{text}");
}

const APP_RULES: &str = r#"
rules:
  - name: greet-agent-prs
    trigger: run.pr_opened
    key: "{{ pr.url }}"
    steps:
      - action: github.comment
        with:
          pr: "{{ pr.url }}"
          body: "Opened by Codegen run {{ run.id }}."
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_comments_as_a_github_app() {
    use common::{seeded_sim, terminate, ORG, TOKEN};
    let sim = seeded_sim();
    sim.set_rate_limits(false);
    let sim = common::serve(sim).await;
    let github = FakeGithub::app(
        APP_ID,
        &fixture("app-public-key.pem"),
        &[("acme", ACME)],
        Arc::new(Utc::now),
    );
    github.add_pr("acme/widgets", 1);
    let github_served = github_fake::serve(github.router()).await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/rules.yaml"), APP_RULES).unwrap();
    let key_file = dir.path().join("github-app.pem");
    std::fs::copy(fixture_path("app-private-key.pem"), &key_file).unwrap();
    let config = dir.path().join("sentinel.yaml");
    std::fs::write(
        &config,
        format!(
            "codegen:\n  base_url: {}\n  token_env: SENTINEL_TEST_TOKEN\n  org_ids: [{ORG}]\n  poll_interval: 200ms\n\
             store:\n  path: {}\n\
             server:\n  listen: 127.0.0.1:0\n\
             rules:\n  paths: [{}]\n\
             github:\n  base_url: {}\n  app_id: {APP_ID}\n  private_key_file: {}\n\
             executor:\n  backoff_base: 100ms\n  backoff_cap: 1s\n",
            sim.base_url,
            dir.path().join("store").display(),
            dir.path().join("rules").display(),
            github_served.base_url,
            key_file.display(),
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_codegen-sentinel"))
        .args(["run", "--config"])
        .arg(&config)
        .env("SENTINEL_TEST_TOKEN", TOKEN)
        .env_remove("SENTINEL_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let sim_state = sim.sim.clone();
    wait_for("the first poll", Duration::from_secs(30), || {
        !sim_state.requests().is_empty()
    })
    .await;
    // The first sync of an empty store is a silent baseline: let it happen first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let run = sim_state.create_run(ORG, RunPlan::completes());
    let driven = sim_state.clone();
    let driver = tokio::spawn(async move {
        // Moves the simulator's clock so that the run opens its PR.
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            driven.advance(Duration::from_secs(1));
        }
    });
    let seen = github.clone();
    wait_for("the PR comment", Duration::from_secs(30), || {
        !seen.comments("acme/widgets", 1).is_empty()
    })
    .await;
    driver.abort();
    let out = terminate(child).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    let comments = github.comments("acme/widgets", 1);
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(comments[0]
        .body
        .contains(&format!("Opened by Codegen run {run}.")));
    let issued = github.tokens_issued();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].installation, ACME);
    let used = github.authorized();
    assert_eq!(used.len(), 1);
    assert_eq!(used[0].token, issued[0].token);
    assert!(github.refusals().is_empty(), "{:?}", github.refusals());
    let key = fixture("app-private-key.pem");
    let key_body = key.lines().nth(1).unwrap();
    for secret in [key_body, issued[0].token.as_str()] {
        assert!(!stderr.contains(secret), "a secret in the daemon's log");
    }
    drop(dir);
}
