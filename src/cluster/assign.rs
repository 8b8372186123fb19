//! Which live node should hold a lease: rendezvous (highest random weight) hashing of the lease's name
//! with each node's id. Every node computes the same answer from the same list of live nodes, with no
//! coordinator; when a node joins or leaves, only the leases it wins or held move (about 1/N of them).
//!
//! The hash is SHA-256, not the standard library's hasher, so that nodes of different releases (a
//! rolling upgrade) still agree.

use sha2::{Digest, Sha256};

/// The weight of `node` for `lease`.
fn weight(node: &str, lease: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(node.as_bytes());
    hasher.update([0]);
    hasher.update(lease.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The node among `nodes` that should hold `lease` (`None` when there is none).
pub fn owner<'a>(lease: &str, nodes: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    nodes
        .into_iter()
        .max_by_key(|node| (weight(node, lease), *node))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leases(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("sub:instance{i}.example")).collect()
    }

    #[test]
    fn every_node_agrees_and_the_load_spreads() {
        let nodes = ["node-a", "node-b", "node-c"];
        let mut counts = [0usize; 3];
        for lease in leases(3000) {
            let chosen = owner(&lease, nodes).unwrap();
            // The order the list comes in does not matter.
            assert_eq!(owner(&lease, nodes.iter().rev().copied()), Some(chosen));
            counts[nodes.iter().position(|n| *n == chosen).unwrap()] += 1;
        }
        for count in counts {
            assert!((800..1200).contains(&count), "uneven spread: {counts:?}");
        }
        assert_eq!(owner("sub:x", []), None);
    }

    #[test]
    fn a_node_leaving_moves_only_its_own_leases_and_a_node_joining_takes_a_share() {
        let three = ["node-a", "node-b", "node-c"];
        let two = ["node-a", "node-b"];
        let all = leases(3000);
        let mut moved_to_new = 0;
        for lease in &all {
            let before = owner(lease, three).unwrap();
            let after = owner(lease, two).unwrap();
            if before != "node-c" {
                assert_eq!(before, after, "{lease} moved though its node stayed");
            }
            if after != before {
                moved_to_new += 1;
            }
        }
        // Going from two to three (the same thing backwards): node-c takes about a third.
        assert!((800..1200).contains(&moved_to_new), "{moved_to_new}");
    }
}
