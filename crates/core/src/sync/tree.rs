//! The trees the sync planner reads: nodes keyed by a stable id, each with a parent, a name and a kind.
//!
//! The same type holds the Remote tree (the server's view, with revs), the Local tree (the last
//! observed disk) and the Synced tree (what both sides last agreed on).
//! A tree is plain data: it does no I/O and checks only its own structure (ids, parents, cycles).
//! It does not enforce unique names in a folder, because a case-sensitive local disk may hold
//! `a` and `A` side by side; the planner resolves such collisions.
//! This is not the engine's persisted form, which the `sync` crate owns.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::sync::Arc;

use crate::path;

/// A node's stable identity: the server's file id (`id:…`), or a provisional local id for a node
/// not yet uploaded.
///
/// The root of every tree is the empty id; it is implicit and never stored as a node.
/// Shared, not copied: a node's id appears as its key, in its parent's child index, as its
/// children's parent and in the other trees, so clones only count references.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(Arc<str>);

impl NodeId {
    pub fn new(id: impl Into<String>) -> NodeId {
        NodeId(Arc::from(id.into()))
    }

    /// The root folder of a tree (the synced folder itself).
    pub fn root() -> NodeId {
        NodeId(Arc::from(""))
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            f.write_str("(root)")
        } else {
            f.write_str(&self.0)
        }
    }
}

/// What a node is: a folder, or a file with its Dropbox content hash.
/// The hash is shared between the trees that hold the same content.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Folder,
    File { content_hash: Arc<str> },
}

impl Kind {
    pub fn file(content_hash: impl Into<String>) -> Kind {
        Kind::File {
            content_hash: Arc::from(content_hash.into()),
        }
    }

    pub fn is_folder(&self) -> bool {
        matches!(self, Kind::Folder)
    }

    pub fn content_hash(&self) -> Option<&str> {
        match self {
            Kind::Folder => None,
            Kind::File { content_hash } => Some(content_hash),
        }
    }
}

/// One file or folder of a tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub parent: NodeId,
    /// The display name, kept as written; names are compared with `path::lower`.
    pub name: String,
    pub kind: Kind,
    /// The server's rev of a file, known on the Remote and Synced trees only.
    pub rev: Option<String>,
}

impl Node {
    pub fn folder(parent: NodeId, name: impl Into<String>) -> Node {
        Node {
            parent,
            name: name.into(),
            kind: Kind::Folder,
            rev: None,
        }
    }

    pub fn file(parent: NodeId, name: impl Into<String>, content_hash: impl Into<String>) -> Node {
        Node {
            parent,
            name: name.into(),
            kind: Kind::file(content_hash),
            rev: None,
        }
    }

    /// Whether both nodes sit under the same parent with exactly the same name.
    ///
    /// A case-only rename is a change of place, so the comparison is exact.
    pub fn same_place(&self, other: &Node) -> bool {
        self.parent == other.parent && self.name == other.name
    }

    /// Whether both nodes are in the same place with the same kind and content; revs are ignored.
    pub fn agrees_with(&self, other: &Node) -> bool {
        self.same_place(other) && self.kind == other.kind
    }
}

/// Why a change to a tree was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("node {0} already exists")]
    Exists(NodeId),
    #[error("node {0} not found")]
    NotFound(NodeId),
    #[error("parent {0} is not a folder of the tree")]
    BadParent(NodeId),
    #[error("moving {0} would put it inside itself")]
    IntoItself(NodeId),
    #[error("path {0} names no folder of the tree")]
    BadPath(String),
}

/// A tree of nodes keyed by id, with an index of each folder's children.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    nodes: BTreeMap<NodeId, Node>,
    children: BTreeMap<NodeId, BTreeSet<NodeId>>,
}

impl Tree {
    pub fn new() -> Tree {
        Tree::default()
    }

    /// Builds a tree from `(id, path, content hash)` triples; `None` makes a folder.
    ///
    /// Parents are found by path (case-insensitively) and must come before their children.
    /// This is a helper for tests and fixtures.
    pub fn from_paths(entries: &[(&str, &str, Option<&str>)]) -> Result<Tree, TreeError> {
        let mut tree = Tree::new();
        for &(id, node_path, content_hash) in entries {
            let kind = match content_hash {
                Some(hash) => Kind::file(hash),
                None => Kind::Folder,
            };
            tree.insert_at_path(NodeId::new(id), node_path, kind)?;
        }
        Ok(tree)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn get(&self, id: &NodeId) -> Option<&Node> {
        self.nodes.get(id)
    }

    pub fn contains(&self, id: &NodeId) -> bool {
        self.nodes.contains_key(id)
    }

    /// Whether `id` is the root or a folder of this tree.
    pub fn is_folder(&self, id: &NodeId) -> bool {
        id.is_root() || self.nodes.get(id).is_some_and(|node| node.kind.is_folder())
    }

    /// Every node, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &Node)> {
        self.nodes.iter()
    }

    /// The ids of a folder's children, in id order.
    pub fn children(&self, id: &NodeId) -> impl Iterator<Item = &NodeId> {
        self.children.get(id).into_iter().flatten()
    }

    /// The children of `parent` whose name folds to the same lower-case key as `name`.
    pub fn children_named<'a>(
        &'a self,
        parent: &'a NodeId,
        name: &str,
    ) -> impl Iterator<Item = &'a NodeId> + 'a {
        let folded = path::lower(name);
        self.children(parent)
            .filter(move |child| path::lower(&self.nodes[*child].name) == folded)
    }

    /// The display path of a node (`/a/b.txt`), or `None` for an unknown id or a detached node.
    pub fn path(&self, id: &NodeId) -> Option<String> {
        let mut names = Vec::new();
        let mut current = id;
        while !current.is_root() {
            // A walk longer than the tree means a cycle, which only a malformed tree can hold.
            if names.len() > self.nodes.len() {
                return None;
            }
            let node = self.nodes.get(current)?;
            names.push(node.name.as_str());
            current = &node.parent;
        }
        let mut display = String::new();
        for name in names.iter().rev() {
            display.push('/');
            display.push_str(name);
        }
        Some(display)
    }

    /// Finds a node by display path: an exact name first, then a case-insensitive match.
    pub fn lookup(&self, display_path: &str) -> Option<NodeId> {
        let mut current = NodeId::root();
        for name in display_path.split('/').filter(|name| !name.is_empty()) {
            let exact = self
                .children(&current)
                .find(|child| self.nodes[*child].name == name);
            let found = match exact {
                Some(child) => child.clone(),
                None => self.children_named(&current, name).next()?.clone(),
            };
            current = found;
        }
        Some(current)
    }

    /// Whether `ancestor` is `id` itself or one of its ancestors (the root is everyone's).
    pub fn is_ancestor_or_self(&self, ancestor: &NodeId, id: &NodeId) -> bool {
        let mut current = id;
        let mut steps = 0;
        loop {
            if current == ancestor {
                return true;
            }
            if current.is_root() || steps > self.nodes.len() {
                return false;
            }
            match self.nodes.get(current) {
                Some(node) => current = &node.parent,
                None => return false,
            }
            steps += 1;
        }
    }

    /// Every node reachable from the root, parents before children, siblings in id order.
    pub fn top_down(&self) -> Vec<NodeId> {
        self.subtree_from(&NodeId::root())
    }

    /// `id` and its descendants, parents before children.
    pub fn subtree(&self, id: &NodeId) -> Vec<NodeId> {
        if !self.contains(id) {
            return Vec::new();
        }
        let mut ids = vec![id.clone()];
        ids.extend(self.subtree_from(id));
        ids
    }

    /// Adds a node under an existing folder (or the root).
    pub fn insert(&mut self, id: NodeId, node: Node) -> Result<(), TreeError> {
        if id.is_root() || self.nodes.contains_key(&id) {
            return Err(TreeError::Exists(id));
        }
        if !self.is_folder(&node.parent) {
            return Err(TreeError::BadParent(node.parent));
        }
        self.attach(id, node);
        Ok(())
    }

    /// Adds a node at a display path whose parent folder exists.
    pub fn insert_at_path(
        &mut self,
        id: NodeId,
        display_path: &str,
        kind: Kind,
    ) -> Result<(), TreeError> {
        let parent_path = path::parent_of(display_path);
        let parent = self
            .lookup(parent_path)
            .ok_or_else(|| TreeError::BadPath(parent_path.to_owned()))?;
        let node = Node {
            parent,
            name: path::name_of(display_path).to_owned(),
            kind,
            rev: None,
        };
        self.insert(id, node)
    }

    /// Records a node as given, replacing any node of that id, without checking its parent.
    ///
    /// This is for the Synced tree, whose nodes may outlive their parent while one side still
    /// has to apply a deletion.
    pub fn put(&mut self, id: NodeId, node: Node) {
        self.detach(&id);
        self.attach(id, node);
    }

    /// Removes one node and leaves its children where they are (for the Synced tree).
    pub fn forget(&mut self, id: &NodeId) -> Option<Node> {
        self.detach(id)
    }

    /// Removes a node and everything below it, returning the removed nodes parents first.
    pub fn remove_subtree(&mut self, id: &NodeId) -> Vec<(NodeId, Node)> {
        let ids = self.subtree(id);
        let mut removed = Vec::with_capacity(ids.len());
        for id in ids.into_iter().rev() {
            if let Some(node) = self.detach(&id) {
                removed.push((id, node));
            }
        }
        removed.reverse();
        removed
    }

    /// Moves or renames a node; its subtree follows.
    pub fn move_node(
        &mut self,
        id: &NodeId,
        new_parent: NodeId,
        new_name: impl Into<String>,
    ) -> Result<(), TreeError> {
        if !self.contains(id) {
            return Err(TreeError::NotFound(id.clone()));
        }
        if !self.is_folder(&new_parent) {
            return Err(TreeError::BadParent(new_parent));
        }
        if self.is_ancestor_or_self(id, &new_parent) {
            return Err(TreeError::IntoItself(id.clone()));
        }
        let mut node = self.detach(id).expect("checked above");
        node.parent = new_parent;
        node.name = new_name.into();
        self.attach(id.clone(), node);
        Ok(())
    }

    /// Changes a node's kind or content in place.
    pub fn set_kind(&mut self, id: &NodeId, kind: Kind) -> Result<(), TreeError> {
        let node = self
            .nodes
            .get_mut(id)
            .ok_or_else(|| TreeError::NotFound(id.clone()))?;
        node.kind = kind;
        Ok(())
    }

    /// Sets a node's rev.
    pub fn set_rev(&mut self, id: &NodeId, rev: Option<String>) -> Result<(), TreeError> {
        let node = self
            .nodes
            .get_mut(id)
            .ok_or_else(|| TreeError::NotFound(id.clone()))?;
        node.rev = rev;
        Ok(())
    }

    /// Gives a node a new id (a provisional id replaced by the server's, or a link); its
    /// children follow.
    pub fn rekey(&mut self, old: &NodeId, new: NodeId) -> Result<(), TreeError> {
        if new.is_root() || self.contains(&new) {
            return Err(TreeError::Exists(new));
        }
        let node = self
            .detach(old)
            .ok_or_else(|| TreeError::NotFound(old.clone()))?;
        let children = self.children.remove(old).unwrap_or_default();
        for child in &children {
            if let Some(child_node) = self.nodes.get_mut(child) {
                child_node.parent = new.clone();
            }
        }
        if !children.is_empty() {
            self.children.insert(new.clone(), children);
        }
        self.attach(new, node);
        Ok(())
    }

    /// Every node by display path with its kind, for comparing two trees regardless of ids.
    pub fn by_path(&self) -> BTreeMap<String, Kind> {
        self.top_down()
            .into_iter()
            .filter_map(|id| Some((self.path(&id)?, self.nodes[&id].kind.clone())))
            .collect()
    }

    fn subtree_from(&self, start: &NodeId) -> Vec<NodeId> {
        let mut ids = Vec::new();
        let mut queue: VecDeque<&NodeId> = self.children(start).collect();
        while let Some(id) = queue.pop_front() {
            ids.push(id.clone());
            queue.extend(self.children(id));
        }
        ids
    }

    fn attach(&mut self, id: NodeId, node: Node) {
        self.children
            .entry(node.parent.clone())
            .or_default()
            .insert(id.clone());
        self.nodes.insert(id, node);
    }

    fn detach(&mut self, id: &NodeId) -> Option<Node> {
        let node = self.nodes.remove(id)?;
        if let Some(siblings) = self.children.get_mut(&node.parent) {
            siblings.remove(id);
            if siblings.is_empty() {
                self.children.remove(&node.parent);
            }
        }
        Some(node)
    }
}
