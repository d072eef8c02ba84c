//! What one tenant, one role or one client must not get from the server:
//! another organisation's notifications, a `wsUrl` built from a header the
//! client wrote.

mod common;

use common::*;
use serde_json::{json, Value};

fn service_token() -> String {
    sign(&json!({"sub": "svc-mailer", "role": "service", "exp": now_secs() + 3600}))
}

/// Creates an interview in `ORG` whose candidate's `sub` is `candidate_id`:
/// (id, join token).
async fn interview_for(server: &TestServer, candidate_id: &str) -> (String, String) {
    let body = json!({
        "candidateName": "Ada",
        "candidateId": candidate_id,
        "title": "Backend engineer",
        "questions": [{"text": "How would you design a rate limiter?", "type": "TECHNICAL"}],
    });
    let (status, v) = server
        .post("/v1/interviews", Some(&recruiter_token(ORG)), &body)
        .await;
    assert_eq!(status, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    let token = v["joinToken"].as_str().expect("joinToken").to_string();
    assert_eq!(verify_token(&token)["sub"], candidate_id);
    (id, token)
}

async fn notify(server: &TestServer, body: &Value) -> (u16, Value) {
    server
        .post("/v1/notifications", Some(&service_token()), body)
        .await
}

/// A recruiter of org-1 may give its candidate the `sub` of a recruiter of
/// org-2. A notification names a principal (role, tenant, sub), so each of
/// the two gets only its own; a `userId` alone is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_stay_inside_their_tenant() {
    let server = TestServer::start(&[]).await;
    let (mut org2_recruiter, hello) =
        WsClient::connected(server.port, &recruiter_token(OTHER_ORG), "org-2 recruiter").await;
    let shared = hello["userId"].as_str().expect("userId").to_string();
    let (id, join_token) = interview_for(&server, &shared).await;
    let (mut candidate, hello) =
        WsClient::connected(server.port, &join_token, "org-1 candidate").await;
    assert_eq!(hello["userId"], shared.as_str(), "{hello}");

    // To the org-2 recruiter: it alone gets it.
    let (code, reply) = notify(
        &server,
        &json!({"userId": shared, "role": "recruiter", "orgId": OTHER_ORG,
                "event": "org-2-news", "payload": {"n": 1}}),
    )
    .await;
    assert_eq!(
        (code, reply["delivered"].clone()),
        (202, json!(1)),
        "{reply}"
    );
    let frame = org2_recruiter.expect_type("notification").await;
    assert_eq!(
        frame["data"],
        json!({"event": "org-2-news", "payload": {"n": 1}})
    );
    candidate.assert_no_frame_within(300).await;

    // And the other way round: the candidate of org-1's interview alone.
    let (code, reply) = notify(
        &server,
        &json!({"userId": shared, "role": "candidate", "interviewId": id,
                "event": "interview-reminder"}),
    )
    .await;
    assert_eq!(
        (code, reply["delivered"].clone()),
        (202, json!(1)),
        "{reply}"
    );
    let frame = candidate.expect_type("notification").await;
    assert_eq!(
        frame["data"],
        json!({"event": "interview-reminder", "payload": {}})
    );
    org2_recruiter.assert_no_frame_within(300).await;

    // The same sub in another tenant or role is nobody here.
    for nobody in [
        json!({"userId": shared, "role": "recruiter", "orgId": ORG, "event": "x"}),
        json!({"userId": shared, "role": "candidate", "interviewId": "no-such-interview", "event": "x"}),
        json!({"userId": shared, "role": "admin", "event": "x"}),
        json!({"userId": shared, "role": "service", "event": "x"}),
    ] {
        let (code, reply) = notify(&server, &nobody).await;
        assert_eq!(
            (code, reply["delivered"].clone()),
            (202, json!(0)),
            "{nobody}: {reply}"
        );
    }
    candidate.assert_no_frame_within(200).await;
    org2_recruiter.assert_no_frame_within(200).await;

    // A principal that is not fully named is refused, naming what is missing.
    for (body, missing) in [
        (json!({"userId": shared, "event": "x"}), "`role`"),
        (
            json!({"userId": shared, "role": "recruiter", "event": "x"}),
            "`orgId`",
        ),
        (
            json!({"userId": shared, "role": "candidate", "event": "x"}),
            "`interviewId`",
        ),
        (
            json!({"userId": shared, "role": "candidate", "interviewId": id, "orgId": ORG, "event": "x"}),
            "`orgId`",
        ),
        (
            json!({"userId": shared, "role": "admin", "orgId": ORG, "event": "x"}),
            "`orgId`",
        ),
        (
            json!({"userId": shared, "role": "boss", "event": "x"}),
            "role",
        ),
        (
            json!({"userId": " ", "role": "admin", "event": "x"}),
            "`userId`",
        ),
    ] {
        let (code, reply) = notify(&server, &body).await;
        assert_eq!(code, 400, "{body}: {reply}");
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(missing), "{body}: {reply}");
    }
}

/// Without `PUBLIC_URL`, `wsUrl` is built from the address the request
/// arrived on, never from the client's `Host` header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_url_ignores_the_host_header() {
    let server = TestServer::start(&[]).await;
    let http = reqwest::Client::builder()
        .timeout(STEP)
        .build()
        .expect("an HTTP client");
    let body = json!({
        "candidateName": "Ada",
        "title": "Backend engineer",
        "questions": [{"text": "Q?"}],
    });
    for host in ["evil.example", "evil.example:3001"] {
        let reply = http
            .post(server.url("/v1/interviews"))
            .header("host", host)
            .bearer_auth(recruiter_token(ORG))
            .json(&body)
            .send()
            .await
            .expect("POST /v1/interviews");
        assert_eq!(reply.status().as_u16(), 201);
        let v: Value = reply.json().await.expect("a JSON reply");
        let ws_url = v["wsUrl"].as_str().expect("wsUrl");
        assert!(!ws_url.contains("evil.example"), "Host: {host} → {ws_url}");
        let token = v["joinToken"].as_str().expect("joinToken");
        assert_eq!(
            ws_url,
            format!("ws://127.0.0.1:{}/interview?token={token}", server.port),
            "the address the request arrived on"
        );
    }

    // PUBLIC_URL wins, whatever the request says.
    let public = TestServer::start(&[("PUBLIC_URL", "https://interviews.example.com/")]).await;
    let reply = http
        .post(public.url("/v1/interviews"))
        .header("host", "evil.example")
        .bearer_auth(recruiter_token(ORG))
        .json(&body)
        .send()
        .await
        .expect("POST /v1/interviews");
    let v: Value = reply.json().await.expect("a JSON reply");
    let ws_url = v["wsUrl"].as_str().expect("wsUrl");
    assert!(
        ws_url.starts_with("wss://interviews.example.com/interview?token="),
        "{ws_url}"
    );
}
