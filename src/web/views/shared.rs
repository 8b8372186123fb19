//! What every page shares: the layout, links, post and profile cards, facets, the pager, the error page.

use askama::Template;
use plaza_index::{AccountView, PostHit, ProfileHit};

use crate::config::Config;
use crate::web::media_proxy::MediaProxy;
use crate::web::sanitize;

/// Results per page.
pub const PAGE_SIZE: usize = 20;

/// The language of the pages' own text.
pub const UI_LANG: &str = "en";

/// Tags people look for co-ops with, offered as quick filters on the directory.
pub const COOP_TAGS: [&str; 5] = [
    "coop",
    "cooperative",
    "platformcoop",
    "workercoop",
    "mutualaid",
];

/// What every page carries: title, the relay's name, which section is current, and its feed.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The `<title>` and the page's heading.
    pub title: String,
    /// The relay's name (from the configuration).
    pub relay_name: String,
    /// The current section: `home`, `search`, `directory`, `topics`, `instances`, `about` or `tag`.
    pub section: &'static str,
    /// The page's Atom feed (`<link rel="alternate">`), if it has one.
    pub feed: Option<Link>,
    /// The query shown in the header's search box.
    pub query: String,
}

impl Layout {
    /// A layout for `section` titled `title`.
    pub fn new(config: &Config, section: &'static str, title: impl Into<String>) -> Layout {
        Layout {
            title: title.into(),
            relay_name: config.relay_name.clone(),
            section,
            feed: None,
            query: String::new(),
        }
    }

    /// `aria-current="page"` for the navigation link of the current section.
    pub fn current(&self, section: &str) -> &'static str {
        if self.section == section {
            "page"
        } else {
            "false"
        }
    }
}

/// A link: text and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// What the link says.
    pub label: String,
    /// Where it goes.
    pub href: String,
}

/// A hashtag as shown on a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagLink {
    /// The name without `#`.
    pub name: String,
    /// Its page on this relay.
    pub href: String,
}

fn tag_links(names: &[String]) -> Vec<TagLink> {
    names
        .iter()
        .map(|name| TagLink {
            name: name.clone(),
            href: tag_path(name),
        })
        .collect()
}

/// The relay's page of a hashtag.
pub fn tag_path(name: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
    format!("/tags/{encoded}")
}

/// `/path?k=v&…` with the pairs whose value is not empty.
pub fn path_with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (key, value) in pairs {
        if !value.is_empty() {
            query.append_pair(key, value);
            any = true;
        }
    }
    if any {
        format!("{path}?{}", query.finish())
    } else {
        path.to_owned()
    }
}

/// A date-time as shown: `2026-11-26 14:35 UTC` from RFC 3339 (as it came when it is not one).
pub fn display_time(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(10..11), rfc3339.get(11..16)) {
        (Some(date), Some("T"), Some(time)) if rfc3339.ends_with('Z') => {
            format!("{date} {time} UTC")
        }
        (Some(date), Some("T"), Some(time)) => format!("{date} {time}"),
        _ => rfc3339.to_owned(),
    }
}

/// The author of a post or the owner of a profile, as shown.
#[derive(Debug, Clone)]
pub struct Author {
    /// Display name, or the username when there is none.
    pub name: String,
    /// `user@host`.
    pub acct: String,
    /// The profile on its own server.
    pub url: String,
    /// The avatar through the relay's proxy.
    pub avatar: Option<String>,
    /// The actor type, lowercase (`organization`…).
    pub kind: &'static str,
}

impl Author {
    fn from_account(account: &AccountView, media: &MediaProxy) -> Author {
        let name = if account.display_name.trim().is_empty() {
            account.username.clone()
        } else {
            account.display_name.clone()
        };
        Author {
            name,
            acct: account.acct.clone(),
            url: account.url.clone(),
            avatar: account.avatar.as_deref().and_then(|a| media.link(a)),
            kind: account.actor_type.as_str(),
        }
    }

    /// The actor type as a label, for anything but a person.
    pub fn badge(&self) -> &'static str {
        type_label(self.kind, false)
    }
}

/// A readable name of an actor type (`""` for a person when `person` is false).
pub fn type_label(kind: &str, person: bool) -> &'static str {
    match kind {
        "organization" => "Organization",
        "group" => "Group",
        "service" => "Service",
        "application" => "Application",
        "person" if person => "Person",
        _ => "",
    }
}

/// One post on a page.
#[derive(Debug, Clone)]
pub struct PostCard {
    /// Its author.
    pub author: Author,
    /// The original post on its server.
    pub url: String,
    /// The instance it came from.
    pub instance: String,
    /// Publication time, RFC 3339 (for `<time datetime>`).
    pub published: String,
    /// Publication time as shown.
    pub published_text: String,
    /// Its language, for `lang`.
    pub lang: Option<String>,
    /// The content warning.
    pub spoiler: String,
    /// Sanitised content (tag pages) or the sanitised highlighted snippet (search pages).
    pub body_html: String,
    /// Title of an article.
    pub title: Option<String>,
    /// Hashtags.
    pub tags: Vec<TagLink>,
    /// Attachments (not shown, counted).
    pub media: usize,
}

impl PostCard {
    /// A search hit: the highlighted snippet as the body.
    pub fn snippet(hit: &PostHit, media: &MediaProxy) -> PostCard {
        Self::build(hit, media, sanitize::snippet(&hit.snippet_html))
    }

    /// A timeline entry: the whole content as the body.
    pub fn full(hit: &PostHit, media: &MediaProxy) -> PostCard {
        Self::build(hit, media, sanitize::content(&hit.post.content_html))
    }

    fn build(hit: &PostHit, media: &MediaProxy, body_html: String) -> PostCard {
        let post = &hit.post;
        PostCard {
            author: Author::from_account(&hit.account, media),
            url: if post.url.is_empty() {
                post.uri.clone()
            } else {
                post.url.clone()
            },
            instance: post.instance.clone(),
            published: post.created_at.clone(),
            published_text: display_time(&post.created_at),
            lang: post.language.clone(),
            spoiler: post.spoiler_text.clone(),
            body_html,
            title: post.title.clone().filter(|t| !t.trim().is_empty()),
            tags: tag_links(&post.tags),
            media: post.media.len(),
        }
    }
}

/// A profile field.
#[derive(Debug, Clone)]
pub struct Field {
    /// The label, text.
    pub name: String,
    /// The value, sanitised HTML.
    pub value_html: String,
}

/// One profile in the directory.
#[derive(Debug, Clone)]
pub struct ProfileCard {
    /// Name, handle, profile link, avatar.
    pub author: Author,
    /// Sanitised bio.
    pub bio_html: String,
    /// Language of the bio, for `lang`.
    pub lang: Option<String>,
    /// Profile fields.
    pub fields: Vec<Field>,
    /// Bio and featured hashtags.
    pub tags: Vec<TagLink>,
    /// The instance.
    pub instance: String,
}

impl ProfileCard {
    /// The card of a directory hit.
    pub fn from_hit(hit: &ProfileHit, media: &MediaProxy) -> ProfileCard {
        let account = &hit.account;
        let mut tags = account.tags.clone();
        for t in &account.featured_tags {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        ProfileCard {
            author: Author::from_account(account, media),
            bio_html: sanitize::content(&account.note_html),
            lang: account.language.clone(),
            fields: account
                .fields
                .iter()
                .map(|f| Field {
                    name: f.name.clone(),
                    value_html: sanitize::content(&f.value_html),
                })
                .collect(),
            tags: tag_links(&tags),
            instance: account.instance.clone(),
        }
    }
}

/// One value of a facet: a link that narrows (or, when active, widens) the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FacetLink {
    /// The value as shown.
    pub label: String,
    /// Matching documents.
    pub count: u64,
    /// The page with the query narrowed by this value (or without it, when active).
    pub href: String,
    /// The query already has this value.
    pub active: bool,
}

/// A facet: its name and values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FacetGroup {
    /// `Instance`, `Language`…
    pub title: &'static str,
    /// Its values.
    pub links: Vec<FacetLink>,
    /// The counts are estimates from a sample of the matches (shown with "≈").
    pub estimated: bool,
}

/// `q` with `token` added, or removed when it is there already; and whether it was there.
pub fn toggle_token(q: &str, token: &str) -> (String, bool) {
    let words: Vec<&str> = q.split_whitespace().collect();
    let present = words.iter().any(|w| w.eq_ignore_ascii_case(token));
    if present {
        let rest: Vec<&str> = words
            .into_iter()
            .filter(|w| !w.eq_ignore_ascii_case(token))
            .collect();
        (rest.join(" "), true)
    } else if words.is_empty() {
        (token.to_owned(), false)
    } else {
        (format!("{} {token}", words.join(" ")), false)
    }
}

/// Previous/next links and where a listing stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pager {
    /// The previous page.
    pub prev: Option<String>,
    /// The next page.
    pub next: Option<String>,
    /// This page, from 1.
    pub page: usize,
    /// Pages in all (within the result window).
    pub pages: usize,
}

impl Pager {
    /// Pages of [`PAGE_SIZE`] over `total` results, at most `window` results deep; `href(n)` is the
    /// address of page `n`. A `page` past the last is the last.
    pub fn new(page: usize, total: u64, window: usize, href: impl Fn(usize) -> String) -> Pager {
        let reachable = usize::try_from(total).unwrap_or(usize::MAX).min(window);
        let pages = reachable.div_ceil(PAGE_SIZE).max(1);
        let page = page.clamp(1, pages);
        Pager {
            prev: (page > 1).then(|| href(page - 1)),
            next: (page < pages).then(|| href(page + 1)),
            page,
            pages,
        }
    }

    /// Whether there is more than one page.
    pub fn shown(&self) -> bool {
        self.prev.is_some() || self.next.is_some()
    }
}

/// The offset of page `page` (from 1).
pub fn offset_of(page: usize) -> usize {
    page.saturating_sub(1).saturating_mul(PAGE_SIZE)
}

/// An error page (404, 400, 503).
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// Common parts.
    pub layout: Layout,
    /// What went wrong, for a person.
    pub message: String,
}
