//! Upload sessions: files larger than one request, appended in pieces and committed at the
//! end without reassembly.
//!
//! Session state lives in the metadata database, so any server can continue a session another
//! started, and a restart loses nothing. Blocks are written before any transaction (the
//! caller receives them); the transactions here only record which blocks a session holds.
//! Sequential sessions keep their full 4 MiB blocks as blocks and the partial rest, under
//! 4 MiB, in their row (`tail_data`): the next append puts it before its body and replaces
//! it, so an unaligned append leaves nothing behind (a tail kept as a block was garbage once
//! the next append re-cut it: 64 KiB appends of a 4 MiB file left 132 MiB of blocks for the
//! GC). The last append (one that closes, or a finish's) writes the rest as the file's last
//! block, the partial `tail` block a session row names; rows from before migration 17 may
//! name one while still open, which works as before.
//! Concurrent sessions keep 4 MiB-aligned blocks by index.
//!
//! A session started closed with at most [`INLINE_MAX`] bytes (a small file of a batch
//! upload) writes them as a small block in the database (`small.rs`) with its row, in one
//! write that the group commit makes durable with its neighbours' (no block file written
//! or fsynced), and keeps their hash. It counts no reference: the GC waits longer than a
//! session lives before it collects a small block (`gc.rs`). Finishing such sessions only
//! commits their hashes, as any block list.

use std::collections::{BTreeSet, HashMap, HashSet};

use cubby_core::hash::{BLOCK_SIZE, BlockHash};

use crate::db::{RowExt, Val, on_db, on_tx, placeholders};
use cubby_core::path::{ancestors, is_disallowed_name, lower, name_of};

use crate::group::Insert;
use crate::meta::{Commit, Entry, Kind, NewItem, OpError, WriteMode, WriteTx, commit_file_op};
use crate::refs::RefDelta;
use crate::{Store, now, random_bytes};

/// How long a session can be used after it starts, as on Dropbox.
pub const SESSION_TTL_SECS: i64 = 7 * 24 * 3600;

/// Largest file a session may build: Dropbox's 2^41 − 2^22 bytes.
pub const MAX_FILE_SIZE: u64 = (1 << 41) - (1 << 22);

/// Most bytes a session started closed writes as a small block instead of a block-store
/// object, and so the largest small block (`small.rs`): small enough that a database row
/// costs less than a block's own file and fsyncs.
pub const INLINE_MAX: u64 = 256 * 1024;

const BS: u64 = BLOCK_SIZE as u64;

/// Why a session operation was refused (`UploadSessionLookupError` and friends).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionError {
    NotFound,
    IncorrectOffset(u64),
    Closed,
    NotClosed,
    TooLarge,
    ConcurrentInvalidOffset,
    ConcurrentInvalidDataSize,
    ConcurrentNotClosed,
    ConcurrentMissingData,
}

/// A session as stored.
#[derive(Clone, Debug)]
pub struct Session {
    pub id: String,
    pub concurrent: bool,
    /// Sequential: bytes received. Concurrent: the total length, known once closed.
    pub length: u64,
    pub closed: bool,
    /// Sequential: the partial last block and its length, when kept as a block (rows from
    /// before migration 17, and sealed ones).
    pub tail: Option<(BlockHash, u64)>,
    /// Sequential: how many bytes past the full blocks the row keeps (`tail_data`).
    pub pending: u64,
    /// A closed session started with its bytes (at most [`INLINE_MAX`]): their block hash,
    /// a small block written with the session.
    pub inline: Option<BlockHash>,
}

/// One session to commit as a file.
pub struct Finish {
    pub session_id: String,
    pub offset: u64,
    /// The commit, without blocks or size (they come from the session).
    pub commit: Commit,
}

fn hash_of(v: Vec<u8>) -> Option<BlockHash> {
    v.try_into().ok()
}

impl Store {
    /// Starts an empty session for an account.
    pub async fn start_session(&self, account: i64, concurrent: bool) -> Result<String, OpError> {
        let mut ids = self.start_sessions(account, concurrent, 1).await?;
        Ok(ids.pop().expect("one session"))
    }

    /// Starts `n` sessions at once, in one write.
    pub async fn start_sessions(
        &self,
        account: i64,
        concurrent: bool,
        n: u32,
    ) -> Result<Vec<String>, OpError> {
        let created = now();
        let ids: Vec<String> = (0..n).map(|_| new_session_id()).collect();
        let rows = ids
            .iter()
            .map(|id| {
                vec![
                    Val::Text(Some(id.clone())),
                    Val::Int(Some(account)),
                    Val::Int(Some(i64::from(concurrent))),
                    Val::Int(Some(created)),
                    Val::Int(Some(created + SESSION_TTL_SECS)),
                ]
            })
            .collect();
        self.write_plain(move |tx| {
            Box::pin(async move {
                tx.tx
                    .insert_rows(
                        "INSERT INTO upload_sessions (id, account, concurrent, created, expires)",
                        5,
                        rows,
                        "",
                    )
                    .await?;
                Ok(())
            })
        })
        .await?;
        Ok(ids)
    }

    /// Starts a sequential session holding its first bytes, in one write: `blocks` cover
    /// `length` bytes, all full but possibly the last, or, with `rest` given, all full and
    /// `rest` the bytes past them, kept in the row.
    pub async fn start_with_data(
        &self,
        account: i64,
        blocks: &[BlockHash],
        rest: bytes::Bytes,
        length: u64,
        close: bool,
    ) -> Result<String, OpError> {
        let id = new_session_id();
        let created = now();
        let full = (length / BS) as usize;
        let tail_len = length % BS;
        if !rest.is_empty() && (rest.len() as u64 != tail_len || blocks.len() != full) {
            return Err(OpError::Invalid(
                "a session's rest does not match its length".into(),
            ));
        }
        let tail = (tail_len > 0 && rest.is_empty())
            .then(|| blocks.get(full).copied())
            .flatten();
        let tail_len = if tail.is_some() { tail_len } else { 0 };
        let rest = (!rest.is_empty()).then(|| rest.to_vec());
        let rows: Vec<Vec<Val>> = blocks
            .iter()
            .take(full)
            .enumerate()
            .map(|(i, h)| {
                vec![
                    Val::Text(Some(id.clone())),
                    Val::Int(Some(i as i64)),
                    Val::Blob(Some(h.to_vec())),
                    Val::Int(Some(BS as i64)),
                ]
            })
            .collect();
        let row_id = id.clone();
        let mut refs = RefDelta::default();
        refs.add(&blocks[..full.min(blocks.len())]);
        refs.add(tail.as_slice());
        self.write_plain(move |tx| {
            Box::pin(async move {
                tx.refs(refs).await?;
                on_tx!(&mut tx.tx, |c| sqlx::query(
                    "INSERT INTO upload_sessions (id, account, concurrent, length, closed, tail, \
                     tail_len, tail_data, created, expires) VALUES ($1, $2, 0, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&row_id)
                .bind(account)
                .bind(length as i64)
                .bind(i64::from(close))
                .bind(tail.map(|h| h.to_vec()))
                .bind(tail_len as i64)
                .bind(rest)
                .bind(created)
                .bind(created + SESSION_TTL_SECS)
                .execute(&mut *c)
                .await?
                .rows_affected());
                tx.tx
                    .insert_rows(
                        "INSERT INTO upload_session_blocks (session, idx, hash, size)",
                        4,
                        rows,
                        "",
                    )
                    .await?;
                Ok(())
            })
        })
        .await?;
        Ok(id)
    }

    /// Starts a closed sequential session of `data` (1 to [`INLINE_MAX`] bytes), written as
    /// a small block with the session row in one write: no block I/O (see the module
    /// comment).
    pub async fn start_inline(&self, account: i64, data: bytes::Bytes) -> Result<String, OpError> {
        if data.is_empty() || data.len() as u64 > INLINE_MAX {
            return Err(OpError::Invalid("inline session data out of range".into()));
        }
        let id = new_session_id();
        let created = now();
        let hash = cubby_core::hash::block_hash(&data);
        let len = data.len() as i64;
        self.insert_plain(vec![
            crate::small::small_block_insert(hash, data, created),
            Insert {
                head: "INSERT INTO upload_sessions \
                       (id, account, concurrent, length, closed, data_hash, created, expires)",
                row: vec![
                    Val::Text(Some(id.clone())),
                    Val::Int(Some(account)),
                    Val::Int(Some(0)),
                    Val::Int(Some(len)),
                    Val::Int(Some(1)),
                    Val::Blob(Some(hash.to_vec())),
                    Val::Int(Some(created)),
                    Val::Int(Some(created + SESSION_TTL_SECS)),
                ],
                tail: "",
            },
        ])
        .await?;
        Ok(id)
    }

    /// A live session of this account, as a reader sees it (the writes that act on it check
    /// it again in their transaction), so looking one up never waits for the writer.
    pub async fn session(&self, id: &str, account: i64) -> Result<Session, OpError> {
        let sql = format!("{SESSION_COLUMNS} WHERE id = $1");
        let row = on_db!(&self.db, |c| {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(c)
                .await?;
            row.map(|r| session_from_row(&r)).transpose()?
        });
        check(row, account)
    }

    /// Records an append to a sequential session: `blocks` cover the bytes from
    /// `offset - offset % 4 MiB` (the old rest plus the body) to `new_length`, all full but
    /// possibly the last, or, with `rest` given, all full and `rest` the bytes past them,
    /// which replace the row's.
    #[allow(clippy::too_many_arguments)]
    pub async fn append_sequential(
        &self,
        id: &str,
        account: i64,
        offset: u64,
        blocks: &[BlockHash],
        rest: bytes::Bytes,
        new_length: u64,
        close: bool,
    ) -> Result<(), OpError> {
        if new_length > MAX_FILE_SIZE {
            return Err(OpError::Session(SessionError::TooLarge));
        }
        if !rest.is_empty() && rest.len() as u64 != new_length % BS {
            return Err(OpError::Invalid(
                "a session's rest does not match its length".into(),
            ));
        }
        let (id, blocks) = (id.to_owned(), blocks.to_vec());
        let rest = (!rest.is_empty()).then(|| rest.to_vec());
        self.write_plain(move |tx| {
            Box::pin(async move {
                let id = id.as_str();
                let s = load(&mut tx.tx, id, account).await?;
                if s.concurrent {
                    return Err(OpError::Invalid("not a sequential session".into()));
                }
                if s.closed {
                    return Err(OpError::Session(SessionError::Closed));
                }
                if s.length != offset {
                    return Err(OpError::Session(SessionError::IncorrectOffset(s.length)));
                }
                let first = offset / BS;
                let full = (new_length / BS - first) as usize;
                let mut refs = RefDelta::default();
                for (i, h) in blocks.iter().take(full).enumerate() {
                    put_block(&mut tx.tx, id, first + i as u64, h, BS, &mut refs).await?;
                }
                let tail_len = new_length % BS;
                let tail = (tail_len > 0 && rest.is_none())
                    .then(|| blocks.get(full).copied())
                    .flatten();
                let tail_len = if tail.is_some() { tail_len } else { 0 };
                if let Some((old, _)) = s.tail {
                    refs.sub(&[old]);
                }
                refs.add(tail.as_slice());
                tx.refs(refs).await?;
                on_tx!(&mut tx.tx, |c| sqlx::query(
                    "UPDATE upload_sessions SET length = $1, tail = $2, tail_len = $3, \
                     tail_data = $4, closed = $5 WHERE id = $6",
                )
                .bind(new_length as i64)
                .bind(tail.map(|h| h.to_vec()))
                .bind(tail_len as i64)
                .bind(rest)
                .bind(close as i64)
                .bind(id)
                .execute(&mut *c)
                .await?
                .rows_affected());
                Ok(())
            })
        })
        .await
    }

    /// Records an append to a concurrent session at a 4 MiB-aligned offset.
    pub async fn append_concurrent(
        &self,
        id: &str,
        account: i64,
        offset: u64,
        blocks: &[BlockHash],
        len: u64,
        close: bool,
    ) -> Result<(), OpError> {
        if !offset.is_multiple_of(BS) {
            return Err(OpError::Session(SessionError::ConcurrentInvalidOffset));
        }
        if !close && !len.is_multiple_of(BS) {
            return Err(OpError::Session(SessionError::ConcurrentInvalidDataSize));
        }
        if offset + len > MAX_FILE_SIZE {
            return Err(OpError::Session(SessionError::TooLarge));
        }
        let (id, blocks) = (id.to_owned(), blocks.to_vec());
        self.write_plain(move |tx| {
            Box::pin(async move {
                let id = id.as_str();
                let s = load(&mut tx.tx, id, account).await?;
                if !s.concurrent {
                    return Err(OpError::Invalid("not a concurrent session".into()));
                }
                if s.closed && (close || offset + len > s.length) {
                    return Err(OpError::Session(SessionError::Closed));
                }
                let first = offset / BS;
                let mut refs = RefDelta::default();
                for (i, h) in blocks.iter().enumerate() {
                    let size = (len - i as u64 * BS).min(BS);
                    put_block(&mut tx.tx, id, first + i as u64, h, size, &mut refs).await?;
                }
                tx.refs(refs).await?;
                if close {
                    on_tx!(&mut tx.tx, |c| sqlx::query(
                        "UPDATE upload_sessions SET length = $1, closed = 1 WHERE id = $2"
                    )
                    .bind((offset + len) as i64)
                    .bind(id)
                    .execute(&mut *c)
                    .await?
                    .rows_affected());
                }
                Ok(())
            })
        })
        .await
    }

    /// Commits sessions as files in one transaction of the namespace, each entry on its own
    /// (a failing entry does not stop the others). With `require_closed`, open sessions fail
    /// with `not_closed` (finish_batch); otherwise a sequential session need not be closed.
    /// The bytes a sequential session keeps past its full blocks (empty when none).
    pub async fn session_rest(&self, id: &str) -> Result<bytes::Bytes, OpError> {
        let data: Option<Option<Vec<u8>>> = on_db!(&self.db, |c| sqlx::query_scalar(
            "SELECT tail_data FROM upload_sessions WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(c)
        .await?);
        Ok(data.flatten().map(bytes::Bytes::from).unwrap_or_default())
    }

    pub async fn finish_sessions(
        &self,
        ns: u64,
        account: i64,
        entries: Vec<Finish>,
        require_closed: bool,
    ) -> Result<Vec<Result<Entry, OpError>>, OpError> {
        let ids: Vec<String> = entries.iter().map(|f| f.session_id.clone()).collect();
        self.write(ns, move |tx| {
            Box::pin(async move {
                // Every session and block list of the batch in two reads, not two per entry.
                let mut sessions = load_many(&mut tx.tx, &ids).await?;
                let mut blocks = blocks_of_many(&mut tx.tx, &ids).await?;
                let inline: Vec<BlockHash> =
                    sessions.values().filter_map(|(.., s)| s.inline).collect();
                let stored = crate::small::small_present(&mut tx.tx, &inline).await?;
                let ctx = FinishCtx {
                    account,
                    require_closed,
                    stored: &stored,
                };
                let (out, finished) =
                    match fast_finish(tx, &ctx, &entries, &sessions, &blocks).await? {
                        Some(done) => done,
                        None => slow_finish(tx, &ctx, entries, &mut sessions, &mut blocks).await?,
                    };
                for chunk in finished.chunks(IN_CHUNK) {
                    let sql = format!(
                        "UPDATE upload_sessions SET finished = 1 WHERE id IN ({})",
                        placeholders(1, chunk.len())
                    );
                    on_tx!(&mut tx.tx, |c| {
                        let mut q = sqlx::query(crate::db::sql_for(&c, sql));
                        for id in chunk {
                            q = q.bind(id);
                        }
                        q.execute(&mut *c).await?.rows_affected()
                    });
                }
                Ok(out)
            })
        })
        .await
    }
}

/// Results of a batch, and the sessions it finished.
type Finished = (Vec<Result<Entry, OpError>>, Vec<String>);

/// What every entry of a finish is checked against.
struct FinishCtx<'a> {
    account: i64,
    require_closed: bool,
    /// Which of the batch's inline sessions' small blocks are stored.
    stored: &'a HashSet<BlockHash>,
}

/// Commits entries one by one, each in a savepoint, with the full write-mode rules.
async fn slow_finish(
    tx: &mut WriteTx,
    ctx: &FinishCtx<'_>,
    entries: Vec<Finish>,
    sessions: &mut HashMap<String, Loaded>,
    blocks: &mut HashMap<String, Vec<(i64, Vec<u8>)>>,
) -> Result<Finished, OpError> {
    let mut out = Vec::with_capacity(entries.len());
    let mut finished = Vec::new();
    for f in entries {
        // A session named twice is gone after its first commit (and only then).
        let loaded = sessions.get(&f.session_id).cloned();
        let list = blocks.get(&f.session_id).cloned().unwrap_or_default();
        let mark = tx.savepoint().await?;
        let id = f.session_id.clone();
        let r = finish_one(tx, ctx, f, loaded, list).await;
        if r.is_ok() {
            tx.release().await?;
            sessions.remove(&id);
            blocks.remove(&id);
            finished.push(id);
        } else {
            tx.rollback_to(mark).await?;
        }
        out.push(r);
    }
    Ok((out, finished))
}

/// Commits a whole batch with a few multi-row statements when every committable entry is a
/// new file at a free path under folders (existing or new) — the bulk-upload case. Decides
/// before writing anything; `None` sends the batch through [`slow_finish`].
async fn fast_finish(
    tx: &mut WriteTx,
    ctx: &FinishCtx<'_>,
    entries: &[Finish],
    sessions: &HashMap<String, Loaded>,
    blocks: &HashMap<String, Vec<(i64, Vec<u8>)>>,
) -> Result<Option<Finished>, OpError> {
    let mut seen = HashSet::new();
    if !entries.iter().all(|f| seen.insert(f.session_id.as_str())) {
        return Ok(None);
    }
    let mut results: Vec<Option<Result<Entry, OpError>>> = Vec::with_capacity(entries.len());
    let mut commits = Vec::new();
    for (i, f) in entries.iter().enumerate() {
        let loaded = sessions.get(&f.session_id).cloned();
        let list = blocks.get(&f.session_id).cloned().unwrap_or_default();
        match session_content(ctx, f, loaded, list) {
            Err(e) => results.push(Some(Err(e))),
            Ok((size, content)) => {
                if matches!(f.commit.mode, WriteMode::Update(_))
                    || is_disallowed_name(name_of(&f.commit.path))
                {
                    return Ok(None);
                }
                results.push(None);
                commits.push((i, size, content));
            }
        }
    }
    // Targets are distinct, none inside another, none live; their ancestors are folders or free.
    let targets: HashSet<String> = commits
        .iter()
        .map(|(i, ..)| lower(&entries[*i].commit.path))
        .collect();
    let mut above = BTreeSet::new();
    for (i, ..) in &commits {
        for a in ancestors(&entries[*i].commit.path) {
            above.insert(lower(a));
        }
    }
    if targets.len() != commits.len() || above.iter().any(|a| targets.contains(a)) {
        return Ok(None);
    }
    let wanted: Vec<String> = targets.iter().chain(above.iter()).cloned().collect();
    let live = tx.live_many(&wanted).await?;
    if targets.iter().any(|t| live.contains_key(t))
        || above
            .iter()
            .any(|a| live.get(a).is_some_and(|e| e.kind != Kind::Folder))
    {
        return Ok(None);
    }
    // Folders to create come just before the first file inside them, as sequential commits
    // would journal them.
    let mut displays: HashMap<String, String> =
        live.into_iter().map(|(k, e)| (k, e.path_display)).collect();
    let mut items = Vec::new();
    let mut file_at = Vec::with_capacity(commits.len());
    for (i, size, content) in commits {
        let path = &entries[i].commit.path;
        let mut parent = String::new();
        for a in ancestors(path) {
            let key = lower(a);
            if let Some(d) = displays.get(&key) {
                parent = d.clone();
                continue;
            }
            if is_disallowed_name(name_of(a)) {
                return Ok(None);
            }
            let d = format!("{parent}/{}", name_of(a));
            displays.insert(key, d.clone());
            items.push(NewItem::Folder(d.clone()));
            parent = d;
        }
        file_at.push((i, items.len()));
        items.push(NewItem::File {
            display: format!("{parent}/{}", name_of(path)),
            size,
            client_modified: entries[i].commit.client_modified.unwrap_or(tx.now),
            blocks: content,
        });
    }
    // Past a quota, some entries may still fit on their own: go one by one. Checked before
    // writing, so no savepoint (whose journal of changed pages costs) is needed.
    let added: u64 = items
        .iter()
        .map(|i| match i {
            NewItem::File { size, .. } => *size,
            NewItem::Folder(_) => 0,
        })
        .sum();
    if !tx.fits(added).await? {
        return Ok(None);
    }
    let written = tx.insert_tree(items).await?;
    let mut finished = Vec::with_capacity(file_at.len());
    for (i, at) in file_at {
        results[i] = Some(Ok(written[at].clone()));
        finished.push(entries[i].session_id.clone());
    }
    let out = results
        .into_iter()
        .map(|r| r.expect("every entry decided"))
        .collect();
    Ok(Some((out, finished)))
}

/// A new session id: the start time in microseconds (hex, fixed width), then 128 random
/// bits. Ids of sessions started together sort together, so a burst of starts, and the
/// finish that marks them, touch a few pages of the id index instead of one page each: 10,000
/// closed starts of 4 KiB took 10–25% less time than with ids of 256 random bits.
fn new_session_id() -> String {
    let micros = crate::now_micros();
    let random: [u8; 16] = random_bytes();
    format!(
        "pid_upload_session:{micros:014x}{}",
        cubby_core::hash::hex(&random)
    )
}

/// Ids per `IN (…)` list.
const IN_CHUNK: usize = 500;

/// A loaded session row: (owner, expires, finished, session).
type Loaded = (i64, i64, i64, Session);

fn session_from_row(r: &impl RowExt) -> Result<Loaded, sqlx::Error> {
    Ok((
        r.int("account")?,
        r.int("expires")?,
        r.int("finished")?,
        Session {
            id: r.text("id")?,
            concurrent: r.int("concurrent")? != 0,
            length: r.int("length")? as u64,
            closed: r.int("closed")? != 0,
            tail: r
                .opt_bytes("tail")?
                .and_then(hash_of)
                .map(|h| (h, r.int("tail_len").unwrap_or(0) as u64)),
            pending: r.int("pending")? as u64,
            inline: r.opt_bytes("data_hash")?.and_then(hash_of),
        },
    ))
}

const SESSION_COLUMNS: &str = "SELECT id, concurrent, length, closed, tail, tail_len, \
     CAST(COALESCE(length(tail_data), 0) AS BIGINT) AS pending, data_hash, expires, finished, account \
     FROM upload_sessions";

/// Sessions by id, as rows (whatever their owner or state; `check` decides).
async fn load_many(
    tx: &mut crate::db::Tx,
    ids: &[String],
) -> Result<HashMap<String, Loaded>, OpError> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(IN_CHUNK) {
        let sql = format!(
            "{SESSION_COLUMNS} WHERE id IN ({})",
            placeholders(1, chunk.len())
        );
        let rows: Vec<Loaded> = on_tx!(tx, |c| {
            let mut q = sqlx::query(crate::db::sql_for(&c, sql));
            for id in chunk {
                q = q.bind(id);
            }
            let rows = q.fetch_all(&mut *c).await?;
            rows.iter()
                .map(session_from_row)
                .collect::<Result<_, _>>()?
        });
        out.extend(rows.into_iter().map(|l| (l.3.id.clone(), l)));
    }
    Ok(out)
}

/// The stored full blocks of sessions, by session, in index order.
async fn blocks_of_many(
    tx: &mut crate::db::Tx,
    ids: &[String],
) -> Result<HashMap<String, Vec<(i64, Vec<u8>)>>, OpError> {
    let mut out: HashMap<String, Vec<(i64, Vec<u8>)>> = HashMap::new();
    for chunk in ids.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT session, idx, hash FROM upload_session_blocks WHERE session IN ({}) ORDER BY session, idx",
            placeholders(1, chunk.len())
        );
        let rows: Vec<(String, i64, Vec<u8>)> = on_tx!(tx, |c| {
            let mut q = sqlx::query(crate::db::sql_for(&c, sql));
            for id in chunk {
                q = q.bind(id);
            }
            let rows = q.fetch_all(&mut *c).await?;
            rows.iter()
                .map(|r| {
                    Ok::<_, sqlx::Error>((r.text("session")?, r.int("idx")?, r.bytes("hash")?))
                })
                .collect::<Result<_, _>>()?
        });
        for (session, idx, hash) in rows {
            out.entry(session).or_default().push((idx, hash));
        }
    }
    Ok(out)
}

/// A session this account may still use.
fn check(loaded: Option<Loaded>, account: i64) -> Result<Session, OpError> {
    match loaded {
        Some((owner, expires, finished, s))
            if owner == account && expires > now() && finished == 0 =>
        {
            Ok(s)
        }
        _ => Err(OpError::Session(SessionError::NotFound)),
    }
}

/// The size and block list a finish commits, or why the session cannot be finished.
fn session_content(
    ctx: &FinishCtx<'_>,
    f: &Finish,
    loaded: Option<Loaded>,
    rows: Vec<(i64, Vec<u8>)>,
) -> Result<(u64, Vec<BlockHash>), OpError> {
    let (account, require_closed) = (ctx.account, ctx.require_closed);
    let s = check(loaded, account)?;
    let err = |e| Err(OpError::Session(e));
    if s.concurrent && !s.closed {
        return err(SessionError::ConcurrentNotClosed);
    }
    if require_closed && !s.closed {
        return err(SessionError::NotClosed);
    }
    if f.offset != s.length {
        return err(SessionError::IncorrectOffset(s.length));
    }
    let expected_blocks = s.length.div_ceil(BS);
    let mut blocks = Vec::with_capacity(expected_blocks as usize);
    for (i, (idx, hash)) in rows.into_iter().enumerate() {
        if idx != i as i64 {
            return err(SessionError::ConcurrentMissingData);
        }
        blocks.push(hash_of(hash).ok_or_else(|| OpError::Invalid("corrupt block hash".into()))?);
    }
    if let Some((tail, _)) = s.tail {
        blocks.push(tail);
    }
    if s.pending > 0 {
        // Only an open session keeps a rest in its row (the last append, a closing one or a
        // finish's, writes it as the last block); a batch refuses an open session above, and a
        // finish's own append ran first, so this is a session an append changed meanwhile.
        return err(SessionError::IncorrectOffset(s.length));
    }
    if let Some(hash) = s.inline {
        // Its small block was written with the session, and the GC keeps it while the
        // session is unfinished; a block gone regardless is refused, never referenced.
        if !ctx.stored.contains(&hash) {
            return Err(OpError::Internal(crate::StoreError::Invalid(format!(
                "session {}: its small block is missing",
                s.id
            ))));
        }
        blocks.push(hash);
    }
    if blocks.len() as u64 != expected_blocks {
        return err(SessionError::ConcurrentMissingData);
    }
    Ok((s.length, blocks))
}

async fn finish_one(
    tx: &mut WriteTx,
    ctx: &FinishCtx<'_>,
    f: Finish,
    loaded: Option<Loaded>,
    rows: Vec<(i64, Vec<u8>)>,
) -> Result<Entry, OpError> {
    let (size, blocks) = session_content(ctx, &f, loaded, rows)?;
    let mut commit = f.commit;
    commit.size = size;
    commit.blocks = blocks;
    commit_file_op(tx, commit).await
}

/// Records block `idx` of a session, counting the reference it adds and the one it replaces.
async fn put_block(
    tx: &mut crate::db::Tx,
    id: &str,
    idx: u64,
    hash: &BlockHash,
    size: u64,
    refs: &mut RefDelta,
) -> Result<(), OpError> {
    let replaced: Option<Vec<u8>> = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT hash FROM upload_session_blocks WHERE session = $1 AND idx = $2",
    )
    .bind(id)
    .bind(idx as i64)
    .fetch_optional(&mut *c)
    .await?);
    if let Some(old) = replaced {
        refs.sub_blob(&old);
    }
    refs.add(std::slice::from_ref(hash));
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO upload_session_blocks (session, idx, hash, size) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (session, idx) DO UPDATE SET hash = excluded.hash, size = excluded.size",
    )
    .bind(id)
    .bind(idx as i64)
    .bind(hash.to_vec())
    .bind(size as i64)
    .execute(&mut *c)
    .await?
    .rows_affected());
    Ok(())
}

async fn load(tx: &mut crate::db::Tx, id: &str, account: i64) -> Result<Session, OpError> {
    let sql = format!("{SESSION_COLUMNS} WHERE id = $1");
    let row = on_tx!(tx, |c| {
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
        row.map(|r| session_from_row(&r)).transpose()?
    });
    check(row, account)
}
