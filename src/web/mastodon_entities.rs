//! Mastodon's REST entities (`Status`, `Account`, `Tag`, `Instance` v1 and v2) built from what the index
//! returns, with Mastodon's field names and JSON types (ids as strings, times as ISO 8601 with
//! milliseconds in UTC, counts as numbers, tag history as strings), so that existing clients and libraries
//! (Mastodon.py, megalodon, masto.js, Phanpy, Elk) parse the relay's answers unchanged. Plain mapping, no
//! I/O: the handlers in [`crate::web::mastodon_api`] fetch, this shapes.

use plaza_index::document::{Emoji, Media, Mention, ProfileField};
use plaza_index::{AccountView, Counts, PostHit, PostView, TagDay, TagView};
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

/// Mastodon's API version this relay's answers follow, as clients read it from `version`.
pub const MASTODON_COMPATIBLE: &str = "4.3.0";

/// Mastodon's API version number of [`MASTODON_COMPATIBLE`] (`api_versions.mastodon` of the v2
/// instance): Mastodon 4.3 introduced the number at 2. Clients check it before using newer methods, and
/// warn when a 4.3 or newer server leaves it out.
pub const MASTODON_API_VERSION: u32 = 2;

/// Path of the picture shown for accounts without an avatar (Mastodon serves `missing.png`).
pub const MISSING_AVATAR_PATH: &str = "/avatars/original/missing.svg";
/// Path of the picture shown for accounts without a header image.
pub const MISSING_HEADER_PATH: &str = "/headers/original/missing.svg";

/// What the mapping needs to know about the relay.
#[derive(Debug, Clone, Copy)]
pub struct Relay<'a> {
    /// Public base URL, no trailing slash.
    pub base: &'a str,
}

impl Relay<'_> {
    /// The relay's page of a hashtag.
    pub fn tag_url(&self, name: &str) -> String {
        match url::Url::parse(self.base) {
            Ok(mut url) => {
                if let Ok(mut segments) = url.path_segments_mut() {
                    segments.pop_if_empty().push("tags").push(name);
                }
                url.to_string()
            }
            Err(_) => format!("{}/tags/{name}", self.base),
        }
    }
}

/// An instant as Mastodon writes it: `2026-11-26T14:34:37.123Z`.
pub fn mastodon_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// An RFC 3339 time from the index as Mastodon writes it; the Unix epoch when there is none or it
/// cannot be read.
pub fn mastodon_time_of(rfc3339: Option<&str>) -> String {
    let at = rfc3339
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    mastodon_time(at)
}

/// A stable id for things the index does not number (media, mentioned accounts): the low hash bits of
/// their address, as a decimal string.
fn derived_id(address: &str) -> String {
    plaza_index::time_key(None, address).to_string()
}

/// The account id of an actor ([`plaza_index::account_id`]): derived from the actor id alone, so it is
/// the same whether or not the index holds the actor document, and `account_id` of `/api/v2/search`
/// finds the account's posts by it.
pub fn account_id(view: &AccountView) -> u64 {
    plaza_index::account_id(&view.uri)
}

/// HTML-escapes text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Mastodon `CustomEmoji`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CustomEmoji {
    /// Without colons.
    pub shortcode: String,
    /// The image.
    pub url: String,
    /// The still image (the same here).
    pub static_url: String,
    /// Never offered in a picker: these are other servers' emojis.
    pub visible_in_picker: bool,
    /// No category.
    pub category: Option<String>,
}

fn emojis(list: &[Emoji]) -> Vec<CustomEmoji> {
    list.iter()
        .map(|e| CustomEmoji {
            shortcode: e.shortcode.clone(),
            url: e.url.clone(),
            static_url: e.url.clone(),
            visible_in_picker: false,
            category: None,
        })
        .collect()
}

/// Mastodon `Field` of a profile.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AccountField {
    /// The label.
    pub name: String,
    /// The value, HTML.
    pub value: String,
    /// Never verified by the relay.
    pub verified_at: Option<String>,
}

fn fields(list: &[ProfileField]) -> Vec<AccountField> {
    list.iter()
        .map(|f| AccountField {
            name: f.name.clone(),
            value: f.value_html.clone(),
            verified_at: None,
        })
        .collect()
}

/// Mastodon `Account`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Account {
    /// The index's numeric key, as a string.
    pub id: String,
    /// `preferredUsername`.
    pub username: String,
    /// `username@host`: always with the host, the account is never local to the relay.
    pub acct: String,
    /// The profile page.
    pub url: String,
    /// The actor id.
    pub uri: String,
    /// Display name (may be empty).
    pub display_name: String,
    /// Bio, HTML.
    pub note: String,
    /// Avatar (the relay's placeholder when there is none).
    pub avatar: String,
    /// Same as `avatar`.
    pub avatar_static: String,
    /// Header image (the relay's placeholder when there is none).
    pub header: String,
    /// Same as `header`.
    pub header_static: String,
    /// Always false: the relay shows only what is public.
    pub locked: bool,
    /// Profile fields.
    pub fields: Vec<AccountField>,
    /// Custom emojis of the name and bio.
    pub emojis: Vec<CustomEmoji>,
    /// A `Service` or `Application`.
    pub bot: bool,
    /// A `Group`.
    pub group: bool,
    /// Listed in the directory.
    pub discoverable: Option<bool>,
    /// Creation day (midnight UTC, as Mastodon rounds it); the Unix epoch when unknown.
    pub created_at: String,
    /// Unknown to the relay: null.
    pub last_status_at: Option<String>,
    /// Unknown to the relay: 0.
    pub statuses_count: u64,
    /// Unknown to the relay: 0.
    pub followers_count: u64,
    /// Unknown to the relay: 0.
    pub following_count: u64,
}

/// The account entity of an indexed actor.
pub fn account(relay: Relay<'_>, view: &AccountView) -> Account {
    let avatar = view
        .avatar
        .clone()
        .unwrap_or_else(|| format!("{}{MISSING_AVATAR_PATH}", relay.base));
    let header = view
        .header
        .clone()
        .unwrap_or_else(|| format!("{}{MISSING_HEADER_PATH}", relay.base));
    let created_day = view
        .created_at
        .as_deref()
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .map(|t| {
            t.to_offset(time::UtcOffset::UTC)
                .date()
                .midnight()
                .assume_utc()
        })
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    Account {
        id: account_id(view).to_string(),
        username: view.username.clone(),
        acct: view.acct.clone(),
        url: view.url.clone(),
        uri: view.uri.clone(),
        display_name: view.display_name.clone(),
        note: view.note_html.clone(),
        avatar: avatar.clone(),
        avatar_static: avatar,
        header: header.clone(),
        header_static: header,
        locked: false,
        fields: fields(&view.fields),
        emojis: emojis(&view.emojis),
        bot: view.bot,
        group: view.group,
        discoverable: Some(view.discoverable),
        created_at: mastodon_time(created_day),
        last_status_at: None,
        statuses_count: 0,
        followers_count: 0,
        following_count: 0,
    }
}

/// Mastodon `Status.Mention`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StatusMention {
    /// A stable id derived from the actor id.
    pub id: String,
    /// The part of `acct` before `@`.
    pub username: String,
    /// The actor id.
    pub url: String,
    /// `user@host`.
    pub acct: String,
}

fn mentions(list: &[Mention]) -> Vec<StatusMention> {
    list.iter()
        .map(|m| StatusMention {
            id: derived_id(&m.href),
            username: m.acct.split('@').next().unwrap_or_default().to_owned(),
            url: m.href.clone(),
            acct: m.acct.clone(),
        })
        .collect()
}

/// Mastodon `Status.Tag`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StatusTag {
    /// Lowercase, without `#`.
    pub name: String,
    /// The relay's page of the tag.
    pub url: String,
}

/// Mastodon `MediaAttachment` of a remote status (never cached by the relay).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MediaAttachment {
    /// A stable id derived from the address.
    pub id: String,
    /// `image`, `gifv`, `video`, `audio` or `unknown`.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: &'static str,
    /// The file, on its origin server.
    pub url: String,
    /// The file itself for images, else null.
    pub preview_url: Option<String>,
    /// The file on its origin server.
    pub remote_url: Option<String>,
    /// Null.
    pub preview_remote_url: Option<String>,
    /// Null.
    pub text_url: Option<String>,
    /// `original.width/height/size/aspect` when known, else `{}`.
    #[schema(value_type = Object)]
    pub meta: Value,
    /// The alt text.
    pub description: Option<String>,
    /// The blurhash, when given.
    pub blurhash: Option<String>,
}

fn media_kind(media: &Media) -> &'static str {
    let mime = media.media_type.as_deref().unwrap_or_default();
    match mime.split('/').next().unwrap_or_default() {
        "image" if mime == "image/gif" => "gifv",
        "image" => "image",
        "video" => "video",
        "audio" => "audio",
        _ => "unknown",
    }
}

fn media(list: &[Media]) -> Vec<MediaAttachment> {
    list.iter()
        .map(|m| {
            let kind = media_kind(m);
            let meta = match (m.width, m.height) {
                (Some(w), Some(h)) if w > 0 && h > 0 => json!({
                    "original": {
                        "width": w,
                        "height": h,
                        "size": format!("{w}x{h}"),
                        "aspect": w as f64 / h as f64,
                    }
                }),
                _ => json!({}),
            };
            MediaAttachment {
                id: derived_id(&m.url),
                kind,
                url: m.url.clone(),
                preview_url: (kind == "image").then(|| m.url.clone()),
                remote_url: Some(m.url.clone()),
                preview_remote_url: None,
                text_url: None,
                meta,
                description: m.description.clone(),
                blurhash: m.blurhash.clone(),
            }
        })
        .collect()
}

/// Mastodon `Status` of a post relayed from elsewhere.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Status {
    /// The index's time-ordered key, as a string (so ids sort like publication times).
    pub id: String,
    /// The object id.
    pub uri: String,
    /// The page on the origin server.
    pub url: Option<String>,
    /// Publication time.
    pub created_at: String,
    /// Null: edits replace the post.
    pub edited_at: Option<String>,
    /// The author.
    pub account: Account,
    /// The content, HTML (an article's title first).
    pub content: String,
    /// Always `public`: nothing else is indexed.
    #[schema(value_type = String)]
    pub visibility: &'static str,
    /// Marked sensitive.
    pub sensitive: bool,
    /// The content warning, empty when none.
    pub spoiler_text: String,
    /// Media.
    pub media_attachments: Vec<MediaAttachment>,
    /// Null: unknown for remote posts.
    #[schema(value_type = Option<Object>)]
    pub application: Option<Value>,
    /// Mentions.
    pub mentions: Vec<StatusMention>,
    /// Hashtags.
    pub tags: Vec<StatusTag>,
    /// Custom emojis.
    pub emojis: Vec<CustomEmoji>,
    /// Unknown to the relay: 0.
    pub reblogs_count: u64,
    /// Unknown to the relay: 0.
    pub favourites_count: u64,
    /// Unknown to the relay: 0.
    pub replies_count: u64,
    /// The id of the post replied to; null when it is not a reply or that post is not indexed (the
    /// native API's `in_reply_to` gives its address either way).
    pub in_reply_to_id: Option<String>,
    /// The account id of the author of the post replied to; null as `in_reply_to_id`.
    pub in_reply_to_account_id: Option<String>,
    /// Null: boosts are not indexed, the boosted post is.
    #[schema(value_type = Option<Object>)]
    pub reblog: Option<Value>,
    /// Null: poll options are not indexed.
    #[schema(value_type = Option<Object>)]
    pub poll: Option<Value>,
    /// Null: no link previews.
    #[schema(value_type = Option<Object>)]
    pub card: Option<Value>,
    /// ISO 639-1, or null.
    pub language: Option<String>,
    /// Null (Mastodon fills it only for the author's own deleted posts).
    pub text: Option<String>,
}

fn content(post: &PostView) -> String {
    match post.title.as_deref().filter(|t| !t.trim().is_empty()) {
        Some(title) => format!(
            "<p><strong>{}</strong></p>{}",
            escape(title),
            post.content_html
        ),
        None => post.content_html.clone(),
    }
}

/// The status entity of a post found, with its author.
pub fn status(relay: Relay<'_>, hit: &PostHit) -> Status {
    let post = &hit.post;
    Status {
        id: post.key.to_string(),
        uri: post.uri.clone(),
        url: Some(post.url.clone()),
        created_at: mastodon_time_of(Some(&post.created_at)),
        edited_at: None,
        account: account(relay, &hit.account),
        content: content(post),
        visibility: "public",
        sensitive: post.sensitive,
        spoiler_text: post.spoiler_text.clone(),
        media_attachments: media(&post.media),
        application: None,
        mentions: mentions(&post.mentions),
        tags: post
            .tags
            .iter()
            .map(|name| StatusTag {
                name: name.clone(),
                url: relay.tag_url(name),
            })
            .collect(),
        emojis: emojis(&post.emojis),
        reblogs_count: 0,
        favourites_count: 0,
        replies_count: 0,
        in_reply_to_id: hit.reply_to.map(|r| r.key.to_string()),
        in_reply_to_account_id: hit.reply_to.map(|r| r.account_id.to_string()),
        reblog: None,
        poll: None,
        card: None,
        language: post.language.clone(),
        text: None,
    }
}

/// One day of Mastodon `Tag.history`: every number a string, as Mastodon sends it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TagHistory {
    /// Midnight UTC, Unix seconds.
    pub day: String,
    /// Posts that day.
    pub uses: String,
    /// Distinct authors that day.
    pub accounts: String,
}

/// Mastodon `Tag`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Tag {
    /// Lowercase, without `#`.
    pub name: String,
    /// The relay's page of the tag.
    pub url: String,
    /// The last seven days, most recent first.
    pub history: Vec<TagHistory>,
}

fn history(days: &[TagDay]) -> Vec<TagHistory> {
    days.iter()
        .map(|d| TagHistory {
            day: d.day.to_string(),
            uses: d.uses.to_string(),
            accounts: d.accounts.to_string(),
        })
        .collect()
}

/// The tag entity of a hashtag.
pub fn tag(relay: Relay<'_>, view: &TagView) -> Tag {
    Tag {
        name: view.name.clone(),
        url: relay.tag_url(&view.name),
        history: history(&view.history),
    }
}

/// Mastodon `PreviewCard` of a trending link. Plaza does not fetch the linked page (that would make
/// it a crawler of every site its posts link to): the card names the address and its site, and the
/// history of the link's use is empty.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PreviewCard {
    /// The link.
    pub url: String,
    /// The link, as the title.
    pub title: String,
    /// Empty: the page is not fetched.
    pub description: String,
    /// Always `link`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Empty.
    pub author_name: String,
    /// Empty.
    pub author_url: String,
    /// The site's host.
    pub provider_name: String,
    /// The site's root.
    pub provider_url: String,
    /// Empty.
    pub html: String,
    /// 0: no picture.
    pub width: u32,
    /// 0: no picture.
    pub height: u32,
    /// None: no picture.
    pub image: Option<String>,
    /// Empty.
    pub embed_url: String,
    /// None: no picture.
    pub blurhash: Option<String>,
    /// Empty.
    pub history: Vec<TagHistory>,
}

/// The card of a trending link.
pub fn preview_card(trend: &plaza_index::Trend) -> PreviewCard {
    let site = url::Url::parse(&trend.name).ok();
    let host = site
        .as_ref()
        .and_then(|u| u.host_str())
        .unwrap_or_default()
        .to_string();
    let root = site
        .as_ref()
        .map(|u| format!("{}://{}/", u.scheme(), u.authority()))
        .unwrap_or_default();
    PreviewCard {
        url: trend.name.clone(),
        title: trend.name.clone(),
        description: String::new(),
        kind: "link",
        author_name: String::new(),
        author_url: String::new(),
        provider_name: host,
        provider_url: root,
        html: String::new(),
        width: 0,
        height: 0,
        image: None,
        embed_url: String::new(),
        blurhash: None,
        history: Vec::new(),
    }
}

/// Mastodon `Tag` as `GET /api/v1/tags/{name}` answers it: with `following`, always false (nobody
/// signs in to the relay to follow tags).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TagFollowing {
    /// The tag.
    #[serde(flatten)]
    pub tag: Tag,
    /// Always false.
    pub following: bool,
}

/// Mastodon `Search` results.
#[derive(Debug, Clone, PartialEq, Serialize, Default, ToSchema)]
pub struct SearchResults {
    /// Accounts found.
    pub accounts: Vec<Account>,
    /// Statuses found.
    pub statuses: Vec<Status>,
    /// Hashtags found.
    pub hashtags: Vec<Tag>,
}

/// What the instance entities say about the relay.
#[derive(Debug, Clone)]
pub struct RelayFacts<'a> {
    /// Public base URL.
    pub base: &'a str,
    /// Host (and port).
    pub host: &'a str,
    /// `relay_name`.
    pub title: &'a str,
    /// `relay_summary`.
    pub description: &'a str,
    /// Documents in the index.
    pub counts: Counts,
    /// Plaza's version.
    pub version: &'a str,
}

impl RelayFacts<'_> {
    fn version(&self) -> String {
        format!("{MASTODON_COMPATIBLE} (compatible; Plaza {})", self.version)
    }

    fn streaming(&self) -> String {
        match self.base.strip_prefix("https://") {
            Some(rest) => format!("wss://{rest}"),
            None => format!("ws://{}", self.base.trim_start_matches("http://")),
        }
    }

    /// The limits Mastodon clients read: nobody posts to a relay, so they are Mastodon's defaults.
    fn configuration(&self) -> Value {
        json!({
            "accounts": { "max_featured_tags": 0, "max_pinned_statuses": 0 },
            "statuses": {
                "max_characters": 500,
                "max_media_attachments": 4,
                "characters_reserved_per_url": 23
            },
            "media_attachments": {
                "supported_mime_types": [],
                "image_size_limit": 0,
                "image_matrix_limit": 0,
                "video_size_limit": 0,
                "video_frame_rate_limit": 0,
                "video_matrix_limit": 0
            },
            "polls": {
                "max_options": 0,
                "max_characters_per_option": 0,
                "min_expiration": 0,
                "max_expiration": 0
            },
            "translation": { "enabled": false }
        })
    }
}

/// Mastodon `Instance` (`GET /api/v2/instance`) describing the relay.
pub fn instance_v2(facts: &RelayFacts<'_>) -> Value {
    let mut configuration = facts.configuration();
    configuration["urls"] = json!({ "streaming": facts.streaming(), "status": null });
    configuration["vapid"] = json!({ "public_key": "" });
    json!({
        "domain": facts.host,
        "title": facts.title,
        "version": facts.version(),
        "api_versions": { "mastodon": MASTODON_API_VERSION },
        "source_url": facts.base,
        "description": facts.description,
        "usage": { "users": { "active_month": facts.counts.actors } },
        "thumbnail": { "url": format!("{}{MISSING_AVATAR_PATH}", facts.base) },
        "icon": [],
        "languages": [],
        "configuration": configuration,
        "registrations": {
            "enabled": false,
            "approval_required": false,
            "message": null,
            "url": null
        },
        "contact": { "email": "", "account": null },
        "rules": []
    })
}

/// Mastodon `V1::Instance` (`GET /api/v1/instance`) describing the relay.
pub fn instance_v1(facts: &RelayFacts<'_>) -> Value {
    json!({
        "uri": facts.host,
        "title": facts.title,
        "short_description": facts.description,
        "description": facts.description,
        "email": "",
        "version": facts.version(),
        "urls": { "streaming_api": facts.streaming() },
        "stats": {
            "user_count": facts.counts.actors,
            "status_count": facts.counts.posts,
            "domain_count": facts.counts.instances
        },
        "thumbnail": format!("{}{MISSING_AVATAR_PATH}", facts.base),
        "languages": [],
        "registrations": false,
        "approval_required": false,
        "invites_enabled": false,
        "configuration": facts.configuration(),
        "contact_account": null,
        "rules": []
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use plaza_index::ActorType;

    const RELAY: Relay<'static> = Relay {
        base: "https://relay.example",
    };

    fn account_view() -> AccountView {
        AccountView {
            key: 123_456_789,
            uri: "https://coop.example/users/bakery".into(),
            username: "bakery".into(),
            acct: "bakery@coop.example".into(),
            display_name: "The Bakery Co-op".into(),
            note_html: "<p>Bread for all <a href=\"https://coop.example/tags/coop\">#coop</a></p>"
                .into(),
            url: "https://coop.example/@bakery".into(),
            avatar: Some("https://coop.example/a.png".into()),
            header: None,
            fields: vec![ProfileField {
                name: "Sector".into(),
                value_html: "<b>Food</b>".into(),
                value_text: "Food".into(),
            }],
            actor_type: ActorType::Organization,
            bot: false,
            group: false,
            discoverable: true,
            created_at: Some("2023-04-05T06:07:08.9+02:00".into()),
            emojis: vec![Emoji {
                shortcode: "bread".into(),
                url: "https://coop.example/e/bread.png".into(),
            }],
            instance: "coop.example".into(),
            tags: vec!["coop".into()],
            featured_tags: vec![],
            language: Some("en".into()),
        }
    }

    fn hit() -> PostHit {
        PostHit {
            post: PostView {
                key: (1_700_000_000_123u64 << 16) | 42,
                uri: "https://coop.example/users/bakery/statuses/1".into(),
                url: "https://coop.example/@bakery/1".into(),
                kind: "Note".into(),
                title: None,
                content_html: "<p>Fresh bread <a href=\"x\">#coop</a></p>".into(),
                text: "Fresh bread #coop".into(),
                spoiler_text: "food".into(),
                sensitive: true,
                language: Some("en".into()),
                created_at: "2023-11-14T22:13:20.123Z".into(),
                instance: "coop.example".into(),
                author_uri: "https://coop.example/users/bakery".into(),
                author_acct: "bakery@coop.example".into(),
                tags: vec!["coop".into(), "café".into()],
                mentions: vec![Mention {
                    href: "https://other.example/users/ann".into(),
                    acct: "ann@other.example".into(),
                }],
                emojis: vec![],
                media: vec![
                    Media {
                        url: "https://coop.example/m/1.jpg".into(),
                        media_type: Some("image/jpeg".into()),
                        description: Some("a loaf".into()),
                        blurhash: Some("LEHV6nWB2yk8".into()),
                        width: Some(800),
                        height: Some(600),
                    },
                    Media {
                        url: "https://coop.example/m/2.bin".into(),
                        media_type: None,
                        description: None,
                        blurhash: None,
                        width: None,
                        height: None,
                    },
                ],
                in_reply_to: Some("https://else.example/notes/9".into()),
                is_quote: false,
                has_poll: false,
            },
            account: account_view(),
            score: 1.5,
            snippet_html: "Fresh <b>bread</b>".into(),
            reply_to: None,
        }
    }

    fn is_string(v: &Value) -> bool {
        v.is_string()
    }

    #[test]
    fn a_reply_to_an_indexed_post_names_it() {
        let mut reply = hit();
        reply.reply_to = Some(plaza_index::ReplyTo {
            key: 42,
            account_id: 7,
        });
        let v = serde_json::to_value(status(RELAY, &reply)).expect("json");
        assert_eq!(v["in_reply_to_id"], "42");
        assert_eq!(v["in_reply_to_account_id"], "7");
    }

    #[test]
    fn times_are_iso_8601_with_milliseconds_in_utc() {
        assert_eq!(
            mastodon_time_of(Some("2023-04-05T06:07:08.9+02:00")),
            "2023-04-05T04:07:08.900Z"
        );
        assert_eq!(
            mastodon_time_of(Some("2023-11-14T22:13:20Z")),
            "2023-11-14T22:13:20.000Z"
        );
        assert_eq!(mastodon_time_of(None), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            mastodon_time_of(Some("yesterday")),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn status_fields_and_types() {
        let v = serde_json::to_value(status(RELAY, &hit())).expect("json");
        let expected_id = ((1_700_000_000_123u64 << 16) | 42).to_string();
        assert_eq!(v["id"], expected_id.as_str());
        assert_eq!(v["uri"], "https://coop.example/users/bakery/statuses/1");
        assert_eq!(v["url"], "https://coop.example/@bakery/1");
        assert_eq!(v["created_at"], "2023-11-14T22:13:20.123Z");
        assert!(v["edited_at"].is_null());
        assert_eq!(v["content"], "<p>Fresh bread <a href=\"x\">#coop</a></p>");
        assert_eq!(v["visibility"], "public");
        assert_eq!(v["sensitive"], true);
        assert_eq!(v["spoiler_text"], "food");
        assert_eq!(v["language"], "en");
        for count in ["replies_count", "reblogs_count", "favourites_count"] {
            assert_eq!(v[count], 0, "{count}");
            assert!(v[count].is_u64(), "{count} is a number");
        }
        for null in [
            "in_reply_to_id",
            "in_reply_to_account_id",
            "reblog",
            "poll",
            "card",
            "application",
            "text",
        ] {
            assert!(
                v.get(null).is_some_and(Value::is_null),
                "{null} present and null"
            );
        }
        assert_eq!(
            v["tags"],
            json!([
                {"name": "coop", "url": "https://relay.example/tags/coop"},
                {"name": "café", "url": "https://relay.example/tags/caf%C3%A9"}
            ])
        );
        let mention = &v["mentions"][0];
        assert!(is_string(&mention["id"]));
        assert_eq!(mention["username"], "ann");
        assert_eq!(mention["acct"], "ann@other.example");
        assert_eq!(mention["url"], "https://other.example/users/ann");
        assert_eq!(v["emojis"], json!([]));
        let image = &v["media_attachments"][0];
        assert!(is_string(&image["id"]));
        assert_eq!(image["type"], "image");
        assert_eq!(image["url"], "https://coop.example/m/1.jpg");
        assert_eq!(image["preview_url"], "https://coop.example/m/1.jpg");
        assert_eq!(image["remote_url"], "https://coop.example/m/1.jpg");
        assert_eq!(image["description"], "a loaf");
        assert_eq!(image["blurhash"], "LEHV6nWB2yk8");
        assert_eq!(image["meta"]["original"]["width"], 800);
        assert_eq!(image["meta"]["original"]["size"], "800x600");
        let other = &v["media_attachments"][1];
        assert_eq!(other["type"], "unknown");
        assert!(other["preview_url"].is_null());
        assert_eq!(other["meta"], json!({}));
        assert!(other["description"].is_null());
        assert_eq!(v["account"]["acct"], "bakery@coop.example");
    }

    #[test]
    fn article_titles_lead_the_content_escaped() {
        let mut h = hit();
        h.post.title = Some("Bread & <roses>".into());
        let s = status(RELAY, &h);
        assert!(
            s.content
                .starts_with("<p><strong>Bread &amp; &lt;roses&gt;</strong></p><p>Fresh"),
            "{}",
            s.content
        );
    }

    #[test]
    fn account_fields_and_types() {
        let v = serde_json::to_value(account(RELAY, &account_view())).expect("json");
        assert_eq!(
            v["id"],
            plaza_index::account_id("https://coop.example/users/bakery").to_string()
        );
        assert_eq!(v["username"], "bakery");
        assert_eq!(v["acct"], "bakery@coop.example");
        assert_eq!(v["display_name"], "The Bakery Co-op");
        assert!(
            v["note"]
                .as_str()
                .is_some_and(|n| n.contains("Bread for all"))
        );
        assert_eq!(v["url"], "https://coop.example/@bakery");
        assert_eq!(v["uri"], "https://coop.example/users/bakery");
        assert_eq!(v["avatar"], "https://coop.example/a.png");
        assert_eq!(v["avatar_static"], "https://coop.example/a.png");
        assert_eq!(
            v["header"],
            "https://relay.example/headers/original/missing.svg"
        );
        assert_eq!(v["header_static"], v["header"]);
        assert_eq!(
            v["fields"],
            json!([{"name": "Sector", "value": "<b>Food</b>", "verified_at": null}])
        );
        assert_eq!(
            v["emojis"],
            json!([{
                "shortcode": "bread",
                "url": "https://coop.example/e/bread.png",
                "static_url": "https://coop.example/e/bread.png",
                "visible_in_picker": false,
                "category": null
            }])
        );
        assert_eq!(v["bot"], false);
        assert_eq!(v["group"], false);
        assert_eq!(v["locked"], false);
        assert_eq!(v["discoverable"], true);
        // Mastodon rounds creation to the day.
        assert_eq!(v["created_at"], "2023-04-05T00:00:00.000Z");
        assert!(v["last_status_at"].is_null());
        for count in ["statuses_count", "followers_count", "following_count"] {
            assert!(v[count].is_u64(), "{count}");
        }
    }

    #[test]
    fn account_without_pictures_or_creation_gets_placeholders() {
        let mut view = account_view();
        view.avatar = None;
        view.created_at = None;
        view.actor_type = ActorType::Service;
        view.bot = true;
        let v = serde_json::to_value(account(RELAY, &view)).expect("json");
        assert_eq!(
            v["avatar"],
            "https://relay.example/avatars/original/missing.svg"
        );
        assert_eq!(v["created_at"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["bot"], true);
    }

    #[test]
    fn authors_missing_from_the_index_get_distinct_ids() {
        let a = AccountView::unknown("https://a.example/users/x", "x@a.example", "a.example");
        let b = AccountView::unknown("https://b.example/users/y", "y@b.example", "b.example");
        let (ea, eb) = (account(RELAY, &a), account(RELAY, &b));
        assert_ne!(ea.id, "0");
        assert_ne!(ea.id, eb.id);
        assert_eq!(ea.id, account(RELAY, &a).id, "stable");
        // Held or not, an actor's id is the one derived from its actor id (the key is not used).
        let held = account_view();
        assert_eq!(account_id(&held), plaza_index::account_id(&held.uri));
        let missing = AccountView::unknown(&held.uri, &held.acct, &held.instance);
        assert_eq!(account(RELAY, &missing).id, account(RELAY, &held).id);
    }

    #[test]
    fn tag_history_numbers_are_strings() {
        let view = TagView {
            name: "coop".into(),
            uses: 5,
            history: vec![TagDay {
                day: 1_700_006_400,
                uses: 3,
                accounts: 2,
            }],
            partial: false,
        };
        let v = serde_json::to_value(tag(RELAY, &view)).expect("json");
        assert_eq!(
            v,
            json!({
                "name": "coop",
                "url": "https://relay.example/tags/coop",
                "history": [{"day": "1700006400", "uses": "3", "accounts": "2"}]
            })
        );
    }

    #[test]
    fn instances_describe_the_relay() {
        let facts = RelayFacts {
            base: "https://relay.example",
            host: "relay.example",
            title: "Co-op relay",
            description: "Find co-ops",
            counts: Counts {
                posts: 10,
                actors: 4,
                profiles: 2,
                instances: 3,
                partial: false,
            },
            version: "0.1.0",
        };
        let v2 = instance_v2(&facts);
        assert_eq!(v2["domain"], "relay.example");
        assert_eq!(v2["title"], "Co-op relay");
        assert_eq!(v2["description"], "Find co-ops");
        assert_eq!(v2["version"], "4.3.0 (compatible; Plaza 0.1.0)");
        assert_eq!(v2["api_versions"], json!({ "mastodon": 2 }));
        assert_eq!(v2["usage"]["users"]["active_month"], 4);
        assert_eq!(
            v2["configuration"]["urls"]["streaming"],
            "wss://relay.example"
        );
        assert_eq!(v2["configuration"]["statuses"]["max_characters"], 500);
        assert_eq!(v2["registrations"]["enabled"], false);
        assert!(v2["thumbnail"]["url"].is_string());
        let v1 = instance_v1(&facts);
        assert_eq!(v1["uri"], "relay.example");
        assert_eq!(v1["stats"]["status_count"], 10);
        assert_eq!(v1["stats"]["user_count"], 4);
        assert_eq!(v1["stats"]["domain_count"], 3);
        assert_eq!(v1["urls"]["streaming_api"], "wss://relay.example");
        assert_eq!(v1["registrations"], false);
        assert!(v1["configuration"]["polls"].is_object());
        let plain = RelayFacts {
            base: "http://127.0.0.1:8080",
            ..facts
        };
        assert_eq!(
            instance_v1(&plain)["urls"]["streaming_api"],
            "ws://127.0.0.1:8080"
        );
    }
}
