//! Jobs: the store behind the polling endpoint, the worker pool, and the publishing of every
//! state change to the job's topic and to its owner's topic.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::FutureExt as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sse_core::hub::{TopicConfig, TopicOptions};
use sse_core::{Event, JobPublisher};

use crate::art::{self, Style};
use crate::sheet::{self, CharacterRequest};
use crate::util::fnv1a;
use crate::Shared;
use sse_examples_support::time::now;
use sse_examples_support::{files, random_hex, ApiError};

/// What a job makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// A character sheet with a portrait.
    Character,
    /// An image from a prompt.
    Media,
}

impl JobKind {
    /// `character` or `media`.
    pub fn name(self) -> &'static str {
        match self {
            JobKind::Character => "character",
            JobKind::Media => "media",
        }
    }

    /// The hub topic of `owner`'s job `id`: `{kind}:{owner}/{id}`. The owner is in the name so
    /// that a node that learns of the topic from the backplane (which carries no owner) still
    /// serves it to its owner only (see [`owner_in_name`]), and another user's request names a
    /// topic that does not exist.
    pub fn topic(self, owner: &str, id: &str) -> String {
        format!("{}:{owner}/{id}", self.name())
    }
}

/// The owner named by a topic of this app (`user:{name}`, `{kind}:{owner}/{id}`), for topics
/// that a node created from the backplane, which carries no owner.
pub fn owner_in_name(topic: &str) -> Option<&str> {
    if let Some(user) = topic.strip_prefix("user:") {
        return Some(user);
    }
    let rest = topic
        .strip_prefix("character:")
        .or_else(|| topic.strip_prefix("media:"))?;
    rest.rsplit_once('/').map(|(owner, _)| owner)
}

/// The hub topic that carries every job update of `user` (the `/api/v1/sse/jobs/my` stream).
pub fn user_topic(user: &str) -> String {
    format!("user:{user}")
}

/// A job's state, as BullMQ names them in the character-jobs report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Queued, waiting for a worker.
    Waiting,
    /// A worker is on it.
    Active,
    /// Done; `result` is set.
    Completed,
    /// Failed; `failedReason` is set.
    Failed,
}

/// A job as clients see it: the polling endpoint's `data` and the fields of every SSE message.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    /// The job id.
    pub job_id: String,
    /// `character` or `media`.
    pub job_type: JobKind,
    /// The state.
    pub status: JobStatus,
    /// 0 to 100.
    pub progress: u8,
    /// The current step, machine-readable (`rolling_stats`, `rendering_portrait`, …).
    pub step: String,
    /// The current step, for people.
    pub message: String,
    /// When the job was created.
    pub created_at: String,
    /// When a worker took it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When it completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// When it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<String>,
    /// The result (completed), or `{"error": reason}` (failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_reason: Option<String>,
}

impl JobView {
    /// Whether the job has ended.
    pub fn is_finished(&self) -> bool {
        matches!(self.status, JobStatus::Completed | JobStatus::Failed)
    }
}

/// A character-jobs report message: `{"type": kind, ...job, "timestamp"}`, sent as an unnamed event (the
/// frontends read them with `onmessage`).
pub(crate) fn message(kind: &'static str, view: &JobView) -> Event<'static> {
    #[derive(Serialize)]
    struct Message {
        #[serde(rename = "type")]
        kind: &'static str,
        #[serde(flatten)]
        job: JobView,
        timestamp: String,
    }
    Event::new().json_owned(Message {
        kind,
        job: view.clone(),
        timestamp: now(),
    })
}

struct Record {
    owner: String,
    order: u64,
    view: JobView,
    file: Option<PathBuf>,
}

/// All jobs, by id.
#[derive(Default)]
pub(crate) struct Jobs {
    map: Mutex<HashMap<String, Record>>,
    order: AtomicU64,
}

impl Jobs {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Record>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The job `id` of kind `kind`, if `user` owns it (anything else looks like "no such job").
    pub(crate) fn get(&self, id: &str, kind: Option<JobKind>, user: &str) -> Option<JobView> {
        let map = self.lock();
        let r = map.get(id)?;
        (r.owner == user && kind.is_none_or(|k| k == r.view.job_type)).then(|| r.view.clone())
    }

    /// The file a completed job of `user` produced.
    pub(crate) fn file(&self, id: &str, user: &str) -> Option<PathBuf> {
        let map = self.lock();
        let r = map.get(id)?;
        if r.owner == user {
            r.file.clone()
        } else {
            None
        }
    }

    /// Every job of `user`, oldest first.
    pub(crate) fn of_user(&self, user: &str) -> Vec<JobView> {
        let map = self.lock();
        let mut v: Vec<(u64, JobView)> = map
            .values()
            .filter(|r| r.owner == user)
            .map(|r| (r.order, r.view.clone()))
            .collect();
        v.sort_by_key(|(o, _)| *o);
        v.into_iter().map(|(_, j)| j).collect()
    }

    /// The ids of `user`'s jobs, with their kinds.
    pub(crate) fn ids_of_user(&self, user: &str) -> Vec<(String, JobKind)> {
        self.lock()
            .iter()
            .filter(|(_, r)| r.owner == user)
            .map(|(id, r)| (id.clone(), r.view.job_type))
            .collect()
    }

    /// How many jobs are in each state: waiting, active, completed, failed.
    pub(crate) fn counts(&self) -> [usize; 4] {
        let mut c = [0; 4];
        for r in self.lock().values() {
            c[r.view.status as usize] += 1;
        }
        c
    }

    /// Forgets job `id`; returns the file it produced, if any.
    fn remove(&self, id: &str) -> Option<PathBuf> {
        self.lock().remove(id).and_then(|r| r.file)
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Record)) -> Option<JobView> {
        let mut map = self.lock();
        let r = map.get_mut(id)?;
        f(r);
        Some(r.view.clone())
    }
}

/// An image request (`POST /api/v1/media/jobs`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaRequest {
    /// What to draw (1 to 200 characters); seeds the artwork.
    pub prompt: String,
    /// 16 to 1024 pixels (default 512).
    #[serde(default)]
    pub width: Option<u32>,
    /// 16 to 1024 pixels (default 512).
    #[serde(default)]
    pub height: Option<u32>,
    /// `nebula`, `rings` or `mosaic` (default: picked by the prompt).
    #[serde(default)]
    pub style: Option<String>,
}

impl MediaRequest {
    /// Checks the request; the error says what is wrong, for a 400 answer.
    pub fn validate(&self) -> Result<(), String> {
        let p = self.prompt.trim();
        if p.is_empty() {
            return Err("`prompt` must not be empty".into());
        }
        if p.chars().count() > 200 {
            return Err("`prompt` must be at most 200 characters".into());
        }
        for (name, v) in [("width", self.width), ("height", self.height)] {
            if let Some(v) = v {
                if !(16..=1024).contains(&v) {
                    return Err(format!("`{name}` must be between 16 and 1024, got {v}"));
                }
            }
        }
        if let Some(s) = &self.style {
            if Style::parse(s).is_none() {
                return Err(format!(
                    "unknown `style` {s:?}: expected nebula, rings or mosaic"
                ));
            }
        }
        Ok(())
    }
}

/// A validated job request.
#[derive(Debug, Clone)]
pub(crate) enum JobInput {
    Character(CharacterRequest),
    Media(MediaRequest),
}

impl JobInput {
    fn kind(&self) -> JobKind {
        match self {
            JobInput::Character(_) => JobKind::Character,
            JobInput::Media(_) => JobKind::Media,
        }
    }
}

/// Why a job could not be queued.
#[derive(Debug)]
pub(crate) enum SubmitError {
    /// Too many jobs in flight: this user's (429) or the server's (503), with `Retry-After`.
    Refused(ApiError),
    /// The hub refused the topic, or no job id could be drawn.
    Hub(String),
}

/// Settings of the per-user topic: a long history (it carries every job of the user) and room
/// in the snapshot for the latest state of many jobs.
fn user_topic_config() -> TopicConfig {
    let mut cfg = TopicConfig::default().history_len(4096);
    cfg.max_snapshot_keys = 1024;
    cfg
}

/// Creates (or finds) `user`'s topic.
pub(crate) fn ensure_user_topic(shared: &Shared, user: &str) -> Result<sse_core::Topic, String> {
    shared
        .hub
        .create_topic(
            &user_topic(user),
            TopicOptions::new().owner(user).config(user_topic_config()),
        )
        .map_err(|e| e.to_string())
}

/// Publishes one job's changes: store first, then the job's topic, then the owner's topic, so
/// that a client that reads the store after subscribing misses nothing.
pub(crate) struct Reporter {
    shared: Arc<Shared>,
    id: String,
    owner: String,
    publisher: Mutex<Option<JobPublisher>>,
}

impl Reporter {
    /// Publishes a non-final update. Publishing hands the event over at once (to the local
    /// ring, or to the backplane's writer) from any thread, the blocking pool included;
    /// nobody waits for the ack: a publish fails only when the topic was finished or evicted
    /// (nobody can listen then) or while Redis is down (the next update supersedes it).
    fn publish(&self, view: &JobView) {
        let publisher = self
            .publisher
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(p) = publisher.as_ref() else {
            return; // already finished
        };
        drop(p.event_keyed("status", message("job_update", view)));
        drop(publisher);
        self.publish_to_owner(view);
    }

    fn publish_to_owner(&self, view: &JobView) {
        if let Ok(t) = ensure_user_topic(&self.shared, &self.owner) {
            drop(t.publish_keyed(&self.id, message("job_update", view)));
        }
    }

    /// Publishes the final update and finishes the job's topic (on every node, with a
    /// backplane).
    async fn finish(&self, view: &JobView) {
        let publisher = self
            .publisher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(p) = publisher else {
            return; // already finished
        };
        if let Err(e) = p.complete(message("job_update", view)).await {
            eprintln!("characters: job {}: cannot finish its stream: {e}", self.id);
        }
        self.publish_to_owner(view);
    }

    /// Reports progress (the job becomes `active`).
    pub(crate) fn progress(&self, progress: u8, step: &str, message: impl Into<String>) {
        let message = message.into();
        let mut changed = false;
        let view = self.shared.jobs.update(&self.id, |r| {
            if r.view.is_finished() {
                return;
            }
            if r.view.status == JobStatus::Waiting {
                r.view.status = JobStatus::Active;
                r.view.started_at = Some(now());
            }
            r.view.progress = progress.max(r.view.progress).min(99);
            r.view.step = step.to_owned();
            r.view.message = message;
            changed = true;
        });
        if let (Some(v), true) = (view, changed) {
            self.publish(&v);
        }
    }

    async fn complete(&self, result: Value, file: Option<PathBuf>) {
        let view = self.shared.jobs.update(&self.id, |r| {
            r.view.status = JobStatus::Completed;
            r.view.progress = 100;
            r.view.step = "completed".into();
            r.view.message = "Done".into();
            r.view.completed_at = Some(now());
            r.view.result = Some(result);
            r.file = file;
        });
        if let Some(v) = view {
            self.finish(&v).await;
        }
    }

    async fn fail(&self, reason: &str) {
        let view = self.shared.jobs.update(&self.id, |r| {
            r.view.status = JobStatus::Failed;
            r.view.message = format!("Failed: {reason}");
            r.view.failed_at = Some(now());
            r.view.result = Some(json!({ "error": reason }));
            r.view.failed_reason = Some(reason.to_owned());
        });
        if let Some(v) = view {
            self.finish(&v).await;
        }
    }
}

/// Validates nothing (the handler did), queues the job and returns its first state.
pub(crate) fn submit(
    shared: &Arc<Shared>,
    owner: &str,
    input: JobInput,
) -> Result<JobView, SubmitError> {
    // Held until the job ends; dropping it on an early return frees the slot.
    let ticket = shared
        .admission
        .admit(owner)
        .map_err(SubmitError::Refused)?;
    let kind = input.kind();
    let id = random_hex(8).map_err(|e| SubmitError::Hub(e.to_string()))?;
    let publisher = ensure_user_topic(shared, owner).and_then(|_| {
        shared
            .hub
            .job_with(&kind.topic(owner, &id), TopicOptions::new().owner(owner))
            .map_err(|e| e.to_string())
    });
    let publisher = publisher.map_err(SubmitError::Hub)?;
    let view = JobView {
        job_id: id.clone(),
        job_type: kind,
        status: JobStatus::Waiting,
        progress: 0,
        step: "queued".into(),
        message: "Waiting for a worker".into(),
        created_at: now(),
        started_at: None,
        completed_at: None,
        failed_at: None,
        result: None,
        failed_reason: None,
    };
    shared.jobs.lock().insert(
        id.clone(),
        Record {
            owner: owner.to_owned(),
            order: shared.jobs.order.fetch_add(1, Ordering::Relaxed),
            view: view.clone(),
            file: None,
        },
    );
    let reporter = Arc::new(Reporter {
        shared: Arc::clone(shared),
        id,
        owner: owner.to_owned(),
        publisher: Mutex::new(Some(publisher)),
    });
    reporter.publish(&view);
    let permits = Arc::clone(&shared.permits);
    let shared2 = Arc::clone(shared);
    shared.runtime.spawn(async move {
        let permit = permits.acquire_owned().await;
        let work = AssertUnwindSafe(run(&shared2, &reporter, input)).catch_unwind();
        match work.await {
            Ok(Ok((result, file))) => reporter.complete(result, file).await,
            Ok(Err(reason)) => reporter.fail(&reason).await,
            Err(_) => reporter.fail("internal error: the worker crashed").await,
        }
        drop(permit);
        drop(ticket);
        // The record and the image go when the retention ends.
        tokio::time::sleep(shared2.config.retention).await;
        if let Some(file) = shared2.jobs.remove(&reporter.id) {
            files::remove(&file).await;
        }
    });
    Ok(view)
}

async fn run(
    shared: &Arc<Shared>,
    rep: &Arc<Reporter>,
    input: JobInput,
) -> Result<(Value, Option<PathBuf>), String> {
    match input {
        JobInput::Character(req) => character(shared, rep, req).await,
        JobInput::Media(req) => media(shared, rep, req).await,
    }
}

/// The URL of job `id`'s image.
fn file_url(shared: &Shared, id: &str) -> String {
    format!("{}/api/v1/media/files/{id}.png", shared.config.base_path)
}

async fn save(dir: &Path, id: &str, png: &[u8]) -> Result<PathBuf, String> {
    tokio::fs::create_dir_all(dir).await.map_err(|e| {
        format!(
            "could not create the image directory {}: {e}",
            dir.display()
        )
    })?;
    let path = dir.join(format!("{id}.png"));
    tokio::fs::write(&path, png)
        .await
        .map_err(|e| format!("could not save the image to {}: {e}", path.display()))?;
    Ok(path)
}

/// Runs `render` on the blocking pool, reporting its progress between `from` and `to` percent.
async fn render_blocking(
    rep: &Arc<Reporter>,
    from: u8,
    to: u8,
    step: &'static str,
    what: &'static str,
    render: impl FnOnce(&mut dyn FnMut(f32)) -> Result<Vec<u8>, String> + Send + 'static,
) -> Result<Vec<u8>, String> {
    let rep = Arc::clone(rep);
    tokio::task::spawn_blocking(move || {
        render(&mut |f: f32| {
            let pct = from + ((f * f32::from(to - from)) as u8).min(to - from);
            rep.progress(pct, step, format!("{what}: {}%", (f * 100.0).round()));
        })
    })
    .await
    .map_err(|e| format!("the {what} renderer crashed: {e}"))?
}

async fn character(
    shared: &Arc<Shared>,
    rep: &Arc<Reporter>,
    req: CharacterRequest,
) -> Result<(Value, Option<PathBuf>), String> {
    let pace = shared.config.step_delay;
    rep.progress(5, "validating", "Validating the request");
    tokio::time::sleep(pace).await;
    let sheet = sheet::generate(&req);
    let s = sheet.stats;
    rep.progress(
        20,
        "rolling_stats",
        format!(
            "Rolled STR {} DEX {} CON {} INT {} WIS {} CHA {}",
            s.strength, s.dexterity, s.constitution, s.intelligence, s.wisdom, s.charisma
        ),
    );
    tokio::time::sleep(pace).await;
    rep.progress(
        35,
        "writing_backstory",
        format!(
            "Writing the story of {} the {} {}",
            sheet.name, sheet.race, sheet.class
        ),
    );
    tokio::time::sleep(pace).await;
    let (seed, class, race, size) = (
        req.hash(),
        sheet.class.clone(),
        sheet.race.clone(),
        shared.config.portrait_size,
    );
    let png = render_blocking(
        rep,
        40,
        85,
        "rendering_portrait",
        "Rendering portrait",
        move |p| art::portrait(seed, &class, &race, size, p),
    )
    .await?;
    rep.progress(90, "saving", "Saving the portrait");
    let path = save(&shared.config.files_dir, &rep.id, &png).await?;
    tokio::time::sleep(pace).await;
    let character_id = random_hex(8).map_err(|e| e.to_string())?;
    let result = json!({
        "characterId": character_id,
        "displayId": format!("char-{}", &character_id[..6]),
        "name": sheet.name,
        "class": sheet.class,
        "race": sheet.race,
        "level": sheet.level,
        "stats": sheet.stats,
        "hitPoints": sheet.hit_points,
        "armorClass": sheet.armor_class,
        "backstory": sheet.backstory,
        "seed": sheet.seed,
        "portraitUrl": file_url(shared, &rep.id),
        "portraitBytes": png.len(),
    });
    Ok((result, Some(path)))
}

async fn media(
    shared: &Arc<Shared>,
    rep: &Arc<Reporter>,
    req: MediaRequest,
) -> Result<(Value, Option<PathBuf>), String> {
    let pace = shared.config.step_delay;
    let prompt = req.prompt.trim().to_owned();
    let seed = fnv1a(&[prompt.to_lowercase().as_bytes()]);
    let style = req
        .style
        .as_deref()
        .and_then(Style::parse)
        .unwrap_or_else(|| Style::from_seed(seed));
    let (w, h) = (req.width.unwrap_or(512), req.height.unwrap_or(512));
    rep.progress(
        5,
        "preparing",
        format!("Preparing a {w}×{h} {} image", style.name()),
    );
    tokio::time::sleep(pace).await;
    let png = render_blocking(rep, 10, 85, "rendering", "Rendering", move |p| {
        art::artwork(seed, style, w, h, p)
    })
    .await?;
    rep.progress(90, "saving", "Saving the image");
    let path = save(&shared.config.files_dir, &rep.id, &png).await?;
    tokio::time::sleep(pace).await;
    let result = json!({
        "mediaId": rep.id,
        "url": file_url(shared, &rep.id),
        "prompt": prompt,
        "style": style.name(),
        "width": w,
        "height": h,
        "format": "png",
        "bytes": png.len(),
    });
    Ok((result, Some(path)))
}
