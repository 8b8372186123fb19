//! The list of subscribed instances.

use askama::Template;
use plaza_index::InstanceView;

use crate::store::Subscriber;
use crate::web::views::shared::{Layout, display_time};

/// One subscribed instance as shown.
#[derive(Debug, Clone)]
pub struct InstanceRow {
    /// Host.
    pub host: String,
    /// Node name from NodeInfo.
    pub name: Option<String>,
    /// `mastodon 4.4.0`.
    pub software: Option<String>,
    /// Users.
    pub users: Option<u64>,
    /// Open, closed or unknown.
    pub registrations: &'static str,
    /// Description from NodeInfo, text.
    pub description: Option<String>,
    /// Subscribed since (hidden when the configuration says so).
    pub since: Option<String>,
    /// Posts indexed.
    pub posts: u64,
}

/// The instance rows: every subscriber, with what the index knows of it from NodeInfo.
pub fn instance_rows(
    subscribers: &[Subscriber],
    known: &[InstanceView],
    show_since: bool,
) -> Vec<InstanceRow> {
    let mut rows: Vec<InstanceRow> = subscribers
        .iter()
        .map(|s| {
            let view = known
                .iter()
                .find(|v| v.host.eq_ignore_ascii_case(&s.authority));
            let software = view.and_then(|v| {
                v.software.as_ref().map(|name| match &v.version {
                    Some(version) => format!("{name} {version}"),
                    None => name.clone(),
                })
            });
            let since = time::OffsetDateTime::from_unix_timestamp(s.created_at)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                });
            InstanceRow {
                host: s.authority.clone(),
                name: view.and_then(|v| v.name.clone()).filter(|n| !n.is_empty()),
                software,
                users: view.and_then(|v| v.users),
                registrations: match view.and_then(|v| v.open_registrations) {
                    Some(true) => "open",
                    Some(false) => "closed",
                    None => "unknown",
                },
                description: view
                    .and_then(|v| v.description.clone())
                    .filter(|d| !d.trim().is_empty()),
                since: since.filter(|_| show_since).map(|t| display_time(&t)),
                posts: view.map_or(0, |v| v.posts),
            }
        })
        .collect();
    rows.sort_by(|a, b| a.host.cmp(&b.host));
    rows
}

/// `GET /instances`.
#[derive(Template)]
#[template(path = "instances.html")]
pub struct InstancesPage {
    /// Common parts.
    pub layout: Layout,
    /// The instances.
    pub rows: Vec<InstanceRow>,
    /// Whether the since column is shown.
    pub show_since: bool,
}
