//! Notifiers against a test receiver: the webhook envelope, its headers and signature, Slack's
//! body, the same key and bytes on a repeat, and the receiver's Retry-After respected.

mod github_fake;

use std::time::Duration;

use codegen_sentinel::actions::notify::signature;
use codegen_sentinel::actions::{self, ActionError, Notifier, Notifiers, StepCall};
use github_fake::{one_scope, serve, Chaos, Fault, Receiver, Served, TokioClock};
use secrecy::SecretString;
use serde_json::{json, Value};

const SECRET: &str = "hook-secret";

struct Rig {
    receiver: Receiver,
    chaos: Chaos,
    notifiers: Notifiers,
    _served: Served,
}

async fn rig() -> Rig {
    let receiver = Receiver::new(Some(SECRET));
    let chaos = Chaos::new(one_scope, TokioClock::new().func());
    let served = serve(chaos.wrap(receiver.router())).await;
    let url = |path: &str| SecretString::from(format!("{}{path}", served.base_url));
    let notifiers = Notifiers::new([
        (
            "audit".to_owned(),
            Notifier::webhook(url("/hook"), Some(SecretString::from(SECRET)))
                .timeout(Duration::from_secs(5)),
        ),
        ("plain".to_owned(), Notifier::webhook(url("/plain"), None)),
        ("ops".to_owned(), Notifier::slack(url("/slack"))),
    ]);
    Rig {
        receiver,
        chaos,
        notifiers,
        _served: served,
    }
}

fn context() -> Value {
    json!({
        "rule": {"name": "diagnose-failed-runs", "description": "Tell ops."},
        "event": {"id": "run/7/5/3/finished", "type": "run.finished", "source": "poll"},
        "run": {"id": 5, "organization_id": 7, "status": "FAILED"},
        "pr": null,
        "vars": {"secret_looking": "not sent"},
    })
}

impl Rig {
    async fn notify(&self, params: Value, key: &str) -> Result<Value, ActionError> {
        let spec = actions::action("notify").unwrap();
        let params = actions::prepare(spec, params.as_object().unwrap()).unwrap();
        let ctx = context();
        let call = StepCall {
            action: spec,
            params: &params,
            context: &ctx,
            key,
            uncertain: false,
            job_id: 3,
            rule: "diagnose-failed-runs",
        };
        self.notifiers.execute(&call).await
    }
}

#[tokio::test]
async fn a_webhook_gets_the_envelope_the_key_and_a_valid_signature() {
    let rig = rig().await;
    let out = rig
        .notify(
            json!({"to": "audit", "text": "Run 5 failed", "payload": {"n": 1}}),
            "abc-3-2",
        )
        .await
        .unwrap();
    assert_eq!(out, json!({"status": 200}));
    let got = rig.receiver.deliveries();
    assert_eq!(got.len(), 1);
    let d = &got[0];
    assert_eq!(d.path, "/hook");
    assert_eq!(d.idempotency_key.as_deref(), Some("abc-3-2"));
    assert!(d.signature_valid, "{:?}", d.signature);
    assert_eq!(
        d.signature.as_deref(),
        Some(signature(SECRET.as_bytes(), &d.raw).as_str())
    );
    assert_eq!(
        d.body,
        json!({
            "rule": {"name": "diagnose-failed-runs", "description": "Tell ops."},
            "event": {"id": "run/7/5/3/finished", "type": "run.finished", "source": "poll"},
            "run": {"id": 5, "organization_id": 7, "status": "FAILED"},
            "pr": null,
            "text": "Run 5 failed",
            "payload": {"n": 1},
            "idempotency_key": "abc-3-2",
        })
    );
    assert_eq!(
        rig.chaos.log()[0].header("content-type").as_deref(),
        Some("application/json")
    );
}

#[tokio::test]
async fn an_unsigned_webhook_and_slack_get_their_bodies() {
    let rig = rig().await;
    rig.notify(json!({"to": "plain", "text": "t"}), "k-1-0")
        .await
        .unwrap();
    rig.notify(json!({"to": "ops", "text": "Run 5 failed"}), "k-1-1")
        .await
        .unwrap();
    let got = rig.receiver.deliveries();
    assert_eq!(got[0].signature, None);
    assert_eq!(got[1].path, "/slack");
    assert_eq!(got[1].body, json!({"text": "Run 5 failed"}));
    assert_eq!(got[1].idempotency_key.as_deref(), Some("k-1-1"));
    let err = rig.notify(json!({"to": "ops"}), "k").await.unwrap_err();
    assert!(err.is_permanent(), "slack needs text: {err:?}");
    let err = rig
        .notify(json!({"to": "nobody", "text": "t"}), "k")
        .await
        .unwrap_err();
    assert!(err.is_permanent() && err.message.contains("nobody"));
}

#[tokio::test]
async fn a_repeat_after_an_uncertain_failure_is_byte_identical() {
    let rig = rig().await;
    rig.chaos.inject(Fault::StatusAfter(502), 1, None);
    let params = json!({"to": "audit", "text": "once", "payload": {"z": [1, 2]}});
    let err = rig.notify(params.clone(), "k-9-0").await.unwrap_err();
    assert!(!err.is_permanent() && err.maybe_applied, "{err:?}");
    rig.notify(params, "k-9-0").await.unwrap();
    let got = rig.receiver.deliveries();
    assert_eq!(got.len(), 2, "at least once: the receiver saw both");
    assert_eq!(got[0].raw, got[1].raw);
    assert_eq!(got[0].idempotency_key, got[1].idempotency_key);
    assert!(got.iter().all(|d| d.signature_valid));
}

#[tokio::test(start_paused = true)]
async fn the_receivers_retry_after_is_respected() {
    let rig = rig().await;
    rig.chaos.inject(Fault::RateLimited(Some(20)), 1, None);
    let params = json!({"to": "audit", "text": "x"});
    let err = rig.notify(params.clone(), "k").await.unwrap_err();
    assert_eq!(err.retry_after, Some(Duration::from_secs(20)));
    assert!(!err.maybe_applied);
    let err = rig.notify(params.clone(), "k").await.unwrap_err();
    assert!(err.not_sent, "held back: {err:?}");
    tokio::time::sleep(Duration::from_secs(20)).await;
    rig.notify(params, "k").await.unwrap();
    assert_eq!(rig.chaos.log().len(), 2);
    assert!(rig.chaos.violations().is_empty());
}

#[tokio::test]
async fn client_errors_are_permanent_and_connection_failures_transient() {
    let rig = rig().await;
    rig.chaos.inject(Fault::Status(400), 1, None);
    let err = rig
        .notify(json!({"to": "audit", "text": "x"}), "k")
        .await
        .unwrap_err();
    assert!(
        err.is_permanent() && err.message.contains("HTTP 400"),
        "{err:?}"
    );
    rig.chaos.inject(Fault::Drop, 1, None);
    let err = rig
        .notify(json!({"to": "audit", "text": "x"}), "k")
        .await
        .unwrap_err();
    assert!(!err.is_permanent(), "{err:?}");
    assert!(
        !err.message.contains("127.0.0.1"),
        "no URL in messages: {err}"
    );
}
