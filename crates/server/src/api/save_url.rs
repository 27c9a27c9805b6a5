//! `files/save_url` and `files/save_url/check_job_status`: the server fetches a URL into a
//! file, as an async job.
//!
//! The job row lives in the database and the task that fetches refreshes it every
//! [`HEARTBEAT`]; a job whose server died stops being refreshed and is then reported
//! `failed` (`download_failed`), so no job is lost silently.

use std::time::Duration;

use bytes::Bytes;
use cubby_core::api::endpoint as ep;
use cubby_core::api::errors::{SaveUrlError, WriteError};
use cubby_core::api::types::{FileMetadata, Metadata, PollArg, SaveUrlArg, SaveUrlStatus};
use cubby_core::path::Pattern;
use cubby_store::jobs::JobState;
use cubby_store::meta::{Commit, WriteMode};
use cubby_store::sessions::MAX_FILE_SIZE;

use crate::api::transfer::{ReceiveError, receive_stream};
use crate::api::{Answer, ApiError, Ctx, Fail, Resolved, to_json, write_error};
use crate::fetch::{FETCH_TIMEOUT, FetchError};

/// How often a running fetch tells the database it is alive.
const HEARTBEAT: Duration = Duration::from_secs(30);

pub(crate) async fn save_url(ctx: &Ctx, a: SaveUrlArg) -> Answer<ep::SaveUrl> {
    let path_err = |w: WriteError| Fail::Route(SaveUrlError::Path { path: w });
    let (ns, display) = match ctx.resolve("path", &a.path, Pattern::Path).await? {
        Resolved::Path { ns, lower, .. } if ctx.is_top(ns, &lower) => {
            return Err(path_err(WriteError::MalformedPath));
        }
        Resolved::Path {
            read_only: true, ..
        }
        | Resolved::NotFound => return Err(path_err(WriteError::NoWritePermission)),
        Resolved::Path { ns, display, .. } => (ns, display),
        _ => return Err(path_err(WriteError::MalformedPath)),
    };
    // A URL that is not http(s), or names a forbidden address outright, fails at once;
    // everything else (DNS answers, redirects) is checked as the job fetches.
    if ctx.state.fetcher.check(&a.url).is_err() {
        return Err(Fail::Route(SaveUrlError::InvalidUrl));
    }
    let store = ctx.store().clone();
    let id = store.create_job(ctx.auth().account.id).await?;
    let job = Job {
        ctx: ctx.clone(),
        id: id.clone(),
        ns,
        display,
        url: a.url,
    };
    tokio::spawn(job.run());
    Ok(SaveUrlStatus::AsyncJobId { async_job_id: id })
}

struct Job {
    ctx: Ctx,
    id: String,
    /// The namespace `display` is a path of (the home, or a shared folder mounted there).
    ns: u64,
    display: String,
    url: String,
}

impl Job {
    async fn run(self) {
        let store = self.ctx.store().clone();
        let heartbeat = {
            let (store, id) = (store.clone(), self.id.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(HEARTBEAT).await;
                    if let Err(e) = store.touch_job(&id).await {
                        tracing::warn!(job = %id, error = %e, "job heartbeat failed");
                    }
                }
            })
        };
        let state = match self.fetch_and_commit().await {
            Ok(metadata) => JobState::Complete(to_json(&metadata).to_string()),
            Err(error) => JobState::Failed(to_json(&error).to_string()),
        };
        heartbeat.abort();
        if let Err(e) = store.finish_job(&self.id, &state).await {
            tracing::error!(job = %self.id, error = %e, "recording a save_url result failed");
        }
    }

    /// Fetches into blocks and commits; the error is a `SaveUrlError`.
    async fn fetch_and_commit(&self) -> Result<FileMetadata, SaveUrlError> {
        let failed = || SaveUrlError::DownloadFailed;
        let store = self.ctx.store();
        let fetched = tokio::time::timeout(FETCH_TIMEOUT, async {
            let resp = self.ctx.state.fetcher.open(&self.url).await?;
            let hint = resp.content_length();
            if hint.is_some_and(|n| n > MAX_FILE_SIZE) {
                return Err(FetchError::Failed("larger than the largest file".into()));
            }
            let mut stream = resp.bytes_stream();
            receive_stream(
                store,
                &mut stream,
                hint,
                None,
                Bytes::new(),
                false,
                MAX_FILE_SIZE,
            )
            .await
            .map_err(|e| {
                FetchError::Failed(match e {
                    ReceiveError::TooLarge(_) => "larger than the largest file".into(),
                    ReceiveError::HashMismatch => "content hash".into(),
                    ReceiveError::Failed(e) => format!("{e:?}"),
                })
            })
        })
        .await;
        let received = match fetched {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::info!(job = %self.id, reason = ?e, "save_url failed");
                return Err(failed());
            }
            Err(_) => {
                tracing::info!(job = %self.id, "save_url timed out");
                return Err(failed());
            }
        };
        let commit = Commit {
            path: self.display.clone(),
            mode: WriteMode::Add,
            // Dropbox renames rather than fail: "If the given path already exists, the
            // file will be renamed to avoid the conflict (e.g. myfile (1).txt)."
            autorename: true,
            strict_conflict: false,
            client_modified: None,
            size: received.size,
            blocks: received.blocks,
        };
        self.ctx.state.metrics.add_in(commit.size);
        match store.commit_file(self.ns, commit).await {
            Ok(e) => match self.ctx.metadata(&e) {
                Metadata::File(f) => Ok(f),
                other => {
                    tracing::error!(job = %self.id, ?other, "save_url committed a non-file");
                    Err(failed())
                }
            },
            Err(e) => Err(match write_error(&e) {
                Some(w) => SaveUrlError::Path { path: w },
                None => {
                    tracing::error!(job = %self.id, error = %e, "save_url commit failed");
                    failed()
                }
            }),
        }
    }
}

pub(crate) async fn check_job_status(ctx: &Ctx, a: PollArg) -> Answer<ep::SaveUrlCheckJobStatus> {
    let corrupt =
        |e: serde_json::Error| ApiError::Internal(format!("a save_url job's result: {e}"));
    match super::batch::job_state(ctx, &a.async_job_id).await? {
        JobState::InProgress => Ok(SaveUrlStatus::InProgress),
        JobState::Complete(result) => Ok(SaveUrlStatus::Complete(
            serde_json::from_str(&result).map_err(corrupt)?,
        )),
        // An empty result is a job whose server stopped refreshing it.
        JobState::Failed(result) => Ok(SaveUrlStatus::Failed {
            failed: serde_json::from_str(&result).unwrap_or(SaveUrlError::DownloadFailed),
        }),
    }
}
