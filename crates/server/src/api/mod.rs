//! The Dropbox API v2 surface: one dispatcher for `/2/{route}` that applies the wire
//! conventions (route styles, `Dropbox-API-Arg`, auth, scopes, error shapes) before calling
//! the route's handler.
//!
//! Architecture Invariant: every path argument is resolved against the caller's root by
//! [`Ctx::resolve`]; handlers never build namespace paths from raw arguments.

mod batch;
mod copyref;
mod files;
pub(crate) mod history;
pub(crate) mod links;
mod save_url;
mod search;
mod sessions;
pub(crate) mod transfer;
mod users;
mod zip;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use cubby_core::path::{self as cpath, PathArg, PathError, Pattern, is_within, lower};
use cubby_core::wire::{error_summary, header_safe_json};
use cubby_store::{AuthInfo, Entry, Kind, OpError, Store};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::AppState;

/// How a route takes its argument and returns its result.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Style {
    Rpc,
    Upload,
    Download,
}

/// Who may call a route.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Auth {
    User,
    /// The app's key and secret over HTTP Basic.
    App,
    Anonymous,
}

struct RouteSpec {
    style: Style,
    auth: Auth,
    scope: Option<&'static str>,
}

/// The route table: name, style, auth and required scope, as in the Stone spec.
fn route_spec(name: &str) -> Option<RouteSpec> {
    use Style::*;
    let (style, auth, scope) = match name {
        "users/get_current_account" | "users/get_space_usage" | "check/user" => {
            (Rpc, Auth::User, Some("account_info.read"))
        }
        "files/upload"
        | "files/upload_session/start"
        | "files/upload_session/append_v2"
        | "files/upload_session/append"
        | "files/upload_session/finish" => (Upload, Auth::User, Some("files.content.write")),
        "files/upload_session/start_batch"
        | "files/upload_session/finish_batch_v2"
        | "files/upload_session/finish_batch"
        | "files/upload_session/finish_batch/check" => {
            (Rpc, Auth::User, Some("files.content.write"))
        }
        "files/download" | "files/download_zip" => {
            (Download, Auth::User, Some("files.content.read"))
        }
        "files/get_metadata"
        | "files/list_revisions"
        | "files/search_v2"
        | "files/search/continue_v2"
        | "files/list_folder"
        | "files/list_folder/continue"
        | "files/list_folder/get_latest_cursor" => (Rpc, Auth::User, Some("files.metadata.read")),
        "files/list_folder/longpoll" => (Rpc, Auth::Anonymous, None),
        "auth/token/revoke" => (Rpc, Auth::User, None),
        "check/app" => (Rpc, Auth::App, None),
        "files/restore" => (Rpc, Auth::User, Some("files.content.write")),
        "files/permanently_delete" => (Rpc, Auth::User, Some("files.permanent_delete")),
        "files/get_temporary_link" => (Rpc, Auth::User, Some("files.content.read")),
        "files/get_temporary_upload_link" => (Rpc, Auth::User, Some("files.content.write")),
        "files/copy_reference/get"
        | "files/copy_reference/save"
        | "files/save_url"
        | "files/save_url/check_job_status" => (Rpc, Auth::User, Some("files.content.write")),
        "sharing/create_shared_link_with_settings"
        | "sharing/modify_shared_link_settings"
        | "sharing/revoke_shared_link" => (Rpc, Auth::User, Some("sharing.write")),
        "sharing/list_shared_links" | "sharing/get_shared_link_metadata" => {
            (Rpc, Auth::User, Some("sharing.read"))
        }
        "sharing/get_shared_link_file" => (Download, Auth::User, Some("sharing.read")),
        "files/create_folder_v2"
        | "files/create_folder"
        | "files/delete_v2"
        | "files/delete"
        | "files/move_v2"
        | "files/move"
        | "files/copy_v2"
        | "files/copy"
        | "files/copy_batch_v2"
        | "files/copy_batch/check_v2"
        | "files/move_batch_v2"
        | "files/move_batch/check_v2"
        | "files/delete_batch"
        | "files/delete_batch/check"
        | "files/create_folder_batch"
        | "files/create_folder_batch/check" => (Rpc, Auth::User, Some("files.content.write")),
        _ => return None,
    };
    Some(RouteSpec { style, auth, scope })
}

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
    let body = state.metrics.render(
        state.store.pool_stats(),
        (
            bad.0.load(std::sync::atomic::Ordering::Relaxed),
            bad.1.load(std::sync::atomic::Ordering::Relaxed),
        ),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// An error in Dropbox's response format.
#[derive(Debug)]
pub enum ApiError {
    /// 400, plain text.
    BadInput(String),
    /// 401, `auth.AuthError`.
    Auth(Value),
    /// 409, the route's error union.
    Route(Value),
    /// 422, `common.PathRootError`.
    PathRoot(Value),
    /// 429, `auth.RateLimitError`, with `Retry-After`.
    RateLimited {
        reason: &'static str,
        retry_after: u64,
    },
    /// 500; the cause is logged, never sent.
    Internal(String),
}

impl From<cubby_store::StoreError> for ApiError {
    fn from(e: cubby_store::StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let tagged = |status: StatusCode, err: Value| {
            let dots = ".".repeat((cubby_store::random_bytes::<1>()[0] % 4) as usize);
            let body =
                json!({"error_summary": format!("{}{dots}", error_summary(&err)), "error": err});
            json_response(status, &body)
        };
        match self {
            ApiError::BadInput(msg) => (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                msg,
            )
                .into_response(),
            ApiError::Auth(e) => tagged(StatusCode::UNAUTHORIZED, e),
            ApiError::Route(e) => tagged(StatusCode::CONFLICT, e),
            ApiError::PathRoot(e) => tagged(StatusCode::UNPROCESSABLE_ENTITY, e),
            ApiError::RateLimited {
                reason,
                retry_after,
            } => {
                let body = json!({
                    "error_summary": format!("{reason}/"),
                    "error": {"reason": {".tag": reason}, "retry_after": retry_after},
                });
                let mut resp = json_response(StatusCode::TOO_MANY_REQUESTS, &body);
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                resp
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

/// A JSON response with `Content-Type: application/json` exactly, as the SDK asserts.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
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
}

impl Ctx {
    pub fn store(&self) -> &Store {
        &self.state.store
    }

    pub fn auth(&self) -> &AuthInfo {
        self.auth.as_ref().expect("route requires a user")
    }

    pub fn ns(&self) -> u64 {
        self.auth().account.ns
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
        let root = self.auth().root.clone();
        let root_lower = lower(&root);
        let ns = self.ns();
        Ok(match arg {
            PathArg::Path(rel) => Resolved::path(rel.under(&root)),
            PathArg::Ns { ns: wanted, rel } => {
                if wanted != ns {
                    Resolved::NotFound
                } else {
                    let full = rel.display().to_owned();
                    if is_within(&lower(&full), &root_lower) {
                        Resolved::path(full)
                    } else {
                        Resolved::NotFound
                    }
                }
            }
            PathArg::Id { id, rel } => match self.store().entry_by_id(ns, &id).await? {
                Some(e) if is_within(&e.path_lower, &root_lower) => {
                    if rel.is_root() {
                        Resolved::path(e.path_display)
                    } else if e.kind != Kind::Folder {
                        Resolved::NotFolder
                    } else {
                        Resolved::path(rel.under(&e.path_display))
                    }
                }
                _ => Resolved::NotFound,
            },
            PathArg::Rev(rev) => match self.store().revision_by_rev(ns, &rev).await? {
                Some(e) if is_within(&e.path_lower, &root_lower) => Resolved::Revision(Box::new(e)),
                _ => Resolved::NotFound,
            },
        })
    }

    /// Resolves a `ReadPath` to a file, or the `LookupError` to answer.
    pub async fn read_file(&self, raw: &str) -> ApiResult<Result<Entry, Value>> {
        let entry = match self.resolve("path", raw, Pattern::ReadPath).await? {
            Resolved::Path { lower, .. } => self.store().entry(self.ns(), &lower).await?,
            Resolved::Revision(e) => Some(*e),
            Resolved::Malformed => return Ok(Err(json!({".tag": "malformed_path"}))),
            Resolved::NotFolder => return Ok(Err(json!({".tag": "not_folder"}))),
            Resolved::NotFound => None,
        };
        Ok(match entry {
            Some(e) if e.kind == Kind::File => Ok(e),
            Some(e) if e.kind == Kind::Folder => Err(json!({".tag": "not_file"})),
            _ => Err(json!({".tag": "not_found"})),
        })
    }

    /// Metadata JSON of an entry, paths relative to the caller's root.
    pub fn metadata(&self, e: &Entry, tagged: bool) -> Value {
        metadata_json(&self.auth().root, e, tagged)
    }
}

/// Metadata JSON of an entry relative to `root` (a display path).
pub(crate) fn metadata_json(root: &str, e: &Entry, tagged: bool) -> Value {
    let root_lower_len = lower(root).len();
    let root_chars = root.chars().count();
    let path_lower = e
        .path_lower
        .get(root_lower_len..)
        .unwrap_or(&e.path_lower)
        .to_owned();
    let path_display: String = e.path_display.chars().skip(root_chars).collect();
    let mut v = json!({
        "name": e.name(),
        "path_lower": path_lower,
        "path_display": path_display,
    });
    let o = v.as_object_mut().expect("object");
    let tag = match e.kind {
        Kind::File => {
            o.insert("id".into(), json!(e.id));
            o.insert(
                "client_modified".into(),
                json!(cubby_core::time::format(e.client_modified)),
            );
            o.insert(
                "server_modified".into(),
                json!(cubby_core::time::format(e.server_modified)),
            );
            o.insert("rev".into(), json!(e.rev));
            o.insert("size".into(), json!(e.size));
            o.insert("is_downloadable".into(), json!(true));
            o.insert("content_hash".into(), json!(e.content_hash));
            "file"
        }
        Kind::Folder => {
            o.insert("id".into(), json!(e.id));
            "folder"
        }
        Kind::Deleted => "deleted",
    };
    if tagged {
        o.insert(".tag".into(), json!(tag));
    }
    v
}

/// The outcome of resolving a path argument.
pub(crate) enum Resolved {
    /// A full namespace path (display form; it may or may not exist).
    Path {
        display: String,
        lower: String,
    },
    /// A specific file revision (`rev:` form).
    Revision(Box<Entry>),
    Malformed,
    NotFound,
    NotFolder,
}

impl Resolved {
    fn path(display: String) -> Self {
        Resolved::Path {
            lower: lower(&display),
            display,
        }
    }
}

/// `LookupError` JSON for a lookup outcome or store error.
pub(crate) fn lookup_error(e: &OpError) -> Option<Value> {
    Some(match e {
        OpError::NotFound => json!({".tag": "not_found"}),
        OpError::NotFile => json!({".tag": "not_file"}),
        OpError::NotFolder => json!({".tag": "not_folder"}),
        _ => return None,
    })
}

/// `WriteError` JSON for a store error.
pub(crate) fn write_error(e: &OpError) -> Option<Value> {
    use cubby_store::WriteConflict;
    Some(match e {
        OpError::Conflict(c) => {
            let c = match c {
                WriteConflict::File => "file",
                WriteConflict::Folder => "folder",
                WriteConflict::FileAncestor => "file_ancestor",
            };
            json!({".tag": "conflict", "conflict": {".tag": c}})
        }
        OpError::DisallowedName => json!({".tag": "disallowed_name"}),
        OpError::InsufficientSpace => json!({".tag": "insufficient_space"}),
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
        other => ApiError::Internal(other.to_string()),
    }
}

// ---------------------------------------------------------------------------------------
// Dispatch.

async fn dispatch(
    State(state): State<Arc<AppState>>,
    Path(route): Path<String>,
    method: Method,
    RawQuery(query): RawQuery,
    request_id: Option<axum::Extension<crate::access::RequestId>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = std::time::Instant::now();
    let label = ROUTE_NAMES
        .iter()
        .find(|n| **n == route)
        .copied()
        .unwrap_or("unknown");
    let mut account = None;
    let mut resp = match handle(
        state.clone(),
        &route,
        &method,
        query.as_deref(),
        &headers,
        body,
        &mut account,
    )
    .await
    {
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
    let upload = route_spec(label).is_some_and(|s| s.style == Style::Upload);
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

async fn handle(
    state: Arc<AppState>,
    route: &str,
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
    account: &mut Option<String>,
) -> ApiResult<Response> {
    let Some((name, spec)) = ROUTE_NAMES
        .iter()
        .find(|n| **n == route)
        .and_then(|n| Some((*n, route_spec(n)?)))
    else {
        return Err(ApiError::BadInput(format!(
            "Unknown API function: \"{route}\""
        )));
    };
    let bad =
        |m: String| ApiError::BadInput(format!("Error in call to API function \"{name}\": {m}"));
    let get_allowed = spec.style == Style::Download && *method == Method::GET;
    if *method != Method::POST && !get_allowed {
        return Err(bad(format!("method {method} not allowed")));
    }
    if spec.style == Style::Rpc
        && let Some(ct) = headers.get(header::CONTENT_TYPE)
        && !rpc_content_type(ct.as_bytes())
    {
        // Read the body anyway, so the connection stays usable.
        let _ = axum::body::to_bytes(body, MAX_RPC_BODY).await;
        return Err(bad(format!(
            "Bad HTTP \"Content-Type\" header: \"{}\".  Expecting one of \"application/json\", \
             \"application/json; charset=utf-8\", \"text/plain; charset=dropbox-cors-hack\".",
            String::from_utf8_lossy(ct.as_bytes())
        )));
    }
    let params: Vec<(String, String)> = query.map(form_urlencoded_pairs).unwrap_or_default();
    let param = |k: &str| {
        params
            .iter()
            .find(|(pk, _)| pk == k)
            .map(|(_, v)| v.clone())
    };

    // Authentication, and a content route's argument (from its header). When either is
    // refused, an upload's body is read and dropped first: closing a connection with unread
    // data resets it, and the client could lose the error response.
    let early = async {
        let auth = match spec.auth {
            Auth::Anonymous => None,
            Auth::App => {
                app_auth(&state, headers).await?;
                None
            }
            Auth::User => {
                let raw = match headers.get(header::AUTHORIZATION) {
                    Some(v) => Some(
                        v.to_str()
                            .map_err(|_| bad("Authorization header is not ASCII".into()))?
                            .to_owned(),
                    ),
                    None => param("authorization"),
                };
                let Some(raw) = raw else {
                    return Err(bad(
                        "Must provide HTTP header \"Authorization\" or URL parameter \"authorization\".".into(),
                    ));
                };
                let token = raw
                    .strip_prefix("Bearer ")
                    .or_else(|| raw.strip_prefix("bearer "))
                    .ok_or_else(|| bad("Invalid authorization value in HTTP header \"Authorization\": expected \"Bearer <token>\".".into()))?
                    .trim();
                let info = state.store.authenticate(token).await?;
                let Some(info) = info else {
                    return Err(ApiError::Auth(json!({".tag": "invalid_access_token"})));
                };
                if info.expired {
                    return Err(ApiError::Auth(json!({".tag": "expired_access_token"})));
                }
                if let Some(scope) = spec.scope
                    && !info.scopes.iter().any(|s| s == scope)
                {
                    return Err(ApiError::Auth(
                        json!({".tag": "missing_scope", "required_scope": scope}),
                    ));
                }
                check_path_root(headers, &info)?;
                Some(info)
            }
        };
        let header_arg = if spec.style == Style::Rpc {
            None
        } else {
            let raw = match headers.get("dropbox-api-arg") {
                Some(v) => String::from_utf8(v.as_bytes().to_vec())
                    .map_err(|_| bad("HTTP header \"Dropbox-API-Arg\" is not UTF-8".into()))?,
                None => param("arg").unwrap_or_default(),
            };
            let v = if raw.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&raw).map_err(|e| {
                    bad(format!(
                        "HTTP header \"Dropbox-API-Arg\": could not decode input as JSON: {e}"
                    ))
                })?
            };
            Some(v)
        };
        Ok::<_, ApiError>((auth, header_arg))
    }
    .await;
    let (auth, header_arg) = match early {
        Ok(x) => {
            *account = x.0.as_ref().map(|a| a.account.account_id.clone());
            x
        }
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

    // The argument.
    let (arg, body) = match header_arg {
        Some(v) => (v, Some(body)),
        None => {
            let bytes = axum::body::to_bytes(body, MAX_RPC_BODY)
                .await
                .map_err(|e| bad(format!("request body: {e}")))?;
            let v = if bytes.iter().all(u8::is_ascii_whitespace) {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).map_err(|e| {
                    bad(format!("request body: could not decode input as JSON: {e}"))
                })?
            };
            (v, None)
        }
    };

    let ctx = Ctx {
        state,
        route: name,
        auth,
    };
    match name {
        "users/get_current_account" => users::get_current_account(&ctx).await,
        "users/get_space_usage" => users::get_space_usage(&ctx).await,
        "check/user" | "check/app" => users::check_user(&ctx, arg).await,
        "auth/token/revoke" => users::revoke(&ctx).await,
        "files/upload" => transfer::upload(&ctx, arg, headers, body.expect("upload body")).await,
        "files/download" => transfer::download(&ctx, arg, headers).await,
        "files/download_zip" => zip::download_zip(&ctx, arg).await,
        "files/upload_session/start" => {
            sessions::start(&ctx, arg, headers, body.expect("upload body")).await
        }
        "files/upload_session/append_v2" => {
            sessions::append_v2(&ctx, arg, headers, body.expect("upload body"), false).await
        }
        "files/upload_session/append" => {
            sessions::append_v2(&ctx, arg, headers, body.expect("upload body"), true).await
        }
        "files/upload_session/finish" => {
            sessions::finish(&ctx, arg, headers, body.expect("upload body")).await
        }
        "files/upload_session/start_batch" => sessions::start_batch(&ctx, arg).await,
        "files/upload_session/finish_batch_v2" => sessions::finish_batch_v2(&ctx, arg).await,
        "files/upload_session/finish_batch" => sessions::finish_batch_v1(&ctx, arg).await,
        "files/upload_session/finish_batch/check" => sessions::finish_batch_check(&ctx, arg).await,
        "files/get_metadata" => files::get_metadata(&ctx, arg).await,
        "files/list_revisions" => history::list_revisions(&ctx, arg).await,
        "files/search_v2" => search::search(&ctx, arg).await,
        "files/search/continue_v2" => search::search_continue(&ctx, arg).await,
        "files/restore" => history::restore(&ctx, arg).await,
        "files/permanently_delete" => history::permanently_delete(&ctx, arg).await,
        "files/get_temporary_link" => history::get_temporary_link(&ctx, arg, headers).await,
        "files/get_temporary_upload_link" => {
            history::get_temporary_upload_link(&ctx, arg, headers).await
        }
        "files/copy_reference/get" => copyref::get(&ctx, arg).await,
        "files/copy_reference/save" => copyref::save(&ctx, arg).await,
        "files/save_url" => save_url::save_url(&ctx, arg).await,
        "files/save_url/check_job_status" => save_url::check_job_status(&ctx, arg).await,
        "sharing/create_shared_link_with_settings" => links::create(&ctx, arg, headers).await,
        "sharing/list_shared_links" => links::list(&ctx, arg, headers).await,
        "sharing/modify_shared_link_settings" => links::modify(&ctx, arg, headers).await,
        "sharing/revoke_shared_link" => links::revoke(&ctx, arg).await,
        "sharing/get_shared_link_metadata" => links::get_metadata(&ctx, arg, headers).await,
        "sharing/get_shared_link_file" => links::get_file(&ctx, arg, headers).await,
        "files/list_folder" => files::list_folder(&ctx, arg).await,
        "files/list_folder/continue" => files::list_folder_continue(&ctx, arg).await,
        "files/list_folder/get_latest_cursor" => files::get_latest_cursor(&ctx, arg).await,
        "files/list_folder/longpoll" => files::longpoll(&ctx, arg).await,
        "files/create_folder_v2" => files::create_folder(&ctx, arg, true).await,
        "files/create_folder" => files::create_folder(&ctx, arg, false).await,
        "files/delete_v2" => files::delete(&ctx, arg, true).await,
        "files/delete" => files::delete(&ctx, arg, false).await,
        "files/move_v2" => files::relocate(&ctx, arg, false, true).await,
        "files/move" => files::relocate(&ctx, arg, false, false).await,
        "files/copy_v2" => files::relocate(&ctx, arg, true, true).await,
        "files/copy" => files::relocate(&ctx, arg, true, false).await,
        "files/copy_batch_v2" => batch::relocation_batch(&ctx, arg, true).await,
        "files/move_batch_v2" => batch::relocation_batch(&ctx, arg, false).await,
        "files/delete_batch" => batch::delete_batch(&ctx, arg).await,
        "files/create_folder_batch" => batch::create_folder_batch(&ctx, arg).await,
        "files/copy_batch/check_v2"
        | "files/move_batch/check_v2"
        | "files/delete_batch/check"
        | "files/create_folder_batch/check" => batch::check_job(&ctx, arg).await,
        _ => Err(ApiError::Internal(format!("route {name} has no handler"))),
    }
}

/// Every route name, so the dispatcher can hand out `&'static str`.
const ROUTE_NAMES: &[&str] = &[
    "users/get_current_account",
    "users/get_space_usage",
    "check/user",
    "check/app",
    "auth/token/revoke",
    "files/upload",
    "files/upload_session/start",
    "files/upload_session/append_v2",
    "files/upload_session/append",
    "files/upload_session/finish",
    "files/upload_session/start_batch",
    "files/upload_session/finish_batch_v2",
    "files/upload_session/finish_batch",
    "files/upload_session/finish_batch/check",
    "files/download",
    "files/download_zip",
    "files/get_metadata",
    "files/list_revisions",
    "files/search_v2",
    "files/search/continue_v2",
    "files/restore",
    "files/permanently_delete",
    "files/get_temporary_link",
    "files/get_temporary_upload_link",
    "files/copy_reference/get",
    "files/copy_reference/save",
    "files/save_url",
    "files/save_url/check_job_status",
    "files/list_folder",
    "files/list_folder/continue",
    "files/list_folder/get_latest_cursor",
    "files/list_folder/longpoll",
    "sharing/create_shared_link_with_settings",
    "sharing/list_shared_links",
    "sharing/modify_shared_link_settings",
    "sharing/revoke_shared_link",
    "sharing/get_shared_link_metadata",
    "sharing/get_shared_link_file",
    "files/create_folder_v2",
    "files/create_folder",
    "files/delete_v2",
    "files/delete",
    "files/move_v2",
    "files/move",
    "files/copy_v2",
    "files/copy",
    "files/copy_batch_v2",
    "files/copy_batch/check_v2",
    "files/move_batch_v2",
    "files/move_batch/check_v2",
    "files/delete_batch",
    "files/delete_batch/check",
    "files/create_folder_batch",
    "files/create_folder_batch/check",
];

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
        .ok_or_else(|| ApiError::Auth(json!({".tag": "invalid_access_token"})))
}

/// Applies `Dropbox-API-Path-Root`: a single-user namespace only allows its own root.
fn check_path_root(headers: &HeaderMap, info: &AuthInfo) -> ApiResult<()> {
    let Some(raw) = headers.get("dropbox-api-path-root") else {
        return Ok(());
    };
    let v: Value = serde_json::from_slice(raw.as_bytes()).map_err(|e| {
        ApiError::BadInput(format!("Dropbox-API-Path-Root: could not decode JSON: {e}"))
    })?;
    let ns = info.account.ns.to_string();
    let root_info = json!({".tag": "user", "root_namespace_id": ns, "home_namespace_id": ns});
    match cubby_core::wire::union_tag(&v) {
        Some(("home", _)) => Ok(()),
        Some(("root", Some(o))) => match o.get("root").and_then(Value::as_str) {
            Some(r) if r == ns => Ok(()),
            _ => Err(ApiError::PathRoot(
                json!({".tag": "invalid_root", "invalid_root": root_info}),
            )),
        },
        Some(("namespace_id", Some(o))) => match o.get("namespace_id").and_then(Value::as_str) {
            Some(r) if r == ns => Ok(()),
            _ => Err(ApiError::PathRoot(json!({".tag": "no_permission"}))),
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
