//! End to end through `Executor::run`: the poller watches the simulator and publishes its events,
//! a stand-in for the rules engine writes the jobs of DESIGN §4's first two rules in the same
//! transaction (the JobRecord.data shape of the contract), and the executor carries them out
//! against the simulator, the fake GitHub and a webhook receiver.

mod executor_support;
mod github_fake;

use std::sync::Arc;
use std::time::Duration;

use codegen_sentinel::clock::Clock;
use codegen_sentinel::events::EventSink;
use codegen_sentinel::sim::RunPlan;
use codegen_sentinel::sources::poller::{Poller, PollerConfig};
use codegen_sentinel::store::{EventRecord, JobState, NewJob, Tx, TxAbort};
use codegen_sentinel::template;
use executor_support::*;
use serde_json::{json, Value};

/// The two DESIGN rules, evaluated the way the engine does, writing jobs inside the event's
/// transaction.
struct DesignRules {
    now: Arc<dyn Clock>,
}

impl DesignRules {
    fn rules() -> Vec<(
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
        Value,
    )> {
        vec![
            (
                "diagnose-failed-runs",
                "run.finished",
                r#"run.status in ["FAILED", "ERROR"]"#,
                None,
                json!([
                    {"id": "logs", "action": "codegen.fetch_logs", "with": {"limit": 50, "reverse": true}},
                    {"id": "analysis", "action": "codegen.analyze_logs",
                     "with": {"sandbox_id": "{{ run.metadata.sandbox_id | default(vars.default_sandbox_id) }}"}},
                    {"id": null, "action": "notify", "with": {"to": "audit",
                     "text": "Run {{ run.id }} ended {{ run.status }}: {{ run.web_url }} (analysis run {{ steps.analysis.agent_run_id }})"}},
                ]),
            ),
            (
                "ban-checks-on-agent-prs",
                "run.pr_opened",
                r#"run.source_type == "API""#,
                Some("{{ pr.url }}"),
                json!([
                    {"action": "codegen.ban_checks"},
                    {"action": "github.comment", "with": {"pr": "{{ pr.url }}",
                     "body": "Opened by Codegen run {{ run.id }}; automatic check fixes are off for this PR."}},
                ]),
            ),
        ]
    }
}

impl EventSink for DesignRules {
    fn on_event(&self, tx: &Tx<'_>, event: &EventRecord) -> Result<(), TxAbort> {
        let env = template::environment();
        let now = self.now.now();
        for (name, trigger, when, key, steps) in DesignRules::rules() {
            if event.kind != trigger {
                continue;
            }
            let rule = json!({"name": name, "description": null});
            let context = json!({
                "event": {"id": event.id, "type": event.kind, "at": event.at, "source": event.source.as_str(),
                          "from": event.data["from"], "to": event.data["to"], "action": null},
                "run": event.data["run"], "pr": event.data["pr"], "payload": null,
                "vars": {"default_sandbox_id": SANDBOX}, "rule": rule, "now": now, "summary": null,
            });
            if !template::eval_bool(&env, when, &context).map_err(TxAbort::abort)? {
                continue;
            }
            let key = match key {
                Some(k) => template::render_str(&env, k, &context).map_err(TxAbort::abort)?,
                None => format!(
                    "run/{}/{}",
                    event.org_id.unwrap_or(0),
                    event.run_id.unwrap_or(0)
                ),
            };
            let steps: Vec<Value> = steps
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    let mut s = s.clone();
                    for field in ["when", "retry"] {
                        s[field] = Value::Null;
                    }
                    s["continue_on_error"] = json!(false);
                    s
                })
                .collect();
            let data = json!({"version": 1, "rules_hash": "design", "rule": rule,
                              "context": context, "steps": steps, "progress": {}});
            tx.insert_job(NewJob {
                rule: name.to_owned(),
                event_id: event.id.clone(),
                key,
                created_at: now,
                data,
            })?;
        }
        Ok(())
    }
}

/// The daemon's poller loop, one tick at a time: reconcile, flush, publish.
struct Ticker<'a> {
    poller: Poller,
    rig: &'a Rig,
}

impl Ticker<'_> {
    async fn tick(&mut self) {
        let report = self.poller.poll_once().await.unwrap();
        self.rig.store.flush().await.unwrap();
        for event in report.events {
            let _ = self.rig.feed.send(Arc::new(event));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn failed_runs_are_diagnosed_and_agent_prs_get_banned_and_one_comment() {
    let rig = Rig::new().await;
    rig.sim.add_sandbox(ORG, 44, true);
    rig.github.add_pr(REPO, 1);
    let clock: Arc<dyn Clock> = Arc::new(rig.clock.clone());
    let config = PollerConfig::defaults(codegen_sentinel::api::OrgId(ORG));
    let sink = Arc::new(DesignRules { now: clock.clone() });
    let poller = Poller::new(config, rig.codegen(), rig.store.clone(), clock, sink).unwrap();
    let executor = rig.start(settings(4));
    let ticker = Ticker { poller, rig: &rig };
    let mut ticker = ticker;
    ticker.tick().await; // the baseline

    let failed = rig.sim.create_run(
        ORG,
        RunPlan::ends("FAILED").metadata(json!({"sandbox_id": 44})),
    );
    let agent = rig.sim.create_run(ORG, RunPlan::completes());
    for _ in 0..8 {
        rig.sim.advance(Duration::from_secs(15));
        ticker.tick().await;
    }
    rig.until_settled(Duration::from_secs(120)).await;
    executor.stop().await;

    let jobs: Vec<_> = rig.store.jobs().map(Result::unwrap).collect();
    let rules: Vec<&str> = jobs.iter().map(|j| j.rule.as_str()).collect();
    assert_eq!(
        rules
            .iter()
            .filter(|r| **r == "diagnose-failed-runs")
            .count(),
        1,
        "{rules:?}"
    );
    assert_eq!(
        rules
            .iter()
            .filter(|r| **r == "ban-checks-on-agent-prs")
            .count(),
        1,
        "{rules:?}"
    );
    assert!(
        jobs.iter().all(|j| j.state == JobState::Done),
        "{:?}",
        rig.states()
    );

    // The failed run: logs fetched, the right sandbox analyzed, ops told with a valid signature.
    let requests = rig.sim_chaos.log();
    let logs = requests
        .iter()
        .find(|r| r.path().ends_with(&format!("/agent/run/{failed}/logs")))
        .expect("logs fetched");
    assert!(logs.uri.contains("limit=50") && logs.uri.contains("reverse=true"));
    let analyses: Vec<_> = requests
        .iter()
        .filter(|r| r.path().ends_with("/analyze-logs"))
        .collect();
    assert_eq!(analyses.len(), 1);
    assert_eq!(
        analyses[0].path(),
        format!("/v1/organizations/{ORG}/sandbox/44/analyze-logs")
    );
    let deliveries = rig.receiver.deliveries();
    assert_eq!(deliveries.len(), 1);
    let hook = &deliveries[0];
    assert!(hook.signature_valid, "{:?}", hook.signature);
    assert!(hook.idempotency_key.is_some());
    let analysis_run = rig.sim.run_ids(ORG).into_iter().max().unwrap();
    let web_url = rig.sim.run_json(ORG, failed).unwrap()["web_url"].clone();
    assert_eq!(
        hook.body["text"],
        json!(format!(
            "Run {failed} ended FAILED: {} (analysis run {analysis_run})",
            web_url.as_str().unwrap()
        ))
    );
    assert_eq!(hook.body["rule"]["name"], "diagnose-failed-runs");
    assert_eq!(hook.body["run"]["id"], json!(failed));

    // The agent's PR: checks banned, one comment.
    assert!(rig.sim.is_banned(ORG, agent));
    let bans: Vec<_> = requests
        .iter()
        .filter(|r| r.path().ends_with("/agent/run/ban"))
        .collect();
    assert_eq!(bans.len(), 1);
    assert_eq!(bans[0].json(), json!({"agent_run_id": agent}));
    let comments = rig.github.comments(REPO, 1);
    assert_eq!(comments.len(), 1);
    assert!(comments[0].body.starts_with(&format!(
        "Opened by Codegen run {agent}; automatic check fixes are off for this PR."
    )));
    assert!(comments[0].body.contains("<!-- codegen-sentinel:"));
}
