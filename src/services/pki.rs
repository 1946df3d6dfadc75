//! The service side of the PKI: loading (or, in development, creating) the CA hierarchy and the
//! service's own units (the time-stamping unit and the registration centre's seal), the
//! certificate request log in the database, revocation, and the published CA certificates and
//! CRLs.

use super::{Caller, Error, Services};
use crate::audit;
use crate::config::{Config, Mode};
use crate::domain::Role;
use crate::pki::ca::{self, IssuedCertificate, Revoked, Subject};
use crate::pki::{Hierarchy, Profiles, SoftwareKey};
use crate::store::{CertificateRecord, NewAuditEvent};
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// The service's own end-entity units, created with the hierarchy.
pub const UNITS: [(&str, &str); 2] = [
    ("tsa", "timestamping-ca"),
    ("centre-seal", "organisations-ca"),
];

pub struct PkiState {
    /// The time-stamping unit, loaded on first use (decrypting a key costs a key derivation).
    tsa: std::sync::OnceLock<TsaUnit>,
    pub profiles: Profiles,
    pub hierarchy: Hierarchy,
    pub dir: PathBuf,
    pub crl_base: String,
    pub crl_validity: time::Duration,
    kek: Vec<u8>,
    /// Serialises the issuance of keys kept in the PKI directory on first use (organisation
    /// seals) within this instance; other instances are kept apart by the files themselves.
    pub issuing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for PkiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PkiState")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
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

impl PkiState {
    /// Loads the hierarchy from the PKI directory, or creates it when `create` is set and none
    /// exists. Returns whether it was created.
    pub fn load_or_init(cfg: &Config, create: bool) -> anyhow::Result<(PkiState, bool)> {
        let dir = cfg.pki_dir();
        let kek = key_encryption_key(cfg)?;
        let profiles = Profiles::builtin();
        let crl_base = format!("{}/pki/crl", cfg.public_url());
        let (hierarchy, created) = if dir.join("root.pem").exists() {
            (
                Hierarchy::load(&dir, &kek, &profiles).context("loading the CA hierarchy")?,
                false,
            )
        } else if create {
            let now = OffsetDateTime::now_utc();
            let (h, keys) = Hierarchy::create(&profiles, cfg.pki.key_algorithm, now, &crl_base)?;
            h.save(&dir, &keys, &kek)?;
            (h, true)
        } else {
            bail!(
                "no CA hierarchy in {}: run `virtual-window pki init` (with pki.dir and pki.key_encryption_key configured)",
                dir.display()
            );
        };
        Ok((
            PkiState {
                tsa: std::sync::OnceLock::new(),
                profiles,
                hierarchy,
                dir,
                crl_base,
                crl_validity: time::Duration::hours(cfg.pki.crl_validity_hours.max(1) as i64),
                kek,
                issuing: tokio::sync::Mutex::new(()),
            },
            created,
        ))
    }

    pub fn unit_key_path(&self, unit: &str) -> PathBuf {
        self.dir.join(format!("{unit}.key.pem"))
    }

    /// The key of one of the service's units (the TSA, the centre's seal).
    pub fn unit_key(&self, unit: &str) -> anyhow::Result<SoftwareKey> {
        Ok(SoftwareKey::load(&self.unit_key_path(unit), &self.kek)?)
    }

    pub fn unit_cert(&self, unit: &str) -> anyhow::Result<Vec<u8>> {
        let pem = std::fs::read(self.dir.join(format!("{unit}.pem")))?;
        Ok(openssl::x509::X509::from_pem(&pem)?.to_der()?)
    }

    pub fn save_key(&self, path: &Path, key: &SoftwareKey) -> anyhow::Result<()> {
        Ok(key.save(path, &self.kek)?)
    }
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
        let key = SoftwareKey::generate(s.config.pki.key_algorithm).context("unit key")?;
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
            &key,
            now,
            &pki.crl_base,
        )
        .context("issuing a unit certificate")?;
        pki.save_key(&pki.unit_key_path(unit), &key)?;
        std::fs::write(pki.dir.join(format!("{unit}.pem")), issued.pem())
            .context("unit certificate")?;
        s.store
            .insert_certificate(&record(&issued, None, None))
            .await?;
    }
    Ok(())
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
    let issued = ca::issue(
        &s.pki.profiles,
        s.pki
            .hierarchy
            .authority("organisations-ca")
            .context("CA")?,
        "organisation-seal",
        &subject,
        &key,
        OffsetDateTime::now_utc(),
        &s.pki.crl_base,
    )
    .map_err(|e| Error::Invalid {
        code: "certificate_refused",
        message: format!("证书无法签发：{e}"),
        fields: vec![],
    })?;
    s.store
        .insert_certificate(&record(&issued, organisation_id, None))
        .await?;
    Ok((issued, key))
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
    if cert.issuer == "root" && cert.profile == "root" {
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
    // The CRL number must grow with every new CRL whichever instance issues it: the database
    // hands out the next one (never below the seconds since the epoch, which numbered the CRLs
    // published before, so the sequence keeps growing across the change).
    let number = s
        .store
        .next_crl_number(ca_name, now.unix_timestamp())
        .await?;
    let der = ca::crl(ca, &revoked, number as u64, now, s.pki.crl_validity)
        .context("building the CRL")?;
    Ok(der)
}

/// A CA certificate, PEM.
pub fn ca_certificate(s: &Services, ca_name: &str) -> Result<String, Error> {
    s.pki
        .hierarchy
        .authority(ca_name)
        .map(|a| a.cert_pem())
        .map_err(|_| Error::not_found("该证书签发机构"))
}

pub fn root_fingerprint(s: &Services) -> String {
    fingerprint(&s.pki.hierarchy.root.cert_der)
}

/// The key of the registration centre's seal, for the workflow that seals filed documents.
pub fn centre_seal(s: &Services) -> anyhow::Result<(Vec<u8>, SoftwareKey)> {
    Ok((
        s.pki.unit_cert("centre-seal")?,
        s.pki.unit_key("centre-seal")?,
    ))
}

/// The time-stamping unit: its certificate, its issuing CA and its key.
pub struct TsaUnit {
    pub cert: Vec<u8>,
    pub chain: Vec<Vec<u8>>,
    pub key: SoftwareKey,
}

pub fn tsa_unit(s: &Services) -> anyhow::Result<&TsaUnit> {
    if let Some(u) = s.pki.tsa.get() {
        return Ok(u);
    }
    let unit = TsaUnit {
        cert: s.pki.unit_cert("tsa")?,
        chain: vec![
            s.pki
                .hierarchy
                .authority("timestamping-ca")?
                .cert_der
                .clone(),
        ],
        key: s.pki.unit_key("tsa")?,
    };
    Ok(s.pki.tsa.get_or_init(|| unit))
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
                key: &unit.key,
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
        key: &unit.key,
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
        .filter(|v| v.user_id == caller.user_id)
        .ok_or_else(|| Error::not_found("该身份核验记录"))?;
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
    .map_err(|e| Error::Invalid {
        code: "certificate_refused",
        message: format!("证书无法签发：{e}"),
        fields: vec![],
    })?;
    let rec = record(&issued, None, Some(v.id.clone()));
    if !s.store.record_event_certificate(&v.id, &rec).await? {
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
            object_id: issued.serial.clone(),
            object_hash: Some(crate::audit::hex(&openssl::sha::sha256(&issued.der))),
            source: caller.source.clone(),
            detail: serde_json::json!({ "verification_id": v.id }).to_string(),
        },
    )
    .await?;
    Ok((issued, key))
}
