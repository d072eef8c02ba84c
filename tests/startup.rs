//! `interviewd serve` refusing to start: what it prints and how it exits
//! (weak secrets, a port in use). The real binary, its real stderr.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::time::timeout;

mod common;

use common::serve_command;

const STRONG: &str = "startup-test-secret-0123456789abcdef0123";
/// How long a server that refuses to start may take to say so.
const REFUSE_WITHIN: Duration = Duration::from_secs(15);

struct Exit {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn command(dir: &tempfile::TempDir, env: &[(&str, &str)], dev: bool) -> Command {
    let mut cmd = serve_command(dir.path(), env);
    if dev {
        cmd.arg("--dev");
    }
    cmd
}

/// Runs `serve` with `env` and waits for it to exit (it must, within
/// `REFUSE_WITHIN`).
async fn run_to_exit(dir: &tempfile::TempDir, env: &[(&str, &str)]) -> Exit {
    let child = command(dir, env, false).spawn().expect("spawn interviewd");
    let out = timeout(REFUSE_WITHIN, child.wait_with_output())
        .await
        .unwrap_or_else(|_| {
            panic!("interviewd serve with {env:?} did not exit within {REFUSE_WITHIN:?}")
        })
        .expect("wait for interviewd");
    Exit {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn assert_one_clean_error(exit: &Exit, names: &[&str]) {
    assert!(
        exit.code.is_some_and(|c| c != 0),
        "must exit non-zero: {:?}\nstdout: {}\nstderr: {}",
        exit.code,
        exit.stdout,
        exit.stderr
    );
    let lower = exit.stderr.to_lowercase();
    assert!(
        !lower.contains("panicked") && !lower.contains("backtrace"),
        "no panic and no backtrace, even with RUST_BACKTRACE=1:\n{}",
        exit.stderr
    );
    for name in names {
        let lines: Vec<&str> = exit.stderr.lines().filter(|l| l.contains(name)).collect();
        assert_eq!(
            lines.len(),
            1,
            "exactly one line names {name}:\n{}",
            exit.stderr
        );
        assert!(
            lines[0].starts_with("error: "),
            "the line is an error: {}",
            lines[0]
        );
    }
    assert!(
        !exit.stdout.contains("listening on"),
        "it must not have listened: {}",
        exit.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_secrets_are_refused_at_start() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let exit = run_to_exit(&dir, &[("JWT_SECRET", "a")]).await;
    assert_one_clean_error(&exit, &["JWT_SECRET"]);
    assert!(
        exit.stderr.contains("openssl rand -hex 32"),
        "{}",
        exit.stderr
    );
    assert!(exit.stderr.contains("32 bytes"), "{}", exit.stderr);

    let exit = run_to_exit(&dir, &[("JWT_SECRET", STRONG), ("ADMIN_TOKEN", "a")]).await;
    assert_one_clean_error(&exit, &["ADMIN_TOKEN"]);
    assert!(
        exit.stderr.contains("openssl rand -hex 32"),
        "{}",
        exit.stderr
    );
    assert!(!exit.stderr.contains("JWT_SECRET"), "{}", exit.stderr);

    // 31 bytes is short; both are named on the one line.
    let short = &STRONG[..31];
    let exit = run_to_exit(&dir, &[("JWT_SECRET", short), ("ADMIN_TOKEN", short)]).await;
    assert_one_clean_error(&exit, &["JWT_SECRET", "ADMIN_TOKEN"]);
}

/// `serve --dev` is for a laptop: a short secret there is only a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_accepts_short_secrets_with_a_warning() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut child = command(&dir, &[("JWT_SECRET", "a"), ("ADMIN_TOKEN", "b")], true)
        .spawn()
        .expect("spawn interviewd");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let listening = timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("listening on") {
                return true;
            }
        }
        false
    })
    .await;
    let _ = child.start_kill();
    let out = child.wait_with_output().await.expect("wait for interviewd");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(listening, Ok(true), "serve --dev must start:\n{stderr}");
    assert!(
        stderr.contains("JWT_SECRET") && stderr.contains("ADMIN_TOKEN"),
        "a warning names each: {stderr}"
    );
}

/// A taken port: one line naming BIND/PORT and why, exit 1; no actix panic
/// and no backtrace, even with RUST_BACKTRACE=1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_is_one_line_naming_bind_and_port() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("occupy a port");
    let port = taken.local_addr().expect("its address").port().to_string();
    let exit = run_to_exit(&dir, &[("JWT_SECRET", STRONG), ("PORT", &port)]).await;
    assert_one_clean_error(&exit, &["PORT"]);
    let line = exit
        .stderr
        .lines()
        .find(|l| l.contains("PORT"))
        .unwrap_or_default();
    assert!(
        line.contains(&format!("127.0.0.1:{port}"))
            && line.contains("BIND")
            && line.contains("in use"),
        "{line}"
    );
    assert_eq!(exit.stderr.trim().lines().count(), 1, "{}", exit.stderr);

    // The metrics listener's address likewise, naming its own setting.
    let metrics_bind = format!("127.0.0.1:{port}");
    let exit = run_to_exit(
        &dir,
        &[("JWT_SECRET", STRONG), ("METRICS_BIND", &metrics_bind)],
    )
    .await;
    assert_one_clean_error(&exit, &["METRICS_BIND"]);
    assert!(exit.stderr.contains("in use"), "{}", exit.stderr);
    drop(taken);
}
