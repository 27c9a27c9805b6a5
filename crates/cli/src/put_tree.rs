//! `cubby put -r LOCAL_DIR [REMOTE]`: a folder and everything in it, uploaded as it is.
//!
//! One folder at a time, depth first. Small files go as closed session starts (their bytes
//! become small blocks on the server, no block file each), [`PARALLEL`] in flight, committed
//! [`BATCH`] at a time by one `upload_session/finish_batch_v2`; a larger file goes through
//! its own resumable session. Empty folders are created; folders holding something come into
//! being with it. Memory: the files of one batch as paths, and [`PARALLEL`] small files'
//! bytes at once. Symbolic links and special files are reported and left out, never followed.
//! A file that cannot be read or committed is reported; the others go on, and the exit
//! status says whether everything arrived.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use bytes::Bytes;
use cubby_client::transfer::UploadOptions;
use cubby_client::types::SessionFinishBatchEntry;
use futures_util::StreamExt;
use serde_json::json;

use crate::client::{Session, api, dropbox_time, exit, fail};

/// Files up to this size go in a batch; larger ones in a session of their own.
const BATCH_MAX_SIZE: u64 = 4 * 1024 * 1024;
/// Files per `finish_batch_v2` (Dropbox's limit).
const BATCH: usize = 1000;
/// Small files read and sent at once.
const PARALLEL: usize = 8;

/// A file waiting for its batch.
struct Pending {
    local: PathBuf,
    remote: String,
    modified: Option<String>,
}

#[derive(Default)]
struct Tally {
    files: u64,
    bytes: u64,
    folders: u64,
    skipped: u64,
    failed: Vec<String>,
}

/// Uploads the tree at `local` to the folder `remote` with `opts` (its mode and autorename;
/// each file's modification time is its own).
pub async fn put_tree(s: &Session, local: &Path, remote: &str, opts: &UploadOptions) -> Result<()> {
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut pending: Vec<Pending> = Vec::new();
    let mut stack = vec![(local.to_owned(), remote.to_owned())];
    while let Some((dir, at)) = stack.pop() {
        let mut entries =
            match std::fs::read_dir(&dir).and_then(|r| r.collect::<Result<Vec<_>, _>>()) {
                Ok(e) => e,
                Err(e) => {
                    report(s, &mut tally, &dir, &format!("cannot read the folder: {e}"));
                    continue;
                }
            };
        entries.sort_by_key(|e| e.file_name());
        if entries.is_empty() {
            match s.client.create_folder(&at, false).await {
                Ok(_) => tally.folders += 1,
                // Already there: nothing to do.
                Err(e) if e.kind() == cubby_client::ErrorKind::Conflict => {}
                Err(e) => report(s, &mut tally, &dir, &format!("cannot create {at}: {e}")),
            }
            continue;
        }
        let mut subdirs = Vec::new();
        for entry in entries {
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                report(s, &mut tally, &path, "the name is not UTF-8");
                continue;
            };
            let target = format!("{at}/{name}");
            // `symlink_metadata`: a link is never followed.
            let meta = match entry.path().symlink_metadata() {
                Ok(m) => m,
                Err(e) => {
                    report(s, &mut tally, &path, &format!("cannot read: {e}"));
                    continue;
                }
            };
            if meta.is_dir() {
                subdirs.push((path, target));
            } else if !meta.is_file() {
                tally.skipped += 1;
                if !s.json {
                    eprintln!("skip {}: a symbolic link or special file", path.display());
                }
            } else if meta.len() > BATCH_MAX_SIZE {
                let modified = modified_of(&meta);
                let one = UploadOptions {
                    client_modified: modified,
                    ..opts.clone()
                };
                let state = crate::profile::upload_state_dir();
                match s
                    .client
                    .upload_file(
                        &path,
                        &target,
                        &one,
                        Some(&state),
                        &crate::progress::Bar::new("", false),
                    )
                    .await
                {
                    Ok(f) => done(
                        s,
                        &mut tally,
                        &path,
                        &f.path_display.unwrap_or(target),
                        f.size,
                    ),
                    Err(e) => report(s, &mut tally, &path, &e.to_string()),
                }
            } else {
                pending.push(Pending {
                    local: path,
                    remote: target,
                    modified: modified_of(&meta),
                });
                if pending.len() == BATCH {
                    flush(s, &mut pending, opts, &mut tally).await?;
                }
            }
        }
        // Reversed, so folders are visited in name order.
        stack.extend(subdirs.into_iter().rev());
    }
    flush(s, &mut pending, opts, &mut tally).await?;
    let secs = started.elapsed().as_secs_f64();
    let summary = json!({
        "files": tally.files,
        "bytes": tally.bytes,
        "folders_created": tally.folders,
        "skipped": tally.skipped,
        "failed": tally.failed,
        "seconds": (secs * 1000.0).round() / 1000.0,
    });
    s.print(&summary, || {
        let plural =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        format!(
            "{} ({}) into {remote} in {secs:.1} s; {} created, {} left out, {} failed",
            plural(tally.files, "file", "files"),
            cubby_core::naming::human_size(tally.bytes),
            plural(tally.folders, "empty folder", "empty folders"),
            plural(
                tally.skipped,
                "link or special file",
                "links or special files"
            ),
            tally.failed.len()
        )
    });
    if tally.failed.is_empty() {
        Ok(())
    } else {
        Err(fail(
            exit::FAILURE,
            format!(
                "{} of the files were not uploaded (see above)",
                tally.failed.len()
            ),
        ))
    }
}

/// A union as Dropbox's `error_summary` writes it: each tag, then the tag of the member it
/// names (`path/conflict/file`).
fn summary(v: &serde_json::Value) -> String {
    let mut out = Vec::new();
    let mut cur = v;
    while let Some((tag, fields)) = cubby_core::wire::union_tag(cur) {
        out.push(tag.to_owned());
        match fields.and_then(|f| f.get(tag)) {
            Some(inner) => cur = inner,
            None => break,
        }
    }
    out.join("/")
}

fn modified_of(meta: &std::fs::Metadata) -> Option<String> {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| dropbox_time(d.as_secs() as i64))
}

fn done(s: &Session, tally: &mut Tally, local: &Path, remote: &str, size: u64) {
    tally.files += 1;
    tally.bytes += size;
    if s.json {
        println!(
            "{}",
            json!({"local": local.display().to_string(), "path": remote, "size": size})
        );
    }
}

fn report(s: &Session, tally: &mut Tally, local: &Path, why: &str) {
    let what = format!("{}: {why}", local.display());
    if s.json {
        println!(
            "{}",
            json!({"local": local.display().to_string(), "error": why})
        );
    } else {
        eprintln!("error {what}");
    }
    tally.failed.push(what);
}

/// Sends the pending small files: their sessions started [`PARALLEL`] at a time, then one
/// `finish_batch_v2` for all of them.
async fn flush(
    s: &Session,
    pending: &mut Vec<Pending>,
    opts: &UploadOptions,
    tally: &mut Tally,
) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let batch = std::mem::take(pending);
    let client = &s.client;
    // Each start carries its content hash, which the server checks; the commit's hash is
    // checked against it too.
    let started: Vec<Result<(String, u64, String), String>> = futures_util::stream::iter(&batch)
        .map(|p| async move {
            let data = tokio::fs::read(&p.local)
                .await
                .map_err(|e| format!("cannot read: {e}"))?;
            let len = data.len() as u64;
            let (id, hash) = client
                .session_start_file(Bytes::from(data))
                .await
                .map_err(|e| e.to_string())?;
            Ok((id, len, hash))
        })
        .buffered(PARALLEL)
        .collect()
        .await;
    let mut commits = Vec::with_capacity(batch.len());
    let mut sent = Vec::with_capacity(batch.len());
    for (p, start) in batch.iter().zip(started) {
        match start {
            Ok((id, len, hash)) => {
                let one = UploadOptions {
                    client_modified: p.modified.clone(),
                    ..opts.clone()
                };
                commits.push((id, len, one.commit_info(&p.remote)));
                sent.push((p, hash));
            }
            Err(why) => report(s, tally, &p.local, &why),
        }
    }
    if commits.is_empty() {
        return Ok(());
    }
    let refs: Vec<(&str, u64, _)> = commits
        .iter()
        .map(|(id, len, c)| (id.as_str(), *len, c.clone()))
        .collect();
    let answer = client.session_finish_batch(&refs).await.map_err(api)?;
    for ((p, hash), item) in sent.into_iter().zip(answer.entries) {
        match item {
            SessionFinishBatchEntry::Success(f) if f.content_hash.as_deref() != Some(&hash) => {
                report(
                    s,
                    tally,
                    &p.local,
                    "the server holds other content than was sent",
                );
            }
            SessionFinishBatchEntry::Success(f) => {
                let at = f.path_display.clone().unwrap_or_else(|| p.remote.clone());
                done(s, tally, &p.local, &at, f.size);
            }
            SessionFinishBatchEntry::Failure { failure } => {
                let why = serde_json::to_value(&failure)
                    .map(|v| summary(&v))
                    .unwrap_or_default();
                report(s, tally, &p.local, &format!("not committed: {why}"));
            }
        }
    }
    Ok(())
}
