//! Identifier formats: file ids, revs, account ids and tokens, built from random bytes
//! that the caller supplies (this crate does no I/O, so it draws no randomness itself).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `id:` plus 22 base64url characters, like Dropbox's file and folder ids: the creation time
/// in microseconds (7 bytes, big-endian), then 72 random bits. Ids of entries created
/// together share their first characters, so a batch of new files adds to a few pages of the
/// indexes by file id instead of one page each.
pub fn file_id(micros: u64, random: [u8; 9]) -> String {
    let mut b = [0u8; 16];
    b[..7].copy_from_slice(&micros.to_be_bytes()[1..]);
    b[7..].copy_from_slice(&random);
    format!("id:{}", URL_SAFE_NO_PAD.encode(b))
}

/// `dbid:` plus 35 characters: exactly 40, as `users.AccountId` requires.
pub fn account_id(random: [u8; 27]) -> String {
    let mut s = URL_SAFE_NO_PAD.encode(random);
    s.truncate(35);
    format!("dbid:{s}")
}

/// A rev: lowercase hex, the journal sequence first so revs of one namespace sort by age,
/// then the position within the operation (one operation may write thousands of files, as a
/// folder copy does, and their revs must differ), then 24 random bits so revs are not
/// guessable across namespaces.
pub fn rev(seq: u64, idx: u32, random: u32) -> String {
    format!("{seq:09x}{idx:05x}{:06x}", random & 0xff_ffff)
}

/// Whether `s` matches Stone's `Rev` pattern: lowercase hex, at least 9 characters.
pub fn is_rev(s: &str) -> bool {
    s.len() >= 9
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// An opaque bearer token: a type prefix and 32 random bytes.
pub fn token(prefix: &str, random: [u8; 32]) -> String {
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(random))
}

/// A generated app key: 20 lowercase letters and digits, as Dropbox's keys look, so it is
/// never read as a command-line option (a base64url key could start with '-').
pub fn app_key(random: [u8; 20]) -> String {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    random
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// A generated password of 20 base64url characters (120 bits).
pub fn password(random: [u8; 15]) -> String {
    URL_SAFE_NO_PAD.encode(random)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_keys_are_letters_and_digits() {
        let k = app_key([0xff; 20]);
        assert_eq!(k.len(), 20);
        assert!(
            k.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_eq!(app_key([0; 20]), "aaaaaaaaaaaaaaaaaaaa");
    }

    #[test]
    fn formats() {
        assert_eq!(account_id([7; 27]).len(), 40);
        let id = file_id(u64::MAX, [255; 9]);
        assert!(id.starts_with("id:") && !id.contains('/'));
        assert_eq!(id.len(), 25);
        // The time comes first: ids made microseconds apart share their first 8 characters
        // (48 bits), whatever their random part; the random part tells them apart.
        let t = 1_780_000_000_000_000 & !0xff;
        let (a, b) = (file_id(t, [0; 9]), file_id(t + 5, [255; 9]));
        assert_eq!(a[..11], b[..11]);
        assert_ne!(file_id(t, [0; 9]), file_id(t, [1; 9]));
        assert_ne!(
            file_id(t, [0; 9])[..11],
            file_id(t + (1 << 20), [0; 9])[..11]
        );
        let r = rev(1, 2, 0xabcdef);
        assert_eq!(r, "00000000100002abcdef");
        assert_ne!(
            rev(7, 0, 5),
            rev(7, 1, 5),
            "files of one operation differ by position"
        );
        assert!(
            rev(7, 0xfffff, 0xffffff) < rev(8, 0, 0),
            "revs sort by sequence"
        );
        assert!(
            is_rev(&r) && !is_rev("ABCDEF0123") && !is_rev("01234567") && !is_rev("0123456789g")
        );
        assert!(
            r.len() >= 9
                && r.bytes()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }
}
