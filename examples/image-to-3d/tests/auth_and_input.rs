#![allow(clippy::unwrap_used)]
//! Stream tokens instead of API keys in URLs (missing, unknown, expired and foreign tokens),
//! ownership, and bad input answered with clear 4xx while the server keeps working.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use sse_example_image_to_3d::Config;

const LIMIT: Duration = Duration::from_secs(25);

async fn get(url: &str, key: Option<&str>) -> reqwest::Response {
    let mut req = client().get(url);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.unwrap()
}

async fn error_of(res: reqwest::Response) -> String {
    let v: Value = res.json().await.unwrap();
    v["error"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_tokens_are_short_lived_and_scoped_to_one_task() {
    tokio::time::timeout(LIMIT, async {
        let base = start(Config {
            stream_token_ttl: Duration::from_millis(400),
            ..config()
        })
        .await;
        let img = [("a.png", png(8, 8), "image/png")];
        let a = start_task(&base, ALICE, &img).await["task_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let b = start_task(&base, ALICE, &img).await["task_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let bobs = start_task(&base, BOB, &img).await["task_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let stream =
            |task: &str, query: &str| format!("{base}/api/v1/status/tasks/{task}/stream{query}");

        // The exchange: 201 with a token, its lifetime and the stream URL.
        let res = token_response(&base, ALICE, &a).await;
        assert_eq!(res.status(), 201);
        let v: Value = res.json().await.unwrap();
        let token = v["token"].as_str().unwrap().to_owned();
        assert_eq!(token.len(), 64);
        assert_eq!(v["task_id"], a.as_str());
        assert!((v["expires_in"].as_f64().unwrap() - 0.4).abs() < 1e-9);
        assert_eq!(
            v["stream_url"],
            format!("/api/v1/status/tasks/{a}/stream?token={token}")
        );

        // A valid token opens the stream.
        let ok = get(&stream(&a, &format!("?token={token}")), None).await;
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.headers()["content-type"], "text/event-stream");
        drop(ok);

        // No token, an unknown token: 401 with a message that says what to do.
        let res = get(&stream(&a, ""), None).await;
        assert_eq!(res.status(), 401);
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        assert!(error_of(res).await.contains("/api/v1/stream-tokens"));
        let res = get(&stream(&a, "?token=0123456789abcdef"), None).await;
        assert_eq!(res.status(), 401);

        // The token of task a on task b's stream, or on bob's: 404.
        assert_eq!(
            get(&stream(&b, &format!("?token={token}")), None)
                .await
                .status(),
            404
        );
        assert_eq!(
            get(&stream(&bobs, &format!("?token={token}")), None)
                .await
                .status(),
            404
        );

        // An API key in the URL is refused, even a valid one.
        let res = get(&stream(&a, &format!("?api_key={ALICE}")), None).await;
        assert_eq!(res.status(), 400);
        assert!(error_of(res).await.contains("not accepted in URLs"));

        // Bob cannot get a token for alice's task, nor see it; unknown tasks look the same.
        assert_eq!(token_response(&base, BOB, &a).await.status(), 404);
        assert_eq!(
            token_response(&base, ALICE, "no-such-task").await.status(),
            404
        );
        assert_eq!(token_response(&base, "wrong-key", &a).await.status(), 401);
        let status = format!("{base}/api/v1/status/tasks/{a}");
        assert_eq!(get(&status, Some(BOB)).await.status(), 404);
        assert_eq!(get(&status, None).await.status(), 401);
        assert_eq!(get(&status, Some(ALICE)).await.status(), 200);
        // A bad token request body.
        let res = client()
            .post(format!("{base}/api/v1/stream-tokens"))
            .bearer_auth(ALICE)
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);

        // Clients that can send headers may stream with the API key itself.
        let res = client()
            .get(stream(&a, ""))
            .bearer_auth(ALICE)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        drop(res);
        let res = client()
            .get(stream(&a, ""))
            .bearer_auth(BOB)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);

        // Downloads need the owner's key.
        let model = format!("{base}/api/v1/download/{a}/f1.glb");
        for _ in 0..200 {
            if get(&model, Some(ALICE)).await.status() == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(get(&model, Some(ALICE)).await.status(), 200);
        assert_eq!(get(&model, None).await.status(), 401);
        assert_eq!(get(&model, Some(BOB)).await.status(), 404);
        assert_eq!(
            get(&format!("{model}?token={token}"), None).await.status(),
            401
        );

        // After its lifetime the token is refused: 401, and a new one works.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let res = get(&stream(&a, &format!("?token={token}")), None).await;
        assert_eq!(res.status(), 401);
        assert!(error_of(res).await.contains("expired"));
        let fresh = common::token(&base, ALICE, &a).await;
        let events = read_events(
            get(&stream(&a, &format!("?token={fresh}")), None).await,
            100,
        )
        .await;
        assert_eq!(events.last().unwrap().event, "task_completed");
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_4xx_and_the_server_keeps_running() {
    tokio::time::timeout(LIMIT, async {
        let base = start(Config {
            max_files: 3,
            max_file_bytes: 64 << 10,
            max_upload_bytes: 160 << 10,
            ..config()
        })
        .await;
        let url = format!("{base}/api/v1/upload/batch");
        let img = || ("a.png", png(16, 16), "image/png");

        // No key, a wrong key: 401.
        let res = client().post(&url).multipart(form(&[img()])).send().await.unwrap();
        assert_eq!(res.status(), 401);
        assert_eq!(upload(&base, "nope", &[img()]).await.status(), 401);

        // Not multipart: 415.
        let res = client()
            .post(&url)
            .bearer_auth(ALICE)
            .json(&serde_json::json!({ "images": [] }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 415);
        assert!(error_of(res).await.contains("multipart/form-data"));

        // An empty body: 400.
        let res = client()
            .post(&url)
            .bearer_auth(ALICE)
            .header("content-type", "multipart/form-data; boundary=xyz")
            .body("")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        assert!(error_of(res).await.contains("empty"));

        // Multipart without any file: 400.
        let res = client()
            .post(&url)
            .bearer_auth(ALICE)
            .multipart(reqwest::multipart::Form::new().text("note", "no files here"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        assert!(error_of(res).await.contains("no files"));

        // A malformed multipart body: 400.
        let res = client()
            .post(&url)
            .bearer_auth(ALICE)
            .header("content-type", "multipart/form-data; boundary=xyz")
            .body("--xyz\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\n\r\ntruncated")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        assert!(error_of(res).await.contains("malformed multipart"));

        // Too many files: 400.
        let res = upload(&base, ALICE, &[img(), img(), img(), img()]).await;
        assert_eq!(res.status(), 400);
        assert!(error_of(res).await.contains("at most 3"));

        // One file over the per-file limit: 413, naming the file.
        let big = vec![7u8; 100 << 10];
        let res = upload(&base, ALICE, &[img(), ("big.bin", big, "application/octet-stream")]).await;
        assert_eq!(res.status(), 413);
        assert!(error_of(res).await.contains("big.bin"));

        // The whole upload over its limit: 413.
        let part = vec![1u8; 60 << 10];
        let res = upload(
            &base,
            ALICE,
            &[
                ("p1.bin", part.clone(), "application/octet-stream"),
                ("p2.bin", part.clone(), "application/octet-stream"),
                ("p3.bin", part, "application/octet-stream"),
            ],
        )
        .await;
        assert_eq!(res.status(), 413);
        assert!(error_of(res).await.contains("the upload is larger"));

        // Far over the limit (by its Content-Length): 413 at once, without reading the body, and
        // the connection is closed. The client may see the 413, or (when the close resets the
        // connection before it read the answer) an error; either way nothing is stored.
        let huge = vec![0u8; 20 << 20];
        let res = client()
            .post(&url)
            .bearer_auth(ALICE)
            .multipart(form(&[("huge.bin", huge, "application/octet-stream")]))
            .send()
            .await;
        match res {
            Ok(res) => assert_eq!(res.status(), 413),
            Err(e) => assert!(!e.is_timeout(), "{e}"),
        }

        // Unknown routes and methods.
        assert_eq!(get(&format!("{base}/nope"), None).await.status(), 404);
        assert_eq!(get(&url, Some(ALICE)).await.status(), 405);

        // Still serving: the page, and a good upload runs to its end.
        let page = get(&format!("{base}/"), None).await;
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("EventSource"));
        let task = start_task(&base, ALICE, &[img()]).await;
        let id = task["task_id"].as_str().unwrap();
        let token = common::token(&base, ALICE, id).await;
        let events = read_events(open_stream(&base, id, &token, Some("0")).await, 100).await;
        check_sequences(&events);
        assert_eq!(events.last().unwrap().event, "task_completed");
    })
    .await
    .expect("test took too long");
}
