//! Throwaway PostgreSQL databases for tests and benchmarks: `<base>_t_<random>`
//! on the server a base URL points at, dropped (best effort) with the value.
//!
//! Not part of the server: the store's unit tests, the black-box harness
//! (`tests/common`) and `benches/group_commit.rs` include this file. It
//! blocks (libpq), so async callers create databases in `spawn_blocking`.

#![allow(dead_code)]

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

/// Whether `url` selects the PostgreSQL backend.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The PostgreSQL server to test against, if any: `TEST_POSTGRES_URL`, else
/// `DATABASE_URL` when it points at PostgreSQL.
pub fn configured_url() -> Option<String> {
    ["TEST_POSTGRES_URL", "DATABASE_URL"]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .find(|url| is_postgres(url))
}

/// A database created for one test or run.
#[derive(Debug)]
pub struct ScratchDb {
    /// The URL of the new database (the base URL with its name swapped).
    pub url: String,
    /// Where to connect to drop it: the base URL.
    admin_url: String,
    name: String,
}

impl ScratchDb {
    /// Creates a fresh database on the server of `base_url`. Blocking.
    pub fn create(base_url: &str) -> Result<ScratchDb, String> {
        let (prefix, base, query) = split_url(base_url)?;
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let base: String = base
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(40)
            .collect();
        let name = format!("{base}_t_{}", &suffix[..16]);
        let mut conn = PgConnection::establish(base_url)
            .map_err(|e| format!("connecting to PostgreSQL to create {name}: {e}"))?;
        conn.batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
        Ok(ScratchDb {
            url: format!("{prefix}/{name}{query}"),
            admin_url: base_url.to_owned(),
            name,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ScratchDb {
    /// Best effort: a database left behind only costs disk.
    fn drop(&mut self) {
        let dropped = PgConnection::establish(&self.admin_url)
            .map_err(|e| e.to_string())
            .and_then(|mut conn| {
                conn.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.name
                ))
                .map_err(|e| e.to_string())
            });
        if let Err(e) = dropped {
            eprintln!("note: could not drop scratch database {}: {e}", self.name);
        }
    }
}

/// `postgres://user@host:port/db?x=y` into (`postgres://user@host:port`,
/// `db` or `postgres` when absent, `?x=y` or "").
fn split_url(url: &str) -> Result<(&str, &str, &str), String> {
    let scheme_end = url
        .find("://")
        .map(|i| i + 3)
        .ok_or_else(|| "not a postgres:// URL".to_owned())?;
    let (without_query, query) = match url.find('?') {
        Some(q) => url.split_at(q),
        None => (url, ""),
    };
    Ok(match without_query[scheme_end..].find('/') {
        Some(slash) => {
            let (prefix, path) = without_query.split_at(scheme_end + slash);
            let db = path.trim_start_matches('/');
            (prefix, if db.is_empty() { "postgres" } else { db }, query)
        }
        None => (without_query, "postgres", query),
    })
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn urls_split_into_server_database_and_options() {
        assert_eq!(
            split_url("postgres://postgres@127.0.0.1:5432/ci_1?sslmode=disable"),
            Ok((
                "postgres://postgres@127.0.0.1:5432",
                "ci_1",
                "?sslmode=disable"
            ))
        );
        assert_eq!(
            split_url("postgresql://h"),
            Ok(("postgresql://h", "postgres", ""))
        );
        assert_eq!(
            split_url("postgres://h/"),
            Ok(("postgres://h", "postgres", ""))
        );
    }
}
