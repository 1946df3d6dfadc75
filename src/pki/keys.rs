//! Key custody. Every private-key operation goes through `SigningKey`, so a key held in software
//! and a key inside an HSM (PKCS#11) are interchangeable for issuing certificates, CRLs, time
//! stamps and signatures. Software keys are kept at rest as encrypted PKCS#8 (PBES2, AES-256)
//! under a key-encryption key from the configuration.

use super::{PkiError, PkiResult};
use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey, PointConversionForm};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use openssl::symm::Cipher;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256: the default (a signature costs ~15 µs).
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    #[serde(rename = "rsa2048")]
    Rsa2048,
    #[serde(rename = "rsa3072")]
    Rsa3072,
}

impl KeyAlgorithm {
    pub fn rcgen(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

/// A private key that can sign, wherever it lives.
pub trait SigningKey: Send + Sync {
    fn algorithm(&self) -> KeyAlgorithm;
    /// The SubjectPublicKeyInfo, DER.
    fn public_key_der(&self) -> &[u8];
    /// The raw public key as it appears inside the SubjectPublicKeyInfo bit string (the EC point,
    /// or the PKCS#1 RSAPublicKey).
    fn public_key_raw(&self) -> &[u8];
    /// Hashes `message` with SHA-256 and signs it: ECDSA (DER `Ecdsa-Sig-Value`) or RSA PKCS#1 v1.5.
    /// One private-key operation per call.
    fn sign(&self, message: &[u8]) -> PkiResult<Vec<u8>>;
}

/// A key held in process memory, loaded from or saved to encrypted PKCS#8.
pub struct SoftwareKey {
    pkey: PKey<Private>,
    algorithm: KeyAlgorithm,
    spki: Vec<u8>,
    raw: Vec<u8>,
}

impl std::fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl SoftwareKey {
    pub fn generate(algorithm: KeyAlgorithm) -> PkiResult<SoftwareKey> {
        let pkey = match algorithm {
            KeyAlgorithm::EcdsaP256 => {
                let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
                PKey::from_ec_key(EcKey::generate(&group)?)?
            }
            KeyAlgorithm::Rsa2048 => PKey::from_rsa(Rsa::generate(2048)?)?,
            KeyAlgorithm::Rsa3072 => PKey::from_rsa(Rsa::generate(3072)?)?,
        };
        Self::from_pkey(pkey)
    }

    pub fn from_pkey(pkey: PKey<Private>) -> PkiResult<SoftwareKey> {
        let (algorithm, raw) = if let Ok(ec) = pkey.ec_key() {
            if ec.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
                return Err(PkiError::Build("only the P-256 curve is supported".into()));
            }
            let mut ctx = BigNumContext::new()?;
            let raw = ec.public_key().to_bytes(
                ec.group(),
                PointConversionForm::UNCOMPRESSED,
                &mut ctx,
            )?;
            (KeyAlgorithm::EcdsaP256, raw)
        } else if let Ok(rsa) = pkey.rsa() {
            let alg = match rsa.size() * 8 {
                2048 => KeyAlgorithm::Rsa2048,
                3072 => KeyAlgorithm::Rsa3072,
                bits => return Err(PkiError::Build(format!("RSA-{bits} is not supported"))),
            };
            (alg, rsa.public_key_to_der_pkcs1()?)
        } else {
            return Err(PkiError::Build("unsupported key type".into()));
        };
        let spki = pkey.public_key_to_der()?;
        Ok(SoftwareKey {
            pkey,
            algorithm,
            spki,
            raw,
        })
    }

    /// The key as encrypted PKCS#8 PEM under `kek`.
    pub fn to_encrypted_pem(&self, kek: &[u8]) -> PkiResult<Vec<u8>> {
        Ok(self
            .pkey
            .private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), kek)?)
    }

    pub fn from_encrypted_pem(pem: &[u8], kek: &[u8]) -> PkiResult<SoftwareKey> {
        let pkey = PKey::private_key_from_pem_passphrase(pem, kek)?;
        Self::from_pkey(pkey)
    }

    pub fn save(&self, path: &Path, kek: &[u8]) -> PkiResult<()> {
        let pem = self.to_encrypted_pem(kek)?;
        write_private(path, &pem).map_err(|e| PkiError::KeyFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    pub fn load(path: &Path, kek: &[u8]) -> PkiResult<SoftwareKey> {
        let pem = std::fs::read(path).map_err(|e| PkiError::KeyFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_encrypted_pem(&pem, kek).map_err(|_| PkiError::KeyFile {
            path: path.display().to_string(),
            reason: "cannot decrypt (wrong key-encryption key?) or not a PKCS#8 key".into(),
        })
    }

    /// The OpenSSL handle, for code that needs it directly (tests, CMS with a software key).
    pub fn pkey(&self) -> &PKey<Private> {
        &self.pkey
    }
}

impl SigningKey for SoftwareKey {
    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }
    fn public_key_der(&self) -> &[u8] {
        &self.spki
    }
    fn public_key_raw(&self) -> &[u8] {
        &self.raw
    }
    fn sign(&self, message: &[u8]) -> PkiResult<Vec<u8>> {
        let mut signer = Signer::new(MessageDigest::sha256(), &self.pkey)?;
        signer.update(message)?;
        Ok(signer.sign_to_vec()?)
    }
}

/// Writes a private file readable by the owner only; refuses to overwrite.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

/// Adapts our key to rcgen, which builds the certificate and CRL structures.
pub(crate) struct RcgenKey<'a>(pub &'a dyn SigningKey);

impl rcgen::PublicKeyData for RcgenKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0.public_key_raw()
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.0.algorithm().rcgen()
    }
}

impl rcgen::SigningKey for RcgenKey<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.0.sign(msg).map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_round_trip_and_wrong_kek() {
        let k = SoftwareKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let pem = k.to_encrypted_pem(b"kek-1").unwrap();
        assert!(String::from_utf8_lossy(&pem).contains("ENCRYPTED PRIVATE KEY"));
        let back = SoftwareKey::from_encrypted_pem(&pem, b"kek-1").unwrap();
        assert_eq!(back.public_key_der(), k.public_key_der());
        assert!(SoftwareKey::from_encrypted_pem(&pem, b"kek-2").is_err());
    }
}
