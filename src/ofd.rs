//! The OFD room (GB/T 33190): the registration certificate written as an OFD package and sealed
//! with a GB/T 38540 seal signature, and the verifier of sealed OFD packages. Like `pdf`, a
//! library over `pki`: no axum, no sqlx.

pub mod package;
pub mod verify;
pub mod write;

pub use package::{PackageError, is_zip};
