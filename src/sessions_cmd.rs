//! `interviewd sessions`: the live session actors of a running server, as a
//! table, from `GET /v1/admin/sessions`.

use std::time::Duration;

use interview_actors::protocol::Role;
use serde_json::Value;

use crate::auth::{now_secs, Auth, Claims};
use crate::cli::SessionsArgs;
use crate::config::Config;

/// A bearer for the admin API: `ADMIN_TOKEN`, else a one-minute admin JWT.
fn admin_bearer(config: &Config) -> anyhow::Result<String> {
    if let Some(token) = config.admin_token.clone().filter(|t| !t.is_empty()) {
        return Ok(token);
    }
    let auth = Auth::from_config(config)?;
    let claims = Claims {
        sub: "interviewd-cli".into(),
        role: Role::Admin,
        name: None,
        interview_id: None,
        org_id: None,
        exp: now_secs() + 60,
        nbf: None,
        iss: None,
        aud: None,
    };
    Ok(auth.issue(&claims)?)
}

pub fn run(config: &Config, args: &SessionsArgs) -> anyhow::Result<()> {
    let base = args
        .url
        .clone()
        .unwrap_or_else(|| format!("http://127.0.0.1:{}", config.port));
    let url = format!("{}/v1/admin/sessions", base.trim_end_matches('/'));
    let bearer = admin_bearer(config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let body: Value = runtime.block_on(async {
        let response = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?
            .get(&url)
            .bearer_auth(bearer)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach {url}: {e}"))?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            anyhow::bail!("{url} answered {status}: {body}");
        }
        Ok::<_, anyhow::Error>(body)
    })?;
    print!("{}", table(&body));
    Ok(())
}

/// The sessions as aligned columns.
pub fn table(body: &Value) -> String {
    let headers = [
        "INTERVIEW",
        "STATE",
        "AGE",
        "CANDIDATE",
        "OBSERVERS",
        "LAST SEQ",
        "LLM",
        "NODE",
    ];
    let mut rows: Vec<Vec<String>> = Vec::new();
    for s in body["sessions"].as_array().into_iter().flatten() {
        let text = |key: &str| match &s[key] {
            Value::String(v) => v.clone(),
            Value::Null => "-".into(),
            other => other.to_string(),
        };
        let age_s = s["ageMs"].as_u64().unwrap_or(0) / 1000;
        rows.push(vec![
            text("interviewId"),
            text("state"),
            format!("{}m{:02}s", age_s / 60, age_s % 60),
            if s["candidateConnected"] == Value::Bool(true) {
                "yes"
            } else {
                "no"
            }
            .into(),
            text("observers"),
            text("lastSeq"),
            if s["llmStreamActive"] == Value::Bool(true) {
                "streaming"
            } else {
                "-"
            }
            .into(),
            text("node"),
        ]);
    }
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows.iter() {
        out.push_str(&line(r.clone()));
    }
    if rows.is_empty() {
        out.push_str("(no live sessions)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let body = serde_json::json!({"sessions": [{
            "interviewId": "abc", "state": "active", "ageMs": 61_000,
            "candidateConnected": true, "observers": 2, "lastSeq": 41,
            "llmStreamActive": false, "node": "n1"
        }]});
        let t = table(&body);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("INTERVIEW  STATE"));
        assert!(lines[1].starts_with("abc        active  1m01s  yes"), "{t}");
        assert!(table(&serde_json::json!({"sessions": []})).contains("no live sessions"));
    }
}
