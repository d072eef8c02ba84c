//! Read models derived from the event log, written by stores in the same
//! transaction as the events: the transcript, proctor events and evaluations.
//! Derived here once so both databases store exactly the same rows.

use chrono::{DateTime, Utc};

use crate::audience::Viewer;
use crate::event::{Evaluation, Event, LoggedEvent};
use crate::ports::Speaker;
use crate::protocol::{ProctorKind, Severity};

/// A transcript entry: one finished AI message or one candidate answer.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptEntry {
    pub seq: u64,
    pub speaker: Speaker,
    pub text: String,
    pub question_id: Option<String>,
    pub ts: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProctorEntry {
    pub seq: u64,
    pub kind: ProctorKind,
    pub severity: Severity,
    pub message: String,
    pub ts: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationEntry {
    pub seq: u64,
    pub evaluation: Evaluation,
    pub ts: DateTime<Utc>,
}

/// The transcript entry an event contributes, if any. There is one
/// transcript for everyone (both snapshots carry it, and the candidate reads
/// it over REST), so only events the candidate may see add to it.
pub fn transcript_entry(e: &LoggedEvent) -> Option<TranscriptEntry> {
    if !Viewer::Candidate.sees_event(&e.event) {
        return None;
    }
    match &e.event {
        Event::AiStreamEnd { text, .. } if !text.is_empty() => Some(TranscriptEntry {
            seq: e.seq,
            speaker: Speaker::Ai,
            text: text.clone(),
            question_id: None,
            ts: e.ts,
        }),
        Event::CandidateAnswer { question_id, text } => Some(TranscriptEntry {
            seq: e.seq,
            speaker: Speaker::Candidate,
            text: text.clone(),
            question_id: Some(question_id.clone()),
            ts: e.ts,
        }),
        _ => None,
    }
}

pub fn proctor_entry(e: &LoggedEvent) -> Option<ProctorEntry> {
    match &e.event {
        Event::ProctorAlert {
            kind,
            severity,
            message,
        } => Some(ProctorEntry {
            seq: e.seq,
            kind: *kind,
            severity: *severity,
            message: message.clone(),
            ts: e.ts,
        }),
        _ => None,
    }
}

pub fn evaluation_entry(e: &LoggedEvent) -> Option<EvaluationEntry> {
    match &e.event {
        Event::Evaluation(evaluation) => Some(EvaluationEntry {
            seq: e.seq,
            evaluation: evaluation.clone(),
            ts: e.ts,
        }),
        _ => None,
    }
}
