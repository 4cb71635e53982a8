//! Codegen actions against the simulator: outputs, defaults from the event's run, and what each
//! effectful action does after an attempt that may have acted (create looks for its key, resume
//! looks at the run, analyze-logs refuses to guess).

mod common;

use std::sync::Arc;
use std::time::Duration;

use codegen_sentinel::actions::codegen::{self, KEY_FIELD};
use codegen_sentinel::actions::{self, ActionError, StepCall};
use codegen_sentinel::api::{CodegenClient, RateBudget};
use codegen_sentinel::sim::{Fault, RouteClass, RunPlan, SimServer, Simulator};
use common::*;
use serde_json::{json, Value};

struct Rig {
    server: SimServer,
    client: CodegenClient,
}

async fn rig() -> Rig {
    let sim = seeded_sim();
    sim.set_rate_limits(false);
    let server = serve(sim).await;
    let client = client_with(
        &server.base_url,
        Arc::new(RateBudget::unlimited()),
        fast_retry(),
    );
    Rig { server, client }
}

impl Rig {
    fn sim(&self) -> &Simulator {
        &self.server.sim
    }

    async fn run(
        &self,
        action: &str,
        params: Value,
        ctx: &Value,
        key: &str,
        uncertain: bool,
    ) -> Result<Value, ActionError> {
        let spec = actions::action(action).unwrap();
        let params = actions::prepare(spec, params.as_object().unwrap()).unwrap();
        let call = StepCall {
            action: spec,
            params: &params,
            context: ctx,
            key,
            uncertain,
            job_id: 1,
            rule: "test",
        };
        codegen::execute(&self.client, &call).await
    }

    fn calls(&self) -> Vec<String> {
        self.sim()
            .requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

fn ctx_of(run: i64) -> Value {
    json!({"run": {"id": run, "organization_id": ORG}})
}

#[tokio::test]
async fn logs_are_fetched_with_their_errors_and_total() {
    let rig = rig().await;
    let run = rig.sim().create_run(ORG, RunPlan::ends("FAILED"));
    rig.sim().advance(Duration::from_secs(120));
    rig.sim().clear_requests();
    let out = rig
        .run(
            "codegen.fetch_logs",
            json!({"limit": "5", "reverse": true}),
            &ctx_of(run),
            "k",
            false,
        )
        .await
        .unwrap();
    let logs = out["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 5);
    assert!(out["total"].as_i64().unwrap() >= 5);
    let errors = out["errors"].as_array().unwrap();
    assert!(errors.iter().all(|e| e["message_type"] == "ERROR"));
    assert!(
        !errors.is_empty(),
        "a failed run logs its error last, and reverse puts it first"
    );
    let request = &rig.sim().requests()[0];
    assert_eq!(
        request.path,
        format!("/v1/alpha/organizations/{ORG}/agent/run/{run}/logs")
    );
    assert!(request.query.as_deref().unwrap().contains("limit=5"));
    assert!(request.query.as_deref().unwrap().contains("reverse=true"));

    let all = rig
        .run(
            "codegen.fetch_logs",
            json!({"all": true}),
            &ctx_of(run),
            "k",
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        all["logs"].as_array().unwrap().len() as i64,
        all["total"].as_i64().unwrap()
    );
}

#[tokio::test]
async fn analyze_logs_starts_an_analysis_but_never_guesses_after_an_uncertain_attempt() {
    let rig = rig().await;
    let out = rig
        .run(
            "codegen.analyze_logs",
            json!({"sandbox_id": "42"}),
            &ctx_of(1),
            "k",
            false,
        )
        .await
        .unwrap();
    assert!(out["agent_run_id"].as_i64().is_some());
    assert_eq!(out["status"], "ACTIVE");
    assert_eq!(
        rig.calls(),
        vec![format!(
            "POST /v1/organizations/{ORG}/sandbox/42/analyze-logs"
        )]
    );
    let err = rig
        .run(
            "codegen.analyze_logs",
            json!({"sandbox_id": 42}),
            &ctx_of(1),
            "k",
            true,
        )
        .await
        .unwrap_err();
    assert!(
        err.is_permanent() && err.message.contains("jobs retry"),
        "{err:?}"
    );
    assert_eq!(rig.calls().len(), 1, "nothing sent");
    let err = rig
        .run(
            "codegen.analyze_logs",
            json!({"sandbox_id": 43}),
            &ctx_of(1),
            "k",
            false,
        )
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "no logs (400) is permanent: {err:?}");
}

#[tokio::test]
async fn ban_unban_and_remove_default_to_the_events_run() {
    let rig = rig().await;
    let run = rig.sim().create_run(ORG, RunPlan::completes());
    rig.sim().advance(Duration::from_secs(120));
    rig.run("codegen.ban_checks", json!({}), &ctx_of(run), "k", false)
        .await
        .unwrap();
    assert!(rig.sim().is_banned(ORG, run));
    rig.run(
        "codegen.unban_checks",
        json!({"run_id": run}),
        &json!({}),
        "k",
        false,
    )
    .await
    .unwrap_err(); // no org: the context has no run
    rig.run(
        "codegen.unban_checks",
        json!({"run_id": run, "org_id": ORG}),
        &json!({}),
        "k",
        false,
    )
    .await
    .unwrap();
    assert!(!rig.sim().is_banned(ORG, run));
    rig.run(
        "codegen.remove_from_pr",
        json!({}),
        &ctx_of(run),
        "k",
        false,
    )
    .await
    .unwrap();
    let bodies: Vec<Value> = rig
        .sim()
        .requests()
        .iter()
        .filter_map(|r| r.body.clone())
        .collect();
    assert!(
        bodies.iter().all(|b| b == &json!({"agent_run_id": run})),
        "{bodies:?}"
    );
    let err = rig
        .run(
            "codegen.ban_checks",
            json!({}),
            &ctx_of(999_999),
            "k",
            false,
        )
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "an unknown run is a 404: {err:?}");
}

#[tokio::test]
async fn a_created_run_carries_the_key_and_is_found_instead_of_created_again() {
    let rig = rig().await;
    let params = json!({"prompt": "Fix it", "repo_id": REPO, "metadata": {"ticket": "ENG-1"}, "agent_type": "claude_code"});
    let first = rig
        .run(
            "codegen.create_run",
            params.clone(),
            &json!({"run": {"organization_id": ORG}}),
            "key-1-0",
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        first["metadata"],
        json!({"ticket": "ENG-1", KEY_FIELD: "key-1-0"})
    );
    let body = rig.sim().requests()[0].body.clone().unwrap();
    assert_eq!(body["agent_type"], "claude_code");
    assert_eq!(body["repo_id"], REPO);

    let again = rig
        .run("codegen.create_run", params, &ctx_of(1), "key-1-0", true)
        .await
        .unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(rig.sim().run_ids(ORG).len(), 1, "created once");
    let creates = rig.calls().iter().filter(|c| c.starts_with("POST")).count();
    assert_eq!(creates, 1);
}

#[tokio::test]
async fn an_unreadable_create_answer_is_uncertain_and_resolved_by_the_key() {
    let rig = rig().await;
    rig.sim()
        .inject(Fault::MalformedJson, 1, Some(RouteClass::Create));
    let params = json!({"prompt": "Fix it"});
    let err = rig
        .run(
            "codegen.create_run",
            params.clone(),
            &ctx_of(1),
            "key-2-0",
            false,
        )
        .await
        .unwrap_err();
    assert!(err.maybe_applied && !err.is_permanent(), "{err:?}");
    rig.run("codegen.create_run", params, &ctx_of(1), "key-2-0", true)
        .await
        .unwrap();
    assert_eq!(rig.sim().run_ids(ORG).len(), 1);
}

#[tokio::test]
async fn a_create_that_never_landed_is_sent_again() {
    let rig = rig().await;
    rig.sim()
        .inject(Fault::Status(503), 1, Some(RouteClass::Create));
    let params = json!({"prompt": "Fix it"});
    let err = rig
        .run(
            "codegen.create_run",
            params.clone(),
            &ctx_of(1),
            "key-3-0",
            false,
        )
        .await
        .unwrap_err();
    assert!(err.maybe_applied, "a 5xx on create is uncertain: {err:?}");
    rig.run("codegen.create_run", params, &ctx_of(1), "key-3-0", true)
        .await
        .unwrap();
    assert_eq!(rig.sim().run_ids(ORG).len(), 1);
    assert_eq!(
        rig.calls().iter().filter(|c| c.starts_with("POST")).count(),
        2
    );
}

#[tokio::test]
async fn resume_is_not_repeated_once_the_run_is_active_again() {
    let rig = rig().await;
    let run = rig.sim().create_run(ORG, RunPlan::completes().without_pr());
    rig.sim().advance(Duration::from_secs(120));
    let out = rig
        .run(
            "codegen.resume_run",
            json!({"prompt": "Also add tests"}),
            &ctx_of(run),
            "k",
            false,
        )
        .await
        .unwrap();
    assert_eq!(out["status"], "ACTIVE");
    rig.sim().clear_requests();
    rig.run(
        "codegen.resume_run",
        json!({"prompt": "Also add tests"}),
        &ctx_of(run),
        "k",
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        rig.calls(),
        vec![format!("GET /v1/organizations/{ORG}/agent/run/{run}")]
    );

    rig.sim().advance(Duration::from_secs(600));
    rig.sim().clear_requests();
    rig.run(
        "codegen.resume_run",
        json!({"prompt": "Again"}),
        &ctx_of(run),
        "k2",
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        rig.calls().len(),
        2,
        "finished again: the resume is sent: {:?}",
        rig.calls()
    );
}

#[tokio::test]
async fn edit_pr_uses_the_repo_scoped_path_when_given_a_repo() {
    let rig = rig().await;
    let run = rig.sim().create_run(ORG, RunPlan::completes());
    rig.sim().advance(Duration::from_secs(120));
    let pr = rig.sim().run_json(ORG, run).unwrap()["github_pull_requests"][0]["id"]
        .as_i64()
        .unwrap();
    let out = rig
        .run(
            "codegen.edit_pr",
            json!({"pr_id": pr, "repo_id": REPO, "state": "draft"}),
            &ctx_of(run),
            "k",
            false,
        )
        .await
        .unwrap();
    assert_eq!(out["success"], true);
    assert_eq!(
        rig.calls().last().unwrap(),
        &format!("PATCH /v1/organizations/{ORG}/repos/{REPO}/prs/{pr}")
    );
}
