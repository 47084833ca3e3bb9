//! A refused request, answered as JSON: one type for every app and framework.

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::StatusCode;
use serde_json::{Map, Value};

/// A refused request: an HTTP status and a one-line reason, answered as
/// `{"error": reason, …fields}` with `Cache-Control: no-store`, `WWW-Authenticate: Bearer` on a
/// 401 and `Retry-After` (5 s unless [`ApiError::retry_after`] says otherwise) on a 429 or a 503. Each app adds the fields its field report's clients
/// read (such as `"success": false`) with [`ApiError::with`].
///
/// It becomes a response with [`ApiError::to_http`] (hyper), or as an axum `IntoResponse`
/// (feature `axum`) or an actix-web `ResponseError` (feature `actix`).
///
/// ```
/// use http::StatusCode;
/// use sse_examples_support::ApiError;
/// let e = ApiError::not_found("job not found").with("success", false);
/// assert_eq!(e.status(), StatusCode::NOT_FOUND);
/// assert_eq!(e.body(), serde_json::json!({"error": "job not found", "success": false}));
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    status: StatusCode,
    message: String,
    fields: Map<String, Value>,
    retry_after: u64,
}

/// Seconds a client waits before retrying a 429 or a 503, unless the refusal says otherwise.
const RETRY_AFTER_SECONDS: u64 = 5;

impl ApiError {
    /// A refusal with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            fields: Map::new(),
            retry_after: RETRY_AFTER_SECONDS,
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401 (answered with `WWW-Authenticate: Bearer`).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 500.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// 503 (answered with `Retry-After`).
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// 429 (answered with `Retry-After`): this client has too much work in flight.
    pub fn too_many(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, message)
    }

    /// The `Retry-After` of a 429 or 503, in seconds (at least 1).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = seconds.max(1);
        self
    }

    /// Adds (or replaces) a field of the JSON body; `error` itself stays the message.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        if key != "error" {
            self.fields.insert(key.to_owned(), value.into());
        }
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The one-line reason.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON body: `{"error": message}` plus the added fields.
    pub fn body(&self) -> Value {
        let mut body = Map::with_capacity(self.fields.len() + 1);
        body.insert("error".to_owned(), Value::String(self.message.clone()));
        body.extend(self.fields.clone());
        Value::Object(body)
    }

    /// The response headers: the content type, `Cache-Control: no-store`, and
    /// `WWW-Authenticate` (401) or `Retry-After` (429, 503).
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = vec![
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ];
        match self.status {
            StatusCode::UNAUTHORIZED => {
                headers.push((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
                headers.push((header::RETRY_AFTER, HeaderValue::from(self.retry_after)));
            }
            _ => {}
        }
        headers
    }

    /// The whole response, its body as bytes (map it into the server's body type).
    pub fn to_http(&self) -> http::Response<Bytes> {
        let mut res = http::Response::new(Bytes::from(self.body().to_string()));
        *res.status_mut() = self.status;
        res.headers_mut().extend(self.headers());
        res
    }
}

#[cfg(feature = "axum")]
impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        self.to_http().map(axum::body::Body::from)
    }
}

#[cfg(feature = "actix")]
impl actix_web::ResponseError for ApiError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::from_u16(self.status.as_u16())
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> actix_web::HttpResponse {
        let mut res = actix_web::HttpResponse::build(self.status_code());
        for (name, value) in self.headers() {
            res.insert_header((name.as_str(), value.as_bytes()));
        }
        res.body(self.body().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_401_asks_for_a_bearer_token_and_is_not_cached() {
        let res = ApiError::unauthorized("invalid token").to_http();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        let body: Value = serde_json::from_slice(res.body()).expect("JSON body");
        assert_eq!(body, json!({"error": "invalid token"}));
    }

    #[test]
    fn a_503_says_when_to_retry() {
        let res = ApiError::unavailable("busy").to_http();
        assert_eq!(res.headers()[header::RETRY_AFTER], "5");
        assert!(res.headers().get(header::WWW_AUTHENTICATE).is_none());
        let res = ApiError::too_many("slow down").retry_after(30).to_http();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[header::RETRY_AFTER], "30");
    }

    #[test]
    fn added_fields_join_the_body_but_never_replace_the_error() {
        let e = ApiError::bad_request("no file")
            .with("success", false)
            .with("error", "hijacked")
            .with("details", "x");
        assert_eq!(
            e.body(),
            json!({"error": "no file", "success": false, "details": "x"})
        );
        assert_eq!(e.to_string(), "no file");
    }

    #[cfg(all(feature = "axum", feature = "actix"))]
    #[tokio::test]
    async fn axum_and_actix_answer_the_same_status_headers_and_body() {
        use actix_web::ResponseError as _;
        use axum::response::IntoResponse as _;
        let e = ApiError::unavailable("queue full").with("success", false);

        let a = e.clone().into_response();
        assert_eq!(a.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(a.headers()[header::RETRY_AFTER], "5");
        let body = axum::body::to_bytes(a.into_body(), 1 << 16)
            .await
            .expect("axum body");
        assert_eq!(serde_json::from_slice::<Value>(&body).ok(), Some(e.body()));

        let b = e.error_response();
        assert_eq!(b.status().as_u16(), 503);
        assert_eq!(
            b.headers().get("retry-after").map(|v| v.as_bytes()),
            Some(b"5".as_slice())
        );
        assert_eq!(
            b.headers().get("content-type").map(|v| v.as_bytes()),
            Some(b"application/json".as_slice())
        );
        let body = actix_web::body::to_bytes(b.into_body())
            .await
            .expect("actix body");
        assert_eq!(serde_json::from_slice::<Value>(&body).ok(), Some(e.body()));
    }
}
