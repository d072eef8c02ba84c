//! One small method per client command. Each checks the state first; a
//! command the state does not allow is refused with `INVALID_STATE` and
//! changes nothing.

use actix::{ActorFutureExt, AsyncContext, Context, WrapFuture};

use super::{state::Phase, InterviewSession};
use crate::event::{Event, PauseReason};
use crate::ports::AnswerAudio;
use crate::protocol::ErrorCode;
use crate::protocol::{ClientCommand, ProctorKind, ProtocolError, Severity};

type Outcome = Result<(), ProtocolError>;

impl InterviewSession {
    pub(super) fn command(
        &mut self,
        conn_id: &str,
        command: ClientCommand,
        reference: Option<&str>,
        ctx: &mut Context<Self>,
    ) -> Outcome {
        let candidate = self.is_candidate(conn_id);
        // A log at its limit takes nothing more from clients but the end.
        if !matches!(
            command,
            ClientCommand::EndInterview { .. } | ClientCommand::StopObserving
        ) {
            super::budget::check_log_size(
                self.log.total_events(),
                self.log.total_bytes,
                &self.runtime.settings,
            )?;
        }
        match command {
            ClientCommand::StartInterview if candidate => self.start(ctx),
            ClientCommand::Answer { text } if candidate => self.answer(text, ctx),
            ClientCommand::AudioChunk { audio } if candidate => self.audio_chunk(&audio),
            ClientCommand::ResponseComplete { transcription, .. } if candidate => {
                self.response_complete(transcription, ctx)
            }
            ClientCommand::ProctorEvent {
                kind,
                severity,
                message,
                ..
            } if candidate => self.proctor_event(kind, severity, message, ctx),
            ClientCommand::PauseInterview if candidate => self.pause_by_candidate(ctx),
            ClientCommand::ResumeInterview if candidate => self.resume_by_candidate(ctx),
            ClientCommand::EndInterview { .. } => self.end(ctx),
            ClientCommand::StopObserving if !candidate => {
                self.stop_observing(conn_id, reference);
                Ok(())
            }
            ClientCommand::JoinInterview { .. } | ClientCommand::ObserveInterview { .. } => {
                Err(ProtocolError::new(
                    crate::protocol::ErrorCode::AlreadyJoined,
                    "this socket already joined an interview",
                ))
            }
            // Heartbeats are answered by the socket; other roles' commands
            // were refused by the parser.
            _ => Err(ProtocolError::invalid("not a command for this socket")),
        }
    }

    fn refuse_unless_open(&self) -> Outcome {
        if self.completing || self.live.phase.is_terminal() {
            return Err(ProtocolError::state(format!(
                "the interview is {}",
                if self.completing {
                    "ending"
                } else {
                    self.live.phase.as_str()
                }
            )));
        }
        Ok(())
    }

    /// `start-interview`: created → active, then the opening turn.
    fn start(&mut self, ctx: &mut Context<Self>) -> Outcome {
        self.refuse_unless_open()?;
        if self.live.phase != Phase::Created {
            return Err(ProtocolError::state("the interview has already started"));
        }
        let first = self
            .interview
            .questions
            .first()
            .map(|q| q.text.clone())
            .unwrap_or_default();
        let started_at = crate::protocol::rfc3339(self.runtime.clock.now());
        self.emit(
            Event::InterviewStarted {
                started_at,
                first_question: first,
            },
            ctx,
        );
        self.emit(Event::AiThinking {}, ctx);
        self.continue_interview(false, ctx);
        Ok(())
    }

    fn ready_for_answer(&self) -> Outcome {
        self.refuse_unless_open()?;
        match self.live.phase {
            Phase::Active
                if self.live.awaiting_answer
                    && self.turn.is_none()
                    && !self.waiting_on_interviewer =>
            {
                Ok(())
            }
            Phase::Active => Err(ProtocolError::state("no question is waiting for an answer")),
            other => Err(ProtocolError::state(format!(
                "the interview is {}",
                other.as_str()
            ))),
        }
    }

    /// `answer`: the answer turn.
    fn answer(&mut self, text: String, ctx: &mut Context<Self>) -> Outcome {
        self.ready_for_answer()?;
        self.answer_turn(text, ctx);
        Ok(())
    }

    /// `audio-chunk` and binary frames: audio of the current answer.
    pub(super) fn audio_chunk(&mut self, audio: &[u8]) -> Outcome {
        self.ready_for_answer()?;
        push_audio(
            &mut self.audio,
            audio,
            self.runtime.settings.max_audio_bytes,
        )
    }

    /// `response-complete`: the spoken answer is done. With speech-to-text
    /// and audio, what it hears is the answer (a final `transcription` first);
    /// otherwise, or if it fails, the client's transcription is.
    fn response_complete(&mut self, transcription: String, ctx: &mut Context<Self>) -> Outcome {
        self.ready_for_answer()?;
        let transcriber = self.runtime.transcriber.clone();
        let Some(transcriber) = transcriber.filter(|_| !self.audio.is_empty()) else {
            if transcription.trim().is_empty() {
                return Err(ProtocolError::invalid(
                    "response-complete: `data.transcription` is required (no audio to transcribe)",
                ));
            }
            self.answer_turn(transcription, ctx);
            return Ok(());
        };
        let audio = self.audio.clone();
        self.waiting_on_interviewer = true;
        let call = transcriber.transcribe(audio);
        ctx.spawn(call.into_actor(self).map(move |result, act, ctx| {
            act.waiting_on_interviewer = false;
            if act.completing || act.live.phase.is_terminal() || !act.live.awaiting_answer {
                return;
            }
            let heard = match result {
                Ok(heard) if !heard.text.trim().is_empty() => Some(heard),
                Ok(_) => None,
                Err(error) => {
                    tracing::warn!(interview_id = %act.interview.id, %error, "transcription failed");
                    act.ai_unavailable();
                    None
                }
            };
            match heard {
                Some(heard) => {
                    act.emit(
                        Event::Transcription {
                            text: heard.text.clone(),
                            is_final: true,
                            confidence: heard.confidence.unwrap_or(1.0),
                        },
                        ctx,
                    );
                    act.answer_turn(heard.text, ctx);
                }
                None if !transcription.trim().is_empty() => act.answer_turn(transcription, ctx),
                None => {
                    if let Some(candidate) = act.candidate.as_ref().map(|c| c.info.id.clone()) {
                        let e = ProtocolError::invalid(
                            "the answer could not be transcribed; send it again or as text",
                        );
                        act.error_to(&candidate, &e, None);
                    }
                }
            }
        }));
        Ok(())
    }

    /// `proctor-event`: an alert and the new trust score, for observers only.
    fn proctor_event(
        &mut self,
        kind: ProctorKind,
        severity: Severity,
        message: Option<String>,
        ctx: &mut Context<Self>,
    ) -> Outcome {
        self.refuse_unless_open()?;
        if !matches!(self.live.phase, Phase::Active | Phase::Paused(_)) {
            return Err(ProtocolError::state(format!(
                "proctoring begins with the interview; it is {}",
                self.live.phase.as_str()
            )));
        }
        self.proctor_budget.take(std::time::Instant::now())?;
        let trust_score = crate::trust::lowered(self.live.trust_score, kind, severity);
        let message = message.unwrap_or_else(|| crate::trust::describe(kind).to_string());
        self.emit(
            Event::ProctorAlert {
                kind,
                severity,
                message,
            },
            ctx,
        );
        self.emit(Event::TrustScoreUpdate { trust_score }, ctx);
        Ok(())
    }

    fn pause_by_candidate(&mut self, ctx: &mut Context<Self>) -> Outcome {
        self.refuse_unless_open()?;
        if self.live.phase != Phase::Active {
            return Err(ProtocolError::state(format!(
                "only an active interview can be paused; it is {}",
                self.live.phase.as_str()
            )));
        }
        self.pause(PauseReason::Candidate, ctx);
        Ok(())
    }

    fn resume_by_candidate(&mut self, ctx: &mut Context<Self>) -> Outcome {
        self.refuse_unless_open()?;
        if !matches!(self.live.phase, Phase::Paused(_)) {
            return Err(ProtocolError::state(format!(
                "only a paused interview can be resumed; it is {}",
                self.live.phase.as_str()
            )));
        }
        self.resume(ctx);
        Ok(())
    }

    /// `end-interview` (candidate or recruiter): active or paused → completed.
    fn end(&mut self, ctx: &mut Context<Self>) -> Outcome {
        self.refuse_unless_open()?;
        if !matches!(self.live.phase, Phase::Active | Phase::Paused(_)) {
            return Err(ProtocolError::state(format!(
                "only a started interview can be ended; it is {}",
                self.live.phase.as_str()
            )));
        }
        self.complete(ctx);
        Ok(())
    }
}

/// Audio bytes of the current answer, with the limit checked.
pub(super) fn push_audio(
    buffer: &mut Vec<u8>,
    bytes: &[u8],
    limit: usize,
) -> Result<(), ProtocolError> {
    if buffer.len() + bytes.len() > limit {
        return Err(ProtocolError::new(
            ErrorCode::PayloadTooLarge,
            format!("audio for one answer is limited to {limit} bytes"),
        ));
    }
    buffer.extend_from_slice(bytes);
    Ok(())
}

/// The audio to store with an answer, if any was sent.
pub(super) fn take_audio(
    buffer: &mut Vec<u8>,
    question_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<AnswerAudio> {
    (!buffer.is_empty()).then(|| AnswerAudio {
        question_id: question_id.to_string(),
        bytes: std::mem::take(buffer),
        ts: now,
    })
}
