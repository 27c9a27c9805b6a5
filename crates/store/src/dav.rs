//! WebDAV's own state: app passwords, dead properties and locks.
//!
//! Security Invariant: an app password is 125 random bits, kept only as its SHA-256 digest
//! (a lookup by digest reveals nothing through timing, as for tokens). It is shown once, when
//! it is made.

use crate::accounts::{Account, account_from_row};
use crate::db::{RowExt, on_db, on_tx};
use crate::tokens::token_hash;
use crate::{Store, StoreError, now, random_bytes};

/// The characters of an app password: no 0/o or 1/l to mistake when typed from a screen.
const PASSWORD_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
/// Groups of [`PASSWORD_GROUP`] characters in an app password (5 × 5 × 5 bits = 125 bits).
const PASSWORD_GROUPS: usize = 5;
const PASSWORD_GROUP: usize = 5;
/// Longest app-password name kept (a device's name, or a client's User-Agent).
pub const APP_PASSWORD_NAME_MAX: usize = 100;

/// An app password as its owner sees it listed (never the password itself).
#[derive(Clone, Debug)]
pub struct AppPassword {
    pub id: i64,
    pub name: String,
    /// The folder it is limited to (display path), or `""` for the whole home.
    pub folder: String,
    pub read_only: bool,
    pub created: i64,
    pub last_used: Option<i64>,
}

/// Who an app password lets in, and how far.
#[derive(Clone, Debug)]
pub struct AppPasswordAuth {
    pub account: Account,
    pub password: AppPassword,
}

/// A WebDAV lock as kept: its path is the lock system's key (lower case), per account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DavLockRow {
    pub token: String,
    pub path: String,
    pub principal: Option<String>,
    /// The client's `owner` element, as XML.
    pub owner: Option<String>,
    pub shared: bool,
    pub deep: bool,
    /// Unix seconds, or none for a lock without a timeout.
    pub expires: Option<i64>,
}

fn new_password() -> String {
    let bytes: [u8; PASSWORD_GROUPS * PASSWORD_GROUP] = random_bytes();
    let mut out = String::with_capacity(PASSWORD_GROUPS * (PASSWORD_GROUP + 1));
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % PASSWORD_GROUP == 0 {
            out.push('-');
        }
        out.push(PASSWORD_ALPHABET[(*b & 31) as usize] as char);
    }
    out
}

fn password_from_row(r: &impl RowExt) -> Result<AppPassword, sqlx::Error> {
    Ok(AppPassword {
        id: r.int("pw_id")?,
        name: r.text("pw_name")?,
        folder: r.text("folder")?,
        read_only: r.int("read_only")? != 0,
        created: r.int("created")?,
        last_used: r.opt_int("last_used")?,
    })
}

const PASSWORD_COLUMNS: &str =
    "p.id AS pw_id, p.name AS pw_name, p.folder, p.read_only, p.created, p.last_used";

fn lock_from_row(r: &impl RowExt) -> Result<DavLockRow, sqlx::Error> {
    Ok(DavLockRow {
        token: r.text("token")?,
        path: r.text("path")?,
        principal: r.opt_text("principal")?,
        owner: r.opt_text("owner")?,
        shared: r.int("shared")? != 0,
        deep: r.int("deep")? != 0,
        expires: r.opt_int("expires")?,
    })
}

impl Store {
    /// Makes an app password for `account`; returns it (only its digest is kept).
    pub async fn create_app_password(
        &self,
        account: i64,
        name: &str,
        folder: &str,
        read_only: bool,
    ) -> Result<(AppPassword, String), StoreError> {
        let password = new_password();
        let name: String = name.trim().chars().take(APP_PASSWORD_NAME_MAX).collect();
        let created = now();
        let mut tx = self.db.begin(None).await?;
        let id = on_tx!(&mut tx, |c| sqlx::query_scalar::<_, i64>(
            "INSERT INTO app_passwords (account, name, digest, folder, read_only, created) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"
        )
        .bind(account)
        .bind(&name)
        .bind(token_hash(&password))
        .bind(folder)
        .bind(i64::from(read_only))
        .bind(created)
        .fetch_one(&mut *c)
        .await?);
        tx.commit(None).await?;
        Ok((
            AppPassword {
                id,
                name,
                folder: folder.to_owned(),
                read_only,
                created,
                last_used: None,
            },
            password,
        ))
    }

    /// The folder of `account`'s home an app password may be limited to (its display path),
    /// if `path` names one there.
    pub async fn folder_for_app_password(
        &self,
        account: &Account,
        path: &str,
    ) -> Result<Option<String>, StoreError> {
        let path = path.trim().trim_end_matches('/');
        if !path.starts_with('/') {
            return Ok(None);
        }
        let e = self
            .entry(account.ns, &cubby_core::path::lower(path))
            .await?;
        Ok(e.filter(|e| e.kind == crate::meta::Kind::Folder)
            .map(|e| e.path_display))
    }

    /// An account's app passwords, newest first.
    pub async fn app_passwords(&self, account: i64) -> Result<Vec<AppPassword>, StoreError> {
        on_db!(&self.db, |c| {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {PASSWORD_COLUMNS} FROM app_passwords p WHERE p.account = $1 \
                 ORDER BY p.id DESC"
            ));
            let rows = sqlx::query(sql).bind(account).fetch_all(c).await?;
            Ok(rows
                .iter()
                .map(password_from_row)
                .collect::<Result<_, _>>()?)
        })
    }

    /// Revokes one of an account's app passwords; false if it has none of that id.
    pub async fn revoke_app_password(&self, account: i64, id: i64) -> Result<bool, StoreError> {
        let mut tx = self.db.begin(None).await?;
        let n = on_tx!(&mut tx, |c| sqlx::query(
            "DELETE FROM app_passwords WHERE account = $1 AND id = $2"
        )
        .bind(account)
        .bind(id)
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit(None).await?;
        Ok(n > 0)
    }

    /// The account and limits an app password opens, if `login` (the account's name or
    /// e-mail address) owns it and the account is enabled. Marks it used (at most once a
    /// minute, so a busy client does not write on every request).
    pub async fn check_app_password(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Option<AppPasswordAuth>, StoreError> {
        let digest = token_hash(password.trim());
        let row = on_db!(&self.db, |c| {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {PASSWORD_COLUMNS}, a.id, a.account_id, a.name, a.email, a.disabled, \
                 a.ns, a.quota, a.operator FROM app_passwords p \
                 JOIN accounts a ON a.id = p.account WHERE p.digest = $1"
            ));
            let row = sqlx::query(sql).bind(&digest).fetch_optional(c).await?;
            row.map(|r| -> Result<_, sqlx::Error> {
                Ok((account_from_row(&r)?, password_from_row(&r)?))
            })
            .transpose()?
        });
        let Some((account, password)) = row else {
            return Ok(None);
        };
        let login = login.trim();
        let owns = account.name.eq_ignore_ascii_case(login)
            || (!account.email.is_empty() && account.email.eq_ignore_ascii_case(login));
        if !owns || account.disabled {
            return Ok(None);
        }
        let t = now();
        if password.last_used.is_none_or(|u| t - u >= 60) {
            let mut tx = self.db.begin(None).await?;
            on_tx!(&mut tx, |c| sqlx::query(
                "UPDATE app_passwords SET last_used = $1 WHERE id = $2"
            )
            .bind(t)
            .bind(password.id)
            .execute(&mut *c)
            .await?
            .rows_affected());
            tx.commit(None).await?;
        }
        Ok(Some(AppPasswordAuth { account, password }))
    }

    /// The dead properties of an entry (by its id): `(name, xml)` pairs, by name.
    pub async fn dav_props(&self, entry_id: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        on_db!(&self.db, |c| {
            let rows =
                sqlx::query("SELECT name, xml FROM dav_props WHERE entry_id = $1 ORDER BY name")
                    .bind(entry_id)
                    .fetch_all(c)
                    .await?;
            Ok(rows
                .iter()
                .map(|r| Ok((r.text("name")?, r.bytes("xml")?)))
                .collect::<Result<_, sqlx::Error>>()?)
        })
    }

    /// The dead properties of many entries at once (a page of a listing): `(id, name, xml)`.
    pub async fn dav_props_of(
        &self,
        entry_ids: &[String],
    ) -> Result<Vec<(String, String, Vec<u8>)>, StoreError> {
        if entry_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT entry_id, name, xml FROM dav_props WHERE entry_id IN ({})",
            crate::db::placeholders(1, entry_ids.len())
        );
        on_db!(&self.db, |c| {
            let mut q = sqlx::query(crate::db::sql_for(&c, sql.clone()));
            for id in entry_ids {
                q = q.bind(id);
            }
            let rows = q.fetch_all(c).await?;
            Ok(rows
                .iter()
                .map(|r| Ok((r.text("entry_id")?, r.text("name")?, r.bytes("xml")?)))
                .collect::<Result<_, sqlx::Error>>()?)
        })
    }

    /// Sets and removes dead properties of an entry in one transaction.
    pub async fn dav_patch_props(
        &self,
        entry_id: &str,
        set: &[(String, Vec<u8>)],
        remove: &[String],
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| {
            for name in remove {
                sqlx::query("DELETE FROM dav_props WHERE entry_id = $1 AND name = $2")
                    .bind(entry_id)
                    .bind(name)
                    .execute(&mut *c)
                    .await?;
            }
            for (name, xml) in set {
                sqlx::query(
                    "INSERT INTO dav_props (entry_id, name, xml) VALUES ($1, $2, $3) \
                     ON CONFLICT (entry_id, name) DO UPDATE SET xml = excluded.xml",
                )
                .bind(entry_id)
                .bind(name)
                .bind(xml)
                .execute(&mut *c)
                .await?;
            }
        });
        tx.commit(None).await?;
        Ok(())
    }

    /// Gives entry `to` the dead properties of entry `from` (a copy), replacing its own.
    pub async fn dav_copy_props(&self, from: &str, to: &str) -> Result<(), StoreError> {
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| {
            sqlx::query("DELETE FROM dav_props WHERE entry_id = $1")
                .bind(to)
                .execute(&mut *c)
                .await?;
            sqlx::query(
                "INSERT INTO dav_props (entry_id, name, xml) \
                 SELECT $1, name, xml FROM dav_props WHERE entry_id = $2",
            )
            .bind(to)
            .bind(from)
            .execute(&mut *c)
            .await?;
        });
        tx.commit(None).await?;
        Ok(())
    }

    /// Forgets the dead properties of a deleted entry.
    pub async fn dav_forget_props(&self, entry_id: &str) -> Result<(), StoreError> {
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| sqlx::query(
            "DELETE FROM dav_props WHERE entry_id = $1"
        )
        .bind(entry_id)
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit(None).await?;
        Ok(())
    }

    /// An account's live WebDAV locks.
    pub async fn dav_locks(&self, account: &Account) -> Result<Vec<DavLockRow>, StoreError> {
        on_db!(&self.db, |c| {
            let rows = sqlx::query(
                "SELECT token, path, principal, owner, shared, deep, expires FROM dav_locks \
                 WHERE account = $1 AND (expires IS NULL OR expires > $2)",
            )
            .bind(account.id)
            .bind(now())
            .fetch_all(c)
            .await?;
            Ok(rows.iter().map(lock_from_row).collect::<Result<_, _>>()?)
        })
    }

    /// Takes a lock unless `conflict`, shown the account's live locks, names one in the way.
    /// Runs as one transaction that excludes every other lock change of the account (on
    /// PostgreSQL through the account's namespace row), so two servers cannot both take
    /// conflicting locks.
    pub async fn dav_lock(
        &self,
        account: &Account,
        lock: &DavLockRow,
        conflict: impl FnOnce(&[DavLockRow]) -> Option<DavLockRow>,
    ) -> Result<Result<(), DavLockRow>, StoreError> {
        let mut tx = self.db.begin(Some(account.ns)).await?;
        let t = now();
        let held = on_tx!(&mut tx, |c| {
            sqlx::query("DELETE FROM dav_locks WHERE account = $1 AND expires <= $2")
                .bind(account.id)
                .bind(t)
                .execute(&mut *c)
                .await?;
            let rows = sqlx::query(
                "SELECT token, path, principal, owner, shared, deep, expires FROM dav_locks \
                 WHERE account = $1",
            )
            .bind(account.id)
            .fetch_all(&mut *c)
            .await?;
            rows.iter()
                .map(lock_from_row)
                .collect::<Result<Vec<_>, _>>()?
        });
        if let Some(other) = conflict(&held) {
            return Ok(Err(other));
        }
        on_tx!(&mut tx, |c| sqlx::query(
            "INSERT INTO dav_locks (token, account, path, principal, owner, shared, deep, \
             expires) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )
        .bind(&lock.token)
        .bind(account.id)
        .bind(&lock.path)
        .bind(&lock.principal)
        .bind(&lock.owner)
        .bind(i64::from(lock.shared))
        .bind(i64::from(lock.deep))
        .bind(lock.expires)
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit(None).await?;
        Ok(Ok(()))
    }

    /// Gives a live lock a new expiry; false if it is gone.
    pub async fn dav_refresh_lock(
        &self,
        account: &Account,
        token: &str,
        expires: Option<i64>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin(None).await?;
        let n = on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE dav_locks SET expires = $1 WHERE account = $2 AND token = $3 \
             AND (expires IS NULL OR expires > $4)"
        )
        .bind(expires)
        .bind(account.id)
        .bind(token)
        .bind(now())
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit(None).await?;
        Ok(n > 0)
    }

    /// Removes an account's locks by their tokens (an UNLOCK, or a MOVE or DELETE of what
    /// they lock).
    pub async fn dav_drop_locks(
        &self,
        account: &Account,
        tokens: &[String],
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| {
            for t in tokens {
                sqlx::query("DELETE FROM dav_locks WHERE account = $1 AND token = $2")
                    .bind(account.id)
                    .bind(t)
                    .execute(&mut *c)
                    .await?;
            }
        });
        tx.commit(None).await?;
        Ok(())
    }
}

/// A chunked upload of Nextcloud's clients: an upload session and the chunks appended to it,
/// `(name, size)` in order.
#[derive(Clone, Debug)]
pub struct DavUpload {
    pub session: String,
    pub chunks: Vec<(String, u64)>,
    pub created: i64,
}

/// How long a chunked upload may take before it is forgotten.
pub const DAV_UPLOAD_SECS: i64 = 24 * 3600;

impl Store {
    /// Starts a chunked upload (its session too); false if the account has one of that name.
    pub async fn dav_upload_start(&self, account: i64, transfer: &str) -> Result<bool, StoreError> {
        if self.dav_upload(account, transfer).await?.is_some() {
            return Ok(false);
        }
        let session = self
            .start_session(account, false)
            .await
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut tx = self.db.begin(None).await?;
        let n = on_tx!(&mut tx, |c| {
            sqlx::query("DELETE FROM dav_uploads WHERE created < $1")
                .bind(now() - DAV_UPLOAD_SECS)
                .execute(&mut *c)
                .await?;
            sqlx::query(
                "INSERT INTO dav_uploads (account, transfer, session, created) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (account, transfer) DO NOTHING",
            )
            .bind(account)
            .bind(transfer)
            .bind(&session)
            .bind(now())
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        tx.commit(None).await?;
        Ok(n > 0)
    }

    /// A live chunked upload.
    pub async fn dav_upload(
        &self,
        account: i64,
        transfer: &str,
    ) -> Result<Option<DavUpload>, StoreError> {
        let row = on_db!(&self.db, |c| {
            let row = sqlx::query(
                "SELECT session, chunks, created FROM dav_uploads \
                 WHERE account = $1 AND transfer = $2 AND created >= $3",
            )
            .bind(account)
            .bind(transfer)
            .bind(now() - DAV_UPLOAD_SECS)
            .fetch_optional(c)
            .await?;
            row.map(|r| -> Result<_, sqlx::Error> {
                Ok((r.text("session")?, r.text("chunks")?, r.int("created")?))
            })
            .transpose()?
        });
        Ok(row.map(|(session, chunks, created)| DavUpload {
            session,
            chunks: serde_json::from_str(&chunks).unwrap_or_default(),
            created,
        }))
    }

    /// Records a chunk appended to a chunked upload.
    pub async fn dav_upload_chunk(
        &self,
        account: i64,
        transfer: &str,
        chunks: &[(String, u64)],
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(chunks).expect("chunks serialize");
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE dav_uploads SET chunks = $1 WHERE account = $2 AND transfer = $3"
        )
        .bind(json)
        .bind(account)
        .bind(transfer)
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit(None).await?;
        Ok(())
    }

    /// Forgets a chunked upload (its session expires on its own).
    pub async fn dav_upload_end(&self, account: i64, transfer: &str) -> Result<bool, StoreError> {
        let mut tx = self.db.begin(None).await?;
        let n = on_tx!(&mut tx, |c| sqlx::query(
            "DELETE FROM dav_uploads WHERE account = $1 AND transfer = $2"
        )
        .bind(account)
        .bind(transfer)
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit(None).await?;
        Ok(n > 0)
    }
}

/// How long a Login Flow v2 sign-in may take.
pub const LOGIN_FLOW_SECS: i64 = 20 * 60;

impl Store {
    /// Starts a Login Flow v2 sign-in for a client (named by its User-Agent): the token it
    /// polls with and the one in the address it opens in a browser.
    pub async fn login_flow_start(&self, client: &str) -> Result<(String, String), StoreError> {
        let poll = crate::tokens::random_token("");
        let login = crate::tokens::random_token("");
        let client: String = client.chars().take(APP_PASSWORD_NAME_MAX).collect();
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| {
            sqlx::query("DELETE FROM login_flows WHERE created < $1")
                .bind(now() - LOGIN_FLOW_SECS)
                .execute(&mut *c)
                .await?;
            sqlx::query(
                "INSERT INTO login_flows (poll_hash, login_hash, client, created) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(token_hash(&poll))
            .bind(token_hash(&login))
            .bind(&client)
            .bind(now())
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        tx.commit(None).await?;
        Ok((poll, login))
    }

    /// The client a live, not yet granted sign-in is for.
    pub async fn login_flow_client(&self, login: &str) -> Result<Option<String>, StoreError> {
        on_db!(&self.db, |c| {
            let row = sqlx::query(
                "SELECT client FROM login_flows WHERE login_hash = $1 AND created >= $2 \
                 AND account IS NULL",
            )
            .bind(token_hash(login))
            .bind(now() - LOGIN_FLOW_SECS)
            .fetch_optional(c)
            .await?;
            Ok(row.map(|r| r.text("client")).transpose()?)
        })
    }

    /// Grants a live sign-in to `account`; false if it is gone or already granted.
    pub async fn login_flow_grant(&self, login: &str, account: i64) -> Result<bool, StoreError> {
        let mut tx = self.db.begin(None).await?;
        let n = on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE login_flows SET account = $1 WHERE login_hash = $2 AND created >= $3 \
             AND account IS NULL"
        )
        .bind(account)
        .bind(token_hash(login))
        .bind(now() - LOGIN_FLOW_SECS)
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit(None).await?;
        Ok(n > 0)
    }

    /// Collects a granted sign-in, once: the account and the client's name, the flow gone.
    pub async fn login_flow_take(&self, poll: &str) -> Result<Option<(i64, String)>, StoreError> {
        let mut tx = self.db.begin(None).await?;
        let row = on_tx!(&mut tx, |c| {
            let row = sqlx::query(
                "DELETE FROM login_flows WHERE poll_hash = $1 AND created >= $2 \
                 AND account IS NOT NULL RETURNING account, client",
            )
            .bind(token_hash(poll))
            .bind(now() - LOGIN_FLOW_SECS)
            .fetch_optional(&mut *c)
            .await?;
            row.map(|r| -> Result<_, sqlx::Error> { Ok((r.int("account")?, r.text("client")?)) })
                .transpose()?
        });
        tx.commit(None).await?;
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_password_has_five_groups_of_five_from_the_alphabet() {
        let p = super::new_password();
        let groups: Vec<&str> = p.split('-').collect();
        assert_eq!(groups.len(), 5, "{p}");
        assert!(
            groups
                .iter()
                .all(|g| g.len() == 5 && g.bytes().all(|b| super::PASSWORD_ALPHABET.contains(&b)))
        );
        assert_ne!(p, super::new_password());
    }
}
