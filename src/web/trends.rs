//! Trends for every surface that shows them (the FASP `trends` capability, Mastodon's Explore API,
//! the web pages): the index computes them ([`plaza_index::trends`] documents the method); content
//! trends also count the shares the store keeps (the relay's Announces and FASP `trending` events).

use plaza_index::{ShareSignal, Trend, TrendRequest};

use crate::Result;
use crate::state::AppState;

/// Most shares read for one content-trends request (the newest): bounds the work whatever arrived.
const MAX_SHARES: usize = 50_000;

/// What is trending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Hashtags.
    Tags,
    /// Links.
    Links,
    /// Posts.
    Posts,
}

/// The trends of `kind` for `request`.
pub async fn trending(state: &AppState, kind: Kind, request: TrendRequest) -> Result<Vec<Trend>> {
    let shares = if kind == Kind::Posts {
        let since = request.now - time::Duration::hours(i64::from(request.within_hours));
        let since_ms = (since.unix_timestamp_nanos() / 1_000_000) as i64;
        state
            .store
            .trend_shares_since(since_ms, MAX_SHARES)
            .await?
            .into_iter()
            .map(|row| ShareSignal {
                uri: row.uri,
                account: row.account,
                instance: row.instance,
            })
            .collect()
    } else {
        Vec::new()
    };
    state
        .search_index(move |index| match kind {
            Kind::Tags => index.trending_tags(&request),
            Kind::Links => index.trending_links(&request),
            Kind::Posts => index.trending_posts(&request, &shares),
        })
        .await
}
