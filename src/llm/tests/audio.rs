//! Speech to text (multipart upload) and question audio (synthesised once,
//! named by hash, served safely).

use std::path::Path;
use std::time::Duration;

use actix_web::{test as atest, web, App};
use interview_actors::ports::{InterviewerError, QuestionVoice, Transcriber};
use serde_json::json;

use super::{assert_no_key, KEY};
use crate::llm::fake_provider::{FakeProvider, Reply};
use crate::llm::stt::{OpenAiTranscriber, SttSettings};
use crate::llm::tts::{audio_file, audio_name, serve_audio, AudioDir, OpenAiVoice, TtsSettings};

fn transcriber(fake: &FakeProvider) -> OpenAiTranscriber {
    OpenAiTranscriber::new(SttSettings {
        base_url: fake.base_url(),
        api_key: Some(KEY.into()),
        model: "whisper-1".into(),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

fn voice(fake: &FakeProvider, dir: &Path) -> OpenAiVoice {
    OpenAiVoice::new(TtsSettings {
        base_url: fake.base_url(),
        api_key: Some(KEY.into()),
        model: "tts-1".into(),
        voice: "alloy".into(),
        timeout: Duration::from_secs(5),
        dir: dir.to_path_buf(),
    })
    .unwrap()
}

#[tokio::test]
async fn a_transcription_uploads_the_audio_as_multipart() {
    let fake = FakeProvider::start().await;
    fake.push(Reply::Transcription(
        "  I would use a token bucket. ".into(),
    ));
    let audio: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let t = transcriber(&fake).transcribe(audio.clone()).await.unwrap();
    assert_eq!(t.text, "I would use a token bucket.");
    assert_eq!(t.confidence, None);

    let r = &fake.requests()[0];
    assert_eq!(r.path, "/v1/audio/transcriptions");
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    let form = r.form();
    let field = |name: &str| form.iter().find(|f| f.name == name).cloned();
    let file = field("file").expect("a file part");
    assert_eq!(file.filename.as_deref(), Some("answer.webm"));
    assert_eq!(file.content_type.as_deref(), Some("audio/webm"));
    assert_eq!(file.data, audio);
    assert_eq!(field("model").unwrap().data, b"whisper-1");
    assert_eq!(field("response_format").unwrap().data, b"json");
}

#[tokio::test]
async fn transcription_errors() {
    let fake = FakeProvider::start().await;
    fake.push(Reply::server_error());
    fake.push(Reply::Transcription("retried".into()));
    assert_eq!(
        transcriber(&fake)
            .transcribe(vec![1, 2, 3])
            .await
            .unwrap()
            .text,
        "retried"
    );
    assert_eq!(fake.requests().len(), 2, "the same retry rules");

    let fake = FakeProvider::start().await;
    fake.push(Reply::status(
        400,
        &format!(r#"{{"error":{{"message":"bad file from {KEY}"}}}}"#),
    ));
    let e = transcriber(&fake)
        .transcribe(vec![1, 2, 3])
        .await
        .unwrap_err();
    assert!(
        matches!(e, InterviewerError::Unavailable(ref m) if m.starts_with("HTTP 400")),
        "{e:?}"
    );
    assert_no_key(&e);

    fake.push(Reply::Json(json!({"words": []})));
    let e = transcriber(&fake).transcribe(vec![1]).await.unwrap_err();
    assert!(matches!(e, InterviewerError::Invalid(_)), "{e:?}");

    let e = transcriber(&fake).transcribe(vec![]).await.unwrap_err();
    assert!(matches!(e, InterviewerError::Invalid(_)));
    assert_eq!(fake.requests().len(), 2, "no request without audio");
}

#[tokio::test]
async fn a_question_is_synthesised_once_and_named_by_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeProvider::start().await;
    let mp3 = b"ID3 fake mp3 bytes".to_vec();
    fake.push(Reply::Delayed(
        Duration::from_millis(200),
        Box::new(Reply::Speech(mp3.clone())),
    ));
    fake.push(Reply::Speech(b"second".to_vec()));
    let v = voice(&fake, &dir.path().join("audio"));
    let text = "How would you design a rate limiter for a public API?";

    // Two sessions ask for the same question at once.
    let (a, b) = tokio::join!(v.audio_url(text), v.audio_url(text));
    let name = audio_name("tts-1", "alloy", text);
    assert_eq!(a.unwrap(), format!("/v1/audio/{name}"));
    assert_eq!(b.unwrap(), format!("/v1/audio/{name}"));
    assert_eq!(fake.requests().len(), 1, "synthesised once");
    let stored = std::fs::read(dir.path().join("audio").join(&name)).unwrap();
    assert_eq!(stored, mp3);
    // Later: reused (also by a new voice on the same directory, e.g. after a restart).
    v.audio_url(text).await.unwrap();
    voice(&fake, &dir.path().join("audio"))
        .audio_url(text)
        .await
        .unwrap();
    assert_eq!(fake.requests().len(), 1);
    // No temporary files left behind.
    let files: Vec<_> = std::fs::read_dir(dir.path().join("audio"))
        .unwrap()
        .collect();
    assert_eq!(files.len(), 1);

    let r = &fake.requests()[0];
    assert_eq!(r.path, "/v1/audio/speech");
    assert_eq!(
        r.json.clone().unwrap(),
        json!({"model": "tts-1", "voice": "alloy", "input": text, "response_format": "mp3"})
    );
    // Another text is another file.
    let other = v.audio_url("Tell me about an incident.").await.unwrap();
    assert_ne!(other, format!("/v1/audio/{name}"));
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn speech_errors_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeProvider::start().await;
    fake.push(Reply::Json(
        json!({"error": {"message": "voice not found"}}),
    ));
    let v = voice(&fake, dir.path());
    let e = v.audio_url("Hello").await.unwrap_err();
    assert!(
        matches!(e, InterviewerError::Invalid(ref m) if m.contains("voice not found")),
        "{e:?}"
    );
    fake.push(Reply::status(
        401,
        &format!(r#"{{"error":{{"message":"key {KEY}"}}}}"#),
    ));
    let e = v.audio_url("Hello").await.unwrap_err();
    assert_no_key(&e);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    assert!(v.audio_url("   ").await.is_err());
}

#[test]
fn names_are_stable_and_checked() {
    // A pinned value: changing the hash orphans every stored file.
    assert_eq!(
        audio_name("tts-1", "alloy", "Hello"),
        audio_name("tts-1", "alloy", " Hello ")
    );
    assert_eq!(
        audio_name("tts-1", "alloy", "Hello"),
        "0ae325158c310cec.mp3"
    );
    assert_ne!(
        audio_name("tts-1", "alloy", "Hello"),
        audio_name("tts-1", "nova", "Hello")
    );
    let dir = Path::new("/srv/audio");
    assert_eq!(
        audio_file(dir, "0ae325158c310cec.mp3"),
        Some(dir.join("0ae325158c310cec.mp3"))
    );
    for bad in [
        "../etc/passwd",
        "..%2f.mp3",
        "../0a.mp3",
        "0a/0b.mp3",
        "0A.mp3",
        ".mp3",
        "0a.mp3.tmp",
        "0a.wav",
        "0a",
        "",
        &format!("{}.mp3", "a".repeat(65)),
    ] {
        assert_eq!(audio_file(dir, bad), None, "{bad}");
    }
}

#[actix_rt::test]
async fn audio_is_served_with_a_long_cache() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("0abc.mp3"), b"mp3").unwrap();
    let app = atest::init_service(
        App::new()
            .app_data(web::Data::new(AudioDir(dir.path().to_path_buf())))
            .route("/v1/audio/{name}", web::get().to(serve_audio)),
    )
    .await;
    let resp = atest::call_service(
        &app,
        atest::TestRequest::get()
            .uri("/v1/audio/0abc.mp3")
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers().get("content-type").unwrap(), "audio/mpeg");
    assert!(resp
        .headers()
        .get("cache-control")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert_eq!(atest::read_body(resp).await, "mp3".as_bytes());
    for uri in [
        "/v1/audio/0abd.mp3",
        "/v1/audio/..%2Fsecret.mp3",
        "/v1/audio/x.mp3",
    ] {
        let resp = atest::call_service(&app, atest::TestRequest::get().uri(uri).to_request()).await;
        assert_eq!(resp.status(), 404, "{uri}");
    }
}
