//! The `sentinel.yaml` schema as written: serde structs that refuse unknown keys.
//!
//! Everything is optional here so that a missing key is reported by `validate` with a useful
//! message, and defaults live in one place (`config/mod.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::NotifierKind;
use crate::yaml::{ByteSize, DurationStr};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub codegen: Option<RawCodegen>,
    pub store: Option<RawStore>,
    pub rules: Option<RawRules>,
    pub server: Option<RawServer>,
    pub github: Option<RawGithub>,
    pub notifiers: Option<BTreeMap<String, RawNotifier>>,
    pub vars: Option<serde_json::Map<String, serde_json::Value>>,
    pub executor: Option<RawExecutor>,
}

/// A secret named three ways: `X_env`, `X_file`, or a bare credential name `X`.
#[derive(Debug, Default)]
pub(super) struct RawSecret<'a> {
    pub env: Option<&'a String>,
    pub file: Option<&'a PathBuf>,
    pub credential: Option<&'a String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCodegen {
    pub base_url: Option<String>,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    pub token: Option<String>,
    pub org_ids: Option<Vec<i64>>,
    pub poll_interval: Option<DurationStr>,
    pub stall_after: Option<DurationStr>,
    pub deep_resync: Option<DurationStr>,
    pub backfill: Option<DurationStr>,
    pub request_timeout: Option<DurationStr>,
}

impl RawCodegen {
    pub fn token(&self) -> RawSecret<'_> {
        RawSecret {
            env: self.token_env.as_ref(),
            file: self.token_file.as_ref(),
            credential: self.token.as_ref(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub path: Option<PathBuf>,
    pub cache_size: Option<ByteSize>,
    pub flush_every: Option<DurationStr>,
    pub retention: Option<DurationStr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRules {
    pub paths: Option<Vec<PathBuf>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub listen: Option<String>,
    pub max_body: Option<ByteSize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGithub {
    pub base_url: Option<String>,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    pub token: Option<String>,
    pub app_id: Option<u64>,
    pub private_key_env: Option<String>,
    pub private_key_file: Option<PathBuf>,
    pub private_key: Option<String>,
    pub webhook_secrets_env: Option<String>,
    pub webhook_secrets_file: Option<PathBuf>,
    pub webhook_secrets: Option<String>,
}

impl RawGithub {
    pub fn token(&self) -> RawSecret<'_> {
        RawSecret {
            env: self.token_env.as_ref(),
            file: self.token_file.as_ref(),
            credential: self.token.as_ref(),
        }
    }

    pub fn private_key(&self) -> RawSecret<'_> {
        RawSecret {
            env: self.private_key_env.as_ref(),
            file: self.private_key_file.as_ref(),
            credential: self.private_key.as_ref(),
        }
    }

    pub fn webhook_secrets(&self) -> RawSecret<'_> {
        RawSecret {
            env: self.webhook_secrets_env.as_ref(),
            file: self.webhook_secrets_file.as_ref(),
            credential: self.webhook_secrets.as_ref(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotifier {
    #[serde(rename = "type")]
    pub kind: Option<NotifierKind>,
    pub url: Option<String>,
    pub url_env: Option<String>,
    pub url_file: Option<PathBuf>,
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub secret: Option<String>,
    pub timeout: Option<DurationStr>,
}

impl RawNotifier {
    pub fn secret(&self) -> RawSecret<'_> {
        RawSecret {
            env: self.secret_env.as_ref(),
            file: self.secret_file.as_ref(),
            credential: self.secret.as_ref(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExecutor {
    pub concurrency: Option<u64>,
    pub max_attempts: Option<u64>,
    pub backoff_base: Option<DurationStr>,
    pub backoff_cap: Option<DurationStr>,
    pub shutdown_grace: Option<DurationStr>,
}
