//! idle: N interviews, a candidate (joined, not started) and K observers
//! each, heartbeats only. The server's RSS is read at 0, N/2 and N:
//!
//! 1. N/2 candidates join (each join creates a session): RSS(N/2 cand).
//! 2. Their K observers each: RSS(N/2). The difference over K·N/2 is the
//!    cost of one idle socket (an observer: its actor, outbox, buffers, the
//!    session's entry for it).
//! 3. The other N/2 interviews, candidates and observers: RSS(N).
//!    (RSS(N) - RSS(0)) / N is one idle interview all-in: session, its
//!    sockets, everything.

use std::time::Duration;

use anyhow::{bail, Result};
use serde::Serialize;
use serde_json::json;

use super::{finish_report, mib, per_kib, settle, Common, KIB};
use crate::fdlimit;
use crate::fleet::{Fleet, HolderReport, IdleClient};
use crate::report::Report;
use crate::server::Server;
use crate::stats::{Hist, Latency};

#[derive(Debug, Clone, Serialize)]
pub struct IdleParams {
    pub interviews: usize,
    pub observers: usize,
    /// Each socket sends a heartbeat this often.
    pub heartbeat_ms: u64,
    /// How long every socket is held after the last one joined.
    pub hold_s: u64,
    pub questions: usize,
}

impl Default for IdleParams {
    fn default() -> Self {
        IdleParams {
            interviews: 1000,
            observers: 1,
            heartbeat_ms: 15_000,
            hold_s: 20,
            questions: 20,
        }
    }
}

fn clients(
    server: &Server,
    ids: &[(usize, &String)],
    candidate: bool,
    observers: usize,
) -> Vec<IdleClient> {
    let mut out = Vec::new();
    for (i, id) in ids {
        if candidate {
            out.push(IdleClient {
                interview_id: (*id).clone(),
                observer: false,
                token: server.tokens.candidate(id),
                index: i * 7,
            });
        }
        for k in 0..observers {
            out.push(IdleClient {
                interview_id: (*id).clone(),
                observer: true,
                token: server.tokens.recruiter(k),
                index: i * 7 + k + 1,
            });
        }
    }
    out
}

pub async fn idle(common: &Common, p: &IdleParams) -> Result<Report> {
    if p.interviews < 2 {
        bail!("idle needs at least 2 interviews (RSS is read at 0, N/2 and N)");
    }
    let fd = fdlimit::raise_nofile()?;
    let n = p.interviews;
    let k = p.observers;
    let sockets = n * (1 + k);
    let mut report = Report::new(
        "idle",
        format!("{n} interviews, {sockets} sockets (1 candidate + {k} observers each), heartbeats every {} ms, held {} s", p.heartbeat_ms, p.hold_s),
        serde_json::to_value(p)?,
    );
    let server = Server::start(
        &common.server,
        &[
            ("HEARTBEAT_INTERVAL_MS", "30000".into()),
            // Idle sockets keep their sessions; nothing passivates mid-run.
            ("SESSION_IDLE_PASSIVATE_MS", "3600000".into()),
        ],
    )
    .await?;
    let cap = fd.sockets_per_process() as usize;
    let processes = common
        .processes
        .unwrap_or_else(|| sockets.div_ceil(cap))
        .max(1);
    if processes.saturating_mul(cap) < sockets {
        bail!("{sockets} sockets do not fit in {processes} processes of {cap} sockets each");
    }
    if let Some(server_fd) = server.nofile() {
        if (server_fd as usize) < sockets + 64 {
            report.note(format!(
                "the server's fd limit ({server_fd}) is below {sockets} sockets: some connects will fail"
            ));
        }
    }
    common.say(format!(
        "server on {} (pid {:?}); {sockets} sockets over {processes} process(es) of at most {cap}",
        server.addr, server.pid
    ));

    let (ids, created) =
        super::create_interviews(&server, n, p.questions, common.concurrency).await?;
    common.say(format!("created {n} interviews in {created:.1?}"));
    settle(&server, 0).await;
    let rss0 = server.rss_bytes().await;
    let own_rss0 = crate::server::self_rss();

    let mut fleet = Fleet::new(processes, cap, common.worker_exe.clone()).await?;
    let hb = Duration::from_millis(p.heartbeat_ms);
    let half = n / 2;
    let indexed: Vec<(usize, &String)> = ids.iter().enumerate().collect();
    let (first, second) = indexed.split_at(half);

    let mut connect_ms = 0.0;
    let mut ok = 0usize;
    let mut failed = 0usize;
    let mut first_error = None;
    let mut step = |r: crate::fleet::ConnectReply| {
        connect_ms += r.elapsed_ms;
        ok += r.ok;
        failed += r.failed;
        if first_error.is_none() {
            first_error = r.first_error;
        }
    };

    let r = fleet
        .connect(
            server.addr,
            clients(&server, first, true, 0),
            common.concurrency,
            hb,
        )
        .await?;
    step(r);
    settle(&server, half as u64).await;
    let rss_half_cand = server.rss_bytes().await;
    common.say(format!("step 1: {half} candidates joined"));

    let r = fleet
        .connect(
            server.addr,
            clients(&server, first, false, k),
            common.concurrency,
            hb,
        )
        .await?;
    step(r);
    settle(&server, (half * (1 + k)) as u64).await;
    let rss_half = server.rss_bytes().await;
    common.say(format!("step 2: {} observers joined", half * k));

    let r = fleet
        .connect(
            server.addr,
            clients(&server, second, true, k),
            common.concurrency,
            hb,
        )
        .await?;
    step(r);
    settle(&server, sockets as u64).await;
    let rss_n = server.rss_bytes().await;
    let (server_sockets, server_sessions) = server.ws_stats().await.unwrap_or((0, 0));
    common.say(format!(
        "step 3: all {sockets} sockets; server counts {server_sockets} sockets, {server_sessions} sessions"
    ));

    let cpu0 = server.cpu_seconds();
    tokio::time::sleep(Duration::from_secs(p.hold_s)).await;
    let cpu1 = server.cpu_seconds();
    let rss_hold = server.rss_bytes().await;
    let reports = fleet.report().await?;
    let (still_open, _) = server.ws_stats().await.unwrap_or((0, 0));
    fleet.stop().await;

    // Merge what the holders measured.
    let (connect, join, heartbeat) = (Hist::default(), Hist::default(), Hist::default());
    let mut client_rss = 0u64;
    let mut held = 0usize;
    let mut max_fds = 0usize;
    for h in &reports {
        connect.merge(&h.connect.to_histogram());
        join.merge(&h.join.to_histogram());
        heartbeat.merge(&h.heartbeat.to_histogram());
        held += h.sockets;
        max_fds = max_fds.max(h.open_fds);
        for (code, count) in &h.errors {
            *report.checks.errors.entry(code.clone()).or_default() += count;
        }
        for (code, count) in &h.closes {
            *report.checks.closes.entry(code.clone()).or_default() += count;
        }
    }
    let local = matches!(reports.as_slice(), [_]) && processes == 1;
    if local {
        client_rss = reports[0].rss.saturating_sub(own_rss0.unwrap_or(0));
    } else {
        client_rss += reports.iter().map(|h: &HolderReport| h.rss).sum::<u64>();
    }

    report.value(
        "interviews created per second (HTTP)",
        n as f64 / created.as_secs_f64(),
        "/s",
    );
    report.value(
        "connects per second (connect + join)",
        ok as f64 / (connect_ms / 1000.0),
        "/s",
    );
    report.latency(
        "connect (TCP to `connected`)",
        Latency::of(&connect.snapshot()),
    );
    report.latency("join/observe to reply", Latency::of(&join.snapshot()));
    report.latency(
        "heartbeat round trip (idle)",
        Latency::of(&heartbeat.snapshot()),
    );
    report.maybe("server RSS at 0", rss0.map(mib), "MiB");
    report.maybe(
        "server RSS at N/2 candidates",
        rss_half_cand.map(mib),
        "MiB",
    );
    report.maybe("server RSS at N/2", rss_half.map(mib), "MiB");
    report.maybe("server RSS at N", rss_n.map(mib), "MiB");
    report.maybe("server RSS after hold", rss_hold.map(mib), "MiB");
    if k > 0 {
        report.maybe(
            "per idle socket (observer, N/2 step)",
            per_kib(rss_half_cand, rss_half, half * k),
            "KiB",
        );
    }
    report.maybe(
        "per idle candidate + session (0 to N/2)",
        per_kib(rss0, rss_half_cand, half),
        "KiB",
    );
    report.maybe(
        "per idle interview all-in (0 to N)",
        per_kib(rss0, rss_n, n),
        "KiB",
    );
    report.maybe(
        "per idle interview all-in (N/2 to N)",
        per_kib(rss_half, rss_n, n - half),
        "KiB",
    );
    if let (Some(a), Some(b)) = (cpu0, cpu1) {
        report.value(
            "server CPU while idle",
            (b - a) / p.hold_s.max(1) as f64 * 100.0,
            "% of a core",
        );
    }
    report.value("sockets held at the end", held as f64, "");
    report.value("server sockets at the end", still_open as f64, "");
    report.value("loadgen processes", processes as f64, "");
    report.value("loadgen open fds (max per process)", max_fds as f64, "");
    report.value(
        "loadgen memory per socket",
        client_rss as f64 / sockets as f64 / KIB,
        "KiB",
    );
    report.checks.connect_failures = failed as u64;
    report.checks.finished = failed == 0 && held == sockets;
    if let Some(e) = first_error {
        report.note(format!("first connect failure: {e}"));
    }
    report.note(format!(
        "loadgen fd limit: soft {} (was {}), hard {}; {} sockets per process at most",
        fd.soft, fd.soft_before, fd.hard, cap
    ));
    report.params = json!({"interviews": n, "observers": k, "heartbeat_ms": p.heartbeat_ms, "hold_s": p.hold_s, "questions": p.questions, "processes": processes, "concurrency": common.concurrency});
    finish_report(&mut report, Some(fd), &server);
    server.stop().await;
    Ok(report)
}
