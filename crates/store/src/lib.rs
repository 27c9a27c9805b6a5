//! Cubby's storage engine: metadata and content-addressed blocks.
//!
//! [`Store`] is the one interface the HTTP layer sees. Behind it, metadata lives in SQLite
//! (WAL mode, a single writer connection beside a pool of readers) or PostgreSQL, and blocks
//! live on local disk or in an S3-compatible bucket under their SHA-256. The store knows
//! nothing of HTTP; its errors are domain errors ([`OpError`]) that the server maps to
//! Dropbox's unions.
//!
//! Brief overview:
//! - [`blocks::BlockStore`]: immutable 4 MiB blocks, durable before metadata refers to them.
//! - [`meta`]: the namespace tree, revisions and the journal.
//! - [`accounts`], [`apps`], [`tokens`], [`web_sessions`]: users, registered OAuth apps, the
//!   tokens and codes they are issued, and browser sign-ins.
//! - [`notify::Notifier`]: wakes longpoll waiters after a namespace commits.
//!
//! Security Invariant: no secret is stored in the clear. Tokens, codes, refresh tokens and
//! web session ids are 256-bit random strings kept as SHA-256 digests (a lookup by digest
//! reveals nothing through timing); app secrets are SHA-256 digests compared in constant
//! time; passwords are Argon2id hashes.

pub mod accounts;
pub mod apps;
pub mod blocks;
pub mod copyref;
pub mod dav;
mod db;
pub mod folders;
pub mod gc;
mod group;
pub mod history;
pub mod jobs;
pub mod links;
pub mod meta;
pub mod migrate;
pub mod notify;
mod passwords;
mod refs;
pub mod retention;
mod schema;
pub mod sessions;
mod small;
pub mod stats;
pub mod thumbs;
pub mod tokens;
pub mod web_sessions;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use accounts::Account;
pub use apps::{AccessType, App, NewApp};
pub use meta::{Entry, Kind, OpError, WriteConflict};
pub use stats::Stats;
pub use tokens::{AuthInfo, CodeRequest, ConnectedApp, GrantError, Issued, TokenAccess};
pub use web_sessions::WebSession;

/// A failure of the storage itself (database or blocks), as opposed to a refused operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("block store: {0}")]
    Blocks(String),
    /// A block a file needs is not in the store, or its bytes do not match its hash.
    #[error("block {hash} is {}", if *.missing { "missing" } else { "corrupt: its bytes do not match its hash" })]
    BadBlock { hash: String, missing: bool },
    #[error("{0}")]
    Invalid(String),
}

impl StoreError {
    /// Whether the failure is the server's disk being full (or the process's disk quota
    /// spent): the operator can fix it by freeing space, and nothing was written.
    pub fn disk_full(&self) -> bool {
        /// `ENOSPC` and `EDQUOT` on Linux.
        const NO_SPACE: [i32; 2] = [28, 122];
        let io_full = |e: &std::io::Error| e.raw_os_error().is_some_and(|c| NO_SPACE.contains(&c));
        match self {
            StoreError::Io(e) => io_full(e),
            StoreError::Db(sqlx::Error::Io(e)) => io_full(e),
            // SQLite's SQLITE_FULL ("database or disk is full"); PostgreSQL's disk_full class.
            StoreError::Db(sqlx::Error::Database(e)) => {
                e.code().is_some_and(|c| c == "13" || c == "53100")
                    || e.message().contains("database or disk is full")
            }
            // The group commit tells every waiter of a failed batch why, as text (one error
            // cannot be handed to several): the text of the two errors above.
            StoreError::Invalid(why) => {
                why.contains("database or disk is full")
                    || why.contains("No space left on device")
                    || why.contains("Disk quota exceeded")
            }
            _ => false,
        }
    }
}

/// Which back-ends to use. The defaults are the embedded ones under `data_dir`.
#[derive(Clone, Debug, Default)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    /// `postgres://…` for the scale-out metadata back-end; SQLite in `data_dir` otherwise.
    pub metadata_url: Option<String>,
    /// `s3://bucket…` for the scale-out block back-end; `data_dir/blocks` otherwise.
    pub blocks_url: Option<String>,
}

impl StoreConfig {
    /// The embedded default: SQLite and local disk under `data_dir`.
    pub fn embedded(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_owned(),
            ..Self::default()
        }
    }
}

/// The storage engine: metadata plus blocks plus change notification.
#[derive(Clone)]
pub struct Store {
    pub(crate) db: db::Db,
    pub blocks: Arc<blocks::BlockStore>,
    pub notifier: Arc<notify::Notifier>,
    /// The group committer of the embedded back-end; PostgreSQL commits per operation.
    pub(crate) group: Option<Arc<group::GroupCommit>>,
    pub(crate) cursor_key: Arc<Vec<u8>>,
    /// Hashes of blocks a write found claimed by the GC, to revive once rewritten.
    pub(crate) gone: refs::Gone,
    /// The key shared-link tokens and unlock cookies are derived with.
    pub(crate) link_key: Arc<Vec<u8>>,
    /// Access tokens this server looked up in the last few seconds.
    pub(crate) auth_cache: Arc<tokens::AuthCache>,
    /// Blocks found missing, and found corrupt, by reads since the process started.
    pub bad_blocks: Arc<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)>,
    data_dir: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the embedded store in `data_dir`.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(&StoreConfig::embedded(data_dir)).await
    }

    /// Opens the store the configuration names, applying migrations.
    pub async fn open_with(config: &StoreConfig) -> Result<Self, StoreError> {
        let data_dir = &config.data_dir;
        let needs_dir = config.metadata_url.is_none() || config.blocks_url.is_none();
        if needs_dir {
            std::fs::create_dir_all(data_dir)?;
        }
        let db = match &config.metadata_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                db::Db::open_postgres(url).await?
            }
            Some(url) => {
                return Err(StoreError::Invalid(format!(
                    "metadata URL '{url}': expected postgres://…"
                )));
            }
            None => db::Db::open_sqlite(data_dir).await?,
        };
        let blocks = match &config.blocks_url {
            Some(url) => blocks::BlockStore::S3(blocks::S3Blocks::open(url)?),
            None => blocks::BlockStore::Local(blocks::LocalBlocks::open(&data_dir.join("blocks"))?),
        };
        let notifier = Arc::new(notify::Notifier::default());
        if let Some(pool) = db.pg_pool() {
            notify::spawn_pg_listener(pool.clone(), notifier.clone());
        }
        let gone = refs::Gone::default();
        let group = match &db {
            db::Db::Sqlite { .. } => Some(Arc::new(group::GroupCommit::start(
                db.clone(),
                notifier.clone(),
                gone.clone(),
            ))),
            db::Db::Postgres { .. } => None,
        };
        let mut store = Self {
            db,
            blocks: Arc::new(blocks),
            notifier,
            group,
            cursor_key: Arc::new(Vec::new()),
            gone,
            link_key: Arc::new(Vec::new()),
            auth_cache: Arc::default(),
            bad_blocks: Arc::default(),
            data_dir: data_dir.to_owned(),
        };
        store.cursor_key = Arc::new(store.setting_or_init("cursor_key", 32).await?);
        store.link_key = Arc::new(store.setting_or_init("link_key", 32).await?);
        Ok(store)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Bytes free (to unprivileged writers) on the disk of the data folder, which holds the
    /// blocks in the embedded mode; `None` if the file system cannot say.
    pub fn free_space(&self) -> Option<u64> {
        let st = rustix::fs::statvfs(&self.data_dir).ok()?;
        Some(st.f_bavail.saturating_mul(st.f_frsize))
    }

    /// The key that signs cursors, shared by every server of one installation.
    pub fn cursor_key(&self) -> &[u8] {
        &self.cursor_key
    }

    /// Metadata connections: (open, idle, maximum) of the pool requests use.
    pub fn pool_stats(&self) -> (u32, usize, u32) {
        self.db.pool_stats()
    }

    /// Checks that the metadata store answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await
    }

    /// Closes the database pools (SQLite checkpoints its WAL).
    pub async fn close(&self) {
        self.db.close().await;
    }
}

/// Fills a buffer from the operating system's random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the OS random source works");
    b
}

/// Microseconds since the Unix epoch.
pub(crate) fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A new file or folder id (time first, see [`cubby_core::ids::file_id`]).
pub(crate) fn new_file_id() -> String {
    cubby_core::ids::file_id(now_micros(), random_bytes())
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod disk_full_tests {
    use super::StoreError;

    #[test]
    fn a_full_disk_is_told_apart_from_other_failures() {
        let nospc = std::io::Error::from_raw_os_error(28);
        assert!(StoreError::Io(nospc).disk_full());
        assert!(StoreError::Db(sqlx::Error::Io(std::io::Error::from_raw_os_error(28))).disk_full());
        assert!(!StoreError::Io(std::io::Error::from_raw_os_error(5)).disk_full());
        assert!(!StoreError::Blocks("gone".into()).disk_full());
        // As the group commit passes a failed batch's error on.
        let told = "error returned from database: (code: 13) database or disk is full";
        assert!(StoreError::Invalid(told.into()).disk_full());
        assert!(!StoreError::Invalid("the writer stopped".into()).disk_full());
    }
}
