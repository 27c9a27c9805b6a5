//! The public side of shared links: `GET /s/{token}/{name}` serves a file link's bytes
//! (Range, ETag, `?dl=1` for an attachment) or a folder link's listing page (`?path=/child`
//! for what is inside), and `POST` to the same URL takes a link's password.
//!
//! Security Invariants:
//! - nothing is served through an expired, revoked or password-protected link without its
//!   password; failed passwords are limited per link and per client address;
//! - an unlocked link is remembered by a cookie scoped to the link's path that holds a MAC
//!   over the link and its password hash (never the password), so changing the password
//!   locks the link again;
//! - served files carry `Content-Security-Policy: sandbox` and `nosniff`, so an HTML file
//!   shared by one user cannot run script with this site's origin;
//! - every name on a page is escaped.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cubby_store::links::SharedLink;
use cubby_store::{Entry, Kind};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::links::{self, Denied};
use crate::api::percent_encode;
use crate::web::{
    Form, client_addr, cookie, error_page, esc, internal, page, redirect, set_cookie_at, too_many,
};

/// Name of the cookie that unlocks a password-protected link (one per link path).
const UNLOCK_COOKIE: &str = "cubby_link";

/// How long an unlocked link stays unlocked in a browser.
const UNLOCK_SECS: i64 = 24 * 3600;

/// Entries shown on a folder page; a bigger folder shows its first ones and says so.
const PAGE_ENTRIES: u32 = 1_000;

/// The kind tag of sealed unlock cookies.
const UNLOCK_KIND: &str = "u1";

/// What an unlock cookie says: this link, with this password, until then.
#[derive(Serialize, Deserialize)]
struct Unlock {
    link: i64,
    password: String,
    until: i64,
}

/// `GET /s/{token}/{name}`.
pub(crate) async fn serve(
    State(state): State<Arc<AppState>>,
    Path((token, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let link = match open(&state, &token).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let q = Form::from_query(query.as_deref());
    if link.password_hash.is_some() && !unlocked(&state, &link, &headers) {
        return password_form(&token, &name, query.as_deref(), None);
    }
    show(&state, &link, &token, &q, &headers).await
}

/// `POST /s/{token}/{name}`: the password form.
pub(crate) async fn unlock(
    State(state): State<Arc<AppState>>,
    Path((token, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let link = match open(&state, &token).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let form = match Form::from_body(body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let back = link_path(&token, &name, query.as_deref());
    if link.password_hash.is_none() {
        return redirect(&back);
    }
    let addr_key = format!("addr:{}", client_addr(&ext));
    if let Err(retry) = state.addr_limiter.check(&addr_key) {
        return too_many(retry);
    }
    let password = form.get("password").unwrap_or("");
    match links::check_access(&state, &link, false, Some(password)).await {
        Ok(()) => {}
        Err(Denied::NotFound) => return not_found(),
        Err(Denied::AccessDenied) => {
            state.addr_limiter.fail(&addr_key);
            return password_form(
                &token,
                &name,
                query.as_deref(),
                Some("That password is not right."),
            );
        }
    }
    let claim = Unlock {
        link: link.id,
        password: password_tag(&state, &link),
        until: cubby_store::now() + UNLOCK_SECS,
    };
    let value = cubby_core::cursor::seal(state.store.link_key(), UNLOCK_KIND, &claim);
    let mut resp = redirect(&back);
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie_at(
            &headers,
            UNLOCK_COOKIE,
            &value,
            UNLOCK_SECS,
            &format!("/s/{token}"),
        ),
    );
    resp
}

/// The link a token names, or the page to answer instead.
async fn open(state: &AppState, token: &str) -> Result<SharedLink, Response> {
    if !links::valid_token(token) {
        return Err(not_found());
    }
    let link = match state.store.shared_link_by_token(token).await {
        Ok(Some(l)) if !l.owner_disabled => l,
        Ok(_) => return Err(not_found()),
        Err(e) => return Err(internal(e)),
    };
    if link.expired() {
        return Err(error_page(StatusCode::GONE, "This link has expired."));
    }
    if link.audience == cubby_store::links::Audience::NoOne {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            "This link does not give access to anyone.",
        ));
    }
    Ok(link)
}

fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "This link does not exist, or what it pointed to was removed.",
    )
}

/// The path of a link's URL with the query it came with (a same-site path: the token was
/// checked and the name is percent-encoded).
fn link_path(token: &str, name: &str, query: Option<&str>) -> String {
    format!(
        "/s/{token}/{}{}",
        percent_encode(name),
        query.map(|q| format!("?{q}")).unwrap_or_default()
    )
}

/// A tag of the link's password hash: a cookie made under one password fails under another.
fn password_tag(state: &AppState, link: &SharedLink) -> String {
    let hash = link.password_hash.as_deref().unwrap_or("");
    cubby_core::hash::hex(
        &cubby_core::cursor::derive(
            state.store.link_key(),
            "shared-link-unlock",
            hash.as_bytes(),
        )[..16],
    )
}

fn unlocked(state: &AppState, link: &SharedLink, headers: &HeaderMap) -> bool {
    let Some(value) = cookie(headers, UNLOCK_COOKIE) else {
        return false;
    };
    cubby_core::cursor::open::<Unlock>(state.store.link_key(), UNLOCK_KIND, value).is_some_and(
        |u| {
            u.link == link.id
                && cubby_core::hash::ct_eq(
                    u.password.as_bytes(),
                    password_tag(state, link).as_bytes(),
                )
                && u.until > cubby_store::now()
        },
    )
}

fn password_form(token: &str, name: &str, query: Option<&str>, error: Option<&str>) -> Response {
    let err = error
        .map(|e| format!("<p class=\"err\" id=\"error\">{}</p>", esc(e)))
        .unwrap_or_default();
    let action = link_path(token, name, query);
    page(
        if error.is_some() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        },
        "This link needs a password",
        &format!(
            "{err}<form method=\"post\" action=\"{}\">\
<label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"off\" autofocus required>\
<button type=\"submit\" class=\"primary\" id=\"unlock\">Open</button></form>",
            esc(&action)
        ),
    )
}

/// Serves what the link (and `?path=`) names: a file's bytes or a folder's page.
async fn show(
    state: &AppState,
    link: &SharedLink,
    token: &str,
    q: &Form,
    headers: &HeaderMap,
) -> Response {
    let top = match links::item_at(&state.store, link, None).await {
        Ok(Some(e)) => e,
        Ok(None) => return not_found(),
        Err(e) => return e.into_response(),
    };
    let item = match links::item_at(&state.store, link, q.get("path")).await {
        Ok(Some(e)) => e,
        Ok(None) => return not_found(),
        Err(e) => return e.into_response(),
    };
    if item.kind == Kind::Folder {
        return folder_page(state, link.ns, token, &top, &item).await;
    }
    if let Some(size) = q.get("thumb") {
        return thumbnail(state, &item, size).await;
    }
    if !link.allow_download {
        // Pictures can still be looked at (as Dropbox's link pages show them).
        if crate::thumb::is_image_name(item.name()) {
            let src = format!(
                "?{}thumb=w1024h768",
                match q.get("path") {
                    Some(p) => format!("path={}&", percent_encode(p)),
                    None => String::new(),
                }
            );
            return page(
                StatusCode::FORBIDDEN,
                item.name(),
                &format!(
                    "<p id=\"no-download\">The owner turned off downloads for this link.</p>\
                     <img class=\"preview\" id=\"preview\" src=\"{}\" alt=\"{}\">",
                    esc(&src),
                    esc(item.name())
                ),
            );
        }
        return error_page(
            StatusCode::FORBIDDEN,
            "The owner turned off downloads for this link.",
        );
    }
    let attachment = q.get("dl") == Some("1");
    let content_type = if attachment {
        "application/octet-stream"
    } else {
        crate::api::history::mime_type(&item.path_lower)
    };
    let mut resp =
        match crate::api::transfer::serve_file(state, &item, None, content_type, headers).await {
            Ok(r) => r,
            Err(e) => return e.into_response(),
        };
    let h = resp.headers_mut();
    let disposition = format!(
        "{}; filename=\"{}\"; filename*=UTF-8''{}",
        if attachment { "attachment" } else { "inline" },
        ascii_name(item.name()),
        percent_encode(item.name())
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    crate::web::untrusted_bytes(h);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    resp
}

/// `?thumb=w256h256`: a JPEG thumbnail of the file the link (and `path`) names, made to fit
/// that box or its transpose; a file that is not a picture is a 404.
async fn thumbnail(state: &AppState, item: &Entry, size: &str) -> Response {
    use cubby_core::api::types::{ThumbnailFormat, ThumbnailMode, ThumbnailSize};
    let Some(size) = ThumbnailSize::from_tag(size) else {
        return error_page(StatusCode::BAD_REQUEST, "Unknown thumbnail size.");
    };
    let want = crate::thumb::Want {
        size,
        mode: ThumbnailMode::Bestfit,
        format: ThumbnailFormat::Jpeg,
    };
    match state
        .thumbs
        .thumbnail(&state.store, item, item.name(), want)
        .await
    {
        Ok((bytes, _)) => {
            let mut resp = (StatusCode::OK, Body::from(bytes)).into_response();
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=3600"),
            );
            h.insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            h.insert(
                "content-security-policy",
                HeaderValue::from_static("sandbox; default-src 'none'"),
            );
            resp
        }
        Err(crate::thumb::Failure::Store(e)) => internal(e),
        Err(_) => error_page(StatusCode::NOT_FOUND, "This file has no thumbnail."),
    }
}

/// A file name reduced to printable ASCII without quotes, for the plain `filename=`.
fn ascii_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A folder's page: its entries, each a link inside the shared link.
async fn folder_page(
    state: &AppState,
    ns: u64,
    token: &str,
    top: &Entry,
    folder: &Entry,
) -> Response {
    let rows = match state
        .store
        .list(ns, &folder.path_lower, false, false, "", PAGE_ENTRIES + 1)
        .await
    {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let base = format!("/s/{token}/{}", percent_encode(top.name()));
    let top_chars = top.path_display.chars().count();
    let rel = |e: &Entry| -> String { e.path_display.chars().skip(top_chars).collect() };
    let mut body = String::new();
    let here = rel(folder);
    if !here.is_empty() {
        let parent = cubby_core::path::parent_of(&here);
        let up = if parent.is_empty() {
            base.clone()
        } else {
            format!("{base}?path={}", percent_encode(parent))
        };
        body.push_str(&format!(
            "<p><a href=\"{}\" id=\"up\">Up</a> · <code>{}</code></p>",
            esc(&up),
            esc(&here)
        ));
    }
    body.push_str("<table id=\"entries\"><tr><th></th><th>Name</th><th>Size</th><th></th></tr>");
    for e in rows.iter().take(PAGE_ENTRIES as usize) {
        let href = format!("{base}?path={}", percent_encode(&rel(e)));
        let thumb = if e.kind == Kind::File && crate::thumb::is_image_name(e.name()) {
            format!(
                "<img src=\"{}\" alt=\"\" loading=\"lazy\">",
                esc(&format!("{href}&thumb=w128h128"))
            )
        } else {
            String::new()
        };
        let (size, download) = if e.kind == Kind::File {
            (
                cubby_core::naming::human_size(e.size),
                format!("<a href=\"{}\">Download</a>", esc(&format!("{href}&dl=1"))),
            )
        } else {
            ("folder".to_owned(), String::new())
        };
        body.push_str(&format!(
            "<tr><td class=\"thumb\">{}</td><td><a href=\"{}\">{}</a></td><td class=\"size\">{}</td><td>{}</td></tr>",
            thumb,
            esc(&href),
            esc(e.name()),
            esc(&size),
            download
        ));
    }
    body.push_str("</table>");
    if rows.len() > PAGE_ENTRIES as usize {
        body.push_str(&format!(
            "<p>This folder has more than {PAGE_ENTRIES} items; the first {PAGE_ENTRIES} are shown.</p>"
        ));
    }
    page(StatusCode::OK, folder.name(), &body)
}
