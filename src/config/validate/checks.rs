//! The checks validation is built from: located errors, URLs, durations, paths and secret groups.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::super::raw::RawSecret;
use super::super::SecretSetting;
use super::Checker;
use crate::secret::SecretRef;
use crate::yaml::YamlPath;

/// The keys of a secret group that are set, in `X_env`, `X_file`, `X` order.
pub(super) fn given_keys(stem: &str, raw: &RawSecret<'_>) -> Vec<String> {
    let mut keys = Vec::new();
    if raw.env.is_some() {
        keys.push(format!("{stem}_env"));
    }
    if raw.file.is_some() {
        keys.push(format!("{stem}_file"));
    }
    if raw.credential.is_some() {
        keys.push(stem.to_owned());
    }
    keys
}

/// Environment variable names as shells write them.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A systemd credential is a plain file name inside `$CREDENTIALS_DIRECTORY`.
fn is_credential_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

impl Checker<'_> {
    pub(super) fn error(&mut self, path: &YamlPath, message: impl Into<String>) {
        self.errors.push(self.doc.error(path, message));
    }

    pub(super) fn error_hint(&mut self, path: &YamlPath, message: impl Into<String>, hint: &str) {
        self.errors
            .push(self.doc.error(path, message).with_hint(hint));
    }

    /// An error about an entry as a whole, pointing at its key.
    pub(super) fn key_error(&mut self, path: &YamlPath, message: impl Into<String>, hint: &str) {
        self.errors
            .push(self.doc.key_error(path, message).with_hint(hint));
    }

    /// Whether `path` (or a section holding it) failed to deserialize and was dropped.
    pub(super) fn is_rejected(&self, path: &YamlPath) -> bool {
        self.rejected.iter().any(|r| path.starts_with(r))
    }

    /// Whether any key of the secret group `stem` under `at` was dropped.
    pub(super) fn is_rejected_group(&self, at: &YamlPath, stem: &str) -> bool {
        [
            format!("{stem}_env"),
            format!("{stem}_file"),
            stem.to_owned(),
        ]
        .iter()
        .any(|key| self.is_rejected(&at.key(key.as_str())))
    }

    /// A path from the file, made absolute against the file's directory.
    pub(super) fn path(&self, path: &Path) -> PathBuf {
        self.base_dir.join(path)
    }

    /// An http(s) URL without its trailing slash, or `default` when not given (or invalid).
    pub(super) fn url(&mut self, path: &YamlPath, value: Option<&str>, default: &str) -> String {
        value
            .and_then(|text| self.check_url(path, text))
            .unwrap_or_else(|| default.to_owned())
    }

    /// Checks an http(s) URL. Messages never quote it: it may carry a token.
    pub(super) fn check_url(&mut self, path: &YamlPath, text: &str) -> Option<String> {
        match url::Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
                Some(text.trim_end_matches('/').to_owned())
            }
            Ok(_) => {
                self.error_hint(
                    path,
                    "must be an http or https URL",
                    "e.g. https://example.com/hook",
                );
                None
            }
            Err(err) => {
                self.error(path, format!("not a valid URL: {err}"));
                None
            }
        }
    }

    pub(super) fn positive(&mut self, path: &YamlPath, value: Duration) {
        if value.is_zero() {
            self.error(path, "must be longer than 0s");
        }
    }

    /// Checks `long >= short` for two durations of the section at `at`.
    pub(super) fn longer(
        &mut self,
        at: &YamlPath,
        long: (&str, Duration),
        short: (&str, Duration),
    ) {
        let (long_key, short_key) = (at.key(long.0), at.key(short.0));
        if long.1 < short.1 && !self.is_rejected(&long_key) && !self.is_rejected(&short_key) {
            let shown = humantime::format_duration(short.1);
            self.error(&long_key, format!("must be at least {} ({shown})", short.0));
        }
    }

    /// Reports that only one of a group of keys may be set; `keys` are those set, under `at`.
    pub(super) fn only_one<S: AsRef<str>>(&mut self, at: &YamlPath, keys: &[S], group: &str) {
        if let [first, second, ..] = keys {
            let (first, second) = (first.as_ref(), second.as_ref());
            self.key_error(
                &at.key(second),
                format!("cannot be combined with {first}"),
                &format!("set only one of {group}"),
            );
        }
    }

    /// A required secret group: exactly one of `X_env`, `X_file` and `X`.
    pub(super) fn required_secret(
        &mut self,
        at: &YamlPath,
        stem: &str,
        raw: RawSecret<'_>,
    ) -> Option<SecretSetting> {
        if given_keys(stem, &raw).is_empty() && !self.is_rejected_group(at, stem) {
            let hint =
                format!("set {stem}_env, {stem}_file, or {stem} (a systemd credential name)");
            self.key_error(at, format!("missing `{stem}`"), &hint);
            return None;
        }
        self.secret(at, stem, raw)
    }

    /// An optional secret group: at most one of `X_env`, `X_file` and `X`.
    pub(super) fn secret(
        &mut self,
        at: &YamlPath,
        stem: &str,
        raw: RawSecret<'_>,
    ) -> Option<SecretSetting> {
        let keys = given_keys(stem, &raw);
        if keys.len() > 1 {
            self.only_one(at, &keys, &format!("{stem}_env, {stem}_file or {stem}"));
            return None;
        }
        let path = at.key(keys.first()?.as_str());
        let reference = if let Some(name) = raw.env {
            if !is_env_name(name) {
                // Not quoted: a value that is no variable name may be a pasted secret.
                let hint =
                    "letters, digits and _, not starting with a digit, e.g. CODEGEN_API_TOKEN";
                self.error_hint(&path, "not a valid environment variable name", hint);
                return None;
            }
            SecretRef::Env(name.clone())
        } else if let Some(file) = raw.file {
            SecretRef::File(self.path(file))
        } else {
            let name = raw.credential?;
            if !is_credential_name(name) {
                let hint = format!(
                    "a file name in $CREDENTIALS_DIRECTORY; to read a path, use {stem}_file"
                );
                self.error_hint(&path, "not a valid credential name", &hint);
                return None;
            }
            SecretRef::Credential(name.clone())
        };
        Some(SecretSetting {
            reference,
            file: self.doc.file().to_path_buf(),
            location: self
                .doc
                .source_map()
                .locate(&path)
                .unwrap_or(crate::yaml::Location::START),
            path: path.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_and_credential_names() {
        assert!(is_env_name("CODEGEN_API_TOKEN"));
        assert!(is_env_name("_x1"));
        assert!(!is_env_name("1X"));
        assert!(!is_env_name("ghp-abc"));
        assert!(!is_env_name(""));
        assert!(is_credential_name("codegen-token"));
        assert!(!is_credential_name("/etc/token"));
        assert!(!is_credential_name(".."));
    }
}
