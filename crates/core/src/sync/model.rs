//! A model engine for tests: applies planner ops to in-memory Remote, Local and Synced trees.
//!
//! It plays the server (minting ids and revs) and the disk, and refuses any op that a real
//! engine could not apply or that would break a safety rule: a deletion of a node that was not
//! synced or that the other side still has, an overwrite of content that was never synced, a
//! move onto an occupied name, a path that does not match the node.
//! It is not the `sync` crate's engine; it only checks that the plans converge. The
//! proptests and unit tests use it, and so does the planner's fuzz target (`fuzz/`, through
//! the `model` feature).

use crate::path;
use crate::sync::plan::{self, Op, UploadMode};
use crate::sync::tree::{Kind, Node, NodeId, Tree};

/// How many plans a sync may take, the last one empty, before the test calls it a failure to
/// converge.
///
/// Three applying passes suffice: links, transfers and moves; then the uploads of conflicted
/// copies and the commits of what the first pass settled; then the commits of those uploads.
pub const MAX_PASSES: usize = 4;

/// The three trees and the model server's counters.
#[derive(Clone, Debug)]
pub struct World {
    pub remote: Tree,
    pub local: Tree,
    pub synced: Tree,
    /// Every node the ops deleted on either side, with the side's name.
    pub deleted: Vec<(&'static str, NodeId, Node)>,
    next_id: u64,
}

impl World {
    pub fn new(remote: Tree, local: Tree, synced: Tree) -> World {
        World {
            remote,
            local,
            synced,
            deleted: Vec::new(),
            next_id: 1,
        }
    }

    /// Plans and applies until a plan is empty; returns the number of non-empty passes.
    pub fn sync(&mut self) -> Result<usize, String> {
        for pass in 0..MAX_PASSES {
            let planned = plan::plan(&self.remote, &self.local, &self.synced);
            let again = plan::plan(&self.remote, &self.local, &self.synced);
            if planned != again {
                return Err(format!("pass {pass}: the planner is not deterministic"));
            }
            if planned.is_empty() {
                return Ok(pass);
            }
            for op in &planned.ops {
                self.apply(op)
                    .map_err(|error| format!("pass {pass}: {op:?}: {error}\n{self:#?}"))?;
            }
        }
        Err(format!(
            "no convergence after {MAX_PASSES} passes; last plan: {:#?}",
            plan::plan(&self.remote, &self.local, &self.synced)
        ))
    }

    /// Applies one op, refusing what a real engine could not do or a safety rule forbids.
    pub fn apply(&mut self, op: &Op) -> Result<(), String> {
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
                    .map(|_| ())
                    .ok_or("not synced".into())
            }
            Op::KeepBoth { id, from, to } => {
                check_path(&self.local, id, from)?;
                if path::parent_of(from) != path::parent_of(to) {
                    return Err("a conflicted copy stays in its folder".into());
                }
                let parent = self.local.get(id).expect("checked").parent.clone();
                check_free(&self.local, &parent, path::name_of(to), Some(id))?;
                self.local
                    .move_node(id, parent, path::name_of(to))
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
            } => self.download(id, path, content_hash, rev),
            Op::MoveLocal { id, from, to } => move_in(&mut self.local, id, from, to),
            Op::DeleteLocal { id, path, nodes } => self.delete(true, id, path, *nodes),
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
            Op::Upload {
                id,
                path,
                content_hash,
                mode,
            } => self.upload(id, path, content_hash, mode),
            Op::MoveRemote { id, from, to } => move_in(&mut self.remote, id, from, to),
            Op::DeleteRemote { id, path, nodes } => self.delete(false, id, path, *nodes),
        }?;
        // The server takes only valid paths (a component of at most 255 characters, ...).
        if let Some(path) = remote_path(op) {
            let parsed = path::parse(path, path::Pattern::WritePath);
            if parsed.is_err() {
                return Err(format!("the server refuses the path {path:?}: {parsed:?}"));
            }
        }
        Ok(())
    }

    fn download(
        &mut self,
        id: &NodeId,
        path: &str,
        content_hash: &str,
        rev: &Option<String>,
    ) -> Result<(), String> {
        let remote = self.remote.get(id).ok_or("not on the remote")?;
        if remote.kind.content_hash() != Some(content_hash) || &remote.rev != rev {
            return Err("the remote holds other content".into());
        }
        match self.local.get(id) {
            Some(local) => {
                check_path(&self.local, id, path)?;
                if local.kind.is_folder() {
                    return Err("a download over a folder".into());
                }
                let synced = self.synced.get(id).map(|node| &node.kind);
                if synced != Some(&local.kind) {
                    return Err("would overwrite local content that was never synced".into());
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

    fn upload(
        &mut self,
        id: &NodeId,
        path: &str,
        content_hash: &str,
        mode: &UploadMode,
    ) -> Result<(), String> {
        let local = self.local.get(id).ok_or("not local")?;
        if local.kind.content_hash() != Some(content_hash) {
            return Err("the local file holds other content".into());
        }
        let rev = Some(self.mint("rev").as_str().to_owned());
        match mode {
            UploadMode::Update { rev: expected } => {
                check_path(&self.remote, id, path)?;
                let remote = self.remote.get(id).expect("checked");
                if remote.kind.is_folder() {
                    return Err("an upload over a folder".into());
                }
                if &remote.rev != expected {
                    return Err("the remote rev moved on".into());
                }
                let synced = self.synced.get(id).map(|node| &node.kind);
                if synced != Some(&remote.kind) {
                    return Err("would overwrite remote content that was never synced".into());
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

    fn delete(&mut self, local: bool, id: &NodeId, path: &str, nodes: usize) -> Result<(), String> {
        let (tree, other) = if local {
            (&mut self.local, &self.remote)
        } else {
            (&mut self.remote, &self.local)
        };
        check_path(tree, id, path)?;
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
        let side = if local { "local" } else { "remote" };
        for (removed_id, node) in tree.remove_subtree(id) {
            self.deleted.push((side, removed_id, node));
        }
        Ok(())
    }

    fn mint(&mut self, prefix: &str) -> NodeId {
        let id = NodeId::new(format!("{prefix}{}", self.next_id));
        self.next_id += 1;
        id
    }
}

fn text(error: impl std::fmt::Display) -> String {
    error.to_string()
}

fn check_path(tree: &Tree, id: &NodeId, expected: &str) -> Result<(), String> {
    match tree.path(id) {
        Some(actual) if actual == expected => Ok(()),
        actual => Err(format!("the node is at {actual:?}")),
    }
}

/// Refuses a name that folds to a sibling's (a case-insensitive disk or the server).
fn check_free(
    tree: &Tree,
    parent: &NodeId,
    name: &str,
    mover: Option<&NodeId>,
) -> Result<(), String> {
    match tree
        .children_named(parent, name)
        .find(|child| Some(*child) != mover)
    {
        Some(other) => Err(format!("{name} is taken by {other}")),
        None => Ok(()),
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

/// The folder at an exact display path (the planner names places as they are displayed).
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

/// The parent folder of a new node at `display_path`, checking that the name is free.
fn place(tree: &Tree, display_path: &str) -> Result<NodeId, String> {
    let parent = folder_at(tree, path::parent_of(display_path))?;
    check_free(tree, &parent, path::name_of(display_path), None)?;
    Ok(parent)
}

fn move_in(tree: &mut Tree, id: &NodeId, from: &str, to: &str) -> Result<(), String> {
    check_path(tree, id, from)?;
    let parent = folder_at(tree, path::parent_of(to))?;
    check_free(tree, &parent, path::name_of(to), Some(id))?;
    tree.move_node(id, parent, path::name_of(to)).map_err(text)
}
