//! Hostile clients for the soak scenario: every attack of the hardening
//! issue, each a loop of real connections to the server until its phase
//! ends, counting what the server did about it. Nothing here asserts: the
//! soak reports.
//!
//! | kind | what it does |
//! | --- | --- |
//! | `huge-header` | a header announcing 2^62 bytes (text, then ping), then streams data; also a frame of the hard cap + 1 |
//! | `over-max-frame` | text frames of `MAX_FRAME_BYTES` + 1 bytes, under the rate limit |
//! | `ping-flood` | pings as fast as the socket takes them (up to a rate) |
//! | `proctor-flood` | a candidate sending `proctor-event` far over its budgets |
//! | `one-token-sockets` | one token opening many sockets at once, held |
//! | `stalled-observer` | observes an honest interview with `lastSeq: 0`, then never reads |
//! | `invalid-utf8` | a text frame that is not UTF-8 |
//! | `slowloris` | HTTP request headers sent a line a second, never finished |

mod frames;
mod holders;
pub mod raw;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::raw::{RawWs, Upgrade};
use crate::stats::{Hist, Latency, Tally};
use crate::tokens::Tokens;

/// How many of each hostile client, and how hard they push.
#[derive(Debug, Clone, Serialize)]
pub struct HostileParams {
    /// The loopback address hostile clients connect from (`None`: the
    /// honest clients' own), so that a per-address limit tells them apart.
    pub source: Option<IpAddr>,
    pub huge_header: usize,
    /// Bytes one huge-header client streams behind its header, at most.
    pub huge_header_mib: u64,
    pub over_max_frame: usize,
    /// Frames per second of each over-max-frame client (under the
    /// server's rate limit, so each gets its `PAYLOAD_TOO_LARGE`).
    pub over_max_frame_rate: f64,
    pub ping_flood: usize,
    /// Pings per second of each flooding client, at most.
    pub ping_flood_rate: u64,
    /// Flooding candidates, each with an interview of its own.
    pub proctor_flood: usize,
    pub proctor_flood_rate: f64,
    /// Sockets one token opens at once.
    pub one_token_sockets: usize,
    /// Observers that stop reading, spread over the honest interviews.
    pub stalled_observers: usize,
    pub invalid_utf8: usize,
    /// Connections per second of each invalid-UTF-8 client.
    pub invalid_utf8_rate: f64,
    pub slowloris: usize,
    /// The server's `MAX_FRAME_BYTES` and its hard cap (1 MiB).
    pub max_frame_bytes: usize,
    pub hard_frame_bytes: usize,
}

impl Default for HostileParams {
    fn default() -> Self {
        HostileParams {
            source: Some(IpAddr::from([127, 0, 0, 2])),
            huge_header: 2,
            huge_header_mib: 64,
            over_max_frame: 2,
            over_max_frame_rate: 20.0,
            ping_flood: 2,
            ping_flood_rate: 20_000,
            proctor_flood: 1,
            proctor_flood_rate: 200.0,
            one_token_sockets: 300,
            stalled_observers: 4,
            invalid_utf8: 1,
            invalid_utf8_rate: 5.0,
            slowloris: 50,
            max_frame_bytes: 65_536,
            hard_frame_bytes: 1024 * 1024,
        }
    }
}

/// What one kind of hostile client did and what came of it.
#[derive(Default)]
pub struct KindStats {
    /// Connections attempted.
    pub connections: AtomicU64,
    /// Frames (or header lines) sent.
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
    /// The most bytes the server took on one connection before it refused
    /// (stopped reading or closed).
    pub max_accepted: AtomicU64,
    /// How it ended, by outcome: `close 1009`, `HTTP 429`, `eof`, ...;
    /// and `error` frames by code.
    pub outcomes: Tally,
    /// From the attack's start to the server's refusal (close or EOF).
    pub refused_after: Hist,
}

impl KindStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// One kind's figures, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct KindReport {
    pub kind: &'static str,
    pub clients: usize,
    pub connections: u64,
    pub frames: u64,
    pub mib_sent: f64,
    pub max_accepted_kib: f64,
    pub outcomes: BTreeMap<String, u64>,
    pub refused_after: Latency,
}

/// Where the hostile clients connect, and until when.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub source: Option<IpAddr>,
    pub tokens: Tokens,
    /// The hostile phase's end: every client stops by then (a few
    /// seconds' grace to read the last replies).
    pub until: Instant,
}

/// The running hostile clients.
pub struct Hostile {
    tasks: Vec<JoinHandle<()>>,
    kinds: Vec<(&'static str, usize, Arc<KindStats>)>,
}

/// Interviews the hostile clients need: one per proctor-flooding
/// candidate, one whose token opens many sockets.
pub fn interviews_needed(p: &HostileParams) -> usize {
    p.proctor_flood + 1
}

impl Hostile {
    /// Starts every hostile client. `own` are interviews made for them
    /// (`interviews_needed`); `honest` are the honest interviews, for the
    /// stalled observers.
    pub fn start(target: Target, p: &HostileParams, own: &[String], honest: &[String]) -> Hostile {
        let mut h = Hostile {
            tasks: Vec::new(),
            kinds: Vec::new(),
        };
        let t = Arc::new(Target {
            source: target
                .source
                .filter(|s| s.is_ipv4() == target.addr.is_ipv4()),
            ..target
        });
        let p = Arc::new(p.clone());
        let own: Vec<String> = own.to_vec();
        let many_token_interview = own.last().cloned().unwrap_or_default();

        let stats = h.kind("huge-header", p.huge_header);
        for i in 0..p.huge_header {
            h.tasks.push(tokio::spawn(frames::huge_header(
                t.clone(),
                p.clone(),
                stats.clone(),
                i,
            )));
        }
        let stats = h.kind("over-max-frame", p.over_max_frame);
        for i in 0..p.over_max_frame {
            h.tasks.push(tokio::spawn(frames::over_max_frame(
                t.clone(),
                p.clone(),
                stats.clone(),
                i,
            )));
        }
        let stats = h.kind("ping-flood", p.ping_flood);
        for i in 0..p.ping_flood {
            h.tasks.push(tokio::spawn(frames::ping_flood(
                t.clone(),
                p.clone(),
                stats.clone(),
                i,
            )));
        }
        let stats = h.kind("proctor-flood", p.proctor_flood);
        for id in own.iter().take(p.proctor_flood) {
            h.tasks.push(tokio::spawn(holders::proctor_flood(
                t.clone(),
                p.clone(),
                stats.clone(),
                id.clone(),
            )));
        }
        let stats = h.kind("one-token-sockets", p.one_token_sockets);
        h.tasks.push(tokio::spawn(holders::one_token_sockets(
            t.clone(),
            p.one_token_sockets,
            stats,
            many_token_interview,
        )));
        let stats = h.kind("stalled-observer", p.stalled_observers);
        if !honest.is_empty() {
            for i in 0..p.stalled_observers {
                let id = honest
                    [i * honest.len().max(1) / p.stalled_observers.max(1) % honest.len()]
                .clone();
                h.tasks.push(tokio::spawn(holders::stalled_observer(
                    t.clone(),
                    stats.clone(),
                    i,
                    id,
                )));
            }
        }
        let stats = h.kind("invalid-utf8", p.invalid_utf8);
        for i in 0..p.invalid_utf8 {
            h.tasks.push(tokio::spawn(frames::invalid_utf8(
                t.clone(),
                p.clone(),
                stats.clone(),
                i,
            )));
        }
        let stats = h.kind("slowloris", p.slowloris);
        for i in 0..p.slowloris {
            h.tasks.push(tokio::spawn(holders::slowloris(
                t.clone(),
                stats.clone(),
                i,
            )));
        }
        h
    }

    fn kind(&mut self, name: &'static str, clients: usize) -> Arc<KindStats> {
        let stats = Arc::new(KindStats::default());
        self.kinds.push((name, clients, stats.clone()));
        stats
    }

    /// Waits for every client to stop (each stops by itself at the phase's
    /// end; a straggler is aborted after `grace`) and reports each kind.
    pub async fn finish(self, grace: Duration) -> Vec<KindReport> {
        let deadline = Instant::now() + grace;
        for t in self.tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout_at(deadline, t).await.is_err() {
                abort.abort();
            }
        }
        self.kinds
            .into_iter()
            .map(|(kind, clients, s)| KindReport {
                kind,
                clients,
                connections: s.connections.load(Ordering::Relaxed),
                frames: s.frames.load(Ordering::Relaxed),
                mib_sent: s.bytes.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0),
                max_accepted_kib: s.max_accepted.load(Ordering::Relaxed) as f64 / 1024.0,
                outcomes: s.outcomes.get(),
                refused_after: s.refused_after.latency(),
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// What every hostile client shares (the child modules see these).

/// Time past the phase's end to read the server's last replies.
const GRACE: Duration = Duration::from_secs(3);
/// Pause after a refused or failed connection.
const BACKOFF: Duration = Duration::from_millis(200);

fn running(t: &Target) -> bool {
    Instant::now() < t.until
}

/// A token of its own for every connection (a recruiter of the benchmark
/// organisation), so that a per-token limit does not stop an attack that
/// is about something else.
fn fresh_token(t: &Target, kind: usize, client: usize, attempt: u64) -> String {
    t.tokens
        .recruiter(1_000_000 * (kind + 1) + client * 10_000 + attempt as usize)
}

/// Opens a raw socket; a refusal or a failure is counted and gives `None`.
async fn open(t: &Target, s: &KindStats, token: &str) -> Option<RawWs> {
    KindStats::add(&s.connections, 1);
    match raw::upgrade(t.addr, t.source, token, Duration::from_secs(10)).await {
        Ok(Upgrade::Open(ws)) => Some(ws),
        Ok(Upgrade::Refused(status)) => {
            s.outcomes.add(format!("HTTP {status}"));
            None
        }
        Err(_) => {
            s.outcomes.add("connect failed");
            None
        }
    }
}

/// Counts how a connection ended; `took`: from the attack's start to the
/// server's Close or the end of the connection.
fn record_end(s: &KindStats, label: &str, result: Result<u16, &str>, took: Duration) {
    match result {
        Ok(code) => {
            s.outcomes.add(format!("{label}close {code}"));
            s.refused_after.record(took);
        }
        Err("eof") => {
            s.outcomes.add(format!("{label}eof"));
            s.refused_after.record(took);
        }
        Err(other) => s.outcomes.add(format!("{label}{other}")),
    }
}

/// Counts how a connection ended that the client closed itself: the
/// server's answer to its Close.
fn record_bye(s: &KindStats, result: Result<u16, &str>) {
    match result {
        Ok(code) => s.outcomes.add(format!("our Close answered {code}")),
        Err(other) => s.outcomes.add(format!("our Close: {other}")),
    }
}
