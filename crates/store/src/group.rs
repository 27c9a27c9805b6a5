//! Group commit for the embedded (SQLite) back-end.
//!
//! SQLite has one writer, and each transaction costs a WAL fsync, so one transaction per
//! request caps writes at roughly one per fsync. Here a single writer task takes every write
//! operation waiting in its queue, runs them one after another in one transaction, each
//! inside its own SAVEPOINT (a refused or failed operation rolls back alone), and commits
//! once. Results are handed back only after that commit, so a caller never sees a write that
//! is not durable.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use crate::db::{Db, on_tx};
use crate::meta::{OpError, WriteOp, WriteTx};
use crate::notify::Notifier;
use crate::refs::Gone;
use crate::{StoreError, now};

/// Most operations in one transaction: bounds the latency a batch adds to its first member.
const MAX_BATCH: usize = 128;

/// Operations waiting for the writer.
const QUEUE_DEPTH: usize = 4096;

/// What a finished operation reports to the writer, and how to deliver its result.
struct Outcome {
    ok: bool,
    /// Sends the operation's result, or the commit's error if the batch failed to commit.
    deliver: Box<dyn FnOnce(Option<String>) + Send>,
}

type Run = Box<dyn FnOnce(WriteTx) -> BoxFuture<'static, (WriteTx, Outcome)> + Send>;

struct Job {
    ns: u64,
    run: Run,
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
        let gone = || OpError::Internal(StoreError::Invalid("the writer stopped".into()));
        // A full queue is backpressure: the caller is told to retry later, not made to wait
        // behind thousands of writes.
        self.jobs.try_send(Job { ns, run }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => OpError::TooManyWrites,
            mpsc::error::TrySendError::Closed(_) => gone(),
        })?;
        result.await.map_err(|_| gone())?
    }
}

async fn statement(tx: &mut crate::db::Tx, sql: &'static str) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query(sql).execute(&mut *c).await.map(|_| ()))
}

async fn writer(db: Db, notifier: Arc<Notifier>, gone: Gone, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut tx = match db.begin(None).await {
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
        for job in batch {
            let Some(mut open) = tx.take() else { break };
            if aborted.is_some() {
                tx = Some(open);
                break;
            }
            if let Err(e) = statement(&mut open, "SAVEPOINT op").await {
                aborted = Some(e.to_string());
                tx = Some(open);
                break;
            }
            let wtx = WriteTx {
                tx: open,
                ns: job.ns,
                seq: None,
                idx: 0,
                now,
                gone: gone.clone(),
            };
            match AssertUnwindSafe((job.run)(wtx)).catch_unwind().await {
                Ok((wtx, outcome)) => {
                    if outcome.ok
                        && let Some(seq) = wtx.seq
                    {
                        wakeups.push((wtx.ns, seq));
                    }
                    let mut open = wtx.tx;
                    let end = if outcome.ok {
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
        let commit_error = match (aborted, tx) {
            (Some(e), _) => Some(e),
            (None, Some(open)) => open.commit(None).await.err().map(|e| e.to_string()),
            (None, None) => Some("the write transaction could not be restarted".into()),
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
    }
}
