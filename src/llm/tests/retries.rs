//! The retry rules before the first token, and the key's secrecy in errors.

use std::time::Duration;

use interview_actors::ports::{Interviewer, InterviewerError, TurnKind};

use super::{assert_no_key, collect, interviewer, oks, settings, turn, QUESTION};
use crate::llm::fake_provider::{FakeProvider, Reply, StreamReply};
use crate::llm::openai::OpenAiInterviewer;

const RATE_LIMITED: &str =
    r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#;

fn ok_stream() -> Reply {
    Reply::Stream(StreamReply::tokens(&["Hi. ", QUESTION]))
}

#[tokio::test]
async fn a_429_waits_for_retry_after_seconds() {
    let fake = FakeProvider::start().await;
    fake.push(Reply::status_with(
        429,
        &[("Retry-After", "1")],
        RATE_LIMITED,
    ));
    fake.push(ok_stream());
    // First-token deadline 3 s: room for the 1 s wait.
    let got = collect(interviewer(&fake, 9000).speak(turn(TurnKind::Opening))).await;
    assert_eq!(got, oks(&["Hi. ", QUESTION]));
    let r = fake.requests();
    assert_eq!(r.len(), 2);
    let gap = r[1].at.duration_since(r[0].at);
    assert!(
        gap >= Duration::from_millis(900),
        "Retry-After: 1 honoured, waited {gap:?}"
    );
}

#[tokio::test]
async fn retry_after_ms_wins_over_retry_after() {
    let fake = FakeProvider::start().await;
    fake.push(Reply::status_with(
        429,
        &[("retry-after-ms", "50"), ("Retry-After", "30")],
        RATE_LIMITED,
    ));
    fake.push(ok_stream());
    // With 30 s the wait would pass the 1 s first-token deadline and fail.
    let got = collect(interviewer(&fake, 3000).speak(turn(TurnKind::Opening))).await;
    assert_eq!(got, oks(&["Hi. ", QUESTION]));
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn retries_408_409_and_5xx_then_streams() {
    let fake = FakeProvider::start().await;
    fake.push(Reply::status(408, "{}"));
    fake.push(Reply::status(409, "{}"));
    fake.push(Reply::server_error());
    fake.push(ok_stream());
    let got = collect(interviewer(&fake, 9000).speak(turn(TurnKind::Opening))).await;
    assert_eq!(got, oks(&["Hi. ", QUESTION]));
    let paths: Vec<String> = fake.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, vec!["/v1/chat/completions"; 4]);
}

#[tokio::test]
async fn gives_up_after_three_retries() {
    let fake = FakeProvider::start().await;
    for _ in 0..6 {
        fake.push(Reply::server_error());
    }
    let got = collect(interviewer(&fake, 9000).speak(turn(TurnKind::Opening))).await;
    let [Err(InterviewerError::Unavailable(m))] = got.as_slice() else {
        panic!("{got:?}")
    };
    assert!(m.starts_with("HTTP 500: The server had an error"), "{m}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.requests().len(), 4, "one attempt and three retries");
}

#[tokio::test]
async fn other_4xx_and_insufficient_quota_are_not_retried() {
    let quota = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
    let cases = [
        (
            400,
            r#"{"error":{"message":"bad request","type":"invalid_request_error"}}"#,
        ),
        (
            401,
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#,
        ),
        (404, r#"{"error":"model 'fake-model' not found"}"#),
        (422, "unprocessable"),
        (429, quota),
    ];
    for (status, body) in cases {
        let fake = FakeProvider::start().await;
        fake.push(Reply::status(status, body));
        fake.push(ok_stream());
        let got = collect(interviewer(&fake, 9000).speak(turn(TurnKind::Opening))).await;
        let [Err(InterviewerError::Unavailable(m))] = got.as_slice() else {
            panic!("{status}: {got:?}")
        };
        assert!(m.starts_with(&format!("HTTP {status}: ")), "{m}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(fake.requests().len(), 1, "{status} is not retried");
    }
}

#[tokio::test]
async fn a_wait_past_the_deadline_is_not_started() {
    let fake = FakeProvider::start().await;
    fake.push(Reply::status_with(
        429,
        &[("Retry-After", "30")],
        RATE_LIMITED,
    ));
    fake.push(ok_stream());
    let got = collect(interviewer(&fake, 3000).speak(turn(TurnKind::Opening))).await;
    // Unavailable (with the status), not Timeout: it did not sit out the wait.
    let [Err(InterviewerError::Unavailable(m))] = got.as_slice() else {
        panic!("{got:?}")
    };
    assert!(m.starts_with("HTTP 429"), "{m}");
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn dropped_connections_are_retried() {
    let fake = FakeProvider::start().await;
    fake.push(Reply::Hangup);
    fake.push(Reply::Hangup);
    fake.push(ok_stream());
    let got = collect(interviewer(&fake, 9000).speak(turn(TurnKind::Opening))).await;
    assert_eq!(got, oks(&["Hi. ", QUESTION]));
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client =
        OpenAiInterviewer::new(settings(format!("http://127.0.0.1:{port}/v1"), 9000)).unwrap();
    let got = collect(client.speak(turn(TurnKind::Opening))).await;
    let [Err(e @ InterviewerError::Unavailable(m))] = got.as_slice() else {
        panic!("{got:?}")
    };
    assert!(m.contains("cannot connect"), "{m}");
    assert_no_key(e);
}

#[tokio::test]
async fn the_key_never_shows_in_errors_or_debug() {
    let fake = FakeProvider::start().await;
    let echo = format!(
        r#"{{"error":{{"message":"Incorrect API key provided: {}. You can find your API key at https://example.invalid.","type":"invalid_request_error","code":"invalid_api_key"}}}}"#,
        super::KEY
    );
    fake.push(Reply::status(401, &echo));
    let client = interviewer(&fake, 5000);
    let got = collect(client.speak(turn(TurnKind::Opening))).await;
    let [Err(e)] = got.as_slice() else {
        panic!("{got:?}")
    };
    assert!(
        e.to_string()
            .contains("HTTP 401: Incorrect API key provided: [redacted]"),
        "{e}"
    );
    assert_no_key(e);

    fake.push(Reply::status(401, &echo));
    let answer = super::verdicts::answer(false);
    let e = client.evaluate(answer).await.unwrap_err();
    assert_no_key(&e);

    let shown = format!("{client:?} {:?}", settings(fake.base_url(), 5000));
    assert!(!shown.contains(super::KEY), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");
    // The key goes in the header, and only there.
    let r = &fake.requests()[0];
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {}", super::KEY).as_str())
    );
    assert!(!r.text().contains(super::KEY));
}

#[tokio::test]
async fn no_key_no_authorization_header() {
    let fake = FakeProvider::start().await;
    fake.push(ok_stream());
    let mut s = settings(fake.base_url(), 5000);
    s.api_key = None;
    let got = collect(
        OpenAiInterviewer::new(s)
            .unwrap()
            .speak(turn(TurnKind::Opening)),
    )
    .await;
    assert_eq!(got, oks(&["Hi. ", QUESTION]));
    assert_eq!(fake.requests()[0].header("authorization"), None);
}
