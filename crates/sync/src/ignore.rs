//! Gitignore-style exclusion patterns, for `--exclude` and `.cubbyignore` files.
//!
//! The subset of gitignore that backups need: `*` (within a name), `**` (any number of
//! folders), `?`, a leading `/` (anchored to the folder that holds the pattern), a trailing
//! `/` (folders only), a `/` inside (a path relative to that folder, else a name anywhere
//! below it), `!` (re-include), `#` comments and blank lines. The last matching pattern
//! wins, as in git. Character classes (`[abc]`) are not supported and match literally.

/// One pattern, with the folder (relative, `/`-separated, "" for the root) it applies to.
#[derive(Clone, Debug)]
struct Pattern {
    base: String,
    glob: Vec<Segment>,
    anchored: bool,
    dir_only: bool,
    negated: bool,
}

#[derive(Clone, Debug, PartialEq)]
enum Segment {
    /// `**`: zero or more folders.
    Any,
    /// A name pattern with `*` and `?`.
    Name(String),
}

/// A set of patterns; later ones win.
#[derive(Clone, Debug, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

impl Ignore {
    /// Adds the lines of an ignore file (or `--exclude` values) found in folder `base`.
    pub fn add_lines(&mut self, base: &str, text: &str) {
        for line in text.lines() {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negated, rest) = match line.strip_prefix('!') {
                Some(r) => (true, r),
                None => (false, line.strip_prefix('\\').unwrap_or(line)),
            };
            let dir_only = rest.ends_with('/');
            let rest = rest.trim_end_matches('/');
            let anchored = rest.starts_with('/') || rest.trim_start_matches('/').contains('/');
            let rest = rest.trim_start_matches('/');
            if rest.is_empty() {
                continue;
            }
            let glob = rest
                .split('/')
                .map(|s| {
                    if s == "**" {
                        Segment::Any
                    } else {
                        Segment::Name(s.to_owned())
                    }
                })
                .collect();
            self.patterns.push(Pattern {
                base: base.to_owned(),
                glob,
                anchored,
                dir_only,
                negated,
            });
        }
    }

    /// Whether the relative path (`/`-separated) is excluded.
    pub fn is_excluded(&self, rel: &str, is_dir: bool) -> bool {
        let mut excluded = false;
        for p in &self.patterns {
            if p.dir_only && !is_dir {
                continue;
            }
            let Some(inside) = strip_base(rel, &p.base) else {
                continue;
            };
            let parts: Vec<&str> = inside.split('/').collect();
            let hit = if p.anchored {
                match_segments(&p.glob, &parts)
            } else {
                // A bare name matches that name at any depth below the base.
                parts.last().is_some_and(|last| match &p.glob[..] {
                    [Segment::Name(n)] => match_name(n, last),
                    _ => false,
                })
            };
            if hit {
                excluded = !p.negated;
            }
        }
        excluded
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

fn strip_base<'a>(rel: &'a str, base: &str) -> Option<&'a str> {
    if base.is_empty() {
        return Some(rel);
    }
    rel.strip_prefix(base)?.strip_prefix('/')
}

fn match_segments(glob: &[Segment], parts: &[&str]) -> bool {
    match (glob.first(), parts.first()) {
        (None, None) => true,
        (None, Some(_)) => false,
        (Some(Segment::Any), _) => {
            (0..=parts.len()).any(|skip| match_segments(&glob[1..], &parts[skip..]))
        }
        (Some(Segment::Name(_)), None) => false,
        (Some(Segment::Name(n)), Some(p)) => {
            match_name(n, p) && match_segments(&glob[1..], &parts[1..])
        }
    }
}

/// `*` and `?` within one name.
fn match_name(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(lines: &str) -> Ignore {
        let mut i = Ignore::default();
        i.add_lines("", lines);
        i
    }

    #[test]
    fn names_match_at_any_depth() {
        let i = set("*.tmp\n.cache/\n");
        assert!(i.is_excluded("a.tmp", false));
        assert!(i.is_excluded("x/y/b.tmp", false));
        assert!(!i.is_excluded("a.tmp.keep", false));
        assert!(i.is_excluded("x/.cache", true));
        assert!(
            !i.is_excluded("x/.cache", false),
            "a trailing slash means folders only"
        );
    }

    #[test]
    fn anchored_and_double_star() {
        let i = set("/build\ndocs/*.pdf\nlogs/**/old\n");
        assert!(i.is_excluded("build", true));
        assert!(!i.is_excluded("src/build", true));
        assert!(i.is_excluded("docs/a.pdf", false));
        assert!(!i.is_excluded("x/docs/a.pdf", false));
        assert!(i.is_excluded("logs/old", true));
        assert!(i.is_excluded("logs/a/b/old", true));
    }

    #[test]
    fn negation_and_comments_and_bases() {
        let mut i = set("# comment\n*.log\n!keep.log\n");
        assert!(i.is_excluded("a.log", false));
        assert!(!i.is_excluded("d/keep.log", false));
        i.add_lines("photos", "raw/\n");
        assert!(i.is_excluded("photos/raw", true));
        assert!(i.is_excluded("photos/2024/raw", true));
        assert!(
            !i.is_excluded("raw", true),
            "a pattern applies below its own folder"
        );
    }

    #[test]
    fn wildcards_within_a_name() {
        assert!(match_name("IMG_????.JPG", "IMG_0042.JPG"));
        assert!(match_name("*a*b*", "xxaxxbxx"));
        assert!(!match_name("*a*b", "xxaxxbxx"));
        assert!(match_name("*", ""));
    }
}
