//! Signed, expiring, topic-scoped stream tokens.
//!
//! A browser's `EventSource` cannot send an `Authorization` header, so a stream URL often ends
//! up carrying an API key in its query string, where access logs, browser history and
//! `Referer` headers keep it for as long as the key is valid. A **stream token** is what the
//! page carries instead: minted by the server after a normal authenticated request, good for
//! one user, a few topics and a short time, and verifiable without any server-side state (an
//! HMAC-SHA256 signature over its claims), so every node of a cluster accepts it.
//!
//! ```
//! use std::time::Duration;
//! use sse_token::{Grant, TokenKey};
//!
//! // Once, at startup: 32 random bytes from the OS (or `TokenKey::from_secret` with a secret
//! // shared by every node).
//! let key = TokenKey::generate()?;
//!
//! // After checking the user's API key or session: a token for their job's stream.
//! let token = key.mint(&Grant::new(["job-42"], Duration::from_secs(60)).user("alice"));
//!
//! // In the stream handler: `?token=…`, a `sse_token` cookie, or `Authorization: Bearer …`.
//! let grant = key.verify(&token)?;
//! assert!(grant.allows("job-42"));
//! assert!(!grant.allows("job-43"));
//! assert_eq!(grant.user.as_deref(), Some("alice"));
//! # Ok::<(), sse_token::TokenError>(())
//! ```
//!
//! In a handler, [`TokenKey::authorize`] does the three steps (find the token in the request,
//! verify it, check the topic) and maps every failure to a [`SubscribeError`] with the right
//! status: no token or a bad one → 401, a valid token for another topic → 403.
//!
//! # Format
//!
//! `v1.PAYLOAD.SIGNATURE`: `PAYLOAD` is the claims as JSON (`{"sub", "topics", "exp"}`),
//! `SIGNATURE` the HMAC-SHA256 of `v1.PAYLOAD` under the key, both base64url without padding.
//! The token contains only URL-safe characters. Signatures are compared in constant time;
//! random material comes only from the operating system, and [`TokenKey::generate`] fails
//! rather than fall back to anything weaker.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sse_core::hub::SubscribeError;

/// The query parameter a token is read from.
pub const QUERY_PARAM: &str = "token";
/// The cookie a token is read from.
pub const COOKIE: &str = "sse_token";
/// Shortest secret accepted by [`TokenKey::from_secret`], in bytes.
pub const MIN_SECRET: usize = 32;
/// Longest token [`TokenKey::verify`] reads, in bytes: anything longer is malformed.
const MAX_TOKEN: usize = 4096;
const VERSION: &str = "v1";

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The request carries no token (HTTP 401).
    #[error("no stream token in the request")]
    Missing,
    /// The token is not of this format (HTTP 401).
    #[error("stream token is malformed")]
    Malformed,
    /// The signature does not match: forged, altered, or made with another key (HTTP 401).
    #[error("stream token signature does not match")]
    BadSignature,
    /// The token has expired (HTTP 401: the page fetches a new one and reconnects).
    #[error("stream token has expired")]
    Expired,
    /// A valid token that does not grant this topic (HTTP 403).
    #[error("stream token does not grant this topic")]
    NotForTopic,
    /// A secret shorter than [`MIN_SECRET`] bytes.
    #[error("secret too short: at least {MIN_SECRET} bytes are needed")]
    WeakSecret,
    /// The operating system's random source failed; no key was made.
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

impl TokenError {
    /// The subscribe refusal this maps to: 401 for anything about the token itself, 403 for a
    /// valid token that does not grant the topic.
    pub fn subscribe_error(&self) -> SubscribeError {
        match self {
            TokenError::NotForTopic => SubscribeError::Forbidden,
            _ => SubscribeError::Unauthenticated,
        }
    }
}

impl From<TokenError> for SubscribeError {
    fn from(e: TokenError) -> Self {
        e.subscribe_error()
    }
}

/// What a token grants: who, which topics, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Grant {
    /// The user the token was minted for (passed on as the subscriber's user key).
    pub user: Option<String>,
    /// Topic names granted; a name ending in `*` grants every topic with that prefix.
    pub topics: Vec<String>,
    /// When the token stops being accepted.
    pub expires_at: SystemTime,
}

impl Grant {
    /// A grant for `topics`, valid for `ttl` from now.
    pub fn new<I, S>(topics: I, ttl: Duration) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Grant {
            user: None,
            topics: topics.into_iter().map(Into::into).collect(),
            expires_at: SystemTime::now() + ttl,
        }
    }

    /// The user the token is for.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Whether the grant covers `topic` (exactly, or by a `prefix*` entry).
    pub fn allows(&self, topic: &str) -> bool {
        self.topics.iter().any(|t| match t.strip_suffix('*') {
            Some(prefix) => topic.starts_with(prefix),
            None => t == topic,
        })
    }
}

/// The signed claims.
#[derive(Serialize, Deserialize)]
struct Claims {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    sub: Option<String>,
    topics: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    exp: u64,
}

/// The secret that signs and verifies stream tokens. Its `Debug` output never shows it.
#[derive(Clone)]
pub struct TokenKey {
    /// HMAC-SHA256 keyed with the secret, cloned for each token.
    mac: HmacSha256,
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(<secret>)")
    }
}

impl TokenKey {
    /// A new random key: 32 bytes from the operating system. Tokens it signs are good on this
    /// process only; share a secret with [`TokenKey::from_secret`] across the nodes of a
    /// cluster.
    pub fn generate() -> Result<TokenKey, TokenError> {
        let mut secret = [0u8; MIN_SECRET];
        getrandom::fill(&mut secret).map_err(|e| TokenError::Random(e.to_string()))?;
        TokenKey::from_secret(&secret)
    }

    /// A key from a secret of at least [`MIN_SECRET`] bytes (for example decoded from an
    /// environment variable), so that every node accepts every node's tokens.
    pub fn from_secret(secret: &[u8]) -> Result<TokenKey, TokenError> {
        if secret.len() < MIN_SECRET {
            return Err(TokenError::WeakSecret);
        }
        let mac = HmacSha256::new_from_slice(secret).map_err(|_| TokenError::WeakSecret)?;
        Ok(TokenKey { mac })
    }

    fn mac(&self) -> HmacSha256 {
        self.mac.clone()
    }

    /// A token for `grant`.
    pub fn mint(&self, grant: &Grant) -> String {
        let exp = grant
            .expires_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = Claims {
            sub: grant.user.clone(),
            topics: grant.topics.clone(),
            exp,
        };
        // Serializing strings and numbers cannot fail.
        let json = serde_json::to_vec(&claims).unwrap_or_default();
        let mut token = format!("{VERSION}.{}", URL_SAFE_NO_PAD.encode(json));
        let mut mac = self.mac();
        mac.update(token.as_bytes());
        let sig = mac.finalize().into_bytes();
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(sig));
        token
    }

    /// Verifies `token` now: its signature (in constant time), then its expiry.
    pub fn verify(&self, token: &str) -> Result<Grant, TokenError> {
        self.verify_at(token, SystemTime::now())
    }

    /// Verifies `token` as of `now`.
    pub fn verify_at(&self, token: &str, now: SystemTime) -> Result<Grant, TokenError> {
        if token.len() > MAX_TOKEN {
            return Err(TokenError::Malformed);
        }
        let (signed, sig) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (version, payload) = signed.split_once('.').ok_or(TokenError::Malformed)?;
        if version != VERSION {
            return Err(TokenError::Malformed);
        }
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        mac.verify_slice(&sig)
            .map_err(|_| TokenError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        let expires_at = UNIX_EPOCH + Duration::from_secs(claims.exp);
        if now >= expires_at {
            return Err(TokenError::Expired);
        }
        Ok(Grant {
            user: claims.sub,
            topics: claims.topics,
            expires_at,
        })
    }

    /// The stream handler's check: finds the token in the request ([`token_from_request`]),
    /// verifies it and checks that it grants `topic`. The grant's user is the subscriber's
    /// user key (`SubscribeOptions::user`), for the hub's per-user limits and access hook.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::HeaderMap;
    /// use sse_core::hub::SubscribeError;
    /// use sse_token::{Grant, TokenKey};
    ///
    /// let key = TokenKey::generate()?;
    /// let token = key.mint(&Grant::new(["job-7"], Duration::from_secs(60)).user("bob"));
    /// let query = format!("token={token}");
    /// let grant = key.authorize(&HeaderMap::new(), Some(&query), "job-7")?;
    /// assert_eq!(grant.user.as_deref(), Some("bob"));
    /// let refused = key.authorize(&HeaderMap::new(), Some(&query), "job-8").unwrap_err();
    /// assert_eq!(SubscribeError::from(refused), SubscribeError::Forbidden);
    /// # Ok::<(), sse_token::TokenError>(())
    /// ```
    pub fn authorize(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
        topic: &str,
    ) -> Result<Grant, TokenError> {
        let token = token_from_request(headers, query).ok_or(TokenError::Missing)?;
        let grant = self.verify(&token)?;
        if !grant.allows(topic) {
            return Err(TokenError::NotForTopic);
        }
        Ok(grant)
    }
}

/// The token a request carries: `Authorization: Bearer …`, else the `token` query parameter
/// (what an `EventSource` URL can carry), else the `sse_token` cookie. Empty values count as
/// absent.
pub fn token_from_request(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let bearer = headers
        .get_all(http::header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    if let Some(t) = bearer.filter(|t| !t.is_empty()) {
        return Some(t.to_owned());
    }
    if let Some(t) = query.and_then(|q| sse_core::http::query_param(q, QUERY_PARAM)) {
        if !t.is_empty() {
            return Some(t);
        }
    }
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE && !c.value().is_empty())
        .map(|c| c.value().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TokenKey {
        TokenKey::from_secret(&[7u8; 32]).unwrap()
    }

    #[test]
    fn a_minted_token_verifies_and_carries_its_grant() {
        let k = key();
        let g = Grant::new(["a", "jobs-*"], Duration::from_secs(60)).user("u");
        let t = k.mint(&g);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
        let v = k.verify(&t).unwrap();
        assert_eq!(v.user.as_deref(), Some("u"));
        assert!(v.allows("a") && v.allows("jobs-1") && !v.allows("b") && !v.allows("job"));
    }

    #[test]
    fn an_altered_token_or_another_key_is_refused() {
        let k = key();
        let t = k.mint(&Grant::new(["a"], Duration::from_secs(60)));
        let other = TokenKey::from_secret(&[8u8; 32]).unwrap();
        assert_eq!(other.verify(&t), Err(TokenError::BadSignature));
        // Grant another topic by editing the payload: the signature no longer matches.
        let (head, sig) = t.rsplit_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"topics":["*"],"exp":99999999999}"#);
        let forged = format!("v1.{forged_payload}.{sig}");
        assert_eq!(k.verify(&forged), Err(TokenError::BadSignature));
        assert_eq!(
            k.verify(&format!("{head}.AAAA")),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn an_expired_token_is_refused() {
        let k = key();
        let t = k.mint(&Grant::new(["a"], Duration::from_secs(60)));
        let later = SystemTime::now() + Duration::from_secs(61);
        assert_eq!(k.verify_at(&t, later), Err(TokenError::Expired));
    }

    #[test]
    fn malformed_tokens_are_refused_without_panicking() {
        let k = key();
        for t in [
            "",
            ".",
            "v1..",
            "v2.e30.AAAA",
            "v1.%%%.AAAA",
            "no-dots",
            &"x".repeat(5000),
        ] {
            let e = k.verify(t).unwrap_err();
            assert!(
                matches!(e, TokenError::Malformed | TokenError::BadSignature),
                "{t:?}: {e}"
            );
        }
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(
            TokenKey::from_secret(b"short").unwrap_err(),
            TokenError::WeakSecret
        );
        assert!(format!("{:?}", key()).contains("<secret>"));
    }

    #[test]
    fn tokens_are_found_in_the_header_the_query_or_the_cookie() {
        let mut h = HeaderMap::new();
        assert_eq!(
            token_from_request(&h, Some("token=q1&x=2")).as_deref(),
            Some("q1")
        );
        h.insert(http::header::COOKIE, "a=1; sse_token=c1".parse().unwrap());
        assert_eq!(token_from_request(&h, None).as_deref(), Some("c1"));
        assert_eq!(
            token_from_request(&h, Some("token=q1")).as_deref(),
            Some("q1")
        );
        h.insert(http::header::AUTHORIZATION, "Bearer b1".parse().unwrap());
        assert_eq!(
            token_from_request(&h, Some("token=q1")).as_deref(),
            Some("b1")
        );
        assert_eq!(token_from_request(&HeaderMap::new(), Some("token=")), None);
    }

    #[test]
    fn refusals_map_to_401_and_403() {
        let k = key();
        let h = HeaderMap::new();
        assert_eq!(
            k.authorize(&h, None, "a").unwrap_err().subscribe_error(),
            SubscribeError::Unauthenticated
        );
        let t = k.mint(&Grant::new(["a"], Duration::from_secs(60)));
        let q = format!("token={t}");
        assert!(k.authorize(&h, Some(&q), "a").is_ok());
        assert_eq!(
            k.authorize(&h, Some(&q), "b")
                .unwrap_err()
                .subscribe_error(),
            SubscribeError::Forbidden
        );
    }
}
