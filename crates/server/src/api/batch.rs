//! Batch routes: copy_batch_v2, move_batch_v2, delete_batch and create_folder_batch, with
//! their check routes.
//!
//! A batch runs as a job: the launch answers with a job id at once, a task of this server
//! works through the entries, and the result is written to the `jobs` table, so the job
//! outlives its request and any server answers a check.

use cubby_core::api::endpoint as ep;
use cubby_core::api::errors::{CreateFolderError, PollError, RelocationBatchErrorEntry};
use cubby_core::api::types::{
    BatchResult, CreateFolderBatchArg, CreateFolderBatchEntry, DeleteBatchArg, DeleteBatchEntry,
    JobStatus, Launch, PollArg, RelocationBatchArg, RelocationBatchEntry,
};
use cubby_core::api::{Endpoint, errors::NoError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::files::{create_folder_one, delete_one, relocate_one};
use crate::api::{Answer, ApiResult, Ctx, Fail};
use cubby_store::jobs::JobState;

/// Most entries of a copy, move or delete batch, as in the spec.
const MAX_ENTRIES: usize = 1_000;

/// Most paths of a create_folder batch, as in the spec.
const MAX_FOLDERS: usize = 10_000;

fn check_len(ctx: &Ctx, n: usize, max: usize) -> ApiResult<()> {
    if n == 0 || n > max {
        return Err(ctx.bad_input(&format!(
            "request body: entries: between 1 and {max} expected, got {n}"
        )));
    }
    Ok(())
}

/// Starts a job that runs `work` and stores its entries; answers `async_job_id`.
async fn launch<E, F, Fut>(ctx: &Ctx, work: F) -> Result<Launch<BatchResult<E>>, Fail<NoError>>
where
    E: Serialize,
    F: FnOnce(Ctx) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ApiResult<Vec<E>>> + Send,
{
    let store = ctx.store().clone();
    let id = store.create_job(ctx.auth().account.id).await?;
    let job_ctx = ctx.clone();
    let job_id = id.clone();
    tokio::spawn(async move {
        let state = match work(job_ctx).await {
            Ok(entries) => JobState::Complete(
                serde_json::to_string(&BatchResult { entries }).expect("wire types serialize"),
            ),
            Err(e) => {
                tracing::error!(job = %job_id, error = ?e, "batch job failed");
                JobState::Failed(String::new())
            }
        };
        if let Err(e) = store.finish_job(&job_id, &state).await {
            tracing::error!(job = %job_id, error = %e, "recording a job's result failed");
        }
    });
    Ok(Launch::AsyncJobId { async_job_id: id })
}

/// The state of the caller's job `id`; an unknown id is `invalid_async_job_id`.
pub(crate) async fn job_state(ctx: &Ctx, id: &str) -> Result<JobState, Fail<PollError>> {
    ctx.store()
        .job(id, ctx.auth().account.id)
        .await?
        .ok_or(Fail::Route(PollError::InvalidAsyncJobId))
}

/// Answers a batch check: `in_progress`, or `complete` with the stored entries. A job that
/// failed as a whole is `internal_error`; an unknown id, or the id of another kind of job, is
/// `invalid_async_job_id`.
pub(crate) async fn check_job<P, E>(ctx: &Ctx, a: PollArg) -> Answer<P>
where
    P: Endpoint<Ok = JobStatus<BatchResult<E>>, Err = PollError>,
    E: DeserializeOwned,
{
    match job_state(ctx, &a.async_job_id).await? {
        JobState::InProgress => Ok(JobStatus::InProgress),
        JobState::Complete(result) => serde_json::from_str(&result)
            .map(JobStatus::Complete)
            .map_err(|_| Fail::Route(PollError::InvalidAsyncJobId)),
        JobState::Failed(_) => Err(Fail::Route(PollError::InternalError)),
    }
}

pub(crate) async fn relocation_batch(
    ctx: &Ctx,
    a: RelocationBatchArg,
    copy: bool,
) -> Answer<ep::CopyBatchV2> {
    check_len(ctx, a.entries.len(), MAX_ENTRIES)?;
    launch(ctx, move |ctx| async move {
        let mut out = Vec::with_capacity(a.entries.len());
        for p in &a.entries {
            out.push(match relocate_one(&ctx, p, copy, a.autorename).await? {
                Ok(e) => RelocationBatchEntry::Success {
                    success: ctx.metadata(&e),
                },
                Err(err) => RelocationBatchEntry::Failure {
                    failure: RelocationBatchErrorEntry::RelocationError {
                        relocation_error: err,
                    },
                },
            });
        }
        Ok(out)
    })
    .await
}

pub(crate) async fn delete_batch(ctx: &Ctx, a: DeleteBatchArg) -> Answer<ep::DeleteBatch> {
    check_len(ctx, a.entries.len(), MAX_ENTRIES)?;
    launch(ctx, move |ctx| async move {
        let mut out = Vec::with_capacity(a.entries.len());
        for d in &a.entries {
            out.push(match delete_one(&ctx, d).await? {
                Ok(e) => DeleteBatchEntry::Success {
                    metadata: ctx.metadata(&e),
                },
                Err(failure) => DeleteBatchEntry::Failure { failure },
            });
        }
        Ok(out)
    })
    .await
}

async fn create_folders(
    ctx: Ctx,
    paths: Vec<String>,
    autorename: bool,
) -> ApiResult<Vec<CreateFolderBatchEntry>> {
    let mut out = Vec::with_capacity(paths.len());
    for p in &paths {
        out.push(match create_folder_one(&ctx, p, autorename).await? {
            Ok(e) => CreateFolderBatchEntry::Success {
                metadata: crate::api::files::folder_metadata(&ctx, &e)?,
            },
            Err(w) => CreateFolderBatchEntry::Failure {
                failure: CreateFolderError::Path { path: w },
            },
        });
    }
    Ok(out)
}

pub(crate) async fn create_folder_batch(
    ctx: &Ctx,
    a: CreateFolderBatchArg,
) -> Answer<ep::CreateFolderBatch> {
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
    Ok(Launch::Complete(BatchResult { entries }))
}
