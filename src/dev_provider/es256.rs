//! The stand-ins' signing key: ECDSA P-256 with SHA-256 (ES256), generated at start.
//!
//! ES256 rather than RS256: a P-256 key is a random scalar (about 3 ms in a debug build with
//! its public point, 0.3 ms in release), while a 2048-bit RSA key took 7 to 25 s to generate
//! in a debug build on two idle cores (50 s to 3 min with a compile beside it; 0.4 to 1.2 s in
//! release): the `rsa` crate's big-integer code unoptimised. `cargo run` would wait for it,
//! or every first sign-in would. The client
//! verifies whatever the issuer advertises, so the app's code path is the same apart from
//! the signature check itself.
//!
//! The signature is computed here with the `p256` crate, not by anything of the client's.

use openidconnect::{
    JsonWebKeyId, PrivateSigningKey, SigningError,
    core::{CoreJsonCurveType, CoreJsonWebKey, CoreJwsSigningAlgorithm},
};
use p256::ecdsa::{Signature, SigningKey, signature::Signer as _};
use sha2::{Digest, Sha256};

/// A P-256 key pair and its key id (the RFC 7638 thumbprint of its public key).
pub struct Es256Key {
    key: SigningKey,
    kid: JsonWebKeyId,
}

impl Es256Key {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Self {
        use rand::RngCore as _;
        loop {
            let mut scalar = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut scalar);
            // Zero or at least the group order is refused: odds below 2^-32, so try again.
            if let Ok(key) = SigningKey::from_slice(&scalar) {
                return Self::from_key(key);
            }
        }
    }

    fn from_key(key: SigningKey) -> Self {
        let (x, y) = coordinates(&key);
        let kid = JsonWebKeyId::new(thumbprint(&x, &y));
        Self { key, kid }
    }

    #[cfg(test)]
    pub fn kid(&self) -> &JsonWebKeyId {
        &self.kid
    }
}

impl PrivateSigningKey for Es256Key {
    type VerificationKey = CoreJsonWebKey;

    fn sign(
        &self,
        signature_alg: &CoreJwsSigningAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, SigningError> {
        match signature_alg {
            // JWS (RFC 7518, section 3.4) wants R and S as two 32-byte big-endian integers,
            // which is the fixed-size encoding, not DER.
            CoreJwsSigningAlgorithm::EcdsaP256Sha256 => {
                let signature: Signature = self.key.sign(message);
                Ok(signature.to_bytes().to_vec())
            }
            other => Err(SigningError::UnsupportedAlg(format!("{other:?}"))),
        }
    }

    fn as_verification_key(&self) -> CoreJsonWebKey {
        let (x, y) = coordinates(&self.key);
        CoreJsonWebKey::new_ec(x, y, CoreJsonCurveType::P256, Some(self.kid.clone()))
    }
}

/// The public point's affine coordinates, 32 bytes each.
fn coordinates(key: &SigningKey) -> (Vec<u8>, Vec<u8>) {
    let point = key.verifying_key().to_sec1_point(false);
    // An uncompressed point of a valid key always has both.
    let x = point.x().map(|x| x.to_vec()).unwrap_or_default();
    let y = point.y().map(|y| y.to_vec()).unwrap_or_default();
    (x, y)
}

/// RFC 7638: base64url(SHA-256) of the required members in lexicographic order, no spaces.
fn thumbprint(x: &[u8], y: &[u8]) -> String {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(x),
        URL_SAFE_NO_PAD.encode(y)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use openidconnect::{JsonWebKey as _, core::CoreJwsSigningAlgorithm as Alg};

    use super::*;

    #[test]
    fn signatures_verify_with_the_published_key_and_not_with_another() {
        let key = Es256Key::generate();
        let jwk = key.as_verification_key();
        let signature = key.sign(&Alg::EcdsaP256Sha256, b"header.payload");
        let signature = signature.unwrap_or_default();
        assert_eq!(signature.len(), 64, "R || S");
        assert!(
            jwk.verify_signature(&Alg::EcdsaP256Sha256, b"header.payload", &signature)
                .is_ok()
        );
        assert!(
            jwk.verify_signature(&Alg::EcdsaP256Sha256, b"header.payloaD", &signature)
                .is_err()
        );
        let other = Es256Key::generate().as_verification_key();
        assert!(
            other
                .verify_signature(&Alg::EcdsaP256Sha256, b"header.payload", &signature)
                .is_err()
        );
        assert!(matches!(
            key.sign(&Alg::RsaSsaPkcs1V15Sha256, b"x"),
            Err(SigningError::UnsupportedAlg(_))
        ));
    }

    #[test]
    fn the_key_id_is_the_rfc_7638_thumbprint() {
        // The P-256 key of RFC 7515, appendix A.3 (its `d`); the expected thumbprint was
        // computed apart, with Python's hashlib, from the `x` and `y` the RFC prints.
        let d = [
            142, 155, 16, 158, 113, 144, 152, 191, 152, 4, 135, 223, 31, 93, 119, 233, 203, 41, 96,
            110, 190, 210, 38, 59, 95, 87, 194, 19, 223, 132, 244, 178,
        ];
        let key = SigningKey::from_slice(&d).map(Es256Key::from_key);
        let kid = key.map(|k| k.kid().to_string()).unwrap_or_default();
        assert_eq!(kid, "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U");
    }
}
