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

    assert!(Cli::try_parse_from(["interviewd", "token", "--role", "boss", "--sub", "u"]).is_err());
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
