//! PROTOCOL sections 2 and 8: frame size limits, audio buffer limit, the
//! per-connection rate limit, and heartbeats (4006).

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

/// A text frame over MAX_FRAME_BYTES is dropped and answered with
/// PAYLOAD_TOO_LARGE; the socket stays open. Same for a binary frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_over_max_frame_bytes_is_refused_and_socket_stays_open() {
    let server = TestServer::start(&[("MAX_FRAME_BYTES", "1024")]).await;
    let iv = server.create_interview().await;
    let (mut cand, _) = WsClient::connected(server.port, &iv.join_token, "candidate").await;

    // A heartbeat padded past the limit: refused, and NOT answered.
    let big = json!({"type": "heartbeat", "ref": "big", "data": {"pad": "x".repeat(2000)}});
    cand.send_json(big).await;
    let e = cand.expect_error("PAYLOAD_TOO_LARGE").await;
    assert!(e.get("seq").is_none());
    cand.assert_no_frame_within(300).await;
    cand.heartbeat_roundtrip("after-big").await;

    // Just under the limit is fine.
    let fits = json!({"type": "heartbeat", "ref": "fits", "data": {"pad": "y".repeat(900)}});
    assert!(fits.to_string().len() < 1024);
    cand.send_json(fits).await;
    let ack = cand.expect_type("heartbeat-ack").await;
    assert_eq!(ack["ref"], "fits");

    // Binary over the limit, while an answer is being taken.
    cand.join(&iv.id, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    cand.send_binary(audio_bytes(2000)).await;
    cand.expect_error("PAYLOAD_TOO_LARGE").await;
    cand.heartbeat_roundtrip("after-binary").await;
    answer_turn(&mut cand, &mut model, LONG_ANSWER).await;
}

/// A frame over 1 MiB closes the socket with 1009.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_over_one_mib_closes_with_1009() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut cand, _) = WsClient::connected(server.port, &iv.join_token, "candidate").await;
    let huge = json!({"type": "heartbeat", "data": {"pad": "z".repeat(1024 * 1024 + 512)}});
    // The server may close while we are still writing; the close code is
    // what matters.
    let _ = cand
        .try_send(tokio_tungstenite::tungstenite::Message::text(
            huge.to_string(),
        ))
        .await;
    let (code, _) = cand.expect_close_after_frames(STEP).await;
    assert_eq!(code, 1009, "a frame over 1 MiB closes with 1009");
}

/// Audio buffered for one answer (audio-chunk and binary frames together)
/// over MAX_AUDIO_BYTES: PAYLOAD_TOO_LARGE; chunks under it get no reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_over_max_audio_bytes_is_payload_too_large() {
    let server =
        TestServer::start(&[("MAX_FRAME_BYTES", "4096"), ("MAX_AUDIO_BYTES", "4000")]).await;
    let iv = server.create_interview().await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;

    // 3 x 600 base64 + 3 x 600 binary = 3600 bytes: accepted silently.
    for i in 0..3 {
        cand.send_ref(
            "audio-chunk",
            json!({"audioData": base64(&audio_bytes(600))}),
            &format!("a{i}"),
        )
        .await;
        cand.send_binary(audio_bytes(600)).await;
    }
    cand.assert_no_frame_within(300).await;
    // 4200 > 4000.
    cand.send_binary(audio_bytes(600)).await;
    cand.expect_error("PAYLOAD_TOO_LARGE").await;
    cand.heartbeat_roundtrip("still-open").await;
    // The interview goes on.
    answer_turn(&mut cand, &mut model, LONG_ANSWER).await;
}

/// Token bucket per connection: a burst beyond RATE_LIMIT_BURST is dropped
/// and answered with RATE_LIMITED (retryable) at most once per second; once
/// the bucket refills, frames are served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_drops_frames_with_one_error_per_second() {
    let server = TestServer::start(&[("RATE_LIMIT_PER_SEC", "5"), ("RATE_LIMIT_BURST", "5")]).await;
    let iv = server.create_interview().await;
    let (mut cand, _) = WsClient::connected(server.port, &iv.join_token, "candidate").await;

    // 30 heartbeats at once.
    for i in 0..30 {
        cand.send_ref("heartbeat", json!({}), &format!("b{i}"))
            .await;
    }
    let mut acks = Vec::new();
    let mut errors = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(800);
    while let Some(f) = cand
        .next_frame(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await
    {
        match ty(&f) {
            "heartbeat-ack" => acks.push(f["ref"].as_str().unwrap_or_default().to_string()),
            "error" => errors.push(f),
            other => panic!("unexpected {other}: {f}"),
        }
    }
    assert!(
        (5..=6).contains(&acks.len()),
        "a burst of 5 is served, the rest dropped: acks {acks:?}"
    );
    assert_eq!(
        &acks[..5],
        &["b0", "b1", "b2", "b3", "b4"],
        "the first frames are the ones served"
    );
    assert_eq!(
        errors.len(),
        1,
        "at most one RATE_LIMITED per second: {errors:?}"
    );
    assert_eq!(errors[0]["data"]["code"], "RATE_LIMITED");
    check_error(&errors[0], "RATE_LIMITED");

    // Refilled: served again.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    cand.heartbeat_roundtrip("after-refill").await;

    // Sustained 20/s against 5/s for 3 s: never more than one error a second,
    // never closed (that takes 10 s over the rate).
    let flood = cand
        .flood(
            Duration::from_millis(50),
            Duration::from_secs(3),
            |i| json!({"type": "heartbeat", "ref": format!("f{i}"), "data": {}}),
        )
        .await;
    assert!(flood.close.is_none(), "closed too early: {:?}", flood.close);
    let errs = flood.errors("RATE_LIMITED");
    assert!(!errs.is_empty(), "over the rate must be reported");
    for pair in errs.windows(2) {
        assert!(
            pair[1].0 - pair[0].0 >= Duration::from_millis(800),
            "RATE_LIMITED errors at most once per second: {:?}",
            errs.iter().map(|(t, _)| *t).collect::<Vec<_>>()
        );
    }
    assert!(
        errs.len() <= 4,
        "3 s over the rate: at most one error per second, got {}",
        errs.len()
    );
    assert!(
        flood.count("heartbeat-ack") < flood.sent,
        "frames over the rate are dropped"
    );
    assert!(
        flood.count("heartbeat-ack") >= 10,
        "the rate is still served"
    );
}

/// A client still over the rate after 10 s is closed with 1008.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_flood_is_closed_with_1008() {
    let server = TestServer::start(&[("RATE_LIMIT_PER_SEC", "5"), ("RATE_LIMIT_BURST", "5")]).await;
    let iv = server.create_interview().await;
    let (mut cand, _) = WsClient::connected(server.port, &iv.join_token, "candidate").await;
    let flood = cand
        .flood(
            Duration::from_millis(50),
            Duration::from_secs(16),
            |i| json!({"type": "heartbeat", "ref": format!("f{i}"), "data": {}}),
        )
        .await;
    let (code, at) = flood.close.unwrap_or_else(|| {
        panic!(
            "still open after 16 s over the rate ({} frames sent)",
            flood.sent
        )
    });
    assert_eq!(code, 1008, "policy close");
    assert!(
        at >= Duration::from_secs(5),
        "closed after {at:?}: the limit allows 10 s over the rate"
    );
}

/// Audio counts against the rate too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_audio_counts_against_the_rate() {
    let server = TestServer::start(&[("RATE_LIMIT_PER_SEC", "5"), ("RATE_LIMIT_BURST", "5")]).await;
    let iv = server.create_interview().await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    // The start turn is one frame.
    start_turn(&mut cand, &mut model).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for _ in 0..12 {
        cand.send_binary(audio_bytes(16)).await;
    }
    let e = cand.expect_error("RATE_LIMITED").await;
    check_error(&e, "RATE_LIMITED");
    cand.assert_no_frame_within(300).await;
}

/// Nothing heard for 2 heartbeat intervals: closed with 4006. Silence here
/// means not even reading, so tokio-tungstenite does not answer pings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_is_closed_with_4006() {
    let server = TestServer::start(&[("HEARTBEAT_INTERVAL_MS", "300")]).await;
    let iv = server.create_interview().await;
    let mut cand = WsClient::connect(server.port, &iv.join_token).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let (code, frames) = cand.expect_close_after_frames(STEP).await;
    assert_eq!(
        types(&frames),
        vec!["connected".to_string()],
        "nothing but `connected` before the close"
    );
    assert_eq!(
        frames[0]["data"]["heartbeatIntervalMs"], 300,
        "connected tells the configured interval"
    );
    assert_eq!(code, 4006, "heartbeat timeout");
}

/// A joined candidate that goes silent is closed with 4006 too (and the
/// interview is paused for disconnect, as for any drop).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_joined_candidate_is_closed_with_4006() {
    let server = TestServer::start(&[("HEARTBEAT_INTERVAL_MS", "500")]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "observer", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    // The observer keeps reading (so it answers pings) while the candidate
    // stays silent.
    let seen = rec.collect_until("interview-paused").await;
    assert!(seen.iter().any(|f| ty(f) == "interview-interrupted"));
    assert_eq!(seen.last().unwrap()["data"]["reason"], "disconnect");
    let (code, _) = cand.expect_close_after_frames(STEP).await;
    assert_eq!(code, 4006);
}

/// A client that keeps sending `heartbeat` (and never reads, so it sends no
/// pong) stays open past 2 intervals; so does one that only answers pings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_clients_stay_open_past_two_intervals() {
    let server = TestServer::start(&[("HEARTBEAT_INTERVAL_MS", "300")]).await;
    let iv = server.create_interview().await;

    // Text frames count as heard.
    let mut talker = WsClient::connect(server.port, &iv.join_token).await;
    for i in 0..15 {
        talker
            .send_ref("heartbeat", json!({}), &format!("t{i}"))
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hello = talker.expect_type("connected").await;
    assert_eq!(hello["data"]["heartbeatIntervalMs"], 300);
    for i in 0..15 {
        let ack = talker.expect_type("heartbeat-ack").await;
        assert_eq!(ack["ref"], format!("t{i}"));
    }
    talker.heartbeat_roundtrip("alive").await;

    // Pongs count as heard: only read (tokio-tungstenite answers pings).
    let (mut listener, _) =
        WsClient::connected(server.port, &recruiter_token(ORG), "listener").await;
    listener.assert_no_frame_within(1500).await;
    listener.heartbeat_roundtrip("alive").await;
}
