//! Fault injection, serialization quirks and the request log, over real HTTP.

mod sim_support;

use std::time::Duration;

use codegen_sentinel::sim::{ErrorStyle, Fault, RouteClass, TimestampStyle};
use reqwest::Method;
use serde_json::{json, Value};
use sim_support::{start, ORG, OTHER_ORG, TOKEN};

#[tokio::test]
async fn injected_status_has_a_body_and_is_used_up() {
    let env = start().await;
    env.sim.inject(Fault::Status(503), 2, None);
    for _ in 0..2 {
        let answer = env.get("/v1/users/me").await;
        assert_eq!(answer.status, 503);
        assert_eq!(
            answer.body,
            json!({"message": "Service Unavailable", "status_code": 503})
        );
    }
    assert_eq!(env.get("/v1/users/me").await.status, 200);
}

#[tokio::test]
async fn faults_aimed_at_a_class_skip_other_routes() {
    let env = start().await;
    env.sim
        .inject(Fault::Status(500), 1, Some(RouteClass::Create));
    assert_eq!(env.get("/v1/users/me").await.status, 200);
    let path = format!("/v1/organizations/{ORG}/agent/run");
    assert_eq!(env.post(&path, json!({"prompt": "x"})).await.status, 500);
    assert_eq!(env.post(&path, json!({"prompt": "x"})).await.status, 200);
}

#[tokio::test(start_paused = true)]
async fn delay_sleeps_on_the_tokio_clock() {
    let env = start().await;
    env.sim
        .inject(Fault::Delay(Duration::from_secs(45)), 1, None);
    let before = tokio::time::Instant::now();
    assert_eq!(env.get("/v1/users/me").await.status, 200);
    assert!(before.elapsed() >= Duration::from_secs(45));
    let before = tokio::time::Instant::now();
    env.get("/v1/users/me").await;
    assert!(before.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn dropped_connection_gives_no_complete_response() {
    let env = start().await;
    env.sim.inject(Fault::DropConnection, 1, None);
    // The socket closes before any response byte: the send itself fails.
    let sent = env
        .http
        .get(env.url("/v1/users/me"))
        .bearer_auth(TOKEN)
        .send()
        .await;
    let err = sent.expect_err("no response head arrives");
    assert!(!err.is_status() && !err.is_timeout(), "{err:?}");
    assert_eq!(
        env.get("/v1/users/me").await.status,
        200,
        "the next request works"
    );
    let statuses: Vec<u16> = env.sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [0, 200]);
}

#[tokio::test(start_paused = true)]
async fn dropped_connection_under_paused_time() {
    let env = start().await;
    env.sim
        .inject(Fault::DropConnection, 1, Some(RouteClass::Standard));
    let sent = env
        .http
        .get(env.url("/v1/users/me"))
        .bearer_auth(TOKEN)
        .send()
        .await;
    assert!(sent.is_err());
    assert_eq!(env.get("/v1/users/me").await.status, 200);
}

#[tokio::test]
async fn dropped_connection_without_a_socket_breaks_the_body() {
    use tower::ServiceExt;
    let sim = sim_support::world(codegen_sentinel::sim::SimConfig::default());
    sim.inject(Fault::DropConnection, 1, None);
    let request = axum::http::Request::get("/v1/users/me")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(axum::body::Body::empty())
        .expect("request builds");
    let response = sim.router().oneshot(request).await.expect("infallible");
    assert!(axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .is_err());
}

#[tokio::test]
async fn malformed_json_is_a_truncated_body() {
    let env = start().await;
    env.sim.inject(Fault::MalformedJson, 1, None);
    let resp = env
        .http
        .get(env.url("/v1/users/me"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("response");
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.expect("body");
    assert!(!text.is_empty());
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
}

#[tokio::test]
async fn wrong_type_turns_an_id_into_a_string() {
    let env = start().await;
    let id = env.create_run("Typed").await;
    env.sim.inject(Fault::WrongType, 2, None);
    let run = env
        .get(&format!("/v1/organizations/{ORG}/agent/run/{id}"))
        .await;
    assert_eq!(run.status, 200);
    assert_eq!(run.body["id"], json!(id.to_string()));
    let page = env
        .get(&format!("/v1/organizations/{ORG}/agent/runs"))
        .await;
    assert_eq!(page.body["items"][0]["id"], json!(id.to_string()));
}

#[tokio::test]
async fn timestamp_styles() {
    let env = start().await;
    let id = env.create_run("Clock").await;
    let rfc = env.run(id).await["created_at"].as_str().map(str::to_owned);
    assert_eq!(rfc.as_deref(), Some("2025-06-21T11:20:04.338398Z"));
    env.sim.set_timestamp_style(TimestampStyle::Naive);
    let naive = env.run(id).await["created_at"].as_str().map(str::to_owned);
    assert_eq!(naive.as_deref(), Some("2025-06-21 11:20:04.338398"));
    env.sim.advance(Duration::from_secs(5));
    let logs = env
        .get(&format!(
            "/v1/alpha/organizations/{ORG}/agent/run/{id}/logs"
        ))
        .await;
    assert_eq!(
        logs.body["logs"][0]["created_at"],
        "2025-06-21 11:20:06.338398"
    );
}

#[tokio::test]
async fn extra_fields_appear_on_every_object_when_switched_on() {
    let env = start().await;
    let id = env.create_run("Lenient").await;
    let plain = env.run(id).await;
    env.sim.set_extra_fields(true);
    let extra = env.run(id).await;
    let plain_keys = plain.as_object().map(|o| o.len()).unwrap_or_default();
    let extra_keys = extra.as_object().map(|o| o.len()).unwrap_or_default();
    assert!(extra_keys > plain_keys);
    for (k, v) in plain.as_object().expect("object") {
        assert_eq!(&extra[k], v, "{k} unchanged");
    }
    let page = env.get(&format!("/v1/organizations/{ORG}/repos")).await;
    assert!(page.body.get("_revision").is_some());
    assert!(page.body["items"][0].get("_revision").is_some());
}

#[tokio::test]
async fn detail_error_style() {
    let env = start().await;
    env.sim.set_error_style(ErrorStyle::Detail);
    let answer = env
        .get(&format!("/v1/organizations/{OTHER_ORG}/users"))
        .await;
    assert_eq!(answer.status, 403);
    assert_eq!(
        answer.body,
        json!({"detail": "You do not have access to this organization."})
    );
    let answer = env
        .get(&format!("/v1/organizations/{ORG}/agent/run/424242"))
        .await;
    assert_eq!(answer.body, json!({"detail": "Agent run not found."}));
}

#[tokio::test]
async fn request_log_records_rejected_requests_too() {
    let env = start().await;
    env.get("/v1/users/me").await;
    env.call(Method::GET, "/v1/users/me", None, None).await;
    env.get(&format!("/v1/organizations/{OTHER_ORG}/users?skip=1"))
        .await;
    env.post(
        &format!("/v1/organizations/{ORG}/agent/run"),
        json!({"prompt": "p"}),
    )
    .await;
    env.get("/v1/nowhere").await;
    let log = env.sim.requests();
    let seen: Vec<(&str, &str, u16, bool)> = log
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str(), r.status, r.authorized))
        .collect();
    assert_eq!(
        seen,
        [
            ("GET", "/v1/users/me", 200, true),
            ("GET", "/v1/users/me", 401, false),
            ("GET", "/v1/organizations/8/users", 403, false),
            ("POST", "/v1/organizations/7/agent/run", 200, true),
            ("GET", "/v1/nowhere", 404, true),
        ]
    );
    assert_eq!(log[2].query.as_deref(), Some("skip=1"));
    assert_eq!(log[3].body, Some(json!({"prompt": "p"})));
    assert!(log.windows(2).all(|w| w[0].at <= w[1].at));
    env.sim.clear_requests();
    assert!(env.sim.requests().is_empty());
}
