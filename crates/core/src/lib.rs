//! Pure domain logic of Cubby: everything that can be computed without I/O.
//!
//! The wire contract of the Dropbox API (every route and its types, [`api`]), paths and case folding, the Dropbox `content_hash`, revs and ids, timestamps,
//! signed cursors, conflict naming, the Dropbox wire helpers (error summaries,
//! header-safe JSON) and the sync planner. Nothing here touches the network, the disk or a clock:
//! callers pass the current time in.

pub mod api;
pub mod cursor;
pub mod exif;
pub mod hash;
pub mod ids;
pub mod naming;
pub mod path;
pub mod sync;
pub mod time;
pub mod wire;
pub mod zip;
