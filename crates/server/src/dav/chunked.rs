//! Nextcloud's chunked upload ("chunking NG", `/remote.php/dav/uploads/<user>/<transfer>/`):
//! `MKCOL` starts an upload, each chunk is a `PUT` of a file in it, a `PROPFIND` lists the
//! chunks received (a client resumes from there), and `MOVE` of `.file` onto the destination
//! commits the whole; `DELETE` gives up.
//!
//! An upload is an API upload session: each chunk is appended where the last ended (the
//! session keeps the bytes past its full blocks, so chunks of any size need no copy), and the
//! `MOVE` is the session's finish, one metadata commit under the API's rules. The clients
//! send a file's chunks one after the other, in the order of their names; a chunk that does
//! not continue the upload is refused (400), and the client starts the upload again.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cubby_core::api::errors::{SessionFinishError, WriteError};
use cubby_core::api::types::{CommitInfo, SessionAppendArg, SessionFinishArg};
use cubby_core::time::http_date;
use serde_json::json;

use super::{FILES_PREFIX, authenticate, percent_decode, plain, request_path};
use crate::AppState;
use crate::api::{Ctx, Fail};

/// Where chunked uploads live.
pub(super) const UPLOADS_PREFIX: &str = "/remote.php/dav/uploads/";

pub(super) async fn handle(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let auth = match authenticate(&state, &parts).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if auth.read_only {
        return plain(StatusCode::FORBIDDEN, "This app password may only read.");
    }
    // /remote.php/dav/uploads/<user>/<transfer>[/<chunk>]
    let rest = parts.uri.path().strip_prefix(UPLOADS_PREFIX).unwrap_or("");
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let Some(user) = segs.first().and_then(|s| percent_decode(s)) else {
        return plain(StatusCode::NOT_FOUND, "No such upload.");
    };
    if !auth.names(&user) {
        return plain(StatusCode::FORBIDDEN, "That is another user's upload.");
    }
    let account = auth.info.account.clone();
    let transfer = segs.get(1).and_then(|s| percent_decode(s));
    let chunk = segs.get(2).and_then(|s| percent_decode(s));
    if segs.len() > 3 || transfer.as_ref().is_some_and(|t| t.len() > 100) {
        return plain(StatusCode::BAD_REQUEST, "Not an upload's path.");
    }
    let store = &state.store;
    let ctx = Ctx {
        state: state.clone(),
        route: "webdav",
        auth: Some(auth.info),
        mounts: Default::default(),
        path_root: None,
    };
    let method = parts.method.as_str();
    let Some(transfer) = transfer else {
        // The user's uploads folder itself: it exists, and lists nothing.
        return match method {
            "PROPFIND" | "MKCOL" => multistatus(parts.uri.path(), &[]),
            _ => plain(StatusCode::METHOD_NOT_ALLOWED, "Not on the uploads folder."),
        };
    };
    let upload = match store.dav_upload(account.id, &transfer).await {
        Ok(u) => u,
        Err(_) => {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "Uploads cannot be read now.",
            );
        }
    };
    match (method, chunk.as_deref(), upload) {
        ("MKCOL", None, None) => match store.dav_upload_start(account.id, &transfer).await {
            Ok(true) => StatusCode::CREATED.into_response(),
            Ok(false) => plain(StatusCode::METHOD_NOT_ALLOWED, "That upload exists."),
            Err(_) => plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "The upload could not start.",
            ),
        },
        ("MKCOL", _, _) => plain(StatusCode::METHOD_NOT_ALLOWED, "That upload exists."),
        ("PROPFIND", None, Some(u)) => {
            let depth1 = parts
                .headers
                .get("depth")
                .is_some_and(|d| d.as_bytes() != b"0");
            let chunks = if depth1 { u.chunks.clone() } else { Vec::new() };
            multistatus(parts.uri.path(), &chunks)
        }
        ("DELETE", None, Some(_)) => {
            let _ = store.dav_upload_end(account.id, &transfer).await;
            StatusCode::NO_CONTENT.into_response()
        }
        ("PUT", Some(name), Some(u)) => {
            put_chunk(&ctx, &transfer, name, u, &parts.headers, body).await
        }
        ("MOVE", Some(".file"), Some(u)) => finish(&ctx, &transfer, u, &parts.headers).await,
        (_, _, None) => plain(StatusCode::NOT_FOUND, "No such upload."),
        _ => plain(StatusCode::METHOD_NOT_ALLOWED, "Not on an upload."),
    }
}

async fn put_chunk(
    ctx: &Ctx,
    transfer: &str,
    name: &str,
    mut u: cubby_store::dav::DavUpload,
    h: &HeaderMap,
    body: Body,
) -> Response {
    let offset: u64 = u.chunks.iter().map(|(_, n)| n).sum();
    if let Some(given) = h.get("oc-chunk-offset").and_then(|v| v.to_str().ok())
        && given.trim().parse::<u64>().ok() != Some(offset)
    {
        return plain(
            StatusCode::BAD_REQUEST,
            "The chunk does not continue the upload: start it again.",
        );
    }
    if u.chunks
        .last()
        .is_some_and(|(last, _)| !in_order(last, name))
    {
        return plain(
            StatusCode::BAD_REQUEST,
            "Chunks must come in the order of their names: start the upload again.",
        );
    }
    let arg: SessionAppendArg = match serde_json::from_value(json!({
        "cursor": {"session_id": u.session, "offset": offset},
    })) {
        Ok(a) => a,
        Err(_) => return plain(StatusCode::INTERNAL_SERVER_ERROR, "Bad session."),
    };
    match crate::api::sessions::append_v2(ctx, arg, h, body).await {
        Ok(_) => {}
        Err(Fail::Route(_)) => {
            return plain(
                StatusCode::BAD_REQUEST,
                "The chunk could not be added: start the upload again.",
            );
        }
        Err(Fail::Api(e)) => {
            tracing::warn!(error = ?e, "WebDAV: a chunk failed");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The chunk could not be stored.",
            );
        }
    }
    let length = match ctx.store().session(&u.session, ctx.auth().account.id).await {
        Ok(s) => s.length,
        Err(_) => return plain(StatusCode::NOT_FOUND, "The upload expired."),
    };
    u.chunks.push((name.to_owned(), length - offset));
    if ctx
        .store()
        .dav_upload_chunk(ctx.auth().account.id, transfer, &u.chunks)
        .await
        .is_err()
    {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "The chunk could not be recorded.",
        );
    }
    StatusCode::CREATED.into_response()
}

/// Whether chunk `next` comes after chunk `last` in the order of their names (numerically
/// for numbers, as the clients number them).
fn in_order(last: &str, next: &str) -> bool {
    match (last.parse::<u64>(), next.parse::<u64>()) {
        (Ok(a), Ok(b)) => b > a,
        _ => next > last,
    }
}

async fn finish(
    ctx: &Ctx,
    transfer: &str,
    u: cubby_store::dav::DavUpload,
    h: &HeaderMap,
) -> Response {
    let Some(dest) = h.get("destination").and_then(|v| v.to_str().ok()) else {
        return plain(StatusCode::BAD_REQUEST, "MOVE needs a Destination.");
    };
    let dest_path = dest
        .parse::<axum::http::Uri>()
        .map(|u| u.path().to_owned())
        .unwrap_or_default();
    let user_tree = format!(
        "{FILES_PREFIX}{}",
        dest_path
            .strip_prefix(FILES_PREFIX)
            .and_then(|r| r.split('/').next())
            .unwrap_or("")
    );
    let Some(path) = request_path(&dest_path, &user_tree).filter(|p| !p.is_empty()) else {
        return plain(
            StatusCode::BAD_GATEWAY,
            "Destination is outside your files.",
        );
    };
    let length: u64 = u.chunks.iter().map(|(_, n)| n).sum();
    if let Some(total) = h.get("oc-total-length").and_then(|v| v.to_str().ok())
        && total.trim().parse::<u64>().ok() != Some(length)
    {
        return plain(
            StatusCode::BAD_REQUEST,
            "OC-Total-Length differs from the chunks received.",
        );
    }
    // The parent must exist (WebDAV never makes folders on its own).
    let fs = super::fs::CubbyFs::new(Arc::new(ctx.clone()), false);
    let parent = &path[..path.rfind('/').unwrap_or(0)];
    if !matches!(fs.find(parent).await, Ok(Some(e)) if e.kind == cubby_store::meta::Kind::Folder) {
        return plain(
            StatusCode::CONFLICT,
            "The destination's folder does not exist.",
        );
    }
    let existed = matches!(fs.find(&path).await, Ok(Some(_)));
    // An overwrite names the version it replaces: `If: <url> (["etag"])` or `If-Match`.
    let expected = h
        .get("if")
        .or_else(|| h.get(header::IF_MATCH))
        .and_then(|v| v.to_str().ok())
        .and_then(etag_in);
    let mode = match &expected {
        Some(rev) => json!({".tag": "update", "update": rev}),
        None => json!("overwrite"),
    };
    let mtime = super::oc_mtime(h);
    let commit = CommitInfo {
        path: path.clone(),
        mode,
        client_modified: mtime.map(cubby_core::time::format),
        ..CommitInfo::default()
    };
    let arg: SessionFinishArg = match serde_json::from_value(json!({
        "cursor": {"session_id": u.session, "offset": length},
        "commit": commit,
    })) {
        Ok(a) => a,
        Err(_) => return plain(StatusCode::INTERNAL_SERVER_ERROR, "Bad commit."),
    };
    let md = match crate::api::sessions::finish(ctx, arg, h, Body::empty()).await {
        Ok(md) => md,
        Err(Fail::Route(SessionFinishError::Path { path: w })) => {
            return match w {
                WriteError::Conflict { .. } if expected.is_some() => plain(
                    StatusCode::PRECONDITION_FAILED,
                    "The file changed since the client saw it.",
                ),
                WriteError::InsufficientSpace => {
                    plain(StatusCode::INSUFFICIENT_STORAGE, "Not enough space.")
                }
                WriteError::NoWritePermission => plain(StatusCode::FORBIDDEN, "Read only."),
                _ => plain(StatusCode::CONFLICT, "The file could not be written there."),
            };
        }
        Err(Fail::Route(_)) => {
            return plain(StatusCode::BAD_REQUEST, "The upload could not be finished.");
        }
        Err(Fail::Api(e)) => {
            tracing::warn!(error = ?e, "WebDAV: a chunked upload failed");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "The upload failed.");
        }
    };
    let _ = ctx
        .store()
        .dav_upload_end(ctx.auth().account.id, transfer)
        .await;
    let status = if existed {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::CREATED
    };
    let mut r = status.into_response();
    let hm = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", md.rev)) {
        hm.insert(header::ETAG, v.clone());
        hm.insert("oc-etag", v);
    }
    if let Ok(v) = HeaderValue::from_str(&super::nextcloud::oc_id(&md.id)) {
        hm.insert("oc-fileid", v);
    }
    if mtime.is_some() {
        hm.insert("x-oc-mtime", HeaderValue::from_static("accepted"));
    }
    r
}

/// The entity tag in an `If` header's list (`(["etag"])`) or an `If-Match` value.
fn etag_in(v: &str) -> Option<String> {
    let start = v.find('"')? + 1;
    let end = start + v[start..].find('"')?;
    let tag = &v[start..end];
    (!tag.is_empty()).then(|| tag.to_owned())
}

/// A PROPFIND answer for an upload (and, at depth 1, its chunks with their sizes).
fn multistatus(href: &str, chunks: &[(String, u64)]) -> Response {
    let base = href.trim_end_matches('/');
    let now = http_date(cubby_store::now());
    let mut xml =
        String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><d:multistatus xmlns:d=\"DAV:\">");
    xml.push_str(&format!(
        "<d:response><d:href>{base}/</d:href><d:propstat><d:prop><d:resourcetype><d:collection/>\
         </d:resourcetype><d:getlastmodified>{now}</d:getlastmodified></d:prop>\
         <d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
    ));
    for (name, size) in chunks {
        xml.push_str(&format!(
            "<d:response><d:href>{base}/{}</d:href><d:propstat><d:prop><d:resourcetype/>\
             <d:getcontentlength>{size}</d:getcontentlength><d:getlastmodified>{now}\
             </d:getlastmodified></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>\
             </d:response>",
            super::locks::encode(name)
        ));
    }
    xml.push_str("</d:multistatus>");
    (
        StatusCode::MULTI_STATUS,
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        xml,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunk_order_and_etags() {
        assert!(super::in_order("00009", "00010"));
        assert!(!super::in_order("10", "9"));
        assert_eq!(
            super::etag_in("</remote.php/dav/files/a/x> ([\"abc\"])").as_deref(),
            Some("abc")
        );
        assert_eq!(super::etag_in("\"rev1\"").as_deref(), Some("rev1"));
        assert_eq!(super::etag_in("(<opaquelocktoken:x>)"), None);
    }
}
