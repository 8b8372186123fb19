//! Keys: the remote actors' public keys (verification) and the relay's own RSA key (signing).
//!
//! Actors publish PEM keys as SPKI (`BEGIN PUBLIC KEY`: RSA, Ed25519, EC P-256) or PKCS#1
//! (`BEGIN RSA PUBLIC KEY`). Parsing a key costs more than a verification, so [`PublicKey`] holds the parsed
//! aws-lc-rs key behind an `Arc`: the inbox caches it (moka) and clones it cheaply. The relay's
//! [`PrivateKey`] signs every outgoing request with RSASSA-PKCS1-v1_5 SHA-256, the one algorithm every
//! fediverse server verifies.

use std::fmt;
use std::sync::{Arc, OnceLock};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _, ParsedPublicKey, VerificationAlgorithm};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::{Error, Result};

/// A signature algorithm Plaza can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256: cavage `rsa-sha256`, `hs2019` with an RSA key, RFC 9421
    /// `rsa-v1_5-sha256`.
    RsaPkcs1Sha256,
    /// RSASSA-PSS with SHA-512 (MGF1-SHA-512, 64-byte salt): RFC 9421 `rsa-pss-sha512`.
    RsaPssSha512,
    /// ECDSA over P-256 with SHA-256, signature as raw `r || s`: RFC 9421 `ecdsa-p256-sha256`.
    EcdsaP256Sha256,
    /// Ed25519: RFC 9421 `ed25519`.
    Ed25519,
    /// HMAC-SHA-256 with a shared secret: RFC 9421 `hmac-sha256`. Never used with a [`PublicKey`]; see
    /// [`verify_hmac_sha256`].
    HmacSha256,
}

impl SigAlgorithm {
    /// The RFC 9421 registry name.
    pub fn rfc9421_name(self) -> &'static str {
        match self {
            SigAlgorithm::RsaPkcs1Sha256 => "rsa-v1_5-sha256",
            SigAlgorithm::RsaPssSha512 => "rsa-pss-sha512",
            SigAlgorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            SigAlgorithm::Ed25519 => "ed25519",
            SigAlgorithm::HmacSha256 => "hmac-sha256",
        }
    }

    /// Looks up an RFC 9421 `alg` value.
    pub fn from_rfc9421_name(name: &str) -> Option<SigAlgorithm> {
        [
            SigAlgorithm::RsaPkcs1Sha256,
            SigAlgorithm::RsaPssSha512,
            SigAlgorithm::EcdsaP256Sha256,
            SigAlgorithm::Ed25519,
            SigAlgorithm::HmacSha256,
        ]
        .into_iter()
        .find(|a| a.rfc9421_name() == name)
    }
}

/// What kind of key a [`PublicKey`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// RSA with the modulus size in bits.
    Rsa {
        /// Modulus length in bits (1024..=8192).
        bits: usize,
    },
    /// Ed25519.
    Ed25519,
    /// ECDSA on P-256.
    EcP256,
}

impl KeyType {
    /// The algorithm a signature made with this key means when the header does not say (cavage `hs2019`
    /// or no `alg` in RFC 9421): PKCS#1 v1.5 SHA-256 for RSA, as the fediverse does.
    pub fn default_algorithm(self) -> SigAlgorithm {
        match self {
            KeyType::Rsa { .. } => SigAlgorithm::RsaPkcs1Sha256,
            KeyType::Ed25519 => SigAlgorithm::Ed25519,
            KeyType::EcP256 => SigAlgorithm::EcdsaP256Sha256,
        }
    }
}

/// A parsed public key, ready to verify; cheap to clone.
#[derive(Clone)]
pub struct PublicKey(Arc<Inner>);

struct Inner {
    key_type: KeyType,
    /// Parsed for the key's usual algorithm (PKCS#1 v1.5 SHA-256 for RSA).
    main: ParsedPublicKey,
    /// RSA only: parsed for PSS-SHA-512 on first use (rare in the fediverse).
    pss: OnceLock<Option<ParsedPublicKey>>,
    der: Box<[u8]>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("type", &self.0.key_type)
            .finish_non_exhaustive()
    }
}

const MIN_RSA_BITS: usize = 1024;
const MAX_RSA_BITS: usize = 8192;

impl PublicKey {
    /// Parses a PEM public key: `BEGIN PUBLIC KEY` (SPKI with RSA, Ed25519 or EC P-256) or
    /// `BEGIN RSA PUBLIC KEY` (PKCS#1). Whitespace, `\r\n` and a missing final newline are tolerated.
    pub fn from_pem(pem: &str) -> Result<PublicKey> {
        let blocks = pem_blocks(pem).map_err(Error::KeyUnusable)?;
        let (label, der) = blocks
            .into_iter()
            .find(|(l, _)| l == "PUBLIC KEY" || l == "RSA PUBLIC KEY")
            .ok_or_else(|| Error::KeyUnusable("no PUBLIC KEY block in PEM".into()))?;
        if label == "RSA PUBLIC KEY" {
            let bits = der::rsa_modulus_bits(&der).map_err(Error::KeyUnusable)?;
            Self::rsa(der, bits)
        } else {
            Self::from_spki_der(der)
        }
    }

    /// Parses a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: Vec<u8>) -> Result<PublicKey> {
        match der::spki_kind(&der).map_err(Error::KeyUnusable)? {
            der::SpkiKind::Rsa { bits } => Self::rsa(der, bits),
            der::SpkiKind::Ed25519 => Self::other(der, KeyType::Ed25519, &signature::ED25519),
            der::SpkiKind::EcP256 => {
                Self::other(der, KeyType::EcP256, &signature::ECDSA_P256_SHA256_FIXED)
            }
        }
    }

    fn rsa(der: Vec<u8>, bits: usize) -> Result<PublicKey> {
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
            return Err(Error::KeyUnusable(format!(
                "RSA key of {bits} bits (accepted: {MIN_RSA_BITS}..={MAX_RSA_BITS})"
            )));
        }
        Self::other(
            der,
            KeyType::Rsa { bits },
            &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        )
    }

    fn other(
        der: Vec<u8>,
        key_type: KeyType,
        alg: &'static dyn VerificationAlgorithm,
    ) -> Result<PublicKey> {
        let main = ParsedPublicKey::new(alg, &der)
            .map_err(|e| Error::KeyUnusable(format!("{key_type:?} key rejected: {e}")))?;
        Ok(PublicKey(Arc::new(Inner {
            key_type,
            main,
            pss: OnceLock::new(),
            der: der.into_boxed_slice(),
        })))
    }

    /// The kind of key.
    pub fn key_type(&self) -> KeyType {
        self.0.key_type
    }

    /// Verifies `signature` over `message` with `alg`.
    ///
    /// Errors: [`Error::KeyUnusable`] when `alg` does not fit the key type, [`Error::SignatureInvalid`]
    /// when the signature does not verify.
    pub fn verify(&self, alg: SigAlgorithm, message: &[u8], signature: &[u8]) -> Result<()> {
        let parsed = match (self.0.key_type, alg) {
            (KeyType::Rsa { .. }, SigAlgorithm::RsaPkcs1Sha256)
            | (KeyType::Ed25519, SigAlgorithm::Ed25519)
            | (KeyType::EcP256, SigAlgorithm::EcdsaP256Sha256) => &self.0.main,
            (KeyType::Rsa { bits }, SigAlgorithm::RsaPssSha512) => self
                .0
                .pss
                .get_or_init(|| {
                    ParsedPublicKey::new(&signature::RSA_PSS_2048_8192_SHA512, &self.0.der).ok()
                })
                .as_ref()
                .ok_or_else(|| {
                    Error::KeyUnusable(format!(
                        "RSA key of {bits} bits unusable for rsa-pss-sha512"
                    ))
                })?,
            (key_type, alg) => {
                return Err(Error::KeyUnusable(format!(
                    "algorithm {} does not fit a {key_type:?} key",
                    alg.rfc9421_name()
                )));
            }
        };
        parsed
            .verify_sig(message, signature)
            .map_err(|_| Error::SignatureInvalid)
    }
}

/// Verifies an RFC 9421 `hmac-sha256` signature with a shared secret (used by tests; the fediverse does
/// not use shared secrets).
pub fn verify_hmac_sha256(secret: &[u8], message: &[u8], signature: &[u8]) -> Result<()> {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    aws_lc_rs::hmac::verify(&key, message, signature).map_err(|_| Error::SignatureInvalid)
}

/// The relay's own RSA key. Cloning shares the key.
#[derive(Clone)]
pub struct PrivateKey {
    pair: Arc<KeyPair>,
    /// SPKI PEM of the public half, computed once.
    public_pem: Arc<str>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("bits", &(self.pair.public_modulus_len() * 8))
            .finish()
    }
}

impl PrivateKey {
    fn wrap(pair: KeyPair) -> Result<PrivateKey> {
        let der: PublicKeyX509Der<'static> = pair
            .public_key()
            .as_der()
            .map_err(|e| Error::Crypto(format!("public key export failed: {e}")))?;
        Ok(PrivateKey {
            pair: Arc::new(pair),
            public_pem: to_pem("PUBLIC KEY", der.as_ref()).into(),
        })
    }

    /// Generates a fresh RSA-2048 key.
    pub fn generate() -> Result<PrivateKey> {
        let pair = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|e| Error::Crypto(format!("RSA key generation failed: {e}")))?;
        Self::wrap(pair)
    }

    /// Reads a `BEGIN PRIVATE KEY` (unencrypted PKCS#8) PEM.
    pub fn from_pkcs8_pem(pem: &str) -> Result<PrivateKey> {
        let der = find_block(pem, "PRIVATE KEY")?;
        let pair = KeyPair::from_pkcs8(&der)
            .map_err(|e| Error::Crypto(format!("PKCS#8 RSA key rejected: {e}")))?;
        Self::wrap(pair)
    }

    /// Reads either a PKCS#8 (`BEGIN PRIVATE KEY`) or a PKCS#1 (`BEGIN RSA PRIVATE KEY`) PEM.
    pub fn from_pem(pem: &str) -> Result<PrivateKey> {
        if let Ok(der) = find_block(pem, "RSA PRIVATE KEY") {
            let pair = KeyPair::from_der(&der)
                .map_err(|e| Error::Crypto(format!("PKCS#1 RSA key rejected: {e}")))?;
            return Self::wrap(pair);
        }
        Self::from_pkcs8_pem(pem)
    }

    /// The key as a `BEGIN PRIVATE KEY` (PKCS#8) PEM, to store in the data directory.
    pub fn to_pkcs8_pem(&self) -> Result<String> {
        let der: Pkcs8V1Der<'static> = self
            .pair
            .as_der()
            .map_err(|e| Error::Crypto(format!("PKCS#8 export failed: {e}")))?;
        Ok(to_pem("PRIVATE KEY", der.as_ref()))
    }

    /// The public half as a `BEGIN PUBLIC KEY` (SPKI) PEM with 64-character lines, for the actor document.
    pub fn public_key_pem(&self) -> &str {
        &self.public_pem
    }

    /// The public half, parsed for verification (tests, self-checks).
    pub fn public_key(&self) -> Result<PublicKey> {
        PublicKey::from_pem(&self.public_pem)
    }

    /// Signs `msg` with RSASSA-PKCS1-v1_5 SHA-256: exactly one RSA private-key operation.
    pub fn sign_rsa_sha256(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                msg,
                &mut sig,
            )
            .map_err(|e| Error::Crypto(format!("RSA signing failed: {e}")))?;
        Ok(sig)
    }
}

fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn find_block(pem: &str, label: &str) -> Result<Vec<u8>> {
    pem_blocks(pem)
        .map_err(Error::Crypto)?
        .into_iter()
        .find(|(l, _)| l == label)
        .map(|(_, der)| der)
        .ok_or_else(|| Error::Crypto(format!("no {label} block in PEM")))
}

/// Decodes every `-----BEGIN X-----` … `-----END X-----` block of a PEM text into (label, DER).
/// Text outside blocks is ignored; inside, all whitespace is dropped. Encrypted PEMs (with `Proc-Type`
/// headers) are refused.
pub(crate) fn pem_blocks(text: &str) -> std::result::Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + "-----BEGIN ".len()..];
        let label_end = after.find("-----").ok_or("unterminated BEGIN line")?;
        let label = after[..label_end].trim().to_owned();
        let body_and_rest = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let body_end = body_and_rest
            .find(&end_marker)
            .ok_or_else(|| format!("no END line for {label}"))?;
        let body = &body_and_rest[..body_end];
        if body.contains(':') {
            return Err(format!(
                "{label}: PEM headers (encrypted keys) are not supported"
            ));
        }
        let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let der = STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| format!("{label}: bad base64: {e}"))?;
        out.push((label, der));
        rest = &body_and_rest[body_end + end_marker.len()..];
    }
    if out.is_empty() {
        return Err("no PEM block found".into());
    }
    Ok(out)
}

/// Just enough DER to tell key types apart and measure RSA moduli before handing the bytes to aws-lc-rs.
mod der {
    /// rsaEncryption 1.2.840.113549.1.1.1
    const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    /// id-Ed25519 1.3.101.112
    const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    /// id-ecPublicKey 1.2.840.10045.2.1
    const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    /// prime256v1 1.2.840.10045.3.1.7
    const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

    pub(super) enum SpkiKind {
        Rsa { bits: usize },
        Ed25519,
        EcP256,
    }

    type R<T> = std::result::Result<T, String>;

    /// Reads one TLV with the expected tag; returns (contents, rest).
    fn tlv(input: &[u8], tag: u8) -> R<(&[u8], &[u8])> {
        let (&t, rest) = input.split_first().ok_or("truncated DER")?;
        if t != tag {
            return Err(format!("DER: expected tag {tag:#04x}, found {t:#04x}"));
        }
        let (&first, mut rest) = rest.split_first().ok_or("truncated DER length")?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err("bad DER length".into());
            }
            let (bytes, r) = rest.split_at(n);
            rest = r;
            bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
        };
        if rest.len() < len {
            return Err("truncated DER value".into());
        }
        Ok(rest.split_at(len))
    }

    /// Modulus size of a PKCS#1 RSAPublicKey.
    pub(super) fn rsa_modulus_bits(pkcs1: &[u8]) -> R<usize> {
        let (seq, _) = tlv(pkcs1, 0x30)?;
        let (n, _) = tlv(seq, 0x02)?;
        let n = match n.iter().position(|b| *b != 0) {
            Some(i) => &n[i..],
            None => return Err("RSA modulus is zero".into()),
        };
        let lead = n.first().map_or(0, |b| b.leading_zeros() as usize);
        Ok(n.len() * 8 - lead)
    }

    /// The key type of a SubjectPublicKeyInfo.
    pub(super) fn spki_kind(spki: &[u8]) -> R<SpkiKind> {
        let (seq, _) = tlv(spki, 0x30)?;
        let (alg_id, rest) = tlv(seq, 0x30)?;
        let (oid, params) = tlv(alg_id, 0x06)?;
        let (bits, _) = tlv(rest, 0x03)?;
        if oid == OID_RSA {
            let key = bits.get(1..).ok_or("empty RSA key bit string")?;
            Ok(SpkiKind::Rsa {
                bits: rsa_modulus_bits(key)?,
            })
        } else if oid == OID_ED25519 {
            Ok(SpkiKind::Ed25519)
        } else if oid == OID_EC {
            let (curve, _) = tlv(params, 0x06)?;
            if curve == OID_P256 {
                Ok(SpkiKind::EcP256)
            } else {
                Err("EC key on a curve other than P-256".into())
            }
        } else {
            Err("unsupported public key algorithm (accepted: RSA, Ed25519, EC P-256)".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::text as fixture;

    #[test]
    fn parses_fixture_keys() {
        let k = PublicKey::from_pem(&fixture("httpsig-cavage12-test-public.pem")).expect("cavage");
        assert_eq!(k.key_type(), KeyType::Rsa { bits: 1024 });
        let k = PublicKey::from_pem(&fixture("rfc9421-test-key-rsa.pem")).expect("pkcs1");
        assert_eq!(k.key_type(), KeyType::Rsa { bits: 2048 });
        let k = PublicKey::from_pem(&fixture("rfc9421-test-key-rsa-pss.pem")).expect("pss");
        assert_eq!(k.key_type(), KeyType::Rsa { bits: 2048 });
        let k = PublicKey::from_pem(&fixture("rfc9421-test-key-ecc-p256.pem")).expect("ec");
        assert_eq!(k.key_type(), KeyType::EcP256);
        let k = PublicKey::from_pem(&fixture("rfc9421-test-key-ed25519.pem")).expect("ed25519");
        assert_eq!(k.key_type(), KeyType::Ed25519);
    }

    #[test]
    fn pem_is_whitespace_tolerant() {
        let pem = fixture("rfc9421-test-key-rsa-pss.pem");
        let crlf = pem.trim_end().replace('\n', "\r\n");
        PublicKey::from_pem(&crlf).expect("crlf, no final newline");
        let spaced = format!("  \n{}", pem.replace('\n', " \n\t"));
        PublicKey::from_pem(&spaced).expect("spaces");
    }

    #[test]
    fn bad_keys_are_unusable_not_panics() {
        for bad in [
            "",
            "-----BEGIN PUBLIC KEY-----\n",
            "-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----",
            "-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----",
            "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOC\n-----END PUBLIC KEY-----",
            "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----",
        ] {
            assert!(
                matches!(PublicKey::from_pem(bad), Err(Error::KeyUnusable(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn algorithm_must_fit_key() {
        let k = PublicKey::from_pem(&fixture("rfc9421-test-key-ed25519.pem")).expect("ed25519");
        assert!(matches!(
            k.verify(SigAlgorithm::RsaPkcs1Sha256, b"m", &[0; 64]),
            Err(Error::KeyUnusable(_))
        ));
        assert!(matches!(
            k.verify(SigAlgorithm::Ed25519, b"m", &[0; 64]),
            Err(Error::SignatureInvalid)
        ));
    }

    #[test]
    fn private_key_round_trip() {
        let key = PrivateKey::generate().expect("generate");
        let pem = key.to_pkcs8_pem().expect("pkcs8");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let again = PrivateKey::from_pkcs8_pem(&pem).expect("reload");
        let pub_pem = again.public_key_pem();
        assert!(pub_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(pub_pem.lines().all(|l| l.len() <= 64));
        assert_eq!(pub_pem, key.public_key_pem());
        let public = PublicKey::from_pem(pub_pem).expect("parse");
        assert_eq!(public.key_type(), KeyType::Rsa { bits: 2048 });
        let sig = key.sign_rsa_sha256(b"hello").expect("sign");
        public
            .verify(SigAlgorithm::RsaPkcs1Sha256, b"hello", &sig)
            .expect("verify");
        assert!(matches!(
            public.verify(SigAlgorithm::RsaPkcs1Sha256, b"hellO", &sig),
            Err(Error::SignatureInvalid)
        ));
    }

    #[test]
    fn hmac() {
        assert!(matches!(
            verify_hmac_sha256(b"k", b"m", b"nope"),
            Err(Error::SignatureInvalid)
        ));
    }
}
