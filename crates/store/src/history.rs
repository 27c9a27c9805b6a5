//! Version history: listing a file's revisions, restoring one, and purging history.
//!
//! Every committed version is a row of `revisions` over immutable blocks, so a restore is a
//! new revision pointing at an old block list: a metadata commit, whatever the file's size.

use crate::db::{RowExt, on_db, on_tx};
use crate::meta::{Commit, Entry, OpError, WriteMode, WriteTx, blob_to_blocks, commit_file_op};
use crate::{Store, StoreError};

/// Which revisions to list.
pub enum RevisionsOf<'a> {
    /// Revisions written at this lower-case path.
    Path(&'a str),
    /// Revisions of this file id, across moves.
    Id(&'a str),
}

const REVISION_COLS: &str = "SELECT ns, path_lower, path_display, CAST(0 AS BIGINT) AS kind, file_id, rev, \
     id AS revision, size, content_hash, client_modified, server_modified FROM revisions ";

impl Store {
    /// Revisions newest first; `before` (a revision row) pages backwards.
    pub async fn revisions(
        &self,
        ns: u64,
        of: RevisionsOf<'_>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Entry>, StoreError> {
        let (sql, key) = match of {
            RevisionsOf::Path(p) => (revisions_sql(true), p),
            RevisionsOf::Id(id) => (revisions_sql(false), id),
        };
        on_db!(&self.db, |c| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(ns as i64)
                .bind(key)
                .bind(before.unwrap_or(i64::MAX))
                .bind(limit as i64)
                .fetch_all(c)
                .await?;
            rows.iter().map(|r| Ok(Entry::from_row(r)?)).collect()
        })
    }

    /// One revision by its row, if it still exists.
    pub async fn revision(&self, ns: u64, revision: i64) -> Result<Option<Entry>, StoreError> {
        on_db!(&self.db, |c| {
            let sql = format!("{REVISION_COLS}WHERE ns = $1 AND id = $2");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(ns as i64)
                .bind(revision)
                .fetch_optional(c)
                .await?;
            Ok(row.map(|r| Entry::from_row(&r)).transpose()?)
        })
    }

    /// Restores revision `rev` of the namespace to the display path `path`, as a new revision.
    pub async fn restore(&self, ns: u64, path: &str, rev: &str) -> Result<Entry, OpError> {
        let (path, rev) = (path.to_owned(), rev.to_owned());
        self.write(ns, move |tx| Box::pin(restore_op(tx, path, rev)))
            .await
    }

    /// Deletes an item if it is live, then removes its history (revisions and tombstones
    /// at or below the path). The blocks are left to the block GC.
    pub async fn permanently_delete(&self, ns: u64, path_lower: &str) -> Result<(), OpError> {
        if let Some(e) = self.entry(ns, path_lower).await? {
            if e.kind != crate::Kind::Deleted {
                self.delete(ns, path_lower, None).await?;
            }
        } else if self
            .revisions(ns, RevisionsOf::Path(path_lower), None, 1)
            .await?
            .is_empty()
        {
            return Err(OpError::NotFound);
        }
        let path_lower = path_lower.to_owned();
        self.write(ns, move |tx| Box::pin(purge_op(tx, path_lower)))
            .await
    }
}

fn revisions_sql(by_path: bool) -> String {
    let filter = if by_path { "path_lower" } else { "file_id" };
    format!("{REVISION_COLS}WHERE ns = $1 AND {filter} = $2 AND id < $3 ORDER BY id DESC LIMIT $4")
}

async fn restore_op(tx: &mut WriteTx, path: String, rev: String) -> Result<Entry, OpError> {
    let ns = tx.ns as i64;
    let found = on_tx!(&mut tx.tx, |c| {
        let row = sqlx::query(
            "SELECT size, client_modified, blocks FROM revisions WHERE ns = $1 AND rev = $2",
        )
        .bind(ns)
        .bind(&rev)
        .fetch_optional(&mut *c)
        .await?;
        match row {
            Some(r) => Some((
                r.int("size")? as u64,
                r.int("client_modified")?,
                r.bytes("blocks")?,
            )),
            None => None,
        }
    });
    let Some((size, client_modified, blocks)) = found else {
        return Err(OpError::InvalidRevision);
    };
    commit_file_op(
        tx,
        Commit {
            path,
            mode: WriteMode::Overwrite,
            autorename: false,
            strict_conflict: false,
            client_modified: Some(client_modified),
            size,
            blocks: blob_to_blocks(&blocks),
        },
    )
    .await
}

async fn purge_op(tx: &mut WriteTx, path_lower: String) -> Result<(), OpError> {
    let ns = tx.ns as i64;
    let (lo, hi) = (format!("{path_lower}/"), format!("{path_lower}0"));
    let lists: Vec<Vec<u8>> = on_tx!(&mut tx.tx, |c| {
        sqlx::query_scalar(
            "SELECT blocks FROM revisions WHERE ns = $1 AND (path_lower = $2 OR (path_lower >= $3 \
             AND path_lower < $4))",
        )
        .bind(ns)
        .bind(&path_lower)
        .bind(&lo)
        .bind(&hi)
        .fetch_all(&mut *c)
        .await?
    });
    let mut refs = crate::refs::RefDelta::default();
    for blob in &lists {
        refs.sub_blob(blob);
    }
    tx.refs(refs).await?;
    on_tx!(&mut tx.tx, |c| {
        sqlx::query(
            "DELETE FROM revisions WHERE ns = $1 AND (path_lower = $2 OR (path_lower >= $3 \
             AND path_lower < $4))",
        )
        .bind(ns)
        .bind(&path_lower)
        .bind(&lo)
        .bind(&hi)
        .execute(&mut *c)
        .await?;
        sqlx::query(
            "DELETE FROM entries WHERE ns = $1 AND kind = 2 AND (path_lower = $2 \
             OR (path_lower >= $3 AND path_lower < $4))",
        )
        .bind(ns)
        .bind(&path_lower)
        .bind(&lo)
        .bind(&hi)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    tx.journal(&path_lower).await
}

/// Most candidate rows one search reads before ranking.
pub const SEARCH_CANDIDATES: i64 = 20_000;

impl Store {
    /// Entries under `scope_lower` whose lower-case path contains `needle` (a lower-case
    /// search token), live ones or tombstones; at most `SEARCH_CANDIDATES`, in path order.
    pub async fn search_candidates(
        &self,
        ns: u64,
        scope_lower: &str,
        needle: &str,
        deleted: bool,
    ) -> Result<Vec<Entry>, StoreError> {
        let escaped: String = needle
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        let pattern = format!("%{escaped}%");
        let (lo, hi) = if scope_lower.is_empty() {
            (String::new(), "\u{10FFFF}".to_owned())
        } else {
            (format!("{scope_lower}/"), format!("{scope_lower}0"))
        };
        let kinds: (i64, i64) = if deleted { (2, 2) } else { (0, 1) };
        on_db!(&self.db, |c| {
            let rows = sqlx::query(
                "SELECT ns, path_lower, path_display, kind, file_id, rev, revision, size, \
                        content_hash, client_modified, server_modified FROM entries \
                 WHERE ns = $1 AND path_lower > $2 AND path_lower < $3 AND kind >= $4 \
                   AND kind <= $5 AND path_lower LIKE $6 ESCAPE '\\' ORDER BY path_lower LIMIT $7",
            )
            .bind(ns as i64)
            .bind(lo)
            .bind(hi)
            .bind(kinds.0)
            .bind(kinds.1)
            .bind(pattern)
            .bind(SEARCH_CANDIDATES)
            .fetch_all(c)
            .await?;
            rows.iter().map(|r| Ok(Entry::from_row(r)?)).collect()
        })
    }
}
