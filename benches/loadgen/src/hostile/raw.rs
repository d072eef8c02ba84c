//! A WebSocket client written frame by frame on a plain TCP socket, for the
//! hostile clients: a WebSocket library refuses to send most of what they
//! send. Client frames follow RFC 6455 section 5.2 (masked); whatever the
//! server sends is parsed without trusting it.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{timeout_at, Instant};

pub const TEXT: u8 = 0x1;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// The largest server frame this reader takes (a replay page's frame is a
/// few KiB); anything larger ends the connection as garbage.
const MAX_SERVER_FRAME: usize = 16 * 1024 * 1024;

/// A TCP connection to `addr`, from `source` when given (another loopback
/// address, so that per-address limits see the hostile clients apart from
/// the honest ones).
pub async fn tcp(addr: SocketAddr, source: Option<IpAddr>) -> Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// How an upgrade went.
pub enum Upgrade {
    Open(RawWs),
    /// The server answered with this HTTP status instead of 101.
    Refused(u16),
}

/// An upgraded connection: what was read past the 101, and both halves.
pub struct RawWs {
    pub reader: RawReader,
    pub writer: OwnedWriteHalf,
    pub masks: Masks,
}

pub struct RawReader {
    tcp: OwnedReadHalf,
    buf: Vec<u8>,
    /// Bytes read in all.
    pub read: u64,
}

/// `GET /interview` with a bearer token, by hand.
pub async fn upgrade(
    addr: SocketAddr,
    source: Option<IpAddr>,
    token: &str,
    wait: Duration,
) -> Result<Upgrade> {
    let mut tcp = tcp(addr, source).await?;
    let request = format!(
        "GET /interview HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await?;
    let deadline = Instant::now() + wait;
    let mut buf = Vec::new();
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 16 * 1024 {
            bail!("an upgrade reply of over 16 KiB");
        }
        let mut chunk = [0u8; 4096];
        let n = timeout_at(deadline, tcp.read(&mut chunk))
            .await
            .map_err(|_| anyhow!("no upgrade reply within {wait:?}"))??;
        if n == 0 {
            bail!("closed during the upgrade");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let status = status_of(&buf[..end]).ok_or_else(|| anyhow!("not an HTTP reply"))?;
    if status != 101 {
        return Ok(Upgrade::Refused(status));
    }
    buf.drain(..end);
    let (rd, wr) = tcp.into_split();
    Ok(Upgrade::Open(RawWs {
        reader: RawReader {
            tcp: rd,
            read: buf.len() as u64,
            buf,
        },
        writer: wr,
        masks: Masks::new(),
    }))
}

/// The status code of an HTTP/1.1 reply head.
pub fn status_of(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Masking keys (RFC 6455 section 5.3), one per frame; not secret here.
pub struct Masks(u64);

impl Masks {
    pub fn new() -> Masks {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(7);
        Masks(seed | 1)
    }

    pub fn next_key(&mut self) -> [u8; 4] {
        // xorshift64
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 as u32).to_be_bytes()
    }
}

impl Default for Masks {
    fn default() -> Self {
        Masks::new()
    }
}

/// A client frame's header: FIN, opcode, MASK, the announced length in the
/// fewest bytes, the masking key.
pub fn header(fin: bool, opcode: u8, len: u64, key: [u8; 4]) -> Vec<u8> {
    let mut h = vec![(if fin { 0x80 } else { 0 }) | (opcode & 0x0F)];
    if len < 126 {
        h.push(0x80 | len as u8);
    } else if len <= u64::from(u16::MAX) {
        h.push(0x80 | 126);
        h.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        h.push(0x80 | 127);
        h.extend_from_slice(&len.to_be_bytes());
    }
    h.extend_from_slice(&key);
    h
}

/// A whole masked client frame.
pub fn frame(opcode: u8, payload: &[u8], masks: &mut Masks) -> Vec<u8> {
    let key = masks.next_key();
    let mut f = header(true, opcode, payload.len() as u64, key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

impl RawReader {
    /// The next server frame (opcode, payload), or `None` once the
    /// connection is closed, broken, sends garbage, or `deadline` passes.
    pub async fn next_frame(&mut self, deadline: Instant) -> Option<(u8, Vec<u8>)> {
        loop {
            match parse_server_frame(&self.buf) {
                Ok(Some((opcode, payload, used))) => {
                    self.buf.drain(..used);
                    return Some((opcode, payload));
                }
                Ok(None) => {}
                Err(()) => return None,
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = timeout_at(deadline, self.tcp.read(&mut chunk))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.read += n as u64;
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads until the server's Close (its code, 1005 without one), the end
    /// of the connection (`Err("eof")`) or the deadline (`Err("open")`),
    /// counting pongs and text frames on the way.
    pub async fn until_close(
        &mut self,
        deadline: Instant,
        seen: &mut Seen,
    ) -> Result<u16, &'static str> {
        loop {
            match self.next_frame(deadline).await {
                Some((CLOSE, payload)) => {
                    return Ok(payload
                        .get(..2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .unwrap_or(1005))
                }
                Some((PONG, _)) => seen.pongs += 1,
                Some((TEXT, payload)) => {
                    seen.texts += 1;
                    if let Some(code) = error_code(&payload) {
                        *seen.errors.entry(code).or_default() += 1;
                    }
                }
                Some(_) => {}
                None if Instant::now() >= deadline => return Err("open"),
                None => return Err("eof"),
            }
        }
    }
}

/// What a hostile client got back besides the Close.
#[derive(Debug, Default)]
pub struct Seen {
    pub pongs: u64,
    pub texts: u64,
    /// `error` frames by code.
    pub errors: std::collections::BTreeMap<String, u64>,
}

/// The `code` of an `error` frame.
pub fn error_code(payload: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    if v.get("type")?.as_str()? != "error" {
        return None;
    }
    Some(v.get("data")?.get("code")?.as_str()?.to_owned())
}

/// An unmasked server frame at the start of `buf`: (opcode, payload, bytes
/// used); `Ok(None)` when more bytes are needed, `Err` for a frame no
/// server of ours sends.
fn parse_server_frame(buf: &[u8]) -> Result<Option<(u8, Vec<u8>, usize)>, ()> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    if b1 & 0x80 != 0 {
        return Err(());
    }
    let (len, at) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => (u64::from_be_bytes(b), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    let len = usize::try_from(len).map_err(|_| ())?;
    if len > MAX_SERVER_FRAME {
        return Err(());
    }
    match buf.get(at..at + len) {
        Some(payload) => Ok(Some((b0 & 0x0F, payload.to_vec(), at + len))),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_frames_and_statuses() {
        assert_eq!(
            parse_server_frame(&[0x88, 0x02, 0x03, 0xE9]),
            Ok(Some((CLOSE, vec![0x03, 0xE9], 4)))
        );
        assert_eq!(parse_server_frame(&[0x81, 0x05, b'h']), Ok(None));
        assert_eq!(parse_server_frame(&[0x81, 0x85]), Err(()));
        assert_eq!(
            status_of(b"HTTP/1.1 429 Too Many Requests\r\n\r\n"),
            Some(429)
        );
        assert_eq!(
            error_code(br#"{"type":"error","data":{"code":"RATE_LIMITED"}}"#).as_deref(),
            Some("RATE_LIMITED")
        );
        let h = header(true, TEXT, 1 << 62, [1, 2, 3, 4]);
        assert_eq!(h.len(), 14);
        assert_eq!(h[1], 0x80 | 127);
    }
}
