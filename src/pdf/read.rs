//! A lazy, bounded reader of PDF files from anyone: it finds the revisions (one per incremental
//! update), parses only the objects asked for, and keeps the view of every revision so the
//! verifier can compare what was signed with what is shown. Untrusted input: every loop and
//! every allocation is bounded, and nothing here panics on malformed bytes.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// Nesting of arrays and dictionaries beyond this is refused (real files stay under 10).
const MAX_DEPTH: usize = 64;
/// Revisions (xref sections) followed through /Prev.
const MAX_SECTIONS: usize = 4096;
/// Entries of one xref section.
const MAX_XREF_ENTRIES: usize = 8_000_000;
/// How far from a declared offset a misplaced xref section is looked for.
const REPAIR_WINDOW: usize = 64;
/// Parsed objects kept for reuse within one file.
const MAX_CACHED_OBJECTS: usize = 1_000_000;
/// Objects held by one object stream.
const MAX_OBJSTM_OBJECTS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReadError(pub String);

fn fail<T>(msg: impl Into<String>) -> Result<T, ReadError> {
    Err(ReadError(msg.into()))
}

pub type ReadResult<T> = Result<T, ReadError>;

#[derive(Clone, Debug)]
pub enum Object {
    Null,
    Bool(bool),
    Int(i64),
    Real(f64),
    Name(Vec<u8>),
    String(Vec<u8>),
    Array(Vec<Object>),
    Dict(Dict),
    Ref(u32, u16),
    Stream(Box<Stream>),
}

/// A dictionary in file order (duplicate keys keep the first, as most readers do).
#[derive(Clone, Debug, Default)]
pub struct Dict(pub Vec<(Vec<u8>, Object)>);

/// A stream: its dictionary and where its raw (still encoded) data lies in the file.
#[derive(Clone, Debug)]
pub struct Stream {
    pub dict: Dict,
    pub start: usize,
    pub end: usize,
}

impl Dict {
    pub fn get(&self, key: &[u8]) -> Option<&Object> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.0.iter().map(|(k, _)| k.as_slice())
    }
    pub fn name(&self, key: &[u8]) -> Option<&[u8]> {
        self.get(key).and_then(Object::as_name)
    }
}

impl Object {
    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Object::Dict(d) => Some(d),
            Object::Stream(s) => Some(&s.dict),
            _ => None,
        }
    }
    pub fn as_name(&self) -> Option<&[u8]> {
        match self {
            Object::Name(n) => Some(n),
            _ => None,
        }
    }
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Object::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&[Object]> {
        match self {
            Object::Array(a) => Some(a),
            _ => None,
        }
    }
    pub fn as_ref(&self) -> Option<u32> {
        match self {
            Object::Ref(n, _) => Some(*n),
            _ => None,
        }
    }
    pub fn as_string(&self) -> Option<&[u8]> {
        match self {
            Object::String(s) => Some(s),
            _ => None,
        }
    }
}

fn is_white(b: u8) -> bool {
    matches!(b, 0 | 9 | 10 | 12 | 13 | 32)
}

fn is_delim(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

fn is_regular(b: u8) -> bool {
    !is_white(b) && !is_delim(b)
}

/// A cursor over bytes producing PDF objects.
pub struct Lexer<'a> {
    pub data: &'a [u8],
    pub pos: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(data: &'a [u8], pos: usize) -> Self {
        Lexer { data, pos }
    }

    pub fn skip_ws(&mut self) {
        while let Some(&b) = self.data.get(self.pos) {
            if is_white(b) {
                self.pos += 1;
            } else if b == b'%' {
                while let Some(&c) = self.data.get(self.pos) {
                    if c == b'\n' || c == b'\r' {
                        break;
                    }
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// A bare word (keyword or number) at the cursor, not consumed.
    fn word(&self) -> &'a [u8] {
        if self.pos >= self.data.len() {
            return &[];
        }
        let mut end = self.pos;
        while end < self.data.len() && is_regular(self.data[end]) {
            end += 1;
        }
        &self.data[self.pos..end]
    }

    pub fn keyword(&mut self, kw: &[u8]) -> bool {
        self.skip_ws();
        if self.word() == kw {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    fn number(word: &[u8]) -> Option<Object> {
        let s = std::str::from_utf8(word).ok()?;
        if let Ok(i) = s.parse::<i64>() {
            return Some(Object::Int(i));
        }
        if s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+'))
        {
            // Writers emit "-.5", "4." and similar; anything else is not a number.
            let t = s.trim_end_matches('.');
            return t.parse::<f64>().ok().map(Object::Real);
        }
        None
    }

    /// An unsigned integer token, for object headers and xref tables.
    pub fn uint(&mut self) -> Option<u64> {
        self.skip_ws();
        let w = self.word();
        if w.is_empty() || w.len() > 19 || !w.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.pos += w.len();
        std::str::from_utf8(w).ok()?.parse().ok()
    }

    pub fn object(&mut self, depth: usize) -> ReadResult<Object> {
        if depth > MAX_DEPTH {
            return fail("objects nested too deeply");
        }
        self.skip_ws();
        let Some(b) = self.peek() else {
            return fail("unexpected end of file");
        };
        match b {
            b'/' => {
                self.pos += 1;
                Ok(Object::Name(self.name_body()))
            }
            b'(' => self.literal_string().map(Object::String),
            b'<' if self.data.get(self.pos + 1) == Some(&b'<') => {
                self.pos += 2;
                self.dict_body(depth).map(Object::Dict)
            }
            b'<' => self.hex_string().map(Object::String),
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    match self.peek() {
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Object::Array(items));
                        }
                        None => return fail("unterminated array"),
                        _ => items.push(self.object(depth + 1)?),
                    }
                }
            }
            _ => {
                let w = self.word();
                if w.is_empty() {
                    return fail(format!("unexpected byte {b:#04x} at {}", self.pos));
                }
                match w {
                    b"true" => {
                        self.pos += 4;
                        return Ok(Object::Bool(true));
                    }
                    b"false" => {
                        self.pos += 5;
                        return Ok(Object::Bool(false));
                    }
                    b"null" => {
                        self.pos += 4;
                        return Ok(Object::Null);
                    }
                    _ => {}
                }
                let Some(n) = Self::number(w) else {
                    return fail(format!(
                        "unexpected token {:?} at {}",
                        String::from_utf8_lossy(&w[..w.len().min(20)]),
                        self.pos
                    ));
                };
                self.pos += w.len();
                // "n g R": look ahead without committing.
                if let Object::Int(num) = n
                    && (0..=u32::MAX as i64).contains(&num)
                {
                    let save = self.pos;
                    if let Some(g) = self.uint()
                        && g <= u16::MAX as u64
                    {
                        self.skip_ws();
                        if self.word() == b"R" {
                            self.pos += 1;
                            return Ok(Object::Ref(num as u32, g as u16));
                        }
                    }
                    self.pos = save;
                }
                Ok(n)
            }
        }
    }

    fn name_body(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            if !is_regular(b) {
                break;
            }
            if b == b'#'
                && let Some(h) = self.data.get(self.pos + 1..self.pos + 3)
                && let Ok(v) = u8::from_str_radix(std::str::from_utf8(h).unwrap_or("zz"), 16)
            {
                out.push(v);
                self.pos += 3;
                continue;
            }
            out.push(b);
            self.pos += 1;
        }
        out
    }

    fn literal_string(&mut self) -> ReadResult<Vec<u8>> {
        self.pos += 1;
        let mut out = Vec::new();
        let mut depth = 1usize;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'(' => {
                    depth += 1;
                    out.push(b);
                }
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(out);
                    }
                    out.push(b);
                }
                b'\\' => {
                    let Some(e) = self.peek() else { break };
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'\r' => {
                            if self.peek() == Some(b'\n') {
                                self.pos += 1;
                            }
                        }
                        b'\n' => {}
                        b'0'..=b'7' => {
                            let mut v = (e - b'0') as u32;
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(d @ b'0'..=b'7') => {
                                        v = v * 8 + (d - b'0') as u32;
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push(v as u8);
                        }
                        other => out.push(other),
                    }
                }
                _ => out.push(b),
            }
        }
        fail("unterminated string")
    }

    fn hex_string(&mut self) -> ReadResult<Vec<u8>> {
        self.pos += 1;
        let mut out = Vec::new();
        let mut high: Option<u8> = None;
        while let Some(b) = self.peek() {
            self.pos += 1;
            let v = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                b'>' => {
                    if let Some(h) = high {
                        out.push(h << 4);
                    }
                    return Ok(out);
                }
                b if is_white(b) => continue,
                _ => return fail("bad hex string"),
            };
            match high.take() {
                Some(h) => out.push((h << 4) | v),
                None => high = Some(v),
            }
        }
        fail("unterminated hex string")
    }

    fn dict_body(&mut self, depth: usize) -> ReadResult<Dict> {
        let mut entries: Vec<(Vec<u8>, Object)> = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b'>') if self.data.get(self.pos + 1) == Some(&b'>') => {
                    self.pos += 2;
                    return Ok(Dict(entries));
                }
                Some(b'/') => {
                    self.pos += 1;
                    let key = self.name_body();
                    let value = self.object(depth + 1)?;
                    if !entries.iter().any(|(k, _)| *k == key) {
                        entries.push((key, value));
                    }
                }
                None => return fail("unterminated dictionary"),
                Some(_) => return fail(format!("dictionary key expected at {}", self.pos)),
            }
        }
    }
}

/// Where an object lives according to an xref section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    Free,
    InUse { offset: usize, generation: u16 },
    Compressed { stream: u32, index: u32 },
}

/// One cross-reference section with its trailer.
#[derive(Debug)]
pub struct Section {
    /// Where the section starts (`xref` keyword or the xref stream object).
    pub offset: usize,
    pub entries: HashMap<u32, Entry>,
    pub trailer: Dict,
    pub is_stream: bool,
}

/// One revision: the sections written in one save, and where its `%%EOF` ends.
#[derive(Debug)]
pub struct Revision {
    /// Indices into `Pdf::sections`, newest first.
    pub sections: Vec<usize>,
    /// Offset just past this revision's `%%EOF` and its end-of-line.
    pub end: usize,
}

/// A parsed file: its sections and revisions; objects are parsed on request.
pub struct Pdf<'a> {
    pub data: &'a [u8],
    pub sections: Vec<Section>,
    /// Oldest first.
    pub revisions: Vec<Revision>,
    /// Problems met while reading that make the analysis incomplete.
    pub problems: RefCell<Vec<String>>,
    objstm_cache: RefCell<HashMap<usize, Rc<ObjStm>>>,
    object_cache: RefCell<HashMap<(usize, u32, u32), Rc<Object>>>,
    inflate_budget: Cell<usize>,
}

struct ObjStm {
    data: Vec<u8>,
    /// (object number, offset in data)
    index: Vec<(u32, usize)>,
}

fn find_back(hay: &[u8], needle: &[u8], before: usize) -> Option<usize> {
    let end = before.min(hay.len());
    if needle.len() > end {
        return None;
    }
    (0..=end - needle.len())
        .rev()
        .find(|&i| &hay[i..i + needle.len()] == needle)
}

pub fn find_from(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from >= hay.len() || needle.is_empty() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

impl<'a> Pdf<'a> {
    /// Reads the structure. Fails only when the bytes cannot be taken for a PDF at all.
    pub fn parse(data: &'a [u8]) -> ReadResult<Pdf<'a>> {
        let head = &data[..data.len().min(1024)];
        if find_from(head, b"%PDF-", 0).is_none() {
            return fail("no %PDF- header");
        }
        let tail_from = data.len().saturating_sub(2048);
        let sx = find_back(data, b"startxref", data.len())
            .filter(|&p| p >= tail_from)
            .ok_or_else(|| ReadError("no startxref at the end of the file".into()))?;
        let mut lx = Lexer::new(data, sx + 9);
        let first = lx
            .uint()
            .ok_or_else(|| ReadError("startxref without an offset".into()))?
            as usize;

        let mut pdf = Pdf {
            data,
            sections: Vec::new(),
            revisions: Vec::new(),
            problems: RefCell::new(Vec::new()),
            objstm_cache: RefCell::new(HashMap::new()),
            object_cache: RefCell::new(HashMap::new()),
            // Inflated bytes allowed for the whole file: bounds decompression bombs.
            inflate_budget: Cell::new((data.len() * 8).clamp(64 << 20, 1 << 30)),
        };
        let mut seen = HashSet::new();
        let mut next = Some(first);
        while let Some(off) = next.take() {
            if !seen.insert(off) {
                pdf.problem(format!("the /Prev chain loops back to offset {off}"));
                break;
            }
            if pdf.sections.len() >= MAX_SECTIONS {
                pdf.problem("too many revisions");
                break;
            }
            match pdf.read_section(off) {
                Ok(section) => {
                    next = section
                        .trailer
                        .get(b"Prev")
                        .and_then(Object::as_int)
                        .and_then(|p| usize::try_from(p).ok());
                    if let Some(stm) = section.trailer.get(b"XRefStm").and_then(Object::as_int)
                        && let Ok(stm) = usize::try_from(stm)
                    {
                        // A hybrid file: the xref stream adds entries to this same section.
                        match pdf.read_section(stm) {
                            Ok(extra) => {
                                let mut section = section;
                                for (k, v) in extra.entries {
                                    section.entries.entry(k).or_insert(v);
                                }
                                pdf.sections.push(section);
                                continue;
                            }
                            Err(e) => pdf.problem(format!("hybrid xref stream: {e}")),
                        }
                    }
                    pdf.sections.push(section);
                }
                Err(e) => {
                    if pdf.sections.is_empty() {
                        return Err(ReadError(format!("cross-reference: {e}")));
                    }
                    pdf.problem(format!("cross-reference section at {off}: {e}"));
                    break;
                }
            }
        }
        pdf.group_revisions();
        Ok(pdf)
    }

    fn problem(&self, p: impl Into<String>) {
        let mut v = self.problems.borrow_mut();
        if v.len() < 100 {
            v.push(p.into());
        }
    }

    /// Sections grouped by the `%%EOF` that ends them; each group is one revision.
    fn group_revisions(&mut self) {
        let mut ends: Vec<(usize, usize)> = Vec::new();
        for (i, s) in self.sections.iter().enumerate() {
            let end = match find_from(self.data, b"%%EOF", s.offset) {
                Some(p) => {
                    let mut e = p + 5;
                    if self.data.get(e) == Some(&b'\r') {
                        e += 1;
                    }
                    if self.data.get(e) == Some(&b'\n') {
                        e += 1;
                    }
                    e
                }
                None => self.data.len(),
            };
            ends.push((end, i));
        }
        // Sections are found newest first; keep that order inside each group.
        let mut revs: Vec<Revision> = Vec::new();
        let mut sorted = ends.clone();
        sorted.sort_by_key(|&(end, i)| (end, i));
        for (end, i) in sorted {
            match revs.iter_mut().find(|r| r.end == end) {
                Some(r) => r.sections.push(i),
                None => revs.push(Revision {
                    sections: vec![i],
                    end,
                }),
            }
        }
        revs.sort_by_key(|r| r.end);
        self.revisions = revs;
    }

    /// Reads the xref section at `off`; when the offset is slightly wrong (a common writer
    /// bug), the nearest section start within a few bytes is taken and the repair recorded.
    fn read_section(&self, off: usize) -> ReadResult<Section> {
        match self.read_section_exact(off) {
            Ok(s) => Ok(s),
            Err(e) => {
                let from = off.saturating_sub(REPAIR_WINDOW);
                let to = (off + REPAIR_WINDOW).min(self.data.len());
                let mut candidates: Vec<usize> = (from..to)
                    .filter(|&p| {
                        self.data[p..].starts_with(b"xref")
                            || (self.data[p].is_ascii_digit()
                                && (p == 0 || !self.data[p - 1].is_ascii_digit())
                                && self.parse_indirect_at(p, None).is_ok())
                    })
                    .collect();
                candidates.sort_by_key(|&p| p.abs_diff(off));
                for p in candidates {
                    if p != off
                        && let Ok(s) = self.read_section_exact(p)
                    {
                        self.problem(format!(
                            "the cross-reference section is at {p}, not at {off} as declared"
                        ));
                        return Ok(s);
                    }
                }
                Err(e)
            }
        }
    }

    fn read_section_exact(&self, off: usize) -> ReadResult<Section> {
        if off >= self.data.len() {
            return fail("offset beyond the end of the file");
        }
        let mut lx = Lexer::new(self.data, off);
        if lx.keyword(b"xref") {
            self.read_table(lx, off)
        } else {
            self.read_xref_stream(off)
        }
    }

    fn read_table(&self, mut lx: Lexer<'a>, off: usize) -> ReadResult<Section> {
        let mut entries = HashMap::new();
        loop {
            lx.skip_ws();
            if lx.keyword(b"trailer") {
                break;
            }
            let (Some(start), Some(count)) = (lx.uint(), lx.uint()) else {
                return fail("malformed xref subsection header");
            };
            if count as usize > MAX_XREF_ENTRIES
                || entries.len() + count as usize > MAX_XREF_ENTRIES
            {
                return fail("xref section too large");
            }
            for i in 0..count {
                let (Some(o), Some(g)) = (lx.uint(), lx.uint()) else {
                    return fail("malformed xref entry");
                };
                lx.skip_ws();
                let kind = lx.peek();
                lx.pos += 1;
                let Some(num) = start.checked_add(i).and_then(|n| u32::try_from(n).ok()) else {
                    return fail("object number out of range");
                };
                let e = match kind {
                    Some(b'n') => Entry::InUse {
                        offset: o as usize,
                        generation: g.min(u16::MAX as u64) as u16,
                    },
                    Some(b'f') => Entry::Free,
                    _ => return fail("xref entry neither n nor f"),
                };
                // In one table the first entry for a number counts.
                entries.entry(num).or_insert(e);
            }
        }
        let trailer = match lx.object(0)? {
            Object::Dict(d) => d,
            _ => return fail("trailer is not a dictionary"),
        };
        Ok(Section {
            offset: off,
            entries,
            trailer,
            is_stream: false,
        })
    }

    fn read_xref_stream(&self, off: usize) -> ReadResult<Section> {
        let (_, _, obj) = self.parse_indirect_at(off, None)?;
        let Object::Stream(s) = obj else {
            return fail("startxref does not point to an xref table or stream");
        };
        if s.dict.name(b"Type") != Some(b"XRef") {
            return fail("xref stream without /Type /XRef");
        }
        let data = self.decode(&s)?;
        let w: Vec<usize> = s
            .dict
            .get(b"W")
            .and_then(Object::as_array)
            .map(|a| {
                a.iter()
                    .map(|o| o.as_int().unwrap_or(-1).clamp(-1, 8) as usize)
                    .collect()
            })
            .unwrap_or_default();
        if w.len() != 3 || w.iter().any(|&x| x > 8) {
            return fail("bad /W in xref stream");
        }
        let size = s.dict.get(b"Size").and_then(Object::as_int).unwrap_or(0);
        let index: Vec<i64> = match s.dict.get(b"Index").and_then(Object::as_array) {
            Some(a) => a.iter().map(|o| o.as_int().unwrap_or(-1)).collect(),
            None => vec![0, size],
        };
        if !index.len().is_multiple_of(2) || index.iter().any(|&v| v < 0) {
            return fail("bad /Index in xref stream");
        }
        let row = w[0] + w[1] + w[2];
        if row == 0 {
            return fail("empty xref stream rows");
        }
        let field = |b: &[u8]| b.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64);
        let mut entries = HashMap::new();
        let mut p = 0usize;
        for pair in index.chunks(2) {
            let (start, count) = (pair[0] as u64, pair[1] as u64);
            if count as usize > MAX_XREF_ENTRIES {
                return fail("xref stream too large");
            }
            for i in 0..count {
                let Some(rowb) = data.get(p..p + row) else {
                    return fail("xref stream shorter than its /Index");
                };
                p += row;
                let t = if w[0] == 0 { 1 } else { field(&rowb[..w[0]]) };
                let a = field(&rowb[w[0]..w[0] + w[1]]);
                let b = field(&rowb[w[0] + w[1]..]);
                let Some(num) = start.checked_add(i).and_then(|n| u32::try_from(n).ok()) else {
                    return fail("object number out of range");
                };
                let e = match t {
                    0 => Entry::Free,
                    1 => Entry::InUse {
                        offset: a as usize,
                        generation: b.min(u16::MAX as u64) as u16,
                    },
                    2 => Entry::Compressed {
                        stream: u32::try_from(a).unwrap_or(u32::MAX),
                        index: u32::try_from(b).unwrap_or(u32::MAX),
                    },
                    // Unknown types are to be treated as null references.
                    _ => Entry::Free,
                };
                entries.entry(num).or_insert(e);
            }
        }
        let mut trailer = s.dict.clone();
        trailer
            .0
            .retain(|(k, _)| !matches!(k.as_slice(), b"Length" | b"Filter" | b"DecodeParms"));
        Ok(Section {
            offset: off,
            entries,
            trailer,
            is_stream: true,
        })
    }

    /// Parses "n g obj ... endobj" at `off`. `length_rev` resolves an indirect /Length.
    pub fn parse_indirect_at(
        &self,
        off: usize,
        length_rev: Option<usize>,
    ) -> ReadResult<(u32, u16, Object)> {
        let mut lx = Lexer::new(self.data, off);
        let (Some(num), Some(generation)) = (lx.uint(), lx.uint()) else {
            return fail(format!("no object header at {off}"));
        };
        if !lx.keyword(b"obj") {
            return fail(format!("no 'obj' keyword at {off}"));
        }
        let obj = lx.object(0)?;
        let (num, generation) = (
            u32::try_from(num).map_err(|_| ReadError("object number out of range".into()))?,
            u16::try_from(generation).map_err(|_| ReadError("generation out of range".into()))?,
        );
        let Object::Dict(dict) = obj else {
            return Ok((num, generation, obj));
        };
        if !lx.keyword(b"stream") {
            return Ok((num, generation, Object::Dict(dict)));
        }
        // The data starts after CRLF or LF (a lone CR is tolerated).
        match lx.peek() {
            Some(b'\r') => {
                lx.pos += 1;
                if lx.peek() == Some(b'\n') {
                    lx.pos += 1;
                }
            }
            Some(b'\n') => lx.pos += 1,
            _ => {}
        }
        let start = lx.pos;
        let declared = match dict.get(b"Length") {
            Some(Object::Int(n)) => usize::try_from(*n).ok(),
            Some(Object::Ref(n, _)) => match length_rev {
                Some(rev) if *n != num => self
                    .get_in(rev, *n, 1)
                    .ok()
                    .and_then(|o| o.as_int())
                    .and_then(|n| usize::try_from(n).ok()),
                _ => None,
            },
            _ => None,
        };
        let end = declared
            .and_then(|len| start.checked_add(len))
            .filter(|&end| {
                end <= self.data.len() && {
                    let mut l = Lexer::new(self.data, end);
                    l.keyword(b"endstream")
                }
            });
        let end = match end {
            Some(e) => e,
            // A wrong or indirect-unresolvable /Length: find the end marker instead.
            None => {
                let e = find_from(self.data, b"endstream", start)
                    .ok_or_else(|| ReadError("stream without endstream".into()))?;
                let mut e2 = e;
                if e2 > start && self.data[e2 - 1] == b'\n' {
                    e2 -= 1;
                }
                if e2 > start && self.data[e2 - 1] == b'\r' {
                    e2 -= 1;
                }
                e2
            }
        };
        Ok((
            num,
            generation,
            Object::Stream(Box::new(Stream { dict, start, end })),
        ))
    }

    /// The raw (encoded) bytes of a stream.
    pub fn raw(&self, s: &Stream) -> &'a [u8] {
        self.data.get(s.start..s.end).unwrap_or(&[])
    }

    /// Decodes a stream with FlateDecode (and PNG predictors) only; other filters are refused.
    pub fn decode(&self, s: &Stream) -> ReadResult<Vec<u8>> {
        let raw = self.raw(s);
        let filters: Vec<&[u8]> = match s.dict.get(b"Filter") {
            None => vec![],
            Some(Object::Name(n)) => vec![n.as_slice()],
            Some(Object::Array(a)) => a.iter().filter_map(Object::as_name).collect(),
            Some(_) => return fail("bad /Filter"),
        };
        match filters.as_slice() {
            [] => Ok(raw.to_vec()),
            [b"FlateDecode"] => {
                let out = self.inflate(raw)?;
                let parms = match s.dict.get(b"DecodeParms") {
                    Some(Object::Dict(d)) => Some(d),
                    Some(Object::Array(a)) => a.first().and_then(Object::as_dict),
                    _ => None,
                };
                match parms {
                    Some(p) => unpredict(out, p),
                    None => Ok(out),
                }
            }
            _ => fail("unsupported stream filter"),
        }
    }

    fn inflate(&self, raw: &[u8]) -> ReadResult<Vec<u8>> {
        use std::io::Read as _;
        let budget = self.inflate_budget.get();
        let mut out = Vec::new();
        let res = flate2::read::ZlibDecoder::new(raw)
            .take(budget as u64 + 1)
            .read_to_end(&mut out);
        if out.len() > budget {
            return fail("decompressed data exceeds the limit");
        }
        // A damaged tail (a missing checksum is common) keeps what was inflated, as viewers do.
        if let Err(e) = res
            && out.is_empty()
        {
            return fail(format!("inflate: {e}"));
        }
        self.inflate_budget.set(budget - out.len());
        Ok(out)
    }

    /// The entry for object `num` as seen by revision `rev` (newest section wins).
    pub fn entry(&self, rev: usize, num: u32) -> Option<Entry> {
        for r in self.revisions[..=rev.min(self.revisions.len().saturating_sub(1))]
            .iter()
            .rev()
        {
            for &s in &r.sections {
                if let Some(e) = self.sections[s].entries.get(&num) {
                    return Some(*e);
                }
            }
        }
        None
    }

    /// The trailer of revision `rev` (its newest section).
    pub fn trailer(&self, rev: usize) -> Option<&Dict> {
        let r = self.revisions.get(rev)?;
        r.sections.first().map(|&s| &self.sections[s].trailer)
    }

    /// A trailer key as revision `rev` sees it: the newest section that has it.
    pub fn trailer_get(&self, rev: usize, key: &[u8]) -> Option<&Object> {
        self.revisions
            .get(..=rev)?
            .iter()
            .rev()
            .flat_map(|r| r.sections.iter())
            .find_map(|&s| self.sections[s].trailer.get(key))
    }

    pub fn last_revision(&self) -> usize {
        self.revisions.len().saturating_sub(1)
    }

    /// Object `num` in revision `rev`; `Null` when absent or free.
    pub fn get(&self, rev: usize, num: u32) -> ReadResult<Object> {
        self.get_rc(rev, num).map(|o| (*o).clone())
    }

    /// As `get`, shared: each object is parsed once however many revisions and walks ask for
    /// it (keyed by where it lies, so a replaced object is a different entry).
    pub fn get_rc(&self, rev: usize, num: u32) -> ReadResult<Rc<Object>> {
        let key = match self.entry(rev, num) {
            None | Some(Entry::Free) => return Ok(Rc::new(Object::Null)),
            Some(Entry::InUse { offset, generation }) => (offset, num, generation as u32),
            Some(Entry::Compressed { stream, index }) => match self.entry(rev, stream) {
                Some(Entry::InUse { offset, .. }) => {
                    (offset, num, u32::MAX - index.min(u32::MAX - 70_000))
                }
                _ => return fail(format!("object stream {stream} missing")),
            },
        };
        if let Some(o) = self.object_cache.borrow().get(&key) {
            return Ok(o.clone());
        }
        let obj = Rc::new(self.get_in(rev, num, 0)?);
        // A stream whose /Length is indirect may read differently per revision: not shared.
        let revision_dependent = matches!(&*obj, Object::Stream(st) if matches!(st.dict.get(b"Length"), Some(Object::Ref(..))));
        let mut cache = self.object_cache.borrow_mut();
        if !revision_dependent && cache.len() < MAX_CACHED_OBJECTS {
            cache.insert(key, obj.clone());
        }
        Ok(obj)
    }

    fn get_in(&self, rev: usize, num: u32, depth: usize) -> ReadResult<Object> {
        if depth > 2 {
            return fail("object lookup recursion");
        }
        match self.entry(rev, num) {
            None | Some(Entry::Free) => Ok(Object::Null),
            Some(Entry::InUse { offset, generation }) => {
                match self.parse_indirect_at(offset, Some(rev)) {
                    Ok((n, g, obj)) if n == num && g == generation => Ok(obj),
                    first => {
                        // A slightly wrong offset: look for this very object nearby.
                        let header = format!("{num} {generation} obj");
                        let from = offset.saturating_sub(REPAIR_WINDOW);
                        if let Some(p) = find_from(self.data, header.as_bytes(), from)
                            .filter(|&p| p <= offset + REPAIR_WINDOW)
                            .filter(|&p| p == 0 || !self.data[p - 1].is_ascii_digit())
                            && let Ok((n, g, obj)) = self.parse_indirect_at(p, Some(rev))
                            && n == num
                            && g == generation
                        {
                            self.problem(format!("object {num} is at {p}, not at {offset}"));
                            return Ok(obj);
                        }
                        match first {
                            Ok((n, g, _)) => fail(format!(
                                "xref points object {num} to {offset}, where object {n} {g} is"
                            )),
                            Err(e) => Err(e),
                        }
                    }
                }
            }
            Some(Entry::Compressed { stream, index }) => {
                let stm = self.objstm(rev, stream, depth)?;
                let Some(&(n, off)) = stm.index.get(index as usize) else {
                    return fail(format!("object {num} beyond its object stream"));
                };
                if n != num {
                    return fail(format!("object stream {stream} holds {n}, not {num}"));
                }
                let mut lx = Lexer::new(&stm.data, off);
                lx.object(0)
            }
        }
    }

    fn objstm(&self, rev: usize, stream: u32, depth: usize) -> ReadResult<Rc<ObjStm>> {
        let Some(Entry::InUse { offset, .. }) = self.entry(rev, stream) else {
            return fail(format!("object stream {stream} missing"));
        };
        if let Some(c) = self.objstm_cache.borrow().get(&offset) {
            return Ok(c.clone());
        }
        let obj = self.get_in(rev, stream, depth + 1)?;
        let Object::Stream(s) = obj else {
            return fail(format!("object {stream} is not an object stream"));
        };
        let data = self.decode(&s)?;
        let n = s.dict.get(b"N").and_then(Object::as_int).unwrap_or(-1);
        let first = s.dict.get(b"First").and_then(Object::as_int).unwrap_or(-1);
        if n < 0 || n as usize > MAX_OBJSTM_OBJECTS || first < 0 || first as usize > data.len() {
            return fail("bad object stream header");
        }
        let mut lx = Lexer::new(&data, 0);
        let mut index = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let (Some(num), Some(off)) = (lx.uint(), lx.uint()) else {
                return fail("bad object stream index");
            };
            let Some(at) = (first as usize).checked_add(off as usize) else {
                return fail("bad object stream offset");
            };
            if at > data.len() {
                return fail("bad object stream offset");
            }
            index.push((u32::try_from(num).unwrap_or(u32::MAX), at));
        }
        let stm = Rc::new(ObjStm { data, index });
        self.objstm_cache.borrow_mut().insert(offset, stm.clone());
        Ok(stm)
    }

    /// Follows a reference (and chains of them); direct objects are returned as they are.
    pub fn resolve(&self, rev: usize, obj: &Object) -> ReadResult<Object> {
        let mut cur = obj.clone();
        for _ in 0..8 {
            match cur {
                Object::Ref(n, _) => cur = self.get(rev, n)?,
                other => return Ok(other),
            }
        }
        fail("reference chain too long")
    }

    /// The span `[start, end)` of the value of `key` in the dictionary of the object at `off`,
    /// for checking that a signature's byte range excludes exactly its own /Contents.
    pub fn value_span(&self, off: usize, key: &[u8]) -> Option<(usize, usize)> {
        let mut lx = Lexer::new(self.data, off);
        lx.uint()?;
        lx.uint()?;
        if !lx.keyword(b"obj") {
            return None;
        }
        lx.skip_ws();
        if self.data.get(lx.pos..lx.pos + 2) != Some(b"<<") {
            return None;
        }
        lx.pos += 2;
        loop {
            lx.skip_ws();
            if lx.peek()? != b'/' {
                return None;
            }
            lx.pos += 1;
            let k = lx.name_body();
            lx.skip_ws();
            let start = lx.pos;
            lx.object(1).ok()?;
            if k == key {
                return Some((start, lx.pos));
            }
        }
    }
}

/// Undoes PNG predictors (used by xref and object streams).
fn unpredict(data: Vec<u8>, parms: &Dict) -> ReadResult<Vec<u8>> {
    let predictor = parms
        .get(b"Predictor")
        .and_then(Object::as_int)
        .unwrap_or(1);
    if predictor == 1 {
        return Ok(data);
    }
    if !(10..=15).contains(&predictor) {
        return fail("unsupported predictor");
    }
    let colors = parms.get(b"Colors").and_then(Object::as_int).unwrap_or(1);
    let bpc = parms
        .get(b"BitsPerComponent")
        .and_then(Object::as_int)
        .unwrap_or(8);
    let columns = parms.get(b"Columns").and_then(Object::as_int).unwrap_or(1);
    if !(1..=32).contains(&colors)
        || !matches!(bpc, 1 | 2 | 4 | 8 | 16)
        || !(1..=1 << 20).contains(&columns)
    {
        return fail("bad predictor parameters");
    }
    let bpp = ((colors * bpc + 7) / 8) as usize;
    let row = ((colors * bpc * columns + 7) / 8) as usize;
    let mut out = Vec::with_capacity(data.len());
    let mut prev = vec![0u8; row];
    for chunk in data.chunks(row + 1) {
        if chunk.len() < row + 1 {
            break;
        }
        let filter = chunk[0];
        let mut cur = chunk[1..].to_vec();
        for i in 0..row {
            let left = if i >= bpp { cur[i - bpp] } else { 0 };
            let up = prev[i];
            let ul = if i >= bpp { prev[i - bpp] } else { 0 };
            cur[i] = match filter {
                0 => cur[i],
                1 => cur[i].wrapping_add(left),
                2 => cur[i].wrapping_add(up),
                3 => cur[i].wrapping_add(((left as u16 + up as u16) / 2) as u8),
                4 => {
                    let p = left as i16 + up as i16 - ul as i16;
                    let (pa, pb, pc) = (
                        (p - left as i16).abs(),
                        (p - up as i16).abs(),
                        (p - ul as i16).abs(),
                    );
                    let pred = if pa <= pb && pa <= pc {
                        left
                    } else if pb <= pc {
                        up
                    } else {
                        ul
                    };
                    cur[i].wrapping_add(pred)
                }
                _ => return fail("bad PNG predictor byte"),
            };
        }
        out.extend_from_slice(&cur);
        prev = cur;
    }
    Ok(out)
}

/// Structural equality of two objects as written, streams compared by their raw bytes.
pub fn same(data: &[u8], a: &Object, b: &Object) -> bool {
    match (a, b) {
        (Object::Null, Object::Null) => true,
        (Object::Bool(x), Object::Bool(y)) => x == y,
        (Object::Int(x), Object::Int(y)) => x == y,
        (Object::Real(x), Object::Real(y)) => x == y,
        (Object::Int(x), Object::Real(y)) | (Object::Real(y), Object::Int(x)) => *x as f64 == *y,
        (Object::Name(x), Object::Name(y)) => x == y,
        (Object::String(x), Object::String(y)) => x == y,
        (Object::Ref(n1, g1), Object::Ref(n2, g2)) => n1 == n2 && g1 == g2,
        (Object::Array(x), Object::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(data, p, q))
        }
        (Object::Dict(x), Object::Dict(y)) => same_dict(data, x, y),
        (Object::Stream(x), Object::Stream(y)) => {
            same_dict_except(data, &x.dict, &y.dict, &[b"Length"])
                && data.get(x.start..x.end) == data.get(y.start..y.end)
        }
        _ => false,
    }
}

pub fn same_dict(data: &[u8], x: &Dict, y: &Dict) -> bool {
    same_dict_except(data, x, y, &[])
}

/// Keys whose values differ (or exist on one side only), ignoring `except`.
pub fn dict_diff<'d>(data: &[u8], x: &'d Dict, y: &'d Dict) -> Vec<&'d [u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    for (k, v) in &x.0 {
        match y.get(k) {
            Some(w) if same(data, v, w) => {}
            _ => out.push(k),
        }
    }
    for (k, _) in &y.0 {
        if x.get(k).is_none() {
            out.push(k);
        }
    }
    out
}

fn same_dict_except(data: &[u8], x: &Dict, y: &Dict, except: &[&[u8]]) -> bool {
    dict_diff(data, x, y).iter().all(|k| except.contains(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexes_the_usual_objects() {
        let src = b"<< /A 1 /B [2 0 R (a\\)b) <414>] /C -.5 /D /N#20x /E true >>";
        let o = Lexer::new(src, 0).object(0).unwrap();
        let d = o.as_dict().unwrap();
        assert_eq!(d.get(b"A").and_then(Object::as_int), Some(1));
        let b = d.get(b"B").and_then(Object::as_array).unwrap();
        assert_eq!(b[0].as_ref(), Some(2));
        assert_eq!(b[1].as_string(), Some(&b"a)b"[..]));
        assert_eq!(b[2].as_string(), Some(&b"A@"[..]));
        assert!(matches!(d.get(b"C"), Some(Object::Real(r)) if *r == -0.5));
        assert_eq!(d.name(b"D"), Some(&b"N x"[..]));
    }

    #[test]
    fn refuses_deep_nesting_without_overflowing_the_stack() {
        let src = vec![b'['; 100_000];
        assert!(Lexer::new(&src, 0).object(0).is_err());
    }

    #[test]
    fn garbage_is_not_a_pdf() {
        assert!(Pdf::parse(b"hello").is_err());
        assert!(Pdf::parse(b"%PDF-1.7\nstartxref\n999999\n%%EOF").is_err());
    }
}
