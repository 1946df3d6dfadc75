//! The service side of the PKI: loading (or, in development, creating) the CA hierarchy and the
//! service's own units (the time-stamping unit and the registration centre's seal), the
//! certificate request log in the database, revocation, and the published CA certificates and
//! CRLs.

use super::{Caller, Error, Services};
use crate::audit;
use crate::config::KeyCustody;
use crate::config::{Config, Mode};
use crate::domain::Role;
use crate::pki::ca::{self, IssuedCertificate, Revoked, Subject};
use crate::pki::{Hierarchy, Profiles, SigningKey, SoftwareKey};
use crate::store::{CertificateRecord, NewAuditEvent};
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// The service's own end-entity units, created with the hierarchy.
pub const UNITS: [(&str, &str); 2] = [
    ("tsa", "timestamping-ca"),
    ("centre-seal", "organisations-ca"),
];

/// A CRL this instance made: the digest of its revocations, when, and the DER.
type MadeCrl = ([u8; 32], OffsetDateTime, Arc<Vec<u8>>);

pub struct PkiState {
    pub profiles: Profiles,
    pub hierarchy: Hierarchy,
    /// The 国密 (SM2) hierarchy beside it (services::gm).
    pub gm: crate::pki::gm::GmHierarchy,
    /// Where the public CA certificates are also written for tools (`root.pem` for `verify`);
    /// nothing is read back from there.
    pub dir: PathBuf,
    pub crl_base: String,
    pub crl_validity: time::Duration,
    crl_reuse: time::Duration,
    /// The CRLs this instance made, by CA: (the revocations' digest, made at, DER).
    crls: std::sync::Mutex<std::collections::HashMap<String, MadeCrl>>,
    custody: Custody,
    /// The time-stamping unit as the signing paths use it.
    tsa: std::sync::OnceLock<TsaUnit>,
    /// Units and seals loaded from the database (certificate and key), by name.
    units: std::sync::RwLock<std::collections::HashMap<String, Arc<Unit>>>,
    /// Serialises first-use issuance of an organisation's seal within this instance (across
    /// instances the database keeps the first one stored).
    pub issuing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for PkiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PkiState")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// A certificate of this installation with its private key, wherever that lives.
pub struct Unit {
    pub cert: Vec<u8>,
    pub key: Arc<dyn SigningKey>,
}

/// Where long-lived private keys are made and kept (`pki.custody`).
enum Custody {
    /// Encrypted PKCS#8 in the database, under the key-encryption key.
    Software { kek: Vec<u8> },
    /// Non-extractable keys on a PKCS#11 token shared by every instance; the database keeps
    /// their labels.
    Pkcs11 {
        token: crate::pki::pkcs11::TokenRef,
        kek: Vec<u8>,
    },
}

impl Custody {
    fn kek(&self) -> &[u8] {
        match self {
            Custody::Software { kek } | Custody::Pkcs11 { kek, .. } => kek,
        }
    }

    /// A new key for `name`, and how to find it again.
    fn generate(
        &self,
        name: &str,
        algorithm: crate::pki::KeyAlgorithm,
    ) -> anyhow::Result<(Arc<dyn SigningKey>, StoredKey)> {
        Ok(match self {
            Custody::Software { kek } => {
                let key = SoftwareKey::generate(algorithm)?;
                let pem = key.to_encrypted_pem(kek)?;
                (Arc::new(key), StoredKey::Software(pem))
            }
            Custody::Pkcs11 { token, .. } => {
                // A fresh label each time: a token may hold keys of an earlier installation.
                let mut rnd = [0u8; 6];
                openssl::rand::rand_bytes(&mut rnd)?;
                let label = format!("vw-{name}-{}", audit::hex(&rnd));
                let key = crate::pki::pkcs11::Pkcs11Key::generate(token, &label, algorithm)
                    .with_context(|| format!("generating {name}'s key on the token"))?;
                (Arc::new(key), StoredKey::Pkcs11(label))
            }
        })
    }

    /// The key a stored object refers to.
    fn open(&self, o: &crate::store::PkiObject) -> anyhow::Result<Arc<dyn SigningKey>> {
        match o.key_kind.as_str() {
            "software" => {
                let pem = o
                    .key_pem
                    .as_deref()
                    .context("a software key without its PEM")?;
                Ok(Arc::new(SoftwareKey::from_encrypted_pem(pem, self.kek())?))
            }
            "pkcs11" => {
                let Custody::Pkcs11 { token, .. } = self else {
                    bail!(
                        "{} is kept on a PKCS#11 token: configure pki.pkcs11",
                        o.name
                    );
                };
                let label = o
                    .key_label
                    .as_deref()
                    .context("a token key without its label")?;
                Ok(Arc::new(crate::pki::pkcs11::Pkcs11Key::open(token, label)?))
            }
            other => bail!("{}: unknown key kind `{other}`", o.name),
        }
    }
}

enum StoredKey {
    Software(Vec<u8>),
    Pkcs11(String),
}

fn object(name: &str, cert_der: &[u8], key: StoredKey) -> crate::store::PkiObject {
    let (kind, label, pem) = match key {
        StoredKey::Software(pem) => ("software", None, Some(pem)),
        StoredKey::Pkcs11(label) => ("pkcs11", Some(label), None),
    };
    crate::store::PkiObject {
        name: name.to_owned(),
        cert_der: cert_der.to_vec(),
        key_kind: kind.into(),
        key_label: label,
        key_pem: pem,
        created_at: OffsetDateTime::now_utc(),
    }
}

/// SHA-256 of the root certificate, as people compare it out of band.
pub fn fingerprint(der: &[u8]) -> String {
    openssl::sha::sha256(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn key_encryption_key(cfg: &Config) -> anyhow::Result<Vec<u8>> {
    if let Some(k) = &cfg.pki.key_encryption_key {
        return Ok(k.expose().as_bytes().to_vec());
    }
    if cfg.mode == Mode::Production {
        bail!("pki.key_encryption_key is not configured");
    }
    let path = cfg.keys_dir().join("dev-pki-kek");
    if !path.exists() {
        let mut bytes = [0u8; 32];
        openssl::rand::rand_bytes(&mut bytes)?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        crate::pki::keys::write_private(&path, hex.as_bytes())?;
    }
    Ok(std::fs::read(&path)?.trim_ascii().to_vec())
}

fn custody(cfg: &Config) -> anyhow::Result<Custody> {
    let kek = key_encryption_key(cfg)?;
    Ok(match cfg.pki.custody {
        KeyCustody::Software => Custody::Software { kek },
        KeyCustody::Pkcs11 => {
            let p = cfg
                .pki
                .pkcs11
                .as_ref()
                .context("pki.custody is pkcs11 but pki.pkcs11 is not configured")?;
            Custody::Pkcs11 {
                token: crate::pki::pkcs11::TokenRef {
                    module: p.module.clone(),
                    token_label: p.token_label.clone(),
                    pin: p.pin.expose().to_owned(),
                },
                kek,
            }
        }
    })
}

impl PkiState {
    /// Opens the hierarchy stored in the database; a hierarchy kept as files in the PKI
    /// directory by an earlier version is moved into the database (its keys stay software
    /// keys); with `create` and nothing stored, a new hierarchy is made under the configured
    /// custody. Returns whether it was created.
    pub async fn open(
        cfg: &Config,
        store: &dyn crate::store::Store,
        create: bool,
    ) -> anyhow::Result<(PkiState, bool)> {
        let dir = cfg.pki_dir();
        let custody = custody(cfg)?;
        let profiles = Profiles::builtin();
        let crl_base = format!("{}/pki/crl", cfg.public_url());
        let mut created = false;
        if store.pki_object("root").await?.is_none() {
            if dir.join("root.pem").exists() {
                import_files(&dir, custody.kek(), &profiles, store).await?;
            } else if create {
                let now = OffsetDateTime::now_utc();
                let mut stored = Vec::new();
                let hierarchy = Hierarchy::create_with(&profiles, now, &crl_base, |name| {
                    let (key, how) = custody
                        .generate(name, cfg.pki.key_algorithm)
                        .map_err(|e| crate::pki::PkiError::Build(format!("{e:#}")))?;
                    stored.push((name.to_owned(), how));
                    Ok(key)
                })?;
                // All or nothing, the root first: of two instances creating at once, one
                // hierarchy is stored whole and the other is dropped.
                let rows: Vec<_> = stored
                    .into_iter()
                    .map(|(name, how)| {
                        let cert = &hierarchy.authority(&name).expect("just made").cert_der;
                        object(&name, cert, how)
                    })
                    .collect();
                created = store.insert_pki_objects(&rows).await?;
            } else {
                bail!(
                    "no CA hierarchy in the database: run `virtual-window pki init` (with pki.key_encryption_key{} configured)",
                    if cfg.pki.custody == KeyCustody::Pkcs11 {
                        " and pki.pkcs11"
                    } else {
                        ""
                    }
                );
            }
        }
        let load = async |name: &str| -> anyhow::Result<crate::pki::ca::Authority> {
            let o = store
                .pki_object(name)
                .await?
                .with_context(|| format!("the CA `{name}` is missing from the database"))?;
            let key = custody.open(&o)?;
            Ok(crate::pki::ca::Authority::checked(
                &profiles, name, o.cert_der, key,
            )?)
        };
        let mut issuing = Vec::new();
        for name in Hierarchy::names().skip(1) {
            issuing.push(load(name).await?);
        }
        let hierarchy = Hierarchy {
            root: load("root").await?,
            issuing,
        };
        // The public certificates, for tools on this machine (`verify` trusts root.pem).
        if std::fs::create_dir_all(&dir).is_ok() {
            for a in std::iter::once(&hierarchy.root).chain(hierarchy.issuing.iter()) {
                let _ = std::fs::write(dir.join(format!("{}.pem", a.name)), a.cert_pem());
            }
        }
        let gm = super::gm::open_hierarchy(store, custody.kek(), &crl_base).await?;
        if std::fs::create_dir_all(&dir).is_ok() {
            let _ = std::fs::write(dir.join("root-sm2.pem"), gm.root.cert_pem());
        }
        Ok((
            PkiState {
                profiles,
                hierarchy,
                gm,
                dir,
                crl_base,
                crl_validity: time::Duration::hours(cfg.pki.crl_validity_hours.max(1) as i64),
                crl_reuse: time::Duration::seconds(cfg.pki.crl_reuse_secs.min(86_400) as i64),
                crls: Default::default(),
                custody,
                tsa: std::sync::OnceLock::new(),
                units: Default::default(),
                issuing: tokio::sync::Mutex::new(()),
            },
            created,
        ))
    }

    /// The key-encryption key software keys are kept under.
    pub(crate) fn kek(&self) -> &[u8] {
        self.custody.kek()
    }

    /// A unit or seal already loaded in this instance.
    pub fn loaded(&self, name: &str) -> Option<Arc<Unit>> {
        self.units.read().ok()?.get(name).cloned()
    }

    /// A unit or seal from the database (kept once loaded); `None` when none is stored.
    pub async fn unit(
        &self,
        store: &dyn crate::store::Store,
        name: &str,
    ) -> anyhow::Result<Option<Arc<Unit>>> {
        if let Some(u) = self.loaded(name) {
            return Ok(Some(u));
        }
        let Some(o) = store.pki_object(name).await? else {
            return Ok(None);
        };
        let key = self.custody.open(&o)?;
        let unit = Arc::new(Unit {
            cert: o.cert_der,
            key,
        });
        if let Ok(mut map) = self.units.write() {
            map.insert(name.to_owned(), unit.clone());
        }
        Ok(Some(unit))
    }

    /// A new key under the configured custody for `name`, and the row that will refer to it.
    fn new_key(
        &self,
        name: &str,
        algorithm: crate::pki::KeyAlgorithm,
    ) -> anyhow::Result<(Arc<dyn SigningKey>, StoredKey)> {
        self.custody.generate(name, algorithm)
    }

    /// Stores `cert` with its key unless another instance stored `name` first; then loads
    /// whichever is stored.
    async fn store_unit(
        &self,
        store: &dyn crate::store::Store,
        name: &str,
        cert: &[u8],
        key: StoredKey,
    ) -> anyhow::Result<(bool, Arc<Unit>)> {
        let won = store.insert_pki_object(&object(name, cert, key)).await?;
        let unit = self
            .unit(store, name)
            .await?
            .with_context(|| format!("{name} vanished"))?;
        Ok((won, unit))
    }

    /// Exports a software key (encrypted under the key-encryption key) for a party outside.
    pub fn save_key(&self, path: &Path, key: &SoftwareKey) -> anyhow::Result<()> {
        Ok(key.save(path, self.custody.kek())?)
    }
}

/// Moves a hierarchy and units kept as files (before key custody in the database) into the
/// database.
async fn import_files(
    dir: &Path,
    kek: &[u8],
    profiles: &Profiles,
    store: &dyn crate::store::Store,
) -> anyhow::Result<()> {
    Hierarchy::load(dir, kek, profiles).context("loading the CA hierarchy files")?;
    let mut names: Vec<String> = Hierarchy::names().skip(1).map(str::to_owned).collect();
    for entry in std::fs::read_dir(dir)? {
        let file = entry?.file_name().to_string_lossy().into_owned();
        if let Some(unit) = file.strip_suffix(".key.pem")
            && !Hierarchy::names().any(|n| n == unit)
            && dir.join(format!("{unit}.pem")).exists()
        {
            names.push(unit.to_owned());
        }
    }
    names.push("root".into());
    for name in names {
        let pem = std::fs::read(dir.join(format!("{name}.pem")))?;
        let cert = openssl::x509::X509::from_pem(&pem)?.to_der()?;
        let key_pem = std::fs::read(dir.join(format!("{name}.key.pem")))?;
        store
            .insert_pki_object(&object(&name, &cert, StoredKey::Software(key_pem)))
            .await?;
    }
    tracing::info!(dir = %dir.display(), "moved the PKI files into the database");
    Ok(())
}

fn subject_text(der: &[u8]) -> String {
    use x509_parser::prelude::*;
    match X509Certificate::from_der(der) {
        Ok((_, c)) => c.subject().to_string(),
        Err(_) => String::new(),
    }
}

fn record(
    issued: &IssuedCertificate,
    organisation_id: Option<String>,
    verification_id: Option<String>,
) -> CertificateRecord {
    CertificateRecord {
        serial: issued.serial.clone(),
        issuer: issued.issuer.clone(),
        profile: issued.profile.clone(),
        subject: subject_text(&issued.der),
        organisation_id,
        verification_id,
        not_before: issued.not_before,
        not_after: issued.not_after,
        der: issued.der.clone(),
        revoked_at: None,
        revocation_reason: None,
        created_at: OffsetDateTime::now_utc(),
    }
}

/// After a new hierarchy: issue the service's own units and log every certificate.
pub async fn bootstrap(s: &Services) -> Result<(), Error> {
    let pki = &s.pki;
    let now = OffsetDateTime::now_utc();
    for a in std::iter::once(&pki.hierarchy.root).chain(pki.hierarchy.issuing.iter()) {
        let x = openssl::x509::X509::from_der(&a.cert_der).context("CA certificate")?;
        let serial = x
            .serial_number()
            .to_bn()
            .context("serial")?
            .to_hex_str()
            .context("serial")?
            .to_lowercase();
        let not_after = crate::pki::validate::asn1_time_unix(x.not_after()).unwrap_or(0);
        let not_before = crate::pki::validate::asn1_time_unix(x.not_before()).unwrap_or(0);
        s.store
            .insert_certificate(&CertificateRecord {
                serial,
                // Every CA of the hierarchy, the root included, is certified by the root.
                issuer: "root".into(),
                profile: a.name.clone(),
                subject: subject_text(&a.cert_der),
                organisation_id: None,
                verification_id: None,
                not_before: OffsetDateTime::from_unix_timestamp(not_before).unwrap_or(now),
                not_after: OffsetDateTime::from_unix_timestamp(not_after).unwrap_or(now),
                der: a.cert_der.clone(),
                revoked_at: None,
                revocation_reason: None,
                created_at: now,
            })
            .await?;
    }
    for (unit, ca_name) in UNITS {
        let (key, stored) = pki.new_key(unit, s.config.pki.key_algorithm)?;
        let subject = match unit {
            "tsa" => Subject::Unit {
                common_name: "虚拟窗口时间戳服务".into(),
                organisation: ca::OPERATOR.into(),
            },
            _ => Subject::OrganisationSeal {
                organisation: "东莞市不动产登记中心".into(),
                uscc: "12441900MB2C92110F".into(),
                seal_name: "不动产登记专用章".into(),
                seal_image_sha256: None,
            },
        };
        let issued = ca::issue(
            &pki.profiles,
            pki.hierarchy.authority(ca_name).context("issuing CA")?,
            unit,
            &subject,
            key.as_ref(),
            now,
            &pki.crl_base,
        )
        .context("issuing a unit certificate")?;
        s.store
            .insert_certificate(&record(&issued, None, None))
            .await?;
        pki.store_unit(s.store.as_ref(), unit, &issued.der, stored)
            .await?;
    }
    Ok(())
}

/// The seal of an organisation under the configured custody: issued by the organisations CA on
/// first use and stored; used from then on by every instance. When several requests (on one
/// instance or several) use it first at once, one issuance is stored; the others' certificates
/// are revoked as superseded and they use the stored one.
pub async fn organisation_seal(
    s: &Services,
    org: &crate::store::Organisation,
) -> Result<Arc<Unit>, Error> {
    let name = format!("seal-{}", org.id);
    if let Some(u) = s.pki.loaded(&name) {
        return Ok(u);
    }
    // First use in this instance: the organisation's GB/T 38540 seal (SM2) exists too.
    super::gm::organisation_seal(s, org).await?;
    if let Some(u) = s.pki.unit(s.store.as_ref(), &name).await? {
        return Ok(u);
    }
    let _guard = s.pki.issuing.lock().await;
    if let Some(u) = s.pki.unit(s.store.as_ref(), &name).await? {
        return Ok(u);
    }
    let (key, stored) = s.pki.new_key(&name, s.config.pki.key_algorithm)?;
    let subject = Subject::OrganisationSeal {
        organisation: org.name.clone(),
        uscc: org.uscc.clone().unwrap_or_default(),
        seal_name: "合同专用章".into(),
        seal_image_sha256: None,
    };
    let issued = issue_seal_certificate(s, &subject, key.as_ref(), Some(org.id.clone())).await?;
    let (won, unit) = s
        .pki
        .store_unit(s.store.as_ref(), &name, &issued.der, stored)
        .await?;
    if !won {
        // Another instance stored its seal first: this certificate is never used.
        let _ = revoke(s, None, &issued.serial, RevocationReason::Superseded).await;
    }
    Ok(unit)
}

/// Issues an organisation seal certificate for a developer, bound to the seal's image when one is
/// given; returns it with its new key.
pub async fn issue_seal(
    s: &Services,
    organisation_id: Option<String>,
    organisation: &str,
    uscc: &str,
    seal_name: &str,
    seal_image: Option<&[u8]>,
) -> Result<(IssuedCertificate, SoftwareKey), Error> {
    let key = SoftwareKey::generate(s.config.pki.key_algorithm).context("seal key")?;
    let subject = Subject::OrganisationSeal {
        organisation: organisation.into(),
        uscc: uscc.into(),
        seal_name: seal_name.into(),
        seal_image_sha256: seal_image.map(openssl::sha::sha256),
    };
    let issued = issue_seal_certificate(s, &subject, &key, organisation_id).await?;
    Ok((issued, key))
}

/// An organisation seal certificate from the organisations CA for `key`, logged.
async fn issue_seal_certificate(
    s: &Services,
    subject: &Subject,
    key: &dyn SigningKey,
    organisation_id: Option<String>,
) -> Result<IssuedCertificate, Error> {
    let issued = ca::issue(
        &s.pki.profiles,
        s.pki
            .hierarchy
            .authority("organisations-ca")
            .context("CA")?,
        "organisation-seal",
        subject,
        key,
        OffsetDateTime::now_utc(),
        &s.pki.crl_base,
    )
    .map_err(certificate_refused)?;
    s.store
        .insert_certificate(&record(&issued, organisation_id, None))
        .await?;
    Ok(issued)
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CertificateView {
    pub serial: String,
    pub issuer: String,
    pub profile: String,
    pub subject: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub status: crate::domain::lifecycle::IssuedCertificateState,
    pub revocation_reason: Option<String>,
    pub verification_id: Option<String>,
}

fn view(c: &CertificateRecord, now: OffsetDateTime) -> CertificateView {
    use crate::domain::lifecycle::IssuedCertificateState as State;
    let status = if c.revoked_at.is_some() {
        State::Revoked
    } else if c.not_after < now {
        State::Expired
    } else {
        State::Valid
    };
    CertificateView {
        serial: c.serial.clone(),
        issuer: c.issuer.clone(),
        profile: c.profile.clone(),
        subject: c.subject.clone(),
        not_before: c.not_before,
        not_after: c.not_after,
        status,
        revocation_reason: c.revocation_reason.clone(),
        verification_id: c.verification_id.clone(),
    }
}

pub async fn list(s: &Services, caller: &Caller) -> Result<Vec<CertificateView>, Error> {
    if !caller.is(Role::Admin) {
        return Err(Error::forbidden("只有管理员可以查看证书清单。"));
    }
    let now = OffsetDateTime::now_utc();
    Ok(s.store
        .certificates(1000)
        .await?
        .iter()
        .map(|c| view(c, now))
        .collect())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    Unspecified,
    KeyCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
}

impl RevocationReason {
    fn rcgen(self) -> rcgen::RevocationReason {
        match self {
            RevocationReason::Unspecified => rcgen::RevocationReason::Unspecified,
            RevocationReason::KeyCompromise => rcgen::RevocationReason::KeyCompromise,
            RevocationReason::AffiliationChanged => rcgen::RevocationReason::AffiliationChanged,
            RevocationReason::Superseded => rcgen::RevocationReason::Superseded,
            RevocationReason::CessationOfOperation => rcgen::RevocationReason::CessationOfOperation,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "key_compromise",
            RevocationReason::AffiliationChanged => "affiliation_changed",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessation_of_operation",
        }
    }
    pub fn parse(s: &str) -> Option<RevocationReason> {
        [
            RevocationReason::Unspecified,
            RevocationReason::KeyCompromise,
            RevocationReason::AffiliationChanged,
            RevocationReason::Superseded,
            RevocationReason::CessationOfOperation,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// Revokes a certificate. `caller` is `None` for the operator's command line.
pub async fn revoke(
    s: &Services,
    caller: Option<&Caller>,
    serial: &str,
    reason: RevocationReason,
) -> Result<CertificateView, Error> {
    if caller.is_some_and(|c| !c.is(Role::Admin)) {
        return Err(Error::forbidden("只有管理员可以吊销证书。"));
    }
    let serial = serial.trim().to_ascii_lowercase();
    let now = OffsetDateTime::now_utc();
    let cert = s
        .store
        .certificate(&serial)
        .await?
        .ok_or_else(|| Error::not_found("该证书"))?;
    if (cert.issuer == "root" && cert.profile == "root")
        || (cert.issuer == "sm2-root" && cert.profile == "sm2-root")
    {
        return Err(Error::conflict(
            "cannot_revoke_root",
            "根证书不能通过吊销列表吊销，只能更换信任锚。",
        ));
    }
    if !s
        .store
        .revoke_certificate(&serial, now, reason.as_str())
        .await?
    {
        return Err(Error::conflict("already_revoked", "该证书已被吊销。"));
    }
    audit::append(
        s.store.as_ref(),
        NewAuditEvent {
            at: now,
            actor_id: caller.map(|c| c.user_id.clone()),
            actor_role: caller.map(|c| c.role.as_str().to_owned()),
            action: "certificate.revoke".into(),
            object_kind: "certificate".into(),
            object_id: serial.clone(),
            object_hash: Some(crate::audit::hex(&openssl::sha::sha256(&cert.der))),
            source: caller.and_then(|c| c.source.clone()),
            detail: serde_json::json!({ "reason": reason.as_str() }).to_string(),
        },
    )
    .await?;
    let updated = s
        .store
        .certificate(&serial)
        .await?
        .context("revoked certificate vanished")?;
    Ok(view(&updated, now))
}

/// The current CRL of an issuing CA (or of the root, for the issuing CAs), DER.
pub async fn crl(s: &Services, ca_name: &str) -> Result<Vec<u8>, Error> {
    if ca_name.starts_with("sm2-") {
        return super::gm::crl(s, ca_name).await;
    }
    let ca = s
        .pki
        .hierarchy
        .authority(ca_name)
        .map_err(|_| Error::not_found("该证书签发机构"))?;
    let revoked: Vec<Revoked> = s
        .store
        .revoked_certificates(ca_name)
        .await?
        .into_iter()
        .map(|c| Revoked {
            serial_hex: c.serial,
            revoked_at: c.revoked_at.unwrap_or_else(OffsetDateTime::now_utc),
            reason: c
                .revocation_reason
                .as_deref()
                .and_then(RevocationReason::parse)
                .map(|r| r.rcgen()),
        })
        .collect();
    let now = OffsetDateTime::now_utc();
    // The same revocations as the CRL this instance made a moment ago: serve that one.
    let digest = {
        let mut h = openssl::sha::Sha256::new();
        for r in &revoked {
            h.update(r.serial_hex.as_bytes());
            h.update(&r.revoked_at.unix_timestamp().to_be_bytes());
            h.update(format!("{:?}", r.reason).as_bytes());
            h.update(b"\n");
        }
        h.finish()
    };
    reuse_or_make_crl(s, ca_name, digest, now, |number| {
        ca::crl(ca, &revoked, number, now, s.pki.crl_validity).context("building the CRL")
    })
    .await
}

/// The CRL of `ca_name` for revocations whose digest is `digest`: the one this instance made
/// within `pki.crl_reuse_secs` for the same revocations, or a new one from `make` with the next
/// number from the database. The number must grow with every new CRL whichever instance issues
/// it (never below the seconds since the epoch, which numbered the CRLs published before, so
/// the sequence keeps growing across the change).
pub(crate) async fn reuse_or_make_crl(
    s: &Services,
    ca_name: &str,
    digest: [u8; 32],
    now: OffsetDateTime,
    make: impl FnOnce(u64) -> anyhow::Result<Vec<u8>>,
) -> Result<Vec<u8>, Error> {
    if let Ok(m) = s.pki.crls.lock()
        && let Some((d, at, der)) = m.get(ca_name)
        && *d == digest
        && now - *at < s.pki.crl_reuse
    {
        return Ok(der.as_ref().clone());
    }
    let number = s
        .store
        .next_crl_number(ca_name, now.unix_timestamp())
        .await?;
    let der = make(number as u64)?;
    if let Ok(mut m) = s.pki.crls.lock() {
        m.insert(ca_name.to_owned(), (digest, now, Arc::new(der.clone())));
    }
    Ok(der)
}

/// A CA certificate, PEM.
pub fn ca_certificate(s: &Services, ca_name: &str) -> Result<String, Error> {
    // The 国密 hierarchy's CAs: sm2-root, sm2-people-ca, sm2-organisations-ca, sm2-centre-ca.
    if let Some(a) = s
        .pki
        .gm
        .authorities()
        .into_iter()
        .find(|a| a.name == ca_name && (a.name.ends_with("-ca") || a.name == "sm2-root"))
    {
        return Ok(a.cert_pem());
    }
    s.pki
        .hierarchy
        .authority(ca_name)
        .map(|a| a.cert_pem())
        .map_err(|_| Error::not_found("该证书签发机构"))
}

pub fn root_fingerprint(s: &Services) -> String {
    fingerprint(&s.pki.hierarchy.root.cert_der)
}

/// The registration centre's seal (certificate and key), for the workflow that seals filed
/// documents.
pub fn centre_seal(s: &Services) -> anyhow::Result<(Vec<u8>, Arc<dyn SigningKey>)> {
    let u = s
        .pki
        .loaded("centre-seal")
        .context("the centre's seal is not loaded")?;
    Ok((u.cert.clone(), u.key.clone()))
}

/// The time-stamping unit: its certificate, its issuing CA and its key.
pub struct TsaUnit {
    pub cert: Vec<u8>,
    pub chain: Vec<Vec<u8>>,
    pub key: Arc<dyn SigningKey>,
}

pub fn tsa_unit(s: &Services) -> anyhow::Result<&TsaUnit> {
    if let Some(u) = s.pki.tsa.get() {
        return Ok(u);
    }
    let loaded = s
        .pki
        .loaded("tsa")
        .context("the time-stamping unit is not loaded")?;
    let unit = TsaUnit {
        cert: loaded.cert.clone(),
        chain: vec![
            s.pki
                .hierarchy
                .authority("timestamping-ca")?
                .cert_der
                .clone(),
        ],
        key: loaded.key.clone(),
    };
    Ok(s.pki.tsa.get_or_init(|| unit))
}

/// Loads the service's own units (the time-stamping unit, the centre's seal) at start. An
/// instance that lost the race to create the hierarchy waits for the winner to store them.
pub async fn load_units(s: &Services) -> anyhow::Result<()> {
    for (unit, _) in UNITS {
        let mut tries = 0;
        while s.pki.unit(s.store.as_ref(), unit).await?.is_none() {
            tries += 1;
            if tries > 100 {
                bail!("the unit `{unit}` is not in the database: run `virtual-window pki init`");
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Answers an RFC 3161 request (DER) with a reply (DER); a malformed request gets a rejection
/// reply, as the protocol expects, not an HTTP error.
pub fn timestamp(s: &Services, request: &[u8]) -> Result<Vec<u8>, Error> {
    let unit = tsa_unit(s)?;
    match crate::pki::tsa::parse_request(request) {
        Ok(req) => {
            let u = crate::pki::tsa::TimeStampUnit {
                cert_der: &unit.cert,
                chain: &unit.chain,
                key: unit.key.as_ref(),
            };
            Ok(
                crate::pki::tsa::respond(&u, &req, OffsetDateTime::now_utc())
                    .context("time stamp")?,
            )
        }
        Err(failure) => Ok(crate::pki::tsa::rejection(failure)),
    }
}

/// A time-stamp token over a SHA-256 digest from this installation's own unit (in process: the
/// signing step does not go through HTTP to reach the authority it runs beside).
pub fn stamp_digest(unit: &TsaUnit, digest: &[u8; 32]) -> crate::pki::PkiResult<Vec<u8>> {
    let (req, _) = crate::pki::tsa::request(digest, true)?;
    let parsed = crate::pki::tsa::parse_request(&req)
        .map_err(|f| crate::pki::PkiError::Build(format!("{f:?}")))?;
    let u = crate::pki::tsa::TimeStampUnit {
        cert_der: &unit.cert,
        chain: &unit.chain,
        key: unit.key.as_ref(),
    };
    crate::pki::tsa::token_from_response(&crate::pki::tsa::respond(
        &u,
        &parsed,
        OffsetDateTime::now_utc(),
    )?)
}

fn refused(code: &'static str, message: &str) -> Error {
    Error::Forbidden {
        code,
        message: message.to_owned(),
    }
}

/// Issues a buyer's short-lived event certificate, only against a passed identity verification
/// of the same person that is fresh and not used before. The key is generated in the service's
/// key store and handed to the signing step; the verification id goes into the certificate log.
pub async fn issue_event_certificate(
    s: &Services,
    caller: &Caller,
    verification_id: &str,
) -> Result<(IssuedCertificate, SoftwareKey), Error> {
    let v = s
        .store
        .identity_verification(verification_id)
        .await?
        .ok_or_else(|| Error::not_found("该身份核验记录"))?;
    issue_event_certificate_for(s, caller, &v).await
}

/// The same for a verification just read (by the signing hook): its checks are made again
/// here, and the database still issues one certificate per verification
/// (`record_event_certificate` is conditional), so a stale copy cannot be used twice.
pub async fn issue_event_certificate_for(
    s: &Services,
    caller: &Caller,
    v: &crate::store::IdentityVerification,
) -> Result<(IssuedCertificate, SoftwareKey), Error> {
    let now = usable_verification(s, caller, v)?;
    let key = SoftwareKey::generate(s.config.pki.key_algorithm).context("event key")?;
    let subject = Subject::Person {
        name: v.subject_name.clone(),
        pseudonym: v.id_pseudonym.clone(),
    };
    let issued = ca::issue(
        &s.pki.profiles,
        s.pki.hierarchy.authority("people-ca").context("CA")?,
        "event",
        &subject,
        &key,
        now,
        &s.pki.crl_base,
    )
    .map_err(certificate_refused)?;
    let rec = record(&issued, None, Some(v.id.clone()));
    log_event_certificate(s, caller, v, &rec, now, s.config.pki.key_algorithm).await?;
    Ok((issued, key))
}

/// The checks before any event certificate, in either algorithm: the caller's own verification,
/// passed (identity matched, live, similarity at the threshold), fresh and not used before.
/// Answers the time of the check.
fn usable_verification(
    s: &Services,
    caller: &Caller,
    v: &crate::store::IdentityVerification,
) -> Result<OffsetDateTime, Error> {
    if v.user_id != caller.user_id {
        return Err(Error::not_found("该身份核验记录"));
    }
    let passed = v.status == crate::domain::identity::VerificationStatus::Passed
        && v.identity_matched
        && v.liveness_passed
        && v.similarity.is_some_and(|sim| sim >= v.threshold);
    if !passed {
        return Err(refused(
            "verification_not_passed",
            "身份核验未通过，不能签发签名证书。",
        ));
    }
    let now = OffsetDateTime::now_utc();
    let window = time::Duration::seconds(s.config.pki.event_verification_window_secs as i64);
    if v.completed_at.is_none_or(|t| now - t > window) {
        return Err(refused(
            "verification_stale",
            "身份核验已过期，请重新进行人脸核验后再签名。",
        ));
    }
    if v.event_cert_serial.is_some() {
        return Err(Error::conflict(
            "verification_already_used",
            "该次身份核验已用于签发证书，请重新核验。",
        ));
    }
    Ok(now)
}

/// A buyer's SM2 event certificate from the 国密 people's CA, under the same rule as the P-256
/// one: only against the caller's passed, fresh verification, one certificate per verification
/// whichever the algorithm (the database's conditional `record_event_certificate`). The SM2 key
/// is made in process for the one signing and never stored. Logged (`sm2-event`, with the
/// verification's id), audited, revocable and listed on `sm2-people-ca.crl` like the others.
/// *Decision*: no flow signs with it yet — a person's signature in the contract is PAdES, and
/// OpenSSL 3.0 cannot make SM2 CMS (docs/pki.md); it is the certificate the dual SM2 + ECDSA
/// signatures will use.
pub async fn issue_sm2_event_certificate(
    s: &Services,
    caller: &Caller,
    verification_id: &str,
) -> Result<(crate::store::CertificateRecord, crate::pki::sm2::Sm2Key), Error> {
    let v = s
        .store
        .identity_verification(verification_id)
        .await?
        .ok_or_else(|| Error::not_found("该身份核验记录"))?;
    let now = usable_verification(s, caller, &v)?;
    let key = crate::pki::sm2::Sm2Key::generate().context("SM2 event key")?;
    let validity = s
        .pki
        .profiles
        .get("event")
        .context("event profile")?
        .validity();
    let der = s
        .pki
        .gm
        .issue_event(
            &crate::pki::gm::GmName::person(&v.subject_name, &v.id_pseudonym),
            key.public_key_der(),
            now,
            validity,
            &s.pki.crl_base,
        )
        .map_err(certificate_refused)?;
    let mut rec = super::gm::log_row(&der, &s.pki.gm.people_ca.name, "sm2-event", None)?;
    rec.verification_id = Some(v.id.clone());
    log_event_certificate(s, caller, &v, &rec, now, "sm2").await?;
    Ok((rec, key))
}

fn certificate_refused(e: crate::pki::PkiError) -> Error {
    Error::Invalid {
        code: "certificate_refused",
        message: format!("证书无法签发：{e}"),
        fields: vec![],
    }
}

/// Logs an event certificate against its verification — refused when the verification was used
/// already (the database decides: one certificate per verification, whichever the algorithm) —
/// and audits it.
async fn log_event_certificate(
    s: &Services,
    caller: &Caller,
    v: &crate::store::IdentityVerification,
    rec: &crate::store::CertificateRecord,
    now: OffsetDateTime,
    algorithm: impl Serialize,
) -> Result<(), Error> {
    if !s.store.record_event_certificate(&v.id, rec).await? {
        return Err(Error::conflict(
            "verification_already_used",
            "该次身份核验已用于签发证书，请重新核验。",
        ));
    }
    audit::append(
        s.store.as_ref(),
        NewAuditEvent {
            at: now,
            actor_id: Some(caller.user_id.clone()),
            actor_role: Some(caller.role.as_str().to_owned()),
            action: "certificate.issue_event".into(),
            object_kind: "certificate".into(),
            object_id: rec.serial.clone(),
            object_hash: Some(crate::audit::hex(&openssl::sha::sha256(&rec.der))),
            source: caller.source.clone(),
            detail: serde_json::json!({ "verification_id": v.id, "algorithm": algorithm })
                .to_string(),
        },
    )
    .await?;
    Ok(())
}
