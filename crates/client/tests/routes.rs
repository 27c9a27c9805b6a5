//! Every typed route method of the client against a real server on an ephemeral port (in
//! process, on the embedded back-ends): each call's result is checked, so a method whose
//! route, argument or result type is wrong fails here.

use bytes::Bytes;
use cubby_client::routes::{ListOptions, settle};
use cubby_client::transfer::UploadOptions;
use cubby_client::types::{
    DeleteBatchEntry, Metadata, RelocationBatchEntry, SaveUrlStatus, SessionFinishBatchEntry,
    SharedLinkSettings,
};
use cubby_client::{App, Client, Hosts, Tokens};

#[tokio::test]
async fn every_typed_route_method_works_against_a_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = cubby_server::Config {
        data: dir.path().to_owned(),
        http: Some("127.0.0.1:0".parse().unwrap()),
        https: None,
        tls_cert: None,
        tls_key: None,
        metadata_url: None,
        blocks_url: None,
        retention_days: None,
        access_log: true,
        limits: Default::default(),
        fetch_allow: Vec::new(),
    };
    let server = cubby_server::Server::bind(&config).await.unwrap();
    let url = format!("http://{}", server.http_addr.unwrap());
    let store = server.store.clone();
    tokio::spawn(async move { server.serve(std::future::pending()).await });
    store
        .add_user("ada", "ada@example.com", "password1")
        .await
        .unwrap();
    let (app, secret) = store
        .add_app(cubby_store::NewApp {
            name: "Library".into(),
            access: cubby_store::AccessType::Full,
            key: None,
            secret: None,
            redirect_uris: Vec::new(),
            public_client: false,
            scopes: Vec::new(),
            owner: None,
        })
        .await
        .unwrap();
    let (token, _) = store.mint_token("ada", Some(&app.key), &[]).await.unwrap();
    let client = Client::new(
        cubby_client::http_client(None).unwrap(),
        Hosts::for_server(&url),
        App {
            key: app.key.clone(),
            secret,
        },
        Tokens {
            access_token: token,
            ..Tokens::default()
        },
    );

    let c = &client;

    // Users, checks.
    assert_eq!(
        c.get_current_account().await.unwrap().email,
        "ada@example.com"
    );
    assert_eq!(c.get_space_usage().await.unwrap().used, 0);
    assert_eq!(c.check_user("ping").await.unwrap(), "ping");
    assert_eq!(c.check_app("pong").await.unwrap(), "pong");

    // Sessions: start, append, finish; a batch of two.
    let id = c
        .session_start(Bytes::from_static(b"hello "), false, false)
        .await
        .unwrap();
    c.session_append(&id, 6, Bytes::from_static(b"world"), true)
        .await
        .unwrap();
    let f = c
        .session_finish(&id, 11, UploadOptions::default().commit_info("/docs/a.txt"))
        .await
        .unwrap();
    assert_eq!(f.size, 11);
    let ids = c.session_start_batch(2, false).await.unwrap();
    assert_eq!(ids.len(), 2);
    for (i, s) in ids.iter().enumerate() {
        c.session_append(s, 0, Bytes::from(format!("file {i}")), true)
            .await
            .unwrap();
    }
    let batch = c
        .session_finish_batch(&[
            (
                &ids[0],
                6,
                UploadOptions::default().commit_info("/docs/b0.txt"),
            ),
            (
                &ids[1],
                6,
                UploadOptions::default().commit_info("/docs/b1.txt"),
            ),
        ])
        .await
        .unwrap();
    assert_eq!(batch.entries.len(), 2, "{batch:?}");
    assert!(
        matches!(batch.entries[1], SessionFinishBatchEntry::Success(_)),
        "{batch:?}"
    );

    // Metadata, listing, cursors, search, downloads.
    assert!(matches!(
        c.get_metadata("/docs/a.txt", false).await.unwrap(),
        Metadata::File(_)
    ));
    let all = c
        .list_folder(
            "",
            &ListOptions {
                recursive: true,
                ..ListOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(all.entries.len(), 4, "the folder and three files");
    let cursor = c.get_latest_cursor("/docs", false).await.unwrap();
    let hits = c.search("b1", None).await.unwrap();
    assert_eq!(
        hits.matches[0].metadata.metadata().map(|m| m.name()),
        Some("b1.txt")
    );
    assert!(c.search_continue("not-a-cursor").await.is_err());
    let (meta, bytes) = c
        .download_bytes("/docs/a.txt", Some((6, 10)))
        .await
        .unwrap();
    assert_eq!((meta.size, &bytes[..]), (11, &b"world"[..]));
    assert!(
        c.download_zip_bytes("/docs")
            .await
            .unwrap()
            .starts_with(b"PK")
    );

    // Folders, copies, moves, deletes, history.
    c.create_folder("/archive", false).await.unwrap();
    c.copy_item("/docs/a.txt", "/archive/a.txt", false)
        .await
        .unwrap();
    let changes = c.list_folder_continue(&cursor).await.unwrap();
    assert!(changes.entries.is_empty(), "nothing changed in /docs");
    c.delete("/archive/a.txt", None).await.unwrap();
    let revs = c.list_revisions("/archive/a.txt", 10).await.unwrap();
    assert!(revs.is_deleted);
    let restored = c
        .restore("/archive/a.txt", &revs.entries[0].rev)
        .await
        .unwrap();
    assert_eq!(restored.size, 11);
    let moved = c
        .move_item("/archive/a.txt", "/archive/c.txt", false)
        .await
        .unwrap();
    assert_eq!(moved.metadata.path_display(), "/archive/c.txt");
    c.permanently_delete("/docs/b0.txt").await.unwrap();
    assert!(c.get_metadata("/docs/b0.txt", true).await.is_err());

    // Batches, through their check routes.
    let wait = std::time::Duration::from_millis(50);
    let copies = c
        .copy_batch(&[("/docs/b1.txt", "/x/b1.txt")], false)
        .await
        .unwrap();
    let copies = settle(
        copies,
        |j| async move { c.copy_batch_check(&j).await },
        wait,
        100,
    )
    .await
    .unwrap();
    assert!(matches!(
        copies.entries[..],
        [RelocationBatchEntry::Success { .. }]
    ));
    let moves = c
        .move_batch(&[("/x/b1.txt", "/y/b1.txt")], false)
        .await
        .unwrap();
    let moves = settle(
        moves,
        |j| async move { c.move_batch_check(&j).await },
        wait,
        100,
    )
    .await
    .unwrap();
    assert!(matches!(
        moves.entries[..],
        [RelocationBatchEntry::Success { .. }]
    ));
    let folders = c.create_folder_batch(&["/f1", "/f2"], false).await.unwrap();
    let folders = settle(
        folders,
        |j| async move { c.create_folder_batch_check(&j).await },
        wait,
        100,
    )
    .await
    .unwrap();
    assert_eq!(folders.entries.len(), 2);
    let deletes = c.delete_batch(&["/f1", "/f2"]).await.unwrap();
    let deletes = settle(
        deletes,
        |j| async move { c.delete_batch_check(&j).await },
        wait,
        100,
    )
    .await
    .unwrap();
    assert!(
        deletes
            .entries
            .iter()
            .all(|e| matches!(e, DeleteBatchEntry::Success { .. }))
    );

    // Links, references.
    let temp = c.get_temporary_link("/docs/a.txt").await.unwrap();
    let fetched = reqwest::get(&temp.link)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&fetched[..], b"hello world");
    let upload = c.get_temporary_upload_link("/docs/up.txt").await.unwrap();
    let r = c
        .http()
        .post(&upload)
        .header("content-type", "application/octet-stream")
        .body("uploaded")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let reference = c.copy_reference_get("/docs/a.txt").await.unwrap();
    let saved = c
        .copy_reference_save(&reference.copy_reference, "/docs/ref.txt")
        .await
        .unwrap();
    assert_eq!(saved.metadata.path_display(), "/docs/ref.txt");
    let link = c
        .create_shared_link("/docs/a.txt", SharedLinkSettings::default())
        .await
        .unwrap();
    let link_url = link.common().url.clone();
    assert_eq!(
        c.list_shared_links(Some("/docs/a.txt"), false)
            .await
            .unwrap()
            .links
            .len(),
        1
    );
    assert_eq!(
        c.get_shared_link_metadata(&link_url, None)
            .await
            .unwrap()
            .common()
            .name,
        "a.txt"
    );
    let (_, bytes) = c.get_shared_link_file(&link_url, None).await.unwrap();
    assert_eq!(&bytes[..], b"hello world");
    let settings = SharedLinkSettings {
        expires: Some("2099-01-01T00:00:00Z".into()),
        ..SharedLinkSettings::default()
    };
    let modified = c.modify_shared_link(&link_url, settings).await.unwrap();
    assert_eq!(
        modified.common().expires.as_deref(),
        Some("2099-01-01T00:00:00Z")
    );
    c.revoke_shared_link(&link_url).await.unwrap();
    assert!(
        c.list_shared_links(None, false)
            .await
            .unwrap()
            .links
            .is_empty()
    );

    // save_url's check route (a refused private address fails the job or the call).
    if let Ok(SaveUrlStatus::AsyncJobId { async_job_id }) =
        c.save_url("http://127.0.0.1:1/x.png", "/x.png").await
    {
        let status = c.save_url_check(&async_job_id).await.unwrap();
        assert!(!matches!(status, SaveUrlStatus::Complete(_)));
    }

    // Longpoll returns on a change; revoking the token ends access.
    let cursor = c.get_latest_cursor("", true).await.unwrap();
    c.create_folder("/wake", false).await.unwrap();
    assert!(c.wait_for_changes(&cursor, 30).await.unwrap().changes);
    c.revoke_token().await.unwrap();
    assert!(c.get_current_account().await.is_err());
}
