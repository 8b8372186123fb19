//! The topic feeds' pages for people: `/topics` (the topics followed here and the curated searches,
//! grouped by kind, each with its followers and newest carried posts) and a topic's own page (what it
//! carries and the three ways to follow it, each as a selectable field: copying needs no JavaScript);
//! and which topic a hashtag page or a search offers to follow.

use askama::Template;

use crate::store::topics::CuratedTopic;
use crate::topics::{Topic, TopicKind};
use crate::web::views::shared::{Layout, Link, PostCard};

/// One topic as listed on `/topics`.
#[derive(Debug, Clone)]
pub struct TopicCard {
    /// How it is written (`#coop`, `language: es`; a curated search's own name).
    pub label: String,
    /// A curated search's query.
    pub query: Option<String>,
    /// Its page.
    pub href: String,
    /// Who follows it.
    pub followers: u64,
    /// Posts it carried within the log's retention.
    pub carried: u64,
    /// Its newest carried posts still in the index.
    pub posts: Vec<PostCard>,
}

impl TopicCard {
    /// The card of `topic` (with its `curated` definition for a search).
    pub fn new(
        topic: &Topic,
        curated: Option<&CuratedTopic>,
        followers: u64,
        carried: u64,
        posts: Vec<PostCard>,
    ) -> TopicCard {
        TopicCard {
            label: title(topic, curated),
            query: curated.map(|c| c.query.clone()),
            href: topic.path(),
            followers,
            carried,
            posts,
        }
    }
}

/// The topics of one kind.
#[derive(Debug, Clone)]
pub struct TopicGroup {
    /// The heading: `Hashtags`, `Languages`, `Instances`, `Curated searches`.
    pub title: &'static str,
    /// The anchor of its section.
    pub id: &'static str,
    /// Its topics, most followed first.
    pub topics: Vec<TopicCard>,
}

/// The heading of a kind's group on `/topics`.
pub fn kind_heading(kind: TopicKind) -> &'static str {
    match kind {
        TopicKind::Tag => "Hashtags",
        TopicKind::Language => "Languages",
        TopicKind::Instance => "Instances",
        TopicKind::Search => "Curated searches",
    }
}

/// `cards` grouped by kind, in the order of [`TopicKind::ALL`], keeping their order within a group;
/// kinds without a topic are left out.
pub fn group_by_kind(cards: Vec<(TopicKind, TopicCard)>) -> Vec<TopicGroup> {
    TopicKind::ALL
        .iter()
        .map(|&kind| TopicGroup {
            title: kind_heading(kind),
            id: kind.as_str(),
            topics: cards
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, card)| card.clone())
                .collect(),
        })
        .filter(|g| !g.topics.is_empty())
        .collect()
}

/// `GET /topics`.
#[derive(Template)]
#[template(path = "topics.html")]
pub struct TopicsPage {
    /// Common parts.
    pub layout: Layout,
    /// Topic feeds are on (`max_topics` > 0).
    pub enabled: bool,
    /// The topics, by kind.
    pub groups: Vec<TopicGroup>,
}

/// A topic's heading: a curated search's name, otherwise its label.
pub fn title(topic: &Topic, curated: Option<&CuratedTopic>) -> String {
    match curated {
        Some(c) if topic.kind() == TopicKind::Search => c.name.clone(),
        _ => topic.label(),
    }
}

/// What a topic carries, in a sentence (a curated search's query is shown apart).
pub fn lead(topic: &Topic) -> String {
    const CONSENT: &str = "that reach this relay and whose authors agreed to be found";
    match topic.kind() {
        TopicKind::Tag => format!("The public posts with {} {CONSENT}.", topic.label()),
        TopicKind::Language => format!(
            "The public posts written in the language {} (BCP 47) {CONSENT}.",
            topic.name()
        ),
        TopicKind::Instance => format!(
            "The public posts from {}, an instance subscribed to this relay, whose authors agreed to be found.",
            topic.name()
        ),
        TopicKind::Search => format!(
            "A search this relay's admins curated: the public posts matching its query {CONSENT}."
        ),
    }
}

/// `GET /topics/{kind}/{name}` in a browser.
#[derive(Template)]
#[template(path = "topic.html")]
pub struct TopicPage {
    /// Common parts.
    pub layout: Layout,
    /// The heading: `#coop`, or a curated search's name.
    pub label: String,
    /// What the topic carries, in a sentence.
    pub lead: String,
    /// A curated search's query.
    pub query: Option<String>,
    /// Who follows it.
    pub followers: u64,
    /// Posts it carried within the log's retention.
    pub carried: u64,
    /// Its newest carried posts still in the index.
    pub posts: Vec<PostCard>,
    /// The handle a person follows, `tag.coop@relay.example`.
    pub handle: String,
    /// The inbox a Mastodon admin adds as a relay.
    pub inbox: String,
    /// The actor a LitePub admin follows.
    pub actor: String,
}

/// The topic a search for `q` amounts to, if any: exactly one `#tag`, exactly one `language:` or
/// `instance:` filter, or the query of one of the `curated` searches (compared word for word). Whether
/// the relay offers it is the caller's to check.
pub fn topic_of_query(q: &str, curated: &[CuratedTopic]) -> Option<Topic> {
    let words: Vec<&str> = q.split_whitespace().collect();
    if let Some(search) = curated
        .iter()
        .find(|c| c.query.split_whitespace().eq(words.iter().copied()))
    {
        return Topic::search(&search.slug);
    }
    let [word] = words.as_slice() else {
        return None;
    };
    if let Some(tag) = word.strip_prefix('#') {
        return Topic::tag(tag);
    }
    let (field, value) = word.split_once(':')?;
    match field.to_ascii_lowercase().as_str() {
        "language" => Topic::language(value),
        "instance" => Topic::instance(value),
        _ => None,
    }
}

/// The "follow this topic" link to `topic`.
pub fn follow_link(topic: &Topic, curated: Option<&CuratedTopic>) -> Link {
    Link {
        label: title(topic, curated),
        href: topic.path(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curated() -> CuratedTopic {
        CuratedTopic {
            slug: "co-ops".into(),
            name: "Worker co-ops".into(),
            query: "type:organization #coop OR #cooperative".into(),
            created_at: 0,
        }
    }

    #[test]
    fn a_query_is_a_topic_when_it_is_one_tag_one_filter_or_a_curated_search() {
        let searches = [curated()];
        let topic = |q: &str| topic_of_query(q, &searches).map(|t| t.path());
        assert_eq!(topic(" #CoOp ").as_deref(), Some("/topics/tag/coop"));
        assert_eq!(
            topic("language:pt-BR").as_deref(),
            Some("/topics/language/pt")
        );
        assert_eq!(topic("Language:es").as_deref(), Some("/topics/language/es"));
        assert_eq!(
            topic("instance:Social.Coop").as_deref(),
            Some("/topics/instance/social.coop")
        );
        assert_eq!(
            topic("type:organization  #coop OR #cooperative").as_deref(),
            Some("/topics/search/co-ops")
        );
        for q in [
            "",
            "coop",
            "#coop bakery",
            "#coop #bread",
            "-#coop",
            "language:es #coop",
            "language:klingon",
            "from:a@b.example",
            "#co op",
            "type:organization #coop",
        ] {
            assert_eq!(topic(q), None, "{q:?}");
        }
    }

    #[test]
    fn cards_group_by_kind_in_page_order() {
        let card = |topic: &Topic| (topic.kind(), TopicCard::new(topic, None, 1, 0, Vec::new()));
        let es = Topic::language("es").expect("es");
        let coop = Topic::tag("coop").expect("tag");
        let bread = Topic::tag("bread").expect("tag");
        let groups = group_by_kind(vec![card(&es), card(&coop), card(&bread)]);
        let shown: Vec<(&str, Vec<&str>)> = groups
            .iter()
            .map(|g| (g.title, g.topics.iter().map(|t| t.href.as_str()).collect()))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("Hashtags", vec!["/topics/tag/coop", "/topics/tag/bread"]),
                ("Languages", vec!["/topics/language/es"]),
            ]
        );
    }

    #[test]
    fn a_curated_search_shows_its_name_and_query() {
        let search = Topic::search("co-ops").expect("slug");
        let c = curated();
        let card = TopicCard::new(&search, Some(&c), 3, 7, Vec::new());
        assert_eq!(card.label, "Worker co-ops");
        assert_eq!(card.query.as_deref(), Some(c.query.as_str()));
        assert!(lead(&search).contains("admins curated"));
        let es = Topic::language("es").expect("es");
        assert!(lead(&es).contains("language es"), "{}", lead(&es));
        let host = Topic::instance("social.coop").expect("host");
        assert!(lead(&host).starts_with("The public posts from social.coop"));
        assert_eq!(follow_link(&search, Some(&c)).href, "/topics/search/co-ops");
    }
}
