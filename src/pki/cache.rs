//! Parsed certificates by content. OpenSSL 3 takes about 150 µs to decode one certificate (its
//! provider-based key decoding), more than the signature checks themselves; the seals, CAs and
//! time-stamping units of this service appear in document after document, so each distinct
//! certificate is decoded once per process. Bounded: the table is emptied when full.

use openssl::x509::X509;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

const CAPACITY: usize = 4096;

fn table() -> &'static Mutex<HashMap<[u8; 32], X509>> {
    static T: OnceLock<Mutex<HashMap<[u8; 32], X509>>> = OnceLock::new();
    T.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The certificate encoded by `der`, or `None` when it does not parse.
pub fn certificate(der: &[u8]) -> Option<X509> {
    let key = openssl::sha::sha256(der);
    if let Some(c) = table().lock().ok()?.get(&key) {
        return Some(c.clone());
    }
    let cert = X509::from_der(der).ok()?;
    if let Ok(mut t) = table().lock() {
        if t.len() >= CAPACITY {
            t.clear();
        }
        t.insert(key, cert.clone());
    }
    Some(cert)
}

/// Empties the table (benchmarks measure the cold path with it).
pub fn clear() {
    if let Ok(mut t) = table().lock() {
        t.clear();
    }
}

/// Whether `cert` carries a valid signature by `issuer`, remembered by both certificates'
/// content (the same CA certificates ride along in document after document).
pub fn signed_by(cert: &X509, issuer: &X509) -> bool {
    static T: OnceLock<Mutex<HashMap<[u8; 32], bool>>> = OnceLock::new();
    let (Ok(a), Ok(b)) = (cert.to_der(), issuer.to_der()) else {
        return false;
    };
    let mut h = openssl::sha::Sha256::new();
    h.update(&a);
    h.update(&b);
    let key = h.finish();
    let t = T.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(v) = t.lock().ok().and_then(|t| t.get(&key).copied()) {
        return v;
    }
    let ok = issuer
        .public_key()
        .and_then(|k| cert.verify(&k))
        .unwrap_or(false);
    if let Ok(mut t) = t.lock() {
        if t.len() >= CAPACITY {
            t.clear();
        }
        t.insert(key, ok);
    }
    ok
}
