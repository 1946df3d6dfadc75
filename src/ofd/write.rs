//! Writes the registration certificate as an OFD package (GB/T 33190) and seals it with a
//! GB/T 38540 seal signature: every file of the package under References (SM3), dataHash =
//! SM3(Signature.xml), SM2 over DER(TBS_Sign), the seal drawn by readers at the StampAnnot.

use crate::pdf::layout::Block;
use crate::pki::gm::GmAuthority;
use crate::pki::ses;
use crate::pki::sm2;
use base64::Engine;
use std::collections::BTreeMap;
use std::io::Write;
use time::OffsetDateTime;

/// What the certificate says: the blocks its PDF is laid out from (the same template, filled
/// with the same values), and the structured data the package carries.
#[derive(Clone, Debug)]
pub struct CertificateContent {
    /// The document's title (DocInfo).
    pub title: String,
    /// The issuing authority (DocInfo's author).
    pub authority: String,
    /// Title, paragraphs, the table, the QR code with its caption, the seal's label.
    pub blocks: Vec<Block>,
    /// Structured data carried in the package (CustomData and the XML attachment).
    pub data: Vec<(String, String)>,
}

/// The seal to stamp: the seal data (DER SESeal) and the holder allowed to use it.
pub struct Stamp<'a> {
    pub seal: &'a [u8],
    pub signer: &'a GmAuthority,
    /// The issuing CA certificates of the signer and the seal maker (below the root), carried
    /// in the package so a verifier that trusts only the root can build the chains.
    pub chain: Vec<Vec<u8>>,
    /// CRLs covering the certificates above, carried in the package (`CRLS_FILE`).
    pub crls: Vec<Vec<u8>>,
    /// The SM2 time-stamping unit: with it, the seal signature carries a time-stamp token.
    pub tsa: Option<&'a GmAuthority>,
}

pub const NS: &str = "http://www.ofdspec.org/2016";
/// Where the structured data travels (an XML attachment, like the tax e-invoice's).
pub const DATA_FILE: &str = "Doc_0/Attachs/certificate.xml";
/// The CA certificates below the root, DER SEQUENCE OF Certificate (our convention; covered by
/// the References like every other file).
pub const CHAIN_FILE: &str = "Doc_0/Signs/Sign_0/CACerts.der";
/// CRLs for the seal's certificates, DER SEQUENCE OF CertificateList (our convention, covered by
/// the References; the OFD counterpart of a PDF's DSS).
pub const CRLS_FILE: &str = "Doc_0/Signs/Sign_0/CRLs.der";
const FONT: &str = "Noto Serif CJK SC";

pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t') => {}
            c => o.push(c),
        }
    }
    o
}

/// Width of a character in ems: CJK and full-width forms 1, the rest ½.
fn em(c: char) -> f64 {
    if (c as u32) < 0x2e80 { 0.5 } else { 1.0 }
}

/// Splits text into lines no wider than `width` ems.
fn wrap(text: &str, width: f64) -> Vec<String> {
    wrap_from(text, width, 0.0)
}

/// As `wrap`, the first line starting `first` ems in.
fn wrap_from(text: &str, width: f64, first: f64) -> Vec<String> {
    let mut lines = vec![String::new()];
    let mut w = first;
    for c in text.chars() {
        if w + em(c) > width && !lines.last().is_some_and(String::is_empty) {
            lines.push(String::new());
            w = 0.0;
        }
        lines.last_mut().expect("one line at least").push(c);
        w += em(c);
    }
    lines
}

struct Page {
    objects: String,
    next_id: u32,
}

impl Page {
    fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    fn text(&mut self, x: f64, y: f64, size: f64, s: &str) {
        if s.is_empty() {
            return;
        }
        let id = self.id();
        let deltas: Vec<String> = s
            .chars()
            .take(s.chars().count().saturating_sub(1))
            .map(|c| format!("{:.2}", em(c) * size))
            .collect();
        let width: f64 = s.chars().map(|c| em(c) * size).sum();
        self.objects.push_str(&format!(
            "<ofd:TextObject ID=\"{id}\" Boundary=\"{x:.2} {:.2} {:.2} {:.2}\" Font=\"2\" Size=\"{size:.2}\">\
<ofd:FillColor Value=\"0 0 0\"/><ofd:TextCode X=\"0\" Y=\"{size:.2}\"{}>{}</ofd:TextCode></ofd:TextObject>",
            y - size,
            width + 1.0,
            size * 1.4,
            if deltas.is_empty() {
                String::new()
            } else {
                format!(" DeltaX=\"{}\"", deltas.join(" "))
            },
            xml_escape(s)
        ));
    }

    /// A QR code of `data`, `side` mm square at (x, y), as filled rectangles (vector, no image
    /// resource): drawn in module units scaled by the object's CTM, one rectangle per
    /// horizontal run of dark modules.
    fn qr(&mut self, x: f64, y: f64, side: f64, data: &str) {
        use std::fmt::Write as _;
        let Ok(code) =
            qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::M)
        else {
            return;
        };
        let n = code.width();
        let colors = code.to_colors();
        let module = side / n as f64;
        let mut d = String::with_capacity(n * n * 4);
        for row in 0..n {
            let mut col = 0;
            while col < n {
                if colors[row * n + col] != qrcode::Color::Dark {
                    col += 1;
                    continue;
                }
                let start = col;
                while col < n && colors[row * n + col] == qrcode::Color::Dark {
                    col += 1;
                }
                let _ = write!(
                    d,
                    "M {start} {row} L {col} {row} L {col} {} L {start} {} C ",
                    row + 1,
                    row + 1
                );
            }
        }
        let id = self.id();
        let _ = write!(
            self.objects,
            "<ofd:PathObject ID=\"{id}\" Boundary=\"{x:.2} {y:.2} {side:.2} {side:.2}\" CTM=\"{module:.5} 0 0 {module:.5} 0 0\" Fill=\"true\" Stroke=\"false\"><ofd:FillColor Value=\"0 0 0\"/><ofd:AbbreviatedData>{}</ofd:AbbreviatedData></ofd:PathObject>",
            d.trim_end()
        );
    }

    fn path(&mut self, boundary: (f64, f64, f64, f64), data: &str, fill: bool) {
        let id = self.id();
        let (x, y, w, h) = boundary;
        self.objects.push_str(&format!(
            "<ofd:PathObject ID=\"{id}\" Boundary=\"{x:.2} {y:.2} {w:.2} {h:.2}\" LineWidth=\"0.25\"{}>{}<ofd:AbbreviatedData>{data}</ofd:AbbreviatedData></ofd:PathObject>",
            if fill { " Fill=\"true\" Stroke=\"false\"" } else { "" },
            if fill {
                "<ofd:FillColor Value=\"0 0 0\"/>"
            } else {
                "<ofd:StrokeColor Value=\"0 0 0\"/>"
            },
        ));
    }
}

// An A4 page with 20 mm margins; sizes in mm (a PDF point is 0.3528 mm).
const LEFT: f64 = 20.0;
const WIDTH: f64 = 170.0;
const BODY: f64 = 4.2;
const LINE: f64 = 6.4;
const PT: f64 = 0.3528;

/// The page laid out: its content and where the seal goes.
struct Laid {
    content: String,
    max_id: u32,
    stamp: (f64, f64, f64, f64),
}

/// Lays the blocks out top to bottom on one page, as the PDF does: the title centred, text
/// wrapped to the width, the table ruled with its first row as header, the QR code with its
/// caption beside it, and the seal's label with the seal's place under it.
fn lay_out(c: &CertificateContent) -> Laid {
    use std::fmt::Write as _;
    let mut p = Page {
        objects: String::new(),
        next_id: 10,
    };
    let mut y = 20.0;
    let mut stamp = (LEFT, 200.0, 40.0, 40.0);
    for block in &c.blocks {
        match block {
            Block::Title(t) => {
                y += 10.0;
                let w: f64 = t.chars().map(em).sum::<f64>() * 8.0;
                p.text(LEFT + (WIDTH - w) / 2.0, y, 8.0, t);
                y += 6.0;
            }
            Block::Heading(t) => {
                y += LINE;
                p.text(LEFT, y, 5.0, t);
                y += 2.0;
            }
            Block::Paragraph { text, indent } => {
                let first = if *indent { 2.0 } else { 0.0 };
                for (i, line) in wrap_from(text, WIDTH / BODY, first).iter().enumerate() {
                    y += LINE;
                    let x = if i == 0 { LEFT + first * BODY } else { LEFT };
                    p.text(x, y, BODY, line);
                }
            }
            Block::Spacer(pt) => y += *pt as f64 * PT,
            Block::PageBreak => {}
            Block::Table { widths, rows } => {
                let size = 4.0;
                let xs: Vec<f64> = std::iter::once(0.0)
                    .chain(widths.iter().scan(0.0, |acc, w| {
                        *acc += *w as f64 * WIDTH;
                        Some(*acc)
                    }))
                    .map(|x| LEFT + x)
                    .collect();
                y += 3.0;
                let top = y;
                let mut rules = format!("M {LEFT} {y} L {} {y}", LEFT + WIDTH);
                for row in rows {
                    let cells: Vec<Vec<String>> = row
                        .iter()
                        .enumerate()
                        .map(|(i, cell)| {
                            let w = xs.get(i + 1).copied().unwrap_or(LEFT + WIDTH)
                                - xs.get(i).copied().unwrap_or(LEFT);
                            wrap(cell, (w - 4.0) / size)
                        })
                        .collect();
                    let lines = cells.iter().map(Vec::len).max().unwrap_or(1);
                    let h = lines as f64 * 6.0 + 2.0;
                    for (i, cell) in cells.iter().enumerate() {
                        for (k, l) in cell.iter().enumerate() {
                            p.text(
                                xs[i.min(xs.len() - 1)] + 2.0,
                                y + 6.0 + k as f64 * 6.0,
                                size,
                                l,
                            );
                        }
                    }
                    y += h;
                    let _ = write!(rules, " M {LEFT} {y} L {} {y}", LEFT + WIDTH);
                }
                for x in &xs {
                    let _ = write!(rules, " M {x} {top} L {x} {y}");
                }
                p.path((0.0, 0.0, 210.0, 297.0), &rules, false);
            }
            Block::QrCode {
                data,
                size,
                caption,
            } => {
                y += 4.0;
                let side = (*size as f64 * PT).clamp(20.0, 40.0);
                p.qr(LEFT, y, side, data);
                let cap_x = LEFT + side + 4.0;
                let lines = wrap(caption, (LEFT + WIDTH - cap_x) / 3.5);
                for (i, l) in lines.iter().enumerate() {
                    p.text(cap_x, y + 4.0 + i as f64 * 5.0, 3.5, l);
                }
                y += side.max(lines.len() as f64 * 5.0);
            }
            Block::SignatureField { label, .. } => {
                y += LINE + 2.0;
                p.text(LEFT, y, BODY, label);
                // The seal is drawn by readers at the StampAnnot, under its label.
                stamp = (LEFT + 10.0, y + 2.0, 40.0, 40.0);
                y += 44.0;
            }
        }
    }
    let max_id = p.next_id;
    Laid {
        content: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ofd:Page xmlns:ofd=\"{NS}\"><ofd:Content><ofd:Layer ID=\"9\">{}</ofd:Layer></ofd:Content></ofd:Page>",
            p.objects
        ),
        max_id,
        stamp,
    }
}

fn data_xml(c: &CertificateContent) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<RegistrationCertificate xmlns=\"urn:virtual-window:registration-certificate:1\">\n",
    );
    for (k, v) in &c.data {
        s.push_str(&format!(
            "  <Field name=\"{}\">{}</Field>\n",
            xml_escape(k),
            xml_escape(v)
        ));
    }
    s.push_str("</RegistrationCertificate>\n");
    s
}

/// A package before sealing: its files (path → bytes, no leading slash) and where the page
/// leaves room for the seal (mm).
pub struct Unsealed {
    pub files: BTreeMap<String, Vec<u8>>,
    pub stamp_box: (f64, f64, f64, f64),
}

/// The package's files before sealing, laid out once.
pub fn package_files(c: &CertificateContent, doc_id: &str, created: OffsetDateTime) -> Unsealed {
    let mut files = BTreeMap::new();
    let Laid {
        content,
        max_id,
        stamp,
    } = lay_out(c);
    let custom: String = c
        .data
        .iter()
        .map(|(k, v)| {
            format!(
                "<ofd:CustomData Name=\"{}\">{}</ofd:CustomData>",
                xml_escape(k),
                xml_escape(v)
            )
        })
        .collect();
    let date = created.date();
    files.insert(
        "OFD.xml".into(),
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ofd:OFD xmlns:ofd=\"{NS}\" Version=\"1.0\" DocType=\"OFD\"><ofd:DocBody><ofd:DocInfo><ofd:DocID>{doc_id}</ofd:DocID><ofd:Title>{}</ofd:Title><ofd:Author>{}</ofd:Author><ofd:CreationDate>{date}</ofd:CreationDate><ofd:Creator>Virtual Window</ofd:Creator><ofd:CustomDatas>{custom}</ofd:CustomDatas></ofd:DocInfo><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot><ofd:Signatures>Doc_0/Signs/Signatures.xml</ofd:Signatures></ofd:DocBody></ofd:OFD>",
            xml_escape(&c.title),
            xml_escape(&c.authority),
        )
        .into_bytes(),
    );
    files.insert(
        "Doc_0/Document.xml".into(),
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ofd:Document xmlns:ofd=\"{NS}\"><ofd:CommonData><ofd:MaxUnitID>{max_id}</ofd:MaxUnitID><ofd:PageArea><ofd:PhysicalBox>0 0 210 297</ofd:PhysicalBox></ofd:PageArea><ofd:PublicRes>PublicRes.xml</ofd:PublicRes></ofd:CommonData><ofd:Pages><ofd:Page ID=\"1\" BaseLoc=\"Pages/Page_0/Content.xml\"/></ofd:Pages><ofd:Attachments>Attachs/Attachments.xml</ofd:Attachments></ofd:Document>"
        )
        .into_bytes(),
    );
    files.insert(
        "Doc_0/PublicRes.xml".into(),
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ofd:Res xmlns:ofd=\"{NS}\" BaseLoc=\"Res\"><ofd:Fonts><ofd:Font ID=\"2\" FontName=\"{FONT}\" FamilyName=\"{FONT}\"/></ofd:Fonts></ofd:Res>"
        )
        .into_bytes(),
    );
    files.insert(
        "Doc_0/Pages/Page_0/Content.xml".into(),
        content.into_bytes(),
    );
    files.insert(
        "Doc_0/Attachs/Attachments.xml".into(),
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ofd:Attachments xmlns:ofd=\"{NS}\"><ofd:Attachment ID=\"3\" Name=\"certificate.xml\" Format=\"xml\" CreationDate=\"{date}\" Visible=\"false\" Usage=\"data\"><ofd:FileLoc>certificate.xml</ofd:FileLoc></ofd:Attachment></ofd:Attachments>"
        )
        .into_bytes(),
    );
    files.insert(DATA_FILE.into(), data_xml(c).into_bytes());
    Unsealed {
        files,
        stamp_box: stamp,
    }
}

/// Seals the package: Signatures.xml, Signature.xml (References over every other file, SM3),
/// SignedValue.dat (the SES_Signature), and returns the zipped package.
pub fn seal_package(
    unsealed: Unsealed,
    stamp: &Stamp<'_>,
    at: OffsetDateTime,
) -> crate::pki::PkiResult<Vec<u8>> {
    let Unsealed {
        mut files,
        stamp_box,
    } = unsealed;
    let sig_dir = "Doc_0/Signs/Sign_0";
    let sig_xml_path = format!("{sig_dir}/Signature.xml");
    let value_path = format!("{sig_dir}/SignedValue.dat");
    files.insert(
        "Doc_0/Signs/Signatures.xml".into(),
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ofd:Signatures xmlns:ofd=\"{NS}\"><ofd:MaxSignId>1</ofd:MaxSignId><ofd:Signature ID=\"1\" Type=\"Seal\" BaseLoc=\"/{sig_xml_path}\"/></ofd:Signatures>"
        )
        .into_bytes(),
    );
    let chain: Vec<Vec<u8>> = stamp.chain.clone();
    files.insert(CHAIN_FILE.into(), crate::pki::der::sequence(&chain));
    if !stamp.crls.is_empty() {
        files.insert(CRLS_FILE.into(), crate::pki::der::sequence(&stamp.crls));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    // Every file but the signature's own two; Signatures.xml too, so the package is closed to
    // further seals (the certificate is final when the centre seals it).
    let refs: String = files
        .iter()
        .map(|(path, bytes)| {
            format!(
                "<ofd:Reference FileRef=\"/{}\"><ofd:CheckValue>{}</ofd:CheckValue></ofd:Reference>",
                xml_escape(path),
                b64.encode(sm2::sm3(bytes))
            )
        })
        .collect();
    let (x, y, w, h) = stamp_box;
    let when = at.to_offset(time::UtcOffset::UTC);
    let sig_xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ofd:Signature xmlns:ofd=\"{NS}\"><ofd:SignedInfo><ofd:Provider ProviderName=\"Virtual Window\" Version=\"1\" Company=\"Virtual Window\"/><ofd:SignatureMethod>{}</ofd:SignatureMethod><ofd:SignatureDateTime>{:04}{:02}{:02}{:02}{:02}{:02}Z</ofd:SignatureDateTime><ofd:References CheckMethod=\"{}\">{refs}</ofd:References><ofd:StampAnnot ID=\"1\" PageRef=\"1\" Boundary=\"{x:.2} {y:.2} {w:.2} {h:.2}\"/></ofd:SignedInfo><ofd:SignedValue>/{value_path}</ofd:SignedValue></ofd:Signature>",
        sm2::OID_SM2_SM3,
        when.year(),
        when.month() as u8,
        when.day(),
        when.hour(),
        when.minute(),
        when.second(),
        sm2::OID_SM3,
    )
    .into_bytes();
    let value = ses::sign(
        stamp.seal,
        stamp.signer,
        at,
        &sm2::sm3(&sig_xml),
        &format!("/{sig_xml_path}"),
        stamp.tsa,
    )?;
    files.insert(sig_xml_path, sig_xml);
    files.insert(value_path, value);
    zip_files(&files).map_err(|e| crate::pki::PkiError::Build(format!("zip: {e}")))
}

pub fn zip_files(files: &BTreeMap<String, Vec<u8>>) -> zip::result::ZipResult<Vec<u8>> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    // Stored, not deflated: the package is small (about 40 KB), and deflate at level 6 was a
    // third of the sealing time (level 1 still a sixth).
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    // OFD.xml first, as readers look for it.
    let mut order: Vec<&String> = files.keys().collect();
    order.sort_by_key(|k| (k.as_str() != "OFD.xml", k.as_str()));
    for name in order {
        z.start_file(name.as_str(), opts)?;
        z.write_all(&files[name])?;
    }
    Ok(z.finish()?.into_inner())
}

/// The seal data's picture: `seal_svg`, 40 mm across.
pub fn seal_picture(organisation: &str, purpose: &str) -> ses::SealPicture {
    ses::SealPicture {
        kind: "SVG".into(),
        data: seal_svg(organisation, purpose),
        width_mm: 40,
        height_mm: 40,
    }
}

/// The seal's picture as SVG: the red ring, the star, the holder's name along the arc and the
/// seal's purpose below — the same design as the PDF seal.
pub fn seal_svg(organisation: &str, purpose: &str) -> Vec<u8> {
    let star: Vec<String> = (0..10)
        .map(|i| {
            let r = if i % 2 == 0 { 9.0 } else { 3.6 };
            let a = std::f64::consts::PI * (i as f64 / 5.0) - std::f64::consts::FRAC_PI_2;
            format!("{:.2},{:.2}", 20.0 + r * a.cos(), 20.0 + r * a.sin())
        })
        .collect();
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"40mm\" height=\"40mm\" viewBox=\"0 0 40 40\">\
<defs><path id=\"arc\" d=\"M 7,22 A 13,13 0 1 1 33,22\"/></defs>\
<circle cx=\"20\" cy=\"20\" r=\"18.6\" fill=\"none\" stroke=\"#d0021b\" stroke-width=\"1.4\"/>\
<polygon points=\"{}\" fill=\"#d0021b\"/>\
<text font-family=\"{FONT}, serif\" font-size=\"4\" fill=\"#d0021b\"><textPath href=\"#arc\" startOffset=\"50%\" text-anchor=\"middle\">{}</textPath></text>\
<text x=\"20\" y=\"33\" font-family=\"{FONT}, serif\" font-size=\"3\" fill=\"#d0021b\" text-anchor=\"middle\">{}</text></svg>",
        star.join(" "),
        xml_escape(organisation),
        xml_escape(purpose)
    )
    .into_bytes()
}
