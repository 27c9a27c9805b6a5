//! The local side of `cubby sync`: the file system behind a trait, so a simulation can drive
//! the engine over an in-memory disk.
//!
//! Paths are display paths relative to the synced folder (`/a/b.txt`); `""` is the folder
//! itself. The engine's own files live in `.cubby-cache/` inside the synced folder (its trash
//! and nothing else), so renames into the trash never cross file systems; partial downloads
//! sit beside their target as `.NAME.cubby-partial`. Neither is ever synced.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use cubby_core::hash::ContentHasher;

/// The folder, inside the synced folder, that holds the engine's trash.
pub const CACHE_DIR: &str = ".cubby-cache";
/// The ignore file read in every folder (the same as `cubby backup`'s).
pub const IGNORE_FILE: &str = crate::backup::IGNORE_FILE;

/// Whether a name belongs to the engine (its cache folder or a partial download).
pub fn is_internal(name: &str) -> bool {
    name == CACHE_DIR || (name.starts_with('.') && name.ends_with(".cubby-partial"))
}

/// What `lstat` says about a file or folder, enough to tell whether it changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub is_dir: bool,
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
}

/// One folder's entries, sorted by name, without the engine's own files.
#[derive(Debug, Default)]
pub struct Listing {
    pub entries: Vec<(String, Stat)>,
    /// Entries that cannot be read (a name that is not UTF-8, an `lstat` that failed), with
    /// the reason.
    pub problems: Vec<(String, String)>,
    /// Symbolic links and other special files (paths): never followed nor synced.
    pub special: Vec<String>,
    /// The folder's `.cubbyignore`, if it has one.
    pub ignore: Option<String>,
}

/// The local file system as the engine sees it.
pub trait LocalFs: Send + Sync {
    /// The entries of one folder (`""`: the synced folder); an error if it cannot be read.
    fn list(&self, dir: &str) -> io::Result<Listing>;
    /// `lstat` of a path, `None` if nothing is there.
    fn stat(&self, path: &str) -> io::Result<Option<Stat>>;
    /// The Dropbox content hash of a file, with its stat; an error if it changed while read.
    fn hash(&self, path: &str) -> io::Result<(String, Stat)>;
    /// The path of a file for the remote side to read from (uploads).
    fn source(&self, path: &str) -> PathBuf;
    /// Where the download of `path` is written before it is complete.
    fn partial(&self, path: &str) -> PathBuf;
    fn mkdir(&self, path: &str) -> io::Result<Stat>;
    /// Renames, refusing to replace anything at `to` (a case-only rename is allowed).
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Moves a complete download into place; `expected` is what must be at `path` now
    /// (`None`: nothing), so a file changed since it was observed is never replaced.
    fn install(&self, partial: &Path, path: &str, expected: Option<&Stat>) -> io::Result<Stat>;
    /// Makes complete downloads durable before they are moved into place (one file system
    /// sync for a whole batch rather than an fsync per file).
    fn flush(&self, partials: &[PathBuf]) -> io::Result<()>;
    /// Removes a partial download that will not be installed.
    fn discard(&self, partial: &Path);
    /// Moves a file or folder into the trash, under the time `now` (Unix seconds), only if
    /// it and everything below it are as `expected` (path → stat, as observed): a file
    /// created or changed since is never deleted along with its folder.
    fn trash(&self, path: &str, expected: &BTreeMap<String, Stat>, now: i64) -> io::Result<()>;
    /// Removes trash older than `before` (Unix seconds); returns how many batches went.
    fn purge_trash(&self, before: i64) -> io::Result<u64>;
}

/// Whether a subtree on disk is still as observed: the same paths, files with the same
/// stat, folders with the same inode (a folder's mtime moves with its entries, which are
/// compared themselves).
pub fn same_subtree(expected: &BTreeMap<String, Stat>, actual: &BTreeMap<String, Stat>) -> bool {
    expected.len() == actual.len()
        && expected.iter().all(|(p, e)| {
            actual.get(p).is_some_and(|a| {
                if e.is_dir {
                    a.is_dir && a.inode == e.inode
                } else {
                    a == e
                }
            })
        })
}

/// A file that changed under the engine's feet: not an error of the disk, try again later.
pub fn changed(path: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::WouldBlock,
        format!("{path} changed while it was being synced"),
    )
}

/// Why a special file (a link, a device) is left out.
pub const SPECIAL: &str = "not a regular file or folder (a link or a device); skipped";

/// The real file system under a synced (or backed-up) folder.
pub struct RealFs {
    root: PathBuf,
    /// Whether the sync engine's own files (its cache folder, partial downloads) are hidden
    /// from listings, and stale partial downloads removed; off for a backup's source, which
    /// is only read.
    engine_files: bool,
    /// The client's own files inside the synced folder (`/a/b`), never synced (see
    /// [`crate::own`]).
    own: Vec<String>,
}

impl RealFs {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            engine_files: true,
            own: crate::own::inside(root, &crate::own::paths())
                .into_iter()
                .map(|rel| format!("/{rel}"))
                .collect(),
        }
    }

    /// The file system under a tree that is only read (`cubby backup`'s source): every entry
    /// is listed, whatever its name, and nothing is removed.
    pub fn read_only(root: &Path) -> Self {
        Self {
            engine_files: false,
            ..Self::new(root)
        }
    }

    fn abs(&self, path: &str) -> PathBuf {
        let rel = path.trim_start_matches('/');
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    fn trash_dir(&self) -> PathBuf {
        self.root.join(CACHE_DIR).join("trash")
    }
}

fn stat_of(meta: &std::fs::Metadata) -> Stat {
    use std::os::unix::fs::MetadataExt;
    Stat {
        is_dir: meta.is_dir(),
        size: if meta.is_dir() { 0 } else { meta.len() },
        mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        inode: meta.ino(),
    }
}

fn lstat(path: &Path) -> io::Result<Option<Stat>> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(stat_of(&meta))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn join(dir: &str, name: &str) -> String {
    format!("{dir}/{name}")
}

impl LocalFs for RealFs {
    fn list(&self, dir: &str) -> io::Result<Listing> {
        let abs = self.abs(dir);
        let mut listing = Listing::default();
        let read = std::fs::read_dir(&abs)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", abs.display())))?;
        if let Ok(text) = std::fs::read_to_string(abs.join(IGNORE_FILE)) {
            listing.ignore = Some(text);
        }
        let mut names = Vec::new();
        for entry in read {
            let entry = entry?;
            match entry.file_name().into_string() {
                Ok(name) => names.push(name),
                Err(raw) => listing.problems.push((
                    join(dir, &raw.to_string_lossy()),
                    "the name is not UTF-8; skipped".into(),
                )),
            }
        }
        names.sort();
        for name in names {
            if self.own.contains(&join(dir, &name)) {
                continue;
            }
            if self.engine_files && is_internal(&name) {
                // A partial download met by a scan was left by a run that stopped (the
                // engine never scans while it downloads): nothing will finish it.
                if name != CACHE_DIR {
                    let _ = std::fs::remove_file(abs.join(&name));
                }
                continue;
            }
            let stat = match std::fs::symlink_metadata(abs.join(&name)) {
                Ok(meta) if meta.is_dir() || meta.is_file() => stat_of(&meta),
                Ok(_) => {
                    listing.special.push(join(dir, &name));
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    listing.problems.push((join(dir, &name), e.to_string()));
                    continue;
                }
            };
            listing.entries.push((name, stat));
        }
        Ok(listing)
    }

    fn stat(&self, path: &str) -> io::Result<Option<Stat>> {
        lstat(&self.abs(path))
    }

    fn hash(&self, path: &str) -> io::Result<(String, Stat)> {
        let abs = self.abs(path);
        let mut file = std::fs::File::open(&abs)?;
        let before = stat_of(&file.metadata()?);
        let mut hasher = ContentHasher::new();
        // As large as the file (and one byte more, to see it grow), up to 1 MiB: a zeroed
        // 1 MiB buffer for each small file was 7% of a first backup's CPU.
        let mut buf = vec![
            0u8;
            (before.size as usize)
                .saturating_add(1)
                .clamp(4096, 1 << 20)
        ];
        let mut read = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            read += n as u64;
            hasher.update(&buf[..n]);
        }
        let after = lstat(&abs)?;
        if after != Some(before) || read != before.size {
            return Err(changed(path));
        }
        Ok((hasher.finish(), before))
    }

    fn source(&self, path: &str) -> PathBuf {
        self.abs(path)
    }

    fn partial(&self, path: &str) -> PathBuf {
        cubby_client::transfer::partial_path(&self.abs(path))
    }

    fn mkdir(&self, path: &str) -> io::Result<Stat> {
        let abs = self.abs(path);
        match std::fs::create_dir(&abs) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && abs.is_dir() => {}
            Err(e) => return Err(e),
        }
        lstat(&abs)?.ok_or_else(|| changed(path))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let (src, dst) = (self.abs(from), self.abs(to));
        let source = lstat(&src)?.ok_or_else(|| changed(from))?;
        if let Some(there) = lstat(&dst)?
            && there.inode != source.inode
        {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{to} already exists"),
            ));
        }
        std::fs::rename(&src, &dst)
    }

    fn install(&self, partial: &Path, path: &str, expected: Option<&Stat>) -> io::Result<Stat> {
        let dst = self.abs(path);
        let there = lstat(&dst)?;
        if there.as_ref() != expected {
            return Err(changed(path));
        }
        // The stat of what was written, taken before it becomes visible: an edit made right
        // after the rename must not be recorded as the downloaded content.
        let stat = lstat(partial)?.ok_or_else(|| changed(path))?;
        std::fs::rename(partial, &dst)?;
        Ok(stat)
    }

    fn flush(&self, partials: &[PathBuf]) -> io::Result<()> {
        if partials.is_empty() {
            return Ok(());
        }
        // syncfs(2): every dirty page of this file system, in one call; the partial files all
        // live in the synced folder.
        let root = std::fs::File::open(&self.root)?;
        rustix::fs::syncfs(&root).map_err(io::Error::from)
    }

    fn discard(&self, partial: &Path) {
        let _ = std::fs::remove_file(partial);
    }

    fn trash(&self, path: &str, expected: &BTreeMap<String, Stat>, now: i64) -> io::Result<()> {
        let mut actual = BTreeMap::new();
        let mut stack = vec![path.to_owned()];
        while let Some(p) = stack.pop() {
            let Some(stat) = lstat(&self.abs(&p))? else {
                return Err(changed(path));
            };
            if stat.is_dir {
                for entry in std::fs::read_dir(self.abs(&p))? {
                    let name = entry?.file_name();
                    let name = name.to_string_lossy();
                    if !is_internal(&name) {
                        stack.push(join(&p, &name));
                    }
                }
            }
            actual.insert(p, stat);
        }
        if !same_subtree(expected, &actual) {
            return Err(changed(path));
        }
        let target = self
            .trash_dir()
            .join(now.to_string())
            .join(path.trim_start_matches('/'));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut target = target;
        let mut n = 1;
        while lstat(&target)?.is_some() {
            n += 1;
            target.set_file_name(format!("{} ({n})", cubby_core::path::name_of(path)));
        }
        std::fs::rename(self.abs(path), target)
    }

    fn purge_trash(&self, before: i64) -> io::Result<u64> {
        let read = match std::fs::read_dir(self.trash_dir()) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut purged = 0;
        for entry in read {
            let entry = entry?;
            let stamp: Option<i64> = entry.file_name().to_str().and_then(|s| s.parse().ok());
            if stamp.is_some_and(|t| t < before) {
                std::fs::remove_dir_all(entry.path())?;
                purged += 1;
            }
        }
        Ok(purged)
    }
}
