//! Keys inside a PKCS#11 token (an HSM; SoftHSM2 in the tests). The private key is generated on
//! the token as sensitive and non-extractable and never leaves it: signing sends the digest in and
//! takes the signature out, one operation per signature.

use super::der::{self, tag};
use super::keys::{KeyAlgorithm, SigningKey};
use super::{PkiError, PkiResult};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// DER of the P-256 curve OID, the EC_PARAMS of our keys.
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// A PKCS#11 library may be initialised once per process; every key shares the context.
static CONTEXT: OnceLock<(PathBuf, Pkcs11)> = OnceLock::new();

fn err(e: cryptoki::error::Error) -> PkiError {
    PkiError::Build(format!("PKCS#11: {e}"))
}

fn context(module: &Path) -> PkiResult<&'static Pkcs11> {
    if let Some((path, ctx)) = CONTEXT.get() {
        if path != module {
            return Err(PkiError::Build(format!(
                "PKCS#11 module {} is already loaded; one module per process",
                path.display()
            )));
        }
        return Ok(ctx);
    }
    let ctx = Pkcs11::new(module).map_err(err)?;
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(err)?;
    let _ = CONTEXT.set((module.to_path_buf(), ctx));
    Ok(&CONTEXT.get().expect("just set").1)
}

/// Where a key lives: the module, the token (by label) and the user PIN.
#[derive(Clone)]
pub struct TokenRef {
    pub module: PathBuf,
    pub token_label: String,
    pub pin: String,
}

impl std::fmt::Debug for TokenRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRef")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("pin", &"[redacted]")
            .finish()
    }
}

/// Opens a logged-in session on the token, trying again a few times: SoftHSM2's file store
/// answers `CKR_GENERAL_ERROR` to a process reading the token while another process rewrites
/// it (two instances starting at once on one token, seen in the opening-day run), and a
/// hardware token may be briefly busy the same way.
fn open_session(token: &TokenRef) -> PkiResult<Session> {
    let mut attempt = 0;
    loop {
        match try_open_session(token) {
            Ok(s) => return Ok(s),
            Err(e) if attempt < 5 => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "opening a session on the key token; trying again");
                std::thread::sleep(std::time::Duration::from_millis(40 * attempt));
            }
            Err(e) => return Err(e),
        }
    }
}

fn try_open_session(token: &TokenRef) -> PkiResult<Session> {
    let ctx = context(&token.module)?;
    let slot = ctx
        .get_slots_with_initialized_token()
        .map_err(err)?
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .map(|i| i.label().trim_end() == token.token_label)
                .unwrap_or(false)
        })
        .ok_or_else(|| PkiError::Build(format!("no token labelled `{}`", token.token_label)))?;
    let session = ctx.open_rw_session(slot).map_err(err)?;
    match session.login(
        UserType::User,
        Some(&AuthPin::new(token.pin.clone().into())),
    ) {
        Ok(()) => {}
        // Login state is per application and token: another key already logged in.
        Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => return Err(err(e)),
    }
    Ok(session)
}

pub struct Pkcs11Key {
    session: Mutex<Session>,
    private: ObjectHandle,
    algorithm: KeyAlgorithm,
    spki: Vec<u8>,
    raw: Vec<u8>,
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Key {
    /// Generates a key pair on the token; the private key is sensitive and non-extractable.
    pub fn generate(
        token: &TokenRef,
        label: &str,
        algorithm: KeyAlgorithm,
    ) -> PkiResult<Pkcs11Key> {
        let session = open_session(token)?;
        let id = label.as_bytes().to_vec();
        let common = |private: bool| {
            vec![
                Attribute::Token(true),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Id(id.clone()),
                Attribute::Private(private),
            ]
        };
        let mut public = common(false);
        public.push(Attribute::Verify(true));
        let mut private = common(true);
        private.extend([
            Attribute::Sign(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
        ]);
        let mechanism = match algorithm {
            KeyAlgorithm::EcdsaP256 => {
                public.push(Attribute::EcParams(P256_PARAMS.to_vec()));
                Mechanism::EccKeyPairGen
            }
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 => {
                let bits = if algorithm == KeyAlgorithm::Rsa2048 {
                    2048
                } else {
                    3072
                };
                public.push(Attribute::ModulusBits(bits.into()));
                public.push(Attribute::PublicExponent(vec![1, 0, 1]));
                Mechanism::RsaPkcsKeyPairGen
            }
        };
        let (pub_handle, priv_handle) = session
            .generate_key_pair(&mechanism, &public, &private)
            .map_err(err)?;
        Self::from_handles(session, pub_handle, priv_handle, algorithm)
    }

    /// Opens an existing key pair by label.
    pub fn open(token: &TokenRef, label: &str) -> PkiResult<Pkcs11Key> {
        let session = open_session(token)?;
        let find = |class| {
            session
                .find_objects(&[
                    Attribute::Class(class),
                    Attribute::Label(label.as_bytes().to_vec()),
                ])
                .map_err(err)?
                .into_iter()
                .next()
                .ok_or_else(|| PkiError::Build(format!("no key labelled `{label}` on the token")))
        };
        let private = find(ObjectClass::PRIVATE_KEY)?;
        let public = find(ObjectClass::PUBLIC_KEY)?;
        let key_type = session
            .get_attributes(
                private,
                &[AttributeType::KeyType, AttributeType::ModulusBits],
            )
            .map_err(err)?;
        let mut algorithm = KeyAlgorithm::EcdsaP256;
        for a in &key_type {
            if let Attribute::KeyType(KeyType::RSA) = a {
                algorithm = KeyAlgorithm::Rsa2048;
            }
        }
        if algorithm != KeyAlgorithm::EcdsaP256 {
            let bits = session
                .get_attributes(public, &[AttributeType::ModulusBits])
                .map_err(err)?;
            if let Some(Attribute::ModulusBits(b)) = bits.first()
                && u64::from(*b) == 3072
            {
                algorithm = KeyAlgorithm::Rsa3072;
            }
        }
        Self::from_handles(session, public, private, algorithm)
    }

    fn from_handles(
        session: Session,
        public: ObjectHandle,
        private: ObjectHandle,
        algorithm: KeyAlgorithm,
    ) -> PkiResult<Pkcs11Key> {
        let (spki, raw) = match algorithm {
            KeyAlgorithm::EcdsaP256 => {
                let attrs = session
                    .get_attributes(public, &[AttributeType::EcPoint])
                    .map_err(err)?;
                let Some(Attribute::EcPoint(point)) = attrs.into_iter().next() else {
                    return Err(PkiError::Build("PKCS#11: no EC point".into()));
                };
                // CKA_EC_POINT is the point wrapped in an OCTET STRING.
                let raw = der::Reader::new(&point)
                    .read_tag(tag::OCTET_STRING)
                    .map(|t| t.content.to_vec())
                    .unwrap_or(point);
                let group =
                    openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)?;
                let mut ctx = openssl::bn::BigNumContext::new()?;
                let pt = openssl::ec::EcPoint::from_bytes(&group, &raw, &mut ctx)?;
                let ec = openssl::ec::EcKey::from_public_key(&group, &pt)?;
                (
                    openssl::pkey::PKey::from_ec_key(ec)?.public_key_to_der()?,
                    raw,
                )
            }
            _ => {
                let attrs = session
                    .get_attributes(
                        public,
                        &[AttributeType::Modulus, AttributeType::PublicExponent],
                    )
                    .map_err(err)?;
                let (mut n, mut e) = (None, None);
                for a in attrs {
                    match a {
                        Attribute::Modulus(v) => n = Some(v),
                        Attribute::PublicExponent(v) => e = Some(v),
                        _ => {}
                    }
                }
                let rsa = openssl::rsa::Rsa::from_public_components(
                    openssl::bn::BigNum::from_slice(
                        &n.ok_or_else(|| PkiError::Build("no modulus".into()))?,
                    )?,
                    openssl::bn::BigNum::from_slice(
                        &e.ok_or_else(|| PkiError::Build("no exponent".into()))?,
                    )?,
                )?;
                let raw = rsa.public_key_to_der_pkcs1()?;
                (
                    openssl::pkey::PKey::from_rsa(rsa)?.public_key_to_der()?,
                    raw,
                )
            }
        };
        Ok(Pkcs11Key {
            session: Mutex::new(session),
            private,
            algorithm,
            spki,
            raw,
        })
    }

    /// Whether the token reports the private key as sensitive and never extractable.
    pub fn is_protected(&self) -> PkiResult<bool> {
        let session = self
            .session
            .lock()
            .map_err(|_| PkiError::Build("session lock".into()))?;
        let attrs = session
            .get_attributes(
                self.private,
                &[AttributeType::Sensitive, AttributeType::Extractable],
            )
            .map_err(err)?;
        let mut sensitive = false;
        let mut extractable = true;
        for a in attrs {
            match a {
                Attribute::Sensitive(v) => sensitive = v,
                Attribute::Extractable(v) => extractable = v,
                _ => {}
            }
        }
        Ok(sensitive && !extractable)
    }
}

impl SigningKey for Pkcs11Key {
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
        let session = self
            .session
            .lock()
            .map_err(|_| PkiError::Build("session lock".into()))?;
        match self.algorithm {
            KeyAlgorithm::EcdsaP256 => {
                let digest = openssl::sha::sha256(message);
                let rs = session
                    .sign(&Mechanism::Ecdsa, self.private, &digest)
                    .map_err(err)?;
                if rs.len() != 64 {
                    return Err(PkiError::Build(
                        "PKCS#11: unexpected ECDSA signature size".into(),
                    ));
                }
                // The token returns r‖s; X.509 and CMS want the DER Ecdsa-Sig-Value.
                Ok(der::sequence(&[
                    der::integer_unsigned(&rs[..32]),
                    der::integer_unsigned(&rs[32..]),
                ]))
            }
            _ => session
                .sign(&Mechanism::Sha256RsaPkcs, self.private, message)
                .map_err(err),
        }
    }
}
