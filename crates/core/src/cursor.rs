//! Signed list_folder cursors.
//!
//! A cursor is self-describing (namespace, listed folder, parameters, journal position) and
//! signed with the server's HMAC key, so `list_folder/longpoll`, which carries no auth,
//! can trust it, and a client cannot forge a position in another namespace.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Where a cursor stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t")]
pub enum Position {
    /// Paging through the initial listing: entries after `after` (a lower path), and the
    /// journal position the listing started from.
    Listing { after: String, seq: u64, idx: u32 },
    /// Following the change journal after (seq, idx).
    Changes { seq: u64, idx: u32 },
}

/// The decoded content of a cursor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Namespace whose journal the cursor follows.
    pub ns: u64,
    /// Account row that obtained it; other accounts cannot use it.
    pub account: i64,
    /// Lower-case full namespace path of the listed folder (`""` for the namespace root).
    pub folder: String,
    /// The caller's path root (lower case), stripped from reported paths.
    pub base: String,
    pub recursive: bool,
    pub include_deleted: bool,
    pub limit: Option<u32>,
    pub pos: Position,
    /// For a listing inside a mounted shared folder (`ns` is then the folder's): the mount
    /// point's lower-case path in the caller's home when the cursor was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// For a recursive listing of a home folder: the shared folders mounted below it, each
    /// with its own position.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MountPos>,
}

/// A mounted shared folder's place in a cursor over the home it is mounted in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPos {
    pub ns: u64,
    /// The mount point's lower-case path in the home.
    pub at: String,
    pub pos: Position,
}

const VERSION: &str = "c1";

/// Encodes and signs a cursor.
pub fn encode(key: &[u8], cursor: &Cursor) -> String {
    seal(key, VERSION, cursor)
}

/// Verifies and decodes a cursor; `None` for anything forged, truncated or from another key.
pub fn decode(key: &[u8], s: &str) -> Option<Cursor> {
    open(key, VERSION, s)
}

/// Serializes `value` and signs it: `kind.body.signature`, all URL-safe. The kind keeps one
/// sort of token (a cursor, a link) from being accepted as another.
pub fn seal<T: Serialize>(key: &[u8], kind: &str, value: &T) -> String {
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("token serializes"));
    let sig = URL_SAFE_NO_PAD.encode(mac(key, &format!("{kind}.{body}")));
    format!("{kind}.{body}.{sig}")
}

/// Verifies and decodes what [`seal`] made with the same key and kind.
pub fn open<T: serde::de::DeserializeOwned>(key: &[u8], kind: &str, s: &str) -> Option<T> {
    let mut parts = s.split('.');
    let (k, body, sig) = (parts.next()?, parts.next()?, parts.next()?);
    if k != kind || parts.next().is_some() {
        return None;
    }
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    let mut m = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key).ok()?;
    m.update(format!("{kind}.{body}").as_bytes());
    m.verify_slice(&sig).ok()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()
}

/// A keyed pseudo-random function: HMAC-SHA256 of `label`, a zero byte and `data`. The label
/// keeps values derived for one purpose (a link token, an unlock cookie) apart from others.
pub fn derive(key: &[u8], label: &str, data: &[u8]) -> [u8; 32] {
    let mut m = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("hmac takes any key");
    m.update(label.as_bytes());
    m.update(&[0]);
    m.update(data);
    m.finalize().into_bytes().into()
}

fn mac(key: &[u8], body: &str) -> Vec<u8> {
    let mut m = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("hmac takes any key");
    m.update(body.as_bytes());
    m.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Cursor {
        Cursor {
            ns: 7,
            account: 1,
            folder: "/a".into(),
            base: String::new(),
            recursive: true,
            include_deleted: false,
            limit: Some(10),
            pos: Position::Changes { seq: 42, idx: 0 },
            at: None,
            mounts: vec![MountPos {
                ns: 9,
                at: "/a/shared".into(),
                pos: Position::Changes { seq: 3, idx: 1 },
            }],
        }
    }

    #[test]
    fn round_trip_and_tamper() {
        let key = b"0123456789abcdef0123456789abcdef";
        let s = encode(key, &sample());
        assert_eq!(decode(key, &s), Some(sample()));
        assert_eq!(decode(b"another key", &s), None);
        let mut other = sample();
        other.ns = 8;
        let forged_body = encode(b"attacker", &other);
        let spliced = format!(
            "{}.{}",
            forged_body.rsplit_once('.').unwrap().0,
            s.rsplit_once('.').unwrap().1
        );
        assert_eq!(decode(key, &spliced), None);
        assert_eq!(decode(key, "garbage"), None);
        // A token of another kind, even signed with the same key, is refused.
        let link = seal(key, "l1", &sample());
        assert_eq!(decode(key, &link), None);
        assert_eq!(open::<Cursor>(key, "l1", &link), Some(sample()));
    }
}
