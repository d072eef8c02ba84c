//! `interview-actors`: the interviewd runtime. One `InterviewSession` actor
//! per interview under a `SessionSupervisor`; thin socket actors around
//! actix-ws; an `LlmStream` child per AI turn. No HTTP routes and no SQL:
//! storage and the interviewer come in through `ports`.

pub mod audience;
pub mod connection;
pub mod event;
pub mod heuristic;
pub mod llm_stream;
pub mod metrics;
pub mod ports;
pub mod projection;
pub mod protocol;
pub mod rooms;
pub mod session;
pub mod settings;
pub mod socket;
pub mod supervisor;
pub mod trust;

use std::sync::Arc;

/// What every session needs from the world, shared by all of them.
#[derive(Clone)]
pub struct Runtime {
    pub store: Arc<dyn ports::EventStore>,
    /// Who may write which interview: `ports::SoleOwner` when this process
    /// owns the whole database.
    pub ownership: Arc<dyn ports::Ownership>,
    pub interviewer: Arc<dyn ports::Interviewer>,
    /// What speaks when `interviewer` fails: the scripted interviewer.
    pub fallback: Arc<dyn ports::Interviewer>,
    /// Speech-to-text for spoken answers, when configured.
    pub transcriber: Option<Arc<dyn ports::Transcriber>>,
    /// Question audio, when configured.
    pub voice: Option<Arc<dyn ports::QuestionVoice>>,
    pub clock: Arc<dyn ports::Clock>,
    pub settings: Arc<settings::RuntimeSettings>,
}
