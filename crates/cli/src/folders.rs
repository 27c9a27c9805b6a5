//! `cubby share-folder`, `cubby members` and `cubby mount`: the common cases of shared
//! folders from the command line (the `sharing/*` folder routes underneath).

use anyhow::Result;
use clap::Args;
use cubby_client::types::Metadata;
use cubby_core::api::folders::{AccessLevel, AddMember, MemberSelector, SharedFolderMetadata};
use serde_json::json;

use crate::client::{Common, Session, api, exit, fail, remote_path};

#[derive(Args)]
pub struct ShareFolderArgs {
    /// The folder to share (or one already shared, to add people to it).
    path: String,
    /// Invite this person: a user name, an e-mail address or an account id (repeatable).
    #[arg(long = "with", value_name = "WHO")]
    with: Vec<String>,
    /// Invite them as viewers (they read but cannot change anything); editors by default.
    #[arg(long)]
    viewer: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct MembersArgs {
    /// A shared folder, as mounted in your files.
    path: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct MountArgs {
    /// The folder to mount: its id or its name, as `cubby mount` lists them. Without it, list
    /// the folders shared with you that are not mounted yet.
    folder: Option<String>,
    #[command(flatten)]
    common: Common,
}

/// The shared folder id of a folder (it must be one, or `share` it first).
async fn folder_id(s: &Session, path: &str) -> Result<Option<String>> {
    let found = s.client.get_metadata(path, false).await.map_err(|e| {
        if e.kind() == cubby_client::ErrorKind::NotFound {
            fail(exit::FAILURE, format!("{path} is not a folder you have"))
        } else {
            api(e)
        }
    })?;
    match found {
        Metadata::Folder(f) => Ok(f
            .sharing_info
            .and_then(|i| i.shared_folder_id)
            .or(f.shared_folder_id)),
        _ => Err(fail(exit::USAGE, format!("{path} is not a folder"))),
    }
}

fn selector(who: &str) -> MemberSelector {
    if who.starts_with("dbid:") {
        MemberSelector::DropboxId {
            dropbox_id: who.to_owned(),
        }
    } else {
        // A Cubby server also finds a user by name here.
        MemberSelector::Email {
            email: who.to_owned(),
        }
    }
}

/// A refused share in words (the route's error summary otherwise).
fn in_words(e: cubby_client::Error, path: &str) -> anyhow::Error {
    let said = |t: &str| e.summary().is_some_and(|s| s.contains(t));
    let why = if said("inside_shared_folder") {
        "is inside a shared folder: add people to that one (`cubby members` shows it)"
    } else if said("contains_shared_folder") {
        "holds a shared folder, and a shared folder cannot hold another"
    } else if said("is_file") {
        "is a file: only folders are shared (a file goes by `cubby link`)"
    } else if said("app_folder") {
        "is an app's folder, which is not shared"
    } else if said("invalid_path") || said("not_found") {
        "is not a folder you have"
    } else {
        return api(e);
    };
    fail(exit::FAILURE, format!("{path} {why}"))
}

/// Who shared a folder, as its metadata names them.
fn owners(f: &SharedFolderMetadata) -> String {
    f.owner_display_names
        .as_ref()
        .map(|n| format!("shared by {}", n.join(", ")))
        .unwrap_or_default()
}

pub async fn share_folder(a: ShareFolderArgs) -> Result<()> {
    let s = Session::open(&a.common)?;
    let path = remote_path(&a.path);
    let id = match folder_id(&s, &path).await? {
        Some(id) => id,
        None => {
            let launch = s
                .client
                .share_folder(&path)
                .await
                .map_err(|e| in_words(e, &path))?;
            match launch {
                cubby_core::api::types::Launch::Complete(f) => f.shared_folder_id,
                cubby_core::api::types::Launch::AsyncJobId { async_job_id } => {
                    match s
                        .client
                        .check_share_job_status(&async_job_id)
                        .await
                        .map_err(api)?
                    {
                        cubby_core::api::folders::ShareFolderJobStatus::Complete(f) => {
                            f.shared_folder_id
                        }
                        other => {
                            return Err(fail(exit::FAILURE, format!("sharing failed: {other:?}")));
                        }
                    }
                }
            }
        }
    };
    if !a.with.is_empty() {
        let level = if a.viewer {
            AccessLevel::Viewer
        } else {
            AccessLevel::Editor
        };
        let members = a
            .with
            .iter()
            .map(|w| AddMember {
                member: selector(w),
                access_level: level,
            })
            .collect();
        s.client
            .add_folder_member(&id, members)
            .await
            .map_err(api)?;
    }
    let f = s.client.get_folder_metadata(&id).await.map_err(api)?;
    s.print(
        &json!({"shared_folder_id": id, "path": f.path_display, "invited": a.with}),
        || {
            let mut out = format!("{} is shared (id {id})", f.path_display.as_deref().unwrap_or(&path));
            if !a.with.is_empty() {
                let role = if a.viewer { "viewers" } else { "editors" };
                out.push_str(&format!(
                    "; invited as {role}: {}. They see it with `cubby mount` and add it with `cubby mount {id}`.",
                    a.with.join(", ")
                ));
            }
            out
        },
    );
    Ok(())
}

pub async fn members(a: MembersArgs) -> Result<()> {
    let s = Session::open(&a.common)?;
    let path = remote_path(&a.path);
    let Some(id) = folder_id(&s, &path).await? else {
        return Err(fail(
            exit::USAGE,
            format!("{path} is not shared (share it with `cubby share-folder {path} --with NAME`)"),
        ));
    };
    let m = s.client.list_folder_members(&id).await.map_err(api)?;
    for u in &m.users {
        let level = serde_json::to_value(u.access_type)?[".tag"]
            .as_str()
            .unwrap_or("member")
            .to_owned();
        s.print(
            &json!({"account_id": u.user.account_id, "name": u.user.display_name,
                    "email": u.user.email, "access": level}),
            || format!("{level:<7} {}  <{}>", u.user.display_name, u.user.email),
        );
    }
    Ok(())
}

pub async fn mount(a: MountArgs) -> Result<()> {
    let s = Session::open(&a.common)?;
    let waiting = s.client.list_folders(true).await.map_err(api)?.entries;
    let Some(which) = a.folder else {
        if waiting.is_empty() && !s.json {
            println!("No folders are waiting to be mounted.");
        }
        for f in &waiting {
            s.print(&serde_json::to_value(f)?, || {
                format!("{}  {}  {}", f.shared_folder_id, f.name, owners(f))
            });
        }
        return Ok(());
    };
    let id = match waiting
        .iter()
        .find(|f| f.shared_folder_id == which || f.name.eq_ignore_ascii_case(&which))
    {
        Some(f) => f.shared_folder_id.clone(),
        None => which,
    };
    let f = s.client.mount_folder(&id).await.map_err(|e| {
        if e.summary()
            .is_some_and(|t| t.contains("invalid_id") || t.contains("not_a_member"))
        {
            fail(
                exit::FAILURE,
                format!(
                    "nothing shared with you is called {id}: `cubby mount` lists what is waiting"
                ),
            )
        } else {
            api(e)
        }
    })?;
    s.print(&serde_json::to_value(&f)?, || {
        format!(
            "Mounted {} at {}",
            f.name,
            f.path_display.as_deref().unwrap_or("?")
        )
    });
    Ok(())
}
