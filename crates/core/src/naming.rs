//! Names chosen on conflict: `name (1).txt` for autorename and Dropbox's conflicted copies.

/// Splits `name.ext` into (`name`, `.ext`); a leading dot is part of the stem.
fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

/// The `n`th autorename candidate: `report (n).txt`.
pub fn numbered(name: &str, n: u32) -> String {
    let (stem, ext) = split_ext(name);
    format!("{stem} ({n}){ext}")
}

/// The `n`th conflicted-copy candidate, as Dropbox names them.
pub fn conflicted_copy(name: &str, n: u32) -> String {
    let (stem, ext) = split_ext(name);
    if n <= 1 {
        format!("{stem} (conflicted copy){ext}")
    } else {
        format!("{stem} (conflicted copy {n}){ext}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(numbered("document.txt", 1), "document (1).txt");
        assert_eq!(numbered("archive", 2), "archive (2)");
        assert_eq!(numbered(".bashrc", 1), ".bashrc (1)");
        assert_eq!(conflicted_copy("a.tar.gz", 1), "a.tar (conflicted copy).gz");
        assert_eq!(conflicted_copy("doc.txt", 3), "doc (conflicted copy 3).txt");
    }
}
