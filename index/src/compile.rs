//! From Plaza's query syntax tree ([`crate::query`]) to tantivy queries. Filters (operators) score
//! nothing, so relevance comes from the text alone; every query is confined to one kind of document.

use std::ops::Bound;

use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, EmptyQuery, Occur, PhraseQuery, Query as TantivyQuery,
    RangeQuery, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DateTime, Searcher, Term as TantivyTerm};
use time::OffsetDateTime;

use crate::analysis;
use crate::common_grams::{self, GramPhrase};
use crate::error::{Error, Result};
use crate::plain_seek::PlainSeek;
use crate::query::{Clause, Has, Is, Query, Term, TimeRange};
use crate::schema::{self, Fields};

/// Which documents a query searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Posts.
    Posts,
    /// Profiles listed in the directory.
    Profiles,
}

fn term_query(field: Field, value: &str) -> Box<dyn TantivyQuery> {
    Box::new(TermQuery::new(
        TantivyTerm::from_field_text(field, value),
        IndexRecordOption::Basic,
    ))
}

fn bool_query(field: Field, value: bool) -> Box<dyn TantivyQuery> {
    Box::new(TermQuery::new(
        TantivyTerm::from_field_bool(field, value),
        IndexRecordOption::Basic,
    ))
}

/// A filter: matches like `query` and adds nothing to the score.
pub fn filter(query: Box<dyn TantivyQuery>) -> Box<dyn TantivyQuery> {
    Box::new(ConstScoreQuery::new(query, 0.0))
}

fn date_term(field: Field, at: OffsetDateTime) -> TantivyTerm {
    TantivyTerm::from_field_date_for_search(field, DateTime::from_utc(at))
}

/// Documents whose `published` falls in `range`.
pub fn time_range(fields: &Fields, range: &TimeRange) -> Box<dyn TantivyQuery> {
    let lower = range.from.map_or(Bound::Unbounded, |t| {
        Bound::Included(date_term(fields.published, t))
    });
    let upper = range.to.map_or(Bound::Unbounded, |t| {
        Bound::Excluded(date_term(fields.published, t))
    });
    if matches!((&lower, &upper), (Bound::Unbounded, Bound::Unbounded)) {
        return Box::new(AllQuery);
    }
    Box::new(RangeQuery::new(lower, upper))
}

/// Documents whose `key` lies strictly between the bounds.
pub fn key_range(fields: &Fields, above: Option<u64>, below: Option<u64>) -> Box<dyn TantivyQuery> {
    let lower = above.map_or(Bound::Unbounded, |k| {
        Bound::Excluded(TantivyTerm::from_field_u64(fields.key, k))
    });
    let upper = below.map_or(Bound::Unbounded, |k| {
        Bound::Excluded(TantivyTerm::from_field_u64(fields.key, k))
    });
    if matches!((&lower, &upper), (Bound::Unbounded, Bound::Unbounded)) {
        return Box::new(AllQuery);
    }
    Box::new(RangeQuery::new(lower, upper))
}

/// Text in every form it may take in the index (see [`analysis::query_forms`]), leaving out the forms
/// with a term the index does not have (most stemmers' forms of a word), so a word costs one or two
/// posting lists rather than one per language.
fn text(
    fields: &Fields,
    words: &str,
    lang: Option<&str>,
    searcher: &Searcher,
) -> Option<Box<dyn TantivyQuery>> {
    let mut forms = analysis::query_forms(words, lang);
    let exists = |t: &String| {
        searcher
            .doc_freq(&TantivyTerm::from_field_text(fields.text, t))
            .map_or(true, |n| n > 0)
    };
    if forms.iter().any(|form| form.iter().all(exists)) {
        forms.retain(|form| form.iter().all(exists));
    } else {
        // Nothing matches: one form is enough to match nothing.
        forms.truncate(1);
    }
    let mut alternatives: Vec<(Occur, Box<dyn TantivyQuery>)> = forms
        .into_iter()
        .map(|form| {
            let terms: Vec<TantivyTerm> = form
                .iter()
                .map(|t| TantivyTerm::from_field_text(fields.text, t))
                .collect();
            let query: Box<dyn TantivyQuery> = match terms.len() {
                1 => Box::new(TermQuery::new(
                    terms.into_iter().next()?,
                    IndexRecordOption::WithFreqs,
                )),
                _ => phrase(fields, &form, terms),
            };
            Some((Occur::Should, query))
        })
        .collect::<Option<_>>()?;
    match alternatives.len() {
        0 => None,
        1 => alternatives.pop().map(|(_, q)| q),
        _ => Some(Box::new(BooleanQuery::new(alternatives))),
    }
}

/// A phrase of `terms` (the `text` terms of `form`). Its adjacent pairs of common words are terms of
/// `grams` ([`common_grams`]): a two-word phrase that is such a pair reads that term alone; a longer
/// phrase checks positions only in the posts that have all its pairs.
fn phrase(fields: &Fields, form: &[String], terms: Vec<TantivyTerm>) -> Box<dyn TantivyQuery> {
    let grams: Vec<TantivyTerm> = form
        .windows(2)
        .filter(|pair| pair.iter().all(|t| common_grams::is_common(t)))
        .map(|pair| {
            TantivyTerm::from_field_text(fields.grams, &common_grams::gram(&pair[0], &pair[1]))
        })
        .collect();
    if let ([gram], [first, second]) = (grams.as_slice(), terms.as_slice()) {
        return Box::new(GramPhrase::new(
            gram.clone(),
            [first.clone(), second.clone()],
        ));
    }
    let phrase: Box<dyn TantivyQuery> = Box::new(PlainSeek(Box::new(PhraseQuery::new(terms))));
    if grams.is_empty() {
        return phrase;
    }
    let mut all = vec![(Occur::Must, phrase)];
    all.extend(grams.into_iter().map(|gram| {
        let filter: Box<dyn TantivyQuery> = Box::new(ConstScoreQuery::new(
            Box::new(TermQuery::new(gram, IndexRecordOption::Basic)),
            0.0,
        ));
        (Occur::Must, filter)
    }));
    Box::new(BooleanQuery::new(all))
}

/// The query of one term; `None` when the term has nothing to search (only punctuation).
fn term(
    fields: &Fields,
    target: Target,
    term: &Term,
    lang: Option<&str>,
    searcher: &Searcher,
) -> Result<Option<Box<dyn TantivyQuery>>> {
    let posts_only = |what: &str| {
        if target == Target::Posts {
            Ok(())
        } else {
            Err(Error::Query(format!(
                "{what} applies to posts, not profiles"
            )))
        }
    };
    Ok(Some(match term {
        Term::Word(w) | Term::Phrase(w) => return Ok(text(fields, w, lang, searcher)),
        Term::Tag(t) => filter(term_query(fields.tags, t)),
        Term::From(handle) => filter(term_query(fields.handle, handle)),
        Term::Instance(host) => filter(term_query(fields.instance, host)),
        Term::Language(l) => filter(term_query(fields.lang, l)),
        Term::Type(t) => filter(term_query(fields.actor_type, t.as_str())),
        Term::Time(range) => filter(time_range(fields, range)),
        Term::Has(has) => {
            posts_only("has:")?;
            filter(bool_query(
                match has {
                    Has::Media => fields.media,
                    Has::Poll => fields.poll,
                },
                true,
            ))
        }
        Term::Is(is) => {
            posts_only("is:")?;
            filter(bool_query(
                match is {
                    Is::Reply => fields.reply,
                    Is::Sensitive => fields.sensitive,
                    Is::Quote => fields.quote,
                },
                true,
            ))
        }
    }))
}

fn clause(
    fields: &Fields,
    target: Target,
    clause: &Clause,
    lang: Option<&str>,
    searcher: &Searcher,
) -> Result<Option<Box<dyn TantivyQuery>>> {
    let mut any: Vec<(Occur, Box<dyn TantivyQuery>)> = Vec::new();
    for t in &clause.any_of {
        if let Some(q) = term(fields, target, t, lang, searcher)? {
            any.push((Occur::Should, q));
        }
    }
    Ok(match any.len() {
        0 => None,
        1 => any.pop().map(|(_, q)| q),
        _ => Some(Box::new(BooleanQuery::new(any))),
    })
}

/// The documents of a target, before any query: posts, or listed actors.
pub fn scope(fields: &Fields, target: Target) -> Vec<(Occur, Box<dyn TantivyQuery>)> {
    match target {
        Target::Posts => vec![(
            Occur::Must,
            filter(term_query(fields.kind, schema::KIND_POST)),
        )],
        Target::Profiles => vec![
            (
                Occur::Must,
                filter(term_query(fields.kind, schema::KIND_ACTOR)),
            ),
            (Occur::Must, filter(bool_query(fields.listed, true))),
        ],
    }
}

/// The date range of a clause that is one date range and nothing else.
fn only_time(clause: &Clause) -> Option<TimeRange> {
    match (clause.negated, clause.any_of.as_slice()) {
        (false, [Term::Time(range)]) => Some(*range),
        _ => None,
    }
}

/// Compiles a parsed query for a target, with extra filters (cursor bounds…) added as they are. The
/// searcher the query will run on tells which forms of the words exist.
///
/// The query's date ranges (`after:A before:B`) become one range: tantivy intersects fast-field
/// ranges by scanning one column and looking each candidate up in the others, which at a million
/// posts read half a million values one by one where one range is a single vectorised scan.
pub fn compile(
    fields: &Fields,
    target: Target,
    query: &Query,
    extra: Vec<Box<dyn TantivyQuery>>,
    searcher: &Searcher,
) -> Result<Box<dyn TantivyQuery>> {
    let lang = query.language();
    let mut clauses = scope(fields, target);
    let mut published: Option<TimeRange> = None;
    for c in &query.clauses {
        if let Some(range) = only_time(c) {
            published = Some(published.map_or(range, |p| p.and(range)));
            continue;
        }
        match clause(fields, target, c, lang, searcher)? {
            Some(q) if c.negated => clauses.push((Occur::MustNot, q)),
            Some(q) => clauses.push((Occur::Must, q)),
            // A positive term with nothing to search can match nothing (`"!!!"`); a negated one
            // excludes nothing.
            None if !c.negated => return Ok(Box::new(EmptyQuery)),
            None => {}
        }
    }
    if let Some(range) = published {
        if range.is_empty() {
            return Ok(Box::new(EmptyQuery));
        }
        clauses.push((Occur::Must, filter(time_range(fields, &range))));
    }
    clauses.extend(extra.into_iter().map(|q| (Occur::Must, filter(q))));
    Ok(Box::new(BooleanQuery::new(clauses)))
}
