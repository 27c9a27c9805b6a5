//! Dropbox's wire types, shared with the server: they are declared once, in
//! `cubby_core::api`. Unknown fields are ignored and optional ones default, so the same types
//! read Cubby's and Dropbox's answers.

pub use cubby_core::api::errors::*;
pub use cubby_core::api::types::*;

/// The account the client shows (`FullAccount`).
pub type Account = FullAccount;
