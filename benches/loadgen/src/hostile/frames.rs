//! Attacks with frames: oversized headers and frames, floods, invalid
//! UTF-8, each on raw sockets. Every loop stops by itself at the hostile
//! phase's end (`Target::until`), every wait has a deadline, and whatever
//! the server answers is counted, never unwrapped.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::time::{sleep, sleep_until, timeout, timeout_at, Instant};

use super::raw::{self, RawWs, Seen, CLOSE, PING, TEXT};
use super::{
    fresh_token, open, record_bye, record_end, running, HostileParams, KindStats, Target, BACKOFF,
    GRACE,
};

/// A header announcing 2^62 bytes (a text frame, then a ping), followed by
/// as much data as the server takes; every third connection a binary frame
/// of the hard cap + 1 bytes instead.
pub async fn huge_header(t: Arc<Target>, p: Arc<HostileParams>, s: Arc<KindStats>, client: usize) {
    let mut attempt = 0u64;
    while running(&t) {
        attempt += 1;
        let Some(RawWs {
            mut reader,
            mut writer,
            mut masks,
        }) = open(&t, &s, &fresh_token(&t, 0, client, attempt)).await
        else {
            sleep(BACKOFF).await;
            continue;
        };
        let started = Instant::now();
        let key = masks.next_key();
        let (label, head, limit) = match attempt % 3 {
            1 => (
                "text 2^62: ",
                raw::header(true, TEXT, 1 << 62, key),
                p.huge_header_mib << 20,
            ),
            2 => (
                "ping 2^62: ",
                raw::header(true, PING, 1 << 62, key),
                p.huge_header_mib << 20,
            ),
            _ => {
                let n = p.hard_frame_bytes as u64 + 1;
                ("hard cap + 1: ", raw::header(true, 0x2, n, key), n)
            }
        };
        let read_until = (started + Duration::from_secs(8)).min(t.until + GRACE);
        let read = tokio::spawn(async move {
            let mut seen = Seen::default();
            let r = reader.until_close(read_until, &mut seen).await;
            (r, Instant::now())
        });
        let write_until = (started + Duration::from_secs(5)).min(t.until);
        let mut sent = 0u64;
        if let Ok(Ok(())) = timeout_at(write_until, writer.write_all(&head)).await {
            let chunk = vec![0x5Au8; 64 * 1024];
            while sent < limit && !read.is_finished() {
                let n = (limit - sent).min(chunk.len() as u64) as usize;
                match timeout_at(write_until, writer.write_all(&chunk[..n])).await {
                    Ok(Ok(())) => sent += n as u64,
                    _ => break,
                }
            }
        }
        KindStats::add(&s.frames, 1);
        KindStats::add(&s.bytes, head.len() as u64 + sent);
        s.max_accepted.fetch_max(sent, Ordering::Relaxed);
        let (result, at) = read.await.unwrap_or((Err("eof"), Instant::now()));
        record_end(&s, label, result, at.duration_since(started));
        drop(writer);
        sleep(Duration::from_millis(100)).await;
    }
}

/// A `heartbeat` padded to exactly `len` bytes.
fn padded_heartbeat(len: usize) -> Vec<u8> {
    let head = br#"{"type":"heartbeat","data":{"pad":""#;
    let tail = br#""}}"#;
    let pad = len.saturating_sub(head.len() + tail.len());
    let mut v = head.to_vec();
    v.extend(std::iter::repeat_n(b'x', pad));
    v.extend_from_slice(tail);
    v
}

/// Text frames one byte over `MAX_FRAME_BYTES`, under the rate limit: each
/// should get `PAYLOAD_TOO_LARGE` with the socket left open.
pub async fn over_max_frame(
    t: Arc<Target>,
    p: Arc<HostileParams>,
    s: Arc<KindStats>,
    client: usize,
) {
    let payload = padded_heartbeat(p.max_frame_bytes + 1);
    let period = Duration::from_secs_f64(1.0 / p.over_max_frame_rate.max(0.1));
    let mut attempt = 0u64;
    while running(&t) {
        attempt += 1;
        let Some(RawWs {
            mut reader,
            mut writer,
            mut masks,
        }) = open(&t, &s, &fresh_token(&t, 1, client, attempt)).await
        else {
            sleep(BACKOFF).await;
            continue;
        };
        let started = Instant::now();
        let until = t.until + GRACE;
        let read = tokio::spawn(async move {
            let mut seen = Seen::default();
            let r = reader.until_close(until, &mut seen).await;
            (r, seen, Instant::now())
        });
        let mut next = Instant::now();
        while running(&t) && !read.is_finished() {
            let f = raw::frame(TEXT, &payload, &mut masks);
            match timeout_at(t.until, writer.write_all(&f)).await {
                Ok(Ok(())) => {
                    KindStats::add(&s.frames, 1);
                    KindStats::add(&s.bytes, f.len() as u64);
                }
                _ => break,
            }
            next += period;
            sleep_until(next.min(t.until)).await;
        }
        let said_bye = !read.is_finished();
        if said_bye {
            let bye = raw::frame(CLOSE, &1000u16.to_be_bytes(), &mut masks);
            let _ = timeout(Duration::from_secs(1), writer.write_all(&bye)).await;
        }
        let (result, seen, at) =
            read.await
                .unwrap_or((Err("eof"), Seen::default(), Instant::now()));
        for (code, n) in seen.errors {
            s.outcomes.add_n(format!("error {code}"), n);
        }
        if said_bye {
            record_bye(&s, result);
        } else {
            record_end(&s, "", result, at.duration_since(started));
        }
    }
}

/// Pings as fast as the socket takes them, up to a rate, for at most 15 s
/// a connection.
pub async fn ping_flood(t: Arc<Target>, p: Arc<HostileParams>, s: Arc<KindStats>, client: usize) {
    const BATCH: u64 = 200;
    let per_batch = Duration::from_secs_f64(BATCH as f64 / p.ping_flood_rate.max(1) as f64);
    let mut attempt = 0u64;
    while running(&t) {
        attempt += 1;
        let Some(RawWs {
            mut reader,
            mut writer,
            mut masks,
        }) = open(&t, &s, &fresh_token(&t, 2, client, attempt)).await
        else {
            sleep(BACKOFF).await;
            continue;
        };
        let started = Instant::now();
        let read_until = (started + Duration::from_secs(20)).min(t.until + GRACE);
        let read = tokio::spawn(async move {
            let mut seen = Seen::default();
            let r = reader.until_close(read_until, &mut seen).await;
            (r, seen, Instant::now())
        });
        let batch: Vec<u8> = (0..BATCH)
            .flat_map(|_| raw::frame(PING, b"p", &mut masks))
            .collect();
        let write_until = (started + Duration::from_secs(15)).min(t.until);
        let mut next = Instant::now();
        while Instant::now() < write_until && !read.is_finished() {
            match timeout_at(write_until, writer.write_all(&batch)).await {
                Ok(Ok(())) => {
                    KindStats::add(&s.frames, BATCH);
                    KindStats::add(&s.bytes, batch.len() as u64);
                }
                _ => break,
            }
            next += per_batch;
            sleep_until(next).await;
        }
        let said_bye = !read.is_finished();
        if said_bye {
            let bye = raw::frame(CLOSE, &1000u16.to_be_bytes(), &mut masks);
            let _ = timeout(Duration::from_secs(1), writer.write_all(&bye)).await;
        }
        let (result, seen, at) =
            read.await
                .unwrap_or((Err("eof"), Seen::default(), Instant::now()));
        s.outcomes.add_n("pongs received", seen.pongs);
        if said_bye {
            record_bye(&s, result);
        } else {
            record_end(&s, "", result, at.duration_since(started));
        }
    }
}

/// A text frame that is not UTF-8, on a new connection every so often.
pub async fn invalid_utf8(t: Arc<Target>, p: Arc<HostileParams>, s: Arc<KindStats>, client: usize) {
    let period = Duration::from_secs_f64(1.0 / p.invalid_utf8_rate.max(0.1));
    let mut attempt = 0u64;
    while running(&t) {
        attempt += 1;
        let next = Instant::now() + period;
        if let Some(RawWs {
            mut reader,
            mut writer,
            mut masks,
        }) = open(&t, &s, &fresh_token(&t, 4, client, attempt)).await
        {
            let started = Instant::now();
            let f = raw::frame(TEXT, &[b'{', 0xFF, 0xFE, b'}'], &mut masks);
            if let Ok(Ok(())) = timeout(Duration::from_secs(5), writer.write_all(&f)).await {
                KindStats::add(&s.frames, 1);
                KindStats::add(&s.bytes, f.len() as u64);
            }
            let mut seen = Seen::default();
            let result = reader
                .until_close(started + Duration::from_secs(5), &mut seen)
                .await;
            record_end(&s, "", result, started.elapsed());
        }
        sleep_until(next).await;
    }
}
