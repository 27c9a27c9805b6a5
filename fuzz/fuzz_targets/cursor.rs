//! `cubby_core::cursor`: sealed tokens (list_folder cursors, temporary links, link cursors).
//!
//! Input: a first byte choosing the case, then a token as text (case 0, so that seeds can be
//! real tokens) or the `arbitrary` encoding of the case's fields.
//!
//! Checks: opening any string under a key the input does not know never panics and succeeds
//! only for a token sealed under that key, byte for byte (the seeds hold a few); bytes correctly
//! signed under a key (so the decoder's JSON and field checks are
//! reached) never panic, and what opens seals back to the same value; every cursor round-trips
//! through `seal`/`open` and `encode`/`decode`; the same token opened under another key, as
//! another kind, truncated, or with any one character changed, does not open.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cubby_core::cursor::{self, Cursor, MountPos, Position};
use hmac::{KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The server's key in the `Open` case. The input never sees it, so nothing it holds may open.
const SECRET: &[u8; 32] =
    b"\x9b\x12\xe4\x01fuzz-secret-key\x00\x7f\xff\x80\x33\x44\x55\x66\x77\x88\x99\xaa\xbb";

/// The kinds the server seals: list_folder cursors, temporary links, shared-link cursors.
const KINDS: [&str; 3] = ["c1", "l1", "k1"];

#[derive(Arbitrary, Debug)]
enum Input {
    /// Arbitrary body bytes, correctly signed: what the decoder sees past the MAC check.
    Signed {
        key: Vec<u8>,
        kind: u8,
        body: Vec<u8>,
        /// Send the body as given instead of base64url-encoding it first.
        raw_body: bool,
    },
    /// A cursor sealed, opened, and tampered with.
    RoundTrip {
        key: Vec<u8>,
        kind: String,
        cursor: ArbCursor,
        tamper: Vec<(u16, u8)>,
        cut: u16,
    },
}

#[derive(Arbitrary, Debug)]
struct ArbCursor {
    ns: u64,
    account: i64,
    folder: String,
    base: String,
    recursive: bool,
    include_deleted: bool,
    limit: Option<u32>,
    listing: Option<String>,
    seq: u64,
    idx: u32,
    /// The mount point of a listing inside a shared folder.
    at: Option<String>,
    /// Shared folders mounted below a home listing: (namespace, mount point, seq, idx).
    mounts: Vec<(u64, String, u64, u32)>,
}

impl ArbCursor {
    fn cursor(self) -> Cursor {
        Cursor {
            ns: self.ns,
            account: self.account,
            folder: self.folder,
            base: self.base,
            recursive: self.recursive,
            include_deleted: self.include_deleted,
            limit: self.limit,
            pos: match self.listing {
                Some(after) => Position::Listing {
                    after,
                    seq: self.seq,
                    idx: self.idx,
                },
                None => Position::Changes {
                    seq: self.seq,
                    idx: self.idx,
                },
            },
            at: self.at,
            mounts: self
                .mounts
                .into_iter()
                .map(|(ns, at, seq, idx)| MountPos {
                    ns,
                    at,
                    pos: Position::Changes { seq, idx },
                })
                .collect(),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&case, rest)) = data.split_first() else {
        return;
    };
    if case % 3 == 0 {
        open_secret(&String::from_utf8_lossy(rest));
    } else if let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(rest)) {
        sealed(input);
    }
});

/// Any string, opened under the secret key as every kind: only a token `seal` made with that
/// key opens, and it is the one `seal` makes again from what it holds.
fn open_secret(token: &str) {
    for kind in KINDS {
        let as_value = cursor::open::<Value>(SECRET, kind, token);
        match cursor::open::<Cursor>(SECRET, kind, token) {
            Some(c) => assert_eq!(cursor::seal(SECRET, kind, &c), token, "{token:?} opened"),
            None => assert!(as_value.is_none(), "{token:?} opened"),
        }
    }
    if let Some(c) = cursor::decode(SECRET, token) {
        assert_eq!(cursor::encode(SECRET, &c), token);
    }
    let _ = cursor::derive(SECRET, token, token.as_bytes());
}

fn sealed(input: Input) {
    match input {
        Input::Signed {
            key,
            kind,
            body,
            raw_body,
        } => {
            let kind = KINDS[kind as usize % KINDS.len()];
            let body = if raw_body {
                String::from_utf8_lossy(&body).into_owned()
            } else {
                URL_SAFE_NO_PAD.encode(&body)
            };
            let token = format!(
                "{kind}.{body}.{}",
                URL_SAFE_NO_PAD.encode(mac(&key, kind, &body))
            );
            if let Some(c) = cursor::open::<Cursor>(&key, kind, &token) {
                let again = cursor::seal(&key, kind, &c);
                assert_eq!(cursor::open::<Cursor>(&key, kind, &again), Some(c));
            }
            if let Some(v) = cursor::open::<Value>(&key, kind, &token) {
                let again = cursor::seal(&key, kind, &v);
                let reopened = cursor::open::<Value>(&key, kind, &again);
                // serde_json reads decimal fractions with a fast, not always exact, algorithm, so
                // a float may come back one unit in the last place off. No token the server seals
                // holds a float; every other value must come back exactly.
                if !has_float(&v) {
                    assert_eq!(reopened, Some(v));
                } else {
                    assert!(reopened.is_some());
                }
            }
            // What opens under the key opens under no other.
            assert!(cursor::open::<Value>(&other_key(&key), kind, &token).is_none());
        }
        Input::RoundTrip {
            key,
            kind,
            cursor: arb,
            tamper,
            cut,
        } => {
            let c = arb.cursor();
            let token = cursor::seal(&key, &kind, &c);
            // `kind.body.signature`: body and signature are URL-safe base64 without padding.
            let sealed = &token[kind.len()..];
            assert!(sealed.starts_with('.'));
            assert!(
                sealed
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            );
            assert_eq!(sealed.matches('.').count(), 2);
            let opened = cursor::open::<Cursor>(&key, &kind, &token);
            if kind.contains('.') {
                // A kind holding the separator can never be told apart from the body; the server's
                // kinds are constants without one.
                assert_eq!(opened, None);
                return;
            }
            assert_eq!(opened.as_ref(), Some(&c), "seal then open round-trips");
            if kind == "c1" {
                assert_eq!(cursor::encode(&key, &c), token);
            }
            assert_eq!(
                cursor::decode(&key, &cursor::encode(&key, &c)),
                Some(c.clone())
            );

            assert_eq!(
                cursor::open::<Cursor>(&other_key(&key), &kind, &token),
                None
            );
            for other in KINDS.iter().copied().chain([""]) {
                if other != kind {
                    assert_eq!(cursor::open::<Value>(&key, other, &token), None);
                }
            }
            assert_eq!(
                cursor::open::<Value>(&key, &format!("{kind}x"), &token),
                None
            );

            let cut = token.floor_char_boundary(cut as usize % token.len());
            assert_eq!(
                cursor::open::<Value>(&key, &kind, &token[..cut]),
                None,
                "truncated"
            );
            assert_eq!(
                cursor::open::<Value>(&key, &kind, &format!("{token}.")),
                None
            );
            assert_eq!(
                cursor::open::<Value>(&key, &kind, &format!("{token}A")),
                None
            );

            let mut bytes: Vec<char> = token.chars().collect();
            for (at, byte) in tamper.into_iter().take(4) {
                let at = at as usize % bytes.len();
                let replacement = char::from(byte);
                if bytes[at] == replacement {
                    continue;
                }
                let saved = bytes[at];
                bytes[at] = replacement;
                let tampered: String = bytes.iter().collect();
                assert_eq!(
                    cursor::open::<Value>(&key, &kind, &tampered),
                    None,
                    "{tampered:?} (one character changed) opened"
                );
                bytes[at] = saved;
            }
        }
    }
}

/// Whether a JSON value holds a number that is not an integer anywhere inside it.
fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(map) => map.values().any(has_float),
        _ => false,
    }
}

/// The MAC `seal` puts on `kind.body`.
fn mac(key: &[u8], kind: &str, body: &str) -> Vec<u8> {
    let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).expect("any key");
    m.update(format!("{kind}.{body}").as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// A key that differs from `key` as an HMAC key (HMAC pads short keys with zeros, so `k` and
/// `k\0` are the same key; flipping a bit of the same length never is).
fn other_key(key: &[u8]) -> Vec<u8> {
    let mut other = key.to_vec();
    match other.first_mut() {
        Some(b) => *b ^= 1,
        None => other.push(1),
    }
    other
}
