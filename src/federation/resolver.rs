//! Finding out who signed a request: keyId → public key → owning actor, with caching.
//!
//! A keyId is dereferenced without its fragment. The document found is either the actor (Mastodon,
//! Misskey, Pleroma: `…/actor#main-key`) whose `publicKey` entry with that id is used, or a standalone key
//! document (GoToSocial's `…/main-key` stub, Fedify's key) whose `owner` is then fetched and must list the
//! key. Either way the owner must live on the keyId's host. Parsed keys are cached (parsing a PEM costs
//! more than a verification); a signature that fails with a cached key refetches it once, for key rotation.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use crate::ap::{Actor, KeyOrActor, authority_of};
use crate::federation::net::Http;
use crate::httpsig::PublicKey;
use crate::{Error, Result};

/// A verified binding of a key to its owning actor.
#[derive(Clone)]
pub struct ResolvedKey {
    /// The parsed key, ready to verify.
    pub key: PublicKey,
    /// The actor that owns the key.
    pub owner: Arc<Actor>,
}

/// Resolves and caches keys and actors.
#[derive(Clone)]
pub struct Resolver {
    http: Http,
    keys: Cache<String, ResolvedKey>,
    actors: Cache<String, Arc<Actor>>,
}

impl Resolver {
    /// A resolver whose entries live `ttl`.
    pub fn new(http: Http, ttl: Duration) -> Resolver {
        Resolver {
            http,
            keys: Cache::builder()
                .max_capacity(50_000)
                .time_to_live(ttl)
                .build(),
            actors: Cache::builder()
                .max_capacity(50_000)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// The key `key_id` and its owner; `fresh` bypasses (and refreshes) the cache.
    pub async fn key(&self, key_id: &str, fresh: bool) -> Result<ResolvedKey> {
        if !fresh && let Some(found) = self.keys.get(key_id).await {
            return Ok(found);
        }
        let resolved = self.fetch_key(key_id).await?;
        self.keys.insert(key_id.to_string(), resolved.clone()).await;
        self.actors
            .insert(resolved.owner.id.clone(), resolved.owner.clone())
            .await;
        Ok(resolved)
    }

    /// An actor document by id (cached).
    pub async fn actor(&self, id: &str) -> Result<Arc<Actor>> {
        if let Some(found) = self.actors.get(id).await {
            return Ok(found);
        }
        let actor = Arc::new(self.fetch_actor(id).await?);
        self.actors.insert(id.to_string(), actor.clone()).await;
        Ok(actor)
    }

    /// Forgets everything cached about `key_id` (after an actor Delete or Update).
    pub async fn forget_actor(&self, actor_id: &str) {
        self.actors.invalidate(actor_id).await;
    }

    async fn fetch_actor(&self, id: &str) -> Result<Actor> {
        let doc = self.http.get_json(id).await?;
        match KeyOrActor::from_value(doc)? {
            KeyOrActor::Actor(actor) if same_document(&actor.id, id) => Ok(*actor),
            KeyOrActor::Actor(actor) => {
                Err(Error::fetch(id, format!("document has id {}", actor.id)))
            }
            KeyOrActor::Key(_) => Err(Error::fetch(id, "expected an actor, found a key document")),
        }
    }

    async fn fetch_key(&self, key_id: &str) -> Result<ResolvedKey> {
        let document_url = key_id.split('#').next().unwrap_or(key_id);
        let doc = self.http.get_json(document_url).await?;
        let key_authority = authority_of(key_id)
            .ok_or_else(|| Error::KeyUnusable(format!("keyId {key_id:?} is not a URL")))?;
        let (owner, pem) = match KeyOrActor::from_value(doc)? {
            KeyOrActor::Actor(actor) => {
                if !same_document(&actor.id, document_url) {
                    return Err(Error::KeyUnusable(format!(
                        "document at {document_url} has id {}",
                        actor.id
                    )));
                }
                let pem = actor.key(key_id).map(|k| k.pem.clone()).ok_or_else(|| {
                    Error::KeyUnusable(format!("actor {} does not list key {key_id}", actor.id))
                })?;
                (*actor, pem)
            }
            KeyOrActor::Key(key) => {
                if !same_document(&key.id, key_id) {
                    return Err(Error::KeyUnusable(format!(
                        "key document at {document_url} has id {}",
                        key.id
                    )));
                }
                let owner_id = key
                    .owner
                    .clone()
                    .ok_or_else(|| Error::KeyUnusable(format!("key {key_id} names no owner")))?;
                let owner = self.fetch_actor(&owner_id).await?;
                if owner.key(key_id).is_none() {
                    return Err(Error::KeyUnusable(format!(
                        "owner {owner_id} does not list key {key_id}"
                    )));
                }
                (owner, key.pem)
            }
        };
        if authority_of(&owner.id).as_deref() != Some(key_authority.as_str()) {
            return Err(Error::KeyUnusable(format!(
                "key {key_id} is owned by {} on another host",
                owner.id
            )));
        }
        Ok(ResolvedKey {
            key: PublicKey::from_pem(&pem)?,
            owner: Arc::new(owner),
        })
    }
}

/// Whether a document's `id` is the URL it was fetched from (ignoring a fragment and a trailing slash).
pub(crate) fn same_document(id: &str, url: &str) -> bool {
    let strip = |s: &str| {
        s.split('#')
            .next()
            .unwrap_or(s)
            .trim_end_matches('/')
            .to_string()
    };
    strip(id) == strip(url)
}
