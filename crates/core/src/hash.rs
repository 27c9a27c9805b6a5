//! The Dropbox `content_hash`: SHA-256 over the concatenated SHA-256 digests of 4 MiB blocks.
//!
//! The block digests are exactly the block store's keys, so a file's content hash falls
//! out of its block list without reading the bytes again.

use sha2::{Digest, Sha256};

/// Size of one block, fixed by Dropbox's content-hash definition.
pub const BLOCK_SIZE: usize = 4 * 1024 * 1024;

/// A SHA-256 digest of one block, the block's address in the block store.
pub type BlockHash = [u8; 32];

/// Compares two byte strings in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `BASE64URL(SHA256(verifier))` without padding: the S256 PKCE transform (RFC 7636).
pub fn pkce_s256(verifier: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Hash of one block.
pub fn block_hash(data: &[u8]) -> BlockHash {
    Sha256::digest(data).into()
}

/// The content hash of a file from its block digests, as lowercase hex.
pub fn content_hash_of_blocks<'a>(blocks: impl IntoIterator<Item = &'a BlockHash>) -> String {
    let mut outer = Sha256::new();
    for b in blocks {
        outer.update(b);
    }
    hex(&outer.finalize())
}

/// Incremental content hasher for bytes arriving in arbitrary pieces.
#[derive(Default)]
pub struct ContentHasher {
    outer: Sha256,
    inner: Sha256,
    in_block: usize,
}

impl ContentHasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = (BLOCK_SIZE - self.in_block).min(data.len());
            self.inner.update(&data[..take]);
            self.in_block += take;
            data = &data[take..];
            if self.in_block == BLOCK_SIZE {
                let digest = std::mem::take(&mut self.inner).finalize();
                self.outer.update(digest);
                self.in_block = 0;
            }
        }
    }

    pub fn finish(mut self) -> String {
        if self.in_block > 0 {
            let digest = self.inner.finalize();
            self.outer.update(digest);
        }
        hex(&self.outer.finalize())
    }
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Parses 64 lowercase or uppercase hex characters into a digest.
pub fn parse_hash(s: &str) -> Option<BlockHash> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let hi = (chunk[0] as char).to_digit(16)?;
        let lo = (chunk[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_vector() {
        // Computed independently: base64.urlsafe_b64encode(hashlib.sha256(v).digest()) in
        // Python, with the padding stripped, as the Dropbox SDK does.
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K1uhbF1P7Oijr1rXJnEPTBUj3c"),
            "HpuZK44d_UYW4my-an3q1qgQ5gt2V-EEr5WE1hthXSE"
        );
        assert!(ct_eq(b"abc", b"abc") && !ct_eq(b"abc", b"abd") && !ct_eq(b"ab", b"abc"));
    }

    #[test]
    fn empty_content_is_sha256_of_nothing() {
        assert_eq!(
            ContentHasher::new().finish(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn single_block_is_double_sha256() {
        let mut h = ContentHasher::new();
        h.update(b"hello");
        let inner = block_hash(b"hello");
        assert_eq!(h.finish(), hex(&Sha256::digest(inner)));
    }

    #[test]
    fn pieces_match_blocks() {
        let data: Vec<u8> = (0..(BLOCK_SIZE * 2 + 12345))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut h = ContentHasher::new();
        for piece in data.chunks(100_003) {
            h.update(piece);
        }
        let blocks: Vec<BlockHash> = data.chunks(BLOCK_SIZE).map(block_hash).collect();
        assert_eq!(h.finish(), content_hash_of_blocks(&blocks));
    }

    #[test]
    fn hex_round_trip() {
        let d = block_hash(b"x");
        assert_eq!(parse_hash(&hex(&d)), Some(d));
        assert_eq!(parse_hash("zz"), None);
    }
}
