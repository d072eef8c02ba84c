//! The file-descriptor limit (RLIMIT_NOFILE), through `libc`.
//!
//! Every socket is a file descriptor. The load generator raises its own soft
//! limit to the hard limit at start and reports what it got; children (the
//! server it starts, its worker processes) inherit the raised limit. It
//! never opens more sockets in one process than that limit minus a reserve
//! (see `fleet`): more sockets go to more processes.

use serde::Serialize;

/// Descriptors kept free in every process for files, pipes, the HTTP
/// client, the runtime.
pub const RESERVE: u64 = 256;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct FdLimit {
    /// The soft limit this process started with.
    pub soft_before: u64,
    /// The soft limit now.
    pub soft: u64,
    pub hard: u64,
}

impl FdLimit {
    /// Sockets one process may hold.
    pub fn sockets_per_process(&self) -> u64 {
        self.soft.saturating_sub(RESERVE).max(1)
    }
}

fn get() -> std::io::Result<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass; no other memory.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(lim)
}

/// Raises the soft limit to the hard limit (when it is not already there).
pub fn raise_nofile() -> std::io::Result<FdLimit> {
    let before = get()?;
    if before.rlim_cur < before.rlim_max {
        let want = libc::rlimit {
            rlim_cur: before.rlim_max,
            rlim_max: before.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    let now = get()?;
    Ok(FdLimit {
        soft_before: before.rlim_cur as u64,
        soft: now.rlim_cur as u64,
        hard: now.rlim_max as u64,
    })
}

/// Open descriptors of this process (entries of /proc/self/fd).
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The soft "Max open files" of another process, from /proc/PID/limits.
pub fn nofile_of(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
