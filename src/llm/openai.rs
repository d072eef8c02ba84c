//! `OpenAiInterviewer`: the interviewer behind any OpenAI-compatible
//! `/chat/completions` (OpenAI, vLLM, Ollama, llama.cpp, ...).
//!
//! - `speak` streams one message (`stream: true`) and yields its content
//!   pieces as they come. The first piece must come within a third of the
//!   timeout and the whole message within the timeout, else `Err(Timeout)`.
//!   The HTTP request lives inside the returned stream: dropping the stream
//!   drops the request (no task is spawned). If the model's message does not
//!   contain the turn's question word for word, the question is appended as
//!   a last piece, so what the candidate hears always ends with the text of
//!   the `question` event.
//! - `evaluate` and `summarize` ask for a JSON object (`response_format:
//!   json_object`) and validate it (`verdict`); an invalid reply is asked
//!   again once, with the reason, then refused as `Err(Invalid)` so the
//!   session falls back to the heuristic. Each call ends within the timeout.
//!
//! HTTP retries and the API key's secrecy are `provider`'s.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::stream::{self, BoxStream};
use futures_util::{StreamExt, TryStreamExt};
use interview_actors::event::Summary;
use interview_actors::heuristic;
use interview_actors::ports::{
    AnswerToScore, AnsweredQuestion, Assessment, BoxFuture, InterviewRecord, Interviewer,
    InterviewerError, Turn,
};
use serde_json::{json, Value};
use tokio::time::{timeout_at, Instant};

use super::prompts::{self, ChatMessage};
use super::provider::{message_of, truncate, without_userinfo, Provider};
use super::{sse, verdict};

/// The model when `LLM_MODEL` is unset.
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";
/// Characters of transcript sent with each request.
pub const DEFAULT_HISTORY_BUDGET_CHARS: usize = 12_000;

/// How to reach the model.
#[derive(Clone)]
pub struct LlmSettings {
    /// E.g. `https://api.openai.com/v1`, `http://localhost:11434/v1`.
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
    /// A message's deadline (its first piece: a third of it); also the
    /// deadline of one evaluation or summary, retries included.
    pub timeout: Duration,
    /// Characters of transcript sent with a request, trimmed from the oldest.
    pub history_budget_chars: usize,
}

impl fmt::Debug for LlmSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmSettings")
            .field("base_url", &without_userinfo(&self.base_url))
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("history_budget_chars", &self.history_budget_chars)
            .finish()
    }
}

impl LlmSettings {
    /// From `LLM_BASE_URL` (none: no model interviewer), `LLM_API_KEY`,
    /// `LLM_MODEL` and `LLM_TIMEOUT_MS`.
    pub fn from_config(config: &crate::config::Config) -> Option<LlmSettings> {
        let base_url = config.llm_base_url.clone()?;
        Some(LlmSettings {
            base_url,
            api_key: config.llm_api_key.clone(),
            model: config
                .llm_model
                .clone()
                .unwrap_or_else(|| DEFAULT_MODEL.to_string()),
            timeout: Duration::from_millis(config.llm_timeout_ms.max(1)),
            history_budget_chars: DEFAULT_HISTORY_BUDGET_CHARS,
        })
    }
}

/// The model-backed interviewer. Cheap to clone.
#[derive(Clone)]
pub struct OpenAiInterviewer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    provider: Provider,
    model: String,
    timeout: Duration,
    budget: usize,
}

impl fmt::Debug for OpenAiInterviewer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiInterviewer")
            .field("provider", &self.inner.provider)
            .field("model", &self.inner.model)
            .finish()
    }
}

impl OpenAiInterviewer {
    pub fn new(settings: LlmSettings) -> Result<OpenAiInterviewer, InterviewerError> {
        let timeout = settings.timeout.max(Duration::from_millis(3));
        let provider = Provider::new(&settings.base_url, settings.api_key, timeout)?;
        Ok(OpenAiInterviewer {
            inner: Arc::new(Inner {
                provider,
                model: settings.model,
                timeout,
                budget: settings.history_budget_chars,
            }),
        })
    }
}

impl Inner {
    /// One non-streamed completion in JSON mode. The outer error is the
    /// provider's (after HTTP retries); the inner one says why the reply is
    /// unusable (worth asking again).
    async fn complete_json(
        &self,
        deadline: Instant,
        messages: &[ChatMessage],
    ) -> Result<Result<String, String>, InterviewerError> {
        let body = json!({
            "model": self.model,
            "messages": messages,
            "response_format": {"type": "json_object"},
        });
        let url = self.provider.url("/chat/completions");
        let response = self
            .provider
            .send(deadline, |c| c.post(&url).json(&body))
            .await?;
        let bytes = timeout_at(deadline, response.bytes())
            .await
            .map_err(|_| InterviewerError::Timeout)?
            .map_err(|e| {
                InterviewerError::Unavailable(format!(
                    "reading the reply failed: {}",
                    e.without_url()
                ))
            })?;
        let v: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => return Ok(Err(format!("the response body is not JSON ({e})"))),
        };
        if v.get("error").is_some_and(|e| !e.is_null()) {
            let m = message_of(&v).unwrap_or_else(|| "error".into());
            return Err(InterviewerError::Unavailable(truncate(&m, 300)));
        }
        let message = &v["choices"][0]["message"];
        match message.get("content").and_then(Value::as_str) {
            Some(content) if !content.trim().is_empty() => Ok(Ok(content.to_string())),
            _ => Ok(Err(match message.get("refusal").and_then(Value::as_str) {
                Some(r) => format!("the model refused: {}", truncate(r, 200)),
                None => "the reply has no message content".to_string(),
            })),
        }
    }

    /// Asks for a JSON verdict and validates it with `parse`; one more try
    /// on an invalid reply, telling the model what was wrong.
    async fn verdict<T>(
        &self,
        mut messages: Vec<ChatMessage>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, InterviewerError> {
        let deadline = Instant::now() + self.timeout;
        let attempts = async {
            let mut reason = String::new();
            for _ in 0..2 {
                match self.complete_json(deadline, &messages).await? {
                    Ok(content) => match parse(&content) {
                        Ok(v) => return Ok(v),
                        Err(why) => {
                            tracing::warn!(reason = %why, "the model's verdict is invalid");
                            messages.push(ChatMessage::assistant(content));
                            messages.push(ChatMessage::user(format!(
                                "That reply is not valid: {why}. Reply again with only the JSON object, exactly as specified."
                            )));
                            reason = why;
                        }
                    },
                    Err(why) => reason = why,
                }
            }
            Err(InterviewerError::Invalid(reason))
        };
        let result = match timeout_at(deadline, attempts).await {
            Ok(result) => result,
            Err(_) => Err(InterviewerError::Timeout),
        };
        result.map_err(|e| self.provider.scrub_error(e))
    }
}

/// Where one `speak` stream is.
enum Speaking {
    Start {
        inner: Arc<Inner>,
        body: Value,
        question: Option<String>,
    },
    Streaming(Box<Streaming>),
    Finished,
}

struct Streaming {
    inner: Arc<Inner>,
    pieces: BoxStream<'static, Result<String, InterviewerError>>,
    first_deadline: Instant,
    deadline: Instant,
    said: String,
    question: Option<String>,
}

impl Speaking {
    async fn step(self) -> Option<(Result<String, InterviewerError>, Speaking)> {
        let mut s = match self {
            Speaking::Finished => return None,
            Speaking::Streaming(s) => s,
            Speaking::Start {
                inner,
                body,
                question,
            } => {
                let now = Instant::now();
                let first_deadline = now + inner.timeout / 3;
                let url = inner.provider.url("/chat/completions");
                let sent = inner
                    .provider
                    .send(first_deadline, |c| {
                        c.post(&url)
                            .header("accept", "text/event-stream")
                            .json(&body)
                    })
                    .await;
                let response = match sent {
                    Ok(r) => r,
                    Err(e) => {
                        return Some((Err(inner.provider.scrub_error(e)), Speaking::Finished))
                    }
                };
                let bytes = response.bytes_stream().map_err(|e| e.without_url()).boxed();
                let pieces = sse::content_pieces(bytes.eventsource()).boxed();
                Box::new(Streaming {
                    pieces,
                    first_deadline,
                    deadline: now + inner.timeout,
                    inner,
                    said: String::new(),
                    question,
                })
            }
        };
        let deadline = if s.said.is_empty() {
            s.first_deadline
        } else {
            s.deadline
        };
        match timeout_at(deadline, s.pieces.next()).await {
            Err(_) => Some((Err(InterviewerError::Timeout), Speaking::Finished)),
            Ok(Some(Ok(piece))) => {
                s.said.push_str(&piece);
                Some((Ok(piece), Speaking::Streaming(s)))
            }
            Ok(Some(Err(e))) => Some((Err(s.inner.provider.scrub_error(e)), Speaking::Finished)),
            Ok(None) => {
                // `[DONE]`: make sure the message ends with its question.
                let question = s
                    .question
                    .as_deref()
                    .map(str::trim)
                    .filter(|q| !q.is_empty());
                match question {
                    Some(q) if !s.said.contains(q) => {
                        let piece = if s.said.is_empty() || s.said.ends_with(char::is_whitespace) {
                            q.to_string()
                        } else {
                            format!(" {q}")
                        };
                        Some((Ok(piece), Speaking::Finished))
                    }
                    None if s.said.trim().is_empty() => Some((
                        Err(InterviewerError::Invalid("the model said nothing".into())),
                        Speaking::Finished,
                    )),
                    _ => None,
                }
            }
        }
    }
}

impl Interviewer for OpenAiInterviewer {
    fn speak(&self, turn: Turn) -> BoxStream<'static, Result<String, InterviewerError>> {
        let inner = self.inner.clone();
        let body = json!({
            "model": inner.model,
            "messages": prompts::speak_messages(&turn, inner.budget),
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        let question = turn.question.map(|q| q.text);
        stream::unfold(
            Speaking::Start {
                inner,
                body,
                question,
            },
            Speaking::step,
        )
        .boxed()
    }

    fn evaluate(&self, answer: AnswerToScore) -> BoxFuture<Result<Assessment, InterviewerError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let messages = prompts::evaluation_messages(&answer, inner.budget);
            inner
                .verdict(messages, |content| {
                    verdict::parse_evaluation(content, &answer)
                })
                .await
        })
    }

    fn summarize(
        &self,
        interview: Arc<InterviewRecord>,
        answers: Vec<AnsweredQuestion>,
    ) -> BoxFuture<Result<Summary, InterviewerError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            if answers.is_empty() {
                // Nothing to judge: null scores, no call.
                return Ok(heuristic::summarize(&answers));
            }
            let messages = prompts::summary_messages(&interview, &answers, inner.budget);
            inner
                .verdict(messages, |content| {
                    verdict::parse_summary(content, &answers)
                })
                .await
        })
    }
}
