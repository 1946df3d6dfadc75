//! Incremental updates: new and replaced objects appended after the exact bytes of a file, with a
//! cross-reference section of the same kind as the file's last one (a table after a table, a
//! stream after a stream) and a trailer pointing back with /Prev. Reading goes through the lazy
//! reader, so the cost is the objects touched, not the size of the document.

use super::read::{self, Object, Pdf};
use super::writer::{Obj, serialize};
use super::{PdfError, PdfResult};
use std::fmt::Write as _;
use std::io::Write as _;

fn err(e: impl std::fmt::Display) -> PdfError {
    PdfError::Sign(e.to_string())
}

/// An update being built on top of `input`.
pub struct Update<'a> {
    pub pdf: Pdf<'a>,
    input: &'a [u8],
    next: u32,
    objects: Vec<(u32, Vec<u8>)>,
}

/// The written file and where each new object starts in it.
pub struct Written {
    pub bytes: Vec<u8>,
    pub offsets: Vec<(u32, usize)>,
}

impl Written {
    pub fn offset(&self, num: u32) -> Option<usize> {
        self.offsets
            .iter()
            .find(|(n, _)| *n == num)
            .map(|(_, o)| *o)
    }
}

impl<'a> Update<'a> {
    /// Reads `input`. Files the reader had to repair are refused: appending to a damaged file
    /// would make signatures over bytes other readers see differently.
    pub fn new(input: &'a [u8]) -> PdfResult<Update<'a>> {
        let pdf = Pdf::parse(input).map_err(|e| err(format!("unreadable PDF: {e}")))?;
        if let Some(p) = pdf.problems.borrow().first() {
            return Err(err(format!("damaged PDF structure: {p}")));
        }
        let last = pdf.last_revision();
        let size = pdf
            .trailer_get(last, b"Size")
            .and_then(Object::as_int)
            .unwrap_or(0)
            .max(0) as u64;
        let max_seen = pdf
            .sections
            .iter()
            .flat_map(|s| s.entries.keys())
            .max()
            .map_or(0, |&n| n as u64 + 1);
        let next = u32::try_from(size.max(max_seen).max(1)).map_err(err)?;
        Ok(Update {
            pdf,
            input,
            next,
            objects: Vec::new(),
        })
    }

    pub fn last(&self) -> usize {
        self.pdf.last_revision()
    }

    /// Object `num` as the file stands now.
    pub fn get(&self, num: u32) -> PdfResult<Object> {
        self.pdf.get(self.last(), num).map_err(err)
    }

    pub fn resolve(&self, o: &Object) -> PdfResult<Object> {
        self.pdf.resolve(self.last(), o).map_err(err)
    }

    /// The catalog's object number and dictionary.
    pub fn catalog(&self) -> PdfResult<(u32, read::Dict)> {
        let root = self
            .pdf
            .trailer_get(self.last(), b"Root")
            .and_then(Object::as_ref)
            .ok_or_else(|| err("the trailer has no /Root"))?;
        match self.get(root)? {
            Object::Dict(d) => Ok((root, d)),
            _ => Err(err("the catalog is not a dictionary")),
        }
    }

    pub fn alloc(&mut self) -> u32 {
        let n = self.next;
        self.next += 1;
        n
    }

    /// Writes (or replaces) object `num`.
    pub fn put(&mut self, num: u32, obj: &Obj) {
        let mut body = Vec::new();
        serialize(obj, &mut body);
        self.put_raw(num, body);
    }

    /// Writes an object body already serialised.
    pub fn put_raw(&mut self, num: u32, body: Vec<u8>) {
        self.objects.retain(|(n, _)| *n != num);
        self.objects.push((num, body));
    }

    pub fn add(&mut self, obj: &Obj) -> u32 {
        let n = self.alloc();
        self.put(n, obj);
        n
    }

    /// A new stream object, Flate-compressed at level 1 when `compress`.
    pub fn add_stream(
        &mut self,
        mut entries: Vec<(String, Obj)>,
        data: &[u8],
        compress: bool,
    ) -> u32 {
        let payload = if compress {
            let mut enc = flate2::write::ZlibEncoder::new(
                Vec::with_capacity(data.len() / 2 + 64),
                flate2::Compression::new(1),
            );
            let _ = enc.write_all(data);
            entries.push(("Filter".into(), Obj::Name("FlateDecode".into())));
            enc.finish().unwrap_or_default()
        } else {
            data.to_vec()
        };
        entries.push(("Length".into(), Obj::Int(payload.len() as i64)));
        let mut body = Vec::with_capacity(payload.len() + 96);
        serialize(&Obj::Dict(entries), &mut body);
        body.extend_from_slice(b"\nstream\n");
        body.extend_from_slice(&payload);
        body.extend_from_slice(b"\nendstream");
        let n = self.alloc();
        self.put_raw(n, body);
        n
    }

    /// Appends the objects, the cross-reference section and the trailer.
    pub fn finish(mut self) -> PdfResult<Written> {
        let last = self.last();
        let prev = self
            .pdf
            .revisions
            .last()
            .and_then(|r| r.sections.first())
            .map(|&s| &self.pdf.sections[s])
            .ok_or_else(|| err("no cross-reference section"))?;
        let (prev_offset, as_stream) = (prev.offset, prev.is_stream);
        let carry = |key: &[u8]| -> PdfResult<Option<Obj>> {
            self.pdf.trailer_get(last, key).map(to_obj).transpose()
        };
        let root = carry(b"Root")?.ok_or_else(|| err("the trailer has no /Root"))?;
        let info = carry(b"Info")?;
        let id = carry(b"ID")?;
        let encrypt = self.pdf.trailer_get(last, b"Encrypt").is_some();
        if encrypt {
            return Err(err("encrypted PDFs cannot be signed here"));
        }

        let input = self.input;
        let body_len: usize = self.objects.iter().map(|(_, b)| b.len() + 32).sum();
        let mut out = Vec::with_capacity(input.len() + body_len + 1024);
        out.extend_from_slice(input);
        if !input.ends_with(b"\n") && !input.ends_with(b"\r") {
            out.push(b'\n');
        }
        let xref_num = as_stream.then(|| self.alloc());
        let mut offsets: Vec<(u32, usize)> = Vec::with_capacity(self.objects.len() + 1);
        for (num, body) in &self.objects {
            offsets.push((*num, out.len()));
            let _ = writeln!(out, "{num} 0 obj");
            out.extend_from_slice(body);
            out.extend_from_slice(b"\nendobj\n");
        }
        let mut trailer: Vec<(String, Obj)> = vec![
            ("Size".into(), Obj::Int(self.next as i64)),
            ("Root".into(), root),
        ];
        if let Some(i) = info {
            trailer.push(("Info".into(), i));
        }
        if let Some(i) = id {
            trailer.push(("ID".into(), i));
        }
        trailer.push(("Prev".into(), Obj::Int(prev_offset as i64)));

        let xref_at = out.len();
        match xref_num {
            None => {
                let mut sorted = offsets.clone();
                sorted.sort_unstable();
                out.extend_from_slice(b"xref\n");
                for group in runs(&sorted) {
                    let _ = writeln!(out, "{} {}", group[0].0, group.len());
                    for (_, off) in group {
                        let _ = writeln!(out, "{off:010} 00000 n ");
                    }
                }
                out.extend_from_slice(b"trailer\n");
                serialize(&Obj::Dict(trailer), &mut out);
            }
            Some(xn) => {
                let mut sorted = offsets.clone();
                sorted.push((xn, xref_at));
                sorted.sort_unstable();
                let mut index = Vec::new();
                let mut rows = Vec::with_capacity(sorted.len() * 7);
                for group in runs(&sorted) {
                    index.push(Obj::Int(group[0].0 as i64));
                    index.push(Obj::Int(group.len() as i64));
                    for (_, off) in group {
                        let off = u32::try_from(*off).map_err(|_| err("file over 4 GiB"))?;
                        rows.push(1u8);
                        rows.extend_from_slice(&off.to_be_bytes());
                        rows.extend_from_slice(&[0, 0]);
                    }
                }
                trailer.extend([
                    ("Type".into(), Obj::Name("XRef".into())),
                    (
                        "W".into(),
                        Obj::Array(vec![Obj::Int(1), Obj::Int(4), Obj::Int(2)]),
                    ),
                    ("Index".into(), Obj::Array(index)),
                    ("Length".into(), Obj::Int(rows.len() as i64)),
                ]);
                let _ = writeln!(out, "{xn} 0 obj");
                serialize(&Obj::Dict(trailer), &mut out);
                out.extend_from_slice(b"\nstream\n");
                out.extend_from_slice(&rows);
                out.extend_from_slice(b"\nendstream\nendobj\n");
                offsets.push((xn, xref_at));
            }
        }
        let mut tail = String::new();
        let _ = write!(tail, "\nstartxref\n{xref_at}\n%%EOF\n");
        out.extend_from_slice(tail.as_bytes());
        Ok(Written {
            bytes: out,
            offsets,
        })
    }
}

/// Runs of consecutive object numbers (one xref subsection each).
fn runs(sorted: &[(u32, usize)]) -> Vec<&[(u32, usize)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=sorted.len() {
        if i == sorted.len() || sorted[i].0 != sorted[i - 1].0 + 1 {
            out.push(&sorted[start..i]);
            start = i;
        }
    }
    out
}

fn name_bytes(n: &[u8]) -> Vec<u8> {
    let mut out = vec![b'/'];
    for &b in n {
        if b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_'
                    | b'.'
                    | b'+'
                    | b'*'
                    | b','
                    | b':'
                    | b';'
                    | b'='
                    | b'@'
                    | b'!'
                    | b'&'
                    | b'\''
                    | b'"'
                    | b'^'
                    | b'`'
                    | b'|'
                    | b'~'
                    | b'$'
                    | b'?'
            )
        {
            out.push(b);
        } else {
            out.extend_from_slice(format!("#{b:02X}").as_bytes());
        }
    }
    out
}

/// A parsed object written back with the same value (names and numbers byte-exact in meaning).
pub fn to_obj(o: &Object) -> PdfResult<Obj> {
    Ok(match o {
        Object::Null => Obj::Null,
        Object::Bool(b) => Obj::Bool(*b),
        Object::Int(i) => Obj::Int(*i),
        // Display gives the shortest text that reads back as the same number, never an exponent.
        Object::Real(r) => Obj::Raw(format!("{r}").into_bytes()),
        Object::Name(n) => Obj::Raw(name_bytes(n)),
        Object::String(s) => Obj::Str(s.clone()),
        Object::Array(a) => Obj::Array(a.iter().map(to_obj).collect::<PdfResult<_>>()?),
        Object::Dict(d) => Obj::Dict(dict_entries(d)?),
        Object::Ref(n, 0) => Obj::Ref(*n),
        Object::Ref(n, g) => Obj::Raw(format!("{n} {g} R").into_bytes()),
        Object::Stream(_) => return Err(err("a stream cannot be copied inline")),
    })
}

/// A dictionary's entries as writer entries, ready to be changed and written again.
pub fn dict_entries(d: &read::Dict) -> PdfResult<Vec<(String, Obj)>> {
    d.0.iter()
        .map(|(k, v)| {
            let key = String::from_utf8(k.clone()).map_err(|_| err("a key that is not UTF-8"))?;
            Ok((key, to_obj(v)?))
        })
        .collect()
}

/// Sets `key` in writer entries (replacing an existing value).
pub fn set(entries: &mut Vec<(String, Obj)>, key: &str, value: Obj) {
    match entries.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value,
        None => entries.push((key.to_owned(), value)),
    }
}

pub fn get<'e>(entries: &'e [(String, Obj)], key: &str) -> Option<&'e Obj> {
    entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}
