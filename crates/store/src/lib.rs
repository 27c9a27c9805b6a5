//! Cubby's storage engine: metadata and content-addressed blocks.
//!
//! [`Store`] is the one interface the HTTP layer sees. Behind it, metadata lives in SQLite
//! (WAL mode, a single writer connection beside a pool of readers) and blocks live on local
//! disk under their SHA-256. The store knows nothing of HTTP; its errors are domain errors
//! ([`OpError`]) that the server maps to Dropbox's unions.
//!
//! Brief overview:
//! - [`blocks::BlockStore`]: immutable 4 MiB blocks, durable before metadata refers to them.
//! - [`meta`]: accounts, apps, tokens, the namespace tree, revisions and the journal.
//! - [`notify::Notifier`]: wakes longpoll waiters after a namespace commits.

pub mod blocks;
pub mod meta;
pub mod notify;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use meta::{Account, AuthInfo, Entry, Kind, OpError, WriteConflict};

/// A failure of the storage itself (database or disk), as opposed to a refused operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Invalid(String),
}

/// Readers in the SQLite pool; writes go through one dedicated connection.
const READER_CONNECTIONS: u32 = 8;

/// How long a connection waits for SQLite's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The storage engine: metadata plus blocks plus change notification.
#[derive(Clone)]
pub struct Store {
    pub(crate) reader: SqlitePool,
    pub(crate) writer: SqlitePool,
    pub blocks: Arc<blocks::BlockStore>,
    pub notifier: Arc<notify::Notifier>,
    pub(crate) cursor_key: Arc<Vec<u8>>,
    data_dir: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the embedded store in `data_dir`: `meta.sqlite` and `blocks/`.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        let opts = SqliteConnectOptions::new()
            .filename(data_dir.join("meta.sqlite"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a transaction acknowledged to a client survives power loss, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await?;
        schema::migrate(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READER_CONNECTIONS)
            .connect_with(opts.read_only(true))
            .await?;
        let blocks = Arc::new(blocks::BlockStore::open(&data_dir.join("blocks"))?);
        let mut store = Self {
            reader,
            writer,
            blocks,
            notifier: Arc::new(notify::Notifier::default()),
            cursor_key: Arc::new(Vec::new()),
            data_dir: data_dir.to_owned(),
        };
        store.cursor_key = Arc::new(store.setting_or_init("cursor_key", 32).await?);
        Ok(store)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The key that signs cursors, shared by every server of one installation.
    pub fn cursor_key(&self) -> &[u8] {
        &self.cursor_key
    }

    /// Closes the database pools, checkpointing the WAL.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Fills a buffer from the operating system's random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the OS random source works");
    b
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
