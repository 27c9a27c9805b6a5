//! Async jobs (batch operations): their state and results live in the database, so a job
//! outlives its request, and any server answers a check.

use crate::db::{RowExt, on_db, on_tx};
use crate::{Store, StoreError, now, random_bytes};

/// A job that has not reported for this long is taken for lost with its server.
pub const JOB_STALE_SECS: i64 = 600;

/// Where a job is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    InProgress,
    /// The job's result, as the JSON the check route returns.
    Complete(String),
    /// The job's failure, as JSON.
    Failed(String),
}

impl Store {
    /// Registers a new job of an account.
    pub async fn create_job(&self, account: i64) -> Result<String, StoreError> {
        let id = format!("dbjid:{}", cubby_core::ids::token("", random_bytes()));
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "INSERT INTO jobs (id, account, status, created, updated) \
                 VALUES ($1, $2, 'in_progress', $3, $3)",
            )
            .bind(&id)
            .bind(account)
            .bind(now())
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        tx.commit(None).await?;
        Ok(id)
    }

    /// Records a job's outcome.
    /// Tells other servers a job is still being worked on.
    pub async fn touch_job(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE jobs SET updated = $1 WHERE id = $2 AND status = 'in_progress'"
        )
        .bind(now())
        .bind(id)
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit(None).await?;
        Ok(())
    }

    pub async fn finish_job(&self, id: &str, state: &JobState) -> Result<(), StoreError> {
        let (status, result) = match state {
            JobState::InProgress => ("in_progress", None),
            JobState::Complete(r) => ("complete", Some(r.as_str())),
            JobState::Failed(r) => ("failed", Some(r.as_str())),
        };
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE jobs SET status = $1, result = $2, updated = $3 WHERE id = $4"
        )
        .bind(status)
        .bind(result)
        .bind(now())
        .bind(id)
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit(None).await?;
        Ok(())
    }

    /// A job of this account; `None` if unknown. A job left in progress by a server that
    /// went away is reported failed.
    pub async fn job(&self, id: &str, account: i64) -> Result<Option<JobState>, StoreError> {
        on_db!(&self.db, |c| {
            let row = sqlx::query(
                "SELECT status, result, updated FROM jobs WHERE id = $1 AND account = $2",
            )
            .bind(id)
            .bind(account)
            .fetch_optional(c)
            .await?;
            let Some(r) = row else { return Ok(None) };
            let result = r.opt_text("result")?.unwrap_or_default();
            Ok(Some(match r.text("status")?.as_str() {
                "complete" => JobState::Complete(result),
                "failed" => JobState::Failed(result),
                _ if r.int("updated")? + JOB_STALE_SECS < now() => JobState::Failed(String::new()),
                _ => JobState::InProgress,
            }))
        })
    }
}

/// What consuming an upload link found.
#[derive(Debug, PartialEq, Eq)]
pub enum UploadLink {
    /// The link was valid and is now used: the namespace and the commit JSON it stored.
    Ready(u64, String),
    Missing,
    /// Expired or already used.
    Gone,
}

impl Store {
    /// Stores a one-time upload link for a commit (JSON chosen by the caller).
    pub async fn create_upload_link(
        &self,
        ns: u64,
        commit_json: &str,
        expires: i64,
    ) -> Result<String, StoreError> {
        let id = cubby_core::ids::token("", random_bytes());
        let mut tx = self.db.begin(None).await?;
        on_tx!(&mut tx, |c| sqlx::query(
            "INSERT INTO upload_links (id, ns, commit_json, expires) VALUES ($1, $2, $3, $4)",
        )
        .bind(&id)
        .bind(ns as i64)
        .bind(commit_json)
        .bind(expires)
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit(None).await?;
        Ok(id)
    }

    /// Takes an upload link for use: exactly one caller ever gets `Ready`.
    pub async fn consume_upload_link(&self, id: &str) -> Result<UploadLink, StoreError> {
        let mut tx = self.db.begin(None).await?;
        let taken = on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE upload_links SET used = 1 WHERE id = $1 AND used = 0 AND expires > $2",
        )
        .bind(id)
        .bind(now())
        .execute(&mut *c)
        .await?
        .rows_affected());
        let row = on_tx!(&mut tx, |c| {
            let row = sqlx::query("SELECT ns, commit_json FROM upload_links WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *c)
                .await?;
            row.map(|r| Ok::<_, sqlx::Error>((r.int("ns")? as u64, r.text("commit_json")?)))
                .transpose()?
        });
        tx.commit(None).await?;
        Ok(match row {
            None => UploadLink::Missing,
            Some((ns, json)) if taken == 1 => UploadLink::Ready(ns, json),
            Some(_) => UploadLink::Gone,
        })
    }
}
