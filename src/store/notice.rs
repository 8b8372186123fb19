//! What one node's commit tells the others (see [`crate::store::notices`] for how it travels): the
//! changes they keep in memory, and their text on the wire. A leaf, so that every part of the store
//! that changes such things can name its notice.

/// A change the other nodes must hear of.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Notice {
    /// The log grew up to this sequence.
    Log(u64),
    /// This subscriber was added, changed or removed.
    Subscriber(String),
    /// Blocks, the subscription policy or per-instance limits changed.
    Moderation,
    /// Topic follows or curated searches changed.
    Topics,
    /// FASP registrations or activations changed.
    Fasp,
    /// A node joined or left.
    Nodes,
    /// Notices may have been missed (the connection broke, or a handler fell behind): read everything
    /// again. Never sent; made by the listener.
    Resync,
}

impl Notice {
    /// The payload, after the sending store's tag.
    pub(super) fn encode(&self) -> String {
        match self {
            Notice::Log(seq) => format!("log {seq}"),
            Notice::Subscriber(authority) => format!("sub {authority}"),
            Notice::Moderation => "moderation".into(),
            Notice::Topics => "topics".into(),
            Notice::Fasp => "fasp".into(),
            Notice::Nodes => "nodes".into(),
            Notice::Resync => "resync".into(),
        }
    }

    /// The notice of a payload; `None` for one this release does not know.
    pub(super) fn decode(text: &str) -> Option<Notice> {
        let (kind, arg) = text.split_once(' ').unwrap_or((text, ""));
        Some(match kind {
            "log" => Notice::Log(arg.parse().ok()?),
            "sub" if !arg.is_empty() => Notice::Subscriber(arg.to_owned()),
            "moderation" => Notice::Moderation,
            "topics" => Notice::Topics,
            "fasp" => Notice::Fasp,
            "nodes" => Notice::Nodes,
            _ => return None,
        })
    }
}
