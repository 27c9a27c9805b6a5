//! The browser side: sign-in, the OAuth 2 consent page and token endpoint, and the app
//! console. Pages are plain server-rendered HTML forms (no script), so they work in any
//! browser and are easy to drive from tests.
//!
//! Security Invariants:
//! - every state-changing form carries a CSRF token: the session's synchronizer token once
//!   signed in, a double-submit cookie on the sign-in form;
//! - cookies are `HttpOnly`, `SameSite=Lax`, and `Secure` when the request came over TLS;
//! - `next=` targets are same-site paths only, so sign-in is no open redirect;
//! - secrets (app secrets, tokens) are shown once and never logged.

// Handlers answer with a finished page on every path, errors included, so `Response` is
// the natural error type here even though it is large.
#![allow(clippy::result_large_err)]

pub(crate) mod account;
pub(crate) mod app;
pub(crate) mod console;
pub(crate) mod login_flow;
pub(crate) mod oauth;
pub(crate) mod share;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cubby_store::WebSession;

use crate::AppState;
use crate::api::form_urlencoded_pairs;

/// Name of the sign-in session cookie.
pub(crate) const SESSION_COOKIE: &str = "cubby_session";
/// Name of the double-submit cookie of the sign-in form.
const LOGIN_COOKIE: &str = "cubby_login";
/// Largest form body accepted.
const MAX_FORM_BODY: usize = 64 * 1024;

pub(crate) fn router() -> Router<Arc<AppState>> {
    use axum::routing::{get, post};
    Router::new()
        .merge(app::router())
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout))
        .route(
            "/oauth2/authorize",
            get(oauth::authorize_page).post(oauth::authorize_submit),
        )
        .route("/oauth2/token", post(oauth::token))
        .route("/account", get(account::show))
        .route("/account/password", post(account::change_password))
        .route("/account/apps/{key}/disconnect", post(account::disconnect))
        .route("/account/app-passwords", post(account::create_app_password))
        .route(
            "/account/app-passwords/{id}/revoke",
            post(account::revoke_app_password),
        )
        .route("/index.php/login/v2", post(login_flow::start))
        .route("/index.php/login/v2/poll", post(login_flow::poll))
        .route("/index.php/login/v2/flow/{token}", get(login_flow::consent))
        .route("/index.php/login/v2/grant/{token}", post(login_flow::grant))
        .route("/admin", get(account::admin))
        .route("/admin/users", post(account::add_user))
        .route("/admin/users/{name}/disabled", post(account::set_disabled))
        .route("/admin/users/{name}/quota", post(account::set_quota))
        .route("/apps", get(console::list).post(console::create))
        .route("/apps/{key}/token", post(console::generate_token))
        .route("/apps/{key}/secret", post(console::reset_secret))
}

// ---------------------------------------------------------------------------------------
// Requests.

/// A form body or query string as ordered pairs.
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub fn from_query(q: Option<&str>) -> Self {
        Form(q.map(form_urlencoded_pairs).unwrap_or_default())
    }

    pub async fn from_body(body: Body) -> Result<Self, Response> {
        Self::from_body_within(body, MAX_FORM_BODY)
            .await
            .map_err(|(status, message)| error_page(status, message))
    }

    /// A form of at most `limit` bytes; a refusal is its status and sentence.
    pub async fn from_body_within(
        body: Body,
        limit: usize,
    ) -> Result<Self, (StatusCode, &'static str)> {
        let bytes = axum::body::to_bytes(body, limit)
            .await
            .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "The form is too large."))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| (StatusCode::BAD_REQUEST, "The form is not UTF-8."))?;
        Ok(Form(form_urlencoded_pairs(text)))
    }

    /// This form's fields and then `more`'s, refusing a field given twice with different
    /// values (RFC 6749 3.2: a parameter must not be included more than once): names the field.
    pub fn merged(mut self, more: Form) -> Result<Self, String> {
        self.0.extend(more.0);
        let mut seen = std::collections::HashMap::with_capacity(self.0.len());
        for (k, v) in &self.0 {
            if seen
                .insert(k.as_str(), v.as_str())
                .is_some_and(|old| old != v)
            {
                return Err(k.clone());
            }
        }
        Ok(self)
    }

    /// The first value of a field; an empty value counts as absent.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(pk, _)| pk == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn all(&self, k: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(pk, _)| pk == k)
            .map(|(_, v)| v.as_str())
    }
}

pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes() == b"https")
}

/// A `Set-Cookie` value with the flags every Cubby cookie carries.
fn set_cookie(headers: &HeaderMap, name: &str, value: &str, max_age: i64) -> HeaderValue {
    set_cookie_at(headers, name, value, max_age, "/")
}

/// A `Set-Cookie` value for the paths under `path` only.
pub(crate) fn set_cookie_at(
    headers: &HeaderMap,
    name: &str,
    value: &str,
    max_age: i64,
    path: &str,
) -> HeaderValue {
    let secure = if over_tls(headers) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .expect("cookie values and paths are URL-safe")
}

/// The signed-in session of a request, if any.
pub(crate) async fn session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<WebSession>, Response> {
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    state.store.web_session(id).await.map_err(internal)
}

/// Checks a form's CSRF token against the session's, in constant time.
pub(crate) fn check_csrf(session: &WebSession, form: &Form) -> Result<(), Response> {
    let given = form.get("csrf").unwrap_or("");
    if cubby_core::hash::ct_eq(given.as_bytes(), session.csrf.as_bytes()) {
        Ok(())
    } else {
        Err(error_page(
            StatusCode::FORBIDDEN,
            "This form has expired or was not sent by Cubby. Go back, reload the page and try again.",
        ))
    }
}

/// A same-site path to continue to after sign-in; anything else becomes `/`.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

/// The client's address: the peer, since a balancer's `X-Forwarded-For` could be forged by
/// anyone able to reach the server directly.
pub(crate) fn client_addr(ext: &axum::http::Extensions) -> String {
    ext.get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

// ---------------------------------------------------------------------------------------
// Responses.

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A complete page. Pages never embed third-party content and forbid framing.
pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · Cubby</title><link rel=\"icon\" href=\"{icon}\"><style>{CSS}</style></head>\
<body><header><a href=\"/\">Cubby</a></header><main><h1>{title}</h1>{body}</main></body></html>",
        title = esc(title),
        icon = app::icon_url(),
    );
    html_page(
        status,
        html,
        HeaderValue::from_static(
            "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action 'self' http: https:; frame-ancestors 'none'",
        ),
    )
}

/// An HTML page of this server with its CSP: never cached, never framed, no referrer.
pub(crate) fn html_page(status: StatusCode, html: String, csp: HeaderValue) -> Response {
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("content-security-policy", csp);
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

const CSS: &str = ":root{color-scheme:light dark;--bg:#fff;--fg:#1e1919;--muted:#5c5c66;--accent:#0061fe;--border:#85858f;--surface:#f6f6f8;--err:#c4262e;--line:#e3e3e6}\
@media (prefers-color-scheme:dark){:root{--bg:#161618;--fg:#ececef;--muted:#a9a9b3;--accent:#6ea2ff;--border:#7c7c88;--surface:#222226;--err:#ff7b7b;--line:#303036}}\
body{font-family:system-ui,sans-serif;max-width:48rem;margin:0 auto;padding:1rem;color:var(--fg);background:var(--bg);line-height:1.45}\
a{color:var(--accent)}header a{font-weight:bold;text-decoration:none;font-size:1.2rem}\
.crumbs{margin:.2rem 0 1rem;color:var(--muted)}\
label{display:block;margin:.6rem 0 .2rem}input[type=text],input[type=password],textarea{width:100%;padding:.5rem;box-sizing:border-box;\
background:var(--bg);color:var(--fg);border:1px solid var(--border);border-radius:6px;font:inherit}\
button{margin:.6rem .4rem 0 0;padding:.45rem 1rem;min-height:2.5rem;border-radius:6px;border:1px solid var(--border);background:var(--surface);color:var(--fg);font:inherit;cursor:pointer}\
button.primary{background:var(--accent);color:#fff;border-color:var(--accent);font-weight:bold}\
@media (prefers-color-scheme:dark){button.primary{color:#0b1630}}\
:focus-visible{outline:3px solid var(--accent);outline-offset:2px}\
code{background:var(--surface);padding:.1rem .3rem;overflow-wrap:anywhere}.notice{border:1px solid var(--accent);background:var(--surface);padding:.4rem .8rem;margin:1rem 0}\
.err{color:var(--err)}table{border-collapse:collapse;width:100%}td,th{padding:.4rem .6rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}\
td button{margin:0 .4rem .3rem 0}form.inline{display:flex;gap:.4rem;align-items:center;flex-wrap:wrap}form.inline input{width:7rem}form.inline button{margin:0}\
progress{width:100%;height:1rem;accent-color:var(--accent)}\
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}\
td.size,td.day{white-space:nowrap}#app-password{font-size:1.25rem;letter-spacing:.05em}label.check{display:flex;gap:.4rem;align-items:center}td.thumb{width:64px;padding:.2rem}td.thumb img{display:block;max-width:64px;max-height:64px;border-radius:3px}\
img.preview{display:block;max-width:100%;height:auto;margin:1rem 0;border:1px solid var(--border)}\
@media (max-width:30rem){td,th{padding:.3rem .25rem}td.thumb{width:44px}td.thumb img{max-width:44px;max-height:44px}}";

/// Headers for a user's file served on this origin (shared links, temporary links, the web
/// app's downloads): whatever its type, it never runs as a page of this origin, so an HTML or
/// SVG file cannot reach the signed-in app. Chromium still shows PDFs, images and media.
pub(crate) fn untrusted_bytes(h: &mut HeaderMap) {
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
}

pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    page(
        status,
        "Something went wrong",
        &format!("<p class=\"err\" id=\"error\">{}</p>", esc(message)),
    )
}

pub(crate) fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(cause = %e, "internal error on a web page");
    error_page(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error.")
}

pub(crate) fn redirect(to: &str) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub(crate) fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        esc(name),
        esc(value)
    )
}

pub(crate) fn too_many(retry: std::time::Duration) -> Response {
    let mut resp = error_page(
        StatusCode::TOO_MANY_REQUESTS,
        &format!(
            "Too many failed attempts. Try again in {} seconds.",
            retry.as_secs()
        ),
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry.as_secs()));
    resp
}

// ---------------------------------------------------------------------------------------
// Pages.

/// The sign-in form; `next` is where to continue after signing in.
pub(crate) fn login_form(headers: &HeaderMap, next: &str, error: Option<&str>) -> Response {
    let csrf = cubby_core::ids::token("", cubby_store::random_bytes());
    let err = error
        .map(|e| format!("<p class=\"err\" id=\"error\">{}</p>", esc(e)))
        .unwrap_or_default();
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let mut resp = page(
        status,
        "Sign in",
        &format!(
            "{err}<form method=\"post\" action=\"/login\">{}{}\
<label for=\"login\">User name or email</label><input type=\"text\" id=\"login\" name=\"login\" autocomplete=\"username\" autofocus required>\
<label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
<button type=\"submit\" id=\"sign-in\">Sign in</button></form>",
            hidden("csrf", &csrf),
            hidden("next", safe_next(Some(next)))
        ),
    );
    resp.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(headers, LOGIN_COOKIE, &csrf, 3600),
    );
    resp
}

async fn login_page(
    headers: HeaderMap,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    let q = Form::from_query(q.as_deref());
    login_form(&headers, safe_next(q.get("next")), None)
}

async fn login_submit(
    State(state): State<Arc<AppState>>,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let form = match Form::from_body(body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let next = safe_next(form.get("next")).to_owned();
    // Double-submit check: the form's token must equal the cookie set with the form.
    let given = form.get("csrf").unwrap_or("");
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !cubby_core::hash::ct_eq(given.as_bytes(), expected.as_bytes()) {
        return login_form(
            &headers,
            &next,
            Some("The sign-in form expired. Please sign in again."),
        );
    }
    let login = form.get("login").unwrap_or("").trim().to_lowercase();
    let password = form.get("password").unwrap_or("");
    let addr_key = format!("addr:{}", client_addr(&ext));
    let login_key = format!("login:{login}");
    let allowed = state
        .addr_limiter
        .check(&addr_key)
        .and(state.signin_limiter.check(&login_key));
    if let Err(retry) = allowed {
        return too_many(retry);
    }
    let account = match state.store.check_password(&login, password).await {
        Ok(a) => a,
        Err(e) => return internal(e),
    };
    let Some(account) = account else {
        state.addr_limiter.fail(&addr_key);
        state.signin_limiter.fail(&login_key);
        return login_form(
            &headers,
            &next,
            Some("Wrong user name or password, or the account is disabled."),
        );
    };
    state.signin_limiter.clear(&login_key);
    let id = match state.store.create_web_session(account.id).await {
        Ok(id) => id,
        Err(e) => return internal(e),
    };
    let mut resp = redirect(&next);
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(
            &headers,
            SESSION_COOKIE,
            &id,
            cubby_store::web_sessions::WEB_SESSION_SECS,
        ),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(&headers, LOGIN_COOKIE, "", 0),
    );
    resp
}

async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let form = match Form::from_body(body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Ok(Some(s)) = session(&state, &headers).await {
        if let Err(r) = check_csrf(&s, &form) {
            return r;
        }
        if let Some(id) = cookie(&headers, SESSION_COOKIE)
            && let Err(e) = state.store.end_web_session(id).await
        {
            return internal(e);
        }
    }
    let mut resp = redirect("/login");
    resp.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&headers, SESSION_COOKIE, "", 0),
    );
    resp
}

/// Signs in first when a page needs a user: the sign-in form, then back to `here`.
pub(crate) async fn require_session(
    state: &AppState,
    headers: &HeaderMap,
    here: &str,
) -> Result<WebSession, Response> {
    match session(state, headers).await? {
        Some(s) => Ok(s),
        None => Err(login_form(headers, here, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_next() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(safe_next(Some("/apps")), "/apps");
        assert_eq!(safe_next(Some("//evil.com/")), "/");
        assert_eq!(safe_next(Some("https://evil.com/")), "/");
        assert_eq!(safe_next(Some("/\\evil.com")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn cookies() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; cubby_session=xyz; b=2"),
        );
        assert_eq!(cookie(&h, "cubby_session"), Some("xyz"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
