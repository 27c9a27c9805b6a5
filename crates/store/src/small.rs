//! Small blocks kept in the metadata database.
//!
//! A file committed from a session started closed with at most [`INLINE_MAX`] bytes (the
//! small files of a batch upload, and of `cubby sync`) keeps its one block as a row of
//! `small_blocks` instead of a block-store object. Finishing such sessions copies their bytes
//! into the table with one statement inside the database; writing them as objects cost a file
//! created, written, renamed and synced per block, most of a 1,000-file batch commit.
//!
//! Architecture Invariant: a small block is an ordinary block in every other respect. Its
//! row is written in a transaction of its own, committed before the transaction that refers
//! to it (the same order as an object's). Its `blocks` row counts its references; the GC
//! claims, deletes and marks it like an object (`gc.rs`), from the row's `created` time as
//! an object's from its modification time; [`Store::revive`] adopts a row written again;
//! fsck checks it; migration copies the table. The same hash can be both a row and an
//! object (the same bytes uploaded through `upload` too); reads take either, and a
//! collection deletes both.

use std::collections::HashSet;

use bytes::Bytes;
use cubby_core::hash::BlockHash;

use crate::blocks::Stored;
use crate::db::{RowExt, on_db, on_tx, placeholders};
use crate::meta::OpError;
use crate::sessions::INLINE_MAX;
use crate::{Store, StoreError};

/// Sessions per statement when their bytes are copied.
const COPY_CHUNK: usize = 500;

impl Store {
    /// Copies the inline bytes of those of `ids` that hold some (this account's, unfinished,
    /// unexpired sessions) into `small_blocks`, durably, and returns their hashes. A hash
    /// already stored keeps its row.
    pub(crate) async fn store_small(
        &self,
        account: i64,
        ids: &[String],
    ) -> Result<HashSet<BlockHash>, OpError> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let ids = ids.to_vec();
        self.write_plain(move |tx| {
            Box::pin(async move {
                let now = tx.now;
                let mut stored = HashSet::new();
                for chunk in ids.chunks(COPY_CHUNK) {
                    // Parameters in text order, so SQLite binds them anonymously.
                    let insert = format!(
                        "INSERT INTO small_blocks (hash, data, created) \
                         SELECT data_hash, data, $1 FROM upload_sessions WHERE account = $2 \
                         AND expires > $3 AND finished = 0 AND data IS NOT NULL AND id IN ({}) \
                         ON CONFLICT (hash) DO NOTHING",
                        placeholders(4, chunk.len())
                    );
                    let select = format!(
                        "SELECT data_hash FROM upload_sessions WHERE account = $1 \
                         AND expires > $2 AND finished = 0 AND data IS NOT NULL AND id IN ({})",
                        placeholders(3, chunk.len())
                    );
                    let hashes: Vec<Vec<u8>> = on_tx!(&mut tx.tx, c => {
                        let mut q = sqlx::query(crate::db::sql_for(&c, insert)).bind(now).bind(account).bind(now);
                        for id in chunk {
                            q = q.bind(id);
                        }
                        q.execute(&mut *c).await?;
                        let mut q = sqlx::query_scalar(crate::db::sql_for(&c, select)).bind(account).bind(now);
                        for id in chunk {
                            q = q.bind(id);
                        }
                        q.fetch_all(&mut *c).await?
                    });
                    stored.extend(hashes.into_iter().filter_map(|h| BlockHash::try_from(h).ok()));
                }
                Ok(stored)
            })
        })
        .await
    }

    /// The bytes of a small block, if it is one.
    async fn small_block(&self, hash: &BlockHash) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            on_db!(&self.db, c => sqlx::query_scalar("SELECT data FROM small_blocks WHERE hash = $1")
            .bind(hash.to_vec())
            .fetch_optional(c)
            .await?),
        )
    }

    /// Reads `len` bytes of a block from `offset`, wherever the block is kept. Only a piece
    /// within the first [`INLINE_MAX`] bytes can be part of a small block, so larger pieces
    /// go to the block store straight away.
    pub async fn read_block(
        &self,
        hash: BlockHash,
        offset: u64,
        len: usize,
    ) -> Result<Bytes, StoreError> {
        if offset + len as u64 <= INLINE_MAX
            && let Some(data) = self.small_block(&hash).await?
        {
            let (start, end) = (offset as usize, offset as usize + len);
            return match data.get(start..end) {
                Some(piece) => Ok(Bytes::copy_from_slice(piece)),
                None => Err(StoreError::Invalid(format!(
                    "small block {} holds {} bytes, not {start}..{end}",
                    cubby_core::hash::hex(&hash),
                    data.len()
                ))),
            };
        }
        self.blocks.read(hash, offset, len).await
    }

    /// Reads a whole block, wherever it is kept.
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
        let n: i64 = on_db!(&self.db, c => sqlx::query_scalar("SELECT COUNT(*) FROM small_blocks WHERE hash = $1")
            .bind(hash.to_vec())
            .fetch_one(c)
            .await?);
        Ok(n > 0)
    }

    /// How many small blocks are stored, and their bytes.
    pub(crate) async fn small_usage(&self) -> Result<(usize, u64), StoreError> {
        let (n, bytes): (i64, i64) = on_db!(&self.db, c => sqlx::query_as(
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
        let rows = on_db!(&self.db, c => sqlx::query(
            "SELECT hash, created, CAST(length(data) AS BIGINT) AS size FROM small_blocks WHERE hash > $1 ORDER BY hash LIMIT $2",
        )
        .bind(after)
        .bind(n as i64)
        .fetch_all(c)
        .await?
        .iter()
        .map(|r| Ok((r.bytes("hash")?, r.int("created")?, r.int("size")?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()?);
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

    /// Deletes the rows of these small blocks (ones the GC claimed).
    pub(crate) async fn delete_small(&self, hashes: &[BlockHash]) -> Result<(), StoreError> {
        for part in hashes.chunks(500) {
            let sql = format!(
                "DELETE FROM small_blocks WHERE hash IN ({})",
                placeholders(1, part.len())
            );
            let mut tx = self.db.begin(None).await?;
            on_tx!(&mut tx, c => {
                let mut q = sqlx::query(crate::db::sql_for(&c, sql));
                for h in part {
                    q = q.bind(h.to_vec());
                }
                q.execute(&mut *c).await?.rows_affected()
            });
            tx.commit(None).await?;
        }
        Ok(())
    }
}
