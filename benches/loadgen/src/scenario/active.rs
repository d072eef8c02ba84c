//! active: N interviews streaming, a candidate and K observers each.
//! storm: the same, then every client drops at once and rejoins with
//! `lastSeq`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::Serialize;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinHandle;

use super::{finish_report, mib, Common};
use crate::fdlimit::{self, FdLimit};
use crate::llm_fake::{FakeSettings, LlmFake};
use crate::participant::{
    self, candidate_gaps, Behaviour, ClientSpec, Control, Ctx, Outcome, Role, StormStats,
};
use crate::report::Report;
use crate::server::{self_cpu_seconds, sum_metric, Server};
use crate::stats::RunStats;

#[derive(Debug, Clone, Serialize)]
pub struct ActiveParams {
    pub interviews: usize,
    pub observers: usize,
    pub questions: usize,
    /// Before measuring.
    pub warmup_s: u64,
    /// The measuring window.
    pub duration_s: u64,
    pub think_ms: u64,
    /// Think times spread over think_ms ± think_spread_ms / 2.
    pub think_spread_ms: u64,
    pub audio_bytes: usize,
    pub audio_every_ms: u64,
    /// 0: no proctor events.
    pub proctor_every_ms: u64,
    pub heartbeat_ms: u64,
    /// The scripted interviewer's pause between words.
    pub word_delay_ms: u64,
    /// Stream from the LLM fake at this many tokens per second instead of
    /// the scripted interviewer.
    pub llm_rate: Option<f64>,
    pub llm_tokens: usize,
}

impl Default for ActiveParams {
    fn default() -> Self {
        ActiveParams {
            interviews: 100,
            observers: 2,
            questions: 20,
            warmup_s: 5,
            duration_s: 30,
            think_ms: 3000,
            think_spread_ms: 0,
            audio_bytes: 2000,
            audio_every_ms: 250,
            proctor_every_ms: 5000,
            heartbeat_ms: 10_000,
            word_delay_ms: 30,
            llm_rate: None,
            llm_tokens: 40,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StormParams {
    #[serde(flatten)]
    pub active: ActiveParams,
    /// Streaming after everyone is live again, before the final checks.
    pub after_s: u64,
    /// Give up waiting for everyone to be live again after this.
    pub timeout_s: u64,
}

impl Default for StormParams {
    fn default() -> Self {
        StormParams {
            active: ActiveParams {
                duration_s: 10,
                ..ActiveParams::default()
            },
            after_s: 5,
            timeout_s: 120,
        }
    }
}

/// A running active set-up.
pub(super) struct Running {
    pub(super) server: Server,
    _fake: Option<LlmFake>,
    pub(super) ctx: Arc<Ctx>,
    control: watch::Sender<Control>,
    tasks: Vec<JoinHandle<Outcome>>,
    exited: Arc<AtomicUsize>,
    clients: usize,
    fd: FdLimit,
    /// The interviews, in order.
    pub(super) ids: Vec<String>,
}

pub(super) async fn start(
    common: &Common,
    p: &ActiveParams,
    report: &mut Report,
    server_env: &[(&'static str, String)],
) -> Result<Running> {
    let fd = fdlimit::raise_nofile()?;
    let clients = p.interviews * (1 + p.observers);
    if clients as u64 > fd.sockets_per_process() {
        bail!(
            "{clients} sockets exceed this process's {} (fd limit {}); active and storm run in one process",
            fd.sockets_per_process(),
            fd.soft
        );
    }
    let fake = match p.llm_rate {
        Some(rate) => {
            if common.server.url.is_some() {
                bail!("--llm-rate needs a server the load generator starts (it points LLM_BASE_URL at its fake)");
            }
            Some(
                LlmFake::start(FakeSettings {
                    rate,
                    tokens: p.llm_tokens,
                })
                .await?,
            )
        }
        None => None,
    };
    let mut env = vec![
        ("SCRIPTED_WORD_DELAY_MS", p.word_delay_ms.to_string()),
        ("HEARTBEAT_INTERVAL_MS", "30000".to_string()),
        ("SESSION_IDLE_PASSIVATE_MS", "3600000".to_string()),
    ];
    env.extend(server_env.iter().cloned());
    if let Some(f) = &fake {
        env.push(("LLM_BASE_URL", f.base_url()));
        env.push(("LLM_MODEL", "fake".to_string()));
        env.push(("LLM_TIMEOUT_MS", "60000".to_string()));
    }
    let server = Server::start(&common.server, &env).await?;
    common.say(format!("server on {} (pid {:?})", server.addr, server.pid));
    let (ids, created) =
        super::create_interviews(&server, p.interviews, p.questions, common.concurrency).await?;
    report.value(
        "interviews created per second (HTTP)",
        p.interviews as f64 / created.as_secs_f64(),
        "/s",
    );
    let ctx = Arc::new(Ctx {
        addr: server.addr,
        stats: Arc::new(RunStats::default()),
        storm: Arc::new(StormStats::default()),
        behaviour: Behaviour {
            think: Duration::from_millis(p.think_ms),
            think_spread: Duration::from_millis(p.think_spread_ms.min(2 * p.think_ms)),
            audio_bytes: p.audio_bytes,
            audio_every: Duration::from_millis(p.audio_every_ms.max(1)),
            proctor_every: (p.proctor_every_ms > 0)
                .then(|| Duration::from_millis(p.proctor_every_ms)),
            heartbeat_every: Duration::from_millis(p.heartbeat_ms.max(100)),
            llm_fake: fake.is_some(),
        },
        gate: Arc::new(Semaphore::new(common.concurrency.max(1))),
        joined: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        joined_notify: Notify::new(),
        unexpected_reconnects: AtomicU64::new(0),
    });
    let (control, rx) = watch::channel(Control::Run);
    let exited = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(clients);
    let connect_started = Instant::now();
    for (i, id) in ids.iter().enumerate() {
        // Observers first, so they follow the interview from its start.
        let mut specs: Vec<ClientSpec> = (0..p.observers)
            .map(|k| ClientSpec {
                interview: i,
                interview_id: id.clone(),
                role: Role::Observer(k),
                token: server.tokens.recruiter(k),
                keep_entries: k == 0,
            })
            .collect();
        specs.push(ClientSpec {
            interview: i,
            interview_id: id.clone(),
            role: Role::Candidate,
            token: server.tokens.candidate(id),
            keep_entries: true,
        });
        for spec in specs {
            let (ctx, rx, exited) = (ctx.clone(), rx.clone(), exited.clone());
            tasks.push(tokio::spawn(async move {
                let out = participant::run(ctx, spec, rx).await;
                exited.fetch_add(1, Ordering::Relaxed);
                out
            }));
        }
    }
    // Every client has its first reply (or gave up).
    let deadline = Instant::now() + Duration::from_secs(120 + clients as u64 / 50);
    loop {
        let notified = ctx.joined_notify.notified();
        let done = ctx.joined.load(Ordering::Relaxed) + ctx.failed.load(Ordering::Relaxed);
        if done >= clients || Instant::now() > deadline {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
    }
    let connect_time = connect_started.elapsed();
    let joined = ctx.joined.load(Ordering::Relaxed);
    report.value(
        "connects per second (connect + join)",
        joined as f64 / connect_time.as_secs_f64(),
        "/s",
    );
    common.say(format!(
        "{joined} of {clients} clients joined in {connect_time:.1?}"
    ));
    Ok(Running {
        server,
        _fake: fake,
        ctx,
        control,
        tasks,
        exited,
        clients,
        fd,
        ids,
    })
}

/// Measures one window: delivered frames, server CPU, latencies.
async fn window(run: &Running, secs: u64, report: &mut Report) {
    let stats = &run.ctx.stats;
    stats.frames_in_window.store(0, Ordering::Relaxed);
    let out0 = RunStats::get(&stats.frames_out);
    let (cpu0, own0) = (run.server.cpu_seconds(), self_cpu_seconds());
    let db0 = DbCounters::read(&run.server).await;
    let t0 = Instant::now();
    stats.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stats.measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let (cpu1, own1) = (run.server.cpu_seconds(), self_cpu_seconds());
    let db1 = DbCounters::read(&run.server).await;
    let frames = RunStats::get(&stats.frames_in_window);
    let sent = RunStats::get(&stats.frames_out) - out0;
    report.latency("connect (TCP to `connected`)", stats.connect.latency());
    report.latency("join/observe to reply", stats.join.latency());
    report.latency("fan-out: session ts to observer", stats.fanout.latency());
    report.latency(
        "token relay: ai-token ts to receipt",
        stats.token_ts.latency(),
    );
    if run.ctx.behaviour.llm_fake {
        report.latency(
            "token relay: LLM fake write to receipt",
            stats.token_src.latency(),
        );
    }
    report.latency("heartbeat round trip", stats.heartbeat.latency());
    report.value("delivered frames per second", frames as f64 / elapsed, "/s");
    report.value("client frames sent per second", sent as f64 / elapsed, "/s");
    if let (Some(a), Some(b)) = (cpu0, cpu1) {
        if frames > 0 {
            report.value(
                "server CPU seconds per 100k delivered frames",
                (b - a) / frames as f64 * 100_000.0,
                "s",
            );
        }
        report.value("server CPU", (b - a) / elapsed * 100.0, "% of a core");
    }
    if let (Some(a), Some(b)) = (own0, own1) {
        report.value("loadgen CPU", (b - a) / elapsed * 100.0, "% of a core");
    }
    report.maybe("server RSS", run.server.rss_bytes().await.map(mib), "MiB");
    if let (Some(a), Some(b)) = (db0, db1) {
        let commits = b.commits - a.commits;
        if commits > 0.0 {
            report.value("server: commits per second", commits / elapsed, "/s");
            report.value(
                "server: mean commit time",
                (b.commit_seconds - a.commit_seconds) / commits * 1000.0,
                "ms",
            );
            report.value(
                "server: commits over 10 ms",
                (b.slow_commits - a.slow_commits) / commits * 100.0,
                "%",
            );
            report.value(
                "server: events per commit",
                (b.events - a.events) / (b.batches - a.batches).max(1.0),
                "",
            );
        }
    }
}

/// The server's group-commit counters (from /metrics).
#[derive(Clone, Copy)]
struct DbCounters {
    commits: f64,
    commit_seconds: f64,
    /// Commits that took longer than 10 ms.
    slow_commits: f64,
    batches: f64,
    events: f64,
}

impl DbCounters {
    async fn read(server: &Server) -> Option<DbCounters> {
        let text = server.metrics_text().await.ok()?;
        let m = |name: &str, label: Option<&str>| sum_metric(&text, name, label);
        let commits = m("interviewd_db_commit_seconds_count", None)?;
        let fast = m("interviewd_db_commit_seconds_bucket", Some("le=\"0.01\"")).unwrap_or(commits);
        Some(DbCounters {
            commits,
            commit_seconds: m("interviewd_db_commit_seconds_sum", None).unwrap_or(0.0),
            slow_commits: commits - fast,
            batches: m("interviewd_db_batch_events_count", None).unwrap_or(0.0),
            events: m("interviewd_db_batch_events_sum", None).unwrap_or(0.0),
        })
    }
}

/// Stops every client and checks every seq it saw.
pub(super) async fn finish(run: Running, report: &mut Report) -> Result<()> {
    let _ = run.control.send(Control::Stop);
    let mut outcomes = Vec::with_capacity(run.clients);
    for t in run.tasks {
        if let Ok(Ok(o)) = tokio::time::timeout(Duration::from_secs(30), t).await {
            outcomes.push(o);
        }
    }
    let stats = &run.ctx.stats;
    let mut dups = 0;
    let mut gaps = 0;
    let mut errors = Vec::new();
    let mut observer0: Vec<Option<&participant::SeqLog>> = vec![None; run.clients];
    for o in &outcomes {
        dups += o.log.duplicates;
        gaps += o.log.gaps;
        if o.role == Role::Observer(0) && o.interview < observer0.len() {
            observer0[o.interview] = Some(&o.log);
        }
        if let Some(e) = &o.error {
            errors.push(e.clone());
        }
    }
    let mut unchecked = 0;
    for o in outcomes.iter().filter(|o| o.role == Role::Candidate) {
        match observer0.get(o.interview).copied().flatten() {
            Some(obs) => gaps += candidate_gaps(&o.log, obs),
            None => unchecked += 1,
        }
    }
    if unchecked > 0 {
        report.note(format!(
            "{unchecked} candidates had no observer to check their gaps against"
        ));
    }
    let events: u64 = outcomes.iter().map(|o| o.log.last - o.log.first_head).sum();
    report.value("answers sent", RunStats::get(&stats.answers) as f64, "");
    report.value(
        "audio chunks sent",
        RunStats::get(&stats.audio_out) as f64,
        "",
    );
    report.value(
        "proctor events sent",
        RunStats::get(&stats.proctor) as f64,
        "",
    );
    report.value(
        "interviews completed (seen by clients)",
        RunStats::get(&stats.completed) as f64,
        "",
    );
    report.value(
        "unexpected reconnects",
        run.ctx.unexpected_reconnects.load(Ordering::Relaxed) as f64,
        "",
    );
    report.value("session events followed (all clients)", events as f64, "");
    report.checks.duplicates = dups;
    report.checks.gaps = gaps;
    report.checks.connect_failures = RunStats::get(&stats.connect_failures);
    report.checks.errors = stats.errors.get();
    report.checks.closes = stats.closes.get();
    report.checks.finished = outcomes.len() == run.clients && errors.is_empty();
    if outcomes.len() < run.clients {
        report.note(format!(
            "{} clients did not stop within 30 s",
            run.clients - outcomes.len()
        ));
    }
    if let Some(e) = errors.first() {
        report.note(format!(
            "{} clients ended with an error; first: {e}",
            errors.len()
        ));
    }
    finish_report(report, Some(run.fd), &run.server);
    run.server.stop().await;
    Ok(())
}

fn describe(p: &ActiveParams) -> String {
    let source = match p.llm_rate {
        Some(r) => format!(
            "LLM fake at {r} tokens/s, {} tokens a message",
            p.llm_tokens
        ),
        None => format!("scripted interviewer, {} ms between words", p.word_delay_ms),
    };
    format!(
        "{} interviews, 1 candidate + {} observers each ({} sockets); {source}; think {} ms ± {} ms, {} B audio every {} ms, proctor every {} ms, heartbeat every {} ms",
        p.interviews,
        p.observers,
        p.interviews * (1 + p.observers),
        p.think_ms,
        p.think_spread_ms / 2,
        p.audio_bytes,
        p.audio_every_ms,
        p.proctor_every_ms,
        p.heartbeat_ms
    )
}

pub async fn active(common: &Common, p: &ActiveParams) -> Result<Report> {
    let mut report = Report::new(
        "active",
        format!(
            "{}; warm-up {} s, measured {} s",
            describe(p),
            p.warmup_s,
            p.duration_s
        ),
        serde_json::to_value(p)?,
    );
    let run = start(common, p, &mut report, &[]).await?;
    tokio::time::sleep(Duration::from_secs(p.warmup_s)).await;
    common.say("measuring");
    window(&run, p.duration_s, &mut report).await;
    finish(run, &mut report).await?;
    report.note("fan-out and ts-based token latencies use the server's `ts`, which has millisecond resolution (truncated): each sample reads 0-1 ms high");
    Ok(report)
}

pub async fn storm(common: &Common, sp: &StormParams) -> Result<Report> {
    let p = &sp.active;
    let mut report = Report::new(
        "storm",
        format!(
            "{}; warm-up {} s, measured {} s, then every client drops at once and rejoins with lastSeq",
            describe(p),
            p.warmup_s,
            p.duration_s
        ),
        serde_json::to_value(sp)?,
    );
    let run = start(common, p, &mut report, &[]).await?;
    tokio::time::sleep(Duration::from_secs(p.warmup_s)).await;
    window(&run, p.duration_s, &mut report).await;

    // The storm.
    let storm = run.ctx.storm.clone();
    let exited_before = run.exited.load(Ordering::Relaxed);
    let expected = run.ctx.joined.load(Ordering::Relaxed)
        - exited_before.min(run.ctx.joined.load(Ordering::Relaxed));
    common.say(format!("storm: {expected} clients drop"));
    let dropped_at = Instant::now();
    *storm.dropped_at.lock().unwrap() = Some(dropped_at.into());
    let _ = run.control.send(Control::Drop(1));
    let deadline = dropped_at + Duration::from_secs(sp.timeout_s);
    let mut all_live = false;
    loop {
        let notified = storm.notify.notified();
        let gone = run.exited.load(Ordering::Relaxed) - exited_before;
        if storm.live_again.load(Ordering::Relaxed) + gone >= expected {
            all_live = true;
            break;
        }
        if Instant::now() > deadline {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
    }
    let at = |m: &std::sync::Mutex<Option<tokio::time::Instant>>| {
        m.lock().unwrap().map(|t| {
            t.into_std()
                .saturating_duration_since(dropped_at)
                .as_secs_f64()
        })
    };
    report.value("storm: clients dropped", expected as f64, "");
    report.maybe("storm: time until every reply", at(&storm.last_reply), "s");
    report.maybe(
        "storm: time until all live again",
        at(&storm.last_live),
        "s",
    );
    report.latency("storm: drop to rejoin reply", storm.reply.latency());
    report.latency("storm: drop to live (replay done)", storm.live.latency());
    report.value(
        "storm: clients live again",
        storm.live_again.load(Ordering::Relaxed) as f64,
        "",
    );
    report.value(
        "storm: events replayed",
        storm.replayed.load(Ordering::Relaxed) as f64,
        "",
    );
    report.value(
        "storm: replies with recovered=false",
        storm.not_recovered.load(Ordering::Relaxed) as f64,
        "",
    );
    report.value(
        "storm: failed reconnect attempts",
        storm.reconnect_failures.load(Ordering::Relaxed) as f64,
        "",
    );
    if !all_live {
        report.note(format!(
            "not every client was live again within {} s",
            sp.timeout_s
        ));
    }
    common.say("storm over; streaming on");
    tokio::time::sleep(Duration::from_secs(sp.after_s)).await;
    finish(run, &mut report).await?;
    report.checks.finished &= all_live;
    report.note("duplicates and gaps are counted over the whole run, storm included: observers must see every seq once; candidates every seq an observer saw that candidates may see");
    Ok(report)
}
