//! `LlmStream`: one child actor per interviewer message. It owns the stream
//! of text pieces (and with it the HTTP request, when the interviewer is a
//! model); stopping the actor drops the stream, which abandons the request.
//! It reports to its session only: `Token`, then `Done` or `Failed`.

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
    finished: bool,
}

impl LlmStream {
    pub fn new(
        message_id: String,
        session: Recipient<StreamReport>,
        stream: BoxStream<'static, Result<String, InterviewerError>>,
    ) -> LlmStream {
        LlmStream {
            message_id,
            session,
            stream: Some(stream),
            finished: false,
        }
    }
}

impl Actor for LlmStream {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if let Some(stream) = self.stream.take() {
            ctx.add_stream(stream);
        }
    }
}

impl StreamHandler<Result<String, InterviewerError>> for LlmStream {
    fn handle(&mut self, item: Result<String, InterviewerError>, ctx: &mut Self::Context) {
        if self.finished {
            return;
        }
        match item {
            Ok(text) if text.is_empty() => {}
            Ok(text) => self.session.do_send(StreamReport::Token {
                message_id: self.message_id.clone(),
                text,
            }),
            Err(error) => {
                self.finished = true;
                self.session.do_send(StreamReport::Failed {
                    message_id: self.message_id.clone(),
                    error,
                });
                ctx.stop();
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        if !self.finished {
            self.finished = true;
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
