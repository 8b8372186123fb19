//! Ed25519 keys of the FASP protocol: Plaza's own key pair per registered server (it signs responses
//! with it), the server's public key (its requests are checked with it), and the fingerprint admins
//! compare on both sides. aws-lc-rs does the cryptography, as for the relay's RSA key.

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};

use crate::{Error, Result};

/// Length of a raw Ed25519 public key.
const PUBLIC_KEY_LEN: usize = 32;

/// Plaza's Ed25519 key pair for one server.
pub struct SigningKey(Ed25519KeyPair);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh key pair.
    pub fn generate() -> Result<SigningKey> {
        Ed25519KeyPair::generate()
            .map(SigningKey)
            .map_err(|_| Error::Crypto("Ed25519 key generation failed".into()))
    }

    /// Reads a PKCS#8 document (v1 or v2), as stored.
    pub fn from_pkcs8(der: &[u8]) -> Result<SigningKey> {
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map(SigningKey)
            .map_err(|e| Error::Crypto(format!("Ed25519 private key: {e}")))
    }

    /// Reads the base64 PKCS#8 document [`SigningKey::to_base64`] wrote.
    pub fn from_base64(text: &str) -> Result<SigningKey> {
        let der = STANDARD
            .decode(text.trim())
            .map_err(|e| Error::Crypto(format!("Ed25519 private key: {e}")))?;
        Self::from_pkcs8(&der)
    }

    /// The private key as base64 of its PKCS#8 document, for the store.
    pub fn to_base64(&self) -> Result<String> {
        let doc = self
            .0
            .to_pkcs8()
            .map_err(|_| Error::Crypto("Ed25519 key export failed".into()))?;
        Ok(STANDARD.encode(doc.as_ref()))
    }

    /// The public key, base64 of its 32 raw bytes (what the registration sends).
    pub fn public_key_base64(&self) -> String {
        STANDARD.encode(self.0.public_key().as_ref())
    }

    /// The fingerprint of the public key: base64 of its SHA-256 ([`fingerprint`]).
    pub fn fingerprint(&self) -> String {
        fingerprint(self.0.public_key().as_ref())
    }

    /// Signs `message` (Ed25519 is deterministic: the same message gives the same signature).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.0.sign(message).as_ref().to_vec()
    }
}

/// Base64 of the SHA-256 of a raw public key: what admins compare on the provider and the server.
pub fn fingerprint(raw_public_key: &[u8]) -> String {
    STANDARD.encode(Sha256::digest(raw_public_key))
}

/// A server's Ed25519 public key, checked to be 32 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey([u8; PUBLIC_KEY_LEN]);

impl VerifyingKey {
    /// Reads base64 of the 32 raw bytes (padded or not).
    pub fn from_base64(text: &str) -> Result<VerifyingKey> {
        let bytes = crate::httpsig::decode_base64_lax(text.trim())
            .map_err(|e| Error::KeyUnusable(format!("Ed25519 public key: {e}")))?;
        let raw: [u8; PUBLIC_KEY_LEN] = bytes.try_into().map_err(|b: Vec<u8>| {
            Error::KeyUnusable(format!(
                "an Ed25519 public key is {PUBLIC_KEY_LEN} bytes, not {}",
                b.len()
            ))
        })?;
        Ok(VerifyingKey(raw))
    }

    /// Checks an Ed25519 signature of `message`: [`Error::SignatureInvalid`] when it is wrong.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, signature)
            .map_err(|_| Error::SignatureInvalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_sign_and_verify() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_base64(&key.to_base64().unwrap()).unwrap();
        assert_eq!(again.public_key_base64(), key.public_key_base64());
        let public = VerifyingKey::from_base64(&key.public_key_base64()).unwrap();
        let sig = again.sign(b"hello");
        public.verify(b"hello", &sig).unwrap();
        assert!(matches!(
            public.verify(b"hellO", &sig),
            Err(Error::SignatureInvalid)
        ));
        let raw = STANDARD.decode(key.public_key_base64()).unwrap();
        assert_eq!(key.fingerprint(), fingerprint(&raw));
        assert_eq!(STANDARD.decode(key.fingerprint()).unwrap().len(), 32);
    }

    #[test]
    fn public_keys_must_be_32_bytes_of_base64() {
        assert!(VerifyingKey::from_base64("not base64!").is_err());
        assert!(VerifyingKey::from_base64(&STANDARD.encode([1u8; 31])).is_err());
        assert!(VerifyingKey::from_base64(&STANDARD.encode([1u8; 32])).is_ok());
    }
}
