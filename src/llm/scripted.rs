//! The built-in scripted interviewer: the template's questions, streamed
//! word by word, scored by the transparent heuristic (see the README). It
//! needs no network and is what a laptop runs by default.

use std::{sync::Arc, time::Duration};

use futures_util::stream::BoxStream;
use futures_util::{stream, StreamExt};
use interview_actors::event::{NextAction, Summary};
use interview_actors::heuristic;
use interview_actors::ports::{
    AnswerToScore, AnsweredQuestion, Assessment, BoxFuture, InterviewRecord, Interviewer,
    InterviewerError, Turn, TurnKind,
};

/// Follow-ups asked after a very short answer.
const FOLLOW_UP: &str = "Could you go deeper on that? Walk me through a concrete example: what you did, why, and what the result was.";

pub struct ScriptedInterviewer {
    word_delay: Duration,
}

impl ScriptedInterviewer {
    pub fn new(word_delay: Duration) -> ScriptedInterviewer {
        ScriptedInterviewer { word_delay }
    }

    /// The full text of one message.
    pub fn message(turn: &Turn) -> String {
        let interview = &turn.interview;
        let question = turn
            .question
            .as_ref()
            .map(|q| q.text.as_str())
            .unwrap_or("");
        match turn.kind {
            TurnKind::Opening => format!(
                "Hello {}, welcome to your {} interview. I will ask you {} questions; take your time with each. Let's begin. {}",
                interview.candidate_name,
                interview.title,
                interview.questions.len(),
                question
            ),
            TurnKind::NextQuestion => format!("Thank you. Next question: {question}"),
            TurnKind::FollowUp => format!("Thanks. {question}"),
            TurnKind::Closing => format!(
                "Thank you, {}. That was the last question. We will be in touch about next steps.",
                interview.candidate_name
            ),
        }
    }
}

/// Splits text into pieces that concatenate back to it exactly: each word
/// carries the whitespace before it.
pub fn words(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    for c in text.chars() {
        if c.is_whitespace() && in_word {
            pieces.push(std::mem::take(&mut current));
            in_word = false;
        }
        if !c.is_whitespace() {
            in_word = true;
        }
        current.push(c);
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

impl Interviewer for ScriptedInterviewer {
    fn speak(&self, turn: Turn) -> BoxStream<'static, Result<String, InterviewerError>> {
        let delay = self.word_delay;
        let pieces = words(&Self::message(&turn));
        stream::iter(pieces.into_iter().enumerate())
            .then(move |(i, piece)| async move {
                if i > 0 && !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok(piece)
            })
            .boxed()
    }

    fn evaluate(&self, answer: AnswerToScore) -> BoxFuture<Result<Assessment, InterviewerError>> {
        let evaluation = heuristic::evaluate(&answer);
        let follow_up_question =
            (evaluation.next_action == NextAction::FollowUp).then(|| FOLLOW_UP.to_string());
        Box::pin(async move {
            Ok(Assessment {
                evaluation,
                follow_up_question,
            })
        })
    }

    fn summarize(
        &self,
        _interview: Arc<InterviewRecord>,
        answers: Vec<AnsweredQuestion>,
    ) -> BoxFuture<Result<Summary, InterviewerError>> {
        let summary = heuristic::summarize(&answers);
        Box::pin(async move { Ok(summary) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_concatenate_to_the_text() {
        let text = "Hello Ada,  welcome.\nFirst: why Rust?";
        let pieces = words(text);
        assert_eq!(pieces.concat(), text);
        assert_eq!(pieces[0], "Hello");
        assert_eq!(pieces[1], " Ada,");
        assert_eq!(pieces.len(), 6);
    }
}
