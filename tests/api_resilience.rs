//! The rate budget and the fault paths: throttling, server errors, timeouts, dropped connections
//! and malformed answers, all against the simulator.

mod common;

use std::sync::Arc;
use std::time::Duration;

use codegen_sentinel::api::{
    ApiError, CreateRunInput, OrgId, PageRequest, RateBudget, RunFilter, RunId,
};
use codegen_sentinel::retry::RetryPolicy;
use codegen_sentinel::sim::{CreateOutcome, Fault, RouteClass, RunPlan};
use common::*;
use tokio::time::Instant;

const O: OrgId = OrgId(ORG);

fn statuses(sim: &codegen_sentinel::sim::Simulator) -> Vec<u16> {
    sim.requests().iter().map(|r| r.status).collect()
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_200_gets_waits_for_the_budget_and_never_sees_a_429() {
    let server = serve(seeded_sim()).await;
    let sim = server.sim.clone();
    let run = RunId(sim.create_run(ORG, RunPlan::completes()));
    let client = client_with(
        &server.base_url,
        Arc::new(RateBudget::published()),
        RetryPolicy::never(),
    );
    sim.clear_requests();

    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move { client.get_run(O, run).await }));
    }
    for task in tasks {
        task.await.unwrap().expect("no request fails");
    }
    let elapsed = start.elapsed();

    // 60 per 30 s: the 200th request cannot start before three full windows have passed.
    assert!(elapsed >= Duration::from_secs(90), "took only {elapsed:?}");
    let log = sim.requests();
    assert_eq!(log.len(), 200);
    assert!(log.iter().all(|r| r.status == 200), "{:?}", statuses(&sim));
    let (waits, _) = client.budget().wait_stats();
    assert_eq!(waits, 140, "every request after the first 60 waited");
}

#[tokio::test(start_paused = true)]
async fn a_429_without_retry_after_is_retried_with_backoff() {
    let server = serve(seeded_sim()).await;
    let sim = server.sim.clone();
    let client = client(&server.base_url);
    sim.inject(Fault::RateLimited, 2, None);
    client.me().await.expect("succeeds after two 429s");
    assert_eq!(statuses(&sim), vec![429, 429, 200]);
}

#[tokio::test(start_paused = true)]
async fn a_429_with_retry_after_is_honoured_before_the_next_request() {
    let server = serve(seeded_sim()).await;
    let sim = server.sim.clone();
    sim.set_retry_after(Some(7));
    let client = client(&server.base_url);
    sim.inject(Fault::RateLimited, 1, None);
    client.me().await.expect("succeeds after the wait");
    let log = sim.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].status, 429);
    assert!(log[1].at.duration_since(log[0].at) >= Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn the_budget_is_held_back_after_a_429_with_retry_after() {
    let server = serve(seeded_sim()).await;
    let sim = server.sim.clone();
    sim.set_retry_after(Some(20));
    let client = client_with(
        &server.base_url,
        Arc::new(RateBudget::published()),
        RetryPolicy::never(),
    );
    sim.inject(Fault::RateLimited, 1, None);
    let err = client.me().await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(20)));
    // Another call of the same class waits out the server's word before it is sent.
    client.me().await.unwrap();
    let log = sim.requests();
    assert!(log[1].at.duration_since(log[0].at) >= Duration::from_secs(20));
}

#[tokio::test]
async fn the_legacy_429_body_is_read() {
    let server = serve(seeded_sim()).await;
    let sim = server.sim.clone();
    sim.set_legacy_429_body(true);
    let client = client_with(
        &server.base_url,
        Arc::new(RateBudget::unlimited()),
        RetryPolicy::never(),
    );
    sim.inject(Fault::RateLimited, 1, None);
    match client.me().await.unwrap_err() {
        ApiError::RateLimited { message, .. } => assert_eq!(message, "Rate limit exceeded"),
        other => panic!("expected a 429, got {other}"),
    }
}

#[tokio::test]
async fn server_errors_are_retried_for_reads_only() {
    let server = serve(seeded_sim()).await;
    let sim = server.sim.clone();
    let client = client(&server.base_url);

    sim.inject(Fault::Status(503), 2, None);
    client.me().await.expect("a GET survives two 503s");
    assert_eq!(statuses(&sim), vec![503, 503, 200]);

    sim.clear_requests();
    sim.inject(Fault::Status(500), 1, Some(RouteClass::Create));
    let input = CreateRunInput {
        prompt: "do it once".into(),
        ..Default::default()
    };
    let err = client.create_run(O, &input).await.unwrap_err();
    assert!(matches!(err, ApiError::Server { status: 500, .. }), "{err}");
    assert_eq!(
        statuses(&sim),
        vec![500],
        "a create is never repeated blindly"
    );
}

#[tokio::test]
async fn a_throttled_create_is_sent_again_because_it_was_not_processed() {
    let server = serve(seeded_sim()).await;
    let sim = server.sim.clone();
    let client = client(&server.base_url);
    sim.inject(Fault::RateLimited, 1, Some(RouteClass::Create));
    let input = CreateRunInput {
        prompt: "hello".into(),
        ..Default::default()
    };
    client.create_run(O, &input).await.unwrap();
    assert_eq!(statuses(&sim), vec![429, 200]);
}

#[tokio::test]
async fn quota_exceeded_is_final() {
    let server = serve(seeded_sim()).await;
    let sim = server.sim.clone();
    sim.set_create_outcome(CreateOutcome::QuotaExceeded);
    let client = client(&server.base_url);
    let input = CreateRunInput {
        prompt: "hello".into(),
        ..Default::default()
    };
    let err = client.create_run(O, &input).await.unwrap_err();
    assert!(matches!(err, ApiError::QuotaExceeded { .. }), "{err}");
    assert_eq!(statuses(&sim), vec![402]);
}

#[tokio::test(start_paused = true)]
async fn a_slow_answer_times_out_and_reads_are_retried() {
    let server = serve(seeded_sim()).await;
    let sim = server.sim.clone();
    let client = client(&server.base_url); // 5 s per attempt
    sim.inject(Fault::Delay(Duration::from_secs(60)), 1, None);
    client.me().await.expect("the second attempt is answered");
    assert_eq!(sim.requests().len(), 2);

    sim.clear_requests();
    sim.inject(
        Fault::Delay(Duration::from_secs(60)),
        1,
        Some(RouteClass::AnalyzeLogs),
    );
    let err = client.analyze_logs(O, SANDBOX).await.unwrap_err();
    assert!(matches!(err, ApiError::Timeout(_)), "{err}");
    assert_eq!(
        sim.requests().len(),
        1,
        "analyze-logs is not repeated blindly"
    );
}

#[tokio::test]
async fn a_dropped_connection_is_a_transport_error_and_reads_recover() {
    let server = serve(seeded_sim()).await;
    let sim = server.sim.clone();
    let never = client_with(
        &server.base_url,
        Arc::new(RateBudget::unlimited()),
        RetryPolicy::never(),
    );
    sim.inject(Fault::DropConnection, 1, None);
    let err = never.me().await.unwrap_err();
    assert!(matches!(err, ApiError::Transport(_)), "{err}");

    let client = client(&server.base_url);
    sim.inject(Fault::DropConnection, 2, None);
    client.me().await.expect("recovers after two drops");
}

#[tokio::test]
async fn malformed_json_is_a_decode_error_never_a_panic() {
    let server = serve(seeded_sim()).await;
    let sim = server.sim.clone();
    let client = client(&server.base_url);
    sim.inject(Fault::MalformedJson, 1, None);
    let err = client.me().await.unwrap_err();
    assert!(matches!(err, ApiError::Decode { .. }), "{err}");
    assert_eq!(sim.requests().len(), 1, "a bad answer is not retried");
}

#[tokio::test]
async fn a_type_error_names_the_json_path() {
    let server = serve(seeded_sim()).await;
    let sim = server.sim.clone();
    sim.create_run(ORG, RunPlan::completes());
    let client = client(&server.base_url);
    sim.inject(Fault::WrongType, 1, None);
    let err = client
        .list_runs(O, &RunFilter::default(), PageRequest::default())
        .await
        .unwrap_err();
    match err {
        ApiError::Decode { path, .. } => assert!(path.starts_with("items"), "path {path}"),
        other => panic!("expected a decode error, got {other}"),
    }
}

#[tokio::test]
async fn naive_timestamps_and_extra_fields_decode() {
    let server = serve(seeded_sim()).await;
    let sim = server.sim.clone();
    sim.set_timestamp_style(codegen_sentinel::sim::TimestampStyle::Naive);
    sim.set_extra_fields(true);
    let run = RunId(sim.create_run(ORG, RunPlan::completes()));
    let client = client(&server.base_url);
    let got = client.get_run(O, run).await.unwrap();
    let at = got.created_at.expect("created_at");
    assert!(!at.raw().contains('T'), "naive style: {}", at.raw());
    assert!(at.to_utc().is_some());
}
