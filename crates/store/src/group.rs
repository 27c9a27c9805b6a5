//! Group commit for the embedded (SQLite) back-end.
//!
//! SQLite has one writer, and each transaction costs a WAL fsync, so one transaction per
//! request caps writes at roughly one per fsync. Here a single writer task takes every write
//! operation waiting in its queue, runs them one after another in one transaction, each
//! inside its own SAVEPOINT (a refused or failed operation rolls back alone), and commits
//! once. Results are handed back only after that commit, so a caller never sees a write that
//! is not durable. An operation alone in its batch, or inserts with no operation beside
//! them, need no savepoint: on failure the transaction is rolled back whole.
//!
//! A write that is a few rows appended to tables and depends on nothing (a new upload
//! session, and the small block it holds) is a list of [`Insert`]s: every insert of a batch
//! into the same table becomes one multi-row statement, so it costs the writer no statement
//! of its own.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use crate::db::{Db, Val, on_tx};
use crate::meta::{OpError, WriteOp, WriteTx};
use crate::notify::Notifier;
use crate::refs::Gone;
use crate::{StoreError, now};

/// Most operations in one transaction: bounds the latency a batch adds to its first member.
const MAX_BATCH: usize = 128;

/// Longest the writer keeps SQLite's one write connection across batches, while writes keep
/// coming, before handing it back to the pool for a turn of the transactions outside the group.
const MAX_HOLD: Duration = Duration::from_millis(20);

/// Operations waiting for the writer.
const QUEUE_DEPTH: usize = 4096;

/// What a finished operation reports to the writer, and how to deliver its result.
struct Outcome {
    ok: bool,
    /// Sends the operation's result, or the commit's error if the batch failed to commit.
    deliver: Box<dyn FnOnce(Option<String>) + Send>,
}

type Run = Box<dyn FnOnce(WriteTx) -> BoxFuture<'static, (WriteTx, Outcome)> + Send>;

/// A row to append: `head` is `INSERT INTO t (columns)`, `row` its values, `tail` what
/// follows the values (an `ON CONFLICT` clause, or nothing).
pub(crate) struct Insert {
    pub(crate) head: &'static str,
    pub(crate) row: Vec<Val>,
    pub(crate) tail: &'static str,
}

/// Rows to append, and where to send the result.
type Inserts = (Vec<Insert>, oneshot::Sender<Result<(), OpError>>);

enum Work {
    Op(Run),
    Insert(Inserts),
}

struct Job {
    ns: u64,
    work: Work,
}

/// The queue in front of the writer task.
pub(crate) struct GroupCommit {
    jobs: mpsc::Sender<Job>,
}

impl GroupCommit {
    pub(crate) fn start(db: Db, notifier: Arc<Notifier>, gone: Gone) -> Self {
        let (jobs, rx) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(writer(db, notifier, gone, rx));
        Self { jobs }
    }

    /// Runs `op` in the next batch and returns its result once the batch committed.
    pub(crate) async fn submit<T, F>(&self, ns: u64, op: F) -> Result<T, OpError>
    where
        T: Send + 'static,
        F: WriteOp<T>,
    {
        let (reply, result) = oneshot::channel::<Result<T, OpError>>();
        let run: Run = Box::new(move |mut tx: WriteTx| {
            Box::pin(async move {
                let r = op(&mut tx).await;
                let ok = r.is_ok();
                let deliver = Box::new(move |commit_error: Option<String>| {
                    let _ = reply.send(match commit_error {
                        None => r,
                        Some(e) => Err(OpError::Internal(StoreError::Invalid(e))),
                    });
                });
                (tx, Outcome { ok, deliver })
            })
        });
        self.enqueue(Job {
            ns,
            work: Work::Op(run),
        })?;
        result.await.map_err(|_| not_committed())?
    }

    /// Appends rows in the next batch, beside the batch's other rows for the same tables,
    /// and returns once the batch committed.
    pub(crate) async fn insert(&self, rows: Vec<Insert>) -> Result<(), OpError> {
        let (reply, result) = oneshot::channel();
        self.enqueue(Job {
            ns: 0,
            work: Work::Insert((rows, reply)),
        })?;
        result.await.map_err(|_| not_committed())?
    }

    fn enqueue(&self, job: Job) -> Result<(), OpError> {
        // A full queue is backpressure: the caller is told to retry later, not made to wait
        // behind thousands of writes.
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => OpError::TooManyWrites,
            mpsc::error::TrySendError::Closed(_) => stopped(),
        })
    }
}

fn stopped() -> OpError {
    OpError::Internal(StoreError::Invalid("the writer stopped".into()))
}

/// The writer dropped a job's reply: its batch could not run (the database refused to start
/// or finish the transaction, as on a full disk; the writer logged why).
fn not_committed() -> OpError {
    OpError::Internal(StoreError::Invalid(
        "the write was not committed: the database failed (the server log says why)".into(),
    ))
}

/// Writes a batch's inserts, one multi-row statement per table and tail (and per parameter
/// limit), inside a savepoint if `guarded` (otherwise the caller rolls the transaction back
/// if one failed): if one fails, none of them is written, and each is told why. Also
/// returns whether one failed.
async fn write_inserts(
    tx: &mut crate::db::Tx,
    inserts: Vec<Inserts>,
    guarded: bool,
) -> Result<(Vec<Outcome>, bool), sqlx::Error> {
    type Statement = (&'static str, &'static str, usize, Vec<Vec<Val>>);
    let mut statements: Vec<Statement> = Vec::new();
    let mut replies = Vec::with_capacity(inserts.len());
    for (rows, reply) in inserts {
        for insert in rows {
            let same = |s: &&mut Statement| s.0 == insert.head && s.1 == insert.tail;
            match statements.iter_mut().find(same) {
                Some((.., rows)) => rows.push(insert.row),
                None => {
                    statements.push((insert.head, insert.tail, insert.row.len(), vec![insert.row]))
                }
            }
        }
        replies.push(reply);
    }
    if guarded {
        statement(tx, "SAVEPOINT ins").await?;
    }
    let mut failure = None;
    for (head, tail, width, rows) in statements {
        if let Err(e) = tx.insert_rows(head, width, rows, tail).await {
            failure = Some(e.to_string());
            break;
        }
    }
    if guarded {
        if failure.is_some() {
            statement(tx, "ROLLBACK TO ins").await?;
        }
        statement(tx, "RELEASE ins").await?;
    }
    let failed = failure.is_some();
    let outcomes = replies
        .into_iter()
        .map(|reply| {
            let failure = failure.clone();
            Outcome {
                ok: failure.is_none(),
                deliver: Box::new(move |commit_error: Option<String>| {
                    let e = failure.or(commit_error);
                    let _ = reply.send(match e {
                        None => Ok(()),
                        Some(e) => Err(OpError::Internal(StoreError::Invalid(e))),
                    });
                }),
            }
        })
        .collect();
    Ok((outcomes, failed))
}

async fn statement(tx: &mut crate::db::Tx, sql: &'static str) -> Result<(), sqlx::Error> {
    on_tx!(tx, |c| sqlx::query(sql).execute(&mut *c).await.map(|_| ()))
}

async fn writer(db: Db, notifier: Arc<Notifier>, gone: Gone, mut rx: mpsc::Receiver<Job>) {
    // The writer connection, kept from one batch to the next while writes wait, and since when.
    let mut held = None;
    let mut since: Option<Instant> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut tx = match db.begin_on(held.take(), None).await {
            Ok(tx) => Some(tx),
            Err(e) => {
                // Dropping the jobs drops their reply channels: each caller gets an error.
                tracing::error!(error = %e, "cannot start a write transaction");
                continue;
            }
        };
        let now = now();
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut wakeups = Vec::new();
        let mut aborted = None;
        let mut inserts = Vec::new();
        let mut ops = Vec::with_capacity(batch.len());
        for job in batch {
            match job.work {
                Work::Op(run) => ops.push((job.ns, run)),
                Work::Insert(rows) => inserts.push(rows),
            }
        }
        // Savepoints only where the batch holds more than one part (an operation each, and
        // the inserts together): a part alone that fails rolls the transaction back whole.
        // Pages changed inside a savepoint are copied to the statement journal first, which
        // cost a 1,000-file batch finish about a tenth of its time.
        let guarded = ops.len() + usize::from(!inserts.is_empty()) > 1;
        let mut discard = false;
        for (ns, run) in ops {
            let Some(mut open) = tx.take() else { break };
            if aborted.is_some() {
                tx = Some(open);
                break;
            }
            if guarded && let Err(e) = statement(&mut open, "SAVEPOINT op").await {
                aborted = Some(e.to_string());
                tx = Some(open);
                break;
            }
            let wtx = WriteTx {
                tx: open,
                ns,
                seq: None,
                idx: 0,
                now,
                gone: gone.clone(),
            };
            match AssertUnwindSafe(run(wtx)).catch_unwind().await {
                Ok((wtx, outcome)) => {
                    if outcome.ok
                        && let Some(seq) = wtx.seq
                    {
                        wakeups.push((wtx.ns, seq));
                    }
                    let mut open = wtx.tx;
                    let end = if !guarded {
                        discard = !outcome.ok;
                        Ok(())
                    } else if outcome.ok {
                        statement(&mut open, "RELEASE op").await
                    } else {
                        match statement(&mut open, "ROLLBACK TO op").await {
                            Ok(()) => statement(&mut open, "RELEASE op").await,
                            Err(e) => Err(e),
                        }
                    };
                    tx = Some(open);
                    if let Err(e) = end {
                        aborted = Some(e.to_string());
                    }
                    outcomes.push(outcome);
                }
                Err(_) => {
                    // The transaction went down with the panicking operation: nothing of this
                    // batch is committed, and every member is told so.
                    tracing::error!("a write operation panicked; its batch is rolled back");
                    for o in outcomes.drain(..) {
                        (o.deliver)(Some("a write in the same batch failed; retry".into()));
                    }
                    wakeups.clear();
                    tx = db.begin(None).await.ok();
                }
            }
        }
        // Inserts depend on nothing another write of the batch does, so they go last.
        if !inserts.is_empty() {
            match (&aborted, tx.as_mut()) {
                (None, Some(open)) => match write_inserts(open, inserts, guarded).await {
                    Ok((done, failed)) => {
                        outcomes.extend(done);
                        discard |= !guarded && failed;
                    }
                    Err(e) => aborted = Some(e.to_string()),
                },
                // Dropping the replies tells each caller the write failed.
                _ => drop(inserts),
            }
        }
        let ended = match (aborted, tx) {
            (Some(e), _) => Err(e),
            (None, Some(open)) if discard => open.rollback_keep().await.map_err(|e| e.to_string()),
            (None, Some(open)) => open.commit_keep(None).await.map_err(|e| e.to_string()),
            (None, None) => Err("the write transaction could not be restarted".into()),
        };
        let commit_error = match ended {
            Ok(conn) => {
                held = conn;
                None
            }
            Err(e) => Some(e),
        };
        if commit_error.is_none() {
            for (ns, seq) in wakeups {
                notifier.publish(ns, seq);
            }
        } else {
            tracing::error!(error = ?commit_error, "group commit failed");
        }
        for o in outcomes {
            let err = if o.ok { commit_error.clone() } else { None };
            (o.deliver)(err);
        }
        // Back to the pool when no write waits, or after a while under a steady stream of
        // writes, so that the transactions outside the group (GC, accounts) get their turn.
        if held.is_none()
            || rx.is_empty()
            || since.get_or_insert_with(Instant::now).elapsed() > MAX_HOLD
        {
            held = None;
            since = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn setting(key: &str) -> Insert {
        Insert {
            head: "INSERT INTO settings (key, value)",
            row: vec![Val::Text(Some(key.into())), Val::Blob(Some(vec![1]))],
            tail: "",
        }
    }

    async fn has(store: &Store, key: &str) -> bool {
        crate::db::on_db!(&store.db, |c| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM settings WHERE key = $1",
        )
        .bind(key)
        .fetch_one(c)
        .await
        .unwrap())
            == 1
    }

    #[tokio::test]
    async fn inserts_share_a_statement_and_fail_without_the_batch_s_other_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        // Many rows at once, most in shared statements, all committed.
        let keys: Vec<String> = (0..300).map(|i| format!("k{i}")).collect();
        let results = futures_util::future::join_all(
            keys.iter().map(|k| store.insert_plain(vec![setting(k)])),
        )
        .await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        for k in &keys {
            assert!(has(&store, k).await, "{k}");
        }
        // A failing insert (a key taken) fails, beside an operation that commits.
        let op = store.write_plain(|tx| {
            Box::pin(async move {
                put(&mut tx.tx, "op").await?;
                Ok(())
            })
        });
        let (dup, op) = tokio::join!(store.insert_plain(vec![setting("k0")]), op);
        assert!(dup.is_err());
        op.unwrap();
        assert!(has(&store, "op").await);
        // The writer goes on.
        store.insert_plain(vec![setting("after")]).await.unwrap();
        assert!(has(&store, "after").await);
    }

    #[tokio::test]
    async fn an_operation_alone_in_its_batch_that_fails_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let failing = store.write_plain(|tx| {
            Box::pin(async move {
                put(&mut tx.tx, "half").await?;
                Err::<(), _>(OpError::Invalid("refused after a write".into()))
            })
        });
        assert!(failing.await.is_err());
        assert!(!has(&store, "half").await);
        // The writer goes on, and commits the next one.
        store.insert_plain(vec![setting("next")]).await.unwrap();
        assert!(has(&store, "next").await);
        // Inserts alone whose second statement fails (a key taken) leave the first one's row
        // out too.
        let taken = Insert {
            head: "INSERT INTO settings (value, key)",
            row: vec![Val::Blob(Some(vec![2])), Val::Text(Some("next".into()))],
            tail: "",
        };
        let dup = store.insert_plain(vec![setting("first"), taken]).await;
        assert!(dup.is_err());
        assert!(!has(&store, "first").await);
        store.insert_plain(vec![setting("first")]).await.unwrap();
        assert!(has(&store, "first").await);
    }

    /// Writes the `settings` row `key` in `tx`.
    async fn put(tx: &mut crate::db::Tx, key: &str) -> Result<u64, StoreError> {
        tx.insert_rows(
            "INSERT INTO settings (key, value)",
            2,
            vec![setting(key).row],
            "",
        )
        .await
    }

    async fn put_directly(store: &Store, key: &str) -> Result<(), StoreError> {
        let mut tx = store.db.begin(None).await?;
        put(&mut tx, key).await?;
        tx.commit(None).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_outside_the_group_gets_the_writer_during_a_stream_of_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).await.unwrap());
        // More writers than a batch holds: the queue is never empty, so the group writer
        // keeps the connection from batch to batch, up to MAX_HOLD.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut streams = Vec::new();
        for w in 0..3 * MAX_BATCH {
            let (store, stop) = (store.clone(), stop.clone());
            streams.push(tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    store
                        .insert_plain(vec![setting(&format!("s{w}-{n}"))])
                        .await
                        .unwrap();
                    n += 1;
                }
                n
            }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let t = Instant::now();
        let direct = tokio::time::timeout(Duration::from_secs(5), put_directly(&store, "direct"))
            .await
            .expect("a direct transaction waited for the stream of writes to end");
        direct.unwrap();
        let waited = t.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut written = 0;
        for s in streams {
            written += s.await.unwrap();
        }
        assert!(has(&store, "direct").await);
        assert!(written > 0);
        eprintln!("direct write waited {waited:?} beside {written} group writes");
    }

    #[tokio::test]
    async fn a_transaction_dropped_unfinished_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let mut tx = store.db.begin(None).await.unwrap();
        put(&mut tx, "dropped").await.unwrap();
        drop(tx);
        // The next transaction starts (the dropped one is not left open on a pooled
        // connection), and the dropped one's row is not there.
        put_directly(&store, "kept").await.unwrap();
        store.insert_plain(vec![setting("grouped")]).await.unwrap();
        assert!(!has(&store, "dropped").await);
        assert!(has(&store, "kept").await);
        assert!(has(&store, "grouped").await);
    }
}
