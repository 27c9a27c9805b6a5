//! `cubby sync`: wiring of the `cubby-sync` engine (its state file, the terminal side of the
//! follow loop, the summary lines, the mass-deletion question and the exit status).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use cubby_core::sync::plan::Op;
use cubby_sync::engine::watch::{Wake, Watcher};
use cubby_sync::engine::{
    ClientRemote, Direction, Engine, Error, Options, RealFs, RemoteError, Report, SystemClock,
};
use cubby_sync::follow::{self, Outside, Show, Signal};
use serde_json::json;

use crate::client::{Common, Session, exit, fail};

#[derive(Args)]
pub struct SyncArgs {
    /// The local folder (created if missing).
    pub local: PathBuf,
    /// The server folder (an app folder's "/" is the app's own folder).
    pub remote: String,
    /// One pass, then exit (for cron): 0 when both sides agree.
    #[arg(long)]
    pub once: bool,
    /// Mirror the server into the local folder; send nothing up.
    #[arg(long, conflicts_with = "push")]
    pub pull: bool,
    /// Mirror the local folder onto the server; write nothing locally.
    #[arg(long)]
    pub push: bool,
    /// Leave out paths matching this gitignore-style pattern, on both sides (repeatable;
    /// .cubbyignore files add their own). A remote folder left out is never downloaded.
    #[arg(long = "exclude", value_name = "PATTERN")]
    pub excludes: Vec<String>,
    /// Apply a mass deletion (more than --max-delete percent of the tree, or more than
    /// --max-delete-count items) instead of holding it back.
    #[arg(long)]
    pub force: bool,
    #[arg(long, default_value_t = 25.0, value_name = "PERCENT")]
    pub max_delete: f64,
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub max_delete_count: usize,
    /// Days the local trash (.cubby-cache/trash) keeps what sync deleted.
    #[arg(long, default_value_t = 30, value_name = "DAYS")]
    pub trash_days: i64,
    /// Show what is pending, the conflicts and the last error; change nothing.
    #[arg(long)]
    pub status: bool,
    /// The state file (default: one per profile, local and remote folder, under
    /// ~/.local/state/cubby/sync).
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

/// Where a sync keeps its state unless `--db` names it.
fn default_db(profile: &str, local: &std::path::Path, remote: &str) -> PathBuf {
    let key = format!("{profile}\n{}\n{remote}", local.display());
    crate::profile::state_file("sync", &key)
}

type RealEngine = Engine<RealFs, ClientRemote, SystemClock>;

pub async fn sync(a: SyncArgs) -> Result<()> {
    let session = Session::open(&a.common)?;
    let local = std::path::absolute(&a.local).unwrap_or(a.local.clone());
    if !a.status {
        std::fs::create_dir_all(&local).with_context(|| format!("creating {}", local.display()))?;
    }
    if local.exists() && !local.is_dir() {
        return Err(fail(
            exit::USAGE,
            format!("{} is not a folder", local.display()),
        ));
    }
    let remote = crate::client::remote_path(&a.remote);
    let db =
        a.db.clone()
            .unwrap_or_else(|| default_db(&a.common.profile, &local, &remote));
    if let Some(dir) = db.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // One process per synced pair.
    let lock_path = db.with_extension("lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("creating {}", lock_path.display()))?;
    if !a.status && lock.try_lock().is_err() {
        return Err(fail(
            exit::TRANSIENT,
            format!(
                "busy: another `cubby sync` of {} and {remote} is running; run again when it ends",
                local.display()
            ),
        ));
    }
    let opts = Options {
        direction: if a.pull {
            Direction::Pull
        } else if a.push {
            Direction::Push
        } else {
            Direction::Both
        },
        excludes: a.excludes.clone(),
        max_delete_share: a.max_delete / 100.0,
        max_delete: a.max_delete_count,
        force: a.force,
        trash_days: a.trash_days,
        ..Options::default()
    };
    let json = session.json;
    let client = Arc::new(session.client);
    let remote_side = ClientRemote::new(client, &remote, Some(crate::profile::upload_state_dir()));
    let mut engine = Engine::open(RealFs::new(&local), remote_side, SystemClock, &db, opts)
        .await
        .map_err(engine_error)?;
    if a.status {
        let result = status(&mut engine, json).await;
        engine.close().await;
        return result;
    }
    let result = if a.once {
        once(&mut engine, json).await
    } else {
        run(&mut engine, &local, json, a.force).await
    };
    engine.close().await;
    drop(lock);
    result
}

async fn once(engine: &mut RealEngine, json: bool) -> Result<()> {
    let report = engine.pass().await;
    let report = record(engine, report).await?;
    print_report(&report, json, true);
    if let Some(held) = report.held {
        return Err(fail(
            exit::CONFLICT,
            format!(
                "a mass deletion was held back ({} local, {} on the server): check it, then run again with --force",
                held.local_deletes, held.remote_deletes
            ),
        ));
    }
    if !report.problems.is_empty() {
        return Err(fail(
            exit::FAILURE,
            format!("{} items could not be synced", report.problems.len()),
        ));
    }
    if report.one_way_pending {
        return Err(fail(
            exit::FAILURE,
            "the two sides differ: the other side has changes this one-way sync does not send",
        ));
    }
    if !report.converged {
        return Err(fail(
            exit::TRANSIENT,
            "the folders kept changing during the pass; run again",
        ));
    }
    Ok(())
}

/// Saves the outcome of a pass (its error, if any) for `--status`.
async fn record(engine: &RealEngine, report: Result<Report, Error>) -> Result<Report> {
    match report {
        Ok(r) => {
            let _ = engine.set_last_error(None).await;
            Ok(r)
        }
        Err(e) => {
            let _ = engine.set_last_error(Some(e.to_string())).await;
            Err(engine_error(e))
        }
    }
}

/// Asks, in continuous mode, whether a held-back mass deletion should be applied.
fn ask_about(held: &cubby_core::sync::plan::Summary, stdin_open: bool) {
    let how = if stdin_open {
        "type yes and Enter to apply them, or stop cubby sync and check"
    } else {
        "stop cubby sync and run it once with --force to apply them"
    };
    println!(
        "cubby sync: a mass deletion is held back ({} here, {} on the server) while everything else keeps syncing; {how}",
        held.local_deletes, held.remote_deletes
    );
}

/// The terminal side of the follow loop: the watcher, stdin's answers, SIGINT and SIGTERM.
struct Terminal {
    watcher: Option<Watcher>,
    answers: tokio::sync::mpsc::Receiver<String>,
    term: tokio::signal::unix::Signal,
}

impl Outside for Terminal {
    async fn next(&mut self, answers: bool) -> Signal {
        let local = async {
            match self.watcher.as_mut() {
                Some(w) => match w.next().await {
                    Some(Wake::Error(why)) => Signal::WatcherError(why),
                    Some(_) => Signal::LocalChange,
                    None => std::future::pending().await,
                },
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            signal = local => signal,
            line = self.answers.recv(), if answers => match line {
                Some(line) => Signal::Answer(line),
                None => Signal::AnswersClosed,
            },
            _ = tokio::signal::ctrl_c() => Signal::Stop,
            _ = self.term.recv() => Signal::Stop,
        }
    }

    async fn stopped(&mut self) {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = self.term.recv() => {}
        }
    }
}

/// What the follow loop prints.
struct Printed {
    json: bool,
}

impl Show for Printed {
    fn passed(&mut self, report: &Report) {
        print_report(report, self.json, false);
    }

    fn held(&mut self, held: &cubby_core::sync::plan::Summary, answers: bool) {
        if !self.json {
            ask_about(held, answers);
        }
    }

    fn retrying(&mut self, error: &Error, _wait: Duration) {
        eprintln!("cubby sync: {error}; trying again");
    }

    fn answered(&mut self, apply: bool) {
        if apply {
            println!("applying the held-back deletions");
        } else {
            println!("the deletions stay held back");
        }
    }

    fn watcher_error(&mut self, why: &str) {
        eprintln!("cubby sync: {why}");
    }
}

/// Runs until SIGINT or SIGTERM: a pass after each local change (watcher), remote change
/// (longpoll) or, as a safety net, periodically (see `cubby_sync::follow`).
async fn run(
    engine: &mut RealEngine,
    local: &std::path::Path,
    json: bool,
    force: bool,
) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let watcher = match Watcher::start(local, follow::DEBOUNCE) {
        Ok(w) => Some(w),
        Err(why) => {
            eprintln!("cubby sync: {why}");
            None
        }
    };
    // Answers to the mass-deletion question, read on a thread of their own (a pending read
    // must not keep the process from exiting): from a terminal, or from a pipe; none come
    // once stdin is closed (a service).
    let (answer, answers) = tokio::sync::mpsc::channel::<String>(4);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if answer.blocking_send(line).is_err() {
                break;
            }
        }
    });
    let watching = watcher.is_some();
    let mut outside = Terminal {
        watcher,
        answers,
        term,
    };
    follow::follow(engine, &mut outside, &mut Printed { json }, force, watching)
        .await
        .map_err(engine_error)
}

fn print_report(r: &Report, json: bool, always: bool) {
    if json {
        println!(
            "{}",
            json!({
                "uploaded": r.uploaded,
                "downloaded": r.downloaded,
                "deleted_local": r.deleted_local,
                "deleted_remote": r.deleted_remote,
                "moved": r.moved,
                "folders_created": r.folders_created,
                "conflicts": r.conflicts.iter().map(|(c, o)| json!({"copy": c, "of": o})).collect::<Vec<_>>(),
                "problems": r.problems.iter().map(|(p, m)| json!({"path": p, "error": m})).collect::<Vec<_>>(),
                "converged": r.converged,
                "held_deletions": r.held.map(|h| json!({"local": h.local_deletes, "remote": h.remote_deletes})),
            })
        );
        return;
    }
    let busy = r.uploaded
        + r.downloaded
        + r.deleted_local
        + r.deleted_remote
        + r.moved
        + r.folders_created
        > 0
        || !r.conflicts.is_empty()
        || !r.problems.is_empty()
        || r.held.is_some();
    if !busy && !always {
        return;
    }
    println!(
        "{} uploaded, {} downloaded, {} moved, {} folders created, {} deleted here (to the trash), {} deleted on the server, {} conflicts{}",
        r.uploaded,
        r.downloaded,
        r.moved,
        r.folders_created,
        r.deleted_local,
        r.deleted_remote,
        r.conflicts.len(),
        if r.converged {
            ""
        } else {
            " (not yet in step)"
        }
    );
    for (copy, of) in &r.conflicts {
        println!(
            "  conflict: {of} changed on both sides; this computer's version is kept as {copy}"
        );
    }
    for (p, m) in &r.problems {
        println!("  not synced: {p}: {m}");
    }
    if let Some(h) = r.held {
        println!(
            "  held back: a mass deletion ({} here, {} on the server); run with --force to apply it",
            h.local_deletes, h.remote_deletes
        );
    }
}

async fn status(engine: &mut RealEngine, json: bool) -> Result<()> {
    let pending = engine.pending().await.map_err(engine_error)?;
    let st = engine.status().await.map_err(engine_error)?;
    if json {
        println!(
            "{}",
            json!({
                "pending": pending.iter().map(describe).collect::<Vec<_>>(),
                "conflicts": st.conflicts.iter().map(|(c, o, at)| json!({"copy": c, "of": o, "at": cubby_core::time::format(*at)})).collect::<Vec<_>>(),
                "problems": st.problems.iter().map(|(p, m)| json!({"path": p, "error": m})).collect::<Vec<_>>(),
                "last_pass": st.last_pass.map(cubby_core::time::format),
                "last_error": st.last_error,
            })
        );
        return Ok(());
    }
    match st.last_pass {
        Some(t) => println!("last pass: {}", cubby_core::time::format(t)),
        None => println!("never synced"),
    }
    if let Some(e) = &st.last_error {
        println!("last error: {e}");
    }
    if pending.is_empty() {
        println!("nothing pending (as of the last pass)");
    } else {
        println!(
            "pending (as of the last pass): {} operations",
            pending.len()
        );
        for op in pending.iter().take(50) {
            println!("  {}", describe(op));
        }
    }
    for (copy, of, at) in &st.conflicts {
        println!(
            "conflict: {copy} (of {of}, {})",
            cubby_core::time::format(*at)
        );
    }
    for (p, m) in &st.problems {
        println!("not synced: {p}: {m}");
    }
    Ok(())
}

/// One pending op in words.
fn describe(op: &Op) -> String {
    match op {
        Op::KeepBoth { from, to, .. } => format!("keep both: {from} -> {to}"),
        Op::CreateLocalFolder { path, .. } => format!("create here: {path}"),
        Op::Download { path, .. } => format!("download: {path}"),
        Op::MoveLocal { from, to, .. } => format!("move here: {from} -> {to}"),
        Op::DeleteLocal { path, nodes, .. } => format!("delete here ({nodes} items): {path}"),
        Op::CreateRemoteFolder { path, .. } => format!("create on the server: {path}"),
        Op::Upload { path, .. } => format!("upload: {path}"),
        Op::MoveRemote { from, to, .. } => format!("move on the server: {from} -> {to}"),
        Op::DeleteRemote { path, nodes, .. } => {
            format!("delete on the server ({nodes} items): {path}")
        }
        Op::Link { remote, .. } => format!("link {remote}"),
        Op::CommitSynced { id, .. } => format!("record {id}"),
        Op::ForgetSynced { id } => format!("forget {id}"),
    }
}

fn engine_error(e: Error) -> anyhow::Error {
    let code = match &e {
        Error::Remote(RemoteError::Transient(_)) => exit::TRANSIENT,
        Error::Remote(RemoteError::Fatal(_)) => exit::AUTH,
        _ => exit::FAILURE,
    };
    fail(code, e.to_string())
}
