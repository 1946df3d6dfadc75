//! Page layout: blocks of text (headings, paragraphs with CJK line breaking, tables), QR codes and
//! empty signature fields placed on A4 pages, with a running header and "第 N 页 共 M 页" footers;
//! then the PDF with an embedded subset of the font, XMP metadata and an sRGB output intent
//! (aiming at PDF/A-2b). The output depends only on the input: same input, same bytes.

use super::font::Font;
use super::writer::{self, Obj, Writer, dict, name, real, text};
use super::{PdfError, PdfResult};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

pub const PAGE_W: f32 = 595.276;
pub const PAGE_H: f32 = 841.89;
const MARGIN_X: f32 = 72.0;
const MARGIN_TOP: f32 = 72.0;
const MARGIN_BOTTOM: f32 = 64.0;
// 小四 (12 pt), the usual size of contract body text.
const BODY_SIZE: f32 = 12.0;
const LEADING: f32 = 1.65;

/// Characters that may not begin a line (closing punctuation) and may not end one (openers).
const NO_START: &str = "。，、；：？！）」』】》〉”’．,.;:?!)]%·～";
const NO_END: &str = "（「『【《〈“‘([";

#[derive(Clone, Debug)]
pub enum Block {
    /// Document title, centred.
    Title(String),
    /// A chapter or section heading.
    Heading(String),
    /// Body text; `indent` indents the first line by two characters.
    Paragraph {
        text: String,
        indent: bool,
    },
    /// A table with column widths as fractions of the text width; the first row is a header.
    Table {
        widths: Vec<f32>,
        rows: Vec<Vec<String>>,
    },
    Spacer(f32),
    PageBreak,
    /// A QR code of `data`, `size` points wide, with a caption beside it.
    QrCode {
        data: String,
        size: f32,
        caption: String,
    },
    /// An empty signature field, created now so that signing later only fills it.
    SignatureField {
        field: String,
        label: String,
        width: f32,
        height: f32,
    },
}

#[derive(Clone, Debug, Default)]
pub struct Metadata {
    pub title: String,
    /// Short keywords (contract number, parties), written to XMP dc:subject and Info /Keywords.
    pub keywords: Vec<String>,
    pub author: String,
    /// ISO 8601 time the document is dated, e.g. 2026-11-28T08:00:00+08:00.
    pub created: String,
    /// The running header on every page.
    pub header: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PlacedField {
    pub field: String,
    pub page: usize,
    /// x1 y1 x2 y2 in PDF user space.
    pub rect: [f32; 4],
}

pub struct Rendered {
    pub bytes: Vec<u8>,
    pub pages: usize,
    pub fields: Vec<PlacedField>,
}

enum Op {
    Text {
        x: f32,
        y: f32,
        size: f32,
        bold: bool,
        glyphs: Vec<u16>,
    },
    Line {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
        width: f32,
    },
    Rects {
        rects: Vec<[f32; 4]>,
    },
}

#[derive(Default)]
struct Page {
    ops: Vec<Op>,
    fields: Vec<(String, [f32; 4])>,
}

struct Layout<'a> {
    font: &'a Font,
    pages: Vec<Page>,
    y: f32,
    used: BTreeMap<u16, char>,
    /// Glyphs already in `used`, by id: the map is asked once per glyph, not once per character.
    seen: Vec<bool>,
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x2E80..=0x9FFF | 0xF900..=0xFAFF | 0xFF00..=0xFFEF)
}

impl<'a> Layout<'a> {
    fn new(font: &'a Font) -> Self {
        let mut l = Layout {
            font,
            pages: vec![],
            y: 0.0,
            used: BTreeMap::new(),
            seen: vec![false; font.glyph_count()],
        };
        l.new_page();
        l
    }

    fn new_page(&mut self) {
        self.pages.push(Page::default());
        self.y = PAGE_H - MARGIN_TOP;
    }

    fn page(&mut self) -> &mut Page {
        self.pages.last_mut().expect("a page exists")
    }

    fn text_width(&self) -> f32 {
        PAGE_W - 2.0 * MARGIN_X
    }

    fn ensure(&mut self, height: f32) {
        if self.y - height < MARGIN_BOTTOM {
            self.new_page();
        }
    }

    fn glyphs(&mut self, s: &str) -> PdfResult<Vec<(u16, f32)>> {
        s.chars()
            .map(|c| {
                let gid = self.font.glyph(c).ok_or(PdfError::MissingGlyph(c))?;
                match self.seen.get_mut(gid as usize) {
                    Some(seen) if *seen => {}
                    Some(seen) => {
                        *seen = true;
                        self.used.entry(gid).or_insert(c);
                    }
                    None => {
                        self.used.entry(gid).or_insert(c);
                    }
                }
                Ok((gid, self.font.advance_milli(gid)))
            })
            .collect()
    }

    /// Breaks `s` into lines no wider than `width` at `size`; returns each line's text.
    fn break_lines(&self, s: &str, width: f32, size: f32, first_indent: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for para in s.split('\n') {
            // Tokens: one CJK character, or a run of non-space Latin, or a space (slices of the
            // paragraph: no string per character).
            let mut tokens: Vec<&str> = Vec::new();
            let mut run: Option<usize> = None;
            for (i, c) in para.char_indices() {
                if !is_cjk(c) && c != ' ' {
                    run.get_or_insert(i);
                } else {
                    if let Some(start) = run.take() {
                        tokens.push(&para[start..i]);
                    }
                    tokens.push(&para[i..i + c.len_utf8()]);
                }
            }
            if let Some(start) = run {
                tokens.push(&para[start..]);
            }
            let adv = |t: &str| -> f32 {
                t.chars()
                    .map(|c| {
                        self.font
                            .glyph(c)
                            .map_or(0.0, |g| self.font.advance_milli(g))
                    })
                    .sum::<f32>()
                    * size
                    / 1000.0
            };
            let mut line = String::new();
            let mut w = if lines.is_empty() { first_indent } else { 0.0 };
            for t in tokens {
                let tw = adv(t);
                let mut cs = t.chars();
                let no_start = match (cs.next(), cs.next()) {
                    (Some(c), None) => NO_START.contains(c),
                    _ => false,
                };
                if w + tw > width + 0.01 && !line.is_empty() && !no_start {
                    // Keep an opening bracket with what follows it.
                    let mut carry = String::new();
                    while let Some(last) = line.chars().last() {
                        if NO_END.contains(last) {
                            carry.insert(0, last);
                            line.pop();
                        } else {
                            break;
                        }
                    }
                    lines.push(line.trim_end().to_owned());
                    line = carry;
                    w = adv(&line);
                    if t == " " {
                        continue;
                    }
                }
                line.push_str(t);
                w += tw;
            }
            lines.push(line.trim_end().to_owned());
        }
        lines
    }

    fn text_line(&mut self, s: &str, x: f32, y: f32, size: f32, bold: bool) -> PdfResult<()> {
        let glyphs: Vec<u16> = self.glyphs(s)?.into_iter().map(|(g, _)| g).collect();
        if !glyphs.is_empty() {
            self.page().ops.push(Op::Text {
                x,
                y,
                size,
                bold,
                glyphs,
            });
        }
        Ok(())
    }

    fn width_of(&mut self, s: &str, size: f32) -> PdfResult<f32> {
        Ok(self.glyphs(s)?.iter().map(|(_, a)| a).sum::<f32>() * size / 1000.0)
    }

    fn paragraph(
        &mut self,
        s: &str,
        size: f32,
        indent: bool,
        bold: bool,
        centre: bool,
    ) -> PdfResult<()> {
        let lead = size * LEADING;
        let first = if indent { 2.0 * size } else { 0.0 };
        let lines = self.break_lines(s, self.text_width(), size, first);
        for (i, line) in lines.iter().enumerate() {
            self.ensure(lead);
            self.y -= lead;
            let x = if centre {
                (PAGE_W - self.width_of(line, size)?) / 2.0
            } else {
                MARGIN_X + if i == 0 { first } else { 0.0 }
            };
            let y = self.y + (lead - size) / 2.0;
            self.text_line(line, x, y, size, bold)?;
        }
        Ok(())
    }

    fn table(&mut self, widths: &[f32], rows: &[Vec<String>]) -> PdfResult<()> {
        let size = BODY_SIZE - 1.0;
        let lead = size * 1.5;
        let pad = 3.0;
        let total = self.text_width();
        let cols: Vec<f32> = widths.iter().map(|w| w * total).collect();
        for (ri, row) in rows.iter().enumerate() {
            let cells: Vec<Vec<String>> = row
                .iter()
                .enumerate()
                .map(|(ci, c)| {
                    self.break_lines(
                        c,
                        cols.get(ci).copied().unwrap_or(total) - 2.0 * pad,
                        size,
                        0.0,
                    )
                })
                .collect();
            let n = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
            let h = n as f32 * lead + 2.0 * pad;
            if self.y - h < MARGIN_BOTTOM {
                self.new_page();
            }
            let top = self.y;
            let mut x = MARGIN_X;
            for (ci, lines) in cells.iter().enumerate() {
                for (li, line) in lines.iter().enumerate() {
                    let y = top - pad - (li as f32 + 1.0) * lead + (lead - size) / 2.0;
                    self.text_line(line, x + pad, y, size, ri == 0)?;
                }
                x += cols.get(ci).copied().unwrap_or(0.0);
            }
            // Borders: the row's top and bottom, and every column edge.
            let bottom = top - h;
            let page = self.page();
            page.ops.push(Op::Line {
                x1: MARGIN_X,
                y1: top,
                x2: MARGIN_X + total,
                y2: top,
                width: 0.5,
            });
            page.ops.push(Op::Line {
                x1: MARGIN_X,
                y1: bottom,
                x2: MARGIN_X + total,
                y2: bottom,
                width: 0.5,
            });
            let mut x = MARGIN_X;
            page.ops.push(Op::Line {
                x1: x,
                y1: top,
                x2: x,
                y2: bottom,
                width: 0.5,
            });
            for c in &cols {
                x += c;
                page.ops.push(Op::Line {
                    x1: x,
                    y1: top,
                    x2: x,
                    y2: bottom,
                    width: 0.5,
                });
            }
            self.y = bottom;
        }
        self.y -= 6.0;
        Ok(())
    }

    fn qr(&mut self, data: &str, size: f32, caption: &str) -> PdfResult<()> {
        let code = qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::M)
            .map_err(|e| PdfError::Subset(format!("QR code: {e}")))?;
        let n = code.width();
        let colors = code.to_colors();
        let module = size / n as f32;
        self.ensure(size + 8.0);
        let top = self.y - 4.0;
        let left = MARGIN_X;
        let mut rects = Vec::new();
        for row in 0..n {
            let mut col = 0;
            while col < n {
                if colors[row * n + col] == qrcode::Color::Dark {
                    // One rectangle per horizontal run of dark modules keeps the stream small.
                    let start = col;
                    while col < n && colors[row * n + col] == qrcode::Color::Dark {
                        col += 1;
                    }
                    let y = top - (row as f32 + 1.0) * module;
                    rects.push([
                        left + start as f32 * module,
                        y,
                        (col - start) as f32 * module,
                        module,
                    ]);
                } else {
                    col += 1;
                }
            }
        }
        self.page().ops.push(Op::Rects { rects });
        let cap_size = BODY_SIZE - 1.5;
        let lines = self.break_lines(caption, self.text_width() - size - 12.0, cap_size, 0.0);
        for (i, line) in lines.iter().enumerate() {
            let y = top - (i as f32 + 1.0) * cap_size * 1.5;
            self.text_line(line, left + size + 12.0, y, cap_size, false)?;
        }
        self.y = top - size - 8.0;
        Ok(())
    }

    fn signature_field(
        &mut self,
        field: &str,
        label: &str,
        width: f32,
        height: f32,
    ) -> PdfResult<()> {
        let size = BODY_SIZE;
        self.ensure(height + size * 2.0);
        self.y -= size * 1.8;
        self.text_line(label, MARGIN_X, self.y, size, true)?;
        let top = self.y - 4.0;
        let rect = [MARGIN_X, top - height, MARGIN_X + width, top];
        self.page().fields.push((field.to_owned(), rect));
        self.y = top - height - 6.0;
        Ok(())
    }
}

/// Old glyph id → (font resource, new id) for the fonts of one document.
struct GlyphMap<'a> {
    base: &'a SubsetFont,
    extra: &'a BTreeMap<u16, u16>,
}

impl GlyphMap<'_> {
    fn get(&self, g: u16) -> (&'static str, u16) {
        match self.base.new_id(g) {
            Some(n) => ("F1", n),
            None => ("F2", self.extra.get(&g).copied().unwrap_or(0)),
        }
    }
}

fn content_stream(page: &Page, map: &GlyphMap<'_>) -> Vec<u8> {
    let mut s = String::with_capacity(4096);
    for op in &page.ops {
        match op {
            Op::Text {
                x,
                y,
                size,
                bold,
                glyphs,
            } => {
                let mode = if *bold { "2 Tr 0.3 w " } else { "" };
                let _ = write!(
                    s,
                    "BT {mode}{} {} Td",
                    writer::num(*x as f64),
                    writer::num(*y as f64)
                );
                // One run per font: the text position advances by the glyphs' widths, so the
                // runs join seamlessly.
                let size = writer::num(*size as f64);
                let mut current = "";
                for g in glyphs {
                    let (f, n) = map.get(*g);
                    if f != current {
                        if !current.is_empty() {
                            s.push_str("> Tj");
                        }
                        let _ = write!(s, " /{f} {size} Tf <");
                        current = f;
                    }
                    // Four upper-case hex digits, as `{n:04X}` wrote them (without the
                    // formatter: this is every glyph of every page).
                    const HEX: &[u8; 16] = b"0123456789ABCDEF";
                    for shift in [12u16, 8, 4, 0] {
                        s.push(HEX[((n >> shift) & 0xf) as usize] as char);
                    }
                }
                if !current.is_empty() {
                    s.push_str("> Tj");
                }
                s.push_str(if *bold { " 0 Tr ET\n" } else { " ET\n" });
            }
            Op::Line {
                x1,
                y1,
                x2,
                y2,
                width,
            } => {
                let n = |v: &f32| writer::num(*v as f64);
                let _ = writeln!(
                    s,
                    "{} w {} {} m {} {} l S",
                    n(width),
                    n(x1),
                    n(y1),
                    n(x2),
                    n(y2)
                );
            }
            Op::Rects { rects } => {
                for r in rects {
                    let n = |v: f32| writer::num(v as f64);
                    let _ = write!(s, "{} {} {} {} re ", n(r[0]), n(r[1]), n(r[2]), n(r[3]));
                }
                s.push_str("f\n");
            }
        }
    }
    s.into_bytes()
}

fn xmp(meta: &Metadata, created: &str) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let keywords: String = meta
        .keywords
        .iter()
        .map(|k| format!("<rdf:li>{}</rdf:li>", esc(k)))
        .collect();
    format!(
        r#"<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:pdf="http://ns.adobe.com/pdf/1.3/" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">
<dc:format>application/pdf</dc:format>
<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{title}</rdf:li></rdf:Alt></dc:title>
<dc:creator><rdf:Seq><rdf:li>{author}</rdf:li></rdf:Seq></dc:creator>
<dc:subject><rdf:Bag>{keywords}</rdf:Bag></dc:subject>
<pdf:Keywords>{kw}</pdf:Keywords>
<pdf:Producer>Virtual Window</pdf:Producer>
<xmp:CreateDate>{created}</xmp:CreateDate>
<xmp:ModifyDate>{created}</xmp:ModifyDate>
<pdfaid:part>2</pdfaid:part>
<pdfaid:conformance>B</pdfaid:conformance>
</rdf:Description>
</rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"#,
        title = esc(&meta.title),
        author = esc(&meta.author),
        kw = esc(&meta.keywords.join("; ")),
        created = esc(created),
    )
}

/// The document's date from `Metadata::created` (RFC 3339), to the whole second: PDF dates have
/// no fractions, and PDF/A wants the Info dictionary and the XMP metadata to say the same time.
fn document_time(iso: &str) -> PdfResult<time::OffsetDateTime> {
    time::OffsetDateTime::parse(iso, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| t.replace_nanosecond(0).ok())
        .ok_or_else(|| PdfError::Date(iso.to_owned()))
}

/// 2026-11-28T08:00:00.5+08:00 → "D:20261128080000+08'00'" (ISO 32000-1 7.9.4).
fn pdf_date(t: time::OffsetDateTime) -> String {
    let (h, m, _) = t.offset().as_hms();
    let zone = if t.offset().is_utc() {
        "Z".to_owned()
    } else {
        let sign = if t.offset().is_negative() { '-' } else { '+' };
        format!("{sign}{:02}'{:02}'", h.unsigned_abs(), m.unsigned_abs())
    };
    format!(
        "D:{:04}{:02}{:02}{:02}{:02}{:02}{zone}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The same instant for XMP (RFC 3339 without fractions).
fn xmp_date(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Lays out `blocks` and writes the PDF.
pub fn render(font: &Font, meta: &Metadata, blocks: &[Block]) -> PdfResult<Rendered> {
    render_with_base(font, meta, blocks, None)
}

/// As `render`, with the characters of `base` (a template's text) embedded from a subset that is
/// made once and reused (`base_subset`); the document's other characters get a small subset.
pub fn render_with_base(
    font: &Font,
    meta: &Metadata,
    blocks: &[Block],
    base: Option<&SubsetFont>,
) -> PdfResult<Rendered> {
    let mut l = Layout::new(font);
    for b in blocks {
        match b {
            Block::Title(t) => {
                l.y -= 8.0;
                l.paragraph(t, 18.0, false, true, true)?;
                l.y -= 10.0;
            }
            Block::Heading(t) => {
                l.ensure(BODY_SIZE * 5.0);
                l.y -= 6.0;
                l.paragraph(t, BODY_SIZE + 1.5, false, true, false)?;
            }
            Block::Paragraph { text, indent } => {
                l.paragraph(text, BODY_SIZE, *indent, false, false)?
            }
            Block::Table { widths, rows } => l.table(widths, rows)?,
            Block::Spacer(h) => l.y -= h,
            Block::PageBreak => l.new_page(),
            Block::QrCode {
                data,
                size,
                caption,
            } => l.qr(data, *size, caption)?,
            Block::SignatureField {
                field,
                label,
                width,
                height,
            } => l.signature_field(field, label, *width, *height)?,
        }
    }
    // Running header and footer, now that the page count is known.
    let total = l.pages.len();
    for i in 0..total {
        let footer = format!("第 {} 页 共 {} 页", i + 1, total);
        let fw = l.width_of(&footer, 9.0)?;
        let hw = l.width_of(&meta.header, 9.0)?;
        let gl = l.glyphs(&footer)?.into_iter().map(|(g, _)| g).collect();
        let gh = l
            .glyphs(&meta.header)?
            .into_iter()
            .map(|(g, _)| g)
            .collect();
        let page = &mut l.pages[i];
        page.ops.push(Op::Text {
            x: (PAGE_W - fw) / 2.0,
            y: 36.0,
            size: 9.0,
            bold: false,
            glyphs: gl,
        });
        page.ops.push(Op::Text {
            x: PAGE_W - MARGIN_X - hw,
            y: PAGE_H - 44.0,
            size: 9.0,
            bold: false,
            glyphs: gh,
        });
        page.ops.push(Op::Line {
            x1: MARGIN_X,
            y1: PAGE_H - 50.0,
            x2: PAGE_W - MARGIN_X,
            y2: PAGE_H - 50.0,
            width: 0.4,
        });
    }
    write_pdf(font, meta, l, base)
}

/// A subset of the font, ready to embed: its glyphs (old ids), the program, old → new ids, and
/// the characters for its ToUnicode map.
pub struct SubsetFont {
    glyphs: BTreeSet<u16>,
    /// The font program and the ToUnicode map, Flate-compressed once.
    program_z: Vec<u8>,
    program_len: usize,
    to_unicode_z: Vec<u8>,
    map: BTreeMap<u16, u16>,
    /// `map` as a table by old id (new id + 1; 0 for none), made on first use: every glyph of
    /// every page is looked up, and a base subset serves document after document.
    dense: std::sync::OnceLock<Vec<u16>>,
    name: String,
}

impl SubsetFont {
    fn new_id(&self, old: u16) -> Option<u16> {
        let dense = self.dense.get_or_init(|| {
            let len = self.map.keys().next_back().map_or(0, |k| *k as usize + 1);
            let mut d = vec![0u16; len];
            for (old, new) in &self.map {
                // Glyph ids are below 65,535 (a face has at most 65,535 glyphs), so id + 1 fits.
                d[*old as usize] = new + 1;
            }
            d
        });
        match dense.get(old as usize).copied() {
            Some(0) | None => None,
            Some(n) => Some(n - 1),
        }
    }
}

fn make_subset(font: &Font, chars: &BTreeMap<u16, char>) -> PdfResult<SubsetFont> {
    let glyphs: BTreeSet<u16> = chars.keys().copied().collect();
    let subset = font.subset(&glyphs)?;
    let (program, remap) = (&subset.0, &subset.1);
    let map: BTreeMap<u16, u16> = remap.iter().map(|(a, b)| (*a, *b)).collect();
    let pairs: Vec<(u16, char)> = chars
        .iter()
        .filter_map(|(old, ch)| map.get(old).map(|n| (*n, *ch)))
        .collect();
    Ok(SubsetFont {
        name: font.subset_name(&glyphs),
        program_z: writer::deflate(program),
        program_len: program.len(),
        to_unicode_z: writer::deflate(&writer::to_unicode_cmap(&pairs)),
        map,
        dense: Default::default(),
        glyphs,
    })
}

/// Characters every document may need beyond its template: printable ASCII (figures, codes,
/// addresses) and the common Chinese punctuation.
const BASE_EXTRA: &str = "，。、；：？！（）【】《》“”‘’—…·－％　０１２３４５６７８９";

/// The subset for a template's own characters, made once per font and template text and kept:
/// subsetting is the largest fixed cost of a document, and every contract from one template
/// shares almost all of its characters. What the data adds goes into a small second subset.
pub fn base_subset(font: &Font, text: &str) -> PdfResult<std::sync::Arc<SubsetFont>> {
    use std::sync::{Arc, Mutex, OnceLock};
    // Kept by the face and the text itself (the glyph set follows from them): collecting the
    // glyphs of a whole template (tens of thousands of characters) to find the subset again
    // cost more than the rest of a small document.
    static CACHE: OnceLock<Mutex<std::collections::HashMap<[u8; 32], Arc<SubsetFont>>>> =
        OnceLock::new();
    let key = {
        let mut h = openssl::sha::Sha256::new();
        h.update(font.postscript_name().as_bytes());
        h.update(&(font.glyph_count() as u64).to_be_bytes());
        h.update(text.as_bytes());
        h.finish()
    };
    let cache = CACHE.get_or_init(Default::default);
    if let Some(s) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(s);
    }
    let mut chars: BTreeMap<u16, char> = BTreeMap::new();
    for c in text
        .chars()
        .chain((0x20u8..0x7f).map(char::from))
        .chain(BASE_EXTRA.chars())
    {
        if let Some(g) = font.glyph(c) {
            chars.entry(g).or_insert(c);
        }
    }
    let subset = Arc::new(make_subset(font, &chars)?);
    if let Ok(mut c) = cache.lock() {
        if c.len() >= 16 {
            c.clear();
        }
        c.insert(key, subset.clone());
    }
    Ok(subset)
}

/// Writes one subset as a Type0/CID font with widths and a ToUnicode map; returns its id.
fn write_font(w: &mut Writer, font: &Font, sub: &SubsetFont) -> u32 {
    let file_id = if font.is_cff() {
        w.add_flate_stream(vec![("Subtype", name("CIDFontType0C"))], &sub.program_z)
    } else {
        w.add_flate_stream(
            vec![("Length1", Obj::Int(sub.program_len as i64))],
            &sub.program_z,
        )
    };
    let bbox = font.bbox_milli();
    let descriptor = w.add(&dict(vec![
        ("Type", name("FontDescriptor")),
        ("FontName", name(&sub.name)),
        ("Flags", Obj::Int(4)),
        (
            "FontBBox",
            Obj::Array(bbox.iter().map(|v| Obj::Int(*v as i64)).collect()),
        ),
        ("ItalicAngle", Obj::Int(0)),
        ("Ascent", Obj::Int(font.ascender_milli() as i64)),
        ("Descent", Obj::Int(font.descender_milli() as i64)),
        ("CapHeight", Obj::Int(font.cap_height_milli() as i64)),
        ("StemV", Obj::Int(80)),
        (
            if font.is_cff() {
                "FontFile3"
            } else {
                "FontFile2"
            },
            Obj::Ref(file_id),
        ),
    ]));
    let mut widths = Vec::new();
    for (old, new) in &sub.map {
        widths.push(Obj::Int(*new as i64));
        widths.push(Obj::Array(vec![Obj::Int(
            font.advance_milli(*old).round() as i64
        )]));
    }
    let mut cid_font = vec![
        ("Type", name("Font")),
        (
            "Subtype",
            name(if font.is_cff() {
                "CIDFontType0"
            } else {
                "CIDFontType2"
            }),
        ),
        ("BaseFont", name(&sub.name)),
        (
            "CIDSystemInfo",
            dict(vec![
                ("Registry", Obj::Str(b"Adobe".to_vec())),
                ("Ordering", Obj::Str(b"Identity".to_vec())),
                ("Supplement", Obj::Int(0)),
            ]),
        ),
        ("FontDescriptor", Obj::Ref(descriptor)),
        ("DW", Obj::Int(1000)),
        ("W", Obj::Array(widths)),
    ];
    if !font.is_cff() {
        cid_font.push(("CIDToGIDMap", name("Identity")));
    }
    let cid_id = w.add(&dict(cid_font));
    let to_unicode = w.add_flate_stream(vec![], &sub.to_unicode_z);
    w.add(&dict(vec![
        ("Type", name("Font")),
        ("Subtype", name("Type0")),
        ("BaseFont", name(&sub.name)),
        ("Encoding", name("Identity-H")),
        ("DescendantFonts", Obj::Array(vec![Obj::Ref(cid_id)])),
        ("ToUnicode", Obj::Ref(to_unicode)),
    ]))
}

fn write_pdf(
    font: &Font,
    meta: &Metadata,
    l: Layout<'_>,
    base: Option<&SubsetFont>,
) -> PdfResult<Rendered> {
    let created = document_time(&meta.created)?;
    // Glyphs the base subset has come from it; the rest (or everything, without a base) go
    // into a subset of their own.
    let extra_chars: BTreeMap<u16, char> = l
        .used
        .iter()
        .filter(|(g, _)| base.is_none_or(|b| !b.glyphs.contains(g)))
        .map(|(g, c)| (*g, *c))
        .collect();
    let extra = if extra_chars.is_empty() {
        None
    } else {
        Some(make_subset(font, &extra_chars)?)
    };
    let no_map = BTreeMap::new();
    let (first, second): (&SubsetFont, Option<&SubsetFont>) = match (base, extra.as_ref()) {
        (Some(b), e) => (b, e),
        (None, Some(e)) => (e, None),
        (None, None) => return Err(crate::pdf::PdfError::Subset("no text".into())),
    };
    let map = GlyphMap {
        base: first,
        extra: second.map(|s| &s.map).unwrap_or(&no_map),
    };
    let mut w = Writer::new();
    let catalog = w.alloc();
    let pages_id = w.alloc();
    let f1 = write_font(&mut w, font, first);
    let f2 = second.map(|s| write_font(&mut w, font, s));
    let mut font_resources = vec![("F1", Obj::Ref(f1))];
    if let Some(f2) = f2 {
        font_resources.push(("F2", Obj::Ref(f2)));
    }

    // Pages, with their signature-field widgets.
    let mut kids = Vec::new();
    let mut fields = Vec::new();
    let mut field_refs = Vec::new();
    let empty_ap = w.add_stream(
        vec![
            ("Type", name("XObject")),
            ("Subtype", name("Form")),
            (
                "BBox",
                Obj::Array(vec![Obj::Int(0), Obj::Int(0), Obj::Int(0), Obj::Int(0)]),
            ),
        ],
        b"",
        false,
    );
    // The document id hashes what the document says, so identical input gives identical bytes
    // and different documents never share an id.
    let mut id_hash = openssl::sha::Sha256::new();
    id_hash.update(meta.title.as_bytes());
    id_hash.update(meta.created.as_bytes());
    for (pi, page) in l.pages.iter().enumerate() {
        let page_id = w.alloc();
        let stream = content_stream(page, &map);
        id_hash.update(&stream);
        let content = w.add_stream(vec![], &stream, true);
        let mut annots = Vec::new();
        for (field, rect) in &page.fields {
            let widget = w.add(&dict(vec![
                ("Type", name("Annot")),
                ("Subtype", name("Widget")),
                ("FT", name("Sig")),
                ("T", text(field)),
                ("F", Obj::Int(4)),
                (
                    "Rect",
                    Obj::Array(rect.iter().map(|v| real(*v as f64)).collect()),
                ),
                ("P", Obj::Ref(page_id)),
                ("AP", dict(vec![("N", Obj::Ref(empty_ap))])),
            ]));
            annots.push(Obj::Ref(widget));
            field_refs.push(Obj::Ref(widget));
            fields.push(PlacedField {
                field: field.clone(),
                page: pi,
                rect: *rect,
            });
        }
        let mut entries = vec![
            ("Type", name("Page")),
            ("Parent", Obj::Ref(pages_id)),
            (
                "MediaBox",
                Obj::Array(vec![
                    Obj::Int(0),
                    Obj::Int(0),
                    real(PAGE_W as f64),
                    real(PAGE_H as f64),
                ]),
            ),
            (
                "Resources",
                dict(vec![("Font", dict(font_resources.clone()))]),
            ),
            ("Contents", Obj::Ref(content)),
        ];
        if !annots.is_empty() {
            entries.push(("Annots", Obj::Array(annots)));
        }
        w.set(page_id, &dict(entries));
        kids.push(Obj::Ref(page_id));
    }
    w.set(
        pages_id,
        &dict(vec![
            ("Type", name("Pages")),
            ("Count", Obj::Int(kids.len() as i64)),
            ("Kids", Obj::Array(kids.clone())),
        ]),
    );

    let icc = writer::srgb_icc();
    let icc_id = w.add_stream(vec![("N", Obj::Int(3))], &icc, true);
    let xmp_id = w.add_stream(
        vec![("Type", name("Metadata")), ("Subtype", name("XML"))],
        xmp(meta, &xmp_date(created)).as_bytes(),
        false,
    );
    let mut cat = vec![
        ("Type", name("Catalog")),
        ("Pages", Obj::Ref(pages_id)),
        ("Metadata", Obj::Ref(xmp_id)),
        ("Lang", Obj::Str(b"zh-CN".to_vec())),
        (
            "OutputIntents",
            Obj::Array(vec![dict(vec![
                ("Type", name("OutputIntent")),
                ("S", name("GTS_PDFA1")),
                ("OutputConditionIdentifier", Obj::Str(b"sRGB".to_vec())),
                ("DestOutputProfile", Obj::Ref(icc_id)),
            ])]),
        ),
    ];
    if !field_refs.is_empty() {
        cat.push(("AcroForm", dict(vec![("Fields", Obj::Array(field_refs))])));
    }
    w.set(catalog, &dict(cat));
    let info = w.add(&dict(vec![
        ("Title", text(&meta.title)),
        ("Author", text(&meta.author)),
        ("Keywords", text(&meta.keywords.join("; "))),
        ("Producer", Obj::Str(b"Virtual Window".to_vec())),
        ("CreationDate", Obj::Str(pdf_date(created).into_bytes())),
        ("ModDate", Obj::Str(pdf_date(created).into_bytes())),
    ]));
    let mut id = [0u8; 16];
    id.copy_from_slice(&id_hash.finish()[..16]);
    let pages = l.pages.len();
    Ok(Rendered {
        bytes: w.finish(catalog, Some(info), id),
        pages,
        fields,
    })
}
