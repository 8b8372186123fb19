//! HTTP signatures: checking what instances send to the inbox, signing what the relay sends out.
//!
//! The inbox calls [`extract_claim`] before fetching any key: it parses whichever signature the request
//! carries (RFC 9421 when `Signature-Input` is present, else draft-cavage), applies Mastodon's policy (what
//! must be signed, digest, clock window) and returns a [`Claim`]: the key id to resolve and the exact bytes
//! to verify. Once the key is known (and cached), [`Claim::verify`] does one public-key operation.
//! Outgoing requests are signed with [`sign_request`] (draft-cavage, `rsa-sha256`, what every server
//! accepts); the fan-out hashes a body once, and each subscriber's worker signs with a
//! [`CavageTemplate`] of its inbox (what [`sign_request_with_digest`] builds for one request).
//!
//! Files: `verify` checks inbound signatures, `sign` signs outbound requests (`outbound9421` in RFC 9421),
//! `cavage` and `rfc9421` build the signed bytes of each scheme, `digest` ties bodies to headers,
//! `keys` holds public and private keys, `sfv` parses RFC 8941 structured fields.

pub mod cavage;
pub mod digest;
pub mod keys;
pub mod outbound9421;
pub mod rfc9421;
mod sfv;
pub mod sign;
pub mod verify;

use axum::http::{HeaderMap, Method};

pub use digest::{check_content_digest, check_digest, content_digest_header, digest_header};
pub use keys::{KeyType, PrivateKey, PublicKey, SigAlgorithm, verify_hmac_sha256};
pub use sign::{CavageTemplate, sign_request, sign_request_as, sign_request_with_digest};
pub use verify::extract_claim;

use crate::{Error, Result};

/// How far a signature's date may lie in the future, and how long after expiry it is still accepted
/// (Mastodon's `CLOCK_SKEW_MARGIN`).
pub const CLOCK_SKEW_MARGIN_SECS: i64 = 60 * 60;
/// Validity of a signature that does not say `expires` (Mastodon: 5 minutes).
pub const DEFAULT_EXPIRY_SECS: i64 = 5 * 60;
/// The longest validity a signature may claim (Mastodon's `EXPIRATION_WINDOW_LIMIT`).
pub const EXPIRATION_WINDOW_LIMIT_SECS: i64 = 12 * 60 * 60;

/// The longest signature-related header value read (`Signature`, `Signature-Input`, `Authorization`,
/// `Digest`, `Content-Digest`; several field lines count together), in bytes. Real ones are under 1 KB
/// (an RSA-4096 signature is 684 base64 characters); anything longer is refused before it is parsed.
pub const MAX_SIGNATURE_HEADER_BYTES: usize = 8 * 1024;

/// The most entries read in any list of a signature header: cavage parameters and `headers=` names,
/// structured-field dictionary members, inner-list items and parameters per item, `Digest` entries. Real
/// signatures use fewer than ten; parsers stop with an error at the first entry past the cap.
pub const MAX_SIGNATURE_ENTRIES: usize = 32;

/// Decodes standard base64 with or without padding, as structured fields and keys are read
/// (RFC 8941 §4.2.7 asks parsers to be lax).
pub fn decode_base64_lax(text: &str) -> std::result::Result<Vec<u8>, base64::DecodeError> {
    use base64::Engine as _;
    sfv::B64_LAX.decode(text)
}

/// A request as the inbox received it.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The request target: path and query, as received (`/inbox?x=1`).
    pub path_and_query: &'a str,
    /// The relay's own authority (host and non-default port of its public URL): the signature must have
    /// been made for it. A `Host` header, when present, must name it; `host` (when there is no Host
    /// header, as over HTTP/2), `@authority` and `@target-uri` are built from it.
    pub authority: &'a str,
    /// `https` (or `http` behind a terminating proxy, as configured).
    pub scheme: &'a str,
    /// The request's header fields.
    pub headers: &'a HeaderMap,
    /// The request body.
    pub body: &'a [u8],
}

/// Which specification a signature follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// draft-cavage-http-signatures (`Signature` header).
    Cavage,
    /// RFC 9421 (`Signature-Input` + `Signature`).
    Rfc9421,
}

/// A signature that passed every check that needs no key: what remains is one verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The key to fetch (`keyId` / `keyid`).
    pub key_id: String,
    /// The algorithm the signature names; `None` means "the key's usual one" (cavage `hs2019`, RFC 9421
    /// without `alg`).
    pub algorithm: Option<SigAlgorithm>,
    /// The signed bytes (signing string or signature base).
    pub message: Vec<u8>,
    /// The signature bytes.
    pub signature: Vec<u8>,
    /// The scheme the request used (worth remembering per host for outgoing requests).
    pub scheme: Scheme,
}

impl Claim {
    /// Verifies the signature with the signer's key.
    ///
    /// [`Error::KeyUnusable`] when the named algorithm does not fit the key, [`Error::SignatureInvalid`]
    /// when the signature is wrong (the caller may refetch the key once, then answer 401).
    pub fn verify(&self, key: &PublicKey) -> Result<()> {
        let alg = self
            .algorithm
            .unwrap_or_else(|| key.key_type().default_algorithm());
        key.verify(alg, &self.message, &self.signature)
    }
}

/// `v` as the value of header `name` in a request the relay signs; [`Error::Config`] when it is not a
/// valid one.
pub(crate) fn header_value(name: &str, v: &str) -> Result<axum::http::HeaderValue> {
    axum::http::HeaderValue::from_str(v)
        .map_err(|_| Error::Config(format!("{name} value {v:?} is not a valid header")))
}

/// The `Host` of a request to `url`, as signed: the host, with the port when it is not the scheme's
/// default.
pub fn authority(url: &url::Url) -> Result<String> {
    let host = url
        .host_str()
        .ok_or_else(|| Error::fetch(url.as_str(), "URL has no host"))?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// The request target of a request to `url` in origin form, as signed: path, and `?query` when there is
/// one.
pub fn request_target(url: &url::Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

impl Scheme {
    /// The other scheme: what to try once when a receiver refuses this one (the "double knock").
    pub fn other(self) -> Scheme {
        match self {
            Scheme::Cavage => Scheme::Rfc9421,
            Scheme::Rfc9421 => Scheme::Cavage,
        }
    }

    /// The name used in the configuration and the store: `cavage` or `rfc9421`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Cavage => "cavage",
            Scheme::Rfc9421 => "rfc9421",
        }
    }

    /// Reads [`Scheme::as_str`] back.
    pub fn parse(name: &str) -> Option<Scheme> {
        match name {
            "cavage" => Some(Scheme::Cavage),
            "rfc9421" => Some(Scheme::Rfc9421),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
