//! The interviewer's turns: evaluating an answer, streaming a message through
//! an `LlmStream` child, asking the question it ends with, and the summary.
//!
//! What the interview waits for is in the state (`owed`, `pending_answer`),
//! so the same `continue_interview` picks up after a start, an answer, a
//! resume, or a rebuild after a crash.

use std::sync::Arc;

use actix::{Actor, ActorFutureExt, AsyncContext, Context, WrapFuture};

use super::{
    state::{Owed, Phase},
    ActiveTurn, InterviewSession,
};
use crate::event::{Event, NextAction, Question};
use crate::heuristic;
use crate::llm_stream::{Cancel, LlmStream, StreamReport};
use crate::ports::{AnswerToScore, Assessment, TranscriptLine, Turn, TurnKind};
use crate::protocol::{ErrorCode, ProtocolError};

/// Asked when a follow-up's own text was lost in a crash.
const GENERIC_FOLLOW_UP: &str =
    "Could you go deeper on that, with a concrete example of what you did and what came of it?";

impl InterviewSession {
    /// The answer turn: `candidate-answer`, `ai-thinking`, then the evaluation.
    pub(super) fn answer_turn(&mut self, text: String, ctx: &mut Context<Self>) {
        let question_id = self
            .live
            .current_question
            .as_ref()
            .map(|q| q.question_id.clone())
            .unwrap_or_default();
        if let Some(audio) =
            super::commands::take_audio(&mut self.audio, &question_id, self.runtime.clock.now())
        {
            self.log.attach_audio(audio);
        }
        self.emit(Event::CandidateAnswer { question_id, text }, ctx);
        self.emit(Event::AiThinking {}, ctx);
        self.continue_interview(false, ctx);
    }

    /// Does whatever the interview waits for, if it is active and nothing
    /// else is under way. `think` emits `ai-thinking` before a message (a
    /// resume; the start and answer turns have emitted it already).
    pub(super) fn continue_interview(&mut self, think: bool, ctx: &mut Context<Self>) {
        if self.live.phase != Phase::Active
            || self.turn.is_some()
            || self.waiting_on_interviewer
            || self.completing
        {
            return;
        }
        if self.live.pending_answer.is_some() {
            if think {
                self.emit(Event::AiThinking {}, ctx);
            }
            return self.evaluate(ctx);
        }
        let Some(owed) = self.live.owed.clone() else {
            return;
        };
        if owed == Owed::Summary {
            return self.complete(ctx);
        }
        if think {
            self.emit(Event::AiThinking {}, ctx);
        }
        self.speak(owed, ctx);
    }

    fn transcript(&self) -> Vec<TranscriptLine> {
        self.log.transcript().to_vec()
    }

    fn evaluate(&mut self, ctx: &mut Context<Self>) {
        let Some(pending) = self.live.pending_answer.clone() else {
            return;
        };
        let request = AnswerToScore {
            interview: self.interview.clone(),
            is_last_question: pending.question.order as usize >= self.interview.questions.len(),
            question: pending.question,
            answer: pending.text,
            follow_ups_asked: self.live.follow_ups,
            transcript: self.transcript(),
        };
        self.waiting_on_interviewer = true;
        let fallback = request.clone();
        let call = self.runtime.interviewer.evaluate(request);
        ctx.spawn(call.into_actor(self).map(move |result, act, ctx| {
            act.waiting_on_interviewer = false;
            if act.completing || act.live.phase.is_terminal() {
                return;
            }
            let assessment = result.unwrap_or_else(|error| {
                tracing::warn!(interview_id = %act.interview.id, %error, "evaluation failed; using the heuristic");
                act.ai_unavailable();
                Assessment {
                    evaluation: heuristic::evaluate(&fallback),
                    follow_up_question: None,
                }
            });
            act.record_evaluation(assessment, ctx);
        }));
    }

    /// `evaluation` and `progress-update`, then the next message.
    fn record_evaluation(&mut self, assessment: Assessment, ctx: &mut Context<Self>) {
        let mut evaluation = assessment.evaluation;
        // One follow-up per question at most, whatever the interviewer says.
        if evaluation.next_action == NextAction::FollowUp && self.live.follow_ups > 0 {
            evaluation.next_action = NextAction::NextQuestion;
        }
        let score = evaluation.score;
        self.emit(Event::Evaluation(evaluation), ctx);
        if let Some(Owed::FollowUp(text)) = &mut self.live.owed {
            *text = Some(
                assessment
                    .follow_up_question
                    .unwrap_or_else(|| GENERIC_FOLLOW_UP.to_string()),
            );
        }
        self.emit(
            Event::ProgressUpdate {
                progress: self.live.progress(),
                score: Some(score),
                evaluation: None,
            },
            ctx,
        );
        self.continue_interview(false, ctx);
    }

    /// The question a turn ends with.
    fn question_for(&self, owed: &Owed) -> Option<Question> {
        let total = self.interview.questions.len() as u32;
        let template = |index: usize| {
            self.interview.questions.get(index).map(|q| Question {
                question_id: q.id.clone(),
                text: q.text.clone(),
                kind: q.kind.clone(),
                order: index as u32 + 1,
                total,
                audio_url: None,
                follow_up: false,
            })
        };
        match owed {
            Owed::Opening => template(0),
            Owed::Next(index) => template(*index),
            Owed::FollowUp(text) => {
                let parent = self.live.current_question.as_ref()?;
                let base = parent
                    .question_id
                    .split("-f")
                    .next()
                    .unwrap_or(&parent.question_id);
                Some(Question {
                    question_id: format!("{base}-f{}", self.live.follow_ups + 1),
                    text: text
                        .clone()
                        .unwrap_or_else(|| GENERIC_FOLLOW_UP.to_string()),
                    kind: parent.kind.clone(),
                    order: parent.order,
                    total,
                    audio_url: None,
                    follow_up: true,
                })
            }
            Owed::Closing | Owed::Summary => None,
        }
    }

    /// Starts an `LlmStream` for the owed message.
    fn speak(&mut self, owed: Owed, ctx: &mut Context<Self>) {
        let question = self.question_for(&owed);
        let kind = match owed {
            Owed::Opening => TurnKind::Opening,
            Owed::Next(_) => TurnKind::NextQuestion,
            Owed::FollowUp(_) => TurnKind::FollowUp,
            Owed::Closing | Owed::Summary => TurnKind::Closing,
        };
        if kind != TurnKind::Closing && question.is_none() {
            // A template without that question: nothing left to ask.
            self.live.owed = Some(Owed::Closing);
            return self.speak(Owed::Closing, ctx);
        }
        if let Some(q) = &question {
            self.synthesise_question(q, ctx);
        }
        let message_id = self.next_message_id();
        self.emit(
            Event::AiStreamStart {
                message_id: message_id.clone(),
            },
            ctx,
        );
        let request = Turn {
            kind,
            interview: self.interview.clone(),
            question,
            transcript: self.transcript(),
        };
        let interviewer = self.runtime.interviewer.clone();
        self.start_stream(message_id, request, interviewer, false, ctx);
    }

    fn start_stream(
        &mut self,
        message_id: String,
        request: Turn,
        interviewer: Arc<dyn crate::ports::Interviewer>,
        on_fallback: bool,
        ctx: &mut Context<Self>,
    ) {
        let stream = interviewer.speak(request.clone());
        let session = ctx.address().recipient();
        let deadline = self.runtime.settings.llm_timeout;
        let child = LlmStream::new(message_id.clone(), session, stream, deadline).start();
        self.turn = Some(ActiveTurn {
            stream: child,
            message_id,
            request,
            on_fallback,
        });
    }

    /// Starts synthesising a question's audio alongside the message; the
    /// question goes out with `audioUrl` only if it is ready by then.
    fn synthesise_question(&mut self, question: &Question, ctx: &mut Context<Self>) {
        let Some(voice) = self.runtime.voice.clone() else {
            return;
        };
        let question_id = question.question_id.clone();
        let call = voice.audio_url(&question.text);
        ctx.spawn(call.into_actor(self).map(move |result, act, _| match result {
            Ok(url) => act.question_audio = Some((question_id, url)),
            Err(error) => {
                tracing::warn!(interview_id = %act.interview.id, %error, "question audio failed; asking without it");
            }
        }));
    }

    pub(super) fn on_stream_report(&mut self, report: StreamReport, ctx: &mut Context<Self>) {
        let current = self.turn.as_ref().map(|t| t.message_id.clone());
        match report {
            StreamReport::Token { message_id, text } if current.as_ref() == Some(&message_id) => {
                self.emit(Event::AiToken { message_id, text }, ctx);
            }
            StreamReport::Done { message_id } if current.as_ref() == Some(&message_id) => {
                self.finish_message(false, ctx);
            }
            StreamReport::Failed { message_id, error } if current.as_ref() == Some(&message_id) => {
                tracing::warn!(interview_id = %self.interview.id, %error, "interviewer stream failed");
                self.ai_unavailable();
                let said_nothing = self
                    .live
                    .open_message
                    .as_ref()
                    .is_none_or(|(_, text)| text.is_empty());
                match self.turn.take() {
                    // Nothing said yet: the scripted interviewer says it instead,
                    // in the same message.
                    Some(turn) if said_nothing && !turn.on_fallback => {
                        let fallback = self.runtime.fallback.clone();
                        self.start_stream(turn.message_id, turn.request, fallback, true, ctx);
                    }
                    turn => {
                        self.turn = turn;
                        self.finish_message(true, ctx);
                    }
                }
            }
            // A stream this session already stopped: dropped on purpose.
            _ => {}
        }
    }

    /// `ai-stream-end`, then the question the message led to (or the summary).
    fn finish_message(&mut self, interrupted: bool, ctx: &mut Context<Self>) {
        let Some(turn) = self.turn.take() else { return };
        self.end_message(turn.message_id, interrupted, ctx);
        let owed = self.live.owed.clone();
        match owed {
            Some(Owed::Closing) | Some(Owed::Summary) => {
                // The closing line failed half-way: the summary is due anyway.
                self.live.owed = Some(Owed::Summary);
                self.complete(ctx);
            }
            Some(owed) => {
                if let Some(mut question) = self.question_for(&owed) {
                    if let Some((id, url)) = self.question_audio.take() {
                        if id == question.question_id {
                            question.audio_url = Some(url);
                        }
                    }
                    self.emit(Event::Question(question), ctx);
                }
            }
            None => {}
        }
    }

    /// `ai-stream-end` with the text streamed so far: what its tokens add up to.
    fn end_message(&mut self, message_id: String, interrupted: bool, ctx: &mut Context<Self>) {
        let text = self
            .live
            .open_message
            .as_ref()
            .map(|(_, t)| t.clone())
            .unwrap_or_default();
        let end = Event::AiStreamEnd {
            message_id,
            text,
            interrupted,
        };
        self.emit(end, ctx);
    }

    /// Stops the interviewer mid-message (pause, drop, end). The message is
    /// closed as interrupted; what it owed stays owed.
    pub(super) fn interrupt_turn(&mut self, ctx: &mut Context<Self>) {
        let Some(turn) = self.turn.take() else { return };
        turn.stream.do_send(Cancel);
        self.end_message(turn.message_id, true, ctx);
    }

    /// Ends the interview: the summary, then `interview-completed`.
    pub(super) fn complete(&mut self, ctx: &mut Context<Self>) {
        if self.completing {
            return;
        }
        self.completing = true;
        self.interrupt_turn(ctx);
        let answers = self.live.answers.clone();
        let call = self
            .runtime
            .interviewer
            .summarize(Arc::clone(&self.interview), answers.clone());
        self.waiting_on_interviewer = true;
        ctx.spawn(call.into_actor(self).map(move |result, act, ctx| {
            act.waiting_on_interviewer = false;
            let summary = result.unwrap_or_else(|error| {
                tracing::warn!(interview_id = %act.interview.id, %error, "summary failed; using the heuristic");
                heuristic::summarize(&answers)
            });
            act.emit(Event::InterviewCompleted { summary }, ctx);
        }));
    }

    /// Tells the candidate the model failed and the interview goes on.
    pub(super) fn ai_unavailable(&self) {
        if let Some(candidate) = &self.candidate {
            let error = ProtocolError::new(
                ErrorCode::AiUnavailable,
                "the AI interviewer is unavailable; the interview continues without it",
            );
            self.error_to(&candidate.info.id.clone(), &error, None);
        }
    }
}
