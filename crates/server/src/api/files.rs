//! Metadata and namespace routes: get_metadata, the list_folder family, longpoll,
//! create_folder, delete, move and copy.

use std::time::Duration;

use cubby_core::cursor::{self, Cursor, Position};
use cubby_core::path::{Pattern, is_within, lower, name_of};
use cubby_store::{Entry, Kind, OpError};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{
    ApiError, ApiResult, Ctx, Resolved, json_response, lookup_error, metadata_json, unexpected,
    write_error,
};

/// Page size of list_folder when the caller gives no limit.
const DEFAULT_PAGE: u32 = 2_000;

/// Largest `limit` list_folder accepts, as in the spec.
const MAX_PAGE: u32 = 2_000;

type Reply = ApiResult<axum::response::Response>;

fn ok(v: Value) -> Reply {
    Ok(json_response(axum::http::StatusCode::OK, &v))
}

fn route_err(v: Value) -> ApiError {
    ApiError::Route(v)
}

fn lookup_path_err(inner: Value) -> ApiError {
    route_err(json!({".tag": "path", "path": inner}))
}

#[derive(Deserialize)]
struct GetMetadataArg {
    path: String,
    #[serde(default)]
    include_deleted: bool,
}

pub(crate) async fn get_metadata(ctx: &Ctx, arg: Value) -> Reply {
    let a: GetMetadataArg = ctx.arg(arg)?;
    let entry = match ctx.resolve("path", &a.path, Pattern::ReadPath).await? {
        Resolved::Path { lower, .. } => ctx.store().entry(ctx.ns(), &lower).await?,
        Resolved::Revision(e) => Some(*e),
        Resolved::Malformed => return Err(lookup_path_err(json!({".tag": "malformed_path"}))),
        Resolved::NotFound => None,
        Resolved::NotFolder => return Err(lookup_path_err(json!({".tag": "not_folder"}))),
    };
    match entry {
        Some(e) if e.kind != Kind::Deleted || a.include_deleted => ok(ctx.metadata(&e, true)),
        _ => Err(lookup_path_err(json!({".tag": "not_found"}))),
    }
}

#[derive(Deserialize)]
struct ListFolderArg {
    path: String,
    #[serde(default)]
    recursive: bool,
    #[serde(default)]
    include_deleted: bool,
    limit: Option<u32>,
    shared_link: Option<Value>,
}

/// Resolves the folder a listing is about and builds its initial cursor.
async fn listing_cursor(ctx: &Ctx, a: &ListFolderArg, latest: bool) -> ApiResult<Cursor> {
    if let Some(limit) = a.limit
        && !(1..=MAX_PAGE).contains(&limit)
    {
        return Err(ctx.bad_input(&format!(
            "request body: limit: {limit} is not within 1..{MAX_PAGE}"
        )));
    }
    if a.shared_link.is_some() {
        return Err(ctx.bad_input(
            "request body: shared_link: get_latest_cursor does not take a shared link",
        ));
    }
    if a.path == "/" {
        return Err(ctx.bad_input(
            "request body: path: Specify the root folder as an empty string rather than as \"/\".",
        ));
    }
    let folder = match ctx.resolve("path", &a.path, Pattern::PathROrId).await? {
        Resolved::Path { lower, .. } => lower,
        Resolved::Malformed => return Err(lookup_path_err(json!({".tag": "malformed_path"}))),
        Resolved::NotFolder | Resolved::Revision(_) => {
            return Err(lookup_path_err(json!({".tag": "not_folder"})));
        }
        Resolved::NotFound => return Err(lookup_path_err(json!({".tag": "not_found"}))),
    };
    if !folder.is_empty() {
        match ctx.store().entry(ctx.ns(), &folder).await? {
            Some(e) if e.kind == Kind::Folder => {}
            Some(e) if e.kind == Kind::File => {
                return Err(lookup_path_err(json!({".tag": "not_folder"})));
            }
            _ => return Err(lookup_path_err(json!({".tag": "not_found"}))),
        }
    }
    let head = ctx.store().head(ctx.ns()).await?;
    Ok(Cursor {
        ns: ctx.ns(),
        account: ctx.auth().account.id,
        folder,
        base: ctx.root_lower(),
        recursive: a.recursive,
        include_deleted: a.include_deleted,
        limit: a.limit,
        pos: if latest {
            Position::Changes {
                seq: head,
                idx: u32::MAX,
            }
        } else {
            Position::Listing {
                after: String::new(),
                seq: head,
                idx: u32::MAX,
            }
        },
    })
}

pub(crate) async fn list_folder(ctx: &Ctx, arg: Value) -> Reply {
    let a: ListFolderArg = ctx.arg(arg)?;
    if let Some(link) = a.shared_link {
        if let Some(limit) = a.limit
            && !(1..=MAX_PAGE).contains(&limit)
        {
            return Err(ctx.bad_input(&format!(
                "request body: limit: {limit} is not within 1..{MAX_PAGE}"
            )));
        }
        return ok(crate::api::links::list_folder(ctx, link, &a.path, a.recursive, a.limit).await?);
    }
    let cursor = listing_cursor(ctx, &a, false).await?;
    ok(page(ctx, cursor).await?)
}

pub(crate) async fn get_latest_cursor(ctx: &Ctx, arg: Value) -> Reply {
    let a: ListFolderArg = ctx.arg(arg)?;
    let cursor = listing_cursor(ctx, &a, true).await?;
    ok(json!({"cursor": cursor::encode(ctx.store().cursor_key(), &cursor)}))
}

#[derive(Deserialize)]
struct CursorArg {
    cursor: String,
}

pub(crate) async fn list_folder_continue(ctx: &Ctx, arg: Value) -> Reply {
    let a: CursorArg = ctx.arg(arg)?;
    if a.cursor
        .starts_with(&format!("{}.", crate::api::links::LINK_LISTING_KIND))
    {
        return ok(crate::api::links::list_folder_continue(ctx, &a.cursor).await?);
    }
    let reset = || route_err(json!({".tag": "reset"}));
    let c = cursor::decode(ctx.store().cursor_key(), &a.cursor).ok_or_else(reset)?;
    if c.account != ctx.auth().account.id || c.ns != ctx.ns() || c.base != ctx.root_lower() {
        return Err(reset());
    }
    // A listed folder that is gone (deleted, or moved away) ends the feed with not_found,
    // so a sync client learns that everything below it went too.
    if !c.folder.is_empty() {
        let exists =
            matches!(ctx.store().entry(c.ns, &c.folder).await?, Some(e) if e.kind == Kind::Folder);
        if !exists {
            return Err(lookup_path_err(json!({".tag": "not_found"})));
        }
    }
    ok(page(ctx, c).await?)
}

/// Produces one page of a listing or of the change feed, and the cursor after it.
async fn page(ctx: &Ctx, mut c: Cursor) -> ApiResult<Value> {
    let store = ctx.store();
    let n = c.limit.unwrap_or(DEFAULT_PAGE);
    let root = &ctx.auth().root;
    let mut entries = Vec::new();
    let has_more;
    match &c.pos {
        Position::Listing { after, seq, idx } => {
            // A recursive listing of a folder other than the caller's root starts with the folder.
            if after.is_empty()
                && c.recursive
                && c.folder != c.base
                && let Some(e) = store.entry(c.ns, &c.folder).await?
            {
                entries.push(metadata_json(root, &e, true));
            }
            let mut rows = store
                .list(
                    c.ns,
                    &c.folder,
                    c.recursive,
                    c.include_deleted,
                    after,
                    n + 1,
                )
                .await?;
            has_more = rows.len() > n as usize;
            rows.truncate(n as usize);
            let (seq, idx) = (*seq, *idx);
            c.pos = match rows.last() {
                Some(last) if has_more => Position::Listing {
                    after: last.path_lower.clone(),
                    seq,
                    idx,
                },
                _ => Position::Changes { seq, idx },
            };
            entries.extend(rows.iter().map(|e| metadata_json(root, e, true)));
        }
        Position::Changes { seq, idx } => {
            let rows = store.changes(c.ns, *seq, *idx, n).await?;
            has_more = rows.len() == n as usize;
            if let Some(last) = rows.last() {
                c.pos = Position::Changes {
                    seq: last.seq,
                    idx: last.idx,
                };
            }
            // Each changed path is reported once, at its last change, in its current state.
            let relevant: Vec<&str> = rows
                .iter()
                .filter(|r| change_is_relevant(&c, &r.path_lower, &r.parent_lower))
                .map(|r| r.path_lower.as_str())
                .collect();
            let last: std::collections::HashMap<&str, usize> =
                relevant.iter().enumerate().map(|(i, p)| (*p, i)).collect();
            let mut current = store.entries_at(c.ns, &relevant).await?;
            for (i, path) in relevant.iter().enumerate() {
                if last[path] != i {
                    continue;
                }
                entries.push(match current.remove(*path) {
                    Some(e) => metadata_json(root, &e, true),
                    None => deleted_json(root, path),
                });
            }
        }
    }
    Ok(json!({
        "entries": entries,
        "cursor": cursor::encode(store.cursor_key(), &c),
        "has_more": has_more,
    }))
}

fn change_is_relevant(c: &Cursor, path: &str, parent: &str) -> bool {
    if c.recursive {
        is_within(path, &c.folder) && (path != c.folder || c.folder != c.base)
    } else {
        parent == c.folder
    }
}

fn deleted_json(root: &str, path_lower: &str) -> Value {
    metadata_json(root, &Entry::deleted(path_lower, path_lower), true)
}

#[derive(Deserialize)]
struct LongpollArg {
    cursor: String,
    #[serde(default = "default_longpoll_timeout")]
    timeout: u64,
}

fn default_longpoll_timeout() -> u64 {
    30
}

/// Seconds a client should wait before polling again after the server asked it to go away.
const SHUTDOWN_BACKOFF_SECS: u64 = 10;

pub(crate) async fn longpoll(ctx: &Ctx, arg: Value) -> Reply {
    let a: LongpollArg = ctx.arg(arg)?;
    if !(30..=480).contains(&a.timeout) {
        return Err(ctx.bad_input(&format!(
            "request body: timeout: {} is not within 30..480",
            a.timeout
        )));
    }
    let store = ctx.store();
    let c = cursor::decode(store.cursor_key(), &a.cursor)
        .ok_or_else(|| route_err(json!({".tag": "reset"})))?;
    let (seq, idx) = match c.pos {
        Position::Listing { .. } => return ok(json!({"changes": true})),
        Position::Changes { seq, idx } => (seq, idx),
    };
    // Subscribe before looking, so a commit between the look and the wait still wakes us.
    let mut rx = store.notifier.subscribe(c.ns);
    let mut shutdown = ctx.state.shutting_down.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(a.timeout);
    let (mut seq, mut idx) = (seq, idx);
    loop {
        // Look through what was committed since the cursor, a bounded batch at a time.
        loop {
            let rows = store.changes(c.ns, seq, idx, 1_000).await?;
            if rows
                .iter()
                .any(|r| change_is_relevant(&c, &r.path_lower, &r.parent_lower))
            {
                return ok(json!({"changes": true}));
            }
            match rows.last() {
                Some(last) if rows.len() == 1_000 => (seq, idx) = (last.seq, last.idx),
                Some(last) => {
                    (seq, idx) = (last.seq, last.idx);
                    break;
                }
                None => break,
            }
        }
        if *shutdown.borrow() {
            return ok(json!({"changes": false, "backoff": SHUTDOWN_BACKOFF_SECS}));
        }
        tokio::select! {
            r = rx.changed() => { if r.is_err() { rx = store.notifier.subscribe(c.ns); } }
            _ = shutdown.changed() => {}
            _ = tokio::time::sleep_until(deadline) => return ok(json!({"changes": false})),
        }
    }
}

/// The outcome of one create, delete or relocation: the entry, or the route's error union.
pub(crate) type Outcome = Result<Entry, Value>;

/// Creates one folder; the error is a `WriteError`.
pub(crate) async fn create_folder_one(
    ctx: &Ctx,
    path: &str,
    autorename: bool,
) -> ApiResult<Outcome> {
    let display = match ctx.resolve("path", path, Pattern::WritePath).await? {
        Resolved::Path { display, lower } if lower != ctx.root_lower() => display,
        Resolved::Path { .. } => {
            return Ok(Err(
                json!({".tag": "conflict", "conflict": {".tag": "folder"}}),
            ));
        }
        Resolved::NotFound => return Ok(Err(json!({".tag": "no_write_permission"}))),
        _ => return Ok(Err(json!({".tag": "malformed_path"}))),
    };
    match ctx
        .store()
        .create_folder(ctx.ns(), &display, autorename)
        .await
    {
        Ok(e) => Ok(Ok(e)),
        Err(e) => match write_error(&e) {
            Some(w) => Ok(Err(w)),
            None => Err(unexpected(e)),
        },
    }
}

#[derive(Deserialize)]
struct CreateFolderArg {
    path: String,
    #[serde(default)]
    autorename: bool,
}

pub(crate) async fn create_folder(ctx: &Ctx, arg: Value, v2: bool) -> Reply {
    let a: CreateFolderArg = ctx.arg(arg)?;
    match create_folder_one(ctx, &a.path, a.autorename).await? {
        Ok(e) => {
            let md = ctx.metadata(&e, false);
            ok(if v2 { json!({"metadata": md}) } else { md })
        }
        Err(w) => Err(route_err(json!({".tag": "path", "path": w}))),
    }
}

#[derive(Deserialize)]
pub(crate) struct DeleteArg {
    path: String,
    parent_rev: Option<String>,
}

/// Deletes one item; the error is a `DeleteError`.
pub(crate) async fn delete_one(ctx: &Ctx, a: &DeleteArg) -> ApiResult<Outcome> {
    if let Some(rev) = &a.parent_rev
        && !cubby_core::ids::is_rev(rev)
    {
        return Err(ctx.bad_input(&format!(
            "request body: parent_rev: '{rev}' did not match pattern"
        )));
    }
    let lookup_err = |l: Value| Ok(Err(json!({".tag": "path_lookup", "path_lookup": l})));
    let target = match ctx.resolve("path", &a.path, Pattern::WritePathOrId).await? {
        Resolved::Path { lower, .. } if lower != ctx.root_lower() => lower,
        Resolved::Path { .. } | Resolved::Malformed => {
            return lookup_err(json!({".tag": "malformed_path"}));
        }
        Resolved::NotFolder => return lookup_err(json!({".tag": "not_folder"})),
        _ => return lookup_err(json!({".tag": "not_found"})),
    };
    match ctx
        .store()
        .delete(ctx.ns(), &target, a.parent_rev.as_deref())
        .await
    {
        Ok(e) => Ok(Ok(e)),
        Err(e) => {
            if let Some(l) = lookup_error(&e) {
                lookup_err(l)
            } else if let Some(w) = write_error(&e) {
                Ok(Err(json!({".tag": "path_write", "path_write": w})))
            } else {
                Err(unexpected(e))
            }
        }
    }
}

pub(crate) async fn delete(ctx: &Ctx, arg: Value, v2: bool) -> Reply {
    let a: DeleteArg = ctx.arg(arg)?;
    match delete_one(ctx, &a).await? {
        Ok(e) => {
            let md = ctx.metadata(&e, true);
            ok(if v2 { json!({"metadata": md}) } else { md })
        }
        Err(err) => Err(route_err(err)),
    }
}

#[derive(Deserialize)]
pub(crate) struct RelocationPath {
    from_path: String,
    to_path: String,
}

#[derive(Deserialize)]
struct RelocationArg {
    #[serde(flatten)]
    paths: RelocationPath,
    #[serde(default)]
    autorename: bool,
}

/// Moves or copies one item; the error is a `RelocationError`.
pub(crate) async fn relocate_one(
    ctx: &Ctx,
    p: &RelocationPath,
    copy: bool,
    autorename: bool,
) -> ApiResult<Outcome> {
    let from_err = |l: Value| Ok(Err(json!({".tag": "from_lookup", "from_lookup": l})));
    let to_err = |w: Value| Ok(Err(json!({".tag": "to", "to": w})));
    let from = ctx
        .resolve("from_path", &p.from_path, Pattern::WritePathOrId)
        .await?;
    let to = ctx
        .resolve("to_path", &p.to_path, Pattern::WritePathOrId)
        .await?;
    let from = match from {
        Resolved::Path { lower, .. } if lower != ctx.root_lower() => lower,
        Resolved::Path { .. } | Resolved::Malformed => {
            return from_err(json!({".tag": "malformed_path"}));
        }
        Resolved::NotFolder => return from_err(json!({".tag": "not_folder"})),
        _ => return from_err(json!({".tag": "not_found"})),
    };
    let to = match to {
        Resolved::Path { display, lower } if lower != ctx.root_lower() => display,
        Resolved::NotFound => return to_err(json!({".tag": "no_write_permission"})),
        _ => return to_err(json!({".tag": "malformed_path"})),
    };
    if name_of(&to).is_empty() || lower(&to).is_empty() {
        return to_err(json!({".tag": "malformed_path"}));
    }
    match ctx
        .store()
        .relocate(ctx.ns(), &from, &to, copy, autorename)
        .await
    {
        Ok(e) => Ok(Ok(e)),
        Err(OpError::Source(inner)) => {
            from_err(lookup_error(&inner).unwrap_or_else(|| json!({".tag": "not_found"})))
        }
        Err(OpError::CantMoveIntoItself) => {
            Ok(Err(json!({".tag": "cant_move_folder_into_itself"})))
        }
        Err(OpError::TooManyFiles) => Ok(Err(json!({".tag": "too_many_files"}))),
        Err(OpError::InsufficientSpace) => Ok(Err(json!({".tag": "insufficient_space"}))),
        Err(e) => match write_error(&e) {
            Some(w) => to_err(w),
            None => Err(unexpected(e)),
        },
    }
}

pub(crate) async fn relocate(ctx: &Ctx, arg: Value, copy: bool, v2: bool) -> Reply {
    let a: RelocationArg = ctx.arg(arg)?;
    match relocate_one(ctx, &a.paths, copy, a.autorename).await? {
        Ok(e) => {
            let md = ctx.metadata(&e, true);
            ok(if v2 { json!({"metadata": md}) } else { md })
        }
        Err(err) => Err(route_err(err)),
    }
}
