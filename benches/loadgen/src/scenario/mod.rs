//! The four scenarios and what they share.

mod active;
mod dormant;
mod idle;
mod soak;

pub use active::{active, storm, ActiveParams, StormParams};
pub use dormant::{dormant, DormantParams};
pub use idle::{idle, IdleParams};
pub use soak::{soak, SoakParams};

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::{stream, StreamExt};

use crate::fdlimit::FdLimit;
use crate::report::{Machine, Report};
use crate::server::{Server, ServerOpts};

/// Options every scenario takes.
#[derive(Debug, Clone)]
pub struct Common {
    pub server: ServerOpts,
    /// Connects (and HTTP creates) in flight at once.
    pub concurrency: usize,
    /// Processes holding idle sockets (`None`: as many as the fd limit needs).
    pub processes: Option<usize>,
    /// The executable to start as `worker` (default: this one).
    pub worker_exe: Option<PathBuf>,
    /// Print progress lines on stderr.
    pub verbose: bool,
}

impl Default for Common {
    fn default() -> Self {
        Common {
            server: ServerOpts::default(),
            concurrency: 256,
            processes: None,
            worker_exe: None,
            verbose: false,
        }
    }
}

impl Common {
    pub fn say(&self, what: impl AsRef<str>) {
        if self.verbose {
            eprintln!(
                "[loadgen {}] {}",
                chrono::Utc::now().format("%H:%M:%S%.3f"),
                what.as_ref()
            );
        }
    }
}

pub const MIB: f64 = 1024.0 * 1024.0;
pub const KIB: f64 = 1024.0;

/// Creates `n` interviews over HTTP, `concurrency` at once. Returns their
/// ids (in order) and how long it took.
pub async fn create_interviews(
    server: &Server,
    n: usize,
    questions: usize,
    concurrency: usize,
) -> Result<(Vec<String>, Duration)> {
    let started = Instant::now();
    let results: Vec<Result<String>> = stream::iter(0..n)
        .map(|_| server.create_interview(questions, "GENERAL"))
        .buffered(concurrency.clamp(1, 64))
        .collect()
        .await;
    let ids = results.into_iter().collect::<Result<Vec<_>>>()?;
    Ok((ids, started.elapsed()))
}

/// Waits until the server counts at least `sockets` open sockets (or 20 s),
/// then a little longer for allocations to land.
pub async fn settle(server: &Server, sockets: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match server.ws_stats().await {
            Ok((connected, _)) if connected >= sockets => break,
            Ok(_) => {}
            Err(_) => break,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
}

/// Fills in what every report carries about the machine and the server.
pub fn finish_report(report: &mut Report, fd: Option<FdLimit>, server: &Server) {
    report.machine = Machine::probe(fd, server.nofile());
    if server.started {
        let settings: serde_json::Map<String, serde_json::Value> = server
            .settings
            .iter()
            .filter(|(k, _)| {
                !["JWT_SECRET", "ADMIN_TOKEN", "DATABASE_URL", "TTS_DIR"].contains(&k.as_str())
            })
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let database = match server.settings.iter().find(|(k, _)| k == "DATABASE_URL") {
            Some((_, url)) if url.starts_with("postgres") => "postgresql",
            _ => "sqlite (embedded, temp file)",
        };
        report.server =
            serde_json::json!({"started": true, "database": database, "settings": settings});
    } else {
        report.server = serde_json::json!({"started": false, "url": server.base});
    }
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB
}

/// (b - a) / n in KiB, when both are known and n > 0.
pub fn per_kib(a: Option<u64>, b: Option<u64>, n: usize) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if n > 0 => Some((b as f64 - a as f64) / n as f64 / KIB),
        _ => None,
    }
}
