//! list_folder paging, cursors, the change feed and longpoll.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Client, TestServer};

/// Applies list_folder entries the way a sync client does.
fn apply(state: &mut BTreeMap<String, String>, entries: &[Value]) {
    for e in entries {
        let path = e["path_lower"].as_str().unwrap().to_owned();
        match e[".tag"].as_str().unwrap() {
            "deleted" => {
                let prefix = format!("{path}/");
                state.retain(|k, _| k != &path && !k.starts_with(&prefix));
            }
            tag => {
                state.insert(path, tag.to_owned());
            }
        }
    }
}

async fn continue_until_done(
    c: &Client,
    mut cursor: String,
    state: &mut BTreeMap<String, String>,
) -> String {
    loop {
        let v = c
            .rpc("files/list_folder/continue", json!({"cursor": cursor}))
            .await
            .ok();
        apply(state, v["entries"].as_array().unwrap());
        cursor = v["cursor"].as_str().unwrap().to_owned();
        if !v["has_more"].as_bool().unwrap() {
            return cursor;
        }
    }
}

#[tokio::test]
async fn paging_past_2000_entries_with_changes_between_pages() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let n = 2_100;
    stream::iter(0..n)
        .for_each_concurrent(8, |i| {
            let c = c.clone();
            async move {
                c.rpc(
                    "files/create_folder_v2",
                    json!({"path": format!("/big/d{i:04}")}),
                )
                .await
                .ok();
            }
        })
        .await;
    let mut state = BTreeMap::new();
    let first = c
        .rpc("files/list_folder", json!({"path": "/big", "limit": 500}))
        .await
        .ok();
    let entries = first["entries"].as_array().unwrap();
    assert!(entries.len() <= 501 && first["has_more"] == true);
    apply(&mut state, entries);
    // Changes between pages: behind the position, ahead of it, and deletions of both kinds.
    c.rpc("files/create_folder_v2", json!({"path": "/big/a-new"}))
        .await
        .ok();
    c.put("/big/zz-new.txt", b"z").await;
    c.rpc("files/delete_v2", json!({"path": "/big/d0001"}))
        .await
        .ok();
    c.rpc("files/delete_v2", json!({"path": "/big/d2000"}))
        .await
        .ok();
    let mut cursor = first["cursor"].as_str().unwrap().to_owned();
    cursor = continue_until_done(&c, cursor, &mut state).await;
    // Once the listing is complete, the same cursor follows the change feed.
    cursor = continue_until_done(&c, cursor, &mut state).await;
    let expected: BTreeMap<String, String> = (0..n)
        .filter(|i| *i != 1 && *i != 2000)
        .map(|i| (format!("/big/d{i:04}"), "folder".to_owned()))
        .chain([
            ("/big/a-new".to_owned(), "folder".to_owned()),
            ("/big/zz-new.txt".to_owned(), "file".to_owned()),
        ])
        .collect();
    assert_eq!(state.len(), expected.len());
    assert!(
        state == expected,
        "listing and change feed disagree with the tree"
    );
    // Nothing new: an empty page.
    let v = c
        .rpc("files/list_folder/continue", json!({"cursor": cursor}))
        .await
        .ok();
    assert_eq!(v["entries"], json!([]));
    assert_eq!(v["has_more"], false);
}

#[tokio::test]
async fn recursive_listing_and_change_feed() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    c.put("/r/a/one.txt", b"1").await;
    c.put("/r/b/two.txt", b"2").await;
    c.put("/elsewhere.txt", b"e").await;
    let (entries, cursor) = c.list_all(json!({"path": "/R", "recursive": true})).await;
    let paths: Vec<&str> = entries
        .iter()
        .map(|e| e["path_lower"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["/r", "/r/a", "/r/a/one.txt", "/r/b", "/r/b/two.txt"]
    );
    // Non-recursive lists direct children only.
    let (entries, _) = c.list_all(json!({"path": "/r"})).await;
    assert_eq!(entries.len(), 2);
    // Root listing, recursive, includes everything but not the root itself.
    let (entries, _) = c.list_all(json!({"path": "", "recursive": true})).await;
    assert_eq!(entries.len(), 6);

    // Changes: a move inside the listed folder reports the old path and what was under it
    // deleted, and the new subtree; a change elsewhere is not reported.
    c.rpc(
        "files/move_v2",
        json!({"from_path": "/r/a", "to_path": "/r/c"}),
    )
    .await
    .ok();
    c.put("/elsewhere2.txt", b"e").await;
    c.rpc("files/delete_v2", json!({"path": "/r/b/two.txt"}))
        .await
        .ok();
    let v = c
        .rpc("files/list_folder/continue", json!({"cursor": cursor}))
        .await
        .ok();
    let got: Vec<(String, String)> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e[".tag"].as_str().unwrap().into(),
                e["path_lower"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("deleted", "/r/a/one.txt"),
        ("deleted", "/r/a"),
        ("folder", "/r/c"),
        ("file", "/r/c/one.txt"),
        ("deleted", "/r/b/two.txt"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want);

    // include_deleted shows tombstones in a listing.
    let (entries, _) = c
        .list_all(json!({"path": "/r", "recursive": true, "include_deleted": true}))
        .await;
    assert!(
        entries
            .iter()
            .any(|e| e[".tag"] == "deleted" && e["path_lower"] == "/r/b/two.txt")
    );

    // Errors.
    assert_eq!(
        c.rpc("files/list_folder", json!({"path": "/nope"}))
            .await
            .conflict(),
        "path/not_found/"
    );
    assert_eq!(
        c.rpc("files/list_folder", json!({"path": "/elsewhere.txt"}))
            .await
            .conflict(),
        "path/not_folder/"
    );
    let r = c
        .rpc(
            "files/list_folder/continue",
            json!({"cursor": "c1.forged.sig"}),
        )
        .await;
    assert_eq!(r.conflict(), "reset/");
    // Another user's cursor is not accepted.
    let bob = srv.user("bob").await;
    let r = bob
        .rpc("files/list_folder/continue", json!({"cursor": cursor}))
        .await;
    assert_eq!(r.conflict(), "reset/");
}

#[tokio::test]
async fn longpoll_wakes_quickly_and_only_for_its_folder() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    c.rpc("files/create_folder_v2", json!({"path": "/watched"}))
        .await
        .ok();
    let cursor = c
        .rpc(
            "files/list_folder/get_latest_cursor",
            json!({"path": "/watched", "recursive": true}),
        )
        .await
        .ok()["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    // Longpoll carries no auth.
    let http = reqwest::Client::new();
    // In scale-out mode the longpoll waits on one server and the uploads go through the other.
    let url = format!("{}/2/files/list_folder/longpoll", c.on(0).url());
    let writer = c.on(1);
    let poll = {
        let (http, url, cursor) = (http.clone(), url.clone(), cursor.clone());
        tokio::spawn(async move {
            let r = http
                .post(url)
                .header("content-type", "application/json")
                .body(json!({"cursor": cursor, "timeout": 30}).to_string())
                .send()
                .await
                .unwrap();
            let body: Value = r.json().await.unwrap();
            (Instant::now(), body)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    writer.put("/not-watched.txt", b"x").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !poll.is_finished(),
        "a change outside the folder woke the longpoll"
    );
    writer.put("/watched/new.txt", b"x").await;
    let committed = Instant::now();
    let (woke, body) = poll.await.unwrap();
    let latency = woke.duration_since(committed);
    eprintln!("longpoll wake latency: {latency:?}");
    assert_eq!(body, json!({"changes": true}));
    assert!(
        latency < Duration::from_millis(500),
        "woke after {latency:?}"
    );
    // A change already present answers at once.
    let r = http
        .post(&url)
        .header("content-type", "application/json")
        .body(json!({"cursor": cursor, "timeout": 30}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"changes": true}));
    // A forged cursor gets reset.
    let r = http
        .post(&url)
        .header("content-type", "application/json")
        .body(json!({"cursor": "c1.e30.AAAA"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(r.json::<Value>().await.unwrap()["error"][".tag"], "reset");
}

/// Entries of a saved cursor's feed, as (tag, path_lower), to the end.
async fn feed(c: &crate::support::Client, cursor: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cursor = cursor.clone();
    loop {
        let page = c
            .rpc("files/list_folder/continue", json!({"cursor": cursor}))
            .await
            .ok();
        for e in page["entries"].as_array().unwrap() {
            out.push((
                e[".tag"].as_str().unwrap().to_owned(),
                e["path_lower"].as_str().unwrap().to_owned(),
            ));
        }
        cursor = page["cursor"].clone();
        if page["has_more"] != true {
            return out;
        }
    }
}

/// A folder deleted and made again, or moved away and replaced, before a client reads the
/// feed: the feed still says its old contents are gone (a folder entry keeps the children a
/// client holds, so without that the client would keep them for good).
#[tokio::test]
async fn a_folder_replaced_before_the_feed_is_read_reports_its_old_contents_deleted() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    c.put("/r/a/x.txt", b"x").await;
    c.put("/m/a/y.txt", b"y").await;
    c.rpc("files/create_folder_v2", json!({"path": "/m/b"}))
        .await
        .ok();
    let cursor = c
        .rpc(
            "files/list_folder/get_latest_cursor",
            json!({"path": "", "recursive": true}),
        )
        .await
        .ok()["cursor"]
        .clone();
    c.rpc("files/delete_v2", json!({"path": "/r/a"})).await.ok();
    c.rpc("files/create_folder_v2", json!({"path": "/r/a"}))
        .await
        .ok();
    c.rpc(
        "files/move_v2",
        json!({"from_path": "/m/a", "to_path": "/m/c"}),
    )
    .await
    .ok();
    c.rpc(
        "files/move_v2",
        json!({"from_path": "/m/b", "to_path": "/m/a"}),
    )
    .await
    .ok();
    let entries = feed(&c, &cursor).await;
    let last_word = |path: &str| {
        entries
            .iter()
            .rev()
            .find(|(_, p)| p == path)
            .map(|(tag, _)| tag.as_str())
    };
    assert_eq!(last_word("/r/a/x.txt"), Some("deleted"), "{entries:?}");
    assert_eq!(last_word("/r/a"), Some("folder"), "{entries:?}");
    assert_eq!(last_word("/m/a/y.txt"), Some("deleted"), "{entries:?}");
    assert_eq!(last_word("/m/c/y.txt"), Some("file"), "{entries:?}");
    assert_eq!(last_word("/m/a"), Some("folder"), "{entries:?}");
    // Replayed in order over the old state, the feed gives the server's tree.
    let mut state: std::collections::BTreeSet<String> = [
        "/r",
        "/r/a",
        "/r/a/x.txt",
        "/m",
        "/m/a",
        "/m/a/y.txt",
        "/m/b",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    for (tag, path) in &entries {
        if tag == "deleted" {
            let under = format!("{path}/");
            state.retain(|p| p != path && !p.starts_with(&under));
        } else {
            state.insert(path.clone());
        }
    }
    let (now, _) = c.list_all(json!({"path": "", "recursive": true})).await;
    let now: std::collections::BTreeSet<String> = now
        .iter()
        .map(|e| e["path_lower"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(state, now);
}
