use super::*;
use serde_json::json;

const SECRET: &str = "test-secret-test-secret-test-secret!";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with any header and payload, HS256-signed with `secret`.
fn raw_token(header: &Value, payload: &str, secret: &str) -> String {
    let message = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.as_bytes())
    );
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(secret.as_bytes()),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

fn hs256(payload: &Value) -> String {
    raw_token(
        &json!({"alg":"HS256","typ":"JWT"}),
        &payload.to_string(),
        SECRET,
    )
}

fn candidate() -> Claims {
    Claims {
        sub: "u-1".into(),
        role: Role::Candidate,
        name: Some("Ada".into()),
        interview_id: Some("i-1".into()),
        org_id: None,
        exp: now_secs() + 600,
        nbf: None,
        iss: None,
        aud: None,
    }
}

fn auth() -> Auth {
    Auth::new(SECRET, None, None)
}

#[test]
fn round_trip() {
    let auth = auth();
    let claims = candidate();
    let token = auth.issue(&claims).unwrap();
    assert_eq!(auth.verify(&token).unwrap(), claims);

    let recruiter = Claims {
        role: Role::Recruiter,
        interview_id: None,
        org_id: Some("org-1".into()),
        nbf: Some(now_secs() - 5),
        ..candidate()
    };
    let token = auth.issue(&recruiter).unwrap();
    assert_eq!(auth.verify(&token).unwrap(), recruiter);

    let admin = Claims {
        role: Role::Admin,
        interview_id: None,
        ..candidate()
    };
    assert_eq!(auth.verify(&auth.issue(&admin).unwrap()).unwrap(), admin);
}

#[test]
fn issuer_and_audience_round_trip_when_configured() {
    let auth = Auth::new(SECRET, Some("interviewd".into()), Some("interviews".into()));
    let token = auth.issue(&candidate()).unwrap();
    let claims = auth.verify(&token).unwrap();
    assert_eq!(claims.iss.as_deref(), Some("interviewd"));
    assert_eq!(claims.aud.as_deref(), Some("interviews"));

    // An array audience naming us is fine.
    let mut payload = serde_json::to_value(candidate()).unwrap();
    payload["iss"] = json!("interviewd");
    payload["aud"] = json!(["someone-else", "interviews"]);
    assert_eq!(
        auth.verify(&hs256(&payload)).unwrap().aud.as_deref(),
        Some("interviews")
    );
}

#[test]
fn missing_token() {
    assert_eq!(auth().verify(""), Err(AuthError::Missing));
    assert_eq!(auth().verify("  "), Err(AuthError::Missing));
}

#[test]
fn malformed_tokens() {
    let auth = auth();
    for token in ["abc", "a.b", "a.b.c", "a.b.c.d", "!!!.???.###"] {
        assert_eq!(auth.verify(token), Err(AuthError::Malformed), "{token}");
    }
    // Correctly signed, but the payload is not JSON.
    let token = raw_token(&json!({"alg":"HS256"}), "not json", SECRET);
    assert_eq!(auth.verify(&token), Err(AuthError::Malformed));
    // Header without `alg`.
    let token = raw_token(&json!({"typ":"JWT"}), "{}", SECRET);
    assert_eq!(auth.verify(&token), Err(AuthError::Malformed));
    // Unknown role.
    let mut payload = serde_json::to_value(candidate()).unwrap();
    payload["role"] = json!("superuser");
    assert_eq!(auth.verify(&hs256(&payload)), Err(AuthError::Malformed));
    // `sub` of the wrong type.
    let mut payload = serde_json::to_value(candidate()).unwrap();
    payload["sub"] = json!(42);
    assert_eq!(auth.verify(&hs256(&payload)), Err(AuthError::Malformed));
}

#[test]
fn bad_signature() {
    let token = Auth::new("another-secret", None, None)
        .issue(&candidate())
        .unwrap();
    assert_eq!(auth().verify(&token), Err(AuthError::BadSignature));

    // Tampered payload: same header and signature, different claims.
    let token = auth().issue(&candidate()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let forged = Claims {
        interview_id: Some("i-2".into()),
        ..candidate()
    };
    let forged_payload = b64(serde_json::to_string(&forged).unwrap().as_bytes());
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_eq!(auth().verify(&tampered), Err(AuthError::BadSignature));
}

#[test]
fn expired() {
    let claims = Claims {
        exp: now_secs() - 10,
        ..candidate()
    };
    let token = auth().issue(&claims).unwrap();
    assert_eq!(auth().verify(&token), Err(AuthError::Expired));
}

#[test]
fn exp_is_required() {
    let mut payload = serde_json::to_value(candidate()).unwrap();
    payload.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        auth().verify(&hs256(&payload)),
        Err(AuthError::MissingClaim("exp"))
    );
}

#[test]
fn not_yet_valid() {
    let claims = Claims {
        nbf: Some(now_secs() + 100),
        ..candidate()
    };
    let token = auth().issue(&claims).unwrap();
    assert_eq!(auth().verify(&token), Err(AuthError::NotYetValid));
}

#[test]
fn other_algorithms_are_refused() {
    let payload = serde_json::to_string(&candidate()).unwrap();
    // Hand-made `alg: none`, with and without a signature part.
    let unsigned = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(payload.as_bytes())
    );
    assert_eq!(auth().verify(&unsigned), Err(AuthError::Algorithm));
    let unsigned = format!("{unsigned}c2ln");
    assert_eq!(auth().verify(&unsigned), Err(AuthError::Algorithm));

    // HS384 with the right key is still refused.
    let hs384 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS384),
        &candidate(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(auth().verify(&hs384), Err(AuthError::Algorithm));

    // RS256 header (the classic key-confusion attack) and lowercase hs256.
    for alg in ["RS256", "ES256", "hs256", "HS512"] {
        let token = raw_token(&json!({"alg": alg, "typ":"JWT"}), &payload, SECRET);
        assert_eq!(auth().verify(&token), Err(AuthError::Algorithm), "{alg}");
    }
}

#[test]
fn role_claims_are_required() {
    let auth = auth();
    let no_interview = Claims {
        interview_id: None,
        ..candidate()
    };
    assert_eq!(
        auth.verify(&auth.issue(&no_interview).unwrap()),
        Err(AuthError::MissingClaim("interviewId"))
    );
    let empty_interview = Claims {
        interview_id: Some(String::new()),
        ..candidate()
    };
    assert_eq!(
        auth.verify(&auth.issue(&empty_interview).unwrap()),
        Err(AuthError::MissingClaim("interviewId"))
    );
    let no_org = Claims {
        role: Role::Recruiter,
        org_id: None,
        ..candidate()
    };
    assert_eq!(
        auth.verify(&auth.issue(&no_org).unwrap()),
        Err(AuthError::MissingClaim("orgId"))
    );

    let mut payload = serde_json::to_value(candidate()).unwrap();
    payload.as_object_mut().unwrap().remove("sub");
    assert_eq!(
        auth.verify(&hs256(&payload)),
        Err(AuthError::MissingClaim("sub"))
    );
    let mut payload = serde_json::to_value(candidate()).unwrap();
    payload.as_object_mut().unwrap().remove("role");
    assert_eq!(
        auth.verify(&hs256(&payload)),
        Err(AuthError::MissingClaim("role"))
    );
    let empty_sub = Claims {
        sub: " ".into(),
        ..candidate()
    };
    assert_eq!(
        auth.verify(&auth.issue(&empty_sub).unwrap()),
        Err(AuthError::MissingClaim("sub"))
    );
}

#[test]
fn issuer_and_audience_mismatch() {
    let configured = Auth::new(SECRET, Some("interviewd".into()), Some("interviews".into()));
    let wrong_iss = Claims {
        iss: Some("someone-else".into()),
        ..candidate()
    };
    assert_eq!(
        configured.verify(&configured.issue(&wrong_iss).unwrap()),
        Err(AuthError::WrongIssuerOrAudience)
    );
    let wrong_aud = Claims {
        aud: Some("other-app".into()),
        ..candidate()
    };
    assert_eq!(
        configured.verify(&configured.issue(&wrong_aud).unwrap()),
        Err(AuthError::WrongIssuerOrAudience)
    );

    // Configured, and the token lacks them: refused.
    let bare = auth().issue(&candidate()).unwrap();
    assert_eq!(
        configured.verify(&bare),
        Err(AuthError::MissingClaim("iss"))
    );
    let only_iss = Auth::new(SECRET, Some("interviewd".into()), None)
        .issue(&candidate())
        .unwrap();
    assert_eq!(
        configured.verify(&only_iss),
        Err(AuthError::MissingClaim("aud"))
    );

    // Not configured: any iss/aud is accepted.
    let foreign = auth().issue(&Claims {
        iss: Some("x".into()),
        aud: Some("y".into()),
        ..candidate()
    });
    assert!(auth().verify(&foreign.unwrap()).is_ok());
}

#[test]
fn errors_read_as_close_reasons() {
    assert_eq!(AuthError::Expired.to_string(), "token expired");
    assert_eq!(
        AuthError::MissingClaim("interviewId").to_string(),
        "missing claim: interviewId"
    );
}

#[test]
fn secrets_are_random_hex() {
    let a = generate_secret();
    let b = generate_secret();
    assert_eq!(a.len(), 64);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
}

#[test]
fn debug_hides_the_key() {
    let text = format!("{:?}", Auth::new(SECRET, Some("iss".into()), None));
    assert!(!text.contains(SECRET), "{text}");
}
