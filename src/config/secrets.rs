//! Resolved secrets of a [`Settings`]: read once at startup, held as `SecretString`s, and
//! printed by `Debug` as `[redacted]`.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use super::{GithubAuth, NotifierUrl, SecretSetting, Settings};
use crate::secret::{split_secret_list, ProcessEnv, Redacted, SecretError, SecretSource};
use crate::yaml::Diagnostic;

/// Every secret the daemon needs.
pub struct Secrets {
    /// The Codegen API token.
    pub codegen_token: SecretString,
    /// GitHub credentials, when `github:` is configured.
    pub github: Option<GithubSecrets>,
    /// Per notifier, by name.
    pub notifiers: BTreeMap<String, NotifierSecrets>,
}

/// GitHub's secrets.
pub struct GithubSecrets {
    /// How to authenticate, if at all.
    pub auth: Option<GithubCredentials>,
    /// Accepted webhook secrets (several allow rotation); empty refuses every delivery.
    pub webhook_secrets: Vec<SecretString>,
}

/// Resolved GitHub authentication.
pub enum GithubCredentials {
    /// A token.
    Token(SecretString),
    /// A GitHub App.
    App {
        /// The App's id (not secret).
        app_id: u64,
        /// PEM private key.
        private_key: SecretString,
    },
}

/// One notifier's secrets.
pub struct NotifierSecrets {
    /// Where to POST (Slack webhook URLs carry a token, so all URLs are treated as secret).
    pub url: SecretString,
    /// HMAC key for the signature header.
    pub secret: Option<SecretString>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("codegen_token", &Redacted)
            .field("github", &self.github)
            .field("notifiers", &self.notifiers)
            .finish()
    }
}

impl fmt::Debug for GithubSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubSecrets")
            .field("auth", &self.auth)
            .field(
                "webhook_secrets",
                &format_args!("[redacted; {}]", self.webhook_secrets.len()),
            )
            .finish()
    }
}

impl fmt::Debug for GithubCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GithubCredentials::Token(_) => f.debug_tuple("Token").field(&Redacted).finish(),
            GithubCredentials::App { app_id, .. } => f
                .debug_struct("App")
                .field("app_id", app_id)
                .field("private_key", &Redacted)
                .finish(),
        }
    }
}

impl fmt::Debug for NotifierSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifierSecrets")
            .field("url", &Redacted)
            .field("secret", &self.secret.as_ref().map(|_| Redacted))
            .finish()
    }
}

impl SecretSetting {
    /// Reads the secret; a failure is reported at the reference in the config file.
    pub fn resolve_with(
        &self,
        source: &dyn SecretSource,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<SecretString> {
        self.reference
            .resolve_with(source)
            .map_err(|err| errors.push(self.diagnostic(err.to_string())))
            .ok()
    }
}

impl Settings {
    /// Reads every secret from the environment and files; all failures are reported, each
    /// naming the variable or file but never a value.
    pub fn resolve_secrets(&self) -> Result<Secrets, Vec<Diagnostic>> {
        self.resolve_secrets_with(&ProcessEnv)
    }

    /// [`Settings::resolve_secrets`] with environment variables taken from `source`.
    pub fn resolve_secrets_with(
        &self,
        source: &dyn SecretSource,
    ) -> Result<Secrets, Vec<Diagnostic>> {
        let mut errors = Vec::new();
        let codegen_token = self.codegen.token.resolve_with(source, &mut errors);
        let github = self.github.as_ref().map(|github| GithubSecrets {
            auth: github
                .auth
                .as_ref()
                .and_then(|auth| resolve_auth(auth, source, &mut errors)),
            webhook_secrets: github
                .webhook_secrets
                .as_ref()
                .and_then(|setting| resolve_list(setting, source, &mut errors))
                .unwrap_or_default(),
        });
        let mut notifiers = BTreeMap::new();
        for (name, notifier) in &self.notifiers {
            let url = match &notifier.url {
                NotifierUrl::Literal(url) => Some(SecretString::from(url.as_str())),
                NotifierUrl::Secret(setting) => resolve_url(setting, source, &mut errors),
            };
            // `Some(None)`: no secret configured; `None`: configured but unreadable.
            let secret = match &notifier.secret {
                None => Some(None),
                Some(setting) => setting.resolve_with(source, &mut errors).map(Some),
            };
            if let (Some(url), Some(secret)) = (url, secret) {
                notifiers.insert(name.clone(), NotifierSecrets { url, secret });
            }
        }
        errors.sort_by_key(Diagnostic::location);
        match codegen_token {
            Some(codegen_token) if errors.is_empty() => Ok(Secrets {
                codegen_token,
                github,
                notifiers,
            }),
            _ => Err(errors),
        }
    }

    /// Only the Codegen token: what the `api` commands need.
    pub fn resolve_codegen_token(&self) -> Result<SecretString, Vec<Diagnostic>> {
        let mut errors = Vec::new();
        self.codegen
            .token
            .resolve_with(&ProcessEnv, &mut errors)
            .ok_or(errors)
    }
}

fn resolve_auth(
    auth: &GithubAuth,
    source: &dyn SecretSource,
    errors: &mut Vec<Diagnostic>,
) -> Option<GithubCredentials> {
    match auth {
        GithubAuth::Token(setting) => setting
            .resolve_with(source, errors)
            .map(GithubCredentials::Token),
        GithubAuth::App {
            app_id,
            private_key,
        } => {
            let key = private_key.resolve_with(source, errors)?;
            let text = key.expose_secret();
            if !(text.contains("-----BEGIN") && text.contains("PRIVATE KEY")) {
                let problem = invalid(&private_key.reference, "does not hold a PEM private key");
                errors.push(private_key.diagnostic(problem.to_string()));
                return None;
            }
            Some(GithubCredentials::App {
                app_id: *app_id,
                private_key: key,
            })
        }
    }
}

fn resolve_list(
    setting: &SecretSetting,
    source: &dyn SecretSource,
    errors: &mut Vec<Diagnostic>,
) -> Option<Vec<SecretString>> {
    let value = setting.resolve_with(source, errors)?;
    split_secret_list(&setting.reference, &value)
        .map_err(|err| errors.push(setting.diagnostic(err.to_string())))
        .ok()
}

fn resolve_url(
    setting: &SecretSetting,
    source: &dyn SecretSource,
    errors: &mut Vec<Diagnostic>,
) -> Option<SecretString> {
    let value = setting.resolve_with(source, errors)?;
    let url = value.expose_secret().trim();
    let valid =
        url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
    if !valid {
        let problem = invalid(&setting.reference, "does not hold an http or https URL");
        errors.push(setting.diagnostic(problem.to_string()));
        return None;
    }
    Some(SecretString::from(url))
}

fn invalid(reference: &crate::secret::SecretRef, problem: &str) -> SecretError {
    SecretError::Invalid {
        reference: reference.to_string(),
        problem: problem.to_owned(),
    }
}
