//! API keys and short-lived stream tokens.
//!
//! A browser's `EventSource` cannot send an `Authorization` header, and the image-to-3D report put its API
//! key in the stream URL's query string — where it ends up in server and proxy access logs,
//! browser history and `Referer` headers, valid for as long as the key is. This app never
//! accepts an API key in a URL. Instead:
//!
//! 1. The page calls `POST /api/v1/stream-tokens` with `Authorization: Bearer <api key>` and
//!    `{"task_id": "…"}`. The server checks that the key's user owns the task and answers a
//!    **stream token**: 32 random bytes (hex), stored server-side with its task, its user and
//!    an expiry ([`Config::stream_token_ttl`](crate::Config::stream_token_ttl), 60 s by
//!    default).
//! 2. The stream URL carries only that token: `GET /api/v1/status/tasks/{id}/stream?token=…`.
//!    A leaked URL is worth one task's progress for a minute, and nothing else: the token
//!    cannot upload, download, or read another task.
//!
//! The token is checked when a stream opens; an open stream continues past the expiry. Within
//! its lifetime a token may open several streams (the browser's own reconnects reuse the URL);
//! after it, the page gets a 401, fetches a new token and reconnects with `lastEventId`.
//! A missing, unknown or expired token gets 401; a token for another task gets 404, as does a
//! task of another user, so that task ids do not leak.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sse_examples_support::{random_hex, RandomError};

/// Random bytes in a stream token.
const TOKEN_BYTES: usize = 32;

/// Most live tokens kept; issuing more first drops expired ones, then the oldest.
const MAX_TOKENS: usize = 100_000;

/// Compares two secrets in time that depends on their lengths only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The configured API keys.
#[derive(Debug)]
pub(crate) struct ApiKeys {
    keys: Vec<(String, String)>,
}

impl ApiKeys {
    pub(crate) fn new(keys: Vec<(String, String)>) -> Self {
        ApiKeys { keys }
    }

    /// The user of `key`, comparing against every configured key in constant time.
    pub(crate) fn user(&self, key: &str) -> Option<&str> {
        let mut found = None;
        for (k, user) in &self.keys {
            if constant_time_eq(k.as_bytes(), key.as_bytes()) && found.is_none() {
                found = Some(user.as_str());
            }
        }
        found
    }
}

/// Why a stream token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenError {
    /// No token, an unknown one, or an expired one (401).
    Invalid,
    /// A valid token for another task (404, like an unknown task).
    OtherTask,
}

#[derive(Debug)]
struct Grant {
    task_id: String,
    user: String,
    expires: Instant,
}

/// The live stream tokens.
#[derive(Debug, Default)]
pub(crate) struct StreamTokens {
    grants: Mutex<HashMap<String, Grant>>,
}

impl StreamTokens {
    /// A new token for `task_id`, valid for `ttl`.
    pub(crate) fn issue(
        &self,
        task_id: &str,
        user: &str,
        ttl: Duration,
    ) -> Result<String, RandomError> {
        let token = random_hex(TOKEN_BYTES)?;
        let now = Instant::now();
        let mut grants = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        if grants.len() >= MAX_TOKENS {
            grants.retain(|_, g| g.expires > now);
        }
        if grants.len() >= MAX_TOKENS {
            if let Some(oldest) = grants
                .iter()
                .min_by_key(|(_, g)| g.expires)
                .map(|(t, _)| t.clone())
            {
                grants.remove(&oldest);
            }
        }
        grants.insert(
            token.clone(),
            Grant {
                task_id: task_id.to_owned(),
                user: user.to_owned(),
                expires: now + ttl,
            },
        );
        Ok(token)
    }

    /// The user `token` was issued to, if it is valid for `task_id` now.
    pub(crate) fn check(&self, token: &str, task_id: &str) -> Result<String, TokenError> {
        let now = Instant::now();
        let mut grants = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        let Some(grant) = grants.get(token) else {
            return Err(TokenError::Invalid);
        };
        if grant.expires <= now {
            grants.remove(token);
            return Err(TokenError::Invalid);
        }
        if grant.task_id != task_id {
            return Err(TokenError::OtherTask);
        }
        Ok(grant.user.clone())
    }

    /// Drops expired tokens.
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        self.grants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, g| g.expires > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_scoped_and_expire() {
        let tokens = StreamTokens::default();
        let t = tokens
            .issue("task-a", "alice", Duration::from_secs(60))
            .unwrap();
        assert_eq!(t.len(), 64);
        assert_eq!(tokens.check(&t, "task-a"), Ok("alice".to_owned()));
        assert_eq!(tokens.check(&t, "task-b"), Err(TokenError::OtherTask));
        assert_eq!(tokens.check("nope", "task-a"), Err(TokenError::Invalid));
        let short = tokens.issue("task-a", "alice", Duration::ZERO).unwrap();
        assert_eq!(tokens.check(&short, "task-a"), Err(TokenError::Invalid));
        tokens.sweep();
        assert_eq!(tokens.check(&t, "task-a"), Ok("alice".to_owned()));
    }

    #[test]
    fn keys() {
        let keys = ApiKeys::new(vec![
            ("k1".into(), "alice".into()),
            ("k2".into(), "bob".into()),
        ]);
        assert_eq!(keys.user("k2"), Some("bob"));
        assert_eq!(keys.user("k3"), None);
        assert_eq!(keys.user(""), None);
    }
}
