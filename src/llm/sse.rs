//! Reading an OpenAI-compatible streamed chat completion: server-sent events
//! (framed by `eventsource-stream`) in, content pieces out.
//!
//! What providers really send, and how each is read:
//! - a first delta with only `role` (`content` null, `""` or missing): nothing;
//! - `delta.content` missing, null or empty: nothing;
//! - `delta.reasoning` / `delta.reasoning_content` (vLLM, Ollama, DeepSeek):
//!   never yielded, the candidate must not hear the model think;
//! - `choices: []` (the usage chunk of `stream_options.include_usage`): nothing;
//! - `: comment` lines (keep-alives) and CRLF framing: handled by the framer;
//! - `data: [DONE]`: the end. It is not JSON, so it is checked first;
//! - `data: {"error": ...}` (or vLLM's `{"object":"error",...}`, or an
//!   `event: error`) inside a 200 stream: `Err(Unavailable)`, and nothing after;
//! - a chunk that is not JSON: `Err(Invalid)`;
//! - the body ending without `[DONE]`: `Err(Unavailable("truncated"))` after
//!   the pieces received; a transport error mid-body: `Err(Unavailable)`.

use std::fmt::Display;

use eventsource_stream::{Event, EventStreamError};
use futures_util::{stream, Stream, StreamExt};
use interview_actors::ports::InterviewerError;
use serde_json::Value;

use super::provider::{message_of, truncate};

/// What one SSE event of a chat completion stream means.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunk {
    /// A piece of the message (never empty).
    Content(String),
    /// Nothing to say: role-only deltas, usage, reasoning, keep-alives.
    Nothing,
    /// `[DONE]`.
    Done,
    /// The provider reports an error inside the stream.
    ProviderError(String),
    /// Not JSON, or not shaped like a chunk.
    Malformed(String),
}

/// Reads one event's `data` (and its `event:` type).
pub fn parse_chunk(event_type: &str, data: &str) -> Chunk {
    let data = data.trim();
    if data == "[DONE]" {
        return Chunk::Done;
    }
    if event_type == "error" {
        let message = serde_json::from_str::<Value>(data)
            .ok()
            .and_then(|v| message_of(&v))
            .unwrap_or_else(|| data.to_string());
        return Chunk::ProviderError(truncate(&message, 300));
    }
    if data.is_empty() {
        return Chunk::Nothing;
    }
    let v: Value = match serde_json::from_str(data) {
        Ok(v) => v,
        Err(e) => return Chunk::Malformed(format!("a stream chunk is not JSON ({e})")),
    };
    if !v.is_object() {
        return Chunk::Malformed("a stream chunk is not a JSON object".to_string());
    }
    let is_error = v.get("error").is_some_and(|e| !e.is_null())
        || v.get("object") == Some(&Value::from("error"));
    if is_error {
        let message = message_of(&v).unwrap_or_else(|| "error in the stream".to_string());
        return Chunk::ProviderError(truncate(&message, 300));
    }
    let content = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|choices| {
            // The choice with index 0 (we ask for one), else the first.
            choices
                .iter()
                .find(|c| c.get("index").and_then(Value::as_u64) == Some(0))
                .or_else(|| choices.first())
        })
        .and_then(|choice| choice.get("delta"))
        .and_then(|delta| delta.get("content"))
        .and_then(Value::as_str);
    match content {
        Some(text) if !text.is_empty() => Chunk::Content(text.to_string()),
        _ => Chunk::Nothing,
    }
}

/// The content pieces of a framed event stream, ending after `[DONE]` or at
/// the first error (see the module documentation).
pub fn content_pieces<S, E>(events: S) -> impl Stream<Item = Result<String, InterviewerError>>
where
    S: Stream<Item = Result<Event, EventStreamError<E>>> + Unpin,
    E: Display,
{
    stream::unfold(Some(events), |state| async move {
        let mut events = state?;
        loop {
            let item = match events.next().await {
                None => {
                    let e = InterviewerError::Unavailable("truncated".to_string());
                    return Some((Err(e), None));
                }
                Some(Err(e)) => {
                    let e = InterviewerError::Unavailable(format!("stream broken: {e}"));
                    return Some((Err(e), None));
                }
                Some(Ok(event)) => parse_chunk(&event.event, &event.data),
            };
            match item {
                Chunk::Content(text) => return Some((Ok(text), Some(events))),
                Chunk::Nothing => continue,
                Chunk::Done => return None,
                Chunk::ProviderError(m) => {
                    return Some((Err(InterviewerError::Unavailable(m)), None))
                }
                Chunk::Malformed(m) => return Some((Err(InterviewerError::Invalid(m)), None)),
            }
        }
    })
}

#[cfg(test)]
#[path = "tests/sse_unit.rs"]
mod tests;
