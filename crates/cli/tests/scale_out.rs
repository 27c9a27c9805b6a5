//! Failure tests of the scale-out mode with real `cubby serve` processes over PostgreSQL and
//! S3: a server killed mid-upload, and a database restart under running servers.
//!
//! They need `CUBBY_TEST_PG_URL`, `CUBBY_TEST_S3_URL` and `CUBBY_TEST_PG_RESTART` (a command
//! that restarts the database), which `scripts/test` provides in its scale-out phase; without
//! them the test says so and returns.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The tests here restart the shared database: they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Env {
    metadata: String,
    blocks: String,
    restart: String,
}

fn env() -> Option<Env> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    Some(Env {
        metadata: get("CUBBY_TEST_PG_URL")?,
        blocks: get("CUBBY_TEST_S3_URL")?,
        restart: get("CUBBY_TEST_PG_RESTART")?,
    })
}

/// A fresh database and bucket prefix for this test.
async fn fresh(e: &Env) -> (String, String) {
    use sqlx::Executor;
    // Random: two tests of one process (one pid) must never share a database.
    let tag = cubby_core::hash::hex(&cubby_store::random_bytes::<6>());
    let admin = sqlx::PgPool::connect(&e.metadata).await.unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE cubby_f_{tag}"
        )))
        .await
        .unwrap();
    admin.close().await;
    let (head, _) = e.metadata.rsplit_once('/').unwrap();
    let (loc, query) = e.blocks.split_once('?').unwrap();
    (
        format!("{head}/cubby_f_{tag}"),
        format!("{loc}/f-{tag}?{query}"),
    )
}

struct Proc {
    child: Child,
    url: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cubby(data: &std::path::Path, metadata: &str, blocks: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cubby"));
    c.env("CUBBY_DATA", data)
        .env("CUBBY_METADATA", metadata)
        .env("CUBBY_BLOCKS", blocks)
        .env("CUBBY_LOG", "warn");
    c
}

fn serve(data: &std::path::Path, metadata: &str, blocks: &str) -> Proc {
    serve_cmd(cubby(data, metadata, blocks))
}

fn token(data: &std::path::Path, metadata: &str, blocks: &str) -> String {
    let run = |args: &[&str]| {
        let out = cubby(data, metadata, blocks).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    run(&["admin", "user", "add", "carol", "--json"]);
    run(&["admin", "token", "carol", "--json"])["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn upload(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    path: &str,
    body: reqwest::Body,
) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{url}/2/files/upload"))
        .bearer_auth(token)
        .header(
            "dropbox-api-arg",
            json!({"path": path, "mode": "overwrite"}).to_string(),
        )
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
}

async fn download(http: &reqwest::Client, url: &str, token: &str, path: &str) -> (u16, Vec<u8>) {
    let r = http
        .post(format!("{url}/2/files/download"))
        .bearer_auth(token)
        .header("dropbox-api-arg", json!({"path": path}).to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn scale_out_failures() {
    let _serial = SERIAL.lock().await;
    let Some(e) = env() else {
        eprintln!(
            "scale_out_failures: CUBBY_TEST_PG_URL/S3_URL/PG_RESTART not set; run scripts/test"
        );
        return;
    };
    let (metadata, blocks) = fresh(&e).await;
    let dir = tempfile::tempdir().unwrap();
    let token = token(dir.path(), &metadata, &blocks);
    let mut a = serve(dir.path(), &metadata, &blocks);
    let b = serve(dir.path(), &metadata, &blocks);
    let http = reqwest::Client::new();

    // 1. A server killed in the middle of an upload loses nothing committed, and the
    //    client's retry against the other server succeeds.
    let committed: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    let r = upload(&http, &a.url, &token, "/kept.bin", committed.clone().into())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) });
    let in_flight = {
        let (http, url, token) = (http.clone(), a.url.clone(), token.clone());
        tokio::spawn(async move {
            upload(
                &http,
                &url,
                &token,
                "/retried.bin",
                reqwest::Body::wrap_stream(stream),
            )
            .await
        })
    };
    tx.send(Ok(vec![7u8; 6_000_000])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let _ = tx.send(Ok(vec![8u8; 1000])).await;
    drop(tx);
    let failed = in_flight.await.unwrap();
    assert!(
        failed.is_err() || failed.unwrap().status() != 200,
        "the killed server cannot answer 200"
    );
    let retry: Vec<u8> = [vec![7u8; 6_000_000], vec![8u8; 1000]].concat();
    let r = upload(&http, &b.url, &token, "/retried.bin", retry.clone().into())
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "retry on the other server");
    assert_eq!(
        download(&http, &b.url, &token, "/kept.bin").await,
        (200, committed.clone())
    );
    assert_eq!(
        download(&http, &b.url, &token, "/retried.bin").await,
        (200, retry)
    );

    // 2. A database restart: the servers recover without a restart of their own.
    a = serve(dir.path(), &metadata, &blocks);
    let status = Command::new("sh")
        .arg("-c")
        .arg(&e.restart)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "restarting PostgreSQL with: {}",
        e.restart
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = upload(&http, &a.url, &token, "/after-restart.txt", "back".into()).await;
        if matches!(&r, Ok(r) if r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "server A did not recover: {r:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for url in [&a.url, &b.url] {
        for i in 0..5 {
            let r = upload(&http, url, &token, &format!("/steady-{i}.txt"), "x".into())
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "request {i} to {url} after the restart");
        }
    }
    // Cross-server wake-ups work again: a longpoll on A is woken by an upload through B.
    let cursor: Value = http
        .post(format!("{}/2/files/list_folder/get_latest_cursor", a.url))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(json!({"path": ""}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let poll = {
        let (http, url) = (http.clone(), a.url.clone());
        tokio::spawn(async move {
            http.post(format!("{url}/2/files/list_folder/longpoll"))
                .header("content-type", "application/json")
                .body(json!({"cursor": cursor["cursor"], "timeout": 30}).to_string())
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = Instant::now();
    let r = upload(&http, &b.url, &token, "/wake.txt", "w".into())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let woke = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .expect("longpoll woke")
        .unwrap();
    assert_eq!(woke["changes"], true);
    eprintln!(
        "cross-server wake after a database restart: {:?}",
        sent.elapsed()
    );
}

fn embedded(data: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cubby"));
    c.env("CUBBY_DATA", data)
        .env_remove("CUBBY_METADATA")
        .env_remove("CUBBY_BLOCKS")
        .env("CUBBY_LOG", "warn");
    c
}

fn serve_cmd(mut c: Command) -> Proc {
    let mut child = c
        .args(["serve", "--http", "127.0.0.1:0", "--https", "off"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("server prints its address").unwrap();
        if let Some(addr) = line.trim().strip_prefix("http:") {
            break addr.trim().to_owned();
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Proc { child, url }
}

/// Creates a shared link to `path` and returns its URL's path (`/s/<token>/<name>`).
async fn share(http: &reqwest::Client, url: &str, token: &str, path: &str) -> String {
    let r = http
        .post(format!("{url}/2/sharing/create_shared_link_with_settings"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(json!({ "path": path }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let url = v["url"].as_str().unwrap();
    format!("/s/{}", url.split_once("/s/").unwrap().1)
}

#[tokio::test]
async fn migrate_embedded_to_scale_out() {
    let _serial = SERIAL.lock().await;
    let Some(e) = env() else {
        eprintln!(
            "migrate_embedded_to_scale_out: CUBBY_TEST_PG_URL/S3_URL not set; run scripts/test"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let admin = |args: &[&str]| {
        let out = embedded(dir.path()).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    admin(&["admin", "user", "add", "erin", "--json"]);
    let token = admin(&["admin", "token", "erin", "--json"])["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let http = reqwest::Client::new();
    let big: Vec<u8> = (0..9_000_000u32).map(|i| (i * 31 % 253) as u8).collect();
    // The path of a shared link's URL (`/s/<token>/<name>`), made before the move.
    let link;
    {
        let src = serve_cmd(embedded(dir.path()));
        for (path, body) in [
            ("/m/big.bin", big.clone()),
            ("/m/small.txt", b"small".to_vec()),
        ] {
            let r = upload(&http, &src.url, &token, path, body.into())
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
        link = share(&http, &src.url, &token, "/m/small.txt").await;
        // A file of a batch upload, whose bytes are a small block in the database.
        let r = http
            .post(format!("{}/2/files/upload_session/start", src.url))
            .bearer_auth(&token)
            .header("dropbox-api-arg", json!({"close": true}).to_string())
            .header("content-type", "application/octet-stream")
            .body("batched")
            .send()
            .await
            .unwrap();
        let sid = r.json::<Value>().await.unwrap()["session_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = http
            .post(format!("{}/2/files/upload_session/finish_batch_v2", src.url))
            .bearer_auth(&token)
            .json(&json!({"entries": [{"cursor": {"session_id": sid, "offset": 7}, "commit": {"path": "/m/batched.txt"}}]}))
            .send()
            .await
            .unwrap();
        let v = r.json::<Value>().await.unwrap();
        assert_eq!(v["entries"][0][".tag"], "success", "{v}");
    }
    let (metadata, blocks) = fresh(&e).await;
    let out = embedded(dir.path())
        .args([
            "admin", "migrate", "--to", &metadata, "--blocks", &blocks, "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(
        report["blocks_source"], 4,
        "three blocks of big.bin and one of small.txt: {report}"
    );
    assert_eq!(report["blocks_verified"], 4, "{report}");
    let small = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "small_blocks")
        .cloned();
    assert_eq!(
        small,
        Some(json!({"table": "small_blocks", "source": 1, "target": 1})),
        "{report}"
    );
    // The target's reference counts were counted from the copied revisions.
    let fsck = {
        let mut c = embedded(dir.path());
        c.env("CUBBY_METADATA", &metadata)
            .env("CUBBY_BLOCKS", &blocks)
            .args(["admin", "fsck", "--json"]);
        c.output().unwrap()
    };
    let fsck: Value = serde_json::from_slice(&fsck.stdout).unwrap();
    assert_eq!(fsck["clean"], true, "{fsck}");
    assert_eq!(
        fsck["blocks_checked"], 5,
        "four objects and a small block: {fsck}"
    );
    // The new back-ends serve the same files to the same token.
    {
        let target = serve_cmd({
            let mut c = embedded(dir.path());
            c.env("CUBBY_METADATA", &metadata)
                .env("CUBBY_BLOCKS", &blocks);
            c
        });
        assert_eq!(
            download(&http, &target.url, &token, "/m/big.bin").await,
            (200, big.clone())
        );
        assert_eq!(
            download(&http, &target.url, &token, "/m/small.txt").await,
            (200, b"small".to_vec())
        );
        assert_eq!(
            download(&http, &target.url, &token, "/m/batched.txt").await,
            (200, b"batched".to_vec())
        );
        // Shared links move too, and new ones take fresh row ids after the copied ones.
        let r = http
            .get(format!("{}{link}", target.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap().as_ref(), b"small");
        let second = share(&http, &target.url, &token, "/m/big.bin").await;
        assert_ne!(second, link);
    }
    // The source is untouched and still serves.
    {
        let src = serve_cmd(embedded(dir.path()));
        assert_eq!(
            download(&http, &src.url, &token, "/m/big.bin").await,
            (200, big)
        );
    }
    // A second migration into the now non-empty target is refused.
    let again = embedded(dir.path())
        .args(["admin", "migrate", "--to", &metadata, "--blocks", &blocks])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds accounts"));
}
