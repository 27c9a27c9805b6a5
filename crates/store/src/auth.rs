//! Accounts, apps, OAuth 2 codes and grants, tokens, and web sign-in sessions.
//!
//! Security Invariant: no secret is stored in the clear. Tokens, codes, refresh tokens and
//! web session ids are 256-bit random strings kept as SHA-256 digests (a lookup by digest
//! reveals nothing through timing); app secrets are SHA-256 digests compared in constant
//! time; passwords are Argon2id hashes.

use cubby_core::hash::{ct_eq, pkce_s256};
use cubby_core::ids;
use sha2::{Digest, Sha256};

use crate::db::{RowExt, on_db, on_tx};
use crate::meta::OpError;
use crate::{Store, StoreError, now, random_bytes};

/// Lifetime of a short-lived access token, as Dropbox's (`expires_in` 14400).
pub const ACCESS_TOKEN_SECS: i64 = 4 * 3600;
/// Lifetime of an authorization code: long enough to paste it by hand.
pub const CODE_SECS: i64 = 10 * 60;
/// Lifetime of a web sign-in session.
pub const WEB_SESSION_SECS: i64 = 7 * 24 * 3600;

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

/// Every user scope Cubby knows, in the order Dropbox's console lists them.
pub const ALL_SCOPES: &[&str] = &[
    "account_info.read",
    "account_info.write",
    "files.metadata.read",
    "files.metadata.write",
    "files.content.read",
    "files.content.write",
    "files.permanent_delete",
    "sharing.read",
    "sharing.write",
];

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

/// An app's content access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessType {
    Full,
    AppFolder,
}

impl AccessType {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessType::Full => "full",
            AccessType::AppFolder => "app_folder",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "full" => Some(AccessType::Full),
            "app_folder" => Some(AccessType::AppFolder),
            _ => None,
        }
    }
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

/// A registered app.
#[derive(Clone, Debug)]
pub struct App {
    pub id: i64,
    pub key: String,
    pub name: String,
    pub access: AccessType,
    pub scopes: Vec<String>,
    pub redirect_uris: Vec<String>,
    /// A public client has no secret and must use PKCE.
    pub public_client: bool,
    pub owner: Option<i64>,
    pub created: i64,
}

impl App {
    /// The app's root in a user's namespace (display form).
    pub fn root(&self) -> String {
        match self.access {
            AccessType::Full => String::new(),
            AccessType::AppFolder => format!("/Apps/{}", self.name),
        }
    }
}

/// What registering an app takes.
#[derive(Clone, Debug)]
pub struct NewApp {
    pub name: String,
    pub access: AccessType,
    /// An explicit key (an existing Dropbox integration's); generated when `None`.
    pub key: Option<String>,
    /// An explicit secret; generated when `None` (and none for a public client).
    pub secret: Option<String>,
    pub redirect_uris: Vec<String>,
    pub public_client: bool,
    /// Allowed scopes; all of [`ALL_SCOPES`] when empty.
    pub scopes: Vec<String>,
    pub owner: Option<i64>,
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

/// A signed-in browser.
#[derive(Clone, Debug)]
pub struct WebSession {
    pub account: Account,
    /// The synchronizer token every form of this session must carry.
    pub csrf: String,
}

pub(crate) fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn secret_hash(secret: &str) -> String {
    cubby_core::hash::hex(&Sha256::digest(secret.as_bytes()))
}

fn random_token(prefix: &str) -> String {
    ids::token(prefix, random_bytes())
}

/// Checks a redirect URI as Dropbox's console does: HTTPS, or plain HTTP to this machine.
/// Whether a requested redirect URI matches a registered one: exactly, or, for loopback
/// addresses over plain HTTP, in everything but the port (RFC 8252 §7.3: a native app's
/// loopback listener takes whatever port is free).
pub fn redirect_uri_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    fn split(uri: &str) -> Option<(&str, &str)> {
        let rest = uri.strip_prefix("http://")?;
        let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
        let host = if let Some(v6) = authority.strip_prefix('[') {
            &authority[..v6.find(']')? + 2]
        } else {
            authority.split(':').next()?
        };
        matches!(host, "127.0.0.1" | "[::1]" | "localhost").then_some((host, path))
    }
    match (split(registered), split(requested)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

pub fn valid_redirect_uri(uri: &str) -> bool {
    let rest = if let Some(r) = uri.strip_prefix("https://") {
        r
    } else if let Some(r) = uri.strip_prefix("http://") {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
        let name = if host.starts_with('[') {
            host.split_once(']')
                .map_or(host, |(h, _)| h)
                .trim_start_matches('[')
        } else {
            host.split(':').next().unwrap_or("")
        };
        if !matches!(name, "localhost" | "127.0.0.1" | "::1") {
            return false;
        }
        r
    } else {
        return false;
    };
    !rest.is_empty() && !uri.contains('#') && !uri.chars().any(char::is_whitespace)
}

fn valid_app_key(key: &str) -> bool {
    (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
}

/// An app name becomes a folder name (`/Apps/<name>`), so it must be a valid one.
fn valid_app_name(name: &str) -> bool {
    let trimmed = name.trim();
    !trimmed.is_empty()
        && trimmed == name
        && name.chars().count() <= 50
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
        && !cubby_core::path::is_disallowed_name(name)
}

fn parse_scopes(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

fn check_scopes(scopes: &[String]) -> Result<(), OpError> {
    match scopes.iter().find(|s| !ALL_SCOPES.contains(&s.as_str())) {
        Some(s) => Err(OpError::Invalid(format!("unknown scope '{s}'"))),
        None => Ok(()),
    }
}

const APP_COLUMNS: &str = "SELECT id, app_key, name, access_type, scopes, redirect_uris, public_client, owner, created FROM apps";

fn app_from_row(r: &impl RowExt) -> Result<App, sqlx::Error> {
    Ok(App {
        id: r.int("id")?,
        key: r.text("app_key")?,
        name: r.text("name")?,
        access: AccessType::parse(&r.text("access_type")?).unwrap_or(AccessType::AppFolder),
        scopes: parse_scopes(&r.text("scopes")?),
        redirect_uris: serde_json::from_str(&r.text("redirect_uris")?).unwrap_or_default(),
        public_client: r.int("public_client")? != 0,
        owner: r.opt_int("owner")?,
        created: r.int("created")?,
    })
}

const ACCOUNT_COLUMNS: &str =
    "SELECT id, account_id, name, email, disabled, ns, quota FROM accounts";

fn account_from_row(row: &impl RowExt) -> Result<Account, sqlx::Error> {
    Ok(Account {
        id: row.int("id")?,
        account_id: row.text("account_id")?,
        name: row.text("name")?,
        email: row.text("email")?,
        disabled: row.int("disabled")? != 0,
        ns: row.int("ns")? as u64,
        quota: row.opt_int("quota")?.map(|q| q as u64),
    })
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

fn hash_password(password: &str) -> Result<String, OpError> {
    use argon2::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| OpError::Invalid(format!("password hashing failed: {e}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::PasswordVerifier;
    argon2::PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Runs Argon2 off the async worker threads: it is deliberately slow.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("password hashing does not panic")
}

/// Hashes a password with Argon2id on the blocking pool.
pub(crate) async fn hash_password_blocking(password: String) -> Result<String, StoreError> {
    blocking(move || hash_password(&password))
        .await
        .map_err(|e| StoreError::Invalid(e.to_string()))
}

/// Checks a password against an Argon2id hash on the blocking pool.
pub(crate) async fn verify_password_blocking(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    blocking(move || verify_password(&password, &hash)).await
}

fn check_password_rules(password: &str) -> Result<(), OpError> {
    if password.chars().count() < 8 {
        return Err(OpError::Invalid(
            "passwords are at least 8 characters".into(),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Accounts.

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
        let exists: Option<i64> = on_tx!(&mut tx, c => sqlx::query_scalar("SELECT id FROM accounts WHERE lower(name) = lower($1)")
            .bind(name)
            .fetch_optional(&mut *c)
            .await?);
        if exists.is_some() {
            return Err(OpError::Invalid(format!("user '{name}' already exists")));
        }
        let account_id = ids::account_id(random_bytes());
        on_tx!(&mut tx, c => {
            let ns: i64 = sqlx::query_scalar("INSERT INTO namespaces (created) VALUES ($1) RETURNING id")
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
        on_db!(&self.db, c => {
            let sql = sqlx::AssertSqlSafe(format!("{ACCOUNT_COLUMNS} WHERE id = $1"));
            let row = sqlx::query(sql).bind(id).fetch_optional(c).await?;
            Ok(row.map(|r| account_from_row(&r)).transpose()?)
        })
    }

    async fn account_where(
        &self,
        clause: &str,
        value: &str,
    ) -> Result<Option<Account>, StoreError> {
        on_db!(&self.db, c => {
            let sql = sqlx::AssertSqlSafe(format!("{ACCOUNT_COLUMNS} {clause}"));
            let row = sqlx::query(sql).bind(value).fetch_optional(c).await?;
            Ok(row.map(|r| account_from_row(&r)).transpose()?)
        })
    }

    /// Every account, by name.
    pub async fn users(&self) -> Result<Vec<Account>, StoreError> {
        on_db!(&self.db, c => {
            let sql = sqlx::AssertSqlSafe(format!("{ACCOUNT_COLUMNS} ORDER BY lower(name)"));
            let rows = sqlx::query(sql).fetch_all(c).await?;
            Ok(rows.iter().map(account_from_row).collect::<Result<_, _>>()?)
        })
    }

    /// Disables or re-enables a user. A disabled user's tokens stop working at once (on other
    /// servers when the notification reaches them; see [`AuthCache`]).
    pub async fn set_disabled(&self, name: &str, disabled: bool) -> Result<(), OpError> {
        let account = self.user(name).await?;
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, c => sqlx::query("UPDATE accounts SET disabled = $1 WHERE id = $2")
            .bind(i64::from(disabled))
            .bind(account.id)
            .execute(&mut *c)
            .await?.rows_affected());
        if disabled {
            on_tx!(&mut tx, c => sqlx::query("DELETE FROM web_sessions WHERE account = $1")
                .bind(account.id)
                .execute(&mut *c)
                .await?.rows_affected());
        }
        self.commit_auth_change(tx).await?;
        Ok(())
    }

    /// Sets or removes (`None`) a user's quota, in bytes of live files. Writes that would pass
    /// it fail with `insufficient_space`; what is stored already stays.
    pub async fn set_quota(&self, name: &str, quota: Option<u64>) -> Result<(), OpError> {
        let account = self.user(name).await?;
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, c => sqlx::query("UPDATE accounts SET quota = $1 WHERE id = $2")
            .bind(quota.map(|q| q as i64))
            .bind(account.id)
            .execute(&mut *c)
            .await?.rows_affected());
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
        on_tx!(&mut tx, c => {
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
        let row: Option<(Account, Option<String>)> = on_db!(&self.db, c => {
            let row = sqlx::query(
                "SELECT id, account_id, name, email, disabled, ns, quota, password_hash FROM accounts \
                 WHERE lower(name) = lower($1) OR lower(email) = lower($1) ORDER BY id LIMIT 1",
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

// ---------------------------------------------------------------------------------------
// Apps.

impl Store {
    /// Registers an app; returns it with its secret (shown once: only a digest is kept).
    pub async fn add_app(&self, new: NewApp) -> Result<(App, Option<String>), OpError> {
        if !valid_app_name(&new.name) {
            return Err(OpError::Invalid(
                "app names are 1 to 50 characters, usable as a folder name (no '/' or '\\')".into(),
            ));
        }
        let key = match new.key {
            Some(k) if valid_app_key(&k) => k,
            Some(_) => {
                return Err(OpError::Invalid(
                    "app keys are 1 to 64 characters of letters, digits, '.', '_' and '-'".into(),
                ));
            }
            None => ids::app_key(random_bytes()),
        };
        let secret = match (new.public_client, new.secret) {
            (true, Some(_)) => {
                return Err(OpError::Invalid(
                    "a public client has no secret: it uses PKCE".into(),
                ));
            }
            (true, None) => None,
            (false, Some(s)) if s.len() >= 8 && !s.chars().any(char::is_whitespace) => Some(s),
            (false, Some(_)) => {
                return Err(OpError::Invalid(
                    "app secrets are at least 8 characters, without spaces".into(),
                ));
            }
            (false, None) => Some(ids::password(random_bytes())),
        };
        if let Some(bad) = new.redirect_uris.iter().find(|u| !valid_redirect_uri(u)) {
            return Err(OpError::Invalid(format!(
                "redirect URI '{bad}' must be https://…, or http:// to localhost, without a fragment"
            )));
        }
        let scopes = if new.scopes.is_empty() {
            ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect()
        } else {
            check_scopes(&new.scopes)?;
            new.scopes
        };
        let mut tx = self.db.begin(None).await?;
        let clash: Option<String> = on_tx!(&mut tx, c => sqlx::query_scalar(
            "SELECT app_key FROM apps WHERE app_key = $1 OR lower(name) = lower($2)",
        )
        .bind(&key)
        .bind(&new.name)
        .fetch_optional(&mut *c)
        .await?);
        if let Some(k) = clash {
            return Err(OpError::Invalid(if k == key {
                format!("an app with key '{key}' already exists")
            } else {
                format!("an app named '{}' already exists", new.name)
            }));
        }
        let uris = serde_json::to_string(&new.redirect_uris).expect("strings serialize");
        on_tx!(&mut tx, c => sqlx::query(
            "INSERT INTO apps (app_key, secret_hash, name, access_type, scopes, redirect_uris, public_client, owner, created) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&key)
        .bind(secret.as_deref().map(secret_hash))
        .bind(&new.name)
        .bind(new.access.as_str())
        .bind(scopes.join(" "))
        .bind(&uris)
        .bind(i64::from(new.public_client))
        .bind(new.owner)
        .bind(now())
        .execute(&mut *c)
        .await?.rows_affected());
        tx.commit(None).await?;
        let app = self.app(&key).await?.ok_or(OpError::NoSuchApp)?;
        Ok((app, secret))
    }

    /// An app by key.
    pub async fn app(&self, key: &str) -> Result<Option<App>, StoreError> {
        on_db!(&self.db, c => {
            let sql = sqlx::AssertSqlSafe(format!("{APP_COLUMNS} WHERE app_key = $1"));
            let row = sqlx::query(sql).bind(key).fetch_optional(c).await?;
            Ok(row.map(|r| app_from_row(&r)).transpose()?)
        })
    }

    /// Apps registered by one user, or every app when `owner` is `None`.
    pub async fn apps(&self, owner: Option<i64>) -> Result<Vec<App>, StoreError> {
        on_db!(&self.db, c => {
            let rows = match owner {
                Some(o) => {
                    let sql = sqlx::AssertSqlSafe(format!("{APP_COLUMNS} WHERE owner = $1 ORDER BY id"));
                    sqlx::query(sql).bind(o).fetch_all(c).await?
                }
                None => {
                    let sql = sqlx::AssertSqlSafe(format!("{APP_COLUMNS} ORDER BY id"));
                    sqlx::query(sql).fetch_all(c).await?
                }
            };
            Ok(rows.iter().map(app_from_row).collect::<Result<_, _>>()?)
        })
    }

    /// Authenticates an app by key and secret (HTTP Basic or form fields). `None` for an
    /// unknown key, a public client, or a wrong secret; the digests compare in constant time.
    pub async fn authenticate_app(
        &self,
        key: &str,
        secret: &str,
    ) -> Result<Option<App>, StoreError> {
        let stored: Option<Option<String>> = on_db!(&self.db, c => sqlx::query_scalar(
            "SELECT secret_hash FROM apps WHERE app_key = $1",
        )
        .bind(key)
        .fetch_optional(c)
        .await?);
        let presented = secret_hash(secret);
        let ok = match stored {
            Some(Some(h)) => ct_eq(h.as_bytes(), presented.as_bytes()),
            _ => {
                // Same work for an unknown key as for a known one.
                let _ = ct_eq(presented.as_bytes(), presented.as_bytes());
                false
            }
        };
        if !ok {
            return Ok(None);
        }
        self.app(key).await
    }

    /// Replaces an app's secret (the owner asked in the console); returns the new one.
    pub async fn reset_app_secret(&self, key: &str, owner: i64) -> Result<String, OpError> {
        let secret = ids::password(random_bytes());
        let mut tx = self.db.begin(None).await?;
        let n = on_tx!(&mut tx, c => sqlx::query(
            "UPDATE apps SET secret_hash = $1 WHERE app_key = $2 AND owner = $3 AND public_client = 0",
        )
        .bind(secret_hash(&secret))
        .bind(key)
        .bind(owner)
        .execute(&mut *c)
        .await?.rows_affected());
        if n == 0 {
            return Err(OpError::NoSuchApp);
        }
        tx.commit(None).await?;
        Ok(secret)
    }
}

// ---------------------------------------------------------------------------------------
// Tokens.

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
            Some(r) => Some(on_tx!(&mut tx, c => sqlx::query_scalar(
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
        Ok(on_tx!(tx, c => sqlx::query_scalar(
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
        let found = on_db!(&self.db, c => {
            let row = sqlx::query(
                "SELECT t.id AS token_id, t.scopes, t.expires, t.revoked, \
                        a.id, a.account_id, a.name, a.email, a.disabled, a.ns, a.quota, \
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
    async fn commit_auth_change(&self, mut tx: crate::db::Tx) -> Result<(), StoreError> {
        tx.notify_auth_changed().await?;
        tx.commit(None).await?;
        self.notifier.auth_changed();
        Ok(())
    }

    /// Revokes a token and its family: the refresh token it came from and every access
    /// token minted from that refresh token (`auth/token/revoke`).
    pub async fn revoke_token(&self, token_id: i64) -> Result<(), StoreError> {
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, c => {
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

    /// Scopes a user already granted an app (for `include_granted_scopes` and to skip the
    /// consent page when nothing new is asked).
    pub async fn granted_scopes(&self, account: i64, app: i64) -> Result<Vec<String>, StoreError> {
        let s: Option<String> = on_db!(&self.db, c => sqlx::query_scalar(
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
        on_tx!(&mut tx, c => sqlx::query(
            "INSERT INTO grants (account, app, scopes, updated) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (account, app) DO UPDATE SET scopes = excluded.scopes, updated = excluded.updated",
        )
        .bind(account)
        .bind(app)
        .bind(all.join(" "))
        .bind(now())
        .execute(&mut *c)
        .await?.rows_affected());
        tx.commit(None).await?;
        Ok(())
    }

    /// Records an approval and mints its authorization code.
    pub async fn create_code(&self, req: &CodeRequest) -> Result<String, StoreError> {
        self.record_grant(req.account, req.app, &req.scopes).await?;
        let code = random_token("cbc1.");
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, c => {
            sqlx::query("DELETE FROM oauth_codes WHERE expires < $1")
                .bind(now() - CODE_SECS)
                .execute(&mut *c)
                .await?;
            sqlx::query(
                "INSERT INTO oauth_codes (code_hash, app, account, scopes, redirect_uri, challenge, \
                 challenge_method, access_type, expires) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
        let row = on_db!(&self.db, c => {
            let row = sqlx::query(
                "SELECT app, account, scopes, redirect_uri, challenge, challenge_method, access_type, \
                 expires, used, token FROM oauth_codes WHERE code_hash = $1",
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
        let claimed = on_tx!(&mut tx, c => sqlx::query("UPDATE oauth_codes SET used = 1 WHERE code_hash = $1 AND used = 0")
            .bind(&hash)
            .execute(&mut *c)
            .await?.rows_affected());
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
        on_tx!(&mut tx, c => sqlx::query(
            "UPDATE oauth_codes SET token = (SELECT id FROM tokens WHERE token_hash = $1) WHERE code_hash = $2",
        )
        .bind(&issued_hash)
        .bind(&hash)
        .execute(&mut *c)
        .await?.rows_affected());
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
        let row = on_db!(&self.db, c => {
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

// ---------------------------------------------------------------------------------------
// Web sessions.

impl Store {
    /// Signs a browser in: returns the cookie value (only its digest is kept).
    pub async fn create_web_session(&self, account: i64) -> Result<String, StoreError> {
        let id = random_token("cbs1.");
        let csrf = ids::token("", random_bytes());
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, c => {
            sqlx::query("DELETE FROM web_sessions WHERE expires < $1")
                .bind(now())
                .execute(&mut *c)
                .await?;
            sqlx::query("INSERT INTO web_sessions (id_hash, account, csrf, expires) VALUES ($1, $2, $3, $4)")
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
        let row = on_db!(&self.db, c => {
            let row = sqlx::query("SELECT account, csrf FROM web_sessions WHERE id_hash = $1 AND expires > $2")
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
        on_tx!(&mut tx, c => sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
            .bind(token_hash(cookie))
            .execute(&mut *c)
            .await?.rows_affected());
        tx.commit(None).await?;
        Ok(())
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

    #[test]
    fn loopback_redirects_match_on_any_port() {
        assert!(redirect_uri_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:53682/callback"
        ));
        assert!(redirect_uri_matches(
            "http://[::1]:1/cb",
            "http://[::1]:2/cb"
        ));
        assert!(redirect_uri_matches(
            "https://a.example/cb",
            "https://a.example/cb"
        ));
        assert!(!redirect_uri_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:5/other"
        ));
        assert!(!redirect_uri_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.2:5/callback"
        ));
        assert!(!redirect_uri_matches(
            "https://a.example/cb",
            "https://a.example:444/cb"
        ));
        assert!(!redirect_uri_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1.evil.example/cb"
        ));
        assert!(!redirect_uri_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1@evil.example/cb"
        ));
    }

    #[test]
    fn redirect_uris() {
        assert!(valid_redirect_uri("https://example.com/cb"));
        assert!(valid_redirect_uri("http://localhost:8765/cb"));
        assert!(valid_redirect_uri("http://127.0.0.1/cb"));
        assert!(valid_redirect_uri("http://[::1]:9000/"));
        assert!(!valid_redirect_uri("http://example.com/cb"));
        assert!(!valid_redirect_uri("http://localhost.evil.com/cb"));
        assert!(!valid_redirect_uri("http://evil.com@x/cb"));
        assert!(!valid_redirect_uri("https://example.com/cb#frag"));
        assert!(!valid_redirect_uri("javascript:alert(1)"));
        assert!(!valid_redirect_uri("https://"));
    }

    #[test]
    fn app_names() {
        assert!(valid_app_name("My Backup"));
        assert!(!valid_app_name(".."));
        assert!(!valid_app_name("a/b"));
        assert!(!valid_app_name(" padded"));
        assert!(!valid_app_name(""));
    }
}

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
        let (accounts, version_bytes) = on_db!(&self.db, c => {
            let rows = sqlx::query(
                "SELECT a.name, n.used, a.quota FROM accounts a JOIN namespaces n ON n.id = a.ns ORDER BY lower(a.name)",
            )
            .fetch_all(c)
            .await?;
            let accounts = rows
                .iter()
                .map(|r| Ok::<_, sqlx::Error>((r.text("name")?, r.int("used")? as u64, r.opt_int("quota")?.map(|q| q as u64))))
                .collect::<Result<Vec<_>, _>>()?;
            let versions: i64 = sqlx::query_scalar("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM revisions")
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
