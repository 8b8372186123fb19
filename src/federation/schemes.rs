//! Per receiving host, which HTTP signature scheme to sign with: the memory behind the "double knock".
//!
//! Receivers are moving from draft-cavage to RFC 9421 (Mastodon ≥ 4.5 and Fedify accept both; a receiver
//! may one day accept only RFC 9421). The relay signs with the scheme it knows works for a host, else with
//! the configured first knock; when a host answers 401 or 400, the delivery client tries the same
//! request once with the other scheme, and the one that worked is remembered here, in memory for the
//! clients and in the store for the next start. Delivery workers copy their host's scheme when they start
//! and keep it, so the hot path reads no shared state.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::Result;
use crate::config::OutboundSignature;
use crate::httpsig::Scheme;
use crate::store::Store;

/// What the relay knows about the receiving hosts' signature schemes.
pub struct SignatureSchemes {
    first: OutboundSignature,
    known: RwLock<HashMap<String, Scheme>>,
    store: Option<Store>,
}

impl SignatureSchemes {
    /// Loads what the store remembers; unknown hosts get `first`.
    pub async fn load(store: Store, first: OutboundSignature) -> Result<Arc<SignatureSchemes>> {
        let known = store
            .signature_schemes()
            .await?
            .into_iter()
            .filter_map(|(host, name)| Some((host, Scheme::parse(&name)?)))
            .collect();
        Ok(Arc::new(SignatureSchemes {
            first,
            known: RwLock::new(known),
            store: Some(store),
        }))
    }

    /// A memory that is not persisted (tools and tests).
    pub fn in_memory(first: OutboundSignature) -> Arc<SignatureSchemes> {
        Arc::new(SignatureSchemes {
            first,
            known: RwLock::new(HashMap::new()),
            store: None,
        })
    }

    /// The scheme to sign requests to `authority` with first.
    pub fn for_host(&self, authority: &str) -> Scheme {
        if let Ok(known) = self.known.read()
            && let Some(scheme) = known.get(authority)
        {
            return *scheme;
        }
        match self.first {
            OutboundSignature::Rfc9421 => Scheme::Rfc9421,
            OutboundSignature::Cavage | OutboundSignature::Auto => Scheme::Cavage,
        }
    }

    /// Remembers that `authority` accepted `scheme` (after it refused the other one).
    pub async fn remember(&self, authority: &str, scheme: Scheme) {
        let changed = match self.known.write() {
            Ok(mut known) => known.insert(authority.to_string(), scheme) != Some(scheme),
            Err(_) => false,
        };
        if !changed {
            return;
        }
        tracing::info!(host = %authority, scheme = scheme.as_str(), "remembering the signature scheme this host accepts");
        if let Some(store) = &self.store
            && let Err(e) = store.set_signature_scheme(authority, scheme.as_str()).await
        {
            tracing::warn!(host = %authority, error = %e, "persisting the signature scheme");
        }
    }

    /// With `outbound_signature = "auto"`: `authority` signed a request to the relay with `scheme`, so
    /// it accepts that scheme; taken as its first knock unless something is known already (in memory at
    /// once, so the reply to this very request uses it; persisted in the background). Costs a map lookup
    /// otherwise.
    pub fn hint(self: &Arc<Self>, authority: &str, scheme: Scheme) {
        if self.first != OutboundSignature::Auto {
            return;
        }
        let known = self
            .known
            .read()
            .map(|k| k.contains_key(authority))
            .unwrap_or(true);
        if known {
            return;
        }
        let taken = match self.known.write() {
            Ok(mut known) => match known.entry(authority.to_string()) {
                std::collections::hash_map::Entry::Occupied(_) => false,
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(scheme);
                    true
                }
            },
            Err(_) => false,
        };
        if let (true, Some(store)) = (taken, self.store.clone()) {
            let authority = authority.to_string();
            tokio::spawn(async move {
                if let Err(e) = store
                    .set_signature_scheme(&authority, scheme.as_str())
                    .await
                {
                    tracing::warn!(host = %authority, error = %e, "persisting the signature scheme");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_knock_then_what_worked_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let schemes =
                SignatureSchemes::load(Store::open(&path).unwrap(), OutboundSignature::Cavage)
                    .await
                    .unwrap();
            assert_eq!(schemes.for_host("a.example"), Scheme::Cavage);
            schemes.remember("a.example", Scheme::Rfc9421).await;
            assert_eq!(schemes.for_host("a.example"), Scheme::Rfc9421);
            assert_eq!(schemes.for_host("b.example"), Scheme::Cavage);
        }
        let reopened =
            SignatureSchemes::load(Store::open(&path).unwrap(), OutboundSignature::Cavage)
                .await
                .unwrap();
        assert_eq!(reopened.for_host("a.example"), Scheme::Rfc9421);
        let rfc = SignatureSchemes::in_memory(OutboundSignature::Rfc9421);
        assert_eq!(rfc.for_host("b.example"), Scheme::Rfc9421);
    }

    #[tokio::test]
    async fn auto_takes_the_scheme_a_host_signs_with() {
        let auto = SignatureSchemes::in_memory(OutboundSignature::Auto);
        assert_eq!(auto.for_host("a.example"), Scheme::Cavage);
        auto.hint("a.example", Scheme::Rfc9421);
        assert_eq!(auto.for_host("a.example"), Scheme::Rfc9421);
        // A host whose scheme is known keeps it.
        auto.hint("a.example", Scheme::Cavage);
        assert_eq!(auto.for_host("a.example"), Scheme::Rfc9421);
        // Without auto, hints change nothing.
        let cavage = SignatureSchemes::in_memory(OutboundSignature::Cavage);
        cavage.hint("a.example", Scheme::Rfc9421);
        assert_eq!(cavage.for_host("a.example"), Scheme::Cavage);
    }
}
