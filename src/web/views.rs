//! What the web pages show, as plain Rust: the page structs the templates (`templates/`, askama,
//! checked at compile time) render, and the functions that build them from search results, the
//! configuration and the store. No HTTP here; [`crate::web::pages`] does the I/O and calls these.
//!
//! Remote HTML (post content, bios, field values, snippets) is sanitised here (see
//! [`crate::web::sanitize`]) and is the only markup the templates output unescaped; every other string
//! is escaped by the templates. Remote images go through the relay's proxy
//! ([`crate::web::media_proxy`]) or are not shown.

use askama::Template;
use plaza_index::{
    AccountView, ActorType, FacetCount, Facets, InstanceView, Page, PostHit, ProfileHit,
};

use crate::config::Config;
use crate::store::Subscriber;
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
    /// The current section: `home`, `search`, `directory`, `instances`, `about` or `tag`.
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

/// The facet groups of a search of posts, each value linking to `/search` with the query narrowed.
pub fn search_facets(q: &str, sort: &str, facets: &Facets) -> Vec<FacetGroup> {
    let group = |title: &'static str, counts: &[FacetCount], token: &dyn Fn(&str) -> String| {
        let links = counts
            .iter()
            .filter(|c| !c.value.is_empty() && !c.value.contains(char::is_whitespace))
            .map(|c| {
                let (narrowed, active) = toggle_token(q, &token(&c.value));
                FacetLink {
                    label: c.value.clone(),
                    count: c.count,
                    href: path_with_query("/search", &[("q", &narrowed), ("sort", sort)]),
                    active,
                }
            })
            .collect::<Vec<_>>();
        FacetGroup { title, links }
    };
    let mut groups = vec![
        group("Instance", &facets.instance, &|v| format!("instance:{v}")),
        group("Language", &facets.language, &|v| format!("language:{v}")),
        group("Hashtag", &facets.tag, &|v| format!("#{v}")),
        group("Author type", &facets.actor_type, &|v| format!("type:{v}")),
    ];
    for group in groups.iter_mut() {
        for link in group.links.iter_mut() {
            match group.title {
                "Author type" => link.label = type_label(&link.label, true).to_owned(),
                "Hashtag" => link.label = format!("#{}", link.label),
                _ => {}
            }
        }
    }
    groups.retain(|g| !g.links.is_empty());
    groups
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
    /// address of page `n`.
    pub fn new(page: usize, total: u64, window: usize, href: impl Fn(usize) -> String) -> Pager {
        let reachable = usize::try_from(total).unwrap_or(usize::MAX).min(window);
        let pages = reachable.div_ceil(PAGE_SIZE).max(1);
        let page = page.clamp(1, pages.max(page));
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

/// How a server family joins: where to paste which address.
#[derive(Debug, Clone)]
pub struct JoinStep {
    /// The software.
    pub software: &'static str,
    /// Where the admin goes.
    pub place: &'static str,
    /// What they paste.
    pub paste: String,
}

/// The join instructions for every server family (the README's table).
pub fn join_steps(base: &str) -> Vec<JoinStep> {
    let inbox = format!("{base}/inbox");
    let actor = format!("{base}/actor");
    vec![
        JoinStep {
            software: "Mastodon",
            place: "Preferences → Administration → Relays → Add new relay",
            paste: inbox.clone(),
        },
        JoinStep {
            software: "Misskey, Firefish, Sharkey",
            place: "Control panel → Relays → Add relay",
            paste: inbox.clone(),
        },
        JoinStep {
            software: "GoToSocial",
            place: "Admin settings → Relays, in versions that support relays",
            paste: inbox,
        },
        JoinStep {
            software: "Pleroma, Akkoma",
            place: "admin-fe → Relays → Follow relay (or mix pleroma.relay follow …)",
            paste: actor,
        },
    ]
}

/// Figures on the home page.
#[derive(Debug, Clone, Copy, Default)]
pub struct Figures {
    /// Subscribed instances.
    pub subscribers: usize,
    /// Posts indexed (`None`: search is off).
    pub posts: Option<u64>,
    /// Profiles listed.
    pub profiles: Option<u64>,
}

/// `GET /`.
#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    /// Common parts.
    pub layout: Layout,
    /// The relay's summary.
    pub summary: String,
    /// Its base URL.
    pub base: String,
    /// Join instructions.
    pub join: Vec<JoinStep>,
    /// Counts.
    pub figures: Figures,
    /// The newest posts.
    pub recent: Vec<PostCard>,
    /// Quick hashtag links.
    pub tags: Vec<TagLink>,
}

/// `GET /search`.
#[derive(Template)]
#[template(path = "search.html")]
pub struct SearchPage {
    /// Common parts.
    pub layout: Layout,
    /// The query as typed.
    pub q: String,
    /// `relevance` or `newest`.
    pub sort: &'static str,
    /// Links to the other order.
    pub sort_links: Vec<(Link, bool)>,
    /// The parser's reason when the query is malformed.
    pub error: Option<String>,
    /// Search is turned off.
    pub disabled: bool,
    /// Matches in all.
    pub total: u64,
    /// The time budget ran out.
    pub partial: bool,
    /// This page of results.
    pub results: Vec<PostCard>,
    /// Facets.
    pub facets: Vec<FacetGroup>,
    /// Pages.
    pub pager: Pager,
}

impl SearchPage {
    /// The search page for `q` in order `sort` (`relevance` or `newest`), before any result.
    pub fn new(config: &Config, q: &str, sort: &'static str, disabled: bool) -> SearchPage {
        let mut layout = Layout::new(
            config,
            "search",
            if q.is_empty() {
                "Search".to_owned()
            } else {
                format!("{q} – search")
            },
        );
        layout.query = q.to_owned();
        if !q.is_empty() {
            layout.feed = Some(Link {
                label: format!("Posts matching “{q}”"),
                href: path_with_query("/search.atom", &[("q", q)]),
            });
        }
        let sort_links = [("relevance", "Best match"), ("newest", "Newest first")]
            .into_iter()
            .map(|(value, label)| {
                (
                    Link {
                        label: label.to_owned(),
                        href: path_with_query("/search", &[("q", q), ("sort", value)]),
                    },
                    value == sort,
                )
            })
            .collect();
        SearchPage {
            layout,
            q: q.to_owned(),
            sort,
            sort_links,
            error: None,
            disabled,
            total: 0,
            partial: false,
            results: Vec::new(),
            facets: Vec::new(),
            pager: Pager::default(),
        }
    }

    /// Shows `found`, page `page` of results reaching `window` deep; avatars through `media`.
    pub fn show(&mut self, found: &Page<PostHit>, page: usize, window: usize, media: &MediaProxy) {
        self.total = found.total;
        self.partial = found.partial;
        self.results = found
            .hits
            .iter()
            .map(|hit| PostCard::snippet(hit, media))
            .collect();
        if let Some(facets) = &found.facets {
            self.facets = search_facets(&self.q, self.sort, facets);
        }
        let (q, sort) = (self.q.as_str(), self.sort);
        self.pager = Pager::new(page, found.total, window, |n| {
            let n = n.to_string();
            path_with_query("/search", &[("q", q), ("sort", sort), ("page", &n)])
        });
    }
}

/// The directory's filters as chosen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryFilters {
    /// Text.
    pub q: String,
    /// Actor type, lowercase, or empty.
    pub kind: String,
    /// Hashtag without `#`, or empty.
    pub tag: String,
    /// Instance host, or empty.
    pub instance: String,
    /// Language code, or empty.
    pub language: String,
}

impl DirectoryFilters {
    /// The directory page with these filters, one of them replaced (`("tag", "coop")`) and a page.
    pub fn href(&self, replace: Option<(&str, &str)>, page: usize) -> String {
        let mut pairs = vec![
            ("q", self.q.as_str()),
            ("type", self.kind.as_str()),
            ("tag", self.tag.as_str()),
            ("instance", self.instance.as_str()),
            ("language", self.language.as_str()),
        ];
        if let Some((key, value)) = replace {
            for pair in pairs.iter_mut() {
                if pair.0 == key {
                    pair.1 = value;
                }
            }
        }
        let page = page.to_string();
        if page != "1" {
            pairs.push(("page", &page));
        }
        path_with_query("/directory", &pairs)
    }

    /// The actor type chosen.
    pub fn actor_type(&self) -> Option<ActorType> {
        ActorType::parse(&self.kind)
    }

    /// Any filter set.
    pub fn any(&self) -> bool {
        *self != DirectoryFilters::default()
    }
}

/// A choice of the type filter.
#[derive(Debug, Clone)]
pub struct TypeOption {
    /// `organization`…, or empty for all.
    pub value: &'static str,
    /// As shown.
    pub label: &'static str,
    /// Chosen.
    pub selected: bool,
    /// The directory with this type.
    pub href: String,
}

/// `GET /directory`.
#[derive(Template)]
#[template(path = "directory.html")]
pub struct DirectoryPage {
    /// Common parts.
    pub layout: Layout,
    /// The filters.
    pub filters: DirectoryFilters,
    /// The type choices.
    pub types: Vec<TypeOption>,
    /// Quick tag filters.
    pub quick_tags: Vec<FacetLink>,
    /// The reason a filter is not usable.
    pub error: Option<String>,
    /// Search is turned off.
    pub disabled: bool,
    /// Profiles in all.
    pub total: u64,
    /// This page.
    pub profiles: Vec<ProfileCard>,
    /// Facets narrowing the filters.
    pub facets: Vec<FacetGroup>,
    /// Pages.
    pub pager: Pager,
}

/// The type choices of the directory.
pub fn type_options(filters: &DirectoryFilters) -> Vec<TypeOption> {
    let kinds: [(&'static str, &'static str); 5] = [
        ("", "All"),
        ("organization", "Organizations"),
        ("group", "Groups"),
        ("person", "People"),
        ("service", "Services"),
    ];
    kinds
        .into_iter()
        .map(|(value, label)| TypeOption {
            value,
            label,
            selected: filters.kind == value,
            href: filters.href(Some(("type", value)), 1),
        })
        .collect()
}

/// The quick hashtag filters of the directory.
pub fn quick_tags(filters: &DirectoryFilters) -> Vec<FacetLink> {
    COOP_TAGS
        .iter()
        .map(|tag| {
            let active = filters.tag.eq_ignore_ascii_case(tag);
            FacetLink {
                label: format!("#{tag}"),
                count: 0,
                href: filters.href(Some(("tag", if active { "" } else { tag })), 1),
                active,
            }
        })
        .collect()
}

/// The directory's facets as filter links.
pub fn directory_facets(filters: &DirectoryFilters, facets: &Facets) -> Vec<FacetGroup> {
    let group = |title: &'static str, key: &str, current: &str, counts: &[FacetCount]| {
        let links = counts
            .iter()
            .filter(|c| !c.value.is_empty())
            .map(|c| {
                let active = current.eq_ignore_ascii_case(&c.value);
                FacetLink {
                    label: match key {
                        "tag" => format!("#{}", c.value),
                        "type" => type_label(&c.value, true).to_owned(),
                        _ => c.value.clone(),
                    },
                    count: c.count,
                    href: filters.href(Some((key, if active { "" } else { &c.value })), 1),
                    active,
                }
            })
            .collect::<Vec<_>>();
        FacetGroup { title, links }
    };
    let mut groups = vec![
        group("Type", "type", &filters.kind, &facets.actor_type),
        group("Hashtag", "tag", &filters.tag, &facets.tag),
        group("Instance", "instance", &filters.instance, &facets.instance),
        group("Language", "language", &filters.language, &facets.language),
    ];
    groups.retain(|g| !g.links.is_empty());
    groups
}

/// One subscribed instance as shown.
#[derive(Debug, Clone)]
pub struct InstanceRow {
    /// Host.
    pub host: String,
    /// Node name from NodeInfo.
    pub name: Option<String>,
    /// `mastodon 4.4.0`.
    pub software: Option<String>,
    /// Users.
    pub users: Option<u64>,
    /// Open, closed or unknown.
    pub registrations: &'static str,
    /// Description from NodeInfo, text.
    pub description: Option<String>,
    /// Subscribed since (hidden when the configuration says so).
    pub since: Option<String>,
    /// Posts indexed.
    pub posts: u64,
}

/// The instance rows: every subscriber, with what the index knows of it from NodeInfo.
pub fn instance_rows(
    subscribers: &[Subscriber],
    known: &[InstanceView],
    show_since: bool,
) -> Vec<InstanceRow> {
    let mut rows: Vec<InstanceRow> = subscribers
        .iter()
        .map(|s| {
            let view = known
                .iter()
                .find(|v| v.host.eq_ignore_ascii_case(&s.authority));
            let software = view.and_then(|v| {
                v.software.as_ref().map(|name| match &v.version {
                    Some(version) => format!("{name} {version}"),
                    None => name.clone(),
                })
            });
            let since = time::OffsetDateTime::from_unix_timestamp(s.created_at)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                });
            InstanceRow {
                host: s.authority.clone(),
                name: view.and_then(|v| v.name.clone()).filter(|n| !n.is_empty()),
                software,
                users: view.and_then(|v| v.users),
                registrations: match view.and_then(|v| v.open_registrations) {
                    Some(true) => "open",
                    Some(false) => "closed",
                    None => "unknown",
                },
                description: view
                    .and_then(|v| v.description.clone())
                    .filter(|d| !d.trim().is_empty()),
                since: since.filter(|_| show_since).map(|t| display_time(&t)),
                posts: view.map_or(0, |v| v.posts),
            }
        })
        .collect();
    rows.sort_by(|a, b| a.host.cmp(&b.host));
    rows
}

/// `GET /instances`.
#[derive(Template)]
#[template(path = "instances.html")]
pub struct InstancesPage {
    /// Common parts.
    pub layout: Layout,
    /// The instances.
    pub rows: Vec<InstanceRow>,
    /// Whether the since column is shown.
    pub show_since: bool,
}

/// How to reach the admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// As configured.
    pub text: String,
    /// A `mailto:` or web link, when it is one.
    pub href: Option<String>,
}

impl Contact {
    /// Reads `admin_contact`: an email address gets a `mailto:` link, a URL a link, a fediverse
    /// handle stays text; `None` when empty.
    pub fn parse(configured: &str) -> Option<Contact> {
        let text = configured.trim();
        if text.is_empty() {
            return None;
        }
        let href = if text.starts_with("https://") || text.starts_with("http://") {
            url::Url::parse(text).ok().map(|u| u.to_string())
        } else if !text.starts_with('@')
            && !text.contains(char::is_whitespace)
            && text.split('@').count() == 2
            && text.split('@').all(|part| !part.is_empty())
        {
            Some(format!("mailto:{text}"))
        } else {
            None
        };
        Some(Contact {
            text: text.to_owned(),
            href,
        })
    }
}

/// `GET /about`.
#[derive(Template)]
#[template(path = "about.html")]
pub struct AboutPage {
    /// Common parts.
    pub layout: Layout,
    /// The relay's base URL.
    pub base: String,
    /// The admin contact.
    pub contact: Option<Contact>,
    /// Search is turned on.
    pub indexing: bool,
    /// Posts older than this many days leave the index.
    pub retention_days: u64,
    /// An instance that leaves has what was indexed from it removed.
    pub purges: bool,
}

/// `GET /tags/{tag}`.
#[derive(Template)]
#[template(path = "tag.html")]
pub struct TagPage {
    /// Common parts.
    pub layout: Layout,
    /// The tag, normalised, without `#`.
    pub tag: String,
    /// Posts with it.
    pub uses: u64,
    /// Search is turned off.
    pub disabled: bool,
    /// The newest posts.
    pub posts: Vec<PostCard>,
    /// The next (older) page.
    pub older: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_toggle() {
        assert_eq!(
            toggle_token("bakery", "instance:a.example"),
            ("bakery instance:a.example".into(), false)
        );
        assert_eq!(
            toggle_token("bakery  instance:A.example", "instance:a.example"),
            ("bakery".into(), true)
        );
        assert_eq!(toggle_token("", "#coop"), ("#coop".into(), false));
    }

    #[test]
    fn facets_narrow_the_query() {
        let facets = Facets {
            instance: vec![FacetCount {
                value: "a.example".into(),
                count: 3,
            }],
            language: vec![FacetCount {
                value: "de".into(),
                count: 2,
            }],
            tag: vec![FacetCount {
                value: "coop".into(),
                count: 1,
            }],
            actor_type: vec![FacetCount {
                value: "organization".into(),
                count: 1,
            }],
            month: vec![],
        };
        let groups = search_facets("bakery language:de", "newest", &facets);
        let labels: Vec<&str> = groups
            .iter()
            .flat_map(|g| &g.links)
            .map(|l| l.label.as_str())
            .collect();
        assert_eq!(labels, vec!["a.example", "de", "#coop", "Organization"]);
        let hrefs: Vec<(&str, bool)> = groups
            .iter()
            .flat_map(|g| &g.links)
            .map(|l| (l.href.as_str(), l.active))
            .collect();
        assert_eq!(
            hrefs,
            vec![
                (
                    "/search?q=bakery+language%3Ade+instance%3Aa.example&sort=newest",
                    false
                ),
                ("/search?q=bakery&sort=newest", true),
                ("/search?q=bakery+language%3Ade+%23coop&sort=newest", false),
                (
                    "/search?q=bakery+language%3Ade+type%3Aorganization&sort=newest",
                    false
                ),
            ]
        );
    }

    #[test]
    fn pager_stays_in_the_window() {
        let href = |n: usize| format!("/search?page={n}");
        let p = Pager::new(1, 45, 1000, href);
        assert_eq!(
            (p.prev, p.next.as_deref(), p.pages),
            (None, Some("/search?page=2"), 3)
        );
        let p = Pager::new(3, 45, 1000, href);
        assert_eq!((p.prev.as_deref(), p.next), (Some("/search?page=2"), None));
        let p = Pager::new(1, 1_000_000, 1000, href);
        assert_eq!(p.pages, 50);
        let p = Pager::new(1, 0, 1000, href);
        assert!(!p.shown());
        assert_eq!(offset_of(1), 0);
        assert_eq!(offset_of(3), 40);
    }

    #[test]
    fn join_addresses_are_the_ones_to_paste() {
        let steps = join_steps("https://relay.example.org");
        assert_eq!(steps[0].paste, "https://relay.example.org/inbox");
        assert_eq!(steps[1].paste, "https://relay.example.org/inbox");
        assert_eq!(steps[3].paste, "https://relay.example.org/actor");
        assert!(steps[3].software.contains("Pleroma"));
    }

    #[test]
    fn contacts() {
        assert_eq!(Contact::parse("  "), None);
        assert_eq!(
            Contact::parse("admin@relay.example")
                .unwrap()
                .href
                .as_deref(),
            Some("mailto:admin@relay.example")
        );
        assert_eq!(Contact::parse("@admin@relay.example").unwrap().href, None);
        assert_eq!(
            Contact::parse("https://relay.example/contact")
                .unwrap()
                .href
                .as_deref(),
            Some("https://relay.example/contact")
        );
        assert_eq!(Contact::parse("javascript:alert(1)").unwrap().href, None);
    }

    #[test]
    fn directory_links_keep_the_other_filters() {
        let f = DirectoryFilters {
            kind: "organization".into(),
            tag: "coop".into(),
            ..DirectoryFilters::default()
        };
        assert_eq!(
            f.href(Some(("instance", "a.example")), 1),
            "/directory?type=organization&tag=coop&instance=a.example"
        );
        assert_eq!(
            f.href(Some(("tag", "")), 2),
            "/directory?type=organization&page=2"
        );
        let types = type_options(&f);
        assert!(
            types
                .iter()
                .any(|t| t.value == "organization" && t.selected)
        );
        let quick = quick_tags(&f);
        assert!(quick[0].active);
        assert_eq!(quick[0].href, "/directory?type=organization");
    }

    #[test]
    fn times_read_well() {
        assert_eq!(display_time("2026-11-26T14:35:21Z"), "2026-11-26 14:35 UTC");
        assert_eq!(display_time("bogus"), "bogus");
    }
}
