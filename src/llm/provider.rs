//! The HTTP side shared by every OpenAI-compatible adapter (chat, speech to
//! text, text to speech): one `reqwest` client, the bearer key kept out of
//! sight, the retry policy and the error texts.
//!
//! Retry policy, before any response body is used: a connection error or a
//! 408, 409, 429 or 5xx is tried again, at most `MAX_RETRIES` times, after
//! `retry-after-ms` (milliseconds) or `Retry-After` (seconds) when the
//! provider says, else after 250 ms doubling. A 429 whose error is
//! `insufficient_quota` and every other 4xx fail at once: asking again cannot
//! help. A wait that would pass the caller's deadline is not started; the
//! last error is returned instead, so the session can fall back sooner.
//!
//! The API key is only ever written into the `Authorization` header. It is
//! not in `Debug` output, and every error text goes through `scrub`, which
//! removes it should a provider echo it back.

use std::fmt;
use std::time::Duration;

use interview_actors::ports::InterviewerError;
use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use tokio::time::{sleep, timeout_at, Instant};

/// Retries after the first attempt.
pub const MAX_RETRIES: u32 = 3;
/// The first backoff; it doubles with every retry.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Most of an error body read to explain a failure.
const ERROR_BODY_LIMIT: usize = 16 * 1024;
/// Longest provider message kept in an error text.
const MESSAGE_LIMIT: usize = 300;

/// A secret that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// `None` for an absent or blank key (local servers need none).
    pub fn new(key: Option<String>) -> Option<ApiKey> {
        key.map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .map(ApiKey)
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// One OpenAI-compatible endpoint: where, with which key, one pooled client.
#[derive(Clone)]
pub struct Provider {
    http: Client,
    base_url: String,
    api_key: Option<ApiKey>,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("base_url", &without_userinfo(&self.base_url))
            .field("api_key", &self.api_key)
            .finish()
    }
}

impl Provider {
    /// `connect_timeout` bounds one TCP/TLS connect; whole calls are bounded
    /// by the deadlines their callers pass.
    pub fn new(
        base_url: &str,
        api_key: Option<String>,
        connect_timeout: Duration,
    ) -> Result<Provider, InterviewerError> {
        let http = Client::builder()
            .connect_timeout(
                connect_timeout.clamp(Duration::from_millis(100), Duration::from_secs(10)),
            )
            .user_agent(concat!("interviewd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                InterviewerError::Unavailable(format!("cannot build the HTTP client: {e}"))
            })?;
        Ok(Provider {
            http,
            base_url: base_url.trim().trim_end_matches('/').to_string(),
            api_key: ApiKey::new(api_key),
        })
    }

    /// `{base_url}{path}`, `path` starting with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Removes the API key from a text meant for an error or a log.
    pub fn scrub(&self, text: &str) -> String {
        match &self.api_key {
            Some(key) if key.expose().len() >= 3 => text.replace(key.expose(), "[redacted]"),
            _ => text.to_string(),
        }
    }

    /// `scrub` applied to an error's text.
    pub fn scrub_error(&self, error: InterviewerError) -> InterviewerError {
        match error {
            InterviewerError::Unavailable(m) => InterviewerError::Unavailable(self.scrub(&m)),
            InterviewerError::Invalid(m) => InterviewerError::Invalid(self.scrub(&m)),
            InterviewerError::Timeout => InterviewerError::Timeout,
        }
    }

    /// Sends the request `build` makes (once per attempt) with the bearer key,
    /// retrying as the module says, and returns the first successful
    /// response. Everything, waits included, ends by `deadline`
    /// (`Err(Timeout)` if it passes while a request is under way).
    pub async fn send<F>(&self, deadline: Instant, build: F) -> Result<Response, InterviewerError>
    where
        F: Fn(&Client) -> RequestBuilder,
    {
        let mut attempt = 0;
        loop {
            let mut request = build(&self.http);
            if let Some(key) = &self.api_key {
                request = request.bearer_auth(key.expose());
            }
            let sent = timeout_at(deadline, request.send())
                .await
                .map_err(|_| InterviewerError::Timeout)?;
            let (hint, error) = match sent {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status();
                    let hint = retry_after(response.headers());
                    let body = timeout_at(deadline, read_limited(response))
                        .await
                        .unwrap_or_default();
                    let error = InterviewerError::Unavailable(self.scrub(&format!(
                        "HTTP {}: {}",
                        status.as_u16(),
                        provider_message(&body)
                    )));
                    if !is_retryable(status, &body) {
                        return Err(error);
                    }
                    (hint, error)
                }
                Err(e) if e.is_builder() => {
                    return Err(InterviewerError::Unavailable(
                        self.scrub(&format!("bad request: {}", e.without_url())),
                    ))
                }
                Err(e) => (
                    None,
                    InterviewerError::Unavailable(self.scrub(&describe(&e.without_url()))),
                ),
            };
            if attempt >= MAX_RETRIES {
                return Err(error);
            }
            let wait = hint.unwrap_or(FIRST_BACKOFF * 2u32.pow(attempt));
            if Instant::now() + wait >= deadline {
                return Err(error);
            }
            tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, %error, "retrying the provider");
            sleep(wait).await;
            attempt += 1;
        }
    }
}

/// Whether a failed status is worth another attempt.
pub fn is_retryable(status: StatusCode, body: &str) -> bool {
    match status.as_u16() {
        429 => !is_insufficient_quota(body),
        408 | 409 => true,
        s => s >= 500,
    }
}

/// A 429 that means "out of money", not "slow down".
fn is_insufficient_quota(body: &str) -> bool {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return body.contains("insufficient_quota");
    };
    let error = v.get("error").unwrap_or(&v);
    ["code", "type"]
        .iter()
        .any(|k| error.get(k).and_then(Value::as_str) == Some("insufficient_quota"))
}

/// The provider's own wait hint: `retry-after-ms` (milliseconds) first, then
/// `Retry-After` in seconds. An HTTP date is ignored (the backoff applies).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    if let Some(ms) = number("retry-after-ms") {
        return Some(Duration::from_secs_f64((ms / 1000.0).min(86_400.0)));
    }
    number("retry-after").map(|s| Duration::from_secs_f64(s.min(86_400.0)))
}

/// The useful part of an error body: OpenAI's `error.message`, Ollama's
/// `error` string, vLLM's `message`, else the start of the text.
pub fn provider_message(body: &str) -> String {
    let text = match serde_json::from_str::<Value>(body) {
        Ok(v) => message_of(&v).unwrap_or_else(|| body.to_string()),
        Err(_) => body.to_string(),
    };
    let text = text.trim();
    if text.is_empty() {
        return "no details".to_string();
    }
    truncate(text, MESSAGE_LIMIT)
}

/// The message inside an error object (`{"error":{...}}`, `{"error":"..."}`,
/// `{"message":"..."}`, `{"detail":"..."}`).
pub fn message_of(v: &Value) -> Option<String> {
    if let Some(s) = v.as_str() {
        return Some(s.to_string());
    }
    if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
        return message_of(e).or_else(|| Some(e.to_string()));
    }
    for key in ["message", "detail"] {
        if let Some(s) = v.get(key).and_then(Value::as_str) {
            return Some(s.to_string());
        }
    }
    None
}

/// At most `max` characters of `text`, on a character boundary.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// A transport error in words (without the URL, which may carry a key).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// Reads at most `ERROR_BODY_LIMIT` bytes of a body, lossily as text.
async fn read_limited(mut response: Response) -> String {
    let mut bytes = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        bytes.extend_from_slice(&chunk);
        if bytes.len() >= ERROR_BODY_LIMIT {
            bytes.truncate(ERROR_BODY_LIMIT);
            break;
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `scheme://user:pass@host/...` without `user:pass@`, for `Debug`.
pub fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
#[path = "tests/provider_unit.rs"]
mod tests;
