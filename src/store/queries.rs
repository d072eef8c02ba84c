//! The query bodies, written once. `with_reader!` compiles each read once per
//! backend, with `conn` bound to that backend's connection type.

use std::collections::HashMap;

use chrono::{NaiveDateTime, SubsecRound, Utc};
use diesel::dsl::max;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use interview_actors::audience::{Audience, Viewer};
use interview_actors::event::{LoggedEvent, Progress};
use interview_actors::ports::{
    Batch, InterviewRecord, InterviewRow, InterviewStatus, StoreError, StoredInterview,
    TemplateQuestion,
};
use interview_actors::projection::TranscriptEntry;

use super::models::{EventDbRow, InterviewDbRow, TranscriptDbRow, AUDIENCE_ALL};
use super::postgres;
use super::schema::{interviews, session_events, transcript_entries};
use super::{Backend, InterviewView, ListCursor, NewInterview};

/// Runs the read `$body` with `$conn` bound to a reader of the store's
/// backend: the same body compiles once per backend. (Writes go through each
/// backend's own `commit` and `insert_interview`: SQLite writes only from its
/// writer thread.) `?` in the body returns from the enclosing function on
/// SQLite; on PostgreSQL the body runs under the operation deadline, and its
/// errors are re-read in the light of the connection's health (see
/// `postgres::classify`).
macro_rules! with_reader {
    ($backend:expr, |$conn:ident| $body:expr) => {
        match $backend {
            Backend::Sqlite(db) => {
                let mut guard = db.reader().await;
                let $conn = &mut *guard;
                $body
            }
            Backend::Postgres(db) => {
                postgres::bounded(async {
                    let mut guard = db.reader().await?;
                    let result = async {
                        let $conn = &mut *guard;
                        Ok::<_, StoreError>($body)
                    }
                    .await;
                    result.map_err(|e| postgres::classify(&mut guard, e))
                })
                .await?
            }
        }
    };
}

/// Messages of errors that mean the database is away for now, not that the
/// query is wrong: SQLite's locks and I/O, PostgreSQL's shutdown, startup,
/// recovery and connection limits (SQLSTATE classes 08, 53, 57P).
const UNAVAILABLE_MESSAGES: &[&str] = &[
    "database is locked",
    "disk I/O error",
    "unable to open",
    "terminating connection",
    "the database system is",
    "too many clients",
    "remaining connection slots",
    "server closed the connection",
    "connection refused",
];

/// Connection trouble is `Unavailable` (retry later); the rest is `Query`.
pub(super) fn db_error(e: DieselError) -> StoreError {
    match &e {
        DieselError::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection,
            _,
        ) => StoreError::Unavailable(e.to_string()),
        DieselError::DatabaseError(_, info)
            if UNAVAILABLE_MESSAGES
                .iter()
                .any(|m| info.message().contains(m)) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Query(e.to_string()),
    }
}

diesel::define_sql_function! {
    /// SQL `coalesce` of a nullable and a non-null time.
    fn coalesce(x: diesel::sql_types::Nullable<diesel::sql_types::Timestamp>, y: diesel::sql_types::Timestamp) -> diesel::sql_types::Timestamp;
}

pub(super) async fn create_interview(
    backend: &Backend,
    new: NewInterview,
) -> Result<InterviewRecord, StoreError> {
    let questions: Vec<TemplateQuestion> = new
        .questions
        .into_iter()
        .enumerate()
        .map(|(i, (text, kind))| TemplateQuestion {
            id: format!("q{}", i + 1),
            text,
            kind: if kind.trim().is_empty() {
                "GENERAL".to_owned()
            } else {
                kind
            },
        })
        .collect();
    let total = u32::try_from(questions.len())
        .map_err(|_| StoreError::Query("too many questions".into()))?;
    let record = InterviewRecord {
        id: uuid::Uuid::new_v4().to_string(),
        org_id: new.org_id,
        title: new.title,
        candidate_name: new.candidate_name,
        candidate_id: new.candidate_id,
        questions,
        duration_minutes: new.duration_minutes,
        status: InterviewStatus::Pending,
        // Millisecond precision: what the wire shows, and what both backends keep.
        created_at: Utc::now().trunc_subsecs(3),
    };
    let row = InterviewRow {
        status: InterviewStatus::Pending,
        started_at: None,
        ended_at: None,
        progress: Progress {
            current_question: 0,
            total_questions: total,
            answered: 0,
        },
        trust_score: 100,
        summary: None,
        last_seq: 0,
        status_since: None,
    };
    let db_row = InterviewDbRow::new(&record, &row)?;
    match backend {
        // SQLite writes only from its writer thread.
        Backend::Sqlite(db) => db.insert_interview(db_row).await?,
        Backend::Postgres(db) => db.insert_interview(db_row).await?,
    }
    Ok(record)
}

pub(super) async fn interview_view(
    backend: &Backend,
    id: &str,
) -> Result<Option<InterviewView>, StoreError> {
    let found: Option<(InterviewDbRow, Option<i64>)> = with_reader!(backend, |conn| {
        conn.transaction::<_, DieselError, _>(async |conn| {
            let Some(row) = interviews::table
                .find(id)
                .select(InterviewDbRow::as_select())
                .first(conn)
                .await
                .optional()?
            else {
                return Ok(None);
            };
            let head = session_events::table
                .filter(session_events::interview_id.eq(id))
                .select(max(session_events::seq))
                .first(conn)
                .await?;
            Ok(Some((row, head)))
        })
        .await
        .map_err(db_error)?
    });
    found.map(|(row, head)| row.into_view(head)).transpose()
}

/// One page plus whether there may be more after it.
pub(super) async fn list_interviews(
    backend: &Backend,
    org_id: Option<String>,
    status: Option<InterviewStatus>,
    limit: u32,
    after: Option<ListCursor>,
) -> Result<(Vec<InterviewView>, bool), StoreError> {
    let mut rows: Vec<InterviewDbRow> = with_reader!(backend, |conn| {
        let mut q = interviews::table
            .select(InterviewDbRow::as_select())
            .into_boxed();
        if let Some(org) = &org_id {
            q = q.filter(interviews::org_id.eq(org));
        }
        if let Some(status) = status {
            q = q.filter(interviews::status.eq(status.as_str()));
        }
        if let Some(c) = &after {
            q = q.filter(
                interviews::created_at
                    .lt(c.created_at)
                    .or(interviews::created_at
                        .eq(c.created_at)
                        .and(interviews::id.lt(&c.id))),
            );
        }
        q.order((interviews::created_at.desc(), interviews::id.desc()))
            .limit(i64::from(limit) + 1)
            .load(conn)
            .await
            .map_err(db_error)?
    });
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let heads: HashMap<String, Option<i64>> = if ids.is_empty() {
        HashMap::new()
    } else {
        with_reader!(backend, |conn| {
            session_events::table
                .filter(session_events::interview_id.eq_any(&ids))
                .group_by(session_events::interview_id)
                .select((session_events::interview_id, max(session_events::seq)))
                .load::<(String, Option<i64>)>(conn)
                .await
                .map_err(db_error)?
        })
        .into_iter()
        .collect()
    };
    let page = rows
        .into_iter()
        .map(|row| {
            let head = heads.get(&row.id).copied().flatten();
            row.into_view(head)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((page, more))
}

pub(super) async fn events_after(
    backend: &Backend,
    id: &str,
    after: u64,
    limit: u32,
    viewer: Viewer,
) -> Result<Vec<LoggedEvent>, StoreError> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let rows: Vec<EventDbRow> = with_reader!(backend, |conn| {
        let mut q = session_events::table
            .filter(session_events::interview_id.eq(id))
            .filter(session_events::seq.gt(after))
            .select(EventDbRow::as_select())
            .into_boxed();
        // The audience column is `Event::audience` as written; a viewer
        // who may not see observer-only events reads the `all` rows only.
        if !viewer.sees(Audience::Observers) {
            q = q.filter(session_events::audience.eq(AUDIENCE_ALL));
        }
        q.order(session_events::seq.asc())
            .limit(i64::from(limit))
            .load(conn)
            .await
            .map_err(db_error)?
    });
    rows.into_iter().map(EventDbRow::into_logged).collect()
}

pub(super) async fn transcript(
    backend: &Backend,
    id: &str,
) -> Result<Vec<TranscriptEntry>, StoreError> {
    let rows: Vec<TranscriptDbRow> = with_reader!(backend, |conn| {
        transcript_entries::table
            .filter(transcript_entries::interview_id.eq(id))
            .order(transcript_entries::seq.asc())
            .select(TranscriptDbRow::as_select())
            .load(conn)
            .await
            .map_err(db_error)?
    });
    rows.into_iter().map(TranscriptDbRow::into_entry).collect()
}

pub(super) async fn ping(backend: &Backend) -> Result<(), StoreError> {
    with_reader!(backend, |conn| {
        conn.batch_execute("SELECT 1").await.map_err(db_error)?
    });
    Ok(())
}

/// Ids of interviews in one of `statuses` since before `before` (their
/// creation when the status never changed), oldest first.
pub(super) async fn stale_interviews(
    backend: &Backend,
    statuses: Vec<&'static str>,
    before: NaiveDateTime,
    limit: u32,
) -> Result<Vec<String>, StoreError> {
    if statuses.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = with_reader!(backend, |conn| {
        let since = coalesce(interviews::status_since, interviews::created_at);
        interviews::table
            .filter(interviews::status.eq_any(&statuses))
            .filter(since.lt(before))
            .order((since.asc(), interviews::id.asc()))
            .select(interviews::id)
            .limit(i64::from(limit))
            .load(conn)
            .await
            .map_err(db_error)?
    });
    Ok(ids)
}

/// The record and the whole log, read in one transaction so they agree.
pub(super) async fn load(
    backend: &Backend,
    id: &str,
) -> Result<Option<StoredInterview>, StoreError> {
    let found: Option<(InterviewDbRow, Vec<EventDbRow>)> = with_reader!(backend, |conn| {
        conn.transaction::<_, DieselError, _>(async |conn| {
            let Some(row) = interviews::table
                .find(id)
                .select(InterviewDbRow::as_select())
                .first(conn)
                .await
                .optional()?
            else {
                return Ok(None);
            };
            let events = session_events::table
                .filter(session_events::interview_id.eq(id))
                .order(session_events::seq.asc())
                .select(EventDbRow::as_select())
                .load(conn)
                .await?;
            Ok(Some((row, events)))
        })
        .await
        .map_err(db_error)?
    });
    let Some((row, events)) = found else {
        return Ok(None);
    };
    let view = row.into_view(events.last().map(|e| e.seq))?;
    Ok(Some(StoredInterview {
        record: view.record,
        status_since: view.row.status_since,
        events: events
            .into_iter()
            .map(EventDbRow::into_logged)
            .collect::<Result<_, _>>()?,
    }))
}

/// Events, their projections, audio and the row update in one transaction.
/// A seq already stored with another event fails the whole batch, never
/// overwrites; a batch retried after a lost acknowledgement is written once
/// (see `commit_rows`).
pub(super) async fn commit(backend: &Backend, batch: Batch) -> Result<(), StoreError> {
    match backend {
        Backend::Sqlite(db) => db.commit(batch).await,
        Backend::Postgres(db) => db.commit(batch).await,
    }
}

/// Audio rows stored for an interview (tests check replays add none).
#[cfg(test)]
pub(super) async fn audio_count(backend: &Backend, id: &str) -> Result<i64, StoreError> {
    use super::schema::answer_audio;
    let n: i64 = with_reader!(backend, |conn| {
        answer_audio::table
            .filter(answer_audio::interview_id.eq(id))
            .count()
            .get_result(conn)
            .await
            .map_err(db_error)?
    });
    Ok(n)
}
