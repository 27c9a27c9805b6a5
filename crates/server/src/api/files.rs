//! Metadata and namespace routes: get_metadata, the list_folder family, longpoll,
//! create_folder, delete, move and copy.

use std::time::Duration;

use cubby_core::api::endpoint as ep;
use cubby_core::api::errors::{
    CreateFolderError, DeleteError, ListFolderContinueError, LongpollError, LookupError,
    PathLookupError, RelocationError, WriteConflictError, WriteError,
};
use cubby_core::api::types::{
    CreateFolderArg, CursorArg, CursorResult, DeleteArg, FolderMetadata, GetMetadataArg,
    ListFolderArg, ListFolderResult, LongpollArg, LongpollResult, Metadata, RelocationArg,
    RelocationPath,
};
use cubby_core::cursor::{self, Cursor, Position};
use cubby_core::path::{Pattern, is_within, lower, name_of};
use cubby_store::{Entry, Kind, OpError};

use crate::api::{
    Answer, ApiResult, Ctx, Fail, Resolved, lookup_error, metadata, unexpected, write_error,
};

/// Page size of list_folder when the caller gives no limit.
const DEFAULT_PAGE: u32 = 2_000;

/// Largest `limit` list_folder accepts, as in the spec.
const MAX_PAGE: u32 = 2_000;

/// A `path: LookupError` failure (`GetMetadataError`, `ListFolderError`).
fn path_err<T>(e: LookupError) -> Result<T, Fail<PathLookupError>> {
    Err(Fail::Route(PathLookupError::Path { path: e }))
}

pub(crate) async fn get_metadata(ctx: &Ctx, a: GetMetadataArg) -> Answer<ep::GetMetadata> {
    let entry = match ctx.resolve("path", &a.path, Pattern::ReadPath).await? {
        Resolved::Path { lower, .. } => ctx.store().entry(ctx.ns(), &lower).await?,
        Resolved::Revision(e) => Some(*e),
        Resolved::Malformed => return path_err(LookupError::MalformedPath),
        Resolved::NotFound => None,
        Resolved::NotFolder => return path_err(LookupError::NotFolder),
    };
    match entry {
        Some(e) if e.kind != Kind::Deleted || a.include_deleted => {
            let mut md = ctx.metadata(&e);
            // Read from the image's header on first request (and kept), never at upload.
            if a.include_media_info
                && let Metadata::File(f) = &mut md
            {
                let thumbs = &ctx.state.thumbs;
                f.media_info = thumbs
                    .media_info(ctx.store(), &e, e.name())
                    .await
                    .map(|m| Box::new(crate::api::thumbnails::media_info(m)));
            }
            Ok(md)
        }
        _ => path_err(LookupError::NotFound),
    }
}

/// Resolves the folder a listing is about and builds its initial cursor.
async fn listing_cursor(
    ctx: &Ctx,
    a: &ListFolderArg,
    latest: bool,
) -> Result<Cursor, Fail<PathLookupError>> {
    if let Some(limit) = a.limit
        && !(1..=MAX_PAGE).contains(&limit)
    {
        return Err(ctx
            .bad_input(&format!(
                "request body: limit: {limit} is not within 1..{MAX_PAGE}"
            ))
            .into());
    }
    if a.shared_link.is_some() {
        return Err(ctx
            .bad_input("request body: shared_link: get_latest_cursor does not take a shared link")
            .into());
    }
    if a.path == "/" {
        return Err(ctx
            .bad_input(
                "request body: path: Specify the root folder as an empty string rather than as \"/\".",
            )
            .into());
    }
    let folder = match ctx.resolve("path", &a.path, Pattern::PathROrId).await? {
        Resolved::Path { lower, .. } => lower,
        Resolved::Malformed => return path_err(LookupError::MalformedPath),
        Resolved::NotFolder | Resolved::Revision(_) => return path_err(LookupError::NotFolder),
        Resolved::NotFound => return path_err(LookupError::NotFound),
    };
    if !folder.is_empty() {
        match ctx.store().entry(ctx.ns(), &folder).await? {
            Some(e) if e.kind == Kind::Folder => {}
            Some(e) if e.kind == Kind::File => return path_err(LookupError::NotFolder),
            _ => return path_err(LookupError::NotFound),
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

pub(crate) async fn list_folder(ctx: &Ctx, a: ListFolderArg) -> Answer<ep::ListFolder> {
    if let Some(link) = &a.shared_link {
        if let Some(limit) = a.limit
            && !(1..=MAX_PAGE).contains(&limit)
        {
            return Err(ctx
                .bad_input(&format!(
                    "request body: limit: {limit} is not within 1..{MAX_PAGE}"
                ))
                .into());
        }
        return crate::api::links::list_folder(ctx, link, &a.path, a.recursive, a.limit).await;
    }
    let cursor = listing_cursor(ctx, &a, false).await?;
    Ok(page(ctx, cursor).await?)
}

pub(crate) async fn get_latest_cursor(ctx: &Ctx, a: ListFolderArg) -> Answer<ep::GetLatestCursor> {
    let cursor = listing_cursor(ctx, &a, true).await?;
    Ok(CursorResult {
        cursor: cursor::encode(ctx.store().cursor_key(), &cursor),
    })
}

/// A list_folder cursor, its paths keyed with today's `lower`: a cursor saved before path
/// keys were NFC (migration 16) then follows the re-keyed rows.
fn decode_cursor(key: &[u8], s: &str) -> Option<cursor::Cursor> {
    let mut c = cursor::decode(key, s)?;
    let rekey = |p: &mut String| *p = cubby_core::path::lower(p);
    rekey(&mut c.folder);
    rekey(&mut c.base);
    if let Position::Listing { after, .. } = &mut c.pos {
        rekey(after);
    }
    Some(c)
}

pub(crate) async fn list_folder_continue(
    ctx: &Ctx,
    a: CursorArg,
) -> Answer<ep::ListFolderContinue> {
    if a.cursor
        .starts_with(&format!("{}.", crate::api::links::LINK_LISTING_KIND))
    {
        return crate::api::links::list_folder_continue(ctx, &a.cursor).await;
    }
    let reset = || Fail::Route(ListFolderContinueError::Reset);
    let c = decode_cursor(ctx.store().cursor_key(), &a.cursor).ok_or_else(reset)?;
    if c.account != ctx.auth().account.id || c.ns != ctx.ns() || c.base != ctx.root_lower() {
        return Err(reset());
    }
    // A listed folder that is gone (deleted, or moved away) ends the feed with not_found,
    // so a sync client learns that everything below it went too.
    if !c.folder.is_empty() {
        let exists =
            matches!(ctx.store().entry(c.ns, &c.folder).await?, Some(e) if e.kind == Kind::Folder);
        if !exists {
            return Err(Fail::Route(ListFolderContinueError::Path {
                path: LookupError::NotFound,
            }));
        }
    }
    Ok(page(ctx, c).await?)
}

/// Produces one page of a listing or of the change feed, and the cursor after it.
async fn page(ctx: &Ctx, mut c: Cursor) -> ApiResult<ListFolderResult> {
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
                entries.push(metadata(root, &e));
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
            entries.extend(rows.iter().map(|e| metadata(root, e)));
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
                    Some(e) => metadata(root, &e),
                    None => metadata(root, &Entry::deleted(path, path)),
                });
            }
        }
    }
    Ok(ListFolderResult {
        entries,
        cursor: cursor::encode(store.cursor_key(), &c),
        has_more,
    })
}

fn change_is_relevant(c: &Cursor, path: &str, parent: &str) -> bool {
    if c.recursive {
        is_within(path, &c.folder) && (path != c.folder || c.folder != c.base)
    } else {
        parent == c.folder
    }
}

/// Seconds a client should wait before polling again after the server asked it to go away.
const SHUTDOWN_BACKOFF_SECS: u64 = 10;

pub(crate) async fn longpoll(ctx: &Ctx, a: LongpollArg) -> Answer<ep::Longpoll> {
    if !(30..=480).contains(&a.timeout) {
        return Err(ctx
            .bad_input(&format!(
                "request body: timeout: {} is not within 30..480",
                a.timeout
            ))
            .into());
    }
    let store = ctx.store();
    let c =
        decode_cursor(store.cursor_key(), &a.cursor).ok_or(Fail::Route(LongpollError::Reset))?;
    let changes = |changes: bool, backoff: Option<u64>| Ok(LongpollResult { changes, backoff });
    let (seq, idx) = match c.pos {
        Position::Listing { .. } => return changes(true, None),
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
                return changes(true, None);
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
            return changes(false, Some(SHUTDOWN_BACKOFF_SECS));
        }
        tokio::select! {
            r = rx.changed() => { if r.is_err() { rx = store.notifier.subscribe(c.ns); } }
            _ = shutdown.changed() => {}
            _ = tokio::time::sleep_until(deadline) => return changes(false, None),
        }
    }
}

/// The outcome of one create, delete or relocation: the entry, or the route's error union
/// (the batch routes put it in their entries).
pub(crate) type Outcome<E> = ApiResult<Result<Entry, E>>;

/// Creates one folder; the error is a `WriteError`.
pub(crate) async fn create_folder_one(
    ctx: &Ctx,
    path: &str,
    autorename: bool,
) -> Outcome<WriteError> {
    let display = match ctx.resolve("path", path, Pattern::WritePath).await? {
        Resolved::Path { display, lower } if lower != ctx.root_lower() => display,
        Resolved::Path { .. } => {
            return Ok(Err(WriteError::Conflict {
                conflict: WriteConflictError::Folder,
            }));
        }
        Resolved::NotFound => return Ok(Err(WriteError::NoWritePermission)),
        _ => return Ok(Err(WriteError::MalformedPath)),
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

/// The `FolderMetadata` of a folder's entry.
pub(crate) fn folder_metadata(ctx: &Ctx, e: &Entry) -> ApiResult<FolderMetadata> {
    match ctx.metadata(e) {
        Metadata::Folder(f) => Ok(f),
        other => Err(crate::api::ApiError::Internal(format!(
            "expected a folder, found {other:?}"
        ))),
    }
}

/// `files/create_folder` (and, wrapped, `create_folder_v2`).
pub(crate) async fn create_folder(ctx: &Ctx, a: CreateFolderArg) -> Answer<ep::CreateFolder> {
    match create_folder_one(ctx, &a.path, a.autorename).await? {
        Ok(e) => Ok(folder_metadata(ctx, &e)?),
        Err(w) => Err(Fail::Route(CreateFolderError::Path { path: w })),
    }
}

/// Deletes one item; the error is a `DeleteError`.
pub(crate) async fn delete_one(ctx: &Ctx, a: &DeleteArg) -> Outcome<DeleteError> {
    if let Some(rev) = &a.parent_rev
        && !cubby_core::ids::is_rev(rev)
    {
        return Err(ctx.bad_input(&format!(
            "request body: parent_rev: '{rev}' did not match pattern"
        )));
    }
    let lookup_err = |l: LookupError| Ok(Err(DeleteError::PathLookup { path_lookup: l }));
    let target = match ctx.resolve("path", &a.path, Pattern::WritePathOrId).await? {
        Resolved::Path { lower, .. } if lower != ctx.root_lower() => lower,
        Resolved::Path { .. } | Resolved::Malformed => {
            return lookup_err(LookupError::MalformedPath);
        }
        Resolved::NotFolder => return lookup_err(LookupError::NotFolder),
        _ => return lookup_err(LookupError::NotFound),
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
                Ok(Err(DeleteError::PathWrite { path_write: w }))
            } else {
                Err(unexpected(e))
            }
        }
    }
}

/// `files/delete` (and, wrapped, `delete_v2`).
pub(crate) async fn delete(ctx: &Ctx, a: DeleteArg) -> Answer<ep::Delete> {
    match delete_one(ctx, &a).await? {
        Ok(e) => Ok(ctx.metadata(&e)),
        Err(err) => Err(Fail::Route(err)),
    }
}

/// Moves or copies one item; the error is a `RelocationError`.
pub(crate) async fn relocate_one(
    ctx: &Ctx,
    p: &RelocationPath,
    copy: bool,
    autorename: bool,
) -> Outcome<RelocationError> {
    let from_err = |l: LookupError| Ok(Err(RelocationError::FromLookup { from_lookup: l }));
    let to_err = |w: WriteError| Ok(Err(RelocationError::To { to: w }));
    let from = ctx
        .resolve("from_path", &p.from_path, Pattern::WritePathOrId)
        .await?;
    let to = ctx
        .resolve("to_path", &p.to_path, Pattern::WritePathOrId)
        .await?;
    let from = match from {
        Resolved::Path { lower, .. } if lower != ctx.root_lower() => lower,
        Resolved::Path { .. } | Resolved::Malformed => {
            return from_err(LookupError::MalformedPath);
        }
        Resolved::NotFolder => return from_err(LookupError::NotFolder),
        _ => return from_err(LookupError::NotFound),
    };
    let to = match to {
        Resolved::Path { display, lower } if lower != ctx.root_lower() => display,
        Resolved::NotFound => return to_err(WriteError::NoWritePermission),
        _ => return to_err(WriteError::MalformedPath),
    };
    if name_of(&to).is_empty() || lower(&to).is_empty() {
        return to_err(WriteError::MalformedPath);
    }
    match ctx
        .store()
        .relocate(ctx.ns(), &from, &to, copy, autorename)
        .await
    {
        Ok(e) => Ok(Ok(e)),
        Err(OpError::Source(inner)) => {
            from_err(lookup_error(&inner).unwrap_or(LookupError::NotFound))
        }
        Err(OpError::CantMoveIntoItself) => Ok(Err(RelocationError::CantMoveFolderIntoItself)),
        Err(OpError::TooManyFiles) => Ok(Err(RelocationError::TooManyFiles)),
        // `RelocationError` names a full account `insufficient_quota`.
        Err(OpError::InsufficientSpace) => Ok(Err(RelocationError::InsufficientQuota)),
        Err(e) => match write_error(&e) {
            Some(w) => to_err(w),
            None => Err(unexpected(e)),
        },
    }
}

/// `files/move` and `files/copy` (and, wrapped, their `_v2` forms).
pub(crate) async fn relocate(ctx: &Ctx, a: RelocationArg, copy: bool) -> Answer<ep::Move> {
    match relocate_one(ctx, &a.paths, copy, a.autorename).await? {
        Ok(e) => Ok(ctx.metadata(&e)),
        Err(err) => Err(Fail::Route(err)),
    }
}
