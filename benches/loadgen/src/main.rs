//! `loadgen`: the command line over the scenarios. See docs/benchmarks.md.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use clap::{Args, Parser, Subcommand};
use loadgen::scenario::{
    self, ActiveParams, Common, DormantParams, IdleParams, SoakParams, StormParams,
};
use loadgen::{Report, ServerOpts};

#[derive(Parser)]
#[command(
    name = "loadgen",
    about = "Load generator and benchmark report for interviewd"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct CommonArgs {
    /// A running server (`http://127.0.0.1:3001`); default: start
    /// `interviewd serve` on the embedded default.
    #[arg(long, global = true)]
    url: Option<String>,
    /// The server binary to start (default: `interviewd` next to loadgen).
    #[arg(long, global = true)]
    server_bin: Option<PathBuf>,
    /// With --url: the server's pid, to read its RSS and CPU from /proc
    /// (without it RSS comes from /metrics and CPU is not reported).
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// The server's JWT_SECRET (with --url; a started server gets ours).
    #[arg(long, global = true, env = "LOADGEN_JWT_SECRET")]
    jwt_secret: Option<String>,
    /// The server's ADMIN_TOKEN, for /metrics (with --url; a started
    /// server gets ours).
    #[arg(long, global = true, env = "LOADGEN_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// Extra settings for the started server, KEY=VALUE (repeatable).
    #[arg(long = "server-env", global = true)]
    server_env: Vec<String>,
    /// Connects (and HTTP creates) in flight at once.
    #[arg(long, global = true, default_value_t = 256)]
    concurrency: usize,
    /// Processes holding idle sockets (default: as many as the fd limit needs).
    #[arg(long, global = true)]
    processes: Option<usize>,
    /// Write the report as JSON here.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Progress on stderr.
    #[arg(long, short, global = true)]
    verbose: bool,
    /// Runtime worker threads of the load generator.
    #[arg(long, global = true, default_value_t = 2)]
    threads: usize,
}

#[derive(Subcommand)]
enum Cmd {
    /// N interviews, a candidate and K observers each, heartbeats only.
    Idle {
        #[arg(long, default_value_t = 1000)]
        interviews: usize,
        #[arg(long, default_value_t = 1)]
        observers: usize,
        #[arg(long, default_value_t = 15_000)]
        heartbeat_ms: u64,
        #[arg(long, default_value_t = 20)]
        hold_s: u64,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// N interviews streaming; candidates answer, send audio, proctor events
    /// and heartbeats; K observers each.
    Active {
        #[command(flatten)]
        a: ActiveArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// The active set-up, then every client drops at once and rejoins with lastSeq.
    Storm {
        #[command(flatten)]
        a: ActiveArgs,
        /// Streaming after everyone is live again, before the checks.
        #[arg(long, default_value_t = 5)]
        after_s: u64,
        #[arg(long, default_value_t = 120)]
        timeout_s: u64,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// N interviews created and started, passivated, R re-activated.
    Dormant {
        #[arg(long, default_value_t = 10_000)]
        interviews: usize,
        #[arg(long, default_value_t = 1000)]
        reactivate: usize,
        /// Only join on the first visit, even those to be re-activated.
        #[arg(long)]
        no_start: bool,
        /// Start every interview on its first visit (default: only those
        /// to be re-activated; the others only join).
        #[arg(long)]
        start_all: bool,
        #[arg(long, default_value_t = 2000)]
        passivate_ms: u64,
        #[arg(long, default_value_t = 600)]
        timeout_s: u64,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Honest active interviews before, during and after hostile clients
    /// (oversized headers, floods, one token's many sockets, a stalled
    /// observer, invalid UTF-8, slowloris); RSS, descriptors, latency and
    /// /healthz per phase.
    Soak {
        /// The whole run: a quarter before, half hostile, a quarter after.
        #[arg(long, default_value_t = 180)]
        duration_s: u64,
        #[arg(long, default_value_t = 20)]
        interviews: usize,
        #[arg(long, default_value_t = 2)]
        observers: usize,
        /// Candidates' think time (default: scaled to the run, 3-20 s).
        #[arg(long)]
        think_ms: Option<u64>,
        #[arg(long, default_value_t = 5)]
        warmup_s: u64,
        /// The loopback address hostile clients connect from; `same`: the
        /// honest clients' own.
        #[arg(long, default_value = "127.0.0.2")]
        hostile_source: String,
        /// Sockets the one token opens.
        #[arg(long, default_value_t = 300)]
        one_token_sockets: usize,
        #[arg(long, default_value_t = 50)]
        slowloris: usize,
        #[arg(long, default_value_t = 4)]
        stalled_observers: usize,
        /// Clients of each flooding kind (huge headers, oversized frames,
        /// pings).
        #[arg(long, default_value_t = 2)]
        flooders: usize,
        /// The server's MAX_FRAME_BYTES (with --url, if not the default).
        #[arg(long, default_value_t = 65_536)]
        max_frame_bytes: usize,
        #[arg(long, default_value_t = 1000)]
        healthz_deadline_ms: u64,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// (internal) hold idle sockets for a coordinator, driven over stdin.
    #[command(hide = true)]
    Worker,
}

#[derive(Args, Clone)]
struct ActiveArgs {
    #[arg(long, default_value_t = 100)]
    interviews: usize,
    #[arg(long, default_value_t = 2)]
    observers: usize,
    #[arg(long, default_value_t = 20)]
    questions: usize,
    #[arg(long, default_value_t = 5)]
    warmup_s: u64,
    /// The measuring window (default 30 s; storm: 10 s before the storm).
    #[arg(long)]
    duration_s: Option<u64>,
    #[arg(long, default_value_t = 3000)]
    think_ms: u64,
    /// Each think time is drawn from think_ms ± spread/2 (per candidate and
    /// question), so interviews drift out of step; 0: all in lockstep.
    #[arg(long, default_value_t = 0)]
    think_spread_ms: u64,
    #[arg(long, default_value_t = 2000)]
    audio_bytes: usize,
    #[arg(long, default_value_t = 250)]
    audio_every_ms: u64,
    #[arg(long, default_value_t = 5000)]
    proctor_every_ms: u64,
    #[arg(long, default_value_t = 10_000)]
    heartbeat_ms: u64,
    /// SCRIPTED_WORD_DELAY_MS of the started server.
    #[arg(long, default_value_t = 30)]
    word_delay_ms: u64,
    /// Stream from the built-in LLM fake at this many tokens/s instead.
    #[arg(long)]
    llm_rate: Option<f64>,
    #[arg(long, default_value_t = 40)]
    llm_tokens: usize,
}

impl ActiveArgs {
    fn params(&self, default_duration: u64) -> ActiveParams {
        ActiveParams {
            interviews: self.interviews,
            observers: self.observers,
            questions: self.questions,
            warmup_s: self.warmup_s,
            duration_s: self.duration_s.unwrap_or(default_duration),
            think_ms: self.think_ms,
            think_spread_ms: self.think_spread_ms,
            audio_bytes: self.audio_bytes,
            audio_every_ms: self.audio_every_ms,
            proctor_every_ms: self.proctor_every_ms,
            heartbeat_ms: self.heartbeat_ms,
            word_delay_ms: self.word_delay_ms,
            llm_rate: self.llm_rate,
            llm_tokens: self.llm_tokens,
        }
    }
}

impl CommonArgs {
    fn common(&self) -> Result<Common> {
        let env = self
            .server_env
            .iter()
            .map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .ok_or_else(|| anyhow!("--server-env wants KEY=VALUE, got {kv}"))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Common {
            server: ServerOpts {
                url: self.url.clone(),
                bin: self.server_bin.clone(),
                pid: self.server_pid,
                secret: self.jwt_secret.clone(),
                admin_token: self.admin_token.clone(),
                env,
            },
            concurrency: self.concurrency,
            processes: self.processes,
            worker_exe: None,
            verbose: self.verbose,
        })
    }
}

fn runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // Raise the fd limit first and say what we got.
    let fd = loadgen::fdlimit::raise_nofile()?;
    let (common_args, job): (CommonArgs, Box<dyn FnOnce(Common) -> Job>) = match cli.cmd {
        Cmd::Worker => {
            return runtime(1)?.block_on(loadgen::fleet::worker_main());
        }
        Cmd::Idle {
            interviews,
            observers,
            heartbeat_ms,
            hold_s,
            common,
        } => (
            common,
            Box::new(move |c| {
                Box::pin(async move {
                    scenario::idle(
                        &c,
                        &IdleParams {
                            interviews,
                            observers,
                            heartbeat_ms,
                            hold_s,
                            ..IdleParams::default()
                        },
                    )
                    .await
                })
            }),
        ),
        Cmd::Active { a, common } => (
            common,
            Box::new(move |c| Box::pin(async move { scenario::active(&c, &a.params(30)).await })),
        ),
        Cmd::Storm {
            a,
            after_s,
            timeout_s,
            common,
        } => (
            common,
            Box::new(move |c| {
                Box::pin(async move {
                    scenario::storm(
                        &c,
                        &StormParams {
                            active: a.params(10),
                            after_s,
                            timeout_s,
                        },
                    )
                    .await
                })
            }),
        ),
        Cmd::Dormant {
            interviews,
            reactivate,
            no_start,
            start_all,
            passivate_ms,
            timeout_s,
            common,
        } => (
            common,
            Box::new(move |c| {
                Box::pin(async move {
                    scenario::dormant(
                        &c,
                        &DormantParams {
                            interviews,
                            reactivate,
                            start: !no_start,
                            start_all,
                            passivate_ms,
                            timeout_s,
                            ..DormantParams::default()
                        },
                    )
                    .await
                })
            }),
        ),
        Cmd::Soak {
            duration_s,
            interviews,
            observers,
            think_ms,
            warmup_s,
            hostile_source,
            one_token_sockets,
            slowloris,
            stalled_observers,
            flooders,
            max_frame_bytes,
            healthz_deadline_ms,
            common,
        } => {
            let mut p = SoakParams::for_duration(duration_s);
            p.honest.interviews = interviews;
            p.honest.observers = observers;
            p.honest.warmup_s = warmup_s;
            if let Some(t) = think_ms {
                p.honest.think_ms = t;
                p.honest.think_spread_ms = t / 2;
            }
            p.hostile.source = match hostile_source.as_str() {
                "same" => None,
                ip => Some(
                    ip.parse()
                        .map_err(|e| anyhow!("--hostile-source {ip}: {e}"))?,
                ),
            };
            if p.hostile.source.is_some_and(|ip| !ip.is_loopback()) {
                anyhow::bail!("--hostile-source must be a loopback address");
            }
            p.hostile.one_token_sockets = one_token_sockets;
            p.hostile.slowloris = slowloris;
            p.hostile.stalled_observers = stalled_observers;
            p.hostile.huge_header = flooders;
            p.hostile.over_max_frame = flooders;
            p.hostile.ping_flood = flooders;
            p.hostile.max_frame_bytes = max_frame_bytes;
            p.healthz_deadline_ms = healthz_deadline_ms;
            (
                common,
                Box::new(move |c| Box::pin(async move { scenario::soak(&c, &p).await })),
            )
        }
    };
    let common = common_args.common()?;
    eprintln!(
        "loadgen: RLIMIT_NOFILE soft {} (raised from {}), hard {}; at most {} sockets per process",
        fd.soft,
        fd.soft_before,
        fd.hard,
        fd.sockets_per_process()
    );
    let report: Report = runtime(common_args.threads)?.block_on(job(common))?;
    print!("{}", report.table());
    if let Some(path) = &common_args.json {
        report.write_json(path)?;
        eprintln!("loadgen: wrote {}", path.display());
    }
    if !report.checks.finished || report.checks.duplicates > 0 || report.checks.gaps > 0 {
        std::process::exit(2);
    }
    Ok(())
}

type Job = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Report>>>>;
