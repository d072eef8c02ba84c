//! Property tests of the command decoder (`protocol::parse_client_frame`),
//! which turns every text frame a client sends into a command or an error.
//!
//! Frames are built here as JSON values (serde_json's encoder, not ours):
//! valid frames of every command, the same frames mutated (a field removed,
//! a value of the wrong type, huge strings, every kind of character, deep
//! nesting), JSON trees of any shape, and strings that are not JSON at all.
//!
//! `PROPTEST_CASES=N` runs more cases than the CI default.

use interview_actors::protocol::{
    max_chars, parse_client_frame, peek_ref, ClientCommand, ClientFrame, ErrorCode, ProctorKind,
    ProtocolError, Role, Severity,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{json, Map, Value};

/// Cases per property in a plain `cargo test`.
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

const ROLES: [Role; 4] = [Role::Candidate, Role::Recruiter, Role::Admin, Role::Service];

/// The error codes docs/protocol.md section 8 documents, from its table.
fn documented_codes() -> Vec<String> {
    let doc = include_str!("../../docs/protocol.md");
    let section = doc
        .split("## 8. Errors and close codes")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("docs/protocol.md has section 8");
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|c| !c.is_empty() && c.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_'))
        .map(str::to_owned)
        .collect()
}

/// What any frame may get: a command, or an error the protocol names for a
/// frame that does not parse: `INVALID_MESSAGE`, or `PAYLOAD_TOO_LARGE`
/// naming its field. A command is of the frame's `type` and of a type the
/// role may send.
fn check_outcome(
    text: &str,
    role: Role,
    result: &Result<ClientFrame, ProtocolError>,
) -> Result<(), TestCaseError> {
    match result {
        Ok(frame) => {
            let value: Value = serde_json::from_str(text).expect("a parsed frame is JSON");
            prop_assert_eq!(value["type"].as_str(), Some(frame.command.type_name()));
            prop_assert!(allowed(role, frame.command.type_name()));
            if let Some(r) = &frame.reference {
                prop_assert!(r.chars().count() <= max_chars::REF);
            }
        }
        Err(e) => {
            let code = serde_json::to_value(e.code).expect("codes serialise");
            let code = code.as_str().unwrap_or_default().to_owned();
            prop_assert!(
                documented_codes().contains(&code),
                "{} is not a documented code",
                code
            );
            prop_assert!(
                matches!(
                    e.code,
                    ErrorCode::InvalidMessage | ErrorCode::PayloadTooLarge
                ),
                "a frame that does not parse got {:?}",
                e
            );
            if e.code == ErrorCode::PayloadTooLarge {
                prop_assert!(
                    e.message.contains("`ref`") || e.message.contains("`data."),
                    "PAYLOAD_TOO_LARGE names no field: {}",
                    e.message
                );
            }
        }
    }
    // peek_ref, used on frames that fail, never panics and echoes only a
    // `ref` within its limit.
    if let Some(r) = peek_ref(text) {
        prop_assert!(r.chars().count() <= max_chars::REF);
    }
    Ok(())
}

/// docs/protocol.md sections 3 and 4: which role sends which type.
fn allowed(role: Role, kind: &str) -> bool {
    const CANDIDATE: &[&str] = &[
        "join-interview",
        "start-interview",
        "answer",
        "audio-chunk",
        "response-complete",
        "proctor-event",
        "pause-interview",
        "resume-interview",
        "end-interview",
        "heartbeat",
        "ping",
    ];
    const OBSERVER: &[&str] = &[
        "observe-interview",
        "stop-observing",
        "end-interview",
        "heartbeat",
        "ping",
    ];
    match role {
        Role::Candidate => CANDIDATE.contains(&kind),
        Role::Recruiter | Role::Admin => OBSERVER.contains(&kind),
        Role::Service => ["heartbeat", "ping"].contains(&kind),
    }
}

// ---------------------------------------------------------------------------
// Strategies.

/// Strings of every kind: short words, any characters, text with
/// multi-byte characters, and strings far over every field's limit.
fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9-]{0,16}",
        3 => prop::collection::vec(any::<char>(), 0..40).prop_map(String::from_iter),
        1 => (0usize..30_000, any::<char>()).prop_map(|(n, c)| std::iter::repeat_n(c, n).collect()),
    ]
}

/// Non-empty text of at most `max` characters, sometimes exactly `max`
/// (of multi-byte characters, so over `max` bytes).
fn text_up_to(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::collection::vec(any::<char>(), 1..60).prop_map(String::from_iter),
        1 => prop::sample::select(vec!['é', '日', '🦀', 'x', '\u{10FFFF}'])
            .prop_map(move |c| std::iter::repeat_n(c, max).collect()),
    ]
    .prop_map(move |s: String| s.chars().take(max).collect::<String>())
    .prop_filter("not blank", |s: &String| !s.trim().is_empty())
}

/// Object keys: the protocol's field names, so random trees hit them, and
/// anything else.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(vec![
            "type", "data", "ref", "interviewId", "lastSeq", "text", "audioData",
            "transcription", "audioUrl", "severity", "message", "reason",
        ]).prop_map(str::to_owned),
        1 => string(),
    ]
}

/// Any JSON value, nested up to 6 levels.
fn json_value() -> impl Strategy<Value = Value> {
    json_tree(any::<f64>().boxed())
}

/// JSON whose numbers come back exactly from text: serde_json (without
/// its `float_roundtrip` feature) may read the last digit of a float such
/// as -1.0305647203669335e256 differently from how it wrote it, so a
/// value that must come back equal has floats that are short fractions.
fn exact_json_value() -> impl Strategy<Value = Value> {
    json_tree(
        (-1_000_000i64..1_000_000)
            .prop_map(|n| n as f64 / 64.0)
            .boxed(),
    )
}

fn json_tree(floats: BoxedStrategy<f64>) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-3i64..3).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        floats.prop_map(Value::from),
        string().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A JSON value or `null` for an optional field, or nothing.
#[derive(Debug, Clone)]
enum Opt<T> {
    Absent,
    Null,
    Given(T),
}

impl<T: Clone> Opt<T> {
    fn insert(&self, data: &mut Map<String, Value>, name: &str, to: impl Fn(&T) -> Value) {
        match self {
            Opt::Absent => {}
            Opt::Null => {
                data.insert(name.into(), Value::Null);
            }
            Opt::Given(v) => {
                data.insert(name.into(), to(v));
            }
        }
    }
    fn value(&self) -> Option<T> {
        match self {
            Opt::Given(v) => Some(v.clone()),
            _ => None,
        }
    }
}

fn opt<T: Clone + std::fmt::Debug>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Opt<T>> {
    prop_oneof![1 => Just(Opt::Absent), 1 => Just(Opt::Null), 3 => s.prop_map(Opt::Given)]
}

/// Base64 with padding (RFC 4648 section 4), for `audioData`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

const PROCTOR_KINDS: [(&str, ProctorKind); 6] = [
    ("face-detection", ProctorKind::FaceDetection),
    ("tab-switch", ProctorKind::TabSwitch),
    ("fullscreen-exit", ProctorKind::FullscreenExit),
    ("multiple-voices", ProctorKind::MultipleVoices),
    ("copy-paste", ProctorKind::CopyPaste),
    ("other", ProctorKind::Other),
];
const SEVERITIES: [(&str, Severity); 3] = [
    ("low", Severity::Low),
    ("medium", Severity::Medium),
    ("high", Severity::High),
];

/// A valid frame of one command and the command it must parse to.
#[derive(Debug, Clone)]
struct Valid {
    frame: Value,
    command: ClientCommand,
    reference: Option<String>,
}

/// The `data` of every command and the command it stands for.
fn command() -> impl Strategy<Value = (String, Map<String, Value>, ClientCommand)> {
    let id = || text_up_to(max_chars::INTERVIEW_ID);
    let seq = || opt(any::<u64>());
    let bare =
        |kind: &'static str, command: ClientCommand| Just((kind.to_owned(), Map::new(), command));
    prop_oneof![
        (id(), seq()).prop_map(|(id, seq)| {
            let mut d = Map::new();
            d.insert("interviewId".into(), json!(id));
            seq.insert(&mut d, "lastSeq", |s| json!(s));
            let c = ClientCommand::JoinInterview {
                interview_id: id,
                last_seq: seq.value(),
            };
            ("join-interview".to_owned(), d, c)
        }),
        (id(), seq()).prop_map(|(id, seq)| {
            let mut d = Map::new();
            d.insert("interviewId".into(), json!(id));
            seq.insert(&mut d, "lastSeq", |s| json!(s));
            let c = ClientCommand::ObserveInterview {
                interview_id: id,
                last_seq: seq.value(),
            };
            ("observe-interview".to_owned(), d, c)
        }),
        bare("start-interview", ClientCommand::StartInterview),
        text_up_to(max_chars::ANSWER).prop_map(|text| {
            let mut d = Map::new();
            d.insert("text".into(), json!(text));
            ("answer".to_owned(), d, ClientCommand::Answer { text })
        }),
        prop::collection::vec(any::<u8>(), 1..300).prop_map(|audio| {
            let mut d = Map::new();
            d.insert("audioData".into(), json!(base64(&audio)));
            (
                "audio-chunk".to_owned(),
                d,
                ClientCommand::AudioChunk { audio },
            )
        }),
        (
            opt(prop_oneof![
                Just(String::new()),
                text_up_to(max_chars::TRANSCRIPTION)
            ]),
            opt(text_up_to(max_chars::AUDIO_URL)),
        )
            .prop_map(|(transcription, url)| {
                let mut d = Map::new();
                transcription.insert(&mut d, "transcription", |t| json!(t));
                url.insert(&mut d, "audioUrl", |u| json!(u));
                let c = ClientCommand::ResponseComplete {
                    transcription: transcription.value().unwrap_or_default(),
                    audio_url: url.value(),
                };
                ("response-complete".to_owned(), d, c)
            }),
        (
            prop::sample::select(PROCTOR_KINDS.to_vec()),
            prop::sample::select(SEVERITIES.to_vec()),
            opt(prop_oneof![
                Just(String::new()),
                text_up_to(max_chars::PROCTOR_MESSAGE)
            ]),
            prop::option::of(exact_json_value()),
        )
            .prop_map(
                |((kind_name, kind), (severity_name, severity), message, data)| {
                    let mut d = Map::new();
                    d.insert("type".into(), json!(kind_name));
                    d.insert("severity".into(), json!(severity_name));
                    message.insert(&mut d, "message", |m| json!(m));
                    if let Some(v) = &data {
                        d.insert("data".into(), v.clone());
                    }
                    let c = ClientCommand::ProctorEvent {
                        kind,
                        severity,
                        message: message.value(),
                        data,
                    };
                    ("proctor-event".to_owned(), d, c)
                }
            ),
        bare("pause-interview", ClientCommand::PauseInterview),
        bare("resume-interview", ClientCommand::ResumeInterview),
        opt(prop_oneof![
            Just(String::new()),
            text_up_to(max_chars::END_REASON)
        ])
        .prop_map(|reason| {
            let mut d = Map::new();
            reason.insert(&mut d, "reason", |r| json!(r));
            let c = ClientCommand::EndInterview {
                reason: reason.value(),
            };
            ("end-interview".to_owned(), d, c)
        }),
        bare("stop-observing", ClientCommand::StopObserving),
        bare("heartbeat", ClientCommand::Heartbeat),
        bare("ping", ClientCommand::Ping),
    ]
}

/// A valid frame: `{type, data?, ref?}`, `data` left out when empty (or
/// given as `null` or `{}`), with unknown fields here and there (ignored).
fn valid() -> impl Strategy<Value = Valid> {
    (
        command(),
        opt(text_up_to(max_chars::REF)),
        0u8..3,
        prop::collection::vec((0u32..1000, exact_json_value()), 0..3),
        any::<bool>(),
    )
        .prop_map(
            |((kind, mut data, command), reference, empty_data, extra, top)| {
                for (n, v) in extra.iter().filter(|_| !top) {
                    data.insert(format!("x-extra-{n}"), v.clone());
                }
                let mut frame = Map::new();
                frame.insert("type".into(), json!(kind));
                match (data.is_empty(), empty_data) {
                    (true, 0) => {}
                    (true, 1) => {
                        frame.insert("data".into(), Value::Null);
                    }
                    _ => {
                        frame.insert("data".into(), Value::Object(data));
                    }
                }
                reference.insert(&mut frame, "ref", |r| json!(r));
                for (n, v) in extra.iter().filter(|_| top) {
                    frame.insert(format!("x-extra-{n}"), v.clone());
                }
                Valid {
                    frame: Value::Object(frame),
                    command,
                    reference: reference.value(),
                }
            },
        )
}

/// One change to a valid frame.
#[derive(Debug, Clone)]
enum Mutation {
    /// Removes a top-level or a `data` field.
    Remove { in_data: bool, at: Index },
    /// Gives a field (existing or new) another value.
    Set {
        in_data: bool,
        key: String,
        value: Value,
    },
    /// Gives an existing field a value of any type.
    Retype {
        in_data: bool,
        at: Index,
        value: Value,
    },
    /// Turns a string field into a huge one (over every limit).
    Huge {
        in_data: bool,
        at: Index,
        repeat: char,
        n: usize,
    },
    /// Wraps a field's value in `depth` arrays or objects.
    Nest {
        in_data: bool,
        at: Index,
        depth: usize,
        arrays: bool,
    },
    /// Replaces `data` or the whole frame.
    Replace { whole: bool, value: Value },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<bool>(), any::<Index>()).prop_map(|(in_data, at)| Mutation::Remove { in_data, at }),
        4 => (any::<bool>(), key(), json_value())
            .prop_map(|(in_data, key, value)| Mutation::Set { in_data, key, value }),
        4 => (any::<bool>(), any::<Index>(), json_value())
            .prop_map(|(in_data, at, value)| Mutation::Retype { in_data, at, value }),
        2 => (any::<bool>(), any::<Index>(), any::<char>(), 0usize..40_000)
            .prop_map(|(in_data, at, repeat, n)| Mutation::Huge { in_data, at, repeat, n }),
        1 => (any::<bool>(), any::<Index>(), 1usize..200, any::<bool>())
            .prop_map(|(in_data, at, depth, arrays)| Mutation::Nest { in_data, at, depth, arrays }),
        1 => (any::<bool>(), json_value()).prop_map(|(whole, value)| Mutation::Replace { whole, value }),
    ]
}

impl Mutation {
    fn apply(&self, frame: &mut Value) {
        let (in_data, at) = match self {
            Mutation::Replace { whole: true, value } => return *frame = value.clone(),
            Mutation::Replace {
                whole: false,
                value,
            } => {
                if let Value::Object(top) = frame {
                    top.insert("data".into(), value.clone());
                }
                return;
            }
            Mutation::Set {
                in_data,
                key,
                value,
            } => {
                if let Some(m) = fields(frame, *in_data) {
                    m.insert(key.clone(), value.clone());
                }
                return;
            }
            Mutation::Remove { in_data, at }
            | Mutation::Retype { in_data, at, .. }
            | Mutation::Huge { in_data, at, .. }
            | Mutation::Nest { in_data, at, .. } => (*in_data, at),
        };
        let Some(m) = fields(frame, in_data) else {
            return;
        };
        let Some(k) = nth_key(m, at) else {
            return;
        };
        match self {
            Mutation::Retype { value, .. } => {
                m.insert(k, value.clone());
            }
            Mutation::Huge { repeat, n, .. } => {
                m.insert(k, Value::String(std::iter::repeat_n(*repeat, *n).collect()));
            }
            Mutation::Nest { depth, arrays, .. } => {
                let mut v = m.remove(&k).unwrap_or(Value::Null);
                for _ in 0..*depth {
                    v = if *arrays {
                        json!([v])
                    } else {
                        json!({ "k": v })
                    };
                }
                m.insert(k, v);
            }
            _ => {
                m.remove(&k);
            }
        }
    }
}

/// The frame's top-level fields, or its `data`'s.
fn fields(frame: &mut Value, in_data: bool) -> Option<&mut Map<String, Value>> {
    let Value::Object(top) = frame else {
        return None;
    };
    if !in_data {
        return Some(top);
    }
    match top.get_mut("data") {
        Some(Value::Object(d)) => Some(d),
        _ => None,
    }
}

fn nth_key(m: &Map<String, Value>, at: &Index) -> Option<String> {
    if m.is_empty() {
        return None;
    }
    m.keys().nth(at.index(m.len())).cloned()
}

/// A capped string field of some command, and a valid frame that has it.
#[derive(Debug, Clone)]
struct Capped {
    kind: &'static str,
    /// `None`: the top-level `ref`.
    field: Option<&'static str>,
    max: usize,
    role: Role,
    /// Other fields the command requires.
    data: Value,
}

fn capped() -> impl Strategy<Value = Capped> {
    let c = |kind, field, max, role, data: Value| Capped {
        kind,
        field,
        max,
        role,
        data,
    };
    prop::sample::select(vec![
        c(
            "heartbeat",
            None,
            max_chars::REF,
            Role::Candidate,
            json!({}),
        ),
        c(
            "join-interview",
            Some("interviewId"),
            max_chars::INTERVIEW_ID,
            Role::Candidate,
            json!({}),
        ),
        c(
            "observe-interview",
            Some("interviewId"),
            max_chars::INTERVIEW_ID,
            Role::Recruiter,
            json!({}),
        ),
        c(
            "answer",
            Some("text"),
            max_chars::ANSWER,
            Role::Candidate,
            json!({}),
        ),
        c(
            "response-complete",
            Some("transcription"),
            max_chars::TRANSCRIPTION,
            Role::Candidate,
            json!({}),
        ),
        c(
            "response-complete",
            Some("audioUrl"),
            max_chars::AUDIO_URL,
            Role::Candidate,
            json!({"transcription": "t"}),
        ),
        c(
            "proctor-event",
            Some("message"),
            max_chars::PROCTOR_MESSAGE,
            Role::Candidate,
            json!({"type": "tab-switch", "severity": "low"}),
        ),
        c(
            "end-interview",
            Some("reason"),
            max_chars::END_REASON,
            Role::Admin,
            json!({}),
        ),
    ])
}

// ---------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(config())]

    /// Valid frames of every command parse to exactly that command, with
    /// its `ref`, for every role that may send it; every other role gets
    /// INVALID_MESSAGE.
    #[test]
    fn valid_frames_round_trip(v in valid()) {
        let text = v.frame.to_string();
        for role in ROLES {
            let got = parse_client_frame(&text, role);
            if allowed(role, v.command.type_name()) {
                let want = ClientFrame { command: v.command.clone(), reference: v.reference.clone() };
                prop_assert_eq!(got, Ok(want), "{:?} sent {}", role, text);
            } else {
                let e = got.expect_err("another role's type is refused");
                prop_assert_eq!(e.code, ErrorCode::InvalidMessage, "{:?} sent {}: {}", role, text, e.message);
            }
        }
    }

    /// Valid frames, changed: never a panic; a command of the frame's
    /// type, or a documented error.
    #[test]
    fn mutated_frames_parse_or_fail_cleanly(
        v in valid(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut frame = v.frame.clone();
        for m in &mutations {
            m.apply(&mut frame);
        }
        let text = frame.to_string();
        for role in ROLES {
            check_outcome(&text, role, &parse_client_frame(&text, role))?;
        }
    }

    /// JSON of any shape, and frames with `type` and `data` of any shape.
    #[test]
    fn arbitrary_json_parses_or_fails_cleanly(
        value in json_value(),
        kind in prop_oneof![
            prop::sample::select(vec![
                "join-interview", "observe-interview", "start-interview", "answer",
                "audio-chunk", "response-complete", "proctor-event", "pause-interview",
                "resume-interview", "end-interview", "stop-observing", "heartbeat", "ping",
            ]).prop_map(|k| json!(k)),
            json_value(),
        ],
        reference in prop::option::of(json_value()),
    ) {
        let mut framed = json!({"type": kind, "data": value.clone()});
        if let Some(r) = reference {
            framed["ref"] = r;
        }
        for text in [value.to_string(), framed.to_string()] {
            for role in ROLES {
                check_outcome(&text, role, &parse_client_frame(&text, role))?;
            }
        }
    }

    /// Strings that are not (or not quite) JSON: any characters, valid
    /// frames with characters deleted, inserted or cut, deep nesting.
    #[test]
    fn arbitrary_strings_parse_or_fail_cleanly(
        text in prop_oneof![
            any::<String>(),
            "[\\[\\]{}\":,a-z0-9 \\\\-]{0,64}",
            (valid(), any::<Index>(), any::<char>(), 0u8..3).prop_map(|(v, at, c, how)| {
                let mut s: Vec<char> = v.frame.to_string().chars().collect();
                let i = at.index(s.len() + 1);
                match how {
                    0 if i < s.len() => { s.remove(i); }
                    1 => s.insert(i, c),
                    _ => s.truncate(i),
                }
                s.into_iter().collect()
            }),
            (1usize..400, any::<bool>()).prop_map(|(depth, arrays)| {
                let (open, close) = if arrays { ("[", "]") } else { ("{\"data\":", "}") };
                format!("{{\"type\":\"heartbeat\",\"data\":{{\"x\":{}1{}}}}}", open.repeat(depth), close.repeat(depth))
            }),
        ],
    ) {
        for role in ROLES {
            check_outcome(&text, role, &parse_client_frame(&text, role))?;
        }
    }

    /// A string field over its limit (in characters: multi-byte ones too)
    /// refuses the frame whole with PAYLOAD_TOO_LARGE naming the field; at
    /// the limit exactly, the frame is taken with the string as sent.
    #[test]
    fn a_field_over_its_limit_is_payload_too_large_naming_it(
        c in capped(),
        fill in prop::sample::select(vec!['a', 'é', '日', '🦀']),
        over in prop_oneof![Just(1usize), 1usize..5000],
    ) {
        let frame_with = |n: usize| {
            let s: String = std::iter::repeat_n(fill, n).collect();
            let mut data = c.data.clone();
            let mut frame = json!({"type": c.kind, "data": {}});
            match c.field {
                Some(f) => data[f] = json!(s),
                None => frame["ref"] = json!(s),
            }
            frame["data"] = data;
            (frame.to_string(), s)
        };
        let (text, _) = frame_with(c.max + over);
        let e = parse_client_frame(&text, c.role).expect_err("over the limit");
        prop_assert_eq!(e.code, ErrorCode::PayloadTooLarge, "{}", e.message);
        let named = match c.field {
            Some(f) => format!("`data.{f}`"),
            None => "`ref`".to_owned(),
        };
        prop_assert!(e.message.contains(&named), "{} does not name {}", e.message, named);
        // A `ref` over its limit is not echoed.
        prop_assert_eq!(peek_ref(&text).filter(|_| c.field.is_none()), None);

        let (text, s) = frame_with(c.max);
        let frame = parse_client_frame(&text, c.role);
        prop_assert!(frame.is_ok(), "at the limit: {:?}", frame);
        let frame = frame.unwrap_or_else(|_| unreachable!());
        let kept = match (&frame.command, c.field) {
            (_, None) => frame.reference.clone(),
            (ClientCommand::JoinInterview { interview_id, .. }, _)
            | (ClientCommand::ObserveInterview { interview_id, .. }, _) => Some(interview_id.clone()),
            (ClientCommand::Answer { text }, _) => Some(text.clone()),
            (ClientCommand::ResponseComplete { transcription, .. }, Some("transcription")) => {
                Some(transcription.clone())
            }
            (ClientCommand::ResponseComplete { audio_url, .. }, _) => audio_url.clone(),
            (ClientCommand::ProctorEvent { message, .. }, _) => message.clone(),
            (ClientCommand::EndInterview { reason }, _) => reason.clone(),
            (other, _) => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
        };
        prop_assert_eq!(kept, Some(s));
    }
}

#[test]
fn the_documented_codes_are_found() {
    let codes = documented_codes();
    for c in ["INVALID_MESSAGE", "PAYLOAD_TOO_LARGE", "INTERNAL_ERROR"] {
        assert!(codes.iter().any(|d| d == c), "{c} in {codes:?}");
    }
}

#[test]
fn base64_matches_rfc_4648_test_vectors() {
    for (plain, encoded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(plain.as_bytes()), encoded);
    }
}
