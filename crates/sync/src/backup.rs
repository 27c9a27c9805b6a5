//! `cubby backup SRC DEST`: an incremental, never-overwriting backup of a local tree.
//!
//! One run:
//! 1. brings the index's view of DEST up to date through the change feed (a saved cursor, so
//!    only what changed on the server since the last run is read);
//! 2. walks SRC one folder at a time; a file whose size, modification time and inode match
//!    its index row is skipped without being read;
//! 3. hashes each new or changed file; if the server already holds that content at its path,
//!    only the index is updated; otherwise it is uploaded in update mode against the
//!    revision the index last saw (add mode for a new file), so a copy changed on the server
//!    meanwhile is never overwritten: both are kept, ours as a conflicted copy;
//! 4. with `mirror`, deletes on the server what was deleted locally, unless that is more than
//!    the allowed share of the backup (then nothing is deleted without `force`).
//!
//! Unreadable files, symbolic links and names that are not UTF-8 are reported and skipped;
//! the run goes on, and a file not backed up is tried again the next time because its index
//! row is not written. A file that changed while it was uploaded is reported too: the
//! version read is on the server and its row records that revision (with the stat of the
//! version read), so the next run sends the newer content as an update of our own upload.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cubby_client::transfer::{Quiet, SINGLE_REQUEST_MAX, UploadOptions, WriteMode};
use cubby_client::types::{ListFolderResult, Metadata};
use cubby_client::{Client, ErrorKind};
use cubby_core::hash::ContentHasher;
use cubby_core::path::lower;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::ignore::Ignore;
use crate::index::{self, Index, LocalRow, RemoteRow};

/// The name of the per-folder exclusion file.
pub const IGNORE_FILE: &str = ".cubbyignore";

/// What a run does besides backing up.
#[derive(Clone, Debug)]
pub struct Options {
    /// Report what would be done; change nothing.
    pub dry_run: bool,
    /// Delete on the server what was deleted locally.
    pub mirror: bool,
    /// Delete even past the share below.
    pub force: bool,
    /// The largest share of the backup's files `mirror` deletes without `force`.
    pub max_delete_share: f64,
    /// Gitignore-style patterns (besides `.cubbyignore` files).
    pub excludes: Vec<String>,
    /// Files uploaded at once.
    pub parallel: usize,
    /// Where large uploads keep their resume state.
    pub resume_dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            dry_run: false,
            mirror: false,
            force: false,
            max_delete_share: 0.25,
            excludes: Vec::new(),
            parallel: 8,
            resume_dir: None,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Regular files seen.
    pub scanned: u64,
    /// Files uploaded, and their bytes.
    pub uploaded: u64,
    pub uploaded_bytes: u64,
    /// Files unchanged since the last run (not read).
    pub unchanged: u64,
    /// Changed files whose content the server already held at their path.
    pub already_there: u64,
    pub folders_created: u64,
    pub excluded: u64,
    /// Symbolic links and other special files, not followed.
    pub special_skipped: u64,
    /// Files deleted on the server (`mirror`).
    pub deleted: u64,
    /// Conflicted copies made: where ours went.
    pub conflicts: Vec<String>,
    /// Files not backed up, and why.
    pub errors: Vec<String>,
    pub dry_run: bool,
}

impl Report {
    /// Whether every file was backed up.
    pub fn complete(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Where a run's log lines go.
pub trait Log: Send + Sync {
    fn line(&self, text: &str);
}

/// A failure that stops the run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Api(#[from] cubby_client::Error),
    #[error("index: {0}")]
    Index(#[from] sqlx::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(
        "refusing to delete {count} of {total} backed-up files on the server (more than {share:.0}%); \
         check the source, or pass --force"
    )]
    MassDelete { count: u64, total: u64, share: f64 },
}

/// One entry of a local folder, from `lstat`.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    name: String,
    pub(crate) kind: EntryKind,
    size: u64,
    mtime_ns: i64,
    inode: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntryKind {
    File,
    Dir,
    Special,
}

/// What happened to one file.
enum Outcome {
    Uploaded {
        row: LocalRow,
        bytes: u64,
        path: String,
    },
    /// Uploaded as it was read, but the file changed meanwhile: not backed up as it is now.
    UploadedThenChanged {
        row: LocalRow,
        bytes: u64,
        path: String,
    },
    AlreadyThere {
        row: LocalRow,
    },
    Conflict {
        row: LocalRow,
        copy: String,
    },
    WouldUpload {
        path: String,
        bytes: u64,
    },
    Failed(String),
}

/// Joins DEST and a relative path.
pub(crate) fn remote_of(dest: &str, rel: &str) -> String {
    if rel.is_empty() {
        dest.to_owned()
    } else {
        format!("{dest}/{rel}")
    }
}

/// Runs one backup of `src` into `dest` (a remote folder path, "" for the root).
pub async fn backup(
    client: &Arc<Client>,
    index: &Index,
    src: &Path,
    dest: &str,
    opts: &Options,
    log: &dyn Log,
) -> Result<Report, Error> {
    let mut report = Report {
        dry_run: opts.dry_run,
        ..Report::default()
    };
    refresh_remote(client, index, dest, opts.dry_run).await?;
    let mut walker = Walker::new(src, &opts.excludes);
    let mut deletions: Vec<String> = Vec::new();
    let mut pending: JoinSet<(String, Outcome)> = JoinSet::new();
    while let Some(folder) = walker.next().await {
        let Folder {
            dir,
            entries,
            problems,
        } = match folder {
            Ok(f) => f,
            Err(what) => {
                log.line(&format!("error {what}"));
                report.errors.push(what);
                continue;
            }
        };
        for p in problems {
            log.line(&format!("error {p}"));
            report.errors.push(p);
        }
        let rows = index.local_children(&dir).await?;
        let mut present = std::collections::HashSet::with_capacity(entries.len());
        let mut changed = Vec::new();
        let mut new_dirs = Vec::new();
        for (rel, e) in entries {
            present.insert(rel.clone());
            match e.kind {
                EntryKind::Special => {
                    report.special_skipped += 1;
                    log.line(&format!(
                        "skip {rel}: a symbolic link or special file, not followed"
                    ));
                }
                EntryKind::Dir => {
                    if !rows.get(&rel).is_some_and(|r| r.is_dir) {
                        new_dirs.push(rel);
                    }
                }
                EntryKind::File => {
                    report.scanned += 1;
                    let unchanged = rows.get(&rel).is_some_and(|r| {
                        !r.is_dir
                            && r.rev.is_some()
                            && r.size == e.size
                            && r.mtime_ns == e.mtime_ns
                            && r.inode == e.inode
                    });
                    if unchanged {
                        report.unchanged += 1;
                    } else {
                        changed.push((rel, e));
                    }
                }
            }
        }
        if opts.mirror {
            for (rel, row) in &rows {
                if !present.contains(rel) && !walker.is_excluded(rel, row.is_dir) {
                    deletions.push(rel.clone());
                }
            }
        }
        create_folders(client, index, dest, &new_dirs, opts, &mut report, log).await?;
        if changed.is_empty() {
            continue;
        }
        let keys: Vec<String> = changed
            .iter()
            .map(|(rel, _)| lower(&remote_of(dest, rel)))
            .collect();
        let remote = index.remote_rows(&keys).await?;
        for ((rel, seen), key) in changed.into_iter().zip(keys) {
            while pending.len() >= opts.parallel.max(1) {
                let done = pending.join_next().await.expect("a pending upload");
                record(index, done.expect("upload task"), &mut report, log).await?;
            }
            let job = FileJob {
                client: client.clone(),
                abs: src.join(&rel),
                remote_path: remote_of(dest, &rel),
                old: rows.get(&rel).cloned(),
                on_server: remote.get(&key).cloned(),
                seen,
                rel,
                dry_run: opts.dry_run,
                resume_dir: opts.resume_dir.clone(),
            };
            pending.spawn(async move { (job.rel.clone(), job.run().await) });
        }
    }
    while let Some(done) = pending.join_next().await {
        record(index, done.expect("upload task"), &mut report, log).await?;
    }
    report.excluded = walker.excluded;
    if opts.mirror && !deletions.is_empty() {
        mirror_deletions(client, index, dest, deletions, opts, &mut report, log).await?;
    }
    Ok(report)
}

/// Creates new local folders on the server (so empty ones are kept too).
async fn create_folders(
    client: &Client,
    index: &Index,
    dest: &str,
    dirs: &[String],
    opts: &Options,
    report: &mut Report,
    log: &dyn Log,
) -> Result<(), Error> {
    if dirs.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = dirs.iter().map(|d| lower(&remote_of(dest, d))).collect();
    let remote = index.remote_rows(&keys).await?;
    let mut tx = index.begin().await?;
    for (rel, key) in dirs.iter().zip(keys) {
        if !remote.get(&key).is_some_and(|r| r.is_dir) {
            if opts.dry_run {
                log.line(&format!("would create folder {rel}"));
                report.folders_created += 1;
                continue;
            }
            let r: Result<Value, _> = client
                .rpc(
                    "files/create_folder_v2",
                    &json!({"path": remote_of(dest, rel)}),
                )
                .await;
            match r {
                Ok(_) => {
                    report.folders_created += 1;
                    log.line(&format!("folder {rel}"));
                }
                Err(e)
                    if e.summary()
                        .is_some_and(|s| s.starts_with("path/conflict/folder")) => {}
                Err(e) => {
                    let what = format!("{rel}: cannot create the folder: {e}");
                    log.line(&format!("error {what}"));
                    report.errors.push(what);
                    continue;
                }
            }
        }
        if !opts.dry_run {
            let row = LocalRow {
                path: rel.clone(),
                is_dir: true,
                size: 0,
                mtime_ns: 0,
                inode: 0,
                hash: None,
                rev: None,
            };
            index::put_local(&mut tx, &row).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Writes what an upload task did into the index and the report.
async fn record(
    index: &Index,
    (rel, outcome): (String, Outcome),
    report: &mut Report,
    log: &dyn Log,
) -> Result<(), Error> {
    let row = match outcome {
        Outcome::Uploaded { row, bytes, path } => {
            report.uploaded += 1;
            report.uploaded_bytes += bytes;
            log.line(&format!("upload {rel} -> {path} ({bytes} bytes)"));
            row
        }
        Outcome::UploadedThenChanged { row, bytes, path } => {
            report.uploaded += 1;
            report.uploaded_bytes += bytes;
            log.line(&format!("upload {rel} -> {path} ({bytes} bytes)"));
            let what = format!(
                "{rel}: changed while being backed up; the version read is on the server, the newer one goes next run"
            );
            log.line(&format!("error {what}"));
            report.errors.push(what);
            row
        }
        Outcome::AlreadyThere { row } => {
            report.already_there += 1;
            log.line(&format!(
                "same {rel}: the server already holds this content"
            ));
            row
        }
        Outcome::Conflict { row, copy } => {
            log.line(&format!(
                "conflict {rel}: the server's copy changed since the last backup; ours is kept as {copy}"
            ));
            report.conflicts.push(copy);
            row
        }
        Outcome::WouldUpload { path, bytes } => {
            report.uploaded += 1;
            report.uploaded_bytes += bytes;
            log.line(&format!("would upload {rel} -> {path} ({bytes} bytes)"));
            return Ok(());
        }
        Outcome::Failed(why) => {
            let what = format!("{rel}: {why}");
            log.line(&format!("error {what}"));
            report.errors.push(what);
            return Ok(());
        }
    };
    let mut tx = index.begin().await?;
    index::put_local(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes on the server what was deleted locally, behind the mass-deletion guard.
async fn mirror_deletions(
    client: &Client,
    index: &Index,
    dest: &str,
    deletions: Vec<String>,
    opts: &Options,
    report: &mut Report,
    log: &dyn Log,
) -> Result<(), Error> {
    // Count files, not folders, against the backup's files.
    let mut files = 0u64;
    for rel in &deletions {
        files += index
            .local_under(rel)
            .await?
            .iter()
            .filter(|r| !r.is_dir)
            .count() as u64;
    }
    let total = index.local_files().await?;
    if files > 0 && !opts.force && files as f64 > total as f64 * opts.max_delete_share {
        return Err(Error::MassDelete {
            count: files,
            total,
            share: opts.max_delete_share * 100.0,
        });
    }
    for rel in deletions {
        if opts.dry_run {
            log.line(&format!("would delete {rel}"));
            report.deleted += 1;
            continue;
        }
        let r: Result<Value, _> = client
            .rpc("files/delete_v2", &json!({"path": remote_of(dest, &rel)}))
            .await;
        match r {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                let what = format!("{rel}: cannot delete on the server: {e}");
                log.line(&format!("error {what}"));
                report.errors.push(what);
                continue;
            }
        }
        log.line(&format!("delete {rel}"));
        report.deleted += 1;
        let mut tx = index.begin().await?;
        index::delete_local(&mut tx, &rel).await?;
        index::delete_remote(&mut tx, &lower(&remote_of(dest, &rel))).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Brings the index's copy of the server's DEST up to date from the change feed.
pub(crate) async fn refresh_remote(
    client: &Client,
    index: &Index,
    dest: &str,
    dry_run: bool,
) -> Result<(), Error> {
    let same_dest = index.get_meta("dest").await?.as_deref() == Some(dest);
    let cursor = if same_dest {
        index.get_meta("cursor").await?
    } else {
        None
    };
    let mut page: ListFolderResult = match cursor {
        Some(c) => match client.list_folder_continue(&c).await {
            Ok(p) => p,
            // A cursor the server no longer honours: read everything again.
            Err(e) if e.summary().is_some_and(|s| s.starts_with("reset")) => {
                list_all(client, index, dest, dry_run).await?
            }
            Err(e) => return Err(e.into()),
        },
        None => list_all(client, index, dest, dry_run).await?,
    };
    loop {
        apply_page(index, &page).await?;
        if !page.has_more {
            break;
        }
        page = client.list_folder_continue(&page.cursor).await?;
    }
    if !dry_run {
        index.set_meta("cursor", &page.cursor).await?;
        index.set_meta("dest", dest).await?;
    }
    Ok(())
}

/// The first page of a full listing of DEST (created first if missing), after clearing the
/// index's remote rows.
async fn list_all(
    client: &Client,
    index: &Index,
    dest: &str,
    dry_run: bool,
) -> Result<ListFolderResult, Error> {
    let mut tx = index.begin().await?;
    index::clear_remote(&mut tx).await?;
    tx.commit().await?;
    let arg = json!({"path": dest, "recursive": true, "limit": 2000});
    match client.rpc("files/list_folder", &arg).await {
        Ok(p) => Ok(p),
        Err(e) if !dry_run && e.kind() == ErrorKind::NotFound && !dest.is_empty() => {
            let _: Value = client
                .rpc("files/create_folder_v2", &json!({"path": dest}))
                .await?;
            Ok(client.rpc("files/list_folder", &arg).await?)
        }
        Err(e) => Err(e.into()),
    }
}

async fn apply_page(index: &Index, page: &ListFolderResult) -> Result<(), Error> {
    let mut tx = index.begin().await?;
    for m in &page.entries {
        let Some(key) = m.path_lower().map(str::to_owned) else {
            continue;
        };
        match m {
            Metadata::File(f) => {
                let row = RemoteRow {
                    is_dir: false,
                    rev: Some(f.rev.clone()),
                    hash: f.content_hash.clone(),
                    size: f.size,
                };
                index::put_remote(&mut tx, &key, &row).await?;
            }
            Metadata::Folder(_) => {
                let row = RemoteRow {
                    is_dir: true,
                    rev: None,
                    hash: None,
                    size: 0,
                };
                index::put_remote(&mut tx, &key, &row).await?;
            }
            Metadata::Deleted(_) => index::delete_remote(&mut tx, &key).await?,
        }
    }
    tx.commit().await?;
    Ok(())
}

/// One folder of a walk: its relative path, its entries that are not excluded (relative
/// path and `lstat`), and the entries that could not be read.
pub(crate) struct Folder {
    pub dir: String,
    pub entries: Vec<(String, Seen)>,
    pub problems: Vec<String>,
}

/// Walks a local tree one folder at a time (depth first), applying `--exclude` patterns and
/// the `.cubbyignore` files it meets; it never follows symbolic links.
pub(crate) struct Walker {
    src: PathBuf,
    stack: Vec<String>,
    ignore: Ignore,
    /// The client's own files inside `src` (see [`crate::own`]), left out whatever the
    /// patterns say.
    own: Vec<String>,
    /// Entries left out by a pattern.
    pub excluded: u64,
}

impl Walker {
    pub fn new(src: &Path, excludes: &[String]) -> Self {
        let mut ignore = Ignore::default();
        for pattern in excludes {
            ignore.add_lines("", pattern);
        }
        Self {
            src: src.to_owned(),
            stack: vec![String::new()],
            ignore,
            own: crate::own::inside(src, &crate::own::paths()),
            excluded: 0,
        }
    }

    pub fn is_excluded(&self, rel: &str, is_dir: bool) -> bool {
        self.ignore.is_excluded(rel, is_dir)
    }

    /// The next folder, or an error naming a folder that could not be read.
    pub async fn next(&mut self) -> Option<Result<Folder, String>> {
        let dir = self.stack.pop()?;
        let abs = if dir.is_empty() {
            self.src.clone()
        } else {
            self.src.join(&dir)
        };
        let (seen, ignore_text, problems) = match scan_dir(abs.clone()).await {
            Ok(r) => r,
            Err(e) => {
                return Some(Err(format!(
                    "{}: cannot read the folder: {e}",
                    abs.display()
                )));
            }
        };
        if let Some(text) = ignore_text {
            self.ignore.add_lines(&dir, &text);
        }
        let mut entries = Vec::with_capacity(seen.len());
        let mut subdirs = Vec::new();
        for e in seen {
            let rel = if dir.is_empty() {
                e.name.clone()
            } else {
                format!("{dir}/{}", e.name)
            };
            if self.own.contains(&rel) {
                continue;
            }
            if self.ignore.is_excluded(&rel, e.kind == EntryKind::Dir) {
                self.excluded += 1;
                continue;
            }
            if e.kind == EntryKind::Dir {
                subdirs.push(rel.clone());
            }
            entries.push((rel, e));
        }
        // Reversed, so folders are visited in name order.
        self.stack.extend(subdirs.into_iter().rev());
        Some(Ok(Folder {
            dir,
            entries,
            problems,
        }))
    }
}

/// Reads one folder: its entries (sorted by name), the text of its ignore file, and the
/// entries that could not be read.
async fn scan_dir(abs: PathBuf) -> std::io::Result<(Vec<Seen>, Option<String>, Vec<String>)> {
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::MetadataExt;
        let mut out = Vec::new();
        let mut problems = Vec::new();
        for e in std::fs::read_dir(&abs)? {
            let e = e?;
            let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                problems.push(format!(
                    "{}: the name is not UTF-8, skipped",
                    e.path().display()
                ));
                continue;
            };
            let meta = match std::fs::symlink_metadata(e.path()) {
                Ok(m) => m,
                Err(err) => {
                    problems.push(format!("{}: {err}", e.path().display()));
                    continue;
                }
            };
            let ft = meta.file_type();
            let kind = if ft.is_dir() {
                EntryKind::Dir
            } else if ft.is_file() {
                EntryKind::File
            } else {
                EntryKind::Special
            };
            out.push(Seen {
                name,
                kind,
                size: meta.len(),
                mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
                inode: meta.ino(),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        let ignore = std::fs::read_to_string(abs.join(IGNORE_FILE)).ok();
        Ok((out, ignore, problems))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// One file to back up.
struct FileJob {
    client: Arc<Client>,
    abs: PathBuf,
    rel: String,
    remote_path: String,
    old: Option<LocalRow>,
    on_server: Option<RemoteRow>,
    seen: Seen,
    dry_run: bool,
    resume_dir: Option<PathBuf>,
}

impl FileJob {
    async fn run(self) -> Outcome {
        match self.try_run().await {
            Ok(o) => o,
            Err(why) => Outcome::Failed(why),
        }
    }

    async fn try_run(&self) -> Result<Outcome, String> {
        // Hash first: if the server holds the same content, nothing is sent.
        let small = self.seen.size <= SINGLE_REQUEST_MAX;
        let (hash, data) = if small {
            let data = tokio::fs::read(&self.abs)
                .await
                .map_err(|e| format!("cannot read: {e}"))?;
            let mut h = ContentHasher::new();
            h.update(&data);
            (h.finish(), Some(bytes::Bytes::from(data)))
        } else {
            (
                hash_file(&self.abs)
                    .await
                    .map_err(|e| format!("cannot read: {e}"))?,
                None,
            )
        };
        self.check_unchanged().await?;
        let row = |rev: Option<String>| LocalRow {
            path: self.rel.clone(),
            is_dir: false,
            size: self.seen.size,
            mtime_ns: self.seen.mtime_ns,
            inode: self.seen.inode,
            hash: Some(hash.clone()),
            rev,
        };
        if let Some(r) = &self.on_server
            && !r.is_dir
            && r.hash.as_deref() == Some(hash.as_str())
        {
            return Ok(Outcome::AlreadyThere {
                row: row(r.rev.clone()),
            });
        }
        if self.dry_run {
            return Ok(Outcome::WouldUpload {
                path: self.remote_path.clone(),
                bytes: self.seen.size,
            });
        }
        let mode = match self.old.as_ref().and_then(|o| o.rev.clone()) {
            Some(rev) => WriteMode::Update(rev),
            None => WriteMode::Add,
        };
        let opts = UploadOptions {
            mode,
            client_modified: Some(cubby_core::time::format(
                self.seen.mtime_ns.div_euclid(1_000_000_000),
            )),
            ..UploadOptions::default()
        };
        match self.upload(&opts, &self.remote_path, data.clone()).await {
            Ok(meta) => {
                // The row records what the server now holds (its rev, and its hash: a large
                // file is read again to be sent), so the next run updates that revision
                // instead of taking our own upload for someone else's edit.
                let row = LocalRow {
                    hash: meta.content_hash.clone().or(Some(hash.clone())),
                    ..row(Some(meta.rev))
                };
                let path = meta
                    .path_display
                    .unwrap_or_else(|| self.remote_path.clone());
                let bytes = self.seen.size;
                Ok(match self.check_unchanged().await {
                    Ok(()) => Outcome::Uploaded { row, bytes, path },
                    // The row keeps the stat of the version read, so the next run reads the
                    // file again and sends what changed.
                    Err(_) => Outcome::UploadedThenChanged { row, bytes, path },
                })
            }
            Err(e) if e.kind() == ErrorKind::Conflict => {
                // Someone changed the server's copy since our last backup: keep both.
                let (parent, name) = self
                    .remote_path
                    .rsplit_once('/')
                    .unwrap_or(("", self.remote_path.as_str()));
                let copy_path =
                    format!("{parent}/{}", cubby_core::naming::conflicted_copy(name, 1));
                let copy_opts = UploadOptions {
                    mode: WriteMode::Add,
                    autorename: true,
                    ..opts.clone()
                };
                let copy = self
                    .upload(&copy_opts, &copy_path, data)
                    .await
                    .map_err(|e| format!("conflict, and the conflicted copy failed: {e}"))?;
                // Remember the server's current revision, so the next run does not make
                // another copy of the same unchanged file.
                let current: Option<Metadata> = self
                    .client
                    .rpc("files/get_metadata", &json!({"path": self.remote_path}))
                    .await
                    .ok();
                let rev = match current {
                    Some(Metadata::File(f)) => Some(f.rev),
                    _ => None,
                };
                Ok(Outcome::Conflict {
                    row: row(rev),
                    copy: copy.path_display.unwrap_or(copy_path),
                })
            }
            Err(e) => Err(e.to_string()),
        }
    }

    async fn upload(
        &self,
        opts: &UploadOptions,
        path: &str,
        data: Option<bytes::Bytes>,
    ) -> Result<cubby_client::types::FileMetadata, cubby_client::Error> {
        match data {
            Some(d) => self.client.upload_bytes(d, path, opts).await,
            None => {
                self.client
                    .upload_file(&self.abs, path, opts, self.resume_dir.as_deref(), &Quiet)
                    .await
            }
        }
    }

    /// Fails if the file changed since it was listed (it is then tried again next run).
    async fn check_unchanged(&self) -> Result<(), String> {
        use std::os::unix::fs::MetadataExt;
        let m = tokio::fs::symlink_metadata(&self.abs)
            .await
            .map_err(|e| format!("vanished while being backed up: {e}"))?;
        let mtime_ns = m.mtime() * 1_000_000_000 + m.mtime_nsec();
        if m.len() != self.seen.size || mtime_ns != self.seen.mtime_ns {
            return Err("changed while being read; it will be backed up next time".into());
        }
        Ok(())
    }
}

/// The content hash of a file, read in 4 MiB blocks off the async threads.
pub(crate) async fn hash_file(path: &Path) -> std::io::Result<String> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut f = std::fs::File::open(&path)?;
        let mut h = ContentHasher::new();
        let mut buf = vec![0u8; 4 << 20];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(h.finish())
    })
    .await
    .map_err(std::io::Error::other)?
}
