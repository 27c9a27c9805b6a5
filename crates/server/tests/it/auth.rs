//! The security battery: app-folder confinement, isolation between users, token states,
//! and the OAuth code and token endpoint rules. Every case asserts the exact error.

use cubby_store::{AccessType, CodeRequest, TokenAccess};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

use crate::support::{Client, Reply, TestServer};

/// The error summary of a 409, without its trailing dots.
fn summary(r: &Reply) -> String {
    r.conflict()
}

/// What an escape attempt must get.
enum Expect {
    /// 409 with exactly this error summary.
    Conflict(&'static str),
    /// 400 (a pattern violation).
    BadInput,
}

struct Outside {
    secret_id: String,
    secret_rev: String,
    other_id: String,
    other_folder_id: String,
    sibling_id: String,
    prefix_id: String,
    apps_id: String,
    ns: String,
}

/// Files outside the app folder `/Apps/Backup`, including siblings whose names share its
/// prefix, so a prefix check without a separator would let them through.
async fn outside_files(full: &Client) -> Outside {
    let secret = full.put("/secret.txt", b"top secret").await;
    let other = full.put("/Apps/Other/o.txt", b"other app").await;
    let sibling = full.put("/Apps/Backup Evil/x.txt", b"sibling").await;
    let prefix = full.put("/Apps/Backupx/y.txt", b"prefix").await;
    let id = |p: &str| {
        let full = full.clone();
        let p = p.to_owned();
        async move { full.meta(&p).await.ok()["id"].as_str().unwrap().to_owned() }
    };
    let ns = full
        .rpc("users/get_current_account", Value::Null)
        .await
        .ok()["root_info"]["root_namespace_id"]
        .as_str()
        .unwrap()
        .to_owned();
    Outside {
        secret_id: secret["id"].as_str().unwrap().to_owned(),
        secret_rev: secret["rev"].as_str().unwrap().to_owned(),
        other_id: other["id"].as_str().unwrap().to_owned(),
        other_folder_id: id("/Apps/Other").await,
        sibling_id: sibling["id"].as_str().unwrap().to_owned(),
        prefix_id: prefix["id"].as_str().unwrap().to_owned(),
        apps_id: id("/Apps").await,
        ns,
    }
}

#[tokio::test]
async fn app_folder_confinement_holds_for_every_route_and_path_form() {
    let srv = TestServer::start().await;
    let full = srv.user("alice").await;
    let o = outside_files(&full).await;
    let (app, _) = srv.app("Backup", AccessType::AppFolder, &[], false).await;
    let c = srv.app_client("alice", &app).await;
    let inside = c.put("/inside.txt", b"mine").await;
    assert_eq!(inside["path_display"], "/inside.txt");

    let ns = &o.ns;
    let attempts: Vec<(&str, Value, Expect)> = vec![
        // Relative paths that try to climb out.
        (
            "files/get_metadata",
            json!({"path": "/../secret.txt"}),
            Expect::Conflict("path/malformed_path/"),
        ),
        (
            "files/get_metadata",
            json!({"path": "/./secret.txt"}),
            Expect::Conflict("path/malformed_path/"),
        ),
        (
            "files/get_metadata",
            json!({"path": "/inside.txt/../../secret.txt"}),
            Expect::Conflict("path/malformed_path/"),
        ),
        (
            "files/get_metadata",
            json!({"path": "//secret.txt"}),
            Expect::Conflict("path/malformed_path/"),
        ),
        (
            "files/get_metadata",
            json!({"path": "/..\u{0}/secret.txt"}),
            Expect::Conflict("path/malformed_path/"),
        ),
        (
            "files/get_metadata",
            json!({"path": "secret.txt"}),
            Expect::BadInput,
        ),
        // Encoded dots and look-alikes are plain names inside the app folder.
        (
            "files/get_metadata",
            json!({"path": "/%2e%2e/secret.txt"}),
            Expect::Conflict("path/not_found/"),
        ),
        (
            "files/get_metadata",
            json!({"path": "/\u{ff0e}\u{ff0e}/secret.txt"}),
            Expect::Conflict("path/not_found/"),
        ),
        (
            "files/get_metadata",
            json!({"path": "/\u{2024}\u{2024}/secret.txt"}),
            Expect::Conflict("path/not_found/"),
        ),
        (
            "files/get_metadata",
            json!({"path": "/..\\secret.txt"}),
            Expect::Conflict("path/not_found/"),
        ),
        (
            "files/get_metadata",
            json!({"path": "/secret.txt"}),
            Expect::Conflict("path/not_found/"),
        ),
        (
            "files/get_metadata",
            json!({"path": "/Apps/Other/o.txt"}),
            Expect::Conflict("path/not_found/"),
        ),
        // Ids, namespaces and revisions of things outside.
        (
            "files/get_metadata",
            json!({"path": o.secret_id}),
            Expect::Conflict("path/not_found/"),
        ),
        (
            "files/get_metadata",
            json!({"path": o.other_id}),
            Expect::Conflict("path/not_found/"),
        ),
        (
            "files/get_metadata",
            json!({"path": o.sibling_id}),
            Expect::Conflict("path/not_found/"),
        ),
        (
            "files/get_metadata",
            json!({"path": o.prefix_id}),
            Expect::Conflict("path/not_found/"),
        ),
        (
            "files/get_metadata",
            json!({"path": format!("{}/o.txt", o.other_folder_id)}),
            Expect::Conflict("path/not_found/"),
        ),
        (
            "files/get_metadata",
            json!({"path": format!("ns:{ns}/secret.txt")}),
            Expect::Conflict("path/not_found/"),
        ),
        (
            "files/get_metadata",
            json!({"path": format!("ns:{ns}/Apps/Backup Evil/x.txt")}),
            Expect::Conflict("path/not_found/"),
        ),
        (
            "files/get_metadata",
            json!({"path": format!("ns:{ns}/Apps/Backupx/y.txt")}),
            Expect::Conflict("path/not_found/"),
        ),
        (
            "files/get_metadata",
            json!({"path": format!("rev:{}", o.secret_rev)}),
            Expect::Conflict("path/not_found/"),
        ),
        (
            "files/list_folder",
            json!({"path": format!("ns:{ns}")}),
            Expect::Conflict("path/not_found/"),
        ),
        (
            "files/list_folder",
            json!({"path": o.apps_id}),
            Expect::Conflict("path/not_found/"),
        ),
        (
            "files/list_folder",
            json!({"path": o.other_folder_id, "recursive": true}),
            Expect::Conflict("path/not_found/"),
        ),
        (
            "files/list_revisions",
            json!({"path": o.secret_id, "mode": "id"}),
            Expect::Conflict("path/not_found/"),
        ),
        (
            "files/list_revisions",
            json!({"path": "/../secret.txt"}),
            Expect::Conflict("path/malformed_path/"),
        ),
        (
            "files/get_temporary_link",
            json!({"path": o.secret_id}),
            Expect::Conflict("path/not_found/"),
        ),
        (
            "files/get_temporary_link",
            json!({"path": format!("rev:{}", o.secret_rev)}),
            Expect::Conflict("path/not_found/"),
        ),
        // Writes that aim outside.
        (
            "files/create_folder_v2",
            json!({"path": format!("ns:{ns}/escape")}),
            Expect::Conflict("path/no_write_permission/"),
        ),
        (
            "files/create_folder_v2",
            json!({"path": format!("{}/escape", o.apps_id)}),
            Expect::BadInput,
        ),
        (
            "files/copy_v2",
            json!({"from_path": o.secret_id, "to_path": "/stolen.txt"}),
            Expect::Conflict("from_lookup/not_found/"),
        ),
        (
            "files/copy_v2",
            json!({"from_path": format!("ns:{ns}/secret.txt"), "to_path": "/stolen.txt"}),
            Expect::Conflict("from_lookup/not_found/"),
        ),
        (
            "files/move_v2",
            json!({"from_path": "/inside.txt", "to_path": format!("ns:{ns}/moved.txt")}),
            Expect::Conflict("to/no_write_permission/"),
        ),
        (
            "files/move_v2",
            json!({"from_path": "/inside.txt", "to_path": format!("{}/moved.txt", o.other_folder_id)}),
            Expect::Conflict("to/no_write_permission/"),
        ),
        (
            "files/delete_v2",
            json!({"path": o.secret_id}),
            Expect::Conflict("path_lookup/not_found/"),
        ),
        (
            "files/delete_v2",
            json!({"path": format!("ns:{ns}/Apps/Other")}),
            Expect::Conflict("path_lookup/not_found/"),
        ),
        (
            "files/permanently_delete",
            json!({"path": o.secret_id}),
            Expect::Conflict("path_lookup/not_found/"),
        ),
        (
            "files/restore",
            json!({"path": "/restored.txt", "rev": o.secret_rev}),
            Expect::Conflict("invalid_revision/"),
        ),
    ];
    assert!(
        attempts.len() >= 30,
        "the battery has {} cases",
        attempts.len()
    );
    for (route, arg, expect) in &attempts {
        let r = c.rpc(route, arg.clone()).await;
        match expect {
            Expect::Conflict(s) => {
                assert_eq!(
                    r.status,
                    StatusCode::CONFLICT,
                    "{route} {arg}: {}",
                    r.text()
                );
                assert_eq!(summary(&r), *s, "{route} {arg}");
            }
            Expect::BadInput => {
                assert_eq!(
                    r.status,
                    StatusCode::BAD_REQUEST,
                    "{route} {arg}: {}",
                    r.text()
                );
            }
        }
    }

    // Content routes.
    for path in [
        o.secret_id.clone(),
        format!("rev:{}", o.secret_rev),
        format!("ns:{ns}/secret.txt"),
    ] {
        let r = c.download(json!({"path": path}), None).await;
        assert_eq!(
            r.status,
            StatusCode::CONFLICT,
            "download {path}: {}",
            r.text()
        );
        assert_eq!(summary(&r), "path/not_found/", "download {path}");
    }
    let r = c
        .raw(
            c.http
                .post(format!("{}/2/files/download_zip", c.url()))
                .bearer_auth(&c.token)
                .header(
                    "dropbox-api-arg",
                    json!({"path": o.other_folder_id}).to_string(),
                ),
        )
        .await;
    assert_eq!(summary(&r), "path/not_found/");
    let r = c
        .upload_with(json!({"path": "/../x.txt"}), b"x".to_vec())
        .await;
    assert_eq!(summary(&r), "path/malformed_path/");

    // A batch job reports the same refusals per entry.
    let job = c
        .rpc(
            "files/copy_batch_v2",
            json!({"entries": [{"from_path": o.secret_id, "to_path": "/b.txt"}]}),
        )
        .await
        .ok();
    let result = match job[".tag"].as_str() {
        Some("complete") => job,
        _ => loop {
            let v = c
                .rpc(
                    "files/copy_batch/check_v2",
                    json!({"async_job_id": job["async_job_id"]}),
                )
                .await
                .ok();
            if v[".tag"] != "in_progress" {
                break v;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        },
    };
    assert_eq!(result["entries"][0][".tag"], "failure", "{result}");
    assert_eq!(result["entries"][0]["failure"][".tag"], "relocation_error");

    // Listing and search see the app folder only, with paths relative to it.
    let (entries, cursor) = c.list_all(json!({"path": "", "recursive": true})).await;
    let paths: Vec<&str> = entries
        .iter()
        .map(|e| e["path_display"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/inside.txt"], "{entries:?}");
    for query in ["secret", "o.txt", "x.txt", "y.txt"] {
        let v = c.rpc("files/search_v2", json!({"query": query})).await.ok();
        assert_eq!(v["matches"], json!([]), "search {query}");
    }
    // A change outside the app folder is not in the app's feed.
    full.put("/secret2.txt", b"more").await;
    let v = c
        .rpc("files/list_folder/continue", json!({"cursor": cursor}))
        .await
        .ok();
    assert_eq!(v["entries"], json!([]));

    // Cursors minted for another root are refused.
    let (_, full_cursor) = full.list_all(json!({"path": ""})).await;
    let r = c
        .rpc("files/list_folder/continue", json!({"cursor": full_cursor}))
        .await;
    assert_eq!(summary(&r), "reset/");
    let (other_app, _) = srv.app("Other", AccessType::AppFolder, &[], false).await;
    let other = srv.app_client("alice", &other_app).await;
    let (other_entries, other_cursor) = other.list_all(json!({"path": ""})).await;
    assert_eq!(other_entries.len(), 1, "the Other app sees its own o.txt");
    let r = c
        .rpc(
            "files/list_folder/continue",
            json!({"cursor": other_cursor}),
        )
        .await;
    assert_eq!(summary(&r), "reset/");

    // Nothing outside changed, and nothing arrived there.
    let r = full.download(json!({"path": "/secret.txt"}), None).await;
    assert_eq!(r.body, b"top secret");
    for p in [
        "/stolen.txt",
        "/moved.txt",
        "/escape",
        "/Apps/Other/escape",
        "/Apps/Backup/restored.txt",
        "/Apps/Backup/b.txt",
    ] {
        assert_eq!(summary(&full.meta(p).await), "path/not_found/", "{p}");
    }
    let (all, _) = full
        .list_all(json!({"path": "/Apps/Other", "recursive": true}))
        .await;
    assert_eq!(all.len(), 2, "{all:?}");
}

#[tokio::test]
async fn one_user_cannot_reach_anothers_files_by_any_path_form() {
    let srv = TestServer::start().await;
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let o = outside_files(&alice).await;
    let (_, cursor) = alice.list_all(json!({"path": ""})).await;
    let ns = &o.ns;
    for path in [
        o.secret_id.clone(),
        format!("{}/o.txt", o.other_folder_id),
        format!("ns:{ns}/secret.txt"),
        format!("ns:{ns}"),
    ] {
        let r = bob.meta(&path).await;
        assert_eq!(summary(&r), "path/not_found/", "{path}");
        let r = bob.download(json!({"path": path}), None).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{path}");
    }
    let r = bob
        .download(json!({"path": format!("rev:{}", o.secret_rev)}), None)
        .await;
    assert_eq!(summary(&r), "path/not_found/");
    let r = bob
        .rpc(
            "files/restore",
            json!({"path": "/r.txt", "rev": o.secret_rev}),
        )
        .await;
    assert_eq!(summary(&r), "invalid_revision/");
    let r = bob
        .rpc(
            "files/copy_v2",
            json!({"from_path": o.secret_id, "to_path": "/c.txt"}),
        )
        .await;
    assert_eq!(summary(&r), "from_lookup/not_found/");
    let r = bob
        .rpc("files/list_folder/continue", json!({"cursor": cursor}))
        .await;
    assert_eq!(summary(&r), "reset/");
    let r = bob
        .rpc("files/list_folder", json!({"path": format!("ns:{ns}")}))
        .await;
    assert_eq!(summary(&r), "path/not_found/");
    let v = bob
        .rpc("files/search_v2", json!({"query": "secret"}))
        .await
        .ok();
    assert_eq!(v["matches"], json!([]));
    // Path roots naming alice's namespace are refused.
    let r = bob
        .raw(
            bob.http
                .post(format!("{}/2/files/list_folder", bob.url()))
                .bearer_auth(&bob.token)
                .header("content-type", "application/json")
                .header(
                    "dropbox-api-path-root",
                    json!({".tag": "namespace_id", "namespace_id": ns}).to_string(),
                )
                .body(json!({"path": ""}).to_string()),
        )
        .await;
    assert_eq!(r.status.as_u16(), 422);
    assert_eq!(r.json()["error"][".tag"], "no_permission");
}

/// The 401 error tag of a call with this `Authorization` header value.
async fn auth_tag(c: &Client, authorization: &str) -> (StatusCode, String) {
    let r = c
        .raw(
            c.http
                .post(format!("{}/2/users/get_current_account", c.url()))
                .header("authorization", authorization)
                .header("content-type", "application/json")
                .body("null"),
        )
        .await;
    let tag = if r.status == StatusCode::UNAUTHORIZED {
        r.json()["error"][".tag"].as_str().unwrap().to_owned()
    } else {
        String::new()
    };
    (r.status, tag)
}

#[tokio::test]
async fn expired_revoked_malformed_and_foreign_tokens() {
    let srv = TestServer::start().await;
    let alice = srv.user("alice").await;
    let (app, _) = srv.app("Tool", AccessType::Full, &[], false).await;

    // Expired.
    let issued = srv
        .store
        .mint("alice", Some(&app.key), &[], TokenAccess::Offline)
        .await
        .unwrap();
    assert_eq!(issued.expires_in, Some(14_400));
    let bearer = format!("Bearer {}", issued.access_token);
    // (Not used before its row is edited: a server would answer from its token cache, which
    // only changes made through a store move on.)
    let hash = cubby_core::hash::hex(&{
        use sha2::Digest;
        sha2::Sha256::digest(issued.access_token.as_bytes())
    });
    let blob = if std::env::var("CUBBY_TEST_PG_URL").is_ok_and(|v| !v.is_empty()) {
        format!("'\\x{hash}'::bytea")
    } else {
        format!("X'{hash}'")
    };
    srv.sql(&format!(
        "UPDATE tokens SET expires = 1 WHERE token_hash = {blob}"
    ))
    .await;
    assert_eq!(
        auth_tag(&alice, &bearer).await,
        (StatusCode::UNAUTHORIZED, "expired_access_token".into())
    );

    // Revoked: the calling token, its refresh token and its siblings; not other families.
    let family = srv
        .store
        .mint("alice", Some(&app.key), &[], TokenAccess::Offline)
        .await
        .unwrap();
    let sibling = srv
        .store
        .refresh(family.refresh_token.as_deref().unwrap(), &app, true, None)
        .await
        .unwrap();
    let unrelated = srv
        .store
        .mint("alice", Some(&app.key), &[], TokenAccess::Legacy)
        .await
        .unwrap();
    let fc = srv.client_with_token(&family.access_token);
    assert_eq!(
        fc.rpc("auth/token/revoke", Value::Null).await.ok(),
        Value::Null
    );
    for t in [&family.access_token, &sibling.access_token] {
        assert_eq!(
            auth_tag(&alice, &format!("Bearer {t}")).await,
            (StatusCode::UNAUTHORIZED, "invalid_access_token".into())
        );
    }
    assert!(matches!(
        srv.store
            .refresh(family.refresh_token.as_deref().unwrap(), &app, true, None)
            .await,
        Err(cubby_store::GrantError::InvalidGrant(_))
    ));
    assert_eq!(
        auth_tag(&alice, &format!("Bearer {}", unrelated.access_token))
            .await
            .0,
        StatusCode::OK
    );

    // Malformed.
    for bad in ["Bearer", "Bearer ", "Token abc", "Basic YTpi"] {
        assert_eq!(
            auth_tag(&alice, bad).await.0,
            StatusCode::BAD_REQUEST,
            "{bad:?}"
        );
    }
    for bad in [
        "Bearer nonsense".to_owned(),
        format!("Bearer {}x", alice.token),
        format!("Bearer {}", &alice.token[..alice.token.len() - 1]),
        format!("Bearer {}", alice.token.to_uppercase()),
    ] {
        assert_eq!(
            auth_tag(&alice, &bad).await,
            (StatusCode::UNAUTHORIZED, "invalid_access_token".into()),
            "{bad:?}"
        );
    }

    // Foreign: a refresh token or code is no access token; a disabled user's tokens die.
    assert_eq!(
        auth_tag(&alice, &format!("Bearer {}", family.refresh_token.unwrap()))
            .await
            .1,
        "invalid_access_token"
    );
    let bob = srv.user("bob").await;
    srv.store.set_disabled("bob", true).await.unwrap();
    assert_eq!(
        auth_tag(&bob, &format!("Bearer {}", bob.token)).await,
        (StatusCode::UNAUTHORIZED, "invalid_access_token".into())
    );
    srv.store.set_disabled("bob", false).await.unwrap();
    assert_eq!(
        auth_tag(&bob, &format!("Bearer {}", bob.token)).await.0,
        StatusCode::OK
    );
}

/// What a revoked bearer gets: at once from the server that revoked it (embedded: the only
/// one); another server (scale-out) drops its cached lookup when the revocation's
/// notification arrives, so its answer is awaited for up to two seconds.
async fn refused_within(srv: &TestServer, c: &Client, bearer: &str) -> (StatusCode, String) {
    let within = if srv.urls.len() == 1 {
        Duration::ZERO
    } else {
        Duration::from_secs(2)
    };
    let deadline = std::time::Instant::now() + within;
    loop {
        let got = auth_tag(c, bearer).await;
        if got == (StatusCode::UNAUTHORIZED, "invalid_access_token".to_owned())
            || std::time::Instant::now() >= deadline
        {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Tokens a server has just looked up (and keeps in its cache for a few seconds) stop
/// working as soon as they are revoked or their user is disabled: at once on the server
/// that made the change, and on the other one (scale-out) when the notification arrives.
#[tokio::test]
async fn cached_tokens_stop_working_when_revoked_or_disabled() {
    let srv = TestServer::start().await;
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let (app, _) = srv.app("Tool", AccessType::Full, &[], false).await;
    let refused = (StatusCode::UNAUTHORIZED, "invalid_access_token".to_owned());
    // Revoked through the route, after every server has looked the token up.
    let family = srv
        .store
        .mint("alice", Some(&app.key), &[], TokenAccess::Offline)
        .await
        .unwrap();
    let bearer = format!("Bearer {}", family.access_token);
    for _ in 0..4 {
        assert_eq!(auth_tag(&alice, &bearer).await.0, StatusCode::OK);
    }
    let fc = srv.client_with_token(&family.access_token);
    assert_eq!(
        fc.rpc("auth/token/revoke", Value::Null).await.ok(),
        Value::Null
    );
    assert_eq!(refused_within(&srv, &alice, &bearer).await, refused);
    assert_eq!(auth_tag(&alice, &bearer).await, refused);

    // A disabled user, then enabled again.
    let bearer = format!("Bearer {}", bob.token);
    for _ in 0..4 {
        assert_eq!(auth_tag(&bob, &bearer).await.0, StatusCode::OK);
    }
    srv.store.set_disabled("bob", true).await.unwrap();
    assert_eq!(refused_within(&srv, &bob, &bearer).await, refused);
    assert_eq!(auth_tag(&bob, &bearer).await, refused);
    srv.store.set_disabled("bob", false).await.unwrap();
    assert_eq!(auth_tag(&bob, &bearer).await.0, StatusCode::OK);
}

/// Posts to `/oauth2/token` and returns (status, JSON body).
async fn token_request(
    c: &Client,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, Value) {
    let body: String = form
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut req = c
        .http
        .post(format!("{}/oauth2/token", c.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some((k, s)) = basic {
        req = req.basic_auth(k, Some(s));
    }
    let r = c.raw(req).await;
    (r.status, r.json())
}

pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn codes_work_once_and_only_with_their_verifier_and_redirect_uri() {
    let srv = TestServer::start().await;
    let alice = srv.user("alice").await;
    let account = srv.store.user("alice").await.unwrap().id;
    let cb = "http://localhost:7777/cb";
    let (app, secret) = srv
        .app("Confidential", AccessType::Full, &[cb], false)
        .await;
    let secret = secret.unwrap();
    let (public, _) = srv.app("Public", AccessType::AppFolder, &[cb], true).await;
    let (other, other_secret) = srv.app("Another", AccessType::Full, &[cb], false).await;
    let verifier = "a".repeat(50);
    let code_for = |app_id: i64, redirect: Option<&str>, pkce: bool| {
        let store = srv.store.clone();
        let redirect = redirect.map(str::to_owned);
        let challenge = pkce.then(|| (cubby_core::hash::pkce_s256(&verifier), "S256".to_owned()));
        async move {
            store
                .create_code(&CodeRequest {
                    app: app_id,
                    account,
                    scopes: vec!["files.metadata.read".into(), "account_info.read".into()],
                    redirect_uri: redirect,
                    challenge,
                    access: TokenAccess::Offline,
                })
                .await
                .unwrap()
        }
    };
    let err = |v: &Value| v["error"].as_str().unwrap_or("").to_owned();

    // A code works once; a replay fails and revokes what the first exchange issued.
    let code = code_for(app.id, Some(cb), false).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", cb),
    ];
    let (s, v) = token_request(&alice, &form, Some((&app.key, &secret))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["token_type"], "bearer");
    assert_eq!(v["expires_in"], 14_400);
    assert_eq!(v["scope"], "files.metadata.read account_info.read");
    assert_eq!(v["uid"], account.to_string());
    let first = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        auth_tag(&alice, &format!("Bearer {first}")).await.0,
        StatusCode::OK
    );
    let (s, v) = token_request(&alice, &form, Some((&app.key, &secret))).await;
    assert_eq!(
        (s, err(&v)),
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    assert_eq!(
        refused_within(&srv, &alice, &format!("Bearer {first}"))
            .await
            .1,
        "invalid_access_token",
        "a replayed code revokes the first exchange's tokens"
    );

    // The redirect URI must match the authorization's exactly (and be absent if it was).
    let code = code_for(app.id, Some(cb), false).await;
    let (s, v) = token_request(
        &alice,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://localhost:7777/cb2"),
        ],
        Some((&app.key, &secret)),
    )
    .await;
    assert_eq!(
        (s, err(&v)),
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    let code = code_for(app.id, None, false).await;
    let (_, v) = token_request(
        &alice,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", cb),
        ],
        Some((&app.key, &secret)),
    )
    .await;
    assert_eq!(err(&v), "invalid_grant");

    // PKCE: the verifier must match; without a secret, there must be a challenge.
    let code = code_for(public.id, None, true).await;
    let wrong = "b".repeat(50);
    let (_, v) = token_request(
        &alice,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &public.key),
            ("code_verifier", &wrong),
        ],
        None,
    )
    .await;
    assert_eq!(err(&v), "invalid_grant");
    let code = code_for(public.id, None, true).await;
    let (_, v) = token_request(
        &alice,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &public.key),
        ],
        None,
    )
    .await;
    assert_eq!(err(&v), "invalid_grant", "a PKCE code needs its verifier");
    let code = code_for(public.id, None, true).await;
    let (s, v) = token_request(
        &alice,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &public.key),
            ("code_verifier", &verifier),
        ],
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let refresh = v["refresh_token"].as_str().unwrap().to_owned();
    // A PKCE refresh token refreshes without a secret, and may narrow its scopes only.
    let (s, v) = token_request(
        &alice,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &public.key),
            ("scope", "files.metadata.read"),
        ],
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["expires_in"], 14_400);
    let narrowed = srv.client_with_token(v["access_token"].as_str().unwrap());
    let r = narrowed.rpc("users/get_current_account", Value::Null).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json()["error"],
        json!({".tag": "missing_scope", "required_scope": "account_info.read"})
    );
    let (_, v) = token_request(
        &alice,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &public.key),
            ("scope", "files.content.write"),
        ],
        None,
    )
    .await;
    assert_eq!(err(&v), "invalid_scope");
    // A confidential app's code without its secret is refused.
    let code = code_for(app.id, None, false).await;
    let (_, v) = token_request(
        &alice,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &app.key),
        ],
        None,
    )
    .await;
    assert_eq!(err(&v), "invalid_client");

    // Codes and refresh tokens belong to their app.
    let code = code_for(app.id, None, false).await;
    let other_secret = other_secret.unwrap();
    let (_, v) = token_request(
        &alice,
        &[("grant_type", "authorization_code"), ("code", &code)],
        Some((&other.key, &other_secret)),
    )
    .await;
    assert_eq!(err(&v), "invalid_grant");
    let (_, v) = token_request(
        &alice,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        Some((&other.key, &other_secret)),
    )
    .await;
    assert_eq!(err(&v), "invalid_grant");

    // Client authentication: wrong secret, unknown key, and credentials given twice.
    let code = code_for(app.id, None, false).await;
    let (s, v) = token_request(
        &alice,
        &[("grant_type", "authorization_code"), ("code", &code)],
        Some((&app.key, "wrong-secret")),
    )
    .await;
    assert_eq!(
        (s, err(&v)),
        (StatusCode::BAD_REQUEST, "invalid_client".into())
    );
    let (_, v) = token_request(
        &alice,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &app.key),
            ("client_secret", "wrong-secret"),
        ],
        None,
    )
    .await;
    assert_eq!(err(&v), "invalid_client");
    let (_, v) = token_request(
        &alice,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "nope"),
            ("client_secret", &secret),
        ],
        None,
    )
    .await;
    assert_eq!(err(&v), "invalid_client");
    let (_, v) = token_request(
        &alice,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &other.key),
        ],
        Some((&app.key, &secret)),
    )
    .await;
    assert_eq!(err(&v), "invalid_request");
    let (_, v) = token_request(
        &alice,
        &[("grant_type", "password"), ("username", "alice")],
        Some((&app.key, &secret)),
    )
    .await;
    assert_eq!(err(&v), "unsupported_grant_type");
    let (_, v) = token_request(
        &alice,
        &[
            ("grant_type", "authorization_code"),
            ("code", "cbc1.forged"),
        ],
        Some((&app.key, &secret)),
    )
    .await;
    assert_eq!(err(&v), "invalid_grant");
    // The code was never burnt by the failed attempts above: the right request still works.
    let (s, v) = token_request(
        &alice,
        &[("grant_type", "authorization_code"), ("code", &code)],
        Some((&app.key, &secret)),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // check/app authenticates the app itself.
    let check = |key: &str, secret: &str| {
        alice
            .http
            .post(format!("{}/2/check/app", alice.url()))
            .basic_auth(key, Some(secret))
            .header("content-type", "application/json")
            .body(json!({"query": "ping"}).to_string())
    };
    assert_eq!(
        alice.raw(check(&app.key, &secret)).await.ok(),
        json!({"result": "ping"})
    );
    let r = alice.raw(check(&app.key, "wrong-secret")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

/// A browser: keeps cookies by hand and reads hidden form fields.
pub(crate) struct Browser {
    pub c: Client,
    pub cookies: std::collections::BTreeMap<String, String>,
}

impl Browser {
    pub fn new(c: &Client) -> Self {
        Self {
            c: c.clone(),
            cookies: Default::default(),
        }
    }

    fn keep_cookies(&mut self, r: &Reply) {
        for v in r.headers.get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (kv, _) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = kv.split_once('=').unwrap();
            self.cookies.insert(k.to_owned(), val.to_owned());
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        let req = self
            .c
            .http
            .get(format!("{}{path}", self.c.url()))
            .header("cookie", self.cookie_header());
        let r = self.c.raw(req).await;
        self.keep_cookies(&r);
        r
    }

    pub async fn post(&mut self, path: &str, form: &[(String, String)]) -> Reply {
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let req = self
            .c
            .http
            .post(format!("{}{path}", self.c.url()))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        let r = self.c.raw(req).await;
        self.keep_cookies(&r);
        r
    }
}

/// The hidden fields of a page, unescaped.
pub(crate) fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let unescape = |s: &str| {
        s.replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    html.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|rest| {
            let (name, rest) = rest.split_once("\" value=\"").unwrap();
            let (value, _) = rest.split_once('"').unwrap();
            (unescape(name), unescape(value))
        })
        .collect()
}

pub(crate) fn with(
    mut fields: Vec<(String, String)>,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    fields.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    fields
}

#[tokio::test]
async fn consent_needs_sign_in_csrf_and_a_registered_redirect() {
    let srv = TestServer::start().await;
    let alice = srv.user("alice").await;
    let cb = "https://client.example/cb";
    let (app, _) = srv
        .app("Consent", AccessType::AppFolder, &[cb], false)
        .await;
    let (public, _) = srv.app("NoPkce", AccessType::AppFolder, &[cb], true).await;
    let mut b = Browser::new(&alice);
    let authorize = format!(
        "/oauth2/authorize?client_id={}&response_type=code&redirect_uri={}&state=s1",
        app.key,
        urlencode(cb)
    );

    // Unknown clients and unregistered redirect URIs are shown, never redirected.
    for bad in [
        "/oauth2/authorize?client_id=nope&response_type=code".to_owned(),
        format!(
            "/oauth2/authorize?client_id={}&response_type=code&redirect_uri={}",
            app.key,
            urlencode("https://evil.example/cb")
        ),
        format!(
            "/oauth2/authorize?client_id={}&response_type=code&redirect_uri={}",
            app.key,
            urlencode("https://client.example/cb/../x")
        ),
    ] {
        let r = b.get(&bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.headers.get("location").is_none());
    }
    // Other errors go back to the client with the state.
    let r = b.get(&format!("{authorize}&scope=no.such.scope")).await;
    assert_eq!(r.status, StatusCode::FOUND);
    let loc = r.headers["location"].to_str().unwrap();
    assert!(
        loc.starts_with("https://client.example/cb?error=invalid_scope&"),
        "{loc}"
    );
    assert!(loc.ends_with("&state=s1"), "{loc}");
    let r = b
        .get(&format!(
            "/oauth2/authorize?client_id={}&response_type=code&redirect_uri={}",
            public.key,
            urlencode(cb)
        ))
        .await;
    assert!(
        r.headers["location"]
            .to_str()
            .unwrap()
            .starts_with("https://client.example/cb?error=invalid_request"),
        "a public client must use PKCE"
    );

    // Signed out: the sign-in page; the wrong password is refused.
    let r = b.get(&authorize).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("action=\"/login\""));
    let login = hidden_fields(&r.text());
    let r = b
        .post(
            "/login",
            &with(
                login.clone(),
                &[("login", "alice"), ("password", "wrong-password")],
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A sign-in form without its cookie (a cross-site post) is refused even with the password.
    let mut stranger = Browser::new(&alice);
    let r = stranger
        .post(
            "/login",
            &with(login, &[("login", "alice"), ("password", "pw-for-tests")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        !stranger.cookies.contains_key("cubby_session")
            || stranger.cookies["cubby_session"].is_empty()
    );
    let r = b.get(&authorize).await;
    let login = hidden_fields(&r.text());
    let r = b
        .post(
            "/login",
            &with(login, &[("login", "alice"), ("password", "pw-for-tests")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.headers["location"].to_str().unwrap(), authorize);

    // The consent page; a decision without the session's CSRF token is refused.
    let r = b.get(&authorize).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("Apps/Consent"));
    let fields = hidden_fields(&r.text());
    let no_csrf: Vec<_> = fields
        .iter()
        .filter(|(k, _)| k != "csrf")
        .cloned()
        .collect();
    let r = b
        .post(
            "/oauth2/authorize",
            &with(no_csrf, &[("decision", "allow")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let forged: Vec<_> = fields
        .iter()
        .map(|(k, v)| {
            if k == "csrf" {
                (k.clone(), "forged".to_owned())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    let r = b
        .post("/oauth2/authorize", &with(forged, &[("decision", "allow")]))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Tampering with the redirect URI in the form is caught like in the query.
    let tampered: Vec<_> = fields
        .iter()
        .map(|(k, v)| {
            if k == "redirect_uri" {
                (k.clone(), "https://evil.example/cb".to_owned())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    let r = b
        .post(
            "/oauth2/authorize",
            &with(tampered, &[("decision", "allow")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.headers.get("location").is_none());
    let r = b
        .post(
            "/oauth2/authorize",
            &with(fields.clone(), &[("decision", "deny")]),
        )
        .await;
    assert_eq!(
        r.headers["location"].to_str().unwrap(),
        "https://client.example/cb?error=access_denied&error_description=The%20user%20chose%20not%20to%20give%20your%20app%20access.&state=s1"
    );
    let r = b
        .post("/oauth2/authorize", &with(fields, &[("decision", "allow")]))
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    let loc = r.headers["location"].to_str().unwrap();
    assert!(
        loc.starts_with("https://client.example/cb?code=cbc1."),
        "{loc}"
    );
    assert!(loc.ends_with("&state=s1"));
    // Approving created the app folder.
    assert_eq!(alice.meta("/Apps/Consent").await.ok()[".tag"], "folder");
}

#[tokio::test]
async fn failed_sign_ins_are_rate_limited_per_account() {
    let srv = TestServer::start().await;
    let alice = srv.user("alice").await;
    let mut b = Browser::new(&alice);
    let attempt = |password: &'static str| {
        let mut b2 = Browser::new(&alice);
        async move {
            let r = b2.get("/login").await;
            let f = hidden_fields(&r.text());
            b2.post(
                "/login",
                &with(f, &[("login", "Alice"), ("password", password)]),
            )
            .await
            .status
        }
    };
    for _ in 0..cubby_server::SIGNIN_FAILURES {
        assert_eq!(attempt("wrong-password").await, StatusCode::UNAUTHORIZED);
    }
    // Even the right password is refused now, with Retry-After.
    let r = b.get("/login").await;
    let f = hidden_fields(&r.text());
    let r = b
        .post(
            "/login",
            &with(f, &[("login", "alice"), ("password", "pw-for-tests")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    // Another account is not affected.
    srv.store
        .add_user("bob", "bob@example.com", "bob-password")
        .await
        .unwrap();
    let r = b.get("/login").await;
    let f = hidden_fields(&r.text());
    let r = b
        .post(
            "/login",
            &with(
                f,
                &[("login", "bob@example.com"), ("password", "bob-password")],
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert!(b.cookies["cubby_session"].len() > 20);
    let home = b.get("/").await;
    assert!(home.text().contains("\"name\":\"bob\""), "{}", home.text());
}

#[tokio::test]
async fn an_upload_refused_before_its_body_is_read_closes_the_connection() {
    let srv = TestServer::start().await;
    let alice = srv.user("alice").await;
    let narrowed = srv
        .store
        .mint_token("alice", None, &["files.metadata.read".to_owned()])
        .await
        .unwrap()
        .0;
    let c = srv.client_with_token(&narrowed);
    let r = c
        .upload_with(json!({"path": "/a.txt"}), vec![7u8; 1 << 20])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"]["required_scope"], "files.content.write");
    assert_eq!(
        r.headers["connection"], "close",
        "the unread body spoils the connection"
    );
    // The client's next request, on a new connection, works; a good upload keeps its connection.
    assert_eq!(c.meta("/a.txt").await.conflict(), "path/not_found/");
    let r = alice
        .upload_with(json!({"path": "/a.txt"}), vec![7u8; 1 << 20])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.get("connection").is_none());
}

/// The JavaScript SDK sends the code exchange and the refresh with every parameter in the
/// query string and an empty body, as Dropbox accepts; a parameter given twice with
/// different values (query and body) is refused.
#[tokio::test]
async fn the_token_endpoint_takes_its_parameters_from_the_query_too() {
    let srv = TestServer::start().await;
    let alice = srv.user("alice").await;
    let account = srv.store.user("alice").await.unwrap().id;
    let (public, _) = srv.app("Query", AccessType::Full, &[], true).await;
    let verifier = "q".repeat(64);
    let code = srv
        .store
        .create_code(&CodeRequest {
            app: public.id,
            account,
            scopes: vec!["account_info.read".into()],
            redirect_uri: None,
            challenge: Some((cubby_core::hash::pkce_s256(&verifier), "S256".to_owned())),
            access: TokenAccess::Offline,
        })
        .await
        .unwrap();
    let in_query = |params: &[(&str, &str)]| {
        let q: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect();
        alice
            .http
            .post(format!("{}/oauth2/token?{}", alice.url(), q.join("&")))
    };
    let r = alice
        .raw(in_query(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &public.key),
            ("code_verifier", &verifier),
        ]))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    let refresh = v["refresh_token"].as_str().unwrap().to_owned();
    let token = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        auth_tag(&alice, &format!("Bearer {token}")).await.0,
        StatusCode::OK
    );

    // A refresh in the query (the SDK's automatic refresh), and one split between the two.
    let r = alice
        .raw(in_query(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &public.key),
        ]))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let split = in_query(&[("grant_type", "refresh_token"), ("client_id", &public.key)])
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("refresh_token={}", urlencode(&refresh)));
    let r = alice.raw(split).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        auth_tag(&alice, &format!("Bearer {token}")).await.0,
        StatusCode::OK
    );

    // The same parameter twice: the same value is harmless, different values are refused.
    let twice = |body_grant: &str| {
        in_query(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &public.key),
        ])
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type={body_grant}"))
    };
    assert_eq!(
        alice.raw(twice("refresh_token")).await.status,
        StatusCode::OK
    );
    let r = alice.raw(twice("authorization_code")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"], "invalid_request", "{}", r.text());
}

/// `cubby admin token USER --app KEY --offline` for a public app: its refresh token refreshes
/// without a secret, as a PKCE refresh token does (a public client has none to give).
#[tokio::test]
async fn a_minted_refresh_token_of_a_public_app_refreshes_without_a_secret() {
    let srv = TestServer::start().await;
    let alice = srv.user("alice").await;
    let (public, _) = srv.app("Public CLI", AccessType::Full, &[], true).await;
    let issued = srv
        .store
        .mint("alice", Some(&public.key), &[], TokenAccess::Offline)
        .await
        .unwrap();
    let refresh = issued.refresh_token.expect("offline gives a refresh token");
    let (s, v) = token_request(
        &alice,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &public.key),
        ],
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let token = v["access_token"].as_str().unwrap();
    assert_eq!(
        auth_tag(&alice, &format!("Bearer {token}")).await.0,
        StatusCode::OK
    );

    // A confidential app's minted refresh token still needs its secret.
    let (conf, secret) = srv
        .app("Confidential CLI", AccessType::Full, &[], false)
        .await;
    let issued = srv
        .store
        .mint("alice", Some(&conf.key), &[], TokenAccess::Offline)
        .await
        .unwrap();
    let refresh = issued.refresh_token.unwrap();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", conf.key.as_str()),
    ];
    let (s, v) = token_request(&alice, &form, None).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_client"))
    );
    let (s, v) = token_request(&alice, &form[..2], Some((&conf.key, &secret.unwrap()))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// A shared folder is out of reach of anyone who is not a member, by every path form, id,
/// rev and sharing route, and of a member's (or the owner's) app-folder app unless mounted
/// inside its folder; nothing any attempt makes changes anything.
#[tokio::test]
async fn no_path_form_or_route_reaches_a_shared_folder_from_outside() {
    let srv = TestServer::start().await;
    let owner = srv.user("olivia").await;
    let member = srv.user("mel").await;
    let bob = srv.user("bob").await;
    let secret = owner.put("/Vault/secret.txt", b"the secret").await;
    owner.put("/Vault/sub/deep.txt", b"deep").await;
    let sub = owner.meta("/Vault/sub").await.ok();
    let fid = owner
        .rpc("sharing/share_folder", json!({"path": "/Vault"}))
        .await
        .ok()["shared_folder_id"]
        .as_str()
        .unwrap()
        .to_owned();
    owner
        .rpc(
            "sharing/add_folder_member",
            json!({"shared_folder_id": fid, "members": [
                {"member": {".tag": "email", "email": "mel"}, "access_level": "editor"}]}),
        )
        .await
        .ok();
    member
        .rpc("sharing/mount_folder", json!({"shared_folder_id": fid}))
        .await
        .ok();
    let (app, _) = srv.app("Pics", AccessType::AppFolder, &[], false).await;
    let outsiders = [
        ("bob", bob.clone()),
        ("mel's app folder", srv.app_client("mel", &app).await),
        ("olivia's app folder", srv.app_client("olivia", &app).await),
    ];
    let before = owner
        .list_all(json!({"path": "", "recursive": true}))
        .await
        .0;
    let (id, rev, sub_id) = (
        secret["id"].as_str().unwrap(),
        secret["rev"].as_str().unwrap(),
        sub["id"].as_str().unwrap(),
    );
    let reads = [
        format!("ns:{fid}"),
        format!("ns:{fid}/secret.txt"),
        format!("ns:{fid}/sub/deep.txt"),
        id.to_owned(),
        format!("{sub_id}/deep.txt"),
        "/Vault/secret.txt".to_owned(),
    ];
    for (who, c) in &outsiders {
        for path in &reads {
            let r = c.meta(path).await;
            assert!(!r.status.is_success(), "{who} read {path}: {}", r.text());
            let r = c.download(json!({"path": path}), None).await;
            assert!(!r.status.is_success(), "{who} downloaded {path}");
            let r = c.rpc("files/list_folder", json!({"path": path})).await;
            assert!(!r.status.is_success(), "{who} listed {path}");
            for (route, arg) in [
                ("files/get_temporary_link", json!({"path": path})),
                ("files/copy_reference/get", json!({"path": path})),
                ("files/list_revisions", json!({"path": path})),
                (
                    "sharing/create_shared_link_with_settings",
                    json!({"path": path}),
                ),
                (
                    "files/copy_v2",
                    json!({"from_path": path, "to_path": "/stolen"}),
                ),
                (
                    "files/move_v2",
                    json!({"from_path": path, "to_path": "/stolen"}),
                ),
                ("files/delete_v2", json!({"path": path})),
                (
                    "files/search_v2",
                    json!({"query": "secret", "options": {"path": path}}),
                ),
            ] {
                let r = c.rpc(route, arg).await;
                assert!(
                    !r.status.is_success(),
                    "{who}: {route} of {path}: {}",
                    r.text()
                );
            }
            // A plain path is the caller's own (writing there is no escape).
            if path.starts_with('/') {
                continue;
            }
            let r = c
                .rpc(
                    "files/create_folder_v2",
                    json!({"path": format!("{path}/planted")}),
                )
                .await;
            assert!(!r.status.is_success(), "{who} made a folder in {path}");
            let r = c
                .upload_with(
                    json!({"path": format!("{path}/planted.txt")}),
                    b"x".to_vec(),
                )
                .await;
            assert!(!r.status.is_success(), "{who} uploaded into {path}");
        }
        let r = c
            .download(json!({"path": format!("rev:{rev}")}), None)
            .await;
        assert!(!r.status.is_success(), "{who} downloaded rev:{rev}");
        let r = c
            .rpc("files/restore", json!({"path": "/r.txt", "rev": rev}))
            .await;
        assert!(!r.status.is_success(), "{who} restored the secret");
        let found = c
            .rpc("files/search_v2", json!({"query": "secret"}))
            .await
            .ok();
        assert_eq!(found["matches"], json!([]), "{who} found it by search");
        for (route, arg) in [
            (
                "sharing/get_folder_metadata",
                json!({"shared_folder_id": fid}),
            ),
            (
                "sharing/list_folder_members",
                json!({"shared_folder_id": fid}),
            ),
            ("sharing/mount_folder", json!({"shared_folder_id": fid})),
            ("sharing/unmount_folder", json!({"shared_folder_id": fid})),
            (
                "sharing/unshare_folder",
                json!({"shared_folder_id": fid, "leave_a_copy": false}),
            ),
            (
                "sharing/relinquish_folder_membership",
                json!({"shared_folder_id": fid}),
            ),
            (
                "sharing/add_folder_member",
                json!({"shared_folder_id": fid, "members": [
                    {"member": {".tag": "email", "email": "bob"}, "access_level": "editor"}]}),
            ),
            (
                "sharing/update_folder_policy",
                json!({"shared_folder_id": fid, "acl_update_policy": "editors"}),
            ),
        ] {
            let r = c.rpc(route, arg).await;
            assert_eq!(
                r.status,
                StatusCode::CONFLICT,
                "{who}: {route}: {}",
                r.text()
            );
            assert!(
                r.conflict().contains("access_error")
                    || r.conflict().starts_with("invalid_id")
                    || r.conflict().starts_with("not_a_member"),
                "{who}: {route}: {}",
                r.text()
            );
        }
        let listed = c.rpc("sharing/list_folders", json!({})).await.ok();
        assert_eq!(listed["entries"], json!([]), "{who} sees the folder listed");
    }
    // Nothing changed: the owner's tree, and the members.
    let after = owner
        .list_all(json!({"path": "", "recursive": true}))
        .await
        .0;
    assert_eq!(before, after);
    let members = owner
        .rpc(
            "sharing/list_folder_members",
            json!({"shared_folder_id": fid}),
        )
        .await
        .ok();
    assert_eq!(members["users"].as_array().unwrap().len(), 2);
    assert!(
        bob.list_all(json!({"path": "", "recursive": true}))
            .await
            .0
            .is_empty()
    );
}
