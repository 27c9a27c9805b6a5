//! Web sign-in sessions: the browsers signed in to the app console and the OAuth consent
//! page, each session with its CSRF synchronizer token.
//!
//! Security Invariant: a session id (the cookie's value) is a 256-bit random string kept as
//! a SHA-256 digest.

use cubby_core::ids;

use crate::accounts::Account;
use crate::db::{RowExt, on_db, on_tx};
use crate::tokens::{random_token, token_hash};
use crate::{Store, StoreError, now, random_bytes};

/// Lifetime of a web sign-in session.
pub const WEB_SESSION_SECS: i64 = 7 * 24 * 3600;

/// A signed-in browser.
#[derive(Clone, Debug)]
pub struct WebSession {
    pub account: Account,
    /// The synchronizer token every form of this session must carry.
    pub csrf: String,
}

impl Store {
    /// Signs a browser in: returns the cookie value (only its digest is kept).
    pub async fn create_web_session(&self, account: i64) -> Result<String, StoreError> {
        let id = random_token("cbs1.");
        let csrf = ids::token("", random_bytes());
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| {
            sqlx::query("DELETE FROM web_sessions WHERE expires < $1")
                .bind(now())
                .execute(&mut *c)
                .await?;
            sqlx::query(
                "INSERT INTO web_sessions (id_hash, account, csrf, expires) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(token_hash(&id))
            .bind(account)
            .bind(&csrf)
            .bind(now() + WEB_SESSION_SECS)
            .execute(&mut *c)
            .await?;
        });
        tx.commit(None).await?;
        Ok(id)
    }

    /// The signed-in browser a cookie names, if the session is live and the user enabled.
    pub async fn web_session(&self, cookie: &str) -> Result<Option<WebSession>, StoreError> {
        let row = on_db!(&self.db, |c| {
            let row = sqlx::query(
                "SELECT account, csrf FROM web_sessions WHERE id_hash = $1 AND expires > $2",
            )
            .bind(token_hash(cookie))
            .bind(now())
            .fetch_optional(c)
            .await?;
            row.map(|r| -> Result<_, sqlx::Error> { Ok((r.int("account")?, r.text("csrf")?)) })
                .transpose()?
        });
        let Some((account, csrf)) = row else {
            return Ok(None);
        };
        Ok(self
            .account_by_id(account)
            .await?
            .filter(|a| !a.disabled)
            .map(|account| WebSession { account, csrf }))
    }

    /// Signs a browser out.
    pub async fn end_web_session(&self, cookie: &str) -> Result<(), StoreError> {
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| sqlx::query(
            "DELETE FROM web_sessions WHERE id_hash = $1"
        )
        .bind(token_hash(cookie))
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit(None).await?;
        Ok(())
    }
}
