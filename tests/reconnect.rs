//! PROTOCOL sections 5 and 6: drops, pauses, rejoin with `lastSeq` (replay
//! without loss or duplicates), `recovered: false`, and replacement (4005).

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

/// The candidate drops while active: observers get interview-interrupted and
/// interview-paused (disconnect). Rejoining with an older lastSeq replays
/// exactly the candidate-visible events after it, then interview-resumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidate_drop_and_rejoin_replays_exactly_the_missed_events() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    answer_turn(&mut cand, &mut model, LONG_ANSWER).await;
    rec.collect_until_seq(cand.last_seq).await;

    // Remember a point in the middle of what the candidate saw.
    let first_end = cand
        .events()
        .iter()
        .find(|e| ty(e) == "ai-stream-end")
        .map(seq_of)
        .unwrap();
    drop(cand); // TCP goes away without a WebSocket close

    let interrupted = rec.expect_type("interview-interrupted").await;
    assert_eq!(interrupted["data"]["reason"], "disconnect");
    let paused = rec.expect_type("interview-paused").await;
    assert_eq!(paused["data"]["reason"], "disconnect");
    assert_eq!(seq_of(&paused), seq_of(&interrupted) + 1);
    server.wait_for_status(&iv.id, "PAUSED").await;
    let head_before = rec.last_seq;

    let (mut cand2, ready) = join_candidate(&server, &iv, Some(first_end)).await;
    let r = &ready["data"];
    assert_eq!(r["recovered"], true, "{r}");
    let ready_last = r["lastSeq"].as_u64().unwrap();
    assert!(ready_last >= head_before, "lastSeq is the head: {r}");
    assert!(
        r["status"] == "PAUSED" || r["status"] == "ACTIVE",
        "a disconnect pause ends with the rejoin: {r}"
    );
    let got = cand2.collect_until("interview-resumed").await;
    rec.collect_until("interview-resumed").await;
    let expected: Vec<_> = candidate_visible(&rec.events())
        .into_iter()
        .filter(|e| seq_of(e) > first_end)
        .collect();
    assert_same_events(
        &got,
        &expected,
        "replay after rejoin, then interview-resumed",
    );
    assert!(
        got.iter()
            .any(|e| ty(e) == "interview-paused" && e["data"]["reason"] == "disconnect"),
        "the replay includes the pause the candidate missed"
    );
    server.wait_for_status(&iv.id, "ACTIVE").await;

    // Live again.
    answer_turn(&mut cand2, &mut model, LONG_ANSWER_2).await;
    rec.collect_until_seq(cand2.last_seq).await;
    assert_contiguous(&rec.events(), "observer across the candidate's drop");
    assert_candidate_view(&cand2.events(), &rec.events(), "candidate after rejoin");
}

/// An observer that drops and comes back with lastSeq gets exactly the events
/// after it (every type), then live events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observer_reconnect_replays_exactly_the_missed_events() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "steady observer", None).await;
    let (mut flaky, _) = join_observer(&server, &iv, None, "flaky observer", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    flaky.collect_until_seq(cand.last_seq).await;
    let flaky_last = flaky.last_seq;
    drop(flaky);

    // Things happen while it is away, observer-only ones included.
    cand.send(
        "proctor-event",
        json!({"type": "copy-paste", "severity": "medium"}),
    )
    .await;
    answer_turn(&mut cand, &mut model, SHORT_ANSWER).await;
    rec.collect_until_seq(cand.last_seq).await;
    rec.assert_no_frame_within(300).await;
    let head = rec.last_seq;

    let (mut back, st) = join_observer(&server, &iv, None, "observer back", Some(flaky_last)).await;
    assert_eq!(st["data"]["lastSeq"], head, "lastSeq is the head");
    assert_eq!(st["data"]["recovered"], true);
    let replay = back.collect_until_seq(head).await;
    let expected: Vec<_> = rec
        .events()
        .into_iter()
        .filter(|e| seq_of(e) > flaky_last)
        .collect();
    assert_same_events(&replay, &expected, "observer replay");
    assert!(replay.iter().any(|e| ty(e) == "proctor-alert"));
    back.assert_no_frame_within(300).await;

    // Live.
    answer_turn(&mut cand, &mut model, LONG_ANSWER).await;
    rec.collect_until_seq(cand.last_seq).await;
    back.collect_until_seq(cand.last_seq).await;
    let live: Vec<_> = back
        .events()
        .into_iter()
        .filter(|e| seq_of(e) > head)
        .collect();
    let expected: Vec<_> = rec
        .events()
        .into_iter()
        .filter(|e| seq_of(e) > head)
        .collect();
    assert_same_events(&live, &expected, "live after replay");
    assert_contiguous(&back.events(), "replay then live");
}

/// lastSeq equal to the head: recovered, nothing replayed. lastSeq beyond the
/// head: recovered false, no replay; the client renders the snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_seq_at_or_beyond_the_head() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    rec.collect_until_seq(cand.last_seq).await;
    rec.assert_no_frame_within(200).await;
    let head = rec.last_seq;

    let (mut at_head, st) = join_observer(&server, &iv, None, "at head", Some(head)).await;
    assert_eq!(st["data"]["recovered"], true);
    assert_eq!(st["data"]["lastSeq"], head);
    at_head.assert_no_frame_within(300).await;

    let (mut beyond, st) =
        join_observer(&server, &iv, None, "beyond head", Some(head + 1000)).await;
    assert_eq!(st["data"]["recovered"], false, "lastSeq beyond the head");
    assert_eq!(st["data"]["lastSeq"], head);
    assert_eq!(
        transcript_of(&st["data"]["transcript"]),
        transcript_from_events(&rec.events())
    );
    beyond.assert_no_frame_within(300).await;

    // The candidate, on a new connection (replacing the old one).
    let (mut cand2, ready) = join_candidate(&server, &iv, Some(head + 1000)).await;
    assert_eq!(ready["data"]["recovered"], false);
    assert_eq!(
        ready["data"]["currentQuestion"],
        last_question(&rec.events()).unwrap()
    );
    let (code, _) = cand.expect_close_after_frames(STEP).await;
    assert_eq!(code, 4005);
    cand2.assert_no_frame_within(300).await;

    // Both still get live events.
    answer_turn(&mut cand2, &mut model, LONG_ANSWER).await;
    beyond.collect_until_seq(cand2.last_seq).await;
    at_head.collect_until_seq(cand2.last_seq).await;
    assert_same_events(
        &beyond.events(),
        &at_head.events(),
        "live after recovered:false",
    );
}

/// A pause the candidate asked for: interview-paused {reason: candidate}; it
/// stays paused across a drop and rejoin until resume-interview.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidate_pause_stays_until_resume_even_across_rejoin() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    let started_at = server.wait_for_status(&iv.id, "ACTIVE").await["startedAt"].clone();

    cand.send_ref("pause-interview", json!({}), "p").await;
    let paused = cand.expect_type("interview-paused").await;
    assert_eq!(paused["data"]["reason"], "candidate");
    let seen = rec.collect_until("interview-paused").await;
    assert_eq!(seq_of(seen.last().unwrap()), seq_of(&paused));
    server.wait_for_status(&iv.id, "PAUSED").await;

    for (kind, data) in [
        ("answer", json!({"text": LONG_ANSWER})),
        ("pause-interview", json!({})),
        ("start-interview", json!({})),
    ] {
        cand.send_ref(kind, data, kind).await;
        cand.expect_error_ref("INVALID_STATE", kind).await;
    }

    // Drop and rejoin: still paused, no interview-resumed.
    let last = cand.last_seq;
    drop(cand);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (mut cand2, ready) = join_candidate(&server, &iv, Some(last)).await;
    assert_eq!(ready["data"]["status"], "PAUSED", "{ready}");
    let extra = cand2.collect_quiet(Duration::from_millis(700)).await;
    assert!(
        extra.iter().all(|e| ty(e) != "interview-resumed"),
        "a candidate pause is not ended by a rejoin: {:?}",
        types(&extra)
    );
    cand2
        .send_ref("answer", json!({"text": LONG_ANSWER}), "still")
        .await;
    cand2.expect_error_ref("INVALID_STATE", "still").await;
    server.wait_for_status(&iv.id, "PAUSED").await;

    cand2.send_ref("resume-interview", json!({}), "r").await;
    cand2.expect_type("interview-resumed").await;
    rec.collect_until("interview-resumed").await;
    let row = server.wait_for_status(&iv.id, "ACTIVE").await;
    assert_eq!(
        row["startedAt"], started_at,
        "startedAt is set on the first start only"
    );

    answer_turn(&mut cand2, &mut model, LONG_ANSWER).await;
    rec.collect_until_seq(cand2.last_seq).await;
    assert_contiguous(&rec.events(), "observer across pause and rejoin");
}

/// A second candidate connection joining replaces the first (closed 4005);
/// the interview carries on, uninterrupted, on the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_candidate_connection_replaces_the_old_with_4005() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut first, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut first, &mut model).await;
    rec.collect_until_seq(first.last_seq).await;

    let (mut second, ready) = join_candidate(&server, &iv, Some(first.last_seq)).await;
    assert_eq!(ready["data"]["status"], "ACTIVE");
    assert_eq!(ready["data"]["recovered"], true);
    assert_eq!(first.expect_close(STEP).await, 4005, "replaced");

    answer_turn(&mut second, &mut model, LONG_ANSWER).await;
    let seen = rec.collect_until_seq(second.last_seq).await;
    assert!(
        seen.iter()
            .all(|e| !matches!(ty(e), "interview-paused" | "interview-interrupted")),
        "a replacement is not a disconnect: {:?}",
        types(&seen)
    );
    assert_contiguous(&rec.events(), "observer across the replacement");
}
