//! Version history (list_revisions, restore, permanently_delete) and temporary links.

use std::time::Instant;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestServer, bytes};

#[tokio::test]
async fn revisions_and_restore_byte_for_byte() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let v1 = bytes(9 * 1024 * 1024, 1);
    let v2 = bytes(5000, 2);
    let r1 = c.put("/h/doc.bin", &v1).await;
    let r2 = c
        .upload_with(
            json!({"path": "/h/doc.bin", "mode": "overwrite"}),
            v2.clone(),
        )
        .await
        .ok();
    let r3 = c
        .upload_with(json!({"path": "/h/doc.bin", "mode": "overwrite"}), "third")
        .await
        .ok();
    // Newest first, paged with before_rev.
    let v = c
        .rpc(
            "files/list_revisions",
            json!({"path": "/h/doc.bin", "limit": 2}),
        )
        .await
        .ok();
    let revs: Vec<_> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["rev"].clone())
        .collect();
    assert_eq!(revs, [r3["rev"].clone(), r2["rev"].clone()]);
    assert_eq!(v["has_more"], true);
    assert_eq!(v["is_deleted"], false);
    let v = c
        .rpc(
            "files/list_revisions",
            json!({"path": "/h/doc.bin", "limit": 2, "before_rev": r2["rev"]}),
        )
        .await
        .ok();
    assert_eq!(v["entries"][0]["rev"], r1["rev"]);
    assert_eq!(v["has_more"], false);
    // A move is a new revision at the new path (as on Dropbox); id mode follows the file
    // across it; before_rev is path-mode only.
    let moved = c
        .rpc(
            "files/move_v2",
            json!({"from_path": "/h/doc.bin", "to_path": "/h/moved.bin"}),
        )
        .await
        .ok()["metadata"]
        .clone();
    assert_ne!(moved["rev"], r3["rev"]);
    let v = c
        .rpc(
            "files/list_revisions",
            json!({"path": r1["id"], "mode": "id", "limit": 10}),
        )
        .await
        .ok();
    assert_eq!(v["entries"].as_array().unwrap().len(), 4);
    // Path mode lists what was written at the path: at the new one, the move; at the old
    // one, the three versions written there.
    let v = c
        .rpc(
            "files/list_revisions",
            json!({"path": "/h/moved.bin", "limit": 10}),
        )
        .await
        .ok();
    let revs: Vec<_> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["rev"].clone())
        .collect();
    assert_eq!(revs, [moved["rev"].clone()], "{v}");
    assert_eq!(v["entries"][0]["path_display"], "/h/moved.bin");
    assert_eq!(v["is_deleted"], false);
    let v = c
        .rpc(
            "files/list_revisions",
            json!({"path": "/h/doc.bin", "limit": 10}),
        )
        .await
        .ok();
    assert_eq!(v["entries"].as_array().unwrap().len(), 3, "{v}");
    assert_eq!(v["is_deleted"], true);
    let r = c
        .rpc(
            "files/list_revisions",
            json!({"path": r1["id"], "mode": "id", "before_rev": r2["rev"]}),
        )
        .await;
    assert_eq!(r.conflict(), "before_rev_not_supported/");
    // Restoring an overwritten version: a new rev, the old bytes, in milliseconds.
    let started = Instant::now();
    let restored = c
        .rpc(
            "files/restore",
            json!({"path": "/h/moved.bin", "rev": r1["rev"]}),
        )
        .await
        .ok();
    eprintln!("restore of a 9 MiB file took {:?}", started.elapsed());
    assert_ne!(restored["rev"], r1["rev"]);
    assert_eq!(restored["content_hash"], r1["content_hash"]);
    assert_eq!(restored["id"], r1["id"], "restoring in place keeps the id");
    assert!(c.download(json!({"path": "/h/moved.bin"}), None).await.body == v1);
    // Restoring a deleted file.
    c.rpc("files/delete_v2", json!({"path": "/h/moved.bin"}))
        .await
        .ok();
    let v = c
        .rpc("files/list_revisions", json!({"path": "/h/moved.bin"}))
        .await
        .ok();
    assert_eq!(v["is_deleted"], true);
    assert!(v["server_deleted"].is_string());
    c.rpc(
        "files/restore",
        json!({"path": "/h/moved.bin", "rev": r2["rev"]}),
    )
    .await
    .ok();
    assert_eq!(
        c.download(json!({"path": "/h/moved.bin"}), None).await.body,
        v2
    );
    // Errors.
    let r = c
        .rpc(
            "files/restore",
            json!({"path": "/h/x.bin", "rev": "0123456789abcdef"}),
        )
        .await;
    assert_eq!(r.conflict(), "invalid_revision/");
    c.rpc("files/create_folder_v2", json!({"path": "/h/dir"}))
        .await
        .ok();
    let r = c
        .rpc("files/restore", json!({"path": "/h/dir", "rev": r1["rev"]}))
        .await;
    assert_eq!(r.conflict(), "path_write/conflict/folder/");
    assert_eq!(
        c.rpc("files/list_revisions", json!({"path": "/h/dir"}))
            .await
            .conflict(),
        "path/not_file/"
    );
    assert_eq!(
        c.rpc("files/list_revisions", json!({"path": "/h/none"}))
            .await
            .conflict(),
        "path/not_found/"
    );
}

#[tokio::test]
async fn permanently_delete_purges_history() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let f = c.put("/p/secret.txt", b"v1").await;
    c.upload_with(json!({"path": "/p/secret.txt", "mode": "overwrite"}), "v2")
        .await
        .ok();
    let r = c
        .rpc("files/permanently_delete", json!({"path": "/p/secret.txt"}))
        .await;
    assert_eq!(r.ok(), serde_json::Value::Null);
    assert_eq!(c.meta("/p/secret.txt").await.conflict(), "path/not_found/");
    let r = c
        .rpc("files/list_revisions", json!({"path": "/p/secret.txt"}))
        .await;
    assert_eq!(r.conflict(), "path/not_found/");
    let r = c
        .rpc(
            "files/restore",
            json!({"path": "/p/secret.txt", "rev": f["rev"]}),
        )
        .await;
    assert_eq!(r.conflict(), "invalid_revision/");
    let r = c
        .rpc("files/permanently_delete", json!({"path": "/p/secret.txt"}))
        .await;
    assert_eq!(r.conflict(), "path_lookup/not_found/");
    // A narrower token lacks the scope.
    let (token, _) = srv
        .store
        .mint_token("alice", None, &["files.content.write".to_owned()])
        .await
        .unwrap();
    let mut narrow = c.clone();
    narrow.token = token;
    let r = narrow
        .rpc("files/permanently_delete", json!({"path": "/p"}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json()["error"]["required_scope"],
        "files.permanent_delete"
    );
}

#[tokio::test]
async fn temporary_links_serve_without_auth_and_support_ranges() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let data = bytes(5 * 1024 * 1024 + 3, 4);
    c.put("/l/Photo ü.jpg", &data).await;
    let v = c
        .rpc(
            "files/get_temporary_link",
            json!({"path": "/l/photo ü.jpg"}),
        )
        .await
        .ok();
    assert_eq!(v["metadata"]["size"], data.len());
    let link = v["link"].as_str().unwrap().to_owned();
    assert!(link.starts_with("http://127.0.0.1:"), "{link}");
    let http = reqwest::Client::new();
    let r = http.get(&link).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert!(r.bytes().await.unwrap() == data);
    let r = http
        .get(&link)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap(), &data[100..200]);
    // A tampered link is refused.
    let tampered = link.replacen("/temp/l1.", "/temp/l1.x", 1);
    assert_eq!(
        http.get(&tampered).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    // Errors.
    c.rpc("files/create_folder_v2", json!({"path": "/l/dir"}))
        .await
        .ok();
    assert_eq!(
        c.rpc("files/get_temporary_link", json!({"path": "/l/dir"}))
            .await
            .conflict(),
        "path/not_file/"
    );
    assert_eq!(
        c.rpc("files/get_temporary_link", json!({"path": "/l/none"}))
            .await
            .conflict(),
        "path/not_found/"
    );
}

#[tokio::test]
async fn search_by_name_with_scope_filters_and_paging() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    for p in [
        "/s/Report 2024.pdf",
        "/s/report-draft.txt",
        "/s/photos/Beach.JPG",
        "/s/other/notes.md",
        "/s/a/deep/Reportage.mp4",
    ] {
        c.put(p, p.as_bytes()).await;
    }
    c.rpc("files/create_folder_v2", json!({"path": "/s/Reports"}))
        .await
        .ok();
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                assert_eq!(m["metadata"][".tag"], "metadata");
                m["metadata"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let v = c
        .rpc("files/search_v2", json!({"query": "REPORT"}))
        .await
        .ok();
    let mut got = names(&v);
    got.sort();
    assert_eq!(
        got,
        [
            "Report 2024.pdf",
            "Reportage.mp4",
            "Reports",
            "report-draft.txt"
        ]
    );
    // Every token must match.
    let v = c
        .rpc("files/search_v2", json!({"query": "report 2024"}))
        .await
        .ok();
    assert_eq!(names(&v), ["Report 2024.pdf"]);
    // Scope, extensions and categories.
    let v = c
        .rpc(
            "files/search_v2",
            json!({"query": "e", "options": {"path": "/s/photos"}}),
        )
        .await
        .ok();
    assert_eq!(names(&v), ["Beach.JPG"]);
    let v = c
        .rpc(
            "files/search_v2",
            json!({"query": "report", "options": {"file_extensions": ["pdf", "txt"]}}),
        )
        .await
        .ok();
    assert_eq!(names(&v).len(), 2);
    let v = c
        .rpc("files/search_v2", json!({"query": "report", "options": {"file_categories": [{".tag": "video"}, "folder"]}}))
        .await
        .ok();
    let mut got = names(&v);
    got.sort();
    assert_eq!(got, ["Reportage.mp4", "Reports"]);
    // Paging through a sealed cursor.
    let v = c
        .rpc(
            "files/search_v2",
            json!({"query": "report", "options": {"max_results": 3}}),
        )
        .await
        .ok();
    assert_eq!(names(&v).len(), 3);
    assert_eq!(v["has_more"], true);
    let v2 = c
        .rpc("files/search/continue_v2", json!({"cursor": v["cursor"]}))
        .await
        .ok();
    assert_eq!(names(&v2).len(), 1);
    assert_eq!(v2["has_more"], false);
    // Deleted files are found with file_status deleted only.
    c.rpc("files/delete_v2", json!({"path": "/s/other/notes.md"}))
        .await
        .ok();
    assert!(
        names(
            &c.rpc("files/search_v2", json!({"query": "notes"}))
                .await
                .ok()
        )
        .is_empty()
    );
    let v = c
        .rpc(
            "files/search_v2",
            json!({"query": "notes", "options": {"file_status": "deleted"}}),
        )
        .await
        .ok();
    assert_eq!(v["matches"][0]["metadata"]["metadata"][".tag"], "deleted");
    // Another user finds nothing of alice's.
    let bob = srv.user("bob").await;
    assert!(
        names(
            &bob.rpc("files/search_v2", json!({"query": "report"}))
                .await
                .ok()
        )
        .is_empty()
    );
}

#[tokio::test]
async fn download_zip_streams_a_folder_that_zip_readers_accept() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let big = bytes(5 * 1024 * 1024 + 11, 8);
    c.put("/Album/01 Intro.mp3", b"intro").await;
    c.put("/Album/Disc 2/02 Thé Song.mp3", &big).await;
    c.rpc("files/create_folder_v2", json!({"path": "/Album/Empty"}))
        .await
        .ok();
    // A name may hold backslashes; Windows extractors take them for separators, so one such
    // name could write outside the folder extracted into.
    c.put("/Album/..\\..\\evil.bat", b"rem").await;
    let r = c
        .raw(
            c.http
                .post(format!("{}/2/files/download_zip", c.url()))
                .bearer_auth(&c.token)
                .header("dropbox-api-arg", r#"{"path": "/album"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.headers["content-type"], "application/zip");
    assert_eq!(r.api_result()["metadata"]["name"], "Album");
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("a.zip");
    std::fs::write(&zip_path, &r.body).unwrap();
    std::fs::write(dir.path().join("big.bin"), &big).unwrap();
    let check = r#"
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None, "bad CRC"
names = sorted(z.namelist())
assert names == ["Album/", "Album/.._.._evil.bat", "Album/01 Intro.mp3", "Album/Disc 2/", "Album/Disc 2/02 Thé Song.mp3", "Album/Empty/"], names
assert z.read("Album/.._.._evil.bat") == b"rem"
assert z.read("Album/01 Intro.mp3") == b"intro"
assert z.read("Album/Disc 2/02 Thé Song.mp3") == open(sys.argv[2], "rb").read()
print("ok")
"#;
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            check,
            zip_path.to_str().unwrap(),
            dir.path().join("big.bin").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Errors.
    let zip_of = |path: &'static str| {
        c.raw(
            c.http
                .post(format!("{}/2/files/download_zip", c.url()))
                .bearer_auth(&c.token)
                .header("dropbox-api-arg", format!(r#"{{"path": "{path}"}}"#)),
        )
    };
    assert_eq!(
        zip_of("/album/01 intro.mp3").await.conflict(),
        "path/not_folder/"
    );
    assert_eq!(zip_of("/nope").await.conflict(), "path/not_found/");
}

#[tokio::test]
async fn temporary_upload_link_is_one_time() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let v = c
        .rpc(
            "files/get_temporary_upload_link",
            json!({"commit_info": {"path": "/u/from-link.txt", "mode": "add"}, "duration": 3600}),
        )
        .await
        .ok();
    let link = v["link"].as_str().unwrap().to_owned();
    assert!(link.contains("/apitul/1/"), "{link}");
    let http = reqwest::Client::new();
    // A wrong content type is refused and does not use the link.
    let r = http
        .post(&link)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = http
        .post(&link)
        .header("content-type", "application/octet-stream")
        .body("uploaded without a token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    let md = c.meta("/u/from-link.txt").await.ok();
    assert_eq!(body["content-hash"], md["content_hash"]);
    // Used links are gone; unknown links are a conflict.
    let r = http
        .post(&link)
        .header("content-type", "text/plain")
        .body("again")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::GONE);
    let unknown = format!("{}/apitul/1/nope", c.url());
    let r = http
        .post(&unknown)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = c
        .rpc(
            "files/get_temporary_upload_link",
            json!({"commit_info": {"path": "/u/x"}, "duration": 10}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn search_scope_must_be_a_folder() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    c.put("/scope/file.txt", b"x").await;
    let search = |path: &'static str| {
        c.rpc(
            "files/search_v2",
            json!({"query": "file", "options": {"path": path}}),
        )
    };
    assert_eq!(search("/scope/missing").await.conflict(), "path/not_found/");
    assert_eq!(
        search("/scope/file.txt").await.conflict(),
        "path/not_folder/"
    );
    assert_eq!(
        search("/scope").await.ok()["matches"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
