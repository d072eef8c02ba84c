//! The server's sockets, bound before anything else starts.
//!
//! Binding first means a taken port is reported before migrations touch the
//! database, and before any actor is started: an actor started but never
//! run is polled by actix as the runtime drops it, which panics ("no reactor
//! running") and printed a panic message above the real error. Here a
//! failure is one line naming the setting to change:
//! `cannot listen on 127.0.0.1:3001 (BIND/PORT): address already in use`.

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

use socket2::{Domain, Protocol, Socket, Type};

/// What actix-web's own `bind` asks of the kernel: room for a burst of
/// connects (a reconnect storm) before the accept loop catches up.
const BACKLOG: i32 = 1024;

/// Every address `BIND` resolves to, on `PORT`; like actix-web's `bind`, it
/// is enough that one of them can be bound.
pub fn bind_public(host: &str, port: u16) -> anyhow::Result<Vec<TcpListener>> {
    let shown = match host.contains(':') {
        true => format!("[{host}]:{port}"),
        false => format!("{host}:{port}"),
    };
    let refused =
        |e: &io::Error| anyhow::anyhow!("cannot listen on {shown} (BIND/PORT): {}", reason(e));
    let addrs = (host, port).to_socket_addrs().map_err(|e| refused(&e))?;
    let mut listeners = Vec::new();
    let mut last_error = None;
    for addr in addrs {
        match bind(addr) {
            Ok(listener) => listeners.push(listener),
            Err(e) => last_error = Some(e),
        }
    }
    match (listeners.is_empty(), last_error) {
        (false, _) => Ok(listeners),
        (true, Some(e)) => Err(refused(&e)),
        (true, None) => Err(anyhow::anyhow!(
            "cannot listen on {shown} (BIND/PORT): it resolves to no address"
        )),
    }
}

/// One listener on `addr`, for the setting `name` (e.g. `METRICS_BIND`).
pub fn bind_one(addr: SocketAddr, name: &str) -> anyhow::Result<TcpListener> {
    bind(addr).map_err(|e| anyhow::anyhow!("cannot listen on {addr} ({name}): {}", reason(&e)))
}

/// As actix-server binds: `SO_REUSEADDR` (a restart need not wait out
/// `TIME_WAIT`), then listen.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(not(windows))]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// The cause in words an operator acts on, not an OS error number.
fn reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::AddrInUse => {
            "address already in use (another process listens there; stop it or pick another port)"
                .into()
        }
        io::ErrorKind::AddrNotAvailable => "no such address on this machine".into(),
        io::ErrorKind::PermissionDenied => {
            "permission denied (ports below 1024 need privileges)".into()
        }
        _ => e.to_string(),
    }
}

#[cfg(test)]
#[path = "tests/listener.rs"]
mod tests;
