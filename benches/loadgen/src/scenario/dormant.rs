//! dormant: N interviews created and started (the candidate joins, starts,
//! hears the first question and leaves), passivated (the server stops every
//! session actor with no sockets after SESSION_IDLE_PASSIVATE_MS), then R of
//! them re-activated: the candidate rejoins with `lastSeq`, the server
//! rebuilds the session from the database and replays what the candidate
//! missed. The replay is checked against `GET /v1/interviews/{id}/events`.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use futures_util::{stream, SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::{finish_report, mib, per_kib, settle, Common};
use crate::fdlimit;
use crate::report::Report;
use crate::server::Server;
use crate::stats::{Hist, Latency, Tally};
use crate::ws::{self, parse, Ws};

#[derive(Debug, Clone, Serialize)]
pub struct DormantParams {
    pub interviews: usize,
    pub reactivate: usize,
    pub questions: usize,
    /// Start the interviews that will be re-activated (first question
    /// streamed) before leaving them; the others only get a join.
    pub start: bool,
    /// Start every interview, not only those to be re-activated.
    pub start_all: bool,
    pub passivate_ms: u64,
    /// Give up waiting for passivation after this.
    pub timeout_s: u64,
}

impl Default for DormantParams {
    fn default() -> Self {
        DormantParams {
            interviews: 10_000,
            reactivate: 1000,
            questions: 20,
            start: true,
            start_all: false,
            passivate_ms: 2000,
            timeout_s: 300,
        }
    }
}

async fn next_text(ws: &mut Ws, until: tokio::time::Instant) -> Result<String> {
    loop {
        match tokio::time::timeout_at(until, ws.next()).await {
            Err(_) => bail!("timed out"),
            Ok(Some(Ok(Message::Text(t)))) => return Ok(t.to_string()),
            Ok(Some(Ok(Message::Close(c)))) => bail!("closed: {c:?}"),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => bail!("closed"),
        }
    }
}

/// Joins (and starts, and waits for the first `question`), then leaves.
/// Returns the highest seq the candidate processed.
/// `wait_eof`: after the close handshake, wait for the server to close the
/// TCP connection (a sample of the visits: it holds the visit up).
async fn first_visit(server: &Server, id: &str, start: bool, wait_eof: bool) -> Result<Visit> {
    let started = Instant::now();
    let (mut ws, _) = ws::connect(server.addr, &server.tokens.candidate(id)).await?;
    ws::send(&mut ws, "join-interview", json!({"interviewId": id})).await?;
    let until = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut last = loop {
        let t = next_text(&mut ws, until).await?;
        let f = parse(&t).ok_or_else(|| anyhow!("unparsable {t}"))?;
        if f.kind == "interview-ready" {
            break f.data.and_then(|d| d.last_seq).unwrap_or(0);
        }
        if f.kind == "error" {
            bail!("join refused: {t}");
        }
    };
    if start {
        ws::send(&mut ws, "start-interview", json!({})).await?;
        loop {
            let t = next_text(&mut ws, until).await?;
            let f = parse(&t).ok_or_else(|| anyhow!("unparsable {t}"))?;
            if let Some(s) = f.seq {
                last = last.max(s);
            }
            if f.kind == "question" {
                break;
            }
            if f.kind == "error" {
                bail!("start refused: {t}");
            }
        }
    }
    // Leave: our Close, then read until the server's Close and the end of
    // the stream, so the socket is gone on both sides.
    let leaving = Instant::now();
    let _ = tokio::time::timeout(Duration::from_secs(5), ws.close(None)).await;
    let mut close_reply = None;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Close(_) = m {
                close_reply = Some((leaving.elapsed(), started.elapsed()));
                if !wait_eof {
                    break;
                }
            }
        }
    })
    .await;
    Ok(Visit {
        last,
        close_reply,
        closed: wait_eof.then(|| leaving.elapsed()),
    })
}

/// What one first visit saw.
struct Visit {
    last: u64,
    /// Our Close to the server's Close frame, and the visit's start to it
    /// (None: no Close frame came).
    close_reply: Option<(Duration, Duration)>,
    /// Our Close to the end of the TCP stream (when waited for).
    closed: Option<Duration>,
}

/// What one re-activation saw.
struct Rejoin {
    ws: Ws,
    to_reply: Duration,
    to_live: Duration,
    replayed: Vec<u64>,
    duplicates: u64,
    recovered: bool,
    head: u64,
}

async fn rejoin(server: &Server, id: &str, last_seq: u64) -> Result<Rejoin> {
    let started = Instant::now();
    let (mut ws, _) = ws::connect(server.addr, &server.tokens.candidate(id)).await?;
    ws::send(
        &mut ws,
        "join-interview",
        json!({"interviewId": id, "lastSeq": last_seq}),
    )
    .await?;
    let until = tokio::time::Instant::now() + Duration::from_secs(120);
    let (head, recovered) = loop {
        let t = next_text(&mut ws, until).await?;
        let f = parse(&t).ok_or_else(|| anyhow!("unparsable {t}"))?;
        if f.kind == "interview-ready" {
            let d = f.data.unwrap_or_default();
            break (d.last_seq.unwrap_or(0), d.recovered.unwrap_or(true));
        }
        if f.kind == "error" {
            bail!("rejoin refused: {t}");
        }
    };
    let to_reply = started.elapsed();
    let mut replayed = Vec::new();
    let mut duplicates = 0;
    let mut last = last_seq;
    // Replay: every candidate event with last_seq < seq <= head, then live
    // events (`interview-resumed` comes at once after a rejoin).
    if head > last_seq {
        loop {
            let t = next_text(&mut ws, until).await?;
            let Some(f) = parse(&t) else { continue };
            let Some(seq) = f.seq else { continue };
            if seq <= last {
                duplicates += 1;
                continue;
            }
            last = seq;
            if seq <= head {
                replayed.push(seq);
            }
            if seq >= head {
                break;
            }
        }
    }
    Ok(Rejoin {
        ws,
        to_reply,
        to_live: started.elapsed(),
        replayed,
        duplicates,
        recovered,
        head,
    })
}

/// Candidate-visible events with `after < seq <= head`, over HTTP.
async fn expected_replay(server: &Server, id: &str, after: u64, head: u64) -> Result<Vec<u64>> {
    let http = reqwest::Client::new();
    let token = server.tokens.candidate(id);
    let mut out = Vec::new();
    let mut cursor = after;
    for _ in 0..1000 {
        let v: Value = http
            .get(format!(
                "{}/v1/interviews/{id}/events?after={cursor}&limit=500",
                server.base
            ))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        let events = v["events"].as_array().cloned().unwrap_or_default();
        if events.is_empty() {
            break;
        }
        for e in &events {
            let s = e["seq"].as_u64().unwrap_or(0);
            if s <= head {
                out.push(s);
            }
        }
        match v["next"].as_u64() {
            Some(n) if n > cursor && n < head => cursor = n,
            _ => break,
        }
    }
    Ok(out)
}

pub async fn dormant(common: &Common, p: &DormantParams) -> Result<Report> {
    let fd = fdlimit::raise_nofile()?;
    let n = p.interviews;
    let r = p.reactivate.min(n);
    let mut report = Report::new(
        "dormant",
        format!(
            "{n} interviews created{}, passivated after {} ms without sockets, {r} re-activated with lastSeq",
            if p.start_all {
                " and started (first question heard)".to_string()
            } else if p.start {
                format!(" and joined ({r} of them started: first question heard)")
            } else {
                " and joined".to_string()
            },
            p.passivate_ms
        ),
        serde_json::to_value(p)?,
    );
    let server = Server::start(
        &common.server,
        &[
            ("SESSION_IDLE_PASSIVATE_MS", p.passivate_ms.to_string()),
            ("SCRIPTED_WORD_DELAY_MS", "0".into()),
            ("HEARTBEAT_INTERVAL_MS", "30000".into()),
        ],
    )
    .await?;
    common.say(format!("server on {} (pid {:?})", server.addr, server.pid));
    settle(&server, 0).await;
    let rss0 = server.rss_bytes().await;

    let (ids, created) =
        super::create_interviews(&server, n, p.questions, common.concurrency).await?;
    common.say(format!("created {n} in {created:.1?}"));
    let rss_created = server.rss_bytes().await;

    // First visits.
    let first = Hist::default();
    let close_reply = Hist::default();
    let closed = Hist::default();
    let no_close_frame = AtomicU64::new(0);
    let failures = AtomicU64::new(0);
    let errors = Tally::default();
    let started = Instant::now();
    // Live sessions and RSS, sampled while the first visits run: what the
    // RSS high-water mark follows.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (sampling, server) = (sampling.clone(), server.sampler());
        tokio::spawn(async move {
            let (mut peak_sessions, mut peak_rss) = (0u64, 0u64);
            while sampling.load(Ordering::Relaxed) {
                if let Ok((_, sessions)) = server.ws_stats().await {
                    peak_sessions = peak_sessions.max(sessions);
                }
                peak_rss = peak_rss.max(server.rss_bytes().await.unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            (peak_sessions, peak_rss)
        })
    };
    // The interviews to re-activate, spread over the set.
    let chosen_idx: BTreeSet<usize> = (0..r).map(|j| j * n / r.max(1)).collect();
    let mut lasts: Vec<(usize, Option<u64>)> = stream::iter(ids.iter().enumerate())
        .map(|(i, id)| {
            let (first, failures, errors, server) = (&first, &failures, &errors, &server);
            let (close_reply, closed, no_close_frame) = (&close_reply, &closed, &no_close_frame);
            let start = p.start_all || (p.start && chosen_idx.contains(&i));
            async move {
                match first_visit(server, id, start, i % 50 == 0).await {
                    Ok(v) => {
                        if let Some(c) = v.closed {
                            closed.record(c);
                        }
                        match v.close_reply {
                            Some((leave, whole)) => {
                                close_reply.record(leave);
                                first.record(whole);
                            }
                            None => {
                                no_close_frame.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        (i, Some(v.last))
                    }
                    Err(e) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        errors.add(format!("{e:#}").chars().take(80).collect::<String>());
                        (i, None)
                    }
                }
            }
        })
        .buffer_unordered(common.concurrency.max(1))
        .collect()
        .await;
    lasts.sort_unstable_by_key(|(i, _)| *i);
    let lasts: Vec<Option<u64>> = lasts.into_iter().map(|(_, l)| l).collect();
    let visits = started.elapsed();
    sampling.store(false, Ordering::Relaxed);
    let (peak_sessions, peak_rss) = sampler.await.unwrap_or((0, 0));
    let (_, live_sessions) = server.ws_stats().await.unwrap_or((0, 0));
    let rss_visited = server.rss_bytes().await;
    common.say(format!(
        "first visits done in {visits:.1?}; {live_sessions} sessions live"
    ));

    // Passivation.
    let t = Instant::now();
    let deadline = t + Duration::from_secs(p.timeout_s);
    let mut passivated = false;
    while Instant::now() < deadline {
        if let Ok((_, 0)) = server.ws_stats().await {
            passivated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let passivation = t.elapsed();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let rss_dormant = server.rss_bytes().await;
    common.say(format!("passivated: {passivated} after {passivation:.1?}"));

    // Re-activation of R interviews spread over the set.
    let chosen: Vec<(String, u64)> = chosen_idx
        .iter()
        .filter_map(|&i| lasts[i].map(|l| (ids[i].clone(), l)))
        .collect();
    let reply = Hist::default();
    let live = Hist::default();
    let started = Instant::now();
    let rejoins: Vec<(String, u64, Result<Rejoin>)> = stream::iter(chosen)
        .map(|(id, last)| {
            let server = &server;
            async move {
                let res = rejoin(server, &id, last).await;
                (id, last, res)
            }
        })
        .buffer_unordered(common.concurrency.max(1))
        .collect()
        .await;
    let reactivation = started.elapsed();
    let mut open = Vec::new();
    let mut replayed = 0u64;
    let mut duplicates = 0u64;
    let mut gaps = 0u64;
    let mut not_recovered = 0u64;
    let mut rejoin_failures = 0u64;
    let mut checks = Vec::new();
    for (id, last, res) in rejoins {
        match res {
            Ok(rj) => {
                reply.record(rj.to_reply);
                live.record(rj.to_live);
                replayed += rj.replayed.len() as u64;
                duplicates += rj.duplicates;
                if !rj.recovered {
                    not_recovered += 1;
                }
                checks.push((id, last, rj.head, rj.replayed));
                open.push(rj.ws);
            }
            Err(e) => {
                rejoin_failures += 1;
                errors.add(
                    format!("rejoin: {e:#}")
                        .chars()
                        .take(80)
                        .collect::<String>(),
                );
            }
        }
    }
    settle(&server, open.len() as u64).await;
    let rss_reactivated = server.rss_bytes().await;
    let (_, sessions_after) = server.ws_stats().await.unwrap_or((0, 0));
    // Gaps: what the server's log says the candidate should have been
    // replayed, against what it was.
    let expected: Vec<Result<(Vec<u64>, Vec<u64>)>> = stream::iter(checks)
        .map(|(id, last, head, got)| {
            let server = &server;
            async move {
                let want = expected_replay(server, &id, last, head).await?;
                Ok((want, got))
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for e in expected {
        match e {
            Ok((want, got)) => {
                let got: BTreeSet<u64> = got.into_iter().collect();
                gaps += want.iter().filter(|s| !got.contains(s)).count() as u64;
            }
            Err(e) => errors.add(
                format!("events check: {e:#}")
                    .chars()
                    .take(80)
                    .collect::<String>(),
            ),
        }
    }
    for mut ws in open {
        let _ = ws.send(Message::Close(None)).await;
    }

    let dbsize = server
        .settings
        .iter()
        .find(|(k, _)| k == "DATABASE_URL")
        .and_then(|(_, v)| v.strip_prefix("sqlite://"))
        .map(|path| {
            ["", "-wal"]
                .iter()
                .filter_map(|s| std::fs::metadata(format!("{path}{s}")).ok())
                .map(|m| m.len())
                .sum::<u64>()
        });

    report.value(
        "interviews created per second (HTTP)",
        n as f64 / created.as_secs_f64(),
        "/s",
    );
    report.value(
        "first visits per second",
        n as f64 / visits.as_secs_f64(),
        "/s",
    );
    report.latency(
        "first visit (connect to the server's Close)",
        Latency::of(&first.snapshot()),
    );
    report.latency(
        "leave: our Close to the server's Close",
        close_reply.latency(),
    );
    report.latency("leave: our Close to TCP close (1 in 50)", closed.latency());
    report.value(
        "leave: no Close frame from the server",
        no_close_frame.load(Ordering::Relaxed) as f64,
        "",
    );
    report.value(
        "sessions live after the first visits",
        live_sessions as f64,
        "",
    );
    report.value(
        "peak live sessions during the first visits",
        peak_sessions as f64,
        "",
    );
    report.value(
        "peak server RSS during the first visits",
        mib(peak_rss),
        "MiB",
    );
    report.value(
        "time until every session passivated",
        passivation.as_secs_f64(),
        "s",
    );
    report.maybe("server RSS at 0", rss0.map(mib), "MiB");
    report.maybe("server RSS after creating N", rss_created.map(mib), "MiB");
    report.maybe(
        "server RSS after the first visits",
        rss_visited.map(mib),
        "MiB",
    );
    report.maybe("server RSS with N dormant", rss_dormant.map(mib), "MiB");
    report.maybe(
        "server RSS with R re-activated",
        rss_reactivated.map(mib),
        "MiB",
    );
    report.maybe(
        "per dormant interview (RSS 0 to N dormant)",
        per_kib(rss0, rss_dormant, n),
        "KiB",
    );
    report.maybe(
        "per re-activated interview (+ its socket)",
        per_kib(rss_dormant, rss_reactivated, r),
        "KiB",
    );
    report.maybe(
        "database on disk per interview",
        dbsize.map(|b| b as f64 / n as f64 / 1024.0),
        "KiB",
    );
    report.value(
        "re-activations per second",
        r as f64 / reactivation.as_secs_f64(),
        "/s",
    );
    report.latency(
        "re-activation: connect to interview-ready",
        Latency::of(&reply.snapshot()),
    );
    report.latency(
        "re-activation: connect to replay done",
        Latency::of(&live.snapshot()),
    );
    report.value("events replayed", replayed as f64, "");
    report.value("replies with recovered=false", not_recovered as f64, "");
    report.value(
        "sessions live after re-activation",
        sessions_after as f64,
        "",
    );
    report.checks.duplicates = duplicates;
    report.checks.gaps = gaps;
    report.checks.connect_failures = failures.load(Ordering::Relaxed) + rejoin_failures;
    report.checks.errors = errors.get();
    report.checks.finished = passivated && report.checks.connect_failures == 0;
    if !passivated {
        report.note(format!("sessions were still live after {} s", p.timeout_s));
    }
    report.note("memory freed by passivation may stay in the allocator's pools: RSS with N dormant is an upper bound of what dormant interviews cost");
    finish_report(&mut report, Some(fd), &server);
    server.stop().await;
    Ok(report)
}
