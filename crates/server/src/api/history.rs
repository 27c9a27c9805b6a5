//! Version history and links: list_revisions, restore, permanently_delete,
//! get_temporary_link, and the link endpoint itself.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cubby_core::path::{Pattern, is_within, name_of};
use cubby_store::history::RevisionsOf;
use cubby_store::{Kind, OpError};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::AppState;
use crate::api::percent_encode;
use crate::api::transfer::serve_file;
use crate::api::{
    Answer, ApiError, ApiResult, Ctx, Fail, Resolved, lookup_error, unexpected, write_error,
};
use cubby_core::api::endpoint as ep;
use cubby_core::api::errors::{
    DeleteError, ListRevisionsError, LookupError, RestoreError, TemporaryLinkError,
};
use cubby_core::api::types::{
    FileMetadata, Link, ListRevisionsArg, ListRevisionsResult, Metadata, PathArg, RestoreArg,
    TemporaryLink, TemporaryUploadLinkArg, Void,
};

/// How long a temporary link serves its file, as on Dropbox.
pub const TEMPORARY_LINK_SECS: i64 = 4 * 3600;

/// The kind tag of signed temporary-link tokens.
const LINK_KIND: &str = "l1";

pub(crate) async fn list_revisions(ctx: &Ctx, a: ListRevisionsArg) -> Answer<ep::ListRevisions> {
    if !(1..=100).contains(&a.limit) {
        return Err(ctx
            .bad_input("request body: limit: must be within 1..100")
            .into());
    }
    let by_id = match cubby_core::wire::union_tag(&a.mode) {
        None if a.mode.is_null() => false,
        Some(("path", _)) => false,
        Some(("id", _)) => true,
        _ => {
            return Err(ctx
                .bad_input("request body: mode: expected 'path' or 'id'")
                .into());
        }
    };
    let path_err = |l: LookupError| Fail::Route(ListRevisionsError::Path { path: l });
    let store = ctx.store();
    let (ns, lower) = match ctx.resolve("path", &a.path, Pattern::PathOrId).await? {
        Resolved::Path { ns, lower, .. } => (ns, lower),
        Resolved::Malformed => return Err(path_err(LookupError::MalformedPath)),
        Resolved::NotFolder => return Err(path_err(LookupError::NotFolder)),
        _ => return Err(path_err(LookupError::NotFound)),
    };
    let current = store.entry(ns, &lower).await?;
    if current.as_ref().is_some_and(|e| e.kind == Kind::Folder) {
        return Err(path_err(LookupError::NotFile));
    }
    let before = match (&a.before_rev, by_id) {
        (Some(_), true) => {
            return Err(Fail::Route(ListRevisionsError::BeforeRevNotSupported));
        }
        (Some(rev), false) => {
            if !cubby_core::ids::is_rev(rev) {
                return Err(ctx
                    .bad_input("request body: before_rev: did not match pattern")
                    .into());
            }
            match store.revision_by_rev(ns, rev).await? {
                Some(e) if e.path_lower == lower => e.revision,
                _ => return Err(Fail::Route(ListRevisionsError::InvalidBeforeRev)),
            }
        }
        (None, _) => None,
    };
    let mut revs = if by_id {
        let id = current
            .as_ref()
            .and_then(|e| e.id.clone())
            .ok_or_else(|| path_err(LookupError::NotFound))?;
        store
            .revisions(ns, RevisionsOf::Id(&id), before, a.limit + 1)
            .await?
    } else {
        let at_path = store
            .revisions(ns, RevisionsOf::Path(&lower), before, a.limit + 1)
            .await?;
        // Revisions are recorded at the path they were written to (a move writes one at the
        // new path). A file moved here before moves did has none: its history is under its id.
        match current.as_ref().and_then(|e| e.id.as_deref()) {
            Some(id) if at_path.is_empty() && before.is_none() => {
                store
                    .revisions(ns, RevisionsOf::Id(id), None, a.limit + 1)
                    .await?
            }
            _ => at_path,
        }
    };
    if revs.is_empty() && before.is_none() {
        return Err(path_err(LookupError::NotFound));
    }
    let has_more = revs.len() > a.limit as usize;
    revs.truncate(a.limit as usize);
    let mut entries = Vec::with_capacity(revs.len());
    for e in &revs {
        entries.push(file_metadata(ctx, e)?);
    }
    Ok(ListRevisionsResult {
        is_deleted: current.as_ref().is_none_or(|e| e.kind == Kind::Deleted),
        server_deleted: current
            .filter(|e| e.kind == Kind::Deleted)
            .map(|e| cubby_core::time::format(e.server_modified)),
        entries,
        has_more,
    })
}

/// The `FileMetadata` of a file's entry or revision.
pub(crate) fn file_metadata(ctx: &Ctx, e: &cubby_store::Entry) -> ApiResult<FileMetadata> {
    match ctx.metadata(e) {
        Metadata::File(f) => Ok(f),
        other => Err(ApiError::Internal(format!(
            "expected a file, found {other:?}"
        ))),
    }
}

pub(crate) async fn restore(ctx: &Ctx, a: RestoreArg) -> Answer<ep::Restore> {
    if !cubby_core::ids::is_rev(&a.rev) {
        return Err(ctx
            .bad_input(&format!(
                "request body: rev: '{}' did not match pattern",
                a.rev
            ))
            .into());
    }
    let lookup = |l: LookupError| Fail::Route(RestoreError::PathLookup { path_lookup: l });
    let (ns, display) = match ctx.resolve("path", &a.path, Pattern::WritePath).await? {
        Resolved::Path { ns, lower, .. } if ctx.is_top(ns, &lower) => {
            return Err(lookup(LookupError::MalformedPath));
        }
        Resolved::Path {
            read_only: true, ..
        } => {
            return Err(Fail::Route(RestoreError::PathWrite {
                path_write: cubby_core::api::errors::WriteError::NoWritePermission,
            }));
        }
        Resolved::Path { ns, display, .. } => (ns, display),
        Resolved::NotFound => return Err(lookup(LookupError::NotFound)),
        _ => return Err(lookup(LookupError::MalformedPath)),
    };
    // The revision must be one the caller can see: an app folder cannot restore content
    // from outside its folder into it.
    let visible = ctx
        .store()
        .revision_by_rev(ns, &a.rev)
        .await?
        .is_some_and(|e| is_within(&ctx.shown(e).path_lower, &ctx.root_lower()));
    if !visible {
        return Err(Fail::Route(RestoreError::InvalidRevision));
    }
    match ctx.store().restore(ns, &display, &a.rev).await {
        Ok(e) => Ok(file_metadata(ctx, &e)?),
        Err(OpError::InvalidRevision) => Err(Fail::Route(RestoreError::InvalidRevision)),
        Err(e) => Err(match write_error(&e) {
            Some(w) => Fail::Route(RestoreError::PathWrite { path_write: w }),
            None => unexpected(e).into(),
        }),
    }
}

pub(crate) async fn permanently_delete(ctx: &Ctx, a: PathArg) -> Answer<ep::PermanentlyDelete> {
    let lookup = |l: LookupError| Fail::Route(DeleteError::PathLookup { path_lookup: l });
    let (ns, lower) = match ctx.resolve("path", &a.path, Pattern::WritePathOrId).await? {
        Resolved::Path { ns, lower, .. } if ctx.is_top(ns, &lower) => {
            return Err(lookup(LookupError::MalformedPath));
        }
        Resolved::Path {
            read_only: true, ..
        } => {
            return Err(Fail::Route(DeleteError::PathWrite {
                path_write: cubby_core::api::errors::WriteError::NoWritePermission,
            }));
        }
        Resolved::Path { ns, lower, .. } => (ns, lower),
        Resolved::Malformed => return Err(lookup(LookupError::MalformedPath)),
        _ => return Err(lookup(LookupError::NotFound)),
    };
    match ctx.store().permanently_delete(ns, &lower).await {
        Ok(()) => Ok(Void),
        Err(e) => Err(match lookup_error(&e) {
            Some(l) => lookup(l),
            None => unexpected(e).into(),
        }),
    }
}

/// What a temporary link names: a revision of a namespace, until a time.
#[derive(Serialize, Deserialize)]
struct LinkToken {
    ns: u64,
    revision: i64,
    expires: i64,
    /// For a file of a shared folder, the account that minted the link: it serves only
    /// while that account is still a member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    member: Option<i64>,
}

pub(crate) async fn get_temporary_link(
    ctx: &Ctx,
    a: PathArg,
    headers: &HeaderMap,
) -> Answer<ep::GetTemporaryLink> {
    let entry = ctx
        .read_file(&a.path)
        .await?
        .map_err(|l| Fail::Route(TemporaryLinkError::Path { path: l }))?;
    let token = LinkToken {
        ns: ctx.ns_of(&entry),
        revision: entry
            .revision
            .ok_or_else(|| ApiError::Internal("file without revision".into()))?,
        expires: cubby_store::now() + TEMPORARY_LINK_SECS,
        member: (ctx.ns_of(&entry) != ctx.home_ns()).then_some(ctx.auth().account.id),
    };
    let sealed = cubby_core::cursor::seal(ctx.store().cursor_key(), LINK_KIND, &token);
    let link = format!(
        "{}/temp/{sealed}/{}",
        base_url(headers),
        percent_encode(entry.name())
    );
    Ok(TemporaryLink {
        metadata: file_metadata(ctx, &entry)?,
        link,
    })
}

/// The URL this request reached, as the client sees it (behind a balancer: its forwarded
/// scheme and host).
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let get = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    // The HTTPS listener marks its requests (see `lib.rs`); a balancer sets its own.
    let scheme = get("x-forwarded-proto").unwrap_or("http");
    let host = get("x-forwarded-host")
        .or_else(|| get("host"))
        .unwrap_or("localhost");
    format!("{scheme}://{host}")
}

/// `GET /temp/{token}/{name}`: serves a temporary link without auth; 410 once expired.
pub(crate) async fn serve_temporary_link(
    State(state): State<Arc<AppState>>,
    Path((token, _name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(t) =
        cubby_core::cursor::open::<LinkToken>(state.store.cursor_key(), LINK_KIND, &token)
    else {
        return (StatusCode::NOT_FOUND, "no such link").into_response();
    };
    if t.expires <= cubby_store::now() {
        return (StatusCode::GONE, "this link has expired").into_response();
    }
    if let Some(member) = t.member {
        match state.store.folder_access(t.ns, member).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return (StatusCode::GONE, "the file is no longer available").into_response();
            }
            Err(e) => return ApiError::from(e).into_response(),
        }
    }
    let entry = match state.store.revision(t.ns, t.revision).await {
        Ok(Some(e)) => e,
        Ok(None) => return (StatusCode::GONE, "the file is no longer available").into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let content_type = mime_type(name_of(&entry.path_lower));
    match serve_file(&state, &entry, None, content_type, &headers).await {
        Ok(mut r) => {
            crate::web::untrusted_bytes(r.headers_mut());
            r
        }
        Err(e) => e.into_response(),
    }
}

/// A MIME type from a file name's extension, for links opened in browsers.
pub(crate) fn mime_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext {
        "txt" | "md" | "log" => "text/plain; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css",
        "csv" => "text/csv",
        "json" => "application/json",
        "js" => "text/javascript",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "mp3" => "audio/mpeg",
        "flac" => "audio/flac",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "m4a" | "aac" => "audio/mp4",
        "opus" | "oga" => "audio/ogg",
        "mp4" | "m4v" => "video/mp4",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        _ => "application/octet-stream",
    }
}

/// Shortest and longest lifetime of an upload link, in seconds, as in the spec.
const UPLOAD_LINK_SECS: std::ops::RangeInclusive<f64> = 60.0..=14_400.0;

/// The commit an upload link will make, resolved when the link is made.
#[derive(Serialize, Deserialize)]
struct LinkCommit {
    path: String,
    mode: String,
    update_rev: Option<String>,
    autorename: bool,
    strict_conflict: bool,
    client_modified: Option<i64>,
}

/// `files/get_temporary_upload_link`. A path that cannot be written is bad input, as the
/// route's error union has no member for it.
pub(crate) async fn get_temporary_upload_link(
    ctx: &Ctx,
    a: TemporaryUploadLinkArg,
    headers: &HeaderMap,
) -> Answer<ep::GetTemporaryUploadLink> {
    use cubby_store::meta::WriteMode;
    if !UPLOAD_LINK_SECS.contains(&a.duration) {
        return Err(ctx
            .bad_input("request body: duration: must be within 60..14400")
            .into());
    }
    let (ns, commit) = match crate::api::transfer::commit_info(ctx, &a.commit_info).await? {
        Ok(c) => c,
        Err(w) => {
            return Err(ApiError::BadInput(format!(
                "commit_info.path: {}",
                crate::api::to_json(&w)
            ))
            .into());
        }
    };
    let (mode, update_rev) = match commit.mode {
        WriteMode::Add => ("add", None),
        WriteMode::Overwrite => ("overwrite", None),
        WriteMode::Update(rev) => ("update", Some(rev)),
    };
    let stored = LinkCommit {
        path: commit.path,
        mode: mode.into(),
        update_rev,
        autorename: commit.autorename,
        strict_conflict: commit.strict_conflict,
        client_modified: commit.client_modified,
    };
    let json = serde_json::to_string(&stored).map_err(|e| ApiError::Internal(e.to_string()))?;
    let expires = cubby_store::now() + a.duration as i64;
    let id = ctx.store().create_upload_link(ns, &json, expires).await?;
    Ok(Link {
        link: format!("{}/apitul/1/{id}", base_url(headers)),
    })
}

/// `POST /apitul/1/{id}`: a one-time upload with the commit the link was made for.
pub(crate) async fn serve_upload_link(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    use cubby_store::jobs::UploadLink;
    use cubby_store::meta::{Commit, WriteMode};
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !(content_type.starts_with("application/octet-stream")
        || content_type.starts_with("text/plain"))
    {
        return (
            StatusCode::BAD_REQUEST,
            "Content-Type must be application/octet-stream",
        )
            .into_response();
    }
    let (ns, json) = match state.store.consume_upload_link(&id).await {
        Ok(UploadLink::Ready(ns, json)) => (ns, json),
        Ok(UploadLink::Missing) => {
            return (StatusCode::CONFLICT, "no such upload link").into_response();
        }
        Ok(UploadLink::Gone) => {
            return (StatusCode::GONE, "this upload link expired or was used").into_response();
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let Ok(c) = serde_json::from_str::<LinkCommit>(&json) else {
        return (StatusCode::CONFLICT, "the upload link is damaged").into_response();
    };
    let received = match crate::api::transfer::receive(
        &state.store,
        body,
        None,
        None,
        bytes::Bytes::new(),
        false,
    )
    .await
    {
        Ok(r) => r,
        Err(_) => return (StatusCode::CONFLICT, "the upload failed").into_response(),
    };
    let commit = Commit {
        path: c.path,
        mode: match (c.mode.as_str(), c.update_rev) {
            ("overwrite", _) => WriteMode::Overwrite,
            ("update", Some(rev)) => WriteMode::Update(rev),
            _ => WriteMode::Add,
        },
        autorename: c.autorename,
        strict_conflict: c.strict_conflict,
        client_modified: c.client_modified,
        size: received.size,
        blocks: received.blocks,
    };
    match state.store.commit_file(ns, commit).await {
        Ok(e) => {
            state.metrics.add_in(e.size);
            // The upload link's own answer, outside the API's routes: one field, as Dropbox
            // sends it.
            crate::api::json_response(StatusCode::OK, &json!({"content-hash": e.content_hash}))
        }
        Err(_) => (StatusCode::CONFLICT, "the upload failed").into_response(),
    }
}
