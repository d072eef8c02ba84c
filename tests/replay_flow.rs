//! Replays of long logs are flow-controlled (PROTOCOL section 6, issue
//! "Hardening", point 5): a client that keeps reading gets every event it
//! may see after its `lastSeq` exactly once, in order, then live events,
//! and is never closed as a slow consumer (4008), however long the log.
//!
//! Every log here has about 5,000 events: answers to a scripted interview
//! with bursts of proctor events between them (two observer-only events
//! each: `proctor-alert`, `trust-score-update`). The session keeps only the
//! newest 1,024 events in memory (`TAIL_EVENTS` in
//! actors/src/session/log.rs), so four fifths of every replay from 0 is read
//! from the store page by page, then the rest from the tail. What a replay
//! delivers is compared with what an observer saw live (fan-out, never the
//! store) and with `GET /v1/interviews/{id}/events`, event by event: a
//! missing event anywhere (at the tail boundary or between two pages), a
//! duplicate or a reordering fails the comparison, and `WsClient` itself
//! fails on any `seq` that does not grow on one connection.

mod common;

use common::*;
use serde_json::{json, Value};
use tokio::{sync::watch, task::JoinHandle};

/// Proctor events and frames as fast as the test sends them, and an
/// interviewer that does not pause between words: a 5,000-event log in a
/// few seconds.
const FAST: &[(&str, &str)] = &[
    ("PROCTOR_EVENTS_PER_MIN", "1000000"),
    ("PROCTOR_EVENTS_BURST", "1000000"),
    ("RATE_LIMIT_PER_SEC", "1000000"),
    ("RATE_LIMIT_BURST", "1000000"),
    ("SCRIPTED_WORD_DELAY_MS", "0"),
];

/// Template questions; about 27 events per answer turn.
const QUESTIONS: usize = 40;
/// Proctor events before each answer: 96 observer-only events.
const PROCTOR_PER_ANSWER: usize = 48;
/// The session's in-memory tail (actors/src/session/log.rs). With the small
/// frames of these tests it is bounded by count, not by bytes.
const TAIL_EVENTS: u64 = 1024;
/// A log this long is read mostly from the store.
const AT_LEAST: u64 = 4 * TAIL_EVENTS;

fn env(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    FAST.iter().chain(extra).copied().collect()
}

fn questions(n: usize) -> Vec<(String, String)> {
    (1..=n)
        .map(|i| {
            (
                format!("Question {i}: tell me about a system you built, what it did, and how it failed."),
                "TECHNICAL".to_string(),
            )
        })
        .collect()
}

fn completed(frame: &Value) -> bool {
    ty(frame) == "interview-completed"
}

/// The end of the candidate's activity in the tests that do not complete
/// the interview: an event every socket sees.
fn paused_by_candidate(frame: &Value) -> bool {
    ty(frame) == "interview-paused" && frame["data"]["reason"] == "candidate"
}

/// How far the candidate may run ahead of the slowest reader, in proctor
/// events. What a reader has not read yet is then at most about 2 * AHEAD
/// frames and one answer turn (~27), whatever this machine's scheduling,
/// well within the smallest outbox (256 frames) even if none of it had left
/// the server yet: a 4008 here is the server's fault, not the test's.
const AHEAD: usize = 32;

/// A socket read on a task of its own, so it keeps up while the test drives
/// other sockets.
struct Reader {
    task: JoinHandle<WsClient>,
    /// `proctor-alert`s it has read so far.
    alerts: watch::Receiver<usize>,
}

impl Reader {
    /// Reads `ws` until a frame for which `last` holds. A close or a silence
    /// of `TURN` fails it.
    fn until(mut ws: WsClient, last: fn(&Value) -> bool) -> Reader {
        let (seen, alerts) = watch::channel(0);
        let task = tokio::spawn(async move {
            let mut n = 0;
            loop {
                match ws.next_incoming(TURN).await {
                    Incoming::Frame(f) => {
                        if ty(&f) == "proctor-alert" {
                            n += 1;
                            seen.send_replace(n);
                        }
                        if last(&f) {
                            return ws;
                        }
                    }
                    other => panic!(
                        "{}: {other:?} after {} frames, before the awaited end (last {:?})",
                        ws.name,
                        ws.frames.len(),
                        types(&ws.frames[ws.frames.len().saturating_sub(8)..])
                    ),
                }
            }
        });
        Reader { task, alerts }
    }

    /// The client, with every frame it read, once the awaited end came.
    async fn done(self) -> WsClient {
        self.task
            .await
            .unwrap_or_else(|e| panic!("a background reader failed: {e}"))
    }
}

/// The candidate's socket and what it has done.
struct Candidate {
    ws: WsClient,
    model: ScriptModel,
    /// Proctor events sent.
    sent: usize,
    /// Readers it must not run too far ahead of.
    paced: Vec<watch::Receiver<usize>>,
}

impl Candidate {
    async fn join(server: &TestServer, iv: &Interview, paced: &[&Reader]) -> Candidate {
        let (ws, _) = join_candidate(server, iv, None).await;
        Candidate {
            ws,
            model: ScriptModel::new(&iv.questions),
            sent: 0,
            paced: paced.iter().map(|r| r.alerts.clone()).collect(),
        }
    }

    /// `n` proctor events (no reply), numbered; never more than `AHEAD`
    /// beyond what every paced reader has read.
    async fn proctor_burst(&mut self, n: usize) {
        for _ in 0..n {
            let want = self.sent.saturating_sub(AHEAD);
            for alerts in &mut self.paced {
                tokio::time::timeout(TURN, alerts.wait_for(|&seen| seen >= want))
                    .await
                    .unwrap_or_else(|_| panic!("a reader is stuck before alert {want}"))
                    .unwrap_or_else(|_| panic!("a reader stopped before alert {want}"));
            }
            let message = format!("signal {}", self.sent);
            self.ws
                .send(
                    "proctor-event",
                    json!({"type": "tab-switch", "severity": "low", "message": message}),
                )
                .await;
            self.sent += 1;
        }
    }

    /// One long answer, its turn checked by the model.
    async fn answer(&mut self) {
        answer_turn(&mut self.ws, &mut self.model, LONG_ANSWER).await;
    }

    /// Starts the interview, then `answers` long answers with a proctor
    /// burst before each. Answering the last question completes it.
    async fn drive(&mut self, answers: usize) {
        start_turn(&mut self.ws, &mut self.model).await;
        for _ in 0..answers {
            self.proctor_burst(PROCTOR_PER_ANSWER).await;
            self.answer().await;
        }
    }

    /// Pauses; every socket sees `interview-paused {reason: candidate}`.
    async fn pause(&mut self) {
        self.ws.send("pause-interview", json!({})).await;
        let frames = self.ws.collect_until("interview-paused").await;
        assert!(paused_by_candidate(frames.last().unwrap()), "{frames:?}");
    }
}

/// The observer's log must be the whole log: seqs 1..=head, each once.
fn assert_whole_log(events: &[Value], head: u64, what: &str) {
    assert_eq!(
        events.first().map(seq_of),
        Some(1),
        "{what}: starts at seq 1"
    );
    assert_eq!(
        events.last().map(seq_of),
        Some(head),
        "{what}: ends at the head"
    );
    assert_contiguous(events, what);
}

/// Events with `seq > after`.
fn after(events: &[Value], after: u64) -> Vec<Value> {
    events
        .iter()
        .filter(|e| seq_of(e) > after)
        .cloned()
        .collect()
}

/// Observes with `lastSeq`, reads the replay up to `head` and checks it is
/// exactly `expected` (the events after `last_seq`); the socket is still
/// open and has nothing more queued.
async fn replay_from(
    server: &TestServer,
    iv: &Interview,
    last_seq: u64,
    head: u64,
    expected: &[Value],
    what: &str,
) {
    let (mut obs, started) = join_observer(server, iv, None, what, Some(last_seq)).await;
    let d = &started["data"];
    assert_eq!(d["lastSeq"], head, "{what}: lastSeq is the head: {d}");
    assert_eq!(d["recovered"], true, "{what}: {d}");
    let replay = obs.collect_until_seq(head).await;
    assert_same_events(&replay, expected, what);
    // Open (no 4008, no other close), and nothing more was queued behind it.
    obs.heartbeat_roundtrip("after the replay").await;
}

/// A completed interview of about 5,000 events, replayed from 0 to an
/// observer that reads normally: every event once, in order, no 4008.
async fn finished_interview_replays_whole(extra: &[(&'static str, &'static str)]) {
    let server = TestServer::start(&env(extra)).await;
    let iv = server.create_interview_with(&questions(QUESTIONS)).await;
    let (live, _) = join_observer(&server, &iv, None, "live observer", None).await;
    let live = Reader::until(live, completed);
    let mut cand = Candidate::join(&server, &iv, &[&live]).await;
    cand.drive(QUESTIONS).await;
    assert!(
        cand.model.completed.is_some(),
        "the last answer completes it"
    );
    let log = live.done().await.events();
    let head = log.last().map(seq_of).unwrap_or(0);
    assert_whole_log(&log, head, "the live observer");
    assert!(
        head >= AT_LEAST,
        "a log of {head} events is not long enough"
    );
    eprintln!(
        "a finished interview of {head} events ({} proctor events)",
        cand.sent
    );
    assert_eq!(
        log.iter().filter(|e| ty(e) == "proctor-alert").count(),
        cand.sent,
        "every proctor event was logged"
    );
    let stored = server
        .http_events(&iv.id, &recruiter_token(ORG), Some(1000))
        .await;
    assert_same_events(&stored, &log, "GET events: the live observer's log");
    server.wait_for_status(&iv.id, "COMPLETED").await;

    let (mut obs, started) = join_observer(&server, &iv, None, "replaying observer", Some(0)).await;
    let d = &started["data"];
    assert_eq!(d["lastSeq"], head, "lastSeq is the head: {d}");
    assert_eq!(d["recovered"], true, "{d}");
    assert_eq!(d["isLive"], false, "{d}");
    let replay = obs.collect_until_seq(head).await;
    assert_same_events(&replay, &log, "replay of the finished interview from 0");
    assert_whole_log(&replay, head, "the replay");
    obs.heartbeat_roundtrip("after the replay").await;
}

/// (a) The default outbox (1,024 frames): the replay is nearly five times that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_interview_replays_whole_with_the_default_outbox() {
    finished_interview_replays_whole(&[]).await;
}

/// (b) The smallest outbox allowed (256 frames): pages of 64, twenty times
/// as many frames as the outbox holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_interview_replays_whole_with_the_smallest_outbox() {
    finished_interview_replays_whole(&[("OUTBOX_FRAMES", "256")]).await;
}

/// (c) The candidate keeps going while an observer replays from 0: proctor
/// events (committed while the replay runs) and answer turns. The
/// replaying observer gets the old and the new events once each, in order,
/// with no gap where the replay meets the live events, and ends live: the
/// next event comes to it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_replaying_while_the_interview_goes_on_gets_everything_once() {
    let server = TestServer::start(&env(&[("OUTBOX_FRAMES", "256")])).await;
    let iv = server.create_interview_with(&questions(QUESTIONS)).await;
    let (live, _) = join_observer(&server, &iv, None, "live observer", None).await;
    let live = Reader::until(live, paused_by_candidate);
    let mut cand = Candidate::join(&server, &iv, &[&live]).await;
    cand.drive(QUESTIONS - 5).await;

    let (replaying, started) =
        join_observer(&server, &iv, None, "replaying observer", Some(0)).await;
    let joined_at = started["data"]["lastSeq"].as_u64().expect("lastSeq");
    assert!(
        joined_at >= AT_LEAST,
        "a log of {joined_at} events is not long enough"
    );
    assert_eq!(started["data"]["isLive"], true);
    let replaying = Reader::until(replaying, paused_by_candidate);
    // At once, while it replays: proctor events the session commits between
    // the replay's pages, paced by the live observer only (the replaying one
    // is behind by design until it has caught up; AHEAD of them, 64 frames,
    // fit in its outbox beside the last pages of its replay). Then a burst
    // and whole turns, paced by both.
    cand.proctor_burst(AHEAD).await;
    cand.paced.push(replaying.alerts.clone());
    cand.proctor_burst(600).await;
    for _ in 0..3 {
        cand.proctor_burst(PROCTOR_PER_ANSWER).await;
        cand.answer().await;
    }
    cand.pause().await;

    let log = live.done().await.events();
    let mut replaying = replaying.done().await;
    let head = log.last().map(seq_of).unwrap_or(0);
    assert_whole_log(&log, head, "the live observer");
    assert!(
        head > joined_at + 1200,
        "the candidate added events during the replay"
    );
    eprintln!(
        "replayed {joined_at} events while the candidate added {}",
        head - joined_at
    );
    assert_same_events(
        &replaying.events(),
        &log,
        "replay from 0 while the interview goes on, then live",
    );
    let stored = server
        .http_events(&iv.id, &recruiter_token(ORG), Some(1000))
        .await;
    assert_same_events(&stored, &log, "GET events: the live observer's log");

    // Live now: the next event is the next frame, with the next seq.
    cand.paced.clear();
    cand.proctor_burst(1).await;
    let alert = replaying.expect_type("proctor-alert").await;
    assert_eq!(seq_of(&alert), head + 1, "{alert}");
    let trust = replaying.expect_type("trust-score-update").await;
    assert_eq!(seq_of(&trust), head + 2, "{trust}");
    replaying.heartbeat_roundtrip("live after the replay").await;
}

/// (d) Resuming anywhere, on either side of the tail's first event and
/// across store pages, gives exactly the events after `lastSeq`; and after
/// a restart (the session rebuilt from the store, its tail too) a replay
/// from 0 is still the whole log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_from_the_store_meet_the_tail_without_a_gap() {
    let mut server = TestServer::start(&env(&[])).await;
    let iv = server.create_interview_with(&questions(QUESTIONS)).await;
    let (live, _) = join_observer(&server, &iv, None, "live observer", None).await;
    let live = Reader::until(live, completed);
    let mut cand = Candidate::join(&server, &iv, &[&live]).await;
    cand.drive(QUESTIONS).await;
    let log = live.done().await.events();
    let head = log.last().map(seq_of).unwrap_or(0);
    assert_whole_log(&log, head, "the live observer");
    assert!(
        head >= AT_LEAST,
        "a log of {head} events is not long enough"
    );
    server.wait_for_status(&iv.id, "COMPLETED").await;

    // The tail holds the newest TAIL_EVENTS events: seq head - 1023 is its
    // first. A lastSeq a little before it is served from the store first,
    // one at or after it from the tail at once; the first store page ends
    // at a different seq for each.
    let boundary = head - TAIL_EVENTS + 1;
    for last_seq in (boundary - 4)..=(boundary + 2) {
        let what = format!("observer resuming from {last_seq} (tail from {boundary})");
        replay_from(&server, &iv, last_seq, head, &after(&log, last_seq), &what).await;
    }
    // Deep in the store, where pages end wherever they end.
    for last_seq in [1, 255, 1000, head / 2] {
        let what = format!("observer resuming from {last_seq}");
        replay_from(&server, &iv, last_seq, head, &after(&log, last_seq), &what).await;
    }

    // A new process: the session is rebuilt from the store.
    server.restart_same_db().await;
    replay_from(&server, &iv, 0, head, &log, "replay from 0 after a restart").await;
    replay_from(
        &server,
        &iv,
        boundary - 2,
        head,
        &after(&log, boundary - 2),
        "replay across the tail boundary after a restart",
    )
    .await;
}

/// (e) The candidate rejoining with `lastSeq: 0` gets its own view of the
/// whole log once: every event but the observer-only ones (most of this
/// log), none twice, then the interview goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_rejoining_from_0_gets_its_view_once() {
    let server = TestServer::start(&env(&[])).await;
    let iv = server.create_interview_with(&questions(QUESTIONS)).await;
    let (live, _) = join_observer(&server, &iv, None, "live observer", None).await;
    let live = Reader::until(live, paused_by_candidate);
    let mut cand = Candidate::join(&server, &iv, &[&live]).await;
    cand.drive(QUESTIONS - 2).await;
    // The log ends with observer-only events: the candidate's replay ends
    // before the head.
    cand.proctor_burst(PROCTOR_PER_ANSWER).await;
    // The session's answer to a command behind them: it has taken them all.
    cand.ws
        .send_ref("resume-interview", json!({}), "sync")
        .await;
    cand.ws.expect_error_ref("INVALID_STATE", "sync").await;
    let first_life = cand.ws.events();

    let (mut again, ready) = join_candidate(&server, &iv, Some(0)).await;
    let r = &ready["data"];
    let joined_at = r["lastSeq"].as_u64().expect("lastSeq");
    assert_eq!(r["recovered"], true, "{r}");
    assert!(
        joined_at >= AT_LEAST,
        "a log of {joined_at} events is not long enough"
    );
    assert_eq!(
        cand.ws.expect_close_after_frames(STEP).await.0,
        4005,
        "the first connection is replaced"
    );
    let mine: Vec<Value> = server
        .http_events(&iv.id, &iv.join_token, Some(1000))
        .await
        .into_iter()
        .filter(|e| seq_of(e) <= joined_at)
        .collect();
    assert!(
        mine.iter().all(|e| !is_observer_only(e)),
        "GET events as the candidate shows no observer-only event"
    );
    assert_same_events(
        &first_life,
        &mine[..first_life.len()],
        "GET events as the candidate: what it saw live",
    );
    let mut replay = Vec::new();
    while replay.len() < mine.len() {
        replay.push(again.recv().await);
    }
    assert_same_events(&replay, &mine, "the candidate's replay from 0");
    eprintln!(
        "the candidate's replay: {} of {joined_at} events",
        replay.len()
    );

    // It goes on from there, live: the next turn is exactly the next turn.
    cand.ws = again;
    cand.paced.clear();
    cand.answer().await;
    cand.pause().await;
    let live = live.done().await;
    let log = live.events();
    assert_whole_log(&log, live.last_seq, "the live observer");
    assert!(
        log.iter().filter(|e| is_observer_only(e)).count() > log.len() / 2,
        "most of this log is for observers only"
    );
    let expected: Vec<Value> = candidate_visible(&log)
        .into_iter()
        .filter(|e| seq_of(e) <= cand.ws.last_seq)
        .collect();
    assert_same_events(
        &cand.ws.events(),
        &expected,
        "the rejoined candidate: replay from 0, then live",
    );
}
