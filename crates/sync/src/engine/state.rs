//! The engine's persisted observations: the Remote, Local and Synced trees, the local files'
//! stats, the feed cursor and the status, in one SQLite database per synced pair.
//!
//! Only observations are stored, never pending work: after a crash the engine observes both
//! sides again and plans from there, so an op applied but not yet recorded is found done.
//!
//! The trees live here, not in memory: the scan and the feed read and write rows folder by
//! folder, and a plan works on a small working set loaded around the nodes that changed
//! (see `work.rs`). Triggers keep the `dirty` table: every id whose place, name, content or
//! rev changed in any tree since it was last found in agreement. An id not in `dirty` is the
//! same in all three trees (or absent from all), so planning it would give nothing.
//!
//! Rows cross the driver as JSON built or read inside SQLite, a few statements per folder or
//! batch rather than one per node: the driver's per-statement cost is the bottleneck otherwise.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;

use cubby_core::path;
use cubby_core::sync::tree::{Kind, Node, NodeId, Tree};
use serde_json::{Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Row as _, SqlitePool};

use super::fs::Stat;

/// A partial tree held in memory (a working set, or a whole tree for tests), the stats of its
/// local files (Local tree only), and what changed since it was loaded.
#[derive(Default)]
pub struct Tracked {
    pub tree: Tree,
    pub stats: HashMap<NodeId, Stat>,
    dirty: HashSet<NodeId>,
    /// Re-keyed folders (old, new): rows below them that were not loaded follow on save.
    rekeys: Vec<(NodeId, NodeId)>,
}

impl Tracked {
    fn mark(&mut self, id: NodeId) {
        self.dirty.insert(id);
    }

    /// Adds a node read from the database (not a change).
    pub fn load(&mut self, id: NodeId, node: Node, stat: Option<Stat>) {
        if let Some(stat) = stat {
            self.stats.insert(id.clone(), stat);
        }
        self.tree.put(id, node);
    }

    pub fn put(&mut self, id: NodeId, node: Node) {
        self.mark(id.clone());
        self.tree.put(id, node);
    }

    pub fn set_stat(&mut self, id: &NodeId, stat: Stat) {
        self.mark(id.clone());
        self.stats.insert(id.clone(), stat);
    }

    pub fn forget(&mut self, id: &NodeId) {
        self.mark(id.clone());
        self.tree.forget(id);
        self.stats.remove(id);
    }

    /// Removes a node and its subtree (which must be loaded whole).
    pub fn remove_subtree(&mut self, id: &NodeId) {
        for (gone, _) in self.tree.remove_subtree(id) {
            self.stats.remove(&gone);
            self.mark(gone);
        }
    }

    /// Gives a node a new id; its children (whose parent changes) are marked too, and on save
    /// the rows below it that were not loaded follow.
    pub fn rekey(&mut self, old: &NodeId, new: NodeId) -> bool {
        if self.tree.rekey(old, new.clone()).is_err() {
            return false;
        }
        if let Some(stat) = self.stats.remove(old) {
            self.stats.insert(new.clone(), stat);
        }
        self.mark(old.clone());
        let children: Vec<NodeId> = self.tree.children(&new).cloned().collect();
        self.dirty.extend(children);
        if self.tree.is_folder(&new) {
            self.rekeys.push((old.clone(), new.clone()));
        }
        self.mark(new);
        true
    }

    /// The folders re-keyed since the tree was last saved: (old id, new id).
    pub fn rekeyed(&self) -> &[(NodeId, NodeId)] {
        &self.rekeys
    }
}

/// Which tree a row belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Which {
    Remote = 0,
    Local = 1,
    Synced = 2,
}

pub const ALL: [Which; 3] = [Which::Remote, Which::Local, Which::Synced];

impl Which {
    fn from_i64(v: i64) -> Which {
        match v {
            0 => Which::Remote,
            1 => Which::Local,
            _ => Which::Synced,
        }
    }
}

/// One row of a tree.
#[derive(Clone, Debug)]
pub struct Row {
    pub which: Which,
    pub id: NodeId,
    pub node: Node,
    pub stat: Option<Stat>,
}

/// The database.
pub struct State {
    pool: SqlitePool,
}

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS node (
    tree INTEGER NOT NULL,
    id TEXT NOT NULL,
    parent TEXT NOT NULL,
    name TEXT NOT NULL,
    hash TEXT,
    rev TEXT,
    size INTEGER,
    mtime_ns INTEGER,
    inode INTEGER,
    is_dir INTEGER,
    folded TEXT,
    PRIMARY KEY (tree, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS problem (path TEXT PRIMARY KEY, message TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS conflict (path TEXT PRIMARY KEY, original TEXT NOT NULL, at INTEGER NOT NULL);
";

/// Created once the `folded` column exists (a database of schema 0 gains it first).
/// The triggers test for an existing row rather than `INSERT OR IGNORE`, because an outer
/// statement's conflict policy would override the trigger's.
const SCHEMA_1: &str = "
CREATE TABLE IF NOT EXISTS dirty (id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS node_child ON node (tree, parent, folded);
CREATE INDEX IF NOT EXISTS node_inode ON node (tree, inode) WHERE inode IS NOT NULL;
INSERT OR IGNORE INTO meta (key, value) VALUES ('dirty_gen', '0');
CREATE TRIGGER IF NOT EXISTS node_ins AFTER INSERT ON node BEGIN
    INSERT INTO dirty (id) SELECT NEW.id WHERE NOT EXISTS (SELECT 1 FROM dirty WHERE id = NEW.id);
END;
CREATE TRIGGER IF NOT EXISTS node_upd AFTER UPDATE ON node
WHEN OLD.parent IS NOT NEW.parent OR OLD.name IS NOT NEW.name OR OLD.hash IS NOT NEW.hash
    OR OLD.rev IS NOT NEW.rev BEGIN
    INSERT INTO dirty (id) SELECT NEW.id WHERE NOT EXISTS (SELECT 1 FROM dirty WHERE id = NEW.id);
END;
CREATE TRIGGER IF NOT EXISTS node_del AFTER DELETE ON node BEGIN
    INSERT INTO dirty (id) SELECT OLD.id WHERE NOT EXISTS (SELECT 1 FROM dirty WHERE id = OLD.id);
END;
CREATE TRIGGER IF NOT EXISTS dirty_gen AFTER INSERT ON dirty BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'dirty_gen';
END;
";

/// The columns of a row as a JSON array, in the order [`decode`] reads.
const ROW_JSON: &str =
    "json_array(tree, id, parent, name, hash, rev, size, mtime_ns, inode, is_dir)";

type RowTuple = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

fn decode(text: Option<String>) -> Result<Vec<Row>, sqlx::Error> {
    let rows: Vec<RowTuple> = serde_json::from_str(text.as_deref().unwrap_or("[]"))
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(rows
        .into_iter()
        .map(
            |(tree, id, parent, name, hash, rev, size, mtime_ns, inode, is_dir)| Row {
                which: Which::from_i64(tree),
                id: NodeId::new(id),
                node: Node {
                    parent: NodeId::new(parent),
                    name,
                    kind: match hash {
                        Some(h) => Kind::file(h),
                        None => Kind::Folder,
                    },
                    rev,
                },
                stat: inode.map(|inode| Stat {
                    is_dir: is_dir.unwrap_or(0) != 0,
                    size: size.unwrap_or(0) as u64,
                    mtime_ns: mtime_ns.unwrap_or(0),
                    inode: inode as u64,
                }),
            },
        )
        .collect())
}

fn ids_json<'a>(ids: impl IntoIterator<Item = &'a NodeId>) -> String {
    Value::Array(ids.into_iter().map(|id| json!(id.as_str())).collect()).to_string()
}

/// A row to write: `None` deletes it.
pub type Write = (NodeId, Option<(Node, Option<Stat>)>);

impl State {
    pub async fn open(path: &Path, durable: bool) -> Result<Self, sqlx::Error> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if durable {
                SqliteSynchronous::Normal
            } else {
                SqliteSynchronous::Off
            });
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        let state = Self { pool };
        state.migrate().await?;
        Ok(state)
    }

    async fn migrate(&self) -> Result<(), sqlx::Error> {
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&self.pool)
            .await?;
        if version >= SCHEMA_VERSION {
            return Ok(());
        }
        // Schema 0 (stop 12) had no `folded` column and no dirty table.
        let has_folded: bool = sqlx::query_scalar(
            "SELECT count(*) > 0 FROM pragma_table_info('node') WHERE name = 'folded'",
        )
        .fetch_one(&self.pool)
        .await?;
        if !has_folded {
            sqlx::query("ALTER TABLE node ADD COLUMN folded TEXT")
                .execute(&self.pool)
                .await?;
        }
        loop {
            let text: Option<String> = sqlx::query_scalar(
                "SELECT json_group_array(json_array(tree, id, name)) FROM \
                 (SELECT tree, id, name FROM node WHERE folded IS NULL LIMIT 20000)",
            )
            .fetch_one(&self.pool)
            .await?;
            let rows: Vec<(i64, String, String)> =
                serde_json::from_str(text.as_deref().unwrap_or("[]"))
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            if rows.is_empty() {
                break;
            }
            let folded: Vec<Value> = rows
                .iter()
                .map(|(t, id, name)| json!([t, id, path::lower(name)]))
                .collect();
            sqlx::query(
                "UPDATE node SET folded = j.value->>2 FROM json_each(?) j \
                 WHERE node.tree = j.value->>0 AND node.id = j.value->>1",
            )
            .bind(Value::Array(folded).to_string())
            .execute(&self.pool)
            .await?;
        }
        sqlx::raw_sql(SCHEMA_1).execute(&self.pool).await?;
        // Everything is planned again once (which finds nothing to do on synced trees).
        sqlx::query("INSERT OR IGNORE INTO dirty (id) SELECT DISTINCT id FROM node")
            .execute(&self.pool)
            .await?;
        sqlx::query(AssertSqlSafe(format!(
            "PRAGMA user_version = {SCHEMA_VERSION}"
        )))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn rows(&self, sql: &str, binds: &[Value]) -> Result<Vec<Row>, sqlx::Error> {
        let sql = format!("SELECT json_group_array({ROW_JSON}) FROM ({sql})");
        let mut query = sqlx::query_scalar::<_, Option<String>>(AssertSqlSafe(sql));
        for bind in binds {
            query = match bind {
                Value::String(s) => query.bind(s.clone()),
                Value::Number(n) => query.bind(n.as_i64()),
                other => query.bind(other.to_string()),
            };
        }
        decode(query.fetch_one(&self.pool).await?)
    }

    /// A whole tree (tests, `--status`, the simulation's checks).
    pub async fn load(&self, which: Which) -> Result<Tracked, sqlx::Error> {
        let mut tracked = Tracked::default();
        let mut after = String::new();
        loop {
            let rows = self
                .rows(
                    "SELECT * FROM node WHERE tree = ? AND id > ? ORDER BY id LIMIT 20000",
                    &[json!(which as i64), json!(after)],
                )
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.id.as_str().to_owned();
            for row in rows {
                tracked.load(row.id, row.node, row.stat);
            }
        }
        Ok(tracked)
    }

    /// The children of `parent` in every tree.
    pub async fn children_all(&self, parent: &NodeId) -> Result<Vec<Row>, sqlx::Error> {
        self.rows(
            "SELECT * FROM node INDEXED BY node_child WHERE tree IN (0, 1, 2) AND parent = ?",
            &[json!(parent.as_str())],
        )
        .await
    }

    /// The children of `parent` in one tree.
    pub async fn children(&self, which: Which, parent: &NodeId) -> Result<Vec<Row>, sqlx::Error> {
        self.rows(
            "SELECT * FROM node INDEXED BY node_child WHERE tree = ? AND parent = ?",
            &[json!(which as i64), json!(parent.as_str())],
        )
        .await
    }

    /// The children of `parent` in one tree whose name folds to `name`'s key.
    pub async fn named(
        &self,
        which: Which,
        parent: &NodeId,
        name: &str,
    ) -> Result<Vec<Row>, sqlx::Error> {
        self.rows(
            "SELECT * FROM node INDEXED BY node_child WHERE tree = ? AND parent = ? AND folded = ?",
            &[
                json!(which as i64),
                json!(parent.as_str()),
                json!(path::lower(name)),
            ],
        )
        .await
    }

    /// The rows of one tree at these places (parent, folded name).
    pub async fn at_places(
        &self,
        which: Which,
        places: &[(NodeId, String)],
    ) -> Result<Vec<Row>, sqlx::Error> {
        let mut out = Vec::new();
        for chunk in places.chunks(10_000) {
            let list: Vec<Value> = chunk
                .iter()
                .map(|(parent, folded)| json!([parent.as_str(), folded]))
                .collect();
            out.extend(
                self.rows(
                    "SELECT DISTINCT n.* FROM json_each(?) j CROSS JOIN node n INDEXED BY node_child \
                     ON n.tree = ? AND n.parent = j.value->>0 AND n.folded = j.value->>1",
                    &[json!(Value::Array(list).to_string()), json!(which as i64)],
                )
                .await?,
            );
        }
        Ok(out)
    }

    /// The rows of these ids, in every tree.
    pub async fn by_ids(&self, ids: &[&NodeId]) -> Result<Vec<Row>, sqlx::Error> {
        let mut out = Vec::new();
        for chunk in ids.chunks(10_000) {
            out.extend(
                self.rows(
                    "SELECT * FROM node WHERE tree IN (0, 1, 2) AND id IN (SELECT value FROM json_each(?))",
                    &[json!(ids_json(chunk.iter().copied()))],
                )
                .await?,
            );
        }
        Ok(out)
    }

    /// Local rows with any of these (inode, is_dir).
    pub async fn by_inodes(&self, inodes: &[(u64, bool)]) -> Result<Vec<Row>, sqlx::Error> {
        if inodes.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<Value> = inodes.iter().map(|(i, _)| json!(*i as i64)).collect();
        let rows = self
            .rows(
                "SELECT * FROM node INDEXED BY node_inode WHERE tree = 1 AND inode IN (SELECT value FROM json_each(?))",
                &[json!(Value::Array(list).to_string())],
            )
            .await?;
        let wanted: HashSet<&(u64, bool)> = inodes.iter().collect();
        Ok(rows
            .into_iter()
            .filter(|r| {
                r.stat
                    .is_some_and(|s| wanted.contains(&(s.inode, s.is_dir)))
            })
            .collect())
    }

    /// The folders at or below `id` in any tree (ids only).
    pub async fn folders_below(&self, id: &NodeId) -> Result<Vec<NodeId>, sqlx::Error> {
        let mut out = vec![id.clone()];
        out.extend(
            self.below(&ALL, id)
                .await?
                .into_iter()
                .filter(|(_, folder)| *folder)
                .map(|(id, _)| id),
        );
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// A node's parent and name in one tree.
    async fn up(&self, which: Which, id: &NodeId) -> Result<Option<(NodeId, String)>, sqlx::Error> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT parent, name FROM node WHERE tree = ? AND id = ?")
                .bind(which as i64)
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(parent, name)| (NodeId::new(parent), name)))
    }

    /// Whether `ancestor` is `id` or one of its ancestors in the tree (a walk up, one point
    /// query a level: see [`State::below`] for why not a recursive query).
    pub async fn is_ancestor_or_self(
        &self,
        which: Which,
        ancestor: &NodeId,
        id: &NodeId,
    ) -> Result<bool, sqlx::Error> {
        let mut current = id.clone();
        for _ in 0..4096 {
            if &current == ancestor {
                return Ok(true);
            }
            if current.is_root() {
                return Ok(false);
            }
            match self.up(which, &current).await? {
                Some((parent, _)) => current = parent,
                None => return Ok(false),
            }
        }
        Ok(false)
    }

    /// The display path of a Local node, from the rows of its ancestors.
    pub async fn local_path(&self, id: &NodeId) -> Result<Option<String>, sqlx::Error> {
        let mut names = Vec::new();
        let mut current = id.clone();
        while !current.is_root() {
            if names.len() > 4096 {
                return Ok(None);
            }
            let Some((parent, name)) = self.up(Which::Local, &current).await? else {
                return Ok(None);
            };
            names.push(name);
            current = parent;
        }
        Ok(Some(names.iter().rev().map(|n| format!("/{n}")).collect()))
    }

    /// The recorded stat of a node.
    pub async fn stat_of(&self, which: Which, id: &NodeId) -> Result<Option<Stat>, sqlx::Error> {
        Ok(self
            .rows(
                "SELECT * FROM node WHERE tree = ? AND id = ?",
                &[json!(which as i64), json!(id.as_str())],
            )
            .await?
            .into_iter()
            .next()
            .and_then(|r| r.stat))
    }

    /// The largest number of a provisional id (`local:N`) in any tree.
    pub async fn max_local_id(&self) -> Result<u64, sqlx::Error> {
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT max(CAST(substr(id, 7) AS INTEGER)) FROM node \
             WHERE tree IN (0, 1, 2) AND id >= 'local:' AND id < 'local;'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    pub async fn exists(&self, which: Which, id: &NodeId) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar("SELECT count(*) > 0 FROM node WHERE tree = ? AND id = ?")
            .bind(which as i64)
            .bind(id.as_str())
            .fetch_one(&self.pool)
            .await
    }

    pub async fn is_empty(&self, which: Which) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM node WHERE tree = ?)")
            .bind(which as i64)
            .fetch_one(&self.pool)
            .await
    }

    pub async fn count(&self, which: Which) -> Result<usize, sqlx::Error> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM node WHERE tree = ?")
            .bind(which as i64)
            .fetch_one(&self.pool)
            .await?;
        Ok(n as usize)
    }

    /// Writes rows (and deletes those given as `None`) in one statement per kind.
    pub async fn write(&self, which: Which, rows: &[Write]) -> Result<(), sqlx::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut puts = Vec::new();
        let mut deletes = Vec::new();
        for (id, row) in rows {
            match row {
                Some((node, stat)) => puts.push(json!([
                    which as i64,
                    id.as_str(),
                    node.parent.as_str(),
                    node.name,
                    node.kind.content_hash(),
                    node.rev,
                    stat.map(|s| s.size as i64),
                    stat.map(|s| s.mtime_ns),
                    stat.map(|s| s.inode as i64),
                    stat.map(|s| s.is_dir as i64),
                    path::lower(&node.name),
                ])),
                None => deletes.push(json!(id.as_str())),
            }
        }
        const DELETE: &str =
            "DELETE FROM node WHERE tree = ? AND id IN (SELECT value FROM json_each(?))";
        const PUT: &str = "INSERT INTO node (tree, id, parent, name, hash, rev, size, mtime_ns, inode, is_dir, folded) \
             SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, \
             value->>7, value->>8, value->>9, value->>10 FROM json_each(?) WHERE true \
             ON CONFLICT (tree, id) DO UPDATE SET parent = excluded.parent, name = excluded.name, \
             hash = excluded.hash, rev = excluded.rev, size = excluded.size, \
             mtime_ns = excluded.mtime_ns, inode = excluded.inode, is_dir = excluded.is_dir, \
             folded = excluded.folded";
        let deletes = Value::Array(deletes).to_string();
        let has_puts = !puts.is_empty();
        let puts_json = Value::Array(puts).to_string();
        match (deletes != "[]", has_puts) {
            (true, true) => {
                let mut tx = self.pool.begin().await?;
                sqlx::query(DELETE)
                    .bind(which as i64)
                    .bind(deletes)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(PUT).bind(puts_json).execute(&mut *tx).await?;
                tx.commit().await?;
            }
            (true, false) => {
                sqlx::query(DELETE)
                    .bind(which as i64)
                    .bind(deletes)
                    .execute(&self.pool)
                    .await?;
            }
            (false, _) => {
                sqlx::query(PUT).bind(puts_json).execute(&self.pool).await?;
            }
        }
        Ok(())
    }

    /// Removes a node and everything below it from one tree.
    pub async fn delete_subtree(&self, which: Which, id: &NodeId) -> Result<(), sqlx::Error> {
        let mut ids = vec![id.clone()];
        ids.extend(
            self.below(&[which], id)
                .await?
                .into_iter()
                .map(|(id, _)| id),
        );
        for chunk in ids.chunks(10_000) {
            sqlx::query(
                "DELETE FROM node WHERE tree = ? AND id IN (SELECT value FROM json_each(?))",
            )
            .bind(which as i64)
            .bind(ids_json(chunk))
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// The ids below `id` in these trees, with whether each is a folder, a level at a time.
    ///
    /// Not a recursive query: the bundled SQLite planned `WITH RECURSIVE` over this table as a
    /// scan per level (seconds for a 1,000-file folder in a 100,000-node tree).
    async fn below(
        &self,
        trees: &[Which],
        id: &NodeId,
    ) -> Result<Vec<(NodeId, bool)>, sqlx::Error> {
        let trees_json = Value::Array(trees.iter().map(|w| json!(*w as i64)).collect()).to_string();
        let mut out = Vec::new();
        // Parents differ between trees (a node moved on one side only), so the union of the
        // trees can hold a cycle: each folder is expanded once.
        let mut expanded: HashSet<NodeId> = HashSet::from([id.clone()]);
        let mut frontier = vec![id.clone()];
        while !frontier.is_empty() {
            let mut next = Vec::new();
            for chunk in frontier.chunks(10_000) {
                let text: Option<String> = sqlx::query_scalar(
                    "SELECT json_group_array(json_array(id, hash IS NULL)) FROM (SELECT DISTINCT id, hash \
                     FROM node INDEXED BY node_child WHERE tree IN (SELECT value FROM json_each(?)) \
                     AND parent IN (SELECT value FROM json_each(?)))",
                )
                .bind(&trees_json)
                .bind(ids_json(chunk))
                .fetch_one(&self.pool)
                .await?;
                let rows: Vec<(String, i64)> =
                    serde_json::from_str(text.as_deref().unwrap_or("[]"))
                        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                for (child, is_folder) in rows {
                    let is_folder = is_folder != 0;
                    let child = NodeId::new(child);
                    if is_folder && expanded.insert(child.clone()) {
                        next.push(child.clone());
                    }
                    out.push((child, is_folder));
                }
            }
            frontier = next;
        }
        Ok(out)
    }

    /// Empties a tree.
    pub async fn clear(&self, which: Which) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM node WHERE tree = ?")
            .bind(which as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Writes what changed in a working set, rows below re-keyed folders included.
    pub async fn save(&self, tracked: &mut Tracked, which: Which) -> Result<(), sqlx::Error> {
        for (old, new) in std::mem::take(&mut tracked.rekeys) {
            sqlx::query(
                "UPDATE node INDEXED BY node_child SET parent = ? WHERE tree = ? AND parent = ?",
            )
            .bind(new.as_str())
            .bind(which as i64)
            .bind(old.as_str())
            .execute(&self.pool)
            .await?;
        }
        let rows: Vec<Write> = tracked
            .dirty
            .drain()
            .map(|id| {
                let row = tracked
                    .tree
                    .get(&id)
                    .map(|node| (node.clone(), tracked.stats.get(&id).copied()));
                (id, row)
            })
            .collect();
        for chunk in rows.chunks(5_000) {
            self.write(which, chunk).await?;
        }
        Ok(())
    }

    // ---- the dirty set ----

    pub async fn has_dirty(&self) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM dirty)")
            .fetch_one(&self.pool)
            .await
    }

    /// Counts every id ever added to the dirty set: unchanged means nothing new to plan.
    pub async fn dirty_gen(&self) -> Result<String, sqlx::Error> {
        Ok(self.meta("dirty_gen").await?.unwrap_or_default())
    }

    /// The folders (in any tree) holding a dirty node, after dropping dirty ids that no tree
    /// holds any more.
    pub async fn dirty_folders(&self) -> Result<Vec<NodeId>, sqlx::Error> {
        sqlx::query(
            "DELETE FROM dirty WHERE NOT EXISTS \
             (SELECT 1 FROM node WHERE node.tree IN (0, 1, 2) AND node.id = dirty.id)",
        )
        .execute(&self.pool)
        .await?;
        let text: Option<String> = sqlx::query_scalar(
            "SELECT json_group_array(parent) FROM (SELECT DISTINCT n.parent AS parent FROM dirty d \
             CROSS JOIN node n ON n.tree IN (0, 1, 2) AND n.id = d.id)",
        )
        .fetch_one(&self.pool)
        .await?;
        let ids: Vec<String> = serde_json::from_str(text.as_deref().unwrap_or("[]"))
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        Ok(ids.into_iter().map(NodeId::new).collect())
    }

    /// Which of these ids are dirty.
    pub async fn dirty_among(&self, ids: &[&NodeId]) -> Result<HashSet<NodeId>, sqlx::Error> {
        let mut out = HashSet::new();
        for chunk in ids.chunks(10_000) {
            let text: Option<String> = sqlx::query_scalar(
                "SELECT json_group_array(id) FROM dirty WHERE id IN (SELECT value FROM json_each(?))",
            )
            .bind(ids_json(chunk.iter().copied()))
            .fetch_one(&self.pool)
            .await?;
            let found: Vec<String> = serde_json::from_str(text.as_deref().unwrap_or("[]"))
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            out.extend(found.into_iter().map(NodeId::new));
        }
        Ok(out)
    }

    /// Takes ids out of the dirty set (they agree in all three trees).
    pub async fn clean(&self, ids: &[&NodeId]) -> Result<(), sqlx::Error> {
        for chunk in ids.chunks(10_000) {
            sqlx::query("DELETE FROM dirty WHERE id IN (SELECT value FROM json_each(?))")
                .bind(ids_json(chunk.iter().copied()))
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// What the dirty nodes would delete: (locally, on the server). A synced node missing on
    /// one side and present on the other is deleted on that other side unless edited there,
    /// so this is an upper bound of the plan's deletions.
    pub async fn pending_deletes(&self) -> Result<(usize, usize), sqlx::Error> {
        let count = |gone: i64, present: i64| {
            format!(
                "SELECT count(*) FROM dirty d CROSS JOIN node s ON s.tree = 2 AND s.id = d.id \
                 WHERE NOT EXISTS (SELECT 1 FROM node g WHERE g.tree = {gone} AND g.id = d.id) \
                 AND EXISTS (SELECT 1 FROM node p WHERE p.tree = {present} AND p.id = d.id)"
            )
        };
        let local: i64 = sqlx::query_scalar(AssertSqlSafe(count(0, 1)))
            .fetch_one(&self.pool)
            .await?;
        let remote: i64 = sqlx::query_scalar(AssertSqlSafe(count(1, 0)))
            .fetch_one(&self.pool)
            .await?;
        Ok((local as usize, remote as usize))
    }

    // ---- meta, problems, conflicts ----

    pub async fn meta(&self, key: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
    }

    pub async fn set_meta(&self, key: &str, value: Option<&str>) -> Result<(), sqlx::Error> {
        match value {
            Some(v) => sqlx::query("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)")
                .bind(key)
                .bind(v)
                .execute(&self.pool)
                .await
                .map(|_| ()),
            None => sqlx::query("DELETE FROM meta WHERE key = ?")
                .bind(key)
                .execute(&self.pool)
                .await
                .map(|_| ()),
        }
    }

    /// Replaces the list of current problems.
    pub async fn set_problems(
        &self,
        problems: &[(String, String)],
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM problem").execute(&mut *tx).await?;
        for (path, message) in problems {
            sqlx::query("INSERT OR REPLACE INTO problem (path, message, at) VALUES (?, ?, ?)")
                .bind(path)
                .bind(message)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    pub async fn problems(&self) -> Result<Vec<(String, String)>, sqlx::Error> {
        let rows = sqlx::query("SELECT path, message FROM problem ORDER BY path")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub async fn add_conflict(
        &self,
        path: &str,
        original: &str,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT OR REPLACE INTO conflict (path, original, at) VALUES (?, ?, ?)")
            .bind(path)
            .bind(original)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Conflicted copies made, newest first: (copy, original, when).
    pub async fn conflicts(&self) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
        let rows = sqlx::query("SELECT path, original, at FROM conflict ORDER BY at DESC, path")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// A state file written by the engine before the trees moved to the database (schema 0:
    /// no `folded` column, no dirty set) opens with its trees intact and everything to plan.
    #[test]
    fn a_schema_0_state_file_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("old.sqlite");
        runtime().block_on(async {
            let options = SqliteConnectOptions::from_str("sqlite://")
                .unwrap()
                .filename(&file)
                .create_if_missing(true);
            let pool = SqlitePoolOptions::new().connect_with(options).await.unwrap();
            sqlx::raw_sql(
                "CREATE TABLE node (tree INTEGER NOT NULL, id TEXT NOT NULL, parent TEXT NOT NULL, \
                 name TEXT NOT NULL, hash TEXT, rev TEXT, size INTEGER, mtime_ns INTEGER, \
                 inode INTEGER, is_dir INTEGER, PRIMARY KEY (tree, id)) WITHOUT ROWID;
                 CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 INSERT INTO node VALUES (2, 'id:1', '', 'Photos', NULL, NULL, NULL, NULL, NULL, NULL);
                 INSERT INTO node VALUES (1, 'id:1', '', 'Photos', NULL, NULL, 0, 5, 77, 1);
                 INSERT INTO node VALUES (0, 'id:2', 'id:1', 'ÉTÉ.JPG', 'h', 'rev1', NULL, NULL, NULL, NULL);
                 INSERT INTO meta VALUES ('cursor', 'c1');",
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;

            let state = State::open(&file, false).await.unwrap();
            let named = state
                .named(Which::Remote, &NodeId::new("id:1"), "été.jpg")
                .await
                .unwrap();
            assert_eq!(named.len(), 1, "the folded names were filled in");
            assert_eq!(named[0].node.rev.as_deref(), Some("rev1"));
            let local = state.load(Which::Local).await.unwrap();
            assert_eq!(local.stats[&NodeId::new("id:1")].inode, 77);
            let ids = [NodeId::new("id:1"), NodeId::new("id:2")];
            let refs: Vec<&NodeId> = ids.iter().collect();
            assert_eq!(state.dirty_among(&refs).await.unwrap().len(), 2);
            assert_eq!(state.meta("cursor").await.unwrap().as_deref(), Some("c1"));
            state.close().await;
            // Opening again changes nothing.
            let state = State::open(&file, false).await.unwrap();
            assert_eq!(state.count(Which::Remote).await.unwrap(), 1);
            state.close().await;
        });
    }

    /// A folder moved into another on one side while the other side moved that one into it
    /// makes a cycle across the trees: walking below either ends, and finds both.
    #[test]
    fn folders_below_ends_on_a_cycle_across_the_trees() {
        let dir = tempfile::tempdir().unwrap();
        runtime().block_on(async {
            let state = State::open(&dir.path().join("s.sqlite"), false)
                .await
                .unwrap();
            let (a, b) = (NodeId::new("id:a"), NodeId::new("id:b"));
            let folder =
                |parent: &NodeId, name: &str| Some((Node::folder(parent.clone(), name), None));
            state
                .write(
                    Which::Local,
                    &[
                        (a.clone(), folder(&b, "a")),
                        (b.clone(), folder(&NodeId::root(), "b")),
                    ],
                )
                .await
                .unwrap();
            state
                .write(
                    Which::Synced,
                    &[
                        (b.clone(), folder(&a, "b")),
                        (a.clone(), folder(&NodeId::root(), "a")),
                    ],
                )
                .await
                .unwrap();
            let mut found = state.folders_below(&a).await.unwrap();
            found.sort();
            assert_eq!(found, vec![a.clone(), b.clone()]);
            state.close().await;
        });
    }

    /// Every change to a row marks its id dirty, a rewrite of the same values does not, and
    /// the dirty set's generation counts what was added.
    #[test]
    fn row_changes_mark_ids_dirty() {
        let dir = tempfile::tempdir().unwrap();
        runtime().block_on(async {
            let state = State::open(&dir.path().join("s.sqlite"), false)
                .await
                .unwrap();
            let id = NodeId::new("id:9");
            let node = Node::file(NodeId::root(), "a.txt", "h1");
            let stat = Stat {
                is_dir: false,
                size: 1,
                mtime_ns: 1,
                inode: 1,
            };
            state
                .write(
                    Which::Local,
                    &[(id.clone(), Some((node.clone(), Some(stat))))],
                )
                .await
                .unwrap();
            assert!(state.has_dirty().await.unwrap());
            state.clean(&[&id]).await.unwrap();
            assert!(!state.has_dirty().await.unwrap());
            let generation = state.dirty_gen().await.unwrap();
            // A new stat alone changes nothing the planner sees.
            let touched = Stat {
                mtime_ns: 2,
                ..stat
            };
            state
                .write(
                    Which::Local,
                    &[(id.clone(), Some((node.clone(), Some(touched))))],
                )
                .await
                .unwrap();
            assert!(!state.has_dirty().await.unwrap());
            assert_eq!(state.dirty_gen().await.unwrap(), generation);
            let renamed = Node::file(NodeId::root(), "b.txt", "h1");
            state
                .write(Which::Local, &[(id.clone(), Some((renamed, Some(stat))))])
                .await
                .unwrap();
            assert!(state.has_dirty().await.unwrap());
            assert_ne!(state.dirty_gen().await.unwrap(), generation);
            state.clean(&[&id]).await.unwrap();
            state.delete_subtree(Which::Local, &id).await.unwrap();
            assert_eq!(state.dirty_among(&[&id]).await.unwrap().len(), 1);
            state.close().await;
        });
    }
}
