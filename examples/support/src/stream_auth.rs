//! Stream authentication on [`sse_token`]: one rule for every app's event streams.
//!
//! The token is found by [`sse_token::token_from_request`] (`Authorization: Bearer`, else
//! `?token=`, else the `sse_token` cookie). A signed stream token (`v1.…`, minted by
//! [`StreamAuth::mint`] after a normal authenticated request) is verified for the stream's topic:
//! stateless, expiring, good for the topics it names. An app whose field report's clients open
//! streams with their API token may also accept that ([`StreamAuth::authenticate`] with a
//! lookup), and then checks ownership itself.

use std::time::Duration;

use http::HeaderMap;
use sse_token::{Grant, TokenError, TokenKey};

use crate::ApiError;

/// Environment variable with a shared secret (at least 32 bytes) for stream tokens, so that
/// every node of a cluster accepts every node's tokens. Without it each process makes a random
/// key at startup.
pub const SECRET_ENV: &str = "SSE_STREAM_TOKEN_SECRET";

/// Who a stream request is, and how that was established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamUser {
    /// The user (the token's `sub`, or the API token's user).
    pub user: String,
    /// Whether a signed stream token said so (it has then already been checked for the topic).
    pub stream_token: bool,
}

/// The key and lifetime of an app's stream tokens.
#[derive(Debug, Clone)]
pub struct StreamAuth {
    key: TokenKey,
    ttl: Duration,
}

/// Why stream authentication could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum StreamAuthError {
    /// The key could not be made (no OS randomness, or a secret shorter than 32 bytes).
    #[error("stream token key: {0}")]
    Key(#[from] TokenError),
}

impl StreamAuth {
    /// Tokens signed with `key`, each valid for `ttl`.
    pub fn new(key: TokenKey, ttl: Duration) -> StreamAuth {
        StreamAuth { key, ttl }
    }

    /// The key from [`SECRET_ENV`] if set (a cluster), else a random one (this process only).
    pub fn from_env(ttl: Duration) -> Result<StreamAuth, StreamAuthError> {
        let key = match std::env::var(SECRET_ENV) {
            Ok(secret) if !secret.is_empty() => TokenKey::from_secret(secret.as_bytes())?,
            _ => TokenKey::generate()?,
        };
        Ok(StreamAuth::new(key, ttl))
    }

    /// How long a minted token is valid.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A stream token for `user` and `topics` (a topic ending in `*` grants a prefix).
    pub fn mint<I, S>(&self, user: &str, topics: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.key.mint(&Grant::new(topics, self.ttl).user(user))
    }

    /// Verifies a stream token by itself (no topic check).
    pub fn verify(&self, token: &str) -> Result<Grant, ApiError> {
        self.key.verify(token).map_err(|e| refusal(&e))
    }

    /// The request's stream token, verified for `topic`: 401 without one or with a bad or
    /// expired one, 403 for a valid token of another topic.
    pub fn authorize(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
        topic: &str,
    ) -> Result<StreamUser, ApiError> {
        let grant = self
            .key
            .authorize(headers, query, topic)
            .map_err(|e| refusal(&e))?;
        Ok(StreamUser {
            user: grant.user.unwrap_or_default(),
            stream_token: true,
        })
    }

    /// A stream token verified for `topic`, or else (for the field reports' clients) an API
    /// token that `api_user` knows; the app checks that user's ownership of the topic.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
        topic: &str,
        api_user: impl FnOnce(&str) -> Option<String>,
    ) -> Result<StreamUser, ApiError> {
        let token = sse_token::token_from_request(headers, query)
            .ok_or_else(|| refusal(&TokenError::Missing))?;
        if is_stream_token(&token) {
            return self.authorize(headers, query, topic);
        }
        api_user(&token)
            .map(|user| StreamUser {
                user,
                stream_token: false,
            })
            .ok_or_else(|| ApiError::unauthorized("invalid or expired token"))
    }
}

/// Whether `token` has the shape of a signed stream token (`v1.PAYLOAD.SIGNATURE`).
pub fn is_stream_token(token: &str) -> bool {
    token.starts_with("v1.") && token.matches('.').count() == 2
}

/// The refusal for a token error: 401 (with `WWW-Authenticate`) or 403, naming the problem.
pub fn refusal(e: &TokenError) -> ApiError {
    match e {
        TokenError::NotForTopic => ApiError::forbidden(e.to_string()),
        TokenError::Missing => ApiError::unauthorized(
            "authentication required: send `Authorization: Bearer <token>`, `?token=<token>` or the `sse_token` cookie",
        ),
        _ => ApiError::unauthorized(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> StreamAuth {
        StreamAuth::new(
            TokenKey::from_secret(&[3u8; 32]).expect("key"),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn a_stream_token_opens_its_topic_only() {
        let a = auth();
        let t = a.mint("alice", ["job-1"]);
        assert!(is_stream_token(&t));
        let q = format!("token={t}");
        let u = a
            .authorize(&HeaderMap::new(), Some(&q), "job-1")
            .expect("granted");
        assert_eq!(u.user, "alice");
        assert!(u.stream_token);
        let e = a
            .authorize(&HeaderMap::new(), Some(&q), "job-2")
            .unwrap_err();
        assert_eq!(e.status().as_u16(), 403);
        let e = a.authorize(&HeaderMap::new(), None, "job-1").unwrap_err();
        assert_eq!(e.status().as_u16(), 401);
    }

    #[test]
    fn an_api_token_is_looked_up_and_an_unknown_one_refused() {
        let a = auth();
        let lookup = |t: &str| (t == "demo-token").then(|| "demo".to_owned());
        let u = a
            .authenticate(&HeaderMap::new(), Some("token=demo-token"), "x", lookup)
            .expect("api token");
        assert_eq!(u.user, "demo");
        assert!(!u.stream_token);
        let e = a
            .authenticate(&HeaderMap::new(), Some("token=nope"), "x", lookup)
            .unwrap_err();
        assert_eq!(e.status().as_u16(), 401);
        // A forged stream token is never looked up as an API token.
        let e = a
            .authenticate(&HeaderMap::new(), Some("token=v1.e30.AAAA"), "x", |_| {
                Some("anyone".to_owned())
            })
            .unwrap_err();
        assert_eq!(e.status().as_u16(), 401);
    }
}
