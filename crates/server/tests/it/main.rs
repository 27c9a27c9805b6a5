//! Integration tests: a real Cubby server on an ephemeral port, driven over HTTP.
//!
//! One binary; each module covers one area.

/// Shared harness: start a server in a temp dir, create users, call routes.
mod support;

/// The security battery: app folders, isolation, tokens, OAuth codes and consent.
mod auth;
/// Batch routes and their async jobs.
mod batch;
/// Copy references: saving content into another account without its bytes.
mod copyref;
/// WebDAV at /dav/: app passwords, one history with the API, locks across servers.
mod dav;
/// Revisions, restore, permanent deletion and temporary links.
mod history;
/// HTTP/2: many requests in flight on one connection, its limits, large headers.
mod http2;
/// Accounts, isolation, persistence and graceful shutdown.
mod lifecycle;
/// Connection limits: idle and stalled connections, and the cap on connections.
mod limits;
/// Shared links: the sharing routes, listings through links and the public link pages.
mod links;
/// list_folder paging, cursors, change feed and longpoll.
mod listing;
/// get_metadata, path forms, create/delete/move/copy.
mod namespace;
/// Space usage, quotas and stats.
mod quota;
/// save_url and its SSRF guard.
mod save_url;
/// Upload sessions: sequential and concurrent, offsets, restarts, batches.
mod sessions;
/// Shared folders: members, mounts, feeds and access.
mod sharing;
/// Thumbnails and previews: routes, errors, links, the cache, hostile images.
mod thumbnails;
/// Upload and download: write modes, hashes, ranges, limits, races.
mod transfer;
/// The web app's shell, assets and credential.
mod web;
/// Wire conventions: arg passing, auth, error shapes, header escaping.
mod wire;
