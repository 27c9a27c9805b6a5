//! Content-addressed block storage: local disk (embedded) or any S3-compatible store.
//!
//! A block is at most 4 MiB and named by its SHA-256: `blocks/ab/abcdef…` on disk, `ab/abcdef…`
//! in a bucket. Blocks are immutable, so two files (or two accounts) with the same block share
//! one copy; nothing outside the store can learn that (see design.md, "A hash is never a
//! credential"). Because a name always holds the same bytes, writes never need S3's
//! conditional puts.
//!
//! Architecture Invariant: a block is durable once `put` returned and then `sync` covered it
//! (local: the file is fsynced by `put` before its rename, whether written through the page
//! cache or, 1 MiB and more, with `O_DIRECT`, and `sync` fsyncs the directories holding the
//! renamed names, once per directory per request; S3: the PUT returned, `sync` is a no-op).
//! Metadata is written only after that, so it never refers to a block a crash could lose. A
//! block that exists is never rewritten.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use cubby_core::hash::{BlockHash, block_hash, hex};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{ObjectStoreExt, PutPayload};

use crate::StoreError;

/// A block store.
pub enum BlockStore {
    Local(LocalBlocks),
    S3(S3Blocks),
}

impl BlockStore {
    /// Hashes and stores one block; call [`BlockStore::sync`] on the hashes before any
    /// metadata refers to them.
    pub async fn put(&self, data: Bytes) -> Result<BlockHash, StoreError> {
        match self {
            BlockStore::Local(l) => l.put(data).await,
            BlockStore::S3(s) => s.put(data).await,
        }
    }

    /// Makes the names of blocks stored by `put` durable (local: one fsync per directory).
    pub async fn sync(&self, hashes: &[BlockHash]) -> Result<(), StoreError> {
        match self {
            BlockStore::Local(l) => l.sync(hashes).await,
            BlockStore::S3(_) => Ok(()),
        }
    }

    /// Reads `len` bytes of a block from `offset`.
    pub async fn read(
        &self,
        hash: BlockHash,
        offset: u64,
        len: usize,
    ) -> Result<Bytes, StoreError> {
        match self {
            BlockStore::Local(l) => l.read(hash, offset, len).await,
            BlockStore::S3(s) => s.read(hash, offset, len).await,
        }
    }

    /// Reads a whole block.
    pub async fn read_all(&self, hash: BlockHash) -> Result<Bytes, StoreError> {
        match self {
            BlockStore::Local(l) => {
                let path = l.path_of(&hash);
                Ok(Bytes::from(tokio::fs::read(path).await?))
            }
            BlockStore::S3(s) => {
                let got = s.store.get(&s.key(&hash)).await.map_err(|e| match e {
                    object_store::Error::NotFound { .. } => StoreError::Io(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        e.to_string(),
                    )),
                    e => StoreError::Blocks(e.to_string()),
                })?;
                got.bytes()
                    .await
                    .map_err(|e| StoreError::Blocks(e.to_string()))
            }
        }
    }

    /// Every stored block, listed lazily (one directory or one S3 page at a time).
    pub fn list(&self) -> crate::migrate::BlockList<'_> {
        use futures_util::StreamExt;
        self.list_aged().map(|r| r.map(|s| s.hash)).boxed()
    }

    /// Every stored block with the time it was last written (Unix seconds) and its size, one
    /// fan-out directory or one S3 page at a time.
    pub fn list_aged(&self) -> futures_util::stream::BoxStream<'_, Result<Stored, StoreError>> {
        use futures_util::StreamExt;
        match self {
            BlockStore::Local(l) => {
                let root = l.root.clone();
                futures_util::stream::iter(0..256u32)
                    .then(move |i| {
                        let dir = root.join(format!("{i:02x}"));
                        async move {
                            tokio::task::spawn_blocking(move || list_dir_aged(&dir))
                                .await
                                .map_err(|e| StoreError::Invalid(e.to_string()))?
                        }
                    })
                    .flat_map(|r| match r {
                        Ok(v) => {
                            futures_util::stream::iter(v.into_iter().map(Ok).collect::<Vec<_>>())
                        }
                        Err(e) => futures_util::stream::iter(vec![Err(e)]),
                    })
                    .boxed()
            }
            BlockStore::S3(s) => {
                let prefix = (!s.prefix.is_empty())
                    .then(|| object_store::path::Path::from(s.prefix.as_str()));
                object_store::ObjectStore::list(&s.store, prefix.as_ref())
                    .filter_map(|item| async move {
                        match item {
                            Ok(meta) => {
                                let hash = meta
                                    .location
                                    .filename()
                                    .and_then(cubby_core::hash::parse_hash)?;
                                Some(Ok(Stored {
                                    hash,
                                    modified: meta.last_modified.timestamp(),
                                    size: meta.size,
                                }))
                            }
                            Err(e) => Some(Err(StoreError::Blocks(e.to_string()))),
                        }
                    })
                    .boxed()
            }
        }
    }

    /// Deletes a block (no error if it is already gone). Only the GC calls this, for blocks
    /// it has claimed.
    pub async fn delete(&self, hash: &BlockHash) -> Result<(), StoreError> {
        match self {
            BlockStore::Local(l) => {
                let path = l.path_of(hash);
                match tokio::fs::remove_file(path).await {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                    _ => Ok(()),
                }
            }
            BlockStore::S3(s) => match s.store.delete(&s.key(hash)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(StoreError::Blocks(e.to_string())),
            },
        }
    }

    /// How many blocks are stored (a full listing: for tests and fsck, not hot paths).
    pub async fn count(&self) -> Result<usize, StoreError> {
        Ok(self.usage().await?.0)
    }

    /// How many blocks are stored and their bytes: the physical size (a full listing).
    pub async fn usage(&self) -> Result<(usize, u64), StoreError> {
        match self {
            BlockStore::Local(l) => {
                let root = l.root.clone();
                tokio::task::spawn_blocking(move || count_files(&root))
                    .await
                    .map_err(|e| StoreError::Invalid(e.to_string()))?
            }
            BlockStore::S3(s) => {
                use futures_util::StreamExt;
                let prefix = (!s.prefix.is_empty())
                    .then(|| object_store::path::Path::from(s.prefix.as_str()));
                let (mut n, mut bytes) = (0, 0);
                let mut listing = object_store::ObjectStore::list(&s.store, prefix.as_ref());
                while let Some(item) = listing.next().await {
                    bytes += item.map_err(|e| StoreError::Blocks(e.to_string()))?.size;
                    n += 1;
                }
                Ok((n, bytes))
            }
        }
    }

    /// Whether a block is present.
    pub async fn contains(&self, hash: &BlockHash) -> Result<bool, StoreError> {
        match self {
            BlockStore::Local(l) => Ok(l.contains(hash)),
            BlockStore::S3(s) => s.contains(hash).await,
        }
    }
}

/// A stored block as a listing sees it.
#[derive(Clone, Copy, Debug)]
pub struct Stored {
    pub hash: BlockHash,
    /// When it was last written, in Unix seconds.
    pub modified: i64,
    pub size: u64,
}

fn list_dir_aged(dir: &Path) -> Result<Vec<Stored>, StoreError> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(out);
    };
    for e in entries {
        let e = e?;
        let Some(hash) = e
            .file_name()
            .to_str()
            .and_then(cubby_core::hash::parse_hash)
        else {
            continue;
        };
        let meta = match e.metadata() {
            Ok(m) => m,
            // Deleted between the listing and the stat.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err.into()),
        };
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        out.push(Stored {
            hash,
            modified,
            size: meta.len(),
        });
    }
    Ok(out)
}

fn count_files(dir: &Path) -> Result<(usize, u64), StoreError> {
    let (mut n, mut bytes) = (0, 0);
    for e in fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            if e.file_name() != "tmp" {
                let (dn, db) = count_files(&e.path())?;
                n += dn;
                bytes += db;
            }
        } else {
            n += 1;
            bytes += e.metadata()?.len();
        }
    }
    Ok((n, bytes))
}

/// Blocks in an S3 bucket, keyed `[prefix/]ab/abcdef…`.
pub struct S3Blocks {
    store: AmazonS3,
    prefix: String,
}

impl S3Blocks {
    /// Parses `s3://bucket[/prefix][?endpoint=URL&region=R]`. Credentials come from the usual
    /// AWS environment variables. With an endpoint, addressing is path-style, as self-hosted
    /// stores expect.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let invalid = |m: &str| StoreError::Invalid(format!("blocks URL '{url}': {m}"));
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| invalid("expected s3://bucket"))?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        if bucket.is_empty() {
            return Err(invalid("no bucket"));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| invalid("bad query"))?;
            builder = match k {
                "endpoint" => builder
                    .with_endpoint(v)
                    .with_allow_http(v.starts_with("http://"))
                    .with_virtual_hosted_style_request(false),
                "region" => builder.with_region(v),
                other => return Err(invalid(&format!("unknown option '{other}'"))),
            };
        }
        let store = builder.build().map_err(|e| invalid(&e.to_string()))?;
        Ok(Self {
            store,
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }

    fn key(&self, hash: &BlockHash) -> object_store::path::Path {
        let h = hex(hash);
        if self.prefix.is_empty() {
            object_store::path::Path::from(format!("{}/{h}", &h[..2]))
        } else {
            object_store::path::Path::from(format!("{}/{}/{h}", self.prefix, &h[..2]))
        }
    }

    async fn put(&self, data: Bytes) -> Result<BlockHash, StoreError> {
        let to_hash = data.clone();
        let hash = tokio::task::spawn_blocking(move || block_hash(&to_hash))
            .await
            .map_err(|e| StoreError::Invalid(format!("block hasher panicked: {e}")))?;
        self.store
            .put(&self.key(&hash), PutPayload::from(data))
            .await
            .map_err(|e| StoreError::Blocks(e.to_string()))?;
        Ok(hash)
    }

    async fn read(&self, hash: BlockHash, offset: u64, len: usize) -> Result<Bytes, StoreError> {
        self.store
            .get_range(&self.key(&hash), offset..offset + len as u64)
            .await
            .map_err(|e| StoreError::Blocks(e.to_string()))
    }

    async fn contains(&self, hash: &BlockHash) -> Result<bool, StoreError> {
        match self.store.head(&self.key(hash)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(StoreError::Blocks(e.to_string())),
        }
    }
}

/// Writes a new staging file holding `data`, durably: large blocks with `O_DIRECT` while
/// `direct` holds (the file system took it so far), everything else through the page cache
/// and fsync.
fn write_staging(
    direct: &std::sync::atomic::AtomicBool,
    staging: &Path,
    data: &[u8],
) -> std::io::Result<()> {
    use std::sync::atomic::Ordering;
    if data.len() >= DIRECT_MIN && direct.load(Ordering::Relaxed) {
        match write_direct(staging, data) {
            Ok(()) => return Ok(()),
            // The file system does not do O_DIRECT (tmpfs, some FUSE ones).
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                tracing::info!(error = %e, "block store: O_DIRECT refused; writing through the page cache");
                direct.store(false, Ordering::Relaxed);
                let _ = fs::remove_file(staging);
            }
            Err(e) => return Err(e),
        }
    }
    let mut f = File::create(staging)?;
    f.write_all(data)?;
    f.sync_all()
}

/// Blocks on local disk.
pub struct LocalBlocks {
    root: PathBuf,
    /// This process's own staging folder (see [`Staging`]).
    tmp: std::sync::Arc<Staging>,
    /// Whether large blocks are written with `O_DIRECT` (cleared if the file system refuses).
    direct: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Blocks at least this large are written with `O_DIRECT`: straight from the request's
/// buffer to the disk, without the copy into the page cache, which costs more CPU than
/// hashing the block. Smaller ones (a small file, the tail of a large one) are not worth it.
const DIRECT_MIN: usize = 1024 * 1024;

/// The alignment `O_DIRECT` asks of buffer addresses, lengths and file offsets (a page: a
/// multiple of every logical block size Linux file systems use).
pub const DIRECT_ALIGN: usize = 4096;

/// An empty buffer with room for a whole block, whose bytes start at a [`DIRECT_ALIGN`]
/// boundary: a full block received into it is written with `O_DIRECT` without a copy.
pub fn block_buffer() -> bytes::BytesMut {
    let mut b = bytes::BytesMut::with_capacity(cubby_core::hash::BLOCK_SIZE + DIRECT_ALIGN);
    let skip = b.as_ptr().align_offset(DIRECT_ALIGN);
    b.resize(skip, 0);
    let _ = b.split_to(skip);
    b
}

/// Writes `data` to a new file at `path` with `O_DIRECT` and makes it durable. The bytes
/// are written from `data` itself when it is aligned, else from an aligned copy padded to
/// [`DIRECT_ALIGN`] (the file is then cut back to the data's length).
fn write_direct(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
        .open(path)?;
    if data.as_ptr().align_offset(DIRECT_ALIGN) == 0 && data.len().is_multiple_of(DIRECT_ALIGN) {
        f.write_all(data)?;
    } else {
        let padded = data.len().next_multiple_of(DIRECT_ALIGN);
        let mut copy = vec![0u8; padded + DIRECT_ALIGN];
        let skip = copy.as_ptr().align_offset(DIRECT_ALIGN);
        let aligned = &mut copy[skip..skip + padded];
        aligned[..data.len()].copy_from_slice(data);
        f.write_all(aligned)?;
        if padded != data.len() {
            f.set_len(data.len() as u64)?;
        }
    }
    f.sync_all()
}

/// Loose staging files (left directly in `tmp/` by servers before per-process staging) are
/// swept once they are this old: no block write takes a day.
const LOOSE_STAGING_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A process's staging folder, `tmp/<pid>-<random>/`, where blocks are written before their
/// rename into place. Several processes open the same store (a server, `cubby admin`
/// commands, a second server on the same disk), so each stages in a folder of its own and
/// holds an exclusive `flock` on its `lock` file for as long as the store is open. Opening
/// a store sweeps only the folders whose lock nobody holds: their process is gone (the kernel
/// drops a dead process's locks), so what they hold was provably abandoned.
pub(crate) struct Staging {
    dir: PathBuf,
    /// Holds the lock; closed (and so unlocked) on drop.
    _lock: File,
}

impl Staging {
    fn create(tmp: &Path) -> std::io::Result<Self> {
        let dir = tmp.join(format!(
            "{}-{}",
            std::process::id(),
            hex(&crate::random_bytes::<6>())
        ));
        fs::create_dir(&dir)?;
        let lock = File::create(dir.join("lock"))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive)?;
        Ok(Self { dir, _lock: lock })
    }

    /// Removes the staging folders of processes that are gone, and old loose files.
    fn sweep(tmp: &Path, own: &Path) -> std::io::Result<()> {
        for e in fs::read_dir(tmp)? {
            let e = e?;
            let path = e.path();
            if path == own {
                continue;
            }
            if e.file_type()?.is_dir() {
                let abandoned = match File::open(path.join("lock")) {
                    Ok(f) => {
                        rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                            .is_ok()
                    }
                    // A folder without a lock file is being created right now, or was left
                    // by a crash between its creation and its lock: judge it by its age.
                    Err(_) => older_than(&e, LOOSE_STAGING_AGE),
                };
                if abandoned {
                    let _ = fs::remove_dir_all(&path);
                }
            } else if older_than(&e, LOOSE_STAGING_AGE) {
                let _ = fs::remove_file(&path);
            }
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Whether a directory entry was last modified more than `age` ago.
fn older_than(e: &fs::DirEntry, age: std::time::Duration) -> bool {
    e.metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|elapsed| elapsed > age)
}

impl LocalBlocks {
    /// Opens the store at `root` with a staging folder of this process's own, removing
    /// those of processes that are gone, and making sure the 256 fan-out directories exist
    /// durably.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp)?;
        let staging = Staging::create(&tmp)?;
        Staging::sweep(&tmp, &staging.dir)?;
        if !root.join("ff").is_dir() {
            for i in 0..256 {
                fs::create_dir_all(root.join(format!("{i:02x}")))?;
            }
            File::open(root)?.sync_all()?;
            if let Some(parent) = root.parent() {
                File::open(parent)?.sync_all()?;
            }
        }
        Ok(Self {
            root: root.to_owned(),
            tmp: std::sync::Arc::new(staging),
            direct: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
        })
    }

    fn path_of(&self, hash: &BlockHash) -> PathBuf {
        let h = hex(hash);
        self.root.join(&h[..2]).join(h)
    }

    /// Hashes and stores one block, returning its hash once it is durable.
    pub async fn put(&self, data: Bytes) -> Result<BlockHash, StoreError> {
        let (staging_dir, root) = (self.tmp.clone(), self.root.clone());
        let direct = self.direct.clone();
        tokio::task::spawn_blocking(move || {
            let hash = block_hash(&data);
            let h = hex(&hash);
            let dir = root.join(&h[..2]);
            let target = dir.join(&h);
            if target.exists() {
                return Ok(hash);
            }
            fs::create_dir_all(&dir)?;
            let staging = staging_dir.dir.join(hex(&crate::random_bytes::<12>()));
            if let Err(e) = write_staging(&direct, &staging, &data) {
                let _ = fs::remove_file(&staging);
                return Err(e.into());
            }
            fs::rename(&staging, &target)?;
            Ok(hash)
        })
        .await
        .map_err(|e| StoreError::Invalid(format!("block writer panicked: {e}")))?
    }

    async fn sync(&self, hashes: &[BlockHash]) -> Result<(), StoreError> {
        let mut dirs: Vec<PathBuf> = hashes
            .iter()
            .map(|h| self.root.join(&hex(h)[..2]))
            .collect();
        dirs.sort();
        dirs.dedup();
        tokio::task::spawn_blocking(move || {
            for d in dirs {
                File::open(&d)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Invalid(format!("block sync panicked: {e}")))?
    }

    /// Reads `len` bytes of a block from `offset`.
    pub async fn read(
        &self,
        hash: BlockHash,
        offset: u64,
        len: usize,
    ) -> Result<Bytes, StoreError> {
        let path = self.path_of(&hash);
        tokio::task::spawn_blocking(move || {
            let mut f = File::open(&path)?;
            f.seek(SeekFrom::Start(offset))?;
            let mut buf = vec![0u8; len];
            f.read_exact(&mut buf)?;
            Ok(Bytes::from(buf))
        })
        .await
        .map_err(|e| StoreError::Invalid(format!("block reader panicked: {e}")))?
    }

    /// Whether a block is present.
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.path_of(hash).exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `dir`'s file system takes `O_DIRECT`.
    fn takes_direct(dir: &Path) -> bool {
        use std::os::unix::fs::OpenOptionsExt;
        let probe = dir.join("probe");
        let ok = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
            .open(&probe)
            .is_ok();
        let _ = fs::remove_file(probe);
        ok
    }

    /// Large blocks go through `O_DIRECT` (from the buffer itself when it is aligned, from an
    /// aligned copy otherwise, cut back to their length), or through the page cache where the
    /// file system refuses it (tmpfs); either way they read back whole.
    #[tokio::test]
    async fn large_blocks_of_any_alignment_and_length_read_back_whole() {
        let mut dirs = vec![tempfile::tempdir().unwrap()];
        if Path::new("/dev/shm").is_dir() {
            dirs.push(tempfile::tempdir_in("/dev/shm").unwrap());
        }
        for dir in dirs {
            let direct = takes_direct(dir.path());
            let store = LocalBlocks::open(dir.path()).unwrap();
            let pattern = |n: usize, seed: u8| -> Vec<u8> {
                (0..n).map(|i| (i % 251) as u8 ^ seed).collect()
            };
            let mut aligned = block_buffer();
            aligned.extend_from_slice(&pattern(cubby_core::hash::BLOCK_SIZE, 1));
            assert_eq!(aligned.as_ptr().align_offset(DIRECT_ALIGN), 0);
            let unaligned = Bytes::from(pattern(cubby_core::hash::BLOCK_SIZE + 1, 2)).slice(1..);
            let blocks = [
                aligned.freeze(),
                unaligned,
                Bytes::from(pattern(DIRECT_MIN + 123, 3)),
                Bytes::from(pattern(DIRECT_MIN - 1, 4)),
            ];
            for data in blocks {
                let h = store.put(data.clone()).await.unwrap();
                assert_eq!(h, block_hash(&data));
                assert_eq!(
                    fs::metadata(store.path_of(&h)).unwrap().len(),
                    data.len() as u64
                );
                assert_eq!(&store.read(h, 0, data.len()).await.unwrap()[..], &data[..]);
            }
            assert_eq!(
                store.direct.load(std::sync::atomic::Ordering::Relaxed),
                direct,
                "{:?}",
                dir.path()
            );
            assert_eq!(staged(&store), 0);
        }
    }

    #[tokio::test]
    async fn put_is_idempotent_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlocks::open(dir.path()).unwrap();
        let data = Bytes::from_static(b"hello blocks");
        let h1 = store.put(data.clone()).await.unwrap();
        let h2 = store.put(data.clone()).await.unwrap();
        assert_eq!(h1, h2);
        assert_eq!(h1, block_hash(b"hello blocks"));
        assert!(store.contains(&h1));
        assert_eq!(&store.read(h1, 6, 6).await.unwrap()[..], b"blocks");
        assert_eq!(staged(&store), 0);
    }

    /// Files in a store's staging folder besides its lock.
    fn staged(store: &LocalBlocks) -> usize {
        fs::read_dir(&store.tmp.dir).unwrap().count() - 1
    }

    /// Opening the store (as every `cubby admin` command does beside a running server) leaves
    /// other processes' staging files alone, so their uploads in flight finish; folders whose
    /// process is gone, and old loose files, are swept.
    #[tokio::test]
    async fn opening_the_store_sweeps_only_abandoned_staging() {
        let dir = tempfile::tempdir().unwrap();
        let server = LocalBlocks::open(dir.path()).unwrap();
        // A block being written by the server: its staging file exists, its rename is to come.
        let in_flight = server.tmp.dir.join("in-flight");
        fs::write(&in_flight, b"half a block").unwrap();
        // What a killed process left: a folder whose lock nobody holds, and old loose files.
        let dead = dir.path().join("tmp").join("999999-dead");
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join("lock"), b"").unwrap();
        fs::write(dead.join("staged"), b"x").unwrap();
        let loose_old = dir.path().join("tmp").join("loose-old");
        fs::write(&loose_old, b"x").unwrap();
        let day_ago = std::time::SystemTime::now() - LOOSE_STAGING_AGE * 2;
        File::options()
            .write(true)
            .open(&loose_old)
            .unwrap()
            .set_modified(day_ago)
            .unwrap();
        let loose_new = dir.path().join("tmp").join("loose-new");
        fs::write(&loose_new, b"x").unwrap();

        let admin = LocalBlocks::open(dir.path()).unwrap();
        assert!(in_flight.exists(), "a live process's staging was swept");
        assert!(!dead.exists(), "an abandoned staging folder stayed");
        assert!(!loose_old.exists());
        assert!(
            loose_new.exists(),
            "a recent loose file may be a write in flight"
        );
        // The server's upload finishes; the admin command's staging goes when it closes.
        fs::remove_file(&in_flight).unwrap();
        server.put(Bytes::from_static(b"after")).await.unwrap();
        let admin_dir = admin.tmp.dir.clone();
        drop(admin);
        assert!(!admin_dir.exists());
        assert!(server.tmp.dir.exists());
    }
}
