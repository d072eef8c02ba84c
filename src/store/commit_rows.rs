//! What one group commit writes, and how a retried commit stays exactly-once.
//!
//! A commit whose acknowledgement is lost (the connection drops while
//! `COMMIT` is in flight) may have been applied. The session then retries
//! the same events, possibly followed by newer ones, with the same seqs. The
//! backends therefore read which of the batch's seqs are already stored first:
//! a stored prefix identical to the batch's head is skipped (with its
//! projections and audio), anything else is a real conflict and fails the
//! batch. The primary key on `(interview_id, seq)` stays the last guard.

use chrono::NaiveDateTime;
use diesel::dsl;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use interview_actors::ports::{Batch, StoreError};
use interview_actors::projection::{evaluation_entry, proctor_entry, transcript_entry};

use super::models::{
    AudioDbRow, EvaluationDbRow, EventDbRow, ProctorDbRow, RowUpdate, TranscriptDbRow,
};
use super::schema::{answer_audio, session_events};

/// Rows per multi-row INSERT, well under either backend's bound-parameter limit.
pub(super) const INSERT_CHUNK: usize = 200;

/// Every row one batch writes, built before the transaction opens.
pub(super) struct CommitRows {
    pub interview_id: String,
    /// The owner's epoch the batch must be written at; `None`: unfenced.
    pub epoch: Option<i64>,
    pub events: Vec<EventDbRow>,
    pub transcript: Vec<TranscriptDbRow>,
    pub proctor: Vec<ProctorDbRow>,
    pub evaluations: Vec<EvaluationDbRow>,
    pub audio: Vec<AudioDbRow>,
    /// `None`: the batch leaves the row as it was.
    pub update: Option<RowUpdate>,
}

/// An event as stored, as far as telling a replay from a conflict needs.
pub(super) type StoredEventKey = (i64, String, String);

/// The stored events of an interview with `min <= seq <= max`, in seq
/// order, as `StoredEventKey`s. One query for both backends: it loads
/// through diesel's sync API on SQLite and diesel-async's on PostgreSQL.
#[dsl::auto_type]
pub(super) fn stored_events<'a>(interview_id: &'a str, min: i64, max: i64) -> _ {
    session_events::table
        .filter(session_events::interview_id.eq(interview_id))
        .filter(session_events::seq.between(min, max))
        .order(session_events::seq.asc())
        .select((
            session_events::seq,
            session_events::event_type,
            session_events::data,
        ))
}

/// The audio stored for an interview, as `(question_id, ts)`: what
/// `skip_stored_audio` compares.
#[dsl::auto_type]
pub(super) fn stored_audio<'a>(interview_id: &'a str) -> _ {
    answer_audio::table
        .filter(answer_audio::interview_id.eq(interview_id))
        .select((answer_audio::question_id, answer_audio::ts))
}

/// Why a commit failed.
#[derive(Debug)]
pub(super) enum CommitError {
    Db(DieselError),
    /// The interview row does not exist.
    NoInterview,
    /// Some of the batch's seqs are stored with other events.
    Conflict(String),
    /// The interview is owned at another epoch than the batch's: nothing
    /// of it may be written.
    Fenced {
        epoch: i64,
    },
    /// Raised outside the database (pool, timeout).
    Store(StoreError),
}

impl From<DieselError> for CommitError {
    fn from(e: DieselError) -> CommitError {
        CommitError::Db(e)
    }
}

impl CommitRows {
    pub fn new(batch: Batch) -> Result<CommitRows, StoreError> {
        let id = batch.interview_id.as_str();
        let epoch = batch.epoch.map(super::owners::epoch_to_db).transpose()?;
        let mut rows = CommitRows {
            interview_id: batch.interview_id.clone(),
            epoch,
            events: Vec::with_capacity(batch.events.len()),
            transcript: Vec::new(),
            proctor: Vec::new(),
            evaluations: Vec::new(),
            audio: Vec::with_capacity(batch.audio.len()),
            update: batch.row.as_ref().map(RowUpdate::new).transpose()?,
        };
        for e in &batch.events {
            rows.events
                .push(EventDbRow::new(id, e, epoch.unwrap_or(0))?);
            if let Some(t) = transcript_entry(e) {
                rows.transcript.push(TranscriptDbRow::new(id, t)?);
            }
            if let Some(p) = proctor_entry(e) {
                rows.proctor.push(ProctorDbRow::new(id, p)?);
            }
            if let Some(v) = evaluation_entry(e) {
                rows.evaluations.push(EvaluationDbRow::new(id, v)?);
            }
        }
        for a in batch.audio {
            rows.audio.push(AudioDbRow::new(id, a));
        }
        Ok(rows)
    }

    /// The lowest and highest seq of the batch's events, if it has any.
    pub fn seq_range(&self) -> Option<(i64, i64)> {
        let min = self.events.iter().map(|e| e.seq).min()?;
        let max = self.events.iter().map(|e| e.seq).max()?;
        Some((min, max))
    }

    /// Drops the head of the batch that `stored` (the stored events within
    /// `seq_range`, in seq order) shows was committed already. Returns how
    /// many events were dropped; fails if `stored` is not such a head.
    pub fn skip_committed(&mut self, stored: &[StoredEventKey]) -> Result<usize, CommitError> {
        if stored.is_empty() {
            return Ok(0);
        }
        let is_head = stored.len() <= self.events.len()
            && stored
                .iter()
                .zip(&self.events)
                .all(|((seq, kind, data), e)| {
                    *seq == e.seq && *kind == e.event_type && *data == e.data
                });
        if !is_head {
            let seqs: Vec<i64> = stored.iter().map(|(seq, _, _)| *seq).collect();
            return Err(CommitError::Conflict(format!(
                "interview {}: seqs {seqs:?} are already stored with other events",
                self.interview_id
            )));
        }
        let done: Vec<i64> = self.events.drain(..stored.len()).map(|e| e.seq).collect();
        self.transcript.retain(|r| !done.contains(&r.seq));
        self.proctor.retain(|r| !done.contains(&r.seq));
        self.evaluations.retain(|r| !done.contains(&r.seq));
        Ok(done.len())
    }

    /// After a replayed head was skipped: drops audio already stored, known
    /// by `(question_id, ts)` (an answer's audio keeps its time on retries).
    pub fn skip_stored_audio(&mut self, stored: &[(String, NaiveDateTime)]) {
        self.audio.retain(|a| {
            !stored
                .iter()
                .any(|(q, ts)| *q == a.question_id && *ts == a.ts)
        });
    }
}

impl CommitError {
    pub fn into_store_error(self, interview_id: &str) -> StoreError {
        match self {
            CommitError::Db(e) => super::queries::db_error(e),
            CommitError::NoInterview => StoreError::Query(format!("no interview {interview_id}")),
            CommitError::Conflict(m) => StoreError::Query(m),
            CommitError::Fenced { epoch } => StoreError::Fenced {
                interview_id: interview_id.to_owned(),
                epoch: epoch.unsigned_abs(),
            },
            CommitError::Store(e) => e,
        }
    }
}
