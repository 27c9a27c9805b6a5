//! Observing both sides into the state database, folder by folder: neither the scan nor the
//! feed holds a whole tree in memory.

use std::collections::{HashMap, HashSet, VecDeque};

use cubby_core::path;
use cubby_core::sync::tree::{Kind, Node, NodeId};

use super::fs::{LocalFs, Stat};
use super::remote::{Change, Entry, RemoteApi, RemoteError};
use super::state::{Row, Which, Write};
use super::{Clock, Engine, Error, hash_all};

/// Rows written at once by the scan and by a fresh listing.
const WRITE_CHUNK: usize = 2_000;
/// Files hashed at once by the scan.
const HASH_CHUNK: usize = 512;
/// Folders of the Remote tree whose ids the feed keeps by path.
const FOLDER_CACHE: usize = 50_000;

/// The Remote ids at the places one page of the feed writes to, so that each entry's check
/// for a stale node in its place costs no query. Only the parents in `known` are complete;
/// any deletion in the page empties it (later entries then ask the database).
#[derive(Default)]
struct Places {
    known: HashSet<NodeId>,
    at: HashMap<(NodeId, String), Vec<NodeId>>,
    place_of: HashMap<NodeId, (NodeId, String)>,
}

impl Places {
    fn put(&mut self, id: NodeId, parent: NodeId, folded: String) {
        if let Some(old) = self.place_of.remove(&id)
            && let Some(ids) = self.at.get_mut(&old)
        {
            ids.retain(|i| *i != id);
        }
        if self.known.contains(&parent) {
            let place = (parent, folded);
            self.at.entry(place.clone()).or_default().push(id.clone());
            self.place_of.insert(id, place);
        }
    }

    fn at(&self, parent: &NodeId, folded: &str) -> Vec<NodeId> {
        self.at
            .get(&(parent.clone(), folded.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    fn holds(&self, id: &NodeId) -> bool {
        self.place_of.contains_key(id)
    }
}

/// A file of the scan waiting to be hashed.
struct ToHash {
    id: NodeId,
    parent: NodeId,
    name: String,
    path: String,
    /// The content recorded for it, if it is a known file.
    known: Option<Kind>,
}

/// What one scan has seen so far.
#[derive(Default)]
struct ScanState {
    /// Ids whose place or inode changed in this scan: no other entry may claim them.
    moved: HashSet<NodeId>,
    /// Known nodes not found where they were: deleted at the end unless claimed elsewhere.
    missing: Vec<NodeId>,
    writes: Vec<Write>,
    to_hash: Vec<ToHash>,
}

impl<F: LocalFs, R: RemoteApi, C: Clock> Engine<F, R, C> {
    // ---- the disk ----

    /// Scans the local folder into the Local tree, one folder at a time, hashing only files
    /// whose (size, mtime, inode) changed: an unchanged file costs one `lstat`.
    pub async fn observe_local(&mut self) -> Result<(), Error> {
        self.ignore = self.excludes.clone();
        let mut scan = ScanState::default();
        let mut queue: VecDeque<(String, NodeId, bool)> =
            VecDeque::from([(String::new(), NodeId::root(), false)]);
        while let Some((dir, dir_id, is_new)) = queue.pop_front() {
            let listing = match self.fs.list(&dir) {
                Ok(listing) => listing,
                Err(e) if dir.is_empty() => return Err(Error::Local(e)),
                Err(e) => {
                    // What was known below a folder that cannot be read stands.
                    self.problem(&dir, format!("cannot read the folder: {e}"));
                    continue;
                }
            };
            if let Some(text) = &listing.ignore {
                self.ignore.add_lines(dir.trim_start_matches('/'), text);
            }
            for (p, m) in listing.problems {
                self.problem(&p, m);
            }
            for p in listing.special {
                self.problem(&p, super::fs::SPECIAL.to_owned());
            }
            let entries: Vec<(String, Stat)> = listing
                .entries
                .into_iter()
                .filter(|(name, stat)| {
                    let rel = format!("{}/{name}", dir.trim_start_matches('/'));
                    !self
                        .ignore
                        .is_excluded(rel.trim_start_matches('/'), stat.is_dir)
                })
                .collect();
            let known: Vec<Row> = if is_new {
                Vec::new()
            } else {
                self.state.children(Which::Local, &dir_id).await?
            };
            let names: HashSet<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
            let mut by_inode: HashMap<(u64, bool), Vec<&Row>> = HashMap::new();
            let mut by_name: HashMap<&str, Vec<&Row>> = HashMap::new();
            for k in &known {
                if let Some(s) = k.stat {
                    by_inode.entry((s.inode, s.is_dir)).or_default().push(k);
                }
                by_name.entry(k.node.name.as_str()).or_default().push(k);
            }
            // Entries whose inode no known child of this folder has: they may have moved here.
            let unmatched: Vec<(u64, bool)> = entries
                .iter()
                .map(|(_, s)| (s.inode, s.is_dir))
                .filter(|key| !by_inode.contains_key(key))
                .collect();
            let elsewhere: HashMap<(u64, bool), Row> = if unmatched.is_empty() || self.local_empty {
                HashMap::new()
            } else {
                self.flush_scan(&mut scan, false).await?;
                self.state
                    .by_inodes(&unmatched)
                    .await?
                    .into_iter()
                    .filter(|r| r.node.parent != dir_id)
                    .filter_map(|r| r.stat.map(|s| ((s.inode, s.is_dir), r)))
                    .collect()
            };
            let mut claimed: HashSet<NodeId> = HashSet::new();
            for (name, stat) in &entries {
                let p = format!("{dir}/{name}");
                let free = |id: &NodeId, claimed: &HashSet<NodeId>| {
                    !claimed.contains(id) && !scan.moved.contains(id)
                };
                // By inode first: the same node, renamed in this folder or moved here.
                let mut found: Option<&Row> = by_inode
                    .get(&(stat.inode, stat.is_dir))
                    .into_iter()
                    .flatten()
                    .find(|k| {
                        free(&k.id, &claimed)
                            && (k.node.name == *name || !names.contains(k.node.name.as_str()))
                    })
                    .copied();
                if found.is_none()
                    && let Some(row) = elsewhere.get(&(stat.inode, stat.is_dir))
                    && free(&row.id, &claimed)
                    && self.vacated(row).await?
                {
                    found = Some(row);
                }
                // Then by place, if it is the same kind.
                if found.is_none() {
                    found = by_name
                        .get(name.as_str())
                        .into_iter()
                        .flatten()
                        .find(|k| k.node.kind.is_folder() == stat.is_dir && free(&k.id, &claimed))
                        .copied();
                }
                let (id, old) = match found {
                    Some(row) => (row.id.clone(), Some(row)),
                    None => (self.new_local_id(), None),
                };
                claimed.insert(id.clone());
                let same_place =
                    old.is_some_and(|o| o.node.parent == dir_id && o.node.name == *name);
                let same_inode = old.is_some_and(|o| o.stat.is_some_and(|s| s.inode == stat.inode));
                if old.is_some() && (!same_place || !same_inode) {
                    scan.moved.insert(id.clone());
                }
                let unchanged = same_place && old.is_some_and(|o| o.stat.as_ref() == Some(stat));
                if stat.is_dir {
                    queue.push_back((p, id.clone(), old.is_none()));
                    if !unchanged {
                        scan.writes.push((
                            id,
                            Some((Node::folder(dir_id.clone(), name.clone()), Some(*stat))),
                        ));
                    }
                } else if !unchanged {
                    let known_kind = old.map(|o| o.node.kind.clone()).filter(|k| !k.is_folder());
                    if old.and_then(|o| o.stat.as_ref()) == Some(stat)
                        && let Some(kind) = &known_kind
                    {
                        // Moved with an unchanged stat: its content is the known one.
                        let node = Node {
                            parent: dir_id.clone(),
                            name: name.clone(),
                            kind: kind.clone(),
                            rev: None,
                        };
                        scan.writes.push((id, Some((node, Some(*stat)))));
                    } else {
                        scan.to_hash.push(ToHash {
                            id,
                            parent: dir_id.clone(),
                            name: name.clone(),
                            path: p,
                            known: known_kind,
                        });
                    }
                }
            }
            for k in known {
                if !claimed.contains(&k.id) {
                    scan.missing.push(k.id);
                }
            }
            if scan.to_hash.len() >= HASH_CHUNK || scan.writes.len() >= WRITE_CHUNK {
                self.flush_scan(&mut scan, true).await?;
            }
        }
        self.flush_scan(&mut scan, true).await?;
        for id in scan.missing {
            if !scan.moved.contains(&id) {
                self.state.delete_subtree(Which::Local, &id).await?;
            }
        }
        self.local_empty = self.state.is_empty(Which::Local).await?;
        Ok(())
    }

    /// Whether a known node's recorded place no longer holds it (so it moved).
    async fn vacated(&self, row: &Row) -> Result<bool, Error> {
        let Some(old) = self.state.local_path(&row.id).await? else {
            return Ok(true);
        };
        let there = self.fs.stat(&old).map_err(Error::Local)?;
        Ok(there.is_none_or(|s| Some(s.inode) != row.stat.map(|r| r.inode)))
    }

    /// Hashes the queued files (if `hash`) and writes what the scan found so far.
    async fn flush_scan(&mut self, scan: &mut ScanState, hash: bool) -> Result<(), Error> {
        if hash && !scan.to_hash.is_empty() {
            let files: Vec<(NodeId, String)> = scan
                .to_hash
                .iter()
                .map(|f| (f.id.clone(), f.path.clone()))
                .collect();
            let hashed = hash_all(&self.fs, &files, self.opts.hash_threads);
            for (file, (p, result)) in std::mem::take(&mut scan.to_hash).into_iter().zip(hashed) {
                let (kind, stat) = match result {
                    Ok((hash, stat)) => (Kind::file(hash), Some(stat)),
                    Err(e) => {
                        if e.kind() != std::io::ErrorKind::WouldBlock {
                            self.problem(&p, format!("cannot read: {e}"));
                        }
                        // Keep what was known (a changing file is not a deleted one, and its
                        // stat stays so the next scan hashes it again); a file never hashed
                        // waits for the next pass.
                        match file.known {
                            Some(kind) => {
                                let stat = self.state.stat_of(Which::Local, &file.id).await?;
                                (kind, stat)
                            }
                            None => continue,
                        }
                    }
                };
                let node = Node {
                    parent: file.parent,
                    name: file.name,
                    kind,
                    rev: None,
                };
                scan.writes.push((file.id, Some((node, stat))));
            }
        }
        if !scan.writes.is_empty() {
            self.state
                .write(Which::Local, &std::mem::take(&mut scan.writes))
                .await?;
        }
        Ok(())
    }

    // ---- the server ----

    /// Reads the server's feed since the saved cursor into the Remote tree.
    ///
    /// The Remote tree is only ever changed by the feed, never by the answers to the engine's
    /// own ops: a feed's deletions name paths as they were at that point of the feed, so a
    /// tree moved ahead of its cursor would miss them. The next round reads the engine's own
    /// changes back from the feed.
    pub async fn observe_remote(&mut self) -> Result<(), Error> {
        let mut folders: HashMap<String, NodeId> = HashMap::new();
        loop {
            let cursor = self.cursor.clone();
            let page = match self.remote.list(cursor.as_deref()).await {
                Ok(page) => page,
                Err(RemoteError::Reset) if cursor.is_some() => {
                    self.cursor = None;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let fresh = cursor.is_none();
            if fresh {
                // A listing from scratch replaces the whole tree; it lists parents first and
                // never two entries in one place, so its entries are written in bulk.
                self.state.clear(Which::Remote).await?;
                folders.clear();
                self.listing_fresh = true;
            }
            let mut writes: Vec<Write> = Vec::new();
            let mut places = if self.listing_fresh {
                Places::default()
            } else {
                self.prefetch(&page.changes, &mut folders).await?
            };
            for change in &page.changes {
                tracing::trace!(?cursor, ?change, "feed");
                if folders.len() > FOLDER_CACHE {
                    folders.clear();
                }
                match change {
                    Change::Put(entry) => {
                        if self.listing_fresh {
                            self.fresh_put(entry, &mut folders, &mut writes).await?;
                        } else {
                            self.remote_put(entry, &mut folders, &mut places, &mut writes)
                                .await?;
                        }
                        if writes.len() >= WRITE_CHUNK {
                            self.flush_feed(&mut writes).await?;
                        }
                    }
                    Change::Deleted(p) => {
                        self.flush_feed(&mut writes).await?;
                        if let Some((id, _)) = self.remote_lookup(p, &mut folders).await? {
                            self.state.delete_subtree(Which::Remote, &id).await?;
                            folders.clear();
                            places = Places::default();
                        }
                    }
                }
            }
            self.flush_feed(&mut writes).await?;
            self.cursor = Some(page.cursor);
            if !page.has_more {
                self.listing_fresh = false;
                return Ok(());
            }
        }
    }

    fn remote_node(&self, entry: &Entry, parent: NodeId) -> Node {
        Node {
            parent,
            name: path::name_of(&entry.path).to_owned(),
            kind: match &entry.content_hash {
                Some(h) if !entry.folder => Kind::file(h.clone()),
                _ => Kind::Folder,
            },
            rev: entry.rev.clone(),
        }
    }

    /// An entry of a listing from scratch: its parent folder is known by path already.
    async fn fresh_put(
        &mut self,
        entry: &Entry,
        folders: &mut HashMap<String, NodeId>,
        writes: &mut Vec<Write>,
    ) -> Result<(), Error> {
        let rel = entry.path.trim_start_matches('/');
        if self.ignore.is_excluded(rel, entry.folder) {
            return Ok(());
        }
        let Some(parent) = self.feed_parent(&entry.path, folders, writes).await? else {
            return Ok(());
        };
        let id = NodeId::new(entry.id.clone());
        if entry.folder {
            folders.insert(path::lower(&entry.path), id.clone());
        }
        let node = self.remote_node(entry, parent);
        writes.push((id, Some((node, None))));
        Ok(())
    }

    /// The ids at the places a page of the feed writes to, read in one query (see [`Places`]).
    async fn prefetch(
        &mut self,
        changes: &[Change],
        folders: &mut HashMap<String, NodeId>,
    ) -> Result<Places, Error> {
        let mut places = Places::default();
        let mut wanted: Vec<(NodeId, String)> = Vec::new();
        for change in changes {
            let Change::Put(entry) = change else { continue };
            let parent_path = path::parent_of(&entry.path);
            let parent = if parent_path.is_empty() {
                Some(NodeId::root())
            } else {
                match self.remote_lookup(parent_path, folders).await? {
                    Some((p, true)) => Some(p),
                    _ => None,
                }
            };
            if let Some(parent) = parent {
                places.known.insert(parent.clone());
                wanted.push((parent, path::lower(path::name_of(&entry.path))));
            }
        }
        for row in self.state.at_places(Which::Remote, &wanted).await? {
            places.put(row.id, row.node.parent, path::lower(&row.node.name));
        }
        Ok(places)
    }

    /// Records an entry of the feed in the Remote tree (written with `writes`).
    async fn remote_put(
        &mut self,
        entry: &Entry,
        folders: &mut HashMap<String, NodeId>,
        places: &mut Places,
        writes: &mut Vec<Write>,
    ) -> Result<(), Error> {
        let id = NodeId::new(entry.id.clone());
        let rel = entry.path.trim_start_matches('/');
        if self.ignore.is_excluded(rel, entry.folder) {
            if places.holds(&id) || self.state.exists(Which::Remote, &id).await? {
                self.flush_feed(writes).await?;
                self.state.delete_subtree(Which::Remote, &id).await?;
                folders.clear();
                *places = Places::default();
            }
            return Ok(());
        }
        let Some(parent) = self.feed_parent(&entry.path, folders, writes).await? else {
            return Ok(());
        };
        // A stale node of another id in the same place is gone on the server.
        let name = path::name_of(&entry.path);
        let folded = path::lower(name);
        let others: Vec<NodeId> = if places.known.contains(&parent) {
            places.at(&parent, &folded)
        } else {
            self.flush_feed(writes).await?;
            self.state
                .named(Which::Remote, &parent, name)
                .await?
                .into_iter()
                .map(|r| r.id)
                .collect()
        };
        let stale: Vec<NodeId> = others.into_iter().filter(|o| *o != id).collect();
        if !stale.is_empty() {
            self.flush_feed(writes).await?;
            for other in stale {
                self.state.delete_subtree(Which::Remote, &other).await?;
            }
            folders.clear();
            *places = Places::default();
        }
        if entry.folder {
            self.flush_feed(writes).await?;
            if self
                .state
                .is_ancestor_or_self(Which::Remote, &id, &parent)
                .await?
            {
                return Ok(());
            }
            // A folder that moved takes its subtree's cached paths with it.
            folders.clear();
            folders.insert(path::lower(&entry.path), id.clone());
        }
        let node = self.remote_node(entry, parent.clone());
        places.put(id.clone(), parent, folded);
        writes.push((id, Some((node, None))));
        Ok(())
    }

    /// Writes the feed's buffered rows, before a query that must see them.
    async fn flush_feed(&self, writes: &mut Vec<Write>) -> Result<(), Error> {
        if !writes.is_empty() {
            self.state.write(Which::Remote, writes).await?;
            writes.clear();
        }
        Ok(())
    }

    /// The Remote folder an entry of the feed goes in; `None` if its parent is no folder of
    /// the tree (an excluded parent, or an entry out of order: its parent's entry brings it).
    async fn feed_parent(
        &self,
        entry_path: &str,
        folders: &mut HashMap<String, NodeId>,
        writes: &mut Vec<Write>,
    ) -> Result<Option<NodeId>, Error> {
        let parent_path = path::parent_of(entry_path);
        if parent_path.is_empty() {
            return Ok(Some(NodeId::root()));
        }
        if let Some(p) = folders.get(&path::lower(parent_path)) {
            return Ok(Some(p.clone()));
        }
        self.flush_feed(writes).await?;
        Ok(match self.remote_lookup(parent_path, folders).await? {
            Some((p, true)) => Some(p),
            _ => None,
        })
    }

    /// The Remote node at a display path, and whether it is a folder: an exact name first,
    /// then a case-insensitive match, component by component.
    async fn remote_lookup(
        &self,
        display: &str,
        folders: &mut HashMap<String, NodeId>,
    ) -> Result<Option<(NodeId, bool)>, Error> {
        if let Some(id) = folders.get(&path::lower(display)) {
            return Ok(Some((id.clone(), true)));
        }
        let mut current = NodeId::root();
        let mut is_folder = true;
        let mut walked = String::new();
        let parts: Vec<&str> = display.split('/').filter(|n| !n.is_empty()).collect();
        for (i, name) in parts.iter().enumerate() {
            walked.push('/');
            walked.push_str(name);
            if let Some(id) = folders.get(&path::lower(&walked)) {
                current = id.clone();
                is_folder = true;
                continue;
            }
            let rows = self.state.named(Which::Remote, &current, name).await?;
            let found = rows
                .iter()
                .find(|r| r.node.name == *name)
                .or_else(|| rows.first());
            let Some(row) = found else {
                return Ok(None);
            };
            let last = i + 1 == parts.len();
            if !last && !row.node.kind.is_folder() {
                return Ok(None);
            }
            is_folder = row.node.kind.is_folder();
            if is_folder {
                folders.insert(path::lower(&walked), row.id.clone());
            }
            current = row.id.clone();
        }
        Ok(Some((current, is_folder)))
    }
}
