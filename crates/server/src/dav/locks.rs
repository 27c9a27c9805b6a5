//! WebDAV locks kept in the metadata database, so that every server in a scale-out
//! deployment honours a lock taken through any of them. Locks are per account, keyed by the
//! locked path compared as Dropbox compares paths (lower case, NFC).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cubby_core::path::lower;
use cubby_store::accounts::Account;
use cubby_store::dav::DavLockRow;
use cubby_store::{Store, now};
use dav_server::davpath::DavPath;
use dav_server::ls::{DavLock, DavLockSystem, LsFuture};
use futures_util::FutureExt;
use xmltree::Element;

/// The longest lock a client gets, whatever it asks: a client that vanished leaves no lock
/// behind for longer than this.
pub(crate) const MAX_LOCK_SECS: u64 = 24 * 3600;

#[derive(Clone)]
pub(crate) struct DbLocks {
    store: Store,
    account: Account,
    /// The URL prefix the paths are under (`/dav`), to name a lock's root in answers.
    prefix: String,
}

impl std::fmt::Debug for DbLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbLocks")
            .field("account", &self.account.id)
            .finish()
    }
}

impl DbLocks {
    pub fn new(store: Store, account: Account, prefix: String) -> Self {
        Self {
            store,
            account,
            prefix,
        }
    }

    fn to_lock(&self, r: &DavLockRow) -> DavLock {
        let mut path = DavPath::new(&format!("{}{}", self.prefix, encode(&r.path)))
            .unwrap_or_else(|_| DavPath::new("/").expect("root parses"));
        let _ = path.set_prefix(&self.prefix);
        let timeout_at = r
            .expires
            .map(|e| UNIX_EPOCH + Duration::from_secs(e.max(0) as u64));
        DavLock {
            token: r.token.clone(),
            path: Box::new(path),
            principal: r.principal.clone(),
            owner: r
                .owner
                .as_deref()
                .and_then(|x| Element::parse(x.as_bytes()).ok())
                .map(Box::new),
            timeout_at,
            timeout: timeout_at.map(|t| {
                t.duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO)
            }),
            shared: r.shared,
            deep: r.deep,
        }
    }

    async fn live(&self) -> Vec<DavLockRow> {
        match self.store.dav_locks(&self.account).await {
            Ok(l) => l,
            Err(e) => {
                // Locks cannot be read: every check fails closed (a conflicting lock).
                tracing::warn!(error = %e, "WebDAV: locks could not be read");
                vec![unreadable()]
            }
        }
    }
}

/// A stand-in lock that conflicts with everything, for when the database cannot be read.
fn unreadable() -> DavLockRow {
    DavLockRow {
        token: "opaquelocktoken:unreadable".into(),
        path: String::new(),
        principal: None,
        owner: None,
        shared: false,
        deep: true,
        expires: None,
    }
}

/// A lock's key: the decoded path below the prefix, without a trailing slash, as Dropbox
/// compares paths (`""` for the root).
fn key(path: &DavPath) -> String {
    let s = String::from_utf8_lossy(path.as_bytes());
    lower(s.trim_end_matches('/'))
}

fn display(path: &DavPath) -> String {
    String::from_utf8_lossy(path.as_bytes())
        .trim_end_matches('/')
        .to_owned()
}

/// Whether `a` is `b` or one of its ancestors (keys).
fn at_or_above(a: &str, b: &str) -> bool {
    a == b || a.is_empty() || (b.starts_with(a) && b.as_bytes().get(a.len()) == Some(&b'/'))
}

/// RFC 4918's rule for the locks at and above `path`: an exclusive lock there conflicts
/// unless held (its token submitted, by its principal unless ignored); shared locks
/// conflict only if none of them is held and `shared_ok` is false.
fn check_up(
    locks: &[DavLockRow],
    path: &str,
    principal: Option<&str>,
    ignore_principal: bool,
    tokens: &[String],
    shared_ok: bool,
) -> Result<(), DavLockRow> {
    let mut above: Vec<&DavLockRow> = locks
        .iter()
        .filter(|l| at_or_above(&lower(&l.path), path))
        .collect();
    above.sort_by_key(|l| l.path.len());
    let mut holds = false;
    let mut first_shared = None;
    for l in above {
        if lower(&l.path) != path && !l.deep {
            continue;
        }
        if tokens.contains(&l.token) && (ignore_principal || principal == l.principal.as_deref()) {
            holds = true;
        } else if !l.shared {
            return Err(l.clone());
        } else if !shared_ok {
            first_shared.get_or_insert(l);
        }
    }
    match first_shared {
        Some(l) if !holds => Err(l.clone()),
        _ => Ok(()),
    }
}

/// The rule for the locks strictly below `path` and at it.
fn check_down(
    locks: &[DavLockRow],
    path: &str,
    principal: Option<&str>,
    ignore_principal: bool,
    tokens: &[String],
    shared_ok: bool,
) -> Result<(), DavLockRow> {
    for l in locks.iter().filter(|l| at_or_above(path, &lower(&l.path))) {
        if (!l.shared || !shared_ok)
            && (!tokens.contains(&l.token)
                || (!ignore_principal && principal != l.principal.as_deref()))
        {
            return Err(l.clone());
        }
    }
    Ok(())
}

fn new_token() -> String {
    let b: [u8; 16] = cubby_store::random_bytes();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "opaquelocktoken:{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

impl DavLockSystem for DbLocks {
    fn lock(
        &self,
        path: &DavPath,
        principal: Option<&str>,
        owner: Option<&Element>,
        timeout: Option<Duration>,
        shared: bool,
        deep: bool,
    ) -> LsFuture<'_, Result<DavLock, DavLock>> {
        let k = key(path);
        let mut owner_xml = Vec::new();
        if let Some(o) = owner {
            // The library names the element `D:owner` without declaring `D` on it.
            let mut o = o.clone();
            o.namespaces
                .get_or_insert_with(xmltree::Namespace::empty)
                .put("D", "DAV:");
            if o.write(&mut owner_xml).is_err() {
                owner_xml.clear();
            }
        }
        let secs = timeout.map_or(MAX_LOCK_SECS, |t| t.as_secs().clamp(1, MAX_LOCK_SECS));
        let row = DavLockRow {
            token: new_token(),
            path: display(path),
            principal: principal.map(str::to_owned),
            owner: (!owner_xml.is_empty()).then(|| String::from_utf8_lossy(&owner_xml).into()),
            shared,
            deep,
            expires: Some(now() + secs as i64),
        };
        async move {
            let conflict = |held: &[DavLockRow]| {
                check_up(held, &k, None, true, &[], shared)
                    .and_then(|()| {
                        if deep {
                            check_down(held, &k, None, true, &[], shared)
                        } else {
                            Ok(())
                        }
                    })
                    .err()
            };
            match self.store.dav_lock(&self.account, &row, conflict).await {
                Ok(Ok(())) => Ok(self.to_lock(&row)),
                Ok(Err(other)) => Err(self.to_lock(&other)),
                Err(e) => {
                    tracing::warn!(error = %e, "WebDAV: a lock could not be taken");
                    Err(self.to_lock(&unreadable()))
                }
            }
        }
        .boxed()
    }

    fn unlock(&self, path: &DavPath, token: &str) -> LsFuture<'_, Result<(), ()>> {
        let (k, token) = (key(path), token.to_owned());
        async move {
            let found = self
                .live()
                .await
                .into_iter()
                .any(|l| l.token == token && at_or_above(&lower(&l.path), &k));
            if !found {
                return Err(());
            }
            match self.store.dav_drop_locks(&self.account, &[token]).await {
                Ok(()) => Ok(()),
                Err(_) => Err(()),
            }
        }
        .boxed()
    }

    fn refresh(
        &self,
        path: &DavPath,
        token: &str,
        timeout: Option<Duration>,
    ) -> LsFuture<'_, Result<DavLock, ()>> {
        let (k, token) = (key(path), token.to_owned());
        let secs = timeout.map_or(MAX_LOCK_SECS, |t| t.as_secs().clamp(1, MAX_LOCK_SECS));
        async move {
            let found = self
                .live()
                .await
                .into_iter()
                .find(|l| l.token == token && at_or_above(&lower(&l.path), &k))
                .ok_or(())?;
            let expires = Some(now() + secs as i64);
            match self
                .store
                .dav_refresh_lock(&self.account, &found.token, expires)
                .await
            {
                Ok(true) => Ok(self.to_lock(&DavLockRow { expires, ..found })),
                _ => Err(()),
            }
        }
        .boxed()
    }

    fn check(
        &self,
        path: &DavPath,
        principal: Option<&str>,
        ignore_principal: bool,
        deep: bool,
        tokens: &[String],
    ) -> LsFuture<'_, Result<(), DavLock>> {
        let (k, principal, tokens) = (key(path), principal.map(str::to_owned), tokens.to_vec());
        async move {
            let held = self.live().await;
            let p = principal.as_deref();
            check_up(&held, &k, p, ignore_principal, &tokens, false)
                .and_then(|()| {
                    if deep {
                        check_down(&held, &k, p, ignore_principal, &tokens, false)
                    } else {
                        Ok(())
                    }
                })
                .map_err(|l| self.to_lock(&l))
        }
        .boxed()
    }

    fn discover(&self, path: &DavPath) -> LsFuture<'_, Vec<DavLock>> {
        let k = key(path);
        async move {
            let mut found: Vec<DavLockRow> = self
                .live()
                .await
                .into_iter()
                .filter(|l| at_or_above(&lower(&l.path), &k))
                .collect();
            found.sort_by_key(|l| l.path.len());
            found.iter().map(|l| self.to_lock(l)).collect()
        }
        .boxed()
    }

    fn delete(&self, path: &DavPath) -> LsFuture<'_, Result<(), ()>> {
        let k = key(path);
        async move {
            let below: Vec<String> = self
                .live()
                .await
                .into_iter()
                .filter(|l| at_or_above(&k, &lower(&l.path)))
                .map(|l| l.token)
                .collect();
            if below.is_empty() {
                return Ok(());
            }
            self.store
                .dav_drop_locks(&self.account, &below)
                .await
                .map_err(|_| ())
        }
        .boxed()
    }
}

/// Percent-encodes a decoded path for a URL (each segment as `wire::percent_encode` does).
pub(crate) fn encode(path: &str) -> String {
    path.split('/')
        .map(cubby_core::wire::percent_encode)
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(path: &str, shared: bool, deep: bool, token: &str) -> DavLockRow {
        DavLockRow {
            token: token.into(),
            path: path.into(),
            principal: Some("ann".into()),
            owner: None,
            shared,
            deep,
            expires: None,
        }
    }

    #[test]
    fn a_deep_lock_covers_what_is_below_and_a_shallow_one_only_itself() {
        let locks = [l("/A", false, true, "t1"), l("/b", false, false, "t2")];
        assert!(check_up(&locks, "/a/x", None, true, &[], false).is_err());
        assert!(check_up(&locks, "/a/x", Some("ann"), false, &["t1".into()], false).is_ok());
        assert!(check_up(&locks, "/a/x", Some("bob"), false, &["t1".into()], false).is_err());
        assert!(check_up(&locks, "/b/x", None, true, &[], false).is_ok());
        assert!(check_up(&locks, "/b", None, true, &[], false).is_err());
        assert!(check_up(&locks, "/ab", None, true, &[], false).is_ok());
        // A deep lock taken on the root sees the locks below.
        assert!(check_down(&locks, "", None, true, &[], false).is_err());
        assert!(check_down(&locks, "/c", None, true, &[], false).is_ok());
    }

    #[test]
    fn shared_locks_allow_each_other_but_not_an_exclusive_one() {
        let locks = [l("/a", true, false, "t1")];
        assert!(check_up(&locks, "/a", None, true, &[], true).is_ok());
        assert!(check_up(&locks, "/a", None, true, &[], false).is_err());
    }

    #[test]
    fn paths_are_encoded_for_urls() {
        assert_eq!(encode("/a b/ü"), "/a%20b/%C3%BC");
    }
}
