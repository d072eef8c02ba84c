//! The clients of an active interview: its candidate (answers after thinking,
//! 250 ms audio chunks while thinking, proctor events, heartbeats) and its
//! observers (heartbeats). Each keeps the highest `seq` it processed and,
//! after any drop, rejoins with `lastSeq`, counting every duplicate and gap.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::{interval_at, sleep, sleep_until, timeout, Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use crate::llm_fake::token_written_us;
use crate::stats::{now_unix_us, Hist, RunStats};
use crate::ws::{self, close_code, observer_only, parse, ts_unix_us, Ws};

/// An answer of well over 12 words: the interview moves on (no follow-up).
pub const ANSWER: &str = "I would put a token bucket per client in a shared store, refill it lazily on every request, and measure the latency it adds.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Candidate,
    /// The n-th observer of its interview.
    Observer(usize),
}

/// What candidates do, and how often.
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    /// From a `question` to the answer.
    pub think: Duration,
    /// Think times are spread evenly over `think` ± `think_spread` / 2.
    pub think_spread: Duration,
    /// Bytes of one audio chunk (0: no audio), sent every `audio_every`
    /// while thinking.
    pub audio_bytes: usize,
    pub audio_every: Duration,
    /// A `proctor-event` (tab-switch, low) this often; `None`: never.
    pub proctor_every: Option<Duration>,
    pub heartbeat_every: Duration,
    /// `ai-token` texts carry the LLM fake's write time.
    pub llm_fake: bool,
}

/// What the coordinator tells every client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Run,
    /// Drop the socket now and rejoin with `lastSeq` (the n-th storm).
    Drop(u32),
    Stop,
}

/// A resume storm, as the clients see it.
#[derive(Default)]
pub struct StormStats {
    /// When the coordinator told every client to drop.
    pub dropped_at: Mutex<Option<Instant>>,
    /// Drop to the rejoin's reply.
    pub reply: Hist,
    /// Drop to the end of the replay (the reply's `lastSeq` reached).
    pub live: Hist,
    pub replies: AtomicUsize,
    pub live_again: AtomicUsize,
    pub last_reply: Mutex<Option<Instant>>,
    pub last_live: Mutex<Option<Instant>>,
    /// Session events with `lastSeq < seq <= head` received after a rejoin.
    pub replayed: AtomicU64,
    /// Replies with `recovered: false`.
    pub not_recovered: AtomicU64,
    pub reconnect_failures: AtomicU64,
    pub notify: Notify,
}

impl StormStats {
    fn mark(at: &Mutex<Option<Instant>>, now: Instant) {
        let mut g = at.lock().unwrap();
        if g.is_none_or(|t| t < now) {
            *g = Some(now);
        }
    }
}

/// Everything clients of one run share.
pub struct Ctx {
    pub addr: SocketAddr,
    pub stats: Arc<RunStats>,
    pub storm: Arc<StormStats>,
    pub behaviour: Behaviour,
    /// Bounds concurrent first connects.
    pub gate: Arc<Semaphore>,
    /// Clients whose first join was answered, and those that gave up.
    pub joined: AtomicUsize,
    pub failed: AtomicUsize,
    pub joined_notify: Notify,
    /// Clients that reconnected on their own (not told to).
    pub unexpected_reconnects: AtomicU64,
}

pub struct ClientSpec {
    pub interview: usize,
    pub interview_id: String,
    pub role: Role,
    pub token: String,
    /// Keep every seq (the candidate and observer 0, for the gap check).
    pub keep_entries: bool,
}

/// The seqs one client processed.
#[derive(Debug, Default, Clone)]
pub struct SeqLog {
    /// The head in the first reply: events after it are this client's.
    pub first_head: u64,
    /// The highest seq processed.
    pub last: u64,
    /// (seq, observer-only) of every processed event, when kept.
    pub entries: Vec<(u32, bool)>,
    pub keep: bool,
    pub duplicates: u64,
    /// Observers only: seqs skipped (their log has no holes by contract).
    pub gaps: u64,
}

impl SeqLog {
    /// Returns whether the event is new to this client.
    pub fn on_event(&mut self, seq: u64, observer_only: bool, contiguous: bool) -> bool {
        if seq <= self.last {
            self.duplicates += 1;
            return false;
        }
        if contiguous && seq > self.last + 1 {
            self.gaps += seq - self.last - 1;
        }
        self.last = seq;
        if self.keep {
            self.entries.push((seq as u32, observer_only));
        }
        true
    }
}

/// The seqs a candidate is missing: every event an observer of the same
/// interview saw, that candidates may see, within the range both followed.
pub fn candidate_gaps(candidate: &SeqLog, observer: &SeqLog) -> u64 {
    let lo = candidate.first_head.max(observer.first_head);
    let hi = candidate.last.min(observer.last);
    let seen: HashSet<u32> = candidate.entries.iter().map(|(s, _)| *s).collect();
    observer
        .entries
        .iter()
        .filter(|(s, oo)| (*s as u64) > lo && (*s as u64) <= hi && !oo && !seen.contains(s))
        .count() as u64
}

pub struct Outcome {
    pub interview: usize,
    pub role: Role,
    pub log: SeqLog,
    pub completed: bool,
    pub error: Option<String>,
}

/// Per-connection state of a candidate's conversation.
#[derive(Default)]
struct Conversation {
    /// A question is waiting for an answer, due at this time.
    answer_at: Option<Instant>,
    /// Answer sent, `candidate-answer` not seen yet.
    awaiting_echo: bool,
    paused: bool,
    completed: bool,
    started: bool,
}

enum Exit {
    Stop,
    Completed,
    /// Told to drop (storm n), or dropped by the server / network.
    Reconnect {
        told: bool,
    },
    Fatal(String),
}

/// Runs one client until told to stop or its interview completes.
pub async fn run(
    ctx: Arc<Ctx>,
    spec: ClientSpec,
    mut control: watch::Receiver<Control>,
) -> Outcome {
    let mut log = SeqLog {
        keep: spec.keep_entries,
        ..SeqLog::default()
    };
    let mut conv = Conversation::default();
    let mut first = true;
    let mut handled_drop = 0u32;
    let mut drop_epoch_at: Option<Instant> = None;
    let mut error = None;
    loop {
        if *control.borrow() == Control::Stop {
            break;
        }
        let permit = if first {
            Some(ctx.gate.clone().acquire_owned().await.expect("gate open"))
        } else {
            None
        };
        let opened = open(&ctx, &spec, &mut log, first, drop_epoch_at).await;
        drop(permit);
        let (mut ws, live_pending) = match opened {
            Ok(v) => v,
            Err(e) => {
                if first {
                    RunStats::inc(&ctx.stats.connect_failures);
                    ctx.failed.fetch_add(1, Ordering::Relaxed);
                    ctx.joined_notify.notify_waiters();
                    error = Some(format!("{e:#}"));
                    break;
                }
                ctx.storm.reconnect_failures.fetch_add(1, Ordering::Relaxed);
                // A real client backs off; the storm measures the herd, so
                // retry soon.
                sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if first {
            ctx.joined.fetch_add(1, Ordering::Relaxed);
            ctx.joined_notify.notify_waiters();
            if spec.role == Role::Candidate && !conv.started {
                conv.started = true;
                let _ = send_json(&ctx, &mut ws, "start-interview", json!({})).await;
            }
            first = false;
        }
        let exit = session(
            &ctx,
            &spec,
            &mut ws,
            &mut log,
            &mut conv,
            &mut control,
            &mut handled_drop,
            live_pending,
            drop_epoch_at,
        )
        .await;
        match exit {
            Exit::Stop => {
                let _ = timeout(Duration::from_secs(2), ws.close(None)).await;
                break;
            }
            Exit::Completed => {
                conv.completed = true;
                break;
            }
            Exit::Reconnect { told } => {
                // Drop the TCP connection without a close handshake.
                drop(ws);
                if told {
                    drop_epoch_at = *ctx.storm.dropped_at.lock().unwrap();
                } else {
                    ctx.unexpected_reconnects.fetch_add(1, Ordering::Relaxed);
                    drop_epoch_at = None;
                    sleep(Duration::from_millis(500)).await;
                }
                // The answer timer restarts after the rejoin's replay.
                conv.answer_at = conv.answer_at.map(|_| Instant::now() + ctx.behaviour.think);
            }
            Exit::Fatal(e) => {
                error = Some(e);
                break;
            }
        }
    }
    Outcome {
        interview: spec.interview,
        role: spec.role,
        log,
        completed: conv.completed,
        error,
    }
}

async fn send_json(
    ctx: &Ctx,
    ws: &mut Ws,
    kind: &str,
    data: serde_json::Value,
) -> anyhow::Result<()> {
    RunStats::inc(&ctx.stats.frames_out);
    ws::send(ws, kind, data).await
}

/// Connects and joins (or observes); with `lastSeq` unless this is the
/// first join. Returns the socket and, after a rejoin, the head to replay to.
async fn open(
    ctx: &Ctx,
    spec: &ClientSpec,
    log: &mut SeqLog,
    first: bool,
    dropped_at: Option<Instant>,
) -> anyhow::Result<(Ws, Option<u64>)> {
    let (mut ws, took) = ws::connect(ctx.addr, &spec.token).await?;
    if first {
        ctx.stats.connect.record(took);
    }
    let kind = match spec.role {
        Role::Candidate => "join-interview",
        Role::Observer(_) => "observe-interview",
    };
    let mut data = json!({"interviewId": spec.interview_id});
    if !first {
        data["lastSeq"] = json!(log.last);
    }
    let sent = Instant::now();
    send_json(ctx, &mut ws, kind, data).await?;
    let want = match spec.role {
        Role::Candidate => "interview-ready",
        Role::Observer(_) => "observation-started",
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| anyhow::anyhow!("no {want} within 60 s"))?;
        match msg {
            Some(Ok(Message::Text(t))) => {
                RunStats::inc(&ctx.stats.frames_in);
                let Some(f) = parse(&t) else { continue };
                if f.kind == want {
                    let d = f.data.unwrap_or_default();
                    let head = d.last_seq.unwrap_or(0);
                    if first {
                        ctx.stats.join.record(sent.elapsed());
                        log.first_head = head;
                        log.last = head;
                        return Ok((ws, None));
                    }
                    if d.recovered == Some(false) {
                        ctx.storm.not_recovered.fetch_add(1, Ordering::Relaxed);
                    }
                    let now = Instant::now();
                    if let Some(at) = dropped_at {
                        ctx.storm.reply.record(now.saturating_duration_since(at));
                        ctx.storm.replies.fetch_add(1, Ordering::Relaxed);
                        StormStats::mark(&ctx.storm.last_reply, now);
                        if head <= log.last {
                            mark_live(ctx, at, now);
                            return Ok((ws, None));
                        }
                    }
                    let pending = (head > log.last).then_some(head);
                    if pending.is_some() {
                        // A fence: the server sends the reply and the whole
                        // replay at once, so the ack to a heartbeat sent now
                        // comes after the replay. (A candidate may never see
                        // `head` itself: it can be an observer-only event.)
                        send_json(ctx, &mut ws, "heartbeat", json!({})).await?;
                    }
                    return Ok((ws, pending));
                }
                if f.kind == "error" {
                    let code = f.data.and_then(|d| d.code).unwrap_or_default();
                    ctx.stats.errors.add(code.to_string());
                    anyhow::bail!("{kind} refused: {t}");
                }
            }
            Some(Ok(Message::Close(c))) => {
                ctx.stats.closes.add(close_code(&c).to_string());
                anyhow::bail!("closed during {kind}: {c:?}");
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => anyhow::bail!("closed during {kind}"),
        }
    }
}

fn mark_live(ctx: &Ctx, dropped_at: Instant, now: Instant) {
    ctx.storm
        .live
        .record(now.saturating_duration_since(dropped_at));
    ctx.storm.live_again.fetch_add(1, Ordering::Relaxed);
    StormStats::mark(&ctx.storm.last_live, now);
    ctx.storm.notify.notify_waiters();
}

/// A jitter in [0, period) from the client's identity, so that timers of
/// thousands of clients do not fire together.
fn jitter(spec: &ClientSpec, salt: u64, period: Duration) -> Duration {
    let mut x = (spec.interview as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(salt.wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add(match spec.role {
            Role::Candidate => 0,
            Role::Observer(n) => n as u64 + 1,
        });
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 29;
    let ms = period.as_millis().max(1) as u64;
    Duration::from_millis(x % ms)
}

/// How long this candidate thinks about the question announced at `seq`.
fn think_time(spec: &ClientSpec, b: Behaviour, seq: u64) -> Duration {
    if b.think_spread.is_zero() {
        return b.think;
    }
    (b.think + jitter(spec, 3 + seq, b.think_spread)).saturating_sub(b.think_spread / 2)
}

#[allow(clippy::too_many_arguments)]
async fn session(
    ctx: &Ctx,
    spec: &ClientSpec,
    ws: &mut Ws,
    log: &mut SeqLog,
    conv: &mut Conversation,
    control: &mut watch::Receiver<Control>,
    handled_drop: &mut u32,
    mut live_pending: Option<u64>,
    dropped_at: Option<Instant>,
) -> Exit {
    let b = ctx.behaviour;
    let candidate = spec.role == Role::Candidate;
    let now = Instant::now();
    let mut heartbeat = interval_at(now + jitter(spec, 1, b.heartbeat_every), b.heartbeat_every);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut audio = interval_at(now + b.audio_every, b.audio_every);
    audio.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let proctor_period = b.proctor_every.unwrap_or(Duration::from_secs(3600));
    let mut proctor = interval_at(now + jitter(spec, 2, proctor_period), proctor_period);
    proctor.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut heartbeat_sent: Option<Instant> = None;
    let audio_chunk = bytes_of(b.audio_bytes);
    let far = || Instant::now() + Duration::from_secs(3600);
    loop {
        let answer_due = conv.answer_at.filter(|_| candidate && !conv.paused);
        let thinking = candidate && conv.answer_at.is_some() && !conv.paused && b.audio_bytes > 0;
        tokio::select! {
            biased;
            changed = control.changed() => {
                let c = if changed.is_err() { Control::Stop } else { *control.borrow_and_update() };
                match c {
                    Control::Stop => return Exit::Stop,
                    Control::Drop(n) if n > *handled_drop => {
                        *handled_drop = n;
                        return Exit::Reconnect { told: true };
                    }
                    _ => {}
                }
            }
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(c))) => {
                        let code = close_code(&c);
                        ctx.stats.closes.add(code.to_string());
                        return match code {
                            1000 => Exit::Completed,
                            1008 | 4001..=4005 => Exit::Fatal(format!("closed with {code}")),
                            _ => Exit::Reconnect { told: false },
                        };
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => {
                        if conv.completed {
                            return Exit::Completed;
                        }
                        ctx.stats.closes.add("eof");
                        return Exit::Reconnect { told: false };
                    }
                };
                let now_us = now_unix_us();
                RunStats::inc(&ctx.stats.frames_in);
                let measuring = ctx.stats.measuring();
                if measuring {
                    RunStats::inc(&ctx.stats.frames_in_window);
                }
                let Some(f) = parse(&text) else { continue };
                if let Some(seq) = f.seq {
                    let kind: &str = &f.kind;
                    let fresh = log.on_event(seq, observer_only(kind), !candidate);
                    if let Some(head) = live_pending {
                        if seq <= head {
                            ctx.storm.replayed.fetch_add(1, Ordering::Relaxed);
                        }
                        if seq >= head {
                            live_pending = None;
                            if let Some(at) = dropped_at {
                                mark_live(ctx, at, Instant::now());
                            }
                        }
                    }
                    if !fresh {
                        continue;
                    }
                    if measuring {
                        if let Some(ts) = f.ts.as_deref().and_then(ts_unix_us) {
                            if !candidate {
                                ctx.stats.fanout.record_us(now_us - ts);
                            }
                            if kind == "ai-token" {
                                ctx.stats.token_ts.record_us(now_us - ts);
                            }
                        }
                        if b.llm_fake && kind == "ai-token" {
                            if let Some(w) = f.data.as_ref().and_then(|d| d.text.as_deref()).and_then(token_written_us) {
                                ctx.stats.token_src.record_us(now_us - w);
                            }
                        }
                    }
                    match kind {
                        "question" if candidate => {
                            conv.answer_at = Some(Instant::now() + think_time(spec, b, seq));
                            conv.awaiting_echo = false;
                        }
                        "candidate-answer" => {
                            conv.answer_at = None;
                            conv.awaiting_echo = false;
                        }
                        "interview-paused" => conv.paused = true,
                        "interview-resumed" => conv.paused = false,
                        "interview-completed" => {
                            conv.completed = true;
                            RunStats::inc(&ctx.stats.completed);
                        }
                        _ => {}
                    }
                } else {
                    match &*f.kind {
                        "heartbeat-ack" => {
                            if live_pending.take().is_some() {
                                // The rejoin's fence: the replay is all here.
                                if let Some(at) = dropped_at {
                                    mark_live(ctx, at, Instant::now());
                                }
                            } else if let Some(sent) = heartbeat_sent.take() {
                                if measuring {
                                    ctx.stats.heartbeat.record(sent.elapsed());
                                }
                            }
                        }
                        "error" => {
                            let code = f.data.and_then(|d| d.code).unwrap_or_default();
                            if code == "INVALID_STATE" && conv.awaiting_echo {
                                // The answer came at a moment the state did not
                                // allow (e.g. a pause): try again shortly.
                                conv.awaiting_echo = false;
                                conv.answer_at = Some(Instant::now() + Duration::from_secs(1));
                            }
                            ctx.stats.errors.add(code.to_string());
                        }
                        _ => {}
                    }
                }
            }
            _ = sleep_until(answer_due.unwrap_or_else(far)), if answer_due.is_some() => {
                conv.answer_at = None;
                conv.awaiting_echo = true;
                RunStats::inc(&ctx.stats.answers);
                if send_json(ctx, ws, "answer", json!({"text": ANSWER})).await.is_err() {
                    return Exit::Reconnect { told: false };
                }
            }
            _ = audio.tick(), if thinking => {
                RunStats::inc(&ctx.stats.frames_out);
                RunStats::inc(&ctx.stats.audio_out);
                if ws.send(Message::Binary(audio_chunk.clone())).await.is_err() {
                    return Exit::Reconnect { told: false };
                }
            }
            _ = proctor.tick(), if candidate && b.proctor_every.is_some() && !conv.completed => {
                RunStats::inc(&ctx.stats.proctor);
                if send_json(ctx, ws, "proctor-event", json!({"type": "tab-switch", "severity": "low"})).await.is_err() {
                    return Exit::Reconnect { told: false };
                }
            }
            _ = heartbeat.tick() => {
                heartbeat_sent = Some(Instant::now());
                if send_json(ctx, ws, "heartbeat", json!({})).await.is_err() {
                    return Exit::Reconnect { told: false };
                }
            }
        }
    }
}

fn bytes_of(n: usize) -> tokio_tungstenite::tungstenite::Bytes {
    // Not silence: a ramp, like a codec's output it does not compress away.
    let v: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
    v.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_log_counts_duplicates_and_gaps() {
        let mut log = SeqLog {
            keep: true,
            ..SeqLog::default()
        };
        assert!(log.on_event(1, false, true));
        assert!(log.on_event(2, false, true));
        assert!(!log.on_event(2, false, true));
        assert!(log.on_event(5, false, true));
        assert_eq!((log.duplicates, log.gaps), (1, 2));
    }

    #[test]
    fn candidate_gaps_ignore_observer_only_events() {
        let mut obs = SeqLog {
            keep: true,
            ..SeqLog::default()
        };
        let mut cand = obs.clone();
        for (s, oo) in [(1, true), (2, false), (3, false), (4, true), (5, false)] {
            obs.on_event(s, oo, true);
        }
        for s in [2, 5] {
            cand.on_event(s, false, false);
        }
        assert_eq!(candidate_gaps(&cand, &obs), 1);
    }
}
