//! Admin tokens: who is calling the admin API. Each token has a name (the single `admin_token` is
//! "admin"; `admin_tokens` adds `name=token` pairs), which the audit log records instead of the secret.
//!
//! A presented token is compared with every configured one in constant time, length included: both
//! sides are hashed (SHA-256) first, so the comparison always covers 32 bytes whatever was sent, and
//! every configured token is compared, so the time does not say which one nearly matched.

use sha2::{Digest, Sha256};

use crate::moderation::audit::RELAY_AUDITOR;
use crate::{Error, Result};

/// The configured admin tokens.
#[derive(Clone, Default)]
pub struct AdminTokens {
    tokens: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for AdminTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.tokens.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("AdminTokens")
            .field("names", &names)
            .finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl AdminTokens {
    /// Tokens from `admin_token` (named "admin") and `name=token` pairs; empty tokens are ignored.
    pub fn new(admin_token: &str, pairs: &[String]) -> Result<AdminTokens> {
        let mut tokens = Vec::new();
        if !admin_token.is_empty() {
            tokens.push(("admin".to_string(), digest(admin_token)));
        }
        for pair in pairs {
            let (name, token) = pair
                .split_once('=')
                .ok_or_else(|| Error::Config("admin_tokens entries are name=token pairs".into()))?;
            let name = name.trim();
            if name.is_empty() || token.is_empty() {
                return Err(Error::Config(
                    "admin_tokens: every entry needs a name and a token".into(),
                ));
            }
            if name == RELAY_AUDITOR {
                return Err(Error::Config(format!(
                    "admin_tokens: the name {name:?} is the relay's own in the audit log"
                )));
            }
            if tokens.iter().any(|(n, _)| n == name) {
                return Err(Error::Config(format!(
                    "admin_tokens: the name {name:?} is used twice"
                )));
            }
            tokens.push((name.to_string(), digest(token)));
        }
        Ok(AdminTokens { tokens })
    }

    /// Whether any token is configured (without one the admin API does not exist).
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The name of the token `given` is, if it is one.
    pub fn identify(&self, given: &str) -> Option<&str> {
        let given = digest(given);
        let mut found = None;
        for (name, expected) in &self.tokens {
            if aws_lc_rs::constant_time::verify_slices_are_equal(&given, expected).is_ok() {
                found = Some(name.as_str());
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_named_and_matched_whole() {
        let tokens = AdminTokens::new("main-secret", &["alice=a-secret".into()]).unwrap();
        assert!(tokens.enabled());
        assert_eq!(tokens.identify("main-secret"), Some("admin"));
        assert_eq!(tokens.identify("a-secret"), Some("alice"));
        assert_eq!(tokens.identify("main-secre"), None);
        assert_eq!(tokens.identify("main-secrett"), None);
        assert_eq!(tokens.identify(""), None);
        assert!(!format!("{tokens:?}").contains("secret"));
    }

    #[test]
    fn no_tokens_means_disabled_and_bad_pairs_fail() {
        assert!(!AdminTokens::new("", &[]).unwrap().enabled());
        assert_eq!(AdminTokens::new("", &[]).unwrap().identify(""), None);
        assert!(AdminTokens::new("", &["nameless".into()]).is_err());
        assert!(AdminTokens::new("", &["=x".into()]).is_err());
        assert!(AdminTokens::new("x", &["admin=y".into()]).is_err());
        assert!(
            AdminTokens::new("", &["relay=y".into()]).is_err(),
            "the relay's own name in the audit log"
        );
    }
}
