//! Video jobs: the store, the worker pool and the pipeline (generate → probe → transcode each
//! rendition), publishing `progress`, then `complete` or `error`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use futures_util::FutureExt as _;
use serde::Serialize;
use serde_json::{json, Value};
use sse_core::hub::TopicOptions;
use sse_core::{Event, JobPublisher};

use crate::ffmpeg::{self, Probe, Progress};
use crate::Shared;
use sse_examples_support::files;
use sse_examples_support::time::now;
use sse_examples_support::{random_hex, RandomError, Ticket};

/// A test clip to synthesize instead of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GenerateParams {
    /// Seconds (1 to 30).
    pub duration: u32,
    /// Width in pixels (even, 16 to 1920).
    pub width: u32,
    /// Height in pixels (even, 16 to 1080).
    pub height: u32,
    /// Frames per second (1 to 60).
    pub rate: u32,
}

impl Default for GenerateParams {
    fn default() -> Self {
        GenerateParams {
            duration: 3,
            width: 640,
            height: 360,
            rate: 25,
        }
    }
}

impl GenerateParams {
    /// Checks the parameters; the error says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=30).contains(&self.duration) {
            return Err(format!(
                "`duration` must be 1 to 30 seconds, got {}",
                self.duration
            ));
        }
        if !(16..=1920).contains(&self.width) || !(16..=1080).contains(&self.height) {
            return Err(format!(
                "`size` must be between 16x16 and 1920x1080, got {}x{}",
                self.width, self.height
            ));
        }
        if self.width % 2 == 1 || self.height % 2 == 1 {
            return Err("`size` must have even width and height (H.264 with 4:2:0)".into());
        }
        if !(1..=60).contains(&self.rate) {
            return Err(format!("`rate` must be 1 to 60 fps, got {}", self.rate));
        }
        Ok(())
    }
}

/// Where a job's video comes from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Generate(GenerateParams),
    /// An uploaded file, probed already if ffprobe was there.
    Upload(PathBuf, Option<Probe>),
}

/// One output resolution of a job.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RenditionState {
    /// `360p`, …
    pub resolution: String,
    /// Target height.
    pub height: u32,
    /// `pending`, `transcoding`, `done` or `skipped` (larger than the source).
    pub state: &'static str,
    /// 0 to 100.
    pub progress: u8,
}

/// A finished output file.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    /// `360p`, …
    pub resolution: String,
    /// Frame width (from ffprobe).
    pub width: u32,
    /// Frame height (from ffprobe).
    pub height: u32,
    /// File size.
    pub bytes: u64,
    /// Seconds.
    pub duration_sec: f64,
    /// Where to download it.
    pub url: String,
    /// File name.
    pub file: String,
}

/// A job as the `status` event and `GET /jobs/{id}` show it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    /// The job id.
    pub job_id: String,
    /// `queued`, `processing`, `completed` or `failed`.
    pub status: &'static str,
    /// `queued`, `generating`, `probing`, `transcoding`, `done` or `failed`.
    pub stage: String,
    /// Overall progress, 0 to 100.
    pub progress: u8,
    /// For people.
    pub message: String,
    /// When the job was created.
    pub created_at: String,
    /// The source video, once probed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Probe>,
    /// Every output resolution.
    pub renditions: Vec<RenditionState>,
    /// Finished outputs.
    pub outputs: Vec<Output>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The user who created it (with API tokens on).
    #[serde(skip)]
    pub(crate) owner: Option<String>,
}

impl JobView {
    /// The payload of the `status` event: the seed's fields, with the whole state as details.
    pub fn status_payload(&self) -> Value {
        json!({
            "jobId": self.job_id,
            "status": self.status,
            "stage": self.stage,
            "progress": self.progress,
            "message": self.message,
            "details": {
                "createdAt": self.created_at,
                "source": self.source,
                "renditions": self.renditions,
                "outputs": self.outputs,
                "error": self.error,
            },
        })
    }
}

/// All jobs, by id.
#[derive(Default)]
pub(crate) struct Jobs {
    map: Mutex<HashMap<String, JobView>>,
}

impl Jobs {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, JobView>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn get(&self, id: &str) -> Option<JobView> {
        self.lock().get(id).cloned()
    }

    fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    fn update<R>(&self, id: &str, f: impl FnOnce(&mut JobView) -> R) -> Option<R> {
        self.lock().get_mut(id).map(f)
    }
}

/// The hub topic of job `id`.
pub(crate) fn topic(id: &str) -> String {
    format!("video:{id}")
}

/// Publishes one job's events; the store is updated first.
struct Reporter {
    shared: Arc<Shared>,
    id: String,
    publisher: Mutex<Option<JobPublisher>>,
    units: usize,
}

impl Reporter {
    fn publisher(&self) -> MutexGuard<'_, Option<JobPublisher>> {
        self.publisher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Overall percent after `done` units of work plus `fraction` of the next: below 100 while
    /// work remains, 100 once every unit is done, so that the last `progress` event (before the
    /// terminal `complete`) says 100 — the video-transcoding report's tracker moves its bar on `progress` only.
    fn overall(&self, done: usize, fraction: f64) -> u8 {
        let units = self.units.max(1);
        if done >= units {
            return 100;
        }
        let pct = (done as f64 + fraction) / units as f64 * 100.0;
        (pct.floor() as u8).min(99)
    }

    /// Updates the store and publishes a `progress` event, conflated under `key`.
    fn progress(&self, key: &str, stage: &str, overall: u8, message: String, details: Value) {
        let view = self.shared.jobs.update(&self.id, |v| {
            v.status = "processing";
            v.stage = stage.to_owned();
            v.progress = overall.max(v.progress);
            v.message = message;
            (v.progress, v.message.clone())
        });
        let Some((progress, message)) = view else {
            return;
        };
        if let Some(p) = self.publisher().as_ref() {
            // Handed over at once (to the ring, or to the backplane's writer); nobody waits for
            // the ack: the next update supersedes a lost one.
            drop(p.event_keyed(
                key,
                Event::new().event("progress").json_owned(json!({
                    "jobId": self.id,
                    "status": "processing",
                    "stage": stage,
                    "progress": progress,
                    "message": message,
                    "details": details,
                })),
            ));
        }
    }

    async fn complete(&self, started: Instant) {
        let Some(view) = self.shared.jobs.update(&self.id, |v| {
            v.status = "completed";
            v.stage = "done".into();
            v.progress = 100;
            v.message = format!(
                "Transcoded {} rendition{}",
                v.outputs.len(),
                if v.outputs.len() == 1 { "" } else { "s" }
            );
            v.clone()
        }) else {
            return;
        };
        let event = Event::new().event("complete").json_owned(json!({
            "jobId": self.id,
            "status": "completed",
            "stage": "done",
            "progress": 100,
            "message": view.message,
            "details": {
                "outputs": view.outputs,
                "source": view.source,
                "elapsedMs": started.elapsed().as_millis() as u64,
            },
        }));
        let publisher = self.publisher().take();
        if let Some(p) = publisher {
            if let Err(e) = p.complete(event).await {
                eprintln!("video: job {}: cannot finish its stream: {e}", self.id);
            }
        }
    }

    async fn fail(&self, reason: &str) {
        // No server paths in what clients see (ffmpeg's messages name its input and output).
        let reason = &hide_paths(reason, &self.shared.config.data_dir);
        let Some(view) = self.shared.jobs.update(&self.id, |v| {
            v.status = "failed";
            v.message = reason.to_owned();
            v.error = Some(reason.to_owned());
            v.clone()
        }) else {
            return;
        };
        let event = Event::new().event("error").json_owned(json!({
            "jobId": self.id,
            "status": "failed",
            "stage": view.stage,
            "progress": view.progress,
            "message": reason,
            "details": { "error": reason, "outputs": view.outputs },
        }));
        let publisher = self.publisher().take();
        if let Some(p) = publisher {
            if let Err(e) = p.fail_with(event).await {
                eprintln!("video: job {}: cannot finish its stream: {e}", self.id);
            }
        }
    }
}

/// `message` without the data directory's absolute path (a job's files are named relative to
/// it, `JOB/upload`).
pub(crate) fn hide_paths(message: &str, data_dir: &Path) -> String {
    let dir = data_dir.to_string_lossy();
    if dir.is_empty() {
        return message.to_owned();
    }
    message
        .replace(&format!("{dir}/"), "")
        .replace(dir.as_ref(), "")
}

/// The directory of job `id`.
pub(crate) fn job_dir(shared: &Shared, id: &str) -> PathBuf {
    shared.config.data_dir.join(id)
}

/// Creates a job with `id` (its directory may already hold the upload) and queues it.
///
/// `ticket` is the job's slot in the app's limits, held until the job ends. When the job ends
/// its files and record are removed after [`crate::Config::retention`].
pub(crate) fn submit(
    shared: &Arc<Shared>,
    id: String,
    source: Source,
    owner: Option<String>,
    ticket: Ticket,
) -> Result<JobView, String> {
    let publisher = shared
        .hub
        .job_with(&topic(&id), TopicOptions::new())
        .map_err(|e| e.to_string())?;
    let renditions: Vec<RenditionState> = shared
        .config
        .renditions
        .iter()
        .map(|(name, h)| RenditionState {
            resolution: name.clone(),
            height: *h,
            state: "pending",
            progress: 0,
        })
        .collect();
    let generate = matches!(source, Source::Generate(_));
    let view = JobView {
        job_id: id.clone(),
        status: "queued",
        stage: "queued".into(),
        progress: 0,
        message: "Waiting for a worker".into(),
        created_at: now(),
        source: match &source {
            Source::Upload(_, p) => p.clone(),
            Source::Generate(_) => None,
        },
        renditions,
        outputs: Vec::new(),
        error: None,
        owner,
    };
    shared.jobs.lock().insert(id.clone(), view.clone());
    let reporter = Arc::new(Reporter {
        shared: Arc::clone(shared),
        id,
        publisher: Mutex::new(Some(publisher)),
        units: shared.config.renditions.len() + usize::from(generate),
    });
    let shared2 = Arc::clone(shared);
    shared.runtime.spawn(async move {
        let permit = Arc::clone(&shared2.permits).acquire_owned().await;
        let started = Instant::now();
        let work = std::panic::AssertUnwindSafe(run(&shared2, &reporter, source)).catch_unwind();
        match work.await {
            Ok(Ok(())) => reporter.complete(started).await,
            Ok(Err(reason)) => reporter.fail(&reason).await,
            Err(_) => reporter.fail("internal error: the worker crashed").await,
        }
        drop(permit);
        drop(ticket);
        // Retention: the files go, then the record (the hub keeps the stream's final state for
        // its own TTL).
        let id = reporter.id.clone();
        tokio::time::sleep(shared2.config.retention).await;
        files::remove(&job_dir(&shared2, &id)).await;
        shared2.jobs.remove(&id);
    });
    Ok(view)
}

fn details(res: &str, pct: u8, height: u32, p: &Progress, duration_us: u64) -> Value {
    json!({
        "resolution": res,
        "resolutionProgress": pct,
        "height": height,
        "outTimeMs": p.out_time_us.map(|t| t / 1000),
        "durationMs": duration_us / 1000,
        "frame": p.frame,
        "fps": p.fps,
        "speed": p.speed,
    })
}

async fn run(shared: &Arc<Shared>, rep: &Arc<Reporter>, source: Source) -> Result<(), String> {
    let cfg = &shared.config;
    let dir = job_dir(shared, &rep.id);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| format!("could not create the job's directory: {}", e.kind()))?;
    let mut done_units = 0;
    let (input, probed) = match source {
        Source::Generate(g) => {
            let out = dir.join("source.mp4");
            let what = format!(
                "{} s test clip, {}x{} at {} fps",
                g.duration, g.width, g.height, g.rate
            );
            rep.progress(
                "progress:generating",
                "generating",
                0,
                format!("Generating a {what}"),
                json!({ "resolution": null, "resolutionProgress": 0 }),
            );
            let duration_us = u64::from(g.duration) * 1_000_000;
            let mut last = 0u8;
            ffmpeg::run(
                &cfg.ffmpeg,
                &ffmpeg::generate_args(g.duration, g.width, g.height, g.rate, &out),
                |p| {
                    let f = p.fraction(duration_us);
                    let pct = (f * 100.0) as u8;
                    if pct > last {
                        last = pct;
                        rep.progress(
                            "progress:generating",
                            "generating",
                            rep.overall(0, f),
                            format!("Generating a {what}: {pct}%"),
                            json!({ "resolution": null, "resolutionProgress": pct, "outTimeMs": p.out_time_us.map(|t| t / 1000), "durationMs": duration_us / 1000 }),
                        );
                    }
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            done_units = 1;
            (out, None)
        }
        Source::Upload(path, probe) => (path, probe),
    };
    let probe = match probed {
        Some(p) => p,
        None => ffmpeg::probe(&cfg.ffprobe, &input)
            .await
            .map_err(|e| e.to_string())?,
    };
    let planned: Vec<(String, u32)> = {
        let fits: Vec<(String, u32)> = cfg
            .renditions
            .iter()
            .filter(|(_, h)| *h <= probe.height)
            .cloned()
            .collect();
        if fits.is_empty() {
            // A source smaller than every rendition: make the smallest one at the source's size.
            cfg.renditions
                .iter()
                .min_by_key(|(_, h)| *h)
                .map(|(n, _)| vec![(n.clone(), probe.height - probe.height % 2)])
                .unwrap_or_default()
        } else {
            fits
        }
    };
    if planned.is_empty() {
        return Err("no output resolutions are configured".into());
    }
    let skipped = cfg.renditions.len() - planned.len();
    shared.jobs.update(&rep.id, |v| {
        v.source = Some(probe.clone());
        for r in &mut v.renditions {
            if !planned.iter().any(|(n, _)| *n == r.resolution) {
                r.state = "skipped";
            }
        }
    });
    rep.progress(
        "progress:probing",
        "probing",
        rep.overall(done_units + skipped, 0.0),
        format!(
            "Source: {}x{}, {:.1} s, {}{}",
            probe.width,
            probe.height,
            probe.duration_us as f64 / 1e6,
            probe.codec,
            if probe.has_audio { " with audio" } else { "" }
        ),
        json!({ "source": probe }),
    );
    done_units += skipped;
    for (res, height) in &planned {
        let file = format!("{res}.mp4");
        let out = dir.join(&file);
        let key = format!("progress:{res}");
        let set_state = |state: &'static str, pct: u8| {
            shared.jobs.update(&rep.id, |v| {
                if let Some(r) = v.renditions.iter_mut().find(|r| r.resolution == *res) {
                    r.state = state;
                    r.progress = pct;
                }
            });
        };
        set_state("transcoding", 0);
        rep.progress(
            &key,
            "transcoding",
            rep.overall(done_units, 0.0),
            format!("Transcoding {res}: starting"),
            details(res, 0, *height, &Progress::default(), probe.duration_us),
        );
        let mut last = 0u8;
        ffmpeg::run(
            &cfg.ffmpeg,
            &ffmpeg::transcode_args(&input, *height, &out),
            |p| {
                let f = p.fraction(probe.duration_us);
                let pct = ((f * 100.0) as u8).min(99);
                if pct > last {
                    last = pct;
                    set_state("transcoding", pct);
                    let speed = p
                        .speed
                        .as_deref()
                        .map(|s| format!(" at {s}"))
                        .unwrap_or_default();
                    rep.progress(
                        &key,
                        "transcoding",
                        rep.overall(done_units, f),
                        format!("Transcoding {res}: {pct}%{speed}"),
                        details(res, pct, *height, p, probe.duration_us),
                    );
                }
            },
        )
        .await
        .map_err(|e| format!("transcoding {res} failed: {e}"))?;
        let output = describe_output(shared, &rep.id, res, &file, &out).await?;
        done_units += 1;
        set_state("done", 100);
        shared
            .jobs
            .update(&rep.id, |v| v.outputs.push(output.clone()));
        rep.progress(
            &key,
            "transcoding",
            rep.overall(done_units, 0.0),
            format!(
                "Transcoded {res}: {}x{}, {} KiB",
                output.width,
                output.height,
                output.bytes.div_ceil(1024)
            ),
            json!({
                "resolution": res,
                "resolutionProgress": 100,
                "height": height,
                "output": output,
            }),
        );
    }
    Ok(())
}

/// Checks an output with ffprobe and describes it.
async fn describe_output(
    shared: &Shared,
    id: &str,
    res: &str,
    file: &str,
    path: &Path,
) -> Result<Output, String> {
    let bytes = tokio::fs::metadata(path)
        .await
        .map_err(|e| format!("ffmpeg wrote no {res} output: {e}"))?
        .len();
    let p = ffmpeg::probe(&shared.config.ffprobe, path)
        .await
        .map_err(|e| format!("the {res} output is not readable: {e}"))?;
    Ok(Output {
        resolution: res.to_owned(),
        width: p.width,
        height: p.height,
        bytes,
        duration_sec: p.duration_us as f64 / 1e6,
        url: format!("{}/files/{id}/{file}", shared.config.base_path),
        file: file.to_owned(),
    })
}

/// A new job id.
pub(crate) fn new_id() -> Result<String, RandomError> {
    random_hex(8)
}
