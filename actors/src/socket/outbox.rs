//! A socket's bounded outbox and the task that drains it into actix-ws.
//!
//! actix-ws buffers little, and the actor must never wait on a slow client,
//! so frames go into a bounded channel first: when it is full the client is
//! a slow consumer and is closed (4008), never allowed to slow the session.
//! Writes happen in the order they were queued; a Close ends the writer.

use std::time::Duration;

use actix::{Message, Recipient};
use actix_web::web::Bytes;
use actix_ws::{CloseCode, CloseReason, Session};
use bytestring::ByteString;
use tokio::sync::{mpsc, oneshot};

/// How long a Close may wait for room in actix-ws's queue.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// A slow consumer's Close waits behind what its TCP buffers already hold:
/// it reaches the client as soon as the client reads again, and memory stays
/// bounded meanwhile (the outbox is dropped; actix-ws holds 32 frames).
const ABORT_GRACE: Duration = Duration::from_secs(10);

pub enum Outgoing {
    Text(ByteString),
    Ping,
    Pong(Bytes),
    Close(u16, String),
}

/// The writer is done (closed, or the client is gone): stop the socket.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WriterFinished;

/// The outbox is full: the client is not reading fast enough.
#[derive(Debug)]
pub struct Full;

pub struct Outbox {
    tx: mpsc::Sender<Outgoing>,
    abort: Option<oneshot::Sender<(u16, String)>>,
    closed: bool,
}

impl Outbox {
    /// Starts the writer on the current arbiter.
    pub fn spawn(session: Session, capacity: usize, done: Recipient<WriterFinished>) -> Outbox {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let (abort_tx, abort_rx) = oneshot::channel();
        actix::spawn(write_loop(session, rx, abort_rx, done));
        Outbox {
            tx,
            abort: Some(abort_tx),
            closed: false,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Frames the outbox holds at most.
    pub fn capacity(&self) -> usize {
        self.tx.max_capacity()
    }

    /// Resolves once `n` frames fit (false if the writer is gone). The
    /// slots are not kept: this socket is the only sender, so they are
    /// still free when it pushes right after.
    pub fn room_for(&self, n: usize) -> impl std::future::Future<Output = bool> + 'static {
        let tx = self.tx.clone();
        let n = n.clamp(1, tx.max_capacity());
        async move { tx.reserve_many(n).await.is_ok() }
    }

    pub fn send(&mut self, frame: Outgoing) -> Result<(), Full> {
        if self.closed {
            return Ok(());
        }
        self.tx.try_send(frame).map_err(|_| Full)
    }

    /// Queues a Close after what is already queued.
    pub fn close(&mut self, code: u16, reason: &str) {
        if self.closed {
            return;
        }
        if self
            .tx
            .try_send(Outgoing::Close(code, reason.into()))
            .is_err()
        {
            return self.abort(code, reason);
        }
        self.closed = true;
    }

    /// Closes now, dropping what is queued.
    pub fn abort(&mut self, code: u16, reason: &str) {
        self.closed = true;
        if let Some(abort) = self.abort.take() {
            // The writer may be gone already; then there is nothing to close.
            let _ = abort.send((code, reason.into()));
        }
    }
}

fn reason(code: u16, text: String) -> CloseReason {
    CloseReason {
        code: CloseCode::from(code),
        description: (!text.is_empty()).then_some(text),
    }
}

async fn write_loop(
    mut session: Session,
    mut rx: mpsc::Receiver<Outgoing>,
    mut abort: oneshot::Receiver<(u16, String)>,
    done: Recipient<WriterFinished>,
) {
    loop {
        let next = tokio::select! {
            biased;
            cut = &mut abort => {
                if let Ok((code, text)) = cut {
                    let _ = tokio::time::timeout(ABORT_GRACE, session.close(Some(reason(code, text)))).await;
                }
                break;
            }
            next = rx.recv() => next,
        };
        let sent = match next {
            Some(Outgoing::Text(text)) => {
                tokio::select! {
                    r = session.text(text) => r.is_ok(),
                    cut = &mut abort => {
                        if let Ok((code, text)) = cut {
                            let _ = tokio::time::timeout(ABORT_GRACE, session.close(Some(reason(code, text)))).await;
                        }
                        break;
                    }
                }
            }
            Some(Outgoing::Ping) => session.ping(b"").await.is_ok(),
            Some(Outgoing::Pong(bytes)) => session.pong(&bytes).await.is_ok(),
            Some(Outgoing::Close(code, text)) => {
                let _ = tokio::time::timeout(CLOSE_GRACE, session.close(Some(reason(code, text))))
                    .await;
                break;
            }
            None => {
                let _ = tokio::time::timeout(CLOSE_GRACE, session.close(None)).await;
                break;
            }
        };
        if !sent {
            break;
        }
    }
    // The socket actor may be gone already; nothing to tell then.
    let _ = done.try_send(WriterFinished);
}
