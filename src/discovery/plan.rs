//! The indexer's rules, as plain functions: given one logged activity, the actor whose key signed it
//! and which instances are subscribed, what to do for the index. No I/O here; the indexer fetches what
//! a [`Step`] asks for and applies the outcome.
//!
//! Authenticity first: a post is indexed only from a copy proven to come from its author's server —
//! embedded in an activity HTTP-signed by a key on the object's own host, or fetched by id from that
//! host. Anything else (an LD-signed Create forwarded by a third host, an Announce of a bare id) is
//! fetched from its origin. Only authors on subscribed instances are indexed: a boost of a post from
//! elsewhere is relayed, not indexed.

use serde_json::Value;

use crate::ap::value::{get_id, has_type, id_of};
use crate::ap::{Activity, Audience, authority_of, same_authority};

/// The kind of the log entries that carry a post or profile one node fetched for FASP `data_sharing`
/// to the other nodes' indexes (see [`crate::discovery::shared`]).
pub const SHARED_KIND: &str = "fasp:shared";

/// Object types indexed as posts.
const POST_TYPES: &[&str] = &[
    "Note", "Article", "Page", "Question", "Event", "Video", "Audio", "Image",
];

/// Actor types (an `Update` of one of these is a profile change).
const ACTOR_TYPES: &[&str] = &["Person", "Service", "Application", "Group", "Organization"];

/// What one log entry asks of the index.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Index this post (its copy is proven authentic), subject to [`check_post`] and consent.
    Post {
        /// The object as received.
        object: Value,
        /// Whether it replaces an earlier version (an `Update`): refusal then removes that version.
        edit: bool,
    },
    /// Fetch the post from its own host by id, then treat it like [`Step::Post`].
    Fetch {
        /// The object id (the URL fetched).
        id: String,
        /// See [`Step::Post`].
        edit: bool,
    },
    /// The actor changed: take its new document (embedded when proven authentic, else fetched) and
    /// re-check its consent for the directory and for its posts.
    Profile {
        /// The actor id.
        id: String,
        /// The actor document embedded in an `Update` signed on the actor's own host.
        embedded: Option<Value>,
    },
    /// Remove one post.
    RemovePost(String),
    /// Remove an actor's profile and all their posts.
    RemoveActor(String),
    /// Nothing to do, and why.
    Skip(&'static str),
}

/// Whether an object is something indexed as a post.
pub fn is_post(object: &Value) -> bool {
    POST_TYPES.iter().any(|t| has_type(object, t))
}

/// Whether an object is an actor (indexed as a profile).
pub fn is_actor(object: &Value) -> bool {
    ACTOR_TYPES.iter().any(|t| has_type(object, t))
}

/// The post an `Announce` shares, for trends, when the announcer's own instance signed it (`signer`,
/// as for [`plan`]): an `Announce` forwarded or signed elsewhere could name any actor, and one
/// instance could fake the shares of accounts on many, which trends must not count.
pub fn shared_post<'a>(activity: &'a Activity, signer: &str) -> Option<&'a str> {
    (activity.kind == "Announce" && same_authority(signer, &activity.actor))
        .then(|| activity.object_id())
        .flatten()
}

/// Decides what an activity means for the index. `signer` is the actor whose key HTTP-signed the
/// request (verified by the inbox); `subscribed` says whether an authority is a subscribed instance.
pub fn plan(activity: &Activity, signer: &str, subscribed: impl Fn(&str) -> bool) -> Step {
    let kind = activity.kind.as_str();
    let Some(object_id) = activity.object_id().map(str::to_owned) else {
        return Step::Skip("no object");
    };
    let Some(authority) = authority_of(&object_id) else {
        return Step::Skip("object id is not a URL");
    };
    let embedded = activity.embedded_object();
    // What the signer's own host says about its own objects is authentic.
    let signed_at_home = same_authority(signer, &object_id);
    match kind {
        "Update" if object_id == activity.actor || embedded.is_some_and(is_actor) => {
            if !same_authority(&object_id, &activity.actor) {
                return Step::Skip("profile update for an actor of another instance");
            }
            if !subscribed(&authority) {
                return Step::Skip("author's instance is not subscribed");
            }
            Step::Profile {
                embedded: embedded
                    .filter(|_| signed_at_home)
                    .filter(|e| id_of(e) == Some(object_id.as_str()))
                    .cloned(),
                id: object_id,
            }
        }
        "Create" | "Update" | "Announce" => {
            if !subscribed(&authority) {
                return Step::Skip("author's instance is not subscribed");
            }
            let edit = kind == "Update";
            match embedded {
                Some(object) if !is_post(object) => Step::Skip("object is not a post"),
                Some(object) if signed_at_home => Step::Post {
                    object: object.clone(),
                    edit,
                },
                _ => Step::Fetch {
                    id: object_id,
                    edit,
                },
            }
        }
        "Delete" => {
            // Only the object's own instance may delete it.
            if !same_authority(&object_id, &activity.actor) || !signed_at_home {
                return Step::Skip("delete of something from another instance");
            }
            if object_id == activity.actor {
                Step::RemoveActor(object_id)
            } else {
                Step::RemovePost(object_id)
            }
        }
        _ => Step::Skip("activity type is not indexed"),
    }
}

/// What [`check_post`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum PostCheck {
    /// A post by `author` to hand to the index, which applies consent (an edit is handed over
    /// whatever its audience: the index removes an earlier version it may no longer keep).
    Candidate {
        /// The author's actor id.
        author: String,
        /// The author's instance.
        instance: String,
    },
    /// Remove the earlier version of the post (edited into something that is no post).
    Remove(String),
    /// Not for the index.
    Skip(&'static str),
}

/// Checks an authentic copy of a post (`expected_id` is the id it was embedded or fetched under): that
/// it is that post, a post type, by an author of the same host on a subscribed instance. A new post
/// that is not listed public (`to` Public) is skipped here, before its author is fetched; the index's
/// consent rules decide the rest.
pub fn check_post(
    object: &Value,
    expected_id: &str,
    edit: bool,
    subscribed: impl Fn(&str) -> bool,
) -> PostCheck {
    if id_of(object) != Some(expected_id) {
        return PostCheck::Skip("document has another id");
    }
    if !is_post(object) {
        return match edit {
            true => PostCheck::Remove(expected_id.to_string()),
            false => PostCheck::Skip("object is not a post"),
        };
    }
    let Some(author) = get_id(object, "attributedTo").or_else(|| get_id(object, "actor")) else {
        return PostCheck::Skip("post names no author");
    };
    let instance = match authority_of(author) {
        Some(instance) if same_authority(author, expected_id) => instance,
        _ => return PostCheck::Skip("author lives on another host than the post"),
    };
    if !subscribed(&instance) {
        return PostCheck::Skip("author's instance is not subscribed");
    }
    if !edit && !Audience::from_value(object).is_listed_public() {
        return PostCheck::Skip("post is not addressed to the public");
    }
    PostCheck::Candidate {
        author: author.to_string(),
        instance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ap::PUBLIC;
    use crate::test_fixtures as fixtures;
    use serde_json::json;

    const ALICE: &str = "https://a.example/users/alice";

    fn subscribed(authority: &str) -> bool {
        matches!(authority, "a.example" | "b.example")
    }

    fn activity(v: Value) -> Activity {
        Activity::from_value(v).unwrap()
    }

    fn note(id: &str, author: &str, to: &str) -> Value {
        json!({ "id": id, "type": "Note", "attributedTo": author, "content": "<p>hi</p>", "to": [to] })
    }

    fn create(actor: &str, object: Value) -> Activity {
        activity(
            json!({ "id": format!("{}/activity", object["id"].as_str().unwrap_or("x")),
            "type": "Create", "actor": actor, "object": object, "to": [PUBLIC] }),
        )
    }

    #[test]
    fn a_share_counts_only_when_the_announcers_own_instance_signed_it() {
        let boost = |actor: &str, object: Value| {
            activity(
                json!({ "id": "https://b.example/users/bob/statuses/9/activity",
                "type": "Announce", "actor": actor, "object": object, "to": [PUBLIC] }),
            )
        };
        let post = "https://a.example/statuses/1";
        let bob = "https://b.example/users/bob";
        assert_eq!(
            shared_post(&boost(bob, json!(post)), "https://b.example/actor"),
            Some(post)
        );
        assert_eq!(
            shared_post(&boost(bob, json!({ "id": post, "type": "Note" })), bob),
            Some(post)
        );
        // Signed by another instance (forwarded, or forged in bob's name): not a share.
        assert_eq!(
            shared_post(&boost(bob, json!(post)), "https://c.example/actor"),
            None
        );
        assert_eq!(
            shared_post(&create(ALICE, note(post, ALICE, PUBLIC)), ALICE),
            None
        );
    }

    #[test]
    fn a_create_signed_on_the_posts_own_host_is_indexed_as_received() {
        let object = note("https://a.example/statuses/1", ALICE, PUBLIC);
        assert_eq!(
            plan(&create(ALICE, object.clone()), ALICE, subscribed),
            Step::Post {
                object: object.clone(),
                edit: false
            }
        );
        // Signed by the instance actor of the same host: still the post's own server.
        assert_eq!(
            plan(
                &create(ALICE, object.clone()),
                "https://a.example/actor",
                subscribed
            ),
            Step::Post {
                object,
                edit: false
            }
        );
    }

    #[test]
    fn a_create_forwarded_by_a_third_host_is_fetched_from_its_origin() {
        let object = note("https://a.example/statuses/1", ALICE, PUBLIC);
        assert_eq!(
            plan(
                &create(ALICE, object),
                "https://b.example/actor",
                subscribed
            ),
            Step::Fetch {
                id: "https://a.example/statuses/1".into(),
                edit: false
            }
        );
        // The real LD-signed Create fixture, arriving from another host than its author's.
        let ld = activity(fixtures::json("mastodon-create-note-ld-signed.json"));
        let Step::Fetch { id, .. } = plan(&ld, "https://elsewhere.example/actor", |_| true) else {
            panic!("a forwarded LD-signed Create must be fetched from its origin")
        };
        assert_eq!(Some(id.as_str()), ld.object_id());
    }

    #[test]
    fn announces_of_bare_ids_are_fetched_and_boosts_from_elsewhere_are_not_indexed() {
        let announce = |object: &str| {
            activity(
                json!({ "id": "https://b.example/users/bob/statuses/9/activity", "type": "Announce",
                "actor": "https://b.example/users/bob", "object": object, "to": [PUBLIC] }),
            )
        };
        assert_eq!(
            plan(
                &announce("https://a.example/statuses/1"),
                "https://b.example/users/bob",
                subscribed
            ),
            Step::Fetch {
                id: "https://a.example/statuses/1".into(),
                edit: false
            }
        );
        assert_eq!(
            plan(
                &announce("https://stranger.example/statuses/1"),
                "https://b.example/users/bob",
                subscribed
            ),
            Step::Skip("author's instance is not subscribed")
        );
        let litepub = activity(fixtures::json("pleroma-relay-announce-litepub.json"));
        let signer = litepub.actor.clone();
        assert!(matches!(
            plan(&litepub, &signer, |_| true),
            Step::Fetch { .. }
        ));
    }

    #[test]
    fn posts_of_instances_that_are_not_subscribed_are_skipped() {
        let object = note(
            "https://stranger.example/statuses/1",
            "https://stranger.example/users/x",
            PUBLIC,
        );
        assert_eq!(
            plan(
                &create("https://stranger.example/users/x", object),
                "https://stranger.example/users/x",
                subscribed
            ),
            Step::Skip("author's instance is not subscribed")
        );
    }

    #[test]
    fn deletes_remove_posts_and_actors_only_from_their_own_host() {
        let delete = |actor: &str, object: Value| {
            activity(
                json!({ "id": "https://a.example/d/1", "type": "Delete", "actor": actor, "object": object }),
            )
        };
        assert_eq!(
            plan(
                &delete(ALICE, json!("https://a.example/statuses/1")),
                ALICE,
                subscribed
            ),
            Step::RemovePost("https://a.example/statuses/1".into())
        );
        let tombstone = json!({ "id": "https://a.example/statuses/2", "type": "Tombstone" });
        assert_eq!(
            plan(&delete(ALICE, tombstone), ALICE, subscribed),
            Step::RemovePost("https://a.example/statuses/2".into())
        );
        assert_eq!(
            plan(&delete(ALICE, json!(ALICE)), ALICE, subscribed),
            Step::RemoveActor(ALICE.into())
        );
        assert!(matches!(
            plan(
                &delete(ALICE, json!("https://b.example/statuses/1")),
                ALICE,
                subscribed
            ),
            Step::Skip(_)
        ));
        for (name, signer) in [
            ("mastodon-delete-note.json", None),
            ("mastodon-delete-actor.json", None),
            ("gotosocial-delete-public.json", None::<&str>),
        ] {
            let a = activity(fixtures::json(name));
            let signer = signer.map(str::to_string).unwrap_or(a.actor.clone());
            let step = plan(&a, &signer, |_| true);
            assert!(
                matches!(step, Step::RemovePost(_) | Step::RemoveActor(_)),
                "{name}: {step:?}"
            );
        }
    }

    #[test]
    fn updates_reindex_posts_and_recheck_profiles() {
        let object = note("https://a.example/statuses/1", ALICE, PUBLIC);
        let update = activity(
            json!({ "id": "https://a.example/statuses/1#update", "type": "Update",
            "actor": ALICE, "object": object.clone(), "to": [PUBLIC] }),
        );
        assert_eq!(
            plan(&update, ALICE, subscribed),
            Step::Post { object, edit: true }
        );
        let actor = fixtures::json("mastodon-update-actor.json");
        let a = activity(actor.clone());
        let signer = a.actor.clone();
        let Step::Profile { id, embedded } = plan(&a, &signer, |_| true) else {
            panic!("actor update is a profile step")
        };
        assert_eq!(id, a.actor);
        assert_eq!(embedded.as_ref(), a.embedded_object());
        // Signed by another host: the embedded profile is not trusted, it is fetched.
        let Step::Profile { embedded, .. } = plan(&a, "https://other.example/actor", |_| true)
        else {
            panic!("actor update is a profile step")
        };
        assert_eq!(embedded, None);
    }

    #[test]
    fn a_post_copy_must_be_that_post_by_a_local_author_and_listed_public() {
        let id = "https://a.example/statuses/1";
        assert_eq!(
            check_post(&note(id, ALICE, PUBLIC), id, false, subscribed),
            PostCheck::Candidate {
                author: ALICE.into(),
                instance: "a.example".into()
            }
        );
        assert_eq!(
            check_post(
                &note(id, ALICE, PUBLIC),
                "https://a.example/statuses/2",
                false,
                subscribed
            ),
            PostCheck::Skip("document has another id")
        );
        assert_eq!(
            check_post(
                &note(id, "https://b.example/users/bob", PUBLIC),
                id,
                false,
                subscribed
            ),
            PostCheck::Skip("author lives on another host than the post")
        );
        let unlisted = json!({ "id": id, "type": "Note", "attributedTo": ALICE,
            "to": ["https://a.example/users/alice/followers"], "cc": [PUBLIC] });
        assert_eq!(
            check_post(&unlisted, id, false, subscribed),
            PostCheck::Skip("post is not addressed to the public")
        );
        assert_eq!(
            check_post(&unlisted, id, true, subscribed),
            PostCheck::Candidate {
                author: ALICE.into(),
                instance: "a.example".into()
            },
            "an edit goes to the index whatever its audience (it removes what it may not keep)"
        );
        assert_eq!(
            check_post(
                &json!({ "id": id, "type": "Tombstone" }),
                id,
                true,
                subscribed
            ),
            PostCheck::Remove(id.into())
        );
        let note_fixture = fixtures::json("mastodon-create-note.json")["object"].clone();
        let fixture_id = id_of(&note_fixture).unwrap().to_string();
        assert!(matches!(
            check_post(&note_fixture, &fixture_id, false, |_| true),
            PostCheck::Candidate { .. } | PostCheck::Skip("post is not addressed to the public")
        ));
    }
}
