//! `OpenAiVoice`: question audio through an OpenAI-compatible
//! `/audio/speech` (`{model, voice, input, response_format: "mp3"}` → MP3
//! bytes), kept as files named after what they say.
//!
//! A question is synthesised once: its file is `<hash>.mp3` in the audio
//! directory, where `<hash>` is FNV-1a 64 (hex) of model, voice and text, so
//! the same words in the same voice are the same file across interviews and
//! restarts. Calls for the same file wait on one lock, so concurrent
//! sessions asking the same question synthesise it once. Files are written
//! to a temporary name and renamed, so a reader never sees half a file.
//!
//! The server serves them at `GET /v1/audio/{name}` (`serve_audio`): names
//! are checked to be hex + `.mp3` only, so nothing outside the directory can
//! be read.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use interview_actors::ports::{BoxFuture, InterviewerError, QuestionVoice};
use serde_json::json;
use tokio::time::{timeout_at, Instant};

use super::provider::{provider_message, without_userinfo, Provider};

pub const DEFAULT_MODEL: &str = "tts-1";
pub const DEFAULT_VOICE: &str = "alloy";
/// Where question audio is kept when no directory is configured.
pub const DEFAULT_DIR: &str = "interviewd-audio";
/// The URL path audio files are served under.
pub const ROUTE_PREFIX: &str = "/v1/audio/";

#[derive(Clone)]
pub struct TtsSettings {
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
    pub voice: String,
    /// One synthesis's deadline, retries included.
    pub timeout: Duration,
    /// Where the MP3 files are kept (created if missing).
    pub dir: PathBuf,
}

impl fmt::Debug for TtsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TtsSettings")
            .field("base_url", &without_userinfo(&self.base_url))
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("model", &self.model)
            .field("voice", &self.voice)
            .field("timeout", &self.timeout)
            .field("dir", &self.dir)
            .finish()
    }
}

impl TtsSettings {
    /// From `TTS_BASE_URL` (none: no question audio), `TTS_API_KEY`,
    /// `TTS_MODEL`, `TTS_VOICE`; the deadline is `LLM_TIMEOUT_MS`; files go
    /// to `dir` (default `DEFAULT_DIR`, relative to the working directory).
    pub fn from_config(
        config: &crate::config::Config,
        dir: Option<PathBuf>,
    ) -> Option<TtsSettings> {
        Some(TtsSettings {
            base_url: config.tts_base_url.clone()?,
            api_key: config.tts_api_key.clone(),
            model: config
                .tts_model
                .clone()
                .unwrap_or_else(|| DEFAULT_MODEL.into()),
            voice: config
                .tts_voice
                .clone()
                .unwrap_or_else(|| DEFAULT_VOICE.into()),
            timeout: Duration::from_millis(config.llm_timeout_ms.max(1)),
            dir: dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DIR)),
        })
    }
}

#[derive(Debug, Clone)]
pub struct OpenAiVoice {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    provider: Provider,
    model: String,
    voice: String,
    timeout: Duration,
    dir: PathBuf,
    /// One lock per file name: the first caller synthesises, the others wait
    /// and find the file.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl OpenAiVoice {
    pub fn new(settings: TtsSettings) -> Result<OpenAiVoice, InterviewerError> {
        let provider = Provider::new(&settings.base_url, settings.api_key, settings.timeout)?;
        Ok(OpenAiVoice {
            inner: Arc::new(Inner {
                provider,
                model: settings.model,
                voice: settings.voice,
                timeout: settings.timeout,
                dir: settings.dir,
                locks: Mutex::new(HashMap::new()),
            }),
        })
    }
}

/// FNV-1a, 64 bits: stable across builds and platforms (unlike `std`'s
/// hasher), tiny, and plenty for naming a few thousand files.
fn fnv1a64(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// The file name for `text` said by `voice` of `model`.
pub fn audio_name(model: &str, voice: &str, text: &str) -> String {
    let hash = [model, voice, text.trim()]
        .iter()
        .fold(FNV_OFFSET, |h, part| {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            let h = fnv1a64(h, &(part.len() as u64).to_le_bytes());
            fnv1a64(h, part.as_bytes())
        });
    format!("{hash:016x}.mp3")
}

/// The file behind `name`, if `name` is one of ours: 1 to 64 lower-case hex
/// digits and `.mp3`, nothing else (no separators, no `..`).
pub fn audio_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let stem = name.strip_suffix(".mp3")?;
    let ok = !stem.is_empty()
        && stem.len() <= 64
        && stem
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then(|| dir.join(name))
}

impl Inner {
    async fn synthesise(&self, text: &str, name: &str) -> Result<(), InterviewerError> {
        let deadline = Instant::now() + self.timeout;
        let body = json!({
            "model": self.model,
            "voice": self.voice,
            "input": text,
            "response_format": "mp3",
        });
        let url = self.provider.url("/audio/speech");
        let response = self
            .provider
            .send(deadline, |c| c.post(&url).json(&body))
            .await?;
        let is_json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let bytes = timeout_at(deadline, response.bytes())
            .await
            .map_err(|_| InterviewerError::Timeout)?
            .map_err(|e| {
                InterviewerError::Unavailable(format!(
                    "reading the audio failed: {}",
                    e.without_url()
                ))
            })?;
        if is_json {
            let m = provider_message(&String::from_utf8_lossy(&bytes));
            return Err(InterviewerError::Invalid(format!("no audio, but: {m}")));
        }
        if bytes.is_empty() {
            return Err(InterviewerError::Invalid("the audio is empty".into()));
        }
        let dir = self.dir.clone();
        let name = name.to_string();
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
            std::fs::write(&tmp, &bytes)?;
            std::fs::rename(&tmp, dir.join(&name)).inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(InterviewerError::Unavailable(format!(
                "cannot store the audio: {e}"
            ))),
            Err(e) => Err(InterviewerError::Unavailable(format!(
                "cannot store the audio: {e}"
            ))),
        }
    }
}

async fn exists(path: PathBuf) -> bool {
    tokio::task::spawn_blocking(move || path.is_file())
        .await
        .unwrap_or(false)
}

impl QuestionVoice for OpenAiVoice {
    fn audio_url(&self, text: &str) -> BoxFuture<Result<String, InterviewerError>> {
        let inner = self.inner.clone();
        let text = text.trim().to_string();
        Box::pin(async move {
            if text.is_empty() {
                return Err(InterviewerError::Invalid("no text to say".into()));
            }
            let name = audio_name(&inner.model, &inner.voice, &text);
            let url = format!("{ROUTE_PREFIX}{name}");
            let lock = {
                let mut locks = inner.locks.lock().unwrap_or_else(|e| e.into_inner());
                locks.entry(name.clone()).or_default().clone()
            };
            let _one_at_a_time = lock.lock().await;
            if exists(inner.dir.join(&name)).await {
                return Ok(url);
            }
            inner
                .synthesise(&text, &name)
                .await
                .map_err(|e| inner.provider.scrub_error(e))?;
            Ok(url)
        })
    }
}

/// The directory `serve_audio` reads, as actix app data.
#[derive(Debug, Clone)]
pub struct AudioDir(pub PathBuf);

/// `GET /v1/audio/{name}`: a synthesised question, `audio/mpeg`, cacheable
/// for good (a name is its content). 404 for anything else.
pub async fn serve_audio(dir: web::Data<AudioDir>, name: web::Path<String>) -> HttpResponse {
    let Some(path) = audio_file(&dir.0, &name) else {
        return HttpResponse::NotFound().finish();
    };
    match web::block(move || std::fs::read(path)).await {
        Ok(Ok(bytes)) => HttpResponse::Ok()
            .content_type("audio/mpeg")
            .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .body(bytes),
        _ => HttpResponse::NotFound().finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_known_vectors() {
        assert_eq!(fnv1a64(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(FNV_OFFSET, b"foobar"), 0x8594_4171_f739_67e8);
    }
}
