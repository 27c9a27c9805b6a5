//! Small blocks kept in the metadata database.
//!
//! A session started closed with at most [`INLINE_MAX`] bytes (the small files of a batch
//! upload, and of `cubby sync`) writes its one block as a row of `small_blocks` instead of a
//! block-store object, in the same write as the session row; writing it as an object cost a
//! file created, written, renamed and synced per block. Finishing such sessions then commits
//! their hashes like any block list, with no bytes copied.
//!
//! Architecture Invariant: a small block is an ordinary block in every other respect. Its
//! row is durable before anything refers to it (it is committed with the session, before
//! any finish). Its `blocks` row counts its references; the GC claims, deletes and marks it
//! like an object (`gc.rs`), from the row's `created` time as an object's from its
//! modification time, except that it waits longer: every start of a session with the
//! block's bytes sets `created`, so a block older than a session's lifetime is named by no
//! live session (such a session counts no reference); [`Store::revive`] adopts a row
//! written again; fsck checks it; migration copies the table. The same hash can be both a
//! row and an object (the same bytes uploaded through `upload` too); reads take either, and
//! a collection deletes both.

use std::collections::HashSet;

use bytes::Bytes;
use cubby_core::hash::{BlockHash, block_hash};

use crate::blocks::Stored;
use crate::db::{RowExt, Tx, Val, on_db, on_tx, placeholders};
use crate::group::Insert;
use crate::{Store, StoreError};

/// Hashes per `IN (…)` list.
const IN_CHUNK: usize = 500;

/// Presence checks of one download in flight at once (stat on disk, HEAD on S3).
const PRESENCE_CHECKS_IN_FLIGHT: usize = 32;

/// The row of a small block, for the start of the session that holds it. A block already
/// stored keeps its bytes (they are the same) and takes the new `created`: on PostgreSQL,
/// that update locks the row, so a collection deleting it concurrently either waits and then
/// finds it young, or deletes it first and this insert writes it again.
pub(crate) fn small_block_insert(hash: BlockHash, data: Bytes, created: i64) -> Insert {
    Insert {
        head: "INSERT INTO small_blocks (hash, created, data)",
        row: vec![
            Val::Blob(Some(hash.to_vec())),
            Val::Int(Some(created)),
            Val::Blob(Some(data.to_vec())),
        ],
        tail: "ON CONFLICT (hash) DO UPDATE SET created = excluded.created",
    }
}

/// Which of `hashes` are small blocks, as `tx` sees them.
pub(crate) async fn small_present(
    tx: &mut Tx,
    hashes: &[BlockHash],
) -> Result<HashSet<BlockHash>, StoreError> {
    let mut out = HashSet::with_capacity(hashes.len());
    for part in hashes.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT hash FROM small_blocks WHERE hash IN ({})",
            placeholders(1, part.len())
        );
        let found: Vec<Vec<u8>> = on_tx!(tx, |c| {
            let mut q = sqlx::query_scalar(crate::db::sql_for(&c, sql));
            for h in part {
                q = q.bind(h.to_vec());
            }
            q.fetch_all(&mut *c).await?
        });
        out.extend(
            found
                .into_iter()
                .filter_map(|h| BlockHash::try_from(h).ok()),
        );
    }
    Ok(out)
}

impl Store {
    /// The bytes of a small block, if it is one.
    async fn small_block(&self, hash: &BlockHash) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(on_db!(&self.db, |c| sqlx::query_scalar(
            "SELECT data FROM small_blocks WHERE hash = $1"
        )
        .bind(hash.to_vec())
        .fetch_optional(c)
        .await?))
    }

    /// Reads `len` bytes of a block from `offset`, wherever the block is kept, after checking
    /// the whole block against its hash (its name): a block that is missing, or whose bytes
    /// do not match, is never served but reported as [`StoreError::BadBlock`], logged and
    /// counted in [`Store::bad_blocks`]. The check is one SHA-256 pass over each block read,
    /// off the async threads (a piece of a block costs the read of the whole block).
    pub async fn read_block(
        &self,
        hash: BlockHash,
        offset: u64,
        len: usize,
    ) -> Result<Bytes, StoreError> {
        let data = self.read_block_checked(hash).await?;
        let (start, end) = (offset as usize, offset as usize + len);
        if end > data.len() {
            return Err(self.bad_block(hash, false));
        }
        Ok(data.slice(start..end))
    }

    /// A whole block, checked against its hash as [`Store::read_block`] checks it.
    pub async fn read_block_checked(&self, hash: BlockHash) -> Result<Bytes, StoreError> {
        let data = match self.read_block_all(hash).await {
            Ok(d) => d,
            Err(StoreError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(self.bad_block(hash, true));
            }
            Err(e) => return Err(e),
        };
        let checked = data.clone();
        let matches = tokio::task::spawn_blocking(move || block_hash(&checked) == hash)
            .await
            .map_err(|e| StoreError::Invalid(format!("block check panicked: {e}")))?;
        if !matches {
            return Err(self.bad_block(hash, false));
        }
        Ok(data)
    }

    /// Logs and counts a block found missing or corrupt; returns the error to answer with.
    fn bad_block(&self, hash: BlockHash, missing: bool) -> StoreError {
        let counter = if missing {
            &self.bad_blocks.0
        } else {
            &self.bad_blocks.1
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let hash = cubby_core::hash::hex(&hash);
        tracing::error!(
            block = %hash,
            missing,
            "a block a file needs is {}; run `cubby admin fsck`",
            if missing { "missing" } else { "corrupt" }
        );
        StoreError::BadBlock { hash, missing }
    }

    /// Fails with [`StoreError::BadBlock`] for the first of `hashes` not in the store (a
    /// download checks its blocks before it answers, so a lost block is an error status,
    /// not a cut connection).
    pub async fn check_present(&self, hashes: &[BlockHash]) -> Result<(), StoreError> {
        use futures_util::{StreamExt, TryStreamExt};
        let mut unique: Vec<BlockHash> = hashes.to_vec();
        unique.sort();
        unique.dedup();
        let missing = futures_util::stream::iter(unique)
            .map(|h| async move { Ok::<_, StoreError>((h, self.block_present(&h).await?)) })
            .buffer_unordered(PRESENCE_CHECKS_IN_FLIGHT)
            .try_filter(|(_, present)| std::future::ready(!present))
            .try_next()
            .await?;
        match missing {
            Some((h, _)) => Err(self.bad_block(h, true)),
            None => Ok(()),
        }
    }

    /// Reads a whole block, wherever it is kept, unchecked (for callers that check it
    /// themselves: fsck, migrate; others use [`Store::read_block_checked`]).
    pub async fn read_block_all(&self, hash: BlockHash) -> Result<Bytes, StoreError> {
        match self.small_block(&hash).await? {
            Some(data) => Ok(Bytes::from(data)),
            None => self.blocks.read_all(hash).await,
        }
    }

    /// Whether a block is stored, as an object or as a small block.
    pub async fn block_present(&self, hash: &BlockHash) -> Result<bool, StoreError> {
        if self.blocks.contains(hash).await? {
            return Ok(true);
        }
        let n: i64 = on_db!(&self.db, |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM small_blocks WHERE hash = $1"
        )
        .bind(hash.to_vec())
        .fetch_one(c)
        .await?);
        Ok(n > 0)
    }

    /// How many small blocks are stored, and their bytes.
    pub(crate) async fn small_usage(&self) -> Result<(usize, u64), StoreError> {
        let (n, bytes): (i64, i64) = on_db!(&self.db, |c| sqlx::query_as(
            "SELECT COUNT(*), CAST(COALESCE(SUM(length(data)), 0) AS BIGINT) FROM small_blocks",
        )
        .fetch_one(c)
        .await?);
        Ok((n as usize, bytes as u64))
    }

    /// Up to `n` small blocks after `after` in hash order, as the GC walks them.
    pub(crate) async fn small_page(
        &self,
        after: Option<&BlockHash>,
        n: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        let after = after.map(|h| h.to_vec()).unwrap_or_default();
        let rows = on_db!(&self.db, |c| {
            sqlx::query(
                "SELECT hash, created, CAST(length(data) AS BIGINT) AS size FROM small_blocks \
                 WHERE hash > $1 ORDER BY hash LIMIT $2",
            )
            .bind(after)
            .bind(n as i64)
            .fetch_all(c)
            .await?
            .iter()
            .map(|r| Ok((r.bytes("hash")?, r.int("created")?, r.int("size")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(h, created, size)| {
                Some(Stored {
                    hash: BlockHash::try_from(h).ok()?,
                    modified: created,
                    size: size as u64,
                })
            })
            .collect())
    }

    /// Deletes the rows of these small blocks (ones the GC claimed) that are still older than
    /// `cutoff`; returns those deleted. A session started meanwhile with the same bytes made
    /// its row young again (see [`small_block_insert`]), so it stays.
    pub(crate) async fn delete_small(
        &self,
        hashes: &[BlockHash],
        cutoff: i64,
    ) -> Result<Vec<BlockHash>, StoreError> {
        let mut deleted = Vec::with_capacity(hashes.len());
        for part in hashes.chunks(IN_CHUNK) {
            // Parameters in text order, so SQLite binds them anonymously.
            let sql = format!(
                "DELETE FROM small_blocks WHERE created < $1 AND hash IN ({}) RETURNING hash",
                placeholders(2, part.len())
            );
            let mut tx = self.db.begin(None).await?;
            let gone: Vec<Vec<u8>> = on_tx!(&mut tx, |c| {
                let mut q = sqlx::query_scalar(crate::db::sql_for(&c, sql)).bind(cutoff);
                for h in part {
                    q = q.bind(h.to_vec());
                }
                q.fetch_all(&mut *c).await?
            });
            tx.commit(None).await?;
            deleted.extend(gone.into_iter().filter_map(|h| BlockHash::try_from(h).ok()));
        }
        Ok(deleted)
    }
}
