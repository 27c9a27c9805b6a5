//! The client's engines over the API and the local file system.
//!
//! Brief overview:
//! - [`backup`]: `cubby backup`, an incremental backup that never overwrites blindly, with
//!   its SQLite [`index`] of what was backed up and of the server's view.
//! - [`restore`]: `--verify`, and `cubby restore-backup` (optionally to a point in time).
//! - [`ignore`]: gitignore-style exclusion patterns.
//! - [`own`]: where the client keeps its own files, which are never backed up or synced.
//! - [`engine`]: `cubby sync`, the two-way sync engine (observe, plan, apply) around
//!   `cubby_core::sync`'s planner.
//! - [`follow`]: `cubby sync`'s continuous mode (watcher, longpoll, rescans, backoff, the
//!   mass-deletion question) over the engine's seams.

pub mod backup;
#[cfg(test)]
mod backup_sim;
pub mod engine;
pub mod follow;
pub mod ignore;
pub mod index;
pub mod own;
pub mod restore;
