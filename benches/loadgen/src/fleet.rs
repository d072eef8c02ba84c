//! Idle sockets, held by this process or spread over worker processes.
//!
//! One process may hold at most its RLIMIT_NOFILE soft limit minus a
//! reserve of sockets (`FdLimit::sockets_per_process`). When a run needs
//! more, the coordinator starts `loadgen worker` children (this same
//! executable), each holding a share, and drives them over stdin/stdout with
//! one JSON object per line: `connect` a batch, `report`, `stop`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use futures_util::future::join_all;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::{interval_at, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use crate::stats::{RunStats, WireHist};
use crate::ws::{self, close_code, parse};

/// One idle socket to open.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleClient {
    pub interview_id: String,
    pub observer: bool,
    pub token: String,
    /// Spreads heartbeats over the period.
    pub index: usize,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Cmd {
    Connect {
        addr: SocketAddr,
        clients: Vec<IdleClient>,
        concurrency: usize,
        heartbeat_ms: u64,
    },
    Report,
    Stop,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ConnectReply {
    pub ok: usize,
    pub failed: usize,
    pub elapsed_ms: f64,
    pub first_error: Option<String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct HolderReport {
    pub sockets: usize,
    pub frames_in: u64,
    pub frames_out: u64,
    pub connect: WireHist,
    pub join: WireHist,
    pub heartbeat: WireHist,
    pub errors: BTreeMap<String, u64>,
    pub closes: BTreeMap<String, u64>,
    pub rss: u64,
    pub cpu_seconds: f64,
    pub open_fds: usize,
}

/// Holds idle sockets in this process.
pub struct Holder {
    stats: Arc<RunStats>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    alive: Arc<AtomicUsize>,
}

impl Default for Holder {
    fn default() -> Self {
        Holder {
            stats: Arc::default(),
            stop: watch::channel(false).0,
            tasks: Vec::new(),
            alive: Arc::default(),
        }
    }
}

impl Holder {
    /// Opens and joins every client (at most `concurrency` at once), and
    /// returns when each has its reply or has failed.
    pub async fn connect(
        &mut self,
        addr: SocketAddr,
        clients: Vec<IdleClient>,
        concurrency: usize,
        heartbeat: Duration,
    ) -> ConnectReply {
        let started = Instant::now();
        let gate = Arc::new(Semaphore::new(concurrency.max(1)));
        let (tx, mut rx) = mpsc::channel::<Result<(), String>>(1024);
        let n = clients.len();
        for c in clients {
            let (gate, tx, stats, alive) = (
                gate.clone(),
                tx.clone(),
                self.stats.clone(),
                self.alive.clone(),
            );
            let stop = self.stop.subscribe();
            self.tasks.push(tokio::spawn(async move {
                let permit = gate.acquire_owned().await.expect("gate open");
                let opened = open_idle(addr, &c, &stats).await;
                drop(permit);
                match opened {
                    Ok(ws) => {
                        let _ = tx.send(Ok(())).await;
                        drop(tx);
                        alive.fetch_add(1, Ordering::Relaxed);
                        hold(ws, &c, heartbeat, &stats, stop).await;
                        alive.fetch_sub(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        RunStats::inc(&stats.connect_failures);
                        let _ = tx.send(Err(format!("{e:#}"))).await;
                    }
                }
            }));
        }
        drop(tx);
        let mut reply = ConnectReply::default();
        for _ in 0..n {
            match rx.recv().await {
                Some(Ok(())) => reply.ok += 1,
                Some(Err(e)) => {
                    reply.failed += 1;
                    reply.first_error.get_or_insert(e);
                }
                None => break,
            }
        }
        reply.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        reply
    }

    pub fn report(&self) -> HolderReport {
        let s = &self.stats;
        HolderReport {
            sockets: self.alive.load(Ordering::Relaxed),
            frames_in: RunStats::get(&s.frames_in),
            frames_out: RunStats::get(&s.frames_out),
            connect: s.connect.to_wire(),
            join: s.join.to_wire(),
            heartbeat: s.heartbeat.to_wire(),
            errors: s.errors.get(),
            closes: s.closes.get(),
            rss: crate::server::self_rss().unwrap_or(0),
            cpu_seconds: crate::server::self_cpu_seconds().unwrap_or(0.0),
            open_fds: crate::fdlimit::open_fds(),
        }
    }

    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

async fn open_idle(addr: SocketAddr, c: &IdleClient, stats: &RunStats) -> Result<ws::Ws> {
    let (mut ws, took) = ws::connect(addr, &c.token).await?;
    stats.connect.record(took);
    let (kind, want) = if c.observer {
        ("observe-interview", "observation-started")
    } else {
        ("join-interview", "interview-ready")
    };
    let sent = Instant::now();
    ws::send(&mut ws, kind, json!({"interviewId": c.interview_id})).await?;
    RunStats::inc(&stats.frames_out);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => bail!("no {want} within 60 s"),
            Ok(Some(Ok(Message::Text(t)))) => {
                RunStats::inc(&stats.frames_in);
                let Some(f) = parse(&t) else { continue };
                if f.kind == want {
                    stats.join.record(sent.elapsed());
                    return Ok(ws);
                }
                if f.kind == "error" {
                    bail!("{kind} refused: {t}");
                }
            }
            Ok(Some(Ok(Message::Close(c)))) => bail!("closed during {kind}: {c:?}"),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => bail!("closed during {kind}"),
        }
    }
}

/// Heartbeats every `period` (spread by the client's index) and reads
/// whatever comes (answering the server's pings) until told to stop.
async fn hold(
    mut ws: ws::Ws,
    c: &IdleClient,
    period: Duration,
    stats: &RunStats,
    mut stop: watch::Receiver<bool>,
) {
    let offset_ms = (c.index as u64).wrapping_mul(7919) % period.as_millis().max(1) as u64;
    let mut beat = interval_at(
        tokio::time::Instant::now() + Duration::from_millis(offset_ms),
        period,
    );
    beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut sent: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = stop.changed() => {
                let _ = tokio::time::timeout(Duration::from_secs(5), ws.close(None)).await;
                return;
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    RunStats::inc(&stats.frames_in);
                    if let Some(f) = parse(&t) {
                        match &*f.kind {
                            "heartbeat-ack" => {
                                if let Some(s) = sent.take() {
                                    stats.heartbeat.record(s.elapsed());
                                }
                            }
                            "error" => stats.errors.add(
                                f.data.and_then(|d| d.code).unwrap_or_default().to_string(),
                            ),
                            _ => {}
                        }
                    }
                }
                Some(Ok(Message::Close(cf))) => {
                    stats.closes.add(close_code(&cf).to_string());
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    stats.closes.add("eof");
                    return;
                }
            },
            _ = beat.tick() => {
                sent = Some(Instant::now());
                RunStats::inc(&stats.frames_out);
                if ws.send(Message::text(r#"{"type":"heartbeat"}"#)).await.is_err() {
                    stats.closes.add("eof");
                    return;
                }
            }
        }
    }
}

/// A worker process.
pub struct Remote {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Remote {
    async fn spawn(exe: &PathBuf) -> Result<Remote> {
        let mut child = Command::new(exe)
            .arg("worker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start worker {}", exe.display()))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        Ok(Remote {
            child,
            stdin,
            stdout,
        })
    }

    async fn call<T: for<'de> Deserialize<'de>>(&mut self, cmd: &Cmd) -> Result<T> {
        let mut line = serde_json::to_string(cmd)?;
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await?;
        self.stdin.flush().await?;
        let reply = self
            .stdout
            .next_line()
            .await?
            .ok_or_else(|| anyhow!("worker exited"))?;
        Ok(serde_json::from_str(&reply)?)
    }
}

pub enum Member {
    Local(Holder),
    Remote(Box<Remote>),
}

/// Every holder of idle sockets of one run.
pub struct Fleet {
    pub members: Vec<Member>,
    /// Sockets each member holds.
    pub load: Vec<usize>,
    pub capacity: usize,
}

impl Fleet {
    /// `processes == 1`: this process holds every socket; more: that many
    /// worker processes of `exe` do.
    pub async fn new(processes: usize, capacity: usize, exe: Option<PathBuf>) -> Result<Fleet> {
        let mut members = Vec::new();
        if processes <= 1 {
            members.push(Member::Local(Holder::default()));
        } else {
            let exe = match exe {
                Some(e) => e,
                None => std::env::current_exe()?,
            };
            for _ in 0..processes {
                members.push(Member::Remote(Box::new(Remote::spawn(&exe).await?)));
            }
        }
        Ok(Fleet {
            load: vec![0; members.len()],
            members,
            capacity,
        })
    }

    /// Opens `clients`, spread over the members with room, all members at
    /// once; `concurrency` in total.
    pub async fn connect(
        &mut self,
        addr: SocketAddr,
        clients: Vec<IdleClient>,
        concurrency: usize,
        heartbeat: Duration,
    ) -> Result<ConnectReply> {
        let k = self.members.len();
        let mut shares: Vec<Vec<IdleClient>> = vec![Vec::new(); k];
        let mut i = 0usize;
        for c in clients {
            let mut tries = 0;
            while self.load[i % k] + shares[i % k].len() >= self.capacity {
                i += 1;
                tries += 1;
                if tries > k {
                    bail!(
                        "no process has room for another socket ({} each); use more --processes",
                        self.capacity
                    );
                }
            }
            shares[i % k].push(c);
            i += 1;
        }
        let per = (concurrency / k).max(1);
        let started = Instant::now();
        let futs = self
            .members
            .iter_mut()
            .zip(shares)
            .map(|(m, share)| async move {
                let n = share.len();
                let r = match m {
                    Member::Local(h) => Ok(h.connect(addr, share, per, heartbeat).await),
                    Member::Remote(r) => {
                        r.call::<ConnectReply>(&Cmd::Connect {
                            addr,
                            clients: share,
                            concurrency: per,
                            heartbeat_ms: heartbeat.as_millis() as u64,
                        })
                        .await
                    }
                };
                (n, r)
            });
        let mut total = ConnectReply::default();
        for (idx, (n, r)) in join_all(futs).await.into_iter().enumerate() {
            let r = r?;
            self.load[idx] += n;
            total.ok += r.ok;
            total.failed += r.failed;
            if total.first_error.is_none() {
                total.first_error = r.first_error;
            }
        }
        total.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(total)
    }

    pub async fn report(&mut self) -> Result<Vec<HolderReport>> {
        let mut out = Vec::new();
        for m in &mut self.members {
            out.push(match m {
                Member::Local(h) => h.report(),
                Member::Remote(r) => r.call(&Cmd::Report).await?,
            });
        }
        Ok(out)
    }

    pub async fn stop(self) {
        for m in self.members {
            match m {
                Member::Local(h) => h.stop().await,
                Member::Remote(mut r) => {
                    let _ = r.call::<serde_json::Value>(&Cmd::Stop).await;
                    let _ = tokio::time::timeout(Duration::from_secs(10), r.child.wait()).await;
                }
            }
        }
    }
}

/// `loadgen worker`: holds sockets for a coordinator, driven over stdin.
pub async fn worker_main() -> Result<()> {
    let _ = crate::fdlimit::raise_nofile();
    let mut holder = Holder::default();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut out = tokio::io::stdout();
    while let Some(line) = lines.next_line().await? {
        let cmd: Cmd = serde_json::from_str(&line)?;
        let reply = match cmd {
            Cmd::Connect {
                addr,
                clients,
                concurrency,
                heartbeat_ms,
            } => serde_json::to_string(
                &holder
                    .connect(
                        addr,
                        clients,
                        concurrency,
                        Duration::from_millis(heartbeat_ms),
                    )
                    .await,
            )?,
            Cmd::Report => serde_json::to_string(&holder.report())?,
            Cmd::Stop => {
                std::mem::take(&mut holder).stop().await;
                out.write_all(b"{\"stopped\":true}\n").await?;
                out.flush().await?;
                return Ok(());
            }
        };
        out.write_all(reply.as_bytes()).await?;
        out.write_all(b"\n").await?;
        out.flush().await?;
    }
    Ok(())
}
