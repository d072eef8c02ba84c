//! `interview-actors`: the interviewd runtime. One `InterviewSession` actor
//! per interview under a `SessionSupervisor`; thin socket actors around
//! actix-ws; an `LlmStream` child per AI turn. No HTTP routes and no SQL:
//! storage and the interviewer come in through `ports`.

pub mod event;
pub mod ports;
pub mod projection;
pub mod protocol;
