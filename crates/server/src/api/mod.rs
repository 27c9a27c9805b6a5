//! The Dropbox API v2 surface: one dispatcher for `/2/{route}` that applies the wire
//! conventions (route styles, `Dropbox-API-Arg`, auth, scopes, error shapes) before calling
//! the route's handler.
//!
//! Architecture Invariant: every path argument is resolved against the caller's root by
//! [`Ctx::resolve`]; handlers never build namespace paths from raw arguments.

mod batch;
mod copyref;
pub(crate) mod files;
mod folders;
pub(crate) mod history;
pub(crate) mod links;
mod save_url;
mod search;
pub(crate) mod sessions;
pub(crate) mod thumbnails;
pub(crate) mod transfer;
pub(crate) mod users;
pub(crate) mod zip;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use cubby_core::api::endpoint as ep;
use cubby_core::api::errors::{
    AuthError, ErrorBody, LookupError, PathRootError, RateLimitError, WriteConflictError,
    WriteError,
};
use cubby_core::api::types::{
    DeletedMetadata, FileMetadata, FileSharingInfo, FolderMetadata, FolderSharingInfo, Metadata,
    RootInfo, Tag,
};
use cubby_core::api::{Auth, Endpoint, Route, Spec, Style};
use cubby_core::path::{self as cpath, PathArg, PathError, Pattern, is_within, lower};
use cubby_core::wire::{error_summary, header_safe_json};
use cubby_store::{AuthInfo, Entry, Kind, OpError, Store};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::AppState;

/// Builds the router: every route on every host name, matched on the path only.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/2/{*route}", any(dispatch))
        .route(
            "/temp/{token}/{name}",
            axum::routing::get(history::serve_temporary_link),
        )
        .route(
            "/s/{token}/{name}",
            axum::routing::get(crate::web::share::serve).post(crate::web::share::unlock),
        )
        .route(
            "/apitul/1/{id}",
            axum::routing::post(history::serve_upload_link),
        )
        .route("/health/live", any(|| async { "ok" }))
        .route("/health/ready", any(ready))
        .route("/metrics", axum::routing::get(metrics))
        .merge(crate::web::router())
        .merge(crate::dav::router())
        .fallback(unknown_path)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::access::layer,
        ))
        .with_state(state)
}

/// A path no route serves: a plain answer that says so (API routes live under `/2/`).
async fn unknown_path(uri: axum::http::Uri) -> Response {
    let text = if uri.path().starts_with("/2/") {
        "Unknown API function."
    } else {
        "Nothing is served at this path: the Dropbox API lives under /2/, the web pages under /."
    };
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// A known path asked with a method it does not take.
async fn method_not_allowed(method: Method) -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("This path does not take {method} requests."),
    )
        .into_response()
}

/// Readiness: the metadata store answers. A load balancer takes the server out while not.
async fn ready(State(state): State<Arc<AppState>>) -> Response {
    if *state.shutting_down.borrow() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "metadata store unavailable",
            )
                .into_response()
        }
    }
}

/// Prometheus metrics of this server process.
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let bad = &state.store.bad_blocks;
    let mut body = state.metrics.render(
        state.store.pool_stats(),
        (
            bad.0.load(std::sync::atomic::Ordering::Relaxed),
            bad.1.load(std::sync::atomic::Ordering::Relaxed),
        ),
    );
    state.thumbs.counts.render(&mut body);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// An error in Dropbox's response format.
#[derive(Debug)]
pub enum ApiError {
    /// 400, plain text.
    BadInput(String),
    /// 401, `auth.AuthError`.
    Auth(AuthError),
    /// 409, the route's error union.
    Route(Value),
    /// 422, `common.PathRootError`.
    PathRoot(PathRootError),
    /// 429, `auth.RateLimitError`, with `Retry-After`.
    RateLimited {
        reason: &'static str,
        retry_after: u64,
    },
    /// 500; the cause is logged, never sent.
    Internal(String),
    /// 507: the server's disk is full; nothing was written. The cause is logged.
    DiskFull(String),
}

impl From<cubby_store::StoreError> for ApiError {
    fn from(e: cubby_store::StoreError) -> Self {
        if e.disk_full() {
            ApiError::DiskFull(e.to_string())
        } else {
            ApiError::Internal(e.to_string())
        }
    }
}

/// What a client is told when the server's disk is full: plain words, since no Dropbox
/// union has a member for it (an account's `insufficient_space` would blame its quota).
const DISK_FULL: &str = "The server's disk is full, so nothing was stored. \
    Its operator must free space; then try again.";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Dropbox appends a random number of dots to `error_summary`, so that clients do not
        // parse it; so does Cubby.
        let dots = || ".".repeat((cubby_store::random_bytes::<1>()[0] % 4) as usize);
        let tagged = |status: StatusCode, error: Value| {
            let error_summary = format!("{}{}", error_summary(&error), dots());
            json_response(
                status,
                &ErrorBody {
                    error_summary,
                    error,
                },
            )
        };
        match self {
            ApiError::BadInput(msg) => (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                msg,
            )
                .into_response(),
            ApiError::Auth(e) => tagged(StatusCode::UNAUTHORIZED, to_json(&e)),
            ApiError::Route(e) => tagged(StatusCode::CONFLICT, e),
            ApiError::PathRoot(e) => tagged(StatusCode::UNPROCESSABLE_ENTITY, to_json(&e)),
            ApiError::RateLimited {
                reason,
                retry_after,
            } => {
                // `RateLimitError` is a struct, so its summary is its reason's tag.
                let body = ErrorBody {
                    error_summary: format!("{reason}/"),
                    error: RateLimitError {
                        reason: Tag::new(reason),
                        retry_after,
                    },
                };
                let mut resp = json_response(StatusCode::TOO_MANY_REQUESTS, &body);
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                resp
            }
            ApiError::DiskFull(cause) => {
                tracing::error!(%cause, "the disk is full");
                (
                    StatusCode::INSUFFICIENT_STORAGE,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    DISK_FULL,
                )
                    .into_response()
            }
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    "Internal server error",
                )
                    .into_response()
            }
        }
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// How a typed handler fails: with its route's error union (409), or otherwise (400, 401,
/// 429, 500).
#[derive(Debug)]
pub(crate) enum Fail<E> {
    Route(E),
    Api(ApiError),
}

impl<E> From<ApiError> for Fail<E> {
    fn from(e: ApiError) -> Self {
        Fail::Api(e)
    }
}

impl<E> From<cubby_store::StoreError> for Fail<E> {
    fn from(e: cubby_store::StoreError) -> Self {
        Fail::Api(e.into())
    }
}

/// What a typed handler of endpoint `E` answers: the route's result, or how it failed.
pub(crate) type Answer<E> = Result<<E as Endpoint>::Ok, Fail<<E as Endpoint>::Err>>;

/// Encodes a typed handler's answer as Dropbox does: the result as JSON, a route error as
/// a 409 with its `error_summary` (computed from the error's own tags).
fn reply<E: Endpoint>(answer: Answer<E>) -> ApiResult<Response> {
    match answer {
        Ok(v) => Ok(json_response(StatusCode::OK, &v)),
        Err(Fail::Route(e)) => Err(ApiError::Route(to_json(&e))),
        Err(Fail::Api(e)) => Err(e),
    }
}

/// A wire type as JSON, for the places that embed one in hand-built JSON.
pub(crate) fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("wire types serialize")
}

/// A JSON response with `Content-Type: application/json` exactly, as the SDK asserts.
pub(crate) fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    let mut resp = (status, serde_json::to_vec(body).expect("JSON serializes")).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The request as a handler sees it: the route, the caller and the parsed argument.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub state: Arc<AppState>,
    pub route: &'static str,
    pub auth: Option<AuthInfo>,
    /// The shared folders mounted in the caller's home, read once per request.
    pub mounts: tokio::sync::OnceCell<Vec<Mount>>,
    /// A shared folder `Dropbox-API-Path-Root` made the root of this request's paths.
    pub path_root: Option<PathRoot>,
}

/// A shared folder as the root of a request's paths (`Dropbox-API-Path-Root` naming its
/// namespace): paths are the folder's own, mounted or not.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PathRoot {
    pub ns: u64,
    pub read_only: bool,
}

/// A shared folder mounted in the caller's home, as the caller sees it.
#[derive(Clone, Debug)]
pub(crate) struct Mount {
    /// The shared folder's namespace (and id).
    pub ns: u64,
    /// The mount point in the caller's home, lower case and as displayed.
    pub lower: String,
    pub display: String,
    pub access: cubby_store::folders::Access,
}

/// The shared folders mounted in an account's home.
pub(crate) async fn mounts_of(
    store: &Store,
    account: i64,
) -> Result<Vec<Mount>, cubby_store::StoreError> {
    Ok(store
        .memberships(account)
        .await?
        .into_iter()
        .filter_map(|m| {
            let (lower, display) = m.mount?;
            Some(Mount {
                ns: m.folder.ns,
                lower,
                display,
                access: m.access,
            })
        })
        .collect())
}

/// The space an account uses: its home and the shared folders mounted there.
pub(crate) async fn space_used_by(
    store: &Store,
    account: &cubby_store::accounts::Account,
) -> Result<u64, cubby_store::StoreError> {
    let mut used = store.space_used(account.ns).await?;
    for m in mounts_of(store, account.id).await? {
        used += store.space_used(m.ns).await?;
    }
    Ok(used)
}

/// The mount a full path of a home lies strictly below, with the path in the shared
/// folder's namespace (lower case and as displayed).
pub(crate) fn below_a_mount<'a>(
    mounts: &'a [Mount],
    display: &str,
) -> Option<(&'a Mount, String, String)> {
    let path_lower = lower(display);
    let m = mounts
        .iter()
        .find(|m| cubby_store::folders::below_mount(&path_lower, &m.lower))?;
    // `lower` keeps every '/', so the display path has as many components.
    let depth = m.lower.matches('/').count();
    let cut = display
        .match_indices('/')
        .nth(depth)
        .map_or(display.len(), |(i, _)| i);
    Some((
        m,
        path_lower[m.lower.len()..].to_owned(),
        display[cut..].to_owned(),
    ))
}

impl Mount {
    /// The path of the home that `rel` (a path of the shared namespace) is.
    pub fn home_path(&self, rel_lower: &str, rel_display: &str) -> (String, String) {
        (
            format!("{}{rel_lower}", self.lower),
            format!("{}{rel_display}", self.display),
        )
    }
}

impl Ctx {
    pub fn store(&self) -> &Store {
        &self.state.store
    }

    pub fn auth(&self) -> &AuthInfo {
        self.auth.as_ref().expect("route requires a user")
    }

    /// The caller's home namespace (paths below a mount point are not in it: see
    /// [`Ctx::resolve`]).
    pub fn home_ns(&self) -> u64 {
        self.auth().account.ns
    }

    /// The shared folders mounted in the caller's home (read on first use).
    pub async fn mounts(&self) -> ApiResult<&[Mount]> {
        let mounts = self
            .mounts
            .get_or_try_init(|| async {
                Ok::<_, ApiError>(mounts_of(self.store(), self.auth().account.id).await?)
            })
            .await?;
        Ok(mounts)
    }

    /// The namespace an entry read from the store lives in.
    pub fn ns_of(&self, e: &Entry) -> u64 {
        if e.ns == 0 { self.home_ns() } else { e.ns }
    }

    /// Whether a resolved path is the top of what the caller reaches in its namespace: the
    /// caller's root in the home, a shared folder's root in its own.
    pub fn is_top(&self, ns: u64, lower: &str) -> bool {
        if ns == self.home_ns() {
            lower == self.root_lower()
        } else {
            lower.is_empty()
        }
    }

    /// The mounts already read (none if this request has not resolved a path).
    pub fn mounts_read(&self) -> &[Mount] {
        self.mounts.get().map(Vec::as_slice).unwrap_or_default()
    }

    /// The mount of shared namespace `ns` in the caller's home.
    pub fn mount_of(&self, ns: u64) -> Option<&Mount> {
        self.mounts_read().iter().find(|m| m.ns == ns)
    }

    /// Where a full path of the caller's home lives: below a mount point, in the shared
    /// folder's namespace; anywhere else (the mount point itself included), in the home.
    pub async fn place(&self, display: String) -> ApiResult<Resolved> {
        if let Some((m, lower, display)) = below_a_mount(self.mounts().await?, &display) {
            return Ok(Resolved::Path {
                ns: m.ns,
                lower,
                display,
                read_only: !m.access.can_write(),
            });
        }
        Ok(Resolved::Path {
            ns: self.home_ns(),
            lower: lower(&display),
            display,
            read_only: false,
        })
    }

    /// The inside of a folder: a mount point's is its shared folder's root (for listing a
    /// folder's children, zipping or searching it); any other folder is its own.
    pub fn inside(&self, ns: u64, lower: String) -> (u64, String) {
        match self
            .mounts_read()
            .iter()
            .find(|m| ns == self.home_ns() && m.lower == lower)
        {
            Some(m) => (m.ns, String::new()),
            None => (ns, lower),
        }
    }

    /// The namespaces a file id or rev may be found in: the home, then each mount.
    async fn searchable(&self) -> ApiResult<Vec<u64>> {
        let mut all = vec![self.home_ns()];
        all.extend(self.mounts().await?.iter().map(|m| m.ns));
        Ok(all)
    }

    /// Lower-case root of the caller in its namespace (`""` or `/apps/<name>`).
    pub fn root_lower(&self) -> String {
        lower(&self.auth().root)
    }

    /// Deserializes the argument, answering 400 in Dropbox's words on failure.
    pub fn arg<T: DeserializeOwned>(&self, v: Value) -> ApiResult<T> {
        serde_json::from_value(v).map_err(|e| self.bad_input(&format!("request body: {e}")))
    }

    pub fn bad_input(&self, what: &str) -> ApiError {
        ApiError::BadInput(format!(
            "Error in call to API function \"{}\": {what}",
            self.route
        ))
    }

    /// Resolves a path argument against the caller's root.
    ///
    /// Pattern violations are 400s here; everything else is returned as a lookup outcome
    /// for the route to put into its own error union.
    pub async fn resolve(&self, field: &str, raw: &str, pattern: Pattern) -> ApiResult<Resolved> {
        let arg = match cpath::parse(raw, pattern) {
            Ok(a) => a,
            Err(PathError::Pattern(s)) => {
                return Err(self.bad_input(&format!(
                    "request body: {field}: '{s}' did not match pattern"
                )));
            }
            Err(PathError::Malformed) => return Ok(Resolved::Malformed),
        };
        if let Some(pr) = self.path_root {
            return self.resolve_in_root(pr, arg).await;
        }
        let root = self.auth().root.clone();
        let root_lower = lower(&root);
        let home = self.home_ns();
        Ok(match arg {
            PathArg::Path(rel) => self.place(rel.under(&root)).await?,
            PathArg::Ns { ns: wanted, rel } if wanted == home => {
                let full = rel.display().to_owned();
                if is_within(&lower(&full), &root_lower) {
                    self.place(full).await?
                } else {
                    Resolved::NotFound
                }
            }
            // A shared folder's namespace, for its members, where their app may see it.
            PathArg::Ns { ns: wanted, rel } => {
                match self.mounts().await?.iter().find(|m| m.ns == wanted) {
                    Some(m) if is_within(&m.lower, &root_lower) => {
                        let display = rel.display().to_owned();
                        Resolved::Path {
                            ns: m.ns,
                            lower: lower(&display),
                            display,
                            read_only: !m.access.can_write(),
                        }
                    }
                    _ => Resolved::NotFound,
                }
            }
            PathArg::Id { id, rel } => {
                let mut found = None;
                for ns in self.searchable().await? {
                    if let Some(e) = self.store().entry_by_id(ns, &id).await? {
                        found = Some(e);
                        break;
                    }
                }
                match found.map(|e| self.shown(e)) {
                    Some(e) if is_within(&e.path_lower, &root_lower) => {
                        if rel.is_root() {
                            self.place(e.path_display).await?
                        } else if e.kind != Kind::Folder {
                            Resolved::NotFolder
                        } else {
                            self.place(rel.under(&e.path_display)).await?
                        }
                    }
                    _ => Resolved::NotFound,
                }
            }
            PathArg::Rev(rev) => {
                let mut found = None;
                for ns in self.searchable().await? {
                    if let Some(e) = self.store().revision_by_rev(ns, &rev).await? {
                        found = Some(e);
                        break;
                    }
                }
                match found {
                    Some(e) if is_within(&self.shown(e.clone()).path_lower, &root_lower) => {
                        Resolved::Revision(Box::new(e))
                    }
                    _ => Resolved::NotFound,
                }
            }
        })
    }

    /// [`Ctx::resolve`] under a shared folder named by `Dropbox-API-Path-Root`: paths are the
    /// folder's; ids and revs are looked up in it; `ns:` reaches it or the home.
    async fn resolve_in_root(&self, pr: PathRoot, arg: PathArg) -> ApiResult<Resolved> {
        let here = |display: String| Resolved::Path {
            ns: pr.ns,
            lower: lower(&display),
            display,
            read_only: pr.read_only,
        };
        Ok(match arg {
            PathArg::Path(rel) => here(rel.display().to_owned()),
            PathArg::Ns { ns, rel } if ns == pr.ns => here(rel.display().to_owned()),
            PathArg::Ns { ns, rel } if ns == self.home_ns() => {
                self.place(rel.display().to_owned()).await?
            }
            PathArg::Ns { .. } => Resolved::NotFound,
            PathArg::Id { id, rel } => match self.store().entry_by_id(pr.ns, &id).await? {
                Some(e) if rel.is_root() => here(e.path_display),
                Some(e) if e.kind != Kind::Folder => Resolved::NotFolder,
                Some(e) => here(rel.under(&e.path_display)),
                None => Resolved::NotFound,
            },
            PathArg::Rev(rev) => match self.store().revision_by_rev(pr.ns, &rev).await? {
                Some(e) => Resolved::Revision(Box::new(e)),
                None => Resolved::NotFound,
            },
        })
    }

    /// An entry with its paths as the caller's home shows them (an entry of a mounted
    /// shared folder gets its mount point's path in front).
    pub fn shown(&self, mut e: Entry) -> Entry {
        // Under a shared folder as the path root, its entries keep their own paths.
        if self.path_root.is_some_and(|pr| pr.ns == e.ns) {
            return e;
        }
        if e.ns != 0
            && e.ns != self.home_ns()
            && let Some(m) = self.mount_of(e.ns)
        {
            (e.path_lower, e.path_display) = m.home_path(&e.path_lower, &e.path_display);
        }
        e
    }

    /// The path a `path` and an optional (deprecated) `rev` field name: the rev, as a `rev:`
    /// path, when given.
    pub fn path_or_rev(&self, path: &str, rev: Option<&str>) -> ApiResult<String> {
        match rev {
            Some(rev) if !cubby_core::ids::is_rev(rev) => {
                Err(self.bad_input(&format!("request body: rev: '{rev}' did not match pattern")))
            }
            Some(rev) => Ok(format!("rev:{rev}")),
            None => Ok(path.to_owned()),
        }
    }

    /// Resolves a `ReadPath` to a file, or the `LookupError` to answer.
    pub async fn read_file(&self, raw: &str) -> ApiResult<Result<Entry, LookupError>> {
        let entry = match self.resolve("path", raw, Pattern::ReadPath).await? {
            Resolved::Path { ns, lower, .. } => self.store().entry(ns, &lower).await?,
            Resolved::Revision(e) => Some(*e),
            Resolved::Malformed => return Ok(Err(LookupError::MalformedPath)),
            Resolved::NotFolder => return Ok(Err(LookupError::NotFolder)),
            Resolved::NotFound => None,
        };
        Ok(match entry {
            Some(e) if e.kind == Kind::File => Ok(e),
            Some(e) if e.kind == Kind::Folder => Err(LookupError::NotFile),
            _ => Err(LookupError::NotFound),
        })
    }

    /// Metadata of an entry, paths relative to the caller's root, with the sharing
    /// information of a mount point or of an item in a shared folder.
    pub fn metadata(&self, e: &Entry) -> Metadata {
        let home = self.home_ns();
        let shared = (e.ns != 0 && e.ns != home).then_some(e.ns);
        let shown = self.shown(e.clone());
        let mut md = metadata(&self.auth().root, &shown);
        let read_only = |ns: u64| match self.path_root {
            Some(pr) if pr.ns == ns => pr.read_only,
            _ => self.mount_of(ns).is_some_and(|m| !m.access.can_write()),
        };
        match (&mut md, shared) {
            (Metadata::File(f), Some(ns)) => {
                f.parent_shared_folder_id = Some(ns.to_string());
                f.sharing_info = Some(FileSharingInfo {
                    read_only: read_only(ns),
                    parent_shared_folder_id: ns.to_string(),
                    modified_by: None,
                });
            }
            (Metadata::Folder(f), Some(ns)) => {
                f.parent_shared_folder_id = Some(ns.to_string());
                f.sharing_info = Some(FolderSharingInfo {
                    read_only: read_only(ns),
                    parent_shared_folder_id: Some(ns.to_string()),
                    shared_folder_id: None,
                    traverse_only: false,
                    no_access: false,
                });
            }
            (Metadata::Folder(f), None) => {
                if let Some(m) = self.mounts_read().iter().find(|m| m.lower == e.path_lower) {
                    f.shared_folder_id = Some(m.ns.to_string());
                    f.sharing_info = Some(FolderSharingInfo {
                        read_only: !m.access.can_write(),
                        parent_shared_folder_id: None,
                        shared_folder_id: Some(m.ns.to_string()),
                        traverse_only: false,
                        no_access: false,
                    });
                }
            }
            _ => {}
        }
        md
    }
}

/// Metadata of an entry relative to `root` (a display path).
pub(crate) fn metadata(root: &str, e: &Entry) -> Metadata {
    let root_lower_len = lower(root).len();
    let root_chars = root.chars().count();
    let path_lower = e
        .path_lower
        .get(root_lower_len..)
        .unwrap_or(&e.path_lower)
        .to_owned();
    let path_display: String = e.path_display.chars().skip(root_chars).collect();
    let name = e.name().to_owned();
    match e.kind {
        Kind::File => Metadata::File(FileMetadata {
            name,
            // A file or folder row always has its id and rev; only deletions lack them.
            id: e.id.clone().unwrap_or_default(),
            client_modified: cubby_core::time::format(e.client_modified),
            server_modified: cubby_core::time::format(e.server_modified),
            rev: e.rev.clone().unwrap_or_default(),
            size: e.size,
            path_lower: Some(path_lower),
            path_display: Some(path_display),
            is_downloadable: true,
            content_hash: e.content_hash.clone(),
            media_info: None,
            sharing_info: None,
            parent_shared_folder_id: None,
        }),
        Kind::Folder => Metadata::Folder(FolderMetadata {
            name,
            id: e.id.clone().unwrap_or_default(),
            path_lower: Some(path_lower),
            path_display: Some(path_display),
            sharing_info: None,
            shared_folder_id: None,
            parent_shared_folder_id: None,
        }),
        Kind::Deleted => Metadata::Deleted(DeletedMetadata {
            name,
            path_lower: Some(path_lower),
            path_display: Some(path_display),
        }),
    }
}

/// The outcome of resolving a path argument.
pub(crate) enum Resolved {
    /// A path of namespace `ns` (display form; it may or may not exist): the caller's
    /// home, or a shared folder mounted there (then `read_only` for a viewer).
    Path {
        ns: u64,
        display: String,
        lower: String,
        read_only: bool,
    },
    /// A specific file revision (`rev:` form).
    Revision(Box<Entry>),
    Malformed,
    NotFound,
    NotFolder,
}

/// The `LookupError` of a store error, if it is one.
pub(crate) fn lookup_error(e: &OpError) -> Option<LookupError> {
    Some(match e {
        OpError::NotFound => LookupError::NotFound,
        OpError::NotFile => LookupError::NotFile,
        OpError::NotFolder => LookupError::NotFolder,
        _ => return None,
    })
}

/// The `WriteError` of a store error, if it is one.
pub(crate) fn write_error(e: &OpError) -> Option<WriteError> {
    use cubby_store::WriteConflict;
    Some(match e {
        OpError::Conflict(c) => WriteError::Conflict {
            conflict: match c {
                WriteConflict::File => WriteConflictError::File,
                WriteConflict::Folder => WriteConflictError::Folder,
                WriteConflict::FileAncestor => WriteConflictError::FileAncestor,
            },
        },
        OpError::DisallowedName => WriteError::DisallowedName,
        OpError::InsufficientSpace => WriteError::InsufficientSpace,
        _ => return None,
    })
}

/// Seconds a client is asked to wait when the writer is saturated.
const WRITE_RETRY_AFTER_SECS: u64 = 1;

/// Turns a store error that no route union covers into a 400, 429 or 500.
pub(crate) fn unexpected(e: OpError) -> ApiError {
    match e {
        OpError::Invalid(m) => ApiError::BadInput(m),
        OpError::TooManyWrites => ApiError::RateLimited {
            reason: "too_many_write_operations",
            retry_after: WRITE_RETRY_AFTER_SECS,
        },
        OpError::Internal(e) => e.into(),
        other => ApiError::Internal(other.to_string()),
    }
}

// ---------------------------------------------------------------------------------------
// Dispatch.

async fn dispatch(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    method: Method,
    RawQuery(query): RawQuery,
    request_id: Option<axum::Extension<crate::access::RequestId>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = std::time::Instant::now();
    let route = Route::from_name(&name);
    let label = route.map_or("unknown", Route::name);
    let mut account = None;
    let answer = match route {
        Some(route) => {
            let req = Request {
                method: &method,
                query: query.as_deref(),
                headers: &headers,
            };
            handle(state.clone(), route, req, body, &mut account).await
        }
        None => Err(ApiError::BadInput(format!(
            "Unknown API function: \"{name}\""
        ))),
    };
    let mut resp = match answer {
        Ok(r) => r,
        Err(ApiError::Internal(cause)) => {
            // The cause is logged (with the request id), never sent; the id lets a user's
            // report be matched with the log.
            tracing::error!(%cause, "internal error");
            let id = request_id.map_or_else(String::new, |r| r.0.0.clone());
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("Internal server error (request id {id})"),
            )
                .into_response()
        }
        Err(e) => e.into_response(),
    };
    state
        .metrics
        .observe(label, resp.status().as_u16(), started.elapsed());
    resp.extensions_mut().insert(crate::access::Caller {
        route: label,
        account,
    });
    // An upload refused before its body was read (bad auth, a bad argument) leaves the body
    // unread, so the connection cannot carry another request: say so, or a client reusing
    // it would see its next request fail.
    // A file's bytes never run as a page of this origin (the web app lives here too).
    if route.is_some_and(|r| r.spec().style == Style::Download) {
        crate::web::untrusted_bytes(resp.headers_mut());
    }
    let upload = route.is_some_and(|r| r.spec().style == Style::Upload);
    if upload && !resp.status().is_success() {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// Whether an RPC's `Content-Type` is one Dropbox takes: JSON (any parameters, as browsers
/// add a charset), or the `text/plain; charset=dropbox-cors-hack` of clients avoiding a CORS
/// preflight.
fn rpc_content_type(value: &[u8]) -> bool {
    let v = String::from_utf8_lossy(value).to_ascii_lowercase();
    let mut parts = v.split(';').map(str::trim);
    match parts.next() {
        Some("application/json") => true,
        Some("text/plain") => parts.any(|p| p.replace(' ', "") == "charset=dropbox-cors-hack"),
        _ => false,
    }
}

/// The parts of a request the dispatcher reads besides its body.
#[derive(Clone, Copy)]
struct Request<'a> {
    method: &'a Method,
    query: Option<&'a str>,
    headers: &'a HeaderMap,
}

impl Request<'_> {
    /// A URL parameter (browsers and old clients put `authorization` and `arg` there).
    fn param(&self, key: &str) -> Option<String> {
        form_urlencoded_pairs(self.query?)
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// A 400 naming the route, in Dropbox's words.
fn bad_call(route: Route, what: &str) -> ApiError {
    ApiError::BadInput(format!(
        "Error in call to API function \"{}\": {what}",
        route.name()
    ))
}

/// One call, in four steps: check the method and content type, authenticate (and read a
/// content route's argument from its header), read an RPC's argument from the body, and call
/// the route's handler.
async fn handle(
    state: Arc<AppState>,
    route: Route,
    req: Request<'_>,
    body: Body,
    account: &mut Option<String>,
) -> ApiResult<Response> {
    let spec = route.spec();
    if let Err(e) = check_request(route, spec, req) {
        if spec.style == Style::Rpc {
            // Read the body anyway, so the connection stays usable.
            let _ = axum::body::to_bytes(body, MAX_RPC_BODY).await;
        }
        return Err(e);
    }
    // When authentication or a header argument is refused, an upload's body is read and
    // dropped first: closing a connection with unread data resets it, and the client could
    // lose the error response.
    let early = async {
        let auth = authenticate(&state, route, spec, req).await?;
        let header_arg = match spec.style {
            Style::Rpc => None,
            Style::Upload | Style::Download => Some(header_argument(route, req)?),
        };
        Ok::<_, ApiError>((auth, header_arg))
    }
    .await;
    let ((auth, path_root), header_arg) = match early {
        Ok(x) => x,
        Err(e) => {
            match spec.style {
                Style::Upload => transfer::drain_stream(&mut body.into_data_stream(), 0).await,
                // The argument is read anyway, so the connection stays usable: with part of a
                // body unread, hyper closes it after the answer, and a client that sent its
                // next request on it sees the connection drop.
                Style::Rpc => {
                    let _ = axum::body::to_bytes(body, MAX_RPC_BODY).await;
                }
                Style::Download => {}
            }
            return Err(e);
        }
    };
    *account = auth.as_ref().map(|a| a.account.account_id.clone());
    let (arg, body) = match header_arg {
        Some(v) => (v, Some(body)),
        None => (body_argument(route, body).await?, None),
    };
    let ctx = Ctx {
        state,
        route: route.name(),
        auth,
        mounts: Default::default(),
        path_root,
    };
    call(route, &ctx, arg, req.headers, body).await
}

/// Step 1: the HTTP method (POST, or GET for a download) and an RPC's `Content-Type`.
fn check_request(route: Route, spec: Spec, req: Request<'_>) -> ApiResult<()> {
    let get_allowed = spec.style == Style::Download && *req.method == Method::GET;
    if *req.method != Method::POST && !get_allowed {
        return Err(bad_call(
            route,
            &format!("method {} not allowed", req.method),
        ));
    }
    if spec.style == Style::Rpc
        && let Some(ct) = req.headers.get(header::CONTENT_TYPE)
        && !rpc_content_type(ct.as_bytes())
    {
        return Err(bad_call(
            route,
            &format!(
                "Bad HTTP \"Content-Type\" header: \"{}\".  Expecting one of \"application/json\", \
                 \"application/json; charset=utf-8\", \"text/plain; charset=dropbox-cors-hack\".",
                String::from_utf8_lossy(ct.as_bytes())
            ),
        ));
    }
    Ok(())
}

/// Step 2: who calls, as the route's table entry requires: a user's bearer token holding the
/// route's scope (and a `Dropbox-API-Path-Root` it may use), the app's key and secret, or
/// nobody.
async fn authenticate(
    state: &AppState,
    route: Route,
    spec: Spec,
    req: Request<'_>,
) -> ApiResult<(Option<AuthInfo>, Option<PathRoot>)> {
    let scope = match spec.auth {
        Auth::Anonymous => return Ok((None, None)),
        Auth::App => {
            app_auth(state, req.headers).await?;
            return Ok((None, None));
        }
        Auth::User { scope } => scope,
        Auth::AppOrUser { scope } => {
            let basic = req.headers.get(header::AUTHORIZATION).is_some_and(|v| {
                v.as_bytes().len() > 6 && v.as_bytes()[..6].eq_ignore_ascii_case(b"basic ")
            });
            if basic {
                app_auth(state, req.headers).await?;
                return Ok((None, None));
            }
            Some(scope)
        }
    };
    let raw = match req.headers.get(header::AUTHORIZATION) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| bad_call(route, "Authorization header is not ASCII"))?
                .to_owned(),
        ),
        None => req.param("authorization"),
    };
    let Some(raw) = raw else {
        if let Some(info) =
            crate::web::app::credential(state, spec, req.method, req.headers).await?
        {
            let root = check_path_root(&state.store, req.headers, &info).await?;
            return Ok((Some(info), root));
        }
        return Err(bad_call(
            route,
            "Must provide HTTP header \"Authorization\" or URL parameter \"authorization\".",
        ));
    };
    let token = raw
        .strip_prefix("Bearer ")
        .or_else(|| raw.strip_prefix("bearer "))
        .ok_or_else(|| {
            bad_call(
                route,
                "Invalid authorization value in HTTP header \"Authorization\": expected \"Bearer <token>\".",
            )
        })?
        .trim();
    let Some(info) = state.store.authenticate(token).await? else {
        return Err(ApiError::Auth(AuthError::InvalidAccessToken));
    };
    if info.expired {
        return Err(ApiError::Auth(AuthError::ExpiredAccessToken));
    }
    if let Some(scope) = scope
        && !info.scopes.iter().any(|s| s == scope)
    {
        return Err(ApiError::Auth(AuthError::MissingScope {
            required_scope: scope.to_owned(),
        }));
    }
    let root = check_path_root(&state.store, req.headers, &info).await?;
    Ok((Some(info), root))
}

/// A content route's argument: `Dropbox-API-Arg`, or the `arg` URL parameter.
fn header_argument(route: Route, req: Request<'_>) -> ApiResult<Value> {
    let raw = match req.headers.get("dropbox-api-arg") {
        Some(v) => String::from_utf8(v.as_bytes().to_vec())
            .map_err(|_| bad_call(route, "HTTP header \"Dropbox-API-Arg\" is not UTF-8"))?,
        None => req.param("arg").unwrap_or_default(),
    };
    if raw.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&raw).map_err(|e| {
        bad_call(
            route,
            &format!("HTTP header \"Dropbox-API-Arg\": could not decode input as JSON: {e}"),
        )
    })
}

/// Step 3: an RPC's argument, the body as JSON (an empty body is `null`).
async fn body_argument(route: Route, body: Body) -> ApiResult<Value> {
    let bytes = axum::body::to_bytes(body, MAX_RPC_BODY)
        .await
        .map_err(|e| bad_call(route, &format!("request body: {e}")))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        bad_call(
            route,
            &format!("request body: could not decode input as JSON: {e}"),
        )
    })
}

/// Decodes a typed route's argument; an absent one (`null`) reads as `{}`, so a route whose
/// fields all default can be called without a body.
fn decode<E: Endpoint>(ctx: &Ctx, v: Value) -> ApiResult<E::Arg> {
    let v = if v.is_null() && serde_json::from_value::<E::Arg>(Value::Null).is_err() {
        json!({})
    } else {
        v
    };
    ctx.arg(v)
}

/// Step 4: the route's handler. The `match` has no wildcard, so a route declared in the wire
/// contract without a handler does not compile. Each arm (`typed!`) decodes the argument as
/// the route's `Arg`, and its handler's answer must be the route's `Ok` or `Err`.
async fn call(
    route: Route,
    ctx: &Ctx,
    arg: Value,
    headers: &HeaderMap,
    body: Option<Body>,
) -> ApiResult<Response> {
    use cubby_core::api::types::{FolderResult, MetadataResult};
    macro_rules! typed {
        ($ep:ident, |$a:ident| $call:expr) => {{
            let $a = decode::<ep::$ep>(ctx, arg)?;
            reply::<ep::$ep>($call.await)
        }};
    }
    // A download's handler answers its result and the response streaming the bytes; the
    // result goes into `Dropbox-API-Result`.
    macro_rules! typed_download {
        ($ep:ident, |$a:ident| $call:expr) => {{
            let $a = decode::<ep::$ep>(ctx, arg)?;
            match $call.await {
                Ok((result, mut resp)) => {
                    let v: <ep::$ep as Endpoint>::Ok = result;
                    resp.headers_mut()
                        .insert("dropbox-api-result", api_result_header(&to_json(&v)));
                    Ok(resp)
                }
                Err(e) => reply::<ep::$ep>(Err(e)),
            }
        }};
    }
    let body = move || body.expect("a content route has a body");
    match route {
        Route::GetCurrentAccount => typed!(GetCurrentAccount, |_a| users::get_current_account(ctx)),
        Route::GetSpaceUsage => typed!(GetSpaceUsage, |_a| users::get_space_usage(ctx)),
        Route::CheckUser => typed!(CheckUser, |a| users::check(ctx, a)),
        Route::CheckApp => typed!(CheckApp, |a| users::check(ctx, a)),
        Route::TokenRevoke => typed!(TokenRevoke, |_a| users::revoke(ctx)),

        Route::GetMetadata => typed!(GetMetadata, |a| files::get_metadata(ctx, a)),
        Route::ListFolder => typed!(ListFolder, |a| files::list_folder(ctx, a)),
        Route::ListFolderContinue => {
            typed!(ListFolderContinue, |a| files::list_folder_continue(ctx, a))
        }
        Route::GetLatestCursor => typed!(GetLatestCursor, |a| files::get_latest_cursor(ctx, a)),
        Route::Longpoll => typed!(Longpoll, |a| files::longpoll(ctx, a)),
        Route::ListRevisions => typed!(ListRevisions, |a| history::list_revisions(ctx, a)),
        Route::SearchV2 => typed!(SearchV2, |a| search::search(ctx, a)),
        Route::SearchContinueV2 => typed!(SearchContinueV2, |a| search::search_continue(ctx, a)),

        Route::CreateFolderV2 => typed!(CreateFolderV2, |a| async {
            let metadata = files::create_folder(ctx, a).await?;
            Ok(FolderResult { metadata })
        }),
        Route::CreateFolder => typed!(CreateFolder, |a| files::create_folder(ctx, a)),
        Route::DeleteV2 => typed!(DeleteV2, |a| async {
            let metadata = files::delete(ctx, a).await?;
            Ok(MetadataResult { metadata })
        }),
        Route::Delete => typed!(Delete, |a| files::delete(ctx, a)),
        Route::MoveV2 => typed!(MoveV2, |a| async {
            let metadata = files::relocate(ctx, a, false).await?;
            Ok(MetadataResult { metadata })
        }),
        Route::Move => typed!(Move, |a| files::relocate(ctx, a, false)),
        Route::CopyV2 => typed!(CopyV2, |a| async {
            let metadata = files::relocate(ctx, a, true).await?;
            Ok(MetadataResult { metadata })
        }),
        Route::Copy => typed!(Copy, |a| files::relocate(ctx, a, true)),
        Route::Restore => typed!(Restore, |a| history::restore(ctx, a)),
        Route::PermanentlyDelete => {
            typed!(PermanentlyDelete, |a| history::permanently_delete(ctx, a))
        }

        Route::CopyBatchV2 => typed!(CopyBatchV2, |a| batch::relocation_batch(ctx, a, true)),
        Route::MoveBatchV2 => typed!(MoveBatchV2, |a| batch::relocation_batch(ctx, a, false)),
        Route::DeleteBatch => typed!(DeleteBatch, |a| batch::delete_batch(ctx, a)),
        Route::CreateFolderBatch => {
            typed!(CreateFolderBatch, |a| batch::create_folder_batch(ctx, a))
        }
        Route::CopyBatchCheckV2 => {
            typed!(CopyBatchCheckV2, |a| batch::check_job::<
                ep::CopyBatchCheckV2,
                _,
            >(ctx, a))
        }
        Route::MoveBatchCheckV2 => {
            typed!(MoveBatchCheckV2, |a| batch::check_job::<
                ep::MoveBatchCheckV2,
                _,
            >(ctx, a))
        }
        Route::DeleteBatchCheck => {
            typed!(DeleteBatchCheck, |a| batch::check_job::<
                ep::DeleteBatchCheck,
                _,
            >(ctx, a))
        }
        Route::CreateFolderBatchCheck => typed!(CreateFolderBatchCheck, |a| {
            batch::check_job::<ep::CreateFolderBatchCheck, _>(ctx, a)
        }),

        Route::Upload => typed!(Upload, |a| transfer::upload(ctx, a, headers, body())),
        Route::Download => typed_download!(Download, |a| transfer::download(ctx, a, headers)),
        Route::DownloadZip => typed_download!(DownloadZip, |a| zip::download_zip(ctx, a)),
        Route::UploadSessionStart => {
            typed!(UploadSessionStart, |a| sessions::start(
                ctx,
                a,
                headers,
                body()
            ))
        }
        Route::UploadSessionAppendV2 => {
            typed!(UploadSessionAppendV2, |a| sessions::append_v2(
                ctx,
                a,
                headers,
                body()
            ))
        }
        Route::UploadSessionAppend => {
            typed!(UploadSessionAppend, |a| sessions::append_v1(
                ctx,
                a,
                headers,
                body()
            ))
        }
        Route::UploadSessionFinish => {
            typed!(UploadSessionFinish, |a| sessions::finish(
                ctx,
                a,
                headers,
                body()
            ))
        }
        Route::UploadSessionStartBatch => {
            typed!(UploadSessionStartBatch, |a| sessions::start_batch(ctx, a))
        }
        Route::UploadSessionFinishBatchV2 => {
            typed!(UploadSessionFinishBatchV2, |a| sessions::finish_batch_v2(
                ctx, a
            ))
        }
        Route::UploadSessionFinishBatch => {
            typed!(UploadSessionFinishBatch, |a| sessions::finish_batch_v1(
                ctx, a
            ))
        }
        Route::UploadSessionFinishBatchCheck => {
            typed!(UploadSessionFinishBatchCheck, |a| {
                sessions::finish_batch_check(ctx, a)
            })
        }

        Route::GetTemporaryLink => {
            typed!(GetTemporaryLink, |a| history::get_temporary_link(
                ctx, a, headers
            ))
        }
        Route::GetTemporaryUploadLink => typed!(GetTemporaryUploadLink, |a| {
            history::get_temporary_upload_link(ctx, a, headers)
        }),
        Route::CopyReferenceGet => typed!(CopyReferenceGet, |a| copyref::get(ctx, a)),
        Route::CopyReferenceSave => typed!(CopyReferenceSave, |a| copyref::save(ctx, a)),
        Route::SaveUrl => typed!(SaveUrl, |a| save_url::save_url(ctx, a)),
        Route::SaveUrlCheckJobStatus => {
            typed!(SaveUrlCheckJobStatus, |a| save_url::check_job_status(
                ctx, a
            ))
        }

        Route::CreateSharedLinkWithSettings => {
            typed!(CreateSharedLinkWithSettings, |a| links::create(
                ctx, a, headers
            ))
        }
        Route::ListSharedLinks => typed!(ListSharedLinks, |a| links::list(ctx, a, headers)),
        Route::ModifySharedLinkSettings => {
            typed!(ModifySharedLinkSettings, |a| links::modify(ctx, a, headers))
        }
        Route::RevokeSharedLink => typed!(RevokeSharedLink, |a| links::revoke(ctx, a)),
        Route::GetSharedLinkMetadata => {
            typed!(GetSharedLinkMetadata, |a| links::get_metadata(
                ctx, a, headers
            ))
        }
        Route::GetSharedLinkFile => {
            typed_download!(GetSharedLinkFile, |a| links::get_file(ctx, a, headers))
        }
        Route::ShareFolder => typed!(ShareFolder, |a| folders::share_folder(ctx, a)),
        Route::CheckShareJobStatus => {
            typed!(CheckShareJobStatus, |a| folders::check_share_job_status(
                ctx, a
            ))
        }
        Route::CheckJobStatus => typed!(CheckJobStatus, |a| folders::check_job_status(ctx, a)),
        Route::CheckRemoveMemberJobStatus => typed!(CheckRemoveMemberJobStatus, |a| {
            folders::check_remove_member_job_status(ctx, a)
        }),
        Route::GetFolderMetadata => {
            typed!(GetFolderMetadata, |a| folders::get_folder_metadata(ctx, a))
        }
        Route::ListFolders => typed!(ListFolders, |a| folders::list_folders(ctx, a)),
        Route::ListFoldersContinue => {
            typed!(ListFoldersContinue, |a| folders::list_folders_continue(
                ctx, a
            ))
        }
        Route::ListMountableFolders => {
            typed!(ListMountableFolders, |a| folders::list_mountable_folders(
                ctx, a
            ))
        }
        Route::ListMountableFoldersContinue => typed!(ListMountableFoldersContinue, |a| {
            folders::list_mountable_folders_continue(ctx, a)
        }),
        Route::AddFolderMember => typed!(AddFolderMember, |a| folders::add_folder_member(ctx, a)),
        Route::UpdateFolderMember => typed!(UpdateFolderMember, |a| folders::update_folder_member(
            ctx, a
        )),
        Route::RemoveFolderMember => typed!(RemoveFolderMember, |a| folders::remove_folder_member(
            ctx, a
        )),
        Route::ListFolderMembers => {
            typed!(ListFolderMembers, |a| folders::list_folder_members(ctx, a))
        }
        Route::ListFolderMembersContinue => typed!(ListFolderMembersContinue, |a| {
            folders::list_folder_members_continue(ctx, a)
        }),
        Route::RelinquishFolderMembership => typed!(RelinquishFolderMembership, |a| {
            folders::relinquish_folder_membership(ctx, a)
        }),
        Route::MountFolder => typed!(MountFolder, |a| folders::mount_folder(ctx, a)),
        Route::UnmountFolder => typed!(UnmountFolder, |a| folders::unmount_folder(ctx, a)),
        Route::UnshareFolder => typed!(UnshareFolder, |a| folders::unshare_folder(ctx, a)),
        Route::TransferFolder => typed!(TransferFolder, |a| folders::transfer_folder(ctx, a)),
        Route::UpdateFolderPolicy => typed!(UpdateFolderPolicy, |a| folders::update_folder_policy(
            ctx, a
        )),
        Route::GetAccount => typed!(GetAccount, |a| folders::get_account(ctx, a)),
        Route::GetAccountBatch => typed!(GetAccountBatch, |a| folders::get_account_batch(ctx, a)),

        Route::GetThumbnailV2 => {
            typed_download!(GetThumbnailV2, |a| thumbnails::get_thumbnail_v2(
                ctx, a, headers
            ))
        }
        Route::GetThumbnail => typed_download!(GetThumbnail, |a| thumbnails::get_thumbnail(ctx, a)),
        Route::GetThumbnailBatch => {
            typed!(GetThumbnailBatch, |a| thumbnails::get_thumbnail_batch(
                ctx, a
            ))
        }
        Route::GetPreview => {
            typed_download!(GetPreview, |a| thumbnails::get_preview(ctx, a, headers))
        }
    }
}

/// Largest RPC body accepted; RPC arguments are small JSON documents.
const MAX_RPC_BODY: usize = 4 * 1024 * 1024;

/// Checks `Authorization: Basic base64(app_key:app_secret)` for app-auth routes.
async fn app_auth(state: &AppState, headers: &HeaderMap) -> ApiResult<cubby_store::App> {
    use base64::Engine;
    let creds = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|d| String::from_utf8(d).ok());
    let Some((key, secret)) = creds.as_deref().and_then(|c| c.split_once(':')) else {
        return Err(ApiError::BadInput(
            "Error in call to API function: this route needs HTTP Basic auth with the app key and secret.".into(),
        ));
    };
    state
        .store
        .authenticate_app(key, secret)
        .await?
        .ok_or(ApiError::Auth(AuthError::InvalidAccessToken))
}

/// Applies `Dropbox-API-Path-Root`: a single-user namespace only allows its own root.
async fn check_path_root(
    store: &Store,
    headers: &HeaderMap,
    info: &AuthInfo,
) -> ApiResult<Option<PathRoot>> {
    let Some(raw) = headers.get("dropbox-api-path-root") else {
        return Ok(None);
    };
    let v: Value = serde_json::from_slice(raw.as_bytes()).map_err(|e| {
        ApiError::BadInput(format!("Dropbox-API-Path-Root: could not decode JSON: {e}"))
    })?;
    let ns = info.account.ns.to_string();
    let root_info = RootInfo {
        tag: "user".into(),
        root_namespace_id: ns.clone(),
        home_namespace_id: ns.clone(),
    };
    match cubby_core::wire::union_tag(&v) {
        Some(("home", _)) => Ok(None),
        Some(("root", Some(o))) => match o.get("root").and_then(Value::as_str) {
            Some(r) if r == ns => Ok(None),
            _ => Err(ApiError::PathRoot(PathRootError::InvalidRoot {
                invalid_root: root_info,
            })),
        },
        Some(("namespace_id", Some(o))) => match o.get("namespace_id").and_then(Value::as_str) {
            Some(r) if r == ns => Ok(None),
            // A shared folder the caller is a member of (never through an app folder's token).
            Some(r) => match r.parse::<u64>() {
                Ok(id) if info.root.is_empty() => {
                    match store.folder_access(id, info.account.id).await? {
                        Some(access) => Ok(Some(PathRoot {
                            ns: id,
                            read_only: !access.can_write(),
                        })),
                        None => Err(ApiError::PathRoot(PathRootError::NoPermission)),
                    }
                }
                _ => Err(ApiError::PathRoot(PathRootError::NoPermission)),
            },
            None => Err(ApiError::PathRoot(PathRootError::NoPermission)),
        },
        _ => Err(ApiError::BadInput(
            "Dropbox-API-Path-Root: unknown path root".into(),
        )),
    }
}

pub(crate) use cubby_core::wire::percent_encode;

/// Decodes `application/x-www-form-urlencoded` pairs.
pub(crate) fn form_urlencoded_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                cubby_core::wire::percent_decode(k),
                cubby_core::wire::percent_decode(v),
            )
        })
        .collect()
}

/// Adds `Dropbox-API-Result` (header-safe JSON) to a download response.
pub(crate) fn api_result_header(v: &Value) -> HeaderValue {
    HeaderValue::from_str(&header_safe_json(v)).expect("header-safe JSON is visible ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_disk_is_a_507_in_words() {
        let full = cubby_store::StoreError::Io(std::io::Error::from_raw_os_error(28));
        let resp = unexpected(OpError::Internal(full)).into_response();
        assert_eq!(resp.status(), StatusCode::INSUFFICIENT_STORAGE);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&body).contains("disk is full"));
        let other = cubby_store::StoreError::Io(std::io::Error::from_raw_os_error(5));
        let resp = unexpected(OpError::Internal(other)).into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn rate_limit_shape() {
        let resp = unexpected(OpError::TooManyWrites).into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["error"],
            json!({"reason": {".tag": "too_many_write_operations"}, "retry_after": 1})
        );
    }
}
