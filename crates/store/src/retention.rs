//! Retention: what history is kept, and for how long, and the pruning that applies it.
//!
//! By default nothing is pruned: every revision and deleted file stays restorable (the
//! design asks for at least 30 days). An operator can set a number of days; older
//! non-current revisions and older tombstones are then removed. Expired upload sessions,
//! finished jobs and spent upload links are always cleared. Pruning is idempotent, so every
//! server of a scale-out installation may run it. The references the removed rows held are
//! dropped in the same transaction; the blocks this leaves unreferenced are reclaimed by the
//! block GC (`gc.rs`) after its grace period.

use crate::db::{on_db, on_tx};
use crate::jobs::JOB_STALE_SECS;
use crate::refs::RefDelta;
use crate::{Store, StoreError, now};

/// How often each server prunes.
pub const PRUNE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// How long finished jobs stay readable by their check routes.
const JOB_KEEP_SECS: i64 = 7 * 24 * 3600;

/// What one pruning pass removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub revisions: u64,
    pub tombstones: u64,
    pub sessions: u64,
}

impl Store {
    /// Removes history older than `retention_days` (none if `None`) and expired bookkeeping.
    pub async fn prune(&self, retention_days: Option<u32>) -> Result<Pruned, StoreError> {
        let now = now();
        let mut out = Pruned::default();
        let mut tx = self.db.begin(None).await?;
        let mut refs = RefDelta::default();
        if let Some(days) = retention_days {
            let cutoff = now - i64::from(days) * 86_400;
            let pruned: Vec<Vec<u8>> = on_tx!(&mut tx, |c| sqlx::query_scalar(
                "DELETE FROM revisions WHERE server_modified < $1 \
                 AND id NOT IN (SELECT revision FROM entries WHERE revision IS NOT NULL) \
                 RETURNING blocks",
            )
            .bind(cutoff)
            .fetch_all(&mut *c)
            .await?);
            out.revisions = pruned.len() as u64;
            for blob in &pruned {
                refs.sub_blob(blob);
            }
            out.tombstones = on_tx!(&mut tx, |c| sqlx::query(
                "DELETE FROM entries WHERE kind = 2 AND COALESCE(server_modified, 0) < $1",
            )
            .bind(cutoff)
            .execute(&mut *c)
            .await?
            .rows_affected());
        }
        let session_blocks: Vec<Vec<u8>> = on_tx!(&mut tx, |c| sqlx::query_scalar(
            "DELETE FROM upload_session_blocks WHERE session IN \
             (SELECT id FROM upload_sessions WHERE expires < $1 OR finished = 1) RETURNING hash",
        )
        .bind(now)
        .fetch_all(&mut *c)
        .await?);
        let tails: Vec<Option<Vec<u8>>> = on_tx!(&mut tx, |c| sqlx::query_scalar(
            "DELETE FROM upload_sessions WHERE expires < $1 OR finished = 1 RETURNING tail",
        )
        .bind(now)
        .fetch_all(&mut *c)
        .await?);
        out.sessions = tails.len() as u64;
        for h in session_blocks.iter().chain(tails.iter().flatten()) {
            refs.sub_blob(h);
        }
        refs.apply(&mut tx, now, &self.gone)
            .await
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        on_tx!(&mut tx, |c| sqlx::query(
            "DELETE FROM jobs WHERE updated < $1"
        )
        .bind(now - JOB_KEEP_SECS.max(JOB_STALE_SECS))
        .execute(&mut *c)
        .await?
        .rows_affected());
        on_tx!(&mut tx, |c| sqlx::query(
            "DELETE FROM upload_links WHERE expires < $1 OR used = 1"
        )
        .bind(now)
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit(None).await?;
        Ok(out)
    }

    /// Counts revisions of a namespace (for tests and reports).
    pub async fn revision_count(&self, ns: u64) -> Result<i64, StoreError> {
        Ok(on_db!(&self.db, |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM revisions WHERE ns = $1"
        )
        .bind(ns as i64)
        .fetch_one(c)
        .await?))
    }

    /// Runs [`Store::prune`] every [`PRUNE_INTERVAL`] until the process ends.
    pub fn spawn_pruner(&self, retention_days: Option<u32>) {
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                match store.prune(retention_days).await {
                    Ok(p) if p != Pruned::default() => tracing::info!(?p, "pruned history"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "pruning failed"),
                }
                tokio::time::sleep(PRUNE_INTERVAL).await;
            }
        });
    }
}
