//! A webhook receiver for notifier tests: records every delivery with its headers and checks
//! the signature itself (HMAC-SHA256 written here, independently of the notifier's code).

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// One POST as received.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub path: String,
    pub idempotency_key: Option<String>,
    pub signature: Option<String>,
    /// The signature header matches the body under the receiver's secret.
    pub signature_valid: bool,
    pub body: Value,
    pub raw: Bytes,
}

/// Accepts POSTs on any path; clones share the deliveries.
#[derive(Clone)]
pub struct Receiver {
    secret: Option<Vec<u8>>,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    pub fn new(secret: Option<&str>) -> Receiver {
        Receiver {
            secret: secret.map(|s| s.as_bytes().to_vec()),
            deliveries: Arc::default(),
        }
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/{*path}", post(receive))
            .with_state(self.clone())
    }

    fn verify(&self, signature: Option<&str>, body: &[u8]) -> bool {
        let (Some(secret), Some(signature)) = (&self.secret, signature) else {
            return false;
        };
        let Some(hex_sig) = signature.strip_prefix("sha256=") else {
            return false;
        };
        let Ok(given) = hex::decode(hex_sig) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
        mac.update(body);
        mac.verify_slice(&given).is_ok()
    }
}

async fn receive(
    State(receiver): State<Receiver>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    raw: Bytes,
) -> &'static str {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let signature = header("x-sentinel-signature-256");
    let delivery = Delivery {
        path: uri.path().to_owned(),
        idempotency_key: header("idempotency-key"),
        signature_valid: receiver.verify(signature.as_deref(), &raw),
        signature,
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        raw,
    };
    receiver
        .deliveries
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(delivery);
    "ok"
}
