//! Bearer-token authentication (the shared [`request_token`] rule: the header, else on stream
//! endpoints a query parameter, since `EventSource` cannot set headers).

use axum::http::{header, HeaderMap};
use sse_examples_support::{request_token, TokenSources};

use crate::error::JobError;
use crate::PdfOcr;

/// Query parameters that may carry the token on stream endpoints.
const QUERY_TOKEN_NAMES: [&str; 3] = ["token", "access_token", "api_key"];

impl PdfOcr {
    /// The user behind the request's `Authorization: Bearer` header, or (when `query` is given)
    /// behind a `token` query parameter.
    pub(crate) fn authenticate(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<String, JobError> {
        let sources = TokenSources::new(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()))
            .query(query, &QUERY_TOKEN_NAMES);
        let token = request_token(&sources).map_err(|e| JobError::unauthorized(e.to_string()))?;
        self.inner
            .tokens
            .get(&token)
            .cloned()
            .ok_or_else(|| JobError::unauthorized("invalid or expired token"))
    }
}
