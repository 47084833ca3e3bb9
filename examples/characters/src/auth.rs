//! Bearer tokens: preset in [`Config::tokens`], or issued by the demo login
//! `POST /api/v1/auth/token` when [`Config::insecure_demo_login`] is on; read from the
//! `Authorization: Bearer` header, the `sse_token` cookie or the `token` query parameter (a plain
//! `EventSource` cannot set headers).
//!
//! Issued tokens expire after [`Config::login_token_ttl`], and the table holds at most
//! [`Config::max_login_tokens`] of them: expired ones are dropped first, then the oldest.
//!
//! [`Config::tokens`]: crate::Config::tokens
//! [`Config::insecure_demo_login`]: crate::Config::insecure_demo_login
//! [`Config::login_token_ttl`]: crate::Config::login_token_ttl
//! [`Config::max_login_tokens`]: crate::Config::max_login_tokens

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::HttpRequest;

use sse_examples_support::{random_hex, request_token, RandomError, TokenError, TokenSources};

/// The cookie that carries the token for `EventSource` and `<img>` requests.
pub const COOKIE: &str = "sse_token";

/// An issued token's user and end of validity.
#[derive(Debug)]
struct Issued {
    user: String,
    expires: Instant,
}

#[derive(Debug, Default)]
struct Table {
    /// Preset tokens: never expire, never evicted.
    preset: HashMap<String, String>,
    /// Tokens issued by the demo login.
    issued: HashMap<String, Issued>,
    /// Issued tokens, oldest first (every token has the same lifetime, so also soonest to
    /// expire first). May hold tokens already gone from `issued`.
    order: VecDeque<String>,
}

/// Token → user.
#[derive(Debug)]
pub(crate) struct Tokens {
    table: Mutex<Table>,
    ttl: Duration,
    max_issued: usize,
}

/// Why a request is not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthError {
    /// No token anywhere.
    Missing,
    /// An `Authorization` header that is not `Bearer <token>`.
    Malformed,
    /// A token that this server did not issue, or one that has expired.
    Invalid,
}

impl AuthError {
    pub(crate) fn message(self) -> &'static str {
        match self {
            AuthError::Missing => {
                "authentication required: send `Authorization: Bearer <token>`, the `sse_token` cookie or `?token=`"
            }
            AuthError::Malformed => "the Authorization header must be 'Bearer <token>'",
            AuthError::Invalid => "invalid or expired token",
        }
    }
}

/// Whether `user` is an acceptable user name.
pub(crate) fn valid_user(user: &str) -> bool {
    (1..=32).contains(&user.len())
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

impl Tokens {
    /// The preset `(token, user)` pairs, and room for `max_issued` issued tokens valid for `ttl`.
    pub(crate) fn new(preset: &[(String, String)], ttl: Duration, max_issued: usize) -> Tokens {
        let table = Table {
            preset: preset.iter().cloned().collect(),
            ..Table::default()
        };
        Tokens {
            table: Mutex::new(table),
            ttl,
            max_issued: max_issued.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Issues a new random token for `user`, valid for the configured lifetime. When the table
    /// is full, expired tokens are dropped, then the oldest.
    pub(crate) fn issue(&self, user: &str) -> Result<String, RandomError> {
        let token = random_hex(24)?;
        let now = Instant::now();
        let mut t = self.lock();
        // Expired tokens at the front go first (bounded by the queue's length).
        while let Some(front) = t.order.front() {
            let gone = t.issued.get(front).is_none_or(|i| i.expires <= now);
            if !gone && t.issued.len() < self.max_issued {
                break;
            }
            if let Some(old) = t.order.pop_front() {
                t.issued.remove(&old);
            }
        }
        t.issued.insert(
            token.clone(),
            Issued {
                user: user.to_owned(),
                expires: now + self.ttl,
            },
        );
        t.order.push_back(token.clone());
        Ok(token)
    }

    /// Issued tokens held now (expired ones included until they are dropped).
    pub(crate) fn issued_len(&self) -> usize {
        self.lock().issued.len()
    }

    /// The user of `token`, if it is a preset one or an issued one that has not expired.
    pub(crate) fn user(&self, token: &str) -> Option<String> {
        let t = self.lock();
        if let Some(u) = t.preset.get(token) {
            return Some(u.clone());
        }
        t.issued
            .get(token)
            .filter(|i| i.expires > Instant::now())
            .map(|i| i.user.clone())
    }

    /// The request's token: header first, then cookie, then query.
    pub(crate) fn token(req: &HttpRequest) -> Result<String, AuthError> {
        let cookie = req.cookie(COOKIE);
        let sources = TokenSources::new(
            req.headers()
                .get(header::AUTHORIZATION)
                .map(|v| v.as_bytes()),
        )
        .cookie(cookie.as_ref().map(|c| c.value()))
        .query(Some(req.query_string()), &["token"]);
        request_token(&sources).map_err(|e| match e {
            TokenError::Malformed => AuthError::Malformed,
            TokenError::Missing => AuthError::Missing,
        })
    }

    /// The user of the request.
    pub(crate) fn authenticate(&self, req: &HttpRequest) -> Result<String, AuthError> {
        let token = Self::token(req)?;
        self.user(&token).ok_or(AuthError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_token_expires_and_a_preset_one_does_not() {
        let t = Tokens::new(
            &[("p".into(), "preset".into())],
            Duration::from_millis(30),
            10,
        );
        let a = t.issue("alice").expect("issue");
        assert_eq!(t.user(&a).as_deref(), Some("alice"));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(t.user(&a), None);
        assert_eq!(t.user("p").as_deref(), Some("preset"));
    }

    #[test]
    fn the_table_keeps_the_newest_tokens_when_full() {
        let t = Tokens::new(&[], Duration::from_secs(3600), 3);
        let first = t.issue("a").expect("issue");
        let rest: Vec<String> = (0..3).map(|_| t.issue("b").expect("issue")).collect();
        assert_eq!(t.issued_len(), 3);
        assert_eq!(t.user(&first), None);
        assert!(rest.iter().all(|k| t.user(k).is_some()));
    }
}
