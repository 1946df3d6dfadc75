//! The documents room, checked with tools nobody here wrote: poppler's pdftotext, pdffonts and
//! pdftoppm, and qpdf.

use std::process::Command;
use virtual_window::pdf::font::Font;
use virtual_window::pdf::layout::{Block, Metadata, render};

/// The document font: the one built into the binary, as on a machine without any CJK font.
pub fn cjk_font() -> Font {
    Font::find(None).expect("the bundled font")
}

pub fn tool(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sample_blocks() -> Vec<Block> {
    vec![
        Block::Title("商品房买卖合同（预售）".into()),
        Block::Heading("第一章　合同当事人".into()),
        Block::Paragraph {
            text: "出卖人：东莞市云境置业有限公司，统一社会信用代码 91441900MA4W0L7N36。买受人依据《中华人民共和国民法典》《中华人民共和国城市房地产管理法》及其他有关法律、法规的规定，在平等、自愿、公平、协商一致的基础上，就买卖商品房达成如下协议。".repeat(3),
            indent: true,
        },
        Block::Table {
            widths: vec![0.3, 0.35, 0.35],
            rows: vec![
                vec!["项目".into(), "面积（平方米）".into(), "说明".into()],
                vec!["套内建筑面积".into(), "71.20".into(), "预测".into()],
                vec!["分摊共有建筑面积".into(), "18.16".into(), "预测".into()],
                vec!["建筑面积".into(), "89.36".into(), "= 套内 + 分摊".into()],
            ],
        },
        Block::QrCode { data: "http://127.0.0.1:8080/c/GF2025-000001".into(), size: 72.0, caption: "扫描二维码核验本合同的真实性与当前状态。".into() },
        Block::PageBreak,
        Block::Heading("签署页".into()),
        Block::SignatureField { field: "buyer-1".into(), label: "买受人（签名）：".into(), width: 180.0, height: 60.0 },
        Block::SignatureField { field: "seller-seal".into(), label: "出卖人（盖章）：".into(), width: 120.0, height: 120.0 },
    ]
}

fn meta() -> Metadata {
    Metadata {
        title: "商品房买卖合同（预售） GF2025-000001".into(),
        keywords: vec![
            "合同编号:GF2025-000001".into(),
            "出卖人:东莞市云境置业有限公司".into(),
            "买受人:张伟".into(),
        ],
        author: "东莞市云境置业有限公司".into(),
        created: "2026-11-28T08:00:00+08:00".into(),
        header: "合同编号：GF2025-000001".into(),
    }
}

#[test]
fn a_rendered_document_passes_poppler_and_qpdf() {
    let font = cjk_font();
    let r = render(&font, &meta(), &sample_blocks()).unwrap();
    assert_eq!(r.pages, 2);
    assert_eq!(
        r.fields
            .iter()
            .map(|f| f.field.as_str())
            .collect::<Vec<_>>(),
        ["buyer-1", "seller-seal"]
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doc.pdf");
    std::fs::write(&path, &r.bytes).unwrap();
    let p = path.to_str().unwrap();

    let check = tool("qpdf", &["--check", p]);
    assert!(
        check.contains("No syntax or stream encoding errors"),
        "{check}"
    );
    let fonts = tool("pdffonts", &[p]);
    let line = fonts.lines().nth(2).expect("one font");
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert!(cols[0].contains('+'), "subset tag: {line}");
    // emb sub uni
    assert_eq!(
        &cols[cols.len() - 5..cols.len() - 2],
        ["yes", "yes", "yes"],
        "{fonts}"
    );
    let text = tool("pdftotext", &["-layout", p, "-"]);
    for expected in [
        "商品房买卖合同（预售）",
        "统一社会信用代码 91441900MA4W0L7N36",
        "89.36",
        "买受人（签名）：",
    ] {
        assert!(
            text.contains(expected),
            "pdftotext lacks {expected}: {text}"
        );
    }
    // pdftotext judges narrow spaces by position; compare the footers without them.
    let compact: String = text.chars().filter(|c| *c != ' ').collect();
    assert!(
        compact.contains("第1页共2页") && compact.contains("第2页共2页"),
        "{text}"
    );
    // Line breaking: no line starts with closing punctuation or ends with an opening one.
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let first = line.chars().next().unwrap();
        let last = line.chars().last().unwrap();
        assert!(
            !"。，、；：？！）」".contains(first),
            "line starts with {first}: {line}"
        );
        assert!(!"（「".contains(last), "line ends with {last}: {line}");
    }
    // No missing glyphs: rendered by poppler at low resolution, the page has ink and poppler
    // reported no font trouble.
    let out = Command::new("pdftoppm")
        .args(["-r", "30", "-f", "1", "-l", "1", "-png", p])
        .arg(dir.path().join("page"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "poppler complained: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The same input gives the same bytes.
    let again = render(&font, &meta(), &sample_blocks()).unwrap();
    assert_eq!(again.bytes, r.bytes, "deterministic output");
}

pub(crate) mod contract {
    use super::{cjk_font, tool};
    use virtual_window::domain::contract::ContractData;
    use virtual_window::services::documents::{CONTRACT_TEMPLATE, render_contract};

    pub fn sample() -> ContractData {
        toml::from_str(&std::fs::read_to_string("fixtures/sample-contract.toml").unwrap()).unwrap()
    }

    const CREATED: &str = "2026-11-28T10:00:00+08:00";

    /// The reviewers' check 9 re-renders a contract from its snapshot and compares the PDF byte
    /// for byte, also for contracts made by an earlier build: a change to the layout code that
    /// moves one byte of the output breaks every filing in progress. This digest is the sample
    /// contract as this layout writes it; a change here must be deliberate (a new template
    /// version), never a side effect of making rendering faster.
    #[test]
    fn the_sample_contract_renders_to_the_same_bytes_as_before() {
        let (digest, len) = sample_contract_digest(&cjk_font());
        assert_eq!(digest, SAMPLE_CONTRACT_SHA256, "{len} bytes");
    }

    /// The SHA-256 of the sample contract as this build renders it.
    const SAMPLE_CONTRACT_SHA256: &str =
        "485e1837697b6c636fb5d1e035048a3659de234b1249cfccc5b7990ac3ab3a75";

    /// The sample contract rendered with `font`: its SHA-256 (hex) and its length.
    fn sample_contract_digest(font: &virtual_window::pdf::font::Font) -> (String, usize) {
        let r = render_contract(
            font,
            CONTRACT_TEMPLATE,
            &sample(),
            "https://window.example",
            CREATED,
        )
        .unwrap();
        (
            virtual_window::audit::hex(&openssl::sha::sha256(&r.pdf)),
            r.pdf.len(),
        )
    }

    /// An instance warms its document caches before it answers (`documents::warm_up`): what
    /// it makes ahead must be what a first contract would have made, byte for byte.
    #[test]
    fn warming_up_the_document_caches_changes_no_document() {
        let font = cjk_font();
        virtual_window::services::documents::warm_up(&font).unwrap();
        let (digest, len) = sample_contract_digest(&font);
        assert_eq!(digest, SAMPLE_CONTRACT_SHA256, "{len} bytes");
    }

    #[test]
    fn the_sample_contract_reads_back_exactly() {
        let font = cjk_font();
        let r = render_contract(
            &font,
            CONTRACT_TEMPLATE,
            &sample(),
            "https://window.example",
            CREATED,
        )
        .unwrap();
        assert_eq!(
            r.fields,
            ["buyer-1", "buyer-2", "seller-seal", "centre-seal"]
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("contract.pdf");
        std::fs::write(&path, &r.pdf).unwrap();
        let p = path.to_str().unwrap();
        assert!(tool("qpdf", &["--check", p]).contains("No syntax or stream encoding errors"));
        let fonts = tool("pdffonts", &[p]);
        for line in fonts.lines().skip(2) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(
                &cols[cols.len() - 5..cols.len() - 2],
                ["yes", "yes", "yes"],
                "embedded, subset, Unicode: {fonts}"
            );
        }
        // Raw order (no layout) with the wrapped lines joined gives the clause text back; a space
        // at a line break is not kept, so spaces are left out of the comparison.
        let text: String = tool("pdftotext", &["-raw", p, "-"])
            .lines()
            .collect::<Vec<_>>()
            .join("")
            .replace(' ', "");
        for expected in [
            "商品房买卖合同（预售）",
            "单价为每平方米人民币 30500.00 元，总价款为人民币 2725480.00 元（大写：贰佰柒拾贰万伍仟肆佰捌拾元整）",
            "监管银行：中国建设银行东莞分行；账户名称：东莞市云境置业有限公司松湖云境花园1-3栋预售资金监管专户；账号：44050177000800001234",
            "不动产单元号为 441900104002GB00123F00010012",
            "面积误差比绝对值在 3%以内（含 3%）的，按照实测面积结算房价款",
            "出卖人应当自本合同签订之日起 30 日内（不超过 30 日）通过虚拟窗口向不动产登记中心申请办理该商品房预售合同登记备案手续",
            "89.36",
            "71.20",
            "18.16",
            "捌拾壹万柒仟陆佰肆拾肆元整",
            "玖拾伍万叁仟玖佰壹拾捌元整",
            "4419**********001X",
        ] {
            assert!(
                text.contains(&expected.replace(' ', "")),
                "missing: {expected}\n{text}"
            );
        }
        assert!(
            !text.contains("44190019900101001X"),
            "ID numbers are masked in the document body"
        );
        // Every page renders without poppler reporting a font or glyph problem.
        let out = std::process::Command::new("pdftoppm")
            .args(["-r", "20", "-png", p])
            .arg(dir.path().join("page"))
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| e
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("page"))
                .count(),
            r.pages
        );
        // PDF/A identification and the template's record are in the metadata.
        let raw = String::from_utf8_lossy(&r.pdf);
        assert!(raw.contains("<pdfaid:part>2</pdfaid:part>") && raw.contains("模板:GF-2014-0171"));
        // Deterministic: same data, template and time, same bytes; another time, other bytes.
        let again = render_contract(
            &font,
            CONTRACT_TEMPLATE,
            &sample(),
            "https://window.example",
            CREATED,
        )
        .unwrap();
        assert_eq!(
            openssl::sha::sha256(&again.pdf),
            openssl::sha::sha256(&r.pdf)
        );
        let later = render_contract(
            &font,
            CONTRACT_TEMPLATE,
            &sample(),
            "https://window.example",
            "2026-11-29T10:00:00+08:00",
        )
        .unwrap();
        assert_ne!(later.pdf, r.pdf);
    }

    #[test]
    fn bad_data_is_refused_with_field_errors_before_any_pdf() {
        let font = cjk_font();
        type Change = Box<dyn Fn(&mut ContractData)>;
        let cases: Vec<(&str, Change, &str, &str)> = vec![
            (
                "areas",
                Box::new(|d| d.unit.shared_area = "18.15".into()),
                "unit.gross_area",
                "areas_do_not_add_up",
            ),
            (
                "total",
                Box::new(|d| d.price.total = "2725481".into()),
                "price.total",
                "total_mismatch",
            ),
            (
                "instalments",
                Box::new(|d| d.payment.schedule[2].amount = "953917".into()),
                "payment.schedule",
                "instalments_do_not_sum",
            ),
            (
                "delivery",
                Box::new(|d| d.delivery_date = "2026-11-01".into()),
                "delivery_date",
                "after_signing",
            ),
            (
                "escrow",
                Box::new(|d| d.escrow.account_no = " ".into()),
                "escrow.account_no",
                "required",
            ),
            (
                "missing glyph",
                Box::new(|d| d.buyers[0].address = "东莞市🏠路".into()),
                "table.buyers",
                "unsupported_character",
            ),
            (
                "shares",
                Box::new(|d| d.buyers[1].share = "40".into()),
                "buyers",
                "shares_sum_to_100",
            ),
            (
                "filing deadline",
                Box::new(|d| d.filing_deadline_days = 45),
                "filing_deadline_days",
                "at_most_30",
            ),
            (
                "loan without lender",
                Box::new(|d| d.payment.mode = "贷款方式付款".into()),
                "payment.lender",
                "required",
            ),
        ];
        for (what, change, field, rule) in cases {
            let mut d = sample();
            change(&mut d);
            let err = render_contract(
                &font,
                CONTRACT_TEMPLATE,
                &d,
                "https://window.example",
                CREATED,
            )
            .unwrap_err();
            let virtual_window::services::Error::Invalid { fields, .. } = err else {
                panic!("{what}: not a validation error: {err:?}")
            };
            assert!(
                fields.iter().any(|f| f.field == field && f.code == rule),
                "{what}: expected {field}/{rule} in {fields:?}"
            );
        }
        // Everything wrong at once is reported at once.
        let mut d = sample();
        d.unit.shared_area = "1".into();
        d.delivery_date = "2020-01-01".into();
        d.escrow.bank = String::new();
        let Err(virtual_window::services::Error::Invalid { fields, .. }) = render_contract(
            &font,
            CONTRACT_TEMPLATE,
            &d,
            "https://window.example",
            CREATED,
        ) else {
            panic!("refused")
        };
        assert!(fields.len() >= 3, "{fields:?}");
    }
}

mod records {
    use super::{cjk_font, tool};
    use virtual_window::services::documents::{
        FilingRecordData, RegistrationCertificateData, render_filing_record,
        render_registration_certificate,
    };

    fn text_of(pdf: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.pdf");
        std::fs::write(&path, pdf).unwrap();
        let p = path.to_str().unwrap();
        assert!(tool("qpdf", &["--check", p]).contains("No syntax or stream encoding errors"));
        tool("pdftotext", &["-raw", p, "-"])
            .lines()
            .collect::<Vec<_>>()
            .join("")
            .replace(' ', "")
    }

    #[test]
    fn the_filing_record_and_the_registration_certificate_read_back() {
        let font = cjk_font();
        let contract = super::contract::sample();
        let filing = FilingRecordData {
            filing_no: "莞备2026-0001234".into(),
            filed_on: "2026-12-02".into(),
            contract_sha256: "ab".repeat(32),
            contract,
        };
        let r = render_filing_record(
            &font,
            &filing,
            "https://window.example",
            "2026-12-02T10:00:00+08:00",
        )
        .unwrap();
        let text = text_of(&r.pdf);
        for expected in [
            "商品房预售合同备案证明",
            "备案编号：莞备2026-0001234",
            "合同编号：YJ2026-000123",
            "441900104002GB00123F00010012",
            "张伟、李娜",
            "不动产登记中心（印章）：",
        ] {
            assert!(text.contains(expected), "missing {expected}: {text}");
        }
        let cert = RegistrationCertificateData {
            certificate_no: "粤(2026)东莞市不动产证明第0012345号".into(),
            matter: "预告登记（预购商品房买卖）".into(),
            right_holder: "张伟、李娜".into(),
            obligor: "东莞市云境置业有限公司".into(),
            location: "东莞市松山湖松湖云境花园1栋1203号房".into(),
            unit_number: "441900104002GB00123F00010012".into(),
            other: "合同编号 YJ2026-000123；备案编号 莞备2026-0001234；价款 2725480.00 元；建筑面积 89.36 平方米".into(),
            notes: "按份共有，各占 50%".into(),
            authority: "东莞市不动产登记中心".into(),
            recorded_on: "2026-12-09".into(),
        };
        let r = render_registration_certificate(
            &font,
            &cert,
            "https://window.example",
            "2026-12-09T10:00:00+08:00",
        )
        .unwrap();
        let text = text_of(&r.pdf);
        for expected in [
            "不动产登记证明",
            "粤(2026)东莞市不动产证明第0012345号",
            "预告登记（预购商品房买卖）",
            "权利人（申请人）张伟、李娜",
            "https://window.example/c/20260012345",
        ] {
            assert!(text.contains(expected), "missing {expected}: {text}");
        }
        let mut empty = cert.clone();
        empty.obligor = " ".into();
        assert!(
            render_registration_certificate(
                &font,
                &empty,
                "https://window.example",
                "2026-12-09T10:00:00+08:00"
            )
            .is_err()
        );
    }
}

pub(crate) mod signing {
    use crate::verify::Chain;
    use std::process::Command;
    use virtual_window::pdf::sign::{SignOptions, sign};
    use virtual_window::pki::ca::Subject;
    use virtual_window::pki::{KeyAlgorithm, SoftwareKey};

    pub(crate) fn pyhanko() -> Option<String> {
        let bin = std::env::var("VW_PYHANKO").unwrap_or_else(|_| "target/venv/bin/pyhanko".into());
        if std::path::Path::new(&bin).exists() {
            return Some(bin);
        }
        assert!(
            std::env::var("VW_REQUIRE_PYHANKO").as_deref() != Ok("1"),
            "pyHanko is required"
        );
        None
    }

    /// An NSS database (for poppler's pdfsig) that trusts `root`; returns its `sql:` name.
    pub(crate) fn nss_trusting(dir: &std::path::Path, root: &std::path::Path) -> String {
        let nss = dir.join("nss");
        std::fs::create_dir_all(&nss).unwrap();
        let db = format!("sql:{}", nss.display());
        let ok = |c: &mut Command| c.output().map(|o| o.status.success()).unwrap_or(false);
        assert!(
            ok(Command::new("certutil").args(["-N", "--empty-password", "-d", &db])),
            "certutil (libnss3-tools)"
        );
        assert!(ok(Command::new("certutil")
            .args(["-A", "-d", &db, "-n", "root", "-t", "CT,C,C", "-a", "-i"])
            .arg(root)));
        db
    }

    /// `pyhanko sign validate` against our root only, without revocation checks.
    pub(crate) fn pyhanko_validate(
        pyhanko: &str,
        root: &std::path::Path,
        file: &std::path::Path,
        pretty: bool,
    ) -> std::process::Output {
        let mut c = Command::new(pyhanko);
        c.args(["sign", "validate", "--trust"])
            .arg(root)
            .args(["--trust-replace", "--no-revocation-check"]);
        if pretty {
            c.arg("--pretty-print");
        }
        c.arg(file).output().unwrap()
    }

    #[test]
    fn every_revision_of_the_signed_contract_passes_pyhanko_pdfsig_and_qpdf() {
        let (Some(chain), Some(pyhanko)) = (Chain::build(), pyhanko()) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root.pem");
        std::fs::write(&root, chain.root_pem()).unwrap();
        let db = nss_trusting(dir.path(), &root);

        let signers = ["buyer-1", "buyer-2", "seller-seal", "centre-seal"];
        for (step, (name, doc)) in chain.steps.iter().enumerate().skip(1) {
            let path = dir.path().join(format!("{name}.pdf"));
            std::fs::write(&path, doc).unwrap();
            let signed: Vec<&str> = signers.iter().copied().take(step).collect();
            let out = pyhanko_validate(&pyhanko, &root, &path, false);
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "pyHanko rejects {name}: {text}");
            let status = |f: &str| {
                text.lines()
                    .find(|l| l.starts_with(&format!("{f}:")))
                    .unwrap_or_else(|| panic!("{name}: no line for {f}: {text}"))
                    .to_owned()
            };
            for (i, f) in signed.iter().enumerate() {
                let line = status(f);
                assert!(line.contains(":INTACT:TRUSTED"), "{name}: {line}");
                // Every signature but buyer-1's carries a trusted signature time-stamp (B-T).
                if i > 0 {
                    assert!(
                        line.contains("TIMESTAMP_TOKEN<INTACT:TRUSTED>"),
                        "{name}: {line}"
                    );
                }
                let last_signature = i + 1 == signed.len() && step <= signers.len();
                if last_signature {
                    assert!(line.ends_with("UNTOUCHED"), "{name}: {line}");
                } else {
                    // Filling later signature fields, the DSS and the document time-stamp are
                    // all permitted changes.
                    assert!(line.ends_with("ACCEPTABLE_MODIFICATIONS"), "{name}: {line}");
                }
                // pyHanko names the strongest change: form filling for a signature followed
                // by other signatures, LTA updates when only the DSS and time-stamp followed.
                if (*name == "dss" || *name == "lta") && i + 1 == signed.len() {
                    assert!(line.contains("EXTENDED_WITH_LTA_UPDATES"), "{name}: {line}");
                }
            }
            let qpdf = Command::new("qpdf")
                .arg("--check")
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                qpdf.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&qpdf.stdout)
            );
            let out = Command::new("pdfsig")
                .args(["-nssdir", &db])
                .arg(&path)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let valid = text
                .matches("Signature Validation: Signature is Valid.")
                .count();
            let trusted = text
                .matches("Certificate Validation: Certificate is Trusted.")
                .count();
            assert!(
                valid >= signed.len() && trusted >= signed.len(),
                "{name}: {text}"
            );
            assert!(!text.contains("Signature is Invalid"), "{name}: {text}");
        }

        // The first signature certifies the contract with DocMDP P=2.
        let path = dir.path().join("lta.pdf");
        let pretty = pyhanko_validate(&pyhanko, &root, &path, true);
        let pretty = String::from_utf8_lossy(&pretty.stdout).into_owned();
        assert!(
            pretty.contains("compatible with the current document modification policy"),
            "{pretty}"
        );
        let parsed = lopdf::Document::load_mem(chain.last()).unwrap();
        let perms = parsed
            .catalog()
            .unwrap()
            .get(b"Perms")
            .unwrap()
            .as_dict()
            .unwrap();
        let sig = parsed
            .get_dictionary(perms.get(b"DocMDP").unwrap().as_reference().unwrap())
            .unwrap();
        let reference = sig.get(b"Reference").unwrap().as_array().unwrap()[0]
            .as_dict()
            .unwrap();
        let params = reference
            .get(b"TransformParams")
            .unwrap()
            .as_dict()
            .unwrap();
        assert_eq!(params.get(b"P").unwrap().as_i64().unwrap(), 2);

        // The document time-stamp, checked by OpenSSL over its byte range.
        let stamped = chain.last();
        let ts_sig = parsed
            .objects
            .values()
            .filter_map(|o| o.as_dict().ok())
            .find(|d| {
                d.get(b"Type").and_then(|t| t.as_name()).ok() == Some(b"DocTimeStamp".as_slice())
            })
            .expect("a DocTimeStamp dictionary");
        let br: Vec<usize> = ts_sig
            .get(b"ByteRange")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap() as usize)
            .collect();
        assert_eq!((br[0], br[2] + br[3]), (0, stamped.len()));
        let mut covered = stamped[..br[1]].to_vec();
        covered.extend_from_slice(&stamped[br[2]..]);
        let digest = openssl::sha::sha256(&covered);
        let token = ts_sig.get(b"Contents").unwrap().as_str().unwrap();
        let len = virtual_window::pki::signed::element_len(token).unwrap();
        let token_path = dir.path().join("doc-ts.tst");
        std::fs::write(&token_path, &token[..len]).unwrap();
        let ts_chain = dir.path().join("ts-chain.pem");
        std::fs::write(
            &ts_chain,
            chain.h.authority("timestamping-ca").unwrap().cert_pem(),
        )
        .unwrap();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let out = Command::new("openssl")
            .args(["ts", "-verify", "-token_in", "-digest", &hex, "-in"])
            .arg(&token_path)
            .arg("-CAfile")
            .arg(&root)
            .arg("-untrusted")
            .arg(&ts_chain)
            .output()
            .unwrap();
        let verdict = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && verdict.contains("Verification: OK"),
            "{verdict}"
        );

        // Poppler draws the seals without complaint.
        let png = Command::new("pdftoppm")
            .args(["-r", "20", "-f", "20", "-l", "20", "-png"])
            .arg(&path)
            .arg(dir.path().join("sealed"))
            .output()
            .unwrap();
        assert!(
            png.status.success() && png.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&png.stderr)
        );
    }

    #[test]
    fn validation_data_in_the_dss_is_enough_offline() {
        let Some(chain) = Chain::build() else { return };
        let parsed = lopdf::Document::load_mem(chain.step("dss")).unwrap();
        let dss = parsed
            .get_dictionary(
                parsed
                    .catalog()
                    .unwrap()
                    .get(b"DSS")
                    .unwrap()
                    .as_reference()
                    .unwrap(),
            )
            .unwrap();
        let load = |key: &[u8]| -> Vec<Vec<u8>> {
            dss.get(key)
                .unwrap()
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let mut st = parsed
                        .get_object(r.as_reference().unwrap())
                        .unwrap()
                        .as_stream()
                        .unwrap()
                        .clone();
                    st.decompress().unwrap();
                    st.content.clone()
                })
                .collect()
        };
        let offline = virtual_window::pki::Validation {
            anchors: vec![openssl::x509::X509::from_der(&chain.h.root.cert_der).unwrap()],
            intermediates: load(b"Certs")
                .iter()
                .map(|c| openssl::x509::X509::from_der(c).unwrap())
                .collect(),
            crls: load(b"CRLs")
                .iter()
                .map(|c| openssl::x509::X509Crl::from_der(c).unwrap())
                .collect(),
            require_revocation: true,
        };
        let (seal, _) = chain.issue(
            "organisations-ca",
            "organisation-seal",
            &Subject::OrganisationSeal {
                organisation: "东莞市云境置业有限公司".into(),
                uscc: "91441900MA4W0L7N36".into(),
                seal_name: "合同专用章".into(),
                seal_image_sha256: None,
            },
            KeyAlgorithm::EcdsaP256,
        );
        offline
            .validate(
                &openssl::x509::X509::from_der(&seal.der).unwrap(),
                chain.now,
                virtual_window::pki::Purpose::DocumentSigning,
            )
            .unwrap();
    }

    #[test]
    fn signing_refuses_a_signed_field_and_a_small_reservation_cleanly() {
        let Some(chain) = Chain::build() else { return };
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let attempt = |doc: &[u8], reserve: usize| {
            sign(
                doc,
                &SignOptions {
                    field: "buyer-1",
                    signer_cert: &chain.h.root.cert_der,
                    chain: vec![],
                    key: &key,
                    time: chain.now,
                    reason: None,
                    reserve,
                    timestamper: None,
                    certify: None,
                    visible: None,
                },
            )
            .unwrap_err()
            .to_string()
        };
        let err = attempt(chain.last(), 8192);
        assert!(err.contains("already signed"), "{err}");
        let err = attempt(chain.step("contract"), 64);
        assert!(err.contains("reserved"), "{err}");
    }
}
