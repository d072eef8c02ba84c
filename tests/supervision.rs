//! The supervisor restarts a session that panicked, from the database: its
//! sockets are closed with 1011 (retryable), the session is rebuilt at once
//! with the same log, and clients resume with `lastSeq` losing nothing.
//! The panic is injected through the chaos hook (`CHAOS_HOOKS=1`).

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

async fn live_session(server: &TestServer, id: &str) -> Value {
    let deadline = Instant::now() + TURN;
    loop {
        let (code, body) = server
            .get(&format!("/v1/admin/sessions/{id}"), Some(&admin_token()))
            .await;
        if code == 200 {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "no live session for {id}: {code} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicked_session_is_rebuilt_and_clients_resume() {
    let server = TestServer::start(&[("CHAOS_HOOKS", "1")]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    answer_turn(&mut cand, &mut model, LONG_ANSWER).await;
    rec.collect_until_seq(cand.last_seq).await;
    let before = live_session(&server, &iv.id).await;
    let seen = rec.events();

    let path = format!("/v1/admin/sessions/{}/crash", iv.id);
    let (code, body) = server.post(&path, Some(&admin_token()), &json!({})).await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(
        cand.expect_close(STEP).await,
        1011,
        "candidate socket after the panic"
    );
    assert_eq!(
        rec.expect_close(STEP).await,
        1011,
        "observer socket after the panic"
    );

    // Rebuilt at once, not on the next join: a new actor, the same head.
    let deadline = Instant::now() + TURN;
    let after = loop {
        let now = live_session(&server, &iv.id).await;
        if now["sessionId"] != before["sessionId"] {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "the session was not rebuilt: {now}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        after["lastSeq"].as_u64() >= before["lastSeq"].as_u64(),
        "{after}"
    );

    // Everyone resumes without loss.
    let (mut obs, started) = join_observer(&server, &iv, None, "observer again", Some(0)).await;
    let head = started["data"]["lastSeq"].as_u64().unwrap();
    obs.collect_until_seq(head).await;
    assert_prefix(
        &obs.events(),
        &seen,
        "the rebuilt log starts with what was seen",
    );
    let (mut cand2, _) = join_candidate(&server, &iv, Some(cand.last_seq)).await;
    cand2.collect_until("interview-resumed").await;
    let (_, action) = answer_turn(&mut cand2, &mut model, LONG_ANSWER_2).await;
    assert_eq!(action, "next_question");
    obs.collect_until_seq(cand2.last_seq).await;
    assert_contiguous(&obs.events(), "observer across the restart");

    let (code, text) = server.metrics().await;
    assert_eq!(code, 200, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("interviewd_session_restarts_total ") && !l.ends_with(" 0")),
        "restart counted: {text}"
    );
}

/// Without the hook, the route does not exist for anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_hook_is_off_by_default() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (_cand, _) = join_candidate(&server, &iv, None).await;
    let path = format!("/v1/admin/sessions/{}/crash", iv.id);
    let (code, _) = server.post(&path, Some(&admin_token()), &json!({})).await;
    assert_eq!(code, 404);
}
