//! Rate limits under tokio paused time: the 61st standard request in 30 s is refused, refused
//! requests do not count, windows recover, classes and tokens are separate, and the 429 body and
//! `Retry-After` follow their switches.

mod sim_support;

use std::time::Duration;

use codegen_sentinel::sim::RouteClass;
use reqwest::Method;
use serde_json::json;
use sim_support::{start, ORG, OTHER_TOKEN};

#[tokio::test(start_paused = true)]
async fn sixty_first_standard_get_is_429_and_the_window_recovers() {
    let env = start().await;
    for i in 0..60 {
        assert_eq!(env.get("/v1/users/me").await.status, 200, "request {i}");
    }
    let refused = env.get("/v1/users/me").await;
    assert_eq!(refused.status, 429);
    assert_eq!(
        refused.body,
        json!({"message": "Rate limit exceeded. Please try again later.", "status_code": 429})
    );
    assert!(refused.headers.get("retry-after").is_none());

    // Other classes and other tokens have their own windows.
    let logs_path = format!("/v1/alpha/organizations/{ORG}/agent/run/1/logs");
    assert_eq!(env.get(&logs_path).await.status, 404);
    let other = env
        .call(Method::GET, "/v1/users/me", Some(OTHER_TOKEN), None)
        .await;
    assert_eq!(other.status, 200);

    // Refused requests do not count: keep knocking, the window still frees at 30 s.
    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(env.get("/v1/users/me").await.status, 429);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(env.get("/v1/users/me").await.status, 200);
}

#[tokio::test(start_paused = true)]
async fn create_is_limited_to_ten_per_minute() {
    let env = start().await;
    for _ in 0..10 {
        env.create_run("Burst").await;
    }
    let path = format!("/v1/organizations/{ORG}/agent/run");
    assert_eq!(env.post(&path, json!({"prompt": "x"})).await.status, 429);
    assert_eq!(env.get("/v1/users/me").await.status, 200);
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(env.post(&path, json!({"prompt": "x"})).await.status, 200);
}

#[tokio::test(start_paused = true)]
async fn analyze_logs_allows_five_per_minute() {
    let env = start().await;
    let path = format!("/v1/organizations/{ORG}/sandbox/42/analyze-logs");
    for _ in 0..5 {
        let answer = env
            .call(Method::POST, &path, Some(sim_support::TOKEN), None)
            .await;
        assert_eq!(answer.status, 200);
    }
    let answer = env
        .call(Method::POST, &path, Some(sim_support::TOKEN), None)
        .await;
    assert_eq!(answer.status, 429);
}

#[tokio::test(start_paused = true)]
async fn retry_after_and_legacy_body_are_switchable() {
    let env = start().await;
    env.sim.set_retry_after(Some(17));
    env.sim.set_legacy_429_body(true);
    env.sim
        .inject(codegen_sentinel::sim::Fault::RateLimited, 1, None);
    let answer = env.get("/v1/users/me").await;
    assert_eq!(answer.status, 429);
    assert_eq!(
        answer.body,
        json!({"detail": "Rate limit exceeded", "status_code": 429})
    );
    assert_eq!(
        answer
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("17")
    );
    assert_eq!(
        env.get("/v1/users/me").await.status,
        200,
        "the fault was used up"
    );
}

#[tokio::test(start_paused = true)]
async fn limits_can_be_switched_off_and_unlimited_routes_never_429() {
    let env = start().await;
    for _ in 0..100 {
        assert_eq!(env.get("/v1/mcp-providers").await.status, 200);
    }
    env.sim.set_rate_limits(false);
    for _ in 0..100 {
        assert_eq!(env.get("/v1/users/me").await.status, 200);
    }
}

#[tokio::test(start_paused = true)]
async fn forced_429_can_target_one_route_class() {
    let env = start().await;
    env.sim.inject(
        codegen_sentinel::sim::Fault::RateLimited,
        2,
        Some(RouteClass::Logs),
    );
    assert_eq!(env.get("/v1/users/me").await.status, 200);
    let id = env.create_run("Logs").await;
    let path = format!("/v1/alpha/organizations/{ORG}/agent/run/{id}/logs");
    assert_eq!(env.get(&path).await.status, 429);
    assert_eq!(env.get(&path).await.status, 429);
    assert_eq!(env.get(&path).await.status, 200);
}
