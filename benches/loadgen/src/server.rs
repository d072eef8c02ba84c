//! The server under load: one the load generator starts (the real
//! `interviewd serve` on the embedded default, port 0, its own SQLite file)
//! or an existing one (`--url`). Also its memory and CPU, from /proc.

use std::collections::VecDeque;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use crate::tokens::Tokens;

/// Every setting's name (the server's own list), removed from the server's
/// environment unless the load generator sets them, so that the caller's
/// shell cannot change what is measured.
#[path = "../../../src/config/keys.rs"]
mod config_keys;
use config_keys::KEYS as CONFIG_VARS;

/// Besides the settings: the config file variable and the log filter.
const OTHER_VARS: &[&str] = &["INTERVIEWD_CONFIG", "RUST_LOG"];

/// The JWT secret of a server the load generator starts.
pub const DEFAULT_SECRET: &str = "loadgen-benchmark-secret-0123456789abcdef";
/// The `ADMIN_TOKEN` of a server the load generator starts: `/metrics`
/// answers only to it.
pub const DEFAULT_ADMIN_TOKEN: &str = "loadgen-benchmark-admin-token-0123456789abcdef";

/// Where the server is and how to reach it.
#[derive(Debug, Clone, Default)]
pub struct ServerOpts {
    /// `http://127.0.0.1:3001` of a running server; `None` starts one.
    pub url: Option<String>,
    /// The `interviewd` binary to start (default: next to this executable).
    pub bin: Option<PathBuf>,
    /// The running server's pid, for RSS and CPU from /proc (`--url` only;
    /// a started server's pid is known).
    pub pid: Option<u32>,
    /// Its `JWT_SECRET` (default: the one a started server gets).
    pub secret: Option<String>,
    /// Its `ADMIN_TOKEN`, for `/metrics` (`--url` only; a started server
    /// gets ours).
    pub admin_token: Option<String>,
    /// Extra `KEY=VALUE` settings for a started server; they win over the
    /// scenario's.
    pub env: Vec<(String, String)>,
}

pub struct Server {
    pub addr: SocketAddr,
    pub base: String,
    pub pid: Option<u32>,
    pub secret: String,
    pub tokens: Tokens,
    /// The bearer `/metrics` wants, when known.
    admin_token: Option<String>,
    /// Whether this process started it (and its settings are known).
    pub started: bool,
    /// The settings a started server got.
    pub settings: Vec<(String, String)>,
    child: Option<Child>,
    dir: Option<PathBuf>,
    log: Arc<Mutex<VecDeque<String>>>,
    http: reqwest::Client,
}

fn default_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().map(PathBuf::from);
    // target/release/loadgen, or target/release/deps/<test> from a test.
    for _ in 0..2 {
        if let Some(d) = dir.clone() {
            let cand = d.join("interviewd");
            if cand.is_file() {
                return Ok(cand);
            }
            dir = d.parent().map(PathBuf::from);
        }
    }
    bail!(
        "no interviewd binary next to {} (build it with `cargo build --release`, or pass --server-bin or --url)",
        exe.display()
    )
}

impl Server {
    /// Starts a server with `scenario_env` (then `opts.env`) over the
    /// benchmark defaults, or connects to `opts.url`.
    pub async fn start(opts: &ServerOpts, scenario_env: &[(&str, String)]) -> Result<Server> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build()?;
        let secret = opts
            .secret
            .clone()
            .unwrap_or_else(|| DEFAULT_SECRET.to_string());
        if let Some(url) = &opts.url {
            let base = url.trim_end_matches('/').to_string();
            let hostport = base
                .split("://")
                .nth(1)
                .ok_or_else(|| anyhow!("--url must look like http://127.0.0.1:3001"))?;
            let addr = hostport
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| anyhow!("cannot resolve {hostport}"))?;
            if !addr.ip().is_loopback() {
                bail!("load is only ever sent to this machine's loopback; {addr} is not");
            }
            return Ok(Server {
                addr,
                base,
                pid: opts.pid,
                tokens: Tokens::new(&secret),
                secret,
                admin_token: opts.admin_token.clone(),
                started: false,
                settings: Vec::new(),
                child: None,
                dir: None,
                log: Arc::default(),
                http,
            });
        }
        let bin = match &opts.bin {
            Some(b) => b.clone(),
            None => default_bin()?,
        };
        let dir = std::env::temp_dir().join(format!(
            "loadgen-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir)?;
        let mut settings: Vec<(String, String)> = vec![
            ("BIND".into(), "127.0.0.1".into()),
            ("PORT".into(), "0".into()),
            (
                "DATABASE_URL".into(),
                format!("sqlite://{}", dir.join("bench.db").display()),
            ),
            ("JWT_SECRET".into(), secret.clone()),
            ("ADMIN_TOKEN".into(), DEFAULT_ADMIN_TOKEN.into()),
            ("LOG_FORMAT".into(), "json".into()),
            ("RUST_LOG".into(), "warn".into()),
            ("TTS_DIR".into(), dir.join("audio").display().to_string()),
            // Every simulated client comes from this one address, and a
            // scenario may share a token among many sockets: the per-client
            // caps are for real clients (`--env` puts them back).
            ("MAX_SOCKETS_PER_ADDRESS".into(), "1000000".into()),
            ("MAX_SOCKETS_PER_TOKEN".into(), "1000000".into()),
        ];
        let set = |settings: &mut Vec<(String, String)>, k: &str, v: String| {
            settings.retain(|(key, _)| key != k);
            settings.push((k.to_string(), v));
        };
        for (k, v) in scenario_env {
            set(&mut settings, k, v.clone());
        }
        for (k, v) in &opts.env {
            set(&mut settings, k, v.clone());
        }
        let secret = settings
            .iter()
            .find(|(k, _)| k == "JWT_SECRET")
            .map(|(_, v)| v.clone())
            .unwrap_or(secret);
        let admin_token = settings
            .iter()
            .find(|(k, _)| k == "ADMIN_TOKEN")
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty());
        let mut cmd = Command::new(&bin);
        cmd.arg("serve");
        for var in CONFIG_VARS.iter().chain(OTHER_VARS) {
            cmd.env_remove(var);
        }
        // The raised RLIMIT_NOFILE of this process is inherited.
        cmd.envs(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let log: Arc<Mutex<VecDeque<String>>> = Arc::default();
        let (tx, rx) = oneshot::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        tokio::spawn(drain(stdout, log.clone(), Some(tx)));
        tokio::spawn(drain(stderr, log.clone(), None));
        let addr = match tokio::time::timeout(Duration::from_secs(120), rx).await {
            Ok(Ok(addr)) => addr,
            _ => {
                let _ = child.start_kill();
                let tail: Vec<String> = log.lock().unwrap().iter().cloned().collect();
                bail!(
                    "interviewd did not print `listening on`:\n{}",
                    tail.join("\n")
                );
            }
        };
        Ok(Server {
            addr,
            base: format!("http://{addr}"),
            pid: child.id(),
            tokens: Tokens::new(&secret),
            secret,
            admin_token,
            started: true,
            settings,
            child: Some(child),
            dir: Some(dir),
            log,
            http,
        })
    }

    /// A handle for polling this server from another task (no process
    /// ownership).
    pub fn sampler(&self) -> Server {
        Server {
            addr: self.addr,
            base: self.base.clone(),
            pid: self.pid,
            secret: self.secret.clone(),
            tokens: self.tokens.clone(),
            admin_token: self.admin_token.clone(),
            started: false,
            settings: Vec::new(),
            child: None,
            dir: None,
            log: self.log.clone(),
            http: self.http.clone(),
        }
    }

    /// The last lines the server printed.
    pub fn log_tail(&self, n: usize) -> Vec<String> {
        let log = self.log.lock().unwrap();
        log.iter()
            .skip(log.len().saturating_sub(n))
            .cloned()
            .collect()
    }

    /// Resident memory from /proc/PID/status, or the server's own gauge.
    pub async fn rss_bytes(&self) -> Option<u64> {
        if let Some(pid) = self.pid {
            if let Some(v) = proc_rss(pid) {
                return Some(v);
            }
        }
        self.metric("interviewd_process_resident_memory_bytes")
            .await
            .map(|v| v as u64)
    }

    /// Open file descriptors (entries of /proc/PID/fd).
    pub fn fd_count(&self) -> Option<u64> {
        self.pid.and_then(proc_fds)
    }

    /// `GET /healthz`: how long it took, or `None` when it did not answer
    /// 200 within `deadline`.
    pub async fn healthz(&self, deadline: Duration) -> Option<Duration> {
        let started = std::time::Instant::now();
        let resp = self
            .http
            .get(format!("{}/healthz", self.base))
            .timeout(deadline)
            .send()
            .await
            .ok()?;
        let took = started.elapsed();
        (resp.status().as_u16() == 200 && took <= deadline).then_some(took)
    }

    /// User + system CPU seconds from /proc/PID/stat.
    pub fn cpu_seconds(&self) -> Option<f64> {
        self.pid.and_then(proc_cpu_seconds)
    }

    pub fn nofile(&self) -> Option<u64> {
        self.pid.and_then(crate::fdlimit::nofile_of)
    }

    /// `GET /metrics` with the admin token (the public listener wants it).
    pub async fn metrics_text(&self) -> Result<String> {
        let mut req = self.http.get(format!("{}/metrics", self.base));
        if let Some(token) = &self.admin_token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await?;
        let status = resp.status();
        if !status.is_success() {
            bail!("GET /metrics: {status} (pass the server's --admin-token with --url)");
        }
        Ok(resp.text().await?)
    }

    /// The sum of every sample of one metric (all label sets).
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let text = self.metrics_text().await.ok()?;
        sum_metric(&text, name, None)
    }

    /// `POST /v1/interviews` as a recruiter of the benchmark organisation.
    pub async fn create_interview(&self, questions: usize, qtype: &str) -> Result<String> {
        let body = json!({
            "candidateName": "Ada",
            "title": "Backend engineer",
            "questions": (1..=questions).map(|i| json!({
                "text": format!("Question {i}: how would you design a rate limiter for a public API, and why?"),
                "type": qtype,
            })).collect::<Vec<_>>(),
            "durationMinutes": 60,
        });
        let token = self.tokens.recruiter(0);
        let resp = self
            .http
            .post(format!("{}/v1/interviews", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if status != 201 {
            bail!("POST /v1/interviews: {status} {v}");
        }
        v["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("POST /v1/interviews: no id in {v}"))
    }

    /// `GET /v1/websocket/stats`: (open sockets, live session actors).
    pub async fn ws_stats(&self) -> Result<(u64, u64)> {
        let v: Value = self
            .http
            .get(format!("{}/v1/websocket/stats", self.base))
            .bearer_auth(self.tokens.admin())
            .send()
            .await?
            .json()
            .await?;
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        Ok((n("connected"), n("sessions")))
    }

    /// Stops a started server (SIGKILL; the benchmark's data is thrown away).
    pub async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        }
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Sums the samples of `name` (optionally only those whose labels contain
/// `label`) in Prometheus text.
pub fn sum_metric(text: &str, name: &str, label: Option<&str>) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        if let Some(l) = label {
            if !rest.contains(l) {
                continue;
            }
        }
        if let Some(v) = rest
            .rsplit(' ')
            .next()
            .and_then(|v| v.trim().parse::<f64>().ok())
        {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

pub fn proc_rss(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub fn proc_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

pub fn proc_cpu_seconds(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`, which may contain spaces.
    let after = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((utime + stime) / if hz > 0.0 { hz } else { 100.0 })
}

pub fn self_rss() -> Option<u64> {
    proc_rss(std::process::id())
}

pub fn self_cpu_seconds() -> Option<f64> {
    proc_cpu_seconds(std::process::id())
}

async fn drain<R: AsyncRead + Unpin>(
    pipe: R,
    log: Arc<Mutex<VecDeque<String>>>,
    mut ready: Option<oneshot::Sender<SocketAddr>>,
) {
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(tx) = ready.take_if(|_| line.contains("listening on ")) {
            if let Some(addr) = line
                .split("listening on ")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .and_then(|s| s.trim_matches('"').parse().ok())
            {
                let _ = tx.send(addr);
            } else {
                ready = Some(tx);
            }
        }
        let mut log = log.lock().unwrap();
        log.push_back(line);
        if log.len() > 400 {
            log.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_metrics() {
        let text = "# HELP x\ninterviewd_sockets{role=\"candidate\"} 3\ninterviewd_sockets{role=\"observer\"} 4\ninterviewd_sockets_total 9\n";
        assert_eq!(sum_metric(text, "interviewd_sockets", None), Some(7.0));
        assert_eq!(
            sum_metric(text, "interviewd_sockets", Some("observer")),
            Some(4.0)
        );
        assert!(proc_rss(std::process::id()).unwrap() > 0);
        assert!(proc_cpu_seconds(std::process::id()).is_some());
        assert!(proc_fds(std::process::id()).unwrap() > 0);
    }
}
