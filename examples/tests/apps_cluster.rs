//! The example apps as several nodes on one Redis (`BACKPLANE=redis://HOST:PORT`): two processes
//! of one app (`video`, `characters`) share a `redis-server` of the test's own; a job created on
//! node A is streamed from node B, from its first event to its terminal one.
//!
//! Without `redis-server` on the `PATH` the test is skipped with a message on stderr, unless
//! `CI` is set: then it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use sse_testkit::redis::{have_redis, RedisServer as Redis};

/// An app process on the backplane, killed when dropped.
struct Node {
    child: Child,
    addr: SocketAddr,
    data: PathBuf,
}

impl Node {
    fn start(redis: &Redis, bin: &str, name: &str) -> Node {
        let data = std::env::temp_dir().join(format!(
            "sse-apps-cluster-{}-{bin}-{name}-data",
            std::process::id()
        ));
        let exe = match bin {
            "video" => env!("CARGO_BIN_EXE_video"),
            "characters" => env!("CARGO_BIN_EXE_characters"),
            other => panic!("no app {other}"),
        };
        let mut child = Command::new(exe)
            .env("ADDR", "127.0.0.1:0")
            .env("BACKPLANE", redis.url())
            .env("TMPDIR", std::env::temp_dir().join(&data))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the video app");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        // Keep reading what the app prints, so that its stdout never breaks.
        thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let addr = line
            .trim()
            .strip_prefix(&format!("{bin} app on http://"))
            .and_then(|a| a.strip_suffix('/'))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        Node { child, addr, data }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
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
    if !have_redis("the example apps' cluster test") {
        return;
    }
    let redis = Redis::start_with("sse-apps-cluster-redis", false);
    let a = Node::start(&redis, "video", "a");
    let b = Node::start(&redis, "video", "b");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn character_job_created_on_a_is_streamed_to_the_end_on_b() {
    if !have_redis("the example apps' cluster test") {
        return;
    }
    let redis = Redis::start_with("sse-apps-cluster-redis", false);
    let a = Node::start(&redis, "characters", "a");
    let b = Node::start(&redis, "characters", "b");
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
