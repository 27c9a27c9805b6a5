//! `cubby backup --verify` and `cubby restore-backup`: checking a backup against the local
//! tree, and bringing a backed-up tree back, as it is or as it was at a point in time.

use std::path::{Path, PathBuf};

use cubby_client::transfer::Quiet;
use cubby_client::types::{ListFolderResult, ListRevisionsResult, Metadata};
use cubby_client::{Client, ErrorKind};
use cubby_core::path::lower;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::json;

use crate::backup::{EntryKind, Error, Walker, hash_file, refresh_remote, remote_of};
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
    client: &Client,
    index: &Index,
    src: &Path,
    dest: &str,
    excludes: &[String],
) -> Result<VerifyReport, Error> {
    refresh_remote(client, index, dest, false).await?;
    let mut report = VerifyReport::default();
    let mut walker = Walker::new(src, excludes);
    while let Some(folder) = walker.next().await {
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
            .filter(|(_, e)| e.kind == EntryKind::File)
            .map(|(rel, _)| rel)
            .collect();
        let keys: Vec<String> = files
            .iter()
            .map(|rel| lower(&remote_of(dest, rel)))
            .collect();
        let remote = index.remote_rows(&keys).await?;
        for (rel, key) in files.into_iter().zip(keys) {
            report.checked += 1;
            let local = match hash_file(&src.join(rel)).await {
                Ok(h) => h,
                Err(e) => {
                    report.errors.push(format!("{rel}: cannot read: {e}"));
                    continue;
                }
            };
            match remote.get(&key) {
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
/// they were deleted after it. Existing local files are replaced only once a download is
/// complete and verified.
pub async fn restore(
    client: &Client,
    remote: &str,
    local: &Path,
    at: Option<i64>,
) -> Result<RestoreReport, Error> {
    let mut report = RestoreReport::default();
    let base = lower(remote);
    std::fs::create_dir_all(local)?;
    let arg =
        json!({"path": remote, "recursive": true, "include_deleted": at.is_some(), "limit": 2000});
    let mut page: ListFolderResult = client.rpc("files/list_folder", &arg).await?;
    loop {
        // (the revision to fetch, or None to look it up as of `at`; the path; the target).
        let mut downloads: Vec<(Option<String>, String, PathBuf)> = Vec::new();
        for m in &page.entries {
            let Some(rel) = relative(&base, m) else {
                continue;
            };
            if rel.is_empty() {
                continue;
            }
            let target = local.join(&rel);
            let path = m.path_lower().unwrap_or_default().to_owned();
            match (m, at) {
                (Metadata::Folder(_), None) => {
                    std::fs::create_dir_all(&target)?;
                    report.folders += 1;
                }
                (Metadata::Folder(_), Some(_)) => {}
                (Metadata::File(f), None) => downloads.push((Some(f.rev.clone()), path, target)),
                (Metadata::File(_) | Metadata::Deleted(_), Some(_)) => {
                    downloads.push((None, path, target))
                }
                (Metadata::Deleted(_), None) => {}
            }
        }
        let resolved = futures_util::stream::iter(downloads)
            .map(|(rev, path, target)| async move {
                let rev = match (rev, at) {
                    (Some(r), _) => Some(r),
                    (None, Some(t)) => revision_at(client, &path, t).await?,
                    (None, None) => None,
                };
                Ok::<_, cubby_client::Error>(rev.map(|r| (format!("rev:{r}"), target)))
            })
            .buffer_unordered(RESTORES_IN_FLIGHT)
            .collect::<Vec<_>>()
            .await;
        let fetched = futures_util::stream::iter(resolved)
            .map(|r| async move {
                let (source, target): (String, PathBuf) = match r {
                    Ok(Some(x)) => x,
                    Ok(None) => return Ok(None),
                    Err(e) => return Err(format!("{e}")),
                };
                if let Some(dir) = target.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                }
                client
                    .download_file(&source, &target, &Quiet)
                    .await
                    .map(|f| Some(f.size))
                    .map_err(|e| format!("{}: {e}", target.display()))
            })
            .buffer_unordered(RESTORES_IN_FLIGHT)
            .collect::<Vec<_>>()
            .await;
        for r in fetched {
            match r {
                Ok(Some(size)) => {
                    report.files += 1;
                    report.bytes += size;
                }
                Ok(None) => {}
                Err(e) => report.errors.push(e),
            }
        }
        if !page.has_more {
            break;
        }
        page = client.list_folder_continue(&page.cursor).await?;
    }
    Ok(report)
}

/// The newest revision of `path` saved at or before `at`, if the file existed then.
async fn revision_at(
    client: &Client,
    path: &str,
    at: i64,
) -> Result<Option<String>, cubby_client::Error> {
    let r: ListRevisionsResult = match client
        .rpc("files/list_revisions", &json!({"path": path, "limit": 100}))
        .await
    {
        Ok(r) => r,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if let Some(deleted) = r
        .server_deleted
        .as_deref()
        .and_then(cubby_core::time::parse)
        && deleted <= at
    {
        return Ok(None);
    }
    Ok(r.entries
        .iter()
        .filter(|f| cubby_core::time::parse(&f.server_modified).is_some_and(|t| t <= at))
        .max_by_key(|f| cubby_core::time::parse(&f.server_modified))
        .map(|f| f.rev.clone()))
}

/// The path of `m` below the restored folder, from its display path (keeping the names'
/// case); `None` if it is not below it.
fn relative(base_lower: &str, m: &Metadata) -> Option<String> {
    let lower_path = m.path_lower()?;
    let display = m.path_display();
    if lower_path == base_lower {
        return Some(String::new());
    }
    let rest = lower_path.strip_prefix(base_lower)?.strip_prefix('/')?;
    // The display path has the same number of segments; take as many from its end.
    let n = rest.split('/').count();
    let parts: Vec<&str> = display.rsplit('/').take(n).collect();
    Some(parts.into_iter().rev().collect::<Vec<_>>().join("/"))
}
