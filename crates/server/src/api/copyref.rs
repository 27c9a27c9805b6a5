//! `files/copy_reference/get` and `files/copy_reference/save`: content moves between
//! accounts by reference, without its bytes (the store binds a reference to a revision).

use axum::http::StatusCode;
use cubby_core::path::Pattern;
use cubby_store::Kind;
use cubby_store::copyref::SaveRefError;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiError, ApiResult, Ctx, Resolved, json_response, unexpected, write_error};

type Reply = ApiResult<axum::response::Response>;

#[derive(Deserialize)]
struct GetArg {
    path: String,
}

pub(crate) async fn get(ctx: &Ctx, arg: Value) -> Reply {
    let a: GetArg = ctx.arg(arg)?;
    let lookup = |l: &str| ApiError::Route(json!({".tag": "path", "path": {".tag": l}}));
    let entry = match ctx.resolve("path", &a.path, Pattern::ReadPath).await? {
        Resolved::Path { lower, .. } => ctx.store().entry(ctx.ns(), &lower).await?,
        Resolved::Revision(e) => Some(*e),
        Resolved::Malformed => return Err(lookup("malformed_path")),
        Resolved::NotFolder => return Err(lookup("not_folder")),
        Resolved::NotFound => None,
    };
    // The caller's own root has no id to bind to; everything else live can be referenced.
    let entry = match entry {
        Some(e) if e.kind != Kind::Deleted && e.path_lower != ctx.root_lower() => e,
        _ => return Err(lookup("not_found")),
    };
    let (reference, expires) = ctx
        .store()
        .mint_copy_ref(ctx.ns(), ctx.auth().account.id, &entry)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "metadata": ctx.metadata(&entry, true),
            "copy_reference": reference,
            "expires": cubby_core::time::format(expires),
        }),
    ))
}

#[derive(Deserialize)]
struct SaveArg {
    copy_reference: String,
    path: String,
}

pub(crate) async fn save(ctx: &Ctx, arg: Value) -> Reply {
    let a: SaveArg = ctx.arg(arg)?;
    let tag = |t: &str| ApiError::Route(json!({".tag": t}));
    let path_err = |w: Value| ApiError::Route(json!({".tag": "path", "path": w}));
    let display = match ctx.resolve("path", &a.path, Pattern::Path).await? {
        Resolved::Path { display, lower } if lower != ctx.root_lower() => display,
        Resolved::NotFound => return Err(path_err(json!({".tag": "no_write_permission"}))),
        _ => return Err(path_err(json!({".tag": "malformed_path"}))),
    };
    match ctx
        .store()
        .save_copy_ref(&a.copy_reference, ctx.ns(), &display)
        .await
    {
        Ok(e) => Ok(json_response(
            StatusCode::OK,
            &json!({"metadata": ctx.metadata(&e, true)}),
        )),
        Err(SaveRefError::Invalid) => Err(tag("invalid_copy_reference")),
        Err(SaveRefError::NoPermission) => Err(tag("no_permission")),
        Err(SaveRefError::NotFound) => Err(tag("not_found")),
        Err(SaveRefError::TooManyFiles) => Err(tag("too_many_files")),
        Err(SaveRefError::Write(e)) => Err(match write_error(&e) {
            Some(w) => path_err(w),
            None => unexpected(e),
        }),
    }
}
