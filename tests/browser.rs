//! The browser tests of the web pages (`web/`), run by `cargo test`.
//!
//! The tests themselves are a Node script, `tests/browser/run.mjs`, that
//! drives Debian's Chromium with Playwright (`playwright-core`) against this
//! build's server binary; see that file for what it checks. They need
//! `node`, `/usr/bin/chromium` and `npm ci --prefix tests/browser`. Where one
//! is missing the test says what and passes, so a laptop without a browser
//! still runs `cargo test` — unless `CI` is set (CI sets `CI=true`; `.ci/run`
//! installs all three): then a missing prerequisite fails the test, so CI can
//! never skip the browser tests without anyone noticing.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Bound for the whole Node run; the script's own watchdog fires first.
const RUN_TIMEOUT: Duration = Duration::from_secs(5 * 60);

fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// `CI` set to anything but an empty string, `0` or `false`.
fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| !matches!(v.trim(), "" | "0" | "false"))
        .unwrap_or(false)
}

fn missing_prerequisites(dir: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    let node_ok = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !node_ok {
        missing.push("node (Node.js 20 or later) on PATH".to_string());
    }
    let chromium = chromium_path();
    if !chromium.exists() {
        missing.push(format!(
            "{} (apt-get install --no-install-recommends chromium)",
            chromium.display()
        ));
    }
    if !dir.join("node_modules/playwright-core").is_dir() {
        missing.push(
            "tests/browser/node_modules/playwright-core (npm ci --prefix tests/browser)"
                .to_string(),
        );
    }
    missing
}

/// Reads a child's pipe to the end on its own thread, so a chatty child
/// never blocks on a full pipe while we wait for it.
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

#[test]
fn browser_pages() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("tests/browser");
    let missing = missing_prerequisites(&dir);
    if !missing.is_empty() {
        let what = missing.join("; ");
        if in_ci() {
            panic!("browser tests cannot run, and CI must not skip them: missing {what}");
        }
        eprintln!("skipping browser tests: missing {what}");
        return;
    }

    let mut command = Command::new("node");
    command
        .arg(dir.join("run.mjs"))
        .current_dir(root)
        .env("INTERVIEWD_BIN", env!("CARGO_BIN_EXE_interviewd"))
        .env("CHROMIUM_PATH", chromium_path())
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("start node tests/browser/run.mjs");
    let stdout = drain(child.stdout.take().expect("node stdout"));
    let stderr = drain(child.stderr.take().expect("node stderr"));

    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            // SIGKILL: the script's exit handler cannot run, but its own
            // watchdog (4 minutes) has normally stopped it and its server first.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    match status {
        Some(s) if s.success() => println!("{out}{err}"),
        Some(s) => panic!("browser tests failed ({s})\n--- stdout\n{out}\n--- stderr\n{err}"),
        None => panic!(
            "browser tests did not finish within {} s\n--- stdout\n{out}\n--- stderr\n{err}",
            RUN_TIMEOUT.as_secs()
        ),
    }
}
