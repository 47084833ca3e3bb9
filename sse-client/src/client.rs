//! [`Client`]: the HTTP side (connections, TLS) shared by every event source it opens.

use std::time::Duration;

use http::Method;

use crate::error::BuildError;
use crate::request::{IntoUrl, RequestBuilder};

/// How long establishing a connection (TCP and TLS) may take by default.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An SSE client: opens [`EventSource`](crate::EventSource)s with [`Client::get`],
/// [`Client::post`] or [`Client::request`].
///
/// Cheap to clone (the connection pool and TLS settings are shared). HTTP/1.1 and HTTP/2 (over
/// TLS, by ALPN), rustls for `https://` with Mozilla's root certificates built in, redirects
/// followed (up to 10), proxies from the environment (`HTTPS_PROXY`, `NO_PROXY`, …).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
}

impl Client {
    /// A builder for a client's settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            user_agent: concat!("sse-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            pem_roots: Vec::new(),
            der_roots: Vec::new(),
            built_in_roots: true,
            proxy_from_env: true,
        }
    }

    /// A client over a [`reqwest::Client`] configured by hand. Its timeouts apply as set there:
    /// leave the total request timeout unset, or it cuts every stream off.
    pub fn from_reqwest(http: reqwest::Client) -> Self {
        Client { http }
    }

    /// A `GET` event source of `url`.
    pub fn get(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// A `POST` event source of `url`; give the body with [`RequestBuilder::body`] or
    /// [`RequestBuilder::json`].
    pub fn post(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// An event source of `url` requested with `method`.
    pub fn request(&self, method: Method, url: impl IntoUrl) -> RequestBuilder {
        RequestBuilder::new(self.http.clone(), method, url.into_url())
    }
}

/// Settings of a [`Client`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until built"]
pub struct ClientBuilder {
    connect_timeout: Duration,
    user_agent: String,
    pem_roots: Vec<Vec<u8>>,
    der_roots: Vec<Vec<u8>>,
    built_in_roots: bool,
    proxy_from_env: bool,
}

impl ClientBuilder {
    /// How long establishing a connection (TCP and TLS handshake) may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The `User-Agent` header (default `sse-client/VERSION`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Trusts the certificates of a PEM file (one or several `CERTIFICATE` blocks) as roots,
    /// for example a private CA's or a server's self-signed certificate.
    pub fn add_root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.pem_roots.push(pem.into());
        self
    }

    /// Trusts one DER-encoded certificate as a root.
    pub fn add_root_certificate_der(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.der_roots.push(der.into());
        self
    }

    /// Whether to trust the built-in Mozilla root certificates (default yes). Turn off to trust
    /// only the certificates added.
    pub fn built_in_roots(mut self, trust: bool) -> Self {
        self.built_in_roots = trust;
        self
    }

    /// Whether to use the proxies named by the environment (`HTTP_PROXY`, `HTTPS_PROXY`,
    /// `ALL_PROXY`, `NO_PROXY`; default yes).
    pub fn proxy_from_env(mut self, use_env: bool) -> Self {
        self.proxy_from_env = use_env;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client, BuildError> {
        let mut http = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(self.connect_timeout)
            .user_agent(self.user_agent)
            .tls_built_in_root_certs(self.built_in_roots);
        if !self.proxy_from_env {
            http = http.no_proxy();
        }
        let mut index = 0;
        for pem in &self.pem_roots {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|source| BuildError::Certificate { index, source })?;
            if certificates.is_empty() {
                return Err(BuildError::NoCertificate { index });
            }
            for certificate in certificates {
                http = http.add_root_certificate(certificate);
            }
            index += 1;
        }
        for der in &self.der_roots {
            let certificate = reqwest::Certificate::from_der(der)
                .map_err(|source| BuildError::Certificate { index, source })?;
            http = http.add_root_certificate(certificate);
            index += 1;
        }
        Ok(Client {
            http: http.build().map_err(BuildError::Http)?,
        })
    }
}
