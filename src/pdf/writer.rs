//! A small PDF writer: numbered objects serialised in order, a classic cross-reference table, and
//! nothing that varies between runs (no clock, no random ids), so the same input gives the same
//! bytes. Content streams are compressed with Flate.

use std::fmt::Write as _;
use std::io::Write as _;

/// A PDF object.
#[derive(Clone, Debug, PartialEq)]
pub enum Obj {
    Null,
    Bool(bool),
    Int(i64),
    Real(f64),
    Name(String),
    /// A literal string, written in hex so no escaping can go wrong.
    Str(Vec<u8>),
    Array(Vec<Obj>),
    Dict(Vec<(String, Obj)>),
    Ref(u32),
    /// Bytes written as they are: a token copied from another file (a name with escapes, a
    /// number in its original precision, a reference with a generation).
    Raw(Vec<u8>),
}

pub fn name(s: &str) -> Obj {
    Obj::Name(s.to_owned())
}

pub fn dict(entries: Vec<(&str, Obj)>) -> Obj {
    Obj::Dict(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

pub fn real(v: f64) -> Obj {
    Obj::Real(v)
}

/// A text string: PDFDocEncoding for ASCII, UTF-16BE with BOM otherwise.
pub fn text(s: &str) -> Obj {
    if s.is_ascii() {
        Obj::Str(s.as_bytes().to_vec())
    } else {
        let mut b = vec![0xfe, 0xff];
        for u in s.encode_utf16() {
            b.extend_from_slice(&u.to_be_bytes());
        }
        Obj::Str(b)
    }
}

/// Formats a number the way PDF wants it: no exponent, at most 4 decimals, no trailing zeros.
pub fn num(v: f64) -> String {
    // Integer arithmetic instead of `format!("{v:.4}")`, whose exact decimal expansion was a
    // measurable share of writing a contract (thousands of coordinates per page).
    let scaled = (v * 10_000.0).round();
    if !scaled.is_finite() || scaled.abs() > 9.0e15 {
        return format!("{v}");
    }
    let mut n = scaled as i64;
    if n == 0 {
        return "0".into();
    }
    let mut s = String::with_capacity(12);
    if n < 0 {
        s.push('-');
        n = -n;
    }
    let (int, mut frac) = (n / 10_000, n % 10_000);
    let _ = write!(s, "{int}");
    if frac != 0 {
        let mut digits = 4;
        while frac % 10 == 0 {
            frac /= 10;
            digits -= 1;
        }
        let _ = write!(s, ".{frac:0digits$}");
    }
    s
}

fn write_name(out: &mut Vec<u8>, n: &str) {
    out.push(b'/');
    for b in n.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+') {
            out.push(b);
        } else {
            let _ = write!(out, "#{b:02X}");
        }
    }
}

pub fn serialize(obj: &Obj, out: &mut Vec<u8>) {
    match obj {
        Obj::Null => out.extend_from_slice(b"null"),
        Obj::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Obj::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Obj::Real(r) => out.extend_from_slice(num(*r).as_bytes()),
        Obj::Name(n) => write_name(out, n),
        Obj::Str(s) => {
            out.push(b'<');
            for b in s {
                let _ = write!(out, "{b:02X}");
            }
            out.push(b'>');
        }
        Obj::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                serialize(item, out);
            }
            out.push(b']');
        }
        Obj::Dict(entries) => {
            out.extend_from_slice(b"<<");
            for (k, v) in entries {
                write_name(out, k);
                out.push(b' ');
                serialize(v, out);
            }
            out.extend_from_slice(b">>");
        }
        Obj::Ref(id) => {
            let _ = write!(out, "{id} 0 R");
        }
        Obj::Raw(bytes) => out.extend_from_slice(bytes),
    }
}

/// Collects numbered objects and writes the file.
#[derive(Default)]
pub struct Writer {
    objects: Vec<Option<Vec<u8>>>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reserves an object number.
    pub fn alloc(&mut self) -> u32 {
        self.objects.push(None);
        self.objects.len() as u32
    }

    pub fn set(&mut self, id: u32, obj: &Obj) {
        let mut body = Vec::new();
        serialize(obj, &mut body);
        self.objects[id as usize - 1] = Some(body);
    }

    pub fn add(&mut self, obj: &Obj) -> u32 {
        let id = self.alloc();
        self.set(id, obj);
        id
    }

    /// A stream object; `compress` applies Flate at level 1: most of the gain at a fraction of the time (the font program dominates and is already compact).
    pub fn set_stream(
        &mut self,
        id: u32,
        mut entries: Vec<(String, Obj)>,
        data: &[u8],
        compress: bool,
    ) {
        let payload = if compress {
            let mut enc = flate2::write::ZlibEncoder::new(
                Vec::with_capacity(data.len() / 3),
                flate2::Compression::new(1),
            );
            enc.write_all(data).expect("writing to memory");
            entries.push(("Filter".into(), name("FlateDecode")));
            enc.finish().expect("writing to memory")
        } else {
            data.to_vec()
        };
        entries.push(("Length".into(), Obj::Int(payload.len() as i64)));
        let mut body = Vec::with_capacity(payload.len() + 64);
        serialize(&Obj::Dict(entries), &mut body);
        body.extend_from_slice(b"\nstream\n");
        body.extend_from_slice(&payload);
        body.extend_from_slice(b"\nendstream");
        self.objects[id as usize - 1] = Some(body);
    }

    /// A stream whose data is already Flate-compressed (made once and reused, like a cached
    /// font subset).
    pub fn add_flate_stream(&mut self, entries: Vec<(&str, Obj)>, compressed: &[u8]) -> u32 {
        let id = self.alloc();
        let mut entries: Vec<(String, Obj)> = entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        entries.push(("Filter".into(), name("FlateDecode")));
        entries.push(("Length".into(), Obj::Int(compressed.len() as i64)));
        let mut body = Vec::with_capacity(compressed.len() + 64);
        serialize(&Obj::Dict(entries), &mut body);
        body.extend_from_slice(b"\nstream\n");
        body.extend_from_slice(compressed);
        body.extend_from_slice(b"\nendstream");
        self.objects[id as usize - 1] = Some(body);
        id
    }

    pub fn add_stream(&mut self, entries: Vec<(&str, Obj)>, data: &[u8], compress: bool) -> u32 {
        let id = self.alloc();
        let entries = entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        self.set_stream(id, entries, data, compress);
        id
    }

    /// Writes the whole file. `id` becomes both halves of the trailer's /ID (derive it from the
    /// content for reproducible output).
    pub fn finish(self, root: u32, info: Option<u32>, id: [u8; 16]) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.objects
                .iter()
                .map(|o| o.as_ref().map_or(0, Vec::len) + 24)
                .sum::<usize>()
                + 512,
        );
        // A binary comment right after the header marks the file as binary (PDF/A requires it).
        out.extend_from_slice(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n");
        let mut offsets = Vec::with_capacity(self.objects.len());
        for (i, obj) in self.objects.iter().enumerate() {
            offsets.push(out.len());
            let _ = writeln!(out, "{} 0 obj", i + 1);
            match obj {
                Some(body) => out.extend_from_slice(body),
                None => out.extend_from_slice(b"null"),
            }
            out.extend_from_slice(b"\nendobj\n");
        }
        let xref = out.len();
        let _ = write!(
            out,
            "xref\n0 {}\n0000000000 65535 f \n",
            self.objects.len() + 1
        );
        for off in &offsets {
            let _ = writeln!(out, "{off:010} 00000 n ");
        }
        let hex_id = Obj::Str(id.to_vec());
        let mut trailer = vec![
            ("Size".to_owned(), Obj::Int(self.objects.len() as i64 + 1)),
            ("Root".to_owned(), Obj::Ref(root)),
            ("ID".to_owned(), Obj::Array(vec![hex_id.clone(), hex_id])),
        ];
        if let Some(info) = info {
            trailer.push(("Info".to_owned(), Obj::Ref(info)));
        }
        out.extend_from_slice(b"trailer\n");
        serialize(&Obj::Dict(trailer), &mut out);
        let _ = write!(out, "\nstartxref\n{xref}\n%%EOF\n");
        out
    }
}

/// Flate at level 1, as the writer compresses streams.
pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(data.len() / 2 + 64),
        flate2::Compression::new(1),
    );
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// A ToUnicode CMap mapping CIDs (2-byte codes) to Unicode text, in blocks of at most 100 entries
/// as the CMap format requires.
pub fn to_unicode_cmap(pairs: &[(u16, char)]) -> Vec<u8> {
    let mut s = String::from(
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
    );
    for chunk in pairs.chunks(100) {
        let _ = writeln!(s, "{} beginbfchar", chunk.len());
        for (cid, ch) in chunk {
            let mut units = [0u16; 2];
            let encoded = ch.encode_utf16(&mut units);
            let hex: String = encoded.iter().map(|u| format!("{u:04X}")).collect();
            let _ = writeln!(s, "<{cid:04X}> <{hex}>");
        }
        s.push_str("endbfchar\n");
    }
    s.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    s.into_bytes()
}

/// A compact ICC v2 display profile for sRGB (D50-adapted primaries, gamma 2.2 curves), written
/// here rather than shipped as a file, for the PDF/A output intent.
pub fn srgb_icc() -> Vec<u8> {
    fn s15(v: f64) -> [u8; 4] {
        ((v * 65536.0).round() as i32).to_be_bytes()
    }
    fn xyz(x: f64, y: f64, z: f64) -> Vec<u8> {
        let mut t = b"XYZ \0\0\0\0".to_vec();
        t.extend_from_slice(&s15(x));
        t.extend_from_slice(&s15(y));
        t.extend_from_slice(&s15(z));
        t
    }
    fn curve(gamma: f64) -> Vec<u8> {
        let mut t = b"curv\0\0\0\0".to_vec();
        t.extend_from_slice(&1u32.to_be_bytes());
        t.extend_from_slice(&((gamma * 256.0).round() as u16).to_be_bytes());
        t.extend_from_slice(&[0, 0]);
        t
    }
    fn desc(text: &str) -> Vec<u8> {
        let mut t = b"desc\0\0\0\0".to_vec();
        t.extend_from_slice(&(text.len() as u32 + 1).to_be_bytes());
        t.extend_from_slice(text.as_bytes());
        t.push(0);
        t.extend_from_slice(&[0u8; 4 + 4 + 2 + 1 + 67]);
        t
    }
    fn text_tag(text: &str) -> Vec<u8> {
        let mut t = b"text\0\0\0\0".to_vec();
        t.extend_from_slice(text.as_bytes());
        t.push(0);
        t
    }
    let tags: Vec<(&[u8; 4], Vec<u8>)> = vec![
        (b"desc", desc("sRGB (Virtual Window)")),
        (b"cprt", text_tag("No copyright, use freely")),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.4360, 0.2225, 0.0139)),
        (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)),
        (b"bXYZ", xyz(0.1431, 0.0606, 0.7139)),
        (b"rTRC", curve(2.2)),
        (b"gTRC", curve(2.2)),
        (b"bTRC", curve(2.2)),
    ];
    let table_len = 4 + 12 * tags.len();
    let mut data = Vec::new();
    let mut entries = Vec::new();
    let mut offset = 128 + table_len;
    for (sig, body) in &tags {
        // Tag data starts on 4-byte boundaries.
        let pad = (4 - offset % 4) % 4;
        data.extend(std::iter::repeat_n(0u8, pad));
        offset += pad;
        entries.push((*sig, offset as u32, body.len() as u32));
        data.extend_from_slice(body);
        offset += body.len();
    }
    let size = 128 + table_len + data.len();
    let mut p = Vec::with_capacity(size);
    p.extend_from_slice(&(size as u32).to_be_bytes());
    p.extend_from_slice(b"none"); // preferred CMM
    p.extend_from_slice(&[2, 0x10, 0, 0]); // version 2.1
    p.extend_from_slice(b"mntrRGB XYZ ");
    p.extend_from_slice(&[0x07, 0xd0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]); // 2000-01-01 00:00:00
    p.extend_from_slice(b"acsp");
    p.extend_from_slice(&[0u8; 4]); // platform
    p.extend_from_slice(&[0u8; 4]); // flags
    p.extend_from_slice(&[0u8; 8]); // manufacturer, model
    p.extend_from_slice(&[0u8; 8]); // attributes
    p.extend_from_slice(&[0u8; 4]); // rendering intent: perceptual
    p.extend_from_slice(&s15(0.9642));
    p.extend_from_slice(&s15(1.0));
    p.extend_from_slice(&s15(0.8249));
    p.extend_from_slice(&[0u8; 4]); // creator
    p.resize(128, 0);
    p.extend_from_slice(&(tags.len() as u32).to_be_bytes());
    for (sig, off, len) in entries {
        p.extend_from_slice(sig);
        p.extend_from_slice(&off.to_be_bytes());
        p.extend_from_slice(&len.to_be_bytes());
    }
    p.extend_from_slice(&data);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names() {
        assert_eq!(num(1.0), "1");
        assert_eq!(num(0.5), "0.5");
        assert_eq!(num(-0.00001), "0");
        assert_eq!(num(595.2756), "595.2756");
        let mut out = Vec::new();
        serialize(
            &dict(vec![
                ("Type", name("Font")),
                ("W", Obj::Array(vec![Obj::Int(1), real(2.5)])),
            ]),
            &mut out,
        );
        assert_eq!(out, b"<</Type /Font/W [1 2.5]>>");
        let mut out = Vec::new();
        serialize(&name("A B#"), &mut out);
        assert_eq!(out, b"/A#20B#23");
    }

    #[test]
    fn icc_header_is_consistent() {
        let icc = srgb_icc();
        assert_eq!(
            u32::from_be_bytes(icc[..4].try_into().unwrap()) as usize,
            icc.len()
        );
        assert_eq!(&icc[36..40], b"acsp");
    }
}
