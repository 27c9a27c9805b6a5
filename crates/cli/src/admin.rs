//! `cubby admin …`: the operator commands, on the data folder directly (users, apps, tokens,
//! stats, block GC, fsck, migration to scale-out back-ends). They work whether or not the
//! server is running (SQLite's WAL lets both write).

use std::io::Read;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::json;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Copy this embedded installation (--data) to scale-out back-ends (--to postgres://…
    /// --blocks s3://…), verify the copy, and leave the source untouched.
    Migrate(MigrateArgs),
    /// Manage apps (OAuth clients).
    App {
        #[command(subcommand)]
        command: AppCommand,
    },
    /// Logical against physical size: per-user usage, all versions, stored blocks, and the
    /// deduplication ratio.
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete blocks no file, version or upload session has referenced for the grace period
    /// (a day); the server also does this hourly.
    Gc {
        /// Collect as if the clock read this Unix time (for tests; never earlier than now).
        #[arg(long, hide = true)]
        at: Option<i64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check block accounting: every referenced block exists and matches its hash, and every
    /// count equals its references. Exits 1 if a problem remains.
    Fsck {
        /// Correct the reference counts (never deletes anything).
        #[arg(long)]
        repair: bool,
        /// Check that referenced blocks exist without reading them.
        #[arg(long)]
        quick: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A user's app passwords: what WebDAV clients (file managers, rclone, phone apps) sign
    /// in with, one per device, each revocable and optionally limited.
    AppPassword {
        #[command(subcommand)]
        command: AppPasswordCommand,
    },
    /// Mint tokens for a user without a browser: a long-lived access token, or with
    /// --offline a short-lived one plus a refresh token.
    Token {
        /// The user's name.
        name: String,
        /// App key; without it, the built-in full-access app.
        #[arg(long)]
        app: Option<String>,
        /// Narrow the token to these scopes (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Also return a refresh token (the access token then lives 4 hours).
        #[arg(long)]
        offline: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum AppPasswordCommand {
    /// Make an app password; it is printed now and never again.
    Add {
        /// The user's name.
        user: String,
        /// What it is for (a device or a program), to recognise it in the list.
        name: String,
        /// Limit it to this folder of the user's (it becomes the client's root).
        #[arg(long)]
        folder: Option<String>,
        /// Let it read but never change anything.
        #[arg(long)]
        read_only: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List a user's app passwords (never the passwords themselves).
    List {
        /// The user's name.
        user: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an app password by its id (from `list`); clients using it are refused at once.
    Revoke {
        /// The user's name.
        user: String,
        /// The password's id.
        id: i64,
    },
}

#[derive(Subcommand)]
pub enum AppCommand {
    /// Register an app; its key and secret are printed (the secret only now).
    Add {
        /// The app's name (an app-folder app lives in /Apps/NAME).
        name: String,
        /// What the app may reach.
        #[arg(long, value_parser = ["app_folder", "full"])]
        access: String,
        /// Use this app key, e.g. one compiled into an existing client.
        #[arg(long)]
        key: Option<String>,
        /// Use this secret instead of a generated one.
        #[arg(long, conflicts_with = "public")]
        secret: Option<String>,
        /// A registered redirect URI (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A public client: no secret, PKCE only.
        #[arg(long)]
        public: bool,
        /// Allowed scopes (repeatable); all by default.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List apps.
    List {
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
}

/// Arguments of `cubby admin migrate`.
#[derive(Args)]
pub struct MigrateArgs {
    /// Target metadata back-end (postgres://…). The target blocks are given by --blocks.
    #[arg(long)]
    to: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user; a password is generated and printed unless --password-stdin is given.
    Add {
        name: String,
        /// Email address (defaults to NAME@localhost).
        #[arg(long)]
        email: Option<String>,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Make the user an operator: the web app shows them its admin page.
        #[arg(long)]
        operator: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List {
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: sign-in and sessions stop working at once, tokens within 5 seconds
    /// (a running server remembers the tokens it checked for that long).
    Disable { name: String },
    /// Enable a disabled user again.
    Enable { name: String },
    /// Make a user an operator (the web app shows them its admin page: users, storage), or
    /// with --off no longer.
    Operator {
        name: String,
        #[arg(long)]
        off: bool,
    },
    /// Set a user's quota (bytes, or with a K, M, G or T suffix, powers of 1024), or "none".
    Quota { name: String, size: String },
    /// Set a user's password (generated and printed unless --password-stdin is given).
    Passwd {
        name: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// A password from standard input, or a generated one (then `true`).
fn password_input(from_stdin: bool) -> Result<(String, bool)> {
    if !from_stdin {
        return Ok((cubby_core::ids::password(cubby_store::random_bytes()), true));
    }
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading the password")?;
    let s = s.trim_end_matches(['\r', '\n']).to_owned();
    if s.is_empty() {
        bail!("the password read from standard input is empty");
    }
    Ok((s, false))
}

/// `cubby admin migrate`: copies the embedded store in --data to the back-ends --to and
/// --blocks name, then verifies the copy; the source is left untouched.
pub async fn migrate(config: cubby_store::StoreConfig, args: MigrateArgs) -> Result<()> {
    if config.metadata_url.is_some() {
        bail!("migrate reads the embedded store in --data; name the target with --to and --blocks");
    }
    if !config.data_dir.join("meta.sqlite").exists() {
        bail!("no embedded store in {}", config.data_dir.display());
    }
    let source = cubby_store::Store::open(&config.data_dir)
        .await
        .with_context(|| format!("opening {}", config.data_dir.display()))?;
    let target = cubby_store::Store::open_with(&cubby_store::StoreConfig {
        data_dir: config.data_dir.clone(),
        metadata_url: Some(args.to.clone()),
        blocks_url: config.blocks_url.clone(),
    })
    .await
    .context("opening the target back-ends")?;
    let report = source
        .migrate_to(&target, |step| eprintln!("{step}"))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    source.close().await;
    target.close().await;
    if args.json {
        let tables: Vec<_> = report
            .tables
            .iter()
            .map(|(t, s, d)| json!({"table": t, "source": s, "target": d}))
            .collect();
        println!(
            "{}",
            json!({
                "ok": report.ok(),
                "tables": tables,
                "blocks_source": report.blocks_source,
                "blocks_target": report.blocks_target,
                "blocks_copied": report.blocks_copied,
                "blocks_verified": report.blocks_verified,
            })
        );
    } else {
        for (t, s, d) in &report.tables {
            println!("{t:<12} {s:>10} rows -> {d:>10}");
        }
        println!(
            "blocks       {:>10}      -> {:>10} ({} copied, {} verified by hash)",
            report.blocks_source,
            report.blocks_target,
            report.blocks_copied,
            report.blocks_verified
        );
    }
    if !report.ok() {
        bail!("the copy does not match the source; the source is untouched");
    }
    if !args.json {
        println!(
            "verified; start the servers with --metadata and --blocks pointing at the new back-ends"
        );
    }
    Ok(())
}

/// Every `cubby admin` command but `migrate`, on the store `config` names.
pub async fn run(config: cubby_store::StoreConfig, command: AdminCommand) -> Result<()> {
    let store = cubby_store::Store::open_with(&config)
        .await
        .with_context(|| {
            format!(
                "opening the store (data folder {})",
                config.data_dir.display()
            )
        })?;
    let result = match command {
        AdminCommand::User { command } => user_command(&store, command).await,
        AdminCommand::App { command } => app_command(&store, command).await,
        AdminCommand::AppPassword { command } => app_password_command(&store, command).await,
        AdminCommand::Stats { json } => stats(&store, json).await,
        AdminCommand::Gc { at, json } => gc(&store, at, json).await,
        AdminCommand::Fsck {
            repair,
            quick,
            json,
        } => fsck(&store, repair, quick, json).await,
        AdminCommand::Token {
            name,
            app,
            scopes,
            offline,
            json,
        } => {
            let access = if offline {
                cubby_store::TokenAccess::Offline
            } else {
                cubby_store::TokenAccess::Legacy
            };
            let issued = store
                .mint(&name, app.as_deref(), &scopes, access)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if json {
                let mut v = json!({
                    "access_token": issued.access_token,
                    "token_type": "bearer",
                    "account_id": issued.account.account_id,
                    "app_key": app.as_deref().unwrap_or("cubby"),
                    "scope": issued.scopes.join(" "),
                });
                if let Some(e) = issued.expires_in {
                    v["expires_in"] = json!(e);
                }
                if let Some(r) = &issued.refresh_token {
                    v["refresh_token"] = json!(r);
                }
                println!("{v}");
            } else {
                println!("{}", issued.access_token);
                if let Some(r) = &issued.refresh_token {
                    println!("refresh token: {r}");
                }
            }
            Ok(())
        }
        AdminCommand::Migrate(_) => unreachable!("main.rs dispatches migrate to `migrate`"),
    };
    store.close().await;
    result
}

async fn app_password_command(
    store: &cubby_store::Store,
    command: AppPasswordCommand,
) -> Result<()> {
    let user = |name: String| async move {
        store
            .user(&name)
            .await
            .map_err(|e| anyhow::anyhow!("{e}: {name}"))
    };
    match command {
        AppPasswordCommand::Add {
            user: who,
            name,
            folder,
            read_only,
            json,
        } => {
            let account = user(who).await?;
            let folder = match folder {
                None => String::new(),
                Some(f) => store
                    .folder_for_app_password(&account, &f)
                    .await?
                    .with_context(|| format!("{f} is not a folder of {}", account.name))?,
            };
            let (pw, secret) = store
                .create_app_password(account.id, &name, &folder, read_only)
                .await?;
            if json {
                println!(
                    "{}",
                    json!({"id": pw.id, "name": pw.name, "login": account.name,
                           "password": secret, "folder": pw.folder, "read_only": pw.read_only})
                );
            } else {
                println!("{secret}");
                eprintln!(
                    "App password {} for {} ({}{}): sign in as \"{}\" with the password above; \
                     it is not shown again.",
                    pw.id,
                    pw.name,
                    if pw.folder.is_empty() {
                        "all files"
                    } else {
                        &pw.folder
                    },
                    if pw.read_only { ", read-only" } else { "" },
                    account.name
                );
            }
            Ok(())
        }
        AppPasswordCommand::List { user: who, json } => {
            let account = user(who).await?;
            let list = store.app_passwords(account.id).await?;
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|p| {
                        json!({"id": p.id, "name": p.name, "folder": p.folder,
                               "read_only": p.read_only, "created": p.created,
                               "last_used": p.last_used})
                    })
                    .collect();
                println!("{}", serde_json::Value::from(v));
            } else {
                for p in &list {
                    println!(
                        "{:>5}  {}  {}{}",
                        p.id,
                        p.name,
                        if p.folder.is_empty() { "/" } else { &p.folder },
                        if p.read_only { "  read-only" } else { "" }
                    );
                }
            }
            Ok(())
        }
        AppPasswordCommand::Revoke { user: who, id } => {
            let account = user(who).await?;
            if !store.revoke_app_password(account.id, id).await? {
                bail!("{} has no app password {id}", account.name);
            }
            Ok(())
        }
    }
}

async fn user_command(store: &cubby_store::Store, command: UserCommand) -> Result<()> {
    let fail = |e: cubby_store::OpError| anyhow::anyhow!("{e}");
    match command {
        UserCommand::Add {
            name,
            email,
            password_stdin,
            operator,
            json,
        } => {
            let (password, generated) = password_input(password_stdin)?;
            let email = email.unwrap_or_else(|| format!("{name}@localhost"));
            let account = store
                .add_user(&name, &email, &password)
                .await
                .map_err(fail)?;
            if operator {
                store.set_operator(&name, true).await.map_err(fail)?;
            }
            if json {
                let mut v = json!({"name": account.name, "account_id": account.account_id, "email": account.email});
                if generated {
                    v["password"] = json!(password);
                }
                println!("{v}");
            } else {
                println!("created user {} ({})", account.name, account.account_id);
                if generated {
                    println!("password: {password}");
                }
            }
        }
        UserCommand::List { json } => {
            for a in store.users().await? {
                if json {
                    println!(
                        "{}",
                        json!({"name": a.name, "email": a.email, "account_id": a.account_id, "disabled": a.disabled, "operator": a.operator})
                    );
                } else {
                    let state = match (a.disabled, a.operator) {
                        (true, _) => "  (disabled)",
                        (false, true) => "  (operator)",
                        (false, false) => "",
                    };
                    println!("{:<24} {:<32} {}{state}", a.name, a.email, a.account_id);
                }
            }
        }
        UserCommand::Disable { name } => {
            store.set_disabled(&name, true).await.map_err(fail)?;
            println!("disabled {name}");
        }
        UserCommand::Enable { name } => {
            store.set_disabled(&name, false).await.map_err(fail)?;
            println!("enabled {name}");
        }
        UserCommand::Operator { name, off } => {
            store.set_operator(&name, !off).await.map_err(fail)?;
            if off {
                println!("{name} is no longer an operator");
            } else {
                println!("{name} is an operator");
            }
        }
        UserCommand::Quota { name, size } => {
            let quota = parse_size(&size)?;
            store.set_quota(&name, quota).await.map_err(fail)?;
            match quota {
                Some(q) => println!("quota of {name}: {q} bytes"),
                None => println!("{name} has no quota"),
            }
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let (password, generated) = password_input(password_stdin)?;
            store.set_password(&name, &password).await.map_err(fail)?;
            if generated {
                println!("password: {password}");
            } else {
                println!("password of {name} changed");
            }
        }
    }
    Ok(())
}

async fn app_command(store: &cubby_store::Store, command: AppCommand) -> Result<()> {
    match command {
        AppCommand::Add {
            name,
            access,
            key,
            secret,
            redirect_uris,
            public,
            scopes,
            json,
        } => {
            let access = cubby_store::AccessType::parse(&access).expect("clap checked the value");
            let (app, secret) = store
                .add_app(cubby_store::NewApp {
                    name,
                    access,
                    key,
                    secret,
                    redirect_uris,
                    public_client: public,
                    scopes,
                    owner: None,
                })
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if json {
                println!(
                    "{}",
                    json!({"name": app.name, "app_key": app.key, "app_secret": secret, "access": app.access.as_str(), "redirect_uris": app.redirect_uris, "public": app.public_client, "scopes": app.scopes})
                );
            } else {
                println!("created app {} ({})", app.name, app.access.as_str());
                println!("app key:    {}", app.key);
                match secret {
                    Some(s) => println!("app secret: {s}   (shown only now)"),
                    None => println!("public client: no secret, PKCE only"),
                }
            }
        }
        AppCommand::List { json } => {
            for a in store.apps(None).await? {
                if json {
                    println!(
                        "{}",
                        json!({"name": a.name, "app_key": a.key, "access": a.access.as_str(), "redirect_uris": a.redirect_uris, "public": a.public_client, "scopes": a.scopes})
                    );
                } else {
                    println!("{:<24} {:<12} {}", a.key, a.access.as_str(), a.name);
                }
            }
        }
    }
    Ok(())
}

/// `10G`, `500M`, `123` (bytes; suffixes are powers of 1024), or `none`.
fn parse_size(s: &str) -> Result<Option<u64>> {
    cubby_core::naming::parse_size(s).map_err(|e| anyhow::anyhow!(e))
}

async fn gc(store: &cubby_store::Store, at: Option<i64>, json: bool) -> Result<()> {
    let now = cubby_store::now();
    let Some(r) = store.gc(at.unwrap_or(now).max(now)).await? else {
        anyhow::bail!("another block collection is running; try again when it ends");
    };
    if json {
        println!(
            "{}",
            json!({
                "scanned": r.scanned,
                "deleted": r.deleted,
                "deleted_bytes": r.deleted_bytes,
                "waiting": r.waiting,
                "tombstones_purged": r.tombstones_purged,
            })
        );
    } else {
        println!(
            "{} blocks scanned, {} deleted ({} bytes), {} unreferenced waiting out the grace period",
            r.scanned, r.deleted, r.deleted_bytes, r.waiting
        );
    }
    Ok(())
}

async fn fsck(store: &cubby_store::Store, repair: bool, quick: bool, json: bool) -> Result<()> {
    let r = store.fsck(repair, !quick).await?;
    if json {
        println!(
            "{}",
            json!({
                "blocks_checked": r.blocks_checked,
                "missing": r.missing,
                "corrupt": r.corrupt,
                "miscounted": r.miscounted,
                "wrongly_claimed": r.wrongly_claimed,
                "repaired": r.repaired,
                "clean": r.is_clean(),
            })
        );
    } else {
        println!("{} referenced blocks checked", r.blocks_checked);
        for h in &r.missing {
            println!("missing block {h}");
        }
        for h in &r.corrupt {
            println!("corrupt block {h} (its bytes do not match its name)");
        }
        let fixed = if r.repaired { " (repaired)" } else { "" };
        if r.miscounted > 0 {
            println!("{} reference counts wrong{fixed}", r.miscounted);
        }
        if r.wrongly_claimed > 0 {
            println!(
                "{} referenced blocks marked for collection{fixed}",
                r.wrongly_claimed
            );
        }
        if r.is_clean() {
            println!("clean");
        }
    }
    if !r.is_clean() {
        std::process::exit(1);
    }
    Ok(())
}

async fn stats(store: &cubby_store::Store, json: bool) -> Result<()> {
    let s = store.stats().await?;
    let ratio = if s.physical_bytes == 0 {
        1.0
    } else {
        s.version_bytes as f64 / s.physical_bytes as f64
    };
    if json {
        let accounts: Vec<_> = s
            .accounts
            .iter()
            .map(|(name, used, quota)| json!({"name": name, "used": used, "quota": quota}))
            .collect();
        println!(
            "{}",
            json!({
                "accounts": accounts,
                "live_bytes": s.live_bytes,
                "version_bytes": s.version_bytes,
                "blocks": s.blocks,
                "physical_bytes": s.physical_bytes,
                "dedup_ratio": ratio,
            })
        );
        return Ok(());
    }
    for (name, used, quota) in &s.accounts {
        let quota = quota.map_or("none".to_owned(), |q| q.to_string());
        println!("{name:<24} {used:>16} bytes   quota {quota}");
    }
    println!("live files        {:>16} bytes", s.live_bytes);
    println!("all versions      {:>16} bytes (logical)", s.version_bytes);
    println!(
        "stored blocks     {:>16} bytes in {} blocks (physical)",
        s.physical_bytes, s.blocks
    );
    println!("deduplication     {ratio:>16.2}x");
    Ok(())
}
