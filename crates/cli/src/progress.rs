//! A transfer's progress on standard error: one line redrawn (bytes, rate, ETA) when it is a
//! terminal, nothing otherwise (the command prints its result line either way).
//!
//! Hand-rolled rather than indicatif: one bar at a time needs a line of arithmetic, not a
//! dependency.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cubby_client::transfer::Progress;

/// Redraws at most this often.
const REDRAW: Duration = Duration::from_millis(200);

pub struct Bar {
    name: String,
    enabled: bool,
    total: AtomicU64,
    done: AtomicU64,
    started: Instant,
    last: Mutex<Option<Instant>>,
}

impl Bar {
    /// A bar for `name`, drawn only if `wanted` and standard error is a terminal.
    pub fn new(name: &str, wanted: bool) -> Self {
        Self {
            name: name.to_owned(),
            enabled: wanted && crate::client::stderr_is_terminal(),
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            started: Instant::now(),
            last: Mutex::new(None),
        }
    }

    fn draw(&self, force: bool) {
        if !self.enabled {
            return;
        }
        let mut last = self.last.lock().expect("bar");
        if !force && last.is_some_and(|t| t.elapsed() < REDRAW) {
            return;
        }
        *last = Some(Instant::now());
        let (done, total) = (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        );
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = done as f64 / secs;
        let eta = if rate > 0.0 && total > done {
            format!("{:.0}s", (total - done) as f64 / rate)
        } else {
            "-".into()
        };
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        let _ = write!(
            std::io::stderr(),
            "\r\x1b[K{}  {pct:>3}%  {} / {}  {}/s  ETA {eta}",
            self.name,
            crate::client::human(done),
            crate::client::human(total),
            crate::client::human(rate as u64),
        );
    }

    /// Ends the line.
    pub fn finish(&self) {
        if self.enabled {
            self.draw(true);
            let _ = writeln!(std::io::stderr());
        }
    }
}

impl Progress for Bar {
    fn start(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        self.draw(true);
    }

    fn advance(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
        self.draw(false);
    }
}
