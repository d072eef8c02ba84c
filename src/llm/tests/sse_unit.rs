use super::*;
use eventsource_stream::Eventsource;

/// Runs raw bytes, split into the given pieces, through the framer and
/// `content_pieces`.
async fn run(pieces: &[&str]) -> Vec<Result<String, InterviewerError>> {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        pieces.iter().map(|p| Ok(p.as_bytes().to_vec())).collect();
    let events = stream::iter(chunks).eventsource();
    content_pieces(events).collect().await
}

fn ok(items: &[&str]) -> Vec<Result<String, InterviewerError>> {
    items.iter().map(|s| Ok(s.to_string())).collect()
}

const ROLE: &str = r#"data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}"#;

fn content(text: &str) -> String {
    format!(
        "data: {}\n\n",
        serde_json::json!({"choices":[{"index":0,"delta":{"content":text},"finish_reason":null}]})
    )
}

#[tokio::test]
async fn openai_shape_with_role_first_and_usage_chunk() {
    let usage = r#"data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}"#;
    let body = format!(
        "{ROLE}\n\n{}{}{usage}\n\ndata: [DONE]\n\n",
        content("Hello"),
        content(" Ada")
    );
    assert_eq!(run(&[&body]).await, ok(&["Hello", " Ada"]));
}

#[tokio::test]
async fn empty_and_missing_content_and_reasoning_are_never_yielded() {
    let body = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"let me think\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning\":\"hmm\",\"content\":null}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    assert_eq!(run(&[body]).await, ok(&["Hi"]));
}

#[tokio::test]
async fn comments_crlf_and_split_frames() {
    let body = format!(
        ": keep-alive\r\n\r\n{}: OPENROUTER PROCESSING\r\n\r\n{}data: [DONE]\r\n\r\n",
        content("One").replace("\n\n", "\r\n\r\n"),
        content(" two").replace("\n\n", "\r\n\r\n"),
    );
    // Split at every 7 bytes, so frames, CRLFs and JSON are cut anywhere.
    let bytes = body.as_bytes();
    let pieces: Vec<String> = bytes
        .chunks(7)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    assert_eq!(run(&refs).await, ok(&["One", " two"]));
}

#[tokio::test]
async fn multibyte_text_split_across_reads() {
    let body = format!("{}data: [DONE]\n\n", content("Grüße, 你好"));
    let bytes = body.as_bytes().to_vec();
    // Feed byte by byte through a byte stream (not &str pieces).
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = bytes.iter().map(|b| Ok(vec![*b])).collect();
    let got: Vec<_> = content_pieces(stream::iter(chunks).eventsource())
        .collect()
        .await;
    assert_eq!(got, ok(&["Grüße, 你好"]));
}

#[tokio::test]
async fn error_chunk_inside_a_200_stream() {
    let err = r#"data: {"error":{"message":"The server had an error","type":"server_error"}}"#;
    let with_done = format!("{}{err}\n\ndata: [DONE]\n\n", content("Par"));
    let got = run(&[&with_done]).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], Ok("Par".to_string()));
    assert_eq!(
        got[1],
        Err(InterviewerError::Unavailable(
            "The server had an error".into()
        ))
    );
    let without_done = format!("{err}\n\n");
    assert!(matches!(
        run(&[&without_done]).await.as_slice(),
        [Err(InterviewerError::Unavailable(m))] if m == "The server had an error"
    ));
    let vllm = "data: {\"object\":\"error\",\"message\":\"out of memory\",\"code\":500}\n\n";
    assert!(matches!(
        run(&[vllm]).await.as_slice(),
        [Err(InterviewerError::Unavailable(m))] if m == "out of memory"
    ));
    let typed = "event: error\ndata: {\"message\":\"overloaded\"}\n\n";
    assert!(matches!(
        run(&[typed]).await.as_slice(),
        [Err(InterviewerError::Unavailable(m))] if m == "overloaded"
    ));
}

#[tokio::test]
async fn a_stream_without_done_is_truncated() {
    let body = format!("{ROLE}\n\n{}{}", content("a"), content("b"));
    let got = run(&[&body]).await;
    assert_eq!(
        got,
        vec![
            Ok("a".into()),
            Ok("b".into()),
            Err(InterviewerError::Unavailable("truncated".into()))
        ]
    );
    // An unfinished last frame is not an event either.
    let half = format!(
        "{}data: {{\"choices\":[{{\"delta\":{{\"content\":\"c",
        content("a")
    );
    assert_eq!(
        run(&[&half]).await,
        vec![
            Ok("a".into()),
            Err(InterviewerError::Unavailable("truncated".into()))
        ]
    );
}

#[tokio::test]
async fn malformed_json_fails_and_stops() {
    let body = format!(
        "{}data: {{not json\n\n{}data: [DONE]\n\n",
        content("x"),
        content("y")
    );
    let got = run(&[&body]).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0], Ok("x".into()));
    assert!(
        matches!(got[1], Err(InterviewerError::Invalid(_))),
        "{got:?}"
    );
}

#[tokio::test]
async fn nothing_is_read_after_done() {
    let body = format!("{}data: [DONE]\n\n{}", content("x"), content("late"));
    assert_eq!(run(&[&body]).await, ok(&["x"]));
}

#[tokio::test]
async fn transport_errors_end_the_stream() {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(content("x").into_bytes()),
        Err(std::io::Error::other("connection reset")),
    ];
    let got: Vec<_> = content_pieces(stream::iter(chunks).eventsource())
        .collect()
        .await;
    assert_eq!(got[0], Ok("x".into()));
    assert!(
        matches!(&got[1], Err(InterviewerError::Unavailable(m)) if m.contains("connection reset")),
        "{got:?}"
    );
    assert_eq!(got.len(), 2);
}

#[test]
fn done_is_checked_before_json() {
    assert_eq!(parse_chunk("message", "[DONE]"), Chunk::Done);
    assert_eq!(parse_chunk("message", " [DONE] "), Chunk::Done);
    assert_eq!(
        parse_chunk("message", "{\"error\":null,\"choices\":[]}"),
        Chunk::Nothing
    );
    assert!(matches!(
        parse_chunk("message", "[1,2]"),
        Chunk::Malformed(_)
    ));
}
