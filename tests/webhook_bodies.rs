//! What a delivery's body and headers may be: the size limit (413 without reading it all),
//! bodies that are not JSON objects (400 after a good signature), missing headers, `ping`, a
//! form-encoded payload, a body in many chunks, and a body that never ends.

mod webhook_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use codegen_sentinel::config::DEFAULT_MAX_BODY;
use codegen_sentinel::sources::webhook::{sign, BODY_TIMEOUT};
use futures::StreamExt;
use webhook_support::*;

const CHUNK: usize = 64 << 10;

/// A signed request whose body is `chunks` chunks of JSON-ish bytes, counting those pulled.
fn streamed(chunks: usize, pulled: Arc<AtomicUsize>, length: Option<u64>) -> Request<Body> {
    let stream = futures::stream::iter(0..chunks).map(move |_| {
        pulled.fetch_add(1, Ordering::SeqCst);
        Ok::<_, std::io::Error>(Bytes::from(vec![b' '; CHUNK]))
    });
    let mut request = Request::post("/webhooks/github")
        .header("x-github-event", "push")
        .header("x-github-delivery", "big-1")
        // Any well-formed signature: the size is checked first.
        .header("x-hub-signature-256", sign(SECRET.as_bytes(), b"{}"));
    if let Some(length) = length {
        request = request.header("content-length", length);
    }
    request.body(Body::from_stream(stream)).unwrap()
}

#[tokio::test]
async fn a_declared_length_over_25_mib_is_refused_with_413_before_any_byte_is_read() {
    let rig = Rig::new(&[SECRET]);
    let pulled = Arc::new(AtomicUsize::new(0));
    let request = streamed(401, pulled.clone(), Some(DEFAULT_MAX_BODY + 1));
    let (status, answer) = rig.send(request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer["status"], "payload too large");
    assert_eq!(pulled.load(Ordering::SeqCst), 0);
    assert_eq!(rig.deliveries(), 0);
}

#[tokio::test]
async fn an_undeclared_oversized_body_is_cut_off_at_the_limit() {
    let limit = 1 << 20;
    let rig = Rig::with_max_body(&[SECRET], limit);
    let pulled = Arc::new(AtomicUsize::new(0));
    let total_chunks = 64; // 4 MiB, no Content-Length (chunked)
    let (status, _) = rig.send(streamed(total_chunks, pulled.clone(), None)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let read = pulled.load(Ordering::SeqCst);
    assert_eq!(
        read,
        limit as usize / CHUNK + 1,
        "stops at the first chunk past the limit"
    );
    assert!(read < total_chunks);
    assert_eq!(rig.deliveries(), 0);
}

#[tokio::test]
async fn a_body_of_exactly_the_limit_is_accepted() {
    let body = fixture("issue_comment.created.json");
    let rig = Rig::with_max_body(&[SECRET], body.len() as u64);
    let (status, _) = rig
        .send(signed("issue_comment", "d-1", body.clone(), SECRET))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let rig = Rig::with_max_body(&[SECRET], body.len() as u64 - 1);
    let (status, _) = rig.send(signed("issue_comment", "d-1", body, SECRET)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

/// `body` signed under `secret`, sent in uneven chunks.
fn in_chunks(delivery: &str, body: &[u8], secret: &str) -> Request<Body> {
    let mut parts = Vec::new();
    let mut rest = body;
    for size in [1, 100, 4096, 7, 16 << 10].into_iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (part, more) = rest.split_at(size.min(rest.len()));
        parts.push(Ok::<_, std::io::Error>(Bytes::copy_from_slice(part)));
        rest = more;
    }
    Request::post("/webhooks/github")
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", sign(secret.as_bytes(), body))
        .body(Body::from_stream(futures::stream::iter(parts)))
        .unwrap()
}

#[tokio::test]
async fn a_body_in_many_chunks_is_verified_and_stored_whole() {
    let body = fixture("pull_request.opened.json");
    let rig = Rig::new(&[SECRET]);
    let (status, _) = rig.send(in_chunks("d-1", &body, SECRET)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = rig.send(in_chunks("d-2", &body, "not-the-secret")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let events = rig.events();
    assert_eq!(events.len(), 1);
    let stored = &events[0].data["payload"];
    assert_eq!(
        stored,
        &serde_json::from_slice::<serde_json::Value>(&body).unwrap()
    );
}

#[tokio::test]
async fn malformed_json_after_a_good_signature_is_a_400_and_nothing_is_stored() {
    let rig = Rig::new(&[SECRET]);
    let mut truncated = fixture("pull_request.opened.json");
    truncated.truncate(1000);
    for (delivery, body) in [
        ("d-trunc", truncated),
        ("d-array", b"[1, 2]".to_vec()),
        ("d-empty", Vec::new()),
    ] {
        let (status, answer) = rig
            .send(signed("pull_request", delivery, body, SECRET))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{delivery}");
        assert!(
            answer["status"].as_str().unwrap().contains("JSON"),
            "{answer}"
        );
    }
    assert_eq!(rig.deliveries(), 0);
    assert!(rig.events().is_empty());
}

#[tokio::test]
async fn missing_or_odd_event_and_delivery_headers_are_a_400() {
    let rig = Rig::new(&[SECRET]);
    let body = fixture("issue_comment.created.json");
    let mut no_event = signed("issue_comment", "d-1", body.clone(), SECRET);
    no_event.headers_mut().remove("x-github-event");
    let mut no_delivery = signed("issue_comment", "d-1", body.clone(), SECRET);
    no_delivery.headers_mut().remove("x-github-delivery");
    let odd_event = signed("Issue-Comment", "d-1", body.clone(), SECRET);
    let odd_delivery = signed("issue_comment", "../d-1", body, SECRET);
    for request in [no_event, no_delivery, odd_event, odd_delivery] {
        let (status, _) = rig.send(request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    assert_eq!(rig.deliveries(), 0);
}

#[tokio::test]
async fn ping_is_answered_200_and_not_recorded() {
    let rig = Rig::new(&[SECRET]);
    let (status, answer) = rig
        .send(signed("ping", "p-1", fixture("ping.json"), SECRET))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["status"], "pong");
    assert_eq!(rig.deliveries(), 0);
    // A ping is signed like everything else.
    let (status, _) = rig
        .send(signed("ping", "p-2", fixture("ping.json"), "wrong"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_form_encoded_delivery_is_read_from_its_payload_field() {
    let rig = Rig::new(&[SECRET]);
    let json = String::from_utf8(fixture("issue_comment.created.json")).unwrap();
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &json)
        .finish();
    let mut request = signed("issue_comment", "f-1", body.into_bytes(), SECRET);
    request.headers_mut().insert(
        "content-type",
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    let (status, _) = rig.send(request).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let event = rig.store.event_by_id("github/f-1").unwrap().unwrap();
    assert_eq!(event.data["action"], "created");
}

#[tokio::test(start_paused = true)]
async fn a_body_that_never_ends_is_cut_off_after_the_body_timeout() {
    let rig = Rig::new(&[SECRET]);
    let started = tokio::time::Instant::now();
    let stream = futures::stream::pending::<Result<Bytes, std::io::Error>>();
    let request = Request::post("/webhooks/github")
        .header("x-github-event", "push")
        .header("x-github-delivery", "slow-1")
        .header("x-hub-signature-256", sign(SECRET.as_bytes(), b"{}"))
        .body(Body::from_stream(stream))
        .unwrap();
    let (status, _) = rig.send(request).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
    assert_eq!(started.elapsed(), BODY_TIMEOUT);
}
