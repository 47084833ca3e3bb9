//! Bearer tokens (header or `?token=`) and the JSON errors of the API.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::ResumeScreener;

/// A refused request: a status and a one-line reason, sent as `{"error": reason}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }
}

/// The request's token: `Authorization: Bearer <token>`, else the `token` query parameter.
fn token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim().to_owned())
        });
    bearer
        .or_else(|| sse_core::http::query_param(query?, "token"))
        .filter(|t| !t.is_empty())
}

/// The user of the request's token (`401` without a valid one).
pub(crate) fn user(
    app: &ResumeScreener,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<String, ApiError> {
    let Some(token) = token(headers, query) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication required: send `Authorization: Bearer <token>` or `?token=<token>`",
        ));
    };
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
