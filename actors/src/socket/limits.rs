//! `SocketLimits`: how many sockets a client may hold, so that one token or
//! one address cannot spend the process's file descriptors and stop
//! `/healthz` and honest interviews.
//!
//! Three caps, counted in two places:
//! - the whole process and each client address are counted here, from the
//!   upgrade until the TCP connection is gone (a [`SocketPermit`] lives as
//!   long as the connection, not the actor: a closed socket still holds its
//!   descriptor for a moment), and refused before the upgrade (HTTP 429);
//! - each token is counted by `UserRooms`, which knows every live socket;
//!   this only gives tokens their fingerprint (`token_key`).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::metrics;

/// The caps; each at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketCaps {
    pub per_address: usize,
    pub total: usize,
}

/// Why an upgrade was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This client address holds `per_address` sockets.
    Address,
    /// The process holds `total` sockets.
    Total,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Address => "address",
            Refusal::Total => "total",
        }
    }
}

pub struct SocketLimits {
    caps: SocketCaps,
    /// Keys token fingerprints, so that a token is never kept in memory.
    hasher: RandomState,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// One admitted socket's place in the process and address counts, given
/// back when dropped.
pub struct SocketPermit {
    limits: Arc<SocketLimits>,
    address: IpAddr,
}

impl SocketLimits {
    pub fn new(caps: SocketCaps) -> Arc<SocketLimits> {
        let caps = SocketCaps {
            per_address: caps.per_address.max(1),
            total: caps.total.max(1),
        };
        metrics::socket_capacity(caps.total);
        Arc::new(SocketLimits {
            caps,
            hasher: RandomState::new(),
            open: Mutex::new(Open::default()),
        })
    }

    pub fn caps(&self) -> SocketCaps {
        self.caps
    }

    /// The counts stay consistent even if a holder panicked.
    fn open(&self) -> MutexGuard<'_, Open> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A place for one more socket from `address`, or why not.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<SocketPermit, Refusal> {
        let address = client_key(address);
        let mut open = self.open();
        let refusal = if open.total >= self.caps.total {
            Some(Refusal::Total)
        } else if open.by_address.get(&address).copied().unwrap_or(0) >= self.caps.per_address {
            Some(Refusal::Address)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            drop(open);
            metrics::socket_refused(refusal.as_str());
            return Err(refusal);
        }
        open.total += 1;
        *open.by_address.entry(address).or_default() += 1;
        Ok(SocketPermit {
            limits: self.clone(),
            address,
        })
    }

    /// The fingerprint sockets of one token are counted by.
    pub fn token_key(&self, token: &str) -> u64 {
        self.hasher.hash_one(token)
    }

    /// Sockets the process holds now.
    pub fn open_sockets(&self) -> usize {
        self.open().total
    }
}

impl Drop for SocketPermit {
    fn drop(&mut self) {
        let mut open = self.limits.open();
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_address.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

/// What one client is, for counting: an IPv4 address, or an IPv6 /64 (one
/// subscriber's usual allocation, so a client cannot step around the cap
/// by changing its interface identifier).
fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

#[cfg(test)]
#[path = "tests/limits.rs"]
mod tests;
