//! Upload and download: write modes, content hashes, ranges, limits and racing writers.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestServer, bytes, content_hash};

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn round_trip_sizes_and_hashes() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    for (i, size) in [0, 1, 4 * MIB - 1, 4 * MIB, 4 * MIB + 1, 9 * MIB + 123]
        .into_iter()
        .enumerate()
    {
        let data = bytes(size, i as u8);
        let path = format!("/sizes/f{size}.bin");
        let md = c
            .upload_with(
                json!({"path": path, "content_hash": content_hash(&data)}),
                data.clone(),
            )
            .await
            .ok();
        assert_eq!(md["size"], size);
        assert_eq!(md["content_hash"], content_hash(&data));
        assert!(
            md.get(".tag").is_none(),
            "upload result is FileMetadata, untagged"
        );
        let r = c.download(json!({"path": path}), None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers["content-type"], "application/octet-stream");
        assert!(r.body == data, "content of {size} bytes differs");
        assert_eq!(r.api_result()["rev"], md["rev"]);
    }
    assert_eq!(
        content_hash(&[]),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[tokio::test]
async fn content_hash_mismatch_changes_nothing() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    for size in [10, 5 * MIB] {
        let data = bytes(size, 1);
        let wrong = content_hash(b"something else");
        let r = c
            .upload_with(json!({"path": "/h.bin", "content_hash": wrong}), data)
            .await;
        assert_eq!(r.conflict(), "content_hash_mismatch/");
        assert_eq!(c.meta("/h.bin").await.conflict(), "path/not_found/");
    }
    let r = c
        .upload_with(json!({"path": "/h.bin", "content_hash": "abc"}), "x")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn write_modes() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let v1 = c.put("/Docs/report.txt", b"one").await;
    let rev1 = v1["rev"].as_str().unwrap().to_owned();

    // add onto different content conflicts; identical content is a no-op keeping the rev.
    let r = c
        .upload_with(json!({"path": "/docs/REPORT.txt"}), "two")
        .await;
    assert_eq!(r.conflict(), "path/conflict/file/");
    assert_eq!(r.json()["error"]["upload_session_id"], "");
    let same = c
        .upload_with(json!({"path": "/docs/report.txt"}), "one")
        .await
        .ok();
    assert_eq!(same["rev"], rev1);
    // strict_conflict makes identical content a conflict too.
    let r = c
        .upload_with(
            json!({"path": "/docs/report.txt", "strict_conflict": true}),
            "one",
        )
        .await;
    assert_eq!(r.conflict(), "path/conflict/file/");

    // add + autorename picks "report (1).txt".
    let renamed = c
        .upload_with(
            json!({"path": "/docs/report.txt", "autorename": true}),
            "two",
        )
        .await
        .ok();
    assert_eq!(renamed["path_display"], "/Docs/report (1).txt");

    // update against the current rev replaces and keeps the id; a stale rev conflicts.
    let v2 = c
        .upload_with(
            json!({"path": "/docs/report.txt", "mode": {".tag": "update", "update": rev1}}),
            "three",
        )
        .await
        .ok();
    assert_eq!(v2["id"], v1["id"]);
    assert_ne!(v2["rev"], v1["rev"]);
    assert_eq!(
        v2["path_display"], "/Docs/report.txt",
        "the stored name keeps its case"
    );
    let r = c
        .upload_with(
            json!({"path": "/docs/report.txt", "mode": {".tag": "update", "update": rev1}}),
            "four",
        )
        .await;
    assert_eq!(r.conflict(), "path/conflict/file/");
    // ... and with autorename it becomes a conflicted copy.
    let copy = c
        .upload_with(
            json!({"path": "/docs/report.txt", "mode": {".tag": "update", "update": rev1}, "autorename": true}),
            "four",
        )
        .await
        .ok();
    assert_eq!(copy["name"], "report (conflicted copy).txt");

    // overwrite replaces whatever is there (bare-string union form accepted).
    let v3 = c
        .upload_with(
            json!({"path": "/docs/report.txt", "mode": "overwrite"}),
            "five",
        )
        .await
        .ok();
    assert_eq!(v3["id"], v1["id"]);
    let body = c
        .download(json!({"path": "/docs/report.txt"}), None)
        .await
        .body;
    assert_eq!(body, b"five");

    // A folder in the way, or a file where a parent folder should be.
    let r = c
        .upload_with(json!({"path": "/docs", "mode": "overwrite"}), "x")
        .await;
    assert_eq!(r.conflict(), "path/conflict/folder/");
    let r = c
        .upload_with(json!({"path": "/docs/report.txt/inner.txt"}), "x")
        .await;
    assert_eq!(r.conflict(), "path/conflict/file_ancestor/");

    // Naming rules.
    let r = c
        .upload_with(json!({"path": "/docs/desktop.ini"}), "x")
        .await;
    assert_eq!(r.conflict(), "path/disallowed_name/");
    let r = c.upload_with(json!({"path": "/docs/trailing "}), "x").await;
    assert_eq!(r.conflict(), "path/malformed_path/");
    let long = format!("/{}", "n".repeat(256));
    let r = c.upload_with(json!({"path": long}), "x").await;
    assert_eq!(r.conflict(), "path/malformed_path/");
    let r = c
        .upload_with(json!({"path": "/a", "mode": "sideways"}), "x")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // client_modified is kept, to the second.
    let md = c
        .upload_with(
            json!({"path": "/when.txt", "client_modified": "2015-05-12T15:50:38Z"}),
            "t",
        )
        .await
        .ok();
    assert_eq!(md["client_modified"], "2015-05-12T15:50:38Z");
    let r = c
        .upload_with(
            json!({"path": "/when.txt", "client_modified": "2015-05-12T15:50:38.5Z"}),
            "t",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn racing_updates_exactly_one_wins() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    for round in 0..5 {
        let path = format!("/race{round}.txt");
        let base = c.put(&path, b"base").await;
        let rev = base["rev"].as_str().unwrap().to_owned();
        let mut tasks = Vec::new();
        for w in 0..4 {
            let (c, path, rev) = (c.clone(), path.clone(), rev.clone());
            tasks.push(tokio::spawn(async move {
                c.upload_with(
                    json!({"path": path, "mode": {".tag": "update", "update": rev}}),
                    format!("writer {w}"),
                )
                .await
            }));
        }
        let mut wins = 0;
        let mut winner = None;
        for t in tasks {
            let r = t.await.unwrap();
            if r.status == StatusCode::OK {
                wins += 1;
                winner = Some(r.json()["rev"].clone());
            } else {
                assert_eq!(r.conflict(), "path/conflict/file/");
            }
        }
        assert_eq!(wins, 1, "round {round}");
        assert_eq!(c.meta(&path).await.ok()["rev"], winner.unwrap());
    }
}

#[tokio::test]
async fn ranges_and_etags() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let data = bytes(5 * MIB, 3);
    let md = c.put("/r.bin", &data).await;
    let size = data.len();
    for (range, from, to) in [
        ("bytes=0-0", 0, 0),
        ("bytes=10-99", 10, 99),
        ("bytes=4194300-4194310", 4_194_300, 4_194_310),
        (&*format!("bytes={}-", size - 5), size - 5, size - 1),
        ("bytes=-7", size - 7, size - 1),
    ] {
        let r = c.download(json!({"path": "/r.bin"}), Some(range)).await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(r.body, &data[from..=to], "{range}");
        assert_eq!(
            r.headers["content-range"],
            format!("bytes {from}-{to}/{size}").as_str()
        );
        let result = r.api_result();
        assert_eq!(result["size"], size, "full-file metadata on a range");
        assert_eq!(result["content_hash"], md["content_hash"]);
    }
    let r = c
        .download(json!({"path": "/r.bin"}), Some("bytes=99999999-"))
        .await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    // An empty file answers a range probe with 200 and no bytes.
    c.put("/empty", b"").await;
    let r = c
        .download(json!({"path": "/empty"}), Some("bytes=0-0"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty());
    // ETag / If-None-Match.
    let etag = c.download(json!({"path": "/r.bin"}), None).await.headers["etag"].clone();
    let r = c
        .raw(
            c.http
                .post(format!("{}/2/files/download", c.url()))
                .bearer_auth(&c.token)
                .header("dropbox-api-arg", r#"{"path": "/r.bin"}"#)
                .header("if-none-match", etag),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    // Errors.
    assert_eq!(
        c.download(json!({"path": "/nope"}), None).await.conflict(),
        "path/not_found/"
    );
    c.rpc("files/create_folder_v2", json!({"path": "/dir"}))
        .await
        .ok();
    assert_eq!(
        c.download(json!({"path": "/dir"}), None).await.conflict(),
        "path/not_file/"
    );
}

#[tokio::test]
async fn oversized_uploads_are_refused() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    // Streamed without a length: counted, refused past 150 MiB, nothing committed.
    let chunk = bytes::Bytes::from(vec![0u8; MIB]);
    let stream =
        futures_util::stream::iter((0..151).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let r = c
        .upload_with(
            json!({"path": "/big.bin"}),
            reqwest::Body::wrap_stream(stream),
        )
        .await;
    assert_eq!(r.conflict(), "payload_too_large/");
    assert_eq!(c.meta("/big.bin").await.conflict(), "path/not_found/");
}

/// The `cubby_block_read_errors_total` sample of one kind on a server.
async fn block_errors(c: &crate::support::Client, kind: &str) -> u64 {
    let text = c
        .raw(c.http.get(format!("{}/metrics", c.url())))
        .await
        .text();
    let prefix = format!("cubby_block_read_errors_total{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
}

/// A block lost from the store is an error status (500, naming the request id), logged and
/// counted, not a cut connection; a block whose bytes changed on disk is never served: the
/// first piece is checked before the answer, a later one stops the body short.
#[tokio::test]
async fn missing_or_corrupt_blocks_are_never_served() {
    use sha2::{Digest, Sha256};
    let srv = TestServer::start().await;
    let c = srv.user("alice").await.on(0);
    let big = bytes(9 * 1024 * 1024, 5);
    let hashes: Vec<cubby_core::hash::BlockHash> = big
        .chunks(4 * 1024 * 1024)
        .map(|b| Sha256::digest(b).into())
        .collect();
    c.put("/lost.bin", &big).await;
    srv.store.blocks.delete(&hashes[1]).await.unwrap();
    let r = c.download(json!({"path": "/lost.bin"}), None).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    let id = r.headers["x-dropbox-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(r.text().contains(&id), "{}", r.text());
    assert_eq!(block_errors(&c, "missing").await, 1);
    // A range inside the blocks that are there is still served.
    let r = c
        .download(json!({"path": "/lost.bin"}), Some("bytes=0-99"))
        .await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.body, big[..100]);

    let local = srv.dir.path().join("blocks");
    if !local.is_dir() {
        return; // S3 blocks: corruption on disk is the embedded store's concern.
    }
    let file_of = |h: &cubby_core::hash::BlockHash| {
        let hex = cubby_core::hash::hex(h);
        local.join(&hex[..2]).join(hex)
    };
    let flip = |h: &cubby_core::hash::BlockHash| {
        let path = file_of(h);
        let mut data = std::fs::read(&path).unwrap();
        data[1000] ^= 0xff;
        std::fs::write(&path, data).unwrap();
    };
    // A small file whose one block changed on disk.
    let small = c.put("/small.txt", &bytes(70_000, 6)).await;
    let small_hash: cubby_core::hash::BlockHash = Sha256::digest(bytes(70_000, 6)).into();
    assert_eq!(small["size"], 70_000);
    flip(&small_hash);
    let r = c.download(json!({"path": "/small.txt"}), None).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(block_errors(&c, "corrupt").await, 1);
    // A large file whose second block changed: the first block is served, then the body
    // stops; not one wrong byte is sent.
    let other = bytes(9 * 1024 * 1024, 7);
    c.put("/corrupt.bin", &other).await;
    let second: cubby_core::hash::BlockHash = Sha256::digest(&other[4 << 20..8 << 20]).into();
    flip(&second);
    let resp = c
        .http
        .post(format!("{}/2/files/download", c.url()))
        .bearer_auth(&c.token)
        .header("Dropbox-API-Arg", r#"{"path": "/corrupt.bin"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut got = Vec::new();
    let mut body = resp;
    let ended = loop {
        match body.chunk().await {
            Ok(Some(chunk)) => got.extend_from_slice(&chunk),
            Ok(None) => break "complete",
            Err(_) => break "cut",
        }
    };
    assert_eq!(ended, "cut", "a corrupt body was delivered whole");
    assert!(got.len() < other.len());
    assert_eq!(got, other[..got.len()], "wrong bytes were sent");
    assert_eq!(block_errors(&c, "corrupt").await, 2);
    // A thumbnail is never made from a corrupt photo: its read is checked as a download's.
    let photo = crate::thumbnails::jpeg(64, 48);
    c.put("/photo.jpg", &photo).await;
    flip(&Sha256::digest(&photo).into());
    let r = c
        .raw(
            c.http
                .post(format!("{}/2/files/get_thumbnail_v2", c.url()))
                .bearer_auth(&c.token)
                .header(
                    "dropbox-api-arg",
                    r#"{"resource": {".tag": "path", "path": "/photo.jpg"}}"#,
                ),
        )
        .await;
    assert_ne!(r.status, StatusCode::OK, "a thumbnail of corrupt bytes");
    assert_eq!(block_errors(&c, "corrupt").await, 3);
}
