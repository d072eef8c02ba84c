//! The transparent heuristic scorer: what the scripted interviewer scores
//! with, and what the runtime falls back on when a model gives no usable
//! verdict. It measures the shape of an answer, not its truth, and says so
//! (`source: "heuristic"`). The README documents the formula.
//!
//! score = length (0-40) + specificity (0-30) + overlap with the question's
//! key terms (0-30), rounded and clamped to 0..=100.

use std::collections::{BTreeMap, BTreeSet};

use crate::event::{Evaluation, NextAction, ScoreSource, Summary};
use crate::ports::{AnswerToScore, AnsweredQuestion};

/// An answer with fewer words than this gets one follow-up.
pub const SHORT_ANSWER_WORDS: usize = 12;
/// Words at which the length part is full.
const FULL_LENGTH_WORDS: f64 = 80.0;

const STOPWORDS: &[&str] = &[
    "about", "after", "also", "been", "could", "describe", "does", "from", "have", "into", "tell",
    "that", "their", "them", "then", "there", "these", "they", "this", "those", "what", "when",
    "where", "which", "while", "with", "would", "your", "you", "will", "were", "time", "some",
    "how", "why", "the", "and", "for", "are", "was", "give", "example",
];

/// Phrases that show an answer is concrete.
const SPECIFIC_MARKERS: &[&str] = &[
    "for example",
    "for instance",
    "because",
    "measured",
    "result",
    "reduced",
    "increased",
    "improved",
    "i built",
    "i led",
    "i wrote",
    "we shipped",
    "trade-off",
    "tradeoff",
    "latency",
    "percent",
];

/// The key terms of a question: lower-case words of 4+ letters, no stopwords.
pub fn key_terms(question: &str) -> BTreeSet<String> {
    words(question)
        .filter(|w| w.len() >= 4 && !STOPWORDS.contains(&w.as_str()))
        .collect()
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric() && c != '-')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// The three parts of a heuristic score, kept apart so feedback can name them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreParts {
    pub length: f64,
    pub specificity: f64,
    pub overlap: f64,
}

impl ScoreParts {
    pub fn total(self) -> u8 {
        (self.length + self.specificity + self.overlap)
            .round()
            .clamp(0.0, 100.0) as u8
    }
}

/// Scores `answer` against `question`.
pub fn score_parts(question: &str, answer: &str) -> ScoreParts {
    let word_count = answer.split_whitespace().count() as f64;
    let length = (word_count / FULL_LENGTH_WORDS).min(1.0) * 40.0;

    let lower = answer.to_lowercase();
    let markers = SPECIFIC_MARKERS
        .iter()
        .filter(|m| lower.contains(*m))
        .count();
    let numbers = answer
        .split_whitespace()
        .filter(|w| w.chars().any(|c| c.is_ascii_digit()))
        .count();
    let specificity = ((markers + numbers.min(3)) as f64 * 6.0).min(30.0);

    let terms = key_terms(question);
    let answer_words: BTreeSet<String> = words(answer).collect();
    let overlap = if terms.is_empty() {
        15.0
    } else {
        let hit = terms.iter().filter(|t| answer_words.contains(*t)).count();
        hit as f64 / terms.len() as f64 * 30.0
    };
    ScoreParts {
        length,
        specificity,
        overlap,
    }
}

/// A full heuristic evaluation, including what to do next: one follow-up on a
/// short answer, else the next question, else complete.
pub fn evaluate(answer: &AnswerToScore) -> Evaluation {
    let parts = score_parts(&answer.question.text, &answer.answer);
    let word_count = answer.answer.split_whitespace().count();
    let mut strengths = Vec::new();
    let mut weaknesses = Vec::new();
    if parts.length >= 30.0 {
        strengths.push("Thorough answer".to_string());
    } else if word_count < SHORT_ANSWER_WORDS {
        weaknesses.push("Very short answer".to_string());
    }
    if parts.specificity >= 18.0 {
        strengths.push("Concrete details and examples".to_string());
    } else {
        weaknesses.push("Few concrete details or examples".to_string());
    }
    if parts.overlap >= 20.0 {
        strengths.push("Stays on the question's topic".to_string());
    } else if parts.overlap < 10.0 {
        weaknesses.push("Does not address the question's key terms".to_string());
    }
    let next_action = if word_count < SHORT_ANSWER_WORDS && answer.follow_ups_asked == 0 {
        NextAction::FollowUp
    } else if answer.is_last_question {
        NextAction::Complete
    } else {
        NextAction::NextQuestion
    };
    Evaluation {
        question_id: answer.question.question_id.clone(),
        score: parts.total(),
        strengths,
        weaknesses,
        feedback: format!(
            "Heuristic score: length {:.0}/40, specificity {:.0}/30, relevance {:.0}/30.",
            parts.length, parts.specificity, parts.overlap
        ),
        next_action,
        source: ScoreSource::Heuristic,
    }
}

/// The recommendation for an overall score.
pub fn recommendation(overall: u8) -> &'static str {
    match overall {
        80..=100 => "strong_hire",
        65..=79 => "hire",
        50..=64 => "lean_no_hire",
        _ => "no_hire",
    }
}

/// A summary from the evaluations alone. Nothing answered: null scores.
pub fn summarize(answers: &[AnsweredQuestion]) -> Summary {
    let scores: Vec<u32> = answers.iter().map(|a| a.evaluation.score as u32).collect();
    let overall = (!scores.is_empty())
        .then(|| ((scores.iter().sum::<u32>() as f64) / scores.len() as f64).round() as u8);
    let mut by_kind: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for a in answers {
        by_kind
            .entry(a.question.kind.to_lowercase())
            .or_default()
            .push(a.evaluation.score as u32);
    }
    let category_scores = by_kind
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                (v.iter().sum::<u32>() as f64 / v.len() as f64).round() as u8,
            )
        })
        .collect();
    let strengths = distinct(answers.iter().flat_map(|a| a.evaluation.strengths.iter()));
    let weaknesses = distinct(answers.iter().flat_map(|a| a.evaluation.weaknesses.iter()));
    let times: Vec<u64> = answers.iter().filter_map(|a| a.response_ms).collect();
    let template_answered: BTreeSet<u32> = answers.iter().map(|a| a.question.order).collect();
    Summary {
        overall_score: overall,
        recommendation: overall.map(|o| recommendation(o).to_string()),
        strengths,
        weaknesses,
        category_scores,
        questions_answered: template_answered.len() as u32,
        average_response_ms: (!times.is_empty())
            .then(|| times.iter().sum::<u64>() / times.len() as u64),
    }
}

fn distinct<'a>(items: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    items
        .filter(|s| seen.insert(s.as_str()))
        .take(5)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longer_specific_on_topic_answers_score_higher() {
        let q = "Describe how you would design a rate limiter for a public API.";
        let short = score_parts(q, "I would use Redis.").total();
        let long = score_parts(
            q,
            "I would design the rate limiter as a token bucket per API key, because it allows \
             bursts while bounding the average rate. For example, at my last job we measured 40k \
             requests per second and reduced abuse by 90 percent with a bucket of 100 and a refill \
             of 50 per second, stored in Redis with a Lua script so the check is atomic. The public \
             API returned 429 with Retry-After so clients could back off.",
        )
        .total();
        assert!(short < 30, "short answer scored {short}");
        assert!(long > 70, "long answer scored {long}");
        assert!(long <= 100);
    }

    #[test]
    fn summary_of_nothing_has_null_scores() {
        let s = summarize(&[]);
        assert_eq!(s.overall_score, None);
        assert_eq!(s.recommendation, None);
        assert_eq!(s.questions_answered, 0);
    }
}
