//! Where an interview stands, as a fold over its event log. The same `apply`
//! runs live and when a session is rebuilt from the database, so a rebuilt
//! session is the session it was.

use chrono::{DateTime, Utc};

use crate::event::{Event, LoggedEvent, NextAction, PauseReason, Progress, Question, Summary};
use crate::ports::{AnsweredQuestion, InterviewRecord, InterviewRow, InterviewStatus};

/// The session actor's lifecycle state (lower case on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Created,
    Active,
    Paused(PauseReason),
    Completed,
    Expired,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Created => "created",
            Phase::Active => "active",
            Phase::Paused(_) => "paused",
            Phase::Completed => "completed",
            Phase::Expired => "expired",
        }
    }

    pub fn status(self) -> InterviewStatus {
        match self {
            Phase::Created => InterviewStatus::Created,
            Phase::Active => InterviewStatus::Active,
            Phase::Paused(_) => InterviewStatus::Paused,
            Phase::Completed => InterviewStatus::Completed,
            Phase::Expired => InterviewStatus::Expired,
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Completed | Phase::Expired)
    }
}

/// The interviewer message the interview is waiting for.
#[derive(Debug, Clone, PartialEq)]
pub enum Owed {
    /// Greeting and the first question.
    Opening,
    /// Acknowledgement and the template question at this index.
    Next(usize),
    /// A follow-up; the text is known live, and lost only if the server died
    /// between the evaluation and the question (a generic one is asked then).
    FollowUp(Option<String>),
    /// The closing line.
    Closing,
    /// The closing line was said; the summary is due.
    Summary,
}

/// An answer given but not yet evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingAnswer {
    pub question: Question,
    pub text: String,
    pub response_ms: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct SessionState {
    pub phase: Phase,
    pub total_questions: u32,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub current_question: Option<Question>,
    pub question_asked_at: Option<DateTime<Utc>>,
    pub awaiting_answer: bool,
    /// Index of the current template question.
    pub template_index: usize,
    /// Follow-ups asked on the current template question.
    pub follow_ups: u32,
    pub owed: Option<Owed>,
    pub pending_answer: Option<PendingAnswer>,
    pub answers: Vec<AnsweredQuestion>,
    /// Template questions with at least one answer.
    pub answered: u32,
    pub last_score: Option<u8>,
    pub trust_score: u8,
    /// The interviewer message being streamed: id and text so far.
    pub open_message: Option<(String, String)>,
    pub summary: Option<Summary>,
    pub last_seq: u64,
    /// When the phase last changed (TTL of created and paused interviews).
    pub phase_since: Option<DateTime<Utc>>,
}

impl SessionState {
    pub fn new(record: &InterviewRecord) -> SessionState {
        SessionState {
            phase: Phase::Created,
            total_questions: record.questions.len() as u32,
            started_at: None,
            ended_at: None,
            current_question: None,
            question_asked_at: None,
            awaiting_answer: false,
            template_index: 0,
            follow_ups: 0,
            owed: None,
            pending_answer: None,
            answers: Vec::new(),
            answered: 0,
            last_score: None,
            trust_score: 100,
            open_message: None,
            summary: None,
            last_seq: 0,
            phase_since: None,
        }
    }

    /// Folds one event into the state.
    pub fn apply(&mut self, logged: &LoggedEvent) {
        self.last_seq = logged.seq;
        let ts = logged.ts;
        let phase_before = self.phase;
        self.apply_event(logged, ts);
        if self.phase != phase_before {
            self.phase_since = Some(ts);
        }
    }

    fn apply_event(&mut self, logged: &LoggedEvent, ts: DateTime<Utc>) {
        match &logged.event {
            Event::InterviewStarted { .. } => {
                self.phase = Phase::Active;
                self.started_at = Some(ts);
                self.owed = Some(Owed::Opening);
            }
            Event::AiStreamStart { message_id } => {
                self.open_message = Some((message_id.clone(), String::new()));
            }
            Event::AiToken { message_id, text } => {
                if let Some((id, so_far)) = &mut self.open_message {
                    if id == message_id {
                        so_far.push_str(text);
                    }
                }
            }
            Event::AiStreamEnd { interrupted, .. } => {
                self.open_message = None;
                if !interrupted && self.owed == Some(Owed::Closing) {
                    self.owed = Some(Owed::Summary);
                }
            }
            Event::Question(q) => {
                if q.follow_up {
                    self.follow_ups += 1;
                } else {
                    self.template_index = q.order.saturating_sub(1) as usize;
                    self.follow_ups = 0;
                }
                self.current_question = Some(q.clone());
                self.question_asked_at = Some(ts);
                self.awaiting_answer = true;
                self.owed = None;
            }
            Event::CandidateAnswer { text, .. } => {
                self.awaiting_answer = false;
                if let Some(q) = &self.current_question {
                    if !q.follow_up {
                        self.answered += 1;
                    }
                    self.pending_answer = Some(PendingAnswer {
                        question: q.clone(),
                        text: text.clone(),
                        response_ms: self
                            .question_asked_at
                            .map(|asked| (ts - asked).num_milliseconds().max(0) as u64),
                    });
                }
            }
            Event::Evaluation(evaluation) => {
                if let Some(pending) = self.pending_answer.take() {
                    self.answers.push(AnsweredQuestion {
                        question: pending.question,
                        answer: pending.text,
                        evaluation: evaluation.clone(),
                        response_ms: pending.response_ms,
                    });
                }
                self.last_score = Some(evaluation.score);
                self.owed = Some(match evaluation.next_action {
                    NextAction::FollowUp => Owed::FollowUp(None),
                    NextAction::NextQuestion
                        if self.template_index + 1 < self.total_questions as usize =>
                    {
                        Owed::Next(self.template_index + 1)
                    }
                    NextAction::NextQuestion | NextAction::Complete => Owed::Closing,
                });
            }
            Event::TrustScoreUpdate { trust_score } => self.trust_score = *trust_score,
            Event::InterviewPaused { reason } => self.phase = Phase::Paused(*reason),
            Event::InterviewResumed {} => self.phase = Phase::Active,
            Event::InterviewCompleted { summary } => {
                self.phase = Phase::Completed;
                self.ended_at = Some(ts);
                self.summary = Some(summary.clone());
                self.awaiting_answer = false;
                self.owed = None;
            }
            Event::InterviewExpired {} => {
                self.phase = Phase::Expired;
                self.ended_at = Some(ts);
                self.awaiting_answer = false;
                self.owed = None;
            }
            Event::CandidateJoined { .. }
            | Event::AiThinking {}
            | Event::Transcription { .. }
            | Event::ProgressUpdate { .. }
            | Event::ProctorAlert { .. }
            | Event::InterviewInterrupted { .. } => {}
        }
    }

    /// `currentQuestion` is the template question being asked, or about to
    /// be asked once the interviewer has moved on.
    pub fn progress(&self) -> Progress {
        let asked = self.current_question.as_ref().map_or(0, |q| q.order);
        let current = match self.owed {
            Some(Owed::Next(index)) => index as u32 + 1,
            Some(Owed::Opening) => 1,
            _ => asked,
        };
        Progress {
            current_question: current,
            total_questions: self.total_questions,
            answered: self.answered,
        }
    }

    /// The interview row this state leaves behind.
    pub fn row(&self) -> InterviewRow {
        InterviewRow {
            status: self.phase.status(),
            started_at: self.started_at,
            ended_at: self.ended_at,
            progress: self.progress(),
            trust_score: self.trust_score,
            summary: self.summary.clone(),
            last_seq: self.last_seq,
            status_since: self.phase_since,
        }
    }
}
