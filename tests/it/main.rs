//! The one integration test binary (one link on a 2-core machine). Storage tests run on SQLite
//! and on PostgreSQL (`VW_TEST_POSTGRES_URL`, set by scripts/test); their names say which.

mod helpers;

mod api_auth;
mod api_errors;
mod contracts;
mod identity;
mod inventory;
mod lifecycle;
mod lists;
mod matrix;
mod modifications;
mod notifications;
mod ofd;
mod openapi;
mod opening;
mod pages;
mod pdf;
mod phone;
mod pki;
mod process;
mod store;
mod verify;
mod web;
