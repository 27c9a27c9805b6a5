//! Planning over a working set: the planner is a pure function of three trees, and it is given
//! only the part of them around what changed, a batch at a time, so memory follows the size
//! of a batch (and of the largest folder in it), not of the tree.
//!
//! A batch starts from folders holding dirty nodes (see `state.rs`) and grows to a closed
//! working set, in which the planner sees everything a full plan would consult for those
//! nodes:
//! - every child of those folders, in all three trees (names that collide, links of equal
//!   new nodes, free names for conflicted copies);
//! - every node loaded in one tree is loaded in the other two, with its ancestors: the
//!   planner never mistakes a node it was not shown for a new or deleted one;
//! - every dirty node loaded pulls in its folders in every tree (a move between folders
//!   sees both), and the folder at the same path in the other trees (links of new folders);
//! - a folder deleted on one side comes with its whole subtree (the deletion counts it, and
//!   the checks before deleting compare it).
//!
//! A node outside the dirty set agrees in all three trees, so the plan has nothing to do for
//! it beyond what the dirty nodes around it need.

use std::collections::{HashMap, HashSet};

use cubby_core::sync::plan::{Op, Summary};
use cubby_core::sync::tree::{NodeId, Tree};

use super::fs::LocalFs;
use super::remote::RemoteApi;
use super::state::{ALL, Row, Tracked, Which};
use super::{Clock, Direction, Engine, Error};

/// What a round of batches is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Plan and apply; deletions are held back if `hold` says so.
    Apply { hold: bool },
    /// Plan only and collect the ops (`--status`).
    Pending,
}

/// What a round of batches did.
#[derive(Default)]
pub(super) struct Round {
    /// Whether any batch planned an op (after filtering).
    pub planned: bool,
    /// Whether every applied batch met no change under it.
    pub clean: bool,
    /// The ops of `Mode::Pending`.
    pub ops: Vec<Op>,
    /// Deletions held back.
    pub held: Summary,
    /// Ops planned but left out because they go the way a one-way sync does not.
    pub one_way: usize,
}

impl<F: LocalFs, R: RemoteApi, C: Clock> Engine<F, R, C> {
    fn tracked(&mut self, which: Which) -> &mut Tracked {
        match which {
            Which::Remote => &mut self.remote_tree,
            Which::Local => &mut self.local,
            Which::Synced => &mut self.synced,
        }
    }

    /// One tree of the working set.
    fn side(&self, which: Which) -> &Tree {
        match which {
            Which::Remote => &self.remote_tree.tree,
            Which::Local => &self.local.tree,
            Which::Synced => &self.synced.tree,
        }
    }

    fn loaded(&self, which: Which, id: &NodeId) -> bool {
        self.side(which).contains(id)
    }

    fn working_size(&self) -> usize {
        self.remote_tree.tree.len() + self.local.tree.len() + self.synced.tree.len()
    }

    fn clear_working(&mut self) {
        self.remote_tree = Tracked::default();
        self.local = Tracked::default();
        self.synced = Tracked::default();
    }

    /// Adds rows to the working set; returns the ids not seen in it before.
    fn take_rows(&mut self, rows: Vec<Row>, seen: &mut HashSet<NodeId>) -> Vec<NodeId> {
        let mut new = Vec::new();
        for row in rows {
            if !self.loaded(row.which, &row.id) {
                if seen.insert(row.id.clone()) {
                    new.push(row.id.clone());
                }
                self.tracked(row.which).load(row.id, row.node, row.stat);
            }
        }
        new
    }

    /// Grows the working set from the folders in `queue` until it is closed (module docs).
    async fn close_over(
        &mut self,
        queue: &mut Vec<NodeId>,
        full: &mut HashSet<NodeId>,
        seen: &mut HashSet<NodeId>,
    ) -> Result<(), Error> {
        let mut open: Vec<NodeId> = Vec::new();
        loop {
            let mut fresh: Vec<NodeId> = Vec::new();
            while let Some(folder) = queue.pop() {
                if !full.insert(folder.clone()) {
                    continue;
                }
                let rows = self.state.children_all(&folder).await?;
                open.extend(self.take_rows(rows, seen));
                if !folder.is_root() {
                    if seen.insert(folder.clone()) {
                        open.push(folder.clone());
                    }
                    fresh.push(folder);
                }
            }
            if open.is_empty() && fresh.is_empty() {
                return Ok(());
            }
            // Load the open ids in every tree, then their ancestors, until chains are whole.
            let mut batch: Vec<NodeId> = std::mem::take(&mut open);
            let mut completed: Vec<NodeId> = Vec::new();
            while !batch.is_empty() {
                let refs: Vec<&NodeId> = batch.iter().collect();
                let rows = self.state.by_ids(&refs).await?;
                let mut more = self.take_rows(rows, seen);
                for id in &batch {
                    for which in ALL {
                        let parent = self.side(which).get(id).map(|n| n.parent.clone());
                        if let Some(parent) = parent
                            && !parent.is_root()
                            && seen.insert(parent.clone())
                        {
                            more.push(parent);
                        }
                    }
                }
                completed.append(&mut batch);
                batch = more;
            }
            for folder in fresh {
                queue.extend(self.counterparts(&folder).await?);
            }
            // Dirty nodes pull in their folders (and a deleted folder its subtree).
            let refs: Vec<&NodeId> = completed.iter().collect();
            let dirty = self.state.dirty_among(&refs).await?;
            for id in &completed {
                if !dirty.contains(id) {
                    continue;
                }
                for which in ALL {
                    if let Some(node) = self.side(which).get(id)
                        && !full.contains(&node.parent)
                    {
                        queue.push(node.parent.clone());
                    }
                }
                let deleted_folder = self.synced.tree.is_folder(id)
                    && (!self.remote_tree.tree.contains(id) || !self.local.tree.contains(id));
                if deleted_folder {
                    for folder in self.state.folders_below(id).await? {
                        if !full.contains(&folder) {
                            queue.push(folder);
                        }
                    }
                }
            }
        }
    }

    /// The folders at the same path as `folder` in the trees where it is missing.
    async fn counterparts(&mut self, folder: &NodeId) -> Result<Vec<NodeId>, Error> {
        let present: Vec<Which> = ALL
            .into_iter()
            .filter(|w| self.loaded(*w, folder))
            .collect();
        if present.len() == ALL.len() {
            return Ok(Vec::new());
        }
        let Some(&from) = present.first() else {
            return Ok(Vec::new());
        };
        let Some(display) = self.side(from).path(folder) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for which in ALL {
            if present.contains(&which) {
                continue;
            }
            let mut current = NodeId::root();
            let mut found = true;
            for name in display.split('/').filter(|n| !n.is_empty()) {
                let rows = self.state.named(which, &current, name).await?;
                let row = rows
                    .iter()
                    .find(|r| r.node.name == name)
                    .or_else(|| rows.first());
                match row {
                    Some(r) if r.node.kind.is_folder() => current = r.id.clone(),
                    _ => {
                        found = false;
                        break;
                    }
                }
            }
            if found && !current.is_root() {
                out.push(current);
            }
        }
        Ok(out)
    }

    /// Plans (and in `Mode::Apply`, applies) the dirty nodes, a working set at a time.
    pub(super) async fn run_batches(&mut self, mode: Mode) -> Result<Round, Error> {
        let folders = self.state.dirty_folders().await?;
        let mut round = Round {
            clean: true,
            ..Round::default()
        };
        // Folders a batch loaded whole: a later batch starting from one would plan the same.
        let mut covered: HashSet<NodeId> = HashSet::new();
        // Local folders a batch re-keyed (a link, or a folder created on the server): the
        // list names them by their old ids.
        let mut renamed: HashMap<NodeId, NodeId> = HashMap::new();
        let mut next = 0;
        while next < folders.len() {
            self.clear_working();
            let mut full: HashSet<NodeId> = HashSet::new();
            let mut seen: HashSet<NodeId> = HashSet::new();
            while next < folders.len() && self.working_size() < self.opts.batch_nodes.max(1) {
                let mut folder = folders[next].clone();
                next += 1;
                for _ in 0..16 {
                    match renamed.get(&folder) {
                        Some(new) => folder = new.clone(),
                        None => break,
                    }
                }
                if covered.contains(&folder) {
                    continue;
                }
                self.close_over(&mut vec![folder], &mut full, &mut seen)
                    .await?;
            }
            covered.extend(full);
            self.report.working_set_peak = self.report.working_set_peak.max(self.working_size());
            let (mut ops, one_way) = self.plan();
            round.one_way += one_way;
            if !ops.is_empty() {
                round.planned = true;
            }
            match mode {
                Mode::Pending => {
                    round.ops.append(&mut ops);
                    continue;
                }
                Mode::Apply { hold } => {
                    if hold {
                        let before = Summary::of(&ops);
                        ops.retain(|op| {
                            !matches!(op, Op::DeleteLocal { .. } | Op::DeleteRemote { .. })
                        });
                        round.held.local_deletes += before.local_deletes;
                        round.held.remote_deletes += before.remote_deletes;
                    }
                    if !ops.is_empty() && !self.apply(ops).await? {
                        round.clean = false;
                    }
                    for (old, new) in self.local.rekeyed() {
                        renamed.insert(old.clone(), new.clone());
                    }
                    self.save_working().await?;
                }
            }
        }
        self.clear_working();
        Ok(round)
    }

    /// Writes the working set's changes, then takes the ids that now agree in all three
    /// trees out of the dirty set.
    async fn save_working(&mut self) -> Result<(), Error> {
        self.state
            .save(&mut self.remote_tree, Which::Remote)
            .await?;
        self.state.save(&mut self.local, Which::Local).await?;
        self.state.save(&mut self.synced, Which::Synced).await?;
        let agreeing: Vec<&NodeId> = self
            .remote_tree
            .tree
            .iter()
            .filter(|(id, remote)| {
                self.synced.tree.get(id) == Some(*remote)
                    && self
                        .local
                        .tree
                        .get(id)
                        .is_some_and(|local| local.agrees_with(remote))
            })
            .map(|(id, _)| id)
            .collect();
        self.state.clean(&agreeing).await?;
        Ok(())
    }

    /// Records the deletions a round applied (`before`: the pass's count before it): a
    /// forced round was the user's answer to the guard, so nothing before it counts any more.
    pub(super) fn applied_deletes(&mut self, before: u64) {
        if self.opts.force {
            self.recent_deletes.clear();
            return;
        }
        let applied = self.report.deleted_local + self.report.deleted_remote - before;
        if applied > 0 {
            self.recent_deletes
                .push_back((self.clock.now(), applied as usize));
        }
    }

    /// Whether this round must hold deletions back (a mass deletion, not forced), and how
    /// many it would delete.
    pub(super) async fn mass_deletion(&mut self) -> Result<Option<Summary>, Error> {
        if self.opts.force {
            return Ok(None);
        }
        let (mut local, mut remote) = self.state.pending_deletes().await?;
        match self.opts.direction {
            Direction::Both => {}
            Direction::Pull => remote = 0,
            Direction::Push => local = 0,
        }
        // What recent rounds deleted counts too, against the tree as it was before them.
        let now = self.clock.now();
        self.recent_deletes
            .retain(|&(at, _)| now - at < super::DELETE_WINDOW_SECS);
        let recent: usize = self.recent_deletes.iter().map(|&(_, n)| n).sum();
        let deletes = local.max(remote) + recent;
        if local.max(remote) == 0 || deletes < self.opts.min_delete_guard {
            return Ok(None);
        }
        let tree = (self.state.count(Which::Synced).await? + recent).max(1);
        let mass = deletes as f64 > self.opts.max_delete_share * tree as f64
            || deletes > self.opts.max_delete;
        Ok(mass.then_some(Summary {
            local_deletes: local,
            remote_deletes: remote,
            ..Summary::default()
        }))
    }
}
