//! One table on stdout and one JSON file per run.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::fdlimit::FdLimit;
use crate::stats::Latency;

/// One figure: a latency (percentiles) or a single value.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub name: String,
    pub unit: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
}

/// The machine a run was made on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub mem_total_gib: f64,
    pub kernel: String,
    pub cpu: String,
    pub loadgen_fd_limit: Option<FdLimit>,
    pub server_fd_limit: Option<u64>,
}

impl Machine {
    pub fn probe(fd: Option<FdLimit>, server_fd: Option<u64>) -> Machine {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kb: f64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        Machine {
            nproc: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            mem_total_gib: (mem_kb / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
            cpu,
            loadgen_fd_limit: fd,
            server_fd_limit: server_fd,
        }
    }
}

/// The correctness checks every scenario reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Checks {
    pub finished: bool,
    pub duplicates: u64,
    pub gaps: u64,
    /// Clients that could not connect or join the first time.
    pub connect_failures: u64,
    /// `error` frames the clients got, by code.
    pub errors: BTreeMap<String, u64>,
    /// Close codes the clients saw, by code.
    pub closes: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    /// One line: what was run.
    pub title: String,
    pub started_at: String,
    pub command: String,
    pub params: Value,
    /// The server's settings when the load generator started it.
    pub server: Value,
    pub machine: Machine,
    pub figures: Vec<Figure>,
    pub checks: Checks,
    pub notes: Vec<String>,
    /// Scenario-specific detail (the soak's phases, hostile clients and
    /// samples).
    #[serde(skip_serializing_if = "Value::is_null")]
    pub details: Value,
    /// Tables printed before the figures.
    #[serde(skip)]
    pub sections: Vec<String>,
}

impl Report {
    pub fn new(scenario: &str, title: String, params: Value) -> Report {
        Report {
            scenario: scenario.to_string(),
            title,
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            params,
            server: Value::Null,
            machine: Machine::probe(None, None),
            figures: Vec::new(),
            checks: Checks::default(),
            notes: Vec::new(),
            details: Value::Null,
            sections: Vec::new(),
        }
    }

    pub fn value(&mut self, name: &str, value: f64, unit: &str) {
        self.figures.push(Figure {
            name: name.to_string(),
            unit: unit.to_string(),
            value: Some(value),
            latency: None,
        });
    }

    pub fn maybe(&mut self, name: &str, value: Option<f64>, unit: &str) {
        if let Some(v) = value {
            self.value(name, v, unit);
        }
    }

    pub fn latency(&mut self, name: &str, l: Latency) {
        self.figures.push(Figure {
            name: name.to_string(),
            unit: "ms".to_string(),
            value: None,
            latency: Some(l),
        });
    }

    pub fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }

    pub fn figure(&self, name: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.name == name)
    }

    /// The table printed after a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("== {}: {}\n", self.scenario, self.title));
        for s in &self.sections {
            out.push_str(s);
            out.push('\n');
        }
        let w = self
            .figures
            .iter()
            .map(|f| f.name.len())
            .max()
            .unwrap_or(10)
            .max(24);
        out.push_str(&format!(
            "{:<w$}  {:>12}  {:>10}  {:>10}  {:>10}  {:>10}  {}\n",
            "figure", "value | p50", "p99", "p99.9", "max", "n", "unit"
        ));
        for f in &self.figures {
            match (&f.value, &f.latency) {
                (_, Some(l)) => out.push_str(&format!(
                    "{:<w$}  {:>12.3}  {:>10.3}  {:>10.3}  {:>10.3}  {:>10}  {}\n",
                    f.name, l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms, l.count, f.unit
                )),
                (Some(v), None) => out.push_str(&format!(
                    "{:<w$}  {:>12}  {:>10}  {:>10}  {:>10}  {:>10}  {}\n",
                    f.name,
                    human(*v),
                    "",
                    "",
                    "",
                    "",
                    f.unit
                )),
                _ => {}
            }
        }
        let c = &self.checks;
        out.push_str(&format!(
            "{:<w$}  finished={} duplicates={} gaps={} connect_failures={}\n",
            "checks", c.finished, c.duplicates, c.gaps, c.connect_failures
        ));
        if !c.errors.is_empty() {
            out.push_str(&format!("{:<w$}  {:?}\n", "error frames", c.errors));
        }
        if !c.closes.is_empty() {
            out.push_str(&format!("{:<w$}  {:?}\n", "close codes", c.closes));
        }
        for n in &self.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        out
    }

    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(self).expect("a report serialises");
        std::fs::write(path, text + "\n")
    }
}

fn human(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() < 10.0 && v.abs() < 10.0 {
        format!("{v:.3}")
    } else if v.abs() < 1000.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}
