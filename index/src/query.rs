//! Plaza's query language, parsed into a small syntax tree. No engine syntax passes through: what is not
//! an operator below is text to look for.
//!
//! - `word word` — every word must match (stemmed and accent-folded);
//! - `"a phrase"` — the words in this order;
//! - `-word`, `-"phrase"`, `-#tag`, `-from:…` — exclude;
//! - `a OR b` — either (binds tighter than the implicit AND: `x a OR b` is `x AND (a OR b)`);
//! - `#tag`, `from:user@host` (or `from:@user@host`), `instance:host`, `language:xx` (`lang:xx`);
//! - `before:YYYY-MM-DD`, `after:YYYY-MM-DD`, `during:YYYY-MM-DD` or `during:YYYY-MM` (UTC days);
//! - `has:media`, `has:poll`, `is:reply`, `is:sensitive`, `is:quote`;
//! - `type:person|organization|group|service|application` (the actor type: of the profile, or of a
//!   post's author).
//!
//! A malformed query (an unclosed quote, an unknown `has:` value, a bad date, `OR` with nothing on one
//! side, too long, too many terms) is an [`Error::Query`] whose text says what to fix.

use time::{Date, Month, OffsetDateTime};

use crate::document::{ActorType, normalize_tag};
use crate::error::{Error, Result};
use crate::language;

/// Limits that keep any query cheap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Longest query accepted, in characters.
    pub max_chars: usize,
    /// Most terms (words, phrases and operators) in one query.
    pub max_terms: usize,
    /// Largest `offset + limit` of a result page.
    pub max_window: usize,
    /// Time one search may spend collecting before it returns what it has (marked partial).
    pub time_budget: std::time::Duration,
    /// Matches whose facets are all counted; past them facet counts are sampled (one match in 2,
    /// then 4, 8…, each doubling after as many counted) and marked so.
    pub facets_exact: u64,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_chars: 512,
            max_terms: 24,
            max_window: 1_000,
            time_budget: std::time::Duration::from_millis(500),
            facets_exact: 4096,
        }
    }
}

/// A half-open interval of instants `[from, to)`; either end may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Inclusive start.
    pub from: Option<OffsetDateTime>,
    /// Exclusive end.
    pub to: Option<OffsetDateTime>,
}

impl TimeRange {
    /// The instants in both ranges (empty when the later start is not before the earlier end).
    pub fn and(self, other: TimeRange) -> TimeRange {
        let later = |a: Option<OffsetDateTime>, b: Option<OffsetDateTime>| a.max(b);
        let earlier = |a: Option<OffsetDateTime>, b: Option<OffsetDateTime>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        TimeRange {
            from: later(self.from, other.from),
            to: earlier(self.to, other.to),
        }
    }

    /// Whether no instant is in the range.
    pub fn is_empty(&self) -> bool {
        matches!((self.from, self.to), (Some(from), Some(to)) if from >= to)
    }
}

/// What `has:` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Has {
    /// Media attachments.
    Media,
    /// A poll.
    Poll,
}

/// What `is:` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Is {
    /// A reply.
    Reply,
    /// Marked sensitive.
    Sensitive,
    /// Quotes a post.
    Quote,
}

/// One term of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// A word.
    Word(String),
    /// Words in order.
    Phrase(String),
    /// A hashtag (normalised: lowercase, no `#`).
    Tag(String),
    /// An author, `user@host` lowercase.
    From(String),
    /// An instance host, lowercase.
    Instance(String),
    /// An ISO 639-1 language.
    Language(String),
    /// A time range (`before:`, `after:`, `during:`).
    Time(TimeRange),
    /// `has:`.
    Has(Has),
    /// `is:`.
    Is(Is),
    /// `type:`.
    Type(ActorType),
}

/// A group of terms of which one must match (one term unless joined by `OR`), or must not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// Excluded (`-`).
    pub negated: bool,
    /// Alternatives.
    pub any_of: Vec<Term>,
}

/// A parsed query: every clause must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    /// The clauses.
    pub clauses: Vec<Clause>,
}

impl Query {
    /// Whether the query has words or phrases to rank by: every other term (hashtags, authors, dates,
    /// `has:`…) only filters, and a query made of filters alone gives every match the same score.
    pub fn scores(&self) -> bool {
        self.clauses.iter().any(|c| {
            !c.negated
                && c.any_of
                    .iter()
                    .any(|t| matches!(t, Term::Word(_) | Term::Phrase(_)))
        })
    }

    /// The language of a `language:` term, which also picks the stemmer of the words.
    pub fn language(&self) -> Option<&str> {
        self.clauses
            .iter()
            .filter(|c| !c.negated)
            .flat_map(|c| &c.any_of)
            .find_map(|t| match t {
                Term::Language(l) => Some(l.as_str()),
                _ => None,
            })
    }
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::Query(reason.into())
}

/// A lexical token.
#[derive(Debug)]
enum Lexeme {
    Or,
    Item { negated: bool, term: Term },
}

fn parse_day(value: &str, op: &str) -> Result<Date> {
    let bad = || invalid(format!("{op}: expects a date as YYYY-MM-DD, not {value:?}"));
    let mut parts = value.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let year: i32 = y.parse().map_err(|_| bad())?;
    let month: u8 = m.parse().map_err(|_| bad())?;
    let day: u8 = d.parse().map_err(|_| bad())?;
    let month = Month::try_from(month).map_err(|_| bad())?;
    Date::from_calendar_date(year, month, day).map_err(|_| bad())
}

fn midnight(date: Date) -> OffsetDateTime {
    date.midnight().assume_utc()
}

fn next_day(date: Date, op: &str) -> Result<Date> {
    date.next_day()
        .ok_or_else(|| invalid(format!("{op}: date out of range")))
}

fn parse_during(value: &str) -> Result<TimeRange> {
    if value.len() == 7 {
        let bad = || {
            invalid(format!(
                "during: expects YYYY-MM-DD or YYYY-MM, not {value:?}"
            ))
        };
        let (y, m) = value.split_once('-').ok_or_else(bad)?;
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u8 = m.parse().map_err(|_| bad())?;
        let month = Month::try_from(month).map_err(|_| bad())?;
        let first = Date::from_calendar_date(year, month, 1).map_err(|_| bad())?;
        let (next_year, next_month) = if month == Month::December {
            (year + 1, Month::January)
        } else {
            (year, month.next())
        };
        let end = Date::from_calendar_date(next_year, next_month, 1).map_err(|_| bad())?;
        return Ok(TimeRange {
            from: Some(midnight(first)),
            to: Some(midnight(end)),
        });
    }
    let day = parse_day(value, "during")?;
    Ok(TimeRange {
        from: Some(midnight(day)),
        to: Some(midnight(next_day(day, "during")?)),
    })
}

fn parse_handle(value: &str) -> Result<String> {
    let handle = value.trim_start_matches('@').to_lowercase();
    match handle.split_once('@') {
        Some((user, host)) if !user.is_empty() && !host.is_empty() && !host.contains('@') => {
            Ok(handle)
        }
        _ => Err(invalid(format!(
            "from: expects an account as user@host, not {value:?}"
        ))),
    }
}

/// Reads an operator term, `None` when `name` is not an operator (then the token is plain text).
fn operator(name: &str, value: &str) -> Result<Option<Term>> {
    let name = name.to_ascii_lowercase();
    let known = [
        "from", "instance", "language", "lang", "before", "after", "during", "has", "is", "type",
    ];
    if !known.contains(&name.as_str()) {
        return Ok(None);
    }
    if value.is_empty() {
        return Err(invalid(format!("{name}: needs a value")));
    }
    let lower = value.to_lowercase();
    let term = match name.as_str() {
        "from" => Term::From(parse_handle(value)?),
        "instance" => Term::Instance(lower),
        "language" | "lang" => Term::Language(language::normalize(value).ok_or_else(|| {
            invalid(format!(
                "language: expects a language code such as en, not {value:?}"
            ))
        })?),
        "before" => Term::Time(TimeRange {
            from: None,
            to: Some(midnight(parse_day(value, "before")?)),
        }),
        "after" => Term::Time(TimeRange {
            from: Some(midnight(next_day(parse_day(value, "after")?, "after")?)),
            to: None,
        }),
        "during" => Term::Time(parse_during(value)?),
        "has" => Term::Has(match lower.as_str() {
            "media" | "image" | "video" | "attachment" => Has::Media,
            "poll" => Has::Poll,
            _ => return Err(invalid(format!("has: knows media and poll, not {value:?}"))),
        }),
        "is" => Term::Is(match lower.as_str() {
            "reply" => Is::Reply,
            "sensitive" => Is::Sensitive,
            "quote" => Is::Quote,
            _ => {
                return Err(invalid(format!(
                    "is: knows reply, sensitive and quote, not {value:?}"
                )));
            }
        }),
        _ => Term::Type(ActorType::parse(value).ok_or_else(|| {
            invalid(format!(
                "type: knows person, organization, group, service and application, not {value:?}"
            ))
        })?),
    };
    Ok(Some(term))
}

fn lex(input: &str) -> Result<Vec<Lexeme>> {
    let mut out = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut negated = false;
        let mut at = start;
        if c == '-' {
            chars.next();
            match chars.peek() {
                Some(&(next, n)) if !n.is_whitespace() => {
                    negated = true;
                    at = next;
                }
                // A lone `-` is punctuation.
                _ => continue,
            }
        }
        if input[at..].starts_with('"') {
            chars.next();
            let body_start = at + 1;
            let close = input[body_start..]
                .find('"')
                .ok_or_else(|| invalid("a quote is not closed"))?;
            let phrase = &input[body_start..body_start + close];
            // Skip past the closing quote.
            while let Some(&(i, _)) = chars.peek() {
                if i > body_start + close {
                    break;
                }
                chars.next();
            }
            if phrase.trim().is_empty() {
                return Err(invalid("empty quotes"));
            }
            out.push(Lexeme::Item {
                negated,
                term: Term::Phrase(phrase.to_owned()),
            });
            continue;
        }
        let mut end = input.len();
        while let Some(&(i, ch)) = chars.peek() {
            if ch.is_whitespace() {
                end = i;
                break;
            }
            chars.next();
        }
        let token = &input[at..end];
        if token == "OR" && !negated {
            out.push(Lexeme::Or);
            continue;
        }
        let term = if let Some(tag) = token.strip_prefix('#') {
            match normalize_tag(tag) {
                Some(t) => Term::Tag(t),
                None => Term::Word(token.to_owned()),
            }
        } else if let Some((name, value)) = token.split_once(':') {
            operator(name, value)?.unwrap_or_else(|| Term::Word(token.to_owned()))
        } else {
            Term::Word(token.to_owned())
        };
        out.push(Lexeme::Item { negated, term });
    }
    Ok(out)
}

/// Parses a query under `limits`.
pub fn parse(input: &str, limits: &QueryLimits) -> Result<Query> {
    if input.chars().count() > limits.max_chars {
        return Err(invalid(format!(
            "the query is longer than {} characters",
            limits.max_chars
        )));
    }
    let lexemes = lex(input)?;
    let terms = lexemes
        .iter()
        .filter(|l| matches!(l, Lexeme::Item { .. }))
        .count();
    if terms == 0 {
        return Err(invalid("the query is empty"));
    }
    if terms > limits.max_terms {
        return Err(invalid(format!(
            "the query has {terms} terms, at most {} are allowed",
            limits.max_terms
        )));
    }
    let mut query = Query::default();
    let mut joining = false;
    for lexeme in lexemes {
        match lexeme {
            Lexeme::Or => {
                match query.clauses.last() {
                    Some(c) if !c.negated && !joining => {}
                    Some(c) if c.negated => {
                        return Err(invalid("OR cannot join an excluded term"));
                    }
                    _ => return Err(invalid("OR needs a term on each side")),
                }
                joining = true;
            }
            Lexeme::Item { negated, term } => {
                if joining {
                    if negated {
                        return Err(invalid("OR cannot join an excluded term"));
                    }
                    if let Some(last) = query.clauses.last_mut() {
                        last.any_of.push(term);
                    }
                    joining = false;
                } else {
                    query.clauses.push(Clause {
                        negated,
                        any_of: vec![term],
                    });
                }
            }
        }
    }
    if joining {
        return Err(invalid("OR needs a term on each side"));
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(q: &str) -> Result<Query> {
        parse(q, &QueryLimits::default())
    }

    fn single(q: &str) -> Term {
        let query = p(q).expect("parses");
        assert_eq!(query.clauses.len(), 1);
        query.clauses[0].any_of[0].clone()
    }

    fn reason(q: &str) -> String {
        match p(q) {
            Err(Error::Query(r)) => r,
            other => panic!("{q}: expected a query error, got {other:?}"),
        }
    }

    #[test]
    fn words_phrases_and_exclusions() {
        let q = p(r#"bread "sour dough" -rye -"white flour""#).expect("parses");
        assert_eq!(q.clauses.len(), 4);
        assert_eq!(q.clauses[0].any_of, [Term::Word("bread".into())]);
        assert_eq!(q.clauses[1].any_of, [Term::Phrase("sour dough".into())]);
        assert!(q.clauses[2].negated && q.clauses[3].negated);
        assert_eq!(q.clauses[3].any_of, [Term::Phrase("white flour".into())]);
    }

    #[test]
    fn or_binds_adjacent_terms() {
        let q = p("coop bakery OR brewery #food").expect("parses");
        assert_eq!(q.clauses.len(), 3);
        assert_eq!(
            q.clauses[1].any_of,
            [Term::Word("bakery".into()), Term::Word("brewery".into())]
        );
        assert!(reason("OR coop").contains("OR needs"));
        assert!(reason("coop OR").contains("OR needs"));
        assert!(reason("a OR -b").contains("excluded"));
        assert!(reason("-a OR b").contains("excluded"));
        assert_eq!(
            p("or coop").expect("lowercase or is a word").clauses.len(),
            2
        );
    }

    #[test]
    fn operators() {
        assert_eq!(single("#Coop"), Term::Tag("coop".into()));
        assert_eq!(
            single("from:Alice@Social.Example"),
            Term::From("alice@social.example".into())
        );
        assert_eq!(
            single("from:@alice@social.example"),
            Term::From("alice@social.example".into())
        );
        assert_eq!(
            single("instance:Social.Example"),
            Term::Instance("social.example".into())
        );
        assert_eq!(single("language:fr-CA"), Term::Language("fr".into()));
        assert_eq!(single("lang:de"), Term::Language("de".into()));
        assert_eq!(single("has:media"), Term::Has(Has::Media));
        assert_eq!(single("has:poll"), Term::Has(Has::Poll));
        assert_eq!(single("is:reply"), Term::Is(Is::Reply));
        assert_eq!(single("is:sensitive"), Term::Is(Is::Sensitive));
        assert_eq!(
            single("type:Organization"),
            Term::Type(ActorType::Organization)
        );
        assert_eq!(
            single("https://x.example/a"),
            Term::Word("https://x.example/a".into())
        );
        assert_eq!(single("note:this"), Term::Word("note:this".into()));
    }

    #[test]
    fn dates() {
        let Term::Time(before) = single("before:2024-03-01") else {
            panic!("time")
        };
        assert_eq!(before.from, None);
        assert_eq!(before.to.map(|t| t.unix_timestamp()), Some(1709251200));
        let Term::Time(after) = single("after:2024-02-29") else {
            panic!("time")
        };
        assert_eq!(after.from.map(|t| t.unix_timestamp()), Some(1709251200));
        let Term::Time(month) = single("during:2024-12") else {
            panic!("time")
        };
        assert_eq!(month.from.map(|t| t.unix_timestamp()), Some(1733011200));
        assert_eq!(month.to.map(|t| t.unix_timestamp()), Some(1735689600));
        let Term::Time(day) = single("during:2024-02-29") else {
            panic!("time")
        };
        assert_eq!(
            day.to.zip(day.from).map(|(t, f)| (t - f).whole_hours()),
            Some(24)
        );
    }

    #[test]
    fn malformed_queries_say_why() {
        assert!(reason("").contains("empty"));
        assert!(reason("   ").contains("empty"));
        assert!(reason("\"unclosed").contains("quote"));
        assert!(reason("\"\"").contains("empty quotes"));
        assert!(reason("before:yesterday").contains("YYYY-MM-DD"));
        assert!(reason("before:2024-02-30").contains("YYYY-MM-DD"));
        assert!(reason("during:2024-13").contains("YYYY-MM"));
        assert!(reason("has:unicorns").contains("media"));
        assert!(reason("is:cool").contains("reply"));
        assert!(reason("type:robot").contains("organization"));
        assert!(reason("from:alice").contains("user@host"));
        assert!(reason("from:").contains("needs a value"));
        assert!(reason("language:x1").contains("language code"));
    }

    #[test]
    fn limits() {
        let limits = QueryLimits {
            max_chars: 20,
            max_terms: 3,
            ..QueryLimits::default()
        };
        assert!(
            matches!(parse(&"a".repeat(21), &limits), Err(Error::Query(r)) if r.contains("longer"))
        );
        assert!(matches!(parse("a b c d", &limits), Err(Error::Query(r)) if r.contains("4 terms")));
        assert!(parse("a b c", &limits).is_ok());
    }

    #[test]
    fn time_ranges_meet() {
        let range = |q: &str| match single(q) {
            Term::Time(r) => r,
            other => panic!("{q}: {other:?}"),
        };
        let both = range("after:2024-02-29").and(range("before:2024-03-15"));
        assert_eq!(both.from, range("after:2024-02-29").from);
        assert_eq!(both.to, range("before:2024-03-15").to);
        assert!(!both.is_empty());
        let within = both.and(range("during:2024-03"));
        assert_eq!(within, both);
        assert!(
            range("before:2024-03-01")
                .and(range("after:2024-03-01"))
                .is_empty()
        );
        assert!(
            range("during:2024-02")
                .and(range("during:2024-03"))
                .is_empty()
        );
    }

    #[test]
    fn language_of_query() {
        assert_eq!(
            p("running language:en").expect("parses").language(),
            Some("en")
        );
        assert_eq!(p("running -language:en").expect("parses").language(), None);
    }

    #[test]
    fn only_words_and_phrases_rank() {
        let scores = |q: &str| parse(q, &QueryLimits::default()).expect(q).scores();
        assert!(scores("bread"));
        assert!(scores("\"rye bread\" #bakery"));
        assert!(scores("#bakery OR bread"));
        assert!(!scores("#bakery"));
        assert!(!scores("from:ann@a.example after:2024-01-01 has:media"));
        assert!(!scores("#bakery -bread"), "an excluded word ranks nothing");
    }
}
