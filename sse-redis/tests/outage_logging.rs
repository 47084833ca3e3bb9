//! A Redis outage is logged once when it starts (a warning per connection) and once when it
//! ends (an `info` line with its length and what failed meanwhile), never once per failed
//! publish or retry; captured by a real `tracing` subscriber, with a real `redis-server`.
#![allow(clippy::unwrap_used)]

use sse_testkit::logs as log_capture;

use std::time::{Duration, Instant};

use sse_core::hub::PublishError;
use sse_core::Event;
use sse_redis::{RedisBackplane, RedisConfig};
use sse_testkit::redis::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_logged_when_it_starts_and_when_it_ends_not_per_failure() {
    let logs = log_capture::start().await;
    let mut redis = RedisServer::start("sse-redis-outage-log");
    let mut config = RedisConfig::default()
        .pool_size(1)
        .max_backoff(Duration::from_millis(100))
        .timeouts(Duration::from_millis(300), Duration::from_secs(1));
    config.read_block = Duration::from_millis(200);
    let bp = RedisBackplane::connect(&redis.url(), config).await.unwrap();
    let hub = bp.hub_builder().lazy_topics(true).build();
    // A subscriber, so that the node's reader follows the topic.
    let _sub = hub.subscribe("live").await.unwrap();
    hub.publish("live", Event::new().data("before"))
        .await
        .unwrap();

    let _ = redis.stop(false);
    let mut failed = 0;
    for _ in 0..10 {
        match hub
            .publish("live", Event::new().data("PAYLOAD-lost-7"))
            .await
        {
            Err(PublishError::Backplane(_)) => failed += 1,
            other => panic!("expected a backplane error, got {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // The reader retries with backoff meanwhile.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let down = logs.with_message("redis unavailable: reconnecting with backoff");
    let of = |lines: &[serde_json::Value], what: &str| {
        lines
            .iter()
            .filter(|l| l["fields"]["connection"] == what)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(of(&down, "publish").len(), 1, "{}", logs.raw());
    assert_eq!(of(&down, "read").len(), 1, "{}", logs.raw());
    assert!(down.iter().all(|l| l["level"] == "WARN"));

    redis.spawn();
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        match hub.publish("live", Event::new().data("after")).await {
            Ok(_) => break,
            Err(PublishError::Backplane(_)) if Instant::now() < until => {
                failed += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    for _ in 0..200 {
        if of(&logs.with_message("redis reachable again"), "read").len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let back = logs.with_message("redis reachable again");
    let publish = of(&back, "publish");
    assert_eq!(publish.len(), 1, "{}", logs.raw());
    assert_eq!(publish[0]["level"], "INFO");
    assert_eq!(publish[0]["fields"]["failed"], failed);
    assert!(publish[0]["fields"]["outage_ms"].as_u64().unwrap() >= 300);
    let read = of(&back, "read");
    assert_eq!(read.len(), 1, "{}", logs.raw());
    assert!(read[0]["fields"]["failed"].as_u64().unwrap() >= 1);
    // Still one warning each: the outage was not logged per failure.
    let down = logs.with_message("redis unavailable: reconnecting with backoff");
    assert_eq!(down.len(), 2, "{}", logs.raw());
    assert!(
        !logs.raw().contains("PAYLOAD"),
        "an event's data reached the log"
    );
}
