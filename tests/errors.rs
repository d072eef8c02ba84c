//! PROTOCOL sections 2 and 8: frame shape, `ref` echo, error codes reachable
//! over the socket, the order of checks (parse, role, state), and that a
//! client-caused error never closes the socket (except the join errors).

mod common;

use common::*;
use serde_json::{json, Value};

/// Not JSON, not an object, no `type`, unknown `type`, a type of the other
/// role, bad data: `INVALID_MESSAGE` each time, and the socket stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_messages_get_invalid_message_and_the_socket_stays_open() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut cand, _) = WsClient::connected(server.port, &iv.join_token, "candidate").await;

    cand.send_raw_text("this is not json").await;
    let e = cand.expect_error("INVALID_MESSAGE").await;
    assert!(
        e.get("ref").is_none() || e["ref"].is_null(),
        "no ref to echo: {e}"
    );
    cand.heartbeat_roundtrip("hb-1").await;

    cand.send_raw_text("[1,2,3]").await;
    cand.expect_error("INVALID_MESSAGE").await;
    cand.heartbeat_roundtrip("hb-2").await;

    cand.send_json(json!({"data": {}, "ref": "r-no-type"}))
        .await;
    cand.expect_error_ref("INVALID_MESSAGE", "r-no-type").await;
    cand.heartbeat_roundtrip("hb-3").await;

    cand.send_json(json!({"type": "dance", "data": {}, "ref": "r-unknown"}))
        .await;
    cand.expect_error_ref("INVALID_MESSAGE", "r-unknown").await;
    cand.heartbeat_roundtrip("hb-4").await;

    // Role comes before state: a recruiter's command from an unjoined
    // candidate is INVALID_MESSAGE, not INVALID_STATE.
    cand.send_ref(
        "observe-interview",
        json!({"interviewId": iv.id}),
        "r-role-1",
    )
    .await;
    cand.expect_error_ref("INVALID_MESSAGE", "r-role-1").await;
    cand.send_ref("stop-observing", json!({}), "r-role-2").await;
    cand.expect_error_ref("INVALID_MESSAGE", "r-role-2").await;
    cand.heartbeat_roundtrip("hb-5").await;

    // After joining, the same.
    cand.join(&iv.id, None).await;
    cand.send_ref(
        "observe-interview",
        json!({"interviewId": iv.id}),
        "r-role-3",
    )
    .await;
    cand.expect_error_ref("INVALID_MESSAGE", "r-role-3").await;
    // Bad data for a known type.
    cand.send_ref(
        "proctor-event",
        json!({"type": "tab-switch", "severity": "extreme"}),
        "r-sev",
    )
    .await;
    cand.expect_error_ref("INVALID_MESSAGE", "r-sev").await;
    cand.send_ref(
        "proctor-event",
        json!({"type": "telepathy", "severity": "low"}),
        "r-kind",
    )
    .await;
    cand.expect_error_ref("INVALID_MESSAGE", "r-kind").await;
    cand.send_ref("join-interview", json!({}), "r-no-id").await;
    cand.expect_error_ref("INVALID_MESSAGE", "r-no-id").await;
    cand.heartbeat_roundtrip("hb-6").await;

    // A recruiter sending candidate commands.
    let (mut rec, _) = WsClient::connected(server.port, &recruiter_token(ORG), "recruiter").await;
    for (i, (kind, data)) in [
        ("start-interview", json!({})),
        ("answer", json!({"text": "hello"})),
        ("join-interview", json!({"interviewId": iv.id})),
        (
            "proctor-event",
            json!({"type": "tab-switch", "severity": "low"}),
        ),
        ("pause-interview", json!({})),
    ]
    .into_iter()
    .enumerate()
    {
        let r = format!("rec-{i}");
        rec.send_ref(kind, data, &r).await;
        rec.expect_error_ref("INVALID_MESSAGE", &r).await;
    }
    rec.heartbeat_roundtrip("hb-rec").await;
    rec.observe(&iv.id, None).await;
    rec.send_ref("start-interview", json!({}), "rec-after")
        .await;
    rec.expect_error_ref("INVALID_MESSAGE", "rec-after").await;
    rec.heartbeat_roundtrip("hb-rec-2").await;
}

/// Before a join, every command but heartbeat/ping gets INVALID_STATE and the
/// socket stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_before_join_get_invalid_state() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut cand, _) = WsClient::connected(server.port, &iv.join_token, "candidate").await;

    let commands: Vec<(&str, Value)> = vec![
        ("start-interview", json!({})),
        ("answer", json!({"text": LONG_ANSWER})),
        (
            "audio-chunk",
            json!({"audioData": base64(&audio_bytes(32))}),
        ),
        ("response-complete", json!({"transcription": LONG_ANSWER})),
        (
            "proctor-event",
            json!({"type": "tab-switch", "severity": "low"}),
        ),
        ("pause-interview", json!({})),
        ("resume-interview", json!({})),
        ("end-interview", json!({})),
    ];
    for (i, (kind, data)) in commands.into_iter().enumerate() {
        let r = format!("pre-{i}");
        cand.send_ref(kind, data, &r).await;
        let e = cand.expect_error_ref("INVALID_STATE", &r).await;
        assert!(e.get("seq").is_none());
    }
    cand.heartbeat_roundtrip("hb").await;
    cand.send_ref("ping", json!({}), "p").await;
    let pong = cand.expect_type("pong").await;
    assert_eq!(pong["ref"], "p");
    assert_rfc3339_utc(&pong["data"]["timestamp"], "pong.data.timestamp");

    let (mut rec, _) = WsClient::connected(server.port, &recruiter_token(ORG), "recruiter").await;
    rec.send_ref("stop-observing", json!({}), "s").await;
    rec.expect_error_ref("INVALID_STATE", "s").await;
    rec.send_ref("end-interview", json!({}), "e").await;
    rec.expect_error_ref("INVALID_STATE", "e").await;
    rec.heartbeat_roundtrip("hb").await;

    // Nothing happened to the interview.
    let row = server.interview_row(&iv.id).await;
    assert_eq!(row["status"], "PENDING", "nobody joined yet: {row}");
    assert_eq!(row["lastSeq"], 0, "no event was logged: {row}");
}

/// Commands the state does not allow get INVALID_STATE and change nothing:
/// answer before start, pause/resume/end in `created`, a second start, resume
/// while active.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_the_state_does_not_allow_get_invalid_state() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "observer", None).await;
    let (mut cand, ready) = join_candidate(&server, &iv, None).await;
    assert_eq!(ready["data"]["status"], "CREATED", "{ready}");
    rec.expect_type("candidate-joined").await;

    for (i, kind) in [
        "answer",
        "pause-interview",
        "resume-interview",
        "end-interview",
    ]
    .into_iter()
    .enumerate()
    {
        let r = format!("created-{i}");
        let data = if kind == "answer" {
            json!({"text": LONG_ANSWER})
        } else {
            json!({})
        };
        cand.send_ref(kind, data, &r).await;
        cand.expect_error_ref("INVALID_STATE", &r).await;
    }
    rec.send_ref("end-interview", json!({}), "rec-end").await;
    rec.expect_error_ref("INVALID_STATE", "rec-end").await;
    // Nothing was logged.
    rec.assert_no_frame_within(300).await;
    cand.assert_no_frame_within(100).await;
    let row = server.wait_for_status(&iv.id, "CREATED").await;
    assert_eq!(row["lastSeq"], rec.last_seq, "{row}");

    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    cand.send_ref("start-interview", json!({}), "again").await;
    cand.expect_error_ref("INVALID_STATE", "again").await;
    cand.send_ref("resume-interview", json!({}), "resume-active")
        .await;
    cand.expect_error_ref("INVALID_STATE", "resume-active")
        .await;
    cand.assert_no_frame_within(300).await;

    rec.collect_until("question").await;
    rec.assert_no_frame_within(200).await;
    let row = server.wait_for_status(&iv.id, "ACTIVE").await;
    assert_eq!(
        row["lastSeq"], rec.last_seq,
        "a refused command logs nothing: {row}"
    );

    // The interview goes on normally.
    answer_turn(&mut cand, &mut model, LONG_ANSWER).await;
}

/// A second join or observe on a bound socket: ALREADY_JOINED, socket open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_join_on_the_same_socket_is_already_joined() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;

    // The observer first, so the candidate's `candidate-joined` reaches it
    // live before the checks below (on PostgreSQL a commit is slow enough
    // for it to land between any two frames otherwise).
    let (mut rec, _) = join_observer(&server, &iv, None, "observer", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    rec.collect_until("candidate-joined").await;
    cand.send_ref("join-interview", json!({"interviewId": iv.id}), "j2")
        .await;
    cand.expect_error_ref("ALREADY_JOINED", "j2").await;
    cand.heartbeat_roundtrip("hb").await;

    rec.send_ref("observe-interview", json!({"interviewId": iv.id}), "o2")
        .await;
    rec.expect_error_ref("ALREADY_JOINED", "o2").await;
    rec.heartbeat_roundtrip("hb").await;

    // Both are still bound and working.
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    // The candidate's own `candidate-joined` may still have been committing
    // when the observer joined; it then arrives live, which is allowed.
    let seen: Vec<Value> = rec
        .collect_until("question")
        .await
        .into_iter()
        .filter(|e| ty(e) != "candidate-joined")
        .collect();
    assert_eq!(ty(&seen[0]), "interview-started", "{:?}", types(&seen));
}

/// A candidate joining a completed interview: INVALID_STATE, then 4003.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidate_joining_a_completed_interview_gets_4003() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    cand.send("end-interview", json!({})).await;
    cand.collect_until("interview-completed").await;
    assert_eq!(cand.expect_close(STEP).await, 1000);
    server.wait_for_status(&iv.id, "COMPLETED").await;

    for last_seq in [None, Some(0u64), Some(3)] {
        let (mut again, _) =
            WsClient::connected(server.port, &iv.join_token, "late candidate").await;
        let mut data = json!({"interviewId": iv.id});
        if let Some(s) = last_seq {
            data["lastSeq"] = json!(s);
        }
        again.send_ref("join-interview", data, "late").await;
        again.expect_error_ref("INVALID_STATE", "late").await;
        assert_eq!(again.expect_close(STEP).await, 4003, "lastSeq {last_seq:?}");
    }
}

/// `heartbeat` → `heartbeat-ack {timestamp}`, `ping` → `pong {timestamp}`,
/// with `ref`, in every state and for every role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_and_ping_are_answered_in_every_state() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;

    async fn both(ws: &mut WsClient, tag: &str) {
        ws.heartbeat_roundtrip(&format!("hb-{tag}")).await;
        ws.send_ref("ping", json!({}), &format!("ping-{tag}")).await;
        let pong = ws.expect_type("pong").await;
        assert_eq!(pong["ref"], format!("ping-{tag}"), "{pong}");
        assert_rfc3339_utc(&pong["data"]["timestamp"], "pong.data.timestamp");
        // Without ref: still answered, and no ref invented.
        ws.send("heartbeat", json!({})).await;
        let ack = ws.expect_type("heartbeat-ack").await;
        assert!(ack.get("ref").is_none() || ack["ref"].is_null(), "{ack}");
        // `data` may be omitted.
        ws.send_json(json!({"type": "ping"})).await;
        ws.expect_type("pong").await;
    }

    let (mut cand, _) = WsClient::connected(server.port, &iv.join_token, "candidate").await;
    both(&mut cand, "unjoined").await;
    let (mut rec, _) = WsClient::connected(server.port, &recruiter_token(ORG), "recruiter").await;
    both(&mut rec, "unobserving").await;
    rec.observe(&iv.id, None).await;
    both(&mut rec, "observing").await;

    cand.join(&iv.id, None).await;
    both(&mut cand, "created").await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    both(&mut cand, "active").await;
    cand.send_ref("pause-interview", json!({}), "pause").await;
    let paused = cand.expect_type("interview-paused").await;
    assert_eq!(paused["data"]["reason"], "candidate");
    both(&mut cand, "paused").await;
}

/// Replies carry no seq and session events do; `ref` is echoed on replies;
/// `connected` is the first frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_have_no_seq_and_events_do() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let mut cand = WsClient::connect(server.port, &iv.join_token).await;
    let first = cand.recv().await;
    assert_eq!(
        ty(&first),
        "connected",
        "the first server frame is `connected`"
    );
    let ready = cand.join(&iv.id, None).await;
    assert!(ready.get("seq").is_none());
    cand.send_ref("start-interview", json!({}), "start-ref")
        .await;
    let turn = cand.collect_until("question").await;
    for f in &turn {
        assert!(
            f["seq"].as_u64().is_some_and(|s| s >= 1),
            "session event without seq: {f}"
        );
    }
    let ack = cand.heartbeat_roundtrip("x").await;
    assert!(ack.get("seq").is_none());
    // Every frame received in this test passed the harness's shape check:
    // type, ts (RFC 3339 UTC, Z), object data, seq only on events.
    assert!(cand.frames.len() >= 8);
}

/// With an LLM that cannot be reached, the candidate is told AI_UNAVAILABLE
/// (retryable) and the interview goes on without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_unavailable_is_reported_and_the_interview_goes_on() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let llm = format!("http://127.0.0.1:{dead_port}/v1");
    let server = TestServer::start(&[
        ("LLM_BASE_URL", llm.as_str()),
        ("LLM_API_KEY", "test-key"),
        ("LLM_MODEL", "test-model"),
        ("LLM_TIMEOUT_MS", "2000"),
    ])
    .await;
    let iv = server.create_interview().await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;

    cand.send("start-interview", json!({})).await;
    let turn = cand.collect_until("question").await;
    let errors: Vec<&Value> = turn.iter().filter(|f| ty(f) == "error").collect();
    assert!(
        !errors.is_empty(),
        "the candidate must be told the LLM failed: {:?}",
        types(&turn)
    );
    for e in &errors {
        assert_eq!(e["data"]["code"], "AI_UNAVAILABLE", "{e}");
        check_error(e, "AI_UNAVAILABLE");
    }
    let q = turn.last().unwrap();
    assert_eq!(
        q["data"]["text"], iv.questions[0].0,
        "the interview goes on: {q}"
    );
    assert!(turn.iter().any(|f| ty(f) == "interview-started"));

    cand.send("answer", json!({"text": LONG_ANSWER})).await;
    let turn = cand
        .collect_until_any(&["question", "interview-completed"])
        .await;
    let evaluation = turn
        .iter()
        .find(|f| ty(f) == "evaluation")
        .unwrap_or_else(|| panic!("the answer is still evaluated: {:?}", types(&turn)));
    assert!(evaluation["data"]["score"]
        .as_u64()
        .is_some_and(|s| s <= 100));
    assert_eq!(
        turn.last().unwrap()["data"]["text"],
        iv.questions[1].0,
        "the next template question follows"
    );
}
