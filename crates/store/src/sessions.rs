//! Upload sessions: files larger than one request, appended in pieces and committed at the
//! end without reassembly.
//!
//! Session state lives in the metadata database, so any server can continue a session another
//! started, and a restart loses nothing. Blocks are written before any transaction (the
//! caller receives them); the transactions here only record which blocks a session holds.
//! Sequential sessions keep their full 4 MiB blocks plus one partial tail block, which the
//! next append extends; concurrent sessions keep 4 MiB-aligned blocks by index.

use cubby_core::hash::{BLOCK_SIZE, BlockHash};

use crate::db::{RowExt, on_tx};
use crate::meta::{Commit, Entry, OpError, WriteTx, commit_file_op};
use crate::{Store, now, random_bytes};

/// How long a session can be used after it starts, as on Dropbox.
pub const SESSION_TTL_SECS: i64 = 7 * 24 * 3600;

/// Largest file a session may build: Dropbox's 2^41 − 2^22 bytes.
pub const MAX_FILE_SIZE: u64 = (1 << 41) - (1 << 22);

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
    /// Sequential: the partial last block and its length.
    pub tail: Option<(BlockHash, u64)>,
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
        let id = format!(
            "pid_upload_session:{}",
            cubby_core::ids::token("", random_bytes())
        );
        let created = now();
        let row_id = id.clone();
        self.write_plain(move |tx| {
            Box::pin(async move {
                on_tx!(&mut tx.tx, c => sqlx::query(
                    "INSERT INTO upload_sessions (id, account, concurrent, created, expires) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&row_id)
                .bind(account)
                .bind(concurrent as i64)
                .bind(created)
                .bind(created + SESSION_TTL_SECS)
                .execute(&mut *c)
                .await?
                .rows_affected());
                Ok(())
            })
        })
        .await?;
        Ok(id)
    }

    /// Starts `n` sessions at once.
    pub async fn start_sessions(
        &self,
        account: i64,
        concurrent: bool,
        n: u32,
    ) -> Result<Vec<String>, OpError> {
        let mut ids = Vec::with_capacity(n as usize);
        for _ in 0..n {
            ids.push(self.start_session(account, concurrent).await?);
        }
        Ok(ids)
    }

    /// A live session of this account.
    pub async fn session(&self, id: &str, account: i64) -> Result<Session, OpError> {
        let mut tx = self.db.begin(None).await?;
        let s = load(&mut tx, id, account).await;
        tx.commit(None).await?;
        s
    }

    /// Records an append to a sequential session: `blocks` cover the bytes from
    /// `offset - offset % 4 MiB` (the old tail plus the body) to `new_length`, all full but
    /// possibly the last.
    pub async fn append_sequential(
        &self,
        id: &str,
        account: i64,
        offset: u64,
        blocks: &[BlockHash],
        new_length: u64,
        close: bool,
    ) -> Result<(), OpError> {
        if new_length > MAX_FILE_SIZE {
            return Err(OpError::Session(SessionError::TooLarge));
        }
        let (id, blocks) = (id.to_owned(), blocks.to_vec());
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
                for (i, h) in blocks.iter().take(full).enumerate() {
                    put_block(&mut tx.tx, id, first + i as u64, h, BS).await?;
                }
                let tail_len = new_length % BS;
                let tail = (tail_len > 0).then(|| blocks.get(full).copied()).flatten();
                on_tx!(&mut tx.tx, c => sqlx::query(
                    "UPDATE upload_sessions SET length = $1, tail = $2, tail_len = $3, closed = $4 WHERE id = $5",
                )
                .bind(new_length as i64)
                .bind(tail.map(|h| h.to_vec()))
                .bind(tail_len as i64)
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
                for (i, h) in blocks.iter().enumerate() {
                    let size = (len - i as u64 * BS).min(BS);
                    put_block(&mut tx.tx, id, first + i as u64, h, size).await?;
                }
                if close {
                    on_tx!(&mut tx.tx, c => sqlx::query("UPDATE upload_sessions SET length = $1, closed = 1 WHERE id = $2")
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
    pub async fn finish_sessions(
        &self,
        ns: u64,
        account: i64,
        entries: Vec<Finish>,
        require_closed: bool,
    ) -> Result<Vec<Result<Entry, OpError>>, OpError> {
        self.write(ns, move |tx| {
            Box::pin(async move {
                let mut out = Vec::with_capacity(entries.len());
                for f in entries {
                    stmt(tx, "SAVEPOINT entry").await?;
                    let r = finish_one(tx, account, f, require_closed).await;
                    if r.is_ok() {
                        stmt(tx, "RELEASE entry").await?;
                    } else {
                        stmt(tx, "ROLLBACK TO entry").await?;
                        stmt(tx, "RELEASE entry").await?;
                    }
                    out.push(r);
                }
                Ok(out)
            })
        })
        .await
    }
}

async fn stmt(tx: &mut WriteTx, sql: &'static str) -> Result<(), OpError> {
    on_tx!(&mut tx.tx, c => sqlx::query(sql).execute(&mut *c).await?.rows_affected());
    Ok(())
}

async fn finish_one(
    tx: &mut WriteTx,
    account: i64,
    f: Finish,
    require_closed: bool,
) -> Result<Entry, OpError> {
    let s = load(&mut tx.tx, &f.session_id, account).await?;
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
    let rows: Vec<(i64, Vec<u8>)> = on_tx!(&mut tx.tx, c => {
        let rows = sqlx::query("SELECT idx, hash FROM upload_session_blocks WHERE session = $1 ORDER BY idx")
            .bind(&f.session_id)
            .fetch_all(&mut *c)
            .await?;
        rows.iter()
            .map(|r| Ok::<_, sqlx::Error>((r.int("idx")?, r.bytes("hash")?)))
            .collect::<Result<_, _>>()?
    });
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
    if blocks.len() as u64 != expected_blocks {
        return err(SessionError::ConcurrentMissingData);
    }
    let mut commit = f.commit;
    commit.size = s.length;
    commit.blocks = blocks;
    let entry = commit_file_op(tx, commit).await?;
    on_tx!(&mut tx.tx, c => sqlx::query("UPDATE upload_sessions SET finished = 1 WHERE id = $1")
        .bind(&f.session_id)
        .execute(&mut *c)
        .await?
        .rows_affected());
    Ok(entry)
}

async fn put_block(
    tx: &mut crate::db::Tx,
    id: &str,
    idx: u64,
    hash: &BlockHash,
    size: u64,
) -> Result<(), OpError> {
    on_tx!(tx, c => sqlx::query(
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
    let row = on_tx!(tx, c => {
        let row = sqlx::query(
            "SELECT id, concurrent, length, closed, tail, tail_len, expires, finished, account \
             FROM upload_sessions WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *c)
        .await?;
        match row {
            None => None,
            Some(r) => Some((
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
                },
            )),
        }
    });
    match row {
        Some((owner, expires, finished, s))
            if owner == account && expires > now() && finished == 0 =>
        {
            Ok(s)
        }
        _ => Err(OpError::Session(SessionError::NotFound)),
    }
}
