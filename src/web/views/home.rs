//! The home page: the relay's figures, how to join, what is trending, the newest posts.

use askama::Template;

use crate::web::views::shared::{Layout, PostCard, TagLink};
use crate::web::views::trending::Trending;

/// How a server family joins: where to paste which address.
#[derive(Debug, Clone)]
pub struct JoinStep {
    /// The software.
    pub software: &'static str,
    /// Where the admin goes.
    pub place: &'static str,
    /// What they paste.
    pub paste: String,
}

/// The join instructions for every server family (the README's table).
pub fn join_steps(base: &str) -> Vec<JoinStep> {
    let inbox = format!("{base}/inbox");
    let actor = format!("{base}/actor");
    vec![
        JoinStep {
            software: "Mastodon",
            place: "Preferences → Administration → Relays → Add new relay",
            paste: inbox.clone(),
        },
        JoinStep {
            software: "Misskey, Firefish, Sharkey",
            place: "Control panel → Relays → Add relay",
            paste: inbox.clone(),
        },
        JoinStep {
            software: "GoToSocial",
            place: "Admin settings → Relays, in versions that support relays",
            paste: inbox,
        },
        JoinStep {
            software: "Pleroma, Akkoma",
            place: "admin-fe → Relays → Follow relay (or mix pleroma.relay follow …)",
            paste: actor,
        },
    ]
}

/// Figures on the home page.
#[derive(Debug, Clone, Copy, Default)]
pub struct Figures {
    /// Subscribed instances.
    pub subscribers: usize,
    /// Posts indexed (`None`: search is off).
    pub posts: Option<u64>,
    /// Profiles listed.
    pub profiles: Option<u64>,
}

/// `GET /`.
#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    /// Common parts.
    pub layout: Layout,
    /// The relay's summary.
    pub summary: String,
    /// Its base URL.
    pub base: String,
    /// Join instructions.
    pub join: Vec<JoinStep>,
    /// Counts.
    pub figures: Figures,
    /// The newest posts.
    pub recent: Vec<PostCard>,
    /// Quick hashtag links.
    pub tags: Vec<TagLink>,
    /// What is trending today.
    pub trending: Trending,
    /// The trending section's heading.
    pub trending_title: String,
}
