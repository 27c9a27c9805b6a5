//! Upload sessions: sequential and concurrent, every offset error, a restart in the middle,
//! and finish batches mixing good and failing entries. In scale-out mode the requests of one
//! session alternate between the two servers.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Client, TestServer, bytes, content_hash};

const MIB: usize = 1024 * 1024;

async fn start(c: &Client, arg: Value, data: &[u8]) -> String {
    c.content("files/upload_session/start", arg, data.to_vec())
        .await
        .ok()["session_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn append(
    c: &Client,
    id: &str,
    offset: usize,
    data: &[u8],
    close: bool,
) -> crate::support::Reply {
    c.content(
        "files/upload_session/append_v2",
        json!({"cursor": {"session_id": id, "offset": offset}, "close": close, "content_hash": content_hash(data)}),
        data.to_vec(),
    )
    .await
}

async fn finish(
    c: &Client,
    id: &str,
    offset: usize,
    path: &str,
    data: &[u8],
) -> crate::support::Reply {
    c.content(
        "files/upload_session/finish",
        json!({"cursor": {"session_id": id, "offset": offset}, "commit": {"path": path}, "content_hash": content_hash(data)}),
        data.to_vec(),
    )
    .await
}

#[tokio::test]
async fn sequential_session_with_unaligned_chunks_and_offset_errors() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let data = bytes(13 * MIB + 12_345, 5);
    // Chunks that straddle block boundaries: 1 MiB, 5 MiB, 3.5 MiB, the rest at finish.
    let cuts = [0, MIB, 6 * MIB, 9 * MIB + MIB / 2];
    let id = start(
        &c,
        json!({"content_hash": content_hash(&data[..cuts[1]])}),
        &data[..cuts[1]],
    )
    .await;
    for w in cuts[1..].windows(2) {
        let r = append(&c, &id, w[0], &data[w[0]..w[1]], false).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json(), Value::Null, "append_v2 returns null");
    }
    let at = cuts[3];
    // Offset errors say where the session is.
    let r = append(&c, &id, at - 10, b"late", false).await;
    assert_eq!(r.conflict(), "incorrect_offset/");
    assert_eq!(r.json()["error"]["correct_offset"], at);
    let r = append(&c, &id, at + 10, b"early", false).await;
    assert_eq!(r.json()["error"]["correct_offset"], at);
    // A bad content hash changes nothing.
    let r = c
        .content(
            "files/upload_session/append_v2",
            json!({"cursor": {"session_id": id, "offset": at}, "content_hash": content_hash(b"other")}),
            data[at..at + 100].to_vec(),
        )
        .await;
    assert_eq!(r.conflict(), "content_hash_mismatch/");
    // Finish at a wrong offset, then right.
    let r = finish(&c, &id, at + 1, "/big/session.bin", &data[at..]).await;
    assert_eq!(r.conflict(), "lookup_failed/incorrect_offset/");
    assert_eq!(r.json()["error"]["lookup_failed"]["correct_offset"], at);
    let md = finish(&c, &id, at, "/big/session.bin", &data[at..])
        .await
        .ok();
    assert_eq!(md["size"], data.len());
    assert_eq!(md["content_hash"], content_hash(&data));
    let got = c.download(json!({"path": "/big/session.bin"}), None).await;
    assert!(got.body == data, "downloaded bytes differ");
    // The session is spent; unknown sessions are not found.
    let r = finish(&c, &id, data.len(), "/big/again.bin", b"").await;
    assert_eq!(r.conflict(), "lookup_failed/not_found/");
    let r = append(&c, "pid_upload_session:nope", 0, b"x", false).await;
    assert_eq!(r.conflict(), "not_found/");
    // A closed session refuses appends but can be finished.
    let id = start(&c, json!({"close": true}), b"closed data").await;
    assert_eq!(
        append(&c, &id, 11, b"more", false).await.conflict(),
        "closed/"
    );
    assert_eq!(
        finish(&c, &id, 11, "/closed.txt", b"").await.ok()["size"],
        11
    );
    // Every append re-cut a tail block; the reference counts still match the references.
    let fsck = srv.store.fsck(false, true).await.unwrap();
    assert!(fsck.is_clean() && fsck.miscounted == 0, "{fsck:?}");
}

#[tokio::test]
async fn finish_conflict_keeps_the_data_for_a_retry() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    c.put("/taken.txt", b"already here").await;
    let data = bytes(3000, 9);
    let id = start(&c, json!({}), &data).await;
    let r = finish(&c, &id, 3000, "/taken.txt", b"").await;
    assert_eq!(r.conflict(), "path/conflict/file/");
    let md = finish(&c, &id, 3000, "/free.txt", b"").await.ok();
    assert_eq!(md["content_hash"], content_hash(&data));
}

#[tokio::test]
async fn concurrent_session_out_of_order() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let data = bytes(3 * 4 * MIB + 777, 7);
    let r = c
        .content(
            "files/upload_session/start",
            json!({"session_type": "concurrent"}),
            b"data".to_vec(),
        )
        .await;
    assert_eq!(r.conflict(), "concurrent_session_data_not_allowed/");
    let r = c
        .content(
            "files/upload_session/start",
            json!({"session_type": {".tag": "concurrent"}, "close": true}),
            Vec::new(),
        )
        .await;
    assert_eq!(r.conflict(), "concurrent_session_close_not_allowed/");
    let id = start(&c, json!({"session_type": {".tag": "concurrent"}}), b"").await;
    let b = 4 * MIB;
    // Misaligned offsets and sizes are refused.
    assert_eq!(
        append(&c, &id, 100, &data[..b], false).await.conflict(),
        "concurrent_session_invalid_offset/"
    );
    assert_eq!(
        append(&c, &id, 0, &data[..b - 1], false).await.conflict(),
        "concurrent_session_invalid_data_size/"
    );
    // Last piece first (closing), then the middle, then the start.
    append(&c, &id, 3 * b, &data[3 * b..], true).await.ok();
    let r = finish(&c, &id, data.len(), "/conc.bin", b"").await;
    assert_eq!(r.conflict(), "concurrent_session_missing_data/");
    append(&c, &id, b, &data[b..3 * b], false).await.ok();
    append(&c, &id, 0, &data[..b], false).await.ok();
    let md = finish(&c, &id, data.len(), "/conc.bin", b"").await.ok();
    assert_eq!(md["content_hash"], content_hash(&data));
    assert!(c.download(json!({"path": "/conc.bin"}), None).await.body == data);
    // Not closed yet.
    let id = start(&c, json!({"session_type": "concurrent"}), b"").await;
    append(&c, &id, 0, &data[..b], false).await.ok();
    assert_eq!(
        finish(&c, &id, b, "/x.bin", b"").await.conflict(),
        "concurrent_session_not_closed/"
    );
    // Appends at offsets already taken replaced their blocks; the counts followed.
    let fsck = srv.store.fsck(false, true).await.unwrap();
    assert!(fsck.is_clean() && fsck.miscounted == 0, "{fsck:?}");
}

#[tokio::test]
async fn session_survives_a_restart() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let data = bytes(6 * MIB + 5, 3);
    let id = start(&c, json!({}), &data[..5 * MIB]).await;
    let token = c.token.clone();
    let srv = TestServer::restart(srv.stop().await).await;
    let mut c = srv.client_for("alice").await;
    c.token = token;
    append(&c, &id, 5 * MIB, &data[5 * MIB..6 * MIB], false)
        .await
        .ok();
    let md = finish(&c, &id, 6 * MIB, "/resumed.bin", &data[6 * MIB..])
        .await
        .ok();
    assert_eq!(md["content_hash"], content_hash(&data));
}

#[tokio::test]
async fn finish_batch_mixes_good_and_failing_entries() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let ids: Vec<String> = c
        .rpc(
            "files/upload_session/start_batch",
            json!({"num_sessions": 4}),
        )
        .await
        .ok()["session_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 4);
    c.put("/batch/taken.txt", b"x").await;
    for (i, id) in ids.iter().enumerate() {
        let close = i != 2;
        append(&c, id, 0, format!("file {i}").as_bytes(), close)
            .await
            .ok();
    }
    let entry = |i: usize, path: &str| json!({"cursor": {"session_id": ids[i], "offset": 6}, "commit": {"path": path}});
    let v = c
        .rpc(
            "files/upload_session/finish_batch_v2",
            json!({"entries": [
                entry(0, "/batch/a.txt"),
                entry(1, "/batch/taken.txt"),
                entry(2, "/batch/open.txt"),
                entry(3, "/batch/d.txt"),
                {"cursor": {"session_id": "pid_upload_session:nope", "offset": 0}, "commit": {"path": "/batch/e.txt"}},
                entry(0, "/batch/again.txt"),
                entry(1, "/batch/b.txt"),
            ]}),
        )
        .await
        .ok();
    let e = v["entries"].as_array().unwrap();
    assert_eq!(e[0][".tag"], "success");
    assert_eq!(e[0]["name"], "a.txt");
    assert_eq!(
        e[1]["failure"],
        json!({".tag": "path", "path": {".tag": "conflict", "conflict": {".tag": "file"}}})
    );
    assert_eq!(
        e[2]["failure"],
        json!({".tag": "lookup_failed", "lookup_failed": {".tag": "not_closed"}})
    );
    assert_eq!(e[3][".tag"], "success");
    assert_eq!(e[4]["failure"]["lookup_failed"][".tag"], "not_found");
    // A session committed earlier in the batch is gone; one whose entry failed is still there.
    assert_eq!(e[5]["failure"]["lookup_failed"][".tag"], "not_found");
    assert_eq!(e[6][".tag"], "success");
    assert_eq!(
        c.download(json!({"path": "/batch/b.txt"}), None).await.body,
        b"file 1"
    );
    assert_eq!(
        c.meta("/batch/again.txt").await.conflict(),
        "path/not_found/"
    );
    // Sessions started with data hold it; a finished one is gone for good.
    let r = c
        .rpc(
            "files/upload_session/finish_batch_v2",
            json!({"entries": [entry(0, "/batch/late.txt")]}),
        )
        .await
        .ok();
    assert_eq!(
        r["entries"][0]["failure"]["lookup_failed"][".tag"],
        "not_found"
    );
    assert_eq!(
        c.download(json!({"path": "/batch/d.txt"}), None).await.body,
        b"file 3"
    );
    // The v1 route completes synchronously.
    let id = start(&c, json!({"close": true}), b"v1").await;
    let v = c
        .rpc(
            "files/upload_session/finish_batch",
            json!({"entries": [{"cursor": {"session_id": id, "offset": 2}, "commit": {"path": "/batch/v1.txt"}}]}),
        )
        .await
        .ok();
    assert_eq!(v[".tag"], "complete");
    assert_eq!(v["entries"][0][".tag"], "success");
}

#[tokio::test]
async fn finish_batch_of_new_files_commits_like_one_by_one() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    c.put("/fast/existing/keep.txt", b"keep").await;
    let gone = c.put("/fast/gone.txt", b"old").await;
    c.rpc("files/delete_v2", json!({"path": gone["path_lower"]}))
        .await
        .ok();
    let (_, cursor) = c
        .list_all(json!({"path": "/fast", "recursive": true}))
        .await;
    let mut entries = Vec::new();
    let paths = [
        "/fast/a/b/one.txt",
        "/FAST/A/two.txt",
        "/fast/existing/three.txt",
        "/fast/gone.txt",
        "/fast/a/B/four.txt",
    ];
    for (i, p) in paths.iter().enumerate() {
        let id = start(&c, json!({"close": true}), format!("data {i}").as_bytes()).await;
        entries.push(json!({"cursor": {"session_id": id, "offset": 6}, "commit": {"path": p, "client_modified": "2020-01-02T03:04:05Z"}}));
    }
    entries.push(json!({"cursor": {"session_id": "pid_upload_session:nope", "offset": 0}, "commit": {"path": "/fast/x.txt"}}));
    let v = c
        .rpc(
            "files/upload_session/finish_batch_v2",
            json!({"entries": entries}),
        )
        .await
        .ok();
    let e = v["entries"].as_array().unwrap();
    let shown: Vec<&str> = e[..5]
        .iter()
        .map(|x| x["path_display"].as_str().unwrap())
        .collect();
    // Folders created by the batch keep the case of their first mention, as one-by-one
    // commits would; existing folders keep theirs.
    assert_eq!(
        shown,
        [
            "/fast/a/b/one.txt",
            "/fast/a/two.txt",
            "/fast/existing/three.txt",
            "/fast/gone.txt",
            "/fast/a/b/four.txt"
        ]
    );
    assert_eq!(e[0]["client_modified"], "2020-01-02T03:04:05Z");
    assert_eq!(e[5]["failure"]["lookup_failed"][".tag"], "not_found");
    // Their bytes are small blocks in the database: read whole and by range.
    for (i, p) in paths.iter().enumerate() {
        let r = c.download(json!({"path": p}), None).await;
        assert_eq!(r.body, format!("data {i}").as_bytes(), "{p}");
    }
    let r = c
        .download(json!({"path": paths[1]}), Some("bytes=2-5"))
        .await;
    assert_eq!(r.body, b"ta 1");
    assert_eq!(c.meta("/fast/a/b").await.ok()[".tag"], "folder");
    // The change feed lists each new folder before what is inside it.
    let v = c
        .rpc("files/list_folder/continue", json!({"cursor": cursor}))
        .await
        .ok();
    let feed: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["path_lower"].as_str().unwrap())
        .collect();
    let pos = |p: &str| {
        feed.iter()
            .position(|x| *x == p)
            .unwrap_or_else(|| panic!("{p} in {feed:?}"))
    };
    assert!(pos("/fast/a") < pos("/fast/a/b") && pos("/fast/a/b") < pos("/fast/a/b/one.txt"));
    assert_eq!(feed.len(), 7, "{feed:?}");

    // A batch where one entry meets an existing file is committed one by one: that entry
    // conflicts, the others succeed.
    let a = start(&c, json!({"close": true}), b"new").await;
    let b = start(&c, json!({"close": true}), b"clash").await;
    let v = c
        .rpc(
            "files/upload_session/finish_batch_v2",
            json!({"entries": [
                {"cursor": {"session_id": a, "offset": 3}, "commit": {"path": "/fast/new.txt"}},
                {"cursor": {"session_id": b, "offset": 5}, "commit": {"path": "/fast/a/two.txt"}},
            ]}),
        )
        .await
        .ok();
    assert_eq!(v["entries"][0][".tag"], "success");
    assert_eq!(
        v["entries"][1]["failure"]["path"]["conflict"][".tag"],
        "file"
    );
}

#[tokio::test]
async fn small_closed_sessions_write_no_block_file_and_survive_a_restart() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let before = srv.block_files().await;
    // Closed starts of a few bytes each (one repeated), one with a wrong content hash.
    let datas: Vec<Vec<u8>> = (0..5)
        .map(|i| format!("small {}", i % 4).repeat(100).into_bytes())
        .collect();
    let mut ids = Vec::new();
    for d in &datas {
        ids.push(
            start(
                &c,
                json!({"close": true, "content_hash": content_hash(d)}),
                d,
            )
            .await,
        );
    }
    let r = c
        .content(
            "files/upload_session/start",
            json!({"close": true, "content_hash": content_hash(b"other")}),
            b"not other".to_vec(),
        )
        .await;
    assert_eq!(r.conflict(), "content_hash_mismatch/");
    // Closed: no more data, but their bytes are kept (in the database, not as blocks).
    assert_eq!(
        append(&c, &ids[0], datas[0].len(), b"more", false)
            .await
            .conflict(),
        "closed/"
    );
    assert_eq!(srv.block_files().await, before);
    let token = c.token.clone();
    let srv = TestServer::restart(srv.stop().await).await;
    let mut c = srv.client_for("alice").await;
    c.token = token;
    // Another account's finish finds nothing and stores nothing.
    let bob = srv.user("bob").await;
    let entry = |i: usize, path: String| json!({"cursor": {"session_id": ids[i], "offset": datas[i].len()}, "commit": {"path": path}});
    let v = bob
        .rpc(
            "files/upload_session/finish_batch_v2",
            json!({"entries": [entry(0, "/stolen".into())]}),
        )
        .await
        .ok();
    assert_eq!(
        v["entries"][0]["failure"]["lookup_failed"][".tag"],
        "not_found"
    );
    assert_eq!(srv.block_files().await, before);
    // The batch, after the restart: every file committed, its bytes small blocks in the
    // database (no block file), each stored once.
    let entries: Vec<Value> = (0..4).map(|i| entry(i, format!("/small/f{i}"))).collect();
    let v = c
        .rpc(
            "files/upload_session/finish_batch_v2",
            json!({"entries": entries}),
        )
        .await
        .ok();
    for (i, e) in v["entries"].as_array().unwrap().iter().enumerate() {
        assert_eq!(e[".tag"], "success", "{e}");
        assert_eq!(e["content_hash"], content_hash(&datas[i]));
        let got = c
            .download(json!({"path": format!("/small/f{i}")}), None)
            .await;
        assert!(got.body == datas[i], "f{i}: downloaded bytes differ");
    }
    assert_eq!(srv.block_files().await, before);
    let small: i64 = srv.store.block_refs().await.unwrap().len() as i64;
    assert_eq!(small, 4, "four distinct small blocks, each counted");
    // One finished alone, with `finish`; a spent session is not found.
    let md = finish(&c, &ids[4], datas[4].len(), "/small/alone", b"")
        .await
        .ok();
    assert_eq!(md["content_hash"], content_hash(&datas[4]));
    assert_eq!(srv.block_files().await, before, "no block file");
    assert_eq!(
        srv.store.block_refs().await.unwrap().len(),
        4,
        "same bytes as f0: no new block"
    );
    let r = finish(&c, &ids[0], datas[0].len(), "/small/again", b"").await;
    assert_eq!(r.conflict(), "lookup_failed/not_found/");
    let fsck = srv.store.fsck(false, true).await.unwrap();
    assert!(fsck.is_clean() && fsck.miscounted == 0, "{fsck:?}");
}

/// Small unaligned appends leave no garbage: the bytes past a session's full blocks live in
/// its row until the next append or the finish, so a file sent in 64 KiB pieces stores its
/// blocks and nothing else. (A partial block per append, re-cut by the next, left 132 MiB of
/// blocks for this 4 MiB file.)
#[tokio::test]
async fn small_unaligned_appends_store_only_the_files_blocks() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let before = srv.block_files().await;
    let piece = 64 * 1024;
    let data = bytes(4 * MIB + 3 * piece + 1_000, 11);
    // The content hash of a start with a rest is checked (its rest is hashed, not written).
    let r = c
        .content(
            "files/upload_session/start",
            json!({"content_hash": content_hash(b"other")}),
            data[..piece].to_vec(),
        )
        .await;
    assert_eq!(r.conflict(), "content_hash_mismatch/");
    let id = start(
        &c,
        json!({"content_hash": content_hash(&data[..piece])}),
        &data[..piece],
    )
    .await;
    let mut at = piece;
    while data.len() - at > piece {
        append(&c, &id, at, &data[at..at + piece], false).await.ok();
        at += piece;
    }
    // Mid-way the session holds one full block and no other block.
    assert_eq!(srv.block_files().await, before + 1);
    // A wrong content hash leaves the rest as it was.
    let r = c
        .content(
            "files/upload_session/append_v2",
            json!({"cursor": {"session_id": id, "offset": at}, "content_hash": content_hash(b"x")}),
            data[at..].to_vec(),
        )
        .await;
    assert_eq!(r.conflict(), "content_hash_mismatch/");
    let md = finish(&c, &id, at, "/pieces.bin", &data[at..]).await.ok();
    assert_eq!(md["content_hash"], content_hash(&data));
    assert_eq!(srv.block_files().await, before + 2, "the file's two blocks");
    let got = c.download(json!({"path": "/pieces.bin"}), None).await;
    assert!(got.body == data, "downloaded bytes differ");

    // The rest kept in the row survives a restart, and a finish without data seals it.
    let id = start(&c, json!({}), &data[..piece + 7]).await;
    let token = c.token.clone();
    let srv = TestServer::restart(srv.stop().await).await;
    let mut c = srv.client_for("alice").await;
    c.token = token;
    append(&c, &id, piece + 7, &data[piece + 7..3 * piece], true)
        .await
        .ok();
    let md = finish(&c, &id, 3 * piece, "/rest.bin", b"").await.ok();
    assert_eq!(md["content_hash"], content_hash(&data[..3 * piece]));

    // A session from before migration 17 names its partial last block as its tail; it goes
    // on, and the block's reference goes with the next append.
    let alice = srv.store.user("alice").await.unwrap();
    let head = bytes::Bytes::from(data[..piece + 3].to_vec());
    let tail = srv.store.blocks.put(head.clone()).await.unwrap();
    srv.store.blocks.sync(&[tail]).await.unwrap();
    let id = srv
        .store
        .start_with_data(
            alice.id,
            &[tail],
            Default::default(),
            head.len() as u64,
            false,
        )
        .await
        .unwrap();
    append(&c, &id, piece + 3, &data[piece + 3..2 * piece], false)
        .await
        .ok();
    let md = finish(
        &c,
        &id,
        2 * piece,
        "/legacy.bin",
        &data[2 * piece..3 * piece],
    )
    .await
    .ok();
    assert_eq!(md["content_hash"], content_hash(&data[..3 * piece]));
    let fsck = srv.store.fsck(false, true).await.unwrap();
    assert!(fsck.is_clean() && fsck.miscounted == 0, "{fsck:?}");
}
