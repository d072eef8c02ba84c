//! The real server with a model interviewer: `LLM_BASE_URL` pointed at the
//! fake OpenAI-compatible provider (tests/llm_fake, the same fake the unit
//! tests use). A whole interview on the model path, watched by two
//! observers; and a provider that only fails, which the candidate hears of
//! (`AI_UNAVAILABLE`) while the interview goes on.

mod common;
mod llm_fake;

use std::time::Duration;

use common::*;
use llm_fake::{FakeProvider, Recorded, Reply, StreamReply};
use serde_json::{json, Value};

const KEY: &str = "sk-blackbox-SECRET-0001";
const SAID: &str = "From the model. ";

/// The fake's answers on the model path: a streamed message, a valid
/// evaluation (`next_question`), a valid summary.
fn model_replies(r: &Recorded) -> Reply {
    if !r.path.ends_with("/chat/completions") {
        return Reply::status(404, r#"{"error":"no such route"}"#);
    }
    if r.is_stream() {
        return Reply::Stream(
            StreamReply::tokens(&["From ", "the ", "model. "])
                .token_delay(Duration::from_millis(5)),
        );
    }
    if r.text().contains("overallScore") {
        return Reply::Completion(
            json!({"overallScore": 74, "recommendation": "hire",
                "strengths": ["Concrete designs"], "weaknesses": ["Light on metrics"],
                "categoryScores": {"technical": 80, "behavioral": 70, "situational": 72}})
            .to_string(),
        );
    }
    Reply::Completion(
        json!({"score": 81, "strengths": ["Specific"], "weaknesses": [], "feedback": "Clear answer.",
               "nextAction": "next_question"})
        .to_string(),
    )
}

/// The text of every message (`ai-token`s joined by message id) among frames.
fn messages(frames: &[Value]) -> Vec<String> {
    let mut out: Vec<(Value, String)> = Vec::new();
    for f in frames.iter().filter(|f| ty(f) == "ai-token") {
        let id = f["data"]["messageId"].clone();
        let text = f["data"]["text"].as_str().unwrap_or_default();
        match out.iter_mut().find(|(i, _)| *i == id) {
            Some((_, t)) => t.push_str(text),
            None => out.push((id, text.to_string())),
        }
    }
    out.into_iter().map(|(_, t)| t).collect()
}

async fn start_with_model(fake: &FakeProvider, timeout_ms: &str) -> TestServer {
    let base = fake.base_url();
    TestServer::start(&[
        ("LLM_BASE_URL", base.as_str()),
        ("LLM_API_KEY", KEY),
        ("LLM_MODEL", "fake-model"),
        ("LLM_TIMEOUT_MS", timeout_ms),
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_interview_on_the_model_path_with_two_observers() {
    let fake = FakeProvider::start().await;
    fake.respond_with(model_replies);
    let server = start_with_model(&fake, "5000").await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut adm, _) = join_observer(&server, &iv, Some(&admin_token()), "admin", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;

    cand.send("start-interview", json!({})).await;
    let start = cand.collect_until("question").await;
    let said = messages(&start);
    assert_eq!(said.len(), 1, "one message: {:?}", types(&start));
    let first = &iv.questions[0].0;
    assert_eq!(
        said[0],
        format!("{SAID}{first}"),
        "the model's words, then the question"
    );
    let q = last_question(&start).expect("a question");
    assert_eq!(&q["text"], first);

    let answers = [LONG_ANSWER, LONG_ANSWER_2, LONG_ANSWER_3];
    let mut all = start.clone();
    for (i, answer) in answers.iter().enumerate() {
        cand.send("answer", json!({"text": answer})).await;
        let frames = cand
            .collect_until_any(&["question", "interview-completed"])
            .await;
        let ev = frames
            .iter()
            .find(|f| ty(f) == "evaluation")
            .unwrap_or_else(|| panic!("an evaluation: {:?}", types(&frames)));
        assert_eq!(ev["data"]["source"], "llm", "{ev}");
        assert_eq!(ev["data"]["score"], 81, "{ev}");
        assert_eq!(ev["data"]["feedback"], "Clear answer.", "{ev}");
        let last = i + 1 == answers.len();
        assert_eq!(
            ev["data"]["nextAction"],
            if last { "complete" } else { "next_question" },
            "{ev}"
        );
        for text in messages(&frames) {
            assert!(text.starts_with(SAID), "streamed by the model: {text:?}");
        }
        assert!(
            frames.iter().all(|f| ty(f) != "error"),
            "no AI_UNAVAILABLE on the happy path: {:?}",
            types(&frames)
        );
        all.extend(frames);
    }
    let done = all.last().expect("frames");
    assert_eq!(ty(done), "interview-completed", "{:?}", types(&all));
    let summary = &done["data"]["summary"];
    assert_eq!(summary["overallScore"], 74, "{summary}");
    assert_eq!(summary["recommendation"], "hire", "{summary}");
    assert_eq!(summary["questionsAnswered"], 3, "{summary}");

    // Both observers saw the model's tokens and verdicts, in the same log.
    for obs in [&mut rec, &mut adm] {
        let seen = obs.collect_until("interview-completed").await;
        let texts = messages(&seen);
        assert!(texts.len() >= 4, "{:?}", types(&seen));
        assert!(texts.iter().all(|t| t.starts_with(SAID)), "{texts:?}");
        let evaluations: Vec<&Value> = seen.iter().filter(|f| ty(f) == "evaluation").collect();
        assert_eq!(evaluations.len(), 3);
        assert!(evaluations.iter().all(|e| e["data"]["source"] == "llm"));
    }
    assert_same_events(&adm.events(), &rec.events(), "admin vs recruiter");
    assert_candidate_view(&cand.events(), &rec.events(), "candidate vs observer");

    // What the provider was sent.
    let requests = fake.requests();
    let streams = requests.iter().filter(|r| r.is_stream()).count();
    assert_eq!(streams, 4, "opening, two next questions, closing");
    for r in &requests {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
        assert_eq!(r.json.as_ref().unwrap()["model"], "fake-model");
    }
    assert!(
        !server.dump_log().contains(KEY),
        "the API key must never be logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_provider_gives_ai_unavailable_and_the_interview_goes_on() {
    let fake = FakeProvider::start().await;
    fake.respond_with(|_| Reply::server_error());
    let server = start_with_model(&fake, "1500").await;
    let iv = server.create_interview().await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;

    cand.send("start-interview", json!({})).await;
    let start = cand.collect_until("question").await;
    let errors: Vec<&Value> = start.iter().filter(|f| ty(f) == "error").collect();
    assert!(
        !errors.is_empty(),
        "the candidate hears of it: {:?}",
        types(&start)
    );
    assert_eq!(errors[0]["data"]["code"], "AI_UNAVAILABLE", "{}", errors[0]);
    assert_eq!(errors[0]["data"]["retryable"], true, "{}", errors[0]);
    let q = last_question(&start).expect("the interview goes on with a question");
    assert_eq!(q["text"], iv.questions[0].0);

    // An answer: the evaluation falls back to the heuristic, and says so.
    cand.send("answer", json!({"text": LONG_ANSWER})).await;
    let frames = cand
        .collect_until_any(&["question", "interview-completed"])
        .await;
    let ev = frames
        .iter()
        .find(|f| ty(f) == "evaluation")
        .unwrap_or_else(|| panic!("an evaluation: {:?}", types(&frames)));
    assert_eq!(
        ev["data"]["source"], "heuristic",
        "never a made-up model score: {ev}"
    );
    assert!(
        frames
            .iter()
            .any(|f| ty(f) == "error" && f["data"]["code"] == "AI_UNAVAILABLE"),
        "{:?}",
        types(&frames)
    );
    assert_eq!(
        ty(frames.last().unwrap()),
        "question",
        "{:?}",
        types(&frames)
    );
    assert!(!fake.requests().is_empty(), "the provider was tried");
    assert!(
        !server.dump_log().contains(KEY),
        "the API key must never be logged"
    );
}

/// Pausing mid-message stops the model's stream: the provider sees the
/// client hang up, the message ends `interrupted`, and no token of it
/// reaches any client afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_cancels_the_model_stream() {
    let fake = FakeProvider::start().await;
    let words: Vec<String> = (0..200).map(|i| format!("w{i} ")).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let slow = StreamReply::tokens(&words).token_delay(Duration::from_millis(20));
    fake.push(Reply::Stream(slow));
    let server = start_with_model(&fake, "30000").await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;

    cand.send("start-interview", json!({})).await;
    // Some tokens are out, then the candidate pauses.
    let mut tokens = 0;
    while tokens < 5 {
        if ty(&cand.recv().await) == "ai-token" {
            tokens += 1;
        }
    }
    cand.send("pause-interview", json!({})).await;
    let rest = cand.collect_until("interview-paused").await;
    let end = rest
        .iter()
        .find(|f| ty(f) == "ai-stream-end")
        .unwrap_or_else(|| panic!("the message ends: {:?}", types(&rest)));
    assert_eq!(end["data"]["interrupted"], true, "{end}");
    let message_id = end["data"]["messageId"].clone();
    assert!(
        fake.wait_for_hang_up(0, Duration::from_secs(5)).await,
        "the provider must see the request dropped"
    );
    // Nothing of that message after its end, on either socket.
    let after = cand.collect_quiet(Duration::from_millis(500)).await;
    assert!(
        !after.iter().any(|f| f["data"]["messageId"] == message_id),
        "{:?}",
        types(&after)
    );
    rec.collect_until_seq(cand.last_seq).await;
    let seen = rec.events();
    let end_at = seen
        .iter()
        .position(|f| ty(f) == "ai-stream-end" && f["data"]["messageId"] == message_id)
        .expect("observer saw the end");
    assert!(!seen[end_at + 1..]
        .iter()
        .any(|f| ty(f) == "ai-token" && f["data"]["messageId"] == message_id));
    let streamed: String = seen[..end_at]
        .iter()
        .filter(|f| ty(f) == "ai-token" && f["data"]["messageId"] == message_id)
        .map(|f| f["data"]["text"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(end["data"]["text"].as_str().unwrap(), streamed);
}

/// A provider that never sends a first token: within a third of
/// LLM_TIMEOUT_MS the candidate hears AI_UNAVAILABLE and the scripted
/// interviewer asks the question in the same message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_provider_falls_back_within_the_first_token_deadline() {
    let fake = FakeProvider::start().await;
    fake.respond_with(|r| {
        if r.is_stream() {
            Reply::Stream(StreamReply::tokens(&["late"]).first_delay(Duration::from_secs(30)))
        } else {
            model_replies(r)
        }
    });
    let server = start_with_model(&fake, "1500").await;
    let iv = server.create_interview().await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let started = std::time::Instant::now();
    cand.send("start-interview", json!({})).await;
    let turn = cand.collect_until("question").await;
    let waited = started.elapsed();
    assert!(
        turn.iter()
            .any(|f| ty(f) == "error" && f["data"]["code"] == "AI_UNAVAILABLE"),
        "{:?}",
        types(&turn)
    );
    let texts = messages(&turn);
    assert_eq!(texts.len(), 1, "one message: {texts:?}");
    assert!(texts[0].contains(&iv.questions[0].0), "{texts:?}");
    let end = turn.iter().find(|f| ty(f) == "ai-stream-end").unwrap();
    assert_eq!(
        end["data"]["interrupted"], false,
        "the fallback finished it: {end}"
    );
    // Not a timing assertion on speed: the candidate was not left waiting
    // for the whole turn's deadline plus the provider's 30 s stall.
    assert!(waited < Duration::from_secs(10), "{waited:?}");
}
