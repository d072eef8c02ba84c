//! `LlmStream`: one child actor per interviewer message. It owns the stream
//! of text pieces (and with it the HTTP request, when the interviewer is a
//! model); stopping the actor drops the stream, which abandons the request.
//! It reports to its session only: `Token`, then `Done` or `Failed`. It also
//! enforces the deadlines, so no interviewer can leave a candidate waiting:
//! the first piece within a third of the turn's deadline, all within it.

use std::time::Duration;

use actix::{
    Actor, ActorContext, AsyncContext, Context, Handler, Message, Recipient, StreamHandler,
};
use futures_util::stream::BoxStream;

use crate::ports::InterviewerError;

/// What an `LlmStream` tells its session. `message_id` lets the session drop
/// pieces of a stream it has already stopped.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum StreamReport {
    Token {
        message_id: String,
        text: String,
    },
    Done {
        message_id: String,
    },
    Failed {
        message_id: String,
        error: InterviewerError,
    },
}

/// Stop streaming now; nothing more is reported.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Cancel;

pub struct LlmStream {
    message_id: String,
    session: Recipient<StreamReport>,
    stream: Option<BoxStream<'static, Result<String, InterviewerError>>>,
    deadline: Duration,
    started: std::time::Instant,
    got_token: bool,
    finished: bool,
}

impl LlmStream {
    pub fn new(
        message_id: String,
        session: Recipient<StreamReport>,
        stream: BoxStream<'static, Result<String, InterviewerError>>,
        deadline: Duration,
    ) -> LlmStream {
        LlmStream {
            message_id,
            session,
            stream: Some(stream),
            deadline,
            started: std::time::Instant::now(),
            got_token: false,
            finished: false,
        }
    }

    fn fail(&mut self, error: InterviewerError, ctx: &mut Context<Self>) {
        if self.finished {
            return;
        }
        self.finished = true;
        crate::metrics::llm_failure(match &error {
            InterviewerError::Timeout => "timeout",
            InterviewerError::Unavailable(_) => "unavailable",
            InterviewerError::Invalid(_) => "invalid",
        });
        self.session.do_send(StreamReport::Failed {
            message_id: self.message_id.clone(),
            error,
        });
        ctx.stop();
    }
}

impl Actor for LlmStream {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if let Some(stream) = self.stream.take() {
            ctx.add_stream(stream);
        }
        ctx.run_later(self.deadline / 3, |act, ctx| {
            if !act.got_token {
                act.fail(InterviewerError::Timeout, ctx);
            }
        });
        ctx.run_later(self.deadline, |act, ctx| {
            act.fail(InterviewerError::Timeout, ctx)
        });
    }
}

impl StreamHandler<Result<String, InterviewerError>> for LlmStream {
    fn handle(&mut self, item: Result<String, InterviewerError>, ctx: &mut Self::Context) {
        if self.finished {
            return;
        }
        match item {
            Ok(text) if text.is_empty() => {}
            Ok(text) => {
                if !self.got_token {
                    crate::metrics::llm_first_token(self.started.elapsed());
                }
                crate::metrics::llm_token();
                self.got_token = true;
                self.session.do_send(StreamReport::Token {
                    message_id: self.message_id.clone(),
                    text,
                })
            }
            Err(error) => self.fail(error, ctx),
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        if !self.finished {
            self.finished = true;
            crate::metrics::llm_turn(self.started.elapsed());
            self.session.do_send(StreamReport::Done {
                message_id: self.message_id.clone(),
            });
        }
        ctx.stop();
    }
}

impl Handler<Cancel> for LlmStream {
    type Result = ();

    fn handle(&mut self, _: Cancel, ctx: &mut Self::Context) {
        self.finished = true;
        ctx.stop();
    }
}
