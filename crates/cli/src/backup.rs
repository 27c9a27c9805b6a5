//! `cubby backup` and `cubby restore-backup`: wiring of the `cubby-sync` engines (the index's
//! place, the log file, the summary and the exit status).

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use cubby_sync::backup::{self, Log, Options};
use cubby_sync::index::Index;

use crate::client::{BackupArgs, RestoreBackupArgs, Session, exit, fail, human};

/// Log lines to a file (with a timestamp) and, with `--verbose` logging, to tracing.
struct FileLog {
    file: Option<Mutex<std::fs::File>>,
}

impl Log for FileLog {
    fn line(&self, text: &str) {
        tracing::debug!("{text}");
        if let Some(f) = &self.file {
            let stamp = cubby_core::time::format(cubby_client::now());
            let _ = writeln!(f.lock().expect("log"), "{stamp} {text}");
        }
    }
}

/// Where a backup's index lives unless `--index` names it: one per profile, source and
/// destination.
fn default_index(profile: &str, src: &std::path::Path, dest: &str) -> PathBuf {
    let key = format!("{profile}\n{}\n{dest}", src.display());
    crate::profile::state_file("backups", &key)
}

pub async fn backup(a: BackupArgs) -> Result<()> {
    let session = Session::open(&a.common)?;
    let src = std::path::absolute(&a.src).unwrap_or(a.src.clone());
    if !src.is_dir() {
        return Err(fail(
            exit::USAGE,
            format!("{} is not a folder", a.src.display()),
        ));
    }
    let dest = crate::client::remote_path(&a.dest);
    let index_path = a
        .index
        .clone()
        .unwrap_or_else(|| default_index(&a.common.profile, &src, &dest));
    let index = Index::open(&index_path)
        .await
        .with_context(|| format!("opening the index {}", index_path.display()))?;
    let log = FileLog {
        file: match &a.log {
            Some(p) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("opening the log {}", p.display()))?,
            )),
            None => None,
        },
    };
    let json = session.json;
    let client = Arc::new(session.client);
    if a.verify {
        let r = cubby_sync::restore::verify(&client, &index, &src, &dest, &a.excludes)
            .await
            .map_err(engine)?;
        index.close().await;
        for p in &r.differ {
            log.line(&format!("differs {p}"));
        }
        for p in &r.missing {
            log.line(&format!("missing {p}"));
        }
        if json {
            println!("{}", serde_json::to_value(&r)?);
        } else {
            println!(
                "{} files checked: {} differ from the server, {} missing on the server, {} errors",
                r.checked,
                r.differ.len(),
                r.missing.len(),
                r.errors.len()
            );
            for p in r.differ.iter().chain(&r.missing) {
                println!("  {p}");
            }
            for e in &r.errors {
                println!("  error: {e}");
            }
        }
        if !r.ok() {
            return Err(fail(
                exit::FAILURE,
                "the backup does not match the local files",
            ));
        }
        return Ok(());
    }
    let opts = Options {
        dry_run: a.dry_run,
        mirror: a.mirror,
        force: a.force,
        max_delete_share: a.max_delete / 100.0,
        excludes: a.excludes.clone(),
        parallel: a.parallel.max(1),
        resume_dir: Some(crate::profile::upload_state_dir()),
    };
    log.line(&format!("backup {} -> {dest} started", src.display()));
    let result = backup::backup(&client, &index, &src, &dest, &opts, &log).await;
    index.close().await;
    let r = result.map_err(engine)?;
    let summary = format!(
        "{} files scanned: {} uploaded ({}), {} unchanged, {} already on the server, {} deleted, {} conflicts, {} errors{}",
        r.scanned,
        r.uploaded,
        human(r.uploaded_bytes),
        r.unchanged,
        r.already_there,
        r.deleted,
        r.conflicts.len(),
        r.errors.len(),
        if r.dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    );
    log.line(&summary);
    if json {
        println!("{}", serde_json::to_value(&r)?);
    } else {
        println!("{summary}");
        for c in &r.conflicts {
            println!("  conflict: the server's copy had changed; this version is kept as {c}");
        }
        for e in &r.errors {
            println!("  error: {e}");
        }
        if r.special_skipped > 0 {
            println!(
                "  {} symbolic links or special files skipped",
                r.special_skipped
            );
        }
    }
    if !r.complete() {
        return Err(fail(
            exit::FAILURE,
            format!("{} files were not backed up", r.errors.len()),
        ));
    }
    Ok(())
}

pub async fn restore(a: RestoreBackupArgs) -> Result<()> {
    let session = Session::open(&a.common)?;
    let at = match &a.at {
        None => None,
        Some(t) => Some(
            t.parse::<i64>()
                .ok()
                .or_else(|| cubby_core::time::parse(t))
                .ok_or_else(|| {
                    fail(
                        exit::USAGE,
                        format!("--at {t}: expected 2026-11-30T02:00:00Z or Unix seconds"),
                    )
                })?,
        ),
    };
    let remote = crate::client::remote_path(&a.remote);
    let client = Arc::new(session.client);
    let r = cubby_sync::restore::restore(&client, &remote, &a.local, at)
        .await
        .map_err(engine)?;
    if session.json {
        println!("{}", serde_json::to_value(&r)?);
    } else {
        println!(
            "{} files ({}) and {} folders restored into {}, {} errors",
            r.files,
            human(r.bytes),
            r.folders,
            a.local.display(),
            r.errors.len()
        );
        for e in &r.errors {
            println!("  error: {e}");
        }
    }
    if !r.errors.is_empty() {
        return Err(fail(
            exit::FAILURE,
            format!("{} files were not restored", r.errors.len()),
        ));
    }
    Ok(())
}

/// Maps an engine error to an exit code.
fn engine(e: cubby_sync::backup::Error) -> anyhow::Error {
    use cubby_sync::engine::RemoteError;
    match e {
        cubby_sync::backup::Error::Remote(e) => match e {
            RemoteError::Transient(why) => fail(exit::TRANSIENT, why),
            RemoteError::Fatal(why) => fail(
                exit::AUTH,
                format!("{why} (sign in again with `cubby login`)"),
            ),
            RemoteError::Changed(why) | RemoteError::Refused(why) => fail(exit::FAILURE, why),
            RemoteError::Reset => fail(exit::FAILURE, e.to_string()),
        },
        cubby_sync::backup::Error::MassDelete { .. } => fail(exit::CONFLICT, e.to_string()),
        other => fail(exit::FAILURE, other.to_string()),
    }
}
