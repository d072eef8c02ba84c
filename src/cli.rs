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
    println!("{}", mint_token(config, args)?);
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
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_every_subcommand() {
        let cli = Cli::try_parse_from(["interviewd", "serve", "--dev"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Serve(ServeArgs { dev: true })
        ));

        let cli = Cli::try_parse_from(["interviewd", "--config", "a.toml", "migrate"]).unwrap();
        assert_eq!(cli.config, Some(PathBuf::from("a.toml")));
        assert!(matches!(cli.command, Command::Migrate));

        let cli = Cli::try_parse_from(["interviewd", "migrate", "--config", "b.toml"]).unwrap();
        assert_eq!(cli.config, Some(PathBuf::from("b.toml")));

        let cli = Cli::try_parse_from([
            "interviewd",
            "token",
            "--role",
            "candidate",
            "--sub",
            "u-1",
            "--interview",
            "i-1",
        ])
        .unwrap();
        let Command::Token(args) = cli.command else {
            panic!("not token")
        };
        assert_eq!(args.role, Role::Candidate);
        assert_eq!(args.ttl, 3600);

        let cli = Cli::try_parse_from(["interviewd", "sessions", "--url", "http://x"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Sessions(SessionsArgs { url: Some(_) })
        ));

        assert!(
            Cli::try_parse_from(["interviewd", "token", "--role", "boss", "--sub", "u"]).is_err()
        );
        assert!(Cli::try_parse_from([
            "interviewd",
            "token",
            "--role",
            "admin",
            "--sub",
            "u",
            "--ttl",
            "0"
        ])
        .is_err());
    }

    fn token_args(role: Role) -> TokenArgs {
        TokenArgs {
            role,
            sub: "u-1".into(),
            interview: None,
            org: None,
            name: None,
            ttl: 60,
        }
    }

    #[test]
    fn token_claims_require_the_role_claim() {
        let err = token_claims(&token_args(Role::Candidate), 1000).unwrap_err();
        assert!(err.to_string().contains("--interview"), "{err}");
        let err = token_claims(&token_args(Role::Recruiter), 1000).unwrap_err();
        assert!(err.to_string().contains("--org"), "{err}");
        let claims = token_claims(&token_args(Role::Admin), 1000).unwrap();
        assert_eq!(claims.exp, 1060);
    }

    #[test]
    fn mint_token_needs_a_secret_and_verifies() {
        let args = TokenArgs {
            interview: Some("i-1".into()),
            name: Some("Ada".into()),
            ..token_args(Role::Candidate)
        };
        let err = mint_token(&Config::default(), &args).unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");

        let config = Config {
            jwt_secret: Some("a-secret-long-enough-for-the-test-123".into()),
            ..Config::default()
        };
        let token = mint_token(&config, &args).unwrap();
        let claims = Auth::from_config(&config).unwrap().verify(&token).unwrap();
        assert_eq!(claims.interview_id.as_deref(), Some("i-1"));
        assert_eq!(claims.name.as_deref(), Some("Ada"));
    }

    #[test]
    fn dev_banner_has_ready_to_paste_commands() {
        let text = dev_banner(
            "http://127.0.0.1:3001/",
            "i-42",
            "CAND.TOK.EN",
            "REC.TOK.EN",
        );
        assert!(text.contains(r#"websocat "ws://127.0.0.1:3001/interview?token=CAND.TOK.EN""#));
        assert!(text.contains(r#"websocat "ws://127.0.0.1:3001/interview?token=REC.TOK.EN""#));
        assert!(text.contains(r#"{"type":"join-interview","data":{"interviewId":"i-42"}}"#));
        assert!(text.contains(r#"{"type":"observe-interview","data":{"interviewId":"i-42"}}"#));
        assert!(text.contains("websockets.sync.client"));
        assert!(text.contains("http://127.0.0.1:3001/v1/interviews/i-42"));
        assert!(!text.contains('@'), "unfilled placeholder: {text}");
        assert_eq!(ws_base("https://example.com"), "wss://example.com");
    }
}
