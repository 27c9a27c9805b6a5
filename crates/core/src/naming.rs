//! Names chosen on conflict: `name (1).txt` for autorename and Dropbox's conflicted copies.

use crate::path::MAX_COMPONENT_CHARS;

/// Splits `name.ext` into (`name`, `.ext`); a leading dot is part of the stem.
fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

/// `name` with `mark` before its extension, the stem shortened so that the result stays
/// within `MAX_COMPONENT_CHARS` (a longer name could be stored but never named by a path);
/// an extension too long to keep beside the mark counts as stem.
fn marked(name: &str, mark: &str) -> String {
    let (mut stem, mut ext) = split_ext(name);
    let mark_chars = mark.chars().count();
    if mark_chars + ext.chars().count() >= MAX_COMPONENT_CHARS {
        (stem, ext) = (name, "");
    }
    let room = MAX_COMPONENT_CHARS - mark_chars - ext.chars().count();
    let stem: String = stem.chars().take(room).collect();
    format!("{stem}{mark}{ext}")
}

/// The `n`th autorename candidate: `report (n).txt`.
pub fn numbered(name: &str, n: u32) -> String {
    marked(name, &format!(" ({n})"))
}

/// The `n`th conflicted-copy candidate, as Dropbox names them.
pub fn conflicted_copy(name: &str, n: u32) -> String {
    if n <= 1 {
        marked(name, " (conflicted copy)")
    } else {
        marked(name, &format!(" (conflicted copy {n})"))
    }
}

/// A size as an operator writes it: bytes, or with a K, M, G or T suffix (powers of 1024,
/// `KiB`/`KB` accepted too), or `none` (no limit: `None`). The error says what is wrong.
pub fn parse_size(s: &str) -> Result<Option<u64>, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a size like 10G, 500M or 1048576"))?;
    let shift = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("'{s}': the unit must be K, M, G or T")),
    };
    n.checked_mul(1 << shift)
        .map(Some)
        .ok_or_else(|| format!("'{s}' is too large"))
}

/// Bytes for people: `12 B`, `1.5 KiB`, `5.0 GiB`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(12), "12 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 << 30), "5.0 GiB");
    }

    #[test]
    fn sizes_as_operators_write_them() {
        assert_eq!(parse_size("none"), Ok(None));
        assert_eq!(parse_size("1048576"), Ok(Some(1 << 20)));
        assert_eq!(parse_size("10G"), Ok(Some(10 << 30)));
        assert_eq!(parse_size(" 500 MiB "), Ok(Some(500 << 20)));
        assert!(parse_size("10X").unwrap_err().contains("unit"));
        assert!(parse_size("lots").unwrap_err().contains("not a size"));
        assert!(
            parse_size("99999999999T")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn names() {
        assert_eq!(numbered("document.txt", 1), "document (1).txt");
        assert_eq!(numbered("archive", 2), "archive (2)");
        assert_eq!(numbered(".bashrc", 1), ".bashrc (1)");
        assert_eq!(conflicted_copy("a.tar.gz", 1), "a.tar (conflicted copy).gz");
        assert_eq!(conflicted_copy("doc.txt", 3), "doc (conflicted copy 3).txt");
    }

    #[test]
    fn long_names_stay_valid() {
        // A 255-character name's candidates were longer than a path component may be: the
        // store kept them, and no path could name them again (found by fuzz/planner).
        let long = format!("{}.txt", "é".repeat(251));
        for n in [1, 2, 10, u32::MAX] {
            for name in [conflicted_copy(&long, n), numbered(&long, n)] {
                assert_eq!(name.chars().count(), MAX_COMPONENT_CHARS, "{name}");
                assert!(name.ends_with(").txt") && name.starts_with("éé"));
            }
        }
        assert_ne!(numbered(&long, 9), numbered(&long, 10));
        // An extension too long to keep whole is cut with the stem.
        let long_ext = format!("a.{}", "x".repeat(253));
        let copy = conflicted_copy(&long_ext, 1);
        assert_eq!(copy.chars().count(), MAX_COMPONENT_CHARS);
        assert!(copy.starts_with("a.xx") && copy.ends_with("x (conflicted copy)"));
    }
}
