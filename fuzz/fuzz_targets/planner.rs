//! `cubby_core::sync::plan`: the sync planner on trees built from the fuzz input.
//!
//! Two shapes of input:
//! - `Story`: one base tree, synced (or a first sync: the same tree on disk under provisional
//!   ids), then rounds of edits on each side, each round followed by a sync that the engine may
//!   stop after any op (a crash, a shutdown), and finally a sync run to its end. This is the
//!   proptest of `sync/proptests.rs`, plus interrupted syncs and edits between passes, and a
//!   name set with Unicode case folding (final sigma, the Kelvin sign, dotted capital I),
//!   conflicted-copy and aside look-alikes and a 255-character name.
//! - `Wild`: three trees assembled independently from a small pool of ids (the Synced tree
//!   with any parents at all), which no sync produces.
//!
//! Every plan is checked by applying it to a model of the server and the disk that refuses an
//! op that a real engine could not apply (a wrong path, an occupied name, a missing parent) or
//! that breaks a safety rule of ARCHITECTURE.md (a deletion of a node that was never synced,
//! that the other side still has or that this side changed; an overwrite of content that is
//! not the synced one; an update without the rev it replaces; a link of different nodes).
//! Both shapes: nothing panics, plans are deterministic, every op is valid after the ones
//! before it, `Plan::summary` counts the ops. `Story` also: the final sync converges in at
//! most three applying passes to two sides listing the same paths with the same content and
//! ids, with every node recorded in Synced, and no content is lost that the sides did not
//! agree to drop; a first sync of equal trees copies nothing.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::Arbitrary;
use cubby_core::path;
use cubby_core::sync::plan::{self, Op, Plan, Summary, UploadMode};
use cubby_core::sync::tree::{Kind, Node, NodeId, Tree};
use libfuzzer_sys::fuzz_target;

/// Applying passes the planner needs at most (links, transfers and moves; conflicted copies'
/// uploads and commits; their commits), plus the empty plan that ends the sync.
const MAX_PLANS: usize = 4;

/// Names: few, so that collisions are common, with case-folding traps.
const NAMES: &[&str] = &[
    "a",
    "A",
    "b",
    "c.txt",
    "C.TXT",
    "d.txt",
    "Σ", // folds to σ
    "σ",
    "ς",        // final sigma: its own fold
    "\u{212a}", // KELVIN SIGN, folds to k
    "k",
    "\u{130}", // İ, folds to i + COMBINING DOT ABOVE (two characters)
    "i\u{307}",
    "ß",
    "a (conflicted copy)",
    ".cubby-aside-1-a",
    "e",
    "f.tar.gz",
];

/// A 255-character name, the longest a component may be.
fn long_name() -> String {
    format!("{}.txt", "l".repeat(251))
}

fn name(index: u8) -> String {
    let i = index as usize % (NAMES.len() + 1);
    NAMES.get(i).map_or_else(long_name, |n| (*n).to_owned())
}

#[derive(Arbitrary, Debug)]
enum Input {
    Story(Story),
    Wild(Wild),
}

#[derive(Arbitrary, Debug)]
struct Story {
    /// (parent, name, folder) of the base tree's nodes, added in order.
    base: Vec<(u8, u8, bool)>,
    first_sync: bool,
    rounds: Vec<Round>,
}

#[derive(Arbitrary, Debug)]
struct Round {
    remote: Vec<Edit>,
    local: Vec<Edit>,
    /// The sync after this round's edits: `None` runs it to the end, `Some(n)` stops it after
    /// n ops of its first plan.
    stop_after: Option<u8>,
}

/// An edit of one side; targets are indexes into the side's current nodes.
#[derive(Arbitrary, Debug, Clone)]
enum Edit {
    Add {
        parent: u8,
        name: u8,
        folder: bool,
        variant: u8,
    },
    Change {
        node: u8,
        variant: u8,
    },
    Delete {
        node: u8,
    },
    Move {
        node: u8,
        parent: u8,
        name: u8,
    },
    Rename {
        node: u8,
        name: u8,
    },
    MoveFolder {
        node: u8,
        parent: u8,
    },
    CaseFlip {
        node: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct Wild {
    remote: Vec<WildNode>,
    local: Vec<WildNode>,
    synced: Vec<WildNode>,
}

#[derive(Arbitrary, Debug)]
struct WildNode {
    id: u8,
    parent: u8,
    name: u8,
    /// `None` for a folder, else the content's number.
    content: Option<u8>,
    rev: u8,
}

fuzz_target!(|input: Input| match input {
    Input::Story(story) => run_story(&story),
    Input::Wild(wild) => run_wild(&wild),
});

// ---------------------------------------------------------------------------------------------
// Stories.

/// One side's editor: its tree's id minting and name rules.
struct Editor {
    prefix: &'static str,
    remote: bool,
    minted: u32,
}

impl Editor {
    fn nodes(tree: &Tree, folders_only: bool) -> Vec<NodeId> {
        tree.iter()
            .filter(|(_, node)| !folders_only || node.kind.is_folder())
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn pick(tree: &Tree, index: u8, folders_only: bool) -> Option<NodeId> {
        let ids = Self::nodes(tree, folders_only);
        (!ids.is_empty()).then(|| ids[index as usize % ids.len()].clone())
    }

    /// A folder to put something in; choice 0 is the root.
    fn folder(tree: &Tree, index: u8) -> NodeId {
        let mut folders = vec![NodeId::root()];
        folders.extend(Self::nodes(tree, true));
        folders[index as usize % folders.len()].clone()
    }

    /// The server refuses a name that folds to a sibling's; a Linux disk only an equal one.
    fn free(&self, tree: &Tree, parent: &NodeId, name: &str, mover: Option<&NodeId>) -> bool {
        tree.children(parent).all(|child| {
            let other = &tree.get(child).expect("a child").name;
            Some(child) == mover
                || if self.remote {
                    path::lower(other) != path::lower(name)
                } else {
                    other != name
                }
        })
    }

    fn mint(&mut self) -> NodeId {
        self.minted += 1;
        NodeId::new(format!("{}{}", self.prefix, self.minted))
    }

    fn apply(&mut self, tree: &mut Tree, edit: &Edit) {
        match *edit {
            Edit::Add {
                parent,
                name: n,
                folder,
                variant,
            } => {
                let parent = Self::folder(tree, parent);
                let name = name(n);
                if !self.free(tree, &parent, &name, None) {
                    return;
                }
                let id = self.mint();
                let node = if folder {
                    Node::folder(parent, name)
                } else {
                    // Content named after the place: both sides adding a file at one place with
                    // one variant add the same content.
                    let place = format!("{}/{name}", tree.path(&parent).expect("attached"));
                    let mut node = Node::file(
                        parent,
                        name,
                        format!("new{}:{}", path::lower(&place), variant % 2),
                    );
                    if self.remote {
                        node.rev = Some(format!("rev-{id}"));
                    }
                    node
                };
                tree.insert(id, node).expect("a free place in a folder");
            }
            Edit::Change { node, variant } => {
                let Some(id) = Self::pick(tree, node, false) else {
                    return;
                };
                let Some(content) = tree.get(&id).expect("picked").kind.content_hash() else {
                    return;
                };
                // Both sides editing one file with one variant make the same content.
                let stem = content.split('~').next().expect("split").to_owned();
                tree.set_kind(&id, Kind::file(format!("{stem}~{}", variant % 3)))
                    .expect("picked");
                if self.remote {
                    let rev = format!("rev-{}", self.mint());
                    tree.set_rev(&id, Some(rev)).expect("picked");
                }
            }
            Edit::Delete { node } => {
                if let Some(id) = Self::pick(tree, node, false) {
                    tree.remove_subtree(&id);
                }
            }
            Edit::Move {
                node,
                parent,
                name: n,
            } => {
                if let Some(id) = Self::pick(tree, node, false) {
                    let parent = Self::folder(tree, parent);
                    self.move_to(tree, &id, parent, name(n));
                }
            }
            Edit::Rename { node, name: n } => {
                if let Some(id) = Self::pick(tree, node, false) {
                    let parent = tree.get(&id).expect("picked").parent.clone();
                    self.move_to(tree, &id, parent, name(n));
                }
            }
            Edit::MoveFolder { node, parent } => {
                if let Some(id) = Self::pick(tree, node, true) {
                    let parent = Self::folder(tree, parent);
                    let name = tree.get(&id).expect("picked").name.clone();
                    self.move_to(tree, &id, parent, name);
                }
            }
            Edit::CaseFlip { node } => {
                if let Some(id) = Self::pick(tree, node, false) {
                    let current = tree.get(&id).expect("picked");
                    let name = &current.name;
                    let flipped = if name.to_lowercase() == *name {
                        name.to_uppercase()
                    } else {
                        name.to_lowercase()
                    };
                    let parent = current.parent.clone();
                    self.move_to(tree, &id, parent, flipped);
                }
            }
        }
    }

    fn move_to(&self, tree: &mut Tree, id: &NodeId, parent: NodeId, name: String) {
        if tree.is_ancestor_or_self(id, &parent) || !self.free(tree, &parent, &name, Some(id)) {
            return;
        }
        tree.move_node(id, parent, name).expect("checked");
    }
}

fn run_story(story: &Story) {
    // The base: the server's tree at the last sync, every file with distinct content.
    let mut base = Tree::new();
    let mut editor = Editor {
        prefix: "id:b",
        remote: true,
        minted: 0,
    };
    for &(parent, name, folder) in story.base.iter().take(14) {
        editor.apply(
            &mut base,
            &Edit::Add {
                parent,
                name,
                folder,
                variant: 0,
            },
        );
    }
    for id in Editor::nodes(&base, false) {
        if !base.get(&id).expect("listed").kind.is_folder() {
            base.set_kind(&id, Kind::file(format!("base:{id}")))
                .expect("listed");
        }
    }

    let (synced, local) = if story.first_sync {
        // A first sync: the same tree on disk, under provisional ids, nothing synced.
        let mut local = base.clone();
        for id in base.top_down() {
            let new = NodeId::new(format!("local:b{id}"));
            local.rekey(&id, new.clone()).expect("fresh id");
            local.set_rev(&new, None).expect("rekeyed");
        }
        (Tree::new(), local)
    } else {
        let mut local = base.clone();
        for id in base.top_down() {
            local.set_rev(&id, None).expect("listed");
        }
        (base.clone(), local)
    };
    let mut world = World::new(base, local, synced);
    let mut remote_editor = Editor {
        prefix: "id:r",
        remote: true,
        minted: 0,
    };
    let mut local_editor = Editor {
        prefix: "local:",
        remote: false,
        minted: 0,
    };

    let rounds = &story.rounds[..story.rounds.len().min(3)];
    let simple = story.first_sync && rounds.len() <= 1;
    for (i, round) in rounds.iter().enumerate() {
        for edit in round.remote.iter().take(8) {
            remote_editor.apply(&mut world.remote, edit);
        }
        for edit in round.local.iter().take(8) {
            local_editor.apply(&mut world.local, edit);
        }
        let last = i + 1 == rounds.len();
        match round.stop_after {
            Some(n) if !last => {
                let planned = world.plan();
                let stop = n as usize % (planned.ops.len() + 1);
                world.apply_all(&planned.ops[..stop], "an interrupted pass");
            }
            _ => world.sync_to_end(simple),
        }
    }
    if rounds.is_empty() {
        world.sync_to_end(simple);
    }
}

// ---------------------------------------------------------------------------------------------
// Wild trees.

fn run_wild(wild: &Wild) {
    // Server ids are `id:N`; the disk also holds provisional ids `local:N`.
    let server_id = |i: u8| NodeId::new(format!("id:{}", i % 10));
    let any_id = |i: u8| {
        if i % 16 < 10 {
            server_id(i)
        } else {
            NodeId::new(format!("local:{}", i % 16))
        }
    };
    let parent_of = |i: u8, local: bool| {
        if i % 4 == 0 {
            NodeId::root()
        } else if local {
            any_id(i / 4)
        } else {
            server_id(i / 4)
        }
    };
    let node = |w: &WildNode, local: bool| Node {
        parent: parent_of(w.parent, local),
        name: name(w.name),
        kind: match w.content {
            None => Kind::Folder,
            Some(c) => Kind::file(format!("content-{}", c % 6)),
        },
        rev: (!local && w.content.is_some()).then(|| format!("rev-{}", w.rev % 4)),
    };

    let mut remote = Tree::new();
    for w in wild.remote.iter().take(12) {
        let node = node(w, false);
        let taken = remote
            .children_named(&node.parent, &node.name)
            .next()
            .is_some();
        if !taken {
            let _ = remote.insert(server_id(w.id), node);
        }
    }
    let mut local = Tree::new();
    for w in wild.local.iter().take(12) {
        let node = node(w, true);
        let taken = local
            .children(&node.parent)
            .any(|child| local.get(child).expect("a child").name == node.name);
        if !taken {
            let _ = local.insert(any_id(w.id), node);
        }
    }
    // Synced: any nodes, any parents (it may hold a node whose parent is gone, or a cycle).
    let mut synced = Tree::new();
    for w in wild.synced.iter().take(12) {
        let mut node = node(w, false);
        if w.rev & 0x80 != 0 {
            node.rev = None;
        }
        synced.put(server_id(w.id), node);
    }

    let mut world = World::new(remote, local, synced);
    let planned = world.plan();
    world.apply_all(&planned.ops, "the first pass");
}

// ---------------------------------------------------------------------------------------------
// The model engine.

/// The server (Remote), the disk (Local) and the engine's record (Synced).
struct World {
    remote: Tree,
    local: Tree,
    synced: Tree,
    minted: u32,
}

impl World {
    fn new(remote: Tree, local: Tree, synced: Tree) -> World {
        World {
            remote,
            local,
            synced,
            minted: 0,
        }
    }

    fn mint(&mut self, prefix: &str) -> NodeId {
        self.minted += 1;
        NodeId::new(format!("{prefix}{}", self.minted))
    }

    /// Plans, checking determinism and the summary.
    fn plan(&self) -> Plan {
        let planned = plan::plan(&self.remote, &self.local, &self.synced);
        assert_eq!(
            planned,
            plan::plan(&self.remote, &self.local, &self.synced),
            "the planner is not deterministic"
        );
        let mut expected = Summary::default();
        for op in &planned.ops {
            match op {
                Op::DeleteLocal { nodes, .. } => expected.local_deletes += nodes,
                Op::DeleteRemote { nodes, .. } => expected.remote_deletes += nodes,
                Op::Download { .. } => expected.downloads += 1,
                Op::Upload { .. } => expected.uploads += 1,
                Op::KeepBoth { .. } => expected.conflicts += 1,
                _ => {}
            }
        }
        assert_eq!(planned.summary(), expected);
        planned
    }

    fn apply_all(&mut self, ops: &[Op], what: &str) {
        for (i, op) in ops.iter().enumerate() {
            if let Err(why) = self.apply(op) {
                panic!(
                    "{what}: op {i} {op:?} is refused: {why}\nall ops: {ops:#?}\n\
                     remote: {:#?}\nlocal: {:#?}\nsynced: {:#?}",
                    self.remote, self.local, self.synced
                );
            }
        }
    }

    /// Syncs until a plan is empty, then checks the end state.
    fn sync_to_end(&mut self, check_copies: bool) {
        let must_keep = self.must_keep();
        let most_copies = self.most_copies();
        let case_duplicates = has_case_duplicates(&self.local);
        let mut plans = Vec::new();
        loop {
            let planned = self.plan();
            if planned.is_empty() {
                break;
            }
            assert!(
                plans.len() + 1 < MAX_PLANS,
                "no convergence after {} passes; plans: {plans:#?}\nlast: {planned:#?}",
                plans.len()
            );
            self.apply_all(&planned.ops, &format!("pass {}", plans.len()));
            plans.push(planned);
        }

        // Both sides hold the same tree, under the same (server) ids, all of it recorded.
        assert_eq!(
            self.remote.by_path(),
            self.local.by_path(),
            "the sides differ"
        );
        for (id, node) in self.remote.iter() {
            let local = self.local.get(id).expect("every node is linked");
            assert!(local.agrees_with(node));
            assert_eq!(self.synced.get(id), Some(node), "{id} is not recorded");
        }
        assert_eq!(self.remote.len(), self.local.len());
        assert_eq!(
            self.synced.len(),
            self.remote.len(),
            "Synced keeps forgotten nodes"
        );

        let present: BTreeSet<String> = contents(&self.remote).into_values().collect();
        let lost: Vec<&String> = must_keep.difference(&present).collect();
        assert!(lost.is_empty(), "lost content {lost:?}; plans: {plans:#?}");

        // A first sync links equal files instead of copying them (a disk holding `a` and `A`
        // side by side gets one renamed, and its files may then be kept twice).
        if check_copies && !case_duplicates {
            for (content, n) in copies(&self.remote) {
                let most = most_copies.get(&content).copied().unwrap_or(0);
                assert!(
                    n <= most,
                    "{content} is in {n} places, at most {most} before"
                );
            }
        }
    }

    /// Contents that may not disappear: all but the synced version of a node whose other side
    /// deleted or replaced it.
    fn must_keep(&self) -> BTreeSet<String> {
        let mut keep = BTreeSet::new();
        for (tree, other) in [(&self.remote, &self.local), (&self.local, &self.remote)] {
            for (id, content) in contents(tree) {
                let synced_version = self.synced.get(&id).and_then(|n| n.kind.content_hash())
                    == Some(content.as_str());
                let other_kept =
                    other.get(&id).and_then(|n| n.kind.content_hash()) == Some(content.as_str());
                if !synced_version || other_kept {
                    keep.insert(content);
                }
            }
        }
        keep
    }

    /// For each content, the most places one side held it in, or the distinct places both did.
    fn most_copies(&self) -> BTreeMap<String, usize> {
        let mut most: BTreeMap<String, usize> = BTreeMap::new();
        let mut places: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for tree in [&self.remote, &self.local] {
            for (content, n) in copies(tree) {
                let m = most.entry(content).or_default();
                *m = (*m).max(n);
            }
            for (id, content) in contents(tree) {
                let place = path::lower(&tree.path(&id).expect("attached"));
                places.entry(content).or_default().insert(place);
            }
        }
        for (content, places) in places {
            let m = most.entry(content).or_default();
            *m = (*m).max(places.len());
        }
        most
    }

    fn apply(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::Link { local, remote } => {
                let r = self
                    .remote
                    .get(remote)
                    .ok_or("the remote node is unknown")?;
                let l = self.local.get(local).ok_or("the local node is unknown")?;
                if self.local.contains(remote) {
                    return Err("the remote id is already on disk".into());
                }
                if self.synced.contains(local) || self.synced.contains(remote) {
                    return Err("a linked node was synced before".into());
                }
                if r.kind != l.kind
                    || r.parent != l.parent
                    || path::lower(&r.name) != path::lower(&l.name)
                {
                    return Err("linked nodes differ in place or content".into());
                }
                self.local.rekey(local, remote.clone()).map_err(text)
            }
            Op::CommitSynced { id, node } => {
                let remote = self.remote.get(id).ok_or("not on the remote")?;
                let local = self.local.get(id).ok_or("not local")?;
                if remote != node || !local.agrees_with(node) {
                    return Err("the sides do not agree on this node".into());
                }
                self.synced.put(id.clone(), node.clone());
                Ok(())
            }
            Op::ForgetSynced { id } => {
                if self.remote.contains(id) || self.local.contains(id) {
                    return Err("a side still has the node".into());
                }
                self.synced
                    .forget(id)
                    .map(drop)
                    .ok_or_else(|| "not synced".into())
            }
            Op::KeepBoth { id, from, to } => {
                at(&self.local, id, from)?;
                if path::parent_of(from) != path::parent_of(to) {
                    return Err("a conflicted copy leaves its folder".into());
                }
                let node = self.local.get(id).expect("checked").clone();
                free(&self.local, &node.parent, path::name_of(to), Some(id))?;
                self.local
                    .move_node(id, node.parent.clone(), path::name_of(to))
                    .map_err(text)?;
                let copy = self.mint("local:copy");
                self.local.rekey(id, copy).map_err(text)
            }
            Op::CreateLocalFolder { id, path } => {
                if self.local.contains(id) {
                    return Err("the id is on disk already".into());
                }
                let parent = place(&self.local, path)?;
                self.local
                    .insert(id.clone(), Node::folder(parent, path::name_of(path)))
                    .map_err(text)
            }
            Op::Download {
                id,
                path,
                content_hash,
                rev,
            } => {
                let remote = self.remote.get(id).ok_or("not on the remote")?;
                if remote.kind.content_hash() != Some(content_hash.as_str()) || &remote.rev != rev {
                    return Err("the remote holds other content".into());
                }
                match self.local.get(id) {
                    Some(local) => {
                        at(&self.local, id, path)?;
                        if local.kind.is_folder() {
                            return Err("a download over a folder".into());
                        }
                        if self.synced.get(id).map(|n| &n.kind) != Some(&local.kind) {
                            return Err("overwrites local content that was never synced".into());
                        }
                        self.local
                            .set_kind(id, Kind::file(content_hash))
                            .map_err(text)
                    }
                    None => {
                        let parent = place(&self.local, path)?;
                        self.local
                            .insert(
                                id.clone(),
                                Node::file(parent, path::name_of(path), content_hash),
                            )
                            .map_err(text)
                    }
                }
            }
            Op::Upload {
                id,
                path,
                content_hash,
                mode,
            } => {
                let local = self.local.get(id).ok_or("not local")?;
                if local.kind.content_hash() != Some(content_hash.as_str()) {
                    return Err("the local file holds other content".into());
                }
                let rev = Some(format!("rev-{}", self.mint("u")));
                match mode {
                    UploadMode::Update { rev: expected } => {
                        at(&self.remote, id, path)?;
                        let remote = self.remote.get(id).expect("checked");
                        if remote.kind.is_folder() {
                            return Err("an upload over a folder".into());
                        }
                        if &remote.rev != expected {
                            return Err("the remote rev moved on".into());
                        }
                        if self.synced.get(id).map(|n| &n.kind) != Some(&remote.kind) {
                            return Err("overwrites remote content that was never synced".into());
                        }
                        self.remote
                            .set_kind(id, Kind::file(content_hash))
                            .map_err(text)?;
                        self.remote.set_rev(id, rev).map_err(text)
                    }
                    UploadMode::Add => {
                        if self.remote.contains(id) {
                            return Err("an add of a node the server has".into());
                        }
                        let parent = place(&self.remote, path)?;
                        let new_id = self.mint("id:s");
                        let mut node = Node::file(parent, path::name_of(path), content_hash);
                        node.rev = rev;
                        self.remote.insert(new_id.clone(), node).map_err(text)?;
                        self.local.rekey(id, new_id).map_err(text)
                    }
                }
            }
            Op::CreateRemoteFolder { id, path } => {
                if !self.local.get(id).is_some_and(|n| n.kind.is_folder()) {
                    return Err("no such local folder".into());
                }
                if self.remote.contains(id) {
                    return Err("the server has the folder already".into());
                }
                let parent = place(&self.remote, path)?;
                let new_id = self.mint("id:s");
                self.remote
                    .insert(new_id.clone(), Node::folder(parent, path::name_of(path)))
                    .map_err(text)?;
                self.local.rekey(id, new_id).map_err(text)
            }
            Op::MoveLocal { id, from, to } => move_in(&mut self.local, id, from, to),
            Op::MoveRemote { id, from, to } => move_in(&mut self.remote, id, from, to),
            Op::DeleteLocal { id, path, nodes } => self.delete(true, id, path, *nodes),
            Op::DeleteRemote { id, path, nodes } => self.delete(false, id, path, *nodes),
        }?;
        // The server never holds two names that fold together in one folder, nor an invalid path.
        if let Some(path) = remote_path(op) {
            let parsed = path::parse(path, path::Pattern::WritePath);
            if parsed.is_err() {
                return Err(format!("the server refuses the path {path:?}: {parsed:?}"));
            }
        }
        Ok(())
    }

    fn delete(&mut self, local: bool, id: &NodeId, path: &str, nodes: usize) -> Result<(), String> {
        let (tree, other) = if local {
            (&mut self.local, &self.remote)
        } else {
            (&mut self.remote, &self.local)
        };
        at(tree, id, path)?;
        let subtree = tree.subtree(id);
        if subtree.len() != nodes {
            return Err(format!("removes {} nodes, not {nodes}", subtree.len()));
        }
        for member in &subtree {
            let Some(synced) = self.synced.get(member) else {
                return Err(format!("{member} was never synced"));
            };
            if other.contains(member) {
                return Err(format!("{member} is still on the other side"));
            }
            if synced.kind != tree.get(member).expect("in the subtree").kind {
                return Err(format!("{member} changed since it was synced"));
            }
        }
        tree.remove_subtree(id);
        Ok(())
    }
}

/// The path an op names on the server, if it names one.
fn remote_path(op: &Op) -> Option<&str> {
    match op {
        Op::CreateRemoteFolder { path, .. } | Op::Upload { path, .. } => Some(path),
        Op::MoveRemote { to, .. } => Some(to),
        _ => None,
    }
}

fn text(error: impl std::fmt::Display) -> String {
    error.to_string()
}

/// Checks that `id` is at `display` exactly.
fn at(tree: &Tree, id: &NodeId, display: &str) -> Result<(), String> {
    match tree.path(id) {
        Some(actual) if actual == display => Ok(()),
        actual => Err(format!("{id} is at {actual:?}, not {display:?}")),
    }
}

/// The folder at an exact display path.
fn folder_at(tree: &Tree, display: &str) -> Result<NodeId, String> {
    let mut current = NodeId::root();
    for name in display.split('/').skip(1) {
        let found = tree
            .children(&current)
            .find(|child| tree.get(child).expect("a child").name == name)
            .cloned();
        current = found.ok_or_else(|| format!("no folder at {display:?}"))?;
    }
    if tree.is_folder(&current) {
        Ok(current)
    } else {
        Err(format!("{display:?} is a file"))
    }
}

/// Refuses a name that folds to a sibling's: the server's rule, and a case-insensitive disk's.
fn free(tree: &Tree, parent: &NodeId, name: &str, mover: Option<&NodeId>) -> Result<(), String> {
    match tree
        .children_named(parent, name)
        .find(|c| Some(*c) != mover)
    {
        Some(other) => Err(format!("{name:?} is taken by {other}")),
        None => Ok(()),
    }
}

/// The parent folder of a new node at `display`, whose name must be free.
fn place(tree: &Tree, display: &str) -> Result<NodeId, String> {
    let parent = folder_at(tree, path::parent_of(display))?;
    free(tree, &parent, path::name_of(display), None)?;
    Ok(parent)
}

fn move_in(tree: &mut Tree, id: &NodeId, from: &str, to: &str) -> Result<(), String> {
    at(tree, id, from)?;
    let parent = folder_at(tree, path::parent_of(to))?;
    free(tree, &parent, path::name_of(to), Some(id))?;
    tree.move_node(id, parent, path::name_of(to)).map_err(text)
}

/// File contents by id.
fn contents(tree: &Tree) -> BTreeMap<NodeId, String> {
    tree.iter()
        .filter_map(|(id, node)| Some((id.clone(), node.kind.content_hash()?.to_owned())))
        .collect()
}

fn copies(tree: &Tree) -> BTreeMap<String, usize> {
    let mut n: BTreeMap<String, usize> = BTreeMap::new();
    for content in contents(tree).into_values() {
        *n.entry(content).or_default() += 1;
    }
    n
}

fn has_case_duplicates(tree: &Tree) -> bool {
    let mut seen = BTreeSet::new();
    tree.iter()
        .any(|(_, node)| !seen.insert((node.parent.clone(), path::lower(&node.name))))
}
