//! The little DER the PKI writes itself: object identifiers and sequences for the extensions rcgen
//! has no builder for (certificate policies, a critical extended key usage).

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
    let mut out = Vec::with_capacity(content.len() + 4);
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
    Some(tlv(0x06, &body))
}

pub fn sequence(items: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &items.concat())
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
    }
}
