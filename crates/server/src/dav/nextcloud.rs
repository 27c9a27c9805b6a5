//! What ownCloud's and Nextcloud's desktop and phone clients need besides WebDAV: the
//! unauthenticated `status.php` and capabilities, the OCS user endpoint, revoking the app
//! password a client signed in with, and the `oc:` properties they read in a listing.
//!
//! The capabilities offer chunked uploads ("chunking NG", `chunked.rs`) for large files.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use cubby_store::Entry;
use cubby_store::meta::Kind;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::api::Ctx;

/// ownCloud's XML namespace, where the clients' properties live.
pub(crate) const OC_NS: &str = "http://owncloud.org/ns";
/// The server version the clients are told: 28 (at least 16 selects Login Flow v2, and
/// versions below 7 are refused).
const VERSION: (u32, u32, u32) = (28, 0, 0);
/// How often, in seconds, the desktop client is asked to poll for changes.
const POLL_INTERVAL: u32 = 30;

pub(super) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/status.php", get(status))
        .route("/index.php/204", any(|| async { StatusCode::NO_CONTENT }))
        .route("/ocs/v1.php/cloud/capabilities", get(capabilities))
        .route("/ocs/v2.php/cloud/capabilities", get(capabilities))
        .route("/ocs/v1.php/cloud/user", get(user))
        .route("/ocs/v2.php/cloud/user", get(user))
        .route("/ocs/v2.php/core/apppassword", any(delete_app_password))
}

/// `GET /status.php`: the first thing a client asks (it needs the key `installed`).
async fn status() -> Response {
    let (a, b, c) = VERSION;
    axum::Json(json!({
        "installed": true,
        "maintenance": false,
        "needsDbUpgrade": false,
        "version": format!("{a}.{b}.{c}.0"),
        "versionstring": format!("{a}.{b}.{c}"),
        "edition": "",
        "productname": "Cubby",
        "extendedSupport": false,
    }))
    .into_response()
}

/// An OCS answer: compact JSON (the desktop client finds the status code with a regular
/// expression), status code 100 on v1 and 200 on v2.
fn ocs(req: &Request, status: StatusCode, data: Value) -> Response {
    let v2 = req.uri().path().starts_with("/ocs/v2.php/");
    let code = match (status.is_success(), v2) {
        (true, false) => 100,
        (true, true) => 200,
        (false, _) => status.as_u16(),
    };
    let body = json!({"ocs": {
        "meta": {
            "status": if status.is_success() { "ok" } else { "failure" },
            "statuscode": code,
            "message": status.canonical_reason().unwrap_or(""),
        },
        "data": data,
    }});
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// `GET /ocs/v{1,2}.php/cloud/capabilities`, without auth.
async fn capabilities(req: Request) -> Response {
    let (a, b, c) = VERSION;
    ocs(
        &req,
        StatusCode::OK,
        json!({
            "version": {"major": a, "minor": b, "micro": c, "string": format!("{a}.{b}.{c}")},
            "capabilities": {
                "core": {"pollinterval": POLL_INTERVAL, "webdav-root": "remote.php/webdav"},
                "dav": {"chunking": "1.0"},
                "files": {"bigfilechunking": true, "undelete": false, "versioning": false},
            },
        }),
    )
}

/// `GET /ocs/v{1,2}.php/cloud/user`: who the app password belongs to (its `id` is the user
/// segment of every path the client then uses) and the space used.
async fn user(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let auth = match super::authenticate(&state, &parts).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let a = &auth.info.account;
    let used = crate::api::space_used_by(&state.store, a)
        .await
        .unwrap_or_default();
    let total = a.quota.unwrap_or_else(|| {
        state
            .store
            .free_space()
            .map_or(0, |free| used.saturating_add(free))
    });
    let relative = if total > 0 {
        (used as f64 * 10_000.0 / total as f64).round() / 100.0
    } else {
        0.0
    };
    let req = Request::from_parts(parts, axum::body::Body::empty());
    ocs(
        &req,
        StatusCode::OK,
        json!({
            "id": a.name,
            "display-name": a.name,
            "email": a.email,
            "quota": {
                "free": total.saturating_sub(used),
                "used": used,
                "total": total,
                "relative": relative,
            },
        }),
    )
}

/// `DELETE /ocs/v2.php/core/apppassword`: a client removing its account revokes the app
/// password it signed in with.
async fn delete_app_password(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let auth = match super::authenticate(&state, &parts).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let req = Request::from_parts(parts, axum::body::Body::empty());
    if req.method() != axum::http::Method::DELETE {
        return ocs(&req, StatusCode::METHOD_NOT_ALLOWED, json!([]));
    }
    match state
        .store
        .revoke_app_password(auth.info.account.id, auth.password_id)
        .await
    {
        Ok(_) => ocs(&req, StatusCode::OK, json!([])),
        Err(_) => ocs(&req, StatusCode::INTERNAL_SERVER_ERROR, json!([])),
    }
}

/// A numeric file id (`oc:fileid`, which the phone apps need as a number) of an entry id:
/// stable for the entry's life, across moves, as the entry id is.
pub(crate) fn file_id(id: &str) -> u64 {
    let d = Sha256::digest(id.as_bytes());
    // 52 bits: a number JavaScript clients read exactly.
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes")) >> 12
}

/// `oc:id` and the `OC-FileId` header: the numeric id, zero-padded, then the instance.
pub(crate) fn oc_id(id: &str) -> String {
    format!("{:016}cubby", file_id(id))
}

/// The value of an `oc:` property of an entry, as the XML element the library inserts; none
/// for the ones Cubby does not have (answered 404 in the listing).
pub(crate) fn oc_prop(ctx: &Ctx, e: &Entry, read_only: bool, name: &str) -> Option<Vec<u8>> {
    let dir = e.kind == Kind::Folder;
    let value = match name {
        "id" => oc_id(e.id.as_deref()?),
        "fileid" => file_id(e.id.as_deref()?).to_string(),
        "size" => if dir { 0 } else { e.size }.to_string(),
        "permissions" => permissions(ctx, e, read_only, dir).to_owned(),
        _ => return None,
    };
    Some(format!("<oc:{name} xmlns:oc=\"{OC_NS}\">{value}</oc:{name}>").into_bytes())
}

/// `oc:permissions` (ownCloud's letters: R share, G read, D delete, N rename, V move, W write,
/// C create files, K create folders). Read only: a read-only app password, or inside a
/// folder shared with the caller as a viewer (whose mount point they may still move or
/// remove).
fn permissions(ctx: &Ctx, e: &Entry, read_only: bool, dir: bool) -> &'static str {
    let viewer = |ns: u64| ctx.mount_of(ns).is_some_and(|m| !m.access.can_write());
    if read_only || (e.ns != 0 && e.ns != ctx.home_ns() && viewer(e.ns)) {
        return "G";
    }
    let mount_point = ctx
        .mounts_read()
        .iter()
        .find(|m| m.lower == e.path_lower && e.ns == ctx.home_ns());
    match (dir, mount_point) {
        (true, Some(m)) if !m.access.can_write() => "GDNV",
        (true, _) => "RGDNVCK",
        (false, _) => "RGDNVW",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_ids_are_stable_numbers_within_52_bits() {
        let a = super::file_id("id:abc");
        assert_eq!(a, super::file_id("id:abc"));
        assert_ne!(a, super::file_id("id:abd"));
        assert!(a < 1 << 52);
        assert!(super::oc_id("id:abc").ends_with("cubby"));
    }
}
