//! PROTOCOL section 7 (and the end/expiry rows of sections 3, 4 and 8): the
//! state machine as seen through the row's `status`, `end-interview` by the
//! candidate and by a recruiter, and idle expiry.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// PENDING → CREATED (join) → ACTIVE (start, startedAt) → PAUSED → ACTIVE →
/// COMPLETED (endedAt).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_follows_the_session_state() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let row = server.interview_row(&iv.id).await;
    assert_eq!(row["status"], "PENDING");
    assert_eq!(row["startedAt"], Value::Null);
    assert_eq!(row["endedAt"], Value::Null);

    let (mut cand, ready) = join_candidate(&server, &iv, None).await;
    assert_eq!(ready["data"]["status"], "CREATED");
    let row = server.wait_for_status(&iv.id, "CREATED").await;
    assert_eq!(row["startedAt"], Value::Null);

    let mut model = ScriptModel::new(&iv.questions);
    let turn = start_turn(&mut cand, &mut model).await;
    let row = server.wait_for_status(&iv.id, "ACTIVE").await;
    assert_eq!(
        parse_time(&row["startedAt"]).timestamp_millis(),
        parse_time(&turn[0]["data"]["startedAt"]).timestamp_millis()
    );
    let started_at = row["startedAt"].clone();
    assert_eq!(row["endedAt"], Value::Null);

    cand.send("pause-interview", json!({})).await;
    cand.expect_type("interview-paused").await;
    server.wait_for_status(&iv.id, "PAUSED").await;
    cand.send("resume-interview", json!({})).await;
    cand.expect_type("interview-resumed").await;
    let row = server.wait_for_status(&iv.id, "ACTIVE").await;
    assert_eq!(row["startedAt"], started_at);

    for a in [LONG_ANSWER, LONG_ANSWER_2, LONG_ANSWER_3] {
        answer_turn(&mut cand, &mut model, a).await;
    }
    assert!(model.completed.is_some());
    let row = server.wait_for_status(&iv.id, "COMPLETED").await;
    assert_rfc3339_utc(&row["endedAt"], "endedAt");
    assert_eq!(row["startedAt"], started_at);
    assert_eq!(row["lastSeq"], cand.last_seq);
}

/// The candidate ends the interview: interview-completed to everyone (the
/// summary covers what was answered), then every socket closes with 1000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_interview_by_the_candidate() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut adm, _) = join_observer(&server, &iv, Some(&admin_token()), "admin", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    answer_turn(&mut cand, &mut model, LONG_ANSWER).await;

    cand.send_ref("end-interview", json!({}), "end").await;
    let done = cand.expect_type("interview-completed").await;
    check_summary(&done["data"]["summary"], &[1]);
    for obs in [&mut rec, &mut adm] {
        let seen = obs.collect_until("interview-completed").await;
        assert_eq!(seen.last().unwrap()["seq"], done["seq"]);
        assert_eq!(seen.last().unwrap()["data"], done["data"]);
    }
    assert_eq!(cand.expect_close(STEP).await, 1000);
    assert_eq!(rec.expect_close(STEP).await, 1000);
    assert_eq!(adm.expect_close(STEP).await, 1000);

    let row = server.wait_for_status(&iv.id, "COMPLETED").await;
    assert_rfc3339_utc(&row["endedAt"], "endedAt");
    assert_eq!(row["summary"], done["data"]["summary"]);
}

/// A recruiter ends a paused interview with nothing answered: everyone gets
/// interview-completed with null scores, then 1000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_interview_by_a_recruiter_while_paused() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut adm, _) = join_observer(&server, &iv, Some(&admin_token()), "admin", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    cand.send("pause-interview", json!({})).await;
    cand.expect_type("interview-paused").await;
    rec.collect_until("interview-paused").await;
    adm.collect_until("interview-paused").await;

    rec.send_ref(
        "end-interview",
        json!({"reason": "candidate no-show"}),
        "end",
    )
    .await;
    let done = cand.expect_type("interview-completed").await;
    let s = &done["data"]["summary"];
    assert_eq!(s["overallScore"], Value::Null, "nothing answered: {s}");
    assert_eq!(s["recommendation"], Value::Null, "nothing answered: {s}");
    assert_eq!(s["questionsAnswered"], 0, "{s}");
    assert!(s["strengths"].is_array() && s["weaknesses"].is_array());
    assert!(s["categoryScores"].is_object());
    let r = rec.expect_type("interview-completed").await;
    let a = adm.expect_type("interview-completed").await;
    assert_eq!(
        keys(std::slice::from_ref(&r)),
        keys(std::slice::from_ref(&done))
    );
    assert_eq!(keys(&[a]), keys(&[done]));
    assert_eq!(cand.expect_close(STEP).await, 1000);
    assert_eq!(rec.expect_close(STEP).await, 1000);
    assert_eq!(adm.expect_close(STEP).await, 1000);
    server.wait_for_status(&iv.id, "COMPLETED").await;
}

/// An admin can end an active interview too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_interview_by_an_admin_while_active() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut adm, _) = join_observer(&server, &iv, Some(&admin_token()), "admin", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    adm.collect_until("question").await;
    adm.send("end-interview", json!({})).await;
    cand.expect_type("interview-completed").await;
    adm.expect_type("interview-completed").await;
    assert_eq!(cand.expect_close(STEP).await, 1000);
    assert_eq!(adm.expect_close(STEP).await, 1000);
}

/// A created interview left idle past SESSION_TTL_SECS expires: everyone gets
/// interview-expired; the row is EXPIRED with endedAt; the open candidate
/// socket is told SESSION_EXPIRED (or closed with 4003); a new join gets
/// INVALID_STATE + 4003; observing shows isLive false.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_created_interview_expires() {
    let server =
        TestServer::start(&[("SESSION_TTL_SECS", "1"), ("HEARTBEAT_INTERVAL_MS", "500")]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    expect_expiry(&server, &iv, &mut cand, &mut rec).await;
}

/// A paused interview left idle past SESSION_TTL_SECS expires too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_paused_interview_expires() {
    let server =
        TestServer::start(&[("SESSION_TTL_SECS", "1"), ("HEARTBEAT_INTERVAL_MS", "500")]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    cand.send("pause-interview", json!({})).await;
    let seen = cand
        .collect_until_any(&["interview-paused", "interview-expired"])
        .await;
    assert_eq!(ty(seen.last().unwrap()), "interview-paused");
    expect_expiry(&server, &iv, &mut cand, &mut rec).await;
}

async fn expect_expiry(
    server: &TestServer,
    iv: &Interview,
    cand: &mut WsClient,
    rec: &mut WsClient,
) {
    // Read both sockets at once, so that both keep answering pings.
    let (expired, seen) = tokio::join!(
        cand.collect_until("interview-expired"),
        rec.collect_until("interview-expired")
    );
    let expired = expired.last().unwrap().clone();
    assert_eq!(seen.last().unwrap()["seq"], expired["seq"]);
    let row = server.wait_for_status(&iv.id, "EXPIRED").await;
    assert_rfc3339_utc(&row["endedAt"], "endedAt");

    // The socket that was open when it expired.
    let _ = cand
        .try_send(tokio_tungstenite::tungstenite::Message::text(
            json!({"type": "start-interview", "data": {}, "ref": "late"}).to_string(),
        ))
        .await;
    match cand.next_incoming(STEP).await {
        Incoming::Frame(f) => {
            assert_eq!(ty(&f), "error", "{f}");
            assert_eq!(f["data"]["code"], "SESSION_EXPIRED", "{f}");
            check_error(&f, "SESSION_EXPIRED");
        }
        Incoming::Closed(code) => assert_eq!(code, 4003, "closed after expiry"),
        Incoming::Timeout => panic!("a command on an expired interview must be answered"),
    }

    // A new join.
    let (mut late, _) = WsClient::connected(server.port, &iv.join_token, "late candidate").await;
    late.send_ref("join-interview", json!({"interviewId": iv.id}), "j")
        .await;
    late.expect_error_ref("INVALID_STATE", "j").await;
    assert_eq!(late.expect_close(STEP).await, 4003);

    // Observing.
    let (mut obs, st) = join_observer(server, iv, None, "after expiry", None).await;
    assert_eq!(st["data"]["isLive"], false);
    assert_eq!(st["data"]["interview"]["status"], "EXPIRED");
    assert_eq!(st["data"]["session"]["state"], "expired");
    match obs.next_incoming(Duration::from_millis(400)).await {
        Incoming::Timeout | Incoming::Closed(1000) => {}
        other => panic!("no live events after expiry, got {other:?}"),
    }
}
