//! The GitHub REST client: octocrab for transport and authentication (a token, or a GitHub App
//! with per-owner installation tokens, see `app.rs`), built without its retry layer so that
//! nothing we do not control ever repeats a POST; every answer's status and rate-limit headers
//! are read here.

use std::sync::Arc;
use std::time::Duration;

use octocrab::Octocrab;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::time::Instant;

use super::app::{AppAuth, Lease};
use super::error::GithubError;
use super::gate::{RateGate, CONTENT_PER_MINUTE, CONTENT_WINDOW};
use super::RepoRef;
use crate::clock::Clock;

/// GitHub's public API.
pub const DEFAULT_BASE_URL: &str = "https://api.github.com";
/// How long one request may take, answer included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// A rate-limited answer without `retry-after` or `x-ratelimit-reset` (a secondary limit): GitHub
/// asks for at least a minute.
const SECONDARY_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// A wait for our own rate gate up to this long is taken in place; longer ones hand the step back
/// to the executor so that it does not hold a worker.
const INLINE_WAIT: Duration = Duration::from_secs(2);
/// How much of an error body is kept in a message.
const MAX_MESSAGE: usize = 200;

/// The request methods the actions use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Delete,
}

impl Verb {
    /// Writes count against the content-creation limit and are uncertain after a failure.
    pub fn is_mutating(self) -> bool {
        self != Verb::Get
    }
}

/// How the client authenticates.
pub enum GithubAuth {
    Token(SecretString),
    App {
        app_id: u64,
        private_key: SecretString,
    },
}

/// A cheap-to-clone GitHub client with its rate gate.
#[derive(Clone)]
pub struct GithubClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GithubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubClient")
            .field("base_url", &self.inner.base_url)
            .finish_non_exhaustive()
    }
}

struct Inner {
    base_url: String,
    auth: AuthState,
    gate: RateGate,
    clock: Arc<dyn Clock>,
    timeout: Duration,
}

enum AuthState {
    Token(Octocrab),
    App(AppAuth),
}

/// Builds a [`GithubClient`].
pub struct GithubClientBuilder {
    base_url: String,
    auth: GithubAuth,
    clock: Arc<dyn Clock>,
    timeout: Duration,
    content_per_minute: usize,
}

impl GithubClientBuilder {
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Overrides GitHub's 80 content-creating requests a minute (benches, tests).
    pub fn content_per_minute(mut self, max: usize) -> Self {
        self.content_per_minute = max;
        self
    }

    pub fn build(self) -> Result<GithubClient, GithubError> {
        let base_url = self.base_url.trim().trim_end_matches('/').to_owned();
        let builder = Octocrab::builder()
            .base_uri(base_url.as_str())
            .map_err(|e| GithubError::Setup(format!("base URL {base_url:?}: {e}")))?;
        let auth = match self.auth {
            GithubAuth::Token(token) => {
                let client = builder
                    .personal_token(token.expose_secret().trim().to_owned())
                    .build()
                    .map_err(|e| GithubError::Setup(e.to_string()))?;
                AuthState::Token(client)
            }
            GithubAuth::App {
                app_id,
                private_key,
            } => {
                // The key's own error says what is wrong with it, never what it holds.
                let key =
                    octocrab::EncodingKey::from_rsa_pem(private_key.expose_secret().as_bytes())
                        .map_err(|e| {
                            GithubError::Setup(format!("GitHub App {app_id} private key: {e}"))
                        })?;
                let app = builder
                    .app(app_id.into(), key)
                    .build()
                    .map_err(|e| GithubError::Setup(e.to_string()))?;
                AuthState::App(AppAuth::new(app))
            }
        };
        Ok(GithubClient {
            inner: Arc::new(Inner {
                base_url,
                auth,
                gate: RateGate::new(self.content_per_minute, CONTENT_WINDOW),
                clock: self.clock,
                timeout: self.timeout,
            }),
        })
    }
}

impl GithubClient {
    /// The client `sentinel.yaml` describes, or None when no GitHub credentials are configured
    /// (webhooks only).
    pub fn from_config(
        settings: &crate::config::GithubSettings,
        secrets: &crate::config::GithubSecrets,
        clock: Arc<dyn Clock>,
    ) -> Result<Option<GithubClient>, GithubError> {
        use crate::config::GithubCredentials;
        let auth = match &secrets.auth {
            None => return Ok(None),
            Some(GithubCredentials::Token(token)) => GithubAuth::Token(token.clone()),
            Some(GithubCredentials::App {
                app_id,
                private_key,
            }) => GithubAuth::App {
                app_id: *app_id,
                private_key: private_key.clone(),
            },
        };
        GithubClient::builder(settings.base_url.clone(), auth, clock)
            .build()
            .map(Some)
    }

    /// Starts building a client for `base_url` (GitHub Enterprise: `https://HOST/api/v3`).
    pub fn builder(
        base_url: impl Into<String>,
        auth: GithubAuth,
        clock: Arc<dyn Clock>,
    ) -> GithubClientBuilder {
        GithubClientBuilder {
            base_url: base_url.into(),
            auth,
            clock,
            timeout: DEFAULT_TIMEOUT,
            content_per_minute: CONTENT_PER_MINUTE,
        }
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// When GitHub's last rate-limit answer lets us send again, if that is still ahead.
    pub fn blocked_until(&self) -> Option<Instant> {
        self.inner.gate.blocked_until()
    }

    /// Sends one request to `path` (absolute, with its query) on behalf of `repo`; a success
    /// answers its JSON body (`Null` when empty).
    pub async fn request(
        &self,
        repo: &RepoRef,
        verb: Verb,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, GithubError> {
        self.pass_gate(verb.is_mutating()).await?;
        let (client, lease) = self.client_for(repo).await?;
        let answer = self.send(&client, verb, path, body).await;
        match (answer, lease, &self.inner.auth) {
            (
                Err(GithubError::Status {
                    status: 401,
                    message,
                }),
                Some(lease),
                AuthState::App(app),
            ) => {
                app.refused(&lease).await;
                Err(GithubError::TokenRefused {
                    owner: repo.owner.clone(),
                    message,
                })
            }
            (answer, _, _) => answer,
        }
    }

    /// Sends one request with `client` and reads its answer, within the timeout.
    pub(super) async fn send(
        &self,
        client: &Octocrab,
        verb: Verb,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, GithubError> {
        let timeout = self.inner.timeout;
        let sent = async {
            let response = match verb {
                Verb::Get => client._get(path).await,
                Verb::Post => client._post(path, body).await,
                Verb::Delete => client._delete(path, body).await,
            }
            .map_err(transport)?;
            let status = response.status().as_u16();
            let limits = LimitHeaders::read(response.headers());
            let text = client.body_to_string(response).await.map_err(transport)?;
            Ok::<_, GithubError>((status, limits, text))
        };
        let (status, limits, text) = tokio::time::timeout(timeout, sent)
            .await
            .map_err(|_| GithubError::Timeout(timeout))??;
        self.answer(status, &limits, &text)
    }

    /// The time by the client's clock.
    pub(super) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }

    async fn pass_gate(&self, content: bool) -> Result<(), GithubError> {
        loop {
            match self.inner.gate.admit(content, Instant::now()) {
                Ok(()) => return Ok(()),
                Err(wait) if wait <= INLINE_WAIT => tokio::time::sleep(wait).await,
                Err(wait) => return Err(GithubError::RateLimited { wait, sent: false }),
            }
        }
    }

    fn answer(&self, status: u16, limits: &LimitHeaders, text: &str) -> Result<Value, GithubError> {
        if (200..300).contains(&status) {
            if limits.remaining == Some(0) {
                if let Some(wait) = limits.until_reset(self.inner.clock.as_ref()) {
                    self.inner.gate.block_until(Instant::now() + wait);
                }
            }
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(text).map_err(|e| GithubError::Decode(e.to_string()));
        }
        let message = error_message(text);
        let limited = status == 429
            || (status == 403
                && (limits.remaining == Some(0)
                    || limits.retry_after.is_some()
                    || message.to_ascii_lowercase().contains("rate limit")));
        if limited {
            let wait = limits
                .retry_after
                .or_else(|| {
                    (limits.remaining == Some(0))
                        .then(|| limits.until_reset(self.inner.clock.as_ref()))
                        .flatten()
                })
                .unwrap_or(SECONDARY_LIMIT_WAIT);
            self.inner.gate.block_until(Instant::now() + wait);
            tracing::warn!(
                status,
                wait_secs = wait.as_secs(),
                "GitHub rate limit reached; holding requests"
            );
            return Err(GithubError::RateLimited { wait, sent: true });
        }
        Err(GithubError::Status { status, message })
    }

    /// The octocrab client for `repo`: the token's, or that of the App installation covering its
    /// owner (with the lease of its token).
    async fn client_for(&self, repo: &RepoRef) -> Result<(Octocrab, Option<Lease>), GithubError> {
        match &self.inner.auth {
            AuthState::Token(client) => Ok((client.clone(), None)),
            AuthState::App(app) => {
                let (client, lease) = self.installation_client(app, repo).await?;
                Ok((client, Some(lease)))
            }
        }
    }
}

/// The rate-limit headers of one answer.
#[derive(Debug, Default)]
struct LimitHeaders {
    retry_after: Option<Duration>,
    remaining: Option<u64>,
    /// Epoch seconds when the limit resets.
    reset: Option<i64>,
}

impl LimitHeaders {
    /// `axum::http` is the `http` crate octocrab answers with.
    fn read(headers: &axum::http::HeaderMap) -> LimitHeaders {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let number = |name: &str| text(name).and_then(|v| v.trim().parse::<i64>().ok());
        LimitHeaders {
            retry_after: text("retry-after").and_then(crate::api::error::parse_retry_after),
            remaining: number("x-ratelimit-remaining").and_then(|v| u64::try_from(v).ok()),
            reset: number("x-ratelimit-reset"),
        }
    }

    fn until_reset(&self, clock: &dyn Clock) -> Option<Duration> {
        let reset = chrono::DateTime::from_timestamp(self.reset?, 0)?;
        Some((reset - clock.now()).to_std().unwrap_or(Duration::ZERO))
    }
}

/// GitHub's `{"message": ...}`, else the raw text, cut short.
fn error_message(text: &str) -> String {
    let message = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| text.trim().to_owned());
    if message.len() <= MAX_MESSAGE {
        return message;
    }
    let mut end = MAX_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

/// A failure below HTTP, with its cause chain (octocrab's own messages hide it).
fn transport(err: octocrab::Error) -> GithubError {
    let mut text = match &err {
        octocrab::Error::Service { source, .. } => source.to_string(),
        octocrab::Error::Hyper { source, .. } => source.to_string(),
        other => other.to_string(),
    };
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    GithubError::Transport(text)
}
