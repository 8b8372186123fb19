//! `trends` v0 (FASP discovery): the content, hashtags and links trending among what Plaza indexed,
//! for a server to show in its Explore section. Parameters are read here (422 for anything out of
//! range); the computation is the index's ([`plaza_index::trends`]), the same the Mastodon Explore API
//! and the web pages show.

use plaza_index::trends::{DEFAULT_WINDOW_HOURS, MAX_COUNT, MAX_WINDOW_HOURS};
use plaza_index::{Trend, TrendRequest};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::web::trends::Kind;
use crate::{Error, Result};

/// Items when the caller does not say (the specification's default).
pub const DEFAULT_COUNT: usize = 20;

/// The query string of `GET /trends/v0/{content,hashtags,links}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Params {
    /// The window, in hours (1 to 168, default 24).
    pub within_last_hours: Option<String>,
    /// Most items (1 to 100, default 20).
    pub max_count: Option<String>,
    /// A BCP 47 language range.
    pub language: Option<String>,
}

fn number(name: &str, text: Option<&str>, default: usize, max: usize) -> Result<usize> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(default);
    };
    match text.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(Error::Unprocessable(format!(
            "{name} must be a number from 1 to {max}, not {text:?}"
        ))),
    }
}

/// The trend request `params` make: [`Error::Unprocessable`] for a window, count or language out of
/// range.
pub fn request(params: &Params) -> Result<TrendRequest> {
    let hours = number(
        "withinLastHours",
        params.within_last_hours.as_deref(),
        DEFAULT_WINDOW_HOURS as usize,
        MAX_WINDOW_HOURS as usize,
    )?;
    let count = number(
        "maxCount",
        params.max_count.as_deref(),
        DEFAULT_COUNT,
        MAX_COUNT,
    )?;
    TrendRequest::new(hours as u32, count, params.language.as_deref())
        .map_err(|e| Error::Unprocessable(e.to_string()))
}

/// The answer document: `{"content": [{uri, rank}]}`, `{"hashtags": [{name, rank, examples}]}` or
/// `{"links": [{url, rank, examples}]}`, by rank, highest first.
pub fn answer(kind: Kind, trends: &[Trend]) -> Value {
    match kind {
        Kind::Posts => json!({
            "content": trends.iter().map(|t| json!({ "uri": t.name, "rank": t.rank })).collect::<Vec<_>>()
        }),
        Kind::Tags => json!({
            "hashtags": trends
                .iter()
                .map(|t| json!({ "name": t.name, "rank": t.rank, "examples": t.examples }))
                .collect::<Vec<_>>()
        }),
        Kind::Links => json!({
            "links": trends
                .iter()
                .map(|t| json!({ "url": t.name, "rank": t.rank, "examples": t.examples }))
                .collect::<Vec<_>>()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(hours: Option<&str>, count: Option<&str>, language: Option<&str>) -> Params {
        Params {
            within_last_hours: hours.map(str::to_string),
            max_count: count.map(str::to_string),
            language: language.map(str::to_string),
        }
    }

    #[test]
    fn parameters_default_and_out_of_range_is_422() {
        let r = request(&Params::default()).unwrap();
        assert_eq!((r.within_hours, r.max_count, r.language), (24, 20, None));
        let r = request(&params(Some("4"), Some("20"), Some("de-AT"))).unwrap();
        assert_eq!((r.within_hours, r.language.as_deref()), (4, Some("de")));
        for bad in [
            params(Some("0"), None, None),
            params(Some("169"), None, None),
            params(Some("soon"), None, None),
            params(None, Some("0"), None),
            params(None, Some("1000"), None),
            params(None, None, Some("!!")),
        ] {
            let e = request(&bad).unwrap_err();
            assert_eq!(e.status().as_u16(), 422, "{bad:?}: {e}");
        }
    }

    #[test]
    fn answers_have_the_specification_shapes() {
        let t = Trend {
            name: "coop".into(),
            rank: 100,
            score: 3.0,
            accounts: 3,
            instances: 2,
            uses: 4,
            examples: vec!["https://a.example/1".into()],
        };
        assert_eq!(
            answer(Kind::Tags, std::slice::from_ref(&t)),
            json!({"hashtags": [{"name": "coop", "rank": 100, "examples": ["https://a.example/1"]}]})
        );
        assert_eq!(
            answer(Kind::Links, std::slice::from_ref(&t)),
            json!({"links": [{"url": "coop", "rank": 100, "examples": ["https://a.example/1"]}]})
        );
        assert_eq!(
            answer(Kind::Posts, &[t]),
            json!({"content": [{"uri": "coop", "rank": 100}]})
        );
    }
}
