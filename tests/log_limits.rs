//! What a client can add to an interview's log is bounded (PROTOCOL
//! sections 2 and 8): the length of every string it sends, the rate of
//! proctor events per interview, and the size of the whole log.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

/// Each field over its documented length is refused with PAYLOAD_TOO_LARGE,
/// naming the field; at the limit it is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strings_over_their_limit_are_refused() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    rec.expect_type("candidate-joined").await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;

    cand.send_json(json!({"type": "heartbeat", "ref": "r".repeat(129)}))
        .await;
    let e = cand.expect_error("PAYLOAD_TOO_LARGE").await;
    assert!(
        e["data"]["message"].as_str().unwrap_or("").contains("ref"),
        "{e}"
    );

    cand.send_ref("answer", json!({"text": "word ".repeat(4001)}), "long")
        .await;
    let e = cand.expect_error_ref("PAYLOAD_TOO_LARGE", "long").await;
    assert!(
        e["data"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("data.text"),
        "{e}"
    );

    let message = "m".repeat(501);
    cand.send_ref(
        "proctor-event",
        json!({"type": "tab-switch", "severity": "low", "message": message}),
        "pm",
    )
    .await;
    let e = cand.expect_error_ref("PAYLOAD_TOO_LARGE", "pm").await;
    assert!(
        e["data"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("data.message"),
        "{e}"
    );

    // At the limit: taken.
    let message = "m".repeat(500);
    cand.send(
        "proctor-event",
        json!({"type": "tab-switch", "severity": "low", "message": message}),
    )
    .await;
    let frames = rec.collect_until("proctor-alert").await;
    let alert = frames.last().cloned().unwrap_or_default();
    assert_eq!(alert["data"]["message"].as_str().map(str::len), Some(500));

    // The interview goes on.
    answer_turn(&mut cand, &mut model, LONG_ANSWER).await;
}

/// Proctoring begins with the interview, and one interview takes proctor
/// events at a bounded rate, however many sockets send them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proctor_events_are_bounded_per_interview() {
    let server = TestServer::start(&[
        ("PROCTOR_EVENTS_PER_MIN", "6"),
        ("PROCTOR_EVENTS_BURST", "3"),
    ])
    .await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    rec.expect_type("candidate-joined").await;
    let event = json!({"type": "tab-switch", "severity": "high"});

    cand.send_ref("proctor-event", event.clone(), "early").await;
    cand.expect_error_ref("INVALID_STATE", "early").await;

    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    for i in 0..3 {
        cand.send_ref("proctor-event", event.clone(), &format!("ok{i}"))
            .await;
    }
    cand.send_ref("proctor-event", event.clone(), "over").await;
    let e = cand.expect_error_ref("RATE_LIMITED", "over").await;
    assert_eq!(e["data"]["retryable"], true, "{e}");
    // A new socket of the same candidate draws on the same budget.
    let (mut again, _) = join_candidate(&server, &iv, None).await;
    again
        .send_ref("proctor-event", event.clone(), "fresh")
        .await;
    again.expect_error_ref("RATE_LIMITED", "fresh").await;

    let alerts: Vec<_> = rec
        .collect_quiet(Duration::from_millis(500))
        .await
        .into_iter()
        .filter(|f| ty(f) == "proctor-alert")
        .collect();
    assert_eq!(alerts.len(), 3, "three alerts within the burst: {alerts:?}");
}

/// A log at MAX_INTERVIEW_EVENTS takes no more client commands but the
/// end, which completes the interview as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_log_takes_only_the_end() {
    let server = TestServer::start(&[("MAX_INTERVIEW_EVENTS", "100")]).await;
    let questions: Vec<(String, String)> = (0..10)
        .map(|i| {
            (
                format!("Question {i}: tell me about a system you built, what it did, and how it failed."),
                "TECHNICAL".to_string(),
            )
        })
        .collect();
    let iv = server.create_interview_with(&questions).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    cand.send("start-interview", json!({})).await;
    cand.collect_until("question").await;
    let mut refused = None;
    for i in 0..20 {
        cand.send_ref("answer", json!({"text": LONG_ANSWER}), &format!("a{i}"))
            .await;
        let frames = cand
            .collect_until_any(&["question", "interview-completed", "error"])
            .await;
        let last = frames.last().cloned().unwrap_or_default();
        if ty(&last) == "error" {
            refused = Some(last);
            break;
        }
        assert_ne!(ty(&last), "interview-completed", "completed before the cap");
    }
    let refused = refused.expect("the cap was reached within 20 answers");
    check_error(&refused, "LIMIT_REACHED");
    assert_eq!(refused["data"]["retryable"], false, "{refused}");
    cand.send("end-interview", json!({})).await;
    cand.collect_until("interview-completed").await;
    let row = server.wait_for_status(&iv.id, "COMPLETED").await;
    assert_eq!(row["status"], "COMPLETED");
}

/// A client flooding proctor events with frame-sized messages for 20 s,
/// within the connection's rate limit, no longer grows the server or the
/// database: long messages are refused, the rest are held to the
/// interview's proctor rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proctor_flood_leaves_memory_and_database_alone() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    let rss_before = server.rss_kib().expect("server RSS");
    let db_before = server.sqlite_bytes();
    let long = "x".repeat(60 * 1024);
    let fits = "y".repeat(500);
    let flood = cand
        .flood(Duration::from_millis(25), Duration::from_secs(20), |i| {
            let message = if i % 2 == 0 { &long } else { &fits };
            json!({"type": "proctor-event", "data": {"type": "copy-paste", "severity": "high", "message": message}})
        })
        .await;
    let rss_after = server.rss_kib().expect("server RSS");
    let db_after = server.sqlite_bytes();
    let (_, body) = server
        .get(
            &format!("/v1/interviews/{}/events?limit=1000", iv.id),
            Some(&recruiter_token(ORG)),
        )
        .await;
    let events_bytes = body.to_string().len();
    eprintln!(
        "flood of {} frames ({} errors back): RSS {rss_before} -> {rss_after} KiB; db {db_before:?} -> {db_after:?}; /events {events_bytes} bytes",
        flood.sent,
        flood.frames.len()
    );
    assert!(
        rss_after < rss_before + 10 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    if let (Some(before), Some(after)) = (db_before, db_after) {
        assert!(
            after < before + 5 * 1024 * 1024,
            "the database grew from {before} to {after} bytes"
        );
    }
    assert!(
        events_bytes < 1024 * 1024,
        "/events answered {events_bytes} bytes"
    );
    // The socket is unharmed: a heartbeat is answered, behind whatever of
    // the flood's errors were still on their way.
    cand.send_ref("heartbeat", json!({}), "after-flood").await;
    let frames = cand.collect_until("heartbeat-ack").await;
    let ack = frames.last().expect("a heartbeat-ack");
    assert_eq!(ack["ref"], "after-flood", "{ack}");
    assert!(
        frames[..frames.len() - 1]
            .iter()
            .all(|f| f["type"] == "error"),
        "only the flood's errors came before it"
    );
    drop(model);
}
