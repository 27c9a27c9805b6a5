//! Change notification: wakes longpoll waiters when a namespace commits.
//!
//! In-process only for the embedded store; the scale-out back-end will feed the same
//! interface from PostgreSQL LISTEN/NOTIFY.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// One watch channel per namespace carrying its latest journal sequence.
#[derive(Default)]
pub struct Notifier {
    channels: Mutex<HashMap<u64, watch::Sender<u64>>>,
}

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
