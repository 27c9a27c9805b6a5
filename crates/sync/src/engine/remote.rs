//! The remote side of `cubby sync`: the server behind a trait, so a simulation can drive the
//! engine over an in-memory server.
//!
//! Paths are display paths relative to the synced remote folder (`/a/b.txt`).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use cubby_client::routes::ListOptions;
use cubby_client::transfer::{Quiet, SINGLE_REQUEST_MAX, UploadOptions, WriteMode};
use cubby_client::types::{CommitInfo, FileMetadata, ListFolderResult, Metadata};
use cubby_client::{Client, ErrorKind};
use futures_util::StreamExt;

/// A file or folder on the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    /// Relative display path.
    pub path: String,
    pub folder: bool,
    pub rev: Option<String>,
    pub content_hash: Option<String>,
    /// A file's size in bytes (0 for a folder).
    pub size: u64,
}

/// One change of the server's feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Put(Entry),
    /// Whatever was at this (relative, any case) path is gone, with its subtree.
    Deleted(String),
}

/// One page of the feed.
#[derive(Clone, Debug)]
pub struct Page {
    pub changes: Vec<Change>,
    pub cursor: String,
    pub has_more: bool,
}

/// How an upload commits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Only if nothing else is at the path.
    Add,
    /// Only over this revision.
    Update(String),
}

/// How [`RemoteApi::upload_as`] commits a file (`cubby backup`'s uploads).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Put {
    pub mode: Mode,
    /// On a conflict, take a free name beside the path instead of failing.
    pub autorename: bool,
    /// The file's modification time (Unix seconds), shown as its `client_modified`.
    pub client_modified: Option<i64>,
}

/// One saved revision of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revision {
    pub rev: String,
    pub content_hash: Option<String>,
    pub size: u64,
    /// When the server saved it (Unix seconds).
    pub server_modified: i64,
}

/// A file's history, newest first as the server gives it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revisions {
    pub entries: Vec<Revision>,
    /// When the file was deleted, if it is deleted now.
    pub deleted_at: Option<i64>,
}

/// Why a remote call failed, as the engine must react to it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// The server's state is not what the engine observed (a conflict, a vanished node):
    /// observe again and plan again.
    #[error("changed on the server: {0}")]
    Changed(String),
    /// The server refuses this item for good (a disallowed name, too large, no space): report
    /// it and leave the item alone.
    #[error("refused by the server: {0}")]
    Refused(String),
    /// The network or the server failed; retry later.
    #[error("transient: {0}")]
    Transient(String),
    /// The saved cursor is no longer valid: list again from scratch.
    #[error("the cursor was reset")]
    Reset,
    /// Credentials or the synced folder are gone: stop.
    #[error("{0}")]
    Fatal(String),
}

/// The server as the engine sees it.
pub trait RemoteApi: Send + Sync {
    /// A page of the recursive feed: from the start (`None`, every entry) or after a cursor.
    fn list(&self, cursor: Option<&str>) -> impl Future<Output = Result<Page, RemoteError>> + Send;
    /// Waits up to `timeout` seconds for a change after `cursor`; `true` if there is one.
    fn wait(
        &self,
        cursor: &str,
        timeout: u64,
    ) -> impl Future<Output = Result<bool, RemoteError>> + Send;
    fn create_folder(&self, path: &str) -> impl Future<Output = Result<Entry, RemoteError>> + Send;
    /// Uploads the local file `source` to `path`.
    fn upload(
        &self,
        path: &str,
        mode: &Mode,
        source: &Path,
    ) -> impl Future<Output = Result<Entry, RemoteError>> + Send;
    /// Uploads many small files at once; one result per item, in order.
    fn upload_batch(
        &self,
        items: &[(String, Mode, PathBuf)],
    ) -> impl Future<Output = Vec<Result<Entry, RemoteError>>> + Send;
    /// Downloads a revision into `partial`, checking its content hash.
    fn download(
        &self,
        rev: &str,
        content_hash: &str,
        partial: &Path,
    ) -> impl Future<Output = Result<(), RemoteError>> + Send;
    fn move_to(
        &self,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<Entry, RemoteError>> + Send;
    /// Everything below the folder `path` now (not the folder itself), from a fresh listing.
    fn list_under(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<Vec<Entry>, RemoteError>> + Send;
    /// Deletes `path` (and its subtree); a file only if it is still at `rev`.
    fn delete(
        &self,
        path: &str,
        rev: Option<&str>,
    ) -> impl Future<Output = Result<(), RemoteError>> + Send;
    /// The first page of the recursive feed, like `list(None)`, but the root folder is made
    /// only if `create_root` (a missing root is then [`RemoteError::Changed`]), and with
    /// `include_deleted` the feed names deleted entries too ([`Change::Deleted`]).
    fn list_from_start(
        &self,
        create_root: bool,
        include_deleted: bool,
    ) -> impl Future<Output = Result<Page, RemoteError>> + Send;
    /// Uploads the local file `source` to `path`, committed as `put` says.
    fn upload_as(
        &self,
        path: &str,
        put: &Put,
        source: &Path,
    ) -> impl Future<Output = Result<Entry, RemoteError>> + Send;
    /// What is at `path` now (`None`: nothing).
    fn get(&self, path: &str) -> impl Future<Output = Result<Option<Entry>, RemoteError>> + Send;
    /// The saved revisions of the file at `path` (at most `limit`), deleted or not; `None` if
    /// there never was a file there.
    fn revisions(
        &self,
        path: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Option<Revisions>, RemoteError>> + Send;
}

/// Files up to this size go through `upload_batch`; larger ones through their own session.
pub const BATCH_MAX_SIZE: u64 = 4 * 1024 * 1024;
/// Entries per `finish_batch_v2` call (Dropbox's limit).
pub const BATCH_ENTRIES: usize = 1000;
/// Requests in flight for batched session starts and downloads.
pub const PARALLEL: usize = 8;

/// The server through [`cubby_client::Client`], below a remote folder.
pub struct ClientRemote {
    client: Arc<Client>,
    /// The remote folder's display path (`/Sync`), `""` for the whole account.
    root: String,
    /// Where interrupted large uploads keep their state.
    resume_dir: Option<PathBuf>,
}

impl ClientRemote {
    pub fn new(client: Arc<Client>, root: &str, resume_dir: Option<PathBuf>) -> Self {
        let root = root.trim_end_matches('/');
        Self {
            client,
            root: root.to_owned(),
            resume_dir,
        }
    }

    fn full(&self, path: &str) -> String {
        format!("{}{path}", self.root)
    }

    /// The relative path of a server path under the root, `None` for the root or outside it.
    fn relative(&self, display: &str) -> Option<String> {
        let root = self.root.len();
        if display.len() <= root
            || !display.is_char_boundary(root)
            || cubby_core::path::lower(&display[..root]) != cubby_core::path::lower(&self.root)
            || !display[root..].starts_with('/')
        {
            return None;
        }
        Some(display[root..].to_owned())
    }

    fn entry(&self, meta: &Metadata) -> Option<Entry> {
        let path = self.relative(meta.path_display())?;
        Some(match meta {
            Metadata::File(f) => file_entry(f, path),
            Metadata::Folder(f) => Entry {
                id: f.id.clone(),
                path,
                folder: true,
                rev: None,
                content_hash: None,
                size: 0,
            },
            Metadata::Deleted(_) => return None,
        })
    }

    fn file(&self, f: &FileMetadata) -> Result<Entry, RemoteError> {
        let path = self
            .relative(f.path_display.as_deref().unwrap_or(&f.name))
            .ok_or_else(|| RemoteError::Changed("the server answered another path".into()))?;
        Ok(file_entry(f, path))
    }

    async fn start_session(&self, source: PathBuf) -> Result<(String, u64), RemoteError> {
        let data = tokio::fs::read(&source).await.map_err(local)?;
        let len = data.len() as u64;
        let id = self
            .client
            .session_start(Bytes::from(data), false, true)
            .await
            .map_err(classify)?;
        Ok((id, len))
    }
}

fn file_entry(f: &FileMetadata, path: String) -> Entry {
    Entry {
        id: f.id.clone(),
        path,
        folder: false,
        rev: Some(f.rev.clone()),
        content_hash: f.content_hash.clone(),
        size: f.size,
    }
}

fn local(e: std::io::Error) -> RemoteError {
    if e.kind() == std::io::ErrorKind::NotFound {
        RemoteError::Changed(format!("the local file went away: {e}"))
    } else {
        RemoteError::Transient(format!("reading the local file: {e}"))
    }
}

/// A refusal in words where the server's reason is one a person can act on (otherwise the
/// reason as the server gave it).
pub fn refusal_in_words(why: &str) -> String {
    if why.contains("no_write_permission") {
        "read-only: a shared folder you may view but not change; kept on this computer, not uploaded"
            .to_owned()
    } else {
        why.to_owned()
    }
}

/// Sorts a client error into what the engine does about it.
pub fn classify(e: cubby_client::Error) -> RemoteError {
    let text = e.to_string();
    if let cubby_client::Error::Io(io) = &e
        && io.kind() != std::io::ErrorKind::NotFound
    {
        // Writing the download (a name too long for this disk, no space): report it.
        return RemoteError::Refused(format!("the local disk refused: {io}"));
    }
    match e.kind() {
        ErrorKind::NotFound | ErrorKind::Conflict => RemoteError::Changed(text),
        ErrorKind::Transient => RemoteError::Transient(text),
        ErrorKind::Auth => RemoteError::Fatal(text),
        ErrorKind::Local => RemoteError::Changed(text),
        _ if text.contains("reset") => RemoteError::Reset,
        _ => RemoteError::Refused(text),
    }
}

fn mode_of(mode: &Mode) -> UploadOptions {
    UploadOptions {
        mode: match mode {
            Mode::Add => WriteMode::Add,
            Mode::Update(rev) => WriteMode::Update(rev.clone()),
        },
        ..UploadOptions::default()
    }
}

fn put_of(put: &Put) -> UploadOptions {
    UploadOptions {
        autorename: put.autorename,
        client_modified: put.client_modified.map(cubby_core::time::format),
        ..mode_of(&put.mode)
    }
}

impl ClientRemote {
    fn page(&self, result: ListFolderResult) -> Page {
        let changes = result
            .entries
            .iter()
            .filter_map(|meta| match meta {
                Metadata::Deleted(_) => self.relative(meta.path_display()).map(Change::Deleted),
                _ => self.entry(meta).map(Change::Put),
            })
            .collect();
        Page {
            changes,
            cursor: result.cursor,
            has_more: result.has_more,
        }
    }
}

impl RemoteApi for ClientRemote {
    async fn list(&self, cursor: Option<&str>) -> Result<Page, RemoteError> {
        match cursor {
            Some(cursor) => {
                let result = self
                    .client
                    .list_folder_continue(cursor)
                    .await
                    .map_err(classify)?;
                Ok(self.page(result))
            }
            None => self.list_from_start(true, false).await,
        }
    }

    async fn list_from_start(
        &self,
        create_root: bool,
        include_deleted: bool,
    ) -> Result<Page, RemoteError> {
        if create_root && !self.root.is_empty() {
            match self.client.create_folder(&self.root, false).await {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Conflict => {}
                Err(e) => return Err(classify(e)),
            }
        }
        let opts = ListOptions {
            recursive: true,
            include_deleted,
            limit: Some(2000),
        };
        let result = self
            .client
            .list_folder(&self.root, &opts)
            .await
            .map_err(classify)?;
        Ok(self.page(result))
    }

    async fn upload_as(&self, path: &str, put: &Put, source: &Path) -> Result<Entry, RemoteError> {
        let meta = self
            .client
            .upload_file(
                source,
                &self.full(path),
                &put_of(put),
                self.resume_dir.as_deref(),
                &Quiet,
            )
            .await
            .map_err(classify)?;
        self.file(&meta)
    }

    async fn get(&self, path: &str) -> Result<Option<Entry>, RemoteError> {
        match self.client.get_metadata(&self.full(path), false).await {
            Ok(meta) => Ok(self.entry(&meta)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(classify(e)),
        }
    }

    async fn revisions(&self, path: &str, limit: u32) -> Result<Option<Revisions>, RemoteError> {
        let r = match self.client.list_revisions(&self.full(path), limit).await {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(classify(e)),
        };
        Ok(Some(Revisions {
            entries: r
                .entries
                .iter()
                .map(|f| Revision {
                    rev: f.rev.clone(),
                    content_hash: f.content_hash.clone(),
                    size: f.size,
                    server_modified: cubby_core::time::parse(&f.server_modified)
                        .unwrap_or(i64::MIN),
                })
                .collect(),
            deleted_at: r
                .server_deleted
                .as_deref()
                .and_then(cubby_core::time::parse),
        }))
    }

    async fn wait(&self, cursor: &str, timeout: u64) -> Result<bool, RemoteError> {
        let result = self
            .client
            .longpoll(cursor, timeout)
            .await
            .map_err(classify)?;
        if let Some(backoff) = result.backoff {
            tokio::time::sleep(std::time::Duration::from_secs(backoff)).await;
        }
        Ok(result.changes)
    }

    async fn create_folder(&self, path: &str) -> Result<Entry, RemoteError> {
        let full = self.full(path);
        match self.client.create_folder(&full, false).await {
            Ok(created) => self
                .entry(&Metadata::Folder(created.metadata))
                .ok_or_else(|| RemoteError::Changed("the server answered another path".into())),
            Err(e) if e.kind() == ErrorKind::Conflict => {
                // Already there: a folder is a folder, take it; a file is a conflict.
                let meta = self
                    .client
                    .get_metadata(&full, false)
                    .await
                    .map_err(classify)?;
                match meta {
                    Metadata::Folder(_) => self.entry(&meta).ok_or_else(|| {
                        RemoteError::Changed("the server answered another path".into())
                    }),
                    _ => Err(RemoteError::Changed(format!("{path}: a file is there"))),
                }
            }
            Err(e) => Err(classify(e)),
        }
    }

    async fn upload(&self, path: &str, mode: &Mode, source: &Path) -> Result<Entry, RemoteError> {
        let meta = self
            .client
            .upload_file(
                source,
                &self.full(path),
                &mode_of(mode),
                self.resume_dir.as_deref(),
                &Quiet,
            )
            .await
            .map_err(classify)?;
        self.file(&meta)
    }

    async fn upload_batch(
        &self,
        items: &[(String, Mode, PathBuf)],
    ) -> Vec<Result<Entry, RemoteError>> {
        let mut results: Vec<Option<Result<Entry, RemoteError>>> = vec![None; items.len()];
        for (first, chunk) in items.chunks(BATCH_ENTRIES).enumerate() {
            let base = first * BATCH_ENTRIES;
            let started: Vec<Result<(String, u64), RemoteError>> =
                futures_util::stream::iter(0..chunk.len())
                    .map(|i| self.start_session(chunk[i].2.clone()))
                    .buffered(PARALLEL)
                    .collect()
                    .await;
            let mut entries = Vec::new();
            let mut slots = Vec::new();
            for (i, start) in started.into_iter().enumerate() {
                match start {
                    Ok((session, len)) => {
                        let (path, mode, _) = &chunk[i];
                        entries.push((session, len, mode_of(mode).commit_info(&self.full(path))));
                        slots.push(base + i);
                    }
                    Err(e) => results[base + i] = Some(Err(e)),
                }
            }
            if entries.is_empty() {
                continue;
            }
            let refs: Vec<(&str, u64, CommitInfo)> = entries
                .iter()
                .map(|(s, o, c)| (s.as_str(), *o, c.clone()))
                .collect();
            match self.finish_batch(&refs).await {
                Ok(answers) => {
                    for (slot, answer) in slots.into_iter().zip(answers) {
                        results[slot] = Some(answer);
                    }
                }
                Err(e) => {
                    for slot in slots {
                        results[slot] = Some(Err(e.clone()));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(RemoteError::Transient("no answer".into()))))
            .collect()
    }

    async fn download(
        &self,
        rev: &str,
        content_hash: &str,
        partial: &Path,
    ) -> Result<(), RemoteError> {
        // Size 0: one streamed request (the feed gives no size for parallel ranges).
        self.client
            .download_pinned(rev, 0, Some(content_hash), partial, false, &Quiet)
            .await
            .map_err(classify)
    }

    async fn move_to(&self, from: &str, to: &str) -> Result<Entry, RemoteError> {
        let moved = self
            .client
            .move_item(&self.full(from), &self.full(to), false)
            .await
            .map_err(classify)?;
        self.entry(&moved.metadata)
            .ok_or_else(|| RemoteError::Changed("the server answered another path".into()))
    }

    async fn list_under(&self, path: &str) -> Result<Vec<Entry>, RemoteError> {
        let full = self.full(path);
        let opts = ListOptions {
            recursive: true,
            limit: Some(2000),
            ..ListOptions::default()
        };
        let mut page = self
            .client
            .list_folder(&full, &opts)
            .await
            .map_err(classify)?;
        let mut out = Vec::new();
        loop {
            out.extend(
                page.entries
                    .iter()
                    .filter_map(|m| self.entry(m))
                    .filter(|e| e.path.len() > path.len()),
            );
            if !page.has_more {
                return Ok(out);
            }
            page = self
                .client
                .list_folder_continue(&page.cursor)
                .await
                .map_err(classify)?;
        }
    }

    async fn delete(&self, path: &str, rev: Option<&str>) -> Result<(), RemoteError> {
        match self.client.delete(&self.full(path), rev).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound && rev.is_none() => Ok(()),
            Err(e) => Err(classify(e)),
        }
    }
}

impl ClientRemote {
    /// One `finish_batch_v2` call: one result per session, in order.
    async fn finish_batch(
        &self,
        entries: &[(&str, u64, CommitInfo)],
    ) -> Result<Vec<Result<Entry, RemoteError>>, RemoteError> {
        use cubby_client::types::{
            SessionFinishBatchEntry as Item, SessionFinishError as F, SessionLookupError as L,
            WriteError as W,
        };
        let answer = self
            .client
            .session_finish_batch(entries)
            .await
            .map_err(classify)?;
        Ok(answer
            .entries
            .into_iter()
            .map(|item| match item {
                Item::Success(meta) => self.file(&meta),
                Item::Failure { failure } => {
                    let summary = serde_json::to_string(&failure).unwrap_or_default();
                    match failure {
                        // Someone else's change, or a session the server no longer has:
                        // observe again.
                        F::Path {
                            path: W::Conflict { .. },
                        }
                        | F::LookupFailed {
                            lookup_failed: L::NotFound,
                        } => Err(RemoteError::Changed(summary)),
                        F::TooManyWriteOperations
                        | F::Path {
                            path: W::TooManyWriteOperations,
                        } => Err(RemoteError::Transient(summary)),
                        _ => Err(RemoteError::Refused(summary)),
                    }
                }
            })
            .collect())
    }
}

/// Whether a file of this size goes through a batch.
pub fn batchable(size: u64) -> bool {
    size <= BATCH_MAX_SIZE.min(SINGLE_REQUEST_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(summary: &str) -> cubby_client::Error {
        cubby_client::Error::Api {
            summary: summary.into(),
            error: serde_json::Value::Null,
        }
    }

    /// How the server's refusals reach the engine, the backup and the follow loop: a busy or
    /// failing server (429, 5xx once the client's retries ran out) is retried later, a lost
    /// race is observed again, a spent cursor lists afresh, a refused item is reported.
    #[test]
    fn refusals_are_sorted_by_what_to_do_about_them() {
        for status in [429, 500, 503] {
            let e = cubby_client::Error::Unavailable {
                status,
                body: "busy".into(),
            };
            assert!(matches!(classify(e), RemoteError::Transient(_)), "{status}");
        }
        assert!(matches!(
            classify(api("too_many_write_operations/")),
            RemoteError::Transient(_)
        ));
        assert!(matches!(
            classify(api("path/conflict/file/")),
            RemoteError::Changed(_)
        ));
        assert!(matches!(
            classify(api("path/not_found/")),
            RemoteError::Changed(_)
        ));
        assert_eq!(classify(api("reset/")), RemoteError::Reset);
        assert!(matches!(
            classify(api("path/disallowed_name/")),
            RemoteError::Refused(_)
        ));
        assert!(matches!(
            classify(cubby_client::Error::Auth("expired_access_token/".into())),
            RemoteError::Fatal(_)
        ));
    }
}
