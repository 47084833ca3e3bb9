#![allow(clippy::unwrap_used)]
//! The resume screener over real HTTP (127.0.0.1:0): event order and payloads, a failing file
//! inside a batch, every tab of a user receiving every update, the status endpoint, DELETE,
//! ownership, bad input, keep-alives, resuming, and the ranking.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;
use sse_example_resume_screener::Config;

const DESCRIPTION: &str =
    "Senior Rust engineer with Tokio, axum and PostgreSQL experience; Kubernetes a plus.";

fn strong() -> File {
    pdf(
        "strong.pdf",
        "Jane Doe - Rust engineer\nSix years of Rust, Tokio and axum services.\n\
         PostgreSQL tuning, Kubernetes operators.",
    )
}

fn weak() -> File {
    text(
        "weak.txt",
        "John Roe - Python engineer. Django, PostgreSQL, some Docker.",
    )
}

fn unrelated() -> File {
    pdf(
        "unrelated.pdf",
        "Pat Baker - Pastry chef\nSourdough, croissants and wedding cakes.",
    )
}

fn config() -> Config {
    Config {
        workers: 2,
        ..Config::default()
    }
}

async fn within<F: std::future::Future<Output = ()>>(f: F) {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .expect("the test timed out");
}

/// The `(generation, seq)` of an event id `g-s`.
fn id_parts(id: &str) -> (u64, u64) {
    let (g, s) = id.split_once('-').unwrap();
    (g.parse().unwrap(), s.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_events_in_order_and_ranked() {
    within(async {
        let s = start(config()).await;
        let mut tab = open(&s, "alice", ALICE, None).await;
        let (status, accepted) = upload(
            &s,
            ALICE,
            Some(DESCRIPTION),
            vec![strong(), weak(), unrelated()],
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        assert_eq!(accepted["total"], 3);
        assert_eq!(accepted["user_id"], "alice");
        assert_eq!(accepted["stream_url"], "/api/v1/sse/progress/stream/alice");
        let batch_id = accepted["batch_id"].as_str().unwrap().to_owned();

        let events = tab.until_completed().await;
        // Accepted, then start and end of each file, then the result.
        assert_eq!(events.len(), 1 + 2 * 3 + 1, "{events:#?}");

        // Ids: one generation, consecutive sequence numbers.
        let ids: Vec<(u64, u64)> = events.iter().map(|(id, _)| id_parts(id)).collect();
        assert!(ids.iter().all(|(g, _)| *g == ids[0].0));
        for (i, (_, seq)) in ids.iter().enumerate() {
            assert_eq!(*seq, i as u64 + 1);
        }

        // The first update: every file queued.
        let first = &events[0].1;
        assert_eq!(first["status"], "processing");
        assert_eq!(first["completed"], 0);
        assert_eq!(first["total"], 3);
        assert_eq!(first["batch_id"], batch_id.as_str());
        assert!(first["message"].as_str().unwrap().contains("3 files"));
        let files = first["files"].as_array().unwrap();
        assert_eq!(files.len(), 3);
        assert!(files.iter().all(|f| f["status"] == "queued"));
        assert_eq!(files[0]["kind"], "pdf");
        assert_eq!(files[1]["kind"], "text");
        assert!(first.get("results").is_none());

        // While running: the seed's fields, `completed` never goes back, each file goes
        // processing → done.
        let mut last_completed = 0;
        let mut seen: HashMap<u64, Vec<String>> = HashMap::new();
        for (_, p) in &events[..events.len() - 1] {
            for key in ["completed", "total", "status", "message"] {
                assert!(p.get(key).is_some(), "{key} missing in {p}");
            }
            assert_eq!(p["status"], "processing");
            let c = p["completed"].as_u64().unwrap();
            assert!(c >= last_completed && c <= 3);
            last_completed = c;
            for f in p["files"].as_array().unwrap() {
                let st = f["status"].as_str().unwrap().to_owned();
                let hist = seen.entry(f["index"].as_u64().unwrap()).or_default();
                if hist.last() != Some(&st) {
                    hist.push(st);
                }
            }
        }
        for i in 0..3 {
            assert_eq!(seen[&i], ["queued", "processing", "done"], "file {i}");
        }

        // The end: the seed's completion payload, ranked.
        let done = &events.last().unwrap().1;
        assert_eq!(done["status"], "completed");
        assert_eq!(done["completed"], 3);
        assert_eq!(done["total"], 3);
        assert_eq!(done["successful_files"], 3);
        assert_eq!(done["failed_files"], 0);
        assert_eq!(done["message"], "All files processed successfully!");
        assert_eq!(done["errors"], Value::Array(vec![]));
        let results = done["results"].as_array().unwrap();
        let order: Vec<&str> = results
            .iter()
            .map(|r| r["filename"].as_str().unwrap())
            .collect();
        assert_eq!(order, ["strong.pdf", "weak.txt", "unrelated.pdf"]);
        let scores: Vec<f64> = results
            .iter()
            .map(|r| r["score"].as_f64().unwrap())
            .collect();
        assert!(scores[0] > scores[1] && scores[1] > scores[2], "{scores:?}");
        assert_eq!(scores[2], 0.0);
        assert_eq!(results[0]["rank"], 1);
        let matched: Vec<&str> = results[0]["matched_terms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        for term in ["rust", "tokio", "axum", "postgresql", "kubernete"] {
            assert!(matched.contains(&term), "{term} not in {matched:?}");
        }
        assert!(
            results[0]["coverage"].as_f64().unwrap() > results[1]["coverage"].as_f64().unwrap()
        );
        assert!(done["query_terms"]
            .as_array()
            .unwrap()
            .contains(&Value::from("rust")));

        // The status endpoint holds the same final payload.
        let (st, status) = get_json(&s, "/api/v1/sse/progress/status/alice", Some(ALICE)).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(&status, done);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_files_fail_alone() {
    within(async {
        let s = start(config()).await;
        let mut tab = open(&s, "alice", ALICE, None).await;
        let mut corrupt = b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\n".to_vec();
        corrupt.extend((0u8..=255).cycle().take(2000));
        let good = make_pdf(&["Rust engineer\nTokio and axum"]);
        let truncated = good[..good.len() / 2].to_vec();
        let no_text = make_pdf(&[""]);
        let files = vec![
            strong(),
            ("corrupt.pdf", corrupt, "application/pdf"),
            ("truncated.pdf", truncated, "application/pdf"),
            ("scan.pdf", no_text, "application/pdf"),
            weak(),
        ];
        let (status, body) = upload(&s, ALICE, Some(DESCRIPTION), files).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let events = tab.until_completed().await;
        let done = &events.last().unwrap().1;
        assert_eq!(done["status"], "completed");
        assert_eq!(done["completed"], 5);
        assert_eq!(done["successful_files"], 2);
        assert_eq!(done["failed_files"], 3);
        let failed: Vec<&str> = done["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert!(!e["error"].as_str().unwrap().is_empty());
                e["filename"].as_str().unwrap()
            })
            .collect();
        assert_eq!(failed, ["corrupt.pdf", "truncated.pdf", "scan.pdf"]);
        let scan_error = done["errors"][2]["error"].as_str().unwrap();
        assert!(scan_error.contains("no text"), "{scan_error}");
        let ranked: Vec<&str> = done["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["filename"].as_str().unwrap())
            .collect();
        assert_eq!(ranked, ["strong.pdf", "weak.txt"]);
        let statuses: Vec<&str> = done["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["done", "failed", "failed", "failed", "done"]);
        // The failing files were reported as they failed, not only at the end.
        assert!(events.iter().any(|(_, p)| p["status"] == "processing"
            && p["message"]
                .as_str()
                .unwrap()
                .starts_with("Could not read corrupt.pdf")));
        assert!(done["message"]
            .as_str()
            .unwrap()
            .contains("3 could not be read"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tab_of_a_user_receives_every_update() {
    within(async {
        let s = start(config()).await;
        let mut tab1 = open(&s, "alice", ALICE, None).await;
        let mut tab2 = open(&s, "alice", ALICE, None).await;
        let mut bob = open(&s, "bob", BOB, None).await;

        let (_, conns) = get_json(&s, "/api/v1/sse/connections/status", Some(ALICE)).await;
        assert_eq!(conns["active_connections"], 3);
        assert_eq!(conns["active_users"], 2);
        assert_eq!(conns["user"]["user_id"], "alice");
        assert_eq!(conns["user"]["connections"], 2);
        assert_eq!(conns["heartbeat_seconds"], 30.0);
        let (st, anon) = get_json(&s, "/api/v1/sse/connections/status", None).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(anon["active_connections"], 3);
        assert_eq!(anon["user"], Value::Null);

        let (status, _) = upload(
            &s,
            ALICE,
            Some(DESCRIPTION),
            vec![strong(), weak(), unrelated(), text("four.txt", "Rust")],
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let a = tab1.until_completed().await;
        let b = tab2.until_completed().await;
        assert_eq!(a.len(), 1 + 2 * 4 + 1);
        assert_eq!(
            a, b,
            "both tabs receive the same updates, in the same order"
        );

        // Bob's stream saw nothing of Alice's batch.
        assert!(bob.quiet_for(Duration::from_millis(300)).await);

        // A tab opened later starts from the current state.
        let mut late = open(&s, "alice", ALICE, None).await;
        let first = late.next().await.unwrap();
        let v: Value = serde_json::from_str(&first.data).unwrap();
        assert_eq!(&v, &a.last().unwrap().1);
        assert_eq!(first.last_event_id, a.last().unwrap().0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_endpoint() {
    within(async {
        let s = start(config()).await;
        let (st, v) = get_json(&s, "/api/v1/sse/progress/status/alice", Some(ALICE)).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(v, Value::Null, "no progress yet");

        // While running (one worker, a pause per file), then at the end.
        let s = start(Config {
            workers: 1,
            file_delay: Duration::from_millis(150),
            ..Config::default()
        })
        .await;
        let mut tab = open(&s, "alice", ALICE, None).await;
        let (status, _) = upload(&s, ALICE, Some(DESCRIPTION), vec![strong(), weak()]).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let (_, running) = get_json(&s, "/api/v1/sse/progress/status/alice", Some(ALICE)).await;
        assert_eq!(running["status"], "processing");
        assert_eq!(running["total"], 2);
        assert!(running["completed"].as_u64().unwrap() < 2);
        // A second batch while this one runs is refused.
        let (st, refused) = upload(&s, ALICE, Some(DESCRIPTION), vec![weak()]).await;
        assert_eq!(st, StatusCode::CONFLICT, "{refused}");
        assert!(refused["error"].as_str().unwrap().contains("still running"));

        let events = tab.until_completed().await;
        let (_, v) = get_json(&s, "/api/v1/sse/progress/status/alice", Some(ALICE)).await;
        assert_eq!(v, events.last().unwrap().1);
        // Bob has none of it.
        let (_, v) = get_json(&s, "/api/v1/sse/progress/status/bob", Some(BOB)).await;
        assert_eq!(v, Value::Null);
        // A new batch is accepted once the first is over.
        let (st, _) = upload(&s, ALICE, Some(DESCRIPTION), vec![weak()]).await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let again = tab.until_completed().await;
        assert_eq!(again.last().unwrap().1["total"], 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_ends_streams_and_clears_status() {
    within(async {
        let s = start(config()).await;
        let mut tab1 = open(&s, "alice", ALICE, None).await;
        let mut tab2 = open(&s, "alice", ALICE, None).await;
        let mut bob = open(&s, "bob", BOB, None).await;
        let (st, _) = upload(&s, ALICE, Some(DESCRIPTION), vec![strong(), weak()]).await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let before = tab1.until_completed().await;
        tab2.until_completed().await;

        let (st, reply) = delete(&s, "alice", ALICE).await;
        assert_eq!(st, StatusCode::OK, "{reply}");
        assert_eq!(reply["cleared"], true);
        assert_eq!(reply["streams_closed"], 2);
        assert!(reply["message"].as_str().unwrap().contains("cleared"));
        for tab in [&mut tab1, &mut tab2] {
            let e = tab.next().await.unwrap();
            assert_eq!(e.event, "cleared");
            let v: Value = serde_json::from_str(&e.data).unwrap();
            assert_eq!(v["status"], "cleared");
            assert!(
                tab.next().await.is_none(),
                "the stream ends after `cleared`"
            );
        }
        // Bob's stream is untouched.
        assert!(bob.quiet_for(Duration::from_millis(200)).await);
        assert!(!bob.raw.is_empty());

        let (_, v) = get_json(&s, "/api/v1/sse/progress/status/alice", Some(ALICE)).await;
        assert_eq!(v, Value::Null);
        let (st, again) = delete(&s, "alice", ALICE).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(again["cleared"], false);

        // A reconnecting client (with its old Last-Event-ID) gets a fresh, empty stream.
        let old_id = before.last().unwrap().0.clone();
        let mut fresh = open(&s, "alice", ALICE, Some(&old_id)).await;
        assert!(fresh.quiet_for(Duration::from_millis(300)).await);
        let (st, _) = upload(&s, ALICE, Some(DESCRIPTION), vec![weak()]).await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let events = fresh.until_completed().await;
        assert_eq!(events.len(), 1 + 2 + 1);
        assert_ne!(id_parts(&events[0].0).0, id_parts(&old_id).0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_cancels_a_running_batch() {
    within(async {
        let s = start(Config {
            workers: 1,
            file_delay: Duration::from_millis(200),
            ..Config::default()
        })
        .await;
        let mut tab = open(&s, "alice", ALICE, None).await;
        let files = (0..5).map(|_| weak()).collect();
        let (st, _) = upload(&s, ALICE, Some(DESCRIPTION), files).await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let first = tab.next().await.unwrap();
        assert_eq!(first.event, "message");

        let (st, reply) = delete(&s, "alice", ALICE).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(reply["cleared"], true);
        // Whatever was in flight, the stream ends with `cleared`.
        let mut last = None;
        while let Some(e) = tab.next().await {
            last = Some(e.event);
        }
        assert_eq!(last.as_deref(), Some("cleared"));
        // The batch stops: no progress comes back, and a new batch is accepted at once.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (_, v) = get_json(&s, "/api/v1/sse/progress/status/alice", Some(ALICE)).await;
        assert_eq!(v, Value::Null);
        let mut tab = open(&s, "alice", ALICE, None).await;
        let (st, _) = upload(&s, ALICE, Some(DESCRIPTION), vec![strong()]).await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let events = tab.until_completed().await;
        assert_eq!(events.last().unwrap().1["total"], 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_reaches_only_their_own_data() {
    within(async {
        let s = start(config()).await;
        let mut tab = open(&s, "alice", ALICE, None).await;
        let (st, _) = upload(&s, ALICE, Some(DESCRIPTION), vec![strong()]).await;
        assert_eq!(st, StatusCode::ACCEPTED);
        tab.until_completed().await;

        // Bob's token on Alice's paths: 403 and no data.
        for path in [
            "/api/v1/sse/progress/stream/alice",
            "/api/v1/sse/progress/status/alice",
        ] {
            let res = s
                .client
                .get(format!("{}{path}", s.base))
                .bearer_auth(BOB)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
            let body = res.text().await.unwrap();
            assert!(
                !body.contains("strong.pdf") && !body.contains("completed"),
                "{body}"
            );
        }
        // The same for a user that does not exist: no hint either way.
        let (st, _) = get_json(&s, "/api/v1/sse/progress/status/mallory", Some(BOB)).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, _) = delete(&s, "alice", BOB).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (_, v) = get_json(&s, "/api/v1/sse/progress/status/alice", Some(ALICE)).await;
        assert_eq!(v["status"], "completed", "Bob's DELETE changed nothing");

        // No token, or a wrong one: 401.
        let (st, v) = get_json(&s, "/api/v1/sse/progress/status/alice", None).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        assert!(v["error"].as_str().unwrap().contains("authentication"));
        let (st, _) = get_json(&s, "/api/v1/sse/progress/status/alice", Some("nope")).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        let res = s
            .client
            .get(format!("{}/api/v1/sse/progress/stream/alice", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        let (st, _) = upload(&s, "nope", Some(DESCRIPTION), vec![weak()]).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);

        // `?token=` (EventSource) works for the owner only.
        let res = s
            .client
            .get(format!(
                "{}/api/v1/sse/progress/stream/alice?token={ALICE}",
                s.base
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        drop(res);
        let res = s
            .client
            .get(format!(
                "{}/api/v1/sse/progress/stream/alice?token={BOB}",
                s.base
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let (st, me) = get_json(&s, &format!("/api/v1/resumes/me?token={BOB}"), None).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(me["user_id"], "bob");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_4xx_and_the_server_keeps_running() {
    within(async {
        let s = start(Config {
            max_files: 3,
            max_file_bytes: 64 * 1024,
            ..config()
        })
        .await;
        // (what, description, files, expected status, a word of the error)
        type Case = (
            &'static str,
            Option<&'static str>,
            Vec<File>,
            StatusCode,
            &'static str,
        );
        let cases: Vec<Case> = vec![
            (
                "missing description",
                None,
                vec![weak()],
                StatusCode::BAD_REQUEST,
                "job_description",
            ),
            (
                "blank description",
                Some("   \n "),
                vec![weak()],
                StatusCode::BAD_REQUEST,
                "empty",
            ),
            (
                "no searchable words",
                Some("the and of a to"),
                vec![weak()],
                StatusCode::BAD_REQUEST,
                "no searchable words",
            ),
            (
                "empty batch",
                Some(DESCRIPTION),
                vec![],
                StatusCode::BAD_REQUEST,
                "at least one",
            ),
            (
                "an image",
                Some(DESCRIPTION),
                vec![
                    weak(),
                    (
                        "photo.png",
                        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01".to_vec(),
                        "image/png",
                    ),
                ],
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "photo.png",
            ),
            (
                "text posing as a PDF",
                Some(DESCRIPTION),
                vec![("resume.pdf", b"just text".to_vec(), "application/pdf")],
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "not a PDF",
            ),
            (
                "empty file",
                Some(DESCRIPTION),
                vec![("empty.txt", Vec::new(), "text/plain")],
                StatusCode::BAD_REQUEST,
                "empty",
            ),
            (
                "file too large",
                Some(DESCRIPTION),
                vec![("big.txt", vec![b'a'; 100 * 1024], "text/plain")],
                StatusCode::PAYLOAD_TOO_LARGE,
                "big.txt",
            ),
            (
                "too many files",
                Some(DESCRIPTION),
                vec![weak(), weak(), weak(), weak()],
                StatusCode::BAD_REQUEST,
                "at most 3",
            ),
        ];
        for (what, description, files, expected, needle) in cases {
            let (st, body) = upload(&s, ALICE, description, files).await;
            assert_eq!(st, expected, "{what}: {body}");
            let error = body["error"].as_str().unwrap_or_default();
            assert!(error.contains(needle), "{what}: {error:?} lacks {needle:?}");
        }
        // Not multipart at all.
        let res = s
            .client
            .post(format!("{}/api/v1/resumes/screen", s.base))
            .bearer_auth(ALICE)
            .json(&serde_json::json!({ "job_description": DESCRIPTION }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let v: Value = res.json().await.unwrap();
        assert!(v["error"].as_str().unwrap().contains("multipart"));

        // Nothing was started by the refused requests, and the server still works.
        let (_, v) = get_json(&s, "/api/v1/sse/progress/status/alice", Some(ALICE)).await;
        assert_eq!(v, Value::Null);
        let mut tab = open(&s, "alice", ALICE, None).await;
        let (st, _) = upload(&s, ALICE, Some(DESCRIPTION), vec![strong(), weak()]).await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let done = tab.until_completed().await;
        assert_eq!(done.last().unwrap().1["successful_files"], 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_comments_on_an_idle_stream() {
    assert_eq!(Config::default().heartbeat, Duration::from_secs(30));
    within(async {
        let s = start(Config {
            heartbeat: Duration::from_millis(150),
            ..config()
        })
        .await;
        let mut tab = open(&s, "alice", ALICE, None).await;
        assert!(tab.quiet_for(Duration::from_millis(700)).await);
        let raw = String::from_utf8_lossy(&tab.raw).into_owned();
        assert!(raw.starts_with("retry: 2000\n\n"), "{raw:?}");
        let comments = raw.lines().filter(|l| l.starts_with(':')).count();
        assert!(comments >= 2, "expected keep-alive comments in {raw:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_with_last_event_id_gets_exactly_the_missed_updates() {
    within(async {
        let s = start(config()).await;
        let mut tab = open(&s, "alice", ALICE, None).await;
        let (st, _) = upload(
            &s,
            ALICE,
            Some(DESCRIPTION),
            vec![strong(), weak(), unrelated()],
        )
        .await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let all = tab.until_completed().await;
        let mut resumed = open(&s, "alice", ALICE, Some(&all[2].0)).await;
        let rest = resumed.until_completed().await;
        assert_eq!(rest, all[3..].to_vec());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_and_samples() {
    within(async {
        let s = start(config()).await;
        let page = s.client.get(format!("{}/", s.base)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(html.contains("new EventSource("));
        assert!(html.contains("api/v1/sse/progress/stream/"));

        let (st, list) = get_json(&s, "/samples", None).await;
        assert_eq!(st, StatusCode::OK);
        let description = list["description"].as_str().unwrap().to_owned();
        let mut files: Vec<File> = Vec::new();
        for name in list["files"].as_array().unwrap() {
            let name: &'static str = Box::leak(name.as_str().unwrap().to_owned().into_boxed_str());
            let res = s
                .client
                .get(format!("{}/samples/{name}", s.base))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            files.push((
                name,
                res.bytes().await.unwrap().to_vec(),
                "application/octet-stream",
            ));
        }
        assert_eq!(files.len(), 3);
        let mut tab = open(&s, "bob", BOB, None).await;
        let (st, _) = upload(&s, BOB, Some(&description), files).await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let done = tab.until_completed().await;
        let done = &done.last().unwrap().1;
        assert_eq!(done["successful_files"], 3);
        let order: Vec<&str> = done["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["filename"].as_str().unwrap())
            .collect();
        assert_eq!(
            order,
            [
                "ada-rust-engineer.pdf",
                "grace-backend-developer.pdf",
                "alan-data-scientist.txt"
            ]
        );
        let (st, _) = get_json(&s, "/samples/nope.pdf", None).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
    })
    .await;
}

/// A multipart body with three text files, the second named with a CR/LF inside its quoted
/// file name (raw, as a hand-written client sends it, and escaped, as reqwest sends it).
fn crlf_body(boundary: &str, sep: &str) -> Vec<u8> {
    let mut body = Vec::new();
    let names = [
        "one.txt".to_owned(),
        format!("two{sep}evil.txt"),
        "three.txt".to_owned(),
    ];
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"job_description\"\r\n\r\nrust developer\r\n").as_bytes(),
    );
    for (i, name) in names.iter().enumerate() {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\nContent-Type: text/plain\r\n\r\nrust developer number {i}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_name_with_a_line_break_is_refused_with_a_4xx_saying_why_never_dropped_silently() {
    let s = common::start(Config::default()).await;
    // As reqwest sends it: three files sent, three accepted (or a 4xx naming the file).
    let (status, v) = common::upload(
        &s,
        common::ALICE,
        Some("rust developer"),
        vec![
            common::text("one.txt", "rust developer one"),
            common::text("two\r\nevil.txt", "rust developer two"),
            common::text("three.txt", "rust developer three"),
        ],
    )
    .await;
    eprintln!("reqwest: {status} {v}");
    if status.is_success() {
        let files = v["files"].as_array().expect("files listed");
        assert_eq!(files.len(), 3, "{v}");
        assert!(
            files
                .iter()
                .all(|f| !f.as_str().unwrap().contains(['\r', '\n'])),
            "{v}"
        );
    } else {
        assert!(status.is_client_error(), "{status} {v}");
        assert!(v["error"].as_str().unwrap().contains("line break"), "{v}");
    }
    for (sep, escaped) in [
        ("\r\n", false),
        ("\\\r\n", true),
        ("\n", true),
        ("\r", true),
    ] {
        let boundary = "XyZBoundary42";
        let res = s
            .client
            .post(format!("{}/api/v1/resumes/screen", s.base))
            .bearer_auth(common::ALICE)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(crlf_body(boundary, sep))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let v: Value = res.json().await.unwrap_or(Value::Null);
        eprintln!("separator {sep:?}: {status} {v}");
        if status.is_success() {
            // Accepted: then all three, the odd name sanitized.
            let files = v["files"].as_array().expect("files listed");
            assert_eq!(files.len(), 3, "{v}");
            assert!(
                files
                    .iter()
                    .all(|f| !f.as_str().unwrap().contains(['\r', '\n'])),
                "{v}"
            );
        } else {
            assert!(status.is_client_error(), "{status} {v}");
            let m = v["error"].as_str().unwrap();
            // A line break ends the part's header: the refusal says why.
            assert!(m.contains("line break"), "{escaped}: {m}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_beyond_the_servers_limit_get_503_until_one_ends() {
    within(async {
        let s = start(Config {
            workers: 1,
            max_batches: 1,
            file_delay: Duration::from_millis(150),
            ..Config::default()
        })
        .await;
        let mut tab = open(&s, "alice", ALICE, None).await;
        let (st, _) = upload(&s, ALICE, Some(DESCRIPTION), vec![strong(), weak()]).await;
        assert_eq!(st, StatusCode::ACCEPTED);
        // Bob has no batch running, but the server is at its limit.
        let (st, refused) = upload(&s, BOB, Some(DESCRIPTION), vec![weak()]).await;
        assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{refused}");
        assert!(
            refused["error"].as_str().unwrap().contains("busy"),
            "{refused}"
        );
        tab.until_completed().await;
        // The slot is released when the batch ends (just after its last event).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (st, body) = upload(&s, BOB, Some(DESCRIPTION), vec![weak()]).await;
            if st == StatusCode::ACCEPTED {
                break;
            }
            assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
            assert!(std::time::Instant::now() < deadline, "still refused");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}
