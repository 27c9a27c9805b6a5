//! Batch routes: copy_batch_v2, move_batch_v2, delete_batch and create_folder_batch, with
//! their check routes.
//!
//! A batch runs as a job: the launch answers with a job id at once, a task of this server
//! works through the entries, and the result is written to the `jobs` table, so the job
//! outlives its request and any server answers a check.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::files::{create_folder_one, delete_one, relocate_one};
use crate::api::{ApiError, ApiResult, Ctx, json_response, metadata_json, to_json};
use cubby_core::api::types::{DeleteArg, RelocationPath};
use cubby_store::jobs::JobState;

type Reply = ApiResult<axum::response::Response>;

/// Most entries of a copy, move or delete batch, as in the spec.
const MAX_ENTRIES: usize = 1_000;

/// Most paths of a create_folder batch, as in the spec.
const MAX_FOLDERS: usize = 10_000;

#[derive(Deserialize)]
struct RelocationBatchArg {
    entries: Vec<RelocationPath>,
    #[serde(default)]
    autorename: bool,
}

#[derive(Deserialize)]
struct DeleteBatchArg {
    entries: Vec<DeleteArg>,
}

#[derive(Deserialize)]
struct CreateFolderBatchArg {
    paths: Vec<String>,
    #[serde(default)]
    autorename: bool,
    #[serde(default)]
    force_async: bool,
}

#[derive(Deserialize)]
struct PollArg {
    async_job_id: String,
}

fn check_len(ctx: &Ctx, n: usize, max: usize) -> ApiResult<()> {
    if n == 0 || n > max {
        return Err(ctx.bad_input(&format!(
            "request body: entries: between 1 and {max} expected, got {n}"
        )));
    }
    Ok(())
}

/// Starts a job that runs `work` and stores its entries; answers `async_job_id`.
async fn launch<F, Fut>(ctx: &Ctx, work: F) -> Reply
where
    F: FnOnce(Ctx) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ApiResult<Vec<Value>>> + Send,
{
    let store = ctx.store().clone();
    let id = store.create_job(ctx.auth().account.id).await?;
    let job_ctx = ctx.clone();
    let job_id = id.clone();
    tokio::spawn(async move {
        let state = match work(job_ctx).await {
            Ok(entries) => JobState::Complete(json!({"entries": entries}).to_string()),
            Err(e) => {
                tracing::error!(job = %job_id, error = ?e, "batch job failed");
                JobState::Failed(String::new())
            }
        };
        if let Err(e) = store.finish_job(&job_id, &state).await {
            tracing::error!(job = %job_id, error = %e, "recording a job's result failed");
        }
    });
    Ok(json_response(
        axum::http::StatusCode::OK,
        &json!({".tag": "async_job_id", "async_job_id": id}),
    ))
}

/// Answers a check: `in_progress`, or `complete` with the stored entries flattened in.
pub(crate) async fn check_job(ctx: &Ctx, arg: Value) -> Reply {
    poll(ctx, arg, |_| {
        Err(ApiError::Route(json!({".tag": "internal_error"})))
    })
    .await
}

/// Answers a job check: `in_progress`, `complete` with the stored result flattened in, an
/// unknown id as `invalid_async_job_id`, and a failed job as `failed` says (it gets the
/// stored error, empty for a job whose server stopped refreshing it).
pub(crate) async fn poll(
    ctx: &Ctx,
    arg: Value,
    failed: impl FnOnce(&str) -> ApiResult<Value>,
) -> Reply {
    let a: PollArg = ctx.arg(arg)?;
    let body = match ctx
        .store()
        .job(&a.async_job_id, ctx.auth().account.id)
        .await?
    {
        None => return Err(ApiError::Route(json!({".tag": "invalid_async_job_id"}))),
        Some(JobState::InProgress) => json!({".tag": "in_progress"}),
        Some(JobState::Complete(result)) => {
            let mut v: Value =
                serde_json::from_str(&result).map_err(|e| ApiError::Internal(e.to_string()))?;
            v[".tag"] = json!("complete");
            v
        }
        Some(JobState::Failed(result)) => failed(&result)?,
    };
    Ok(json_response(axum::http::StatusCode::OK, &body))
}

pub(crate) async fn relocation_batch(ctx: &Ctx, arg: Value, copy: bool) -> Reply {
    let a: RelocationBatchArg = ctx.arg(arg)?;
    check_len(ctx, a.entries.len(), MAX_ENTRIES)?;
    launch(ctx, move |ctx| async move {
        let mut out = Vec::with_capacity(a.entries.len());
        for p in &a.entries {
            out.push(match relocate_one(&ctx, p, copy, a.autorename).await? {
                Ok(e) => json!({".tag": "success", "success": to_json(&ctx.metadata(&e))}),
                Err(err) => json!({".tag": "failure", "failure": {".tag": "relocation_error", "relocation_error": to_json(&err)}}),
            });
        }
        Ok(out)
    })
    .await
}

pub(crate) async fn delete_batch(ctx: &Ctx, arg: Value) -> Reply {
    let a: DeleteBatchArg = ctx.arg(arg)?;
    check_len(ctx, a.entries.len(), MAX_ENTRIES)?;
    launch(ctx, move |ctx| async move {
        let mut out = Vec::with_capacity(a.entries.len());
        for d in &a.entries {
            out.push(match delete_one(&ctx, d).await? {
                Ok(e) => json!({".tag": "success", "metadata": to_json(&ctx.metadata(&e))}),
                Err(err) => json!({".tag": "failure", "failure": to_json(&err)}),
            });
        }
        Ok(out)
    })
    .await
}

async fn create_folders(ctx: Ctx, paths: Vec<String>, autorename: bool) -> ApiResult<Vec<Value>> {
    let mut out = Vec::with_capacity(paths.len());
    for p in &paths {
        out.push(match create_folder_one(&ctx, p, autorename).await? {
            Ok(e) => {
                json!({".tag": "success", "metadata": metadata_json(&ctx.auth().root, &e, false)})
            }
            Err(w) => json!({".tag": "failure", "failure": {".tag": "path", "path": to_json(&w)}}),
        });
    }
    Ok(out)
}

pub(crate) async fn create_folder_batch(ctx: &Ctx, arg: Value) -> Reply {
    let a: CreateFolderBatchArg = ctx.arg(arg)?;
    check_len(ctx, a.paths.len(), MAX_FOLDERS)?;
    // Duplicates (compared case-insensitively) count once.
    let mut seen = std::collections::HashSet::new();
    let paths: Vec<String> = a
        .paths
        .into_iter()
        .filter(|p| seen.insert(cubby_core::path::lower(p)))
        .collect();
    if a.force_async {
        let autorename = a.autorename;
        return launch(ctx, move |ctx| create_folders(ctx, paths, autorename)).await;
    }
    let entries = create_folders(ctx.clone(), paths, a.autorename).await?;
    Ok(json_response(
        axum::http::StatusCode::OK,
        &json!({".tag": "complete", "entries": entries}),
    ))
}
