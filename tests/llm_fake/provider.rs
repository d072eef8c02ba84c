// A fake OpenAI-compatible provider for tests: a small HTTP/1.1 server on
// 127.0.0.1:0 (raw tokio `TcpListener`, one request per connection,
// `Connection: close`) that speaks the exact wire format of
// `/chat/completions` (streamed and not), `/audio/transcriptions` and
// `/audio/speech`.
//
// A test scripts what each request gets: a queue of `Reply`s, taken in
// order, then a `respond_with` closure, then a 500. Every request is recorded
// (method, path, headers, body, JSON), with whether the client hung up before
// the reply was finished.
//
// The unit tests in `src/llm` use it as `crate::llm::fake_provider`; the
// black-box tests `include!` this same file (tests/llm_fake/mod.rs), so it
// must not use anything of the crate, nor inner attributes or `//!` comments.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// How a streamed completion ends.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEnd {
    /// A finish chunk, the usage chunk (if on), `data: [DONE]`.
    Done,
    /// The socket closes after the tokens, without `[DONE]`.
    Cut,
    /// `data: {"error":{"message":..,"type":"server_error"}}`, then `[DONE]`
    /// if `then_done`.
    Error { message: String, then_done: bool },
    /// A chunk that is not JSON, then `[DONE]`.
    Malformed,
}

/// A streamed chat completion (`text/event-stream`).
#[derive(Debug, Clone)]
pub struct StreamReply {
    pub tokens: Vec<String>,
    /// Sent before the tokens as `delta.reasoning_content`.
    pub reasoning: Vec<String>,
    /// A pause after the headers, before the first chunk.
    pub first_delay: Duration,
    /// A pause before every token after the first.
    pub token_delay: Duration,
    /// First chunk carries only `role` (and `content: ""`).
    pub role_first: bool,
    /// A usage chunk with empty `choices` before `[DONE]`.
    pub usage: bool,
    /// `: keep-alive` comment lines between chunks.
    pub comments: bool,
    /// CRLF instead of LF in the SSE framing.
    pub crlf: bool,
    /// `Transfer-Encoding: chunked` (else the body ends at close).
    pub chunked: bool,
    pub end: StreamEnd,
}

impl StreamReply {
    pub fn tokens(tokens: &[&str]) -> StreamReply {
        StreamReply {
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
            reasoning: Vec::new(),
            first_delay: Duration::ZERO,
            token_delay: Duration::ZERO,
            role_first: true,
            usage: true,
            comments: false,
            crlf: false,
            chunked: true,
            end: StreamEnd::Done,
        }
    }
    pub fn first_delay(mut self, d: Duration) -> Self {
        self.first_delay = d;
        self
    }
    pub fn token_delay(mut self, d: Duration) -> Self {
        self.token_delay = d;
        self
    }
    pub fn end(mut self, end: StreamEnd) -> Self {
        self.end = end;
        self
    }
    pub fn comments(mut self) -> Self {
        self.comments = true;
        self
    }
    pub fn crlf(mut self) -> Self {
        self.crlf = true;
        self
    }
    pub fn unchunked(mut self) -> Self {
        self.chunked = false;
        self
    }
    pub fn reasoning(mut self, parts: &[&str]) -> Self {
        self.reasoning = parts.iter().map(|t| t.to_string()).collect();
        self
    }
}

/// What one request gets.
#[derive(Debug, Clone)]
pub enum Reply {
    Stream(StreamReply),
    /// Any status with headers and a body (e.g. 429 with `Retry-After: 1`).
    Status {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// A non-streamed chat completion whose message content is this text.
    Completion(String),
    /// 200 with this JSON body.
    Json(Value),
    /// `/audio/transcriptions` with `response_format=json`.
    Transcription(String),
    /// `/audio/speech`: these bytes as `audio/mpeg`.
    Speech(Vec<u8>),
    /// Waits (watching for a hang-up), then replies.
    Delayed(Duration, Box<Reply>),
    /// Closes the connection without answering.
    Hangup,
}

impl Reply {
    pub fn status(status: u16, body: &str) -> Reply {
        Reply::Status {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }
    pub fn status_with(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
        Reply::Status {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.to_string(),
        }
    }
    pub fn server_error() -> Reply {
        Reply::status(
            500,
            r#"{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}"#,
        )
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub json: Option<Value>,
    pub at: Instant,
    /// The client closed the connection before the reply was complete.
    pub hung_up: bool,
    /// The whole reply was written.
    pub finished: bool,
}

/// One part of a `multipart/form-data` body.
#[derive(Debug, Clone, PartialEq)]
pub struct FormField {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether this is a streamed chat completion request.
    pub fn is_stream(&self) -> bool {
        self.json.as_ref().and_then(|j| j.get("stream")) == Some(&Value::Bool(true))
    }

    /// The request's text (all chat messages), for routing on prompts.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The parts of a `multipart/form-data` body.
    pub fn form(&self) -> Vec<FormField> {
        let Some(boundary) = self
            .header("content-type")
            .and_then(|ct| ct.split("boundary=").nth(1))
            .map(|b| b.trim_matches('"').to_string())
        else {
            return Vec::new();
        };
        let delimiter = format!("--{boundary}");
        let mut fields = Vec::new();
        for part in split_bytes(&self.body, delimiter.as_bytes())
            .into_iter()
            .skip(1)
        {
            if part.starts_with(b"--") {
                break;
            }
            let part = part.strip_prefix(b"\r\n").unwrap_or(part);
            let Some(split) = find(part, b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&part[..split]).into_owned();
            let mut data = part[split + 4..].to_vec();
            if data.ends_with(b"\r\n") {
                data.truncate(data.len() - 2);
            }
            let mut field = FormField {
                name: String::new(),
                filename: None,
                content_type: None,
                data,
            };
            for line in head.lines() {
                let lower = line.to_ascii_lowercase();
                if lower.starts_with("content-disposition:") {
                    field.name = quoted_param(line, "name").unwrap_or_default();
                    field.filename = quoted_param(line, "filename");
                } else if lower.starts_with("content-type:") {
                    field.content_type = Some(line[13..].trim().to_string());
                }
            }
            fields.push(field);
        }
        fields
    }
}

fn quoted_param(line: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = line.find(&key)? + key.len();
    let end = line[start..].find('"')?;
    Some(line[start..start + end].to_string())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn split_bytes<'a>(mut data: &'a [u8], delimiter: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    while let Some(i) = find(data, delimiter) {
        out.push(&data[..i]);
        data = &data[i + delimiter.len()..];
    }
    out.push(data);
    out
}

type Responder = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<Reply>>,
    responder: Mutex<Option<Responder>>,
    requests: Mutex<Vec<Recorded>>,
    /// When each streamed token was written, over all requests (benchmarks).
    token_times: Mutex<Vec<Instant>>,
    /// When each hang-up was noticed, over all requests (benchmarks).
    hang_up_times: Mutex<Vec<Instant>>,
}

/// The fake server; stops when dropped.
pub struct FakeProvider {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeProvider {
    pub async fn start() -> FakeProvider {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake provider");
        let addr = listener.local_addr().expect("fake provider address");
        let shared = Arc::new(Shared::default());
        let for_task = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                // Real providers stream with Nagle off; so does the fake.
                let _ = socket.set_nodelay(true);
                tokio::spawn(handle(socket, for_task.clone()));
            }
        });
        FakeProvider { addr, shared, task }
    }

    /// The `base_url` to configure: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues the reply for the next request.
    pub fn push(&self, reply: Reply) {
        self.shared.queue.lock().unwrap().push_back(reply);
    }

    /// What requests get once the queue is empty.
    pub fn respond_with(&self, f: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) {
        *self.shared.responder.lock().unwrap() = Some(Arc::new(f));
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Waits until `n` requests have arrived (or `within` passed).
    pub async fn wait_for_requests(&self, n: usize, within: Duration) -> Vec<Recorded> {
        let until = Instant::now() + within;
        loop {
            let seen = self.requests();
            if seen.len() >= n || Instant::now() >= until {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// When each streamed token was written, in order, over all requests.
    pub fn token_times(&self) -> Vec<Instant> {
        self.shared.token_times.lock().unwrap().clone()
    }

    /// When each client hang-up was noticed, in order.
    pub fn hang_up_times(&self) -> Vec<Instant> {
        self.shared.hang_up_times.lock().unwrap().clone()
    }

    /// Waits until request `index` is recorded as hung up; false if it
    /// finished or `within` passed first.
    pub async fn wait_for_hang_up(&self, index: usize, within: Duration) -> bool {
        let until = Instant::now() + within;
        loop {
            if let Some(r) = self.requests().get(index) {
                if r.hung_up {
                    return true;
                }
                if r.finished {
                    return false;
                }
            }
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn handle(socket: TcpStream, shared: Arc<Shared>) {
    let _ = socket.set_nodelay(true);
    let (mut rd, mut wr) = socket.into_split();
    let Some(request) = read_request(&mut rd).await else {
        return;
    };
    let reply = {
        let queued = shared.queue.lock().unwrap().pop_front();
        match queued {
            Some(r) => r,
            None => {
                let responder = shared.responder.lock().unwrap().clone();
                match responder {
                    Some(f) => f(&request),
                    None => Reply::status(
                        500,
                        r#"{"error":{"message":"fake provider: nothing scripted","type":"server_error"}}"#,
                    ),
                }
            }
        }
    };
    let index = {
        let mut requests = shared.requests.lock().unwrap();
        requests.push(request);
        requests.len() - 1
    };
    let finished = write_reply(&mut rd, &mut wr, reply, &shared).await;
    if !finished {
        shared.hang_up_times.lock().unwrap().push(Instant::now());
    }
    if finished {
        let _ = wr.shutdown().await;
    }
    let mut requests = shared.requests.lock().unwrap();
    if let Some(r) = requests.get_mut(index) {
        r.finished = finished;
        r.hung_up = !finished;
    }
}

/// Reads one request: request line, headers, `Content-Length` or chunked body.
async fn read_request(rd: &mut OwnedReadHalf) -> Option<Recorded> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        let n = rd.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 1 << 20 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut rest = buf[head_end + 4..].to_vec();
    let chunked =
        header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        loop {
            if let Some(body) = dechunk(&rest) {
                break body;
            }
            let n = rd.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            rest.extend_from_slice(&chunk[..n]);
        }
    } else {
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while rest.len() < length {
            let n = rd.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            rest.extend_from_slice(&chunk[..n]);
        }
        rest.truncate(length);
        rest
    };
    let json = serde_json::from_slice(&body).ok();
    Some(Recorded {
        method,
        path,
        headers,
        body,
        json,
        at: Instant::now(),
        hung_up: false,
        finished: false,
    })
}

/// A complete chunked body, decoded; `None` while incomplete.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if data.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Sleeps `d`, watching the socket: true if the client hung up meanwhile.
async fn hung_up_during(rd: &mut OwnedReadHalf, d: Duration) -> bool {
    let sleep = tokio::time::sleep(d);
    tokio::pin!(sleep);
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            _ = &mut sleep => return false,
            n = rd.read(&mut buf) => match n {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            },
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

async fn write_body(
    wr: &mut OwnedWriteHalf,
    status: u16,
    content_type: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> bool {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    wr.write_all(&bytes).await.is_ok() && wr.flush().await.is_ok()
}

/// Writes the reply; false if the client hung up first.
async fn write_reply(
    rd: &mut OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    reply: Reply,
    shared: &Shared,
) -> bool {
    match reply {
        Reply::Delayed(d, inner) => {
            if hung_up_during(rd, d).await {
                return false;
            }
            Box::pin(write_reply(rd, wr, *inner, shared)).await
        }
        Reply::Hangup => true,
        Reply::Status {
            status,
            headers,
            body,
        } => write_body(wr, status, "application/json", &headers, body.as_bytes()).await,
        Reply::Json(v) => {
            write_body(wr, 200, "application/json", &[], v.to_string().as_bytes()).await
        }
        Reply::Completion(content) => {
            let v = json!({
                "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": "fake",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            });
            write_body(wr, 200, "application/json", &[], v.to_string().as_bytes()).await
        }
        Reply::Transcription(text) => {
            let v = json!({ "text": text });
            write_body(wr, 200, "application/json", &[], v.to_string().as_bytes()).await
        }
        Reply::Speech(bytes) => write_body(wr, 200, "audio/mpeg", &[], &bytes).await,
        Reply::Stream(s) => write_stream(rd, wr, s, shared).await,
    }
}

fn chunk_json(delta: Value, finish: Option<&str>) -> Value {
    json!({
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    })
}

async fn write_stream(
    rd: &mut OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    s: StreamReply,
    shared: &Shared,
) -> bool {
    let mut head = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n",
    );
    if s.chunked {
        head.push_str("Transfer-Encoding: chunked\r\n");
    }
    head.push_str("\r\n");
    if wr.write_all(head.as_bytes()).await.is_err() {
        return false;
    }
    let nl = if s.crlf { "\r\n" } else { "\n" };
    let frame = |data: &str| format!("data: {data}{nl}{nl}");
    let mut frames: Vec<(bool, String)> = Vec::new(); // (is a token, text)
    if s.role_first {
        frames.push((
            false,
            frame(&chunk_json(json!({"role": "assistant", "content": ""}), None).to_string()),
        ));
    }
    for r in &s.reasoning {
        frames.push((
            false,
            frame(&chunk_json(json!({"reasoning_content": r}), None).to_string()),
        ));
    }
    for t in &s.tokens {
        if s.comments {
            frames.push((false, format!(": keep-alive{nl}{nl}")));
        }
        frames.push((
            true,
            frame(&chunk_json(json!({"content": t}), None).to_string()),
        ));
    }
    match &s.end {
        StreamEnd::Done => {
            frames.push((
                false,
                frame(&chunk_json(json!({}), Some("stop")).to_string()),
            ));
            if s.usage {
                let usage = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": [],
                    "usage": {"prompt_tokens": 10, "completion_tokens": s.tokens.len(), "total_tokens": 10 + s.tokens.len()}});
                frames.push((false, frame(&usage.to_string())));
            }
            frames.push((false, frame("[DONE]")));
        }
        StreamEnd::Cut => {}
        StreamEnd::Error { message, then_done } => {
            let e = json!({"error": {"message": message, "type": "server_error"}});
            frames.push((false, frame(&e.to_string())));
            if *then_done {
                frames.push((false, frame("[DONE]")));
            }
        }
        StreamEnd::Malformed => {
            frames.push((
                false,
                frame("{\"choices\":[{\"delta\":{\"content\":\"oops\""),
            ));
            frames.push((false, frame("[DONE]")));
        }
    }
    if !s.first_delay.is_zero() && hung_up_during(rd, s.first_delay).await {
        return false;
    }
    let mut tokens_sent = 0;
    for (is_token, text) in frames {
        if is_token {
            if tokens_sent > 0
                && !s.token_delay.is_zero()
                && hung_up_during(rd, s.token_delay).await
            {
                return false;
            }
            tokens_sent += 1;
        }
        let bytes = if s.chunked {
            format!("{:x}\r\n{text}\r\n", text.len())
        } else {
            text
        };
        if wr.write_all(bytes.as_bytes()).await.is_err() || wr.flush().await.is_err() {
            return false;
        }
        if is_token {
            shared.token_times.lock().unwrap().push(Instant::now());
        }
    }
    if s.end == StreamEnd::Cut {
        // Closed without [DONE] (and, when chunked, without the last chunk).
        return true;
    }
    if s.chunked && wr.write_all(b"0\r\n\r\n").await.is_err() {
        return false;
    }
    true
}
