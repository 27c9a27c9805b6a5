//! OAuth 2 tokens: access and refresh tokens, authorization codes, the scopes users granted
//! apps, and the token cache each server keeps.
//!
//! Security Invariant: no token is stored in the clear. Access tokens, refresh tokens and
//! authorization codes are 256-bit random strings kept as SHA-256 digests (a lookup by digest
//! reveals nothing through timing).

use cubby_core::hash::{ct_eq, pkce_s256};
use cubby_core::ids;
use sha2::{Digest, Sha256};

use crate::accounts::{Account, account_from_row};
use crate::apps::{AccessType, App, parse_scopes};
use crate::db::{RowExt, on_db, on_tx};
use crate::meta::OpError;
use crate::{Store, StoreError, now, random_bytes};

/// Lifetime of a short-lived access token, as Dropbox's (`expires_in` 14400).
pub const ACCESS_TOKEN_SECS: i64 = 4 * 3600;
/// Lifetime of an authorization code: long enough to paste it by hand.
pub const CODE_SECS: i64 = 10 * 60;

/// How long a server answers for an access token from its own memory (see [`AuthCache`]).
pub const AUTH_CACHE_SECS: u64 = 5;
/// Access tokens a server keeps in that memory; a full cache is emptied.
const AUTH_CACHE_MAX: usize = 10_000;

/// Access-token lookups remembered for [`AUTH_CACHE_SECS`], keyed by the token's digest, so a
/// client's stream of requests costs one database read every few seconds instead of one each.
/// An entry is valid only in the auth epoch it was read in ([`crate::notify::Notifier`]): a
/// revocation through this server moves the epoch at once, one through another server when
/// that server's notification arrives; a change made outside any server (`cubby admin user
/// disable` on an embedded store) shows within [`AUTH_CACHE_SECS`]. Expiry is checked on
/// every use.
#[derive(Default)]
pub(crate) struct AuthCache {
    map: std::sync::Mutex<std::collections::HashMap<Vec<u8>, Cached>>,
}

struct Cached {
    at: std::time::Instant,
    epoch: u64,
    info: AuthInfo,
    expires: Option<i64>,
}

impl AuthCache {
    fn get(&self, key: &[u8], epoch: u64) -> Option<AuthInfo> {
        let map = self.map.lock().expect("auth cache lock");
        let c = map.get(key)?;
        if c.epoch != epoch || c.at.elapsed().as_secs() >= AUTH_CACHE_SECS {
            return None;
        }
        let mut info = c.info.clone();
        info.expired = c.expires.is_some_and(|e| e <= now());
        Some(info)
    }

    fn put(&self, key: Vec<u8>, epoch: u64, info: &AuthInfo, expires: Option<i64>) {
        let mut map = self.map.lock().expect("auth cache lock");
        if map.len() >= AUTH_CACHE_MAX && !map.contains_key(&key) {
            map.clear();
        }
        map.insert(
            key,
            Cached {
                at: std::time::Instant::now(),
                epoch,
                info: info.clone(),
                expires,
            },
        );
    }
}

/// What a bearer token grants.
#[derive(Clone, Debug)]
pub struct AuthInfo {
    pub account: Account,
    pub token_id: i64,
    pub app_key: String,
    pub app_name: String,
    pub app_folder: bool,
    pub scopes: Vec<String>,
    /// Display path of the caller's root in its namespace: `""`, or `/Apps/<name>`.
    pub root: String,
    pub expired: bool,
}

/// An app connected to an account: it holds live tokens.
#[derive(Clone, Debug)]
pub struct ConnectedApp {
    pub key: String,
    pub name: String,
    pub app_folder: bool,
    /// When its oldest live token was issued (Unix seconds).
    pub since: i64,
}

/// `token_access_type`: what a grant issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenAccess {
    /// A short-lived access token.
    Online,
    /// A short-lived access token plus a refresh token.
    Offline,
    /// A long-lived access token (deprecated by Dropbox, kept for old integrations).
    Legacy,
}

impl TokenAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenAccess::Online => "online",
            TokenAccess::Offline => "offline",
            TokenAccess::Legacy => "legacy",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "online" => Some(TokenAccess::Online),
            "offline" => Some(TokenAccess::Offline),
            "legacy" => Some(TokenAccess::Legacy),
            _ => None,
        }
    }
}

/// Tokens handed out by a grant.
#[derive(Clone, Debug)]
pub struct Issued {
    pub access_token: String,
    /// Seconds until the access token expires; `None` for a long-lived token.
    pub expires_in: Option<i64>,
    pub refresh_token: Option<String>,
    pub scopes: Vec<String>,
    pub account: Account,
}

/// Why a token request was refused, as RFC 6749 names it.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    #[error("invalid_client: {0}")]
    InvalidClient(&'static str),
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for GrantError {
    fn from(e: sqlx::Error) -> Self {
        GrantError::Store(StoreError::Db(e))
    }
}

impl From<OpError> for GrantError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::Internal(e) => GrantError::Store(e),
            other => GrantError::Store(StoreError::Invalid(other.to_string())),
        }
    }
}

/// An approved authorization request, waiting for its code to be exchanged.
#[derive(Clone, Debug)]
pub struct CodeRequest {
    pub app: i64,
    pub account: i64,
    pub scopes: Vec<String>,
    pub redirect_uri: Option<String>,
    /// PKCE: the challenge and its method (`S256` or `plain`).
    pub challenge: Option<(String, String)>,
    pub access: TokenAccess,
}

pub(crate) fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub(crate) fn random_token(prefix: &str) -> String {
    ids::token(prefix, random_bytes())
}

fn auth_from_row(row: &impl RowExt) -> Result<Option<AuthInfo>, sqlx::Error> {
    let account = account_from_row(row)?;
    if row.int("revoked")? != 0 || account.disabled {
        return Ok(None);
    }
    let expires = row.opt_int("expires")?;
    let app_name = row.text("app_name")?;
    let app_folder = row.text("access_type")? == "app_folder";
    Ok(Some(AuthInfo {
        account,
        token_id: row.int("token_id")?,
        app_key: row.text("app_key")?,
        root: if app_folder {
            format!("/Apps/{app_name}")
        } else {
            String::new()
        },
        app_name,
        app_folder,
        scopes: parse_scopes(&row.text("scopes")?),
        expired: expires.is_some_and(|e| e <= now()),
    }))
}

impl Store {
    /// Mints a long-lived access token for a user and app (the built-in full-access app when
    /// `app_key` is `None`). `scopes` narrows the app's scopes; unknown scopes are refused.
    pub async fn mint_token(
        &self,
        user: &str,
        app_key: Option<&str>,
        scopes: &[String],
    ) -> Result<(String, AuthInfo), OpError> {
        let issued = self
            .mint(user, app_key, scopes, TokenAccess::Legacy)
            .await?;
        let info = self
            .authenticate(&issued.access_token)
            .await?
            .ok_or(OpError::NoSuchUser)?;
        Ok((issued.access_token, info))
    }

    /// Issues tokens for a user and app without a browser (`cubby admin token`).
    pub async fn mint(
        &self,
        user: &str,
        app_key: Option<&str>,
        scopes: &[String],
        access: TokenAccess,
    ) -> Result<Issued, OpError> {
        let account = self.user(user).await?;
        let app = self
            .app(app_key.unwrap_or("cubby"))
            .await?
            .ok_or(OpError::NoSuchApp)?;
        let granted = if scopes.is_empty() {
            app.scopes.clone()
        } else {
            if let Some(s) = scopes.iter().find(|s| !app.scopes.contains(s)) {
                return Err(OpError::Invalid(format!(
                    "scope '{s}' is not allowed for app '{}'",
                    app.key
                )));
            }
            scopes.to_vec()
        };
        self.issue(&account, &app, granted, access, false).await
    }

    /// Issues an access token (and a refresh token for offline access), creating the app
    /// folder on first authorization.
    pub async fn issue(
        &self,
        account: &Account,
        app: &App,
        scopes: Vec<String>,
        access: TokenAccess,
        pkce: bool,
    ) -> Result<Issued, OpError> {
        if app.access == AccessType::AppFolder {
            self.ensure_folder(account.ns, &app.root()).await?;
        }
        let refresh = (access == TokenAccess::Offline).then(|| random_token("cbr1."));
        let access_token = random_token(if access == TokenAccess::Legacy {
            "cby1."
        } else {
            "sl.cby1."
        });
        let expires_in = (access != TokenAccess::Legacy).then_some(ACCESS_TOKEN_SECS);
        let mut tx = self.db.begin(None).await?;
        let parent: Option<i64> = match &refresh {
            None => None,
            Some(r) => Some(on_tx!(&mut tx, |c| sqlx::query_scalar(
                "INSERT INTO tokens (token_hash, kind, account, app, scopes, pkce, created) \
                 VALUES ($1, 'refresh', $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(token_hash(r))
            .bind(account.id)
            .bind(app.id)
            .bind(scopes.join(" "))
            .bind(i64::from(pkce))
            .bind(now())
            .fetch_one(&mut *c)
            .await?)),
        };
        self.insert_access(
            &mut tx,
            &access_token,
            account.id,
            app.id,
            &scopes,
            parent,
            expires_in,
        )
        .await?;
        tx.commit(None).await?;
        Ok(Issued {
            access_token,
            expires_in,
            refresh_token: refresh,
            scopes,
            account: account.clone(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_access(
        &self,
        tx: &mut crate::db::Tx,
        token: &str,
        account: i64,
        app: i64,
        scopes: &[String],
        parent: Option<i64>,
        expires_in: Option<i64>,
    ) -> Result<i64, StoreError> {
        Ok(on_tx!(tx, |c| sqlx::query_scalar(
            "INSERT INTO tokens (token_hash, kind, account, app, scopes, parent, expires, created) \
             VALUES ($1, 'access', $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(token_hash(token))
        .bind(account)
        .bind(app)
        .bind(scopes.join(" "))
        .bind(parent)
        .bind(expires_in.map(|s| now() + s))
        .bind(now())
        .fetch_one(&mut *c)
        .await?))
    }

    /// Resolves a bearer token. `None` for unknown, revoked or disabled; expired tokens are
    /// returned with `expired` set so the caller can answer `expired_access_token`.
    pub async fn authenticate(&self, token: &str) -> Result<Option<AuthInfo>, StoreError> {
        let key = token_hash(token);
        // Read before the database, so that a revocation committed meanwhile voids the entry.
        let epoch = self.notifier.auth_epoch();
        if let Some(info) = self.auth_cache.get(&key, epoch) {
            return Ok(Some(info));
        }
        let found = on_db!(&self.db, |c| {
            let row = sqlx::query(
                "SELECT t.id AS token_id, t.scopes, t.expires, t.revoked, \
                        a.id, a.account_id, a.name, a.email, a.disabled, a.ns, a.quota, a.operator, \
                        p.app_key, p.name AS app_name, p.access_type \
                 FROM tokens t JOIN accounts a ON a.id = t.account JOIN apps p ON p.id = t.app \
                 WHERE t.token_hash = $1 AND t.kind = 'access'",
            )
            .bind(&key)
            .fetch_optional(c)
            .await?;
            match row {
                None => None,
                Some(row) => auth_from_row(&row)?.map(|info| (info, row.opt_int("expires"))),
            }
        });
        let Some((info, expires)) = found else {
            return Ok(None);
        };
        if !info.expired {
            self.auth_cache.put(key, epoch, &info, expires?);
        }
        Ok(Some(info))
    }

    /// Commits a transaction that revokes access (a token, an account, a quota) and makes
    /// every server look its cached access tokens up again: this one once the commit is
    /// done, others when the commit's notification reaches them (see [`AuthCache`]).
    pub(crate) async fn commit_auth_change(&self, mut tx: crate::db::Tx) -> Result<(), StoreError> {
        tx.notify_auth_changed().await?;
        tx.commit(None).await?;
        self.notifier.auth_changed();
        Ok(())
    }

    /// Revokes a token and its family: the refresh token it came from and every access
    /// token minted from that refresh token (`auth/token/revoke`).
    pub async fn revoke_token(&self, token_id: i64) -> Result<(), StoreError> {
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| {
            let parent: Option<i64> = sqlx::query_scalar("SELECT parent FROM tokens WHERE id = $1")
                .bind(token_id)
                .fetch_optional(&mut *c)
                .await?
                .flatten();
            let family = parent.unwrap_or(token_id);
            sqlx::query("UPDATE tokens SET revoked = 1 WHERE id = $1 OR id = $2 OR parent = $2")
                .bind(token_id)
                .bind(family)
                .execute(&mut *c)
                .await?;
        });
        self.commit_auth_change(tx).await
    }

    /// The apps holding live tokens of an account (the account page's "Connected apps").
    pub async fn connected_apps(&self, account: i64) -> Result<Vec<ConnectedApp>, StoreError> {
        Ok(on_db!(&self.db, |c| {
            let rows = sqlx::query(
                "SELECT p.app_key, p.name, p.access_type, MIN(t.created) AS since \
                 FROM tokens t JOIN apps p ON p.id = t.app \
                 WHERE t.account = $1 AND t.revoked = 0 AND (t.expires IS NULL OR t.expires > $2) \
                 GROUP BY p.app_key, p.name, p.access_type ORDER BY lower(p.name)",
            )
            .bind(account)
            .bind(now())
            .fetch_all(c)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok::<_, sqlx::Error>(ConnectedApp {
                        key: r.text("app_key")?,
                        name: r.text("name")?,
                        app_folder: r.text("access_type")? == "app_folder",
                        since: r.int("since")?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        }))
    }

    /// Revokes every token an app holds for an account and forgets its grant, so the app
    /// must ask again. `false` when it held none.
    pub async fn disconnect_app(&self, account: i64, app_key: &str) -> Result<bool, StoreError> {
        let mut tx = self.db.begin(None).await?;
        let revoked = on_tx!(&mut tx, |c| {
            let n = sqlx::query(
                "UPDATE tokens SET revoked = 1 WHERE account = $1 AND revoked = 0 \
                 AND app = (SELECT id FROM apps WHERE app_key = $2)",
            )
            .bind(account)
            .bind(app_key)
            .execute(&mut *c)
            .await?
            .rows_affected();
            sqlx::query(
                "DELETE FROM grants WHERE account = $1 AND app = (SELECT id FROM apps WHERE app_key = $2)",
            )
            .bind(account)
            .bind(app_key)
            .execute(&mut *c)
            .await?;
            n
        });
        self.commit_auth_change(tx).await?;
        Ok(revoked > 0)
    }

    /// Scopes a user already granted an app (for `include_granted_scopes` and to skip the
    /// consent page when nothing new is asked).
    pub async fn granted_scopes(&self, account: i64, app: i64) -> Result<Vec<String>, StoreError> {
        let s: Option<String> = on_db!(&self.db, |c| sqlx::query_scalar(
            "SELECT scopes FROM grants WHERE account = $1 AND app = $2",
        )
        .bind(account)
        .bind(app)
        .fetch_optional(c)
        .await?);
        Ok(s.map(|s| parse_scopes(&s)).unwrap_or_default())
    }

    /// Records that a user approved scopes for an app (kept as the union of approvals).
    pub async fn record_grant(
        &self,
        account: i64,
        app: i64,
        scopes: &[String],
    ) -> Result<(), StoreError> {
        let mut all = self.granted_scopes(account, app).await?;
        for s in scopes {
            if !all.contains(s) {
                all.push(s.clone());
            }
        }
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "INSERT INTO grants (account, app, scopes, updated) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (account, app) DO UPDATE SET scopes = excluded.scopes, updated = \
                 excluded.updated",
            )
            .bind(account)
            .bind(app)
            .bind(all.join(" "))
            .bind(now())
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        tx.commit(None).await?;
        Ok(())
    }

    /// Records an approval and mints its authorization code.
    pub async fn create_code(&self, req: &CodeRequest) -> Result<String, StoreError> {
        self.record_grant(req.account, req.app, &req.scopes).await?;
        let code = random_token("cbc1.");
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| {
            sqlx::query("DELETE FROM oauth_codes WHERE expires < $1")
                .bind(now() - CODE_SECS)
                .execute(&mut *c)
                .await?;
            sqlx::query(
                "INSERT INTO oauth_codes (code_hash, app, account, scopes, redirect_uri, \
                 challenge, challenge_method, access_type, expires) VALUES ($1, $2, $3, $4, $5, \
                 $6, $7, $8, $9)",
            )
            .bind(token_hash(&code))
            .bind(req.app)
            .bind(req.account)
            .bind(req.scopes.join(" "))
            .bind(req.redirect_uri.as_deref())
            .bind(req.challenge.as_ref().map(|c| c.0.as_str()))
            .bind(req.challenge.as_ref().map(|c| c.1.as_str()))
            .bind(req.access.as_str())
            .bind(now() + CODE_SECS)
            .execute(&mut *c)
            .await?;
        });
        tx.commit(None).await?;
        Ok(code)
    }

    /// Exchanges an authorization code (`grant_type=authorization_code`).
    ///
    /// A code works once. A replayed code revokes what the first exchange issued (RFC 6749
    /// §4.1.2). `client_authenticated` says the caller proved the app's secret; without it
    /// the code must carry a PKCE challenge that `verifier` answers.
    pub async fn redeem_code(
        &self,
        code: &str,
        app: &App,
        client_authenticated: bool,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
    ) -> Result<Issued, GrantError> {
        let hash = token_hash(code);
        let row = on_db!(&self.db, |c| {
            let row = sqlx::query(
                "SELECT app, account, scopes, redirect_uri, challenge, challenge_method, \
                 access_type, expires, used, token FROM oauth_codes WHERE code_hash = $1",
            )
            .bind(&hash)
            .fetch_optional(c)
            .await?;
            row.map(|r| -> Result<_, sqlx::Error> {
                Ok((
                    r.int("app")?,
                    r.int("account")?,
                    r.text("scopes")?,
                    r.opt_text("redirect_uri")?,
                    r.opt_text("challenge")?,
                    r.opt_text("challenge_method")?,
                    r.text("access_type")?,
                    (r.int("expires")?, r.int("used")? != 0, r.opt_int("token")?),
                ))
            })
            .transpose()?
        });
        let Some((code_app, account, scopes, code_redirect, challenge, method, access, state)) =
            row
        else {
            return Err(GrantError::InvalidGrant(
                "code doesn't exist or has expired",
            ));
        };
        let (expires, used, issued_token) = state;
        if code_app != app.id {
            return Err(GrantError::InvalidGrant("code was issued to another app"));
        }
        if used {
            if let Some(t) = issued_token {
                self.revoke_token(t).await?;
            }
            return Err(GrantError::InvalidGrant("code has already been used"));
        }
        // Claim the code before anything else, so two racing exchanges cannot both win.
        let mut tx = self.db.begin(None).await?;
        let claimed = on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE oauth_codes SET used = 1 WHERE code_hash = $1 AND used = 0"
        )
        .bind(&hash)
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit(None).await?;
        if claimed != 1 {
            return Err(GrantError::InvalidGrant("code has already been used"));
        }
        if expires <= now() {
            return Err(GrantError::InvalidGrant(
                "code doesn't exist or has expired",
            ));
        }
        if code_redirect.as_deref() != redirect_uri {
            return Err(GrantError::InvalidGrant("redirect_uri mismatch"));
        }
        let pkce = match (challenge, verifier) {
            (Some(ch), Some(v)) => {
                let ok = match method.as_deref() {
                    Some("plain") => ct_eq(ch.as_bytes(), v.as_bytes()),
                    _ => ct_eq(ch.as_bytes(), pkce_s256(v).as_bytes()),
                };
                if !ok {
                    return Err(GrantError::InvalidGrant("invalid code verifier"));
                }
                true
            }
            (Some(_), None) => {
                return Err(GrantError::InvalidGrant("code verifier missing"));
            }
            (None, Some(_)) if !client_authenticated => {
                return Err(GrantError::InvalidGrant(
                    "code verifier given, but the code was issued without a code challenge",
                ));
            }
            (None, _) => {
                if !client_authenticated {
                    return Err(GrantError::InvalidClient("client secret missing"));
                }
                false
            }
        };
        let account = self
            .account_by_id(account)
            .await?
            .filter(|a| !a.disabled)
            .ok_or(GrantError::InvalidGrant("the user's account is disabled"))?;
        let access = TokenAccess::parse(&access).unwrap_or(TokenAccess::Online);
        let issued = self
            .issue(&account, app, parse_scopes(&scopes), access, pkce)
            .await?;
        // Remember what the code issued, so a replay can revoke it.
        let issued_hash = token_hash(
            issued
                .refresh_token
                .as_ref()
                .unwrap_or(&issued.access_token),
        );
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE oauth_codes SET token = (SELECT id FROM tokens WHERE token_hash = $1) \
                 WHERE code_hash = $2",
            )
            .bind(&issued_hash)
            .bind(&hash)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        tx.commit(None).await?;
        Ok(issued)
    }

    /// Mints a new access token from a refresh token (`grant_type=refresh_token`).
    /// `scopes`, when given, must be a subset of the refresh token's: a down-scope.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        app: &App,
        client_authenticated: bool,
        scopes: Option<Vec<String>>,
    ) -> Result<Issued, GrantError> {
        let row = on_db!(&self.db, |c| {
            let row = sqlx::query(
                "SELECT id, account, app, scopes, revoked, pkce FROM tokens \
                 WHERE token_hash = $1 AND kind = 'refresh'",
            )
            .bind(token_hash(refresh_token))
            .fetch_optional(c)
            .await?;
            row.map(|r| -> Result<_, sqlx::Error> {
                Ok((
                    r.int("id")?,
                    r.int("account")?,
                    r.int("app")?,
                    r.text("scopes")?,
                    r.int("revoked")? != 0,
                    r.int("pkce")? != 0,
                ))
            })
            .transpose()?
        });
        let Some((id, account, token_app, granted, revoked, pkce)) = row else {
            return Err(GrantError::InvalidGrant("refresh token is malformed"));
        };
        if revoked || token_app != app.id {
            return Err(GrantError::InvalidGrant("refresh token has been revoked"));
        }
        // RFC 6749 section 6: a confidential client authenticates; a public one has no secret
        // to prove, whether its refresh token came from PKCE or from `cubby admin token`.
        if !client_authenticated && !pkce && !app.public_client {
            return Err(GrantError::InvalidClient("client secret missing"));
        }
        let granted = parse_scopes(&granted);
        let scopes = match scopes {
            None => granted,
            Some(asked) => {
                if let Some(s) = asked.iter().find(|s| !granted.contains(s)) {
                    return Err(GrantError::InvalidScope(format!(
                        "scope '{s}' was not granted to this refresh token"
                    )));
                }
                asked
            }
        };
        let account = self
            .account_by_id(account)
            .await?
            .filter(|a| !a.disabled)
            .ok_or(GrantError::InvalidGrant("the user's account is disabled"))?;
        let access_token = random_token("sl.cby1.");
        let mut tx = self.db.begin(None).await?;
        self.insert_access(
            &mut tx,
            &access_token,
            account.id,
            app.id,
            &scopes,
            Some(id),
            Some(ACCESS_TOKEN_SECS),
        )
        .await?;
        tx.commit(None).await?;
        Ok(Issued {
            access_token,
            expires_in: Some(ACCESS_TOKEN_SECS),
            refresh_token: None,
            scopes,
            account,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> AuthInfo {
        AuthInfo {
            account: Account {
                id: 1,
                account_id: "dbid:x".into(),
                name: "alice".into(),
                email: "a@example.com".into(),
                disabled: false,
                ns: 1,
                quota: None,
                operator: false,
            },
            token_id: 1,
            app_key: "k".into(),
            app_name: "a".into(),
            app_folder: false,
            scopes: Vec::new(),
            root: String::new(),
            expired: false,
        }
    }

    #[test]
    fn the_token_cache_checks_expiry_on_every_use_and_holds_one_epoch() {
        let cache = AuthCache::default();
        cache.put(b"live".to_vec(), 7, &info(), Some(now() + 3600));
        cache.put(b"past".to_vec(), 7, &info(), Some(now() - 1));
        cache.put(b"legacy".to_vec(), 7, &info(), None);
        assert!(!cache.get(b"live", 7).unwrap().expired);
        assert!(cache.get(b"past", 7).unwrap().expired);
        assert!(!cache.get(b"legacy", 7).unwrap().expired);
        // Another epoch: a revocation happened since; nothing is answered from memory.
        assert!(cache.get(b"live", 8).is_none());
        assert!(cache.get(b"unknown", 7).is_none());
    }

    #[test]
    fn a_full_token_cache_starts_over() {
        let cache = AuthCache::default();
        for i in 0..AUTH_CACHE_MAX {
            cache.put(i.to_le_bytes().to_vec(), 0, &info(), None);
        }
        assert!(cache.get(&0usize.to_le_bytes(), 0).is_some());
        cache.put(b"one more".to_vec(), 0, &info(), None);
        assert!(cache.get(&0usize.to_le_bytes(), 0).is_none());
        assert!(cache.get(b"one more", 0).is_some());
    }
}
