//! The engine's persisted observations: the Remote, Local and Synced trees, the local files'
//! stats, the feed cursor and the status, in one SQLite database per synced pair.
//!
//! Only observations are stored, never pending work: after a crash the engine observes both
//! sides again and plans from there, so an op applied but not yet recorded is found done.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;

use cubby_core::sync::tree::{Kind, Node, NodeId, Tree};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::fs::Stat;

/// A tree, the stats of its local files (Local tree only) and which ids changed since the
/// last save.
#[derive(Default)]
pub struct Tracked {
    pub tree: Tree,
    pub stats: HashMap<NodeId, Stat>,
    dirty: HashSet<NodeId>,
    /// Whether anything changed since the engine last called [`Tracked::settle`].
    changed: bool,
}

impl Tracked {
    pub fn changed(&self) -> bool {
        self.changed
    }

    pub fn settle(&mut self) {
        self.changed = false;
    }

    fn mark(&mut self, id: NodeId) {
        self.changed = true;
        self.dirty.insert(id);
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

    pub fn remove_subtree(&mut self, id: &NodeId) {
        for (gone, _) in self.tree.remove_subtree(id) {
            self.stats.remove(&gone);
            self.mark(gone);
        }
    }

    /// Gives a node a new id; its children (whose parent changes) are marked too.
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
        self.mark(new);
        true
    }

    /// Empties the tree (every node is marked, so the save deletes its rows).
    pub fn clear(&mut self) {
        let ids: Vec<NodeId> = self.tree.iter().map(|(id, _)| id.clone()).collect();
        for id in ids {
            self.mark(id);
        }
        self.tree = Tree::new();
        self.stats.clear();
    }
}

/// Which tree a row belongs to.
#[derive(Clone, Copy)]
pub enum Which {
    Remote = 0,
    Local = 1,
    Synced = 2,
}

/// The database.
pub struct State {
    pool: SqlitePool,
}

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
    PRIMARY KEY (tree, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS problem (path TEXT PRIMARY KEY, message TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS conflict (path TEXT PRIMARY KEY, original TEXT NOT NULL, at INTEGER NOT NULL);
";

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
        Ok(Self { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub async fn load(&self, which: Which) -> Result<Tracked, sqlx::Error> {
        // A few rows, each holding 20,000 nodes as JSON built inside SQLite: far cheaper than
        // passing 100,000 rows one by one through the driver's worker thread, and a bounded
        // transient buffer.
        type Row = (
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
        let mut tracked = Tracked::default();
        // Parents are folders, few and shared by many nodes: one id each.
        let mut parents: HashMap<String, NodeId> = HashMap::new();
        let mut after = String::new();
        loop {
            let (text, last): (Option<String>, Option<String>) = sqlx::query_as(
                "SELECT json_group_array(json_array(id, parent, name, hash, rev, size, mtime_ns, inode, is_dir)), max(id) \
                 FROM (SELECT * FROM node WHERE tree = ? AND id > ? ORDER BY id LIMIT 20000)",
            )
            .bind(which as i64)
            .bind(&after)
            .fetch_one(&self.pool)
            .await?;
            let Some(last) = last else {
                break;
            };
            after = last;
            let rows: Vec<Row> = serde_json::from_str(text.as_deref().unwrap_or("[]"))
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            for (id, parent, name, hash, rev, size, mtime_ns, inode, is_dir) in rows {
                let id = NodeId::new(id);
                let parent = match parents.get(&parent) {
                    Some(p) => p.clone(),
                    None => {
                        let p = NodeId::new(parent.clone());
                        parents.insert(parent, p.clone());
                        p
                    }
                };
                let node = Node {
                    parent,
                    name,
                    kind: match hash {
                        Some(h) => Kind::file(h),
                        None => Kind::Folder,
                    },
                    rev,
                };
                if let Some(inode) = inode {
                    tracked.stats.insert(
                        id.clone(),
                        Stat {
                            is_dir: is_dir.unwrap_or(0) != 0,
                            size: size.unwrap_or(0) as u64,
                            mtime_ns: mtime_ns.unwrap_or(0),
                            inode: inode as u64,
                        },
                    );
                }
                tracked.tree.put(id, node);
            }
        }
        Ok(tracked)
    }

    /// Writes what changed in the trees and the given meta values, in one transaction.
    pub async fn save(
        &self,
        trees: [(&mut Tracked, Which); 3],
        meta: &[(&str, Option<String>)],
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for (tracked, which) in trees {
            for id in tracked.dirty.drain() {
                match tracked.tree.get(&id) {
                    Some(node) => {
                        let stat = tracked.stats.get(&id);
                        sqlx::query(
                            "INSERT OR REPLACE INTO node (tree, id, parent, name, hash, rev, size, mtime_ns, inode, is_dir) \
                             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        )
                        .bind(which as i64)
                        .bind(id.as_str())
                        .bind(node.parent.as_str())
                        .bind(&node.name)
                        .bind(node.kind.content_hash())
                        .bind(&node.rev)
                        .bind(stat.map(|s| s.size as i64))
                        .bind(stat.map(|s| s.mtime_ns))
                        .bind(stat.map(|s| s.inode as i64))
                        .bind(stat.map(|s| s.is_dir as i64))
                        .execute(&mut *tx)
                        .await?;
                    }
                    None => {
                        sqlx::query("DELETE FROM node WHERE tree = ? AND id = ?")
                            .bind(which as i64)
                            .bind(id.as_str())
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
        }
        for (key, value) in meta {
            match value {
                Some(v) => {
                    sqlx::query("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)")
                        .bind(key)
                        .bind(v)
                        .execute(&mut *tx)
                        .await?;
                }
                None => {
                    sqlx::query("DELETE FROM meta WHERE key = ?")
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await
    }

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
