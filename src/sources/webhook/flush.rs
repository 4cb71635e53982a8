//! Group commit for webhook answers: every delivery must be durable before its 2xx, and
//! deliveries committed while a flush runs share the next one instead of each paying an fsync.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::{Store, StoreError};

/// Tickets of committed writes and the highest ticket known durable.
#[derive(Debug)]
pub struct GroupFlush {
    store: Store,
    /// Tickets handed out, one per committed write (or duplicate check) that awaits durability.
    written: AtomicU64,
    /// Every ticket up to this one is durable.
    flushed: AtomicU64,
    /// Held by the one caller flushing; the others wait and usually find their ticket covered.
    leader: tokio::sync::Mutex<()>,
}

impl GroupFlush {
    pub fn new(store: Store) -> GroupFlush {
        GroupFlush {
            store,
            written: AtomicU64::new(0),
            flushed: AtomicU64::new(0),
            leader: tokio::sync::Mutex::new(()),
        }
    }

    /// Takes a ticket for a write that has committed (call it after the transaction returns).
    pub fn ticket(&self) -> u64 {
        self.written.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Returns once every write committed before `ticket` was taken is on disk. A flush started
    /// after reading `written` covers every commit that preceded it; one caller flushes for all
    /// the tickets taken so far. A failed flush is retried by the next waiter.
    pub async fn durable(&self, ticket: u64) -> Result<(), StoreError> {
        if self.flushed.load(Ordering::Acquire) >= ticket {
            return Ok(());
        }
        let _leader = self.leader.lock().await;
        if self.flushed.load(Ordering::Acquire) >= ticket {
            return Ok(());
        }
        let target = self.written.load(Ordering::Acquire);
        self.store.flush().await?;
        self.flushed.fetch_max(target, Ordering::AcqRel);
        Ok(())
    }
}
