//! [`FileQuotaStore`]: quota state in one JSON file that several processes share safely.
//!
//! The CLI runs each command as its own process (`imagegate generate`, `imagegate quota`,
//! `imagegate batch`); with [`MemoryQuotaStore`](super::MemoryQuotaStore) each would start from
//! nothing. Here every operation is one transaction on the file:
//!
//! 1. take an exclusive advisory lock on the sibling lock file `<name>.lock` (shared for
//!    read-only operations), through `std::fs::File::lock`: `flock` on Unix, `LockFileEx` on
//!    Windows, held per open file, so two stores in one process exclude each other as two
//!    processes do;
//! 2. read the state (a missing or blank file is an empty state; anything unreadable is an
//!    error naming the path, never discarded);
//! 3. restore the pool's [`PoolLedger`] from its [`LedgerSnapshot`] with the caller's current
//!    [`PoolConfig`] and apply the operation with the same arithmetic as the memory store;
//! 4. write the new state to a temporary file in the same directory, flush it to disk and
//!    rename it over the old one (readers see the old state or the new one, never half);
//! 5. unlock.
//!
//! The lock file is never deleted: deleting a lock file lets two processes lock two different
//! files. Operations block while another process holds the lock (a few milliseconds).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::ledger::{PoolLedger, UPSTREAM_WINDOW};
use super::observe::{RateLimitSnapshot, SharedPoolSuspicion};
use super::snapshot::LedgerSnapshot;
use super::store::QuotaStore;
use super::{Admission, Cost, PoolConfig, PoolId, PoolStatus, Reservation, Usage};
use crate::error::{Error, ErrorKind, Result};

/// The `format` every state file names, so a stray JSON file is not taken for one.
const FORMAT: &str = "imagegate-quota-state";
/// The layout version this code reads and writes.
const VERSION: u32 = 1;

/// The file's contents.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    format: String,
    version: u32,
    /// Sorted by pool id, so the file is stable and diffable.
    #[serde(default)]
    pools: Vec<SavedPool>,
}

/// Read first, leniently, to tell "not ours" and "a newer layout" apart from damage.
#[derive(Deserialize)]
struct Header {
    format: Option<String>,
    version: Option<u32>,
}

/// One pool's state.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedPool {
    pool: PoolId,
    state: LedgerSnapshot,
}

/// Quota state kept in a JSON file that several processes (and several stores in one process)
/// share without overshooting a limit.
///
/// Counts, the day, learned limits, blocks and shared-pool suspicions live in the file;
/// limits, zones and models come from the [`PoolConfig`]s given to
/// [`configure_now`](Self::configure_now) in this process, so a configuration change applies on
/// the next run while nothing counted is forgotten. A reservation is plain data: one process
/// may settle or release what another admitted.
///
/// A `billing_required` block lasts until it is cleared, not until restart (a restart no longer
/// forgets it): [`clear_blocks`](Self::clear_blocks), or deleting the state file (which also
/// forgets every count).
///
/// The synchronous methods (`*_now`) are the operations; the [`QuotaStore`] impl delegates to
/// them. Each one does blocking file I/O (and waits for the lock), which is brief; callers on
/// an async runtime that cannot afford it should run the store on a blocking thread.
#[derive(Debug)]
pub struct FileQuotaStore {
    path: PathBuf,
    lock_path: PathBuf,
    temp_path: PathBuf,
    /// The lock file, behind a mutex: the OS lock is held per open file, so threads sharing
    /// this handle are serialised here first.
    lock: Mutex<File>,
    configs: RwLock<BTreeMap<PoolId, PoolConfig>>,
    /// How long a per-minute use stays counted (see [`with_window`](Self::with_window)).
    window: Duration,
}

/// Releases the advisory lock when the transaction ends, however it ends.
struct Unlock<'a>(&'a File);

impl Drop for Unlock<'_> {
    fn drop(&mut self) {
        // Closing the file would release it too; the handle is kept, so unlock explicitly. A
        // failure here leaves nothing to do: the next `lock` call reports any real problem.
        let _ = self.0.unlock();
    }
}

impl FileQuotaStore {
    /// Opens (or prepares) the state file at `path`, creating its directory and the sibling
    /// lock file `<path>.lock` if needed, and reads it once so a damaged file is reported now
    /// rather than at the first request. A missing file is an empty state; it is created by the
    /// first operation that counts something.
    ///
    /// No pool is configured yet: call [`configure_now`](Self::configure_now) for each.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`] naming the path when it has no file name, or when the file
    /// exists but is not a readable imagegate quota state (not JSON, another format, a newer
    /// version, inconsistent counts); [`ErrorKind::Unexpected`] naming the path for I/O
    /// failures (permissions, a directory in the way).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let Some(name) = path.file_name().map(|n| n.to_os_string()) else {
            return Err(Error::config(format!(
                "the quota state file path `{}` names no file",
                path.display()
            )));
        };
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."))
            .to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| io_error("create the directory of", &path, e))?;
        let sibling = |prefix: &str, suffix: &str| {
            let mut n = OsString::from(prefix);
            n.push(&name);
            n.push(suffix);
            dir.join(n)
        };
        let lock_path = sibling("", ".lock");
        // Unique per store, not just per process: the lock already keeps writers apart, this
        // keeps a store that lost its lock (a filesystem without locks) from renaming another's.
        static STORES: AtomicU64 = AtomicU64::new(0);
        let n = STORES.fetch_add(1, Ordering::Relaxed);
        let temp_path = sibling(".", &format!(".{}-{n}.tmp", std::process::id()));
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| io_error("open the lock file of", &path, e))?;
        let store = FileQuotaStore {
            path,
            lock_path,
            temp_path,
            lock: Mutex::new(lock),
            configs: RwLock::new(BTreeMap::new()),
            window: UPSTREAM_WINDOW,
        };
        store.transact(false, |_| Ok(()))?;
        Ok(store)
    }

    /// The store with per-minute uses counted for `window` rather than the upstreams' 60 s
    /// (61 s guards against the trip to the upstream, see
    /// [`MemoryQuotaStore::with_window`](super::MemoryQuotaStore::with_window)). Every process
    /// sharing the file should use the same window: each counts with its own.
    #[must_use]
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// The state file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock file's path (`<state file>.lock`).
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// [`QuotaStore::configure`], synchronously: registers `pool`'s configuration for this
    /// process, or replaces it. Touches no file: the configuration is applied to the saved
    /// counts at every operation.
    pub fn configure_now(&self, pool: PoolConfig) {
        let mut configs = self.configs.write().unwrap_or_else(PoisonError::into_inner);
        configs.insert(pool.id.clone(), pool);
    }

    /// The store with `pools` configured (see [`configure_now`](Self::configure_now)).
    #[must_use]
    pub fn with_pools(self, pools: impl IntoIterator<Item = PoolConfig>) -> Self {
        for pool in pools {
            self.configure_now(pool);
        }
        self
    }

    /// [`QuotaStore::admit`], synchronously: decides and reserves in one locked transaction.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`] for a pool not configured in this process or a damaged
    /// file; [`ErrorKind::Unexpected`] for I/O failures. Each names the path.
    pub fn admit_now(&self, pool: &PoolId, cost: Cost, now: Timestamp) -> Result<Admission> {
        self.update(pool, now, |ledger| ledger.admit(cost, now))
    }

    /// [`QuotaStore::settle`], synchronously. The reservation may come from another process
    /// (or an earlier run) sharing the file.
    ///
    /// # Errors
    /// As [`admit_now`](Self::admit_now).
    pub fn settle_now(&self, reservation: Reservation, usage: Usage) -> Result<()> {
        let pool = reservation.pool().clone();
        let at = reservation.at();
        self.update(&pool, at, |ledger| ledger.settle(reservation, usage))
    }

    /// [`QuotaStore::release`], synchronously. The reservation may come from another process
    /// (or an earlier run) sharing the file.
    ///
    /// # Errors
    /// As [`admit_now`](Self::admit_now).
    pub fn release_now(&self, reservation: Reservation) -> Result<()> {
        let pool = reservation.pool().clone();
        let at = reservation.at();
        self.update(&pool, at, |ledger| ledger.release(reservation))
    }

    /// [`QuotaStore::observe_error`], synchronously. Shared-pool partners are looked for among
    /// the pools of the same project that are configured in this process and saved in the file.
    ///
    /// # Errors
    /// As [`admit_now`](Self::admit_now).
    pub fn observe_error_now(&self, pool: &PoolId, error: &Error, now: Timestamp) -> Result<()> {
        let config = self.config(pool)?;
        self.transact(true, |pools| {
            let mut ledger = self.ledger_in(pools, config, now)?;
            if let Some((dimension, used, limit)) = ledger.observe_error(error, now) {
                let others: Vec<PoolConfig> = {
                    let configs = self.configs.read().unwrap_or_else(PoisonError::into_inner);
                    configs
                        .values()
                        .filter(|c| c.id != *pool && c.id.same_project(pool))
                        .cloned()
                        .collect()
                };
                let mut partners = Vec::new();
                for other in others {
                    let Some(saved) = find(pools, &other.id) else {
                        continue;
                    };
                    let id = other.id.clone();
                    let mut other = PoolLedger::restore(other, saved.state.clone())
                        .map_err(|e| self.damaged(&e))?
                        .with_window(self.window);
                    if other.busy_on(dimension, now) {
                        partners.push(id);
                    }
                }
                let facts = error.quota();
                ledger.suspect_shared(SharedPoolSuspicion {
                    dimension,
                    used,
                    limit,
                    last_seen: now,
                    count: 1,
                    quota_model: facts.model.clone(),
                    quota_id: facts.quota_id.clone(),
                    partners,
                });
            }
            save(pools, &ledger);
            Ok(())
        })
    }

    /// [`QuotaStore::observe_success`], synchronously.
    ///
    /// # Errors
    /// As [`admit_now`](Self::admit_now).
    pub fn observe_success_now(
        &self,
        pool: &PoolId,
        snapshot: &RateLimitSnapshot,
        now: Timestamp,
    ) -> Result<()> {
        self.update(pool, now, |ledger| ledger.observe_snapshot(snapshot, now))
    }

    /// [`QuotaStore::status`], synchronously: reads the file under a shared lock and changes
    /// nothing.
    ///
    /// # Errors
    /// As [`admit_now`](Self::admit_now).
    pub fn status_now(&self, pool: &PoolId, now: Timestamp) -> Result<PoolStatus> {
        let config = self.config(pool)?;
        self.transact(false, |pools| {
            Ok(self.ledger_in(pools, config, now)?.status(now))
        })
    }

    /// [`QuotaStore::statuses`], synchronously: every pool configured in this process, ordered
    /// by pool id, with what the file counted for it (nothing, for a pool it does not hold).
    ///
    /// # Errors
    /// A damaged file or an I/O failure, naming the path.
    pub fn statuses_now(&self, now: Timestamp) -> Result<Vec<PoolStatus>> {
        let configs: Vec<PoolConfig> = {
            let configs = self.configs.read().unwrap_or_else(PoisonError::into_inner);
            configs.values().cloned().collect()
        };
        self.transact(false, |pools| {
            configs
                .into_iter()
                .map(|config| Ok(self.ledger_in(pools, config, now)?.status(now)))
                .collect()
        })
    }

    /// The pools the file holds state for, configured here or not, ordered by pool id (for a
    /// status command that also wants to show pools no longer configured).
    ///
    /// # Errors
    /// A damaged file or an I/O failure, naming the path.
    pub fn saved_pools(&self) -> Result<Vec<PoolId>> {
        self.transact(false, |pools| {
            Ok(pools.iter().map(|p| p.pool.clone()).collect())
        })
    }

    /// Forgets `pool`'s blocks (billing required, a daily block, a requested delay), keeping
    /// its counts, learned limits and suspicions, and says whether it had one. The pool need not
    /// be configured. This is how a person lifts a `billing_required` block after attaching
    /// billing: it is saved in the file, so it outlives the process that saw it.
    ///
    /// # Errors
    /// A damaged file or an I/O failure, naming the path.
    pub fn clear_blocks(&self, pool: &PoolId) -> Result<bool> {
        self.transact(true, |pools| {
            Ok(pools
                .iter_mut()
                .find(|p| p.pool == *pool)
                .is_some_and(|p| p.state.clear_blocks()))
        })
    }

    /// [`clear_blocks`](Self::clear_blocks) for every pool in the file; returns how many had a
    /// block.
    ///
    /// # Errors
    /// A damaged file or an I/O failure, naming the path.
    pub fn clear_all_blocks(&self) -> Result<usize> {
        self.transact(true, |pools| {
            Ok(pools
                .iter_mut()
                .map(|p| p.state.clear_blocks())
                .filter(|had| *had)
                .count())
        })
    }

    fn config(&self, pool: &PoolId) -> Result<PoolConfig> {
        let configs = self.configs.read().unwrap_or_else(PoisonError::into_inner);
        configs.get(pool).cloned().ok_or_else(|| {
            Error::config(format!(
                "no quota pool `{pool}` is configured: configure it before admitting requests"
            ))
        })
    }

    /// One read-modify-write of `pool`'s ledger under the exclusive lock.
    fn update<T>(
        &self,
        pool: &PoolId,
        now: Timestamp,
        op: impl FnOnce(&mut PoolLedger) -> T,
    ) -> Result<T> {
        let config = self.config(pool)?;
        self.transact(true, |pools| {
            let mut ledger = self.ledger_in(pools, config, now)?;
            let out = op(&mut ledger);
            save(pools, &ledger);
            Ok(out)
        })
    }

    /// The ledger of `config`'s pool as the file has it, or a fresh one watching from `now`.
    fn ledger_in(
        &self,
        pools: &[SavedPool],
        config: PoolConfig,
        now: Timestamp,
    ) -> Result<PoolLedger> {
        let ledger = match find(pools, &config.id) {
            Some(saved) => {
                PoolLedger::restore(config, saved.state.clone()).map_err(|e| self.damaged(&e))?
            }
            None => PoolLedger::new(config, now),
        };
        Ok(ledger.with_window(self.window))
    }

    /// Runs `op` on the file's state under the lock (exclusive when `write`, which also saves
    /// the state `op` leaves).
    fn transact<T>(
        &self,
        write: bool,
        op: impl FnOnce(&mut Vec<SavedPool>) -> Result<T>,
    ) -> Result<T> {
        let file = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let locked = if write {
            file.lock()
        } else {
            file.lock_shared()
        };
        locked.map_err(|e| io_error("lock", &self.lock_path, e))?;
        let _unlock = Unlock(&file);
        let mut pools = self.read()?;
        let out = op(&mut pools)?;
        if write {
            self.write(pools)?;
        }
        Ok(out)
    }

    fn read(&self) -> Result<Vec<SavedPool>> {
        match fs::read(&self.path) {
            Ok(bytes) => parse(&self.path, &bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io_error("read", &self.path, e)),
        }
    }

    fn write(&self, pools: Vec<SavedPool>) -> Result<()> {
        let state = StateFile {
            format: FORMAT.to_owned(),
            version: VERSION,
            pools,
        };
        let mut bytes = serde_json::to_vec_pretty(&state).map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!(
                    "could not encode the quota state for {}: {e}",
                    self.path.display()
                ),
            )
            .with_source(e)
        })?;
        bytes.push(b'\n');
        let written = File::create(&self.temp_path)
            .and_then(|mut f| {
                f.write_all(&bytes)?;
                // On disk before the rename, so a crash leaves the old state or the new one,
                // never an empty file.
                f.sync_all()
            })
            .and_then(|()| fs::rename(&self.temp_path, &self.path));
        written.map_err(|e| {
            let _ = fs::remove_file(&self.temp_path);
            io_error("write", &self.path, e)
        })
    }

    /// A restore error, with the path and what to do.
    fn damaged(&self, e: &Error) -> Error {
        Error::config(format!(
            "the quota state file {} is damaged: {}. {}",
            self.path.display(),
            e.message(),
            REMEDY
        ))
    }
}

/// What to do about a damaged state file.
const REMEDY: &str = "Fix it, or delete it to start counting afresh (that forgets the use, \
                      learned limits and blocks it holds)";

fn find<'a>(pools: &'a [SavedPool], id: &PoolId) -> Option<&'a SavedPool> {
    pools
        .binary_search_by(|p| p.pool.cmp(id))
        .ok()
        .and_then(|i| pools.get(i))
}

/// Puts `ledger`'s state into `pools`, keeping them sorted by pool id.
fn save(pools: &mut Vec<SavedPool>, ledger: &PoolLedger) {
    let id = &ledger.config().id;
    let state = ledger.snapshot();
    match pools.binary_search_by(|p| p.pool.cmp(id)) {
        Ok(i) => {
            if let Some(p) = pools.get_mut(i) {
                p.state = state;
            }
        }
        Err(i) => pools.insert(
            i,
            SavedPool {
                pool: id.clone(),
                state,
            },
        ),
    }
}

fn io_error(doing: &str, path: &Path, e: io::Error) -> Error {
    Error::new(
        ErrorKind::Unexpected,
        format!(
            "could not {doing} the quota state file {}: {e}",
            path.display()
        ),
    )
    .with_source(e)
}

/// Reads a state file's bytes: blank is an empty state; anything else must be a state file of
/// this version, with each pool once.
fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<SavedPool>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let damaged = |what: String| {
        Error::config(format!(
            "the quota state file {} {what}. {REMEDY}",
            path.display()
        ))
    };
    let header: Header = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_data() {
            damaged(format!("is not an imagegate quota state file ({e})"))
        } else {
            damaged(format!("is not valid JSON ({e})"))
        }
    })?;
    if header.format.as_deref() != Some(FORMAT) {
        return Err(damaged(format!(
            "is not an imagegate quota state file (it lacks \"format\": \"{FORMAT}\")"
        )));
    }
    if header.version != Some(VERSION) {
        let found = header
            .version
            .map_or_else(|| "no version".to_owned(), |v| format!("version {v}"));
        return Err(damaged(format!(
            "has {found}, and this imagegate reads version {VERSION} (was it written by a newer one?)"
        )));
    }
    let state: StateFile = serde_json::from_slice(bytes)
        .map_err(|e| damaged(format!("does not hold a valid quota state ({e})")))?;
    let mut pools = state.pools;
    pools.sort_by(|a, b| a.pool.cmp(&b.pool));
    if let Some(w) = pools.windows(2).find(|w| w[0].pool == w[1].pool) {
        return Err(damaged(format!("holds pool `{}` twice", w[0].pool)));
    }
    Ok(pools)
}

#[async_trait]
impl QuotaStore for FileQuotaStore {
    async fn configure(&self, pool: PoolConfig, _now: Timestamp) -> Result<()> {
        self.configure_now(pool);
        Ok(())
    }

    async fn admit(&self, pool: &PoolId, cost: Cost, now: Timestamp) -> Result<Admission> {
        self.admit_now(pool, cost, now)
    }

    async fn settle(&self, reservation: Reservation, usage: Usage) -> Result<()> {
        self.settle_now(reservation, usage)
    }

    async fn release(&self, reservation: Reservation) -> Result<()> {
        self.release_now(reservation)
    }

    async fn observe_error(&self, pool: &PoolId, error: &Error, now: Timestamp) -> Result<()> {
        self.observe_error_now(pool, error, now)
    }

    async fn observe_success(
        &self,
        pool: &PoolId,
        snapshot: &RateLimitSnapshot,
        now: Timestamp,
    ) -> Result<()> {
        self.observe_success_now(pool, snapshot, now)
    }

    async fn status(&self, pool: &PoolId, now: Timestamp) -> Result<PoolStatus> {
        self.status_now(pool, now)
    }

    async fn statuses(&self, now: Timestamp) -> Result<Vec<PoolStatus>> {
        self.statuses_now(now)
    }
}
