//! Who may read `/metrics`: on the public listener only the bearer of the
//! static `ADMIN_TOKEN`; on the `METRICS_BIND` listener (a private address
//! for a scraper) anyone, and nothing else is served there.

mod common;

use common::*;

/// A plain GET with an optional `Authorization` header value.
async fn get(url: &str, authorization: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(value) = authorization {
        req = req.header("authorization", value);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

fn assert_unauthorized(status: u16, body: &str, who: &str) {
    assert_eq!(status, 401, "{who}: {body}");
    let v: serde_json::Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("{who}: the refusal is the usual JSON error ({e}): {body}"));
    assert_eq!(v["error"]["code"], "UNAUTHORIZED", "{who}: {body}");
    assert!(!body.contains("interviewd_"), "{who}: no metrics: {body}");
}

/// Anonymous, a wrong token, another scheme and even an admin JWT get 401;
/// the admin token gets the Prometheus text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_metrics_answer_only_the_admin_token() {
    let server = TestServer::start(&[]).await;
    let url = server.url("/metrics");
    let wrong = format!("Bearer {}x", ADMIN_TOKEN);
    let basic = format!("Basic {ADMIN_TOKEN}");
    let jwt = format!("Bearer {}", admin_token());
    for (who, authorization) in [
        ("anonymous", None),
        ("a wrong token", Some(wrong.as_str())),
        ("an empty bearer", Some("Bearer ")),
        ("another scheme", Some(basic.as_str())),
        ("an admin JWT", Some(jwt.as_str())),
    ] {
        let (status, body) = get(&url, authorization).await;
        assert_unauthorized(status, &body, who);
    }
    let (status, text) = server.metrics().await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("interviewd_")),
        "Prometheus lines: {text}"
    );
}

/// With no `ADMIN_TOKEN` configured nobody reads them on the public listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_metrics_are_closed_without_an_admin_token() {
    let server = TestServer::start(&[("ADMIN_TOKEN", "")]).await;
    let (status, body) = server.metrics().await;
    assert_unauthorized(status, &body, "the harness token, unconfigured");
    let (status, body) = get(&server.url("/metrics"), None).await;
    assert_unauthorized(status, &body, "anonymous");
}

/// `METRICS_BIND`: a second listener serves `/metrics` with no token, and
/// only that; the public one still wants the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_bind_serves_metrics_alone_without_a_token() {
    let server = TestServer::start(&[("METRICS_BIND", "127.0.0.1:0")]).await;
    let log = server.dump_log();
    let addr = log
        .lines()
        .find_map(|l| l.split("serving /metrics on ").nth(1))
        .map(str::trim)
        .unwrap_or_else(|| panic!("the server names its metrics address:\n{log}"))
        .to_string();
    assert_ne!(addr, format!("127.0.0.1:{}", server.port), "{log}");

    let (status, text) = get(&format!("http://{addr}/metrics"), None).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("interviewd_")),
        "Prometheus lines: {text}"
    );
    for path in ["/healthz", "/v1/interviews", "/v1/admin/sessions", "/room"] {
        let (status, body) = get(&format!("http://{addr}{path}"), None).await;
        assert_eq!(status, 404, "{path} is not served on METRICS_BIND: {body}");
    }
    let (status, body) = get(&server.url("/metrics"), None).await;
    assert_unauthorized(status, &body, "anonymous on the public listener");
}
