//! What a topic is and how it is written: its kind, its canonical name (a hashtag case-folded exactly as
//! the index folds it, a language as its BCP 47 primary tag, an instance as its lowercase authority, a
//! curated search as the slug its admins gave it), its path under `/topics/` and its WebFinger handle
//! (`tag.coop@relay-host`).

use std::fmt;

/// The kinds of topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TopicKind {
    /// Posts carrying a hashtag.
    Tag,
    /// Posts written in a language.
    Language,
    /// Posts from one subscribed instance.
    Instance,
    /// Posts matching a search the relay's admins defined (`store::topics::CuratedTopic`).
    Search,
}

impl TopicKind {
    /// Every kind, in the order pages list them.
    pub const ALL: [TopicKind; 4] = [
        TopicKind::Tag,
        TopicKind::Language,
        TopicKind::Instance,
        TopicKind::Search,
    ];

    /// The path segment and handle prefix: `tag`, `language`, `instance`, `search`.
    pub fn as_str(self) -> &'static str {
        match self {
            TopicKind::Tag => "tag",
            TopicKind::Language => "language",
            TopicKind::Instance => "instance",
            TopicKind::Search => "search",
        }
    }

    /// The kind of the topic a store key ([`Topic::key`], `tag/coop`) names, without parsing its name.
    pub fn of_key(key: &str) -> Option<TopicKind> {
        TopicKind::parse(key.split_once('/')?.0)
    }

    /// The kind written as in paths and handles.
    pub fn parse(kind: &str) -> Option<TopicKind> {
        match kind {
            "tag" => Some(TopicKind::Tag),
            "language" => Some(TopicKind::Language),
            "instance" => Some(TopicKind::Instance),
            "search" => Some(TopicKind::Search),
            _ => None,
        }
    }
}

/// Longest topic name accepted: names become part of URLs, handles and store keys.
pub const MAX_NAME_CHARS: usize = 100;

/// A topic: a kind and a canonical name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic {
    kind: TopicKind,
    name: String,
}

impl Topic {
    /// The hashtag topic for `raw` (`#Coop`, `coop`), folded as the index folds tags so a topic
    /// matches exactly the posts the index files under that tag; `None` for a name the index would
    /// not treat as a tag.
    pub fn tag(raw: &str) -> Option<Topic> {
        let name = plaza_index::document::normalize_tag(raw)?;
        (name.chars().count() <= MAX_NAME_CHARS).then_some(Topic {
            kind: TopicKind::Tag,
            name,
        })
    }

    /// The language topic for a BCP 47 tag (`pt-BR`, `EN`, `spa`): its primary language, as the
    /// index normalises a post's language.
    pub fn language(raw: &str) -> Option<Topic> {
        Some(Topic {
            kind: TopicKind::Language,
            name: plaza_index::language::normalize(raw)?,
        })
    }

    /// The topic of the instance at `raw` (`Social.Coop`, `127.0.0.5:8080`): its authority,
    /// lowercase; `None` for anything that is not a bare host with an optional port.
    pub fn instance(raw: &str) -> Option<Topic> {
        let name = raw.trim().to_ascii_lowercase();
        let parsed = url::Url::parse(&format!("https://{name}/")).ok()?;
        let authority = match parsed.port() {
            Some(port) => format!("{}:{port}", parsed.host_str()?),
            None => parsed.host_str()?.to_owned(),
        };
        (authority == name && name.len() <= MAX_NAME_CHARS).then_some(Topic {
            kind: TopicKind::Instance,
            name,
        })
    }

    /// The curated search topic with slug `raw`: 1 to 64 lowercase ASCII letters, digits and `-`
    /// (whether the admins defined it is the store's to say).
    pub fn search(raw: &str) -> Option<Topic> {
        let fine = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-');
        fine.then(|| Topic {
            kind: TopicKind::Search,
            name: raw.to_owned(),
        })
    }

    /// The topic of `kind` named `raw`, canonicalised.
    pub fn new(kind: TopicKind, raw: &str) -> Option<Topic> {
        match kind {
            TopicKind::Tag => Topic::tag(raw),
            TopicKind::Language => Topic::language(raw),
            TopicKind::Instance => Topic::instance(raw),
            TopicKind::Search => Topic::search(raw),
        }
    }

    /// The topic a store key (`tag/coop`, see [`Topic::key`]) names.
    pub fn from_key(key: &str) -> Option<Topic> {
        let (kind, name) = key.split_once('/')?;
        Topic::new(TopicKind::parse(kind)?, name)
    }

    /// How the topic is written in the store and in log entries: `tag/coop`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.kind.as_str(), self.name)
    }

    /// The topic a handle's user part names: `tag.coop`, `language.es` (the `acct:` prefix and the
    /// `@host` are the caller's to strip). Lenient in case and leading `#`.
    pub fn from_user(user: &str) -> Option<Topic> {
        let (kind, name) = user.split_once('.')?;
        Topic::new(TopicKind::parse(&kind.to_ascii_lowercase())?, name)
    }

    /// The kind.
    pub fn kind(&self) -> TopicKind {
        self.kind
    }

    /// The canonical name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The user part of the WebFinger handle, `tag.coop`.
    pub fn user(&self) -> String {
        format!("{}.{}", self.kind.as_str(), self.name)
    }

    /// The path of the topic actor, `/topics/tag/coop` (names are alphanumeric or `_`, ASCII letters
    /// for languages, an authority for instances, a slug for searches: none needs escaping).
    pub fn path(&self) -> String {
        format!("/topics/{}/{}", self.kind.as_str(), self.name)
    }

    /// How it is written for people: `#coop`, `language: es`, `instance: social.coop`,
    /// `search: co-ops` (a curated search's own name is the store's).
    pub fn label(&self) -> String {
        match self.kind {
            TopicKind::Tag => format!("#{}", self.name),
            kind => format!("{}: {}", kind.as_str(), self.name),
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.user())
    }
}

/// The topic a WebFinger `resource` names on this relay: `acct:tag.coop@host` (host compared
/// case-insensitively), or `None` when it names something else.
pub fn from_resource(resource: &str, host: &str) -> Option<Topic> {
    let acct = resource.strip_prefix("acct:").unwrap_or(resource);
    let (user, at) = acct.rsplit_once('@')?;
    if !at.eq_ignore_ascii_case(host) {
        return None;
    }
    Topic::from_user(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_names_every_kind() {
        let named: Vec<&str> = TopicKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(named, crate::config::TOPIC_KINDS);
        for kind in crate::config::TOPIC_KINDS {
            assert!(TopicKind::parse(kind).is_some());
        }
        // Counters indexed by kind (`delivery::KindCounters`) rely on this order.
        for (at, kind) in TopicKind::ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, at);
        }
    }

    #[test]
    fn tags_fold_like_the_index() {
        let topic = Topic::tag("#CoOp").expect("tag");
        assert_eq!(topic.name(), "coop");
        assert_eq!(topic.path(), "/topics/tag/coop");
        assert_eq!(topic.user(), "tag.coop");
        assert_eq!(topic.label(), "#coop");
        assert_eq!(Topic::tag("Ünïcode_1").expect("tag").name(), "ünïcode_1");
        for bad in ["", "#", "co op", "co-op", "a/b", "..", "x.y"] {
            assert_eq!(Topic::tag(bad), None, "{bad:?}");
        }
        assert_eq!(Topic::tag(&"a".repeat(MAX_NAME_CHARS + 1)), None);
        assert!(Topic::tag(&"a".repeat(MAX_NAME_CHARS)).is_some());
    }

    #[test]
    fn languages_are_primary_tags() {
        assert_eq!(Topic::language("pt-BR").expect("pt").name(), "pt");
        assert_eq!(Topic::language("EN").expect("en").name(), "en");
        assert_eq!(Topic::language("spa").expect("es").name(), "es");
        assert_eq!(
            Topic::language("es").expect("es").path(),
            "/topics/language/es"
        );
        for bad in ["", "und", "e1", "english", "x y"] {
            assert_eq!(Topic::language(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn instances_are_authorities_and_searches_slugs() {
        let coop = Topic::instance("Social.Coop").expect("host");
        assert_eq!(coop.name(), "social.coop");
        assert_eq!(coop.path(), "/topics/instance/social.coop");
        assert_eq!(coop.user(), "instance.social.coop");
        assert_eq!(Topic::from_user("instance.social.coop"), Some(coop.clone()));
        assert_eq!(
            Topic::instance("127.0.0.5:8080").expect("port").name(),
            "127.0.0.5:8080"
        );
        for bad in [
            "",
            "a b",
            "x.example/path",
            "user@x.example",
            "x.example:99999",
        ] {
            assert_eq!(Topic::instance(bad), None, "{bad:?}");
        }
        let search = Topic::search("co-ops-es").expect("slug");
        assert_eq!(search.path(), "/topics/search/co-ops-es");
        assert_eq!(search.key(), "search/co-ops-es");
        assert_eq!(Topic::from_key("search/co-ops-es"), Some(search));
        assert_eq!(Topic::from_key("tag/CoOp"), Topic::tag("coop"));
        for bad in ["", "Co-ops", "-x", "a b", &"a".repeat(65)] {
            assert_eq!(Topic::search(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn handles_parse_both_ways() {
        let coop = Topic::tag("coop").expect("tag");
        assert_eq!(Topic::from_user("tag.coop"), Some(coop.clone()));
        assert_eq!(Topic::from_user("TAG.CoOp"), Some(coop.clone()));
        assert_eq!(Topic::from_user(&coop.user()), Some(coop.clone()));
        assert_eq!(
            from_resource("acct:tag.coop@Relay.Example", "relay.example"),
            Some(coop.clone())
        );
        assert_eq!(
            from_resource("tag.coop@relay.example", "relay.example"),
            Some(coop)
        );
        assert_eq!(
            from_resource("acct:language.pt-BR@relay.example", "relay.example"),
            Topic::language("pt")
        );
        for bad in [
            "acct:tag.coop@other.example",
            "acct:relay@relay.example",
            "acct:tag.@relay.example",
            "acct:tagged.coop@relay.example",
            "acct:tag.coop",
        ] {
            assert_eq!(from_resource(bad, "relay.example"), None, "{bad:?}");
        }
    }
}
