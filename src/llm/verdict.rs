//! Reading a model's JSON verdicts (an answer's evaluation, the interview's
//! summary) strictly: a reply that does not validate is refused with the
//! reason, never patched up with a made-up score.
//!
//! What is normalised rather than refused, because the session's rules
//! decide it anyway: `nextAction` is `complete` exactly after the last
//! template question and `follow_up` only when no follow-up was asked yet;
//! otherwise the interview moves on. Recommendations are spelled as the
//! heuristic spells them (`strong_hire`, `hire`, `lean_no_hire`, `no_hire`).

use std::collections::BTreeMap;

use interview_actors::event::{Evaluation, NextAction, ScoreSource, Summary};
use interview_actors::heuristic;
use interview_actors::ports::{AnswerToScore, AnsweredQuestion, Assessment};
use serde_json::{Map, Value};

use super::prompts::summary_categories;
use super::provider::truncate;

const MAX_ITEMS: usize = 5;
const MAX_ITEM_CHARS: usize = 200;
const MAX_FEEDBACK_CHARS: usize = 2000;
pub const RECOMMENDATIONS: &[&str] = &["strong_hire", "hire", "lean_no_hire", "no_hire"];

/// The JSON object in a reply: the whole text, or inside a ``` fence, or
/// from the first `{` to the last `}` (some models add a sentence).
pub fn extract_object(content: &str) -> Result<Map<String, Value>, String> {
    let text = content.trim();
    let parsed = serde_json::from_str::<Value>(text).or_else(|first| {
        match (text.find('{'), text.rfind('}')) {
            (Some(a), Some(b)) if a < b => serde_json::from_str::<Value>(&text[a..=b]),
            _ => Err(first),
        }
    });
    match parsed {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("the reply is not a JSON object".to_string()),
        Err(e) => Err(format!("the reply is not JSON ({e})")),
    }
}

/// `key` or its snake_case spelling.
fn field<'a>(map: &'a Map<String, Value>, camel: &str, snake: &str) -> Option<&'a Value> {
    map.get(camel)
        .or_else(|| map.get(snake))
        .filter(|v| !v.is_null())
}

/// An integer 0..=100 (`85` or `85.0`; not `"85"`, not `85.5`).
fn score(v: Option<&Value>, name: &str) -> Result<u8, String> {
    let v = v
        .filter(|v| !v.is_null())
        .ok_or_else(|| format!("`{name}` is missing"))?;
    let n = v
        .as_u64()
        .or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })
        .ok_or_else(|| format!("`{name}` must be an integer, got {v}"))?;
    u8::try_from(n)
        .ok()
        .filter(|n| *n <= 100)
        .ok_or_else(|| format!("`{name}` must be within 0..=100, got {n}"))
}

fn strings(v: Option<&Value>, name: &str) -> Result<Vec<String>, String> {
    let items = v
        .ok_or_else(|| format!("`{name}` is missing"))?
        .as_array()
        .ok_or_else(|| format!("`{name}` must be an array of strings"))?;
    let mut out = Vec::new();
    for item in items {
        let s = item
            .as_str()
            .ok_or_else(|| format!("`{name}` must be an array of strings, found {item}"))?;
        let s = s.trim();
        if !s.is_empty() && out.len() < MAX_ITEMS {
            out.push(truncate(s, MAX_ITEM_CHARS));
        }
    }
    Ok(out)
}

/// Validates an evaluation reply for `answer`.
pub fn parse_evaluation(content: &str, answer: &AnswerToScore) -> Result<Assessment, String> {
    let map = extract_object(content)?;
    let score = score(map.get("score"), "score")?;
    let strengths = strings(map.get("strengths"), "strengths")?;
    let weaknesses = strings(map.get("weaknesses"), "weaknesses")?;
    let feedback = map
        .get("feedback")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or("`feedback` must be a non-empty string")?;
    let asked = field(&map, "nextAction", "next_action")
        .and_then(Value::as_str)
        .ok_or("`nextAction` is missing")?;
    let asked = match asked.trim() {
        "follow_up" => NextAction::FollowUp,
        "next_question" => NextAction::NextQuestion,
        "complete" => NextAction::Complete,
        other => {
            return Err(format!(
                "`nextAction` must be follow_up, next_question or complete, got {other:?}"
            ))
        }
    };
    let follow_up = match field(&map, "followUpQuestion", "follow_up_question") {
        None => None,
        Some(Value::String(s)) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Some(other) => return Err(format!("`followUpQuestion` must be a string, got {other}")),
    };
    if asked == NextAction::FollowUp && follow_up.is_none() {
        return Err("`followUpQuestion` is required when nextAction is follow_up".to_string());
    }
    let next_action = match asked {
        NextAction::FollowUp if answer.follow_ups_asked == 0 => NextAction::FollowUp,
        _ if answer.is_last_question => NextAction::Complete,
        _ => NextAction::NextQuestion,
    };
    Ok(Assessment {
        evaluation: Evaluation {
            question_id: answer.question.question_id.clone(),
            score,
            strengths,
            weaknesses,
            feedback: truncate(feedback, MAX_FEEDBACK_CHARS),
            next_action,
            source: ScoreSource::Llm,
        },
        follow_up_question: follow_up
            .filter(|_| next_action == NextAction::FollowUp)
            .map(|q| truncate(&q, 500)),
    })
}

/// Validates a summary reply. `questionsAnswered` and `averageResponseMs`
/// are ours, computed from `answers`; the model is not asked for them.
pub fn parse_summary(content: &str, answers: &[AnsweredQuestion]) -> Result<Summary, String> {
    let map = extract_object(content)?;
    let overall = score(field(&map, "overallScore", "overall_score"), "overallScore")?;
    let recommendation = field(&map, "recommendation", "recommendation")
        .and_then(Value::as_str)
        .map(|r| r.trim().to_lowercase().replace([' ', '-'], "_"))
        .ok_or("`recommendation` is missing")?;
    if !RECOMMENDATIONS.contains(&recommendation.as_str()) {
        return Err(format!(
            "`recommendation` must be one of {RECOMMENDATIONS:?}, got {recommendation:?}"
        ));
    }
    let strengths = strings(map.get("strengths"), "strengths")?;
    let weaknesses = strings(map.get("weaknesses"), "weaknesses")?;
    let given = field(&map, "categoryScores", "category_scores")
        .ok_or("`categoryScores` is missing")?
        .as_object()
        .ok_or("`categoryScores` must be an object")?;
    let given: BTreeMap<String, &Value> = given
        .iter()
        .map(|(k, v)| (k.trim().to_lowercase(), v))
        .collect();
    let mut category_scores = BTreeMap::new();
    for category in summary_categories(answers) {
        let v = given.get(&category).copied();
        let s = score(v, &format!("categoryScores.{category}"))?;
        category_scores.insert(category, s);
    }
    let ours = heuristic::summarize(answers);
    Ok(Summary {
        overall_score: Some(overall),
        recommendation: Some(recommendation),
        strengths,
        weaknesses,
        category_scores,
        questions_answered: ours.questions_answered,
        average_response_ms: ours.average_response_ms,
    })
}

#[cfg(test)]
mod tests {
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
}
