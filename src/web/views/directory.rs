//! The directory of profiles: its filters, facets and quick tags.

use askama::Template;
use plaza_index::{ActorType, FacetCount, Facets};

use crate::web::views::shared::{
    COOP_TAGS, FacetGroup, FacetLink, Layout, Pager, ProfileCard, path_with_query, type_label,
};

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
        FacetGroup {
            title,
            links,
            estimated: facets.sampled,
        }
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
