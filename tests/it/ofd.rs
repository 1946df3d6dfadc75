//! 国密: SM2 certificates checked by OpenSSL link by link, the registration certificate as a
//! sealed OFD package checked by the independent checker in ../shared/gm, our verifier on our
//! package, on another implementation's sample, and on tampered and hostile copies.

#[path = "../../benches/support/gm.rs"]
mod gm;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use virtual_window::ofd::package::Package;
use virtual_window::ofd::verify::verify;
use virtual_window::ofd::write::{self, Stamp};

use virtual_window::pdf::verify::{Integrity, Trust, Verdict};
use virtual_window::pki::gm::GmHierarchy;
use virtual_window::pki::ses;

fn shared(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/gm")
        .join(p)
}

struct Made {
    h: GmHierarchy,
    ofd: Vec<u8>,
}

fn make() -> Made {
    make_with(false)
}

/// `revoke_holder`: the centre CA's CRL in the package lists the holder's certificate, revoked a
/// minute before the signing time.
fn make_with(revoke_holder: bool) -> Made {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let gm::CentreSeal {
        h,
        holder,
        seal,
        crls,
    } = gm::centre_seal(now, |holder| {
        if !revoke_holder {
            return vec![];
        }
        let (_, c) = x509_parser::parse_x509_certificate(&holder.cert_der).unwrap();
        vec![virtual_window::pki::gm::GmRevoked {
            serial: c.raw_serial().to_vec(),
            at: now - time::Duration::minutes(1),
        }]
    });
    let content = gm::certificate_content();
    let files = write::package_files(&content, "0123456789abcdef0123456789abcdef", now);
    let ofd = write::seal_package(
        files,
        &Stamp {
            seal: &seal,
            signer: &holder,
            chain: vec![h.centre_ca.cert_der.clone()],
            crls: crls.clone(),
            tsa: Some(&h.tsa),
        },
        now,
    )
    .unwrap();
    Made { h, ofd }
}

fn root(m: &Made) -> Vec<openssl::x509::X509> {
    vec![openssl::x509::X509::from_der(&m.h.root.cert_der).unwrap()]
}

fn rewrite(ofd: &[u8], f: impl FnOnce(&mut BTreeMap<String, Vec<u8>>)) -> Vec<u8> {
    let mut files = Package::open(ofd).unwrap().into_files();
    f(&mut files);
    write::zip_files(&files).unwrap()
}

fn codes(r: &virtual_window::pdf::verify::Report) -> Vec<&'static str> {
    r.problems
        .iter()
        .chain(r.signatures.iter().flat_map(|s| s.problems.iter()))
        .map(|p| p.code)
        .collect()
}

#[test]
fn our_sealed_certificate_verifies_here_and_in_the_independent_checker() {
    let m = make();
    let r = verify(&m.ofd, &root(&m), OffsetDateTime::now_utc()).unwrap();
    assert_eq!(r.verdict, Verdict::Valid, "{:?}", codes(&r));
    assert_eq!(r.signatures.len(), 1);
    let s = &r.signatures[0];
    assert_eq!(s.sub_filter, "GB/T 38540");
    assert_eq!(
        serde_json::to_value(s).unwrap()["kind"],
        serde_json::json!("seal")
    );
    assert_eq!(s.integrity, Integrity::Intact);
    assert_eq!(s.trust, Trust::Trusted);
    assert!(s.covers_whole_document);
    // Time-stamped by the SM2 time-stamping unit: the trusted signing time comes from it; with
    // the CRLs in the package, revocation is known too.
    assert_eq!(s.signing_time_source, Some("timestamp"));
    assert_eq!(serde_json::to_value(s).unwrap()["level"], "B-LT");

    // The holder's certificate on the centre CA's CRL, revoked before the signing time.
    let revoked = make_with(true);
    let r = verify(&revoked.ofd, &root(&revoked), OffsetDateTime::now_utc()).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.signatures[0].trust, Trust::Revoked);
    assert!(
        codes(&r).contains(&"certificate_revoked"),
        "{:?}",
        codes(&r)
    );

    // Without the root: intact but not trusted.
    let r = verify(&m.ofd, &[], OffsetDateTime::now_utc()).unwrap();
    assert_eq!(r.signatures[0].integrity, Integrity::Intact);
    assert_eq!(r.signatures[0].trust, Trust::Untrusted);
    assert_ne!(r.verdict, Verdict::Valid);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("certificate.ofd");
    std::fs::write(&path, &m.ofd).unwrap();
    let out = std::process::Command::new("python3")
        .arg(shared("ofd_ses_check.py"))
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("all checks passed"), "{text}");
}

#[test]
fn every_kind_of_tampering_fails_with_its_code() {
    let m = make();
    let trust = root(&m);
    let now = OffsetDateTime::now_utc();
    let names: Vec<String> = Package::open(&m.ofd).unwrap().names().cloned().collect();
    // Any file of the package changed (the signature's value aside: its own case below).
    for name in names.iter().filter(|n| !n.ends_with("SignedValue.dat")) {
        let bad = rewrite(&m.ofd, |f| {
            f.get_mut(name).unwrap().extend_from_slice(b" ");
        });
        let r = verify(&bad, &trust, now).unwrap();
        assert_eq!(
            r.verdict,
            Verdict::Invalid,
            "{name} changed: {:?}",
            codes(&r)
        );
        let c = codes(&r);
        if name.ends_with("Signature.xml") && !name.ends_with("Signatures.xml") {
            assert!(c.contains(&"data_hash_mismatch"), "{name}: {c:?}");
        } else {
            assert!(c.contains(&"reference_mismatch"), "{name}: {c:?}");
        }
    }
    // One bit of the holder's signature, and one of the seal maker's.
    let value = "Doc_0/Signs/Sign_0/SignedValue.dat";
    let v = Package::open(&m.ofd).unwrap().file(value).unwrap().to_vec();
    let parsed = ses::parse_signature(&v).unwrap();
    let at = v
        .windows(parsed.signature.len())
        .position(|w| w == parsed.signature.as_slice())
        .unwrap()
        + parsed.signature.len()
        - 1;
    let bad = rewrite(&m.ofd, |f| f.get_mut(value).unwrap()[at] ^= 1);
    let r = verify(&bad, &trust, now).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
    assert!(codes(&r).contains(&"signature_invalid"), "{:?}", codes(&r));
    // One bit of the time-stamp token (the last bytes: the unit's signature).
    let last = v.len() - 1;
    let bad = rewrite(&m.ofd, |f| f.get_mut(value).unwrap()[last] ^= 1);
    let r = verify(&bad, &trust, now).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
    assert!(codes(&r).contains(&"timestamp_invalid"), "{:?}", codes(&r));
    // The seal's picture (inside the seal data the maker signed).
    let pic = v.windows(4).position(|w| w == b"<svg").unwrap();
    let bad = rewrite(&m.ofd, |f| f.get_mut(value).unwrap()[pic + 1] ^= 1);
    let c = codes(&verify(&bad, &trust, now).unwrap());
    assert!(c.contains(&"seal_signature_invalid"), "{c:?}");
    // A page added that no signature covers.
    let bad = rewrite(&m.ofd, |f| {
        let doc = String::from_utf8(f["Doc_0/Document.xml"].clone()).unwrap();
        f.insert(
            "Doc_0/Document.xml".into(),
            doc.replace(
                "</ofd:Pages>",
                "<ofd:Page ID=\"99\" BaseLoc=\"Pages/Page_1/Content.xml\"/></ofd:Pages>",
            )
            .into_bytes(),
        );
        f.insert(
            "Doc_0/Pages/Page_1/Content.xml".into(),
            b"<ofd:Page xmlns:ofd=\"http://www.ofdspec.org/2016\"/>".to_vec(),
        );
    });
    let r = verify(&bad, &trust, now).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
    assert!(codes(&r).contains(&"uncovered_file"), "{:?}", codes(&r));
    // Verified at a time after the seal's validity.
    let r = verify(&m.ofd, &trust, now + time::Duration::days(3650)).unwrap();
    assert_eq!(
        r.verdict,
        Verdict::Valid,
        "the signing time counts, not now"
    );
}

#[test]
fn the_other_implementations_sample_is_intact_and_untrusted() {
    let bytes = std::fs::read(shared("samples/SESV4SignDoc.ofd")).unwrap();
    let r = verify(&bytes, &[], OffsetDateTime::now_utc()).unwrap();
    assert_eq!(r.signatures.len(), 1, "{:?}", codes(&r));
    let s = &r.signatures[0];
    assert_eq!(s.integrity, Integrity::Intact, "{:?}", s.problems);
    assert_eq!(s.trust, Trust::Untrusted);
    // Its seal was valid 2020-04-22 to 2022-04-22 and used in 2026: said, and not valid.
    assert!(codes(&r).contains(&"seal_expired"), "{:?}", codes(&r));
    assert_ne!(r.verdict, Verdict::Valid);
    // Tampered: a page changed, the signature description changed.
    for (name, code) in [
        ("Doc_0/Pages/Page_0/Content.xml", "reference_mismatch"),
        ("Doc_0/Signs/Sign_0/Signature.xml", "data_hash_mismatch"),
    ] {
        let bad = rewrite(&bytes, |f| f.get_mut(name).unwrap().push(b' '));
        let r = verify(&bad, &[], OffsetDateTime::now_utc()).unwrap();
        assert_eq!(r.verdict, Verdict::Invalid);
        assert!(codes(&r).contains(&code), "{name}: {:?}", codes(&r));
    }
}

#[test]
fn hostile_packages_are_refused_without_panic() {
    use std::io::Write;
    let zip_of = |entries: &[(&str, &[u8])]| {
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (n, b) in entries {
            z.start_file(*n, opts).unwrap();
            z.write_all(b).unwrap();
        }
        z.finish().unwrap().into_inner()
    };
    let now = OffsetDateTime::now_utc();
    // `../` names, absolute names.
    assert!(verify(&zip_of(&[("../evil.xml", b"x")]), &[], now).is_err());
    assert!(verify(&zip_of(&[("/etc/passwd", b"x")]), &[], now).is_err());
    // A zip bomb: 17 MiB of zeros in one entry (beyond the per-file limit).
    let bomb = vec![0u8; 17 * 1024 * 1024];
    assert!(verify(&zip_of(&[("OFD.xml", &bomb)]), &[], now).is_err());
    // Entity expansion and deep nesting in OFD.xml: unreadable, not expanded.
    let billion = b"<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY x \"xxxxxxxx\"><!ENTITY y \"&x;&x;&x;&x;&x;&x;&x;&x;\">]><a>&y;</a>";
    assert!(verify(&zip_of(&[("OFD.xml", billion)]), &[], now).is_err());
    let deep = "<a>".repeat(100_000) + &"</a>".repeat(100_000);
    assert!(verify(&zip_of(&[("OFD.xml", deep.as_bytes())]), &[], now).is_err());
    // Duplicate names: two entries written as OFD.xml and OFD.xmX, then the second renamed in
    // place (local header and central directory; the name is outside the CRC).
    let mut dup = zip_of(&[("OFD.xml", b"<a/>"), ("OFD.xmX", b"<b/>")]);
    let mut i = 0;
    while let Some(p) = dup[i..].windows(7).position(|w| w == b"OFD.xmX") {
        dup[i + p + 6] = b'l';
        i += p + 7;
    }
    assert!(verify(&dup, &[], now).is_err(), "duplicate names refused");
    // Mutations of our own package never panic, and never verify.
    let m = make();
    let trust = root(&m);
    let mut seed = 0x1234_5678u64;
    for _ in 0..300 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut bad = m.ofd.clone();
        let i = (seed as usize) % bad.len();
        bad[i] ^= 1 << (seed % 8);
        if bad == m.ofd {
            continue;
        }
        if let Ok(r) = verify(&bad, &trust, now)
            && r.verdict == Verdict::Valid
        {
            // Only the ZIP container changed (a time or an attribute in a header): the files,
            // which are what the seal protects, must be exactly the original ones.
            assert_eq!(
                Package::open(&bad).unwrap().into_files(),
                Package::open(&m.ofd).unwrap().into_files(),
                "a flipped bit at {i} changed a file and passed"
            );
        }
    }
}

#[test]
fn sm2_certificates_verify_with_openssl_link_by_link() {
    let m = make();
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, der: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, virtual_window::pki::ca::pem("CERTIFICATE", der)).unwrap();
        p
    };
    let root = w("root.pem", &m.h.root.cert_der);
    let centre = w("centre.pem", &m.h.centre_ca.cert_der);
    let maker = w("maker.pem", &m.h.seal_maker.cert_der);
    let run = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let os = |s: &str| std::ffi::OsString::from(s);
    let (ok, text) = run(&[
        &os("verify"),
        &os("-vfyopt"),
        &os("distid:1234567812345678"),
        &os("-CAfile"),
        root.as_os_str(),
        centre.as_os_str(),
    ]);
    assert!(ok && text.contains("OK"), "{text}");
    let (ok, text) = run(&[
        &os("verify"),
        &os("-vfyopt"),
        &os("distid:1234567812345678"),
        &os("-partial_chain"),
        &os("-CAfile"),
        centre.as_os_str(),
        maker.as_os_str(),
    ]);
    assert!(ok && text.contains("OK"), "{text}");
    // Without the ID (OpenSSL 3.0's empty default) the same link fails: the ID is really used.
    let (ok, _) = run(&[
        &os("verify"),
        &os("-CAfile"),
        root.as_os_str(),
        centre.as_os_str(),
    ]);
    assert!(!ok);
}

/// Our SM2 signatures (a plain message, and the seal signature over DER(TBS_Sign) in our OFD)
/// verify with PyPI gmssl 3.2.2 and npm sm-crypto 0.5.8, both with the ID 1234567812345678;
/// a changed message does not.
#[test]
fn sm2_signatures_verify_with_gmssl_and_sm_crypto() {
    let python = std::env::var("VW_PYTHON").ok();
    let node_path = std::env::var("VW_NODE_PATH").ok();
    let (Some(python), Some(node_path)) = (python, node_path) else {
        assert!(
            std::env::var("VW_REQUIRE_GM_TOOLS").as_deref() != Ok("1"),
            "VW_PYTHON and VW_NODE_PATH must be set (scripts/test installs gmssl and sm-crypto)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key = virtual_window::pki::sm2::Sm2Key::generate().unwrap();
    let m = make();
    let p = virtual_window::pki::ses::parse_signature(
        Package::open(&m.ofd)
            .unwrap()
            .file("Doc_0/Signs/Sign_0/SignedValue.dat")
            .unwrap(),
    )
    .unwrap();
    let signer_spki = openssl::x509::X509::from_der(&p.signer_cert)
        .unwrap()
        .public_key()
        .unwrap()
        .public_key_to_der()
        .unwrap();
    let message = "国密 SM2 签名 cross-check".as_bytes().to_vec();
    let cases = [
        (
            key.public_key_der().to_vec(),
            key.sign(&message).unwrap(),
            message.clone(),
        ),
        (signer_spki, p.signature.clone(), p.signed_part.clone()),
    ];
    for (i, (spki, sig, msg)) in cases.iter().enumerate() {
        let pubkey = dir.path().join(format!("pub{i}.pem"));
        std::fs::write(&pubkey, virtual_window::pki::ca::pem("PUBLIC KEY", spki)).unwrap();
        let sig_path = dir.path().join(format!("sig{i}.der"));
        std::fs::write(&sig_path, sig).unwrap();
        for (msg, expect) in [
            (msg.clone(), "True"),
            ([msg.as_slice(), b"x"].concat(), "False"),
        ] {
            let msg_path = dir.path().join(format!("msg{i}.bin"));
            std::fs::write(&msg_path, &msg).unwrap();
            let out = std::process::Command::new(&python)
                .arg(shared("gmssl_verify.py"))
                .args([&pubkey, &sig_path, &msg_path])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(
                text.contains(&format!("verify_with_sm3: {expect}")),
                "gmssl case {i}: {text}"
            );
            let out = std::process::Command::new("node")
                .arg(shared("smcrypto_verify.js"))
                .args([&pubkey, &sig_path, &msg_path])
                .env("NODE_PATH", &node_path)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(
                text.contains(&format!("doVerifySignature: {}", expect.to_lowercase())),
                "sm-crypto case {i}: {text}"
            );
        }
    }
}

/// The other way round: signatures made by sm-crypto (its own key, the default ID) verify with
/// ours — on a key's first sighting and once it is tabled — and fail for another message.
#[test]
fn sm_crypto_signatures_verify_here() {
    let Ok(node_path) = std::env::var("VW_NODE_PATH") else {
        assert!(
            std::env::var("VW_REQUIRE_GM_TOOLS").as_deref() != Ok("1"),
            "VW_NODE_PATH must be set (scripts/test installs sm-crypto)"
        );
        return;
    };
    let script = r#"
const sm2 = require('sm-crypto').sm2;
const k = sm2.generateKeyPairHex();
const out = {pub: k.publicKey, sigs: []};
for (let i = 0; i < 4; i++) {
  const msg = '国密 message ' + i;
  out.sigs.push([Buffer.from(msg).toString('hex'),
    sm2.doSignature(msg, k.privateKey, {der: true, hash: true, userId: '1234567812345678'})]);
}
console.log(JSON.stringify(out));
"#;
    let out = std::process::Command::new("node")
        .args(["-e", script])
        .env("NODE_PATH", &node_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hex = |s: &str| virtual_window::pki::ca::decode_hex(s).unwrap();
    let point = hex(v["pub"].as_str().unwrap());
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SM2).unwrap();
    let mut ctx = openssl::bn::BigNumContext::new().unwrap();
    let p = openssl::ec::EcPoint::from_bytes(&group, &point, &mut ctx).unwrap();
    let spki = openssl::ec::EcKey::from_public_key(&group, &p)
        .unwrap()
        .public_key_to_der()
        .unwrap();
    let sigs = v["sigs"].as_array().unwrap();
    assert_eq!(sigs.len(), 4);
    for pair in sigs {
        let msg = hex(pair[0].as_str().unwrap());
        let sig = hex(pair[1].as_str().unwrap());
        assert!(virtual_window::pki::sm2::verify(&spki, &msg, &sig));
        assert!(!virtual_window::pki::sm2::verify(
            &spki,
            &[msg.as_slice(), b"x"].concat(),
            &sig
        ));
    }
}
