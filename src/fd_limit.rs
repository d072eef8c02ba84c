//! The process's file-descriptor limit (`RLIMIT_NOFILE`), which bounds how
//! many sockets it can hold: every socket is a descriptor, and so is every
//! HTTP request in flight, database connection, log and SQLite file.

/// Descriptors kept out of the socket cap for HTTP requests, the database
/// pool (16), SQLite's files and the runtime.
pub const HEADROOM: u64 = 128;

/// The soft and hard limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoFile {
    pub soft: u64,
    pub hard: u64,
}

fn get() -> std::io::Result<NoFile> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only into the struct passed to it.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(NoFile {
        soft: lim.rlim_cur,
        hard: lim.rlim_max,
    })
}

/// Raises the soft limit to the hard one, as Go's runtime does at start: the
/// soft default (often 1024) is a relic of `select(2)`, which nothing here
/// uses. Returns the limits in force afterwards.
pub fn raise() -> std::io::Result<NoFile> {
    let before = get()?;
    if before.soft < before.hard {
        let want = libc::rlimit {
            rlim_cur: before.hard as libc::rlim_t,
            rlim_max: before.hard as libc::rlim_t,
        };
        // SAFETY: setrlimit only reads the struct passed to it.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } != 0 {
            tracing::warn!(
                soft = before.soft,
                hard = before.hard,
                "could not raise RLIMIT_NOFILE to its hard limit"
            );
        }
    }
    get()
}

/// Sockets a process with this soft limit may hold: all but the headroom,
/// or half of a very small limit.
pub fn socket_cap(soft: u64) -> usize {
    let cap = if soft >= 2 * HEADROOM {
        soft - HEADROOM
    } else {
        soft / 2
    };
    usize::try_from(cap).unwrap_or(usize::MAX).max(1)
}

/// The process's socket cap: `MAX_SOCKETS` when set (0: unset), never above
/// what the descriptor limit allows.
pub fn total_sockets(configured: usize, soft: u64) -> usize {
    let from_limit = socket_cap(soft);
    match configured {
        0 => from_limit,
        n if n > from_limit => {
            tracing::warn!(
                max_sockets = n,
                rlimit_nofile = soft,
                using = from_limit,
                "MAX_SOCKETS is above what RLIMIT_NOFILE allows; using the lower figure"
            );
            from_limit
        }
        n => n,
    }
}

#[cfg(test)]
#[path = "tests/fd_limit.rs"]
mod tests;
