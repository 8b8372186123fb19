//! Hashtags: names by prefix with their use counts (read from the term dictionary, so a tag search
//! costs no document scan) and the seven-day history of Mastodon's `Tag` entity. Both run under the
//! search time budget: what the budget left out marks the tags `partial`.

use std::collections::HashMap;

use serde_json::{Value, json};
use tantivy::Term;
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::{AggContextParams, AggregationCollector, AggregationLimitsGuard};
use tantivy::query::{BooleanQuery, Occur, TermQuery};
use tantivy::schema::IndexRecordOption;
use time::OffsetDateTime;

use crate::budget::{Budgeted, CHECK_EVERY, Deadline};
use crate::compile::{self, Target};
use crate::document::normalize_tag;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::query::TimeRange;
use crate::results::{TagDay, TagView, Tags};

/// Days of history per tag.
const HISTORY_DAYS: i64 = 7;

/// Most tags one search returns.
pub const MAX_TAGS: usize = 40;

impl Index {
    /// Hashtags starting with `prefix` (a leading `#` is ignored), most used first, each with its
    /// history. Counts include posts deleted since the last segment merge.
    pub fn search_tags(&self, prefix: &str, limit: usize) -> Result<Tags> {
        let Some(prefix) = normalize_tag(prefix) else {
            return Ok(Tags::default());
        };
        let limit = limit.clamp(1, MAX_TAGS);
        let shared = &*self.shared;
        let deadline = Deadline::after(shared.config.limits.time_budget);
        let searcher = shared.reader.searcher();
        let mut uses: HashMap<String, u64> = HashMap::new();
        for segment in searcher.segment_readers() {
            if deadline.passed() {
                break;
            }
            let inverted = segment.inverted_index(shared.fields.tags)?;
            let mut stream = inverted
                .terms()
                .range()
                .ge(prefix.as_bytes())
                .into_stream()?;
            let mut seen = 0usize;
            while stream.advance() {
                seen += 1;
                if seen.is_multiple_of(CHECK_EVERY) && deadline.passed() {
                    break;
                }
                let Ok(name) = std::str::from_utf8(stream.key()) else {
                    continue;
                };
                if !name.starts_with(&prefix) {
                    break;
                }
                *uses.entry(name.to_owned()).or_default() += u64::from(stream.value().doc_freq);
            }
        }
        let mut ranked: Vec<(String, u64)> = uses.into_iter().collect();
        // Exact match first, then by use, then by name.
        ranked.sort_by(|a, b| {
            (b.0 == prefix)
                .cmp(&(a.0 == prefix))
                .then(b.1.cmp(&a.1))
                .then(a.0.cmp(&b.0))
        });
        ranked.truncate(limit);
        let mut tags = ranked
            .into_iter()
            .map(|(name, uses)| {
                let history = self.tag_history(&name, &deadline)?;
                Ok(TagView {
                    name,
                    uses,
                    history,
                    partial: false,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let partial = deadline.exceeded();
        tags.iter_mut().for_each(|t| t.partial = partial);
        Ok(Tags { tags, partial })
    }

    /// One hashtag with its use count and history (a tag nobody used has zeros).
    pub fn tag(&self, name: &str) -> Result<TagView> {
        let name = normalize_tag(name)
            .ok_or_else(|| Error::Query(format!("{name:?} is not a hashtag")))?;
        let deadline = Deadline::after(self.shared.config.limits.time_budget);
        let searcher = self.shared.reader.searcher();
        let uses = searcher.doc_freq(&Term::from_field_text(self.shared.fields.tags, &name))?;
        let history = self.tag_history(&name, &deadline)?;
        Ok(TagView {
            name,
            uses,
            history,
            partial: deadline.exceeded(),
        })
    }

    /// Posts and distinct authors per day over the last [`HISTORY_DAYS`] days, today first, as far as
    /// `deadline` lets it count.
    fn tag_history(&self, name: &str, deadline: &Deadline) -> Result<Vec<TagDay>> {
        let shared = &*self.shared;
        let fields = &shared.fields;
        let today = OffsetDateTime::now_utc().date().midnight().assume_utc();
        let first = today - time::Duration::days(HISTORY_DAYS - 1);
        let mut clauses = compile::scope(fields, Target::Posts);
        clauses.push((
            Occur::Must,
            Box::new(TermQuery::new(
                Term::from_field_text(fields.tags, name),
                IndexRecordOption::Basic,
            )),
        ));
        clauses.push((
            Occur::Must,
            compile::time_range(
                fields,
                &TimeRange {
                    from: Some(first),
                    to: None,
                },
            ),
        ));
        let request: Aggregations = serde_json::from_value(json!({
            "days": {
                "date_histogram": { "field": "published", "fixed_interval": "1d" },
                "aggs": { "accounts": { "cardinality": { "field": "author" } } }
            }
        }))
        .map_err(|e| Error::Query(format!("tag history: {e}")))?;
        let collector = AggregationCollector::from_aggs(
            request,
            AggContextParams::new(
                AggregationLimitsGuard::default(),
                shared.index.tokenizers().clone(),
            ),
        );
        let searcher = shared.reader.searcher();
        let results = searcher.search(
            &BooleanQuery::new(clauses),
            &Budgeted::new(collector, deadline),
        )?;
        let results = serde_json::to_value(&results).map_err(|e| Error::Unusable(e.to_string()))?;
        let mut per_day: HashMap<i64, (u64, u64)> = HashMap::new();
        for bucket in results
            .pointer("/days/buckets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(ms) = bucket.get("key").and_then(Value::as_f64) else {
                continue;
            };
            let uses = bucket.get("doc_count").and_then(Value::as_u64).unwrap_or(0);
            let accounts = bucket
                .pointer("/accounts/value")
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
                .round() as u64;
            per_day.insert((ms / 1000.0) as i64, (uses, accounts));
        }
        Ok((0..HISTORY_DAYS)
            .map(|back| {
                let day = (today - time::Duration::days(back)).unix_timestamp();
                let (uses, accounts) = per_day.get(&day).copied().unwrap_or((0, 0));
                TagDay {
                    day,
                    uses,
                    accounts,
                }
            })
            .collect())
    }
}
