//! Signatures of GitHub deliveries: good, bad, missing, malformed and rotated secrets, checked
//! over the raw body before anything is parsed.

mod webhook_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use futures::StreamExt;
use webhook_support::*;

/// A body that counts the chunks taken from it.
fn counted_body(chunks: usize, chunk: usize, pulled: Arc<AtomicUsize>) -> Body {
    let stream = futures::stream::iter(0..chunks).map(move |_| {
        pulled.fetch_add(1, Ordering::SeqCst);
        Ok::<_, std::io::Error>(Bytes::from(vec![b' '; chunk]))
    });
    Body::from_stream(stream)
}

#[tokio::test]
async fn a_good_signature_stores_the_delivery_and_its_event_and_answers_202() {
    let rig = Rig::new(&[SECRET]);
    let body = fixture("pull_request.opened.json");
    let (status, answer) = rig
        .send(signed("pull_request", "d-1", body.clone(), SECRET))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(answer["delivery"], "d-1");

    let stored = rig.store.delivery("d-1").unwrap().unwrap();
    assert_eq!(stored.event, "pull_request");
    let event = rig.store.event_by_id("github/d-1").unwrap().unwrap();
    assert_eq!(event.kind, "github.pull_request");
    assert_eq!(event.data["action"], "opened");
    assert_eq!(event.data["delivery"], "d-1");
    assert_eq!(
        event.data["payload"],
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()
    );
    // The payload is stored once, compressed, in the event; the delivery is a small marker.
    let stats = rig.store.stats().unwrap();
    let tree = |name| stats.trees.iter().find(|t| t.tree == name).unwrap().bytes;
    let events = tree(codegen_sentinel::store::TreeName::Events);
    assert!(
        events < body.len() as u64 / 4,
        "events tree holds {events} bytes for a {} byte body",
        body.len()
    );
    assert!(tree(codegen_sentinel::store::TreeName::Deliveries) < 512);
    // The stand-in rules engine wrote in the delivery's own transaction.
    assert_eq!(rig.store.journal_of_event(event.seq).unwrap().len(), 1);
}

#[tokio::test]
async fn a_bad_signature_is_refused_with_401_and_nothing_is_stored() {
    let rig = Rig::new(&[SECRET]);
    let body = fixture("pull_request.opened.json");
    let (status, answer) = rig
        .send(signed("pull_request", "d-1", body.clone(), "wrong"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer, serde_json::json!({"status": "signature required"}));

    // The right signature over other bytes: a tampered body.
    let mut request = signed("pull_request", "d-2", body.clone(), SECRET);
    let mut tampered = body;
    tampered[10] ^= 1;
    *request.body_mut() = Body::from(tampered);
    let (status, _) = rig.send(request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(rig.deliveries(), 0);
    assert!(rig.events().is_empty());
}

#[tokio::test]
async fn a_missing_or_malformed_signature_is_refused_without_reading_the_body() {
    let rig = Rig::new(&[SECRET]);
    for signature in [None, Some("sha1=0123"), Some("sha256=not-hex")] {
        let pulled = Arc::new(AtomicUsize::new(0));
        let mut request = Request::post("/webhooks/github")
            .header("x-github-event", "pull_request")
            .header("x-github-delivery", "d-1");
        if let Some(signature) = signature {
            request = request.header("x-hub-signature-256", signature);
        }
        let body = counted_body(4, 1024, pulled.clone());
        let (status, _) = rig.send(request.body(body).unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{signature:?}");
        assert_eq!(pulled.load(Ordering::SeqCst), 0, "{signature:?}");
    }
    assert_eq!(rig.deliveries(), 0);
}

#[tokio::test]
async fn every_configured_secret_is_accepted_during_a_rotation() {
    let rig = Rig::new(&[SECRET, OLD_SECRET]);
    let body = fixture("issue_comment.created.json");
    for (delivery, secret) in [("d-new", SECRET), ("d-old", OLD_SECRET)] {
        let (status, _) = rig
            .send(signed("issue_comment", delivery, body.clone(), secret))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{delivery}");
    }
    let (status, _) = rig
        .send(signed("issue_comment", "d-x", body, "retired-secret"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(rig.deliveries(), 2);
}

#[tokio::test]
async fn without_a_configured_secret_every_delivery_is_refused() {
    let rig = Rig::new(&[]);
    let body = fixture("issue_comment.created.json");
    let (status, _) = rig.send(signed("issue_comment", "d-1", body, "")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(rig.deliveries(), 0);
}
