//! The verifier: our own signed contracts at every step, tampering of every kind, the Universal
//! Signature Forgery and certification attacks built here, files signed by pyHanko, the outside
//! corpus in ../shared/corpus, and arbitrary mutations that must never panic or pass.

use crate::pdf::cjk_font;
use lopdf::{Dictionary, Document, IncrementalDocument, Object, Stream};
use openssl::x509::X509;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use virtual_window::pdf::appearance::Visible;
use virtual_window::pdf::font::Font;
use virtual_window::pdf::sign::{
    SignOptions, add_document_timestamp, add_document_timestamp_digested, add_dss, sign,
    sign_digested,
};
use virtual_window::pdf::verify::{
    Changes, Integrity, Kind, Level, Options, Report, Trust, Verdict, verify,
};
use virtual_window::pki::ca::{self, IssuedCertificate, Subject};
use virtual_window::pki::{Hierarchy, KeyAlgorithm, PkiResult, Profiles, SoftwareKey, tsa};
use virtual_window::services::documents::{CONTRACT_TEMPLATE, render_contract};

/// A contract signed step by step as the flow does it, with the PKI that signed it.
pub struct Chain {
    pub h: Hierarchy,
    pub profiles: Profiles,
    pub font: Font,
    pub now: OffsetDateTime,
    tsa_key: SoftwareKey,
    tsa_cert: IssuedCertificate,
    /// (step, file): contract, buyer-1 (certifies, P=2), buyer-2 (B-T), seller-seal (B-T),
    /// centre-seal (B-T), dss (B-LT), lta (document time-stamp).
    pub steps: Vec<(&'static str, Vec<u8>)>,
}

impl Chain {
    pub fn build() -> Option<Chain> {
        Chain::build_with(KeyAlgorithm::EcdsaP256, Some(2))
    }

    pub fn build_with(alg: KeyAlgorithm, certify: Option<u8>) -> Option<Chain> {
        Chain::build_at(alg, certify, OffsetDateTime::now_utc())
    }

    /// The chain as signed at `now` (the signatures' /M and times; two chains built within the
    /// same second are otherwise the same bytes outside their signatures' contents).
    pub fn build_at(alg: KeyAlgorithm, certify: Option<u8>, now: OffsetDateTime) -> Option<Chain> {
        let font = cjk_font();
        let profiles = Profiles::builtin();
        let (h, _) = Hierarchy::create(&profiles, alg, now, "http://127.0.0.1/pki/crl").unwrap();
        let tsa_key = SoftwareKey::generate(alg).unwrap();
        let tsa_cert = ca::issue(
            &profiles,
            h.authority("timestamping-ca").unwrap(),
            "tsa",
            &Subject::Unit {
                common_name: "虚拟窗口时间戳服务".into(),
                organisation: ca::OPERATOR.into(),
            },
            &tsa_key,
            now,
            "http://127.0.0.1/pki/crl",
        )
        .unwrap();
        let contract = render_contract(
            &font,
            CONTRACT_TEMPLATE,
            &crate::pdf::contract::sample(),
            "https://window.example",
            "2026-11-28T10:00:00+08:00",
        )
        .unwrap()
        .pdf;
        let mut chain = Chain {
            h,
            profiles,
            font,
            now,
            tsa_key,
            tsa_cert,
            steps: vec![("contract", contract)],
        };
        let people = chain.h.authority("people-ca").unwrap().clone();
        let orgs = chain.h.authority("organisations-ca").unwrap().clone();
        for (field, name) in [("buyer-1", "张伟"), ("buyer-2", "李娜")] {
            let (cert, key) = chain.issue(
                "people-ca",
                "event",
                &Subject::Person {
                    name: name.into(),
                    pseudonym: format!("PSN-{field}"),
                },
                alg,
            );
            let doc = chain.sign_step(
                field,
                &cert,
                &people.cert_der,
                &key,
                if field == "buyer-1" { certify } else { None },
                field != "buyer-1",
                Visible::Signature {
                    name: name.into(),
                    time: "2026-11-28 10:00".into(),
                },
            );
            chain.steps.push((field, doc));
        }
        for (field, org, uscc, purpose, profile) in [
            (
                "seller-seal",
                "东莞市云境置业有限公司",
                "91441900MA4W0L7N36",
                "合同专用章",
                "organisation-seal",
            ),
            (
                "centre-seal",
                "东莞市不动产登记中心",
                "12441900MB2C92110F",
                "不动产登记专用章",
                "centre-seal",
            ),
        ] {
            let (cert, key) = chain.issue(
                "organisations-ca",
                profile,
                &Subject::OrganisationSeal {
                    organisation: org.into(),
                    uscc: uscc.into(),
                    seal_name: purpose.into(),
                    seal_image_sha256: None,
                },
                alg,
            );
            let doc = chain.sign_step(
                field,
                &cert,
                &orgs.cert_der,
                &key,
                None,
                true,
                Visible::Seal {
                    organisation: org.into(),
                    purpose: purpose.into(),
                },
            );
            chain.steps.push((field, doc));
        }
        let mut certs: Vec<Vec<u8>> = vec![chain.h.root.cert_der.clone()];
        certs.extend(chain.h.issuing.iter().map(|a| a.cert_der.clone()));
        let crls: Vec<Vec<u8>> = std::iter::once(&chain.h.root)
            .chain(chain.h.issuing.iter())
            .map(|a| ca::crl(a, &[], 1, now, time::Duration::days(1)).unwrap())
            .collect();
        let with_dss = add_dss(chain.last(), &certs, &crls).unwrap();
        chain.steps.push(("dss", with_dss));
        // The digest taken on the way (the service stores the document under it) is the
        // finished file's.
        let (lta, digest) = add_document_timestamp_digested(
            chain.last(),
            "archive-timestamp",
            &chain.timestamper(),
            16384,
        )
        .unwrap();
        assert_eq!(
            digest,
            openssl::sha::sha256(&lta),
            "the time-stamped file's digest"
        );
        chain.steps.push(("lta", lta));
        for w in chain.steps.windows(2) {
            assert!(
                w[1].1.starts_with(&w[0].1),
                "{} appends to {}",
                w[1].0,
                w[0].0
            );
        }
        Some(chain)
    }

    pub fn step(&self, name: &str) -> &[u8] {
        &self.steps.iter().find(|(n, _)| *n == name).unwrap().1
    }

    pub fn last(&self) -> &[u8] {
        &self.steps.last().unwrap().1
    }

    pub fn root_pem(&self) -> Vec<u8> {
        self.h.root.cert_pem().into_bytes()
    }

    pub fn options(&self) -> Options {
        Options {
            trust: vec![X509::from_der(&self.h.root.cert_der).unwrap()],
            now: OffsetDateTime::now_utc(),
        }
    }

    pub fn issue(
        &self,
        ca_name: &str,
        profile: &str,
        subject: &Subject,
        alg: KeyAlgorithm,
    ) -> (IssuedCertificate, SoftwareKey) {
        let key = SoftwareKey::generate(alg).unwrap();
        let cert = ca::issue(
            &self.profiles,
            self.h.authority(ca_name).unwrap(),
            profile,
            subject,
            &key,
            self.now,
            "http://127.0.0.1/pki/crl",
        )
        .unwrap();
        (cert, key)
    }

    pub fn timestamper(&self) -> impl Fn(&[u8; 32]) -> PkiResult<Vec<u8>> + '_ {
        let chain = vec![
            self.h
                .authority("timestamping-ca")
                .unwrap()
                .cert_der
                .clone(),
        ];
        move |digest: &[u8; 32]| {
            let (req, _) = tsa::request(digest, true)?;
            let parsed = tsa::parse_request(&req)
                .map_err(|f| virtual_window::pki::PkiError::Build(format!("{f:?}")))?;
            let unit = tsa::TimeStampUnit {
                cert_der: &self.tsa_cert.der,
                chain: &chain,
                key: &self.tsa_key,
            };
            tsa::token_from_response(&tsa::respond(&unit, &parsed, OffsetDateTime::now_utc())?)
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn sign_step(
        &self,
        field: &str,
        cert: &IssuedCertificate,
        ca_der: &[u8],
        key: &SoftwareKey,
        certify: Option<u8>,
        timestamp: bool,
        visible: Visible,
    ) -> Vec<u8> {
        let ts = self.timestamper();
        let (doc, digest) = sign_digested(
            self.last(),
            &SignOptions {
                field,
                signer_cert: &cert.der,
                chain: vec![ca_der.to_vec()],
                key,
                time: self.now,
                reason: Some("签署"),
                // Sized from the certificates and the time-stamp allowance.
                reserve: 0,
                timestamper: if timestamp { Some(&ts) } else { None },
                certify,
                visible: Some((&self.font, visible)),
            },
        )
        .unwrap();
        // The digest taken on the way (the service stores the document under it) is the
        // finished file's.
        assert_eq!(
            digest,
            openssl::sha::sha256(&doc),
            "{field}: the signed file's digest"
        );
        doc
    }
}

fn check(doc: &[u8], opts: &Options) -> Report {
    verify(doc, opts).expect("a readable PDF")
}

fn codes(r: &Report) -> Vec<&'static str> {
    r.problems
        .iter()
        .chain(r.signatures.iter().flat_map(|s| s.problems.iter()))
        .map(|p| p.code)
        .collect()
}

#[test]
fn every_step_of_our_signed_contract_is_valid_and_says_what_it_is() {
    let Some(chain) = Chain::build() else { return };
    let opts = chain.options();
    let unsigned = check(chain.step("contract"), &opts);
    assert_eq!(unsigned.verdict, Verdict::Indeterminate);
    assert!(unsigned.signatures.is_empty());

    for (i, (name, doc)) in chain.steps.iter().enumerate().skip(1) {
        let r = check(doc, &opts);
        assert_eq!(r.verdict, Verdict::Valid, "{name}: {r:#?}");
        assert_eq!(r.revisions, i + 1, "{name}");
        assert_eq!(r.sha256, hex(&openssl::sha::sha256(doc)));
        let last = r.signatures.last().unwrap();
        for s in &r.signatures {
            assert_eq!(s.integrity, Integrity::Intact, "{name} {}", s.field);
            assert_eq!(
                s.trust,
                Trust::Trusted,
                "{name} {}: {:?}",
                s.field,
                s.problems
            );
            assert!(
                s.problems.is_empty(),
                "{name} {}: {:?}",
                s.field,
                s.problems
            );
        }
        // The DSS is a revision of its own after the last signature, a permitted change.
        let dss = *name == "dss";
        assert_eq!(last.covers_whole_document, !dss, "{name}");
        let expected = if dss {
            Changes::Permitted
        } else {
            Changes::None
        };
        assert_eq!(last.changes_after, expected, "{name}");
        for s in &r.signatures[..r.signatures.len() - 1] {
            assert!(!s.covers_whole_document);
            assert_eq!(s.changes_after, Changes::Permitted, "{name} {}", s.field);
        }
    }

    // The automatic reservations fit and are not much larger than what went in.
    for &(a, b) in &contents_spans(chain.last())[..4] {
        let hex = &chain.last()[a + 1..b - 1];
        let bytes: Vec<u8> = hex
            .chunks(2)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
            .collect();
        let used = virtual_window::pki::signed::element_len(&bytes).unwrap();
        let reserved = bytes.len();
        assert!(
            reserved >= used && reserved - used <= virtual_window::pdf::sign::TIMESTAMP_ALLOWANCE,
            "reserved {reserved} for {used}"
        );
    }

    let r = check(chain.last(), &opts);
    let by = |f: &str| r.signatures.iter().find(|s| s.field == f).unwrap();
    assert_eq!(
        r.signatures
            .iter()
            .map(|s| s.field.as_str())
            .collect::<Vec<_>>(),
        [
            "buyer-1",
            "buyer-2",
            "seller-seal",
            "centre-seal",
            "archive-timestamp"
        ]
    );
    assert_eq!(by("buyer-1").kind, Kind::Certification);
    assert_eq!(by("buyer-2").kind, Kind::Approval);
    assert_eq!(by("archive-timestamp").kind, Kind::DocumentTimestamp);
    assert_eq!(by("buyer-1").sub_filter, "ETSI.CAdES.detached");
    assert_eq!(by("archive-timestamp").sub_filter, "ETSI.RFC3161");
    // B-B without a time-stamp (time claimed in /M); the others were stamped, then the DSS and
    // the document time-stamp made them B-LTA.
    assert_eq!(by("buyer-1").level, Level::BB);
    assert_eq!(by("buyer-1").signing_time_source, Some("/M"));
    for f in ["buyer-2", "seller-seal", "centre-seal"] {
        assert_eq!(by(f).level, Level::BLTA, "{f}");
        assert_eq!(by(f).signing_time_source, Some("timestamp"));
    }
    assert_eq!(by("buyer-1").revision, 2);
    assert_eq!(by("archive-timestamp").revision, 7);
    assert!(
        by("buyer-1")
            .signer
            .as_ref()
            .unwrap()
            .subject
            .contains("CN=张伟")
    );
    assert!(
        by("seller-seal")
            .signer
            .as_ref()
            .unwrap()
            .subject
            .contains("东莞市云境置业有限公司")
    );
    let json = serde_json::to_value(&r).unwrap();
    for key in ["sha256", "revisions", "signatures", "verdict", "problems"] {
        assert!(json.get(key).is_some(), "{key}");
    }
    let sig = &json["signatures"][1];
    for key in [
        "field",
        "sub_filter",
        "kind",
        "signer",
        "signing_time",
        "signing_time_source",
        "revision",
        "covers_whole_document",
        "integrity",
        "trust",
        "changes_after",
        "level",
        "verdict",
        "problems",
    ] {
        assert!(sig.get(key).is_some(), "{key}");
    }
    assert_eq!(sig["level"], "B-LTA");
    assert_eq!(json["verdict"], "valid");

    // Trust is the verifier's configuration: no anchor or someone else's root is not trusted.
    let none = Options {
        trust: vec![],
        now: OffsetDateTime::now_utc(),
    };
    let r = check(chain.last(), &none);
    assert_eq!(r.verdict, Verdict::Indeterminate);
    assert!(r.signatures.iter().all(|s| s.trust == Trust::Untrusted));
    let other = Chain::build().unwrap();
    let r = check(chain.last(), &other.options());
    assert_eq!(r.verdict, Verdict::Indeterminate);
    assert!(
        r.signatures
            .iter()
            .all(|s| s.integrity == Integrity::Intact)
    );
    // Long after the 30-minute event certificate expired, the stamped signatures still
    // validate at their time-stamp; the unstamped one cannot prove when it was made.
    let later = Options {
        trust: chain.options().trust,
        now: OffsetDateTime::now_utc() + time::Duration::days(2),
    };
    let r = check(chain.last(), &later);
    let by = |f: &str| r.signatures.iter().find(|s| s.field == f).unwrap();
    assert_eq!(by("buyer-1").trust, Trust::Expired);
    assert_eq!(by("buyer-2").trust, Trust::Trusted);
    assert_eq!(r.verdict, Verdict::Indeterminate);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Byte offsets of each signature's /Contents hex string (`<` … `>`), in file order.
fn contents_spans(doc: &[u8]) -> Vec<(usize, usize)> {
    let pdf = virtual_window::pdf::read::Pdf::parse(doc).unwrap();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(p) = virtual_window::pdf::read::find_from(doc, b"/ByteRange", from) {
        from = p + 1;
        let mut lx = virtual_window::pdf::read::Lexer::new(doc, p + 10);
        if let Ok(virtual_window::pdf::read::Object::Array(a)) = lx.object(0)
            && a.len() == 4
            && let (Some(a1), Some(b)) = (a[1].as_int(), a[2].as_int())
            && b > 1000
        {
            out.push((a1 as usize, b as usize));
        }
    }
    drop(pdf);
    out.sort();
    out.dedup();
    out
}

#[test]
fn tampering_of_every_kind_is_caught_in_the_right_field() {
    let Some(chain) = Chain::build() else { return };
    let opts = chain.options();
    let doc = chain.last().to_vec();
    let spans = contents_spans(&doc);
    assert_eq!(spans.len(), 5);

    // One byte in the first revision (inside the page content): every signature is broken.
    let mut t = doc.clone();
    let at = chain.step("contract").len() / 2;
    t[at] ^= 0x01;
    let r = check(&t, &opts);
    assert_eq!(r.verdict, Verdict::Invalid);
    assert!(
        r.signatures
            .iter()
            .all(|s| s.integrity == Integrity::Broken),
        "{r:#?}"
    );
    assert!(codes(&r).contains(&"digest_mismatch"));

    // One byte in the last revision, outside its /Contents: only the last signature breaks.
    let mut t = doc.clone();
    let last_rev_start = chain.step("dss").len();
    let at = (last_rev_start..doc.len())
        .find(|&i| doc[i] == b'/' && !(spans[4].0..spans[4].1).contains(&i))
        .unwrap();
    t[at + 1] ^= 0x20;
    let r = check(&t, &opts);
    assert_eq!(r.verdict, Verdict::Invalid);
    let (last, earlier) = r.signatures.split_last().unwrap();
    assert_eq!(last.integrity, Integrity::Broken);
    assert!(earlier.iter().all(|s| s.integrity == Integrity::Intact));

    // One hex digit of any /Contents: that signature is broken, and every later one (which
    // covers those bytes); the earlier ones stay intact.
    for (i, &(a, _)) in spans.iter().enumerate() {
        let mut t = doc.clone();
        let at = a + 200;
        t[at] = if t[at] == b'0' { b'1' } else { b'0' };
        let r = check(&t, &opts);
        assert_eq!(r.verdict, Verdict::Invalid, "contents {i}");
        for (j, s) in r.signatures.iter().enumerate() {
            let expected = if j < i {
                Integrity::Intact
            } else {
                Integrity::Broken
            };
            assert_eq!(
                s.integrity, expected,
                "contents {i}, signature {j}: {:?}",
                s.problems
            );
        }
        assert!(
            r.signatures[i]
                .problems
                .iter()
                .all(|p| p.code != "digest_mismatch"),
            "the changed signature fails on its own value: {:?}",
            r.signatures[i].problems
        );
    }
    // The zero padding after the CMS is not free space either.
    let mut t = doc.clone();
    t[spans[1].1 - 3] = b'7';
    let r = check(&t, &opts);
    assert_eq!(r.verdict, Verdict::Invalid);
    assert!(codes(&r).contains(&"contents_padding"), "{:?}", codes(&r));

    // Bytes appended after the last signature (no revision, nothing a viewer shows).
    let mut t = doc.clone();
    t.extend_from_slice(b"\n% appended by someone\n1 0 obj << >> endobj\n");
    let r = check(&t, &opts);
    assert_eq!(r.verdict, Verdict::Invalid);
    assert!(codes(&r).contains(&"trailing_data"));
    assert!(!r.signatures.last().unwrap().covers_whole_document);

    // A page added in an incremental update.
    let t = update(&doc, |d, inc| {
        let pages_id = d
            .catalog()
            .unwrap()
            .get(b"Pages")
            .unwrap()
            .as_reference()
            .unwrap();
        let first = *d.get_pages().values().next().unwrap();
        let mut page = d.get_dictionary(first).unwrap().clone();
        page.remove(b"Annots");
        let new_page = inc.new_document.add_object(Object::Dictionary(page));
        inc.opt_clone_object_to_new_document(pages_id).unwrap();
        let pages = inc.new_document.get_dictionary_mut(pages_id).unwrap();
        let mut kids = pages.get(b"Kids").unwrap().as_array().unwrap().clone();
        kids.push(Object::Reference(new_page));
        let count = kids.len() as i64;
        pages.set("Kids", Object::Array(kids));
        pages.set("Count", Object::Integer(count));
    });
    let r = check(&t, &opts);
    assert_eq!(r.verdict, Verdict::Invalid);
    assert!(
        r.signatures
            .iter()
            .all(|s| s.integrity == Integrity::Intact)
    );
    assert!(
        r.signatures
            .iter()
            .all(|s| s.changes_after == Changes::Disallowed)
    );

    // An annotation added on a page.
    let t = with_annotation(&doc);
    let r = check(&t, &opts);
    assert_eq!(r.verdict, Verdict::Invalid);
    assert!(
        r.signatures
            .iter()
            .all(|s| s.changes_after == Changes::Disallowed)
    );
    assert!(codes(&r).contains(&"annotation_added"), "{:?}", codes(&r));

    // Page content replaced in an update (an object of the signed revision overwritten).
    let t = update(&doc, |d, inc| {
        let first = *d.get_pages().values().next().unwrap();
        let content = d
            .get_dictionary(first)
            .unwrap()
            .get(b"Contents")
            .unwrap()
            .clone();
        let id = match content {
            Object::Reference(id) => id,
            Object::Array(a) => a[0].as_reference().unwrap(),
            _ => panic!("contents"),
        };
        inc.new_document.objects.insert(
            id,
            Object::Stream(Stream::new(Dictionary::new(), b"BT ET".to_vec())),
        );
    });
    let r = check(&t, &opts);
    assert_eq!(r.verdict, Verdict::Invalid);
    assert!(codes(&r).contains(&"object_changed"), "{:?}", codes(&r));

    // A signature copied into another document: the same CMS over other bytes (signed a minute
    // later: the same contract signed in the same second would be the same bytes).
    let other = Chain::build_at(
        KeyAlgorithm::EcdsaP256,
        Some(2),
        OffsetDateTime::now_utc() + time::Duration::minutes(1),
    )
    .unwrap();
    let theirs = other.step("buyer-1").to_vec();
    let ours = chain.step("buyer-1");
    let (oa, ob) = contents_spans(ours)[0];
    let (ta, tb) = contents_spans(&theirs)[0];
    // Our CMS (without its padding) put into their reservation, padded with zeros.
    let ours_hex = &ours[oa + 1..ob - 1];
    let der: Vec<u8> = ours_hex
        .chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
        .collect();
    let used = virtual_window::pki::signed::element_len(&der).unwrap() * 2;
    assert!(used <= tb - ta - 2, "fits the other reservation");
    let mut forged = theirs.clone();
    forged[ta + 1..ta + 1 + used].copy_from_slice(&ours_hex[..used]);
    forged[ta + 1 + used..tb - 1].fill(b'0');
    let r = check(&forged, &other.options());
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.signatures[0].integrity, Integrity::Broken);
    assert!(codes(&r).contains(&"digest_mismatch"));
}

/// Applies `f` to an incremental update of `doc` made with lopdf (another writer than ours).
fn update(doc: &[u8], f: impl FnOnce(&Document, &mut IncrementalDocument)) -> Vec<u8> {
    let d = Document::load_mem(doc).unwrap();
    let mut inc = IncrementalDocument::create_from(doc.to_vec(), d.clone());
    f(&d, &mut inc);
    let mut out = Vec::new();
    inc.save_to(&mut out).unwrap();
    assert!(out.starts_with(doc));
    out
}

/// A FreeText annotation painted over the first page (the "evil annotation").
fn with_annotation(doc: &[u8]) -> Vec<u8> {
    update(doc, |d, inc| {
        let first = *d.get_pages().values().next().unwrap();
        let mut annot = Dictionary::new();
        annot.set("Type", Object::Name(b"Annot".to_vec()));
        annot.set("Subtype", Object::Name(b"FreeText".to_vec()));
        annot.set(
            "Rect",
            Object::Array(vec![100.into(), 500.into(), 400.into(), 560.into()]),
        );
        annot.set("Contents", Object::string_literal("总价款：人民币壹元整"));
        annot.set("DA", Object::string_literal("/Helv 12 Tf 0 g"));
        let id = inc.new_document.add_object(Object::Dictionary(annot));
        inc.opt_clone_object_to_new_document(first).unwrap();
        let page = inc.new_document.get_dictionary_mut(first).unwrap();
        let mut annots = page
            .get(b"Annots")
            .and_then(Object::as_array)
            .cloned()
            .unwrap_or_default();
        annots.push(Object::Reference(id));
        page.set("Annots", Object::Array(annots));
    })
}

/// The signature dictionary of `field` rewritten by `f` in an update (forgery attempts).
fn forge_signature(doc: &[u8], field: &str, f: impl FnOnce(&mut Dictionary, usize)) -> Vec<u8> {
    update(doc, |d, inc| {
        let sig_id = d
            .objects
            .values()
            .filter_map(|o| o.as_dict().ok())
            .find(|o| o.get(b"T").ok().and_then(|t| t.as_str().ok()) == Some(field.as_bytes()))
            .and_then(|w| w.get(b"V").ok()?.as_reference().ok())
            .expect("signed field");
        let mut sig = d.get_dictionary(sig_id).unwrap().clone();
        f(&mut sig, doc.len());
        inc.new_document
            .objects
            .insert(sig_id, Object::Dictionary(sig));
    })
}

#[test]
fn universal_signature_forgery_variants_never_pass() {
    let Some(chain) = Chain::build() else { return };
    let opts = chain.options();
    let doc = chain.step("buyer-2");
    type Forge = Box<dyn Fn(&mut Dictionary, usize)>;
    let variants: Vec<(&str, Forge)> = vec![
        (
            "contents missing",
            Box::new(|s, _| drop(s.remove(b"Contents"))),
        ),
        (
            "contents empty",
            Box::new(|s, _| {
                s.set(
                    "Contents",
                    Object::String(vec![], lopdf::StringFormat::Hexadecimal),
                )
            }),
        ),
        (
            "contents null",
            Box::new(|s, _| s.set("Contents", Object::Null)),
        ),
        (
            "contents zero bytes",
            Box::new(|s, _| {
                s.set(
                    "Contents",
                    Object::String(vec![0; 64], lopdf::StringFormat::Hexadecimal),
                )
            }),
        ),
        (
            "byte range missing",
            Box::new(|s, _| drop(s.remove(b"ByteRange"))),
        ),
        (
            "byte range empty",
            Box::new(|s, _| s.set("ByteRange", Object::Array(vec![]))),
        ),
        (
            "byte range negative",
            Box::new(|s, len| {
                s.set(
                    "ByteRange",
                    Object::Array(vec![0.into(), (-1).into(), 10.into(), (len as i64).into()]),
                )
            }),
        ),
        (
            "byte range out of the file",
            Box::new(|s, len| {
                s.set(
                    "ByteRange",
                    Object::Array(vec![
                        0.into(),
                        10.into(),
                        20.into(),
                        (len as i64 * 2).into(),
                    ]),
                )
            }),
        ),
        (
            "byte range not excluding the contents",
            Box::new(|s, len| {
                s.set(
                    "ByteRange",
                    Object::Array(vec![
                        0.into(),
                        100.into(),
                        200.into(),
                        (len as i64 - 200).into(),
                    ]),
                )
            }),
        ),
        (
            "byte range of reals",
            Box::new(|s, _| {
                s.set(
                    "ByteRange",
                    Object::Array(vec![0.5.into(), 1.5.into(), 2.5.into(), 3.5.into()]),
                )
            }),
        ),
    ];
    for (what, f) in variants {
        let forged = forge_signature(doc, "buyer-2", f);
        let r = check(&forged, &opts);
        assert_ne!(r.verdict, Verdict::Valid, "{what}");
        let s = r.signatures.iter().find(|s| s.field == "buyer-2").unwrap();
        assert_eq!(s.integrity, Integrity::Broken, "{what}: {s:#?}");
        assert_eq!(s.verdict, Verdict::Invalid, "{what}");
    }
}

#[test]
fn certification_attacks_are_refused() {
    let Some(chain) = Chain::build() else { return };
    let opts = chain.options();
    let certified = chain.step("buyer-1");

    // Evil annotation: the certified contract (P=2) with an annotation over the price.
    let r = check(&with_annotation(certified), &opts);
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.signatures[0].kind, Kind::Certification);
    assert_eq!(r.signatures[0].changes_after, Changes::Disallowed);

    // Sneaky signature: a new, visible signature field added after certification and signed
    // with a perfectly valid certificate, its appearance painting over the page.
    let with_field = update(certified, |d, inc| {
        let first = *d.get_pages().values().next().unwrap();
        let mut ap = Stream::new(
            Dictionary::from_iter(vec![
                ("Type", Object::Name(b"XObject".to_vec())),
                ("Subtype", Object::Name(b"Form".to_vec())),
                (
                    "BBox",
                    Object::Array(vec![0.into(), 0.into(), 595.into(), 842.into()]),
                ),
            ]),
            b"1 g 0 0 595 842 re f".to_vec(),
        );
        ap.dict
            .set("Length", Object::Integer(ap.content.len() as i64));
        let ap_id = inc.new_document.add_object(Object::Stream(ap));
        let mut widget = Dictionary::new();
        widget.set("Type", Object::Name(b"Annot".to_vec()));
        widget.set("Subtype", Object::Name(b"Widget".to_vec()));
        widget.set("FT", Object::Name(b"Sig".to_vec()));
        widget.set("T", Object::string_literal("sneaky"));
        widget.set("F", Object::Integer(4));
        widget.set(
            "Rect",
            Object::Array(vec![0.into(), 0.into(), 595.into(), 842.into()]),
        );
        widget.set("P", Object::Reference(first));
        widget.set(
            "AP",
            Object::Dictionary(Dictionary::from_iter(vec![("N", Object::Reference(ap_id))])),
        );
        let widget_id = inc.new_document.add_object(Object::Dictionary(widget));
        inc.opt_clone_object_to_new_document(first).unwrap();
        let page = inc.new_document.get_dictionary_mut(first).unwrap();
        let mut annots = page
            .get(b"Annots")
            .and_then(Object::as_array)
            .cloned()
            .unwrap_or_default();
        annots.push(Object::Reference(widget_id));
        page.set("Annots", Object::Array(annots));
        // The contract's form is a direct dictionary in the catalog.
        let catalog_id = d.trailer.get(b"Root").unwrap().as_reference().unwrap();
        inc.opt_clone_object_to_new_document(catalog_id).unwrap();
        let catalog = inc.new_document.get_dictionary_mut(catalog_id).unwrap();
        let Ok(Object::Dictionary(form)) = catalog.get_mut(b"AcroForm") else {
            panic!("no direct AcroForm");
        };
        let mut fields = form.get(b"Fields").unwrap().as_array().unwrap().clone();
        fields.push(Object::Reference(widget_id));
        form.set("Fields", Object::Array(fields));
    });
    let (cert, key) = chain.issue(
        "people-ca",
        "event",
        &Subject::Person {
            name: "王五".into(),
            pseudonym: "PSN-X".into(),
        },
        KeyAlgorithm::EcdsaP256,
    );
    let sneaky = sign(
        &with_field,
        &SignOptions {
            field: "sneaky",
            signer_cert: &cert.der,
            chain: vec![chain.h.authority("people-ca").unwrap().cert_der.clone()],
            key: &key,
            time: chain.now,
            reason: None,
            reserve: 8192,
            timestamper: None,
            certify: None,
            visible: None,
        },
    )
    .unwrap();
    let r = check(&sneaky, &opts);
    assert_eq!(r.verdict, Verdict::Invalid, "{r:#?}");
    let cert_sig = &r.signatures[0];
    assert_eq!(cert_sig.kind, Kind::Certification);
    assert_eq!(cert_sig.changes_after, Changes::Disallowed);
    assert!(
        codes(&r).contains(&"signature_field_added"),
        "{:?}",
        codes(&r)
    );
    let attacker = r.signatures.iter().find(|s| s.field == "sneaky").unwrap();
    assert_eq!(
        attacker.integrity,
        Integrity::Intact,
        "the attacker's own signature is sound"
    );

    // P=1: no change at all after certification, not even another signature in a prepared field.
    let strict = Chain::build_with(KeyAlgorithm::EcdsaP256, Some(1)).unwrap();
    let r = check(strict.step("buyer-2"), &strict.options());
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.signatures[0].changes_after, Changes::Disallowed);
    // ... except validation data and a document time-stamp (PAdES LTV).
    let dss = add_dss(
        strict.step("buyer-1"),
        std::slice::from_ref(&strict.h.root.cert_der),
        &[],
    )
    .unwrap();
    let lta = add_document_timestamp(&dss, "archive", &strict.timestamper(), 16384).unwrap();
    let r = check(&lta, &strict.options());
    assert_eq!(r.verdict, Verdict::Valid, "{r:#?}");
    assert_eq!(r.signatures[0].changes_after, Changes::Permitted);
}

#[test]
fn rsa_signatures_verify_as_well() {
    let Some(chain) = Chain::build_with(KeyAlgorithm::Rsa2048, Some(2)) else {
        return;
    };
    let r = check(chain.last(), &chain.options());
    assert_eq!(r.verdict, Verdict::Valid, "{r:#?}");
    assert_eq!(r.signatures.len(), 5);
}

#[test]
fn files_signed_by_pyhanko_verify_here() {
    let Some(chain) = Chain::build() else { return };
    let Some(pyhanko) = crate::pdf::signing::pyhanko() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = chain.issue(
        "people-ca",
        "event",
        &Subject::Person {
            name: "张伟".into(),
            pseudonym: "PSN-PY".into(),
        },
        KeyAlgorithm::EcdsaP256,
    );
    let key_pem = dir.path().join("key.pem");
    std::fs::write(&key_pem, key.pkey().private_key_to_pem_pkcs8().unwrap()).unwrap();
    let cert_pem = dir.path().join("cert.pem");
    std::fs::write(&cert_pem, cert.pem()).unwrap();
    let chain_pem = dir.path().join("chain.pem");
    std::fs::write(
        &chain_pem,
        chain.h.authority("people-ca").unwrap().cert_pem(),
    )
    .unwrap();
    let input = dir.path().join("in.pdf");
    std::fs::write(&input, chain.step("contract")).unwrap();
    for (field, pades, out) in [
        ("buyer-1", true, "pades.pdf"),
        ("buyer-1", false, "pkcs7.pdf"),
        ("PyHankoNew", true, "newfield.pdf"),
    ] {
        let output = dir.path().join(out);
        let mut c = std::process::Command::new(&pyhanko);
        c.args(["sign", "addsig", "--field", field]);
        if pades {
            c.arg("--use-pades");
        }
        c.args(["pemder", "--no-pass", "--key"])
            .arg(&key_pem)
            .arg("--cert")
            .arg(&cert_pem)
            .arg("--chain")
            .arg(&chain_pem)
            .arg(&input)
            .arg(&output);
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let signed = std::fs::read(&output).unwrap();
        let r = check(&signed, &chain.options());
        assert_eq!(r.verdict, Verdict::Valid, "{out}: {r:#?}");
        let s = &r.signatures[0];
        assert_eq!(s.field, field);
        assert_eq!(
            s.sub_filter,
            if pades {
                "ETSI.CAdES.detached"
            } else {
                "adbe.pkcs7.detached"
            }
        );
        assert_eq!(s.level, if pades { Level::BB } else { Level::None });
        assert!(s.covers_whole_document);
    }
}

#[test]
fn the_outside_corpus_is_judged_as_its_readme_says() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if !dir.exists() {
        assert!(
            std::env::var("VW_REQUIRE_CORPUS").as_deref() != Ok("1"),
            "../shared/corpus is missing"
        );
        return;
    }
    let opts = Options {
        trust: vec![],
        now: OffsetDateTime::now_utc(),
    };
    let mut seen = 0;
    // Beyond the README's classes, each file's judgement is kept in a snapshot so that a change
    // to the verifier cannot move any verdict, signature or problem code unnoticed.
    let mut judged = String::new();
    for folder in ["good", "bad", "changed", "hostile"] {
        let mut files: Vec<_> = std::fs::read_dir(dir.join(folder))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{folder} is empty");
        for path in files {
            let name = format!("{folder}/{}", path.file_name().unwrap().to_string_lossy());
            let bytes = std::fs::read(&path).unwrap();
            let started = Instant::now();
            let result = verify(&bytes, &opts);
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{name} took too long"
            );
            seen += 1;
            judged.push_str(&judgement(&name, &result));
            if folder == "hostile" {
                if let Ok(r) = result {
                    assert_ne!(r.verdict, Verdict::Valid, "{name}");
                }
                continue;
            }
            let r = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_ne!(
                r.verdict,
                Verdict::Valid,
                "{name}: the corpus roots are not trusted"
            );
            assert!(!r.signatures.is_empty(), "{name}: no signature found");
            let intact =
                |s: &virtual_window::pdf::verify::SignatureReport| s.integrity == Integrity::Intact;
            match folder {
                "good" => {
                    for s in &r.signatures {
                        assert!(intact(s), "{name} {}: {:?}", s.field, s.problems);
                        assert_ne!(
                            s.changes_after,
                            Changes::Disallowed,
                            "{name} {}: {:?}",
                            s.field,
                            s.problems
                        );
                    }
                }
                "bad" => assert!(
                    r.signatures
                        .iter()
                        .any(|s| !intact(s) || s.changes_after == Changes::Disallowed),
                    "{name}: {r:#?}"
                ),
                "changed" => {
                    assert!(r.signatures.iter().all(intact), "{name}");
                    assert!(
                        r.signatures
                            .iter()
                            .any(|s| s.changes_after != Changes::None),
                        "{name}"
                    );
                }
                _ => unreachable!(),
            }
        }
    }
    assert!(seen >= 40, "read {seen} files");
    let path = "tests/snapshots/corpus-verdicts.txt";
    if std::env::var("UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        std::fs::write(path, &judged).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    for (want, got) in expected.lines().zip(judged.lines()) {
        assert_eq!(want, got, "a corpus file's judgement changed");
    }
    assert_eq!(expected, judged, "the corpus judgements changed");
}

/// One line per file and per signature: verdict, kind, integrity, changes and problem codes.
fn judgement(name: &str, result: &Result<Report, virtual_window::pdf::verify::NotPdf>) -> String {
    let r = match result {
        Err(_) => return format!("{name}: not a PDF\n"),
        Ok(r) => r,
    };
    let mut codes: Vec<&str> = r.problems.iter().map(|p| p.code).collect();
    codes.sort_unstable();
    let mut out = format!("{name}: {:?} {codes:?}\n", r.verdict);
    for s in &r.signatures {
        let mut codes: Vec<&str> = s.problems.iter().map(|p| p.code).collect();
        codes.sort_unstable();
        out.push_str(&format!(
            "  {:?} {:?} {:?} {:?} {codes:?}\n",
            s.field, s.kind, s.integrity, s.changes_after
        ));
    }
    out
}

/// A tiny deterministic generator: the mutations are the same on every run.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Property test over arbitrary mutations of a signed contract: the verifier never panics,
/// finishes quickly, and never calls a changed file valid. The number of cases can be raised
/// with VW_FUZZ_CASES (scripts/test runs the default).
#[test]
fn arbitrary_mutations_never_panic_and_never_pass() {
    let Some(chain) = Chain::build() else { return };
    let opts = chain.options();
    let doc = chain.last().to_vec();
    let spans = contents_spans(&doc);
    let cases: usize = std::env::var("VW_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let mut rng = XorShift(0x5eed_2026_1128);
    let tokens: [&[u8]; 10] = [
        b"<<",
        b">>",
        b"[",
        b"]",
        b" 0 R",
        b"/ByteRange",
        b"obj",
        b"endobj",
        b"stream",
        b"99999999999",
    ];
    for case in 0..cases {
        let mut t = doc.clone();
        let ops = 1 + rng.below(4);
        for _ in 0..ops {
            let at = rng.below(t.len());
            match rng.below(6) {
                0 => t[at] = rng.next() as u8,
                1 => t[at] ^= 1 << rng.below(8),
                2 => {
                    let tok = tokens[rng.below(tokens.len())];
                    t.splice(at..at, tok.iter().copied());
                }
                3 => {
                    let n = rng.below(64).min(t.len() - at);
                    t.drain(at..at + n);
                }
                4 => t.truncate(at.max(1)),
                _ => {
                    // Copy a random slice elsewhere (duplicated objects, xref confusion).
                    let from = rng.below(t.len());
                    let n = rng.below(256).min(t.len() - from);
                    let piece: Vec<u8> = t[from..from + n].to_vec();
                    let to = rng.below(t.len());
                    t.splice(to..to, piece);
                }
            }
        }
        if t == doc {
            continue;
        }
        // Changing a hex digit's case inside a /Contents keeps the same bytes: not a change.
        let same_value = t.len() == doc.len()
            && t.iter().zip(&doc).enumerate().all(|(i, (x, y))| {
                x == y
                    || spans.iter().any(|&(a, b)| (a..b).contains(&i)) && x.eq_ignore_ascii_case(y)
            });
        let started = Instant::now();
        let result = std::panic::catch_unwind(|| verify(&t, &opts));
        let r = result.unwrap_or_else(|_| panic!("case {case} panicked"));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "case {case} too slow"
        );
        if let Ok(r) = r
            && !same_value
            && r.verdict == Verdict::Valid
        {
            let first = t
                .iter()
                .zip(&doc)
                .position(|(a, b)| a != b)
                .unwrap_or(t.len().min(doc.len()));
            let show = |b: &[u8]| {
                String::from_utf8_lossy(&b[first.saturating_sub(40)..(first + 80).min(b.len())])
                    .into_owned()
            };
            panic!(
                "case {case} passed after a change: {} → {} bytes, first difference at {first}: {:?} / {:?}",
                doc.len(),
                t.len(),
                show(&doc),
                show(&t)
            );
        }
    }
}

#[test]
fn hostile_structures_are_bounded() {
    let opts = Options {
        trust: vec![],
        now: OffsetDateTime::now_utc(),
    };
    // A /Prev chain that loops, nesting a hundred thousand deep, a decompression bomb in an
    // object stream, and an xref section that claims billions of entries.
    let looping = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\nxref\n0 2\n0000000000 65535 f \n0000000009 00000 n \ntrailer << /Size 2 /Root 1 0 R /Prev 47 >>\nstartxref\n47\n%%EOF\n";
    let deep = {
        let mut v = b"%PDF-1.7\n1 0 obj ".to_vec();
        v.extend(std::iter::repeat_n(b'[', 100_000));
        v.extend_from_slice(b"\nendobj\nxref\n0 2\n0000000000 65535 f \n0000000009 00000 n \ntrailer << /Size 2 /Root 1 0 R >>\nstartxref\n");
        let xref = v.windows(4).position(|w| w == b"xref").unwrap();
        v.extend_from_slice(format!("{xref}\n%%EOF\n").as_bytes());
        v
    };
    // The xref stream itself inflates to 256 MiB of blanks from a few hundred kilobytes.
    let bomb = {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        let block = vec![b' '; 1 << 20];
        for _ in 0..256 {
            std::io::Write::write_all(&mut z, &block).unwrap();
        }
        let z = z.finish().unwrap();
        let mut v = b"%PDF-1.7\n".to_vec();
        let obj = v.len();
        v.extend_from_slice(
            format!(
                "5 0 obj << /Type /XRef /W [1 1 1] /Size 6 /Filter /FlateDecode /Length {} >>\nstream\n",
                z.len()
            )
            .as_bytes(),
        );
        v.extend_from_slice(&z);
        v.extend_from_slice(format!("\nendstream\nendobj\nstartxref\n{obj}\n%%EOF\n").as_bytes());
        v
    };
    let huge_xref = b"%PDF-1.7\nxref\n0 4000000000\ntrailer << >>\nstartxref\n9\n%%EOF\n".to_vec();
    for (name, bytes) in [
        ("loop", looping.to_vec()),
        ("deep", deep),
        ("bomb", bomb),
        ("huge xref", huge_xref),
    ] {
        let started = Instant::now();
        if let Ok(r) = verify(&bytes, &opts) {
            assert_ne!(r.verdict, Verdict::Valid, "{name}");
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{name}");
    }
}

mod service {
    use super::*;
    use crate::helpers::{Db, spawn_app, spawn_app_with};
    use axum::body::Body;
    use axum::http::{Request, StatusCode};

    fn upload(bytes: Vec<u8>, content_type: &str) -> Request<Body> {
        Request::builder()
            .method("POST")
            .uri("/api/v1/verify")
            .header("content-type", content_type)
            .body(Body::from(bytes))
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn anyone_can_verify_a_pdf_against_this_installations_root() {
        let Some(app) = spawn_app(Db::Sqlite).await else {
            return;
        };
        let font = cjk_font();
        // A contract sealed with a certificate from the service's own hierarchy.
        let pki = &app.services.pki;
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let orgs = pki.hierarchy.authority("organisations-ca").unwrap();
        let cert = ca::issue(
            &pki.profiles,
            orgs,
            "organisation-seal",
            &Subject::OrganisationSeal {
                organisation: "东莞市云境置业有限公司".into(),
                uscc: "91441900MA4W0L7N36".into(),
                seal_name: "合同专用章".into(),
                seal_image_sha256: None,
            },
            &key,
            OffsetDateTime::now_utc(),
            &pki.crl_base,
        )
        .unwrap();
        let contract = render_contract(
            &font,
            CONTRACT_TEMPLATE,
            &crate::pdf::contract::sample(),
            "https://window.example",
            "2026-11-28T10:00:00+08:00",
        )
        .unwrap()
        .pdf;
        let sealed = sign(
            &contract,
            &SignOptions {
                field: "seller-seal",
                signer_cert: &cert.der,
                chain: vec![orgs.cert_der.clone()],
                key: &key,
                time: OffsetDateTime::now_utc(),
                reason: None,
                reserve: 8192,
                timestamper: None,
                certify: None,
                visible: Some((
                    &font,
                    Visible::Seal {
                        organisation: "东莞市云境置业有限公司".into(),
                        purpose: "合同专用章".into(),
                    },
                )),
            },
        )
        .unwrap();
        let r = app.send(upload(sealed.clone(), "application/pdf")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["verdict"], "valid", "{}", r.text);
        assert_eq!(r.body["signatures"][0]["field"], "seller-seal");
        assert_eq!(r.body["signatures"][0]["trust"], "trusted");

        // Changed after sealing: invalid, with the reason.
        let mut changed = sealed.clone();
        let at = contract.len() / 3;
        changed[at] ^= 0x04;
        let r = app.send(upload(changed, "application/pdf")).await;
        assert_eq!(r.body["verdict"], "invalid");
        assert_eq!(r.body["signatures"][0]["integrity"], "broken");

        // Signed under someone else's root: intact but not trusted here.
        if let Some(foreign) = Chain::build() {
            let r = app
                .send(upload(foreign.last().to_vec(), "application/pdf"))
                .await;
            assert_eq!(r.body["verdict"], "indeterminate");
            assert_eq!(r.body["signatures"][0]["trust"], "untrusted");
        }

        // Not a PDF, the wrong media type: clear errors, nothing else.
        let r = app.send(upload(b"hello".to_vec(), "application/pdf")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.code(), "not_a_pdf");
        let r = app.send(upload(sealed, "application/json")).await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(r.code(), "unsupported_media_type");

        let page = app.get("/verify", None).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.text.contains("multipart/form-data"));
        assert!(page.text.contains("核验"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_upload_over_the_limit_is_refused_before_it_is_read() {
        let Some(app) = spawn_app_with(Db::Sqlite, |c| c.http.body_limit_bytes = 64 * 1024).await
        else {
            return;
        };
        let r = app
            .send(upload(vec![b'%'; 200 * 1024], "application/pdf"))
            .await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(r.code(), "payload_too_large");
    }
}

#[test]
fn the_verify_command_exits_with_the_verdict() {
    let Some(chain) = Chain::build() else { return };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, chain.root_pem()).unwrap();
    let file = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let good = file("good.pdf", chain.last());
    let mut t = chain.last().to_vec();
    let at = t.len() / 2;
    t[at] ^= 1;
    let bad = file("bad.pdf", &t);
    let garbage = file("garbage.pdf", b"not a pdf at all");
    let run = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_virtual-window"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("verify")
            .args(args)
            .output()
            .unwrap()
    };
    let trust = std::ffi::OsStr::new("--trust");
    let out = run(&[trust, root.as_os_str(), good.as_os_str()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("有效 (valid)"), "{text}");
    let out = run(&[trust, root.as_os_str(), "--json".as_ref(), good.as_os_str()]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verdict"], "valid");
    assert_eq!(json["signatures"].as_array().unwrap().len(), 5);
    assert_eq!(
        run(&[trust, root.as_os_str(), bad.as_os_str()])
            .status
            .code(),
        Some(1)
    );
    // Nothing trusted (no --trust, no PKI in the data directory): indeterminate.
    assert_eq!(run(&[good.as_os_str()]).status.code(), Some(2));
    assert_eq!(run(&[garbage.as_os_str()]).status.code(), Some(3));
    assert_eq!(
        run(&[dir.path().join("missing.pdf").as_os_str()])
            .status
            .code(),
        Some(3)
    );
}

/// Our signer appends to files written by other tools: an object-stream/xref-stream file from
/// qpdf, and a file pyHanko signed first. Every signature stays valid for us and for pyHanko.
#[test]
fn signing_appends_to_files_from_other_writers() {
    let Some(chain) = Chain::build() else { return };
    let Some(pyhanko) = crate::pdf::signing::pyhanko() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, chain.root_pem()).unwrap();
    let plain = dir.path().join("plain.pdf");
    std::fs::write(&plain, chain.step("contract")).unwrap();
    let packed = dir.path().join("packed.pdf");
    let q = std::process::Command::new("qpdf")
        .args(["--object-streams=generate"])
        .arg(&plain)
        .arg(&packed)
        .output()
        .unwrap();
    assert!(q.status.success(), "{}", String::from_utf8_lossy(&q.stderr));
    let packed = std::fs::read(&packed).unwrap();
    assert!(
        virtual_window::pdf::read::Pdf::parse(&packed)
            .unwrap()
            .sections[0]
            .is_stream,
        "qpdf wrote an xref stream"
    );

    let (cert, key) = chain.issue(
        "people-ca",
        "event",
        &Subject::Person {
            name: "张伟".into(),
            pseudonym: "PSN-Q".into(),
        },
        KeyAlgorithm::EcdsaP256,
    );
    let people = chain.h.authority("people-ca").unwrap().cert_der.clone();
    let sign_into = |doc: &[u8], field: &str| {
        let out = sign(
            doc,
            &SignOptions {
                field,
                signer_cert: &cert.der,
                chain: vec![people.clone()],
                key: &key,
                time: chain.now,
                reason: None,
                reserve: 8192,
                timestamper: None,
                certify: None,
                visible: Some((
                    &chain.font,
                    Visible::Signature {
                        name: "张伟".into(),
                        time: "2026-11-28 10:00".into(),
                    },
                )),
            },
        )
        .unwrap();
        assert!(out.starts_with(doc));
        out
    };
    let once = sign_into(&packed, "buyer-1");
    let twice = sign_into(&once, "buyer-2");
    // The update after an xref stream is an xref stream too.
    let parsed = virtual_window::pdf::read::Pdf::parse(&twice).unwrap();
    assert!(parsed.sections.iter().all(|s| s.is_stream));

    // pyHanko signs first (a new invisible field), then we fill a prepared one.
    let key_pem = dir.path().join("key.pem");
    std::fs::write(&key_pem, key.pkey().private_key_to_pem_pkcs8().unwrap()).unwrap();
    let cert_pem = dir.path().join("cert.pem");
    std::fs::write(&cert_pem, cert.pem()).unwrap();
    let chain_pem = dir.path().join("chain.pem");
    std::fs::write(
        &chain_pem,
        chain.h.authority("people-ca").unwrap().cert_pem(),
    )
    .unwrap();
    let by_pyhanko = dir.path().join("by-pyhanko.pdf");
    let o = std::process::Command::new(&pyhanko)
        .args([
            "sign",
            "addsig",
            "--field",
            "Witness",
            "--use-pades",
            "pemder",
            "--no-pass",
        ])
        .arg("--key")
        .arg(&key_pem)
        .arg("--cert")
        .arg(&cert_pem)
        .arg("--chain")
        .arg(&chain_pem)
        .arg(&plain)
        .arg(&by_pyhanko)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let after = sign_into(&std::fs::read(&by_pyhanko).unwrap(), "buyer-1");

    for (name, doc, count) in [("packed", &twice, 2), ("after-pyhanko", &after, 2)] {
        let r = check(doc, &chain.options());
        assert_eq!(r.verdict, Verdict::Valid, "{name}: {r:#?}");
        assert_eq!(r.signatures.len(), count);
        let path = dir.path().join(format!("{name}.pdf"));
        std::fs::write(&path, doc).unwrap();
        let out = std::process::Command::new(&pyhanko)
            .args(["sign", "validate", "--trust"])
            .arg(&root)
            .args(["--trust-replace", "--no-revocation-check"])
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{name}: {text}");
        assert_eq!(
            text.matches(":INTACT:TRUSTED").count(),
            count,
            "{name}: {text}"
        );
        let q = std::process::Command::new("qpdf")
            .arg("--check")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            q.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&q.stdout)
        );
    }
}
