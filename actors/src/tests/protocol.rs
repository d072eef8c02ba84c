use super::*;

#[test]
fn parse_rejects_other_roles_types_as_invalid_message() {
    let err = parse_client_frame(
        r#"{"type":"observe-interview","data":{"interviewId":"x"}}"#,
        Role::Candidate,
    )
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidMessage);
    let ok = parse_client_frame(
        r#"{"type":"observe-interview","data":{"interviewId":"x","lastSeq":4},"ref":"r1"}"#,
        Role::Recruiter,
    )
    .unwrap();
    assert_eq!(ok.reference.as_deref(), Some("r1"));
    assert_eq!(
        ok.command,
        ClientCommand::ObserveInterview {
            interview_id: "x".into(),
            last_seq: Some(4)
        }
    );
}

#[test]
fn parse_names_the_bad_field() {
    let err = parse_client_frame(
        r#"{"type":"proctor-event","data":{"type":"bogus","severity":"low"}}"#,
        Role::Candidate,
    )
    .unwrap_err();
    assert!(err.message.contains("data.type"), "{}", err.message);
    assert!(parse_client_frame("[1]", Role::Candidate).is_err());
    assert!(parse_client_frame(r#"{"data":{}}"#, Role::Candidate).is_err());
}
