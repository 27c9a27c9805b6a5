//! `cubby sync`: the two-way sync engine around the pure planner of `cubby_core::sync`.
//!
//! One pass: observe the server (its change feed, from a saved cursor) into the Remote tree,
//! observe the disk (a scan; unchanged files are never re-hashed: size, mtime and inode decide)
//! into the Local tree, plan from Remote, Local and Synced, apply the ops, save, and repeat
//! until the plan is empty. The file system, the server and the clock are traits ([`LocalFs`],
//! [`RemoteApi`], [`Clock`]) so the simulation in `sim.rs` drives this same code
//! deterministically.
//!
//! Safety comes from the planner (nothing is deleted unless it was synced and left unchanged
//! on the side that loses it; concurrent edits keep both) and from how ops are applied here:
//! - every write checks that what it replaces is what was observed: uploads go in `update`
//!   mode against the observed rev, remote deletions carry the observed rev, a download is
//!   renamed into place only if the file there still has the observed stat;
//! - local deletions go to the trash (`.cubby-cache/trash/`), kept `trash_days`;
//! - downloads are written beside the target and renamed into place when complete;
//! - a plan deleting more than a share of the tree (or more than an absolute count) is held
//!   back unless `force` is set.

pub mod fs;
mod observe;
pub mod remote;
#[cfg(test)]
pub(crate) mod sim;
pub mod state;
pub mod watch;
mod work;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use cubby_core::path;
use cubby_core::sync::plan::{self, Op, Summary, UploadMode};
use cubby_core::sync::tree::{Kind, Node, NodeId, Tree};
use futures_util::StreamExt;

pub use fs::{LocalFs, RealFs, Stat};
pub use remote::{ClientRemote, RemoteApi, RemoteError};

use crate::ignore::Ignore;
use remote::{Entry, Mode};
use state::{State, Tracked, Which};

/// Which way changes flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Both,
    /// Mirror the server into the local folder; nothing is sent up.
    Pull,
    /// Mirror the local folder onto the server; nothing is written locally.
    Push,
}

/// How the engine behaves.
#[derive(Clone, Debug)]
pub struct Options {
    pub direction: Direction,
    /// `--exclude` patterns (gitignore style), applied to both sides.
    pub excludes: Vec<String>,
    /// A plan deleting more than this share of the synced tree is held back...
    pub max_delete_share: f64,
    /// ...and so is one deleting more than this many nodes...
    pub max_delete: usize,
    /// ...unless it deletes fewer than this (small trees may lose a few files).
    pub min_delete_guard: usize,
    /// Apply mass deletions anyway.
    pub force: bool,
    /// Days the trash keeps what sync deleted locally.
    pub trash_days: i64,
    /// Files hashed at once during a scan.
    pub hash_threads: usize,
    /// Whether the state file is synced to disk at checkpoints (off only in simulations,
    /// whose crashes drop the engine, not the machine).
    pub durable_state: bool,
    /// Nodes a plan's working set grows to before it is planned and applied (memory follows
    /// this, not the size of the tree).
    pub batch_nodes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            direction: Direction::Both,
            excludes: Vec::new(),
            max_delete_share: 0.25,
            max_delete: 1000,
            min_delete_guard: 10,
            force: false,
            trash_days: 30,
            hash_threads: 4,
            durable_state: true,
            batch_nodes: 20_000,
        }
    }
}

/// The time, behind a trait for the simulation.
pub trait Clock: Send + Sync {
    /// Unix seconds.
    fn now(&self) -> i64;
    /// Waits this long (the follow loop's timers; a test clock decides what waiting means).
    fn sleep(&self, d: std::time::Duration) -> impl std::future::Future<Output = ()> + Send {
        tokio::time::sleep(d)
    }
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// Plans applied before a pass gives up converging (each later plan has less to do).
pub const MAX_ROUNDS: usize = 8;

/// What one pass did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub rounds: usize,
    pub uploaded: u64,
    pub downloaded: u64,
    pub deleted_local: u64,
    pub deleted_remote: u64,
    pub moved: u64,
    pub folders_created: u64,
    /// Conflicted copies made: (copy, original).
    pub conflicts: Vec<(String, String)>,
    /// Items that could not be synced, with the reason.
    pub problems: Vec<(String, String)>,
    /// Both sides agree (apart from held deletions and problems).
    pub converged: bool,
    /// One way only (`--pull`, `--push`), and changes wait on the other direction: the two
    /// sides differ.
    pub one_way_pending: bool,
    /// Deletions held back by the mass-deletion guard.
    pub held: Option<Summary>,
    /// The most nodes (counted once per tree) a working set held while planning.
    pub working_set_peak: usize,
}

/// What `--status` shows besides the pending ops.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub last_pass: Option<i64>,
    pub last_error: Option<String>,
    pub problems: Vec<(String, String)>,
    /// (copy, original, when).
    pub conflicts: Vec<(String, String, i64)>,
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Remote(RemoteError),
    #[error("the local folder: {0}")]
    Local(std::io::Error),
    #[error("the sync state database: {0}")]
    State(#[from] sqlx::Error),
}

impl From<RemoteError> for Error {
    fn from(e: RemoteError) -> Self {
        Error::Remote(e)
    }
}

/// The engine over a file system, a server and a clock.
pub struct Engine<F: LocalFs, R: RemoteApi, C: Clock> {
    fs: F,
    remote: R,
    clock: C,
    state: State,
    opts: Options,
    excludes: Ignore,
    /// The patterns in force after the last scan (`--exclude` and `.cubbyignore` files).
    ignore: Ignore,
    /// The working set being planned and applied: parts of the three trees (`work.rs`).
    remote_tree: Tracked,
    local: Tracked,
    synced: Tracked,
    /// Whether the Local tree is empty (a first scan looks for no moved inodes).
    local_empty: bool,
    /// Whether the feed is in a listing from scratch (its pages are written in bulk).
    listing_fresh: bool,
    cursor: Option<String>,
    next_local: u64,
    /// Paths whose ops the server or the disk refused for good, with the reason.
    refused: BTreeMap<String, String>,
    report: Report,
    /// The dirty set is as it was when a plan came out empty, under this settle key
    /// (direction, exclusions and the dirty set's generation): planning again would give the
    /// same empty plan.
    settled: Option<String>,
    /// The exclusions the Remote tree was filtered with; when they change, the server's
    /// tree is listed again so that newly included entries appear.
    ignore_key: Option<String>,
    /// Deletions applied in recent rounds without `force`: (when, how many). The guard
    /// counts them with a plan's own, so a deletion that reaches the engine in pieces (a
    /// slow `rm -r`, a script deleting file by file, each piece waking its own pass) is
    /// still one mass deletion.
    recent_deletes: std::collections::VecDeque<(i64, usize)>,
}

/// Seconds applied deletions count towards the mass-deletion guard: long enough for one
/// deletion that arrives in pieces (the watcher wakes a pass after 100 ms of quiet), short
/// enough that unrelated tidying an hour apart is not summed.
pub const DELETE_WINDOW_SECS: i64 = 60;

impl<F: LocalFs, R: RemoteApi, C: Clock> Engine<F, R, C> {
    /// Opens the engine's state at `db` (created if missing).
    pub async fn open(fs: F, remote: R, clock: C, db: &Path, opts: Options) -> Result<Self, Error> {
        let state = State::open(db, opts.durable_state).await?;
        let local_empty = state.is_empty(Which::Local).await?;
        let cursor = state.meta("cursor").await?;
        // Rows are written as they are observed, before the counter is saved: a crash in
        // between must not hand out an id a row already has.
        let next_local = state
            .meta("next_local")
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
            .max(state.max_local_id().await? + 1);
        let mut excludes = Ignore::default();
        for pattern in &opts.excludes {
            excludes.add_lines("", pattern);
        }
        let settled = state.meta("settled").await?;
        let ignore_key = state.meta("ignore").await?;
        Ok(Self {
            fs,
            remote,
            clock,
            state,
            ignore: excludes.clone(),
            excludes,
            opts,
            remote_tree: Tracked::default(),
            local: Tracked::default(),
            synced: Tracked::default(),
            local_empty,
            listing_fresh: false,
            cursor,
            next_local,
            refused: BTreeMap::new(),
            report: Report::default(),
            settled,
            ignore_key,
            recent_deletes: Default::default(),
        })
    }

    pub async fn close(self) {
        self.state.close().await;
    }

    /// Applies mass deletions (or holds them back again) from the next pass on.
    pub fn set_force(&mut self, force: bool) {
        self.opts.force = force;
    }

    pub fn clock(&self) -> &C {
        &self.clock
    }

    pub fn remote(&self) -> &R {
        &self.remote
    }

    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// The ops the last observations call for (what `--status` shows as pending).
    pub async fn pending(&mut self) -> Result<Vec<Op>, Error> {
        let round = self.run_batches(work::Mode::Pending).await?;
        Ok(round
            .ops
            .into_iter()
            .filter(|op| {
                !matches!(
                    op,
                    Op::Link { .. } | Op::CommitSynced { .. } | Op::ForgetSynced { .. }
                )
            })
            .collect())
    }

    /// What the state file says about past passes.
    pub async fn status(&self) -> Result<Status, Error> {
        Ok(Status {
            last_pass: self
                .state
                .meta("last_pass")
                .await?
                .and_then(|v| v.parse().ok()),
            last_error: self.state.meta("last_error").await?,
            problems: self.state.problems().await?,
            conflicts: self.state.conflicts().await?,
        })
    }

    /// Records the error that ended the last pass (`None`: it succeeded).
    pub async fn set_last_error(&self, error: Option<String>) -> Result<(), Error> {
        self.state.set_meta("last_error", error.as_deref()).await?;
        Ok(())
    }

    /// The three whole trees (Remote, Local, Synced), read from the state file: for tests.
    pub async fn full_trees(&self) -> Result<(Tree, Tree, Tree), Error> {
        Ok((
            self.state.load(Which::Remote).await?.tree,
            self.state.load(Which::Local).await?.tree,
            self.state.load(Which::Synced).await?.tree,
        ))
    }

    /// One pass: observe, plan and apply until both sides agree (or `MAX_ROUNDS` plans).
    pub async fn pass(&mut self) -> Result<Report, Error> {
        self.report = Report::default();
        self.refused.clear();
        let now = self.clock.now();
        if let Err(e) = self.fs.purge_trash(now - self.opts.trash_days * 86_400) {
            self.problem(
                "/.cubby-cache/trash",
                format!("cannot purge the trash: {e}"),
            );
        }
        // The disk is scanned in the first round, and again only after a round that met a
        // change it did not make: the engine records its own local writes as it makes them,
        // and a user's edit during a pass is seen by the next pass (the watcher wakes one).
        let mut rescan = true;
        for round in 0..MAX_ROUNDS {
            self.report.rounds = round + 1;
            let t = std::time::Instant::now();
            // The disk first: its `.cubbyignore` files decide what the feed leaves out.
            if rescan {
                self.observe_local().await?;
            }
            let local_ms = t.elapsed().as_millis();
            let ignore_key = format!("{:?}", self.ignore);
            if self.ignore_key.as_deref() != Some(ignore_key.as_str()) {
                if self.ignore_key.is_some() {
                    // The exclusions changed: list the server again under the new ones.
                    self.cursor = None;
                    self.settled = None;
                }
                self.ignore_key = Some(ignore_key);
            }
            self.observe_remote().await?;
            let remote_ms = t.elapsed().as_millis() - local_ms;
            let key = format!(
                "{:?} {} {}",
                self.opts.direction,
                self.ignore_key.as_deref().unwrap_or(""),
                self.state.dirty_gen().await?
            );
            // A pass that left ops for the other direction is not trusted as settled: a node
            // already dirty that changes again (a local file deleted before it was ever sent)
            // does not change the key, so such a pass plans again.
            if !self.state.has_dirty().await? || self.settled.as_deref() == Some(key.as_str()) {
                self.report.converged = true;
                break;
            }
            let hold = self.mass_deletion().await?.is_some();
            let deleted = self.report.deleted_local + self.report.deleted_remote;
            let outcome = self.run_batches(work::Mode::Apply { hold }).await;
            self.applied_deletes(deleted);
            let outcome = outcome?;
            tracing::debug!(
                round,
                remote_ms,
                local_ms,
                plan_ms = t.elapsed().as_millis() - remote_ms - local_ms,
                planned = outcome.planned,
                "observed, planned and applied"
            );
            let held = outcome.held.local_deletes + outcome.held.remote_deletes > 0;
            if held {
                self.report.held = Some(outcome.held);
            }
            if !outcome.planned {
                // Nothing left to do for the dirty nodes: they wait on a held deletion, a
                // refusal or the other direction.
                self.report.one_way_pending = outcome.one_way > 0;
                if self.refused.is_empty() && !held && outcome.one_way == 0 {
                    self.settled = Some(key);
                }
                self.report.converged = !held && !self.report.one_way_pending;
                break;
            }
            rescan = !outcome.clean;
            self.save().await?;
        }
        self.save().await?;
        let mut problems = self.report.problems.clone();
        problems.extend(self.refused.iter().map(|(p, m)| (p.clone(), m.clone())));
        problems.sort();
        problems.dedup();
        self.state.set_problems(&problems, self.clock.now()).await?;
        self.report.problems = problems;
        Ok(self.report.clone())
    }

    /// The current plan, filtered by direction and by what was refused, and how many ops the
    /// direction left out.
    fn plan(&self) -> (Vec<Op>, usize) {
        let planned = plan::plan(&self.remote_tree.tree, &self.local.tree, &self.synced.tree);
        let (ops, other_way): (Vec<Op>, Vec<Op>) =
            planned
                .ops
                .into_iter()
                .partition(|op| match self.opts.direction {
                    Direction::Both => true,
                    Direction::Pull => !writes_remote(op),
                    Direction::Push => !writes_local(op) || matches!(op, Op::KeepBoth { .. }),
                });
        let ops = ops
            .into_iter()
            .filter(|op| op_path(op).is_none_or(|p| !self.is_refused(p)))
            .collect();
        if !other_way.is_empty() {
            tracing::debug!(ops = ?other_way, "left for the other direction");
        }
        (ops, other_way.len())
    }

    fn is_refused(&self, p: &str) -> bool {
        self.refused
            .keys()
            .any(|r| path::is_within(&path::lower(p), &path::lower(r)))
    }

    fn problem(&mut self, path: &str, message: String) {
        tracing::warn!("{path}: {message}");
        self.report.problems.push((path.to_owned(), message));
    }

    fn refuse(&mut self, path: &str, message: String) {
        let message = remote::refusal_in_words(&message);
        tracing::warn!("{path}: {message}");
        self.refused.insert(path.to_owned(), message);
    }

    async fn save(&mut self) -> Result<(), Error> {
        let meta = [
            ("cursor", self.cursor.clone()),
            ("next_local", Some(self.next_local.to_string())),
            ("settled", self.settled.clone()),
            ("ignore", self.ignore_key.clone()),
            ("last_pass", Some(self.clock.now().to_string())),
        ];
        for (key, value) in meta {
            self.state.set_meta(key, value.as_deref()).await?;
        }
        Ok(())
    }

    fn new_local_id(&mut self) -> NodeId {
        let id = NodeId::new(format!("local:{}", self.next_local));
        self.next_local += 1;
        id
    }

    // ---- applying a plan ----

    /// Applies the ops in order, small uploads and downloads in batches. Stops early (to
    /// observe again) when a side changed under it; `false` then.
    async fn apply(&mut self, ops: Vec<Op>) -> Result<bool, Error> {
        let mut uploads: Vec<Op> = Vec::new();
        let mut downloads: Vec<Op> = Vec::new();
        for op in ops {
            let batched = match &op {
                Op::Upload { id, .. } => self
                    .local
                    .stats
                    .get(id)
                    .is_some_and(|s| remote::batchable(s.size)),
                Op::Download { .. } => true,
                _ => false,
            };
            if batched {
                match op {
                    Op::Upload { .. } => uploads.push(op),
                    _ => downloads.push(op),
                }
                continue;
            }
            let independent = matches!(
                op,
                Op::CreateLocalFolder { .. }
                    | Op::CreateRemoteFolder { .. }
                    | Op::Link { .. }
                    | Op::CommitSynced { .. }
                    | Op::ForgetSynced { .. }
                    | Op::Upload { .. }
            );
            if !independent {
                let mut stop = !self.flush_uploads(&mut uploads).await?;
                stop |= !self.flush_downloads(&mut downloads).await?;
                if stop {
                    return Ok(false);
                }
            }
            if !self.apply_one(op).await? {
                return Ok(false);
            }
        }
        let uploaded = self.flush_uploads(&mut uploads).await?;
        let downloaded = self.flush_downloads(&mut downloads).await?;
        Ok(uploaded && downloaded)
    }

    /// Applies one op; `false` if a side changed under it (observe again before going on).
    async fn apply_one(&mut self, op: Op) -> Result<bool, Error> {
        tracing::trace!(?op, "apply");
        let now = self.clock.now();
        match op {
            Op::Link { local, remote } => {
                self.local.rekey(&local, remote);
            }
            Op::CommitSynced { id, node } => self.synced.put(id, node),
            Op::ForgetSynced { id } => self.synced.forget(&id),
            Op::KeepBoth { id, from, to } => {
                // The recorded stat stays: a rename keeps a file's inode and mtime, so an
                // edit made just before it still shows at the next scan.
                let renamed = self.fs.rename(&from, &to);
                if self.local_result(&from, renamed).is_none() {
                    return Ok(false);
                }
                let parent = self.local_parent(&to);
                let new = self.new_local_id();
                if let (Some(parent), Some(node)) = (parent, self.local.tree.get(&id).cloned()) {
                    self.local.put(
                        id.clone(),
                        Node {
                            parent,
                            name: path::name_of(&to).to_owned(),
                            ..node
                        },
                    );
                    self.local.rekey(&id, new);
                }
                let _ = self.state.add_conflict(&to, &from, now).await;
                self.report.conflicts.push((to, from));
            }
            Op::CreateLocalFolder { id, path: p } => {
                let stat = self.fs.mkdir(&p);
                let Some(stat) = self.local_result(&p, stat) else {
                    return Ok(false);
                };
                if let Some(parent) = self.local_parent(&p) {
                    self.local
                        .put(id.clone(), Node::folder(parent, path::name_of(&p)));
                    self.local.set_stat(&id, stat);
                }
                self.report.folders_created += 1;
            }
            Op::Download { .. } => {
                let mut one = vec![op];
                return self.flush_downloads(&mut one).await;
            }
            Op::MoveLocal { id, from, to } => {
                let renamed = self.fs.rename(&from, &to);
                if self.local_result(&from, renamed).is_none() {
                    return Ok(false);
                }
                if let Some(parent) = self.local_parent(&to)
                    && let Some(node) = self.local.tree.get(&id).cloned()
                    && !self.local.tree.is_ancestor_or_self(&id, &parent)
                {
                    self.local.put(
                        id.clone(),
                        Node {
                            parent,
                            name: path::name_of(&to).to_owned(),
                            ..node
                        },
                    );
                }
                self.report.moved += 1;
            }
            Op::DeleteLocal { id, path: p, nodes } => {
                // Only what was observed goes: a file created or changed since is left for
                // the next plan.
                let mut expected = BTreeMap::new();
                for node in self.local.tree.subtree(&id) {
                    if let (Some(at), Some(stat)) =
                        (self.local.tree.path(&node), self.local.stats.get(&node))
                    {
                        expected.insert(at, *stat);
                    }
                }
                let trashed = self.fs.trash(&p, &expected, now);
                if self.local_result(&p, trashed).is_none() {
                    return Ok(false);
                }
                self.local.remove_subtree(&id);
                self.report.deleted_local += nodes as u64;
            }
            Op::CreateRemoteFolder { id, path: p } => {
                let created = self.remote.create_folder(&p).await;
                let Some(entry) = self.remote_result(&p, created)? else {
                    return Ok(false);
                };
                self.take_server_id(&id, NodeId::new(entry.id)).await?;
                self.report.folders_created += 1;
            }
            Op::Upload {
                id, path: p, mode, ..
            } => {
                let mode = upload_mode(&mode);
                let source = self.fs.source(&p);
                let uploaded = self.remote.upload(&p, &mode, &source).await;
                if matches!(mode, Mode::Update(_)) && self.detached(&id, &p, &uploaded) {
                    return Ok(false);
                }
                let Some(entry) = self.remote_result(&p, uploaded)? else {
                    return Ok(false);
                };
                self.uploaded(&id, &entry).await?;
            }
            Op::MoveRemote { id, from, to } => {
                let moved = self.remote.move_to(&from, &to).await;
                if self.detached(&id, &from, &moved) {
                    return Ok(false);
                }
                if self.remote_result(&from, moved)?.is_none() {
                    return Ok(false);
                }
                self.report.moved += 1;
            }
            Op::DeleteRemote { id, path: p, nodes } => {
                if self.remote_tree.tree.is_folder(&id) {
                    // Dropbox deletes a folder whole: first check that nothing was added or
                    // changed in it since it was observed.
                    let listed = self.remote.list_under(&p).await;
                    let Some(listed) = self.remote_result(&p, listed)? else {
                        return Ok(false);
                    };
                    let tree = &self.remote_tree.tree;
                    let observed: HashSet<NodeId> = tree.subtree(&id).into_iter().collect();
                    let unchanged = listed.len() + 1 == observed.len()
                        && listed.iter().all(|e| {
                            let id = NodeId::new(e.id.clone());
                            observed.contains(&id) && tree.get(&id).is_some_and(|n| n.rev == e.rev)
                        });
                    if !unchanged {
                        return Ok(false);
                    }
                }
                let rev = self.remote_tree.tree.get(&id).and_then(|n| n.rev.clone());
                let deleted = self.remote.delete(&p, rev.as_deref()).await;
                if self.detached(&id, &p, &deleted) {
                    return Ok(false);
                }
                if self.remote_result(&p, deleted)?.is_none() {
                    return Ok(false);
                }
                self.report.deleted_remote += nodes as u64;
            }
        }
        Ok(true)
    }

    /// After the server refused to change a file because this account may only view the
    /// folder (a viewer of a shared folder): unties the local file from the server's, so the
    /// local one is a new file (kept, uploaded where it may be, or reported) and the
    /// server's comes back beside it. Returns whether it did (a folder, or another refusal,
    /// is left to `remote_result`).
    fn detached<T>(&mut self, id: &NodeId, p: &str, result: &Result<T, RemoteError>) -> bool {
        let Err(RemoteError::Refused(why)) = result else {
            return false;
        };
        // The server's node: a file deleted here is no longer in the Local tree.
        let is_file = self
            .remote_tree
            .tree
            .get(id)
            .is_some_and(|n| !n.kind.is_folder());
        if !why.contains("no_write_permission") || !is_file {
            return false;
        }
        if self.local.tree.contains(id) {
            let fresh = self.new_local_id();
            if !self.local.rekey(id, fresh) {
                return false;
            }
        }
        self.synced.forget(id);
        self.problem(
            p,
            "read-only: a shared folder you may view but not change; your version is kept here as a new file, the folder's comes back".into(),
        );
        true
    }

    /// Records a successful upload of the local node `id`.
    async fn uploaded(&mut self, id: &NodeId, entry: &Entry) -> Result<(), Error> {
        let new = NodeId::new(entry.id.clone());
        self.take_server_id(id, new).await?;
        self.report.uploaded += 1;
        Ok(())
    }

    /// Gives a local node the id the server gave it, unless another local node has it.
    async fn take_server_id(&mut self, id: &NodeId, new: NodeId) -> Result<(), Error> {
        if &new != id
            && !self.local.tree.contains(&new)
            && !self.state.exists(Which::Local, &new).await?
        {
            self.local.rekey(id, new);
        }
        Ok(())
    }

    /// Uploads the queued small files in one batch; `false` if any met a change.
    async fn flush_uploads(&mut self, queue: &mut Vec<Op>) -> Result<bool, Error> {
        if queue.is_empty() {
            return Ok(true);
        }
        let ops = std::mem::take(queue);
        let mut clean = true;
        // One `finish_batch_v2` worth at a time, so the requests' arguments stay small.
        for chunk in ops.chunks(remote::BATCH_ENTRIES) {
            let items: Vec<(String, Mode, PathBuf)> = chunk
                .iter()
                .filter_map(|op| match op {
                    Op::Upload { path: p, mode, .. } => {
                        Some((p.clone(), upload_mode(mode), self.fs.source(p)))
                    }
                    _ => None,
                })
                .collect();
            let results = self.remote.upload_batch(&items).await;
            for (op, result) in chunk.iter().zip(results) {
                let Op::Upload {
                    id, path: p, mode, ..
                } = op
                else {
                    continue;
                };
                if matches!(mode, UploadMode::Update { .. }) && self.detached(id, p, &result) {
                    clean = false;
                    continue;
                }
                match self.remote_result(p, result)? {
                    Some(entry) => self.uploaded(id, &entry).await?,
                    None => clean = false,
                }
            }
        }
        Ok(clean)
    }

    /// Downloads the queued files in parallel and installs each; `false` if any met a change.
    async fn flush_downloads(&mut self, queue: &mut Vec<Op>) -> Result<bool, Error> {
        if queue.is_empty() {
            return Ok(true);
        }
        let ops = std::mem::take(queue);
        let started = std::time::Instant::now();
        let fetched: Vec<(usize, Result<(), RemoteError>)> = {
            let fs = &self.fs;
            let remote = &self.remote;
            futures_util::stream::iter(ops.iter().enumerate().filter_map(|(i, op)| match op {
                Op::Download {
                    path: p,
                    content_hash,
                    rev: Some(rev),
                    ..
                } => Some((i, p, content_hash, rev)),
                _ => None,
            }))
            .map(|(i, p, hash, rev)| async move {
                (i, remote.download(rev, hash, &fs.partial(p)).await)
            })
            .buffered(remote::PARALLEL)
            .collect()
            .await
        };
        let mut clean = fetched.len() == ops.len();
        let complete: Vec<PathBuf> = fetched
            .iter()
            .filter(|(_, r)| r.is_ok())
            .filter_map(|(i, _)| op_path(&ops[*i]).map(|p| self.fs.partial(p)))
            .collect();
        if let Err(e) = self.fs.flush(&complete) {
            for p in &complete {
                self.fs.discard(p);
            }
            return Err(Error::Local(e));
        }
        for (i, result) in fetched {
            let Op::Download {
                id,
                path: p,
                content_hash,
                rev,
            } = &ops[i]
            else {
                continue;
            };
            let partial = self.fs.partial(p);
            if self.remote_result(p, result)?.is_none() {
                self.fs.discard(&partial);
                clean = false;
                continue;
            }
            let expected = self.local.stats.get(id).copied();
            let installed = self.fs.install(&partial, p, expected.as_ref());
            let Some(stat) = self.local_result(p, installed) else {
                self.fs.discard(&partial);
                clean = false;
                continue;
            };
            let Some(parent) = self.local_parent(p) else {
                continue;
            };
            self.local.put(
                id.clone(),
                Node {
                    parent,
                    name: path::name_of(p).to_owned(),
                    kind: Kind::file(content_hash.clone()),
                    rev: rev.clone(),
                },
            );
            self.local.set_stat(id, stat);
            self.report.downloaded += 1;
        }
        tracing::debug!(
            files = ops.len(),
            ms = started.elapsed().as_millis() as u64,
            "downloaded and installed"
        );
        Ok(clean)
    }

    /// The local parent node of a path (by the Local tree).
    fn local_parent(&self, p: &str) -> Option<NodeId> {
        let parent = path::parent_of(p);
        if parent.is_empty() {
            Some(NodeId::root())
        } else {
            self.local.tree.lookup(parent)
        }
    }

    /// Sorts a local op's result: `None` if the disk changed under it (or refused it).
    fn local_result<T>(&mut self, p: &str, result: std::io::Result<T>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::NotFound
                        | std::io::ErrorKind::AlreadyExists
                ) =>
            {
                tracing::debug!("{p}: {e}");
                None
            }
            Err(e) => {
                self.refuse(p, format!("the local disk refused: {e}"));
                None
            }
        }
    }

    /// Sorts a remote op's result: `Ok(None)` if the server changed under it or refused this
    /// item (recorded), `Err` if the whole pass must stop.
    fn remote_result<T>(
        &mut self,
        p: &str,
        result: Result<T, RemoteError>,
    ) -> Result<Option<T>, Error> {
        match result {
            Ok(v) => Ok(Some(v)),
            Err(RemoteError::Changed(why)) => {
                tracing::debug!("{p}: {why}");
                Ok(None)
            }
            Err(RemoteError::Refused(why)) => {
                self.refuse(p, why);
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }
}

fn upload_mode(mode: &UploadMode) -> Mode {
    match mode {
        UploadMode::Update { rev: Some(rev) } => Mode::Update(rev.clone()),
        _ => Mode::Add,
    }
}

fn writes_remote(op: &Op) -> bool {
    matches!(
        op,
        Op::CreateRemoteFolder { .. }
            | Op::Upload { .. }
            | Op::MoveRemote { .. }
            | Op::DeleteRemote { .. }
    )
}

fn writes_local(op: &Op) -> bool {
    matches!(
        op,
        Op::CreateLocalFolder { .. }
            | Op::Download { .. }
            | Op::MoveLocal { .. }
            | Op::DeleteLocal { .. }
            | Op::KeepBoth { .. }
    )
}

/// The path an op writes, for matching it against refused paths.
fn op_path(op: &Op) -> Option<&str> {
    match op {
        Op::KeepBoth { from, .. } | Op::MoveLocal { from, .. } | Op::MoveRemote { from, .. } => {
            Some(from)
        }
        Op::CreateLocalFolder { path, .. }
        | Op::Download { path, .. }
        | Op::DeleteLocal { path, .. }
        | Op::CreateRemoteFolder { path, .. }
        | Op::Upload { path, .. }
        | Op::DeleteRemote { path, .. } => Some(path),
        _ => None,
    }
}

/// Hashes files on a few threads; results in the order of `files`.
fn hash_all<F: LocalFs>(
    fs: &F,
    files: &[(NodeId, String)],
    threads: usize,
) -> Vec<(String, std::io::Result<(String, Stat)>)> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, std::io::Result<(String, Stat)>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.clamp(1, files.len().max(1)))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((_, p)) = files.get(i) else { break };
                        mine.push((i, fs.hash(p)));
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a hashing thread panicked"))
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter()
        .map(|(i, r)| (files[i].1.clone(), r))
        .collect()
}
