#![allow(clippy::unwrap_used)]
//! The PDF OCR app over real HTTP: events in order, the JSON path, auth, bad input, resume.
//!
//! Where `pdftoppm` and `tesseract` are installed the uploads are OCRed for real and the tests
//! assert that tesseract ran and read the text; elsewhere they assert the text-layer engine.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::multipart::{Form, Part};
use reqwest::{header, StatusCode};
use serde_json::Value;
use sse_core::Decoder;
use sse_example_pdf_ocr::{self as pdf_ocr, Config, EngineChoice, PdfOcr};
use sse_examples_support::pdf::SamplePdf;
use sse_testkit::tools::{self, Tool};

/// Every test finishes well within this, or fails.
const TEST_TIMEOUT: Duration = Duration::from_secs(25);

const TOKEN: &str = "demo-token";
const OTHER_TOKEN: &str = "demo-token-2";

/// A multi-page PDF with real text on each page (made by the shared generator, not the app).
fn make_pdf(pages: usize) -> Vec<u8> {
    let texts: Vec<String> = (1..=pages)
        .map(|n| {
            format!(
                "Chapter {n}\nThe quick brown fox jumps over the lazy dog\nStreaming page number {n}"
            )
        })
        .collect();
    SamplePdf::new().font_size(20).build(&texts).unwrap()
}

/// Whether `pdftoppm` and `tesseract` are installed (the app then must use tesseract); in CI
/// they must be (`sse_testkit::tools`).
fn ocr_tools_installed() -> bool {
    tools::available_or_fallback(
        "the pdf-ocr tests",
        &[Tool::Pdftoppm, Tool::Tesseract],
        "the text-layer engine",
    )
}

fn expected_engine() -> &'static str {
    if ocr_tools_installed() {
        "tesseract"
    } else {
        "text-layer"
    }
}

struct Server {
    base: String,
    app: PdfOcr,
    client: reqwest::Client,
}

async fn start(config: Config) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = PdfOcr::new(config);
    tokio::spawn(pdf_ocr::serve_with_shutdown(
        listener,
        app.clone(),
        std::future::pending(),
    ));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    Server { base, app, client }
}

fn form(pdf: Vec<u8>, title: Option<&str>, author: Option<&str>) -> Form {
    let mut f = Form::new().part(
        "pdf_file",
        Part::bytes(pdf)
            .file_name("book.pdf")
            .mime_str("application/pdf")
            .unwrap(),
    );
    if let Some(t) = title {
        f = f.text("title", t.to_owned());
    }
    if let Some(a) = author {
        f = f.text("author", a.to_owned());
    }
    f
}

#[derive(Debug, Clone)]
struct Ev {
    event: String,
    data: Value,
    id: String,
}

fn decode_all(dec: &mut Decoder, out: &mut Vec<Ev>) {
    while let Some(e) = dec.next_event() {
        let data = serde_json::from_str(&e.data).unwrap_or(Value::String(e.data.clone()));
        out.push(Ev {
            event: e.event,
            data,
            id: e.last_event_id,
        });
    }
}

/// Reads an event-stream response to its end.
async fn read_events(res: reqwest::Response) -> Vec<Ev> {
    let mut dec = Decoder::new();
    let mut out = Vec::new();
    let mut body = res.bytes_stream();
    while let Some(chunk) = body.next().await {
        dec.feed(&chunk.unwrap());
        decode_all(&mut dec, &mut out);
    }
    out
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn upload_sse(&self, token: &str, form: Form) -> reqwest::Response {
        self.client
            .post(self.url("/api/books/upload/"))
            .bearer_auth(token)
            .header(header::ACCEPT, "text/event-stream")
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    async fn upload_json(&self, token: Option<&str>, form: Form) -> (StatusCode, Value) {
        let mut req = self.client.post(self.url("/api/books/upload/"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.multipart(form).send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap())
    }
}

/// The sequence of an SSE id `INCARNATION:SEQ` (the hub's id format).
fn seq_of(id: &str) -> u64 {
    let (inc, seq) = id
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("id {id:?} is not INCARNATION:SEQ"));
    assert!(!inc.is_empty(), "no incarnation in {id:?}");
    seq.parse()
        .unwrap_or_else(|_| panic!("no sequence in id {id:?}"))
}

fn ids(events: &[Ev]) -> Vec<u64> {
    events.iter().map(|e| seq_of(&e.id)).collect()
}

fn names(events: &[Ev]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_str()).collect()
}

async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .expect("test took too long");
}

/// Asserts the page text came through the engine: tesseract reads the words off the image.
fn assert_text(preview: &str, page: usize) {
    let lower = preview.to_lowercase();
    assert!(
        lower.contains("quick brown fox"),
        "page {page} text not extracted: {preview:?}"
    );
    assert!(
        lower.contains(&format!("chapter {page}")),
        "page {page} text: {preview:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_upload_streams_every_page_in_order() {
    bounded(async {
        let s = start(Config::default()).await;
        assert_eq!(s.app.engine().name(), expected_engine());
        let res = s
            .upload_sse(
                TOKEN,
                form(make_pdf(3), Some("Test Book"), Some("Test Author")),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()[header::CONTENT_TYPE].to_str().unwrap(),
            "text/event-stream"
        );
        let job_id = res.headers()["x-job-id"].to_str().unwrap().to_owned();
        let events = read_events(res).await;

        assert_eq!(
            names(&events),
            [
                "status",
                "status",
                "processing_started",
                "page_progress",
                "page_progress",
                "page_progress",
                "completed"
            ]
        );
        assert_eq!(ids(&events), (1..=7).collect::<Vec<u64>>());
        let first = &events[0].data;
        assert_eq!(first["job_id"], job_id.as_str());
        assert_eq!(first["task_id"], job_id.as_str());
        assert!(first["message"].as_str().unwrap().contains(&job_id));

        let started = &events[2].data;
        assert_eq!(started["total_pages"], 3);
        assert_eq!(started["engine"], expected_engine());
        assert!(started["message"].as_str().unwrap().contains("3 pages"));

        for (i, ev) in events[3..6].iter().enumerate() {
            let page = i + 1;
            let d = &ev.data;
            assert_eq!(d["current_page"], page);
            assert_eq!(d["total_pages"], 3);
            assert_eq!(d["progress"], [33, 66, 100][i]);
            assert_eq!(
                d["message"],
                format!("Processing page {page} of 3").as_str()
            );
            assert_eq!(d["engine"], expected_engine());
            assert!(d["extracted_chars"].as_u64().unwrap() > 40, "{d}");
            assert_text(d["preview"].as_str().unwrap(), page);
        }

        let done = &events[6].data;
        assert_eq!(done["title"], "Test Book");
        assert_eq!(done["author"], "Test Author");
        assert_eq!(done["total_pages"], 3);
        assert_eq!(done["engine"], expected_engine());
        assert!(done["book_id"].as_u64().unwrap() >= 1);
        assert_eq!(done["message"], "Upload completed successfully!");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_answer_without_the_accept_header() {
    bounded(async {
        let s = start(Config::default()).await;
        // The field report's JSON client sends no author: it defaults.
        let (status, body) = s
            .upload_json(Some(TOKEN), form(make_pdf(2), Some("Json Book"), None))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["status"], "PASS");
        assert_eq!(body["message"], "Book uploaded successfully");
        let data = &body["data"];
        assert_eq!(data["title"], "Json Book");
        assert_eq!(data["author"], "Unknown");
        assert_eq!(data["total_pages"], 2);
        assert_eq!(data["engine"], expected_engine());
        assert!(data["job_id"].as_str().unwrap().starts_with("job-"));

        // The book, with each page's text, for its owner only.
        let id = data["id"].as_u64().unwrap();
        let book: Value = s
            .client
            .get(s.url(&format!("/api/books/{id}/")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let pages = book["data"]["pages"].as_array().unwrap();
        assert_eq!(pages.len(), 2);
        assert_text(pages[1]["text"].as_str().unwrap(), 2);
        let other = s
            .client
            .get(s.url(&format!("/api/books/{id}/")))
            .bearer_auth(OTHER_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), StatusCode::NOT_FOUND);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_failures() {
    bounded(async {
        let s = start(Config::default()).await;
        // No token, JSON client.
        let (status, body) = s
            .upload_json(None, form(make_pdf(1), Some("T"), None))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["status"], "FAIL");
        assert!(body["details"]
            .as_str()
            .unwrap()
            .contains("missing bearer token"));

        // Wrong token, JSON client.
        let (status, body) = s
            .upload_json(Some("nope"), form(make_pdf(1), Some("T"), None))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body["details"].as_str().unwrap().contains("invalid"));

        // Not a bearer scheme.
        let res = s
            .client
            .post(s.url("/api/books/upload/"))
            .header(header::AUTHORIZATION, "Basic ZGVtbzpkZW1v")
            .multipart(form(make_pdf(1), Some("T"), None))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");

        // Wrong token, event-stream client: 401 with one `error` event it can show.
        let res = s
            .upload_sse("nope", form(make_pdf(1), Some("T"), None))
            .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let events = read_events(res).await;
        assert_eq!(names(&events), ["error"]);
        assert_eq!(events[0].data["error"], "Authentication failed");

        // A job is visible to its owner only; the streams need a token too.
        let res = s
            .upload_sse(TOKEN, form(make_pdf(1), Some("Mine"), None))
            .await;
        let job_id = res.headers()["x-job-id"].to_str().unwrap().to_owned();
        let events = read_events(res).await;
        assert_eq!(events.last().unwrap().event, "completed");
        let path = format!("/api/books/jobs/{job_id}/events");
        let other = s
            .client
            .get(s.url(&path))
            .bearer_auth(OTHER_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), StatusCode::NOT_FOUND);
        let anonymous = s.client.get(s.url(&path)).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        let task = s
            .client
            .get(s.url(&format!(
                "/api/v1/status/tasks/{job_id}/stream?token={OTHER_TOKEN}"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(task.status(), StatusCode::NOT_FOUND);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_clearly_and_the_server_keeps_running() {
    bounded(async {
        let max = 64 << 10;
        let s = start(Config {
            max_upload_bytes: max,
            ..Config::default()
        })
        .await;

        let cases: Vec<(&str, Form, StatusCode, &str)> = vec![
            (
                "not a PDF",
                form(b"hello, I am text".to_vec(), Some("T"), None),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Not a PDF",
            ),
            (
                "empty file",
                form(Vec::new(), Some("T"), None),
                StatusCode::BAD_REQUEST,
                "Empty file",
            ),
            (
                "missing title",
                form(make_pdf(1), None, Some("A")),
                StatusCode::BAD_REQUEST,
                "Missing field",
            ),
            (
                "blank title",
                form(make_pdf(1), Some("   "), Some("A")),
                StatusCode::BAD_REQUEST,
                "Missing field",
            ),
            (
                "missing pdf_file",
                Form::new().text("title", "T"),
                StatusCode::BAD_REQUEST,
                "Missing field",
            ),
            (
                "too large",
                form(
                    [b"%PDF-1.4\n".as_slice(), &vec![b'x'; max + 4096]].concat(),
                    Some("T"),
                    None,
                ),
                StatusCode::PAYLOAD_TOO_LARGE,
                "File too large",
            ),
        ];
        for (what, f, status, error) in cases {
            let (got, body) = s.upload_json(Some(TOKEN), f).await;
            assert_eq!(got, status, "{what}: {body}");
            assert_eq!(body["status"], "FAIL", "{what}");
            assert_eq!(body["error"], error, "{what}: {body}");
            assert!(!body["details"].as_str().unwrap().is_empty(), "{what}");
        }

        // Not multipart at all.
        let res = s
            .client
            .post(s.url("/api/books/upload/"))
            .bearer_auth(TOKEN)
            .body("plain")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);

        // Event-stream client, refused before the job: the status and an `error` event.
        let res = s
            .upload_sse(TOKEN, form(b"GIF89a".to_vec(), Some("T"), None))
            .await;
        assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let events = read_events(res).await;
        assert_eq!(names(&events), ["error"]);
        assert_eq!(events[0].data["error"], "Not a PDF");

        // A PDF signature over garbage fails inside the job: an `error` event ends the stream.
        let corrupt = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage".to_vec();
        let res = s
            .upload_sse(TOKEN, form(corrupt.clone(), Some("T"), None))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let events = read_events(res).await;
        assert_eq!(names(&events), ["status", "status", "error"]);
        assert_eq!(events[2].data["error"], "Invalid PDF");
        assert!(!events[2].data["details"].as_str().unwrap().is_empty());
        // ... and the same for the JSON client, as a 422.
        let (status, body) = s
            .upload_json(Some(TOKEN), form(corrupt, Some("T"), None))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"], "Invalid PDF");

        // A valid PDF without pages.
        let (status, body) = s
            .upload_json(Some(TOKEN), form(make_pdf(0), Some("T"), None))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body["details"].as_str().unwrap().contains("no pages"));

        // Still serving.
        let res = s
            .upload_sse(TOKEN, form(make_pdf(1), Some("After"), None))
            .await;
        let events = read_events(res).await;
        assert_eq!(events.last().unwrap().event, "completed");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_upload_stream_resumes_with_last_event_id() {
    bounded(async {
        let pages = 5;
        let s = start(Config {
            page_delay: Duration::from_millis(150),
            ..Config::default()
        })
        .await;
        let res = s
            .upload_sse(TOKEN, form(make_pdf(pages), Some("Resume"), None))
            .await;
        let job_id = res.headers()["x-job-id"].to_str().unwrap().to_owned();

        // Read until the first page, then break the connection.
        let mut seen = Vec::new();
        let mut dec = Decoder::new();
        let mut body = res.bytes_stream();
        while !seen.iter().any(|e: &Ev| e.event == "page_progress") {
            let chunk = body.next().await.unwrap().unwrap();
            dec.feed(&chunk);
            decode_all(&mut dec, &mut seen);
        }
        drop(body);
        let last = seen.last().unwrap().id.clone();
        assert!(
            seen.iter().all(|e| e.event != "completed"),
            "the job should still be running"
        );

        // Re-attach with the header.
        let path = format!("/api/books/jobs/{job_id}/events");
        let res = s
            .client
            .get(s.url(&path))
            .bearer_auth(TOKEN)
            .header("Last-Event-ID", &last)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let rest = read_events(res).await;
        assert_eq!(seq_of(&rest.first().unwrap().id), seq_of(&last) + 1);
        let all: Vec<Ev> = seen.iter().chain(&rest).cloned().collect();
        let n = all.len() as u64;
        assert_eq!(
            ids(&all),
            (1..=n).collect::<Vec<u64>>(),
            "no loss, no duplicate"
        );
        let pages_seen: Vec<u64> = all
            .iter()
            .filter(|e| e.event == "page_progress")
            .map(|e| e.data["current_page"].as_u64().unwrap())
            .collect();
        assert_eq!(pages_seen, (1..=pages as u64).collect::<Vec<u64>>());
        assert_eq!(all.last().unwrap().event, "completed");
        assert_eq!(all.last().unwrap().data["total_pages"], pages);

        // The query-parameter form (for clients that cannot set headers), with the token there.
        let res = s
            .client
            .get(s.url(&format!("{path}?lastEventId=5&token={TOKEN}")))
            .send()
            .await
            .unwrap();
        let tail = read_events(res).await;
        assert_eq!(ids(&tail), (6..=n).collect::<Vec<u64>>());

        // Without an id: the whole job again.
        let res = s
            .client
            .get(s.url(&path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(ids(&read_events(res).await), (1..=n).collect::<Vec<u64>>());

        // Having seen the end: 204, so clients stop reconnecting.
        let res = s
            .client
            .get(s.url(&path))
            .bearer_auth(TOKEN)
            .header("Last-Event-ID", n.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);

        // An unknown job.
        let res = s
            .client
            .get(s.url("/api/books/jobs/job-999-0/events"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_stream_of_report_004() {
    bounded(async {
        let s = start(Config::default()).await;
        let res = s
            .upload_sse(TOKEN, form(make_pdf(2), Some("Tasks"), None))
            .await;
        let job_id = res.headers()["x-job-id"].to_str().unwrap().to_owned();
        let book = read_events(res).await.last().unwrap().data.clone();

        let res = s
            .client
            .get(s.url(&format!(
                "/api/v1/status/tasks/{job_id}/stream?api_key={TOKEN}"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let events = read_events(res).await;
        for e in &events {
            // Sequence numbers equal the SSE ids' sequence, against out-of-order delivery.
            assert_eq!(e.data["sequence"].as_u64().unwrap(), seq_of(&e.id));
        }
        let files: Vec<&str> = events
            .iter()
            .filter(|e| e.event == "file_update")
            .map(|e| e.data["file_id"].as_str().unwrap())
            .collect();
        assert_eq!(files, ["page-1", "page-2"]);
        let progress: Vec<u64> = events
            .iter()
            .filter(|e| e.event == "task_progress")
            .map(|e| e.data["progress"].as_u64().unwrap())
            .collect();
        assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
        assert_eq!(progress.last(), Some(&100));
        let last = events.last().unwrap();
        assert_eq!(last.event, "task_completed");
        assert_eq!(last.data["task_id"], job_id.as_str());
        assert_eq!(last.data["result"]["total_files"], 2);
        assert_eq!(last.data["result"]["book_id"], book["book_id"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_text_layer_engine() {
    bounded(async {
        let s = start(Config {
            engine: EngineChoice::TextLayer,
            ..Config::default()
        })
        .await;
        assert_eq!(s.app.engine().name(), "text-layer");
        let res = s
            .upload_sse(TOKEN, form(make_pdf(2), Some("Layer"), None))
            .await;
        let events = read_events(res).await;
        let pages: Vec<&Ev> = events
            .iter()
            .filter(|e| e.event == "page_progress")
            .collect();
        assert_eq!(pages.len(), 2);
        for (i, p) in pages.iter().enumerate() {
            assert_eq!(p.data["engine"], "text-layer");
            assert_text(p.data["preview"].as_str().unwrap(), i + 1);
        }
        assert_eq!(events.last().unwrap().event, "completed");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_the_sample_pdf() {
    bounded(async {
        let s = start(Config::default()).await;
        let page = s.client.get(s.url("/")).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(html.contains("api/books/upload/"));
        assert!(html.contains("value=\"demo-token\""));
        let pdf = s
            .client
            .get(s.url("/sample.pdf?pages=2"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let doc = lopdf::Document::load_mem(&pdf).unwrap();
        assert_eq!(doc.get_pages().len(), 2);
        assert!(doc.extract_text(&[2]).unwrap().contains("page 2"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pdf_whose_page_count_lies_gets_a_422_naming_the_problem_without_tool_output() {
    bounded(async {
        let s = start(Config::default()).await;
        // One page object under a page tree that claims 100000 pages, written with lopdf so
        // that everything else about the file is well formed.
        let mut doc = lopdf::Document::load_mem(&make_pdf(1)).unwrap();
        let pages = doc
            .catalog()
            .unwrap()
            .get(b"Pages")
            .unwrap()
            .as_reference()
            .unwrap();
        doc.get_dictionary_mut(pages)
            .unwrap()
            .set("Count", lopdf::Object::Integer(100_000));
        let mut bad = Vec::new();
        doc.save_to(&mut bad).unwrap();
        let (status, body) = s
            .upload_json(Some(TOKEN), form(bad, Some("Liar"), None))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let details = body.to_string();
        assert!(details.contains("100000"), "{details}");
        assert!(details.contains("page tree"), "{details}");
        for tool_words in ["pdftoppm", "Syntax Error", "/tmp", "stderr"] {
            assert!(!details.contains(tool_words), "{details}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_beyond_the_pending_limit_get_503() {
    bounded(async {
        let s = start(Config {
            max_pending_jobs: 1,
            page_delay: Duration::from_millis(300),
            ..Config::default()
        })
        .await;
        let first = s
            .upload_sse(TOKEN, form(make_pdf(2), Some("First"), None))
            .await;
        assert_eq!(first.status(), StatusCode::OK);
        let (status, body) = s
            .upload_json(Some(TOKEN), form(make_pdf(1), Some("Second"), None))
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["error"], "Server busy");
        // Once the first job is done, uploads are accepted again.
        assert_eq!(read_events(first).await.last().unwrap().event, "completed");
        let (status, body) = s
            .upload_json(Some(TOKEN), form(make_pdf(1), Some("Third"), None))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_beyond_a_users_share_get_429_with_retry_after_and_other_users_go_on() {
    bounded(async {
        let s = start(Config {
            max_jobs_per_user: 1,
            max_pending_jobs: 8,
            page_delay: Duration::from_millis(300),
            ..Config::default()
        })
        .await;
        let first = s
            .upload_sse(TOKEN, form(make_pdf(2), Some("First"), None))
            .await;
        assert_eq!(first.status(), StatusCode::OK);
        // The same user again, on the event-stream path: 429, `Retry-After`, an error event.
        let refused = s
            .upload_sse(TOKEN, form(make_pdf(1), Some("Second"), None))
            .await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.headers().contains_key("retry-after"));
        let text = refused.text().await.unwrap();
        assert!(text.contains("Too many jobs"), "{text}");
        // And on the JSON path.
        let (status, body) = s
            .upload_json(Some(TOKEN), form(make_pdf(1), Some("Third"), None))
            .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        // Another user is not held back.
        let (status, body) = s
            .upload_json(Some(OTHER_TOKEN), form(make_pdf(1), Some("Other"), None))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        // Once the first job is done, the user may upload again.
        assert_eq!(read_events(first).await.last().unwrap().event, "completed");
        let (status, body) = s
            .upload_json(Some(TOKEN), form(make_pdf(1), Some("Fourth"), None))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    })
    .await;
}
