//! `cubby_core::path`: the path-argument parser under every Stone pattern and the string
//! helpers the store builds its keys and subtree moves from.
//!
//! Checks, on any input: nothing panics; a pattern accepts exactly its forms; a parsed path
//! keeps its input as its display form and obeys the rules `RelPath::parse` states (components
//! non-empty, not `.` or `..`, at most 255 characters, no NUL, no trailing `/` or whitespace);
//! its lower form is the component-wise fold of its display form, so folding commutes with
//! taking names and parents; `parent_of`, `name_of` and `ancestors` take it apart and put it
//! back together; `is_within` agrees with the ancestors in both display and lower form.
#![no_main]

use cubby_core::path::{
    self, MAX_COMPONENT_CHARS, PathArg, PathError, Pattern, RelPath, ancestors, is_within, lower,
    name_of, parent_of,
};
use libfuzzer_sys::fuzz_target;

const PATTERNS: [Pattern; 6] = [
    Pattern::Path,
    Pattern::ReadPath,
    Pattern::WritePath,
    Pattern::WritePathOrId,
    Pattern::PathROrId,
    Pattern::PathOrId,
];

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let s: &str = &input;

    // The helpers take any string, valid path or not.
    helpers(s);
    helpers(&lower(s));
    let _ = path::is_disallowed_name(s);

    let results: Vec<_> = PATTERNS.iter().map(|&p| (p, path::parse(s, p))).collect();
    for (pattern, result) in &results {
        match result {
            Ok(arg) => accepted(s, *pattern, arg),
            Err(PathError::Pattern(echo)) => assert_eq!(echo, s, "the error names the input"),
            Err(PathError::Malformed) => {}
        }
    }
    // A `/…` path means the same under every pattern.
    if s.starts_with('/') {
        for (_, result) in &results[1..] {
            assert_eq!(
                result, &results[0].1,
                "{s:?}: a /path depends on its pattern"
            );
        }
    }
    // RelPath::parse agrees with the parser on plain paths.
    if s.starts_with('/') || s.is_empty() {
        match RelPath::parse(s) {
            Ok(rel) if !rel.is_root() => {
                assert_eq!(results[0].1, Ok(PathArg::Path(rel)));
            }
            Ok(_) => assert!(s.is_empty()),
            Err(e) => assert_eq!(results[0].1, Err(e)),
        }
    }
});

/// Checks one accepted argument against the pattern and the input.
fn accepted(s: &str, pattern: Pattern, arg: &PathArg) {
    match arg {
        PathArg::Path(rel) => {
            if rel.is_root() {
                assert_eq!(pattern, Pattern::PathROrId, "only PathROrId takes the root");
                assert!(s.is_empty());
            } else {
                assert_eq!(rel.display(), s, "a path is kept as written");
            }
            valid_rel(rel);
        }
        PathArg::Id { id, rel } => {
            assert!(matches!(
                pattern,
                Pattern::ReadPath | Pattern::WritePathOrId | Pattern::PathROrId | Pattern::PathOrId
            ));
            assert!(id.starts_with("id:") && id.len() > 3 && !id[3..].contains('/'));
            assert_eq!(format!("{id}{}", rel.display()), s);
            valid_rel(rel);
        }
        PathArg::Rev(rev) => {
            assert_eq!(pattern, Pattern::ReadPath, "only ReadPath takes rev:");
            assert!(cubby_core::ids::is_rev(rev));
            assert_eq!(format!("rev:{rev}"), s);
        }
        PathArg::Ns { ns, rel } => {
            assert_ne!(pattern, Pattern::Path, "Path takes no ns:");
            valid_rel(rel);
            // Leading zeros are accepted; the canonical form parses to the same argument.
            let canonical = format!("ns:{ns}{}", rel.display());
            assert_eq!(path::parse(&canonical, pattern).as_ref(), Ok(arg));
            assert!(s.ends_with(rel.display()));
        }
    }
}

/// The rules a validated path obeys, and how its display and lower forms relate.
fn valid_rel(rel: &RelPath) {
    let display = rel.display();
    assert_eq!(rel.lower(), lower(display));
    assert_eq!(rel.name(), name_of(display));
    if rel.is_root() {
        assert_eq!(display, "");
        return;
    }
    assert!(display.starts_with('/'));
    assert!(!display.ends_with('/'));
    assert!(!display.ends_with(char::is_whitespace));
    for comp in display[1..].split('/') {
        assert!(
            !comp.is_empty() && comp != "." && comp != "..",
            "{display:?}"
        );
        assert!(comp.chars().count() <= MAX_COMPONENT_CHARS);
        assert!(!comp.contains('\0'));
    }
    // Every ancestor of a valid path is itself a valid path: a write below a folder creates
    // it, so a name the parser refuses on its own must not slip in as a parent.
    for anc in ancestors(display) {
        assert_eq!(
            RelPath::parse(anc).map(|r| r.display().to_owned()),
            Ok(anc.to_owned()),
            "{display:?} is valid but its ancestor {anc:?} is not"
        );
    }

    // Folding is per component: the lower form of a path is its parent's lower form plus its
    // folded name, so a subtree found by the prefix of its lower path is the right one.
    let low = rel.lower();
    let folded: Vec<String> = display[1..].split('/').map(lower).collect();
    assert_eq!(
        low,
        format!("/{}", folded.join("/")),
        "folding crosses a '/'"
    );
    assert_eq!(lower(&low), low, "folding is idempotent");
    assert_eq!(name_of(&low), lower(name_of(display)));
    assert_eq!(parent_of(&low), lower(parent_of(display)));
    assert!(is_within(&low, &lower(parent_of(display))));
    for anc in ancestors(display) {
        assert!(is_within(&low, &lower(anc)));
    }
}

/// Properties of the helpers on any string.
fn helpers(s: &str) {
    let name = name_of(s);
    let parent = parent_of(s);
    assert!(!name.contains('/'));
    assert!(s.ends_with(name));
    if s.contains('/') {
        assert_eq!(
            format!("{parent}/{name}"),
            s,
            "parent and name put the path back"
        );
    } else {
        assert_eq!((parent, name), ("", s));
    }

    let ancs: Vec<&str> = ancestors(s).collect();
    assert_eq!(ancs.len(), s.matches('/').count().saturating_sub(1));
    for (i, anc) in ancs.iter().enumerate() {
        assert!(s.starts_with(anc) && s.as_bytes()[anc.len()] == b'/');
        if i > 0 {
            assert!(anc.len() > ancs[i - 1].len());
        }
        if s.starts_with('/') {
            assert!(is_within(s, anc), "{s:?} lies within its ancestor {anc:?}");
        }
    }
    if s.starts_with('/') && !parent.is_empty() {
        assert_eq!(
            ancs.last(),
            Some(&parent),
            "the last ancestor is the parent"
        );
    }

    assert!(is_within(s, s));
    assert!(is_within(s, ""));
    assert!(is_within(s, parent));
    // Within means: equal, or the base followed by '/'; never a mere string prefix.
    // (Quadratic, so only on short inputs.)
    for cut in 0..s.len().min(300) {
        if s.is_char_boundary(cut) {
            let base = &s[..cut];
            let expected = base.is_empty() || s.as_bytes()[cut] == b'/';
            assert_eq!(is_within(s, base), expected, "{s:?} within {base:?}");
        }
    }
}
