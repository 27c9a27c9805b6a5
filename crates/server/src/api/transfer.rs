//! Content routes: files/upload (streamed into blocks) and files/download (streamed from
//! blocks, with Range and ETag).
//!
//! Architecture Invariant: a request body is never held whole. Memory per upload is bounded
//! by `(BLOCKS_IN_FLIGHT + 1) × BLOCK_SIZE`; per download by `READS_IN_FLIGHT × BLOCK_SIZE`.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use cubby_core::hash::{BLOCK_SIZE, BlockHash, block_hash, content_hash_of_blocks, parse_hash};
use cubby_core::path::Pattern;
use cubby_core::wire::union_tag;
use cubby_store::Store;
use cubby_store::meta::{Commit, WriteMode};
use futures_util::stream::{FuturesOrdered, StreamExt};
use serde_json::Value;

use cubby_core::api::endpoint as ep;
use cubby_core::api::errors::{DownloadError, UploadError, WriteConflictError, WriteError};
use cubby_core::api::types::{DownloadArg, FileMetadata, UploadArg};

use crate::api::{
    Answer, ApiError, ApiResult, Ctx, Fail, Resolved, api_result_header, unexpected, write_error,
};

/// Largest body of one upload request, as Dropbox limits it (150 MiB).
pub const MAX_UPLOAD_REQUEST: u64 = 150 * 1024 * 1024;

/// Blocks being hashed and written while the next one is received.
pub const BLOCKS_IN_FLIGHT: usize = 4;

/// How much of an oversized body is read and discarded so that the client, still sending,
/// receives the `payload_too_large` answer instead of a reset connection.
const MAX_DRAIN: u64 = 2 * MAX_UPLOAD_REQUEST;

/// Blocks read ahead of the socket on a download.
pub const READS_IN_FLIGHT: usize = 2;

type Reply = ApiResult<Response>;

/// Parses Stone's `WriteMode`: `"add"`, `{".tag":"overwrite"}`, `{".tag":"update","update":rev}`.
pub(crate) fn write_mode(ctx: &Ctx, v: &Value) -> ApiResult<WriteMode> {
    if v.is_null() {
        return Ok(WriteMode::Add);
    }
    let bad = || ctx.bad_input("request body: mode: expected 'add', 'overwrite' or 'update'");
    match union_tag(v).ok_or_else(bad)? {
        ("add", _) => Ok(WriteMode::Add),
        ("overwrite", _) => Ok(WriteMode::Overwrite),
        ("update", Some(o)) => {
            let rev = o.get("update").and_then(Value::as_str).ok_or_else(bad)?;
            if !cubby_core::ids::is_rev(rev) {
                return Err(ctx.bad_input(&format!(
                    "request body: mode: update: '{rev}' did not match pattern"
                )));
            }
            Ok(WriteMode::Update(rev.to_owned()))
        }
        _ => Err(bad()),
    }
}

/// A body received into durable blocks.
pub(crate) struct Received {
    /// Blocks covering the prefix and then the body: all 4 MiB but possibly the last, or
    /// all 4 MiB when the rest was kept.
    pub blocks: Vec<BlockHash>,
    /// With `keep_rest`: the bytes past the last full block, not written anywhere (a
    /// sequential session keeps them in its row).
    pub rest: Bytes,
    /// Bytes of the body alone.
    pub size: u64,
}

pub(crate) enum ReceiveError {
    /// More than the limit arrived (how much had been read).
    TooLarge(u64),
    HashMismatch,
    Failed(ApiError),
}

/// Streams a request body into 4 MiB blocks, hashing and writing up to `BLOCKS_IN_FLIGHT`
/// blocks while the next arrives. With `expect_hash`, a body of one block is checked before
/// anything is written; a longer body is checked before the caller commits metadata.
///
/// `prefix` (the bytes an upload session keeps past its full blocks) is put before the body;
/// the `content_hash` is then checked over the body alone. With `keep_rest` the bytes past
/// the last full block are handed back in [`Received::rest`] instead of written as a block.
pub(crate) async fn receive(
    store: &Store,
    body: Body,
    size_hint: Option<u64>,
    expect_hash: Option<&str>,
    prefix: Bytes,
    keep_rest: bool,
) -> Result<Received, ReceiveError> {
    let mut stream = body.into_data_stream();
    let r = receive_stream(
        store,
        &mut stream,
        size_hint,
        expect_hash,
        prefix,
        keep_rest,
        MAX_UPLOAD_REQUEST,
    )
    .await;
    if let Err(ReceiveError::TooLarge(seen)) = r {
        drain_stream(&mut stream, seen).await;
    }
    r
}

/// [`receive`] over any stream of byte chunks (a request body, a fetched response), with a
/// limit on the bytes it takes.
pub(crate) async fn receive_stream<S, E>(
    store: &Store,
    stream: &mut S,
    size_hint: Option<u64>,
    expect_hash: Option<&str>,
    prefix: Bytes,
    keep_rest: bool,
    limit: u64,
) -> Result<Received, ReceiveError>
where
    S: futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let initial =
        (prefix.len() as u64 + size_hint.unwrap_or(64 * 1024)).min(BLOCK_SIZE as u64) as usize;
    // Whole blocks are received into aligned buffers, which the block store writes without
    // a copy (see `cubby_store::blocks::block_buffer`).
    let mut buf = if initial == BLOCK_SIZE {
        cubby_store::blocks::block_buffer()
    } else {
        BytesMut::with_capacity(initial)
    };
    let has_prefix = !prefix.is_empty();
    buf.extend_from_slice(&prefix);
    let mut body_hasher =
        (has_prefix && expect_hash.is_some()).then(cubby_core::hash::ContentHasher::new);
    let mut pending = FuturesOrdered::new();
    let mut blocks = Vec::new();
    let mut size: u64 = 0;
    let failed = |e: cubby_store::StoreError| ReceiveError::Failed(ApiError::from(e));
    while let Some(frame) = stream.next().await {
        let chunk = frame
            .map_err(|e| ReceiveError::Failed(ApiError::BadInput(format!("request body: {e}"))))?;
        size += chunk.len() as u64;
        if let Some(h) = body_hasher.as_mut() {
            h.update(&chunk);
        }
        if size > limit {
            return Err(ReceiveError::TooLarge(size));
        }
        let mut rest: &[u8] = &chunk;
        while !rest.is_empty() {
            let take = (BLOCK_SIZE - buf.len()).min(rest.len());
            buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if buf.len() == BLOCK_SIZE {
                let block =
                    std::mem::replace(&mut buf, cubby_store::blocks::block_buffer()).freeze();
                pending.push_back(store.blocks.put(block));
                if pending.len() >= BLOCKS_IN_FLIGHT {
                    blocks.push(
                        pending
                            .next()
                            .await
                            .expect("pending block")
                            .map_err(failed)?,
                    );
                }
            }
        }
    }
    let mut rest = Bytes::new();
    if !buf.is_empty() && keep_rest {
        rest = buf.freeze();
    } else if !buf.is_empty() {
        let last: Bytes = buf.freeze();
        if blocks.is_empty()
            && pending.is_empty()
            && !has_prefix
            && let Some(expected) = expect_hash
        {
            // One block: verify before writing anything.
            let digest = block_hash(&last);
            if content_hash_of_blocks([&digest]) != expected {
                return Err(ReceiveError::HashMismatch);
            }
        }
        pending.push_back(store.blocks.put(last));
    }
    while let Some(h) = pending.next().await {
        blocks.push(h.map_err(failed)?);
    }
    if let Some(expected) = expect_hash {
        let got = match body_hasher {
            Some(h) => h.finish(),
            // Without a prefix the blocks start with the body: their hashes (and the kept
            // rest's, hashed once here) are the content hash's, with no second pass.
            None if rest.is_empty() => content_hash_of_blocks(&blocks),
            None => content_hash_of_blocks(blocks.iter().chain([&block_hash(&rest)])),
        };
        if got != expected {
            return Err(ReceiveError::HashMismatch);
        }
    }
    store.blocks.sync(&blocks).await.map_err(failed)?;
    Ok(Received { blocks, rest, size })
}

/// Reads a body whose `Content-Length` is at most `limit` (at most a block) into memory,
/// checking `content_hash` over it; `None` if the header is missing or larger, and the body
/// must then be streamed with [`receive_body`].
pub(crate) async fn receive_small(
    ctx: &Ctx,
    headers: &HeaderMap,
    body: Body,
    expected: Option<&str>,
    limit: u64,
) -> Result<Result<Bytes, Body>, Refused> {
    let limit = limit.min(BLOCK_SIZE as u64);
    if content_length(headers).is_none_or(|n| n > limit) {
        return Ok(Err(body));
    }
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    while let Some(frame) = stream.next().await {
        let chunk = frame.map_err(|e| ApiError::BadInput(format!("request body: {e}")))?;
        if (buf.len() + chunk.len()) as u64 > limit {
            // The body is longer than it said; hyper does not let this happen.
            return Err(
                ApiError::BadInput("request body: longer than Content-Length".into()).into(),
            );
        }
        buf.extend_from_slice(&chunk);
    }
    let data = buf.freeze();
    if let Some(expected) = expected {
        let got = if data.is_empty() {
            content_hash_of_blocks(std::iter::empty())
        } else {
            content_hash_of_blocks([&block_hash(&data)])
        };
        if got != expected {
            return Err(Refused::HashMismatch);
        }
    }
    ctx.state.metrics.add_in(data.len() as u64);
    Ok(Ok(data))
}

/// Reads and discards the rest of a body, up to `MAX_DRAIN` bytes in all.
pub(crate) async fn drain_stream(stream: &mut axum::body::BodyDataStream, mut seen: u64) {
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len() as u64;
        if seen > MAX_DRAIN {
            break;
        }
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse().ok())
}

/// `CommitInfo`, as upload and upload_session/finish take it.
pub(crate) type CommitArg = cubby_core::api::types::CommitInfo;

/// Turns a `CommitInfo` into a commit (without blocks yet). Bad input is a 400; a path that
/// cannot be written is returned as the `WriteError` JSON for the route's own union.
pub(crate) async fn commit_info(
    ctx: &Ctx,
    a: &CommitArg,
) -> ApiResult<Result<(u64, Commit), WriteError>> {
    let mode = write_mode(ctx, &a.mode)?;
    let client_modified = match &a.client_modified {
        None => None,
        Some(s) => Some(cubby_core::time::parse(s).ok_or_else(|| {
            ctx.bad_input(&format!(
                "request body: client_modified: '{s}' is not a timestamp"
            ))
        })?),
    };
    let (ns, display) = match ctx.resolve("path", &a.path, Pattern::WritePathOrId).await? {
        Resolved::Path { ns, lower, .. } if ctx.is_top(ns, &lower) => {
            return Ok(Err(WriteError::Conflict {
                conflict: WriteConflictError::Folder,
            }));
        }
        Resolved::Path {
            read_only: true, ..
        } => return Ok(Err(WriteError::NoWritePermission)),
        Resolved::Path { ns, display, .. } => (ns, display),
        _ => return Ok(Err(WriteError::MalformedPath)),
    };
    Ok(Ok((
        ns,
        Commit {
            path: display,
            mode,
            autorename: a.autorename,
            strict_conflict: a.strict_conflict,
            client_modified,
            size: 0,
            blocks: Vec::new(),
        },
    )))
}

/// Validates an optional `content_hash` argument, returning it in lower case.
pub(crate) fn content_hash_arg(ctx: &Ctx, h: &Option<String>) -> ApiResult<Option<String>> {
    match h {
        Some(h) if parse_hash(h).is_none() => {
            Err(ctx.bad_input("request body: content_hash: expected 64 hexadecimal characters"))
        }
        Some(h) => Ok(Some(h.to_ascii_lowercase())),
        None => Ok(None),
    }
}

/// Why an upload-style body was refused: the two request-level errors every upload route's
/// union has (each route names them in its own union), or anything else.
pub(crate) enum Refused {
    TooLarge,
    HashMismatch,
    Api(ApiError),
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Self {
        Refused::Api(e)
    }
}

/// Receives an upload-style body into durable blocks.
pub(crate) async fn receive_body(
    ctx: &Ctx,
    headers: &HeaderMap,
    body: Body,
    expected: Option<&str>,
    prefix: Bytes,
    keep_rest: bool,
) -> Result<Received, Refused> {
    let hint = content_length(headers);
    if hint.is_some_and(|n| n > MAX_UPLOAD_REQUEST) {
        drain_stream(&mut body.into_data_stream(), 0).await;
        return Err(Refused::TooLarge);
    }
    match receive(ctx.store(), body, hint, expected, prefix, keep_rest).await {
        Ok(r) => {
            ctx.state.metrics.add_in(r.size);
            Ok(r)
        }
        Err(ReceiveError::TooLarge(_)) => Err(Refused::TooLarge),
        Err(ReceiveError::HashMismatch) => Err(Refused::HashMismatch),
        Err(ReceiveError::Failed(e)) => Err(Refused::Api(e)),
    }
}

pub(crate) async fn upload(
    ctx: &Ctx,
    a: UploadArg,
    headers: &HeaderMap,
    body: Body,
) -> Answer<ep::Upload> {
    let path_err = |w: WriteError| {
        Fail::Route(UploadError::Path {
            reason: w,
            upload_session_id: String::new(),
        })
    };
    let expected = content_hash_arg(ctx, &a.content_hash)?;
    let (ns, mut commit) = match commit_info(ctx, &a.commit).await? {
        Ok(commit) => commit,
        Err(w) => {
            drain_stream(&mut body.into_data_stream(), 0).await;
            return Err(path_err(w));
        }
    };
    let received = receive_body(ctx, headers, body, expected.as_deref(), Bytes::new(), false)
        .await
        .map_err(|e| match e {
            Refused::TooLarge => Fail::Route(UploadError::PayloadTooLarge),
            Refused::HashMismatch => Fail::Route(UploadError::ContentHashMismatch),
            Refused::Api(e) => Fail::Api(e),
        })?;
    commit.size = received.size;
    commit.blocks = received.blocks;
    match ctx.store().commit_file(ns, commit).await {
        Ok(e) => Ok(crate::api::history::file_metadata(ctx, &e)?),
        Err(e) => Err(match write_error(&e) {
            Some(w) => path_err(w),
            None => unexpected(e).into(),
        }),
    }
}

/// A byte range of a file, inclusive.
#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    Full,
    Part(u64, u64),
    Unsatisfiable,
}

/// Parses a single-range `Range` header against a file size; anything else is served whole.
fn parse_range(h: Option<&HeaderValue>, size: u64) -> RangeRequest {
    let Some(spec) = h
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().strip_prefix("bytes="))
    else {
        return RangeRequest::Full;
    };
    if spec.contains(',') || size == 0 {
        return RangeRequest::Full;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeRequest::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(s), Ok(e)) if s <= e => (s, e.min(size - 1)),
        (Ok(s), Err(_)) if b.is_empty() => (s, size - 1),
        (Err(_), Ok(n)) if a.is_empty() && n > 0 => (size.saturating_sub(n), size - 1),
        (Err(_), Ok(0)) if a.is_empty() => return RangeRequest::Unsatisfiable,
        _ => return RangeRequest::Full,
    };
    if start >= size {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Part(start, end)
}

/// `files/download`: the file's metadata (the dispatcher puts it in `Dropbox-API-Result`)
/// and the response streaming its bytes.
pub(crate) async fn download(
    ctx: &Ctx,
    a: DownloadArg,
    headers: &HeaderMap,
) -> Result<(FileMetadata, Response), Fail<DownloadError>> {
    let path = ctx.path_or_rev(&a.path, a.rev.as_deref())?;
    let entry = ctx
        .read_file(&path)
        .await?
        .map_err(|l| Fail::Route(DownloadError::Path { path: l }))?;
    let metadata = crate::api::history::file_metadata(ctx, &entry)?;
    let resp = serve_file(
        &ctx.state,
        &entry,
        None,
        "application/octet-stream",
        headers,
    )
    .await?;
    Ok((metadata, resp))
}

/// Streams a file revision, honouring `Range` and `If-None-Match`; `api_result` becomes the
/// `Dropbox-API-Result` header (API downloads), absent for temporary links.
pub(crate) async fn serve_file(
    state: &crate::AppState,
    entry: &cubby_store::Entry,
    api_result: Option<&Value>,
    content_type: &'static str,
    headers: &HeaderMap,
) -> Reply {
    let store = &state.store;
    let etag = format!("\"{}\"", entry.rev.as_deref().unwrap_or_default());
    let mut resp_headers = HeaderMap::new();
    if let Some(v) = api_result {
        resp_headers.insert("dropbox-api-result", api_result_header(v));
    }
    resp_headers.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("rev is ASCII"),
    );
    resp_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Ok((StatusCode::NOT_MODIFIED, resp_headers).into_response());
    }
    let size = entry.size;
    let (status, start, end) = match parse_range(headers.get(header::RANGE), size) {
        RangeRequest::Full => (StatusCode::OK, 0, size),
        RangeRequest::Part(s, e) => {
            let cr = format!("bytes {s}-{e}/{size}");
            resp_headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&cr).expect("ASCII"),
            );
            (StatusCode::PARTIAL_CONTENT, s, e + 1)
        }
        RangeRequest::Unsatisfiable => {
            let cr = format!("bytes */{size}");
            resp_headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&cr).expect("ASCII"),
            );
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, resp_headers).into_response());
        }
    };
    let revision = entry
        .revision
        .ok_or_else(|| ApiError::Internal("file without revision".into()))?;
    let blocks = store.revision_blocks(revision).await?;
    let mut pieces = block_pieces(&blocks, start, end).into_iter();
    // Before answering: the first piece is read and checked (the whole of a small file), the
    // others are checked present, so a lost block is an error status. A block corrupted
    // on disk further on is found when it is read: the body stops there (the client sees a
    // short transfer), and wrong bytes are never sent.
    let first = match pieces.next() {
        Some((hash, off, len)) => Some(store.read_block(hash, off, len).await?),
        None => None,
    };
    let rest: Vec<_> = pieces.collect();
    store
        .check_present(&rest.iter().map(|(h, _, _)| *h).collect::<Vec<_>>())
        .await?;
    let store = store.clone();
    let first = futures_util::stream::iter(first.map(Ok::<_, std::io::Error>));
    let stream = first.chain(
        futures_util::stream::iter(rest)
            .map(move |(hash, off, len)| {
                let store = store.clone();
                async move {
                    store
                        .read_block(hash, off, len)
                        .await
                        .map_err(std::io::Error::other)
                }
            })
            .buffered(READS_IN_FLIGHT),
    );
    resp_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    state.metrics.add_out(end - start);
    Ok((status, resp_headers, Body::from_stream(stream)).into_response())
}

/// The (block, offset, length) pieces covering bytes `start..end` of a file.
pub(crate) fn block_pieces(
    blocks: &[BlockHash],
    start: u64,
    end: u64,
) -> Vec<(BlockHash, u64, usize)> {
    let bs = BLOCK_SIZE as u64;
    let mut out = Vec::new();
    let mut pos = start;
    while pos < end {
        let i = (pos / bs) as usize;
        let Some(hash) = blocks.get(i) else { break };
        let off = pos % bs;
        let len = (bs - off).min(end - pos);
        out.push((*hash, off, len as usize));
        pos += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let h = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(
            parse_range(Some(&h("bytes=0-0")), 10),
            RangeRequest::Part(0, 0)
        );
        assert_eq!(
            parse_range(Some(&h("bytes=2-")), 10),
            RangeRequest::Part(2, 9)
        );
        assert_eq!(
            parse_range(Some(&h("bytes=-3")), 10),
            RangeRequest::Part(7, 9)
        );
        assert_eq!(
            parse_range(Some(&h("bytes=5-100")), 10),
            RangeRequest::Part(5, 9)
        );
        assert_eq!(
            parse_range(Some(&h("bytes=10-")), 10),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(parse_range(Some(&h("bytes=0-0")), 0), RangeRequest::Full);
        assert_eq!(
            parse_range(Some(&h("bytes=1-2,4-5")), 10),
            RangeRequest::Full
        );
        assert_eq!(parse_range(None, 10), RangeRequest::Full);
    }

    #[test]
    fn pieces_cross_blocks() {
        let blocks = [[1u8; 32], [2u8; 32]];
        let bs = BLOCK_SIZE as u64;
        let p = block_pieces(&blocks, bs - 2, bs + 3);
        assert_eq!(p, vec![([1u8; 32], bs - 2, 2), ([2u8; 32], 0, 3)]);
    }
}
