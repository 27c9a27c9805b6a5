//! The operator commands, run as a user would: `cubby admin user …`, `app …`, `token …`.

use std::process::Output;

use serde_json::{Value, json};

mod support;

struct Admin {
    dir: tempfile::TempDir,
}

impl Admin {
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        support::admin(self.dir.path(), args, stdin)
    }

    /// Runs a command that must succeed; returns its JSON lines.
    fn ok(&self, args: &[&str], stdin: &str) -> Vec<Value> {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        support::json_lines(out.stdout)
    }

    /// Runs a command that must fail; returns its standard error.
    fn fails(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

#[tokio::test]
async fn users_apps_and_tokens_from_the_command_line() {
    let a = Admin {
        dir: tempfile::tempdir().unwrap(),
    };
    a.ok(
        &[
            "user",
            "add",
            "alice",
            "--password-stdin",
            "--operator",
            "--json",
        ],
        "first-password\n",
    );
    let bob = &a.ok(
        &["user", "add", "bob", "--email", "bob@example.com", "--json"],
        "",
    )[0];
    assert_eq!(
        bob["password"].as_str().unwrap().len(),
        20,
        "a generated password is printed"
    );
    assert!(
        a.fails(
            &["user", "add", "Alice", "--password-stdin"],
            "another-password"
        )
        .contains("already exists")
    );
    assert!(
        a.fails(&["user", "add", "carol", "--password-stdin"], "short")
            .contains("at least 8")
    );

    let users = a.ok(&["user", "list", "--json"], "");
    let names: Vec<&str> = users.iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(users[1]["email"], "bob@example.com");
    // Operators see the web app's admin page.
    assert_eq!(users[0]["operator"], true);
    assert_eq!(users[1]["operator"], false);
    a.ok(&["user", "operator", "bob"], "");
    a.ok(&["user", "operator", "alice", "--off"], "");
    let users = a.ok(&["user", "list", "--json"], "");
    assert_eq!(
        (&users[0]["operator"], &users[1]["operator"]),
        (&json!(false), &json!(true))
    );

    // Password changes and disabling act on the store the server reads.
    a.ok(
        &["user", "passwd", "alice", "--password-stdin"],
        "second-password",
    );
    a.ok(&["user", "disable", "bob"], "");
    let store = cubby_store::Store::open(a.dir.path()).await.unwrap();
    assert!(
        store
            .check_password("alice", "first-password")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .check_password("alice", "second-password")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .check_password("bob", bob["password"].as_str().unwrap())
            .await
            .unwrap()
            .is_none()
    );
    store.close().await;
    assert_eq!(a.ok(&["user", "list", "--json"], "")[1]["disabled"], true);
    a.ok(&["user", "enable", "bob"], "");
    assert_eq!(a.ok(&["user", "list", "--json"], "")[1]["disabled"], false);
    assert!(
        a.fails(&["user", "disable", "nobody"], "")
            .contains("no such user")
    );
    // Quotas, and the stats that show them.
    a.ok(&["user", "quota", "alice", "10G"], "");
    assert!(
        a.fails(&["user", "quota", "alice", "10X"], "")
            .contains("unit")
    );
    let stats = &a.ok(&["stats", "--json"], "")[0];
    assert_eq!(stats["accounts"][0]["quota"], 10u64 << 30);
    assert_eq!(stats["accounts"][1]["quota"], Value::Null);
    assert_eq!(
        (stats["live_bytes"].clone(), stats["physical_bytes"].clone()),
        (0.into(), 0.into())
    );
    a.ok(&["user", "quota", "alice", "none"], "");
    assert_eq!(
        a.ok(&["stats", "--json"], "")[0]["accounts"][0]["quota"],
        Value::Null
    );

    // Apps: an explicit key and secret, a public client, and the refusals.
    let etl = &a.ok(
        &[
            "app",
            "add",
            "ETL",
            "--access",
            "full",
            "--key",
            "etl-key",
            "--secret",
            "etl-secret-1",
            "--redirect-uri",
            "https://etl.example/cb",
            "--json",
        ],
        "",
    )[0];
    assert_eq!(etl["app_key"], "etl-key");
    assert_eq!(etl["app_secret"], "etl-secret-1");
    let public = &a.ok(
        &[
            "app",
            "add",
            "Pi Backup",
            "--access",
            "app_folder",
            "--public",
            "--scope",
            "files.content.write",
            "--json",
        ],
        "",
    )[0];
    assert_eq!(public["app_secret"], Value::Null);
    assert_eq!(public["scopes"], serde_json::json!(["files.content.write"]));
    assert!(
        a.fails(
            &[
                "app", "add", "Other", "--access", "full", "--key", "etl-key"
            ],
            ""
        )
        .contains("already exists")
    );
    assert!(
        a.fails(
            &[
                "app",
                "add",
                "Bad",
                "--access",
                "full",
                "--redirect-uri",
                "http://example.com/cb"
            ],
            ""
        )
        .contains("redirect URI")
    );
    assert!(
        a.fails(&["app", "add", "a/b", "--access", "app_folder"], "")
            .contains("folder name")
    );
    assert!(
        a.fails(
            &[
                "app",
                "add",
                "S",
                "--access",
                "full",
                "--scope",
                "files.everything"
            ],
            ""
        )
        .contains("unknown scope")
    );
    let apps = a.ok(&["app", "list", "--json"], "");
    let keys: Vec<&str> = apps
        .iter()
        .map(|x| x["app_key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "cubby",
            "cubby-cli",
            "etl-key",
            public["app_key"].as_str().unwrap()
        ],
        "the built-in apps (admin tokens, the command line) come first"
    );

    // Tokens: long-lived by default; --offline adds a refresh token and a 4-hour expiry.
    let legacy = &a.ok(&["token", "alice", "--app", "etl-key", "--json"], "")[0];
    assert!(legacy.get("expires_in").is_none() && legacy.get("refresh_token").is_none());
    let offline = &a.ok(
        &[
            "token",
            "alice",
            "--app",
            "etl-key",
            "--scope",
            "files.metadata.read",
            "--offline",
            "--json",
        ],
        "",
    )[0];
    assert_eq!(offline["expires_in"], 14_400);
    assert_eq!(offline["scope"], "files.metadata.read");
    assert!(offline["refresh_token"].as_str().unwrap().len() > 40);
    assert!(
        a.fails(&["token", "alice", "--app", "nope"], "")
            .contains("no such app")
    );
    // The app-folder app's folder exists once a token is issued for it.
    let folder_app = public["app_key"].as_str().unwrap();
    a.ok(&["token", "alice", "--app", folder_app, "--json"], "");
    let store = cubby_store::Store::open(a.dir.path()).await.unwrap();
    let ns = store.user("alice").await.unwrap().ns;
    let folder = store.entry(ns, "/apps/pi backup").await.unwrap().unwrap();
    assert_eq!(folder.path_display, "/Apps/Pi Backup");
    store.close().await;
}

/// Commits `data` at `path` through the store, as an upload would.
async fn put_file(store: &cubby_store::Store, ns: u64, path: &str, data: &'static [u8]) {
    let h = store
        .blocks
        .put(bytes::Bytes::from_static(data))
        .await
        .unwrap();
    store.blocks.sync(&[h]).await.unwrap();
    let commit = cubby_store::meta::Commit {
        path: path.into(),
        mode: cubby_store::meta::WriteMode::Add,
        autorename: false,
        strict_conflict: false,
        client_modified: None,
        size: data.len() as u64,
        blocks: vec![h],
    };
    store.commit_file(ns, commit).await.unwrap();
}

#[tokio::test]
async fn gc_and_fsck_from_the_command_line() {
    use sqlx::Connection;
    let a = Admin {
        dir: tempfile::tempdir().unwrap(),
    };
    let store = cubby_store::Store::open(a.dir.path()).await.unwrap();
    let user = store
        .add_user("carol", "carol@example.com", "password")
        .await
        .unwrap();
    put_file(&store, user.ns, "/keep.txt", b"bytes that stay").await;
    put_file(&store, user.ns, "/gone.txt", b"bytes that go").await;
    store
        .permanently_delete(user.ns, "/gone.txt")
        .await
        .unwrap();
    store
        .blocks
        .put(bytes::Bytes::from_static(b"an upload that never committed"))
        .await
        .unwrap();
    // An upload session left open: its block is referenced until the session expires.
    let in_session = b"bytes of an abandoned session";
    let session_block = store
        .blocks
        .put(bytes::Bytes::from_static(in_session))
        .await
        .unwrap();
    store
        .start_with_data(
            user.id,
            &[session_block],
            Default::default(),
            in_session.len() as u64,
            false,
        )
        .await
        .unwrap();
    store.close().await;

    let clean = &a.ok(&["fsck", "--json"], "")[0];
    assert_eq!(clean["clean"], true, "{clean}");
    assert_eq!(clean["blocks_checked"], 2, "a file and an open session");
    // Unreferenced blocks wait out the grace period...
    let now = &a.ok(&["gc", "--json"], "")[0];
    assert_eq!(
        (now["deleted"].clone(), now["waiting"].clone()),
        (0.into(), 2.into())
    );
    // ...and go once it has passed.
    let later = (cubby_store::now() + cubby_store::gc::BLOCK_GRACE_SECS + 60).to_string();
    let collected = &a.ok(&["gc", "--at", &later, "--json"], "")[0];
    assert_eq!(collected["deleted"], 2, "{collected}");
    assert_eq!(a.ok(&["fsck", "--json"], "")[0]["clean"], true);
    let session_path = a
        .dir
        .path()
        .join("blocks")
        .join(&Sha256Hex::of(in_session)[..2])
        .join(Sha256Hex::of(in_session));
    assert!(
        session_path.exists(),
        "an open session's block was collected"
    );

    // Once the session expires, retention drops it and the GC reclaims its block.
    let db_url = format!("sqlite://{}", a.dir.path().join("meta.sqlite").display());
    let mut db = sqlx::SqliteConnection::connect(&db_url).await.unwrap();
    sqlx::query("UPDATE upload_sessions SET expires = 0")
        .execute(&mut db)
        .await
        .unwrap();
    let store = cubby_store::Store::open(a.dir.path()).await.unwrap();
    assert_eq!(store.prune(None).await.unwrap().sessions, 1);
    store.close().await;
    let collected = &a.ok(&["gc", "--at", &later, "--json"], "")[0];
    assert_eq!(collected["deleted"], 1, "{collected}");
    assert!(!session_path.exists());

    // A wrong count is reported (exit 1), then repaired.
    sqlx::query("UPDATE blocks SET refs = 5 WHERE refs > 0")
        .execute(&mut db)
        .await
        .unwrap();
    let out = a.run(&["fsck", "--json"], "");
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["miscounted"], 1, "{report}");
    let repaired = &a.ok(&["fsck", "--repair", "--json"], "")[0];
    assert_eq!(repaired["repaired"], true);
    let refs: i64 = sqlx::query_scalar("SELECT refs FROM blocks WHERE refs > 0")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(refs, 1);
    assert_eq!(a.ok(&["fsck", "--json"], "")[0]["clean"], true);

    // A live block with other bytes is corrupt; a removed one is missing. Neither is
    // "repaired" away, and the kept file's revision still names its block.
    let hash = Sha256Hex::of(b"bytes that stay");
    let block = a.dir.path().join("blocks").join(&hash[..2]).join(&hash);
    std::fs::write(&block, b"other bytes").unwrap();
    let out = a.run(&["fsck", "--repair", "--json"], "");
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["corrupt"], serde_json::json!([hash]), "{report}");
    let quick = &a.ok(&["fsck", "--quick", "--json"], "")[0];
    assert_eq!(
        quick["clean"], true,
        "--quick does not read blocks: {quick}"
    );
    std::fs::remove_file(&block).unwrap();
    let out = a.run(&["fsck", "--json"], "");
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["missing"], serde_json::json!([hash]), "{report}");
    db.close().await.unwrap();
}

/// The hex SHA-256 of some bytes: a one-block file's block name.
struct Sha256Hex;

impl Sha256Hex {
    fn of(data: &[u8]) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Half a scale-out set-up (`--metadata` without `--blocks`, or the reverse) is refused by
/// `serve` and every `admin` command, with a message saying what to do, before anything is
/// created (no `./cubby-data/blocks` in the working folder); `--mixed-backends` accepts it.
#[test]
fn half_a_scale_out_setup_is_refused_unless_meant() {
    let cwd = tempfile::tempdir().unwrap();
    let cubby = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cubby"))
            .current_dir(cwd.path())
            .env_remove("CUBBY_DATA")
            .env_remove("CUBBY_METADATA")
            .env_remove("CUBBY_BLOCKS")
            .env_remove("CUBBY_MIXED_BACKENDS")
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    for args in [
        &[
            "admin",
            "user",
            "list",
            "--metadata",
            "postgres://127.0.0.1:1/x",
        ][..],
        &[
            "admin",
            "gc",
            "--blocks",
            "s3://bucket?endpoint=http://127.0.0.1:1",
        ],
        &[
            "serve",
            "--metadata",
            "postgres://127.0.0.1:1/x",
            "--http",
            "127.0.0.1:0",
        ],
        &["serve", "--blocks", "s3://bucket", "--http", "127.0.0.1:0"],
    ] {
        let out = cubby(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(
            err.contains("is set but") && err.contains("--mixed-backends"),
            "{args:?}: {err}"
        );
    }
    assert!(
        !cwd.path().join("cubby-data").exists(),
        "a refused command created the data folder"
    );
    // Meant: one server with PostgreSQL metadata and local blocks gets past the check (and
    // then fails to reach the database, which does not exist here).
    let out = cubby(&[
        "admin",
        "user",
        "list",
        "--metadata",
        "postgres://127.0.0.1:1/x",
        "--mixed-backends",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("is set but"), "{err}");
}

/// Client commands do not offer the server's storage options.
#[test]
fn client_help_names_no_server_storage_option() {
    for cmd in ["put", "sync", "backup", "login", "ls"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cubby"))
            .args([cmd, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{cmd} --help: {help}");
        for server_only in ["--data", "--metadata", "--blocks"] {
            assert!(
                !help.contains(server_only),
                "{cmd} --help offers {server_only}:\n{help}"
            );
        }
    }
    let serve = std::process::Command::new(env!("CARGO_BIN_EXE_cubby"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&serve.stdout).contains("--metadata"));
}
