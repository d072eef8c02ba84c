//! Load generator for `interviewd`: drives a real server (one it starts on
//! the embedded default, or any `--url`) over real WebSockets with the
//! traffic of live interviews, and reports what the issue asks for: connect
//! rate, fan-out and token relay latency, delivered frames, the server's
//! memory per idle socket and interview, CPU per 100k delivered frames, and
//! a resume storm's time to live with duplicates and gaps counted.
//!
//! Five scenarios, each one function returning a [`report::Report`]:
//! - [`scenario::idle`]: N interviews, a candidate and K observers each,
//!   heartbeats only; server RSS at 0, N/2 and N.
//! - [`scenario::active`]: N interviews streaming (scripted interviewer or the
//!   built-in LLM fake), candidates answering with audio, proctor events and
//!   heartbeats; K observers each.
//! - [`scenario::storm`]: the active set-up, then every client drops at once
//!   and rejoins with `lastSeq`.
//! - [`scenario::dormant`]: N interviews created and started, passivated,
//!   R of them re-activated.
//! - [`scenario::soak`]: honest active interviews before, during and after
//!   every hostile client of [`hostile`]; server RSS, descriptors, honest
//!   latency and `/healthz` per phase.
//!
//! The `loadgen` binary is a thin command line over these; the smoke test
//! (`tests/loadgen_smoke.rs`) calls them in-process against the real server
//! binary.

pub mod fdlimit;
pub mod fleet;
pub mod hostile;
pub mod llm_fake;
pub mod participant;
pub mod report;
pub mod scenario;
pub mod server;
pub mod stats;
pub mod tokens;
pub mod ws;

pub use report::Report;
pub use server::{Server, ServerOpts};
