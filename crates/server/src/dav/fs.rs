//! The caller's files as `dav-server` sees them: each operation goes through the same
//! handlers as the API's (path resolution under the caller's root, shared folders, write
//! permission, quotas, the journal), so a WebDAV change is a revision like any other.

use std::collections::{HashMap, VecDeque};
use std::io::SeekFrom;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use bytes::{Buf, Bytes};
use cubby_core::api::errors::{DeleteError, LookupError, RelocationError, WriteError};
use cubby_core::api::types::{CommitInfo, DeleteArg, RelocationPath};
use cubby_core::hash::{BLOCK_SIZE, BlockHash};
use cubby_core::path::Pattern;
use cubby_store::Entry;
use cubby_store::meta::Kind;
use dav_server::davpath::DavPath;
use dav_server::fs::{
    DavDirEntry, DavFile, DavFileSystem, DavMetaData, DavProp, FsError, FsFuture, FsResult,
    FsStream, OpenOptions, ReadDirMeta,
};
use futures_util::FutureExt;
use tokio::sync::mpsc;

use crate::api::{ApiError, Ctx, Resolved};

/// Children read from the store per page of a folder's listing.
const LIST_PAGE: u32 = 1000;
/// Body pieces a PUT may have queued for its receiver (each as large as the client sent).
const PUT_QUEUE: usize = 16;
/// The largest file one PUT may write: Dropbox's own limit for one file.
const MAX_PUT: u64 = 2 << 40;
/// Dead properties one entry may carry (each at most a request body, 64 KiB).
const MAX_DEAD_PROPS: usize = 100;

/// One request's view of the caller's files.
#[derive(Clone)]
pub(crate) struct CubbyFs {
    ctx: Arc<Ctx>,
    /// The app password only reads (every entry's `oc:permissions` says so).
    read_only: bool,
    /// The request's `X-OC-Mtime` (a client's modification time for the file it PUTs).
    pub client_modified: Option<i64>,
    /// Entries this request has read, by path (a listing's children are asked for their
    /// properties one by one next); emptied by every write.
    seen: Arc<Mutex<HashMap<String, Entry>>>,
    /// Sequence numbers of the namespaces this request has read (folder ETags).
    heads: Arc<Mutex<HashMap<u64, u64>>>,
    /// Dead properties of the entries of the listing page being answered, by entry id (one
    /// query per page instead of one per entry: clients ask for `displayname`, which is one).
    props_seen: Arc<Mutex<HashMap<String, DeadProps>>>,
}

/// An entry's dead properties: `(key, xml)` pairs.
type DeadProps = Vec<(String, Vec<u8>)>;

impl CubbyFs {
    pub fn new(ctx: Arc<Ctx>, read_only: bool) -> Self {
        Self {
            ctx,
            read_only,
            client_modified: None,
            seen: Default::default(),
            heads: Default::default(),
            props_seen: Default::default(),
        }
    }

    fn forget(&self) {
        self.seen.lock().expect("entry cache").clear();
        self.props_seen.lock().expect("props cache").clear();
    }

    /// The entry at a WebDAV path, if one is live there (the root always is).
    pub(crate) async fn find(&self, path: &str) -> FsResult<Option<Entry>> {
        if let Some(e) = self.seen.lock().expect("entry cache").get(path) {
            return Ok(Some(e.clone()));
        }
        let found = self.lookup(path).await?;
        if let Some(e) = &found {
            self.seen
                .lock()
                .expect("entry cache")
                .insert(path.to_owned(), e.clone());
        }
        Ok(found)
    }

    async fn lookup(&self, path: &str) -> FsResult<Option<Entry>> {
        if path.is_empty() {
            return Ok(Some(root_entry()));
        }
        match self.ctx.resolve("path", path, Pattern::ReadPath).await {
            Ok(Resolved::Path { ns, lower, .. }) if self.ctx.is_top(ns, &lower) => {
                Ok(Some(root_entry()))
            }
            Ok(Resolved::Path { ns, lower, .. }) => {
                let e = self
                    .ctx
                    .store()
                    .entry(ns, &lower)
                    .await
                    .map_err(store_err)?;
                Ok(e.filter(|e| e.kind != Kind::Deleted)
                    .map(|e| self.ctx.shown(e)))
            }
            Ok(Resolved::NotFound | Resolved::NotFolder) => Ok(None),
            Ok(_) => Err(FsError::Forbidden),
            Err(e) => Err(api_err(e)),
        }
    }

    /// An entry's metadata, a folder's ETag included: the sequence number of the namespace
    /// its contents live in (a home's with those of the folders mounted there), so a change
    /// anywhere below a folder changes its ETag, as Nextcloud's clients need to find changes.
    async fn meta(&self, e: &Entry) -> FsResult<Meta> {
        let mut m = Meta::of(e);
        if e.kind == Kind::Folder {
            let ctx = &self.ctx;
            let home = ctx.home_ns();
            let (ns, _) = ctx.inside(ctx.ns_of(e), e.path_lower.clone());
            let mut tag = format!("{}", self.head(ns).await?);
            if ns == home {
                let mounts: Vec<u64> = ctx.mounts_read().iter().map(|m| m.ns).collect();
                for m in mounts {
                    tag.push_str(&format!("-{}", self.head(m).await?));
                }
            }
            m.rev = Some(format!("d{tag}"));
        }
        Ok(m)
    }

    async fn head(&self, ns: u64) -> FsResult<u64> {
        if let Some(h) = self.heads.lock().expect("heads").get(&ns) {
            return Ok(*h);
        }
        let h = self.ctx.store().head(ns).await.map_err(store_err)?;
        self.heads.lock().expect("heads").insert(ns, h);
        Ok(h)
    }

    async fn find_live(&self, path: &DavPath) -> FsResult<Entry> {
        self.find(&api_path(path)?).await?.ok_or(FsError::NotFound)
    }

    /// Whether the folder a new item at `path` would go in exists.
    async fn parent_is_folder(&self, path: &str) -> FsResult<bool> {
        let parent = &path[..path.rfind('/').unwrap_or(0)];
        Ok(self
            .find(parent)
            .await?
            .is_some_and(|e| e.kind == Kind::Folder))
    }

    /// The namespace and path whose children a folder's listing shows (a mount point's are
    /// its shared folder's).
    async fn inside(&self, path: &str) -> FsResult<(u64, String)> {
        if path.is_empty() {
            return Ok((self.ctx.home_ns(), self.ctx.root_lower()));
        }
        match self.ctx.resolve("path", path, Pattern::ReadPath).await {
            Ok(Resolved::Path { ns, lower, .. }) => Ok(self.ctx.inside(ns, lower)),
            Ok(_) => Err(FsError::NotFound),
            Err(e) => Err(api_err(e)),
        }
    }

    async fn open_read(&self, path: &DavPath) -> FsResult<Box<dyn DavFile>> {
        let e = self.find_live(path).await?;
        if e.kind != Kind::File {
            return Err(FsError::Forbidden);
        }
        let revision = e.revision.ok_or(FsError::GeneralFailure)?;
        let blocks = self
            .ctx
            .store()
            .revision_blocks(revision)
            .await
            .map_err(store_err)?;
        Ok(Box::new(ReadFile {
            ctx: self.ctx.clone(),
            meta: Meta::of(&e),
            blocks,
            pos: 0,
            block: None,
        }))
    }

    async fn open_write(&self, path: &DavPath, o: OpenOptions) -> FsResult<Box<dyn DavFile>> {
        self.forget();
        let p = api_path(path)?;
        if p.is_empty() {
            return Err(FsError::Forbidden);
        }
        let existing = self.find(&p).await?;
        let mode = match &existing {
            Some(e) if e.kind != Kind::File => return Err(FsError::Forbidden),
            Some(_) if o.create_new => return Err(FsError::Exists),
            Some(e) => serde_json::json!({".tag": "update", "update": e.rev}),
            None if !o.create => return Err(FsError::NotFound),
            None => serde_json::json!("add"),
        };
        if existing.is_none() && !self.parent_is_folder(&p).await? {
            return Err(FsError::NotFound);
        }
        let info = CommitInfo {
            path: p,
            mode,
            client_modified: self.client_modified.map(cubby_core::time::format),
            ..CommitInfo::default()
        };
        let (ns, mut commit) = match crate::api::transfer::commit_info(&self.ctx, &info).await {
            Ok(Ok(c)) => c,
            Ok(Err(w)) => return Err(write_err(&w)),
            Err(e) => return Err(api_err(e)),
        };
        let (tx, mut rx) = mpsc::channel::<Bytes>(PUT_QUEUE);
        let finished = Arc::new(AtomicBool::new(false));
        let done = finished.clone();
        let ctx = self.ctx.clone();
        let size_hint = o.size;
        let task = tokio::spawn(async move {
            // The body ends as a stream only once the handler says it is whole: a request cut
            // short (the file dropped without `flush`) ends it with an error instead, and
            // nothing is committed.
            let body = futures_util::stream::poll_fn(move |cx| match rx.poll_recv(cx) {
                std::task::Poll::Ready(None) if !done.load(Ordering::SeqCst) => {
                    std::task::Poll::Ready(Some(Err("the request body ended early")))
                }
                std::task::Poll::Ready(b) => std::task::Poll::Ready(b.map(Ok)),
                std::task::Poll::Pending => std::task::Poll::Pending,
            });
            let mut body = Box::pin(body);
            let store = ctx.store();
            let received = match crate::api::transfer::receive_stream(
                store,
                &mut body,
                size_hint,
                None,
                Bytes::new(),
                false,
                MAX_PUT,
            )
            .await
            {
                Ok(r) => r,
                Err(crate::api::transfer::ReceiveError::TooLarge(_)) => {
                    return Err(FsError::TooLarge);
                }
                Err(_) => return Err(FsError::GeneralFailure),
            };
            ctx.state.metrics.add_in(received.size);
            commit.size = received.size;
            commit.blocks = received.blocks;
            match store.commit_file(ns, commit).await {
                Ok(e) => Ok(ctx.shown(e)),
                Err(e) => Err(match crate::api::write_error(&e) {
                    Some(w) => write_err(&w),
                    None => FsError::GeneralFailure,
                }),
            }
        });
        Ok(Box::new(WriteFile {
            tx: Some(tx),
            finished,
            task: Some(task),
            meta: None,
        }))
    }
}

impl DavFileSystem for CubbyFs {
    fn open<'a>(&'a self, path: &'a DavPath, o: OpenOptions) -> FsFuture<'a, Box<dyn DavFile>> {
        async move {
            if o.write {
                self.open_write(path, o).await
            } else {
                self.open_read(path).await
            }
        }
        .boxed()
    }

    fn read_dir<'a>(
        &'a self,
        path: &'a DavPath,
        _meta: ReadDirMeta,
    ) -> FsFuture<'a, FsStream<Box<dyn DavDirEntry>>> {
        async move {
            let p = api_path(path)?;
            let dir = self.find(&p).await?.ok_or(FsError::NotFound)?;
            if dir.kind != Kind::Folder {
                return Err(FsError::Forbidden);
            }
            let (ns, lower) = self.inside(&p).await?;
            let fs = self.clone();
            // One page of children at a time: a folder of any size is listed in bounded
            // memory (the request's entry cache is emptied page by page).
            let pages = futures_util::stream::unfold(
                (fs, Some(String::new()), VecDeque::new()),
                move |(fs, mut after, mut buf): (CubbyFs, Option<String>, VecDeque<Entry>)| {
                    let (lower, p) = (lower.clone(), p.clone());
                    async move {
                        loop {
                            if let Some(e) = buf.pop_front() {
                                let e = fs.ctx.shown(e);
                                let name = e.name().to_owned();
                                let meta = match fs.meta(&e).await {
                                    Ok(m) => m,
                                    Err(err) => return Some((Err(err), (fs, None, buf))),
                                };
                                fs.seen
                                    .lock()
                                    .expect("entry cache")
                                    .insert(format!("{p}/{name}"), e);
                                let item: Box<dyn DavDirEntry> = Box::new(DirEntry {
                                    name: name.into_bytes(),
                                    meta,
                                });
                                return Some((Ok(item), (fs, after, buf)));
                            }
                            let from = after.take()?;
                            match fs
                                .ctx
                                .store()
                                .list(ns, &lower, false, false, &from, LIST_PAGE)
                                .await
                            {
                                Ok(page) => {
                                    if page.len() == LIST_PAGE as usize {
                                        after = page.last().map(|e| e.path_lower.clone());
                                    }
                                    if !from.is_empty() {
                                        fs.forget();
                                    }
                                    let ids: Vec<String> =
                                        page.iter().filter_map(|e| e.id.clone()).collect();
                                    match fs.ctx.store().dav_props_of(&ids).await {
                                        Ok(rows) => {
                                            let mut m = fs.props_seen.lock().expect("props cache");
                                            for id in ids {
                                                m.entry(id).or_default();
                                            }
                                            for (id, name, xml) in rows {
                                                m.entry(id).or_default().push((name, xml));
                                            }
                                        }
                                        Err(e) => {
                                            return Some((Err(store_err(e)), (fs, None, buf)));
                                        }
                                    }
                                    buf.extend(page);
                                }
                                Err(e) => return Some((Err(store_err(e)), (fs, None, buf))),
                            }
                        }
                    }
                },
            );
            Ok(Box::pin(pages) as FsStream<Box<dyn DavDirEntry>>)
        }
        .boxed()
    }

    fn metadata<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, Box<dyn DavMetaData>> {
        async move {
            let e = self.find_live(path).await?;
            Ok(Box::new(self.meta(&e).await?) as Box<dyn DavMetaData>)
        }
        .boxed()
    }

    fn create_dir<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            self.forget();
            let p = api_path(path)?;
            if self.find(&p).await?.is_some() {
                return Err(FsError::Exists);
            }
            if !self.parent_is_folder(&p).await? {
                return Err(FsError::NotFound);
            }
            match crate::api::files::create_folder_one(&self.ctx, &p, false).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(w)) => Err(write_err(&w)),
                Err(e) => Err(api_err(e)),
            }
        }
        .boxed()
    }

    fn remove_dir<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        self.remove(path)
    }

    fn remove_file<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        self.remove(path)
    }

    fn rename<'a>(&'a self, from: &'a DavPath, to: &'a DavPath) -> FsFuture<'a, ()> {
        async move { self.relocate(from, to, false).await.map(|_| ()) }.boxed()
    }

    fn copy<'a>(&'a self, from: &'a DavPath, to: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let source = self.find_live(from).await?;
            let copied = self.relocate(from, to, true).await?;
            if let (Some(a), Some(b)) = (&source.id, &copied.id) {
                self.ctx
                    .store()
                    .dav_copy_props(a, b)
                    .await
                    .map_err(store_err)?;
            }
            Ok(())
        }
        .boxed()
    }

    fn have_props<'a>(
        &'a self,
        path: &'a DavPath,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>> {
        // Always: besides dead properties, every entry has the `oc:` ones computed below.
        let _ = path;
        async { true }.boxed()
    }

    fn patch_props<'a>(
        &'a self,
        path: &'a DavPath,
        patch: Vec<(bool, DavProp)>,
    ) -> FsFuture<'a, Vec<(StatusCode, DavProp)>> {
        async move {
            self.forget();
            let e = self.find_live(path).await?;
            let id = e.id.ok_or(FsError::Forbidden)?;
            let store = self.ctx.store();
            let held = store.dav_props(&id).await.map_err(store_err)?;
            // In the request's order: a property set and then removed ends removed.
            let mut last: Vec<(String, Option<Vec<u8>>)> = Vec::new();
            let mut out = Vec::new();
            for (is_set, prop) in patch {
                let key = prop_key(&prop);
                let value = is_set.then(|| prop.xml.clone().unwrap_or_default());
                match last.iter_mut().find(|(k, _)| *k == key) {
                    Some(slot) => slot.1 = value,
                    None => last.push((key, value)),
                }
                out.push((StatusCode::OK, strip(prop)));
            }
            let (set, remove): (Vec<_>, Vec<_>) = last.into_iter().partition(|(_, v)| v.is_some());
            let set: Vec<(String, Vec<u8>)> = set
                .into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default()))
                .collect();
            let remove: Vec<String> = remove.into_iter().map(|(k, _)| k).collect();
            let after = held.iter().filter(|(k, _)| !remove.contains(k)).count()
                + set
                    .iter()
                    .filter(|(k, _)| !held.iter().any(|(h, _)| h == k))
                    .count();
            if after > MAX_DEAD_PROPS {
                return Ok(out
                    .into_iter()
                    .map(|(_, p)| (StatusCode::INSUFFICIENT_STORAGE, p))
                    .collect());
            }
            store
                .dav_patch_props(&id, &set, &remove)
                .await
                .map_err(store_err)?;
            Ok(out)
        }
        .boxed()
    }

    fn get_props<'a>(&'a self, path: &'a DavPath, do_content: bool) -> FsFuture<'a, Vec<DavProp>> {
        async move {
            Ok(self
                .props(path)
                .await?
                .into_iter()
                .map(|(key, xml)| DavProp {
                    name: key,
                    prefix: None,
                    namespace: None,
                    xml: do_content.then_some(xml),
                })
                .collect())
        }
        .boxed()
    }

    fn get_prop<'a>(&'a self, path: &'a DavPath, prop: DavProp) -> FsFuture<'a, Vec<u8>> {
        async move {
            if prop.namespace.as_deref() == Some(super::nextcloud::OC_NS) {
                let e = self.find_live(path).await?;
                return super::nextcloud::oc_prop(&self.ctx, &e, self.read_only, &prop.name)
                    .ok_or(FsError::NotFound);
            }
            let key = prop_key(&prop);
            self.props(path)
                .await?
                .into_iter()
                .find(|(k, _)| *k == key)
                .map(|(_, xml)| xml)
                .ok_or(FsError::NotFound)
        }
        .boxed()
    }

    fn get_quota(&self) -> FsFuture<'_, (u64, Option<u64>)> {
        async move {
            match crate::api::users::get_space_usage(&self.ctx).await {
                Ok(u) => {
                    let cubby_core::api::types::Allocation::Individual { allocated } = u.allocation
                    else {
                        return Ok((u.used, None));
                    };
                    Ok((u.used, Some(allocated)))
                }
                Err(_) => Err(FsError::GeneralFailure),
            }
        }
        .boxed()
    }
}

impl CubbyFs {
    fn remove<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            self.forget();
            let p = api_path(path)?;
            if p.is_empty() {
                return Err(FsError::Forbidden);
            }
            let a = DeleteArg {
                path: p,
                parent_rev: None,
            };
            match crate::api::files::delete_one(&self.ctx, &a).await {
                Ok(Ok(e)) => {
                    if let Some(id) = &e.id {
                        let _ = self.ctx.store().dav_forget_props(id).await;
                    }
                    Ok(())
                }
                Ok(Err(DeleteError::PathLookup { path_lookup: l })) => Err(lookup_err(&l)),
                Ok(Err(DeleteError::PathWrite { path_write: w })) => Err(write_err(&w)),
                Ok(Err(_)) => Err(FsError::GeneralFailure),
                Err(e) => Err(api_err(e)),
            }
        }
        .boxed()
    }

    /// A move or copy through the API's own rules (parents must exist: WebDAV never makes
    /// them).
    async fn relocate(&self, from: &DavPath, to: &DavPath, copy: bool) -> FsResult<Entry> {
        self.forget();
        let (from, to) = (api_path(from)?, api_path(to)?);
        if from.is_empty() || to.is_empty() {
            return Err(FsError::Forbidden);
        }
        if !self.parent_is_folder(&to).await? {
            return Err(FsError::NotFound);
        }
        let p = RelocationPath {
            from_path: from,
            to_path: to,
        };
        match crate::api::files::relocate_one(&self.ctx, &p, copy, false).await {
            Ok(Ok(e)) => Ok(self.ctx.shown(e)),
            Ok(Err(RelocationError::FromLookup { from_lookup: l })) => Err(lookup_err(&l)),
            Ok(Err(
                RelocationError::To { to: w } | RelocationError::FromWrite { from_write: w },
            )) => Err(write_err(&w)),
            Ok(Err(RelocationError::InsufficientQuota)) => Err(FsError::InsufficientStorage),
            Ok(Err(RelocationError::TooManyFiles)) => Err(FsError::TooLarge),
            Ok(Err(_)) => Err(FsError::Forbidden),
            Err(e) => Err(api_err(e)),
        }
    }

    async fn props(&self, path: &DavPath) -> FsResult<Vec<(String, Vec<u8>)>> {
        let e = self.find_live(path).await?;
        let Some(id) = e.id else {
            return Ok(Vec::new());
        };
        if let Some(p) = self.props_seen.lock().expect("props cache").get(&id) {
            return Ok(p.clone());
        }
        self.ctx.store().dav_props(&id).await.map_err(store_err)
    }
}

/// A WebDAV path (decoded, below the mount prefix) as an API path: `""` for the root.
pub(crate) fn api_path(path: &DavPath) -> FsResult<String> {
    let s = std::str::from_utf8(path.as_bytes()).map_err(|_| FsError::NotFound)?;
    Ok(s.trim_end_matches('/').to_owned())
}

/// The key a dead property is kept under: its namespace, then its name.
fn prop_key(p: &DavProp) -> String {
    format!("{}{}", p.namespace.as_deref().unwrap_or(""), p.name)
}

fn strip(p: DavProp) -> DavProp {
    DavProp { xml: None, ..p }
}

fn root_entry() -> Entry {
    Entry {
        kind: Kind::Folder,
        ..Entry::deleted("", "")
    }
}

fn store_err(e: cubby_store::StoreError) -> FsError {
    if e.disk_full() {
        FsError::InsufficientStorage
    } else {
        tracing::warn!(error = %e, "WebDAV: the store failed");
        FsError::GeneralFailure
    }
}

fn api_err(e: ApiError) -> FsError {
    match e {
        ApiError::BadInput(_) => FsError::Forbidden,
        other => {
            tracing::warn!(error = ?other, "WebDAV: a request failed");
            FsError::GeneralFailure
        }
    }
}

fn lookup_err(l: &LookupError) -> FsError {
    match l {
        LookupError::NotFound | LookupError::NotFolder => FsError::NotFound,
        _ => FsError::Forbidden,
    }
}

fn write_err(w: &WriteError) -> FsError {
    match w {
        WriteError::Conflict { .. } => FsError::Exists,
        WriteError::InsufficientSpace => FsError::InsufficientStorage,
        _ => FsError::Forbidden,
    }
}

/// An entry's metadata as WebDAV shows it: a file's ETag is its rev, the one the API's
/// downloads send.
#[derive(Clone, Debug)]
pub(crate) struct Meta {
    dir: bool,
    size: u64,
    modified: i64,
    rev: Option<String>,
}

impl Meta {
    pub fn of(e: &Entry) -> Self {
        let dir = e.kind == Kind::Folder;
        Meta {
            dir,
            size: if dir { 0 } else { e.size },
            // A folder has no time of its own on Dropbox: now, rather than 1970 (which
            // Nextcloud's clients refuse as invalid).
            modified: if dir && e.server_modified <= 0 {
                cubby_store::now()
            } else if dir {
                e.server_modified
            } else {
                e.client_modified
            },
            rev: e.rev.clone(),
        }
    }
}

impl DavMetaData for Meta {
    fn len(&self) -> u64 {
        self.size
    }

    fn modified(&self) -> FsResult<SystemTime> {
        Ok(UNIX_EPOCH + Duration::from_secs(self.modified.max(0) as u64))
    }

    fn is_dir(&self) -> bool {
        self.dir
    }

    fn etag(&self) -> Option<String> {
        self.rev.clone()
    }
}

struct DirEntry {
    name: Vec<u8>,
    meta: Meta,
}

impl DavDirEntry for DirEntry {
    fn name(&self) -> Vec<u8> {
        self.name.clone()
    }

    fn metadata(&self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let m: Box<dyn DavMetaData> = Box::new(self.meta.clone());
        async move { Ok(m) }.boxed()
    }
}

/// A file opened for reading: one verified block at a time.
struct ReadFile {
    ctx: Arc<Ctx>,
    meta: Meta,
    blocks: Vec<BlockHash>,
    pos: u64,
    block: Option<(usize, Bytes)>,
}

impl std::fmt::Debug for ReadFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadFile").field("pos", &self.pos).finish()
    }
}

impl DavFile for ReadFile {
    fn metadata(&mut self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let m: Box<dyn DavMetaData> = Box::new(self.meta.clone());
        async move { Ok(m) }.boxed()
    }

    fn write_buf(&mut self, _buf: Box<dyn Buf + Send>) -> FsFuture<'_, ()> {
        async { Err(FsError::Forbidden) }.boxed()
    }

    fn write_bytes(&mut self, _buf: Bytes) -> FsFuture<'_, ()> {
        async { Err(FsError::Forbidden) }.boxed()
    }

    fn read_bytes(&mut self, count: usize) -> FsFuture<'_, Bytes> {
        async move {
            if self.pos >= self.meta.size || count == 0 {
                return Ok(Bytes::new());
            }
            let idx = (self.pos / BLOCK_SIZE as u64) as usize;
            if self.block.as_ref().is_none_or(|(i, _)| *i != idx) {
                let hash = *self.blocks.get(idx).ok_or(FsError::GeneralFailure)?;
                let data = self
                    .ctx
                    .store()
                    .read_block_checked(hash)
                    .await
                    .map_err(store_err)?;
                self.block = Some((idx, data));
            }
            let (_, data) = self.block.as_ref().expect("block just read");
            let off = (self.pos % BLOCK_SIZE as u64) as usize;
            let n = count.min(data.len().saturating_sub(off));
            if n == 0 {
                return Err(FsError::GeneralFailure);
            }
            self.pos += n as u64;
            Ok(data.slice(off..off + n))
        }
        .boxed()
    }

    fn seek(&mut self, pos: SeekFrom) -> FsFuture<'_, u64> {
        async move {
            let to = match pos {
                SeekFrom::Start(n) => Some(n),
                SeekFrom::End(d) => self.meta.size.checked_add_signed(d),
                SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            };
            self.pos = to.ok_or(FsError::GeneralFailure)?;
            Ok(self.pos)
        }
        .boxed()
    }

    fn flush(&mut self) -> FsFuture<'_, ()> {
        async { Ok(()) }.boxed()
    }
}

/// A file opened for writing: its bytes go to a receiver task as they arrive (blocks hashed
/// and made durable on the way), and `flush` commits them as a new revision. Dropped without
/// `flush`, nothing is committed.
struct WriteFile {
    tx: Option<mpsc::Sender<Bytes>>,
    finished: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<FsResult<Entry>>>,
    meta: Option<Meta>,
}

impl std::fmt::Debug for WriteFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteFile").finish()
    }
}

impl WriteFile {
    /// The receiver's answer, once it has ended.
    async fn outcome(&mut self) -> FsResult<Entry> {
        match self.task.take() {
            Some(t) => t.await.map_err(|_| FsError::GeneralFailure)?,
            None => Err(FsError::GeneralFailure),
        }
    }
}

impl DavFile for WriteFile {
    fn metadata(&mut self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let m = self.meta.clone();
        async move {
            m.map(|m| Box::new(m) as Box<dyn DavMetaData>)
                .ok_or(FsError::NotFound)
        }
        .boxed()
    }

    fn write_buf(&mut self, mut buf: Box<dyn Buf + Send>) -> FsFuture<'_, ()> {
        let b = buf.copy_to_bytes(buf.remaining());
        self.write_bytes(b)
    }

    fn write_bytes(&mut self, buf: Bytes) -> FsFuture<'_, ()> {
        async move {
            let Some(tx) = &self.tx else {
                return Err(FsError::GeneralFailure);
            };
            if tx.send(buf).await.is_err() {
                // The receiver stopped: its error says why.
                self.tx = None;
                return self.outcome().await.map(|_| ());
            }
            Ok(())
        }
        .boxed()
    }

    fn read_bytes(&mut self, _count: usize) -> FsFuture<'_, Bytes> {
        async { Err(FsError::Forbidden) }.boxed()
    }

    fn seek(&mut self, _pos: SeekFrom) -> FsFuture<'_, u64> {
        // Partial writes would rewrite a file's blocks in place: not offered.
        async { Err(FsError::NotImplemented) }.boxed()
    }

    fn flush(&mut self) -> FsFuture<'_, ()> {
        async move {
            if self.meta.is_some() {
                return Ok(());
            }
            self.finished.store(true, Ordering::SeqCst);
            self.tx = None;
            let e = self.outcome().await?;
            self.meta = Some(Meta::of(&e));
            Ok(())
        }
        .boxed()
    }
}
