//! Errors, and their answer in the negotiated format.

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sse_core::Event;
use sse_examples_support::ApiError;

/// A request refused before its job started, or a job that failed: an HTTP status, a short
/// `error` and the `details`.
#[derive(Debug, Clone)]
pub(crate) struct JobError {
    pub(crate) status: StatusCode,
    pub(crate) error: String,
    pub(crate) details: String,
}

impl JobError {
    pub(crate) fn new(status: StatusCode, error: &str, details: impl Into<String>) -> Self {
        JobError {
            status,
            error: error.to_owned(),
            details: details.into(),
        }
    }

    pub(crate) fn bad_request(error: &str, details: impl Into<String>) -> Self {
        JobError::new(StatusCode::BAD_REQUEST, error, details)
    }

    pub(crate) fn unauthorized(details: impl Into<String>) -> Self {
        JobError::new(StatusCode::UNAUTHORIZED, "Authentication failed", details)
    }

    pub(crate) fn invalid_pdf(details: impl Into<String>) -> Self {
        JobError::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid PDF", details)
    }

    pub(crate) fn ocr(details: impl Into<String>) -> Self {
        JobError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "OCR processing failed",
            details,
        )
    }

    pub(crate) fn internal(details: impl Into<String>) -> Self {
        JobError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", details)
    }

    /// The `error` event: `{error, details}` (plus the job id once there is a job).
    pub(crate) fn event(&self, job_id: Option<&str>) -> Event<'static> {
        let mut v = json!({ "error": self.error, "details": self.details });
        if let Some(id) = job_id {
            v["job_id"] = json!(id);
        }
        Event::new().event("error").json_owned(v)
    }

    /// The failure as the shared [`ApiError`], its body the field report's JSON envelope
    /// `{"data": null, "status": "FAIL", "message", "error", "details"}`.
    pub(crate) fn api_error(&self) -> ApiError {
        ApiError::new(self.status, self.error.clone())
            .with("data", serde_json::Value::Null)
            .with("status", "FAIL")
            .with("message", format!("{}: {}", self.error, self.details))
            .with("details", self.details.clone())
    }

    /// The answer to a request refused before its job started: the status, and a body in the
    /// negotiated format (one `error` event, or the JSON envelope).
    pub(crate) fn respond(&self, event_stream: bool) -> Response {
        if !event_stream {
            return self.api_error().into_response();
        }
        let frame = self
            .event(None)
            .encode()
            .map(|f| f.into_bytes())
            .unwrap_or_default();
        let mut res = Response::new(Body::from(frame));
        for (k, v) in sse_core::http::stream_headers() {
            res.headers_mut().insert(k, v);
        }
        *res.status_mut() = self.status;
        // The same headers as the JSON answer (`WWW-Authenticate` on a 401, `Retry-After` on a
        // 429 or a 503).
        for (k, v) in self.api_error().headers() {
            if k == header::WWW_AUTHENTICATE || k == header::RETRY_AFTER {
                res.headers_mut().insert(k, v);
            }
        }
        res
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.details)
    }
}
