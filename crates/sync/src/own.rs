//! Where the client keeps its own files, and the rule that they are never backed up or
//! synced: the configuration (`$CUBBY_CONFIG`, else `$XDG_CONFIG_HOME/cubby/config.json`),
//! the state (`$XDG_STATE_HOME/cubby`: backup indexes, sync state) and the caches
//! (`$XDG_CACHE_HOME/cubby`: resumable uploads), with the usual defaults under `$HOME`.
//! A Pi user backing up `/home/pi` has all three inside the source: a backup of the index
//! it is writing would never be the same twice. Whatever the patterns say, a walk leaves
//! them out.

use std::path::{Path, PathBuf};

fn base(var: &str, home_default: &[&str]) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| home_default.iter().fold(PathBuf::from(h), |p, c| p.join(c)))
        })
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The configuration file.
pub fn config_path() -> PathBuf {
    if let Some(p) = std::env::var_os("CUBBY_CONFIG") {
        return PathBuf::from(p);
    }
    base("XDG_CONFIG_HOME", &[".config"])
        .join("cubby")
        .join("config.json")
}

/// The folder of the client's state (`KIND/…` files beneath it).
pub fn state_dir() -> PathBuf {
    base("XDG_STATE_HOME", &[".local", "state"]).join("cubby")
}

/// The folder of the client's caches.
pub fn cache_dir() -> PathBuf {
    base("XDG_CACHE_HOME", &[".cache"]).join("cubby")
}

/// The client's own files and folders: the configuration file (it holds tokens), the state
/// and the caches.
pub fn paths() -> Vec<PathBuf> {
    vec![config_path(), state_dir(), cache_dir()]
}

/// Which of `own` lie inside `root`, as paths relative to it (`a/b`, no leading slash):
/// what a walk of `root` must leave out.
pub fn inside(root: &Path, own: &[PathBuf]) -> Vec<String> {
    let Ok(root) = root.canonicalize() else {
        return Vec::new();
    };
    let mut out: Vec<String> = own
        .iter()
        .filter_map(|p| canonical_or_absolute(p).ok())
        .filter_map(|p| {
            p.strip_prefix(&root)
                .ok()
                .and_then(|rel| rel.to_str().map(str::to_owned))
        })
        .filter(|rel| !rel.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The canonical path, or for a path that does not exist yet, its existing ancestor's
/// canonical path joined with the rest (the state folder appears during the first run).
fn canonical_or_absolute(p: &Path) -> std::io::Result<PathBuf> {
    let abs = std::path::absolute(p)?;
    let mut missing = Vec::new();
    let mut cur = abs.as_path();
    loop {
        if let Ok(c) = cur.canonicalize() {
            return Ok(missing.iter().rev().fold(c, |acc, m| acc.join(m)));
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_owned());
                cur = parent;
            }
            _ => return Ok(abs),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_folders_inside_the_root_are_found_even_before_they_exist() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        std::fs::create_dir_all(h.join(".config/cubby")).unwrap();
        let own = [
            h.join(".config/cubby/config.json"),
            // Not created yet.
            h.join(".local/state/cubby"),
            std::path::PathBuf::from("/elsewhere/cubby"),
        ];
        assert_eq!(
            super::inside(h, &own),
            [".config/cubby/config.json", ".local/state/cubby"]
        );
        let other = tempfile::tempdir().unwrap();
        assert!(super::inside(other.path(), &own).is_empty());
    }
}
