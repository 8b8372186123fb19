//! The relay's rules, as plain functions over parsed activities: which ids are acceptable, who may
//! subscribe (the instance's own actor) and unsubscribe (only the actor that subscribed), what is
//! forwarded, in which shape, where replies may go, and what counts as a duplicate. No I/O here; the
//! inbox service gathers the facts (signer, stored subscription, whether the instance named the
//! sender as its actor, fetched object) and acts on the [`Decision`].

use crate::ap::value::{get_id, has_type, id_of};
use crate::ap::{
    Activity, Actor, Audience, authority_of, is_public_iri, is_web_iri, same_authority,
};
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
    /// Withdraw the sender's Follow that waits for an admin's approval.
    WithdrawPending,
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
    /// The stored subscription of the sender's instance (its subscriber actor and Follow id), when
    /// subscribed; what an Undo is checked against, and what a Follow may not take over.
    pub subscription: Option<Subscription<'a>>,
    /// The instance's Follow waiting for approval, when it is not subscribed: what an Undo withdrawing
    /// it is checked against, and what a Follow by another actor may not take over, as for
    /// [`Context::subscription`] (the inbox looks it up for an Undo or a Follow only).
    pub pending: Option<Subscription<'a>>,
    /// The actor whose key signed the request.
    pub signer: &'a str,
    /// Whether the sender's instance confirmed (WebFinger, NodeInfo) that the sender is its own actor;
    /// counts only for a sender that is [`InstanceEvidence::Discover`] or
    /// [`InstanceEvidence::Application`]. The inbox asks for Follows of this relay only, and only when
    /// it matters ([`asks_instance`]).
    pub instance_confirmed: bool,
}

/// What the store knows of an instance's subscription.
#[derive(Debug, Clone, Copy)]
pub struct Subscription<'a> {
    /// The actor that subscribed; the only one that may unsubscribe.
    pub actor: &'a str,
    /// The id of the Follow that subscribed (empty for subscriptions stored before ids were kept).
    pub follow_id: &'a str,
}

/// Largest Follow the relay takes, in bytes: real relay Follows are a few hundred bytes, and a Follow
/// is kept (normalised) with the subscription, so a padded one must not cost memory or disk.
pub const MAX_FOLLOW_BYTES: usize = 8 * 1024;

/// Types the relay forwards.
const FORWARDED: &[&str] = &["Create", "Announce", "Update", "Delete", "Move", "Undo"];

/// Checks that the key owner may speak for the activity's actor: the same actor, or an instance-level
/// actor (Application/Service, the instance or relay actor) of the same host.
pub fn check_signer(activity: &Activity, signer: &Actor, key_id: &str) -> Result<()> {
    if signer.id == activity.actor {
        return Ok(());
    }
    let same_host = same_authority(&signer.id, &activity.actor);
    if same_host && instance_actor_evidence(signer) == InstanceEvidence::Convention {
        return Ok(());
    }
    Err(Error::KeyNotOwned {
        key_id: key_id.to_string(),
        actor: activity.actor.clone(),
    })
}

/// What an actor document says about whether it is its instance's own actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceEvidence {
    /// An `Application`/`Service` at a path only instance actors have: `/actor` (Mastodon and most),
    /// `/relay` (Pleroma, Akkoma), `/users/HOST` (GoToSocial), the site root (Lemmy). No fetch needed.
    Convention,
    /// An `Application` elsewhere: Fedify before 2.3 had no fixed-path actors, so its apps put their
    /// instance actor at a sentinel such as `/users/instance` or `/users/__instance__`; Misskey serves
    /// its system accounts (and only those) as `Application`. No widely used server lets an account be
    /// an `Application`, so it counts as its instance's actor for subscribing, except that it cannot
    /// take over a subscription another actor of its instance holds unless the instance confirms it
    /// (as for [`InstanceEvidence::Discover`]). It never speaks for other actors ([`check_signer`]).
    Application,
    /// A `Service` elsewhere (a bot account such as Mastodon's `…/users/relay`): only the instance
    /// itself can say, through WebFinger or NodeInfo.
    Discover,
    /// Not an instance actor (a Person, a Group, no type).
    NotInstance,
}

/// Classifies `actor` without I/O (see [`InstanceEvidence`]).
pub fn instance_actor_evidence(actor: &Actor) -> InstanceEvidence {
    if !matches!(actor.kind.as_str(), "Application" | "Service") {
        return InstanceEvidence::NotInstance;
    }
    let Ok(url) = url::Url::parse(&actor.id) else {
        return InstanceEvidence::NotInstance;
    };
    let Some(host) = url.host_str() else {
        return InstanceEvidence::NotInstance;
    };
    let path = url.path().trim_end_matches('/');
    let gotosocial = path
        .strip_prefix("/users/")
        .is_some_and(|name| name.eq_ignore_ascii_case(host));
    let conventional = matches!(path, "" | "/actor" | "/relay") || gotosocial;
    if conventional && url.query().is_none() {
        InstanceEvidence::Convention
    } else if actor.kind == "Application" {
        InstanceEvidence::Application
    } else {
        InstanceEvidence::Discover
    }
}

/// Checks every id of an activity before anything is done with it: the actor and the activity id are
/// absolute `https:` URLs (`http:` only with `allow_http`) on one host, and the object of what is
/// forwarded is one too — on the actor's host for `Create`, `Update`, `Delete`, `Move` and `Undo` (an
/// instance speaks only for its own objects; an `Announce` may share anyone's). Dedupe is keyed by the
/// actor's host, so an id on another host could otherwise claim (and suppress) someone else's activity.
pub fn check_ids(activity: &Activity, allow_http: bool) -> Result<()> {
    let kind = activity.kind.as_str();
    let bad = |what: &str, id: &str| Error::BadRequest(format!("{kind} {what} {id:?}"));
    if !is_web_iri(&activity.actor, allow_http) {
        return Err(bad("actor is not an https URL:", &activity.actor));
    }
    let id = activity
        .id
        .as_deref()
        .ok_or_else(|| Error::BadRequest(format!("{kind} has no id")))?;
    if !is_web_iri(id, allow_http) {
        return Err(bad("id is not an https URL:", id));
    }
    if !same_authority(id, &activity.actor) {
        return Err(bad("id is not on the actor's host:", id));
    }
    let own_object = matches!(kind, "Create" | "Update" | "Delete" | "Move" | "Undo");
    if own_object || kind == "Announce" {
        let object = activity
            .object_id()
            .ok_or_else(|| Error::BadRequest(format!("{kind} has no object id")))?;
        if !is_web_iri(object, allow_http) {
            return Err(bad("object is not an https URL:", object));
        }
        if own_object && !same_authority(object, &activity.actor) {
            return Err(bad("object is not on the actor's host:", object));
        }
    }
    Ok(())
}

/// Refuses a Follow larger than [`MAX_FOLLOW_BYTES`] (checked before any signature work).
pub fn check_size(activity: &Activity, body_len: usize) -> Result<()> {
    if activity.kind == "Follow" && body_len > MAX_FOLLOW_BYTES {
        return Err(Error::TooLarge(format!(
            "a Follow of {body_len} bytes (at most {MAX_FOLLOW_BYTES})"
        )));
    }
    Ok(())
}

/// Where the relay may send to `actor` (a subscription's deliveries, an Accept or a Reject): its shared
/// inbox, else its inbox. Every inbox the actor names must be a web URL on the actor's own authority: a
/// document naming another host's inbox is refused outright, so it cannot aim the relay at that host.
pub fn inbox_of(actor: &Actor, allow_http: bool) -> Result<&str> {
    let named = [actor.shared_inbox.as_deref(), actor.inbox.as_deref()];
    for inbox in named.into_iter().flatten() {
        if !is_web_iri(inbox, allow_http) || !same_authority(inbox, &actor.id) {
            return Err(Error::BadRequest(format!(
                "actor {} may only name inboxes on its own host; {inbox:?} is on another host or not a web URL",
                actor.id
            )));
        }
    }
    named
        .into_iter()
        .flatten()
        .next()
        .ok_or_else(|| Error::BadRequest(format!("actor {} has no inbox", actor.id)))
}

/// Decides what to do with a verified activity from `sender` (the actor document of `activity.actor`).
pub fn decide(activity: &Activity, sender: &Actor, ctx: Context<'_>) -> Result<Decision> {
    let kind = activity.kind.as_str();
    match kind {
        "Follow" => Ok(decide_follow(activity, sender, ctx)),
        "Undo" if ctx.subscribed.is_none() => Ok(match ctx.pending {
            Some(pending) if undoes_follow(activity, pending) => {
                match check_undo(activity, pending, ctx) {
                    Ok(()) => Decision::WithdrawPending,
                    Err(reason) => Decision::Ignore(reason),
                }
            }
            _ => Decision::Ignore("not subscribed"),
        }),
        "Undo" if ctx.subscription.is_some_and(|s| undoes_follow(activity, s)) => {
            Ok(decide_unfollow(activity, ctx))
        }
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

/// Why a Follow by an actor that is not its instance's own is refused.
pub const NOT_INSTANCE_ACTOR: &str = "only an instance's own actor can subscribe to this relay";
/// Why a Follow by an `Application` is refused when another actor holds its instance's subscription.
pub const HELD_BY_ANOTHER: &str =
    "another actor of this instance holds its subscription; only the instance can hand it over";
/// Why a Follow by an `Application` is refused when another actor's Follow of its instance waits for
/// approval: what the admin approves must be the actor that asked.
pub const WAITING_FOR_ANOTHER: &str = "another actor of this instance has a Follow waiting for approval; only the instance can hand it over";

/// A Follow of Public (Mastodon style) or of the relay actor (LitePub) subscribes, when it comes from
/// the instance's own actor and the instance was not removed by the admin. Another actor of an already
/// subscribed instance cannot take its subscription over, nor its Follow waiting for approval (what
/// the admin approves must be the actor that asked): an actor known by its path, or one the instance
/// confirms, is the instance actor and may; an `Application` elsewhere may only when no other actor
/// holds the subscription or the waiting Follow (see [`InstanceEvidence::Application`]). The same
/// actor following again refreshes either.
fn decide_follow(activity: &Activity, sender: &Actor, ctx: Context<'_>) -> Decision {
    let Some(style) = follow_style(activity, ctx.relay_actor) else {
        return Decision::Ignore("Follow of something that is not this relay");
    };
    let refusal = match instance_actor_evidence(sender) {
        InstanceEvidence::Convention => None,
        InstanceEvidence::Application if ctx.instance_confirmed => None,
        InstanceEvidence::Application => held_by_another(sender, ctx.subscription, ctx.pending),
        InstanceEvidence::Discover if ctx.instance_confirmed => None,
        InstanceEvidence::Discover | InstanceEvidence::NotInstance => Some(NOT_INSTANCE_ACTOR),
    };
    match refusal {
        Some(reason) => Decision::RejectFollow(reason),
        None => Decision::Subscribe(style),
    }
}

/// Why `sender` may not take over its instance's subscription or Follow waiting for approval on its
/// own: another actor holds it.
fn held_by_another(
    sender: &Actor,
    subscription: Option<Subscription<'_>>,
    pending: Option<Subscription<'_>>,
) -> Option<&'static str> {
    let another = |held: Option<Subscription<'_>>| held.is_some_and(|s| s.actor != sender.id);
    if another(subscription) {
        Some(HELD_BY_ANOTHER)
    } else if another(pending) {
        Some(WAITING_FOR_ANOTHER)
    } else {
        None
    }
}

/// Whether a Follow by `sender` needs its instance to confirm that `sender` is its actor (WebFinger,
/// NodeInfo; see [`crate::federation::instance_actor`]): always for a [`InstanceEvidence::Discover`]
/// sender, for an [`InstanceEvidence::Application`] only to take over a subscription another actor
/// holds, never otherwise. `subscription` is the instance's subscription, or else its Follow waiting
/// for approval.
pub fn asks_instance(sender: &Actor, subscription: Option<Subscription<'_>>) -> bool {
    match instance_actor_evidence(sender) {
        InstanceEvidence::Discover => true,
        InstanceEvidence::Application => held_by_another(sender, subscription, None).is_some(),
        InstanceEvidence::Convention | InstanceEvidence::NotInstance => false,
    }
}

/// How a Follow subscribes, when it is a Follow of this relay: of Public (Mastodon style) or of the
/// relay actor (LitePub).
pub fn follow_style(activity: &Activity, relay_actor: &str) -> Option<Style> {
    let object = activity.object_id().filter(|_| activity.kind == "Follow")?;
    if is_public_iri(object) {
        Some(Style::Mastodon)
    } else if object == relay_actor {
        Some(Style::LitePub)
    } else {
        None
    }
}

/// Whether an Undo is about a Follow: it embeds one, or names `follow`'s id.
fn undoes_follow(activity: &Activity, follow: Subscription<'_>) -> bool {
    activity.object_kind() == Some("Follow")
        || (!follow.follow_id.is_empty() && activity.object_id() == Some(follow.follow_id))
}

/// Only the actor that subscribed, signing for itself, ends a subscription, and only by undoing that
/// subscription's Follow: by its id, or by embedding a Follow of Public or of the relay actor by it.
fn decide_unfollow(activity: &Activity, ctx: Context<'_>) -> Decision {
    let Some(sub) = ctx.subscription else {
        return Decision::Ignore("not subscribed");
    };
    match check_undo(activity, sub, ctx) {
        Ok(()) => Decision::Unsubscribe,
        Err(reason) => Decision::Ignore(reason),
    }
}

/// Whether `activity` undoes `follow` (a subscription, or a Follow waiting for approval): sent and
/// signed by the actor that followed, naming that Follow by id or embedding a Follow of Public or of
/// the relay actor by it. `Err` says why not.
fn check_undo(
    activity: &Activity,
    follow: Subscription<'_>,
    ctx: Context<'_>,
) -> std::result::Result<(), &'static str> {
    if activity.actor != follow.actor || ctx.signer != follow.actor {
        return Err("only the actor that subscribed can unsubscribe");
    }
    let by_id = !follow.follow_id.is_empty() && activity.object_id() == Some(follow.follow_id);
    let embedded = activity.embedded_object().is_some_and(|embedded| {
        has_type(embedded, "Follow")
            && get_id(embedded, "actor").is_none_or(|actor| actor == follow.actor)
            && get_id(embedded, "object")
                .is_some_and(|object| is_public_iri(object) || object == ctx.relay_actor)
    });
    if by_id || embedded {
        Ok(())
    } else {
        Err("Undo of a Follow that is not this instance's subscription")
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
        &activity.actor,
        activity_id,
        object_id,
        ctx.ld_signed_by_actor,
    )))
}

/// The forwarding plan for an activity of `actor` known to be public.
///
/// Dedupe keys carry the actor's host: one instance's ids cannot make another's activity a duplicate
/// (an id pre-registered by someone else would otherwise suppress, say, the real author's Delete).
pub fn forward_plan(
    kind: &str,
    actor: &str,
    activity_id: String,
    object_id: String,
    ld_signed: bool,
) -> Forward {
    let host = authority_of(actor).unwrap_or_default();
    let post = matches!(kind, "Create" | "Announce");
    let mut dedup_ids = vec![format!("{host} {activity_id}")];
    if post {
        dedup_ids.push(format!("{host} object:{object_id}"));
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
        &activity.actor,
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

    const SUBSCRIBER: &str = "https://a.example/actor";
    const FOLLOW_ID: &str = "https://a.example/follows/1";
    const ALICE: &str = "https://a.example/users/alice";

    /// A context where, when subscribed, `a.example` is subscribed by its `/actor` with [`FOLLOW_ID`]
    /// and the subscriber signed the request.
    fn ctx(subscribed: Option<Style>) -> Context<'static> {
        Context {
            relay_actor: RELAY,
            subscribed,
            ld_signed_by_actor: false,
            subscription: subscribed.map(|_| Subscription {
                actor: SUBSCRIBER,
                follow_id: FOLLOW_ID,
            }),
            signer: SUBSCRIBER,
            instance_confirmed: false,
            pending: None,
        }
    }

    fn follow_of_public(id: &str, by: &str) -> Activity {
        activity(json!({"id": id, "type": "Follow", "actor": by, "object": crate::ap::PUBLIC}))
    }

    #[test]
    fn instance_actors_are_known_by_convention_or_discovered() {
        use InstanceEvidence::*;
        for (id, kind, expected) in [
            ("https://a.example/actor", "Application", Convention),
            ("https://a.example/actor/", "Service", Convention),
            ("https://p.example/relay", "Application", Convention),
            (
                "https://g.example/users/g.example",
                "Application",
                Convention,
            ),
            ("https://lemmy.example/", "Application", Convention),
            // A Mastodon bot account named relay is not the instance, whatever its type says.
            ("https://a.example/users/relay", "Service", Discover),
            // Misskey's system account, Fedify's sentinel instance actors.
            (
                "https://m.example/users/9abcdef",
                "Application",
                Application,
            ),
            (
                "https://f.example/users/__instance__",
                "Application",
                Application,
            ),
            (
                "https://f.example/users/instance",
                "Application",
                Application,
            ),
            ("https://f.example/users/instance", "Service", Discover),
            ("https://a.example/actor", "Person", NotInstance),
            (
                "https://g.example/users/other.example",
                "Person",
                NotInstance,
            ),
            ("https://a.example/actor", "", NotInstance),
        ] {
            assert_eq!(
                instance_actor_evidence(&actor(id, kind)),
                expected,
                "{id} ({kind})"
            );
        }
    }

    #[test]
    fn a_bot_named_relay_cannot_subscribe_unless_its_instance_says_so() {
        let bot = actor("https://a.example/users/relay", "Service");
        let follow = follow_of_public("https://a.example/follows/9", &bot.id);
        assert!(matches!(
            decide(&follow, &bot, ctx(None)).unwrap(),
            Decision::RejectFollow(_)
        ));
        let confirmed = Context {
            instance_confirmed: true,
            ..ctx(None)
        };
        assert_eq!(
            decide(&follow, &bot, confirmed).unwrap(),
            Decision::Subscribe(Style::Mastodon)
        );
        // Confirmation never turns a person into an instance.
        let alice = actor(ALICE, "Person");
        assert!(matches!(
            decide(
                &follow_of_public("https://a.example/follows/8", ALICE),
                &alice,
                confirmed
            )
            .unwrap(),
            Decision::RejectFollow(_)
        ));
    }

    #[test]
    fn another_actor_of_a_subscribed_instance_cannot_take_it_over() {
        let alice = actor(ALICE, "Person");
        let by_alice = follow_of_public("https://a.example/follows/2", ALICE);
        assert!(matches!(
            decide(&by_alice, &alice, ctx(Some(Style::Mastodon))).unwrap(),
            Decision::RejectFollow(_)
        ));
        // The instance actor itself may follow again (an instance that lost its state).
        let instance = actor(SUBSCRIBER, "Application");
        assert_eq!(
            decide(
                &follow_of_public("https://a.example/follows/3", SUBSCRIBER),
                &instance,
                ctx(Some(Style::Mastodon))
            )
            .unwrap(),
            Decision::Subscribe(Style::Mastodon)
        );
    }

    #[test]
    fn an_application_elsewhere_subscribes_unless_another_actor_holds_the_subscription() {
        let fedify = actor("https://a.example/users/__instance__", "Application");
        let follow = follow_of_public("https://a.example/follows/4", &fedify.id);
        assert_eq!(
            decide(&follow, &fedify, ctx(None)).unwrap(),
            Decision::Subscribe(Style::Mastodon)
        );
        assert!(!asks_instance(&fedify, None));
        // a.example is subscribed by its /actor: the Application cannot take that over on its own...
        let held = ctx(Some(Style::Mastodon));
        assert_eq!(
            decide(&follow, &fedify, held).unwrap(),
            Decision::RejectFollow(HELD_BY_ANOTHER)
        );
        assert!(asks_instance(&fedify, held.subscription));
        // ...only when its instance names it.
        let confirmed = Context {
            instance_confirmed: true,
            ..held
        };
        assert_eq!(
            decide(&follow, &fedify, confirmed).unwrap(),
            Decision::Subscribe(Style::Mastodon)
        );
        // Its own subscription it may renew without asking anyone.
        let own = Context {
            subscription: Some(Subscription {
                actor: &fedify.id,
                follow_id: FOLLOW_ID,
            }),
            ..held
        };
        assert!(!asks_instance(&fedify, own.subscription));
        assert_eq!(
            decide(&follow, &fedify, own).unwrap(),
            Decision::Subscribe(Style::Mastodon)
        );
        // A Follow of another actor waiting for approval is not taken over either, unless the
        // instance names the Application; its own waiting Follow it refreshes.
        let waiting = Context {
            pending: Some(Subscription {
                actor: SUBSCRIBER,
                follow_id: FOLLOW_ID,
            }),
            ..ctx(None)
        };
        assert_eq!(
            decide(&follow, &fedify, waiting).unwrap(),
            Decision::RejectFollow(WAITING_FOR_ANOTHER)
        );
        assert!(asks_instance(&fedify, waiting.pending));
        assert_eq!(
            decide(
                &follow,
                &fedify,
                Context {
                    instance_confirmed: true,
                    ..waiting
                }
            )
            .unwrap(),
            Decision::Subscribe(Style::Mastodon)
        );
        let own_waiting = Context {
            pending: Some(Subscription {
                actor: &fedify.id,
                follow_id: FOLLOW_ID,
            }),
            ..waiting
        };
        assert!(!asks_instance(&fedify, own_waiting.pending));
        assert_eq!(
            decide(&follow, &fedify, own_waiting).unwrap(),
            Decision::Subscribe(Style::Mastodon)
        );
        // A Service elsewhere keeps the stricter rule, and an Application never speaks for others.
        let service = actor("https://a.example/users/__instance__", "Service");
        assert_eq!(
            decide(&follow, &service, ctx(None)).unwrap(),
            Decision::RejectFollow(NOT_INSTANCE_ACTOR)
        );
        let bob_post = activity(
            json!({"type": "Create", "actor": "https://a.example/users/bob", "object": "x"}),
        );
        assert!(
            check_signer(&bob_post, &fedify, "https://a.example/users/__instance__#k").is_err()
        );
    }

    #[test]
    fn an_undo_withdraws_a_follow_waiting_for_approval_only_by_its_sender() {
        let instance = actor(SUBSCRIBER, "Application");
        let undo = |by: &str, object: serde_json::Value| {
            activity(
                json!({"id": format!("{by}#undo"), "type": "Undo", "actor": by, "object": object}),
            )
        };
        let waiting = Context {
            pending: Some(Subscription {
                actor: SUBSCRIBER,
                follow_id: FOLLOW_ID,
            }),
            ..ctx(None)
        };
        assert_eq!(
            decide(&undo(SUBSCRIBER, json!(FOLLOW_ID)), &instance, waiting).unwrap(),
            Decision::WithdrawPending
        );
        let embedded = follow_of_public(FOLLOW_ID, SUBSCRIBER).raw;
        assert_eq!(
            decide(&undo(SUBSCRIBER, embedded), &instance, waiting).unwrap(),
            Decision::WithdrawPending
        );
        let alice = actor(ALICE, "Person");
        let as_alice = Context {
            signer: ALICE,
            ..waiting
        };
        assert!(matches!(
            decide(&undo(ALICE, json!(FOLLOW_ID)), &alice, as_alice).unwrap(),
            Decision::Ignore(_)
        ));
        assert_eq!(
            decide(&undo(SUBSCRIBER, json!(FOLLOW_ID)), &instance, ctx(None)).unwrap(),
            Decision::Ignore("not subscribed")
        );
    }

    #[test]
    fn only_the_subscriber_undoes_its_own_follow() {
        let instance = actor(SUBSCRIBER, "Application");
        let alice = actor(ALICE, "Person");
        let undo = |by: &str, object: serde_json::Value| {
            activity(
                json!({"id": format!("{by}#undo"), "type": "Undo", "actor": by, "object": object}),
            )
        };
        let subscribed = ctx(Some(Style::Mastodon));
        let as_alice = Context {
            signer: ALICE,
            ..subscribed
        };
        // By id, and by an embedded Follow of Public (the stored id may be an older Follow's).
        assert_eq!(
            decide(&undo(SUBSCRIBER, json!(FOLLOW_ID)), &instance, subscribed).unwrap(),
            Decision::Unsubscribe
        );
        let embedded = json!({"id": "https://a.example/follows/0", "type": "Follow", "actor": SUBSCRIBER, "object": crate::ap::PUBLIC});
        assert_eq!(
            decide(&undo(SUBSCRIBER, embedded.clone()), &instance, subscribed).unwrap(),
            Decision::Unsubscribe
        );
        // A person of the instance: neither its own "Follow of Public" nor the instance's Follow.
        let alices_follow = json!({"id": "https://a.example/follows/5", "type": "Follow", "actor": ALICE, "object": crate::ap::PUBLIC});
        for object in [alices_follow, json!(FOLLOW_ID), embedded.clone()] {
            assert!(
                matches!(
                    decide(&undo(ALICE, object.clone()), &alice, as_alice).unwrap(),
                    Decision::Ignore(_)
                ),
                "{object}"
            );
        }
        // The subscriber's actor, but signed by another actor of the instance.
        let other_signer = Context {
            signer: "https://a.example/relay",
            ..subscribed
        };
        assert!(matches!(
            decide(&undo(SUBSCRIBER, embedded), &instance, other_signer).unwrap(),
            Decision::Ignore(_)
        ));
        // The subscriber undoing some other Follow (of a person) keeps its subscription.
        let of_bob = json!({"id": "https://a.example/follows/6", "type": "Follow", "actor": SUBSCRIBER, "object": "https://b.example/users/bob"});
        assert!(matches!(
            decide(&undo(SUBSCRIBER, of_bob), &instance, subscribed).unwrap(),
            Decision::Ignore(_)
        ));
        // An Undo by an unknown id that merely mentions "follow" is no unsubscribe.
        assert_ne!(
            decide(
                &undo(SUBSCRIBER, json!("https://a.example/follows/999")),
                &instance,
                subscribed
            )
            .unwrap(),
            Decision::Unsubscribe
        );
        assert_eq!(
            decide(&undo(SUBSCRIBER, json!(FOLLOW_ID)), &instance, ctx(None)).unwrap(),
            Decision::Ignore("not subscribed")
        );
    }

    #[test]
    fn ids_must_be_https_urls_on_the_actors_host() {
        let create = |id: &str, object: &str| {
            activity(json!({"id": id, "type": "Create", "actor": ALICE,
                "to": [crate::ap::PUBLIC], "object": {"id": object, "type": "Note", "to": [crate::ap::PUBLIC]}}))
        };
        let reason = |a: &Activity, allow_http: bool| match check_ids(a, allow_http) {
            Err(Error::BadRequest(why)) => why,
            other => panic!("{a:?} not refused: {other:?}"),
        };
        assert!(
            check_ids(
                &create("https://a.example/s/1/activity", "https://a.example/s/1"),
                false
            )
            .is_ok()
        );
        assert!(
            reason(
                &create("https://a.example/s/1/activity", "not a url"),
                false
            )
            .contains("not an https URL")
        );
        assert!(
            reason(
                &create("https://a.example/s/1/activity", "javascript:alert(1)"),
                false
            )
            .contains("not an https URL")
        );
        assert!(
            reason(
                &create("https://a.example/s/1/activity", "https://b.example/s/1"),
                false
            )
            .contains("not on the actor's host")
        );
        assert!(reason(&create("not a url", "https://a.example/s/1"), false).contains("id is not"));
        let http = create("http://a.example/s/1/activity", "http://a.example/s/1");
        let http = Activity {
            actor: "http://a.example/users/alice".into(),
            ..http
        };
        assert!(reason(&http, false).contains("not an https URL"));
        assert!(
            check_ids(&http, true).is_ok(),
            "http is fine where private networks are allowed"
        );
        let announce = |object: &str| {
            activity(
                json!({"id": "https://a.example/a/1", "type": "Announce", "actor": ALICE, "object": object, "to": [crate::ap::PUBLIC]}),
            )
        };
        assert!(
            reason(&announce("javascript:alert(1)"), false).contains("object is not an https URL")
        );
        assert!(
            check_ids(&announce("https://elsewhere.example/s/9"), false).is_ok(),
            "anyone's post may be boosted"
        );
        // Another subscriber pre-registering the id of a.example's future Delete.
        let squatted = activity(
            json!({"id": "https://a.example/users/alice/statuses/123#delete", "type": "Delete",
            "actor": "https://b.example/users/mallory", "object": "https://b.example/users/mallory/statuses/1"}),
        );
        assert!(reason(&squatted, false).contains("not on the actor's host"));
        let delete_other = activity(json!({"id": "https://b.example/d/1", "type": "Delete",
            "actor": "https://b.example/users/mallory", "object": "https://a.example/users/alice/statuses/123"}));
        assert!(reason(&delete_other, false).contains("object is not on the actor's host"));
        let no_id = activity(json!({"type": "Update", "actor": ALICE, "object": ALICE}));
        assert!(reason(&no_id, false).contains("no id"));
        let actor_garbage = activity(
            json!({"id": "https://a.example/x", "type": "Follow", "actor": "javascript:alert(1)", "object": crate::ap::PUBLIC}),
        );
        assert!(reason(&actor_garbage, false).contains("actor"));
    }

    #[test]
    fn dedupe_is_per_actor_host() {
        let id = "https://a.example/users/alice/statuses/123#delete";
        let a = forward_plan("Delete", ALICE, id.into(), "x".into(), false);
        let b = forward_plan(
            "Delete",
            "https://b.example/users/m",
            id.into(),
            "x".into(),
            false,
        );
        assert_ne!(a.dedup_ids, b.dedup_ids);
        assert_eq!(a.dedup_ids, vec![format!("a.example {id}")]);
    }

    #[test]
    fn follows_are_small() {
        let follow = follow_of_public(FOLLOW_ID, SUBSCRIBER);
        assert!(check_size(&follow, MAX_FOLLOW_BYTES).is_ok());
        assert!(matches!(
            check_size(&follow, MAX_FOLLOW_BYTES + 1),
            Err(Error::TooLarge(_))
        ));
        let create = activity(
            json!({"id": "https://a.example/c", "type": "Create", "actor": ALICE, "object": "https://a.example/n"}),
        );
        assert!(
            check_size(&create, 100_000).is_ok(),
            "only Follows are this small"
        );
    }

    #[test]
    fn replies_go_only_to_an_inbox_on_the_actors_host() {
        let doc = |inbox: &str, shared: Option<&str>| {
            let mut v = json!({"id": SUBSCRIBER, "type": "Application", "inbox": inbox});
            if let Some(shared) = shared {
                v["endpoints"] = json!({"sharedInbox": shared});
            }
            Actor::from_value(v).unwrap()
        };
        let a = doc(
            "https://a.example/actor/inbox",
            Some("https://a.example/inbox"),
        );
        assert_eq!(inbox_of(&a, false).unwrap(), "https://a.example/inbox");
        let shared_elsewhere = doc(
            "https://a.example/actor/inbox",
            Some("https://victim.example/inbox"),
        );
        assert!(inbox_of(&shared_elsewhere, false).is_err());
        assert!(inbox_of(&doc("https://victim.example/inbox", None), false).is_err());
        assert!(inbox_of(&doc("javascript:alert(1)", None), false).is_err());
        assert!(inbox_of(&doc("http://a.example/inbox", None), false).is_err());
        assert!(inbox_of(&doc("http://a.example/inbox", None), true).is_ok());
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
                "a.example https://a.example/s/1/activity",
                "a.example object:https://a.example/s/1"
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
        // A bot account called relay is no instance actor: it speaks only for itself.
        let bot = actor("https://a.example/users/relay", "Service");
        assert!(check_signer(&bob_post, &bot, "https://a.example/users/relay#main-key").is_err());
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
