//! End-to-end tests of the characters app (the character-jobs and resume-screener reports): real servers on 127.0.0.1:0,
//! reqwest, and `sse_core::Decoder` for the streams.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use sse_core::{DecodedEvent, Decoder};
use sse_example_characters::{serve, Config};

const ALICE: &str = "alice-token";
const BOB: &str = "bob-token";

fn config() -> Config {
    static N: AtomicUsize = AtomicUsize::new(0);
    Config {
        tokens: vec![(ALICE.into(), "alice".into()), (BOB.into(), "bob".into())],
        step_delay: Duration::from_millis(40),
        portrait_size: 96,
        files_dir: std::env::temp_dir().join(format!(
            "sse-characters-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )),
        http_workers: 1,
        // The page's sign-in and `auth_and_ownership` use the demo login.
        insecure_demo_login: true,
        ..Config::default()
    }
}

/// Removes a test's files when the test ends.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts a server; returns its base URL, and the guard of its files.
async fn start(config: Config) -> (String, Cleanup) {
    let cleanup = Cleanup(config.files_dir.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { serve(listener, config).await.unwrap() });
    (format!("http://{addr}"), cleanup)
}

/// An open event stream, decoded with `sse_core::Decoder`.
struct Sse {
    resp: reqwest::Response,
    dec: Decoder,
    raw: Vec<u8>,
    ended: bool,
}

impl Sse {
    async fn open(req: RequestBuilder) -> Sse {
        let resp = req.send().await.unwrap();
        if resp.status() != StatusCode::OK {
            panic!("{}: {:?}", resp.status(), resp.text().await);
        }
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        assert_eq!(resp.headers()["x-accel-buffering"], "no");
        Sse {
            resp,
            dec: Decoder::new(),
            raw: Vec::new(),
            ended: false,
        }
    }

    /// The next event, or `None` when the stream has ended.
    async fn next(&mut self) -> Option<DecodedEvent> {
        loop {
            if let Some(e) = self.dec.next_event() {
                return Some(e);
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout(Duration::from_secs(20), self.resp.chunk()).await {
                Ok(Ok(Some(c))) => {
                    self.raw.extend_from_slice(&c);
                    self.dec.feed(&c);
                }
                Ok(Ok(None)) => {
                    self.ended = true;
                    self.dec.finish();
                }
                Ok(Err(e)) => panic!("stream failed: {e}"),
                Err(_) => panic!("no event within 20 s"),
            }
        }
    }

    /// Every event until the stream ends.
    async fn rest(&mut self) -> Vec<DecodedEvent> {
        let mut v = Vec::new();
        while let Some(e) = self.next().await {
            v.push(e);
        }
        v
    }
}

fn data(e: &DecodedEvent) -> Value {
    assert_eq!(
        e.event, "message",
        "the character-jobs report messages are unnamed: {e:?}"
    );
    serde_json::from_str(&e.data).unwrap()
}

fn auth(req: RequestBuilder, token: &str) -> RequestBuilder {
    req.header("Authorization", format!("Bearer {token}"))
}

async fn create(c: &Client, base: &str, token: &str, kind: &str, body: Value) -> String {
    let path = if kind == "character" {
        "characters/jobs"
    } else {
        "media/jobs"
    };
    let res = auth(c.post(format!("{base}/api/v1/{path}")), token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let v: Value = res.json().await.unwrap();
    let id = v["data"]["jobId"].as_str().unwrap().to_owned();
    assert_eq!(v["success"], true);
    assert_eq!(v["data"]["status"], "waiting");
    assert_eq!(v["data"]["jobType"], kind);
    assert_eq!(
        v["data"]["streamUrl"],
        format!("/api/v1/sse/jobs/{kind}/{id}")
    );
    assert_eq!(location, v["data"]["pollUrl"].as_str().unwrap());
    id
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

/// Checks a job's `job_update` messages: contiguous ids, status order, monotone progress, and
/// a final `completed` (or `failed`). Returns the last one.
fn check_updates(updates: &[DecodedEvent], id: &str, kind: &str) -> Value {
    assert!(!updates.is_empty());
    let rank = |s: &str| match s {
        "waiting" => 0,
        "active" => 1,
        "completed" | "failed" => 2,
        other => panic!("unknown status {other}"),
    };
    let (mut last_id, mut last_rank, mut last_progress) = (None::<u64>, 0, 0);
    for (i, e) in updates.iter().enumerate() {
        let v = data(e);
        assert_eq!(v["type"], "job_update");
        assert_eq!(v["jobId"], id);
        assert_eq!(v["jobType"], kind);
        for k in ["createdAt", "timestamp", "step", "message"] {
            assert!(v[k].is_string(), "{k} missing in {v}");
        }
        let n = seq_of(&e.last_event_id);
        if let Some(prev) = last_id {
            assert_eq!(n, prev + 1, "ids are contiguous");
        }
        last_id = Some(n);
        let r = rank(v["status"].as_str().unwrap());
        assert!(r >= last_rank, "status went back: {v}");
        last_rank = r;
        let p = v["progress"].as_u64().unwrap();
        assert!(
            p >= last_progress && p <= 100,
            "progress {p} after {last_progress}"
        );
        last_progress = p;
        if r == 2 {
            assert_eq!(i, updates.len() - 1, "nothing after the final update");
        }
    }
    let last = data(updates.last().unwrap());
    assert!(matches!(
        last["status"].as_str(),
        Some("completed" | "failed")
    ));
    last
}

fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn character_job_streams_every_step_and_produces_a_sheet_and_portrait() {
    let (base, _files) = start(config()).await;
    let c = Client::new();
    let body = json!({"name": "Aria Stormwind", "class": "wizard", "race": "elf"});
    let id = create(&c, &base, ALICE, "character", body.clone()).await;
    let url = format!("{base}/api/v1/sse/jobs/character/{id}");
    let mut s = Sse::open(auth(c.get(&url), ALICE)).await;
    let events = s.rest().await;
    assert!(s.raw.starts_with(b": ok\n\n"), "first byte at once");

    let connected = data(&events[0]);
    assert_eq!(
        connected,
        json!({"type": "connected", "jobId": id, "message": "Connected to job status stream"})
    );
    assert_eq!(events[0].last_event_id, "", "connected carries no id");
    let initial = data(&events[1]);
    assert_eq!(initial["type"], "initial_status");
    assert_eq!(initial["jobId"], id.as_str());
    assert!(matches!(
        initial["status"].as_str(),
        Some("waiting" | "active")
    ));
    assert_eq!(events[1].last_event_id, "", "initial_status carries no id");

    let last = check_updates(&events[2..], &id, "character");
    assert!(
        events.len() >= 6,
        "several progress steps: {}",
        events.len()
    );
    assert_eq!(last["status"], "completed");
    assert_eq!(last["progress"], 100);
    assert!(last["completedAt"].is_string() && last["startedAt"].is_string());
    let r = &last["result"];
    assert_eq!(r["name"], "Aria Stormwind");
    assert_eq!(r["class"], "wizard");
    assert_eq!(r["race"], "elf");
    assert!(r["characterId"].is_string());
    assert!(r["displayId"].as_str().unwrap().starts_with("char-"));
    assert!(r["backstory"].as_str().unwrap().contains("Aria Stormwind"));
    let stats = r["stats"].as_object().unwrap();
    assert_eq!(stats.len(), 6);
    let best = stats.values().map(|v| v.as_u64().unwrap()).max().unwrap();
    assert_eq!(
        r["stats"]["intelligence"], best,
        "a wizard's best roll is Intelligence"
    );
    let steps: Vec<String> = events[2..]
        .iter()
        .map(|e| data(e)["step"].as_str().unwrap().to_owned())
        .collect();
    for step in [
        "rolling_stats",
        "writing_backstory",
        "rendering_portrait",
        "saving",
    ] {
        assert!(
            steps.iter().any(|s| s == step),
            "{step} missing from {steps:?}"
        );
    }

    // The portrait is a real PNG of the configured size, for its owner.
    assert_eq!(
        r["portraitUrl"],
        format!("/api/v1/media/files/{id}.png").as_str()
    );
    let res = auth(
        c.get(format!("{base}{}", r["portraitUrl"].as_str().unwrap())),
        ALICE,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/png");
    let png = res.bytes().await.unwrap();
    assert_eq!(png_size(&png), (96, 96));
    assert_eq!(r["portraitBytes"], png.len());

    // The polling endpoint answers the same state.
    let poll: Value = auth(c.get(format!("{base}/api/v1/characters/jobs/{id}")), ALICE)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(poll["success"], true);
    assert_eq!(poll["data"]["status"], "completed");
    assert_eq!(poll["data"]["result"], *r);

    // Reconnecting after the final event: 204, so EventSource stops.
    let final_id = events.last().unwrap().last_event_id.clone();
    let res = auth(c.get(&url), ALICE)
        .header("Last-Event-ID", &final_id)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // A new client of a finished job: its state, then the final update, then the end.
    let again = Sse::open(auth(c.get(&url), ALICE)).await.rest().await;
    let types: Vec<Value> = again.iter().map(|e| data(e)["type"].clone()).collect();
    assert_eq!(
        types,
        [
            json!("connected"),
            json!("initial_status"),
            json!("job_update")
        ]
    );
    assert_eq!(data(&again[1])["status"], "completed");
    assert_eq!(data(&again[2]), last);
    assert_eq!(again[2].last_event_id, final_id);

    // The same request gives the same character (stats and story derive from a hash).
    let id2 = create(&c, &base, ALICE, "character", body).await;
    let url2 = format!("{base}/api/v1/sse/jobs/character/{id2}");
    let events2 = Sse::open(auth(c.get(url2), ALICE)).await.rest().await;
    let r2 = check_updates(&events2[2..], &id2, "character")["result"].clone();
    assert_eq!(r2["stats"], r["stats"]);
    assert_eq!(r2["backstory"], r["backstory"]);
    assert_ne!(r2["characterId"], r["characterId"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_stream_carries_every_job_of_the_user_with_query_and_cookie_auth() {
    let (base, _files) = start(config()).await;
    let c = Client::new();
    // A plain EventSource cannot send headers: the token goes in the query.
    let my = format!("{base}/api/v1/sse/jobs/my?token={ALICE}");
    let mut m = Sse::open(c.get(&my)).await;
    let hello = data(&m.next().await.unwrap());
    assert_eq!(hello["type"], "connected");
    assert_eq!(hello["userId"], "alice");
    assert_eq!(hello["jobCount"], 0);

    // Jobs created after the stream opened appear on it.
    let media = create(
        &c,
        &base,
        ALICE,
        "media",
        json!({"prompt": "a storm over the violet sea", "width": 80, "height": 48, "style": "nebula"}),
    )
    .await;
    let character = create(&c, &base, ALICE, "character", json!({"name": "Borin"})).await;
    // Bob's job never shows up on Alice's stream.
    let bobs = create(&c, &base, BOB, "character", json!({"name": "Bob's hero"})).await;

    let mut updates: Vec<(String, DecodedEvent)> = Vec::new();
    let mut done = 0;
    while done < 2 {
        let e = m.next().await.expect("the /my stream stays open");
        let v = data(&e);
        assert_eq!(v["type"], "job_update");
        let job = v["jobId"].as_str().unwrap().to_owned();
        assert!(
            job == media || job == character,
            "foreign job {job} (bob's is {bobs})"
        );
        if matches!(v["status"].as_str(), Some("completed" | "failed")) {
            done += 1;
        }
        updates.push((job, e));
    }
    // Per job: the whole lifecycle, from `waiting` to `completed`.
    for (job, kind) in [(&media, "media"), (&character, "character")] {
        let mine: Vec<&DecodedEvent> = updates
            .iter()
            .filter(|(j, _)| j == job)
            .map(|(_, e)| e)
            .collect();
        assert_eq!(data(mine[0])["status"], "waiting");
        let last = data(mine.last().unwrap());
        assert_eq!(last["status"], "completed", "{kind}: {last}");
        assert_eq!(last["jobType"], kind);
    }
    // The /my stream's ids are one contiguous sequence.
    let ids: Vec<u64> = updates
        .iter()
        .map(|(_, e)| seq_of(&e.last_event_id))
        .collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");

    // The media result, and the image through the cookie.
    let last_media = updates
        .iter()
        .rev()
        .find(|(j, _)| *j == media)
        .map(|(_, e)| data(e))
        .unwrap();
    let r = &last_media["result"];
    assert_eq!(
        (r["width"].as_u64(), r["height"].as_u64()),
        (Some(80), Some(48))
    );
    assert_eq!(r["style"], "nebula");
    assert_eq!(r["mediaId"], media.as_str());
    let png = c
        .get(format!("{base}{}", r["url"].as_str().unwrap()))
        .header("Cookie", format!("sse_token={ALICE}"))
        .send()
        .await
        .unwrap();
    assert_eq!(png.status(), StatusCode::OK);
    assert_eq!(png_size(&png.bytes().await.unwrap()), (80, 48));

    // The media job has its own stream and polling endpoint too.
    let poll: Value = auth(c.get(format!("{base}/api/v1/media/jobs/{media}")), ALICE)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(poll["data"]["result"], *r);
    let ev = Sse::open(auth(
        c.get(format!("{base}/api/v1/sse/jobs/media/{media}")),
        ALICE,
    ))
    .await
    .rest()
    .await;
    assert_eq!(data(ev.last().unwrap())["result"], *r);

    // A new /my connection starts with the state of every job.
    drop(m);
    let mut m2 = Sse::open(c.get(&my)).await;
    let hello = data(&m2.next().await.unwrap());
    assert_eq!(hello["jobCount"], 2);
    let mut initial = Vec::new();
    for _ in 0..2 {
        let v = data(&m2.next().await.unwrap());
        assert_eq!(v["type"], "initial_status");
        assert_eq!(v["status"], "completed");
        initial.push(v["jobId"].as_str().unwrap().to_owned());
    }
    assert_eq!(initial, [media, character], "oldest first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_and_ownership() {
    let (base, _files) = start(config()).await;
    let c = Client::new();
    let id = create(&c, &base, ALICE, "character", json!({"name": "Secret"})).await;
    let sse = format!("{base}/api/v1/sse/jobs/character/{id}");
    let poll = format!("{base}/api/v1/characters/jobs/{id}");

    // No token, or a token this server never issued: 401 with a JSON reason.
    for url in [&sse, &poll, &format!("{base}/api/v1/sse/jobs/my")] {
        let res = c.get(url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{url}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        let v: Value = res.json().await.unwrap();
        assert!(v["error"]
            .as_str()
            .unwrap()
            .contains("authentication required"));
        let res = auth(c.get(url), "forged").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = c
        .post(format!("{base}/api/v1/characters/jobs"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Another user's job is a job that does not exist: 404, and nothing of it.
    let res = auth(c.get(&sse), BOB).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body = res.text().await.unwrap();
    assert!(
        !body.contains("Secret") && !body.contains("waiting"),
        "{body}"
    );
    for url in [
        poll.clone(),
        format!("{base}/api/v1/sse/jobs/media/{id}"),
        format!("{base}/api/v1/media/files/{id}.png"),
    ] {
        let res = auth(c.get(&url), BOB).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{url}");
        assert!(!res.text().await.unwrap().contains("Secret"));
    }
    // The wrong kind for the owner is not found either; so are unknown and malformed ids.
    for url in [
        format!("{base}/api/v1/sse/jobs/media/{id}"),
        format!("{base}/api/v1/sse/jobs/character/0123456789abcdef"),
        format!("{base}/api/v1/sse/jobs/character/..%2F..%2Fetc"),
        format!("{base}/api/v1/characters/jobs/0123456789abcdef"),
    ] {
        let res = auth(c.get(&url), ALICE).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{url}");
    }
    let mut own = Sse::open(auth(c.get(&sse), ALICE)).await;
    assert_eq!(data(&own.next().await.unwrap())["type"], "connected");
    drop(own);

    // A demo login issues a working token (JSON and cookie).
    let res = c
        .post(format!("{base}/api/v1/auth/token"))
        .json(&json!({"user": "carol"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("sse_token=") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let v: Value = res.json().await.unwrap();
    let token = v["data"]["token"].as_str().unwrap().to_owned();
    let carol = create(&c, &base, &token, "character", json!({"name": "C"})).await;
    let res = auth(c.get(&sse), &token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let cookie_pair = cookie.split(';').next().unwrap().to_owned();
    let mut s = Sse::open(
        c.get(format!("{base}/api/v1/sse/jobs/character/{carol}"))
            .header("Cookie", cookie_pair),
    )
    .await;
    assert_eq!(data(&s.next().await.unwrap())["jobId"], carol.as_str());
    for bad in [
        json!({"user": ""}),
        json!({"user": "a b"}),
        json!({"name": "x"}),
    ] {
        let res = c
            .post(format!("{base}/api/v1/auth/token"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

/// Events until a `job_update` with status `completed`.
async fn until_completed(s: &mut Sse) -> Vec<DecodedEvent> {
    let mut v = Vec::new();
    loop {
        let e = s.next().await.unwrap();
        let done = data(&e)["status"] == "completed";
        v.push(e);
        if done {
            return v;
        }
    }
}

async fn status(c: &Client, base: &str, token: Option<&str>) -> Value {
    let mut req = c.get(format!("{base}/api/v1/sse/connections/status"));
    if let Some(t) = token {
        req = auth(req, t);
    }
    let v: Value = req.send().await.unwrap().json().await.unwrap();
    assert_eq!(v["success"], true);
    v["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_user_connection_limit_and_connection_status() {
    let (base, _files) = start(Config {
        max_connections_per_user: 2,
        ..config()
    })
    .await;
    let c = Client::new();
    let s = status(&c, &base, None).await;
    assert_eq!(s["activeConnections"], 0);
    assert_eq!(s["maxConnectionsPerUser"], 2);
    assert!(s["user"].is_null());

    let my = format!("{base}/api/v1/sse/jobs/my");
    let mut a1 = Sse::open(auth(c.get(&my), ALICE)).await;
    let mut a2 = Sse::open(auth(c.get(&my), ALICE)).await;
    assert_eq!(data(&a1.next().await.unwrap())["type"], "connected");
    assert_eq!(data(&a2.next().await.unwrap())["type"], "connected");
    let res = auth(c.get(&my), ALICE).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.text().await.unwrap().contains("limit 2"));
    // The limit is per user.
    let mut b = Sse::open(auth(c.get(&my), BOB)).await;
    assert_eq!(data(&b.next().await.unwrap())["userId"], "bob");
    // A job stream counts too.
    let id = create(&c, &base, ALICE, "character", json!({"name": "Z"})).await;
    let res = auth(
        c.get(format!("{base}/api/v1/sse/jobs/character/{id}")),
        ALICE,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);

    let s = status(&c, &base, Some(ALICE)).await;
    assert_eq!(s["activeConnections"], 3);
    assert_eq!(s["user"], json!({"userId": "alice", "connections": 2}));
    assert_eq!(status(&c, &base, Some(BOB)).await["user"]["connections"], 1);

    // A client that goes away frees its slot at once.
    drop(a1);
    let mut freed = false;
    for _ in 0..100 {
        if status(&c, &base, Some(ALICE)).await["user"]["connections"] == 1 {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(freed, "the dropped connection still counts");
    let mut a3 = Sse::open(auth(c.get(&my), ALICE)).await;
    assert_eq!(data(&a3.next().await.unwrap())["type"], "connected");
    drop((a2, a3, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_with_last_event_id_loses_and_repeats_nothing() {
    let (base, _files) = start(Config {
        step_delay: Duration::from_millis(150),
        ..config()
    })
    .await;
    let c = Client::new();
    let my = format!("{base}/api/v1/sse/jobs/my");
    let mut my_full = Sse::open(auth(c.get(&my), ALICE)).await;
    let mut my_part = Sse::open(auth(c.get(&my), ALICE)).await;
    my_full.next().await.unwrap();
    my_part.next().await.unwrap();

    let id = create(&c, &base, ALICE, "character", json!({"name": "Resumer"})).await;
    let url = format!("{base}/api/v1/sse/jobs/character/{id}");
    let mut full = Sse::open(auth(c.get(&url), ALICE)).await;
    let mut part = Sse::open(auth(c.get(&url), ALICE)).await;

    // Read a few updates, then the connection drops.
    let mut first: Vec<DecodedEvent> = Vec::new();
    while first
        .iter()
        .filter(|e| data(e)["type"] == "job_update")
        .count()
        < 2
    {
        first.push(part.next().await.unwrap());
    }
    let mut my_first = vec![my_part.next().await.unwrap(), my_part.next().await.unwrap()];
    drop(part);
    drop(my_part);
    tokio::time::sleep(Duration::from_millis(400)).await; // updates published meanwhile

    let last_id = first.last().unwrap().last_event_id.clone();
    let mut resumed = Sse::open(auth(c.get(&url), ALICE).header("Last-Event-ID", &last_id)).await;
    let rest = resumed.rest().await;
    assert_eq!(data(&rest[0])["type"], "connected");
    assert!(
        rest[1..].iter().all(|e| data(e)["type"] == "job_update"),
        "a resume gets no initial_status, only what it missed"
    );

    let all = full.rest().await;
    let updates = |v: &[DecodedEvent]| -> Vec<(String, String)> {
        v.iter()
            .filter(|e| data(e)["type"] == "job_update")
            .map(|e| (e.last_event_id.clone(), e.data.clone()))
            .collect()
    };
    let mut stitched = updates(&first);
    stitched.extend(updates(&rest));
    // Both clients started "now" when they connected (their `initial_status` covering what came
    // before), so compare from the first update the dropped client saw.
    let from = stitched[0].0.clone();
    let expected: Vec<_> = updates(&all)
        .into_iter()
        .skip_while(|u| u.0 != from)
        .collect();
    assert!(expected.len() > updates(&first).len());
    assert_eq!(stitched, expected, "no loss, no duplicate");
    assert_eq!(data(all.last().unwrap())["status"], "completed");
    check_updates(&all[2..], &id, "character");

    // The same on the /my stream (ids of the per-user topic), resumed with `?lastEventId=`
    // as a first EventSource request would.
    let my_last = my_first.last().unwrap().last_event_id.clone();
    let mut my_resumed = Sse::open(auth(c.get(format!("{my}?lastEventId={my_last}")), ALICE)).await;
    assert_eq!(data(&my_resumed.next().await.unwrap())["type"], "connected");
    my_first.extend(until_completed(&mut my_resumed).await);
    let my_all = until_completed(&mut my_full).await;
    let pairs = |v: &[DecodedEvent]| -> Vec<(String, String)> {
        v.iter()
            .map(|e| (e.last_event_id.clone(), e.data.clone()))
            .collect()
    };
    let from = my_first[0].last_event_id.clone();
    let my_expected: Vec<_> = pairs(&my_all)
        .into_iter()
        .skip_while(|p| p.0 != from)
        .collect();
    assert_eq!(
        pairs(&my_first),
        my_expected,
        "no loss, no duplicate on /my"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_4xx() {
    let (base, _files) = start(config()).await;
    let c = Client::new();
    let post = |path: &str| auth(c.post(format!("{base}/api/v1/{path}")), ALICE);
    let cases: Vec<(RequestBuilder, StatusCode, &str)> = vec![
        (
            post("characters/jobs")
                .header("Content-Type", "application/json")
                .body("{\"name\": "),
            StatusCode::BAD_REQUEST,
            "invalid JSON body",
        ),
        (
            post("characters/jobs").header("Content-Type", "application/json"),
            StatusCode::BAD_REQUEST,
            "must be a JSON object",
        ),
        (
            post("characters/jobs")
                .header("Content-Type", "text/plain")
                .body("name=x"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "application/json",
        ),
        (
            post("characters/jobs").json(&json!({"class": "wizard"})),
            StatusCode::BAD_REQUEST,
            "missing field `name`",
        ),
        (
            post("characters/jobs").json(&json!({"name": "  "})),
            StatusCode::BAD_REQUEST,
            "`name` must not be empty",
        ),
        (
            post("characters/jobs").json(&json!({"name": "x", "class": "astronaut"})),
            StatusCode::BAD_REQUEST,
            "unknown `class` \"astronaut\"",
        ),
        (
            post("characters/jobs").json(&json!({"name": "x", "level": 20})),
            StatusCode::BAD_REQUEST,
            "unknown field `level`",
        ),
        (
            post("media/jobs").json(&json!({"prompt": "x", "width": 5000})),
            StatusCode::BAD_REQUEST,
            "`width` must be between 16 and 1024",
        ),
        (
            post("media/jobs").json(&json!({"prompt": "x", "style": "cubism"})),
            StatusCode::BAD_REQUEST,
            "unknown `style`",
        ),
        (
            post("media/jobs").json(&json!({"prompt": 42})),
            StatusCode::BAD_REQUEST,
            "invalid JSON body",
        ),
        (
            auth(c.get(format!("{base}/api/v1/nope")), ALICE),
            StatusCode::NOT_FOUND,
            "no route",
        ),
    ];
    for (req, want, text) in cases {
        let res = req.send().await.unwrap();
        let got = res.status();
        let v: Value = res.json().await.unwrap();
        assert_eq!(got, want, "{v}");
        assert_eq!(v["success"], false);
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(text), "{msg:?} should mention {text:?}");
    }
    // Nothing was queued by the bad requests.
    let s = status(&c, &base, None).await;
    assert_eq!(
        s["jobs"],
        json!({"waiting": 0, "active": 0, "completed": 0, "failed": 0})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_reports_why_and_the_stream_ends() {
    // Images cannot be saved: the "directory" is a file.
    let blocker =
        std::env::temp_dir().join(format!("sse-characters-blocker-{}", std::process::id()));
    std::fs::write(&blocker, b"not a directory").unwrap();
    let (base, _files) = start(Config {
        files_dir: blocker.clone(),
        ..config()
    })
    .await;
    let c = Client::new();
    let id = create(
        &c,
        &base,
        ALICE,
        "media",
        json!({"prompt": "doomed", "width": 32, "height": 32}),
    )
    .await;
    let events = Sse::open(auth(
        c.get(format!("{base}/api/v1/sse/jobs/media/{id}")),
        ALICE,
    ))
    .await
    .rest()
    .await;
    let last = check_updates(&events[2..], &id, "media");
    assert_eq!(last["status"], "failed");
    let reason = last["failedReason"].as_str().unwrap();
    assert!(
        reason.contains("could not create the image directory"),
        "{reason}"
    );
    assert_eq!(last["result"], json!({"error": reason}));
    assert!(last["failedAt"].is_string());
    let poll: Value = auth(c.get(format!("{base}/api/v1/media/jobs/{id}")), ALICE)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(poll["data"]["status"], "failed");
    assert_eq!(status(&c, &base, None).await["jobs"]["failed"], 1);
    let _ = std::fs::remove_file(blocker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_streams_get_heartbeat_comments() {
    let (base, _files) = start(Config {
        heartbeat: Duration::from_millis(300),
        step_delay: Duration::from_millis(700),
        ..config()
    })
    .await;
    let c = Client::new();
    let id = create(&c, &base, ALICE, "character", json!({"name": "Slow"})).await;
    let mut s = Sse::open(auth(
        c.get(format!("{base}/api/v1/sse/jobs/character/{id}")),
        ALICE,
    ))
    .await;
    let events = s.rest().await;
    assert_eq!(data(events.last().unwrap())["status"], "completed");
    let text = String::from_utf8(s.raw.clone()).unwrap();
    assert!(text.matches("\n:\n\n").count() >= 2, "heartbeats in {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_evicted_from_the_hub_still_answers_with_its_final_state() {
    let (base, _files) = start(Config {
        finished_ttl: Duration::from_millis(100),
        ..config()
    })
    .await;
    let c = Client::new();
    let id = create(&c, &base, ALICE, "character", json!({"name": "Old"})).await;
    let url = format!("{base}/api/v1/sse/jobs/character/{id}");
    let live = Sse::open(auth(c.get(&url), ALICE)).await.rest().await;
    let last = data(live.last().unwrap());
    assert_eq!(last["status"], "completed");
    // The hub sweeps at most once a second, on a subscribe.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let late = Sse::open(auth(c.get(&url), ALICE)).await.rest().await;
    let types: Vec<Value> = late.iter().map(|e| data(e)["type"].clone()).collect();
    // `connected`, the job's state, then the hub's final state of the evicted topic (its
    // latest update, then the final one, with the id it had).
    assert_eq!(
        types[..2],
        [json!("connected"), json!("initial_status")],
        "{types:?}"
    );
    assert!(types[2..].iter().all(|t| t == "job_update"), "{types:?}");
    let final_update = late.last().unwrap();
    let final_id = live.last().unwrap().last_event_id.clone();
    assert_eq!(
        final_update.last_event_id, final_id,
        "the final update's id"
    );
    assert_eq!(data(final_update)["status"], "completed");
    assert_eq!(data(final_update)["result"], last["result"]);
    let res = auth(c.get(&url), ALICE)
        .header("Last-Event-ID", &final_id)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // Still nothing for anyone else.
    let res = auth(c.get(&url), BOB).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

async fn login(c: &Client, base: &str, user: &str) -> reqwest::Response {
    c.post(format!("{base}/api/v1/auth/token"))
        .json(&json!({ "user": user }))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_login_is_refused_with_a_reason_unless_enabled() {
    let (base, _files) = start(Config {
        insecure_demo_login: false,
        ..config()
    })
    .await;
    let c = Client::new();
    let res = login(&c, &base, "mallory").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.headers().get("set-cookie").is_none());
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["success"], false);
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.contains("demo login is off") && msg.contains("CHARACTERS_INSECURE_DEMO_LOGIN=1"),
        "{msg}"
    );
    // The preset tokens still work.
    create(&c, &base, ALICE, "character", json!({"name": "A"})).await;
    assert_eq!(status(&c, &base, None).await["loginTokens"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_login_token_expires() {
    let (base, _files) = start(Config {
        login_token_ttl: Duration::from_millis(400),
        ..config()
    })
    .await;
    let c = Client::new();
    let res = login(&c, &base, "carol").await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    // The cookie goes when the token does (0.4 s, rounded up to a second).
    assert!(cookie.contains("Max-Age=1"), "{cookie}");
    let v: Value = res.json().await.unwrap();
    let token = v["data"]["token"].as_str().unwrap().to_owned();
    let poll = format!("{base}/api/v1/characters/jobs/00000000");
    // Valid now: an unknown job is 404, not 401.
    let res = auth(c.get(&poll), &token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    tokio::time::sleep(Duration::from_millis(600)).await;
    for url in [poll, format!("{base}/api/v1/sse/jobs/my")] {
        let res = auth(c.get(&url), &token).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{url}");
        let v: Value = res.json().await.unwrap();
        assert!(v["error"].as_str().unwrap().contains("expired"), "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_table_stays_bounded_under_twenty_thousand_logins() {
    const LOGINS: usize = 20_000;
    const MAX: usize = 500;
    let (base, _files) = start(Config {
        max_login_tokens: MAX,
        http_workers: 2,
        ..config()
    })
    .await;
    let c = Client::new();
    let first: Value = login(&c, &base, "first").await.json().await.unwrap();
    let first = first["data"]["token"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    let mut last = String::new();
    // 16 logins in flight at a time.
    for chunk in 0..LOGINS / 16 {
        let batch = (0..16).map(|i| {
            let c = c.clone();
            let base = base.clone();
            async move {
                let res = login(&c, &base, &format!("u{chunk}-{i}")).await;
                assert_eq!(res.status(), StatusCode::OK);
                let v: Value = res.json().await.unwrap();
                v["data"]["token"].as_str().unwrap().to_owned()
            }
        });
        let tokens = futures_util::future::join_all(batch).await;
        last = tokens.last().unwrap().clone();
    }
    let elapsed = started.elapsed();
    let held = status(&c, &base, None).await["loginTokens"]
        .as_u64()
        .unwrap();
    eprintln!("{LOGINS} logins in {elapsed:?}; {held} tokens held (at most {MAX})");
    assert_eq!(held, MAX as u64);
    // The oldest was evicted; the newest works.
    let poll = format!("{base}/api/v1/characters/jobs/00000000");
    let res = auth(c.get(&poll), &first).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = auth(c.get(&poll), &last).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_beyond_a_users_share_get_429_and_beyond_the_servers_503_with_retry_after() {
    let (base, _files) = start(Config {
        workers: 1,
        max_queued: 1,
        max_jobs_per_user: 1,
        step_delay: Duration::from_millis(400),
        ..config()
    })
    .await;
    let c = Client::new();
    let post = |token: &str| {
        auth(c.post(format!("{base}/api/v1/characters/jobs")), token).json(&json!({"name": "X"}))
    };
    let first = create(&c, &base, ALICE, "character", json!({"name": "A"})).await;
    let res = post(ALICE).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["success"], false);
    assert!(v["error"].as_str().unwrap().contains("this client"), "{v}");
    create(&c, &base, BOB, "character", json!({"name": "B"})).await;
    // Two in flight, the server's most (one worker, one waiting): a third user gets 503.
    let login: Value = login(&c, &base, "carol").await.json().await.unwrap();
    let carol = login["data"]["token"].as_str().unwrap().to_owned();
    let res = post(&carol).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("retry-after"));
    // When alice's job ends, her slot is free again.
    let mut s = Sse::open(auth(
        c.get(format!("{base}/api/v1/sse/jobs/character/{first}")),
        ALICE,
    ))
    .await;
    s.rest().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let res = post(ALICE).send().await.unwrap();
        if res.status() == StatusCode::ACCEPTED {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", res.status());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_jobs_image_and_record_are_removed_after_the_retention() {
    let config = Config {
        retention: Duration::from_millis(300),
        ..config()
    };
    let dir = config.files_dir.clone();
    let (base, _files) = start(config).await;
    let c = Client::new();
    let id = create(
        &c,
        &base,
        ALICE,
        "media",
        json!({"prompt": "brief", "width": 32, "height": 32}),
    )
    .await;
    let events = Sse::open(auth(
        c.get(format!("{base}/api/v1/sse/jobs/media/{id}")),
        ALICE,
    ))
    .await
    .rest()
    .await;
    assert_eq!(data(events.last().unwrap())["status"], "completed");
    let png = dir.join(format!("{id}.png"));
    assert!(png.exists(), "{}", png.display());
    let poll = format!("{base}/api/v1/media/jobs/{id}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while png.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!png.exists(), "the image outlived its retention");
    let res = auth(c.get(&poll), ALICE).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_files_directory_is_removed_at_shutdown() {
    let config = config();
    let dir = config.files_dir.clone();
    let _files = Cleanup(dir.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sse_example_characters::serve_with_shutdown(
        listener,
        config,
        async {
            let _ = stopped.await;
        },
    ));
    let c = Client::new();
    let id = create(
        &c,
        &base,
        ALICE,
        "media",
        json!({"prompt": "kept", "width": 32, "height": 32}),
    )
    .await;
    Sse::open(auth(
        c.get(format!("{base}/api/v1/sse/jobs/media/{id}")),
        ALICE,
    ))
    .await
    .rest()
    .await;
    assert!(dir.join(format!("{id}.png")).exists());
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
    assert!(!dir.exists(), "{} outlived the server", dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_token_opens_its_own_jobs_stream_only() {
    let (base, _files) = start(config()).await;
    let c = Client::new();
    let res = auth(c.post(format!("{base}/api/v1/characters/jobs")), ALICE)
        .json(&json!({"name": "T"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let v: Value = res.json().await.unwrap();
    let id = v["data"]["jobId"].as_str().unwrap().to_owned();
    let token = v["data"]["streamToken"].as_str().unwrap().to_owned();
    assert!(token.starts_with("v1."), "{token}");
    let other = create(&c, &base, ALICE, "character", json!({"name": "U"})).await;
    // Its own stream, with the token in the query as an EventSource would send it.
    let mut s = Sse::open(c.get(format!(
        "{base}/api/v1/sse/jobs/character/{id}?token={token}"
    )))
    .await;
    assert_eq!(data(&s.next().await.unwrap())["jobId"], id.as_str());
    drop(s);
    // Another job's stream, the user's stream, or the API: refused.
    for url in [
        format!("{base}/api/v1/sse/jobs/character/{other}?token={token}"),
        format!("{base}/api/v1/sse/jobs/my?token={token}"),
    ] {
        let res = c.get(&url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{url}");
    }
    let res = auth(c.get(format!("{base}/api/v1/characters/jobs/{id}")), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // A tampered one: 401.
    let res = c
        .get(format!(
            "{base}/api/v1/sse/jobs/character/{id}?token={token}x"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}
