//! The web app: a file browser that is a client of the `/2/` API like any other app.
//!
//! The page is a shell (this module) plus ES modules and a style sheet embedded in the
//! binary from `crates/server/assets/`. Each asset is served under a content-hashed name
//! (`/assets/app.3f9c…js`) with a year-long immutable cache lifetime; an import map in the
//! shell sends each module's plain name to its hashed one, so a module's name changes only
//! when its own bytes do.
//!
//! Security Invariants:
//! - **The browser's credential is the sign-in session.** The API accepts the
//!   `HttpOnly` session cookie in place of a bearer token only with an `X-Cubby-CSRF`
//!   header equal to the session's synchronizer token (the shell hands it to its script).
//!   A page on another site cannot set that header (the server answers no CORS preflight)
//!   nor read the token, and script on this origin never sees the cookie, so there is no
//!   bearer credential to steal. The one exception: a `GET` of a download route (a link or
//!   an `<img>` in the app) needs only the cookie, since it reads and changes nothing, and
//!   `SameSite=Lax` keeps other sites' pages from embedding it.
//! - The shell carries no inline script but the import map, pinned by its hash in the
//!   page's CSP; its configuration is JSON in a `type="application/json"` element.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use cubby_core::api::{Spec, Style};
use cubby_store::AuthInfo;
use sha2::{Digest, Sha256};

use super::{SESSION_COOKIE, cookie, redirect, session};
use crate::AppState;
use crate::api::{ApiError, ApiResult};

/// The header that carries the session's CSRF token on API calls made by the web app.
pub(crate) const CSRF_HEADER: &str = "x-cubby-csrf";

/// Name the web app's calls carry in the access log and in `app_name`.
const APP_NAME: &str = "Cubby web";

macro_rules! asset {
    ($name:literal, $ct:literal) => {
        (
            $name,
            $ct,
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $name)),
        )
    };
}
/// The embedded assets: (plain name, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("ui.js", "text/javascript; charset=utf-8"),
    asset!("list.js", "text/javascript; charset=utf-8"),
    asset!("actions.js", "text/javascript; charset=utf-8"),
    asset!("preview.js", "text/javascript; charset=utf-8"),
    asset!("upload.js", "text/javascript; charset=utf-8"),
    asset!("folders.js", "text/javascript; charset=utf-8"),
    asset!("actions.css", "text/css; charset=utf-8"),
    asset!("upload.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
];

/// One asset under one of its names.
struct Asset {
    content_type: &'static str,
    bytes: Cow<'static, [u8]>,
    /// The bytes gzipped, when that makes them smaller (text does; the first load of the app
    /// is measured compressed).
    gzip: Option<Arc<Vec<u8>>>,
    immutable: bool,
}

/// `bytes` gzipped, if smaller.
fn gzipped(bytes: &[u8]) -> Option<Arc<Vec<u8>>> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).ok()?;
    let out = enc.finish().ok()?;
    (out.len() < bytes.len()).then(|| Arc::new(out))
}

/// The assets by URL name (hashed and plain), the plain → hashed map, and the shell's
/// import map with its CSP hash.
struct Assets {
    by_name: HashMap<String, Asset>,
    hashed: HashMap<&'static str, String>,
    import_map: String,
    import_map_csp: String,
}

/// Where a developer working on the web app keeps the assets: read from there on every
/// request (no rebuild of the binary per edit) when `CUBBY_ASSETS_DIR` is set.
const DEV_DIR_VAR: &str = "CUBBY_ASSETS_DIR";

static EMBEDDED: LazyLock<Arc<Assets>> = LazyLock::new(|| {
    Arc::new(build_table(
        ASSETS.iter().map(|&(n, ct, b)| (n, ct, Cow::Borrowed(b))),
    ))
});

/// The asset table: the embedded one, or a fresh read of `CUBBY_ASSETS_DIR`.
fn table() -> Arc<Assets> {
    match std::env::var_os(DEV_DIR_VAR) {
        None => EMBEDDED.clone(),
        Some(dir) => {
            let dir = std::path::PathBuf::from(dir);
            Arc::new(build_table(ASSETS.iter().map(|&(n, ct, b)| {
                let bytes = std::fs::read(dir.join(n)).map_or(Cow::Borrowed(b), Cow::Owned);
                (n, ct, bytes)
            })))
        }
    }
}

fn build_table(
    assets: impl Iterator<Item = (&'static str, &'static str, Cow<'static, [u8]>)>,
) -> Assets {
    let mut by_name = HashMap::new();
    let mut hashed = HashMap::new();
    let mut imports = serde_json::Map::new();
    for (name, content_type, bytes) in assets {
        let digest = cubby_core::hash::hex(&Sha256::digest(&bytes)[..6]);
        let (stem, ext) = name.rsplit_once('.').expect("assets have extensions");
        let hashed_name = format!("{stem}.{digest}.{ext}");
        let gzip = gzipped(&bytes);
        if ext == "js" {
            imports.insert(
                format!("/assets/{name}"),
                serde_json::Value::String(format!("/assets/{hashed_name}")),
            );
        }
        by_name.insert(
            hashed_name.clone(),
            Asset {
                content_type,
                bytes: bytes.clone(),
                gzip: gzip.clone(),
                immutable: true,
            },
        );
        by_name.insert(
            name.to_owned(),
            Asset {
                content_type,
                bytes,
                gzip,
                immutable: false,
            },
        );
        hashed.insert(name, hashed_name);
    }
    let import_map = serde_json::json!({ "imports": imports }).to_string();
    let import_map_csp = format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(import_map.as_bytes()))
    );
    Assets {
        by_name,
        hashed,
        import_map,
        import_map_csp,
    }
}

impl Assets {
    /// The URL of an asset by its plain name.
    fn url(&self, name: &str) -> String {
        match self.hashed.get(name) {
            Some(h) => format!("/assets/{h}"),
            None => format!("/assets/{name}"),
        }
    }
}

pub(crate) fn router() -> Router<Arc<AppState>> {
    use axum::routing::get;
    Router::new()
        .route("/", get(shell))
        .route("/home", get(shell))
        .route("/home/{*path}", get(shell))
        .route("/search", get(shell))
        .route("/shared", get(shell))
        .route("/assets/{name}", get(serve_asset))
        .route("/zip", axum::routing::post(zip_selection))
}

/// Largest `POST /zip` form: a selection of the archive's most entries (10,000) with long
/// paths, URL-encoded.
const MAX_ZIP_FORM: usize = 4 << 20;

/// `POST /zip`: the web app's download of a selection as one ZIP (form fields `csrf`, then
/// `path` once per selected item, all in one folder); the API's `download_zip` takes one
/// folder. The app posts the form into a hidden frame, so a refusal is a page that frame may
/// show and the app reads (`#error`); every other page of the server refuses to be framed.
async fn zip_selection(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    if from_another_site(&headers) {
        return zip_refused(
            StatusCode::FORBIDDEN,
            "This download was not asked for by Cubby.",
        );
    }
    let s = match session(&state, &headers).await {
        Err(r) => return r,
        Ok(None) => {
            return zip_refused(
                StatusCode::UNAUTHORIZED,
                "You are signed out. Sign in again, then download the selection.",
            );
        }
        Ok(Some(s)) => s,
    };
    let form = match super::Form::from_body_within(body, MAX_ZIP_FORM).await {
        Ok(f) => f,
        Err((status, message)) => return zip_refused(status, message),
    };
    if super::check_csrf(&s, &form).is_err() {
        return zip_refused(
            StatusCode::FORBIDDEN,
            "This page has expired. Reload it and try again.",
        );
    }
    let paths: Vec<&str> = form.all("path").collect();
    match crate::api::zip::selection(&state.store, &s.account, &paths).await {
        Ok(resp) => resp,
        Err((status, message)) => zip_refused(status, &message),
    }
}

/// A refusal of [`zip_selection`]: a page its hidden frame may show (same origin only).
fn zip_refused(status: StatusCode, message: &str) -> Response {
    let mut resp = super::error_page(status, message);
    let h = resp.headers_mut();
    h.insert("x-frame-options", HeaderValue::from_static("SAMEORIGIN"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'",
        ),
    );
    resp
}

/// `GET /assets/{name}`: an embedded asset, gzipped when the browser takes it; immutable
/// under its hashed name.
async fn serve_asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let t = table();
    let Some(a) = t.by_name.get(&name) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "No such asset.",
        )
            .into_response();
    };
    let cache = if a.immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let takes_gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| e.split(';').next().map(str::trim) == Some("gzip"));
    let mut resp = match &a.gzip {
        Some(gz) if takes_gzip => {
            ([(header::CONTENT_ENCODING, "gzip")], gz.to_vec()).into_response()
        }
        _ => a.bytes.to_vec().into_response(),
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// The icon's URL, for the server-rendered pages.
pub(crate) fn icon_url() -> String {
    table().url("icon.svg")
}

/// JSON safe inside a `<script>` element: `<` never appears raw, so no `</script>`.
fn script_json(v: &serde_json::Value) -> String {
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// `GET /`, `/home/…`, `/search`: the app's shell for a signed-in person; otherwise sign-in,
/// then back here.
async fn shell(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let s = match session(&state, &headers).await {
        Err(r) => return r,
        Ok(None) => {
            let here = uri.path_and_query().map_or("/", |p| p.as_str());
            return redirect(&format!("/login?next={}", crate::api::percent_encode(here)));
        }
        Ok(Some(s)) => s,
    };
    let t = table();
    let config = serde_json::json!({
        "csrf": s.csrf,
        "icon": t.url("icon.svg"),
        "account": {
            "name": s.account.name,
            "email": s.account.email,
            "account_id": s.account.account_id,
        },
    });
    let preloads: String = ASSETS
        .iter()
        .filter(|(n, _, _)| n.ends_with(".js") && *n != "app.js")
        .map(|(n, _, _)| format!("<link rel=\"modulepreload\" href=\"{}\">", t.url(n)))
        .collect();
    let styles: String = ASSETS
        .iter()
        .filter(|(n, _, _)| n.ends_with(".css"))
        .map(|(n, _, _)| format!("<link rel=\"stylesheet\" href=\"{}\">", t.url(n)))
        .collect();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"color-scheme\" content=\"light dark\">\
<title>Cubby</title><link rel=\"icon\" href=\"{icon}\">{styles}\
<script type=\"importmap\">{map}</script>{preloads}\
<script type=\"application/json\" id=\"cubby-config\">{config}</script>\
<script type=\"module\" src=\"{app}\"></script></head>\
<body><noscript><p>Cubby's web app needs JavaScript. Your <a href=\"/account\">account page</a> works without it.</p></noscript></body></html>",
        icon = t.url("icon.svg"),
        map = t.import_map,
        config = script_json(&config),
        app = t.url("app.js"),
    );
    let csp = format!(
        "default-src 'self'; script-src 'self' {}; style-src 'self'; img-src 'self' blob: data:; \
         media-src 'self' blob:; connect-src 'self'; frame-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        t.import_map_csp
    );
    super::html_page(
        StatusCode::OK,
        html,
        HeaderValue::from_str(&csp).expect("ASCII"),
    )
}

/// Whether the browser says the request comes from another site. The app's own requests are
/// same-origin (or "none", typed into the address bar); another site's never use the session.
fn from_another_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .is_some_and(|site| !matches!(site.as_bytes(), b"same-origin" | b"none"))
}

/// The web app's credential on an API call that carries no `Authorization`: the sign-in
/// cookie, with the CSRF header (see the module's invariants). `None` when there is no
/// cookie; a 401 when the session is gone or the CSRF header is missing or wrong.
pub(crate) async fn credential(
    state: &AppState,
    spec: Spec,
    method: &Method,
    headers: &HeaderMap,
) -> ApiResult<Option<AuthInfo>> {
    if cookie(headers, SESSION_COOKIE).is_none() {
        return Ok(None);
    }
    let invalid = || ApiError::Auth(cubby_core::api::errors::AuthError::InvalidAccessToken);
    if from_another_site(headers) {
        return Err(invalid());
    }
    let Some(s) = session(state, headers)
        .await
        .map_err(|_| ApiError::Internal("the web session could not be read".into()))?
    else {
        return Err(invalid());
    };
    let read_only_get = *method == Method::GET && spec.style == Style::Download;
    if !read_only_get {
        let given = headers
            .get(CSRF_HEADER)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        if !cubby_core::hash::ct_eq(given, s.csrf.as_bytes()) {
            return Err(invalid());
        }
    }
    Ok(Some(AuthInfo {
        account: s.account,
        token_id: 0,
        app_key: String::new(),
        app_name: APP_NAME.into(),
        app_folder: false,
        scopes: cubby_store::apps::ALL_SCOPES
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        root: String::new(),
        expired: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_hashed_name_and_the_import_map_names_each_module() {
        let t = &**EMBEDDED;
        for (name, _, _) in ASSETS {
            let url = t.url(name);
            assert_ne!(url, format!("/assets/{name}"), "{name} has no hashed name");
            let hashed = url.trim_start_matches("/assets/");
            assert!(t.by_name[hashed].immutable);
            assert!(!t.by_name[*name].immutable);
            if name.ends_with(".js") {
                assert!(t.import_map.contains(&url), "{name} not in the import map");
            }
        }
    }

    #[test]
    fn config_json_cannot_close_its_script_element() {
        let v = serde_json::json!({"name": "</script><script>alert(1)</script>&"});
        let s = script_json(&v);
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'));
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }
}
