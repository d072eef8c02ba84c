//! Attacks that hold connections: a flooding candidate, one token's many
//! sockets, a stalled observer, slowloris. Every loop stops by itself at
//! the hostile phase's end (`Target::until`), every wait has a deadline,
//! and whatever the server answers is counted, never unwrapped.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio::time::{interval, sleep, sleep_until, timeout, timeout_at, Instant, MissedTickBehavior};
use tokio_tungstenite::client_async_with_config;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::{HeaderValue, AUTHORIZATION};
use tokio_tungstenite::tungstenite::{self, Message};

use super::raw::{self, RawWs, Seen, TEXT};
use super::{fresh_token, open, running, HostileParams, KindStats, Target, BACKOFF};
use crate::ws::{self, close_code, parse, Ws};

/// A WebSocket (tungstenite) from the hostile source; a refusal gives its
/// outcome (`HTTP 429`, ...).
async fn ws_connect(t: &Target, token: &str) -> Result<Ws, String> {
    let tcp = raw::tcp(t.addr, t.source)
        .await
        .map_err(|_| "connect failed".to_string())?;
    let mut req = format!("ws://{}/interview", t.addr)
        .into_client_request()
        .map_err(|e| format!("request: {e}"))?;
    let bearer =
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| format!("token: {e}"))?;
    req.headers_mut().insert(AUTHORIZATION, bearer);
    match timeout(
        Duration::from_secs(10),
        client_async_with_config(req, tcp, Some(ws::config())),
    )
    .await
    {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(tungstenite::Error::Http(resp))) => Err(format!("HTTP {}", resp.status().as_u16())),
        Ok(Err(_)) => Err("upgrade failed".into()),
        Err(_) => Err("upgrade timed out".into()),
    }
}

/// Waits for `connected`: `Err(outcome)` when the server closes first.
async fn connected(ws: &mut Ws) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match timeout_at(deadline, ws.next()).await {
            Err(_) => return Err("no `connected` within 10 s".into()),
            Ok(Some(Ok(Message::Text(t)))) => {
                if parse(&t).is_some_and(|f| f.kind == "connected") {
                    return Ok(());
                }
            }
            Ok(Some(Ok(Message::Close(c)))) => {
                return Err(format!("close {} before `connected`", close_code(&c)))
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => return Err("eof before `connected`".into()),
        }
    }
}

/// A candidate sending `proctor-event` far over its budgets (the
/// connection's rate, the interview's proctor bucket); it rejoins whenever
/// it is closed.
pub async fn proctor_flood(
    t: Arc<Target>,
    p: Arc<HostileParams>,
    s: Arc<KindStats>,
    interview: String,
) {
    let token = t.tokens.candidate(&interview);
    let mut started_interview = false;
    while running(&t) {
        KindStats::add(&s.connections, 1);
        let mut ws = match ws_connect(&t, &token).await {
            Ok(ws) => ws,
            Err(outcome) => {
                s.outcomes.add(outcome);
                sleep(BACKOFF).await;
                continue;
            }
        };
        if let Err(outcome) = connected(&mut ws).await {
            s.outcomes.add(outcome);
            sleep(BACKOFF).await;
            continue;
        }
        let join = ws::send(&mut ws, "join-interview", json!({"interviewId": interview})).await;
        if join.is_ok() && !started_interview {
            started_interview = ws::send(&mut ws, "start-interview", json!({}))
                .await
                .is_ok();
        }
        let mut tick = interval(Duration::from_secs_f64(1.0 / p.proctor_flood_rate.max(0.1)));
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = sleep_until(t.until) => {
                    let _ = timeout(Duration::from_secs(2), ws.close(None)).await;
                    s.outcomes.add("open at the end");
                    break;
                }
                _ = tick.tick() => {
                    let event = json!({"type": "tab-switch", "severity": "low", "message": "flood"});
                    if ws::send(&mut ws, "proctor-event", event).await.is_err() {
                        s.outcomes.add("send failed");
                        break;
                    }
                    KindStats::add(&s.frames, 1);
                }
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(code) = parse(&text).filter(|f| f.kind == "error").and_then(|f| f.data).and_then(|d| d.code) {
                            s.outcomes.add(format!("error {code}"));
                        }
                    }
                    Some(Ok(Message::Close(c))) => {
                        s.outcomes.add(format!("close {}", close_code(&c)));
                        break;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => {
                        s.outcomes.add("eof");
                        break;
                    }
                },
            }
        }
        sleep(BACKOFF).await;
    }
}

/// One token opening `count` sockets at once and holding those it gets
/// until the phase ends.
pub async fn one_token_sockets(t: Arc<Target>, count: usize, s: Arc<KindStats>, interview: String) {
    let token = Arc::new(t.tokens.candidate(&interview));
    let gate = Arc::new(Semaphore::new(16));
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        let (t, s, token, gate) = (t.clone(), s.clone(), token.clone(), gate.clone());
        held.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            if !running(&t) {
                return;
            }
            KindStats::add(&s.connections, 1);
            let mut ws = match ws_connect(&t, &token).await {
                Ok(ws) => ws,
                Err(outcome) => return s.outcomes.add(outcome),
            };
            if let Err(outcome) = connected(&mut ws).await {
                return s.outcomes.add(outcome);
            }
            s.outcomes.add("connected");
            drop(permit);
            loop {
                tokio::select! {
                    _ = sleep_until(t.until) => {
                        let _ = timeout(Duration::from_secs(2), ws.close(None)).await;
                        return s.outcomes.add("held to the end");
                    }
                    msg = ws.next() => match msg {
                        Some(Ok(Message::Close(c))) => return s.outcomes.add(format!("closed {} while held", close_code(&c))),
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => return s.outcomes.add("eof while held"),
                    },
                }
            }
        }));
    }
    for h in held {
        let _ = h.await;
    }
}

/// Observes an honest interview from `lastSeq` 0, then reads nothing
/// until the phase ends; then reads what is there to see how the server
/// ended it.
pub async fn stalled_observer(t: Arc<Target>, s: Arc<KindStats>, client: usize, interview: String) {
    let Some(RawWs {
        mut reader,
        mut writer,
        mut masks,
    }) = open(&t, &s, &fresh_token(&t, 3, client, 0)).await
    else {
        return;
    };
    let observe =
        json!({"type": "observe-interview", "data": {"interviewId": interview, "lastSeq": 0}});
    let f = raw::frame(TEXT, observe.to_string().as_bytes(), &mut masks);
    if !matches!(
        timeout(Duration::from_secs(5), writer.write_all(&f)).await,
        Ok(Ok(()))
    ) {
        s.outcomes.add("observe not sent");
        return;
    }
    KindStats::add(&s.frames, 1);
    KindStats::add(&s.bytes, f.len() as u64);
    sleep_until(t.until).await;
    let mut seen = Seen::default();
    let result = reader
        .until_close(Instant::now() + Duration::from_secs(1), &mut seen)
        .await;
    s.max_accepted.fetch_max(reader.read, Ordering::Relaxed);
    match result {
        Ok(code) => s.outcomes.add(format!("close {code}")),
        Err("open") => s.outcomes.add("still open"),
        Err(other) => s.outcomes.add(other),
    }
}

/// An HTTP request whose headers never end: a line a second.
pub async fn slowloris(t: Arc<Target>, s: Arc<KindStats>, client: usize) {
    while running(&t) {
        KindStats::add(&s.connections, 1);
        let Ok(tcp) = raw::tcp(t.addr, t.source).await else {
            s.outcomes.add("connect failed");
            sleep(BACKOFF).await;
            continue;
        };
        let (mut rd, mut wr) = tcp.into_split();
        let started = Instant::now();
        let first = format!("GET /interview HTTP/1.1\r\nHost: {}\r\n", t.addr);
        if wr.write_all(first.as_bytes()).await.is_err() {
            s.outcomes.add("write failed");
            continue;
        }
        let mut line = 0u64;
        let mut buf = [0u8; 1024];
        loop {
            tokio::select! {
                _ = sleep_until(t.until) => {
                    s.outcomes.add("open at the end");
                    break;
                }
                _ = sleep(Duration::from_secs(1)) => {
                    line += 1;
                    let header = format!("X-Slow-{client}-{line}: a\r\n");
                    if wr.write_all(header.as_bytes()).await.is_err() {
                        s.outcomes.add("write failed");
                        s.refused_after.record(started.elapsed());
                        break;
                    }
                    KindStats::add(&s.frames, 1);
                    KindStats::add(&s.bytes, header.len() as u64);
                }
                r = rd.read(&mut buf) => {
                    match r {
                        Ok(0) => s.outcomes.add("closed by the server"),
                        Ok(n) => match raw::status_of(&buf[..n]) {
                            Some(status) => s.outcomes.add(format!("HTTP {status}")),
                            None => s.outcomes.add("garbage reply"),
                        },
                        Err(_) => s.outcomes.add("reset"),
                    }
                    s.refused_after.record(started.elapsed());
                    break;
                }
            }
        }
    }
}
