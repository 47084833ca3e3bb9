//! The request's token: `Authorization: Bearer <token>` first, then a cookie, then the query
//! string. A browser's `EventSource` cannot set headers, so stream endpoints accept the token
//! from a cookie or a `?token=` parameter as well; which of those an app accepts is its choice
//! (an app that must never see secrets in URLs names no query parameters).

/// Why a request has no usable token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// An `Authorization` header that is not `Bearer <token>`. Refused outright, rather than
    /// falling through to a cookie or the query: a client that sends a header means it.
    #[error("the Authorization header must be 'Bearer <token>'")]
    Malformed,
    /// No token in any of the places the app accepts one.
    #[error("missing bearer token: send 'Authorization: Bearer <token>'")]
    Missing,
}

/// Where a request may carry its token; built from the framework's request by each app.
///
/// ```
/// use sse_examples_support::{request_token, TokenError, TokenSources};
/// let from_header = TokenSources::new(Some(b"Bearer abc".as_slice()));
/// assert_eq!(request_token(&from_header), Ok("abc".to_owned()));
/// let from_query = TokenSources::new(None).query(Some("x=1&token=t%20k"), &["token"]);
/// assert_eq!(request_token(&from_query), Ok("t k".to_owned()));
/// assert_eq!(
///     request_token(&TokenSources::new(Some(b"Basic eDp5".as_slice()))),
///     Err(TokenError::Malformed)
/// );
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenSources<'a> {
    authorization: Option<&'a [u8]>,
    cookie: Option<&'a str>,
    query: Option<&'a str>,
    query_names: &'a [&'a str],
}

impl<'a> TokenSources<'a> {
    /// The value of the request's `Authorization` header, if it has one.
    pub fn new(authorization: Option<&'a [u8]>) -> Self {
        TokenSources {
            authorization,
            ..TokenSources::default()
        }
    }

    /// The value of the app's token cookie, if the request has one.
    pub fn cookie(mut self, value: Option<&'a str>) -> Self {
        self.cookie = value;
        self
    }

    /// The raw query string, and the parameters (first found wins) that may carry the token.
    pub fn query(mut self, query: Option<&'a str>, names: &'a [&'a str]) -> Self {
        self.query = query;
        self.query_names = names;
        self
    }
}

/// The request's token: the `Authorization: Bearer` header, else the cookie, else the first
/// of the query parameters that is present. Empty values count as absent.
pub fn request_token(sources: &TokenSources<'_>) -> Result<String, TokenError> {
    if let Some(value) = sources.authorization {
        return bearer(value).map(str::to_owned);
    }
    if let Some(cookie) = sources.cookie.map(str::trim).filter(|c| !c.is_empty()) {
        return Ok(cookie.to_owned());
    }
    sources
        .query
        .and_then(|q| {
            sources
                .query_names
                .iter()
                .find_map(|name| sse_core::http::query_param(q, name))
        })
        .filter(|t| !t.is_empty())
        .ok_or(TokenError::Missing)
}

/// The token of an `Authorization` header value `Bearer <token>` (the scheme in any case).
pub fn bearer(value: &[u8]) -> Result<&str, TokenError> {
    let value = std::str::from_utf8(value).map_err(|_| TokenError::Malformed)?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(TokenError::Malformed);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(
        auth: Option<&str>,
        cookie: Option<&str>,
        query: Option<&str>,
    ) -> Result<String, TokenError> {
        request_token(
            &TokenSources::new(auth.map(str::as_bytes))
                .cookie(cookie)
                .query(query, &["token", "access_token"]),
        )
    }

    #[test]
    fn the_header_wins_over_the_cookie_and_the_query() {
        assert_eq!(
            token(Some("Bearer h"), Some("c"), Some("token=q")),
            Ok("h".into())
        );
        assert_eq!(token(Some("bearer   h2  "), None, None), Ok("h2".into()));
        assert_eq!(token(None, Some("c"), Some("token=q")), Ok("c".into()));
        assert_eq!(token(None, None, Some("a=1&token=q")), Ok("q".into()));
        assert_eq!(token(None, None, Some("access_token=z")), Ok("z".into()));
    }

    #[test]
    fn a_malformed_header_is_refused_even_with_a_query_token() {
        for bad in ["Basic ZGVtbzpkZW1v", "Bearer", "Bearer   ", "token-alone"] {
            assert_eq!(
                token(Some(bad), None, Some("token=q")),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(bearer(&[0xff, 0xfe]), Err(TokenError::Malformed));
    }

    #[test]
    fn empty_or_absent_tokens_are_missing() {
        assert_eq!(token(None, None, None), Err(TokenError::Missing));
        assert_eq!(
            token(None, Some(" "), Some("token=")),
            Err(TokenError::Missing)
        );
        assert_eq!(token(None, None, Some("other=x")), Err(TokenError::Missing));
        // Only the parameters the app names are read.
        let only_header = TokenSources::new(None).query(Some("token=q"), &[]);
        assert_eq!(request_token(&only_header), Err(TokenError::Missing));
    }
}
