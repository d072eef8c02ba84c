//! Latency histograms (HdrHistogram, microseconds, 3 significant digits)
//! and the counters every client shares.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Microseconds since the Unix epoch, on the wall clock the server's `ts`
/// comes from (same machine).
pub fn now_unix_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn new_histogram() -> Histogram<u64> {
    // Auto-resizing: values up to any size; 3 significant digits.
    Histogram::new(3).expect("3 significant digits is a valid histogram")
}

/// A histogram many tasks record into (microseconds).
pub struct Hist(Mutex<Histogram<u64>>);

impl Default for Hist {
    fn default() -> Self {
        Hist(Mutex::new(new_histogram()))
    }
}

impl Hist {
    pub fn record_us(&self, us: i64) {
        let v = us.max(0) as u64;
        if let Ok(mut h) = self.0.lock() {
            let _ = h.record(v);
        }
    }

    pub fn record(&self, d: Duration) {
        self.record_us(d.as_micros() as i64);
    }

    pub fn snapshot(&self) -> Histogram<u64> {
        self.0
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|_| new_histogram())
    }

    pub fn merge(&self, other: &Histogram<u64>) {
        if let Ok(mut h) = self.0.lock() {
            let _ = h.add(other);
        }
    }

    pub fn latency(&self) -> Latency {
        Latency::of(&self.snapshot())
    }

    /// What was recorded since the last `take`, leaving it empty (for
    /// figures per phase of a run).
    pub fn take(&self) -> Histogram<u64> {
        match self.0.lock() {
            Ok(mut h) => {
                let taken = h.clone();
                h.reset();
                taken
            }
            Err(_) => new_histogram(),
        }
    }

    /// The recorded values as (value, count) pairs, to send between processes.
    pub fn to_wire(&self) -> WireHist {
        WireHist::of(&self.snapshot())
    }
}

/// A histogram as (value, count) pairs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WireHist(pub Vec<(u64, u64)>);

impl WireHist {
    pub fn of(h: &Histogram<u64>) -> WireHist {
        WireHist(
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
        )
    }

    pub fn to_histogram(&self) -> Histogram<u64> {
        let mut h = new_histogram();
        for (v, n) in &self.0 {
            let _ = h.record_n(*v, *n);
        }
        h
    }
}

/// Percentiles of one latency, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// Counts by key (error codes, close codes).
#[derive(Default)]
pub struct Tally(Mutex<BTreeMap<String, u64>>);

impl Tally {
    pub fn add(&self, key: impl Into<String>) {
        self.add_n(key, 1);
    }
    pub fn add_n(&self, key: impl Into<String>, n: u64) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry(key.into()).or_default() += n;
        }
    }
    pub fn get(&self) -> BTreeMap<String, u64> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
    pub fn total(&self) -> u64 {
        self.get().values().sum()
    }
}

/// What every client of one run records into.
#[derive(Default)]
pub struct RunStats {
    /// TCP connect to the `connected` frame.
    pub connect: Hist,
    /// `join-interview`/`observe-interview` sent to its reply.
    pub join: Hist,
    /// Observers: session `ts` to receipt, every session event.
    pub fanout: Hist,
    /// Every receiver: `ai-token` `ts` to receipt.
    pub token_ts: Hist,
    /// Every receiver: the LLM fake wrote the token to the server, to receipt.
    pub token_src: Hist,
    /// `heartbeat` sent to `heartbeat-ack`.
    pub heartbeat: Hist,
    /// Latencies are recorded only while this is on (after the warm-up).
    pub measuring: AtomicBool,
    /// Text frames received, ever / while measuring.
    pub frames_in: AtomicU64,
    pub frames_in_window: AtomicU64,
    /// Frames sent by clients (text and binary).
    pub frames_out: AtomicU64,
    pub audio_out: AtomicU64,
    pub answers: AtomicU64,
    pub proctor: AtomicU64,
    pub completed: AtomicU64,
    pub connect_failures: AtomicU64,
    /// `error` frames by code.
    pub errors: Tally,
    /// Close codes the server sent (or `eof`).
    pub closes: Tally,
}

impl RunStats {
    pub fn measuring(&self) -> bool {
        self.measuring.load(Ordering::Relaxed)
    }
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
