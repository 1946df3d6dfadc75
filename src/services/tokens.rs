//! Access and refresh tokens. Access tokens are short-lived ES256 JWTs carrying the caller's role;
//! every configured key verifies (by `kid`), one signs, so keys rotate without logging anyone out.
//! The algorithm is pinned: a token whose header names anything but ES256 is refused before any
//! key is touched. Refresh tokens are opaque random strings stored only as their SHA-256.

use crate::config::{Config, DEV_KEY_PREFIX, JwtKeyConfig};
use crate::domain::{Duty, Role};
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use time::OffsetDateTime;

const ALG: Algorithm = Algorithm::ES256;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub role: Role,
    #[serde(default)]
    pub duties: Vec<Duty>,
    #[serde(default)]
    pub org: Option<String>,
    /// Always `access`: a refresh token or any other JWT is never accepted as an access token.
    pub typ: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Expired,
    Invalid,
}

pub struct Keyring {
    signing_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    validation: Validation,
    issuer: String,
    audience: String,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    /// Tokens verified already, by their SHA-256, until they expire: an ECDSA verification costs
    /// more than the rest of a small request, and a client sends the same token many times.
    verified: std::sync::Mutex<HashMap<[u8; 32], AccessClaims>>,
}

/// Most verified tokens kept (a token's claims are a few hundred bytes).
const VERIFIED_MAX: usize = 50_000;

impl Keyring {
    /// Loads the configured keys, or in development (no keys configured) the key generated under
    /// the data directory on first start.
    pub fn load(cfg: &Config) -> anyhow::Result<Keyring> {
        let keys = if cfg.auth.jwt_keys.is_empty() {
            vec![dev_key(&cfg.keys_dir())?]
        } else {
            cfg.auth.jwt_keys.clone()
        };
        let mut verifying = HashMap::new();
        let mut signing = None;
        for k in &keys {
            let pem = std::fs::read(&k.private_key_file).with_context(|| {
                format!(
                    "reading JWT key `{}` from {}",
                    k.kid,
                    k.private_key_file.display()
                )
            })?;
            let pkey = PKey::private_key_from_pem(&pem)
                .with_context(|| format!("JWT key `{}` is not a PEM private key", k.kid))?;
            let ec = pkey
                .ec_key()
                .with_context(|| format!("JWT key `{}` is not an EC key", k.kid))?;
            if ec.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
                bail!("JWT key `{}` must be on curve P-256 (ES256)", k.kid);
            }
            let pkcs8 = pkey.private_key_to_pem_pkcs8()?;
            let public = pkey.public_key_to_pem()?;
            verifying.insert(k.kid.clone(), DecodingKey::from_ec_pem(&public)?);
            if k.active && signing.is_none() {
                signing = Some((k.kid.clone(), EncodingKey::from_ec_pem(&pkcs8)?));
            }
        }
        let (signing_kid, signing) = signing.context("no active JWT key")?;
        let mut validation = Validation::new(ALG);
        validation.algorithms = vec![ALG];
        validation.set_issuer(&[&cfg.auth.issuer]);
        validation.set_audience(&[&cfg.auth.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Ok(Keyring {
            signing_kid,
            signing,
            verifying,
            validation,
            issuer: cfg.auth.issuer.clone(),
            audience: cfg.auth.audience.clone(),
            access_ttl_secs: cfg.auth.access_ttl_secs,
            refresh_ttl_secs: cfg.auth.refresh_ttl_secs,
            verified: Default::default(),
        })
    }

    pub fn signing_kid(&self) -> &str {
        &self.signing_kid
    }

    pub fn issue_access(
        &self,
        user_id: &str,
        role: Role,
        duties: Vec<Duty>,
        org: Option<String>,
        now: OffsetDateTime,
    ) -> anyhow::Result<(String, AccessClaims)> {
        let iat = now.unix_timestamp();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_owned(),
            iat,
            exp: iat + self.access_ttl_secs as i64,
            jti: uuid::Uuid::new_v4().to_string(),
            role,
            duties,
            org,
            typ: "access".into(),
        };
        let mut header = Header::new(ALG);
        header.kid = Some(self.signing_kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.signing)?;
        Ok((token, claims))
    }

    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let digest = openssl::sha::sha256(token.as_bytes());
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Ok(mut seen) = self.verified.lock()
            && let Some(claims) = seen.get(&digest)
        {
            if claims.exp > now {
                return Ok(claims.clone());
            }
            // Expired since: verified again below (with the validation's leeway).
            seen.remove(&digest);
        }
        let claims = self.verify_signed(token)?;
        if let Ok(mut seen) = self.verified.lock() {
            if seen.len() >= VERIFIED_MAX {
                seen.retain(|_, c| c.exp > now);
                if seen.len() >= VERIFIED_MAX {
                    seen.clear();
                }
            }
            seen.insert(digest, claims.clone());
        }
        Ok(claims)
    }

    fn verify_signed(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != ALG {
            return Err(TokenError::Invalid);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.verifying.get(kid))
            .ok_or(TokenError::Invalid)?;
        let data = jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            },
        )?;
        if data.claims.typ != "access" {
            return Err(TokenError::Invalid);
        }
        Ok(data.claims)
    }
}

/// A fresh refresh token and the hash that is stored in its place.
pub fn new_refresh_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    openssl::rand::rand_bytes(&mut bytes).expect("the OS random source works");
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = refresh_hash(&token);
    (token, hash)
}

pub fn refresh_hash(token: &str) -> String {
    crate::audit::hex(&openssl::sha::sha256(token.as_bytes()))
}

/// Creates (once) and returns the development signing key under `dir`.
fn dev_key(dir: &Path) -> anyhow::Result<JwtKeyConfig> {
    let path = dir.join("dev-jwt-es256.pem");
    if !path.exists() {
        std::fs::create_dir_all(dir)?;
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
        write_private(&path, &key.private_key_to_pem_pkcs8()?)?;
        tracing::info!(path = %path.display(), "generated a development token signing key");
    }
    let pem = std::fs::read(&path)?;
    let public = PKey::private_key_from_pem(&pem)?.public_key_to_der()?;
    let fp = crate::audit::hex(&openssl::sha::sha256(&public));
    Ok(JwtKeyConfig {
        kid: format!("{DEV_KEY_PREFIX}{}", &fp[..16]),
        private_key_file: path,
        active: true,
    })
}

/// Writes a private key readable by the owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(bytes)
    }
    #[cfg(not(unix))]
    {
        let mut f = std::fs::File::create_new(path)?;
        f.write_all(bytes)
    }
}
