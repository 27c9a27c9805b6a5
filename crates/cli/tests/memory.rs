//! Bounded memory: 10 GiB stream into a real `cubby serve` through an upload session while
//! the server process's resident set is sampled; it must stay under 200 MB.
//!
//! Runs on the embedded back-ends (the scale-out phase's S3 stand-in keeps objects in memory).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const MIB: usize = 1 << 20;
const GIB: u64 = 1 << 30;
/// Bytes per append: under the 150 MiB request limit.
const PIECE: usize = 128 * MIB;

fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// The content hash of `len` zero bytes (every 4 MiB block of zeros has the same digest).
fn hash_of_zeros(len: u64) -> String {
    use sha2::{Digest, Sha256};
    let block = Sha256::digest(vec![0u8; 4 * MIB]);
    let mut outer = Sha256::new();
    for _ in 0..len / (4 * MIB as u64) {
        outer.update(block);
    }
    outer
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn ten_gib_session_keeps_server_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let cubby = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_cubby"))
            .env("CUBBY_DATA", dir.path())
            .env_remove("CUBBY_METADATA")
            .env_remove("CUBBY_BLOCKS")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    cubby(&["admin", "user", "add", "big", "--json"]);
    let token = cubby(&["admin", "token", "big", "--json"])["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cubby"))
        .env("CUBBY_DATA", dir.path())
        .env_remove("CUBBY_METADATA")
        .env_remove("CUBBY_BLOCKS")
        .env("CUBBY_LOG", "warn")
        .args(["serve", "--http", "127.0.0.1:0", "--https", "off"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(a) = line.trim().strip_prefix("http:") {
            break a.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_bytes(pid));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };
    let http = reqwest::Client::new();
    let call = |route: &str, arg: Value, body: reqwest::Body| {
        http.post(format!("{url}/2/{route}"))
            .bearer_auth(&token)
            .header("dropbox-api-arg", arg.to_string())
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
    };
    let r = call(
        "files/upload_session/start",
        json!({}),
        reqwest::Body::from(Vec::new()),
    )
    .await
    .unwrap();
    let id = r.json::<Value>().await.unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let total = 10 * GIB;
    let piece_hash = hash_of_zeros(PIECE as u64);
    let zeros = bytes::Bytes::from(vec![0u8; MIB]);
    let mut offset = 0u64;
    while offset < total {
        let chunk = zeros.clone();
        let body = reqwest::Body::wrap_stream(futures_util::stream::iter(
            (0..PIECE / MIB).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
        ));
        let arg =
            json!({"cursor": {"session_id": id, "offset": offset}, "content_hash": piece_hash});
        let r = call("files/upload_session/append_v2", arg, body)
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "append at {offset}");
        offset += PIECE as u64;
    }
    let arg =
        json!({"cursor": {"session_id": id, "offset": total}, "commit": {"path": "/huge.bin"}});
    let r = call(
        "files/upload_session/finish",
        arg,
        reqwest::Body::from(Vec::new()),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let md: Value = r.json().await.unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    eprintln!(
        "server peak RSS while 10 GiB streamed through a session: {} MiB",
        peak / (1 << 20)
    );
    assert_eq!(md["size"], total);
    assert_eq!(md["content_hash"], hash_of_zeros(total));
    assert!(peak > 0, "the sampler saw the server");
    assert!(
        peak < 200_000_000,
        "server peak RSS {} MiB",
        peak / (1 << 20)
    );
}
