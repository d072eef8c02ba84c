//! What the runtime adds to a model's stream, measured end to end on the
//! real server binary against the fake OpenAI-compatible provider the tests
//! use (same process as the client, so one clock):
//!
//! - token relay overhead: from the provider writing a token to the
//!   candidate's socket receiving its `ai-token` (this includes the event's
//!   group commit to SQLite, since nothing is sent before it is durable);
//! - stop to drop: from the candidate's `pause-interview` leaving the client
//!   to the provider seeing the HTTP request dropped.
//!
//! `cargo bench --bench llm_overhead` (sizes: ROUNDS, TOKENS below).

#![allow(dead_code)]

mod fake {
    include!("../tests/llm_fake/provider.rs");
}

use std::process::Stdio;
use std::time::{Duration, Instant};

use fake::{FakeProvider, Reply, StreamReply};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "interviewd-bench-secret-0123456789abcdef";
const ROUNDS: usize = 8;
const TOKENS: usize = 100;
const TOKEN_GAP: Duration = Duration::from_millis(5);
const STOPS: usize = 20;

fn token(claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("sign")
}

fn exp() -> u64 {
    chrono::Utc::now().timestamp() as u64 + 3600
}

async fn start_server(dir: &std::path::Path, llm: &str) -> (tokio::process::Child, u16) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_interviewd"))
        .arg("serve")
        .env("BIND", "127.0.0.1")
        .env("PORT", "0")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/bench.db", dir.display()),
        )
        .env("JWT_SECRET", SECRET)
        .env("LLM_BASE_URL", llm)
        .env("LLM_TIMEOUT_MS", "30000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn interviewd");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(addr) = line.strip_prefix("listening on ") {
            let port = addr.rsplit(':').next().and_then(|p| p.parse().ok());
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return (child, port.expect("port"));
        }
    }
    panic!("interviewd did not start");
}

async fn create_interview(port: u16) -> (String, String) {
    let recruiter = token(json!({"sub": "r", "role": "recruiter", "orgId": "o", "exp": exp()}));
    let body = json!({"candidateName": "Ada", "title": "Bench",
        "questions": [{"text": "Why Rust?"}, {"text": "Why actors?"}]});
    let reply: Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/interviews"))
        .bearer_auth(recruiter)
        .json(&body)
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    (
        reply["id"].as_str().expect("id").to_string(),
        reply["joinToken"].as_str().expect("token").to_string(),
    )
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn join(port: u16, id: &str, join_token: &str) -> Ws {
    let url = format!("ws://127.0.0.1:{port}/interview?token={join_token}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let join = json!({"type": "join-interview", "data": {"interviewId": id}});
    ws.send(Message::text(join.to_string()))
        .await
        .expect("send");
    let start = json!({"type": "start-interview"});
    ws.send(Message::text(start.to_string()))
        .await
        .expect("send");
    ws
}

/// The next text frame's (type, receive time).
async fn next(ws: &mut Ws) -> (String, Instant) {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let at = Instant::now();
                let v: Value = serde_json::from_str(&t).expect("json");
                return (v["type"].as_str().unwrap_or_default().to_string(), at);
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("socket ended: {other:?}"),
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "| {name} | {} | {:.3} | {:.3} | {:.3} |",
        samples.len(),
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

#[tokio::main]
async fn main() {
    let words: Vec<String> = (0..TOKENS).map(|i| format!("t{i} ")).collect();
    let fake = FakeProvider::start().await;
    fake.respond_with(move |r| {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        if r.is_stream() {
            Reply::Stream(StreamReply::tokens(&words).token_delay(TOKEN_GAP))
        } else {
            Reply::status(500, "{}")
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let (_server, port) = start_server(dir.path(), &fake.base_url()).await;

    // Token relay overhead.
    let mut relay = Vec::new();
    for _ in 0..ROUNDS {
        let (id, join_token) = create_interview(port).await;
        let before = fake.token_times().len();
        let mut ws = join(port, &id, &join_token).await;
        let mut received = Vec::new();
        loop {
            let (kind, at) = next(&mut ws).await;
            match kind.as_str() {
                "ai-token" => received.push(at),
                "ai-stream-end" => break,
                _ => {}
            }
        }
        let sent = fake.token_times();
        let sent = &sent[before..];
        for (i, (s, r)) in sent.iter().zip(&received).enumerate() {
            let d = r.saturating_duration_since(*s);
            if std::env::var("BENCH_DEBUG").is_ok() && d > Duration::from_millis(5) {
                eprintln!("slow token {i}: {d:?}");
            }
            relay.push(d);
        }
    }

    // Stop to drop.
    let mut stops = Vec::new();
    for _ in 0..STOPS {
        let (id, join_token) = create_interview(port).await;
        let mut ws = join(port, &id, &join_token).await;
        let mut tokens = 0;
        while tokens < 5 {
            if next(&mut ws).await.0 == "ai-token" {
                tokens += 1;
            }
        }
        let hang_ups = fake.hang_up_times().len();
        let pause = json!({"type": "pause-interview"});
        let t0 = Instant::now();
        ws.send(Message::text(pause.to_string()))
            .await
            .expect("send");
        let deadline = t0 + Duration::from_secs(5);
        let dropped = loop {
            if let Some(t) = fake.hang_up_times().get(hang_ups) {
                break *t;
            }
            assert!(Instant::now() < deadline, "the provider never saw the drop");
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        stops.push(dropped.saturating_duration_since(t0));
    }

    println!(
        "\nllm_overhead: {ROUNDS} streams of {TOKENS} tokens every {TOKEN_GAP:?}; {STOPS} stops"
    );
    println!("| measure | samples | p50 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- |");
    report("token relay (provider write -> candidate ai-token)", relay);
    report("stop -> provider sees request dropped", stops);
}
