//! The client against a real server (axum + sse-axum + a hub, on 127.0.0.1): reconnection and
//! resume, retry, backoff, 204, typed errors, POST, idle timeout and heartbeats, a server that
//! dies mid-stream, and TLS with a self-signed certificate.
#![allow(clippy::unwrap_used)]

mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use common::{Server, TEST_TIMEOUT};
use serde::Deserialize;
use sse_client::{Backoff, Client, Error, Update};
use sse_core::Event;
use tokio::net::TcpListener;
use tokio::time::Instant;

const MS: Duration = Duration::from_millis(1);

/// Runs `test` on a multi-threaded runtime, failing it if it takes longer than [`TEST_TIMEOUT`].
fn run<F: Future<Output = ()>>(test: F) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(TEST_TIMEOUT, test)
            .await
            .expect("the test did not finish in time");
    });
}

fn client() -> Client {
    Client::builder().proxy_from_env(false).build().unwrap()
}

async fn publish_numbers(server: &Server, topic: &str, range: std::ops::Range<u32>) -> Vec<String> {
    let topic = server.hub.topic(topic).unwrap();
    let mut ids = Vec::new();
    for n in range {
        let seq = topic
            .publish(Event::new().event("n").data(n.to_string()))
            .await
            .unwrap();
        ids.push(topic.event_id(seq));
    }
    ids
}

#[test]
fn reconnecting_with_last_event_id_resumes_exactly_where_the_stream_broke_off() {
    run(async {
        let server = Server::start().await;
        let ids = publish_numbers(&server, "t", 0..12).await;
        // Each response ends after 5 events: 12 events take three connections.
        let mut source = client()
            .get(server.url("/topic/t?take=5"))
            .retry(10 * MS)
            .last_event_id(ids[0].clone())
            .open()
            .unwrap();
        let mut seen = Vec::new();
        let mut clean_ends = 0;
        while seen.len() < 11 {
            match source.next().await.unwrap().unwrap() {
                Update::Event(e) => seen.push((e.data().to_owned(), e.id().to_owned())),
                Update::Reconnecting(r) => {
                    assert!(r.cause.is_none(), "{:?}", r.cause);
                    assert_eq!(r.delay, 10 * MS);
                    clean_ends += 1;
                }
                Update::Connected(c) => assert_eq!(c.headers["content-type"], "text/event-stream"),
            }
        }
        let want: Vec<(String, String)> =
            (1..12).map(|n| (n.to_string(), ids[n].clone())).collect();
        assert_eq!(seen, want, "no gap, no duplicate");
        assert_eq!(clean_ends, 2);
        let sent: Vec<Option<String>> = server
            .requests()
            .iter()
            .map(|r| r.header("last-event-id").map(str::to_owned))
            .collect();
        assert_eq!(
            sent,
            [
                Some(ids[0].clone()),
                Some(ids[5].clone()),
                Some(ids[10].clone())
            ]
        );
        assert_eq!(source.last_event_id(), ids[11]);
    });
}

#[test]
fn the_servers_retry_sets_the_reconnection_delay() {
    run(async {
        let server = Server::start().await;
        publish_numbers(&server, "r", 0..3).await;
        // The client's own default would be 3 s; the server asks for 300 ms.
        let mut source = client()
            .get(server.url("/topic/r?take=1&retry=300"))
            .last_event_id(server.hub.get_topic("r").unwrap().event_id(0))
            .open()
            .unwrap();
        let mut delays = Vec::new();
        let mut events = 0;
        while events < 3 {
            match source.next().await.unwrap().unwrap() {
                Update::Event(_) => events += 1,
                Update::Reconnecting(r) => delays.push(r.delay),
                Update::Connected(_) => {}
            }
        }
        assert_eq!(delays, [300 * MS, 300 * MS]);
        assert_eq!(source.retry(), 300 * MS);
        let requests = server.requests();
        assert_eq!(requests.len(), 3);
        for pair in requests.windows(2) {
            let gap = pair[1].at - pair[0].at;
            assert!(gap >= 300 * MS, "reconnected after {gap:?}");
            assert!(gap < Duration::from_secs(2), "reconnected after {gap:?}");
        }
    });
}

#[test]
fn no_content_stops_the_source_for_good() {
    run(async {
        let server = Server::start().await;
        let job = server.hub.job("done").unwrap();
        // A subscriber that has seen the terminal event is answered 204 when it comes back.
        let mut source = client()
            .get(server.url("/topic/done"))
            .retry(10 * MS)
            .open()
            .unwrap();
        assert!(matches!(
            source.next().await.unwrap(),
            Some(Update::Connected(_))
        ));
        job.progress(&serde_json::json!({"step": 1})).await.unwrap();
        job.complete(Event::new().event("completed").data("ok"))
            .await
            .unwrap();
        let mut types = Vec::new();
        while let Some(event) = source.next_event().await.unwrap() {
            types.push(event.event_type().to_owned());
        }
        assert_eq!(types, ["progress", "completed"]);
        assert!(source.next().await.unwrap().is_none(), "stays stopped");
        let requests = server.requests();
        assert_eq!(requests.len(), 2, "one reconnection, answered 204");
        assert!(requests[1].header("last-event-id").is_some());
    });
}

#[test]
fn a_non_200_status_is_a_typed_error_and_is_not_retried() {
    run(async {
        let server = Server::start().await;
        let url = server.url("/status/503");
        let mut source = client().get(&url).retry(10 * MS).open().unwrap();
        let error = source.next().await.unwrap_err();
        assert!(error.is_status(), "{error:?}");
        assert_eq!(error.status(), Some(http::StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(
            error.to_string(),
            format!("{url}: server answered HTTP 503 Service Unavailable, expected 200 OK")
        );
        assert!(source.next().await.unwrap().is_none());
        assert_eq!(server.requests().len(), 1);
    });
}

#[test]
fn a_wrong_content_type_is_a_typed_error() {
    run(async {
        let server = Server::start().await;
        let url = server.url("/html");
        let mut source = client().get(&url).open().unwrap();
        let error = source.next_event().await.unwrap_err();
        assert!(error.is_content_type(), "{error:?}");
        assert!(!error.is_status());
        assert_eq!(
            error.to_string(),
            format!("{url}: server answered Content-Type \"text/html; charset=utf-8\", expected text/event-stream")
        );
        assert_eq!(server.requests().len(), 1);
    });
}

#[test]
fn post_sends_its_body_and_headers_on_every_connection() {
    run(async {
        let server = Server::start().await;
        let ids = publish_numbers(&server, "p", 0..3).await;
        let body = serde_json::json!({"prompt": "résumé", "n": 2});
        let mut source = client()
            .post(server.url("/topic/p?take=1"))
            .header("x-token", "secret")
            .header("x-multi", "a")
            .header("x-multi", "b")
            .json(&body)
            .retry(10 * MS)
            .last_event_id(ids[0].clone())
            .open()
            .unwrap();
        for want in ["1", "2"] {
            let event = source.next_event().await.unwrap().unwrap();
            assert_eq!(event.data(), want);
        }
        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        for (request, last) in requests.iter().zip([&ids[0], &ids[1]]) {
            assert_eq!(request.method, http::Method::POST);
            assert_eq!(
                serde_json::from_slice::<serde_json::Value>(&request.body).unwrap(),
                body
            );
            assert_eq!(request.header("content-type"), Some("application/json"));
            assert_eq!(request.header("x-token"), Some("secret"));
            assert_eq!(request.headers.get_all("x-multi").iter().count(), 2);
            assert_eq!(request.header("accept"), Some("text/event-stream"));
            assert_eq!(request.header("last-event-id"), Some(last.as_str()));
        }
    });
}

#[test]
fn the_idle_timeout_reconnects_when_a_server_hangs_after_its_headers() {
    run(async {
        let server = Server::start().await;
        let mut source = client()
            .get(server.url("/hang"))
            .idle_timeout(300 * MS)
            .retry(10 * MS)
            .open()
            .unwrap();
        assert!(matches!(
            source.next().await.unwrap(),
            Some(Update::Connected(_))
        ));
        let connected = Instant::now();
        let Some(Update::Reconnecting(reconnect)) = source.next().await.unwrap() else {
            panic!("expected a reconnection");
        };
        let waited = connected.elapsed();
        let cause = reconnect.cause.unwrap();
        assert!(cause.is_idle_timeout(), "{cause:?}");
        assert!(cause
            .to_string()
            .ends_with("nothing received for 300ms (idle timeout)"));
        assert!(
            waited >= 300 * MS && waited < Duration::from_secs(3),
            "{waited:?}"
        );
        // And it does reconnect.
        assert!(matches!(
            source.next().await.unwrap(),
            Some(Update::Connected(_))
        ));
        assert_eq!(server.requests().len(), 2);
    });
}

#[test]
fn heartbeats_keep_a_quiet_stream_within_the_idle_timeout() {
    run(async {
        let server = Server::start().await;
        let topic = server.hub.topic("quiet").unwrap();
        let mut source = client()
            .get(server.url("/topic/quiet?heartbeat=100"))
            .idle_timeout(400 * MS)
            .open()
            .unwrap();
        assert!(matches!(
            source.next().await.unwrap(),
            Some(Update::Connected(_))
        ));
        let publisher = tokio::spawn(async move {
            // Three idle timeouts' worth of silence but for the heartbeats.
            tokio::time::sleep(Duration::from_millis(1200)).await;
            topic.publish(Event::new().data("finally")).await.unwrap();
        });
        let started = Instant::now();
        match source.next().await.unwrap() {
            Some(Update::Event(e)) => assert_eq!(e.data(), "finally"),
            other => panic!("expected the event, got {other:?}"),
        }
        assert!(started.elapsed() >= Duration::from_millis(1100));
        publisher.await.unwrap();
        assert_eq!(server.requests().len(), 1, "no reconnection");
    });
}

#[test]
fn without_heartbeats_the_same_quiet_stream_times_out() {
    run(async {
        let server = Server::start().await;
        server.hub.topic("silent").unwrap();
        // The hub's default heartbeat is far longer than the idle timeout.
        let mut source = client()
            .get(server.url("/topic/silent?heartbeat=5000"))
            .idle_timeout(400 * MS)
            .max_retries(0)
            .open()
            .unwrap();
        assert!(matches!(
            source.next().await.unwrap(),
            Some(Update::Connected(_))
        ));
        let error = source.next().await.unwrap_err();
        let Error::RetriesExhausted {
            retries: 0,
            last: Some(last),
        } = &error
        else {
            panic!("{error:?}");
        };
        assert!(last.is_idle_timeout(), "{last:?}");
    });
}

#[test]
fn a_server_that_dies_mid_stream_is_reconnected_to() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hub = sse_core::Hub::new();
        let log = Arc::default();
        let server = Server::on(listener, hub.clone(), Arc::clone(&log), None);
        let topic = hub.topic("live").unwrap();
        let mut source = client()
            .get(server.url("/topic/live"))
            .retry(200 * MS)
            .open()
            .unwrap();
        assert!(matches!(
            source.next().await.unwrap(),
            Some(Update::Connected(_))
        ));
        let mut ids = Vec::new();
        for n in 0..3 {
            let seq = topic
                .publish(Event::new().data(n.to_string()))
                .await
                .unwrap();
            ids.push(topic.event_id(seq));
            let event = source.next_event().await.unwrap().unwrap();
            assert_eq!(
                (event.data(), event.id()),
                (n.to_string().as_str(), ids[n].as_str())
            );
        }
        // The server dies with the stream open; the events published meanwhile must not be lost.
        server.kill().await;
        for n in 3..5 {
            let seq = topic
                .publish(Event::new().data(n.to_string()))
                .await
                .unwrap();
            ids.push(topic.event_id(seq));
        }
        let Some(Update::Reconnecting(reconnect)) = source.next().await.unwrap() else {
            panic!("expected a reconnection");
        };
        let cause = reconnect.cause.expect("a broken stream is a failure");
        assert!(cause.is_connection(), "{cause:?}");
        assert_eq!(reconnect.last_event_id, ids[2]);
        // The server comes back on the same port.
        let listener = TcpListener::bind(addr).await.unwrap();
        let server = Server::on(listener, hub.clone(), log, None);
        let mut data = Vec::new();
        while data.len() < 2 {
            match source.next().await.unwrap().unwrap() {
                Update::Event(e) => data.push((e.data().to_owned(), e.id().to_owned())),
                Update::Connected(_) => {}
                Update::Reconnecting(r) => assert!(r.cause.unwrap().is_connection()),
            }
        }
        assert_eq!(
            data,
            [
                ("3".to_owned(), ids[3].clone()),
                ("4".to_owned(), ids[4].clone())
            ]
        );
        let requests = server.requests();
        assert_eq!(requests.first().unwrap().header("last-event-id"), None);
        assert_eq!(
            requests.last().unwrap().header("last-event-id"),
            Some(ids[2].as_str())
        );
    });
}

#[test]
fn backoff_grows_with_jitter_while_connections_fail_then_gives_up() {
    run(async {
        // A port nobody listens on.
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let backoff = Backoff::default().floor(10 * MS).max_delay(200 * MS);
        let mut source = client()
            .get(format!("http://{addr}/events"))
            .retry(20 * MS)
            .backoff(backoff)
            .max_retries(5)
            .open()
            .unwrap();
        let started = Instant::now();
        let mut delays = Vec::new();
        let error = loop {
            match source.next().await {
                Ok(Some(Update::Reconnecting(r))) => {
                    assert!(r.cause.unwrap().is_connection());
                    assert_eq!(r.attempt, delays.len() as u64 + 1);
                    delays.push(r.delay);
                }
                Ok(other) => panic!("unexpected {other:?}"),
                Err(e) => break e,
            }
        };
        let elapsed = started.elapsed();
        assert_eq!(delays.len(), 5, "{delays:?}");
        // The first reconnection waits the reconnection time; then 20 ms × 2^n × (1 + 0.5 u),
        // capped at 200 ms.
        assert_eq!(delays[0], 20 * MS);
        for (n, range) in [(1, 40..60), (2, 80..120), (3, 160..201), (4, 200..201)] {
            let ms = delays[n].as_millis();
            assert!(range.contains(&ms), "delay {n}: {ms} ms not in {range:?}");
        }
        assert!(
            elapsed >= delays.iter().sum::<Duration>(),
            "{elapsed:?} {delays:?}"
        );
        let Error::RetriesExhausted {
            retries: 5,
            last: Some(last),
        } = &error
        else {
            panic!("{error:?}");
        };
        assert!(matches!(**last, Error::Request { .. }), "{last:?}");
        assert!(error.is_retries_exhausted());
    });
}

#[test]
fn max_retries_after_streams_that_end_without_events_gives_up_with_no_cause() {
    run(async {
        let server = Server::start().await;
        let mut source = client()
            .get(server.url("/empty"))
            .retry(10 * MS)
            .max_retries(2)
            .open()
            .unwrap();
        let error = loop {
            match source.next().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the server never says 204"),
                Err(e) => break e,
            }
        };
        assert!(matches!(
            error,
            Error::RetriesExhausted {
                retries: 2,
                last: None
            }
        ));
        assert_eq!(server.requests().len(), 3);
    });
}

#[test]
fn events_deserialize_with_serde_borrowing_from_the_data() {
    #[derive(Debug, Deserialize, PartialEq)]
    struct Progress<'a> {
        stage: &'a str,
        done: u32,
    }
    run(async {
        let server = Server::start().await;
        let topic = server.hub.topic("json").unwrap();
        let mut source = client().get(server.url("/topic/json")).open().unwrap();
        assert!(matches!(
            source.next().await.unwrap(),
            Some(Update::Connected(_))
        ));
        let value = serde_json::json!({"stage": "ocr", "done": 3});
        topic.publish(Event::new().json(&value)).await.unwrap();
        topic.publish(Event::new().data("not json")).await.unwrap();
        let event = source.next_event().await.unwrap().unwrap();
        assert_eq!(
            event.json::<Progress<'_>>().unwrap(),
            Progress {
                stage: "ocr",
                done: 3
            }
        );
        let event = source.next_event().await.unwrap().unwrap();
        assert!(event.json::<Progress<'_>>().is_err());
        assert_eq!(event.to_decoded().data, "not json");
    });
}

#[test]
fn invalid_requests_fail_before_anything_is_sent() {
    let client = client();
    let error = client.get("ftp://127.0.0.1/x").open().unwrap_err();
    assert!(error.is_invalid_request());
    assert_eq!(
        error.to_string(),
        "invalid URL \"ftp://127.0.0.1/x\": unsupported scheme \"ftp\", expected http or https"
    );
    assert!(client
        .get("not a url")
        .open()
        .unwrap_err()
        .is_invalid_request());
    let error = client
        .get("http://127.0.0.1/")
        .header("bad name", "x")
        .open()
        .unwrap_err();
    assert!(matches!(error, Error::Header { .. }), "{error:?}");
    let error = client
        .get("http://127.0.0.1/")
        .header("x-ok", "line\nbreak")
        .open()
        .unwrap_err();
    assert!(matches!(error, Error::Header { .. }), "{error:?}");
}

// ---------------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------------

/// A self-signed certificate for 127.0.0.1 and localhost, and a TLS acceptor serving it (HTTP/2
/// and HTTP/1.1 by ALPN).
fn self_signed() -> (String, tokio_rustls::TlsAcceptor) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (
        certified.cert.pem(),
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    )
}

#[test]
fn tls_with_a_self_signed_certificate_that_the_client_trusts() {
    run(async {
        let (pem, acceptor) = self_signed();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hub = sse_core::Hub::new();
        let server = Server::on(listener, hub.clone(), Arc::default(), Some(acceptor));
        let ids = publish_numbers(&server, "secure", 0..4).await;
        let client = Client::builder()
            .add_root_certificates_pem(pem)
            .built_in_roots(false)
            .proxy_from_env(false)
            .build()
            .unwrap();
        let url = format!("https://{}/topic/secure?take=2", server.addr);
        let mut source = client
            .get(&url)
            .retry(10 * MS)
            .last_event_id(ids[0].clone())
            .open()
            .unwrap();
        let Some(Update::Connected(connected)) = source.next().await.unwrap() else {
            panic!("expected a connection");
        };
        assert_eq!(connected.url.scheme(), "https");
        let mut data = Vec::new();
        while data.len() < 3 {
            if let Some(event) = source.next_event().await.unwrap() {
                data.push(event.data().to_owned());
            }
        }
        assert_eq!(data, ["1", "2", "3"]);
        // Resumed across a reconnection over TLS.
        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[1].header("last-event-id"), Some(ids[2].as_str()));
    });
}

#[test]
fn tls_fails_when_the_certificate_is_not_trusted() {
    run(async {
        let (_pem, acceptor) = self_signed();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Server::on(
            listener,
            sse_core::Hub::new(),
            Arc::default(),
            Some(acceptor),
        );
        let url = format!("https://{}/topic/x", server.addr);
        let mut source = client().get(&url).max_retries(0).open().unwrap();
        let error = source.next().await.unwrap_err();
        let Error::RetriesExhausted {
            last: Some(last), ..
        } = &error
        else {
            panic!("{error:?}");
        };
        let mut chain = last.to_string();
        let mut cause = std::error::Error::source(&**last);
        while let Some(c) = cause {
            chain.push_str(": ");
            chain.push_str(&c.to_string());
            cause = c.source();
        }
        assert!(chain.to_lowercase().contains("certificate"), "{chain}");
        assert!(server.requests().is_empty(), "no request got through");
    });
}
