//! `cubby backup --verify` and `cubby restore-backup`: checking a backup against the local
//! tree, and bringing a backed-up tree back, as it is or as it was at a point in time.

use std::path::Path;
use std::sync::Arc;

use cubby_client::Client;
use cubby_core::path::lower;
use futures_util::StreamExt;
use serde::Serialize;

use crate::backup::{Error, Walker, refresh_remote, remote_of};
use crate::engine::fs::{LocalFs, RealFs};
use crate::engine::remote::{Change, ClientRemote, RemoteApi};
use crate::index::Index;

/// Downloads in flight during a restore.
const RESTORES_IN_FLIGHT: usize = 4;

/// What `--verify` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    pub checked: u64,
    /// Local files whose content the server does not hold at their path.
    pub differ: Vec<String>,
    /// Local files the server does not have at all.
    pub missing: Vec<String>,
    pub errors: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.differ.is_empty() && self.missing.is_empty() && self.errors.is_empty()
    }
}

/// Hashes every local file and compares it with the server's content hash at its path.
pub async fn verify(
    client: &Arc<Client>,
    index: &Index,
    src: &Path,
    dest: &str,
    excludes: &[String],
) -> Result<VerifyReport, Error> {
    let fs = RealFs::read_only(src);
    let remote = ClientRemote::new(client.clone(), dest, None);
    verify_with(&fs, &remote, index, dest, excludes).await
}

/// [`verify`] over the sync engine's seams.
pub async fn verify_with<F: LocalFs, R: RemoteApi>(
    fs: &F,
    remote: &R,
    index: &Index,
    dest: &str,
    excludes: &[String],
) -> Result<VerifyReport, Error> {
    refresh_remote(remote, index, dest, false).await?;
    let mut report = VerifyReport::default();
    let mut walker = Walker::new(fs, excludes);
    while let Some(folder) = walker.next() {
        let folder = match folder {
            Ok(f) => f,
            Err(what) => {
                report.errors.push(what);
                continue;
            }
        };
        report.errors.extend(folder.problems);
        let files: Vec<&String> = folder
            .entries
            .iter()
            .filter(|(_, e)| !e.is_dir)
            .map(|(rel, _)| rel)
            .collect();
        let keys: Vec<String> = files
            .iter()
            .map(|rel| lower(&remote_of(dest, rel)))
            .collect();
        let on_server = index.remote_rows(&keys).await?;
        for (rel, key) in files.into_iter().zip(keys) {
            report.checked += 1;
            let local = match fs.hash(&format!("/{rel}")) {
                Ok((h, _)) => h,
                Err(e) => {
                    report.errors.push(format!("{rel}: cannot read: {e}"));
                    continue;
                }
            };
            match on_server.get(&key) {
                Some(r) if r.hash.as_deref() == Some(local.as_str()) => {}
                Some(_) => report.differ.push(rel.clone()),
                None => report.missing.push(rel.clone()),
            }
        }
    }
    Ok(report)
}

/// What a restore did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RestoreReport {
    pub files: u64,
    pub bytes: u64,
    pub folders: u64,
    pub errors: Vec<String>,
}

/// Brings `remote` (a server folder) back into `local`: as it is now, or as it was at `at`
/// (Unix seconds): each file at its newest revision from then, deleted files included if
/// they were deleted after it. A download appears only complete and verified, and never
/// replaces a local file: a file already there with other content is reported and kept.
pub async fn restore(
    client: &Arc<Client>,
    remote: &str,
    local: &Path,
    at: Option<i64>,
) -> Result<RestoreReport, Error> {
    std::fs::create_dir_all(local)?;
    let fs = RealFs::new(local);
    let remote = ClientRemote::new(client.clone(), remote, None);
    restore_with(&fs, &remote, at).await
}

/// A file to bring back: its path (below both roots) and, once known, the revision.
struct Wanted {
    path: String,
    rev: Option<(String, Option<String>, u64)>,
}

/// [`restore`] over the sync engine's seams: `remote` is the backed-up folder, `fs` the
/// folder restored into.
pub async fn restore_with<F: LocalFs, R: RemoteApi>(
    fs: &F,
    remote: &R,
    at: Option<i64>,
) -> Result<RestoreReport, Error> {
    let mut report = RestoreReport::default();
    let mut page = remote.list_from_start(false, at.is_some()).await?;
    loop {
        let mut wanted: Vec<Wanted> = Vec::new();
        for change in &page.changes {
            match (change, at) {
                (Change::Put(e), None) if e.folder => match make_dirs(fs, &e.path) {
                    Ok(()) => report.folders += 1,
                    Err(err) => report.errors.push(format!("{}: {err}", e.path)),
                },
                (Change::Put(e), Some(_)) if e.folder => {}
                (Change::Put(e), None) => wanted.push(Wanted {
                    path: e.path.clone(),
                    rev: e.rev.clone().map(|r| (r, e.content_hash.clone(), e.size)),
                }),
                (Change::Put(Entry { path, .. }) | Change::Deleted(path), Some(_)) => {
                    wanted.push(Wanted {
                        path: path.clone(),
                        rev: None,
                    })
                }
                (Change::Deleted(_), None) => {}
            }
        }
        // The revisions as of `at`.
        let resolved = futures_util::stream::iter(wanted)
            .map(|w| async move {
                match (w.rev, at) {
                    (Some(r), _) => Ok((w.path, Some(r))),
                    (None, Some(t)) => {
                        let r = revision_at(remote, &w.path, t)
                            .await
                            .map_err(|e| format!("{}: {e}", w.path))?;
                        Ok((w.path, r))
                    }
                    (None, None) => Ok((w.path, None)),
                }
            })
            .buffer_unordered(RESTORES_IN_FLIGHT)
            .collect::<Vec<Result<_, String>>>()
            .await;
        let fetched = futures_util::stream::iter(resolved)
            .map(|r| async move {
                let (path, Some((rev, hash, size))) = r? else {
                    return Ok(None);
                };
                fetch(fs, remote, &path, &rev, hash.as_deref(), size).await
            })
            .buffer_unordered(RESTORES_IN_FLIGHT)
            .collect::<Vec<_>>()
            .await;
        // Complete downloads are made durable together, then put in place.
        let mut partials = Vec::new();
        for r in fetched {
            match r {
                Ok(Some(Fetched::Same(size))) => {
                    report.files += 1;
                    report.bytes += size;
                }
                Ok(Some(Fetched::Partial(path, partial, size))) => {
                    partials.push((path, partial, size))
                }
                Ok(None) => {}
                Err(e) => report.errors.push(e),
            }
        }
        let flushed = partials
            .iter()
            .map(|(_, p, _)| p.clone())
            .collect::<Vec<_>>();
        if let Err(e) = fs.flush(&flushed) {
            for (path, partial, _) in partials.drain(..) {
                fs.discard(&partial);
                report.errors.push(format!("{path}: {e}"));
            }
        }
        for (path, partial, size) in partials {
            match fs.install(&partial, &path, None) {
                Ok(_) => {
                    report.files += 1;
                    report.bytes += size;
                }
                Err(e) => {
                    fs.discard(&partial);
                    report.errors.push(format!(
                        "{}: something is already there, not replaced ({e})",
                        fs.source(&path).display()
                    ));
                }
            }
        }
        if !page.has_more {
            break;
        }
        page = remote.list(Some(&page.cursor)).await?;
    }
    Ok(report)
}

use crate::engine::remote::Entry;

/// A file fetched into its partial file, or already there with the same content.
enum Fetched {
    Partial(String, std::path::PathBuf, u64),
    Same(u64),
}

/// Downloads one revision beside its place, unless the place is taken.
async fn fetch<F: LocalFs, R: RemoteApi>(
    fs: &F,
    remote: &R,
    path: &str,
    rev: &str,
    hash: Option<&str>,
    size: u64,
) -> Result<Option<Fetched>, String> {
    let shown = || fs.source(path).display().to_string();
    let hash = hash.ok_or_else(|| format!("{}: the server gave no content hash", shown()))?;
    make_dirs(fs, cubby_core::path::parent_of(path)).map_err(|e| format!("{}: {e}", shown()))?;
    match fs.stat(path) {
        Ok(None) => {}
        Ok(Some(st)) if !st.is_dir && fs.hash(path).is_ok_and(|(h, _)| h == hash) => {
            return Ok(Some(Fetched::Same(size)));
        }
        Ok(Some(_)) => {
            return Err(format!(
                "{}: something else is already there, not replaced",
                shown()
            ));
        }
        Err(e) => return Err(format!("{}: {e}", shown())),
    }
    let partial = fs.partial(path);
    match remote.download(rev, hash, &partial).await {
        Ok(()) => Ok(Some(Fetched::Partial(path.to_owned(), partial, size))),
        Err(e) => {
            fs.discard(&partial);
            Err(format!("{}: {e}", shown()))
        }
    }
}

/// Makes a folder and its parents (`""`: the root, already there).
fn make_dirs<F: LocalFs>(fs: &F, path: &str) -> std::io::Result<()> {
    if path.is_empty() {
        return Ok(());
    }
    match fs.stat(path)? {
        Some(st) if st.is_dir => Ok(()),
        Some(_) => Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "a file is there",
        )),
        None => {
            make_dirs(fs, cubby_core::path::parent_of(path))?;
            fs.mkdir(path).map(|_| ())
        }
    }
}

/// The newest revision of `path` saved at or before `at`, if the file existed then.
async fn revision_at<R: RemoteApi>(
    remote: &R,
    path: &str,
    at: i64,
) -> Result<Option<(String, Option<String>, u64)>, crate::engine::RemoteError> {
    let Some(r) = remote.revisions(path, 100).await? else {
        return Ok(None);
    };
    if r.deleted_at.is_some_and(|deleted| deleted <= at) {
        return Ok(None);
    }
    Ok(r.entries
        .iter()
        .filter(|f| f.server_modified <= at)
        .max_by_key(|f| f.server_modified)
        .map(|f| (f.rev.clone(), f.content_hash.clone(), f.size)))
}
