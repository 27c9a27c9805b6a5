//! Thumbnails and media info: the cache in the store, and a bounded pool that decodes.
//!
//! A thumbnail is looked up by (content hash, size, mode, format) first (`Store::thumbnail`);
//! only a miss decodes. Decoding runs on [`Thumbnailer`]'s own threads, as many as the
//! machine has cores, at a lower CPU priority than the request threads, so a storm of cold
//! thumbnails slows other thumbnails, not uploads and listings. Each decode first takes:
//! - a worker permit (so at most that many sources are held in memory), then
//! - its estimated allocation from [`MEMORY_BUDGET`] (so a few huge images wait for each
//!   other instead of running the server out of memory; one that would need more than the
//!   whole budget is refused).

pub mod render;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak, mpsc};

use bytes::{Bytes, BytesMut};
use cubby_store::thumbs::MediaRow;
use cubby_store::{Entry, Store, StoreError};
use tokio::sync::Semaphore;

pub use render::{Refused, Want};

/// Bytes all decodes in flight may allocate together. With the cores' worth of sources
/// (each at most [`MAX_SOURCE_BYTES`]) this bounds what thumbnails add to the server's memory.
pub const MEMORY_BUDGET: u64 = 256 << 20;

/// The largest file Cubby makes a thumbnail of (Dropbox's limit is 20 MB; a 48-megapixel
/// phone photo can exceed it).
pub const MAX_SOURCE_BYTES: u64 = 48 << 20;

/// The part of a file read to learn its dimensions without a thumbnail: its first block.
const MEDIA_PROBE_BYTES: u64 = 4 << 20;

/// Extensions of the files Dropbox makes thumbnails of (and Cubby too); others get
/// `unsupported_extension`, whatever their bytes.
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "jpe", "jfif", "png", "gif", "webp", "bmp", "tif", "tiff", "ppm", "pgm", "pbm",
    "pnm",
];

/// Why there is no thumbnail.
#[derive(Debug)]
pub enum Failure {
    /// The name's extension is not an image's.
    Extension,
    /// `unsupported_image` (or `conversion_error` for a decode that failed part way).
    Refused(Refused),
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

/// Counters for `/metrics` and tests.
#[derive(Default)]
pub struct Counts {
    /// Thumbnails decoded and made.
    pub rendered: AtomicU64,
    /// Thumbnails served from the cache.
    pub cached: AtomicU64,
    /// Images refused (unsupported or failed).
    pub refused: AtomicU64,
}

impl Counts {
    /// Appends the counters in Prometheus's text format.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        out.push_str("# HELP cubby_thumbnails_total Thumbnails by outcome: made (decoded), cached (served from the cache), refused.\n");
        out.push_str("# TYPE cubby_thumbnails_total counter\n");
        for (outcome, n) in [
            ("made", &self.rendered),
            ("cached", &self.cached),
            ("refused", &self.refused),
        ] {
            let _ = writeln!(
                out,
                "cubby_thumbnails_total{{outcome=\"{outcome}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The thumbnail service of one server.
pub struct Thumbnailer {
    /// One lock per thumbnail being made, so concurrent requests for the same one (a grid
    /// and its preview, two tabs) decode it once: the later ones find it in the cache.
    making: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    workers: Semaphore,
    budget: Semaphore,
    jobs: Mutex<mpsc::Sender<Job>>,
    pub counts: Counts,
}

/// Units of [`Thumbnailer::budget`]: MiB.
fn mib(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1 << 20).max(1)).unwrap_or(u32::MAX)
}

/// Whether `name` has an image's extension.
pub fn is_image_name(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| IMAGE_EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext)))
}

impl Thumbnailer {
    /// Starts `threads` decoding threads (the machine's cores when `None`).
    pub fn start(threads: Option<usize>) -> Arc<Self> {
        let n = threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..n {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("cubby-thumb-{i}"))
                .spawn(move || {
                    // Below the request threads: a nice value of 10 on this thread only.
                    let tid = rustix::thread::gettid();
                    if let Err(e) = rustix::process::setpriority_process(Some(tid), 10) {
                        tracing::debug!(error = %e, "could not lower the thumbnail thread's priority");
                    }
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .expect("spawning a thumbnail thread");
        }
        Arc::new(Thumbnailer {
            making: Mutex::new(HashMap::new()),
            workers: Semaphore::new(n),
            budget: Semaphore::new(mib(MEMORY_BUDGET) as usize),
            jobs: Mutex::new(tx),
            counts: Counts::default(),
        })
    }

    /// The thumbnail `spec` of `content_hash` from the store, with the image's media info.
    async fn cached(
        &self,
        store: &Store,
        content_hash: &str,
        spec: &str,
    ) -> Result<Option<(Bytes, Option<MediaRow>)>, StoreError> {
        let Some(bytes) = store.thumbnail(content_hash, spec).await? else {
            return Ok(None);
        };
        self.counts.cached.fetch_add(1, Ordering::Relaxed);
        Ok(Some((bytes, store.media_info(content_hash).await?)))
    }

    /// The lock of the thumbnail `key` (dropped entries are pruned as new ones come).
    fn making(&self, key: String) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.making.lock().expect("thumbnail locks");
        if let Some(l) = m.get(&key).and_then(Weak::upgrade) {
            return l;
        }
        m.retain(|_, w| w.strong_count() > 0);
        let l = Arc::new(tokio::sync::Mutex::new(()));
        m.insert(key, Arc::downgrade(&l));
        l
    }

    /// Runs `f` on a decoding thread; a panic in a decoder is a refusal, not a crash.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, Refused> + Send + 'static,
    ) -> Result<T, Refused> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                .unwrap_or_else(|_| Err(Refused::Conversion("the decoder failed".into())));
            let _ = tx.send(r);
        });
        self.jobs
            .lock()
            .map_err(|_| Refused::Conversion("thumbnail pool stopped".into()))?
            .send(job)
            .map_err(|_| Refused::Conversion("thumbnail pool stopped".into()))?;
        rx.await
            .unwrap_or_else(|_| Err(Refused::Conversion("thumbnail pool stopped".into())))
    }

    /// The thumbnail of the file `entry` (named `name`) as `want` says: from the cache, or
    /// made and cached. Also returns what is known of the image.
    pub async fn thumbnail(
        &self,
        store: &Store,
        entry: &Entry,
        name: &str,
        want: Want,
    ) -> Result<(Bytes, Option<MediaRow>), Failure> {
        let refuse = |r: Refused| {
            self.counts.refused.fetch_add(1, Ordering::Relaxed);
            Failure::Refused(r)
        };
        if !is_image_name(name) {
            return Err(Failure::Extension);
        }
        let (Some(content_hash), Some(revision)) = (&entry.content_hash, entry.revision) else {
            return Err(refuse(Refused::Unsupported("an empty file".into())));
        };
        if entry.size == 0 {
            return Err(refuse(Refused::Unsupported("an empty file".into())));
        }
        if entry.size > MAX_SOURCE_BYTES {
            return Err(refuse(Refused::Unsupported(format!(
                "images over {} MiB get no thumbnail",
                MAX_SOURCE_BYTES >> 20
            ))));
        }
        let spec = want.spec();
        if let Some(hit) = self.cached(store, content_hash, &spec).await? {
            return Ok(hit);
        }
        // Made by one request at a time; those that waited find it made.
        let lock = self.making(format!("{content_hash}/{spec}"));
        let _making = lock.lock().await;
        if let Some(hit) = self.cached(store, content_hash, &spec).await? {
            return Ok(hit);
        }
        let _worker = self.workers.acquire().await.expect("never closed");
        let blocks = store.revision_blocks(revision).await?;
        let data = read_blocks(store, &blocks, u64::MAX).await?;
        let probe = render::probe(&data).map_err(refuse)?;
        let cost = probe.cost(&want) + data.len() as u64;
        if cost > MEMORY_BUDGET {
            let (w, h) = probe.seen();
            return Err(refuse(Refused::Unsupported(format!(
                "a {w} × {h} image needs more memory than thumbnails may use"
            ))));
        }
        let _memory = self
            .budget
            .acquire_many(mib(cost))
            .await
            .expect("never closed");
        let p = probe.clone();
        let out = self
            .run(move || render::render(&data, &p, &want, cost))
            .await
            .map_err(refuse)?;
        self.counts.rendered.fetch_add(1, Ordering::Relaxed);
        let out = Bytes::from(out);
        let media = media_row(&probe);
        if let Some(&source) = blocks.first() {
            if let Err(e) = store
                .put_thumbnail(content_hash, &spec, source, out.clone())
                .await
            {
                tracing::warn!(error = %e, "keeping a thumbnail failed");
            }
            if let Err(e) = store.put_media_info(content_hash, source, media).await {
                tracing::warn!(error = %e, "keeping media info failed");
            }
        }
        Ok((out, Some(media)))
    }

    /// What is known of the image `entry` (named `name`): from the store, or from its
    /// header (in its first block), then kept. `None` for what is not a readable image.
    pub async fn media_info(&self, store: &Store, entry: &Entry, name: &str) -> Option<MediaRow> {
        if !is_image_name(name) || entry.size == 0 {
            return None;
        }
        let (content_hash, revision) = (entry.content_hash.as_ref()?, entry.revision?);
        match store.media_info(content_hash).await {
            Ok(Some(m)) => return Some(m),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "reading media info failed");
                return None;
            }
        }
        let blocks = store.revision_blocks(revision).await.ok()?;
        let source = *blocks.first()?;
        let head = read_blocks(store, &blocks[..1], MEDIA_PROBE_BYTES)
            .await
            .ok()?;
        let media = media_row(&render::probe(&head).ok()?);
        if let Err(e) = store.put_media_info(content_hash, source, media).await {
            tracing::warn!(error = %e, "keeping media info failed");
        }
        Some(media)
    }
}

fn media_row(p: &render::Probe) -> MediaRow {
    let (w, h) = p.seen();
    MediaRow {
        width: u64::from(w),
        height: u64::from(h),
        taken: p.taken,
        location: p.location,
    }
}

/// The bytes of `blocks` in order, at most `limit` of them.
async fn read_blocks(
    store: &Store,
    blocks: &[cubby_core::hash::BlockHash],
    limit: u64,
) -> Result<Bytes, StoreError> {
    let mut out = BytesMut::new();
    for h in blocks {
        if out.len() as u64 >= limit {
            break;
        }
        out.extend_from_slice(&store.read_block_checked(*h).await?);
    }
    Ok(out.freeze())
}
