//! Dropbox wire helpers: `error_summary`, header-safe JSON and Stone union input.

use serde_json::Value;

/// The `error_summary` of an error value: the chain of union tags joined by `/`, then `/`.
///
/// A member whose value is a union is nested under its tag; a member whose value is a struct
/// is flattened, and the chain then continues through that struct's first union-valued field.
/// Dropbox appends a random number of dots so that clients do not parse the summary; callers
/// add those.
pub fn error_summary(err: &Value) -> String {
    let mut out = String::new();
    let mut cur = err;
    while let Some(tag) = cur.get(".tag").and_then(Value::as_str) {
        out.push_str(tag);
        out.push('/');
        match cur.get(tag) {
            Some(v) if v.get(".tag").is_some() => cur = v,
            _ => match cur.as_object().and_then(|o| {
                o.iter()
                    .find(|(k, v)| k.as_str() != ".tag" && v.get(".tag").is_some())
            }) {
                Some((_, v)) => cur = v,
                None => break,
            },
        }
    }
    out
}

/// Serializes JSON for an HTTP header: every character outside printable ASCII is escaped
/// as `\uXXXX` (UTF-16 surrogate pairs above the BMP), as Dropbox's JSON-encoding page asks.
pub fn header_safe_json(v: &Value) -> String {
    let raw = serde_json::to_string(v).expect("JSON value serializes");
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if (' '..'\u{7f}').contains(&c) {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes and `+` (a space, as forms encode it); a malformed escape stays as
/// it is.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let byte = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
                match byte {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads a Stone union argument: the bare string `"add"` or `{".tag": "add", …}`.
/// Returns the tag and the object (if any) for reading member values.
pub fn union_tag(v: &Value) -> Option<(&str, Option<&serde_json::Map<String, Value>>)> {
    match v {
        Value::String(s) => Some((s.as_str(), None)),
        Value::Object(o) => Some((o.get(".tag")?.as_str()?, Some(o))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_coding() {
        assert_eq!(percent_decode("a%20b+c%2F%zz%4"), "a b c/%zz%4");
        assert_eq!(percent_decode("%E2%9C%93"), "✓");
        let s = "http://127.0.0.1:5/cb?x=1&y=é";
        assert_eq!(percent_decode(&percent_encode(s)), s);
    }
    use serde_json::json;

    #[test]
    fn summaries() {
        let e = json!({".tag": "path", "path": {".tag": "not_found"}});
        assert_eq!(error_summary(&e), "path/not_found/");
        let e = json!({".tag": "path", "reason": {".tag": "conflict", "conflict": {".tag": "file"}}, "upload_session_id": "x"});
        assert_eq!(error_summary(&e), "path/conflict/file/");
        let e = json!({".tag": "missing_scope", "required_scope": "files.content.read"});
        assert_eq!(error_summary(&e), "missing_scope/");
        let e = json!({".tag": "path", "path": {".tag": "malformed_path"}});
        assert_eq!(error_summary(&e), "path/malformed_path/");
    }

    #[test]
    fn header_escaping() {
        let v = json!({"name": "Téxt 日本 \u{1F600}\u{7f}"});
        let s = header_safe_json(&v);
        assert!(s.is_ascii());
        assert!(s.contains("T\\u00e9xt"));
        assert!(s.contains("\\ud83d\\ude00"));
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn unions() {
        assert_eq!(union_tag(&json!("add")).unwrap().0, "add");
        let v = json!({".tag": "update", "update": "0123456789"});
        let (t, o) = union_tag(&v).unwrap();
        assert_eq!(
            (t, o.unwrap()["update"].as_str()),
            ("update", Some("0123456789"))
        );
        assert!(union_tag(&json!(3)).is_none());
    }
}
