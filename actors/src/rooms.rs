//! `UserRooms`: every open socket, by principal. A socket joins its
//! principal's room when it connects, so a backend service can push to a
//! person wherever they are (`POST /v1/notifications`, the seed's
//! `emitToRoom`). This is the in-process bus; with several nodes a Redis bus
//! carries the same messages.
//!
//! A room is keyed by the whole [`Principal`], never by `sub` alone: a
//! recruiter chooses its candidates' `sub` (`candidateId`), so a `sub` names
//! someone only within a role and a tenant.
//!
//! Knowing every socket, it also keeps `MAX_SOCKETS_PER_TOKEN`: a socket
//! beyond a token's cap closes that token's oldest with 4009, as a newer
//! candidate socket replaces an older one.

use std::collections::{HashMap, VecDeque};

use actix::{Actor, Context, Handler, Message, MessageResult, Recipient};
use serde_json::Value;

use crate::connection::{ConnectionInfo, ToSocket};
use crate::metrics;
use crate::protocol::{close, reply_frame, Role};

/// Who a room belongs to: the token's `sub` within its role and tenant.
/// Two sockets share a room only if all of it is equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// A candidate within the one interview its token is for (`interviewId`),
    /// and so within that interview's organisation.
    Candidate {
        interview_id: String,
        sub: String,
    },
    /// A recruiter within its organisation (`orgId`).
    Recruiter {
        org_id: String,
        sub: String,
    },
    /// Admins and services are not in any tenant.
    Admin {
        sub: String,
    },
    Service {
        sub: String,
    },
}

impl Principal {
    /// The principal of an authenticated socket. A missing tenant claim
    /// (refused at authentication anyway) becomes an empty one, which no
    /// notification can name.
    pub fn of(info: &ConnectionInfo) -> Principal {
        let sub = info.user_id.clone();
        let claim = |c: &Option<String>| c.clone().unwrap_or_default();
        match info.role {
            Role::Candidate => Principal::Candidate {
                interview_id: claim(&info.interview_id),
                sub,
            },
            Role::Recruiter => Principal::Recruiter {
                org_id: claim(&info.org_id),
                sub,
            },
            Role::Admin => Principal::Admin { sub },
            Role::Service => Principal::Service { sub },
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct EnterRoom {
    pub principal: Principal,
    /// `ConnectionInfo::token_key`.
    pub token_key: u64,
    pub conn_id: String,
    pub socket: Recipient<ToSocket>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct LeaveRoom {
    pub principal: Principal,
    pub token_key: u64,
    pub conn_id: String,
}

/// Pushes a `notification` frame with `{event, payload}` to every socket of
/// `principal`; answers how many sockets it reached.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Notify {
    pub principal: Principal,
    pub event: String,
    pub payload: Value,
}

/// Closes every open socket with `code` (the end of a graceful drain).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseAll {
    pub code: u16,
    pub reason: String,
}

/// Open sockets, for `GET /v1/websocket/stats`.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct CountSockets;

pub struct UserRooms {
    rooms: HashMap<Principal, HashMap<String, Recipient<ToSocket>>>,
    /// Live sockets of each token, oldest first, at most `per_token`.
    by_token: HashMap<u64, VecDeque<(String, Recipient<ToSocket>)>>,
    per_token: usize,
}

impl UserRooms {
    /// Rooms whose tokens may hold `per_token` sockets each (at least 1).
    pub fn new(per_token: usize) -> UserRooms {
        UserRooms {
            rooms: HashMap::new(),
            by_token: HashMap::new(),
            per_token: per_token.max(1),
        }
    }
}

impl Actor for UserRooms {
    type Context = Context<Self>;
}

impl Handler<EnterRoom> for UserRooms {
    type Result = ();

    fn handle(&mut self, msg: EnterRoom, _: &mut Self::Context) {
        let sockets = self.by_token.entry(msg.token_key).or_default();
        sockets.push_back((msg.conn_id.clone(), msg.socket.clone()));
        let excess = sockets.len().saturating_sub(self.per_token);
        for (_, older) in sockets.drain(..excess) {
            metrics::socket_refused("token");
            older.do_send(ToSocket::Close {
                code: close::TOO_MANY_SOCKETS,
                reason: "too many sockets for this token".into(),
            });
        }
        self.rooms
            .entry(msg.principal)
            .or_default()
            .insert(msg.conn_id, msg.socket);
    }
}

impl Handler<LeaveRoom> for UserRooms {
    type Result = ();

    fn handle(&mut self, msg: LeaveRoom, _: &mut Self::Context) {
        if let Some(sockets) = self.by_token.get_mut(&msg.token_key) {
            sockets.retain(|(id, _)| *id != msg.conn_id);
            if sockets.is_empty() {
                self.by_token.remove(&msg.token_key);
            }
        }
        if let Some(room) = self.rooms.get_mut(&msg.principal) {
            room.remove(&msg.conn_id);
            if room.is_empty() {
                self.rooms.remove(&msg.principal);
            }
        }
    }
}

impl Handler<Notify> for UserRooms {
    type Result = MessageResult<Notify>;

    fn handle(&mut self, msg: Notify, _: &mut Self::Context) -> Self::Result {
        let Some(room) = self.rooms.get(&msg.principal) else {
            return MessageResult(0);
        };
        let data = serde_json::json!({"event": msg.event, "payload": msg.payload});
        let frame = reply_frame("notification", data, None, chrono::Utc::now());
        let frame = bytestring::ByteString::from(frame);
        for socket in room.values() {
            socket.do_send(ToSocket::Frame("notification", frame.clone()));
        }
        MessageResult(room.len())
    }
}

impl Handler<CloseAll> for UserRooms {
    type Result = ();

    fn handle(&mut self, msg: CloseAll, _: &mut Self::Context) {
        for socket in self.rooms.values().flat_map(HashMap::values) {
            socket.do_send(ToSocket::Close {
                code: msg.code,
                reason: msg.reason.clone(),
            });
        }
    }
}

impl Handler<CountSockets> for UserRooms {
    type Result = MessageResult<CountSockets>;

    fn handle(&mut self, _: CountSockets, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.rooms.values().map(HashMap::len).sum())
    }
}
