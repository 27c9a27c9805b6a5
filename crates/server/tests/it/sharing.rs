//! Shared folders: sharing, members, mounts, what each member's listings, cursors and
//! longpolls see, and access (viewers, removed members, non-members, app folders).

use cubby_store::AccessType;
use serde_json::{Value, json};

use crate::support::{Client, TestServer};

/// Shares `path` of `owner` and returns the shared folder's id.
async fn share(owner: &Client, path: &str) -> String {
    let r = owner
        .rpc("sharing/share_folder", json!({"path": path}))
        .await
        .ok();
    assert_eq!(r[".tag"], "complete", "{r}");
    r["shared_folder_id"].as_str().unwrap().to_owned()
}

/// Adds `who` (a user name) with `level` and has them mount the folder.
async fn invite_and_mount(
    owner: &Client,
    member: &Client,
    id: &str,
    who: &str,
    level: &str,
) -> Value {
    owner
        .rpc(
            "sharing/add_folder_member",
            json!({"shared_folder_id": id, "members": [
                {"member": {".tag": "email", "email": who}, "access_level": level}
            ]}),
        )
        .await
        .ok();
    let mountable = member
        .rpc("sharing/list_mountable_folders", json!({}))
        .await
        .ok();
    assert!(
        mountable["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["shared_folder_id"] == id),
        "{mountable}"
    );
    member
        .rpc("sharing/mount_folder", json!({"shared_folder_id": id}))
        .await
        .ok()
}

/// The paths of a recursive listing of the whole home.
async fn all_paths(c: &Client) -> Vec<String> {
    let (entries, _) = c.list_all(json!({"path": "", "recursive": true})).await;
    let mut v: Vec<String> = entries
        .iter()
        .map(|e| e["path_display"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn members_work_in_one_folder_and_see_each_others_changes() {
    let srv = TestServer::start().await;
    let owner = srv.user("olivia").await;
    let editor = srv.user("eddie").await;
    owner.put("/Team/plan.txt", b"v1").await;
    owner.put("/Team/sub/notes.txt", b"n").await;
    owner.put("/private.txt", b"p").await;
    // A cursor from before the share keeps working across it.
    let before = owner
        .rpc(
            "files/list_folder/get_latest_cursor",
            json!({"path": "", "recursive": true}),
        )
        .await
        .ok()["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = share(&owner, "/Team").await;

    // The owner's view is unchanged, and the mount point says it is shared.
    assert_eq!(
        all_paths(&owner).await,
        [
            "/Team",
            "/Team/plan.txt",
            "/Team/sub",
            "/Team/sub/notes.txt",
            "/private.txt"
        ]
    );
    let top = owner.meta("/Team").await.ok();
    assert_eq!(top["sharing_info"]["shared_folder_id"], id.as_str());
    assert_eq!(top["shared_folder_id"], id.as_str());
    let plan = owner.meta("/team/plan.txt").await.ok();
    assert_eq!(plan["sharing_info"]["parent_shared_folder_id"], id.as_str());
    assert_eq!(plan["sharing_info"]["read_only"], false);

    let mounted = invite_and_mount(&owner, &editor, &id, "eddie", "editor").await;
    assert_eq!(mounted["path_lower"], "/team");
    assert_eq!(mounted["access_type"][".tag"], "editor");
    assert_eq!(
        all_paths(&editor).await,
        [
            "/Team",
            "/Team/plan.txt",
            "/Team/sub",
            "/Team/sub/notes.txt"
        ],
        "the editor sees the folder and nothing else of the owner's"
    );

    // The owner's old cursor and a fresh one both see the editor's write.
    let fresh = owner
        .rpc(
            "files/list_folder/get_latest_cursor",
            json!({"path": "", "recursive": true}),
        )
        .await
        .ok()["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let waiter = {
        let owner = owner.clone();
        let fresh = fresh.clone();
        tokio::spawn(async move {
            owner
                .rpc(
                    "files/list_folder/longpoll",
                    json!({"cursor": fresh, "timeout": 30}),
                )
                .await
                .ok()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let written = editor.put("/Team/sub/from-eddie.txt", b"hello").await;
    assert_eq!(written["path_display"], "/Team/sub/from-eddie.txt");
    assert_eq!(waiter.await.unwrap()["changes"], true);
    for cursor in [&before, &fresh] {
        let page = owner
            .rpc("files/list_folder/continue", json!({"cursor": cursor}))
            .await
            .ok();
        let paths: Vec<&str> = page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e[".tag"] != "deleted")
            .map(|e| e["path_lower"].as_str().unwrap())
            .collect();
        assert!(paths.contains(&"/team/sub/from-eddie.txt"), "{page}");
        assert!(
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e[".tag"] != "deleted"),
            "nothing reads as deleted across the share: {page}"
        );
    }
    let got = owner
        .download(json!({"path": "/Team/sub/from-eddie.txt"}), None)
        .await;
    assert_eq!(got.body, b"hello".to_vec());

    // Moves inside the folder, and in and out of it, keep the content.
    editor
        .rpc(
            "files/move_v2",
            json!({"from_path": "/Team/plan.txt", "to_path": "/Team/sub/plan.txt"}),
        )
        .await
        .ok();
    editor.put("/mine.txt", b"m").await;
    editor
        .rpc(
            "files/move_v2",
            json!({"from_path": "/mine.txt", "to_path": "/Team/mine.txt"}),
        )
        .await
        .ok();
    assert!(owner.meta("/Team/mine.txt").await.status.is_success());
    assert!(owner.meta("/Team/sub/plan.txt").await.status.is_success());
    assert!(!editor.meta("/mine.txt").await.status.is_success());

    // Moving the mount point moves only the editor's view.
    editor
        .rpc(
            "files/move_v2",
            json!({"from_path": "/Team", "to_path": "/Work/Shared"}),
        )
        .await
        .ok();
    assert!(
        editor
            .meta("/Work/Shared/sub/from-eddie.txt")
            .await
            .status
            .is_success()
    );
    assert!(
        owner
            .meta("/Team/sub/from-eddie.txt")
            .await
            .status
            .is_success()
    );
    editor.put("/Work/Shared/later.txt", b"l").await;
    assert!(owner.meta("/Team/later.txt").await.status.is_success());
    // Search finds it for each member, at their own mount point.
    for (who, want) in [
        (&editor, "/work/shared/later.txt"),
        (&owner, "/team/later.txt"),
    ] {
        let found = who
            .rpc("files/search_v2", json!({"query": "later"}))
            .await
            .ok();
        assert_eq!(
            found["matches"][0]["metadata"]["metadata"]["path_lower"], want,
            "{found}"
        );
    }

    // The members are listed, with their names.
    let members = owner
        .rpc(
            "sharing/list_folder_members",
            json!({"shared_folder_id": id}),
        )
        .await
        .ok();
    let names: Vec<&str> = members["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"]["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["olivia", "eddie"]);
    // A page at a time, and the cursor is the caller's only.
    let first = owner
        .rpc(
            "sharing/list_folder_members",
            json!({"shared_folder_id": id, "limit": 1}),
        )
        .await
        .ok();
    assert_eq!(first["users"][0]["user"]["display_name"], "olivia");
    let cursor = first["cursor"].as_str().unwrap().to_owned();
    let r = editor
        .rpc(
            "sharing/list_folder_members/continue",
            json!({"cursor": cursor}),
        )
        .await;
    assert!(r.conflict().starts_with("invalid_cursor"), "{}", r.text());
    let second = owner
        .rpc(
            "sharing/list_folder_members/continue",
            json!({"cursor": cursor}),
        )
        .await
        .ok();
    assert_eq!(second["users"][0]["user"]["display_name"], "eddie");
    assert!(second.get("cursor").is_none(), "{second}");
    owner.put("/Other/x.txt", b"x").await;
    share(&owner, "/Other").await;
    let page = owner
        .rpc("sharing/list_folders", json!({"limit": 1}))
        .await
        .ok();
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
    let rest = owner
        .rpc(
            "sharing/list_folders/continue",
            json!({"cursor": page["cursor"]}),
        )
        .await
        .ok();
    assert_eq!(rest["entries"][0]["name"], "Other");
    let r = owner
        .rpc(
            "sharing/list_mountable_folders/continue",
            json!({"cursor": page["cursor"]}),
        )
        .await;
    assert!(r.conflict().starts_with("invalid_cursor"), "{}", r.text());
    let eddie_id = members["users"][1]["user"]["account_id"].as_str().unwrap();
    let acct = owner
        .rpc("users/get_account", json!({"account_id": eddie_id}))
        .await
        .ok();
    assert_eq!(acct["name"]["display_name"], "eddie");
}

#[tokio::test]
async fn a_viewer_reads_but_every_write_is_refused() {
    let srv = TestServer::start().await;
    let owner = srv.user("olivia").await;
    let viewer = srv.user("vic").await;
    owner.put("/Album/a.jpg", b"a").await;
    let id = share(&owner, "/Album").await;
    invite_and_mount(&owner, &viewer, &id, "vic", "viewer").await;
    let a = viewer.meta("/Album/a.jpg").await.ok();
    assert_eq!(a["sharing_info"]["read_only"], true);
    assert_eq!(
        viewer
            .download(json!({"path": "/Album/a.jpg"}), None)
            .await
            .body,
        b"a".to_vec()
    );
    viewer.put("/elsewhere.txt", b"e").await;

    let refused = |r: crate::support::Reply| {
        let s = r.conflict();
        assert!(s.contains("no_write_permission"), "{s}");
    };
    refused(
        viewer
            .upload_with(json!({"path": "/Album/b.jpg"}), b"b".to_vec())
            .await,
    );
    refused(
        viewer
            .upload_with(
                json!({"path": "/Album/a.jpg", "mode": "overwrite"}),
                b"x".to_vec(),
            )
            .await,
    );
    refused(
        viewer
            .rpc("files/create_folder_v2", json!({"path": "/Album/new"}))
            .await,
    );
    refused(
        viewer
            .rpc("files/delete_v2", json!({"path": "/Album/a.jpg"}))
            .await,
    );
    refused(
        viewer
            .rpc(
                "files/move_v2",
                json!({"from_path": "/Album/a.jpg", "to_path": "/a.jpg"}),
            )
            .await,
    );
    refused(
        viewer
            .rpc(
                "files/copy_v2",
                json!({"from_path": "/elsewhere.txt", "to_path": "/Album/e.txt"}),
            )
            .await,
    );
    // A session finish into the folder is refused as well.
    let s = viewer
        .content(
            "files/upload_session/start",
            json!({"close": true}),
            b"z".to_vec(),
        )
        .await
        .ok();
    refused(
        viewer
            .content(
                "files/upload_session/finish",
                json!({"cursor": {"session_id": s["session_id"], "offset": 1},
                       "commit": {"path": "/Album/z.txt"}}),
                Vec::new(),
            )
            .await,
    );
    // Copying out is a read: allowed.
    viewer
        .rpc(
            "files/copy_v2",
            json!({"from_path": "/Album/a.jpg", "to_path": "/copy.jpg"}),
        )
        .await
        .ok();
    // Nothing changed for the owner.
    assert_eq!(all_paths(&owner).await, ["/Album", "/Album/a.jpg"]);
    // Managing members takes more than viewing.
    let r = viewer
        .rpc(
            "sharing/add_folder_member",
            json!({"shared_folder_id": id, "members": [{"member": {".tag": "email", "email": "olivia"}}]}),
        )
        .await;
    assert!(r.conflict().contains("no_permission"), "{}", r.text());
}

#[tokio::test]
async fn removed_members_and_strangers_reach_nothing() {
    let srv = TestServer::start().await;
    let owner = srv.user("olivia").await;
    let member = srv.user("mel").await;
    let stranger = srv.user("sam").await;
    owner.put("/Shared/doc.txt", b"d").await;
    let id = share(&owner, "/Shared").await;
    invite_and_mount(&owner, &member, &id, "mel", "editor").await;
    let inside = member
        .rpc("files/list_folder", json!({"path": "/Shared"}))
        .await
        .ok()["cursor"]
        .as_str()
        .unwrap()
        .to_owned();

    // A stranger gets nothing by id, by namespace path or by mounting.
    for path in [format!("ns:{id}/doc.txt"), format!("ns:{id}")] {
        let r = stranger
            .rpc("files/get_metadata", json!({"path": path}))
            .await;
        assert!(r.conflict().contains("not_found"), "{path}: {}", r.text());
    }
    let r = stranger
        .rpc("sharing/mount_folder", json!({"shared_folder_id": id}))
        .await;
    assert!(
        r.conflict().contains("access_error/not_a_member"),
        "{}",
        r.text()
    );
    let r = stranger
        .rpc(
            "sharing/get_folder_metadata",
            json!({"shared_folder_id": id}),
        )
        .await;
    assert!(r.conflict().contains("not_a_member"), "{}", r.text());
    let r = stranger
        .upload_with(
            json!({"path": format!("ns:{id}/planted.txt")}),
            b"x".to_vec(),
        )
        .await;
    assert!(!r.status.is_success(), "{}", r.text());

    // The member reaches it by namespace path too, until removed.
    assert!(
        member
            .rpc(
                "files/get_metadata",
                json!({"path": format!("ns:{id}/doc.txt")})
            )
            .await
            .status
            .is_success()
    );
    // What the member minted through the folder works while they are a member.
    let link = member
        .rpc(
            "files/get_temporary_link",
            json!({"path": "/Shared/doc.txt"}),
        )
        .await
        .ok()["link"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(member.raw(member.http.get(&link)).await.body, b"d".to_vec());
    let reference = member
        .rpc(
            "files/copy_reference/get",
            json!({"path": "/Shared/doc.txt"}),
        )
        .await
        .ok()["copy_reference"]
        .clone();
    let mel_id = member
        .rpc("users/get_current_account", Value::Null)
        .await
        .ok()["account_id"]
        .clone();
    let job = owner
        .rpc(
            "sharing/remove_folder_member",
            json!({"shared_folder_id": id, "member": {".tag": "dropbox_id", "dropbox_id": mel_id},
                   "leave_a_copy": false}),
        )
        .await
        .ok();
    let status = owner
        .rpc(
            "sharing/check_remove_member_job_status",
            json!({"async_job_id": job["async_job_id"]}),
        )
        .await
        .ok();
    assert_eq!(status[".tag"], "complete", "{status}");
    assert!(all_paths(&member).await.is_empty());
    let r = member
        .rpc("files/list_folder/continue", json!({"cursor": inside}))
        .await;
    assert!(r.conflict().contains("reset"), "{}", r.text());
    let r = member
        .rpc(
            "files/get_metadata",
            json!({"path": format!("ns:{id}/doc.txt")}),
        )
        .await;
    assert!(r.conflict().contains("not_found"), "{}", r.text());
    assert_eq!(all_paths(&owner).await, ["/Shared", "/Shared/doc.txt"]);
    // ... and stops working with the membership.
    assert_eq!(member.raw(member.http.get(&link)).await.status, 410);
    let r = stranger
        .rpc(
            "files/copy_reference/save",
            json!({"copy_reference": reference, "path": "/stolen.txt"}),
        )
        .await;
    assert!(r.conflict().contains("no_permission"), "{}", r.text());
    assert!(all_paths(&stranger).await.is_empty());
}

#[tokio::test]
async fn nesting_rules_app_folders_and_unsharing() {
    let srv = TestServer::start().await;
    let owner = srv.user("olivia").await;
    let member = srv.user("mel").await;
    owner.put("/Outer/Inner/x.txt", b"x").await;
    let id = share(&owner, "/Outer/Inner").await;
    let bad = |r: crate::support::Reply, want: &str| {
        assert!(r.conflict().contains(want), "{want}: {}", r.text());
    };
    bad(
        owner
            .rpc("sharing/share_folder", json!({"path": "/Outer"}))
            .await,
        "contains_shared_folder",
    );
    owner
        .rpc(
            "files/create_folder_v2",
            json!({"path": "/Outer/Inner/deeper"}),
        )
        .await
        .ok();
    bad(
        owner
            .rpc(
                "sharing/share_folder",
                json!({"path": "/Outer/Inner/deeper"}),
            )
            .await,
        "inside_shared_folder",
    );
    bad(
        owner
            .rpc("sharing/share_folder", json!({"path": "/Outer/Inner"}))
            .await,
        "already_shared",
    );
    bad(
        owner
            .rpc(
                "files/copy_v2",
                json!({"from_path": "/Outer", "to_path": "/Copy"}),
            )
            .await,
        "cant_copy_shared_folder",
    );

    // An app-folder app sees none of it: its paths stay inside its folder.
    let (app, _) = srv.app("Pics", AccessType::AppFolder, &[], false).await;
    let pics = srv.app_client("olivia", &app).await;
    let r = pics
        .rpc(
            "files/get_metadata",
            json!({"path": format!("ns:{id}/x.txt")}),
        )
        .await;
    assert!(!r.status.is_success(), "{}", r.text());

    invite_and_mount(&owner, &member, &id, "mel", "editor").await;
    member.put("/Inner/by-mel.txt", b"m").await;
    owner
        .rpc(
            "sharing/unshare_folder",
            json!({"shared_folder_id": id, "leave_a_copy": true}),
        )
        .await
        .ok();
    // The owner keeps everything where it was, no longer shared; the member keeps a copy.
    let top = owner.meta("/Outer/Inner").await.ok();
    assert!(top.get("sharing_info").is_none(), "{top}");
    assert_eq!(
        all_paths(&owner).await,
        [
            "/Apps",
            "/Apps/Pics",
            "/Outer",
            "/Outer/Inner",
            "/Outer/Inner/by-mel.txt",
            "/Outer/Inner/deeper",
            "/Outer/Inner/x.txt"
        ]
    );
    assert_eq!(
        all_paths(&member).await,
        [
            "/Inner",
            "/Inner/by-mel.txt",
            "/Inner/deeper",
            "/Inner/x.txt"
        ]
    );
    // Separate copies now: a change on one side stays there.
    member.put("/Inner/only-mel.txt", b"o").await;
    assert!(
        !owner
            .meta("/Outer/Inner/only-mel.txt")
            .await
            .status
            .is_success()
    );
}

/// An RPC call under `Dropbox-API-Path-Root`.
async fn rpc_under(c: &Client, root: &Value, route: &str, arg: Value) -> crate::support::Reply {
    c.raw(
        c.http
            .post(format!("{}/2/{route}", c.url()))
            .bearer_auth(&c.token)
            .header("content-type", "application/json")
            .header("dropbox-api-path-root", root.to_string())
            .body(serde_json::to_vec(&arg).unwrap()),
    )
    .await
}

#[tokio::test]
async fn the_path_root_header_reaches_a_shared_folder_for_its_members_only() {
    let srv = TestServer::start().await;
    let owner = srv.user("olivia").await;
    let member = srv.user("mel").await;
    let stranger = srv.user("sam").await;
    owner.put("/Shared/a.txt", b"a").await;
    let id = share(&owner, "/Shared").await;
    owner
        .rpc(
            "sharing/add_folder_member",
            json!({"shared_folder_id": id, "members": [
                {"member": {".tag": "email", "email": "mel"}, "access_level": "viewer"}
            ]}),
        )
        .await
        .ok();
    let root = json!({".tag": "namespace_id", "namespace_id": id});
    // A member reads it as the root, mounted or not: paths are the folder's own.
    let listed = rpc_under(&member, &root, "files/list_folder", json!({"path": ""}))
        .await
        .ok();
    let paths: Vec<&str> = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path_display"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/a.txt"]);
    assert_eq!(listed["entries"][0]["sharing_info"]["read_only"], true);
    // The cursor keeps following it.
    owner.put("/Shared/b.txt", b"b").await;
    let next = rpc_under(
        &member,
        &root,
        "files/list_folder/continue",
        json!({"cursor": listed["cursor"]}),
    )
    .await
    .ok();
    assert_eq!(next["entries"][0]["path_display"], "/b.txt");
    // A viewer writes nothing there; the owner writes at the folder's paths.
    let r = rpc_under(
        &member,
        &root,
        "files/create_folder_v2",
        json!({"path": "/new"}),
    )
    .await;
    assert!(r.conflict().contains("no_write_permission"), "{}", r.text());
    rpc_under(
        &owner,
        &root,
        "files/create_folder_v2",
        json!({"path": "/made"}),
    )
    .await
    .ok();
    assert!(owner.meta("/Shared/made").await.status.is_success());
    // Anyone else is refused with Dropbox's path root error, and so is an app folder.
    let r = rpc_under(&stranger, &root, "files/list_folder", json!({"path": ""})).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["error"][".tag"], "no_permission", "{}", r.text());
    let (app, _) = srv.app("Pics", AccessType::AppFolder, &[], false).await;
    let pics = srv.app_client("olivia", &app).await;
    let r = rpc_under(&pics, &root, "files/list_folder", json!({"path": ""})).await;
    assert_eq!(r.status, 422, "{}", r.text());
    // Removed, the member's cursor stops.
    let mel = member
        .rpc("users/get_current_account", Value::Null)
        .await
        .ok()["account_id"]
        .clone();
    owner
        .rpc(
            "sharing/remove_folder_member",
            json!({"shared_folder_id": id, "member": {".tag": "dropbox_id", "dropbox_id": mel},
                   "leave_a_copy": false}),
        )
        .await
        .ok();
    let r = member
        .rpc(
            "files/list_folder/continue",
            json!({"cursor": next["cursor"]}),
        )
        .await;
    assert!(r.conflict().contains("reset"), "{}", r.text());
}

#[tokio::test]
async fn a_mounted_folder_counts_against_each_members_quota() {
    let srv = TestServer::start().await;
    let owner = srv.user("olivia").await;
    let roomy = srv.user("mel").await;
    let tight = srv.user("tim").await;
    owner.put("/Big/a.bin", &vec![7u8; 800]).await;
    let id = share(&owner, "/Big").await;
    for who in ["mel", "tim"] {
        owner
            .rpc(
                "sharing/add_folder_member",
                json!({"shared_folder_id": id, "members": [
                    {"member": {".tag": "email", "email": who}, "access_level": "editor"}]}),
            )
            .await
            .ok();
    }
    srv.store.set_quota("mel", Some(1_000)).await.unwrap();
    srv.store.set_quota("tim", Some(500)).await.unwrap();
    // Too little room to mount: insufficient_quota, with the figures.
    let r = tight
        .rpc("sharing/mount_folder", json!({"shared_folder_id": id}))
        .await;
    assert!(
        r.conflict().starts_with("insufficient_quota"),
        "{}",
        r.text()
    );
    let q = &r.json()["error"];
    assert_eq!(q["space_needed"], 800);
    assert_eq!(q["space_left"], 500);
    assert!(all_paths(&tight).await.is_empty());
    // Room enough: mounted, and the folder counts in the member's usage.
    roomy
        .rpc("sharing/mount_folder", json!({"shared_folder_id": id}))
        .await
        .ok();
    let usage = roomy.rpc("users/get_space_usage", Value::Null).await.ok();
    assert_eq!(usage["used"], 800);
    // So the member's own files have 200 bytes left, in their home as in the folder.
    let r = roomy
        .upload_with(json!({"path": "/mine.bin"}), vec![1u8; 300])
        .await;
    assert!(r.conflict().contains("insufficient_space"), "{}", r.text());
    roomy.put("/mine.bin", &[1u8; 150]).await;
    // Writes into the folder are held to its owner's quota.
    srv.store.set_quota("olivia", Some(900)).await.unwrap();
    let r = roomy
        .upload_with(json!({"path": "/Big/more.bin"}), vec![2u8; 200])
        .await;
    assert!(r.conflict().contains("insufficient_space"), "{}", r.text());
    roomy.put("/Big/small.bin", &[2u8; 50]).await;
}

#[tokio::test]
async fn policies_decide_who_manages_members() {
    let srv = TestServer::start().await;
    let owner = srv.user("olivia").await;
    let editor = srv.user("eddie").await;
    srv.user("carl").await;
    owner.put("/Club/rules.txt", b"r").await;
    let r = owner
        .rpc(
            "sharing/share_folder",
            json!({"path": "/Club", "acl_update_policy": "editors", "member_policy": "anyone"}),
        )
        .await
        .ok();
    assert_eq!(r["policy"]["acl_update_policy"][".tag"], "editors", "{r}");
    let id = r["shared_folder_id"].as_str().unwrap().to_owned();
    invite_and_mount(&owner, &editor, &id, "eddie", "editor").await;
    let add_carl = json!({"shared_folder_id": id, "members": [
        {"member": {".tag": "email", "email": "carl"}, "access_level": "viewer"}]});
    // Editors may manage members here...
    editor
        .rpc("sharing/add_folder_member", add_carl.clone())
        .await
        .ok();
    // ...until the owner says only they may; an editor never changes the policy.
    let r = editor
        .rpc(
            "sharing/update_folder_policy",
            json!({"shared_folder_id": id, "acl_update_policy": "owner"}),
        )
        .await;
    assert!(r.conflict().starts_with("no_permission"), "{}", r.text());
    let md = owner
        .rpc(
            "sharing/update_folder_policy",
            json!({"shared_folder_id": id, "acl_update_policy": "owner"}),
        )
        .await
        .ok();
    assert_eq!(md["policy"]["acl_update_policy"][".tag"], "owner");
    let r = editor.rpc("sharing/add_folder_member", add_carl).await;
    assert!(r.conflict().starts_with("no_permission"), "{}", r.text());
    // Ownership passes to a mounted member; the old owner edits from then on.
    let eddie = editor
        .rpc("users/get_current_account", Value::Null)
        .await
        .ok()["account_id"]
        .clone();
    owner
        .rpc(
            "sharing/transfer_folder",
            json!({"shared_folder_id": id, "to_dropbox_id": eddie}),
        )
        .await
        .ok();
    let md = owner
        .rpc(
            "sharing/get_folder_metadata",
            json!({"shared_folder_id": id}),
        )
        .await
        .ok();
    assert_eq!(md["access_type"][".tag"], "editor");
    assert_eq!(md["owner_display_names"], json!(["eddie"]));
}
