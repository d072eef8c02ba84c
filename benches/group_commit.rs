//! Group commit under load, through the real `Store`: N concurrent sessions,
//! each appending events the way `InterviewSession` does (one batch in
//! flight per session; whatever arrived meanwhile goes in the next batch),
//! with tokens arriving every 1-30 ms. Reports commits/s, events per commit,
//! the commit call's latency, and what group commit adds to each token: the
//! time from its arrival to its batch being durable.
//!
//! SQLite (a temp file) always; PostgreSQL too when `DATABASE_URL` (or
//! `TEST_POSTGRES_URL`) points at one, on a scratch database dropped at the
//! end.
//!
//! `cargo bench --bench group_commit`; `BENCH_SESSIONS` (default 50),
//! `BENCH_SECS` per backend (default 3), `BENCH_MIN_MS`/`BENCH_MAX_MS`
//! (token gap, default 1 and 30).

#![cfg_attr(test, allow(unused_imports, dead_code))]

#[allow(dead_code)]
#[path = "../src/store/mod.rs"]
mod store;

// Checked as a test target, `store` has it already (`#[cfg(test)]`).
#[cfg(not(test))]
#[path = "../src/store/scratch_db.rs"]
mod scratch_db;
#[cfg(test)]
use store::scratch_db;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use interview_actors::event::{Event, LoggedEvent, Progress};
use interview_actors::ports::{Batch, EventStore, InterviewRow, InterviewStatus, StoreError};
use tokio::time::{sleep_until, Instant};

use store::{NewInterview, Store};

/// Events in one commit at most, as in the session's log.
const MAX_BATCH: usize = 512;

struct Settings {
    sessions: usize,
    run: Duration,
    min_gap_ms: u64,
    max_gap_ms: u64,
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one session measured.
#[derive(Default)]
struct SessionStats {
    commits: u64,
    events: u64,
    failures: u64,
    commit_us: Vec<u64>,
    token_us: Vec<u64>,
}

/// xorshift64*: enough randomness for arrival gaps, no dependency.
struct Gaps(u64);

impl Gaps {
    fn next(&mut self, min_ms: u64, max_ms: u64) -> Duration {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let span_us = (max_ms.saturating_sub(min_ms) * 1000).max(1);
        Duration::from_micros(min_ms * 1000 + r % span_us)
    }
}

type Commit = Pin<Box<dyn Future<Output = (Result<(), StoreError>, Instant)> + Send>>;
/// Events with their arrival times.
type Events = Vec<(Arc<LoggedEvent>, Instant)>;

fn row(last_seq: u64) -> InterviewRow {
    InterviewRow {
        status: InterviewStatus::Active,
        started_at: Some(Utc::now()),
        ended_at: None,
        progress: Progress {
            current_question: 1,
            total_questions: 3,
            answered: 0,
        },
        trust_score: 100,
        summary: None,
        last_seq,
        status_since: Some(Utc::now()),
    }
}

/// One session: tokens arrive at random gaps until `end`; batches commit one
/// at a time, like `InterviewSession::flush`.
async fn session(
    store: Store,
    id: String,
    seed: u64,
    s: Arc<Settings>,
    end: Instant,
) -> SessionStats {
    let mut stats = SessionStats::default();
    let mut gaps = Gaps(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut next_seq = 1u64;
    let mut pending: Events = Vec::new();
    // The batch in flight: its arrival times and seqs, to put back on failure.
    let mut in_flight: Option<(Commit, Events)> = None;
    let mut next_token = Instant::now() + gaps.next(s.min_gap_ms, s.max_gap_ms);
    loop {
        if in_flight.is_none() && !pending.is_empty() {
            let take = pending.len().min(MAX_BATCH);
            let batch: Vec<_> = pending.drain(..take).collect();
            let last = batch.last().map_or(0, |(e, _)| e.seq);
            let started = Instant::now();
            let commit = store.commit(Batch {
                interview_id: id.clone(),
                events: batch.iter().map(|(e, _)| e.clone()).collect(),
                row: Some(row(last)),
                audio: vec![],
                epoch: None,
            });
            let fut: Commit = Box::pin(async move { (commit.await, started) });
            in_flight = Some((fut, batch));
        }
        let producing = Instant::now() < end;
        if !producing && in_flight.is_none() && pending.is_empty() {
            return stats;
        }
        tokio::select! {
            _ = sleep_until(next_token), if producing => {
                let event = Event::AiToken { message_id: "m1".into(), text: "word ".into() };
                pending.push((Arc::new(LoggedEvent::new(next_seq, Utc::now(), event)), Instant::now()));
                next_seq += 1;
                next_token += gaps.next(s.min_gap_ms, s.max_gap_ms);
            }
            (result, started) = async { in_flight.as_mut().map(|(f, _)| f).expect("guarded").await }, if in_flight.is_some() => {
                let done = Instant::now();
                let (_, batch) = in_flight.take().expect("guarded");
                match result {
                    Ok(()) => {
                        stats.commits += 1;
                        stats.events += batch.len() as u64;
                        stats.commit_us.push((done - started).as_micros() as u64);
                        stats.token_us.extend(batch.iter().map(|(_, at)| (done - *at).as_micros() as u64));
                    }
                    Err(e) => {
                        stats.failures += 1;
                        if stats.failures == 1 {
                            eprintln!("commit failed (retrying): {e}");
                        }
                        let mut back = batch;
                        back.append(&mut pending);
                        pending = back;
                    }
                }
            }
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

struct Row {
    backend: &'static str,
    secs: f64,
    commits: u64,
    events: u64,
    failures: u64,
    commit_us: Vec<u64>,
    token_us: Vec<u64>,
}

async fn run(backend: &'static str, url: &str, s: Arc<Settings>) -> Result<Row, StoreError> {
    let store = Store::open(url).await?;
    let mut ids = Vec::with_capacity(s.sessions);
    for i in 0..s.sessions {
        let rec = store
            .create_interview(NewInterview {
                org_id: "bench".into(),
                title: format!("session {i}"),
                candidate_name: "Ada".into(),
                candidate_id: format!("c{i}"),
                questions: vec![("Tell me about yourself".into(), String::new())],
                duration_minutes: 30,
            })
            .await?;
        ids.push(rec.id);
    }
    let started = Instant::now();
    let end = started + s.run;
    let tasks: Vec<_> = ids
        .into_iter()
        .enumerate()
        .map(|(i, id)| tokio::spawn(session(store.clone(), id, i as u64 + 1, s.clone(), end)))
        .collect();
    let mut row = Row {
        backend,
        secs: 0.0,
        commits: 0,
        events: 0,
        failures: 0,
        commit_us: Vec::new(),
        token_us: Vec::new(),
    };
    for t in tasks {
        let st = t
            .await
            .map_err(|e| StoreError::Query(format!("session task: {e}")))?;
        row.commits += st.commits;
        row.events += st.events;
        row.failures += st.failures;
        row.commit_us.extend(st.commit_us);
        row.token_us.extend(st.token_us);
    }
    row.secs = started.elapsed().as_secs_f64();
    row.commit_us.sort_unstable();
    row.token_us.sort_unstable();
    Ok(row)
}

fn print_table(s: &Settings, rows: &[Row]) {
    println!(
        "\ngroup commit: {} sessions, tokens every {}-{} ms, {:.0} s per backend\n",
        s.sessions,
        s.min_gap_ms,
        s.max_gap_ms,
        s.run.as_secs_f64()
    );
    println!(
        "| backend  | commits/s | events/s | events/commit | commit p50 ms | commit p99 ms | token→durable p50 ms | token→durable p99 ms | failed commits |"
    );
    println!(
        "|----------|----------:|---------:|--------------:|--------------:|--------------:|---------------------:|---------------------:|---------------:|"
    );
    for r in rows {
        println!(
            "| {:<8} | {:>9.0} | {:>8.0} | {:>13.2} | {:>13.2} | {:>13.2} | {:>20.2} | {:>20.2} | {:>14} |",
            r.backend,
            r.commits as f64 / r.secs,
            r.events as f64 / r.secs,
            r.events as f64 / r.commits.max(1) as f64,
            percentile(&r.commit_us, 0.50),
            percentile(&r.commit_us, 0.99),
            percentile(&r.token_us, 0.50),
            percentile(&r.token_us, 0.99),
            r.failures,
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let settings = Arc::new(Settings {
        sessions: env_u64("BENCH_SESSIONS", 50).max(1) as usize,
        run: Duration::from_secs(env_u64("BENCH_SECS", 3).max(1)),
        min_gap_ms: env_u64("BENCH_MIN_MS", 1),
        max_gap_ms: env_u64("BENCH_MAX_MS", 30).max(env_u64("BENCH_MIN_MS", 1) + 1),
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    let mut rows = Vec::new();
    let failed = runtime.block_on(async {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => return Err(format!("temp dir: {e}")),
        };
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        rows.push(
            run("sqlite", &url, settings.clone())
                .await
                .map_err(|e| format!("sqlite: {e}"))?,
        );
        match scratch_db::configured_url() {
            Some(base) => {
                let db = tokio::task::spawn_blocking(move || scratch_db::ScratchDb::create(&base))
                    .await
                    .map_err(|e| format!("postgres: {e}"))?
                    .map_err(|e| format!("postgres: {e}"))?;
                let row = run("postgres", &db.url, settings.clone())
                    .await
                    .map_err(|e| format!("postgres: {e}"))?;
                rows.push(row);
                // The store's connections close with its runtime; then drop.
                tokio::time::sleep(Duration::from_millis(100)).await;
                drop(db);
            }
            None => eprintln!("note: PostgreSQL skipped (DATABASE_URL is not postgres://...)"),
        }
        Ok(())
    });
    print_table(&settings, &rows);
    if let Err(e) = failed {
        eprintln!("bench failed: {e}");
        std::process::exit(1);
    }
}
