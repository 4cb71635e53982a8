//! The `notify` action: Slack incoming webhooks and signed JSON webhooks.
//!
//! Delivery is at least once. Every attempt of a step sends the same `Idempotency-Key` (the
//! step's key) so a webhook receiver can drop repeats; the webhook body is built from the
//! step's recorded parameters and the job's context, so a repeat is byte-identical and carries
//! the same signature. Slack has no such key: a repeat after an uncertain failure may show twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::time::Instant;

use super::github::RateGate;
use super::{ActionError, StepCall};
use crate::config::{NotifierKind, NotifierSecrets, NotifierSettings, DEFAULT_NOTIFIER_TIMEOUT};

/// The header carrying the step's idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// The header carrying `sha256=<hex HMAC-SHA256 of the body>` when the notifier has a secret.
pub const SIGNATURE_HEADER: &str = "X-Sentinel-Signature-256";
/// How much of an error answer is kept in a message.
const MAX_DETAIL: usize = 200;

/// One configured notification target.
pub struct Notifier {
    kind: NotifierKind,
    url: SecretString,
    secret: Option<SecretString>,
    timeout: Duration,
    /// Holds sends while the target's `Retry-After` runs.
    gate: RateGate,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("kind", &self.kind)
            .field("url", &"[redacted]")
            .field("signed", &self.secret.is_some())
            .finish()
    }
}

impl Notifier {
    /// A JSON webhook, signed when `secret` is set.
    pub fn webhook(url: SecretString, secret: Option<SecretString>) -> Notifier {
        Notifier::new(NotifierKind::Webhook, url, secret)
    }

    /// A Slack incoming webhook.
    pub fn slack(url: SecretString) -> Notifier {
        Notifier::new(NotifierKind::Slack, url, None)
    }

    fn new(kind: NotifierKind, url: SecretString, secret: Option<SecretString>) -> Notifier {
        Notifier {
            kind,
            url,
            secret,
            timeout: DEFAULT_NOTIFIER_TIMEOUT,
            gate: RateGate::new(1, Duration::from_secs(1)),
        }
    }

    /// Per-request timeout.
    pub fn timeout(mut self, timeout: Duration) -> Notifier {
        self.timeout = timeout;
        self
    }
}

/// The notifiers by name; cheap to clone.
#[derive(Debug, Clone)]
pub struct Notifiers {
    http: reqwest::Client,
    targets: Arc<BTreeMap<String, Notifier>>,
}

impl Default for Notifiers {
    fn default() -> Self {
        Notifiers::new(Vec::new())
    }
}

impl Notifiers {
    /// Named notifiers.
    pub fn new(targets: impl IntoIterator<Item = (String, Notifier)>) -> Notifiers {
        let http = reqwest::Client::builder()
            .user_agent(concat!("codegen-sentinel/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Notifiers {
            http,
            targets: Arc::new(targets.into_iter().collect()),
        }
    }

    /// The notifiers of `sentinel.yaml` with their resolved secrets; a notifier whose secrets
    /// are missing is left out (secret resolution already reported it).
    pub fn from_config(
        settings: &BTreeMap<String, NotifierSettings>,
        secrets: &BTreeMap<String, NotifierSecrets>,
    ) -> Notifiers {
        let targets = settings.iter().filter_map(|(name, setting)| {
            let secret = secrets.get(name)?;
            let notifier = Notifier::new(setting.kind, secret.url.clone(), secret.secret.clone())
                .timeout(setting.timeout);
            Some((name.clone(), notifier))
        });
        Notifiers::new(targets)
    }

    /// Configured names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.targets.keys().map(String::as_str)
    }

    /// Sends one notification.
    pub async fn execute(&self, call: &StepCall<'_>) -> Result<Value, ActionError> {
        let to = call.required_str("to")?;
        let target = self.targets.get(to).ok_or_else(|| {
            ActionError::permanent(format!("no notifier named {to:?} in the configuration"))
        })?;
        let body = match target.kind {
            NotifierKind::Slack => {
                let text = call
                    .str("text")
                    .ok_or_else(|| ActionError::permanent("a slack notifier needs `text`"))?;
                json!({ "text": text })
            }
            NotifierKind::Webhook => webhook_body(call),
        };
        let bytes = serde_json::to_vec(&body)
            .map_err(|e| ActionError::permanent(format!("encoding the body: {e}")))?;
        if let Err(wait) = target.gate.admit(false, Instant::now()) {
            return Err(ActionError::transient(format!(
                "notifier {to} asked to wait {}s",
                wait.as_secs()
            ))
            .after(Some(wait))
            .unsent());
        }
        let mut request = self
            .http
            .post(target.url.expose_secret())
            .timeout(target.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, call.key);
        if let (NotifierKind::Webhook, Some(secret)) = (target.kind, &target.secret) {
            request = request.header(
                SIGNATURE_HEADER,
                signature(secret.expose_secret().as_bytes(), &bytes),
            );
        }
        let response = request
            .body(bytes)
            .send()
            .await
            .map_err(|e| send_error(to, e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(json!({ "status": status }));
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::api::error::parse_retry_after);
        if let Some(wait) = retry_after {
            target.gate.block_until(Instant::now() + wait);
        }
        let detail = response.text().await.unwrap_or_default();
        Err(
            ActionError::from_status(status, cut(detail.trim()), retry_after)
                .context(&format!("notifier {to}")),
        )
    }
}

/// The webhook envelope of DESIGN §6.
fn webhook_body(call: &StepCall<'_>) -> Value {
    let ctx = call.context;
    json!({
        "rule": ctx["rule"],
        "event": ctx["event"],
        "run": ctx["run"],
        "pr": ctx["pr"],
        "text": call.params.get("text").cloned().unwrap_or(Value::Null),
        "payload": call.params.get("payload").cloned().unwrap_or(Value::Null),
        "idempotency_key": call.key,
    })
}

/// `sha256=<hex HMAC-SHA256 of body>` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn send_error(to: &str, err: reqwest::Error) -> ActionError {
    // Never the URL: Slack URLs carry a token.
    let err = err.without_url();
    let what = if err.is_timeout() {
        "timed out"
    } else {
        "failed"
    };
    let mut message = format!("notifier {to}: request {what}");
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    let error = ActionError::transient(message);
    if err.is_connect() {
        error
    } else {
        error.uncertain()
    }
}

fn cut(text: &str) -> &str {
    if text.len() <= MAX_DETAIL {
        return text;
    }
    let mut end = MAX_DETAIL;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        let sig = signature(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
