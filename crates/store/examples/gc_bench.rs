//! The block GC benchmark (`scripts/bench` stage g): the time of one collection over many
//! blocks, and of a second pass that finds nothing to delete.
//!
//! It builds an embedded store in a scratch folder with `GC_BLOCKS` block files (default
//! 1,000,000, small ones, written without the store's fsyncs so seeding is quick) and their
//! rows: half referenced, a quarter unreferenced for longer than the grace period, a quarter
//! with no row (uploads that never committed). Then it collects as of a day and a minute
//! later, so every unreferenced block is due, and prints the figures and its peak RSS.
//!
//! Usage: cargo run --release -p cubby-store --example gc_bench [-- SCRATCH_DIR]

use std::time::Instant;

use cubby_core::hash::{block_hash, hex};
use cubby_store::gc::BLOCK_GRACE_SECS;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::var("GC_BLOCKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let scratch = match std::env::args().nth(1) {
        Some(dir) => tempfile::tempdir_in(dir)?,
        None => tempfile::tempdir()?,
    };
    let store = cubby_store::Store::open(scratch.path()).await?;
    let root = scratch.path().join("blocks");

    let t = Instant::now();
    let seeded = tokio::task::spawn_blocking(move || {
        let mut hashes = Vec::with_capacity(n);
        for i in 0..n {
            let data = format!("gc bench block {i}");
            let h = block_hash(data.as_bytes());
            let name = hex(&h);
            std::fs::write(root.join(&name[..2]).join(&name), data)?;
            hashes.push(h);
        }
        Ok::<_, std::io::Error>(hashes)
    })
    .await??;
    let (live, rest) = seeded.split_at(n / 2);
    let (zero, _orphans) = rest.split_at(rest.len() / 2);
    let now = cubby_store::now();
    for part in live.chunks(50_000) {
        store.seed_block_rows(part, 1, None).await?;
    }
    for part in zero.chunks(50_000) {
        store
            .seed_block_rows(part, 0, Some(now - BLOCK_GRACE_SECS - 60))
            .await?;
    }
    println!(
        "seeded {n} blocks ({} referenced, {} unreferenced, {} without a row) in {:.1} s",
        live.len(),
        zero.len(),
        n - live.len() - zero.len(),
        t.elapsed().as_secs_f64()
    );

    let at = now + BLOCK_GRACE_SECS + 60;
    let t = Instant::now();
    let first = store.gc(at).await?.expect("the lease is free");
    let first_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let second = store.gc(at).await?.expect("the lease is free");
    let second_secs = t.elapsed().as_secs_f64();
    assert_eq!(first.deleted as usize, n - live.len());
    assert_eq!(second.deleted, 0);
    println!(
        "gc_collect\t{n} blocks\t{first_secs:.2} s\t{:.0} blocks/s\tdeleted {}",
        n as f64 / first_secs,
        first.deleted
    );
    println!(
        "gc_steady\t{} blocks\t{second_secs:.2} s\t{:.0} blocks/s\tdeleted 0",
        second.scanned,
        second.scanned as f64 / second_secs
    );
    println!("gc_peak_rss\t{} MiB", peak_rss_kib() / 1024);
    store.close().await;
    Ok(())
}

/// The process's peak resident set (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
