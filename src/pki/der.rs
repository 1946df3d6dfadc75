//! The DER the PKI writes and reads itself: just enough ASN.1 for certificate extensions, CMS
//! SignedData, RFC 3161 time-stamp requests and replies. The reader is strict (definite lengths
//! only, every length inside its parent) and never panics on hostile input.

/// Tags used here.
pub mod tag {
    pub const BOOLEAN: u8 = 0x01;
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const OID: u8 = 0x06;
    pub const UTF8_STRING: u8 = 0x0c;
    pub const GENERALIZED_TIME: u8 = 0x18;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
    /// Context-specific, constructed, number n.
    pub const fn ctx(n: u8) -> u8 {
        0xa0 | n
    }
    /// Context-specific, primitive, number n.
    pub const fn ctx_prim(n: u8) -> u8 {
        0x80 | n
    }
}

pub fn parse_oid(s: &str) -> Option<Vec<u64>> {
    let arcs: Option<Vec<u64>> = s.split('.').map(|p| p.parse().ok()).collect();
    let arcs = arcs?;
    (arcs.len() >= 2 && arcs[0] <= 2).then_some(arcs)
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    push_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

fn push_base128(out: &mut Vec<u8>, mut v: u128) {
    let mut tmp = vec![(v & 0x7f) as u8];
    v >>= 7;
    while v > 0 {
        tmp.push(0x80 | (v & 0x7f) as u8);
        v >>= 7;
    }
    tmp.reverse();
    out.extend_from_slice(&tmp);
}

/// DER of an OBJECT IDENTIFIER given in dotted form. UUID arcs (2.25.<128-bit>) fit in u128.
pub fn oid(dotted: &str) -> Option<Vec<u8>> {
    let arcs: Option<Vec<u128>> = dotted.split('.').map(|p| p.parse().ok()).collect();
    let arcs = arcs?;
    if arcs.len() < 2 || arcs[0] > 2 {
        return None;
    }
    let mut body = Vec::new();
    push_base128(&mut body, arcs[0] * 40 + arcs[1]);
    for a in &arcs[2..] {
        push_base128(&mut body, *a);
    }
    Some(tlv(tag::OID, &body))
}

/// An OID known at compile time.
pub fn oid_lit(dotted: &str) -> Vec<u8> {
    oid(dotted).expect("literal OID is well formed")
}

pub fn sequence(items: &[Vec<u8>]) -> Vec<u8> {
    tlv(tag::SEQUENCE, &items.concat())
}

/// A SET OF: DER orders the encoded elements.
pub fn set_of(items: &[Vec<u8>]) -> Vec<u8> {
    let mut sorted: Vec<&Vec<u8>> = items.iter().collect();
    sorted.sort();
    tlv(
        tag::SET,
        &sorted.into_iter().flatten().copied().collect::<Vec<u8>>(),
    )
}

/// An INTEGER from unsigned big-endian bytes (a leading zero is added when the top bit is set).
pub fn integer_unsigned(be: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = {
        let skip = be.iter().take_while(|b| **b == 0).count();
        if skip == be.len() { &[0] } else { &be[skip..] }
    };
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    tlv(tag::INTEGER, &content)
}

pub fn integer(v: u64) -> Vec<u8> {
    integer_unsigned(&v.to_be_bytes())
}

pub fn octet_string(b: &[u8]) -> Vec<u8> {
    tlv(tag::OCTET_STRING, b)
}

pub fn null() -> Vec<u8> {
    vec![tag::NULL, 0]
}

/// GeneralizedTime in UTC with millisecond precision, trailing zeros dropped as DER requires.
pub fn generalized_time(t: time::OffsetDateTime) -> Vec<u8> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let mut s = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let ms = t.millisecond();
    if ms != 0 {
        let frac = format!("{ms:03}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    tlv(tag::GENERALIZED_TIME, s.as_bytes())
}

/// An AlgorithmIdentifier.
pub fn algorithm(oid_dotted: &str, null_params: bool) -> Vec<u8> {
    if null_params {
        sequence(&[oid_lit(oid_dotted), null()])
    } else {
        sequence(&[oid_lit(oid_dotted)])
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed DER: {0}")]
pub struct DerError(pub &'static str);

/// One element: its tag, its content, and its whole encoding.
#[derive(Clone, Copy, Debug)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    pub fn expect(self, tag: u8) -> Result<Tlv<'a>, DerError> {
        if self.tag == tag {
            Ok(self)
        } else {
            Err(DerError("unexpected tag"))
        }
    }
    /// A reader over the children of a constructed element.
    pub fn children(&self) -> Reader<'a> {
        Reader::new(self.content)
    }
}

/// Reads consecutive elements from a byte slice.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    pub fn read(&mut self) -> Result<Tlv<'a>, DerError> {
        let start = self.pos;
        let tag = *self.data.get(self.pos).ok_or(DerError("truncated"))?;
        if tag & 0x1f == 0x1f {
            return Err(DerError("multi-byte tags are not used here"));
        }
        let first = *self.data.get(self.pos + 1).ok_or(DerError("truncated"))?;
        let mut p = self.pos + 2;
        let len = if first < 0x80 {
            first as usize
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 {
                return Err(DerError("unsupported length"));
            }
            let bytes = self.data.get(p..p + n).ok_or(DerError("truncated"))?;
            p += n;
            bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize)
        };
        let end = p.checked_add(len).ok_or(DerError("length overflow"))?;
        let content = self
            .data
            .get(p..end)
            .ok_or(DerError("length beyond input"))?;
        self.pos = end;
        Ok(Tlv {
            tag,
            content,
            raw: &self.data[start..end],
        })
    }

    pub fn read_tag(&mut self, tag: u8) -> Result<Tlv<'a>, DerError> {
        self.read()?.expect(tag)
    }

    /// Reads the next element only if it has `tag`.
    pub fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.read().map(Some)
        } else {
            Ok(None)
        }
    }
}

/// The dotted form of an OID's content bytes (for messages and comparisons).
pub fn oid_to_string(content: &[u8]) -> Option<String> {
    let mut arcs: Vec<u128> = Vec::new();
    let mut v: u128 = 0;
    for (i, b) in content.iter().enumerate() {
        if v > (u128::MAX >> 7) {
            return None;
        }
        v = (v << 7) | (b & 0x7f) as u128;
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = if v < 40 {
                    0
                } else if v < 80 {
                    1
                } else {
                    2
                };
                arcs.push(first);
                arcs.push(v - first * 40);
            } else {
                arcs.push(v);
            }
            v = 0;
        } else if i == content.len() - 1 {
            return None;
        }
    }
    (!arcs.is_empty()).then(|| {
        arcs.iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(".")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_encodings() {
        // id-kp-timeStamping 1.3.6.1.5.5.7.3.8
        assert_eq!(
            oid("1.3.6.1.5.5.7.3.8").unwrap(),
            vec![0x06, 0x08, 0x2b, 6, 1, 5, 5, 7, 3, 8]
        );
        assert_eq!(tlv(0x04, &[0u8; 200])[..3], [0x04, 0x81, 200]);
        assert!(oid("3.1").is_none());
        assert_eq!(integer(0), vec![2, 1, 0]);
        assert_eq!(integer(128), vec![2, 2, 0, 128]);
        assert_eq!(integer_unsigned(&[0, 0, 1]), vec![2, 1, 1]);
        let o = oid("2.25.80410410568930354608029482457162160361.1.2").unwrap();
        assert_eq!(
            oid_to_string(&o[2..]).unwrap(),
            "2.25.80410410568930354608029482457162160361.1.2"
        );
    }

    #[test]
    fn generalized_time_drops_trailing_zeros() {
        let t = time::macros::datetime!(2026-11-28 07:40:03.120 UTC);
        assert_eq!(&generalized_time(t)[2..], b"20261128074003.12Z");
        let t = time::macros::datetime!(2026-11-28 07:40:03 UTC);
        assert_eq!(&generalized_time(t)[2..], b"20261128074003Z");
    }

    #[test]
    fn reader_refuses_hostile_lengths() {
        for bad in [
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff][..],
            &[0x30, 0x05, 1],
            &[0x30],
            &[0x30, 0x80],
            &[0x1f, 0],
        ] {
            assert!(Reader::new(bad).read().is_err(), "{bad:?}");
        }
        let nested = sequence(&[integer(5), octet_string(b"x")]);
        let t = Reader::new(&nested).read().unwrap();
        let mut c = t.children();
        assert_eq!(c.read_tag(tag::INTEGER).unwrap().content, &[5]);
        assert_eq!(c.read_tag(tag::OCTET_STRING).unwrap().content, b"x");
        assert!(c.is_empty());
    }
}
