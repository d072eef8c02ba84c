//! The runtime's knobs, taken from the binary's configuration.

use std::time::Duration;

/// Limits and timers of sockets and sessions.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// Server pings every interval; a socket silent for two is closed with 4006.
    pub heartbeat_interval: Duration,
    /// A session with no sockets for this long is stopped (its state stays stored).
    pub idle_passivate: Duration,
    /// A created or paused interview expires after this.
    pub session_ttl: Duration,
    /// Frames larger than this get `PAYLOAD_TOO_LARGE`.
    pub max_frame_bytes: usize,
    /// Frames larger than this close the socket with 1009.
    pub hard_frame_bytes: usize,
    pub rate_per_sec: u32,
    pub rate_burst: u32,
    /// Frames queued for one socket before it counts as a slow consumer (4008).
    pub outbox_frames: usize,
    /// Audio buffered for one answer.
    pub max_audio_bytes: usize,
    /// This node's name, for logs and inspection.
    pub node_id: String,
    /// An interviewer message must be done within this, and its first
    /// piece must come within a third of it.
    pub llm_timeout: Duration,
    /// A database outage longer than this pauses active interviews.
    pub db_outage_pause: Duration,
    /// Proctor events one interview takes: a rate per minute and a burst.
    pub proctor_per_min: u32,
    pub proctor_burst: u32,
    /// One interview's log at most, in events and in bytes (frames and
    /// audio); past either, client commands that add to it are refused.
    pub max_interview_events: u64,
    pub max_interview_bytes: u64,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        RuntimeSettings {
            heartbeat_interval: Duration::from_secs(30),
            idle_passivate: Duration::from_secs(300),
            session_ttl: Duration::from_secs(86_400),
            max_frame_bytes: 64 * 1024,
            hard_frame_bytes: 1024 * 1024,
            rate_per_sec: 50,
            rate_burst: 100,
            outbox_frames: 1024,
            max_audio_bytes: 10 * 1024 * 1024,
            node_id: "local".into(),
            llm_timeout: Duration::from_secs(30),
            db_outage_pause: Duration::from_secs(30),
            proctor_per_min: 30,
            proctor_burst: 10,
            max_interview_events: 100_000,
            max_interview_bytes: 64 * 1024 * 1024,
        }
    }
}
