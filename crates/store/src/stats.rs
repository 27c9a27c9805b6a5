//! What `cubby admin stats` reports: each account's live bytes against its quota, and the
//! logical size of the store against its physical size.

use crate::db::{RowExt, on_db};
use crate::{Store, StoreError};

/// What `cubby admin stats` reports.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Per account: name, live bytes, quota.
    pub accounts: Vec<(String, u64, Option<u64>)>,
    /// Bytes of every live file.
    pub live_bytes: u64,
    /// Bytes of every stored version (live or history): what the blocks hold, before sharing.
    pub version_bytes: u64,
    /// Blocks stored (objects and small blocks) and their bytes: the physical size.
    pub blocks: usize,
    pub physical_bytes: u64,
}

impl Store {
    /// Logical against physical size (a full listing of the blocks: an operator command).
    pub async fn stats(&self) -> Result<Stats, StoreError> {
        let (accounts, version_bytes) = on_db!(&self.db, |c| {
            let rows = sqlx::query(
                "SELECT a.name, n.used, a.quota FROM accounts a JOIN namespaces n ON n.id = a.ns \
                 ORDER BY lower(a.name)",
            )
            .fetch_all(c)
            .await?;
            let accounts = rows
                .iter()
                .map(|r| {
                    Ok::<_, sqlx::Error>((
                        r.text("name")?,
                        r.int("used")? as u64,
                        r.opt_int("quota")?.map(|q| q as u64),
                    ))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let versions: i64 =
                sqlx::query_scalar("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM revisions")
                    .fetch_one(c)
                    .await?;
            (accounts, versions as u64)
        });
        let (blocks, physical_bytes) = self.blocks.usage().await?;
        let (small, small_bytes) = self.small_usage().await?;
        let (blocks, physical_bytes) = (blocks + small, physical_bytes + small_bytes);
        Ok(Stats {
            live_bytes: accounts.iter().map(|a| a.1).sum(),
            accounts,
            version_bytes,
            blocks,
            physical_bytes,
        })
    }
}
