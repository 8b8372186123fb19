//! `account_search` v0 (FASP discovery): a term in, the actor URIs of matching discoverable profiles
//! out, by relevance. It searches the directory of the index (only profiles whose owners chose to be
//! listed), and pages with a `Link: <…>; rel="next"` carrying the next page's offset, given only
//! while the index counts more matches than were handed out.

use plaza_index::DirectoryRequest;
use serde::Deserialize;

use crate::{Error, Result};

/// Results per page when the caller does not say.
pub const DEFAULT_LIMIT: usize = 20;
/// The most results per page.
pub const MAX_LIMIT: usize = 100;
/// The longest term searched, in characters.
pub const MAX_TERM_CHARS: usize = 200;

/// The query string of `GET /account_search/v0/search`.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    /// What to search for (required).
    pub term: Option<String>,
    /// Results per page.
    pub limit: Option<String>,
    /// Results to skip (from a `rel="next"` link).
    pub offset: Option<String>,
}

/// The directory listing `params` asks for: 422 ([`Error::Unprocessable`]) without a term, a term
/// too long, or a limit or offset that is not a number.
pub fn request(params: &Params) -> Result<DirectoryRequest> {
    let term = params
        .term
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Unprocessable("term is required".into()))?;
    if term.chars().count() > MAX_TERM_CHARS {
        return Err(Error::Unprocessable(format!(
            "term is longer than {MAX_TERM_CHARS} characters"
        )));
    }
    let limit = match params.limit.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| Error::Unprocessable(format!("limit {text:?} is not a number")))?
            .clamp(1, MAX_LIMIT),
    };
    let offset = match params.offset.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| Error::Unprocessable(format!("offset {text:?} is not a number")))?,
    };
    Ok(DirectoryRequest {
        text: Some(term.to_string()),
        limit,
        offset,
        ..DirectoryRequest::default()
    })
}

/// The offset of the next page, when the index counted more matches than this page and those before.
pub fn next_offset(request: &DirectoryRequest, returned: usize, total: u64) -> Option<usize> {
    let next = request.offset + returned;
    (returned > 0 && (next as u64) < total).then_some(next)
}

/// The `Link` header value pointing at the page after this one.
pub fn next_link(endpoint: &str, request: &DirectoryRequest, offset: usize) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("term", request.text.as_deref().unwrap_or_default())
        .append_pair("limit", &request.limit.to_string())
        .append_pair("offset", &offset.to_string())
        .finish();
    format!("<{endpoint}?{query}>; rel=\"next\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(term: Option<&str>, limit: Option<&str>) -> Params {
        Params {
            term: term.map(str::to_string),
            limit: limit.map(str::to_string),
            offset: None,
        }
    }

    #[test]
    fn a_term_is_required_and_limits_are_bounded() {
        for missing in [None, Some(""), Some("   ")] {
            let err = request(&params(missing, None)).unwrap_err();
            assert_eq!(err.status().as_u16(), 422, "{missing:?}");
        }
        assert_eq!(
            request(&params(Some("bakery"), None)).unwrap().limit,
            DEFAULT_LIMIT
        );
        assert_eq!(
            request(&params(Some("bakery"), Some("1000")))
                .unwrap()
                .limit,
            MAX_LIMIT
        );
        assert_eq!(
            request(&params(Some("bakery"), Some("0"))).unwrap().limit,
            1
        );
        assert_eq!(
            request(&params(Some("bakery"), Some("many")))
                .unwrap_err()
                .status()
                .as_u16(),
            422
        );
        let long = "x".repeat(MAX_TERM_CHARS + 1);
        assert!(request(&params(Some(&long), None)).is_err());
    }

    #[test]
    fn the_next_link_carries_term_limit_and_offset_while_more_remain() {
        let mut r = request(&params(Some("co-op bakery"), Some("2"))).unwrap();
        assert_eq!(
            next_link("https://p.example/fasp/account_search/v0/search", &r, 2),
            "<https://p.example/fasp/account_search/v0/search?term=co-op+bakery&limit=2&offset=2>; rel=\"next\""
        );
        assert_eq!(next_offset(&r, 2, 3), Some(2));
        assert_eq!(next_offset(&r, 2, 2), None);
        assert_eq!(next_offset(&r, 0, 5), None);
        r.offset = 2;
        assert_eq!(next_offset(&r, 1, 3), None);
        let bad = Params {
            offset: Some("x".into()),
            ..params(Some("a"), None)
        };
        assert_eq!(request(&bad).unwrap_err().status().as_u16(), 422);
    }
}
