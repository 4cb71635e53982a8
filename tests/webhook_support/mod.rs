//! Shared harness of the webhook and server tests: a store in a temporary directory, the
//! router driven without a socket, signed requests built from the real GitHub fixtures, and a
//! stand-in rules engine that writes through the delivery's own transaction.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::Router;
use chrono::Utc;
use codegen_sentinel::events::EventSink;
use codegen_sentinel::server::{app, AppState};
use codegen_sentinel::sources::poller::PollerHealth;
use codegen_sentinel::sources::webhook::{sign, Webhooks};
use codegen_sentinel::store::{
    EventRecord, JournalRecord, NewJob, Store, StoreOptions, Tx, TxAbort,
};
use secrecy::SecretString;
use serde_json::Value;
use tower::ServiceExt;

/// Webhook secrets, unique enough to be searched for in logs and responses.
pub const SECRET: &str = "canary-hook-secret-7c1d93e2";
pub const OLD_SECRET: &str = "canary-old-hook-secret-58ab04";

/// A real payload from `tests/fixtures/github/`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/github")
        .join(name);
    std::fs::read(path).unwrap()
}

pub fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

/// A POST of `body` as GitHub sends it, signed with `secret`.
pub fn signed(event: &str, delivery: &str, body: Vec<u8>, secret: &str) -> Request<Body> {
    Request::post("/webhooks/github")
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", sign(secret.as_bytes(), &body))
        .header("content-length", body.len())
        .body(Body::from(body))
        .unwrap()
}

/// The stand-in rules engine: records a journal entry for every event and, like a rule on
/// `github.check_suite` with `when: payload.check_suite.conclusion == "failure" and run`, a job.
#[derive(Debug, Default)]
pub struct RuleSink;

pub const RULE: &str = "agent-pr-checks-failed";

impl EventSink for RuleSink {
    fn on_event(&self, tx: &Tx<'_>, event: &EventRecord) -> Result<(), TxAbort> {
        let failed = event.data["payload"]["check_suite"]["conclusion"] == "failure";
        let fires = event.kind == "github.check_suite" && failed && !event.data["run"].is_null();
        tx.put_journal(
            event.seq,
            &JournalRecord {
                event_id: event.id.clone(),
                rule: RULE.to_owned(),
                outcome: if fires { "fired" } else { "skipped" }.to_owned(),
                reason: None,
                rules_hash: "test".to_owned(),
                at: event.at,
            },
        )?;
        if fires {
            tx.insert_job(NewJob {
                rule: RULE.to_owned(),
                event_id: event.id.clone(),
                key: event.data["pr"]["url"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                created_at: event.at,
                data: serde_json::json!({"run_id": event.run_id}),
            })?;
        }
        Ok(())
    }
}

/// A store in a temporary directory and the router in front of it.
pub struct Rig {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub app: Router,
    pub state: AppState,
    pub secrets: Vec<&'static str>,
    pub max_body: u64,
}

impl Rig {
    pub fn new(secrets: &[&'static str]) -> Rig {
        Rig::with_max_body(secrets, codegen_sentinel::config::DEFAULT_MAX_BODY)
    }

    pub fn with_max_body(secrets: &[&'static str], max_body: u64) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        Rig::open(dir, secrets.to_vec(), max_body)
    }

    fn open(dir: tempfile::TempDir, secrets: Vec<&'static str>, max_body: u64) -> Rig {
        let store = Store::open(StoreOptions::new(dir.path().join("db"))).unwrap();
        let state = state_for(&store, &secrets, max_body);
        Rig {
            app: app(state.clone()),
            state,
            dir,
            store,
            secrets,
            max_body,
        }
    }

    /// Closes the store and opens it again, as after a restart.
    pub fn reopen(self) -> Rig {
        let Rig {
            dir,
            store,
            app,
            state,
            secrets,
            max_body,
            ..
        } = self;
        drop((app, state, store));
        Rig::open(dir, secrets, max_body)
    }

    pub async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        read(response).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    pub fn deliveries(&self) -> usize {
        self.store.deliveries().count()
    }

    pub fn events(&self) -> Vec<EventRecord> {
        self.store.events_after(0).map(Result::unwrap).collect()
    }
}

pub fn state_for(store: &Store, secrets: &[&str], max_body: u64) -> AppState {
    let secrets: Vec<SecretString> = secrets.iter().map(|s| SecretString::from(*s)).collect();
    let webhooks = Webhooks::new(store.clone(), Arc::new(RuleSink), &secrets, max_body);
    AppState::new(
        store.clone(),
        Arc::new(webhooks),
        Arc::new(PollerHealth::default()),
        Duration::from_secs(15),
    )
}

pub async fn read(response: Response<Body>) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

pub fn now() -> chrono::DateTime<Utc> {
    Utc::now()
}
