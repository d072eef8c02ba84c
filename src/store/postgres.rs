//! The PostgreSQL backend: a deadpool of diesel-async `AsyncPgConnection`s,
//! migrations through a sync `PgConnection`, and the commit path.
//!
//! Recovery is the pool's job: every checkout first checks the connection
//! (`SELECT 1`), so connections that died with a restart or a dropped link
//! are thrown away and replaced by new ones; a query that fails because its
//! connection went away is `Unavailable`, and the session retries it. Every
//! operation has a deadline, so a database that stops answering becomes an
//! error rather than a commit that never returns.

use std::future::Future;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolableConnection,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use futures_util::future::BoxFuture;
use interview_actors::ports::{Batch, StoreError};

use super::commit_rows::{
    stored_audio, stored_events, CommitError, CommitRows, StoredEventKey, INSERT_CHUNK,
};
use super::models::InterviewDbRow;
use super::owners::FENCE;
use super::schema::{
    answer_audio, evaluations, interviews, proctor_events, session_events, transcript_entries,
};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Connections per store (per node).
const POOL_SIZE: usize = 16;
/// Opening or checking one connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One query or transaction, waiting for a connection included.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Advisory lock held while migrating, so nodes starting together take turns.
const MIGRATION_LOCK: i64 = 0x6976_6477_6d69_6772;
/// A transaction left idle this long is ended by the server: a frozen or
/// cut-off owner must not hold its fence lock (see `owners`) and so block
/// a takeover for longer. Far above a commit's gap between statements.
const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) type PgConn = Object<AsyncPgConnection>;

/// Applies pending migrations over a sync connection, blocking the calling
/// thread (diesel-async's async harness panics on actix's runtimes).
pub(super) fn migrate_blocking(url: &str) -> Result<Vec<String>, StoreError> {
    let mut conn = PgConnection::establish(url)
        .map_err(|e| StoreError::Unavailable(format!("connecting to PostgreSQL: {e}")))?;
    // Released when the connection closes, whatever happens below.
    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        .map_err(|e| StoreError::Unavailable(format!("taking the migration lock: {e}")))?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map_err(|e| StoreError::Query(format!("migrations: {e}")))?;
    Ok(applied.iter().map(|v| v.to_string()).collect())
}

/// The PostgreSQL connections of one store.
pub(super) struct PgDb {
    pool: Pool<AsyncPgConnection>,
}

impl PgDb {
    /// Migrates, then builds the pool (connections open on first use). Must
    /// run on the store's runtime: connections live on the runtime that
    /// opens them.
    pub async fn open(url: String) -> Result<PgDb, StoreError> {
        let migrate_url = url.clone();
        let applied = tokio::task::spawn_blocking(move || migrate_blocking(&migrate_url))
            .await
            .map_err(|e| StoreError::Unavailable(format!("migrating PostgreSQL: {e}")))??;
        if !applied.is_empty() {
            tracing::info!(migrations = ?applied, "applied PostgreSQL migrations");
        }
        let mut config = ManagerConfig::<AsyncPgConnection>::default();
        config.custom_setup = Box::new(|url| {
            let url = url.to_owned();
            Box::pin(async move {
                let mut conn = AsyncPgConnection::establish(&url).await?;
                conn.batch_execute(&format!(
                    "SET idle_in_transaction_session_timeout = {}",
                    IDLE_IN_TRANSACTION_TIMEOUT.as_millis()
                ))
                .await
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
                Ok(conn)
            })
        });
        let manager =
            AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool::Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .wait_timeout(Some(OPERATION_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Unavailable(format!("building the PostgreSQL pool: {e}")))?;
        Ok(PgDb { pool })
    }

    async fn conn(&self) -> Result<PgConn, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(format!("PostgreSQL: {e}")))
    }

    pub async fn writer(&self) -> Result<PgConn, StoreError> {
        self.conn().await
    }

    pub async fn reader(&self) -> Result<PgConn, StoreError> {
        self.conn().await
    }

    /// Inserts a new interview row.
    pub async fn insert_interview(&self, row: InterviewDbRow) -> Result<(), StoreError> {
        bounded(async {
            let mut conn = self.writer().await?;
            let inserted = diesel::insert_into(interviews::table)
                .values(&row)
                .execute(&mut conn)
                .await
                .map_err(super::queries::db_error);
            inserted.map(drop).map_err(|e| classify(&mut conn, e))
        })
        .await
    }

    /// Writes one batch durably (see `write`).
    pub async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let rows = CommitRows::new(batch)?;
        let id = rows.interview_id.clone();
        self.write(rows).await.map_err(|e| e.into_store_error(&id))
    }

    /// Writes one batch in one transaction with multi-row INSERTs, sent
    /// pipelined (one round trip for all of them). If that fails on a
    /// constraint, some of the batch may be stored already (a retry after a
    /// lost acknowledgement): a second transaction reads what is stored
    /// first and writes the rest, or reports the conflict.
    async fn write(&self, rows: CommitRows) -> Result<(), CommitError> {
        let run = async {
            let mut conn = self.writer().await.map_err(CommitError::Store)?;
            let fast = conn
                .transaction::<_, CommitError, _>(async |conn| write_pipelined(conn, &rows).await)
                .await;
            let result = match fast {
                Err(CommitError::Db(DieselError::DatabaseError(kind, _)))
                    if !conn.is_broken()
                        && !matches!(
                            kind,
                            DatabaseErrorKind::ClosedConnection
                                | DatabaseErrorKind::UnableToSendCommand
                        ) =>
                {
                    conn.transaction::<_, CommitError, _>(async move |conn| {
                        write_checked(conn, rows).await
                    })
                    .await
                }
                other => other,
            };
            match result {
                Err(CommitError::Db(e)) if conn.is_broken() => Err(CommitError::Store(
                    StoreError::Unavailable(format!("PostgreSQL connection lost: {e}")),
                )),
                other => other,
            }
        };
        match tokio::time::timeout(OPERATION_TIMEOUT, run).await {
            Ok(result) => result,
            Err(_) => Err(CommitError::Store(timed_out())),
        }
    }
}

/// Runs one store operation with the deadline every PostgreSQL operation has.
/// Dropping a tokio-postgres query is safe (unlike SQLite's wrapper): the
/// connection is discarded by the pool if it was left mid-transaction.
pub(super) async fn bounded<T>(
    op: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(OPERATION_TIMEOUT, op)
        .await
        .unwrap_or_else(|_| Err(timed_out()))
}

fn timed_out() -> StoreError {
    StoreError::Unavailable(format!(
        "PostgreSQL did not answer within {} s",
        OPERATION_TIMEOUT.as_secs()
    ))
}

/// A failed query whose connection is now closed failed because the database
/// went away (a restart, a dropped link), whatever the error says.
pub(super) fn classify(conn: &mut AsyncPgConnection, e: StoreError) -> StoreError {
    match e {
        StoreError::Query(m) if conn.is_broken() => StoreError::Unavailable(m),
        e => e,
    }
}

/// Every write of the batch, sent without waiting for each answer (the
/// server still runs them in order), behind the fence when the batch has an
/// epoch: a fenced batch's writes ran but roll back with the transaction.
/// `NoInterview` if the row is missing.
async fn write_pipelined(
    conn: &mut AsyncPgConnection,
    rows: &CommitRows,
) -> Result<(), CommitError> {
    let conn: &AsyncPgConnection = conn;
    let mut writes: Vec<BoxFuture<'_, QueryResult<usize>>> = Vec::new();
    if let Some(epoch) = rows.epoch {
        writes.push(
            diesel::sql_query(FENCE)
                .bind::<diesel::sql_types::Text, _>(&rows.interview_id)
                .bind::<diesel::sql_types::BigInt, _>(epoch)
                .execute(&mut &*conn),
        );
    }
    for chunk in rows.events.chunks(INSERT_CHUNK) {
        writes.push(
            diesel::insert_into(session_events::table)
                .values(chunk)
                .execute(&mut &*conn),
        );
    }
    for chunk in rows.transcript.chunks(INSERT_CHUNK) {
        writes.push(
            diesel::insert_into(transcript_entries::table)
                .values(chunk)
                .execute(&mut &*conn),
        );
    }
    for chunk in rows.proctor.chunks(INSERT_CHUNK) {
        writes.push(
            diesel::insert_into(proctor_events::table)
                .values(chunk)
                .execute(&mut &*conn),
        );
    }
    for chunk in rows.evaluations.chunks(INSERT_CHUNK) {
        writes.push(
            diesel::insert_into(evaluations::table)
                .values(chunk)
                .execute(&mut &*conn),
        );
    }
    for chunk in rows.audio.chunks(16) {
        writes.push(
            diesel::insert_into(answer_audio::table)
                .values(chunk)
                .execute(&mut &*conn),
        );
    }
    if let Some(update) = &rows.update {
        writes.push(
            diesel::update(interviews::table.find(&rows.interview_id))
                .set(update)
                .execute(&mut &*conn),
        );
    }
    let counts = futures_util::future::try_join_all(writes).await?;
    if let Some(epoch) = rows.epoch {
        if <[usize]>::first(&counts) != Some(&1) {
            return Err(CommitError::Fenced { epoch });
        }
    }
    if rows.update.is_some() && counts.last() == Some(&0) {
        return Err(CommitError::NoInterview);
    }
    Ok(())
}

/// One statement at a time, reading the stored head of the batch first (see
/// `commit_rows`).
async fn write_checked(
    conn: &mut AsyncPgConnection,
    mut rows: CommitRows,
) -> Result<(), CommitError> {
    if let Some(epoch) = rows.epoch {
        let owned = diesel::sql_query(FENCE)
            .bind::<diesel::sql_types::Text, _>(&rows.interview_id)
            .bind::<diesel::sql_types::BigInt, _>(epoch)
            .execute(conn)
            .await?;
        if owned != 1 {
            return Err(CommitError::Fenced { epoch });
        }
    }
    if let Some((min, max)) = rows.seq_range() {
        let stored: Vec<StoredEventKey> = stored_events(&rows.interview_id, min, max)
            .load(conn)
            .await?;
        if rows.skip_committed(&stored)? > 0 && !rows.audio.is_empty() {
            let audio = stored_audio(&rows.interview_id).load(conn).await?;
            rows.skip_stored_audio(&audio);
        }
    }
    for chunk in rows.events.chunks(INSERT_CHUNK) {
        diesel::insert_into(session_events::table)
            .values(chunk)
            .execute(conn)
            .await?;
    }
    for chunk in rows.transcript.chunks(INSERT_CHUNK) {
        diesel::insert_into(transcript_entries::table)
            .values(chunk)
            .execute(conn)
            .await?;
    }
    for chunk in rows.proctor.chunks(INSERT_CHUNK) {
        diesel::insert_into(proctor_events::table)
            .values(chunk)
            .execute(conn)
            .await?;
    }
    for chunk in rows.evaluations.chunks(INSERT_CHUNK) {
        diesel::insert_into(evaluations::table)
            .values(chunk)
            .execute(conn)
            .await?;
    }
    for chunk in rows.audio.chunks(16) {
        diesel::insert_into(answer_audio::table)
            .values(chunk)
            .execute(conn)
            .await?;
    }
    if let Some(update) = &rows.update {
        let updated = diesel::update(interviews::table.find(&rows.interview_id))
            .set(update)
            .execute(conn)
            .await?;
        if updated == 0 {
            return Err(CommitError::NoInterview);
        }
    }
    Ok(())
}
