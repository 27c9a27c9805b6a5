//! Change notification: wakes longpoll waiters when a namespace commits.
//!
//! In-process for the embedded store. With PostgreSQL, every commit also sends
//! `NOTIFY cubby_ns 'ns:seq'`, and each server's listener task republishes what it hears, so a
//! longpoll on one server wakes for a commit made through another.
//!
//! It also carries the *auth epoch*, which a revocation (of a token, an account, a quota) moves
//! on, so that access tokens cached by [`crate::Store::authenticate`] are looked up again.
//! With PostgreSQL the revoking transaction sends `NOTIFY cubby_ns 'auth'`, which moves the
//! epoch of every server.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

/// One watch channel per namespace carrying its latest journal sequence.
#[derive(Default)]
pub struct Notifier {
    channels: Mutex<HashMap<u64, watch::Sender<u64>>>,
    auth_epoch: AtomicU64,
}

/// The payload of the notification that moves every server's auth epoch.
pub(crate) const AUTH_CHANGED: &str = "auth";

impl Notifier {
    /// A receiver that changes whenever namespace `ns` commits.
    pub fn subscribe(&self, ns: u64) -> watch::Receiver<u64> {
        let mut map = self.channels.lock().expect("notifier lock");
        map.entry(ns)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Announces that namespace `ns` reached journal sequence `seq`.
    pub fn publish(&self, ns: u64, seq: u64) {
        let mut map = self.channels.lock().expect("notifier lock");
        if let Some(tx) = map.get(&ns) {
            tx.send_replace(seq);
            if tx.receiver_count() == 0 {
                map.remove(&ns);
            }
        }
    }
}

impl Notifier {
    /// Wakes every waiter, so each rechecks the journal (after a lost listener connection,
    /// notifications may have been missed).
    pub fn wake_all(&self) {
        let map = self.channels.lock().expect("notifier lock");
        for tx in map.values() {
            tx.send_modify(|_| {});
        }
    }

    /// The current auth epoch: a cached token lookup is valid only in the epoch it was made.
    pub fn auth_epoch(&self) -> u64 {
        self.auth_epoch.load(Ordering::SeqCst)
    }

    /// Moves the auth epoch on: every cached token lookup is made again.
    pub fn auth_changed(&self) {
        self.auth_epoch.fetch_add(1, Ordering::SeqCst);
    }
}

/// How long the listener waits before reconnecting after PostgreSQL went away.
const LISTEN_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Forwards PostgreSQL notifications of commits (from any server) to this server's waiters.
pub(crate) fn spawn_pg_listener(pool: sqlx::PgPool, notifier: std::sync::Arc<Notifier>) {
    tokio::spawn(async move {
        // The task ends when the store closes its pool.
        while !pool.is_closed() {
            let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
                Ok(l) => l,
                Err(_) if pool.is_closed() => return,
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN connection failed; retrying");
                    tokio::time::sleep(LISTEN_RETRY).await;
                    continue;
                }
            };
            if let Err(e) = listener.listen(crate::db::NOTIFY_CHANNEL).await {
                tracing::warn!(error = %e, "LISTEN failed; retrying");
                tokio::time::sleep(LISTEN_RETRY).await;
                continue;
            }
            // Anything committed while we were not listening: let waiters look for themselves,
            // and look tokens up again (a revocation may have been missed).
            notifier.wake_all();
            notifier.auth_changed();
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) if n.payload() == AUTH_CHANGED => notifier.auth_changed(),
                    Ok(Some(n)) => {
                        if let Some((ns, seq)) = n.payload().split_once(':')
                            && let (Ok(ns), Ok(seq)) = (ns.parse(), seq.parse())
                        {
                            notifier.publish(ns, seq);
                        }
                    }
                    Ok(None) => {
                        tracing::warn!("LISTEN connection lost; reconnecting");
                        notifier.wake_all();
                        notifier.auth_changed();
                    }
                    Err(_) if pool.is_closed() => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN receive failed; reconnecting");
                        tokio::time::sleep(LISTEN_RETRY).await;
                        break;
                    }
                }
            }
        }
    });
}
