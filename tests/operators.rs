//! What operators and backend services get: live session actors
//! (`/v1/admin/sessions`), socket counts (`/v1/websocket/stats`), pushing a
//! notification to a user's sockets (`/v1/notifications`), passivation of
//! idle session actors, and the expiry sweep over passivated interviews.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

fn service_token() -> String {
    sign(&json!({"sub": "svc-mailer", "role": "service", "exp": now_secs() + 3600}))
}

/// Polls `GET /v1/admin/sessions/{id}` until it answers `status`.
async fn wait_for_session(server: &TestServer, id: &str, status: u16) -> Value {
    let deadline = Instant::now() + TURN;
    loop {
        let (code, body) = server
            .get(&format!("/v1/admin/sessions/{id}"), Some(&admin_token()))
            .await;
        if code == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "session {id}: still {code} {body}, waiting for {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_sees_live_session_actors() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    rec.collect_until_seq(cand.last_seq).await;

    let one = wait_for_session(&server, &iv.id, 200).await;
    assert_eq!(one["interviewId"], iv.id.as_str());
    assert_eq!(one["state"], "active");
    assert_eq!(one["candidateConnected"], true);
    assert_eq!(one["observers"], 1);
    assert_eq!(one["lastSeq"], rec.last_seq);
    assert!(one["node"].as_str().is_some_and(|n| !n.is_empty()), "{one}");
    assert!(
        one["sessionId"]
            .as_str()
            .is_some_and(|s| s.starts_with("s-")),
        "{one}"
    );

    let (code, all) = server.get("/v1/admin/sessions", Some(&admin_token())).await;
    assert_eq!(code, 200, "{all}");
    let listed: Vec<&Value> = all["sessions"].as_array().unwrap().iter().collect();
    assert!(
        listed.iter().any(|s| s["interviewId"] == iv.id.as_str()),
        "{all}"
    );

    // Recruiters and anonymous callers may not inspect actors.
    let (code, _) = server
        .get("/v1/admin/sessions", Some(&recruiter_token(ORG)))
        .await;
    assert_eq!(code, 403);
    let (code, _) = server.get("/v1/admin/sessions", None).await;
    assert_eq!(code, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_stats_count_sockets_and_sessions() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (_rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (_cand, _) = join_candidate(&server, &iv, None).await;
    let (_idle, _) = WsClient::connected(server.port, &admin_token(), "idle admin").await;

    let (code, stats) = server
        .get("/v1/websocket/stats", Some(&admin_token()))
        .await;
    assert_eq!(code, 200, "{stats}");
    assert_eq!(stats["connected"], 3, "{stats}");
    assert_eq!(stats["sessions"], 1, "{stats}");
    assert_rfc3339_utc(&stats["timestamp"], "timestamp");
    let (code, _) = server
        .get("/v1/websocket/stats", Some(&recruiter_token(ORG)))
        .await;
    assert_eq!(code, 403);
}

/// Every open socket of the principal (here: a candidate, named by its sub
/// and interview) gets a `notification` frame with `{event, payload}`;
/// others get nothing; only admins and services may push.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_reach_every_socket_of_the_user() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let sub = verify_token(&iv.join_token)["sub"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut joined, _) = join_candidate(&server, &iv, None).await;
    let (mut second, _) = WsClient::connected(server.port, &iv.join_token, "second tab").await;
    let (mut other, _) =
        WsClient::connected(server.port, &recruiter_token(ORG), "someone else").await;

    let body = json!({"userId": sub, "role": "candidate", "interviewId": iv.id,
                      "event": "interview-reminder", "payload": {"startsInMin": 5}});
    let (code, reply) = server
        .post("/v1/notifications", Some(&service_token()), &body)
        .await;
    assert_eq!(code, 202, "{reply}");
    assert_eq!(reply["delivered"], 2, "{reply}");
    for ws in [&mut joined, &mut second] {
        let frame = ws.expect_type("notification").await;
        assert_eq!(
            frame["data"],
            json!({"event": "interview-reminder", "payload": {"startsInMin": 5}})
        );
        assert!(
            frame.get("seq").is_none(),
            "a notification is not a session event: {frame}"
        );
    }
    other.assert_no_frame_within(300).await;

    let (code, reply) = server
        .post(
            "/v1/notifications",
            Some(&admin_token()),
            &json!({"userId": "nobody", "role": "admin", "event": "x"}),
        )
        .await;
    assert_eq!((code, reply["delivered"].clone()), (202, json!(0)));
    let (code, _) = server
        .post("/v1/notifications", Some(&recruiter_token(ORG)), &body)
        .await;
    assert_eq!(code, 403);
    let (code, _) = server
        .post("/v1/notifications", Some(&iv.join_token), &body)
        .await;
    assert_eq!(code, 403);
    let bad =
        json!({"userId": sub, "role": "candidate", "interviewId": iv.id, "event": "has spaces"});
    let (code, reply) = server
        .post("/v1/notifications", Some(&service_token()), &bad)
        .await;
    assert_eq!(code, 400, "{reply}");
}

/// An idle session actor stops; the next observer rebuilds it with the same
/// snapshot (state, progress, question, trust score, transcript, head).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passivation_stops_the_actor_and_keeps_the_snapshot() {
    let server = TestServer::start(&[
        ("SESSION_IDLE_PASSIVATE_MS", "300"),
        ("HEARTBEAT_INTERVAL_MS", "400"),
    ])
    .await;
    let iv = server.create_interview().await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    answer_turn(&mut cand, &mut model, LONG_ANSWER).await;
    cand.send(
        "proctor-event",
        json!({"type": "tab-switch", "severity": "high"}),
    )
    .await;
    cand.send("pause-interview", json!({})).await;
    cand.collect_until("interview-paused").await;

    // The candidate leaves (observers hear of it), then the snapshot.
    let (mut watcher, _) = join_observer(&server, &iv, None, "watcher", None).await;
    drop(cand);
    watcher.collect_until("interview-interrupted").await;
    let (before_ws, before) = join_observer(&server, &iv, None, "before", None).await;
    drop(before_ws);
    drop(watcher);
    wait_for_session(&server, &iv.id, 404).await;

    let (_after_ws, after) = join_observer(&server, &iv, None, "after", None).await;
    let (b, a) = (&before["data"], &after["data"]);
    assert_eq!(a["lastSeq"], b["lastSeq"]);
    assert_eq!(a["transcript"], b["transcript"]);
    assert_eq!(a["interview"], b["interview"]);
    for field in ["state", "isActive", "progress", "trustScore"] {
        assert_eq!(a["session"][field], b["session"][field], "session.{field}");
    }
    assert_eq!(a["session"]["state"], "paused");
    assert!(a["session"]["trustScore"].as_u64().unwrap() < 100);
    assert_ne!(
        a["session"]["id"], b["session"]["id"],
        "a new actor serves it"
    );
}

/// The expiry sweep reaches interviews whose actor is not running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passivated_created_interview_still_expires() {
    let server = TestServer::start(&[
        ("SESSION_IDLE_PASSIVATE_MS", "100"),
        ("HEARTBEAT_INTERVAL_MS", "200"),
        ("SESSION_TTL_SECS", "2"),
    ])
    .await;
    let iv = server.create_interview().await;
    let (cand, ready) = join_candidate(&server, &iv, None).await;
    assert_eq!(ready["data"]["status"], "CREATED");
    drop(cand);
    wait_for_session(&server, &iv.id, 404).await;
    let row = server.interview_row(&iv.id).await;
    assert_eq!(
        row["status"], "CREATED",
        "not expired before the TTL: {row}"
    );
    let row = server.wait_for_status(&iv.id, "EXPIRED").await;
    assert_rfc3339_utc(&row["endedAt"], "endedAt");
    let events = server.http_events(&iv.id, &admin_token(), None).await;
    assert_eq!(
        events.last().map(|e| e["type"].clone()),
        Some(json!("interview-expired"))
    );
}

/// `GET /metrics` shows every family, with live values from an interview.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_every_family_with_live_values() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    answer_turn(&mut cand, &mut model, LONG_ANSWER).await;
    cand.send(
        "proctor-event",
        json!({"type": "tab-switch", "severity": "low"}),
    )
    .await;
    rec.collect_until("trust-score-update").await;
    let (_again, _) = join_observer(&server, &iv, None, "resumer", Some(0)).await;

    let (code, text) = server.metrics().await;
    assert_eq!(code, 200, "{text}");
    let value = |series: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
    };
    assert_eq!(value(r#"interviewd_sessions{state="active"}"#), 1.0);
    assert_eq!(value(r#"interviewd_sockets{role="candidate"}"#), 1.0);
    assert_eq!(value(r#"interviewd_sockets{role="recruiter"}"#), 2.0);
    assert!(value(r#"interviewd_session_transitions_total{from="created",to="active"}"#) >= 1.0);
    assert!(value(r#"interviewd_frames_in_total{type="answer"}"#) >= 1.0);
    assert!(value(r#"interviewd_frames_out_total{type="ai-token"}"#) >= 2.0);
    assert!(value(r#"interviewd_resumes_total{recovered="true"}"#) >= 1.0);
    assert!(value("interviewd_replayed_events_total") >= 10.0);
    assert!(value("interviewd_llm_tokens_total") >= 2.0);
    assert!(value("interviewd_llm_first_token_seconds_count") >= 2.0);
    assert!(value("interviewd_llm_turn_seconds_count") >= 2.0);
    assert!(value(r#"interviewd_db_commit_seconds_count{outcome="ok"}"#) >= 1.0);
    assert!(value("interviewd_db_batch_events_sum") >= value("interviewd_db_batch_events_count"));
    assert!(value("interviewd_process_resident_memory_bytes") > 1_000_000.0);
    for zero in [
        r#"interviewd_rejected_frames_total{reason="rate"}"#,
        r#"interviewd_slow_consumers_total{role="recruiter"}"#,
        r#"interviewd_heartbeat_timeouts_total{role="candidate"}"#,
        r#"interviewd_llm_failures_total{kind="timeout"}"#,
        "interviewd_session_restarts_total",
    ] {
        assert_eq!(value(zero), 0.0, "{zero}");
    }
    assert!(
        text.contains("# HELP interviewd_db_commit_seconds"),
        "{text}"
    );
    assert!(
        text.contains(r#"interviewd_db_commit_seconds_bucket{outcome="ok",le="0.005"}"#),
        "{text}"
    );
}

/// `LOG_FORMAT=json`: one JSON object per line; a connection's lines carry
/// its `connection_id`, `role` and `interview_id`; no token is ever logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_connection_span_and_never_a_token() {
    let server =
        TestServer::start(&[("LOG_FORMAT", "json"), ("HEARTBEAT_INTERVAL_MS", "300")]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "observer", None).await;
    let (mut cand, hello) = WsClient::connected(server.port, &iv.join_token, "candidate").await;
    let connection_id = hello["connectionId"].as_str().unwrap().to_string();
    cand.join(&iv.id, None).await;
    // The candidate goes silent: its heartbeat timeout is logged in its span.
    rec.collect_until("interview-interrupted").await;
    let (code, _) = cand.expect_close_after_frames(STEP).await;
    assert_eq!(code, 4006);

    let log = server.dump_log();
    let json_lines: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| l.strip_prefix("[stderr] "))
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!json_lines.is_empty(), "{log}");
    let timeout = json_lines
        .iter()
        .find(|l| l["message"] == "heartbeat timeout")
        .unwrap_or_else(|| panic!("no heartbeat timeout line in\n{log}"));
    assert_eq!(
        timeout["span"]["connection_id"],
        connection_id.as_str(),
        "{timeout}"
    );
    assert_eq!(timeout["span"]["role"], "candidate", "{timeout}");
    assert_eq!(timeout["span"]["interview_id"], iv.id.as_str(), "{timeout}");
    assert!(!log.contains(&iv.join_token), "a token was logged");
    assert!(
        !log.contains(&recruiter_token(ORG)[..40]),
        "a token was logged"
    );
}

/// The TTL of a created interview runs from when it was created (the first
/// join), not from when it was invited: an old invitation still opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_invitation_is_not_expired_on_its_first_join() {
    let server =
        TestServer::start(&[("SESSION_TTL_SECS", "2"), ("HEARTBEAT_INTERVAL_MS", "200")]).await;
    let iv = server.create_interview().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(server.interview_row(&iv.id).await["status"], "PENDING");
    let (mut cand, ready) = join_candidate(&server, &iv, None).await;
    assert_eq!(ready["data"]["status"], "CREATED");
    // A second passes with no expiry, then the interview can start.
    let quiet = cand.collect_quiet(Duration::from_millis(1000)).await;
    assert!(
        !quiet.iter().any(|f| ty(f) == "interview-expired"),
        "{:?}",
        types(&quiet)
    );
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
}
