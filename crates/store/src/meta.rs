//! Metadata: accounts, apps, tokens, the namespace tree, revisions and the change journal.
//!
//! Every write runs in one `BEGIN IMMEDIATE` transaction on the single writer connection,
//! takes the namespace's next journal sequence, and appends journal rows for each path it
//! changes. Waiters are notified after commit. Reads use the reader pool and never block
//! writers (WAL).
//!
//! Architecture Invariant: paths are keyed by their lower-case form (`path_lower`); the
//! display form is kept as written. A stored `path_display` always equals its parent's
//! `path_display` plus `/name`, so subtree moves can rewrite prefixes.

use cubby_core::hash::{BlockHash, content_hash_of_blocks};
use cubby_core::path::{ancestors, is_disallowed_name, is_within, lower, name_of, parent_of};
use cubby_core::{ids, naming};
use sha2::{Digest, Sha256};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

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
    pub fn name(&self) -> &str {
        name_of(&self.path_display)
    }

    fn from_row(r: &SqliteRow) -> Result<Self, sqlx::Error> {
        Ok(Entry {
            path_lower: r.try_get("path_lower")?,
            path_display: r.try_get("path_display")?,
            kind: Kind::from_db(r.try_get("kind")?),
            id: r.try_get("file_id")?,
            rev: r.try_get("rev")?,
            revision: r.try_get("revision")?,
            size: r.try_get::<i64, _>("size")? as u64,
            content_hash: r.try_get("content_hash")?,
            client_modified: r.try_get::<Option<i64>, _>("client_modified")?.unwrap_or(0),
            server_modified: r.try_get::<Option<i64>, _>("server_modified")?.unwrap_or(0),
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

/// A user account.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: i64,
    pub account_id: String,
    pub name: String,
    pub email: String,
    pub disabled: bool,
    pub ns: u64,
}

/// What a bearer token grants.
#[derive(Clone, Debug)]
pub struct AuthInfo {
    pub account: Account,
    pub token_id: i64,
    pub app_key: String,
    pub app_name: String,
    pub app_folder: bool,
    pub scopes: Vec<String>,
    /// Display path of the caller's root in its namespace: `""`, or `/Apps/<name>`.
    pub root: String,
    pub expired: bool,
}

/// A journal row: a path changed at (seq, idx).
#[derive(Clone, Debug)]
pub struct Change {
    pub seq: u64,
    pub idx: u32,
    pub path_lower: String,
    pub parent_lower: String,
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn blocks_to_blob(blocks: &[BlockHash]) -> Vec<u8> {
    blocks.concat()
}

/// Splits a stored block list back into hashes.
pub fn blob_to_blocks(blob: &[u8]) -> Vec<BlockHash> {
    blob.chunks_exact(32)
        .map(|c| c.try_into().expect("32-byte chunk"))
        .collect()
}

/// Range bounds of the strict descendants of `folder_lower` ("/" sorts just before "0").
fn descendant_range(folder_lower: &str) -> (String, String) {
    (format!("{folder_lower}/"), format!("{folder_lower}0"))
}

// ---------------------------------------------------------------------------------------
// Accounts, apps and tokens.

impl Store {
    /// Creates a user with its home namespace; the password is hashed with Argon2id.
    pub async fn add_user(
        &self,
        name: &str,
        email: &str,
        password: &str,
    ) -> Result<Account, OpError> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"._-@".contains(&c));
        if !valid {
            return Err(OpError::Invalid(
                "user names are 1 to 64 characters of letters, digits, '.', '_', '-' and '@'"
                    .into(),
            ));
        }
        let password = password.to_owned();
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| OpError::Invalid(e.to_string()))??;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM accounts WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(OpError::Invalid(format!("user '{name}' already exists")));
        }
        let ns: i64 =
            sqlx::query_scalar("INSERT INTO namespaces (created) VALUES (?) RETURNING id")
                .bind(now())
                .fetch_one(&mut *tx)
                .await?;
        let account_id = ids::account_id(random_bytes());
        sqlx::query(
            "INSERT INTO accounts (account_id, name, email, password_hash, ns, created) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&account_id)
        .bind(name)
        .bind(email)
        .bind(&hash)
        .bind(ns)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.user(name).await
    }

    /// Looks up a user by name.
    pub async fn user(&self, name: &str) -> Result<Account, OpError> {
        let row = sqlx::query(
            "SELECT id, account_id, name, email, disabled, ns FROM accounts WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(&self.reader)
        .await?
        .ok_or(OpError::NoSuchUser)?;
        Ok(account_from_row(&row)?)
    }

    /// Mints a long-lived access token for a user and app (the built-in full-access app when
    /// `app_key` is `None`). `scopes` narrows the app's scopes; unknown scopes are refused.
    pub async fn mint_token(
        &self,
        user: &str,
        app_key: Option<&str>,
        scopes: &[String],
    ) -> Result<(String, AuthInfo), OpError> {
        let account = self.user(user).await?;
        let app_key = app_key.unwrap_or("cubby");
        let app = sqlx::query("SELECT id, name, access_type, scopes FROM apps WHERE app_key = ?")
            .bind(app_key)
            .fetch_optional(&self.reader)
            .await?
            .ok_or(OpError::NoSuchApp)?;
        let app_scopes: String = app.try_get("scopes")?;
        let granted: Vec<String> = if scopes.is_empty() {
            app_scopes.split_whitespace().map(str::to_owned).collect()
        } else {
            for s in scopes {
                if !app_scopes.split_whitespace().any(|a| a == s) {
                    return Err(OpError::Invalid(format!(
                        "scope '{s}' is not allowed for app '{app_key}'"
                    )));
                }
            }
            scopes.to_vec()
        };
        if app.try_get::<String, _>("access_type")? == "app_folder" {
            let name: String = app.try_get("name")?;
            self.ensure_folder(account.ns, &format!("/Apps/{name}"))
                .await?;
        }
        let token = ids::token("cby1.", random_bytes());
        sqlx::query(
            "INSERT INTO tokens (token_hash, kind, account, app, scopes, created) VALUES (?, 'access', ?, ?, ?, ?)",
        )
        .bind(token_hash(&token))
        .bind(account.id)
        .bind(app.try_get::<i64, _>("id")?)
        .bind(granted.join(" "))
        .bind(now())
        .execute(&self.writer)
        .await?;
        let info = self
            .authenticate(&token)
            .await?
            .ok_or(OpError::NoSuchUser)?;
        Ok((token, info))
    }

    /// Resolves a bearer token. `None` for unknown, revoked or disabled; expired tokens are
    /// returned with `expired` set so the caller can answer `expired_access_token`.
    pub async fn authenticate(&self, token: &str) -> Result<Option<AuthInfo>, StoreError> {
        // The lookup is by SHA-256 of the token, so timing reveals nothing about stored tokens.
        let row = sqlx::query(
            "SELECT t.id AS token_id, t.scopes, t.expires, t.revoked, \
                    a.id, a.account_id, a.name, a.email, a.disabled, a.ns, \
                    p.app_key, p.name AS app_name, p.access_type \
             FROM tokens t JOIN accounts a ON a.id = t.account JOIN apps p ON p.id = t.app \
             WHERE t.token_hash = ? AND t.kind = 'access'",
        )
        .bind(token_hash(token))
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let account = account_from_row(&row)?;
        if row.try_get::<i64, _>("revoked")? != 0 || account.disabled {
            return Ok(None);
        }
        let expires: Option<i64> = row.try_get("expires")?;
        let app_name: String = row.try_get("app_name")?;
        let app_folder = row.try_get::<String, _>("access_type")? == "app_folder";
        Ok(Some(AuthInfo {
            account,
            token_id: row.try_get("token_id")?,
            app_key: row.try_get("app_key")?,
            root: if app_folder {
                format!("/Apps/{app_name}")
            } else {
                String::new()
            },
            app_name,
            app_folder,
            scopes: row
                .try_get::<String, _>("scopes")?
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            expired: expires.is_some_and(|e| e <= now()),
        }))
    }

    /// Reads a setting, creating it with `len` random bytes on first use.
    pub(crate) async fn setting_or_init(
        &self,
        key: &str,
        len: usize,
    ) -> Result<Vec<u8>, StoreError> {
        let mut fresh = vec![0u8; len];
        getrandom::fill(&mut fresh).map_err(|e| StoreError::Invalid(e.to_string()))?;
        sqlx::query("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)")
            .bind(key)
            .bind(fresh)
            .execute(&self.writer)
            .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
                .bind(key)
                .fetch_one(&self.writer)
                .await?,
        )
    }
}

fn account_from_row(row: &SqliteRow) -> Result<Account, sqlx::Error> {
    Ok(Account {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        ns: row.try_get::<i64, _>("ns")? as u64,
    })
}

fn hash_password(password: &str) -> Result<String, OpError> {
    use argon2::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| OpError::Invalid(format!("password hashing failed: {e}")))
}

// ---------------------------------------------------------------------------------------
// Reads.

impl Store {
    /// The entry (live or tombstone) at a lower-case path.
    pub async fn entry(&self, ns: u64, path_lower: &str) -> Result<Option<Entry>, StoreError> {
        let sql = const_format_entry_by_path();
        let row = sqlx::query(sql)
            .bind(ns as i64)
            .bind(path_lower)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(|r| Entry::from_row(&r)).transpose()?)
    }

    /// The live entry with this id.
    pub async fn entry_by_id(&self, ns: u64, id: &str) -> Result<Option<Entry>, StoreError> {
        let row = sqlx::query(const_format_entry_by_id())
            .bind(ns as i64)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(|r| Entry::from_row(&r)).transpose()?)
    }

    /// A file revision by rev, as an entry at the path it was written to.
    pub async fn revision_by_rev(&self, ns: u64, rev: &str) -> Result<Option<Entry>, StoreError> {
        let row = sqlx::query(
            "SELECT path_lower, path_display, 0 AS kind, file_id, rev, id AS revision, size, content_hash, \
                    client_modified, server_modified FROM revisions WHERE ns = ? AND rev = ?",
        )
        .bind(ns as i64)
        .bind(rev)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|r| Entry::from_row(&r)).transpose()?)
    }

    /// The block list of a revision.
    pub async fn revision_blocks(&self, revision: i64) -> Result<Vec<BlockHash>, StoreError> {
        let blob: Vec<u8> = sqlx::query_scalar("SELECT blocks FROM revisions WHERE id = ?")
            .bind(revision)
            .fetch_one(&self.reader)
            .await?;
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
        let rows = if !recursive {
            sqlx::query(const_format_list_children())
                .bind(ns as i64)
                .bind(folder_lower)
                .bind(after)
                .bind(max_kind)
                .bind(limit as i64)
                .fetch_all(&self.reader)
                .await?
        } else if folder_lower.is_empty() {
            sqlx::query(const_format_list_all())
                .bind(ns as i64)
                .bind(after)
                .bind(max_kind)
                .bind(limit as i64)
                .fetch_all(&self.reader)
                .await?
        } else {
            let (lo, hi) = descendant_range(folder_lower);
            let lo = if after > lo.as_str() {
                after.to_owned()
            } else {
                lo
            };
            sqlx::query(const_format_list_range())
                .bind(ns as i64)
                .bind(lo)
                .bind(hi)
                .bind(max_kind)
                .bind(limit as i64)
                .fetch_all(&self.reader)
                .await?
        };
        rows.iter().map(|r| Ok(Entry::from_row(r)?)).collect()
    }

    /// The journal head of a namespace: the last sequence assigned.
    pub async fn head(&self, ns: u64) -> Result<u64, StoreError> {
        let seq: i64 = sqlx::query_scalar("SELECT seq FROM namespaces WHERE id = ?")
            .bind(ns as i64)
            .fetch_one(&self.reader)
            .await?;
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
        let rows = sqlx::query(
            "SELECT seq, idx, path_lower, parent_lower FROM journal \
             WHERE ns = ? AND (seq > ? OR (seq = ? AND idx > ?)) ORDER BY seq, idx LIMIT ?",
        )
        .bind(ns as i64)
        .bind(seq as i64)
        .bind(seq as i64)
        .bind(idx as i64)
        .bind(limit as i64)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Change {
                    seq: r.try_get::<i64, _>("seq")? as u64,
                    idx: r.try_get::<i64, _>("idx")? as u32,
                    path_lower: r.try_get("path_lower")?,
                    parent_lower: r.try_get("parent_lower")?,
                })
            })
            .collect()
    }

    /// Bytes used by live files of a namespace.
    pub async fn space_used(&self, ns: u64) -> Result<u64, StoreError> {
        let used: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(size), 0) FROM entries WHERE ns = ? AND kind = 0",
        )
        .bind(ns as i64)
        .fetch_one(&self.reader)
        .await?;
        Ok(used as u64)
    }
}

// The SQL of the reads above, kept together so the column list is written once.
macro_rules! entry_sql {
    ($name:ident, $tail:literal) => {
        const fn $name() -> &'static str {
            concat!(
                "SELECT path_lower, path_display, kind, file_id, rev, revision, size, content_hash, ",
                "client_modified, server_modified FROM entries ",
                $tail
            )
        }
    };
}
entry_sql!(
    const_format_entry_by_path,
    "WHERE ns = ? AND path_lower = ?"
);
entry_sql!(
    const_format_entry_by_id,
    "WHERE ns = ? AND file_id = ? AND kind < 2"
);
entry_sql!(
    const_format_list_children,
    "WHERE ns = ? AND parent_lower = ? AND path_lower > ? AND kind < ? ORDER BY path_lower LIMIT ?"
);
entry_sql!(
    const_format_list_all,
    "WHERE ns = ? AND path_lower > ? AND kind < ? ORDER BY path_lower LIMIT ?"
);
entry_sql!(
    const_format_list_range,
    "WHERE ns = ? AND path_lower > ? AND path_lower < ? AND kind < ? ORDER BY path_lower LIMIT ?"
);

// ---------------------------------------------------------------------------------------
// Writes.

/// One write transaction in one namespace, with its lazily taken journal sequence.
struct WriteTx {
    tx: Transaction<'static, Sqlite>,
    ns: u64,
    seq: Option<u64>,
    idx: u32,
    now: i64,
}

impl WriteTx {
    async fn begin(store: &Store, ns: u64) -> Result<Self, OpError> {
        Ok(Self {
            tx: store.writer.begin_with("BEGIN IMMEDIATE").await?,
            ns,
            seq: None,
            idx: 0,
            now: now(),
        })
    }

    async fn entry(&mut self, path_lower: &str) -> Result<Option<Entry>, OpError> {
        let row = sqlx::query(const_format_entry_by_path())
            .bind(self.ns as i64)
            .bind(path_lower)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row.map(|r| Entry::from_row(&r)).transpose()?)
    }

    async fn live(&mut self, path_lower: &str) -> Result<Option<Entry>, OpError> {
        Ok(self
            .entry(path_lower)
            .await?
            .filter(|e| e.kind != Kind::Deleted))
    }

    async fn seq(&mut self) -> Result<u64, OpError> {
        if let Some(s) = self.seq {
            return Ok(s);
        }
        let s: i64 =
            sqlx::query_scalar("UPDATE namespaces SET seq = seq + 1 WHERE id = ? RETURNING seq")
                .bind(self.ns as i64)
                .fetch_one(&mut *self.tx)
                .await?;
        self.seq = Some(s as u64);
        Ok(s as u64)
    }

    async fn journal(&mut self, path_lower: &str) -> Result<(), OpError> {
        let seq = self.seq().await?;
        sqlx::query(
            "INSERT INTO journal (ns, seq, idx, path_lower, parent_lower) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(self.ns as i64)
        .bind(seq as i64)
        .bind(self.idx as i64)
        .bind(path_lower)
        .bind(parent_of(path_lower))
        .execute(&mut *self.tx)
        .await?;
        self.idx += 1;
        Ok(())
    }

    /// Makes sure every ancestor of `path` is a folder, creating missing ones. Returns the
    /// stored display path of the parent (`""` for the root).
    async fn ensure_parents(&mut self, path: &str) -> Result<String, OpError> {
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

    async fn insert_folder(&mut self, display: &str) -> Result<Entry, OpError> {
        let path_lower = lower(display);
        let id = ids::file_id(random_bytes());
        sqlx::query(
            "INSERT OR REPLACE INTO entries (ns, path_lower, parent_lower, path_display, kind, file_id, size) \
             VALUES (?, ?, ?, ?, 1, ?, 0)",
        )
        .bind(self.ns as i64)
        .bind(&path_lower)
        .bind(parent_of(&path_lower))
        .bind(display)
        .bind(&id)
        .execute(&mut *self.tx)
        .await?;
        self.journal(&path_lower).await?;
        Ok(Entry {
            kind: Kind::Folder,
            path_lower,
            path_display: display.to_owned(),
            id: Some(id),
            rev: None,
            revision: None,
            size: 0,
            content_hash: None,
            client_modified: 0,
            server_modified: 0,
        })
    }

    /// Writes a new revision of a file at `display`, keeping `id` if given (an overwrite).
    async fn write_file(
        &mut self,
        display: &str,
        id: Option<String>,
        size: u64,
        blocks: &[BlockHash],
        client_modified: Option<i64>,
    ) -> Result<Entry, OpError> {
        let seq = self.seq().await?;
        let path_lower = lower(display);
        let id = id.unwrap_or_else(|| ids::file_id(random_bytes()));
        let rev = ids::rev(seq, u32::from_le_bytes(random_bytes()));
        let content_hash = content_hash_of_blocks(blocks);
        let client_modified = client_modified.unwrap_or(self.now);
        let revision: i64 = sqlx::query_scalar(
            "INSERT INTO revisions (ns, rev, file_id, path_lower, path_display, size, content_hash, \
             client_modified, server_modified, blocks) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(self.ns as i64)
        .bind(&rev)
        .bind(&id)
        .bind(&path_lower)
        .bind(display)
        .bind(size as i64)
        .bind(&content_hash)
        .bind(client_modified)
        .bind(self.now)
        .bind(blocks_to_blob(blocks))
        .fetch_one(&mut *self.tx)
        .await?;
        sqlx::query(
            "INSERT OR REPLACE INTO entries (ns, path_lower, parent_lower, path_display, kind, file_id, rev, \
             revision, size, content_hash, client_modified, server_modified) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(self.ns as i64)
        .bind(&path_lower)
        .bind(parent_of(&path_lower))
        .bind(display)
        .bind(&id)
        .bind(&rev)
        .bind(revision)
        .bind(size as i64)
        .bind(&content_hash)
        .bind(client_modified)
        .bind(self.now)
        .execute(&mut *self.tx)
        .await?;
        self.journal(&path_lower).await?;
        Ok(Entry {
            kind: Kind::File,
            path_lower,
            path_display: display.to_owned(),
            id: Some(id),
            rev: Some(rev),
            revision: Some(revision),
            size,
            content_hash: Some(content_hash),
            client_modified,
            server_modified: self.now,
        })
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

    async fn commit(self, store: &Store) -> Result<(), OpError> {
        let (ns, seq) = (self.ns, self.seq);
        self.tx.commit().await?;
        if let Some(seq) = seq {
            store.notifier.publish(ns, seq);
        }
        Ok(())
    }
}

impl Store {
    /// Commits a file whose blocks are durable, applying Dropbox's write-mode rules.
    pub async fn commit_file(&self, ns: u64, c: Commit) -> Result<Entry, OpError> {
        if is_disallowed_name(name_of(&c.path)) {
            return Err(OpError::DisallowedName);
        }
        let mut tx = WriteTx::begin(self, ns).await?;
        let parent_display = tx.ensure_parents(&c.path).await?;
        let mut display = format!("{parent_display}/{}", name_of(&c.path));
        let existing = tx.entry(&lower(&display)).await?;
        let new_hash = content_hash_of_blocks(&c.blocks);
        let mut keep_id = None;
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
                    keep_id = e.id.clone();
                    display = e.path_display.clone();
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
        let entry = tx
            .write_file(&display, keep_id, c.size, &c.blocks, c.client_modified)
            .await?;
        tx.commit(self).await?;
        Ok(entry)
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
        let mut tx = WriteTx::begin(self, ns).await?;
        let parent_display = tx.ensure_parents(path).await?;
        let mut display = format!("{parent_display}/{}", name_of(path));
        if let Some(e) = tx.live(&lower(&display)).await? {
            if !autorename {
                return Err(OpError::Conflict(if e.kind == Kind::Folder {
                    WriteConflict::Folder
                } else {
                    WriteConflict::File
                }));
            }
            display = tx
                .free_name(&parent_display, name_of(&display), false)
                .await?;
        }
        let entry = tx.insert_folder(&display).await?;
        tx.commit(self).await?;
        Ok(entry)
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
        let mut tx = WriteTx::begin(self, ns).await?;
        let Some(e) = tx.live(path_lower).await? else {
            return Err(OpError::NotFound);
        };
        if let Some(rev) = parent_rev {
            if e.kind != Kind::File || e.rev.as_deref() != Some(rev) {
                return Err(OpError::Conflict(WriteConflict::File));
            }
        }
        if e.kind == Kind::Folder {
            let (lo, hi) = descendant_range(path_lower);
            sqlx::query(
                "UPDATE entries SET kind = 2, file_id = NULL \
                 WHERE ns = ? AND path_lower >= ? AND path_lower < ? AND kind < 2",
            )
            .bind(ns as i64)
            .bind(lo)
            .bind(hi)
            .execute(&mut *tx.tx)
            .await?;
        }
        tombstone(&mut tx, path_lower).await?;
        tx.journal(path_lower).await?;
        tx.commit(self).await?;
        Ok(e)
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
        let mut tx = WriteTx::begin(self, ns).await?;
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
        let (lo, hi) = descendant_range(from_lower);
        if src.kind == Kind::Folder {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM entries WHERE ns = ? AND path_lower >= ? AND path_lower < ? AND kind < 2",
            )
            .bind(ns as i64)
            .bind(&lo)
            .bind(&hi)
            .fetch_one(&mut *tx.tx)
            .await?;
            if n + 1 > MAX_RELOCATION_ENTRIES {
                return Err(OpError::TooManyFiles);
            }
        }
        let parent_display = tx.ensure_parents(to).await?;
        let mut display = format!("{parent_display}/{}", name_of(to));
        if !case_only_rename {
            if let Some(existing) = tx.live(&lower(&display)).await? {
                if !autorename {
                    return Err(OpError::Conflict(if existing.kind == Kind::Folder {
                        WriteConflict::Folder
                    } else {
                        WriteConflict::File
                    }));
                }
                display = tx
                    .free_name(&parent_display, name_of(&display), false)
                    .await?;
            }
        }
        let dest_lower = lower(&display);
        let result = if copy {
            copy_tree(&mut tx, &src, &display).await?
        } else {
            move_tree(&mut tx, &src, &display, &dest_lower).await?
        };
        tx.commit(self).await?;
        let _ = dest_lower;
        Ok(result)
    }
}

async fn tombstone(tx: &mut WriteTx, path_lower: &str) -> Result<(), OpError> {
    sqlx::query("UPDATE entries SET kind = 2, file_id = NULL WHERE ns = ? AND path_lower = ?")
        .bind(tx.ns as i64)
        .bind(path_lower)
        .execute(&mut *tx.tx)
        .await?;
    Ok(())
}

async fn move_tree(
    tx: &mut WriteTx,
    src: &Entry,
    display: &str,
    dest_lower: &str,
) -> Result<Entry, OpError> {
    let ns = tx.ns as i64;
    let (src_lo, src_hi) = descendant_range(&src.path_lower);
    let case_only = dest_lower == src.path_lower;
    if !case_only {
        // Tombstones in the way at the destination give way; tombstones under the source
        // stay behind only as the source itself, so the subtree moves cleanly.
        let (dlo, dhi) = descendant_range(dest_lower);
        sqlx::query("DELETE FROM entries WHERE ns = ? AND kind = 2 AND (path_lower = ? OR (path_lower >= ? AND path_lower < ?))")
            .bind(ns)
            .bind(dest_lower)
            .bind(dlo)
            .bind(dhi)
            .execute(&mut *tx.tx)
            .await?;
        sqlx::query(
            "DELETE FROM entries WHERE ns = ? AND kind = 2 AND path_lower >= ? AND path_lower < ?",
        )
        .bind(ns)
        .bind(&src_lo)
        .bind(&src_hi)
        .execute(&mut *tx.tx)
        .await?;
    }
    let seq = tx.seq().await? as i64;
    if !case_only {
        tx.journal(&src.path_lower).await?;
    }
    sqlx::query(
        "UPDATE entries SET path_lower = ?, parent_lower = ?, path_display = ? WHERE ns = ? AND path_lower = ?",
    )
    .bind(dest_lower)
    .bind(parent_of(dest_lower))
    .bind(display)
    .bind(ns)
    .bind(&src.path_lower)
    .execute(&mut *tx.tx)
    .await?;
    tx.journal(dest_lower).await?;
    if src.kind == Kind::Folder {
        // Rewrite the prefix of every descendant; `substr` and `length` both count characters.
        sqlx::query(
            "UPDATE entries SET \
               path_lower = ?1 || substr(path_lower, length(?2) + 1), \
               parent_lower = ?1 || substr(parent_lower, length(?2) + 1), \
               path_display = ?3 || substr(path_display, length(?4) + 1) \
             WHERE ns = ?5 AND path_lower >= ?6 AND path_lower < ?7",
        )
        .bind(dest_lower)
        .bind(&src.path_lower)
        .bind(display)
        .bind(&src.path_display)
        .bind(ns)
        .bind(&src_lo)
        .bind(&src_hi)
        .execute(&mut *tx.tx)
        .await?;
        let (dlo, dhi) = descendant_range(dest_lower);
        let inserted = sqlx::query(
            "INSERT INTO journal (ns, seq, idx, path_lower, parent_lower) \
             SELECT ns, ?1, ?2 + ROW_NUMBER() OVER (ORDER BY path_lower) - 1, path_lower, parent_lower \
             FROM entries WHERE ns = ?3 AND path_lower >= ?4 AND path_lower < ?5",
        )
        .bind(seq)
        .bind(tx.idx as i64)
        .bind(ns)
        .bind(dlo)
        .bind(dhi)
        .execute(&mut *tx.tx)
        .await?;
        tx.idx += inserted.rows_affected() as u32;
    }
    if !case_only {
        // The old path reads as deleted for include_deleted listings.
        sqlx::query(
            "INSERT INTO entries (ns, path_lower, parent_lower, path_display, kind, size) VALUES (?, ?, ?, ?, 2, 0)",
        )
        .bind(ns)
        .bind(&src.path_lower)
        .bind(parent_of(&src.path_lower))
        .bind(&src.path_display)
        .execute(&mut *tx.tx)
        .await?;
    }
    let moved = tx.entry(dest_lower).await?.ok_or(OpError::NotFound)?;
    Ok(moved)
}

async fn copy_tree(tx: &mut WriteTx, src: &Entry, display: &str) -> Result<Entry, OpError> {
    let ns = tx.ns as i64;
    let top = copy_one(tx, src, display).await?;
    if src.kind == Kind::Folder {
        let (lo, hi) = descendant_range(&src.path_lower);
        let rows = sqlx::query(const_format_list_range())
            .bind(ns)
            .bind(lo)
            .bind(hi)
            .bind(2i64)
            .bind(MAX_RELOCATION_ENTRIES)
            .fetch_all(&mut *tx.tx)
            .await?;
        let prefix_chars = src.path_display.chars().count();
        for r in rows {
            let e = Entry::from_row(&r)?;
            let rest: String = e.path_display.chars().skip(prefix_chars).collect();
            copy_one(tx, &e, &format!("{display}{rest}")).await?;
        }
    }
    Ok(top)
}

async fn copy_one(tx: &mut WriteTx, e: &Entry, display: &str) -> Result<Entry, OpError> {
    if e.kind == Kind::Folder {
        return tx.insert_folder(display).await;
    }
    let revision = e
        .revision
        .ok_or_else(|| OpError::Invalid("file without revision".into()))?;
    let blob: Vec<u8> = sqlx::query_scalar("SELECT blocks FROM revisions WHERE id = ?")
        .bind(revision)
        .fetch_one(&mut *tx.tx)
        .await?;
    // A copy shares the source's blocks: no block is read or written.
    tx.write_file(
        display,
        None,
        e.size,
        &blob_to_blocks(&blob),
        Some(e.client_modified),
    )
    .await
}
