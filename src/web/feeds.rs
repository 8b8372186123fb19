//! Feeds and browser integration: an Atom feed for every search and hashtag page, so that a saved search
//! can be followed in any feed reader, and the OpenSearch description that lets a browser add the relay
//! as a search engine. Plain structs rendered by templates (`templates/feed.xml`,
//! `templates/opensearch.xml`, XML-escaped by askama); post content is sanitised like on the pages.

use askama::Template;
use plaza_index::PostHit;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::web::sanitize;

/// The media type of Atom feeds.
pub const ATOM: &str = "application/atom+xml; charset=utf-8";

/// The media type of OpenSearch descriptions.
pub const OPENSEARCH: &str = "application/opensearchdescription+xml; charset=utf-8";

/// One post in a feed.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The object id (a stable, unique IRI).
    pub id: String,
    /// The first words of the post (Atom requires a title).
    pub title: String,
    /// The original post.
    pub url: String,
    /// RFC 3339.
    pub published: String,
    /// Display name or handle.
    pub author_name: String,
    /// The author's profile.
    pub author_url: String,
    /// Language.
    pub lang: Option<String>,
    /// Hashtags.
    pub tags: Vec<String>,
    /// Sanitised content (escaped again by the template, as Atom `type="html"` wants).
    pub content_html: String,
}

/// Longest entry title, in characters.
const TITLE_CHARS: usize = 80;

fn title_of(hit: &PostHit) -> String {
    let post = &hit.post;
    let source = [
        post.title.as_deref(),
        Some(post.spoiler_text.as_str()),
        Some(post.text.as_str()),
    ]
    .into_iter()
    .flatten()
    .map(str::trim)
    .find(|t| !t.is_empty())
    .unwrap_or("(no text)");
    let words = source.split_whitespace().collect::<Vec<_>>().join(" ");
    if words.chars().count() > TITLE_CHARS {
        let cut: String = words.chars().take(TITLE_CHARS - 1).collect();
        format!("{}…", cut.trim_end())
    } else {
        words
    }
}

impl Entry {
    /// The entry of a post.
    pub fn from_hit(hit: &PostHit) -> Entry {
        let post = &hit.post;
        let account = &hit.account;
        Entry {
            id: post.uri.clone(),
            title: title_of(hit),
            url: if post.url.is_empty() {
                post.uri.clone()
            } else {
                post.url.clone()
            },
            published: post.created_at.clone(),
            author_name: if account.display_name.trim().is_empty() {
                format!("@{}", account.acct)
            } else {
                account.display_name.clone()
            },
            author_url: account.url.clone(),
            lang: post.language.clone(),
            tags: post.tags.clone(),
            content_html: sanitize::content(&post.content_html),
        }
    }
}

/// An Atom feed.
#[derive(Template)]
#[template(path = "feed.xml")]
pub struct Feed {
    /// The feed's own address (also its id).
    pub self_url: String,
    /// The page it mirrors.
    pub html_url: String,
    /// Title.
    pub title: String,
    /// Subtitle.
    pub subtitle: String,
    /// Newest entry's time, or now.
    pub updated: String,
    /// Plaza's version.
    pub version: &'static str,
    /// Entries, newest first.
    pub entries: Vec<Entry>,
}

impl Feed {
    /// A feed of `hits`.
    pub fn new(
        self_url: String,
        html_url: String,
        title: String,
        subtitle: String,
        hits: &[PostHit],
    ) -> Feed {
        let entries: Vec<Entry> = hits.iter().map(Entry::from_hit).collect();
        let updated = entries
            .iter()
            .map(|e| e.published.as_str())
            .max()
            .map(str::to_owned)
            .unwrap_or_else(|| {
                OffsetDateTime::now_utc()
                    .replace_nanosecond(0)
                    .unwrap_or_else(|_| OffsetDateTime::now_utc())
                    .format(&Rfc3339)
                    .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
            });
        Feed {
            self_url,
            html_url,
            title,
            subtitle,
            updated,
            version: env!("CARGO_PKG_VERSION"),
            entries,
        }
    }
}

/// Longest OpenSearch `ShortName` (the specification's limit).
const SHORT_NAME_CHARS: usize = 16;

/// The OpenSearch description.
#[derive(Template)]
#[template(path = "opensearch.xml")]
pub struct OpenSearch {
    /// The relay's name, cut to 16 characters.
    pub short_name: String,
    /// A sentence.
    pub description: String,
    /// The relay's base URL.
    pub base: String,
}

impl OpenSearch {
    /// The description of the relay named `name` at `base`.
    pub fn new(name: &str, base: &str) -> OpenSearch {
        OpenSearch {
            short_name: name.chars().take(SHORT_NAME_CHARS).collect(),
            description: format!("Search the posts indexed by {name}"),
            base: base.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plaza_index::{AccountView, PostView};

    fn hit(text: &str, content_html: &str) -> PostHit {
        PostHit {
            post: PostView {
                key: 1,
                uri: "https://a.example/notes/1".into(),
                url: "https://a.example/@alice/1".into(),
                kind: "Note".into(),
                title: None,
                content_html: content_html.into(),
                text: text.into(),
                spoiler_text: String::new(),
                sensitive: false,
                language: Some("en".into()),
                created_at: "2026-11-26T10:00:00Z".into(),
                instance: "a.example".into(),
                author_uri: "https://a.example/users/alice".into(),
                author_acct: "alice@a.example".into(),
                tags: vec!["coop".into()],
                mentions: vec![],
                emojis: vec![],
                media: vec![],
                in_reply_to: None,
                is_quote: false,
                has_poll: false,
            },
            account: AccountView::unknown(
                "https://a.example/users/alice",
                "alice@a.example",
                "a.example",
            ),
            score: 1.0,
            snippet_html: String::new(),
            reply_to: None,
        }
    }

    #[test]
    fn atom_feed_is_escaped_and_sanitised() {
        let feed = Feed::new(
            "https://relay.example/search.atom?q=a&amp;b".into(),
            "https://relay.example/search?q=a".into(),
            "Search: <b>".into(),
            "sub".into(),
            &[hit(
                "Bakery & co <3",
                "<p>Bakery &amp; co <script>alert(1)</script><a href=\"javascript:x\">l</a></p>",
            )],
        );
        let xml = feed.render().expect("render");
        assert!(xml.starts_with("<?xml"), "{xml}");
        // askama escapes with numeric references: `&#60;` is `<`, `&#38;` is `&`.
        assert!(xml.contains("<title>Search: &#60;b&#62;</title>"), "{xml}");
        assert!(
            xml.contains("<title>Bakery &#38; co &#60;3</title>"),
            "{xml}"
        );
        assert!(
            xml.contains("<updated>2026-11-26T10:00:00Z</updated>"),
            "{xml}"
        );
        assert!(xml.contains("<category term=\"coop\"/>"), "{xml}");
        assert!(!xml.contains("<script"), "{xml}");
        assert!(!xml.contains("alert(1)"), "{xml}");
        assert!(!xml.contains("javascript:"), "{xml}");
        assert!(
            xml.contains("&#60;p&#62;Bakery"),
            "content is escaped HTML: {xml}"
        );
    }

    #[test]
    fn long_titles_are_cut() {
        let long = "word ".repeat(40);
        let h = hit(&long, "");
        assert!(title_of(&h).chars().count() <= TITLE_CHARS);
        assert!(title_of(&h).ends_with('…'));
    }

    #[test]
    fn opensearch_names_the_search_urls() {
        let xml = OpenSearch::new("A very long relay name indeed", "https://relay.example")
            .render()
            .expect("render");
        assert!(
            xml.contains("<ShortName>A very long rela</ShortName>"),
            "{xml}"
        );
        assert!(
            xml.contains("template=\"https://relay.example/search?q={searchTerms}\""),
            "{xml}"
        );
    }
}
