//! Ingest: what the relay hands over becomes index documents, after the consent rules
//! ([`crate::consent`]) have had their say, and what must go goes.
//!
//! Every call only queues its change with the writer; the change is searchable after the next commit
//! (at most [`crate::IndexConfig::commit_interval`] later, or at once with [`Index::commit`]).

use std::hash::{BuildHasher, Hasher};

use serde::Serialize;
use serde_json::Value;
use tantivy::query::{BooleanQuery, Occur, Query as TantivyQuery, RangeQuery, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{DateTime, TantivyDocument, Term};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::analysis;
use crate::consent::{self, Verdict};
use crate::document::{Actor, Post};
use crate::error::{Error, Result};
use crate::ids::{account_id, uri_hash};
use crate::index::{Index, Shared};
use crate::instance::InstanceRecord;
use crate::json;
use crate::results::{AccountView, PostView};
use crate::schema::{self, Fields};

/// More author fingerprints than this and the table starts over (authors are then rewritten once more).
const MAX_AUTHOR_FINGERPRINTS: usize = 500_000;

/// What became of an actor handed to [`Index::upsert_actor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActorOutcome {
    /// Whether the profile is listed in the directory, and why not.
    pub listed: Verdict,
    /// Whether the actor's posts may be indexed on the actor's word, and why not (when not, those
    /// posts were removed).
    pub posts: Verdict,
}

/// FNV-1a, 64 bits: a stable hash (the standard library's is seeded per process).
#[derive(Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn hash_str(s: &str) -> u64 {
    let mut h = Fnv::default();
    h.write(s.as_bytes());
    h.finish()
}

/// A fingerprint of a JSON document (public keys left out: they are large and irrelevant here).
fn fingerprint(value: &Value, h: &mut impl Hasher) {
    match value {
        Value::Null => h.write_u8(0),
        Value::Bool(b) => h.write_u8(1 + u8::from(*b)),
        Value::Number(n) => h.write(n.to_string().as_bytes()),
        Value::String(s) => {
            h.write_u8(3);
            h.write(s.as_bytes());
        }
        Value::Array(items) => {
            h.write_u8(4);
            items.iter().for_each(|i| fingerprint(i, h));
        }
        Value::Object(map) => {
            h.write_u8(5);
            for (k, v) in map.iter().filter(|(k, _)| k.as_str() != "publicKey") {
                h.write(k.as_bytes());
                fingerprint(v, h);
            }
        }
    }
}

/// The key of a document: milliseconds of `at` shifted left 16 bits, with 16 bits of the id's hash
/// below (so keys order by time and rarely collide).
pub fn time_key(at: Option<OffsetDateTime>, id: &str) -> u64 {
    let ms = at.map_or(0, |t| {
        u64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
    });
    (ms.min((1 << 47) - 1) << 16) | (hash_str(id) & 0xFFFF)
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn month(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}", at.year(), u8::from(at.month()))
}

fn id_term(fields: &Fields, id: &str) -> Term {
    Term::from_field_text(fields.id, id)
}

fn term_query(term: Term) -> Box<dyn TantivyQuery> {
    Box::new(TermQuery::new(term, IndexRecordOption::Basic))
}

/// Adds `text`'s terms and grams, analysed here in language `lang` (on the thread building the document,
/// not tantivy's indexing thread).
pub(crate) fn add_text_terms(
    doc: &mut TantivyDocument,
    fields: &Fields,
    text: &str,
    lang: Option<&str>,
) {
    let analysed = analysis::analysed(text, lang);
    doc.add_text(fields.grams, analysed.grams);
    doc.add_text(fields.text, analysed.terms);
}

#[derive(Serialize)]
struct PostSource<'a> {
    instance: &'a str,
    object: &'a Value,
}

pub(crate) fn post_view(post: &Post) -> PostView {
    PostView {
        key: time_key(Some(post.published), &post.id),
        uri: post.id.clone(),
        url: post.url.clone(),
        kind: post.kind.clone(),
        title: post.title.clone(),
        content_html: post.html.clone(),
        text: post.text.clone(),
        spoiler_text: post.content_warning.clone(),
        sensitive: post.sensitive,
        language: post.language.clone(),
        created_at: rfc3339(post.published),
        instance: post.instance.clone(),
        author_uri: post.author_id.clone(),
        author_acct: post.author_handle.clone(),
        tags: post.tags.clone(),
        mentions: post.mentions.clone(),
        emojis: post.emojis.clone(),
        media: post.media.clone(),
        in_reply_to: post.in_reply_to.clone(),
        is_quote: post.is_quote,
        has_poll: post.has_poll,
    }
}

fn account_view(actor: &Actor, listed: bool) -> AccountView {
    AccountView {
        key: time_key(actor.created, &actor.id),
        uri: actor.id.clone(),
        username: actor.username.clone(),
        acct: actor.handle.clone(),
        display_name: actor.display_name.clone(),
        note_html: actor.bio_html.clone(),
        url: actor.url.clone(),
        avatar: actor.avatar.clone(),
        header: actor.header.clone(),
        fields: actor.fields.clone(),
        actor_type: actor.actor_type,
        bot: matches!(
            actor.actor_type,
            crate::ActorType::Service | crate::ActorType::Application
        ),
        group: actor.actor_type == crate::ActorType::Group,
        discoverable: listed,
        created_at: actor.created.map(rfc3339),
        emojis: actor.emojis.clone(),
        instance: actor.host.clone(),
        tags: actor.tags.clone(),
        featured_tags: actor.featured_tags.clone(),
        language: actor.language.clone(),
    }
}

fn post_document(
    fields: &Fields,
    post: &Post,
    object: &Value,
    object_consent: bool,
) -> Result<TantivyDocument> {
    let mut view = post_view(post);
    // The text is the safe HTML's: search results render it again instead of storing it twice.
    view.text.clear();
    let mut doc = TantivyDocument::new();
    doc.add_text(fields.kind, schema::KIND_POST);
    doc.add_text(fields.id, &post.id);
    doc.add_u64(fields.key, view.key);
    let source = serde_json::to_vec(&PostSource {
        instance: &post.instance,
        object,
    })
    .map_err(|e| Error::Unusable(e.to_string()))?;
    doc.add_bytes(fields.source, &source);
    doc.add_text(
        fields.data,
        serde_json::to_string(&view).map_err(|e| Error::Unusable(e.to_string()))?,
    );
    doc.add_text(fields.instance, &post.instance);
    add_text_terms(
        &mut doc,
        fields,
        &post.searchable_text(),
        post.language.as_deref(),
    );
    if let Some(lang) = &post.language {
        doc.add_text(fields.lang, lang);
    }
    for tag in &post.tags {
        doc.add_text(fields.tags, tag);
    }
    for link in &post.links {
        doc.add_text(fields.links, link);
    }
    if let Some(parent) = &post.in_reply_to {
        doc.add_u64(fields.reply_to, uri_hash(parent));
    }
    doc.add_date(fields.published, DateTime::from_utc(post.published));
    doc.add_text(fields.month, month(post.published));
    doc.add_text(fields.actor_type, post.author_type.as_str());
    doc.add_text(fields.author, &post.author_id);
    doc.add_u64(fields.account, account_id(&post.author_id));
    doc.add_text(fields.handle, post.author_handle.to_lowercase());
    doc.add_bool(fields.reply, post.in_reply_to.is_some());
    doc.add_bool(fields.quote, post.is_quote);
    doc.add_bool(fields.poll, post.has_poll);
    doc.add_bool(fields.media, !post.media.is_empty());
    doc.add_bool(fields.sensitive, post.sensitive);
    doc.add_bool(fields.object_consent, object_consent);
    Ok(doc)
}

fn actor_document(
    fields: &Fields,
    actor: &Actor,
    source: &Value,
    listed: bool,
) -> Result<TantivyDocument> {
    let view = account_view(actor, listed);
    let mut doc = TantivyDocument::new();
    doc.add_text(fields.kind, schema::KIND_ACTOR);
    doc.add_text(fields.id, &actor.id);
    doc.add_u64(fields.key, view.key);
    doc.add_bytes(
        fields.source,
        &serde_json::to_vec(source).map_err(|e| Error::Unusable(e.to_string()))?,
    );
    doc.add_text(
        fields.data,
        serde_json::to_string(&view).map_err(|e| Error::Unusable(e.to_string()))?,
    );
    doc.add_text(fields.instance, &actor.host);
    add_text_terms(
        &mut doc,
        fields,
        &actor.searchable_text(),
        actor.language.as_deref(),
    );
    if let Some(lang) = &actor.language {
        doc.add_text(fields.lang, lang);
    }
    for tag in actor.tags.iter().chain(&actor.featured_tags) {
        doc.add_text(fields.tags, tag);
    }
    if let Some(created) = actor.created {
        doc.add_date(fields.published, DateTime::from_utc(created));
        doc.add_text(fields.month, month(created));
    }
    doc.add_text(fields.actor_type, actor.actor_type.as_str());
    doc.add_text(fields.author, &actor.id);
    doc.add_u64(fields.account, account_id(&actor.id));
    doc.add_text(fields.handle, actor.handle.to_lowercase());
    doc.add_bool(fields.listed, listed);
    Ok(doc)
}

/// The object of a `Create`/`Update` (or the object itself).
pub(crate) fn unwrap_activity(object: &Value) -> &Value {
    match json::kind(object) {
        Some("Create" | "Update") => object
            .get("object")
            .filter(|o| o.is_object())
            .unwrap_or(object),
        _ => object,
    }
}

impl Shared {
    /// The fingerprint of an author's document. Kept in memory only, so a fast hash of this process
    /// (foldhash, eight bytes at a time; FNV's byte-at-a-time loop was a percent of ingest).
    fn author_fingerprint(author: &Value) -> u64 {
        let mut h = foldhash::fast::FixedState::with_seed(0x0070_6c61_7a61).build_hasher();
        fingerprint(author, &mut h);
        h.finish()
    }

    /// The author's own verdict on their posts, kept per author while their document's fingerprint
    /// stays `print`: a post then costs no parse of its author's bio.
    fn author_verdict(&self, author: &Value, print: u64) -> consent::Verdict {
        let id = json::first_iri(author.get("id")).unwrap_or_default();
        let mut verdicts = self.verdicts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((known, verdict)) = verdicts.get(id)
            && *known == print
        {
            return *verdict;
        }
        let verdict = consent::may_index_posts_of(author);
        if verdicts.len() >= MAX_AUTHOR_FINGERPRINTS {
            verdicts.clear();
        }
        verdicts.insert(id.to_owned(), (print, verdict));
        verdict
    }

    fn remember_author(&self, id: &str, print: Option<u64>) {
        let mut authors = self.authors.lock().unwrap_or_else(|e| e.into_inner());
        match print {
            Some(p) => {
                if authors.len() >= MAX_AUTHOR_FINGERPRINTS {
                    authors.clear();
                }
                authors.insert(id.to_owned(), p);
            }
            None => {
                authors.remove(id);
            }
        }
    }

    /// Writes the document `doc` in place of any earlier one with this id.
    fn replace(&self, id: &str, doc: TantivyDocument) -> Result<()> {
        let writer = self.writer();
        let held = self.known_ids.record(id.as_bytes());
        if held {
            writer.delete_term(id_term(&self.fields, id));
        }
        writer.add_document(doc)?;
        drop(writer);
        self.changed(1 + usize::from(held))
    }

    /// Writes (or replaces) an actor document; `print` is the fingerprint of `source`.
    fn write_actor(&self, source: &Value, print: u64, actor: &Actor, listed: bool) -> Result<()> {
        let doc = actor_document(&self.fields, actor, source, listed)?;
        self.replace(&actor.id, doc)?;
        self.remember_author(&actor.id, Some(print));
        Ok(())
    }

    /// Removes the document with this id (post, actor or instance: their ids never collide).
    fn delete_id(&self, id: &str) -> Result<()> {
        self.writer().delete_term(id_term(&self.fields, id));
        self.changed(1)
    }

    fn delete_query(&self, clauses: Vec<Box<dyn TantivyQuery>>) -> Result<()> {
        let query = BooleanQuery::new(clauses.into_iter().map(|q| (Occur::Must, q)).collect());
        self.writer().delete_query(Box::new(query))?;
        self.changed(1)
    }

    fn posts_of(&self, author: &str) -> Vec<Box<dyn TantivyQuery>> {
        vec![
            term_query(Term::from_field_text(self.fields.kind, schema::KIND_POST)),
            term_query(Term::from_field_text(self.fields.author, author)),
        ]
    }
}

impl Index {
    /// Hands over a post: `object` (a Note, Article, Page, Question… or a `Create`/`Update` embedding
    /// one), its author's actor document, and the host of the instance it came from. The consent rules
    /// decide; when they refuse, any earlier version of the post leaves the index (an `Update` that
    /// makes a post followers-only removes it). An allowed post replaces its earlier version. The author
    /// document is written too when it changed.
    ///
    /// Returns the verdict; an object that is no post or lacks an id or author is an
    /// [`Error::Unusable`].
    pub fn add_post(&self, object: &Value, author: &Value, instance: &str) -> Result<Verdict> {
        self.add_post_document(object, author, instance)
            .map(|(verdict, _)| verdict)
    }

    /// [`Index::add_post`], also returning the post as indexed when consent allowed it (what the
    /// relay's topics match against).
    pub fn add_post_document(
        &self,
        object: &Value,
        author: &Value,
        instance: &str,
    ) -> Result<(Verdict, Option<Post>)> {
        let shared = &*self.shared;
        let object = unwrap_activity(object);
        let id = json::first_iri(object.get("id"))
            .ok_or_else(|| Error::Unusable("post without id".into()))?;
        let print = Shared::author_fingerprint(author);
        let verdict =
            consent::may_index_post_given(object, || shared.author_verdict(author, print));
        if !verdict.allowed() {
            shared.delete_id(id)?;
            return Ok((verdict, None));
        }
        let post = Post::from_json(object, author, instance)?;
        self.ensure_author(author, &post.author_id, print)?;
        let doc = post_document(
            &shared.fields,
            &post,
            object,
            consent::object_decides(object),
        )?;
        shared.replace(&post.id, doc)?;
        Ok((verdict, Some(post)))
    }

    fn ensure_author(&self, author: &Value, id: &str, print: u64) -> Result<()> {
        let shared = &*self.shared;
        let known = shared
            .authors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            == Some(&print);
        if known {
            return Ok(());
        }
        let actor = Actor::from_json(author)?;
        let listed = consent::may_list_profile(author).allowed();
        shared.write_actor(author, print, &actor, listed)
    }

    /// Hands over an actor document (new, or an `Update`). The profile is listed in the directory when
    /// `discoverable` and not vetoed; the actor is kept when it is listed or its posts may be indexed.
    /// When its posts may no longer be indexed (`indexable` turned off, `searchableBy` narrowed, a veto
    /// in the bio), its posts leave the index, except those whose objects carried their own
    /// `searchableBy` with Public: that consent was given per post and the post's own word wins.
    pub fn upsert_actor(&self, actor_json: &Value) -> Result<ActorOutcome> {
        let shared = &*self.shared;
        let actor = Actor::from_json(actor_json)?;
        let listed = consent::may_list_profile(actor_json);
        let posts = consent::may_index_posts_of(actor_json);
        if !posts.allowed() {
            let mut clauses = shared.posts_of(&actor.id);
            clauses.push(term_query(Term::from_field_bool(
                shared.fields.object_consent,
                false,
            )));
            shared.delete_query(clauses)?;
        }
        if listed.allowed() || posts.allowed() {
            let print = Shared::author_fingerprint(actor_json);
            shared.write_actor(actor_json, print, &actor, listed.allowed())?;
        } else {
            shared.remember_author(&actor.id, None);
            shared.delete_id(&actor.id)?;
        }
        Ok(ActorOutcome { listed, posts })
    }

    /// Removes a post (a `Delete` of the object or its Tombstone).
    pub fn delete_post(&self, id: &str) -> Result<()> {
        self.shared.delete_id(id)
    }

    /// Removes an actor and all their posts (an actor `Delete`).
    pub fn delete_actor(&self, id: &str) -> Result<()> {
        let shared = &*self.shared;
        let writer = shared.writer();
        writer.delete_term(id_term(&shared.fields, id));
        writer.delete_term(Term::from_field_text(shared.fields.author, id));
        drop(writer);
        shared.remember_author(id, None);
        shared.changed(2)
    }

    /// Removes everything from an instance: its posts, its actors and its instance document (a blocked
    /// or departed subscriber).
    pub fn delete_instance_docs(&self, host: &str) -> Result<()> {
        let shared = &*self.shared;
        shared.writer().delete_term(Term::from_field_text(
            shared.fields.instance,
            &host.to_ascii_lowercase(),
        ));
        shared
            .authors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        shared.changed(1)
    }

    /// Removes posts published before `cutoff` (the retention limit).
    pub fn purge_older_than(&self, cutoff: OffsetDateTime) -> Result<()> {
        let shared = &*self.shared;
        let before = RangeQuery::new(
            std::ops::Bound::Unbounded,
            std::ops::Bound::Excluded(Term::from_field_date_for_search(
                shared.fields.published,
                DateTime::from_utc(cutoff),
            )),
        );
        shared.delete_query(vec![
            term_query(Term::from_field_text(shared.fields.kind, schema::KIND_POST)),
            Box::new(before),
        ])
    }

    /// Records (or replaces) what is known of an instance.
    pub fn upsert_instance(&self, record: &InstanceRecord) -> Result<()> {
        let shared = &*self.shared;
        let fields = &shared.fields;
        let host = record.host.to_ascii_lowercase();
        let mut doc = TantivyDocument::new();
        doc.add_text(fields.kind, schema::KIND_INSTANCE);
        doc.add_text(fields.id, &host);
        doc.add_u64(fields.key, hash_str(&host) & 0xFFFF);
        doc.add_bytes(
            fields.source,
            &serde_json::to_vec(record).map_err(|e| Error::Unusable(e.to_string()))?,
        );
        doc.add_text(fields.instance, &host);
        shared.replace(&host, doc)
    }

    /// Removes an instance's document only (its posts and actors stay; see
    /// [`Index::delete_instance_docs`] to remove everything).
    pub fn remove_instance(&self, host: &str) -> Result<()> {
        self.shared.delete_id(&host.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_by_time_and_differ_by_id() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).ok();
        let later = OffsetDateTime::from_unix_timestamp(1_700_000_001).ok();
        assert!(time_key(t, "b") < time_key(later, "a"));
        assert_ne!(time_key(t, "a"), time_key(t, "b"));
        assert_eq!(time_key(t, "a") >> 16, 1_700_000_000_000);
        assert_eq!(time_key(None, "a") >> 16, 0);
    }

    #[test]
    fn fingerprints_ignore_keys_and_see_changes() {
        let a = serde_json::json!({"id": "x", "summary": "a", "publicKey": {"pem": "1"}});
        let b = serde_json::json!({"id": "x", "summary": "a", "publicKey": {"pem": "2"}});
        let c = serde_json::json!({"id": "x", "summary": "b"});
        let f = Shared::author_fingerprint;
        assert_eq!(f(&a), f(&b));
        assert_ne!(f(&a), f(&c));
    }
}
