//! Block garbage collection and the consistency checker (`cubby admin gc`, `cubby admin fsck`).
//!
//! A block row's `refs` is its reference count (see `refs.rs`); two negative values are the
//! GC's states: [`CLAIMED`] (chosen for deletion; its object may still exist) and [`DELETED`]
//! (its object was deleted). One collection walks the block store's listing and, for each
//! object last written more than [`BLOCK_GRACE_SECS`] ago that has no row, or whose count has
//! been zero for that long, or that an earlier run claimed or deleted:
//! 1. claims it in a write transaction (a reference added meanwhile wins: the claim's
//!    conditions re-check the row);
//! 2. deletes the object;
//! 3. marks the row deleted.
//!
//! Small blocks (rows of `small_blocks`, see `small.rs`) are walked after the objects, a
//! page of rows at a time, and collected by the same three steps, with the row's `created`
//! time as its age and the row's deletion as the object's, but only past
//! [`SMALL_GRACE_SECS`], longer than a session lives: an unfinished session started closed
//! with a few bytes names their small block without counting a reference. The deletion
//! checks the age again in its statement, so a row that a session started with the same
//! bytes made young after the claim stays, and its claim is undone.
//!
//! Why this never deletes a live block: an increment fails on a claimed or deleted row, so no
//! reference is ever added to a block from the moment it is claimed. An upload that found
//! the block already stored before the claim (and so skipped writing it) is refused and
//! retries; the retry writes the block again, and [`Store::revive`] adopts an object found
//! present under a deleted row, which only happens once the GC is done with it. The young
//! object of an upload in flight is never claimed, because only objects last written more
//! than the grace period ago are. One collection runs at a time, under a lease in the
//! database, because a second one working from an older listing could claim a block that a
//! revive had just adopted.
//!
//! [`Store::fsck`] recounts every reference in one consistent snapshot, compares the counts,
//! and checks that every referenced block exists and matches its hash; `repair` corrects the
//! counts by the differences it found (which commute with writes made since the snapshot)
//! and never deletes anything.

use std::collections::HashMap;

use cubby_core::hash::{BlockHash, block_hash, hex};
use futures_util::{StreamExt, TryStreamExt};

use crate::db::{Db, RowExt, Val, on_db, on_tx, placeholders};
use crate::{Store, StoreError, now};

/// How long a block stays after its last reference is dropped, or after it was written
/// without one. A block is stored before the commit that references it: an upload, a
/// session append or a `save_url` fetch (at most 15 minutes) writes its blocks, then commits.
/// An object younger than this may belong to such a request in flight, so it is never
/// collected; a day leaves a wide margin over any request, and over a copy or restore that
/// read a block list just before its last reference went.
pub const BLOCK_GRACE_SECS: i64 = 24 * 3600;

/// How long a small block (`small.rs`) stays after it was last written or its last
/// reference dropped: a session's lifetime on top of [`BLOCK_GRACE_SECS`]. A session started
/// closed with a few bytes names their small block without counting a reference, and each
/// such start sets the block's `created`; so a block older than this is named by no session
/// still alive, on any server whose clock is within the grace period of this one's.
pub const SMALL_GRACE_SECS: i64 = crate::sessions::SESSION_TTL_SECS + BLOCK_GRACE_SECS;

/// How long the row of a deleted block is kept. A request that found the block stored before
/// it was claimed will fail its commit on this row and retry; without the row, its commit
/// would count a reference to a block that no longer exists. No request lasts this long.
pub const TOMBSTONE_KEEP_SECS: i64 = 30 * 24 * 3600;

/// How often each server runs a collection (after its retention pass).
pub const GC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// `refs` of a block the GC has chosen to delete.
pub const CLAIMED: i64 = -1;
/// `refs` of a block whose object the GC deleted.
pub const DELETED: i64 = -2;

/// How long one collection holds the lease before it must renew it (it renews it before
/// each chunk of [`GC_CHUNK`] objects, which takes seconds). A collection killed on another
/// machine is known to be gone once its lease has expired; one killed on this machine at
/// once (see [`holder_is_gone`]).
const LEASE_SECS: i64 = 120;

/// Listed objects examined per claim transaction.
const GC_CHUNK: usize = 1000;

/// Objects deleted at once.
const DELETES_IN_FLIGHT: usize = 16;

/// Reference counts held in memory at once by fsck; more blocks than this are counted in
/// several passes over the references, each for one range of hashes.
const FSCK_COUNTS_PER_PASS: i64 = 2_000_000;

/// What one collection did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Objects in the block store's listing.
    pub scanned: u64,
    /// Objects deleted.
    pub deleted: u64,
    pub deleted_bytes: u64,
    /// Unreferenced objects kept because they are younger than the grace period.
    pub waiting: u64,
    /// Rows of long-deleted blocks removed.
    pub tombstones_purged: u64,
}

/// What fsck found (and, with repair, fixed).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FsckReport {
    /// Referenced blocks (and the small blocks of unfinished inline sessions) checked
    /// against the block store.
    pub blocks_checked: u64,
    /// Blocks that are referenced but not stored.
    pub missing: Vec<String>,
    /// Blocks whose bytes do not match their name.
    pub corrupt: Vec<String>,
    /// Rows whose count differed from the references (fixed with repair).
    pub miscounted: u64,
    /// Referenced blocks whose row says claimed or deleted while the object exists (restored
    /// to their count with repair).
    pub wrongly_claimed: u64,
    pub repaired: bool,
}

impl FsckReport {
    /// Whether the store is consistent (after repair, if it was asked for).
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty()
            && self.corrupt.is_empty()
            && (self.repaired || (self.miscounted == 0 && self.wrongly_claimed == 0))
    }
}

/// Where the blocks of a collected chunk are kept.
#[derive(Clone, Copy)]
enum Kept {
    /// Objects of the block store.
    Object,
    /// Rows of `small_blocks`.
    Small,
}

impl Store {
    /// Runs one collection as of `now` (Unix seconds). Returns `None` if another collection
    /// holds the lease.
    pub async fn gc(&self, now: i64) -> Result<Option<GcReport>, StoreError> {
        let holder = new_holder();
        if !self.take_lease(&holder, now).await? {
            return Ok(None);
        }
        let result = self.collect(&holder, now).await;
        self.release_lease(&holder).await?;
        result.map(Some)
    }

    async fn collect(&self, holder: &str, now: i64) -> Result<GcReport, StoreError> {
        let cutoff = now - BLOCK_GRACE_SECS;
        let mut report = GcReport::default();
        self.finish_orphaned_deletions(now).await?;
        let mut listing = self.blocks.list_aged();
        let mut chunk = Vec::with_capacity(GC_CHUNK);
        loop {
            let next = listing.next().await.transpose()?;
            if let Some(stored) = next {
                report.scanned += 1;
                chunk.push(stored);
                if chunk.len() < GC_CHUNK {
                    continue;
                }
            }
            if !chunk.is_empty() {
                self.renew_lease(holder, now).await?;
                self.collect_chunk(&chunk, cutoff, now, &mut report, Kept::Object)
                    .await?;
                chunk.clear();
            }
            if next.is_none() {
                break;
            }
        }
        // Small blocks (`small.rs`), a page of rows at a time, by the same rules but a longer
        // wait (see `SMALL_GRACE_SECS`).
        let cutoff = now - SMALL_GRACE_SECS;
        let mut after = None;
        loop {
            let page = self.small_page(after.as_ref(), GC_CHUNK).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.hash);
            report.scanned += page.len() as u64;
            self.renew_lease(holder, now).await?;
            self.collect_chunk(&page, cutoff, now, &mut report, Kept::Small)
                .await?;
        }
        let purged = self
            .exec_plain(
                "DELETE FROM blocks WHERE refs = $1 AND zero_since < $2",
                DELETED,
                now - TOMBSTONE_KEEP_SECS,
            )
            .await?;
        report.tombstones_purged = purged;
        Ok(report)
    }

    async fn collect_chunk(
        &self,
        chunk: &[crate::blocks::Stored],
        cutoff: i64,
        now: i64,
        report: &mut GcReport,
        kept: Kept,
    ) -> Result<(), StoreError> {
        let old: Vec<&crate::blocks::Stored> =
            chunk.iter().filter(|s| s.modified < cutoff).collect();
        let rows = self
            .block_rows(&chunk.iter().map(|s| s.hash).collect::<Vec<_>>())
            .await?;
        let mut candidates = Vec::new();
        for s in &old {
            let collectable = match rows.get(&s.hash) {
                None => true,
                Some(&(refs, zero_since)) => {
                    refs < 0 || (refs == 0 && zero_since.is_some_and(|z| z < cutoff))
                }
            };
            if collectable {
                candidates.push(s.hash);
            }
        }
        report.waiting += chunk
            .iter()
            .filter(|s| {
                s.modified >= cutoff && rows.get(&s.hash).is_none_or(|&(refs, _)| refs <= 0)
            })
            .count() as u64;
        if candidates.is_empty() {
            return Ok(());
        }
        let claimed = self.claim(&candidates, cutoff, now).await?;
        let deleted = match kept {
            Kept::Small => self.delete_claimed_small(claimed, cutoff, now).await?,
            Kept::Object => {
                futures_util::stream::iter(claimed)
                    .map(|h| {
                        let blocks = self.blocks.clone();
                        async move { blocks.delete(&h).await.map(|()| h) }
                    })
                    .buffer_unordered(DELETES_IN_FLIGHT)
                    .try_collect::<Vec<_>>()
                    .await?
            }
        };
        let sizes: HashMap<BlockHash, u64> = chunk.iter().map(|s| (s.hash, s.size)).collect();
        report.deleted += deleted.len() as u64;
        report.deleted_bytes += deleted.iter().filter_map(|h| sizes.get(h)).sum::<u64>();
        self.set_state(&deleted, CLAIMED, DELETED, now).await?;
        Ok(())
    }

    /// Deletes claimed small blocks, except those a session started with again since they
    /// were chosen: those stay, and their claim is undone. Returns the deleted.
    async fn delete_claimed_small(
        &self,
        claimed: Vec<BlockHash>,
        cutoff: i64,
        now: i64,
    ) -> Result<Vec<BlockHash>, StoreError> {
        let deleted = self.delete_small(&claimed, cutoff).await?;
        let gone: std::collections::HashSet<&BlockHash> = deleted.iter().collect();
        let stayed: Vec<BlockHash> = claimed.into_iter().filter(|h| !gone.contains(h)).collect();
        self.set_state(&stayed, CLAIMED, 0, now).await?;
        Ok(deleted)
    }

    /// Claims the candidates that are still collectable, in one transaction; returns them.
    async fn claim(
        &self,
        candidates: &[BlockHash],
        cutoff: i64,
        now: i64,
    ) -> Result<Vec<BlockHash>, StoreError> {
        let mut tx = self.db.begin(None).await?;
        let rows = candidates
            .iter()
            .map(|h| {
                vec![
                    Val::Blob(Some(h.to_vec())),
                    Val::Int(Some(CLAIMED)),
                    Val::Int(Some(now)),
                ]
            })
            .collect();
        tx.insert_rows(
            "INSERT INTO blocks (hash, refs, zero_since)",
            3,
            rows,
            "ON CONFLICT (hash) DO NOTHING",
        )
        .await?;
        let mut claimed = Vec::with_capacity(candidates.len());
        for part in candidates.chunks(500) {
            let update = format!(
                "UPDATE blocks SET refs = $1, zero_since = $2 WHERE hash IN ({}) \
                 AND (refs < 0 OR (refs = 0 AND zero_since < $3))",
                placeholders(4, part.len())
            );
            let select = format!(
                "SELECT hash FROM blocks WHERE refs = $1 AND hash IN ({})",
                placeholders(2, part.len())
            );
            let found: Vec<Vec<u8>> = on_tx!(&mut tx, |c| {
                let mut q = sqlx::query(crate::db::sql_for(&c, update))
                    .bind(CLAIMED)
                    .bind(now)
                    .bind(cutoff);
                for h in part {
                    q = q.bind(h.to_vec());
                }
                q.execute(&mut *c).await?;
                let mut q = sqlx::query_scalar(crate::db::sql_for(&c, select)).bind(CLAIMED);
                for h in part {
                    q = q.bind(h.to_vec());
                }
                q.fetch_all(&mut *c).await?
            });
            claimed.extend(
                found
                    .into_iter()
                    .filter_map(|v| BlockHash::try_from(v).ok()),
            );
        }
        // Thumbnails and media info of content whose first block goes now go with it.
        crate::thumbs::forget_sources(&mut tx, &claimed, now, &self.gone)
            .await
            .map_err(|e| StoreError::Invalid(format!("forgetting derived data: {e}")))?;
        tx.commit(None).await?;
        Ok(claimed)
    }

    /// Moves rows in state `from` to `to` (stamping `zero_since`).
    async fn set_state(
        &self,
        hashes: &[BlockHash],
        from: i64,
        to: i64,
        now: i64,
    ) -> Result<u64, StoreError> {
        if hashes.is_empty() {
            return Ok(0);
        }
        let mut tx = self.db.begin(None).await?;
        let mut n = 0;
        for part in hashes.chunks(500) {
            let sql = format!(
                "UPDATE blocks SET refs = $1, zero_since = $2 WHERE refs = $3 AND hash IN ({})",
                placeholders(4, part.len())
            );
            n += on_tx!(&mut tx, |c| {
                let mut q = sqlx::query(crate::db::sql_for(&c, sql))
                    .bind(to)
                    .bind(now)
                    .bind(from);
                for h in part {
                    q = q.bind(h.to_vec());
                }
                q.execute(&mut *c).await?.rows_affected()
            });
        }
        tx.commit(None).await?;
        Ok(n)
    }

    /// Adopts blocks a write found deleted, where the object exists again (a retrying upload
    /// wrote it after the GC deleted it): they become ordinary unreferenced blocks, so the
    /// retry's commit can count them. A block still claimed is left alone: the GC may yet
    /// delete its object.
    pub(crate) async fn revive(&self, hashes: Vec<BlockHash>) -> Result<(), StoreError> {
        let rows = self.block_rows(&hashes).await?;
        let mut present = Vec::new();
        let mut claimed = Vec::new();
        for (h, (refs, _)) in rows {
            if refs == CLAIMED {
                claimed.push(h);
            } else if refs == DELETED && self.block_present(&h).await? {
                present.push(h);
            }
        }
        if !claimed.is_empty() {
            self.release_orphaned_claims(&claimed).await?;
        }
        let n = self.set_state(&present, DELETED, 0, now()).await?;
        if n > 0 {
            tracing::info!(blocks = n, "revived blocks written again after collection");
        }
        Ok(())
    }

    /// `(refs, zero_since)` of the rows of these blocks.
    async fn block_rows(
        &self,
        hashes: &[BlockHash],
    ) -> Result<HashMap<BlockHash, (i64, Option<i64>)>, StoreError> {
        let mut out = HashMap::with_capacity(hashes.len());
        for part in hashes.chunks(500) {
            let sql = format!(
                "SELECT hash, refs, zero_since FROM blocks WHERE hash IN ({})",
                placeholders(1, part.len())
            );
            on_db!(&self.db, |c| {
                let mut q = sqlx::query(crate::db::sql_for(&c, sql));
                for h in part {
                    q = q.bind(h.to_vec());
                }
                for r in q.fetch_all(c).await? {
                    if let Ok(h) = BlockHash::try_from(r.bytes("hash")?.as_slice()) {
                        out.insert(h, (r.int("refs")?, r.opt_int("zero_since")?));
                    }
                }
            });
        }
        Ok(out)
    }

    /// Runs a statement with two integer parameters in a transaction of its own.
    async fn exec_plain(&self, sql: &'static str, a: i64, b: i64) -> Result<u64, StoreError> {
        let mut tx = self.db.begin(None).await?;
        let n = on_tx!(&mut tx, |c| sqlx::query(sql)
            .bind(a)
            .bind(b)
            .execute(&mut *c)
            .await?
            .rows_affected());
        tx.commit(None).await?;
        Ok(n)
    }

    /// Takes the collection lease if it is free or expired.
    async fn take_lease(&self, holder: &str, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES ('gc_lease', $1) \
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(lease_value("", 0))
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        tx.commit(None).await?;
        let current = self.read_lease().await?;
        if lease_expiry(&current) >= now && !holder_is_gone(lease_holder(&current)) {
            return Ok(false);
        }
        self.swap_lease(&current, lease_value(holder, now + LEASE_SECS))
            .await
    }

    /// Marks deleted the claimed rows whose object is gone: a collection killed between an
    /// object's deletion and the row's mark left them, and the walk of the objects never meets
    /// them again. Run under the lease, so no collection's claims are in progress.
    async fn finish_orphaned_deletions(&self, now: i64) -> Result<(), StoreError> {
        let claimed: Vec<Vec<u8>> = on_db!(&self.db, |c| sqlx::query_scalar(
            "SELECT hash FROM blocks WHERE refs = $1",
        )
        .bind(CLAIMED)
        .fetch_all(c)
        .await?);
        let mut gone = Vec::new();
        for h in claimed
            .iter()
            .filter_map(|h| BlockHash::try_from(h.as_slice()).ok())
        {
            if !self.block_present(&h).await? {
                gone.push(h);
            }
        }
        let n = self.set_state(&gone, CLAIMED, DELETED, now).await?;
        if n > 0 {
            tracing::info!(
                blocks = n,
                "finished the deletions of a collection that stopped"
            );
        }
        Ok(())
    }

    /// Releases blocks a write met claimed by a collection that is no longer running (killed
    /// between its claim and its deletion): under the lease, so no collection runs meanwhile,
    /// a claimed block whose object is still there becomes an ordinary unreferenced one (a
    /// later collection may take it after the grace period), and one whose object is gone is
    /// marked deleted, so the write's retry stores it again and revives it. While a
    /// collection does run, its claims are its own to finish.
    async fn release_orphaned_claims(&self, hashes: &[BlockHash]) -> Result<(), StoreError> {
        let holder = new_holder();
        let now = now();
        if !self.take_lease(&holder, now).await? {
            return Ok(());
        }
        let released = async {
            let rows = self.block_rows(hashes).await?;
            let (mut present, mut absent) = (Vec::new(), Vec::new());
            for (h, (refs, _)) in rows {
                if refs == CLAIMED {
                    if self.block_present(&h).await? {
                        present.push(h);
                    } else {
                        absent.push(h);
                    }
                }
            }
            Ok::<_, StoreError>(
                self.set_state(&present, CLAIMED, 0, now).await?
                    + self.set_state(&absent, CLAIMED, DELETED, now).await?,
            )
        }
        .await;
        self.release_lease(&holder).await?;
        let n = released?;
        if n > 0 {
            tracing::warn!(
                blocks = n,
                "released blocks claimed by a collection that stopped before finishing"
            );
        }
        Ok(())
    }

    /// Extends the lease, or fails if this collection no longer holds it.
    async fn renew_lease(&self, holder: &str, now: i64) -> Result<(), StoreError> {
        let current = self.read_lease().await?;
        let until = now.max(crate::now()) + LEASE_SECS;
        if lease_holder(&current) == holder.as_bytes()
            && self
                .swap_lease(&current, lease_value(holder, until))
                .await?
        {
            return Ok(());
        }
        Err(StoreError::Invalid("the GC lease was lost".into()))
    }

    async fn release_lease(&self, holder: &str) -> Result<(), StoreError> {
        let current = self.read_lease().await?;
        if lease_holder(&current) == holder.as_bytes() {
            self.swap_lease(&current, lease_value("", 0)).await?;
        }
        Ok(())
    }

    async fn read_lease(&self) -> Result<Vec<u8>, StoreError> {
        let mut tx = self.db.begin(None).await?;
        let v: Vec<u8> = on_tx!(&mut tx, |c| sqlx::query_scalar(
            "SELECT value FROM settings WHERE key = 'gc_lease'",
        )
        .fetch_one(&mut *c)
        .await?);
        tx.commit(None).await?;
        Ok(v)
    }

    /// Replaces the lease only if it still holds `expected` (compare and swap): of two
    /// servers that read the same expired lease, one wins. On PostgreSQL the loser's UPDATE
    /// waits for the winner's commit, then finds the value changed and touches nothing.
    async fn swap_lease(&self, expected: &[u8], new: Vec<u8>) -> Result<bool, StoreError> {
        let mut tx = self.db.begin(None).await?;
        let n = on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE settings SET value = $1 WHERE key = 'gc_lease' AND value = $2",
        )
        .bind(new)
        .bind(expected)
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit(None).await?;
        Ok(n == 1)
    }

    /// Runs [`Store::gc`] every [`GC_INTERVAL`] until the process ends.
    pub fn spawn_gc(&self) {
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(GC_INTERVAL).await;
                match store.gc(now()).await {
                    Ok(Some(r)) if r.deleted > 0 || r.tombstones_purged > 0 => {
                        tracing::info!(?r, "collected blocks")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "block collection failed"),
                }
            }
        });
    }

    /// Checks block accounting; with `repair`, corrects the counts. `verify_content` reads
    /// every referenced block and checks its hash (otherwise only its presence).
    pub async fn fsck(&self, repair: bool, verify_content: bool) -> Result<FsckReport, StoreError> {
        let mut report = FsckReport::default();
        let rows: i64 = on_db!(&self.db, |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM blocks"
        )
        .fetch_one(c)
        .await?);
        // Hash ranges by first byte: 1, 2, 4, … passes, each holding its counts in memory.
        let mut passes = 1u32;
        while i64::from(passes) * FSCK_COUNTS_PER_PASS < rows && passes < 256 {
            passes *= 2;
        }
        let mut fixes: Vec<(BlockHash, i64)> = Vec::new();
        let mut unclaim: Vec<(BlockHash, i64)> = Vec::new();
        for pass in 0..passes {
            let lo = (pass * 256 / passes) as u8;
            let hi = ((pass + 1) * 256 / passes) as u16;
            let in_range = |h: &BlockHash| h[0] >= lo && u16::from(h[0]) < hi;
            let (counted, stored, mut pinned) = self.snapshot_counts(&in_range).await?;
            let mut referenced = Vec::new();
            for (h, &n) in &counted {
                let (refs, _) = stored.get(h).copied().unwrap_or((0, None));
                if refs >= 0 && refs != n {
                    report.miscounted += 1;
                    fixes.push((*h, n - refs));
                }
                if refs < 0 {
                    unclaim.push((*h, n));
                }
                referenced.push(*h);
            }
            for (h, &(refs, _)) in &stored {
                if refs > 0 && !counted.contains_key(h) {
                    report.miscounted += 1;
                    fixes.push((*h, -refs));
                }
            }
            // The small blocks of unfinished inline sessions count no reference, but must be
            // there for their finish.
            pinned.sort_unstable();
            pinned.dedup();
            referenced.extend(pinned.into_iter().filter(|h| !counted.contains_key(h)));
            for h in referenced {
                report.blocks_checked += 1;
                let ok = if verify_content {
                    match self.read_block_all(h).await {
                        Ok(data) if block_hash(&data) == h => Ok(()),
                        Ok(_) => Err(false),
                        Err(_) => Err(true),
                    }
                } else if self.block_present(&h).await? {
                    Ok(())
                } else {
                    Err(true)
                };
                match ok {
                    Ok(()) => {}
                    Err(true) => report.missing.push(hex(&h)),
                    Err(false) => report.corrupt.push(hex(&h)),
                }
            }
        }
        // A referenced block in a GC state whose object is gone is missing (counted above);
        // one whose object exists is restored to its count.
        let missing: std::collections::HashSet<&String> = report.missing.iter().collect();
        unclaim.retain(|(h, _)| !missing.contains(&hex(h)));
        report.wrongly_claimed = unclaim.len() as u64;
        if repair {
            let holder = hex(&crate::random_bytes::<16>());
            if !self.take_lease(&holder, now()).await? {
                return Err(StoreError::Invalid(
                    "a block collection is running; try again when it ends".into(),
                ));
            }
            let result = self.apply_fixes(&fixes, &unclaim).await;
            self.release_lease(&holder).await?;
            result?;
            report.repaired = true;
        }
        Ok(report)
    }

    /// Counts references and reads block rows for hashes in one range, in one snapshot.
    async fn snapshot_counts(
        &self,
        in_range: &dyn Fn(&BlockHash) -> bool,
    ) -> Result<
        (
            HashMap<BlockHash, i64>,
            HashMap<BlockHash, (i64, Option<i64>)>,
            Vec<BlockHash>,
        ),
        StoreError,
    > {
        let now = now();
        let mut pinned = Vec::new();
        let mut counted: HashMap<BlockHash, i64> = HashMap::new();
        let mut stored = HashMap::new();
        let mut count = |blob: &[u8]| {
            for c in blob.chunks_exact(32) {
                let h: BlockHash = c.try_into().expect("32-byte chunk");
                if in_range(&h) {
                    *counted.entry(h).or_default() += 1;
                }
            }
        };
        macro_rules! scan {
            ($c:expr) => {{
                let c = $c;
                {
                    let mut rows = sqlx::query_scalar::<_, Vec<u8>>("SELECT blocks FROM revisions")
                        .fetch(&mut *c);
                    while let Some(blob) = rows.next().await {
                        count(&blob?);
                    }
                }
                {
                    let mut rows = sqlx::query_scalar::<_, Vec<u8>>(
                        "SELECT hash FROM upload_session_blocks UNION ALL \
                         SELECT tail FROM upload_sessions WHERE tail IS NOT NULL UNION ALL \
                         SELECT hash FROM thumbnails",
                    )
                    .fetch(&mut *c);
                    while let Some(h) = rows.next().await {
                        count(&h?);
                    }
                }
                {
                    let mut rows = sqlx::query_scalar::<_, Vec<u8>>(
                        "SELECT data_hash FROM upload_sessions \
                         WHERE finished = 0 AND expires > $1 AND data_hash IS NOT NULL",
                    )
                    .bind(now)
                    .fetch(&mut *c);
                    while let Some(h) = rows.next().await {
                        if let Ok(h) = BlockHash::try_from(h?.as_slice())
                            && in_range(&h)
                        {
                            pinned.push(h);
                        }
                    }
                }
                let mut rows =
                    sqlx::query("SELECT hash, refs, zero_since FROM blocks").fetch(&mut *c);
                while let Some(r) = rows.next().await {
                    let r = r?;
                    if let Ok(h) = BlockHash::try_from(r.bytes("hash")?.as_slice())
                        && in_range(&h)
                    {
                        stored.insert(h, (r.int("refs")?, r.opt_int("zero_since")?));
                    }
                }
            }};
        }
        match &self.db {
            Db::Sqlite { reader, .. } => {
                let mut tx = reader.begin().await?;
                scan!(&mut *tx);
                tx.commit().await?;
            }
            Db::Postgres { pool } => {
                let mut tx = pool.begin().await?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .execute(&mut *tx)
                    .await?;
                scan!(&mut *tx);
                tx.commit().await?;
            }
        }
        Ok((counted, stored, pinned))
    }

    /// Applies fsck's corrections: count differences, and referenced blocks taken out of a
    /// GC state (their objects exist).
    async fn apply_fixes(
        &self,
        fixes: &[(BlockHash, i64)],
        unclaim: &[(BlockHash, i64)],
    ) -> Result<(), StoreError> {
        let now = now();
        let mut tx = self.db.begin(None).await?;
        for (h, delta) in fixes {
            on_tx!(&mut tx, |c| {
                sqlx::query(
                    "INSERT INTO blocks (hash, refs) VALUES ($1, $2) ON CONFLICT (hash) DO UPDATE \
                     SET refs = CASE WHEN blocks.refs + excluded.refs > 0 THEN blocks.refs + \
                     excluded.refs ELSE 0 END, zero_since = CASE WHEN blocks.refs + excluded.refs \
                     > 0 THEN NULL ELSE $3 END WHERE blocks.refs >= 0",
                )
                .bind(h.to_vec())
                .bind(*delta)
                .bind(now)
                .execute(&mut *c)
                .await?
                .rows_affected()
            });
        }
        for (h, n) in unclaim {
            on_tx!(&mut tx, |c| sqlx::query(
                "UPDATE blocks SET refs = $1, zero_since = NULL WHERE hash = $2 AND refs < 0",
            )
            .bind(*n)
            .bind(h.to_vec())
            .execute(&mut *c)
            .await?
            .rows_affected());
        }
        tx.commit(None).await?;
        Ok(())
    }

    /// Every block's reference count, in hash order (for tests and the GC benchmark).
    pub async fn block_refs(&self) -> Result<Vec<(BlockHash, i64)>, StoreError> {
        let rows: Vec<(Vec<u8>, i64)> = on_db!(&self.db, |c| sqlx::query_as(
            "SELECT hash, refs FROM blocks ORDER BY hash",
        )
        .fetch_all(c)
        .await?);
        Ok(rows
            .into_iter()
            .filter_map(|(h, n)| Some((BlockHash::try_from(h.as_slice()).ok()?, n)))
            .collect())
    }

    /// Records blocks as stored with `refs` references, bypassing the writes that normally
    /// count them: only for benchmarks and tests that build large block sets quickly.
    #[doc(hidden)]
    pub async fn seed_block_rows(
        &self,
        hashes: &[BlockHash],
        refs: i64,
        zero_since: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin(None).await?;
        let rows = hashes
            .iter()
            .map(|h| {
                vec![
                    Val::Blob(Some(h.to_vec())),
                    Val::Int(Some(refs)),
                    Val::Int(zero_since),
                ]
            })
            .collect();
        tx.insert_rows("INSERT INTO blocks (hash, refs, zero_since)", 3, rows, "")
            .await?;
        tx.commit(None).await?;
        Ok(())
    }
}

/// A lease holder's name: this machine's boot id, this process's id, and random bits, so a
/// process on the same machine can tell when the holder's process is gone.
fn new_holder() -> String {
    format!(
        "{}:{}:{}",
        boot_id().unwrap_or_default(),
        std::process::id(),
        hex(&crate::random_bytes::<16>())
    )
}

/// This boot of this machine (Linux), if it can be read.
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Whether a lease holder is provably gone: it ran on this machine, since this boot, in a
/// process that no longer exists. A holder elsewhere (or in an older format) is gone only
/// when its lease expires.
fn holder_is_gone(holder: &[u8]) -> bool {
    let Ok(holder) = std::str::from_utf8(holder) else {
        return false;
    };
    let mut parts = holder.splitn(3, ':');
    let (Some(boot), Some(pid), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    Some(boot) == boot_id().as_deref()
        && !boot.is_empty()
        && pid != std::process::id()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The lease's value: the expiry (big-endian) then the holder.
fn lease_value(holder: &str, expires: i64) -> Vec<u8> {
    let mut v = expires.to_be_bytes().to_vec();
    v.extend_from_slice(holder.as_bytes());
    v
}

fn lease_expiry(v: &[u8]) -> i64 {
    v.get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, i64::from_be_bytes)
}

fn lease_holder(v: &[u8]) -> &[u8] {
    v.get(8..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{Commit, OpError, WriteMode};
    use crate::sessions::Finish;

    /// Makes a small block and the session that wrote it look a long time old and expired.
    async fn age(store: &Store, h: &BlockHash) {
        let mut tx = store.db.begin(None).await.unwrap();
        on_tx!(&mut tx, |c| {
            sqlx::query("UPDATE small_blocks SET created = 0 WHERE hash = $1")
                .bind(h.to_vec())
                .execute(&mut *c)
                .await
                .unwrap();
            sqlx::query("UPDATE upload_sessions SET created = 0, expires = 1")
                .execute(&mut *c)
                .await
                .unwrap()
                .rows_affected()
        });
        tx.commit(None).await.unwrap();
    }

    /// A collection killed between its claim and its deletion (`cubby admin gc` killed, a
    /// server killed mid-collection) leaves blocks claimed. The next write that meets one
    /// finds the collection gone (its process no longer exists on this machine, though its
    /// lease has not expired) and releases the claim: the write's retry commits at once,
    /// whether the object was still there or already deleted. A live collection's claims
    /// are left to it.
    #[tokio::test]
    async fn a_write_releases_the_claims_of_a_collection_that_was_killed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let user = store
            .add_user("u", "u@example.com", "password")
            .await
            .unwrap();
        let commit = |path: &str, h: BlockHash, size: u64| Commit {
            path: path.into(),
            mode: WriteMode::Add,
            autorename: false,
            strict_conflict: false,
            client_modified: None,
            size,
            blocks: vec![h],
        };
        // Writes `data` as a client does: store the block, commit, retry while refused.
        let write = |path: &'static str, data: Vec<u8>| {
            let store = store.clone();
            async move {
                let mut refused = 0;
                for _ in 0..3 {
                    let h = store.blocks.put(data.clone().into()).await.unwrap();
                    store.blocks.sync(&[h]).await.unwrap();
                    match store
                        .commit_file(user.ns, commit(path, h, data.len() as u64))
                        .await
                    {
                        Ok(_) => return Ok(refused),
                        Err(OpError::TooManyWrites) => refused += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
                Err(refused)
            }
        };
        let now = crate::now();
        let later = now + BLOCK_GRACE_SECS + 1;
        // An unreferenced block, claimed by a collection that then died: its lease names
        // this machine and a process that does not exist, and has not expired.
        let orphan = |data: Vec<u8>, holder: String| {
            let store = store.clone();
            async move {
                let h = block_hash(&data);
                store.blocks.put(data.into()).await.unwrap();
                store
                    .swap_lease(
                        &store.read_lease().await.unwrap_or_default(),
                        lease_value(&holder, now + LEASE_SECS),
                    )
                    .await
                    .unwrap();
                assert_eq!(store.claim(&[h], later, now).await.unwrap(), vec![h]);
                h
            }
        };
        store.take_lease("init", 0).await.unwrap();
        let dead = format!("{}:4000000000:dead", boot_id().unwrap_or_default());

        // The object is still there: released to an ordinary block, the retry commits.
        let a = vec![1u8; 5000];
        orphan(a.clone(), dead.clone()).await;
        assert_eq!(write("/a", a.clone()).await, Ok(1));
        // The collection had deleted the object: marked deleted, the retry revives it.
        let b = vec![2u8; 5000];
        let hb = orphan(b.clone(), dead.clone()).await;
        store.blocks.delete(&hb).await.unwrap();
        assert!(write("/b", b.clone()).await.is_ok());
        assert_eq!(&store.read_block_all(hb).await.unwrap()[..], &b[..]);
        // The lease is free again for the next collection.
        assert!(store.gc(crate::now()).await.unwrap().is_some());

        // A collection that runs (elsewhere, its lease current) keeps its claims.
        let c = vec![3u8; 5000];
        orphan(c.clone(), "another-machine:1:alive".into()).await;
        assert_eq!(write("/c", c).await, Err(3));
        let fsck = store.fsck(false, true).await.unwrap();
        assert!(fsck.is_clean(), "{fsck:?}");
    }

    /// A collection killed after deleting an object but before marking its row leaves the
    /// row claimed; the next collection marks it deleted (no write needs to meet it first).
    #[tokio::test]
    async fn the_next_collection_finishes_a_killed_one_s_deletions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let now = crate::now();
        let h = store.blocks.put(vec![9u8; 5000].into()).await.unwrap();
        let kept = store.blocks.put(vec![8u8; 5000].into()).await.unwrap();
        assert_eq!(
            store
                .claim(&[h, kept], now + BLOCK_GRACE_SECS + 1, now)
                .await
                .unwrap()
                .len(),
            2
        );
        // The killed collection had deleted one object, not the other.
        store.blocks.delete(&h).await.unwrap();
        store.gc(now).await.unwrap().expect("the lease is free");
        let rows = store.block_rows(&[h, kept]).await.unwrap();
        assert_eq!(rows.get(&h).map(|r| r.0), Some(DELETED));
        // A claimed block whose object is there is the walk's to collect (it is young here).
        assert_eq!(rows.get(&kept).map(|r| r.0), Some(CLAIMED));
    }

    #[tokio::test]
    async fn a_small_block_started_again_after_its_claim_stays_unclaimed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let user = store
            .add_user("u", "u@example.com", "password")
            .await
            .unwrap();
        let (data, other) = (vec![7u8; 4096], vec![8u8; 4096]);
        let (h, h2) = (block_hash(&data), block_hash(&other));
        store
            .start_inline(user.id, data.clone().into())
            .await
            .unwrap();
        store.start_inline(user.id, other.into()).await.unwrap();
        age(&store, &h).await;
        age(&store, &h2).await;
        let now = crate::now();
        let cutoff = now - SMALL_GRACE_SECS;
        // Both are old and their sessions expired: the GC chooses them...
        let mut claimed = store.claim(&[h, h2], cutoff, now).await.unwrap();
        claimed.sort();
        let mut both = vec![h, h2];
        both.sort();
        assert_eq!(claimed, both);
        // ...then a session starts with the first one's bytes, before the deletion.
        let id = store
            .start_inline(user.id, data.clone().into())
            .await
            .unwrap();
        let deleted = store
            .delete_claimed_small(claimed, cutoff, now)
            .await
            .unwrap();
        assert_eq!(deleted, vec![h2]);
        assert!(store.block_present(&h).await.unwrap());
        assert!(!store.block_present(&h2).await.unwrap());
        let rows = store.block_rows(&[h]).await.unwrap();
        assert_eq!(rows.get(&h).map(|r| r.0), Some(0), "unclaimed");
        // Its finish commits at the first try, and the file reads back.
        let r = store
            .finish_sessions(
                user.ns,
                user.id,
                vec![Finish {
                    session_id: id,
                    offset: 4096,
                    commit: Commit {
                        path: "/f".into(),
                        mode: WriteMode::Add,
                        autorename: false,
                        strict_conflict: false,
                        client_modified: None,
                        size: 0,
                        blocks: Vec::new(),
                    },
                }],
                true,
            )
            .await
            .unwrap();
        assert!(r[0].is_ok(), "{r:?}");
        assert_eq!(&store.read_block_all(h).await.unwrap()[..], &data[..]);
        let fsck = store.fsck(false, true).await.unwrap();
        assert!(fsck.is_clean(), "{fsck:?}");
    }
}
