//! Durable storage of interviews and their logs, behind `EventStore`.
//!
//! Every query runs on the store's own multi-thread tokio runtime and the
//! caller only awaits its `JoinHandle`. Two reasons (DESIGN.md, pitfalls):
//! actix's runtimes are single-threaded, where diesel-async's SQLite wrapper
//! panics, and dropping an in-flight SQLite query panics too; a spawned task
//! is never cancelled by its caller going away. SQLite writes are the
//! exception: they go straight to the backend's writer thread, which owns
//! the write connection and is never cancelled either.
//!
//! Backends sit in `Backend` (diesel-async has no `MultiConnection`): the
//! embedded SQLite file by default, PostgreSQL when the URL says
//! `postgres://`. Reads are written once in `queries` and compiled per
//! backend by the `with_reader!` macro; writes are each backend's own
//! (`commit`, `insert_interview`). Each backend has its own migrations
//! folder, embedded in the binary and applied by `open` and `migrate`.
//!
//! On PostgreSQL a process also holds a node lease (`node_lease`), on a
//! connection of its own rather than the store's, and owns interviews at a
//! fencing epoch that every commit checks (`owners`).

mod commit_rows;
mod models;
pub mod node_lease;
mod owners;
mod postgres;
mod queries;
mod schema;
#[cfg(test)]
pub(crate) mod scratch_db;
mod sqlite;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, Utc};
use interview_actors::audience::Viewer;
use interview_actors::event::LoggedEvent;
use interview_actors::ports::{
    Batch, BoxFuture, EventStore, InterviewRecord, InterviewRow, InterviewStatus, StoreError,
    StoredInterview,
};
use interview_actors::projection::TranscriptEntry;

pub use self::owners::NodeOwnership;
use self::postgres::PgDb;
use self::sqlite::{SqliteDb, SqliteTarget};

/// What `POST /v1/interviews` asks to create.
#[derive(Debug, Clone)]
pub struct NewInterview {
    pub org_id: String,
    pub title: String,
    pub candidate_name: String,
    pub candidate_id: String,
    /// `(text, type)`; an empty type becomes `GENERAL`.
    pub questions: Vec<(String, String)>,
    pub duration_minutes: u32,
}

/// An interview as HTTP reads serve it: the immutable record and the row as
/// the last committed batch left it.
#[derive(Debug, Clone, PartialEq)]
pub struct InterviewView {
    pub record: InterviewRecord,
    pub row: InterviewRow,
}

/// A connection pool per backend.
enum Backend {
    Sqlite(SqliteDb),
    Postgres(PgDb),
}

/// Where `DATABASE_URL` points.
enum Target {
    Sqlite(SqliteTarget),
    /// The URL as given: libpq and tokio-postgres both read it.
    Postgres(String),
}

/// The store's runtime, shut down without blocking when the last store
/// handle goes (dropping a runtime inside async code panics).
struct StoreRuntime(Option<tokio::runtime::Runtime>);

impl StoreRuntime {
    fn new() -> Result<StoreRuntime, StoreError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(8)
            .thread_name("interviewd-store")
            .enable_all()
            .build()
            .map(|rt| StoreRuntime(Some(rt)))
            .map_err(|e| StoreError::Unavailable(format!("starting the store runtime: {e}")))
    }

    fn handle(&self) -> Option<&tokio::runtime::Handle> {
        self.0.as_ref().map(|rt| rt.handle())
    }
}

impl Drop for StoreRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            // Every task holds a `Shared`, so nothing is in flight here.
            rt.shutdown_background();
        }
    }
}

/// Held by the `Store` handles and by every running query task, so the
/// runtime outlives all queries.
struct Shared {
    backend: Backend,
    runtime: StoreRuntime,
}

/// The interviews database. Cheap to clone; all clones share one runtime and
/// one set of connections.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

impl Store {
    /// Opens the database at `database_url` and applies pending migrations.
    pub async fn open(database_url: &str) -> Result<Store, StoreError> {
        let target = parse_url(database_url)?;
        let runtime = StoreRuntime::new()?;
        let handle = runtime
            .handle()
            .cloned()
            .ok_or_else(|| StoreError::Unavailable("store runtime gone".into()))?;
        // Connections are created on the store runtime: the SQLite wrapper
        // binds to the runtime it is created on, and PostgreSQL connections
        // run their I/O on the runtime that opens them.
        let backend = handle
            .spawn(async move {
                match target {
                    Target::Sqlite(t) => SqliteDb::open(t).await.map(Backend::Sqlite),
                    Target::Postgres(url) => PgDb::open(url).await.map(Backend::Postgres),
                }
            })
            .await
            .map_err(join_error)??;
        Ok(Store {
            shared: Arc::new(Shared { backend, runtime }),
        })
    }

    /// Applies pending migrations and returns the versions applied. Runs on a
    /// thread of its own, so it works from any runtime or none.
    pub async fn migrate(database_url: &str) -> Result<Vec<String>, StoreError> {
        let target = parse_url(database_url)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("interviewd-migrate".into())
            .spawn(move || {
                let applied = match &target {
                    Target::Sqlite(t) => sqlite::migrate_blocking(t),
                    Target::Postgres(url) => postgres::migrate_blocking(url),
                };
                // The receiver only goes away if the caller gave up.
                let _ = tx.send(applied);
            })
            .map_err(|e| StoreError::Unavailable(format!("starting migrations: {e}")))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("migration thread died".into()))?
    }

    /// Runs `query` on the store runtime. The task starts now and finishes even
    /// if the returned future is dropped.
    fn run<T, F, Fut>(
        &self,
        query: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + 'static
    where
        F: FnOnce(Arc<Shared>) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let task = self
            .shared
            .runtime
            .handle()
            .map(|h| h.spawn(query(self.shared.clone())));
        async move {
            match task {
                Some(task) => task.await.map_err(join_error)?,
                None => Err(StoreError::Unavailable("store runtime gone".into())),
            }
        }
    }

    /// Creates a `PENDING` interview with a fresh id and questions `q1`, `q2`, ...
    pub async fn create_interview(&self, new: NewInterview) -> Result<InterviewRecord, StoreError> {
        self.run(move |s| async move { queries::create_interview(&s.backend, new).await })
            .await
    }

    pub async fn interview_view(&self, id: &str) -> Result<Option<InterviewView>, StoreError> {
        let id = id.to_owned();
        self.run(move |s| async move { queries::interview_view(&s.backend, &id).await })
            .await
    }

    /// Newest first, keyset-paged on `(created_at, id)`. Returns the page and
    /// the cursor of the next one, if there may be more.
    pub async fn list_interviews(
        &self,
        org_id: Option<&str>,
        status: Option<InterviewStatus>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<InterviewView>, Option<String>), StoreError> {
        let after = match cursor {
            Some(c) => Some(
                ListCursor::decode(c).ok_or_else(|| StoreError::Query("invalid cursor".into()))?,
            ),
            None => None,
        };
        let org_id = org_id.map(str::to_owned);
        let limit = limit.clamp(1, 1000);
        let (page, more) = self
            .run(move |s| async move {
                queries::list_interviews(&s.backend, org_id, status, limit, after).await
            })
            .await?;
        let next = match (more, page.last()) {
            (true, Some(last)) => Some(ListCursor::of(&last.record).encode()),
            _ => None,
        };
        Ok((page, next))
    }

    /// Events with `seq > after` that `viewer` may see, in order, at most
    /// `limit`.
    pub async fn events_after(
        &self,
        id: &str,
        after: u64,
        limit: u32,
        viewer: Viewer,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        let id = id.to_owned();
        let limit = limit.max(1);
        self.run(move |s| async move {
            queries::events_after(&s.backend, &id, after, limit, viewer).await
        })
        .await
    }

    pub async fn transcript(&self, id: &str) -> Result<Vec<TranscriptEntry>, StoreError> {
        let id = id.to_owned();
        self.run(move |s| async move { queries::transcript(&s.backend, &id).await })
            .await
    }

    /// Ids of interviews whose status is one of `statuses` and began before
    /// `before` (their creation, for a status never changed since), oldest
    /// first, at most `limit`: what the expiry sweep visits.
    pub async fn stale_interviews(
        &self,
        statuses: &[InterviewStatus],
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let statuses: Vec<&'static str> = statuses.iter().map(|s| s.as_str()).collect();
        let before = models::to_db_time(before);
        self.run(move |s| async move {
            queries::stale_interviews(&s.backend, statuses, before, limit).await
        })
        .await
    }

    /// A trivial query, for readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(move |s| async move { queries::ping(&s.backend).await })
            .await
    }
}

impl EventStore for Store {
    fn load(&self, interview_id: &str) -> BoxFuture<Result<Option<StoredInterview>, StoreError>> {
        let id = interview_id.to_owned();
        Box::pin(self.run(move |s| async move { queries::load(&s.backend, &id).await }))
    }

    fn commit(&self, batch: Batch) -> BoxFuture<Result<(), StoreError>> {
        // SQLite: queued straight to its writer thread from the session's
        // thread, without a hop through the store runtime.
        if let Backend::Sqlite(db) = &self.shared.backend {
            return Box::pin(db.commit(batch));
        }
        Box::pin(self.run(move |s| async move { queries::commit(&s.backend, batch).await }))
    }

    fn read_after(
        &self,
        interview_id: &str,
        after: u64,
        limit: u32,
    ) -> BoxFuture<Result<Vec<LoggedEvent>, StoreError>> {
        let store = self.clone();
        let id = interview_id.to_owned();
        Box::pin(async move {
            store
                .events_after(&id, after, limit, Viewer::Observer)
                .await
        })
    }

    fn stale(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> BoxFuture<Result<Vec<String>, StoreError>> {
        let store = self.clone();
        Box::pin(async move {
            store
                .stale_interviews(
                    &[InterviewStatus::Created, InterviewStatus::Paused],
                    before,
                    limit,
                )
                .await
        })
    }
}

/// Whether `cursor` is one `list_interviews` handed out (for a 400 before
/// asking the store).
pub fn is_valid_cursor(cursor: &str) -> bool {
    ListCursor::decode(cursor).is_some()
}

fn parse_url(database_url: &str) -> Result<Target, StoreError> {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        return Ok(Target::Postgres(database_url.to_owned()));
    }
    SqliteTarget::parse(database_url)
        .map(Target::Sqlite)
        .ok_or_else(|| {
            // Not the URL itself: it may carry a password.
            StoreError::Unavailable(
                "unsupported DATABASE_URL (want sqlite://path.db or postgres://...)".into(),
            )
        })
}

fn join_error(e: tokio::task::JoinError) -> StoreError {
    if e.is_panic() {
        StoreError::Query("store task panicked".into())
    } else {
        StoreError::Unavailable("store shutting down".into())
    }
}

/// Position after the last interview of a page: `created_at` in nanoseconds
/// and the id, base64url so clients treat it as opaque.
#[derive(Debug, Clone, PartialEq)]
struct ListCursor {
    created_at: NaiveDateTime,
    id: String,
}

impl ListCursor {
    fn of(record: &InterviewRecord) -> ListCursor {
        ListCursor {
            created_at: record.created_at.naive_utc(),
            id: record.id.clone(),
        }
    }

    fn encode(&self) -> String {
        let nanos = self.created_at.and_utc().timestamp_nanos_opt().unwrap_or(0);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{nanos}|{}", self.id))
    }

    fn decode(s: &str) -> Option<ListCursor> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (nanos, id) = raw.split_once('|')?;
        let created_at = DateTime::from_timestamp_nanos(nanos.parse().ok()?).naive_utc();
        (!id.is_empty()).then(|| ListCursor {
            created_at,
            id: id.to_owned(),
        })
    }
}
