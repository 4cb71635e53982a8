//! `sentinel.yaml` loaded into validated [`Settings`]; secrets stay references until
//! [`Settings::resolve_secrets`].
//!
//! Two stages: `raw` mirrors the file with serde (unknown keys are errors), `validate` turns
//! it into typed values, collecting every problem with its `file:line:col` and key path.
//! Relative paths in the file resolve against the file's directory.

mod raw;
mod secrets;
mod validate;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::secret::SecretRef;
use crate::yaml::{self, Diagnostic, Limits, Location};

pub use secrets::{GithubCredentials, GithubSecrets, NotifierSecrets, Secrets};

/// The environment variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "SENTINEL_CONFIG";
/// The config file used when neither `--config` nor `$SENTINEL_CONFIG` is given.
pub const DEFAULT_CONFIG_FILE: &str = "sentinel.yaml";

/// Codegen's public API.
pub const DEFAULT_CODEGEN_BASE_URL: &str = "https://api.codegen.com";
/// How often runs are polled: Codegen's list endpoint is cheap, and 15s keeps reactions quick.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(15);
/// Below this the poller would only spend the request budget (the budget still caps it).
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// A non-terminal status unchanged this long raises `run.stalled`.
pub const DEFAULT_STALL_AFTER: Duration = Duration::from_secs(30 * 60);
/// How often every known run is re-read in full, to catch what list pages missed.
pub const DEFAULT_DEEP_RESYNC: Duration = Duration::from_secs(60 * 60);
/// On the first start with an empty store, how far back runs are recorded (without events).
pub const DEFAULT_BACKFILL: Duration = Duration::from_secs(24 * 60 * 60);
/// Per-request timeout towards Codegen.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the sled database lives (systemd `StateDirectory=codegen-sentinel`).
pub const DEFAULT_STORE_PATH: &str = "/var/lib/codegen-sentinel";
/// sled's page cache.
pub const DEFAULT_CACHE_SIZE: u64 = crate::store::DEFAULT_CACHE_CAPACITY;
/// Upper bound on how long a write may wait for a group flush.
pub const DEFAULT_FLUSH_EVERY: Duration = Duration::from_millis(500);
/// How long runs, transitions, journal entries and dead letters are kept.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Shortest retention allowed: a day of history is the least `explain` and replay need.
pub const MIN_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// Webhook delivery ids are kept at least this long whatever `retention` says, so that
/// a redelivery is still recognised as one.
pub const MIN_DELIVERY_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Loopback only by default: exposing the webhook endpoint is a deliberate choice.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8787));
/// GitHub's own limit on webhook payloads.
pub const DEFAULT_MAX_BODY: u64 = 25 << 20;
/// GitHub's public API.
pub const DEFAULT_GITHUB_BASE_URL: &str = "https://api.github.com";
/// Per-request timeout of a notifier.
pub const DEFAULT_NOTIFIER_TIMEOUT: Duration = Duration::from_secs(10);

/// Jobs run at once.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Attempts of one step before its job goes to the dead letters.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// First retry delay; doubles per attempt, with full jitter.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Largest retry delay.
pub const DEFAULT_BACKOFF_CAP: Duration = Duration::from_secs(5 * 60);
/// How long in-flight steps may finish after a shutdown signal.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The file it was loaded from, as named.
    pub file: PathBuf,
    /// The Codegen API and polling.
    pub codegen: CodegenSettings,
    /// The sled database.
    pub store: StoreSettings,
    /// Where rule files are.
    pub rules: RulesSettings,
    /// The HTTP server (webhooks, health, metrics, status).
    pub server: ServerSettings,
    /// GitHub access and webhook secrets, when configured.
    pub github: Option<GithubSettings>,
    /// Notification targets by name (`notify` with `to: NAME`).
    pub notifiers: BTreeMap<String, NotifierSettings>,
    /// Free values rules see as `vars`.
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// Job execution and retries.
    pub executor: ExecutorSettings,
    /// Accepted, but probably not what the author meant.
    pub warnings: Vec<Diagnostic>,
}

/// `codegen:`.
#[derive(Debug, Clone)]
pub struct CodegenSettings {
    /// API root without a trailing slash.
    pub base_url: String,
    /// The API token.
    pub token: SecretSetting,
    /// Organizations whose runs are watched; non-empty, positive.
    pub org_ids: Vec<u64>,
    /// Time between polls (at least [`MIN_POLL_INTERVAL`]).
    pub poll_interval: Duration,
    /// A non-terminal status unchanged this long raises `run.stalled`.
    pub stall_after: Duration,
    /// Time between full re-reads of every known run.
    pub deep_resync: Duration,
    /// On the first start with an empty store, how far back runs are recorded (no events).
    pub backfill: Duration,
    /// Per-request timeout.
    pub request_timeout: Duration,
}

/// `store:`.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Database directory (absolute).
    pub path: PathBuf,
    /// sled cache, in bytes.
    pub cache_size: u64,
    /// Longest a write waits for its flush.
    pub flush_every: Duration,
    /// How long history is kept.
    pub retention: Duration,
}

impl StoreSettings {
    /// How long webhook delivery ids are kept: `retention`, but never under a week.
    pub fn delivery_retention(&self) -> Duration {
        self.retention.max(MIN_DELIVERY_RETENTION)
    }
}

/// `rules:`.
#[derive(Debug, Clone, Default)]
pub struct RulesSettings {
    /// Directories and files of rules (absolute).
    pub paths: Vec<PathBuf>,
}

/// `server:`.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Largest accepted request body, in bytes.
    pub max_body: u64,
}

/// `github:`.
#[derive(Debug, Clone)]
pub struct GithubSettings {
    /// API root without a trailing slash.
    pub base_url: String,
    /// How to authenticate; `None` when only webhooks are received.
    pub auth: Option<GithubAuth>,
    /// The webhook secrets (a comma-separated list once resolved).
    pub webhook_secrets: Option<SecretSetting>,
}

/// How the daemon authenticates to GitHub.
#[derive(Debug, Clone)]
pub enum GithubAuth {
    /// A personal or fine-grained token.
    Token(SecretSetting),
    /// A GitHub App: installation tokens are fetched and refreshed.
    App {
        /// The App's id.
        app_id: u64,
        /// The App's PEM private key.
        private_key: SecretSetting,
    },
}

/// Which protocol a notifier speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifierKind {
    /// A Slack incoming webhook: `{"text": ...}`.
    Slack,
    /// Any HTTP endpoint: the JSON envelope, optionally signed.
    Webhook,
}

/// One entry of `notifiers:`.
#[derive(Debug, Clone)]
pub struct NotifierSettings {
    /// Slack or webhook.
    pub kind: NotifierKind,
    /// Where to POST.
    pub url: NotifierUrl,
    /// HMAC key for `X-Sentinel-Signature-256` (webhook only).
    pub secret: Option<SecretSetting>,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// A notifier URL: written in the file, or a secret (Slack URLs carry a token).
#[derive(Debug, Clone)]
pub enum NotifierUrl {
    /// `url:` (validated as an http(s) URL).
    Literal(String),
    /// `url_env:` or `url_file:`.
    Secret(SecretSetting),
}

/// `executor:`.
#[derive(Debug, Clone)]
pub struct ExecutorSettings {
    /// Jobs run at once.
    pub concurrency: usize,
    /// Attempts per step before the job is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay.
    pub backoff_base: Duration,
    /// Largest retry delay.
    pub backoff_cap: Duration,
    /// Time given to in-flight steps on shutdown.
    pub shutdown_grace: Duration,
}

/// A secret reference and where the config file made it, so a failure to resolve it can be
/// reported as `file:line:col: codegen.token_env: environment variable X is not set`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSetting {
    /// What to read.
    pub reference: SecretRef,
    /// The config file.
    pub file: PathBuf,
    /// Position of the reference's value.
    pub location: Location,
    /// Key path of the reference, e.g. `codegen.token_env`.
    pub path: String,
}

impl SecretSetting {
    /// An error about this reference, located where it is written.
    pub fn diagnostic(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(&self.file, self.location, self.path.clone(), message)
    }
}

impl Settings {
    /// Codegen API root, without a trailing slash (for the `api` commands too).
    pub fn codegen_base_url(&self) -> &str {
        &self.codegen.base_url
    }

    /// Organizations watched.
    pub fn org_ids(&self) -> &[u64] {
        &self.codegen.org_ids
    }

    /// The notifier called `name`.
    pub fn notifier(&self, name: &str) -> Option<&NotifierSettings> {
        self.notifiers.get(name)
    }
}

/// `--config`'s default: `$SENTINEL_CONFIG` when set and non-empty, else `./sentinel.yaml`.
pub fn default_config_path() -> PathBuf {
    config_path_from(std::env::var_os(CONFIG_ENV))
}

fn config_path_from(env: Option<std::ffi::OsString>) -> PathBuf {
    match env {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(DEFAULT_CONFIG_FILE),
    }
}

/// Reads and validates a config file. Every problem is returned, sorted by position.
pub fn load_settings(path: &Path) -> Result<Settings, Vec<Diagnostic>> {
    let limits = Limits::default();
    let text = yaml::read_file(path, &limits)?;
    parse_settings(path, &text)
}

/// Validates config text as if read from `file` (relative paths resolve against its directory).
pub fn parse_settings(file: &Path, text: &str) -> Result<Settings, Vec<Diagnostic>> {
    let document = yaml::Document::parse(file, text, &Limits::default())?;
    validate::validate(&document)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_path_prefers_the_environment_then_the_working_directory() {
        assert_eq!(
            config_path_from(Some("/etc/s.yaml".into())),
            PathBuf::from("/etc/s.yaml")
        );
        assert_eq!(
            config_path_from(Some("".into())),
            PathBuf::from("sentinel.yaml")
        );
        assert_eq!(config_path_from(None), PathBuf::from("sentinel.yaml"));
    }

    #[test]
    fn deliveries_are_kept_a_week_even_with_short_retention() {
        let store = StoreSettings {
            path: PathBuf::from("/tmp"),
            cache_size: DEFAULT_CACHE_SIZE,
            flush_every: DEFAULT_FLUSH_EVERY,
            retention: MIN_RETENTION,
        };
        assert_eq!(store.delivery_retention(), MIN_DELIVERY_RETENTION);
    }
}
