//! The sync planner: a pure function of the Remote, Local and Synced trees that returns the
//! operations bringing both sides to one merged tree.
//!
//! The planner works in four steps.
//! 1. **Link.** Nodes new on both sides (neither in Synced) at the same place with the same kind
//!    and content are the same node: the local one takes the remote id (`Op::Link`), top-down,
//!    so a first sync of two equal trees merges without copying anything.
//! 2. **Merge.** Each id is compared three-way with Synced: a change on one side wins, equal
//!    changes agree, and differing changes resolve to the remote's place and content, with the
//!    local content kept as a conflicted copy (`Op::KeepBoth`). A node deleted on one side is
//!    deleted on the other only if that side left it unchanged since Synced; an edit beats a
//!    deletion.
//! 3. **Settle.** Folders holding survivors are kept (a deleted folder comes back for them),
//!    move cycles are broken by taking the remote's place, and names that collide
//!    case-insensitively in a folder are resolved with conflicted-copy names.
//! 4. **Realize.** Each side's tree is walked from the root of the merged tree and gets the
//!    creates, transfers, moves and deletions that make it equal to the merged tree, in an order
//!    that is valid when applied one after the other.
//!
//! Bookkeeping (`Op::CommitSynced`, `Op::ForgetSynced`) records what both sides already agree on;
//! the engine applies the ops, observes both sides again and plans again until the plan is empty.
//! This module does no I/O and never fails: any three trees give a plan.

use std::collections::{BTreeMap, BTreeSet};

use crate::naming;
use crate::path;
use crate::sync::tree::{Kind, Node, NodeId, Tree};

/// One step for the engine; steps are applied in the order of `Plan::ops`.
///
/// Paths are display paths relative to the synced folder (`/a/b.txt`), valid at the moment the
/// op is applied after the ops before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// The local node `local` is the remote node `remote`: the engine re-keys its local record.
    Link {
        local: NodeId,
        remote: NodeId,
    },
    /// Records a node both sides agree on as synced (the remote's node, with its rev).
    CommitSynced {
        id: NodeId,
        node: Node,
    },
    /// Drops a node that neither side has any more from the Synced tree.
    ForgetSynced {
        id: NodeId,
    },
    /// Renames the local version of a conflicting file aside as a conflicted copy; the engine
    /// gives it a new provisional id, so it becomes a new local file that the next plan uploads.
    KeepBoth {
        id: NodeId,
        from: String,
        to: String,
    },
    CreateLocalFolder {
        id: NodeId,
        path: String,
    },
    /// Writes the remote content of `id` to `path`, creating the file or replacing its content.
    Download {
        id: NodeId,
        path: String,
        content_hash: String,
        rev: Option<String>,
    },
    MoveLocal {
        id: NodeId,
        from: String,
        to: String,
    },
    /// Moves the local node and its subtree to the trash; `nodes` counts what it removes.
    DeleteLocal {
        id: NodeId,
        path: String,
        nodes: usize,
    },
    /// Creates a remote folder for a local one; the server's new id replaces `id` locally.
    CreateRemoteFolder {
        id: NodeId,
        path: String,
    },
    /// Uploads the local content of `id` to `path`.
    Upload {
        id: NodeId,
        path: String,
        content_hash: String,
        mode: UploadMode,
    },
    MoveRemote {
        id: NodeId,
        from: String,
        to: String,
    },
    /// Deletes the remote node and its subtree; `nodes` counts what it removes.
    DeleteRemote {
        id: NodeId,
        path: String,
        nodes: usize,
    },
}

/// How an upload commits on the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UploadMode {
    /// A new file: the server assigns an id, which replaces the local id.
    Add,
    /// A new version of an existing file, only if the server still has `rev` (never a blind
    /// overwrite).
    Update { rev: Option<String> },
}

/// The ops of one planning pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub ops: Vec<Op>,
}

/// Counts a caller needs before applying a plan, for example to pause on a mass deletion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Nodes the plan removes locally, subtrees included.
    pub local_deletes: usize,
    /// Nodes the plan removes on the server, subtrees included.
    pub remote_deletes: usize,
    pub downloads: usize,
    pub uploads: usize,
    /// Local versions renamed aside as conflicted copies.
    pub conflicts: usize,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn summary(&self) -> Summary {
        Summary::of(&self.ops)
    }
}

impl Summary {
    /// The counts of any list of ops (a plan, or what is left of one after filtering).
    pub fn of(ops: &[Op]) -> Summary {
        let mut summary = Summary::default();
        for op in ops {
            match op {
                Op::DeleteLocal { nodes, .. } => summary.local_deletes += nodes,
                Op::DeleteRemote { nodes, .. } => summary.remote_deletes += nodes,
                Op::Download { .. } => summary.downloads += 1,
                Op::Upload { .. } => summary.uploads += 1,
                Op::KeepBoth { .. } => summary.conflicts += 1,
                _ => {}
            }
        }
        summary
    }
}

/// Plans one pass of sync from the three trees.
///
/// `local` may hold provisional ids for nodes never uploaded; `synced` holds server ids only.
/// The result is deterministic: the same trees always give the same ops.
pub fn plan(remote: &Tree, local: &Tree, synced: &Tree) -> Plan {
    let mut ops = Vec::new();

    let links = find_links(remote, local, synced);
    // A copy of the Local tree only when links re-key it (a tree can be large).
    let mut local = std::borrow::Cow::Borrowed(local);
    for (local_id, remote_id) in links {
        if local.to_mut().rekey(&local_id, remote_id.clone()).is_ok() {
            ops.push(Op::Link {
                local: local_id,
                remote: remote_id,
            });
        }
    }
    let local: &Tree = &local;

    let mut merge = Merge::compute(remote, local, synced);
    merge.settle(remote);
    merge.resolve_collisions(remote, synced);

    bookkeeping(remote, local, synced, &mut ops);
    let order = merge.top_down();
    let names = merge.names_by_parent();
    let context = Context {
        merge: &merge,
        order: &order,
        names: &names,
        remote,
    };
    realize(&context, Side::Local, local, &mut ops);
    realize(&context, Side::Remote, remote, &mut ops);
    Plan { ops }
}

/// The temporary name a node gets when it must leave its place before the node that takes the
/// place arrives (a swap of two names); a later op moves it on to its own place.
pub fn aside_name(name: &str, n: u32) -> String {
    let prefix = format!(".cubby-aside-{n}-");
    // Within the longest name a path may hold; a cut name must not end in whitespace.
    let room = path::MAX_COMPONENT_CHARS - prefix.chars().count();
    let kept: String = name.chars().take(room).collect();
    format!("{prefix}{}", kept.trim_end())
}

/// Pairs local-only nodes with remote-only nodes at the same place with the same kind and
/// content, parents before children, in the order the links must be applied.
///
/// In each folder, exact names are paired first and case-insensitive ones after, so that a
/// local `A` beside a local `a` never takes the remote `a` from it.
fn find_links(remote: &Tree, local: &Tree, synced: &Tree) -> Vec<(NodeId, NodeId)> {
    let mut remote_of: BTreeMap<NodeId, NodeId> = BTreeMap::new();
    let mut linked_remotes: BTreeSet<NodeId> = BTreeSet::new();
    let mut links = Vec::new();
    let mut folders = vec![NodeId::root()];
    let mut next = 0;
    while next < folders.len() {
        let folder = folders[next].clone();
        next += 1;
        folders.extend(
            local
                .children(&folder)
                .filter(|child| local.is_folder(child))
                .cloned(),
        );
        let remote_folder = remote_of.get(&folder).cloned().unwrap_or(folder.clone());
        if !remote.is_folder(&remote_folder) {
            continue;
        }
        let unknown: Vec<NodeId> = local
            .children(&folder)
            .filter(|child| !synced.contains(child) && !remote.contains(child))
            .cloned()
            .collect();
        for exact in [true, false] {
            for local_id in &unknown {
                if remote_of.contains_key(local_id) {
                    continue;
                }
                let node = local.get(local_id).expect("a child of the tree");
                let found = remote
                    .children_named(&remote_folder, &node.name)
                    .find(|candidate| {
                        let candidate_node = remote.get(candidate).expect("a child of the tree");
                        candidate_node.kind == node.kind
                            && (!exact || candidate_node.name == node.name)
                            && !synced.contains(candidate)
                            && !local.contains(candidate)
                            && !linked_remotes.contains(*candidate)
                    })
                    .cloned();
                if let Some(remote_id) = found {
                    remote_of.insert(local_id.clone(), remote_id.clone());
                    linked_remotes.insert(remote_id.clone());
                    links.push((local_id.clone(), remote_id));
                }
            }
        }
    }
    links
}

/// Emits `CommitSynced` for nodes both sides agree on but Synced does not, and `ForgetSynced`
/// for synced nodes that both sides have dropped.
fn bookkeeping(remote: &Tree, local: &Tree, synced: &Tree, ops: &mut Vec<Op>) {
    for (id, remote_node) in remote.iter() {
        let Some(local_node) = local.get(id) else {
            continue;
        };
        if !remote_node.agrees_with(local_node) {
            continue;
        }
        let recorded = synced
            .get(id)
            .is_some_and(|synced_node| synced_node == remote_node);
        if !recorded {
            ops.push(Op::CommitSynced {
                id: id.clone(),
                node: remote_node.clone(),
            });
        }
    }
    for (id, _) in synced.iter() {
        if !remote.contains(id) && !local.contains(id) {
            ops.push(Op::ForgetSynced { id: id.clone() });
        }
    }
}

/// The target tree both sides should reach, being settled.
struct Merge {
    /// The surviving nodes with their merged place and kind (revs are not kept here).
    nodes: BTreeMap<NodeId, Node>,
    /// Nodes whose merged place comes from the local side and differs from the remote's.
    local_placed: BTreeSet<NodeId>,
    /// Nodes deleted on one side and unchanged on the other, with the surviving side's node and
    /// whether that side is local: they come back only if a survivor needs them as a parent.
    dormant: BTreeMap<NodeId, (Node, bool)>,
    /// Nodes whose local version conflicts with the remote one and is kept as a conflicted copy.
    split: BTreeSet<NodeId>,
}

impl Merge {
    fn compute(remote: &Tree, local: &Tree, synced: &Tree) -> Merge {
        let mut merge = Merge {
            nodes: BTreeMap::new(),
            local_placed: BTreeSet::new(),
            dormant: BTreeMap::new(),
            split: BTreeSet::new(),
        };
        let ids: BTreeSet<&NodeId> = remote
            .iter()
            .map(|(id, _)| id)
            .chain(local.iter().map(|(id, _)| id))
            .collect();
        for id in ids {
            let base = synced.get(id);
            match (remote.get(id), local.get(id)) {
                (Some(remote_node), Some(local_node)) => {
                    merge.merge_both(id, remote_node, local_node, base);
                }
                (Some(remote_node), None) => {
                    merge.merge_one_side(id, remote_node, base, false);
                }
                (None, Some(local_node)) => {
                    merge.merge_one_side(id, local_node, base, true);
                }
                (None, None) => {}
            }
        }
        merge
    }

    /// A node both sides have: place and content are merged separately against the base.
    fn merge_both(&mut self, id: &NodeId, remote: &Node, local: &Node, base: Option<&Node>) {
        let local_moved_alone = !remote.same_place(local)
            && base.is_some_and(|base| remote.same_place(base) && !local.same_place(base));
        let place = if local_moved_alone { local } else { remote };

        let kind = if remote.kind == local.kind {
            remote.kind.clone()
        } else if base.is_some_and(|base| base.kind == remote.kind)
            && !remote.kind.is_folder()
            && !local.kind.is_folder()
        {
            // Only the local content changed: it wins.
            local.kind.clone()
        } else {
            if base.is_none_or(|base| base.kind != local.kind) {
                // Both changed differently (or a kind change): keep the remote version in place
                // and the local one as a conflicted copy.
                self.split.insert(id.clone());
            }
            remote.kind.clone()
        };

        if local_moved_alone {
            self.local_placed.insert(id.clone());
        }
        self.nodes.insert(
            id.clone(),
            Node {
                parent: place.parent.clone(),
                name: place.name.clone(),
                kind,
                rev: None,
            },
        );
    }

    /// A node only one side has: new there, or deleted on the other side.
    fn merge_one_side(&mut self, id: &NodeId, node: &Node, base: Option<&Node>, is_local: bool) {
        let kept = match base {
            // Never synced: only this side has ever had it.
            None => true,
            // Deleted on the other side: an edit since Synced beats the deletion.
            Some(base) => base.kind != node.kind,
        };
        let merged = Node {
            rev: None,
            ..node.clone()
        };
        if kept {
            if is_local {
                self.local_placed.insert(id.clone());
            }
            self.nodes.insert(id.clone(), merged);
        } else {
            self.dormant.insert(id.clone(), (merged, is_local));
        }
    }

    /// Brings back deleted folders that hold survivors and breaks move cycles, until neither
    /// changes anything.
    fn settle(&mut self, remote: &Tree) {
        // Each round resurrects a dormant node or takes a remote place for a local one; both sets
        // are finite, so this bound is never reached in practice.
        let max_rounds = self.nodes.len() + self.dormant.len() + 2;
        for _ in 0..max_rounds {
            let resurrected = self.resurrect_parents();
            let broken = self.break_cycles(remote);
            if !resurrected && !broken {
                break;
            }
        }
    }

    fn resurrect_parents(&mut self) -> bool {
        let mut changed = false;
        let mut pending: Vec<NodeId> = self.nodes.keys().cloned().collect();
        while let Some(id) = pending.pop() {
            let parent = self.nodes[&id].parent.clone();
            if parent.is_root() {
                continue;
            }
            if let Some(parent_node) = self.nodes.get(&parent) {
                if !parent_node.kind.is_folder() {
                    // A file cannot hold a child; the child goes to the top level instead.
                    self.nodes.get_mut(&id).expect("pending").parent = NodeId::root();
                    changed = true;
                }
                continue;
            }
            match self.dormant.remove(&parent) {
                Some((parent_node, from_local)) => {
                    if from_local {
                        self.local_placed.insert(parent.clone());
                    }
                    self.nodes.insert(parent.clone(), parent_node);
                    pending.push(parent);
                }
                None => {
                    // The parent is known nowhere, which consistent trees never produce.
                    self.nodes.get_mut(&id).expect("pending").parent = NodeId::root();
                }
            }
            changed = true;
        }
        changed
    }

    fn break_cycles(&mut self, remote: &Tree) -> bool {
        let cycles = find_cycles(&self.nodes);
        for cycle in &cycles {
            let mut switched = false;
            for id in cycle {
                if !self.local_placed.contains(id) {
                    continue;
                }
                if let Some(remote_node) = remote.get(id) {
                    let node = self.nodes.get_mut(id).expect("a cycle member");
                    node.parent = remote_node.parent.clone();
                    node.name = remote_node.name.clone();
                    self.local_placed.remove(id);
                    switched = true;
                }
            }
            if !switched {
                // No member has a remote place to fall back on; the top level always works.
                let node = self.nodes.get_mut(&cycle[0]).expect("a cycle member");
                node.parent = NodeId::root();
            }
        }
        !cycles.is_empty()
    }

    /// Renames all but one of the nodes whose names fold to the same key in one folder.
    ///
    /// The node that holds the name on the server keeps it; otherwise the one that held it when
    /// last synced; otherwise the smallest id.
    fn resolve_collisions(&mut self, remote: &Tree, synced: &Tree) {
        let mut groups: BTreeMap<(NodeId, String), Vec<NodeId>> = BTreeMap::new();
        for (id, node) in &self.nodes {
            groups
                .entry((node.parent.clone(), path::lower(&node.name)))
                .or_default()
                .push(id.clone());
        }
        let mut taken: BTreeMap<NodeId, BTreeSet<String>> = BTreeMap::new();
        for (parent, folded) in groups.keys() {
            taken
                .entry(parent.clone())
                .or_default()
                .insert(folded.clone());
        }
        for ((parent, folded), mut ids) in groups {
            if ids.len() < 2 {
                continue;
            }
            let holds = |tree: &Tree, id: &NodeId| {
                tree.get(id)
                    .is_some_and(|node| node.parent == parent && path::lower(&node.name) == folded)
            };
            ids.sort_by_key(|id| (!holds(remote, id), !holds(synced, id), id.clone()));
            let names = taken.entry(parent.clone()).or_default();
            for loser in &ids[1..] {
                let node = self.nodes.get_mut(loser).expect("grouped from nodes");
                let name = free_name(&node.name, names, naming::conflicted_copy);
                names.insert(path::lower(&name));
                node.name = name;
            }
        }
    }

    /// Merged nodes, parents before children.
    fn top_down(&self) -> Vec<NodeId> {
        let mut children: BTreeMap<&NodeId, Vec<&NodeId>> = BTreeMap::new();
        for (id, node) in &self.nodes {
            children.entry(&node.parent).or_default().push(id);
        }
        let root = NodeId::root();
        let mut order = Vec::with_capacity(self.nodes.len());
        let mut queue: Vec<&NodeId> = vec![&root];
        let mut next = 0;
        while next < queue.len() {
            let id = queue[next];
            next += 1;
            if let Some(kids) = children.get(id) {
                for kid in kids {
                    order.push((*kid).clone());
                    queue.push(kid);
                }
            }
        }
        order
    }

    /// The folded names of each merged folder's children.
    fn names_by_parent(&self) -> BTreeMap<NodeId, BTreeSet<String>> {
        let mut names: BTreeMap<NodeId, BTreeSet<String>> = BTreeMap::new();
        for node in self.nodes.values() {
            names
                .entry(node.parent.clone())
                .or_default()
                .insert(path::lower(&node.name));
        }
        names
    }
}

/// The cycles of a parent map, each as its members in walk order.
fn find_cycles(nodes: &BTreeMap<NodeId, Node>) -> Vec<Vec<NodeId>> {
    const ON_WALK: u8 = 1;
    const DONE: u8 = 2;
    let mut state: BTreeMap<&NodeId, u8> = BTreeMap::new();
    let mut cycles = Vec::new();
    for start in nodes.keys() {
        let mut walk: Vec<&NodeId> = Vec::new();
        let mut current = start;
        loop {
            match state.get(current) {
                Some(&DONE) => break,
                Some(_) => {
                    let at = walk
                        .iter()
                        .position(|id| *id == current)
                        .expect("on the current walk");
                    cycles.push(walk[at..].iter().map(|id| (*id).clone()).collect());
                    break;
                }
                None => {}
            }
            let Some(node) = nodes.get(current) else {
                break;
            };
            state.insert(current, ON_WALK);
            walk.push(current);
            current = &node.parent;
        }
        for id in walk {
            state.insert(id, DONE);
        }
    }
    cycles
}

/// The first of `candidate(name, 1)`, `candidate(name, 2)`, … whose folded form is not taken.
fn free_name(name: &str, taken: &BTreeSet<String>, candidate: fn(&str, u32) -> String) -> String {
    let mut n = 1;
    loop {
        let name = candidate(name, n);
        if !taken.contains(&path::lower(&name)) {
            return name;
        }
        n += 1;
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Local,
    Remote,
}

/// What both sides' realization reads.
struct Context<'a> {
    merge: &'a Merge,
    order: &'a [NodeId],
    names: &'a BTreeMap<NodeId, BTreeSet<String>>,
    remote: &'a Tree,
}

/// Turns one side's tree into the merged tree, appending the ops to `ops`.
///
/// The planner applies each op to a copy of the side's tree as it emits it, so every op is valid
/// after the ones before it; an op that would not be valid is left to the next pass.
fn realize(context: &Context<'_>, side: Side, start: &Tree, ops: &mut Vec<Op>) {
    let merge = context.merge;
    let mut side_tree = Realizer {
        context,
        side,
        tree: start.clone(),
        placeholders: BTreeSet::new(),
        ops,
    };

    if side == Side::Local {
        for id in &merge.split {
            side_tree.keep_both(id);
        }
    }

    for id in context.order {
        let target = &merge.nodes[id];
        if !side_tree.tree.is_folder(&target.parent) {
            // The parent could not be placed on this side in this pass.
            continue;
        }
        let current = side_tree
            .tree
            .get(id)
            .map(|current| (current.same_place(target), current.kind == target.kind));
        match current {
            Some((same_place, same_kind)) => {
                if !same_place {
                    side_tree.move_to(id, target);
                }
                if !same_kind {
                    side_tree.transfer(id, target);
                }
            }
            None => side_tree.create(id, target),
        }
    }

    // Deletions last, topmost first, so that survivors have been moved out of doomed folders.
    for id in start.top_down() {
        if merge.nodes.contains_key(&id) || !side_tree.tree.contains(&id) {
            continue;
        }
        let subtree = side_tree.tree.subtree(&id);
        let all_doomed = subtree.iter().all(|member| {
            !merge.nodes.contains_key(member) && !side_tree.placeholders.contains(member)
        });
        if all_doomed {
            side_tree.delete(&id);
        }
    }
}

/// One side's tree while its ops are being planned.
struct Realizer<'a, 'o> {
    context: &'a Context<'a>,
    side: Side,
    tree: Tree,
    /// Stand-ins for conflicted copies made in this pass, whose real ids only the engine learns.
    placeholders: BTreeSet<NodeId>,
    ops: &'o mut Vec<Op>,
}

impl Realizer<'_, '_> {
    fn path(&self, id: &NodeId) -> String {
        self.tree.path(id).unwrap_or_default()
    }

    /// Renames the local version of a conflicting file aside; it stays beside where it was.
    fn keep_both(&mut self, id: &NodeId) {
        let Some(node) = self.tree.get(id).cloned() else {
            return;
        };
        let mut taken = self
            .context
            .names
            .get(&node.parent)
            .cloned()
            .unwrap_or_default();
        for tree in [&self.tree, self.context.remote] {
            for child in tree.children(&node.parent) {
                taken.insert(path::lower(&tree.get(child).expect("a child").name));
            }
        }
        let name = free_name(&node.name, &taken, naming::conflicted_copy);
        let from = self.path(id);
        let placeholder = NodeId::new(format!("{id}\u{0}conflicted copy"));
        if self.tree.rekey(id, placeholder.clone()).is_err()
            || self
                .tree
                .move_node(&placeholder, node.parent.clone(), name)
                .is_err()
        {
            return;
        }
        self.placeholders.insert(placeholder.clone());
        let to = self.path(&placeholder);
        self.ops.push(Op::KeepBoth {
            id: id.clone(),
            from,
            to,
        });
    }

    fn move_to(&mut self, id: &NodeId, target: &Node) {
        if self.tree.is_ancestor_or_self(id, &target.parent) {
            // The target folder is still inside this node; a later pass moves it.
            return;
        }
        if !self.clear_place(&target.parent, &target.name, Some(id)) {
            return;
        }
        let from = self.path(id);
        if self
            .tree
            .move_node(id, target.parent.clone(), target.name.clone())
            .is_err()
        {
            return;
        }
        let to = self.path(id);
        let id = id.clone();
        self.ops.push(match self.side {
            Side::Local => Op::MoveLocal { id, from, to },
            Side::Remote => Op::MoveRemote { id, from, to },
        });
    }

    fn create(&mut self, id: &NodeId, target: &Node) {
        if !self.clear_place(&target.parent, &target.name, None) {
            return;
        }
        let node = Node {
            rev: None,
            ..target.clone()
        };
        if self.tree.insert(id.clone(), node).is_err() {
            return;
        }
        match &target.kind {
            Kind::Folder => {
                let path = self.path(id);
                let id = id.clone();
                self.ops.push(match self.side {
                    Side::Local => Op::CreateLocalFolder { id, path },
                    Side::Remote => Op::CreateRemoteFolder { id, path },
                });
            }
            Kind::File { .. } => self.push_transfer(id, target),
        }
    }

    /// Brings a node's content to the merged one.
    fn transfer(&mut self, id: &NodeId, target: &Node) {
        if target.kind.is_folder() || self.tree.set_kind(id, target.kind.clone()).is_err() {
            // A folder never replaces a file in place; the conflicted-copy split handles it.
            return;
        }
        self.push_transfer(id, target);
    }

    fn push_transfer(&mut self, id: &NodeId, target: &Node) {
        let Some(content_hash) = target.kind.content_hash() else {
            return;
        };
        let content_hash = content_hash.to_owned();
        let path = self.path(id);
        let remote_node = self.context.remote.get(id);
        let id = id.clone();
        self.ops.push(match self.side {
            Side::Local => Op::Download {
                id,
                path,
                content_hash,
                rev: remote_node.and_then(|node| node.rev.clone()),
            },
            Side::Remote => Op::Upload {
                id,
                path,
                content_hash,
                mode: match remote_node {
                    Some(node) => UploadMode::Update {
                        rev: node.rev.clone(),
                    },
                    None => UploadMode::Add,
                },
            },
        });
    }

    /// Moves aside every other node whose name folds to `name` in `parent`, so that `mover` (or
    /// a new node) can take the place; returns false if the place cannot be cleared.
    ///
    /// A node in the way is never at its merged place (merged names do not collide), so it either
    /// moves on later in this pass or is deleted.
    fn clear_place(&mut self, parent: &NodeId, name: &str, mover: Option<&NodeId>) -> bool {
        let blockers: Vec<NodeId> = self
            .tree
            .children_named(parent, name)
            .filter(|child| Some(*child) != mover)
            .cloned()
            .collect();
        for blocker in blockers {
            if self.placeholders.contains(&blocker) {
                return false;
            }
            if self.move_directly(&blocker) {
                continue;
            }
            let mut taken = self.context.names.get(parent).cloned().unwrap_or_default();
            for child in self.tree.children(parent) {
                taken.insert(path::lower(&self.tree.get(child).expect("a child").name));
            }
            let current_name = self.tree.get(&blocker).expect("a child").name.clone();
            let aside = free_name(&current_name, &taken, aside_name);
            let from = self.path(&blocker);
            if self
                .tree
                .move_node(&blocker, parent.clone(), aside)
                .is_err()
            {
                return false;
            }
            let to = self.path(&blocker);
            self.ops.push(match self.side {
                Side::Local => Op::MoveLocal {
                    id: blocker,
                    from,
                    to,
                },
                Side::Remote => Op::MoveRemote {
                    id: blocker,
                    from,
                    to,
                },
            });
        }
        true
    }

    /// Moves a node in the way straight to its merged place when that place is free already.
    fn move_directly(&mut self, id: &NodeId) -> bool {
        let Some(target) = self.context.merge.nodes.get(id) else {
            return false;
        };
        let free = self.tree.is_folder(&target.parent)
            && !self.tree.is_ancestor_or_self(id, &target.parent)
            && self
                .tree
                .children_named(&target.parent, &target.name)
                .all(|child| child == id);
        if !free {
            return false;
        }
        let from = self.path(id);
        if self
            .tree
            .move_node(id, target.parent.clone(), target.name.clone())
            .is_err()
        {
            return false;
        }
        let to = self.path(id);
        let id = id.clone();
        self.ops.push(match self.side {
            Side::Local => Op::MoveLocal { id, from, to },
            Side::Remote => Op::MoveRemote { id, from, to },
        });
        true
    }

    fn delete(&mut self, id: &NodeId) {
        let path = self.path(id);
        let nodes = self.tree.remove_subtree(id).len();
        let id = id.clone();
        self.ops.push(match self.side {
            Side::Local => Op::DeleteLocal { id, path, nodes },
            Side::Remote => Op::DeleteRemote { id, path, nodes },
        });
    }
}
