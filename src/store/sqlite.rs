//! The embedded SQLite backend: URL parsing, connection setup, migrations.
//!
//! One writer and one reader connection (SQLite has a single writer; WAL lets
//! the reader run beside it). Both are diesel-async `SyncConnectionWrapper`s,
//! which must be created on the store's own multi-thread runtime: the wrapper
//! binds to the runtime it is created on and uses `spawn_blocking` there.

use std::path::PathBuf;
use std::sync::Arc;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use interview_actors::ports::StoreError;
use tokio::sync::{mpsc, oneshot, Mutex, MutexGuard};

use super::commit_rows::{CommitError, CommitRows, StoredEventKey};
use super::schema::{
    answer_audio, evaluations, interviews, proctor_events, session_events, transcript_entries,
};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// How long a statement waits for SQLite's write lock before failing.
const BUSY_TIMEOUT_MS: u32 = 5_000;

pub(super) type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

/// Where the database lives, from `sqlite://rel.db`, `sqlite:///abs.db` or
/// `sqlite::memory:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SqliteTarget {
    File(PathBuf),
    Memory,
}

impl SqliteTarget {
    pub fn parse(url: &str) -> Option<SqliteTarget> {
        let rest = url.strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let rest = rest.split('?').next().unwrap_or_default();
        match rest {
            "" => None,
            ":memory:" => Some(SqliteTarget::Memory),
            path => Some(SqliteTarget::File(PathBuf::from(path))),
        }
    }

    fn connection_string(&self) -> String {
        match self {
            SqliteTarget::File(p) => p.to_string_lossy().into_owned(),
            SqliteTarget::Memory => ":memory:".to_owned(),
        }
    }
}

/// Opens one sync connection with the pragmas every connection needs.
fn connect(target: &SqliteTarget, read_only: bool) -> Result<SqliteConnection, StoreError> {
    if let SqliteTarget::File(path) = target {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Unavailable(format!("creating {}: {e}", dir.display())))?;
        }
    }
    let mut conn = SqliteConnection::establish(&target.connection_string())
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let mut pragmas = format!(
        "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL; \
         PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
    );
    if read_only {
        pragmas.push_str(" PRAGMA query_only = ON;");
    }
    conn.batch_execute(&pragmas)
        .map_err(|e| StoreError::Unavailable(format!("setting pragmas: {e}")))?;
    Ok(conn)
}

/// Applies pending migrations; returns the versions applied.
fn run_migrations(conn: &mut SqliteConnection) -> Result<Vec<String>, StoreError> {
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map_err(|e| StoreError::Query(format!("migrations: {e}")))?;
    Ok(applied.iter().map(|v| v.to_string()).collect())
}

/// Opens the database and applies pending migrations, blocking the calling
/// thread. Used by `interviewd migrate` from a plain thread.
pub(super) fn migrate_blocking(target: &SqliteTarget) -> Result<Vec<String>, StoreError> {
    let mut conn = connect(target, false)?;
    run_migrations(&mut conn)
}

/// A batch waiting for the group writer, and where its outcome goes.
type QueuedCommit = (CommitRows, oneshot::Sender<Result<(), CommitError>>);

/// Batches of many sessions committed in one transaction at most.
const GROUP_MAX: usize = 256;

/// The SQLite connections of one store.
pub(super) struct SqliteDb {
    writer: Arc<Mutex<SqliteConn>>,
    reader: Arc<Mutex<SqliteConn>>,
    /// Feeds the group writer (see `commit`).
    commits: mpsc::UnboundedSender<QueuedCommit>,
}

impl SqliteDb {
    /// Connects and migrates. Must run inside the store's runtime (see the
    /// module doc); the blocking part runs on its blocking pool.
    pub async fn open(target: SqliteTarget) -> Result<SqliteDb, StoreError> {
        let opened = tokio::task::spawn_blocking(move || {
            let mut writer = connect(&target, false)?;
            let applied = run_migrations(&mut writer)?;
            if !applied.is_empty() {
                tracing::info!(migrations = ?applied, "applied SQLite migrations");
            }
            let reader = match target {
                // Every `:memory:` connection is a database of its own.
                SqliteTarget::Memory => None,
                SqliteTarget::File(_) => Some(connect(&target, true)?),
            };
            Ok::<_, StoreError>((writer, reader))
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("opening SQLite: {e}")))?;
        let (writer, reader) = opened?;
        let writer = Arc::new(Mutex::new(SyncConnectionWrapper::new(writer)));
        let reader = match reader {
            Some(r) => Arc::new(Mutex::new(SyncConnectionWrapper::new(r))),
            None => writer.clone(),
        };
        let (commits, queue) = mpsc::unbounded_channel();
        tokio::spawn(group_writer(writer.clone(), queue));
        Ok(SqliteDb {
            writer,
            reader,
            commits,
        })
    }

    pub async fn writer(&self) -> MutexGuard<'_, SqliteConn> {
        self.writer.lock().await
    }

    pub async fn reader(&self) -> MutexGuard<'_, SqliteConn> {
        self.reader.lock().await
    }

    /// Writes one batch durably. SQLite has one writer, so batches of all
    /// sessions queue for the group writer, which commits whatever has
    /// gathered in one `BEGIN IMMEDIATE` transaction with a savepoint per
    /// batch: one commit for many sessions, and a failing batch rolls back
    /// alone. (Per-batch transactions capped the server at ~1.7k commits/s;
    /// see docs/benchmarks.md.) The write happens in the writer task, so a
    /// caller dropping this future never cancels it mid-flight.
    pub async fn commit(&self, rows: CommitRows) -> Result<(), CommitError> {
        let (done, outcome) = oneshot::channel();
        self.commits.send((rows, done)).map_err(|_| {
            CommitError::Store(StoreError::Unavailable("SQLite writer stopped".into()))
        })?;
        outcome.await.map_err(|_| {
            CommitError::Store(StoreError::Unavailable("SQLite writer stopped".into()))
        })?
    }
}

/// Commits queued batches, as many as have gathered (up to `GROUP_MAX`), one
/// transaction at a time.
async fn group_writer(
    writer: Arc<Mutex<SqliteConn>>,
    mut queue: mpsc::UnboundedReceiver<QueuedCommit>,
) {
    while let Some(first) = queue.recv().await {
        let mut group = vec![first];
        while group.len() < GROUP_MAX {
            match queue.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let (rows, waiting): (Vec<CommitRows>, Vec<_>) = group.into_iter().unzip();
        let count = rows.len();
        let mut conn = writer.lock().await;
        let outcomes = conn
            .spawn_blocking(move |conn| Ok(write_group(conn, rows)))
            .await;
        drop(conn);
        match outcomes {
            Ok(outcomes) => {
                for (done, outcome) in waiting.into_iter().zip(outcomes) {
                    // A caller that gave up no longer waits; nothing to tell.
                    let _ = done.send(outcome);
                }
            }
            Err(e) => {
                let message = format!("SQLite writer: {e}");
                for done in waiting {
                    let _ = done.send(Err(CommitError::Store(StoreError::Unavailable(
                        message.clone(),
                    ))));
                }
            }
        }
        tracing::trace!(batches = count, "group commit");
    }
}

/// One transaction for many batches, a savepoint each. If the transaction
/// itself fails, every batch in it failed.
fn write_group(conn: &mut SqliteConnection, rows: Vec<CommitRows>) -> Vec<Result<(), CommitError>> {
    let count = rows.len();
    let mut outcomes = Vec::with_capacity(count);
    let group = conn.immediate_transaction::<_, CommitError, _>(|conn| {
        for batch in rows {
            outcomes.push(conn.transaction(|conn| write_batch(conn, batch)));
        }
        Ok(())
    });
    match group {
        Ok(()) => outcomes,
        Err(e) => {
            let message = format!("SQLite transaction failed: {e:?}");
            (0..count)
                .map(|_| Err(CommitError::Store(StoreError::Unavailable(message.clone()))))
                .collect()
        }
    }
}

/// See `commit_rows` for why the stored head of the batch is read first.
fn write_batch(conn: &mut SqliteConnection, mut rows: CommitRows) -> Result<(), CommitError> {
    if let Some((min, max)) = rows.seq_range() {
        let stored: Vec<StoredEventKey> = session_events::table
            .filter(session_events::interview_id.eq(&rows.interview_id))
            .filter(session_events::seq.between(min, max))
            .order(session_events::seq.asc())
            .select((
                session_events::seq,
                session_events::event_type,
                session_events::data,
            ))
            .load(conn)?;
        if rows.skip_committed(&stored)? > 0 && !rows.audio.is_empty() {
            let audio = answer_audio::table
                .filter(answer_audio::interview_id.eq(&rows.interview_id))
                .select((answer_audio::question_id, answer_audio::ts))
                .load(conn)?;
            rows.skip_stored_audio(&audio);
        }
    }
    for row in &rows.events {
        diesel::insert_into(session_events::table)
            .values(row)
            .execute(conn)?;
    }
    for row in &rows.transcript {
        diesel::insert_into(transcript_entries::table)
            .values(row)
            .execute(conn)?;
    }
    for row in &rows.proctor {
        diesel::insert_into(proctor_events::table)
            .values(row)
            .execute(conn)?;
    }
    for row in &rows.evaluations {
        diesel::insert_into(evaluations::table)
            .values(row)
            .execute(conn)?;
    }
    // One at a time: audio rows are large.
    for audio in &rows.audio {
        diesel::insert_into(answer_audio::table)
            .values(audio)
            .execute(conn)?;
    }
    let updated = diesel::update(interviews::table.find(&rows.interview_id))
        .set(&rows.update)
        .execute(conn)?;
    if updated == 0 {
        return Err(CommitError::NoInterview);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        assert_eq!(
            SqliteTarget::parse("sqlite://interviewd.db"),
            Some(SqliteTarget::File("interviewd.db".into()))
        );
        assert_eq!(
            SqliteTarget::parse("sqlite:///var/lib/x.db"),
            Some(SqliteTarget::File("/var/lib/x.db".into()))
        );
        assert_eq!(
            SqliteTarget::parse("sqlite::memory:"),
            Some(SqliteTarget::Memory)
        );
        assert_eq!(SqliteTarget::parse("sqlite://"), None);
        assert_eq!(SqliteTarget::parse("postgres://h/db"), None);
    }
}
