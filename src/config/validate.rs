//! Raw config -> [`Settings`]: defaults, ranges, exclusive groups and paths, with every
//! problem collected and located.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml::Value;

use self::checks::given_keys;
use super::raw::{RawCodegen, RawConfig, RawExecutor, RawGithub, RawServer, RawStore};
use super::*;
use crate::yaml::{Document, DurationStr, Location, YamlPath};

/// Validates a parsed config document.
pub(super) fn validate(doc: &Document) -> Result<Settings, Vec<Diagnostic>> {
    // An empty file is an empty mapping: report the missing `codegen`, not a type error.
    let root = match doc.root() {
        Value::Null => Value::Mapping(Default::default()),
        other => other.clone(),
    };
    let partial = doc.deserialize_value::<RawConfig>(root, &YamlPath::root());
    let mut checker = Checker {
        doc,
        base_dir: base_dir(doc.file()),
        rejected: partial.rejected,
        errors: partial.diagnostics,
        warnings: Vec::new(),
    };
    let settings = partial.value.and_then(|raw| checker.settings(raw));
    let mut errors = checker.errors;
    errors.sort_by_key(Diagnostic::location);
    match settings {
        Some(mut settings) if errors.is_empty() => {
            settings.warnings = checker.warnings;
            Ok(settings)
        }
        _ => Err(errors),
    }
}

/// The directory relative paths in `file` are relative to.
fn base_dir(file: &Path) -> PathBuf {
    let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    absolute
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

struct Checker<'d> {
    doc: &'d Document,
    base_dir: PathBuf,
    /// Entries that failed to deserialize and were dropped: not to be reported as missing.
    rejected: Vec<YamlPath>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

fn root() -> YamlPath {
    YamlPath::root()
}

impl Checker<'_> {
    fn settings(&mut self, raw: RawConfig) -> Option<Settings> {
        let codegen = match raw.codegen {
            Some(codegen) => self.codegen(codegen),
            None => {
                self.missing_section();
                None
            }
        };
        let store = self.store(raw.store.unwrap_or_default());
        let rules = RulesSettings {
            paths: raw
                .rules
                .and_then(|r| r.paths)
                .unwrap_or_default()
                .iter()
                .map(|p| self.path(p))
                .collect(),
        };
        let server = self.server(raw.server.unwrap_or_default());
        let github = raw.github.and_then(|g| self.github(g));
        let notifiers = self.notifiers(raw.notifiers.unwrap_or_default());
        let executor = self.executor(raw.executor.unwrap_or_default());
        Some(Settings {
            file: self.doc.file().to_path_buf(),
            codegen: codegen?,
            store,
            rules,
            server,
            github,
            notifiers,
            vars: raw.vars.unwrap_or_default(),
            executor,
            warnings: Vec::new(),
        })
    }

    fn missing_section(&mut self) {
        if self.is_rejected(&root().key("codegen")) {
            return;
        }
        let error = Diagnostic::error(
            self.doc.file(),
            Location::START,
            "",
            "missing `codegen` section",
        )
        .with_hint("at least `codegen: {token_env: CODEGEN_API_TOKEN, org_ids: [ORG_ID]}`");
        self.errors.push(error);
    }

    fn codegen(&mut self, raw: RawCodegen) -> Option<CodegenSettings> {
        let at = root().key("codegen");
        let base_url = self.url(
            &at.key("base_url"),
            raw.base_url.as_deref(),
            DEFAULT_CODEGEN_BASE_URL,
        );
        let token = self.required_secret(&at, "token", raw.token());
        let org_ids = self.org_ids(&at, raw.org_ids.as_deref());
        let poll_interval = or(raw.poll_interval, DEFAULT_POLL_INTERVAL);
        if poll_interval < MIN_POLL_INTERVAL {
            self.error(&at.key("poll_interval"), "must be at least 200ms");
        }
        let stall_after = or(raw.stall_after, DEFAULT_STALL_AFTER);
        self.longer(
            &at,
            ("stall_after", stall_after),
            ("poll_interval", poll_interval),
        );
        let deep_resync = or(raw.deep_resync, DEFAULT_DEEP_RESYNC);
        self.longer(
            &at,
            ("deep_resync", deep_resync),
            ("poll_interval", poll_interval),
        );
        let backfill = or(raw.backfill, DEFAULT_BACKFILL);
        let request_timeout = or(raw.request_timeout, DEFAULT_REQUEST_TIMEOUT);
        self.positive(&at.key("request_timeout"), request_timeout);
        Some(CodegenSettings {
            base_url,
            token: token?,
            org_ids,
            poll_interval,
            stall_after,
            deep_resync,
            backfill,
            request_timeout,
        })
    }

    fn org_ids(&mut self, at: &YamlPath, ids: Option<&[i64]>) -> Vec<u64> {
        let path = at.key("org_ids");
        let Some(ids) = ids else {
            if !self.is_rejected(&path) {
                self.key_error(
                    at,
                    "missing `org_ids`",
                    "the organizations to watch, e.g. org_ids: [7]",
                );
            }
            return Vec::new();
        };
        if ids.is_empty() {
            self.error_hint(
                &path,
                "must list at least one organization",
                "e.g. org_ids: [7]",
            );
        }
        let mut seen = BTreeSet::new();
        let mut valid = Vec::new();
        for (i, &id) in ids.iter().enumerate() {
            match u64::try_from(id) {
                Ok(id) if id > 0 => {
                    if seen.insert(id) {
                        valid.push(id);
                    } else {
                        self.error(&path.index(i), format!("organization {id} is listed twice"));
                    }
                }
                _ => self.error(
                    &path.index(i),
                    format!("{id} is not a positive organization id"),
                ),
            }
        }
        valid
    }

    fn store(&mut self, raw: RawStore) -> StoreSettings {
        let at = root().key("store");
        let path = raw
            .path
            .as_deref()
            .map_or_else(|| PathBuf::from(DEFAULT_STORE_PATH), |p| self.path(p));
        let cache_size = raw.cache_size.map_or(DEFAULT_CACHE_SIZE, |s| s.bytes());
        if cache_size < 1 << 20 {
            self.error(&at.key("cache_size"), "must be at least 1MiB");
        }
        let flush_every = or(raw.flush_every, DEFAULT_FLUSH_EVERY);
        self.positive(&at.key("flush_every"), flush_every);
        let retention = or(raw.retention, DEFAULT_RETENTION);
        if retention < MIN_RETENTION {
            self.error_hint(
                &at.key("retention"),
                "must be at least 1d",
                "explain and replay need history; webhook deliveries are kept 7d regardless",
            );
        }
        StoreSettings {
            path,
            cache_size,
            flush_every,
            retention,
        }
    }

    fn server(&mut self, raw: RawServer) -> ServerSettings {
        let at = root().key("server");
        let listen = match raw.listen.as_deref().map(str::parse) {
            None => DEFAULT_LISTEN,
            Some(Ok(addr)) => addr,
            Some(Err(err)) => {
                let text = raw.listen.as_deref().unwrap_or_default();
                let message = format!("invalid listen address {text:?}: {err}");
                self.error_hint(
                    &at.key("listen"),
                    message,
                    "write IP:PORT, e.g. 127.0.0.1:8787 or [::1]:8787",
                );
                DEFAULT_LISTEN
            }
        };
        let max_body = raw.max_body.map_or(DEFAULT_MAX_BODY, |s| s.bytes());
        if max_body < 1 << 10 {
            self.error(&at.key("max_body"), "must be at least 1KiB");
        }
        ServerSettings { listen, max_body }
    }

    fn github(&mut self, raw: RawGithub) -> Option<GithubSettings> {
        let at = root().key("github");
        let base_url = self.url(
            &at.key("base_url"),
            raw.base_url.as_deref(),
            DEFAULT_GITHUB_BASE_URL,
        );
        let token_key = given_keys("token", &raw.token()).into_iter().next();
        let key_key = given_keys("private_key", &raw.private_key())
            .into_iter()
            .next();
        let auth = match (token_key, raw.app_id, key_key) {
            (None, None, None) => None,
            (Some(_), None, None) => self
                .secret(&at, "token", raw.token())
                .map(GithubAuth::Token),
            (Some(token_key), app_id, key_key) => {
                let other = match (app_id, key_key) {
                    (None, Some(key_key)) => key_key,
                    _ => "app_id".to_owned(),
                };
                self.key_error(
                    &at.key(other),
                    format!("cannot be combined with {token_key}"),
                    "authenticate with a token, or as a GitHub App with app_id and private_key_file",
                );
                None
            }
            (None, Some(app_id), Some(_)) => {
                if app_id == 0 {
                    self.error(&at.key("app_id"), "must be a positive App id");
                }
                let private_key = self.secret(&at, "private_key", raw.private_key())?;
                Some(GithubAuth::App {
                    app_id,
                    private_key,
                })
            }
            (None, Some(_), None) => {
                self.key_error(
                    &at.key("app_id"),
                    "needs a private key",
                    "add private_key_file or private_key_env",
                );
                None
            }
            (None, None, Some(key_key)) => {
                self.key_error(
                    &at.key(key_key),
                    "needs app_id",
                    "add the GitHub App's id as app_id",
                );
                None
            }
        };
        let webhook_secrets = self.secret(&at, "webhook_secrets", raw.webhook_secrets());
        if given_keys("webhook_secrets", &raw.webhook_secrets()).is_empty()
            && !self.is_rejected_group(&at, "webhook_secrets")
        {
            let warning = self
                .doc
                .key_error(&at, "no webhook secrets: every delivery to /webhooks/github will be refused with 401")
                .with_hint("set webhook_secrets_env or webhook_secrets_file")
                .into_warning();
            self.warnings.push(warning);
        }
        Some(GithubSettings {
            base_url,
            auth,
            webhook_secrets,
        })
    }

    fn executor(&mut self, raw: RawExecutor) -> ExecutorSettings {
        let at = root().key("executor");
        let concurrency = raw.concurrency.unwrap_or(DEFAULT_CONCURRENCY as u64);
        if !(1..=1024).contains(&concurrency) {
            self.error(&at.key("concurrency"), "must be between 1 and 1024");
        }
        let max_attempts = raw.max_attempts.unwrap_or(u64::from(DEFAULT_MAX_ATTEMPTS));
        if !(1..=100).contains(&max_attempts) {
            self.error(&at.key("max_attempts"), "must be between 1 and 100");
        }
        let backoff_base = or(raw.backoff_base, DEFAULT_BACKOFF_BASE);
        self.positive(&at.key("backoff_base"), backoff_base);
        let backoff_cap = or(raw.backoff_cap, DEFAULT_BACKOFF_CAP);
        self.longer(
            &at,
            ("backoff_cap", backoff_cap),
            ("backoff_base", backoff_base),
        );
        ExecutorSettings {
            concurrency: usize::try_from(concurrency).unwrap_or(DEFAULT_CONCURRENCY),
            max_attempts: u32::try_from(max_attempts).unwrap_or(DEFAULT_MAX_ATTEMPTS),
            backoff_base,
            backoff_cap: backoff_cap.max(backoff_base),
            shutdown_grace: or(raw.shutdown_grace, DEFAULT_SHUTDOWN_GRACE),
        }
    }
}

fn or(value: Option<DurationStr>, default: Duration) -> Duration {
    value.map_or(default, DurationStr::get)
}

mod checks;
mod notifiers;
