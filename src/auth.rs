//! JWT (HS256 only): verifying the tokens clients bring and minting them for
//! `interviewd token`, `serve --dev` and `POST /v1/interviews` join tokens.

use interview_actors::protocol::Role;
use serde::{Deserialize, Serialize};

/// The claims of PROTOCOL section 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "interviewId", default, skip_serializing_if = "Option::is_none")]
    pub interview_id: Option<String>,
    #[serde(rename = "orgId", default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// Why a token was refused; the `Display` text is the short close reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuthError {
    #[error("missing token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("bad signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("wrong issuer or audience")]
    WrongIssuerOrAudience,
    #[error("missing claim: {0}")]
    MissingClaim(&'static str),
    #[error("algorithm not allowed")]
    Algorithm,
}

/// Verifies and issues HS256 tokens with one key.
#[derive(Clone)]
pub struct Auth {
    _private: (),
}

impl Auth {
    pub fn new(secret: &str, issuer: Option<String>, audience: Option<String>) -> Auth {
        let _ = (secret, issuer, audience);
        todo!("auth helper fills this in")
    }

    /// Checks signature, algorithm, `exp`, `nbf`, `iss`/`aud` when configured,
    /// and the claims each role requires (`interviewId` for candidates,
    /// `orgId` for recruiters).
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let _ = token;
        todo!()
    }

    /// Signs `claims` (filling `iss`/`aud` when configured and absent).
    pub fn issue(&self, claims: &Claims) -> Result<String, AuthError> {
        let _ = claims;
        todo!()
    }
}
