//! Graceful drain (SIGTERM): stop accepting, commit what is in flight, pause
//! active interviews (persisted), close every socket with 1012, exit within
//! DRAIN_TIMEOUT_MS; after the restart clients resume with `lastSeq`.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_pauses_closes_with_1012_and_clients_resume() {
    let mut server = TestServer::start(&[
        ("DRAIN_TIMEOUT_MS", "5000"),
        ("SCRIPTED_WORD_DELAY_MS", "20"),
    ])
    .await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let (mut idle, _) = WsClient::connected(server.port, &admin_token(), "idle admin").await;
    cand.send("start-interview", json!({})).await;
    // Mid-message: a few tokens are out.
    let mut tokens = 0;
    while tokens < 3 {
        if ty(&cand.recv().await) == "ai-token" {
            tokens += 1;
        }
    }

    let exit = server.terminate(Duration::from_secs(15)).await;
    let (cand_code, cand_tail) = cand.expect_close_after_frames(STEP).await;
    let (rec_code, _) = rec.expect_close_after_frames(STEP).await;
    let (idle_code, _) = idle.expect_close_after_frames(STEP).await;
    assert_eq!((cand_code, rec_code, idle_code), (1012, 1012, 1012));
    assert_eq!(
        exit,
        Some(0),
        "a drained server exits cleanly\n{}",
        server.dump_log()
    );
    // The open message was closed as interrupted and the pause was sent.
    let kinds: Vec<&str> = cand_tail.iter().map(ty).collect();
    assert!(kinds.contains(&"ai-stream-end"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"interview-paused"), "{kinds:?}");
    let end = cand_tail.iter().find(|f| ty(f) == "ai-stream-end").unwrap();
    assert_eq!(end["data"]["interrupted"], true, "{end}");
    let paused = cand_tail.last().unwrap();
    assert_eq!(paused["data"]["reason"], "server");

    // The pause is durable, and everyone resumes.
    server.restart_same_db().await;
    assert_eq!(server.interview_row(&iv.id).await["status"], "PAUSED");
    let (mut rec2, _) =
        join_observer(&server, &iv, None, "recruiter again", Some(rec.last_seq)).await;
    let (mut cand2, ready) = join_candidate(&server, &iv, Some(cand.last_seq)).await;
    assert_eq!(ready["data"]["recovered"], true);
    let resumed = cand2.collect_until("question").await;
    assert_eq!(
        ty(&resumed[0]),
        "interview-resumed",
        "{:?}",
        types(&resumed)
    );
    rec2.collect_until_seq(cand2.last_seq).await;
    let mut all = rec.events();
    all.extend(rec2.events());
    assert_contiguous(&all, "observer across the drain and restart");
}

/// A SIGTERM that comes the moment the port is announced still drains and
/// exits 0: the handler is installed before `listening on` is printed, so
/// the signal's default action (death, no drain) never applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_right_after_listening_still_drains() {
    for round in 0..3 {
        let mut server = TestServer::start(&[]).await;
        let exit = server.terminate(Duration::from_secs(15)).await;
        assert_eq!(exit, Some(0), "round {round}: exit after an early SIGTERM");
    }
}
