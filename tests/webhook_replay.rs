//! Redeliveries: a delivery id seen before is acknowledged and not processed again, also after
//! the store was closed and reopened, and when copies arrive at the same time.

mod webhook_support;

use axum::http::StatusCode;
use codegen_sentinel::store::retention::MIN_DELIVERY_AGE;
use codegen_sentinel::store::RetentionPolicy;
use webhook_support::*;

#[tokio::test]
async fn a_replayed_delivery_id_is_acknowledged_and_processed_once() {
    let rig = Rig::new(&[SECRET]);
    let body = fixture("pull_request.opened.json");
    let (first, _) = rig
        .send(signed("pull_request", "r-1", body.clone(), SECRET))
        .await;
    let (second, answer) = rig.send(signed("pull_request", "r-1", body, SECRET)).await;
    assert_eq!(first, StatusCode::ACCEPTED);
    assert_eq!(second, StatusCode::OK);
    assert_eq!(answer["status"], "duplicate delivery, already processed");
    assert_eq!(rig.deliveries(), 1);
    let events = rig.events();
    assert_eq!(events.len(), 1);
    assert_eq!(rig.store.journal_of_event(events[0].seq).unwrap().len(), 1);
}

#[tokio::test]
async fn a_replay_after_reopening_the_store_is_not_processed_again() {
    let rig = Rig::new(&[SECRET]);
    let body = fixture("check_suite.completed.json");
    let (status, _) = rig
        .send(signed("check_suite", "r-2", body.clone(), SECRET))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let rig = rig.reopen();
    let (status, _) = rig
        .send(signed("check_suite", "r-2", body.clone(), SECRET))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rig.events().len(), 1);
    // A different delivery of the same payload is a new delivery.
    let (status, _) = rig.send(signed("check_suite", "r-3", body, SECRET)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(rig.events().len(), 2);
}

#[tokio::test]
async fn concurrent_copies_of_one_delivery_are_processed_once() {
    let rig = Rig::new(&[SECRET]);
    let body = fixture("issue_comment.created.json");
    let sends = (0..8).map(|_| rig.send(signed("issue_comment", "r-4", body.clone(), SECRET)));
    let statuses: Vec<StatusCode> = futures::future::join_all(sends)
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    let accepted = statuses
        .iter()
        .filter(|s| **s == StatusCode::ACCEPTED)
        .count();
    assert_eq!(accepted, 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| s.is_success()));
    assert_eq!(rig.events().len(), 1);
}

#[tokio::test]
async fn delivery_ids_outlive_a_short_retention_for_a_week() {
    let rig = Rig::new(&[SECRET]);
    let body = fixture("issue_comment.created.json");
    rig.send(signed("issue_comment", "r-5", body.clone(), SECRET))
        .await;
    let policy = RetentionPolicy {
        max_age: std::time::Duration::from_secs(3600),
    };
    let six_days =
        chrono::Duration::from_std(MIN_DELIVERY_AGE).unwrap() - chrono::Duration::days(1);
    rig.store.prune_once(now() + six_days, &policy).unwrap();
    // The event is gone with the short retention; the delivery id still dedupes.
    assert!(rig.events().is_empty());
    let (status, _) = rig.send(signed("issue_comment", "r-5", body, SECRET)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(rig.events().is_empty());
}
