//! The audit log: every change an admin makes (who by token name, what, to which target, when), so
//! that several admins can see what the others did and nothing changes unexplained; and every Follow
//! the relay's own rules refused, with the reason its Reject answered.

use serde::{Deserialize, Serialize};

/// The name the audit log gives the relay itself, for the Follows its own rules refuse; no admin
/// token may take it.
pub const RELAY_AUDITOR: &str = "relay";

/// One recorded admin action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log.
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// The name of the admin token used, or `relay` for a Follow the relay's own rules refused.
    pub admin: String,
    /// What was done, e.g. `block`, `approve`, `set-policy`.
    pub action: String,
    /// What it was done to (an instance, a domain, a software name), empty when nothing in particular.
    pub target: String,
    /// The parameters of the change, as JSON.
    pub detail: serde_json::Value,
}

/// An action about to be recorded.
#[derive(Debug, Clone)]
pub struct NewAudit {
    /// See [`AuditEntry::admin`].
    pub admin: String,
    /// See [`AuditEntry::action`].
    pub action: &'static str,
    /// See [`AuditEntry::target`].
    pub target: String,
    /// See [`AuditEntry::detail`].
    pub detail: serde_json::Value,
}
