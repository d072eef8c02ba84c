//! PROTOCOL section 9 (and section 1's claims as HTTP sees them): creating
//! and reading interviews, access rules, JSON errors, the events endpoint.

mod common;

use common::*;
use serde_json::{json, Value};

fn body(questions: Value) -> Value {
    json!({
        "candidateName": "Ada",
        "title": "Backend engineer",
        "questions": questions,
        "durationMinutes": 30,
    })
}

fn assert_json_error(status: u16, v: &Value, expected_status: u16, code: Option<&str>, what: &str) {
    assert_eq!(status, expected_status, "{what}: {v}");
    let c = v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: errors are {{error:{{code,message}}}}: {v}"));
    assert!(!c.is_empty(), "{what}: {v}");
    assert!(v["error"]["message"].is_string(), "{what}: {v}");
    if let Some(code) = code {
        assert_eq!(c, code, "{what}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness() {
    let server = TestServer::start(&[]).await;
    assert_eq!(server.get("/healthz", None).await.0, 200);
    assert_eq!(server.get("/readyz", None).await.0, 200);
}

/// 201 with {id, status: PENDING, joinToken, wsUrl}; the join token is a
/// candidate JWT for that interview whose sub is candidateId; GET shows the row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_read_an_interview() {
    let server = TestServer::start(&[]).await;
    let mut b = body(json!([
        {"text": "Q one?", "type": "TECHNICAL"},
        {"text": "Q two?"}
    ]));
    b["candidateId"] = json!("cand-42");
    let (status, v) = server
        .post("/v1/interviews", Some(&recruiter_token(ORG)), &b)
        .await;
    assert_eq!(status, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    assert!(!id.is_empty());
    assert_eq!(v["status"], "PENDING");
    let ws_url = v["wsUrl"].as_str().expect("wsUrl");
    assert!(
        (ws_url.starts_with("ws://") || ws_url.starts_with("wss://"))
            && ws_url.contains("/interview"),
        "wsUrl: {ws_url}"
    );
    let claims = verify_token(v["joinToken"].as_str().expect("joinToken"));
    assert_eq!(claims["role"], "candidate", "{claims}");
    assert_eq!(claims["interviewId"], id, "{claims}");
    assert_eq!(claims["sub"], "cand-42", "{claims}");
    assert!(claims["exp"].as_u64().unwrap() > now_secs());

    let row = server.interview_row(&id).await;
    assert_eq!(row["id"], id);
    assert_eq!(row["title"], "Backend engineer");
    assert_eq!(row["candidateName"], "Ada");
    assert_eq!(row["candidateId"], "cand-42");
    assert_eq!(row["orgId"], ORG);
    assert_eq!(row["status"], "PENDING");
    assert_rfc3339_utc(&row["createdAt"], "createdAt");
    assert_eq!(row["startedAt"], Value::Null);
    assert_eq!(row["endedAt"], Value::Null);
    assert_eq!(row["progress"]["totalQuestions"], 2, "{row}");
    assert_eq!(row["progress"]["answered"], 0, "{row}");
    assert_eq!(row["trustScore"], 100, "{row}");
    assert_eq!(row["summary"], Value::Null, "{row}");
    assert_eq!(row["lastSeq"], 0, "{row}");

    // Without candidateId: a generated one, the same in the token and the row.
    let (status, v) = server
        .post(
            "/v1/interviews",
            Some(&recruiter_token(ORG)),
            &body(json!([{"text": "Q?"}])),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let claims = verify_token(v["joinToken"].as_str().unwrap());
    let sub = claims["sub"].as_str().expect("sub");
    assert!(!sub.is_empty());
    let row = server.interview_row(v["id"].as_str().unwrap()).await;
    assert_eq!(row["candidateId"], sub);

    // The join token works on the socket.
    let (mut ws, hello) =
        WsClient::connected(server.port, v["joinToken"].as_str().unwrap(), "candidate").await;
    assert_eq!(hello["userId"], sub);
    ws.join(v["id"].as_str().unwrap(), None).await;

    // Its candidate may read it too.
    let (status, own) = server
        .get(
            &format!("/v1/interviews/{}", v["id"].as_str().unwrap()),
            Some(v["joinToken"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, 200, "{own}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_bodies_are_400() {
    let server = TestServer::start(&[]).await;
    let token = recruiter_token(ORG);
    let mut no_name = body(json!([{"text": "Q?"}]));
    no_name.as_object_mut().unwrap().remove("candidateName");
    let mut no_title = body(json!([{"text": "Q?"}]));
    no_title.as_object_mut().unwrap().remove("title");
    let mut no_questions = body(json!([]));
    no_questions.as_object_mut().unwrap().remove("questions");
    let cases = vec![
        ("no candidateName", no_name.to_string()),
        ("no title", no_title.to_string()),
        ("no questions field", no_questions.to_string()),
        ("empty questions", body(json!([])).to_string()),
        (
            "question without text",
            body(json!([{"type": "TECHNICAL"}])).to_string(),
        ),
        (
            "question with empty text",
            body(json!([{"text": ""}])).to_string(),
        ),
        ("questions not an array", body(json!("Q?")).to_string()),
        ("not JSON", "{not json".to_string()),
    ];
    for (what, raw) in cases {
        let (status, v) = server.post_raw("/v1/interviews", Some(&token), raw).await;
        assert_json_error(status, &v, 400, None, what);
    }
    // An admin must name the organisation.
    let (status, v) = server
        .post(
            "/v1/interviews",
            Some(&admin_token()),
            &body(json!([{"text": "Q?"}])),
        )
        .await;
    assert_json_error(status, &v, 400, None, "admin without orgId");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_access_rules() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let path = format!("/v1/interviews/{}", iv.id);
    let create = body(json!([{"text": "Q?"}]));

    // 401: none, garbage, expired, wrong key, alg none.
    let expired =
        sign(&json!({"sub": "r", "role": "recruiter", "orgId": ORG, "exp": now_secs() - 3600}));
    let wrong_key = sign_with(
        jsonwebtoken::Algorithm::HS256,
        "another-key-entirely",
        &json!({"sub": "r", "role": "recruiter", "orgId": ORG, "exp": now_secs() + 3600}),
    );
    let none = unsigned_token(&json!({"sub": "r", "role": "admin", "exp": now_secs() + 3600}));
    let (s, v) = server.post("/v1/interviews", None, &create).await;
    assert_json_error(s, &v, 401, Some("UNAUTHORIZED"), "POST without a token");
    let (s, v) = server.get(&path, None).await;
    assert_json_error(s, &v, 401, Some("UNAUTHORIZED"), "GET without a token");
    for (what, t) in [
        ("garbage", "garbage".to_string()),
        ("expired", expired),
        ("wrong key", wrong_key),
        ("alg none", none),
    ] {
        let (s, v) = server.get(&path, Some(&t)).await;
        assert_json_error(s, &v, 401, Some("UNAUTHORIZED"), what);
        let (s, v) = server.post("/v1/interviews", Some(&t), &create).await;
        assert_json_error(s, &v, 401, Some("UNAUTHORIZED"), what);
    }

    // 403: a candidate cannot create; other org cannot read; a candidate of
    // another interview cannot read.
    let (s, v) = server
        .post("/v1/interviews", Some(&iv.join_token), &create)
        .await;
    assert_json_error(s, &v, 403, Some("ACCESS_DENIED"), "candidate creating");
    let (s, v) = server.get(&path, Some(&recruiter_token(OTHER_ORG))).await;
    assert_json_error(s, &v, 403, Some("ACCESS_DENIED"), "other org reading");
    let other = server.create_interview().await;
    let (s, v) = server.get(&path, Some(&other.join_token)).await;
    assert_json_error(
        s,
        &v,
        403,
        Some("ACCESS_DENIED"),
        "other interview's candidate reading",
    );
    let (s, v) = server
        .get(
            &format!("{path}/events?after=0"),
            Some(&recruiter_token(OTHER_ORG)),
        )
        .await;
    assert_json_error(
        s,
        &v,
        403,
        Some("ACCESS_DENIED"),
        "other org reading events",
    );

    // 404.
    let (s, v) = server
        .get(
            "/v1/interviews/no-such-interview",
            Some(&recruiter_token(ORG)),
        )
        .await;
    assert_json_error(s, &v, 404, Some("INTERVIEW_NOT_FOUND"), "unknown interview");
    let (s, v) = server
        .get(
            "/v1/interviews/no-such-interview/events?after=0",
            Some(&admin_token()),
        )
        .await;
    assert_json_error(
        s,
        &v,
        404,
        Some("INTERVIEW_NOT_FOUND"),
        "unknown interview's events",
    );

    // 200 for its org, an admin, its candidate.
    assert_eq!(server.get(&path, Some(&recruiter_token(ORG))).await.0, 200);
    assert_eq!(server.get(&path, Some(&admin_token())).await.0, 200);
    assert_eq!(server.get(&path, Some(&iv.join_token)).await.0, 200);

    // An admin creates in the organisation it names.
    let mut b = create.clone();
    b["orgId"] = json!("org-9");
    let (s, v) = server
        .post("/v1/interviews", Some(&admin_token()), &b)
        .await;
    assert_eq!(s, 201, "{v}");
    let p9 = format!("/v1/interviews/{}", v["id"].as_str().unwrap());
    let (s, row) = server.get(&p9, Some(&recruiter_token("org-9"))).await;
    assert_eq!(s, 200, "{row}");
    assert_eq!(row["orgId"], "org-9");
    assert_eq!(server.get(&p9, Some(&recruiter_token(ORG))).await.0, 403);
}

/// The events endpoint: the log in order, `after`, `limit` paging; a
/// candidate's token does not get observer-only events. The transcript
/// endpoint matches the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_endpoint_follows_the_log_and_hides_observer_events_from_candidates() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    cand.send(
        "proctor-event",
        json!({"type": "copy-paste", "severity": "high", "message": "pasted"}),
    )
    .await;
    answer_turn(&mut cand, &mut model, LONG_ANSWER).await;
    rec.collect_until_seq(cand.last_seq).await;
    rec.assert_no_frame_within(200).await;
    let log = rec.events();
    assert!(log.iter().any(is_observer_only));

    let all = server
        .http_events(&iv.id, &recruiter_token(ORG), None)
        .await;
    assert_same_events(&all, &log, "GET events as the recruiter");
    for e in &all {
        assert_rfc3339_utc(&e["ts"], "event ts");
    }
    let admin = server.http_events(&iv.id, &admin_token(), None).await;
    assert_same_events(&admin, &log, "GET events as an admin");

    let paged = server
        .http_events(&iv.id, &recruiter_token(ORG), Some(3))
        .await;
    assert_same_events(&paged, &log, "GET events 3 at a time");
    let (s, first) = server
        .get(
            &format!("/v1/interviews/{}/events?after=0&limit=3", iv.id),
            Some(&recruiter_token(ORG)),
        )
        .await;
    assert_eq!(s, 200);
    assert_same_events(first["events"].as_array().unwrap(), &log[..3], "first page");
    assert!(!first["next"].is_null(), "more pages follow: {first}");

    let after = 5u64;
    let (s, tail) = server
        .get(
            &format!("/v1/interviews/{}/events?after={after}", iv.id),
            Some(&recruiter_token(ORG)),
        )
        .await;
    assert_eq!(s, 200);
    let expected: Vec<Value> = log.iter().filter(|e| seq_of(e) > after).cloned().collect();
    assert_same_events(tail["events"].as_array().unwrap(), &expected, "after=5");

    let mine = server.http_events(&iv.id, &iv.join_token, None).await;
    assert_same_events(
        &mine,
        &candidate_visible(&log),
        "GET events as the candidate",
    );

    let (s, t) = server
        .get(
            &format!("/v1/interviews/{}/transcript", iv.id),
            Some(&recruiter_token(ORG)),
        )
        .await;
    assert_eq!(s, 200, "{t}");
    let entries: Vec<(String, String, u64)> = t["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("transcript entries: {t}"))
        .iter()
        .map(|e| {
            assert_rfc3339_utc(&e["ts"], "transcript ts");
            (
                e["speaker"].as_str().unwrap_or_default().to_string(),
                e["text"].as_str().unwrap_or_default().to_string(),
                e["seq"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(entries, transcript_from_events(&log));
}
