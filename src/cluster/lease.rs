//! The names of the leases: what a lease is for is read from its name, and every node names a piece
//! of work alike.

/// The deliveries to subscriber `authority`.
pub fn subscriber(authority: &str) -> String {
    format!("{SUBSCRIBER}{authority}")
}

/// The deliveries to topic follower inbox `inbox`.
pub fn topic_inbox(inbox: &str) -> String {
    format!("{TOPIC_INBOX}{inbox}")
}

/// Prefix of the subscribers' leases.
pub const SUBSCRIBER: &str = "sub:";
/// Prefix of the topic follower inboxes' leases.
pub const TOPIC_INBOX: &str = "topic:";
/// Pruning the log past its retention window.
pub const PRUNE: &str = "job:prune";
/// FASP data_sharing: the subscriptions of servers that activated it and the paced backfills.
pub const SHARING: &str = "job:sharing";
/// FASP data_sharing's share worker: fetches the URIs servers announced into the index (on a node
/// with an index).
pub const FASP_SHARES: &str = "job:fasp-shares";
