//! `OpenAiTranscriber`: speech to text through an OpenAI-compatible
//! `/audio/transcriptions` (OpenAI, faster-whisper-server / speaches,
//! whisper.cpp's server, vLLM). One multipart request per answer: `file`
//! (`answer.webm`, `audio/webm`, what browsers record), `model`,
//! `response_format=json`; the reply is `{"text": ...}`. The same retries,
//! deadline and key handling as the chat client (`provider`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use interview_actors::ports::{BoxFuture, InterviewerError, Transcriber, Transcript};
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use tokio::time::{timeout_at, Instant};

use super::provider::{without_userinfo, Provider};

/// The model when `STT_MODEL` is unset.
pub const DEFAULT_MODEL: &str = "whisper-1";

#[derive(Clone)]
pub struct SttSettings {
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
    /// One transcription's deadline, retries included.
    pub timeout: Duration,
}

impl fmt::Debug for SttSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SttSettings")
            .field("base_url", &without_userinfo(&self.base_url))
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SttSettings {
    /// From `STT_BASE_URL` (none: no speech to text), `STT_API_KEY`,
    /// `STT_MODEL`; the deadline is `LLM_TIMEOUT_MS`.
    pub fn from_config(config: &crate::config::Config) -> Option<SttSettings> {
        Some(SttSettings {
            base_url: config.stt_base_url.clone()?,
            api_key: config.stt_api_key.clone(),
            model: config
                .stt_model
                .clone()
                .unwrap_or_else(|| DEFAULT_MODEL.to_string()),
            timeout: Duration::from_millis(config.llm_timeout_ms.max(1)),
        })
    }
}

#[derive(Debug, Clone)]
pub struct OpenAiTranscriber {
    inner: Arc<(Provider, String, Duration)>,
}

impl OpenAiTranscriber {
    pub fn new(settings: SttSettings) -> Result<OpenAiTranscriber, InterviewerError> {
        let provider = Provider::new(&settings.base_url, settings.api_key, settings.timeout)?;
        Ok(OpenAiTranscriber {
            inner: Arc::new((provider, settings.model, settings.timeout)),
        })
    }
}

impl Transcriber for OpenAiTranscriber {
    fn transcribe(&self, audio: Vec<u8>) -> BoxFuture<Result<Transcript, InterviewerError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let (provider, model, timeout) = &*inner;
            if audio.is_empty() {
                return Err(InterviewerError::Invalid("no audio to transcribe".into()));
            }
            let deadline = Instant::now() + *timeout;
            let url = provider.url("/audio/transcriptions");
            let call = async {
                let response = provider
                    .send(deadline, |c| {
                        // A form is consumed by a request: one per attempt.
                        let file = Part::bytes(audio.clone())
                            .file_name("answer.webm")
                            .mime_str("audio/webm")
                            .unwrap_or_else(|_| {
                                Part::bytes(audio.clone()).file_name("answer.webm")
                            });
                        let form = Form::new()
                            .part("file", file)
                            .text("model", model.clone())
                            .text("response_format", "json");
                        c.post(&url).multipart(form)
                    })
                    .await?;
                let v: Value = response.json().await.map_err(|e| {
                    InterviewerError::Invalid(format!(
                        "the transcription is not JSON: {}",
                        e.without_url()
                    ))
                })?;
                let text = v.get("text").and_then(Value::as_str).ok_or_else(|| {
                    InterviewerError::Invalid("the transcription has no `text`".into())
                })?;
                Ok(Transcript {
                    text: text.trim().to_string(),
                    confidence: None,
                })
            };
            let result = match timeout_at(deadline, call).await {
                Ok(r) => r,
                Err(_) => Err(InterviewerError::Timeout),
            };
            result.map_err(|e| provider.scrub_error(e))
        })
    }
}
