//! One client socket: connect with small buffers, and a cheap parse of the
//! server's frames.
//!
//! tokio-tungstenite's default `WebSocketConfig` reads into a 128 KiB buffer
//! per socket (about 138 KB per idle connection all told); with 4 KiB it is
//! about 7 KB, so the client's memory, not the server's, stops being what
//! limits a run. The buffer still grows for a larger frame when one comes.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::{HeaderValue, AUTHORIZATION};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{client_async_with_config, WebSocketStream};

pub type Ws = WebSocketStream<TcpStream>;

/// Per-socket read chunk.
pub const READ_BUFFER: usize = 4 * 1024;

pub fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        // 0: every message is written out at once (no batching buffer).
        .write_buffer_size(0)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(Some(8 * 1024 * 1024))
        .max_frame_size(Some(8 * 1024 * 1024))
}

/// How long one connect (TCP, upgrade, `connected`) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens `/interview` with a bearer token and waits for `connected`.
/// Returns the socket and the time from TCP connect to `connected`.
pub async fn connect(addr: SocketAddr, token: &str) -> Result<(Ws, Duration)> {
    let started = Instant::now();
    let fut = async {
        let tcp = TcpStream::connect(addr).await.context("TCP connect")?;
        tcp.set_nodelay(true)?;
        let mut req = format!("ws://{addr}/interview").into_client_request()?;
        req.headers_mut().insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}"))?,
        );
        let (mut ws, _) = client_async_with_config(req, tcp, Some(config()))
            .await
            .context("WebSocket upgrade")?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let f = parse(&t).ok_or_else(|| anyhow!("unparsable frame {t}"))?;
                    if f.kind == "connected" {
                        return Ok(ws);
                    }
                    bail!("expected `connected`, got {t}");
                }
                Some(Ok(Message::Close(c))) => bail!("closed before `connected`: {c:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => bail!("closed before `connected`"),
            }
        }
    };
    let ws = timeout(CONNECT_TIMEOUT, fut)
        .await
        .map_err(|_| anyhow!("connect timed out"))??;
    Ok((ws, started.elapsed()))
}

/// Sends one JSON frame `{type, data}`.
pub async fn send(ws: &mut Ws, kind: &str, data: serde_json::Value) -> Result<()> {
    let text = json!({"type": kind, "data": data}).to_string();
    ws.send(Message::text(text)).await?;
    Ok(())
}

/// The parts of a server frame the load generator reads; the rest of `data`
/// is skipped without building values.
#[derive(Debug, Deserialize)]
pub struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default)]
    pub seq: Option<u64>,
    #[serde(default, borrow)]
    pub ts: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub data: Option<Data<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Data<'a> {
    /// `ai-token`, `ai-stream-end`, `question`, ... text.
    #[serde(default, borrow)]
    pub text: Option<Cow<'a, str>>,
    /// `interview-ready` / `observation-started`: the head of the log.
    #[serde(default)]
    pub last_seq: Option<u64>,
    #[serde(default)]
    pub recovered: Option<bool>,
    /// `interview-ready`: the interview row's status.
    #[serde(default, borrow)]
    pub status: Option<Cow<'a, str>>,
    /// `error`: its code.
    #[serde(default, borrow)]
    pub code: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Bare<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default, borrow)]
    ts: Option<Cow<'a, str>>,
}

/// Parses a frame; a `data` of an unexpected shape is dropped rather than
/// failing the frame.
pub fn parse(text: &str) -> Option<Frame<'_>> {
    match serde_json::from_str::<Frame>(text) {
        Ok(f) => Some(f),
        Err(_) => serde_json::from_str::<Bare>(text).ok().map(|b| Frame {
            kind: b.kind,
            seq: b.seq,
            ts: b.ts,
            data: None,
        }),
    }
}

/// Microseconds since the epoch of an RFC 3339 `ts`.
pub fn ts_unix_us(ts: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.timestamp_micros())
}

/// Session events only observers receive (PROTOCOL section 5).
pub fn observer_only(kind: &str) -> bool {
    matches!(
        kind,
        "candidate-joined" | "proctor-alert" | "trust-score-update" | "interview-interrupted"
    )
}

/// The close code in a Close frame, or 1005 when it had none.
pub fn close_code(frame: &Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> u16 {
    frame.as_ref().map(|c| u16::from(c.code)).unwrap_or(1005)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_and_replies() {
        let f = parse(r#"{"type":"ai-token","seq":7,"ts":"2026-01-01T00:00:00.123Z","data":{"messageId":"m","text":" w1"}}"#).unwrap();
        assert_eq!(f.kind, "ai-token");
        assert_eq!(f.seq, Some(7));
        assert_eq!(f.data.unwrap().text.as_deref(), Some(" w1"));
        let f = parse(r#"{"type":"interview-ready","ts":"x","data":{"lastSeq":41,"status":"ACTIVE","interview":{"status":"x"},"recovered":true}}"#).unwrap();
        let d = f.data.unwrap();
        assert_eq!(d.last_seq, Some(41));
        assert_eq!(d.status.as_deref(), Some("ACTIVE"));
        // A data field of another shape does not lose the frame.
        let f = parse(r#"{"type":"x","seq":3,"ts":"t","data":{"text":5}}"#).unwrap();
        assert_eq!(f.seq, Some(3));
        assert!(f.data.is_none());
        assert_eq!(
            ts_unix_us("2026-01-01T00:00:00.123Z").unwrap() % 1_000_000,
            123_000
        );
    }
}
