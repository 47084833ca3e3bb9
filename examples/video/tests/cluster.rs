//! The video app as two nodes on one Redis (`BACKPLANE=redis://HOST:PORT`): two processes
//! share a `redis-server` of the test's own; a job created on node A is streamed from node B,
//! from its first event to its terminal one.
//!
//! Without `redis-server` the test is skipped visibly, unless `CI` is set: then it fails
//! (`sse_testkit::tools`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use sse_testkit::redis::{have_redis, AppNode as Node, RedisServer as Redis};
use sse_testkit::sse::seq_of;

fn node(redis: &Redis, name: &str) -> Node {
    Node::start(env!("CARGO_BIN_EXE_video"), "video app on ", redis, name)
}

/// The `(id's sequence, event)` pairs of an SSE body.
fn events(body: &str) -> Vec<(Option<u64>, String)> {
    body.split("\n\n")
        .filter(|block| block.lines().any(|l| l.starts_with("event:")))
        .map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_owned())
            };
            (
                field("id:").map(|v| seq_of(&v)),
                field("event:").unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_job_created_on_a_is_streamed_to_the_end_on_b() {
    if !have_redis("video_job_created_on_a_is_streamed_to_the_end_on_b") {
        return;
    }
    let redis = Redis::start_with("sse-apps-cluster-redis", false);
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(180))
        .build()
        .unwrap();

    let created = client
        .post(a.url("/jobs?generate=1&duration=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
    let created: serde_json::Value = created.json().await.unwrap();
    let id = created["jobId"].as_str().unwrap().to_owned();

    // B has never seen the job: it finds it in Redis once A has published its first event.
    let until = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let res = client
            .get(b.url(&format!("/jobs/{id}/stream")))
            .header("Last-Event-ID", "0")
            .send()
            .await
            .unwrap();
        if res.status() == 404 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        assert_eq!(res.status(), 200, "stream on B");
        // The body ends after the job's terminal event.
        break res.text().await.unwrap();
    };
    let events = events(&body);
    let (last_id, last) = events.last().cloned().unwrap_or_default();
    assert!(
        last == "complete" || last == "error",
        "B's stream ends with the terminal event: {body}"
    );
    // Ids are the cluster-wide sequence, every one from 1 to the terminal event's (progress
    // events are conflated per key only for new subscribers; a replay from 0 has them all).
    let ids: Vec<u64> = events.iter().filter_map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), events.len(), "every event has an id: {body}");
    assert_eq!(
        ids.first(),
        Some(&1),
        "replayed from the first event: {ids:?}"
    );
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids in order: {ids:?}");
    assert_eq!(last_id, ids.last().copied());

    // A agrees on the outcome, and its own stream of the finished job replays the same end.
    let status: serde_json::Value = client
        .get(a.url(&format!("/jobs/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let expected = if last == "complete" {
        "completed"
    } else {
        "failed"
    };
    assert_eq!(status["status"], expected, "{status}");
    let on_a = client
        .get(a.url(&format!("/jobs/{id}/stream")))
        .header("Last-Event-ID", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(on_a.status(), 200);
    let on_a = on_a.text().await.unwrap();
    assert_eq!(
        self::events(&on_a).last().cloned().unwrap_or_default(),
        (last_id, last),
        "A's replay: {on_a}"
    );
}
