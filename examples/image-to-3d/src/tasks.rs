//! Tasks: the registry, the events, and the worker that turns each image into a model.
//!
//! One task is one upload of several images, and one hub topic (`task-{id}`) created with its
//! owner. The worker processes the task's images one after the other (a semaphore bounds the
//! images being processed at once over all tasks; the CPU work runs on Tokio's blocking pool)
//! and publishes every event with [`Topic::publish_with`](sse_core::Topic::publish_with), so that
//! the `sequence` in each payload is the event's SSE id. `file_update` events are conflated per
//! file and `task_progress` under one key: a page that connects late (without `Last-Event-ID`)
//! first receives every file's latest state and the latest progress, in publish order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Value};
use sse_core::hub::PublishAck;
use sse_core::{Event, JobPublisher};

use crate::mesh::{decode_cost, decode_luma, HeightField, Mesh};
use crate::App;

/// The hub topic of a task.
pub(crate) fn topic_name(task_id: &str) -> String {
    format!("task-{task_id}")
}

/// One uploaded file.
#[derive(Debug)]
pub(crate) struct Upload {
    pub(crate) filename: String,
    pub(crate) bytes: Bytes,
}

/// A file's state, as sent in `file_update` and in the one-shot status.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FileView {
    pub(crate) file_id: String,
    pub(crate) filename: String,
    /// Bytes uploaded.
    pub(crate) size: usize,
    /// `queued`, `processing`, `completed` or `failed`.
    pub(crate) status: &'static str,
    /// 0–100.
    pub(crate) progress: u8,
    pub(crate) message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) image_size: Option<[u32; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) grid: Option<[u32; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) vertices: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) triangles: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) download_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) model_bytes: Option<usize>,
}

impl FileView {
    fn finished(&self) -> bool {
        matches!(self.status, "completed" | "failed")
    }
}

#[derive(Debug)]
struct TaskState {
    /// `processing`, `completed` or `failed`.
    status: &'static str,
    files: Vec<FileView>,
    models: HashMap<String, Bytes>,
    finished_at: Option<Instant>,
}

/// One task.
#[derive(Debug)]
pub(crate) struct Task {
    pub(crate) id: String,
    pub(crate) owner: String,
    created: Instant,
    state: Mutex<TaskState>,
}

impl Task {
    pub(crate) fn new(id: String, owner: String, files: Vec<FileView>) -> Task {
        Task {
            id,
            owner,
            created: Instant::now(),
            state: Mutex::new(TaskState {
                status: "processing",
                files,
                models: HashMap::new(),
                finished_at: None,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, TaskState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn file(&self, idx: usize) -> Option<FileView> {
        self.state().files.get(idx).cloned()
    }

    fn update(&self, idx: usize, change: impl FnOnce(&mut FileView)) {
        if let Some(f) = self.state().files.get_mut(idx) {
            change(f);
        }
    }

    /// A model, by file id.
    pub(crate) fn model(&self, file_id: &str) -> Option<(String, Bytes)> {
        let st = self.state();
        let bytes = st.models.get(file_id)?.clone();
        let name = st
            .files
            .iter()
            .find(|f| f.file_id == file_id)?
            .filename
            .clone();
        Some((name, bytes))
    }

    /// The counts behind `task_progress`.
    fn progress_payload(&self, message: &str) -> Value {
        let st = self.state();
        let total = st.files.len();
        let done = st.files.iter().filter(|f| f.finished()).count();
        let completed = st.files.iter().filter(|f| f.status == "completed").count();
        let sum: usize = st
            .files
            .iter()
            .map(|f| {
                if f.finished() {
                    100
                } else {
                    usize::from(f.progress)
                }
            })
            .sum();
        let progress = sum.checked_div(total).unwrap_or(100);
        json!({
            "task_id": self.id,
            "job_id": self.id,
            "status": st.status,
            "progress": progress,
            "current": done,
            "total": total,
            "total_files": total,
            "completed_files": completed,
            "failed_files": done - completed,
            "message": message,
        })
    }

    /// The one-shot status (`GET /api/v1/status/tasks/{id}`).
    pub(crate) fn status_json(&self, last_sequence: u64) -> Value {
        let mut v = self.progress_payload("");
        let st = self.state();
        if let Some(obj) = v.as_object_mut() {
            obj.remove("message");
            obj.insert("files".into(), json!(st.files));
            obj.insert("last_sequence".into(), json!(last_sequence));
        }
        v
    }

    fn finished_before(&self, deadline: Instant) -> bool {
        self.state().finished_at.is_some_and(|t| t < deadline)
    }
}

/// Why a task could not be registered.
#[derive(Debug)]
pub(crate) struct TooManyTasks;

/// The tasks, by id.
#[derive(Debug, Default)]
pub(crate) struct Tasks {
    map: Mutex<HashMap<String, Arc<Task>>>,
}

impl Tasks {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Task>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<Task>> {
        self.map().get(id).cloned()
    }

    /// Registers `task`, after dropping expired ones, unless `max` tasks are kept already.
    pub(crate) fn insert(
        &self,
        task: Arc<Task>,
        max: usize,
        ttl: Duration,
    ) -> Result<(), TooManyTasks> {
        self.sweep(ttl);
        let mut map = self.map();
        if map.len() >= max {
            return Err(TooManyTasks);
        }
        map.insert(task.id.clone(), task);
        Ok(())
    }

    /// Drops tasks (and their models) finished more than `ttl` ago.
    pub(crate) fn sweep(&self, ttl: Duration) {
        let Some(deadline) = Instant::now().checked_sub(ttl) else {
            return;
        };
        self.map().retain(|_, t| !t.finished_before(deadline));
    }
}

/// Publishes a task's events: every payload carries `sequence`, its SSE id.
pub(crate) struct Publisher {
    job: JobPublisher,
    task: Arc<Task>,
    /// The ack of the latest publish: its sequence is the terminal event's id minus one.
    last: Mutex<Option<PublishAck>>,
}

impl Publisher {
    pub(crate) fn new(job: JobPublisher, task: Arc<Task>) -> Self {
        Publisher {
            job,
            task,
            last: Mutex::new(None),
        }
    }

    /// Keeps `ack` as the latest publish's. Publishes hand the event over at once (to the ring,
    /// or to the backplane, which stores one topic's events in call order), so only the latest
    /// ack is awaited, by [`finish`](Self::finish).
    fn sent(&self, ack: PublishAck) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(ack);
    }

    /// A `file_update` with file `idx`'s current state, conflated per file.
    pub(crate) fn file(&self, idx: usize) {
        let Some(f) = self.task.file(idx) else {
            return;
        };
        let key = format!("file:{}", f.file_id);
        let task_id = self.task.id.clone();
        // A publish fails only once the topic is finished, which only this publisher does (or,
        // with a backplane, while Redis is down: the next update supersedes it).
        let ack = self.job.topic().publish_with(Some(&key), move |seq| {
            let mut v = json!(f);
            if let Some(obj) = v.as_object_mut() {
                obj.insert("sequence".into(), json!(seq));
                obj.insert("task_id".into(), json!(task_id));
            }
            Event::new().event("file_update").json_owned(v)
        });
        self.sent(ack);
    }

    /// A `task_progress` with the task's current counts.
    pub(crate) fn progress(&self, message: &str) {
        let mut v = self.task.progress_payload(message);
        let ack = self
            .job
            .topic()
            .publish_with(Some("task_progress"), move |seq| {
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("sequence".into(), json!(seq));
                }
                Event::new().event("task_progress").json_owned(v)
            });
        self.sent(ack);
    }

    /// The terminal event: `task_completed` if at least one model was made, else `task_failed`.
    async fn finish(self) {
        let Publisher { job, task, last } = self;
        let last = last.into_inner().unwrap_or_else(|e| e.into_inner());
        let (status, files, processing_time) = {
            let mut st = task.state();
            let any_model = st.files.iter().any(|f| f.status == "completed");
            st.status = if any_model { "completed" } else { "failed" };
            st.finished_at = Some(Instant::now());
            (
                st.status,
                st.files.clone(),
                task.created.elapsed().as_secs_f64(),
            )
        };
        // This worker is the topic's only publisher, so the terminal event's id is the one after
        // its latest publish (stored by now, on every node).
        let previous = match last {
            Some(ack) => ack.await.ok(),
            None => None,
        };
        let sequence = previous.unwrap_or_else(|| job.topic().last_seq()) + 1;
        let failed: Vec<Value> = files
            .iter()
            .filter(|f| f.status == "failed")
            .map(|f| json!({ "file_id": f.file_id, "filename": f.filename, "error": f.error }))
            .collect();
        if status == "completed" {
            let models: Vec<Value> = files
                .iter()
                .filter(|f| f.status == "completed")
                .map(|f| {
                    json!({
                        "file_id": f.file_id,
                        "filename": f.filename,
                        "download_url": f.download_url,
                        "vertices": f.vertices,
                        "triangles": f.triangles,
                        "grid": f.grid,
                        "model_bytes": f.model_bytes,
                    })
                })
                .collect();
            let payload = json!({
                "sequence": sequence,
                "task_id": task.id,
                "job_id": task.id,
                "status": "completed",
                "result": {
                    "job_id": task.id,
                    "total_files": files.len(),
                    "completed_files": models.len(),
                    "failed_files": failed.len(),
                    "processing_time": (processing_time * 1000.0).round() / 1000.0,
                },
                "models": models,
                "failed": failed,
            });
            if let Err(e) = job
                .complete(Event::new().event("task_completed").json_owned(payload))
                .await
            {
                eprintln!("image-to-3d: task {}: cannot publish its end: {e}", task.id);
            }
        } else {
            let payload = json!({
                "sequence": sequence,
                "task_id": task.id,
                "job_id": task.id,
                "status": "failed",
                "error": format!("none of the {} files could be converted", files.len()),
                "details": { "failed": failed },
            });
            if let Err(e) = job
                .fail_with(Event::new().event("task_failed").json_owned(payload))
                .await
            {
                eprintln!("image-to-3d: task {}: cannot publish its end: {e}", task.id);
            }
        }
    }
}

/// Waits `delay` between stages (so that a person can watch the progress), if not zero.
async fn pause(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

/// Processes every file of the task, then finishes it.
pub(crate) async fn run(app: Arc<App>, publisher: Publisher, uploads: Vec<Upload>) {
    for (idx, upload) in uploads.into_iter().enumerate() {
        process_file(&app, &publisher, idx, upload).await;
    }
    let (done, failed) = {
        let st = publisher.task.state();
        let failed = st.files.iter().filter(|f| f.status == "failed").count();
        (st.files.len() - failed, failed)
    };
    publisher.progress(&format!(
        "finished: {done} model{} ready, {failed} failed",
        if done == 1 { "" } else { "s" }
    ));
    publisher.finish().await;
}

async fn process_file(app: &App, p: &Publisher, idx: usize, upload: Upload) {
    let cfg = &app.config;
    // The semaphore is never closed; without a permit the work just runs unbounded.
    let _permit = app.permits.acquire().await.ok();
    let name = upload.filename.clone();
    let step = |progress: u8, message: String| {
        p.task.update(idx, |f| {
            f.status = "processing";
            f.progress = progress;
            f.message = message;
        });
        p.file(idx);
        p.progress(&format!("processing {name}"));
    };
    let fail = |error: String| {
        p.task.update(idx, |f| {
            f.status = "failed";
            f.progress = 100;
            f.message = format!("failed: {error}");
            f.error = Some(error);
        });
        p.file(idx);
        p.progress(&format!("{name} failed"));
    };

    step(5, "decoding the image".into());
    pause(cfg.step_delay).await;
    let (max_side, max_grid) = (cfg.max_image_side, cfg.max_grid);
    let bytes = upload.bytes;
    // Memory for the decode, from the server's budget shared by every worker: wait until it
    // fits; an image that could never fit fails now. (A header that cannot be read is left to
    // the decoder, which says why.)
    let cost_kib = decode_cost(&bytes).ok().map(|b| b.div_ceil(1024));
    let budget_kib = cfg.max_decode_bytes / 1024;
    let _memory = match cost_kib {
        Some(kib) if kib > budget_kib => {
            return fail(format!(
                "decoding this image takes {} MiB, more than the server's decode budget of {} MiB",
                kib.div_ceil(1024),
                budget_kib / 1024
            ))
        }
        Some(kib) => app
            .decode_budget
            .acquire_many(u32::try_from(kib.max(1)).unwrap_or(u32::MAX))
            .await
            .ok(),
        None => None,
    };
    let decoded = tokio::task::spawn_blocking(move || {
        decode_luma(&bytes, max_side)
            .map(|luma| (luma.dimensions(), HeightField::from_luma(&luma, max_grid)))
    })
    .await;
    let ((w, h), field) = match decoded {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return fail(e.to_string()),
        Err(e) => return fail(format!("internal error while decoding: {e}")),
    };
    let grid = [field.columns, field.rows];
    p.task.update(idx, |f| {
        f.image_size = Some([w, h]);
        f.grid = Some(grid);
    });
    step(
        35,
        format!(
            "decoded {w}×{h} px; height field of {}×{} points",
            grid[0], grid[1]
        ),
    );
    pause(cfg.step_delay).await;

    let relief = cfg.relief;
    let mesh = tokio::task::spawn_blocking(move || Mesh::from_height_field(&field, relief)).await;
    let Ok(mesh) = mesh else {
        return fail("internal error while building the mesh".into());
    };
    let (vertices, triangles) = (mesh.vertex_count(), mesh.triangle_count());
    p.task.update(idx, |f| {
        f.vertices = Some(vertices);
        f.triangles = Some(triangles);
    });
    step(
        70,
        format!("mesh of {vertices} vertices and {triangles} triangles; writing the .glb"),
    );
    pause(cfg.step_delay).await;

    let node = name.clone();
    let glb = tokio::task::spawn_blocking(move || mesh.to_glb(&node)).await;
    let Ok(glb) = glb else {
        return fail("internal error while writing the model".into());
    };
    let size = glb.len();
    let file_id = p.task.file(idx).map(|f| f.file_id).unwrap_or_default();
    let url = format!(
        "{}/api/v1/download/{}/{file_id}.glb",
        cfg.base_path, p.task.id
    );
    p.task.state().models.insert(file_id, Bytes::from(glb));
    p.task.update(idx, |f| {
        f.status = "completed";
        f.progress = 100;
        f.message = format!("model ready ({:.1} KB)", size as f64 / 1024.0);
        f.download_url = Some(url);
        f.model_bytes = Some(size);
    });
    p.file(idx);
    p.progress(&format!("{name} done"));
}
