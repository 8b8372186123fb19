//! The "Trending" section of the home page and of a hashtag's page: hashtags, posts and links more
//! people than usual talk about today (the method is in [`plaza_index::trends`]).

use plaza_index::{PostHit, Trend};

use crate::web::media_proxy::MediaProxy;
use crate::web::views::shared::{PostCard, tag_path};

/// A trending hashtag.
#[derive(Debug, Clone)]
pub struct TrendingTag {
    /// The name without `#`.
    pub name: String,
    /// Its page on this relay.
    pub href: String,
    /// Distinct accounts using it today.
    pub accounts: usize,
    /// On this many instances.
    pub instances: usize,
}

/// A trending link.
#[derive(Debug, Clone)]
pub struct TrendingLink {
    /// The address.
    pub url: String,
    /// Its site, to show.
    pub site: String,
    /// Distinct accounts sharing it today.
    pub accounts: usize,
}

/// The section (empty parts are not shown; nothing at all hides it).
#[derive(Debug, Clone, Default)]
pub struct Trending {
    /// The page's own hashtag, when it trends.
    pub this: Option<TrendingTag>,
    /// Hashtags.
    pub tags: Vec<TrendingTag>,
    /// Posts.
    pub posts: Vec<PostCard>,
    /// Links.
    pub links: Vec<TrendingLink>,
}

impl Trending {
    /// The section from the trends found; `except` leaves a hashtag out (the page's own).
    pub fn new(
        tags: &[Trend],
        posts: &[PostHit],
        links: &[Trend],
        except: Option<&str>,
        media: &MediaProxy,
    ) -> Trending {
        let tag = |t: &Trend| TrendingTag {
            name: t.name.clone(),
            href: tag_path(&t.name),
            accounts: t.accounts,
            instances: t.instances,
        };
        Trending {
            this: except.and_then(|own| tags.iter().find(|t| t.name == own).map(tag)),
            tags: tags
                .iter()
                .filter(|t| Some(t.name.as_str()) != except)
                .map(tag)
                .collect(),
            posts: posts.iter().map(|hit| PostCard::full(hit, media)).collect(),
            links: links
                .iter()
                .map(|t| TrendingLink {
                    url: t.name.clone(),
                    site: url::Url::parse(&t.name)
                        .ok()
                        .and_then(|u| u.host_str().map(str::to_owned))
                        .unwrap_or_default(),
                    accounts: t.accounts,
                })
                .collect(),
        }
    }

    /// Whether there is nothing to show.
    pub fn is_empty(&self) -> bool {
        self.this.is_none()
            && self.tags.is_empty()
            && self.posts.is_empty()
            && self.links.is_empty()
    }
}
