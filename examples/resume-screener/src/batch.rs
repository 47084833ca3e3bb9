//! A batch: the progress payloads, the bounded worker pool and the final ranking.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::auth::ApiError;
use crate::extract::{extract_text, Kind};
use crate::rank::{rank, tokenize, Document};
use crate::ResumeScreener;

/// An accepted file, waiting for a worker.
#[derive(Debug)]
pub(crate) struct Upload {
    pub(crate) filename: String,
    pub(crate) kind: Kind,
    pub(crate) bytes: Vec<u8>,
}

/// A running batch: whose, in which stream generation, and whether it was cancelled.
#[derive(Debug)]
pub(crate) struct BatchCtl {
    user: String,
    generation: u64,
    batch_id: String,
    cancelled: AtomicBool,
}

impl BatchCtl {
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
}

/// One progress update, as the stream and the status endpoint send it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Progress {
    pub(crate) completed: usize,
    pub(crate) total: usize,
    /// `processing`, then `completed`.
    pub(crate) status: &'static str,
    pub(crate) message: String,
    pub(crate) batch_id: String,
    pub(crate) files: Vec<FileProgress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) results: Option<Vec<RankedResume>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) successful_files: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) failed_files: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) errors: Option<Vec<FileFailure>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) query_terms: Option<Vec<String>>,
}

/// One file of the batch.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FileProgress {
    pub(crate) index: usize,
    pub(crate) filename: String,
    pub(crate) kind: &'static str,
    pub(crate) size: usize,
    pub(crate) status: FileStatus,
    /// Terms indexed from the file, once read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) words: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// Where a file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FileStatus {
    Queued,
    Processing,
    Done,
    Failed,
}

/// One ranked resume.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RankedResume {
    /// 1 for the best.
    pub(crate) rank: usize,
    pub(crate) filename: String,
    pub(crate) file_index: usize,
    /// The BM25 score, rounded to 4 decimals.
    pub(crate) score: f64,
    /// The description's terms found in the resume, the strongest first.
    pub(crate) matched_terms: Vec<String>,
    /// The share of the description's terms found, 0 to 1.
    pub(crate) coverage: f64,
    /// The resume's length in terms.
    pub(crate) words: usize,
}

/// A file that could not be read.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FileFailure {
    pub(crate) file_index: usize,
    pub(crate) filename: String,
    pub(crate) error: String,
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

impl Progress {
    fn new(batch_id: &str, uploads: &[Upload]) -> Self {
        let total = uploads.len();
        Progress {
            completed: 0,
            total,
            status: "processing",
            message: format!(
                "Queued {total} file{} for screening",
                if total == 1 { "" } else { "s" }
            ),
            batch_id: batch_id.to_owned(),
            files: uploads
                .iter()
                .enumerate()
                .map(|(index, u)| FileProgress {
                    index,
                    filename: u.filename.clone(),
                    kind: u.kind.as_str(),
                    size: u.bytes.len(),
                    status: FileStatus::Queued,
                    words: None,
                    error: None,
                })
                .collect(),
            results: None,
            successful_files: None,
            failed_files: None,
            errors: None,
            query_terms: None,
        }
    }
}

impl ResumeScreener {
    /// Accepts a batch for `user` (`409` while one of theirs still runs), publishes its first
    /// update and starts it. Returns the batch id.
    pub(crate) fn start_batch(
        &self,
        user: &str,
        terms: Vec<String>,
        uploads: Vec<Upload>,
    ) -> Result<String, ApiError> {
        let mut users = self.inner.users.lock();
        let slot = users
            .entry(user.to_owned())
            .or_insert_with(|| self.new_slot());
        if let Some(running) = &slot.running {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "batch {} is still running; wait for it to complete, or DELETE \
                     /api/v1/sse/progress/{user} to cancel it",
                    running.batch_id
                ),
            ));
        }
        // Held until the batch ends: at most `max_batches` run at once, over all users.
        let ticket = self.inner.admission.admit(user)?;
        let n = self
            .inner
            .next_batch
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let batch_id = format!("batch-{n}");
        let ctl = Arc::new(BatchCtl {
            user: user.to_owned(),
            generation: slot.generation,
            batch_id: batch_id.clone(),
            cancelled: AtomicBool::new(false),
        });
        let progress = Progress::new(&batch_id, &uploads);
        self.publish(user, slot.generation, &progress);
        slot.progress = Some(progress);
        slot.running = Some(Arc::clone(&ctl));
        drop(users);
        let app = self.clone();
        tokio::spawn(async move {
            run(app, ctl, terms, uploads).await;
            drop(ticket);
        });
        Ok(batch_id)
    }

    /// Applies `f` to the batch's progress and publishes the result, unless the batch was
    /// cancelled or cleared. `last`: the batch is over (it no longer blocks a new one).
    fn update(&self, ctl: &Arc<BatchCtl>, last: bool, f: impl FnOnce(&mut Progress)) {
        let mut users = self.inner.users.lock();
        let Some(slot) = users.get_mut(&ctl.user) else {
            return;
        };
        if ctl.is_cancelled() || slot.generation != ctl.generation {
            return;
        }
        let Some(progress) = slot.progress.as_mut() else {
            return;
        };
        if progress.batch_id != ctl.batch_id {
            return;
        }
        f(progress);
        self.publish(&ctl.user, slot.generation, progress);
        if last && slot.running.as_ref().is_some_and(|r| Arc::ptr_eq(r, ctl)) {
            slot.running = None;
        }
    }
}

/// Clears the batch's `running` mark however the batch ends (even by a panic).
struct RunningGuard {
    app: ResumeScreener,
    ctl: Arc<BatchCtl>,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        let mut users = self.app.inner.users.lock();
        if let Some(slot) = users.get_mut(&self.ctl.user) {
            if slot
                .running
                .as_ref()
                .is_some_and(|r| Arc::ptr_eq(r, &self.ctl))
            {
                slot.running = None;
            }
        }
    }
}

/// Runs a batch: every file on the shared pool, then the ranking and the final update.
async fn run(app: ResumeScreener, ctl: Arc<BatchCtl>, terms: Vec<String>, uploads: Vec<Upload>) {
    let _guard = RunningGuard {
        app: app.clone(),
        ctl: Arc::clone(&ctl),
    };
    let total = uploads.len();
    let names: Vec<String> = uploads.iter().map(|u| u.filename.clone()).collect();
    let mut tasks = JoinSet::new();
    for (index, upload) in uploads.into_iter().enumerate() {
        let app = app.clone();
        let ctl = Arc::clone(&ctl);
        tasks.spawn(async move { (index, process(&app, &ctl, index, upload).await) });
    }
    let mut outcomes: Vec<Option<Result<Document, String>>> = (0..total).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((index, outcome)) = joined {
            outcomes[index] = Some(outcome);
        }
    }
    if ctl.is_cancelled() {
        return;
    }

    let mut docs = Vec::new();
    let mut doc_files = Vec::new();
    let mut errors = Vec::new();
    for (index, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Some(Ok(doc)) => {
                docs.push(doc);
                doc_files.push(index);
            }
            Some(Err(error)) => errors.push(FileFailure {
                file_index: index,
                filename: names[index].clone(),
                error,
            }),
            None => errors.push(FileFailure {
                file_index: index,
                filename: names[index].clone(),
                error: "internal error while processing the file".to_owned(),
            }),
        }
    }
    let results: Vec<RankedResume> = rank(&terms, &docs)
        .into_iter()
        .enumerate()
        .map(|(pos, scored)| {
            let file_index = doc_files[scored.index];
            RankedResume {
                rank: pos + 1,
                filename: names[file_index].clone(),
                file_index,
                score: round4(scored.score),
                coverage: round4(scored.matched.len() as f64 / terms.len().max(1) as f64),
                matched_terms: scored.matched.into_iter().map(|(t, _)| t).collect(),
                words: docs[scored.index].len(),
            }
        })
        .collect();
    let ok = results.len();
    let failed = errors.len();
    app.update(&ctl, true, |p| {
        p.status = "completed";
        p.completed = total;
        p.message = if failed == 0 {
            "All files processed successfully!".to_owned()
        } else {
            format!("Processed {total} files: {ok} ranked, {failed} could not be read")
        };
        for e in &errors {
            if let Some(f) = p.files.get_mut(e.file_index) {
                f.status = FileStatus::Failed;
                f.error.get_or_insert_with(|| e.error.clone());
            }
        }
        p.results = Some(results);
        p.successful_files = Some(ok);
        p.failed_files = Some(failed);
        p.errors = Some(errors);
        p.query_terms = Some(terms);
    });
}

/// One file on the pool: its text, tokenized into a BM25 document, or why it cannot be read.
async fn process(
    app: &ResumeScreener,
    ctl: &Arc<BatchCtl>,
    index: usize,
    upload: Upload,
) -> Result<Document, String> {
    let Ok(_permit) = app.inner.pool.acquire().await else {
        return Err("the server is shutting down".to_owned());
    };
    if ctl.is_cancelled() {
        return Err("cancelled".to_owned());
    }
    let name = upload.filename.clone();
    app.update(ctl, false, |p| {
        p.files[index].status = FileStatus::Processing;
        p.message = format!("Processing file {} of {}: {name}", index + 1, p.total);
    });
    let delay = app.inner.config.file_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let kind = upload.kind;
    let outcome = tokio::task::spawn_blocking(move || {
        let text = extract_text(kind, &upload.bytes)?;
        let tokens = tokenize(&text);
        if tokens.is_empty() {
            return Err("no words found in the file".to_owned());
        }
        Ok(Document::from_tokens(tokens))
    })
    .await
    .unwrap_or_else(|e| Err(format!("internal error while reading the file: {e}")));
    app.update(ctl, false, |p| {
        p.completed += 1;
        let f = &mut p.files[index];
        match &outcome {
            Ok(doc) => {
                f.status = FileStatus::Done;
                f.words = Some(doc.len());
                p.message = format!("Processed {name} ({} of {})", p.completed, p.total);
            }
            Err(e) => {
                f.status = FileStatus::Failed;
                f.error = Some(e.clone());
                p.message = format!(
                    "Could not read {name}: {e} ({} of {})",
                    p.completed, p.total
                );
            }
        }
    });
    outcome
}
