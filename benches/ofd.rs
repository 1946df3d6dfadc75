//! 国密: sealing the registration certificate as an OFD package (GB/T 38540 seal, SM2) and
//! verifying it, beside the SM2 primitive itself (`openssl speed sm2` in scripts/bench is the
//! physical limit). `cargo bench --bench ofd`.

use criterion::{Criterion, criterion_group, criterion_main};
use openssl::x509::X509;
use time::OffsetDateTime;
use virtual_window::ofd::write::{self, CertificateContent, Stamp};
use virtual_window::pdf::layout::Block;
use virtual_window::pdf::verify::Verdict;
use virtual_window::pki::gm::GmHierarchy;
use virtual_window::pki::ses::{self, SealPicture, SealSpec};

fn content() -> CertificateContent {
    let rows = [
        ("证明权利或事项", "预告登记（预购商品房买卖）"),
        ("权利人（申请人）", "张伟、李娜"),
        ("义务人", "东莞市云境置业有限公司"),
        ("坐落", "东莞市松山湖高新区云境花园1栋1单元1801"),
        ("不动产单元号", "441900001001GB00001F00011801"),
        (
            "其他",
            "合同编号 YS-2026-000123；备案号 BA-2026-000045；总价款人民币 2,350,000.00 元；建筑面积 98.76 平方米",
        ),
        ("附记", "受理号 SL-2026-000321"),
    ];
    CertificateContent {
        title: "不动产登记证明".into(),
        authority: "东莞市不动产登记中心".into(),
        blocks: vec![
            Block::Title("不动产登记证明".into()),
            Block::Paragraph {
                text: "粤(2026)东莞市不动产证明第0001234号".into(),
                indent: false,
            },
            Block::Paragraph {
                text: "根据《中华人民共和国民法典》等法律法规，为保护申请人合法权益，对下列事项予以登记，特发此证明。".into(),
                indent: true,
            },
            Block::Table {
                widths: vec![0.26, 0.74],
                rows: rows.iter().map(|(a, b)| vec![a.to_string(), b.to_string()]).collect(),
            },
            Block::QrCode {
                data: "https://window.example.cn/c/20260001234".into(),
                size: 72.0,
                caption: "本证明为电子证照，与纸质证明具有同等效力。扫描二维码或访问 https://window.example.cn/c/20260001234 查询本证明的当前状态（有效、注销或被替代）。".into(),
            },
            Block::Paragraph {
                text: "登记机构：东莞市不动产登记中心　　登簿日期：2026-12-04".into(),
                indent: false,
            },
            Block::SignatureField {
                field: "centre-seal".into(),
                label: "不动产登记中心（印章）：".into(),
                width: 130.0,
                height: 130.0,
            },
        ],
        data: rows.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
    }
}

fn ofd(c: &mut Criterion) {
    let now = OffsetDateTime::now_utc();
    let h = GmHierarchy::create(now, "http://127.0.0.1/pki/crl").unwrap();
    let holder = h
        .issue_signer(
            true,
            "东莞市不动产登记中心",
            "不动产登记专用章",
            now,
            2,
            "http://127.0.0.1/pki/crl",
        )
        .unwrap();
    let spec = SealSpec {
        vendor: "VIRTUALWINDOW".into(),
        es_id: "441900000000000001".into(),
        seal_type: 3,
        name: "东莞市不动产登记中心不动产登记专用章".into(),
        signer_certs: vec![holder.cert_der.clone()],
        created: now,
        valid_from: now - time::Duration::minutes(1),
        valid_to: now + time::Duration::days(365),
        picture: SealPicture {
            kind: "SVG".into(),
            data: write::seal_svg("东莞市不动产登记中心", "不动产登记专用章"),
            width_mm: 40,
            height_mm: 40,
        },
    };
    let seal = ses::make_seal(&spec, &h.seal_maker).unwrap();
    let next = now + time::Duration::days(1);
    let crls = vec![
        virtual_window::pki::gm::crl(&h.centre_ca, 1, &[], now, next).unwrap(),
        virtual_window::pki::gm::crl(&h.root, 1, &[], now, next).unwrap(),
    ];
    let content = content();
    let stamp = Stamp {
        seal: &seal,
        signer: &holder,
        chain: vec![h.centre_ca.cert_der.clone()],
        crls: crls.clone(),
        tsa: Some(&h.tsa),
    };
    let make = || {
        let files = write::package_files(&content, "0123456789abcdef0123456789abcdef", now);
        write::seal_package(files, &stamp, now).unwrap()
    };
    let package = make();
    let bare_stamp = Stamp {
        tsa: None,
        chain: stamp.chain.clone(),
        crls: stamp.crls.clone(),
        ..stamp
    };
    let bare = {
        let files = write::package_files(&content, "0123456789abcdef0123456789abcdef", now);
        write::seal_package(files, &bare_stamp, now).unwrap()
    };
    let trust = vec![X509::from_der(&h.root.cert_der).unwrap()];
    assert_eq!(
        virtual_window::ofd::verify::verify(&package, &trust, now)
            .unwrap()
            .verdict,
        Verdict::Valid
    );
    eprintln!("certificate.ofd: {} bytes", package.len());
    let mut g = c.benchmark_group("ofd");
    g.bench_function(
        "seal certificate (write, SM3 references, SM2 seal signature, SM2 time stamp)",
        |b| b.iter(make),
    );
    g.bench_function(
        "verify certificate (references, signature, seal, time stamp, chains)",
        |b| b.iter(|| virtual_window::ofd::verify::verify(&package, &trust, now).unwrap()),
    );
    g.bench_function("seal certificate without the time stamp", |b| {
        b.iter(|| {
            let files = write::package_files(&content, "0123456789abcdef0123456789abcdef", now);
            write::seal_package(files, &bare_stamp, now).unwrap()
        })
    });
    g.bench_function("verify certificate without the time stamp", |b| {
        b.iter(|| virtual_window::ofd::verify::verify(&bare, &trust, now).unwrap())
    });
    g.finish();
    let key = virtual_window::pki::sm2::Sm2Key::generate().unwrap();
    let sig = key.sign(b"tbs").unwrap();
    let mut g = c.benchmark_group("sm2");
    g.bench_function("sign (SM3(Z||M) + OpenSSL SM2)", |b| {
        b.iter(|| key.sign(b"tbs").unwrap())
    });
    g.bench_function("verify", |b| {
        b.iter(|| {
            assert!(virtual_window::pki::sm2::verify(
                key.public_key_der(),
                b"tbs",
                &sig
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, ofd);
criterion_main!(benches);
