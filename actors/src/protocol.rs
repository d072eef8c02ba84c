//! The wire contract (docs/protocol.md): what clients send, what the server
//! answers, and the session events that make up an interview's log.
//!
//! Client frames are parsed in two steps, so that every failure maps to the
//! error code the protocol names: JSON and `type` first (`INVALID_MESSAGE`),
//! then the role (`INVALID_MESSAGE` for another role's type), then the data.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// RFC 3339 UTC with milliseconds, the one time format of the protocol.
pub fn rfc3339(ts: DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Error codes of PROTOCOL section 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    InvalidMessage,
    AccessDenied,
    InterviewNotFound,
    InvalidState,
    AlreadyJoined,
    RateLimited,
    PayloadTooLarge,
    /// The interview's log is at its size limit (`MAX_INTERVIEW_*`).
    LimitReached,
    SessionExpired,
    AiUnavailable,
    InternalError,
    Unauthorized,
}

impl ErrorCode {
    /// Whether a client may try the same thing again later.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::RateLimited | ErrorCode::AiUnavailable | ErrorCode::InternalError
        )
    }

    /// The close code that follows this error when a join cannot be served.
    pub fn join_close_code(self) -> Option<u16> {
        match self {
            ErrorCode::InterviewNotFound => Some(close::NOT_FOUND),
            ErrorCode::InvalidState => Some(close::INVALID_STATE),
            ErrorCode::AccessDenied => Some(close::ACCESS_DENIED),
            _ => None,
        }
    }
}

/// Close codes of PROTOCOL section 8.
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const SERVER_ERROR: u16 = 1011;
    pub const RESTARTING: u16 = 1012;
    pub const UNAUTHORIZED: u16 = 4001;
    pub const NOT_FOUND: u16 = 4002;
    pub const INVALID_STATE: u16 = 4003;
    pub const ACCESS_DENIED: u16 = 4004;
    pub const REPLACED: u16 = 4005;
    pub const HEARTBEAT_TIMEOUT: u16 = 4006;
    pub const SLOW_CONSUMER: u16 = 4008;
    /// A newer socket of the same token took this one's place.
    pub const TOO_MANY_SOCKETS: u16 = 4009;
}

/// A protocol error: what goes into an `error` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ProtocolError {
            code,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidMessage, message)
    }
    pub fn state(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidState, message)
    }
}

/// Who is on the other end of a socket, from the JWT's `role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Candidate,
    Recruiter,
    Admin,
    /// Backend services (notifications); never joins an interview.
    Service,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Candidate => "candidate",
            Role::Recruiter => "recruiter",
            Role::Admin => "admin",
            Role::Service => "service",
        }
    }
}

/// Proctoring signal kinds the candidate's client may report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProctorKind {
    FaceDetection,
    TabSwitch,
    FullscreenExit,
    MultipleVoices,
    CopyPaste,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

/// A command parsed from one client text frame, already checked against the
/// sender's role.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientCommand {
    JoinInterview {
        interview_id: String,
        last_seq: Option<u64>,
    },
    ObserveInterview {
        interview_id: String,
        last_seq: Option<u64>,
    },
    StartInterview,
    Answer {
        text: String,
    },
    AudioChunk {
        audio: Vec<u8>,
    },
    ResponseComplete {
        transcription: String,
        audio_url: Option<String>,
    },
    ProctorEvent {
        kind: ProctorKind,
        severity: Severity,
        message: Option<String>,
        data: Option<Value>,
    },
    PauseInterview,
    ResumeInterview,
    EndInterview {
        reason: Option<String>,
    },
    StopObserving,
    Heartbeat,
    Ping,
}

impl ClientCommand {
    /// The wire `type` (for metrics and logs).
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientCommand::JoinInterview { .. } => "join-interview",
            ClientCommand::ObserveInterview { .. } => "observe-interview",
            ClientCommand::StartInterview => "start-interview",
            ClientCommand::Answer { .. } => "answer",
            ClientCommand::AudioChunk { .. } => "audio-chunk",
            ClientCommand::ResponseComplete { .. } => "response-complete",
            ClientCommand::ProctorEvent { .. } => "proctor-event",
            ClientCommand::PauseInterview => "pause-interview",
            ClientCommand::ResumeInterview => "resume-interview",
            ClientCommand::EndInterview { .. } => "end-interview",
            ClientCommand::StopObserving => "stop-observing",
            ClientCommand::Heartbeat => "heartbeat",
            ClientCommand::Ping => "ping",
        }
    }
}

/// A parsed client frame: the command and the correlation id to echo.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientFrame {
    pub command: ClientCommand,
    pub reference: Option<String>,
}

/// Types a candidate may send.
const CANDIDATE_TYPES: &[&str] = &[
    "join-interview",
    "start-interview",
    "answer",
    "audio-chunk",
    "response-complete",
    "proctor-event",
    "pause-interview",
    "resume-interview",
    "end-interview",
    "heartbeat",
    "ping",
];

/// Types a recruiter or admin may send.
const OBSERVER_TYPES: &[&str] = &[
    "observe-interview",
    "stop-observing",
    "end-interview",
    "heartbeat",
    "ping",
];

const ALL_TYPES: &[&str] = &[
    "join-interview",
    "observe-interview",
    "start-interview",
    "answer",
    "audio-chunk",
    "response-complete",
    "proctor-event",
    "pause-interview",
    "resume-interview",
    "end-interview",
    "stop-observing",
    "heartbeat",
    "ping",
];

/// The longest string, in characters, a client may put in each field
/// (docs/protocol.md section 2). Everything a client writes ends up in the
/// interview's log, kept for as long as the interview: a field over its
/// limit is refused with `PAYLOAD_TOO_LARGE`, not cut.
pub mod max_chars {
    pub const REF: usize = 128;
    pub const INTERVIEW_ID: usize = 128;
    pub const ANSWER: usize = 20_000;
    pub const TRANSCRIPTION: usize = 20_000;
    pub const AUDIO_URL: usize = 2_048;
    pub const PROCTOR_MESSAGE: usize = 500;
    pub const END_REASON: usize = 500;
}

/// The `ref` of a frame, when it is a JSON object with a string `ref`; used to
/// echo it even on frames that fail to parse further.
pub fn peek_ref(text: &str) -> Option<String> {
    let value: Value = serde_json::from_str(text).ok()?;
    let reference = value.get("ref")?.as_str()?;
    (reference.chars().count() <= max_chars::REF).then(|| reference.to_owned())
}

/// Parses one text frame from a client of `role`.
pub fn parse_client_frame(text: &str, role: Role) -> Result<ClientFrame, ProtocolError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ProtocolError::invalid(format!("frame is not JSON: {e}")))?;
    let Value::Object(mut object) = value else {
        return Err(ProtocolError::invalid("frame is not a JSON object"));
    };
    let reference = match object.remove("ref") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() > max_chars::REF => {
            return Err(ProtocolError::new(
                ErrorCode::PayloadTooLarge,
                format!("`ref` is longer than {} characters", max_chars::REF),
            ))
        }
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(ProtocolError::invalid("`ref` must be a string")),
    };
    let kind = match object.remove("type") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(ProtocolError::invalid("`type` must be a string")),
        None => return Err(ProtocolError::invalid("frame has no `type`")),
    };
    if !ALL_TYPES.contains(&kind.as_str()) {
        return Err(ProtocolError::invalid(format!("unknown type `{kind}`")));
    }
    let allowed = match role {
        Role::Candidate => CANDIDATE_TYPES,
        Role::Recruiter | Role::Admin => OBSERVER_TYPES,
        Role::Service => &["heartbeat", "ping"][..],
    };
    if !allowed.contains(&kind.as_str()) {
        return Err(ProtocolError::invalid(format!(
            "`{kind}` is not a {} command",
            role.as_str()
        )));
    }
    let data = match object.remove("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(ProtocolError::invalid("`data` must be an object")),
    };
    let command = command_from(&kind, data)?;
    Ok(ClientFrame { command, reference })
}

fn command_from(kind: &str, data: Map<String, Value>) -> Result<ClientCommand, ProtocolError> {
    let fields = Fields { kind, data };
    Ok(match kind {
        "join-interview" => ClientCommand::JoinInterview {
            interview_id: fields.required_str("interviewId", max_chars::INTERVIEW_ID)?,
            last_seq: fields.optional_seq("lastSeq")?,
        },
        "observe-interview" => ClientCommand::ObserveInterview {
            interview_id: fields.required_str("interviewId", max_chars::INTERVIEW_ID)?,
            last_seq: fields.optional_seq("lastSeq")?,
        },
        "start-interview" => ClientCommand::StartInterview,
        "answer" => {
            let text = fields.required_str("text", max_chars::ANSWER)?;
            if text.trim().is_empty() {
                return Err(ProtocolError::invalid("answer `text` is empty"));
            }
            ClientCommand::Answer { text }
        }
        "audio-chunk" => {
            use base64::Engine as _;
            // Bounded by the frame size; the session bounds the answer's audio.
            let encoded = fields.required_str("audioData", usize::MAX)?;
            let audio = base64::engine::general_purpose::STANDARD
                .decode(encoded.as_bytes())
                .map_err(|_| ProtocolError::invalid("`audioData` is not base64"))?;
            ClientCommand::AudioChunk { audio }
        }
        "response-complete" => ClientCommand::ResponseComplete {
            transcription: fields
                .optional_str("transcription", max_chars::TRANSCRIPTION)?
                .unwrap_or_default(),
            audio_url: fields.optional_str("audioUrl", max_chars::AUDIO_URL)?,
        },
        "proctor-event" => {
            let kind: ProctorKind = fields.parse("type")?;
            let severity: Severity = fields.parse("severity")?;
            ClientCommand::ProctorEvent {
                kind,
                severity,
                message: fields.optional_str("message", max_chars::PROCTOR_MESSAGE)?,
                data: fields.data.get("data").cloned(),
            }
        }
        "pause-interview" => ClientCommand::PauseInterview,
        "resume-interview" => ClientCommand::ResumeInterview,
        "end-interview" => ClientCommand::EndInterview {
            reason: fields.optional_str("reason", max_chars::END_REASON)?,
        },
        "stop-observing" => ClientCommand::StopObserving,
        "heartbeat" => ClientCommand::Heartbeat,
        "ping" => ClientCommand::Ping,
        other => return Err(ProtocolError::invalid(format!("unknown type `{other}`"))),
    })
}

/// Typed access to a frame's `data`, with errors that name the field.
struct Fields<'a> {
    kind: &'a str,
    data: Map<String, Value>,
}

impl Fields<'_> {
    fn required_str(&self, name: &str, max: usize) -> Result<String, ProtocolError> {
        match self.data.get(name) {
            Some(Value::String(s)) if !s.is_empty() => self.within(name, s, max),
            Some(Value::String(_)) => Err(self.bad(name, "must not be empty")),
            Some(_) => Err(self.bad(name, "must be a string")),
            None => Err(self.bad(name, "is required")),
        }
    }

    fn optional_str(&self, name: &str, max: usize) -> Result<Option<String>, ProtocolError> {
        match self.data.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => self.within(name, s, max).map(Some),
            Some(_) => Err(self.bad(name, "must be a string")),
        }
    }

    fn optional_seq(&self, name: &str) -> Result<Option<u64>, ProtocolError> {
        match self.data.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.bad(name, "must be a whole number >= 0")),
            Some(_) => Err(self.bad(name, "must be a number")),
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, ProtocolError> {
        let value = self
            .data
            .get(name)
            .ok_or_else(|| self.bad(name, "is required"))?;
        serde_json::from_value(value.clone()).map_err(|_| self.bad(name, "has an unknown value"))
    }

    fn within(&self, name: &str, s: &str, max: usize) -> Result<String, ProtocolError> {
        if max != usize::MAX && s.chars().count() > max {
            return Err(ProtocolError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "{}: `data.{name}` is longer than {max} characters",
                    self.kind
                ),
            ));
        }
        Ok(s.to_owned())
    }

    fn bad(&self, name: &str, why: &str) -> ProtocolError {
        ProtocolError::invalid(format!("{}: `data.{name}` {why}", self.kind))
    }
}

/// A reply frame without `seq`: `{"type","ts","data","ref"?}`.
pub fn reply_frame(kind: &str, data: Value, reference: Option<&str>, ts: DateTime<Utc>) -> String {
    let mut frame = Map::new();
    frame.insert("type".into(), Value::String(kind.into()));
    frame.insert("ts".into(), Value::String(rfc3339(ts)));
    frame.insert("data".into(), data);
    if let Some(r) = reference {
        frame.insert("ref".into(), Value::String(r.into()));
    }
    Value::Object(frame).to_string()
}

/// An `error` frame.
pub fn error_frame(error: &ProtocolError, reference: Option<&str>, ts: DateTime<Utc>) -> String {
    reply_frame(
        "error",
        serde_json::json!({
            "code": error.code,
            "message": error.message,
            "retryable": error.code.retryable(),
        }),
        reference,
        ts,
    )
}

#[cfg(test)]
#[path = "tests/protocol.rs"]
mod tests;
