//! The command line: `serve`, `migrate`, `token`, `sessions`.
//!
//! ```text
//! interviewd [--config FILE] serve [--dev]
//! interviewd [--config FILE] migrate
//! interviewd [--config FILE] token --role R --sub S [--interview ID] [--org ORG] [--name NAME] [--ttl SECS]
//! interviewd [--config FILE] sessions [--url URL]      (reserved)
//! ```
//!
//! `--config` may come before or after the subcommand, or from
//! `INTERVIEWD_CONFIG`.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, Parser, Subcommand};
use interview_actors::protocol::Role;

use crate::auth::{now_secs, Auth, Claims};
use crate::config::Config;

/// Live, AI-conducted job interviews over a raw WebSocket: one actor per interview.
#[derive(Debug, Parser)]
#[command(name = "interviewd", version, about, long_about = None)]
pub struct Cli {
    /// TOML file with the configuration keys in lower case (`port = 3001`);
    /// environment variables override it.
    #[arg(long, global = true, value_name = "FILE", env = "INTERVIEWD_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (runs pending migrations first).
    Serve(ServeArgs),
    /// Run pending database migrations and exit.
    Migrate,
    /// Print a signed JWT to stdout (needs JWT_SECRET).
    Token(TokenArgs),
    /// List the live session actors of a running server (needs ADMIN_TOKEN or JWT_SECRET).
    Sessions(SessionsArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Laptop demo: generate a JWT_SECRET if none is set, create a demo
    /// interview, print its tokens and ready-to-paste client commands.
    #[arg(long)]
    pub dev: bool,
}

#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// candidate, recruiter, admin or service.
    #[arg(long, value_parser = parse_role, value_name = "ROLE")]
    pub role: Role,
    /// The user id (`sub`).
    #[arg(long, value_name = "SUB")]
    pub sub: String,
    /// The interview a candidate token may join (`interviewId`); required for candidates.
    #[arg(long, value_name = "ID")]
    pub interview: Option<String>,
    /// The organisation a recruiter token may observe (`orgId`); required for recruiters.
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,
    /// Display name (`name`).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Lifetime in seconds (`exp` = now + SECS).
    #[arg(long, value_name = "SECS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub ttl: u64,
}

#[derive(Debug, Clone, Args)]
pub struct SessionsArgs {
    /// Base URL of the running server (default: http://127.0.0.1:PORT).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

/// `--role` values: the lower-case names of PROTOCOL section 1.
fn parse_role(text: &str) -> Result<Role, String> {
    match text {
        "candidate" => Ok(Role::Candidate),
        "recruiter" => Ok(Role::Recruiter),
        "admin" => Ok(Role::Admin),
        "service" => Ok(Role::Service),
        other => Err(format!(
            "unknown role `{other}`; expected candidate, recruiter, admin or service"
        )),
    }
}

/// The claims `interviewd token` would sign at `now`, refusing the
/// combinations a server would refuse (candidate without `--interview`,
/// recruiter without `--org`, empty `--sub`).
pub fn token_claims(args: &TokenArgs, now: u64) -> anyhow::Result<Claims> {
    let non_empty = |value: &Option<String>| value.clone().filter(|s| !s.trim().is_empty());
    if args.sub.trim().is_empty() {
        bail!("--sub must not be empty");
    }
    let interview_id = non_empty(&args.interview);
    let org_id = non_empty(&args.org);
    match args.role {
        Role::Candidate if interview_id.is_none() => {
            bail!("a candidate token needs --interview ID (the interview it may join)")
        }
        Role::Recruiter if org_id.is_none() => {
            bail!("a recruiter token needs --org ORG (the organisation it may observe)")
        }
        _ => {}
    }
    Ok(Claims {
        sub: args.sub.clone(),
        role: args.role,
        name: non_empty(&args.name),
        interview_id,
        org_id,
        exp: now.saturating_add(args.ttl),
        nbf: None,
        iss: None,
        aud: None,
    })
}

/// Signs the token `interviewd token` prints (with `JWT_ISSUER` /
/// `JWT_AUDIENCE` when configured).
pub fn mint_token(config: &Config, args: &TokenArgs) -> anyhow::Result<String> {
    let claims = token_claims(args, now_secs())?;
    let auth = Auth::from_config(config)?;
    Ok(auth.issue(&claims)?)
}

/// `interviewd token`: prints the token alone on stdout, so
/// `TOKEN=$(interviewd token ...)` works.
pub fn run_token(config: &Config, args: &TokenArgs) -> anyhow::Result<()> {
    let token = mint_token(config, args)?;
    for weak in config
        .weak_secrets()
        .iter()
        .filter(|w| w.starts_with("JWT_SECRET"))
    {
        tracing::warn!("{weak}: a server started without --dev refuses it");
    }
    println!("{token}");
    Ok(())
}

/// `http://host:port` → `ws://host:port`, `https://` → `wss://`, no trailing `/`.
pub fn ws_base(base_http: &str) -> String {
    let base = base_http.trim_end_matches('/');
    if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_string()
    }
}

const DEV_BANNER: &str = r#"
interviewd --dev: generated JWT_SECRET and a demo interview (not for production)

  demo interview   @ID@
  candidate token  @CANDIDATE@
  recruiter token  @RECRUITER@

In a browser (two windows):
  candidate room   @HTTP@/room?token=@CANDIDATE@
  recruiter view   @HTTP@/observe?interview=@ID@&token=@RECRUITER@

Candidate, with websocat; paste each JSON line once it connects:
  websocat "@WS@/interview?token=@CANDIDATE@"
  {"type":"join-interview","data":{"interviewId":"@ID@"}}
  {"type":"start-interview"}
  {"type":"answer","data":{"text":"I would measure first, then fix the hot path and add a regression test."}}

Recruiter, in a second terminal:
  websocat "@WS@/interview?token=@RECRUITER@"
  {"type":"observe-interview","data":{"interviewId":"@ID@"}}

Or with Python (pip install 'websockets>=12'): join, start, print every event:
  python3 -c 'import json,sys; from websockets.sync.client import connect; ws=connect(sys.argv[1]); ws.send(json.dumps({"type":"join-interview","data":{"interviewId":sys.argv[2]}})); ws.send(json.dumps({"type":"start-interview"})); [print(m) for m in ws]' "@WS@/interview?token=@CANDIDATE@" "@ID@"

REST, as the recruiter:
  curl -H "Authorization: Bearer @RECRUITER@" @HTTP@/v1/interviews/@ID@
"#;

/// What `serve --dev` prints once the server is bound: the demo interview,
/// its candidate and recruiter tokens, and ready-to-paste client commands.
/// `base_http` is where a local client reaches the server, e.g.
/// `http://127.0.0.1:3001` (not `0.0.0.0`).
pub fn dev_banner(
    base_http: &str,
    interview_id: &str,
    candidate_token: &str,
    recruiter_token: &str,
) -> String {
    DEV_BANNER
        .replace("@WS@", &ws_base(base_http))
        .replace("@HTTP@", base_http.trim_end_matches('/'))
        .replace("@ID@", interview_id)
        .replace("@CANDIDATE@", candidate_token)
        .replace("@RECRUITER@", recruiter_token)
}

#[cfg(test)]
#[path = "tests/cli.rs"]
mod tests;
