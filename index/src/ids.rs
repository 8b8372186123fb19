//! Mastodon-style account ids: a number derived from the actor id alone, so the same actor has the same
//! id in every answer, across restarts and reindexing, whether or not its actor document is held, and an
//! id handed out can be looked up again (the `account` field of the index holds it).

use sha2::{Digest, Sha256};

/// The account id of an actor: the first 63 bits of the SHA-256 of its actor id (63, so it is a
/// positive signed 64-bit integer as well, which some clients parse ids into). Mastodon writes it as a
/// decimal string.
pub fn account_id(actor_uri: &str) -> u64 {
    uri_hash(actor_uri)
}

/// A hash of an id that is the same in every process and release (kept in the index): the first 63
/// bits of its SHA-256.
pub(crate) fn uri_hash(uri: &str) -> u64 {
    let digest = Sha256::digest(uri.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) >> 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_distinct_and_63_bits() {
        let a = account_id("https://a.example/users/ann");
        // SHA-256("https://a.example/users/ann"), first 8 bytes, shifted right once: fixed forever,
        // since clients keep the ids they were given.
        assert_eq!(a, account_id("https://a.example/users/ann"));
        assert_ne!(a, account_id("https://a.example/users/bob"));
        assert!(a <= i64::MAX as u64);
        assert_ne!(a, 0);
    }
}
