//! Derived data of images, computed once and kept by content hash: thumbnails and what a
//! photo's header says (`media_info`).
//!
//! A thumbnail is an ordinary block (a small block row when it is at most
//! [`crate::sessions::INLINE_MAX`], else an object of the block store), so equal thumbnails
//! are stored once, any server of a scale-out deployment serves one another made, and fsck
//! checks them. Its `thumbnails` row counts one reference to that block.
//!
//! Architecture Invariant: a row lives no longer than its source. Each row names `source`,
//! the first block of the content it was made from, and is written only while that block is
//! referenced (checked in the row's transaction, under a row lock on PostgreSQL). When the
//! GC claims a block, it deletes the rows naming it in the claim's transaction and drops
//! their references, so their thumbnails are collected a grace period later. A content
//! whose first block lives on in other content keeps its rows until that block goes too.

use bytes::Bytes;
use cubby_core::hash::{BlockHash, block_hash};

use crate::db::{RowExt, Tx, Val, on_db, on_tx, placeholders};
use crate::meta::OpError;
use crate::refs::RefDelta;
use crate::{Store, StoreError};

/// What a photo's header says, as kept for `media_info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaRow {
    pub width: u64,
    pub height: u64,
    /// When the photo was taken (Unix seconds), if it says.
    pub taken: Option<i64>,
    /// Where, in millionths of a degree (latitude, longitude), if it says.
    pub location: Option<(i64, i64)>,
}

impl Store {
    /// The cached thumbnail of `content_hash` made by `spec`, if there is one whose block
    /// can be read.
    pub async fn thumbnail(
        &self,
        content_hash: &str,
        spec: &str,
    ) -> Result<Option<Bytes>, StoreError> {
        let hash: Option<Vec<u8>> = on_db!(&self.db, |c| sqlx::query_scalar(
            "SELECT hash FROM thumbnails WHERE content_hash = $1 AND spec = $2"
        )
        .bind(content_hash)
        .bind(spec)
        .fetch_optional(c)
        .await?);
        let Some(hash) = hash.and_then(|h| BlockHash::try_from(h).ok()) else {
            return Ok(None);
        };
        match self.read_block_checked(hash).await {
            Ok(data) => Ok(Some(data)),
            Err(e) => {
                // Counted and logged by the read; the caller makes the thumbnail again.
                tracing::warn!(error = %e, content_hash, spec, "cached thumbnail unreadable");
                Ok(None)
            }
        }
    }

    /// Keeps `data` as the thumbnail of `content_hash` made by `spec`, if `source` (the
    /// content's first block) is still referenced. Returns whether it was kept.
    pub async fn put_thumbnail(
        &self,
        content_hash: &str,
        spec: &str,
        source: BlockHash,
        data: Bytes,
    ) -> Result<bool, OpError> {
        let hash = block_hash(&data);
        let small = data.len() as u64 <= crate::sessions::INLINE_MAX;
        if !small {
            self.blocks.put(data.clone()).await?;
            self.blocks.sync(&[hash]).await?;
        }
        let (content_hash, spec) = (content_hash.to_owned(), spec.to_owned());
        self.write_plain(move |tx| {
            Box::pin(async move {
                if !source_live(&mut tx.tx, source).await? {
                    return Ok(false);
                }
                if small {
                    let row = crate::small::small_block_insert(hash, data, tx.now);
                    tx.tx
                        .insert_rows(row.head, row.row.len(), vec![row.row], row.tail)
                        .await?;
                }
                let added = tx
                    .tx
                    .insert_rows(
                        "INSERT INTO thumbnails (content_hash, spec, source, hash, created)",
                        5,
                        vec![vec![
                            Val::Text(Some(content_hash)),
                            Val::Text(Some(spec)),
                            Val::Blob(Some(source.to_vec())),
                            Val::Blob(Some(hash.to_vec())),
                            Val::Int(Some(tx.now)),
                        ]],
                        "ON CONFLICT (content_hash, spec) DO NOTHING",
                    )
                    .await?;
                if added == 1 {
                    let mut delta = RefDelta::default();
                    delta.add(&[hash]);
                    tx.refs(delta).await?;
                }
                Ok(added == 1)
            })
        })
        .await
    }

    /// What is known of the image with `content_hash`.
    pub async fn media_info(&self, content_hash: &str) -> Result<Option<MediaRow>, StoreError> {
        let row = on_db!(&self.db, |c| {
            let row = sqlx::query("SELECT width, height, taken, lat_e6, lon_e6 FROM media_info WHERE content_hash = $1")
                .bind(content_hash)
                .fetch_optional(c)
                .await?;
            row.map(|r| -> Result<MediaRow, sqlx::Error> {
                Ok(MediaRow {
                    width: r.int("width")?.max(0) as u64,
                    height: r.int("height")?.max(0) as u64,
                    taken: r.opt_int("taken")?,
                    location: r.opt_int("lat_e6")?.zip(r.opt_int("lon_e6")?),
                })
            })
            .transpose()?
        });
        Ok(row)
    }

    /// Keeps what is known of the image with `content_hash` (first block `source`), while
    /// `source` is referenced.
    pub async fn put_media_info(
        &self,
        content_hash: &str,
        source: BlockHash,
        info: MediaRow,
    ) -> Result<(), OpError> {
        let content_hash = content_hash.to_owned();
        self.write_plain(move |tx| {
            Box::pin(async move {
                if !source_live(&mut tx.tx, source).await? {
                    return Ok(());
                }
                tx.tx
                    .insert_rows(
                        "INSERT INTO media_info (content_hash, source, width, height, taken, lat_e6, lon_e6)",
                        7,
                        vec![vec![
                            Val::Text(Some(content_hash)),
                            Val::Blob(Some(source.to_vec())),
                            Val::Int(Some(info.width.min(i64::MAX as u64) as i64)),
                            Val::Int(Some(info.height.min(i64::MAX as u64) as i64)),
                            Val::Int(info.taken),
                            Val::Int(info.location.map(|l| l.0)),
                            Val::Int(info.location.map(|l| l.1)),
                        ]],
                        "ON CONFLICT (content_hash) DO NOTHING",
                    )
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Rows made from content whose first block is `source`, for tests.
    pub async fn derived_rows(&self, source: &BlockHash) -> Result<u64, StoreError> {
        let n: i64 = on_db!(&self.db, |c| sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM thumbnails WHERE source = $1) + \
             (SELECT COUNT(*) FROM media_info WHERE source = $1)"
        )
        .bind(source.to_vec())
        .fetch_one(c)
        .await?);
        Ok(n.max(0) as u64)
    }
}

/// Whether `source` is referenced, as `tx` sees it; on PostgreSQL the row stays locked until
/// `tx` ends, so a claim of it waits (and then finds it referenced) or came first.
async fn source_live(tx: &mut Tx, source: BlockHash) -> Result<bool, OpError> {
    let sql = if matches!(tx, Tx::Pg(_)) {
        "SELECT refs FROM blocks WHERE hash = $1 FOR SHARE"
    } else {
        "SELECT refs FROM blocks WHERE hash = $1"
    };
    let refs: Option<i64> = on_tx!(tx, |c| sqlx::query_scalar(sql)
        .bind(source.to_vec())
        .fetch_optional(&mut *c)
        .await?);
    Ok(refs.is_some_and(|r| r > 0))
}

/// Deletes, in the GC's claim transaction, the derived rows of content whose first block is
/// among `claimed`, and drops their thumbnails' references.
pub(crate) async fn forget_sources(
    tx: &mut Tx,
    claimed: &[BlockHash],
    now: i64,
    gone: &crate::refs::Gone,
) -> Result<(), OpError> {
    let mut delta = RefDelta::default();
    for part in claimed.chunks(500) {
        let sql = format!(
            "DELETE FROM thumbnails WHERE source IN ({}) RETURNING hash",
            placeholders(1, part.len())
        );
        let media = format!(
            "DELETE FROM media_info WHERE source IN ({})",
            placeholders(1, part.len())
        );
        let dropped: Vec<Vec<u8>> = on_tx!(tx, |c| {
            let mut q = sqlx::query_scalar(crate::db::sql_for(&c, sql));
            for h in part {
                q = q.bind(h.to_vec());
            }
            let dropped = q.fetch_all(&mut *c).await?;
            let mut q = sqlx::query(crate::db::sql_for(&c, media));
            for h in part {
                q = q.bind(h.to_vec());
            }
            q.execute(&mut *c).await?;
            dropped
        });
        let hashes: Vec<BlockHash> = dropped
            .into_iter()
            .filter_map(|h| BlockHash::try_from(h).ok())
            .collect();
        delta.sub(&hashes);
    }
    delta.apply(tx, now, gone).await
}
