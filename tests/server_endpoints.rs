//! The HTTP surface: `/healthz`, `/readyz` from its inputs (store, rules, the poller's health
//! against the simulator, poll recency), `/metrics` families, `/status` shape, and serving on
//! a real loopback socket until cancelled.

mod common;
mod webhook_support;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use codegen_sentinel::api::{OrgId, RateBudget};
use codegen_sentinel::clock::ManualClock;
use codegen_sentinel::events::NoSink;
use codegen_sentinel::server::{app, serve, JobCounts};
use codegen_sentinel::sources::poller::{Poller, PollerConfig, PollerHealth};
use codegen_sentinel::sources::webhook::sign;
use codegen_sentinel::store::{JobState, NewJob, NewSilence};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use webhook_support::*;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[tokio::test]
async fn healthz_follows_the_liveness_input() {
    let rig = Rig::new(&[SECRET]);
    assert_eq!(rig.get("/healthz").await.0, StatusCode::OK);
    let dead = app(rig.state.clone().with_alive(|| false));
    let rig = Rig { app: dead, ..rig };
    assert_eq!(rig.get("/healthz").await.0, StatusCode::SERVICE_UNAVAILABLE);
}

/// Runs one organization's poller loop against the simulator until its first reconcile.
async fn reconciled(
    health: Arc<PollerHealth>,
    clock: ManualClock,
    store: codegen_sentinel::store::Store,
) {
    let server = common::serve(common::seeded_sim()).await;
    let config = PollerConfig::defaults(OrgId(common::ORG));
    let client = common::client_with(
        &server.base_url,
        Arc::new(RateBudget::unlimited()),
        common::fast_retry(),
    );
    let poller = Poller::new(config, client, store, Arc::new(clock), Arc::new(NoSink))
        .unwrap()
        .with_health(health.clone());
    let cancel = CancellationToken::new();
    let task = tokio::spawn(poller.run(cancel.clone()));
    // The first tick is a few local requests; wait for its outcome, bounded.
    for _ in 0..2000 {
        if health.first_reconcile_done() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cancel.cancel();
    task.await.unwrap().unwrap();
    assert!(health.first_reconcile_done());
}

#[tokio::test]
async fn readyz_waits_for_rules_the_first_reconcile_and_a_recent_poll() {
    let rig = Rig::new(&[SECRET]);
    let health = Arc::new(PollerHealth::default());
    let clock = ManualClock::new(chrono::Utc::now());
    let mut state = rig.state.clone().with_clock(Arc::new(clock.clone()));
    state.probes.poller = health.clone();

    let rig = Rig {
        app: app(state.clone()),
        ..rig
    };
    let (status, body) = rig.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let body = json(&body);
    assert_eq!(body["ready"], false);
    assert_eq!(body["checks"]["store"], true);
    assert_eq!(body["checks"]["rules_loaded"], false);
    assert_eq!(body["checks"]["first_reconcile"], false);
    assert_eq!(body["checks"]["recent_poll"], false);

    reconciled(health.clone(), clock.clone(), rig.store.clone()).await;
    let ready = app(state.clone().with_rules_hash(|| Some("abc123".into())));
    let rig = Rig { app: ready, ..rig };
    let (status, body) = rig.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Three intervals without a good poll: no longer ready.
    clock.advance(Duration::from_secs(46));
    let (status, body) = rig.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json(&body)["checks"]["recent_poll"], false);
    assert_eq!(json(&body)["checks"]["first_reconcile"], true);
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_the_sentinel_families() {
    let rig = Rig::new(&[SECRET]);
    let body = fixture("pull_request.opened.json");
    rig.send(signed("pull_request", "m-1", body.clone(), SECRET))
        .await;
    rig.send(signed("pull_request", "m-2", body, "wrong")).await;
    let state = rig
        .state
        .clone()
        .with_rate_budget(Arc::new(RateBudget::published()));
    let rig = Rig {
        app: app(state),
        ..rig
    };

    let (status, text) = rig.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for family in [
        "# TYPE sentinel_webhook_deliveries_total counter",
        "# TYPE sentinel_webhook_seconds histogram",
        "# TYPE sentinel_events_total counter",
        "# TYPE sentinel_store_size_bytes gauge",
        "# TYPE sentinel_jobs_pending gauge",
        "# TYPE sentinel_jobs_dead gauge",
        "# TYPE sentinel_polls_total counter",
        "# TYPE sentinel_rate_limit_waits_total counter",
        "# TYPE sentinel_rule_reloads_total counter",
        "# HELP sentinel_webhook_deliveries_total GitHub webhook deliveries, by outcome.",
    ] {
        assert!(text.contains(family), "missing {family:?} in\n{text}");
    }
    assert!(text.contains(r#"sentinel_events_total{type="github.pull_request",source="webhook"}"#));
    assert!(text.contains(r#"sentinel_webhook_seconds_bucket{le="0.001"}"#));
    // The delivery writer's batches: every accepted delivery was in one of them.
    assert!(text.contains("# TYPE sentinel_webhook_batch_deliveries histogram"));
    assert!(text.contains(r#"sentinel_webhook_batch_deliveries_bucket{le="256"}"#));
    let line = text
        .lines()
        .find(|l| l.starts_with(r#"sentinel_webhook_deliveries_total{outcome="unauthorized"}"#))
        .unwrap();
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 1.0, "{line}");
    let size = text
        .lines()
        .find(|l| l.starts_with("sentinel_store_size_bytes "))
        .unwrap();
    assert!(size.rsplit(' ').next().unwrap().parse::<f64>().unwrap() > 0.0);
    assert!(text
        .lines()
        .all(|l| l.is_empty() || l.starts_with('#') || l.starts_with("sentinel_")));
}

#[tokio::test]
async fn status_reports_version_rules_orgs_poll_queue_dead_letters_and_silences() {
    let rig = Rig::new(&[SECRET, OLD_SECRET]);
    let at = chrono::Utc::now();
    rig.store
        .transaction(|tx| {
            let job = || NewJob {
                rule: "r".into(),
                event_id: "e".into(),
                key: "k".into(),
                created_at: at,
                data: Value::Null,
            };
            tx.insert_job(job())?;
            let mut dead = tx.insert_job(job())?;
            dead.state = JobState::Dead;
            tx.put_job(&dead)?;
            tx.insert_silence(NewSilence {
                rule: "noisy".into(),
                key: Some("pr/1".into()),
                until: at + chrono::Duration::hours(1),
                reason: "deploy freeze".into(),
                created_at: at,
                created_by: Some("ops".into()),
            })?;
            tx.insert_silence(NewSilence {
                rule: "old".into(),
                key: None,
                until: at - chrono::Duration::hours(1),
                reason: "over".into(),
                created_at: at,
                created_by: None,
            })?;
            Ok(())
        })
        .unwrap();
    let state = rig
        .state
        .clone()
        .with_orgs(vec![7, 8])
        .with_rules_hash(|| Some("h-1".into()));
    let rig = Rig {
        app: app(state),
        ..rig
    };

    let (status, body) = rig.get("/status").await;
    assert_eq!(status, StatusCode::OK);
    let body = json(&body);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["rules_hash"], "h-1");
    assert_eq!(body["orgs"], serde_json::json!([7, 8]));
    assert_eq!(body["last_poll"]["at"], Value::Null);
    assert_eq!(body["last_poll"]["first_reconcile_done"], false);
    assert_eq!(body["queue_depth"], 1);
    assert_eq!(body["jobs"]["pending"], 1);
    assert_eq!(body["dead_letters"], 1);
    let silences = body["silences"].as_array().unwrap();
    assert_eq!(silences.len(), 1, "expired silences are not listed");
    assert_eq!(silences[0]["rule"], "noisy");
    assert_eq!(silences[0]["key"], "pr/1");
    assert_eq!(silences[0]["reason"], "deploy freeze");
    assert_eq!(body["webhooks"]["secrets"], 2);
    assert!(body["store"]["size_bytes"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn job_counts_can_come_from_the_daemon() {
    let rig = Rig::new(&[SECRET]);
    let counts = JobCounts {
        pending: 3,
        running: 1,
        waiting: 2,
        dead: 4,
    };
    let rig = Rig {
        app: app(rig.state.clone().with_jobs(move || Ok(counts))),
        ..rig
    };
    let body = json(&rig.get("/status").await.1);
    assert_eq!(body["queue_depth"], 6);
    assert_eq!(body["dead_letters"], 4);
}

#[tokio::test]
async fn serve_answers_on_loopback_refuses_oversize_early_and_stops_when_cancelled() {
    let rig = Rig::with_max_body(&[SECRET], 64 << 10);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let server = tokio::spawn(serve(listener, rig.app.clone(), cancel.clone()));

    let body = fixture("check_suite.completed.json");
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/webhooks/github"))
        .header("content-type", "application/json")
        .header("x-github-event", "check_suite")
        .header("x-github-delivery", "net-1")
        .header("x-hub-signature-256", sign(SECRET.as_bytes(), &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);

    // Announce 10 MiB, send a few bytes: the answer comes before the body.
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /webhooks/github HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\n\
         x-github-event: push\r\nx-github-delivery: net-2\r\nx-hub-signature-256: {}\r\n\r\n{{",
        10 << 20,
        sign(SECRET.as_bytes(), b"{}"),
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 1024];
    let n = socket.read(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    drop(socket);

    cancel.cancel();
    server.await.unwrap().unwrap();
    assert!(rig.store.delivery("net-1").unwrap().is_some());
    assert!(rig.store.delivery("net-2").unwrap().is_none());
}

#[tokio::test]
async fn explain_is_not_served_on_the_tcp_port() {
    // It shows stored payloads: only the admin socket (mode 0600) answers it.
    let rig = Rig::new(&[SECRET]);
    let (status, _) = rig.get("/explain/5").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
