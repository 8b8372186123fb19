//! Who may follow which topic, as plain rules: the kind must be on, a hashtag not blocked, an instance
//! topic names a subscribed instance, a curated search exists; and the follower's instance passes the
//! relay's subscription policy as a subscriber would (blocks were refused before). No I/O: the topic
//! inbox gathers the facts.

use crate::moderation::policy::Admission;
use crate::topics::{Topic, TopicKind};

/// The topic settings of the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicSettings {
    /// Topics that may exist at most (0: topic feeds are off).
    pub max_topics: u64,
    /// The kinds that are on.
    pub kinds: Vec<TopicKind>,
    /// Hashtags (folded like the index folds them) nobody may follow as a topic.
    pub blocked_tags: Vec<String>,
}

impl TopicSettings {
    /// Reads the configuration's `max_topics`, `topic_kinds` and `topic_blocked_tags` (unknown kinds
    /// and tags that are no tags are configuration errors, reported by [`crate::config`]).
    pub fn from_config(config: &crate::config::Config) -> TopicSettings {
        TopicSettings {
            max_topics: config.max_topics,
            kinds: config
                .topic_kinds
                .iter()
                .filter_map(|k| TopicKind::parse(&k.to_ascii_lowercase()))
                .collect(),
            blocked_tags: config
                .topic_blocked_tags
                .iter()
                .filter_map(|t| plaza_index::document::normalize_tag(t))
                .collect(),
        }
    }

    /// Whether `topic` may be served at all (its actor, page and WebFinger handle): topics on, its
    /// kind on, not a blocked hashtag.
    pub fn serves(&self, topic: &Topic) -> bool {
        self.max_topics > 0
            && self.kinds.contains(&topic.kind())
            && !(topic.kind() == TopicKind::Tag
                && self.blocked_tags.iter().any(|t| t == topic.name()))
    }
}

/// What the topic inbox knows when a Follow arrives.
#[derive(Debug, Clone, Copy)]
pub struct FollowFacts {
    /// For an instance topic: whether that instance is subscribed to the relay.
    pub instance_subscribed: bool,
    /// For a curated search: whether the admins defined it.
    pub curated_exists: bool,
    /// Whether the follower's own instance is subscribed to the relay (already admitted).
    pub follower_subscribed: bool,
    /// What the subscription policy says of the follower's instance.
    pub policy: Admission,
}

/// What becomes of a Follow of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowVerdict {
    /// Accepted now.
    Accept,
    /// Kept for an admin to approve or reject (the approval policy, an instance not admitted yet).
    Hold,
    /// Rejected, for this reason.
    Refuse(&'static str),
}

/// Follows of topics that may wait for an admin at once; more are rejected with
/// [`PENDING_FULL`].
pub const MAX_PENDING: u64 = 1_000;

/// Why a Follow that would wait for approval is rejected when [`MAX_PENDING`] wait already.
pub const PENDING_FULL: &str =
    "too many follows wait for this relay's admins already; try again later";

/// Follows of topics from one instance that may wait for an admin at once (one instance cannot fill
/// the queue with its people).
pub const MAX_PENDING_PER_INSTANCE: u64 = 20;

/// Why a Follow that would wait is rejected when [`MAX_PENDING_PER_INSTANCE`] of its instance wait.
pub const PENDING_INSTANCE_FULL: &str =
    "as many follows from your instance wait for this relay's admins as may; try again later";

/// Whether `topic` names something that exists: an instance topic a subscribed instance, a curated
/// search one the admins defined (hashtags and languages exist on demand).
pub fn exists(topic: &Topic, facts: FollowFacts) -> bool {
    match topic.kind() {
        TopicKind::Instance => facts.instance_subscribed,
        TopicKind::Search => facts.curated_exists,
        TopicKind::Tag | TopicKind::Language => true,
    }
}

/// Whether a Follow of `topic` is accepted, waits for an admin, or is rejected (with the reason).
pub fn admit(settings: &TopicSettings, topic: &Topic, facts: FollowFacts) -> FollowVerdict {
    if !settings.serves(topic) {
        return FollowVerdict::Refuse("this topic is not offered by this relay");
    }
    if !exists(topic, facts) {
        return FollowVerdict::Refuse("no such topic on this relay");
    }
    if facts.follower_subscribed {
        return FollowVerdict::Accept;
    }
    match facts.policy {
        Admission::Admit => FollowVerdict::Accept,
        Admission::Hold => FollowVerdict::Hold,
        Admission::Refuse(reason) => FollowVerdict::Refuse(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> TopicSettings {
        TopicSettings {
            max_topics: 10,
            kinds: TopicKind::ALL.to_vec(),
            blocked_tags: vec!["spam".into()],
        }
    }

    fn facts() -> FollowFacts {
        FollowFacts {
            instance_subscribed: false,
            curated_exists: false,
            follower_subscribed: false,
            policy: Admission::Admit,
        }
    }

    #[test]
    fn kinds_blocks_and_existence_decide_first() {
        let coop = Topic::tag("coop").expect("tag");
        assert_eq!(admit(&settings(), &coop, facts()), FollowVerdict::Accept);
        assert!(matches!(
            admit(&settings(), &Topic::tag("Spam").expect("tag"), facts()),
            FollowVerdict::Refuse(_)
        ));
        let no_tags = TopicSettings {
            kinds: vec![TopicKind::Language],
            ..settings()
        };
        assert!(matches!(
            admit(&no_tags, &coop, facts()),
            FollowVerdict::Refuse(_)
        ));
        let off = TopicSettings {
            max_topics: 0,
            ..settings()
        };
        assert!(!off.serves(&coop));
        let instance = Topic::instance("a.example").expect("host");
        assert!(matches!(
            admit(&settings(), &instance, facts()),
            FollowVerdict::Refuse(_)
        ));
        let subscribed = FollowFacts {
            instance_subscribed: true,
            ..facts()
        };
        assert_eq!(
            admit(&settings(), &instance, subscribed),
            FollowVerdict::Accept
        );
        let search = Topic::search("co-ops").expect("slug");
        assert!(matches!(
            admit(&settings(), &search, facts()),
            FollowVerdict::Refuse(_)
        ));
        let curated = FollowFacts {
            curated_exists: true,
            ..facts()
        };
        assert_eq!(admit(&settings(), &search, curated), FollowVerdict::Accept);
    }

    #[test]
    fn the_subscription_policy_applies_to_instances_not_admitted_yet() {
        let coop = Topic::tag("coop").expect("tag");
        let held = FollowFacts {
            policy: Admission::Hold,
            ..facts()
        };
        assert_eq!(admit(&settings(), &coop, held), FollowVerdict::Hold);
        let refused = FollowFacts {
            policy: Admission::Refuse("only listed"),
            ..facts()
        };
        assert_eq!(
            admit(&settings(), &coop, refused),
            FollowVerdict::Refuse("only listed")
        );
        // An instance the relay already admitted follows whatever the policy says of strangers.
        let admitted = FollowFacts {
            follower_subscribed: true,
            ..held
        };
        assert_eq!(admit(&settings(), &coop, admitted), FollowVerdict::Accept);
    }
}
