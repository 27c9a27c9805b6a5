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

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cubby_client::Client;
use cubby_core::path::lower;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::engine::fs::{LocalFs, RealFs, Stat};
use crate::engine::remote::{Change, ClientRemote, Entry, Mode, Page, Put, RemoteApi, RemoteError};
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
    Remote(#[from] RemoteError),
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

/// The seams' form of a backup-relative path (`a/b` → `/a/b`, `""` → `""`): the path on
/// the local side below SRC, and on the server below DEST.
pub(crate) fn seam_path(rel: &str) -> String {
    if rel.is_empty() {
        String::new()
    } else {
        format!("/{rel}")
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
    let fs = Arc::new(RealFs::read_only(src));
    let remote = Arc::new(ClientRemote::new(
        client.clone(),
        dest,
        opts.resume_dir.clone(),
    ));
    run(fs, remote, index, dest, opts, log).await
}

/// Runs one backup over the sync engine's seams: `fs` is SRC (only read), `remote` is the
/// server below DEST (`dest` is its display path, the index's keys are under it).
pub async fn run<F, R>(
    fs: Arc<F>,
    remote: Arc<R>,
    index: &Index,
    dest: &str,
    opts: &Options,
    log: &dyn Log,
) -> Result<Report, Error>
where
    F: LocalFs + 'static,
    R: RemoteApi + 'static,
{
    let mut report = Report {
        dry_run: opts.dry_run,
        ..Report::default()
    };
    refresh_remote(&*remote, index, dest, opts.dry_run).await?;
    let mut walker = Walker::new(&*fs, &opts.excludes);
    let mut deletions: Vec<String> = Vec::new();
    let mut pending: JoinSet<(String, Outcome)> = JoinSet::new();
    while let Some(folder) = walker.next() {
        let Folder {
            dir,
            entries,
            special,
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
        for rel in special {
            report.special_skipped += 1;
            log.line(&format!(
                "skip {rel}: a symbolic link or special file, not followed"
            ));
        }
        let rows = index.local_children(&dir).await?;
        let twins = twins(&entries, &rows);
        let mut present = HashSet::with_capacity(entries.len());
        let mut changed = Vec::new();
        let mut new_dirs = Vec::new();
        for (rel, e) in entries {
            present.insert(rel.clone());
            if e.is_dir {
                if !rows.get(&rel).is_some_and(|r| r.is_dir) {
                    new_dirs.push(rel);
                }
                continue;
            }
            report.scanned += 1;
            // A row with a hash but no revision is a version kept as a conflicted copy.
            let unchanged = rows.get(&rel).is_some_and(|r| {
                !r.is_dir
                    && (r.rev.is_some() || r.hash.is_some())
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
        // A row whose name is gone while a name equal but for case or Unicode form is here
        // was renamed in case only: its server path is the new name's, so it is forgotten,
        // never mirrored as a deletion (that deleted the new name's backup).
        let keys_here: HashSet<String> = present.iter().map(|r| lower(r)).collect();
        let renamed: Vec<&String> = rows
            .keys()
            .filter(|r| !present.contains(*r) && keys_here.contains(&lower(r)))
            .collect();
        if !renamed.is_empty() && !opts.dry_run {
            let mut tx = index.begin().await?;
            for rel in &renamed {
                index::delete_local(&mut tx, rel).await?;
            }
            tx.commit().await?;
        }
        if opts.mirror {
            for (rel, row) in &rows {
                if !present.contains(rel)
                    && !keys_here.contains(&lower(rel))
                    && !walker.is_excluded(rel, row.is_dir)
                {
                    deletions.push(rel.clone());
                }
            }
        }
        create_folders(&*remote, index, dest, &new_dirs, opts, &mut report, log).await?;
        if changed.is_empty() {
            continue;
        }
        let keys: Vec<String> = changed
            .iter()
            .map(|(rel, _)| lower(&remote_of(dest, rel)))
            .collect();
        let on_server = index.remote_rows(&keys).await?;
        let rels: Vec<String> = changed.iter().map(|(rel, _)| rel.clone()).collect();
        let mut sent = index.sent(&rels).await?;
        for ((rel, seen), key) in changed.into_iter().zip(keys) {
            while pending.len() >= opts.parallel.max(1) {
                let done = pending.join_next().await.expect("a pending upload");
                record(index, done.expect("upload task"), &mut report, log).await?;
            }
            // A twin never takes the server's copy for its own: that is its twin's backup.
            let twin = twins.contains(&rel);
            let job = FileJob {
                fs: fs.clone(),
                remote: remote.clone(),
                path: seam_path(&rel),
                dest: dest.to_owned(),
                old: rows.get(&rel).cloned(),
                on_server: on_server.get(&key).cloned().filter(|_| !twin),
                sent: sent.remove(&rel).filter(|_| !twin),
                twin,
                index: index.clone(),
                seen,
                rel,
                dry_run: opts.dry_run,
            };
            pending.spawn(async move { (job.rel.clone(), job.run().await) });
        }
    }
    while let Some(done) = pending.join_next().await {
        record(index, done.expect("upload task"), &mut report, log).await?;
    }
    report.excluded = walker.excluded;
    if opts.mirror && !deletions.is_empty() {
        mirror_deletions(&*remote, index, dest, deletions, opts, &mut report, log).await?;
    }
    Ok(report)
}

/// The files of a folder whose name equals another entry's but for case or Unicode form (a
/// case-sensitive source): the server holds one of them at that path, so the others are
/// backed up as conflicted copies, never as updates of the path (which replaced the other
/// name's backup). The name that keeps the path is the one the index has a revision for
/// (it was backed up there), else one with a row, else the first in byte order.
fn twins(entries: &[(String, Stat)], rows: &HashMap<String, LocalRow>) -> HashSet<String> {
    let mut by_key: HashMap<String, Vec<&String>> = HashMap::with_capacity(entries.len());
    for (rel, _) in entries {
        by_key.entry(lower(rel)).or_default().push(rel);
    }
    let mut out = HashSet::new();
    for group in by_key.into_values().filter(|g| g.len() > 1) {
        let rank = |rel: &String| match rows.get(rel) {
            Some(r) if r.rev.is_some() => 0,
            Some(_) => 1,
            None => 2,
        };
        let keep = group
            .iter()
            .min_by(|a, b| (rank(a), a).cmp(&(rank(b), b)))
            .copied();
        out.extend(group.into_iter().filter(|r| Some(*r) != keep).cloned());
    }
    out
}

/// Creates new local folders on the server (so empty ones are kept too).
async fn create_folders<R: RemoteApi>(
    remote: &R,
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
    let on_server = index.remote_rows(&keys).await?;
    let mut tx = index.begin().await?;
    for (rel, key) in dirs.iter().zip(keys) {
        if !on_server.get(&key).is_some_and(|r| r.is_dir) {
            if opts.dry_run {
                log.line(&format!("would create folder {rel}"));
                report.folders_created += 1;
                continue;
            }
            // A folder already there is taken as it is; a file there is an error.
            match remote.create_folder(&seam_path(rel)).await {
                Ok(_) => {
                    report.folders_created += 1;
                    log.line(&format!("folder {rel}"));
                }
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
            let what = format!("{rel}: {}", crate::engine::remote::refusal_in_words(&why));
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
async fn mirror_deletions<R: RemoteApi>(
    remote: &R,
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
        // Without a revision: what is already gone counts as deleted.
        if let Err(e) = remote.delete(&seam_path(&rel), None).await {
            let what = format!("{rel}: cannot delete on the server: {e}");
            log.line(&format!("error {what}"));
            report.errors.push(what);
            continue;
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
pub(crate) async fn refresh_remote<R: RemoteApi>(
    remote: &R,
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
    let mut page = match cursor {
        Some(c) => match remote.list(Some(&c)).await {
            Ok(p) => p,
            // A cursor the server no longer honours: read everything again.
            Err(RemoteError::Reset) => list_all(remote, index, dry_run).await?,
            Err(e) => return Err(e.into()),
        },
        None => list_all(remote, index, dry_run).await?,
    };
    loop {
        apply_page(index, dest, &page).await?;
        if !page.has_more {
            break;
        }
        page = remote.list(Some(&page.cursor)).await?;
    }
    if !dry_run {
        index.set_meta("cursor", &page.cursor).await?;
        index.set_meta("dest", dest).await?;
    }
    Ok(())
}

/// The first page of a full listing of DEST (created first if missing, unless this is a dry
/// run), after clearing the index's remote rows.
async fn list_all<R: RemoteApi>(remote: &R, index: &Index, dry_run: bool) -> Result<Page, Error> {
    let mut tx = index.begin().await?;
    index::clear_remote(&mut tx).await?;
    tx.commit().await?;
    Ok(remote.list_from_start(!dry_run, false).await?)
}

async fn apply_page(index: &Index, dest: &str, page: &Page) -> Result<(), Error> {
    let mut tx = index.begin().await?;
    for change in &page.changes {
        match change {
            Change::Put(e) => {
                let row = RemoteRow {
                    is_dir: e.folder,
                    rev: e.rev.clone(),
                    hash: e.content_hash.clone(),
                    size: e.size,
                };
                index::put_remote(&mut tx, &lower(&format!("{dest}{}", e.path)), &row).await?;
            }
            Change::Deleted(p) => {
                index::delete_remote(&mut tx, &lower(&format!("{dest}{p}"))).await?
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

/// One folder of a walk: its relative path, its entries that are not excluded (relative
/// path and `lstat`), the symbolic links and special files met (relative paths), and the
/// entries that could not be read.
pub(crate) struct Folder {
    pub dir: String,
    pub entries: Vec<(String, Stat)>,
    pub special: Vec<String>,
    pub problems: Vec<String>,
}

/// Walks a local tree one folder at a time (depth first) through [`LocalFs::list`] (the
/// sync engine's listing: it never follows symbolic links and leaves out the client's own
/// files), applying `--exclude` patterns and the `.cubbyignore` files it meets.
pub(crate) struct Walker<'a, F: LocalFs> {
    fs: &'a F,
    stack: Vec<String>,
    ignore: Ignore,
    /// Entries left out by a pattern.
    pub excluded: u64,
}

impl<'a, F: LocalFs> Walker<'a, F> {
    pub fn new(fs: &'a F, excludes: &[String]) -> Self {
        let mut ignore = Ignore::default();
        for pattern in excludes {
            ignore.add_lines("", pattern);
        }
        Self {
            fs,
            stack: vec![String::new()],
            ignore,
            excluded: 0,
        }
    }

    pub fn is_excluded(&self, rel: &str, is_dir: bool) -> bool {
        self.ignore.is_excluded(rel, is_dir)
    }

    /// The next folder, or an error naming a folder that could not be read.
    pub fn next(&mut self) -> Option<Result<Folder, String>> {
        let dir = self.stack.pop()?;
        let listing = match self.fs.list(&seam_path(&dir)) {
            Ok(l) => l,
            Err(e) => {
                let abs = self.fs.source(&seam_path(&dir));
                let why = e.to_string();
                // The real disk names the folder in its error already.
                let why = why
                    .strip_prefix(&format!("{}: ", abs.display()))
                    .unwrap_or(&why);
                return Some(Err(format!(
                    "{}: cannot read the folder: {why}",
                    abs.display()
                )));
            }
        };
        if let Some(text) = &listing.ignore {
            self.ignore.add_lines(&dir, text);
        }
        let rel_of = |name: &str| {
            if dir.is_empty() {
                name.to_owned()
            } else {
                format!("{dir}/{name}")
            }
        };
        let problems = listing
            .problems
            .iter()
            .map(|(p, why)| format!("{}: {why}", self.fs.source(p).display()))
            .collect();
        let special = listing
            .special
            .iter()
            .map(|p| p.trim_start_matches('/').to_owned())
            .collect();
        let mut entries = Vec::with_capacity(listing.entries.len());
        let mut subdirs = Vec::new();
        for (name, stat) in listing.entries {
            let rel = rel_of(&name);
            if self.ignore.is_excluded(&rel, stat.is_dir) {
                self.excluded += 1;
                continue;
            }
            if stat.is_dir {
                subdirs.push(rel.clone());
            }
            entries.push((rel, stat));
        }
        // Reversed, so folders are visited in name order.
        self.stack.extend(subdirs.into_iter().rev());
        Some(Ok(Folder {
            dir,
            entries,
            special,
            problems,
        }))
    }
}

/// Runs a blocking file system call: on a thread of the blocking pool where the runtime has
/// several, in place on a single-threaded runtime (the simulation, whose disk is memory).
pub(crate) async fn blocking<F, T>(fs: &Arc<F>, f: impl FnOnce(&F) -> T + Send + 'static) -> T
where
    F: LocalFs + 'static,
    T: Send + 'static,
{
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::CurrentThread => f(fs),
        _ => {
            let fs = fs.clone();
            tokio::task::spawn_blocking(move || f(&fs))
                .await
                .expect("a blocking file system call panicked")
        }
    }
}

/// Why a file is not backed up when the disk reports it changed while it was read.
const CHANGED_WHILE_READ: &str = "changed while being read; it will be backed up next time";

/// One file to back up.
struct FileJob<F, R> {
    fs: Arc<F>,
    remote: Arc<R>,
    rel: String,
    /// `/rel`: the file's path on both seams.
    path: String,
    dest: String,
    old: Option<LocalRow>,
    on_server: Option<RemoteRow>,
    /// The content an earlier run was sending when it stopped before recording the upload.
    sent: Option<String>,
    /// Its name equals another entry's of the folder but for case or Unicode form, and the
    /// other keeps the server's path (see [`twins`]): it goes beside, as a conflicted copy.
    twin: bool,
    index: Index,
    seen: Stat,
    dry_run: bool,
}

impl<F: LocalFs + 'static, R: RemoteApi + 'static> FileJob<F, R> {
    async fn run(self) -> Outcome {
        match self.try_run().await {
            Ok(o) => o,
            Err(why) => Outcome::Failed(why),
        }
    }

    /// The server's display path of an entry below DEST.
    fn display(&self, e: &Entry) -> String {
        format!("{}{}", self.dest, e.path)
    }

    async fn try_run(&self) -> Result<Outcome, String> {
        // Hash first (the engine's hash path): if the server holds the same content, nothing
        // is sent.
        let path = self.path.clone();
        let hashed = blocking(&self.fs, move |fs| fs.hash(&path)).await;
        let hash = match hashed {
            Ok((hash, stat)) if self.same_as_seen(&stat) => hash,
            Ok(_) => return Err(CHANGED_WHILE_READ.into()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                return Err(CHANGED_WHILE_READ.into());
            }
            Err(e) => return Err(format!("cannot read: {e}")),
        };
        let row = |rev: Option<String>| self.row(&hash, rev);
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
                path: remote_of(&self.dest, &self.rel),
                bytes: self.seen.size,
            });
        }
        if self.twin {
            return self.keep_beside(&hash).await;
        }
        // Never blindly: over the revision this backup last saw, or only where nothing is. A
        // server copy holding what an earlier run was sending when it stopped (before its
        // index row) is that run's upload, not someone else's edit: it is updated.
        let ours = self
            .on_server
            .as_ref()
            .filter(|r| !r.is_dir && r.hash.is_some() && r.hash == self.sent)
            .and_then(|r| r.rev.clone());
        let mode = match ours.or_else(|| self.old.as_ref().and_then(|o| o.rev.clone())) {
            Some(rev) => Mode::Update(rev),
            None => Mode::Add,
        };
        self.index
            .put_sent(&self.rel, &hash)
            .await
            .map_err(|e| format!("cannot write the index: {e}"))?;
        let put = Put {
            mode,
            autorename: false,
            client_modified: Some(self.seen.mtime_ns.div_euclid(1_000_000_000)),
        };
        let source = self.fs.source(&self.path);
        let mut sent = self.remote.upload_as(&self.path, &put, &source).await;
        for _ in 0..2 {
            match &sent {
                // The file changed while the upload read it (the client refuses to send a
                // file whose length moved): send what it holds now; the check below then
                // reports that the version sent is not the one listed.
                Err(RemoteError::Refused(_)) if !self.unchanged().await => {
                    sent = self.remote.upload_as(&self.path, &put, &source).await;
                }
                _ => break,
            }
        }
        match sent {
            Ok(entry) => {
                // The row records what the server now holds (its rev, and its hash: the file
                // is read again to be sent), so the next run updates that revision instead of
                // taking our own upload for someone else's edit.
                let row = LocalRow {
                    hash: entry.content_hash.clone().or(Some(hash.clone())),
                    ..row(entry.rev.clone())
                };
                let path = self.display(&entry);
                let bytes = self.seen.size;
                Ok(if self.unchanged().await {
                    Outcome::Uploaded { row, bytes, path }
                } else {
                    // The row keeps the stat of the version read, so the next run reads the
                    // file again and sends what changed.
                    Outcome::UploadedThenChanged { row, bytes, path }
                })
            }
            Err(RemoteError::Changed(_)) if !self.unchanged().await => {
                Err(CHANGED_WHILE_READ.into())
            }
            Err(RemoteError::Changed(_)) => {
                // Someone changed the server's copy since our last backup: keep both.
                self.keep_beside(&hash).await
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Uploads this version beside the server's copy, as a conflicted copy, and records it
    /// (`hash`: what was read).
    async fn keep_beside(&self, hash: &str) -> Result<Outcome, String> {
        let (parent, name) = self.path.rsplit_once('/').unwrap_or(("", &self.path));
        let copy_path = format!("{parent}/{}", cubby_core::naming::conflicted_copy(name, 1));
        let copy_put = Put {
            mode: Mode::Add,
            autorename: true,
            client_modified: Some(self.seen.mtime_ns.div_euclid(1_000_000_000)),
        };
        let source = self.fs.source(&self.path);
        let copy = self
            .remote
            .upload_as(&copy_path, &copy_put, &source)
            .await
            .map_err(|e| format!("conflict, and the conflicted copy failed: {e}"))?;
        // Remember the server's current revision, so the next run does not make another
        // copy of the same unchanged file, and our next change updates the copy the server
        // kept. Only if it is this very path: a name that differs but for case is another
        // local file's backup (a case-sensitive source), which an update would replace;
        // without a revision the row still marks this version as kept, and a later change
        // goes as another conflicted copy.
        let rev = if self.twin {
            None
        } else {
            match self.remote.get(&self.path).await {
                Ok(Some(e)) if !e.folder && e.path == self.path => e.rev,
                _ => None,
            }
        };
        Ok(Outcome::Conflict {
            row: self.row(hash, rev),
            copy: self.display(&copy),
        })
    }

    /// The index row of the version read (`hash`), at revision `rev`.
    fn row(&self, hash: &str, rev: Option<String>) -> LocalRow {
        LocalRow {
            path: self.rel.clone(),
            is_dir: false,
            size: self.seen.size,
            mtime_ns: self.seen.mtime_ns,
            inode: self.seen.inode,
            hash: Some(hash.to_owned()),
            rev,
        }
    }

    fn same_as_seen(&self, stat: &Stat) -> bool {
        stat.size == self.seen.size && stat.mtime_ns == self.seen.mtime_ns
    }

    /// Whether the file is still as it was listed (else it is tried again next run).
    async fn unchanged(&self) -> bool {
        let path = self.path.clone();
        matches!(
            blocking(&self.fs, move |fs| fs.stat(&path)).await,
            Ok(Some(stat)) if self.same_as_seen(&stat)
        )
    }
}
