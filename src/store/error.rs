//! The store's error type: what went wrong, on which tree and key, in words an operator can act on.

use std::path::PathBuf;

/// Everything the store can fail with. Callers decide on the variant: `Locked` and `SchemaTooNew`
/// are startup configuration problems, `Decode` is a damaged record, `Aborted` is the caller's own
/// reason to abort a transaction, the rest are storage failures.
///
/// Each message includes the underlying error's, which is therefore not also reported as the
/// error's `source()`: an error chain printed whole (`{:#}`) says each cause once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process (or another open handle in this process) holds the store's file lock.
    #[error(
        "store at {path} is locked: another codegen-sentinel process (or another handle in this \
         process) has it open; stop that process or point store.path elsewhere"
    )]
    Locked { path: PathBuf },

    /// The store was written by a newer codegen-sentinel whose record layout this build cannot read.
    #[error(
        "store at {path} has schema version {found}, this build understands up to {supported}; \
         upgrade codegen-sentinel or use another store.path"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// The `meta` schema version is unreadable: the store is damaged or not ours.
    #[error("store at {path} has an unreadable schema version {value:?}")]
    BadSchema { path: PathBuf, value: String },

    /// sled could not open the store for another reason (permissions, disk, corrupt files).
    #[error("cannot open store at {path}: {error}")]
    Open { path: PathBuf, error: sled::Error },

    /// A read, write or flush failed in sled itself.
    #[error("store {op} failed: {error}")]
    Storage {
        op: &'static str,
        error: sled::Error,
    },

    /// A stored record could not be decoded: a damaged record or an unknown record version.
    #[error("cannot decode record in tree `{tree}` at key {key}: {error}")]
    Decode {
        tree: &'static str,
        key: String,
        error: serde_json::Error,
    },

    /// A stored key does not have the layout its tree expects.
    #[error("malformed key in tree `{tree}`: {key}")]
    BadKey { tree: &'static str, key: String },

    /// A record could not be serialized (never expected with the store's own types).
    #[error("cannot encode record for tree `{tree}`: {error}")]
    Encode {
        tree: &'static str,
        error: serde_json::Error,
    },

    /// A write would break one of the store's invariants (a bug in the caller or the store).
    #[error("store invariant violated in tree `{tree}` at key {key}: {message}")]
    Invariant {
        tree: &'static str,
        key: String,
        message: &'static str,
    },

    /// A store method was called from inside a transaction closure on the same thread; sled's
    /// transaction lock is not re-entrant, so this would deadlock. Use the `Tx` methods instead.
    #[error("store method `{op}` called inside a transaction closure; use the Tx methods instead")]
    InsideTransaction { op: &'static str },

    /// The transaction closure aborted with the caller's own error; nothing was written.
    #[error("transaction aborted: {0}")]
    Aborted(Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub(crate) fn storage(op: &'static str) -> impl FnOnce(sled::Error) -> StoreError {
        move |error| StoreError::Storage { op, error }
    }
}
