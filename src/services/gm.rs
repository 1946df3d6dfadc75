//! The 国密 side of the service: the SM2 hierarchy kept in the database beside the P-256 one,
//! GB/T 38540 seals (the developers' 合同专用章, the centre's 不动产登记专用章) made on first use
//! and kept by esID, and the registration certificate as an OFD package sealed by the centre.

use super::{Caller, Error, Services};
use crate::domain::Role;
use crate::pki::gm::{GmAuthority, GmHierarchy};
use crate::pki::ses::{self, SealSpec};
use crate::pki::sm2::Sm2Key;
use crate::store::{EsSeal, PkiObject, Store};
use anyhow::Context;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Names of the hierarchy's rows in `pki_objects`.
const NAMES: [&str; 6] = [
    "sm2-root",
    "sm2-people-ca",
    "sm2-organisations-ca",
    "sm2-centre-ca",
    "sm2-seal-maker",
    "sm2-tsa",
];
/// SM2 keys are software keys (SoftHSM2 has no SM2 mechanism; docs/pki.md).
const KEY_KIND: &str = "sm2-software";
pub const CENTRE_HOLDER: &str = "sm2-centre-seal";
const VENDOR: &str = "VIRTUALWINDOW";
/// 印章类型: the samples use 3 for an organisation's special-purpose seal.
const SEAL_TYPE: i32 = 3;

fn row(a: &GmAuthority, kek: &[u8]) -> anyhow::Result<PkiObject> {
    Ok(PkiObject {
        name: a.name.clone(),
        cert_der: a.cert_der.clone(),
        key_kind: KEY_KIND.into(),
        key_label: None,
        key_pem: Some(a.key.to_encrypted_pkcs8(kek)?),
        created_at: OffsetDateTime::now_utc(),
    })
}

fn authority(o: PkiObject, kek: &[u8]) -> anyhow::Result<GmAuthority> {
    anyhow::ensure!(o.key_kind == KEY_KIND, "{}: not an SM2 key", o.name);
    let encrypted = o.key_pem.as_deref().context("no key")?;
    // Opened keys are kept by the digest of what opened them (the encrypted key, the key-
    // encryption key, the certificate): PBES2's key derivation made opening the centre's seal
    // key ~1.4 ms, paid for every certificate issued. The same bytes and KEK give the same key,
    // so a row changed in the database (a new holder) is a new entry. Bounded, cleared when full.
    static OPENED: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<[u8; 32], Sm2Key>>,
    > = std::sync::OnceLock::new();
    let digest = {
        let mut h = openssl::sha::Sha256::new();
        for part in [encrypted, kek, &o.cert_der] {
            h.update(&(part.len() as u64).to_be_bytes());
            h.update(part);
        }
        h.finish()
    };
    let opened = OPENED.get_or_init(Default::default);
    if let Some(key) = opened.lock().ok().and_then(|m| m.get(&digest).cloned()) {
        return Ok(GmAuthority {
            name: o.name,
            cert_der: o.cert_der,
            key,
        });
    }
    let key = Sm2Key::from_encrypted_pkcs8(encrypted, kek)
        .with_context(|| format!("opening {}'s SM2 key", o.name))?;
    anyhow::ensure!(
        Some(*key.point())
            == x509_parser::parse_x509_certificate(&o.cert_der)
                .ok()
                .and_then(|(_, c)| crate::pki::sm2::spki_point(c.public_key().raw)),
        "{}: the key does not match the certificate",
        o.name
    );
    if let Ok(mut m) = opened.lock() {
        if m.len() >= 256 {
            m.clear();
        }
        m.insert(digest, key.clone());
    }
    Ok(GmAuthority {
        name: o.name,
        cert_der: o.cert_der,
        key,
    })
}

/// The certificate log's row for an SM2 certificate (listed and revoked like the others).
pub(super) fn log_row(
    der: &[u8],
    issuer: &str,
    profile: &str,
    organisation_id: Option<String>,
) -> anyhow::Result<crate::store::CertificateRecord> {
    let (_, c) = x509_parser::parse_x509_certificate(der).context("an SM2 certificate")?;
    Ok(crate::store::CertificateRecord {
        serial: crate::pki::names::hex(c.raw_serial()),
        issuer: issuer.into(),
        profile: profile.into(),
        subject: c.subject().to_string(),
        organisation_id,
        verification_id: None,
        not_before: c.validity().not_before.to_datetime(),
        not_after: c.validity().not_after.to_datetime(),
        der: der.to_vec(),
        revoked_at: None,
        revocation_reason: None,
        created_at: OffsetDateTime::now_utc(),
    })
}

/// Which SM2 CA issued each of the hierarchy's certificates, and its profile in the log.
const ISSUED_BY: [(&str, &str); 6] = [
    ("sm2-root", "sm2-root"),
    ("sm2-root", "sm2-ca"),
    ("sm2-root", "sm2-ca"),
    ("sm2-root", "sm2-ca"),
    ("sm2-centre-ca", "sm2-seal-maker"),
    ("sm2-centre-ca", "sm2-timestamping"),
];

/// Loads the SM2 hierarchy, making it first when the database has none (an installation from
/// before issue 16 gets one on its first start). Of two instances making it at once, one is kept.
pub async fn open_hierarchy(
    store: &dyn Store,
    kek: &[u8],
    crl_base: &str,
) -> anyhow::Result<GmHierarchy> {
    if store.pki_object(NAMES[0]).await?.is_none() {
        let h = GmHierarchy::create(OffsetDateTime::now_utc(), crl_base)?;
        let rows = h
            .authorities()
            .iter()
            .map(|a| row(a, kek))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if store.insert_pki_objects(&rows).await? {
            for (a, (issuer, profile)) in h.authorities().iter().zip(ISSUED_BY) {
                store
                    .insert_certificate(&log_row(&a.cert_der, issuer, profile, None)?)
                    .await?;
            }
            tracing::info!("created the SM2 (国密) hierarchy");
        }
    }
    let mut loaded = Vec::new();
    for n in NAMES {
        let o = store
            .pki_object(n)
            .await?
            .with_context(|| format!("the SM2 authority `{n}` is missing from the database"))?;
        loaded.push(authority(o, kek)?);
    }
    let mut it = loaded.into_iter();
    let mut next = || it.next().expect("six authorities");
    Ok(GmHierarchy {
        root: next(),
        people_ca: next(),
        organisations_ca: next(),
        centre_ca: next(),
        seal_maker: next(),
        tsa: next(),
    })
}

/// A holder's certificate and key with its live seal.
pub struct Holder {
    pub signer: GmAuthority,
    pub seal: EsSeal,
}

fn es_id() -> String {
    // 4419 (Dongguan's area code) and 14 random digits.
    let mut b = [0u8; 8];
    openssl::rand::rand_bytes(&mut b).expect("the system RNG works");
    format!("4419{:014}", u64::from_be_bytes(b) % 100_000_000_000_000)
}

/// The holder's live seal, made (certificate, key, seal data) when there is none.
async fn holder(
    s: &Services,
    base: &str,
    organisation: &str,
    purpose: &str,
    organisation_id: Option<String>,
) -> Result<Holder, Error> {
    let kek = s.pki.kek();
    let store = s.store.as_ref();
    let gm = &s.pki.gm;
    let now = OffsetDateTime::now_utc();
    // A holder whose certificate was revoked is replaced: `base`, then `base-2`, `base-3`, …
    // (each with its own key, certificate and seal).
    let mut generation = 1;
    let name = loop {
        let name = if generation == 1 {
            base.to_owned()
        } else {
            format!("{base}-{generation}")
        };
        match store.pki_object(&name).await? {
            Some(o) if revoked_at(s, &o.cert_der).await?.is_some() && generation < 100 => {
                generation += 1;
            }
            _ => break name,
        }
    };
    let name = name.as_str();
    let signer = match store.pki_object(name).await? {
        Some(o) => authority(o, kek)?,
        None => {
            let a = gm
                .issue_signer(
                    organisation_id.is_none(),
                    organisation,
                    &format!("{organisation}{purpose}"),
                    now,
                    3,
                    &s.pki.crl_base,
                )
                .map_err(anyhow::Error::from)?;
            let a = GmAuthority {
                name: name.to_owned(),
                ..a
            };
            if !store.insert_pki_object(&row(&a, kek)?).await? {
                // Another instance made it first: use that one.
                let o = store.pki_object(name).await?.context("holder vanished")?;
                authority(o, kek)?
            } else {
                let issuer = if organisation_id.is_none() {
                    "sm2-centre-ca"
                } else {
                    "sm2-organisations-ca"
                };
                store
                    .insert_certificate(&log_row(
                        &a.cert_der,
                        issuer,
                        "sm2-seal",
                        organisation_id.clone(),
                    )?)
                    .await?;
                a
            }
        }
    };
    if let Some(seal) = store.live_es_seal(name).await? {
        return Ok(Holder { signer, seal });
    }
    let seal = new_seal(
        gm,
        &signer,
        name,
        organisation,
        purpose,
        organisation_id,
        now,
    )?;
    if store_seal(s, &seal).await? {
        return Ok(Holder { signer, seal });
    }
    let seal = store
        .live_es_seal(name)
        .await?
        .context("the other instance's seal vanished")?;
    Ok(Holder { signer, seal })
}

/// New seal data for `signer` (named `holder` in `es_seals`), signed by the seal maker: valid
/// for two years at most and never past the holder certificate (国办发〔2025〕33号).
fn new_seal(
    gm: &GmHierarchy,
    signer: &GmAuthority,
    holder: &str,
    organisation: &str,
    purpose: &str,
    organisation_id: Option<String>,
    now: OffsetDateTime,
) -> Result<EsSeal, Error> {
    let cert_end = x509_parser::parse_x509_certificate(&signer.cert_der)
        .map(|(_, c)| c.validity().not_after.to_datetime())
        .unwrap_or(now);
    let spec = SealSpec {
        vendor: VENDOR.into(),
        es_id: es_id(),
        seal_type: SEAL_TYPE as i64,
        name: format!("{organisation}{purpose}"),
        signer_certs: vec![signer.cert_der.clone()],
        created: now,
        valid_from: now - time::Duration::minutes(5),
        valid_to: cert_end.min(now + time::Duration::days(365 * 2)),
        picture: crate::ofd::write::seal_picture(organisation, purpose),
    };
    Ok(EsSeal {
        seal_der: ses::make_seal(&spec, &gm.seal_maker).map_err(anyhow::Error::from)?,
        es_id: spec.es_id,
        name: spec.name,
        seal_type: SEAL_TYPE,
        holder: holder.to_owned(),
        organisation_id,
        valid_from: spec.valid_from,
        valid_to: spec.valid_to,
        created_at: now,
        revoked_at: None,
        revocation_reason: None,
    })
}

/// Keeps a new seal and audits it; false when its holder has a live seal already (another
/// instance's is kept).
async fn store_seal(s: &Services, seal: &EsSeal) -> Result<bool, Error> {
    if !s.store.insert_es_seal(seal).await? {
        return Ok(false);
    }
    super::audit(
        s,
        None,
        "seal.made",
        ("es_seal", &seal.es_id),
        None,
        serde_json::json!({"name": seal.name, "holder": seal.holder}),
    )
    .await?;
    Ok(true)
}

/// The centre's 不动产登记专用章.
pub async fn centre_seal(s: &Services) -> Result<Holder, Error> {
    holder(
        s,
        CENTRE_HOLDER,
        super::contracts::CENTRE,
        "不动产登记专用章",
        None,
    )
    .await
}

/// A developer's 合同专用章 (made beside its P-256 seal certificate).
pub async fn organisation_seal(
    s: &Services,
    org: &crate::store::Organisation,
) -> Result<Holder, Error> {
    holder(
        s,
        &format!("sm2-seal-{}", org.id),
        &org.name,
        "合同专用章",
        Some(org.id.clone()),
    )
    .await
}

/// The sealed OFD package of a registration certificate.
pub async fn seal_certificate(
    s: &Services,
    content: &crate::ofd::write::CertificateContent,
    now: OffsetDateTime,
) -> Result<Vec<u8>, Error> {
    let h = centre_seal(s).await?;
    let chain = vec![s.pki.gm.centre_ca.cert_der.clone()];
    // The CRLs that cover every certificate of the seal (the centre CA's for the holder, the
    // seal maker and the time-stamping unit; the root's for the centre CA), carried in the
    // package so that any verifier can check revocation at the signing time.
    let crls = vec![crl(s, "sm2-centre-ca").await?, crl(s, "sm2-root").await?];
    let mut doc_id = [0u8; 16];
    openssl::rand::rand_bytes(&mut doc_id).map_err(anyhow::Error::from)?;
    let files = crate::ofd::write::package_files(content, &crate::audit::hex(&doc_id), now);
    let seal = h.seal.seal_der.clone();
    let pki = s.pki.clone();
    Ok(s.documents
        .run_here(move || {
            crate::ofd::write::seal_package(
                files,
                &crate::ofd::write::Stamp {
                    seal: &seal,
                    signer: &h.signer,
                    chain,
                    crls,
                    tsa: Some(&pki.gm.tsa),
                },
                now,
            )
        })
        .await?
        .map_err(anyhow::Error::from)?)
}

/// A seal as administrators see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SealView {
    pub es_id: String,
    pub name: String,
    pub seal_type: i32,
    pub organisation_id: Option<String>,
    /// `GB/T 38540` (V4).
    pub format: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_to: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    pub revocation_reason: Option<String>,
    /// SM3 of the seal data, hexadecimal.
    pub sm3: String,
}

fn view(e: EsSeal) -> SealView {
    SealView {
        sm3: crate::audit::hex(&crate::pki::sm2::sm3(&e.seal_der)),
        es_id: e.es_id,
        name: e.name,
        seal_type: e.seal_type,
        organisation_id: e.organisation_id,
        format: "GB/T 38540",
        valid_from: e.valid_from,
        valid_to: e.valid_to,
        revoked_at: e.revoked_at,
        revocation_reason: e.revocation_reason,
    }
}

pub async fn list_seals(s: &Services, caller: &Caller) -> Result<Vec<SealView>, Error> {
    if !caller.is(Role::Admin) {
        return Err(Error::forbidden("只有管理员可以查看电子印章。"));
    }
    Ok(s.store.es_seals(500).await?.into_iter().map(view).collect())
}

pub async fn revoke_seal(
    s: &Services,
    caller: &Caller,
    es_id: &str,
    reason: &str,
) -> Result<SealView, Error> {
    if !caller.is(Role::Admin) {
        return Err(Error::forbidden("只有管理员可以撤销电子印章。"));
    }
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(Error::invalid(vec![super::error::FieldError::new(
            "reason",
            "required",
            "请填写撤销原因（不超过200字）。",
        )]));
    }
    let now = OffsetDateTime::now_utc();
    if !s.store.revoke_es_seal(es_id, now, reason).await? {
        return Err(match s.store.es_seal(es_id).await? {
            None => Error::not_found("该电子印章"),
            Some(_) => Error::conflict("seal_revoked", "该电子印章已撤销。"),
        });
    }
    super::audit(
        s,
        Some(caller),
        "seal.revoked",
        ("es_seal", es_id),
        None,
        serde_json::json!({"reason": reason}),
    )
    .await?;
    let e = s.store.es_seal(es_id).await?.context("seal vanished")?;
    Ok(view(e))
}

/// The current CRL of an SM2 CA (`sm2-root`, `sm2-people-ca`, `sm2-organisations-ca`,
/// `sm2-centre-ca`), SM2-with-SM3, numbered by the database like the others.
pub async fn crl(s: &Services, ca_name: &str) -> Result<Vec<u8>, Error> {
    let gm = &s.pki.gm;
    let ca = [&gm.root, &gm.people_ca, &gm.organisations_ca, &gm.centre_ca]
        .into_iter()
        .find(|a| a.name == ca_name)
        .ok_or_else(|| Error::not_found("该证书签发机构"))?;
    let revoked: Vec<crate::pki::gm::GmRevoked> = s
        .store
        .revoked_certificates(ca_name)
        .await?
        .into_iter()
        .filter_map(|c| {
            Some(crate::pki::gm::GmRevoked {
                serial: crate::pki::ca::decode_hex(&c.serial)?,
                at: c.revoked_at?,
            })
        })
        .collect();
    let now = OffsetDateTime::now_utc();
    // The same revocations as the CRL this instance made a moment ago: that one again (an SM2
    // signature and a CRL number saved; every sealed certificate carries these CRLs).
    let digest = {
        let mut h = openssl::sha::Sha256::new();
        for r in &revoked {
            h.update(&r.serial);
            h.update(&r.at.unix_timestamp().to_be_bytes());
        }
        h.finish()
    };
    super::pki::reuse_or_make_crl(s, ca_name, digest, now, |number| {
        Ok(crate::pki::gm::crl(
            ca,
            number,
            &revoked,
            now,
            now + s.pki.crl_validity,
        )?)
    })
    .await
}

/// When this installation revoked the certificate (matched by serial and bytes), if it did.
pub async fn revoked_at(s: &Services, cert_der: &[u8]) -> Result<Option<OffsetDateTime>, Error> {
    let Ok((_, c)) = x509_parser::parse_x509_certificate(cert_der) else {
        return Ok(None);
    };
    let serial = crate::pki::names::hex(c.raw_serial());
    Ok(match s.store.certificate(&serial).await? {
        Some(rec) if rec.der == cert_der => rec.revoked_at,
        _ => None,
    })
}

/// A GB/T 38540 seal for an organisation outside the service (`pki issue --sm2`): a new SM2 key
/// and holder certificate from the organisations' CA, and seal data naming it. The certificate
/// is logged and the seal kept by esID (listed, revocable); the key is handed back for the
/// organisation and not kept here.
pub async fn issue_external_seal(
    s: &Services,
    organisation: &str,
    seal_name: &str,
) -> Result<(GmAuthority, EsSeal), Error> {
    let now = OffsetDateTime::now_utc();
    let gm = &s.pki.gm;
    let holder = gm
        .issue_signer(
            false,
            organisation,
            &format!("{organisation}{seal_name}"),
            now,
            3,
            &s.pki.crl_base,
        )
        .map_err(anyhow::Error::from)?;
    let log = log_row(&holder.cert_der, "sm2-organisations-ca", "sm2-seal", None)?;
    s.store.insert_certificate(&log).await?;
    // Not a pki_objects row: the key stays with the organisation.
    let seal = new_seal(
        gm,
        &holder,
        &format!("external:{}", log.serial),
        organisation,
        seal_name,
        None,
        now,
    )?;
    store_seal(s, &seal).await?;
    Ok((holder, seal))
}
