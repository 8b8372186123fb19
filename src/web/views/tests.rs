//! Tests of what the pages show, without a server.

use plaza_index::{FacetCount, Facets};

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
        sampled: false,
    };
    let groups = search_facets("bakery language:de", "newest", &facets);
    assert!(groups.iter().all(|g| !g.estimated));
    let sampled = Facets {
        sampled: true,
        ..facets.clone()
    };
    assert!(
        search_facets("bakery", "newest", &sampled)
            .iter()
            .all(|g| g.estimated)
    );
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
    // A page past the last is the last: no link back to a page that does not exist either.
    let p = Pager::new(999, 45, 1000, href);
    assert_eq!(
        (p.page, p.prev.as_deref(), p.next),
        (3, Some("/search?page=2"), None)
    );
    let p = Pager::new(usize::MAX, 1_000_000, 1000, href);
    assert_eq!((p.page, p.prev.as_deref()), (50, Some("/search?page=49")));
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

#[test]
fn sampled_facet_counts_are_shown_as_estimates() {
    use askama::Template;
    let config = crate::config::Config::default();
    let facets = Facets {
        instance: vec![FacetCount {
            value: "a.example".into(),
            count: 4100,
        }],
        ..Facets::default()
    };
    let mut page = SearchPage::new(&config, "bakery", "newest", false);
    page.facets = search_facets("bakery", "newest", &facets);
    let html = page.render().expect("render");
    assert!(html.contains(">4100</span>"), "{html}");
    assert!(!html.contains('≈'));
    page.facets = search_facets(
        "bakery",
        "newest",
        &Facets {
            sampled: true,
            ..facets
        },
    );
    let html = page.render().expect("render");
    assert!(
        html.contains(r#"title="estimated from a sample of the matches">≈4100</span>"#),
        "{html}"
    );
}
