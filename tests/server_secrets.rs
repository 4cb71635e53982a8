//! Canary webhook secrets never show: not in logs (at every level), metrics, `/status`,
//! `/readyz`, error bodies or `Debug` output, whatever the requests do.

mod webhook_support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::Request;
use tracing_subscriber::fmt::MakeWriter;
use webhook_support::*;

/// Every log line, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

fn assert_no_secret(place: &str, text: &str) {
    for secret in [SECRET, OLD_SECRET] {
        assert!(
            !text.contains(secret),
            "{place} shows a webhook secret:\n{text}"
        );
        assert!(
            !text.contains(&secret[7..]),
            "{place} shows part of a webhook secret"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn webhook_secrets_appear_in_no_log_metric_status_or_error_body() {
    let logs = Captured::default();
    // Global, so the blocking threads that store deliveries log here too.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .init();

    let rig = Rig::with_max_body(&[SECRET, OLD_SECRET], 16 << 10);
    let body = fixture("check_suite.completed.json");
    let mut bodies = Vec::new();
    let mut requests = vec![
        signed("check_suite", "c-1", body.clone(), SECRET),
        signed("check_suite", "c-1", body.clone(), OLD_SECRET),
        signed("check_suite", "c-2", body.clone(), "wrong"),
        signed("check_suite", "c-3", b"{not json".to_vec(), SECRET),
        signed("ping", "c-4", fixture("ping.json"), SECRET),
        signed(
            "pull_request",
            "c-5",
            fixture("pull_request.opened.json"),
            SECRET,
        ),
    ];
    // The secret itself sent as the signature, and as a malformed digest.
    for value in [SECRET.to_owned(), format!("sha256={SECRET}")] {
        let mut request = signed("check_suite", "c-6", body.clone(), SECRET);
        request
            .headers_mut()
            .insert("x-hub-signature-256", value.parse().unwrap());
        requests.push(request);
    }
    requests.push(
        Request::post("/webhooks/github")
            .header("x-github-event", "check_suite")
            .body(Body::from(body.clone()))
            .unwrap(),
    );
    for request in requests {
        let (status, answer) = rig.send(request).await;
        bodies.push(format!("{status} {answer}"));
    }
    for path in ["/status", "/metrics", "/readyz", "/healthz", "/nope"] {
        let (status, text) = rig.get(path).await;
        bodies.push(format!("{path} {status} {text}"));
    }
    // Keep a rejection apart from the first so the throttled log writes it too.
    tokio::time::advance(std::time::Duration::from_millis(1100)).await;
    let (status, answer) = rig.send(signed("check_suite", "c-7", body, "wrong")).await;
    bodies.push(format!("{status} {answer}"));

    let all = bodies.join("\n");
    assert!(all.contains("202 Accepted"), "{all}");
    assert!(all.contains("401 Unauthorized"));
    assert!(all.contains("413 Payload Too Large"));
    assert!(all.contains("400 Bad Request"));
    assert!(all.contains("sentinel_webhook_deliveries_total"));
    assert_no_secret("responses", &all);

    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let rejected = logged.matches("Webhook delivery rejected").count();
    assert!(
        rejected >= 2,
        "one line per second of rejections:\n{logged}"
    );
    assert!(logged.contains("bad signature"));
    assert_no_secret("logs", &logged);

    assert_no_secret("Debug", &format!("{:?}", rig.state.webhooks));
}
