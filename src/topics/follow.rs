//! What a `Follow` or `Undo` sent to a topic's inbox asks for, without I/O. Unlike the main relay
//! actor, a topic accepts any actor — an instance's relay actor (Mastodon's Follow of Public, LitePub's
//! Follow of the actor) or a person — since a topic carries only posts whose authors agreed to be
//! found. Who may follow at all (blocks, subscription policy, per-instance limits, signatures) is the
//! inbox's business, as for the main relay.

use serde_json::{Value, json};

use crate::ap::Activity;
use crate::ap::outgoing::{AS_CONTEXT, new_activity_id, normalised_follow};
use crate::federation::relay::follow_style;
use crate::store::Style;
use crate::topics::actor::TopicUrls;

/// What to do with an activity received at a topic's inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicDecision {
    /// Record the sender as a follower of the topic, receiving in `style`, and Accept.
    Follow(Style),
    /// End the sender's follow of the topic.
    Unfollow,
    /// Accept the request and do nothing.
    Ignore(&'static str),
}

/// Decides on `activity` received at the inbox of the topic at `urls`, sent (and signed) by its
/// actor. A Follow of Public is Mastodon's relay subscription to this inbox; a Follow of the topic
/// actor is LitePub's or a person's. An Undo ends the follow when it undoes a Follow (embedded, or
/// by the id of the follow on record, `follow_id`).
pub fn decide(activity: &Activity, urls: &TopicUrls, follow_id: Option<&str>) -> TopicDecision {
    match activity.kind.as_str() {
        "Follow" => match follow_style(activity, &urls.actor) {
            Some(style) => TopicDecision::Follow(style),
            None => TopicDecision::Ignore("a Follow of something other than this topic"),
        },
        "Undo" => {
            let embedded = activity.object_kind() == Some("Follow");
            let by_id =
                follow_id.is_some_and(|id| !id.is_empty() && activity.object_id() == Some(id));
            if embedded || by_id {
                TopicDecision::Unfollow
            } else {
                TopicDecision::Ignore("an Undo of something other than a Follow of this topic")
            }
        }
        _ => TopicDecision::Ignore("topics take only Follow and Undo"),
    }
}

/// The topic's `Accept` of `follow`: from the topic actor, embedding the Follow as received (what
/// Mastodon matches the Accept on), addressed to the follower.
pub fn accept(base: &str, urls: &TopicUrls, follow: &Value, follower: &str) -> Value {
    answer("Accept", base, urls, follow, follower)
}

/// The topic's `Reject` of `follow` (the topic is full, blocked, or the policy refuses the follower's
/// instance), shaped like [`accept`].
pub fn reject(base: &str, urls: &TopicUrls, follow: &Value, follower: &str) -> Value {
    answer("Reject", base, urls, follow, follower)
}

fn answer(kind: &str, base: &str, urls: &TopicUrls, follow: &Value, follower: &str) -> Value {
    json!({
        "@context": AS_CONTEXT,
        "id": new_activity_id(base),
        "type": kind,
        "actor": urls.actor,
        "object": normalised_follow(follow),
        "to": [follower],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::Topic;

    fn urls() -> TopicUrls {
        TopicUrls::new("https://relay.example", &Topic::tag("coop").expect("tag"))
    }

    fn parse(value: Value) -> Activity {
        Activity::parse(value.to_string().as_bytes()).expect("activity")
    }

    #[test]
    fn all_three_ways_to_follow_are_accepted() {
        let public = parse(json!({
            "id": "https://masto.example/f1", "type": "Follow",
            "actor": "https://masto.example/actor",
            "object": "https://www.w3.org/ns/activitystreams#Public",
        }));
        assert_eq!(
            decide(&public, &urls(), None),
            TopicDecision::Follow(Style::Mastodon)
        );
        let relay_actor = parse(json!({
            "id": "https://pleroma.example/f2", "type": "Follow",
            "actor": "https://pleroma.example/relay",
            "object": "https://relay.example/topics/tag/coop",
        }));
        assert_eq!(
            decide(&relay_actor, &urls(), None),
            TopicDecision::Follow(Style::LitePub)
        );
        let person = parse(json!({
            "id": "https://any.example/f3", "type": "Follow",
            "actor": "https://any.example/users/alice",
            "object": { "id": "https://relay.example/topics/tag/coop", "type": "Service" },
        }));
        assert_eq!(
            decide(&person, &urls(), None),
            TopicDecision::Follow(Style::LitePub)
        );
        let other = parse(json!({
            "id": "https://any.example/f4", "type": "Follow",
            "actor": "https://any.example/users/alice",
            "object": "https://relay.example/topics/tag/other",
        }));
        assert!(matches!(
            decide(&other, &urls(), None),
            TopicDecision::Ignore(_)
        ));
    }

    #[test]
    fn undo_ends_a_follow_by_embedding_or_by_id() {
        let embedded = parse(json!({
            "id": "https://any.example/u1", "type": "Undo",
            "actor": "https://any.example/users/alice",
            "object": { "id": "https://any.example/f3", "type": "Follow",
                        "actor": "https://any.example/users/alice",
                        "object": "https://relay.example/topics/tag/coop" },
        }));
        assert_eq!(decide(&embedded, &urls(), None), TopicDecision::Unfollow);
        let by_id = parse(json!({
            "id": "https://any.example/u2", "type": "Undo",
            "actor": "https://any.example/users/alice",
            "object": "https://any.example/f3",
        }));
        assert_eq!(
            decide(&by_id, &urls(), Some("https://any.example/f3")),
            TopicDecision::Unfollow
        );
        assert!(matches!(
            decide(&by_id, &urls(), Some("https://any.example/f9")),
            TopicDecision::Ignore(_)
        ));
        assert!(matches!(
            decide(&by_id, &urls(), None),
            TopicDecision::Ignore(_)
        ));
    }

    #[test]
    fn the_accept_comes_from_the_topic_and_embeds_the_follow() {
        let follow = json!({
            "id": "https://masto.example/f1", "type": "Follow",
            "actor": "https://masto.example/actor",
            "object": "https://www.w3.org/ns/activitystreams#Public",
            "padding": "dropped",
        });
        let accept = accept(
            "https://relay.example",
            &urls(),
            &follow,
            "https://masto.example/actor",
        );
        assert_eq!(accept["type"], "Accept");
        assert_eq!(accept["actor"], "https://relay.example/topics/tag/coop");
        assert_eq!(accept["object"]["id"], "https://masto.example/f1");
        assert_eq!(
            accept["object"]["object"],
            "https://www.w3.org/ns/activitystreams#Public"
        );
        assert!(accept["object"].get("padding").is_none());
        assert_eq!(accept["to"][0], "https://masto.example/actor");
        assert!(
            accept["id"]
                .as_str()
                .expect("id")
                .starts_with("https://relay.example/activities/")
        );
    }
}
