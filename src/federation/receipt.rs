//! What became of an accepted inbox request. A file of its own, below the inbox path, so that the
//! inbound counters the state holds can name it without importing the inbox path (which borrows the
//! state).

/// What became of an accepted request (all answered 202).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// Written to the log for delivery; carries the log sequence.
    Queued(u64),
    /// The instance is now (or still) subscribed; the Accept is queued.
    Subscribed,
    /// The instance's subscription was removed.
    Unsubscribed,
    /// The instance's Follow waiting for approval was withdrawn.
    Withdrawn,
    /// The activity or its object was relayed before.
    Duplicate,
    /// Valid, but there is nothing to relay; carries the reason.
    Ignored(&'static str),
}

impl Receipt {
    /// A short word for the response body and the logs.
    pub fn describe(&self) -> String {
        match self {
            Receipt::Queued(seq) => format!("queued as {seq}"),
            Receipt::Subscribed => "subscribed".into(),
            Receipt::Unsubscribed => "unsubscribed".into(),
            Receipt::Withdrawn => "withdrawn".into(),
            Receipt::Duplicate => "duplicate".into(),
            Receipt::Ignored(why) => format!("ignored: {why}"),
        }
    }
}
