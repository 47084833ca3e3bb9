//! One upload's job: the worker and the events it publishes.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use futures_util::FutureExt;
use serde_json::{json, Value};
use sse_core::hub::{PublishAck, PublishError, TopicOptions};
use sse_core::{Event, JobPublisher, Topic};

use crate::engine::{self, Engine, WorkDir};
use crate::error::JobError;
use crate::{PdfOcr, MAX_BOOKS};
use sse_examples_support::Ticket;

/// How many characters of each page's text the `page_progress` event previews.
const PREVIEW_CHARS: usize = 160;

/// A validated upload.
#[derive(Debug)]
pub(crate) struct UploadInput {
    pub(crate) pdf: Vec<u8>,
    pub(crate) filename: Option<String>,
    pub(crate) title: String,
    pub(crate) author: String,
}

/// A processed book.
#[derive(Debug, Clone)]
pub(crate) struct Book {
    pub(crate) id: u64,
    pub(crate) owner: String,
    pub(crate) job_id: String,
    pub(crate) title: String,
    pub(crate) author: String,
    pub(crate) engine: &'static str,
    pub(crate) pages: Vec<String>,
}

impl Book {
    pub(crate) fn extracted_chars(&self) -> usize {
        self.pages.iter().map(|p| char_count(p)).sum()
    }

    /// The book as the JSON envelope's `data`, with or without each page's text.
    pub(crate) fn to_json(&self, with_text: bool) -> Value {
        let pages: Vec<Value> = self
            .pages
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let mut p = json!({ "page": i + 1, "extracted_chars": char_count(text) });
                if with_text {
                    p["text"] = json!(text);
                }
                p
            })
            .collect();
        json!({
            "id": self.id,
            "title": self.title,
            "author": self.author,
            "total_pages": self.pages.len(),
            "engine": self.engine,
            "extracted_chars": self.extracted_chars(),
            "job_id": self.job_id,
            "pages": pages,
        })
    }
}

/// Characters of text, not counting surrounding whitespace.
fn char_count(text: &str) -> usize {
    text.trim().chars().count()
}

/// The task topic (the image-to-3D report's stream) of a job.
pub(crate) fn task_topic(job_id: &str) -> String {
    format!("task/{job_id}")
}

/// Publishes a job's events: the PDF OCR report events on the job topic, the image-to-3D report
/// events on its task topic. If it is dropped before [`Reporter::completed`] or
/// [`Reporter::failed`] (the worker panicked or never ran), both topics end with an error, so no
/// client waits forever.
///
/// Its progress events are handed over at once (to the ring, or to the backplane, which stores
/// one topic's events in call order) from any thread, the worker's blocking-pool thread
/// included; nobody waits for their acks. The terminal events are published from async code
/// ([`Reporter::completed`], [`Reporter::failed`]), which awaits the task topic's latest ack:
/// the terminal event's `sequence` follows it.
pub(crate) struct Reporter {
    job: Option<JobPublisher>,
    task: Topic,
    /// The ack of the latest publish on the task topic.
    last_task: Mutex<Option<Sent>>,
    job_id: String,
    started: Instant,
}

/// What became of a publish handed to the hub.
enum Sent {
    /// Stored with this sequence.
    Stored(u64),
    /// Handed to the backplane, not acknowledged yet.
    Pending(PublishAck),
    /// Refused (reported).
    Failed,
}

impl Reporter {
    /// Creates the job's two topics, owned by `owner`.
    pub(crate) fn create(app: &PdfOcr, owner: &str) -> Result<Reporter, PublishError> {
        let n = app.inner.next_job.fetch_add(1, Ordering::Relaxed);
        let job_id = format!("job-{n}-{:08x}", nonce());
        let hub = &app.inner.hub;
        let task = hub.create_topic(&task_topic(&job_id), TopicOptions::new().owner(owner))?;
        let job = hub.job_with(&job_id, TopicOptions::new().owner(owner))?;
        Ok(Reporter {
            job: Some(job),
            task,
            last_task: Mutex::new(None),
            job_id,
            started: Instant::now(),
        })
    }

    pub(crate) fn job_id(&self) -> &str {
        &self.job_id
    }

    fn publish(&self, key: Option<&str>, name: &'static str, data: Value) {
        let Some(job) = &self.job else { return };
        let event = Event::new().event(name).json_owned(data);
        let ack = match key {
            Some(k) => job.event_keyed(k, event),
            None => job.event(event),
        };
        self.check(name, ack);
    }

    /// Reports a publish that failed at once (in memory, every failure does).
    fn check(&self, name: &str, mut ack: PublishAck) -> Sent {
        match (&mut ack).now_or_never() {
            Some(Err(e)) => {
                eprintln!("pdf-ocr: {}: cannot publish {name}: {e}", self.job_id);
                Sent::Failed
            }
            Some(Ok(seq)) => Sent::Stored(seq),
            None => Sent::Pending(ack),
        }
    }

    /// The sequence of the next event on the task topic, which only this reporter publishes to:
    /// the one after the latest publish's, awaited if the backplane has not answered yet.
    async fn next_task_seq(&self) -> u64 {
        let prev = match self.take_last_task() {
            Some(Sent::Stored(seq)) => Some(seq),
            Some(Sent::Pending(ack)) => ack.await.ok(),
            Some(Sent::Failed) | None => None,
        };
        prev.unwrap_or_else(|| self.task.last_seq()) + 1
    }

    /// [`next_task_seq`](Self::next_task_seq) on a thread without a Tokio runtime.
    fn blocking_next_task_seq(&self) -> u64 {
        let prev = match self.take_last_task() {
            Some(Sent::Stored(seq)) => Some(seq),
            Some(Sent::Pending(ack)) => ack.blocking_wait().ok(),
            Some(Sent::Failed) | None => None,
        };
        prev.unwrap_or_else(|| self.task.last_seq()) + 1
    }

    fn take_last_task(&self) -> Option<Sent> {
        self.last_task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Reports a terminal publish that failed.
    fn report(&self, name: &str, result: Result<u64, PublishError>) {
        if let Err(e) = result {
            eprintln!("pdf-ocr: {}: cannot publish {name}: {e}", self.job_id);
        }
    }

    /// Publishes on the task topic an event whose `sequence` equals its SSE id.
    fn publish_task(&self, key: Option<&str>, name: &'static str, data: Value) {
        let ack = self.task.publish_with(key, |seq| {
            let mut data = data;
            data["sequence"] = json!(seq);
            Event::new().event(name).json_owned(data)
        });
        let sent = self.check(name, ack);
        if !matches!(sent, Sent::Failed) {
            *self
                .last_task
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(sent);
        }
    }

    fn task_progress(&self, progress: u32, current: usize, total: usize, message: &str) {
        self.publish_task(
            Some("task_progress"),
            "task_progress",
            json!({
                "progress": progress,
                "current": current,
                "total": total,
                "total_files": total,
                "message": message,
                "task_id": self.job_id,
            }),
        );
    }

    /// A `status` event.
    pub(crate) fn status(&self, stage: &str, message: &str) {
        self.task_progress(0, 0, 0, message);
        self.publish(
            Some("status"),
            "status",
            json!({ "message": message, "stage": stage, "job_id": self.job_id }),
        );
    }

    /// The first `status` event: names the job and where to re-attach.
    pub(crate) fn received(&self, input: &UploadInput) {
        let message = format!(
            "Upload received: {} ({} bytes); job {}",
            input.filename.as_deref().unwrap_or("PDF"),
            input.pdf.len(),
            self.job_id
        );
        self.task_progress(0, 0, 0, &message);
        self.publish(
            Some("status"),
            "status",
            json!({
                "message": message,
                "stage": "received",
                "job_id": self.job_id,
                "task_id": self.job_id,
                "events_url": format!("/api/books/jobs/{}/events", self.job_id),
            }),
        );
    }

    fn started(&self, total: usize, engine: &'static str) {
        let message = match engine {
            "tesseract" => format!("Processing {total} pages with OCR"),
            _ => format!("Processing {total} pages (text layer)"),
        };
        self.task_progress(0, 0, total, &message);
        self.publish(
            Some("processing_started"),
            "processing_started",
            json!({
                "total_pages": total,
                "message": message,
                "engine": engine,
                "job_id": self.job_id,
            }),
        );
    }

    fn page(&self, current: usize, total: usize, text: &str, engine: &'static str, note: &str) {
        let progress = percent(current, total);
        let chars = char_count(text);
        let message = format!("Processing page {current} of {total}{note}");
        let preview: String = text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(PREVIEW_CHARS)
            .collect();
        self.task_progress(progress, current, total, &message);
        self.publish_task(
            None,
            "file_update",
            json!({
                "file_id": format!("page-{current}"),
                "filename": format!("page {current}"),
                "status": "completed",
                "progress": 100,
                "message": format!("{chars} characters ({engine})"),
                "task_id": self.job_id,
            }),
        );
        self.publish(
            Some("page_progress"),
            "page_progress",
            json!({
                "current_page": current,
                "total_pages": total,
                "progress": progress,
                "message": message,
                "extracted_chars": chars,
                "engine": engine,
                "preview": preview,
                "job_id": self.job_id,
            }),
        );
    }

    /// Finishes both topics with the book.
    pub(crate) async fn completed(mut self, book: &Book) {
        let total = book.pages.len();
        let message = "Upload completed successfully!";
        self.task_progress(100, total, total, message);
        // Only this reporter publishes on the task topic, so the next sequence is known.
        let seq = self.next_task_seq().await;
        let ack = self
            .task
            .finish(Event::new().event("task_completed").json_owned(json!({
                "task_id": self.job_id,
                "job_id": self.job_id,
                "result": {
                    "job_id": self.job_id,
                    "book_id": book.id,
                    "total_files": total,
                    "processing_time": self.started.elapsed().as_secs_f64(),
                },
                "sequence": seq,
            })));
        self.report("task_completed", ack.await);
        if let Some(job) = self.job.take() {
            let data = json!({
                "book_id": book.id,
                "title": book.title,
                "author": book.author,
                "total_pages": total,
                "message": message,
                "engine": book.engine,
                "extracted_chars": book.extracted_chars(),
                "job_id": self.job_id,
            });
            let ack = job.complete(Event::new().event("completed").json_owned(data));
            self.report("completed", ack.await);
        }
    }

    /// Finishes both topics with `err`.
    pub(crate) async fn failed(mut self, err: &JobError) {
        let seq = if self.task.is_finished() {
            None
        } else {
            Some(self.next_task_seq().await)
        };
        let [task, job] = self.fail_topics(err, seq);
        if let Some(ack) = task {
            self.report("task_failed", ack.await);
        }
        if let Some(ack) = job {
            self.report("error", ack.await);
        }
    }

    /// Hands over the failure events: `task_failed` with sequence `seq` on the task topic (if
    /// it is still open), `error` on the job topic (if this reporter still holds the job).
    fn fail_topics(&mut self, err: &JobError, seq: Option<u64>) -> [Option<PublishAck>; 2] {
        let task = seq.map(|seq| {
            self.task
                .finish(Event::new().event("task_failed").json_owned(json!({
                    "task_id": self.job_id,
                    "error": err.error,
                    "details": { "message": err.details, "status": err.status.as_u16() },
                    "sequence": seq,
                })))
        });
        let job = self
            .job
            .take()
            .map(|job| job.fail_with(err.event(Some(&self.job_id))));
        [task, job]
    }
}

impl Drop for Reporter {
    /// Not finished (the worker panicked, or its future was dropped): both topics end with an
    /// error, awaited on the runtime if there is one, else waited for here.
    fn drop(&mut self) {
        let Some(job) = self.job.take() else { return };
        let err = JobError::internal("the worker ended without finishing the job");
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let rest = Reporter {
                job: Some(job),
                task: self.task.clone(),
                last_task: Mutex::new(self.take_last_task()),
                job_id: std::mem::take(&mut self.job_id),
                started: self.started,
            };
            rt.spawn(async move { rest.failed(&err).await });
            return;
        }
        self.job = Some(job);
        let seq = (!self.task.is_finished()).then(|| self.blocking_next_task_seq());
        let [task, job] = self.fail_topics(&err, seq);
        if let Some(ack) = task {
            self.report("task_failed", ack.blocking_wait());
        }
        if let Some(ack) = job {
            self.report("error", ack.blocking_wait());
        }
    }
}

fn percent(current: usize, total: usize) -> u32 {
    if total == 0 {
        return 0;
    }
    u32::try_from(current * 100 / total).unwrap_or(100)
}

/// A few unpredictable bits for job ids (ids are also checked against their owner).
fn nonce() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish() as u32
}

/// Runs the job: waits for a worker slot, processes the PDF on a blocking thread, and finishes
/// the job's topics. Returns the book (also stored in the app).
pub(crate) async fn drive(
    app: PdfOcr,
    reporter: Reporter,
    input: UploadInput,
    owner: String,
    slot: Ticket,
) -> Result<Book, JobError> {
    let workers = std::sync::Arc::clone(&app.inner.workers);
    let permit = match workers.clone().try_acquire_owned() {
        Ok(p) => p,
        Err(_) => {
            reporter.status("queued", "Waiting for a free OCR worker...");
            match workers.acquire_owned().await {
                Ok(p) => p,
                Err(_) => {
                    let err = JobError::internal("the worker pool is closed");
                    reporter.failed(&err).await;
                    return Err(err);
                }
            }
        }
    };
    // The reporter comes back from the worker, so that the terminal events are published (and
    // their acks awaited) here; if the worker is lost, its drop fails the job.
    let worker = tokio::task::spawn_blocking(move || {
        let result =
            std::panic::catch_unwind(AssertUnwindSafe(|| process(&app, &reporter, input, owner)))
                .unwrap_or_else(|panic| {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".to_owned());
                    Err(JobError::internal(format!("the worker panicked: {what}")))
                });
        (result, reporter)
    });
    let (result, reporter) = match worker.await {
        Ok(done) => done,
        Err(e) => return Err(JobError::internal(format!("the worker failed: {e}"))),
    };
    // Free the worker and the pending slot before the end is announced, so that a client that
    // sees it can upload again at once.
    drop(permit);
    drop(slot);
    match &result {
        Ok(book) => reporter.completed(book).await,
        Err(err) => reporter.failed(err).await,
    }
    result
}

/// The `/Count` of the document's root page tree, if it has one.
fn declared_page_count(doc: &lopdf::Document) -> Option<i64> {
    let pages = doc
        .catalog()
        .ok()?
        .get(b"Pages")
        .ok()?
        .as_reference()
        .ok()?;
    doc.get_dictionary(pages)
        .ok()?
        .get(b"Count")
        .ok()?
        .as_i64()
        .ok()
}

/// The blocking part: parse, then each page with the engine, then store the book.
fn process(
    app: &PdfOcr,
    reporter: &Reporter,
    input: UploadInput,
    owner: String,
) -> Result<Book, JobError> {
    let config = &app.inner.config;
    reporter.status("parsing", "Parsing PDF...");
    let doc = lopdf::Document::load_mem(&input.pdf)
        .map_err(|e| JobError::invalid_pdf(format!("the file cannot be parsed as a PDF: {e}")))?;
    if doc.is_encrypted() {
        return Err(JobError::invalid_pdf(
            "the PDF is encrypted; upload an unencrypted copy",
        ));
    }
    let page_numbers: Vec<u32> = doc.get_pages().keys().copied().collect();
    let total = page_numbers.len();
    if total == 0 {
        return Err(JobError::invalid_pdf("the PDF has no pages"));
    }
    // The page tree's own count must match the pages it holds: a PDF that says `/Count 100000`
    // over one page object is malformed, and renderers refuse it.
    if let Some(declared) = declared_page_count(&doc) {
        if declared != total as i64 {
            return Err(JobError::invalid_pdf(format!(
                "the PDF's page tree is inconsistent: /Count says {declared} pages but {total} page object{} found",
                if total == 1 { " was" } else { "s were" }
            )));
        }
    }
    if total > config.max_pages {
        return Err(JobError::invalid_pdf(format!(
            "the PDF has {total} pages; at most {} are accepted",
            config.max_pages
        )));
    }
    let engine = &app.inner.engine;
    let workdir = match engine {
        Engine::Tesseract { .. } => Some(WorkDir::create(reporter.job_id(), &input.pdf)?),
        Engine::TextLayer => None,
    };
    reporter.started(total, engine.name());
    let mut pages = Vec::with_capacity(total);
    for (i, &page) in page_numbers.iter().enumerate() {
        let current = i + 1;
        let (text, note) = match (engine, &workdir) {
            (
                Engine::Tesseract {
                    pdftoppm,
                    tesseract,
                },
                Some(wd),
            ) => {
                // pdftoppm numbers pages in document order, as `get_pages` does.
                let n = u32::try_from(current).unwrap_or(u32::MAX);
                let text =
                    engine::ocr_page(pdftoppm, tesseract, wd, n, config.dpi, config.page_timeout)?;
                (text, String::new())
            }
            _ => {
                let (text, unreadable) = engine::text_layer(&doc, page);
                let note = if unreadable > 0 {
                    format!(" ({unreadable} text fragments could not be decoded)")
                } else if text.trim().is_empty() {
                    " (no text layer on this page: install tesseract to OCR scans)".to_owned()
                } else {
                    String::new()
                };
                (text, note)
            }
        };
        if !config.page_delay.is_zero() {
            std::thread::sleep(config.page_delay);
        }
        reporter.page(current, total, &text, engine.name(), &note);
        pages.push(text.trim().to_owned());
    }
    drop(workdir);
    let id = app.inner.next_book.fetch_add(1, Ordering::Relaxed);
    let book = Book {
        id,
        owner,
        job_id: reporter.job_id().to_owned(),
        title: input.title,
        author: input.author,
        engine: engine.name(),
        pages,
    };
    let mut books = app
        .inner
        .books
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    books.insert(id, book.clone());
    while books.len() > MAX_BOOKS {
        books.pop_first();
    }
    Ok(book)
}
