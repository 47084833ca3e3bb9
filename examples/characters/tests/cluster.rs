//! The characters app as two nodes on one Redis (`BACKPLANE=redis://HOST:PORT`): two processes
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
    Node::start(
        env!("CARGO_BIN_EXE_characters"),
        "characters app on ",
        redis,
        name,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn character_job_created_on_a_is_streamed_to_the_end_on_b() {
    if !have_redis("character_job_created_on_a_is_streamed_to_the_end_on_b") {
        return;
    }
    let redis = Redis::start_with("sse-apps-cluster-redis", false);
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    // The preset demo tokens are valid on every node.
    let alice = "Bearer alice-token";

    let created = client
        .post(a.url("/api/v1/characters/jobs"))
        .header("Authorization", alice)
        .json(&serde_json::json!({ "name": "Aria" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
    let created: serde_json::Value = created.json().await.unwrap();
    let id = created["data"]["jobId"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/sse/jobs/character/{id}");

    // Another user is told the job does not exist, on the node that never saw it too.
    let bob = client
        .get(b.url(&path))
        .header("Authorization", "Bearer bob-token")
        .header("Last-Event-ID", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(bob.status(), 404);

    let until = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let res = client
            .get(b.url(&path))
            .header("Authorization", alice)
            .header("Last-Event-ID", "0")
            .send()
            .await
            .unwrap();
        if res.status() == 404 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        assert_eq!(res.status(), 200, "stream on B");
        break res.text().await.unwrap();
    };
    // Unnamed events: `connected` (no id), then every `job_update` with ids 1, 2, … up to the
    // final one, `completed`.
    let ids: Vec<u64> = body
        .lines()
        .filter_map(|l| l.strip_prefix("id:"))
        .map(|v| seq_of(v.trim()))
        .collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "{body}");
    let last = body
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str::<serde_json::Value>(d.trim()).unwrap())
        .unwrap();
    assert_eq!(last["type"], "job_update", "{body}");
    assert_eq!(last["status"], "completed", "{body}");

    // The job's end is known on B: a reconnect with the final id gets 204.
    let again = client
        .get(b.url(&path))
        .header("Authorization", alice)
        .header("Last-Event-ID", ids.last().unwrap().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 204);
}
