//! Session events: the entries of an interview's log (PROTOCOL section 5).
//!
//! Every event gets the next `seq` of its interview, is made durable, and only
//! then is fanned out. The log is the source of truth: an interview's state is
//! a fold over its events (see `session::state`), which is how a session is
//! rebuilt after a restart or passivation.

use bytestring::ByteString;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::audience::Audience;
use crate::protocol::{rfc3339, ProctorKind, Severity};

/// One session event, typed. Serialises as `{"type": "...", "data": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    content = "data",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum Event {
    CandidateJoined {
        candidate_name: String,
    },
    InterviewStarted {
        started_at: String,
        first_question: String,
    },
    AiThinking {},
    AiStreamStart {
        message_id: String,
    },
    AiToken {
        message_id: String,
        text: String,
    },
    AiStreamEnd {
        message_id: String,
        text: String,
        interrupted: bool,
    },
    Question(Question),
    Transcription {
        text: String,
        is_final: bool,
        confidence: f64,
    },
    CandidateAnswer {
        question_id: String,
        text: String,
    },
    Evaluation(Evaluation),
    ProgressUpdate {
        progress: Progress,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        score: Option<u8>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        evaluation: Option<Evaluation>,
    },
    ProctorAlert {
        #[serde(rename = "type")]
        kind: ProctorKind,
        severity: Severity,
        message: String,
    },
    TrustScoreUpdate {
        trust_score: u8,
    },
    InterviewInterrupted {
        reason: String,
    },
    InterviewPaused {
        reason: PauseReason,
    },
    InterviewResumed {},
    InterviewCompleted {
        summary: Summary,
    },
    InterviewExpired {},
}

// Who may see an event (`Event::audience`) is decided in `crate::audience`,
// beside the rest of that rule.
impl Event {
    /// The wire name, e.g. `ai-token`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::CandidateJoined { .. } => "candidate-joined",
            Event::InterviewStarted { .. } => "interview-started",
            Event::AiThinking {} => "ai-thinking",
            Event::AiStreamStart { .. } => "ai-stream-start",
            Event::AiToken { .. } => "ai-token",
            Event::AiStreamEnd { .. } => "ai-stream-end",
            Event::Question(_) => "question",
            Event::Transcription { .. } => "transcription",
            Event::CandidateAnswer { .. } => "candidate-answer",
            Event::Evaluation(_) => "evaluation",
            Event::ProgressUpdate { .. } => "progress-update",
            Event::ProctorAlert { .. } => "proctor-alert",
            Event::TrustScoreUpdate { .. } => "trust-score-update",
            Event::InterviewInterrupted { .. } => "interview-interrupted",
            Event::InterviewPaused { .. } => "interview-paused",
            Event::InterviewResumed {} => "interview-resumed",
            Event::InterviewCompleted { .. } => "interview-completed",
            Event::InterviewExpired {} => "interview-expired",
        }
    }

    /// The `data` object alone, as stored in the database.
    pub fn data(&self) -> Value {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut m)) => m
                .remove("data")
                .unwrap_or(Value::Object(Default::default())),
            _ => Value::Object(Default::default()),
        }
    }

    /// Rebuilds an event from its stored `type` and `data`.
    pub fn from_parts(kind: &str, data: Value) -> Result<Event, serde_json::Error> {
        serde_json::from_value(serde_json::json!({ "type": kind, "data": data }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PauseReason {
    Disconnect,
    Candidate,
    Recruiter,
    Server,
}

/// The `question` event's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Question {
    pub question_id: String,
    pub text: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// 1-based position of the template question (a follow-up keeps its parent's).
    pub order: u32,
    pub total: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_url: Option<String>,
    pub follow_up: bool,
}

/// What the interviewer does after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextAction {
    FollowUp,
    NextQuestion,
    Complete,
}

/// Where a score came from: a model, or the transparent heuristic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreSource {
    Llm,
    Heuristic,
}

/// The `evaluation` event's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    pub question_id: String,
    pub score: u8,
    pub strengths: Vec<String>,
    pub weaknesses: Vec<String>,
    pub feedback: String,
    pub next_action: NextAction,
    pub source: ScoreSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub current_question: u32,
    pub total_questions: u32,
    pub answered: u32,
}

/// The `interview-completed` summary. Scores are null when nothing was answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub overall_score: Option<u8>,
    pub recommendation: Option<String>,
    pub strengths: Vec<String>,
    pub weaknesses: Vec<String>,
    pub category_scores: std::collections::BTreeMap<String, u8>,
    pub questions_answered: u32,
    pub average_response_ms: Option<u64>,
}

/// An event with its place in the log, and its wire frame serialised once for
/// every socket that receives it.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    pub seq: u64,
    pub ts: DateTime<Utc>,
    pub event: Event,
    /// The wire frame; cloning it is a reference-count bump.
    pub frame: ByteString,
}

impl LoggedEvent {
    pub fn new(seq: u64, ts: DateTime<Utc>, event: Event) -> LoggedEvent {
        let frame = serde_json::json!({
            "type": event.type_name(),
            "seq": seq,
            "ts": rfc3339(ts),
            "data": event.data(),
        })
        .to_string()
        .into();
        LoggedEvent {
            seq,
            ts,
            event,
            frame,
        }
    }

    pub fn audience(&self) -> Audience {
        self.event.audience()
    }
}

#[cfg(test)]
#[path = "tests/event.rs"]
mod tests;
