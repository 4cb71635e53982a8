//! Atomic multi-tree writes: `Store::transaction`, its abort type and its re-entrance guard.
//!
//! sled 0.34 runs a multi-tree transaction under a process-wide lock and may run the closure more
//! than once, so the closure must be short and pure apart from `Tx` writes: no network, no
//! channel sends, no effects, no store methods or store iterators (those would deadlock; they
//! return `StoreError::InsideTransaction` instead). Build inputs before, act on the returned
//! value after. The typed view the closure receives is [`Tx`](super::Tx) in `writes.rs`.

use std::cell::Cell;
use std::error::Error as StdError;

use sled::transaction::{
    ConflictableTransactionError, TransactionError, Transactional, UnabortableTransactionError,
};

use super::error::StoreError;
use super::writes::Tx;
use super::Store;

/// Why a transaction closure stopped. Propagate the errors of `Tx` methods with `?` unchanged:
/// one of them asks sled to retry the closure. Use [`TxAbort::abort`] for your own reasons.
#[derive(Debug)]
pub struct TxAbort(AbortKind);

#[derive(Debug)]
enum AbortKind {
    /// sled detected a conflict and will rerun the closure.
    Conflict,
    Storage(sled::Error),
    Store(StoreError),
    Caller(Box<dyn StdError + Send + Sync>),
}

impl TxAbort {
    /// Aborts the transaction with the caller's own error: nothing is written and
    /// `Store::transaction` returns `StoreError::Aborted(err)`.
    pub fn abort(err: impl Into<Box<dyn StdError + Send + Sync>>) -> TxAbort {
        TxAbort(AbortKind::Caller(err.into()))
    }

    pub(super) fn store(err: StoreError) -> TxAbort {
        TxAbort(AbortKind::Store(err))
    }

    pub(super) fn storage(err: sled::Error) -> TxAbort {
        TxAbort(AbortKind::Storage(err))
    }
}

impl std::fmt::Display for TxAbort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            AbortKind::Conflict => f.write_str("transaction conflict (retried by the store)"),
            AbortKind::Storage(e) => write!(f, "storage error: {e}"),
            AbortKind::Store(e) => e.fmt(f),
            AbortKind::Caller(e) => write!(f, "aborted: {e}"),
        }
    }
}

impl From<UnabortableTransactionError> for TxAbort {
    fn from(e: UnabortableTransactionError) -> Self {
        match e {
            UnabortableTransactionError::Conflict => TxAbort(AbortKind::Conflict),
            UnabortableTransactionError::Storage(e) => TxAbort(AbortKind::Storage(e)),
        }
    }
}

/// What a transaction ended with when it did not commit.
enum Failure {
    Store(StoreError),
    Caller(Box<dyn StdError + Send + Sync>),
}

thread_local! {
    /// Set while this thread runs a transaction closure (sled's lock is not re-entrant).
    static IN_TX: Cell<bool> = const { Cell::new(false) };
}

struct InTx;

impl InTx {
    fn enter() -> Result<InTx, StoreError> {
        ensure_outside_tx("transaction")?;
        IN_TX.with(|c| c.set(true));
        Ok(InTx)
    }
}

impl Drop for InTx {
    fn drop(&mut self) {
        IN_TX.with(|c| c.set(false));
    }
}

/// Refuses store calls from inside a transaction closure instead of deadlocking.
pub(crate) fn ensure_outside_tx(op: &'static str) -> Result<(), StoreError> {
    if IN_TX.with(Cell::get) {
        return Err(StoreError::InsideTransaction { op });
    }
    Ok(())
}

impl Store {
    /// Runs `f` as one atomic, serializable write over every tree and returns its value.
    ///
    /// `f` may run more than once (sled retries on conflict), so it must be pure apart from `Tx`
    /// writes; nothing is written when it returns an error. Writes are atomic but durable only
    /// after [`Store::flush`]: flush before acknowledging anything or starting an effect. The
    /// call blocks (briefly) on a process-wide lock; keep closures short.
    pub fn transaction<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: Fn(&Tx<'_>) -> Result<T, TxAbort>,
    {
        let _in_tx = InTx::enter()?;
        let trees = self.inner.trees.as_slice();
        let result = <[sled::Tree] as Transactional<Failure>>::transaction(trees, |view| {
            f(&Tx::new(view)).map_err(|abort| match abort.0 {
                AbortKind::Conflict => ConflictableTransactionError::Conflict,
                AbortKind::Storage(e) => ConflictableTransactionError::Storage(e),
                AbortKind::Store(e) => ConflictableTransactionError::Abort(Failure::Store(e)),
                AbortKind::Caller(e) => ConflictableTransactionError::Abort(Failure::Caller(e)),
            })
        });
        result.map_err(|e| match e {
            TransactionError::Abort(Failure::Store(e)) => e,
            TransactionError::Abort(Failure::Caller(e)) => StoreError::Aborted(e),
            TransactionError::Storage(error) => StoreError::Storage {
                op: "transaction",
                error,
            },
        })
    }
}
