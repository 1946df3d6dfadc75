//! Fixtures shared by the signing and verification benchmarks: the 20-page sample contract,
//! certificates from a fresh hierarchy, and documents signed once and 51 times.

#![allow(dead_code)]

use time::OffsetDateTime;
use virtual_window::domain::contract::ContractData;
use virtual_window::pdf::font::Font;
use virtual_window::pdf::layout::{Block, Metadata, render};
use virtual_window::pdf::sign::{SignOptions, sign};
use virtual_window::pki::ca::{self, IssuedCertificate, Subject};
use virtual_window::pki::{Hierarchy, KeyAlgorithm, Profiles, SoftwareKey};
use virtual_window::services::documents::{CONTRACT_TEMPLATE, render_contract};

pub struct Fixture {
    pub font: Font,
    pub h: Hierarchy,
    pub profiles: Profiles,
    pub now: OffsetDateTime,
}

impl Fixture {
    pub fn build() -> Fixture {
        let now = OffsetDateTime::now_utc();
        let profiles = Profiles::builtin();
        let (h, _) = Hierarchy::create(
            &profiles,
            KeyAlgorithm::EcdsaP256,
            now,
            "http://127.0.0.1/pki/crl",
        )
        .unwrap();
        Fixture {
            font: Font::bundled(),
            h,
            profiles,
            now,
        }
    }

    /// The sample contract (fixtures/sample-contract.toml): 20 pages.
    pub fn long_contract(&self) -> Vec<u8> {
        let data: ContractData =
            toml::from_str(&std::fs::read_to_string("fixtures/sample-contract.toml").unwrap())
                .unwrap();
        let r = render_contract(
            &self.font,
            CONTRACT_TEMPLATE,
            &data,
            "https://window.example",
            "2026-11-28T10:00:00+08:00",
        )
        .unwrap();
        eprintln!("sample contract: {} pages, {} bytes", r.pages, r.pdf.len());
        r.pdf
    }

    pub fn person(&self, alg: KeyAlgorithm) -> (IssuedCertificate, SoftwareKey) {
        let key = SoftwareKey::generate(alg).unwrap();
        let cert = ca::issue(
            &self.profiles,
            self.h.authority("people-ca").unwrap(),
            "event",
            &Subject::Person {
                name: "张伟".into(),
                pseudonym: "PSN-01".into(),
            },
            &key,
            self.now,
            "http://127.0.0.1/pki/crl",
        )
        .unwrap();
        (cert, key)
    }

    pub fn options<'a>(
        &'a self,
        field: &'a str,
        cert: &'a IssuedCertificate,
        key: &'a SoftwareKey,
    ) -> SignOptions<'a> {
        SignOptions {
            field,
            signer_cert: &cert.der,
            chain: vec![self.h.authority("people-ca").unwrap().cert_der.clone()],
            key,
            time: self.now,
            reason: None,
            reserve: 8192,
            timestamper: None,
            certify: None,
            visible: None,
        }
    }

    /// A one-page document with `n` empty signature fields, then signed in every one of them.
    pub fn many_signatures(&self, n: usize) -> Vec<u8> {
        let mut blocks = vec![Block::Heading("多方签署测试".into())];
        for i in 0..n {
            blocks.push(Block::SignatureField {
                field: format!("s{i}"),
                label: format!("签署人 {i}："),
                width: 60.0,
                height: 10.0,
            });
        }
        let meta = Metadata {
            title: "多方签署".into(),
            keywords: vec![],
            author: "bench".into(),
            created: "2026-11-28T10:00:00+08:00".into(),
            header: "bench".into(),
        };
        let mut doc = render(&self.font, &meta, &blocks).unwrap().bytes;
        let (cert, key) = self.person(KeyAlgorithm::EcdsaP256);
        for i in 0..n {
            let field = format!("s{i}");
            doc = sign(&doc, &self.options(&field, &cert, &key)).unwrap();
        }
        doc
    }
}
