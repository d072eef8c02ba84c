use super::*;
use std::sync::Arc;

use chrono::Utc;
use interview_actors::event::Question;
use interview_actors::ports::{InterviewRecord, InterviewStatus};
use serde_json::json;

fn answer(follow_ups_asked: u32, is_last_question: bool) -> AnswerToScore {
    AnswerToScore {
        interview: Arc::new(InterviewRecord {
            id: "iv".into(),
            org_id: "o".into(),
            title: "t".into(),
            candidate_name: "Ada".into(),
            candidate_id: "c".into(),
            questions: vec![],
            duration_minutes: 30,
            status: InterviewStatus::Active,
            created_at: Utc::now(),
        }),
        question: Question {
            question_id: "q1".into(),
            text: "Why?".into(),
            kind: "TECHNICAL".into(),
            order: 1,
            total: 2,
            audio_url: None,
            follow_up: false,
        },
        answer: "Because.".into(),
        follow_ups_asked,
        is_last_question,
        transcript: vec![],
    }
}

fn good() -> Value {
    json!({"score": 72, "strengths": ["clear"], "weaknesses": [], "feedback": "Solid.",
           "nextAction": "next_question"})
}

#[test]
fn a_valid_evaluation() {
    let a = parse_evaluation(&good().to_string(), &answer(0, false)).unwrap();
    assert_eq!(a.evaluation.score, 72);
    assert_eq!(a.evaluation.source, ScoreSource::Llm);
    assert_eq!(a.evaluation.question_id, "q1");
    assert_eq!(a.evaluation.next_action, NextAction::NextQuestion);
    assert_eq!(a.follow_up_question, None);
    let fenced = format!("```json\n{}\n```", good());
    assert!(parse_evaluation(&fenced, &answer(0, false)).is_ok());
    let float = good().to_string().replace("72", "72.0");
    assert_eq!(
        parse_evaluation(&float, &answer(0, false))
            .unwrap()
            .evaluation
            .score,
        72
    );
}

#[test]
fn invalid_evaluations_are_refused() {
    let cases: Vec<(Value, &str)> = vec![
        (json!({"score": 101}), "0..=100"),
        (json!({"score": -1}), "integer"),
        (json!({"score": "80"}), "integer"),
        (json!({"score": 80.5}), "integer"),
        (json!({"score": null}), "missing"),
        (json!({"strengths": "clear"}), "strengths"),
        (json!({"weaknesses": [1, 2]}), "weaknesses"),
        (json!({"feedback": 3}), "feedback"),
        (json!({"nextAction": "stop"}), "nextAction"),
        (json!({"nextAction": "follow_up"}), "followUpQuestion"),
        (
            json!({"nextAction": "follow_up", "followUpQuestion": "  "}),
            "followUpQuestion",
        ),
    ];
    for (patch, expected) in cases {
        let mut v = good();
        for (k, val) in patch.as_object().unwrap() {
            v[k] = val.clone();
        }
        let err = parse_evaluation(&v.to_string(), &answer(0, false)).unwrap_err();
        assert!(err.contains(expected), "{v}: {err}");
    }
    assert!(parse_evaluation("Sure! Here you go.", &answer(0, false)).is_err());
    assert!(parse_evaluation("[1]", &answer(0, false)).is_err());
}

#[test]
fn next_action_follows_the_session_rules() {
    let mut v = good();
    v["nextAction"] = json!("follow_up");
    v["followUpQuestion"] = json!("Which algorithm exactly?");
    let a = parse_evaluation(&v.to_string(), &answer(0, false)).unwrap();
    assert_eq!(a.evaluation.next_action, NextAction::FollowUp);
    assert_eq!(
        a.follow_up_question.as_deref(),
        Some("Which algorithm exactly?")
    );
    let again = parse_evaluation(&v.to_string(), &answer(1, false)).unwrap();
    assert_eq!(again.evaluation.next_action, NextAction::NextQuestion);
    assert_eq!(again.follow_up_question, None);
    let last = parse_evaluation(&v.to_string(), &answer(1, true)).unwrap();
    assert_eq!(last.evaluation.next_action, NextAction::Complete);
    let mut early = good();
    early["nextAction"] = json!("complete");
    let a = parse_evaluation(&early.to_string(), &answer(0, false)).unwrap();
    assert_eq!(
        a.evaluation.next_action,
        NextAction::NextQuestion,
        "no early end"
    );
    let a = parse_evaluation(&good().to_string(), &answer(0, true)).unwrap();
    assert_eq!(a.evaluation.next_action, NextAction::Complete);
}

fn answered() -> Vec<AnsweredQuestion> {
    let a = answer(0, false);
    let evaluation = parse_evaluation(&good().to_string(), &a)
        .unwrap()
        .evaluation;
    vec![
        AnsweredQuestion {
            question: a.question.clone(),
            answer: "x".into(),
            evaluation: evaluation.clone(),
            response_ms: Some(1000),
        },
        AnsweredQuestion {
            question: Question {
                question_id: "q2".into(),
                kind: "Behavioral".into(),
                order: 2,
                ..a.question.clone()
            },
            answer: "y".into(),
            evaluation,
            response_ms: Some(3000),
        },
    ]
}

#[test]
fn a_valid_summary_with_our_own_counts() {
    let reply = json!({"overallScore": 70, "recommendation": "Lean No Hire",
        "strengths": ["a"], "weaknesses": ["b"],
        "categoryScores": {"Technical": 75, "behavioral": 65, "extra": 1},
        "questionsAnswered": 99, "averageResponseMs": 1});
    let s = parse_summary(&reply.to_string(), &answered()).unwrap();
    assert_eq!(s.overall_score, Some(70));
    assert_eq!(s.recommendation.as_deref(), Some("lean_no_hire"));
    assert_eq!(s.questions_answered, 2);
    assert_eq!(s.average_response_ms, Some(2000));
    assert_eq!(
        s.category_scores,
        BTreeMap::from([
            ("behavioral".to_string(), 65),
            ("technical".to_string(), 75)
        ])
    );
}

#[test]
fn invalid_summaries_are_refused() {
    let base = json!({"overallScore": 70, "recommendation": "hire", "strengths": [],
        "weaknesses": [], "categoryScores": {"technical": 75, "behavioral": 65}});
    let cases: Vec<(&str, Value, &str)> = vec![
        ("overallScore", json!(200), "overallScore"),
        ("recommendation", json!("maybe"), "recommendation"),
        ("categoryScores", json!({"technical": 75}), "behavioral"),
        (
            "categoryScores",
            json!({"technical": 75, "behavioral": "high"}),
            "behavioral",
        ),
        ("strengths", json!(null), "strengths"),
    ];
    assert!(parse_summary(&base.to_string(), &answered()).is_ok());
    for (k, v, expected) in cases {
        let mut reply = base.clone();
        reply[k] = v;
        let err = parse_summary(&reply.to_string(), &answered()).unwrap_err();
        assert!(err.contains(expected), "{reply}: {err}");
    }
}
