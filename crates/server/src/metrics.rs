//! Prometheus metrics, rendered in the text exposition format at `GET /metrics`.
//!
//! Hand-rolled over a mutex-protected map: the label sets are small and fixed (route names
//! come from the route table), so this costs one short lock per request and needs neither a
//! metrics crate nor a background upkeep task (see rust-stack.md, pitfall 21).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    total: u64,
}

/// Counters and histograms of one server process.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

impl Metrics {
    /// Records one finished request.
    pub fn observe(&self, route: &'static str, status: u16, elapsed: Duration) {
        *self
            .requests
            .lock()
            .expect("metrics lock")
            .entry((route, status))
            .or_default() += 1;
        let secs = elapsed.as_secs_f64();
        let mut lat = self.latency.lock().expect("metrics lock");
        let h = lat.entry(route).or_insert_with(|| Histogram {
            counts: vec![0; BUCKETS.len()],
            ..Histogram::default()
        });
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            h.counts[i] += 1;
        }
        h.sum += secs;
        h.total += 1;
    }

    pub fn add_in(&self, n: u64) {
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_out(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    /// The exposition text; `pool` is (open connections, idle connections, maximum);
    /// `bad_blocks` is (missing, corrupt) blocks met by reads.
    pub fn render(&self, pool: (u32, usize, u32), bad_blocks: (u64, u64)) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP cubby_block_read_errors_total Blocks a read found missing or corrupt (never served).\n",
        );
        out.push_str("# TYPE cubby_block_read_errors_total counter\n");
        let _ = writeln!(
            out,
            "cubby_block_read_errors_total{{kind=\"missing\"}} {}",
            bad_blocks.0
        );
        let _ = writeln!(
            out,
            "cubby_block_read_errors_total{{kind=\"corrupt\"}} {}",
            bad_blocks.1
        );
        out.push_str("# HELP cubby_http_requests_total API requests by route and status.\n");
        out.push_str("# TYPE cubby_http_requests_total counter\n");
        for ((route, status), n) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "cubby_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP cubby_http_request_duration_seconds API request latency by route.\n");
        out.push_str("# TYPE cubby_http_request_duration_seconds histogram\n");
        for (route, h) in self.latency.lock().expect("metrics lock").iter() {
            let mut cumulative = 0;
            for (b, c) in BUCKETS.iter().zip(&h.counts) {
                cumulative += c;
                let _ = writeln!(
                    out,
                    "cubby_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "cubby_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.total
            );
            let _ = writeln!(
                out,
                "cubby_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "cubby_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.total
            );
        }
        let _ = writeln!(
            out,
            "# HELP cubby_bytes_in_total File bytes received by uploads."
        );
        let _ = writeln!(out, "# TYPE cubby_bytes_in_total counter");
        let _ = writeln!(
            out,
            "cubby_bytes_in_total {}",
            self.bytes_in.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP cubby_bytes_out_total File bytes sent by downloads."
        );
        let _ = writeln!(out, "# TYPE cubby_bytes_out_total counter");
        let _ = writeln!(
            out,
            "cubby_bytes_out_total {}",
            self.bytes_out.load(Ordering::Relaxed)
        );
        let (open, idle, max) = pool;
        let _ = writeln!(
            out,
            "# HELP cubby_db_pool_connections Metadata database connections by state."
        );
        let _ = writeln!(out, "# TYPE cubby_db_pool_connections gauge");
        let _ = writeln!(
            out,
            "cubby_db_pool_connections{{state=\"in_use\"}} {}",
            open as usize - idle.min(open as usize)
        );
        let _ = writeln!(out, "cubby_db_pool_connections{{state=\"idle\"}} {idle}");
        let _ = writeln!(out, "cubby_db_pool_connections{{state=\"max\"}} {max}");
        out
    }
}
