//! Finding out who signed a request: keyId → public key → owning actor, with bounded caching.
//!
//! A keyId is dereferenced without its fragment. The document found is one of three shapes:
//! - the owning actor itself (Mastodon, Misskey, Pleroma, Lemmy: `…/actor#main-key`), whose `publicKey`
//!   entry with that id is used;
//! - a standalone key document with an `owner` (Fedify's `CryptographicKey`);
//! - GoToSocial's stub (`…/main-key`): an actor-shaped document whose `id` is the owner, not the URL
//!   fetched, holding the key with exactly that id.
//!
//! For the last two the owner is fetched and must list the same key (same id or same PEM). Either way the
//! owner must live on the keyId's host.
//!
//! Everything here runs before a signature is known to be good, so it is built to cost an attacker's
//! request little: the keyId must be on the activity actor's host before anything is fetched; fetches are
//! rate-limited per host and failures are remembered briefly; one cache entry per key *document* (a
//! `#fragment` variant finds the same entry); entries keep only the parsed keys and the few actor fields
//! the relay uses (never the fetched JSON), and the caches are bounded by weight in bytes. A signature
//! that fails with a cached key refetches it (key rotation) only when that key verified before, and at
//! most once per `refetch_interval`.

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use moka::future::Cache;
use serde_json::Value;

use crate::ap::iri::strip_fragment;
use crate::ap::{Actor, KeyDoc, KeyOrActor, authority_of};
use crate::federation::net::Http;
use crate::httpsig::PublicKey;
use crate::{Error, Result};

/// Keys of one document kept at most (an actor may list several; more is not a real-world shape).
const MAX_KEYS_PER_DOCUMENT: usize = 8;

/// Retained actor fields above this size make the actor unusable (ids and inboxes are short URLs).
const MAX_ACTOR_BYTES: usize = 16 * 1024;

/// What a parsed key is counted as in the cache weight (an RSA-4096 key with its aws-lc structures
/// stays below this).
const PARSED_KEY_WEIGHT: usize = 2048;

/// Fixed per-entry overhead counted in the cache weight (allocations, moka's own bookkeeping).
const ENTRY_OVERHEAD: usize = 256;

/// Where the resolver gets documents from: the signing HTTP client in the relay, a map in tests.
pub trait Fetch: Send + Sync + 'static {
    /// The JSON document at `url`.
    fn get_json<'a>(
        &'a self,
        url: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Value>> + Send + 'a>>;
}

impl Fetch for Http {
    fn get_json<'a>(
        &'a self,
        url: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Value>> + Send + 'a>> {
        Box::pin(Http::get_json(self, url))
    }
}

/// How much the resolver may keep and fetch.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How long a fetched key or actor is trusted.
    pub ttl: Duration,
    /// Total weight of all caches, in bytes.
    pub cache_bytes: u64,
    /// Key and actor fetches allowed per host and minute (0: unlimited).
    pub fetches_per_minute: u32,
    /// A key is refetched after a failed verification at most this often.
    pub refetch_interval: Duration,
    /// How long a key that failed to resolve is not fetched again.
    pub negative_ttl: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ttl: Duration::from_secs(24 * 3600),
            cache_bytes: 32 * 1024 * 1024,
            fetches_per_minute: 120,
            refetch_interval: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(30),
        }
    }
}

/// A verified binding of a key to its owning actor.
#[derive(Clone, Debug)]
pub struct ResolvedKey {
    /// The parsed key, ready to verify.
    pub key: PublicKey,
    /// The actor that owns the key (only the fields the relay uses; see [`slim`]).
    pub owner: Arc<Actor>,
}

/// What is cached per key document: its parsed keys and their owner.
struct KeyEntry {
    /// The document's keys owned by `owner`, by id.
    keys: Vec<(String, PublicKey)>,
    owner: Arc<Actor>,
    /// Whether a signature ever verified with a key of this document.
    verified: AtomicBool,
    /// When the document was last fetched or a refetch was last allowed.
    last_fetch: Mutex<Instant>,
    weight: u32,
}

impl KeyEntry {
    fn new(keys: Vec<(String, PublicKey)>, owner: Arc<Actor>, verified: bool) -> KeyEntry {
        let weight = ENTRY_OVERHEAD
            + actor_weight(&owner)
            + keys
                .iter()
                .map(|(id, _)| id.len() + PARSED_KEY_WEIGHT)
                .sum::<usize>();
        KeyEntry {
            keys,
            owner,
            verified: AtomicBool::new(verified),
            last_fetch: Mutex::new(Instant::now()),
            weight: u32::try_from(weight).unwrap_or(u32::MAX),
        }
    }

    /// The key `key_id` names, by the rules of [`Actor::key`]: an exact id, or the only key when
    /// `key_id` names the owner itself.
    fn find(&self, key_id: &str) -> Option<&PublicKey> {
        if let Some((_, k)) = self.keys.iter().find(|(id, _)| id == key_id) {
            return Some(k);
        }
        match self.keys.as_slice() {
            [(_, only)] if strip_fragment(key_id) == self.owner.id => Some(only),
            _ => None,
        }
    }

    fn resolved(&self, key: &PublicKey) -> ResolvedKey {
        ResolvedKey {
            key: key.clone(),
            owner: self.owner.clone(),
        }
    }

    /// Takes this document's refetch allowance if `interval` has passed since the last fetch.
    fn claim_refetch(&self, interval: Duration) -> bool {
        let Ok(mut last) = self.last_fetch.lock() else {
            return false;
        };
        if last.elapsed() < interval {
            return false;
        }
        *last = Instant::now();
        true
    }
}

/// A keyId checked to be a URL, with the document it lives in.
struct KeyTarget<'a> {
    key_id: &'a str,
    /// The keyId without fragment, normalised (scheme and host case, default port, escapes): the one
    /// cache entry of every spelling of the key's document.
    document: String,
    host: String,
}

impl<'a> KeyTarget<'a> {
    /// Fails with [`Error::BadRequest`] (a malformed request, not a missing key) unless `key_id` is an
    /// http(s) URL with a host.
    fn parse(key_id: &'a str) -> Result<KeyTarget<'a>> {
        let bad = || Error::BadRequest(format!("keyId {key_id:?} is not an http(s) URL"));
        let mut url = url::Url::parse(key_id).map_err(|_| bad())?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad());
        }
        let host = authority_of(key_id).ok_or_else(bad)?;
        url.set_fragment(None);
        Ok(KeyTarget {
            key_id,
            document: url.into(),
            host,
        })
    }
}

/// Resolves and caches keys and actors.
#[derive(Clone)]
pub struct Resolver {
    fetcher: Arc<dyn Fetch>,
    /// Key documents by URL (the keyId without fragment).
    keys: Cache<String, Arc<KeyEntry>>,
    /// Actors by id, slimmed.
    actors: Cache<String, Arc<Actor>>,
    /// Key documents that failed to resolve, with the reason.
    failed: Cache<String, Arc<str>>,
    limiter: Option<Arc<DefaultKeyedRateLimiter<String>>>,
    refetch_interval: Duration,
}

impl Resolver {
    /// A resolver fetching through `fetcher`.
    pub fn new(fetcher: Arc<dyn Fetch>, settings: Settings) -> Resolver {
        let budget = settings.cache_bytes.max(64 * 1024);
        let keys = Cache::builder()
            .max_capacity(budget / 2)
            .weigher(|k: &String, v: &Arc<KeyEntry>| {
                v.weight
                    .saturating_add(u32::try_from(k.len()).unwrap_or(u32::MAX))
            })
            .time_to_live(settings.ttl)
            .support_invalidation_closures()
            .build();
        let actors = Cache::builder()
            .max_capacity(budget * 3 / 8)
            .weigher(|k: &String, v: &Arc<Actor>| {
                u32::try_from(k.len() + actor_weight(v)).unwrap_or(u32::MAX)
            })
            .time_to_live(settings.ttl)
            .build();
        let failed = Cache::builder()
            .max_capacity(budget / 8)
            .weigher(|k: &String, v: &Arc<str>| {
                u32::try_from(ENTRY_OVERHEAD + k.len() + v.len()).unwrap_or(u32::MAX)
            })
            .time_to_live(settings.negative_ttl.max(Duration::from_millis(1)))
            .build();
        let limiter = NonZeroU32::new(settings.fetches_per_minute)
            .map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n))));
        Resolver {
            fetcher,
            keys,
            actors,
            failed,
            limiter,
            refetch_interval: settings.refetch_interval,
        }
    }

    /// The key that signed a request and its owner, once `check` (the signature verification) passes
    /// with it.
    ///
    /// Nothing is fetched unless the keyId is on `actor_host`, the host of the activity's actor. A
    /// failed check refetches the key (rotation) only if a signature verified with it before and the
    /// last fetch is older than the refetch interval; otherwise the check's error is returned.
    pub async fn signer(
        &self,
        key_id: &str,
        actor_host: &str,
        check: impl Fn(&PublicKey) -> Result<()>,
    ) -> Result<ResolvedKey> {
        self.signer_fetching(key_id, actor_host, true, check).await
    }

    /// [`Resolver::signer`], fetching nothing when `may_fetch` is false: a key that is not cached
    /// (or would be refetched) then fails with [`Error::RateLimited`]. The inbox says false for a
    /// client over its allowance of failed key fetches.
    pub async fn signer_fetching(
        &self,
        key_id: &str,
        actor_host: &str,
        may_fetch: bool,
        check: impl Fn(&PublicKey) -> Result<()>,
    ) -> Result<ResolvedKey> {
        let target = KeyTarget::parse(key_id)?;
        if target.host != actor_host {
            return Err(Error::KeyNotOwned {
                key_id: key_id.to_string(),
                actor: format!("an actor on {actor_host}"),
            });
        }
        let entry = self.entry(&target, may_fetch).await?;
        let key = entry
            .find(key_id)
            .ok_or_else(|| not_listed(&entry, key_id))?;
        let failure = match check(key) {
            Ok(()) => {
                entry.verified.store(true, Ordering::Relaxed);
                return Ok(entry.resolved(key));
            }
            Err(e) => e,
        };
        if !may_fetch
            || !entry.verified.load(Ordering::Relaxed)
            || !entry.claim_refetch(self.refetch_interval)
        {
            return Err(failure);
        }
        tracing::debug!(%key_id, "signature failed with a key that verified before: refetching it");
        let fresh = self.fetch_entry(&target, true).await?;
        let key = fresh
            .find(key_id)
            .ok_or_else(|| not_listed(&fresh, key_id))?;
        check(key)?;
        Ok(fresh.resolved(key))
    }

    /// The key `key_id` and its owner, without verifying anything (LD signature creators).
    pub async fn key(&self, key_id: &str) -> Result<ResolvedKey> {
        let target = KeyTarget::parse(key_id)?;
        let entry = self.entry(&target, true).await?;
        let key = entry
            .find(key_id)
            .ok_or_else(|| not_listed(&entry, key_id))?;
        Ok(entry.resolved(key))
    }

    /// An actor by id (cached, slimmed; concurrent misses of one actor share one fetch).
    pub async fn actor(&self, id: &str) -> Result<Arc<Actor>> {
        let fetch = async { Ok::<_, Error>(Arc::new(slim(self.fetch_actor(id).await?)?)) };
        self.actors
            .try_get_with(id.to_string(), fetch)
            .await
            .map_err(|e| unshare(e, id))
    }

    /// Forgets the actor `actor_id` and every key it owns (after its Update or Delete), so the next
    /// request fetches them anew.
    pub async fn forget_actor(&self, actor_id: &str) {
        self.actors.invalidate(actor_id).await;
        if let Ok(target) = KeyTarget::parse(actor_id) {
            self.keys.invalidate(&target.document).await;
        }
        let owner = actor_id.to_string();
        if let Err(e) = self
            .keys
            .invalidate_entries_if(move |_, entry| entry.owner.id == owner)
        {
            tracing::warn!(error = %e, "could not forget the keys of {actor_id}");
        }
    }

    /// The weight of everything cached, in bytes (after moka's pending maintenance).
    pub async fn cached_bytes(&self) -> u64 {
        self.keys.run_pending_tasks().await;
        self.actors.run_pending_tasks().await;
        self.failed.run_pending_tasks().await;
        self.keys.weighted_size() + self.actors.weighted_size() + self.failed.weighted_size()
    }

    /// Drops the fetch allowances of hosts that are back to full (keeps memory bounded).
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// The cached entry of the key's document; fetched when absent, or when it does not list the key
    /// and was fetched longer than the refetch interval ago (a key added since).
    async fn entry(&self, target: &KeyTarget<'_>, may_fetch: bool) -> Result<Arc<KeyEntry>> {
        let cached = self.keys.get(&target.document).await;
        if !may_fetch {
            return cached.ok_or_else(|| {
                Error::RateLimited(format!(
                    "key fetches for {} (too many failed from this address)",
                    target.host
                ))
            });
        }
        match cached {
            Some(entry)
                if entry.find(target.key_id).is_some()
                    || !entry.claim_refetch(self.refetch_interval) =>
            {
                Ok(entry)
            }
            Some(entry) => {
                let verified = entry.verified.load(Ordering::Relaxed);
                self.fetch_entry(target, verified).await
            }
            // A miss: concurrent misses of one document share one fetch (the cache runs one
            // loader per key and hands its result to every waiter).
            None => {
                self.check_not_failed(target).await?;
                self.keys
                    .try_get_with(target.document.clone(), self.load_entry(target, false))
                    .await
                    .map_err(|e| unshare(e, &target.document))
            }
        }
    }

    /// Fails at once for a document that failed to resolve within the negative TTL.
    async fn check_not_failed(&self, target: &KeyTarget<'_>) -> Result<()> {
        match self.failed.get(&target.document).await {
            Some(reason) => Err(Error::KeyFetch {
                url: target.document.clone(),
                reason: format!("{reason} (failed recently; not retried yet)"),
            }),
            None => Ok(()),
        }
    }

    /// Fetches the key document again (a rotated or added key), caches the result (or the failure)
    /// and returns it.
    async fn fetch_entry(&self, target: &KeyTarget<'_>, verified: bool) -> Result<Arc<KeyEntry>> {
        self.check_not_failed(target).await?;
        let entry = self.load_entry(target, verified).await?;
        self.keys
            .insert(target.document.clone(), entry.clone())
            .await;
        Ok(entry)
    }

    /// Fetches and checks the key document; caches its owner, or the failure (not the entry itself).
    async fn load_entry(&self, target: &KeyTarget<'_>, verified: bool) -> Result<Arc<KeyEntry>> {
        match self.resolve_document(target).await {
            Ok((keys, owner)) => {
                let owner = Arc::new(owner);
                let entry = Arc::new(KeyEntry::new(keys, owner.clone(), verified));
                self.actors.insert(owner.id.clone(), owner).await;
                Ok(entry)
            }
            Err(e) => {
                if e.status().as_u16() == 401 {
                    let mut reason = e.to_string();
                    reason.truncate(300);
                    self.failed
                        .insert(target.document.clone(), reason.into())
                        .await;
                }
                Err(e)
            }
        }
    }

    /// Fetches and checks the key document and, when it is not the owner itself, the owner.
    async fn resolve_document(
        &self,
        target: &KeyTarget<'_>,
    ) -> Result<(Vec<(String, PublicKey)>, Actor)> {
        let (key_id, document) = (target.key_id, target.document.as_str());
        let doc = self.fetch(document).await?;
        let parsed = KeyOrActor::from_value(doc).map_err(sender_side)?;
        let (key, owner_id) = match parsed {
            KeyOrActor::Actor(actor) if same_document(&actor.id, document) => {
                let owned: Vec<&KeyDoc> = actor
                    .public_keys
                    .iter()
                    .filter(|k| k.owner.as_deref().is_none_or(|o| o == actor.id))
                    .take(MAX_KEYS_PER_DOCUMENT)
                    .collect();
                let mut keys = Vec::with_capacity(owned.len());
                for k in owned {
                    match PublicKey::from_pem(&k.pem) {
                        Ok(parsed) => keys.push((k.id.clone(), parsed)),
                        Err(e) if k.id == key_id => return Err(e),
                        Err(_) => {} // another key the relay cannot use; the one asked for may be fine
                    }
                }
                // Whether the keyId names one of these keys is decided on the cached entry, so that a
                // forged variant neither fails the document for the real key nor costs another fetch.
                let owner = slim(*actor)?;
                check_host(&owner.id, target)?;
                return Ok((keys, owner));
            }
            // GoToSocial's stub: an actor-shaped document naming its owner, holding exactly this key.
            KeyOrActor::Actor(stub) => {
                // The key named, else the one living at this URL (a forged `#fragment` variant then
                // finds the document cached and fails the exact match there, costing nothing more).
                let named = |id: &str| stub.public_keys.iter().find(|k| k.id == id);
                let Some(key) = named(key_id).or_else(|| named(document)) else {
                    return Err(Error::KeyUnusable(format!(
                        "document at {document} has id {} and lists no key {key_id}",
                        stub.id
                    )));
                };
                let owner_id = key.owner.clone().unwrap_or_else(|| stub.id.clone());
                if owner_id != stub.id {
                    return Err(Error::KeyUnusable(format!(
                        "key stub {} names owner {owner_id}",
                        stub.id
                    )));
                }
                (key.clone(), owner_id)
            }
            KeyOrActor::Key(key) => {
                if !same_document(&key.id, key_id) {
                    return Err(Error::KeyUnusable(format!(
                        "key document at {document} has id {}",
                        key.id
                    )));
                }
                let owner_id = key
                    .owner
                    .clone()
                    .ok_or_else(|| Error::KeyUnusable(format!("key {key_id} names no owner")))?;
                (key, owner_id)
            }
        };
        check_host(&owner_id, target)?;
        let owner = self.fetch_actor(&owner_id).await?;
        let listed = owner.key(&key.id).is_some()
            || owner.public_keys.iter().any(|k| {
                same_pem(&k.pem, &key.pem) && k.owner.as_deref().is_none_or(|o| o == owner.id)
            });
        if !listed {
            return Err(Error::KeyUnusable(format!(
                "owner {owner_id} does not list key {key_id}"
            )));
        }
        let parsed = PublicKey::from_pem(&key.pem)?;
        Ok((vec![(key.id, parsed)], slim(owner)?))
    }

    async fn fetch_actor(&self, id: &str) -> Result<Actor> {
        let doc = self.fetch(id).await?;
        match KeyOrActor::from_value(doc).map_err(sender_side)? {
            KeyOrActor::Actor(actor) if same_document(&actor.id, id) => Ok(*actor),
            KeyOrActor::Actor(actor) => Err(Error::KeyUnusable(format!(
                "document at {id} has id {}",
                actor.id
            ))),
            KeyOrActor::Key(_) => Err(Error::KeyUnusable(format!(
                "expected an actor at {id}, found a key document"
            ))),
        }
    }

    /// One fetch, charged to the host's allowance; failures are the sender's (401), not the relay's.
    async fn fetch(&self, url: &str) -> Result<Value> {
        let host = authority_of(url).unwrap_or_default();
        if let Some(limiter) = &self.limiter
            && limiter.check_key(&host).is_err()
        {
            return Err(Error::RateLimited(format!(
                "{host} (key and actor fetches)"
            )));
        }
        self.fetcher.get_json(url).await.map_err(sender_side)
    }
}

/// The error of a fetch several requests waited for, as each of them answers it: the error itself for
/// the last one holding it, an equivalent one (same status, same words) for the others.
fn unshare(shared: Arc<Error>, document: &str) -> Error {
    Arc::try_unwrap(shared).unwrap_or_else(|e| match &*e {
        Error::RateLimited(what) => Error::RateLimited(what.clone()),
        Error::KeyUnusable(why) => Error::KeyUnusable(why.clone()),
        Error::BadRequest(why) => Error::BadRequest(why.clone()),
        Error::ForbiddenAddress(why) => Error::ForbiddenAddress(why.clone()),
        Error::KeyFetch { url, reason } => Error::KeyFetch {
            url: url.clone(),
            reason: reason.clone(),
        },
        other => Error::KeyFetch {
            url: document.to_string(),
            reason: other.to_string(),
        },
    })
}

/// A failure to get or read a signer's document is the sender's problem: 401 with the reason, so the
/// sender does not retry a 5xx for days.
fn sender_side(e: Error) -> Error {
    match e {
        Error::Fetch { url, reason } => Error::KeyFetch { url, reason },
        Error::BadRequest(reason) => Error::KeyUnusable(reason),
        other => other,
    }
}

fn not_listed(entry: &KeyEntry, key_id: &str) -> Error {
    Error::KeyUnusable(format!(
        "actor {} does not list key {key_id}",
        entry.owner.id
    ))
}

/// The key's owner must live on the keyId's host.
fn check_host(owner_id: &str, target: &KeyTarget<'_>) -> Result<()> {
    if authority_of(owner_id).as_deref() == Some(target.host.as_str()) {
        Ok(())
    } else {
        Err(Error::KeyUnusable(format!(
            "key {} is owned by {owner_id} on another host",
            target.key_id
        )))
    }
}

/// The actor with only what the relay uses: ids, inboxes, type, handle and consent flags. Fails when
/// even those are implausibly large.
pub fn slim(actor: Actor) -> Result<Actor> {
    let slim = Actor {
        id: actor.id,
        kind: actor.kind,
        inbox: actor.inbox,
        shared_inbox: actor.shared_inbox,
        preferred_username: actor.preferred_username,
        name: None,
        summary: None,
        public_keys: Vec::new(),
        followers: None,
        outbox: None,
        indexable: actor.indexable,
        discoverable: actor.discoverable,
        raw: Value::Null,
    };
    if actor_weight(&slim) > MAX_ACTOR_BYTES {
        return Err(Error::KeyUnusable(format!(
            "actor {:.100}… has fields longer than {MAX_ACTOR_BYTES} bytes",
            slim.id
        )));
    }
    Ok(slim)
}

/// Bytes a slimmed actor holds.
fn actor_weight(a: &Actor) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    ENTRY_OVERHEAD
        + a.id.len()
        + a.kind.len()
        + opt(&a.inbox)
        + opt(&a.shared_inbox)
        + opt(&a.preferred_username)
        + opt(&a.name)
        + opt(&a.summary)
        + opt(&a.followers)
        + opt(&a.outbox)
        + a.public_keys
            .iter()
            .map(|k| k.id.len() + k.pem.len() + opt(&k.owner))
            .sum::<usize>()
}

/// Whether two PEM texts hold the same key (ignoring line breaks and spaces).
fn same_pem(a: &str, b: &str) -> bool {
    let squeeze = |s: &str| -> String { s.chars().filter(|c| !c.is_whitespace()).collect() };
    squeeze(a) == squeeze(b)
}

/// Whether a document's `id` is the URL it was fetched from (ignoring a fragment and a trailing slash).
pub(crate) fn same_document(id: &str, url: &str) -> bool {
    let strip = |s: &str| strip_fragment(s).trim_end_matches('/').to_string();
    strip(id) == strip(url)
}

#[cfg(test)]
#[path = "resolver_tests.rs"]
mod tests;
