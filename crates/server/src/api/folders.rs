//! The `sharing/*` routes of shared folders, and `users/get_account(_batch)` for members'
//! names. The store keeps the folders and members (`cubby_store::folders`); paths below a
//! mount point reach the folder's namespace through `Ctx::resolve`.
//!
//! Security Invariant: every route names a folder by id and answers `access_error` unless
//! the caller is a member; only the owner (or editors, where the folder's policy lets them)
//! changes who is a member.

use cubby_core::api::endpoint as ep;
use cubby_core::api::errors::PollError;
use cubby_core::api::types::*;
use cubby_core::path::{Pattern, is_within, lower};
use cubby_store::accounts::Account;
use cubby_store::folders::{Access, FolderError, Membership};
use cubby_store::jobs::JobState;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{Answer, ApiResult, Ctx, Fail, Resolved, unexpected};

/// Most members `add_folder_member` takes at once.
const MAX_NEW_MEMBERS: usize = 100;

fn access_level(a: Access) -> AccessLevel {
    match a {
        Access::Owner => AccessLevel::Owner,
        Access::Editor => AccessLevel::Editor,
        Access::Viewer => AccessLevel::Viewer,
    }
}

/// The stored word of a policy union (`{".tag": word}` on the wire).
fn tag_of<T: Serialize>(v: &T) -> Option<String> {
    let j = serde_json::to_value(v).ok()?;
    j.get(".tag")
        .and_then(|t| t.as_str())
        .or_else(|| j.as_str())
        .map(str::to_owned)
}

fn from_tag<T: DeserializeOwned>(word: &str) -> Option<T> {
    serde_json::from_value(serde_json::json!({ ".tag": word })).ok()
}

/// The caller's membership of the folder `id`, or why not.
async fn member_of(ctx: &Ctx, id: &str) -> ApiResult<Result<Membership, SharedFolderAccessError>> {
    let Ok(ns) = id.parse::<u64>() else {
        return Ok(Err(SharedFolderAccessError::InvalidId));
    };
    if ctx.store().shared_folder(ns).await?.is_none() {
        return Ok(Err(SharedFolderAccessError::InvalidId));
    }
    Ok(
        match ctx.store().membership(ns, ctx.auth().account.id).await? {
            None => Err(SharedFolderAccessError::NotAMember),
            // An app-folder app knows only what is in its folder.
            Some(m) if !visible_to_app(ctx, &m) => Err(SharedFolderAccessError::InvalidId),
            Some(m) => Ok(m),
        },
    )
}

/// [`member_of`], a refusal wrapped in the route's own error union.
async fn member_or<E>(
    ctx: &Ctx,
    id: &str,
    wrap: impl FnOnce(SharedFolderAccessError) -> E,
) -> Result<Membership, Fail<E>> {
    member_of(ctx, id).await?.map_err(|e| Fail::Route(wrap(e)))
}

/// Whether the caller's app sees this folder: a full-access app all of them, an app-folder
/// app only one mounted inside its folder.
fn visible_to_app(ctx: &Ctx, m: &Membership) -> bool {
    let root = ctx.root_lower();
    root.is_empty() || m.mount.as_ref().is_some_and(|(l, _)| is_within(l, &root))
}

/// Whether the member may change who else is a member.
fn manages(m: &Membership) -> bool {
    m.access == Access::Owner
        || (m.access == Access::Editor && m.folder.acl_update_policy == "editors")
}

/// The folder as Dropbox describes it to this member.
async fn folder_metadata(ctx: &Ctx, m: &Membership) -> ApiResult<SharedFolderMetadata> {
    let owner = ctx.store().account_by_id(m.folder.owner).await?;
    let root = &ctx.auth().root;
    let root_lower = lower(root);
    let (path_lower, path_display) = match &m.mount {
        Some((l, d)) if is_within(l, &root_lower) => (
            Some(l[root_lower.len()..].to_owned()),
            Some(d.chars().skip(root.chars().count()).collect()),
        ),
        _ => (None, None),
    };
    Ok(SharedFolderMetadata {
        access_type: access_level(m.access),
        is_inside_team_folder: false,
        is_team_folder: false,
        owner_display_names: owner.map(|o| vec![o.name]),
        owner_team: None,
        parent_shared_folder_id: None,
        path_display,
        path_lower,
        parent_folder_name: None,
        link_metadata: None,
        name: m.folder.name.clone(),
        permissions: None,
        policy: FolderPolicy {
            member_policy: from_tag(&m.folder.member_policy),
            resolved_member_policy: from_tag(&m.folder.member_policy),
            acl_update_policy: from_tag(&m.folder.acl_update_policy)
                .unwrap_or(AclUpdatePolicy::Owner),
            shared_link_policy: from_tag(&m.folder.shared_link_policy)
                .unwrap_or(SharedLinkPolicy::Anyone),
            viewer_info_policy: Some(ViewerInfoPolicy::Enabled),
        },
        preview_url: String::new(),
        shared_folder_id: m.folder.ns.to_string(),
        time_invited: cubby_core::time::format(m.invited),
        access_inheritance: AccessInheritance::Inherit,
        folder_id: None,
    })
}

/// A finished async job whose check answers `status` (Cubby does sharing work before it
/// answers; the job id exists for the routes whose result is only a job).
async fn finished_job<T: Serialize>(ctx: &Ctx, status: &T) -> ApiResult<String> {
    let id = ctx.store().create_job(ctx.auth().account.id).await?;
    let json =
        serde_json::to_string(status).map_err(|e| crate::api::ApiError::Internal(e.to_string()))?;
    ctx.store()
        .finish_job(&id, &JobState::Complete(json))
        .await?;
    Ok(id)
}

/// The status a finished job recorded, as the check route's union (another kind of job's
/// id, or one never issued, is `invalid_async_job_id`).
async fn job_status<T: DeserializeOwned>(ctx: &Ctx, a: PollArg) -> Result<T, Fail<PollError>> {
    match crate::api::batch::job_state(ctx, &a.async_job_id).await? {
        JobState::Complete(json) => {
            serde_json::from_str(&json).map_err(|_| Fail::Route(PollError::InvalidAsyncJobId))
        }
        _ => Err(Fail::Route(PollError::InvalidAsyncJobId)),
    }
}

pub(crate) async fn share_folder(ctx: &Ctx, a: ShareFolderArg) -> Answer<ep::ShareFolder> {
    let bad = |e: SharePathError| Fail::Route(ShareFolderError::BadPath { bad_path: e });
    let (ns, lower) = match ctx.resolve("path", &a.path, Pattern::WritePathOrId).await? {
        Resolved::Path { ns, lower, .. } if ctx.is_top(ns, &lower) => {
            return Err(bad(SharePathError::InvalidPath));
        }
        Resolved::Path { ns, lower, .. } => (ns, lower),
        _ => return Err(bad(SharePathError::InvalidPath)),
    };
    if ns != ctx.home_ns() {
        return Err(bad(SharePathError::InsideSharedFolder));
    }
    // An app's own folder is not shared, nor anything inside one.
    if lower == "/apps" || lower.starts_with("/apps/") {
        return Err(bad(if lower.matches('/').count() <= 2 {
            SharePathError::IsAppFolder
        } else {
            SharePathError::InsideAppFolder
        }));
    }
    if let Some(m) = ctx.mounts().await?.iter().find(|m| m.lower == lower) {
        let mine = ctx.store().membership(m.ns, ctx.auth().account.id).await?;
        if let Some(mine) = mine {
            let md = folder_metadata(ctx, &mine).await?;
            return Err(bad(SharePathError::AlreadyShared(Box::new(md))));
        }
    }
    let shared = match ctx.store().share_folder(&ctx.auth().account, &lower).await {
        Ok(f) => f,
        Err(FolderError::NotFound) => return Err(bad(SharePathError::InvalidPath)),
        Err(FolderError::NotFolder) => return Err(bad(SharePathError::IsFile)),
        Err(FolderError::ContainsShared) => return Err(bad(SharePathError::ContainsSharedFolder)),
        Err(e) => return Err(folder_failure(e).into()),
    };
    let policies = (
        a.member_policy.as_ref().and_then(tag_of),
        a.acl_update_policy.as_ref().and_then(tag_of),
        a.shared_link_policy.as_ref().and_then(tag_of),
    );
    // The defaults are written with the folder: a policy given is one more write.
    if policies.0.is_some() || policies.1.is_some() || policies.2.is_some() {
        ctx.store()
            .set_folder_policy(shared.ns, policies.0, policies.1, policies.2)
            .await
            .map_err(unexpected)?;
    }
    let m = ctx
        .store()
        .membership(shared.ns, ctx.auth().account.id)
        .await?
        .ok_or_else(|| crate::api::ApiError::Internal("the owner is not a member".into()))?;
    let md = folder_metadata(ctx, &m).await?;
    if a.force_async {
        let status = ShareFolderJobStatus::Complete(Box::new(md));
        return Ok(Launch::AsyncJobId {
            async_job_id: finished_job(ctx, &status).await?,
        });
    }
    Ok(Launch::Complete(md))
}

/// An unexpected failure of a folder operation.
fn folder_failure(e: FolderError) -> crate::api::ApiError {
    match e {
        FolderError::Op(e) => unexpected(e),
        other => crate::api::ApiError::Internal(other.to_string()),
    }
}

pub(crate) async fn check_share_job_status(
    ctx: &Ctx,
    a: PollArg,
) -> Answer<ep::CheckShareJobStatus> {
    job_status(ctx, a).await
}

pub(crate) async fn check_job_status(ctx: &Ctx, a: PollArg) -> Answer<ep::CheckJobStatus> {
    job_status(ctx, a).await
}

pub(crate) async fn check_remove_member_job_status(
    ctx: &Ctx,
    a: PollArg,
) -> Answer<ep::CheckRemoveMemberJobStatus> {
    job_status(ctx, a).await
}

pub(crate) async fn get_folder_metadata(
    ctx: &Ctx,
    a: GetMetadataArgs,
) -> Answer<ep::GetFolderMetadata> {
    let m = member_of(ctx, &a.shared_folder_id)
        .await?
        .map_err(Fail::Route)?;
    Ok(folder_metadata(ctx, &m).await?)
}

/// The caller's folders, all of them or those waiting to be mounted.
/// Where a paged listing of folders or members goes on: sealed, so a client cannot aim it
/// at another account's folders.
#[derive(serde::Serialize, serde::Deserialize)]
struct PageCursor {
    account: i64,
    /// The shared folder whose members are listed (0: the caller's folders).
    ns: u64,
    mountable: bool,
    limit: u32,
    offset: usize,
}

const PAGE_CURSOR_KIND: &str = "sf1";

fn seal(ctx: &Ctx, c: &PageCursor) -> String {
    cubby_core::cursor::seal(ctx.store().cursor_key(), PAGE_CURSOR_KIND, c)
}

/// The cursor, if it is this caller's.
fn open(ctx: &Ctx, s: &str) -> Option<PageCursor> {
    cubby_core::cursor::open::<PageCursor>(ctx.store().cursor_key(), PAGE_CURSOR_KIND, s)
        .filter(|c| c.account == ctx.auth().account.id)
}

/// One page of the caller's folders, all of them or those waiting to be mounted, oldest
/// first.
async fn folders(
    ctx: &Ctx,
    mountable: bool,
    limit: u32,
    offset: usize,
) -> ApiResult<ListFoldersResult> {
    let mine: Vec<Membership> = ctx
        .store()
        .memberships(ctx.auth().account.id)
        .await?
        .into_iter()
        .filter(|m| visible_to_app(ctx, m) && (!mountable || m.mount.is_none()))
        .collect();
    let mut entries = Vec::new();
    for m in mine.iter().skip(offset).take(limit as usize) {
        entries.push(folder_metadata(ctx, m).await?);
    }
    let next = offset + entries.len();
    let cursor = (next < mine.len()).then(|| {
        seal(
            ctx,
            &PageCursor {
                account: ctx.auth().account.id,
                ns: 0,
                mountable,
                limit,
                offset: next,
            },
        )
    });
    Ok(ListFoldersResult { entries, cursor })
}

pub(crate) async fn list_folders(ctx: &Ctx, a: ListFoldersArgs) -> Answer<ep::ListFolders> {
    check_limit(ctx, a.limit)?;
    Ok(folders(ctx, false, a.limit, 0).await?)
}

pub(crate) async fn list_mountable_folders(
    ctx: &Ctx,
    a: ListFoldersArgs,
) -> Answer<ep::ListMountableFolders> {
    check_limit(ctx, a.limit)?;
    Ok(folders(ctx, true, a.limit, 0).await?)
}

fn check_limit(ctx: &Ctx, limit: u32) -> ApiResult<()> {
    if (1..=1000).contains(&limit) {
        Ok(())
    } else {
        Err(ctx.bad_input(&format!(
            "request body: limit: {limit} is not within 1..1000"
        )))
    }
}

/// The next page of `list_folders` (or, `mountable`, of `list_mountable_folders`).
async fn folders_continue(
    ctx: &Ctx,
    cursor: &str,
    mountable: bool,
) -> Result<ListFoldersResult, Fail<ListFoldersContinueError>> {
    match open(ctx, cursor) {
        Some(c) if c.ns == 0 && c.mountable == mountable => {
            Ok(folders(ctx, mountable, c.limit, c.offset).await?)
        }
        _ => Err(Fail::Route(ListFoldersContinueError::InvalidCursor)),
    }
}

pub(crate) async fn list_folders_continue(
    ctx: &Ctx,
    a: ListFoldersContinueArg,
) -> Answer<ep::ListFoldersContinue> {
    folders_continue(ctx, &a.cursor, false).await
}

pub(crate) async fn list_mountable_folders_continue(
    ctx: &Ctx,
    a: ListFoldersContinueArg,
) -> Answer<ep::ListMountableFoldersContinue> {
    folders_continue(ctx, &a.cursor, true).await
}

/// The account a `MemberSelector` names: an account id, or an e-mail address (or, for
/// people naming each other, a user name).
async fn selected(
    ctx: &Ctx,
    s: &MemberSelector,
) -> ApiResult<Result<Account, AddMemberSelectorError>> {
    Ok(match s {
        MemberSelector::DropboxId { dropbox_id } => ctx
            .store()
            .account_by_account_id(dropbox_id)
            .await?
            .filter(|a| !a.disabled)
            .ok_or_else(|| AddMemberSelectorError::InvalidDropboxId {
                invalid_dropbox_id: dropbox_id.clone(),
            }),
        MemberSelector::Email { email } => ctx
            .store()
            .account_by_email_or_name(email)
            .await?
            .filter(|a| !a.disabled)
            .ok_or_else(|| AddMemberSelectorError::InvalidEmail {
                invalid_email: email.clone(),
            }),
        MemberSelector::Other => Err(AddMemberSelectorError::Other),
    })
}

fn store_access(a: &AccessLevel) -> Option<Access> {
    match a {
        AccessLevel::Editor => Some(Access::Editor),
        AccessLevel::Viewer | AccessLevel::ViewerNoComment => Some(Access::Viewer),
        _ => None,
    }
}

pub(crate) async fn add_folder_member(
    ctx: &Ctx,
    a: AddFolderMemberArg,
) -> Answer<ep::AddFolderMember> {
    use AddFolderMemberError as E;
    let m = member_or(ctx, &a.shared_folder_id, |e| E::AccessError {
        access_error: e,
    })
    .await?;
    if !manages(&m) {
        return Err(Fail::Route(E::NoPermission));
    }
    if a.members.len() > MAX_NEW_MEMBERS {
        return Err(Fail::Route(E::TooManyInvitees));
    }
    // Every member is checked before anyone is added.
    let mut adds = Vec::with_capacity(a.members.len());
    for add in &a.members {
        let account = selected(ctx, &add.member)
            .await?
            .map_err(|e| Fail::Route(E::BadMember { bad_member: e }))?;
        let Some(access) = store_access(&add.access_level) else {
            return Err(ctx
                .bad_input("request body: members: access_level must be editor or viewer")
                .into());
        };
        adds.push((account, access));
    }
    for (account, access) in adds {
        ctx.store()
            .add_folder_member(m.folder.ns, account.id, access)
            .await
            .map_err(unexpected)?;
    }
    Ok(Void)
}

/// The member a selector names, among the folder's members.
async fn folder_member(
    ctx: &Ctx,
    ns: u64,
    s: &MemberSelector,
) -> ApiResult<Result<(Account, Access), SharedFolderMemberError>> {
    let account = match selected(ctx, s).await? {
        Ok(a) => a,
        Err(_) => return Ok(Err(SharedFolderMemberError::InvalidDropboxId)),
    };
    Ok(match ctx.store().folder_access(ns, account.id).await? {
        Some(access) => Ok((account, access)),
        None => Err(SharedFolderMemberError::NotAMember),
    })
}

pub(crate) async fn update_folder_member(
    ctx: &Ctx,
    a: UpdateFolderMemberArg,
) -> Answer<ep::UpdateFolderMember> {
    use UpdateFolderMemberError as E;
    let m = member_or(ctx, &a.shared_folder_id, |e| E::AccessError {
        access_error: e,
    })
    .await?;
    if !manages(&m) {
        return Err(Fail::Route(E::NoPermission));
    }
    let (account, current) = folder_member(ctx, m.folder.ns, &a.member)
        .await?
        .map_err(|e| Fail::Route(E::MemberError { member_error: e }))?;
    let Some(access) = store_access(&a.access_level) else {
        return Err(ctx
            .bad_input("request body: access_level must be editor or viewer")
            .into());
    };
    if current == Access::Owner {
        return Err(Fail::Route(E::NoPermission));
    }
    ctx.store()
        .set_folder_access(m.folder.ns, account.id, access)
        .await
        .map_err(folder_failure)?;
    Ok(MemberAccessLevelResult {
        access_level: Some(access_level(access)),
        warning: None,
        access_details: None,
    })
}

pub(crate) async fn remove_folder_member(
    ctx: &Ctx,
    a: RemoveFolderMemberArg,
) -> Answer<ep::RemoveFolderMember> {
    use RemoveFolderMemberError as E;
    let m = member_or(ctx, &a.shared_folder_id, |e| E::AccessError {
        access_error: e,
    })
    .await?;
    let (account, current) = folder_member(ctx, m.folder.ns, &a.member)
        .await?
        .map_err(|e| Fail::Route(E::MemberError { member_error: e }))?;
    if current == Access::Owner {
        return Err(Fail::Route(E::FolderOwner));
    }
    // A member may always leave; removing another takes the right to manage members.
    if account.id != ctx.auth().account.id && !manages(&m) {
        return Err(Fail::Route(E::NoPermission));
    }
    let status = match ctx
        .store()
        .remove_folder_member(m.folder.ns, &account, a.leave_a_copy)
        .await
    {
        Ok(()) => RemoveMemberJobStatus::Complete(MemberAccessLevelResult {
            access_level: None,
            warning: None,
            access_details: None,
        }),
        Err(FolderError::Op(cubby_store::OpError::TooManyFiles)) => RemoveMemberJobStatus::Failed {
            failed: E::TooManyFiles,
        },
        Err(e) => return Err(folder_failure(e).into()),
    };
    Ok(LaunchResultBase::AsyncJobId {
        async_job_id: finished_job(ctx, &status).await?,
    })
}

pub(crate) async fn relinquish_folder_membership(
    ctx: &Ctx,
    a: RelinquishFolderMembershipArg,
) -> Answer<ep::RelinquishFolderMembership> {
    use RelinquishFolderMembershipError as E;
    let m = member_or(ctx, &a.shared_folder_id, |e| E::AccessError {
        access_error: e,
    })
    .await?;
    if m.access == Access::Owner {
        return Err(Fail::Route(E::FolderOwner));
    }
    match ctx
        .store()
        .remove_folder_member(m.folder.ns, &ctx.auth().account, a.leave_a_copy)
        .await
    {
        Ok(()) => Ok(Launch::Complete(Void)),
        Err(e) => Err(folder_failure(e).into()),
    }
}

pub(crate) async fn mount_folder(ctx: &Ctx, a: MountFolderArg) -> Answer<ep::MountFolder> {
    use MountFolderError as E;
    let m = member_or(ctx, &a.shared_folder_id, |e| E::AccessError {
        access_error: e,
    })
    .await?;
    match ctx
        .store()
        .mount_folder(m.folder.ns, &ctx.auth().account)
        .await
    {
        Ok(mounted) => Ok(folder_metadata(ctx, &mounted).await?),
        Err(FolderError::AlreadyMounted) => Err(Fail::Route(E::AlreadyMounted)),
        Err(FolderError::NotMember) => Err(Fail::Route(E::AccessError {
            access_error: SharedFolderAccessError::NotAMember,
        })),
        Err(FolderError::Op(cubby_store::OpError::InsufficientSpace)) => {
            let needed = ctx.store().space_used(m.folder.ns).await?;
            let used = crate::api::space_used_by(ctx.store(), &ctx.auth().account).await?;
            let quota = ctx.auth().account.quota.unwrap_or(u64::MAX);
            let left = quota.saturating_sub(used);
            Err(Fail::Route(E::InsufficientQuota(
                InsufficientQuotaAmounts {
                    space_needed: needed,
                    space_shortage: needed.saturating_sub(left),
                    space_left: left,
                },
            )))
        }
        Err(e) => Err(folder_failure(e).into()),
    }
}

pub(crate) async fn unmount_folder(ctx: &Ctx, a: UnmountFolderArg) -> Answer<ep::UnmountFolder> {
    use UnmountFolderError as E;
    let m = member_or(ctx, &a.shared_folder_id, |e| E::AccessError {
        access_error: e,
    })
    .await?;
    match ctx
        .store()
        .unmount_folder(m.folder.ns, &ctx.auth().account)
        .await
    {
        Ok(()) => Ok(Void),
        Err(FolderError::NotMounted) => Err(Fail::Route(E::AccessError {
            access_error: SharedFolderAccessError::Unmounted,
        })),
        Err(e) => Err(folder_failure(e).into()),
    }
}

pub(crate) async fn unshare_folder(ctx: &Ctx, a: UnshareFolderArg) -> Answer<ep::UnshareFolder> {
    use UnshareFolderError as E;
    let m = member_or(ctx, &a.shared_folder_id, |e| E::AccessError {
        access_error: e,
    })
    .await?;
    if m.access != Access::Owner {
        return Err(Fail::Route(E::NoPermission));
    }
    match ctx
        .store()
        .unshare_folder(m.folder.ns, a.leave_a_copy)
        .await
    {
        Ok(()) => Ok(Launch::Complete(Void)),
        Err(FolderError::Op(cubby_store::OpError::TooManyFiles)) => {
            Err(Fail::Route(E::TooManyFiles))
        }
        Err(e) => Err(folder_failure(e).into()),
    }
}

pub(crate) async fn transfer_folder(ctx: &Ctx, a: TransferFolderArg) -> Answer<ep::TransferFolder> {
    use TransferFolderError as E;
    let m = member_or(ctx, &a.shared_folder_id, |e| E::AccessError {
        access_error: e,
    })
    .await?;
    if m.access != Access::Owner {
        return Err(Fail::Route(E::NoPermission));
    }
    let Some(to) = ctx.store().account_by_account_id(&a.to_dropbox_id).await? else {
        return Err(Fail::Route(E::InvalidDropboxId));
    };
    match ctx.store().membership(m.folder.ns, to.id).await? {
        None => Err(Fail::Route(E::NewOwnerNotAMember)),
        Some(t) if t.mount.is_none() => Err(Fail::Route(E::NewOwnerUnmounted)),
        Some(_) => {
            ctx.store()
                .transfer_folder(m.folder.ns, to.id)
                .await
                .map_err(folder_failure)?;
            Ok(Void)
        }
    }
}

pub(crate) async fn update_folder_policy(
    ctx: &Ctx,
    a: UpdateFolderPolicyArg,
) -> Answer<ep::UpdateFolderPolicy> {
    use UpdateFolderPolicyError as E;
    let m = member_or(ctx, &a.shared_folder_id, |e| E::AccessError {
        access_error: e,
    })
    .await?;
    if m.access != Access::Owner {
        return Err(Fail::Route(E::NoPermission));
    }
    ctx.store()
        .set_folder_policy(
            m.folder.ns,
            a.member_policy.as_ref().and_then(tag_of),
            a.acl_update_policy.as_ref().and_then(tag_of),
            a.shared_link_policy.as_ref().and_then(tag_of),
        )
        .await
        .map_err(unexpected)?;
    let m = ctx
        .store()
        .membership(m.folder.ns, ctx.auth().account.id)
        .await?
        .ok_or(Fail::Route(E::AccessError {
            access_error: SharedFolderAccessError::NotAMember,
        }))?;
    Ok(folder_metadata(ctx, &m).await?)
}

pub(crate) async fn list_folder_members(
    ctx: &Ctx,
    a: ListFolderMembersArgs,
) -> Answer<ep::ListFolderMembers> {
    check_limit(ctx, a.limit)?;
    let m = member_of(ctx, &a.shared_folder_id)
        .await?
        .map_err(Fail::Route)?;
    Ok(members_page(ctx, m.folder.ns, a.limit, 0).await?)
}

/// One page of a folder's members, the owner first.
async fn members_page(
    ctx: &Ctx,
    ns: u64,
    limit: u32,
    offset: usize,
) -> ApiResult<SharedFolderMembers> {
    let all = ctx.store().folder_members(ns).await?;
    let users: Vec<UserMembershipInfo> = all
        .iter()
        .skip(offset)
        .take(limit as usize)
        .map(|member| UserMembershipInfo {
            access_type: access_level(member.access),
            permissions: None,
            initials: member
                .account
                .name
                .chars()
                .next()
                .map(|c| c.to_uppercase().collect()),
            is_inherited: false,
            user: UserInfo {
                account_id: member.account.account_id.clone(),
                email: member.account.email.clone(),
                display_name: member.account.name.clone(),
                same_team: false,
                team_member_id: None,
            },
        })
        .collect();
    let next = offset + users.len();
    let cursor = (next < all.len()).then(|| {
        seal(
            ctx,
            &PageCursor {
                account: ctx.auth().account.id,
                ns,
                mountable: false,
                limit,
                offset: next,
            },
        )
    });
    Ok(SharedFolderMembers {
        users,
        groups: Vec::new(),
        invitees: Vec::new(),
        cursor,
    })
}

pub(crate) async fn list_folder_members_continue(
    ctx: &Ctx,
    a: ListFolderMembersContinueArg,
) -> Answer<ep::ListFolderMembersContinue> {
    use ListFolderMembersContinueError as E;
    let Some(c) = open(ctx, &a.cursor).filter(|c| c.ns != 0) else {
        return Err(Fail::Route(E::InvalidCursor));
    };
    // Still a member (and still one this app may see).
    member_or(ctx, &c.ns.to_string(), |e| E::AccessError {
        access_error: e,
    })
    .await?;
    Ok(members_page(ctx, c.ns, c.limit, c.offset).await?)
}

/// The public face of an account, as `users/get_account` shows it.
fn basic_account(a: &Account) -> BasicAccount {
    let name = crate::api::users::account_name(&a.name);
    BasicAccount {
        account_id: a.account_id.clone(),
        name,
        email: a.email.clone(),
        email_verified: true,
        profile_photo_url: None,
        disabled: a.disabled,
        is_teammate: false,
        team_member_id: None,
    }
}

pub(crate) async fn get_account(ctx: &Ctx, a: GetAccountArg) -> Answer<ep::GetAccount> {
    match ctx.store().account_by_account_id(&a.account_id).await? {
        Some(acc) => Ok(basic_account(&acc)),
        None => Err(Fail::Route(GetAccountError::NoAccount)),
    }
}

pub(crate) async fn get_account_batch(
    ctx: &Ctx,
    a: GetAccountBatchArg,
) -> Answer<ep::GetAccountBatch> {
    if a.account_ids.is_empty() || a.account_ids.len() > 300 {
        return Err(ctx
            .bad_input("request body: account_ids: between 1 and 300 ids")
            .into());
    }
    let mut out = Vec::with_capacity(a.account_ids.len());
    for id in &a.account_ids {
        match ctx.store().account_by_account_id(id).await? {
            Some(acc) => out.push(basic_account(&acc)),
            None => {
                return Err(Fail::Route(GetAccountBatchError::NoAccount {
                    no_account: id.clone(),
                }));
            }
        }
    }
    Ok(out)
}
