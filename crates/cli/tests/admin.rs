//! The operator commands, run as a user would: `cubby admin user …`, `app …`, `token …`.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

struct Admin {
    dir: tempfile::TempDir,
}

impl Admin {
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cubby"))
            .env("CUBBY_DATA", self.dir.path())
            .env_remove("CUBBY_METADATA")
            .env_remove("CUBBY_BLOCKS")
            .arg("admin")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs a command that must succeed; returns its JSON lines.
    fn ok(&self, args: &[&str], stdin: &str) -> Vec<Value> {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or(Value::String(l.to_owned())))
            .collect()
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
        &["user", "add", "alice", "--password-stdin", "--json"],
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
        keys[1..],
        ["etl-key", public["app_key"].as_str().unwrap()],
        "the built-in app comes first"
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
