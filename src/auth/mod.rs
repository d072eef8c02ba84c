//! JWT (HS256 only): verifying the tokens clients bring and minting them for
//! `interviewd token`, `serve --dev` and `POST /v1/interviews` join tokens.
//!
//! What `verify` enforces (PROTOCOL section 1):
//! - the header's `alg` is exactly `HS256`; `none`, `HS384`, `RS256` and every
//!   other algorithm are refused with [`AuthError::Algorithm`] before any
//!   signature check (the header is read by hand first, so even algorithms
//!   jsonwebtoken does not know, like `none`, get that answer);
//! - the signature, with the configured key;
//! - `exp` is required and `nbf` is checked when present, with no leeway
//!   ([`LEEWAY_SECS`] = 0): our tokens are minted by the same servers that
//!   check them, and a test that mints an expired token expects it refused;
//! - `iss` and `aud` are checked only when configured (`JWT_ISSUER`,
//!   `JWT_AUDIENCE`); when configured, a token without them is refused;
//! - `sub` and `role` are required, and each role's own claim: `interviewId`
//!   for candidates, `orgId` for recruiters (empty strings count as missing).

use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use interview_actors::protocol::Role;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Config;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 0;

/// The claims of PROTOCOL section 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(
        rename = "interviewId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
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
///
/// `Debug` shows the issuer and audience only, never the key.
#[derive(Clone)]
pub struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Auth {
    pub fn new(secret: &str, issuer: Option<String>, audience: Option<String>) -> Auth {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // Only `exp` is required here; the presence of a configured `iss` /
        // `aud` is checked in `claims_from`, in a fixed order (jsonwebtoken
        // checks required claims in hash-set order).
        validation.set_required_spec_claims(&["exp"]);
        if let Some(iss) = &issuer {
            validation.set_issuer(&[iss]);
        }
        match &audience {
            Some(aud) => validation.set_audience(&[aud]),
            // Not configured: `aud` is not checked at all (jsonwebtoken would
            // otherwise refuse any token that carries one).
            None => validation.validate_aud = false,
        }
        Auth {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            issuer,
            audience,
        }
    }

    /// `JWT_SECRET`, `JWT_ISSUER`, `JWT_AUDIENCE` from the configuration; an
    /// error when `JWT_SECRET` is unset.
    pub fn from_config(config: &Config) -> anyhow::Result<Auth> {
        Ok(Auth::new(
            config.jwt_secret_required()?,
            config.jwt_issuer.clone(),
            config.jwt_audience.clone(),
        ))
    }

    /// Checks signature, algorithm, `exp`, `nbf`, `iss`/`aud` when configured,
    /// and the claims each role requires (`interviewId` for candidates,
    /// `orgId` for recruiters).
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        check_header(token)?;
        let data = jsonwebtoken::decode::<Value>(token, &self.decoding, &self.validation)
            .map_err(|e| map_error(e.into_kind()))?;
        self.claims_from(data.claims)
    }

    /// Signs `claims` (filling `iss`/`aud` when configured and absent).
    ///
    /// It does not check the role's required claims: callers that mint for
    /// users (`interviewd token`, join tokens) check them first; tests may
    /// mint deliberately incomplete tokens.
    pub fn issue(&self, claims: &Claims) -> Result<String, AuthError> {
        let mut claims = claims.clone();
        if claims.iss.is_none() {
            claims.iss = self.issuer.clone();
        }
        if claims.aud.is_none() {
            claims.aud = self.audience.clone();
        }
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| map_error(e.into_kind()))
    }

    /// Turns validated JSON claims into [`Claims`], enforcing `sub`, `role`
    /// and the role's own claim.
    fn claims_from(&self, value: Value) -> Result<Claims, AuthError> {
        let Value::Object(mut object) = value else {
            return Err(AuthError::Malformed);
        };
        match object.get("sub") {
            None | Some(Value::Null) => return Err(AuthError::MissingClaim("sub")),
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err(AuthError::MissingClaim("sub"))
            }
            Some(Value::String(_)) => {}
            Some(_) => return Err(AuthError::Malformed),
        }
        match object.get("role") {
            None | Some(Value::Null) => return Err(AuthError::MissingClaim("role")),
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err(AuthError::MissingClaim("role"))
            }
            // Unknown role strings fail below, when `Claims` is parsed.
            Some(_) => {}
        }
        // Configured issuer/audience: the token must carry them (their values
        // were checked by jsonwebtoken when present).
        let absent = |key: &str| matches!(object.get(key), None | Some(Value::Null));
        if self.issuer.is_some() && absent("iss") {
            return Err(AuthError::MissingClaim("iss"));
        }
        if self.audience.is_some() && absent("aud") {
            return Err(AuthError::MissingClaim("aud"));
        }
        // RFC 7519 allows `aud` to be an array; `Claims` keeps one string:
        // the configured audience if listed (validation made sure it is when
        // configured), else the first entry.
        if let Some(Value::Array(items)) = object.get("aud") {
            let chosen = self
                .audience
                .as_ref()
                .filter(|aud| items.iter().any(|item| item.as_str() == Some(aud.as_str())))
                .cloned()
                .or_else(|| {
                    items
                        .iter()
                        .find_map(|item| item.as_str().map(str::to_string))
                });
            match chosen {
                Some(aud) => object.insert("aud".to_string(), Value::String(aud)),
                None => object.remove("aud"),
            };
        }
        // jsonwebtoken accepts fractional NumericDates; `Claims` wants whole seconds.
        for key in ["exp", "nbf"] {
            if let Some(seconds) = object.get(key).and_then(Value::as_f64) {
                if object.get(key).and_then(Value::as_u64).is_none()
                    && seconds.is_finite()
                    && seconds >= 0.0
                {
                    object.insert(key.to_string(), Value::from(seconds.floor() as u64));
                }
            }
        }
        let claims: Claims =
            serde_json::from_value(Value::Object(object)).map_err(|_| AuthError::Malformed)?;
        let present =
            |claim: &Option<String>| claim.as_deref().is_some_and(|s| !s.trim().is_empty());
        match claims.role {
            Role::Candidate if !present(&claims.interview_id) => {
                Err(AuthError::MissingClaim("interviewId"))
            }
            Role::Recruiter if !present(&claims.org_id) => Err(AuthError::MissingClaim("orgId")),
            _ => Ok(claims),
        }
    }
}

/// Reads the header by hand: three dot-separated parts, a base64url JSON
/// object whose `alg` is exactly `HS256`.
fn check_header(token: &str) -> Result<(), AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed)?;
    let header: Value = serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)?;
    match header.get("alg") {
        Some(Value::String(alg)) if alg == "HS256" => Ok(()),
        Some(Value::String(_)) => Err(AuthError::Algorithm),
        _ => Err(AuthError::Malformed),
    }
}

fn map_error(kind: ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => AuthError::WrongIssuerOrAudience,
        ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(match claim.as_str() {
            "exp" => "exp",
            "iss" => "iss",
            "aud" => "aud",
            "nbf" => "nbf",
            "sub" => "sub",
            _ => "unknown",
        }),
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::InvalidAlgorithmName => AuthError::Algorithm,
        // InvalidToken, Base64, Json, Utf8, InvalidClaimFormat, key errors
        // (impossible with an HMAC key) and whatever later versions add.
        _ => AuthError::Malformed,
    }
}

/// A fresh random HS256 key: 32 bytes from `/dev/urandom`, hex (64
/// characters). Falls back to the random bits of v4 UUIDs (also from the
/// OS's CSPRNG) where `/dev/urandom` cannot be read.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    let from_urandom = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok();
    if !from_urandom {
        for (chunk, uuid) in bytes
            .chunks_mut(16)
            .zip([uuid::Uuid::new_v4(), uuid::Uuid::new_v4()])
        {
            chunk.copy_from_slice(uuid.as_bytes());
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
