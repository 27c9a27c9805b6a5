//! The argument and wire helpers of `cubby_core`: `wire` (error summaries, header-safe JSON,
//! union input, percent coding), `time` (Dropbox timestamps), `ids` and `naming`.
//!
//! Checks, on any bytes: nothing panics; `header_safe_json` is printable ASCII (a valid HTTP
//! header value) that parses back to the same JSON as the plain serialization; an
//! `error_summary` is `tag/…/` starting with the value's own tag; `union_tag` reads the
//! `.tag`; percent coding round-trips; a timestamp that parses formats back to one that parses
//! to the same instant (and only an impossible day or a leap second is written differently);
//! generated revs and ids are accepted by the path parser; conflicted-copy and autorename
//! candidates are distinct from the name and from each other.
#![no_main]

use cubby_core::path::{self, PathArg, Pattern};
use cubby_core::{ids, naming, time, wire};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        json(&v);
    }
    let text = String::from_utf8_lossy(data);
    let s: &str = &text;
    // The string as a JSON value too: escaping must cover every character.
    json(&Value::String(s.to_owned()));

    // Percent coding.
    let encoded = wire::percent_encode(s);
    assert!(
        encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b))
    );
    assert_eq!(wire::percent_decode(&encoded), s);
    let _ = wire::percent_decode(s);

    timestamps(s, data);
    identifiers(s, data);
});

fn json(v: &Value) {
    // error_summary: the chain of tags, each followed by '/'.
    let summary = wire::error_summary(v);
    assert!(summary.is_empty() || summary.ends_with('/'));
    match v.get(".tag").and_then(Value::as_str) {
        Some(tag) => assert!(summary.starts_with(&format!("{tag}/")), "{summary:?}"),
        None => assert_eq!(summary, ""),
    }

    // header_safe_json: printable ASCII only, and the same JSON.
    let header = wire::header_safe_json(v);
    assert!(
        header.bytes().all(|b| (0x20..0x7f).contains(&b)),
        "not a header value: {header:?}"
    );
    let plain = serde_json::to_string(v).unwrap();
    let expected: Value = serde_json::from_str(&plain).unwrap();
    let back: Value = serde_json::from_str(&header).expect("header JSON parses");
    assert_eq!(back, expected, "escaping changed the value");
    if plain.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        assert_eq!(header, plain, "printable JSON is left as it is");
    }

    // union_tag: a bare string, or an object's ".tag".
    match (v, wire::union_tag(v)) {
        (Value::String(s), Some((tag, None))) => assert_eq!(tag, s),
        (Value::Object(o), Some((tag, Some(members)))) => {
            assert_eq!(o.get(".tag").and_then(Value::as_str), Some(tag));
            assert_eq!(members, o);
        }
        (Value::Object(o), None) => assert!(o.get(".tag").and_then(Value::as_str).is_none()),
        (Value::String(_) | Value::Object(_), other) => panic!("union_tag gave {other:?}"),
        (_, other) => assert!(other.is_none()),
    }
}

fn timestamps(s: &str, data: &[u8]) {
    if let Some(t) = time::parse(s) {
        let formatted = time::format(t);
        assert_eq!(time::parse(&formatted), Some(t), "{s:?} -> {formatted:?}");
        if formatted != s {
            // Parsing is lenient about the day of the month (Feb 31 is Mar 3) and accepts a
            // leap second (:60, the next minute); anything else must be written back as read.
            let day: u32 = s[8..10].parse().unwrap();
            let second: u32 = s[17..19].parse().unwrap();
            assert!(day > 28 || second == 60, "{s:?} formats as {formatted:?}");
        }
    }
    if data.len() >= 8 {
        let secs = i64::from_le_bytes(data[..8].try_into().unwrap());
        let formatted = time::format(secs);
        // Four-digit years (0000 to 9999) are the ones a timestamp can hold.
        if (-62_167_219_200..=253_402_300_799).contains(&secs) {
            assert_eq!(formatted.len(), 20);
            assert_eq!(
                time::parse(&formatted),
                Some(secs),
                "{secs} -> {formatted:?}"
            );
        }
    }
}

fn identifiers(s: &str, data: &[u8]) {
    if ids::is_rev(s) {
        assert!(matches!(
            path::parse(&format!("rev:{s}"), Pattern::ReadPath),
            Ok(PathArg::Rev(rev)) if rev == s
        ));
    }
    if data.len() >= 16 {
        let seq = u64::from_le_bytes(data[..8].try_into().unwrap());
        let idx = u32::from_le_bytes(data[8..12].try_into().unwrap());
        let random = u32::from_le_bytes(data[12..16].try_into().unwrap());
        let rev = ids::rev(seq, idx, random);
        assert!(ids::is_rev(&rev), "{rev:?}");
        let id = ids::file_id(seq, data[..9].try_into().unwrap());
        assert_eq!(id.len(), 25);
        assert!(matches!(
            path::parse(&id, Pattern::PathOrId),
            Ok(PathArg::Id { id: parsed, rel }) if parsed == id && rel.is_root()
        ));
    }

    let name = path::name_of(s);
    let folded = path::lower(name);
    let mut seen = std::collections::BTreeSet::new();
    for n in 1..5 {
        for candidate in [naming::conflicted_copy(name, n), naming::numbered(name, n)] {
            assert_ne!(
                path::lower(&candidate),
                folded,
                "{candidate:?} is the name itself"
            );
            assert!(seen.insert(candidate.clone()), "{candidate:?} twice");
        }
    }
}
