//! `rediss://`: two nodes reach a real `redis-server` over TLS (rustls), with a self-signed
//! certificate made in the test and trusted through `RedisConfig::tls_root_certificate`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sse_core::{Event, Hub};
use sse_redis::{RedisBackplane, RedisConfig};
use sse_testkit::redis::{free_port, have_redis};

/// A redis-server that accepts only TLS connections, killed when dropped.
struct TlsRedis {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
    ca_pem: String,
}

impl TlsRedis {
    fn start() -> TlsRedis {
        let dir = std::env::temp_dir().join(format!("sse-redis-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // A self-signed certificate for the server, which the nodes are told to trust.
        let certified = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .unwrap();
        let cert_pem = certified.cert.pem();
        std::fs::write(dir.join("server.crt"), &cert_pem).unwrap();
        std::fs::write(
            dir.join("server.key"),
            certified.signing_key.serialize_pem(),
        )
        .unwrap();
        std::fs::write(dir.join("ca.crt"), &cert_pem).unwrap();
        let port = free_port();
        let child = Command::new("redis-server")
            .current_dir(&dir)
            .args(["--port", "0", "--bind", "127.0.0.1", "--save", ""])
            .args(["--tls-port", &port.to_string()])
            .args([
                "--tls-cert-file",
                "server.crt",
                "--tls-key-file",
                "server.key",
            ])
            .args(["--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        TlsRedis {
            child,
            port,
            dir,
            ca_pem: cert_pem,
        }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_publish_and_subscribe_through_a_tls_redis() {
    if !have_redis("rediss:// test") {
        return;
    }
    let redis = TlsRedis::start();
    let url = format!("rediss://localhost:{}", redis.port);
    let config = || RedisConfig::default().tls_root_certificate(redis.ca_pem.clone());

    // Without trusting the test CA, the certificate is refused at connect.
    let refused = RedisBackplane::connect(&url, RedisConfig::default()).await;
    assert!(refused.is_err(), "an untrusted certificate was accepted");
    // A plain connection to the TLS port does not work either.
    let plain = RedisBackplane::connect(&format!("redis://localhost:{}", redis.port), {
        RedisConfig::default().timeouts(Duration::from_millis(500), Duration::from_millis(500))
    })
    .await;
    assert!(plain.is_err());

    let a = RedisBackplane::connect(&url, config())
        .await
        .expect("node A over TLS");
    let b = RedisBackplane::connect(&url, config())
        .await
        .expect("node B over TLS");
    let hub_a: Hub = a.hub_builder().lazy_topics(true).build();
    let hub_b: Hub = b.hub_builder().lazy_topics(true).build();
    let mut sub = hub_b.subscribe("tls-job").await.unwrap();
    let topic = hub_a.topic("tls-job").unwrap();
    for i in 1..=3 {
        topic
            .publish(Event::new().data(format!("e{i}")))
            .await
            .unwrap();
    }
    topic.finish(Event::new().event("completed")).await.unwrap();
    let mut got = Vec::new();
    while let Some(f) = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("events in time")
    {
        got.push(String::from_utf8_lossy(f.as_bytes()).into_owned());
    }
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(got[0].starts_with("data: e1\n"), "{got:?}");
    assert!(got[3].starts_with("event: completed\n"), "{got:?}");
}
