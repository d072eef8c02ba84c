use super::*;
use reqwest::header::HeaderValue;

#[test]
fn retryable_statuses() {
    for s in [408, 409, 429, 500, 502, 503, 504] {
        assert!(is_retryable(StatusCode::from_u16(s).unwrap(), ""), "{s}");
    }
    for s in [400, 401, 403, 404, 422] {
        assert!(!is_retryable(StatusCode::from_u16(s).unwrap(), ""), "{s}");
    }
    let quota = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
    assert!(!is_retryable(StatusCode::TOO_MANY_REQUESTS, quota));
    let quota_type_only = r#"{"error":{"message":"quota","type":"insufficient_quota"}}"#;
    assert!(!is_retryable(
        StatusCode::TOO_MANY_REQUESTS,
        quota_type_only
    ));
    let rate = r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#;
    assert!(is_retryable(StatusCode::TOO_MANY_REQUESTS, rate));
}

#[test]
fn retry_after_headers() {
    let mut h = HeaderMap::new();
    assert_eq!(retry_after(&h), None);
    h.insert("retry-after", HeaderValue::from_static("2"));
    assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
    h.insert("retry-after-ms", HeaderValue::from_static("150"));
    assert_eq!(retry_after(&h), Some(Duration::from_millis(150)), "ms wins");
    let mut date = HeaderMap::new();
    date.insert(
        "retry-after",
        HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
    );
    assert_eq!(retry_after(&date), None);
    let mut negative = HeaderMap::new();
    negative.insert("retry-after", HeaderValue::from_static("-1"));
    assert_eq!(retry_after(&negative), None);
}

#[test]
fn provider_messages() {
    assert_eq!(
        provider_message(r#"{"error":{"message":"bad model","type":"invalid_request_error"}}"#),
        "bad model"
    );
    assert_eq!(
        provider_message(r#"{"error":"model not found"}"#),
        "model not found"
    );
    assert_eq!(
        provider_message(r#"{"object":"error","message":"vllm says no"}"#),
        "vllm says no"
    );
    assert_eq!(provider_message("upstream exploded"), "upstream exploded");
    assert_eq!(provider_message(""), "no details");
    assert!(provider_message(&"x".repeat(1000)).chars().count() <= MESSAGE_LIMIT + 1);
}

#[test]
fn keys_never_print() {
    let p = Provider::new(
        "https://user:pw@example.invalid/v1/",
        Some("sk-secret-key".into()),
        Duration::from_secs(1),
    )
    .unwrap();
    let debug = format!("{p:?}");
    assert!(!debug.contains("sk-secret-key"), "{debug}");
    assert!(!debug.contains("pw@"), "{debug}");
    assert_eq!(
        p.url("/chat/completions"),
        "https://user:pw@example.invalid/v1/chat/completions"
    );
    assert_eq!(
        p.scrub("Incorrect API key provided: sk-secret-key."),
        "Incorrect API key provided: [redacted]."
    );
    assert_eq!(ApiKey::new(Some("  ".into())), None);
}

#[test]
fn truncates_on_char_boundaries() {
    assert_eq!(truncate("héllo", 2), "hé…");
    assert_eq!(truncate("hi", 5), "hi");
}
