//! Pure domain types of Virtual Window: roles, duties, exact quantities and the life cycles (as
//! tables) that every other room builds on. Nothing here touches storage, HTTP or the clock.

pub mod contract;
pub mod identity;
pub mod lifecycle;
pub mod measure;
pub mod roles;

pub use measure::{Area, Money};
pub use roles::{Duty, Role};
