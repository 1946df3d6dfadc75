//! Virtual Window (虚拟窗口): the online window of a real-estate registration centre, from the
//! pre-sale contract signed on a phone to the electronic registration certificate.
//!
//! Rooms (see docs/architecture.md): `domain` (pure types), `store` (the storage trait with SQLite
//! and PostgreSQL), `audit` (the hash-chained log), `pki` and `pdf` (libraries: keys,
//! certificates, signed PDFs), `ofd` (the OFD certificate and its 国密 seal), `services` (the
//! workflow), `http` (the JSON API), `web` (the pages), `cli` (commands), `server` (start-up and
//! shutdown).

pub mod audit;
pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod identity;
pub mod ofd;
pub mod pdf;
pub mod pki;
pub mod server;
pub mod services;
pub mod store;
pub mod web;

pub use http::AppState;

/// The whole application: the JSON API and the pages, behind the same middleware.
pub fn app(state: AppState) -> axum::Router {
    http::app_with(state, web::router(), Some(web::not_found_page))
}
