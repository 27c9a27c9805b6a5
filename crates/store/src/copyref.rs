//! Copy references: content moves between accounts without its bytes.
//!
//! `mint_copy_ref` hands out 256 random bits bound to a file revision (or a folder) the caller
//! could read; only their SHA-256 is stored. `save_copy_ref` places that content in another
//! (or the same) namespace as new revisions over the same block lists, in one write
//! transaction of the destination: no block is read or written, whatever the size.
//!
//! Security Invariant: a reference is the only way content crosses accounts, and it names a
//! file, never a hash; nothing tells one account whether another stores some content.

use cubby_core::hash::BlockHash;
use cubby_core::ids;
use cubby_core::path::name_of;

use crate::db::{RowExt, on_db, on_tx};
use crate::meta::{
    Entry, Kind, MAX_RELOCATION_ENTRIES, NewItem, OpError, SUBTREE, SubtreeRow, WriteTx,
    blob_to_blocks, descendant_range, first, subtree_row,
};
use crate::tokens::token_hash;
use crate::{Store, StoreError, now, random_bytes};

/// How long a reference stays valid. Dropbox sets `expires` "far enough in the future so that
/// expiration is effectively not an issue"; so does Cubby, and it still enforces it.
pub const COPY_REF_SECS: i64 = 30 * 365 * 24 * 3600;

/// Why a reference could not be saved (Dropbox's `SaveCopyReferenceError` tags).
#[derive(Debug, thiserror::Error)]
pub enum SaveRefError {
    /// Unknown, forged, malformed or expired.
    #[error("invalid copy reference")]
    Invalid,
    /// The source account is disabled.
    #[error("no permission")]
    NoPermission,
    /// The source was deleted (or its revision is gone).
    #[error("not found")]
    NotFound,
    #[error("too many files")]
    TooManyFiles,
    /// Writing at the destination failed (a `WriteError`, or an internal error).
    #[error(transparent)]
    Write(#[from] OpError),
}

impl From<StoreError> for SaveRefError {
    fn from(e: StoreError) -> Self {
        SaveRefError::Write(OpError::Internal(e))
    }
}

impl From<sqlx::Error> for SaveRefError {
    fn from(e: sqlx::Error) -> Self {
        SaveRefError::Write(OpError::from(e))
    }
}

/// What to recreate at the destination: paths relative to the reference's top (`""` for
/// the top itself), with each file's content.
pub(crate) type Items = Vec<SubtreeRow>;

impl Store {
    /// Mints a reference to a live file (bound to its current revision) or folder of `ns`
    /// that `account` can read. Returns the reference and its expiry.
    pub async fn mint_copy_ref(
        &self,
        ns: u64,
        account: i64,
        entry: &Entry,
    ) -> Result<(String, i64), StoreError> {
        let reference = ids::token("", random_bytes());
        let file_id = entry
            .id
            .clone()
            .ok_or_else(|| StoreError::Invalid("a copy reference needs a live item".into()))?;
        let expires = now() + COPY_REF_SECS;
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| sqlx::query(
            "INSERT INTO copy_refs (ref_hash, ns, account, file_id, revision, created, expires) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token_hash(&reference))
        .bind(ns as i64)
        .bind(account)
        .bind(&file_id)
        .bind(if entry.kind == Kind::File {
            entry.revision
        } else {
            None
        })
        .bind(now())
        .bind(expires)
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit(None).await?;
        Ok((reference, expires))
    }

    /// Saves a reference at `dest` (a full display path of `dest_ns`; it must be free).
    pub async fn save_copy_ref(
        &self,
        reference: &str,
        dest_ns: u64,
        dest: &str,
    ) -> Result<Entry, SaveRefError> {
        let row = on_db!(&self.db, |c| {
            let row = sqlx::query(
                "SELECT r.ns, r.file_id, r.revision, r.expires, a.disabled, \
                 CAST(CASE WHEN a.ns = r.ns OR EXISTS (SELECT 1 FROM folder_members m \
                   WHERE m.ns = r.ns AND m.account = r.account) THEN 0 ELSE 1 END AS BIGINT) \
                 AS gone \
                 FROM copy_refs r JOIN accounts a ON a.id = r.account WHERE r.ref_hash = $1",
            )
            .bind(token_hash(reference))
            .fetch_optional(c)
            .await?;
            row.map(|r| -> Result<_, sqlx::Error> {
                Ok((
                    r.int("ns")? as u64,
                    r.text("file_id")?,
                    r.opt_int("revision")?,
                    r.int("expires")?,
                    // Disabled, or no longer a member of the shared folder it names.
                    r.int("disabled")? != 0 || r.int("gone")? != 0,
                ))
            })
            .transpose()?
        });
        let Some((src_ns, file_id, revision, expires, disabled)) = row else {
            return Err(SaveRefError::Invalid);
        };
        if expires <= now() {
            return Err(SaveRefError::Invalid);
        }
        if disabled {
            return Err(SaveRefError::NoPermission);
        }
        let Some(top) = self.entry_by_id(src_ns, &file_id).await? else {
            return Err(SaveRefError::NotFound);
        };
        let items = match revision {
            Some(rev) => {
                let Some(file) = self.revision_content(rev).await? else {
                    return Err(SaveRefError::NotFound);
                };
                vec![(String::new(), Some(file))]
            }
            None => self.subtree(src_ns, &top).await?,
        };
        let dest = dest.to_owned();
        Ok(self
            .write(dest_ns, move |tx| Box::pin(place(tx, dest, items)))
            .await?)
    }

    /// Size, client_modified and blocks of a revision row.
    async fn revision_content(
        &self,
        revision: i64,
    ) -> Result<Option<(u64, i64, Vec<BlockHash>)>, StoreError> {
        on_db!(&self.db, |c| {
            let row =
                sqlx::query("SELECT size, client_modified, blocks FROM revisions WHERE id = $1")
                    .bind(revision)
                    .fetch_optional(c)
                    .await?;
            Ok(row
                .map(|r| -> Result<_, sqlx::Error> {
                    Ok((
                        r.int("size")? as u64,
                        r.int("client_modified")?,
                        blob_to_blocks(&r.bytes("blocks")?),
                    ))
                })
                .transpose()?)
        })
    }

    /// A folder and everything live below it, parents before children, with each file's
    /// current content; at most [`MAX_RELOCATION_ENTRIES`] items.
    async fn subtree(&self, ns: u64, top: &Entry) -> Result<Items, SaveRefError> {
        self.subtree_items(ns, &top.path_lower, &top.path_display)
            .await
    }

    /// [`Store::subtree`] of the folder at `top_lower` (`""`: the namespace's root).
    pub(crate) async fn subtree_items(
        &self,
        ns: u64,
        top_lower: &str,
        top_display: &str,
    ) -> Result<Items, SaveRefError> {
        let (lo, hi) = descendant_range(top_lower);
        let rows = on_db!(&self.db, |c| {
            let rows = sqlx::query(SUBTREE)
                .bind(ns as i64)
                .bind(&lo)
                .bind(&hi)
                .bind(MAX_RELOCATION_ENTRIES)
                .fetch_all(c)
                .await?;
            rows.iter()
                .map(subtree_row)
                .collect::<Result<Vec<_>, _>>()?
        });
        if rows.len() as i64 + 1 > MAX_RELOCATION_ENTRIES {
            return Err(SaveRefError::TooManyFiles);
        }
        let prefix_chars = top_display.chars().count();
        let mut items = vec![(String::new(), None)];
        items.extend(
            rows.into_iter()
                .map(|(display, file)| (display.chars().skip(prefix_chars).collect(), file)),
        );
        Ok(items)
    }
}

/// Recreates the items under `dest` in one write transaction of the destination namespace.
pub(crate) async fn place(tx: &mut WriteTx, dest: String, items: Items) -> Result<Entry, OpError> {
    if cubby_core::path::is_disallowed_name(name_of(&dest)) {
        return Err(OpError::DisallowedName);
    }
    let parent = tx.ensure_parents(&dest).await?;
    let display = tx.claim_name(&parent, name_of(&dest), false).await?;
    let items = items
        .into_iter()
        .map(|(rel, file)| NewItem::at(format!("{display}{rel}"), file))
        .collect();
    first(tx.insert_tree(items).await?)
}
