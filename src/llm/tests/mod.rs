//! The model adapters against the fake provider (`fake_provider`): every
//! stream quirk, retry rule, deadline and validation rule, over real HTTP.

mod audio;
mod retries;
mod speak;
mod verdicts;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use interview_actors::event::Question;
use interview_actors::ports::{
    InterviewRecord, InterviewStatus, InterviewerError, Speaker, TemplateQuestion, TranscriptLine,
    Turn, TurnKind,
};

use super::fake_provider::FakeProvider;
use super::openai::{LlmSettings, OpenAiInterviewer};

/// The key every test client sends; it must never show in an error.
pub const KEY: &str = "sk-test-SECRET-4242";
pub const QUESTION: &str = "How would you design a rate limiter for a public API?";

pub fn settings(base_url: String, timeout_ms: u64) -> LlmSettings {
    LlmSettings {
        base_url,
        api_key: Some(KEY.into()),
        model: "fake-model".into(),
        timeout: Duration::from_millis(timeout_ms),
        history_budget_chars: 4000,
    }
}

pub fn interviewer(fake: &FakeProvider, timeout_ms: u64) -> OpenAiInterviewer {
    OpenAiInterviewer::new(settings(fake.base_url(), timeout_ms)).expect("build the interviewer")
}

pub fn interview() -> Arc<InterviewRecord> {
    Arc::new(InterviewRecord {
        id: "iv-1".into(),
        org_id: "org-1".into(),
        title: "Backend engineer".into(),
        candidate_name: "Ada".into(),
        candidate_id: "cand-1".into(),
        questions: vec![
            TemplateQuestion {
                id: "q1".into(),
                text: QUESTION.into(),
                kind: "TECHNICAL".into(),
            },
            TemplateQuestion {
                id: "q2".into(),
                text: "Describe a production incident you handled.".into(),
                kind: "BEHAVIORAL".into(),
            },
        ],
        duration_minutes: 30,
        status: InterviewStatus::Active,
        created_at: Utc::now(),
    })
}

pub fn question(id: &str, text: &str, kind: &str, order: u32) -> Question {
    Question {
        question_id: id.into(),
        text: text.into(),
        kind: kind.into(),
        order,
        total: 2,
        audio_url: None,
        follow_up: false,
    }
}

pub fn turn(kind: TurnKind) -> Turn {
    let q = (kind != TurnKind::Closing).then(|| question("q1", QUESTION, "TECHNICAL", 1));
    Turn {
        kind,
        interview: interview(),
        question: q,
        transcript: vec![TranscriptLine {
            speaker: Speaker::Ai,
            text: "Hello Ada.".into(),
            seq: 3,
        }],
    }
}

/// Everything a stream yields (20 s at most: a hang fails the test).
pub async fn collect(
    stream: BoxStream<'static, Result<String, InterviewerError>>,
) -> Vec<Result<String, InterviewerError>> {
    tokio::time::timeout(Duration::from_secs(20), stream.collect())
        .await
        .expect("the stream must end by itself")
}

pub fn oks(items: &[&str]) -> Vec<Result<String, InterviewerError>> {
    items.iter().map(|s| Ok(s.to_string())).collect()
}

pub fn assert_no_key(e: &InterviewerError) {
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(KEY), "the API key leaked: {shown}");
}

#[test]
fn settings_from_the_configuration() {
    use super::openai::{DEFAULT_HISTORY_BUDGET_CHARS, DEFAULT_MODEL};
    use super::stt::SttSettings;
    use super::tts::{TtsSettings, DEFAULT_DIR, DEFAULT_VOICE};

    let mut config = crate::config::Config::default();
    assert!(
        LlmSettings::from_config(&config).is_none(),
        "no LLM_BASE_URL: scripted"
    );
    assert!(SttSettings::from_config(&config).is_none());
    assert!(TtsSettings::from_config(&config, None).is_none());

    config.llm_base_url = Some("http://localhost:11434/v1".into());
    config.llm_timeout_ms = 1500;
    config.stt_base_url = Some("http://stt/v1".into());
    config.stt_api_key = Some(KEY.into());
    config.tts_base_url = Some("http://tts/v1".into());
    let llm = LlmSettings::from_config(&config).unwrap();
    assert_eq!(llm.model, DEFAULT_MODEL);
    assert_eq!(llm.api_key, None);
    assert_eq!(llm.timeout, Duration::from_millis(1500));
    assert_eq!(llm.history_budget_chars, DEFAULT_HISTORY_BUDGET_CHARS);
    let stt = SttSettings::from_config(&config).unwrap();
    assert_eq!(stt.model, super::stt::DEFAULT_MODEL);
    assert!(!format!("{stt:?}").contains(KEY));
    let tts = TtsSettings::from_config(&config, None).unwrap();
    assert_eq!(tts.voice, DEFAULT_VOICE);
    assert_eq!(tts.model, super::tts::DEFAULT_MODEL);
    assert_eq!(tts.dir, std::path::PathBuf::from(DEFAULT_DIR));
}
