//! Database rows and their conversions to and from the runtime's types.
//! JSON columns are TEXT and enums are their wire names, so a row reads the
//! same on either backend.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use diesel::prelude::*;
use interview_actors::event::{Event, LoggedEvent};
use interview_actors::ports::{
    AnswerAudio, InterviewRecord, InterviewRow, InterviewStatus, StoreError,
};
use interview_actors::projection::{EvaluationEntry, ProctorEntry, TranscriptEntry};
use serde::{de::DeserializeOwned, Serialize};

use super::schema::{
    answer_audio, evaluations, interviews, proctor_events, session_events, transcript_entries,
};
use super::InterviewView;

/// Microseconds, the precision PostgreSQL keeps, so that both backends store
/// the same value and a stored time compares equal to the one written.
pub(super) fn to_db_time(ts: DateTime<Utc>) -> NaiveDateTime {
    ts.naive_utc().trunc_subsecs(6)
}

pub(super) fn from_db_time(ts: NaiveDateTime) -> DateTime<Utc> {
    ts.and_utc()
}

fn to_json<T: Serialize>(what: &str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Query(format!("encoding {what}: {e}")))
}

fn from_json<T: DeserializeOwned>(what: &str, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// The serde name of a unit enum variant, e.g. `tab-switch`.
fn wire_name<T: Serialize>(v: &T) -> Result<String, StoreError> {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        _ => Err(StoreError::Query("enum without a wire name".into())),
    }
}

fn from_wire_name<T: DeserializeOwned>(what: &str, s: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|e| StoreError::Corrupt(format!("{what} {s:?}: {e}")))
}

pub(super) fn seq_to_db(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Query(format!("seq {seq} out of range")))
}

fn seq_from_db(seq: i64) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("negative seq {seq}")))
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = interviews)]
pub(super) struct InterviewDbRow {
    pub id: String,
    pub org_id: String,
    pub title: String,
    pub candidate_name: String,
    pub candidate_id: String,
    pub questions: String,
    pub duration_minutes: i32,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub started_at: Option<NaiveDateTime>,
    pub ended_at: Option<NaiveDateTime>,
    pub progress: String,
    pub trust_score: i32,
    pub summary: Option<String>,
    pub status_since: Option<NaiveDateTime>,
}

impl InterviewDbRow {
    pub fn new(record: &InterviewRecord, row: &InterviewRow) -> Result<Self, StoreError> {
        let update = RowUpdate::new(row)?;
        Ok(InterviewDbRow {
            id: record.id.clone(),
            org_id: record.org_id.clone(),
            title: record.title.clone(),
            candidate_name: record.candidate_name.clone(),
            candidate_id: record.candidate_id.clone(),
            questions: to_json("questions", &record.questions)?,
            duration_minutes: i32::try_from(record.duration_minutes)
                .map_err(|_| StoreError::Query("duration out of range".into()))?,
            status: update.status,
            created_at: to_db_time(record.created_at),
            started_at: update.started_at,
            ended_at: update.ended_at,
            progress: update.progress,
            trust_score: update.trust_score,
            summary: update.summary,
            status_since: update.status_since,
        })
    }

    /// `last_seq` is the log's head, read from `session_events`.
    pub fn into_view(self, last_seq: Option<i64>) -> Result<InterviewView, StoreError> {
        let status = InterviewStatus::parse(&self.status)
            .ok_or_else(|| StoreError::Corrupt(format!("status {:?}", self.status)))?;
        let record = InterviewRecord {
            questions: from_json("questions", &self.questions)?,
            duration_minutes: u32::try_from(self.duration_minutes)
                .map_err(|_| StoreError::Corrupt("negative duration".into()))?,
            status,
            created_at: from_db_time(self.created_at),
            id: self.id,
            org_id: self.org_id,
            title: self.title,
            candidate_name: self.candidate_name,
            candidate_id: self.candidate_id,
        };
        let row = InterviewRow {
            status,
            started_at: self.started_at.map(from_db_time),
            ended_at: self.ended_at.map(from_db_time),
            progress: from_json("progress", &self.progress)?,
            trust_score: u8::try_from(self.trust_score)
                .map_err(|_| StoreError::Corrupt(format!("trust score {}", self.trust_score)))?,
            summary: self
                .summary
                .as_deref()
                .map(|s| from_json("summary", s))
                .transpose()?,
            last_seq: seq_from_db(last_seq.unwrap_or(0))?,
            status_since: self.status_since.map(from_db_time),
        };
        Ok(InterviewView { record, row })
    }
}

/// What a batch changes on the interview row. `None` writes NULL.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = interviews, treat_none_as_null = true)]
pub(super) struct RowUpdate {
    pub status: String,
    pub started_at: Option<NaiveDateTime>,
    pub ended_at: Option<NaiveDateTime>,
    pub progress: String,
    pub trust_score: i32,
    pub summary: Option<String>,
    pub status_since: Option<NaiveDateTime>,
}

impl RowUpdate {
    pub fn new(row: &InterviewRow) -> Result<Self, StoreError> {
        Ok(RowUpdate {
            status: row.status.as_str().to_owned(),
            started_at: row.started_at.map(to_db_time),
            ended_at: row.ended_at.map(to_db_time),
            progress: to_json("progress", &row.progress)?,
            trust_score: i32::from(row.trust_score),
            summary: row
                .summary
                .as_ref()
                .map(|s| to_json("summary", s))
                .transpose()?,
            status_since: row.status_since.map(to_db_time),
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = session_events)]
pub(super) struct EventDbRow {
    pub interview_id: String,
    pub seq: i64,
    pub event_type: String,
    pub data: String,
    pub audience: String,
    pub ts: NaiveDateTime,
    /// The owner's epoch that wrote it (0: unfenced, see `store::owners`).
    pub epoch: i64,
}

pub(super) const AUDIENCE_ALL: &str = "all";
pub(super) const AUDIENCE_OBSERVERS: &str = "observers";

impl EventDbRow {
    pub fn new(interview_id: &str, e: &LoggedEvent, epoch: i64) -> Result<Self, StoreError> {
        use interview_actors::event::Audience;
        Ok(EventDbRow {
            interview_id: interview_id.to_owned(),
            seq: seq_to_db(e.seq)?,
            event_type: e.event.type_name().to_owned(),
            data: to_json("event data", &e.event.data())?,
            audience: match e.audience() {
                Audience::All => AUDIENCE_ALL,
                Audience::Observers => AUDIENCE_OBSERVERS,
            }
            .to_owned(),
            ts: to_db_time(e.ts),
            epoch,
        })
    }

    pub fn into_logged(self) -> Result<LoggedEvent, StoreError> {
        let data = from_json("event data", &self.data)?;
        let event = Event::from_parts(&self.event_type, data).map_err(|e| {
            StoreError::Corrupt(format!("event {} ({}): {e}", self.seq, self.event_type))
        })?;
        Ok(LoggedEvent::new(
            seq_from_db(self.seq)?,
            from_db_time(self.ts),
            event,
        ))
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = transcript_entries)]
pub(super) struct TranscriptDbRow {
    pub interview_id: String,
    pub seq: i64,
    pub speaker: String,
    pub text: String,
    pub question_id: Option<String>,
    pub ts: NaiveDateTime,
}

impl TranscriptDbRow {
    pub fn new(interview_id: &str, t: TranscriptEntry) -> Result<Self, StoreError> {
        Ok(TranscriptDbRow {
            interview_id: interview_id.to_owned(),
            seq: seq_to_db(t.seq)?,
            speaker: wire_name(&t.speaker)?,
            text: t.text,
            question_id: t.question_id,
            ts: to_db_time(t.ts),
        })
    }

    pub fn into_entry(self) -> Result<TranscriptEntry, StoreError> {
        Ok(TranscriptEntry {
            seq: seq_from_db(self.seq)?,
            speaker: from_wire_name("speaker", &self.speaker)?,
            text: self.text,
            question_id: self.question_id,
            ts: from_db_time(self.ts),
        })
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = proctor_events)]
pub(super) struct ProctorDbRow {
    pub interview_id: String,
    pub seq: i64,
    pub kind: String,
    pub severity: String,
    pub message: String,
    pub ts: NaiveDateTime,
}

impl ProctorDbRow {
    pub fn new(interview_id: &str, p: ProctorEntry) -> Result<Self, StoreError> {
        Ok(ProctorDbRow {
            interview_id: interview_id.to_owned(),
            seq: seq_to_db(p.seq)?,
            kind: wire_name(&p.kind)?,
            severity: wire_name(&p.severity)?,
            message: p.message,
            ts: to_db_time(p.ts),
        })
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = evaluations)]
pub(super) struct EvaluationDbRow {
    pub interview_id: String,
    pub seq: i64,
    pub question_id: String,
    pub score: i32,
    pub next_action: String,
    pub source: String,
    pub data: String,
    pub ts: NaiveDateTime,
}

impl EvaluationDbRow {
    pub fn new(interview_id: &str, e: EvaluationEntry) -> Result<Self, StoreError> {
        Ok(EvaluationDbRow {
            interview_id: interview_id.to_owned(),
            seq: seq_to_db(e.seq)?,
            score: i32::from(e.evaluation.score),
            next_action: wire_name(&e.evaluation.next_action)?,
            source: wire_name(&e.evaluation.source)?,
            data: to_json("evaluation", &e.evaluation)?,
            question_id: e.evaluation.question_id,
            ts: to_db_time(e.ts),
        })
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = answer_audio)]
pub(super) struct AudioDbRow {
    pub interview_id: String,
    pub question_id: String,
    pub bytes: Vec<u8>,
    pub ts: NaiveDateTime,
}

impl AudioDbRow {
    pub fn new(interview_id: &str, a: AnswerAudio) -> Self {
        AudioDbRow {
            interview_id: interview_id.to_owned(),
            question_id: a.question_id,
            bytes: a.bytes,
            ts: to_db_time(a.ts),
        }
    }
}
