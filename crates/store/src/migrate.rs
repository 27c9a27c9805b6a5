//! Moving an installation to other back-ends (`cubby admin migrate`): every table row by row,
//! every block, then a verification of counts and of the hashes of a sample of blocks.
//!
//! The source is only read. Rows stream from the source and are written in batches, and
//! blocks are copied one at a time, so memory stays bounded whatever the size.

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use sqlx::Row;

use crate::db::{Db, Val, on_db, on_tx};
use crate::{Store, StoreError};

/// Rows written per target transaction.
const BATCH_ROWS: usize = 500;

/// Blocks whose content is read back from the target and rehashed.
pub const VERIFY_SAMPLE: usize = 64;

#[derive(Clone, Copy)]
enum Ty {
    Int,
    Text,
    Blob,
}

/// A table and its columns, in dependency order.
const TABLES: &[(&str, &[(&str, Ty)])] = &[
    ("settings", &[("key", Ty::Text), ("value", Ty::Blob)]),
    (
        "namespaces",
        &[
            ("id", Ty::Int),
            ("seq", Ty::Int),
            ("created", Ty::Int),
            ("used", Ty::Int),
        ],
    ),
    (
        "accounts",
        &[
            ("id", Ty::Int),
            ("account_id", Ty::Text),
            ("name", Ty::Text),
            ("email", Ty::Text),
            ("password_hash", Ty::Text),
            ("disabled", Ty::Int),
            ("ns", Ty::Int),
            ("created", Ty::Int),
            ("quota", Ty::Int),
            ("operator", Ty::Int),
        ],
    ),
    (
        "apps",
        &[
            ("id", Ty::Int),
            ("app_key", Ty::Text),
            ("secret_hash", Ty::Text),
            ("name", Ty::Text),
            ("access_type", Ty::Text),
            ("scopes", Ty::Text),
            ("redirect_uris", Ty::Text),
            ("public_client", Ty::Int),
            ("owner", Ty::Int),
            ("created", Ty::Int),
        ],
    ),
    (
        "tokens",
        &[
            ("id", Ty::Int),
            ("token_hash", Ty::Blob),
            ("kind", Ty::Text),
            ("account", Ty::Int),
            ("app", Ty::Int),
            ("scopes", Ty::Text),
            ("parent", Ty::Int),
            ("expires", Ty::Int),
            ("revoked", Ty::Int),
            ("created", Ty::Int),
            ("pkce", Ty::Int),
        ],
    ),
    (
        "grants",
        &[
            ("account", Ty::Int),
            ("app", Ty::Int),
            ("scopes", Ty::Text),
            ("updated", Ty::Int),
        ],
    ),
    (
        "copy_refs",
        &[
            ("ref_hash", Ty::Blob),
            ("ns", Ty::Int),
            ("account", Ty::Int),
            ("file_id", Ty::Text),
            ("revision", Ty::Int),
            ("created", Ty::Int),
            ("expires", Ty::Int),
        ],
    ),
    (
        "shared_links",
        &[
            ("id", Ty::Int),
            ("token_hash", Ty::Blob),
            ("nonce", Ty::Blob),
            ("ns", Ty::Int),
            ("account", Ty::Int),
            ("file_id", Ty::Text),
            ("audience", Ty::Text),
            ("password_hash", Ty::Text),
            ("expires", Ty::Int),
            ("allow_download", Ty::Int),
            ("created", Ty::Int),
        ],
    ),
    (
        "entries",
        &[
            ("ns", Ty::Int),
            ("path_lower", Ty::Text),
            ("parent_lower", Ty::Text),
            ("path_display", Ty::Text),
            ("kind", Ty::Int),
            ("file_id", Ty::Text),
            ("rev", Ty::Text),
            ("revision", Ty::Int),
            ("size", Ty::Int),
            ("content_hash", Ty::Text),
            ("client_modified", Ty::Int),
            ("server_modified", Ty::Int),
        ],
    ),
    (
        "revisions",
        &[
            ("id", Ty::Int),
            ("ns", Ty::Int),
            ("rev", Ty::Text),
            ("file_id", Ty::Text),
            ("path_lower", Ty::Text),
            ("path_display", Ty::Text),
            ("size", Ty::Int),
            ("content_hash", Ty::Text),
            ("client_modified", Ty::Int),
            ("server_modified", Ty::Int),
            ("blocks", Ty::Blob),
        ],
    ),
    (
        "journal",
        &[
            ("ns", Ty::Int),
            ("seq", Ty::Int),
            ("idx", Ty::Int),
            ("path_lower", Ty::Text),
            ("parent_lower", Ty::Text),
        ],
    ),
    (
        "small_blocks",
        &[("hash", Ty::Blob), ("data", Ty::Blob), ("created", Ty::Int)],
    ),
    (
        "shared_folders",
        &[
            ("ns", Ty::Int),
            ("owner", Ty::Int),
            ("name", Ty::Text),
            ("member_policy", Ty::Text),
            ("acl_update_policy", Ty::Text),
            ("shared_link_policy", Ty::Text),
            ("created", Ty::Int),
        ],
    ),
    (
        "folder_members",
        &[
            ("ns", Ty::Int),
            ("account", Ty::Int),
            ("access", Ty::Text),
            ("mount_lower", Ty::Text),
            ("invited", Ty::Int),
        ],
    ),
];

/// Rows per batch of a table: [`BATCH_ROWS`], or fewer where rows are large (a small block
/// is up to 256 KiB, so a batch holds at most 16 MiB of them).
fn batch_rows(table: &str) -> usize {
    if table == "small_blocks" {
        64
    } else {
        BATCH_ROWS
    }
}

/// Tables whose `id` comes from a sequence that must continue after the copied rows.
const SERIAL_TABLES: &[&str] = &[
    "namespaces",
    "accounts",
    "apps",
    "tokens",
    "revisions",
    "shared_links",
];

/// What a migration copied and checked.
#[derive(Debug, Default)]
pub struct MigrationReport {
    /// (table, rows in the source, rows in the target).
    pub tables: Vec<(String, i64, i64)>,
    pub blocks_source: usize,
    pub blocks_target: usize,
    pub blocks_copied: usize,
    pub blocks_verified: usize,
}

impl MigrationReport {
    pub fn ok(&self) -> bool {
        self.tables.iter().all(|(_, s, t)| s == t) && self.blocks_source == self.blocks_target
    }
}

fn decode<R: Row>(row: &R, cols: &[(&str, Ty)]) -> Result<Vec<Val>, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<Vec<u8>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    cols.iter()
        .map(|(name, ty)| {
            Ok(match ty {
                Ty::Int => Val::Int(row.try_get(*name)?),
                Ty::Text => Val::Text(row.try_get(*name)?),
                Ty::Blob => Val::Blob(row.try_get(*name)?),
            })
        })
        .collect()
}

async fn write_batch(
    target: &Db,
    table: &str,
    cols: &[(&str, Ty)],
    rows: &mut Vec<Vec<Val>>,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = cols.iter().map(|c| c.0).collect();
    let head = format!("INSERT INTO {table} ({})", names.join(", "));
    let mut tx = target.begin(None).await?;
    tx.insert_rows(&head, cols.len(), std::mem::take(rows), "")
        .await?;
    tx.commit(None).await?;
    Ok(())
}

async fn count(db: &Db, table: &str) -> Result<i64, StoreError> {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    Ok(on_db!(db, |c| sqlx::query_scalar::<_, i64>(
        sqlx::AssertSqlSafe(sql)
    )
    .fetch_one(c)
    .await?))
}

impl Store {
    /// Copies everything in this store into `target`, which must hold no accounts yet, then
    /// verifies the copy. This store is only read.
    pub async fn migrate_to(
        &self,
        target: &Store,
        progress: impl Fn(&str),
    ) -> Result<MigrationReport, StoreError> {
        if count(&target.db, "accounts").await? > 0 {
            return Err(StoreError::Invalid(
                "the target already holds accounts; migrate into empty back-ends".into(),
            ));
        }
        // The target's own first-start rows (built-in app, cursor key) give way to the source's,
        // so tokens and cursors issued before the move stay valid.
        for t in ["settings", "apps"] {
            let sql = format!("DELETE FROM {t}");
            let mut tx = target.db.begin(None).await?;
            on_tx!(&mut tx, |c| sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *c)
                .await?
                .rows_affected());
            tx.commit(None).await?;
        }
        let mut report = MigrationReport::default();
        for (table, cols) in TABLES {
            progress(&format!("copying table {table}"));
            let names: Vec<&str> = cols.iter().map(|c| c.0).collect();
            let select = format!("SELECT {} FROM {table}", names.join(", "));
            let per = batch_rows(table);
            let mut batch = Vec::with_capacity(per);
            on_db!(&self.db, |c| {
                let mut rows = sqlx::query(sqlx::AssertSqlSafe(select)).fetch(c);
                while let Some(row) = rows.next().await {
                    batch.push(decode(&row?, cols)?);
                    if batch.len() == per {
                        write_batch(&target.db, table, cols, &mut batch).await?;
                    }
                }
            });
            write_batch(&target.db, table, cols, &mut batch).await?;
            report.tables.push((
                table.to_string(),
                count(&self.db, table).await?,
                count(&target.db, table).await?,
            ));
        }
        // Upload sessions are not copied, so the target's counts come from its revisions.
        progress("counting block references");
        crate::schema::recount_refs(&target.db).await?;
        if let Db::Postgres { pool } = &target.db {
            for t in SERIAL_TABLES {
                let sql = format!(
                    "SELECT setval(pg_get_serial_sequence('{t}', 'id'), COALESCE((SELECT MAX(id) FROM {t}), 0) + 1, false)"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
            }
        }

        progress("copying blocks");
        let mut sample = Vec::with_capacity(VERIFY_SAMPLE);
        let mut seen = 0usize;
        let mut blocks = self.blocks.list();
        while let Some(hash) = blocks.next().await {
            let hash = hash?;
            if !target.blocks.contains(&hash).await? {
                let data = self.blocks.read_all(hash).await?;
                let stored = target.blocks.put(data).await?;
                target.blocks.sync(&[stored]).await?;
                if stored != hash {
                    return Err(StoreError::Invalid(format!(
                        "block {} in the source does not match its name",
                        cubby_core::hash::hex(&hash)
                    )));
                }
                report.blocks_copied += 1;
            }
            // Reservoir sampling: every block has the same chance to be verified.
            seen += 1;
            if sample.len() < VERIFY_SAMPLE {
                sample.push(hash);
            } else {
                let r = u64::from_le_bytes(crate::random_bytes()) as usize % seen;
                if r < VERIFY_SAMPLE {
                    sample[r] = hash;
                }
            }
        }
        report.blocks_source = self.blocks.count().await?;
        report.blocks_target = target.blocks.count().await?;
        progress("verifying a sample of blocks");
        for hash in sample {
            let data = target.blocks.read_all(hash).await?;
            if cubby_core::hash::block_hash(&data) != hash {
                return Err(StoreError::Invalid(format!(
                    "block {} differs in the target",
                    cubby_core::hash::hex(&hash)
                )));
            }
            report.blocks_verified += 1;
        }
        Ok(report)
    }
}

/// A stream of block hashes, for migrations and checks.
pub(crate) type BlockList<'a> = BoxStream<'a, Result<cubby_core::hash::BlockHash, StoreError>>;
