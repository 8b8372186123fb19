//! The about page: the relay's operator, contacts and what it keeps.

use askama::Template;

use crate::web::views::shared::Layout;

/// How to reach the admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// As configured.
    pub text: String,
    /// A `mailto:` or web link, when it is one.
    pub href: Option<String>,
}

impl Contact {
    /// Reads `admin_contact`: an email address gets a `mailto:` link, a URL a link, a fediverse
    /// handle stays text; `None` when empty.
    pub fn parse(configured: &str) -> Option<Contact> {
        let text = configured.trim();
        if text.is_empty() {
            return None;
        }
        let href = if text.starts_with("https://") || text.starts_with("http://") {
            url::Url::parse(text).ok().map(|u| u.to_string())
        } else if !text.starts_with('@')
            && !text.contains(char::is_whitespace)
            && text.split('@').count() == 2
            && text.split('@').all(|part| !part.is_empty())
        {
            Some(format!("mailto:{text}"))
        } else {
            None
        };
        Some(Contact {
            text: text.to_owned(),
            href,
        })
    }
}

/// `GET /about`.
#[derive(Template)]
#[template(path = "about.html")]
pub struct AboutPage {
    /// Common parts.
    pub layout: Layout,
    /// The relay's base URL.
    pub base: String,
    /// The admin contact.
    pub contact: Option<Contact>,
    /// Search is turned on.
    pub indexing: bool,
    /// Posts older than this many days leave the index.
    pub retention_days: u64,
    /// An instance that leaves has what was indexed from it removed.
    pub purges: bool,
}
