#![allow(clippy::unwrap_used)]
//! The image-to-3D app over HTTP: event order and payloads, a failing file inside a batch, the
//! models loaded back with a glTF parser, resuming with `Last-Event-ID`, and a late page.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use serde_json::Value;
use sse_example_image_to_3d::mesh::{grid_size, DEFAULT_MAX_GRID, DEFAULT_RELIEF};
use sse_example_image_to_3d::Config;

const LIMIT: Duration = Duration::from_secs(25);

/// Downloads a model and loads it with the `gltf` crate: (vertices, triangles, y range).
async fn load_model(base: &str, url: &str) -> (usize, usize, (f32, f32)) {
    let res = client()
        .get(format!("{base}{url}"))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "model/gltf-binary");
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\""),
        "{disposition}"
    );
    let bytes = res.bytes().await.unwrap();
    assert_eq!(&bytes[..4], b"glTF");
    let gltf = gltf::Gltf::from_slice(&bytes).expect("a valid .glb");
    let blob = gltf.blob.as_deref().expect("a BIN chunk");
    let mesh = gltf.document.meshes().next().expect("one mesh");
    let prim = mesh.primitives().next().expect("one primitive");
    assert_eq!(prim.mode(), gltf::mesh::Mode::Triangles);
    let positions = prim.get(&gltf::Semantic::Positions).expect("positions");
    assert!(positions.min().is_some() && positions.max().is_some());
    let normals = prim.get(&gltf::Semantic::Normals).expect("normals");
    assert_eq!(normals.count(), positions.count());
    let indices = prim.indices().expect("indices");
    assert_eq!(indices.count() % 3, 0);
    let reader = prim.reader(|_| Some(blob));
    let read: Vec<[f32; 3]> = reader.read_positions().unwrap().collect();
    assert_eq!(read.len(), positions.count());
    let idx: Vec<u32> = reader.read_indices().unwrap().into_u32().collect();
    assert!(
        idx.iter().all(|&i| (i as usize) < read.len()),
        "indices in range"
    );
    let ys = read.iter().map(|p| p[1]);
    let y_range = ys.fold((f32::MAX, f32::MIN), |(lo, hi), y| (lo.min(y), hi.max(y)));
    (positions.count(), indices.count() / 3, y_range)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_with_a_failing_file_events_and_models() {
    tokio::time::timeout(LIMIT, async {
        let base = start(config()).await;
        let files = [
            ("small.png", png(40, 30), "image/png"),
            ("notes.txt", b"this is not an image".to_vec(), "text/plain"),
            ("wide.jpg", jpeg(300, 150), "image/jpeg"),
            ("tall.png", png(90, 700), "image/png"),
        ];
        let task = start_task(&base, ALICE, &files).await;
        let id = task["task_id"].as_str().unwrap().to_owned();
        assert_eq!(task["job_id"], id.as_str());
        assert_eq!(task["total_files"], 4);
        let ids: Vec<&str> = task["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["file_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["f1", "f2", "f3", "f4"]);

        // The whole history, from the first event.
        let token = token(&base, ALICE, &id).await;
        let events = read_events(open_stream(&base, &id, &token, Some("0")).await, 1000).await;
        let seqs = check_sequences(&events);
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "no gaps");

        // Every file queued first, then the progress at 0.
        for (k, e) in events[..4].iter().enumerate() {
            let p = payload(e);
            assert_eq!(e.event, "file_update");
            assert_eq!(p["status"], "queued");
            assert_eq!(p["progress"], 0);
            assert_eq!(p["file_id"], format!("f{}", k + 1));
            assert_eq!(p["filename"], files[k].0);
            assert_eq!(p["task_id"], id.as_str());
        }
        assert_eq!(events[4].event, "task_progress");
        assert_eq!(payload(&events[4])["progress"], 0);

        // Only the known events; exactly one terminal event, the last one.
        let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
        assert!(names
            .iter()
            .all(|n| ["file_update", "task_progress", "task_completed"].contains(n)));
        assert_eq!(names.last(), Some(&"task_completed"));
        assert_eq!(names.iter().filter(|n| **n == "task_completed").count(), 1);

        // Per file: queued → processing (rising progress) → completed or failed, nothing after.
        let mut per_file: HashMap<String, Vec<Value>> = HashMap::new();
        for e in events.iter().filter(|e| e.event == "file_update") {
            let p = payload(e);
            for field in [
                "file_id", "filename", "status", "progress", "message", "task_id",
            ] {
                assert!(p.get(field).is_some(), "file_update has {field}: {p}");
            }
            per_file
                .entry(p["file_id"].as_str().unwrap().to_owned())
                .or_default()
                .push(p);
        }
        for (file, updates) in &per_file {
            let statuses: Vec<&str> = updates
                .iter()
                .map(|u| u["status"].as_str().unwrap())
                .collect();
            assert_eq!(statuses[0], "queued", "{file}");
            let last = *statuses.last().unwrap();
            assert!(
                last == "completed" || last == "failed",
                "{file}: {statuses:?}"
            );
            assert!(
                statuses[1..statuses.len() - 1]
                    .iter()
                    .all(|s| *s == "processing"),
                "{file}: {statuses:?}"
            );
            let progress: Vec<u64> = updates
                .iter()
                .map(|u| u["progress"].as_u64().unwrap())
                .collect();
            assert!(
                progress.windows(2).all(|w| w[0] <= w[1]),
                "{file}: {progress:?}"
            );
            assert_eq!(*progress.last().unwrap(), 100);
        }
        // The text file failed alone.
        let f2 = per_file["f2"].last().unwrap();
        assert_eq!(f2["status"], "failed");
        assert!(
            f2["error"].as_str().unwrap().contains("not an image"),
            "{f2}"
        );
        for f in ["f1", "f3", "f4"] {
            let last = per_file[f].last().unwrap();
            assert_eq!(last["status"], "completed", "{last}");
            assert!(last["download_url"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/{f}.glb")));
            assert_eq!(
                per_file[f].len(),
                5,
                "queued, 3 × processing, completed: {:?}",
                per_file[f]
            );
        }

        // task_progress: the seed's fields, rising to 100 with every file done.
        let progress: Vec<Value> = events
            .iter()
            .filter(|e| e.event == "task_progress")
            .map(payload)
            .collect();
        for p in &progress {
            for field in [
                "progress",
                "current",
                "total",
                "total_files",
                "message",
                "task_id",
            ] {
                assert!(p.get(field).is_some(), "task_progress has {field}: {p}");
            }
            assert_eq!(p["total"], 4);
            assert_eq!(p["total_files"], 4);
        }
        let pct: Vec<u64> = progress
            .iter()
            .map(|p| p["progress"].as_u64().unwrap())
            .collect();
        assert!(pct.windows(2).all(|w| w[0] <= w[1]), "{pct:?}");
        let last = progress.last().unwrap();
        assert_eq!(last["progress"], 100);
        assert_eq!(last["current"], 4);
        assert_eq!(last["completed_files"], 3);
        assert_eq!(last["failed_files"], 1);

        // task_completed: each model's URL; the failure listed.
        let done = payload(events.last().unwrap());
        assert_eq!(done["task_id"], id.as_str());
        assert_eq!(done["job_id"], id.as_str());
        assert_eq!(done["result"]["job_id"], id.as_str());
        assert_eq!(done["result"]["total_files"], 4);
        assert_eq!(done["result"]["completed_files"], 3);
        assert_eq!(done["result"]["failed_files"], 1);
        assert!(done["result"]["processing_time"].as_f64().unwrap() >= 0.0);
        assert_eq!(done["failed"][0]["file_id"], "f2");
        let models = done["models"].as_array().unwrap();
        assert_eq!(models.len(), 3);

        // Each model loads with a glTF parser; its counts follow the downsampled image.
        let sizes = HashMap::from([("f1", (40, 30)), ("f3", (300, 150)), ("f4", (90, 700))]);
        for m in models {
            let file = m["file_id"].as_str().unwrap();
            let (w, h) = sizes[file];
            let (gw, gh) = grid_size(w, h, DEFAULT_MAX_GRID);
            assert!(gw <= DEFAULT_MAX_GRID && gh <= DEFAULT_MAX_GRID);
            let (vertices, triangles, (y_lo, y_hi)) =
                load_model(&base, m["download_url"].as_str().unwrap()).await;
            assert_eq!(vertices, (gw * gh) as usize, "{file}: {w}×{h} → {gw}×{gh}");
            assert_eq!(triangles, (2 * (gw - 1) * (gh - 1)) as usize, "{file}");
            assert_eq!(m["vertices"], vertices);
            assert_eq!(m["triangles"], triangles);
            assert!(
                y_lo >= 0.0 && y_hi <= DEFAULT_RELIEF + 1e-6 && y_hi > y_lo,
                "{file}: {y_lo}..{y_hi}"
            );
        }
        assert_eq!(grid_size(40, 30, 128), (40, 30));
        assert_eq!(grid_size(300, 150, 128), (128, 64));
        assert_eq!(grid_size(90, 700, 128), (16, 128));

        // The failed file has no model.
        let res = client()
            .get(format!("{base}/api/v1/download/{id}/f2.glb"))
            .bearer_auth(ALICE)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);

        // The one-shot status agrees.
        let status: Value = client()
            .get(format!("{base}/api/v1/status/tasks/{id}"))
            .bearer_auth(ALICE)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(status["status"], "completed");
        assert_eq!(status["progress"], 100);
        assert_eq!(status["last_sequence"], *seqs.last().unwrap());
        assert_eq!(status["files"][1]["status"], "failed");
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_with_last_event_id_loses_and_repeats_nothing() {
    tokio::time::timeout(LIMIT, async {
        // Slow enough that the first connection drops mid-task.
        let base = start(Config {
            step_delay: Duration::from_millis(40),
            ..config()
        })
        .await;
        let files = [
            ("a.png", png(64, 64), "image/png"),
            ("b.png", png(20, 50), "image/png"),
            ("c.jpg", jpeg(33, 17), "image/jpeg"),
        ];
        let task = start_task(&base, ALICE, &files).await;
        let id = task["task_id"].as_str().unwrap().to_owned();
        let token = token(&base, ALICE, &id).await;

        let first = read_events(open_stream(&base, &id, &token, Some("0")).await, 9).await;
        assert_eq!(first.len(), 9);
        let last_id = first.last().unwrap().last_event_id.clone();
        // The connection is dropped here; the client resumes with the same (still valid) token.
        let rest = read_events(open_stream(&base, &id, &token, Some(&last_id)).await, 1000).await;
        assert_eq!(rest.last().unwrap().event, "task_completed");

        let all: Vec<_> = first.into_iter().chain(rest).collect();
        let seqs = check_sequences(&all);
        assert_eq!(
            seqs,
            (1..=seqs.len() as u64).collect::<Vec<_>>(),
            "no loss, no duplicate"
        );
        let completed = all
            .iter()
            .filter(|e| e.event == "file_update" && payload(e)["status"] == "completed")
            .count();
        assert_eq!(completed, 3);

        // Resuming after the terminal event: 204, so that an EventSource stops reconnecting.
        let end_id = all.last().unwrap().last_event_id.clone();
        let end = open_stream(&base, &id, &token, Some(&end_id)).await;
        assert_eq!(end.status(), 204);
        // A hand-built bare sequence means the same position.
        let end = open_stream(&base, &id, &token, Some(&seqs.last().unwrap().to_string())).await;
        assert_eq!(end.status(), 204);
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_page_gets_every_files_state_then_the_end() {
    tokio::time::timeout(LIMIT, async {
        let base = start(config()).await;
        let files = [
            ("one.png", png(10, 10), "image/png"),
            ("two.bin", vec![0u8; 100], "application/octet-stream"),
            ("three.png", png(12, 8), "image/png"),
        ];
        let task = start_task(&base, ALICE, &files).await;
        let id = task["task_id"].as_str().unwrap().to_owned();
        // Wait for the end (bounded), through the one-shot status.
        for _ in 0..200 {
            let status: Value = client()
                .get(format!("{base}/api/v1/status/tasks/{id}"))
                .bearer_auth(ALICE)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if status["status"] != "processing" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        // A fresh connection (no Last-Event-ID): each file's latest update, the latest
        // progress, then the terminal event, in publish order.
        let token = token(&base, ALICE, &id).await;
        let events = read_events(open_stream(&base, &id, &token, None).await, 100).await;
        check_sequences(&events);
        let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(
            names,
            [
                "file_update",
                "file_update",
                "file_update",
                "task_progress",
                "task_completed"
            ]
        );
        let statuses: Vec<Value> = events[..3]
            .iter()
            .map(|e| payload(e)["status"].clone())
            .collect();
        assert_eq!(statuses, ["completed", "failed", "completed"]);
        assert_eq!(payload(&events[3])["progress"], 100);
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_failures_end_in_task_failed() {
    tokio::time::timeout(LIMIT, async {
        let base = start(config()).await;
        let files = [
            ("empty.png", Vec::new(), "image/png"),
            ("fake.png", b"\x89PNG\r\n\x1a\nbroken".to_vec(), "image/png"),
        ];
        let task = start_task(&base, ALICE, &files).await;
        let id = task["task_id"].as_str().unwrap().to_owned();
        let token = token(&base, ALICE, &id).await;
        let events = read_events(open_stream(&base, &id, &token, Some("0")).await, 1000).await;
        check_sequences(&events);
        let end = events.last().unwrap();
        assert_eq!(end.event, "task_failed");
        let p = payload(end);
        assert_eq!(p["task_id"], id.as_str());
        assert!(
            p["error"].as_str().unwrap().contains("none of the 2 files"),
            "{p}"
        );
        let failed = p["details"]["failed"].as_array().unwrap();
        assert_eq!(failed.len(), 2);
        assert!(
            failed[0]["error"].as_str().unwrap().contains("empty"),
            "{p}"
        );
        assert!(
            failed[1]["error"].as_str().unwrap().contains("decode"),
            "{p}"
        );
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decoded_image_memory_is_bounded_per_server_and_an_image_beyond_it_fails_saying_so() {
    tokio::time::timeout(LIMIT, async {
        // 1 MiB for every worker together: a 1024×1024 image (1 MiB of pixels plus its 1 MiB
        // luminance copy) can never fit; small images still pass, one after another.
        let base = start(Config {
            max_decode_bytes: 1 << 20,
            workers: 4,
            ..config()
        })
        .await;
        let files = [
            ("big.png", png(1024, 1024), "image/png"),
            ("small-1.png", png(64, 48), "image/png"),
            ("small-2.png", png(64, 48), "image/png"),
            ("small-3.png", png(64, 48), "image/png"),
        ];
        let task = start_task(&base, ALICE, &files).await;
        let id = task["task_id"].as_str().unwrap().to_owned();
        let token = token(&base, ALICE, &id).await;
        let events = read_events(open_stream(&base, &id, &token, Some("0")).await, 1000).await;
        check_sequences(&events);
        let end = payload(events.last().unwrap());
        let failed = end["failed"]
            .as_array()
            .or(end["details"]["failed"].as_array());
        let failed = failed.unwrap_or_else(|| panic!("no failed list in {end}"));
        assert_eq!(failed.len(), 1, "{end}");
        let why = failed[0]["error"].as_str().unwrap();
        assert!(why.contains("decode budget"), "{why}");
        let all: String = events.iter().map(|e| e.data.clone()).collect();
        assert!(all.contains("small-"), "the small images were processed");
    })
    .await
    .expect("test took too long");
}
