//! The local file watcher of `cubby sync`: notify with the full debouncer.
//!
//! Every wake-up leads to a pass, whose scan re-reads the folder (unchanged files cost one
//! `lstat`), so a lost or coalesced event cannot hide a change: an overflow of the kernel's
//! queue (notify's "rescan" flag, which the full debouncer forwards) simply wakes the engine.
//! Events about the engine's own files (its trash, partial downloads) are dropped.

use std::path::Path;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;

use super::fs::is_internal;

/// Why the watcher woke the engine.
#[derive(Debug, PartialEq, Eq)]
pub enum Wake {
    /// Something changed under the folder.
    Changed,
    /// Events were lost (queue overflow): a full rescan is due.
    Rescan,
    /// The watcher reported an error (the pass that follows rescans anyway).
    Error(String),
}

/// A running watcher; dropping it stops watching.
pub struct Watcher {
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
    rx: mpsc::UnboundedReceiver<Wake>,
}

impl Watcher {
    /// Watches `root` recursively, reporting changes after `debounce` of quiet.
    ///
    /// Fails with a message naming `fs.inotify.max_user_watches` when the kernel's watch
    /// limit is reached; the caller then falls back to periodic passes.
    pub fn start(root: &Path, debounce: Duration) -> Result<Self, String> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut debouncer =
            new_debouncer(
                debounce,
                None,
                move |result: DebounceEventResult| match result {
                    Ok(events) => {
                        if events.iter().any(|e| e.need_rescan()) {
                            let _ = tx.send(Wake::Rescan);
                        } else if events.iter().any(|e| {
                            e.paths.iter().any(|p| {
                                !p.components()
                                    .any(|c| c.as_os_str().to_str().is_some_and(is_internal))
                            })
                        }) {
                            let _ = tx.send(Wake::Changed);
                        }
                    }
                    Err(errors) => {
                        for e in errors {
                            let _ = tx.send(Wake::Error(describe(&e)));
                        }
                    }
                },
            )
            .map_err(|e| describe(&e))?;
        debouncer
            .watch(root, RecursiveMode::Recursive)
            .map_err(|e| describe(&e))?;
        Ok(Self {
            _debouncer: debouncer,
            rx,
        })
    }

    /// The next wake-up (several pending ones are merged into one).
    pub async fn next(&mut self) -> Option<Wake> {
        let mut wake = self.rx.recv().await?;
        while let Ok(more) = self.rx.try_recv() {
            if more == Wake::Rescan || matches!(more, Wake::Error(_)) {
                wake = more;
            }
        }
        Some(wake)
    }
}

fn describe(e: &notify::Error) -> String {
    match &e.kind {
        notify::ErrorKind::MaxFilesWatch => "the kernel's limit of watched folders is reached \
            (raise it with `sysctl fs.inotify.max_user_watches=524288`); \
            changes are picked up by periodic rescans instead"
            .to_owned(),
        _ => format!("file watcher: {e}"),
    }
}
