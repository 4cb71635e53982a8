//! Group commit for the executor's records: every worker that needs its last write durable asks
//! here, and one flush at a time serves every request made before it started.
//!
//! Two reasons. Throughput: concurrent workers share fsyncs instead of queueing their own. And
//! safety: sled 0.34 runs each `flush_async` on its small IO thread pool, and with about seven
//! flushes in flight every pool thread waits for a buffer write that no free thread is left to
//! perform, so the store deadlocks. Here at most one executor flush is ever in flight.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::{Store, StoreError};

/// Coalesces flush requests; share one per store.
#[derive(Debug)]
pub struct GroupFlush {
    store: Store,
    /// Requests issued so far; a request's writes happened before its number was taken.
    requested: AtomicU64,
    /// Every request up to this number is durable.
    completed: AtomicU64,
    /// Held by the one flush in flight.
    gate: tokio::sync::Mutex<()>,
}

impl GroupFlush {
    pub fn new(store: Store) -> GroupFlush {
        GroupFlush {
            store,
            requested: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            gate: tokio::sync::Mutex::new(()),
        }
    }

    /// Returns once every write this task made before the call is durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let _turn = self.gate.lock().await;
        if self.completed.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        // Every request numbered so far wrote before this flush starts: it covers them all.
        let covered = self.requested.load(Ordering::SeqCst);
        flush_blocking_pool(&self.store).await?;
        self.completed.fetch_max(covered, Ordering::SeqCst);
        Ok(())
    }
}

/// Flushes from the blocking pool. The fsync is blocking work either way (sled does it on its
/// own thread); waiting for it here also keeps a runtime with paused time (the tests) from
/// jumping its clock while the disk works, which would fire unrelated timeouts early.
async fn flush_blocking_pool(store: &Store) -> Result<(), StoreError> {
    let handle = store.clone();
    match tokio::task::spawn_blocking(move || futures::executor::block_on(handle.flush())).await {
        Ok(flushed) => flushed.map(|_| ()),
        // The blocking pool is shutting down: flush from here instead.
        Err(_) => store.flush().await.map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::StoreOptions;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_concurrent_requests_share_flushes_and_all_return() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreOptions::new(dir.path())).unwrap();
        let group = Arc::new(GroupFlush::new(store.clone()));
        let mut tasks = Vec::new();
        for i in 0..64 {
            let group = group.clone();
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .transaction(|tx| tx.put_meta(&format!("k{i}"), "v"))
                    .unwrap();
                group.flush().await.unwrap();
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(group.completed.load(Ordering::SeqCst), 64);
    }
}
