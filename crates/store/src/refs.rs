//! Block reference counts, kept in the transaction that adds or drops a reference.
//!
//! A reference is one hash in a revision's block list, one upload session block, or one
//! session tail. Every write that adds or removes such a row collects the change in a
//! [`RefDelta`] and applies it before its transaction ends, so `blocks.refs` always equals
//! the references in the same snapshot (`cubby admin fsck` checks exactly that).
//!
//! A count never revives a block the GC has claimed (`refs` −1) or deleted (−2): the
//! increment fails instead, the hashes are queued on the [`Gone`] list, and the operation
//! is refused with `too_many_write_operations` so the client retries. After the
//! transaction, [`crate::Store::revive`] turns a deleted block whose object has been
//! written again (by the retrying upload) back into an ordinary unreferenced one, so the
//! retry commits. This is what makes deduplication safe against the GC: an upload that
//! found a block already stored and skipped writing it can never commit a reference to a
//! block deleted under it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use cubby_core::hash::BlockHash;

use crate::db::{Tx, Val, on_tx, placeholders};
use crate::meta::OpError;

/// Hashes whose increment hit a claimed or deleted block, waiting for [`crate::Store::revive`].
pub(crate) type Gone = Arc<Mutex<Vec<BlockHash>>>;

/// Changes to reference counts, by hash (sorted, so PostgreSQL takes row locks in one order).
#[derive(Default)]
pub(crate) struct RefDelta {
    by_hash: BTreeMap<BlockHash, i64>,
}

impl RefDelta {
    /// Counts one reference more to each block (a block listed twice counts twice).
    pub(crate) fn add(&mut self, blocks: &[BlockHash]) {
        for h in blocks {
            *self.by_hash.entry(*h).or_default() += 1;
        }
    }

    /// Counts one reference less to each block.
    pub(crate) fn sub(&mut self, blocks: &[BlockHash]) {
        for h in blocks {
            *self.by_hash.entry(*h).or_default() -= 1;
        }
    }

    /// [`RefDelta::sub`] for a stored block list (concatenated 32-byte hashes).
    pub(crate) fn sub_blob(&mut self, blob: &[u8]) {
        self.sub(&crate::meta::blob_to_blocks(blob));
    }

    /// Writes the changes in `tx`. Increments come first, in one multi-row upsert; one that
    /// meets a claimed or deleted block fails the operation (see the module comment).
    pub(crate) async fn apply(self, tx: &mut Tx, now: i64, gone: &Gone) -> Result<(), OpError> {
        let mut inc = Vec::new();
        let mut dec: BTreeMap<i64, Vec<BlockHash>> = BTreeMap::new();
        for (h, n) in self.by_hash {
            match n {
                0 => {}
                n if n > 0 => inc.push((h, n)),
                n => dec.entry(-n).or_default().push(h),
            }
        }
        if !inc.is_empty() {
            let wanted = inc.len() as u64;
            let rows = inc
                .iter()
                .map(|(h, n)| vec![Val::Blob(Some(h.to_vec())), Val::Int(Some(*n))])
                .collect();
            let done = tx
                .insert_rows(
                    "INSERT INTO blocks (hash, refs)",
                    2,
                    rows,
                    "ON CONFLICT (hash) DO UPDATE SET refs = blocks.refs + excluded.refs, \
                     zero_since = NULL WHERE blocks.refs >= 0",
                )
                .await?;
            if done != wanted {
                let hashes: Vec<BlockHash> = inc.iter().map(|(h, _)| *h).collect();
                let dead = claimed_among(tx, &hashes).await?;
                tracing::info!(blocks = dead.len(), "a write met blocks the GC claimed");
                gone.lock().expect("gone list").extend(dead);
                return Err(OpError::TooManyWrites);
            }
        }
        for (n, hashes) in dec {
            for chunk in hashes.chunks(500) {
                let sql = format!(
                    "UPDATE blocks SET refs = CASE WHEN refs > $1 THEN refs - $1 ELSE 0 END, \
                     zero_since = CASE WHEN refs > $1 THEN zero_since ELSE $2 END \
                     WHERE refs > 0 AND hash IN ({})",
                    placeholders(3, chunk.len())
                );
                on_tx!(tx, |c| {
                    let mut q = sqlx::query(crate::db::sql_for(&c, sql)).bind(n).bind(now);
                    for h in chunk {
                        q = q.bind(h.to_vec());
                    }
                    q.execute(&mut *c).await?.rows_affected()
                });
            }
        }
        Ok(())
    }
}

/// The hashes among `hashes` whose block is claimed or deleted by the GC.
async fn claimed_among(tx: &mut Tx, hashes: &[BlockHash]) -> Result<Vec<BlockHash>, OpError> {
    let mut out = Vec::new();
    for chunk in hashes.chunks(500) {
        let sql = format!(
            "SELECT hash FROM blocks WHERE refs < 0 AND hash IN ({})",
            placeholders(1, chunk.len())
        );
        let found: Vec<Vec<u8>> = on_tx!(tx, |c| {
            let mut q = sqlx::query_scalar(crate::db::sql_for(&c, sql));
            for h in chunk {
                q = q.bind(h.to_vec());
            }
            q.fetch_all(&mut *c).await?
        });
        out.extend(
            found
                .into_iter()
                .filter_map(|v| BlockHash::try_from(v).ok()),
        );
    }
    Ok(out)
}
