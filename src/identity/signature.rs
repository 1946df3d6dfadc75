//! The signed-request scheme between the service and an identity provider, in both directions:
//! HMAC-SHA256 over the timestamp, a nonce, the method, the path and the body's SHA-256, sent as
//! headers. A receiver checks the key id, the signature (in constant time), that the timestamp
//! is within five minutes of its clock, and (itself, where every instance sees it) that the
//! nonce was not seen before.

use super::CallbackError;
use openssl::pkey::PKey;
use openssl::sign::Signer;

pub const KEY_ID: &str = "x-vw-key-id";
pub const TIMESTAMP: &str = "x-vw-timestamp";
pub const NONCE: &str = "x-vw-nonce";
pub const SIGNATURE: &str = "x-vw-signature";

/// How far a timestamp may be from the receiver's clock, in seconds.
pub const WINDOW_SECS: i64 = 300;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Headers {
    pub key_id: String,
    pub timestamp: i64,
    pub nonce: String,
    pub signature: String,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn mac(secret: &[u8], ts: i64, nonce: &str, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let text = format!(
        "{ts}\n{nonce}\n{}\n{path}\n{}",
        method.to_ascii_uppercase(),
        hex(&openssl::sha::sha256(body))
    );
    let compute = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let key = PKey::hmac(secret)?;
        let mut s = Signer::new(openssl::hash::MessageDigest::sha256(), &key)?;
        s.update(text.as_bytes())?;
        s.sign_to_vec()
    };
    compute().unwrap_or_default()
}

/// Headers for a request (or callback) sent at `now` (Unix seconds).
pub fn make(
    key_id: &str,
    secret: &[u8],
    method: &str,
    path: &str,
    body: &[u8],
    now: i64,
) -> Headers {
    let mut nonce = [0u8; 16];
    let _ = openssl::rand::rand_bytes(&mut nonce);
    let nonce = hex(&nonce);
    Headers {
        key_id: key_id.to_owned(),
        timestamp: now,
        signature: hex(&mac(secret, now, &nonce, method, path, body)),
        nonce,
    }
}

impl Headers {
    /// Reads the four headers through `get` (case-insensitive names).
    pub fn read(get: impl Fn(&str) -> Option<String>) -> Result<Headers, CallbackError> {
        let key_id = get(KEY_ID).ok_or(CallbackError::MissingHeaders)?;
        let timestamp = get(TIMESTAMP)
            .and_then(|t| t.trim().parse().ok())
            .ok_or(CallbackError::MissingHeaders)?;
        let nonce = get(NONCE)
            .filter(|n| {
                (16..=128).contains(&n.len())
                    && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
            .ok_or(CallbackError::MissingHeaders)?;
        let signature = get(SIGNATURE)
            .filter(|s| s.len() == 64)
            .ok_or(CallbackError::MissingHeaders)?;
        Ok(Headers {
            key_id,
            timestamp,
            nonce,
            signature,
        })
    }

    pub fn pairs(&self) -> [(&'static str, String); 4] {
        [
            (KEY_ID, self.key_id.clone()),
            (TIMESTAMP, self.timestamp.to_string()),
            (NONCE, self.nonce.clone()),
            (SIGNATURE, self.signature.clone()),
        ]
    }

    /// Checks key id, signature and freshness; the nonce's novelty is the caller's to check.
    #[allow(clippy::too_many_arguments)]
    pub fn check(
        &self,
        key_id: &str,
        secret: &[u8],
        method: &str,
        path: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), CallbackError> {
        if self.key_id != key_id {
            return Err(CallbackError::UnknownKey);
        }
        let expected = hex(&mac(
            secret,
            self.timestamp,
            &self.nonce,
            method,
            path,
            body,
        ));
        let given = self.signature.to_ascii_lowercase();
        if expected.is_empty()
            || expected.len() != given.len()
            || !openssl::memcmp::eq(expected.as_bytes(), given.as_bytes())
        {
            return Err(CallbackError::BadSignature);
        }
        if (now - self.timestamp).abs() > WINDOW_SECS {
            return Err(CallbackError::Stale);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_headers_check_and_tampering_fails() {
        let h = make("k1", b"secret", "POST", "/cb", b"{}", 1000);
        let ok = |k: &str, s: &[u8], p: &str, b: &[u8], now: i64| h.check(k, s, "POST", p, b, now);
        assert!(ok("k1", b"secret", "/cb", b"{}", 1000).is_ok());
        assert_eq!(
            ok("k1", b"secret", "/cb", b"{ }", 1000),
            Err(CallbackError::BadSignature)
        );
        assert_eq!(
            ok("k1", b"other", "/cb", b"{}", 1000),
            Err(CallbackError::BadSignature)
        );
        assert_eq!(
            ok("k2", b"secret", "/cb", b"{}", 1000),
            Err(CallbackError::UnknownKey)
        );
        assert_eq!(
            ok("k1", b"secret", "/cb", b"{}", 1301),
            Err(CallbackError::Stale)
        );
        assert_eq!(
            ok("k1", b"secret", "/x", b"{}", 1000),
            Err(CallbackError::BadSignature)
        );
    }
}
