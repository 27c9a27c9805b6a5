//! The client commands: sign-in and profiles, and file commands shaped like familiar tools.
//!
//! Every command works against a Cubby server and, with a profile whose server is `dropbox`,
//! against Dropbox itself. Output is for people on a terminal, plain lines when piped, and
//! JSON lines with `--json`. Exit codes: 0 success, 1 failure, 2 usage, 3 authentication,
//! 4 conflict, 5 transient (network, busy server): see [`Failure`].

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use clap::{Args, Subcommand};
use cubby_client::routes::ListOptions;
use cubby_client::transfer::{UploadOptions, WriteMode};
use cubby_client::types::{Metadata, SaveUrlStatus, SharedLinkSettings};
use cubby_client::{App, Client, ErrorKind, Hosts, Tokens};
use serde_json::{Value, json};

use crate::profile::{self, Config, DEFAULT_PROFILE, Profile};
use crate::progress::Bar;

/// Options every client command takes.
#[derive(Args, Clone)]
pub struct Common {
    /// The sign-in profile to use.
    #[arg(long, env = "CUBBY_PROFILE", default_value = DEFAULT_PROFILE)]
    pub profile: String,
    /// Print JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Sign in to a server (a Cubby URL, or "dropbox") and save the profile.
    Login(LoginArgs),
    /// Revoke the profile's token and forget it.
    Logout(Common),
    /// Show the signed-in account.
    Whoami(Common),
    /// Show the space used and the quota.
    Du(Common),
    /// List a folder.
    Ls(LsArgs),
    /// Download a file.
    Get(GetArgs),
    /// Upload a file (large files in a resumable session).
    Put(PutArgs),
    /// Create a folder.
    Mkdir(MkdirArgs),
    /// Delete a file or folder (it stays restorable in the server's history).
    Rm(PathArgs),
    /// Move or rename.
    Mv(TwoPaths),
    /// Copy (no bytes are sent: the server shares the content).
    Cp(TwoPaths),
    /// List a file's revisions.
    Revs(PathArgs),
    /// Restore a file to a revision.
    Restore(RestoreArgs),
    /// Print a copy reference to a file or folder, for `save-ref` in any account.
    Share(PathArgs),
    /// Save a copy reference at a path.
    SaveRef(SaveRefArgs),
    /// Create (or show) a shared link.
    Link(LinkArgs),
    /// Share a folder with other people (editors, or viewers with --viewer).
    ShareFolder(crate::folders::ShareFolderArgs),
    /// List the members of a shared folder.
    Members(crate::folders::MembersArgs),
    /// List the folders shared with you, or add one to your files.
    Mount(crate::folders::MountArgs),
    /// Have the server fetch a URL into a file.
    ImportUrl(ImportUrlArgs),
    /// Have the server fetch many URLs (lines of `URL [PATH]` or JSON), several at a time.
    ImportUrls(crate::import::ImportUrlsArgs),
    /// Back up a local folder into a server folder, incrementally, never overwriting blindly.
    Backup(BackupArgs),
    /// Bring a backed-up server folder back into a local folder, optionally as it was then.
    RestoreBackup(RestoreBackupArgs),
    /// Keep a local folder and a server folder in step, both ways (or one way with --pull or
    /// --push), following changes as they happen; --once for a single pass.
    Sync(crate::sync::SyncArgs),
}

#[derive(Args)]
pub struct BackupArgs {
    /// The local folder.
    pub src: PathBuf,
    /// The server folder (an app folder's "/" is the app's own folder).
    pub dest: String,
    /// Delete on the server what was deleted here (guarded: see --max-delete).
    #[arg(long)]
    pub mirror: bool,
    /// With --mirror: the largest share of the backup's files deleted without --force.
    #[arg(long, default_value_t = 25.0, value_name = "PERCENT")]
    pub max_delete: f64,
    /// With --mirror: delete even past --max-delete.
    #[arg(long)]
    pub force: bool,
    /// Leave out paths matching this gitignore-style pattern (repeatable; .cubbyignore files
    /// in the tree add their own).
    #[arg(long = "exclude", value_name = "PATTERN")]
    pub excludes: Vec<String>,
    /// Show what would be uploaded or deleted; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Check the server's content hashes against the local files instead of backing up.
    #[arg(long)]
    pub verify: bool,
    /// Append a line per action to this file.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// The index file (default: one per profile, source and destination, under
    /// ~/.local/state/cubby/backups).
    #[arg(long, value_name = "FILE")]
    pub index: Option<PathBuf>,
    /// Files uploaded at once.
    #[arg(long, default_value_t = 8)]
    pub parallel: usize,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct RestoreBackupArgs {
    /// The server folder.
    pub remote: String,
    /// The local folder to restore into.
    pub local: PathBuf,
    /// Restore the tree as it was at this time (2026-11-30T02:00:00Z, or Unix seconds).
    #[arg(long)]
    pub at: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct LoginArgs {
    /// The server: a Cubby URL (https://host:8443) or "dropbox". Default: the profile's.
    server: Option<String>,
    #[command(flatten)]
    common: Common,
    /// The app to sign in as (default: Cubby's built-in command-line app).
    #[arg(long)]
    app_key: Option<String>,
    /// The app's secret, for an app that is not a public client.
    #[arg(long)]
    app_secret: Option<String>,
    /// A CA certificate (PEM) to trust, such as a Cubby server's cubby-data/tls/ca.pem.
    #[arg(long)]
    ca_cert: Option<PathBuf>,
    /// Paste the code shown by the page instead of receiving it on a loopback port.
    #[arg(long)]
    paste: bool,
    /// The loopback port (default: any free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

#[derive(Args)]
pub struct LsArgs {
    #[arg(default_value = "")]
    path: String,
    /// Long format: size, modified time, name.
    #[arg(short = 'l')]
    long: bool,
    /// Everything below, with full paths.
    #[arg(short = 'R')]
    recursive: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct GetArgs {
    remote: String,
    /// The local file or folder (default: the name, in the current folder).
    local: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct PutArgs {
    local: PathBuf,
    /// The remote path; ending in "/" (or omitted) puts the file there under its own name.
    remote: Option<String>,
    /// A folder and everything in it (small files in batches of 1,000).
    #[arg(short = 'r', long, conflicts_with = "update")]
    recursive: bool,
    /// Replace what is at the path.
    #[arg(long, conflicts_with = "update")]
    overwrite: bool,
    /// Replace only this revision (otherwise a conflict).
    #[arg(long)]
    update: Option<String>,
    /// On a conflict, pick a free name ("file (1).txt").
    #[arg(long)]
    autorename: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct MkdirArgs {
    path: String,
    /// No error if it exists.
    #[arg(short = 'p')]
    parents: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct PathArgs {
    path: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct TwoPaths {
    from: String,
    to: String,
    /// On a conflict, pick a free name.
    #[arg(long)]
    autorename: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct RestoreArgs {
    path: String,
    rev: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct SaveRefArgs {
    /// The copy reference (base64url: it may start with `-`).
    #[arg(allow_hyphen_values = true)]
    reference: String,
    path: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct LinkArgs {
    path: String,
    /// Require this password.
    #[arg(long)]
    password: Option<String>,
    /// Stop working at this time (2026-12-31T00:00:00Z).
    #[arg(long)]
    expires: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct ImportUrlArgs {
    url: String,
    path: String,
    /// Print the job id and return at once.
    #[arg(long)]
    no_wait: bool,
    #[command(flatten)]
    common: Common,
}

/// A failure with its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Exit codes of the client commands.
pub mod exit {
    pub const FAILURE: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const AUTH: i32 = 3;
    pub const CONFLICT: i32 = 4;
    pub const TRANSIENT: i32 = 5;
}

pub(crate) fn fail(code: i32, message: impl Into<String>) -> anyhow::Error {
    Failure {
        code,
        message: message.into(),
    }
    .into()
}

/// Turns a client error into a [`Failure`] with the exit code of its kind.
pub(crate) fn api(e: cubby_client::Error) -> anyhow::Error {
    let code = match e.kind() {
        ErrorKind::Auth => exit::AUTH,
        ErrorKind::Conflict => exit::CONFLICT,
        ErrorKind::Transient => exit::TRANSIENT,
        ErrorKind::BadInput => exit::USAGE,
        ErrorKind::NotFound | ErrorKind::Refused | ErrorKind::Local => exit::FAILURE,
    };
    let hint = match e.kind() {
        ErrorKind::Auth => " (sign in again with `cubby login`)",
        _ => "",
    };
    fail(code, format!("{e}{hint}"))
}

/// A signed-in client for a profile.
pub(crate) struct Session {
    pub client: Client,
    pub json: bool,
}

impl Session {
    pub fn open(common: &Common) -> Result<Self> {
        let path = profile::config_path();
        let config = Config::load(&path)?;
        let Some(p) = config.profiles.get(&common.profile) else {
            return Err(fail(
                exit::AUTH,
                format!(
                    "no profile '{}': sign in with `cubby login`",
                    common.profile
                ),
            ));
        };
        let Some(tokens) = p.tokens.clone() else {
            return Err(fail(
                exit::AUTH,
                format!(
                    "profile '{}' is signed out: run `cubby login`",
                    common.profile
                ),
            ));
        };
        let name = common.profile.clone();
        let client = build_client(p, tokens)?.on_refresh(Box::new(move |t: &Tokens| {
            profile::save_tokens(&path, &name, t);
        }));
        Ok(Self {
            client,
            json: common.json,
        })
    }

    pub fn print(&self, value: &Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", text());
        }
    }
}

fn build_client(p: &Profile, tokens: Tokens) -> Result<Client> {
    let ca = p.ca()?;
    let http = cubby_client::http_client(ca.as_deref()).map_err(api)?;
    Ok(Client::new(
        http,
        Hosts::for_server(&p.server),
        App {
            key: p.app_key.clone(),
            secret: p.app_secret.clone(),
        },
        tokens,
    ))
}

pub async fn run(command: ClientCommand) -> Result<()> {
    match command {
        ClientCommand::Login(a) => login(a).await,
        ClientCommand::Logout(c) => logout(c).await,
        ClientCommand::Whoami(c) => {
            let s = Session::open(&c)?;
            let a = s.client.get_current_account().await.map_err(api)?;
            s.print(&serde_json::to_value(&a)?, || {
                format!("{} <{}> ({})", a.name.display_name, a.email, a.account_id)
            });
            Ok(())
        }
        ClientCommand::Du(c) => {
            let s = Session::open(&c)?;
            let u = s.client.get_space_usage().await.map_err(api)?;
            let allocated = u.allocation.allocated();
            s.print(
                &json!({"used": u.used, "allocated": allocated}),
                || match allocated {
                    Some(a) if a > 0 => format!(
                        "{} used of {} ({:.1}%)",
                        human(u.used),
                        human(a),
                        u.used as f64 * 100.0 / a as f64
                    ),
                    _ => format!("{} used", human(u.used)),
                },
            );
            Ok(())
        }
        ClientCommand::Ls(a) => ls(a).await,
        ClientCommand::Get(a) => get(a).await,
        ClientCommand::Put(a) => put(a).await,
        ClientCommand::Mkdir(a) => {
            let s = Session::open(&a.common)?;
            let r = s
                .client
                .create_folder(&remote_path(&a.path), false)
                .await
                .map_err(api);
            match r {
                Ok(m) => print_meta(&s, &Metadata::Folder(m.metadata)),
                Err(e) if a.parents && is_folder_conflict(&e) => {}
                Err(e) => return Err(e),
            }
            Ok(())
        }
        ClientCommand::Rm(a) => {
            let s = Session::open(&a.common)?;
            let m = s
                .client
                .delete(&remote_path(&a.path), None)
                .await
                .map_err(api)?;
            print_meta(&s, &m.metadata);
            Ok(())
        }
        ClientCommand::Mv(a) => relocate(a, false).await,
        ClientCommand::Cp(a) => relocate(a, true).await,
        ClientCommand::Revs(a) => {
            let s = Session::open(&a.common)?;
            let path = remote_path(&a.path);
            // A live file's whole history follows its id across moves (a move is a new
            // revision at the new path); a deleted one is found by its path.
            let by_id = s.client.list_revisions_by_id(&path, 100).await;
            let r = match by_id {
                Err(e) if e.kind() == cubby_client::ErrorKind::NotFound => {
                    s.client.list_revisions(&path, 100).await.map_err(api)?
                }
                other => other.map_err(api)?,
            };
            for f in &r.entries {
                s.print(&serde_json::to_value(f)?, || {
                    format!("{}  {}  {:>10}", f.rev, f.server_modified, f.size)
                });
            }
            Ok(())
        }
        ClientCommand::Restore(a) => {
            let s = Session::open(&a.common)?;
            let f = s
                .client
                .restore(&remote_path(&a.path), &a.rev)
                .await
                .map_err(api)?;
            print_meta(&s, &Metadata::File(f));
            Ok(())
        }
        ClientCommand::Share(a) => {
            let s = Session::open(&a.common)?;
            let r = s
                .client
                .copy_reference_get(&remote_path(&a.path))
                .await
                .map_err(api)?;
            s.print(
                &json!({"copy_reference": r.copy_reference, "expires": r.expires}),
                || r.copy_reference.clone(),
            );
            Ok(())
        }
        ClientCommand::SaveRef(a) => {
            let s = Session::open(&a.common)?;
            let r = s
                .client
                .copy_reference_save(&a.reference, &remote_path(&a.path))
                .await
                .map_err(api)?;
            print_meta(&s, &r.metadata);
            Ok(())
        }
        ClientCommand::Link(a) => link(a).await,
        ClientCommand::ShareFolder(a) => crate::folders::share_folder(a).await,
        ClientCommand::Members(a) => crate::folders::members(a).await,
        ClientCommand::Mount(a) => crate::folders::mount(a).await,
        ClientCommand::ImportUrl(a) => import_url(a).await,
        ClientCommand::ImportUrls(a) => crate::import::import_urls(a).await,
        ClientCommand::Backup(a) => crate::backup::backup(a).await,
        ClientCommand::RestoreBackup(a) => crate::backup::restore(a).await,
        ClientCommand::Sync(a) => crate::sync::sync(a).await,
    }
}

async fn login(a: LoginArgs) -> Result<()> {
    let path = profile::config_path();
    let mut config = Config::load(&path)?;
    let old = config.profiles.get(&a.common.profile).cloned();
    let server = a
        .server
        .clone()
        .or_else(|| old.as_ref().map(|p| p.server.clone()))
        .ok_or_else(|| {
            fail(
                exit::USAGE,
                "name the server: cubby login https://host:8443",
            )
        })?;
    let dropbox = Hosts::for_server(&server).api.contains("dropboxapi.com");
    let app_key = a.app_key.clone().or_else(|| {
        old.as_ref()
            .filter(|p| p.server == server)
            .map(|p| p.app_key.clone())
    });
    let app_key = match app_key {
        Some(k) => k,
        None if dropbox => {
            return Err(fail(
                exit::USAGE,
                "Dropbox needs your app's key: cubby login dropbox --app-key KEY",
            ));
        }
        None => "cubby-cli".to_owned(),
    };
    let mut profile = Profile {
        server: server.clone(),
        app_key: app_key.clone(),
        app_secret: a.app_secret.clone(),
        ..Profile::default()
    };
    match &a.ca_cert {
        Some(p) => {
            let pem =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            profile.ca_pem = Some(pem);
        }
        None => {
            if let Some(old) = old.as_ref() {
                profile.ca_pem = old.ca_pem.clone();
                profile.ca_cert = old.ca_cert.clone();
            }
        }
    }
    let ca = profile.ca()?;
    let http = cubby_client::http_client(ca.as_deref()).map_err(api)?;
    let hosts = Hosts::for_server(&server);
    let app = App {
        key: app_key,
        secret: a.app_secret.clone(),
    };
    let answer = crate::login::authorize(&http, &hosts, &app, a.paste, a.port)
        .await
        .map_err(|e| match e.downcast::<cubby_client::Error>() {
            Ok(ce) => api(ce),
            Err(e) => fail(exit::AUTH, format!("{e:#}")),
        })?;
    let tokens = Tokens {
        access_token: answer.access_token,
        expires_at: answer.expires_in.map(|s| cubby_client::now() + s),
        refresh_token: answer.refresh_token,
    };
    let client = build_client(&profile, tokens.clone())?;
    let account = client.get_current_account().await.map_err(api)?;
    profile.tokens = Some(client.tokens());
    profile.account_id = Some(account.account_id.clone());
    profile.email = Some(account.email.clone());
    config.profiles.insert(a.common.profile.clone(), profile);
    config.save(&path)?;
    let v = json!({"profile": a.common.profile, "server": server, "account_id": account.account_id, "email": account.email});
    if a.common.json {
        println!("{v}");
    } else {
        println!(
            "Signed in to {server} as {} <{}> (profile '{}').",
            account.name.display_name, account.email, a.common.profile
        );
    }
    Ok(())
}

async fn logout(c: Common) -> Result<()> {
    let path = profile::config_path();
    let s = Session::open(&c)?;
    // A token the server already forgot is as good as revoked.
    match s.client.revoke_token().await {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::Auth => {}
        Err(e) => return Err(api(e)),
    }
    let mut config = Config::load(&path)?;
    if let Some(p) = config.profiles.get_mut(&c.profile) {
        p.tokens = None;
    }
    config.save(&path)?;
    s.print(&json!({"profile": c.profile, "signed_out": true}), || {
        format!("Signed out of profile '{}'.", c.profile)
    });
    Ok(())
}

async fn ls(a: LsArgs) -> Result<()> {
    let s = Session::open(&a.common)?;
    let opts = ListOptions {
        recursive: a.recursive,
        include_deleted: false,
        limit: Some(2000),
    };
    let mut page = s
        .client
        .list_folder(&remote_path(&a.path), &opts)
        .await
        .map_err(api)?;
    let base = remote_path(&a.path).to_lowercase();
    loop {
        for m in &page.entries {
            // A recursive listing includes the folder itself.
            if a.recursive && m.path_lower() == Some(base.as_str()) {
                continue;
            }
            let name = if a.recursive {
                m.path_display()
            } else {
                m.name()
            };
            // A shared folder's mount point says so.
            let shared = match m {
                Metadata::Folder(f) if f.shared_folder_id.is_some() => "  (shared)",
                _ => "",
            };
            s.print(&serde_json::to_value(m)?, || match (a.long, m) {
                (true, Metadata::File(f)) => {
                    format!("{:>12}  {}  {name}", f.size, f.server_modified)
                }
                (true, _) => format!("{:>12}  {:20}  {name}/{shared}", "-", ""),
                (false, Metadata::Folder(_)) => format!("{name}/{shared}"),
                (false, _) => name.to_owned(),
            });
        }
        if !page.has_more {
            return Ok(());
        }
        page = s
            .client
            .list_folder_continue(&page.cursor)
            .await
            .map_err(api)?;
    }
}

async fn get(a: GetArgs) -> Result<()> {
    let s = Session::open(&a.common)?;
    let remote = remote_path(&a.remote);
    let name = remote.rsplit('/').next().unwrap_or("").to_owned();
    let local = match a.local {
        Some(p) if p.is_dir() => p.join(&name),
        Some(p) => p,
        None => PathBuf::from(&name),
    };
    let bar = Bar::new(&name, !a.common.json);
    let f = s
        .client
        .download_file(&remote, &local, &bar)
        .await
        .map_err(api)?;
    bar.finish();
    s.print(&serde_json::to_value(&f)?, || {
        format!(
            "{} -> {} ({} bytes)",
            f.path_display.clone().unwrap_or(remote.clone()),
            local.display(),
            f.size
        )
    });
    Ok(())
}

async fn put(a: PutArgs) -> Result<()> {
    let s = Session::open(&a.common)?;
    let name = a
        .local
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| fail(exit::USAGE, format!("{} names no file", a.local.display())))?;
    let is_dir = a.local.is_dir();
    if is_dir != a.recursive {
        return Err(fail(
            exit::USAGE,
            if is_dir {
                format!(
                    "{} is a folder: `cubby put -r` uploads it with everything in it (`cubby backup` too, and again only what changed)",
                    a.local.display()
                )
            } else {
                format!("{} is not a folder (-r uploads folders)", a.local.display())
            },
        ));
    }
    let remote = match a.remote.as_deref() {
        None => format!("/{name}"),
        Some(r) if r.ends_with('/') => format!("{}/{name}", remote_path(r)),
        Some(r) => remote_path(r),
    };
    let mode = match (a.overwrite, a.update) {
        (_, Some(rev)) => WriteMode::Update(rev),
        (true, None) => WriteMode::Overwrite,
        (false, None) => WriteMode::Add,
    };
    if is_dir {
        let opts = UploadOptions {
            mode,
            autorename: a.autorename,
            ..UploadOptions::default()
        };
        return crate::put_tree::put_tree(&s, &a.local, &remote, &opts).await;
    }
    let modified = std::fs::metadata(&a.local)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| dropbox_time(d.as_secs() as i64));
    let opts = UploadOptions {
        mode,
        autorename: a.autorename,
        client_modified: modified,
        ..UploadOptions::default()
    };
    let bar = Bar::new(&name, !a.common.json);
    let state = profile::upload_state_dir();
    let f = s
        .client
        .upload_file(&a.local, &remote, &opts, Some(&state), &bar)
        .await
        .map_err(api)?;
    bar.finish();
    s.print(&serde_json::to_value(&f)?, || {
        format!(
            "{} -> {} ({} bytes, rev {})",
            a.local.display(),
            f.path_display.clone().unwrap_or_default(),
            f.size,
            f.rev
        )
    });
    Ok(())
}

async fn relocate(a: TwoPaths, copy: bool) -> Result<()> {
    let s = Session::open(&a.common)?;
    let (from, to) = (remote_path(&a.from), remote_path(&a.to));
    let m = if copy {
        s.client.copy_item(&from, &to, a.autorename).await
    } else {
        s.client.move_item(&from, &to, a.autorename).await
    }
    .map_err(api)?;
    print_meta(&s, &m.metadata);
    Ok(())
}

async fn link(a: LinkArgs) -> Result<()> {
    let s = Session::open(&a.common)?;
    let settings = SharedLinkSettings {
        requested_visibility: a.password.as_ref().map(|_| json!("password")),
        link_password: a.password.clone(),
        expires: a.expires.clone(),
        ..SharedLinkSettings::default()
    };
    let r = s
        .client
        .create_shared_link(&remote_path(&a.path), settings)
        .await
        .map_err(api);
    let link = match r {
        Ok(v) => v,
        Err(e) => {
            // An existing link with the same settings is the answer.
            let existing = e
                .downcast_ref::<Failure>()
                .filter(|f| f.message.starts_with("shared_link_already_exists"))
                .is_some();
            if !existing {
                return Err(e);
            }
            let list = s
                .client
                .list_shared_links(Some(&remote_path(&a.path)), true)
                .await
                .map_err(api)?;
            list.links
                .first()
                .cloned()
                .ok_or_else(|| anyhow!("the server said a link exists but lists none"))?
        }
    };
    let url = link.common().url.clone();
    s.print(&serde_json::to_value(&link)?, || url);
    Ok(())
}

async fn import_url(a: ImportUrlArgs) -> Result<()> {
    let s = Session::open(&a.common)?;
    let path = remote_path(&a.path);
    let started = s.client.save_url(&a.url, &path).await.map_err(api)?;
    let job = match started {
        SaveUrlStatus::AsyncJobId { async_job_id } if a.no_wait => {
            s.print(&json!({"async_job_id": async_job_id}), || {
                async_job_id.clone()
            });
            return Ok(());
        }
        other => other,
    };
    match s.client.save_url_wait(job).await.map_err(api)? {
        Ok(f) => {
            s.print(&serde_json::to_value(&f)?, || {
                format!(
                    "{} -> {} ({} bytes)",
                    a.url,
                    f.path_display.clone().unwrap_or_default(),
                    f.size
                )
            });
            Ok(())
        }
        Err(why) => Err(fail(
            exit::FAILURE,
            format!("the server could not fetch {}: {why}", a.url),
        )),
    }
}

fn print_meta(s: &Session, m: &Metadata) {
    let v = serde_json::to_value(m).unwrap_or(Value::Null);
    s.print(&v, || match m {
        Metadata::Folder(_) => format!("{}/", m.path_display()),
        _ => m.path_display().to_owned(),
    });
}

fn is_folder_conflict(e: &anyhow::Error) -> bool {
    e.downcast_ref::<Failure>()
        .is_some_and(|f| f.message.starts_with("path/conflict/folder"))
}

/// A remote path as the API wants it: "" for the root, otherwise with a leading slash and
/// no trailing one. `id:`, `rev:` and `ns:` forms pass unchanged.
pub fn remote_path(p: &str) -> String {
    if p.starts_with("id:") || p.starts_with("rev:") || p.starts_with("ns:") {
        return p.to_owned();
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else if trimmed.starts_with('/') {
        trimmed.to_owned()
    } else {
        format!("/{trimmed}")
    }
}

/// A Dropbox timestamp from Unix seconds.
pub fn dropbox_time(secs: i64) -> String {
    cubby_core::time::format(secs)
}

/// Bytes for people: 1.5 MiB.
pub use cubby_core::naming::human_size as human;

/// Whether standard error is a terminal (progress bars go there).
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_paths() {
        assert_eq!(remote_path(""), "");
        assert_eq!(remote_path("/"), "");
        assert_eq!(remote_path("a/b/"), "/a/b");
        assert_eq!(remote_path("/a"), "/a");
        assert_eq!(remote_path("id:abc"), "id:abc");
    }
}
