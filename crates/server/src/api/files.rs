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
use cubby_core::cursor::{self, Cursor, MountPos, Position};
use cubby_core::path::{Pattern, is_within, lower, name_of};
use cubby_store::{Entry, Kind, OpError};

use crate::api::{Answer, ApiResult, Ctx, Fail, Resolved, lookup_error, unexpected, write_error};

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
        Resolved::Path { ns, lower, .. } => ctx.store().entry(ns, &lower).await?,
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
    let (ns, folder) = match ctx.resolve("path", &a.path, Pattern::PathROrId).await? {
        // A recursive listing of a mount point starts with it, then follows the mount; a
        // listing of its children lists the shared folder's.
        Resolved::Path { ns, lower, .. } if !a.recursive => ctx.inside(ns, lower),
        Resolved::Path { ns, lower, .. } => (ns, lower),
        Resolved::Malformed => return path_err(LookupError::MalformedPath),
        Resolved::NotFolder | Resolved::Revision(_) => return path_err(LookupError::NotFolder),
        Resolved::NotFound => return path_err(LookupError::NotFound),
    };
    if !folder.is_empty() {
        match ctx.store().entry(ns, &folder).await? {
            Some(e) if e.kind == Kind::Folder => {}
            Some(e) if e.kind == Kind::File => return path_err(LookupError::NotFolder),
            _ => return path_err(LookupError::NotFound),
        }
    }
    let head = ctx.store().head(ns).await?;
    // A listing under a shared folder as the path root follows the folder, not a mount.
    let at = match ctx.path_root {
        Some(pr) if pr.ns == ns => None,
        _ => ctx.mount_of(ns).map(|m| m.lower.clone()),
    };
    let pos = |head: u64| {
        if latest {
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
        }
    };
    let mut mounts = Vec::new();
    if a.recursive && ns == ctx.home_ns() {
        for m in ctx.mounts().await? {
            if is_within(&m.lower, &folder) {
                mounts.push(MountPos {
                    ns: m.ns,
                    at: m.lower.clone(),
                    pos: pos(ctx.store().head(m.ns).await?),
                });
            }
        }
    }
    Ok(Cursor {
        ns,
        account: ctx.auth().account.id,
        folder,
        base: ctx.root_lower(),
        recursive: a.recursive,
        include_deleted: a.include_deleted,
        limit: a.limit,
        pos: pos(head),
        at,
        mounts,
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
    for m in &mut c.mounts {
        if let Position::Listing { after, .. } = &mut m.pos {
            rekey(after);
        }
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
    if !cursor_is_valid(ctx, &c).await? {
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

/// Whether a cursor is the caller's and still reaches what it lists: a cursor inside a
/// shared folder needs the folder still mounted where it was (a member removed, or a mount
/// moved, starts over).
async fn cursor_is_valid(ctx: &Ctx, c: &Cursor) -> ApiResult<bool> {
    if c.account != ctx.auth().account.id || c.base != ctx.root_lower() {
        return Ok(false);
    }
    if c.ns == ctx.home_ns() {
        return Ok(c.at.is_none());
    }
    let Some(at) = &c.at else {
        // Made under the folder as the path root: valid while the caller is a member.
        let member = ctx
            .store()
            .folder_access(c.ns, ctx.auth().account.id)
            .await?;
        return Ok(member.is_some());
    };
    let mounts = ctx.mounts().await?;
    Ok(mounts.iter().any(|m| m.ns == c.ns && &m.lower == at))
}

/// The shared folders mounted within a recursive home listing, as the cursor follows them:
/// those it knew keep their positions, new ones (or ones moved since) are listed from the
/// start, unmounted ones are dropped (the home's feed reports their mount points deleted).
async fn follow_mounts(ctx: &Ctx, c: &mut Cursor) -> ApiResult<()> {
    if !c.recursive || c.ns != ctx.home_ns() {
        return Ok(());
    }
    let mut next = Vec::new();
    for m in ctx.mounts().await? {
        if !is_within(&m.lower, &c.folder) {
            continue;
        }
        match c.mounts.iter().find(|p| p.ns == m.ns && p.at == m.lower) {
            Some(known) => next.push(known.clone()),
            None => next.push(MountPos {
                ns: m.ns,
                at: m.lower.clone(),
                pos: Position::Listing {
                    after: String::new(),
                    seq: ctx.store().head(m.ns).await?,
                    idx: u32::MAX,
                },
            }),
        }
    }
    c.mounts = next;
    Ok(())
}

/// One namespace's part of a page: the cursor's own, or a shared folder mounted below it.
struct Stream<'a> {
    ns: u64,
    /// The listed folder in this namespace (`""`: all of it).
    folder: &'a str,
    pos: &'a mut Position,
    /// Whether the stream is the cursor's own listing of the caller's root, or a whole
    /// mounted folder (its top is not reported).
    whole: bool,
}

/// Produces one page of a listing or of the change feed, and the cursor after it.
async fn page(ctx: &Ctx, mut c: Cursor) -> ApiResult<ListFolderResult> {
    let n = c.limit.unwrap_or(DEFAULT_PAGE) as usize;
    let mut entries = Vec::new();
    follow_mounts(ctx, &mut c).await?;
    let mounts: Vec<String> = c.mounts.iter().map(|m| m.at.clone()).collect();
    let home = ctx.home_ns();
    let own_root = if c.ns == home {
        c.folder == c.base
    } else {
        c.folder.is_empty()
    };
    let (recursive, include_deleted) = (c.recursive, c.include_deleted);
    let mut has_more = read_stream(
        ctx,
        Stream {
            ns: c.ns,
            folder: &c.folder,
            pos: &mut c.pos,
            whole: own_root,
        },
        recursive,
        include_deleted,
        if c.ns == home { &mounts } else { &[] },
        n,
        &mut entries,
    )
    .await?;
    for m in &mut c.mounts {
        if has_more || entries.len() >= n {
            has_more = true;
            break;
        }
        let room = n - entries.len();
        has_more = read_stream(
            ctx,
            Stream {
                ns: m.ns,
                folder: "",
                pos: &mut m.pos,
                whole: true,
            },
            true,
            include_deleted,
            &[],
            room,
            &mut entries,
        )
        .await?;
    }
    Ok(ListFolderResult {
        entries,
        cursor: cursor::encode(ctx.store().cursor_key(), &c),
        has_more,
    })
}

/// Reads up to `n` entries of one stream into `out`, moving its position on; returns
/// whether it has more. Paths strictly below a mount point in `mounts` are not the home's
/// (rows there predate the sharing), so they are skipped.
async fn read_stream(
    ctx: &Ctx,
    s: Stream<'_>,
    recursive: bool,
    include_deleted: bool,
    mounts: &[String],
    n: usize,
    out: &mut Vec<Metadata>,
) -> ApiResult<bool> {
    let store = ctx.store();
    let under_mount = |p: &str| {
        mounts
            .iter()
            .any(|m| cubby_store::folders::below_mount(p, m))
    };
    match s.pos.clone() {
        Position::Listing { after, seq, idx } => {
            // A recursive listing of a folder other than the caller's root starts with the folder.
            if after.is_empty()
                && recursive
                && !s.whole
                && let Some(e) = store.entry(s.ns, s.folder).await?
            {
                out.push(ctx.metadata(&e));
            }
            let mut rows = store
                .list(
                    s.ns,
                    s.folder,
                    recursive,
                    include_deleted,
                    &after,
                    n as u32 + 1,
                )
                .await?;
            let has_more = rows.len() > n;
            rows.truncate(n);
            *s.pos = match rows.last() {
                Some(last) if has_more => Position::Listing {
                    after: last.path_lower.clone(),
                    seq,
                    idx,
                },
                _ => Position::Changes { seq, idx },
            };
            out.extend(
                rows.iter()
                    .filter(|e| !under_mount(&e.path_lower))
                    .map(|e| ctx.metadata(e)),
            );
            Ok(has_more)
        }
        Position::Changes { seq, idx } => {
            let rows = store.changes(s.ns, seq, idx, n as u32).await?;
            let has_more = rows.len() == n;
            if let Some(last) = rows.last() {
                *s.pos = Position::Changes {
                    seq: last.seq,
                    idx: last.idx,
                };
            }
            // Each changed path is reported once, at its last change, in its current state.
            let relevant: Vec<&str> = rows
                .iter()
                .filter(|r| {
                    change_is_relevant(s.folder, s.whole, recursive, &r.path_lower, &r.parent_lower)
                        && !under_mount(&r.path_lower)
                })
                .map(|r| r.path_lower.as_str())
                .collect();
            let last: std::collections::HashMap<&str, usize> =
                relevant.iter().enumerate().map(|(i, p)| (*p, i)).collect();
            let mut current = store.entries_at(s.ns, &relevant).await?;
            for (i, path) in relevant.iter().enumerate() {
                if last[path] != i {
                    continue;
                }
                out.push(match current.remove(*path) {
                    Some(e) => ctx.metadata(&e),
                    None => ctx.metadata(&Entry {
                        ns: s.ns,
                        ..Entry::deleted(path, path)
                    }),
                });
            }
            Ok(has_more)
        }
    }
}

/// Whether a journal row of `path` (child of `parent`) concerns a listing of `folder`
/// (`whole`: the listing's own top is never reported).
fn change_is_relevant(
    folder: &str,
    whole: bool,
    recursive: bool,
    path: &str,
    parent: &str,
) -> bool {
    if recursive {
        is_within(path, folder) && (path != folder || !whole)
    } else {
        parent == folder
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
    // The cursor's own namespace, then each shared folder mounted below it (whole).
    let mounts: Vec<String> = c.mounts.iter().map(|m| m.at.clone()).collect();
    let own_whole = if c.at.is_some() {
        c.folder.is_empty()
    } else {
        c.folder == c.base
    };
    let mut watched = vec![(
        c.ns,
        c.pos.clone(),
        c.folder.as_str(),
        own_whole,
        c.recursive,
    )];
    watched.extend(
        c.mounts
            .iter()
            .map(|m| (m.ns, m.pos.clone(), "", true, true)),
    );
    let mut at = Vec::with_capacity(watched.len());
    for (_, pos, ..) in &watched {
        match pos {
            Position::Listing { .. } => return changes(true, None),
            Position::Changes { seq, idx } => at.push((*seq, *idx)),
        }
    }
    // Subscribe before looking, so a commit between the look and the wait still wakes us.
    let mut rxs: Vec<_> = watched
        .iter()
        .map(|(ns, ..)| store.notifier.subscribe(*ns))
        .collect();
    let mut shutdown = ctx.state.shutting_down.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(a.timeout);
    loop {
        for (k, (ns, _, folder, whole, recursive)) in watched.iter().enumerate() {
            let skip: &[String] = if k == 0 { &mounts } else { &[] };
            // Look through what was committed since the cursor, a bounded batch at a time.
            loop {
                let (seq, idx) = at[k];
                let rows = store.changes(*ns, seq, idx, 1_000).await?;
                if rows.iter().any(|r| {
                    change_is_relevant(folder, *whole, *recursive, &r.path_lower, &r.parent_lower)
                        && !skip
                            .iter()
                            .any(|m| cubby_store::folders::below_mount(&r.path_lower, m))
                }) {
                    return changes(true, None);
                }
                match rows.last() {
                    Some(last) => at[k] = (last.seq, last.idx),
                    None => break,
                }
                if rows.len() < 1_000 {
                    break;
                }
            }
        }
        if *shutdown.borrow() {
            return changes(false, Some(SHUTDOWN_BACKOFF_SECS));
        }
        let lost = {
            let woken =
                futures_util::future::select_all(rxs.iter_mut().map(|rx| Box::pin(rx.changed())));
            tokio::select! {
                (r, k, _) = woken => r.is_err().then_some(k),
                _ = shutdown.changed() => None,
                _ = tokio::time::sleep_until(deadline) => return changes(false, None),
            }
        };
        if let Some(k) = lost {
            rxs[k] = store.notifier.subscribe(watched[k].0);
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
    let (ns, display) = match ctx.resolve("path", path, Pattern::WritePath).await? {
        Resolved::Path { ns, lower, .. } if ctx.is_top(ns, &lower) => {
            return Ok(Err(WriteError::Conflict {
                conflict: WriteConflictError::Folder,
            }));
        }
        Resolved::Path {
            read_only: true, ..
        }
        | Resolved::NotFound => {
            return Ok(Err(WriteError::NoWritePermission));
        }
        Resolved::Path { ns, display, .. } => (ns, display),
        _ => return Ok(Err(WriteError::MalformedPath)),
    };
    match ctx.store().create_folder(ns, &display, autorename).await {
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
    let (ns, target) = match ctx.resolve("path", &a.path, Pattern::WritePathOrId).await? {
        Resolved::Path { ns, lower, .. } if ctx.is_top(ns, &lower) => {
            return lookup_err(LookupError::MalformedPath);
        }
        Resolved::Path {
            read_only: true, ..
        } => {
            return Ok(Err(DeleteError::PathWrite {
                path_write: WriteError::NoWritePermission,
            }));
        }
        Resolved::Path { ns, lower, .. } => (ns, lower),
        Resolved::Malformed => return lookup_err(LookupError::MalformedPath),
        Resolved::NotFolder => return lookup_err(LookupError::NotFolder),
        _ => return lookup_err(LookupError::NotFound),
    };
    match ctx
        .store()
        .delete(ns, &target, a.parent_rev.as_deref())
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
    let (from_ns, from, from_read_only) = match from {
        Resolved::Path { ns, lower, .. } if ctx.is_top(ns, &lower) => {
            return from_err(LookupError::MalformedPath);
        }
        Resolved::Path {
            ns,
            lower,
            read_only,
            ..
        } => (ns, lower, read_only),
        Resolved::Malformed => return from_err(LookupError::MalformedPath),
        Resolved::NotFolder => return from_err(LookupError::NotFolder),
        _ => return from_err(LookupError::NotFound),
    };
    let (to_ns, to) = match to {
        Resolved::Path { ns, lower, .. } if ctx.is_top(ns, &lower) => {
            return to_err(WriteError::MalformedPath);
        }
        Resolved::Path {
            read_only: true, ..
        }
        | Resolved::NotFound => return to_err(WriteError::NoWritePermission),
        Resolved::Path { ns, display, .. } => (ns, display),
        _ => return to_err(WriteError::MalformedPath),
    };
    if name_of(&to).is_empty() || lower(&to).is_empty() {
        return to_err(WriteError::MalformedPath);
    }
    if from_read_only && !copy {
        return Ok(Err(RelocationError::FromWrite {
            from_write: WriteError::NoWritePermission,
        }));
    }
    // Shared folders mounted at or below the source (of the home).
    let holds_mount = from_ns == ctx.home_ns()
        && ctx
            .mounts()
            .await?
            .iter()
            .any(|m| is_within(&m.lower, &from));
    if holds_mount && copy {
        return Ok(Err(RelocationError::CantCopySharedFolder));
    }
    if holds_mount && to_ns != from_ns {
        return Ok(Err(RelocationError::CantNestSharedFolder));
    }
    let done = if from_ns == to_ns {
        ctx.store()
            .relocate(from_ns, &from, &to, copy, autorename)
            .await
    } else {
        ctx.store()
            .relocate_across(from_ns, &from, to_ns, &to, copy, autorename)
            .await
    };
    match done {
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
