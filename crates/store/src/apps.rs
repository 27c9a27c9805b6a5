//! Registered OAuth 2 apps: keys, secrets, access types, allowed scopes and redirect URIs.
//!
//! Security Invariant: an app secret is kept only as a SHA-256 digest, compared in constant
//! time.

use cubby_core::hash::ct_eq;
use cubby_core::ids;
use sha2::{Digest, Sha256};

use crate::db::{RowExt, on_db, on_tx};
use crate::meta::OpError;
use crate::{Store, StoreError, now, random_bytes};

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

fn secret_hash(secret: &str) -> String {
    cubby_core::hash::hex(&Sha256::digest(secret.as_bytes()))
}

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

/// Checks a redirect URI as Dropbox's console does: HTTPS, or plain HTTP to this machine.
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

pub(crate) fn parse_scopes(s: &str) -> Vec<String> {
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
        let clash: Option<String> = on_tx!(&mut tx, |c| sqlx::query_scalar(
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
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "INSERT INTO apps (app_key, secret_hash, name, access_type, scopes, redirect_uris, \
                 public_client, owner, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
            .await?
            .rows_affected()
        });
        tx.commit(None).await?;
        let app = self.app(&key).await?.ok_or(OpError::NoSuchApp)?;
        Ok((app, secret))
    }

    /// An app by key.
    pub async fn app(&self, key: &str) -> Result<Option<App>, StoreError> {
        on_db!(&self.db, |c| {
            let sql = sqlx::AssertSqlSafe(format!("{APP_COLUMNS} WHERE app_key = $1"));
            let row = sqlx::query(sql).bind(key).fetch_optional(c).await?;
            Ok(row.map(|r| app_from_row(&r)).transpose()?)
        })
    }

    /// Apps registered by one user, or every app when `owner` is `None`.
    pub async fn apps(&self, owner: Option<i64>) -> Result<Vec<App>, StoreError> {
        on_db!(&self.db, |c| {
            let rows = match owner {
                Some(o) => {
                    let sql =
                        sqlx::AssertSqlSafe(format!("{APP_COLUMNS} WHERE owner = $1 ORDER BY id"));
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
        let stored: Option<Option<String>> = on_db!(&self.db, |c| sqlx::query_scalar(
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
        let n = on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE apps SET secret_hash = $1 WHERE app_key = $2 AND owner = $3 \
                 AND public_client = 0",
            )
            .bind(secret_hash(&secret))
            .bind(key)
            .bind(owner)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if n == 0 {
            return Err(OpError::NoSuchApp);
        }
        tx.commit(None).await?;
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
