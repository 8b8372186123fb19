//! The subscription policy: who may subscribe without an admin looking first.
//!
//! - `open`: every instance that is not blocked (the default);
//! - `approval`: a Follow waits as pending until an admin approves (Accept) or rejects (Reject) it;
//! - `allowlist`: only instances under a listed domain (subdomains included) may subscribe, the others
//!   get a Reject.

use serde::{Deserialize, Serialize};

use crate::moderation::domain;
use crate::{Error, Result};

/// The settings key the run-time subscription policy is saved under.
pub const POLICY_SETTING: &str = "subscription_policy";

/// The three policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Anyone not blocked.
    #[default]
    Open,
    /// An admin decides each new subscription.
    Approval,
    /// Listed domains only.
    Allowlist,
}

impl Policy {
    /// Parses `open`, `approval` or `allowlist`.
    pub fn parse(s: &str) -> Result<Policy> {
        match s.trim().to_ascii_lowercase().as_str() {
            "open" => Ok(Policy::Open),
            "approval" => Ok(Policy::Approval),
            "allowlist" => Ok(Policy::Allowlist),
            other => Err(Error::BadRequest(format!(
                "subscription policy {other:?}: expected open, approval or allowlist"
            ))),
        }
    }
}

/// The policy with its allowlist, as configured and as changed at run time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PolicySettings {
    /// Which policy applies.
    pub policy: Policy,
    /// The domains the allowlist policy admits (normalised).
    #[serde(default)]
    pub allowlist: Vec<String>,
}

impl PolicySettings {
    /// Settings with the allowlist normalised (refusing entries that are not domains).
    pub fn new(policy: Policy, allowlist: &[String]) -> Result<PolicySettings> {
        let mut allowlist = allowlist
            .iter()
            .filter(|d| !d.trim().is_empty())
            .map(|d| domain::normalize(d))
            .collect::<Result<Vec<_>>>()?;
        allowlist.sort();
        allowlist.dedup();
        Ok(PolicySettings { policy, allowlist })
    }
}

/// What becomes of a Follow from a new (not yet subscribed, not blocked) instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Subscribe it now.
    Admit,
    /// Hold it for an admin.
    Hold,
    /// Answer with a Reject, for this reason.
    Refuse(&'static str),
}

/// Follows that may wait for an admin at once; more are refused, so that a wave of signed Follows from
/// many hosts cannot grow the pending list (and the admins' queue) without end.
pub const MAX_PENDING: usize = 1000;

/// Why a Follow the policy would hold is refused when [`MAX_PENDING`] already wait.
pub const PENDING_FULL: &str = "too many subscriptions are waiting for approval; try again later";

/// Applies `settings` to a Follow from the instance at `authority`.
pub fn admit(settings: &PolicySettings, authority: &str) -> Admission {
    match settings.policy {
        Policy::Open => Admission::Admit,
        Policy::Approval => Admission::Hold,
        Policy::Allowlist => {
            let host = domain::host_of(authority);
            if settings
                .allowlist
                .iter()
                .any(|rule| domain::covers(rule, &host))
            {
                Admission::Admit
            } else {
                Admission::Refuse("this relay only admits listed instances")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_policy_admits_holds_or_refuses() {
        let open = PolicySettings::default();
        assert_eq!(admit(&open, "a.example"), Admission::Admit);
        let approval = PolicySettings::new(Policy::Approval, &[]).unwrap();
        assert_eq!(admit(&approval, "a.example"), Admission::Hold);
        let allow = PolicySettings::new(
            Policy::Allowlist,
            &["Coop.Example".into(), "127.0.0.7".into()],
        )
        .unwrap();
        assert_eq!(allow.allowlist, ["127.0.0.7", "coop.example"]);
        assert_eq!(admit(&allow, "social.coop.example"), Admission::Admit);
        assert_eq!(admit(&allow, "127.0.0.7:4000"), Admission::Admit);
        assert!(matches!(
            admit(&allow, "other.example"),
            Admission::Refuse(_)
        ));
        assert!(PolicySettings::new(Policy::Allowlist, &["no way".into()]).is_err());
        assert!(Policy::parse("closed").is_err());
        assert_eq!(Policy::parse(" Approval").unwrap(), Policy::Approval);
    }
}
