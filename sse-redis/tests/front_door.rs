//! One suite, run both ways: the same handler code (each adapter's `subscribe` front door, the
//! hub's one publishing API) on a hub in memory and on a hub with a Redis backplane, over real
//! sockets on 127.0.0.1, through axum, actix-web and hyper.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use sse_core::hub::SubscribeOptions;
use sse_core::{DecodedEvent, Event, Hub};
use sse_redis::{RedisBackplane, RedisConfig};
use sse_testkit::raw::Sub;
use sse_testkit::redis::{have_redis, RedisServer};

/// Where the hub orders events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Memory,
    Redis,
}

/// The HTTP stack serving the stream route.
#[derive(Clone, Copy, Debug)]
enum Front {
    Axum,
    Actix,
    Hyper,
}

async fn hub(mode: Mode, redis: Option<&RedisServer>) -> Hub {
    let builder = match mode {
        Mode::Memory => Hub::builder(),
        Mode::Redis => {
            let url = redis.expect("a redis-server").url();
            let config = RedisConfig::default().max_backoff(Duration::from_millis(200));
            RedisBackplane::connect(&url, config)
                .await
                .expect("connect")
                .hub_builder()
        }
    };
    builder.lazy_topics(true).build()
}

/// The topic of a `/sub/{topic}` path.
fn topic_of(path: &str) -> Option<&str> {
    path.strip_prefix("/sub/").filter(|t| !t.is_empty())
}

/// Serves `GET /sub/{topic}` through `front`, written as each adapter's docs show.
async fn serve(front: Front, hub: Hub) -> SocketAddr {
    match front {
        Front::Axum => {
            use axum::extract::{Path, State};
            use sse_axum::{LastEventId, SseResponse, SubscribeRejection};
            async fn events(
                State(hub): State<Hub>,
                Path(topic): Path<String>,
                LastEventId(last): LastEventId,
            ) -> Result<SseResponse, SubscribeRejection> {
                sse_axum::subscribe(&hub, SubscribeOptions::topic(topic).last_event_id(last)).await
            }
            let app = axum::Router::new()
                .route("/sub/{topic}", axum::routing::get(events))
                .with_state(hub);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await });
            addr
        }
        Front::Actix => {
            use actix_web::{web, App, HttpServer};
            use sse_actix::{LastEventId, SseResponse, SubscribeRejection};
            async fn events(
                hub: web::Data<Hub>,
                topic: web::Path<String>,
                last: LastEventId,
            ) -> Result<SseResponse, SubscribeRejection> {
                let options = SubscribeOptions::topic(topic.into_inner()).last_event_id(last.0);
                sse_actix::subscribe(&hub, options).await
            }
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let data = web::Data::new(hub);
            std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .route("/sub/{topic}", web::get().to(events))
                    })
                    .workers(1)
                    .h1_allow_half_closed(false)
                    .listen(listener)
                    .unwrap()
                    .run()
                    .await
                })
            });
            addr
        }
        Front::Hyper => {
            use hyper::body::Incoming;
            use hyper::Request;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let service = hyper::service::service_fn({
                let hub = hub.clone();
                move |req: Request<Incoming>| {
                    let hub = hub.clone();
                    async move {
                        let Some(topic) = topic_of(req.uri().path()) else {
                            return Ok::<_, std::convert::Infallible>(sse_hyper::status(
                                http::StatusCode::NOT_FOUND,
                            ));
                        };
                        let options = SubscribeOptions::topic(topic)
                            .last_event_id(sse_hyper::last_event_id(&req));
                        Ok(sse_hyper::subscribe(&hub, options).await)
                    }
                }
            });
            tokio::spawn(sse_hyper::serve(
                listener,
                service,
                hub,
                std::future::pending(),
                Duration::from_secs(1),
            ));
            addr
        }
    }
}

/// Opens a subscriber on a blocking thread (the raw client is synchronous).
async fn open(addr: SocketAddr, path: &str, last: Option<&str>) -> Sub {
    let path = path.to_owned();
    let last = last.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let headers: Vec<(&str, &str)> = last.iter().map(|l| ("Last-Event-ID", &**l)).collect();
        Sub::open(addr, &path, &headers)
    })
    .await
    .unwrap()
}

async fn take(mut sub: Sub, k: usize) -> (Sub, Vec<DecodedEvent>) {
    tokio::task::spawn_blocking(move || {
        let got = sub.take(k);
        (sub, got)
    })
    .await
    .unwrap()
}

async fn rest(mut sub: Sub) -> Vec<DecodedEvent> {
    tokio::task::spawn_blocking(move || sub.all())
        .await
        .unwrap()
}

async fn status(addr: SocketAddr, path: &str, last: &str) -> u16 {
    let sub = open(addr, path, Some(last)).await;
    sub.status
}

/// Waits until the topic has `n` subscribers on this node (the subscribe is asynchronous with
/// a backplane).
async fn subscribed(hub: &Hub, topic: &str, n: usize) {
    for _ in 0..500 {
        if hub
            .get_topic(topic)
            .is_some_and(|t| t.subscriber_count() >= n)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{topic}: never reached {n} subscribers");
}

/// The suite: live delivery, exact resume, terminal event, 204, and what a client of an earlier
/// life of the server gets.
async fn suite(mode: Mode, front: Front, redis: Option<&RedisServer>) {
    let label = format!("{mode:?}/{front:?}");
    let hub = hub(mode, redis).await;
    let addr = serve(front, hub.clone()).await;
    let topic = format!("job-{label}").replace('/', "-");
    let path = format!("/sub/{topic}");

    // Live: three events, ids `INCARNATION:SEQ` with one incarnation.
    let sub = open(addr, &path, None).await;
    assert_eq!(sub.status, 200, "{label}");
    subscribed(&hub, &topic, 1).await;
    let t = hub.topic(&topic).unwrap();
    for i in 1..=3 {
        let seq = t.publish(Event::new().data(format!("e{i}"))).await.unwrap();
        assert_eq!(seq, i, "{label}");
    }
    let (sub, got) = take(sub, 3).await;
    drop(sub);
    let inc = t.incarnation().expect("known after a publish").to_string();
    let ids: Vec<&str> = got.iter().map(|e| e.last_event_id.as_str()).collect();
    assert_eq!(
        ids,
        [format!("{inc}:1"), format!("{inc}:2"), format!("{inc}:3")],
        "{label}"
    );

    // Exact resume after event 2, then the terminal event ends the body.
    let sub = open(addr, &path, Some(&format!("{inc}:2"))).await;
    assert_eq!(sub.status, 200, "{label}");
    subscribed(&hub, &topic, 1).await;
    t.finish(Event::new().event("completed").data("done"))
        .await
        .unwrap();
    let got = rest(sub).await;
    let seen: Vec<(&str, &str)> = got
        .iter()
        .map(|e| (e.event.as_str(), e.data.as_str()))
        .collect();
    assert_eq!(seen, [("message", "e3"), ("completed", "done")], "{label}");
    let terminal_id = got.last().unwrap().last_event_id.clone();
    assert_eq!(terminal_id, format!("{inc}:4"), "{label}");

    // Nothing new for a client that has the terminal event: 204, so EventSource stops.
    assert_eq!(status(addr, &path, &terminal_id).await, 204, "{label}");
    // Publishing after the end is refused.
    assert!(
        t.publish(Event::new().data("late")).await.is_err(),
        "{label}"
    );

    // A second life of the server (a restart in memory; a new node on the same Redis).
    let hub2 = self::hub(mode, redis).await;
    let addr2 = serve(front, hub2.clone()).await;
    let other = format!("{topic}-2");
    let t1 = hub.topic(&other).unwrap();
    for i in 1..=5 {
        t1.publish(Event::new().data(format!("old{i}")))
            .await
            .unwrap();
    }
    let old_id = t1.event_id(2);
    let path2 = format!("/sub/{other}");
    let sub = open(addr2, &path2, Some(&old_id)).await;
    assert_eq!(sub.status, 200, "{label}");
    match mode {
        Mode::Memory => {
            // The new server never issued that id: a gap, never old3..old5 of another life.
            subscribed(&hub2, &other, 1).await;
            let t2 = hub2.topic(&other).unwrap();
            t2.publish(Event::new().data("new1")).await.unwrap();
            let (_sub, got) = take(sub, 2).await;
            assert_eq!(got[0].event, "gap", "{label}: {got:?}");
            assert!(got[0].data.contains("\"after\":null"), "{label}: {got:?}");
            assert_eq!(got[1].data, "new1", "{label}");
            assert_ne!(t2.incarnation(), t1.incarnation(), "{label}");
        }
        Mode::Redis => {
            // The cluster's ids are good on every node: exactly what followed.
            let (_sub, got) = take(sub, 3).await;
            let data: Vec<&str> = got.iter().map(|e| e.data.as_str()).collect();
            assert_eq!(data, ["old3", "old4", "old5"], "{label}");
        }
    }
}

/// Redis loses its data; a node started afterwards numbers the topic from 1 again, in a new
/// incarnation: an id from before the loss gets a `gap`.
async fn redis_lost_its_data(front: Front, redis: &RedisServer) {
    let label = format!("{front:?}");
    let hub = hub(Mode::Redis, Some(redis)).await;
    let topic = format!("lost-{label}");
    let t = hub.topic(&topic).unwrap();
    // A reader on this node, so that it applies what Redis orders and knows the ids it sent.
    let reader = hub.subscribe(topic.as_str()).await.unwrap();
    for i in 1..=50 {
        t.publish(Event::new().data(format!("a{i}"))).await.unwrap();
    }
    for _ in 0..500 {
        if t.last_seq() == 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(t.incarnation().is_some(), "{label}");
    let old_id = t.event_id(50);
    drop(reader);
    let flushed = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port().to_string(), "FLUSHALL"])
        .output()
        .expect("redis-cli");
    assert!(flushed.status.success());

    let hub2 = self::hub(Mode::Redis, Some(redis)).await;
    let addr2 = serve(front, hub2.clone()).await;
    let t2 = hub2.topic(&topic).unwrap();
    for i in 1..=60 {
        t2.publish(Event::new().data(format!("b{i}")))
            .await
            .unwrap();
    }
    let sub = open(addr2, &format!("/sub/{topic}"), Some(&old_id)).await;
    assert_eq!(sub.status, 200, "{label}");
    subscribed(&hub2, &topic, 1).await;
    t2.publish(Event::new().data("live")).await.unwrap();
    let (_sub, got) = take(sub, 2).await;
    assert_eq!(got[0].event, "gap", "{label}: {got:?}");
    assert_eq!(
        got[1].data, "live",
        "{label}: never b51..b60 of the new life"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_handlers_work_in_memory_through_every_adapter() {
    for front in [Front::Axum, Front::Actix, Front::Hyper] {
        tokio::time::timeout(Duration::from_secs(60), suite(Mode::Memory, front, None))
            .await
            .expect("in time");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_handlers_work_with_a_redis_backplane_through_every_adapter() {
    if !have_redis("front-door suite with Redis") {
        return;
    }
    let redis = RedisServer::start("sse-front-door");
    for front in [Front::Axum, Front::Actix, Front::Hyper] {
        tokio::time::timeout(
            Duration::from_secs(60),
            suite(Mode::Redis, front, Some(&redis)),
        )
        .await
        .expect("in time");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_from_before_redis_lost_its_data_gets_a_gap_through_every_adapter() {
    if !have_redis("front-door suite, Redis data loss") {
        return;
    }
    let redis = RedisServer::start("sse-front-door-lost");
    for front in [Front::Axum, Front::Actix, Front::Hyper] {
        tokio::time::timeout(Duration::from_secs(60), redis_lost_its_data(front, &redis))
            .await
            .expect("in time");
    }
}
