use super::*;

fn body(questions: &[&str]) -> CreateBody {
    CreateBody {
        candidate_name: " Ada ".into(),
        candidate_id: None,
        title: "Backend".into(),
        questions: questions
            .iter()
            .map(|t| QuestionBody {
                text: (*t).into(),
                kind: None,
            })
            .collect(),
        duration_minutes: None,
        org_id: None,
    }
}

#[test]
fn create_bodies_are_validated() {
    let ok = validate(body(&["Why us?"]), "org".into()).unwrap();
    assert_eq!(ok.candidate_name, "Ada");
    assert!(ok.candidate_id.starts_with("cand-"));
    assert_eq!(ok.questions, [("Why us?".to_owned(), "GENERAL".to_owned())]);
    assert_eq!(ok.duration_minutes, DEFAULT_DURATION_MINUTES);
    for bad in [body(&[]), body(&[" "]), body(&["q"; MAX_QUESTIONS + 1])] {
        assert_eq!(
            validate(bad, "org".into()).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }
    let mut no_name = body(&["q"]);
    no_name.candidate_name = String::new();
    assert!(validate(no_name, "org".into()).is_err());
}

#[test]
fn ws_urls_follow_public_url_or_the_local_address() {
    let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
    let local = addr("10.0.0.5:3001");
    assert_eq!(ws_base(Some("https://x.io/"), local), "wss://x.io");
    assert_eq!(ws_base(Some("http://x.io"), local), "ws://x.io");
    assert_eq!(ws_base(None, local), "ws://10.0.0.5:3001");
    assert_eq!(ws_base(None, addr("0.0.0.0:3001")), "ws://127.0.0.1:3001");
    assert_eq!(ws_base(None, addr("[::]:3001")), "ws://[::1]:3001");
    assert_eq!(
        ws_base(None, addr("[::ffff:10.0.0.5]:80")),
        "ws://10.0.0.5:80"
    );
    assert_eq!(ws_base(None, addr("[fe80::1]:3001")), "ws://[fe80::1]:3001");
}
