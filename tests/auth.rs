//! PROTOCOL section 1: credentials on the WebSocket, and the access checks of
//! `join-interview` / `observe-interview` (section 8's join errors).

mod common;

use common::*;
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};

fn claims(role: &str) -> Value {
    json!({"sub": "u-1", "role": role, "exp": now_secs() + 3600})
}

/// Every kind of bad credential: the upgrade succeeds, then the server closes
/// with 4001 and sends nothing before the Close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_close_with_4001_and_nothing_else() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;

    let mut candidate = claims("candidate");
    candidate["interviewId"] = json!(iv.id);
    let without = |key: &str| {
        let mut c = candidate.clone();
        c.as_object_mut().unwrap().remove(key);
        c
    };
    let with = |key: &str, value: Value| {
        let mut c = candidate.clone();
        c[key] = value;
        c
    };

    // (case, query string, bearer header)
    let cases: Vec<(&str, Option<String>, Option<String>)> = vec![
        ("no token at all", None, None),
        ("empty token", Some("token=".into()), None),
        ("not a JWT", Some("token=not-a-jwt".into()), None),
        (
            "three garbage parts",
            Some("token=aaa.bbb.ccc".into()),
            None,
        ),
        (
            "signed with another key",
            Some(format!(
                "token={}",
                sign_with(Algorithm::HS256, "some-other-secret-entirely", &candidate)
            )),
            None,
        ),
        (
            "expired an hour ago",
            Some(format!(
                "token={}",
                sign(&with("exp", json!(now_secs() - 3600)))
            )),
            None,
        ),
        (
            "alg none",
            Some(format!("token={}", unsigned_token(&candidate))),
            None,
        ),
        (
            "HS512 with the right key",
            Some(format!(
                "token={}",
                sign_with(Algorithm::HS512, SECRET, &candidate)
            )),
            None,
        ),
        (
            "HS384 with the right key",
            Some(format!(
                "token={}",
                sign_with(Algorithm::HS384, SECRET, &candidate)
            )),
            None,
        ),
        (
            "candidate without interviewId",
            Some(format!("token={}", sign(&claims("candidate")))),
            None,
        ),
        (
            "recruiter without orgId",
            Some(format!("token={}", sign(&claims("recruiter")))),
            None,
        ),
        (
            "no sub",
            Some(format!("token={}", sign(&without("sub")))),
            None,
        ),
        (
            "no role",
            Some(format!("token={}", sign(&without("role")))),
            None,
        ),
        (
            "unknown role",
            Some(format!("token={}", sign(&with("role", json!("superuser"))))),
            None,
        ),
        (
            "no exp",
            Some(format!("token={}", sign(&without("exp")))),
            None,
        ),
        (
            "nbf an hour ahead",
            Some(format!(
                "token={}",
                sign(&with("nbf", json!(now_secs() + 3600)))
            )),
            None,
        ),
        (
            "header: signed with another key",
            None,
            Some(sign_with(
                Algorithm::HS256,
                "some-other-secret-entirely",
                &candidate,
            )),
        ),
        (
            "header: expired",
            None,
            Some(sign(&with("exp", json!(now_secs() - 3600)))),
        ),
        ("header: garbage", None, Some("garbage".into())),
    ];

    let mut failures = Vec::new();
    for (case, query, bearer) in &cases {
        let ws = WsClient::try_open(server.port, query.as_deref(), bearer.as_deref(), case).await;
        let mut ws = match ws {
            Ok(ws) => ws,
            Err(e) => {
                failures.push(format!("{case}: {e}"));
                continue;
            }
        };
        match ws.next_incoming(STEP).await {
            Incoming::Closed(4001) => {}
            Incoming::Closed(code) => {
                failures.push(format!("{case}: closed with {code}, not 4001"))
            }
            Incoming::Frame(f) => {
                failures.push(format!("{case}: sent a frame before closing: {f}"))
            }
            Incoming::Timeout => failures.push(format!("{case}: not closed within {STEP:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "bad credentials must close with 4001 and nothing else:\n{}",
        failures.join("\n")
    );
}

/// `?token=` and `Authorization: Bearer` both authenticate; `connected`
/// carries connectionId, userId, userType and heartbeatIntervalMs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_token_and_bearer_header_both_work() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let join_sub = verify_token(&iv.join_token)["sub"]
        .as_str()
        .expect("join token sub")
        .to_string();

    // Candidate, query parameter.
    let mut cand = WsClient::connect(server.port, &iv.join_token).await;
    let hello = cand.expect_type("connected").await;
    assert!(
        hello.get("ref").is_none(),
        "connected answers no client frame: {hello}"
    );
    check_connected(&hello["data"], Some(&join_sub), Some("candidate"));
    assert_eq!(
        hello["data"]["heartbeatIntervalMs"], 30000,
        "default HEARTBEAT_INTERVAL_MS"
    );
    cand.join(&iv.id, None).await;

    // Recruiter, header.
    let mut rec = WsClient::connect_with_header(server.port, &recruiter_token(ORG)).await;
    let rec_hello = rec.expect_type("connected").await;
    check_connected(
        &rec_hello["data"],
        Some(&format!("recruiter-of-{ORG}")),
        Some("recruiter"),
    );
    rec.observe(&iv.id, None).await;

    // Candidate, header (a token minted here).
    let mut cand2 =
        WsClient::connect_with_header(server.port, &candidate_token(&iv.id, "cand-x")).await;
    let hello2 = cand2.expect_type("connected").await;
    check_connected(&hello2["data"], Some("cand-x"), Some("candidate"));

    // Admin, query.
    let mut adm = WsClient::connect(server.port, &admin_token()).await;
    let adm_hello = adm.expect_type("connected").await;
    check_connected(&adm_hello["data"], Some("admin-1"), Some("admin"));
    adm.observe(&iv.id, None).await;

    let ids = [
        &hello["data"]["connectionId"],
        &rec_hello["data"]["connectionId"],
        &hello2["data"]["connectionId"],
        &adm_hello["data"]["connectionId"],
    ];
    for i in 0..ids.len() {
        for j in i + 1..ids.len() {
            assert_ne!(ids[i], ids[j], "every connection has its own connectionId");
        }
    }
}

/// A candidate token for interview B cannot join interview A: ACCESS_DENIED,
/// then close 4004.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidate_cannot_join_another_interview() {
    let server = TestServer::start(&[]).await;
    let a = server.create_interview().await;
    let b = server.create_interview().await;

    let (mut ws, _) = WsClient::connected(server.port, &b.join_token, "candidate of B").await;
    ws.send_ref("join-interview", json!({"interviewId": a.id}), "j1")
        .await;
    ws.expect_error_ref("ACCESS_DENIED", "j1").await;
    assert_eq!(ws.expect_close(STEP).await, 4004);

    // A candidate token for A (minted here) does join A.
    let (mut ok, _) = WsClient::connected(
        server.port,
        &candidate_token(&a.id, "cand-a"),
        "candidate of A",
    )
    .await;
    ok.join(&a.id, None).await;
}

/// A recruiter may observe only its organisation's interviews; an admin any.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recruiter_of_another_org_is_denied_admin_is_not() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;

    let (mut other, _) = WsClient::connected(
        server.port,
        &recruiter_token(OTHER_ORG),
        "recruiter of org-2",
    )
    .await;
    other
        .send_ref("observe-interview", json!({"interviewId": iv.id}), "o1")
        .await;
    other.expect_error_ref("ACCESS_DENIED", "o1").await;
    assert_eq!(other.expect_close(STEP).await, 4004);

    let (mut adm, _) = WsClient::connected(server.port, &admin_token(), "admin").await;
    let started = adm.observe(&iv.id, None).await;
    assert_eq!(started["data"]["interview"]["id"], iv.id);

    let (mut own, _) =
        WsClient::connected(server.port, &recruiter_token(ORG), "recruiter of org-1").await;
    own.observe(&iv.id, None).await;
}

/// No such interview: INTERVIEW_NOT_FOUND, then close 4002, for every role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_interview_is_not_found_4002() {
    let server = TestServer::start(&[]).await;
    let missing = "no-such-interview-7f3a";

    let (mut cand, _) = WsClient::connected(
        server.port,
        &candidate_token(missing, "cand-1"),
        "candidate",
    )
    .await;
    cand.send_ref("join-interview", json!({"interviewId": missing}), "j")
        .await;
    cand.expect_error_ref("INTERVIEW_NOT_FOUND", "j").await;
    assert_eq!(cand.expect_close(STEP).await, 4002);

    let (mut rec, _) = WsClient::connected(server.port, &recruiter_token(ORG), "recruiter").await;
    rec.send_ref("observe-interview", json!({"interviewId": missing}), "o")
        .await;
    rec.expect_error_ref("INTERVIEW_NOT_FOUND", "o").await;
    assert_eq!(rec.expect_close(STEP).await, 4002);

    let (mut adm, _) = WsClient::connected(server.port, &admin_token(), "admin").await;
    adm.send_ref("observe-interview", json!({"interviewId": missing}), "o2")
        .await;
    adm.expect_error_ref("INTERVIEW_NOT_FOUND", "o2").await;
    assert_eq!(adm.expect_close(STEP).await, 4002);
}
