//! An OpenAI-compatible model for the server to stream from, at a set rate:
//! a small HTTP/1.1 server on 127.0.0.1:0 (one request per connection,
//! `Connection: close`).
//!
//! - `stream: true` chat completions: `tokens` pieces, one every
//!   `1/rate` seconds, each ` w<unix microseconds when written>`, so a
//!   client that receives the `ai-token` can tell the token's relay time
//!   through the server (same machine clock).
//! - other chat completions (JSON verdicts): a valid evaluation
//!   (`next_question`), or a valid summary when the prompt asks for one.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::stats::now_unix_us;

#[derive(Debug, Clone, Copy)]
pub struct FakeSettings {
    /// Tokens per second of one stream.
    pub rate: f64,
    /// Tokens per message.
    pub tokens: usize,
}

#[derive(Default)]
pub struct FakeCounters {
    pub streams: AtomicU64,
    pub tokens: AtomicU64,
    pub verdicts: AtomicU64,
}

pub struct LlmFake {
    pub addr: SocketAddr,
    pub counters: Arc<FakeCounters>,
    task: JoinHandle<()>,
}

impl LlmFake {
    pub async fn start(settings: FakeSettings) -> Result<LlmFake> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(FakeCounters::default());
        let c = counters.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let c = c.clone();
                tokio::spawn(async move {
                    let _ = serve(sock, settings, c).await;
                });
            }
        });
        Ok(LlmFake {
            addr,
            counters,
            task,
        })
    }

    /// `LLM_BASE_URL` for the server.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

impl Drop for LlmFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request(sock: &mut TcpStream) -> Result<Value> {
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            anyhow::bail!("closed");
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + len {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(serde_json::from_slice(&buf[header_end..]).unwrap_or(Value::Null))
}

async fn serve(mut sock: TcpStream, s: FakeSettings, c: Arc<FakeCounters>) -> Result<()> {
    sock.set_nodelay(true)?;
    let req = read_request(&mut sock).await?;
    if req["stream"] == json!(true) {
        c.streams.fetch_add(1, Ordering::Relaxed);
        sock.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n").await?;
        let gap = Duration::from_secs_f64(1.0 / s.rate.max(0.001));
        let mut next = tokio::time::Instant::now();
        for i in 0..s.tokens {
            if i > 0 {
                next += gap;
                tokio::time::sleep_until(next).await;
            }
            let chunk = json!({
                "id": "chatcmpl-loadgen", "object": "chat.completion.chunk", "model": "fake",
                "choices": [{"index": 0, "delta": {"content": format!(" w{}", now_unix_us())}, "finish_reason": null}],
            });
            sock.write_all(format!("data: {chunk}\n\n").as_bytes())
                .await?;
            c.tokens.fetch_add(1, Ordering::Relaxed);
        }
        let done = json!({
            "id": "chatcmpl-loadgen", "object": "chat.completion.chunk", "model": "fake",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        });
        sock.write_all(format!("data: {done}\n\ndata: [DONE]\n\n").as_bytes())
            .await?;
        sock.shutdown().await?;
        return Ok(());
    }
    c.verdicts.fetch_add(1, Ordering::Relaxed);
    let prompt = req["messages"].to_string();
    let content = if prompt.contains("final assessment") {
        // Categories are the questions' types, lower case; the benchmark's
        // questions are all GENERAL.
        json!({"overallScore": 70, "recommendation": "hire", "strengths": ["clear"],
               "weaknesses": [], "categoryScores": {"general": 70}})
    } else {
        json!({"score": 70, "strengths": ["clear"], "weaknesses": [],
               "feedback": "Relevant and specific.", "nextAction": "next_question"})
    };
    let body = json!({
        "id": "chatcmpl-loadgen", "object": "chat.completion", "model": "fake",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content.to_string()}, "finish_reason": "stop"}],
    })
    .to_string();
    sock.write_all(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await?;
    sock.shutdown().await?;
    Ok(())
}

/// The provider's write time in a fake token (` w<micros>`).
pub fn token_written_us(text: &str) -> Option<i64> {
    text.trim().strip_prefix('w')?.parse().ok()
}
