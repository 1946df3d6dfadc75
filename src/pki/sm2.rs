//! 国密 signatures: SM2 with SM3 (GB/T 32918, GM/T 0009) through the system's OpenSSL.
//!
//! OpenSSL 3.0 signs SM2 with an *empty* distinguishing ID unless told otherwise, and the Rust
//! bindings have no call to tell it, so every SM2 operation here computes
//! `e = SM3(Z ‖ M)` itself, with `Z` over the one ID every other implementation uses
//! (`DISTID`), and signs or verifies `e` directly. That is what BouncyCastle, GmSSL, gmssl and
//! sm-crypto do, and what `openssl dgst -sm3 -sigopt distid:1234567812345678` accepts.

use super::der::{self, Reader, tag};
use super::{PkiError, PkiResult};
use openssl::hash::{MessageDigest, hash};
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::symm::Cipher;

/// The SM2 distinguishing ID (GM/T 0009 default), fixed here and nowhere else.
pub const DISTID: &[u8] = b"1234567812345678";
/// The SM2 curve (namedCurve of every SM2 public key) and the SM2 algorithm.
pub const OID_SM2: &str = "1.2.156.10197.1.301";
pub const OID_SM3: &str = "1.2.156.10197.1.401";
/// SM2-with-SM3: certificates, CRLs, seals and OFD signatures.
pub const OID_SM2_SM3: &str = "1.2.156.10197.1.501";

// Curve parameters (GB/T 32918.5), as they enter Z.
const A: &str = "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC";
const B: &str = "28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93";
const GX: &str = "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7";
const GY: &str = "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0";

/// The curve order n, to check signature values are in range before OpenSSL sees them.
const N: &str = "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123";

fn unhex(s: &str) -> Vec<u8> {
    super::ca::decode_hex(s).expect("constant hex")
}

/// SM3 with the algorithm fetched once: OpenSSL 3.0 otherwise looks the provider's
/// implementation up again on every digest, which cost more than the hashing of a small file.
pub fn sm3(data: &[u8]) -> [u8; 32] {
    use std::sync::OnceLock;
    static MD: OnceLock<Option<openssl::md::Md>> = OnceLock::new();
    let mut out = [0u8; 32];
    if let Some(md) = MD.get_or_init(|| openssl::md::Md::fetch(None, "SM3", None).ok())
        && let Ok(mut ctx) = openssl::md_ctx::MdCtx::new()
        && ctx.digest_init(md).is_ok()
        && ctx.digest_update(data).is_ok()
        && ctx.digest_final(&mut out).is_ok()
    {
        return out;
    }
    let d = hash(MessageDigest::sm3(), data).expect("SM3 is built into OpenSSL 3");
    out.copy_from_slice(&d);
    out
}

/// The public key of an SPKI, decoded once: OpenSSL 3.0's decoders take longer than an SM2
/// verification's arithmetic, and the same few keys (a centre's seal, its CAs) come again and
/// again. Bounded: cleared when full.
fn public_key(spki: &[u8]) -> Option<PKey<Public>> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static KEYS: OnceLock<Mutex<HashMap<Vec<u8>, PKey<Public>>>> = OnceLock::new();
    let keys = KEYS.get_or_init(Default::default);
    if let Some(k) = keys.lock().ok().and_then(|m| m.get(spki).cloned()) {
        return Some(k);
    }
    let k = PKey::<Public>::public_key_from_der(spki).ok()?;
    if let Ok(mut m) = keys.lock() {
        if m.len() >= 1024 {
            m.clear();
        }
        m.insert(spki.to_vec(), k.clone());
    }
    Some(k)
}

/// Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ Gx ‖ Gy ‖ x ‖ y) for the public point (x ‖ y).
pub fn z(xy: &[u8; 64]) -> [u8; 32] {
    use std::sync::OnceLock;
    // ENTL ‖ ID ‖ a ‖ b ‖ Gx ‖ Gy: the same for every key.
    static PREFIX: OnceLock<Vec<u8>> = OnceLock::new();
    let prefix = PREFIX.get_or_init(|| {
        let mut p = Vec::with_capacity(2 + DISTID.len() + 4 * 32);
        p.extend_from_slice(&((DISTID.len() * 8) as u16).to_be_bytes());
        p.extend_from_slice(DISTID);
        for c in [A, B, GX, GY] {
            p.extend_from_slice(&unhex(c));
        }
        p
    });
    let mut buf = Vec::with_capacity(prefix.len() + 64);
    buf.extend_from_slice(prefix);
    buf.extend_from_slice(xy);
    sm3(&buf)
}

/// e = SM3(Z ‖ M): what an SM2 signature signs.
pub fn digest(xy: &[u8; 64], message: &[u8]) -> [u8; 32] {
    let z = z(xy);
    let mut buf = Vec::with_capacity(32 + message.len());
    buf.extend_from_slice(&z);
    buf.extend_from_slice(message);
    sm3(&buf)
}

/// The public point (x ‖ y) of an SM2 SubjectPublicKeyInfo: id-ecPublicKey (or SM2) on the SM2
/// curve, an uncompressed point. `None` for anything else.
pub fn spki_point(spki: &[u8]) -> Option<[u8; 64]> {
    let mut outer = Reader::new(spki);
    let seq = outer.read_tag(tag::SEQUENCE).ok()?;
    let mut r = seq.children();
    let alg = r.read_tag(tag::SEQUENCE).ok()?;
    let mut a = alg.children();
    let kind = der::oid_to_string(a.read_tag(tag::OID).ok()?.content)?;
    let params = a.read().ok();
    let curve_ok = match kind.as_str() {
        "1.2.840.10045.2.1" => {
            params
                .and_then(|p| (p.tag == tag::OID).then(|| der::oid_to_string(p.content)))
                .flatten()
                .as_deref()
                == Some(OID_SM2)
        }
        k => k == OID_SM2,
    };
    if !curve_ok {
        return None;
    }
    let bits = r.read_tag(tag::BIT_STRING).ok()?;
    let point = bits.content.get(1..)?;
    if bits.content[0] != 0 || point.len() != 65 || point[0] != 4 {
        return None;
    }
    let mut xy = [0u8; 64];
    xy.copy_from_slice(&point[1..]);
    Some(xy)
}

/// An SM2 private key held in process memory. Cloning shares the one OpenSSL key.
#[derive(Clone)]
pub struct Sm2Key {
    pkey: PKey<Private>,
    spki: Vec<u8>,
    xy: [u8; 64],
}

impl std::fmt::Debug for Sm2Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private part.
        write!(f, "Sm2Key({})", super::names::hex(&self.xy[..8]))
    }
}

impl Sm2Key {
    pub fn generate() -> PkiResult<Sm2Key> {
        let mut ctx = PkeyCtx::new_id(Id::SM2)?;
        ctx.keygen_init()?;
        Sm2Key::from_pkey(ctx.keygen()?)
    }

    fn from_pkey(pkey: PKey<Private>) -> PkiResult<Sm2Key> {
        let spki = pkey.public_key_to_der()?;
        let xy = spki_point(&spki).ok_or_else(|| PkiError::Build("not an SM2 key".into()))?;
        Ok(Sm2Key { pkey, spki, xy })
    }

    /// Encrypted PKCS#8 (PBES2, AES-256) under the key-encryption key, as software keys are kept.
    pub fn to_encrypted_pkcs8(&self, kek: &[u8]) -> PkiResult<Vec<u8>> {
        Ok(self
            .pkey
            .private_key_to_pkcs8_passphrase(Cipher::aes_256_cbc(), kek)?)
    }

    pub fn from_encrypted_pkcs8(der: &[u8], kek: &[u8]) -> PkiResult<Sm2Key> {
        let pkey = PKey::private_key_from_pkcs8_passphrase(der, kek)?;
        Sm2Key::from_pkey(pkey)
    }

    /// The SubjectPublicKeyInfo, DER.
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    pub fn point(&self) -> &[u8; 64] {
        &self.xy
    }

    /// SM2 signature over `message` (e = SM3(Z ‖ M) with `DISTID`), DER SEQUENCE { r, s }.
    pub fn sign(&self, message: &[u8]) -> PkiResult<Vec<u8>> {
        let e = digest(&self.xy, message);
        let mut ctx = PkeyCtx::new(&self.pkey)?;
        ctx.sign_init()?;
        let mut sig = Vec::with_capacity(72);
        ctx.sign_to_vec(&e, &mut sig)?;
        Ok(sig)
    }
}

/// r and s of a signature (DER SEQUENCE { r, s } or the raw 64-byte r ‖ s some producers
/// write), minimal big-endian. `None` when it is neither, or r or s is out of range.
fn signature_parts(sig: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let n = unhex(N);
    let minimal = |v: &[u8]| -> Option<Vec<u8>> {
        let v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        (!v.is_empty() && (v.len() < 32 || (v.len() == 32 && v.as_slice() < n.as_slice())))
            .then_some(v)
    };
    if sig.len() == 64 {
        let (r, s) = sig.split_at(32);
        return Some((minimal(r)?, minimal(s)?));
    }
    let mut outer = Reader::new(sig);
    let seq = outer.read_tag(tag::SEQUENCE).ok()?;
    if !outer.is_empty() {
        return None;
    }
    let mut r = seq.children();
    let a = r.read_tag(tag::INTEGER).ok()?;
    let b = r.read_tag(tag::INTEGER).ok()?;
    if !r.is_empty() {
        return None;
    }
    Some((minimal(a.content)?, minimal(b.content)?))
}

/// A signature as DER SEQUENCE { r, s }, from DER or from the raw 64-byte r ‖ s. `None` when it
/// is neither, or r or s is out of range. Re-encoded, so a non-minimal encoding cannot reach
/// OpenSSL's strict parser as "valid".
pub fn signature_der(sig: &[u8]) -> Option<Vec<u8>> {
    let (r, s) = signature_parts(sig)?;
    Some(der::sequence(&[
        der::integer_unsigned(&r),
        der::integer_unsigned(&s),
    ]))
}

/// Verifies an SM2 signature (DER or raw r ‖ s) over `message` with an SM2 public key given as
/// its SubjectPublicKeyInfo.
pub fn verify(spki: &[u8], message: &[u8], sig: &[u8]) -> bool {
    let Some(xy) = spki_point(spki) else {
        return false;
    };
    let Some((r, s)) = signature_parts(sig) else {
        return false;
    };
    let e = digest(&xy, message);
    match fast::verify(&xy, &e, &r, &s) {
        Some(ok) => ok,
        // Only when OpenSSL could not make a table or a point: its own SM2 verify decides.
        None => verify_e_with_openssl(spki, &e, sig),
    }
}

/// The same check by OpenSSL's SM2 verify (EVP, no precomputation): the reference the fast
/// path is tested against, and its fallback.
pub fn verify_with_openssl(spki: &[u8], message: &[u8], sig: &[u8]) -> bool {
    let Some(xy) = spki_point(spki) else {
        return false;
    };
    verify_e_with_openssl(spki, &digest(&xy, message), sig)
}

fn verify_e_with_openssl(spki: &[u8], e: &[u8; 32], sig: &[u8]) -> bool {
    let Some(sig) = signature_der(sig) else {
        return false;
    };
    let Some(pkey) = public_key(spki) else {
        return false;
    };
    let run = || -> Result<bool, openssl::error::ErrorStack> {
        let mut ctx = PkeyCtx::new(&pkey)?;
        ctx.verify_init()?;
        ctx.verify(e, &sig)
    };
    run().unwrap_or(false)
}

/// Tables G's multiples now (`fast::curve`), not in the first verification after a start.
pub fn warm_up() {
    let _ = fast::curve();
}

/// SM2 verification on OpenSSL's group arithmetic with precomputed multiples.
///
/// Why not OpenSSL's SM2 verify: in 3.0 it multiplies on the generic curve code with no
/// precomputation for the SM2 curve, so one verification costs ~0.44 ms, and the OFD
/// certificate needs two that cannot be remembered (the holder's, the time stamp's): the 1 ms
/// target was out of reach by the arithmetic alone. GB/T 32918.2 §7.1 is four lines over the
/// group: t = (r + s) mod n, (x1, y1) = [s]G + [t]P, R = (e + x1) mod n, R = r. The group
/// operations are OpenSSL's; what this adds is a table of multiples of G (made once) and, for
/// a key seen before, of P (its own "generator" on the same curve), so both products read
/// their multiples from a table instead of doubling their way through the scalar. The tests
/// check it against OpenSSL's own SM2 verify on valid, tampered and edge-case signatures.
mod fast {
    use openssl::bn::{BigNum, BigNumContext, BigNumRef};
    use openssl::ec::{EcGroup, EcGroupRef, EcPoint};
    use openssl::nid::Nid;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};

    unsafe extern "C" {
        // Deprecated in OpenSSL 3.0 but exported; the Rust bindings do not declare it.
        fn EC_GROUP_precompute_mult(
            group: *mut openssl_sys::EC_GROUP,
            ctx: *mut openssl_sys::BN_CTX,
        ) -> std::ffi::c_int;
    }

    fn precompute(group: &mut EcGroup) -> bool {
        use foreign_types::ForeignType;
        let Ok(ctx) = BigNumContext::new() else {
            return false;
        };
        // SAFETY: both pointers are live, owned values of the right types for the call.
        unsafe { EC_GROUP_precompute_mult(group.as_ptr(), ctx.as_ptr()) == 1 }
    }

    /// The SM2 group with G's multiples.
    pub(super) fn curve() -> Option<&'static EcGroup> {
        static G: OnceLock<Option<EcGroup>> = OnceLock::new();
        G.get_or_init(|| {
            let mut g = EcGroup::from_curve_name(Nid::SM2).ok()?;
            precompute(&mut g).then_some(g)
        })
        .as_ref()
    }

    /// A group on the SM2 curve whose generator is the key's point, with its multiples.
    pub(super) struct KeyTable {
        pub group: EcGroup,
    }

    /// Keys seen, and the tables of those seen twice: the first sighting only counts, so a
    /// stream of one-off keys (uploads to the public verifier) costs no table each. Bounded:
    /// at most `SEEN_MAX` keys and `TABLES_MAX` tables (~50 KB each), cleared when full.
    #[derive(Default)]
    struct Seen {
        keys: HashMap<[u8; 64], Option<Arc<KeyTable>>>,
        tables: usize,
    }
    const SEEN_MAX: usize = 1024;
    const TABLES_MAX: usize = 64;

    /// The key's table when it was seen before; `Ok(None)` on its first sighting; `Err` when
    /// no table can be made (a point off the curve).
    pub(super) fn key_table(xy: &[u8; 64]) -> Result<Option<Arc<KeyTable>>, ()> {
        static SEEN: OnceLock<Mutex<Seen>> = OnceLock::new();
        let seen = SEEN.get_or_init(Default::default);
        {
            let mut m = seen.lock().map_err(|_| ())?;
            match m.keys.get(xy) {
                Some(Some(t)) => return Ok(Some(t.clone())),
                Some(None) => {}
                None => {
                    if m.keys.len() >= SEEN_MAX {
                        *m = Seen::default();
                    }
                    m.keys.insert(*xy, None);
                    return Ok(None);
                }
            }
        }
        // Made outside the lock: two threads may both make one; the last kept wins.
        let t = Arc::new(build(xy).ok_or(())?);
        if let Ok(mut m) = seen.lock() {
            if m.tables >= TABLES_MAX {
                *m = Seen::default();
            }
            if m.keys
                .insert(*xy, Some(t.clone()))
                .is_none_or(|old| old.is_none())
            {
                m.tables += 1;
            }
        }
        Ok(Some(t))
    }

    fn build(xy: &[u8; 64]) -> Option<KeyTable> {
        let g = curve()?;
        let mut ctx = BigNumContext::new().ok()?;
        let (mut p, mut a, mut b) = (
            BigNum::new().ok()?,
            BigNum::new().ok()?,
            BigNum::new().ok()?,
        );
        g.components_gfp(&mut p, &mut a, &mut b, &mut ctx).ok()?;
        let mut order = BigNum::new().ok()?;
        g.order(&mut order, &mut ctx).ok()?;
        let mut group = EcGroup::from_components(p, a, b, &mut ctx).ok()?;
        let point = super::fast::point(&group, xy, &mut ctx)?;
        group
            .set_generator(point, order, BigNum::from_u32(1).ok()?)
            .ok()?;
        precompute(&mut group).then_some(KeyTable { group })
    }

    /// The point (x ‖ y) on `group`'s curve; `None` when it is not on the curve.
    pub(super) fn point(
        group: &EcGroupRef,
        xy: &[u8; 64],
        ctx: &mut BigNumContext,
    ) -> Option<EcPoint> {
        let mut enc = [0u8; 65];
        enc[0] = 4;
        enc[1..].copy_from_slice(xy);
        let p = EcPoint::from_bytes(group, &enc, ctx).ok()?;
        (!p.is_infinity(group)).then_some(p)
    }

    /// [k] times the group's generator from its table. Not `EC_POINT_mul(group, k, NULL, NULL)`:
    /// OpenSSL 3.0 takes a constant-time ladder for a lone scalar (right for a secret one) and
    /// never reads the table; with a second term, here the generator times zero, it takes the
    /// windowed path that does. A verification's scalars are public.
    fn fixed_base(group: &EcGroupRef, k: &BigNumRef, ctx: &mut BigNumContext) -> Option<EcPoint> {
        let zero = BigNum::new().ok()?;
        let mut out = EcPoint::new(group).ok()?;
        out.mul_full(group, k, group.generator_opt()?, &zero, ctx)
            .ok()?;
        Some(out)
    }

    /// [s]G + [t]P = (x1, y1); R = (e + x1) mod n = r.
    pub(super) fn verify(xy: &[u8; 64], e: &[u8; 32], r: &[u8], s: &[u8]) -> Option<bool> {
        let g = curve()?;
        let mut ctx = BigNumContext::new().ok()?;
        let mut n = BigNum::new().ok()?;
        g.order(&mut n, &mut ctx).ok()?;
        let r = BigNum::from_slice(r).ok()?;
        let s = BigNum::from_slice(s).ok()?;
        let one = BigNum::from_u32(1).ok()?;
        if r < one || r >= n || s < one || s >= n {
            return Some(false);
        }
        let mut t = BigNum::new().ok()?;
        t.mod_add(&r, &s, &n, &mut ctx).ok()?;
        if t.num_bits() == 0 {
            return Some(false);
        }
        let mut sum = EcPoint::new(g).ok()?;
        match key_table(xy).ok()? {
            Some(table) => {
                let sg = fixed_base(g, &s, &mut ctx)?;
                let tp = fixed_base(&table.group, &t, &mut ctx)?;
                // Same field, same curve: the points' coordinates are interchangeable, but they
                // are moved through their encoding so no assumption about OpenSSL's internal
                // representation is made.
                let enc = tp
                    .to_bytes(
                        &table.group,
                        openssl::ec::PointConversionForm::UNCOMPRESSED,
                        &mut ctx,
                    )
                    .ok()?;
                let tp = EcPoint::from_bytes(g, &enc, &mut ctx).ok()?;
                sum.add(g, &sg, &tp, &mut ctx).ok()?;
            }
            None => {
                let p = point(g, xy, &mut ctx)?;
                sum.mul_full(g, &s, &p, &t, &mut ctx).ok()?;
            }
        }
        if sum.is_infinity(g) {
            return Some(false);
        }
        let (mut x1, mut y1) = (BigNum::new().ok()?, BigNum::new().ok()?);
        sum.affine_coordinates(g, &mut x1, &mut y1, &mut ctx).ok()?;
        let e = BigNum::from_slice(e).ok()?;
        let mut big_r = BigNum::new().ok()?;
        big_r.mod_add(&e, &x1, &n, &mut ctx).ok()?;
        Some(big_r == r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_tamper() {
        let k = Sm2Key::generate().unwrap();
        let sig = k.sign(b"hello SM2").unwrap();
        assert!(verify(k.public_key_der(), b"hello SM2", &sig));
        assert!(!verify(k.public_key_der(), b"hello SM3", &sig));
        let mut bad = sig.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(!verify(k.public_key_der(), b"hello SM2", &bad));
        // Raw r ‖ s is accepted too.
        let mut r = Reader::new(&sig);
        let seq = r.read_tag(tag::SEQUENCE).unwrap();
        let mut c = seq.children();
        let mut raw = Vec::new();
        for _ in 0..2 {
            let i = c.read_tag(tag::INTEGER).unwrap().content;
            let i: Vec<u8> = i.iter().copied().skip_while(|b| *b == 0).collect();
            raw.extend(std::iter::repeat_n(0u8, 32 - i.len()));
            raw.extend(i);
        }
        assert_eq!(raw.len(), 64);
        assert!(verify(k.public_key_der(), b"hello SM2", &raw));
    }

    #[test]
    fn keys_round_trip_encrypted() {
        let k = Sm2Key::generate().unwrap();
        let enc = k.to_encrypted_pkcs8(b"kek").unwrap();
        let back = Sm2Key::from_encrypted_pkcs8(&enc, b"kek").unwrap();
        assert_eq!(back.public_key_der(), k.public_key_der());
        assert!(Sm2Key::from_encrypted_pkcs8(&enc, b"other").is_err());
        let sig = back.sign(b"m").unwrap();
        assert!(verify(k.public_key_der(), b"m", &sig));
    }

    #[test]
    fn garbage_never_verifies() {
        let k = Sm2Key::generate().unwrap();
        for junk in [
            &b""[..],
            b"\x30\x00",
            &[0u8; 64],
            &[0xffu8; 64],
            b"\x30\x06\x02\x01\x01\x02\x01",
        ] {
            assert!(!verify(k.public_key_der(), b"m", junk));
        }
        assert!(!verify(b"not a key", b"m", &k.sign(b"m").unwrap()));
    }

    /// The tabled verification (fast) agrees with OpenSSL's SM2 verify on every case, on both
    /// of its paths: a key's first sighting (G's table and a ladder for P) and later ones (both
    /// tables).
    #[test]
    fn the_tabled_verify_agrees_with_openssls() {
        let n = unhex(N);
        let raw = |sig: &[u8]| {
            let (r, s) = signature_parts(sig).unwrap();
            let mut out = vec![0u8; 64];
            out[32 - r.len()..32].copy_from_slice(&r);
            out[64 - s.len()..].copy_from_slice(&s);
            out
        };
        // n - v, for v < n (32 bytes big-endian).
        let neg = |v: &[u8]| {
            let mut out = [0u8; 32];
            let mut borrow = 0i16;
            for i in (0..32).rev() {
                let d = n[i] as i16 - v[i] as i16 - borrow;
                borrow = i16::from(d < 0);
                out[i] = d.rem_euclid(256) as u8;
            }
            out
        };
        for round in 0..3 {
            let k = Sm2Key::generate().unwrap();
            let spki = k.public_key_der();
            for sighting in 0..3 {
                let msg = format!("round {round} sighting {sighting}");
                let sig = raw(&k.sign(msg.as_bytes()).unwrap());
                let (r, s) = sig.split_at(32);
                let mut cases: Vec<(Vec<u8>, Vec<u8>, bool)> = vec![
                    (msg.clone().into_bytes(), sig.clone(), true),
                    (b"another message".to_vec(), sig.clone(), false),
                    (msg.clone().into_bytes(), [s, r].concat(), false),
                    // t = r + s = 0 mod n.
                    (msg.clone().into_bytes(), [r, &neg(r)[..]].concat(), false),
                    // r or s zero, or n.
                    (
                        msg.clone().into_bytes(),
                        [&[0u8; 32][..], s].concat(),
                        false,
                    ),
                    (msg.clone().into_bytes(), [r, &n[..]].concat(), false),
                ];
                for bit in [0usize, 100, 255, 256, 400, 511] {
                    let mut t = sig.clone();
                    t[bit / 8] ^= 1 << (bit % 8);
                    cases.push((msg.clone().into_bytes(), t, false));
                }
                for (m, sg, expected) in cases {
                    assert_eq!(verify(spki, &m, &sg), expected, "ours, {round}/{sighting}");
                    assert_eq!(
                        verify_with_openssl(spki, &m, &sg),
                        expected,
                        "OpenSSL, {round}/{sighting}"
                    );
                }
            }
            assert!(
                fast::key_table(k.point()).unwrap().is_some(),
                "tabled by now"
            );
            // A point off the curve (y changed) is no key, on either path.
            let mut off = spki.to_vec();
            let last = off.len() - 1;
            off[last] ^= 1;
            let sig = k.sign(b"m").unwrap();
            for _ in 0..3 {
                assert!(!verify(&off, b"m", &sig));
                assert!(!verify_with_openssl(&off, b"m", &sig));
            }
        }
    }
}
