//! The moderation rules in force, in memory: what every inbox request and every Follow asks, answered
//! without touching the store. The store is the durable copy; the admin operations change both.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::moderation::blocks::{Block, BlockKind, BlockList};
use crate::moderation::domain;
use crate::moderation::policy::{self, Admission, PolicySettings};

/// Blocks, the subscription policy and the software each known instance runs.
#[derive(Debug, Default)]
pub struct Curation {
    blocks: RwLock<BlockList>,
    policy: RwLock<PolicySettings>,
    software: RwLock<HashMap<String, String>>,
}

impl Curation {
    /// The rules as loaded at start.
    pub fn new(
        blocks: Vec<Block>,
        policy: PolicySettings,
        software: impl IntoIterator<Item = (String, String)>,
    ) -> Curation {
        Curation {
            blocks: RwLock::new(BlockList::new(blocks)),
            policy: RwLock::new(policy),
            software: RwLock::new(software.into_iter().collect()),
        }
    }

    /// Replaces the blocks and the policy with what the store now holds (another node changed them).
    pub fn replace(&self, blocks: Vec<Block>, settings: PolicySettings) {
        if let Ok(mut list) = self.blocks.write() {
            *list = BlockList::new(blocks);
        }
        self.set_policy(settings);
    }

    /// The software `authority` is known to run.
    pub fn software_of(&self, authority: &str) -> Option<String> {
        self.software.read().ok()?.get(authority).cloned()
    }

    /// Records the software `authority` runs.
    pub fn set_software(&self, authority: &str, software: &str) {
        if let Ok(mut map) = self.software.write() {
            map.insert(authority.to_string(), software.to_string());
        }
    }

    /// The block that refuses `authority`, by its domain or the software it is known to run.
    pub fn refuses(&self, authority: &str) -> Option<Block> {
        let software = self.software_of(authority);
        self.blocks
            .read()
            .ok()?
            .refuses(authority, software.as_deref())
            .cloned()
    }

    /// What the subscription policy says about a Follow from `authority`.
    pub fn admit(&self, authority: &str) -> Admission {
        match self.policy.read() {
            Ok(settings) => policy::admit(&settings, authority),
            Err(_) => Admission::Refuse("the relay cannot read its policy"),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> PolicySettings {
        self.policy.read().map(|p| p.clone()).unwrap_or_default()
    }

    /// Replaces the policy.
    pub fn set_policy(&self, settings: PolicySettings) {
        if let Ok(mut policy) = self.policy.write() {
            *policy = settings;
        }
    }

    /// Puts blocks in force.
    pub fn add_blocks(&self, blocks: &[Block]) {
        if let Ok(mut list) = self.blocks.write() {
            for block in blocks {
                list.insert(block.clone());
            }
        }
    }

    /// Lifts a block.
    pub fn remove_block(&self, kind: BlockKind, target: &str) {
        if let Ok(mut list) = self.blocks.write() {
            list.remove(kind, target);
        }
    }

    /// Blocks of `kind` in force.
    pub fn block_count(&self, kind: BlockKind) -> usize {
        self.blocks.read().map(|l| l.count(kind)).unwrap_or(0)
    }

    /// Of `authorities`, those that one of `blocks` covers (by domain, or by the software they run).
    pub fn covered<'a>(
        &self,
        blocks: &[Block],
        authorities: impl IntoIterator<Item = &'a str>,
    ) -> Vec<String> {
        authorities
            .into_iter()
            .filter(|authority| {
                let host = domain::host_of(authority);
                let software = self.software_of(authority);
                blocks.iter().any(|b| b.matches(&host, software.as_deref()))
            })
            .map(str::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_apply_by_domain_and_by_known_software() {
        let curation = Curation::new(vec![], PolicySettings::default(), []);
        let soft = Block::new(BlockKind::Software, "spamsoft", "").unwrap();
        let dom = Block::new(BlockKind::Domain, "bad.example", "").unwrap();
        curation.set_software("s.example", "spamsoft");
        assert!(curation.refuses("s.example").is_none());
        curation.add_blocks(&[soft.clone(), dom.clone()]);
        assert!(curation.refuses("s.example").is_some());
        assert!(curation.refuses("x.bad.example:443").is_some());
        assert!(curation.refuses("good.example").is_none());
        assert_eq!(
            curation.covered(&[soft, dom], ["s.example", "x.bad.example", "good.example"]),
            ["s.example", "x.bad.example"]
        );
        curation.remove_block(BlockKind::Software, "spamsoft");
        assert!(curation.refuses("s.example").is_none());
        assert_eq!(curation.block_count(BlockKind::Domain), 1);
    }
}
