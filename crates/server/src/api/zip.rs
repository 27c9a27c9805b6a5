//! files/download_zip: a folder streamed as a ZIP archive, never built in memory or on disk.
//!
//! Entries are stored (no compression: most content is already compressed, and storing keeps
//! the CPU for hashing). Each file is written as a local header, its bytes (CRC-32 computed
//! as they pass) and a data descriptor; the central directory follows. ZIP64 records are used
//! only when offsets pass 4 GiB. The bytes of the format are `cubby_core::zip`'s; this module
//! reads the entries and sends. A task feeds a two-slot channel, so memory stays at a few
//! blocks however large the folder.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cubby_core::api::errors::{DownloadZipError, LookupError};
use cubby_core::api::types::{DownloadZipResult, PathArg};
use cubby_core::path::Pattern;
use cubby_core::zip;
use cubby_store::{Entry, Kind};

use crate::api::files::folder_metadata;
use crate::api::transfer::block_pieces;
use crate::api::{Ctx, Fail, Resolved};

/// Limits of one archive, as Dropbox states them.
const MAX_ENTRIES: usize = 10_000;
const MAX_TOTAL: u64 = 20 * 1_000_000_000;
const MAX_FILE: u64 = 4 * 1_000_000_000;

/// Listing page size while collecting the entries.
const PAGE: u32 = 1_000;

/// `files/download_zip`: the folder's metadata (for `Dropbox-API-Result`) and the response
/// streaming the archive.
pub(crate) async fn download_zip(
    ctx: &Ctx,
    a: PathArg,
) -> Result<(DownloadZipResult, Response), Fail<DownloadZipError>> {
    let path_err = |l: LookupError| Fail::Route(DownloadZipError::Path { path: l });
    let store = ctx.store().clone();
    let folder = match ctx.resolve("path", &a.path, Pattern::ReadPath).await? {
        Resolved::Path { ns, lower, .. } => store.entry(ns, &lower).await?,
        Resolved::Revision(_) => return Err(path_err(LookupError::NotFolder)),
        Resolved::Malformed => return Err(path_err(LookupError::MalformedPath)),
        Resolved::NotFolder => return Err(path_err(LookupError::NotFolder)),
        Resolved::NotFound => None,
    };
    let folder = match folder {
        Some(e) if e.kind == Kind::Folder => e,
        Some(e) if e.kind == Kind::File => return Err(path_err(LookupError::NotFolder)),
        _ => return Err(path_err(LookupError::NotFound)),
    };
    // Collect the entries (bounded by MAX_ENTRIES) and check the limits before any byte goes out.
    let mut entries = Vec::new();
    let mut total = 0u64;
    let ns = ctx.ns_of(&folder);
    let mounts = if ns == ctx.home_ns() {
        ctx.mounts().await?
    } else {
        &[]
    };
    match collect(&store, ns, folder.clone(), mounts, &mut entries, &mut total).await {
        Ok(()) => {}
        Err(Collect::Limit(e)) => return Err(Fail::Route(e)),
        Err(Collect::Store(e)) => return Err(e.into()),
    }
    let result = DownloadZipResult {
        metadata: folder_metadata(ctx, &folder)?,
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    let body = stream(store, entries, folder.path_display);
    Ok((result, (StatusCode::OK, headers, body).into_response()))
}

/// The web app's download of a selection as one ZIP (`POST /zip`, see `web::app`): `paths`
/// name items of one folder of namespace `ns`; the archive holds each of them (a folder with
/// all it holds) under its own name, and is named after the folder. The same limits as
/// `download_zip`. A refusal is a status and a sentence for a person.
pub(crate) async fn selection(
    store: &cubby_store::Store,
    account: &cubby_store::accounts::Account,
    paths: &[&str],
) -> Result<Response, (StatusCode, String)> {
    let refuse = |status, message: &str| (status, message.to_owned());
    let internal = |e: cubby_store::StoreError| {
        tracing::error!(cause = %e, "a selection's ZIP failed");
        refuse(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error.")
    };
    if paths.is_empty() {
        return Err(refuse(StatusCode::BAD_REQUEST, "Nothing was selected."));
    }
    let too_large = "The selection is too large for one ZIP file (at most 10,000 items and \
                     20 GB, files under 4 GB each). Download its folders one by one.";
    if paths.len() > MAX_ENTRIES {
        return Err(refuse(StatusCode::PAYLOAD_TOO_LARGE, too_large));
    }
    let mut keys: Vec<String> = Vec::with_capacity(paths.len());
    for p in paths {
        if cubby_core::path::RelPath::parse(p).map_or(true, |r| r.is_root()) {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "The selection names no item.",
            ));
        }
        keys.push(cubby_core::path::lower(p));
    }
    // Items in a shared folder mounted in the home are read from its namespace.
    let mounts = crate::api::mounts_of(store, account.id)
        .await
        .map_err(internal)?;
    let mut ns = account.ns;
    if let Some((m, ..)) = crate::api::below_a_mount(&mounts, &keys[0]) {
        ns = m.ns;
        let cut = m.lower.len();
        for k in &mut keys {
            if !cubby_store::folders::below_mount(k, &m.lower) {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "The selected items must be in one folder.",
                ));
            }
            *k = k[cut..].to_owned();
        }
    }
    let home_mounts: &[crate::api::Mount] = if ns == account.ns { &mounts } else { &[] };
    keys.sort();
    keys.dedup();
    let parent = cubby_core::path::parent_of(&keys[0]).to_owned();
    if keys
        .iter()
        .any(|k| cubby_core::path::parent_of(k) != parent)
    {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "The selected items must be in one folder.",
        ));
    }
    let mut entries = Vec::new();
    let mut total = 0u64;
    for key in &keys {
        let root = match store.entry(ns, key).await.map_err(internal)? {
            Some(e) if e.kind != Kind::Deleted => e,
            _ => {
                return Err(refuse(
                    StatusCode::NOT_FOUND,
                    "An item of the selection is no longer there. Reload the folder and select again.",
                ));
            }
        };
        match collect(store, ns, root, home_mounts, &mut entries, &mut total).await {
            Ok(()) => {}
            Err(Collect::Limit(_)) => return Err(refuse(StatusCode::PAYLOAD_TOO_LARGE, too_large)),
            Err(Collect::Store(e)) => return Err(internal(e)),
        }
    }
    let name = match parent.as_str() {
        "" => "Cubby".to_owned(),
        p => match store.entry(ns, p).await.map_err(internal)? {
            Some(e) => e.name().to_owned(),
            None => "Cubby".to_owned(),
        },
    };
    // Every root is in `parent`, so any one of them names the others' entries right.
    let naming = entries[0].path_display.clone();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!(
            "attachment; filename=\"{}.zip\"; filename*=UTF-8''{}.zip",
            ascii_fallback(&name),
            crate::api::percent_encode(&name)
        ))
        .expect("ASCII"),
    );
    crate::web::untrusted_bytes(&mut headers);
    Ok((
        StatusCode::OK,
        headers,
        stream(store.clone(), entries, naming),
    )
        .into_response())
}

/// `name` for the plain `filename` of a `Content-Disposition`: printable ASCII but quotes and
/// backslashes, everything else `_`.
fn ascii_fallback(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect()
}

/// Why entries could not be collected.
enum Collect {
    /// One of Dropbox's limits of an archive, as `download_zip`'s error.
    Limit(DownloadZipError),
    Store(cubby_store::StoreError),
}

impl From<cubby_store::StoreError> for Collect {
    fn from(e: cubby_store::StoreError) -> Self {
        Collect::Store(e)
    }
}

/// Appends `root` and, for a folder, everything below it to `entries` (with `total`, the
/// files' bytes so far), refusing past the archive's limits before any byte is sent.
/// A folder of a home takes along the shared folders mounted in it (`mounts`: the home's).
async fn collect(
    store: &cubby_store::Store,
    ns: u64,
    root: Entry,
    mounts: &[crate::api::Mount],
    entries: &mut Vec<Entry>,
    total: &mut u64,
) -> Result<(), Collect> {
    let mut add = |e: Entry, entries: &mut Vec<Entry>| {
        if e.kind == Kind::File {
            if e.size >= MAX_FILE {
                return Err(Collect::Limit(DownloadZipError::TooLarge));
            }
            *total += e.size;
            if *total > MAX_TOTAL {
                return Err(Collect::Limit(DownloadZipError::TooLarge));
            }
        }
        entries.push(e);
        if entries.len() >= MAX_ENTRIES {
            return Err(Collect::Limit(DownloadZipError::TooManyFiles));
        }
        Ok(())
    };
    let folder = (root.kind == Kind::Folder).then(|| root.path_lower.clone());
    add(root, entries)?;
    let Some(folder) = folder else {
        return Ok(());
    };
    let inside: Vec<&crate::api::Mount> = mounts
        .iter()
        .filter(|m| cubby_core::path::is_within(&m.lower, &folder))
        .collect();
    // The folder's own namespace, then each shared folder mounted in it, under its mount.
    let mut sources = vec![(ns, folder, None)];
    sources.extend(inside.into_iter().map(|m| (m.ns, String::new(), Some(m))));
    for (ns, folder, mount) in sources {
        let mut after = String::new();
        loop {
            let page = store.list(ns, &folder, true, false, &after, PAGE).await?;
            let done = page.len() < PAGE as usize;
            for mut e in page {
                after = e.path_lower.clone();
                if let Some(m) = mount {
                    (e.path_lower, e.path_display) = m.home_path(&e.path_lower, &e.path_display);
                }
                add(e, entries)?;
            }
            if done {
                break;
            }
        }
    }
    Ok(())
}

/// The streamed body of the archive of `entries`, named relative to `naming`'s folder.
fn stream(store: cubby_store::Store, entries: Vec<Entry>, naming: String) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tokio::spawn(async move {
        if let Err(e) = write_zip(&store, &entries, &naming, &tx).await {
            let _ = tx.send(Err(std::io::Error::other(e))).await;
        }
    });
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

type Sink = tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>;

async fn send(tx: &Sink, b: impl Into<Bytes>) -> Result<(), String> {
    tx.send(Ok(b.into()))
        .await
        .map_err(|_| "client went away".to_owned())
}

/// The archive of `entries` (each folder before what it holds), its bytes laid out by
/// `cubby_core::zip`; names start at `naming` and its siblings (`zip::entry_name`).
async fn write_zip(
    store: &cubby_store::Store,
    entries: &[Entry],
    naming: &str,
    tx: &Sink,
) -> Result<(), String> {
    let mut zip = zip::Writer::new();
    for e in entries {
        let name = zip::portable_name(zip::entry_name(&e.path_display, naming));
        if e.kind == Kind::Folder {
            send(tx, zip.folder(&name).map_err(|e| e.to_string())?).await?;
            continue;
        }
        send(
            tx,
            zip.file(&name, e.client_modified)
                .map_err(|e| e.to_string())?,
        )
        .await?;
        let mut crc = zip::Crc32::new();
        let mut size = 0u64;
        let revision = e.revision.ok_or("file without revision")?;
        let blocks = store
            .revision_blocks(revision)
            .await
            .map_err(|e| e.to_string())?;
        for (hash, off, len) in block_pieces(&blocks, 0, e.size) {
            let data = store
                .read_block(hash, off, len)
                .await
                .map_err(|e| e.to_string())?;
            crc.update(&data);
            size += data.len() as u64;
            send(tx, data).await?;
        }
        send(
            tx,
            zip.end_file(crc.finish(), size)
                .map_err(|e| e.to_string())?,
        )
        .await?;
    }
    for piece in zip.finish() {
        send(tx, piece).await?;
    }
    Ok(())
}
