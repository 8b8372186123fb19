//! Blocks: instances the relay refuses, by domain (covering every subdomain) or by the software they
//! run (the NodeInfo software name, e.g. another relay or a spam platform). A block is in force from the
//! moment it is added: [`BlockList::refuses`] is what the inbox asks before anything else.
//!
//! Severities are Mastodon's, so that block lists move between the two: `suspend` and `silence` both
//! refuse the instance (a relay has nothing finer than in or out), `noop` is kept only so that an
//! imported list exports the same.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::moderation::domain;
use crate::{Error, Result};

/// What a block matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockKind {
    /// A domain and all its subdomains.
    Domain,
    /// Every instance whose NodeInfo names this software.
    Software,
}

impl BlockKind {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockKind::Domain => "domain",
            BlockKind::Software => "software",
        }
    }

    /// Parses `domain` or `software`.
    pub fn parse(s: &str) -> Result<BlockKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "domain" | "" => Ok(BlockKind::Domain),
            "software" => Ok(BlockKind::Software),
            other => Err(Error::BadRequest(format!(
                "block kind {other:?}: expected domain or software"
            ))),
        }
    }
}

/// How hard a block is (Mastodon's severities).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Refused entirely.
    Suspend,
    /// Limited in Mastodon; refused by the relay, which cannot relay "a little".
    Silence,
    /// No effect; kept for a faithful round trip of imported lists.
    Noop,
}

impl Severity {
    /// The word stored and exported.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Suspend => "suspend",
            Severity::Silence => "silence",
            Severity::Noop => "noop",
        }
    }

    /// Parses a severity; empty means `suspend`.
    pub fn parse(s: &str) -> Result<Severity> {
        match s.trim().to_ascii_lowercase().as_str() {
            "suspend" | "" => Ok(Severity::Suspend),
            "silence" | "limit" => Ok(Severity::Silence),
            "noop" | "none" => Ok(Severity::Noop),
            other => Err(Error::BadRequest(format!(
                "severity {other:?}: expected suspend, silence or noop"
            ))),
        }
    }

    /// Whether the relay refuses instances under this severity.
    pub fn refuses(self) -> bool {
        !matches!(self, Severity::Noop)
    }
}

/// One block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// What it matches.
    pub kind: BlockKind,
    /// The domain (normalised) or the software name (lower case).
    pub domain: String,
    /// How hard it is.
    pub severity: Severity,
    /// Why, as shown to other admins (Mastodon's public comment).
    pub reason: String,
    /// Mastodon's flag, kept for the round trip.
    pub reject_media: bool,
    /// Mastodon's flag, kept for the round trip.
    pub reject_reports: bool,
    /// Mastodon's flag (show the domain partly hidden), kept for the round trip.
    pub obfuscate: bool,
    /// Whether the discovery index should purge the instance's posts and profiles.
    pub purge: bool,
    /// Unix seconds when it was added.
    pub created_at: i64,
    /// The admin token name that added it (`import`, `removal` … for the ways blocks come in).
    pub created_by: String,
}

impl Block {
    /// A block with Mastodon's defaults (suspend, no flags), `target` normalised for its kind.
    pub fn new(kind: BlockKind, target: &str, reason: &str) -> Result<Block> {
        let domain = match kind {
            BlockKind::Domain => domain::normalize(target)?,
            BlockKind::Software => normalize_software(target)?,
        };
        Ok(Block {
            kind,
            domain,
            severity: Severity::Suspend,
            reason: reason.trim().to_string(),
            reject_media: false,
            reject_reports: false,
            obfuscate: false,
            purge: false,
            created_at: 0,
            created_by: String::new(),
        })
    }

    /// Whether this block refuses the instance at `host` running `software`.
    pub fn matches(&self, host: &str, software: Option<&str>) -> bool {
        self.severity.refuses()
            && match self.kind {
                BlockKind::Domain => domain::covers(&self.domain, host),
                BlockKind::Software => {
                    software.is_some_and(|s| s.eq_ignore_ascii_case(&self.domain))
                }
            }
    }
}

/// A software name as NodeInfo gives it, lower case; refuses names NodeInfo would not produce.
pub fn normalize_software(name: &str) -> Result<String> {
    let name = name.trim().to_ascii_lowercase();
    if name.is_empty()
        || name.len() > 100
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(Error::BadRequest(format!(
            "{name:?} is not a NodeInfo software name"
        )));
    }
    Ok(name)
}

/// The blocks in force, indexed for the one question every inbox request asks.
#[derive(Debug, Default, Clone)]
pub struct BlockList {
    domains: HashMap<String, Block>,
    software: HashMap<String, Block>,
}

impl BlockList {
    /// A list holding `blocks`.
    pub fn new(blocks: impl IntoIterator<Item = Block>) -> BlockList {
        let mut list = BlockList::default();
        for block in blocks {
            list.insert(block);
        }
        list
    }

    /// Adds or replaces a block.
    pub fn insert(&mut self, block: Block) {
        let map = match block.kind {
            BlockKind::Domain => &mut self.domains,
            BlockKind::Software => &mut self.software,
        };
        map.insert(block.domain.clone(), block);
    }

    /// Removes a block; returns it when there was one.
    pub fn remove(&mut self, kind: BlockKind, target: &str) -> Option<Block> {
        match kind {
            BlockKind::Domain => self.domains.remove(target),
            BlockKind::Software => self.software.remove(target),
        }
    }

    /// The block that refuses the instance at `authority` (host, port ignored) running `software`, if any.
    pub fn refuses(&self, authority: &str, software: Option<&str>) -> Option<&Block> {
        let host = domain::host_of(authority);
        domain::candidates(&host)
            .into_iter()
            .find_map(|rule| self.domains.get(rule))
            .filter(|b| b.severity.refuses())
            .or_else(|| {
                let name = software?.to_ascii_lowercase();
                self.software.get(&name).filter(|b| b.severity.refuses())
            })
    }

    /// How many blocks of `kind` there are.
    pub fn count(&self, kind: BlockKind) -> usize {
        match kind {
            BlockKind::Domain => self.domains.len(),
            BlockKind::Software => self.software.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_blocks_cover_subdomains_and_ignore_ports() {
        let list = BlockList::new([Block::new(BlockKind::Domain, "Example.com", "spam").unwrap()]);
        assert!(list.refuses("example.com", None).is_some());
        assert!(list.refuses("social.example.com:8443", None).is_some());
        assert!(list.refuses("badexample.com", None).is_none());
        assert!(list.refuses("example.org", None).is_none());
    }

    #[test]
    fn software_blocks_match_the_nodeinfo_name() {
        let mut list =
            BlockList::new([Block::new(BlockKind::Software, "ActivityRelay", "").unwrap()]);
        assert!(
            list.refuses("relay.example", Some("activityrelay"))
                .is_some()
        );
        assert!(
            list.refuses("relay.example", Some("ActivityRelay"))
                .is_some()
        );
        assert!(list.refuses("relay.example", Some("mastodon")).is_none());
        assert!(list.refuses("relay.example", None).is_none());
        assert!(list.remove(BlockKind::Software, "activityrelay").is_some());
        assert!(
            list.refuses("relay.example", Some("activityrelay"))
                .is_none()
        );
    }

    #[test]
    fn noop_blocks_refuse_nothing() {
        let mut block = Block::new(BlockKind::Domain, "example.com", "").unwrap();
        block.severity = Severity::Noop;
        let list = BlockList::new([block.clone()]);
        assert!(list.refuses("example.com", None).is_none());
        assert!(!block.matches("example.com", None));
        assert_eq!(list.count(BlockKind::Domain), 1);
    }

    #[test]
    fn bad_targets_are_refused() {
        assert!(Block::new(BlockKind::Software, "spam soft", "").is_err());
        assert!(Block::new(BlockKind::Domain, "not a domain", "").is_err());
        assert!(BlockKind::parse("ip").is_err());
        assert!(Severity::parse("ban").is_err());
    }
}
