//! Dropbox path arguments: the forms `""`, `/a/b`, `id:…`, `id:…/rel`, `rev:…` and `ns:N/rel`,
//! their validation, and case folding.
//!
//! A pattern mismatch (the Stone regex of the argument fails) is bad input, answered with 400.
//! A path that matches the pattern but cannot name anything (`//`, `..`, a trailing space,
//! a component over 255 characters) is `malformed_path`, answered with 409.

/// Longest allowed path component, in characters.
pub const MAX_COMPONENT_CHARS: usize = 255;

/// Names Dropbox refuses to store (`WriteError.disallowed_name`), compared in lower case.
const DISALLOWED_NAMES: &[&str] = &[
    "desktop.ini",
    "thumbs.db",
    ".ds_store",
    "icon\r",
    ".dropbox",
    ".dropbox.attr",
];

/// Which path forms an argument accepts: the Stone aliases of `files.stone`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// `Path`: `/…` only.
    Path,
    /// `ReadPath`: `/…`, `id:…`, `rev:…`, `ns:…`; not the root.
    ReadPath,
    /// `WritePath`: `/…`, `ns:…`.
    WritePath,
    /// `WritePathOrId`: `/…`, `ns:…`, `id:…`.
    WritePathOrId,
    /// `PathROrId`: `""`, `/…`, `id:…`, `ns:…`.
    PathROrId,
    /// `PathOrId`: `/…`, `id:…`, `ns:…`.
    PathOrId,
}

/// A parsed path argument, before it is resolved against the caller's root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathArg {
    /// A path relative to the caller's root; `RelPath::root()` is the root itself.
    Path(RelPath),
    /// An item id, optionally with a path below it.
    Id { id: String, rel: RelPath },
    /// A specific file revision.
    Rev(String),
    /// A namespace id, optionally with a path below it.
    Ns { ns: u64, rel: RelPath },
}

/// Why a path argument was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The argument does not match its Stone pattern (HTTP 400).
    #[error("'{0}' did not match pattern")]
    Pattern(String),
    /// The argument matches but names nothing valid (409 `malformed_path`).
    #[error("malformed path")]
    Malformed,
}

/// A validated path of zero or more components, kept as written (display form).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RelPath {
    display: String,
}

impl RelPath {
    pub fn root() -> Self {
        Self::default()
    }

    /// Validates `/a/b` (or `""` for the root).
    pub fn parse(s: &str) -> Result<Self, PathError> {
        if s.is_empty() {
            return Ok(Self::root());
        }
        if !s.starts_with('/') {
            return Err(PathError::Pattern(s.to_owned()));
        }
        if s == "/" || s.ends_with('/') {
            return Err(PathError::Malformed);
        }
        for comp in s[1..].split('/') {
            // No component may end in whitespace, not only the last: a write below `/a `
            // would create the folder `/a `, which no path could then name.
            if comp.is_empty() || comp == "." || comp == ".." || comp.ends_with(char::is_whitespace)
            {
                return Err(PathError::Malformed);
            }
            if comp.chars().count() > MAX_COMPONENT_CHARS || comp.contains('\0') {
                return Err(PathError::Malformed);
            }
        }
        Ok(Self {
            display: s.to_owned(),
        })
    }

    pub fn is_root(&self) -> bool {
        self.display.is_empty()
    }

    /// The path as written, `""` for the root.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The case-folded key.
    pub fn lower(&self) -> String {
        lower(&self.display)
    }

    /// The last component, `""` for the root.
    pub fn name(&self) -> &str {
        name_of(&self.display)
    }

    /// This path joined below `base` (a display path, `""` for the root).
    pub fn under(&self, base: &str) -> String {
        format!("{base}{}", self.display)
    }
}

/// Parses a path argument according to its pattern.
pub fn parse(s: &str, pattern: Pattern) -> Result<PathArg, PathError> {
    let pattern_err = || PathError::Pattern(s.to_owned());
    if let Some(rest) = s.strip_prefix("id:") {
        if !matches!(
            pattern,
            Pattern::ReadPath | Pattern::WritePathOrId | Pattern::PathROrId | Pattern::PathOrId
        ) {
            return Err(pattern_err());
        }
        let (id, rel) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if id.is_empty() {
            return Err(PathError::Malformed);
        }
        return Ok(PathArg::Id {
            id: format!("id:{id}"),
            rel: RelPath::parse(rel)?,
        });
    }
    if let Some(rest) = s.strip_prefix("rev:") {
        if pattern != Pattern::ReadPath {
            return Err(pattern_err());
        }
        if !crate::ids::is_rev(rest) {
            return Err(pattern_err());
        }
        return Ok(PathArg::Rev(rest.to_owned()));
    }
    if let Some(rest) = s.strip_prefix("ns:") {
        if pattern == Pattern::Path {
            return Err(pattern_err());
        }
        let (digits, rel) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return Err(pattern_err());
        }
        let ns = digits.parse().map_err(|_| PathError::Malformed)?;
        return Ok(PathArg::Ns {
            ns,
            rel: RelPath::parse(rel)?,
        });
    }
    if s.is_empty() {
        return if pattern == Pattern::PathROrId {
            Ok(PathArg::Path(RelPath::root()))
        } else {
            Err(pattern_err())
        };
    }
    if !s.starts_with('/') {
        return Err(pattern_err());
    }
    Ok(PathArg::Path(RelPath::parse(s)?))
}

/// The key every path comparison uses: lower case, then Unicode NFC, as Dropbox's
/// `path_lower` is. So `é` sent composed (NFC, as Linux and Windows write it) and decomposed
/// (NFD, as macOS writes it) name one file, whichever form its display name keeps. The NFC
/// of a lowered string is its own key (`lower(lower(s)) == lower(s)`), which is what lets
/// migration 16 re-key stored rows from their old keys alone.
pub fn lower(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    let lowered = s.to_lowercase();
    match unicode_normalization::is_nfc_quick(lowered.chars()) {
        unicode_normalization::IsNormalized::Yes => lowered,
        _ => lowered.nfc().collect(),
    }
}

/// The last component of a display or lower path.
pub fn name_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// The parent of a path, `""` for a top-level item or the root.
pub fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[..i],
        None => "",
    }
}

/// Every proper ancestor of `path`, shortest first, excluding the root.
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/')
        .skip(1)
        .map(move |(i, _)| &path[..i])
}

/// Whether `path` is `base` or lies below it (both lower-case; `""` is the root).
pub fn is_within(path: &str, base: &str) -> bool {
    base.is_empty()
        || path == base
        || (path.len() > base.len()
            && path.starts_with(base)
            && path.as_bytes()[base.len()] == b'/')
}

/// Whether a name may be written (`WriteError.disallowed_name` otherwise).
pub fn is_disallowed_name(name: &str) -> bool {
    let l = lower(name);
    DISALLOWED_NAMES.contains(&l.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_folds_case_and_unicode_normalization() {
        let nfc = "Caf\u{e9}.TXT";
        let nfd = "Cafe\u{301}.txt";
        assert_eq!(lower(nfc), "caf\u{e9}.txt");
        assert_eq!(lower(nfd), lower(nfc));
        assert_eq!(lower("E\u{301}T\u{c9}"), "\u{e9}t\u{e9}");
        // Hangul, decomposed into jamo by macOS.
        assert_eq!(lower("\u{1100}\u{1161}"), "\u{ac00}");
        assert_eq!(lower("ABC/dEf"), "abc/def");
        for s in [
            nfd,
            "\u{130}stanbul",
            "\u{1e9e}",
            "\u{3a3}\u{3a3}",
            "A\u{30a}",
        ] {
            assert_eq!(lower(&lower(s)), lower(s), "{s:?}");
        }
    }

    fn check(s: &str, p: Pattern) -> Result<PathArg, PathError> {
        parse(s, p)
    }

    #[test]
    fn forms() {
        assert_eq!(
            check("/A/b", Pattern::ReadPath),
            Ok(PathArg::Path(RelPath::parse("/A/b").unwrap()))
        );
        assert!(matches!(
            check("", Pattern::ReadPath),
            Err(PathError::Pattern(_))
        ));
        assert!(matches!(check("", Pattern::PathROrId), Ok(PathArg::Path(p)) if p.is_root()));
        assert!(
            matches!(check("id:abc/x", Pattern::ReadPath), Ok(PathArg::Id { id, rel }) if id == "id:abc" && rel.display() == "/x")
        );
        assert!(matches!(
            check("id:abc", Pattern::WritePath),
            Err(PathError::Pattern(_))
        ));
        assert!(matches!(
            check("rev:0123456789", Pattern::ReadPath),
            Ok(PathArg::Rev(_))
        ));
        assert!(matches!(
            check("rev:01234", Pattern::ReadPath),
            Err(PathError::Pattern(_))
        ));
        assert!(matches!(
            check("rev:0123456789", Pattern::WritePath),
            Err(PathError::Pattern(_))
        ));
        assert!(matches!(
            check("ns:12/a", Pattern::WritePath),
            Ok(PathArg::Ns { ns: 12, .. })
        ));
        assert!(matches!(
            check("ns:x", Pattern::WritePath),
            Err(PathError::Pattern(_))
        ));
        assert!(matches!(
            check("relative", Pattern::ReadPath),
            Err(PathError::Pattern(_))
        ));
    }

    #[test]
    fn malformed() {
        for bad in ["/", "/a/", "/a ", "/a//b", "/a/./b", "/a/../b"] {
            assert_eq!(
                check(bad, Pattern::ReadPath),
                Err(PathError::Malformed),
                "{bad:?}"
            );
        }
        let long = format!("/{}", "é".repeat(256));
        assert_eq!(check(&long, Pattern::ReadPath), Err(PathError::Malformed));
        let ok = format!("/{}", "é".repeat(255));
        assert!(check(&ok, Pattern::ReadPath).is_ok());
        // Not only the last component: `/a /b` would create the folder `/a ` (found by fuzz/).
        for bad in ["/a /b", "/a\t/b/c"] {
            assert_eq!(check(bad, Pattern::WritePath), Err(PathError::Malformed));
        }
        assert!(check("/a b/ c", Pattern::ReadPath).is_ok());
    }

    #[test]
    fn helpers() {
        assert_eq!(ancestors("/a/b/c").collect::<Vec<_>>(), vec!["/a", "/a/b"]);
        assert_eq!(parent_of("/a/b"), "/a");
        assert_eq!(parent_of("/a"), "");
        assert_eq!(name_of("/a/Bé"), "Bé");
        assert!(is_within("/a/b", "/a"));
        assert!(!is_within("/ab", "/a"));
        assert!(is_within("/x", ""));
        assert_eq!(lower("/ÄB"), "/äb");
        assert!(is_disallowed_name("Desktop.INI"));
    }
}
