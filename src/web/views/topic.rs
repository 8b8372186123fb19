//! A topic's page for people: what the topic carries and the three ways to follow it, each as a
//! selectable field (copying needs no JavaScript).

use askama::Template;

use crate::web::views::shared::Layout;

/// `GET /topics/{kind}/{name}` in a browser.
#[derive(Template)]
#[template(path = "topic.html")]
pub struct TopicPage {
    /// Common parts.
    pub layout: Layout,
    /// The topic for people, `#coop`.
    pub label: String,
    /// The handle a person follows, `tag.coop@relay.example`.
    pub handle: String,
    /// The inbox a Mastodon admin adds as a relay.
    pub inbox: String,
    /// The actor a LitePub admin follows.
    pub actor: String,
}
