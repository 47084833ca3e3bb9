//! `POST /api/books/upload/`: validate, start the job, stream it or answer with JSON.

use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sse_axum::{Negotiate, SubscribeRejection};
use sse_core::hub::SubscribeOptions;

use crate::error::JobError;
use crate::job::{self, Reporter, UploadInput};
use crate::PdfOcr;

/// Room for the form's other fields and its boundaries on top of the largest PDF.
pub(crate) const FORM_OVERHEAD: usize = 1 << 20;

/// Longest accepted `title` or `author`, in characters.
const MAX_TEXT_FIELD: usize = 500;

/// The upload handler; see the [module docs](super) for the protocol.
pub(crate) async fn upload(
    State(app): State<PdfOcr>,
    negotiate: Negotiate,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let sse = negotiate.is_event_stream();
    let user = match app.authenticate(&headers, None) {
        Ok(user) => user,
        Err(e) => return e.respond(sse),
    };
    let max = app.inner.config.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > (max + FORM_OVERHEAD) as u64) {
        return too_large(max).respond(sse);
    }
    let multipart = match multipart {
        Ok(m) => m,
        Err(r) => {
            return JobError::bad_request(
                "Invalid form",
                format!(
                    "expected a multipart/form-data body with pdf_file and title: {}",
                    r.body_text()
                ),
            )
            .respond(sse)
        }
    };
    let input = match read_form(multipart, max).await {
        Ok(input) => input,
        Err(e) => return e.respond(sse),
    };

    // Held until the job ends: this user's jobs and all jobs in flight are bounded.
    let slot = match app.inner.admission.admit(&user) {
        Ok(t) => t,
        Err(e) => {
            let error = if e.status().as_u16() == 429 {
                "Too many jobs"
            } else {
                "Server busy"
            };
            return JobError::new(e.status(), error, e.message()).respond(sse);
        }
    };
    let reporter = match Reporter::create(&app, &user) {
        Ok(r) => r,
        Err(e) => {
            return JobError::new(
                sse_core::http::publish_status(&e),
                "Cannot start the job",
                e.to_string(),
            )
            .respond(sse)
        }
    };
    let job_id = reporter.job_id().to_owned();
    let job_header = HeaderValue::from_str(&job_id).ok();

    if sse {
        // Subscribe before anything is published: the response carries every event.
        let options = SubscribeOptions::topic(job_id.clone()).user(user.clone());
        let stream = match sse_axum::subscribe(app.hub(), options).await {
            Ok(s) => s,
            Err(SubscribeRejection(e)) => {
                let err = JobError::new(
                    sse_core::http::status_for(&e),
                    "Cannot stream the job",
                    e.to_string(),
                );
                reporter.failed(&err).await;
                return err.respond(true);
            }
        };
        reporter.received(&input);
        // Detached: the job goes on if the client leaves, so that it can re-attach.
        tokio::spawn(job::drive(app, reporter, input, user, slot));
        let mut res = stream.into_response();
        if let Some(v) = job_header {
            res.headers_mut().insert("x-job-id", v);
        }
        return res;
    }

    reporter.received(&input);
    let outcome = tokio::spawn(job::drive(app, reporter, input, user, slot))
        .await
        .unwrap_or_else(|e| Err(JobError::internal(format!("the job failed: {e}"))));
    let mut res = match outcome {
        Ok(book) => {
            let body = json!({
                "data": book.to_json(false),
                "status": "PASS",
                "message": "Book uploaded successfully",
            });
            let mut res = (StatusCode::CREATED, axum::Json(body)).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("/api/books/{}/", book.id)) {
                res.headers_mut().insert(header::LOCATION, v);
            }
            res
        }
        Err(e) => e.respond(false),
    };
    if let Some(v) = job_header {
        res.headers_mut().insert("x-job-id", v);
    }
    res
}

fn too_large(max: usize) -> JobError {
    JobError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "File too large",
        format!(
            "pdf_file is larger than the {} limit",
            human_size(max as u64)
        ),
    )
}

fn human_size(bytes: u64) -> String {
    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;
    if bytes >= MIB && bytes & (MIB - 1) == 0 {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes & (KIB - 1) == 0 {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

fn form_error(e: MultipartError, max: usize) -> JobError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large(max);
    }
    JobError::new(e.status(), "Invalid form", e.body_text())
}

/// Reads the form: `pdf_file` (at most `max` bytes), `title`, `author`; other fields are
/// ignored. A too-large file is read to the end (within the body limit) before the refusal, so
/// that the client, still sending, reliably gets the answer.
async fn read_form(mut form: Multipart, max: usize) -> Result<UploadInput, JobError> {
    let mut pdf: Option<(Option<String>, Vec<u8>)> = None;
    let mut title = None;
    let mut author = None;
    let mut oversized = false;
    while let Some(mut field) = form.next_field().await.map_err(|e| form_error(e, max))? {
        match field.name().unwrap_or("") {
            "pdf_file" if pdf.is_none() && !oversized => {
                let filename = field.file_name().map(str::to_owned);
                let mut buf = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(|e| form_error(e, max))? {
                    if oversized {
                        continue;
                    }
                    if buf.len() + chunk.len() > max {
                        oversized = true;
                        buf = Vec::new();
                        continue;
                    }
                    buf.extend_from_slice(&chunk);
                }
                if !oversized {
                    pdf = Some((filename, buf));
                }
            }
            "title" => title = Some(text_field(field, "title", max).await?),
            "author" => author = Some(text_field(field, "author", max).await?),
            _ => {
                while field
                    .chunk()
                    .await
                    .map_err(|e| form_error(e, max))?
                    .is_some()
                {}
            }
        }
    }
    if oversized {
        return Err(too_large(max));
    }
    let Some((filename, pdf)) = pdf else {
        return Err(JobError::bad_request(
            "Missing field",
            "the form has no pdf_file field (a PDF file is required)",
        ));
    };
    let title = title.unwrap_or_default();
    if title.is_empty() {
        return Err(JobError::bad_request("Missing field", "title is required"));
    }
    if pdf.is_empty() {
        return Err(JobError::bad_request(
            "Empty file",
            "pdf_file is empty (0 bytes)",
        ));
    }
    // Readers accept the signature anywhere in the first KiB.
    let head = &pdf[..pdf.len().min(1024)];
    if !head.windows(5).any(|w| w == b"%PDF-") {
        return Err(JobError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Not a PDF",
            format!(
                "{} does not start with the %PDF- signature",
                filename.as_deref().unwrap_or("pdf_file")
            ),
        ));
    }
    let author = author.filter(|a| !a.is_empty());
    Ok(UploadInput {
        pdf,
        filename,
        title,
        author: author.unwrap_or_else(|| "Unknown".to_owned()),
    })
}

/// A short text field, trimmed.
async fn text_field(field: Field<'_>, name: &str, max: usize) -> Result<String, JobError> {
    let text = field.text().await.map_err(|e| form_error(e, max))?;
    let text = text.trim();
    if text.chars().count() > MAX_TEXT_FIELD {
        return Err(JobError::bad_request(
            "Invalid field",
            format!("{name} is longer than {MAX_TEXT_FIELD} characters"),
        ));
    }
    Ok(text.to_owned())
}
