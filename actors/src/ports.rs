//! What the runtime needs from the world, as traits: storage, the
//! interviewer (an LLM or the built-in script) and a clock. The binary plugs
//! in SQLite or PostgreSQL, the scripted or the real interviewer; the runtime
//! never knows which it has.

use std::{future::Future, pin::Pin, sync::Arc};

use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::event::{Evaluation, LoggedEvent, Progress, Question, Summary};

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The interview row's `status` (upper case on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum InterviewStatus {
    Pending,
    Created,
    Active,
    Paused,
    Completed,
    Expired,
}

impl InterviewStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InterviewStatus::Pending => "PENDING",
            InterviewStatus::Created => "CREATED",
            InterviewStatus::Active => "ACTIVE",
            InterviewStatus::Paused => "PAUSED",
            InterviewStatus::Completed => "COMPLETED",
            InterviewStatus::Expired => "EXPIRED",
        }
    }

    pub fn parse(s: &str) -> Option<InterviewStatus> {
        Some(match s {
            "PENDING" => InterviewStatus::Pending,
            "CREATED" => InterviewStatus::Created,
            "ACTIVE" => InterviewStatus::Active,
            "PAUSED" => InterviewStatus::Paused,
            "COMPLETED" => InterviewStatus::Completed,
            "EXPIRED" => InterviewStatus::Expired,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, InterviewStatus::Completed | InterviewStatus::Expired)
    }
}

/// One question of the interview's template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateQuestion {
    pub id: String,
    pub text: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// An interview as created over HTTP: who, for which organisation, and the
/// template of questions. Immutable once created; what changes lives in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct InterviewRecord {
    pub id: String,
    pub org_id: String,
    pub title: String,
    pub candidate_name: String,
    pub candidate_id: String,
    pub questions: Vec<TemplateQuestion>,
    pub duration_minutes: u32,
    pub status: InterviewStatus,
    pub created_at: DateTime<Utc>,
}

/// An interview and its whole event log, in `seq` order.
#[derive(Debug, Clone)]
pub struct StoredInterview {
    pub record: InterviewRecord,
    /// When the stored status began (the TTL of a created interview runs
    /// from here, not from when it was first invited).
    pub status_since: Option<DateTime<Utc>>,
    pub events: Vec<LoggedEvent>,
}

/// The interview row as it stands after a batch: what HTTP reads serve
/// without asking a session.
#[derive(Debug, Clone, PartialEq)]
pub struct InterviewRow {
    pub status: InterviewStatus,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub progress: Progress,
    pub trust_score: u8,
    pub summary: Option<Summary>,
    pub last_seq: u64,
    /// When the current status began (`None` before the first event); the
    /// expiry sweep reads it.
    pub status_since: Option<DateTime<Utc>>,
}

/// Raw audio of one answer, kept with the interview.
#[derive(Debug, Clone)]
pub struct AnswerAudio {
    pub question_id: String,
    pub bytes: Vec<u8>,
    pub ts: DateTime<Utc>,
}

/// One group commit: events in `seq` order and the row they leave behind,
/// written in one transaction. Transcript, proctor and evaluation tables are
/// projections of `events` (see `crate::projection`).
#[derive(Debug, Clone)]
pub struct Batch {
    pub interview_id: String,
    pub events: Vec<Arc<LoggedEvent>>,
    /// `None` when the batch leaves the row as it was (its `last_seq` aside,
    /// which readers take from the log): most batches, and writing the row
    /// for each of them was most of a commit's cost.
    pub row: Option<InterviewRow>,
    pub audio: Vec<AnswerAudio>,
    /// The ownership epoch the batch is written at: the store refuses it
    /// (`StoreError::Fenced`) unless the interview is still owned at that
    /// epoch, and stores it with each event. `None` writes unfenced (epoch
    /// 0): one process owning the whole database, as the embedded default.
    pub epoch: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Query(String),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Another live node owns the interview: it may not be acquired now.
    #[error("interview {interview_id} is owned by node {node_id} at epoch {epoch}")]
    Owned {
        interview_id: String,
        node_id: String,
        epoch: u64,
    },
    /// The batch's epoch is no longer the interview's owner epoch (another
    /// node took it over, or it was released): nothing was written, and
    /// nothing of it may be sent.
    #[error("interview {interview_id}: epoch {epoch} was fenced off, nothing written")]
    Fenced { interview_id: String, epoch: u64 },
}

/// Durable storage of interviews and their logs.
///
/// Implementations must not cancel a query when the returned future is
/// dropped (SQLite through diesel-async panics if they do): run queries on a
/// task of their own and let the future only wait for the answer.
pub trait EventStore: Send + Sync + 'static {
    /// The interview and its full log, or `None` if there is no such interview.
    fn load(&self, interview_id: &str) -> BoxFuture<Result<Option<StoredInterview>, StoreError>>;

    /// Writes one batch in one transaction. A batch with no events still
    /// updates the row (e.g. `PENDING` to `CREATED`).
    fn commit(&self, batch: Batch) -> BoxFuture<Result<(), StoreError>>;

    /// Events of one interview with `seq > after`, in order, at most
    /// `limit`, every audience: the pages of a replay older than what a
    /// session keeps in memory.
    fn read_after(
        &self,
        interview_id: &str,
        after: u64,
        limit: u32,
    ) -> BoxFuture<Result<Vec<LoggedEvent>, StoreError>>;

    /// Interviews `CREATED` or `PAUSED` since before `before` (candidates for
    /// expiry), at most `limit`.
    fn stale(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> BoxFuture<Result<Vec<String>, StoreError>>;
}

/// Which node may write an interview's log (DESIGN.md, "Several nodes").
/// The supervisor acquires before it loads a session, and every batch the
/// session commits carries the epoch it got: the store refuses batches of
/// an epoch that is no longer the owner's (`StoreError::Fenced`).
pub trait Ownership: Send + Sync + 'static {
    /// Makes this node the interview's owner: its new epoch, `None` when
    /// ownership is not in force (one process owns the whole database, as
    /// the embedded default), or `StoreError::Owned` while another live
    /// node owns it.
    fn acquire(&self, interview_id: &str) -> BoxFuture<Result<Option<u64>, StoreError>>;

    /// Lets the interview go at `epoch` (passivation, drain), so another
    /// node may take it at once. A no-op if `epoch` is no longer the owner's.
    fn release(&self, interview_id: &str, epoch: u64) -> BoxFuture<Result<(), StoreError>>;
}

/// Ownership for one process owning its database: nothing to acquire.
#[derive(Debug, Clone, Copy, Default)]
pub struct SoleOwner;

impl Ownership for SoleOwner {
    fn acquire(&self, _: &str) -> BoxFuture<Result<Option<u64>, StoreError>> {
        Box::pin(async { Ok(None) })
    }

    fn release(&self, _: &str, _: u64) -> BoxFuture<Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
}

/// One line of the conversation, as an interviewer sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptLine {
    pub speaker: Speaker,
    pub text: String,
    pub seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    Ai,
    Candidate,
}

/// What the interviewer is asked to say in one turn.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnKind {
    /// Greet the candidate and ask the first question.
    Opening,
    /// Acknowledge the last answer and ask the next template question.
    NextQuestion,
    /// Ask a follow-up on the same question.
    FollowUp,
    /// Thank the candidate and close.
    Closing,
}

/// A request for one streamed interviewer message.
#[derive(Debug, Clone)]
pub struct Turn {
    pub kind: TurnKind,
    pub interview: Arc<InterviewRecord>,
    /// The question this message ends with (none for `Closing`).
    pub question: Option<Question>,
    /// The conversation so far.
    pub transcript: Vec<TranscriptLine>,
}

/// A request to score one answer.
#[derive(Debug, Clone)]
pub struct AnswerToScore {
    pub interview: Arc<InterviewRecord>,
    pub question: Question,
    pub answer: String,
    /// Follow-ups already asked on this template question.
    pub follow_ups_asked: u32,
    /// Whether this is the template's last question.
    pub is_last_question: bool,
    pub transcript: Vec<TranscriptLine>,
}

/// The interviewer's verdict on one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub evaluation: Evaluation,
    /// The follow-up to ask when `evaluation.next_action` is `follow_up`.
    pub follow_up_question: Option<String>,
}

/// One answered question, for the final summary.
#[derive(Debug, Clone, PartialEq)]
pub struct AnsweredQuestion {
    pub question: Question,
    pub answer: String,
    pub evaluation: Evaluation,
    pub response_ms: Option<u64>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum InterviewerError {
    #[error("interviewer unavailable: {0}")]
    Unavailable(String),
    #[error("interviewer timed out")]
    Timeout,
    #[error("interviewer answered something unusable: {0}")]
    Invalid(String),
}

/// The AI interviewer: streams what it says, scores answers, sums up.
pub trait Interviewer: Send + Sync + 'static {
    /// Streams one message as text pieces (tokens or words), in order.
    /// Dropping the stream must abandon the underlying request.
    fn speak(&self, turn: Turn) -> BoxStream<'static, Result<String, InterviewerError>>;

    /// Scores one answer and decides what comes next.
    fn evaluate(&self, answer: AnswerToScore) -> BoxFuture<Result<Assessment, InterviewerError>>;

    /// The summary of a finished interview.
    fn summarize(
        &self,
        interview: Arc<InterviewRecord>,
        answers: Vec<AnsweredQuestion>,
    ) -> BoxFuture<Result<Summary, InterviewerError>>;
}

/// Wall-clock time, behind a trait so that timers can be driven in tests.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// What speech-to-text heard.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub text: String,
    /// 0..=1 when the provider reports it.
    pub confidence: Option<f64>,
}

/// Speech-to-text for spoken answers (OpenAI-compatible
/// `/audio/transcriptions`). Optional: without it, answers are the
/// transcription the client sends.
pub trait Transcriber: Send + Sync + 'static {
    fn transcribe(&self, audio: Vec<u8>) -> BoxFuture<Result<Transcript, InterviewerError>>;
}

/// Text-to-speech for questions (OpenAI-compatible `/audio/speech`).
/// Optional: without it, questions go out without `audioUrl`.
pub trait QuestionVoice: Send + Sync + 'static {
    /// Synthesises `text` once (later calls for the same text reuse it) and
    /// returns the URL the server serves it at.
    fn audio_url(&self, text: &str) -> BoxFuture<Result<String, InterviewerError>>;
}
