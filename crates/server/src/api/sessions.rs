//! Upload-session routes: start, append_v2 (and v1 append), finish, start_batch,
//! finish_batch_v2 (and v1 finish_batch with its check).
//!
//! Bytes are received into blocks before any metadata changes; the store records which
//! blocks a session holds, and finishing is one metadata commit over them.

use axum::body::Body;
use axum::http::HeaderMap;
use bytes::Bytes;
use cubby_core::api::endpoint as ep;
use cubby_core::api::errors::{
    PollError, SessionFinishError, SessionLookupError, SessionStartError,
};
use cubby_core::api::types::{
    PollArg, SessionAppendArg, SessionCursor, SessionFinishArg, SessionFinishBatchArg,
    SessionFinishBatchEntry, SessionFinishBatchLaunch, SessionFinishBatchResult, SessionStart,
    SessionStartArg, SessionStartBatch, SessionStartBatchArg, Void,
};
use cubby_core::wire::union_tag;
use cubby_store::OpError;
use cubby_store::sessions::{Finish, INLINE_MAX, SessionError};
use serde_json::Value;

use crate::api::history::file_metadata;
use crate::api::transfer::{
    Refused, commit_info, content_hash_arg, drain_stream, receive_body, receive_small,
};
use crate::api::{Answer, ApiError, ApiResult, Ctx, Fail, unexpected, write_error};

/// Most sessions one start_batch or finish_batch may name.
const MAX_BATCH: usize = 1_000;

fn concurrent(ctx: &Ctx, v: &Value) -> ApiResult<bool> {
    if v.is_null() {
        return Ok(false);
    }
    match union_tag(v) {
        Some(("sequential", _)) => Ok(false),
        Some(("concurrent", _)) => Ok(true),
        _ => {
            Err(ctx.bad_input("request body: session_type: expected 'sequential' or 'concurrent'"))
        }
    }
}

/// The `UploadSessionLookupError` of a session error.
fn lookup_error(e: SessionError) -> SessionLookupError {
    use SessionLookupError as L;
    match e {
        SessionError::NotFound => L::NotFound,
        SessionError::IncorrectOffset(n) => L::IncorrectOffset { correct_offset: n },
        SessionError::Closed => L::Closed,
        SessionError::NotClosed => L::NotClosed,
        SessionError::TooLarge => L::TooLarge,
        SessionError::ConcurrentInvalidOffset => L::ConcurrentSessionInvalidOffset,
        SessionError::ConcurrentInvalidDataSize => L::ConcurrentSessionInvalidDataSize,
        SessionError::ConcurrentNotClosed => L::ConcurrentSessionNotClosed,
        SessionError::ConcurrentMissingData => L::ConcurrentSessionMissingData,
    }
}

/// The `UploadSessionFinishError` of a store error.
fn finish_error(e: OpError) -> Result<SessionFinishError, ApiError> {
    use SessionFinishError as F;
    match e {
        OpError::Session(SessionError::ConcurrentNotClosed) => Ok(F::ConcurrentSessionNotClosed),
        OpError::Session(SessionError::ConcurrentMissingData) => {
            Ok(F::ConcurrentSessionMissingData)
        }
        OpError::Session(s) => Ok(F::LookupFailed {
            lookup_failed: lookup_error(s),
        }),
        other => match write_error(&other) {
            Some(w) => Ok(F::Path { path: w }),
            None => Err(unexpected(other)),
        },
    }
}

/// Why an append failed: the session said no, or the body was refused.
enum AppendFailed {
    Session(SessionError),
    Body(Refused),
}

impl From<ApiError> for AppendFailed {
    fn from(e: ApiError) -> Self {
        AppendFailed::Body(Refused::Api(e))
    }
}

impl AppendFailed {
    /// As an `UploadSessionAppendError`.
    fn lookup(self) -> Fail<SessionLookupError> {
        match self {
            AppendFailed::Session(e) => Fail::Route(lookup_error(e)),
            AppendFailed::Body(Refused::TooLarge) => {
                Fail::Route(SessionLookupError::PayloadTooLarge)
            }
            AppendFailed::Body(Refused::HashMismatch) => {
                Fail::Route(SessionLookupError::ContentHashMismatch)
            }
            AppendFailed::Body(Refused::Api(e)) => Fail::Api(e),
        }
    }

    /// As an `UploadSessionFinishError`.
    fn finish(self) -> Fail<SessionFinishError> {
        match self {
            AppendFailed::Session(e) => Fail::Route(SessionFinishError::LookupFailed {
                lookup_failed: lookup_error(e),
            }),
            AppendFailed::Body(r) => refused(r),
        }
    }
}

/// A refused body as an `UploadSessionFinishError`.
fn refused(r: Refused) -> Fail<SessionFinishError> {
    match r {
        Refused::TooLarge => Fail::Route(SessionFinishError::PayloadTooLarge),
        Refused::HashMismatch => Fail::Route(SessionFinishError::ContentHashMismatch),
        Refused::Api(e) => Fail::Api(e),
    }
}

/// Appends a body to a session at `offset`; returns the session's length after it.
/// Errors are `UploadSessionAppendError` values (409s of append_v2). `finishing`: the append
/// of a finish, after which no append can come.
#[allow(clippy::too_many_arguments)]
async fn append(
    ctx: &Ctx,
    headers: &HeaderMap,
    body: Body,
    session_id: &str,
    offset: u64,
    close: bool,
    finishing: bool,
    content_hash: &Option<String>,
) -> Result<u64, AppendFailed> {
    let expected = content_hash_arg(ctx, content_hash)?;
    let store = ctx.store();
    let account = ctx.auth().account.id;
    let session = match store.session(session_id, account).await {
        Ok(s) => s,
        Err(OpError::Session(e)) => {
            drain_stream(&mut body.into_data_stream(), 0).await;
            return Err(AppendFailed::Session(e));
        }
        Err(e) => return Err(unexpected(e).into()),
    };
    if !session.concurrent && (session.length != offset || session.closed) {
        drain_stream(&mut body.into_data_stream(), 0).await;
        return Err(AppendFailed::Session(if session.closed {
            SessionError::Closed
        } else {
            SessionError::IncorrectOffset(session.length)
        }));
    }
    // A sequential session's bytes past its full blocks come first: its row's rest, or the
    // partial block a session from before migration 17 kept.
    let prefix = match session.tail {
        _ if session.concurrent => Bytes::new(),
        Some((hash, _)) => store
            .read_block_checked(hash)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        None if session.pending > 0 => store.session_rest(session_id).await.map_err(unexpected)?,
        None => Bytes::new(),
    };
    // The bytes past the last full block stay in the session's row while more may come;
    // after the last append they are the file's last block.
    let keep_rest = !session.concurrent && !close && !finishing;
    let received = receive_body(ctx, headers, body, expected.as_deref(), prefix, keep_rest)
        .await
        .map_err(AppendFailed::Body)?;
    let r = if session.concurrent {
        store
            .append_concurrent(
                session_id,
                account,
                offset,
                &received.blocks,
                received.size,
                close,
            )
            .await
    } else {
        store
            .append_sequential(
                session_id,
                account,
                offset,
                &received.blocks,
                received.rest,
                offset + received.size,
                close,
            )
            .await
    };
    match r {
        Ok(()) => Ok(offset + received.size),
        Err(OpError::Session(e)) => Err(AppendFailed::Session(e)),
        Err(e) => Err(unexpected(e).into()),
    }
}

pub(crate) async fn start(
    ctx: &Ctx,
    a: SessionStartArg,
    headers: &HeaderMap,
    body: Body,
) -> Answer<ep::UploadSessionStart> {
    use SessionStartError as E;
    let refused = |r: Refused| match r {
        Refused::TooLarge => Fail::Route(E::PayloadTooLarge),
        Refused::HashMismatch => Fail::Route(E::ContentHashMismatch),
        Refused::Api(e) => Fail::Api(e),
    };
    let is_concurrent = concurrent(ctx, &a.session_type)?;
    let store = ctx.store();
    let account = ctx.auth().account.id;
    if is_concurrent {
        if a.close {
            drain_stream(&mut body.into_data_stream(), 0).await;
            return Err(Fail::Route(E::ConcurrentSessionCloseNotAllowed));
        }
        let received = receive_body(ctx, headers, body, None, Bytes::new(), false)
            .await
            .map_err(refused)?;
        if received.size > 0 {
            return Err(Fail::Route(E::ConcurrentSessionDataNotAllowed));
        }
        let session_id = store
            .start_session(account, true)
            .await
            .map_err(unexpected)?;
        return Ok(SessionStart { session_id });
    }
    let expected = content_hash_arg(ctx, &a.content_hash)?;
    // A closed session of a few bytes (a small file of a batch) writes them as a small block
    // in the database, with its row: no block file (see cubby_store::sessions).
    let body = if a.close {
        match receive_small(ctx, headers, body, expected.as_deref(), INLINE_MAX)
            .await
            .map_err(refused)?
        {
            Ok(data) if !data.is_empty() => {
                let session_id = store
                    .start_inline(account, data)
                    .await
                    .map_err(unexpected)?;
                return Ok(SessionStart { session_id });
            }
            Ok(_) => Body::empty(),
            Err(body) => body,
        }
    } else {
        body
    };
    // The bytes are stored first; the session row and its blocks are then one write.
    // An open session keeps the bytes past its full blocks in its row (see
    // cubby_store::sessions); a closed one has all it will get.
    let received = receive_body(
        ctx,
        headers,
        body,
        expected.as_deref(),
        Bytes::new(),
        !a.close,
    )
    .await
    .map_err(refused)?;
    let session_id = store
        .start_with_data(
            account,
            &received.blocks,
            received.rest,
            received.size,
            a.close,
        )
        .await
        .map_err(unexpected)?;
    Ok(SessionStart { session_id })
}

pub(crate) async fn append_v2(
    ctx: &Ctx,
    a: SessionAppendArg,
    headers: &HeaderMap,
    body: Body,
) -> Answer<ep::UploadSessionAppendV2> {
    append(
        ctx,
        headers,
        body,
        &a.cursor.session_id,
        a.cursor.offset,
        a.close,
        false,
        &a.content_hash,
    )
    .await
    .map_err(AppendFailed::lookup)?;
    Ok(Void)
}

/// The older append: the cursor is the whole argument, and it cannot close the session.
pub(crate) async fn append_v1(
    ctx: &Ctx,
    cursor: SessionCursor,
    headers: &HeaderMap,
    body: Body,
) -> Answer<ep::UploadSessionAppend> {
    let a = SessionAppendArg {
        cursor,
        close: false,
        content_hash: None,
    };
    append_v2(ctx, a, headers, body).await
}

pub(crate) async fn finish(
    ctx: &Ctx,
    a: SessionFinishArg,
    headers: &HeaderMap,
    body: Body,
) -> Answer<ep::UploadSessionFinish> {
    use SessionFinishError as F;
    let store = ctx.store();
    let account = ctx.auth().account.id;
    let lookup_failed = |e: SessionError| {
        Fail::Route(F::LookupFailed {
            lookup_failed: lookup_error(e),
        })
    };
    let session = match store.session(&a.cursor.session_id, account).await {
        Ok(s) => s,
        Err(OpError::Session(e)) => {
            drain_stream(&mut body.into_data_stream(), 0).await;
            return Err(lookup_failed(e));
        }
        Err(e) => return Err(unexpected(e).into()),
    };
    // Any bytes in the body are appended first (sequential sessions only).
    let length = if session.concurrent || session.closed {
        // No more data may come: an empty body finishes at the given offset.
        let received = receive_body(ctx, headers, body, None, Bytes::new(), false)
            .await
            .map_err(refused)?;
        if received.size > 0 {
            return Err(if session.concurrent {
                Fail::Route(F::ConcurrentSessionDataNotAllowed)
            } else {
                lookup_failed(SessionError::Closed)
            });
        }
        a.cursor.offset
    } else {
        append(
            ctx,
            headers,
            body,
            &a.cursor.session_id,
            a.cursor.offset,
            false,
            true,
            &a.content_hash,
        )
        .await
        .map_err(AppendFailed::finish)?
    };
    let (ns, commit) = match commit_info(ctx, &a.commit).await? {
        Ok(c) => c,
        Err(w) => return Err(Fail::Route(F::Path { path: w })),
    };
    let entry = Finish {
        session_id: a.cursor.session_id,
        offset: length,
        commit,
    };
    let mut results = store
        .finish_sessions(ns, account, vec![entry], false)
        .await
        .map_err(unexpected)?;
    match results.pop().expect("one result per entry") {
        Ok(e) => Ok(file_metadata(ctx, &e)?),
        Err(e) => Err(Fail::Route(finish_error(e)?)),
    }
}

pub(crate) async fn start_batch(
    ctx: &Ctx,
    a: SessionStartBatchArg,
) -> Answer<ep::UploadSessionStartBatch> {
    if !(1..=MAX_BATCH as u64).contains(&a.num_sessions) {
        return Err(ctx
            .bad_input("request body: num_sessions: must be within 1..1000")
            .into());
    }
    let session_ids = ctx
        .store()
        .start_sessions(
            ctx.auth().account.id,
            concurrent(ctx, &a.session_type)?,
            a.num_sessions as u32,
        )
        .await
        .map_err(unexpected)?;
    Ok(SessionStartBatch { session_ids })
}

/// Commits up to 1,000 closed sessions in one transaction; returns the result entries.
async fn finish_batch_entries(
    ctx: &Ctx,
    a: SessionFinishBatchArg,
) -> ApiResult<SessionFinishBatchResult> {
    if a.entries.len() > MAX_BATCH {
        return Err(ctx.bad_input("request body: entries: at most 1000"));
    }
    let mut out: Vec<Option<SessionFinishBatchEntry>> = vec![None; a.entries.len()];
    // Finished a namespace at a time (the home, and shared folders mounted in it).
    let mut groups: std::collections::BTreeMap<u64, (Vec<usize>, Vec<Finish>)> = Default::default();
    for (i, e) in a.entries.into_iter().enumerate() {
        match commit_info(ctx, &e.commit).await? {
            Ok((ns, commit)) => {
                let (positions, finishes) = groups.entry(ns).or_default();
                positions.push(i);
                finishes.push(Finish {
                    session_id: e.cursor.session_id,
                    offset: e.cursor.offset,
                    commit,
                });
            }
            Err(w) => {
                out[i] = Some(SessionFinishBatchEntry::Failure {
                    failure: SessionFinishError::Path { path: w },
                })
            }
        }
    }
    for (ns, (positions, finishes)) in groups {
        let results = ctx
            .store()
            .finish_sessions(ns, ctx.auth().account.id, finishes, true)
            .await
            .map_err(unexpected)?;
        for (i, r) in positions.into_iter().zip(results) {
            out[i] = Some(match r {
                Ok(e) => SessionFinishBatchEntry::Success(file_metadata(ctx, &e)?),
                Err(e) => SessionFinishBatchEntry::Failure {
                    failure: finish_error(e)?,
                },
            });
        }
    }
    Ok(SessionFinishBatchResult {
        entries: out
            .into_iter()
            .map(|v| v.expect("every entry answered"))
            .collect(),
    })
}

pub(crate) async fn finish_batch_v2(
    ctx: &Ctx,
    a: SessionFinishBatchArg,
) -> Answer<ep::UploadSessionFinishBatchV2> {
    Ok(finish_batch_entries(ctx, a).await?)
}

/// The deprecated v1 route: the batch completes synchronously, reported as `complete`.
pub(crate) async fn finish_batch_v1(
    ctx: &Ctx,
    a: SessionFinishBatchArg,
) -> Answer<ep::UploadSessionFinishBatch> {
    Ok(SessionFinishBatchLaunch::Complete(
        finish_batch_entries(ctx, a).await?,
    ))
}

/// finish_batch never leaves a job running, so no job id is valid.
pub(crate) async fn finish_batch_check(
    _ctx: &Ctx,
    _a: PollArg,
) -> Answer<ep::UploadSessionFinishBatchCheck> {
    Err(Fail::Route(PollError::InvalidAsyncJobId))
}
