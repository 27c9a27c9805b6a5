//! The backup's local index: what each local file was when it was last backed up, and the
//! server's view of the destination, in one SQLite file.
//!
//! `local` rows record a file's (or folder's) size, modification time, inode, content hash
//! and the revision the server gave it, so an unchanged file is recognised from its `stat`
//! alone. `remote` rows mirror the destination as the change feed reports it (the cursor is
//! kept in `meta`), so each run reads only what changed on the server since the last one.
//! Rows are read one folder at a time, so memory stays bounded by the largest folder.

use std::collections::HashMap;
use std::path::Path;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS local (
    path TEXT PRIMARY KEY,
    parent TEXT NOT NULL,
    is_dir INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    hash TEXT,
    rev TEXT
);
CREATE INDEX IF NOT EXISTS local_parent ON local (parent);
CREATE TABLE IF NOT EXISTS sent (path TEXT PRIMARY KEY, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS remote (
    path_lower TEXT PRIMARY KEY,
    is_dir INTEGER NOT NULL,
    rev TEXT,
    hash TEXT,
    size INTEGER NOT NULL
);
"#;

/// A local row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalRow {
    pub path: String,
    pub is_dir: bool,
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
    pub hash: Option<String>,
    pub rev: Option<String>,
}

/// A remote row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteRow {
    pub is_dir: bool,
    pub rev: Option<String>,
    pub hash: Option<String>,
    pub size: u64,
}

#[derive(Clone)]
pub struct Index {
    pool: SqlitePool,
}

/// `$1, $2, …, $n`, for an `IN (…)` list.
fn params(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The folder part of a relative path ("" at the top).
pub fn parent_of(rel: &str) -> &str {
    rel.rfind('/').map_or("", |i| &rel[..i])
}

impl Index {
    pub async fn open(path: &Path) -> Result<Self, sqlx::Error> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // The index is a cache of what the server holds: losing its last writes in a power
            // cut only means hashing those files again.
            .synchronous(SqliteSynchronous::Normal);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        Ok(Self { pool })
    }

    pub async fn get_meta(&self, key: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The local rows of one folder, by path.
    pub async fn local_children(
        &self,
        parent: &str,
    ) -> Result<HashMap<String, LocalRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT path, is_dir, size, mtime_ns, inode, hash, rev FROM local WHERE parent = $1",
        )
        .bind(parent)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let row = LocalRow {
                    path: r.try_get("path")?,
                    is_dir: r.try_get::<i64, _>("is_dir")? != 0,
                    size: r.try_get::<i64, _>("size")? as u64,
                    mtime_ns: r.try_get("mtime_ns")?,
                    inode: r.try_get::<i64, _>("inode")? as u64,
                    hash: r.try_get("hash")?,
                    rev: r.try_get("rev")?,
                };
                Ok((row.path.clone(), row))
            })
            .collect()
    }

    /// The remote rows of these lower-case paths.
    pub async fn remote_rows(
        &self,
        paths: &[String],
    ) -> Result<HashMap<String, RemoteRow>, sqlx::Error> {
        let mut out = HashMap::with_capacity(paths.len());
        for chunk in paths.chunks(500) {
            let sql = format!(
                "SELECT path_lower, is_dir, rev, hash, size FROM remote WHERE path_lower IN ({})",
                params(chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for p in chunk {
                q = q.bind(p);
            }
            for r in q.fetch_all(&self.pool).await? {
                out.insert(
                    r.try_get("path_lower")?,
                    RemoteRow {
                        is_dir: r.try_get::<i64, _>("is_dir")? != 0,
                        rev: r.try_get("rev")?,
                        hash: r.try_get("hash")?,
                        size: r.try_get::<i64, _>("size")? as u64,
                    },
                );
            }
        }
        Ok(out)
    }

    /// The content each of `paths` (local relative paths) was last being sent with, by a run
    /// that did not live to record the upload (see `backup::FileJob`).
    pub async fn sent(&self, paths: &[String]) -> Result<HashMap<String, String>, sqlx::Error> {
        let mut out = HashMap::new();
        for chunk in paths.chunks(500) {
            let sql = format!(
                "SELECT path, hash FROM sent WHERE path IN ({})",
                params(chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for p in chunk {
                q = q.bind(p);
            }
            for r in q.fetch_all(&self.pool).await? {
                out.insert(r.try_get("path")?, r.try_get("hash")?);
            }
        }
        Ok(out)
    }

    /// Notes that `path` is about to be sent with content `hash`.
    pub async fn put_sent(&self, path: &str, hash: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO sent (path, hash) VALUES ($1, $2) \
             ON CONFLICT (path) DO UPDATE SET hash = excluded.hash",
        )
        .bind(path)
        .bind(hash)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn begin(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.pool.begin().await
    }

    /// Every local path at or below `rel` (for a folder deleted locally).
    pub async fn local_under(&self, rel: &str) -> Result<Vec<LocalRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT path, is_dir FROM local WHERE path = $1 OR (path >= $2 AND path < $3)",
        )
        .bind(rel)
        .bind(format!("{rel}/"))
        .bind(format!("{rel}0"))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LocalRow {
                    path: r.try_get("path")?,
                    is_dir: r.try_get::<i64, _>("is_dir")? != 0,
                    size: 0,
                    mtime_ns: 0,
                    inode: 0,
                    hash: None,
                    rev: None,
                })
            })
            .collect()
    }

    /// How many files the index holds (the base of the mass-deletion guard).
    pub async fn local_files(&self) -> Result<u64, sqlx::Error> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM local WHERE is_dir = 0")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Writes a local row (and forgets the content it was being sent with: it is recorded).
pub async fn put_local(
    tx: &mut Transaction<'static, Sqlite>,
    row: &LocalRow,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sent WHERE path = $1")
        .bind(&row.path)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO local (path, parent, is_dir, size, mtime_ns, inode, hash, rev) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (path) DO UPDATE SET parent = excluded.parent, is_dir = excluded.is_dir, size = excluded.size, \
         mtime_ns = excluded.mtime_ns, inode = excluded.inode, hash = excluded.hash, rev = excluded.rev",
    )
    .bind(&row.path)
    .bind(parent_of(&row.path))
    .bind(row.is_dir as i64)
    .bind(row.size as i64)
    .bind(row.mtime_ns)
    .bind(row.inode as i64)
    .bind(&row.hash)
    .bind(&row.rev)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn delete_local(
    tx: &mut Transaction<'static, Sqlite>,
    rel: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM local WHERE path = $1 OR (path >= $2 AND path < $3)")
        .bind(rel)
        .bind(format!("{rel}/"))
        .bind(format!("{rel}0"))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn put_remote(
    tx: &mut Transaction<'static, Sqlite>,
    path_lower: &str,
    row: &RemoteRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO remote (path_lower, is_dir, rev, hash, size) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (path_lower) DO UPDATE SET is_dir = excluded.is_dir, rev = excluded.rev, hash = excluded.hash, size = excluded.size",
    )
    .bind(path_lower)
    .bind(row.is_dir as i64)
    .bind(&row.rev)
    .bind(&row.hash)
    .bind(row.size as i64)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Removes the remote rows at and below a lower-case path.
pub async fn delete_remote(
    tx: &mut Transaction<'static, Sqlite>,
    path_lower: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM remote WHERE path_lower = $1 OR (path_lower >= $2 AND path_lower < $3)",
    )
    .bind(path_lower)
    .bind(format!("{path_lower}/"))
    .bind(format!("{path_lower}0"))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn clear_remote(tx: &mut Transaction<'static, Sqlite>) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM remote").execute(&mut **tx).await?;
    Ok(())
}
