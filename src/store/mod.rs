//! The durable state of the daemon in sled: the only module that touches sled.
//!
//! One [`Store`] (cheap to clone) holds named trees with big-endian typed keys ([`keys`]) and
//! version-tagged JSON records ([`records`]). Writes that belong together go through one
//! [`Store::transaction`] (see [`Tx`]); they are durable after [`Store::flush`], which callers
//! await before acknowledging a webhook or starting an effect. Reads outside transactions are
//! in [`read`]; [`retention`] prunes old history.
//!
//! Trees: `runs` (+ `runs_active`), `transitions`, `events` (+ `event_ids`, `run_events`),
//! `deliveries`, `jobs` (+ `jobs_open`), `journal`, `firings`, `schedule_marks`, `silences`,
//! `meta`, `pr_runs` (runs by pull request, see [`pr_index`]). Layouts and figures:
//! `docs/store.md`.

mod codec;
mod compress;
mod error;
pub mod keys;
pub mod pr_index;
mod raw_event;
pub mod read;
pub mod records;
pub mod retention;
mod trees;
mod tx;
mod writes;

#[cfg(test)]
mod decode_tests;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use error::StoreError;
pub use raw_event::Payload;
pub use read::{JobUpdate, Records};
pub use records::{
    is_terminal_status, DeliveryRecord, EventRecord, EventSource, FiringRecord, JobRecord,
    JobState, JournalRecord, RunRecord, ScheduleMark, SilenceRecord, TransitionRecord,
};
pub use retention::{run_retention, PruneStats, RetentionPolicy};
pub use trees::TreeName;
pub use tx::TxAbort;
pub use writes::{NewEvent, NewJob, NewSilence, NewTransition, Tx};

use trees::Trees;

/// The record layout version this build writes and reads (`meta` key `schema_version`).
///
/// 2: records of 2 KiB or more are zstd-compressed, and deliveries no longer carry their body
/// (the payload is in the event).
/// 3: records of 2 KiB or more are lz4-compressed instead.
/// 4: an event whose webhook payload is 2 KiB or more is stored as its record's plain text
/// around the lz4-compressed payload (`compress::pack_around`).
///
/// An older store is read as it is (records of every earlier version still decode) and marked
/// current on open, so that an older build refuses it instead of finding records it cannot read.
pub const SCHEMA_VERSION: u32 = 4;

const SCHEMA_KEY: &str = "schema_version";

/// Default sled page cache: bounds the store's share of memory. 16 MiB holds the hot part of
/// the trees (active runs, recent events, the delivery ids of the week); on the webhook bench
/// 32 MiB was no faster and cost 8 MiB more peak RSS (docs/webhooks.md).
pub const DEFAULT_CACHE_CAPACITY: u64 = 16 << 20;

/// Default background flush cadence: the most a crash can lose of writes nobody flushed.
pub const DEFAULT_FLUSH_EVERY: Duration = Duration::from_millis(500);

/// How to open the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Directory of the sled database (created if missing).
    pub path: PathBuf,
    /// Page cache size in bytes.
    pub cache_capacity: u64,
    /// Background flush interval; None flushes only when asked.
    pub flush_every: Option<Duration>,
}

impl StoreOptions {
    /// Options with the defaults for everything but the path.
    pub fn new(path: impl Into<PathBuf>) -> StoreOptions {
        StoreOptions {
            path: path.into(),
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            flush_every: Some(DEFAULT_FLUSH_EVERY),
        }
    }
}

/// Handle to the open store; clones share one database.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    trees: Trees,
    path: PathBuf,
    flushes: FlushGroup,
}

/// Group commit: one flush in flight at a time serves every caller whose writes preceded it.
///
/// Two reasons. Throughput: concurrent callers (webhook answers, executor steps, pollers) share
/// fsyncs instead of queueing their own. Safety: sled 0.34 runs each flush on a small IO thread
/// pool, and with about seven flushes in flight every pool thread waits for a buffer write no
/// free thread is left to perform, so the store deadlocks.
#[derive(Default)]
struct FlushGroup {
    /// Requests issued so far; a request's writes happened before its number was taken.
    requested: AtomicU64,
    /// Every request up to this number is durable.
    completed: AtomicU64,
    /// Held by the one flush in flight.
    gate: tokio::sync::Mutex<()>,
}

impl FlushGroup {
    /// The number of a flush request whose writes happened before this call.
    fn take_ticket(&self) -> u64 {
        self.requested.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Whether a flush that started after request `ticket` has completed.
    fn covers(&self, ticket: u64) -> bool {
        self.completed.load(Ordering::SeqCst) >= ticket
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

/// Record counts and sizes per tree and the size of the database files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreStats {
    /// Every tree, in [`TreeName::ALL`] order.
    pub trees: Vec<TreeStats>,
    /// Bytes used by the database files.
    pub size_on_disk: u64,
}

/// What one tree holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeStats {
    pub tree: TreeName,
    pub records: u64,
    /// Sum of key and value lengths: the logical size of the tree.
    pub bytes: u64,
}

impl StoreStats {
    /// Number of records in one tree.
    pub fn records(&self, tree: TreeName) -> u64 {
        self.trees
            .iter()
            .find(|t| t.tree == tree)
            .map_or(0, |t| t.records)
    }

    /// Sum of key and value lengths over every tree.
    pub fn logical_bytes(&self) -> u64 {
        self.trees.iter().map(|t| t.bytes).sum()
    }
}

impl Store {
    /// Opens (or creates) the store. Fails with [`StoreError::Locked`] when another handle holds
    /// it (after waiting up to [`LOCK_WAIT`]) and [`StoreError::SchemaTooNew`] when a newer build
    /// wrote it. Blocking: call it at startup or from `spawn_blocking`.
    pub fn open(opts: StoreOptions) -> Result<Store, StoreError> {
        let flush_ms = opts
            .flush_every
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1));
        let config = sled::Config::new()
            .path(&opts.path)
            .cache_capacity(opts.cache_capacity)
            .flush_every_ms(flush_ms);
        let db = open_db(&config, &opts.path)?;
        let trees = Trees::open(&db)?;
        let store = Store {
            inner: Arc::new(Inner {
                db,
                trees,
                path: opts.path,
                flushes: FlushGroup::default(),
            }),
        };
        store.check_schema()?;
        store.backfill_pr_index()?;
        Ok(store)
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Makes every write this task made before the call durable; returns the bytes written (0
    /// when a flush started after the call already covered them). Await this before
    /// acknowledging anything or starting an effect; concurrent callers share one fsync.
    pub async fn flush(&self) -> Result<usize, StoreError> {
        tx::ensure_outside_tx("flush")?;
        let group = &self.inner.flushes;
        let ticket = group.take_ticket();
        let _turn = group.gate.lock().await;
        if group.covers(ticket) {
            return Ok(0);
        }
        // Every request numbered so far wrote before this flush starts: it covers them all.
        let covered = group.requested.load(Ordering::SeqCst);
        let written = self.flush_now().await?;
        group.completed.fetch_max(covered, Ordering::SeqCst);
        Ok(written)
    }

    /// [`Store::flush`] from a thread that may block (not a runtime worker): the fsync runs
    /// right here, in its turn with the other flushes.
    pub fn flush_blocking(&self) -> Result<usize, StoreError> {
        tx::ensure_outside_tx("flush")?;
        let group = &self.inner.flushes;
        let ticket = group.take_ticket();
        let _turn = group.gate.blocking_lock();
        if group.covers(ticket) {
            return Ok(0);
        }
        let covered = group.requested.load(Ordering::SeqCst);
        let written = self.inner.db.flush();
        let written = written.map_err(StoreError::storage("flush"))?;
        group.completed.fetch_max(covered, Ordering::SeqCst);
        Ok(written)
    }

    /// One fsync, from the blocking pool: it is blocking work either way, and a runtime with
    /// paused time (tests) does not move its clock while a blocking task runs.
    async fn flush_now(&self) -> Result<usize, StoreError> {
        let db = self.inner.db.clone();
        let written = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => match runtime.spawn_blocking(move || db.flush()).await {
                Ok(written) => written,
                // The blocking pool is shutting down: flush from here instead.
                Err(_) => self.inner.db.flush(),
            },
            // Driven by a plain executor (a CLI command's `block_on`): flush right here.
            Err(_) => db.flush(),
        };
        written.map_err(StoreError::storage("flush"))
    }

    /// Whether the store answers a read (its schema version): the readiness probe's check.
    pub fn is_readable(&self) -> bool {
        matches!(self.meta(SCHEMA_KEY), Ok(Some(_)))
    }

    /// Bytes used by the database files (cheap: no scan of the records).
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.inner
            .db
            .size_on_disk()
            .map_err(StoreError::storage("size on disk"))
    }

    /// Record counts and sizes per tree (a full scan of every tree: not for hot paths) and the
    /// size on disk.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        tx::ensure_outside_tx("stats")?;
        let mut trees = Vec::with_capacity(TreeName::ALL.len());
        for tree in TreeName::ALL {
            let mut stats = TreeStats {
                tree,
                records: 0,
                bytes: 0,
            };
            for item in self.tree(tree).iter() {
                let (k, v) = item.map_err(StoreError::storage("scan"))?;
                stats.records += 1;
                stats.bytes += (k.len() + v.len()) as u64;
            }
            trees.push(stats);
        }
        let size_on_disk = self
            .inner
            .db
            .size_on_disk()
            .map_err(StoreError::storage("size on disk"))?;
        Ok(StoreStats {
            trees,
            size_on_disk,
        })
    }

    pub(crate) fn tree(&self, name: TreeName) -> &sled::Tree {
        self.inner.trees.get(name)
    }

    /// Writes the schema version into a new store; refuses a store written by a newer build.
    fn check_schema(&self) -> Result<(), StoreError> {
        let found = self.transaction(|tx| {
            let found = tx.get_meta(SCHEMA_KEY)?;
            let older = found
                .as_deref()
                .and_then(|v| v.trim().parse::<u32>().ok())
                .is_some_and(|v| v < SCHEMA_VERSION);
            if found.is_none() || older {
                tx.put_meta(SCHEMA_KEY, &SCHEMA_VERSION.to_string())?;
            }
            Ok(found)
        })?;
        let Some(found) = found else {
            return Ok(());
        };
        let version: u32 = found.trim().parse().map_err(|_| StoreError::BadSchema {
            path: self.inner.path.clone(),
            value: found.clone(),
        })?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                path: self.inner.path.clone(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(())
    }
}

/// How long `open` waits for a store lock to be released. sled releases its file lock from a
/// background thread shortly after the last handle is dropped, so an immediate reopen in the same
/// process can find it still held; another live process holds it for good.
pub const LOCK_WAIT: Duration = Duration::from_secs(1);

/// Opens sled, waiting up to [`LOCK_WAIT`] for a lock that is being released.
fn open_db(config: &sled::Config, path: &Path) -> Result<sled::Db, StoreError> {
    let deadline = Instant::now() + LOCK_WAIT;
    let mut pause = Duration::from_millis(5);
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(e) if is_locked(&e) && Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) if is_locked(&e) => {
                return Err(StoreError::Locked {
                    path: path.to_path_buf(),
                })
            }
            Err(error) => {
                return Err(StoreError::Open {
                    path: path.to_path_buf(),
                    error,
                })
            }
        }
    }
}

/// sled reports a held file lock as an `Io` error of kind `Other` with this wording.
fn is_locked(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}
