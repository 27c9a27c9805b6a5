//! The two metadata back-ends behind one seam: SQLite (embedded) and PostgreSQL (scale-out).
//!
//! SQL is written once with `$N` placeholders, which both drivers accept. Each operation is
//! expanded for both back-ends by the `on_db!`/`on_tx!` macros, so no code is generic over
//! `sqlx::Database` (see rust-stack.md, pitfall 7). Dialect-specific statements (starting a
//! write transaction, DDL, notification) live in the few `match` arms of this module.

use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Postgres, Row, Sqlite, Transaction};

use crate::StoreError;

/// Readers in the SQLite pool; writes go through one dedicated connection.
const SQLITE_READERS: u32 = 8;

/// How long an SQLite connection waits for the write lock before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections per server in the PostgreSQL pool.
const PG_CONNECTIONS: u32 = 16;

/// How long a request waits for a PostgreSQL connection (covers a database restart).
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// PostgreSQL ends a session of ours that sat this long inside a transaction. Cubby sends a
/// transaction's statements back to back (block I/O happens before it begins), so one idle
/// this long belongs to a server that is gone or cut off, and it holds row locks (a
/// namespace's) that every other writer of that namespace waits on. Found by the torture
/// suite's fault stage: a connection gone silent mid-write blocked a namespace's writes until
/// a restart, since PostgreSQL keeps such a session until TCP keepalive gives up (hours).
const PG_IDLE_IN_TRANSACTION: &str = "60s";

/// Longest a write transaction on PostgreSQL may take, from `BEGIN` to commit, before the
/// request fails and its connection is dropped: far above any write Cubby makes (a
/// 1,000-entry finish_batch or the move of a large folder takes seconds), and what bounds
/// the wait of a request whose connection went silent (see [`PG_IDLE_IN_TRANSACTION`]).
pub(crate) const PG_WRITE_DEADLINE: Duration = Duration::from_secs(300);

/// The NOTIFY channel that carries `ns:seq` after every commit.
pub(crate) const NOTIFY_CHANNEL: &str = "cubby_ns";

/// A metadata database.
#[derive(Clone)]
pub(crate) enum Db {
    Sqlite {
        writer: SqlitePool,
        reader: SqlitePool,
    },
    Postgres {
        pool: PgPool,
    },
}

/// A write transaction on either back-end.
pub(crate) enum Tx {
    Sqlite(SqliteTx),
    Pg(Transaction<'static, Postgres>),
}

/// The SQLite writer connection, held between transactions by the group writer.
pub(crate) type Writer = PoolConnection<Sqlite>;

/// A write transaction on the SQLite writer connection. Unlike sqlx's `Transaction`, it hands
/// its connection back when it ends ([`Tx::commit_keep`]): returning a connection to the pool
/// costs a round trip to its worker thread (sqlx pings it), and taking it again another, which
/// was a quarter of the group writer's time per batch of small writes.
pub(crate) struct SqliteTx {
    conn: Option<Writer>,
}

impl SqliteTx {
    async fn begin(mut conn: Writer) -> Result<Self, StoreError> {
        // A failed BEGIN leaves no transaction open: the connection may go back to the pool.
        run(&mut conn, "BEGIN IMMEDIATE").await?;
        Ok(Self { conn: Some(conn) })
    }

    /// Ends the transaction with `COMMIT` or `ROLLBACK` and returns the connection.
    async fn end(mut self, commit: bool) -> Result<Writer, StoreError> {
        let mut conn = self
            .conn
            .take()
            .expect("an open transaction has its connection");
        if let Err(e) = run(&mut conn, if commit { "COMMIT" } else { "ROLLBACK" }).await {
            // The connection may still be inside the transaction: closing it undoes that.
            conn.close_on_drop();
            return Err(e);
        }
        Ok(conn)
    }
}

async fn run(conn: &mut SqliteConnection, sql: &'static str) -> Result<(), StoreError> {
    sqlx::query(sql).execute(conn).await?;
    Ok(())
}

impl std::ops::Deref for SqliteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        self.conn
            .as_ref()
            .expect("an open transaction has its connection")
    }
}

impl std::ops::DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.conn
            .as_mut()
            .expect("an open transaction has its connection")
    }
}

impl Drop for SqliteTx {
    /// A transaction dropped unfinished (an error, a panic, a request gone) is rolled back:
    /// its connection is closed instead of going back to the pool, and SQLite discards what a
    /// closed connection had not committed. The pool opens a new one when next asked.
    fn drop(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            conn.close_on_drop();
        }
    }
}

/// Runs `$body` with `$c` bound to a read executor of the active back-end:
/// `on_db!(&self.db, |c| body)`. The closure form is only syntax (it lets rustfmt format the
/// body): `body` is expanded once per back-end, in place, so `?` and `.await` in it act on
/// the enclosing function.
macro_rules! on_db {
    ($db:expr, |$c:ident| $body:expr) => {
        match $db {
            crate::db::Db::Sqlite { reader: $c, .. } => $body,
            crate::db::Db::Postgres { pool: $c } => $body,
        }
    };
}

/// Runs `$body` with `$c` bound to the connection of a write transaction:
/// `on_tx!(&mut tx, |c| body)`, expanded as [`on_db!`] is.
macro_rules! on_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx {
            crate::db::Tx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            crate::db::Tx::Pg(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

pub(crate) use {on_db, on_tx};

impl Db {
    /// Opens SQLite in `meta.sqlite` under `dir`: WAL, synchronous FULL, one writer.
    pub(crate) async fn open_sqlite(dir: &std::path::Path) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::new()
            .filename(dir.join("meta.sqlite"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a transaction acknowledged to a client survives power loss, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true);
        // No ping before each use: a local SQLite connection does not break the way a network
        // one does, and the ping is a round trip to the connection's worker thread, which
        // was a fifth of the server's CPU for a `get_metadata`.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(opts.clone())
            .await?;
        crate::schema::migrate_sqlite(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(SQLITE_READERS)
            .test_before_acquire(false)
            .connect_with(opts.read_only(true))
            .await?;
        Ok(Db::Sqlite { writer, reader })
    }

    /// Connects to PostgreSQL and applies its migrations.
    pub(crate) async fn open_postgres(url: &str) -> Result<Self, StoreError> {
        let options = url.parse::<sqlx::postgres::PgConnectOptions>()?.options([(
            "idle_in_transaction_session_timeout",
            PG_IDLE_IN_TRANSACTION,
        )]);
        let pool = PgPoolOptions::new()
            .max_connections(PG_CONNECTIONS)
            .acquire_timeout(PG_ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        crate::schema::migrate_postgres(&pool).await?;
        Ok(Db::Postgres { pool })
    }

    /// Starts a write transaction. With `ns`, writers of that namespace are serialized
    /// (SQLite: the database write lock; PostgreSQL: a row lock on the namespace), so the
    /// reads the transaction makes before writing cannot go stale.
    pub(crate) async fn begin(&self, ns: Option<u64>) -> Result<Tx, StoreError> {
        self.begin_on(None, ns).await
    }

    /// [`Db::begin`] on SQLite's writer connection if the caller holds it, else on one taken
    /// from the pool.
    pub(crate) async fn begin_on(
        &self,
        held: Option<Writer>,
        ns: Option<u64>,
    ) -> Result<Tx, StoreError> {
        match self {
            Db::Sqlite { writer, .. } => {
                let conn = match held {
                    Some(conn) => conn,
                    None => writer.acquire().await?,
                };
                Ok(Tx::Sqlite(SqliteTx::begin(conn).await?))
            }
            Db::Postgres { pool } => {
                let mut t = pool.begin().await?;
                if let Some(ns) = ns {
                    sqlx::query("SELECT seq FROM namespaces WHERE id = $1 FOR UPDATE")
                        .bind(ns as i64)
                        .execute(&mut *t)
                        .await?;
                }
                Ok(Tx::Pg(t))
            }
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            Db::Sqlite { writer, reader } => {
                reader.close().await;
                writer.close().await;
            }
            Db::Postgres { pool } => pool.close().await,
        }
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        on_db!(self, |c| sqlx::query("SELECT 1")
            .execute(c)
            .await
            .map(|_| ())?);
        Ok(())
    }

    /// (open, idle, maximum) connections of the pool that serves requests.
    pub(crate) fn pool_stats(&self) -> (u32, usize, u32) {
        match self {
            Db::Sqlite { reader, .. } => (reader.size(), reader.num_idle(), SQLITE_READERS),
            Db::Postgres { pool } => (pool.size(), pool.num_idle(), PG_CONNECTIONS),
        }
    }

    /// The PostgreSQL pool, for LISTEN.
    pub(crate) fn pg_pool(&self) -> Option<&PgPool> {
        match self {
            Db::Postgres { pool } => Some(pool),
            Db::Sqlite { .. } => None,
        }
    }

    /// Executes a statement outside a transaction, on the writer.
    pub(crate) async fn execute(
        &self,
        sql: &'static str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), StoreError> {
        match self {
            Db::Sqlite { writer, .. } => {
                sqlx::query(sql)
                    .bind(key)
                    .bind(value)
                    .execute(writer)
                    .await?;
            }
            Db::Postgres { pool } => {
                sqlx::query(sql).bind(key).bind(value).execute(pool).await?;
            }
        }
        Ok(())
    }
}

/// A value bound to a dynamically built statement.
pub(crate) enum Val {
    Int(Option<i64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

/// `$from, $from+1, …` for `n` parameters, as an `IN (…)` list needs.
pub(crate) fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Dynamic SQL text (built with [`placeholders`] or [`Tx::insert_rows`]) as the back-end
/// behind `c` binds it fastest. SQLite's driver finds each named parameter by a linear scan
/// of the statement's names, so binding a statement of `n` `$k` parameters costs `n²` steps
/// (900 parameters: milliseconds, most of a batch commit's CPU); anonymous `?` parameters
/// skip the scan. The text is rewritten only when its `$k` appear exactly as `$1, $2, …`
/// in order, which is when `?` binds the same values; any other text is left as it is.
pub(crate) fn sql_for<'c, E: sqlx::Executor<'c>>(
    _: &E,
    sql: String,
) -> sqlx::AssertSqlSafe<String> {
    if <E::Database as sqlx::Database>::NAME == "SQLite" {
        sqlx::AssertSqlSafe(anonymous_params(sql))
    } else {
        sqlx::AssertSqlSafe(sql)
    }
}

/// `sql` with `$1, $2, …` (in that order, each once) replaced by `?`; else `sql` unchanged.
fn anonymous_params(sql: String) -> String {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let (mut next, mut from, mut i) = (1usize, 0, 0);
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            // A literal may hold a `$`; parameters are never inside one.
            match sql[i + 1..].find('\'') {
                Some(end) => i += end + 2,
                None => return sql,
            }
            continue;
        }
        if bytes[i] == b'$' {
            let digits = bytes[i + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits == 0 || sql[i + 1..i + 1 + digits].parse::<usize>() != Ok(next) {
                return sql;
            }
            out.push_str(&sql[from..i]);
            out.push('?');
            next += 1;
            i += 1 + digits;
            from = i;
            continue;
        }
        i += 1;
    }
    out.push_str(&sql[from..]);
    out
}

/// Bound parameters per multi-row statement: under SQLite's historical limit of 999.
const MAX_PARAMS: usize = 900;

impl Tx {
    /// Inserts rows of `width` values with as few statements as the parameter limit allows:
    /// `head` is `INSERT INTO t (columns)`, `tail` what follows the values (`ON CONFLICT …`
    /// or nothing). Returns the number of rows affected.
    pub(crate) async fn insert_rows(
        &mut self,
        head: &str,
        width: usize,
        rows: Vec<Vec<Val>>,
        tail: &str,
    ) -> Result<u64, StoreError> {
        use std::fmt::Write;
        let per = (MAX_PARAMS / width).max(1);
        let mut affected = 0;
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<Vec<Val>> = rows.by_ref().take(per).collect();
            let mut sql = format!("{head} VALUES ");
            for r in 0..chunk.len() {
                sql.push_str(if r == 0 { "(" } else { ", (" });
                for c in 0..width {
                    let sep = if c == 0 { "" } else { ", " };
                    write!(sql, "{sep}${}", r * width + c + 1).expect("writing to a String");
                }
                sql.push(')');
            }
            sql.push(' ');
            sql.push_str(tail);
            affected += on_tx!(self, |c| {
                let mut q = sqlx::query(sql_for(&c, sql));
                for v in chunk.into_iter().flatten() {
                    q = match v {
                        Val::Int(x) => q.bind(x),
                        Val::Text(x) => q.bind(x),
                        Val::Blob(x) => q.bind(x),
                    };
                }
                q.execute(&mut *c).await?.rows_affected()
            });
        }
        Ok(affected)
    }

    /// Queues (PostgreSQL: delivered with the commit) the notification that makes every
    /// server look its cached access tokens up again; see [`crate::notify`]. The caller also
    /// calls `Notifier::auth_changed` for its own server.
    pub(crate) async fn notify_auth_changed(&mut self) -> Result<(), StoreError> {
        if let Tx::Pg(t) = self {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(NOTIFY_CHANNEL)
                .bind(crate::notify::AUTH_CHANGED)
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }

    /// Undoes the transaction, handing SQLite's writer connection back to the caller.
    pub(crate) async fn rollback_keep(self) -> Result<Option<Writer>, StoreError> {
        match self {
            Tx::Sqlite(t) => return t.end(false).await.map(Some),
            Tx::Pg(t) => t.rollback().await?,
        }
        Ok(None)
    }

    /// Commits; on PostgreSQL the `ns:seq` notification is queued first and delivered with
    /// the commit, so other servers wake their longpolls.
    pub(crate) async fn commit(self, notify: Option<(u64, u64)>) -> Result<(), StoreError> {
        self.commit_keep(notify).await.map(drop)
    }

    /// [`Tx::commit`], handing SQLite's writer connection back to the caller.
    pub(crate) async fn commit_keep(
        self,
        notify: Option<(u64, u64)>,
    ) -> Result<Option<Writer>, StoreError> {
        match self {
            Tx::Sqlite(t) => return t.end(true).await.map(Some),
            Tx::Pg(mut t) => {
                if let Some((ns, seq)) = notify {
                    sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(NOTIFY_CHANNEL)
                        .bind(format!("{ns}:{seq}"))
                        .execute(&mut *t)
                        .await?;
                }
                t.commit().await?
            }
        }
        Ok(None)
    }
}

/// Column access shared by both back-ends' rows.
pub(crate) trait RowExt {
    fn int(&self, col: &str) -> Result<i64, sqlx::Error>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error>;
    fn text(&self, col: &str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error>;
    fn bytes(&self, col: &str) -> Result<Vec<u8>, sqlx::Error>;
    fn opt_bytes(&self, col: &str) -> Result<Option<Vec<u8>>, sqlx::Error>;
}

macro_rules! impl_row_ext {
    ($row:ty) => {
        impl RowExt for $row {
            fn int(&self, col: &str) -> Result<i64, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(col)
            }
            fn text(&self, col: &str) -> Result<String, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
                self.try_get(col)
            }
            fn bytes(&self, col: &str) -> Result<Vec<u8>, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_bytes(&self, col: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
                self.try_get(col)
            }
        }
    };
}
impl_row_ext!(SqliteRow);
impl_row_ext!(PgRow);

#[cfg(test)]
mod tests {
    use super::anonymous_params;

    #[test]
    fn only_in_order_parameters_become_anonymous() {
        let a = |s: &str| anonymous_params(s.to_owned());
        assert_eq!(
            a("SELECT x FROM t WHERE a = $1 AND b IN ($2, $3)"),
            "SELECT x FROM t WHERE a = ? AND b IN (?, ?)"
        );
        assert_eq!(
            a("INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT DO NOTHING"),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) ON CONFLICT DO NOTHING"
        );
        // `?` would bind other values here: left as they are.
        for keep in [
            "SELECT $2, $1",
            "SELECT $1 WHERE a = $1",
            "SELECT $1, $3",
            "SELECT $x",
            "SELECT 'unterminated $1",
        ] {
            assert_eq!(a(keep), keep);
        }
        // A `$` inside a literal is not a parameter.
        assert_eq!(
            a("SELECT '$9', 'it''s $5' WHERE a = $1"),
            "SELECT '$9', 'it''s $5' WHERE a = ?"
        );
    }
}
