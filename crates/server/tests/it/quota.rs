//! Space accounting and quotas: usage kept by every write, `insufficient_space` past a quota.

use serde_json::{Value, json};

use crate::support::{Client, TestServer, bytes};

const KIB: usize = 1024;

async fn used(c: &Client) -> (u64, u64) {
    let v = c.rpc("users/get_space_usage", Value::Null).await.ok();
    (
        v["used"].as_u64().unwrap(),
        v["allocation"]["allocated"].as_u64().unwrap(),
    )
}

/// The sum of live file sizes, from a full listing.
async fn listed(c: &Client) -> u64 {
    let (entries, _) = c.list_all(json!({"path": "", "recursive": true})).await;
    entries
        .iter()
        .filter(|e| e[".tag"] == "file")
        .map(|e| e["size"].as_u64().unwrap())
        .sum()
}

#[tokio::test]
async fn usage_follows_every_kind_of_write() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    c.put("/a/one.bin", &bytes(5 * KIB, 1)).await;
    let first = c.put("/a/two.bin", &bytes(3 * KIB, 2)).await;
    c.upload_with(
        json!({"path": "/a/two.bin", "mode": "overwrite"}),
        bytes(7 * KIB, 3),
    )
    .await
    .ok();
    c.rpc("files/copy_v2", json!({"from_path": "/a", "to_path": "/b"}))
        .await
        .ok();
    c.rpc("files/move_v2", json!({"from_path": "/b", "to_path": "/c"}))
        .await
        .ok();
    assert_eq!(used(&c).await.0, 24 * KIB as u64);
    c.rpc("files/delete_v2", json!({"path": "/c"})).await.ok();
    c.rpc(
        "files/restore",
        json!({"path": "/a/two.bin", "rev": first["rev"]}),
    )
    .await
    .ok();
    c.rpc("files/permanently_delete", json!({"path": "/a/one.bin"}))
        .await
        .ok();
    let (u, allocated) = used(&c).await;
    assert_eq!(u, 3 * KIB as u64);
    assert_eq!(u, listed(&c).await);
    assert!(
        allocated > u && allocated < 1 << 50,
        "no quota: used plus free disk, {allocated}"
    );
}

#[tokio::test]
async fn writes_past_the_quota_fail_with_insufficient_space_and_change_nothing() {
    let srv = TestServer::start().await;
    srv.user("alice").await;
    srv.store
        .set_quota("alice", Some(10 * KIB as u64))
        .await
        .unwrap();
    let c = srv.client_for("alice").await.clone();
    c.put("/six.bin", &bytes(6 * KIB, 1)).await;
    assert_eq!(used(&c).await, (6 * KIB as u64, 10 * KIB as u64));

    let r = c
        .upload_with(json!({"path": "/more.bin"}), bytes(6 * KIB, 2))
        .await;
    assert_eq!(r.conflict(), "path/insufficient_space/");
    // An overwrite counts only the difference.
    c.upload_with(
        json!({"path": "/six.bin", "mode": "overwrite"}),
        bytes(9 * KIB, 3),
    )
    .await
    .ok();
    let r = c
        .rpc(
            "files/copy_v2",
            json!({"from_path": "/six.bin", "to_path": "/copy.bin"}),
        )
        .await;
    // `RelocationError` has no `insufficient_space`: its member for a full account is
    // `insufficient_quota`, which the official SDKs decode.
    assert_eq!(r.conflict(), "insufficient_quota/");
    let session = {
        let v = c
            .content(
                "files/upload_session/start",
                json!({"close": true}),
                bytes(2 * KIB, 4),
            )
            .await
            .ok();
        v["session_id"].as_str().unwrap().to_owned()
    };
    let r = c
        .content(
            "files/upload_session/finish",
            json!({"cursor": {"session_id": session, "offset": 2 * KIB}, "commit": {"path": "/s.bin"}}),
            Vec::new(),
        )
        .await;
    assert_eq!(r.conflict(), "path/insufficient_space/");
    let reference = c
        .rpc("files/copy_reference/get", json!({"path": "/six.bin"}))
        .await
        .ok()["copy_reference"]
        .clone();
    let r = c
        .rpc(
            "files/copy_reference/save",
            json!({"copy_reference": reference, "path": "/ref.bin"}),
        )
        .await;
    assert_eq!(r.conflict(), "path/insufficient_space/");
    // Nothing was written by the refusals.
    assert_eq!(used(&c).await.0, 9 * KIB as u64);
    for p in ["/more.bin", "/copy.bin", "/s.bin", "/ref.bin"] {
        assert_eq!(c.meta(p).await.conflict(), "path/not_found/", "{p}");
    }
    // Deleting frees space; lifting the quota lifts the limit.
    c.rpc("files/delete_v2", json!({"path": "/six.bin"}))
        .await
        .ok();
    c.put("/more.bin", &bytes(6 * KIB, 2)).await;
    srv.store.set_quota("alice", None).await.unwrap();
    let c = srv.client_for("alice").await;
    c.put("/big.bin", &bytes(64 * KIB, 5)).await;
    assert_eq!(used(&c).await.0, 70 * KIB as u64);
}

#[tokio::test]
async fn stats_report_logical_against_physical_bytes() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let data = bytes(5 * 1024 * 1024, 7);
    c.put("/a.bin", &data).await;
    c.rpc(
        "files/copy_v2",
        json!({"from_path": "/a.bin", "to_path": "/b.bin"}),
    )
    .await
    .ok();
    let s = srv.store.stats().await.unwrap();
    assert_eq!(
        s.accounts,
        [("alice".to_owned(), 2 * data.len() as u64, None)]
    );
    assert_eq!(s.live_bytes, 2 * data.len() as u64);
    assert_eq!(s.version_bytes, 2 * data.len() as u64);
    assert_eq!(s.blocks, 2, "5 MiB is two blocks, stored once");
    assert_eq!(s.physical_bytes, data.len() as u64);
    // A file of a batch upload is a small block in the database: counted all the same.
    let id = c
        .content(
            "files/upload_session/start",
            json!({"close": true}),
            b"batched".to_vec(),
        )
        .await
        .ok()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.rpc(
        "files/upload_session/finish_batch_v2",
        json!({"entries": [{"cursor": {"session_id": id, "offset": 7}, "commit": {"path": "/c.txt"}}]}),
    )
    .await
    .ok();
    let s = srv.store.stats().await.unwrap();
    assert_eq!(s.blocks, 3);
    assert_eq!(s.physical_bytes, data.len() as u64 + 7);
}

#[tokio::test]
async fn a_batch_entry_refused_for_space_leaves_the_change_feed_whole() {
    let srv = TestServer::start().await;
    srv.user("alice").await;
    srv.store
        .set_quota("alice", Some(10 * KIB as u64))
        .await
        .unwrap();
    let c = srv.client_for("alice").await;
    let (_, cursor) = c.list_all(json!({"path": "", "recursive": true})).await;
    let start = |data: Vec<u8>| {
        let c = c.clone();
        async move {
            c.content("files/upload_session/start", json!({"close": true}), data)
                .await
                .ok()["session_id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (big, small) = (start(bytes(12 * KIB, 1)).await, start(bytes(KIB, 2)).await);
    // The big entry creates its folder, then fails for space: the folder goes with it.
    let v = c
        .rpc(
            "files/upload_session/finish_batch_v2",
            json!({"entries": [
                {"cursor": {"session_id": big, "offset": 12 * KIB}, "commit": {"path": "/new/big.bin"}},
                {"cursor": {"session_id": small, "offset": KIB}, "commit": {"path": "/small.bin"}},
            ]}),
        )
        .await
        .ok();
    assert_eq!(
        v["entries"][0]["failure"]["path"][".tag"],
        "insufficient_space"
    );
    assert_eq!(v["entries"][1][".tag"], "success");
    assert_eq!(c.meta("/new").await.conflict(), "path/not_found/");
    // Later writes are seen by a cursor taken before or after the batch.
    let latest = c
        .rpc(
            "files/list_folder/get_latest_cursor",
            json!({"path": "", "recursive": true}),
        )
        .await
        .ok()["cursor"]
        .clone();
    c.put("/later.bin", &bytes(KIB, 3)).await;
    let v = c
        .rpc("files/list_folder/continue", json!({"cursor": cursor}))
        .await
        .ok();
    let seen: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path_lower"].as_str().unwrap())
        .collect();
    assert_eq!(seen, ["/small.bin", "/later.bin"]);
    let v = c
        .rpc("files/list_folder/continue", json!({"cursor": latest}))
        .await
        .ok();
    assert_eq!(v["entries"][0]["path_lower"], "/later.bin");
    assert_eq!(v["entries"].as_array().unwrap().len(), 1);
    assert_eq!(used(&c).await.0, 2 * KIB as u64);
}

/// Without a quota, the allocation is what the account uses plus what is free on the disk
/// of the data folder (not a made-up pebibyte, which clients show as "0.0% of 1125.9 TB").
#[tokio::test]
async fn without_a_quota_the_allocation_is_the_space_used_plus_the_disk_free() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    c.put("/a.bin", &bytes(64 * KIB, 4)).await;
    let (used_bytes, allocated) = used(&c).await;
    let df = std::process::Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(srv.dir.path())
        .output()
        .unwrap();
    let free: u64 = String::from_utf8(df.stdout)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(allocated < 1 << 50, "{allocated}");
    // Other tests write to the same disk meanwhile: within 1 GiB.
    let expected = used_bytes + free;
    assert!(
        allocated.abs_diff(expected) < 1 << 30,
        "{allocated} vs {expected}"
    );
}
