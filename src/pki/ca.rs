//! Certificate authorities: the hierarchy (root → people, organisations, timestamping), issuing
//! certificates by profile, and CRLs. Every signature is made through `SigningKey`, so the CA keys
//! may live in software or in an HSM.

use super::der;
use super::keys::{KeyAlgorithm, RcgenKey, SigningKey, SoftwareKey};
pub use super::names::Subject;
use super::profile::{ExtendedKeyUsage, KeyUsage, Profile, ProfileKind, Profiles};
use super::{PkiError, PkiResult};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
    CustomExtension, IsCa, Issuer, KeyIdMethod, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SerialNumber,
};
use std::path::Path;
use std::sync::Arc;
use time::OffsetDateTime;

/// The issuing authorities of the hierarchy, by profile name.
pub const ISSUING_CAS: [&str; 3] = ["people-ca", "organisations-ca", "timestamping-ca"];

/// Operator name on the CA certificates.
pub const OPERATOR: &str = "虚拟窗口运营单位";

/// A CA: its certificate and its key.
#[derive(Clone)]
pub struct Authority {
    pub name: String,
    pub cert_der: Vec<u8>,
    pub key: Arc<dyn SigningKey>,
    /// The subject the certificate was made with; issued certificates name it as their issuer.
    pub subject: Subject,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Authority {
    fn issuer(&self) -> PkiResult<Issuer<'static, RcgenKey<'_>>> {
        let mut params = CertificateParams::default();
        params.distinguished_name = self.subject.distinguished_name()?;
        params.key_identifier_method = KeyIdMethod::PreSpecified(key_id(self.key.as_ref()));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ok(Issuer::new(params, RcgenKey(self.key.as_ref())))
    }

    fn unit(profiles: &Profiles, name: &str) -> PkiResult<Subject> {
        Ok(Subject::Unit {
            common_name: profiles
                .get(name)?
                .subject_cn
                .clone()
                .unwrap_or_else(|| name.into()),
            organisation: OPERATOR.into(),
        })
    }

    pub fn cert_pem(&self) -> String {
        pem("CERTIFICATE", &self.cert_der)
    }
}

/// A certificate just issued.
#[derive(Clone, Debug)]
pub struct IssuedCertificate {
    pub der: Vec<u8>,
    /// Hex, lower case, as in the certificate (no leading zero byte).
    pub serial: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub profile: String,
    pub issuer: String,
}

impl IssuedCertificate {
    pub fn pem(&self) -> String {
        pem("CERTIFICATE", &self.der)
    }
}

pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The public half of a key, for certifying it.
struct PublicKey<'a>(&'a dyn SigningKey);

impl rcgen::PublicKeyData for PublicKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0.public_key_raw()
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.0.algorithm().rcgen()
    }
}

/// A positive random 128-bit serial number (RFC 5280 allows up to 20 octets; unpredictable
/// serials defeat chosen-prefix attacks).
fn random_serial() -> PkiResult<Vec<u8>> {
    let mut s = [0u8; 16];
    openssl::rand::rand_bytes(&mut s)?;
    s[0] = (s[0] & 0x7f) | 0x40;
    Ok(s.to_vec())
}

/// RFC 7093 method 1: the leftmost 160 bits of the SHA-256 of the subjectPublicKey bits.
fn key_id(key: &dyn SigningKey) -> Vec<u8> {
    openssl::sha::sha256(key.public_key_raw())[..20].to_vec()
}

fn params_for(
    profile: &Profile,
    subject: &Subject,
    key: &dyn SigningKey,
    now: OffsetDateTime,
    crl_url: Option<&str>,
) -> PkiResult<(CertificateParams, Vec<u8>)> {
    let mut p = CertificateParams::default();
    let serial = random_serial()?;
    p.serial_number = Some(SerialNumber::from_slice(&serial));
    // A minute of back-dating tolerates clock skew between the service and relying parties.
    p.not_before = now - time::Duration::minutes(1);
    p.not_after = now + profile.validity();
    p.distinguished_name = subject.distinguished_name()?;
    p.key_identifier_method = KeyIdMethod::PreSpecified(key_id(key));
    p.use_authority_key_identifier_extension = profile.kind != ProfileKind::Root;
    p.is_ca = match profile.kind {
        ProfileKind::Root | ProfileKind::IssuingCa => match profile.path_len {
            Some(n) => IsCa::Ca(BasicConstraints::Constrained(n)),
            None => IsCa::Ca(BasicConstraints::Unconstrained),
        },
        ProfileKind::EndEntity => IsCa::ExplicitNoCa,
    };
    p.key_usages = profile
        .key_usage
        .iter()
        .map(|u| match u {
            KeyUsage::DigitalSignature => KeyUsagePurpose::DigitalSignature,
            KeyUsage::ContentCommitment => KeyUsagePurpose::ContentCommitment,
            KeyUsage::KeyEncipherment => KeyUsagePurpose::KeyEncipherment,
            KeyUsage::KeyCertSign => KeyUsagePurpose::KeyCertSign,
            KeyUsage::CrlSign => KeyUsagePurpose::CrlSign,
        })
        .collect();
    if !profile.extended_key_usage.is_empty() {
        // Written by hand so that criticality follows the profile (RFC 3161 needs it critical).
        let oids: Vec<Vec<u8>> = profile
            .extended_key_usage
            .iter()
            .map(|e| match e {
                ExtendedKeyUsage::TimeStamping => {
                    der::oid("1.3.6.1.5.5.7.3.8").expect("literal OID")
                }
            })
            .collect();
        let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 37], der::sequence(&oids));
        ext.set_criticality(profile.extended_key_usage_critical);
        p.custom_extensions.push(ext);
    }
    if !profile.policies.is_empty() {
        let infos: Vec<Vec<u8>> = profile
            .policies
            .iter()
            .map(|o| {
                der::oid(o)
                    .map(|oid| der::sequence(&[oid]))
                    .ok_or_else(|| PkiError::Profile(format!("bad policy OID `{o}`")))
            })
            .collect::<PkiResult<_>>()?;
        p.custom_extensions.push(CustomExtension::from_oid_content(
            &[2, 5, 29, 32],
            der::sequence(&infos),
        ));
    }
    if let Some(url) = crl_url {
        p.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![url.to_owned()],
        }];
    }
    Ok((p, serial))
}

fn serial_hex(serial: &[u8]) -> String {
    super::names::hex(serial)
}

/// Issues a certificate of `profile_name` for `subject_key` (only its public half is used),
/// signed by `ca`. `crl_base` is the URL under which each CA's CRL is published
/// (`{crl_base}/{ca-name}.crl`).
pub fn issue(
    profiles: &Profiles,
    ca: &Authority,
    profile_name: &str,
    subject: &Subject,
    subject_key: &dyn SigningKey,
    now: OffsetDateTime,
    crl_base: &str,
) -> PkiResult<IssuedCertificate> {
    let profile = profiles.get(profile_name)?;
    if profile.issuer.as_deref() != Some(ca.name.as_str()) {
        return Err(PkiError::Build(format!(
            "profile `{profile_name}` is issued by `{}`, not `{}`",
            profile.issuer.as_deref().unwrap_or("-"),
            ca.name
        )));
    }
    let crl_url = format!("{crl_base}/{}.crl", ca.name);
    let (params, serial) = params_for(profile, subject, subject_key, now, Some(&crl_url))?;
    let cert = params.signed_by(&PublicKey(subject_key), &ca.issuer()?)?;
    Ok(IssuedCertificate {
        der: cert.der().to_vec(),
        serial: serial_hex(&serial),
        not_before: params.not_before,
        not_after: params.not_after,
        profile: profile_name.to_owned(),
        issuer: ca.name.clone(),
    })
}

/// The whole hierarchy of the service.
#[derive(Clone, Debug)]
pub struct Hierarchy {
    pub root: Authority,
    pub issuing: Vec<Authority>,
}

impl Hierarchy {
    /// Creates a new root and its issuing CAs with fresh software keys.
    pub fn create(
        profiles: &Profiles,
        algorithm: KeyAlgorithm,
        now: OffsetDateTime,
        crl_base: &str,
    ) -> PkiResult<(Hierarchy, Vec<(String, SoftwareKey)>)> {
        let root_profile = profiles.get("root")?;
        let root_key = SoftwareKey::generate(algorithm)?;
        let root_subject = Authority::unit(profiles, "root")?;
        let (params, _) = params_for(root_profile, &root_subject, &root_key, now, None)?;
        let root_cert = params.self_signed(&RcgenKey(&root_key))?;
        let mut keys = Vec::new();
        let root_key = Arc::new(root_key);
        let root = Authority {
            name: "root".into(),
            cert_der: root_cert.der().to_vec(),
            key: root_key.clone(),
            subject: root_subject,
        };
        let mut issuing = Vec::new();
        for name in ISSUING_CAS {
            let profile = profiles.get(name)?;
            let key = SoftwareKey::generate(algorithm)?;
            let subject = Authority::unit(profiles, name)?;
            let crl_url = format!("{crl_base}/root.crl");
            let (params, _) = params_for(profile, &subject, &key, now, Some(&crl_url))?;
            let cert = params.signed_by(&PublicKey(&key), &root.issuer()?)?;
            let der = cert.der().to_vec();
            let pem = key.to_encrypted_pem(b"")?;
            // Keep an owned copy to hand back for saving; the authority holds the live key.
            keys.push((name.to_owned(), SoftwareKey::from_encrypted_pem(&pem, b"")?));
            issuing.push(Authority {
                name: name.into(),
                cert_der: der,
                key: Arc::new(key),
                subject,
            });
        }
        let root_copy = SoftwareKey::from_pkey(openssl::pkey::PKey::private_key_from_der(
            &root_key.pkey().private_key_to_der()?,
        )?)?;
        keys.insert(0, ("root".into(), root_copy));
        Ok((Hierarchy { root, issuing }, keys))
    }

    pub fn authority(&self, name: &str) -> PkiResult<&Authority> {
        if name == "root" {
            return Ok(&self.root);
        }
        self.issuing
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| PkiError::UnknownProfile(name.to_owned()))
    }

    /// Writes every certificate (PEM) and every key (encrypted PKCS#8 under `kek`) into `dir`.
    pub fn save(&self, dir: &Path, keys: &[(String, SoftwareKey)], kek: &[u8]) -> PkiResult<()> {
        std::fs::create_dir_all(dir)?;
        for a in std::iter::once(&self.root).chain(self.issuing.iter()) {
            std::fs::write(dir.join(format!("{}.pem", a.name)), a.cert_pem())?;
        }
        for (name, key) in keys {
            key.save(&dir.join(format!("{name}.key.pem")), kek)?;
        }
        Ok(())
    }

    /// Loads a hierarchy written by `save`.
    pub fn load(dir: &Path, kek: &[u8], profiles: &Profiles) -> PkiResult<Hierarchy> {
        let load = |name: &str| -> PkiResult<Authority> {
            let pem = std::fs::read(dir.join(format!("{name}.pem")))?;
            let cert = openssl::x509::X509::from_pem(&pem)?;
            let key = SoftwareKey::load(&dir.join(format!("{name}.key.pem")), kek)?;
            Authority::checked(profiles, name, cert.to_der()?, Arc::new(key))
        };
        Ok(Hierarchy {
            root: load("root")?,
            issuing: ISSUING_CAS
                .iter()
                .map(|n| load(n))
                .collect::<PkiResult<_>>()?,
        })
    }

    /// Creates a new root and its issuing CAs with keys from `make_key` (named `root`,
    /// `people-ca`, …): software keys, or keys generated inside a token.
    pub fn create_with(
        profiles: &Profiles,
        now: OffsetDateTime,
        crl_base: &str,
        mut make_key: impl FnMut(&str) -> PkiResult<Arc<dyn SigningKey>>,
    ) -> PkiResult<Hierarchy> {
        let root_profile = profiles.get("root")?;
        let root_key = make_key("root")?;
        let root_subject = Authority::unit(profiles, "root")?;
        let (params, _) = params_for(root_profile, &root_subject, root_key.as_ref(), now, None)?;
        let root_cert = params.self_signed(&RcgenKey(root_key.as_ref()))?;
        let root = Authority {
            name: "root".into(),
            cert_der: root_cert.der().to_vec(),
            key: root_key,
            subject: root_subject,
        };
        let mut issuing = Vec::new();
        for name in ISSUING_CAS {
            let profile = profiles.get(name)?;
            let key = make_key(name)?;
            let subject = Authority::unit(profiles, name)?;
            let crl_url = format!("{crl_base}/root.crl");
            let (params, _) = params_for(profile, &subject, key.as_ref(), now, Some(&crl_url))?;
            let cert = params.signed_by(&PublicKey(key.as_ref()), &root.issuer()?)?;
            issuing.push(Authority {
                name: name.into(),
                cert_der: cert.der().to_vec(),
                key,
                subject,
            });
        }
        Ok(Hierarchy { root, issuing })
    }

    /// The names of the hierarchy's authorities, the root first.
    pub fn names() -> impl Iterator<Item = &'static str> {
        std::iter::once("root").chain(ISSUING_CAS.iter().copied())
    }
}

impl Authority {
    /// An authority from its stored certificate and key, refused when the key is not the
    /// certificate's or the certificate's subject no longer matches the profile.
    pub fn checked(
        profiles: &Profiles,
        name: &str,
        cert_der: Vec<u8>,
        key: Arc<dyn SigningKey>,
    ) -> PkiResult<Authority> {
        let cert = openssl::x509::X509::from_der(&cert_der)?;
        if key.public_key_der() != cert.public_key()?.public_key_to_der()?.as_slice() {
            return Err(PkiError::Build(format!(
                "{name}: key does not match certificate"
            )));
        }
        let subject = Authority::unit(profiles, name)?;
        let expected = subject.distinguished_name()?;
        // The issuer name written into new certificates must be byte-identical to the CA's
        // subject, or chains break; a profile edit after `pki init` would do that.
        let mut probe = CertificateParams::default();
        probe.distinguished_name = expected;
        probe.serial_number = Some(SerialNumber::from(1u64));
        let probe_key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256)?;
        let probe_cert = probe.self_signed(&RcgenKey(&probe_key))?;
        let probe_x509 = openssl::x509::X509::from_der(probe_cert.der())?;
        if probe_x509.subject_name().to_der()? != cert.subject_name().to_der()? {
            return Err(PkiError::Build(format!(
                "{name}: the certificate's subject no longer matches certs/profiles.toml"
            )));
        }
        Ok(Authority {
            name: name.to_owned(),
            cert_der,
            key,
            subject,
        })
    }
}

/// One revoked certificate for a CRL.
#[derive(Clone, Debug)]
pub struct Revoked {
    pub serial_hex: String,
    pub revoked_at: OffsetDateTime,
    pub reason: Option<RevocationReason>,
}

/// A CRL of `ca` listing `revoked`, valid for `next_update_after`.
pub fn crl(
    ca: &Authority,
    revoked: &[Revoked],
    crl_number: u64,
    now: OffsetDateTime,
    next_update_after: time::Duration,
) -> PkiResult<Vec<u8>> {
    let mut revoked_certs = Vec::new();
    for r in revoked {
        let serial = decode_hex(&r.serial_hex)
            .ok_or_else(|| PkiError::Build(format!("bad serial `{}`", r.serial_hex)))?;
        revoked_certs.push(RevokedCertParams {
            serial_number: SerialNumber::from_slice(&serial),
            revocation_time: r.revoked_at,
            reason_code: r.reason,
            invalidity_date: None,
        });
    }
    let params = CertificateRevocationListParams {
        this_update: now,
        next_update: now + next_update_after,
        crl_number: SerialNumber::from(crl_number),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::PreSpecified(key_id(ca.key.as_ref())),
    };
    Ok(params.signed_by(&ca.issuer()?)?.der().to_vec())
}

pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}
