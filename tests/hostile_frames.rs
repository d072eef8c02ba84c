//! Frames a hostile client crafts by hand (RFC 6455 section 5): sizes
//! announced in a header, fragmented messages that never end, invalid
//! UTF-8, and ping floods. The client here writes raw frames on a TCP
//! socket, since a WebSocket library would refuse to send most of them.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// A WebSocket connection driven frame by frame; its halves can be used
/// from two tasks, so the close code is read while a flood is written (a
/// server that closes with unread data resets the connection, and a reset
/// discards what the client had not read yet).
struct RawSocket {
    tcp: OwnedWriteHalf,
    reader: RawReader,
}

struct RawReader {
    tcp: OwnedReadHalf,
    read: Vec<u8>,
}

impl RawSocket {
    /// Upgrades `GET /interview?token=…` by hand and checks the 101.
    async fn open(port: u16, token: &str) -> RawSocket {
        let mut tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to the server");
        tcp.set_nodelay(true).expect("nodelay");
        let request = format!(
            "GET /interview?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        tcp.write_all(request.as_bytes())
            .await
            .expect("send the upgrade");
        let mut read = Vec::new();
        let end = tokio::time::timeout(STEP, async {
            loop {
                if let Some(i) = read.windows(4).position(|w| w == b"\r\n\r\n") {
                    return i + 4;
                }
                let mut chunk = [0u8; 4096];
                let n = tcp.read(&mut chunk).await.expect("read the upgrade reply");
                assert!(n > 0, "the server closed during the upgrade");
                read.extend_from_slice(&chunk[..n]);
            }
        })
        .await
        .expect("the upgrade reply within 5 s");
        let head = String::from_utf8_lossy(&read[..end]).to_string();
        assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
        read.drain(..end);
        let (rd, wr) = tcp.into_split();
        RawSocket {
            tcp: wr,
            reader: RawReader { tcp: rd, read },
        }
    }

    /// One client frame: FIN bit, opcode, a zero mask (allowed: what RFC
    /// 6455 requires is that the bit is set), the announced length.
    fn header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
        let mut h = vec![(if fin { 0x80 } else { 0 }) | opcode];
        if len < 126 {
            h.push(0x80 | len as u8);
        } else if len <= u64::from(u16::MAX) {
            h.push(0x80 | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            h.push(0x80 | 127);
            h.extend_from_slice(&len.to_be_bytes());
        }
        h.extend_from_slice(&[0, 0, 0, 0]);
        h
    }

    async fn frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
        let mut f = Self::header(fin, opcode, payload.len() as u64);
        f.extend_from_slice(payload);
        self.tcp.write_all(&f).await
    }

    async fn close_code(&mut self, wait: Duration) -> Option<u16> {
        self.reader.close_code(wait).await
    }

    async fn next_frame(&mut self, wait: Duration) -> Option<(u8, Vec<u8>)> {
        self.reader.next_frame(wait).await
    }
}

impl RawReader {
    /// The next server frame (opcode, payload), or `None` once the
    /// connection is closed or `wait` passes.
    async fn next_frame(&mut self, wait: Duration) -> Option<(u8, Vec<u8>)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some((opcode, payload, used)) = parse_server_frame(&self.read) {
                self.read.drain(..used);
                return Some((opcode, payload));
            }
            let mut chunk = [0u8; 16384];
            let n = tokio::time::timeout_at(deadline, self.tcp.read(&mut chunk))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.read.extend_from_slice(&chunk[..n]);
        }
    }

    /// The server's close code, skipping any other frame first.
    async fn close_code(&mut self, wait: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let (opcode, payload) = self.next_frame(left).await?;
            if opcode == 8 {
                return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            }
        }
    }
}

/// An unmasked server frame at the start of `buf`: (opcode, payload, bytes used).
fn parse_server_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (b0, b1) = (*buf.first()?, *buf.get(1)?);
    let (len, at) = match b1 & 0x7F {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    Some((b0 & 0x0F, payload, at + len))
}

/// `/healthz` must answer while the hostile client is at work; returns how
/// long it took.
async fn healthz(server: &TestServer) -> Duration {
    let started = Instant::now();
    let (status, _) = server.get("/healthz", None).await;
    assert_eq!(status, 200, "healthz while a client floods");
    started.elapsed()
}

const HUNDREDS_OF_MIB: u64 = 300 * 1024 * 1024;

/// A header announcing 2^62 bytes is refused from the header: the server
/// closes with 1009 and does not buffer what follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_announcing_huge_length_is_closed_before_its_payload() {
    huge_header_is_closed_before_its_payload(0x1, 1009).await;
}

/// The same from a ping: a control frame may carry 125 bytes at most (RFC
/// 6455 section 5.5), so a ping announcing 2^62 is a protocol error, 1002,
/// from its header. (Found by actors/tests/fuzz_frames.rs: the 125-byte
/// limit was checked only once the whole frame had arrived, so the server
/// kept whatever followed such a ping.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_announcing_huge_length_is_closed_before_its_payload() {
    huge_header_is_closed_before_its_payload(0x9, 1002).await;
}

async fn huge_header_is_closed_before_its_payload(opcode: u8, close_code: u16) {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    // Settle the server's own allocations first.
    healthz(&server).await;
    let before = server.rss_kib().expect("server RSS");

    let mut sock = RawSocket::open(server.port, &iv.join_token).await;
    let header = RawSocket::header(true, opcode, 1u64 << 62);
    sock.tcp.write_all(&header).await.expect("send the header");
    let RawSocket {
        tcp: mut writer,
        mut reader,
    } = sock;
    let closed = tokio::spawn(async move { reader.close_code(Duration::from_secs(10)).await });
    let flood = tokio::spawn(async move {
        let chunk = vec![0u8; 256 * 1024];
        let mut sent = 0u64;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
        while sent < HUNDREDS_OF_MIB {
            match tokio::time::timeout_at(deadline, writer.write_all(&chunk)).await {
                Ok(Ok(())) => sent += chunk.len() as u64,
                _ => break,
            }
        }
        // The writer is kept open: a server that ended the connection only
        // when the client does would free what it kept before it is seen.
        (sent, writer)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = server.rss_kib().expect("server RSS");
    let took = healthz(&server).await;
    let (sent, writer) = flood.await.expect("the flood task");
    let after = server.rss_kib().expect("server RSS");
    drop(writer);
    eprintln!(
        "sent {} MiB; RSS {before} -> {during} -> {after} KiB; healthz {took:?}",
        sent >> 20
    );
    assert!(
        during.max(after) < before + 4 * 1024,
        "RSS grew from {before} KiB to {during}/{after} KiB behind one header"
    );
    assert!(took < STEP, "healthz took {took:?}");
    let code = closed.await.expect("the reader task");
    assert_eq!(
        code,
        Some(close_code),
        "closed with {close_code} from the header"
    );
}

/// A fragmented message that never ends is closed with 1009 once its
/// parts pass the cap, each part being small.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_fragmented_message_is_closed_at_the_cap() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    healthz(&server).await;
    let before = server.rss_kib().expect("server RSS");
    let sock = RawSocket::open(server.port, &iv.join_token).await;
    let RawSocket {
        tcp: mut writer,
        mut reader,
    } = sock;
    let closed = tokio::spawn(async move { reader.close_code(Duration::from_secs(15)).await });
    let part = vec![b'x'; 32 * 1024];
    let mut sent = 0u64;
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut opcode = 0x1;
    // Write until the server shuts the connection (a write fails) or time
    // runs out: a server that kept reading one message would never shut it.
    let mut shut = false;
    while Instant::now() < deadline {
        let mut f = RawSocket::header(false, opcode, part.len() as u64);
        f.extend_from_slice(&part);
        match tokio::time::timeout(Duration::from_secs(1), writer.write_all(&f)).await {
            Ok(Ok(())) => sent += part.len() as u64,
            Ok(Err(_)) => {
                shut = true;
                break;
            }
            Err(_) => {}
        }
        opcode = 0x0;
    }
    let during = server.rss_kib().expect("server RSS");
    healthz(&server).await;
    let code = closed.await.expect("the reader task");
    eprintln!(
        "sent {} KiB of parts; RSS {before} -> {during} KiB",
        sent >> 10
    );
    assert_eq!(
        code,
        Some(1009),
        "a fragmented message over the cap closes with 1009"
    );
    assert!(
        shut,
        "the server still took parts of one message after {} MiB",
        sent >> 20
    );
    assert!(
        during < before + 4 * 1024,
        "RSS grew from {before} KiB to {during} KiB"
    );
}

/// RFC 6455 section 8.1: a text message that is not UTF-8 closes with 1007.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_text_closes_with_1007() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let mut sock = RawSocket::open(server.port, &iv.join_token).await;
    sock.frame(true, 0x1, &[b'{', 0xFF, 0xFE, b'}'])
        .await
        .expect("send the frame");
    assert_eq!(sock.close_code(STEP).await, Some(1007));

    // Split across fragments, the same.
    let mut sock = RawSocket::open(server.port, &iv.join_token).await;
    sock.frame(false, 0x1, &[b'{', 0xE2]).await.expect("send");
    sock.frame(true, 0x0, &[0x28, 0xA1, b'}'])
        .await
        .expect("send");
    assert_eq!(sock.close_code(STEP).await, Some(1007));
}

/// Pings count against the connection's rate: a burst of them gets a
/// burst's worth of pongs, not one each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood_is_rate_limited() {
    let server =
        TestServer::start(&[("RATE_LIMIT_PER_SEC", "50"), ("RATE_LIMIT_BURST", "100")]).await;
    let iv = server.create_interview().await;
    let mut sock = RawSocket::open(server.port, &iv.join_token).await;
    let started = Instant::now();
    let mut burst = Vec::new();
    for _ in 0..2000 {
        burst.extend_from_slice(&RawSocket::header(true, 0x9, 4));
        burst.extend_from_slice(b"ping");
    }
    sock.tcp.write_all(&burst).await.expect("send the pings");
    let mut pongs = 0u64;
    while let Some((opcode, _)) = sock.next_frame(Duration::from_secs(1)).await {
        if opcode == 0xA {
            pongs += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let allowed = 100.0 + 50.0 * elapsed;
    eprintln!("{pongs} pongs for 2000 pings in {elapsed:.2} s (budget {allowed:.0})");
    assert!(
        (pongs as f64) <= allowed + 1.0,
        "{pongs} pongs for 2000 pings in {elapsed:.2} s: pings are not rate-limited"
    );
    assert!(pongs > 0, "pings within the budget are answered");
}
