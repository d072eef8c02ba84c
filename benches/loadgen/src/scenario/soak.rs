//! soak: honest interviews (the active scenario's clients: candidates
//! answering with audio, proctor events, heartbeats, observers) before,
//! during and after every hostile client of [`crate::hostile`]. Each phase
//! reports the server's RSS and open descriptors, the honest clients'
//! fan-out and heartbeat latency, and whether `/healthz` answered within
//! its deadline at every probe. Nothing is asserted: a soak measures.

use std::time::Duration;

use anyhow::Result;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::{sleep, sleep_until, timeout, Instant};

use super::active::{self, ActiveParams};
use super::{create_interviews, mib, Common};
use crate::hostile::{self, Hostile, HostileParams, KindReport, Target};
use crate::report::Report;
use crate::server::Server;
use crate::stats::{Latency, RunStats};

#[derive(Debug, Clone, Serialize)]
pub struct SoakParams {
    /// The honest interviews (the active scenario's clients).
    pub honest: ActiveParams,
    pub before_s: u64,
    pub hostile_s: u64,
    pub after_s: u64,
    /// RSS, descriptors, sockets and `/healthz` this often.
    pub sample_ms: u64,
    /// A `/healthz` slower than this counts as not answered in time.
    pub healthz_deadline_ms: u64,
    pub hostile: HostileParams,
}

impl SoakParams {
    /// `duration_s` in all: a quarter before, half with the hostile
    /// clients, a quarter after. Candidates think long enough that their
    /// 50-question interviews outlast the run.
    pub fn for_duration(duration_s: u64) -> SoakParams {
        let think_ms = (duration_s * 1000 / 40).clamp(3000, 20_000);
        let quarter = (duration_s / 4).max(1);
        SoakParams {
            honest: ActiveParams {
                interviews: 20,
                observers: 2,
                questions: 50,
                warmup_s: 5,
                duration_s: 0,
                think_ms,
                think_spread_ms: think_ms / 2,
                ..ActiveParams::default()
            },
            before_s: quarter,
            hostile_s: duration_s.saturating_sub(2 * quarter).max(1),
            after_s: quarter,
            sample_ms: 1000,
            healthz_deadline_ms: 1000,
            hostile: HostileParams {
                stalled_observers: 4,
                ..HostileParams::default()
            },
        }
    }
}

impl Default for SoakParams {
    fn default() -> Self {
        SoakParams::for_duration(180)
    }
}

/// One probe of the server.
#[derive(Debug, Clone, Serialize)]
struct Sample {
    t_s: f64,
    phase: &'static str,
    rss_mib: Option<f64>,
    fds: Option<u64>,
    sockets: Option<u64>,
    /// `None`: no 200 within the deadline.
    healthz_ms: Option<f64>,
}

/// Probes the server every `every` until the phase is `done`.
async fn sample(
    server: Server,
    mut phase: watch::Receiver<&'static str>,
    every: Duration,
    deadline: Duration,
) -> Vec<Sample> {
    let t0 = Instant::now();
    let mut out = Vec::new();
    loop {
        let now = *phase.borrow_and_update();
        if now == "done" {
            return out;
        }
        let tick = Instant::now();
        let healthz = server.healthz(deadline).await;
        let sockets = timeout(deadline, server.ws_stats())
            .await
            .ok()
            .and_then(|r| r.ok())
            .map(|(connected, _)| connected);
        out.push(Sample {
            t_s: tick.duration_since(t0).as_secs_f64(),
            phase: now,
            rss_mib: server.rss_bytes().await.map(mib),
            fds: server.fd_count(),
            sockets,
            healthz_ms: healthz.map(|d| d.as_secs_f64() * 1000.0),
        });
        tokio::select! {
            _ = sleep_until(tick + every) => {}
            _ = phase.changed() => {}
        }
    }
}

/// One phase, as the honest clients and the probes saw it.
#[derive(Debug, Clone, Serialize)]
struct Phase {
    phase: &'static str,
    seconds: f64,
    fanout: Latency,
    heartbeat: Latency,
    token_relay: Latency,
    honest_frames_per_s: f64,
    rss_mib_end: Option<f64>,
    rss_mib_max: Option<f64>,
    fds_end: Option<u64>,
    fds_max: Option<u64>,
    sockets_max: Option<u64>,
    healthz: Latency,
    healthz_probes: usize,
    healthz_late: usize,
}

/// Takes what the honest clients recorded since the last phase.
struct PhaseClock {
    started: Instant,
    frames: u64,
}

impl PhaseClock {
    fn start(stats: &RunStats) -> PhaseClock {
        PhaseClock {
            started: Instant::now(),
            frames: RunStats::get(&stats.frames_in),
        }
    }

    fn end(self, phase: &'static str, stats: &RunStats) -> Phase {
        let seconds = self.started.elapsed().as_secs_f64();
        let frames = RunStats::get(&stats.frames_in) - self.frames;
        Phase {
            phase,
            seconds,
            fanout: Latency::of(&stats.fanout.take()),
            heartbeat: Latency::of(&stats.heartbeat.take()),
            token_relay: Latency::of(&stats.token_ts.take()),
            honest_frames_per_s: frames as f64 / seconds.max(1e-9),
            rss_mib_end: None,
            rss_mib_max: None,
            fds_end: None,
            fds_max: None,
            sockets_max: None,
            healthz: Latency::default(),
            healthz_probes: 0,
            healthz_late: 0,
        }
    }
}

/// Adds the probes of its phase to each phase.
fn with_samples(phases: &mut [Phase], samples: &[Sample]) {
    for p in phases {
        let mine: Vec<&Sample> = samples.iter().filter(|s| s.phase == p.phase).collect();
        let max_f = |v: Vec<f64>| {
            v.into_iter()
                .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
        };
        p.rss_mib_end = mine.iter().rev().find_map(|s| s.rss_mib);
        p.rss_mib_max = max_f(mine.iter().filter_map(|s| s.rss_mib).collect());
        p.fds_end = mine.iter().rev().find_map(|s| s.fds);
        p.fds_max = mine.iter().filter_map(|s| s.fds).max();
        p.sockets_max = mine.iter().filter_map(|s| s.sockets).max();
        let mut h = Histogram::<u64>::new(3).expect("3 significant digits is a valid histogram");
        for ms in mine.iter().filter_map(|s| s.healthz_ms) {
            let _ = h.record((ms * 1000.0) as u64);
        }
        p.healthz = Latency::of(&h);
        p.healthz_probes = mine.len();
        p.healthz_late = mine.iter().filter(|s| s.healthz_ms.is_none()).count();
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

fn phase_table(phases: &[Phase]) -> String {
    let mut out = format!(
        "{:<8} {:>6}  {:>17}  {:>11}  {:>7}  {:>19}  {:>19}  {:>17}  {:>9}\n",
        "phase",
        "secs",
        "RSS MiB end/max",
        "fds end/max",
        "sockets",
        "fan-out p50/p99 ms",
        "heartbeat p50/p99",
        "/healthz p50/max",
        "late/n"
    );
    for p in phases {
        out.push_str(&format!(
            "{:<8} {:>6.0}  {:>17}  {:>11}  {:>7}  {:>19}  {:>19}  {:>17}  {:>9}\n",
            p.phase,
            p.seconds,
            format!(
                "{} / {}",
                opt(p.rss_mib_end.map(|v| format!("{v:.1}"))),
                opt(p.rss_mib_max.map(|v| format!("{v:.1}")))
            ),
            format!("{} / {}", opt(p.fds_end), opt(p.fds_max)),
            opt(p.sockets_max),
            format!("{:.1} / {:.1}", p.fanout.p50_ms, p.fanout.p99_ms),
            format!("{:.1} / {:.1}", p.heartbeat.p50_ms, p.heartbeat.p99_ms),
            format!("{:.1} / {:.1}", p.healthz.p50_ms, p.healthz.max_ms),
            format!("{}/{}", p.healthz_late, p.healthz_probes),
        ));
    }
    out
}

fn hostile_table(kinds: &[KindReport]) -> String {
    let mut out = format!(
        "{:<18} {:>7} {:>6} {:>8} {:>9} {:>10} {:>15}  outcomes\n",
        "hostile client", "clients", "conns", "frames", "MiB sent", "max KiB", "refused p50/max"
    );
    for k in kinds {
        let outcomes: Vec<String> = k
            .outcomes
            .iter()
            .map(|(o, n)| format!("{o}: {n}"))
            .collect();
        out.push_str(&format!(
            "{:<18} {:>7} {:>6} {:>8} {:>9.1} {:>10.0} {:>15}  {}\n",
            k.kind,
            k.clients,
            k.connections,
            k.frames,
            k.mib_sent,
            k.max_accepted_kib,
            if k.refused_after.count > 0 {
                format!(
                    "{:.0} / {:.0} ms",
                    k.refused_after.p50_ms, k.refused_after.max_ms
                )
            } else {
                "-".into()
            },
            outcomes.join(", ")
        ));
    }
    out
}

pub async fn soak(common: &Common, p: &SoakParams) -> Result<Report> {
    let h = &p.honest;
    let mut report = Report::new(
        "soak",
        format!(
            "{} honest interviews (1 candidate + {} observers each, think {} ms ± {} ms), {} s before, {} s with hostile clients, {} s after",
            h.interviews, h.observers, h.think_ms, h.think_spread_ms / 2, p.before_s, p.hostile_s, p.after_s
        ),
        serde_json::to_value(p)?,
    );
    // The server's own per-client caps, not the load generator's raised
    // ones: the hostile clients are meant to meet them.
    let caps = [
        ("MAX_SOCKETS_PER_TOKEN", "5".to_string()),
        ("MAX_SOCKETS_PER_ADDRESS", "200".to_string()),
    ];
    let run = active::start(common, h, &mut report, &caps).await?;
    let (own, _) = create_interviews(
        &run.server,
        hostile::interviews_needed(&p.hostile),
        3,
        common.concurrency,
    )
    .await?;
    sleep(Duration::from_secs(h.warmup_s)).await;
    let stats = run.ctx.stats.clone();
    stats
        .measuring
        .store(true, std::sync::atomic::Ordering::Relaxed);
    for hist in [&stats.fanout, &stats.heartbeat, &stats.token_ts] {
        hist.take();
    }
    let (phase, phase_rx) = watch::channel("before");
    let sampler = tokio::spawn(sample(
        run.server.sampler(),
        phase_rx,
        Duration::from_millis(p.sample_ms.max(100)),
        Duration::from_millis(p.healthz_deadline_ms.max(1)),
    ));
    let mut phases = Vec::new();

    common.say("soak: before");
    let clock = PhaseClock::start(&stats);
    sleep(Duration::from_secs(p.before_s)).await;
    phases.push(clock.end("before", &stats));

    common.say("soak: hostile clients");
    let _ = phase.send("hostile");
    let clock = PhaseClock::start(&stats);
    let target = Target {
        addr: run.server.addr,
        source: p.hostile.source,
        tokens: run.server.tokens.clone(),
        until: Instant::now() + Duration::from_secs(p.hostile_s),
    };
    let hostile = Hostile::start(target, &p.hostile, &own, &run.ids);
    let kinds = hostile.finish(Duration::from_secs(p.hostile_s + 30)).await;
    phases.push(clock.end("hostile", &stats));

    common.say("soak: after");
    let _ = phase.send("after");
    let clock = PhaseClock::start(&stats);
    sleep(Duration::from_secs(p.after_s)).await;
    phases.push(clock.end("after", &stats));
    let _ = phase.send("done");
    let samples = sampler.await.unwrap_or_default();
    with_samples(&mut phases, &samples);

    for ph in &phases {
        report.latency(
            &format!("{}: fan-out: session ts to observer", ph.phase),
            ph.fanout,
        );
        report.latency(&format!("{}: heartbeat round trip", ph.phase), ph.heartbeat);
        report.latency(&format!("{}: /healthz", ph.phase), ph.healthz);
        report.maybe(
            &format!("{}: server RSS at the end", ph.phase),
            ph.rss_mib_end,
            "MiB",
        );
        report.maybe(
            &format!("{}: server open descriptors at the end", ph.phase),
            ph.fds_end.map(|v| v as f64),
            "",
        );
        report.value(
            &format!("{}: /healthz late or failed", ph.phase),
            ph.healthz_late as f64,
            "",
        );
        if ph.healthz_late > 0 {
            report.note(format!(
                "{}: {} of {} /healthz probes got no 200 within {} ms",
                ph.phase, ph.healthz_late, ph.healthz_probes, p.healthz_deadline_ms
            ));
        }
    }
    report.sections.push(phase_table(&phases));
    report.sections.push(hostile_table(&kinds));
    report.note("hostile `max KiB`: huge-header, the most one connection's writes got through behind its header before the refusal (the two kernels' socket buffers included); stalled-observer, what it found to read when it looked at the end. `refused`: attack start to the server's Close or end of the connection");
    report.details = serde_json::json!({
        "phases": phases,
        "hostile": kinds,
        "samples": samples,
    });
    if run.server.pid.is_none() {
        report.note("no --server-pid: RSS from the server's /metrics gauge, descriptors not read");
    }
    report.note("hostile clients connect from their own loopback address (params.hostile.source), so a per-address limit sees them apart from the honest clients");
    report.note("fan-out latency uses the server's `ts` (millisecond resolution, truncated): each sample reads 0-1 ms high");
    active::finish(run, &mut report).await?;
    Ok(report)
}
