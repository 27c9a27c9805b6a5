//! Upload-session routes: start, append_v2 (and v1 append), finish, start_batch,
//! finish_batch_v2 (and v1 finish_batch with its check).
//!
//! Bytes are received into blocks before any metadata changes; the store records which
//! blocks a session holds, and finishing is one metadata commit over them.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use cubby_core::wire::union_tag;
use cubby_store::OpError;
use cubby_store::sessions::{Finish, INLINE_MAX, SessionError};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::transfer::{
    CommitArg, commit_info, content_hash_arg, drain_stream, receive_body, receive_small,
};
use crate::api::{ApiError, ApiResult, Ctx, json_response, unexpected, write_error};

type Reply = ApiResult<axum::response::Response>;

/// Most sessions one start_batch or finish_batch may name.
const MAX_BATCH: usize = 1_000;

#[derive(Deserialize)]
struct Cursor {
    session_id: String,
    offset: u64,
}

#[derive(Deserialize)]
struct StartArg {
    #[serde(default)]
    close: bool,
    #[serde(default)]
    session_type: Value,
    content_hash: Option<String>,
}

#[derive(Deserialize)]
struct AppendArg {
    cursor: Cursor,
    #[serde(default)]
    close: bool,
    content_hash: Option<String>,
}

#[derive(Deserialize)]
struct FinishArg {
    cursor: Cursor,
    commit: CommitArg,
    content_hash: Option<String>,
}

#[derive(Deserialize)]
struct StartBatchArg {
    #[serde(default)]
    session_type: Value,
    num_sessions: u64,
}

#[derive(Deserialize)]
struct FinishBatchArg {
    entries: Vec<FinishArg>,
}

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

/// The `UploadSessionLookupError` value of a session error.
fn lookup_json(e: &SessionError) -> Value {
    match e {
        SessionError::NotFound => json!({".tag": "not_found"}),
        SessionError::IncorrectOffset(n) => {
            json!({".tag": "incorrect_offset", "correct_offset": n})
        }
        SessionError::Closed => json!({".tag": "closed"}),
        SessionError::NotClosed => json!({".tag": "not_closed"}),
        SessionError::TooLarge => json!({".tag": "too_large"}),
        SessionError::ConcurrentInvalidOffset => {
            json!({".tag": "concurrent_session_invalid_offset"})
        }
        SessionError::ConcurrentInvalidDataSize => {
            json!({".tag": "concurrent_session_invalid_data_size"})
        }
        SessionError::ConcurrentNotClosed => json!({".tag": "concurrent_session_not_closed"}),
        SessionError::ConcurrentMissingData => json!({".tag": "concurrent_session_missing_data"}),
    }
}

/// The `UploadSessionFinishError` of a store error.
fn finish_error(e: OpError) -> Result<Value, ApiError> {
    match e {
        OpError::Session(SessionError::ConcurrentNotClosed) => {
            Ok(json!({".tag": "concurrent_session_not_closed"}))
        }
        OpError::Session(SessionError::ConcurrentMissingData) => {
            Ok(json!({".tag": "concurrent_session_missing_data"}))
        }
        OpError::Session(s) => {
            Ok(json!({".tag": "lookup_failed", "lookup_failed": lookup_json(&s)}))
        }
        other => match write_error(&other) {
            Some(w) => Ok(json!({".tag": "path", "path": w})),
            None => Err(unexpected(other)),
        },
    }
}

/// Appends a body to a session at `offset`; returns the session's length after it.
/// Errors are `UploadSessionAppendError` values (409s of append_v2).
async fn append(
    ctx: &Ctx,
    headers: &HeaderMap,
    body: Body,
    session_id: &str,
    offset: u64,
    close: bool,
    content_hash: &Option<String>,
) -> ApiResult<Result<u64, SessionError>> {
    let expected = content_hash_arg(ctx, content_hash)?;
    let store = ctx.store();
    let account = ctx.auth().account.id;
    let session = match store.session(session_id, account).await {
        Ok(s) => s,
        Err(OpError::Session(e)) => {
            drain_stream(&mut body.into_data_stream(), 0).await;
            return Ok(Err(e));
        }
        Err(e) => return Err(unexpected(e)),
    };
    if !session.concurrent && (session.length != offset || session.closed) {
        drain_stream(&mut body.into_data_stream(), 0).await;
        return Ok(Err(if session.closed {
            SessionError::Closed
        } else {
            SessionError::IncorrectOffset(session.length)
        }));
    }
    let prefix = match session.tail {
        Some((hash, _)) if !session.concurrent => store
            .blocks
            .read_all(hash)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        _ => Bytes::new(),
    };
    let received = receive_body(ctx, headers, body, expected.as_deref(), prefix).await?;
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
                offset + received.size,
                close,
            )
            .await
    };
    match r {
        Ok(()) => Ok(Ok(offset + received.size)),
        Err(OpError::Session(e)) => Ok(Err(e)),
        Err(e) => Err(unexpected(e)),
    }
}

pub(crate) async fn start(ctx: &Ctx, arg: Value, headers: &HeaderMap, body: Body) -> Reply {
    let a: StartArg = ctx.arg(arg)?;
    let is_concurrent = concurrent(ctx, &a.session_type)?;
    let store = ctx.store();
    let account = ctx.auth().account.id;
    if is_concurrent {
        if a.close {
            drain_stream(&mut body.into_data_stream(), 0).await;
            return Err(ApiError::Route(
                json!({".tag": "concurrent_session_close_not_allowed"}),
            ));
        }
        let received = receive_body(ctx, headers, body, None, Bytes::new()).await?;
        if received.size > 0 {
            return Err(ApiError::Route(
                json!({".tag": "concurrent_session_data_not_allowed"}),
            ));
        }
        let id = store
            .start_session(account, true)
            .await
            .map_err(unexpected)?;
        return Ok(json_response(StatusCode::OK, &json!({"session_id": id})));
    }
    let expected = content_hash_arg(ctx, &a.content_hash)?;
    // A closed session of a few bytes (a small file of a batch) writes them as a small block
    // in the database, with its row: no block file (see cubby_store::sessions).
    let body = if a.close {
        match receive_small(ctx, headers, body, expected.as_deref(), INLINE_MAX).await? {
            Ok(data) if !data.is_empty() => {
                let id = store
                    .start_inline(account, data)
                    .await
                    .map_err(unexpected)?;
                return Ok(json_response(StatusCode::OK, &json!({"session_id": id})));
            }
            Ok(_) => Body::empty(),
            Err(body) => body,
        }
    } else {
        body
    };
    // The bytes are stored first; the session row and its blocks are then one write.
    let received = receive_body(ctx, headers, body, expected.as_deref(), Bytes::new()).await?;
    let id = store
        .start_with_data(account, &received.blocks, received.size, a.close)
        .await
        .map_err(unexpected)?;
    Ok(json_response(StatusCode::OK, &json!({"session_id": id})))
}

pub(crate) async fn append_v2(
    ctx: &Ctx,
    arg: Value,
    headers: &HeaderMap,
    body: Body,
    v1: bool,
) -> Reply {
    let a: AppendArg = if v1 {
        let c: Cursor = ctx.arg(arg)?;
        AppendArg {
            cursor: c,
            close: false,
            content_hash: None,
        }
    } else {
        ctx.arg(arg)?
    };
    match append(
        ctx,
        headers,
        body,
        &a.cursor.session_id,
        a.cursor.offset,
        a.close,
        &a.content_hash,
    )
    .await?
    {
        Ok(_) => Ok(json_response(StatusCode::OK, &Value::Null)),
        Err(e) => Err(ApiError::Route(lookup_json(&e))),
    }
}

pub(crate) async fn finish(ctx: &Ctx, arg: Value, headers: &HeaderMap, body: Body) -> Reply {
    let a: FinishArg = ctx.arg(arg)?;
    let store = ctx.store();
    let account = ctx.auth().account.id;
    let lookup_failed = |e: &SessionError| {
        ApiError::Route(json!({".tag": "lookup_failed", "lookup_failed": lookup_json(e)}))
    };
    let session = match store.session(&a.cursor.session_id, account).await {
        Ok(s) => s,
        Err(OpError::Session(e)) => {
            drain_stream(&mut body.into_data_stream(), 0).await;
            return Err(lookup_failed(&e));
        }
        Err(e) => return Err(unexpected(e)),
    };
    // Any bytes in the body are appended first (sequential sessions only).
    let length = if session.concurrent || session.closed {
        // No more data may come: an empty body finishes at the given offset.
        let received = receive_body(ctx, headers, body, None, Bytes::new()).await?;
        if received.size > 0 {
            return Err(if session.concurrent {
                ApiError::Route(json!({".tag": "concurrent_session_data_not_allowed"}))
            } else {
                lookup_failed(&SessionError::Closed)
            });
        }
        a.cursor.offset
    } else {
        match append(
            ctx,
            headers,
            body,
            &a.cursor.session_id,
            a.cursor.offset,
            false,
            &a.content_hash,
        )
        .await?
        {
            Ok(n) => n,
            Err(e) => return Err(lookup_failed(&e)),
        }
    };
    let commit = match commit_info(ctx, &a.commit).await? {
        Ok(c) => c,
        Err(w) => return Err(ApiError::Route(json!({".tag": "path", "path": w}))),
    };
    let entry = Finish {
        session_id: a.cursor.session_id,
        offset: length,
        commit,
    };
    let mut results = store
        .finish_sessions(ctx.ns(), account, vec![entry], false)
        .await
        .map_err(unexpected)?;
    match results.pop().expect("one result per entry") {
        Ok(e) => Ok(json_response(StatusCode::OK, &ctx.metadata(&e, false))),
        Err(e) => Err(ApiError::Route(finish_error(e)?)),
    }
}

pub(crate) async fn start_batch(ctx: &Ctx, arg: Value) -> Reply {
    let a: StartBatchArg = ctx.arg(arg)?;
    if !(1..=MAX_BATCH as u64).contains(&a.num_sessions) {
        return Err(ctx.bad_input("request body: num_sessions: must be within 1..1000"));
    }
    let ids = ctx
        .store()
        .start_sessions(
            ctx.auth().account.id,
            concurrent(ctx, &a.session_type)?,
            a.num_sessions as u32,
        )
        .await
        .map_err(unexpected)?;
    Ok(json_response(StatusCode::OK, &json!({"session_ids": ids})))
}

/// Commits up to 1,000 closed sessions in one transaction; returns the result entries.
async fn finish_batch_entries(ctx: &Ctx, arg: Value) -> ApiResult<Vec<Value>> {
    let a: FinishBatchArg = ctx.arg(arg)?;
    if a.entries.len() > MAX_BATCH {
        return Err(ctx.bad_input("request body: entries: at most 1000"));
    }
    let mut out: Vec<Option<Value>> = vec![None; a.entries.len()];
    let mut finishes = Vec::new();
    let mut positions = Vec::new();
    for (i, e) in a.entries.into_iter().enumerate() {
        match commit_info(ctx, &e.commit).await? {
            Ok(commit) => {
                positions.push(i);
                finishes.push(Finish {
                    session_id: e.cursor.session_id,
                    offset: e.cursor.offset,
                    commit,
                });
            }
            Err(w) => {
                out[i] = Some(json!({".tag": "failure", "failure": {".tag": "path", "path": w}}))
            }
        }
    }
    let results = ctx
        .store()
        .finish_sessions(ctx.ns(), ctx.auth().account.id, finishes, true)
        .await
        .map_err(unexpected)?;
    for (i, r) in positions.into_iter().zip(results) {
        out[i] = Some(match r {
            Ok(e) => {
                let mut md = ctx.metadata(&e, false);
                md[".tag"] = json!("success");
                md
            }
            Err(e) => json!({".tag": "failure", "failure": finish_error(e)?}),
        });
    }
    Ok(out
        .into_iter()
        .map(|v| v.expect("every entry answered"))
        .collect())
}

pub(crate) async fn finish_batch_v2(ctx: &Ctx, arg: Value) -> Reply {
    let entries = finish_batch_entries(ctx, arg).await?;
    Ok(json_response(StatusCode::OK, &json!({"entries": entries})))
}

/// The deprecated v1 route: the batch completes synchronously, reported as `complete`.
pub(crate) async fn finish_batch_v1(ctx: &Ctx, arg: Value) -> Reply {
    let entries = finish_batch_entries(ctx, arg).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({".tag": "complete", "entries": entries}),
    ))
}

#[derive(Deserialize)]
struct PollArg {
    #[allow(dead_code)]
    async_job_id: String,
}

/// finish_batch never leaves a job running, so no job id is valid.
pub(crate) async fn finish_batch_check(ctx: &Ctx, arg: Value) -> Reply {
    let _: PollArg = ctx.arg(arg)?;
    Err(ApiError::Route(json!({".tag": "invalid_async_job_id"})))
}
