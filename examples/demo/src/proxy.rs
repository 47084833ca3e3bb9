//! A small streaming reverse proxy: each response body is forwarded frame by frame as it
//! arrives, so event streams pass through without buffering.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{StatusCode, Uri, Version};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// An app served on a loopback port, reached through the demo's port.
#[derive(Clone, Debug)]
pub struct Upstream {
    name: &'static str,
    addr: SocketAddr,
    prefix: &'static str,
    client: Client<HttpConnector, Body>,
}

/// Headers that belong to one connection, not to the message (RFC 9110, 7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

impl Upstream {
    /// The app `name` listening on `addr`, mounted under `prefix` (such as `/characters`) on the
    /// demo's port.
    pub fn new(name: &'static str, addr: SocketAddr, prefix: &'static str) -> Self {
        let mut connector = HttpConnector::new();
        // Small event frames must leave at once.
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Upstream {
            name,
            addr,
            prefix,
            client,
        }
    }

    /// The app's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Where the app listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Forwards `req` with its path unchanged (the app's own absolute API paths).
    pub async fn forward(&self, req: Request) -> Response {
        self.send(req, false).await
    }

    /// Forwards `req` with the mount prefix removed from its path (`/characters/x` → `/x`).
    pub async fn forward_stripped(&self, req: Request) -> Response {
        self.send(req, true).await
    }

    async fn send(&self, req: Request, strip: bool) -> Response {
        let (mut parts, body) = req.into_parts();
        let path = parts.uri.path();
        let path = match path.strip_prefix(self.prefix) {
            Some(rest) if strip && rest.starts_with('/') => rest,
            Some("") if strip => "/",
            _ => path,
        };
        let target = match parts.uri.query() {
            Some(q) => format!("http://{}{path}?{q}", self.addr),
            None => format!("http://{}{path}", self.addr),
        };
        parts.uri = match target.parse::<Uri>() {
            Ok(uri) => uri,
            Err(e) => return (StatusCode::BAD_REQUEST, format!("bad path: {e}")).into_response(),
        };
        parts.version = Version::HTTP_11;
        remove_hop_by_hop(&mut parts.headers);
        if strip {
            if let Ok(v) = HeaderValue::from_str(self.prefix) {
                parts
                    .headers
                    .insert(HeaderName::from_static("x-forwarded-prefix"), v);
            }
        }
        match self.client.request(Request::from_parts(parts, body)).await {
            Ok(res) => {
                let (mut parts, body) = res.into_parts();
                remove_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, Body::new(body))
            }
            Err(e) => (
                StatusCode::BAD_GATEWAY,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("the {} app is unavailable: {e}\n", self.name),
            )
                .into_response(),
        }
    }
}

fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named by `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}
