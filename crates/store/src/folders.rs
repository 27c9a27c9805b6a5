//! Shared folders: a folder several accounts work in together.
//!
//! A shared folder is a namespace of its own (its id is the shared folder's id on the wire,
//! and the `ns:` path form). Sharing a folder moves its entries, revisions, links and copy
//! references from the owner's home into the new namespace in one transaction: rows are
//! rewritten, no block is read or copied. Each member has a row in `folder_members` with
//! their access (owner, editor, viewer) and, once mounted, the lower-case path of the mount
//! point in their home: a folder entry there, which the home's listings and change feed show
//! like any folder. Everything below a mount point lives in the shared namespace; the server
//! resolves paths through the caller's mounts, and nothing is ever written below a mount
//! point in a home namespace.
//!
//! Security Invariant: an account reaches a shared namespace only through a row of its own
//! in `folder_members`; removing the row (or the folder) cuts it off.

use cubby_core::path::{is_within, lower};

use crate::accounts::{Account, account_from_row};
use crate::db::{RowExt, Tx, on_db, on_tx};
use crate::meta::{Kind, OpError, WriteTx, descendant_range};
use crate::{Store, StoreError};

/// What a member may do in a shared folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Owner,
    Editor,
    Viewer,
}

impl Access {
    pub fn to_db(self) -> &'static str {
        match self {
            Access::Owner => "owner",
            Access::Editor => "editor",
            Access::Viewer => "viewer",
        }
    }

    fn from_db(s: &str) -> Self {
        match s {
            "owner" => Access::Owner,
            "editor" => Access::Editor,
            _ => Access::Viewer,
        }
    }

    /// Whether this member may change the folder's contents.
    pub fn can_write(self) -> bool {
        self != Access::Viewer
    }
}

/// A shared folder as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedFolder {
    /// Its namespace, which is also its id on the wire.
    pub ns: u64,
    /// The owner's account row.
    pub owner: i64,
    /// The name it was shared under (a member mounts it under this name).
    pub name: String,
    pub member_policy: String,
    pub acl_update_policy: String,
    pub shared_link_policy: String,
    pub created: i64,
}

/// One account's membership of a shared folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub folder: SharedFolder,
    /// The member's account row.
    pub account: i64,
    pub access: Access,
    /// The mount point in the member's home, lower case and as displayed, when mounted.
    pub mount: Option<(String, String)>,
    pub invited: i64,
}

/// A member of a folder, with their account.
#[derive(Clone, Debug)]
pub struct Member {
    pub account: Account,
    pub access: Access,
    pub mounted: bool,
}

/// Why a sharing operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("not found")]
    NotFound,
    #[error("not a folder")]
    NotFolder,
    /// A shared folder is mounted at or below the folder.
    #[error("contains a shared folder")]
    ContainsShared,
    #[error("not a member")]
    NotMember,
    #[error("already mounted")]
    AlreadyMounted,
    #[error("not mounted")]
    NotMounted,
    /// The owner cannot be removed, nor leave.
    #[error("the folder's owner")]
    Owner,
    #[error(transparent)]
    Op(#[from] OpError),
}

impl From<StoreError> for FolderError {
    fn from(e: StoreError) -> Self {
        FolderError::Op(OpError::Internal(e))
    }
}

impl From<sqlx::Error> for FolderError {
    fn from(e: sqlx::Error) -> Self {
        FolderError::Op(OpError::from(e))
    }
}

const FOLDER_COLUMNS: &str = "f.ns, f.owner, f.name, f.member_policy, f.acl_update_policy, \
     f.shared_link_policy, f.created";

/// The memberships of one account with their mount points' display paths (the mount point
/// is a folder entry of the member's home).
const MEMBERSHIPS: &str = "SELECT f.ns, f.owner, f.name, f.member_policy, f.acl_update_policy, \
     f.shared_link_policy, f.created, m.account, m.access, m.mount_lower, m.invited, \
     e.path_display AS mount_display \
     FROM folder_members m JOIN shared_folders f ON f.ns = m.ns \
     JOIN accounts a ON a.id = m.account \
     LEFT JOIN entries e ON e.ns = a.ns AND e.path_lower = m.mount_lower AND e.kind = 1 \
     WHERE m.account = $1";

fn folder_from_row(r: &impl RowExt) -> Result<SharedFolder, sqlx::Error> {
    Ok(SharedFolder {
        ns: r.int("ns")? as u64,
        owner: r.int("owner")?,
        name: r.text("name")?,
        member_policy: r.text("member_policy")?,
        acl_update_policy: r.text("acl_update_policy")?,
        shared_link_policy: r.text("shared_link_policy")?,
        created: r.int("created")?,
    })
}

fn membership_from_row(r: &impl RowExt) -> Result<Membership, sqlx::Error> {
    let mount = match (r.opt_text("mount_lower")?, r.opt_text("mount_display")?) {
        (Some(l), Some(d)) => Some((l, d)),
        _ => None,
    };
    Ok(Membership {
        folder: folder_from_row(r)?,
        account: r.int("account")?,
        access: Access::from_db(&r.text("access")?),
        mount,
        invited: r.int("invited")?,
    })
}

impl WriteTx {
    /// Locks another namespace than the transaction's own for the rest of the transaction
    /// (PostgreSQL; SQLite has one writer), for an operation that changes both.
    async fn lock_namespace(&mut self, ns: u64) -> Result<(), OpError> {
        if let Tx::Pg(t) = &mut self.tx {
            sqlx::query("SELECT seq FROM namespaces WHERE id = $1 FOR UPDATE")
                .bind(ns as i64)
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }

    /// Forgets the mount points of this home's account at or below `top_lower` (a folder of
    /// the home deleted), or moves them to `to_lower` (the folder moved): the mount points
    /// are entries of the home and went with it.
    pub(crate) async fn follow_mounts(
        &mut self,
        top_lower: &str,
        to_lower: Option<&str>,
    ) -> Result<(), OpError> {
        let ns = self.ns as i64;
        let (lo, hi) = descendant_range(top_lower);
        let to_lower = to_lower.map(str::to_owned);
        on_tx!(&mut self.tx, |c| {
            sqlx::query(
                "UPDATE folder_members SET mount_lower = CASE WHEN $1 IS NULL THEN NULL \
                   ELSE $1 || substr(mount_lower, length($2) + 1) END \
                 WHERE account IN (SELECT id FROM accounts WHERE ns = $3) \
                 AND (mount_lower = $2 OR (mount_lower >= $4 AND mount_lower < $5))",
            )
            .bind(to_lower.clone())
            .bind(top_lower)
            .bind(ns)
            .bind(&lo)
            .bind(&hi)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Whether this home's account has a folder mounted at or below `top_lower`.
    pub(crate) async fn holds_mounts(&mut self, top_lower: &str) -> Result<bool, OpError> {
        let ns = self.ns as i64;
        let (lo, hi) = descendant_range(top_lower);
        let n: i64 = on_tx!(&mut self.tx, |c| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM folder_members WHERE account IN \
                 (SELECT id FROM accounts WHERE ns = $1) \
                 AND (mount_lower = $2 OR (mount_lower >= $3 AND mount_lower < $4))",
            )
            .bind(ns)
            .bind(top_lower)
            .bind(&lo)
            .bind(&hi)
            .fetch_one(&mut *c)
            .await?
        });
        Ok(n > 0)
    }

    /// Moves every row strictly below `from_lower` of this transaction's namespace (`""`: the
    /// whole namespace) into `to_ns`, re-rooted at `to_lower`/`to_display`: entries, the
    /// revisions, links and copy references of the moved files. Each statement reads an index
    /// range of what moves, never a whole namespace. Returns the logical size of the live files
    /// moved.
    async fn move_rows(
        &mut self,
        from_lower: &str,
        from_display: &str,
        to_ns: u64,
        to_lower: &str,
        to_display: &str,
    ) -> Result<i64, OpError> {
        let ns = self.ns as i64;
        let whole = from_lower.is_empty();
        let (lo, hi) = descendant_range(from_lower);
        let (from_lower, from_display) = (from_lower.to_owned(), from_display.to_owned());
        let (to_lower, to_display) = (to_lower.to_owned(), to_display.to_owned());
        let to_ns = to_ns as i64;
        let moved: i64 = on_tx!(&mut self.tx, |c| {
            let moved: i64 = sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM entries \
                 WHERE ns = $1 AND path_lower >= $2 AND path_lower < $3 AND kind = 0",
            )
            .bind(ns)
            .bind(&lo)
            .bind(&hi)
            .fetch_one(&mut *c)
            .await?;
            // `substr` and `length` count characters on both back-ends. The revisions of the
            // moved files (found by their ids: revisions have no index by path) go along; a
            // revision written elsewhere before the file came into the folder keeps its path.
            let rewrite = |col: &str| {
                format!(
                    "{col} = CASE WHEN path_lower >= $7 AND path_lower < $8 \
                       THEN {v} || substr({col}, length({from}) + 1) ELSE {col} END",
                    v = if col == "path_display" { "$3" } else { "$1" },
                    from = if col == "path_display" { "$4" } else { "$2" },
                )
            };
            let statements = [
                format!(
                    "UPDATE entries SET ns = $6, {}, {}, {} \
                     WHERE ns = $5 AND path_lower >= $7 AND path_lower < $8",
                    rewrite("path_lower"),
                    rewrite("parent_lower"),
                    rewrite("path_display"),
                ),
                if whole {
                    format!(
                        "UPDATE revisions SET ns = $6, {}, {} WHERE ns = $5",
                        rewrite("path_lower"),
                        rewrite("path_display"),
                    )
                } else {
                    format!(
                        "UPDATE revisions SET ns = $6, {}, {} WHERE ns = $5 AND file_id IN \
                         (SELECT file_id FROM entries WHERE ns = $6 AND file_id IS NOT NULL)",
                        rewrite("path_lower"),
                        rewrite("path_display"),
                    )
                },
            ];
            for sql in statements {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(&to_lower)
                    .bind(&from_lower)
                    .bind(&to_display)
                    .bind(&from_display)
                    .bind(ns)
                    .bind(to_ns)
                    .bind(&lo)
                    .bind(&hi)
                    .execute(&mut *c)
                    .await?;
            }
            for table in ["shared_links", "copy_refs"] {
                let sql = if whole {
                    format!("UPDATE {table} SET ns = $1 WHERE ns = $2")
                } else {
                    format!(
                        "UPDATE {table} SET ns = $1 WHERE ns = $2 AND file_id IN \
                         (SELECT file_id FROM entries WHERE ns = $1 AND file_id IS NOT NULL)"
                    )
                };
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(to_ns)
                    .bind(ns)
                    .execute(&mut *c)
                    .await?;
            }
            sqlx::query("UPDATE namespaces SET used = used + $1 WHERE id = $2")
                .bind(moved)
                .bind(to_ns)
                .execute(&mut *c)
                .await?;
            moved
        });
        self.charge(-moved).await?;
        Ok(moved)
    }
}

impl Store {
    /// Shares the folder at `path_lower` of `owner`'s home: a new namespace takes everything
    /// below it, and the folder stays where it was as the owner's mount point. Rows move;
    /// no block is read or copied.
    pub async fn share_folder(
        &self,
        owner: &Account,
        path_lower: &str,
    ) -> Result<SharedFolder, FolderError> {
        let (path_lower, owner_id) = (path_lower.to_owned(), owner.id);
        let shared = self
            .write(owner.ns, move |tx| {
                Box::pin(async move {
                    let top = match tx.live(&path_lower).await? {
                        None => return Ok(Err(FolderError::NotFound)),
                        Some(e) if e.kind != Kind::Folder => {
                            return Ok(Err(FolderError::NotFolder));
                        }
                        Some(e) => e,
                    };
                    if tx.holds_mounts(&path_lower).await? {
                        return Ok(Err(FolderError::ContainsShared));
                    }
                    let (home, now) = (tx.ns as i64, tx.now);
                    // The new namespace's sequence starts where the home's is, so revs
                    // written in it never repeat a moved revision's.
                    let ns: i64 = on_tx!(&mut tx.tx, |c| {
                        sqlx::query_scalar(
                            "INSERT INTO namespaces (seq, created) \
                             SELECT seq, $1 FROM namespaces WHERE id = $2 RETURNING id",
                        )
                        .bind(now)
                        .bind(home)
                        .fetch_one(&mut *c)
                        .await?
                    });
                    tx.move_rows(&top.path_lower, &top.path_display, ns as u64, "", "")
                        .await?;
                    let folder = SharedFolder {
                        ns: ns as u64,
                        owner: owner_id,
                        name: top.name().to_owned(),
                        member_policy: "anyone".into(),
                        acl_update_policy: "owner".into(),
                        shared_link_policy: "anyone".into(),
                        created: now,
                    };
                    on_tx!(&mut tx.tx, |c| {
                        sqlx::query(
                            "INSERT INTO shared_folders (ns, owner, name, created) \
                             VALUES ($1, $2, $3, $4)",
                        )
                        .bind(ns)
                        .bind(owner_id)
                        .bind(&folder.name)
                        .bind(now)
                        .execute(&mut *c)
                        .await?;
                        sqlx::query(
                            "INSERT INTO folder_members (ns, account, access, mount_lower, \
                             invited) VALUES ($1, $2, 'owner', $3, $4)",
                        )
                        .bind(ns)
                        .bind(owner_id)
                        .bind(&top.path_lower)
                        .bind(now)
                        .execute(&mut *c)
                        .await?
                        .rows_affected()
                    });
                    // The home's feed names the folder again: it now carries sharing info.
                    tx.journal(&top.path_lower).await?;
                    Ok(Ok(folder))
                })
            })
            .await??;
        Ok(shared)
    }

    /// A shared folder by its namespace.
    pub async fn shared_folder(&self, ns: u64) -> Result<Option<SharedFolder>, StoreError> {
        on_db!(&self.db, |c| {
            let sql = format!("SELECT {FOLDER_COLUMNS} FROM shared_folders f WHERE f.ns = $1");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(ns as i64)
                .fetch_optional(c)
                .await?;
            Ok(row.map(|r| folder_from_row(&r)).transpose()?)
        })
    }

    /// Every shared folder `account` (a row id) is a member of, mounted or not, oldest
    /// first.
    pub async fn memberships(&self, account: i64) -> Result<Vec<Membership>, StoreError> {
        on_db!(&self.db, |c| {
            let sql = format!("{MEMBERSHIPS} ORDER BY f.ns");
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(account)
                .fetch_all(c)
                .await?;
            Ok(rows
                .iter()
                .map(membership_from_row)
                .collect::<Result<_, _>>()?)
        })
    }

    /// `account`'s membership of the folder `ns`, if any.
    pub async fn membership(
        &self,
        ns: u64,
        account: i64,
    ) -> Result<Option<Membership>, StoreError> {
        on_db!(&self.db, |c| {
            let sql = format!("{MEMBERSHIPS} AND f.ns = $2");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(account)
                .bind(ns as i64)
                .fetch_optional(c)
                .await?;
            Ok(row.map(|r| membership_from_row(&r)).transpose()?)
        })
    }

    /// The folder's members with their accounts, the owner first, then by name.
    pub async fn folder_members(&self, ns: u64) -> Result<Vec<Member>, StoreError> {
        on_db!(&self.db, |c| {
            let rows = sqlx::query(
                "SELECT a.id, a.account_id, a.name, a.email, a.disabled, a.ns, a.quota, \
                 a.operator, m.access, m.mount_lower FROM folder_members m \
                 JOIN accounts a ON a.id = m.account WHERE m.ns = $1 \
                 ORDER BY CASE m.access WHEN 'owner' THEN 0 ELSE 1 END, a.name",
            )
            .bind(ns as i64)
            .fetch_all(c)
            .await?;
            Ok(rows
                .iter()
                .map(|r| -> Result<Member, sqlx::Error> {
                    Ok(Member {
                        account: account_from_row(r)?,
                        access: Access::from_db(&r.text("access")?),
                        mounted: r.opt_text("mount_lower")?.is_some(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Adds `account` to the folder with `access`; a member already there keeps theirs.
    /// Returns whether they were added.
    pub async fn add_folder_member(
        &self,
        ns: u64,
        account: i64,
        access: Access,
    ) -> Result<bool, OpError> {
        self.write_plain(move |tx| {
            Box::pin(async move {
                let now = tx.now;
                let n = on_tx!(&mut tx.tx, |c| {
                    sqlx::query(
                        "INSERT INTO folder_members (ns, account, access, invited) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (ns, account) DO NOTHING",
                    )
                    .bind(ns as i64)
                    .bind(account)
                    .bind(access.to_db())
                    .bind(now)
                    .execute(&mut *c)
                    .await?
                    .rows_affected()
                });
                Ok(n > 0)
            })
        })
        .await
    }

    /// Changes a member's access (never the owner's: see [`Store::transfer_folder`]).
    pub async fn set_folder_access(
        &self,
        ns: u64,
        account: i64,
        access: Access,
    ) -> Result<(), FolderError> {
        self.write_plain(move |tx| {
            Box::pin(async move {
                let n = on_tx!(&mut tx.tx, |c| {
                    sqlx::query(
                        "UPDATE folder_members SET access = $1 \
                         WHERE ns = $2 AND account = $3 AND access <> 'owner'",
                    )
                    .bind(access.to_db())
                    .bind(ns as i64)
                    .bind(account)
                    .execute(&mut *c)
                    .await?
                    .rows_affected()
                });
                Ok(n)
            })
        })
        .await
        .map_err(FolderError::Op)
        .and_then(|n| {
            if n == 1 {
                Ok(())
            } else {
                Err(FolderError::NotMember)
            }
        })
    }

    /// Makes another member the owner; the old owner becomes an editor.
    pub async fn transfer_folder(&self, ns: u64, to: i64) -> Result<(), FolderError> {
        let n = self
            .write_plain(move |tx| {
                Box::pin(async move {
                    let ns = ns as i64;
                    let n = on_tx!(&mut tx.tx, |c| {
                        let n = sqlx::query(
                            "UPDATE folder_members SET access = 'owner' WHERE ns = $1 AND account = $2",
                        )
                        .bind(ns)
                        .bind(to)
                        .execute(&mut *c)
                        .await?
                        .rows_affected();
                        if n == 1 {
                            sqlx::query(
                                "UPDATE folder_members SET access = 'editor' \
                                 WHERE ns = $1 AND account <> $2 AND access = 'owner'",
                            )
                            .bind(ns)
                            .bind(to)
                            .execute(&mut *c)
                            .await?;
                            sqlx::query("UPDATE shared_folders SET owner = $1 WHERE ns = $2")
                                .bind(to)
                                .bind(ns)
                                .execute(&mut *c)
                                .await?;
                        }
                        n
                    });
                    Ok(n)
                })
            })
            .await?;
        if n == 1 {
            Ok(())
        } else {
            Err(FolderError::NotMember)
        }
    }

    /// Sets the folder's policies (`None` leaves one as it is).
    pub async fn set_folder_policy(
        &self,
        ns: u64,
        member_policy: Option<String>,
        acl_update_policy: Option<String>,
        shared_link_policy: Option<String>,
    ) -> Result<(), OpError> {
        self.write_plain(move |tx| {
            Box::pin(async move {
                on_tx!(&mut tx.tx, |c| {
                    sqlx::query(
                        "UPDATE shared_folders SET \
                         member_policy = COALESCE($1, member_policy), \
                         acl_update_policy = COALESCE($2, acl_update_policy), \
                         shared_link_policy = COALESCE($3, shared_link_policy) WHERE ns = $4",
                    )
                    .bind(member_policy.clone())
                    .bind(acl_update_policy.clone())
                    .bind(shared_link_policy.clone())
                    .bind(ns as i64)
                    .execute(&mut *c)
                    .await?
                    .rows_affected()
                });
                Ok(())
            })
        })
        .await
    }

    /// Mounts the folder in `member`'s home under its name (numbered if the name is taken).
    pub async fn mount_folder(&self, ns: u64, member: &Account) -> Result<Membership, FolderError> {
        let Some(m) = self.membership(ns, member.id).await? else {
            return Err(FolderError::NotMember);
        };
        if m.mount.is_some() {
            return Err(FolderError::AlreadyMounted);
        }
        let (name, account, size) = (m.folder.name.clone(), member.id, self.space_used(ns).await?);
        let mounted = self
            .write(member.ns, move |tx| {
                Box::pin(async move {
                    // A mounted folder counts against each member's quota.
                    if !tx.fits(size).await? {
                        return Err(OpError::InsufficientSpace);
                    }
                    let display = tx.claim_name("", &name, true).await?;
                    tx.insert_folder(&display).await?;
                    let n = on_tx!(&mut tx.tx, |c| {
                        sqlx::query(
                            "UPDATE folder_members SET mount_lower = $1 \
                             WHERE ns = $2 AND account = $3 AND mount_lower IS NULL",
                        )
                        .bind(lower(&display))
                        .bind(ns as i64)
                        .bind(account)
                        .execute(&mut *c)
                        .await?
                        .rows_affected()
                    });
                    // Mounted meanwhile (or removed): the transaction is undone.
                    if n != 1 {
                        return Err(OpError::Conflict(crate::meta::WriteConflict::Folder));
                    }
                    Ok(display)
                })
            })
            .await;
        match mounted {
            Ok(_) => {}
            Err(OpError::Conflict(_)) => {
                return Err(match self.membership(ns, member.id).await? {
                    Some(_) => FolderError::AlreadyMounted,
                    None => FolderError::NotMember,
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.membership(ns, member.id)
            .await?
            .ok_or(FolderError::NotMember)
    }

    /// Takes the folder out of `member`'s home (they stay a member and may mount it again).
    pub async fn unmount_folder(&self, ns: u64, member: &Account) -> Result<(), FolderError> {
        let Some(m) = self.membership(ns, member.id).await? else {
            return Err(FolderError::NotMember);
        };
        let Some((mount_lower, _)) = m.mount else {
            return Err(FolderError::NotMounted);
        };
        // Deleting the mount point forgets the mount (`follow_mounts`).
        self.delete(member.ns, &mount_lower, None).await?;
        Ok(())
    }

    /// Removes `member` from the folder: unmounted, and with `leave_a_copy`, a copy of the
    /// folder's contents stays where it was mounted. The owner cannot be removed.
    pub async fn remove_folder_member(
        &self,
        ns: u64,
        member: &Account,
        leave_a_copy: bool,
    ) -> Result<(), FolderError> {
        let Some(m) = self.membership(ns, member.id).await? else {
            return Err(FolderError::NotMember);
        };
        if m.access == Access::Owner {
            return Err(FolderError::Owner);
        }
        let items = match (&m.mount, leave_a_copy) {
            (Some(_), true) => Some(self.folder_items(ns).await?),
            _ => None,
        };
        let (account, mount) = (member.id, m.mount.clone());
        self.write(member.ns, move |tx| {
            Box::pin(async move {
                if let Some((mount_lower, mount_display)) = &mount {
                    crate::meta::delete_op(tx, mount_lower.clone(), None).await?;
                    if let Some(items) = items {
                        crate::copyref::place(tx, mount_display.clone(), items).await?;
                    }
                }
                on_tx!(&mut tx.tx, |c| {
                    sqlx::query("DELETE FROM folder_members WHERE ns = $1 AND account = $2")
                        .bind(ns as i64)
                        .bind(account)
                        .execute(&mut *c)
                        .await?
                        .rows_affected()
                });
                Ok(())
            })
        })
        .await?;
        Ok(())
    }

    /// Everything in a shared folder, as a copy would recreate it.
    async fn folder_items(&self, ns: u64) -> Result<crate::copyref::Items, FolderError> {
        use crate::copyref::SaveRefError;
        self.subtree_items(ns, "", "").await.map_err(|e| match e {
            SaveRefError::TooManyFiles => OpError::TooManyFiles.into(),
            SaveRefError::Write(e) => e.into(),
            _ => FolderError::NotFound,
        })
    }

    /// Stops sharing: the owner keeps the contents in their home (where it was mounted, or
    /// under its name), every other member loses the mount and, with `leave_a_copy`, keeps a
    /// copy in its place. The namespace is left empty.
    pub async fn unshare_folder(&self, ns: u64, leave_a_copy: bool) -> Result<(), FolderError> {
        let Some(folder) = self.shared_folder(ns).await? else {
            return Err(FolderError::NotFound);
        };
        for m in self.folder_members(ns).await? {
            if m.access != Access::Owner {
                self.remove_folder_member(ns, &m.account, leave_a_copy)
                    .await?;
            }
        }
        let Some(owner) = self.account_by_id(folder.owner).await? else {
            return Err(FolderError::NotFound);
        };
        let mount = self.membership(ns, owner.id).await?.and_then(|m| m.mount);
        let name = folder.name.clone();
        self.write(owner.ns, move |tx| {
            Box::pin(async move {
                tx.lock_namespace(ns).await?;
                let (top_lower, top_display) = match mount {
                    Some(m) => m,
                    None => {
                        let display = tx.claim_name("", &name, true).await?;
                        tx.insert_folder(&display).await?;
                        (lower(&display), display)
                    }
                };
                // The rows come back from the shared namespace (a write of it, whose
                // sequence the owner's home does not share: the moved rows are journaled).
                let home = tx.ns;
                tx.ns = ns;
                let moved = tx.move_rows("", "", home, &top_lower, &top_display).await;
                tx.ns = home;
                let moved = moved?;
                // Not a growth of the owner's usage: the mounted folder counted already.
                let home = home as i64;
                on_tx!(&mut tx.tx, |c| {
                    sqlx::query("UPDATE namespaces SET used = used + $1 WHERE id = $2")
                        .bind(moved)
                        .bind(home)
                        .execute(&mut *c)
                        .await?
                        .rows_affected()
                });
                tx.journal(&top_lower).await?;
                tx.journal_descendants(&top_lower).await?;
                on_tx!(&mut tx.tx, |c| {
                    sqlx::query("DELETE FROM folder_members WHERE ns = $1")
                        .bind(ns as i64)
                        .execute(&mut *c)
                        .await?;
                    sqlx::query("DELETE FROM shared_folders WHERE ns = $1")
                        .bind(ns as i64)
                        .execute(&mut *c)
                        .await?
                        .rows_affected()
                });
                Ok(())
            })
        })
        .await?;
        Ok(())
    }

    /// Whether `ns` is a shared folder `account` is a member of, with their access.
    pub async fn folder_access(&self, ns: u64, account: i64) -> Result<Option<Access>, StoreError> {
        on_db!(&self.db, |c| {
            let access: Option<String> = sqlx::query_scalar(
                "SELECT access FROM folder_members WHERE ns = $1 AND account = $2",
            )
            .bind(ns as i64)
            .bind(account)
            .fetch_optional(c)
            .await?;
            Ok(access.map(|a| Access::from_db(&a)))
        })
    }
}

/// Whether `path_lower` of a home lies strictly inside the mount point `mount_lower`.
pub fn below_mount(path_lower: &str, mount_lower: &str) -> bool {
    path_lower != mount_lower && is_within(path_lower, mount_lower)
}

impl Store {
    /// Moves or copies an item from one namespace to another (a home and a shared folder
    /// mounted in it, or two shared folders): the destination gets a copy sharing the
    /// source's blocks, then a move deletes the source. Two transactions: a crash between
    /// them leaves both, never neither.
    pub async fn relocate_across(
        &self,
        from_ns: u64,
        from_lower: &str,
        to_ns: u64,
        to: &str,
        copy: bool,
        autorename: bool,
    ) -> Result<crate::meta::Entry, OpError> {
        use crate::copyref::SaveRefError;
        let src = self
            .entry(from_ns, from_lower)
            .await?
            .filter(|e| e.kind != Kind::Deleted)
            .ok_or(OpError::Source(Box::new(OpError::NotFound)))?;
        let items = match src.kind {
            Kind::Folder => self
                .subtree_items(from_ns, &src.path_lower, &src.path_display)
                .await
                .map_err(|e| match e {
                    SaveRefError::TooManyFiles => OpError::TooManyFiles,
                    SaveRefError::Write(e) => e,
                    _ => OpError::Source(Box::new(OpError::NotFound)),
                })?,
            _ => {
                let revision = src.revision.ok_or(OpError::NotFound)?;
                let blocks = self.revision_blocks(revision).await?;
                vec![(String::new(), Some((src.size, src.client_modified, blocks)))]
            }
        };
        let to = to.to_owned();
        let placed = self
            .write(to_ns, move |tx| {
                Box::pin(async move {
                    if cubby_core::path::is_disallowed_name(cubby_core::path::name_of(&to)) {
                        return Err(OpError::DisallowedName);
                    }
                    let parent = tx.ensure_parents(&to).await?;
                    let display = tx
                        .claim_name(&parent, cubby_core::path::name_of(&to), autorename)
                        .await?;
                    let items = items
                        .into_iter()
                        .map(|(rel, file)| {
                            crate::meta::NewItem::at(format!("{display}{rel}"), file)
                        })
                        .collect();
                    crate::meta::first(tx.insert_tree(items).await?)
                })
            })
            .await?;
        if !copy {
            self.delete(from_ns, &src.path_lower, None).await?;
        }
        Ok(placed)
    }
}
