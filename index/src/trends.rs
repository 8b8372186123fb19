//! Trends: the hashtags, links and posts that more people than usual are talking about now, from what
//! the index holds. Computed at request time from fast fields (tags, links, hashes of reply targets,
//! author, instance, published) of the posts in the window and the week before it: nothing is kept
//! beside the index, so a post that leaves it (deleted, consent withdrawn, instance purged) leaves
//! trends at once, and only indexed — consenting, public — posts ever count.
//!
//! The method (also in the README):
//! - **Hashtags and links** count the *distinct accounts* using them in the window (`within_hours`),
//!   against their own baseline: the mean number of distinct accounts per day using them in the seven
//!   days before the window, scaled to the window's length. The score is the excess over the baseline
//!   divided by its square root (`(now - expected) / sqrt(expected + 1)`), so a tag everyone always uses
//!   does not trend and a new one needs several people.
//! - **Posts** count the distinct accounts that shared them (Announces the relay saw, `trending` events
//!   of FASP servers — given by the caller as [`ShareSignal`]s) or replied to them in the window,
//!   lowered as the post ages.
//! - **Nobody trends alone**: an item needs [`MIN_ACCOUNTS`] distinct accounts on at least
//!   [`MIN_INSTANCES`] distinct instances in the window, and one instance counts for at most as many
//!   accounts as all the other instances together ([`spread`]), so one account — or one instance full
//!   of accounts, with a friend elsewhere — cannot make a trend.
//! - `rank` is the score relative to the top item, 1 to 100.

use std::collections::hash_map::Entry;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::hash::Hasher;

use serde::Serialize;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::query::{BooleanQuery, Occur, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocId, Score, Searcher, SegmentOrdinal, SegmentReader, Term};
use time::{Duration, OffsetDateTime};

use crate::budget::{Budgeted, Deadline};
use crate::compile::{self, Target};
use crate::error::{Error, Result};
use crate::ids::uri_hash;
use crate::index::Index;
use crate::ingest::Fnv;
use crate::query::TimeRange;
use crate::results::PostView;
use crate::search::stored_json;
use crate::str_columns::{first_ord, names};

/// The longest window a trend request may ask for (seven days).
pub const MAX_WINDOW_HOURS: u32 = 168;
/// The window when none is asked for.
pub const DEFAULT_WINDOW_HOURS: u32 = 24;
/// Most items one request returns.
pub const MAX_COUNT: usize = 100;
/// Distinct accounts an item needs in the window.
pub const MIN_ACCOUNTS: usize = 3;
/// Distinct instances those accounts must be on.
pub const MIN_INSTANCES: usize = 2;
/// Days of baseline before the window.
const BASELINE_DAYS: i64 = 7;
const BASELINE_DAYS_U8: u8 = BASELINE_DAYS as u8;
/// Least score (standard deviations above the baseline, roughly) of a hashtag or link that trends.
const MIN_SURGE: f64 = 1.5;
/// Example posts per hashtag or link.
const EXAMPLES: usize = 3;

/// What to compute trends over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrendRequest {
    /// The window: the last this many hours (1 to [`MAX_WINDOW_HOURS`]).
    pub within_hours: u32,
    /// Most items (1 to [`MAX_COUNT`]).
    pub max_count: usize,
    /// Only posts in this language: an RFC 4647 basic range (`en`, `en-GB`, `*`), matched on its
    /// primary subtag (the index keeps a post's primary language only).
    pub language: Option<String>,
    /// The end of the window (now, except in tests).
    pub now: OffsetDateTime,
}

impl TrendRequest {
    /// A request ending now, checked: [`Error::Query`] for a window or count out of range or a
    /// language range that is not one.
    pub fn new(within_hours: u32, max_count: usize, language: Option<&str>) -> Result<Self> {
        if !(1..=MAX_WINDOW_HOURS).contains(&within_hours) {
            return Err(Error::Query(format!(
                "the window must be 1 to {MAX_WINDOW_HOURS} hours, not {within_hours}"
            )));
        }
        if !(1..=MAX_COUNT).contains(&max_count) {
            return Err(Error::Query(format!(
                "the count must be 1 to {MAX_COUNT}, not {max_count}"
            )));
        }
        let language = match language.map(str::trim).filter(|l| !l.is_empty()) {
            None | Some("*") => None,
            Some(range) => Some(primary_language(range)?),
        };
        Ok(TrendRequest {
            within_hours,
            max_count,
            language,
            now: OffsetDateTime::now_utc(),
        })
    }

    fn window_start(&self) -> OffsetDateTime {
        self.now - Duration::hours(i64::from(self.within_hours))
    }
}

/// The primary subtag of an RFC 4647 basic language range, lower case.
fn primary_language(range: &str) -> Result<String> {
    let primary = range.split('-').next().unwrap_or_default();
    if !(2..=8).contains(&primary.len()) || !primary.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(Error::Query(format!("{range:?} is not a language range")));
    }
    Ok(primary.to_ascii_lowercase())
}

/// One trending item: a hashtag name, a link URL or a post URI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    /// The hashtag (lower case, no `#`), the link or the post's id.
    pub name: String,
    /// 1 to 100, 100 for the top item.
    pub rank: u8,
    /// The score the rank comes from.
    pub score: f64,
    /// Distinct accounts in the window.
    pub accounts: usize,
    /// Distinct instances of those accounts.
    pub instances: usize,
    /// Posts (hashtags, links) or shares and replies (posts) in the window.
    pub uses: u64,
    /// Recent indexed posts using the hashtag or link, newest first (empty for posts).
    pub examples: Vec<String>,
}

/// One share of a post seen outside the index: an `Announce` the relay received, or a FASP server's
/// `trending` event (its `account` then names the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareSignal {
    /// The shared post's id.
    pub uri: String,
    /// Who shared it.
    pub account: String,
    /// The instance (host) they are on.
    pub instance: String,
}

fn hash(s: &str) -> u64 {
    let mut h = Fnv::default();
    h.write(s.as_bytes());
    h.finish()
}

/// How much one term was used: in the window, and per day of the baseline before it.
#[derive(Debug, Default, Clone)]
struct Usage {
    /// (instance, account) of every use in the window.
    pairs: HashSet<(u64, u64)>,
    uses: u64,
    /// (day, account) of every use in the baseline (day 0 = the day before the window): its size is
    /// the sum over the days of the distinct accounts each day.
    baseline: HashSet<(u8, u64)>,
    /// The newest posts of the window using it: (published, author, address).
    newest: Vec<(i64, u64, DocAddress)>,
}

impl Usage {
    fn merge(&mut self, other: Usage) {
        self.pairs.extend(other.pairs);
        self.uses += other.uses;
        self.baseline.extend(other.baseline);
        for n in other.newest {
            keep_newest(&mut self.newest, n);
        }
    }

    fn expected(&self, within_hours: u32) -> f64 {
        let daily = self.baseline.len();
        daily as f64 / BASELINE_DAYS as f64 * f64::from(within_hours) / 24.0
    }
}

/// Keeps the [`EXAMPLES`] newest posts, one per author.
fn keep_newest(newest: &mut Vec<(i64, u64, DocAddress)>, post: (i64, u64, DocAddress)) {
    if let Some(same) = newest.iter_mut().find(|n| n.1 == post.1) {
        if post.0 > same.0 {
            *same = post;
        }
    } else {
        newest.push(post);
    }
    newest.sort_by_key(|n| std::cmp::Reverse(n.0));
    newest.truncate(EXAMPLES);
}

/// Who took part in an item: distinct accounts, distinct instances, and the accounts that count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread {
    /// Distinct accounts.
    pub accounts: usize,
    /// Distinct instances.
    pub instances: usize,
    /// The accounts that count: one instance counts for at most as many accounts as all the other
    /// instances together, so an instance full of accounts cannot make a trend alone.
    pub counted: usize,
}

/// The [`Spread`] of (instance, account) pairs.
pub fn spread(pairs: &HashSet<(u64, u64)>) -> Spread {
    let mut per_instance: HashMap<u64, usize> = HashMap::new();
    for (instance, _) in pairs {
        *per_instance.entry(*instance).or_default() += 1;
    }
    let accounts = pairs.len();
    let largest = per_instance.values().copied().max().unwrap_or(0);
    let others = accounts - largest;
    Spread {
        accounts,
        instances: per_instance.len(),
        counted: others + largest.min(others),
    }
}

/// How far above its baseline a hashtag or link is: `None` below the thresholds (too few accounts or
/// instances, or not enough above what it usually gets).
pub fn surge(accounts: usize, instances: usize, expected: f64) -> Option<f64> {
    if accounts < MIN_ACCOUNTS || instances < MIN_INSTANCES {
        return None;
    }
    let score = (accounts as f64 - expected) / (expected + 1.0).sqrt();
    (score >= MIN_SURGE).then_some(score)
}

/// A post's trend score: distinct accounts sharing or replying, lowered as it ages (halved after a day);
/// `None` when fewer than [`MIN_ACCOUNTS`] accounts on [`MIN_INSTANCES`] instances took part.
pub fn attention(accounts: usize, instances: usize, age_hours: f64) -> Option<f64> {
    if accounts < MIN_ACCOUNTS || instances < MIN_INSTANCES {
        return None;
    }
    Some((accounts as f64 + 0.5 * instances as f64) / (1.0 + age_hours.max(0.0) / 24.0))
}

/// Ranks scored items 100 (the top) down to 1, best first, at most `max` of them.
fn ranked(mut scored: Vec<Trend>, max: usize) -> Vec<Trend> {
    scored.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.accounts.cmp(&a.accounts))
            .then(a.name.cmp(&b.name))
    });
    scored.truncate(max);
    let top = scored
        .first()
        .map_or(1.0, |t| t.score.max(f64::MIN_POSITIVE));
    for t in &mut scored {
        t.rank = ((t.score / top) * 100.0).round().clamp(1.0, 100.0) as u8;
    }
    scored
}

/// Where a trend's items come from: a fast field holding, per post, the items it uses, and how a
/// segment's values become items that compare across segments.
trait ItemColumn: Send + Sync + 'static {
    /// An item, the same in every segment.
    type Item: Eq + std::hash::Hash + Send + 'static;
    /// A segment's column (`None`: no post of the segment has a value).
    type Segment: Send + Sync + 'static;
    /// The column in `reader`'s segment.
    fn open(&self, reader: &SegmentReader) -> tantivy::Result<Option<Self::Segment>>;
    /// The values of `doc`.
    fn values(segment: &Self::Segment, doc: DocId) -> impl Iterator<Item = u64> + '_;
    /// The items of `values`.
    fn items(segment: &Self::Segment, values: Vec<u64>) -> HashMap<u64, Self::Item>;
}

/// The terms of a string fast field (hashtags, links), named once per segment.
struct Names(&'static str);

impl ItemColumn for Names {
    type Item = String;
    type Segment = StrColumn;

    fn open(&self, reader: &SegmentReader) -> tantivy::Result<Option<StrColumn>> {
        reader.fast_fields().str(self.0)
    }

    fn values(segment: &StrColumn, doc: DocId) -> impl Iterator<Item = u64> + '_ {
        segment.term_ords(doc)
    }

    fn items(segment: &StrColumn, values: Vec<u64>) -> HashMap<u64, String> {
        names(&Some(segment.clone()), values).into_iter().collect()
    }
}

/// A `u64` fast field of hashes of ids ([`crate::ids::uri_hash`]): the hash is the item, so nothing
/// is named (the posts replied to: naming them decompressed most of a segment's dictionary).
struct Hashes(&'static str);

impl ItemColumn for Hashes {
    type Item = u64;
    type Segment = Column<u64>;

    fn open(&self, reader: &SegmentReader) -> tantivy::Result<Option<Column<u64>>> {
        reader.fast_fields().column_opt(self.0)
    }

    fn values(segment: &Column<u64>, doc: DocId) -> impl Iterator<Item = u64> + '_ {
        segment.values_for_doc(doc)
    }

    fn items(_: &Column<u64>, values: Vec<u64>) -> HashMap<u64, u64> {
        values.into_iter().map(|v| (v, v)).collect()
    }
}

/// Collects, per item of an [`ItemColumn`], the [`Usage`] of the matching posts.
struct UsageCollector<C> {
    column: C,
    window_start: i64,
}

struct UsageSegment<C: ItemColumn> {
    segment: SegmentOrdinal,
    window_start: i64,
    items: Option<C::Segment>,
    authors: Option<StrColumn>,
    instances: Option<StrColumn>,
    published: tantivy::columnar::Column<tantivy::DateTime>,
    /// Per value: its usage, with author and instance ordinals (mapped to names at harvest).
    usage: HashMap<u64, Usage>,
}

impl<C: ItemColumn> Collector for UsageCollector<C> {
    type Fruit = HashMap<C::Item, Usage>;
    type Child = UsageSegment<C>;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<UsageSegment<C>> {
        let fast = reader.fast_fields();
        Ok(UsageSegment {
            segment,
            window_start: self.window_start,
            items: self.column.open(reader)?,
            authors: fast.str("author")?,
            instances: fast.str("instance")?,
            published: fast.date("published")?,
            usage: HashMap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Self::Fruit>) -> tantivy::Result<Self::Fruit> {
        let mut all: Self::Fruit =
            HashMap::with_capacity(fruits.iter().map(HashMap::len).max().unwrap_or(0));
        for fruit in fruits {
            for (item, usage) in fruit {
                match all.entry(item) {
                    Entry::Occupied(mine) => mine.into_mut().merge(usage),
                    Entry::Vacant(slot) => {
                        slot.insert(usage);
                    }
                }
            }
        }
        Ok(all)
    }
}

/// [`names`], hashed (authors and instances are only compared, across segments).
fn hashed_names(column: &Option<StrColumn>, ords: HashSet<u64>) -> HashMap<u64, u64> {
    names(column, ords)
        .into_iter()
        .map(|(ord, name)| (ord, hash(&name)))
        .collect()
}

impl<C: ItemColumn> SegmentCollector for UsageSegment<C> {
    type Fruit = HashMap<C::Item, Usage>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(items) = &self.items else {
            return;
        };
        let (Some(author), Some(instance)) = (
            first_ord(&self.authors, doc),
            first_ord(&self.instances, doc),
        ) else {
            return;
        };
        let published = self
            .published
            .first(doc)
            .map_or(0, |d| d.into_timestamp_secs());
        let address = DocAddress::new(self.segment, doc);
        for value in C::values(items, doc) {
            let usage = self.usage.entry(value).or_default();
            if published >= self.window_start {
                usage.pairs.insert((instance, author));
                usage.uses += 1;
                keep_newest(&mut usage.newest, (published, author, address));
            } else {
                let day = (self.window_start - published) / 86_400;
                if let Ok(day @ 0..BASELINE_DAYS_U8) = u8::try_from(day) {
                    usage.baseline.insert((day, author));
                }
            }
        }
    }

    fn harvest(self) -> Self::Fruit {
        let Some(column) = &self.items else {
            return HashMap::new();
        };
        // Ordinals are per segment: name them (authors and instances by hash) before merging.
        let mut author_ords = HashSet::new();
        let mut instance_ords = HashSet::new();
        for usage in self.usage.values() {
            author_ords.extend(usage.pairs.iter().map(|p| p.1));
            author_ords.extend(usage.baseline.iter().map(|(_, a)| *a));
            instance_ords.extend(usage.pairs.iter().map(|p| p.0));
        }
        let authors = hashed_names(&self.authors, author_ords);
        let instances = hashed_names(&self.instances, instance_ords);
        let mut items = C::items(column, self.usage.keys().copied().collect());
        let mut out = HashMap::with_capacity(self.usage.len());
        for (value, usage) in self.usage {
            let Some(item) = items.remove(&value) else {
                continue;
            };
            let Usage {
                pairs,
                uses,
                baseline,
                newest,
            } = usage;
            out.insert(
                item,
                Usage {
                    pairs: pairs
                        .into_iter()
                        .filter_map(|(i, a)| Some((*instances.get(&i)?, *authors.get(&a)?)))
                        .collect(),
                    uses,
                    baseline: baseline
                        .into_iter()
                        .filter_map(|(day, a)| Some((day, *authors.get(&a)?)))
                        .collect(),
                    newest: newest
                        .into_iter()
                        .map(|(at, a, address)| {
                            (at, authors.get(&a).copied().unwrap_or(a), address)
                        })
                        .collect(),
                },
            );
        }
        out
    }
}

/// The attention a post got in the window: replies in the index and shares seen outside it.
#[derive(Default)]
struct Attention {
    /// (instance, account) of every reply and share.
    pairs: HashSet<(u64, u64)>,
    uses: u64,
    /// Its id, when a share named it.
    uri: Option<String>,
    /// One of its replies (which names it), when it has some.
    reply: Option<DocAddress>,
}

impl Index {
    /// Trending hashtags.
    pub fn trending_tags(&self, request: &TrendRequest) -> Result<Vec<Trend>> {
        self.trending_terms("tags", request)
    }

    /// Trending links.
    pub fn trending_links(&self, request: &TrendRequest) -> Result<Vec<Trend>> {
        self.trending_terms("links", request)
    }

    /// Trending posts: `shares` seen outside the index, and the replies the index holds, in the window;
    /// only posts the index holds (and in the asked language) are returned.
    pub fn trending_posts(
        &self,
        request: &TrendRequest,
        shares: &[ShareSignal],
    ) -> Result<Vec<Trend>> {
        // Replies count whatever their language: the filter applies to the post replied to.
        let any_language = TrendRequest {
            language: None,
            ..request.clone()
        };
        let searcher = self.shared.reader.searcher();
        let window = self.usage(
            &searcher,
            Hashes("reply_to"),
            &any_language,
            request.window_start(),
        )?;
        let mut attention_of: HashMap<u64, Attention> = window
            .into_iter()
            .map(|(post, u)| {
                let reply = u.newest.first().map(|n| n.2);
                let attention = Attention {
                    pairs: u.pairs,
                    uses: u.uses,
                    uri: None,
                    reply,
                };
                (post, attention)
            })
            .collect();
        for share in shares {
            let entry = attention_of.entry(uri_hash(&share.uri)).or_default();
            entry
                .pairs
                .insert((hash(&share.instance), hash(&share.account)));
            entry.uses += 1;
            entry.uri.get_or_insert_with(|| share.uri.clone());
        }
        let mut candidates: Vec<(u64, Attention, Spread)> = attention_of
            .into_iter()
            .map(|(post, a)| {
                let who = spread(&a.pairs);
                (post, a, who)
            })
            .filter(|(_, _, s)| s.counted >= MIN_ACCOUNTS && s.instances >= MIN_INSTANCES)
            .collect();
        // The most talked-about first: the index is asked for a bounded number of them.
        candidates.sort_by(|a, b| b.2.counted.cmp(&a.2.counted).then(a.0.cmp(&b.0)));
        candidates.truncate(request.max_count.saturating_mul(4).max(40));
        let mut scored = Vec::new();
        for (_, seen, who) in candidates {
            let uri = match (seen.uri, seen.reply) {
                (Some(uri), _) => uri,
                (None, Some(reply)) => {
                    let doc: tantivy::TantivyDocument = searcher.doc(reply)?;
                    let view: PostView = stored_json(&doc, self.shared.fields.data)?;
                    let Some(uri) = view.in_reply_to else {
                        continue;
                    };
                    uri
                }
                (None, None) => continue,
            };
            let Some(hit) = self.post(&uri)? else {
                continue;
            };
            if let Some(lang) = &request.language
                && hit.post.language.as_deref() != Some(lang.as_str())
            {
                continue;
            }
            let published = OffsetDateTime::parse(
                &hit.post.created_at,
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap_or(request.now);
            let age = (request.now - published).as_seconds_f64() / 3600.0;
            if let Some(score) = attention(who.counted, who.instances, age) {
                scored.push(Trend {
                    name: uri,
                    rank: 0,
                    score,
                    accounts: who.accounts,
                    instances: who.instances,
                    uses: seen.uses,
                    examples: Vec::new(),
                });
            }
        }
        Ok(ranked(scored, request.max_count))
    }

    fn trending_terms(&self, name: &'static str, request: &TrendRequest) -> Result<Vec<Trend>> {
        let baseline_start = request.window_start() - Duration::days(BASELINE_DAYS);
        // One searcher throughout: the examples' addresses are valid in it only.
        let searcher = self.shared.reader.searcher();
        let usage = self.usage(&searcher, Names(name), request, baseline_start)?;
        let mut scored: Vec<(Trend, Vec<DocAddress>)> = usage
            .into_iter()
            .filter_map(|(term, u)| {
                let who = spread(&u.pairs);
                let score = surge(who.counted, who.instances, u.expected(request.within_hours))?;
                Some((
                    Trend {
                        name: term,
                        rank: 0,
                        score,
                        accounts: who.accounts,
                        instances: who.instances,
                        uses: u.uses,
                        examples: Vec::new(),
                    },
                    u.newest.into_iter().map(|(_, _, a)| a).collect(),
                ))
            })
            .collect();
        scored.sort_by(|a, b| b.0.score.total_cmp(&a.0.score));
        scored.truncate(request.max_count);
        let mut trends = Vec::with_capacity(scored.len());
        let mut examples: HashMap<String, Vec<DocAddress>> = HashMap::new();
        for (trend, newest) in scored {
            examples.insert(trend.name.clone(), newest);
            trends.push(trend);
        }
        let mut trends = ranked(trends, request.max_count);
        for trend in &mut trends {
            for address in examples.remove(&trend.name).unwrap_or_default() {
                let doc: tantivy::TantivyDocument = searcher.doc(address)?;
                if let Some(id) = doc
                    .get_first(self.shared.fields.id)
                    .and_then(|v| tantivy::schema::Value::as_str(&v))
                {
                    trend.examples.push(id.to_owned());
                }
            }
        }
        Ok(trends)
    }

    /// The usage of each item of `column` by the posts published from `from` to the request's end (in
    /// its language), split at the window's start.
    fn usage<C: ItemColumn>(
        &self,
        searcher: &Searcher,
        column: C,
        request: &TrendRequest,
        from: OffsetDateTime,
    ) -> Result<HashMap<C::Item, Usage>> {
        let shared = &*self.shared;
        let fields = &shared.fields;
        let mut clauses = compile::scope(fields, Target::Posts);
        clauses.push((
            Occur::Must,
            compile::time_range(
                fields,
                &TimeRange {
                    from: Some(from),
                    to: Some(request.now),
                },
            ),
        ));
        if let Some(lang) = &request.language {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(fields.lang, lang),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        let deadline = Deadline::after(shared.config.limits.time_budget);
        let collector = UsageCollector {
            column,
            window_start: request.window_start().unix_timestamp(),
        };
        Ok(searcher.search(
            &BooleanQuery::new(clauses),
            &Budgeted::new(collector, &deadline),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked() {
        assert!(TrendRequest::new(0, 20, None).is_err());
        assert!(TrendRequest::new(169, 20, None).is_err());
        assert!(TrendRequest::new(24, 0, None).is_err());
        assert!(TrendRequest::new(24, 101, None).is_err());
        assert!(TrendRequest::new(4, 20, Some("not a range!")).is_err());
        let r = TrendRequest::new(4, 20, Some("en-GB")).unwrap();
        assert_eq!(r.language.as_deref(), Some("en"));
        assert_eq!(TrendRequest::new(4, 20, Some("*")).unwrap().language, None);
        assert_eq!(
            TrendRequest::new(168, 100, Some("")).unwrap().language,
            None
        );
    }

    #[test]
    fn nobody_trends_alone_and_the_usual_does_not_trend() {
        assert_eq!(surge(1, 1, 0.0), None, "one account");
        assert_eq!(surge(10, 1, 0.0), None, "one instance");
        assert_eq!(surge(2, 2, 0.0), None, "two accounts");
        assert!(
            surge(3, 2, 0.0).is_some(),
            "three accounts on two instances, new"
        );
        // Twenty accounts a day, twenty today: nothing new.
        assert_eq!(surge(20, 5, 20.0), None);
        // Twenty a day, eighty today: a surge.
        assert!(surge(80, 5, 20.0).unwrap() > 10.0);
        assert!(surge(80, 5, 0.0).unwrap() > surge(80, 5, 20.0).unwrap());
    }

    #[test]
    fn one_instance_counts_for_no_more_than_all_the_others() {
        let pairs = |v: &[(u64, u64)]| v.iter().copied().collect::<HashSet<_>>();
        // Ten accounts on one instance and one elsewhere: two count.
        let mut crowd: Vec<(u64, u64)> = (0..10).map(|a| (1, a)).collect();
        crowd.push((2, 100));
        let s = spread(&pairs(&crowd));
        assert_eq!((s.accounts, s.instances, s.counted), (11, 2, 2));
        assert_eq!(surge(s.counted, s.instances, 0.0), None);
        // Three instances, one account each: all count.
        let s = spread(&pairs(&[(1, 1), (2, 2), (3, 3)]));
        assert_eq!((s.accounts, s.instances, s.counted), (3, 3, 3));
        // Two and two: all four count.
        assert_eq!(spread(&pairs(&[(1, 1), (1, 2), (2, 3), (2, 4)])).counted, 4);
        assert_eq!(spread(&HashSet::new()).counted, 0);
    }

    #[test]
    fn attention_needs_several_people_and_fades_with_age() {
        assert_eq!(attention(2, 2, 0.0), None);
        assert_eq!(attention(5, 1, 0.0), None);
        let fresh = attention(5, 2, 1.0).unwrap();
        let old = attention(5, 2, 48.0).unwrap();
        assert!(fresh > old);
    }

    #[test]
    fn ranks_run_from_100_down_and_never_below_1() {
        let t = |name: &str, score: f64| Trend {
            name: name.into(),
            rank: 0,
            score,
            accounts: 3,
            instances: 2,
            uses: 3,
            examples: vec![],
        };
        let r = ranked(vec![t("b", 2.0), t("a", 10.0), t("c", 0.01)], 2);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].name.as_str(), r[0].rank), ("a", 100));
        assert_eq!((r[1].name.as_str(), r[1].rank), ("b", 20));
        assert_eq!(ranked(vec![t("x", 1.0), t("y", 0.001)], 5)[1].rank, 1);
    }

    #[test]
    fn examples_are_the_newest_one_per_author() {
        let at = |n: u32| DocAddress::new(0, n);
        let mut newest = Vec::new();
        for (t, author, doc) in [(1, 7, 1), (5, 7, 2), (3, 8, 3), (4, 9, 4), (2, 10, 5)] {
            keep_newest(&mut newest, (t, author, at(doc)));
        }
        let docs: Vec<u32> = newest.iter().map(|n| n.2.doc_id).collect();
        assert_eq!(docs, [2, 4, 3]);
    }
}
