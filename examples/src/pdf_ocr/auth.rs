//! Bearer-token authentication.

use axum::http::{header, HeaderMap};

use super::error::JobError;
use super::PdfOcr;

/// Query parameters that may carry the token on stream endpoints (`EventSource` cannot set
/// headers).
const QUERY_TOKEN_NAMES: [&str; 3] = ["token", "access_token", "api_key"];

impl PdfOcr {
    /// The user behind the request's `Authorization: Bearer` header, or (when `query` is given)
    /// behind a `token` query parameter.
    pub(crate) fn authenticate(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<String, JobError> {
        let token = match headers.get(header::AUTHORIZATION) {
            Some(value) => {
                let value = value.to_str().unwrap_or("");
                let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
                if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
                    return Err(JobError::unauthorized(
                        "the Authorization header must be 'Bearer <token>'",
                    ));
                }
                token.trim().to_owned()
            }
            None => query
                .and_then(|q| {
                    QUERY_TOKEN_NAMES
                        .iter()
                        .find_map(|name| sse_core::http::query_param(q, name))
                })
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    JobError::unauthorized(
                        "missing bearer token: send 'Authorization: Bearer <token>'",
                    )
                })?,
        };
        self.inner
            .tokens
            .get(&token)
            .cloned()
            .ok_or_else(|| JobError::unauthorized("invalid or expired token"))
    }
}
