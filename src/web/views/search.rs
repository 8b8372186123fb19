//! The search page: results, facets and the order of a post search.

use askama::Template;
use plaza_index::{FacetCount, Facets, Page, PostHit};

use crate::config::Config;
use crate::web::media_proxy::MediaProxy;
use crate::web::views::shared::{
    FacetGroup, FacetLink, Layout, Link, Pager, PostCard, path_with_query, toggle_token, type_label,
};

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
        FacetGroup {
            title,
            links,
            estimated: facets.sampled,
        }
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
    /// The topic the query amounts to, when the relay offers it to follow.
    pub follow: Option<Link>,
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
            follow: None,
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
