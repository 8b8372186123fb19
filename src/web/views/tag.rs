//! A hashtag's page.

use askama::Template;

use crate::web::views::shared::{Layout, Link, PostCard};
use crate::web::views::trending::Trending;

/// `GET /tags/{tag}`.
#[derive(Template)]
#[template(path = "tag.html")]
pub struct TagPage {
    /// Common parts.
    pub layout: Layout,
    /// The tag, normalised, without `#`.
    pub tag: String,
    /// Posts with it.
    pub uses: u64,
    /// Search is turned off.
    pub disabled: bool,
    /// The newest posts.
    pub posts: Vec<PostCard>,
    /// The next (older) page.
    pub older: Option<String>,
    /// Trending posts with the tag, and the other trending hashtags.
    pub trending: Trending,
    /// The trending section's heading.
    pub trending_title: String,
    /// The hashtag's topic, when the relay offers it to follow.
    pub follow: Option<Link>,
}
