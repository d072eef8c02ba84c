//! Property tests of the WebSocket frame decoder (`socket::frames`), the
//! first code that sees what a client sends.
//!
//! The client side is an encoder written here from RFC 6455 section 5.2,
//! not from the decoder: it masks, fragments and interleaves control frames
//! the way the RFC allows, and breaks the rules the RFC forbids one at a
//! time. Every property feeds the bytes in random chunks, draining the
//! decoder after each chunk as `FrameReader` does, and checks after every
//! drain that the decoder holds no more than one message within the cap
//! plus one frame header and one control frame (`bound`).
//!
//! `PROPTEST_CASES=N` runs more cases than the CI default.

use interview_actors::socket::frames::{FrameDecoder, FrameError, Incoming};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::FileFailurePersistence;

/// Cases per property in a plain `cargo test`; a few seconds in all.
const DEFAULT_CASES: u32 = 256;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    ProptestConfig {
        cases,
        // Failures found are kept beside this file and tried first on
        // every later run.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// The client: RFC 6455 section 5.2.

const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// The longest frame header: 2 bytes, a 64-bit length, a masking key.
const MAX_HEADER: usize = 2 + 8 + 4;
/// RFC 6455 section 5.5: a control frame's payload is at most 125 bytes.
const MAX_CONTROL: usize = 125;

/// One frame as a client writes it.
#[derive(Debug, Clone)]
struct RawFrame {
    fin: bool,
    /// RSV1..RSV3, the low three bits.
    rsv: u8,
    opcode: u8,
    /// `None`: unmasked (forbidden from a client, section 5.1).
    mask: Option<[u8; 4]>,
    payload: Vec<u8>,
    /// The length the header announces, when it is not the payload's.
    announce: Option<u64>,
}

impl RawFrame {
    fn new(fin: bool, opcode: u8, mask: [u8; 4], payload: Vec<u8>) -> RawFrame {
        RawFrame {
            fin,
            rsv: 0,
            opcode,
            mask: Some(mask),
            payload,
            announce: None,
        }
    }

    /// The frame's bytes: FIN, RSV, opcode; MASK and the payload length in
    /// the fewest bytes (7 bits, or 126 + 16 bits, or 127 + 64 bits); the
    /// masking key; the payload XORed with the key, octet i with key[i % 4].
    fn encode(&self) -> Vec<u8> {
        let len = self.announce.unwrap_or(self.payload.len() as u64);
        let mut out =
            vec![(u8::from(self.fin) << 7) | ((self.rsv & 0x7) << 4) | (self.opcode & 0xF)];
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        if len <= 125 {
            out.push(mask_bit | len as u8);
        } else if len <= u64::from(u16::MAX) {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
        match self.mask {
            Some(key) => {
                out.extend_from_slice(&key);
                out.extend(self.payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
            }
            None => out.extend_from_slice(&self.payload),
        }
        out
    }

    /// Bytes of the header up to the end of its length field.
    fn length_field_end(&self) -> usize {
        match self.announce.unwrap_or(self.payload.len() as u64) {
            0..=125 => 2,
            126..=0xFFFF => 4,
            _ => 10,
        }
    }
}

/// A message as the application sees it, on either side.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Msg {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// (code, reason).
    Close(Option<(u16, Option<String>)>),
}

impl Msg {
    fn of(incoming: Incoming) -> Msg {
        match incoming {
            Incoming::Text(t) => Msg::Text(t.to_string()),
            Incoming::Binary(b) => Msg::Binary(b.to_vec()),
            Incoming::Ping(b) => Msg::Ping(b.to_vec()),
            Incoming::Pong(b) => Msg::Pong(b.to_vec()),
            Incoming::Close(r) => Msg::Close(r.map(|r| (u16::from(r.code), r.description))),
        }
    }

    /// A control message as one frame (section 5.5).
    fn control_frame(&self, mask: [u8; 4]) -> RawFrame {
        let (opcode, payload) = match self {
            Msg::Ping(p) => (PING, p.clone()),
            Msg::Pong(p) => (PONG, p.clone()),
            Msg::Close(None) => (CLOSE, Vec::new()),
            Msg::Close(Some((code, reason))) => {
                let mut p = code.to_be_bytes().to_vec();
                p.extend_from_slice(reason.as_deref().unwrap_or("").as_bytes());
                (CLOSE, p)
            }
            Msg::Text(_) | Msg::Binary(_) => unreachable!("not a control message"),
        };
        RawFrame::new(true, opcode, mask, payload)
    }
}

/// A data message, how the client splits it, and the control frames it
/// sends before, between and after its fragments.
#[derive(Debug, Clone)]
struct Planned {
    text: bool,
    payload: Vec<u8>,
    /// Fragment boundaries (byte offsets; may split a UTF-8 character, may
    /// repeat: empty fragments are allowed).
    cuts: Vec<Index>,
    /// (gap, message): gap k in 0..=fragments is before fragment k.
    controls: Vec<(Index, Msg)>,
    mask_seed: u64,
}

/// Masking keys, one per frame, from a seed (a zero key now and then: the
/// RFC requires the bit, not a non-zero key).
struct Masks(u64);

impl Masks {
    fn next(&mut self) -> [u8; 4] {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        if z % 11 == 0 {
            [0; 4]
        } else {
            (z as u32).to_be_bytes()
        }
    }
}

/// The bytes on the wire and what the server should make of them.
#[derive(Debug, Default)]
struct Wire {
    bytes: Vec<u8>,
    expected: Vec<Msg>,
    /// Where each frame starts and ends in `bytes`.
    frames: Vec<(usize, usize)>,
}

impl Wire {
    fn frame(&mut self, f: &RawFrame) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(&f.encode());
        self.frames.push((start, self.bytes.len()));
    }

    fn control(&mut self, m: &Msg, masks: &mut Masks) {
        self.frame(&m.control_frame(masks.next()));
        self.expected.push(m.clone());
    }

    fn planned(&mut self, p: &Planned) {
        let mut masks = Masks(p.mask_seed);
        let mut cuts: Vec<usize> = p
            .cuts
            .iter()
            .map(|i| i.index(p.payload.len() + 1))
            .collect();
        cuts.sort_unstable();
        let mut bounds = vec![0];
        bounds.extend(cuts);
        bounds.push(p.payload.len());
        let fragments = bounds.len() - 1;
        let mut controls: Vec<(usize, &Msg)> = p
            .controls
            .iter()
            .map(|(i, m)| (i.index(fragments + 1), m))
            .collect();
        controls.sort_by_key(|(gap, _)| *gap);
        let mut pending = controls.into_iter().peekable();
        for k in 0..fragments {
            while let Some((_, m)) = pending.next_if(|(gap, _)| *gap == k) {
                self.control(m, &mut masks);
            }
            let opcode = match (k, p.text) {
                (0, true) => TEXT,
                (0, false) => BINARY,
                _ => CONTINUATION,
            };
            let part = p.payload[bounds[k]..bounds[k + 1]].to_vec();
            self.frame(&RawFrame::new(
                k + 1 == fragments,
                opcode,
                masks.next(),
                part,
            ));
        }
        if !p.text {
            self.expected.push(Msg::Binary(p.payload.clone()));
        } else if let Ok(text) = String::from_utf8(p.payload.clone()) {
            self.expected.push(Msg::Text(text));
        }
        // (Text that is not UTF-8 is refused: nothing comes out for it.)
        for (_, m) in pending {
            self.control(m, &mut masks);
        }
    }
}

// ---------------------------------------------------------------------------
// The server side: the decoder, fed in chunks.

/// What the decoder made of a stream.
#[derive(Debug)]
struct Fed {
    messages: Vec<Msg>,
    /// The first error, and the chunk whose drain produced it (the bytes
    /// pushed before it, and with it).
    error: Option<(FrameError, usize, usize)>,
}

/// What the decoder may hold after a drain: a message within the cap, one
/// frame header, and one control frame.
fn bound(cap: usize) -> usize {
    cap + MAX_HEADER + MAX_CONTROL
}

/// Pushes `bytes` in chunks of `sizes` (cycled), draining after each push,
/// and checks what must hold at every step: the bound on what is buffered,
/// and that once an error has come, the decoder stays done.
fn feed(cap: usize, bytes: &[u8], sizes: &[usize]) -> Result<Fed, TestCaseError> {
    let mut decoder = FrameDecoder::new(cap);
    let mut fed = Fed {
        messages: Vec::new(),
        error: None,
    };
    let mut pushed = 0;
    let mut sizes = sizes.iter().copied().map(|s| s.max(1)).cycle();
    while pushed < bytes.len() {
        let n = sizes.next().unwrap_or(1).min(bytes.len() - pushed);
        let chunk_start = pushed;
        decoder.push(&bytes[pushed..pushed + n]);
        pushed += n;
        if fed.error.is_some() {
            prop_assert_eq!(decoder.buffered(), 0, "a spent decoder keeps nothing");
            prop_assert!(
                matches!(decoder.next_message(), Ok(None)),
                "a spent decoder decodes nothing"
            );
            continue;
        }
        loop {
            match decoder.next_message() {
                Ok(Some(m)) => {
                    fed.messages.push(Msg::of(m));
                    // Every frame is at least 2 bytes: more messages than
                    // that would be a decoder inventing them.
                    prop_assert!(
                        fed.messages.len() <= pushed / 2,
                        "more messages than frames"
                    );
                }
                Ok(None) => break,
                Err(e) => {
                    fed.error = Some((e, chunk_start, pushed));
                    break;
                }
            }
        }
        let held = decoder.buffered();
        if fed.error.is_some() {
            prop_assert_eq!(held, 0, "after an error the decoder keeps nothing");
            prop_assert!(matches!(decoder.next_message(), Ok(None)));
        } else {
            prop_assert!(
                held <= bound(cap),
                "holds {} bytes after {} pushed, over cap {} + header + control frame",
                held,
                pushed,
                cap
            );
        }
    }
    Ok(fed)
}

// ---------------------------------------------------------------------------
// Strategies.

fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(
        prop_oneof![3 => 1..=3usize, 3 => 1..=64usize, 2 => 1..=4096usize, 1 => 1..=70_000usize],
        1..12,
    )
}

/// Text of every kind of character, mostly short.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::collection::vec(any::<char>(), 0..48).prop_map(String::from_iter),
        2 => prop::collection::vec(any::<char>(), 0..400).prop_map(String::from_iter),
        1 => "[a-z ]{0,200}",
    ]
}

/// Bytes, with lengths on both sides of the 7-bit/16-bit/64-bit boundaries.
fn binary() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec(any::<u8>(), 0..300),
        2 => (prop::sample::select(vec![125usize, 126, 127, 65535, 65536, 65537]), any::<u8>())
            .prop_map(|(n, seed)| (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()),
    ]
}

fn control_payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..16),
        1 => prop::collection::vec(any::<u8>(), 120..=125),
    ]
}

/// Ping or pong, the control frames a client may send mid-message.
fn ping_pong() -> impl Strategy<Value = Msg> {
    prop_oneof![
        control_payload().prop_map(Msg::Ping),
        control_payload().prop_map(Msg::Pong),
    ]
}

/// A Close a client may send (RFC 6455 section 7.4: codes it may put on
/// the wire), with a reason that fits the 125 bytes.
fn close() -> impl Strategy<Value = Msg> {
    let code = prop_oneof![1000u16..=1003, 1007u16..=1014, 3000u16..=4999];
    prop_oneof![
        1 => Just(Msg::Close(None)),
        4 => (code, prop::collection::vec(any::<char>(), 0..40)).prop_map(|(code, chars)| {
            let mut reason = String::new();
            for c in chars {
                if reason.len() + c.len_utf8() > MAX_CONTROL - 2 {
                    break;
                }
                reason.push(c);
            }
            Msg::Close(Some((code, (!reason.is_empty()).then_some(reason))))
        }),
    ]
}

fn planned_with(payload: impl Strategy<Value = (bool, Vec<u8>)>) -> impl Strategy<Value = Planned> {
    (
        payload,
        prop::collection::vec(any::<Index>(), 0..5),
        prop::collection::vec((any::<Index>(), ping_pong()), 0..4),
        any::<u64>(),
    )
        .prop_map(|((text, payload), cuts, controls, mask_seed)| Planned {
            text,
            payload,
            cuts,
            controls,
            mask_seed,
        })
}

fn planned() -> impl Strategy<Value = Planned> {
    planned_with(prop_oneof![
        text().prop_map(|t| (true, t.into_bytes())),
        binary().prop_map(|b| (false, b)),
    ])
}

/// A short valid exchange to put before the frame under test.
fn prefix() -> impl Strategy<Value = Vec<Planned>> {
    prop::collection::vec(
        planned_with(prop_oneof![
            prop::collection::vec(any::<char>(), 0..24)
                .prop_map(|c| (true, String::from_iter(c).into_bytes())),
            prop::collection::vec(any::<u8>(), 0..48).prop_map(|b| (false, b)),
        ]),
        0..3,
    )
}

/// Caps of every size, for the properties that need a frame under them.
fn cap() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 125usize..=600, 2 => 600usize..=5000, 1 => Just(65_536usize)]
}

/// Frame-shaped garbage: headers with random bits, lengths (announced or
/// true), masks and payloads, some cut short.
fn frame_soup() -> impl Strategy<Value = Vec<u8>> {
    let frame = (
        any::<bool>(),
        prop_oneof![6 => Just(0u8), 1 => 0u8..8],
        prop_oneof![2 => prop::sample::select(vec![0u8, 1, 2, 8, 9, 10]), 1 => 0u8..16],
        prop_oneof![6 => any::<[u8; 4]>().prop_map(Some), 1 => Just(None)],
        prop::collection::vec(any::<u8>(), 0..200),
        prop_oneof![
            4 => Just(None),
            1 => any::<u64>().prop_map(Some),
            1 => (0u64..70_000).prop_map(Some),
            1 => Just(Some(1u64 << 62)),
        ],
        prop_oneof![5 => Just(None), 1 => any::<Index>().prop_map(Some)],
    )
        .prop_map(|(fin, rsv, opcode, mask, payload, announce, cut)| {
            let mut bytes = RawFrame {
                fin,
                rsv,
                opcode,
                mask,
                payload,
                announce,
            }
            .encode();
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes
        });
    prop::collection::vec(frame, 0..12).prop_map(|frames| frames.concat())
}

fn assert_messages(got: &[Msg], want: &[Msg]) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len(), "message count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        prop_assert!(g == w, "message {} differs:\n got {:?}\nwant {:?}", i, g, w);
    }
    Ok(())
}

/// Where in the stream an error must come: not from a drain before byte
/// `after` was pushed (the stream is valid up to there), and at the latest
/// from the drain of the chunk that brought byte `by - 1`.
fn assert_error_within(fed: &Fed, after: usize, by: usize) -> Result<&FrameError, TestCaseError> {
    let Some((error, chunk_start, chunk_end)) = &fed.error else {
        return Err(TestCaseError::fail(format!(
            "no error; decoded {:?}",
            fed.messages
        )));
    };
    prop_assert!(
        *chunk_end > after,
        "error {:?} with {} bytes pushed, before the bad frame at {}",
        error,
        chunk_end,
        after
    );
    prop_assert!(
        *chunk_start < by,
        "error {:?} only from the chunk {}..{}, due once {} bytes were in",
        error,
        chunk_start,
        chunk_end,
        by
    );
    Ok(error)
}

// ---------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(config())]

    /// Whatever the bytes and however they arrive: no panic, what is held
    /// stays within the bound, and once an error comes the decoder is done.
    #[test]
    fn arbitrary_bytes_never_panic_and_errors_are_final(
        cap in prop_oneof![0usize..=64, 64usize..=2048, Just(65_536usize)],
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..3000),
            frame_soup(),
        ],
        sizes in chunk_sizes(),
    ) {
        let fed = feed(cap, &bytes, &sizes)?;
        if let Some((e, _, _)) = &fed.error {
            prop_assert!([1002, 1007, 1009].contains(&e.close_code()));
        }
    }

    /// Valid client traffic (masked, fragmented anywhere, even inside a
    /// UTF-8 character, pings and pongs between fragments, a Close at the
    /// end) decodes to exactly what was sent, whatever the chunking.
    #[test]
    fn valid_frames_round_trip(
        messages in prop::collection::vec(planned(), 0..6),
        close in prop::option::of(close()),
        slack in prop_oneof![Just(0usize), 0usize..2000],
        sizes in chunk_sizes(),
        close_mask in any::<u64>(),
    ) {
        let mut wire = Wire::default();
        for m in &messages {
            wire.planned(m);
        }
        if let Some(c) = &close {
            wire.control(c, &mut Masks(close_mask));
        }
        // The cap at the largest message (sometimes exactly), or a control
        // frame's 125 bytes.
        let largest = messages.iter().map(|m| m.payload.len()).max().unwrap_or(0);
        let cap = largest.max(MAX_CONTROL) + slack;
        let fed = feed(cap, &wire.bytes, &sizes)?;
        prop_assert!(fed.error.is_none(), "error {:?}", fed.error);
        assert_messages(&fed.messages, &wire.expected)?;
    }

    /// A frame announcing more than the cap is refused from its header:
    /// TooBig (1009) as soon as the length field is in, nothing of its
    /// payload kept, whatever follows.
    #[test]
    fn oversized_frame_is_refused_from_its_header(
        prefix in prefix(),
        cap in cap(),
        excess in prop_oneof![
            3 => 1u64..=200,
            2 => 1u64..=70_000,
            2 => 1u64..(1u64 << 40),
            1 => Just(1u64 << 62),
            1 => Just(u64::MAX),
        ],
        text in any::<bool>(),
        fin in any::<bool>(),
        filler in 0usize..8000,
        sizes in chunk_sizes(),
        mask in any::<[u8; 4]>(),
    ) {
        let mut wire = Wire::default();
        for m in &prefix {
            wire.planned(m);
        }
        let announced = (cap as u64).saturating_add(excess);
        let big = RawFrame {
            announce: Some(announced),
            ..RawFrame::new(fin, if text { TEXT } else { BINARY }, mask, vec![b'x'; filler])
        };
        let start = wire.bytes.len();
        wire.frame(&big);
        let fed = feed(cap, &wire.bytes, &sizes)?;
        let error = assert_error_within(&fed, start, start + big.length_field_end())?;
        prop_assert_eq!(error, &FrameError::TooBig { announced, cap });
        prop_assert_eq!(error.close_code(), 1009);
        assert_messages(&fed.messages, &wire.expected)?;
    }

    /// A fragmented message whose parts add up to more than the cap is
    /// refused (1009) at the header of the part that crosses it; the parts
    /// before it are each within the cap.
    #[test]
    fn fragmented_message_over_the_cap_is_refused_at_the_crossing_part(
        prefix in prefix(),
        cap in cap(),
        parts in prop::collection::vec(any::<Index>(), 1..6),
        controls in prop::collection::vec(prop::option::of(ping_pong()), 6),
        text in any::<bool>(),
        last_fin in any::<bool>(),
        filler in 0usize..4000,
        sizes in chunk_sizes(),
        seed in any::<u64>(),
    ) {
        let mut wire = Wire::default();
        for m in &prefix {
            wire.planned(m);
        }
        let mut masks = Masks(seed);
        // Part sizes in 1..=cap until they pass the cap.
        let mut sizes_of: Vec<usize> = Vec::new();
        for p in parts.iter().map(|i| i.index(cap) + 1).chain(std::iter::repeat(cap)) {
            sizes_of.push(p);
            if sizes_of.iter().sum::<usize>() > cap {
                break;
            }
        }
        let crossing = sizes_of.len() - 1;
        let mut start = 0;
        let mut end = 0;
        for (k, &size) in sizes_of.iter().enumerate() {
            if let Some(Some(c)) = controls.get(k).filter(|_| k > 0) {
                wire.control(c, &mut masks);
            }
            let opcode = match (k, text) {
                (0, true) => TEXT,
                (0, false) => BINARY,
                _ => CONTINUATION,
            };
            let fin = k == crossing && last_fin && k > 0;
            let frame = if k == crossing {
                RawFrame {
                    announce: Some(size as u64),
                    ..RawFrame::new(fin, opcode, masks.next(), vec![b'y'; filler.min(size)])
                }
            } else {
                RawFrame::new(false, opcode, masks.next(), vec![b'y'; size])
            };
            if k == crossing {
                start = wire.bytes.len();
                end = start + frame.length_field_end();
            }
            wire.frame(&frame);
        }
        let total: usize = sizes_of.iter().sum();
        let fed = feed(cap, &wire.bytes, &sizes)?;
        let error = assert_error_within(&fed, start, end)?;
        prop_assert_eq!(error, &FrameError::TooBig { announced: total as u64, cap });
        // The prefix, and the controls between the parts, came out first.
        assert_messages(&fed.messages, &wire.expected)?;
    }

    /// A text message that is not UTF-8, whole or fragmented, is refused
    /// with InvalidUtf8 (1007) once it is complete.
    #[test]
    fn invalid_utf8_text_is_refused(
        prefix in prefix(),
        before in text(),
        bad in prop_oneof![
            prop::sample::select(vec![
                vec![0xFFu8], vec![0xFE], vec![0x80], vec![0xC0, 0x80], vec![0xC1, 0xBF],
                vec![0xE0, 0x80, 0x80], vec![0xED, 0xA0, 0x80], vec![0xE2, 0x28, 0xA1],
                vec![0xF4, 0x90, 0x80, 0x80], vec![0xF5, 0x80, 0x80, 0x80], vec![0xE2, 0x82],
            ]),
            prop::collection::vec(any::<u8>(), 1..40)
                .prop_filter("not UTF-8", |b| std::str::from_utf8(b).is_err()),
        ],
        after in text(),
        shape in planned_with(Just((true, Vec::new()))),
        sizes in chunk_sizes(),
    ) {
        let mut wire = Wire::default();
        for m in &prefix {
            wire.planned(m);
        }
        let mut payload = before.into_bytes();
        payload.extend_from_slice(&bad);
        payload.extend_from_slice(after.as_bytes());
        prop_assume!(std::str::from_utf8(&payload).is_err());
        let start = wire.bytes.len();
        let expected_before = wire.expected.len();
        let cap = payload.len().max(MAX_CONTROL);
        wire.planned(&Planned { payload, ..shape });
        let fed = feed(cap, &wire.bytes, &sizes)?;
        let error = assert_error_within(&fed, start, wire.bytes.len())?;
        prop_assert_eq!(error, &FrameError::InvalidUtf8);
        prop_assert_eq!(error.close_code(), 1007);
        // Everything before the message, and the controls between its
        // fragments, came out first.
        prop_assert!(fed.messages.len() >= expected_before);
        prop_assert!(fed.messages.len() <= wire.expected.len());
        assert_messages(&fed.messages, &wire.expected[..fed.messages.len()])?;
    }

    /// Every frame RFC 6455 forbids from a client is a protocol error
    /// (1002): unmasked, reserved bits, opcodes it does not define,
    /// fragmented control frames, control frames over 125 bytes (refused
    /// from the header when it announces more), continuations with nothing
    /// to continue, a new message inside a fragmented one, and a Close whose
    /// payload is malformed.
    #[test]
    fn forbidden_frames_are_protocol_errors(
        prefix in prefix(),
        cap in cap(),
        bad in forbidden(),
        sizes in chunk_sizes(),
    ) {
        let mut wire = Wire::default();
        for m in &prefix {
            wire.planned(m);
        }
        for f in &bad.lead_in {
            wire.frame(f);
        }
        let bad_start = wire.bytes.len();
        wire.frame(&bad.frame);
        let by = if bad.from_header {
            bad_start + bad.frame.length_field_end()
        } else {
            wire.bytes.len()
        };
        let fed = feed(cap, &wire.bytes, &sizes)?;
        let error = assert_error_within(&fed, bad_start, by)?;
        prop_assert!(
            matches!(error, FrameError::Protocol(_)),
            "{}: expected a protocol error, got {:?}",
            bad.what,
            error
        );
        prop_assert_eq!(error.close_code(), 1002);
        assert_messages(&fed.messages, &wire.expected)?;
    }
}

/// A frame a client must not send, with what must come before it.
#[derive(Debug, Clone)]
struct Forbidden {
    what: &'static str,
    /// Valid frames that set it up (an open fragmented message).
    lead_in: Vec<RawFrame>,
    frame: RawFrame,
    /// Refused as soon as the header's length field is in.
    from_header: bool,
}

fn forbidden() -> impl Strategy<Value = Forbidden> {
    let small = || prop::collection::vec(any::<u8>(), 0..=MAX_CONTROL);
    let mask = || any::<[u8; 4]>();
    let any_opcode = || prop::sample::select(vec![TEXT, BINARY, CLOSE, PING, PONG]);
    let simple = |what, frame| Forbidden {
        what,
        lead_in: Vec::new(),
        frame,
        from_header: false,
    };
    prop_oneof![
        (any_opcode(), small()).prop_map(move |(op, p)| {
            let payload = if op == CLOSE { Vec::new() } else { p };
            simple(
                "unmasked",
                RawFrame {
                    mask: None,
                    ..RawFrame::new(true, op, [0; 4], payload)
                },
            )
        }),
        (any_opcode(), 1u8..8, small(), mask()).prop_map(move |(op, rsv, p, m)| {
            let payload = if op == CLOSE { Vec::new() } else { p };
            simple(
                "reserved bits",
                RawFrame {
                    rsv,
                    ..RawFrame::new(true, op, m, payload)
                },
            )
        }),
        (
            prop_oneof![3u8..=7, 0xBu8..=0xF],
            small(),
            mask(),
            any::<bool>()
        )
            .prop_map(move |(op, p, m, fin)| simple(
                "undefined opcode",
                RawFrame::new(fin, op, m, p)
            )),
        (prop::sample::select(vec![PING, PONG, CLOSE]), mask()).prop_map(move |(op, m)| {
            let payload = if op == CLOSE {
                1000u16.to_be_bytes().to_vec()
            } else {
                b"frag".to_vec()
            };
            simple(
                "fragmented control frame",
                RawFrame::new(false, op, m, payload),
            )
        }),
        (
            prop::sample::select(vec![PING, PONG, CLOSE]),
            126usize..=300,
            mask()
        )
            .prop_map(move |(op, n, m)| {
                let mut payload = vec![b'c'; n];
                if op == CLOSE {
                    payload[..2].copy_from_slice(&1000u16.to_be_bytes());
                }
                simple(
                    "control frame over 125 bytes",
                    RawFrame::new(true, op, m, payload),
                )
            }),
        (
            prop::sample::select(vec![PING, PONG, CLOSE]),
            prop_oneof![
                Just(1u64 << 62),
                126u64..=70_000,
                (1u64 << 20)..(1u64 << 40)
            ],
            0usize..8000,
            mask(),
        )
            .prop_map(move |(op, announced, filler, m)| Forbidden {
                what: "control frame announcing over 125 bytes",
                lead_in: Vec::new(),
                frame: RawFrame {
                    announce: Some(announced),
                    ..RawFrame::new(true, op, m, vec![b'c'; filler.min(announced as usize)])
                },
                from_header: true,
            }),
        (small(), mask(), any::<bool>()).prop_map(move |(p, m, fin)| {
            simple(
                "continuation of nothing",
                RawFrame::new(fin, CONTINUATION, m, p),
            )
        }),
        (any::<bool>(), any::<bool>(), small(), mask()).prop_map(move |(t1, t2, p, m)| Forbidden {
            what: "new message inside a fragmented one",
            lead_in: vec![RawFrame::new(
                false,
                if t1 { TEXT } else { BINARY },
                m,
                b"part".to_vec()
            )],
            frame: RawFrame::new(
                true,
                if t2 { TEXT } else { BINARY },
                m,
                p.iter().map(|b| b & 0x7F).collect()
            ),
            from_header: false,
        }),
        (
            prop_oneof![
                Just(vec![0x03u8]),
                prop::sample::select(vec![
                    0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535
                ])
                .prop_map(|c| c.to_be_bytes().to_vec()),
            ],
            mask()
        )
            .prop_map(move |(p, m)| simple("malformed Close", RawFrame::new(true, CLOSE, m, p))),
    ]
}

/// The invalid-UTF-8 reason of a Close is refused too (the code it gets,
/// 1002 here, is the codec's choice; RFC 6455 section 8.1 asks only that
/// the connection fail).
#[test]
fn close_with_invalid_utf8_reason_is_refused() {
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(&[b'b', b'y', 0xFF, b'e']);
    let bytes = RawFrame::new(true, CLOSE, [1, 2, 3, 4], payload).encode();
    let mut decoder = FrameDecoder::new(1024);
    decoder.push(&bytes);
    assert!(decoder.next_message().is_err());
    assert_eq!(decoder.buffered(), 0);
}

/// The encoder itself, against RFC 6455 section 5.7's examples.
#[test]
fn encoder_matches_the_rfc_examples() {
    // "A single-frame masked text message": 0x81 0x85 0x37 0xfa 0x21 0x3d
    // 0x7f 0x9f 0x4d 0x51 0x58 ("Hello").
    let f = RawFrame::new(true, TEXT, [0x37, 0xfa, 0x21, 0x3d], b"Hello".to_vec());
    assert_eq!(
        f.encode(),
        [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
    );
    // "256 bytes binary message in a single unmasked frame": 0x82 0x7E 0x0100.
    let f = RawFrame {
        mask: None,
        ..RawFrame::new(true, BINARY, [0; 4], vec![0; 256])
    };
    assert_eq!(f.encode()[..4], [0x82, 0x7E, 0x01, 0x00]);
    // "64KiB binary message in a single unmasked frame": 0x82 0x7F
    // 0x0000000000010000.
    let f = RawFrame {
        mask: None,
        ..RawFrame::new(true, BINARY, [0; 4], vec![0; 65536])
    };
    assert_eq!(f.encode()[..10], [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
}

/// Found by `arbitrary_bytes_never_panic_and_errors_are_final` and
/// `forbidden_frames_are_protocol_errors`: a control frame's header
/// announcing more than 125 bytes (here 2^62) was not refused until the
/// whole frame had arrived, so the decoder kept everything that followed.
#[test]
fn control_frame_announcing_2_pow_62_is_refused_from_its_header() {
    for opcode in [PING, PONG, CLOSE] {
        let header = RawFrame {
            announce: Some(1 << 62),
            ..RawFrame::new(true, opcode, [9, 8, 7, 6], Vec::new())
        }
        .encode();
        let mut decoder = FrameDecoder::new(1024 * 1024);
        decoder.push(&header[..2]);
        let error = decoder.next_message().expect_err("refused from two bytes");
        assert!(matches!(error, FrameError::Protocol(_)), "{error:?}");
        assert_eq!(error.close_code(), 1002);
        decoder.push(&header[2..]);
        decoder.push(&vec![0u8; 4 * 1024 * 1024]);
        assert_eq!(decoder.buffered(), 0, "nothing kept after the refusal");
    }
}
