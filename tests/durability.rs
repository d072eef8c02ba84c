//! PROTOCOL section 6: every event a client saw survives `kill -9` under the
//! same seq; seqs are never reused; the interview carries on after a restart.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// Reads `ws` until it has seen `head`; returns all its events.
async fn replay_to(ws: &mut WsClient, head: u64) -> Vec<Value> {
    if head > ws.last_seq {
        ws.collect_until_seq(head).await;
    }
    ws.events()
}

/// Part of an interview, kill -9, restart on the same database: observers
/// replay identical events (lastSeq = head, and lastSeq = 0), HTTP agrees,
/// the candidate rejoins and finishes, and new seqs continue after the old
/// head without reuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_and_restart_replays_identical_events_and_continues() {
    let mut server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    answer_turn(&mut cand, &mut model, LONG_ANSWER).await;
    cand.send(
        "proctor-event",
        json!({"type": "tab-switch", "severity": "high"}),
    )
    .await;
    rec.collect_until("trust-score-update").await;
    let seen = rec.events();
    let head = rec.last_seq;
    let cand_last = cand.last_seq;
    assert_contiguous(&seen, "before the crash");

    server.kill9().await;
    drop(rec);
    drop(cand);
    server.restart_same_db().await;

    // The row survived.
    let row = server.interview_row(&iv.id).await;
    assert!(
        row["lastSeq"].as_u64().unwrap() >= head,
        "every event a client saw is in the database: {row}"
    );
    assert!(
        row["status"] == "PAUSED" || row["status"] == "ACTIVE",
        "an active interview comes back paused (or active): {row}"
    );

    // Observer A: from where it was.
    let (mut a, st) = join_observer(&server, &iv, None, "observer A", Some(head)).await;
    assert_eq!(st["data"]["recovered"], true);
    let a_head = st["data"]["lastSeq"].as_u64().unwrap();
    assert!(a_head >= head, "{st}");
    let after = replay_to(&mut a, a_head).await;
    if let Some(first) = after.first() {
        assert_eq!(seq_of(first), head + 1, "no gap after the old head");
    }
    assert_contiguous(&after, "observer A after restart");
    for e in &after {
        assert!(
            matches!(
                ty(e),
                "interview-paused"
                    | "interview-resumed"
                    | "interview-interrupted"
                    | "candidate-joined"
            ),
            "only recovery events may follow the old head before anyone acts: {e}"
        );
    }

    // Observer B: everything from the start, identical.
    let (mut b, st) = join_observer(&server, &iv, None, "observer B", Some(0)).await;
    assert_eq!(st["data"]["recovered"], true);
    let b_head = st["data"]["lastSeq"].as_u64().unwrap();
    let all = replay_to(&mut b, b_head).await;
    assert_eq!(seq_of(&all[0]), 1);
    assert_contiguous(&all, "observer B full replay");
    assert_prefix(&all, &seen, "replay after kill -9");

    // HTTP agrees.
    let http = server
        .http_events(&iv.id, &recruiter_token(ORG), None)
        .await;
    assert_prefix(&http, &seen, "GET events after kill -9");

    // The candidate comes back and finishes.
    let (mut cand2, ready) = join_candidate(&server, &iv, Some(cand_last)).await;
    assert_eq!(ready["data"]["recovered"], true);
    let extra = cand2.collect_quiet(Duration::from_millis(700)).await;
    for e in &extra {
        assert!(
            matches!(ty(e), "interview-paused" | "interview-resumed"),
            "only pause/resume around the rejoin: {e}"
        );
        assert!(seq_of(e) > cand_last);
    }
    // The returning candidate's join ends a `server` pause.
    server.wait_for_status(&iv.id, "ACTIVE").await;
    answer_turn(&mut cand2, &mut model, LONG_ANSWER_2).await;
    answer_turn(&mut cand2, &mut model, LONG_ANSWER_3).await;
    assert!(model.completed.is_some());

    // Observers saw it all, with seqs continuing after everything before.
    a.collect_until("interview-completed").await;
    b.collect_until("interview-completed").await;
    let a_all = a.events();
    let b_all = b.events();
    assert_contiguous(&a_all, "observer A");
    assert_contiguous(&b_all, "observer B");
    assert_same_events(&b_all[head as usize..], &a_all, "A and B agree");
    let new_events: Vec<&Value> = b_all.iter().filter(|e| seq_of(e) > b_head).collect();
    assert!(!new_events.is_empty());
    assert!(new_events.iter().all(|e| seq_of(e) > head));
    assert_candidate_view(
        &cand2.events(),
        &b_all,
        "candidate after restart vs observer B",
    );

    let final_http = server
        .http_events(&iv.id, &recruiter_token(ORG), None)
        .await;
    assert_same_events(&final_http, &b_all, "GET events at the end");
}

/// kill -9 in the middle of a streamed message: every token an observer saw
/// comes back under the same seq, and the next events get new seqs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_mid_stream_keeps_every_seen_event() {
    let mut server = TestServer::start(&[("SCRIPTED_WORD_DELAY_MS", "40")]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    cand.send("start-interview", json!({})).await;
    // Read until a few tokens of the greeting arrived, then kill at once.
    let mut tokens = 0;
    while tokens < 3 {
        let f = rec.recv().await;
        if ty(&f) == "ai-token" {
            tokens += 1;
        }
        assert_ne!(
            ty(&f),
            "question",
            "the stream ended before the kill; slow it down"
        );
    }
    server.kill9().await;
    let seen = rec.events();
    let seen_head = rec.last_seq;
    // The candidate may have read more than the observer; both count.
    cand.collect_quiet(Duration::from_millis(200)).await;
    let cand_events = cand.events();
    drop(rec);
    drop(cand);

    server.restart_same_db().await;
    let (mut b, st) = join_observer(&server, &iv, None, "observer after crash", Some(0)).await;
    let head = st["data"]["lastSeq"].as_u64().unwrap();
    assert!(
        head >= seen_head,
        "events a client saw were lost: head {head} < {seen_head}"
    );
    let all = replay_to(&mut b, head).await;
    assert_contiguous(&all, "replay after a mid-stream crash");
    assert_prefix(&all, &seen, "observer's events after kill -9");
    for e in &cand_events {
        let stored = all
            .iter()
            .find(|s| seq_of(s) == seq_of(e))
            .unwrap_or_else(|| panic!("event the candidate saw is gone: {e}"));
        assert_eq!(
            keys(std::slice::from_ref(stored)),
            keys(std::slice::from_ref(e)),
            "candidate's event"
        );
    }

    // New events get new seqs: a proctor event from the returning candidate.
    let (mut cand2, _) = join_candidate(&server, &iv, None).await;
    cand2
        .send(
            "proctor-event",
            json!({"type": "other", "severity": "low", "message": "after"}),
        )
        .await;
    let alert = b.collect_until("proctor-alert").await;
    let alert = alert.last().unwrap();
    assert!(seq_of(alert) > head, "no seq is reused: {alert}");
    assert_eq!(alert["data"]["message"], "after");
    assert_contiguous(&b.events(), "observer after the crash");
}

/// A session with no sockets is passivated; the next join rebuilds it from
/// the log: same events, seqs continue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passivated_session_is_rebuilt_from_the_log() {
    let server = TestServer::start(&[("SESSION_IDLE_PASSIVATE_MS", "200")]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    answer_turn(&mut cand, &mut model, SHORT_ANSWER).await; // follow-up pending
    rec.collect_until_seq(cand.last_seq).await;
    let cand_last = cand.last_seq;
    drop(cand);
    rec.collect_until("interview-paused").await;
    let seen = rec.events();
    drop(rec);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let (mut obs, st) = join_observer(&server, &iv, None, "observer", Some(0)).await;
    let head = st["data"]["lastSeq"].as_u64().unwrap();
    let all = replay_to(&mut obs, head).await;
    assert_prefix(&all, &seen, "rebuilt session replays the same log");

    let (mut cand2, ready) = join_candidate(&server, &iv, Some(cand_last)).await;
    assert_eq!(
        ready["data"]["currentQuestion"],
        model.current_question.clone().unwrap(),
        "the pending follow-up is still the current question"
    );
    cand2.collect_until("interview-resumed").await;
    // The follow-up rule survived: a second short answer moves on.
    let (_, action) = answer_turn(&mut cand2, &mut model, SHORT_ANSWER_2).await;
    assert_eq!(action, "next_question");
    obs.collect_until_seq(cand2.last_seq).await;
    assert_contiguous(&obs.events(), "observer after passivation");
}
