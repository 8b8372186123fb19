//! The directory by activity (Mastodon's `order=active`): listed profiles by their latest indexed
//! post, most recent first, then the listed profiles without indexed posts, newest profile first (as
//! Mastodon puts accounts that never posted last). The latest post per author comes from one terms
//! aggregation over the posts' `author` field, ordered by the highest post key (keys are
//! time-ordered), under the search time budget.

use std::collections::HashSet;

use serde_json::{Value, json};
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::{AggContextParams, AggregationCollector, AggregationLimitsGuard};
use tantivy::query::BooleanQuery;

use crate::budget::{Budgeted, Deadline};
use crate::compile::{self, Target};
use crate::error::{Error, Result};
use crate::index::Index;
use crate::results::{AccountView, Page, ProfileHit};
use crate::schema;
use crate::search::{DirectoryRequest, stored_json};

/// Authors asked of the aggregation per profile wanted: authors who are not listed take places too.
const AUTHORS_PER_PROFILE: usize = 4;

/// Author ids from a terms aggregation's answer, in its order.
fn authors_in(results: &Value) -> Vec<String> {
    results
        .pointer("/authors/buckets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| b.get("key")?.as_str().map(str::to_owned))
        .collect()
}

impl Index {
    /// Listed profiles by their latest indexed post, then those without posts (see the module
    /// documentation); `offset` and `limit` within the result window.
    pub fn active_profiles(&self, limit: usize, offset: usize) -> Result<Page<ProfileHit>> {
        let shared = &*self.shared;
        let limit = shared.window(limit, offset)?;
        let wanted = offset + limit;
        let deadline = Deadline::after(shared.config.limits.time_budget);
        let size = wanted
            .saturating_mul(AUTHORS_PER_PROFILE)
            .min(shared.config.limits.max_window);
        let request: Aggregations = serde_json::from_value(json!({
            "authors": {
                "terms": { "field": "author", "size": size, "order": { "latest": "desc" } },
                "aggs": { "latest": { "max": { "field": "key" } } }
            }
        }))
        .map_err(|e| Error::Query(format!("active profiles: {e}")))?;
        let collector = AggregationCollector::from_aggs(
            request,
            AggContextParams::new(
                AggregationLimitsGuard::default(),
                shared.index.tokenizers().clone(),
            ),
        );
        let searcher = shared.reader.searcher();
        let posts = BooleanQuery::new(compile::scope(&shared.fields, Target::Posts));
        let results = searcher.search(&posts, &Budgeted::new(collector, &deadline))?;
        let results = serde_json::to_value(&results).map_err(|e| Error::Unusable(e.to_string()))?;
        let authors = authors_in(&results);
        let every_author = authors.len() < size;
        let mut listed: Vec<AccountView> = Vec::new();
        for author in &authors {
            if listed.len() >= wanted {
                break;
            }
            let Some(doc) = shared.by_id(&searcher, schema::KIND_ACTOR, author)? else {
                continue;
            };
            let account: AccountView = stored_json(&doc, shared.fields.data)?;
            if account.discoverable {
                listed.push(account);
            }
        }
        if listed.len() < wanted && every_author {
            // Then the profiles that have no indexed post, newest first.
            let posted: HashSet<String> = authors.into_iter().collect();
            let quiet = self.directory(&DirectoryRequest {
                limit: (wanted + posted.len()).min(shared.config.limits.max_window),
                ..DirectoryRequest::default()
            })?;
            listed.extend(
                quiet
                    .hits
                    .into_iter()
                    .map(|hit| hit.account)
                    .filter(|a| !posted.contains(&a.uri))
                    .take(wanted - listed.len()),
            );
        }
        let hits: Vec<ProfileHit> = listed
            .into_iter()
            .skip(offset)
            .map(|account| ProfileHit {
                account,
                score: 0.0,
                snippet_html: String::new(),
            })
            .collect();
        Ok(Page {
            total: hits.len() as u64,
            hits,
            facets: None,
            next_cursor: None,
            partial: deadline.exceeded(),
        })
    }
}
