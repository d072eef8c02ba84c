//! `evaluate` and `summarize`: JSON mode, validation, one more try, and the
//! same HTTP rules as `speak`.

use std::time::Duration;

use interview_actors::event::{NextAction, ScoreSource};
use interview_actors::ports::{AnswerToScore, AnsweredQuestion, Interviewer, InterviewerError};
use serde_json::json;

use super::{interview, interviewer, question, QUESTION};
use crate::llm::fake_provider::{FakeProvider, Reply};

pub fn answer(is_last_question: bool) -> AnswerToScore {
    AnswerToScore {
        interview: interview(),
        question: question("q1", QUESTION, "TECHNICAL", 1),
        answer: "A token bucket per API key in Redis, refilled lazily.".into(),
        follow_ups_asked: 0,
        is_last_question,
        transcript: vec![],
    }
}

fn verdict(next: &str) -> String {
    json!({"score": 78, "strengths": ["Names a concrete algorithm"], "weaknesses": ["No numbers"],
           "feedback": "Solid and specific.", "nextAction": next})
    .to_string()
}

#[tokio::test]
async fn a_valid_evaluation_in_json_mode() {
    let fake = FakeProvider::start().await;
    fake.push(Reply::Completion(verdict("next_question")));
    let a = interviewer(&fake, 5000)
        .evaluate(answer(false))
        .await
        .unwrap();
    assert_eq!(a.evaluation.question_id, "q1");
    assert_eq!(a.evaluation.score, 78);
    assert_eq!(a.evaluation.source, ScoreSource::Llm);
    assert_eq!(a.evaluation.next_action, NextAction::NextQuestion);
    assert_eq!(a.evaluation.strengths, vec!["Names a concrete algorithm"]);
    assert_eq!(a.follow_up_question, None);

    let r = &fake.requests()[0];
    assert_eq!(r.path, "/v1/chat/completions");
    let body = r.json.clone().unwrap();
    assert_eq!(body["response_format"], json!({"type": "json_object"}));
    assert_eq!(body.get("stream"), None);
    assert_eq!(body["model"], "fake-model");
    let user = body["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("A token bucket per API key"), "{user}");
}

#[tokio::test]
async fn a_follow_up_comes_with_its_question() {
    let fake = FakeProvider::start().await;
    let reply = json!({"score": 30, "strengths": [], "weaknesses": ["Too short"], "feedback": "Vague.",
        "nextAction": "follow_up", "followUpQuestion": "Where would you keep the buckets?"});
    fake.push(Reply::Completion(reply.to_string()));
    let a = interviewer(&fake, 5000)
        .evaluate(answer(false))
        .await
        .unwrap();
    assert_eq!(a.evaluation.next_action, NextAction::FollowUp);
    assert_eq!(
        a.follow_up_question.as_deref(),
        Some("Where would you keep the buckets?")
    );
}

#[tokio::test]
async fn an_invalid_reply_is_asked_again_once() {
    let fake = FakeProvider::start().await;
    fake.push(Reply::Completion("Sure! The candidate did well.".into()));
    fake.push(Reply::Completion(verdict("complete")));
    let a = interviewer(&fake, 5000)
        .evaluate(answer(true))
        .await
        .unwrap();
    assert_eq!(a.evaluation.next_action, NextAction::Complete);
    let r = fake.requests();
    assert_eq!(r.len(), 2);
    let messages = r[1].json.clone().unwrap()["messages"].clone();
    let messages = messages.as_array().unwrap();
    assert_eq!(
        messages.len(),
        4,
        "the bad reply and the correction are sent back"
    );
    assert_eq!(messages[2]["role"], "assistant");
    assert!(messages[3]["content"]
        .as_str()
        .unwrap()
        .contains("not valid"));
}

#[tokio::test]
async fn invalid_twice_is_invalid_and_never_a_made_up_score() {
    let fake = FakeProvider::start().await;
    fake.push(Reply::Completion(
        verdict("next_question").replace("78", "150"),
    ));
    fake.push(Reply::Completion(json!({"score": 70}).to_string()));
    fake.push(Reply::Completion(verdict("next_question")));
    let e = interviewer(&fake, 5000)
        .evaluate(answer(false))
        .await
        .unwrap_err();
    assert!(matches!(e, InterviewerError::Invalid(_)), "{e:?}");
    assert_eq!(fake.requests().len(), 2, "one more try, not two");
}

#[tokio::test]
async fn a_body_that_is_not_json_counts_as_invalid() {
    let fake = FakeProvider::start().await;
    fake.push(Reply::status(200, "<html>gateway</html>"));
    fake.push(Reply::Json(
        json!({"choices": [{"message": {"role": "assistant", "content": null, "refusal": "no"}}]}),
    ));
    let e = interviewer(&fake, 5000)
        .evaluate(answer(false))
        .await
        .unwrap_err();
    let InterviewerError::Invalid(m) = e else {
        panic!("{e:?}")
    };
    assert!(m.contains("refused"), "{m}");
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn http_errors_follow_the_retry_rules() {
    let fake = FakeProvider::start().await;
    fake.push(Reply::server_error());
    fake.push(Reply::status_with(429, &[("retry-after-ms", "10")], "{}"));
    fake.push(Reply::Completion(verdict("next_question")));
    assert!(interviewer(&fake, 5000)
        .evaluate(answer(false))
        .await
        .is_ok());
    assert_eq!(fake.requests().len(), 3);

    let fake = FakeProvider::start().await;
    fake.push(Reply::status(401, r#"{"error":{"message":"no"}}"#));
    let e = interviewer(&fake, 5000)
        .evaluate(answer(false))
        .await
        .unwrap_err();
    assert_eq!(e, InterviewerError::Unavailable("HTTP 401: no".into()));
    assert_eq!(fake.requests().len(), 1);

    // An error object in a 200 body.
    let fake = FakeProvider::start().await;
    fake.push(Reply::Json(
        json!({"error": {"message": "context too long"}}),
    ));
    let e = interviewer(&fake, 5000)
        .evaluate(answer(false))
        .await
        .unwrap_err();
    assert_eq!(e, InterviewerError::Unavailable("context too long".into()));
}

#[tokio::test]
async fn an_evaluation_ends_by_the_timeout() {
    let fake = FakeProvider::start().await;
    fake.push(Reply::Delayed(
        Duration::from_secs(30),
        Box::new(Reply::Completion(verdict("next_question"))),
    ));
    let e = interviewer(&fake, 500)
        .evaluate(answer(false))
        .await
        .unwrap_err();
    assert_eq!(e, InterviewerError::Timeout);
    assert!(fake.wait_for_hang_up(0, Duration::from_secs(5)).await);
}

fn answered() -> Vec<AnsweredQuestion> {
    let evaluation = interview_actors::heuristic::evaluate(&answer(false));
    vec![
        AnsweredQuestion {
            question: question("q1", QUESTION, "TECHNICAL", 1),
            answer: "Token bucket.".into(),
            evaluation: evaluation.clone(),
            response_ms: Some(4000),
        },
        AnsweredQuestion {
            question: question("q1-f1", "Where would you keep the buckets?", "TECHNICAL", 1),
            answer: "In Redis.".into(),
            evaluation: evaluation.clone(),
            response_ms: Some(2000),
        },
        AnsweredQuestion {
            question: question("q2", "Describe an incident.", "BEHAVIORAL", 2),
            answer: "The cache fell over.".into(),
            evaluation,
            response_ms: None,
        },
    ]
}

#[tokio::test]
async fn a_summary_with_nothing_answered_asks_nobody() {
    let fake = FakeProvider::start().await;
    let s = interviewer(&fake, 5000)
        .summarize(interview(), vec![])
        .await
        .unwrap();
    assert_eq!(s.overall_score, None);
    assert_eq!(s.recommendation, None);
    assert_eq!(s.questions_answered, 0);
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn a_summary_from_the_model_with_our_own_counts() {
    let fake = FakeProvider::start().await;
    let reply = json!({"overallScore": 74, "recommendation": "hire",
        "strengths": ["Concrete designs"], "weaknesses": ["Light on metrics"],
        "categoryScores": {"technical": 80, "behavioral": 66}});
    fake.push(Reply::Completion(format!("```json\n{reply}\n```")));
    let s = interviewer(&fake, 5000)
        .summarize(interview(), answered())
        .await
        .unwrap();
    assert_eq!(s.overall_score, Some(74));
    assert_eq!(s.recommendation.as_deref(), Some("hire"));
    assert_eq!(s.category_scores.get("technical"), Some(&80));
    assert_eq!(s.category_scores.get("behavioral"), Some(&66));
    assert_eq!(s.questions_answered, 2, "template questions, not answers");
    assert_eq!(s.average_response_ms, Some(3000));
    let body = fake.requests()[0].json.clone().unwrap();
    assert_eq!(body["response_format"]["type"], "json_object");
    assert!(body["messages"][1]["content"]
        .as_str()
        .unwrap()
        .contains("The cache fell over."));
}

#[tokio::test]
async fn an_invalid_summary_twice_is_invalid() {
    let fake = FakeProvider::start().await;
    fake.push(Reply::Completion(json!({"overallScore": 74}).to_string()));
    fake.push(Reply::Completion(
        json!({"overallScore": 74, "recommendation": "maybe", "strengths": [], "weaknesses": [],
               "categoryScores": {"technical": 80, "behavioral": 66}})
        .to_string(),
    ));
    let e = interviewer(&fake, 5000)
        .summarize(interview(), answered())
        .await
        .unwrap_err();
    assert!(
        matches!(e, InterviewerError::Invalid(ref m) if m.contains("recommendation")),
        "{e:?}"
    );
    assert_eq!(fake.requests().len(), 2);
}
