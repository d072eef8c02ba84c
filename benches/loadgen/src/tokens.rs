//! HS256 JWTs signed with the server's `JWT_SECRET` (PROTOCOL section 1).

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};

/// The organisation every benchmark interview belongs to.
pub const ORG: &str = "org-bench";

#[derive(Clone)]
pub struct Tokens {
    key: EncodingKey,
}

fn exp() -> i64 {
    // Long enough for the longest run; tokens are minted once per client.
    chrono::Utc::now().timestamp() + 12 * 3600
}

impl Tokens {
    pub fn new(secret: &str) -> Tokens {
        Tokens {
            key: EncodingKey::from_secret(secret.as_bytes()),
        }
    }

    /// Every token gets its own `jti`, as a real issuer's would: the
    /// server counts sockets per token (`MAX_SOCKETS_PER_TOKEN`), and two
    /// clients minted in the same second must not share one.
    fn sign(&self, claims: &Value) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let mut claims = claims.clone();
        claims["jti"] = json!(format!("lg-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
        encode(&Header::default(), &claims, &self.key).expect("HS256 signing cannot fail")
    }

    pub fn candidate(&self, interview_id: &str) -> String {
        self.sign(&json!({
            "sub": format!("cand-{interview_id}"), "role": "candidate", "name": "Ada",
            "interviewId": interview_id, "exp": exp(),
        }))
    }

    pub fn recruiter(&self, n: usize) -> String {
        self.sign(&json!({
            "sub": format!("rec-{n}"), "role": "recruiter", "name": "Rita",
            "orgId": ORG, "exp": exp(),
        }))
    }

    pub fn admin(&self) -> String {
        self.sign(&json!({"sub": "bench-admin", "role": "admin", "exp": exp()}))
    }
}
