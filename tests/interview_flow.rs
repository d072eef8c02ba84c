//! PROTOCOL sections 3, 4 and 5: a whole interview with the scripted
//! interviewer, watched by two observers; the snapshots of `interview-ready`
//! and `observation-started`; observing a completed interview.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// The whole interview: start turn, answer turns with and without follow-up,
/// completion, closes; observers see every event without gaps, the candidate
/// sees the same events minus the observer-only ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_with_two_observers_to_completion() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let n = iv.questions.len() as u64;

    // Observers first: the interview has no log yet.
    let (mut rec, rec_start) = join_observer(&server, &iv, None, "recruiter", None).await;
    let d = &rec_start["data"];
    assert_eq!(
        d["interview"]["status"], "CREATED",
        "observing spawns the session: {d}"
    );
    assert_eq!(d["session"]["state"], "created", "{d}");
    assert_eq!(d["session"]["candidateConnected"], false, "{d}");
    assert_eq!(
        d["session"]["trustScore"], 100,
        "the trust score starts at 100: {d}"
    );
    assert_eq!(d["session"]["progress"]["totalQuestions"], n, "{d}");
    assert_eq!(d["session"]["progress"]["answered"], 0, "{d}");
    assert_eq!(d["transcript"], json!([]), "{d}");
    assert_eq!(d["isLive"], true, "{d}");
    assert_eq!(d["lastSeq"], 0, "{d}");
    let (mut adm, adm_start) =
        join_observer(&server, &iv, Some(&admin_token()), "admin", None).await;
    assert_eq!(
        adm_start["data"]["session"]["observers"].as_u64(),
        d["session"]["observers"].as_u64().map(|o| o + 1),
        "a second observer is counted"
    );

    let (mut cand, ready) = join_candidate(&server, &iv, None).await;
    let r = &ready["data"];
    assert_eq!(r["status"], "CREATED", "{r}");
    assert_eq!(r["currentQuestion"], Value::Null, "{r}");
    assert_eq!(r["transcript"], json!([]), "{r}");
    assert_eq!(r["progress"]["totalQuestions"], n, "{r}");
    assert_eq!(r["progress"]["answered"], 0, "{r}");
    assert!(r["lastSeq"].as_u64().unwrap() <= 1, "{r}");

    for obs in [&mut rec, &mut adm] {
        let cj = obs.expect_type("candidate-joined").await;
        assert_eq!(cj["data"]["candidateName"], "Ada", "{cj}");
        assert_eq!(seq_of(&cj), 1, "the first entry of the log");
    }

    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;

    // An observer-only event in the middle of the candidate's range.
    cand.send(
        "proctor-event",
        json!({"type": "tab-switch", "severity": "high", "message": "left the tab"}),
    )
    .await;
    cand.heartbeat_roundtrip("after-proctor").await;
    for obs in [&mut rec, &mut adm] {
        obs.collect_until("trust-score-update").await;
    }

    let plan = [
        (SHORT_ANSWER, "follow_up"),
        (SHORT_ANSWER_2, "next_question"),
        (LONG_ANSWER_2, "next_question"),
        (SHORT_ANSWER, "follow_up"),
        (LONG_ANSWER_3, "complete"),
    ];
    for (answer, expected) in plan {
        let (_, action) = answer_turn(&mut cand, &mut model, answer).await;
        assert_eq!(action, expected, "answer {answer:?}");
    }
    let completed = model.completed.clone().expect("completed");

    for obs in [&mut rec, &mut adm] {
        obs.collect_until("interview-completed").await;
    }
    assert_eq!(
        cand.expect_close(STEP).await,
        1000,
        "candidate closed normally"
    );
    assert_eq!(
        rec.expect_close(STEP).await,
        1000,
        "recruiter closed normally"
    );
    assert_eq!(adm.expect_close(STEP).await, 1000, "admin closed normally");

    // Observers: every event, from seq 1, no gaps; both the same.
    let log = rec.events();
    assert_eq!(seq_of(&log[0]), 1);
    assert_contiguous(&log, "recruiter");
    assert_same_events(&adm.events(), &log, "admin vs recruiter");

    // Candidate: the same events minus observer-only ones.
    let mine = cand.events();
    assert_candidate_view(&mine, &log, "candidate vs observer");
    let lo = seq_of(&mine[0]);
    let hi = seq_of(mine.last().unwrap());
    let mine_seqs: Vec<u64> = mine.iter().map(seq_of).collect();
    let gaps: Vec<&Value> = log
        .iter()
        .filter(|e| (lo..=hi).contains(&seq_of(e)) && !mine_seqs.contains(&seq_of(e)))
        .collect();
    assert_eq!(
        gaps.iter().map(|e| ty(e)).collect::<Vec<_>>(),
        vec!["proctor-alert", "trust-score-update"],
        "the candidate's gaps are exactly the observer-only events"
    );

    // The row.
    let row = server.wait_for_status(&iv.id, "COMPLETED").await;
    assert_rfc3339_utc(&row["endedAt"], "endedAt");
    assert_rfc3339_utc(&row["startedAt"], "startedAt");
    let started = log.iter().find(|e| ty(e) == "interview-started").unwrap();
    assert_eq!(
        parse_time(&row["startedAt"]).timestamp_millis(),
        parse_time(&started["data"]["startedAt"]).timestamp_millis(),
        "startedAt is the start's time"
    );
    assert!(parse_time(&row["endedAt"]) >= parse_time(&row["startedAt"]));
    assert_eq!(row["summary"], completed["summary"], "{row}");
    assert_eq!(row["lastSeq"], rec.last_seq, "{row}");
    assert_eq!(row["progress"]["answered"], n, "{row}");
    assert_eq!(row["progress"]["totalQuestions"], n, "{row}");
    let trust = log
        .iter()
        .rev()
        .find(|e| ty(e) == "trust-score-update")
        .unwrap();
    assert_eq!(row["trustScore"], trust["data"]["trustScore"], "{row}");
}

/// `observation-started` and `interview-ready` in the middle of an interview:
/// lastSeq is the head, transcript/progress/currentQuestion match the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_mid_interview_match_the_log() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let n = iv.questions.len() as u64;
    let (mut rec, rec_start) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    rec.expect_type("candidate-joined").await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    answer_turn(&mut cand, &mut model, LONG_ANSWER).await;
    answer_turn(&mut cand, &mut model, SHORT_ANSWER).await; // follow-up on Q2
    rec.collect_until_seq(cand.last_seq).await;
    rec.assert_no_frame_within(300).await;
    let head = rec.last_seq;
    let log = rec.events();

    // A new observer, no lastSeq: snapshot, no replay.
    let (mut late, st) =
        join_observer(&server, &iv, Some(&admin_token()), "late admin", None).await;
    let d = &st["data"];
    assert_eq!(d["lastSeq"], head, "lastSeq is the head of the log: {d}");
    assert_eq!(d["isLive"], true);
    assert_eq!(d["interview"]["status"], "ACTIVE");
    assert_eq!(d["session"]["state"], "active");
    assert_eq!(d["session"]["isActive"], true);
    assert_eq!(d["session"]["candidateConnected"], true);
    assert_eq!(
        d["session"]["observers"].as_u64(),
        rec_start["data"]["session"]["observers"]
            .as_u64()
            .map(|o| o + 1)
    );
    assert_eq!(d["session"]["trustScore"], 100);
    assert_eq!(
        d["session"]["progress"],
        last_progress(&log).unwrap(),
        "progress is the last progress-update's"
    );
    assert_eq!(d["session"]["progress"]["totalQuestions"], n);
    assert_eq!(
        transcript_of(&d["transcript"]),
        transcript_from_events(&log),
        "transcript: every finished AI message and answer, with their seqs"
    );
    late.assert_no_frame_within(300).await;

    // The candidate comes back on a new connection without lastSeq.
    let (mut cand2, ready) = join_candidate(&server, &iv, None).await;
    let (code, _) = cand.expect_close_after_frames(STEP).await;
    assert_eq!(code, 4005, "the old candidate connection is replaced");
    let r = &ready["data"];
    assert_eq!(r["status"], "ACTIVE", "{r}");
    assert_eq!(
        r["currentQuestion"],
        last_question(&log).unwrap(),
        "currentQuestion is the last question event's data"
    );
    assert_eq!(r["currentQuestion"]["followUp"], true);
    assert_eq!(r["progress"], last_progress(&log).unwrap());
    assert_eq!(
        transcript_of(&r["transcript"]),
        transcript_from_events(&log)
    );
    let after = rec.collect_quiet(Duration::from_millis(300)).await;
    assert!(
        after.iter().all(is_observer_only),
        "a replacement logs at most observer-only events: {:?}",
        types(&after)
    );
    let ready_last = r["lastSeq"].as_u64().unwrap();
    assert!(
        ready_last >= head && ready_last <= rec.last_seq,
        "interview-ready.lastSeq {ready_last} must be the head ({head}..={})",
        rec.last_seq
    );
    cand2.assert_no_frame_within(300).await;

    // And carries on.
    answer_turn(&mut cand2, &mut model, LONG_ANSWER_2).await;
}

/// A completed interview can be observed: isLive false, the snapshot, the
/// replay when asked, then no live events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_interview_is_observed_not_live() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_and_answer_all(
        &mut cand,
        &mut model,
        &[LONG_ANSWER, LONG_ANSWER_2, LONG_ANSWER_3],
    )
    .await;
    assert!(model.completed.is_some());
    rec.collect_until("interview-completed").await;
    assert_eq!(rec.expect_close(STEP).await, 1000);
    let log = rec.events();
    let head = rec.last_seq;

    let (mut obs, st) = join_observer(&server, &iv, None, "after the end", None).await;
    let d = &st["data"];
    assert_eq!(d["isLive"], false, "{d}");
    assert_eq!(d["interview"]["status"], "COMPLETED", "{d}");
    assert_eq!(d["session"]["state"], "completed", "{d}");
    assert_eq!(d["session"]["isActive"], false, "{d}");
    assert_eq!(d["lastSeq"], head, "{d}");
    assert_eq!(
        transcript_of(&d["transcript"]),
        transcript_from_events(&log)
    );
    assert_eq!(d["session"]["progress"], last_progress(&log).unwrap());
    expect_nothing_more(&mut obs).await;

    // With lastSeq 0: the whole log again, identical.
    let (mut obs0, st0) = join_observer(&server, &iv, None, "replay all", Some(0)).await;
    assert_eq!(st0["data"]["recovered"], true);
    assert_eq!(st0["data"]["lastSeq"], head);
    obs0.collect_until_seq(head).await;
    assert_same_events(&obs0.events(), &log, "full replay of a completed interview");
    expect_nothing_more(&mut obs0).await;

    // With lastSeq head-5: the last five.
    let (mut obs5, _) = join_observer(&server, &iv, None, "replay tail", Some(head - 5)).await;
    obs5.collect_until_seq(head).await;
    assert_same_events(&obs5.events(), &log[log.len() - 5..], "tail replay");
    expect_nothing_more(&mut obs5).await;
}

/// No live events after the snapshot/replay of a finished interview (the
/// server may close the socket normally).
async fn expect_nothing_more(ws: &mut WsClient) {
    match ws.next_incoming(Duration::from_millis(400)).await {
        Incoming::Timeout | Incoming::Closed(1000) => {}
        other => panic!("{}: nothing more may come, got {other:?}", ws.name),
    }
}

/// `response-complete` answers with the transcription (audio sent before it
/// is kept); an optional `transcription` event may precede the answer turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_complete_answers_with_the_transcription() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;

    cand.send(
        "audio-chunk",
        json!({"audioData": base64(&audio_bytes(300))}),
    )
    .await;
    cand.send_binary(audio_bytes(300)).await;
    cand.assert_no_frame_within(200).await;
    cand.send("response-complete", json!({"transcription": LONG_ANSWER}))
        .await;
    let mut frames = cand
        .collect_until_any(&["question", "interview-completed"])
        .await;
    if ty(&frames[0]) == "transcription" {
        let t = frames.remove(0);
        assert_eq!(t["data"]["text"], LONG_ANSWER, "{t}");
        assert_eq!(t["data"]["isFinal"], true, "{t}");
        assert!(t["data"]["confidence"].is_number(), "{t}");
    }
    let action = model.check_answer_turn(&frames, LONG_ANSWER);
    assert_eq!(action, "next_question");

    rec.collect_until_seq(cand.last_seq).await;
    assert_candidate_view(&cand.events(), &rec.events(), "candidate vs observer");
}

/// `stop-observing` → `observation-stopped` (no seq, ref echoed), no more
/// events; the same socket may observe again and catch up with lastSeq.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_observing_then_observe_again() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    rec.expect_type("candidate-joined").await;
    let stopped_at = rec.last_seq;

    rec.send_ref("stop-observing", json!({}), "stop").await;
    let stopped = rec.expect_type("observation-stopped").await;
    assert_eq!(stopped["ref"], "stop");

    let mut model = ScriptModel::new(&iv.questions);
    let turn = start_turn(&mut cand, &mut model).await;
    rec.assert_no_frame_within(500).await;

    let again = rec.observe(&iv.id, Some(stopped_at)).await;
    assert_eq!(again["data"]["lastSeq"], cand.last_seq);
    assert_eq!(again["data"]["recovered"], true);
    let replay = rec.collect_until_seq(cand.last_seq).await;
    assert_same_events(&replay, &turn, "catch-up after observing again");
    rec.assert_no_frame_within(200).await;

    // Live again.
    answer_turn(&mut cand, &mut model, LONG_ANSWER).await;
    rec.collect_until_seq(cand.last_seq).await;
    assert_contiguous(&rec.events(), "observer across stop/observe");
}

/// An observer of a finished interview is attached like any other: its
/// commands get answers (`end-interview` an `INVALID_STATE`,
/// `stop-observing` an `observation-stopped`), and after stopping the same
/// socket may observe again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_of_a_finished_interview_gets_answers() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_and_answer_all(
        &mut cand,
        &mut model,
        &[LONG_ANSWER, LONG_ANSWER_2, LONG_ANSWER_3],
    )
    .await;
    let head = cand.last_seq;

    let (mut obs, _) = join_observer(&server, &iv, None, "after the end", None).await;
    obs.send_ref("end-interview", json!({"reason": "again"}), "end")
        .await;
    let refused = obs.expect_type("error").await;
    assert_eq!(refused["ref"], "end", "{refused}");
    assert_eq!(refused["data"]["code"], "INVALID_STATE", "{refused}");

    obs.send_ref("stop-observing", json!({}), "stop").await;
    let stopped = obs.expect_type("observation-stopped").await;
    assert_eq!(stopped["ref"], "stop", "{stopped}");

    let again = obs.observe(&iv.id, Some(0)).await;
    assert_eq!(again["data"]["recovered"], true, "{again}");
    obs.collect_until_seq(head).await;
    assert_contiguous(&obs.events(), "the replay after observing again");
}
