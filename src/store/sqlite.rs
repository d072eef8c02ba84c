//! The embedded SQLite backend: URL parsing, connection setup, migrations,
//! and the writer thread.
//!
//! One writer and one reader connection (SQLite has a single writer; WAL lets
//! the reader run beside it). The writer connection belongs to a thread of
//! its own that commits the writes of all sessions in groups. The reader is
//! a diesel-async `SyncConnectionWrapper`, which must be created on the
//! store's own multi-thread runtime: the wrapper binds to the runtime it is
//! created on and uses `spawn_blocking` there.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use interview_actors::ports::{Batch, StoreError};
use tokio::sync::{mpsc, oneshot, Mutex, MutexGuard};

use super::commit_rows::{stored_audio, stored_events, CommitError, CommitRows, StoredEventKey};
use super::models::InterviewDbRow;
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
}

/// Opens one sync connection with the pragmas every connection needs.
fn connect(path: &Path, read_only: bool) -> Result<SqliteConnection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Unavailable(format!("creating {}: {e}", dir.display())))?;
    }
    let mut conn = SqliteConnection::establish(&path.to_string_lossy())
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let mut pragmas = format!(
        "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL; \
         PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -32768;"
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
    let path = match target {
        SqliteTarget::File(path) => path.as_path(),
        SqliteTarget::Memory => Path::new(":memory:"),
    };
    run_migrations(&mut connect(path, false)?)
}

/// What the writer thread writes.
enum Write {
    /// One session's batch.
    Commit(CommitRows),
    /// A new interview row.
    Interview(InterviewDbRow),
}

/// A write waiting for the writer thread, and where its outcome goes.
type Queued = (Write, oneshot::Sender<Result<(), CommitError>>);

/// Writes of many sessions committed in one transaction at most.
const GROUP_MAX: usize = 256;

/// The SQLite connections of one store.
pub(super) struct SqliteDb {
    reader: Mutex<SqliteConn>,
    /// Feeds the writer thread (see `commit`).
    writes: mpsc::UnboundedSender<Queued>,
    /// Dropped with the store, which ends the checkpointer thread.
    _checkpoints: std::sync::mpsc::Sender<()>,
}

/// How often the checkpointer copies the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// WAL pages after which the writer checkpoints by itself (SQLite's
/// autocheckpoint, default 1000). A PASSIVE checkpoint completes only if no
/// commit lands while it runs, and the WAL starts over only after a complete
/// one: under steady writes the checkpointer never completes and the WAL
/// would grow without bound (82 MB in 40 s when this was 20,000). At 2000
/// the writer restarts it now and then; measured against 1000 and 4000, see
/// docs/benchmarks.md.
const WRITER_AUTOCHECKPOINT_PAGES: u32 = 2_000;

impl SqliteDb {
    /// Connects and migrates, then starts the writer thread. Must run inside
    /// the store's runtime (see the module doc); the blocking part runs on its
    /// blocking pool.
    pub async fn open(target: SqliteTarget) -> Result<SqliteDb, StoreError> {
        let opened = tokio::task::spawn_blocking(move || {
            let scratch = match target {
                SqliteTarget::File(path) => ScratchFile::keep(path),
                SqliteTarget::Memory => ScratchFile::new(),
            };
            let mut writer = connect(&scratch.path, false)?;
            writer
                .batch_execute(&format!(
                    "PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES};"
                ))
                .map_err(|e| StoreError::Unavailable(format!("setting pragmas: {e}")))?;
            let applied = run_migrations(&mut writer)?;
            if !applied.is_empty() {
                tracing::info!(migrations = ?applied, "applied SQLite migrations");
            }
            let reader = connect(&scratch.path, true)?;
            let checkpointer = connect(&scratch.path, false)?;
            Ok::<_, StoreError>((writer, reader, checkpointer, scratch))
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("opening SQLite: {e}")))?;
        let (writer, reader, checkpointer, scratch) = opened?;
        let (writes, queue) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("interviewd-sqlite-writer".into())
            .spawn(move || writer_thread(writer, queue, scratch))
            .map_err(|e| StoreError::Unavailable(format!("starting the SQLite writer: {e}")))?;
        let (checkpoints, stop) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("interviewd-sqlite-checkpoint".into())
            .spawn(move || checkpoint_thread(checkpointer, stop))
            .map_err(|e| {
                StoreError::Unavailable(format!("starting the SQLite checkpointer: {e}"))
            })?;
        Ok(SqliteDb {
            reader: Mutex::new(SyncConnectionWrapper::new(reader)),
            writes,
            _checkpoints: checkpoints,
        })
    }

    pub async fn reader(&self) -> MutexGuard<'_, SqliteConn> {
        self.reader.lock().await
    }

    /// Writes one batch durably. SQLite has one writer, so batches of all
    /// sessions queue for the writer thread, which commits whatever has
    /// gathered in one `BEGIN IMMEDIATE` transaction with a savepoint per
    /// batch: one commit for many sessions, and a failing batch rolls back
    /// alone. The batch is queued now, from the caller's thread, and the
    /// writer answers it directly: no hop through the store runtime (each
    /// hop cost a wake-up, and under load a wait for a busy thread; see
    /// docs/benchmarks.md). Dropping the future never cancels the write.
    pub fn commit(&self, batch: Batch) -> impl Future<Output = Result<(), StoreError>> + Send {
        let id = batch.interview_id.clone();
        let queued = CommitRows::new(batch).map(|rows| self.queue(Write::Commit(rows)));
        async move {
            match queued {
                Ok(outcome) => outcome.await.map_err(|e| e.into_store_error(&id)),
                Err(e) => Err(e),
            }
        }
    }

    /// Inserts a new interview row through the writer thread.
    pub async fn insert_interview(&self, row: InterviewDbRow) -> Result<(), StoreError> {
        let id = row.id.clone();
        self.queue(Write::Interview(row))
            .await
            .map_err(|e| e.into_store_error(&id))
    }

    fn queue(&self, write: Write) -> impl Future<Output = Result<(), CommitError>> + Send {
        let (done, outcome) = oneshot::channel();
        let sent = self.writes.send((write, done)).is_ok();
        async move {
            let stopped =
                || CommitError::Store(StoreError::Unavailable("SQLite writer stopped".into()));
            if !sent {
                return Err(stopped());
            }
            outcome.await.map_err(|_| stopped())?
        }
    }
}

/// Owns the write connection: takes the first queued write, then whatever
/// else has gathered (up to `GROUP_MAX`), and commits them in one
/// transaction. Ends when the store is gone.
fn writer_thread(
    mut conn: SqliteConnection,
    mut queue: mpsc::UnboundedReceiver<Queued>,
    scratch: ScratchFile,
) {
    while let Some(first) = queue.blocking_recv() {
        let mut group = vec![first];
        while group.len() < GROUP_MAX {
            match queue.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let count = group.len();
        let (writes, waiting): (Vec<Write>, Vec<_>) = group.into_iter().unzip();
        for (done, outcome) in waiting.into_iter().zip(write_group(&mut conn, writes)) {
            // A caller that gave up no longer waits; nothing to tell.
            let _ = done.send(outcome);
        }
        tracing::trace!(writes = count, "group commit");
    }
    drop(conn);
    drop(scratch);
}

/// Copies the WAL into the database file every `CHECKPOINT_EVERY`, beside
/// the writer. SQLite's own checkpoint runs inside the commit that crosses
/// its threshold, with two `fsync`s: that commit, and every batch queued
/// behind it, waited 5-10 ms, which was the whole p99 at low load. A
/// PASSIVE checkpoint on another connection never blocks the writer, and
/// leaves the writer's own checkpoints little to copy.
fn checkpoint_thread(mut conn: SqliteConnection, stop: std::sync::mpsc::Receiver<()>) {
    // Told once per outage, not twenty times a second; the writer's own
    // checkpoints go on meanwhile.
    let mut failing = false;
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY)
    {
        match conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE);") {
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "SQLite checkpoints are failing");
            }
            Ok(()) if failing => {
                failing = false;
                tracing::info!("SQLite checkpoints work again");
            }
            _ => {}
        }
    }
}

/// One transaction for many writes, a savepoint each. If the transaction
/// itself fails, every write in it failed.
fn write_group(conn: &mut SqliteConnection, writes: Vec<Write>) -> Vec<Result<(), CommitError>> {
    let count = writes.len();
    let mut outcomes = Vec::with_capacity(count);
    let group = conn.immediate_transaction::<_, CommitError, _>(|conn| {
        for write in writes {
            outcomes.push(match write {
                Write::Commit(rows) => write_batch(conn, rows),
                Write::Interview(row) => conn.transaction(|conn| {
                    diesel::insert_into(interviews::table)
                        .values(&row)
                        .execute(conn)
                        .map(drop)
                        .map_err(CommitError::Db)
                }),
            });
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

/// Inserts the batch as it is; only if a row is already stored (a retry
/// after a lost acknowledgement, see `commit_rows`) does it read what is
/// stored and write the rest, as the PostgreSQL backend does. The first
/// attempt of a batch, nearly all of them, costs no read.
fn write_batch(conn: &mut SqliteConnection, rows: CommitRows) -> Result<(), CommitError> {
    super::owners::check_embedded(rows.epoch)?;
    match conn.transaction(|conn| insert_rows(conn, &rows)) {
        Err(CommitError::Db(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _))) => {
            let mut rows = rows;
            conn.transaction(|conn| {
                skip_stored(conn, &mut rows)?;
                insert_rows(conn, &rows)
            })
        }
        other => other,
    }
}

/// Drops from `rows` what an earlier attempt of the batch stored.
fn skip_stored(conn: &mut SqliteConnection, rows: &mut CommitRows) -> Result<(), CommitError> {
    let Some((min, max)) = rows.seq_range() else {
        return Ok(());
    };
    let stored: Vec<StoredEventKey> = stored_events(&rows.interview_id, min, max).load(conn)?;
    if rows.skip_committed(&stored)? > 0 && !rows.audio.is_empty() {
        let audio = stored_audio(&rows.interview_id).load(conn)?;
        rows.skip_stored_audio(&audio);
    }
    Ok(())
}

/// Every row of the batch, one fixed single-row statement per table so the
/// prepared-statement cache is reused (a multi-row INSERT is a new statement
/// for every batch size).
fn insert_rows(conn: &mut SqliteConnection, rows: &CommitRows) -> Result<(), CommitError> {
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
    for audio in &rows.audio {
        diesel::insert_into(answer_audio::table)
            .values(audio)
            .execute(conn)?;
    }
    if let Some(update) = &rows.update {
        let updated = diesel::update(interviews::table.find(&rows.interview_id))
            .set(update)
            .execute(conn)?;
        if updated == 0 {
            return Err(CommitError::NoInterview);
        }
    }
    Ok(())
}

/// The database file, or for `sqlite::memory:` a private file in the temp
/// directory removed when the store closes. (A real `:memory:` database
/// exists once per connection, and the writer thread and the reader need
/// the same one.)
struct ScratchFile {
    path: PathBuf,
    remove: bool,
}

impl ScratchFile {
    fn keep(path: PathBuf) -> ScratchFile {
        ScratchFile {
            path,
            remove: false,
        }
    }

    fn new() -> ScratchFile {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "interviewd-memory-{}-{}-{nanos}.db",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ScratchFile {
            path: std::env::temp_dir().join(name),
            remove: true,
        }
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        if self.remove {
            for suffix in ["", "-wal", "-shm"] {
                let mut file = self.path.clone().into_os_string();
                file.push(suffix);
                let _ = std::fs::remove_file(file);
            }
        }
    }
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
