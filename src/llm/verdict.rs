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
#[path = "tests/verdict_unit.rs"]
mod tests;
