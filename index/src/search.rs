//! Searching: posts (relevance with a recency boost, or by date), the directory of profiles, timelines,
//! single lookups. Every search runs under the crate's limits (result window, time budget), returns
//! facet counts when asked, highlights the matched words in a snippet, and pages by offset, by key
//! bounds (`min_key`/`max_key`, Mastodon's `min_id`/`max_id`) or by an opaque cursor.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query as TantivyQuery, TermQuery};
use tantivy::schema::{IndexRecordOption, Value as _};
use tantivy::snippet::SnippetGenerator;
use tantivy::{DocAddress, Order, Score, Searcher, TantivyDocument, Term};
use time::OffsetDateTime;

use crate::analysis;
use crate::budget::{Budgeted, Deadline};
use crate::compile::{self, Target};
use crate::document::ActorType;
use crate::error::{Error, Result};
use crate::facets::FacetCollector;
use crate::html;
use crate::index::{Index, Shared};
use crate::query::{self, Clause, Query, Term as QueryTerm};
use crate::results::{AccountView, Facets, Page, PostHit, PostView, ProfileHit, ReplyTo};
use crate::schema;

/// Results per page when the request says 0.
pub const DEFAULT_LIMIT: usize = 20;

/// Longest snippet, in characters.
const SNIPPET_CHARS: usize = 240;

/// A post's relevance is multiplied by up to `1 + RECENCY_WEIGHT`, halving every
/// `RECENCY_HALF_LIFE_DAYS` of age.
const RECENCY_WEIGHT: f32 = 1.0;
const RECENCY_HALF_LIFE_DAYS: f32 = 14.0;

/// Result order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Best match first (BM25; for posts with a recency boost).
    #[default]
    Relevance,
    /// Newest first (by key).
    Newest,
    /// Oldest first (by key): with `min_key`, the page just after it (Mastodon's `min_id`).
    Oldest,
}

/// A search of posts.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// The query, in Plaza's query language ([`crate::query`]).
    pub q: String,
    /// Order.
    pub sort: Sort,
    /// Results per page (0: [`DEFAULT_LIMIT`]).
    pub limit: usize,
    /// Results to skip.
    pub offset: usize,
    /// A cursor from a previous page's `next_cursor` (same query and order).
    pub cursor: Option<String>,
    /// Only documents with a key above this one.
    pub min_key: Option<u64>,
    /// Only documents with a key below this one.
    pub max_key: Option<u64>,
    /// Only posts by this actor id.
    pub author: Option<String>,
    /// Only posts by the actor with this account id ([`crate::account_id`], Mastodon's `account_id`).
    pub account: Option<u64>,
    /// Count facets over all matches.
    pub facets: bool,
}

impl SearchRequest {
    /// A request for `q` with every other setting at its default.
    pub fn new(q: impl Into<String>) -> Self {
        SearchRequest {
            q: q.into(),
            ..SearchRequest::default()
        }
    }
}

/// A listing of the directory of profiles.
#[derive(Debug, Clone, Default)]
pub struct DirectoryRequest {
    /// Text (query language) to match in names, bios and fields; none lists everyone, newest first.
    pub text: Option<String>,
    /// Only this actor type.
    pub actor_type: Option<ActorType>,
    /// Only profiles with this hashtag (bio or featured).
    pub tag: Option<String>,
    /// Only this instance.
    pub instance: Option<String>,
    /// Only this bio language.
    pub language: Option<String>,
    /// Results per page (0: [`DEFAULT_LIMIT`]).
    pub limit: usize,
    /// Results to skip.
    pub offset: usize,
    /// A cursor from a previous page.
    pub cursor: Option<String>,
    /// Count facets.
    pub facets: bool,
}

/// A timeline: the newest indexed posts, overall or of a hashtag, an instance or an author.
#[derive(Debug, Clone, Default)]
pub struct TimelineRequest {
    /// Only posts with this hashtag.
    pub tag: Option<String>,
    /// Only posts from this instance.
    pub instance: Option<String>,
    /// Only posts by the actor with this account id ([`crate::account_id`]): a term of the `account`
    /// field, so an account's timeline costs no more than a hashtag's.
    pub account: Option<u64>,
    /// Only posts by this actor id.
    pub author: Option<String>,
    /// Only posts with media attachments.
    pub only_media: bool,
    /// No replies.
    pub exclude_replies: bool,
    /// Results per page (0: [`DEFAULT_LIMIT`]).
    pub limit: usize,
    /// Only posts with a key above (Mastodon `since_id`; with `oldest_first`, `min_id`).
    pub min_key: Option<u64>,
    /// Only posts with a key below (Mastodon `max_id`).
    pub max_key: Option<u64>,
    /// The page just after `min_key` rather than the newest (Mastodon `min_id`); still returned
    /// oldest first, the caller reverses if it wants.
    pub oldest_first: bool,
    /// A cursor from a previous page.
    pub cursor: Option<String>,
}

/// Where a page ended, encoded opaquely in `next_cursor`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cursor {
    Relevance { now: i64, score: f32, key: u64 },
    Newest { key: u64 },
    Oldest { key: u64 },
}

impl Cursor {
    fn encode(self) -> String {
        let plain = match self {
            Cursor::Relevance { now, score, key } => format!("r.{now}.{}.{key}", score.to_bits()),
            Cursor::Newest { key } => format!("n.{key}"),
            Cursor::Oldest { key } => format!("o.{key}"),
        };
        URL_SAFE_NO_PAD.encode(plain)
    }

    fn decode(text: &str) -> Result<Cursor> {
        let bad = || Error::Query("the cursor is not one this index gave out".into());
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let plain = String::from_utf8(bytes).map_err(|_| bad())?;
        let parts: Vec<&str> = plain.split('.').collect();
        let num = |s: &str| s.parse::<u64>().map_err(|_| bad());
        match parts.as_slice() {
            ["r", now, score, key] => Ok(Cursor::Relevance {
                now: now.parse().map_err(|_| bad())?,
                score: f32::from_bits(score.parse().map_err(|_| bad())?),
                key: num(key)?,
            }),
            ["n", key] => Ok(Cursor::Newest { key: num(key)? }),
            ["o", key] => Ok(Cursor::Oldest { key: num(key)? }),
            _ => Err(bad()),
        }
    }

    fn sort(self) -> Sort {
        match self {
            Cursor::Relevance { .. } => Sort::Relevance,
            Cursor::Newest { .. } => Sort::Newest,
            Cursor::Oldest { .. } => Sort::Oldest,
        }
    }
}

/// What one search asks of the engine, whatever it searches.
struct Plan<'a> {
    target: Target,
    query: &'a Query,
    sort: Sort,
    limit: usize,
    offset: usize,
    cursor: Option<&'a str>,
    min_key: Option<u64>,
    max_key: Option<u64>,
    author: Option<&'a str>,
    account: Option<u64>,
    facets: bool,
}

impl<'a> Plan<'a> {
    /// The plan of a [`SearchRequest`] over `target`.
    fn of_request(target: Target, query: &'a Query, request: &'a SearchRequest) -> Self {
        Plan {
            target,
            query,
            sort: request.sort,
            limit: request.limit,
            offset: request.offset,
            cursor: request.cursor.as_deref(),
            min_key: request.min_key,
            max_key: request.max_key,
            author: request.author.as_deref(),
            account: request.account,
            facets: request.facets,
        }
    }
}

/// One hit before its document is read.
struct Found {
    score: Score,
    key: u64,
    address: DocAddress,
}

/// A search's raw outcome.
struct Outcome {
    found: Vec<Found>,
    total: u64,
    facets: Option<Facets>,
    partial: bool,
    next_cursor: Option<String>,
    searcher: Searcher,
    query: Box<dyn TantivyQuery>,
}

impl Outcome {
    /// The page of `hits` read from this outcome, with its total, facets, cursor and partial flag.
    fn into_page<H>(self, hits: Vec<H>) -> Page<H> {
        Page {
            total: self.total,
            hits,
            facets: self.facets,
            next_cursor: self.next_cursor,
            partial: self.partial,
        }
    }
}

fn recency(now_secs: i64, key: u64) -> f32 {
    let published_secs = i64::try_from((key >> 16) / 1000).unwrap_or(i64::MAX);
    let age_days = (now_secs.saturating_sub(published_secs)).max(0) as f32 / 86_400.0;
    1.0 + RECENCY_WEIGHT * (-age_days / RECENCY_HALF_LIFE_DAYS).exp2()
}

pub(crate) fn stored_json<T: DeserializeOwned>(
    doc: &TantivyDocument,
    field: tantivy::schema::Field,
) -> Result<T> {
    let text = doc
        .get_first(field)
        .and_then(|v| v.as_str())
        .ok_or_else(|| Error::Unusable("stored document lacks its data".into()))?;
    serde_json::from_str(text).map_err(|e| Error::Unusable(format!("stored data: {e}")))
}

/// Escaped first characters of a text, for hits without a highlighted match.
fn plain_snippet(text: &str) -> String {
    let cut: String = text.chars().take(SNIPPET_CHARS).collect();
    cut.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Highlights query terms in texts of several languages (one generator per language).
struct Highlighter {
    terms: BTreeMap<String, Score>,
    field: tantivy::schema::Field,
    generators: HashMap<Option<String>, SnippetGenerator>,
}

impl Highlighter {
    fn new(searcher: &Searcher, query: &dyn TantivyQuery, field: tantivy::schema::Field) -> Self {
        let mut terms = BTreeMap::new();
        query.query_terms(&mut |term, _| {
            if term.field() == field
                && let Some(text) = term.value().as_str()
            {
                let freq = searcher.doc_freq(term).unwrap_or(0);
                terms.insert(text.to_owned(), 1.0 / (1.0 + freq as Score));
            }
        });
        Highlighter {
            terms,
            field,
            generators: HashMap::new(),
        }
    }

    fn snippet(&mut self, text: &str, lang: Option<&str>) -> String {
        if self.terms.is_empty() {
            return plain_snippet(text);
        }
        let generator = self
            .generators
            .entry(lang.map(str::to_owned))
            .or_insert_with(|| {
                let mut g = SnippetGenerator::new(
                    self.terms.clone(),
                    analysis::analyzer(lang),
                    self.field,
                    SNIPPET_CHARS,
                );
                g.set_max_num_chars(SNIPPET_CHARS);
                g
            });
        let snippet = generator.snippet(text);
        if snippet.highlighted().is_empty() {
            plain_snippet(text)
        } else {
            snippet.to_html()
        }
    }
}

impl Shared {
    pub(crate) fn window(&self, limit: usize, offset: usize) -> Result<usize> {
        let limit = if limit == 0 { DEFAULT_LIMIT } else { limit };
        let max = self.config.limits.max_window;
        if offset.saturating_add(limit) > max {
            return Err(Error::Query(format!(
                "offset + limit may be at most {max}; narrow the query instead"
            )));
        }
        Ok(limit)
    }

    fn run(&self, plan: Plan<'_>) -> Result<Outcome> {
        let deadline = Deadline::after(self.config.limits.time_budget);
        let limit = self.window(plan.limit, plan.offset)?;
        let cursor = plan.cursor.map(Cursor::decode).transpose()?;
        if let Some(c) = cursor
            && c.sort() != plan.sort
        {
            return Err(Error::Query(
                "the cursor belongs to another sort order".into(),
            ));
        }
        let fields = &self.fields;
        // Posts by relevance with nothing to rank (filters only: a hashtag, an author, a date
        // range…) all score 0, so the recency boost leaves them newest first: the same order the
        // `key` fast field gives without scoring each match (and collected block by block).
        let newest_by_relevance =
            plan.sort == Sort::Relevance && plan.target == Target::Posts && !plan.query.scores();
        let mut extra: Vec<Box<dyn TantivyQuery>> = Vec::new();
        let (mut above, mut below) = (plan.min_key, plan.max_key);
        match cursor {
            Some(Cursor::Newest { key }) => below = Some(below.map_or(key, |b| b.min(key))),
            // Past the last result's key, as the relevance order's `(score, key)` comparison does
            // when every score is 0.
            Some(Cursor::Relevance { key, .. }) if newest_by_relevance => {
                below = Some(below.map_or(key, |b| b.min(key)))
            }
            Some(Cursor::Oldest { key }) => above = Some(above.map_or(key, |a| a.max(key))),
            _ => {}
        }
        if above.is_some() || below.is_some() {
            extra.push(compile::key_range(fields, above, below));
        }
        if let Some(author) = plan.author {
            extra.push(Box::new(TermQuery::new(
                Term::from_field_text(fields.author, author),
                IndexRecordOption::Basic,
            )));
        }
        if let Some(account) = plan.account {
            extra.push(Box::new(TermQuery::new(
                Term::from_field_u64(fields.account, account),
                IndexRecordOption::Basic,
            )));
        }
        let searcher = self.reader.searcher();
        let query = compile::compile(fields, plan.target, plan.query, extra, &searcher)?;
        let facets = plan
            .facets
            .then(|| FacetCollector::new(self.config.limits.facets_exact));
        let top = TopDocs::with_limit(limit).and_offset(plan.offset);
        let execute_as = if newest_by_relevance {
            Sort::Newest
        } else {
            plan.sort
        };
        let (found, total, facets) = match execute_as {
            Sort::Relevance => {
                let now = match cursor {
                    Some(Cursor::Relevance { now, .. }) => now,
                    _ => OffsetDateTime::now_utc().unix_timestamp(),
                };
                let after = match cursor {
                    Some(Cursor::Relevance { score, key, .. }) => Some((score, key)),
                    _ => None,
                };
                let boost = plan.target == Target::Posts;
                let collector = top.tweak_score(move |segment: &tantivy::SegmentReader| {
                    let keys = segment
                        .fast_fields()
                        .u64("key")
                        .ok()
                        .map(|c| c.first_or_default_col(0));
                    move |doc: tantivy::DocId, score: Score| {
                        let key = keys.as_ref().map_or(0, |k| k.get_val(doc));
                        let score = if boost {
                            score * recency(now, key)
                        } else {
                            score
                        };
                        match after {
                            Some(last) if (score, key) >= last => (f32::NEG_INFINITY, key),
                            _ => (score, key),
                        }
                    }
                });
                let (top, total, facets) = searcher.search(
                    &*query,
                    &Budgeted::new((collector, Count, facets), &deadline),
                )?;
                let found = top
                    .into_iter()
                    .filter(|((score, _), _)| score.is_finite())
                    .map(|((score, key), address)| Found {
                        score,
                        key,
                        address,
                    })
                    .collect::<Vec<_>>();
                (found, total, facets)
            }
            Sort::Newest | Sort::Oldest => {
                let order = if execute_as == Sort::Newest {
                    Order::Desc
                } else {
                    Order::Asc
                };
                let collector = top.order_by_fast_field::<u64>("key", order);
                let (top, total, facets) = searcher.search(
                    &*query,
                    &Budgeted::new((collector, Count, facets), &deadline),
                )?;
                let found = top
                    .into_iter()
                    .map(|(key, address)| Found {
                        score: 0.0,
                        key: key.unwrap_or(0),
                        address,
                    })
                    .collect::<Vec<_>>();
                (found, total, facets)
            }
        };
        let total = total as u64;
        let more = (plan.offset + found.len()) < usize::try_from(total).unwrap_or(usize::MAX);
        let next_cursor = match found.last() {
            Some(last) if more && found.len() == limit => Some(
                match plan.sort {
                    Sort::Relevance => Cursor::Relevance {
                        now: match cursor {
                            Some(Cursor::Relevance { now, .. }) => now,
                            _ => OffsetDateTime::now_utc().unix_timestamp(),
                        },
                        score: last.score,
                        key: last.key,
                    },
                    Sort::Newest => Cursor::Newest { key: last.key },
                    Sort::Oldest => Cursor::Oldest { key: last.key },
                }
                .encode(),
            ),
            _ => None,
        };
        Ok(Outcome {
            found,
            total,
            facets,
            partial: deadline.exceeded(),
            next_cursor,
            searcher,
            query,
        })
    }

    /// The document of this `kind` (ids of posts, actors and instances may not collide, but a lookup
    /// must not take one for another) with this id.
    pub(crate) fn by_id(
        &self,
        searcher: &Searcher,
        kind: &str,
        id: &str,
    ) -> Result<Option<TantivyDocument>> {
        let term = |field, text: &str| -> Box<dyn TantivyQuery> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, text),
                IndexRecordOption::Basic,
            ))
        };
        let query = BooleanQuery::new(vec![
            (Occur::Must, term(self.fields.id, id)),
            (Occur::Must, term(self.fields.kind, kind)),
        ]);
        let top = searcher.search(&query, &TopDocs::with_limit(1).order_by_score())?;
        match top.first() {
            Some((_, address)) => Ok(Some(searcher.doc(*address)?)),
            None => Ok(None),
        }
    }

    /// The stored account of an actor id, if the actor is in the index.
    fn account(&self, searcher: &Searcher, uri: &str) -> Result<Option<AccountView>> {
        self.by_id(searcher, schema::KIND_ACTOR, uri)?
            .map(|doc| stored_json(&doc, self.fields.data))
            .transpose()
    }

    /// The indexed post `uri` replies to, if any.
    fn reply_to(&self, searcher: &Searcher, uri: &str) -> Result<Option<ReplyTo>> {
        let Some(doc) = self.by_id(searcher, schema::KIND_POST, uri)? else {
            return Ok(None);
        };
        let key = doc.get_first(self.fields.key).and_then(|v| v.as_u64());
        let author = doc.get_first(self.fields.author).and_then(|v| v.as_str());
        Ok(key.zip(author).map(|(key, author)| ReplyTo {
            key,
            account_id: crate::ids::account_id(author),
        }))
    }

    fn post_hits(&self, outcome: Outcome) -> Result<Page<PostHit>> {
        let mut highlighter =
            Highlighter::new(&outcome.searcher, &*outcome.query, self.fields.text);
        let mut accounts: HashMap<String, AccountView> = HashMap::new();
        let mut hits = Vec::with_capacity(outcome.found.len());
        for found in &outcome.found {
            let doc: TantivyDocument = outcome.searcher.doc(found.address)?;
            let mut post: PostView = stored_json(&doc, self.fields.data)?;
            if post.text.is_empty() {
                // Not stored twice: the text is that of the safe HTML.
                post.text = html::render(&post.content_html).text;
            }
            let account = match accounts.get(&post.author_uri) {
                Some(a) => a.clone(),
                None => {
                    let a = self
                        .account(&outcome.searcher, &post.author_uri)?
                        .unwrap_or_else(|| {
                            AccountView::unknown(
                                &post.author_uri,
                                &post.author_acct,
                                &post.instance,
                            )
                        });
                    accounts.insert(post.author_uri.clone(), a.clone());
                    a
                }
            };
            let text = if post.spoiler_text.is_empty() {
                post.text.clone()
            } else {
                format!("{}\n{}", post.spoiler_text, post.text)
            };
            let snippet_html = highlighter.snippet(&text, post.language.as_deref());
            let reply_to = match &post.in_reply_to {
                Some(parent) => self.reply_to(&outcome.searcher, parent)?,
                None => None,
            };
            hits.push(PostHit {
                post,
                account,
                score: found.score,
                snippet_html,
                reply_to,
            });
        }
        Ok(outcome.into_page(hits))
    }

    fn profile_hits(&self, outcome: Outcome) -> Result<Page<ProfileHit>> {
        let mut highlighter =
            Highlighter::new(&outcome.searcher, &*outcome.query, self.fields.text);
        let mut hits = Vec::with_capacity(outcome.found.len());
        for found in &outcome.found {
            let doc: TantivyDocument = outcome.searcher.doc(found.address)?;
            let account: AccountView = stored_json(&doc, self.fields.data)?;
            let mut text = format!(
                "{}\n{}",
                account.display_name,
                html::render(&account.note_html).text
            );
            for field in &account.fields {
                text.push('\n');
                text.push_str(&field.name);
                text.push_str(": ");
                text.push_str(&field.value_text);
            }
            let snippet_html = highlighter.snippet(&text, account.language.as_deref());
            hits.push(ProfileHit {
                account,
                score: found.score,
                snippet_html,
            });
        }
        Ok(outcome.into_page(hits))
    }
}

fn clause(term: QueryTerm) -> Clause {
    Clause {
        negated: false,
        any_of: vec![term],
    }
}

impl Index {
    /// Searches posts. A malformed query or a page past the result window is an [`Error::Query`].
    pub fn search_posts(&self, request: &SearchRequest) -> Result<Page<PostHit>> {
        let shared = &*self.shared;
        let query = query::parse(&request.q, &shared.config.limits)?;
        let outcome = shared.run(Plan::of_request(Target::Posts, &query, request))?;
        shared.post_hits(outcome)
    }

    /// Searches the profiles listed in the directory with the query language (`type:`, `#tag`,
    /// `instance:`, `language:` and words; `has:`/`is:` are for posts and are refused here).
    pub fn search_profiles(&self, request: &SearchRequest) -> Result<Page<ProfileHit>> {
        let shared = &*self.shared;
        let query = query::parse(&request.q, &shared.config.limits)?;
        let outcome = shared.run(Plan {
            author: None,
            account: None,
            ..Plan::of_request(Target::Profiles, &query, request)
        })?;
        shared.profile_hits(outcome)
    }

    /// Lists the directory with filters (e.g. every `Organization` tagged `#coop`): by relevance when
    /// there is text, else newest accounts first.
    pub fn directory(&self, request: &DirectoryRequest) -> Result<Page<ProfileHit>> {
        let shared = &*self.shared;
        let mut query = match request.text.as_deref().map(str::trim) {
            Some(text) if !text.is_empty() => query::parse(text, &shared.config.limits)?,
            _ => Query::default(),
        };
        let sort = if query.clauses.is_empty() {
            Sort::Newest
        } else {
            Sort::Relevance
        };
        if let Some(t) = request.actor_type {
            query.clauses.push(clause(QueryTerm::Type(t)));
        }
        if let Some(tag) = request
            .tag
            .as_deref()
            .and_then(crate::document::normalize_tag)
        {
            query.clauses.push(clause(QueryTerm::Tag(tag)));
        }
        if let Some(host) = &request.instance {
            query
                .clauses
                .push(clause(QueryTerm::Instance(host.to_ascii_lowercase())));
        }
        if let Some(lang) = request
            .language
            .as_deref()
            .and_then(crate::language::normalize)
        {
            query.clauses.push(clause(QueryTerm::Language(lang)));
        }
        let outcome = shared.run(Plan {
            target: Target::Profiles,
            query: &query,
            sort,
            limit: request.limit,
            offset: request.offset,
            cursor: request.cursor.as_deref(),
            min_key: None,
            max_key: None,
            author: None,
            account: None,
            facets: request.facets,
        })?;
        shared.profile_hits(outcome)
    }

    /// The newest indexed posts, overall, of a hashtag, an instance or an author (Mastodon's public and
    /// tag timelines).
    pub fn timeline(&self, request: &TimelineRequest) -> Result<Page<PostHit>> {
        let shared = &*self.shared;
        let mut query = Query::default();
        if let Some(tag) = request
            .tag
            .as_deref()
            .and_then(crate::document::normalize_tag)
        {
            query.clauses.push(clause(QueryTerm::Tag(tag)));
        }
        if let Some(host) = &request.instance {
            query
                .clauses
                .push(clause(QueryTerm::Instance(host.to_ascii_lowercase())));
        }
        if request.only_media {
            query
                .clauses
                .push(clause(QueryTerm::Has(query::Has::Media)));
        }
        if request.exclude_replies {
            query.clauses.push(Clause {
                negated: true,
                any_of: vec![QueryTerm::Is(query::Is::Reply)],
            });
        }
        let outcome = shared.run(Plan {
            target: Target::Posts,
            query: &query,
            sort: if request.oldest_first {
                Sort::Oldest
            } else {
                Sort::Newest
            },
            limit: request.limit,
            offset: 0,
            cursor: request.cursor.as_deref(),
            min_key: request.min_key,
            max_key: request.max_key,
            author: request.author.as_deref(),
            account: request.account,
            facets: false,
        })?;
        shared.post_hits(outcome)
    }

    /// The post with this object id, if indexed.
    pub fn post(&self, uri: &str) -> Result<Option<PostHit>> {
        self.lookup_post(Term::from_field_text(self.shared.fields.id, uri))
    }

    /// The post with this key (a Mastodon status id), if indexed.
    pub fn post_by_key(&self, key: u64) -> Result<Option<PostHit>> {
        self.lookup_post(Term::from_field_u64(self.shared.fields.key, key))
    }

    fn lookup_post(&self, term: Term) -> Result<Option<PostHit>> {
        let shared = &*self.shared;
        let searcher = shared.reader.searcher();
        let mut clauses = compile::scope(&shared.fields, Target::Posts);
        clauses.push((
            tantivy::query::Occur::Must,
            Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
        ));
        let query: Box<dyn TantivyQuery> = Box::new(tantivy::query::BooleanQuery::new(clauses));
        let top = searcher.search(&*query, &TopDocs::with_limit(1).order_by_score())?;
        let found = top
            .into_iter()
            .map(|(score, address)| Found {
                score,
                key: 0,
                address,
            })
            .collect();
        let page = shared.post_hits(Outcome {
            found,
            total: 1,
            facets: None,
            partial: false,
            next_cursor: None,
            searcher,
            query,
        })?;
        Ok(page.hits.into_iter().next())
    }

    /// The account of an actor id, if the actor is in the index (as an author or a listed profile).
    pub fn account(&self, uri: &str) -> Result<Option<AccountView>> {
        let shared = &*self.shared;
        shared.account(&shared.reader.searcher(), uri)
    }
}
