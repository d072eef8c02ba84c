//! Every Prometheus metric the runtime records, named in one place
//! (`interviewd_` prefix, `_total` counters, base units). The runtime only
//! records through the `metrics` facade; the binary installs the exporter
//! and serves `GET /metrics`.

use std::time::Duration;

use metrics::{counter, gauge, histogram};

use crate::session::state::Phase;

/// A session actor entered `to` (from `from`, or newly started); `None` as
/// `to` means the actor stopped.
pub fn session_phase(from: Option<Phase>, to: Option<Phase>) {
    if let Some(from) = from {
        gauge!("interviewd_sessions", "state" => from.as_str()).decrement(1.0);
    }
    if let Some(to) = to {
        gauge!("interviewd_sessions", "state" => to.as_str()).increment(1.0);
    }
    if let (Some(from), Some(to)) = (from, to) {
        if from != to {
            counter!("interviewd_session_transitions_total", "from" => from.as_str(), "to" => to.as_str())
                .increment(1);
        }
    }
}

pub fn session_restarted() {
    counter!("interviewd_session_restarts_total").increment(1);
}

/// A commit refused because another node owns the interview now.
pub fn commit_fenced() {
    counter!("interviewd_commits_fenced_total").increment(1);
}

pub fn socket_opened(role: &'static str) {
    gauge!("interviewd_sockets", "role" => role).increment(1.0);
}

pub fn socket_closed(role: &'static str) {
    gauge!("interviewd_sockets", "role" => role).decrement(1.0);
}

pub fn frame_in(kind: &'static str) {
    counter!("interviewd_frames_in_total", "type" => kind).increment(1);
}

pub fn frame_out(kind: &'static str) {
    counter!("interviewd_frames_out_total", "type" => kind).increment(1);
}

/// A frame refused before parsing: `rate` or `size`.
pub fn frame_rejected(reason: &'static str) {
    counter!("interviewd_rejected_frames_total", "reason" => reason).increment(1);
}

pub fn slow_consumer(role: &'static str) {
    counter!("interviewd_slow_consumers_total", "role" => role).increment(1);
}

pub fn heartbeat_timeout(role: &'static str) {
    counter!("interviewd_heartbeat_timeouts_total", "role" => role).increment(1);
}

/// A join or observe with `lastSeq`: replayed `events`, `recovered` or not.
pub fn resume(recovered: bool, events: usize) {
    let recovered = if recovered { "true" } else { "false" };
    counter!("interviewd_resumes_total", "recovered" => recovered).increment(1);
    counter!("interviewd_replayed_events_total").increment(events as u64);
}

pub fn llm_first_token(latency: Duration) {
    histogram!("interviewd_llm_first_token_seconds").record(latency.as_secs_f64());
}

pub fn llm_turn(latency: Duration) {
    histogram!("interviewd_llm_turn_seconds").record(latency.as_secs_f64());
}

pub fn llm_token() {
    counter!("interviewd_llm_tokens_total").increment(1);
}

/// An interviewer failure: `timeout`, `unavailable` or `invalid`.
pub fn llm_failure(kind: &'static str) {
    counter!("interviewd_llm_failures_total", "kind" => kind).increment(1);
}

pub fn db_commit(latency: Duration, events: usize, ok: bool) {
    let outcome = if ok { "ok" } else { "error" };
    histogram!("interviewd_db_commit_seconds", "outcome" => outcome).record(latency.as_secs_f64());
    if ok {
        histogram!("interviewd_db_batch_events").record(events as f64);
    }
}

/// Describes every family (Prometheus `# HELP`) and touches each with zero,
/// so a scrape shows them all from the start, not only after the first
/// event of a kind.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!("interviewd_sessions", "Live session actors by state");
    describe_counter!(
        "interviewd_session_transitions_total",
        "Session state transitions by from/to"
    );
    describe_counter!(
        "interviewd_session_restarts_total",
        "Sessions rebuilt by the supervisor after a panic"
    );
    describe_counter!(
        "interviewd_commits_fenced_total",
        "Commits refused because another node took the interview over; the session stopped"
    );
    describe_gauge!("interviewd_sockets", "Open WebSocket connections by role");
    describe_gauge!(
        "interviewd_socket_capacity",
        "Most WebSocket connections the process takes (MAX_SOCKETS or its descriptor limit)"
    );
    describe_counter!(
        "interviewd_sockets_refused_total",
        "Sockets refused with 429 (address, total) or closed with 4009 (token)"
    );
    describe_counter!(
        "interviewd_frames_in_total",
        "Client frames received, by type"
    );
    describe_counter!(
        "interviewd_frames_out_total",
        "Frames sent to clients, by type"
    );
    describe_counter!(
        "interviewd_rejected_frames_total",
        "Client frames refused by rate or size"
    );
    describe_counter!(
        "interviewd_slow_consumers_total",
        "Sockets closed with 4008 because their outbox overflowed"
    );
    describe_counter!(
        "interviewd_heartbeat_timeouts_total",
        "Sockets closed with 4006"
    );
    describe_counter!(
        "interviewd_resumes_total",
        "Joins and observes with lastSeq, by recovered"
    );
    describe_counter!(
        "interviewd_replayed_events_total",
        "Events replayed to resuming clients"
    );
    describe_histogram!(
        "interviewd_llm_first_token_seconds",
        Unit::Seconds,
        "Time to an interviewer message's first piece"
    );
    describe_histogram!(
        "interviewd_llm_turn_seconds",
        Unit::Seconds,
        "Time to a whole interviewer message"
    );
    describe_counter!("interviewd_llm_tokens_total", "Interviewer pieces streamed");
    describe_counter!(
        "interviewd_llm_failures_total",
        "Interviewer failures by kind"
    );
    describe_histogram!(
        "interviewd_db_commit_seconds",
        Unit::Seconds,
        "Event batch commit latency"
    );
    describe_histogram!("interviewd_db_batch_events", "Events per committed batch");
    describe_gauge!(
        "interviewd_process_resident_memory_bytes",
        Unit::Bytes,
        "Resident set size of the process"
    );

    for role in ["candidate", "recruiter", "admin", "service"] {
        gauge!("interviewd_sockets", "role" => role).increment(0.0);
        counter!("interviewd_slow_consumers_total", "role" => role).absolute(0);
        counter!("interviewd_heartbeat_timeouts_total", "role" => role).absolute(0);
    }
    for state in ["created", "active", "paused", "completed", "expired"] {
        gauge!("interviewd_sessions", "state" => state).increment(0.0);
    }
    for reason in ["address", "total", "token"] {
        counter!("interviewd_sockets_refused_total", "reason" => reason).absolute(0);
    }
    for reason in ["rate", "size"] {
        counter!("interviewd_rejected_frames_total", "reason" => reason).absolute(0);
    }
    for kind in ["timeout", "unavailable", "invalid"] {
        counter!("interviewd_llm_failures_total", "kind" => kind).absolute(0);
    }
    for recovered in ["true", "false"] {
        counter!("interviewd_resumes_total", "recovered" => recovered).absolute(0);
    }
    counter!("interviewd_session_restarts_total").absolute(0);
    counter!("interviewd_commits_fenced_total").absolute(0);
    counter!("interviewd_replayed_events_total").absolute(0);
    counter!("interviewd_llm_tokens_total").absolute(0);
}

/// The process's cap on sockets, from `MAX_SOCKETS` or its descriptor limit.
pub fn socket_capacity(total: usize) {
    gauge!("interviewd_socket_capacity").set(total as f64);
}

/// A socket refused before its upgrade (`address`, `total`: HTTP 429) or
/// closed after it to make room for a newer one of its token (`token`: 4009).
pub fn socket_refused(reason: &'static str) {
    counter!("interviewd_sockets_refused_total", "reason" => reason).increment(1);
}
