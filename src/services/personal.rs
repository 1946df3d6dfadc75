//! Personal data at rest (docs/privacy.md): ID numbers are encrypted with AES-256-GCM bound to
//! the account they belong to, and found again through a keyed hash; certificates carry a
//! separate keyed pseudonym; one-time codes are kept only as a keyed hash. All keys derive from
//! one configured secret (`identity.personal_data_key`; development generates one).

use crate::config::{Config, Mode};
use anyhow::{Context, bail};
use base64::Engine as _;
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};

pub struct PersonalData {
    enc: [u8; 32],
    lookup: [u8; 32],
    pseudonym: [u8; 32],
    codes: [u8; 32],
    documents: [u8; 32],
}

/// The prefix of an encrypted stored document (version 1: AES-256-GCM, nonce ‖ ct ‖ tag).
const SEALED_DOCUMENT: &[u8; 4] = b"VWE1";

fn derive(material: &[u8], label: &str) -> [u8; 32] {
    let mut h = openssl::sha::Sha256::new();
    h.update(b"virtual-window/");
    h.update(label.as_bytes());
    h.update(b"/");
    h.update(material);
    h.finish()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> String {
    let compute = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let k = openssl::pkey::PKey::hmac(key)?;
        let mut s = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &k)?;
        for p in parts {
            s.update(&(p.len() as u64).to_be_bytes())?;
            s.update(p)?;
        }
        s.sign_to_vec()
    };
    hex(&compute().unwrap_or_default())
}

impl PersonalData {
    pub fn load(cfg: &Config) -> anyhow::Result<PersonalData> {
        let material = match &cfg.identity.personal_data_key {
            Some(k) => k.expose().as_bytes().to_vec(),
            None if cfg.mode == Mode::Production => {
                bail!("identity.personal_data_key is not configured")
            }
            None => {
                let path = cfg.keys_dir().join("dev-personal-data-key");
                if !path.exists() {
                    let mut bytes = [0u8; 32];
                    openssl::rand::rand_bytes(&mut bytes)?;
                    crate::pki::keys::write_private(&path, hex(&bytes).as_bytes())
                        .context("writing the development personal-data key")?;
                }
                std::fs::read(&path)?.trim_ascii().to_vec()
            }
        };
        Ok(PersonalData {
            enc: derive(&material, "id-number-encryption"),
            lookup: derive(&material, "id-number-lookup"),
            pseudonym: derive(&material, "certificate-pseudonym"),
            codes: derive(&material, "one-time-codes"),
            documents: derive(&material, "document-encryption"),
        })
    }

    /// `base64(nonce ‖ ciphertext ‖ tag)`; the account id is authenticated data, so a value
    /// copied to another row does not decrypt.
    pub fn encrypt(&self, user_id: &str, plain: &str) -> anyhow::Result<String> {
        let mut nonce = [0u8; 12];
        openssl::rand::rand_bytes(&mut nonce)?;
        let mut tag = [0u8; 16];
        let ct = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.enc,
            Some(&nonce),
            user_id.as_bytes(),
            plain.as_bytes(),
            &mut tag,
        )?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        out.extend_from_slice(&tag);
        Ok(base64::engine::general_purpose::STANDARD.encode(out))
    }

    pub fn decrypt(&self, user_id: &str, stored: &str) -> anyhow::Result<String> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(stored)
            .context("stored ID number is not base64")?;
        if raw.len() < 12 + 16 {
            bail!("stored ID number is too short");
        }
        let (nonce, rest) = raw.split_at(12);
        let (ct, tag) = rest.split_at(rest.len() - 16);
        let plain = decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.enc,
            Some(nonce),
            user_id.as_bytes(),
            ct,
            tag,
        )
        .context("the stored ID number does not decrypt (wrong key or tampered row)")?;
        Ok(String::from_utf8(plain)?)
    }

    /// A stored document encrypted (contracts and scans carry ID numbers); its digest is the
    /// authenticated data, so content moved to another digest's row does not decrypt.
    pub fn seal_document(&self, sha256: &str, plain: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; 12];
        openssl::rand::rand_bytes(&mut nonce)?;
        let mut tag = [0u8; 16];
        let ct = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.documents,
            Some(&nonce),
            sha256.as_bytes(),
            plain,
            &mut tag,
        )?;
        let mut out = Vec::with_capacity(4 + 12 + ct.len() + 16);
        out.extend_from_slice(SEALED_DOCUMENT);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// The stored document in the clear. Rows written before encryption (no prefix) are
    /// returned as they are.
    pub fn open_document(&self, sha256: &str, stored: Vec<u8>) -> anyhow::Result<Vec<u8>> {
        let Some(rest) = stored.strip_prefix(SEALED_DOCUMENT) else {
            return Ok(stored);
        };
        if rest.len() < 12 + 16 {
            bail!("stored document is too short");
        }
        let (nonce, rest) = rest.split_at(12);
        let (ct, tag) = rest.split_at(rest.len() - 16);
        decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.documents,
            Some(nonce),
            sha256.as_bytes(),
            ct,
            tag,
        )
        .context("the stored document does not decrypt (wrong key or tampered row)")
    }

    /// The keyed hash an ID number is looked up by.
    pub fn lookup_hash(&self, id_number: &str) -> String {
        hmac(&self.lookup, &[id_number.as_bytes()])
    }

    /// The pseudonym written into a person's certificates instead of the ID number.
    pub fn pseudonym(&self, id_number: &str) -> String {
        format!(
            "PSN-{}",
            &hmac(&self.pseudonym, &[id_number.as_bytes()])[..32]
        )
    }

    /// What is stored of a one-time code.
    pub fn code_hash(&self, code_id: &str, code: &str) -> String {
        hmac(&self.codes, &[code_id.as_bytes(), code.as_bytes()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> PersonalData {
        let m = b"a test key of at least thirty-two characters";
        PersonalData {
            enc: derive(m, "id-number-encryption"),
            lookup: derive(m, "id-number-lookup"),
            pseudonym: derive(m, "certificate-pseudonym"),
            codes: derive(m, "one-time-codes"),
            documents: derive(m, "document-encryption"),
        }
    }

    #[test]
    fn documents_are_sealed_under_their_digest() {
        let k = keys();
        let pdf = b"%PDF-1.7 contract of 44190019900101001X".to_vec();
        let sealed = k.seal_document("aa", &pdf).unwrap();
        assert!(sealed.starts_with(SEALED_DOCUMENT));
        assert!(!sealed.windows(18).any(|w| w == b"44190019900101001X"));
        assert_eq!(k.open_document("aa", sealed.clone()).unwrap(), pdf);
        assert!(
            k.open_document("bb", sealed.clone()).is_err(),
            "bound to the digest"
        );
        let mut tampered = sealed;
        let last = tampered.len() - 20;
        tampered[last] ^= 1;
        assert!(k.open_document("aa", tampered).is_err());
        assert!(k.open_document("aa", b"VWE1short".to_vec()).is_err());
        // Rows stored before encryption are read as they are.
        assert_eq!(k.open_document("aa", pdf.clone()).unwrap(), pdf);
    }

    #[test]
    fn encryption_is_bound_to_the_account() {
        let k = keys();
        let e = k.encrypt("user-1", "44190019900101001X").unwrap();
        assert!(!e.contains("4419"));
        assert_eq!(k.decrypt("user-1", &e).unwrap(), "44190019900101001X");
        assert!(k.decrypt("user-2", &e).is_err());
        assert_ne!(
            e,
            k.encrypt("user-1", "44190019900101001X").unwrap(),
            "fresh nonce"
        );
        assert_eq!(k.lookup_hash("44190019900101001X").len(), 64);
        assert_ne!(k.lookup_hash("x"), k.pseudonym("x"));
    }
}
