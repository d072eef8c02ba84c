//! The socket's reader: WebSocket frames out of the request's payload, with
//! the size cap enforced from each frame's header.
//!
//! actix-ws's `MessageStream` drains the payload into its buffer before it
//! decodes, and actix-http's parser waits for a whole frame before it looks
//! at the size limit, so a header announcing 2^62 bytes had the server
//! buffer whatever the client sent until the socket died. This reader reads
//! from the payload only when the buffered bytes do not hold a frame, checks
//! the length a header announces (and what a fragmented message adds up to,
//! and a control frame's 125-byte limit) before any of its payload is kept,
//! and after a fatal error reads nothing more: actix-http's payload then
//! applies backpressure to the client's TCP connection while our Close
//! goes out. (Once the socket has stopped,
//! actix-http lingers for `client_disconnect_timeout`, 1 s, discarding what
//! still arrives without keeping it, then shuts the connection.)

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use actix_web::dev::Payload;
use actix_web::web::{Bytes, BytesMut};
use actix_ws::{CloseReason, Item, ProtocolError};
use bytestring::ByteString;
use futures_util::Stream;

/// A whole message from the client, continuations put together.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Text(ByteString),
    Binary(Bytes),
    Ping(Bytes),
    Pong(Bytes),
    Close(Option<CloseReason>),
}

/// Why the reader gave up on a connection; each maps to a close code.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// A frame or a fragmented message over the cap (1009).
    TooBig { announced: u64, cap: usize },
    /// A text message that is not UTF-8 (1007).
    InvalidUtf8,
    /// Anything else RFC 6455 forbids (1002).
    Protocol(String),
}

impl FrameError {
    /// The close code RFC 6455 section 7.4.1 gives this error.
    pub fn close_code(&self) -> u16 {
        match self {
            FrameError::TooBig { .. } => crate::protocol::close::TOO_BIG,
            FrameError::InvalidUtf8 => crate::protocol::close::INVALID_PAYLOAD,
            FrameError::Protocol(_) => crate::protocol::close::PROTOCOL_ERROR,
        }
    }
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooBig { announced, cap } => {
                write!(f, "message of {announced} bytes is over the cap of {cap}")
            }
            FrameError::InvalidUtf8 => f.write_str("text message is not valid UTF-8"),
            FrameError::Protocol(why) => write!(f, "protocol error: {why}"),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
}

/// The decoding core, independent of where the bytes come from: `push`
/// what arrived, take messages with `next_message` until it says it needs more.
pub struct FrameDecoder {
    buf: BytesMut,
    codec: actix_http::ws::Codec,
    cap: usize,
    /// A fragmented message being put together.
    partial: Option<(Kind, BytesMut)>,
    failed: bool,
}

impl FrameDecoder {
    /// A server-side decoder refusing any message over `cap` bytes.
    pub fn new(cap: usize) -> FrameDecoder {
        FrameDecoder {
            buf: BytesMut::new(),
            codec: actix_http::ws::Codec::new().max_size(cap),
            cap,
            partial: None,
            failed: false,
        }
    }

    /// Bytes held: what arrived and was not yet decoded, plus the parts of
    /// a fragmented message.
    pub fn buffered(&self) -> usize {
        self.buf.len() + self.partial.as_ref().map_or(0, |(_, b)| b.len())
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if !self.failed {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The next whole message, `Ok(None)` when more bytes are needed. After
    /// an error the decoder is spent: it keeps nothing and decodes nothing.
    pub fn next_message(&mut self) -> Result<Option<Incoming>, FrameError> {
        if self.failed {
            return Ok(None);
        }
        let result = self.decode();
        if result.is_err() {
            self.failed = true;
            self.buf = BytesMut::new();
            self.partial = None;
        }
        result
    }

    fn decode(&mut self) -> Result<Option<Incoming>, FrameError> {
        loop {
            if oversized_control(&self.buf) {
                return Err(FrameError::Protocol(
                    "a control frame over 125 bytes".into(),
                ));
            }
            if let Some(announced) = announced_len(&self.buf) {
                let so_far = self.partial.as_ref().map_or(0, |(_, b)| b.len() as u64);
                if announced.saturating_add(so_far) > self.cap as u64 {
                    return Err(FrameError::TooBig {
                        announced: announced.saturating_add(so_far),
                        cap: self.cap,
                    });
                }
            }
            let frame = match self.codec.decode_frame(&mut self.buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(None),
                Err(ProtocolError::Overflow) => {
                    return Err(FrameError::TooBig {
                        announced: u64::MAX,
                        cap: self.cap,
                    })
                }
                Err(error) => return Err(FrameError::Protocol(error.to_string())),
            };
            use actix_http::ws::Frame;
            let whole = match frame {
                Frame::Text(bytes) => self.unfragmented(Kind::Text, bytes)?,
                Frame::Binary(bytes) => self.unfragmented(Kind::Binary, bytes)?,
                Frame::Ping(bytes) => return Ok(Some(Incoming::Ping(bytes))),
                Frame::Pong(bytes) => return Ok(Some(Incoming::Pong(bytes))),
                Frame::Close(reason) => return Ok(Some(Incoming::Close(reason))),
                Frame::Continuation(item) => match self.continuation(item)? {
                    Some(whole) => whole,
                    None => continue,
                },
            };
            return message(whole).map(Some);
        }
    }

    fn unfragmented(&self, kind: Kind, bytes: Bytes) -> Result<(Kind, Bytes), FrameError> {
        if self.partial.is_some() {
            return Err(FrameError::Protocol(
                "a new message began inside a fragmented one".into(),
            ));
        }
        Ok((kind, bytes))
    }

    fn continuation(&mut self, item: Item) -> Result<Option<(Kind, Bytes)>, FrameError> {
        let (first, bytes, last) = match item {
            Item::FirstText(b) => (Some(Kind::Text), b, false),
            Item::FirstBinary(b) => (Some(Kind::Binary), b, false),
            Item::Continue(b) => (None, b, false),
            Item::Last(b) => (None, b, true),
        };
        match (first, &mut self.partial) {
            (Some(_), Some(_)) => {
                return Err(FrameError::Protocol(
                    "a new message began inside a fragmented one".into(),
                ))
            }
            (Some(kind), None) => self.partial = Some((kind, BytesMut::new())),
            (None, None) => {
                return Err(FrameError::Protocol(
                    "a continuation frame with no message to continue".into(),
                ))
            }
            (None, Some(_)) => {}
        }
        let Some((kind, parts)) = self.partial.as_mut() else {
            return Ok(None);
        };
        // The header check above saw this frame's length, so the message
        // is within the cap; extend without a second check.
        parts.extend_from_slice(&bytes);
        if !last {
            return Ok(None);
        }
        let kind = *kind;
        let whole = self.partial.take().map(|(_, b)| b.freeze());
        Ok(whole.map(|b| (kind, b)))
    }
}

fn message((kind, bytes): (Kind, Bytes)) -> Result<Incoming, FrameError> {
    match kind {
        Kind::Binary => Ok(Incoming::Binary(bytes)),
        Kind::Text => ByteString::try_from(bytes)
            .map(Incoming::Text)
            .map_err(|_| FrameError::InvalidUtf8),
    }
}

/// Whether the header at the start of `buf` is a control frame's (opcode
/// 0x8 and up) announcing more than 125 bytes, which RFC 6455 section 5.5
/// forbids: its 7-bit length is then 126 or 127. The codec holds control
/// frames to 125 bytes only once the whole frame has arrived, so a ping
/// announcing 2^62 bytes had it buffer whatever followed; this refuses it
/// from the header's first two bytes.
fn oversized_control(buf: &[u8]) -> bool {
    matches!(buf, [first, second, ..] if first & 0x08 != 0 && second & 0x7F > 125)
}

/// The payload length a data or continuation frame's header announces,
/// once enough of the header has arrived (RFC 6455 section 5.2). Control
/// frames are held to 125 bytes by `oversized_control`.
pub fn announced_len(buf: &[u8]) -> Option<u64> {
    let (&first, &second) = (buf.first()?, buf.get(1)?);
    if first & 0x08 != 0 {
        return None;
    }
    match second & 0x7F {
        126 => {
            let b = buf.get(2..4)?;
            Some(u64::from(u16::from_be_bytes([b[0], b[1]])))
        }
        127 => {
            let b: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            Some(u64::from_be_bytes(b))
        }
        n => Some(u64::from(n)),
    }
}

/// Decodes frames of `Codec` one at a time (it implements `Decoder`).
trait DecodeFrame {
    fn decode_frame(
        &mut self,
        src: &mut BytesMut,
    ) -> Result<Option<actix_http::ws::Frame>, ProtocolError>;
}

impl DecodeFrame for actix_http::ws::Codec {
    fn decode_frame(
        &mut self,
        src: &mut BytesMut,
    ) -> Result<Option<actix_http::ws::Frame>, ProtocolError> {
        actix_codec::Decoder::decode(self, src)
    }
}

/// The request's payload as a stream of whole messages.
pub struct FrameReader {
    payload: Payload,
    decoder: FrameDecoder,
    /// The payload ended or failed: nothing more will come.
    ended: bool,
}

impl FrameReader {
    pub fn new(payload: Payload, cap: usize) -> FrameReader {
        FrameReader {
            payload,
            decoder: FrameDecoder::new(cap),
            ended: false,
        }
    }
}

impl Stream for FrameReader {
    type Item = Result<Incoming, FrameError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.decoder.failed {
                // Read no more: the socket closes with the error's code and
                // stops once its Close is written.
                return Poll::Pending;
            }
            match this.decoder.next_message() {
                Ok(Some(message)) => return Poll::Ready(Some(Ok(message))),
                Ok(None) => {}
                Err(error) => return Poll::Ready(Some(Err(error))),
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.payload).poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => this.decoder.push(&bytes),
                Poll::Ready(Some(Err(_))) | Poll::Ready(None) => this.ended = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
