//! Deterministic simulation of the whole engine: an in-memory disk and server, a fake clock,
//! and a seed that drives random edits on both disks and on the server, passes of two
//! engines (two computers on one account), crashes (an engine dropped and reopened from its
//! state file) and injected network errors (a request lost before or after the server applied
//! it), plus edits made *while* an engine applies its plan.
//!
//! Each seed ends by letting the engines settle without faults and checking that both disks
//! and the server hold the same tree, and that no content a user wrote was lost: every
//! version that no user deleted or overwrote on a side that saw it is still the content of
//! some file (a conflicted copy counts as kept).
//!
//! `CUBBY_SYNC_SEEDS=N` runs N seeds (default 500; `scripts/test` runs 3,000); `CUBBY_SYNC_SEED=S` replays one seed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use cubby_core::hash::ContentHasher;
use cubby_core::path;

use super::fs::{Listing, LocalFs, Stat, changed};
use super::remote::{Change, Entry, Mode, Page, Put, RemoteApi, RemoteError, Revision, Revisions};
use super::{Clock, Engine, Options};

// ---- randomness ----

/// A small deterministic generator (splitmix64).
#[derive(Clone)]
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        (self.next() % 1_000_000) as f64 / 1_000_000.0 < p
    }
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            Some(&items[self.below(items.len())])
        }
    }
}

/// Names that collide case-insensitively, so the server's case folding is exercised.
const NAMES: &[&str] = &["a", "A", "b", "c.txt", "C.TXT", "d e"];

/// Every version a user wrote, and those a user deliberately removed.
#[derive(Default)]
pub(crate) struct Ledger {
    next: u64,
    pub(crate) written: BTreeSet<Vec<u8>>,
    pub(crate) killed: BTreeSet<Vec<u8>>,
}

impl Ledger {
    pub(crate) fn blob(&mut self, seed: u64) -> Vec<u8> {
        self.next += 1;
        let blob = format!("seed {seed} version {}", self.next).into_bytes();
        self.written.insert(blob.clone());
        blob
    }
}

pub(crate) type SharedLedger = Arc<Mutex<Ledger>>;

/// The seeds a simulation runs: the one `one` names (a replay, `true`), or 1 to the count
/// `many` names (500 by default).
pub(crate) fn seeds(one: &str, many: &str) -> (Vec<u64>, bool) {
    if let Ok(s) = std::env::var(one) {
        let seed = s.parse().unwrap_or_else(|_| panic!("{one} is a number"));
        return (vec![seed], true);
    }
    let n: u64 = std::env::var(many)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    ((1..=n).collect(), false)
}

pub(crate) fn hash_of(data: &[u8]) -> String {
    let mut h = ContentHasher::new();
    h.update(data);
    h.finish()
}

// ---- the disk ----

#[derive(Clone)]
struct FsEntry {
    dir: bool,
    data: Arc<Vec<u8>>,
    mtime: i64,
    inode: u64,
}

struct FsInner {
    entries: BTreeMap<String, FsEntry>,
    partials: HashMap<PathBuf, Vec<u8>>,
    trash: Vec<(String, FsEntry)>,
    next_inode: u64,
    tick: i64,
    /// Edits made by "the user" while the engine works: (rng, probability per engine write).
    chaos: Option<(Rng, f64)>,
    /// Edits made by "the user" while a file is read (hashed, stat'ed, uploaded): (rng,
    /// probability per read). Only the backup simulation sets it.
    read_chaos: Option<(Rng, f64)>,
    /// The names user edits pick from.
    names: &'static [&'static str],
    /// A folder user edits never move or delete (a shared folder's mount point, which in
    /// the simulation's one namespace would move for every member).
    pinned: Option<String>,
}

/// An in-memory, case-sensitive disk.
#[derive(Clone)]
pub(crate) struct FakeFs {
    inner: Arc<Mutex<FsInner>>,
    ledger: SharedLedger,
    seed: u64,
}

impl FakeFs {
    pub(crate) fn new(ledger: SharedLedger, seed: u64) -> Self {
        Self {
            inner: Arc::new(Mutex::new(FsInner {
                entries: BTreeMap::new(),
                partials: HashMap::new(),
                trash: Vec::new(),
                next_inode: 1,
                tick: 1,
                chaos: None,
                read_chaos: None,
                names: NAMES,
                pinned: None,
            })),
            ledger,
            seed,
        }
    }

    /// The names user edits pick from (the backup simulation avoids names equal but for
    /// case, see `backup_sim`).
    pub(crate) fn set_names(&self, names: &'static [&'static str]) {
        self.inner.lock().unwrap().names = names;
    }

    /// A folder the user's edits never move or delete.
    pub(crate) fn pin(&self, p: &str) {
        self.inner.lock().unwrap().pinned = Some(p.to_owned());
    }

    pub(crate) fn set_read_chaos(&self, chaos: Option<(Rng, f64)>) {
        self.inner.lock().unwrap().read_chaos = chaos;
    }

    /// Before a read of a file: maybe the user edits something first.
    pub(crate) fn maybe_user_read(&self) {
        let mut inner = self.inner.lock().unwrap();
        let Some((mut rng, p)) = inner.read_chaos.clone() else {
            return;
        };
        if rng.chance(p) {
            user_edit_fs(&mut inner, &mut rng, &self.ledger, self.seed);
        }
        inner.read_chaos = Some((rng, p));
    }

    fn set_chaos(&self, chaos: Option<(Rng, f64)>) {
        self.inner.lock().unwrap().chaos = chaos;
    }

    /// Before an engine write: maybe the user edits something first.
    fn maybe_user(&self) {
        let mut inner = self.inner.lock().unwrap();
        let Some((mut rng, p)) = inner.chaos.clone() else {
            return;
        };
        if rng.chance(p) {
            user_edit_fs(&mut inner, &mut rng, &self.ledger, self.seed);
        }
        inner.chaos = Some((rng, p));
    }

    pub(crate) fn user_edit(&self, rng: &mut Rng) {
        let mut inner = self.inner.lock().unwrap();
        user_edit_fs(&mut inner, rng, &self.ledger, self.seed);
    }

    /// Deletes a file or folder with what it holds, as a user would, outside any pass.
    pub(crate) fn remove(&self, p: &str) {
        let mut inner = self.inner.lock().unwrap();
        inner.entries.retain(|q, _| !under(q, p));
    }

    /// Writes a file (or, with `None`, makes a folder) as a user would, outside any pass.
    pub(crate) fn put(&self, p: &str, data: Option<&[u8]>) {
        let mut inner = self.inner.lock().unwrap();
        inner.tick += 1;
        inner.next_inode += 1;
        let entry = FsEntry {
            dir: data.is_none(),
            data: Arc::new(data.unwrap_or_default().to_vec()),
            mtime: inner.tick,
            inode: inner.next_inode,
        };
        inner.entries.insert(p.to_owned(), entry);
    }

    /// Renames a file or folder with what it holds, keeping inodes, as a user would.
    fn rename_tree(&self, from: &str, to: &str) {
        let mut inner = self.inner.lock().unwrap();
        let moved: Vec<(String, FsEntry)> = inner
            .entries
            .iter()
            .filter(|(p, _)| under(p, from))
            .map(|(p, e)| (p.clone(), e.clone()))
            .collect();
        for (p, e) in moved {
            inner.entries.remove(&p);
            inner.entries.insert(format!("{to}{}", &p[from.len()..]), e);
        }
    }

    /// Path → content (`None` for a folder).
    pub(crate) fn snapshot(&self) -> BTreeMap<String, Option<Vec<u8>>> {
        self.inner
            .lock()
            .unwrap()
            .entries
            .iter()
            .map(|(p, e)| (p.clone(), (!e.dir).then(|| e.data.to_vec())))
            .collect()
    }
}

fn stat_of(e: &FsEntry) -> Stat {
    Stat {
        is_dir: e.dir,
        size: if e.dir { 0 } else { e.data.len() as u64 },
        mtime_ns: e.mtime,
        inode: e.inode,
    }
}

fn under(p: &str, base: &str) -> bool {
    p == base || (p.starts_with(base) && p.as_bytes().get(base.len()) == Some(&b'/'))
}

fn free_local(inner: &FsInner, p: &str) -> bool {
    let parent = path::parent_of(p);
    !inner.entries.contains_key(p)
        && (parent.is_empty() || inner.entries.get(parent).is_some_and(|e| e.dir))
}

/// One random user edit of a disk.
fn user_edit_fs(inner: &mut FsInner, rng: &mut Rng, ledger: &SharedLedger, seed: u64) {
    let folders: Vec<String> = std::iter::once(String::new())
        .chain(
            inner
                .entries
                .iter()
                .filter(|(p, e)| e.dir && p.matches('/').count() < 3)
                .map(|(p, _)| p.clone()),
        )
        .collect();
    let all: Vec<String> = inner.entries.keys().cloned().collect();
    let files: Vec<String> = inner
        .entries
        .iter()
        .filter(|(_, e)| !e.dir)
        .map(|(p, _)| p.clone())
        .collect();
    inner.tick += 1;
    let tick = inner.tick;
    match rng.below(10) {
        0..=2 => {
            let dir = rng.pick(&folders).cloned().unwrap_or_default();
            let p = format!("{dir}/{}", rng.pick(inner.names).unwrap());
            if free_local(inner, &p) {
                let data = ledger.lock().unwrap().blob(seed);
                let inode = inner.next_inode;
                inner.next_inode += 1;
                inner.entries.insert(
                    p,
                    FsEntry {
                        dir: false,
                        data: Arc::new(data),
                        mtime: tick,
                        inode,
                    },
                );
            }
        }
        3 => {
            let dir = rng.pick(&folders).cloned().unwrap_or_default();
            let p = format!("{dir}/{}", rng.pick(inner.names).unwrap());
            if free_local(inner, &p) {
                let inode = inner.next_inode;
                inner.next_inode += 1;
                inner.entries.insert(
                    p,
                    FsEntry {
                        dir: true,
                        data: Arc::new(Vec::new()),
                        mtime: tick,
                        inode,
                    },
                );
            }
        }
        4 | 5 => {
            // Edit in place, or save through a new file renamed over (a new inode).
            if let Some(p) = rng.pick(&files).cloned() {
                let replace = rng.chance(0.5);
                let data = ledger.lock().unwrap().blob(seed);
                let inode = inner.next_inode;
                inner.next_inode += 1;
                let e = inner.entries.get_mut(&p).unwrap();
                ledger.lock().unwrap().killed.insert(e.data.to_vec());
                e.data = Arc::new(data);
                e.mtime = tick;
                if replace {
                    e.inode = inode;
                }
            }
        }
        6 => {
            if let Some(p) = rng.pick(&all).cloned()
                && !inner.pinned.as_ref().is_some_and(|q| under(q, &p))
            {
                let gone: Vec<String> = inner
                    .entries
                    .keys()
                    .filter(|q| under(q, &p))
                    .cloned()
                    .collect();
                for q in gone {
                    let e = inner.entries.remove(&q).unwrap();
                    if !e.dir {
                        ledger.lock().unwrap().killed.insert(e.data.to_vec());
                    }
                }
            }
        }
        _ => {
            // Rename or move a file or folder (its inode goes with it).
            if let Some(p) = rng.pick(&all).cloned()
                && !inner.pinned.as_ref().is_some_and(|q| under(q, &p))
            {
                let dir = rng.pick(&folders).cloned().unwrap_or_default();
                let to = format!("{dir}/{}", rng.pick(inner.names).unwrap());
                if free_local(inner, &to) && !under(&to, &p) {
                    let moving: Vec<String> = inner
                        .entries
                        .keys()
                        .filter(|q| under(q, &p))
                        .cloned()
                        .collect();
                    for q in moving {
                        let e = inner.entries.remove(&q).unwrap();
                        inner.entries.insert(format!("{to}{}", &q[p.len()..]), e);
                    }
                }
            }
        }
    }
}

impl LocalFs for FakeFs {
    fn list(&self, dir: &str) -> io::Result<Listing> {
        let inner = self.inner.lock().unwrap();
        if !dir.is_empty() && !inner.entries.get(dir).is_some_and(|e| e.dir) {
            return Err(changed(dir));
        }
        let entries = inner
            .entries
            .iter()
            .filter(|(p, _)| path::parent_of(p) == dir)
            .map(|(p, e)| (path::name_of(p).to_owned(), stat_of(e)))
            .collect();
        Ok(Listing {
            entries,
            ..Listing::default()
        })
    }

    fn stat(&self, p: &str) -> io::Result<Option<Stat>> {
        self.maybe_user_read();
        Ok(self.inner.lock().unwrap().entries.get(p).map(stat_of))
    }

    fn hash(&self, p: &str) -> io::Result<(String, Stat)> {
        self.maybe_user_read();
        let inner = self.inner.lock().unwrap();
        match inner.entries.get(p) {
            Some(e) if !e.dir => Ok((hash_of(&e.data), stat_of(e))),
            _ => Err(changed(p)),
        }
    }

    fn source(&self, p: &str) -> PathBuf {
        PathBuf::from(p)
    }

    fn partial(&self, p: &str) -> PathBuf {
        PathBuf::from(format!("{p}.partial"))
    }

    fn mkdir(&self, p: &str) -> io::Result<Stat> {
        self.maybe_user();
        let mut inner = self.inner.lock().unwrap();
        if let Some(e) = inner.entries.get(p) {
            return if e.dir {
                Ok(stat_of(e))
            } else {
                Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a file is there",
                ))
            };
        }
        if !free_local(&inner, p) {
            return Err(changed(p));
        }
        let inode = inner.next_inode;
        inner.next_inode += 1;
        inner.tick += 1;
        let e = FsEntry {
            dir: true,
            data: Arc::new(Vec::new()),
            mtime: inner.tick,
            inode,
        };
        let stat = stat_of(&e);
        inner.entries.insert(p.to_owned(), e);
        Ok(stat)
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.maybe_user();
        let mut inner = self.inner.lock().unwrap();
        if !inner.entries.contains_key(from) {
            return Err(changed(from));
        }
        if from != to && (!free_local(&inner, to) || under(to, from)) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "taken"));
        }
        let moving: Vec<String> = inner
            .entries
            .keys()
            .filter(|q| under(q, from))
            .cloned()
            .collect();
        for q in moving {
            let e = inner.entries.remove(&q).unwrap();
            inner.entries.insert(format!("{to}{}", &q[from.len()..]), e);
        }
        Ok(())
    }

    fn install(&self, partial: &Path, p: &str, expected: Option<&Stat>) -> io::Result<Stat> {
        self.maybe_user();
        let mut inner = self.inner.lock().unwrap();
        let there = inner.entries.get(p).map(stat_of);
        if there.as_ref() != expected {
            return Err(changed(p));
        }
        if there.is_none() && !free_local(&inner, p) {
            return Err(changed(p));
        }
        let data = inner
            .partials
            .remove(partial)
            .ok_or_else(|| io::Error::other("no partial file"))?;
        let inode = inner.next_inode;
        inner.next_inode += 1;
        inner.tick += 1;
        let e = FsEntry {
            dir: false,
            data: Arc::new(data),
            mtime: inner.tick,
            inode,
        };
        let stat = stat_of(&e);
        inner.entries.insert(p.to_owned(), e);
        Ok(stat)
    }

    fn flush(&self, _partials: &[PathBuf]) -> io::Result<()> {
        Ok(())
    }

    fn discard(&self, partial: &Path) {
        self.inner.lock().unwrap().partials.remove(partial);
    }

    fn trash(&self, p: &str, expected: &BTreeMap<String, Stat>, _now: i64) -> io::Result<()> {
        self.maybe_user();
        let mut inner = self.inner.lock().unwrap();
        let actual: BTreeMap<String, Stat> = inner
            .entries
            .iter()
            .filter(|(q, _)| under(q, p))
            .map(|(q, e)| (q.clone(), stat_of(e)))
            .collect();
        if !super::fs::same_subtree(expected, &actual) {
            return Err(changed(p));
        }
        let gone: Vec<String> = inner
            .entries
            .keys()
            .filter(|q| under(q, p))
            .cloned()
            .collect();
        for q in gone {
            let e = inner.entries.remove(&q).unwrap();
            inner.trash.push((q, e));
        }
        Ok(())
    }

    fn purge_trash(&self, _before: i64) -> io::Result<u64> {
        Ok(0)
    }
}

// ---- the server ----

#[derive(Clone)]
struct SNode {
    parent: String,
    name: String,
    dir: bool,
    rev: Option<String>,
    data: Arc<Vec<u8>>,
}

pub(crate) struct ServerInner {
    nodes: BTreeMap<String, SNode>,
    journal: Vec<Change>,
    pub(crate) revs: HashMap<String, Arc<Vec<u8>>>,
    next: u64,
    /// A crash injected after a call is applied: (rng, probability per call). Only the
    /// backup simulation sets it.
    crash: Option<(Rng, f64)>,
    pub(crate) crashed: bool,
    /// Calls left before a crash (a scenario's crash at a chosen call).
    crash_countdown: Option<u32>,
    /// A longpoll without changes waits for ever instead of answering at once (the follow
    /// loop's tests, to see its timers).
    pub(crate) quiet_longpoll: bool,
    /// File contents the client was told are current at their path by `get` (a backup
    /// acknowledges the server's copy after a conflict).
    pub(crate) acked: BTreeSet<Vec<u8>>,
    /// Injected failures: (rng, probability per call).
    faults: Option<(Rng, f64)>,
    /// A folder another client's edits never move or delete (see `FsInner::pinned`).
    pinned: Option<String>,
    /// Edits by another client while an engine calls: (rng, probability per call).
    chaos: Option<(Rng, f64)>,
}

/// An in-memory server with Dropbox's rules: case-insensitive paths, ids that survive moves,
/// revs, `add` and `update` write modes, parents created as needed, a change feed.
#[derive(Clone)]
pub(crate) struct FakeServer {
    pub(crate) inner: Arc<Mutex<ServerInner>>,
    ledger: SharedLedger,
    seed: u64,
}

/// One engine's view of the server: the disk it downloads into.
pub(crate) struct FakeRemote {
    pub(crate) server: FakeServer,
    pub(crate) fs: FakeFs,
    /// The remote folder's path (`/B`), `""` for the whole server.
    pub(crate) root: String,
    /// A shared folder this engine's account may only view (its node id): every write at or
    /// below it is refused, as the server refuses a viewer's.
    pub(crate) read_only: Option<String>,
    /// Refused moves into or out of the read-only folder, (from, to) in lower case: the
    /// viewer's disk keeps what it moved where it moved it.
    pub(crate) refused_moves: Arc<Mutex<BTreeSet<(String, String)>>>,
}

const PAGE: usize = 7;

impl ServerInner {
    fn path_of(&self, id: &str) -> String {
        let mut names = Vec::new();
        let mut cur = id;
        while !cur.is_empty() {
            let n = &self.nodes[cur];
            names.push(n.name.as_str());
            cur = &n.parent;
        }
        names.iter().rev().map(|n| format!("/{n}")).collect()
    }

    /// Whether `p` (or, for a path not there yet, its nearest existing ancestor) is the node
    /// `top` or below it.
    fn inside(&self, p: &str, top: &str) -> bool {
        let mut cur = p.to_owned();
        let id = loop {
            if let Some(id) = self.lookup(&cur) {
                break id;
            }
            if cur.is_empty() {
                return false;
            }
            cur = path::parent_of(&cur).to_owned();
        };
        let mut at = id.as_str();
        loop {
            if at == top {
                return true;
            }
            if at.is_empty() {
                return false;
            }
            at = &self.nodes[at].parent;
        }
    }

    pub(crate) fn lookup(&self, p: &str) -> Option<String> {
        let mut cur = String::new();
        for name in p.split('/').filter(|n| !n.is_empty()) {
            let lname = path::lower(name);
            cur = self
                .nodes
                .iter()
                .find(|(_, n)| n.parent == cur && path::lower(&n.name) == lname)
                .map(|(id, _)| id.clone())?;
        }
        Some(cur)
    }

    fn entry(&self, id: &str) -> Entry {
        let n = &self.nodes[id];
        Entry {
            id: id.to_owned(),
            path: self.path_of(id),
            folder: n.dir,
            rev: n.rev.clone(),
            content_hash: (!n.dir).then(|| hash_of(&n.data)),
            size: if n.dir { 0 } else { n.data.len() as u64 },
        }
    }

    fn subtree(&self, id: &str) -> Vec<String> {
        let mut out = vec![id.to_owned()];
        let mut i = 0;
        while i < out.len() {
            let cur = out[i].clone();
            out.extend(
                self.nodes
                    .iter()
                    .filter(|(_, n)| n.parent == cur)
                    .map(|(c, _)| c.clone()),
            );
            i += 1;
        }
        out
    }

    fn mint(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }

    /// The folder at `p`, created with its parents if missing; `None` if a file is in the way.
    fn ensure_folder(&mut self, p: &str) -> Option<String> {
        if p.is_empty() {
            return Some(String::new());
        }
        if let Some(id) = self.lookup(p) {
            return self.nodes[&id].dir.then_some(id);
        }
        let parent = self.ensure_folder(path::parent_of(p))?;
        let id = self.mint("id:");
        self.nodes.insert(
            id.clone(),
            SNode {
                parent,
                name: path::name_of(p).to_owned(),
                dir: true,
                rev: None,
                data: Arc::new(Vec::new()),
            },
        );
        self.journal.push(Change::Put(self.entry(&id)));
        Some(id)
    }

    pub(crate) fn write(
        &mut self,
        p: &str,
        mode: &Mode,
        data: Arc<Vec<u8>>,
    ) -> Result<Entry, RemoteError> {
        match (self.lookup(p), mode) {
            (Some(id), _) if self.nodes[&id].dir => Err(RemoteError::Changed("a folder".into())),
            (Some(id), Mode::Add) => {
                if self.nodes[&id].data == data {
                    Ok(self.entry(&id))
                } else {
                    Err(RemoteError::Changed("path/conflict/file".into()))
                }
            }
            (Some(id), Mode::Update(rev)) => {
                if self.nodes[&id].rev.as_ref() != Some(rev) {
                    return Err(RemoteError::Changed("path/conflict/file".into()));
                }
                let new_rev = self.mint("rev");
                self.revs.insert(new_rev.clone(), data.clone());
                let n = self.nodes.get_mut(&id).unwrap();
                n.data = data;
                n.rev = Some(new_rev);
                self.journal.push(Change::Put(self.entry(&id)));
                Ok(self.entry(&id))
            }
            (None, Mode::Update(_)) => Err(RemoteError::Changed("path/not_found".into())),
            (None, Mode::Add) => {
                let parent = self
                    .ensure_folder(path::parent_of(p))
                    .ok_or_else(|| RemoteError::Changed("a file is in the way".into()))?;
                let id = self.mint("id:");
                let rev = self.mint("rev");
                self.revs.insert(rev.clone(), data.clone());
                self.nodes.insert(
                    id.clone(),
                    SNode {
                        parent,
                        name: path::name_of(p).to_owned(),
                        dir: false,
                        rev: Some(rev),
                        data,
                    },
                );
                self.journal.push(Change::Put(self.entry(&id)));
                Ok(self.entry(&id))
            }
        }
    }

    /// A write with Dropbox's autorename: on a conflict in `add` mode, the first free name
    /// `name (n).ext` beside the path.
    fn write_renamed(&mut self, p: &str, data: Arc<Vec<u8>>) -> Result<Entry, RemoteError> {
        match self.write(p, &Mode::Add, data.clone()) {
            Err(RemoteError::Changed(_)) => {
                let (parent, name) = (path::parent_of(p), path::name_of(p));
                let (stem, ext) = match name.rfind('.') {
                    Some(i) if i > 0 => (&name[..i], &name[i..]),
                    _ => (name, ""),
                };
                for n in 1..100 {
                    let candidate = format!("{parent}/{stem} ({n}){ext}");
                    if self.lookup(&candidate).is_none() {
                        return self.write(&candidate, &Mode::Add, data);
                    }
                }
                Err(RemoteError::Refused("no free name".into()))
            }
            other => other,
        }
    }

    /// The client crashes right after its `n`th call from now is applied.
    pub(crate) fn crash_after(&mut self, n: u32) {
        self.crash_countdown = Some(n);
    }

    /// The revision of a file.
    pub(crate) fn entry_rev(&self, id: &str) -> String {
        self.nodes[id].rev.clone().unwrap_or_default()
    }

    /// Every file's content now, by path.
    pub(crate) fn files(&self) -> BTreeMap<String, Arc<Vec<u8>>> {
        self.nodes
            .iter()
            .filter(|(_, n)| !n.dir)
            .map(|(id, n)| (self.path_of(id), n.data.clone()))
            .collect()
    }

    fn move_node(&mut self, from: &str, to: &str) -> Result<Entry, RemoteError> {
        let id = self
            .lookup(from)
            .ok_or_else(|| RemoteError::Changed("from_lookup/not_found".into()))?;
        if let Some(other) = self.lookup(to)
            && other != id
        {
            return Err(RemoteError::Changed("to/conflict".into()));
        }
        let to_parent = path::parent_of(to);
        if path::is_within(&path::lower(to_parent), &path::lower(&self.path_of(&id))) {
            return Err(RemoteError::Refused("cant_move_folder_into_itself".into()));
        }
        let parent = self
            .ensure_folder(to_parent)
            .ok_or_else(|| RemoteError::Changed("a file is in the way".into()))?;
        let old_path = self.path_of(&id);
        let n = self.nodes.get_mut(&id).unwrap();
        n.parent = parent;
        n.name = path::name_of(to).to_owned();
        self.journal.push(Change::Deleted(old_path));
        for moved in self.subtree(&id) {
            // As on Dropbox, a moved file gets a new rev at its new place.
            if !self.nodes[&moved].dir {
                let rev = self.mint("rev");
                let n = self.nodes.get_mut(&moved).unwrap();
                self.revs.insert(rev.clone(), n.data.clone());
                n.rev = Some(rev);
            }
            self.journal.push(Change::Put(self.entry(&moved)));
        }
        Ok(self.entry(&id))
    }

    pub(crate) fn delete(&mut self, p: &str, rev: Option<&str>) -> Result<(), RemoteError> {
        let Some(id) = self.lookup(p) else {
            return if rev.is_none() {
                Ok(())
            } else {
                Err(RemoteError::Changed("path_lookup/not_found".into()))
            };
        };
        if let Some(rev) = rev
            && self.nodes[&id].rev.as_deref() != Some(rev)
        {
            return Err(RemoteError::Changed("conflict".into()));
        }
        let path = self.path_of(&id);
        for gone in self.subtree(&id) {
            self.nodes.remove(&gone);
        }
        self.journal.push(Change::Deleted(path));
        Ok(())
    }
}

/// One random edit by another client of the account.
fn user_edit_server(inner: &mut ServerInner, rng: &mut Rng, ledger: &SharedLedger, seed: u64) {
    let folders: Vec<String> = std::iter::once(String::new())
        .chain(
            inner
                .nodes
                .iter()
                .filter(|(_, n)| n.dir)
                .map(|(id, _)| inner.path_of(id))
                .filter(|p| p.matches('/').count() < 3),
        )
        .collect();
    let all: Vec<String> = inner.nodes.keys().map(|id| inner.path_of(id)).collect();
    let files: Vec<(String, String)> = inner
        .nodes
        .iter()
        .filter(|(_, n)| !n.dir)
        .map(|(id, n)| (inner.path_of(id), n.rev.clone().unwrap()))
        .collect();
    match rng.below(10) {
        0..=2 => {
            let dir = rng.pick(&folders).cloned().unwrap_or_default();
            let p = format!("{dir}/{}", rng.pick(NAMES).unwrap());
            if inner.lookup(&p).is_none() {
                let data = ledger.lock().unwrap().blob(seed);
                let _ = inner.write(&p, &Mode::Add, Arc::new(data));
            }
        }
        3 => {
            let dir = rng.pick(&folders).cloned().unwrap_or_default();
            let p = format!("{dir}/{}", rng.pick(NAMES).unwrap());
            if inner.lookup(&p).is_none() {
                inner.ensure_folder(&p);
            }
        }
        4 | 5 => {
            if let Some((p, rev)) = rng.pick(&files).cloned() {
                let id = inner.lookup(&p).unwrap();
                let old = inner.nodes[&id].data.to_vec();
                let data = ledger.lock().unwrap().blob(seed);
                if inner.write(&p, &Mode::Update(rev), Arc::new(data)).is_ok() {
                    ledger.lock().unwrap().killed.insert(old);
                }
            }
        }
        6 => {
            if let Some(p) = rng.pick(&all).cloned()
                && !inner.pinned.as_ref().is_some_and(|q| under(q, &p))
            {
                let id = inner.lookup(&p).unwrap();
                for gone in inner.subtree(&id) {
                    let n = &inner.nodes[&gone];
                    if !n.dir {
                        ledger.lock().unwrap().killed.insert(n.data.to_vec());
                    }
                }
                let _ = inner.delete(&p, None);
            }
        }
        _ => {
            if let Some(p) = rng.pick(&all).cloned()
                && !inner.pinned.as_ref().is_some_and(|q| under(q, &p))
            {
                let dir = rng.pick(&folders).cloned().unwrap_or_default();
                let to = format!("{dir}/{}", rng.pick(NAMES).unwrap());
                if inner.lookup(&to).is_none() {
                    let _ = inner.move_node(&p, &to);
                }
            }
        }
    }
}

impl FakeServer {
    pub(crate) fn new(ledger: SharedLedger, seed: u64) -> Self {
        Self {
            inner: Arc::new(Mutex::new(ServerInner {
                nodes: BTreeMap::new(),
                journal: Vec::new(),
                revs: HashMap::new(),
                next: 0,
                crash: None,
                crashed: false,
                crash_countdown: None,
                quiet_longpoll: false,
                acked: BTreeSet::new(),
                faults: None,
                chaos: None,
                pinned: None,
            })),
            ledger,
            seed,
        }
    }

    fn user_edit(&self, rng: &mut Rng) {
        let mut inner = self.inner.lock().unwrap();
        user_edit_server(&mut inner, rng, &self.ledger, self.seed);
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, Option<Vec<u8>>> {
        let inner = self.inner.lock().unwrap();
        inner
            .nodes
            .iter()
            .map(|(id, n)| (inner.path_of(id), (!n.dir).then(|| n.data.to_vec())))
            .collect()
    }

    /// Arms (or disarms) crashes: after a call is applied, the client stops for good.
    pub(crate) fn set_crash(&self, crash: Option<(Rng, f64)>) {
        let mut inner = self.inner.lock().unwrap();
        inner.crash = crash;
        inner.crashed = false;
        inner.crash_countdown = None;
    }

    pub(crate) fn crashed(&self) -> bool {
        self.inner.lock().unwrap().crashed
    }

    pub(crate) fn set_faults(&self, faults: Option<(Rng, f64)>, chaos: Option<(Rng, f64)>) {
        let mut inner = self.inner.lock().unwrap();
        inner.faults = faults;
        inner.chaos = chaos;
    }

    /// Runs one call: maybe another client edits first; maybe the call fails before it is
    /// applied, or after (the answer is lost).
    fn call<T>(
        &self,
        f: impl FnOnce(&mut ServerInner) -> Result<T, RemoteError>,
    ) -> Result<T, RemoteError> {
        self.call_with(true, f)
    }

    /// `chaos: false` for the one call whose race the engine can only narrow, not close: a
    /// folder deletion right after the engine listed the folder to check it (Dropbox has no
    /// conditional folder delete). An edit in that instant would survive in the server's
    /// history only.
    fn call_with<T>(
        &self,
        chaos: bool,
        f: impl FnOnce(&mut ServerInner) -> Result<T, RemoteError>,
    ) -> Result<T, RemoteError> {
        let mut inner = self.inner.lock().unwrap();
        if inner.crashed {
            // The client is gone: nothing it sends arrives.
            return Err(RemoteError::Transient("the client crashed".into()));
        }
        if chaos && let Some((mut rng, p)) = inner.chaos.take() {
            if rng.chance(p) {
                user_edit_server(&mut inner, &mut rng, &self.ledger, self.seed);
            }
            inner.chaos = Some((rng, p));
        }
        let fault = match inner.faults.take() {
            Some((mut rng, p)) => {
                let f = if rng.chance(p) {
                    Some(rng.chance(0.5))
                } else {
                    None
                };
                inner.faults = Some((rng, p));
                f
            }
            None => None,
        };
        match fault {
            Some(true) => Err(RemoteError::Transient("injected: lost before".into())),
            Some(false) => {
                let _ = f(&mut inner);
                Err(RemoteError::Transient("injected: answer lost".into()))
            }
            None => {
                let result = f(&mut inner);
                if let Some(n) = inner.crash_countdown {
                    inner.crash_countdown = Some(n.saturating_sub(1));
                    inner.crashed |= n <= 1;
                }
                if let Some((mut rng, p)) = inner.crash.take() {
                    if rng.chance(p) {
                        inner.crashed = true;
                    }
                    inner.crash = Some((rng, p));
                }
                result
            }
        }
    }
}

impl FakeRemote {
    /// A call that crashed the client never returns (the run is dropped by the driver).
    async fn answer<T>(&self, result: Result<T, RemoteError>) -> Result<T, RemoteError> {
        if self.server.crashed() {
            std::future::pending::<()>().await;
        }
        result
    }

    fn full(&self, p: &str) -> String {
        format!("{}{p}", self.root)
    }

    /// A viewer's write into the read-only shared folder: refused as the server refuses it.
    fn check_write(&self, full: &[&str]) -> Result<(), RemoteError> {
        let Some(top) = &self.read_only else {
            return Ok(());
        };
        let s = self.server.inner.lock().unwrap();
        if full.iter().any(|p| s.inside(p, top)) {
            return Err(RemoteError::Refused(
                r#"{".tag":"path","path":{".tag":"no_write_permission"}}"#.into(),
            ));
        }
        Ok(())
    }

    /// A server path below the root, relative to it (`None`: the root or outside).
    fn rel(&self, p: &str) -> Option<String> {
        if self.root.is_empty() {
            return Some(p.to_owned());
        }
        let rest = path::lower(p)
            .strip_prefix(&path::lower(&self.root))?
            .to_owned();
        rest.starts_with('/')
            .then(|| p[self.root.len()..].to_owned())
    }

    fn rel_entry(&self, mut e: Entry) -> Option<Entry> {
        e.path = self.rel(&e.path)?;
        Some(e)
    }

    fn rel_change(&self, c: &Change) -> Option<Change> {
        match c {
            Change::Put(e) => self.rel_entry(e.clone()).map(Change::Put),
            Change::Deleted(p) => self.rel(p).map(Change::Deleted),
        }
    }

    fn source_data(&self, source: &Path) -> Result<Arc<Vec<u8>>, RemoteError> {
        let fs = self.fs.inner.lock().unwrap();
        match fs.entries.get(source.to_str().unwrap()) {
            Some(e) if !e.dir => Ok(e.data.clone()),
            _ => Err(RemoteError::Changed("the local file went away".into())),
        }
    }
}

impl RemoteApi for FakeRemote {
    async fn list(&self, cursor: Option<&str>) -> Result<Page, RemoteError> {
        match cursor {
            None => self.list_from_start(true, false).await,
            Some(c) => {
                self.answer(self.server.call(|s| {
                    let from: usize = c.parse().map_err(|_| RemoteError::Reset)?;
                    let to = (from + PAGE).min(s.journal.len());
                    Ok(Page {
                        changes: s.journal[from.min(to)..to]
                            .iter()
                            .filter_map(|c| self.rel_change(c))
                            .collect(),
                        cursor: to.to_string(),
                        has_more: to < s.journal.len(),
                    })
                }))
                .await
            }
        }
    }

    async fn list_from_start(
        &self,
        create_root: bool,
        include_deleted: bool,
    ) -> Result<Page, RemoteError> {
        let result = self.server.call(|s| {
            let root = if create_root {
                s.ensure_folder(&self.root)
            } else {
                s.lookup(&self.root)
            };
            let root = match root {
                Some(id) if id.is_empty() || s.nodes[&id].dir => id,
                _ => return Err(RemoteError::Changed("path/not_found".into())),
            };
            let mut ids: Vec<String> = s.subtree(&root).into_iter().skip(1).collect();
            ids.sort_by_key(|id| s.path_of(id).matches('/').count());
            let mut changes: Vec<Change> = ids
                .iter()
                .filter_map(|id| self.rel_entry(s.entry(id)).map(Change::Put))
                .collect();
            if include_deleted {
                let mut gone = BTreeSet::new();
                for c in &s.journal {
                    if let Change::Deleted(p) = c
                        && s.lookup(p).is_none()
                        && let Some(rel) = self.rel(p)
                        && gone.insert(path::lower(&rel))
                    {
                        changes.push(Change::Deleted(rel));
                    }
                }
            }
            Ok(Page {
                changes,
                cursor: s.journal.len().to_string(),
                has_more: false,
            })
        });
        self.answer(result).await
    }

    async fn wait(&self, cursor: &str, _timeout: u64) -> Result<bool, RemoteError> {
        let from: usize = cursor.parse().unwrap_or(0);
        let (changed, quiet) = {
            let inner = self.server.inner.lock().unwrap();
            (inner.journal.len() > from, inner.quiet_longpoll)
        };
        if !changed && quiet {
            // A longpoll that never times out: only a timer of the caller ends the wait.
            std::future::pending::<()>().await;
        }
        Ok(changed)
    }

    async fn create_folder(&self, p: &str) -> Result<Entry, RemoteError> {
        let full = self.full(p);
        self.check_write(&[&full])?;
        let result = self.server.call(|s| {
            let id = s
                .ensure_folder(&full)
                .ok_or_else(|| RemoteError::Changed("a file is there".into()))?;
            self.rel_entry(s.entry(&id))
                .ok_or_else(|| RemoteError::Changed("outside the root".into()))
        });
        self.answer(result).await
    }

    async fn upload(&self, p: &str, mode: &Mode, source: &Path) -> Result<Entry, RemoteError> {
        let data = self.source_data(source)?;
        let full = self.full(p);
        self.check_write(&[&full])?;
        let result = self.server.call(|s| {
            let e = s.write(&full, mode, data)?;
            self.rel_entry(e)
                .ok_or_else(|| RemoteError::Changed("outside the root".into()))
        });
        self.answer(result).await
    }

    async fn upload_as(&self, p: &str, put: &Put, source: &Path) -> Result<Entry, RemoteError> {
        // The file is read again to be sent: the user may have changed it since it was hashed.
        self.fs.maybe_user_read();
        let data = self.source_data(source)?;
        let full = self.full(p);
        self.check_write(&[&full])?;
        let result = self.server.call(|s| {
            let e = if put.autorename && put.mode == Mode::Add {
                s.write_renamed(&full, data)?
            } else {
                s.write(&full, &put.mode, data)?
            };
            self.rel_entry(e)
                .ok_or_else(|| RemoteError::Changed("outside the root".into()))
        });
        self.answer(result).await
    }

    async fn upload_batch(
        &self,
        items: &[(String, Mode, PathBuf)],
    ) -> Vec<Result<Entry, RemoteError>> {
        let mut out = Vec::new();
        for (p, mode, source) in items {
            out.push(self.upload(p, mode, source).await);
        }
        out
    }

    async fn download(
        &self,
        rev: &str,
        content_hash: &str,
        partial: &Path,
    ) -> Result<(), RemoteError> {
        let data = self.server.call(|s| {
            s.revs
                .get(rev)
                .cloned()
                .ok_or_else(|| RemoteError::Changed("no such rev".into()))
        })?;
        assert_eq!(
            hash_of(&data),
            content_hash,
            "the engine asked for a rev by the wrong hash"
        );
        self.fs
            .inner
            .lock()
            .unwrap()
            .partials
            .insert(partial.to_owned(), data.to_vec());
        Ok(())
    }

    async fn move_to(&self, from: &str, to: &str) -> Result<Entry, RemoteError> {
        let (from, to) = (self.full(from), self.full(to));
        if let Err(e) = self.check_write(&[&from, &to]) {
            self.refused_moves
                .lock()
                .unwrap()
                .insert((path::lower(&from), path::lower(&to)));
            return Err(e);
        }
        let result = self.server.call(|s| {
            let e = s.move_node(&from, &to)?;
            self.rel_entry(e)
                .ok_or_else(|| RemoteError::Changed("outside the root".into()))
        });
        self.answer(result).await
    }

    async fn list_under(&self, p: &str) -> Result<Vec<Entry>, RemoteError> {
        let full = self.full(p);
        self.server.call(|s| {
            let id = s
                .lookup(&full)
                .ok_or_else(|| RemoteError::Changed("not_found".into()))?;
            Ok(s.subtree(&id)
                .iter()
                .skip(1)
                .filter_map(|c| self.rel_entry(s.entry(c)))
                .collect())
        })
    }

    async fn delete(&self, p: &str, rev: Option<&str>) -> Result<(), RemoteError> {
        let full = self.full(p);
        self.check_write(&[&full])?;
        let result = self
            .server
            .call_with(rev.is_some(), |s| s.delete(&full, rev));
        self.answer(result).await
    }

    async fn get(&self, p: &str) -> Result<Option<Entry>, RemoteError> {
        let full = self.full(p);
        let result = self.server.call(|s| {
            let Some(id) = s.lookup(&full) else {
                return Ok(None);
            };
            let n = &s.nodes[&id];
            if !n.dir {
                let data = n.data.to_vec();
                s.acked.insert(data);
            }
            Ok(self.rel_entry(s.entry(&id)))
        });
        self.answer(result).await
    }

    async fn revisions(&self, p: &str, _limit: u32) -> Result<Option<Revisions>, RemoteError> {
        // The fake keeps no history by path: the current revision only, saved at time 0.
        let full = self.full(p);
        self.server.call(|s| {
            Ok(s.lookup(&full).map(|id| s.entry(&id)).and_then(|e| {
                (!e.folder).then(|| Revisions {
                    entries: vec![Revision {
                        rev: e.rev.clone().unwrap_or_default(),
                        content_hash: e.content_hash.clone(),
                        size: e.size,
                        server_modified: 0,
                    }],
                    deleted_at: None,
                })
            }))
        })
    }
}

struct FakeClock(AtomicI64);

impl Clock for FakeClock {
    fn now(&self) -> i64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

// ---- the driver ----

type SimEngine = Engine<FakeFs, FakeRemote, FakeClock>;

struct Computer {
    fs: FakeFs,
    db: PathBuf,
    engine: Option<SimEngine>,
    /// The engine's working-set size: tiny ones split every plan into many batches.
    batch_nodes: usize,
    /// A shared folder (node id) this computer's account may only view.
    read_only: Option<String>,
    /// See `FakeRemote::refused_moves`.
    refused_moves: Arc<Mutex<BTreeSet<(String, String)>>>,
}

impl Computer {
    async fn engine(&mut self, server: &FakeServer) -> &mut SimEngine {
        if self.engine.is_none() {
            let remote = FakeRemote {
                server: server.clone(),
                fs: self.fs.clone(),
                root: String::new(),
                read_only: self.read_only.clone(),
                refused_moves: self.refused_moves.clone(),
            };
            let opts = Options {
                force: true,
                hash_threads: 1,
                durable_state: false,
                batch_nodes: self.batch_nodes,
                ..Options::default()
            };
            let engine = Engine::open(
                self.fs.clone(),
                remote,
                FakeClock(AtomicI64::new(1)),
                &self.db,
                opts,
            )
            .await
            .expect("opening the engine");
            self.engine = Some(engine);
        }
        self.engine.as_mut().unwrap()
    }

    /// A crash: the engine is dropped without saving anything more.
    fn crash(&mut self) {
        self.engine = None;
    }
}

/// Runs one seed; `Err` describes the failure.
async fn run_seed(seed: u64, dir: &Path) -> Result<(), String> {
    let ledger: SharedLedger = Arc::default();
    let mut rng = Rng(seed);
    let server = FakeServer::new(ledger.clone(), seed);
    let mut computers: Vec<Computer> = (0..2)
        .map(|i| Computer {
            fs: FakeFs::new(ledger.clone(), seed),
            db: dir.join(format!("seed-{seed}-{i}.sqlite")),
            engine: None,
            batch_nodes: [1, 3, 8, 20_000][(seed as usize + i) % 4],
            read_only: None,
            refused_moves: Default::default(),
        })
        .collect();
    // Both disks and the server start with some content of their own.
    for _ in 0..rng.below(6) {
        server.user_edit(&mut rng);
    }
    for c in &computers {
        for _ in 0..rng.below(6) {
            c.fs.user_edit(&mut rng);
        }
    }
    let steps = 10 + rng.below(20);
    for _ in 0..steps {
        match rng.below(8) {
            0 | 1 => {
                let c = &computers[rng.below(2)];
                for _ in 0..1 + rng.below(3) {
                    c.fs.user_edit(&mut rng);
                }
            }
            2 => {
                for _ in 0..1 + rng.below(3) {
                    server.user_edit(&mut rng);
                }
            }
            3 => computers[rng.below(2)].crash(),
            _ => {
                let i = rng.below(2);
                let faults = rng.chance(0.5).then(|| (Rng(rng.next()), 0.1));
                let chaos = rng.chance(0.3).then(|| (Rng(rng.next()), 0.1));
                let fs_chaos = rng.chance(0.3).then(|| (Rng(rng.next()), 0.1));
                server.set_faults(faults, chaos);
                computers[i].fs.set_chaos(fs_chaos);
                let result = computers[i].engine(&server).await.pass().await;
                server.set_faults(None, None);
                computers[i].fs.set_chaos(None);
                if result.is_err() && rng.chance(0.5) {
                    computers[i].crash();
                }
            }
        }
    }
    // Settle: no more edits or faults; passes until all three agree.
    let mut agreed = false;
    for _ in 0..6 {
        for c in computers.iter_mut() {
            let report = c
                .engine(&server)
                .await
                .pass()
                .await
                .map_err(|e| e.to_string())?;
            if !report.problems.is_empty() {
                return Err(format!("problems: {:?}", report.problems));
            }
        }
        let remote = server.snapshot();
        if computers.iter().all(|c| c.fs.snapshot() == remote) {
            agreed = true;
            break;
        }
    }
    let remote = server.snapshot();
    if !agreed {
        let mut views = Vec::new();
        for c in computers.iter_mut() {
            let engine = c.engine(&server).await;
            let pending = engine.pending().await.map_err(|e| e.to_string())?;
            let (r, l, s) = engine.full_trees().await.map_err(|e| e.to_string())?;
            let (r, l, s) = (&r, &l, &s);
            views.push(format!(
                "remote tree {:#?}\nlocal tree {:#?}\nsynced tree {:#?}\npending {:#?}",
                compact(r),
                compact(l),
                compact(s),
                pending
            ));
        }
        return Err(format!(
            "no convergence:\nserver {:#?}\nA {:#?}\nB {:#?}\n{}",
            names(&remote),
            names(&computers[0].fs.snapshot()),
            names(&computers[1].fs.snapshot()),
            views.join("\n----\n")
        ));
    }
    // No lost writes: what no user removed is still somewhere in the tree.
    let lost = {
        let ledger = ledger.lock().unwrap();
        let present: BTreeSet<Vec<u8>> = remote.values().flatten().cloned().collect();
        ledger
            .written
            .iter()
            .filter(|b| !ledger.killed.contains(*b) && !present.contains(*b))
            .map(|b| format!("{} ({})", String::from_utf8_lossy(b), &hash_of(b)[..6]))
            .collect::<Vec<String>>()
    };
    if !lost.is_empty() {
        return Err(format!("lost: {lost:?}\nserver {:#?}", names(&remote)));
    }
    for c in computers.iter_mut() {
        if let Some(e) = c.engine.take() {
            e.close().await;
        }
    }
    Ok(())
}

/// Runs one seed of a viewer: computer B's account may only view the shared folder
/// `/shared` (its writes there are refused), while computer A and another member on the
/// server keep changing it. B's edits there stay on B's disk, reported; everything else
/// converges; no write is lost. Returns the refusals B saw.
async fn run_viewer_seed(seed: u64, dir: &Path) -> Result<usize, String> {
    let ledger: SharedLedger = Arc::default();
    let mut rng = Rng(seed);
    let server = FakeServer::new(ledger.clone(), seed);
    // The mount point stays where it is: in the simulation's one namespace a member's move
    // of it would move every member's (Cubby moves only theirs: `it/sharing.rs` tests that).
    let shared = {
        let mut s = server.inner.lock().unwrap();
        s.pinned = Some("/shared".into());
        s.ensure_folder("/shared").expect("a folder")
    };
    let mut computers: Vec<Computer> = (0..2)
        .map(|i| Computer {
            fs: FakeFs::new(ledger.clone(), seed),
            db: dir.join(format!("viewer-{seed}-{i}.sqlite")),
            engine: None,
            batch_nodes: [1, 3, 8, 20_000][(seed as usize + i) % 4],
            read_only: (i == 1).then(|| shared.clone()),
            refused_moves: Default::default(),
        })
        .collect();
    for c in &computers {
        c.fs.pin("/shared");
    }
    for _ in 0..rng.below(6) {
        server.user_edit(&mut rng);
    }
    let mut refusals = 0;
    let steps = 10 + rng.below(20);
    for _ in 0..steps {
        match rng.below(8) {
            0 | 1 => {
                let c = &computers[rng.below(2)];
                for _ in 0..1 + rng.below(3) {
                    c.fs.user_edit(&mut rng);
                }
            }
            2 => {
                for _ in 0..1 + rng.below(3) {
                    server.user_edit(&mut rng);
                }
            }
            3 => computers[rng.below(2)].crash(),
            _ => {
                let i = rng.below(2);
                let faults = rng.chance(0.5).then(|| (Rng(rng.next()), 0.1));
                server.set_faults(faults, None);
                let result = computers[i].engine(&server).await.pass().await;
                server.set_faults(None, None);
                if result.is_err() && rng.chance(0.5) {
                    computers[i].crash();
                }
            }
        }
    }
    // Where the shared folder is now (another member may have moved or deleted it).
    let shared_at = |server: &FakeServer| {
        let s = server.inner.lock().unwrap();
        s.nodes
            .contains_key(&shared)
            .then(|| path::lower(&s.path_of(&shared)))
    };
    // What the viewer's disk may keep of its own: the shared folder, and both ends of a
    // folder it moved into or out of it (refused, reported, left as the viewer made it; a
    // file so moved is untied from the server's instead, and converges).
    let outside = |tree: BTreeMap<String, Option<Vec<u8>>>, kept: &[String]| {
        tree.into_iter()
            .filter(|(p, _)| !kept.iter().any(|k| path::is_within(&path::lower(p), k)))
            .collect::<BTreeMap<_, _>>()
    };
    let mut agreed = false;
    let mut refused_now: Vec<String> = Vec::new();
    for _ in 0..6 {
        refused_now.clear();
        computers[1].refused_moves.lock().unwrap().clear();
        for (i, c) in computers.iter_mut().enumerate() {
            let report = c
                .engine(&server)
                .await
                .pass()
                .await
                .map_err(|e| e.to_string())?;
            for (p, why) in &report.problems {
                let at = shared_at(&server);
                // A write into the shared folder, or a move into it from outside.
                let inside = at
                    .as_ref()
                    .is_some_and(|at| path::is_within(&path::lower(p), at))
                    || c.refused_moves
                        .lock()
                        .unwrap()
                        .iter()
                        .any(|(from, _)| *from == path::lower(p));
                if i == 0 || !inside || !why.starts_with("read-only") {
                    return Err(format!("computer {i}: problem {p}: {why}"));
                }
                refusals += 1;
                refused_now.push(path::lower(p));
            }
        }
        let remote = server.snapshot();
        let at = shared_at(&server);
        let moved: Vec<String> = computers[1]
            .refused_moves
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(from, to)| [from.clone(), to.clone()])
            .collect();
        let within = |p: &str, ks: &[String]| {
            let lp = path::lower(p);
            ks.iter().any(|k| path::is_within(&lp, k))
        };
        let mut kept = moved.clone();
        kept.extend(at.iter().cloned());
        // Inside the shared folder the viewer has everything the folder has, as it is there
        // (its own versions beside, as new files).
        let viewer = computers[1].fs.snapshot();
        let folder_is_there = remote.iter().all(|(p, d)| {
            !at.as_ref()
                .is_some_and(|a| within(p, std::slice::from_ref(a)))
                || within(p, &moved)
                || viewer.get(p) == Some(d)
        });
        if computers[0].fs.snapshot() == remote
            && outside(viewer.clone(), &kept) == outside(remote.clone(), &kept)
            && folder_is_there
        {
            agreed = true;
            break;
        }
    }
    let remote = server.snapshot();
    if !agreed {
        return Err(format!(
            "no convergence (shared folder at {:?}, B refused {refused_now:?}):\nserver {:#?}\nA {:#?}\nB {:#?}",
            shared_at(&server),
            names(&remote),
            names(&computers[0].fs.snapshot()),
            names(&computers[1].fs.snapshot()),
        ));
    }
    // No lost writes: the viewer's refused edits are still on its disk.
    let lost = {
        let ledger = ledger.lock().unwrap();
        let present: BTreeSet<Vec<u8>> = remote
            .values()
            .chain(computers[1].fs.snapshot().values())
            .flatten()
            .cloned()
            .collect();
        ledger
            .written
            .iter()
            .filter(|b| !ledger.killed.contains(*b) && !present.contains(*b))
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect::<Vec<String>>()
    };
    if !lost.is_empty() {
        return Err(format!("lost: {lost:?}\nserver {:#?}", names(&remote)));
    }
    for c in computers.iter_mut() {
        if let Some(e) = c.engine.take() {
            e.close().await;
        }
    }
    Ok(refusals)
}

fn compact(tree: &cubby_core::sync::tree::Tree) -> Vec<String> {
    let mut out: Vec<String> = tree
        .iter()
        .map(|(id, n)| {
            format!(
                "{id} {} {:?} {:?}",
                tree.path(id)
                    .unwrap_or_else(|| format!("<detached under {}>/{}", n.parent, n.name)),
                n.kind.content_hash().map(|h| &h[..6]),
                n.rev
            )
        })
        .collect();
    out.sort();
    out
}

fn names(tree: &BTreeMap<String, Option<Vec<u8>>>) -> Vec<String> {
    tree.iter()
        .map(|(p, d)| match d {
            Some(d) => format!("{p} = {}", String::from_utf8_lossy(d)),
            None => format!("{p}/"),
        })
        .collect()
}

#[test]
fn simulated_computers_and_server_converge_without_losing_writes() {
    // The state files on a RAM disk where there is one: thousands of seeds create them.
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (seeds, replay) = seeds("CUBBY_SYNC_SEED", "CUBBY_SYNC_SEEDS");
    if replay {
        // One seed replayed: `RUST_LOG=cubby_sync=trace` shows every op and feed entry.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let mut failures = Vec::new();
    for seed in &seeds {
        if let Err(why) = runtime.block_on(run_seed(*seed, dir.path())) {
            failures.push((*seed, why));
        }
    }
    if let Some((seed, why)) = failures.first() {
        panic!(
            "{} of {} seeds failed (replay one with CUBBY_SYNC_SEED={seed}); the first:\n{why}",
            failures.len(),
            seeds.len(),
        );
    }
}

#[test]
fn a_viewer_keeps_its_edits_and_never_changes_the_shared_folder() {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A fifth of the main simulation's seeds (its replay variable replays one here too).
    let (all, replay) = seeds("CUBBY_SYNC_VIEWER_SEED", "CUBBY_SYNC_SEEDS");
    let seeds: Vec<u64> = if replay {
        all
    } else {
        all.into_iter().filter(|s| s % 5 == 0).collect()
    };
    let mut failures = Vec::new();
    let mut refusals = 0;
    for seed in &seeds {
        match runtime.block_on(run_viewer_seed(*seed, dir.path())) {
            Ok(n) => refusals += n,
            Err(why) => failures.push((*seed, why)),
        }
    }
    if let Some((seed, why)) = failures.first() {
        panic!(
            "{} of {} seeds failed (replay one with CUBBY_SYNC_VIEWER_SEED={seed}); the first:\n{why}",
            failures.len(),
            seeds.len(),
        );
    }
    assert!(
        replay || refusals > 0,
        "no seed had the viewer change the shared folder"
    );
}

/// The planner's working sets follow the batch size and the folders that changed, not the
/// size of the tree: a first sync up and down of 2,040 nodes with 300-node batches, a pass
/// with no change, one edited file and one renamed folder. A plan over whole trees would hold
/// every node of all three trees (over 6,000).
#[test]
fn working_sets_follow_the_batch_not_the_tree() {
    const FOLDERS: usize = 40;
    const FILES: usize = 50;
    const BATCH: usize = 300;
    // One closure step can add a folder and the top level, in all three trees.
    const STEP: usize = 3 * (FILES + FOLDERS + 1);
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let ledger: SharedLedger = Arc::default();
        let server = FakeServer::new(ledger.clone(), 1);
        let mut computers: Vec<Computer> = (0..2)
            .map(|i| Computer {
                fs: FakeFs::new(ledger.clone(), 1),
                db: dir.path().join(format!("{i}.sqlite")),
                engine: None,
                batch_nodes: BATCH,
                read_only: None,
                refused_moves: Default::default(),
            })
            .collect();
        for d in 0..FOLDERS {
            computers[0].fs.put(&format!("/d{d:02}"), None);
            for f in 0..FILES {
                let data = format!("folder {d} file {f}");
                computers[0]
                    .fs
                    .put(&format!("/d{d:02}/f{f:02}"), Some(data.as_bytes()));
            }
        }
        let nodes = FOLDERS * (FILES + 1);
        let pass = async |c: &mut Computer| c.engine(&server).await.pass().await.unwrap();

        let up = pass(&mut computers[0]).await;
        // Uploads in the first round, bookkeeping in the second: the batches of a round go
        // through every folder, even those a batch before re-keyed.
        assert!(up.converged && up.rounds <= 3, "{up:?}");
        assert_eq!(up.uploaded as usize, FOLDERS * FILES);
        assert!(
            up.working_set_peak <= BATCH + STEP,
            "first sync up held {} nodes at once",
            up.working_set_peak
        );
        let down = pass(&mut computers[1]).await;
        assert_eq!(down.downloaded as usize, FOLDERS * FILES);
        assert!(down.working_set_peak <= BATCH + STEP, "{down:?}");
        assert_eq!(computers[1].fs.snapshot(), server.snapshot());
        assert_eq!(server.snapshot().len(), nodes);

        let idle = pass(&mut computers[0]).await;
        assert!(idle.converged);
        assert_eq!(idle.working_set_peak, 0, "a pass with no change planned");

        computers[0].fs.put("/d07/f03", Some(b"edited"));
        let edit = pass(&mut computers[0]).await;
        assert_eq!(edit.uploaded, 1);
        assert!(edit.working_set_peak <= STEP, "{edit:?}");

        computers[0].fs.rename_tree("/d09", "/renamed");
        let rename = pass(&mut computers[0]).await;
        assert_eq!((rename.moved, rename.uploaded), (1, 0), "{rename:?}");
        assert!(rename.working_set_peak <= STEP, "{rename:?}");

        let follow = pass(&mut computers[1]).await;
        assert_eq!((follow.moved, follow.downloaded), (1, 1), "{follow:?}");
        // Two folders changed: each comes with its children in three trees.
        assert!(follow.working_set_peak <= BATCH + STEP, "{follow:?}");
        assert_eq!(computers[1].fs.snapshot(), server.snapshot());
        assert_eq!(computers[0].fs.snapshot(), server.snapshot());
    });
}
