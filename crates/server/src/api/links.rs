//! Shared links over the API: `sharing/create_shared_link_with_settings`,
//! `list_shared_links`, `modify_shared_link_settings`, `revoke_shared_link`,
//! `get_shared_link_metadata`, `get_shared_link_file`, and `files/list_folder` with a
//! `shared_link`. The public page of a link is `web/share.rs`; the store keeps the links.
//!
//! Security Invariants:
//! - a link is created, listed, changed or revoked only for an item under the caller's root,
//!   found through `Ctx::resolve`;
//! - reading through a link (metadata, bytes, listings) checks expiry, audience and password
//!   for everyone but the owner, and shows another account's paths and ids to nobody;
//! - a `url` argument is parsed strictly; a token is looked up only by its digest.

use axum::http::HeaderMap;
use axum::response::Response;
use cubby_core::api::endpoint as ep;
use cubby_core::api::errors::{
    CreateSharedLinkError, LinkExists, LinkSettingsError, ListFolderContinueError,
    ListSharedLinksError, LookupError, PathLookupError, SharedLinkError,
};
use cubby_core::api::types::{
    AudienceOption, CreateSharedLinkArg, FileLinkMetadata, LinkCommon, LinkPermissions,
    ListFolderResult, ListSharedLinksArg, Metadata, ModifySharedLinkArg, SharedLinkArg,
    SharedLinkMetadata, SharedLinkReadArg, SharedLinkSettings, SharedLinks, Tag, UrlArg,
    VisibilityPolicy, Void,
};
use cubby_core::path::{self as cpath, Pattern, RelPath, is_within, lower};
use cubby_store::links::{Audience, Created, LinkChanges, NewLink, SharedLink};
use cubby_store::{Entry, Kind, Store};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::history::base_url;
use crate::api::transfer::serve_file;
use crate::api::{Answer, ApiResult, Ctx, Fail, Resolved, metadata, percent_encode};

/// Links per page of `list_shared_links`.
const LIST_PAGE: u32 = 200;

/// Entries per page of a listing through a link when the caller gives no limit.
const LINK_LISTING_PAGE: u32 = 2_000;

/// The kind tag of sealed `list_shared_links` cursors.
const LIST_CURSOR_KIND: &str = "k0";

/// The kind tag of sealed cursors of listings through a link.
pub(crate) const LINK_LISTING_KIND: &str = "k1";

/// Length of a link token: 32 bytes in unpadded base64url.
const TOKEN_CHARS: usize = 43;

// ---------------------------------------------------------------------------------------
// Link URLs.

/// What a `url` argument names.
pub(crate) enum LinkUrl {
    /// A shared link of this server's form, with its token.
    Token(String),
    /// Another kind of Cubby link (a temporary link or upload link).
    OtherType,
    /// Not a link URL at all.
    Malformed,
}

/// Parses `http(s)://host/s/{token}/{name}[?query]` strictly; the host is not checked, so a
/// link stays valid behind any name of the installation.
pub(crate) fn parse_link_url(url: &str) -> LinkUrl {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return LinkUrl::Malformed;
    };
    let Some(slash) = rest.find('/') else {
        return LinkUrl::Malformed;
    };
    if slash == 0 || rest[..slash].chars().any(|c| c.is_whitespace() || c == '@') {
        return LinkUrl::Malformed;
    }
    let path = rest[slash..].split(['?', '#']).next().unwrap_or("");
    if path.starts_with("/temp/") || path.starts_with("/apitul/") {
        return LinkUrl::OtherType;
    }
    let Some(tail) = path.strip_prefix("/s/") else {
        return LinkUrl::Malformed;
    };
    let mut parts = tail.split('/');
    let (Some(token), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
        return LinkUrl::Malformed;
    };
    if !valid_token(token) || name.is_empty() {
        return LinkUrl::Malformed;
    }
    LinkUrl::Token(token.to_owned())
}

/// Whether `s` has the shape of a link token (so other strings never reach the database).
pub(crate) fn valid_token(s: &str) -> bool {
    s.len() == TOKEN_CHARS
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// The URL of a link: this request's scheme and host, the token, the item's current name.
pub(crate) fn link_url(headers: &HeaderMap, link: &SharedLink, item: &Entry) -> String {
    format!(
        "{}/s/{}/{}",
        base_url(headers),
        link.token,
        percent_encode(item.name())
    )
}

// ---------------------------------------------------------------------------------------
// Metadata.

/// Who is looking at a link, for what its metadata shows.
struct Viewer<'a> {
    /// The caller's account row, namespace and root (display form).
    account: i64,
    ns: u64,
    root: &'a str,
}

impl Viewer<'_> {
    fn of(ctx: &Ctx) -> Viewer<'_> {
        Viewer {
            account: ctx.auth().account.id,
            ns: ctx.home_ns(),
            root: &ctx.auth().root,
        }
    }

    fn owns(&self, link: &SharedLink) -> bool {
        self.account == link.account && self.ns == link.ns
    }
}

/// `SharedLinkMetadata` of `item` (the linked item, or an item inside a linked folder).
fn link_metadata(
    url: &str,
    link: &SharedLink,
    item: &Entry,
    viewer: &Viewer,
) -> SharedLinkMetadata {
    let owner = viewer.owns(link);
    // Paths and ids are the owner's, and only inside the root the caller sees.
    let (id, path_lower) = if owner && is_within(&item.path_lower, &lower(viewer.root)) {
        match metadata(viewer.root, item) {
            Metadata::File(f) => (Some(f.id), f.path_lower),
            Metadata::Folder(f) => (Some(f.id), f.path_lower),
            Metadata::Deleted(d) => (None, d.path_lower),
        }
    } else {
        (None, None)
    };
    let common = LinkCommon {
        url: url.to_owned(),
        name: item.name().to_owned(),
        id,
        path_lower,
        expires: link.expires.map(cubby_core::time::format),
        link_permissions: permissions(link, owner),
    };
    if item.kind == Kind::File {
        SharedLinkMetadata::File(FileLinkMetadata {
            common,
            client_modified: cubby_core::time::format(item.client_modified),
            server_modified: cubby_core::time::format(item.server_modified),
            rev: item.rev.clone().unwrap_or_default(),
            size: item.size,
        })
    } else {
        SharedLinkMetadata::Folder(common)
    }
}

/// `LinkPermissions`: what the link grants and what the caller may change.
fn permissions(link: &SharedLink, owner: bool) -> LinkPermissions {
    let password = link.password_hash.is_some();
    let (resolved, audience) = match (link.audience, password) {
        (Audience::NoOne, _) => ("no_one", "no_one"),
        (Audience::Public, true) => ("password", "public"),
        (Audience::Public, false) => ("public", "public"),
    };
    let not_on_team = || Some(Tag::new("user_not_on_team"));
    let policy = |name: &str, allowed: bool| VisibilityPolicy {
        policy: Tag::new(name),
        resolved_policy: Tag::new(name),
        allowed,
        disallowed_reason: None,
    };
    let option = |name: &str, allowed: bool| AudienceOption {
        audience: Tag::new(name),
        allowed,
        disallowed_reason: None,
    };
    LinkPermissions {
        resolved_visibility: Some(Tag::new(resolved)),
        requested_visibility: (link.audience == Audience::Public)
            .then(|| Tag::new(if password { "password" } else { "public" })),
        can_revoke: owner,
        revoke_failure_reason: (!owner).then(|| Tag::new("owner_only")),
        effective_audience: Some(Tag::new(audience)),
        link_access_level: Some(Tag::new("viewer")),
        visibility_policies: vec![
            policy("public", owner),
            policy("password", owner),
            VisibilityPolicy {
                disallowed_reason: not_on_team(),
                ..policy("team_only", false)
            },
        ],
        can_set_expiry: owner,
        can_remove_expiry: owner,
        allow_download: link.allow_download,
        can_allow_download: owner,
        can_disallow_download: owner,
        allow_comments: false,
        team_restricts_comments: false,
        audience_options: vec![
            option("public", owner),
            AudienceOption {
                disallowed_reason: not_on_team(),
                ..option("team", false)
            },
            option("no_one", owner),
        ],
        can_set_password: owner,
        can_remove_password: owner,
        require_password: password,
        can_use_extended_sharing_controls: owner,
    }
}

// ---------------------------------------------------------------------------------------
// Settings.

/// Requested settings, checked; `password` is `Some(None)` to remove one, and
/// `wants_password` says the link must end up with one.
struct Settings {
    audience: Option<Audience>,
    password: Option<Option<String>>,
    wants_password: bool,
    expires: Option<i64>,
    allow_download: Option<bool>,
}

/// Why settings were refused: a `SharedLinkSettingsError`, or a 400.
enum SettingsError {
    Refused(LinkSettingsError),
    BadInput(String),
}

fn parse_settings(s: &SharedLinkSettings) -> Result<Settings, SettingsError> {
    let invalid = SettingsError::Refused(LinkSettingsError::InvalidSettings);
    let not_authorized = || SettingsError::Refused(LinkSettingsError::NotAuthorized);
    let mut audience = None;
    let mut wants_password = s.require_password == Some(true);
    // The deprecated visibility puts public and password on one scale: asking for public
    // means no password (the newer audience leaves the password to its own fields).
    let mut visibility_public = false;
    if let Some(v) = &s.requested_visibility {
        match cubby_core::wire::union_tag(v).map(|t| t.0) {
            Some("public") => {
                audience = Some(Audience::Public);
                visibility_public = true;
            }
            Some("password") => {
                audience = Some(Audience::Public);
                wants_password = true;
            }
            Some("team_only") => return Err(not_authorized()),
            _ => {
                return Err(SettingsError::BadInput(
                    "settings.requested_visibility: unknown visibility".into(),
                ));
            }
        }
    }
    if let Some(v) = &s.audience {
        match cubby_core::wire::union_tag(v).map(|t| t.0) {
            Some("public") => audience = Some(Audience::Public),
            Some("no_one") => audience = Some(Audience::NoOne),
            Some("password") => {
                audience = Some(Audience::Public);
                wants_password = true;
            }
            Some("team" | "members") => return Err(not_authorized()),
            Some(_) => return Err(invalid),
            None => {
                return Err(SettingsError::BadInput(
                    "settings.audience: expected a union".into(),
                ));
            }
        }
    }
    if let Some(v) = &s.access {
        match cubby_core::wire::union_tag(v).map(|t| t.0) {
            Some("viewer" | "default" | "max") => {}
            Some("editor") => return Err(not_authorized()),
            Some(_) => return Err(invalid),
            None => {
                return Err(SettingsError::BadInput(
                    "settings.access: expected a union".into(),
                ));
            }
        }
    }
    let password = match (&s.link_password, s.require_password) {
        (Some(_), Some(false)) => return Err(invalid),
        (Some(p), _) if p.is_empty() => return Err(invalid),
        (Some(p), _) => {
            wants_password = true;
            Some(Some(p.clone()))
        }
        (None, Some(false)) => Some(None),
        (None, _) => None,
    };
    if wants_password && password == Some(None) {
        return Err(invalid);
    }
    let password = match password {
        None if visibility_public && !wants_password => Some(None),
        other => other,
    };
    let expires = match &s.expires {
        None => None,
        Some(t) => {
            let Some(secs) = cubby_core::time::parse(t) else {
                return Err(SettingsError::BadInput(format!(
                    "settings.expires: '{t}' is not a timestamp"
                )));
            };
            if secs <= cubby_store::now() {
                return Err(invalid);
            }
            Some(secs)
        }
    };
    Ok(Settings {
        audience,
        password,
        wants_password,
        expires,
        allow_download: s.allow_download,
    })
}

/// A settings refusal in a route's own union (`settings_error` is a member of each), or a
/// 400.
fn settings_error<E>(
    ctx: &Ctx,
    e: SettingsError,
    wrap: impl FnOnce(LinkSettingsError) -> E,
) -> Fail<E> {
    match e {
        SettingsError::Refused(r) => Fail::Route(wrap(r)),
        SettingsError::BadInput(m) => ctx.bad_input(&format!("request body: {m}")).into(),
    }
}

// ---------------------------------------------------------------------------------------
// Routes.

/// Why the item at a `path` argument cannot be linked or listed.
enum NoItem {
    Lookup(LookupError),
    /// A `rev:` path where a live item is needed.
    AccessDenied,
}

/// The live item at a `path` argument; a `rev:` path stands for its file's current entry
/// where `allow_rev`, and is refused otherwise.
async fn live_entry(ctx: &Ctx, path: &str, allow_rev: bool) -> ApiResult<Result<Entry, NoItem>> {
    let store = ctx.store();
    let entry = match ctx.resolve("path", path, Pattern::ReadPath).await? {
        Resolved::Path { ns, lower, .. } => store.entry(ns, &lower).await?,
        Resolved::Revision(e) if allow_rev => store.entry(ctx.ns_of(&e), &e.path_lower).await?,
        Resolved::Revision(_) => return Ok(Err(NoItem::AccessDenied)),
        Resolved::Malformed => return Ok(Err(NoItem::Lookup(LookupError::MalformedPath))),
        Resolved::NotFolder => return Ok(Err(NoItem::Lookup(LookupError::NotFolder))),
        Resolved::NotFound => None,
    };
    Ok(match entry {
        Some(e) if e.kind != Kind::Deleted => Ok(e),
        _ => Err(NoItem::Lookup(LookupError::NotFound)),
    })
}

pub(crate) async fn create(
    ctx: &Ctx,
    a: CreateSharedLinkArg,
    headers: &HeaderMap,
) -> Answer<ep::CreateSharedLinkWithSettings> {
    use CreateSharedLinkError as E;
    let wrap = |settings_error| E::SettingsError { settings_error };
    let requested = a.settings.unwrap_or_default();
    let settings = parse_settings(&requested).map_err(|e| settings_error(ctx, e, wrap))?;
    let entry = match live_entry(ctx, &a.path, false).await? {
        Ok(e) => e,
        Err(NoItem::Lookup(l)) => return Err(Fail::Route(E::Path { path: l })),
        Err(NoItem::AccessDenied) => return Err(Fail::Route(E::AccessDenied)),
    };
    let Some(file_id) = entry.id.clone() else {
        return Err(Fail::Route(E::Path {
            path: LookupError::NotFound,
        }));
    };
    if settings.wants_password && !matches!(settings.password, Some(Some(_))) {
        return Err(Fail::Route(wrap(LinkSettingsError::InvalidSettings)));
    }
    let new = NewLink {
        audience: settings.audience.unwrap_or(Audience::Public),
        password: settings.password.clone().flatten(),
        expires: settings.expires,
        allow_download: settings.allow_download.unwrap_or(true),
    };
    let viewer = Viewer::of(ctx);
    match ctx
        .store()
        .create_shared_link(ctx.ns_of(&entry), ctx.auth().account.id, &file_id, new)
        .await?
    {
        Created::New(link) => Ok(link_metadata(
            &link_url(headers, &link, &entry),
            &link,
            &entry,
            &viewer,
        )),
        Created::Exists(link) => {
            // Dropbox returns the existing link's metadata unless the request asked for
            // settings the existing link may not have.
            let compatible = requested.is_empty() || same_settings(&link, &settings);
            let existing = compatible.then(|| LinkExists::Metadata {
                metadata: link_metadata(&link_url(headers, &link, &entry), &link, &entry, &viewer),
            });
            Err(Fail::Route(E::SharedLinkAlreadyExists {
                shared_link_already_exists: existing,
            }))
        }
    }
}

/// Whether a link already has every setting a request asks for (a new password never counts
/// as the same, since the stored one cannot be compared without checking it).
fn same_settings(link: &SharedLink, s: &Settings) -> bool {
    s.audience.is_none_or(|a| a == link.audience)
        && !matches!(s.password, Some(Some(_)))
        && (s.wants_password == link.password_hash.is_some()
            || (!s.wants_password && s.password.is_none()))
        && s.expires.is_none_or(|e| Some(e) == link.expires)
        && s.allow_download.is_none_or(|d| d == link.allow_download)
}

/// Where a `list_shared_links` page continues.
#[derive(Serialize, Deserialize)]
struct ListCursor {
    account: i64,
    ns: u64,
    root: String,
    after: i64,
}

pub(crate) async fn list(
    ctx: &Ctx,
    a: ListSharedLinksArg,
    headers: &HeaderMap,
) -> Answer<ep::ListSharedLinks> {
    let viewer = Viewer::of(ctx);
    let root_lower = ctx.root_lower();
    let store = ctx.store();
    let mut links = Vec::new();
    let mut cursor_out = None;
    let mut has_more = false;
    if let Some(path) = &a.path {
        let entry = match live_entry(ctx, path, true).await? {
            Ok(e) => e,
            Err(NoItem::Lookup(l)) => {
                return Err(Fail::Route(ListSharedLinksError::Path { path: l }));
            }
            Err(NoItem::AccessDenied) => {
                return Err(Fail::Route(ListSharedLinksError::Path {
                    path: LookupError::NotFound,
                }));
            }
        };
        // The item itself, and (unless direct_only) every folder above it inside the root.
        let mut paths = vec![entry.path_lower.clone()];
        if !a.direct_only {
            paths.extend(
                cpath::ancestors(&entry.path_lower)
                    .filter(|p| is_within(p, &root_lower))
                    .map(str::to_owned),
            );
        }
        for (link, _) in store
            .shared_links_at(ctx.auth().account.id, ctx.ns_of(&entry), &paths)
            .await?
        {
            links.push(link);
        }
    } else {
        let after = match &a.cursor {
            None => 0,
            Some(c) => match cubby_core::cursor::open::<ListCursor>(
                store.cursor_key(),
                LIST_CURSOR_KIND,
                c,
            ) {
                Some(c)
                    if c.account == ctx.auth().account.id
                        && c.ns == ctx.home_ns()
                        && c.root == root_lower =>
                {
                    c.after
                }
                _ => return Err(Fail::Route(ListSharedLinksError::Reset)),
            },
        };
        let page = store
            .shared_links_page(ctx.auth().account.id, ctx.home_ns(), after, LIST_PAGE + 1)
            .await?;
        has_more = page.len() > LIST_PAGE as usize;
        let mut last = after;
        for (link, path_lower) in page.into_iter().take(LIST_PAGE as usize) {
            last = link.id;
            if is_within(&path_lower, &root_lower) {
                links.push(link);
            }
        }
        cursor_out = Some(cubby_core::cursor::seal(
            store.cursor_key(),
            LIST_CURSOR_KIND,
            &ListCursor {
                account: ctx.auth().account.id,
                ns: ctx.home_ns(),
                root: root_lower.clone(),
                after: last,
            },
        ));
    }
    let mut out = Vec::with_capacity(links.len());
    for link in links {
        // The item is read again for its current metadata (a page is at most 200 links).
        if let Some(item) = store.entry_by_id(link.ns, &link.file_id).await? {
            out.push(link_metadata(
                &link_url(headers, &link, &item),
                &link,
                &item,
                &viewer,
            ));
        }
    }
    Ok(SharedLinks {
        links: out,
        has_more,
        cursor: cursor_out,
    })
}

/// A link the caller manages: it must exist, be the caller's, and lie under its root.
/// `malformed` is what a URL that is no link at all answers.
async fn own_link(
    ctx: &Ctx,
    url: &str,
    malformed: SharedLinkError,
) -> Result<(SharedLink, Entry), Fail<SharedLinkError>> {
    let not_found = || Fail::Route(SharedLinkError::SharedLinkNotFound);
    let token = match parse_link_url(url) {
        LinkUrl::Token(t) => t,
        LinkUrl::OtherType => return Err(Fail::Route(SharedLinkError::UnsupportedLinkType)),
        LinkUrl::Malformed => return Err(Fail::Route(malformed)),
    };
    let Some(link) = ctx.store().shared_link_by_token(&token).await? else {
        return Err(not_found());
    };
    let Some(item) = ctx.store().entry_by_id(link.ns, &link.file_id).await? else {
        return Err(not_found());
    };
    let viewer = Viewer::of(ctx);
    if !viewer.owns(&link) || !is_within(&item.path_lower, &ctx.root_lower()) {
        return Err(Fail::Route(SharedLinkError::SharedLinkAccessDenied));
    }
    Ok((link, item))
}

pub(crate) async fn modify(
    ctx: &Ctx,
    a: ModifySharedLinkArg,
    headers: &HeaderMap,
) -> Answer<ep::ModifySharedLinkSettings> {
    let wrap = |settings_error| SharedLinkError::SettingsError { settings_error };
    let invalid = || Fail::Route(wrap(LinkSettingsError::InvalidSettings));
    let (link, item) = own_link(ctx, &a.url, SharedLinkError::SharedLinkNotFound).await?;
    if a.settings.is_empty() && !a.remove_expiration {
        return Err(invalid());
    }
    let s = parse_settings(&a.settings).map_err(|e| settings_error(ctx, e, wrap))?;
    if a.remove_expiration && s.expires.is_some() {
        return Err(invalid());
    }
    // Asking for a password keeps the current one; a link without one needs it given.
    if s.wants_password && s.password.is_none() && link.password_hash.is_none() {
        return Err(invalid());
    }
    let changes = LinkChanges {
        audience: s.audience,
        password: s.password,
        expires: if a.remove_expiration {
            Some(None)
        } else {
            s.expires.map(Some)
        },
        allow_download: s.allow_download,
    };
    let Some(link) = ctx.store().modify_shared_link(link.id, changes).await? else {
        return Err(Fail::Route(SharedLinkError::SharedLinkNotFound));
    };
    Ok(link_metadata(
        &link_url(headers, &link, &item),
        &link,
        &item,
        &Viewer::of(ctx),
    ))
}

pub(crate) async fn revoke(ctx: &Ctx, a: UrlArg) -> Answer<ep::RevokeSharedLink> {
    let (link, _) = own_link(ctx, &a.url, SharedLinkError::SharedLinkMalformed).await?;
    ctx.store().revoke_shared_link(link.id).await?;
    Ok(Void)
}

/// Why reading through a link failed.
pub(crate) enum Denied {
    NotFound,
    AccessDenied,
}

/// Checks what every reader of a link must pass: the owner is enabled, the link has not
/// expired, its audience admits the reader, and the password (unless the reader owns it).
/// Wrong passwords count against the link's failure budget.
pub(crate) async fn check_access(
    state: &AppState,
    link: &SharedLink,
    owner: bool,
    password: Option<&str>,
) -> Result<(), Denied> {
    if link.owner_disabled {
        return Err(Denied::NotFound);
    }
    if owner {
        return Ok(());
    }
    if link.expired() || link.audience == Audience::NoOne {
        return Err(Denied::AccessDenied);
    }
    if link.password_hash.is_some() {
        let key = format!("link:{}", link.id);
        if state.link_limiter.check(&key).is_err() {
            return Err(Denied::AccessDenied);
        }
        match password {
            Some(p) if state.store.check_link_password(link, p).await => {}
            _ => {
                state.link_limiter.fail(&key);
                return Err(Denied::AccessDenied);
            }
        }
    }
    Ok(())
}

/// Finds the item a link names, or the item at `rel` (a `/`-relative path) inside a linked
/// folder; `None` when there is none (or `rel` is malformed).
pub(crate) async fn item_at(
    store: &Store,
    link: &SharedLink,
    rel: Option<&str>,
) -> ApiResult<Option<Entry>> {
    let Some(top) = store.entry_by_id(link.ns, &link.file_id).await? else {
        return Ok(None);
    };
    let rel = match rel {
        None | Some("") | Some("/") => return Ok(Some(top)),
        Some(r) => match RelPath::parse(r) {
            Ok(r) if !r.is_root() => r,
            _ => return Ok(None),
        },
    };
    if top.kind != Kind::Folder {
        return Ok(None);
    }
    let full = lower(&rel.under(&top.path_display));
    Ok(store
        .entry(link.ns, &full)
        .await?
        .filter(|e| e.kind != Kind::Deleted && is_within(&e.path_lower, &top.path_lower)))
}

/// The link and item a `get_shared_link_*` call reads, after its checks.
async fn read_through(
    ctx: &Ctx,
    a: &SharedLinkReadArg,
) -> Result<(SharedLink, Entry, Entry), Fail<SharedLinkError>> {
    use SharedLinkError as E;
    let token = match parse_link_url(&a.url) {
        LinkUrl::Token(t) => t,
        LinkUrl::OtherType => return Err(Fail::Route(E::UnsupportedLinkType)),
        LinkUrl::Malformed => return Err(Fail::Route(E::SharedLinkNotFound)),
    };
    if let Some(p) = &a.path
        && !p.starts_with('/')
    {
        return Err(ctx
            .bad_input(&format!("request body: path: '{p}' did not match pattern"))
            .into());
    }
    let store = ctx.store();
    let Some(link) = store.shared_link_by_token(&token).await? else {
        return Err(Fail::Route(E::SharedLinkNotFound));
    };
    // A caller with the app's key and secret (thumbnails) is a reader like any other.
    let owner = ctx.auth.is_some() && Viewer::of(ctx).owns(&link);
    match check_access(&ctx.state, &link, owner, a.link_password.as_deref()).await {
        Ok(()) => {}
        Err(Denied::NotFound) => return Err(Fail::Route(E::SharedLinkNotFound)),
        Err(Denied::AccessDenied) => return Err(Fail::Route(E::SharedLinkAccessDenied)),
    }
    let Some(top) = item_at(store, &link, None).await? else {
        return Err(Fail::Route(E::SharedLinkNotFound));
    };
    let Some(item) = item_at(store, &link, a.path.as_deref()).await? else {
        return Err(Fail::Route(E::SharedLinkNotFound));
    };
    Ok((link, top, item))
}

/// The file a link names (or one inside its folder) for a reader: the link's URL, whether
/// the caller owns the link, and the file.
pub(crate) async fn read_file_through(
    ctx: &Ctx,
    a: &SharedLinkReadArg,
    headers: &HeaderMap,
) -> Result<(String, bool, Entry), Fail<SharedLinkError>> {
    let (link, top, item) = read_through(ctx, a).await?;
    if item.kind != Kind::File {
        return Err(Fail::Route(SharedLinkError::SharedLinkIsDirectory));
    }
    let owner = ctx.auth.is_some() && Viewer::of(ctx).owns(&link);
    Ok((link_url(headers, &link, &top), owner, item))
}

pub(crate) async fn get_metadata(
    ctx: &Ctx,
    a: SharedLinkReadArg,
    headers: &HeaderMap,
) -> Answer<ep::GetSharedLinkMetadata> {
    let (link, top, item) = read_through(ctx, &a).await?;
    Ok(link_metadata(
        &link_url(headers, &link, &top),
        &link,
        &item,
        &Viewer::of(ctx),
    ))
}

/// `sharing/get_shared_link_file`: the link's metadata (for `Dropbox-API-Result`) and the
/// response streaming the file.
pub(crate) async fn get_file(
    ctx: &Ctx,
    a: SharedLinkReadArg,
    headers: &HeaderMap,
) -> Result<(SharedLinkMetadata, Response), Fail<SharedLinkError>> {
    let (link, top, item) = read_through(ctx, &a).await?;
    if item.kind != Kind::File {
        return Err(Fail::Route(SharedLinkError::SharedLinkIsDirectory));
    }
    let viewer = Viewer::of(ctx);
    if !link.allow_download && !viewer.owns(&link) {
        return Err(Fail::Route(SharedLinkError::SharedLinkAccessDenied));
    }
    let meta = link_metadata(&link_url(headers, &link, &top), &link, &item, &viewer);
    let resp = serve_file(&ctx.state, &item, None, "application/octet-stream", headers).await?;
    Ok((meta, resp))
}

// ---------------------------------------------------------------------------------------
// files/list_folder through a link.

/// Where a listing through a link stands: the link, the listed folder (full lower path in
/// the link's namespace), the last path returned, and the page size.
#[derive(Serialize, Deserialize)]
pub(crate) struct LinkListing {
    link: i64,
    token_digest: String,
    folder: String,
    after: String,
    limit: u32,
}

/// `files/list_folder` with `shared_link`: lists the folder at `path` (relative to the
/// link's folder; `""` is the folder itself), non-recursively. Every failure to reach the
/// folder is `path/not_found`, so a listing never tells whether a link exists.
pub(crate) async fn list_folder(
    ctx: &Ctx,
    sl: &SharedLinkArg,
    path: &str,
    recursive: bool,
    limit: Option<u32>,
) -> Answer<ep::ListFolder> {
    if recursive {
        return Err(ctx
            .bad_input(
                "request body: recursive: a listing through a shared link cannot be recursive",
            )
            .into());
    }
    if !path.is_empty() && !path.starts_with('/') {
        return Err(ctx
            .bad_input(&format!(
                "request body: path: '{path}' is not a path relative to the link"
            ))
            .into());
    }
    let lookup = |l: LookupError| Fail::Route(PathLookupError::Path { path: l });
    let not_found = || lookup(LookupError::NotFound);
    let store = ctx.store();
    let LinkUrl::Token(token) = parse_link_url(&sl.url) else {
        return Err(not_found());
    };
    let Some(link) = store.shared_link_by_token(&token).await? else {
        return Err(not_found());
    };
    let owner = Viewer::of(ctx).owns(&link);
    if check_access(&ctx.state, &link, owner, sl.password.as_deref())
        .await
        .is_err()
    {
        return Err(not_found());
    }
    let folder = match item_at(store, &link, Some(path)).await? {
        Some(e) if e.kind == Kind::Folder => e,
        Some(_) => return Err(lookup(LookupError::NotFolder)),
        None => return Err(not_found()),
    };
    let state = LinkListing {
        link: link.id,
        token_digest: token_digest(store, &link),
        folder: folder.path_lower,
        after: String::new(),
        limit: limit.unwrap_or(LINK_LISTING_PAGE),
    };
    Ok(link_listing_page(ctx, &link, state).await?)
}

/// `files/list_folder/continue` with a cursor of a listing through a link.
pub(crate) async fn list_folder_continue(
    ctx: &Ctx,
    cursor: &str,
) -> Answer<ep::ListFolderContinue> {
    let reset = || Fail::Route(ListFolderContinueError::Reset);
    let store = ctx.store();
    let state: LinkListing =
        cubby_core::cursor::open(store.cursor_key(), LINK_LISTING_KIND, cursor)
            .ok_or_else(reset)?;
    let link = store
        .shared_link_by_id(state.link)
        .await?
        .filter(|l| token_digest(store, l) == state.token_digest && !l.owner_disabled)
        .ok_or_else(reset)?;
    if link.expired() && !Viewer::of(ctx).owns(&link) {
        return Err(reset());
    }
    Ok(link_listing_page(ctx, &link, state).await?)
}

/// Ties a listing cursor to one link and password: revoking the link or changing its
/// password ends the listing.
fn token_digest(store: &Store, link: &SharedLink) -> String {
    let mut data = link.token.clone().into_bytes();
    data.extend_from_slice(link.password_hash.as_deref().unwrap_or("").as_bytes());
    cubby_core::hash::hex(
        &cubby_core::cursor::derive(store.link_key(), "shared-link-listing", &data)[..16],
    )
}

async fn link_listing_page(
    ctx: &Ctx,
    link: &SharedLink,
    mut state: LinkListing,
) -> ApiResult<ListFolderResult> {
    let store = ctx.store();
    let mut rows = store
        .list(
            link.ns,
            &state.folder,
            false,
            false,
            &state.after,
            state.limit + 1,
        )
        .await?;
    let has_more = rows.len() > state.limit as usize;
    rows.truncate(state.limit as usize);
    if let Some(last) = rows.last() {
        state.after = last.path_lower.clone();
    }
    let entries = rows.iter().map(link_entry).collect();
    let cursor = cubby_core::cursor::seal(store.cursor_key(), LINK_LISTING_KIND, &state);
    Ok(ListFolderResult {
        entries,
        cursor,
        has_more,
    })
}

/// An entry listed through a link: its metadata without the owner's paths.
fn link_entry(e: &Entry) -> Metadata {
    let mut m = metadata("", e);
    match &mut m {
        Metadata::File(f) => (f.path_lower, f.path_display) = (None, None),
        Metadata::Folder(f) => (f.path_lower, f.path_display) = (None, None),
        Metadata::Deleted(d) => (d.path_lower, d.path_display) = (None, None),
    }
    m
}
