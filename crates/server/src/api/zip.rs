//! files/download_zip: a folder streamed as a ZIP archive, never built in memory or on disk.
//!
//! Entries are stored (no compression: most content is already compressed, and storing keeps
//! the CPU for hashing). Each file is written as a local header, its bytes (CRC-32 computed
//! as they pass) and a data descriptor; the central directory follows. ZIP64 records are used
//! only when offsets pass 4 GiB. A task feeds a two-slot channel, so memory stays at a few
//! blocks however large the folder.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use cubby_core::api::errors::{DownloadZipError, LookupError};
use cubby_core::api::types::{DownloadZipResult, PathArg};
use cubby_core::path::Pattern;
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
        Resolved::Path { lower, .. } => store.entry(ctx.ns(), &lower).await?,
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
    let mut entries = vec![folder.clone()];
    let mut after = String::new();
    let mut total = 0u64;
    loop {
        let page = store
            .list(ctx.ns(), &folder.path_lower, true, false, &after, PAGE)
            .await?;
        let done = page.len() < PAGE as usize;
        for e in page {
            after = e.path_lower.clone();
            if e.kind == Kind::File {
                if e.size >= MAX_FILE {
                    return Err(Fail::Route(DownloadZipError::TooLarge));
                }
                total += e.size;
            }
            entries.push(e);
            if entries.len() >= MAX_ENTRIES {
                return Err(Fail::Route(DownloadZipError::TooManyFiles));
            }
        }
        if done {
            break;
        }
    }
    if total > MAX_TOTAL {
        return Err(Fail::Route(DownloadZipError::TooLarge));
    }
    // Names inside the archive start at the folder itself.
    let base_chars = cubby_core::path::parent_of(&folder.path_display)
        .chars()
        .count()
        + 1;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tokio::spawn(async move {
        if let Err(e) = write_zip(&store, &entries, base_chars, &tx).await {
            let _ = tx.send(Err(std::io::Error::other(e))).await;
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let result = DownloadZipResult {
        metadata: folder_metadata(ctx, &folder)?,
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    let resp = (StatusCode::OK, headers, Body::from_stream(stream)).into_response();
    Ok((result, resp))
}

struct Written {
    name: Vec<u8>,
    crc: u32,
    size: u64,
    offset: u64,
    dir: bool,
    time: u16,
    date: u16,
}

type Sink = tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>;

async fn send(tx: &Sink, b: Bytes) -> Result<(), String> {
    tx.send(Ok(b))
        .await
        .map_err(|_| "client went away".to_owned())
}

async fn write_zip(
    store: &cubby_store::Store,
    entries: &[Entry],
    base_chars: usize,
    tx: &Sink,
) -> Result<(), String> {
    let mut offset = 0u64;
    let mut written = Vec::with_capacity(entries.len());
    for e in entries {
        let dir = e.kind == Kind::Folder;
        let mut name: String = e.path_display.chars().skip(base_chars).collect();
        if dir {
            name.push('/');
        }
        let (time, date) = dos_datetime(if dir { 0 } else { e.client_modified });
        let name = name.into_bytes();
        let mut h = BytesMut::with_capacity(30 + name.len());
        h.put_u32_le(0x0403_4b50);
        h.put_u16_le(20);
        h.put_u16_le(0x0808); // data descriptor follows; names are UTF-8
        h.put_u16_le(0); // stored
        h.put_u16_le(time);
        h.put_u16_le(date);
        h.put_u32_le(0);
        h.put_u32_le(0);
        h.put_u32_le(0);
        h.put_u16_le(name.len() as u16);
        h.put_u16_le(0);
        h.put_slice(&name);
        let header_len = h.len() as u64;
        send(tx, h.freeze()).await?;
        let mut crc = Crc32::new();
        let mut size = 0u64;
        if !dir {
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
        }
        let crc = crc.finish();
        let mut d = BytesMut::with_capacity(16);
        d.put_u32_le(0x0807_4b50);
        d.put_u32_le(crc);
        d.put_u32_le(size as u32);
        d.put_u32_le(size as u32);
        send(tx, d.freeze()).await?;
        written.push(Written {
            name,
            crc,
            size,
            offset,
            dir,
            time,
            date,
        });
        offset += header_len + size + 16;
    }
    // The central directory.
    let cd_start = offset;
    let mut cd = BytesMut::new();
    for w in &written {
        let zip64 = w.offset >= 0xFFFF_FFFF;
        cd.put_u32_le(0x0201_4b50);
        cd.put_u16_le(0x031e); // made by: Unix, 3.0
        cd.put_u16_le(if zip64 { 45 } else { 20 });
        cd.put_u16_le(0x0808);
        cd.put_u16_le(0);
        cd.put_u16_le(w.time);
        cd.put_u16_le(w.date);
        cd.put_u32_le(w.crc);
        cd.put_u32_le(w.size as u32);
        cd.put_u32_le(w.size as u32);
        cd.put_u16_le(w.name.len() as u16);
        cd.put_u16_le(if zip64 { 12 } else { 0 });
        cd.put_u16_le(0);
        cd.put_u16_le(0);
        cd.put_u16_le(0);
        cd.put_u32_le(if w.dir {
            0o40755 << 16 | 0x10
        } else {
            0o100644 << 16
        });
        cd.put_u32_le(if zip64 { 0xFFFF_FFFF } else { w.offset as u32 });
        cd.put_slice(&w.name);
        if zip64 {
            cd.put_u16_le(0x0001);
            cd.put_u16_le(8);
            cd.put_u64_le(w.offset);
        }
        if cd.len() >= 1 << 20 {
            offset += cd.len() as u64;
            send(tx, cd.split().freeze()).await?;
        }
    }
    offset += cd.len() as u64;
    let cd_size = offset - cd_start;
    let n = written.len() as u64;
    let zip64 = cd_start >= 0xFFFF_FFFF || cd_size >= 0xFFFF_FFFF || n >= 0xFFFF;
    if zip64 {
        let eocd64 = offset;
        cd.put_u32_le(0x0606_4b50);
        cd.put_u64_le(44);
        cd.put_u16_le(0x031e);
        cd.put_u16_le(45);
        cd.put_u32_le(0);
        cd.put_u32_le(0);
        cd.put_u64_le(n);
        cd.put_u64_le(n);
        cd.put_u64_le(cd_size);
        cd.put_u64_le(cd_start);
        cd.put_u32_le(0x0706_4b50);
        cd.put_u32_le(0);
        cd.put_u64_le(eocd64);
        cd.put_u32_le(1);
    }
    cd.put_u32_le(0x0605_4b50);
    cd.put_u16_le(0);
    cd.put_u16_le(0);
    cd.put_u16_le(n.min(0xFFFF) as u16);
    cd.put_u16_le(n.min(0xFFFF) as u16);
    cd.put_u32_le(cd_size.min(0xFFFF_FFFF) as u32);
    cd.put_u32_le(cd_start.min(0xFFFF_FFFF) as u32);
    cd.put_u16_le(0);
    send(tx, cd.freeze()).await
}

/// MS-DOS time and date of a Unix time (UTC), as ZIP headers hold them.
fn dos_datetime(secs: i64) -> (u16, u16) {
    let t = cubby_core::time::format(secs.max(315_532_800)); // DOS dates start in 1980
    let n = |r: std::ops::Range<usize>| t[r].parse::<u16>().unwrap_or(0);
    let (y, mo, d, h, mi, s) = (n(0..4), n(5..7), n(8..10), n(11..13), n(14..16), n(17..19));
    (
        (h << 11) | (mi << 5) | (s / 2),
        ((y - 1980) << 9) | (mo << 5) | d,
    )
}

/// CRC-32 (IEEE), table-driven.
struct Crc32(u32);

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

impl Crc32 {
    fn new() -> Self {
        Crc32(0xFFFF_FFFF)
    }

    fn update(&mut self, data: &[u8]) {
        let mut c = self.0;
        for b in data {
            c = CRC_TABLE[((c ^ *b as u32) & 0xFF) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }

    fn finish(&self) -> u32 {
        self.0 ^ 0xFFFF_FFFF
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_known_value() {
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.finish(), 0xCBF4_3926);
    }

    #[test]
    fn dos_time() {
        // 2015-05-12T15:50:38Z
        let (t, d) = dos_datetime(1_431_445_838);
        assert_eq!((t >> 11, (t >> 5) & 63, (t & 31) * 2), (15, 50, 38));
        assert_eq!(((d >> 9) + 1980, (d >> 5) & 15, d & 31), (2015, 5, 12));
    }
}
