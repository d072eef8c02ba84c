//! How many processes a configuration may run as, and the node lease's
//! timing (DESIGN.md, "Several nodes": PostgreSQL decides, Redis carries).
//!
//! - SQLite, no `REDIS_URL`: embedded. One process owns the database file
//!   and every interview; nothing to lease.
//! - PostgreSQL: this process holds a node lease on its `NODE_ID`, so no
//!   second live process can share that identity (with or without Redis).
//! - `REDIS_URL` with SQLite: refused. Redis only carries events; deciding
//!   who owns an interview needs a database every node shares.

use anyhow::bail;

use super::Config;

/// What `serve` runs as, from `DATABASE_URL` and `REDIS_URL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// SQLite: one process, in-process fan-out, no lease.
    Embedded,
    /// PostgreSQL: a node lease, and `redis` says whether `REDIS_URL` is set.
    Postgres { redis: bool },
}

impl Mode {
    /// Whether this mode holds a node lease in the database.
    pub fn holds_node_lease(self) -> bool {
        matches!(self, Mode::Postgres { .. })
    }
}

/// Whether `url` selects the PostgreSQL store (the store reads it the same).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl Config {
    /// The mode `serve` runs in, or a one-line error naming `REDIS_URL` and
    /// `DATABASE_URL` when they cannot go together. Only `serve` asks:
    /// `migrate` and `token` never run as a node.
    pub fn mode(&self) -> anyhow::Result<Mode> {
        let postgres = is_postgres_url(&self.database_url);
        match (postgres, self.redis_url.is_some()) {
            (true, redis) => Ok(Mode::Postgres { redis }),
            (false, false) => Ok(Mode::Embedded),
            // Neither URL is printed: either may carry a password.
            (false, true) => bail!(
                "REDIS_URL is set but DATABASE_URL is not PostgreSQL: several nodes need \
                 PostgreSQL (DATABASE_URL=postgres://...) to decide who owns an interview, \
                 Redis only carries its events; unset REDIS_URL to run one embedded node on SQLite"
            ),
        }
    }

    /// `NODE_HEARTBEAT_MS` must be below `NODE_LEASE_TTL_MS`: a lease renewed
    /// less often than it lives lapses between renewals, and another process
    /// could take this node's identity while it is alive.
    pub(super) fn check_node_lease(&self) -> anyhow::Result<()> {
        let (heartbeat, ttl) = (self.node_heartbeat_ms, self.node_lease_ttl_ms);
        if heartbeat >= ttl {
            bail!(
                "invalid NODE_HEARTBEAT_MS={heartbeat} with NODE_LEASE_TTL_MS={ttl}: the lease \
                 must be renewed more often than it lives (NODE_HEARTBEAT_MS < NODE_LEASE_TTL_MS, \
                 e.g. a third of it)"
            );
        }
        Ok(())
    }

    /// A heartbeat over half the TTL works, but one late renewal lets the
    /// lease lapse.
    pub(super) fn node_lease_warning(&self) -> Option<String> {
        let (heartbeat, ttl) = (self.node_heartbeat_ms, self.node_lease_ttl_ms);
        (heartbeat.saturating_mul(2) > ttl).then(|| {
            format!(
                "NODE_HEARTBEAT_MS={heartbeat} is more than half of NODE_LEASE_TTL_MS={ttl}: \
                 one late renewal lets the node lease lapse (a third of the TTL is safer)"
            )
        })
    }
}
