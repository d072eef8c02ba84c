//! What a session knows of a socket: who is on it and how to reach it.
//! Sockets and sessions speak only these messages to each other.

use std::sync::Arc;

use actix::{Message, Recipient};
use bytestring::ByteString;

use crate::event::LoggedEvent;
use crate::protocol::Role;

/// A connected, authenticated client.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// `c-…`, unique per connection.
    pub id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub role: Role,
    /// Recruiters: the organisation whose interviews they may observe.
    pub org_id: Option<String>,
    /// Candidates: the one interview their token may join.
    pub interview_id: Option<String>,
    /// The fingerprint of the token it signed in with
    /// (`SocketLimits::token_key`): `UserRooms` counts sockets per token by it.
    pub token_key: u64,
}

/// How a socket takes part in an interview.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerKind {
    Candidate,
    Observer,
}

/// A socket as its session holds it.
#[derive(Clone)]
pub struct Peer {
    pub info: Arc<ConnectionInfo>,
    pub socket: Recipient<ToSocket>,
}

impl Peer {
    /// Sends to the socket. The mailbox is not the bound: the socket's own
    /// outbox is (a slow client is closed there), so this never drops a
    /// frame. A socket that is gone is ignored on purpose: its `Detach` is
    /// already on the way to the session.
    pub fn send(&self, message: ToSocket) {
        self.socket.do_send(message);
    }
}

/// What a session (or the supervisor) tells a socket.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub enum ToSocket {
    /// The join succeeded: commands go to this session from now on.
    Bound(actix::Addr<crate::session::InterviewSession>),
    /// The socket is no longer part of an interview (stop-observing, a failed join).
    Unbound,
    /// A text frame of this `type`, serialised once and shared by every
    /// receiver: a reply or an error, for this socket alone.
    Frame(&'static str, ByteString),
    /// A committed event of the interview's log, live. A socket still
    /// replaying drops it: a later page of its replay carries it.
    Event(Arc<LoggedEvent>),
    /// Replay the log after this `seq`: ask the session for pages
    /// (`session::ReadReplay`) as the outbox drains, then go live.
    ReplayFrom(u64),
    /// A page of a replay.
    Replay(ReplayPage),
    /// Send a Close frame with this code, then stop.
    Close { code: u16, reason: String },
}

/// Committed events after a socket's replay cursor, those it may see.
#[derive(Clone)]
pub struct ReplayPage {
    pub events: Vec<Arc<LoggedEvent>>,
    /// The cursor after this page: the last `seq` it covered, seen or not.
    pub through: u64,
    /// `through` is the session's head: what comes next is live.
    pub caught_up: bool,
}
