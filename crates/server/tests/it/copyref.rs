//! Copy references: content crosses accounts without its bytes.

use cubby_store::AccessType;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestServer, bytes, content_hash};

#[tokio::test]
async fn a_reference_saves_into_another_users_app_folder_without_writing_blocks() {
    let srv = TestServer::start().await;
    let store_owner = srv.user("shop").await;
    srv.user("customer").await;
    let (app, _) = srv.app("Music", AccessType::AppFolder, &[], false).await;
    let customer = srv.app_client("customer", &app).await;

    let big = bytes(9 * 1024 * 1024 + 17, 3);
    store_owner.put("/Albums/Blue/01 Intro.flac", &big).await;
    for i in 2..=20 {
        store_owner
            .put(
                &format!("/Albums/Blue/{i:02} Track.flac"),
                &bytes(1000 + i, i as u8),
            )
            .await;
    }
    store_owner.put("/Albums/Blue/Art/cover.jpg", b"jpeg").await;

    // A file reference: the same bytes and hash at the customer's path, no block written.
    let v = store_owner
        .rpc(
            "files/copy_reference/get",
            json!({"path": "/Albums/Blue/01 Intro.flac"}),
        )
        .await
        .ok();
    assert_eq!(v["metadata"][".tag"], "file");
    assert!(v["expires"].as_str().unwrap() > "2050", "{v}");
    let reference = v["copy_reference"].as_str().unwrap().to_owned();
    assert!(reference.len() >= 43, "256 random bits");
    let blocks_before = srv.block_files().await;
    let saved = customer
        .rpc(
            "files/copy_reference/save",
            json!({"copy_reference": reference, "path": "/Intro.flac"}),
        )
        .await
        .ok();
    assert_eq!(
        srv.block_files().await,
        blocks_before,
        "no block is written"
    );
    let md = &saved["metadata"];
    assert_eq!(md[".tag"], "file");
    assert_eq!(md["path_display"], "/Intro.flac");
    assert_eq!(md["content_hash"], content_hash(&big));
    assert_eq!(md["size"], big.len());
    assert_eq!(
        customer
            .download(json!({"path": "/Intro.flac"}), None)
            .await
            .body,
        big
    );
    // The same reference works again (a second purchase), and for its owner too.
    customer
        .rpc(
            "files/copy_reference/save",
            json!({"copy_reference": reference, "path": "/Again.flac"}),
        )
        .await
        .ok();
    store_owner
        .rpc(
            "files/copy_reference/save",
            json!({"copy_reference": reference, "path": "/Backup/Intro.flac"}),
        )
        .await
        .ok();

    // A folder reference copies the tree, parents first.
    let folder_ref = store_owner
        .rpc("files/copy_reference/get", json!({"path": "/Albums/Blue"}))
        .await
        .ok()["copy_reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = customer
        .rpc(
            "files/copy_reference/save",
            json!({"copy_reference": folder_ref, "path": "/Albums/Blue"}),
        )
        .await
        .ok();
    assert_eq!(v["metadata"][".tag"], "folder");
    assert_eq!(v["metadata"]["path_display"], "/Albums/Blue");
    assert_eq!(srv.block_files().await, blocks_before);
    let (entries, _) = customer
        .list_all(json!({"path": "/Albums", "recursive": true}))
        .await;
    let files = entries.iter().filter(|e| e[".tag"] == "file").count();
    assert_eq!(files, 21, "{entries:?}");
    let r = customer
        .download(json!({"path": "/Albums/Blue/07 Track.flac"}), None)
        .await;
    assert_eq!(r.body, bytes(1007, 7));
    // The customer's full view has it under the app folder.
    let full = srv.client_for("customer").await;
    assert_eq!(
        full.meta("/Apps/Music/Albums/Blue/Art/cover.jpg")
            .await
            .ok()["size"],
        4
    );
}

#[tokio::test]
async fn a_reference_is_bound_to_its_revision_and_fails_with_dropboxs_tags() {
    let srv = TestServer::start().await;
    let a = srv.user("alice").await;
    let b = srv.user("bob").await;
    let first = a.put("/song.mp3", b"version one").await;
    let reference = a
        .rpc("files/copy_reference/get", json!({"path": first["id"]}))
        .await
        .ok()["copy_reference"]
        .as_str()
        .unwrap()
        .to_owned();
    a.upload_with(
        json!({"path": "/song.mp3", "mode": "overwrite"}),
        b"version two".to_vec(),
    )
    .await
    .ok();
    let save = |path: &str, r: &str| {
        let b = b.clone();
        let arg = json!({"copy_reference": r, "path": path});
        async move { b.rpc("files/copy_reference/save", arg).await }
    };
    save("/old.mp3", &reference).await.ok();
    assert_eq!(
        b.download(json!({"path": "/old.mp3"}), None).await.body,
        b"version one"
    );

    // Save errors.
    assert_eq!(
        save("/x.mp3", "forged").await.conflict(),
        "invalid_copy_reference/"
    );
    assert_eq!(
        save("/x.mp3", &format!("{reference}x")).await.conflict(),
        "invalid_copy_reference/"
    );
    assert_eq!(
        save("/old.mp3", &reference).await.conflict(),
        "path/conflict/file/"
    );
    assert_eq!(
        save("/old.mp3/inside", &reference).await.conflict(),
        "path/conflict/file_ancestor/"
    );
    assert_eq!(
        save("/../x", &reference).await.conflict(),
        "path/malformed_path/"
    );
    assert_eq!(save("", &reference).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        save("/desktop.ini", &reference).await.conflict(),
        "path/disallowed_name/"
    );
    // The source deleted: not_found; its owner disabled: no_permission.
    let gone = a.put("/gone.mp3", b"bye").await;
    let gone_ref = a
        .rpc("files/copy_reference/get", json!({"path": "/gone.mp3"}))
        .await
        .ok()["copy_reference"]
        .clone();
    a.rpc("files/delete_v2", json!({"path": gone["path_lower"]}))
        .await
        .ok();
    assert_eq!(
        save("/g.mp3", gone_ref.as_str().unwrap()).await.conflict(),
        "not_found/"
    );
    srv.store.set_disabled("alice", true).await.unwrap();
    assert_eq!(
        save("/y.mp3", &reference).await.conflict(),
        "no_permission/"
    );
    srv.store.set_disabled("alice", false).await.unwrap();
    save("/y.mp3", &reference).await.ok();

    // Get errors: missing, another user's id, the deleted file, the root.
    for path in [
        json!("/missing.mp3"),
        first["id"].clone(),
        json!("/gone.mp3"),
    ] {
        let r = b
            .rpc("files/copy_reference/get", json!({"path": path}))
            .await;
        assert_eq!(r.conflict(), "path/not_found/", "{path}");
    }
    let r = a
        .rpc("files/copy_reference/get", json!({"path": "/song.mp3/x"}))
        .await;
    assert_eq!(r.conflict(), "path/not_found/");
    let r = a.rpc("files/copy_reference/get", json!({"path": ""})).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "the root is not a ReadPath"
    );
}

#[tokio::test]
async fn an_app_folder_app_cannot_reference_anything_outside_its_folder() {
    let srv = TestServer::start().await;
    let full = srv.user("alice").await;
    let outside = full.put("/private.txt", b"private").await;
    let (app, _) = srv.app("Shop", AccessType::AppFolder, &[], false).await;
    let shop = srv.app_client("alice", &app).await;
    let inside = shop.put("/mine.txt", b"mine").await;
    for path in [
        outside["id"].clone(),
        json!(format!("rev:{}", outside["rev"].as_str().unwrap())),
        json!("/../private.txt"),
    ] {
        let r = shop
            .rpc("files/copy_reference/get", json!({"path": path}))
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{path}");
        let s = r.conflict();
        assert!(
            s == "path/not_found/" || s == "path/malformed_path/",
            "{path}: {s}"
        );
    }
    // Its own file: the metadata is relative to the app folder.
    let v = shop
        .rpc("files/copy_reference/get", json!({"path": inside["id"]}))
        .await
        .ok();
    assert_eq!(v["metadata"]["path_display"], "/mine.txt");
}
