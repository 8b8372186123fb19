//! The relay's rules, as plain functions over parsed activities: who may subscribe and how, what is
//! forwarded, in which shape, and what counts as a duplicate. No I/O here; the inbox service gathers
//! the facts (signer, subscription, fetched object) and acts on the [`Decision`].

use crate::ap::value::id_of;
use crate::ap::{Activity, Actor, Audience, authority_of, is_public_iri, same_authority};
use crate::store::Style;
use crate::{Error, Result};

/// What the relay does with one verified incoming activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Record the sender as a subscriber of `style` and answer with an Accept (and, for LitePub, a Follow
    /// back of the instance relay actor).
    Subscribe(Style),
    /// Answer the Follow with a Reject: the relay serves instances, not individual accounts.
    RejectFollow(&'static str),
    /// Remove the sender's subscription.
    Unsubscribe,
    /// The instance accepted the relay's own Follow (LitePub); nothing to send.
    FollowBackAccepted,
    /// Forward to the other subscribers.
    Forward(Forward),
    /// A LitePub Announce that is not addressed to the public: fetch `object_id`, and forward only if the
    /// object itself is public and lives on the sender's host (see [`check_fetched_object`]).
    CheckObject(String),
    /// Accept the request but do nothing with it.
    Ignore(&'static str),
}

/// How an activity is forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// Ids that make a later activity a duplicate of this one (activity id, and object id for posts).
    pub dedup_ids: Vec<String>,
    /// The object of the Announce the relay sends in place of the original.
    pub announce_object: String,
    /// Mastodon-style subscribers may get the original bytes (it carries an LD signature by its actor).
    pub verbatim: bool,
}

/// Facts about the sender that the rules need.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The relay actor id (`PUBLIC_URL/actor`).
    pub relay_actor: &'a str,
    /// The sender's subscription style, if its instance is subscribed.
    pub subscribed: Option<Style>,
    /// Whether the activity carries an LD signature whose creator key belongs to its actor.
    pub ld_signed_by_actor: bool,
}

/// Types the relay forwards.
const FORWARDED: &[&str] = &["Create", "Announce", "Update", "Delete", "Move", "Undo"];

/// Checks that the key owner may speak for the activity's actor: the same actor, or an instance-level
/// actor (Application/Service, the instance or relay actor) of the same host.
pub fn check_signer(activity: &Activity, signer: &Actor, key_id: &str) -> Result<()> {
    if signer.id == activity.actor {
        return Ok(());
    }
    let same_host = same_authority(&signer.id, &activity.actor);
    if same_host && is_instance_actor(signer) {
        return Ok(());
    }
    Err(Error::KeyNotOwned {
        key_id: key_id.to_string(),
        actor: activity.actor.clone(),
    })
}

/// Whether an actor stands for a whole instance rather than a person.
pub fn is_instance_actor(actor: &Actor) -> bool {
    matches!(actor.kind.as_str(), "Application" | "Service")
        || actor.id.ends_with("/relay")
        || actor.id.ends_with("/actor")
}

/// Decides what to do with a verified activity from `sender` (the actor document of `activity.actor`).
pub fn decide(activity: &Activity, sender: &Actor, ctx: Context<'_>) -> Result<Decision> {
    let kind = activity.kind.as_str();
    match kind {
        "Follow" => Ok(decide_follow(activity, sender, ctx)),
        "Undo" if undoes_follow(activity) => match ctx.subscribed {
            Some(_) => Ok(Decision::Unsubscribe),
            None => Ok(Decision::Ignore("not subscribed")),
        },
        "Accept" if activity.object_kind() == Some("Follow") || activity.object_id().is_some() => {
            Ok(Decision::FollowBackAccepted)
        }
        "Reject" => Ok(Decision::Ignore("the instance rejected the relay's follow")),
        _ if FORWARDED.contains(&kind) => {
            let Some(style) = ctx.subscribed else {
                return Err(Error::NotSubscribed(
                    authority_of(&activity.actor).unwrap_or_default(),
                ));
            };
            decide_forward(activity, style, ctx)
        }
        _ => Ok(Decision::Ignore("activity type is not relayed")),
    }
}

fn decide_follow(activity: &Activity, sender: &Actor, ctx: Context<'_>) -> Decision {
    let Some(object) = activity.object_id() else {
        return Decision::Ignore("Follow without object");
    };
    if is_public_iri(object) {
        Decision::Subscribe(Style::Mastodon)
    } else if object == ctx.relay_actor {
        if is_instance_actor(sender) {
            Decision::Subscribe(Style::LitePub)
        } else {
            Decision::RejectFollow("only instance actors can subscribe to this relay")
        }
    } else {
        Decision::Ignore("Follow of something that is not this relay")
    }
}

fn undoes_follow(activity: &Activity) -> bool {
    match activity.object_kind() {
        Some(kind) => kind == "Follow",
        // Undo by id only: Mastodon ids it `…#follows/N/undo`, others say nothing; an Undo of an unknown
        // thing from a subscriber's instance actor is treated as unsubscribing only when it says Follow.
        None => activity.object_id().is_some_and(|id| id.contains("follow")),
    }
}

fn decide_forward(activity: &Activity, style: Style, ctx: Context<'_>) -> Result<Decision> {
    let kind = activity.kind.as_str();
    let object_id = activity.object_id().map(str::to_string);
    // Profile changes (account Update, Delete, Move, whose object is the actor) are public by nature;
    // Mastodon sends them to every relay, with or without addressing.
    let about_actor = matches!(kind, "Update" | "Delete" | "Move")
        && object_id.as_deref() == Some(activity.actor.as_str());
    // Posts and edits are relayed only when listed public (Public in `to`): a post with Public only in
    // `cc` is "unlisted" (Misskey "home"), kept out of public timelines by its author, and a relay
    // feeds public timelines. Deletes, Moves and Undos keep the looser rule: they withdraw or redirect
    // what may have been relayed before.
    let public = if matches!(kind, "Create" | "Announce" | "Update") {
        activity.is_listed_public()
    } else {
        activity.is_public()
    };
    if !public && !about_actor {
        return Ok(match (kind, style, object_id) {
            // Only objects of the announcing instance are fetched: a subscriber cannot make the relay
            // fetch from anywhere else.
            ("Announce", Style::LitePub, Some(object))
                if same_authority(&object, &activity.actor) =>
            {
                Decision::CheckObject(object)
            }
            ("Announce", Style::LitePub, Some(_)) => {
                Decision::Ignore("object lives on another instance")
            }
            _ => Decision::Ignore("not public"),
        });
    }
    let activity_id = activity
        .id
        .clone()
        .ok_or_else(|| Error::BadRequest(format!("{kind} without id cannot be relayed")))?;
    let Some(object_id) = object_id else {
        return Err(Error::BadRequest(format!("{kind} without object")));
    };
    Ok(Decision::Forward(forward_plan(
        kind,
        activity_id,
        object_id,
        ctx.ld_signed_by_actor,
    )))
}

/// The forwarding plan for an activity known to be public.
pub fn forward_plan(
    kind: &str,
    activity_id: String,
    object_id: String,
    ld_signed: bool,
) -> Forward {
    let post = matches!(kind, "Create" | "Announce");
    let mut dedup_ids = vec![activity_id.clone()];
    if post {
        dedup_ids.push(format!("object:{object_id}"));
    }
    // Posts and edits are announced by object id, which receivers fetch; for Delete, Move and Undo the
    // activity itself is what there is to announce.
    let announce_object = if post || kind == "Update" {
        object_id
    } else {
        activity_id
    };
    Forward {
        dedup_ids,
        announce_object,
        verbatim: ld_signed,
    }
}

/// After a [`Decision::CheckObject`] fetch: forward the Announce only if the object is public and was
/// published on the announcing instance.
pub fn check_fetched_object(
    activity: &Activity,
    object: &serde_json::Value,
    object_id: &str,
) -> Result<Decision> {
    if id_of(object) != Some(object_id) {
        return Ok(Decision::Ignore("fetched object has another id"));
    }
    if !same_authority(object_id, &activity.actor) {
        return Ok(Decision::Ignore("object lives on another instance"));
    }
    if !Audience::from_value(object).is_listed_public() {
        return Ok(Decision::Ignore("object is not public"));
    }
    let activity_id = activity
        .id
        .clone()
        .ok_or_else(|| Error::BadRequest("Announce without id cannot be relayed".into()))?;
    Ok(Decision::Forward(forward_plan(
        "Announce",
        activity_id,
        object_id.to_string(),
        false,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RELAY: &str = "https://relay.example/actor";
    const PUBLIC_IRI: &str = "https://www.w3.org/ns/activitystreams#Public";

    fn actor(id: &str, kind: &str) -> Actor {
        Actor::from_value(json!({ "id": id, "type": kind, "inbox": format!("{id}/inbox") }))
            .unwrap()
    }

    fn activity(v: serde_json::Value) -> Activity {
        Activity::from_value(v).unwrap()
    }

    fn ctx(subscribed: Option<Style>) -> Context<'static> {
        Context {
            relay_actor: RELAY,
            subscribed,
            ld_signed_by_actor: false,
        }
    }

    #[test]
    fn follows_pick_the_protocol_and_people_are_rejected() {
        let instance = actor("https://a.example/actor", "Application");
        let mastodon = activity(
            json!({"id": "https://a.example/f/1", "type": "Follow", "actor": instance.id, "object": "https://www.w3.org/ns/activitystreams#Public"}),
        );
        assert_eq!(
            decide(&mastodon, &instance, ctx(None)).unwrap(),
            Decision::Subscribe(Style::Mastodon)
        );
        let pleroma = actor("https://p.example/relay", "Application");
        let litepub = activity(
            json!({"id": "https://p.example/f/1", "type": "Follow", "actor": pleroma.id, "object": RELAY}),
        );
        assert_eq!(
            decide(&litepub, &pleroma, ctx(None)).unwrap(),
            Decision::Subscribe(Style::LitePub)
        );
        let person = actor("https://a.example/users/alice", "Person");
        let by_person = activity(
            json!({"id": "https://a.example/f/2", "type": "Follow", "actor": person.id, "object": RELAY}),
        );
        assert!(matches!(
            decide(&by_person, &person, ctx(None)).unwrap(),
            Decision::RejectFollow(_)
        ));
    }

    #[test]
    fn posts_need_a_subscription_and_public_addressing() {
        let alice = actor("https://a.example/users/alice", "Person");
        let create = |to: &str| {
            activity(
                json!({"id": "https://a.example/s/1/activity", "type": "Create", "actor": alice.id, "to": [to],
                "object": {"id": "https://a.example/s/1", "type": "Note", "to": [to]}}),
            )
        };
        let public = create("https://www.w3.org/ns/activitystreams#Public");
        assert!(matches!(
            decide(&public, &alice, ctx(None)),
            Err(Error::NotSubscribed(_))
        ));
        let Decision::Forward(plan) = decide(&public, &alice, ctx(Some(Style::Mastodon))).unwrap()
        else {
            panic!("public post not forwarded")
        };
        assert_eq!(plan.announce_object, "https://a.example/s/1");
        assert_eq!(
            plan.dedup_ids,
            vec![
                "https://a.example/s/1/activity",
                "object:https://a.example/s/1"
            ]
        );
        assert!(!plan.verbatim);
        let followers = create("https://a.example/users/alice/followers");
        assert_eq!(
            decide(&followers, &alice, ctx(Some(Style::Mastodon))).unwrap(),
            Decision::Ignore("not public")
        );
    }

    #[test]
    fn unlisted_posts_boosts_and_edits_stay_home() {
        let alice = actor("https://a.example/users/alice", "Person");
        let followers = "https://a.example/users/alice/followers";
        let sub = ctx(Some(Style::Mastodon));
        for public in [PUBLIC_IRI, "as:Public", "Public"] {
            // Unlisted (Mastodon) / home (Misskey): Public only in `cc`, on the activity and the object.
            for kind in ["Create", "Update"] {
                let unlisted = activity(
                    json!({"id": "https://a.example/s/1/activity", "type": kind,
                    "actor": alice.id, "to": [followers], "cc": [public],
                    "object": {"id": "https://a.example/s/1", "type": "Note", "to": [followers], "cc": [public]}}),
                );
                assert_eq!(
                    decide(&unlisted, &alice, sub).unwrap(),
                    Decision::Ignore("not public"),
                    "{kind} with {public} in cc"
                );
                // Listed: Public in `to` of the object is enough, even when the activity says nothing.
                let listed = activity(json!({"id": "https://a.example/s/1/activity", "type": kind,
                    "actor": alice.id,
                    "object": {"id": "https://a.example/s/1", "type": "Note", "to": [public]}}));
                assert!(
                    matches!(decide(&listed, &alice, sub).unwrap(), Decision::Forward(_)),
                    "{kind} with {public} in the object's to"
                );
            }
            let boost = |to: &str, cc: &str| {
                activity(
                    json!({"id": "https://a.example/s/2/activity", "type": "Announce",
                    "actor": alice.id, "to": [to], "cc": [cc], "object": "https://b.example/s/9"}),
                )
            };
            assert_eq!(
                decide(&boost(followers, public), &alice, sub).unwrap(),
                Decision::Ignore("not public")
            );
            assert!(matches!(
                decide(&boost(public, followers), &alice, sub).unwrap(),
                Decision::Forward(_)
            ));
        }
        // A Delete keeps its rule: Public in `cc` is enough to withdraw what may have been relayed.
        let delete = activity(
            json!({"id": "https://a.example/s/1#delete", "type": "Delete",
            "actor": alice.id, "to": [followers], "cc": [PUBLIC_IRI],
            "object": {"id": "https://a.example/s/1", "type": "Tombstone"}}),
        );
        assert!(matches!(
            decide(&delete, &alice, sub).unwrap(),
            Decision::Forward(_)
        ));
        // An account Update is relayed whatever its addressing.
        let profile = activity(
            json!({"id": "https://a.example/users/alice#update", "type": "Update",
            "actor": alice.id, "to": [followers], "cc": [PUBLIC_IRI],
            "object": {"id": alice.id, "type": "Person"}}),
        );
        assert!(matches!(
            decide(&profile, &alice, sub).unwrap(),
            Decision::Forward(_)
        ));
    }

    #[test]
    fn litepub_announces_of_unlisted_objects_stay_home() {
        let relay_actor = actor("https://p.example/relay", "Application");
        let announce = activity(json!({"id": "https://p.example/a/1", "type": "Announce",
            "actor": relay_actor.id, "object": "https://p.example/objects/1",
            "to": ["https://p.example/relay/followers", RELAY]}));
        let unlisted = json!({"id": "https://p.example/objects/1",
            "to": ["https://p.example/users/x/followers"], "cc": [PUBLIC_IRI]});
        assert_eq!(
            check_fetched_object(&announce, &unlisted, "https://p.example/objects/1").unwrap(),
            Decision::Ignore("object is not public")
        );
    }

    #[test]
    fn account_deletes_are_forwarded_without_addressing() {
        let alice = actor("https://a.example/users/alice", "Person");
        let delete = activity(
            json!({"id": "https://a.example/users/alice#delete", "type": "Delete", "actor": alice.id, "object": alice.id}),
        );
        let Decision::Forward(plan) = decide(&delete, &alice, ctx(Some(Style::Mastodon))).unwrap()
        else {
            panic!("account delete not forwarded")
        };
        assert_eq!(plan.announce_object, "https://a.example/users/alice#delete");
    }

    #[test]
    fn litepub_announces_are_checked_only_on_their_own_host() {
        let relay_actor = actor("https://p.example/relay", "Application");
        let announce = |object: &str| {
            activity(
                json!({"id": "https://p.example/a/1", "type": "Announce", "actor": relay_actor.id, "object": object,
                "to": ["https://p.example/relay/followers", RELAY]}),
            )
        };
        assert_eq!(
            decide(
                &announce("https://p.example/objects/1"),
                &relay_actor,
                ctx(Some(Style::LitePub))
            )
            .unwrap(),
            Decision::CheckObject("https://p.example/objects/1".into())
        );
        assert!(matches!(
            decide(
                &announce("https://elsewhere.example/objects/1"),
                &relay_actor,
                ctx(Some(Style::LitePub))
            )
            .unwrap(),
            Decision::Ignore(_)
        ));
        let private = json!({"id": "https://p.example/objects/1", "to": ["https://p.example/users/x/followers"]});
        assert!(matches!(
            check_fetched_object(
                &announce("https://p.example/objects/1"),
                &private,
                "https://p.example/objects/1"
            )
            .unwrap(),
            Decision::Ignore(_)
        ));
        let public = json!({"id": "https://p.example/objects/1", "to": ["https://www.w3.org/ns/activitystreams#Public"]});
        assert!(matches!(
            check_fetched_object(
                &announce("https://p.example/objects/1"),
                &public,
                "https://p.example/objects/1"
            )
            .unwrap(),
            Decision::Forward(_)
        ));
    }

    #[test]
    fn signers_may_act_for_themselves_or_as_their_instance() {
        let alice = actor("https://a.example/users/alice", "Person");
        let bob_post = activity(
            json!({"type": "Create", "actor": "https://a.example/users/bob", "object": "x"}),
        );
        assert!(check_signer(&bob_post, &alice, "https://a.example/users/alice#main-key").is_err());
        let instance = actor("https://a.example/actor", "Application");
        assert!(check_signer(&bob_post, &instance, "https://a.example/actor#main-key").is_ok());
        let other_instance = actor("https://b.example/actor", "Application");
        assert!(
            check_signer(
                &bob_post,
                &other_instance,
                "https://b.example/actor#main-key"
            )
            .is_err()
        );
    }
}
