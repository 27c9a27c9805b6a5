//! WebDAV at `/dav/` (RFC 4918 classes 1 and 2) over the same store as the API.
//!
//! A person's devices sign in with HTTP Basic: their user name and an app password
//! (`cubby_store::dav`), never their sign-in password. Each request becomes a [`Ctx`] like an
//! API call's, rooted where the password is limited to, and `dav-server` runs the protocol
//! over [`fs::CubbyFs`] (every change goes through the API's own handlers, so it is a revision
//! in the change feed like any other) and [`locks::DbLocks`] (locks in the database). This
//! front adds what the library leaves to its user: authentication, the read-only limit,
//! `Depth: infinity` refused, `Destination` on another host refused, a rename in case only,
//! and plain `GET`s served by the API's own download path.

mod chunked;
pub(crate) mod fs;
pub(crate) mod locks;
mod nextcloud;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine;
use cubby_core::path::lower;
use cubby_store::Entry;
use cubby_store::meta::Kind;
use cubby_store::tokens::AuthInfo;
use dav_server::DavHandler;

use crate::AppState;
use crate::api::Ctx;

/// Where the WebDAV tree is served.
pub(crate) const PREFIX: &str = "/dav";
/// The same tree where ownCloud's and Nextcloud's clients look for it: without a user segment,
/// and with one (`/remote.php/dav/files/<user>/`, [`FILES_PREFIX`] then the segment).
const LEGACY_PREFIX: &str = "/remote.php/webdav";
const FILES_PREFIX: &str = "/remote.php/dav/files/";
/// How `dav-server` reads a file for a conditional or ranged `GET` it serves itself.
const READ_BUF: usize = 1 << 20;
/// The methods a read-only app password may use.
const READ_METHODS: &[&str] = &["GET", "HEAD", "OPTIONS", "PROPFIND"];
/// What `OPTIONS` announces: classes 1 and 2 (locking, which macOS Finder needs to mount
/// read-write).
const DAV_CLASSES: &str = "1, 2";
const ALLOW: &str =
    "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, COPY, MOVE, LOCK, UNLOCK";

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/dav", any(handle))
        .route("/dav/", any(handle))
        .route("/dav/{*path}", any(handle))
        .route("/remote.php/webdav", any(handle))
        .route("/remote.php/webdav/", any(handle))
        .route("/remote.php/webdav/{*path}", any(handle))
        .route("/remote.php/dav/files/{*path}", any(handle))
        .route("/remote.php/dav/uploads/{*path}", any(chunked::handle))
        .merge(nextcloud::router())
}

async fn handle(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let request_id = req.headers().get("x-request-id").cloned();
    let fut = answer(state, req);
    assert_send(&fut);
    let mut resp = fut.await;
    // A user's file served on this origin never runs as a page here.
    crate::web::untrusted_bytes(resp.headers_mut());
    // Nextcloud's clients send one with every request and log the answer's.
    if let Some(id) = request_id {
        resp.headers_mut().insert("x-request-id", id);
    }
    resp
}

/// The URL prefix a request's tree is under, and the user segment it names (if any).
fn prefix_of(path: &str) -> Option<(String, Option<String>)> {
    if let Some(rest) = path.strip_prefix(FILES_PREFIX) {
        let seg = rest.split('/').next().unwrap_or("");
        if seg.is_empty() {
            return None;
        }
        return Some((format!("{FILES_PREFIX}{seg}"), Some(percent_decode(seg)?)));
    }
    for p in [PREFIX, LEGACY_PREFIX] {
        if path == p || path.starts_with(&format!("{p}/")) {
            return Some((p.to_owned(), None));
        }
    }
    None
}

async fn answer(state: Arc<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Some((prefix, user_segment)) = prefix_of(parts.uri.path()) else {
        return plain(StatusCode::NOT_FOUND, "No such WebDAV tree.");
    };
    let method = parts.method.clone();
    if method == Method::OPTIONS && !parts.headers.contains_key(header::AUTHORIZATION) {
        // Clients probe before they sign in.
        return options();
    }
    let auth = match authenticate(&state, &parts).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    if let Some(seg) = &user_segment
        && !auth.names(seg)
    {
        return plain(StatusCode::FORBIDDEN, "That is another user's tree.");
    }
    let read_only = auth.read_only;
    if read_only && !READ_METHODS.contains(&method.as_str()) {
        return plain(
            StatusCode::FORBIDDEN,
            "This app password may only read: it cannot change anything.",
        );
    }
    if let Some(resp) = refused_headers(&method, &parts.headers, &prefix) {
        return resp;
    }
    let account = auth.info.account.clone();
    let ctx = Arc::new(Ctx {
        state: state.clone(),
        route: "webdav",
        auth: Some(auth.info),
        mounts: Default::default(),
        path_root: None,
    });
    let mut fs = fs::CubbyFs::new(ctx.clone(), read_only);
    let Some(path) = request_path(parts.uri.path(), &prefix) else {
        return plain(StatusCode::BAD_REQUEST, "The path is not valid.");
    };
    if (method == Method::GET || method == Method::HEAD)
        && plain_get(&parts.headers)
        && let Ok(Some(e)) = fs.find(&path).await
        && e.kind == Kind::File
    {
        return download(&state, &e, &parts.headers).await;
    }
    if method.as_str() == "MOVE"
        && let Some(resp) = rename_in_case(&ctx, &path, &parts.headers, &prefix).await
    {
        return resp;
    }
    let mtime = oc_mtime(&parts.headers);
    fs.client_modified = mtime;
    let handler = DavHandler::builder()
        .filesystem(Box::new(fs.clone()))
        .locksystem(Box::new(locks::DbLocks::new(
            state.store.clone(),
            account.clone(),
            prefix.clone(),
        )))
        .strip_prefix(prefix)
        .principal(account.name.clone())
        .autoindex(false)
        .read_buf_size(READ_BUF)
        .build_handler();
    let mut resp = handler
        .handle(Request::from_parts(parts, body))
        .await
        .map(Body::new);
    // What ownCloud's and Nextcloud's clients read after a write: the item's id, its ETag
    // again, and that the modification time they sent was applied.
    let wrote = matches!(method.as_str(), "PUT" | "MKCOL");
    if wrote
        && resp.status().is_success()
        && let Ok(Some(e)) = fs.find(&path).await
    {
        let h = resp.headers_mut();
        if let Some(id) = e.id.as_deref()
            && let Ok(v) = HeaderValue::from_str(&nextcloud::oc_id(id))
        {
            h.insert("oc-fileid", v);
        }
        if let Some(etag) = h.get(header::ETAG).cloned() {
            h.insert("oc-etag", etag);
        }
        if mtime.is_some() && method.as_str() == "PUT" {
            h.insert("x-oc-mtime", HeaderValue::from_static("accepted"));
        }
    }
    resp
}

/// The modification time a Nextcloud client sends with a file (`X-OC-Mtime`, Unix seconds).
fn oc_mtime(h: &HeaderMap) -> Option<i64> {
    h.get("x-oc-mtime")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<i64>().ok())
        .filter(|t| *t > 0)
}

/// A signed-in WebDAV caller.
pub(crate) struct DavAuth {
    info: AuthInfo,
    read_only: bool,
    password_id: i64,
    login: String,
}

impl DavAuth {
    /// Whether a user segment of a URL names this caller (its login, name or account id).
    fn names(&self, seg: &str) -> bool {
        let a = &self.info.account;
        seg.eq_ignore_ascii_case(&a.name)
            || seg.eq_ignore_ascii_case(&self.login)
            || seg == a.account_id
    }
}

/// Checks HTTP Basic credentials against the account's app passwords. Failures count
/// against the same limits as the sign-in page's.
pub(crate) async fn authenticate(
    state: &AppState,
    req: &axum::http::request::Parts,
) -> Result<DavAuth, Response> {
    let Some((login, password)) = basic(&req.headers) else {
        return Err(unauthorized(
            "Sign in with your user name and an app password (made on your account page).",
        ));
    };
    let addr_key = format!("addr:{}", crate::web::client_addr(&req.extensions));
    let login_key = format!("login:{}", login.trim().to_lowercase());
    if let Err(retry) = state
        .addr_limiter
        .check(&addr_key)
        .and(state.signin_limiter.check(&login_key))
    {
        let mut r = plain(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed sign-ins: try again later.",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry.as_secs()));
        return Err(r);
    }
    let found = match state.store.check_app_password(&login, &password).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "WebDAV: app passwords could not be read");
            return Err(plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "The server cannot check passwords right now.",
            ));
        }
    };
    let Some(found) = found else {
        state.addr_limiter.fail(&addr_key);
        state.signin_limiter.fail(&login_key);
        return Err(unauthorized(
            "Wrong user name or app password, or the password was revoked.",
        ));
    };
    let read_only = found.password.read_only;
    Ok(DavAuth {
        password_id: found.password.id,
        login: login.trim().to_owned(),
        info: AuthInfo {
            account: found.account,
            token_id: 0,
            app_key: String::new(),
            app_name: "WebDAV".into(),
            app_folder: false,
            scopes: cubby_store::apps::ALL_SCOPES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            root: found.password.folder,
            expired: false,
        },
        read_only,
    })
}

/// The user name and password of an `Authorization: Basic` header.
fn basic(h: &HeaderMap) -> Option<(String, String)> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

/// The request's path below `prefix`, decoded (`""` for the root).
fn request_path(uri_path: &str, prefix: &str) -> Option<String> {
    let rest = uri_path.strip_prefix(prefix)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let decoded = percent_decode(rest)?;
    Some(decoded.trim_end_matches('/').to_owned())
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Headers refused before the protocol runs: a `Depth` that is not 0, 1 or infinity; a
/// `PROPFIND` of infinite depth (a listing of a whole tree in one answer is refused, as RFC
/// 4918 allows, with its `propfind-finite-depth`); a `Destination` on another host.
fn refused_headers(method: &Method, h: &HeaderMap, prefix: &str) -> Option<Response> {
    if let Some(d) = h.get("depth") {
        let d = d.to_str().unwrap_or("").trim().to_ascii_lowercase();
        if !matches!(d.as_str(), "0" | "1" | "infinity") {
            return Some(plain(
                StatusCode::BAD_REQUEST,
                "Depth must be 0, 1 or infinity.",
            ));
        }
        if method.as_str() == "PROPFIND" && d == "infinity" {
            let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
                        <D:error xmlns:D=\"DAV:\"><D:propfind-finite-depth/></D:error>\n";
            return Some(
                (
                    StatusCode::FORBIDDEN,
                    [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
                    body,
                )
                    .into_response(),
            );
        }
    }
    if let Some(dest) = h.get("destination") {
        let Some(dest) = dest.to_str().ok() else {
            return Some(plain(StatusCode::BAD_REQUEST, "Destination is not ASCII."));
        };
        let dest_path = dest
            .parse::<axum::http::Uri>()
            .map(|u| u.path().to_owned())
            .unwrap_or_default();
        if request_path(&dest_path, prefix).is_none() {
            return Some(plain(
                StatusCode::BAD_GATEWAY,
                "Destination is outside this WebDAV tree.",
            ));
        }
        if !dest.starts_with('/') {
            let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
            let same = dest
                .parse::<axum::http::Uri>()
                .ok()
                .and_then(|u| u.authority().map(|a| a.as_str().to_ascii_lowercase()))
                .is_some_and(|a| host.is_some_and(|h| h.eq_ignore_ascii_case(&a)));
            if !same {
                return Some(plain(
                    StatusCode::BAD_GATEWAY,
                    "Destination names another server: copies and moves stay on this one.",
                ));
            }
        }
    }
    None
}

/// A `GET` the API's download path answers as WebDAV would: no precondition other than
/// `If-None-Match` (which it honours, with `Range`). Others go to `dav-server`.
fn plain_get(h: &HeaderMap) -> bool {
    [
        "if-match",
        "if-modified-since",
        "if-unmodified-since",
        "if-range",
        "if",
    ]
    .iter()
    .all(|n| !h.contains_key(*n))
}

async fn download(state: &AppState, e: &Entry, h: &HeaderMap) -> Response {
    let kind = content_type(e.name());
    match crate::api::transfer::serve_file(state, e, None, kind, h).await {
        Ok(mut r) => {
            if let Ok(v) = HeaderValue::from_str(&cubby_core::time::http_date(e.client_modified)) {
                r.headers_mut().insert(header::LAST_MODIFIED, v);
            }
            r
        }
        Err(err) => {
            tracing::warn!(error = ?err, "WebDAV: a download failed");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The file could not be read.",
            )
        }
    }
}

/// A name's media type, as `getcontenttype` reports it.
fn content_type(name: &str) -> &'static str {
    mime_guess::from_path(name)
        .first_raw()
        .unwrap_or("application/octet-stream")
}

/// A `MOVE` onto the same path but for case (or Unicode form) renames in place; the library
/// would take the destination for another item and delete it first. The same path exactly
/// is refused, as RFC 4918 says.
async fn rename_in_case(ctx: &Ctx, path: &str, h: &HeaderMap, prefix: &str) -> Option<Response> {
    let dest = h.get("destination")?.to_str().ok()?;
    let dest_path = match dest.parse::<axum::http::Uri>() {
        Ok(u) => u.path().to_owned(),
        Err(_) => return None,
    };
    let to = request_path(&dest_path, prefix)?;
    if lower(&to) != lower(path) || path.is_empty() {
        return None;
    }
    if to == path {
        return Some(plain(
            StatusCode::FORBIDDEN,
            "The source and the destination are the same.",
        ));
    }
    let p = cubby_core::api::types::RelocationPath {
        from_path: path.to_owned(),
        to_path: to,
    };
    Some(
        match crate::api::files::relocate_one(ctx, &p, false, false).await {
            Ok(Ok(_)) => StatusCode::NO_CONTENT.into_response(),
            Ok(Err(_)) => plain(StatusCode::CONFLICT, "The item could not be renamed."),
            Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "The rename failed."),
        },
    )
}

fn assert_send<T: Send>(_: &T) {}

fn options() -> Response {
    (
        StatusCode::OK,
        [
            ("dav", DAV_CLASSES),
            ("allow", ALLOW),
            ("ms-author-via", "DAV"),
            ("content-length", "0"),
        ],
    )
        .into_response()
}

fn unauthorized(msg: &str) -> Response {
    let mut r = plain(StatusCode::UNAUTHORIZED, msg);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Cubby\", charset=\"UTF-8\""),
    );
    r
}

fn plain(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{msg}\n"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_below_the_prefix_are_decoded() {
        let p = |s: &str| request_path(s, PREFIX);
        assert_eq!(p("/dav").as_deref(), Some(""));
        assert_eq!(p("/dav/").as_deref(), Some(""));
        assert_eq!(p("/dav/a%20b/").as_deref(), Some("/a b"));
        assert_eq!(p("/dav/%C3%BC").as_deref(), Some("/ü"));
        assert_eq!(p("/dav/%FF"), None);
        assert_eq!(p("/dav/%4"), None);
        assert_eq!(
            prefix_of("/remote.php/dav/files/ann/x"),
            Some(("/remote.php/dav/files/ann".into(), Some("ann".into())))
        );
        assert_eq!(
            prefix_of("/remote.php/webdav/x"),
            Some(("/remote.php/webdav".into(), None))
        );
        assert_eq!(prefix_of("/davx"), None);
    }

    #[test]
    fn basic_credentials() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YW5uOnB3OmQ="),
        );
        assert_eq!(basic(&h), Some(("ann".into(), "pw:d".into())));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(basic(&h), None);
    }
}
