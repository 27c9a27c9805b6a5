//! Namespace metadata: the tree of entries, revisions, the change journal and space used,
//! the write transaction every change goes through, and the domain errors ([`OpError`]).
//!
//! Every write runs in one transaction that first serializes the namespace's writers
//! (SQLite's write lock, or a PostgreSQL row lock on the namespace), takes the namespace's
//! next journal sequence, and appends journal rows for each path it changes. Waiters are
//! notified after commit. SQL is shared by both back-ends (see `db.rs`).
//!
//! Architecture Invariant: paths are keyed by their lower-case form (`path_lower`); the
//! display form is kept as written. A stored `path_display` always equals its parent's
//! `path_display` plus `/name`, so subtree moves can rewrite prefixes.

use cubby_core::hash::{BlockHash, content_hash_of_blocks};
use cubby_core::path::{ancestors, is_disallowed_name, is_within, lower, name_of, parent_of};
use cubby_core::{ids, naming};

use crate::db::{RowExt, Tx, on_db, on_tx};
use crate::{Store, StoreError, now, random_bytes};

/// Largest number of entries a single copy or move may touch, as Dropbox limits it.
pub const MAX_RELOCATION_ENTRIES: i64 = 10_000;

/// Autorename gives up after this many candidate names.
const MAX_AUTORENAME_TRIES: u32 = 1_000;

/// What an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Folder,
    Deleted,
}

impl Kind {
    fn to_db(self) -> i64 {
        match self {
            Kind::File => 0,
            Kind::Folder => 1,
            Kind::Deleted => 2,
        }
    }

    fn from_db(k: i64) -> Self {
        match k {
            0 => Kind::File,
            1 => Kind::Folder,
            _ => Kind::Deleted,
        }
    }
}

/// One item of a namespace as stored: a file, a folder or a tombstone.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The namespace the entry lives in (0 where a read did not say: see `from_row`).
    pub ns: u64,
    pub kind: Kind,
    pub path_lower: String,
    pub path_display: String,
    pub id: Option<String>,
    pub rev: Option<String>,
    /// Row of the current revision (files only).
    pub revision: Option<i64>,
    pub size: u64,
    pub content_hash: Option<String>,
    pub client_modified: i64,
    pub server_modified: i64,
}

impl Entry {
    /// A new folder at `display`, with a fresh id.
    fn folder(display: String) -> Self {
        Entry {
            kind: Kind::Folder,
            path_lower: lower(&display),
            path_display: display,
            id: Some(crate::new_file_id()),
            ..Entry::deleted("", "")
        }
    }

    /// The row of `entries` this entry is, for [`ENTRY_COLUMNS`].
    fn row(&self, ns: i64) -> Vec<crate::db::Val> {
        use crate::db::Val;
        let file = self.kind == Kind::File;
        vec![
            Val::Int(Some(ns)),
            Val::Text(Some(self.path_lower.clone())),
            Val::Text(Some(parent_of(&self.path_lower).to_owned())),
            Val::Text(Some(self.path_display.clone())),
            Val::Int(Some(self.kind.to_db())),
            Val::Text(self.id.clone()),
            Val::Text(self.rev.clone()),
            Val::Int(self.revision),
            Val::Int(Some(self.size as i64)),
            Val::Text(self.content_hash.clone()),
            Val::Int(file.then_some(self.client_modified)),
            Val::Int(file.then_some(self.server_modified)),
        ]
    }

    /// The row of `revisions` for this file entry and its blocks (without `id`).
    fn revision_row(&self, ns: i64, blocks: &[BlockHash]) -> Vec<crate::db::Val> {
        use crate::db::Val;
        vec![
            Val::Int(Some(ns)),
            Val::Text(self.rev.clone()),
            Val::Text(self.id.clone()),
            Val::Text(Some(self.path_lower.clone())),
            Val::Text(Some(self.path_display.clone())),
            Val::Int(Some(self.size as i64)),
            Val::Text(self.content_hash.clone()),
            Val::Int(Some(self.client_modified)),
            Val::Int(Some(self.server_modified)),
            Val::Blob(Some(blocks_to_blob(blocks))),
        ]
    }

    /// A tombstone: what `include_deleted` and the change feed show for a removed path.
    pub fn deleted(path_lower: &str, path_display: &str) -> Self {
        Entry {
            ns: 0,
            kind: Kind::Deleted,
            path_lower: path_lower.to_owned(),
            path_display: path_display.to_owned(),
            id: None,
            rev: None,
            revision: None,
            size: 0,
            content_hash: None,
            client_modified: 0,
            server_modified: 0,
        }
    }

    pub fn name(&self) -> &str {
        name_of(&self.path_display)
    }

    pub(crate) fn from_row(r: &impl RowExt) -> Result<Self, sqlx::Error> {
        Ok(Entry {
            // Reads that select it say which namespace the row is of.
            ns: r.opt_int("ns").ok().flatten().unwrap_or(0) as u64,
            path_lower: r.text("path_lower")?,
            path_display: r.text("path_display")?,
            kind: Kind::from_db(r.int("kind")?),
            id: r.opt_text("file_id")?,
            rev: r.opt_text("rev")?,
            revision: r.opt_int("revision")?,
            size: r.int("size")? as u64,
            content_hash: r.opt_text("content_hash")?,
            client_modified: r.opt_int("client_modified")?.unwrap_or(0),
            server_modified: r.opt_int("server_modified")?.unwrap_or(0),
        })
    }
}

/// A WriteError conflict, as Dropbox names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteConflict {
    File,
    Folder,
    FileAncestor,
}

/// Why an operation was refused (or failed inside the store).
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("not found")]
    NotFound,
    #[error("not a file")]
    NotFile,
    #[error("not a folder")]
    NotFolder,
    #[error("conflict")]
    Conflict(WriteConflict),
    #[error("disallowed name")]
    DisallowedName,
    /// The source of a copy or move could not be looked up (wraps a lookup error).
    #[error("source: {0}")]
    Source(Box<OpError>),
    #[error("can't move a folder into itself")]
    CantMoveIntoItself,
    #[error("too many files")]
    TooManyFiles,
    #[error("no such user")]
    NoSuchUser,
    #[error("no such app")]
    NoSuchApp,
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("no such revision")]
    InvalidRevision,
    /// The write would take the account past its quota.
    #[error("insufficient space")]
    InsufficientSpace,
    /// The writer is saturated; retry after a moment (answered with 429).
    #[error("too many write operations")]
    TooManyWrites,
    #[error("upload session: {0:?}")]
    Session(crate::sessions::SessionError),
    #[error(transparent)]
    Internal(#[from] StoreError),
}

impl From<sqlx::Error> for OpError {
    fn from(e: sqlx::Error) -> Self {
        OpError::Internal(StoreError::Db(e))
    }
}

/// How an upload treats an existing file (Dropbox's `WriteMode`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteMode {
    Add,
    Overwrite,
    Update(String),
}

/// A file commit: the blocks are already durable in the block store.
#[derive(Clone, Debug)]
pub struct Commit {
    /// Full namespace path, display form.
    pub path: String,
    pub mode: WriteMode,
    pub autorename: bool,
    pub strict_conflict: bool,
    pub client_modified: Option<i64>,
    pub size: u64,
    pub blocks: Vec<BlockHash>,
}

/// A journal row: a path changed at (seq, idx).
#[derive(Clone, Debug)]
pub struct Change {
    pub seq: u64,
    pub idx: u32,
    pub path_lower: String,
    pub parent_lower: String,
}

pub(crate) fn blocks_to_blob(blocks: &[BlockHash]) -> Vec<u8> {
    blocks.concat()
}

/// Splits a stored block list back into hashes.
pub fn blob_to_blocks(blob: &[u8]) -> Vec<BlockHash> {
    blob.chunks_exact(32)
        .map(|c| c.try_into().expect("32-byte chunk"))
        .collect()
}

/// Range bounds of the strict descendants of `folder_lower` ("/" sorts just before "0").
pub(crate) fn descendant_range(folder_lower: &str) -> (String, String) {
    (format!("{folder_lower}/"), format!("{folder_lower}0"))
}

impl Store {
    /// Reads a setting, creating it with `len` random bytes on first use.
    pub(crate) async fn setting_or_init(
        &self,
        key: &str,
        len: usize,
    ) -> Result<Vec<u8>, StoreError> {
        let mut fresh = vec![0u8; len];
        getrandom::fill(&mut fresh).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.db
            .execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                key,
                fresh,
            )
            .await?;
        let mut tx = self.db.begin(None).await?;
        let value: Vec<u8> = on_tx!(&mut tx, |c| sqlx::query_scalar(
            "SELECT value FROM settings WHERE key = $1"
        )
        .bind(key)
        .fetch_one(&mut *c)
        .await?);
        tx.commit(None).await?;
        Ok(value)
    }
}

// ---------------------------------------------------------------------------------------
// Reads.

// The SQL of entry reads, kept together so the column list is written once.
macro_rules! entry_sql {
    ($tail:literal) => {
        concat!(
            "SELECT ns, path_lower, path_display, kind, file_id, rev, revision, size, content_hash, ",
            "client_modified, server_modified FROM entries ",
            $tail
        )
    };
}
const ENTRY_BY_PATH: &str = entry_sql!("WHERE ns = $1 AND path_lower = $2");
const ENTRY_BY_ID: &str = entry_sql!("WHERE ns = $1 AND file_id = $2 AND kind < 2");
const LIST_CHILDREN: &str = entry_sql!(
    "WHERE ns = $1 AND parent_lower = $2 AND path_lower > $3 AND kind < $4 ORDER BY path_lower LIMIT $5"
);
const LIST_ALL: &str =
    entry_sql!("WHERE ns = $1 AND path_lower > $2 AND kind < $3 ORDER BY path_lower LIMIT $4");
const LIST_RANGE: &str = entry_sql!(
    "WHERE ns = $1 AND path_lower > $2 AND path_lower < $3 AND kind < $4 ORDER BY path_lower LIMIT $5"
);

impl Store {
    /// The entry (live or tombstone) at a lower-case path.
    pub async fn entry(&self, ns: u64, path_lower: &str) -> Result<Option<Entry>, StoreError> {
        self.one_entry(ENTRY_BY_PATH, ns, path_lower).await
    }

    /// The live entry with this id.
    pub async fn entry_by_id(&self, ns: u64, id: &str) -> Result<Option<Entry>, StoreError> {
        self.one_entry(ENTRY_BY_ID, ns, id).await
    }

    /// One entry by a query over `(ns, key)`.
    /// The entries (live or tombstones) at these lower-case paths, by path: one query per
    /// 500 paths, for a page of the change feed.
    pub async fn entries_at(
        &self,
        ns: u64,
        paths: &[&str],
    ) -> Result<std::collections::HashMap<String, Entry>, StoreError> {
        const AT: &str = entry_sql!("WHERE ns = $1 AND path_lower IN ");
        let mut out = std::collections::HashMap::with_capacity(paths.len());
        for chunk in paths.chunks(500) {
            let sql = format!("{AT}({})", crate::db::placeholders(2, chunk.len()));
            let found: Vec<Entry> = on_db!(&self.db, |c| {
                let mut q = sqlx::query(crate::db::sql_for(&c, sql)).bind(ns as i64);
                for p in chunk {
                    q = q.bind(*p);
                }
                let rows = q.fetch_all(c).await?;
                rows.iter().map(Entry::from_row).collect::<Result<_, _>>()?
            });
            out.extend(found.into_iter().map(|e| (e.path_lower.clone(), e)));
        }
        Ok(out)
    }

    async fn one_entry(
        &self,
        sql: &'static str,
        ns: u64,
        key: &str,
    ) -> Result<Option<Entry>, StoreError> {
        on_db!(&self.db, |c| {
            let row = sqlx::query(sql)
                .bind(ns as i64)
                .bind(key)
                .fetch_optional(c)
                .await?;
            Ok(row.map(|r| Entry::from_row(&r)).transpose()?)
        })
    }

    /// A file revision by rev, as an entry at the path it was written to.
    pub async fn revision_by_rev(&self, ns: u64, rev: &str) -> Result<Option<Entry>, StoreError> {
        on_db!(&self.db, |c| {
            let row = sqlx::query(
                "SELECT ns, path_lower, path_display, CAST(0 AS BIGINT) AS kind, file_id, rev, id AS \
                        revision, size, content_hash, client_modified, server_modified \
                 FROM revisions WHERE ns = $1 AND rev = $2",
            )
            .bind(ns as i64)
            .bind(rev)
            .fetch_optional(c)
            .await?;
            Ok(row.map(|r| Entry::from_row(&r)).transpose()?)
        })
    }

    /// The block list of a revision.
    pub async fn revision_blocks(&self, revision: i64) -> Result<Vec<BlockHash>, StoreError> {
        let blob: Vec<u8> = on_db!(&self.db, |c| sqlx::query_scalar(
            "SELECT blocks FROM revisions WHERE id = $1"
        )
        .bind(revision)
        .fetch_one(c)
        .await?);
        Ok(blob_to_blocks(&blob))
    }

    /// A page of a folder listing, in `path_lower` order, after `after` (exclusive).
    /// Recursive listings cover every descendant; the folder itself is not included.
    pub async fn list(
        &self,
        ns: u64,
        folder_lower: &str,
        recursive: bool,
        include_deleted: bool,
        after: &str,
        limit: u32,
    ) -> Result<Vec<Entry>, StoreError> {
        let max_kind: i64 = if include_deleted { 3 } else { 2 };
        let (ns, limit) = (ns as i64, limit as i64);
        on_db!(&self.db, |c| {
            let rows = if !recursive {
                sqlx::query(LIST_CHILDREN)
                    .bind(ns)
                    .bind(folder_lower)
                    .bind(after)
                    .bind(max_kind)
                    .bind(limit)
                    .fetch_all(c)
                    .await?
            } else if folder_lower.is_empty() {
                sqlx::query(LIST_ALL)
                    .bind(ns)
                    .bind(after)
                    .bind(max_kind)
                    .bind(limit)
                    .fetch_all(c)
                    .await?
            } else {
                let (lo, hi) = descendant_range(folder_lower);
                let lo = if after > lo.as_str() {
                    after.to_owned()
                } else {
                    lo
                };
                sqlx::query(LIST_RANGE)
                    .bind(ns)
                    .bind(lo)
                    .bind(hi)
                    .bind(max_kind)
                    .bind(limit)
                    .fetch_all(c)
                    .await?
            };
            rows.iter().map(|r| Ok(Entry::from_row(r)?)).collect()
        })
    }

    /// The journal head of a namespace: the last sequence assigned.
    pub async fn head(&self, ns: u64) -> Result<u64, StoreError> {
        let seq: i64 = on_db!(&self.db, |c| sqlx::query_scalar(
            "SELECT seq FROM namespaces WHERE id = $1"
        )
        .bind(ns as i64)
        .fetch_one(c)
        .await?);
        Ok(seq as u64)
    }

    /// Journal rows after (seq, idx), oldest first.
    pub async fn changes(
        &self,
        ns: u64,
        seq: u64,
        idx: u32,
        limit: u32,
    ) -> Result<Vec<Change>, StoreError> {
        on_db!(&self.db, |c| {
            let rows = sqlx::query(
                "SELECT seq, idx, path_lower, parent_lower FROM journal \
                 WHERE ns = $1 AND (seq > $2 OR (seq = $2 AND idx > $3)) ORDER BY seq, idx \
                 LIMIT $4",
            )
            .bind(ns as i64)
            .bind(seq as i64)
            .bind(idx as i64)
            .bind(limit as i64)
            .fetch_all(c)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(Change {
                        seq: r.int("seq")? as u64,
                        idx: r.int("idx")? as u32,
                        path_lower: r.text("path_lower")?,
                        parent_lower: r.text("parent_lower")?,
                    })
                })
                .collect()
        })
    }

    /// Bytes used by live files of a namespace.
    pub async fn space_used(&self, ns: u64) -> Result<u64, StoreError> {
        let used: i64 = on_db!(&self.db, |c| sqlx::query_scalar(
            "SELECT used FROM namespaces WHERE id = $1",
        )
        .bind(ns as i64)
        .fetch_one(c)
        .await?);
        Ok(used as u64)
    }
}

// ---------------------------------------------------------------------------------------
// Writes.

/// A write operation: runs inside a write transaction and yields its result.
pub(crate) trait WriteOp<T>:
    for<'a> FnOnce(&'a mut WriteTx) -> futures_util::future::BoxFuture<'a, Result<T, OpError>>
    + Send
    + 'static
{
}

impl<T, F> WriteOp<T> for F where
    F: for<'a> FnOnce(&'a mut WriteTx) -> futures_util::future::BoxFuture<'a, Result<T, OpError>>
        + Send
        + 'static
{
}

/// A statement parameter for [`WriteTx::exec`].
enum Arg<'a> {
    Text(&'a str),
    Int(i64),
}

/// One write transaction in one namespace, with its lazily taken journal sequence.
pub(crate) struct WriteTx {
    pub(crate) tx: Tx,
    pub(crate) ns: u64,
    pub(crate) seq: Option<u64>,
    pub(crate) idx: u32,
    pub(crate) now: i64,
    /// Where a refused reference increment leaves its hashes (see `refs.rs`).
    pub(crate) gone: crate::refs::Gone,
}

/// An item of a tree written in one go (a folder copy, a saved folder reference).
pub(crate) enum NewItem {
    Folder(String),
    File {
        display: String,
        size: u64,
        client_modified: i64,
        blocks: Vec<BlockHash>,
    },
}

const ENTRY_COLUMNS: &str = "INSERT INTO entries (ns, path_lower, parent_lower, path_display, kind, \
     file_id, rev, revision, size, content_hash, client_modified, server_modified)";
const ENTRY_ON_CONFLICT: &str = "ON CONFLICT (ns, path_lower) DO UPDATE SET parent_lower = excluded.parent_lower, \
     path_display = excluded.path_display, kind = excluded.kind, file_id = excluded.file_id, \
     rev = excluded.rev, revision = excluded.revision, size = excluded.size, \
     content_hash = excluded.content_hash, client_modified = excluded.client_modified, \
     server_modified = excluded.server_modified";

/// A savepoint inside one operation, with the sequence state to restore if it is undone.
pub(crate) struct Mark {
    seq: Option<u64>,
    idx: u32,
}

impl WriteTx {
    async fn plain(&mut self, sql: &'static str) -> Result<(), OpError> {
        on_tx!(&mut self.tx, |c| sqlx::query(sql)
            .execute(&mut *c)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Applies reference-count changes in this transaction.
    pub(crate) async fn refs(&mut self, delta: crate::refs::RefDelta) -> Result<(), OpError> {
        delta.apply(&mut self.tx, self.now, &self.gone).await
    }

    /// Starts a part of the operation that can be undone on its own.
    pub(crate) async fn savepoint(&mut self) -> Result<Mark, OpError> {
        self.plain("SAVEPOINT part").await?;
        Ok(Mark {
            seq: self.seq,
            idx: self.idx,
        })
    }

    /// Keeps what was done since the savepoint.
    pub(crate) async fn release(&mut self) -> Result<(), OpError> {
        self.plain("RELEASE part").await
    }

    /// Undoes everything since the savepoint. A sequence number first taken after it was
    /// undone too, so it is forgotten, and the journal position goes back with it.
    pub(crate) async fn rollback_to(&mut self, mark: Mark) -> Result<(), OpError> {
        self.plain("ROLLBACK TO part").await?;
        self.plain("RELEASE part").await?;
        self.seq = mark.seq;
        self.idx = mark.idx;
        Ok(())
    }

    /// Writes new folders and files (parents before children, none of them live yet) with a
    /// few multi-row statements per table instead of three statements per item: a copy of
    /// 1,000 files costs tens of statements. Returns the entries in the items' order.
    pub(crate) async fn insert_tree(&mut self, items: Vec<NewItem>) -> Result<Vec<Entry>, OpError> {
        use crate::db::Val;
        let seq = self.seq().await?;
        let ns = self.ns as i64;
        let now = self.now;
        let mut entries = Vec::with_capacity(items.len());
        let mut revisions = Vec::new();
        let mut refs = crate::refs::RefDelta::default();
        for (k, item) in items.into_iter().enumerate() {
            let e = match item {
                NewItem::Folder(display) => Entry {
                    ns: ns as u64,
                    ..Entry::folder(display)
                },
                NewItem::File {
                    display,
                    size,
                    client_modified,
                    blocks,
                } => {
                    let id = crate::new_file_id();
                    let rev =
                        ids::rev(seq, self.idx + k as u32, u32::from_le_bytes(random_bytes()));
                    let content_hash = content_hash_of_blocks(&blocks);
                    let path_lower = lower(&display);
                    refs.add(&blocks);
                    let e = Entry {
                        ns: ns as u64,
                        kind: Kind::File,
                        path_lower,
                        path_display: display,
                        id: Some(id),
                        rev: Some(rev),
                        revision: None,
                        size,
                        content_hash: Some(content_hash),
                        client_modified,
                        server_modified: now,
                    };
                    revisions.push(e.revision_row(ns, &blocks));
                    e
                }
            };
            entries.push(e);
        }
        // Every path of a tree is new (its top was claimed free), so all its bytes are new.
        let added: u64 = entries.iter().map(|e| e.size).sum();
        self.charge(added as i64).await?;
        self.refs(refs).await?;
        let ids = self.insert_revisions(seq, revisions).await?;
        for e in entries.iter_mut().filter(|e| e.kind == Kind::File) {
            e.revision = e.rev.as_ref().and_then(|r| ids.get(r)).copied();
        }
        let entry_rows = entries.iter().map(|e| e.row(ns)).collect();
        self.tx
            .insert_rows(ENTRY_COLUMNS, 12, entry_rows, ENTRY_ON_CONFLICT)
            .await?;
        let first_idx = self.idx;
        let journal_rows = entries
            .iter()
            .enumerate()
            .map(|(k, e)| {
                vec![
                    Val::Int(Some(ns)),
                    Val::Int(Some(seq as i64)),
                    Val::Int(Some(i64::from(first_idx) + k as i64)),
                    Val::Text(Some(e.path_lower.clone())),
                    Val::Text(Some(parent_of(&e.path_lower).to_owned())),
                ]
            })
            .collect();
        self.tx
            .insert_rows(
                "INSERT INTO journal (ns, seq, idx, path_lower, parent_lower)",
                5,
                journal_rows,
                "",
            )
            .await?;
        self.idx += entries.len() as u32;
        Ok(entries)
    }

    /// Inserts revision rows whose revs all start with this operation's sequence `seq`, and
    /// returns their row ids by rev.
    async fn insert_revisions(
        &mut self,
        seq: u64,
        rows: Vec<Vec<crate::db::Val>>,
    ) -> Result<std::collections::HashMap<String, i64>, OpError> {
        if rows.is_empty() {
            return Ok(Default::default());
        }
        let ns = self.ns as i64;
        self.tx
            .insert_rows(
                "INSERT INTO revisions (ns, rev, file_id, path_lower, path_display, size, \
                 content_hash, client_modified, server_modified, blocks)",
                10,
                rows,
                "",
            )
            .await?;
        // Every rev of this operation starts with its sequence, so one range read finds the
        // new rows' ids (the order of RETURNING rows is not guaranteed).
        let (lo, hi) = (format!("{seq:09x}"), format!("{:09x}", seq + 1));
        let ids = on_tx!(&mut self.tx, |c| {
            let rows = sqlx::query(
                "SELECT id, rev FROM revisions WHERE ns = $1 AND rev >= $2 AND rev < $3",
            )
            .bind(ns)
            .bind(&lo)
            .bind(&hi)
            .fetch_all(&mut *c)
            .await?;
            rows.iter()
                .map(|r| Ok((r.text("rev")?, r.int("id")?)))
                .collect::<Result<_, sqlx::Error>>()?
        });
        Ok(ids)
    }

    /// Gives every file at or under `top_lower` (just moved there) a new revision at its new
    /// path, as Dropbox does: the id, content and `client_modified` stay; the rev and
    /// `server_modified` are new, so `rev:` of the new rev answers where the file is now and
    /// the old revs keep answering with the paths they were written at.
    async fn revise_moved(&mut self, top_lower: &str) -> Result<(), OpError> {
        const MOVED_FILES: &str = "SELECT e.path_lower, e.path_display, e.kind, e.file_id, e.rev, \
             e.revision, e.size, e.content_hash, e.client_modified, e.server_modified, r.blocks \
             FROM entries e JOIN revisions r ON r.id = e.revision \
             WHERE e.ns = $1 AND e.kind = 0 AND (e.path_lower = $2 OR (e.path_lower >= $3 AND e.path_lower < $4))";
        let seq = self.seq().await?;
        let ns = self.ns as i64;
        let (lo, hi) = descendant_range(top_lower);
        let moved: Vec<(Entry, Vec<BlockHash>)> = on_tx!(&mut self.tx, |c| {
            let rows = sqlx::query(MOVED_FILES)
                .bind(ns)
                .bind(top_lower)
                .bind(&lo)
                .bind(&hi)
                .fetch_all(&mut *c)
                .await?;
            rows.iter()
                .map(|r| Ok((Entry::from_row(r)?, blob_to_blocks(&r.bytes("blocks")?))))
                .collect::<Result<_, sqlx::Error>>()?
        });
        let mut refs = crate::refs::RefDelta::default();
        let mut revisions = Vec::with_capacity(moved.len());
        let mut entries = Vec::with_capacity(moved.len());
        for (k, (mut e, blocks)) in moved.into_iter().enumerate() {
            e.rev = Some(ids::rev(
                seq,
                self.idx + k as u32,
                u32::from_le_bytes(random_bytes()),
            ));
            e.server_modified = self.now;
            refs.add(&blocks);
            revisions.push(e.revision_row(ns, &blocks));
            entries.push(e);
        }
        // The revs above used these positions; the journal may skip them.
        self.idx += entries.len() as u32;
        self.refs(refs).await?;
        let ids = self.insert_revisions(seq, revisions).await?;
        for e in &mut entries {
            e.revision = e.rev.as_ref().and_then(|r| ids.get(r)).copied();
        }
        let rows = entries.iter().map(|e| e.row(ns)).collect();
        self.tx
            .insert_rows(ENTRY_COLUMNS, 12, rows, ENTRY_ON_CONFLICT)
            .await?;
        Ok(())
    }

    /// The live entries among these lower-case paths, by path.
    pub(crate) async fn live_many(
        &mut self,
        paths: &[String],
    ) -> Result<std::collections::HashMap<String, Entry>, OpError> {
        const LIVE_IN: &str = entry_sql!("WHERE ns = $1 AND kind < 2 AND path_lower IN ");
        let ns = self.ns as i64;
        let mut out = std::collections::HashMap::with_capacity(paths.len());
        for chunk in paths.chunks(500) {
            let sql = format!("{LIVE_IN}({})", crate::db::placeholders(2, chunk.len()));
            let found: Vec<Entry> = on_tx!(&mut self.tx, |c| {
                let mut q = sqlx::query(crate::db::sql_for(&c, sql)).bind(ns);
                for p in chunk {
                    q = q.bind(p);
                }
                let rows = q.fetch_all(&mut *c).await?;
                rows.iter().map(Entry::from_row).collect::<Result<_, _>>()?
            });
            out.extend(found.into_iter().map(|e| (e.path_lower.clone(), e)));
        }
        Ok(out)
    }

    /// Whether `added` more bytes fit in the namespace's quota, as [`WriteTx::charge`] would
    /// find (so a caller can choose a path before writing anything).
    pub(crate) async fn fits(&mut self, added: u64) -> Result<bool, OpError> {
        Ok(match self.quota_and_usage().await? {
            Some((quota, used)) => used.saturating_add(added as i64) <= quota,
            None => true,
        })
    }

    /// The quota this namespace's writes are held to, and the usage it is held against: a
    /// home's account's, or a shared folder's owner's; the usage is the account's home and
    /// every shared folder mounted in it (`None`: no quota).
    async fn quota_and_usage(&mut self) -> Result<Option<(i64, i64)>, OpError> {
        const QUOTA: &str = "WITH acct AS ( \
               SELECT id, ns, quota FROM accounts WHERE ns = $1 \
               UNION ALL \
               SELECT a.id, a.ns, a.quota FROM shared_folders f JOIN accounts a ON a.id = f.owner \
               WHERE f.ns = $1) \
             SELECT acct.quota, CAST((SELECT used FROM namespaces WHERE id = acct.ns) + \
               (SELECT COALESCE(SUM(n.used), 0) FROM folder_members m \
                JOIN namespaces n ON n.id = m.ns \
                WHERE m.account = acct.id AND m.mount_lower IS NOT NULL) AS BIGINT) AS usage \
             FROM acct WHERE acct.quota IS NOT NULL LIMIT 1";
        let ns = self.ns as i64;
        let row: Option<(i64, i64)> = on_tx!(&mut self.tx, |c| {
            sqlx::query_as(QUOTA)
                .bind(ns)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row)
    }

    /// Adds `delta` bytes to the namespace's logical size; growth past the owner's quota
    /// fails the operation (and its transaction or savepoint undoes the change).
    pub(crate) async fn charge(&mut self, delta: i64) -> Result<(), OpError> {
        if delta == 0 {
            return Ok(());
        }
        let ns = self.ns as i64;
        on_tx!(&mut self.tx, |c| {
            sqlx::query("UPDATE namespaces SET used = used + $1 WHERE id = $2")
                .bind(delta)
                .bind(ns)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        if delta < 0 {
            return Ok(());
        }
        // Growth is held to the quota, counting the shared folders mounted in the home (for
        // a shared folder: its owner's).
        match self.quota_and_usage().await? {
            Some((quota, used)) if used > quota => Err(OpError::InsufficientSpace),
            _ => Ok(()),
        }
    }

    async fn entry(&mut self, path_lower: &str) -> Result<Option<Entry>, OpError> {
        let ns = self.ns as i64;
        on_tx!(&mut self.tx, |c| {
            let row = sqlx::query(ENTRY_BY_PATH)
                .bind(ns)
                .bind(path_lower)
                .fetch_optional(&mut *c)
                .await?;
            Ok(row.map(|r| Entry::from_row(&r)).transpose()?)
        })
    }

    pub(crate) async fn live(&mut self, path_lower: &str) -> Result<Option<Entry>, OpError> {
        Ok(self
            .entry(path_lower)
            .await?
            .filter(|e| e.kind != Kind::Deleted))
    }

    async fn seq(&mut self) -> Result<u64, OpError> {
        if let Some(s) = self.seq {
            return Ok(s);
        }
        let ns = self.ns as i64;
        let s: i64 = on_tx!(&mut self.tx, |c| sqlx::query_scalar(
            "UPDATE namespaces SET seq = seq + 1 WHERE id = $1 RETURNING seq",
        )
        .bind(ns)
        .fetch_one(&mut *c)
        .await?);
        self.seq = Some(s as u64);
        Ok(s as u64)
    }

    pub(crate) async fn journal(&mut self, path_lower: &str) -> Result<(), OpError> {
        let seq = self.seq().await? as i64;
        let (ns, idx) = (self.ns as i64, self.idx as i64);
        on_tx!(&mut self.tx, |c| {
            sqlx::query(
                "INSERT INTO journal (ns, seq, idx, path_lower, parent_lower) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(ns)
            .bind(seq)
            .bind(idx)
            .bind(path_lower)
            .bind(parent_of(path_lower))
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        self.idx += 1;
        Ok(())
    }

    /// Journals every live item strictly below `folder_lower` (one statement), so the change
    /// feed names each of them: when the folder is deleted or moved away, a client holding
    /// its contents learns they are gone even if the folder's path is live again by the time
    /// it reads the feed (deleted and re-created, or another folder moved in).
    pub(crate) async fn journal_descendants(&mut self, folder_lower: &str) -> Result<(), OpError> {
        let seq = self.seq().await? as i64;
        let (ns, idx) = (self.ns as i64, self.idx as i64);
        let (lo, hi) = descendant_range(folder_lower);
        let inserted = on_tx!(&mut self.tx, |c| {
            sqlx::query(
                "INSERT INTO journal (ns, seq, idx, path_lower, parent_lower) \
                 SELECT ns, $1, $2 + ROW_NUMBER() OVER (ORDER BY path_lower) - 1, path_lower, \
                 parent_lower FROM entries WHERE ns = $3 AND path_lower >= $4 AND path_lower < $5 \
                 AND kind < 2",
            )
            .bind(seq)
            .bind(idx)
            .bind(ns)
            .bind(&lo)
            .bind(&hi)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        self.idx += inserted as u32;
        Ok(())
    }

    /// Runs a statement whose parameters are the namespace then `args`.
    async fn exec(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<u64, OpError> {
        let ns = self.ns as i64;
        let n = on_tx!(&mut self.tx, |c| {
            let mut q = sqlx::query(sql).bind(ns);
            for a in args {
                q = match a {
                    Arg::Text(t) => q.bind(t.to_string()),
                    Arg::Int(i) => q.bind(*i),
                };
            }
            q.execute(&mut *c).await?.rows_affected()
        });
        Ok(n)
    }

    /// Makes sure every ancestor of `path` is a folder, creating missing ones. Returns the
    /// stored display path of the parent (`""` for the root).
    pub(crate) async fn ensure_parents(&mut self, path: &str) -> Result<String, OpError> {
        let mut parent_display = String::new();
        for anc in ancestors(path) {
            let anc_lower = lower(anc);
            match self.live(&anc_lower).await? {
                Some(e) if e.kind == Kind::Folder => parent_display = e.path_display,
                Some(_) => return Err(OpError::Conflict(WriteConflict::FileAncestor)),
                None => {
                    let display = format!("{parent_display}/{}", name_of(anc));
                    if is_disallowed_name(name_of(anc)) {
                        return Err(OpError::DisallowedName);
                    }
                    self.insert_folder(&display).await?;
                    parent_display = display;
                }
            }
        }
        Ok(parent_display)
    }

    async fn upsert(&mut self, e: &Entry) -> Result<(), OpError> {
        let row = e.row(self.ns as i64);
        self.tx
            .insert_rows(ENTRY_COLUMNS, 12, vec![row], ENTRY_ON_CONFLICT)
            .await?;
        Ok(())
    }

    pub(crate) async fn insert_folder(&mut self, display: &str) -> Result<Entry, OpError> {
        let e = Entry {
            ns: self.ns,
            ..Entry::folder(display.to_owned())
        };
        self.upsert(&e).await?;
        self.journal(&e.path_lower).await?;
        Ok(e)
    }

    /// Writes a new revision of a file at `display`; an overwrite names the file it replaces,
    /// whose id the new revision keeps and whose size it no longer counts.
    pub(crate) async fn write_file(
        &mut self,
        display: &str,
        replaces: Option<&Entry>,
        size: u64,
        blocks: &[BlockHash],
        client_modified: Option<i64>,
    ) -> Result<Entry, OpError> {
        let seq = self.seq().await?;
        let ns = self.ns as i64;
        let path_lower = lower(display);
        self.charge(size as i64 - replaces.map_or(0, |e| e.size as i64))
            .await?;
        let id = replaces
            .and_then(|e| e.id.clone())
            .unwrap_or_else(crate::new_file_id);
        let rev = ids::rev(seq, self.idx, u32::from_le_bytes(random_bytes()));
        let content_hash = content_hash_of_blocks(blocks);
        let client_modified = client_modified.unwrap_or(self.now);
        let now = self.now;
        let mut refs = crate::refs::RefDelta::default();
        refs.add(blocks);
        self.refs(refs).await?;
        let revision: i64 = on_tx!(&mut self.tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO revisions (ns, rev, file_id, path_lower, path_display, size, \
                 content_hash, client_modified, server_modified, blocks) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            )
            .bind(ns)
            .bind(&rev)
            .bind(&id)
            .bind(&path_lower)
            .bind(display)
            .bind(size as i64)
            .bind(&content_hash)
            .bind(client_modified)
            .bind(now)
            .bind(blocks_to_blob(blocks))
            .fetch_one(&mut *c)
            .await?
        });
        let e = Entry {
            ns: self.ns,
            kind: Kind::File,
            path_lower,
            path_display: display.to_owned(),
            id: Some(id),
            rev: Some(rev),
            revision: Some(revision),
            size,
            content_hash: Some(content_hash),
            client_modified,
            server_modified: now,
        };
        self.upsert(&e).await?;
        self.journal(&e.path_lower).await?;
        Ok(e)
    }

    /// The path for a new item `name` in `parent_display`: a conflict with what is there,
    /// or, with autorename, the first free numbered name.
    pub(crate) async fn claim_name(
        &mut self,
        parent_display: &str,
        name: &str,
        autorename: bool,
    ) -> Result<String, OpError> {
        let display = format!("{parent_display}/{name}");
        match self.live(&lower(&display)).await? {
            None => Ok(display),
            Some(_) if autorename => self.free_name(parent_display, name, false).await,
            Some(e) => Err(OpError::Conflict(if e.kind == Kind::Folder {
                WriteConflict::Folder
            } else {
                WriteConflict::File
            })),
        }
    }

    /// Finds a free name next to `display` for autorename.
    async fn free_name(
        &mut self,
        parent_display: &str,
        name: &str,
        conflicted: bool,
    ) -> Result<String, OpError> {
        for n in 1..=MAX_AUTORENAME_TRIES {
            let candidate_name = if conflicted {
                naming::conflicted_copy(name, n)
            } else {
                naming::numbered(name, n)
            };
            let candidate = format!("{parent_display}/{candidate_name}");
            if self.live(&lower(&candidate)).await?.is_none() {
                return Ok(candidate);
            }
        }
        Err(OpError::Conflict(WriteConflict::File))
    }
}

impl Store {
    /// Commits a file whose blocks are durable, applying Dropbox's write-mode rules.
    pub async fn commit_file(&self, ns: u64, c: Commit) -> Result<Entry, OpError> {
        self.write(ns, move |tx| Box::pin(commit_file_op(tx, c)))
            .await
    }

    /// Creates a folder (and its missing parents).
    pub async fn create_folder(
        &self,
        ns: u64,
        path: &str,
        autorename: bool,
    ) -> Result<Entry, OpError> {
        if is_disallowed_name(name_of(path)) {
            return Err(OpError::DisallowedName);
        }
        let path = path.to_owned();
        self.write(ns, move |tx| {
            Box::pin(create_folder_op(tx, path, autorename))
        })
        .await
    }

    /// Makes sure a folder exists (used for app folders); no error if it already does.
    pub async fn ensure_folder(&self, ns: u64, path: &str) -> Result<(), OpError> {
        match self.create_folder(ns, path, false).await {
            Ok(_) | Err(OpError::Conflict(WriteConflict::Folder)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes a file or, recursively, a folder. Returns the entry as it was.
    pub async fn delete(
        &self,
        ns: u64,
        path_lower: &str,
        parent_rev: Option<&str>,
    ) -> Result<Entry, OpError> {
        let (path_lower, parent_rev) = (path_lower.to_owned(), parent_rev.map(str::to_owned));
        self.write(ns, move |tx| {
            Box::pin(delete_op(tx, path_lower, parent_rev))
        })
        .await
    }

    /// Moves or copies `from_lower` to the display path `to`.
    pub async fn relocate(
        &self,
        ns: u64,
        from_lower: &str,
        to: &str,
        copy: bool,
        autorename: bool,
    ) -> Result<Entry, OpError> {
        let (from_lower, to) = (from_lower.to_owned(), to.to_owned());
        self.write(ns, move |tx| {
            Box::pin(relocate_op(tx, from_lower, to, copy, autorename))
        })
        .await
    }

    /// Runs one write operation in a transaction of its own (PostgreSQL, serialized per
    /// namespace by a row lock) or in the next group commit (SQLite); its result is returned
    /// only once it is committed, and waiters are woken then.
    pub(crate) async fn write<T, F>(&self, ns: u64, op: F) -> Result<T, OpError>
    where
        T: Send + 'static,
        F: WriteOp<T>,
    {
        self.write_in(Some(ns), op).await
    }

    /// Like [`Store::write`] for rows outside any namespace tree (upload sessions, jobs): no
    /// namespace lock on PostgreSQL, the same group commit on SQLite.
    pub(crate) async fn write_plain<T, F>(&self, op: F) -> Result<T, OpError>
    where
        T: Send + 'static,
        F: WriteOp<T>,
    {
        self.write_in(None, op).await
    }

    /// Appends rows that no other write depends on (a new upload session and its small
    /// block): on SQLite, in the group commit's multi-row inserts for their tables; on
    /// PostgreSQL, a write of their own.
    pub(crate) async fn insert_plain(
        &self,
        rows: Vec<crate::group::Insert>,
    ) -> Result<(), OpError> {
        match &self.group {
            Some(group) => group.insert(rows).await,
            None => {
                self.write_plain(move |tx| {
                    Box::pin(async move {
                        for insert in rows {
                            let width = insert.row.len();
                            tx.tx
                                .insert_rows(insert.head, width, vec![insert.row], insert.tail)
                                .await?;
                        }
                        Ok(())
                    })
                })
                .await
            }
        }
    }

    async fn write_in<T, F>(&self, ns: Option<u64>, op: F) -> Result<T, OpError>
    where
        T: Send + 'static,
        F: WriteOp<T>,
    {
        let result = match &self.group {
            Some(group) => group.submit(ns.unwrap_or(0), op).await,
            None => self.write_alone(ns, op).await,
        };
        let gone = std::mem::take(&mut *self.gone.lock().expect("gone list"));
        if !gone.is_empty()
            && let Err(e) = self.revive(gone).await
        {
            tracing::warn!(error = %e, "reviving rewritten blocks failed");
        }
        result
    }

    /// One operation in a transaction of its own (PostgreSQL), given up after
    /// [`crate::db::PG_WRITE_DEADLINE`]: a connection that went silent mid-write fails its
    /// request (no 200; the transaction is dropped with the connection, and PostgreSQL rolls
    /// it back unless the commit had already reached it) instead of holding it for good.
    async fn write_alone<T, F>(&self, ns: Option<u64>, op: F) -> Result<T, OpError>
    where
        T: Send + 'static,
        F: WriteOp<T>,
    {
        let deadline = crate::db::PG_WRITE_DEADLINE;
        match tokio::time::timeout(deadline, self.write_alone_now(ns, op)).await {
            Ok(r) => r,
            Err(_) => Err(OpError::Internal(crate::StoreError::Invalid(format!(
                "the database did not answer a write within {} s",
                deadline.as_secs()
            )))),
        }
    }

    async fn write_alone_now<T, F>(&self, ns: Option<u64>, op: F) -> Result<T, OpError>
    where
        T: Send + 'static,
        F: WriteOp<T>,
    {
        let mut tx = WriteTx {
            tx: self.db.begin(ns).await?,
            ns: ns.unwrap_or(0),
            seq: None,
            idx: 0,
            now: now(),
            gone: self.gone.clone(),
        };
        let value = op(&mut tx).await?;
        let seq = tx.seq;
        let ns = tx.ns;
        tx.tx.commit(seq.map(|s| (ns, s))).await?;
        if let Some(seq) = seq {
            self.notifier.publish(ns, seq);
        }
        Ok(value)
    }
}

pub(crate) async fn commit_file_op(tx: &mut WriteTx, c: Commit) -> Result<Entry, OpError> {
    if is_disallowed_name(name_of(&c.path)) {
        return Err(OpError::DisallowedName);
    }
    {
        let parent_display = tx.ensure_parents(&c.path).await?;
        let mut display = format!("{parent_display}/{}", name_of(&c.path));
        let existing = tx.entry(&lower(&display)).await?;
        let new_hash = content_hash_of_blocks(&c.blocks);
        let mut replaces = None;
        match existing {
            Some(e) if e.kind == Kind::Folder => {
                if !c.autorename {
                    return Err(OpError::Conflict(WriteConflict::Folder));
                }
                display = tx
                    .free_name(&parent_display, name_of(&display), false)
                    .await?;
            }
            Some(e) if e.kind == Kind::File => {
                let same = e.content_hash.as_deref() == Some(new_hash.as_str());
                let allowed = match &c.mode {
                    WriteMode::Add => false,
                    WriteMode::Overwrite => true,
                    WriteMode::Update(rev) => e.rev.as_deref() == Some(rev.as_str()),
                };
                if same && !c.strict_conflict {
                    // Identical content: nothing to write, the rev stays.
                    return Ok(e);
                }
                if allowed && !same {
                    display = e.path_display.clone();
                    replaces = Some(e);
                } else if c.autorename {
                    let conflicted = matches!(c.mode, WriteMode::Update(_));
                    display = tx
                        .free_name(&parent_display, name_of(&display), conflicted)
                        .await?;
                } else {
                    return Err(OpError::Conflict(WriteConflict::File));
                }
            }
            Some(_) if c.strict_conflict && matches!(c.mode, WriteMode::Update(_)) => {
                // Updating a file that was deleted meanwhile is a conflict under strict rules.
                if !c.autorename {
                    return Err(OpError::Conflict(WriteConflict::File));
                }
                display = tx
                    .free_name(&parent_display, name_of(&display), true)
                    .await?;
            }
            _ => {}
        }
        tx.write_file(
            &display,
            replaces.as_ref(),
            c.size,
            &c.blocks,
            c.client_modified,
        )
        .await
    }
}

async fn create_folder_op(
    tx: &mut WriteTx,
    path: String,
    autorename: bool,
) -> Result<Entry, OpError> {
    {
        let parent_display = tx.ensure_parents(&path).await?;
        let display = tx
            .claim_name(&parent_display, name_of(&path), autorename)
            .await?;
        tx.insert_folder(&display).await
    }
}

pub(crate) async fn delete_op(
    tx: &mut WriteTx,
    path_lower: String,
    parent_rev: Option<String>,
) -> Result<Entry, OpError> {
    let path_lower = path_lower.as_str();
    {
        let Some(e) = tx.live(path_lower).await? else {
            return Err(OpError::NotFound);
        };
        if let Some(rev) = parent_rev.as_deref()
            && (e.kind != Kind::File || e.rev.as_deref() != Some(rev))
        {
            return Err(OpError::Conflict(WriteConflict::File));
        }
        let freed: i64 = if e.kind == Kind::Folder {
            let (lo, hi) = descendant_range(path_lower);
            let ns = tx.ns as i64;
            on_tx!(&mut tx.tx, |c| sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM entries \
                 WHERE ns = $1 AND path_lower >= $2 AND path_lower < $3 AND kind = 0",
            )
            .bind(ns)
            .bind(&lo)
            .bind(&hi)
            .fetch_one(&mut *c)
            .await?)
        } else {
            e.size as i64
        };
        tx.charge(-freed).await?;
        if e.kind == Kind::Folder {
            tx.journal_descendants(path_lower).await?;
            let (lo, hi) = descendant_range(path_lower);
            let now = tx.now;
            tx.exec(
                "UPDATE entries SET kind = 2, file_id = NULL, server_modified = $4 \
                 WHERE ns = $1 AND path_lower >= $2 AND path_lower < $3 AND kind < 2",
                &[Arg::Text(&lo), Arg::Text(&hi), Arg::Int(now)],
            )
            .await?;
        }
        let now = tx.now;
        tx.exec(
            "UPDATE entries SET kind = 2, file_id = NULL, server_modified = $3 WHERE ns = $1 AND path_lower = $2",
            &[Arg::Text(path_lower), Arg::Int(now)],
        )
        .await?;
        tx.journal(path_lower).await?;
        if e.kind == Kind::Folder {
            // A folder of a home may be or hold mount points: they went with it.
            tx.follow_mounts(path_lower, None).await?;
        }
        Ok(e)
    }
}

async fn relocate_op(
    tx: &mut WriteTx,
    from_lower: String,
    to: String,
    copy: bool,
    autorename: bool,
) -> Result<Entry, OpError> {
    let (from_lower, to) = (from_lower.as_str(), to.as_str());
    let ns = tx.ns;
    {
        let Some(src) = tx.live(from_lower).await? else {
            return Err(OpError::Source(Box::new(OpError::NotFound)));
        };
        let to_lower = lower(to);
        let case_only_rename = !copy && to_lower == from_lower;
        if src.kind == Kind::Folder && is_within(&to_lower, from_lower) && !case_only_rename {
            return Err(OpError::CantMoveIntoItself);
        }
        if is_disallowed_name(name_of(to)) {
            return Err(OpError::DisallowedName);
        }
        if src.kind == Kind::Folder {
            let (lo, hi) = descendant_range(from_lower);
            let nsi = ns as i64;
            let n: i64 = on_tx!(&mut tx.tx, |c| {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM entries WHERE ns = $1 AND path_lower >= $2 \
                     AND path_lower < $3 AND kind < 2",
                )
                .bind(nsi)
                .bind(&lo)
                .bind(&hi)
                .fetch_one(&mut *c)
                .await?
            });
            if n + 1 > MAX_RELOCATION_ENTRIES {
                return Err(OpError::TooManyFiles);
            }
        }
        let parent_display = tx.ensure_parents(to).await?;
        let display = if case_only_rename {
            format!("{parent_display}/{}", name_of(to))
        } else {
            tx.claim_name(&parent_display, name_of(to), autorename)
                .await?
        };
        if copy {
            copy_tree(tx, &src, &display).await
        } else {
            move_tree(tx, &src, &display).await
        }
    }
}

async fn move_tree(tx: &mut WriteTx, src: &Entry, display: &str) -> Result<Entry, OpError> {
    let dest_lower = lower(display);
    let (src_lo, src_hi) = descendant_range(&src.path_lower);
    let case_only = dest_lower == src.path_lower;
    if !case_only {
        // Tombstones in the way at the destination give way; tombstones under the source
        // are dropped, so the subtree moves cleanly and only the source itself reads deleted.
        let (dlo, dhi) = descendant_range(&dest_lower);
        tx.exec(
            "DELETE FROM entries WHERE ns = $1 AND kind = 2 AND path_lower = $2",
            &[Arg::Text(&dest_lower)],
        )
        .await?;
        tx.exec("DELETE FROM entries WHERE ns = $1 AND kind = 2 AND path_lower >= $2 AND path_lower < $3", &[Arg::Text(&dlo), Arg::Text(&dhi)])
            .await?;
        tx.exec("DELETE FROM entries WHERE ns = $1 AND kind = 2 AND path_lower >= $2 AND path_lower < $3", &[Arg::Text(&src_lo), Arg::Text(&src_hi)])
            .await?;
        if src.kind == Kind::Folder {
            tx.journal_descendants(&src.path_lower).await?;
        }
        tx.journal(&src.path_lower).await?;
    }
    let ns = tx.ns as i64;
    on_tx!(&mut tx.tx, |c| {
        sqlx::query(
            "UPDATE entries SET path_lower = $1, parent_lower = $2, path_display = $3 \
             WHERE ns = $4 AND path_lower = $5",
        )
        .bind(&dest_lower)
        .bind(parent_of(&dest_lower))
        .bind(display)
        .bind(ns)
        .bind(&src.path_lower)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    tx.journal(&dest_lower).await?;
    if src.kind == Kind::Folder {
        on_tx!(&mut tx.tx, |c| {
            // Rewrite the prefix of every descendant; `substr` and `length` both count characters.
            sqlx::query(
                "UPDATE entries SET \
                   path_lower = $1 || substr(path_lower, length($2) + 1), \
                   parent_lower = $1 || substr(parent_lower, length($2) + 1), \
                   path_display = $3 || substr(path_display, length($4) + 1) \
                 WHERE ns = $5 AND path_lower >= $6 AND path_lower < $7",
            )
            .bind(&dest_lower)
            .bind(&src.path_lower)
            .bind(display)
            .bind(&src.path_display)
            .bind(ns)
            .bind(&src_lo)
            .bind(&src_hi)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        tx.journal_descendants(&dest_lower).await?;
        tx.follow_mounts(&src.path_lower, Some(&dest_lower)).await?;
    }
    tx.revise_moved(&dest_lower).await?;
    if !case_only {
        // The old path reads as deleted for include_deleted listings.
        tx.upsert(&Entry::deleted(&src.path_lower, &src.path_display))
            .await?;
    }
    tx.entry(&dest_lower).await?.ok_or(OpError::NotFound)
}

async fn copy_tree(tx: &mut WriteTx, src: &Entry, display: &str) -> Result<Entry, OpError> {
    let ns = tx.ns as i64;
    let mut items = vec![copy_item(tx, src, display.to_owned()).await?];
    if src.kind == Kind::Folder {
        let (lo, hi) = descendant_range(&src.path_lower);
        let rows = on_tx!(&mut tx.tx, |c| {
            let rows = sqlx::query(SUBTREE)
                .bind(ns)
                .bind(lo)
                .bind(hi)
                .bind(MAX_RELOCATION_ENTRIES)
                .fetch_all(&mut *c)
                .await?;
            rows.iter()
                .map(subtree_row)
                .collect::<Result<Vec<_>, _>>()?
        });
        let prefix_chars = src.path_display.chars().count();
        items.extend(rows.into_iter().map(|(path, file)| {
            let rest: String = path.chars().skip(prefix_chars).collect();
            NewItem::at(format!("{display}{rest}"), file)
        }));
    }
    // A copy shares the source's blocks: no block is read or written.
    first(tx.insert_tree(items).await?)
}

/// The first entry written (the top of a tree).
pub(crate) fn first(entries: Vec<Entry>) -> Result<Entry, OpError> {
    entries.into_iter().next().ok_or(OpError::NotFound)
}

/// The live items strictly below a folder (`ns`, then the descendant range, then a limit),
/// with each file's current content, in path order (parents first).
pub(crate) const SUBTREE: &str = "SELECT e.path_display, e.kind, r.size, r.client_modified, r.blocks \
     FROM entries e LEFT JOIN revisions r ON r.id = e.revision \
     WHERE e.ns = $1 AND e.path_lower > $2 AND e.path_lower < $3 AND e.kind < 2 \
     ORDER BY e.path_lower LIMIT $4";

/// One row of a subtree read: the display path, and a file's size, client_modified and blocks.
pub(crate) type SubtreeRow = (String, Option<(u64, i64, Vec<BlockHash>)>);

/// Decodes a row of `SELECT e.path_display, e.kind, r.size, r.client_modified, r.blocks`.
pub(crate) fn subtree_row(r: &impl RowExt) -> Result<SubtreeRow, sqlx::Error> {
    let file = if r.int("kind")? == 0 {
        Some((
            r.int("size")? as u64,
            r.int("client_modified")?,
            blob_to_blocks(&r.bytes("blocks")?),
        ))
    } else {
        None
    };
    Ok((r.text("path_display")?, file))
}

impl NewItem {
    /// A folder, or a file with this content, at `display`.
    pub(crate) fn at(display: String, file: Option<(u64, i64, Vec<BlockHash>)>) -> Self {
        match file {
            None => NewItem::Folder(display),
            Some((size, client_modified, blocks)) => NewItem::File {
                display,
                size,
                client_modified,
                blocks,
            },
        }
    }
}

/// The copy of one entry (a folder, or a file with its current blocks) at `display`.
async fn copy_item(tx: &mut WriteTx, e: &Entry, display: String) -> Result<NewItem, OpError> {
    if e.kind == Kind::Folder {
        return Ok(NewItem::Folder(display));
    }
    let revision = e
        .revision
        .ok_or_else(|| OpError::Invalid("file without revision".into()))?;
    let blob: Vec<u8> = on_tx!(&mut tx.tx, |c| sqlx::query_scalar(
        "SELECT blocks FROM revisions WHERE id = $1"
    )
    .bind(revision)
    .fetch_one(&mut *c)
    .await?);
    Ok(NewItem::File {
        display,
        size: e.size,
        client_modified: e.client_modified,
        blocks: blob_to_blocks(&blob),
    })
}
