//! `BACKPLANE=redis://HOST:PORT`: the one environment variable that makes a server a node.

use std::sync::Arc;

use sse_core::hub::HubBuilder;
use sse_core::Hub;

use crate::{ConnectError, RedisBackplane, RedisConfig};

/// The environment variable read by [`backplane_from_env`] and [`hub_builder_from_env`].
pub const BACKPLANE_VAR: &str = "BACKPLANE";

/// Why [`backplane_from_env`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// `BACKPLANE` is set but is not a `redis://` or `rediss://` URL (the password, if any, is
    /// masked in the value shown).
    #[error(
        "BACKPLANE={0:?}: expected redis://HOST:PORT (or unset it to run a single in-memory node)"
    )]
    NotRedis(String),
    /// The URL was rejected or Redis could not be reached.
    #[error("BACKPLANE={url:?}: {source}")]
    Connect {
        /// The URL, password masked.
        url: String,
        /// What went wrong.
        #[source]
        source: ConnectError,
    },
}

impl EnvError {
    /// The exit status a server should use: 2 for a setting that cannot work (not a Redis URL,
    /// or a URL the client rejects), 1 when Redis could not be reached.
    pub fn exit_code(&self) -> u8 {
        match self {
            EnvError::NotRedis(_)
            | EnvError::Connect {
                source: ConnectError::Url(_),
                ..
            } => 2,
            EnvError::Connect { .. } => 1,
        }
    }
}

/// Validates a `BACKPLANE` value: `None` (unset or empty: a single in-memory node) or a
/// `redis://` / `rediss://` URL.
pub fn backplane_url(value: Option<&str>) -> Result<Option<&str>, EnvError> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => Ok(Some(url)),
        Some(other) => Err(EnvError::NotRedis(redacted(other))),
    }
}

/// Connects to the backplane named by `BACKPLANE` with `config`; `Ok(None)` when the variable
/// is unset or empty (a single in-memory node). Call it at startup from within the Tokio runtime
/// the server runs on (the backplane's connections are tasks on it).
pub async fn backplane_from_env(
    config: RedisConfig,
) -> Result<Option<Arc<RedisBackplane>>, EnvError> {
    let value = std::env::var(BACKPLANE_VAR).ok();
    let Some(url) = backplane_url(value.as_deref())? else {
        return Ok(None);
    };
    RedisBackplane::connect(url, config)
        .await
        .map(Some)
        .map_err(|source| EnvError::Connect {
            url: redacted(url),
            source,
        })
}

/// The hub builder of a server that takes `BACKPLANE`: `Hub::builder()` when the variable is
/// unset, `RedisBackplane::connect(url, config).await?.hub_builder()` otherwise. Handlers are
/// the same code either way (`hub.subscribe(..).await`, `topic.publish(..).await`).
pub async fn hub_builder_from_env_with(config: RedisConfig) -> Result<HubBuilder, EnvError> {
    Ok(match backplane_from_env(config).await? {
        Some(bp) => bp.hub_builder(),
        None => Hub::builder(),
    })
}

/// [`hub_builder_from_env_with`] with the default [`RedisConfig`].
pub async fn hub_builder_from_env() -> Result<HubBuilder, EnvError> {
    hub_builder_from_env_with(RedisConfig::default()).await
}

/// `url` without its password (`redis://user:***@host:port`), for messages.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(backplane_url(None).ok(), Some(None));
        assert_eq!(backplane_url(Some("")).ok(), Some(None));
        assert_eq!(
            backplane_url(Some("redis://127.0.0.1:6390")).ok(),
            Some(Some("redis://127.0.0.1:6390"))
        );
        let err = backplane_url(Some("http://u:secret@h:1")).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redacted("redis://h:1"), "redis://h:1");
        assert_eq!(redacted("redis://u:pw@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redacted("redis://:pw@h:1"), "redis://:***@h:1");
        assert_eq!(redacted("nonsense"), "nonsense");
    }
}
