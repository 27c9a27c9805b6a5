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

/// A server process, killed when dropped (so a failed assertion leaves none behind).
struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `cubby serve` on the embedded back-ends in `dir`, with one user; its process, URL and
/// the user's token.
fn serve(dir: &std::path::Path, user: &str) -> (Served, String, String) {
    let cubby = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_cubby"))
            .env("CUBBY_DATA", dir)
            .env_remove("CUBBY_METADATA")
            .env_remove("CUBBY_BLOCKS")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    cubby(&["admin", "user", "add", user, "--json"]);
    let token = cubby(&["admin", "token", user, "--json"])["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cubby"))
        .env("CUBBY_DATA", dir)
        .env_remove("CUBBY_METADATA")
        .env_remove("CUBBY_BLOCKS")
        .env("CUBBY_LOG", "warn")
        .args(["serve", "--http", "127.0.0.1:0", "--https", "off"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(a) = line.trim().strip_prefix("http:") {
            break a.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Served(child), url, token)
}

/// Samples `pid`'s resident set every 20 ms until `stop`; returns the peak.
fn sample_rss(
    pid: u32,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            peak = peak.max(rss_bytes(pid));
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    })
}

#[tokio::test]
async fn ten_gib_session_keeps_server_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (child, url, token) = serve(dir.path(), "big");
    let pid = child.0.id();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = sample_rss(pid, stop.clone());
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
    drop(child);
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

/// A photo-like JPEG of `w` × `h`.
fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let mut s: u32 = 5;
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, (s >> 26) as u8])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .unwrap();
    out
}

/// A PNG whose header claims `w` × `h` RGBA pixels (with a correct CRC) and holds one.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut b = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgba8(image::RgbaImage::new(1, 1))
        .write_to(&mut b, image::ImageFormat::Png)
        .unwrap();
    let mut b = b.into_inner();
    b[16..20].copy_from_slice(&w.to_be_bytes());
    b[20..24].copy_from_slice(&h.to_be_bytes());
    let mut c = !0u32;
    for &x in &b[12..29] {
        c ^= u32::from(x);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    b[29..33].copy_from_slice(&(!c).to_be_bytes());
    b
}

/// Sixteen cold thumbnails of distinct 24-megapixel photos at once, beside images that claim
/// billions of pixels: every request answers, and the server's resident set stays under
/// 400 MB (each photo alone is 72 MB decoded at full size; the decodes are scaled, one per
/// core, within the thumbnails' memory budget, and the liars are refused from their headers).
#[tokio::test]
async fn a_storm_of_big_and_hostile_images_keeps_server_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (child, url, token) = serve(dir.path(), "pics");
    let http = reqwest::Client::new();
    let upload = |path: String, data: Vec<u8>| {
        http.post(format!("{url}/2/files/upload"))
            .bearer_auth(&token)
            .header("dropbox-api-arg", json!({"path": path}).to_string())
            .header("content-type", "application/octet-stream")
            .body(data)
            .send()
    };
    let photo = jpeg(6000, 4000);
    let mut paths = Vec::new();
    for i in 0..16u8 {
        // Distinct content (a JPEG decoder ignores bytes after its end), so each is cold.
        let mut p = photo.clone();
        p.extend(std::iter::repeat_n(i, usize::from(i) + 1));
        let path = format!("/photos/{i}.jpg");
        assert_eq!(upload(path.clone(), p).await.unwrap().status(), 200);
        paths.push((path, true));
    }
    for (name, data) in [
        ("huge.png", png_claiming(100_000, 100_000)),
        ("big.png", png_claiming(12_000, 12_000)),
        ("tall.png", png_claiming(16, 70_000)),
    ] {
        let path = format!("/hostile/{name}");
        assert_eq!(upload(path.clone(), data).await.unwrap().status(), 200);
        paths.push((path, false));
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = sample_rss(child.0.id(), stop.clone());
    let calls = paths.iter().map(|(path, _)| {
        http.post(format!("{url}/2/files/get_thumbnail_v2"))
            .bearer_auth(&token)
            .header(
                "dropbox-api-arg",
                json!({"resource": {".tag": "path", "path": path}, "size": "w256h256"}).to_string(),
            )
            .send()
    });
    let answers = futures_util::future::join_all(calls).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    for ((path, good), r) in paths.iter().zip(answers) {
        let r = r.unwrap();
        if *good {
            assert_eq!(r.status(), 200, "{path}");
            assert_eq!(r.headers()["content-type"], "image/jpeg");
        } else {
            assert_eq!(r.status(), 409, "{path}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"][".tag"], "unsupported_image", "{path}");
        }
    }
    drop(child);
    eprintln!(
        "server peak RSS during 16 cold 24 MP thumbnails and 3 liars: {} MiB",
        peak / (1 << 20)
    );
    assert!(peak > 0, "the sampler saw the server");
    assert!(
        peak < 400_000_000,
        "server peak RSS {} MiB",
        peak / (1 << 20)
    );
}
