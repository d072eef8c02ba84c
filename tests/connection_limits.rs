//! Connection caps: sockets per token (the oldest beyond it is closed with
//! 4009), per client address and for the whole process (HTTP 429 before the
//! upgrade), so one client cannot spend the server's file descriptors.
//! Clients on other addresses come from 127.0.0.2 and up (all of
//! 127.0.0.0/8 is loopback on Linux).

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A recruiter token of `ORG` for `sub`: another token than
/// `recruiter_token`'s, for the same organisation.
fn recruiter_token_as(sub: &str) -> String {
    sign(&json!({
        "sub": sub, "role": "recruiter", "name": "Rita",
        "orgId": ORG, "exp": now_secs() + 3600,
    }))
}

/// What a hand-made upgrade got: the status, the JSON body of a refusal,
/// and the connection (kept open by the caller).
struct Upgrade {
    status: u16,
    body: Option<Value>,
    tcp: TcpStream,
}

/// `GET /interview?token=…` with upgrade headers, by hand, so a thousand
/// of them cost the test little and it sees the status of a refusal.
async fn upgrade(source: IpAddr, port: u16, token: &str) -> std::io::Result<Upgrade> {
    tokio::time::timeout(STEP, upgrade_unbounded(source, port, token))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

async fn upgrade_unbounded(source: IpAddr, port: u16, token: &str) -> std::io::Result<Upgrade> {
    let mut tcp = tcp_connect(Some(source), port).await?;
    let request = format!(
        "GET /interview?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await?;
    let mut read = Vec::new();
    let end = loop {
        if let Some(i) = read.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 2048];
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        read.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&read[..end]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if status == 101 {
        None
    } else {
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        while read.len() < end + length {
            let mut chunk = [0u8; 2048];
            let n = tcp.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            read.extend_from_slice(&chunk[..n]);
        }
        serde_json::from_slice(&read[end..]).ok()
    };
    Ok(Upgrade { status, body, tcp })
}

/// A refused upgrade's connection is closed by the server: it holds no
/// descriptor there.
async fn closed_by_server(mut tcp: TcpStream) -> bool {
    let mut rest = [0u8; 256];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut rest)).await,
        Ok(Ok(0) | Err(_))
    )
}

async fn metric(server: &TestServer, line_start: &str) -> f64 {
    let (status, text) = server.metrics().await;
    assert_eq!(status, 200, "/metrics: {text}");
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in /metrics:\n{text}"))
}

/// An honest interview from `source`: join, the first question, an answer
/// and the next question.
async fn honest_interview(server: &TestServer, source: IpAddr) {
    let iv = server.create_interview().await;
    let (mut cand, hello) =
        WsClient::connected_from(source, server.port, &iv.join_token, "honest candidate").await;
    assert_eq!(hello["userType"], "candidate", "connected: {hello}");
    cand.join(&iv.id, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    answer_turn(
        &mut cand,
        &mut model,
        "I would measure first, then change the one thing the profile points at.",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_beyond_its_cap_closes_its_oldest_socket_with_4009() {
    let server = TestServer::start(&[("MAX_SOCKETS_PER_TOKEN", "3")]).await;
    let iv = server.create_interview().await;
    let token = recruiter_token(ORG);
    let mut sockets = Vec::new();
    for i in 0..3 {
        let (ws, _) = WsClient::connected(server.port, &token, &format!("tab {i}")).await;
        sockets.push(ws);
    }
    // A fourth of the same token: the first gives way, as a newer candidate
    // socket replaces an older one.
    let (mut newest, _) = WsClient::connected(server.port, &token, "tab 3").await;
    let mut oldest = sockets.remove(0);
    let (code, _) = oldest
        .expect_close_after_frames(Duration::from_secs(5))
        .await;
    assert_eq!(code, 4009, "the oldest socket of the token");
    for ws in &mut sockets {
        ws.heartbeat_roundtrip("still open").await;
    }
    newest.observe(&iv.id, None).await;
    newest.heartbeat_roundtrip("the newest works").await;
    // Another token of the same user is counted on its own.
    let other = recruiter_token_as("recruiter-of-org-again");
    let (mut beside, _) = WsClient::connected(server.port, &other, "other token").await;
    beside.heartbeat_roundtrip("another token").await;
    assert_eq!(
        metric(
            &server,
            r#"interviewd_sockets_refused_total{reason="token"}"#
        )
        .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_at_its_cap_gets_429_before_the_upgrade() {
    let server = TestServer::start(&[("MAX_SOCKETS_PER_ADDRESS", "3")]).await;
    let mut held = Vec::new();
    for i in 0..3 {
        let token = recruiter_token_as(&format!("recruiter-{i}"));
        let up = upgrade(loopback(1), server.port, &token)
            .await
            .expect("upgrade");
        assert_eq!(up.status, 101, "socket {i} under the cap");
        held.push(up);
    }
    let token = recruiter_token_as("recruiter-9");
    let refused = upgrade(loopback(1), server.port, &token)
        .await
        .expect("upgrade");
    assert_eq!(refused.status, 429, "a fourth from the same address");
    let body = refused.body.expect("a JSON error body");
    assert_eq!(body["error"]["code"], "RATE_LIMITED", "{body}");
    assert!(closed_by_server(refused.tcp).await, "closed after the 429");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("address")),
        "the message names the cap: {body}"
    );
    // Another address is not affected.
    let beside = upgrade(loopback(2), server.port, &token)
        .await
        .expect("upgrade");
    assert_eq!(beside.status, 101, "another address");
    // A connection that is gone gives its place back.
    drop(held.pop());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let again = upgrade(loopback(1), server.port, &token)
            .await
            .expect("upgrade");
        if again.status == 101 {
            break;
        }
        assert_eq!(again.status, 429);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place of a closed connection never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        metric(
            &server,
            r#"interviewd_sockets_refused_total{reason="address"}"#
        )
        .await
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_cap_refuses_every_address_but_http_still_answers() {
    let server = TestServer::start(&[("MAX_SOCKETS", "2")]).await;
    assert_eq!(metric(&server, "interviewd_socket_capacity").await, 2.0);
    let token = recruiter_token(ORG);
    let a = upgrade(loopback(1), server.port, &token).await.expect("a");
    let b = upgrade(loopback(2), server.port, &token).await.expect("b");
    assert_eq!((a.status, b.status), (101, 101));
    let c = upgrade(loopback(3), server.port, &token).await.expect("c");
    assert_eq!(c.status, 429, "a third anywhere");
    let body = c.body.expect("a JSON error body");
    assert_eq!(body["error"]["code"], "RATE_LIMITED", "{body}");
    assert!(closed_by_server(c.tcp).await, "closed after the 429");
    let (status, _) = server.get("/healthz", None).await;
    assert_eq!(status, 200, "plain HTTP is outside the socket cap");
    let _ = (a.tcp, b.tcp);
}

/// The issue's attack: one token (a candidate's join token, no join needed)
/// tries a thousand sockets against a server whose descriptor limit is
/// 1024. The server refuses what would spend its descriptors; `/healthz`
/// and an interview from another client carry on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_sockets_of_one_token_leave_healthz_and_interviews_working() {
    let server = TestServer::start_with_nofile(&[], Some(1024)).await;
    let victim = server.create_interview().await;
    let mut opened = Vec::new();
    let (mut upgraded, mut refused, mut failed) = (0, 0, 0);
    for _ in 0..1000 {
        match upgrade(loopback(1), server.port, &victim.join_token).await {
            Ok(up) if up.status == 101 => {
                upgraded += 1;
                opened.push(up.tcp);
            }
            Ok(up) if up.status == 429 => {
                refused += 1;
                opened.push(up.tcp);
            }
            Ok(up) => panic!("unexpected status {}", up.status),
            Err(_) => failed += 1,
        }
    }
    eprintln!(
        "1000 attempts: {upgraded} upgraded, {refused} refused with 429, {failed} failed; \
         server descriptors {:?}",
        server.open_fds()
    );
    assert_eq!(failed, 0, "every attempt got an answer");
    assert!(
        refused > 0,
        "the address cap refused some ({upgraded} upgraded)"
    );
    let (status, _) = server.get("/healthz", None).await;
    assert_eq!(status, 200, "/healthz while the sockets are held");
    honest_interview(&server, loopback(2)).await;
    // Of the token's sockets, only its newest five stay.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let open = metric(&server, r#"interviewd_sockets{role="candidate"}"#).await;
        if open <= 5.0 + 1.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{open} candidate sockets still open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(opened);
}
