//! get_metadata, path forms and case, create_folder, delete, move and copy.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestServer, bytes};

#[tokio::test]
async fn metadata_and_path_forms() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let f = c.put("/Photos/Été/Beach.JPG", b"sand").await;
    let folder = c.meta("/photos").await.ok();
    assert_eq!(folder[".tag"], "folder");
    assert_eq!(folder["path_display"], "/Photos");
    let id = folder["id"].as_str().unwrap();

    // Case-insensitive lookup; name keeps the stored case.
    let m = c.meta("/PHOTOS/été/beach.jpg").await.ok();
    assert_eq!(m[".tag"], "file");
    assert_eq!(m["name"], "Beach.JPG");
    assert_eq!(m["path_lower"], "/photos/été/beach.jpg");
    assert_eq!(m["id"], f["id"]);

    // id:, id:/rel and rev: forms.
    assert_eq!(
        c.meta(f["id"].as_str().unwrap()).await.ok()["path_lower"],
        "/photos/été/beach.jpg"
    );
    assert_eq!(
        c.meta(&format!("{id}/été/BEACH.jpg")).await.ok()["id"],
        f["id"]
    );
    assert_eq!(
        c.meta(&format!("rev:{}", f["rev"].as_str().unwrap()))
            .await
            .ok()["rev"],
        f["rev"]
    );
    assert_eq!(
        c.meta("id:doesnotexist").await.conflict(),
        "path/not_found/"
    );
    assert_eq!(
        c.meta(&format!("{}/x", f["id"].as_str().unwrap()))
            .await
            .conflict(),
        "path/not_folder/"
    );
    assert_eq!(
        c.meta("rev:0123456789abc").await.conflict(),
        "path/not_found/"
    );

    // Malformed paths are 409 malformed_path; the root is a pattern error (400).
    for bad in ["/a//b", "/a/", "/a/../b", "/x "] {
        assert_eq!(
            c.meta(bad).await.conflict(),
            "path/malformed_path/",
            "{bad}"
        );
    }
    assert_eq!(c.meta("").await.status, StatusCode::BAD_REQUEST);

    // include_deleted shows a tombstone.
    c.rpc("files/delete_v2", json!({"path": "/photos/été/beach.jpg"}))
        .await
        .ok();
    assert_eq!(
        c.meta("/photos/été/beach.jpg").await.conflict(),
        "path/not_found/"
    );
    let d = c
        .rpc(
            "files/get_metadata",
            json!({"path": "/photos/été/beach.jpg", "include_deleted": true}),
        )
        .await
        .ok();
    assert_eq!(d[".tag"], "deleted");
    assert_eq!(d["name"], "Beach.JPG");
    // The old revision is still readable by rev.
    let r = c
        .download(
            json!({"path": format!("rev:{}", f["rev"].as_str().unwrap())}),
            None,
        )
        .await;
    assert_eq!(r.body, b"sand");
}

#[tokio::test]
async fn create_folder_rules() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let v2 = c
        .rpc("files/create_folder_v2", json!({"path": "/A/B/New"}))
        .await
        .ok();
    assert_eq!(v2["metadata"]["path_display"], "/A/B/New");
    assert!(v2["metadata"].get(".tag").is_none());
    assert_eq!(
        c.meta("/a/b").await.ok()[".tag"],
        "folder",
        "parents are created"
    );
    let r = c
        .rpc("files/create_folder_v2", json!({"path": "/a/b/new"}))
        .await;
    assert_eq!(r.conflict(), "path/conflict/folder/");
    let auto = c
        .rpc(
            "files/create_folder_v2",
            json!({"path": "/a/b/new", "autorename": true}),
        )
        .await
        .ok();
    assert_eq!(
        auto["metadata"]["name"], "new (1)",
        "the requested spelling, numbered"
    );
    // v1 returns the metadata bare.
    let v1 = c
        .rpc("files/create_folder", json!({"path": "/v1"}))
        .await
        .ok();
    assert_eq!(v1["name"], "v1");
    c.put("/file", b"x").await;
    assert_eq!(
        c.rpc("files/create_folder_v2", json!({"path": "/file"}))
            .await
            .conflict(),
        "path/conflict/file/"
    );
    assert_eq!(
        c.rpc("files/create_folder_v2", json!({"path": "/file/sub"}))
            .await
            .conflict(),
        "path/conflict/file_ancestor/"
    );
    assert_eq!(
        c.rpc("files/create_folder_v2", json!({"path": "/.dropbox"}))
            .await
            .conflict(),
        "path/disallowed_name/"
    );
}

#[tokio::test]
async fn delete_rules() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    c.put("/tree/a/1.txt", b"1").await;
    c.put("/tree/a/2.txt", b"2").await;
    let f = c.put("/tree/b.txt", b"b").await;
    let r = c
        .rpc(
            "files/delete_v2",
            json!({"path": "/tree/b.txt", "parent_rev": "0123456789abcdef"}),
        )
        .await;
    assert_eq!(r.conflict(), "path_write/conflict/file/");
    let d = c
        .rpc(
            "files/delete_v2",
            json!({"path": "/tree/b.txt", "parent_rev": f["rev"]}),
        )
        .await
        .ok();
    assert_eq!(
        d["metadata"][".tag"], "file",
        "delete returns the metadata as it was"
    );
    let d = c.rpc("files/delete", json!({"path": "/TREE"})).await.ok();
    assert_eq!(d[".tag"], "folder");
    for p in ["/tree", "/tree/a", "/tree/a/1.txt"] {
        assert_eq!(c.meta(p).await.conflict(), "path/not_found/", "{p}");
    }
    assert_eq!(
        c.rpc("files/delete_v2", json!({"path": "/tree"}))
            .await
            .conflict(),
        "path_lookup/not_found/"
    );
    // Recreating at a deleted path works and gets a new id.
    let again = c.put("/tree/a/1.txt", b"new").await;
    assert_ne!(again["id"], Value::Null);
}

#[tokio::test]
async fn move_and_copy() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let big = bytes(9 * 1024 * 1024, 9);
    let f = c.put("/src/deep/big.bin", &big).await;
    c.put("/src/top.txt", b"top").await;
    let src_id = c.meta("/src").await.ok()["id"].clone();

    // Copying shares blocks: no block file is written.
    let before = srv.block_files().await;
    let cp = c
        .rpc(
            "files/copy_v2",
            json!({"from_path": "/src", "to_path": "/copy"}),
        )
        .await
        .ok();
    assert_eq!(cp["metadata"][".tag"], "folder");
    assert_ne!(cp["metadata"]["id"], src_id, "a copy gets a new id");
    assert_eq!(srv.block_files().await, before, "copy wrote blocks");
    let copied = c.meta("/copy/deep/big.bin").await.ok();
    assert_eq!(copied["content_hash"], f["content_hash"]);
    assert_ne!(copied["id"], f["id"]);
    assert_eq!(
        c.download(json!({"path": "/copy/deep/big.bin"}), None)
            .await
            .body,
        big
    );

    // Moving keeps ids, moves the subtree, leaves nothing behind.
    let mv = c
        .rpc(
            "files/move_v2",
            json!({"from_path": "/src", "to_path": "/Moved/Here"}),
        )
        .await
        .ok();
    assert_eq!(mv["metadata"]["id"], src_id);
    assert_eq!(mv["metadata"]["path_display"], "/Moved/Here");
    let moved = c.meta("/moved/here/deep/big.bin").await.ok();
    assert_eq!(moved["id"], f["id"]);
    assert_eq!(moved["path_display"], "/Moved/Here/deep/big.bin");
    assert_eq!(c.meta("/src/top.txt").await.conflict(), "path/not_found/");
    assert_eq!(
        c.meta(f["id"].as_str().unwrap()).await.ok()["path_lower"],
        "/moved/here/deep/big.bin"
    );

    // Case-only rename.
    let r = c
        .rpc(
            "files/move_v2",
            json!({"from_path": "/moved/here/top.txt", "to_path": "/moved/here/TOP.txt"}),
        )
        .await
        .ok();
    assert_eq!(r["metadata"]["name"], "TOP.txt");

    // Errors.
    let r = c
        .rpc(
            "files/move_v2",
            json!({"from_path": "/moved", "to_path": "/moved/here/inside"}),
        )
        .await;
    assert_eq!(r.conflict(), "cant_move_folder_into_itself/");
    let r = c
        .rpc(
            "files/move_v2",
            json!({"from_path": "/missing", "to_path": "/x"}),
        )
        .await;
    assert_eq!(r.conflict(), "from_lookup/not_found/");
    let r = c
        .rpc(
            "files/copy_v2",
            json!({"from_path": "/copy", "to_path": "/moved"}),
        )
        .await;
    assert_eq!(r.conflict(), "to/conflict/folder/");
    let r = c
        .rpc(
            "files/copy_v2",
            json!({"from_path": "/copy", "to_path": "/moved", "autorename": true}),
        )
        .await
        .ok();
    assert_eq!(r["metadata"]["name"], "moved (1)");
    let r = c
        .rpc(
            "files/move",
            json!({"from_path": "/copy/top.txt", "to_path": "/v1.txt"}),
        )
        .await
        .ok();
    assert_eq!(r[".tag"], "file", "v1 move returns the metadata bare");
}

/// A moved file gets a new rev at its new place, as on Dropbox: `rev:` of the new rev answers
/// the new path (sync clients such as Maestral rebuild their events from it), `rev:` of the
/// old one still answers where it was written; content, id and client_modified stay.
#[tokio::test]
async fn a_move_gives_each_moved_file_a_new_rev_at_its_new_place() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let a = c.put("/a.txt", b"alpha").await;
    let inner = c.put("/dir/sub/inner.txt", b"inner").await;
    let rev_meta = |rev: &Value| {
        let path = format!("rev:{}", rev.as_str().unwrap());
        let c = c.clone();
        async move { c.meta(&path).await }
    };

    for (from, to, label) in [
        ("/a.txt", "/b.txt", "rename"),
        ("/b.txt", "/B.txt", "case-only rename"),
    ] {
        let before = c.meta(from).await.ok();
        let mv = c
            .rpc("files/move_v2", json!({"from_path": from, "to_path": to}))
            .await
            .ok()["metadata"]
            .clone();
        assert_ne!(mv["rev"], before["rev"], "{label}: a new rev");
        assert_eq!(mv["id"], a["id"], "{label}: same id");
        assert_eq!(mv["content_hash"], a["content_hash"]);
        assert_eq!(mv["client_modified"], a["client_modified"]);
        assert_eq!(
            c.meta(to).await.ok()["rev"],
            mv["rev"],
            "{label}: listed with its new rev"
        );
        let now = rev_meta(&mv["rev"]).await.ok();
        assert_eq!(now["path_display"], to, "{label}: rev: of the new rev");
        let old = rev_meta(&before["rev"]).await.ok();
        assert_eq!(
            old["path_display"], before["path_display"],
            "{label}: old rev stays"
        );
        let body = c
            .download(
                json!({"path": format!("rev:{}", mv["rev"].as_str().unwrap())}),
                None,
            )
            .await
            .body;
        assert_eq!(body, b"alpha");
    }

    // A folder's files all get new revs at their new paths, in the change feed too.
    let cursor = c
        .rpc(
            "files/list_folder/get_latest_cursor",
            json!({"path": "", "recursive": true}),
        )
        .await
        .ok()["cursor"]
        .clone();
    c.rpc(
        "files/move_v2",
        json!({"from_path": "/dir", "to_path": "/renamed"}),
    )
    .await
    .ok();
    let moved = c.meta("/renamed/sub/inner.txt").await.ok();
    assert_ne!(moved["rev"], inner["rev"]);
    assert_eq!(moved["id"], inner["id"]);
    assert_eq!(
        rev_meta(&moved["rev"]).await.ok()["path_display"],
        "/renamed/sub/inner.txt"
    );
    let feed = c
        .rpc("files/list_folder/continue", json!({"cursor": cursor}))
        .await
        .ok();
    let entry = feed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path_lower"] == "/renamed/sub/inner.txt")
        .cloned()
        .expect("the moved file is in the feed");
    assert_eq!(entry["rev"], moved["rev"], "{feed}");
    // Every revision row holds the blocks again: fsck finds every count right.
    let fsck = srv.store.fsck(false, true).await.unwrap();
    assert!(fsck.is_clean() && fsck.miscounted == 0, "{fsck:?}");
}
