//! Scenario tests and a deterministic, seeded simulation of `cubby backup` and
//! `cubby restore-backup` over the sync engine's seams: the engine simulation's in-memory
//! disk and server (`engine::sim`), with random edits of the source between runs and while
//! files are read, edits of backed-up files on the server, injected failures (a request lost
//! before or after the server applied it, as a busy or failing server looks after the
//! client's retries) and crashes (a run stopped for good right after the server applied a
//! call: between an upload and its index row, say; the index is reopened from its file).
//!
//! What must hold, checked after every step of every seed:
//! - the backup never overwrites a newer server copy: every content another client wrote on
//!   the server is still the content of some file under the destination, unless a user
//!   removed it (edited or deleted it) or the backup was told about it after a conflict (the
//!   server's copy it keeps at the path and updates from then on, see `backup::FileJob`);
//! - the source is only read: the backup's disk panics on any write;
//!
//! and at the end of each seed, after a run without faults:
//! - nothing backed up is lost: every local file is backed up (its content is under the
//!   destination) unless a server file is in the way of its folder, or another client
//!   removed or replaced the backed-up copy of a file not changed since;
//! - a restore into an empty folder brings back exactly the destination's files; a restore
//!   into a folder with files of its own (and a failing server) never replaces one of them,
//!   and run again without faults brings back everything else.
//!
//! `CUBBY_BACKUP_SEEDS=N` runs N seeds (default 500); `CUBBY_BACKUP_SEED=S` replays one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cubby_core::path;
use futures_util::future::Either;

use crate::backup::{self, Log, Options, Report};
use crate::engine::fs::{Listing, LocalFs, Stat};
use crate::engine::remote::Mode;
use crate::engine::sim::{FakeFs, FakeRemote, FakeServer, Ledger, Rng, SharedLedger};
use crate::index::Index;
use crate::restore;

/// Local names: none equal to another but for case.
const NAMES: &[&str] = &["a", "b", "c.txt", "d e", "f.bin"];
/// Local names equal but for case: two such files of a case-sensitive source map to one path
/// on the server (the second is kept as a conflicted copy, and a rename in case only is
/// neither a deletion nor the old name's row). Odd seeds use them; `CUBBY_BACKUP_CASE=1` (or `0`) makes every seed (or
/// none) do so.
const CASE_NAMES: &[&str] = &["a", "A", "b", "c.txt", "C.TXT", "d e"];

fn local_names(seed: u64) -> &'static [&'static str] {
    match std::env::var("CUBBY_BACKUP_CASE").as_deref() {
        Ok("1") => CASE_NAMES,
        Ok("0") => NAMES,
        _ if seed % 2 == 1 => CASE_NAMES,
        _ => NAMES,
    }
}

/// The destination folder on the server.
const DEST: &str = "/B";

/// The backup's view of the source disk: reads only; any write is a bug.
#[derive(Clone)]
struct Source(FakeFs);

impl LocalFs for Source {
    fn list(&self, dir: &str) -> io::Result<Listing> {
        self.0.list(dir)
    }
    fn stat(&self, p: &str) -> io::Result<Option<Stat>> {
        self.0.stat(p)
    }
    fn hash(&self, p: &str) -> io::Result<(String, Stat)> {
        self.0.hash(p)
    }
    fn source(&self, p: &str) -> PathBuf {
        self.0.source(p)
    }
    fn partial(&self, _: &str) -> PathBuf {
        panic!("the backup asked where to write a download into its source")
    }
    fn mkdir(&self, p: &str) -> io::Result<Stat> {
        panic!("the backup made a folder in its source: {p}")
    }
    fn rename(&self, from: &str, _: &str) -> io::Result<()> {
        panic!("the backup renamed {from} in its source")
    }
    fn install(&self, _: &Path, p: &str, _: Option<&Stat>) -> io::Result<Stat> {
        panic!("the backup wrote {p} in its source")
    }
    fn flush(&self, _: &[PathBuf]) -> io::Result<()> {
        panic!("the backup flushed writes in its source")
    }
    fn discard(&self, _: &Path) {
        panic!("the backup discarded a file in its source")
    }
    fn trash(&self, p: &str, _: &BTreeMap<String, Stat>, _: i64) -> io::Result<()> {
        panic!("the backup deleted {p} in its source")
    }
    fn purge_trash(&self, _: i64) -> io::Result<u64> {
        panic!("the backup purged a trash in its source")
    }
}

/// The log lines of a run.
#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl Log for Lines {
    fn line(&self, text: &str) {
        self.0.lock().unwrap().push(text.to_owned());
    }
}

fn remote_at(server: &FakeServer, fs: &FakeFs, root: &str) -> FakeRemote {
    FakeRemote {
        server: server.clone(),
        fs: fs.clone(),
        root: root.to_owned(),
        read_only: None,
        refused_moves: Default::default(),
    }
}

/// What the seeds did, shown at the end (so a simulation that stopped exercising something
/// shows it).
static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static CRASHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static FAILED_RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static UPLOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static CONFLICTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static FILE_ERRORS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static ALREADY_THERE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Whether one seed is replayed: its steps and the runs' log lines are printed.
static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn verbose() -> bool {
    VERBOSE.load(std::sync::atomic::Ordering::Relaxed)
}

fn count(counter: &std::sync::atomic::AtomicU64, n: u64) {
    counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
}

/// One backup run; `None` if it crashed.
async fn run_backup(
    server: &FakeServer,
    disk: &FakeFs,
    index: &Index,
    opts: &Options,
) -> Option<Result<Report, backup::Error>> {
    let fs = Arc::new(Source(disk.clone()));
    let remote = Arc::new(remote_at(server, disk, DEST));
    let log = Lines::default();
    let run = std::pin::pin!(backup::run(fs, remote, index, DEST, opts, &log));
    let crash = std::pin::pin!(async {
        while !server.crashed() {
            tokio::task::yield_now().await;
        }
    });
    count(&RUNS, 1);
    // The crash is looked at first: a run never goes on once it crashed.
    let outcome = match futures_util::future::select(crash, run).await {
        Either::Left((_, _)) => Either::Right(((), ())),
        Either::Right((report, _)) => Either::Left((report, ())),
    };
    if verbose() {
        for line in log.0.lock().unwrap().iter() {
            eprintln!("    {line}");
        }
    }
    match outcome {
        Either::Left((report, _)) => {
            match &report {
                Ok(r) => {
                    count(&UPLOADS, r.uploaded);
                    count(&CONFLICTS, r.conflicts.len() as u64);
                    count(&FILE_ERRORS, r.errors.len() as u64);
                    count(&ALREADY_THERE, r.already_there);
                }
                Err(_) => count(&FAILED_RUNS, 1),
            }
            Some(report)
        }
        Either::Right(_) => {
            count(&CRASHES, 1);
            None
        }
    }
}

/// Another client's edit of a backed-up file: an edit, a deletion, or a new file beside it;
/// what it writes goes into `others`.
fn server_edit(
    server: &FakeServer,
    rng: &mut Rng,
    ledger: &SharedLedger,
    seed: u64,
    others: &mut BTreeSet<Vec<u8>>,
) {
    let mut inner = server.inner.lock().unwrap();
    let files: Vec<String> = inner
        .files()
        .into_keys()
        .filter(|p| path::is_within(&path::lower(p), &path::lower(DEST)))
        .collect();
    let Some(p) = rng.pick(&files).cloned() else {
        return;
    };
    let id = inner.lookup(&p).unwrap();
    let old = inner.files()[&p].to_vec();
    let rev = inner.entry_rev(&id);
    match rng.below(4) {
        0 | 1 => {
            let data = ledger.lock().unwrap().blob(seed);
            others.insert(data.clone());
            if inner.write(&p, &Mode::Update(rev), Arc::new(data)).is_ok() {
                ledger.lock().unwrap().killed.insert(old);
            }
        }
        2 => {
            if inner.delete(&p, None).is_ok() {
                ledger.lock().unwrap().killed.insert(old);
            }
        }
        _ => {
            let data = ledger.lock().unwrap().blob(seed);
            others.insert(data.clone());
            let p = format!("{}/srv-{}", path::parent_of(&p), rng.below(1000));
            if inner.lookup(&p).is_none() {
                let _ = inner.write(&p, &Mode::Add, Arc::new(data));
            }
        }
    }
}

/// Every content another client wrote is still on the server, unless a user removed it or
/// the backup acknowledged it after a conflict. (What the backup itself uploaded it may
/// update at the same path: that is checked at the end of a seed, where every local file
/// must be backed up.)
fn check_nothing_lost(
    server: &FakeServer,
    ledger: &SharedLedger,
    others: &BTreeSet<Vec<u8>>,
) -> Result<(), String> {
    let inner = server.inner.lock().unwrap();
    let ledger = ledger.lock().unwrap();
    let present: BTreeSet<Vec<u8>> = inner.files().values().map(|d| d.to_vec()).collect();
    let lost: Vec<String> = inner
        .revs
        .values()
        .map(|d| d.to_vec())
        .filter(|d| {
            others.contains(d)
                && !ledger.killed.contains(d)
                && !inner.acked.contains(d)
                && !present.contains(d)
        })
        .map(|d| String::from_utf8_lossy(&d).into_owned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if lost.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "lost on the server: {lost:?}\nserver {:#?}",
            names(&inner.files())
        ))
    }
}

fn names(files: &BTreeMap<String, Arc<Vec<u8>>>) -> Vec<String> {
    files
        .iter()
        .map(|(p, d)| format!("{p} = {}", String::from_utf8_lossy(d)))
        .collect()
}

/// Whether a file (not a folder) is on the server at a strict ancestor of `p`.
fn blocked(server_files: &BTreeMap<String, Arc<Vec<u8>>>, p: &str) -> bool {
    let lowered: BTreeSet<String> = server_files.keys().map(|k| path::lower(k)).collect();
    let mut cur = path::parent_of(p);
    while !cur.is_empty() {
        if lowered.contains(&path::lower(cur)) {
            return true;
        }
        cur = path::parent_of(cur);
    }
    false
}

/// Runs one seed; `Err` describes the failure.
async fn run_seed(seed: u64, dir: &Path) -> Result<(), String> {
    let ledger: SharedLedger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = Rng(seed);
    let server = FakeServer::new(ledger.clone(), seed);
    let disk = FakeFs::new(ledger.clone(), seed);
    disk.set_names(local_names(seed));
    for _ in 0..1 + rng.below(8) {
        disk.user_edit(&mut rng);
    }
    let index_path = dir.join(format!("backup-{seed}.sqlite"));
    let mut index = Index::open(&index_path).await.map_err(|e| e.to_string())?;
    let mut others = BTreeSet::new();
    let steps = 6 + rng.below(12);
    for step in 0..steps {
        if verbose() {
            eprintln!("step {step}: disk {:?}", disk.snapshot());
            eprintln!(
                "  server {:?}",
                names(&server.inner.lock().unwrap().files())
            );
        }
        match rng.below(6) {
            0 | 1 => {
                for _ in 0..1 + rng.below(3) {
                    disk.user_edit(&mut rng);
                }
            }
            2 => {
                if verbose() {
                    eprintln!("  server edits");
                }
                for _ in 0..1 + rng.below(2) {
                    server_edit(&server, &mut rng, &ledger, seed, &mut others);
                }
            }
            _ => {
                let opts = Options {
                    parallel: 1 + rng.below(3),
                    ..Options::default()
                };
                let faults = rng.chance(0.5).then(|| (Rng(rng.next()), 0.15));
                let faults_on = faults.is_some();
                server.set_faults(faults, None);
                disk.set_read_chaos(rng.chance(0.4).then(|| (Rng(rng.next()), 0.2)));
                let crash = rng.chance(0.3).then(|| (Rng(rng.next()), 0.1));
                let crash_on = crash.is_some();
                server.set_crash(crash);
                if verbose() {
                    eprintln!("  backup (faults {}, crash armed {})", faults_on, crash_on);
                }
                let outcome = run_backup(&server, &disk, &index, &opts).await;
                if verbose() {
                    eprintln!(
                        "  -> {:?}",
                        outcome.as_ref().map(|r| r.as_ref().map(|r| (
                            r.uploaded,
                            &r.errors,
                            &r.conflicts
                        )))
                    );
                }
                server.set_faults(None, None);
                server.set_crash(None);
                disk.set_read_chaos(None);
                if outcome.is_none() {
                    // The process died: the index is whatever its file holds.
                    index.close().await;
                    index = Index::open(&index_path).await.map_err(|e| e.to_string())?;
                }
            }
        }
        check_nothing_lost(&server, &ledger, &others)
            .map_err(|e| format!("after step {step}: {e}"))?;
    }
    // A run without faults backs up everything there is.
    let report = run_backup(&server, &disk, &index, &Options::default())
        .await
        .expect("no crash armed")
        .map_err(|e| format!("the last run failed: {e}"))?;
    check_nothing_lost(&server, &ledger, &others)?;
    let server_files = server.inner.lock().unwrap().files();
    let on_server: BTreeSet<Vec<u8>> = server_files.values().map(|d| d.to_vec()).collect();
    let killed = ledger.lock().unwrap().killed.clone();
    for (p, data) in disk.snapshot() {
        let Some(data) = data else { continue };
        let remote = format!("{DEST}{p}");
        if !on_server.contains(&data) && !killed.contains(&data) && !blocked(&server_files, &remote)
        {
            return Err(format!(
                "{p} ({}) is not backed up; last run {report:#?}\nserver {:#?}",
                String::from_utf8_lossy(&data),
                names(&server_files)
            ));
        }
    }
    index.close().await;

    // A restore into an empty folder: exactly the destination's files.
    let target = FakeFs::new(ledger.clone(), seed);
    let restored = restore::restore_with(&target, &remote_at(&server, &target, DEST), None)
        .await
        .map_err(|e| format!("restore: {e}"))?;
    if !restored.errors.is_empty() {
        return Err(format!("restore: {:?}", restored.errors));
    }
    let want: BTreeMap<String, Vec<u8>> = server_files
        .iter()
        .filter_map(|(p, d)| {
            let rel = p.strip_prefix(DEST)?;
            rel.starts_with('/').then(|| (rel.to_owned(), d.to_vec()))
        })
        .collect();
    let got: BTreeMap<String, Vec<u8>> = target
        .snapshot()
        .into_iter()
        .filter_map(|(p, d)| Some((p, d?)))
        .collect();
    if got != want {
        return Err(format!(
            "restore into an empty folder:\nwant {:#?}\ngot {:#?}",
            want.keys(),
            got.keys()
        ));
    }

    // A restore into a folder with files of its own, from a failing server, then again.
    let busy = FakeFs::new(ledger.clone(), seed);
    busy.set_names(local_names(seed));
    for _ in 0..rng.below(6) {
        busy.user_edit(&mut rng);
    }
    let before = busy.snapshot();
    server.set_faults(Some((Rng(rng.next()), 0.2)), None);
    let first = restore::restore_with(&busy, &remote_at(&server, &busy, DEST), None).await;
    server.set_faults(None, None);
    check_kept(&before, &busy.snapshot())?;
    let again = restore::restore_with(&busy, &remote_at(&server, &busy, DEST), None)
        .await
        .map_err(|e| format!("restore again: {e} (first: {first:?})"))?;
    let after = busy.snapshot();
    check_kept(&before, &after)?;
    for (rel, data) in &want {
        let blocked_locally = before.contains_key(rel)
            || before
                .iter()
                .any(|(p, d)| d.is_some() && path::is_within(rel, p) && p != rel);
        if !blocked_locally && after.get(rel) != Some(&Some(data.clone())) {
            return Err(format!(
                "restore into a used folder: {rel} not restored ({:?})",
                again.errors
            ));
        }
    }
    Ok(())
}

/// Every file that was in the folder before a restore is still there, unchanged.
fn check_kept(
    before: &BTreeMap<String, Option<Vec<u8>>>,
    after: &BTreeMap<String, Option<Vec<u8>>>,
) -> Result<(), String> {
    for (p, d) in before {
        if d.is_some() && after.get(p) != Some(d) {
            return Err(format!("the restore replaced the local file {p}"));
        }
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn tempdir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

#[test]
fn simulated_backups_and_restores_lose_nothing_and_overwrite_nothing() {
    let dir = tempdir();
    let runtime = runtime();
    let (seeds, replay) = crate::engine::sim::seeds("CUBBY_BACKUP_SEED", "CUBBY_BACKUP_SEEDS");
    if replay {
        VERBOSE.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let mut failures = Vec::new();
    for seed in &seeds {
        if let Err(why) = runtime.block_on(run_seed(*seed, dir.path())) {
            failures.push((*seed, why));
        }
    }
    let n = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "backup simulation: {} seeds, {} runs ({} crashed, {} failed), {} uploads, {} already there, {} conflicts, {} files not backed up in a run",
        seeds.len(),
        n(&RUNS),
        n(&CRASHES),
        n(&FAILED_RUNS),
        n(&UPLOADS),
        n(&ALREADY_THERE),
        n(&CONFLICTS),
        n(&FILE_ERRORS)
    );
    if let Some((seed, why)) = failures.first() {
        panic!(
            "{} of {} seeds failed (replay one with CUBBY_BACKUP_SEED={seed}); the first:\n{why}",
            failures.len(),
            seeds.len(),
        );
    }
}

// ---- scenarios ----

/// A world for one scenario: a source disk, the server, an index.
struct World {
    _dir: tempfile::TempDir,
    ledger: SharedLedger,
    server: FakeServer,
    disk: FakeFs,
    index_path: PathBuf,
    index: Index,
}

impl World {
    async fn new() -> Self {
        let dir = tempdir();
        let ledger: SharedLedger = Arc::new(Mutex::new(Ledger::default()));
        let index_path = dir.path().join("index.sqlite");
        Self {
            server: FakeServer::new(ledger.clone(), 0),
            disk: FakeFs::new(ledger.clone(), 0),
            index: Index::open(&index_path).await.unwrap(),
            index_path,
            ledger,
            _dir: dir,
        }
    }

    async fn backup(&self) -> Report {
        run_backup(&self.server, &self.disk, &self.index, &Options::default())
            .await
            .expect("no crash armed")
            .expect("the run")
    }

    fn server_file(&self, p: &str) -> Option<Vec<u8>> {
        self.server
            .inner
            .lock()
            .unwrap()
            .files()
            .iter()
            .find(|(k, _)| path::lower(k) == path::lower(p))
            .map(|(_, d)| d.to_vec())
    }

    /// Another client writes `p` on the server, over whatever revision is there.
    fn server_write(&self, p: &str, data: &[u8]) {
        let mut inner = self.server.inner.lock().unwrap();
        let mode = match inner.lookup(p) {
            Some(id) => Mode::Update(inner.entry_rev(&id)),
            None => Mode::Add,
        };
        inner.write(p, &mode, Arc::new(data.to_vec())).unwrap();
    }

    fn server_files(&self) -> BTreeMap<String, Arc<Vec<u8>>> {
        self.server.inner.lock().unwrap().files()
    }
}

#[test]
fn a_server_edit_is_never_overwritten_both_copies_are_kept() {
    runtime().block_on(async {
        let w = World::new().await;
        w.disk.put("/notes.txt", Some(b"v1"));
        assert_eq!(w.backup().await.uploaded, 1);
        w.server_write("/B/notes.txt", b"edited on the server");
        w.disk.put("/notes.txt", Some(b"v2, edited here"));
        let r = w.backup().await;
        assert_eq!(r.conflicts, vec!["/B/notes (conflicted copy).txt"], "{r:?}");
        assert_eq!(
            w.server_file("/B/notes.txt").unwrap(),
            b"edited on the server"
        );
        assert_eq!(
            w.server_file("/B/notes (conflicted copy).txt").unwrap(),
            b"v2, edited here"
        );
        // The next run leaves both alone.
        let r = w.backup().await;
        assert_eq!(
            (r.uploaded, r.unchanged, r.conflicts.len()),
            (0, 1, 0),
            "{r:?}"
        );
        let _ = &w.ledger;
    });
}

#[test]
fn a_crash_between_upload_and_index_row_uploads_nothing_twice() {
    runtime().block_on(async {
        let mut w = World::new().await;
        w.disk.put("/a", Some(b"alpha"));
        w.disk.put("/b", Some(b"bravo"));
        // The listing of DEST is call 1; the crash comes right after the first upload.
        w.server.inner.lock().unwrap().crash_after(2);
        let crashed = run_backup(
            &w.server,
            &w.disk,
            &w.index,
            &Options {
                parallel: 1,
                ..Options::default()
            },
        )
        .await;
        assert!(crashed.is_none(), "the run crashed");
        w.server.set_crash(None);
        assert_eq!(
            w.server_file("/B/a").unwrap(),
            b"alpha",
            "uploaded before the crash"
        );
        w.index.close().await;
        w.index = Index::open(&w.index_path).await.unwrap();
        let r = w.backup().await;
        // The upload without an index row is recognised by its content, not sent again.
        assert_eq!(
            (r.already_there, r.uploaded, r.conflicts.len()),
            (1, 1, 0),
            "{r:?}"
        );
        assert_eq!(w.server_files().len(), 2, "{:?}", w.server_files().keys());
        let r = w.backup().await;
        assert_eq!((r.unchanged, r.uploaded), (2, 0), "{r:?}");
    });
}

#[test]
fn a_crash_between_upload_and_index_row_then_an_edit_updates_our_own_upload() {
    runtime().block_on(async {
        let mut w = World::new().await;
        w.disk.put("/a", Some(b"alpha"));
        // The listing of DEST is call 1; the crash comes right after the upload.
        w.server.inner.lock().unwrap().crash_after(2);
        let crashed = run_backup(&w.server, &w.disk, &w.index, &Options::default()).await;
        assert!(crashed.is_none(), "the run crashed");
        w.server.set_crash(None);
        assert_eq!(w.server_file("/B/a").unwrap(), b"alpha");
        w.index.close().await;
        w.index = Index::open(&w.index_path).await.unwrap();
        // Edited before the next night: the server's copy is the crashed run's own upload,
        // so the edit updates it instead of making a conflicted copy beside it.
        w.disk.put("/a", Some(b"alpha, edited"));
        let r = w.backup().await;
        assert_eq!((r.uploaded, r.conflicts.len()), (1, 0), "{r:?}");
        assert_eq!(w.server_file("/B/a").unwrap(), b"alpha, edited");
        assert_eq!(w.server_files().len(), 1, "{:?}", w.server_files().keys());
    });
}

/// A disk on which `path` changes right after it is hashed (before it is uploaded).
struct ChangingAfterHash {
    disk: FakeFs,
    path: String,
    once: Mutex<bool>,
}

impl LocalFs for ChangingAfterHash {
    fn list(&self, dir: &str) -> io::Result<Listing> {
        self.disk.list(dir)
    }
    fn stat(&self, p: &str) -> io::Result<Option<Stat>> {
        self.disk.stat(p)
    }
    fn hash(&self, p: &str) -> io::Result<(String, Stat)> {
        let r = self.disk.hash(p);
        let mut once = self.once.lock().unwrap();
        if p == self.path && !*once {
            *once = true;
            self.disk.put(p, Some(b"written while the backup read it"));
        }
        r
    }
    fn source(&self, p: &str) -> PathBuf {
        self.disk.source(p)
    }
    fn partial(&self, p: &str) -> PathBuf {
        Source(self.disk.clone()).partial(p)
    }
    fn mkdir(&self, p: &str) -> io::Result<Stat> {
        Source(self.disk.clone()).mkdir(p)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        Source(self.disk.clone()).rename(from, to)
    }
    fn install(&self, partial: &Path, p: &str, expected: Option<&Stat>) -> io::Result<Stat> {
        Source(self.disk.clone()).install(partial, p, expected)
    }
    fn flush(&self, partials: &[PathBuf]) -> io::Result<()> {
        Source(self.disk.clone()).flush(partials)
    }
    fn discard(&self, partial: &Path) {
        Source(self.disk.clone()).discard(partial)
    }
    fn trash(&self, p: &str, expected: &BTreeMap<String, Stat>, now: i64) -> io::Result<()> {
        Source(self.disk.clone()).trash(p, expected, now)
    }
    fn purge_trash(&self, before: i64) -> io::Result<u64> {
        Source(self.disk.clone()).purge_trash(before)
    }
}

#[test]
fn a_file_changing_while_read_is_reported_and_sent_again_next_run() {
    runtime().block_on(async {
        let w = World::new().await;
        w.disk.put("/log", Some(b"first line"));
        let fs = Arc::new(ChangingAfterHash {
            disk: w.disk.clone(),
            path: "/log".into(),
            once: Mutex::new(false),
        });
        let remote = Arc::new(remote_at(&w.server, &w.disk, DEST));
        let log = Lines::default();
        let r = backup::run(fs, remote, &w.index, DEST, &Options::default(), &log)
            .await
            .unwrap();
        assert_eq!(r.uploaded, 1, "{r:?}");
        assert!(
            r.errors
                .iter()
                .any(|e| e.contains("changed while being backed up")),
            "{r:?}"
        );
        assert!(!r.complete());
        // What the server got is what was sent (the newer content, read for the upload).
        let r = w.backup().await;
        assert!(r.complete() && r.conflicts.is_empty(), "{r:?}");
        assert_eq!(
            w.server_file("/B/log").unwrap(),
            b"written while the backup read it"
        );
        assert_eq!(w.server_files().len(), 1);
        let r = w.backup().await;
        assert_eq!((r.unchanged, r.uploaded), (1, 0), "{r:?}");
    });
}

#[test]
fn a_failing_server_stops_the_run_and_the_next_run_catches_up() {
    runtime().block_on(async {
        let w = World::new().await;
        for i in 0..5 {
            w.disk
                .put(&format!("/f{i}"), Some(format!("file {i}").as_bytes()));
        }
        // Every request fails (a 429 or 5xx once the client's retries ran out).
        w.server.set_faults(Some((Rng(3), 1.0)), None);
        let failed = run_backup(&w.server, &w.disk, &w.index, &Options::default())
            .await
            .unwrap();
        assert!(
            matches!(
                failed,
                Err(backup::Error::Remote(
                    crate::engine::RemoteError::Transient(_)
                ))
            ),
            "{failed:?}"
        );
        // Some requests fail: those files are reported, the others backed up.
        w.server.set_faults(Some((Rng(11), 0.3)), None);
        let mut partial = None;
        for _ in 0..10 {
            if let Ok(r) = run_backup(&w.server, &w.disk, &w.index, &Options::default())
                .await
                .unwrap()
            {
                partial = Some(r);
                break;
            }
        }
        w.server.set_faults(None, None);
        let partial = partial.expect("a run that got through the listing");
        let r = w.backup().await;
        assert!(r.complete(), "{r:?}");
        assert_eq!(
            r.uploaded + r.already_there + r.unchanged,
            5,
            "{partial:?}\n{r:?}"
        );
        assert_eq!(w.server_files().len(), 5, "{:?}", w.server_files().keys());
    });
}

#[test]
fn a_restore_never_replaces_a_local_file() {
    runtime().block_on(async {
        let w = World::new().await;
        w.disk.put("/keep.txt", Some(b"backed up"));
        w.disk.put("/same.txt", Some(b"same"));
        w.disk.put("/dir", None);
        w.disk.put("/dir/new.txt", Some(b"only on the server"));
        w.backup().await;
        let target = FakeFs::new(w.ledger.clone(), 0);
        target.put("/keep.txt", Some(b"a local file with other content"));
        target.put("/same.txt", Some(b"same"));
        let r = restore::restore_with(&target, &remote_at(&w.server, &target, DEST), None)
            .await
            .unwrap();
        assert_eq!(r.files, 2, "{r:?}");
        assert_eq!(r.errors.len(), 1, "{r:?}");
        assert!(r.errors[0].contains("keep.txt"), "{r:?}");
        let snap: HashMap<String, Option<Vec<u8>>> = target.snapshot().into_iter().collect();
        assert_eq!(
            snap["/keep.txt"].as_deref(),
            Some(&b"a local file with other content"[..])
        );
        assert_eq!(
            snap["/dir/new.txt"].as_deref(),
            Some(&b"only on the server"[..])
        );
    });
}

#[test]
fn names_equal_but_for_case_never_replace_each_other() {
    runtime().block_on(async {
        let w = World::new().await;
        // A case-sensitive source: two files the server sees at one path.
        w.disk.put("/C.TXT", Some(b"upper"));
        w.disk.put("/c.txt", Some(b"lower"));
        let r = w.backup().await;
        assert_eq!(
            (r.uploaded, r.conflicts.clone()),
            (1, vec!["/B/c (conflicted copy).txt".to_owned()]),
            "{r:?}"
        );
        // The second one's next version is kept beside, never over the first one's backup.
        w.disk.put("/c.txt", Some(b"lower, edited"));
        let r = w.backup().await;
        assert_eq!(r.conflicts.len(), 1, "{r:?}");
        assert_eq!(w.server_file("/B/C.TXT").unwrap(), b"upper");
        let all: Vec<Vec<u8>> = w.server_files().values().map(|d| d.to_vec()).collect();
        assert!(all.contains(&b"lower".to_vec()) && all.contains(&b"lower, edited".to_vec()));
        // And an unchanged source sends nothing more.
        let r = w.backup().await;
        assert_eq!(
            (r.uploaded, r.unchanged, r.conflicts.len()),
            (0, 2, 0),
            "{r:?}"
        );
    });
}

/// Renaming a file or a folder in case only (or recreating it beside its twin) is not a
/// deletion: `--mirror` keeps the backup, whose server path is the new name's too, and the
/// old name's row is forgotten, so a file coming back under it never updates its twin's copy.
#[test]
fn a_rename_in_case_only_keeps_the_backup_even_when_mirroring() {
    runtime().block_on(async {
        let w = World::new().await;
        let mirror = Options {
            mirror: true,
            ..Options::default()
        };
        let backup = |opts: &Options| {
            let opts = opts.clone();
            let (server, disk, index) = (w.server.clone(), w.disk.clone(), w.index.clone());
            async move {
                run_backup(&server, &disk, &index, &opts)
                    .await
                    .expect("no crash armed")
                    .expect("the run")
            }
        };
        w.disk.put("/Notes.txt", Some(b"notes"));
        w.disk.put("/Docs", None);
        w.disk.put("/Docs/a.txt", Some(b"in docs"));
        for i in 0..8 {
            w.disk.put(&format!("/f{i}"), Some(b"filler"));
        }
        backup(&mirror).await;
        w.disk.remove("/Notes.txt");
        w.disk.put("/NOTES.txt", Some(b"notes"));
        w.disk.remove("/Docs/a.txt");
        w.disk.remove("/Docs");
        w.disk.put("/DOCS", None);
        w.disk.put("/DOCS/a.txt", Some(b"in docs"));
        let r = backup(&mirror).await;
        assert_eq!(r.deleted, 0, "{r:?}");
        assert_eq!(w.server_file("/B/notes.txt").unwrap(), b"notes");
        assert_eq!(w.server_file("/B/docs/a.txt").unwrap(), b"in docs");
        // The old name comes back beside the new one, with other content: kept beside.
        w.disk.put("/Notes.txt", Some(b"other notes"));
        let r = backup(&Options::default()).await;
        assert_eq!(r.conflicts.len(), 1, "{r:?}");
        assert_eq!(w.server_file("/B/notes.txt").unwrap(), b"notes");
        let all: Vec<Vec<u8>> = w.server_files().values().map(|d| d.to_vec()).collect();
        assert!(all.contains(&b"other notes".to_vec()), "{all:?}");
    });
}
