//! `speak`: the request, every stream quirk, the question guarantee,
//! deadlines, and that dropping the stream drops the request.

use std::time::Duration;

use futures_util::StreamExt;
use interview_actors::ports::{Interviewer, InterviewerError, TurnKind};

use super::{assert_no_key, collect, interviewer, oks, turn, QUESTION};
use crate::llm::fake_provider::{FakeProvider, Reply, StreamEnd, StreamReply};

const GREETING: &str = "Hello Ada, welcome. ";
const Q1: &str = "How would you design";
const Q2: &str = " a rate limiter for a public API?";

#[tokio::test]
async fn streams_tokens_from_an_openai_shaped_request() {
    let fake = FakeProvider::start().await;
    fake.push(Reply::Stream(StreamReply::tokens(&[GREETING, Q1, Q2])));
    let got = collect(interviewer(&fake, 5000).speak(turn(TurnKind::Opening))).await;
    assert_eq!(
        got,
        oks(&[GREETING, Q1, Q2]),
        "the question is there: nothing appended"
    );

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {}", super::KEY).as_str())
    );
    let body = r.json.as_ref().expect("a JSON body");
    assert_eq!(body["model"], "fake-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    let messages = body["messages"].as_array().expect("messages");
    assert_eq!(messages[0]["role"], "system");
    assert_eq!(messages.last().unwrap()["role"], "user");
    let last = messages.last().unwrap()["content"].as_str().unwrap();
    assert!(
        last.ends_with(QUESTION),
        "the instruction ends with the exact question: {last}"
    );
    assert!(
        last.contains("Interviewer: Hello Ada."),
        "the transcript is sent: {last}"
    );
    assert!(r.finished && !r.hung_up);
}

#[tokio::test]
async fn comments_crlf_close_delimited_body_and_reasoning() {
    let fake = FakeProvider::start().await;
    fake.push(Reply::Stream(
        StreamReply::tokens(&[GREETING, Q1, Q2])
            .comments()
            .crlf()
            .unchunked()
            .reasoning(&["The candidate is Ada; ", "I should greet her."]),
    ));
    let got = collect(interviewer(&fake, 5000).speak(turn(TurnKind::Opening))).await;
    assert_eq!(got, oks(&[GREETING, Q1, Q2]), "reasoning is never said");
}

#[tokio::test]
async fn the_question_is_appended_when_the_model_leaves_it_out() {
    let fake = FakeProvider::start().await;
    fake.push(Reply::Stream(StreamReply::tokens(&[
        "Thanks",
        " for that.",
    ])));
    let got = collect(interviewer(&fake, 5000).speak(turn(TurnKind::NextQuestion))).await;
    assert_eq!(got, oks(&["Thanks", " for that.", &format!(" {QUESTION}")]));

    // Nothing but role and usage chunks: the question alone.
    fake.push(Reply::Stream(StreamReply::tokens(&[])));
    let got = collect(interviewer(&fake, 5000).speak(turn(TurnKind::FollowUp))).await;
    assert_eq!(got, oks(&[QUESTION]));
}

#[tokio::test]
async fn a_closing_is_said_as_is_but_never_empty() {
    let fake = FakeProvider::start().await;
    fake.push(Reply::Stream(StreamReply::tokens(&[
        "Thank you, Ada.",
        " Goodbye.",
    ])));
    let got = collect(interviewer(&fake, 5000).speak(turn(TurnKind::Closing))).await;
    assert_eq!(got, oks(&["Thank you, Ada.", " Goodbye."]));
    let last = fake.requests()[0].json.clone().unwrap()["messages"][1]["content"].clone();
    assert!(
        last.as_str().unwrap().contains("Do not ask any question"),
        "{last}"
    );

    fake.push(Reply::Stream(StreamReply::tokens(&[])));
    let got = collect(interviewer(&fake, 5000).speak(turn(TurnKind::Closing))).await;
    assert!(
        matches!(got.as_slice(), [Err(InterviewerError::Invalid(_))]),
        "{got:?}"
    );
}

#[tokio::test]
async fn an_error_chunk_in_a_200_stream_is_unavailable() {
    for then_done in [true, false] {
        let fake = FakeProvider::start().await;
        fake.push(Reply::Stream(StreamReply::tokens(&[GREETING]).end(
            StreamEnd::Error {
                message: "The model is overloaded".into(),
                then_done,
            },
        )));
        let got = collect(interviewer(&fake, 5000).speak(turn(TurnKind::Opening))).await;
        assert_eq!(
            got,
            vec![
                Ok(GREETING.to_string()),
                Err(InterviewerError::Unavailable(
                    "The model is overloaded".into()
                ))
            ],
            "then_done: {then_done}"
        );
    }
}

#[tokio::test]
async fn a_cut_stream_is_unavailable_after_its_pieces() {
    // Close-delimited body: a clean end without [DONE].
    let fake = FakeProvider::start().await;
    fake.push(Reply::Stream(
        StreamReply::tokens(&[GREETING, Q1])
            .unchunked()
            .end(StreamEnd::Cut),
    ));
    let got = collect(interviewer(&fake, 5000).speak(turn(TurnKind::Opening))).await;
    assert_eq!(
        got,
        vec![
            Ok(GREETING.to_string()),
            Ok(Q1.to_string()),
            Err(InterviewerError::Unavailable("truncated".into()))
        ]
    );
    // Chunked body cut off: a transport error.
    fake.push(Reply::Stream(
        StreamReply::tokens(&[GREETING, Q1]).end(StreamEnd::Cut),
    ));
    let got = collect(interviewer(&fake, 5000).speak(turn(TurnKind::Opening))).await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[..2], oks(&[GREETING, Q1])[..]);
    assert!(
        matches!(&got[2], Err(InterviewerError::Unavailable(_))),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_malformed_chunk_is_invalid() {
    let fake = FakeProvider::start().await;
    fake.push(Reply::Stream(
        StreamReply::tokens(&[GREETING]).end(StreamEnd::Malformed),
    ));
    let got = collect(interviewer(&fake, 5000).speak(turn(TurnKind::Opening))).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0], Ok(GREETING.to_string()));
    assert!(
        matches!(&got[1], Err(InterviewerError::Invalid(_))),
        "{got:?}"
    );
}

#[tokio::test]
async fn no_first_token_within_a_third_of_the_timeout() {
    let fake = FakeProvider::start().await;
    // Headers at once, then silence.
    fake.push(Reply::Stream(
        StreamReply::tokens(&[GREETING]).first_delay(Duration::from_secs(30)),
    ));
    let got = collect(interviewer(&fake, 600).speak(turn(TurnKind::Opening))).await;
    assert_eq!(got, vec![Err(InterviewerError::Timeout)]);
    assert!(
        fake.wait_for_hang_up(0, Duration::from_secs(5)).await,
        "the timed-out request is dropped"
    );
    // No headers at all.
    fake.push(Reply::Delayed(
        Duration::from_secs(30),
        Box::new(Reply::Stream(StreamReply::tokens(&[GREETING]))),
    ));
    let got = collect(interviewer(&fake, 600).speak(turn(TurnKind::Opening))).await;
    assert_eq!(got, vec![Err(InterviewerError::Timeout)]);
    assert!(fake.wait_for_hang_up(1, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn a_message_that_outlasts_the_timeout() {
    let fake = FakeProvider::start().await;
    let words: Vec<String> = (0..50).map(|i| format!("w{i} ")).collect();
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    fake.push(Reply::Stream(
        StreamReply::tokens(&refs).token_delay(Duration::from_millis(100)),
    ));
    let got = collect(interviewer(&fake, 900).speak(turn(TurnKind::Opening))).await;
    let (last, pieces) = got.split_last().expect("something");
    assert_eq!(last, &Err(InterviewerError::Timeout), "{got:?}");
    assert!(!pieces.is_empty() && pieces.len() < 50, "{got:?}");
    assert!(pieces.iter().all(Result::is_ok));
    assert!(fake.wait_for_hang_up(0, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn dropping_the_stream_drops_the_request() {
    let fake = FakeProvider::start().await;
    let words: Vec<String> = (0..200).map(|i| format!("w{i} ")).collect();
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    fake.push(Reply::Stream(
        StreamReply::tokens(&refs).token_delay(Duration::from_millis(50)),
    ));
    let mut stream = interviewer(&fake, 60_000).speak(turn(TurnKind::Opening));
    assert_eq!(stream.next().await, Some(Ok("w0 ".to_string())));
    assert_eq!(stream.next().await, Some(Ok("w1 ".to_string())));
    drop(stream);
    assert!(
        fake.wait_for_hang_up(0, Duration::from_secs(5)).await,
        "the provider sees the client go: {:?}",
        fake.requests()
    );

    // Dropped while waiting for the first token.
    fake.push(Reply::Stream(
        StreamReply::tokens(&["late"]).first_delay(Duration::from_secs(60)),
    ));
    let mut stream = interviewer(&fake, 60_000).speak(turn(TurnKind::Opening));
    let waited = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
    assert!(waited.is_err(), "nothing yet: {waited:?}");
    assert_eq!(
        fake.wait_for_requests(2, Duration::from_secs(5))
            .await
            .len(),
        2
    );
    drop(stream);
    assert!(fake.wait_for_hang_up(1, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn provider_errors_in_the_stream_never_show_the_key() {
    let fake = FakeProvider::start().await;
    fake.push(Reply::Stream(StreamReply::tokens(&[]).end(
        StreamEnd::Error {
            message: format!("bad key {}", super::KEY),
            then_done: true,
        },
    )));
    let got = collect(interviewer(&fake, 5000).speak(turn(TurnKind::Opening))).await;
    let [Err(e)] = got.as_slice() else {
        panic!("{got:?}")
    };
    assert!(matches!(e, InterviewerError::Unavailable(_)));
    assert_no_key(e);
}
