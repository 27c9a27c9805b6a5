//! Content-addressed block storage on local disk.
//!
//! A block is at most 4 MiB and named by its SHA-256: `blocks/ab/abcdef…`. Blocks are
//! immutable, so two files (or two accounts) with the same block share one copy on disk;
//! nothing outside the store can learn that (see design.md, "A hash is never a credential").
//!
//! Architecture Invariant: `put` returns only after the block is durable (file fsynced,
//! renamed into place, directory fsynced), so metadata written afterwards never refers to
//! a block a crash could lose. A block that exists is never rewritten.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use cubby_core::hash::{BlockHash, block_hash, hex};

use crate::StoreError;

/// Local-disk block store.
pub struct BlockStore {
    root: PathBuf,
    tmp: PathBuf,
}

impl BlockStore {
    /// Opens the store at `root`, removing staging files a crash may have left.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp)?;
        for e in fs::read_dir(&tmp)? {
            let _ = fs::remove_file(e?.path());
        }
        Ok(Self {
            root: root.to_owned(),
            tmp,
        })
    }

    fn path_of(&self, hash: &BlockHash) -> PathBuf {
        let h = hex(hash);
        self.root.join(&h[..2]).join(h)
    }

    /// Hashes and stores one block, returning its hash once it is durable.
    pub async fn put(&self, data: Bytes) -> Result<BlockHash, StoreError> {
        let (root_tmp, root) = (self.tmp.clone(), self.root.clone());
        tokio::task::spawn_blocking(move || {
            let hash = block_hash(&data);
            let h = hex(&hash);
            let dir = root.join(&h[..2]);
            let target = dir.join(&h);
            if target.exists() {
                return Ok(hash);
            }
            fs::create_dir_all(&dir)?;
            let staging = root_tmp.join(hex(&crate::random_bytes::<12>()));
            let mut f = File::create(&staging)?;
            f.write_all(&data)?;
            f.sync_all()?;
            drop(f);
            fs::rename(&staging, &target)?;
            File::open(&dir)?.sync_all()?;
            Ok(hash)
        })
        .await
        .map_err(|e| StoreError::Invalid(format!("block writer panicked: {e}")))?
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

    #[tokio::test]
    async fn put_is_idempotent_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::open(dir.path()).unwrap();
        let data = Bytes::from_static(b"hello blocks");
        let h1 = store.put(data.clone()).await.unwrap();
        let h2 = store.put(data.clone()).await.unwrap();
        assert_eq!(h1, h2);
        assert_eq!(h1, block_hash(b"hello blocks"));
        assert!(store.contains(&h1));
        assert_eq!(&store.read(h1, 6, 6).await.unwrap()[..], b"blocks");
        assert!(
            fs::read_dir(dir.path().join("tmp"))
                .unwrap()
                .next()
                .is_none()
        );
    }
}
