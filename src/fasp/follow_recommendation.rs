//! `follow_recommendation` v0 (FASP discovery): an account URI in, the actor URIs of discoverable
//! accounts that post on the same hashtags and instance out, best first. The scoring lives in the
//! index ([`plaza_index::Index::recommend_follows`]); this file reads the query string. An account
//! Plaza has no indexed post of gets an empty array: nothing is known of its interests, and Plaza
//! does not guess.

use plaza_index::{DEFAULT_RECOMMENDATIONS, RecommendRequest};
use serde::Deserialize;

use crate::{Error, Result};

/// The longest account URI accepted, in bytes.
pub const MAX_URI_BYTES: usize = 2048;
/// The longest language range accepted, in bytes.
pub const MAX_LANGUAGE_BYTES: usize = 35;

/// The query string of `GET /follow_recommendation/v0/accounts`.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    /// The actor URI of the account asking for recommendations (required).
    #[serde(rename = "accountUri")]
    pub account_uri: Option<String>,
    /// Only accounts posting in this language (RFC 4647 basic range).
    pub language: Option<String>,
}

/// The recommendation `params` ask for: 422 ([`Error::Unprocessable`]) without an `accountUri`, with
/// one that is no http(s) URI, or with an overlong language range.
pub fn request(params: &Params) -> Result<RecommendRequest> {
    let uri = params
        .account_uri
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Error::Unprocessable("accountUri is required".into()))?;
    if uri.len() > MAX_URI_BYTES {
        return Err(Error::Unprocessable(format!(
            "accountUri is longer than {MAX_URI_BYTES} bytes"
        )));
    }
    let parsed = url::Url::parse(uri)
        .map_err(|e| Error::Unprocessable(format!("accountUri {uri:?} is not a URI: {e}")))?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
        return Err(Error::Unprocessable(format!(
            "accountUri {uri:?} is not an http(s) actor URI"
        )));
    }
    let language = params
        .language
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty());
    if language.is_some_and(|l| l.len() > MAX_LANGUAGE_BYTES) {
        return Err(Error::Unprocessable(format!(
            "language is longer than {MAX_LANGUAGE_BYTES} bytes"
        )));
    }
    Ok(RecommendRequest {
        account_uri: uri.to_string(),
        language: language.map(str::to_string),
        limit: DEFAULT_RECOMMENDATIONS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(uri: Option<&str>, language: Option<&str>) -> Params {
        Params {
            account_uri: uri.map(str::to_string),
            language: language.map(str::to_string),
        }
    }

    #[test]
    fn an_http_account_uri_is_required() {
        for bad in [
            None,
            Some(""),
            Some("  "),
            Some("ann@bakers.example"),
            Some("mailto:ann@bakers.example"),
        ] {
            let err = request(&params(bad, None)).unwrap_err();
            assert_eq!(err.status().as_u16(), 422, "{bad:?}");
        }
        let long = format!("https://a.example/{}", "x".repeat(MAX_URI_BYTES));
        assert!(request(&params(Some(&long), None)).is_err());
        let ok = request(&params(
            Some(" https://a.example/users/ann "),
            Some("en-GB"),
        ))
        .unwrap();
        assert_eq!(ok.account_uri, "https://a.example/users/ann");
        assert_eq!(ok.language.as_deref(), Some("en-GB"));
        assert_eq!(ok.limit, DEFAULT_RECOMMENDATIONS);
        let none = request(&params(Some("https://a.example/users/ann"), Some(" "))).unwrap();
        assert_eq!(none.language, None);
        let overlong = "e".repeat(MAX_LANGUAGE_BYTES + 1);
        assert!(
            request(&params(
                Some("https://a.example/users/ann"),
                Some(&overlong)
            ))
            .is_err()
        );
    }
}
