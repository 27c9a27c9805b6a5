//! User accounts: creation, look-up, sign-in checks, passwords, disabling and quotas.
//!
//! Passwords are kept as Argon2id hashes (`passwords.rs`). Disabling an account or
//! changing its quota makes every server look its cached access tokens up again (see
//! [`crate::tokens`]).

use cubby_core::ids;

use crate::db::{RowExt, on_db, on_tx};
use crate::meta::OpError;
use crate::passwords::{blocking, hash_password, verify_password};
use crate::{Store, StoreError, now, random_bytes};

/// A user account.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: i64,
    pub account_id: String,
    pub name: String,
    pub email: String,
    pub disabled: bool,
    pub ns: u64,
    /// The operator's limit on the account's logical size, in bytes.
    pub quota: Option<u64>,
    /// An operator sees the web app's admin page (users, storage).
    pub operator: bool,
}

const ACCOUNT_COLUMNS: &str =
    "SELECT id, account_id, name, email, disabled, ns, quota, operator FROM accounts";

pub(crate) fn account_from_row(row: &impl RowExt) -> Result<Account, sqlx::Error> {
    Ok(Account {
        id: row.int("id")?,
        account_id: row.text("account_id")?,
        name: row.text("name")?,
        email: row.text("email")?,
        disabled: row.int("disabled")? != 0,
        ns: row.int("ns")? as u64,
        quota: row.opt_int("quota")?.map(|q| q as u64),
        operator: row.int("operator")? != 0,
    })
}

fn check_password_rules(password: &str) -> Result<(), OpError> {
    if password.chars().count() < 8 {
        return Err(OpError::Invalid(
            "passwords are at least 8 characters".into(),
        ));
    }
    Ok(())
}

impl Store {
    /// Creates a user with its home namespace; the password is hashed with Argon2id.
    pub async fn add_user(
        &self,
        name: &str,
        email: &str,
        password: &str,
    ) -> Result<Account, OpError> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"._-@".contains(&c));
        if !valid {
            return Err(OpError::Invalid(
                "user names are 1 to 64 characters of letters, digits, '.', '_', '-' and '@'"
                    .into(),
            ));
        }
        check_password_rules(password)?;
        let password = password.to_owned();
        let hash = blocking(move || hash_password(&password)).await?;
        let mut tx = self.db.begin(None).await?;
        let exists: Option<i64> = on_tx!(&mut tx, |c| sqlx::query_scalar(
            "SELECT id FROM accounts WHERE lower(name) = lower($1)"
        )
        .bind(name)
        .fetch_optional(&mut *c)
        .await?);
        if exists.is_some() {
            return Err(OpError::Invalid(format!("user '{name}' already exists")));
        }
        let account_id = ids::account_id(random_bytes());
        on_tx!(&mut tx, |c| {
            let ns: i64 =
                sqlx::query_scalar("INSERT INTO namespaces (created) VALUES ($1) RETURNING id")
                    .bind(now())
                    .fetch_one(&mut *c)
                    .await?;
            sqlx::query(
                "INSERT INTO accounts (account_id, name, email, password_hash, ns, created) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&account_id)
            .bind(name)
            .bind(email)
            .bind(&hash)
            .bind(ns)
            .bind(now())
            .execute(&mut *c)
            .await?;
        });
        tx.commit(None).await?;
        self.user(name).await
    }

    /// Looks up a user by name.
    pub async fn user(&self, name: &str) -> Result<Account, OpError> {
        self.account_where("WHERE lower(name) = lower($1)", name)
            .await?
            .ok_or(OpError::NoSuchUser)
    }

    /// Looks up a user by row id.
    pub async fn account_by_id(&self, id: i64) -> Result<Option<Account>, StoreError> {
        on_db!(&self.db, |c| {
            let sql = sqlx::AssertSqlSafe(format!("{ACCOUNT_COLUMNS} WHERE id = $1"));
            let row = sqlx::query(sql).bind(id).fetch_optional(c).await?;
            Ok(row.map(|r| account_from_row(&r)).transpose()?)
        })
    }

    /// Looks up an account by its public id (`dbid:…`).
    pub async fn account_by_account_id(&self, id: &str) -> Result<Option<Account>, StoreError> {
        self.account_where("WHERE account_id = $1", id).await
    }

    /// Looks up an account by e-mail address, or else by user name (how a person names
    /// someone to share with; e-mail addresses are not unique, so the oldest account wins).
    pub async fn account_by_email_or_name(&self, who: &str) -> Result<Option<Account>, StoreError> {
        match self
            .account_where("WHERE lower(email) = lower($1) ORDER BY id LIMIT 1", who)
            .await?
        {
            Some(a) => Ok(Some(a)),
            None => {
                self.account_where("WHERE lower(name) = lower($1)", who)
                    .await
            }
        }
    }

    async fn account_where(
        &self,
        clause: &str,
        value: &str,
    ) -> Result<Option<Account>, StoreError> {
        on_db!(&self.db, |c| {
            let sql = sqlx::AssertSqlSafe(format!("{ACCOUNT_COLUMNS} {clause}"));
            let row = sqlx::query(sql).bind(value).fetch_optional(c).await?;
            Ok(row.map(|r| account_from_row(&r)).transpose()?)
        })
    }

    /// Every account, by name.
    pub async fn users(&self) -> Result<Vec<Account>, StoreError> {
        on_db!(&self.db, |c| {
            let sql = sqlx::AssertSqlSafe(format!("{ACCOUNT_COLUMNS} ORDER BY lower(name)"));
            let rows = sqlx::query(sql).fetch_all(c).await?;
            Ok(rows
                .iter()
                .map(account_from_row)
                .collect::<Result<_, _>>()?)
        })
    }

    /// Disables or re-enables a user. A disabled user's tokens stop working at once (on other
    /// servers when the notification reaches them; see [`crate::tokens::AuthCache`]).
    pub async fn set_disabled(&self, name: &str, disabled: bool) -> Result<(), OpError> {
        let account = self.user(name).await?;
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE accounts SET disabled = $1 WHERE id = $2"
        )
        .bind(i64::from(disabled))
        .bind(account.id)
        .execute(&mut *c)
        .await?
        .rows_affected());
        if disabled {
            on_tx!(&mut tx, |c| sqlx::query(
                "DELETE FROM web_sessions WHERE account = $1"
            )
            .bind(account.id)
            .execute(&mut *c)
            .await?
            .rows_affected());
        }
        self.commit_auth_change(tx).await?;
        Ok(())
    }

    /// Makes a user an operator (who sees the web app's admin page), or not.
    pub async fn set_operator(&self, name: &str, operator: bool) -> Result<(), OpError> {
        let account = self.user(name).await?;
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE accounts SET operator = $1 WHERE id = $2"
        )
        .bind(i64::from(operator))
        .bind(account.id)
        .execute(&mut *c)
        .await?
        .rows_affected());
        self.commit_auth_change(tx).await?;
        Ok(())
    }

    /// Sets or removes (`None`) a user's quota, in bytes of live files. Writes that would pass
    /// it fail with `insufficient_space`; what is stored already stays.
    pub async fn set_quota(&self, name: &str, quota: Option<u64>) -> Result<(), OpError> {
        let account = self.user(name).await?;
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE accounts SET quota = $1 WHERE id = $2"
        )
        .bind(quota.map(|q| q as i64))
        .bind(account.id)
        .execute(&mut *c)
        .await?
        .rows_affected());
        // Tokens carry the account's quota (users/get_space_usage shows it).
        self.commit_auth_change(tx).await?;
        Ok(())
    }

    /// Sets a new password and signs the user out of every browser.
    pub async fn set_password(&self, name: &str, password: &str) -> Result<(), OpError> {
        check_password_rules(password)?;
        let account = self.user(name).await?;
        let password = password.to_owned();
        let hash = blocking(move || hash_password(&password)).await?;
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| {
            sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2")
                .bind(&hash)
                .bind(account.id)
                .execute(&mut *c)
                .await?;
            sqlx::query("DELETE FROM web_sessions WHERE account = $1")
                .bind(account.id)
                .execute(&mut *c)
                .await?;
        });
        tx.commit(None).await?;
        Ok(())
    }

    /// Checks a sign-in by user name or email. `None` for a wrong password, an unknown
    /// login or a disabled account; an unknown login costs the same Argon2 work.
    pub async fn check_password(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Option<Account>, StoreError> {
        let row: Option<(Account, Option<String>)> = on_db!(&self.db, |c| {
            let row = sqlx::query(
                "SELECT id, account_id, name, email, disabled, ns, quota, operator, password_hash \
                 FROM accounts WHERE lower(name) = lower($1) OR lower(email) = lower($1) \
                 ORDER BY id LIMIT 1",
            )
            .bind(login)
            .fetch_optional(c)
            .await?;
            row.map(|r| -> Result<_, sqlx::Error> {
                Ok((account_from_row(&r)?, r.opt_text("password_hash")?))
            })
            .transpose()?
        });
        let hash = row.as_ref().and_then(|(_, h)| h.clone());
        let password = password.to_owned();
        let ok = blocking(move || {
            // A hash of a random password keeps the timing of unknown logins honest.
            static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            let hash = hash.unwrap_or_else(|| {
                DECOY
                    .get_or_init(|| {
                        hash_password(&ids::password(random_bytes())).unwrap_or_default()
                    })
                    .clone()
            });
            verify_password(&password, &hash)
        })
        .await;
        Ok(match row {
            Some((account, Some(_))) if ok && !account.disabled => Some(account),
            _ => None,
        })
    }
}
