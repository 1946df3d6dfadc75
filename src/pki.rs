//! The PKI room: a certificate authority hierarchy for the service (root → issuing CAs for
//! people, organisations and timestamping), certificate profiles kept as data in `certs/`, key
//! custody behind one `SigningKey` trait, CRLs, and RFC 5280 path validation with a reason for
//! every failure. A library: no axum, no sqlx; the services persist what it produces.

pub mod ca;
pub mod cache;
pub mod cms;
pub mod der;
pub mod gm;
pub mod gm_tsa;
pub mod keys;
pub mod names;
pub mod pkcs11;
pub mod profile;
pub mod ses;
pub mod signed;
pub mod sm2;
pub mod tsa;
pub mod validate;

pub use ca::{Authority, Hierarchy, IssuedCertificate, Subject};
pub use keys::{KeyAlgorithm, SigningKey, SoftwareKey};
pub use profile::{Profile, Profiles};
pub use validate::{Purpose, Validation, ValidationFailure};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    #[error("cryptographic operation failed: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
    #[error("certificate could not be built: {0}")]
    Build(String),
    #[error("key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("profile `{0}` is not defined in certs/profiles.toml")]
    UnknownProfile(String),
    #[error("invalid profile data: {0}")]
    Profile(String),
    #[error("invalid subject: {0}")]
    Subject(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl From<rcgen::Error> for PkiError {
    fn from(e: rcgen::Error) -> Self {
        PkiError::Build(e.to_string())
    }
}

pub type PkiResult<T> = Result<T, PkiError>;
