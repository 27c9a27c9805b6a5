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
//! Every plan is checked by applying it to the model of the server and the disk that the
//! planner's tests use (`cubby_core::sync::model`, the `model` feature), which refuses an op that a real engine could not apply (a wrong path, an occupied name, a missing parent) or
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
use cubby_core::sync::model::World;
use cubby_core::sync::plan::{self, Op, Plan, Summary};
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
    // A server id names one item for good, so it is a folder in every tree or a file in every
    // tree (ids 0 to 3 are folders); a provisional id is whatever the disk holds.
    let node = |w: &WildNode, id: &NodeId, local: bool| {
        let folder = match id.as_str().strip_prefix("id:") {
            Some(n) => n.parse::<u8>().is_ok_and(|n| n < 4),
            None => w.content.is_none(),
        };
        Node {
            parent: parent_of(w.parent, local),
            name: name(w.name),
            kind: if folder {
                Kind::Folder
            } else {
                Kind::file(format!("content-{}", w.content.unwrap_or(0) % 6))
            },
            rev: (!local && !folder).then(|| format!("rev-{}", w.rev % 4)),
        }
    };

    let mut remote = Tree::new();
    for w in wild.remote.iter().take(12) {
        let node = node(w, &server_id(w.id), false);
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
        let node = node(w, &any_id(w.id), true);
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
        let mut node = node(w, &server_id(w.id), false);
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

/// The checks a fuzz run makes on top of the model engine (`cubby_core::sync::model`, which
/// refuses any op a real engine could not apply or a safety rule forbids).
trait Checked {
    fn plan(&self) -> Plan;
    fn apply_all(&mut self, ops: &[Op], what: &str);
    fn sync_to_end(&mut self, check_copies: bool);
    fn must_keep(&self) -> BTreeSet<String>;
    fn most_copies(&self) -> BTreeMap<String, usize>;
}

impl Checked for World {
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
