//! Bearer tokens (header or `?token=`, the shared [`request_token`] rule) and the JSON errors
//! of the API (the shared [`ApiError`], answered as `{"error": reason}`).

use axum::http::{header, HeaderMap, StatusCode};
pub(crate) use sse_examples_support::ApiError;
use sse_examples_support::{request_token, TokenError, TokenSources};

use crate::ResumeScreener;

/// The user of the request's token (`401` without a valid one).
pub(crate) fn user(
    app: &ResumeScreener,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<String, ApiError> {
    let sources = TokenSources::new(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()))
        .query(query, &["token"]);
    let token = request_token(&sources).map_err(|e| match e {
        TokenError::Missing => ApiError::unauthorized(
            "authentication required: send `Authorization: Bearer <token>` or `?token=<token>`",
        ),
        TokenError::Malformed => ApiError::unauthorized(e.to_string()),
    })?;
    app.user_of(&token)
        .map(str::to_owned)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "invalid token"))
}

/// The user of the request's token, who must be `user_id` (`403` otherwise: a user reaches only
/// their own data, and the answer is the same whether `user_id` exists or not).
pub(crate) fn owner(
    app: &ResumeScreener,
    headers: &HeaderMap,
    query: Option<&str>,
    user_id: &str,
) -> Result<String, ApiError> {
    let user = user(app, headers, query)?;
    if user != user_id {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden: this token belongs to another user",
        ));
    }
    Ok(user)
}
