//! The documents room, checked with tools nobody here wrote: poppler's pdftotext, pdffonts and
//! pdftoppm, and qpdf.

use std::process::Command;
use virtual_window::pdf::font::Font;
use virtual_window::pdf::layout::{Block, Metadata, render};

/// The CJK font. scripts/test installs fonts-noto-cjk and sets VW_REQUIRE_CJK_FONT=1, and then a
/// missing font fails the test instead of skipping it.
pub fn cjk_font() -> Option<Font> {
    match Font::find(None) {
        Ok(f) => Some(f),
        Err(e) => {
            assert!(
                std::env::var("VW_REQUIRE_CJK_FONT").as_deref() != Ok("1"),
                "{e}"
            );
            None
        }
    }
}

fn tool(cmd: &str, args: &[&str]) -> String {
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
    let Some(font) = cjk_font() else { return };
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

#[test]
#[ignore = "writes target/sample-doc.pdf for a look by eye"]
fn write_sample_for_inspection() {
    let font = cjk_font().unwrap();
    let r = render(&font, &meta(), &sample_blocks()).unwrap();
    std::fs::write("target/sample-doc.pdf", &r.bytes).unwrap();
}
