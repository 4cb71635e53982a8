//! Secret references (`*_env`, `*_file`, systemd credentials) and their resolution into
//! `SecretString`s. Errors name the reference, never the value.
//!
//! Configuration only ever names a secret. Resolution happens when the daemon starts, not
//! when the file is parsed, so `check` can validate a config on a machine without the secrets.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

/// The variable systemd sets to the directory of `LoadCredential=` files.
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// Where a secret comes from. Holds names and paths only, so deriving `Debug` is safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// An environment variable, by name.
    Env(String),
    /// A file, whose trailing newlines are dropped.
    File(PathBuf),
    /// A file named so in `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`).
    Credential(String),
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "environment variable {name}"),
            SecretRef::File(path) => write!(f, "file {}", path.display()),
            SecretRef::Credential(name) => write!(f, "credential {name}"),
        }
    }
}

/// Why a secret could not be read. Messages name the reference and never the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The variable is not set.
    #[error("environment variable {name} is not set")]
    EnvNotSet {
        /// The variable.
        name: String,
    },
    /// The variable holds bytes that are not UTF-8.
    #[error("environment variable {name} is not valid UTF-8")]
    EnvNotUnicode {
        /// The variable.
        name: String,
    },
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why (an OS error: it never contains file contents). Part of the message, so not
        /// also the error's `source()`.
        error: std::io::Error,
    },
    /// The file holds bytes that are not UTF-8.
    #[error("{path} is not valid UTF-8")]
    FileNotUnicode {
        /// The file.
        path: PathBuf,
    },
    /// A credential was named but systemd gave us no credentials directory.
    #[error(
        "credential {name} cannot be found: $CREDENTIALS_DIRECTORY is not set \
         (add LoadCredential={name}:... to the unit, or use an _env or _file reference)"
    )]
    NoCredentialsDirectory {
        /// The credential.
        name: String,
    },
    /// The source exists but holds nothing (after trimming newlines).
    #[error("{reference} is empty")]
    Empty {
        /// The reference, as displayed.
        reference: String,
    },
    /// The value is there but unusable; `problem` must not quote it.
    #[error("{reference}: {problem}")]
    Invalid {
        /// The reference, as displayed.
        reference: String,
        /// What is wrong with the value.
        problem: String,
    },
}

/// Where secrets are read from: the process environment, or a fake in tests.
pub trait SecretSource {
    /// An environment variable, if set.
    fn var(&self, name: &str) -> Option<OsString>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl SecretSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<OsString> {
        std::env::var_os(name)
    }
}

impl SecretRef {
    /// Reads the secret from the process environment and the file system.
    pub fn resolve(&self) -> Result<SecretString, SecretError> {
        self.resolve_with(&ProcessEnv)
    }

    /// Reads the secret, taking environment variables from `source`.
    pub fn resolve_with(&self, source: &dyn SecretSource) -> Result<SecretString, SecretError> {
        let value = match self {
            SecretRef::Env(name) => {
                let value = source
                    .var(name)
                    .ok_or_else(|| SecretError::EnvNotSet { name: name.clone() })?;
                let value = value
                    .into_string()
                    .map_err(|_| SecretError::EnvNotUnicode { name: name.clone() })?;
                SecretString::from(value)
            }
            SecretRef::File(path) => read_secret_file(path)?,
            SecretRef::Credential(name) => {
                let directory = source
                    .var(CREDENTIALS_DIRECTORY)
                    .ok_or_else(|| SecretError::NoCredentialsDirectory { name: name.clone() })?;
                read_secret_file(&PathBuf::from(directory).join(name))?
            }
        };
        if value.expose_secret().trim().is_empty() {
            return Err(SecretError::Empty {
                reference: self.to_string(),
            });
        }
        Ok(value)
    }
}

/// Reads a secret file, dropping the trailing newline editors and `echo` add.
fn read_secret_file(path: &Path) -> Result<SecretString, SecretError> {
    let bytes = std::fs::read(path).map_err(|error| SecretError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let mut text = String::from_utf8(bytes).map_err(|_| SecretError::FileNotUnicode {
        path: path.to_path_buf(),
    })?;
    let kept = text.trim_end_matches(['\n', '\r']).len();
    text.truncate(kept);
    Ok(SecretString::from(text))
}

/// Splits a comma-separated list of secrets (several webhook secrets allow rotation);
/// blanks around entries are dropped, and an empty entry is an error.
pub fn split_secret_list(
    reference: &SecretRef,
    value: &SecretString,
) -> Result<Vec<SecretString>, SecretError> {
    value
        .expose_secret()
        .split(',')
        .map(|part| {
            let part = part.trim();
            if part.is_empty() {
                Err(SecretError::Invalid {
                    reference: reference.to_string(),
                    problem: "the comma-separated list has an empty entry".to_owned(),
                })
            } else {
                Ok(SecretString::from(part))
            }
        })
        .collect()
}

/// Prints `[redacted]`: for `Debug` impls of types that hold secrets.
pub struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Vars(HashMap<&'static str, String>);

    impl SecretSource for Vars {
        fn var(&self, name: &str) -> Option<OsString> {
            self.0.get(name).map(OsString::from)
        }
    }

    fn vars(pairs: &[(&'static str, &str)]) -> Vars {
        Vars(pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect())
    }

    #[test]
    fn env_reference_reads_the_variable() {
        let source = vars(&[("TOKEN", "s3cret")]);
        let value = SecretRef::Env("TOKEN".into())
            .resolve_with(&source)
            .unwrap();
        assert_eq!(value.expose_secret(), "s3cret");
        let err = SecretRef::Env("OTHER".into())
            .resolve_with(&source)
            .unwrap_err();
        assert_eq!(err.to_string(), "environment variable OTHER is not set");
    }

    #[test]
    fn file_reference_drops_trailing_newlines_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  abc def \r\n\n").unwrap();
        let value = SecretRef::File(path).resolve_with(&vars(&[])).unwrap();
        assert_eq!(value.expose_secret(), "  abc def ");
    }

    #[test]
    fn credential_is_read_from_the_credentials_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("codegen-token"), "tok\n").unwrap();
        let source = vars(&[(CREDENTIALS_DIRECTORY, dir.path().to_str().unwrap())]);
        let value = SecretRef::Credential("codegen-token".into())
            .resolve_with(&source)
            .unwrap();
        assert_eq!(value.expose_secret(), "tok");
        let err = SecretRef::Credential("codegen-token".into())
            .resolve_with(&vars(&[]))
            .unwrap_err();
        assert!(err
            .to_string()
            .contains("$CREDENTIALS_DIRECTORY is not set"));
    }

    #[test]
    fn empty_secrets_and_empty_list_entries_are_errors() {
        let source = vars(&[("BLANK", "  "), ("LIST", "a, b,,c")]);
        let err = SecretRef::Env("BLANK".into())
            .resolve_with(&source)
            .unwrap_err();
        assert_eq!(err.to_string(), "environment variable BLANK is empty");
        let list = SecretRef::Env("LIST".into());
        let value = list.resolve_with(&source).unwrap();
        let err = split_secret_list(&list, &value).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable LIST: the comma-separated list has an empty entry"
        );
    }
}
