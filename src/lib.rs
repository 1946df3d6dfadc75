//! Virtual Window (虚拟窗口): the online window of a real-estate registration centre, from the
//! pre-sale contract signed on a phone to the electronic registration certificate.
//!
//! Rooms (see docs/architecture.md): `domain` (pure types), `store` (the storage trait with SQLite
//! and PostgreSQL), `audit` (the hash-chained log), `services` (the workflow), `http` (axum),
//! `cli` (commands), `server` (start-up and shutdown).

pub mod audit;
pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod identity;
pub mod pdf;
pub mod pki;
pub mod server;
pub mod services;
pub mod store;

pub use http::{AppState, app};
