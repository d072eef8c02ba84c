//! An observer that stops reading is closed with 4008 once its bounded
//! outbox overflows; the candidate is never slowed by it.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_that_stops_reading_is_dropped_not_the_candidate() {
    let server = TestServer::start(&[
        ("OUTBOX_FRAMES", "256"),
        ("RATE_LIMIT_PER_SEC", "100000"),
        ("RATE_LIMIT_BURST", "100000"),
        ("PROCTOR_EVENTS_PER_MIN", "1000000"),
        ("PROCTOR_EVENTS_BURST", "1000000"),
    ])
    .await;
    let iv = server.create_interview().await;
    let (mut stuck, _) = join_observer(&server, &iv, None, "stuck observer", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    // Proctoring begins with the interview (before it, every event would be
    // answered with INVALID_STATE and fill the candidate's own outbox).
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;

    // Each proctor event is two observer frames and no reply to the
    // candidate; the stuck observer reads none of them, so kernel buffers
    // fill, then actix-ws's queue, then its outbox.
    const EVENTS: usize = 15_000;
    for i in 0..EVENTS {
        let message = format!("signal {i} {}", "x".repeat(100));
        cand.send(
            "proctor-event",
            json!({"type": "other", "severity": "low", "message": message}),
        )
        .await;
    }
    // The candidate is not slowed: its own round trip and the interview go on.
    cand.heartbeat_roundtrip("after the flood").await;
    answer_turn(&mut cand, &mut model, LONG_ANSWER).await;

    // The stuck observer, reading again, finds its frames cut short by 4008.
    let (code, frames) = stuck
        .expect_close_after_frames(Duration::from_secs(30))
        .await;
    assert_eq!(code, 4008, "slow consumer close");
    assert!(frames.len() < 2 * EVENTS, "it was dropped before the end");

    let (_, text) = server.metrics().await;
    assert!(
        text.lines().any(
            |l| l.starts_with(r#"interviewd_slow_consumers_total{role="recruiter"}"#)
                && !l.ends_with(" 0")
        ),
        "counted: {text}"
    );
}
