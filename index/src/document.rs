//! What the index keeps of an ActivityPub post or actor: the fields are read here, leniently, from the
//! JSON the relay hands over, so the rest of the crate works with plain structs.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::html;
use crate::json;
use crate::language;

/// Object types that are posts.
const POST_TYPES: &[&str] = &[
    "Note", "Article", "Page", "Question", "Video", "Audio", "Image", "Event",
];

/// Actor types (the directory's `type:` filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorType {
    /// A person.
    Person,
    /// An organisation: a co-op, a company, an association.
    Organization,
    /// A group or community (Lemmy communities, Friendica forums).
    Group,
    /// An automated account.
    Service,
    /// An application (often an instance actor).
    Application,
}

impl ActorType {
    /// Every actor type.
    pub const ALL: [ActorType; 5] = [
        ActorType::Person,
        ActorType::Organization,
        ActorType::Group,
        ActorType::Service,
        ActorType::Application,
    ];

    /// The lowercase name, as indexed and as typed in `type:`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorType::Person => "person",
            ActorType::Organization => "organization",
            ActorType::Group => "group",
            ActorType::Service => "service",
            ActorType::Application => "application",
        }
    }

    /// Parses an ActivityStreams actor type or its lowercase name (`organisation` too).
    pub fn parse(name: &str) -> Option<ActorType> {
        let name = name.to_ascii_lowercase();
        let name = if name == "organisation" {
            "organization"
        } else {
            &name
        };
        ActorType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// A media attachment of a post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    /// The file's address.
    pub url: String,
    /// Its MIME type, when given.
    pub media_type: Option<String>,
    /// The alt text.
    pub description: Option<String>,
    /// The blurhash placeholder, when given.
    pub blurhash: Option<String>,
    /// Width in pixels, when given.
    pub width: Option<u64>,
    /// Height in pixels, when given.
    pub height: Option<u64>,
}

/// A mention in a post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mention {
    /// The mentioned actor's id.
    pub href: String,
    /// `user@host` (or `user` when the server sent no host).
    pub acct: String,
}

/// A custom emoji used in a post or profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Emoji {
    /// The shortcode without colons.
    pub shortcode: String,
    /// The image address.
    pub url: String,
}

/// A profile field (`PropertyValue`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileField {
    /// The label (e.g. `Sector`).
    pub name: String,
    /// The value, as safe HTML.
    pub value_html: String,
    /// The value as text.
    pub value_text: String,
}

/// A post as the index sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    /// The object id.
    pub id: String,
    /// The page to link to (`url`, else the id).
    pub url: String,
    /// The author's actor id.
    pub author_id: String,
    /// The author's `user@host`.
    pub author_handle: String,
    /// The author's actor type.
    pub author_type: ActorType,
    /// The instance the post came from (the subscriber's host).
    pub instance: String,
    /// The ActivityStreams type (`Note`, `Article`…).
    pub kind: String,
    /// The title of an `Article`/`Page`, when it has one.
    pub title: Option<String>,
    /// The content as text.
    pub text: String,
    /// The content as safe HTML.
    pub html: String,
    /// The content warning (`summary`), empty when none.
    pub content_warning: String,
    /// The media attachments.
    pub media: Vec<Media>,
    /// Hashtags, lowercase, without `#`.
    pub tags: Vec<String>,
    /// The web links it shares (`shared_links`).
    pub links: Vec<String>,
    /// Mentions.
    pub mentions: Vec<Mention>,
    /// Custom emojis.
    pub emojis: Vec<Emoji>,
    /// ISO 639-1 language, declared or detected.
    pub language: Option<String>,
    /// When it was published.
    pub published: OffsetDateTime,
    /// The object it replies to.
    pub in_reply_to: Option<String>,
    /// Whether it quotes another post.
    pub is_quote: bool,
    /// Whether it is a poll.
    pub has_poll: bool,
    /// Whether it is marked sensitive.
    pub sensitive: bool,
}

/// An actor as the index sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The actor id.
    pub id: String,
    /// `preferredUsername`.
    pub username: String,
    /// The host of the actor id.
    pub host: String,
    /// `username@host`.
    pub handle: String,
    /// The display name (`name`), empty when none.
    pub display_name: String,
    /// The bio as safe HTML.
    pub bio_html: String,
    /// The bio as text.
    pub bio_text: String,
    /// Profile fields.
    pub fields: Vec<ProfileField>,
    /// The actor type.
    pub actor_type: ActorType,
    /// Hashtags of the bio, lowercase, without `#`.
    pub tags: Vec<String>,
    /// Featured hashtags (from an embedded `featuredTags` collection).
    pub featured_tags: Vec<String>,
    /// Avatar image address.
    pub avatar: Option<String>,
    /// Header image address.
    pub header: Option<String>,
    /// The profile page (`url`, else the id).
    pub url: String,
    /// When the account was created.
    pub created: Option<OffsetDateTime>,
    /// Custom emojis.
    pub emojis: Vec<Emoji>,
    /// Language of the bio, detected.
    pub language: Option<String>,
    /// Whether it asked to be in directories.
    pub discoverable: bool,
}

/// Hashtag names: `#Coop` → `coop`.
pub fn normalize_tag(name: &str) -> Option<String> {
    let tag = name.trim().trim_start_matches('#').to_lowercase();
    (!tag.is_empty() && tag.chars().all(|c| c.is_alphanumeric() || c == '_')).then_some(tag)
}

/// Hashtags written in text (`#word`).
fn tags_in_text(text: &str, out: &mut Vec<String>) {
    for (at, _) in text.match_indices('#') {
        let rest = &text[at + 1..];
        let end = rest
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
            .map_or(rest.len(), |(i, _)| i);
        if let Some(tag) = normalize_tag(&rest[..end]) {
            push_unique(out, tag);
        }
    }
}

fn push_unique(out: &mut Vec<String>, value: String) {
    if !out.contains(&value) {
        out.push(value);
    }
}

fn tags_of<'a>(doc: &'a Value, kind: &str) -> Vec<&'a Value> {
    json::items(doc.get("tag"))
        .into_iter()
        .filter(|t| json::kind(t) == Some(kind))
        .collect()
}

fn hashtags(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for tag in tags_of(doc, "Hashtag") {
        if let Some(t) = tag
            .get("name")
            .and_then(Value::as_str)
            .and_then(normalize_tag)
        {
            push_unique(&mut out, t);
        }
    }
    out
}

fn emojis(doc: &Value) -> Vec<Emoji> {
    tags_of(doc, "Emoji")
        .into_iter()
        .filter_map(|e| {
            let shortcode = e.get("name")?.as_str()?.trim_matches(':').to_owned();
            let url = json::link(e.get("icon"))?.to_owned();
            Some(Emoji { shortcode, url })
        })
        .collect()
}

/// The links of a post's content that share something: http(s) links that are not its mentions or
/// hashtags (by markup, or by the `href` of its `tag` entries) and not the post itself, without their
/// `#fragment`.
fn shared_links(doc: &Value, links: &[String]) -> Vec<String> {
    let own: Vec<&str> = json::items(doc.get("tag"))
        .into_iter()
        .filter_map(|t| t.get("href").and_then(Value::as_str))
        .chain(json::first_iri(doc.get("id")))
        .chain(json::link(doc.get("url")))
        .collect();
    let mut out: Vec<String> = Vec::new();
    for link in links {
        let link = link.split('#').next().unwrap_or(link);
        if !own.contains(&link) && !out.iter().any(|l| l == link) {
            out.push(link.to_owned());
        }
    }
    out
}

fn mentions(doc: &Value) -> Vec<Mention> {
    tags_of(doc, "Mention")
        .into_iter()
        .filter_map(|m| {
            let href = m.get("href").and_then(Value::as_str)?.to_owned();
            let name = m
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim_start_matches('@');
            let acct = if name.contains('@') || name.is_empty() {
                name.to_owned()
            } else {
                match json::host(&href) {
                    Some(host) => format!("{name}@{host}"),
                    None => name.to_owned(),
                }
            };
            Some(Mention { href, acct })
        })
        .collect()
}

fn media(doc: &Value) -> Vec<Media> {
    json::items(doc.get("attachment"))
        .into_iter()
        .filter(|a| json::kind(a) != Some("PropertyValue"))
        .filter_map(|a| {
            Some(Media {
                url: json::link(a.get("url"))
                    .or_else(|| json::link(a.get("href")))?
                    .to_owned(),
                media_type: json::text(a, "mediaType").map(str::to_owned),
                description: json::text(a, "name")
                    .or_else(|| json::text(a, "summary"))
                    .map(str::to_owned),
                blurhash: json::text(a, "blurhash").map(str::to_owned),
                width: a.get("width").and_then(Value::as_u64),
                height: a.get("height").and_then(Value::as_u64),
            })
        })
        .collect()
}

/// Content and declared language: `contentMap` (first entry with text), else `content` and `language`.
fn content(doc: &Value) -> (String, Option<String>) {
    if let Some(Value::Object(map)) = doc.get("contentMap")
        && let Some((lang, html)) = map
            .iter()
            .find_map(|(k, v)| Some((k, v.as_str().filter(|s| !s.trim().is_empty())?)))
    {
        return (html.to_owned(), language::normalize(lang));
    }
    let html = json::text(doc, "content")
        .or_else(|| json::text(doc, "_misskey_content"))
        .unwrap_or_default()
        .to_owned();
    let declared = match doc.get("language") {
        Some(Value::String(s)) => language::normalize(s),
        // Lemmy: `{"identifier": "fr", "name": "Français"}`.
        Some(v) => json::items(Some(v))
            .into_iter()
            .find_map(|l| l.get("identifier").and_then(Value::as_str))
            .and_then(language::normalize),
        None => None,
    };
    (html, declared)
}

/// `user@host` of an actor.
fn handle_parts(actor: &Value) -> Result<(String, String, String)> {
    let id = json::first_iri(actor.get("id"))
        .ok_or_else(|| Error::Unusable("actor without id".into()))?;
    let host =
        json::host(id).ok_or_else(|| Error::Unusable(format!("actor id {id} is not a URL")))?;
    let username = json::text(actor, "preferredUsername")
        .ok_or_else(|| Error::Unusable(format!("actor {id} has no preferredUsername")))?;
    Ok((id.to_owned(), username.to_owned(), host))
}

/// The actor type of an actor document (anything unknown counts as a person).
fn actor_type(actor: &Value) -> ActorType {
    json::kind(actor)
        .and_then(ActorType::parse)
        .unwrap_or(ActorType::Person)
}

impl Post {
    /// Reads a post from its object (a bare object or a `Create`/`Update` wrapping one) and the
    /// author's actor document. `instance` is the host it arrived from.
    pub fn from_json(object: &Value, author: &Value, instance: &str) -> Result<Post> {
        let object = match json::kind(object) {
            Some("Create" | "Update") => object
                .get("object")
                .filter(|o| o.is_object())
                .ok_or_else(|| Error::Unusable("activity without an embedded object".into()))?,
            _ => object,
        };
        let kind = json::kind(object).unwrap_or_default();
        if !POST_TYPES.contains(&kind) {
            return Err(Error::Unusable(format!("type {kind:?} is not a post")));
        }
        let id = json::first_iri(object.get("id"))
            .ok_or_else(|| Error::Unusable("post without id".into()))?;
        let (author_id, username, host) = handle_parts(author)?;
        let attributed = json::iris(object.get("attributedTo"));
        if !attributed.contains(&author_id.as_str()) {
            return Err(Error::Unusable(format!(
                "post {id} is not attributed to {author_id}"
            )));
        }
        let (html_source, declared) = content(object);
        let rendered = html::render(&html_source);
        let content_warning = json::text(object, "summary")
            .map(|s| html::render(s).text)
            .unwrap_or_default();
        let title = json::text(object, "name")
            .filter(|_| kind != "Note" && kind != "Question")
            .map(str::to_owned);
        let mut tags = hashtags(object);
        tags_in_text(&rendered.text, &mut tags);
        let language = declared.or_else(|| {
            let sample = format!("{content_warning} {}", rendered.text);
            language::detect(&sample)
        });
        let published = json::time(object, "published")
            .or_else(|| json::time(object, "updated"))
            .unwrap_or_else(OffsetDateTime::now_utc);
        let has_poll =
            kind == "Question" || object.get("oneOf").is_some() || object.get("anyOf").is_some();
        let is_quote = ["quoteUrl", "quoteUri", "_misskey_quote", "quote"]
            .iter()
            .any(|k| json::first_iri(object.get(*k)).is_some());
        Ok(Post {
            id: id.to_owned(),
            url: json::link(object.get("url")).unwrap_or(id).to_owned(),
            author_handle: format!("{username}@{host}"),
            author_type: actor_type(author),
            author_id,
            instance: instance.to_ascii_lowercase(),
            kind: kind.to_owned(),
            title,
            text: rendered.text,
            html: rendered.html,
            content_warning,
            media: media(object),
            tags,
            links: shared_links(object, &rendered.links),
            mentions: mentions(object),
            emojis: emojis(object),
            language,
            published,
            in_reply_to: json::first_iri(object.get("inReplyTo")).map(str::to_owned),
            is_quote,
            has_poll,
            sensitive: json::flag(object, &["sensitive"]),
        })
    }

    /// The searchable text: title, content warning, content and the media descriptions.
    pub fn searchable_text(&self) -> String {
        let mut text = String::new();
        for part in self
            .title
            .iter()
            .chain(std::iter::once(&self.content_warning))
            .chain(std::iter::once(&self.text))
            .chain(self.media.iter().filter_map(|m| m.description.as_ref()))
        {
            if !part.is_empty() {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(part);
            }
        }
        text
    }
}

impl Actor {
    /// Reads an actor document.
    pub fn from_json(actor: &Value) -> Result<Actor> {
        let (id, username, host) = handle_parts(actor)?;
        let bio = html::render(json::text(actor, "summary").unwrap_or_default());
        let fields: Vec<ProfileField> = json::items(actor.get("attachment"))
            .into_iter()
            .filter(|a| json::kind(a) == Some("PropertyValue"))
            .filter_map(|a| {
                let value =
                    html::render(a.get("value").and_then(Value::as_str).unwrap_or_default());
                Some(ProfileField {
                    name: json::text(a, "name")?.to_owned(),
                    value_html: value.html,
                    value_text: value.text,
                })
            })
            .collect();
        let mut tags = hashtags(actor);
        tags_in_text(&bio.text, &mut tags);
        let featured_tags = json::items(actor.get("featuredTags"))
            .into_iter()
            .filter_map(|t| {
                t.get("name")
                    .and_then(Value::as_str)
                    .and_then(normalize_tag)
            })
            .collect();
        let display_name = json::text(actor, "name").unwrap_or_default().to_owned();
        let language = language::detect(&bio.text);
        Ok(Actor {
            url: json::link(actor.get("url")).unwrap_or(&id).to_owned(),
            handle: format!("{username}@{host}"),
            actor_type: actor_type(actor),
            avatar: json::link(actor.get("icon")).map(str::to_owned),
            header: json::link(actor.get("image")).map(str::to_owned),
            created: json::time(actor, "published"),
            emojis: emojis(actor),
            discoverable: json::flag(actor, &["discoverable", "toot:discoverable"]),
            bio_html: bio.html,
            bio_text: bio.text,
            id,
            username,
            host,
            display_name,
            fields,
            tags,
            featured_tags,
            language,
        })
    }

    /// The searchable text: display name, username, bio and profile fields.
    pub fn searchable_text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}",
            self.display_name, self.username, self.bio_text
        );
        for field in &self.fields {
            text.push('\n');
            text.push_str(&field.name);
            text.push(' ');
            text.push_str(&field.value_text);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::fixture;
    use serde_json::json;

    fn author(id: &str) -> Value {
        json!({ "id": id, "type": "Person", "preferredUsername": "someone" })
    }

    #[test]
    fn mastodon_create() {
        let create = fixture("mastodon-create-note.json");
        let post = Post::from_json(
            &create,
            &author("http://mastodon.example.org/users/admin"),
            "mastodon.example.org",
        )
        .expect("post");
        assert_eq!(
            post.id,
            "http://mastodon.example.org/users/admin/statuses/99512778738411822"
        );
        assert_eq!(
            post.url,
            "http://mastodon.example.org/@admin/99512778738411822"
        );
        assert_eq!(post.author_handle, "someone@mastodon.example.org");
        assert_eq!(post.text, "@lain");
        assert_eq!(post.content_warning, "cw");
        assert!(post.sensitive);
        assert_eq!(post.mentions[0].acct, "lain@localtesting.pleroma.lol");
        assert_eq!(post.published.unix_timestamp(), 1518444500);
    }

    #[test]
    fn misskey_note_is_japanese_by_detection() {
        let note = fixture("misskey-note.json");
        let post = Post::from_json(
            &note,
            &author("https://misskey.io/users/83ssedkv53"),
            "misskey.io",
        )
        .expect("post");
        assert_eq!(post.language.as_deref(), Some("ja"));
        assert!(post.text.starts_with("Fantia"));
    }

    #[test]
    fn gotosocial_note_declares_english() {
        let note = fixture("gotosocial-note.json");
        let post = Post::from_json(
            &note,
            &author("http://localhost:8080/users/the_mighty_zork"),
            "localhost:8080",
        )
        .expect("post");
        assert_eq!(post.language.as_deref(), Some("en"));
        assert_eq!(post.content_warning, "introduction post");
        assert_eq!(post.author_handle, "someone@localhost:8080");
    }

    #[test]
    fn pleroma_reply_with_mention() {
        let create = fixture("pleroma-create-note.json");
        let post = Post::from_json(
            &create,
            &author("https://greenish.red/users/nutomic"),
            "greenish.red",
        )
        .expect("post");
        assert_eq!(
            post.in_reply_to.as_deref(),
            Some("https://enterprise.lemmy.ml/post/55143")
        );
        assert_eq!(post.mentions[0].acct, "lanodan@ds9.lemmy.ml");
    }

    #[test]
    fn media_tags_poll_quote() {
        let note = json!({
            "id": "https://a.example/n/1", "type": "Question", "attributedTo": "https://a.example/u/x",
            "content": "<p>Which <a href=\"https://a.example/tags/coop\">#<span>Coop</span></a>? #Bakery</p>",
            "oneOf": [{"name": "a"}], "quoteUrl": "https://b.example/n/2",
            "attachment": {"type": "Document", "mediaType": "image/png", "url": "https://a.example/m.png",
                           "name": "a loaf of bread"},
            "tag": [{"type": "Hashtag", "name": "#Coop"}, {"type": "Emoji", "name": ":bread:",
                     "icon": {"url": "https://a.example/e.png"}}]
        });
        let post =
            Post::from_json(&note, &author("https://a.example/u/x"), "a.example").expect("post");
        assert_eq!(post.tags, ["coop", "bakery"]);
        assert!(post.has_poll && post.is_quote);
        assert_eq!(
            post.media[0].description.as_deref(),
            Some("a loaf of bread")
        );
        assert!(post.searchable_text().contains("a loaf of bread"));
        assert_eq!(post.emojis[0].shortcode, "bread");
    }

    #[test]
    fn wrong_author_or_type_is_unusable() {
        let note = json!({"id": "https://a.example/n/1", "type": "Note", "attributedTo": "https://a.example/u/x"});
        assert!(matches!(
            Post::from_json(&note, &author("https://a.example/u/y"), "a.example"),
            Err(Error::Unusable(_))
        ));
        let like = fixture("misskey-like.json");
        assert!(Post::from_json(&like, &author("https://a.example/u/y"), "a.example").is_err());
    }

    #[test]
    fn actors_of_every_flavour() {
        let update = fixture("mastodon-update-actor.json");
        let actor = Actor::from_json(&update["object"]).expect("actor");
        assert_eq!(actor.handle, "gargron@mastodon.example.org");
        assert_eq!(actor.fields.len(), 2);
        assert_eq!(actor.fields[0].value_text, "updated");
        let group = Actor::from_json(&fixture("lemmy-group.json")).expect("group");
        assert_eq!(group.actor_type, ActorType::Group);
        assert_eq!(
            group.avatar.as_deref(),
            Some("https://enterprise.lemmy.ml/pictrs/image/waqyZwLAy4.webp")
        );
        let misskey = Actor::from_json(&fixture("misskey-actor.json")).expect("misskey");
        assert!(misskey.discoverable);
        let pleroma = Actor::from_json(&fixture("pleroma-actor.json")).expect("pleroma");
        assert!(pleroma.tags.contains(&"nobot".to_owned()));
        for name in [
            "gotosocial-actor.json",
            "lemmy-person.json",
            "mastodon-person-actor.json",
        ] {
            Actor::from_json(&fixture(name)).expect(name);
        }
    }
}
