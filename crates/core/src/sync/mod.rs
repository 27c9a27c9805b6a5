//! The pure sync planner of `cubby sync`: three trees in, a list of operations out.
//!
//! `tree` holds the Remote, Local and Synced trees (nodes keyed by a stable id, so a rename is
//! a move); `plan` is the planner, a deterministic function of the three trees.
//! The engine that observes the disk and the server, applies the ops and persists the trees
//! lives in the `sync` crate; nothing here does I/O, reads a clock or draws randomness.

pub mod plan;
pub mod tree;

#[cfg(any(test, feature = "model"))]
pub mod model;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
