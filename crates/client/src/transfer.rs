//! Uploads and downloads of files, with content hashes verified both ways.
//!
//! Uploads up to [`SINGLE_REQUEST_MAX`] go in one `files/upload`; larger files go through a
//! concurrent upload session, [`PARALLEL_CHUNKS`] chunks of [`CHUNK`] bytes in flight. With a
//! resume folder, the session and the chunks the server took are recorded after each chunk,
//! so a killed upload restarts where it stopped; the server itself reports the offset of a
//! sequential session (`incorrect_offset`), which the client follows too. Downloads up to
//! [`RANGED_MIN`] stream in one request; larger ones fetch ranges of the pinned revision in
//! parallel. Either way the bytes go to a partial file beside the target, which is renamed
//! into place only once its content hash matched the server's.
//!
//! Memory is bounded: at most `PARALLEL_CHUNKS × CHUNK` bytes are held, whatever the size.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use cubby_core::hash::{
    BLOCK_SIZE, BlockHash, ContentHasher, block_hash, content_hash_of_blocks, hex,
};
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::types::{
    CommitInfo, DownloadArg, FileMetadata, Metadata, SaveUrlArg, SaveUrlStatus, SessionCursor,
    SessionFinishArg, UploadArg,
};
use crate::{Client, Error, Result};
use cubby_core::api::endpoint as ep;

/// The largest file sent in one request.
pub const SINGLE_REQUEST_MAX: u64 = 16 * 1024 * 1024;
/// Bytes per session append: a multiple of 4 MiB, as concurrent sessions require.
pub const CHUNK: usize = 8 * 1024 * 1024;
/// Appends (and ranged reads) in flight at once.
pub const PARALLEL_CHUNKS: usize = 4;
/// The smallest file downloaded in parallel ranges.
pub const RANGED_MIN: u64 = 32 * 1024 * 1024;

/// How an upload treats a file already at the path (Dropbox's `WriteMode`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteMode {
    Add,
    Overwrite,
    /// Only over this revision; otherwise a conflict.
    Update(String),
}

impl WriteMode {
    fn to_json(&self) -> Value {
        match self {
            WriteMode::Add => json!("add"),
            WriteMode::Overwrite => json!("overwrite"),
            WriteMode::Update(rev) => json!({".tag": "update", "update": rev}),
        }
    }
}

/// The commit part of an upload.
#[derive(Clone, Debug)]
pub struct UploadOptions {
    pub mode: WriteMode,
    pub autorename: bool,
    /// Dropbox timestamp (`2024-01-02T03:04:05Z`).
    pub client_modified: Option<String>,
    pub mute: bool,
    pub strict_conflict: bool,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            mode: WriteMode::Add,
            autorename: false,
            client_modified: None,
            mute: false,
            strict_conflict: false,
        }
    }
}

impl UploadOptions {
    /// The `CommitInfo` of an upload to `path`.
    pub fn commit_info(&self, path: &str) -> CommitInfo {
        CommitInfo {
            path: path.to_owned(),
            mode: self.mode.to_json(),
            autorename: self.autorename,
            client_modified: self.client_modified.clone(),
            mute: self.mute,
            strict_conflict: self.strict_conflict,
        }
    }
}

/// Told how a transfer advances.
pub trait Progress: Send + Sync {
    fn start(&self, _total: u64) {}
    fn advance(&self, _bytes: u64) {}
}

/// A [`Progress`] that shows nothing.
pub struct Quiet;
impl Progress for Quiet {}

/// What a resumable upload remembers between runs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct UploadState {
    session_id: String,
    size: u64,
    /// Chunk index → its 4 MiB block digests (hex), for the chunks the server took.
    done: std::collections::BTreeMap<u64, Vec<String>>,
}

impl Client {
    /// Uploads a local file to `remote`. `resume_dir` keeps the state of large uploads so a
    /// later call with the same file and path continues an interrupted session.
    pub async fn upload_file(
        &self,
        local: &Path,
        remote: &str,
        opts: &UploadOptions,
        resume_dir: Option<&Path>,
        progress: &dyn Progress,
    ) -> Result<FileMetadata> {
        let meta = tokio::fs::metadata(local).await?;
        let size = meta.len();
        progress.start(size);
        if size <= SINGLE_REQUEST_MAX {
            let data = Bytes::from(tokio::fs::read(local).await?);
            if data.len() as u64 != size {
                return Err(Error::Io(std::io::Error::other(format!(
                    "{} changed while it was read",
                    local.display()
                ))));
            }
            let r = self.upload_bytes(data, remote, opts).await?;
            progress.advance(size);
            return Ok(r);
        }
        let state_path = resume_dir.map(|d| d.join(state_name(local, remote, &meta)));
        match self
            .upload_session(local, remote, size, opts, state_path.as_deref(), progress)
            .await
        {
            // A recorded session the server no longer knows (expired, or finished by a run
            // killed before it could forget it): start afresh once.
            Err(e)
                if e.summary().is_some_and(|s| s.contains("not_found"))
                    && state_path.as_deref().is_some_and(Path::exists) =>
            {
                if let Some(p) = &state_path {
                    let _ = std::fs::remove_file(p);
                }
                self.upload_session(local, remote, size, opts, state_path.as_deref(), progress)
                    .await
            }
            other => other,
        }
    }

    /// Uploads bytes in one request, with their content hash for the server to check.
    pub async fn upload_bytes(
        &self,
        data: Bytes,
        remote: &str,
        opts: &UploadOptions,
    ) -> Result<FileMetadata> {
        let mut hasher = ContentHasher::new();
        hasher.update(&data);
        let hash = hasher.finish();
        let arg = UploadArg {
            commit: opts.commit_info(remote),
            content_hash: Some(hash.clone()),
        };
        let meta = self.call_upload::<ep::Upload>(&arg, data).await?;
        check_hash(&hash, meta.content_hash.as_deref())?;
        Ok(meta)
    }

    async fn upload_session(
        &self,
        local: &Path,
        remote: &str,
        size: u64,
        opts: &UploadOptions,
        state_path: Option<&Path>,
        progress: &dyn Progress,
    ) -> Result<FileMetadata> {
        let mut state: UploadState = state_path
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .filter(|s: &UploadState| s.size == size)
            .unwrap_or_default();
        if state.session_id.is_empty() {
            state = UploadState {
                session_id: self.session_start(Bytes::new(), true, false).await?,
                size,
                done: Default::default(),
            };
            save_state(state_path, &state)?;
        }
        let chunks = size.div_ceil(CHUNK as u64);
        let already: u64 = state.done.keys().map(|&i| chunk_len(i, size) as u64).sum();
        progress.advance(already);
        let state = Arc::new(std::sync::Mutex::new(state));
        let file = Arc::new(std::fs::File::open(local)?);
        // Every chunk but the last, in parallel; the last closes the session once they are in.
        let todo: Vec<u64> = (0..chunks.saturating_sub(1))
            .filter(|i| !state.lock().expect("state").done.contains_key(i))
            .collect();
        let session_id = state.lock().expect("state").session_id.clone();
        let send = |i: u64, close: bool| {
            let (file, state, session_id) = (file.clone(), state.clone(), session_id.clone());
            async move {
                let data = read_chunk(file, i, size).await?;
                let digests: Vec<String> = data
                    .chunks(BLOCK_SIZE)
                    .map(|b| hex(&block_hash(b)))
                    .collect();
                let len = data.len() as u64;
                self.session_append(&session_id, i * CHUNK as u64, data, close)
                    .await?;
                let snapshot = {
                    let mut s = state.lock().expect("state");
                    s.done.insert(i, digests);
                    s.clone()
                };
                save_state(state_path, &snapshot)?;
                progress.advance(len);
                Ok::<_, Error>(())
            }
        };
        futures_util::stream::iter(todo)
            .map(|i| send(i, false))
            .buffer_unordered(PARALLEL_CHUNKS)
            .try_collect::<Vec<()>>()
            .await?;
        let last = chunks - 1;
        if !state.lock().expect("state").done.contains_key(&last) {
            send(last, true).await?;
        }
        let state = state.lock().expect("state").clone();
        let blocks: Vec<BlockHash> = state
            .done
            .values()
            .flatten()
            .map(|h| parse_hex(h))
            .collect::<Result<_>>()?;
        let hash = content_hash_of_blocks(&blocks);
        let arg = SessionFinishArg {
            cursor: SessionCursor {
                session_id: state.session_id.clone(),
                offset: size,
            },
            commit: opts.commit_info(remote),
            content_hash: Some(hash.clone()),
        };
        let meta = self
            .call_upload::<ep::UploadSessionFinish>(&arg, Bytes::new())
            .await?;
        if let Some(p) = state_path {
            let _ = std::fs::remove_file(p);
        }
        check_hash(&hash, meta.content_hash.as_deref())?;
        Ok(meta)
    }

    /// Downloads `remote` to `local`, verifying its content hash; the file appears at `local`
    /// only complete.
    pub async fn download_file(
        &self,
        remote: &str,
        local: &Path,
        progress: &dyn Progress,
    ) -> Result<FileMetadata> {
        let meta = self.get_metadata(remote, false).await?;
        let Metadata::File(file) = meta else {
            return Err(Error::Api {
                summary: "path/not_file/".into(),
                error: json!({".tag": "path", "path": {".tag": "not_file"}}),
            });
        };
        progress.start(file.size);
        let partial = partial_path(local);
        match self
            .download_pinned(
                &file.rev,
                file.size,
                file.content_hash.as_deref(),
                &partial,
                true,
                progress,
            )
            .await
        {
            Ok(()) => {
                tokio::fs::rename(&partial, local).await?;
                Ok(file)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                Err(e)
            }
        }
    }

    /// Downloads revision `rev` (`rev:`) into `partial`, in parallel ranges when `size` says
    /// it is large (0: unknown, one request), and checks `content_hash`; the caller renames
    /// the file into place. The partial file is left behind on error. `durable`: fsync it
    /// before returning (a caller downloading many files syncs them together instead).
    pub async fn download_pinned(
        &self,
        rev: &str,
        size: u64,
        content_hash: Option<&str>,
        partial: &Path,
        durable: bool,
        progress: &dyn Progress,
    ) -> Result<()> {
        if size >= RANGED_MIN {
            self.download_ranged(rev, size, content_hash, partial, durable, progress)
                .await
        } else {
            self.download_whole(rev, content_hash, partial, durable, progress)
                .await
        }
    }

    async fn download_whole(
        &self,
        rev: &str,
        content_hash: Option<&str>,
        partial: &Path,
        durable: bool,
        progress: &dyn Progress,
    ) -> Result<()> {
        let pinned = format!("rev:{rev}");
        let (_, resp) = self
            .call_download::<ep::Download>(&download_arg(pinned), None)
            .await?;
        let mut out = tokio::fs::File::create(partial).await?;
        let mut hasher = ContentHasher::new();
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            out.write_all(&chunk).await?;
            progress.advance(chunk.len() as u64);
        }
        if durable {
            out.sync_all().await?;
        } else {
            out.flush().await?;
        }
        check_hash(&hasher.finish(), content_hash)
    }

    async fn download_ranged(
        &self,
        rev: &str,
        size: u64,
        content_hash: Option<&str>,
        partial: &Path,
        durable: bool,
        progress: &dyn Progress,
    ) -> Result<()> {
        let out = std::fs::File::create(partial)?;
        out.set_len(size)?;
        let out = Arc::new(out);
        let pinned = format!("rev:{rev}");
        let chunks = size.div_ceil(CHUNK as u64);
        let digests: Vec<(u64, Vec<BlockHash>)> = futures_util::stream::iter(0..chunks)
            .map(|i| {
                let (out, pinned) = (out.clone(), pinned.clone());
                async move {
                    let start = i * CHUNK as u64;
                    let end = (start + CHUNK as u64).min(size) - 1;
                    let (_, resp) = self
                        .call_download::<ep::Download>(&download_arg(pinned), Some((start, end)))
                        .await?;
                    let data = resp.bytes().await?;
                    if data.len() as u64 != end - start + 1 {
                        return Err(Error::Protocol(format!(
                            "a range of {} bytes came back with {}",
                            end - start + 1,
                            data.len()
                        )));
                    }
                    let len = data.len() as u64;
                    let blocks = tokio::task::spawn_blocking(move || {
                        use std::os::unix::fs::FileExt;
                        out.write_all_at(&data, start)?;
                        Ok::<_, std::io::Error>(
                            data.chunks(BLOCK_SIZE).map(block_hash).collect::<Vec<_>>(),
                        )
                    })
                    .await
                    .map_err(|e| Error::Protocol(e.to_string()))??;
                    progress.advance(len);
                    Ok::<_, Error>((i, blocks))
                }
            })
            .buffer_unordered(PARALLEL_CHUNKS)
            .try_collect()
            .await?;
        let mut digests = digests;
        digests.sort_by_key(|(i, _)| *i);
        if durable {
            out.sync_all()?;
        }
        let blocks: Vec<BlockHash> = digests.into_iter().flat_map(|(_, b)| b).collect();
        check_hash(&content_hash_of_blocks(&blocks), content_hash)
    }
}

impl Client {
    /// Asks the server to fetch `url` into `path` (`files/save_url`).
    pub async fn save_url(&self, url: &str, path: &str) -> Result<SaveUrlStatus> {
        self.call::<ep::SaveUrl>(&SaveUrlArg {
            path: path.to_owned(),
            url: url.to_owned(),
        })
        .await
    }

    /// Waits for a `save_url` job (polling with backoff up to 5 s): the saved file, or the
    /// failure's tag (such as `download_failed`).
    pub async fn save_url_wait(
        &self,
        mut status: SaveUrlStatus,
    ) -> Result<std::result::Result<FileMetadata, String>> {
        let mut wait = std::time::Duration::from_millis(100);
        loop {
            let job = match status {
                SaveUrlStatus::Complete(f) => return Ok(Ok(f)),
                SaveUrlStatus::Failed { failed } => {
                    let why = serde_json::to_value(&failed)
                        .ok()
                        .and_then(|v| v.get(".tag").and_then(Value::as_str).map(str::to_owned))
                        .unwrap_or_else(|| "failed".into());
                    return Ok(Err(why));
                }
                SaveUrlStatus::AsyncJobId { async_job_id } => async_job_id,
                SaveUrlStatus::InProgress => {
                    return Err(Error::Protocol("a job status without its job".into()));
                }
            };
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(std::time::Duration::from_secs(5));
            status = match self.save_url_check(&job).await? {
                SaveUrlStatus::InProgress => SaveUrlStatus::AsyncJobId { async_job_id: job },
                other => other,
            };
        }
    }
}

fn download_arg(path: String) -> DownloadArg {
    DownloadArg { path, rev: None }
}

/// Where a download is written before it is complete: beside the target, hidden.
pub fn partial_path(local: &Path) -> PathBuf {
    let name = local
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let partial = format!(".{name}.cubby-partial");
    if partial.len() <= NAME_MAX {
        return local.with_file_name(partial);
    }
    // A name near the file system's limit: a shortened name, unique by a digest of the whole.
    let digest = cubby_core::hash::hex(&cubby_core::hash::block_hash(name.as_bytes()));
    let mut keep = NAME_MAX - ".~.cubby-partial".len() - 16;
    while !name.is_char_boundary(keep) {
        keep -= 1;
    }
    local.with_file_name(format!(
        ".{}~{}.cubby-partial",
        &name[..keep],
        &digest[..16]
    ))
}

/// The longest file name (in bytes) of common local file systems.
const NAME_MAX: usize = 255;

fn check_hash(ours: &str, theirs: Option<&str>) -> Result<()> {
    match theirs {
        Some(t) if t != ours => Err(Error::HashMismatch {
            expected: t.to_owned(),
            got: ours.to_owned(),
        }),
        _ => Ok(()),
    }
}

fn chunk_len(i: u64, size: u64) -> usize {
    (size - i * CHUNK as u64).min(CHUNK as u64) as usize
}

async fn read_chunk(file: Arc<std::fs::File>, i: u64, size: u64) -> Result<Bytes> {
    let len = chunk_len(i, size);
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, i * CHUNK as u64)?;
        Ok(Bytes::from(buf))
    })
    .await
    .map_err(|e| Error::Protocol(e.to_string()))?
}

/// The state file of one upload: the file, its size and time, and the destination.
fn state_name(local: &Path, remote: &str, meta: &std::fs::Metadata) -> String {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let abs = std::path::absolute(local).unwrap_or_else(|_| local.to_owned());
    let key = format!("{}\n{remote}\n{}\n{mtime}", abs.display(), meta.len());
    format!("{}.json", &hex(&block_hash(key.as_bytes()))[..32])
}

fn save_state(path: Option<&Path>, state: &UploadState) -> Result<()> {
    let Some(path) = path else { return Ok(()) };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(state).expect("state serializes"))?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn parse_hex(h: &str) -> Result<BlockHash> {
    cubby_core::hash::parse_hash(h).ok_or_else(|| Error::Protocol(format!("bad block digest {h}")))
}
