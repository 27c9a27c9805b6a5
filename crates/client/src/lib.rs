//! A typed async client of the Dropbox HTTP API v2, for Cubby servers and dropbox.com alike.
//!
//! Brief overview:
//! - [`Hosts`]: where the API, content, notify and web endpoints live (one URL for a Cubby
//!   server, Dropbox's four hosts for dropbox.com).
//! - [`Client`]: authenticated calls of the three route styles, with retries (429 and 5xx,
//!   honouring `Retry-After`, exponential backoff with jitter) and token refresh.
//! - [`oauth`]: the authorization-code flow with PKCE, and refresh.
//! - [`transfer`]: uploads (one request, or a resumable session with parallel chunks) and
//!   downloads (ranged and parallel for large files), content hashes verified both ways.
//! - [`types`]: Dropbox's wire types, shared with the server (`cubby_core::api`).
//! - [`routes`]: one typed method per route of the wire contract; [`Client::call`] and its
//!   upload and download forms call any route with the route's own types.
//!
//! Errors are [`Error`]s; [`Error::kind`] sorts them for exit codes and retries.

pub mod oauth;
pub mod routes;
pub mod transfer;
pub mod types;

use std::sync::Mutex;
use std::time::Duration;

use cubby_core::api::endpoint as ep;
use cubby_core::api::{Endpoint, Style};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The endpoints of one service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hosts {
    /// RPC routes and `/oauth2/token`.
    pub api: String,
    /// Upload and download routes.
    pub content: String,
    /// `list_folder/longpoll`.
    pub notify: String,
    /// `/oauth2/authorize`, the page a person opens.
    pub web: String,
}

impl Hosts {
    /// The hosts of a server URL: `dropbox` (or dropbox.com) means Dropbox's own four hosts;
    /// anything else is one Cubby server serving everything.
    pub fn for_server(url: &str) -> Self {
        let trimmed = url.trim_end_matches('/');
        if matches!(
            trimmed,
            "dropbox" | "dropbox.com" | "https://dropbox.com" | "https://www.dropbox.com"
        ) {
            return Self {
                api: "https://api.dropboxapi.com".into(),
                content: "https://content.dropboxapi.com".into(),
                notify: "https://notify.dropboxapi.com".into(),
                web: "https://www.dropbox.com".into(),
            };
        }
        let base = if trimmed.contains("://") {
            trimmed.to_owned()
        } else {
            format!("https://{trimmed}")
        };
        Self {
            api: base.clone(),
            content: base.clone(),
            notify: base.clone(),
            web: base,
        }
    }
}

/// The app the client acts as: its key, and its secret unless it is a public (PKCE) client.
#[derive(Clone, Debug)]
pub struct App {
    pub key: String,
    pub secret: Option<String>,
}

/// The tokens of a signed-in account.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tokens {
    pub access_token: String,
    /// Unix seconds; `None` for a long-lived token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// How errors sort, for retries and exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input on our side (400), or a usage mistake.
    BadInput,
    /// The token is missing, expired, revoked or lacks a scope.
    Auth,
    /// A path exists where it should not, or a write lost a race (`conflict`, `already_exists`).
    Conflict,
    /// The path or item does not exist.
    NotFound,
    /// Network failures, 429 and 5xx after the retries ran out: try again later.
    Transient,
    /// Anything else the server refused.
    Refused,
    /// Local files, or content that does not match its hash.
    Local,
}

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A route error (409): Dropbox's `error_summary` and the error union.
    #[error("{summary}")]
    Api { summary: String, error: Value },
    /// 401: the `error_summary` (for example `expired_access_token/`).
    #[error("not authorized: {0}")]
    Auth(String),
    /// 400: the server's plain-text explanation.
    #[error("bad request: {0}")]
    BadInput(String),
    /// 429 or 5xx after every retry.
    #[error("the server is busy or failing (HTTP {status}): {body}")]
    Unavailable { status: u16, body: String },
    #[error("network: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Downloaded or uploaded bytes whose content hash is not the server's.
    #[error("content hash mismatch: expected {expected}, got {got}")]
    HashMismatch { expected: String, got: String },
    #[error("{0}")]
    Protocol(String),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Api { summary, .. } => {
                if summary.contains("not_found") || summary.contains("not_file") {
                    ErrorKind::NotFound
                } else if summary.contains("conflict")
                    || summary.contains("already_exists")
                    || summary.contains("incorrect_offset")
                {
                    ErrorKind::Conflict
                } else if summary.starts_with("too_many_write_operations") {
                    ErrorKind::Transient
                } else {
                    ErrorKind::Refused
                }
            }
            Error::Auth(_) => ErrorKind::Auth,
            Error::BadInput(_) => ErrorKind::BadInput,
            Error::Unavailable { .. } | Error::Http(_) => ErrorKind::Transient,
            Error::Io(_) | Error::HashMismatch { .. } => ErrorKind::Local,
            Error::Protocol(_) => ErrorKind::Refused,
        }
    }

    /// The `error_summary` of a route error, if this is one.
    pub fn summary(&self) -> Option<&str> {
        match self {
            Error::Api { summary, .. } => Some(summary),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How often and how long a call is retried.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The first backoff; it doubles each time, with jitter.
    pub base: Duration,
    /// The longest single wait.
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 6,
            base: Duration::from_millis(250),
            max: Duration::from_secs(30),
        }
    }
}

impl Retry {
    /// The wait before try `n + 1` (n ≥ 1): exponential, with full jitter in its upper half.
    fn backoff(&self, n: u32) -> Duration {
        let exp = self.base.saturating_mul(1 << (n - 1).min(16)).min(self.max);
        let jitter = u64::from(u16::from_le_bytes(random::<2>())) as f64 / 65535.0;
        exp.mul_f64(0.5 + jitter / 2.0)
    }
}

/// Called with the new tokens after a refresh, so they can be saved.
pub type OnRefresh = Box<dyn Fn(&Tokens) + Send + Sync>;

/// An authenticated client.
pub struct Client {
    http: reqwest::Client,
    hosts: Hosts,
    app: App,
    tokens: Mutex<Tokens>,
    refresh_lock: tokio::sync::Mutex<()>,
    on_refresh: Option<OnRefresh>,
    retry: Retry,
    /// Sent as `Dropbox-API-Path-Root` when set (for example `{".tag": "root", "root": NS}`).
    path_root: Option<String>,
}

/// Builds a reqwest client that also trusts `ca_pem` (a Cubby server's local CA), if given.
pub fn http_client(ca_pem: Option<&[u8]>) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("cubby/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(20))
        .read_timeout(Duration::from_secs(600))
        .pool_idle_timeout(Duration::from_secs(60));
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| Error::Protocol(format!("the CA certificate file: {e}")))?;
        b = b.tls_certs_merge(certs);
    }
    Ok(b.build()?)
}

/// A request body that can be sent again on a retry.
#[derive(Clone)]
pub(crate) enum Body {
    Json(Value),
    Bytes(bytes::Bytes),
}

impl Client {
    pub fn new(http: reqwest::Client, hosts: Hosts, app: App, tokens: Tokens) -> Self {
        Self {
            http,
            hosts,
            app,
            tokens: Mutex::new(tokens),
            refresh_lock: tokio::sync::Mutex::new(()),
            on_refresh: None,
            retry: Retry::default(),
            path_root: None,
        }
    }

    /// Calls `f` with new tokens after each refresh.
    pub fn on_refresh(mut self, f: OnRefresh) -> Self {
        self.on_refresh = Some(f);
        self
    }

    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    pub fn hosts(&self) -> &Hosts {
        &self.hosts
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The current tokens.
    pub fn tokens(&self) -> Tokens {
        self.tokens.lock().expect("tokens").clone()
    }

    /// Calls an RPC route of the wire contract: its argument and result types are the route's
    /// own ([`cubby_core::api::Endpoint`]), its host the one the table names.
    pub async fn call<E: Endpoint>(&self, arg: &E::Arg) -> Result<E::Ok> {
        debug_assert_eq!(E::ROUTE.spec().style, Style::Rpc);
        self.rpc(E::ROUTE.name(), arg).await
    }

    /// Calls an upload-style route of the wire contract with `data` as the body.
    pub async fn call_upload<E: Endpoint>(
        &self,
        arg: &E::Arg,
        data: bytes::Bytes,
    ) -> Result<E::Ok> {
        debug_assert_eq!(E::ROUTE.spec().style, Style::Upload);
        self.upload_route(E::ROUTE.name(), arg, data).await
    }

    /// Calls a download-style route of the wire contract: its result, and the response whose
    /// body the caller streams. `range` is an inclusive byte range.
    pub async fn call_download<E: Endpoint>(
        &self,
        arg: &E::Arg,
        range: Option<(u64, u64)>,
    ) -> Result<(E::Ok, reqwest::Response)> {
        debug_assert_eq!(E::ROUTE.spec().style, Style::Download);
        self.download_route(E::ROUTE.name(), arg, range).await
    }

    /// An RPC route (`/2/{route}` on the API host) with a JSON argument and result.
    pub(crate) async fn rpc<A: Serialize, R: DeserializeOwned>(
        &self,
        route: &str,
        arg: &A,
    ) -> Result<R> {
        let arg = serde_json::to_value(arg).map_err(|e| Error::Protocol(e.to_string()))?;
        let url = format!("{}/2/{route}", self.hosts.api);
        let resp = self.send(&url, None, Body::Json(arg), None).await?;
        json_result(route, resp).await
    }

    /// The next page of a listing (`files/list_folder/continue`).
    pub async fn list_folder_continue(&self, cursor: &str) -> Result<types::ListFolderResult> {
        self.call::<ep::ListFolderContinue>(&types::CursorArg {
            cursor: cursor.to_owned(),
        })
        .await
    }

    /// The notify host's longpoll (no authentication, as Dropbox defines it, and a longer
    /// timeout than other calls).
    pub async fn longpoll(&self, cursor: &str, timeout: u64) -> Result<types::LongpollResult> {
        let url = format!("{}/2/{}", self.hosts.notify, ep::Longpoll::ROUTE.name());
        let arg = types::LongpollArg {
            cursor: cursor.to_owned(),
            timeout,
        };
        let resp = self
            .http
            .post(url)
            .json(&arg)
            .timeout(Duration::from_secs(timeout + 90))
            .send()
            .await?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await?;
        if status != 200 {
            return Err(error_from(status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| Error::Protocol(e.to_string()))
    }

    /// An upload-style route: the argument in `Dropbox-API-Arg`, `data` as the body. The
    /// bytes are held so a retry can send them again.
    pub(crate) async fn upload_route<A: Serialize, R: DeserializeOwned>(
        &self,
        route: &str,
        arg: &A,
        data: bytes::Bytes,
    ) -> Result<R> {
        let arg = header_arg(arg)?;
        let url = format!("{}/2/{route}", self.hosts.content);
        let resp = self.send(&url, Some(&arg), Body::Bytes(data), None).await?;
        json_result(route, resp).await
    }

    /// A download-style route: returns the `Dropbox-API-Result` and the response, whose body
    /// the caller streams. `range` is an inclusive byte range.
    pub(crate) async fn download_route<A: Serialize, R: DeserializeOwned>(
        &self,
        route: &str,
        arg: &A,
        range: Option<(u64, u64)>,
    ) -> Result<(R, reqwest::Response)> {
        let arg = header_arg(arg)?;
        let url = format!("{}/2/{route}", self.hosts.content);
        let resp = self
            .send(&url, Some(&arg), Body::Bytes(bytes::Bytes::new()), range)
            .await?;
        let result = resp
            .headers()
            .get("dropbox-api-result")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Protocol(format!("{route}: no Dropbox-API-Result header")))?;
        let result = serde_json::from_str(result)
            .map_err(|e| Error::Protocol(format!("{route}: unexpected result: {e}")))?;
        Ok((result, resp))
    }

    /// Sends one request with retries and, on an expired token, one refresh.
    async fn send(
        &self,
        url: &str,
        arg_header: Option<&str>,
        body: Body,
        range: Option<(u64, u64)>,
    ) -> Result<reqwest::Response> {
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.fresh_token().await?;
            let mut req = self.http.post(url).bearer_auth(&token);
            if let Some(arg) = arg_header {
                req = req.header("Dropbox-API-Arg", arg);
            }
            if let Some(root) = &self.path_root {
                req = req.header("Dropbox-API-Path-Root", root.as_str());
            }
            if let Some((start, end)) = range {
                req = req.header("Range", format!("bytes={start}-{end}"));
            }
            req = match &body {
                Body::Json(v) => req.json(v),
                Body::Bytes(b) if arg_header.is_some() => req
                    .header("Content-Type", "application/octet-stream")
                    .body(b.clone()),
                Body::Bytes(_) => req,
            };
            let outcome = req.send().await;
            let wait = match outcome {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let body_bytes = resp.bytes().await.unwrap_or_default();
                    let err = error_from(status, &body_bytes);
                    if status == 401
                        && !refreshed
                        && matches!(&err, Error::Auth(s) if s.starts_with("expired_access_token"))
                        && self.can_refresh()
                    {
                        refreshed = true;
                        self.refresh(&token).await?;
                        attempt -= 1;
                        continue;
                    }
                    if !(status == 429 || status >= 500) || attempt >= self.retry.attempts {
                        return Err(err);
                    }
                    retry_after.unwrap_or_else(|| self.retry.backoff(attempt))
                }
                Err(e)
                    if attempt >= self.retry.attempts
                        || !(e.is_connect() || e.is_timeout() || e.is_request()) =>
                {
                    return Err(e.into());
                }
                Err(_) => self.retry.backoff(attempt),
            };
            tracing::debug!(url, attempt, ?wait, "retrying");
            tokio::time::sleep(wait.min(self.retry.max)).await;
        }
    }

    fn can_refresh(&self) -> bool {
        self.tokens.lock().expect("tokens").refresh_token.is_some()
    }

    /// The access token, refreshed first if it expires within a minute.
    async fn fresh_token(&self) -> Result<String> {
        let current = self.tokens();
        let soon = now() + 60;
        match current.expires_at {
            Some(t) if t <= soon && current.refresh_token.is_some() => {
                self.refresh(&current.access_token).await
            }
            _ => Ok(current.access_token),
        }
    }

    /// Refreshes the access token unless another task already replaced `stale`.
    async fn refresh(&self, stale: &str) -> Result<String> {
        let _one_at_a_time = self.refresh_lock.lock().await;
        let current = self.tokens();
        if current.access_token != stale {
            return Ok(current.access_token);
        }
        let refresh = current
            .refresh_token
            .clone()
            .ok_or_else(|| Error::Auth("the token expired and there is no refresh token".into()))?;
        let fresh = oauth::refresh(&self.http, &self.hosts, &self.app, &refresh).await?;
        let tokens = Tokens {
            access_token: fresh.access_token.clone(),
            expires_at: fresh.expires_in.map(|s| now() + s),
            refresh_token: Some(fresh.refresh_token.unwrap_or(refresh)),
        };
        *self.tokens.lock().expect("tokens") = tokens.clone();
        if let Some(f) = &self.on_refresh {
            f(&tokens);
        }
        Ok(fresh.access_token)
    }
}

/// Reads a JSON result (an empty body is `null`).
async fn json_result<R: DeserializeOwned>(route: &str, resp: reqwest::Response) -> Result<R> {
    let bytes = resp.bytes().await?;
    let text = if bytes.is_empty() {
        &b"null"[..]
    } else {
        &bytes
    };
    serde_json::from_slice(text)
        .map_err(|e| Error::Protocol(format!("{route}: unexpected answer: {e}")))
}

/// An argument as the `Dropbox-API-Arg` header carries it.
fn header_arg<A: Serialize>(arg: &A) -> Result<String> {
    let v = serde_json::to_value(arg).map_err(|e| Error::Protocol(e.to_string()))?;
    Ok(cubby_core::wire::header_safe_json(&v))
}

/// Maps a failed response to an [`Error`].
pub(crate) fn error_from(status: u16, body: &[u8]) -> Error {
    let text = String::from_utf8_lossy(body).into_owned();
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let summary = json
        .as_ref()
        .and_then(|v| v.get("error_summary"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    match status {
        400 => Error::BadInput(text),
        401 => Error::Auth(summary.unwrap_or(text)),
        409 => Error::Api {
            summary: summary.unwrap_or_else(|| text.clone()),
            error: json
                .and_then(|v| v.get("error").cloned())
                .unwrap_or(Value::Null),
        },
        403 => Error::Auth(summary.unwrap_or(text)),
        _ => Error::Unavailable { status, body: text },
    }
}

pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the OS random source works");
    b
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            Hosts::for_server("dropbox").content,
            "https://content.dropboxapi.com"
        );
        let h = Hosts::for_server("http://127.0.0.1:8080/");
        assert_eq!(
            (h.api.as_str(), h.notify.as_str()),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080")
        );
        assert_eq!(
            Hosts::for_server("cubby.example").web,
            "https://cubby.example"
        );
    }

    #[test]
    fn errors_sort_into_kinds() {
        let e = error_from(
            409,
            br#"{"error_summary": "path/not_found/..", "error": {}}"#,
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = error_from(
            409,
            br#"{"error_summary": "path/conflict/file/.", "error": {}}"#,
        );
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert_eq!(error_from(401, b"{}").kind(), ErrorKind::Auth);
        assert_eq!(error_from(503, b"").kind(), ErrorKind::Transient);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let r = Retry::default();
        assert!(r.backoff(1) <= Duration::from_millis(250));
        assert!(r.backoff(3) >= Duration::from_millis(500));
        assert!(r.backoff(30) <= r.max);
    }
}
