//! Shared links: a URL that lets anyone holding it read one file or folder of an account.
//!
//! A link names an item by its file id within its namespace, so it follows the item through
//! moves and renames and stops working when the item is deleted. Its token is 256 bits
//! derived with the installation's link key from a random nonce kept in the row: the row
//! stores the nonce and the token's SHA-256 (for lookup), never the token, and the owner's
//! link list can still show each URL. A password is kept as an Argon2id hash.
//!
//! Security Invariant: a token is only ever looked up by its digest; nothing here tells one
//! account anything about another's links or content.

use cubby_core::ids;

use crate::db::{RowExt, on_db, on_tx, placeholders};
use crate::tokens::token_hash;
use crate::{Store, StoreError, now, random_bytes};

/// The label of link tokens derived with the link key.
const TOKEN_LABEL: &str = "shared-link-token";

/// Who a link serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// Anyone holding the URL (and the password, when one is set).
    Public,
    /// Nobody but the owner: the link only points at the item.
    NoOne,
}

impl Audience {
    fn to_db(self) -> &'static str {
        match self {
            Audience::Public => "public",
            Audience::NoOne => "no_one",
        }
    }

    fn from_db(s: &str) -> Self {
        if s == "public" {
            Audience::Public
        } else {
            Audience::NoOne
        }
    }
}

/// A shared link as stored, with its token.
#[derive(Clone, Debug)]
pub struct SharedLink {
    pub id: i64,
    pub token: String,
    pub ns: u64,
    /// The owner's account row.
    pub account: i64,
    pub file_id: String,
    pub audience: Audience,
    pub password_hash: Option<String>,
    pub expires: Option<i64>,
    pub allow_download: bool,
    pub created: i64,
    /// The owner's account is disabled: the link serves nothing.
    pub owner_disabled: bool,
}

impl SharedLink {
    pub fn expired(&self) -> bool {
        self.expires.is_some_and(|e| e <= now())
    }
}

/// The settings of a new link.
#[derive(Clone, Debug)]
pub struct NewLink {
    pub audience: Audience,
    pub password: Option<String>,
    pub expires: Option<i64>,
    pub allow_download: bool,
}

/// What changes on a link; `None` keeps a setting as it is.
#[derive(Clone, Debug, Default)]
pub struct LinkChanges {
    pub audience: Option<Audience>,
    /// `Some(None)` removes the password, `Some(Some(p))` sets one.
    pub password: Option<Option<String>>,
    /// `Some(None)` removes the expiry.
    pub expires: Option<Option<i64>>,
    pub allow_download: Option<bool>,
}

/// The outcome of creating a link.
#[derive(Debug)]
pub enum Created {
    New(SharedLink),
    /// The account already has a link to the item.
    Exists(SharedLink),
}

/// A link row with its owner's state.
const LINK_COLUMNS: &str = "SELECT l.id, l.nonce, l.ns, l.account, l.file_id, l.audience, \
     l.password_hash, l.expires, l.allow_download, l.created, a.disabled \
     FROM shared_links l JOIN accounts a ON a.id = l.account";

/// A link row with its owner's state and its live item's lower path.
const LINK_ITEM_COLUMNS: &str = "SELECT l.id, l.nonce, l.ns, l.account, l.file_id, l.audience, \
     l.password_hash, l.expires, l.allow_download, l.created, a.disabled, e.path_lower \
     FROM shared_links l JOIN accounts a ON a.id = l.account \
     JOIN entries e ON e.ns = l.ns AND e.file_id = l.file_id AND e.kind < 2";

impl Store {
    /// The key link tokens and unlock cookies are derived with, shared by every server.
    pub fn link_key(&self) -> &[u8] {
        &self.link_key
    }

    fn link_token(&self, nonce: &[u8]) -> String {
        let bytes = cubby_core::cursor::derive(&self.link_key, TOKEN_LABEL, nonce);
        ids::token("", bytes)
    }

    fn link_from_row(&self, r: &impl RowExt) -> Result<SharedLink, sqlx::Error> {
        Ok(SharedLink {
            id: r.int("id")?,
            token: self.link_token(&r.bytes("nonce")?),
            ns: r.int("ns")? as u64,
            account: r.int("account")?,
            file_id: r.text("file_id")?,
            audience: Audience::from_db(&r.text("audience")?),
            password_hash: r.opt_text("password_hash")?,
            expires: r.opt_int("expires")?,
            allow_download: r.int("allow_download")? != 0,
            created: r.int("created")?,
            owner_disabled: r.int("disabled")? != 0,
        })
    }

    /// Creates `account`'s link to the item `file_id` of `ns`, unless it has one already.
    pub async fn create_shared_link(
        &self,
        ns: u64,
        account: i64,
        file_id: &str,
        settings: NewLink,
    ) -> Result<Created, StoreError> {
        if let Some(existing) = self.shared_link_of(account, file_id).await? {
            return Ok(Created::Exists(existing));
        }
        let password_hash = match settings.password {
            Some(p) => Some(crate::passwords::hash_password_blocking(p).await?),
            None => None,
        };
        let nonce: [u8; 32] = random_bytes();
        let token = self.link_token(&nonce);
        let mut tx = self.db.begin(None).await?;
        // Of two racing creations one inserts; the other finds its link below.
        let inserted = on_tx!(&mut tx, |c| sqlx::query(
            "INSERT INTO shared_links (token_hash, nonce, ns, account, file_id, audience, \
             password_hash, expires, allow_download, created) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (account, file_id) DO NOTHING",
        )
        .bind(token_hash(&token))
        .bind(nonce.to_vec())
        .bind(ns as i64)
        .bind(account)
        .bind(file_id)
        .bind(settings.audience.to_db())
        .bind(password_hash)
        .bind(settings.expires)
        .bind(i64::from(settings.allow_download))
        .bind(now())
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit(None).await?;
        let link = self
            .shared_link_of(account, file_id)
            .await?
            .ok_or_else(|| StoreError::Invalid("a new shared link vanished".into()))?;
        Ok(if inserted == 1 {
            Created::New(link)
        } else {
            Created::Exists(link)
        })
    }

    /// `account`'s link to an item, if any.
    async fn shared_link_of(
        &self,
        account: i64,
        file_id: &str,
    ) -> Result<Option<SharedLink>, StoreError> {
        let sql = format!("{LINK_COLUMNS} WHERE l.account = $1 AND l.file_id = $2");
        on_db!(&self.db, |c| {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(account)
                .bind(file_id)
                .fetch_optional(c)
                .await?;
            Ok(row.map(|r| self.link_from_row(&r)).transpose()?)
        })
    }

    /// The link a token names, if any (whatever its state: callers check expiry and owner).
    pub async fn shared_link_by_token(
        &self,
        token: &str,
    ) -> Result<Option<SharedLink>, StoreError> {
        let sql = format!("{LINK_COLUMNS} WHERE l.token_hash = $1");
        on_db!(&self.db, |c| {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(token_hash(token))
                .fetch_optional(c)
                .await?;
            Ok(row.map(|r| self.link_from_row(&r)).transpose()?)
        })
    }

    /// The link with row id `id`, if it still exists.
    pub async fn shared_link_by_id(&self, id: i64) -> Result<Option<SharedLink>, StoreError> {
        let sql = format!("{LINK_COLUMNS} WHERE l.id = $1");
        on_db!(&self.db, |c| {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(c)
                .await?;
            Ok(row.map(|r| self.link_from_row(&r)).transpose()?)
        })
    }

    /// A page of `account`'s links to live items of `ns`, by id after `after`, with each
    /// item's current lower path; at most `limit` rows.
    pub async fn shared_links_page(
        &self,
        account: i64,
        ns: u64,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(SharedLink, String)>, StoreError> {
        let sql = format!(
            "{LINK_ITEM_COLUMNS} WHERE l.account = $1 AND l.ns = $2 AND l.id > $3 \
             ORDER BY l.id LIMIT $4"
        );
        on_db!(&self.db, |c| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(account)
                .bind(ns as i64)
                .bind(after)
                .bind(limit as i64)
                .fetch_all(c)
                .await?;
            Ok(rows
                .iter()
                .map(|r| Ok((self.link_from_row(r)?, r.text("path_lower")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?)
        })
    }

    /// `account`'s links to the live items of `ns` at any of `paths` (lower case), with each
    /// item's lower path, oldest first.
    pub async fn shared_links_at(
        &self,
        account: i64,
        ns: u64,
        paths: &[String],
    ) -> Result<Vec<(SharedLink, String)>, StoreError> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "{LINK_ITEM_COLUMNS} WHERE l.account = $1 AND l.ns = $2 AND e.path_lower IN ({}) \
             ORDER BY l.id",
            placeholders(3, paths.len())
        );
        on_db!(&self.db, |c| {
            let mut q = sqlx::query(crate::db::sql_for(&c, sql))
                .bind(account)
                .bind(ns as i64);
            for p in paths {
                q = q.bind(p);
            }
            let rows = q.fetch_all(c).await?;
            Ok(rows
                .iter()
                .map(|r| Ok((self.link_from_row(r)?, r.text("path_lower")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?)
        })
    }

    /// Applies `changes` to link `id` and returns it as it now is.
    pub async fn modify_shared_link(
        &self,
        id: i64,
        changes: LinkChanges,
    ) -> Result<Option<SharedLink>, StoreError> {
        let password = match changes.password {
            Some(Some(p)) => Some(Some(crate::passwords::hash_password_blocking(p).await?)),
            Some(None) => Some(None),
            None => None,
        };
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| {
            if let Some(a) = changes.audience {
                sqlx::query("UPDATE shared_links SET audience = $1 WHERE id = $2")
                    .bind(a.to_db())
                    .bind(id)
                    .execute(&mut *c)
                    .await?;
            }
            if let Some(p) = password {
                sqlx::query("UPDATE shared_links SET password_hash = $1 WHERE id = $2")
                    .bind(p)
                    .bind(id)
                    .execute(&mut *c)
                    .await?;
            }
            if let Some(e) = changes.expires {
                sqlx::query("UPDATE shared_links SET expires = $1 WHERE id = $2")
                    .bind(e)
                    .bind(id)
                    .execute(&mut *c)
                    .await?;
            }
            if let Some(d) = changes.allow_download {
                sqlx::query("UPDATE shared_links SET allow_download = $1 WHERE id = $2")
                    .bind(i64::from(d))
                    .bind(id)
                    .execute(&mut *c)
                    .await?;
            }
        });
        tx.commit(None).await?;
        self.shared_link_by_id(id).await
    }

    /// Deletes link `id`; its URL answers not found from then on.
    pub async fn revoke_shared_link(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| sqlx::query(
            "DELETE FROM shared_links WHERE id = $1"
        )
        .bind(id)
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit(None).await?;
        Ok(())
    }

    /// Whether `password` is the link's password (Argon2id, off the async threads).
    pub async fn check_link_password(&self, link: &SharedLink, password: &str) -> bool {
        match &link.password_hash {
            None => true,
            Some(hash) => crate::passwords::verify_password_blocking(password, hash).await,
        }
    }
}
