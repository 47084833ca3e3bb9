//! Bearer tokens: issued by `POST /api/v1/auth/token`, or preset in [`Config::tokens`], and read
//! from the `Authorization: Bearer` header, the `sse_token` cookie or the `token` query parameter
//! (a plain `EventSource` cannot set headers).
//!
//! [`Config::tokens`]: super::Config::tokens

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use actix_web::http::header;
use actix_web::HttpRequest;

use super::util::random_hex;

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
    /// A token that this server did not issue.
    Invalid,
}

impl AuthError {
    pub(crate) fn message(self) -> &'static str {
        match self {
            AuthError::Missing => {
                "authentication required: send `Authorization: Bearer <token>`, the `sse_token` cookie or `?token=`"
            }
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
    pub(crate) fn issue(&self, user: &str) -> String {
        let token = random_hex(24);
        self.lock().insert(token.clone(), user.to_owned());
        token
    }

    fn user(&self, token: &str) -> Option<String> {
        self.lock().get(token).cloned()
    }

    /// The user of the request: header first, then cookie, then query.
    pub(crate) fn authenticate(&self, req: &HttpRequest) -> Result<String, AuthError> {
        let token = bearer(req)
            .or_else(|| req.cookie(COOKIE).map(|c| c.value().to_owned()))
            .or_else(|| sse_core::http::query_param(req.query_string(), "token"))
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        self.user(&token).ok_or(AuthError::Invalid)
    }
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}
