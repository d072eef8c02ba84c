//! PROTOCOL sections 3 and 5: proctor events. Observers get `proctor-alert`
//! and `trust-score-update`; the candidate gets neither; the trust score
//! starts at 100 and never leaves 0..=100.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// Observers see each proctor event as an alert (with type, severity and
/// message) and a trust-score update; the candidate sees nothing. Accepted in
/// the active and paused states; refused before the interview starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observers_get_alerts_and_trust_score_candidate_gets_neither() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut adm, _) = join_observer(&server, &iv, Some(&admin_token()), "admin", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    for obs in [&mut rec, &mut adm] {
        obs.expect_type("candidate-joined").await;
    }

    async fn proctor(
        cand: &mut WsClient,
        observers: [&mut WsClient; 2],
        kind: &str,
        severity: &str,
        message: &str,
        previous: u64,
    ) -> u64 {
        cand.send_ref(
            "proctor-event",
            json!({"type": kind, "severity": severity, "message": message, "data": {"k": 1}}),
            "pe",
        )
        .await;
        // No reply to the candidate: the next frame is the heartbeat's ack.
        cand.heartbeat_roundtrip("after-proctor").await;
        let mut scores = Vec::new();
        for obs in observers {
            let alert = obs.expect_type("proctor-alert").await;
            assert_eq!(alert["data"]["type"], kind, "{alert}");
            assert_eq!(alert["data"]["severity"], severity, "{alert}");
            assert_eq!(alert["data"]["message"], message, "{alert}");
            let update = obs.expect_type("trust-score-update").await;
            let score = update["data"]["trustScore"]
                .as_u64()
                .unwrap_or_else(|| panic!("trustScore: {update}"));
            assert!(
                score <= previous,
                "the trust score never rises: {score} after {previous}"
            );
            assert!(score <= 100);
            scores.push(score);
        }
        assert_eq!(scores[0], scores[1], "both observers see the same score");
        scores[0]
    }

    // created: proctoring has not begun; nothing is recorded.
    cand.send_ref(
        "proctor-event",
        json!({"type": "tab-switch", "severity": "high", "message": "too early"}),
        "early",
    )
    .await;
    cand.expect_error_ref("INVALID_STATE", "early").await;
    rec.assert_no_frame_within(300).await;

    // active
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    for obs in [&mut rec, &mut adm] {
        obs.collect_until("question").await;
    }
    let s1 = proctor(
        &mut cand,
        [&mut rec, &mut adm],
        "tab-switch",
        "high",
        "left the tab",
        100,
    )
    .await;
    assert!(
        s1 < 100,
        "a high-severity event lowers the score from 100, got {s1}"
    );
    let s2 = proctor(
        &mut cand,
        [&mut rec, &mut adm],
        "multiple-voices",
        "medium",
        "two voices",
        s1,
    )
    .await;
    let s3 = proctor(
        &mut cand,
        [&mut rec, &mut adm],
        "face-detection",
        "low",
        "no face",
        s2,
    )
    .await;

    // paused
    cand.send("pause-interview", json!({})).await;
    cand.expect_type("interview-paused").await;
    for obs in [&mut rec, &mut adm] {
        obs.expect_type("interview-paused").await;
    }
    let s4 = proctor(
        &mut cand,
        [&mut rec, &mut adm],
        "fullscreen-exit",
        "high",
        "left fullscreen",
        s3,
    )
    .await;
    cand.assert_no_frame_within(300).await;

    // The candidate's log skips exactly the observer-only entries.
    cand.send("resume-interview", json!({})).await;
    cand.expect_type("interview-resumed").await;
    rec.expect_type("interview-resumed").await;
    assert_candidate_view(&cand.events(), &rec.events(), "candidate vs observer");

    // Snapshots and the row agree.
    let row = server.interview_row(&iv.id).await;
    assert_eq!(row["trustScore"], s4, "{row}");
    let (_late, st) = join_observer(&server, &iv, None, "late", None).await;
    assert_eq!(st["data"]["session"]["trustScore"], s4);

    // Invalid severity or type: INVALID_MESSAGE, and nothing reaches observers.
    cand.send_ref(
        "proctor-event",
        json!({"type": "tab-switch", "severity": "catastrophic"}),
        "bad-sev",
    )
    .await;
    cand.expect_error_ref("INVALID_MESSAGE", "bad-sev").await;
    cand.send_ref(
        "proctor-event",
        json!({"type": "mind-reading", "severity": "low"}),
        "bad-type",
    )
    .await;
    cand.expect_error_ref("INVALID_MESSAGE", "bad-type").await;
    cand.send_ref("proctor-event", json!({"severity": "low"}), "no-type")
        .await;
    cand.expect_error_ref("INVALID_MESSAGE", "no-type").await;
    rec.assert_no_frame_within(300).await;
}

/// Many high-severity events: the score only goes down, reaches 0 and never
/// goes below (nor above 100).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_score_stays_within_0_and_100_and_reaches_0() {
    let server = TestServer::start(&[
        ("RATE_LIMIT_PER_SEC", "1000"),
        ("RATE_LIMIT_BURST", "1000"),
        ("PROCTOR_EVENTS_BURST", "1000"),
    ])
    .await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;

    let kinds = [
        "tab-switch",
        "multiple-voices",
        "copy-paste",
        "fullscreen-exit",
        "face-detection",
        "other",
    ];
    let total = 120;
    for i in 0..total {
        cand.send(
            "proctor-event",
            json!({"type": kinds[i % kinds.len()], "severity": "high", "message": format!("event {i}")}),
        )
        .await;
    }
    // Read until all alerts arrived and things are quiet.
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + TURN;
    loop {
        let alerts = rec
            .frames
            .iter()
            .filter(|f| ty(f) == "proctor-alert")
            .count();
        if alerts >= total {
            frames.extend(rec.collect_quiet(Duration::from_millis(500)).await);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {alerts} of {total} alerts arrived"
        );
        if let Some(f) = rec.next_frame(STEP).await {
            frames.push(f);
        }
    }
    let alerts: Vec<&Value> = rec
        .frames
        .iter()
        .filter(|f| ty(f) == "proctor-alert")
        .collect();
    assert_eq!(alerts.len(), total, "one alert per event");
    for (i, a) in alerts.iter().enumerate() {
        assert_eq!(
            a["data"]["type"],
            kinds[i % kinds.len()],
            "alerts in order: {a}"
        );
        assert_eq!(a["data"]["message"], format!("event {i}"), "{a}");
    }
    let scores: Vec<u64> = rec
        .frames
        .iter()
        .filter(|f| ty(f) == "trust-score-update")
        .map(|f| {
            f["data"]["trustScore"]
                .as_u64()
                .unwrap_or_else(|| panic!("trustScore must be a whole number 0..=100: {f}"))
        })
        .collect();
    assert!(!scores.is_empty());
    assert!(scores.iter().all(|s| *s <= 100), "{scores:?}");
    for pair in scores.windows(2) {
        assert!(pair[1] <= pair[0], "the score never rises: {scores:?}");
    }
    assert_eq!(
        *scores.last().unwrap(),
        0,
        "{total} high-severity events reach 0: {scores:?}"
    );
    assert!(scores[0] < 100);
    assert_contiguous(&rec.events(), "observer");

    let row = server.interview_row(&iv.id).await;
    assert_eq!(row["trustScore"], 0, "{row}");

    // The candidate got none of it.
    cand.heartbeat_roundtrip("quiet").await;
    cand.assert_no_frame_within(300).await;
    assert!(cand.frames.iter().all(|f| !is_observer_only(f)));
}
