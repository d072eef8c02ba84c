//! `SessionSupervisor`: the one place sessions are created. It maps
//! interview ids to session actors, builds a session from the database on the
//! first join or observe, rebuilds one that panicked, and passivates idle
//! ones in a handshake that never loses a join racing the stop.

use std::{collections::HashMap, time::Duration};

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, ResponseFuture,
    WrapFuture,
};

use crate::connection::ToSocket;
use crate::ports::StoreError;
use crate::protocol::{close, error_frame, ErrorCode, ProtocolError};
use crate::session::{Attach, Detach, Inspect, InterviewSession, SessionInfo};
use crate::Runtime;

/// A socket wants to join or observe `interview_id`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Join {
    pub interview_id: String,
    pub attach: Attach,
}

/// A socket that joined (or was joining) `interview_id` is gone.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave {
    pub interview_id: String,
    pub conn_id: String,
}

/// A session actor stopped; `panicked` when it died in a handler.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionEnded {
    pub interview_id: String,
    pub session_id: String,
    pub panicked: bool,
}

/// A session has been idle with no sockets; it may be stopped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionIdle {
    pub interview_id: String,
    pub session_id: String,
}

/// Stop if still idle; answers whether the session stopped.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Passivate;

/// Graceful shutdown: every live session pauses (persisted) and closes its
/// sockets with 1012; new joins are refused. Answers when all are done.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

/// Every live session, for operators.
#[derive(Message)]
#[rtype(result = "Vec<SessionInfo>")]
pub struct ListSessions;

/// One live session, by interview id.
#[derive(Message)]
#[rtype(result = "Option<SessionInfo>")]
pub struct InspectOne {
    pub interview_id: String,
}

/// Chaos hook: make the live session of `interview_id` panic. Answers
/// whether there was one.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct CrashSession {
    pub interview_id: String,
}

/// Counters for operators.
#[derive(Message)]
#[rtype(result = "SupervisorStats")]
pub struct Stats;

#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SupervisorStats {
    pub sessions: usize,
    pub restarts: u64,
}

enum Queued {
    Attach(Attach),
    Leave(String),
}

enum Slot {
    /// Reading the interview from the database; joins wait here.
    Loading(Vec<Queued>),
    Live {
        addr: Addr<InterviewSession>,
        session_id: String,
    },
    /// Asked to stop; joins wait for the answer.
    Passivating {
        addr: Addr<InterviewSession>,
        queue: Vec<Queued>,
    },
}

pub struct SessionSupervisor {
    runtime: Runtime,
    sessions: HashMap<String, Slot>,
    restarts: u64,
    draining: bool,
    /// Threads the sessions run on, an interview always on the same one, so
    /// sessions use every core instead of the supervisor's thread alone.
    arbiters: Vec<actix::ArbiterHandle>,
    /// Kept so the threads live as long as the supervisor.
    _threads: Vec<actix::Arbiter>,
}

impl SessionSupervisor {
    pub fn new(runtime: Runtime) -> SessionSupervisor {
        let count = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads: Vec<actix::Arbiter> = (0..count).map(|_| actix::Arbiter::new()).collect();
        SessionSupervisor {
            runtime,
            sessions: HashMap::new(),
            restarts: 0,
            draining: false,
            arbiters: threads.iter().map(actix::Arbiter::handle).collect(),
            _threads: threads,
        }
    }

    /// The arbiter an interview's session runs on.
    fn arbiter_for(&self, interview_id: &str) -> &actix::ArbiterHandle {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        interview_id.hash(&mut hasher);
        &self.arbiters[(hasher.finish() as usize) % self.arbiters.len()]
    }

    fn load(&mut self, interview_id: String, queue: Vec<Queued>, ctx: &mut Context<Self>) {
        self.sessions
            .insert(interview_id.clone(), Slot::Loading(queue));
        // Owner first, then the log: what is loaded is what no other node
        // can write to any more (its commits are fenced from here on).
        let acquire = self.runtime.ownership.acquire(&interview_id);
        let store = self.runtime.store.clone();
        let id = interview_id.clone();
        let load = async move {
            let epoch = match acquire.await {
                Ok(epoch) => epoch,
                Err(e @ StoreError::Owned { .. }) => return Err(e),
                // An interview that does not exist has no owner row either:
                // a not-found, not an error.
                Err(e) => match store.load(&id).await? {
                    None => return Ok(None),
                    Some(_) => return Err(e),
                },
            };
            let stored = store.load(&id).await?;
            Ok::<_, StoreError>(stored.map(|s| (s, epoch)))
        };
        ctx.spawn(load.into_actor(self).map(move |result, act, ctx| {
            let queue = match act.sessions.remove(&interview_id) {
                Some(Slot::Loading(queue)) => queue,
                Some(other) => {
                    act.sessions.insert(interview_id, other);
                    return;
                }
                None => Vec::new(),
            };
            match result {
                Ok(Some((stored, epoch))) => {
                    let session = InterviewSession::rebuild(
                        stored,
                        epoch,
                        act.runtime.clone(),
                        ctx.address(),
                    );
                    let session_id = session.session_id().to_string();
                    let addr = InterviewSession::start_in_arbiter(
                        act.arbiter_for(&interview_id),
                        move |_| session,
                    );
                    for q in queue {
                        forward(&addr, q);
                    }
                    act.sessions
                        .insert(interview_id, Slot::Live { addr, session_id });
                }
                Ok(None) => refuse_all(
                    queue,
                    ErrorCode::InterviewNotFound,
                    "no such interview",
                    Some(close::NOT_FOUND),
                ),
                Err(StoreError::Owned { node_id, epoch, .. }) => {
                    // Until hand-over exists: the client retries, and gets
                    // here once the owner lets go or its lease runs out.
                    // A sweep's wake (no one waiting) finds this on every
                    // sweep until the owner expires it itself: not news.
                    if queue.is_empty() {
                        tracing::debug!(%interview_id, owner = %node_id, epoch, "stale interview owned by another node; its owner expires it");
                    } else {
                        tracing::info!(%interview_id, owner = %node_id, epoch, "interview owned by another node");
                    }
                    refuse_all(
                        queue,
                        ErrorCode::InternalError,
                        "the interview is being served by another node; try again shortly",
                        Some(close::RESTARTING),
                    );
                }
                Err(error) => {
                    tracing::error!(%interview_id, %error, "could not load interview");
                    refuse_all(
                        queue,
                        ErrorCode::InternalError,
                        "the interview could not be loaded; try again",
                        None,
                    );
                }
            }
        }));
    }

    fn enqueue_or_load(&mut self, interview_id: String, item: Queued, ctx: &mut Context<Self>) {
        if self.draining {
            if let Queued::Attach(attach) = item {
                attach.peer.send(ToSocket::Close {
                    code: close::RESTARTING,
                    reason: "server restarting".into(),
                });
            }
            return;
        }
        match self.sessions.get_mut(&interview_id) {
            Some(Slot::Live { addr, .. }) if addr.connected() => forward(addr, item),
            Some(Slot::Loading(queue)) | Some(Slot::Passivating { queue, .. }) => queue.push(item),
            _ => match item {
                Queued::Attach(_) => self.load(interview_id, vec![item], ctx),
                // Nothing to leave: no session holds this socket.
                Queued::Leave(_) => {}
            },
        }
    }
}

fn forward(addr: &Addr<InterviewSession>, item: Queued) {
    match item {
        Queued::Attach(attach) => addr.do_send(attach),
        Queued::Leave(conn_id) => addr.do_send(Detach { conn_id }),
    }
}

/// Answers every queued join with `code`; `closing` with that close code,
/// otherwise the socket stays open, unbound, to join again.
fn refuse_all(queue: Vec<Queued>, code: ErrorCode, message: &str, closing: Option<u16>) {
    let error = ProtocolError::new(code, message);
    for item in queue {
        if let Queued::Attach(attach) = item {
            let frame = error_frame(&error, attach.reference.as_deref(), chrono::Utc::now());
            attach.peer.send(ToSocket::Frame("error", frame.into()));
            match closing {
                Some(code) => attach.peer.send(ToSocket::Close {
                    code,
                    reason: message.into(),
                }),
                None => attach.peer.send(ToSocket::Unbound),
            }
        }
    }
}

impl SessionSupervisor {
    /// Finds interviews left created or paused past the TTL whose actor is
    /// not running (passivated, or never rebuilt since a restart) and wakes
    /// them; a woken session expires itself on its first tick. One periodic
    /// query, not one timer per dormant interview.
    fn sweep(&mut self, ctx: &mut Context<Self>) {
        let ttl = chrono::Duration::from_std(self.runtime.settings.session_ttl)
            .unwrap_or(chrono::Duration::MAX);
        let Some(before) = self.runtime.clock.now().checked_sub_signed(ttl) else {
            return;
        };
        let query = self.runtime.store.stale(before, SWEEP_BATCH);
        ctx.spawn(query.into_actor(self).map(|result, act, ctx| match result {
            Ok(ids) => {
                for id in ids {
                    if !act.sessions.contains_key(&id) {
                        tracing::debug!(interview_id = %id, "waking a stale interview to expire it");
                        act.load(id, Vec::new(), ctx);
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "expiry sweep failed"),
        }));
    }
}

/// Interviews woken per sweep at most.
const SWEEP_BATCH: u32 = 100;

impl Actor for SessionSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let every = (self.runtime.settings.session_ttl / 2)
            .clamp(Duration::from_millis(200), Duration::from_secs(30));
        ctx.run_interval(every, |act, ctx| act.sweep(ctx));
    }
}

impl Handler<Join> for SessionSupervisor {
    type Result = ();

    fn handle(&mut self, msg: Join, ctx: &mut Self::Context) {
        self.enqueue_or_load(msg.interview_id, Queued::Attach(msg.attach), ctx);
    }
}

impl Handler<Leave> for SessionSupervisor {
    type Result = ();

    fn handle(&mut self, msg: Leave, ctx: &mut Self::Context) {
        self.enqueue_or_load(msg.interview_id, Queued::Leave(msg.conn_id), ctx);
    }
}

impl Handler<SessionEnded> for SessionSupervisor {
    type Result = ();

    fn handle(&mut self, msg: SessionEnded, ctx: &mut Self::Context) {
        let ours = matches!(
            self.sessions.get(&msg.interview_id),
            Some(Slot::Live { session_id, .. }) if *session_id == msg.session_id
        );
        if !ours {
            return;
        }
        self.sessions.remove(&msg.interview_id);
        if msg.panicked {
            self.restarts += 1;
            crate::metrics::session_restarted();
            tracing::error!(interview_id = %msg.interview_id, "session panicked; rebuilding it from the database");
            self.load(msg.interview_id, Vec::new(), ctx);
        }
    }
}

impl Handler<SessionIdle> for SessionSupervisor {
    type Result = ();

    fn handle(&mut self, msg: SessionIdle, ctx: &mut Self::Context) {
        let addr = match self.sessions.get(&msg.interview_id) {
            Some(Slot::Live { addr, session_id }) if *session_id == msg.session_id => addr.clone(),
            _ => return,
        };
        self.sessions.insert(
            msg.interview_id.clone(),
            Slot::Passivating {
                addr: addr.clone(),
                queue: Vec::new(),
            },
        );
        let id = msg.interview_id;
        let session_id = msg.session_id;
        ctx.spawn(
            addr.send(Passivate)
                .into_actor(self)
                .map(move |answer, act, ctx| {
                    let Some(Slot::Passivating { addr, queue }) = act.sessions.remove(&id) else {
                        return;
                    };
                    match answer {
                        Ok(false) => {
                            for q in queue {
                                forward(&addr, q);
                            }
                            act.sessions.insert(id, Slot::Live { addr, session_id });
                        }
                        // Stopped (or already gone): a waiting join gets a fresh session.
                        Ok(true) | Err(_) => {
                            if queue.iter().any(|q| matches!(q, Queued::Attach(_))) {
                                act.load(id, queue, ctx);
                            }
                        }
                    }
                }),
        );
    }
}

impl Handler<Drain> for SessionSupervisor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Drain, _: &mut Self::Context) -> Self::Result {
        self.draining = true;
        let drains: Vec<_> = self
            .sessions
            .values()
            .filter_map(|slot| match slot {
                Slot::Live { addr, .. } | Slot::Passivating { addr, .. } => {
                    Some(addr.send(crate::session::DrainSession))
                }
                Slot::Loading(_) => None,
            })
            .collect();
        Box::pin(async move {
            futures_util::future::join_all(drains).await;
        })
    }
}

impl Handler<ListSessions> for SessionSupervisor {
    type Result = ResponseFuture<Vec<SessionInfo>>;

    fn handle(&mut self, _: ListSessions, _: &mut Self::Context) -> Self::Result {
        let asks: Vec<_> = self
            .sessions
            .values()
            .filter_map(|slot| match slot {
                Slot::Live { addr, .. } => Some(addr.send(Inspect)),
                _ => None,
            })
            .collect();
        Box::pin(async move {
            futures_util::future::join_all(asks)
                .await
                .into_iter()
                .filter_map(Result::ok)
                .collect()
        })
    }
}

impl Handler<InspectOne> for SessionSupervisor {
    type Result = ResponseFuture<Option<SessionInfo>>;

    fn handle(&mut self, msg: InspectOne, _: &mut Self::Context) -> Self::Result {
        let ask = match self.sessions.get(&msg.interview_id) {
            Some(Slot::Live { addr, .. }) => Some(addr.send(Inspect)),
            _ => None,
        };
        Box::pin(async move {
            match ask {
                Some(ask) => ask.await.ok(),
                None => None,
            }
        })
    }
}

impl Handler<CrashSession> for SessionSupervisor {
    type Result = bool;

    fn handle(&mut self, msg: CrashSession, _: &mut Self::Context) -> bool {
        match self.sessions.get(&msg.interview_id) {
            Some(Slot::Live { addr, .. }) => {
                addr.do_send(crate::session::Crash);
                true
            }
            _ => false,
        }
    }
}

impl Handler<Stats> for SessionSupervisor {
    type Result = actix::MessageResult<Stats>;

    fn handle(&mut self, _: Stats, _: &mut Self::Context) -> Self::Result {
        actix::MessageResult(SupervisorStats {
            sessions: self.sessions.len(),
            restarts: self.restarts,
        })
    }
}
