//! Bearer tokens: issued by `POST /api/v1/auth/token`, or preset in [`Config::tokens`], and read
//! from the `Authorization: Bearer` header, the `sse_token` cookie or the `token` query parameter
//! (a plain `EventSource` cannot set headers).
//!
//! [`Config::tokens`]: crate::Config::tokens

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use actix_web::http::header;
use actix_web::HttpRequest;

use sse_examples_support::{random_hex, request_token, RandomError, TokenError, TokenSources};

/// The cookie that carries the token for `EventSource` and `<img>` requests.
pub const COOKIE: &str = "sse_token";

/// Token → user.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    map: Mutex<HashMap<String, String>>,
}

/// Why a request is not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthError {
    /// No token anywhere.
    Missing,
    /// An `Authorization` header that is not `Bearer <token>`.
    Malformed,
    /// A token that this server did not issue.
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
    pub(crate) fn with(preset: &[(String, String)]) -> Tokens {
        let t = Tokens::default();
        t.lock().extend(preset.iter().cloned());
        t
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Issues a new random token for `user`.
    pub(crate) fn issue(&self, user: &str) -> Result<String, RandomError> {
        let token = random_hex(24)?;
        self.lock().insert(token.clone(), user.to_owned());
        Ok(token)
    }

    fn user(&self, token: &str) -> Option<String> {
        self.lock().get(token).cloned()
    }

    /// The user of the request: header first, then cookie, then query.
    pub(crate) fn authenticate(&self, req: &HttpRequest) -> Result<String, AuthError> {
        let cookie = req.cookie(COOKIE);
        let sources = TokenSources::new(
            req.headers()
                .get(header::AUTHORIZATION)
                .map(|v| v.as_bytes()),
        )
        .cookie(cookie.as_ref().map(|c| c.value()))
        .query(Some(req.query_string()), &["token"]);
        let token = request_token(&sources).map_err(|e| match e {
            TokenError::Malformed => AuthError::Malformed,
            TokenError::Missing => AuthError::Missing,
        })?;
        self.user(&token).ok_or(AuthError::Invalid)
    }
}
