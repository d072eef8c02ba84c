//! `UserRooms`: every open socket, by user. A socket joins its user's room
//! when it connects, so a backend service can push to a person wherever they
//! are (`POST /v1/notifications`, the seed's `emitToRoom`). This is the
//! in-process bus; with several nodes a Redis bus carries the same messages.

use std::collections::HashMap;

use actix::{Actor, Context, Handler, Message, MessageResult, Recipient};
use serde_json::Value;

use crate::connection::ToSocket;
use crate::protocol::reply_frame;

#[derive(Message)]
#[rtype(result = "()")]
pub struct EnterRoom {
    pub user_id: String,
    pub conn_id: String,
    pub socket: Recipient<ToSocket>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct LeaveRoom {
    pub user_id: String,
    pub conn_id: String,
}

/// Pushes a `notification` frame with `{event, payload}` to every socket of
/// `user_id`; answers how many sockets it reached.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Notify {
    pub user_id: String,
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

#[derive(Default)]
pub struct UserRooms {
    rooms: HashMap<String, HashMap<String, Recipient<ToSocket>>>,
}

impl Actor for UserRooms {
    type Context = Context<Self>;
}

impl Handler<EnterRoom> for UserRooms {
    type Result = ();

    fn handle(&mut self, msg: EnterRoom, _: &mut Self::Context) {
        self.rooms
            .entry(msg.user_id)
            .or_default()
            .insert(msg.conn_id, msg.socket);
    }
}

impl Handler<LeaveRoom> for UserRooms {
    type Result = ();

    fn handle(&mut self, msg: LeaveRoom, _: &mut Self::Context) {
        if let Some(room) = self.rooms.get_mut(&msg.user_id) {
            room.remove(&msg.conn_id);
            if room.is_empty() {
                self.rooms.remove(&msg.user_id);
            }
        }
    }
}

impl Handler<Notify> for UserRooms {
    type Result = MessageResult<Notify>;

    fn handle(&mut self, msg: Notify, _: &mut Self::Context) -> Self::Result {
        let Some(room) = self.rooms.get(&msg.user_id) else {
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
