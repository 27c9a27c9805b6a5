//! Batch routes and their jobs: good and failing entries mixed, checks answered by any
//! server (in scale-out mode the checks alternate servers).

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Client, TestServer};

/// Polls a check route until the job completes; returns the entries.
async fn wait(c: &Client, check: &str, launch: Value) -> Vec<Value> {
    assert_eq!(launch[".tag"], "async_job_id", "{launch}");
    let id = launch["async_job_id"].as_str().unwrap().to_owned();
    for _ in 0..200 {
        let v = c.rpc(check, json!({"async_job_id": id})).await.ok();
        match v[".tag"].as_str().unwrap() {
            "in_progress" => tokio::time::sleep(Duration::from_millis(25)).await,
            "complete" => return v["entries"].as_array().unwrap().clone(),
            other => panic!("unexpected job state {other}: {v}"),
        }
    }
    panic!("job {id} did not complete");
}

#[tokio::test]
async fn copy_move_delete_batches_mix_good_and_failing_entries() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    c.put("/b/one.txt", b"1").await;
    c.put("/b/two.txt", b"2").await;
    c.put("/b/taken.txt", b"t").await;

    let launch = c
        .rpc(
            "files/copy_batch_v2",
            json!({"entries": [
                {"from_path": "/b/one.txt", "to_path": "/c/one.txt"},
                {"from_path": "/b/missing.txt", "to_path": "/c/missing.txt"},
                {"from_path": "/b/two.txt", "to_path": "/b/taken.txt"},
            ]}),
        )
        .await
        .ok();
    let e = wait(&c, "files/copy_batch/check_v2", launch).await;
    assert_eq!(e[0][".tag"], "success");
    assert_eq!(e[0]["success"][".tag"], "file");
    assert_eq!(e[0]["success"]["path_lower"], "/c/one.txt");
    assert_eq!(
        e[1]["failure"],
        json!({".tag": "relocation_error", "relocation_error": {".tag": "from_lookup", "from_lookup": {".tag": "not_found"}}})
    );
    assert_eq!(
        e[2]["failure"]["relocation_error"]["to"]["conflict"][".tag"],
        "file"
    );

    let launch = c
        .rpc(
            "files/move_batch_v2",
            json!({"entries": [{"from_path": "/c/one.txt", "to_path": "/d/uno.txt"}], "autorename": true}),
        )
        .await
        .ok();
    let e = wait(&c, "files/move_batch/check_v2", launch).await;
    assert_eq!(e[0]["success"]["path_display"], "/d/uno.txt");
    assert_eq!(c.meta("/c/one.txt").await.conflict(), "path/not_found/");

    let launch = c
        .rpc(
            "files/delete_batch",
            json!({"entries": [{"path": "/b/one.txt"}, {"path": "/b/nope.txt"}, {"path": "/d"}]}),
        )
        .await
        .ok();
    let e = wait(&c, "files/delete_batch/check", launch).await;
    assert_eq!(e[0][".tag"], "success");
    assert_eq!(e[0]["metadata"][".tag"], "file");
    assert_eq!(
        e[1]["failure"],
        json!({".tag": "path_lookup", "path_lookup": {".tag": "not_found"}})
    );
    assert_eq!(e[2]["metadata"][".tag"], "folder");
    assert_eq!(c.meta("/d/uno.txt").await.conflict(), "path/not_found/");

    // Unknown jobs and bad sizes.
    let r = c
        .rpc(
            "files/delete_batch/check",
            json!({"async_job_id": "dbjid:nope"}),
        )
        .await;
    assert_eq!(r.conflict(), "invalid_async_job_id/");
    let r = c.rpc("files/delete_batch", json!({"entries": []})).await;
    assert_eq!(r.status, reqwest::StatusCode::BAD_REQUEST);
    // Another user cannot read the job.
    let bob = srv.user("bob").await;
    let launch = c
        .rpc(
            "files/delete_batch",
            json!({"entries": [{"path": "/b/two.txt"}]}),
        )
        .await
        .ok();
    let id = launch["async_job_id"].clone();
    wait(&c, "files/delete_batch/check", launch).await;
    let r = bob
        .rpc("files/delete_batch/check", json!({"async_job_id": id}))
        .await;
    assert_eq!(r.conflict(), "invalid_async_job_id/");
}

#[tokio::test]
async fn create_folder_batch_sync_and_async() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    c.put("/f/file", b"x").await;
    let v = c
        .rpc(
            "files/create_folder_batch",
            json!({"paths": ["/f/a", "/F/A", "/f/b", "/f/file"]}),
        )
        .await
        .ok();
    assert_eq!(v[".tag"], "complete");
    let e = v["entries"].as_array().unwrap();
    assert_eq!(e.len(), 3, "duplicates count once");
    assert_eq!(e[0]["metadata"]["path_lower"], "/f/a");
    assert_eq!(e[2]["failure"]["path"]["conflict"][".tag"], "file");
    let launch = c
        .rpc(
            "files/create_folder_batch",
            json!({"paths": ["/g/x", "/g/y"], "force_async": true}),
        )
        .await
        .ok();
    let e = wait(&c, "files/create_folder_batch/check", launch).await;
    assert_eq!(e.len(), 2);
    assert_eq!(c.meta("/g/y").await.ok()[".tag"], "folder");
}
