//! Dropbox's wire types for shared folders (the folder routes of the `sharing` namespace) and
//! for looking accounts up (`users/get_account`, `users/get_account_batch`), as Rust types
//! both sides use.
//!
//! Names follow the Stone spec (`dropbox/dropbox-api-spec`, `sharing.stone`, `users.stone`,
//! `async.stone`), so a reader can look a type up. Unions are tagged by `.tag`; a struct
//! carried by a union member sits beside the tag, any other value under the member's name.
//! Arguments also accept a member without a value as a bare string (`"editors"` as well as
//! `{".tag": "editors"}`), as Dropbox's own examples send them; answers always use the
//! tagged form.
//!
//! The job checks (`check_job_status`, `check_remove_member_job_status`,
//! `check_share_job_status`) take [`crate::api::types::PollArg`] and fail with
//! [`crate::api::errors::PollError`], as the files batches do.

use serde::{Deserialize, Serialize};

use crate::api::types::{AccountName, Launch, Void};

fn is_false(b: &bool) -> bool {
    !*b
}

/// The `limit` of a listing that names none (`ListFoldersArgs`, `ListFolderMembersArgs`).
fn default_limit() -> u32 {
    1000
}

fn viewer() -> AccessLevel {
    AccessLevel::Viewer
}

/// Decoders for argument fields whose unions clients may send as bare strings.
mod bare {
    use serde::de::{DeserializeOwned, Error};
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    use super::AccessLevel;

    /// `"name"` as `{".tag": "name"}`; anything else as it is.
    fn tagged(v: Value) -> Value {
        match v {
            Value::String(tag) => serde_json::json!({ ".tag": tag }),
            v => v,
        }
    }

    fn decode<T: DeserializeOwned, E: Error>(v: Value) -> Result<T, E> {
        T::deserialize(tagged(v)).map_err(E::custom)
    }

    /// A required (or defaulted) union.
    pub fn one<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
        decode(Value::deserialize(d)?)
    }

    /// An optional union: `null` is absent.
    pub fn opt<'de, D: Deserializer<'de>, T: DeserializeOwned>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            v => decode(v).map(Some),
        }
    }

    /// An optional list of unions: `null` is absent.
    pub fn list<'de, D: Deserializer<'de>, T: DeserializeOwned>(
        d: D,
    ) -> Result<Option<Vec<T>>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::Array(items) => items
                .into_iter()
                .map(decode)
                .collect::<Result<_, _>>()
                .map(Some),
            v => Err(D::Error::custom(format!("expected a list, found {v}"))),
        }
    }

    /// `AddMember.access_level`: absent or `null` is `viewer`.
    pub fn access_level_or_viewer<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<AccessLevel, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(AccessLevel::Viewer),
            v => decode(v),
        }
    }
}

// ---- policies, access levels, actions ----------------------------------------------------

/// `AccessLevel`: a member's access to shared content.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum AccessLevel {
    Owner,
    Editor,
    Viewer,
    ViewerNoComment,
    Traverse,
    NoAccess,
    #[serde(other)]
    Other,
}

/// `MemberPolicy`: who may become a member of a shared folder (team folders only).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum MemberPolicy {
    Team,
    Anyone,
    TeamAndApproved,
    #[serde(other)]
    Other,
}

/// `AclUpdatePolicy`: who may add, remove and change members.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum AclUpdatePolicy {
    Owner,
    Editors,
    #[serde(other)]
    Other,
}

/// `SharedLinkPolicy`: who links to content inside a shared folder may be shared with.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum SharedLinkPolicy {
    Anyone,
    /// Deprecated in Stone.
    Team,
    Members,
    #[serde(other)]
    Other,
}

/// `ViewerInfoPolicy`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum ViewerInfoPolicy {
    Enabled,
    Disabled,
    #[serde(other)]
    Other,
}

/// `AccessInheritance`: whether a shared folder inherits its members from its parent.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum AccessInheritance {
    #[default]
    Inherit,
    NoInherit,
    #[serde(other)]
    Other,
}

/// `FolderAction`: what a caller may ask about (`actions`) and be told it may do
/// (`FolderPermission`) on a shared folder.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum FolderAction {
    ChangeOptions,
    DisableViewerInfo,
    EditContents,
    EnableViewerInfo,
    InviteEditor,
    InviteViewer,
    InviteViewerNoComment,
    RelinquishMembership,
    Unmount,
    Unshare,
    LeaveACopy,
    /// Deprecated in Stone.
    ShareLink,
    /// Deprecated in Stone.
    CreateLink,
    CreateViewLink,
    CreateEditLink,
    SetAccessInheritance,
    #[serde(other)]
    Other,
}

/// `MemberAction`: what a caller may ask about (`actions`) and be told it may do
/// (`MemberPermission`) to a member of a shared folder.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum MemberAction {
    LeaveACopy,
    MakeEditor,
    MakeOwner,
    MakeViewer,
    MakeViewerNoComment,
    Remove,
    #[serde(other)]
    Other,
}

/// `InsufficientPlan`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct InsufficientPlan {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upsell_url: Option<String>,
}

/// `PermissionDeniedReason`: why an action is not allowed.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum PermissionDeniedReason {
    UserNotSameTeamAsOwner,
    UserNotAllowedByOwner,
    TargetIsIndirectMember,
    TargetIsOwner,
    TargetIsSelf,
    TargetNotActive,
    FolderIsLimitedTeamFolder,
    OwnerNotOnTeam,
    PermissionDenied,
    RestrictedByTeam,
    UserAccountType,
    UserNotOnTeam,
    FolderIsInsideSharedFolder,
    RestrictedByParentFolder,
    InsufficientPlan(InsufficientPlan),
    #[serde(other)]
    Other,
}

/// `FolderPermission`: whether the caller may take an action on a shared folder.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct FolderPermission {
    pub action: FolderAction,
    pub allow: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<PermissionDeniedReason>,
}

/// `MemberPermission`: whether the caller may take an action on a member.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct MemberPermission {
    pub action: MemberAction,
    pub allow: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<PermissionDeniedReason>,
}

/// `FolderPolicy`: the policies of a shared folder.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct FolderPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_policy: Option<MemberPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_member_policy: Option<MemberPolicy>,
    pub acl_update_policy: AclUpdatePolicy,
    pub shared_link_policy: SharedLinkPolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewer_info_policy: Option<ViewerInfoPolicy>,
}

// ---- links on shared folders -------------------------------------------------------------

/// `LinkAudience`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum LinkAudience {
    Public,
    Team,
    NoOne,
    /// Deprecated in Stone.
    Password,
    /// Deprecated in Stone.
    Members,
    #[serde(other)]
    Other,
}

/// `LinkExpiry`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum LinkExpiry {
    RemoveExpiry,
    /// A `DropboxTimestamp` (`%Y-%m-%dT%H:%M:%SZ`).
    SetExpiry {
        set_expiry: String,
    },
    #[serde(other)]
    Other,
}

/// `LinkPassword`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum LinkPassword {
    RemovePassword,
    SetPassword {
        set_password: String,
    },
    #[serde(other)]
    Other,
}

/// `LinkSettings`: the settings of the link on a shared folder (`share_folder`,
/// `update_folder_policy`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct LinkSettings {
    #[serde(
        default,
        deserialize_with = "bare::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_level: Option<AccessLevel>,
    #[serde(
        default,
        deserialize_with = "bare::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub audience: Option<LinkAudience>,
    #[serde(
        default,
        deserialize_with = "bare::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub expiry: Option<LinkExpiry>,
    #[serde(
        default,
        deserialize_with = "bare::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub password: Option<LinkPassword>,
}

// ---- shared folder metadata --------------------------------------------------------------

/// `users.Team`: the team that owns a shared folder.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Team {
    pub id: String,
    pub name: String,
}

/// `SharedFolderMetadata` (with the fields of `SharedFolderMetadataBase`). `time_invited` is
/// a `DropboxTimestamp`; `link_metadata` (a `SharedContentLinkMetadata`) is kept as JSON.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct SharedFolderMetadata {
    pub access_type: AccessLevel,
    pub is_inside_team_folder: bool,
    pub is_team_folder: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_display_names: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_team: Option<Team>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_shared_folder_id: Option<String>,
    /// Absent for an unmounted folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_display: Option<String>,
    /// Absent for an unmounted folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_lower: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_folder_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_metadata: Option<serde_json::Value>,
    pub name: String,
    /// The answers to the argument's `actions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<FolderPermission>>,
    pub policy: FolderPolicy,
    pub preview_url: String,
    pub shared_folder_id: String,
    pub time_invited: String,
    #[serde(default)]
    pub access_inheritance: AccessInheritance,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder_id: Option<String>,
}

/// `FileSharingInfo`: the `sharing_info` of a file inside a shared folder.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct FileSharingInfo {
    pub read_only: bool,
    pub parent_shared_folder_id: String,
    /// The account that last modified the file; absent once that account is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_by: Option<String>,
}

/// `FolderSharingInfo`: the `sharing_info` of a folder inside a shared folder or of a shared
/// folder's mount point.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct FolderSharingInfo {
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_shared_folder_id: Option<String>,
    /// Set at a mount point: the shared folder mounted there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_folder_id: Option<String>,
    #[serde(default)]
    pub traverse_only: bool,
    #[serde(default)]
    pub no_access: bool,
}

// ---- async launches and job statuses -----------------------------------------------------

/// `async.LaunchResultBase` (`remove_folder_member`): always a job to poll.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum LaunchResultBase {
    AsyncJobId { async_job_id: String },
}

/// `async.LaunchEmptyResult` (`unshare_folder`, `relinquish_folder_membership`): a job to
/// poll, or `{".tag": "complete"}`.
pub type LaunchEmptyResult = Launch<Void>;

/// `ShareFolderLaunch` (`share_folder`, `set_access_inheritance`): a job to poll, or the new
/// shared folder's metadata beside the `complete` tag.
pub type ShareFolderLaunch = Launch<SharedFolderMetadata>;

/// `ShareFolderJobStatus` (`check_share_job_status`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum ShareFolderJobStatus {
    InProgress,
    Complete(Box<SharedFolderMetadata>),
    Failed { failed: ShareFolderError },
}

/// `RemoveMemberJobStatus` (`check_remove_member_job_status`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum RemoveMemberJobStatus {
    InProgress,
    Complete(MemberAccessLevelResult),
    Failed { failed: RemoveFolderMemberError },
}

/// `sharing.JobStatus` (`check_job_status`, for `unshare_folder`, `remove_folder_member` and
/// `relinquish_folder_membership`); renamed so as not to clash with
/// [`crate::api::types::JobStatus`].
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum SharingJobStatus {
    InProgress,
    Complete,
    Failed { failed: JobError },
}

/// `JobError`: why a `check_job_status` job failed.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum JobError {
    UnshareFolderError {
        unshare_folder_error: UnshareFolderError,
    },
    RemoveFolderMemberError {
        remove_folder_member_error: RemoveFolderMemberError,
    },
    RelinquishFolderMembershipError {
        relinquish_folder_membership_error: RelinquishFolderMembershipError,
    },
    #[serde(other)]
    Other,
}

// ---- share_folder ------------------------------------------------------------------------

/// `ShareFolderArg` (with the fields of `ShareFolderArgBase`). `path` is a path or a file id;
/// a folder that does not exist is created.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ShareFolderArg {
    pub path: String,
    #[serde(
        default,
        deserialize_with = "bare::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub acl_update_policy: Option<AclUpdatePolicy>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub force_async: bool,
    #[serde(
        default,
        deserialize_with = "bare::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub member_policy: Option<MemberPolicy>,
    #[serde(
        default,
        deserialize_with = "bare::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub shared_link_policy: Option<SharedLinkPolicy>,
    #[serde(
        default,
        deserialize_with = "bare::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub viewer_info_policy: Option<ViewerInfoPolicy>,
    #[serde(default, deserialize_with = "bare::one")]
    pub access_inheritance: AccessInheritance,
    #[serde(
        default,
        deserialize_with = "bare::list",
        skip_serializing_if = "Option::is_none"
    )]
    pub actions: Option<Vec<FolderAction>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_settings: Option<LinkSettings>,
}

/// `ShareFolderError` (with the members of `ShareFolderErrorBase`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum ShareFolderError {
    EmailUnverified,
    BadPath {
        bad_path: SharePathError,
    },
    TeamPolicyDisallowsMemberPolicy,
    DisallowedSharedLinkPolicy,
    NoPermission,
    #[serde(other)]
    Other,
}

/// `SharePathError`: why a path cannot be shared.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum SharePathError {
    IsFile,
    InsideSharedFolder,
    ContainsSharedFolder,
    ContainsAppFolder,
    ContainsTeamFolder,
    IsAppFolder,
    InsideAppFolder,
    IsPublicFolder,
    InsidePublicFolder,
    /// The folder is shared already: its metadata sits beside the tag.
    AlreadyShared(Box<SharedFolderMetadata>),
    InvalidPath,
    IsOsxPackage,
    InsideOsxPackage,
    IsVault,
    IsVaultLocked,
    IsFamily,
    #[serde(other)]
    Other,
}

/// `SetAccessInheritanceArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct SetAccessInheritanceArg {
    #[serde(default, deserialize_with = "bare::one")]
    pub access_inheritance: AccessInheritance,
    pub shared_folder_id: String,
}

/// `SetAccessInheritanceError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum SetAccessInheritanceError {
    AccessError {
        access_error: SharedFolderAccessError,
    },
    NoPermission,
    #[serde(other)]
    Other,
}

// ---- access to a shared folder -----------------------------------------------------------

/// `SharedFolderAccessError`: the caller cannot reach the shared folder (also the error of
/// `get_folder_metadata` and `list_folder_members`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum SharedFolderAccessError {
    InvalidId,
    NotAMember,
    InvalidMember,
    /// Deprecated in Stone ("never set").
    EmailUnverified,
    Unmounted,
    #[serde(other)]
    Other,
}

/// `SharedFolderMemberError`: the member named is not one the action can apply to.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum SharedFolderMemberError {
    InvalidDropboxId,
    NotAMember,
    /// The member only has access through a parent folder: that access beside the tag.
    NoExplicitAccess(MemberAccessLevelResult),
    #[serde(other)]
    Other,
}

// ---- unshare, transfer, policies, metadata -----------------------------------------------

/// `UnshareFolderArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct UnshareFolderArg {
    pub shared_folder_id: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub leave_a_copy: bool,
}

/// `UnshareFolderError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum UnshareFolderError {
    AccessError {
        access_error: SharedFolderAccessError,
    },
    TeamFolder,
    NoPermission,
    TooManyFiles,
    #[serde(other)]
    Other,
}

/// `TransferFolderArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct TransferFolderArg {
    pub shared_folder_id: String,
    pub to_dropbox_id: String,
}

/// `TransferFolderError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum TransferFolderError {
    AccessError {
        access_error: SharedFolderAccessError,
    },
    InvalidDropboxId,
    NewOwnerNotAMember,
    NewOwnerUnmounted,
    NewOwnerEmailUnverified,
    TeamFolder,
    NoPermission,
    #[serde(other)]
    Other,
}

/// `UpdateFolderPolicyArg`: a policy left out keeps its current setting.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct UpdateFolderPolicyArg {
    pub shared_folder_id: String,
    #[serde(
        default,
        deserialize_with = "bare::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub member_policy: Option<MemberPolicy>,
    #[serde(
        default,
        deserialize_with = "bare::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub acl_update_policy: Option<AclUpdatePolicy>,
    #[serde(
        default,
        deserialize_with = "bare::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub viewer_info_policy: Option<ViewerInfoPolicy>,
    #[serde(
        default,
        deserialize_with = "bare::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub shared_link_policy: Option<SharedLinkPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_settings: Option<LinkSettings>,
    #[serde(
        default,
        deserialize_with = "bare::list",
        skip_serializing_if = "Option::is_none"
    )]
    pub actions: Option<Vec<FolderAction>>,
}

/// `UpdateFolderPolicyError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum UpdateFolderPolicyError {
    AccessError {
        access_error: SharedFolderAccessError,
    },
    NotOnTeam,
    TeamPolicyDisallowsMemberPolicy,
    DisallowedSharedLinkPolicy,
    NoPermission,
    TeamFolder,
    #[serde(other)]
    Other,
}

/// `GetMetadataArgs` (`get_folder_metadata`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct GetMetadataArgs {
    pub shared_folder_id: String,
    #[serde(
        default,
        deserialize_with = "bare::list",
        skip_serializing_if = "Option::is_none"
    )]
    pub actions: Option<Vec<FolderAction>>,
}

// ---- list_folders, list_mountable_folders ------------------------------------------------

/// `ListFoldersArgs` (`list_folders`, `list_mountable_folders`). `limit` is 1 to 1000.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ListFoldersArgs {
    #[serde(default = "default_limit")]
    pub limit: u32,
    #[serde(
        default,
        deserialize_with = "bare::list",
        skip_serializing_if = "Option::is_none"
    )]
    pub actions: Option<Vec<FolderAction>>,
}

impl Default for ListFoldersArgs {
    fn default() -> Self {
        Self {
            limit: default_limit(),
            actions: None,
        }
    }
}

/// `ListFoldersResult`: an unmounted folder has no `path_lower`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ListFoldersResult {
    pub entries: Vec<SharedFolderMetadata>,
    /// Present while there are more folders to list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `ListFoldersContinueArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ListFoldersContinueArg {
    pub cursor: String,
}

/// `ListFoldersContinueError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum ListFoldersContinueError {
    InvalidCursor,
    #[serde(other)]
    Other,
}

// ---- members -----------------------------------------------------------------------------

/// `MemberSelector`: a member by Dropbox id (account, team member or group) or by email.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum MemberSelector {
    DropboxId {
        dropbox_id: String,
    },
    Email {
        email: String,
    },
    #[serde(other)]
    Other,
}

/// `AddMember`: a member to add and the access to grant (`owner` is refused).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct AddMember {
    pub member: MemberSelector,
    #[serde(default = "viewer", deserialize_with = "bare::access_level_or_viewer")]
    pub access_level: AccessLevel,
}

/// `AddFolderMemberArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct AddFolderMemberArg {
    pub shared_folder_id: String,
    pub members: Vec<AddMember>,
    /// No email or device notification to the members added.
    #[serde(default, skip_serializing_if = "is_false")]
    pub quiet: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_message: Option<String>,
}

/// `AddFolderMemberError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum AddFolderMemberError {
    AccessError {
        access_error: SharedFolderAccessError,
    },
    EmailUnverified,
    BannedMember,
    BadMember {
        bad_member: AddMemberSelectorError,
    },
    CantShareOutsideTeam,
    /// The member limit reached.
    TooManyMembers {
        #[serde(default)]
        too_many_members: u64,
    },
    /// The pending invite limit reached.
    TooManyPendingInvites {
        #[serde(default)]
        too_many_pending_invites: u64,
    },
    RateLimit,
    TooManyInvitees,
    InsufficientPlan,
    TeamFolder,
    NoPermission,
    /// Deprecated in Stone (sent as `access_error`).
    InvalidSharedFolder,
    #[serde(other)]
    Other,
}

/// `AddMemberSelectorError`: which member of `AddFolderMemberArg.members` is bad, and why.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum AddMemberSelectorError {
    AutomaticGroup,
    InvalidDropboxId {
        invalid_dropbox_id: String,
    },
    InvalidEmail {
        invalid_email: String,
    },
    InvalidGroup,
    UnverifiedDropboxId {
        unverified_dropbox_id: String,
    },
    GroupDeleted,
    GroupNotOnTeam,
    #[serde(other)]
    Other,
}

/// `UpdateFolderMemberArg` (`owner` is refused as the new level).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct UpdateFolderMemberArg {
    pub shared_folder_id: String,
    pub member: MemberSelector,
    #[serde(deserialize_with = "bare::one")]
    pub access_level: AccessLevel,
}

/// `ParentFolderAccessInfo`: a parent folder through which a member has access.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct ParentFolderAccessInfo {
    pub folder_name: String,
    pub shared_folder_id: String,
    pub permissions: Vec<MemberPermission>,
    pub path: String,
}

/// `MemberAccessLevelResult`: the access a member keeps after an operation (through a parent
/// folder), if any.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct MemberAccessLevelResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_level: Option<AccessLevel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_details: Option<Vec<ParentFolderAccessInfo>>,
}

/// `UpdateFolderMemberError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum UpdateFolderMemberError {
    AccessError {
        access_error: SharedFolderAccessError,
    },
    MemberError {
        member_error: SharedFolderMemberError,
    },
    /// Adding the member (as the change required) failed.
    NoExplicitAccess {
        no_explicit_access: AddFolderMemberError,
    },
    InsufficientPlan,
    NoPermission,
    #[serde(other)]
    Other,
}

/// `RemoveFolderMemberArg`. `leave_a_copy` has no default in Stone: it must be sent.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct RemoveFolderMemberArg {
    pub shared_folder_id: String,
    pub member: MemberSelector,
    pub leave_a_copy: bool,
}

/// `RemoveFolderMemberError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum RemoveFolderMemberError {
    AccessError {
        access_error: SharedFolderAccessError,
    },
    MemberError {
        member_error: SharedFolderMemberError,
    },
    FolderOwner,
    GroupAccess,
    TeamFolder,
    NoPermission,
    TooManyFiles,
    #[serde(other)]
    Other,
}

// ---- list_folder_members -----------------------------------------------------------------

/// `ListFolderMembersArgs` (with the fields of `ListFolderMembersCursorArg`). `limit` is 1
/// to 1000 and counts users, groups and invitees together; `path`, when given, names the
/// folder instead of `shared_folder_id` and asks for the members inherited from parents.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ListFolderMembersArgs {
    pub shared_folder_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(
        default,
        deserialize_with = "bare::list",
        skip_serializing_if = "Option::is_none"
    )]
    pub actions: Option<Vec<MemberAction>>,
    #[serde(default = "default_limit")]
    pub limit: u32,
}

/// `ListFolderMembersContinueArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ListFolderMembersContinueArg {
    pub cursor: String,
}

/// `ListFolderMembersContinueError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum ListFolderMembersContinueError {
    AccessError {
        access_error: SharedFolderAccessError,
    },
    InvalidCursor,
    #[serde(other)]
    Other,
}

/// `UserInfo`: a member as `list_folder_members` shows it (`users/get_account` tells more).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct UserInfo {
    pub account_id: String,
    pub email: String,
    pub display_name: String,
    pub same_team: bool,
    /// Only when `same_team`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_member_id: Option<String>,
}

/// `UserMembershipInfo` (with the fields of `MembershipInfo`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct UserMembershipInfo {
    pub access_type: AccessLevel,
    /// The answers to the argument's `actions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<MemberPermission>>,
    /// Deprecated in Stone ("never set").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initials: Option<String>,
    /// Access through a parent folder.
    #[serde(default)]
    pub is_inherited: bool,
    pub user: UserInfo,
}

/// `InviteeInfo`: who an invitation went to.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum InviteeInfo {
    Email {
        email: String,
    },
    #[serde(other)]
    Other,
}

/// `InviteeMembershipInfo` (with the fields of `MembershipInfo`): an invitation not yet
/// accepted.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct InviteeMembershipInfo {
    pub access_type: AccessLevel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<MemberPermission>>,
    /// Deprecated in Stone ("never set").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initials: Option<String>,
    #[serde(default)]
    pub is_inherited: bool,
    pub invitee: InviteeInfo,
    /// The account the invitation is tied to, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserInfo>,
}

/// `SharedFolderMembers`. `groups` (`GroupMembershipInfo`s) is kept as JSON.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct SharedFolderMembers {
    pub users: Vec<UserMembershipInfo>,
    pub groups: Vec<serde_json::Value>,
    pub invitees: Vec<InviteeMembershipInfo>,
    /// Present while there are more members to list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

// ---- relinquish, mount, unmount ----------------------------------------------------------

/// `RelinquishFolderMembershipArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct RelinquishFolderMembershipArg {
    pub shared_folder_id: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub leave_a_copy: bool,
}

/// `RelinquishFolderMembershipError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum RelinquishFolderMembershipError {
    AccessError {
        access_error: SharedFolderAccessError,
    },
    FolderOwner,
    Mounted,
    GroupAccess,
    TeamFolder,
    NoPermission,
    NoExplicitAccess,
    #[serde(other)]
    Other,
}

/// `MountFolderArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct MountFolderArg {
    pub shared_folder_id: String,
}

/// `InsufficientQuotaAmounts`, in bytes.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct InsufficientQuotaAmounts {
    pub space_needed: u64,
    pub space_shortage: u64,
    pub space_left: u64,
}

/// `MountFolderError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum MountFolderError {
    AccessError {
        access_error: SharedFolderAccessError,
    },
    InsideSharedFolder,
    /// The amounts sit beside the tag.
    InsufficientQuota(InsufficientQuotaAmounts),
    AlreadyMounted,
    NoPermission,
    NotMountable,
    MustAutomount,
    #[serde(other)]
    Other,
}

/// `UnmountFolderArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct UnmountFolderArg {
    pub shared_folder_id: String,
}

/// `UnmountFolderError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum UnmountFolderError {
    AccessError {
        access_error: SharedFolderAccessError,
    },
    NoPermission,
    NotUnmountable,
    #[serde(other)]
    Other,
}

// ---- users: other accounts ---------------------------------------------------------------

/// `users.GetAccountArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct GetAccountArg {
    pub account_id: String,
}

/// `users.BasicAccount` (with the fields of `users.Account`): another account as the caller
/// may see it.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct BasicAccount {
    pub account_id: String,
    pub name: AccountName,
    pub email: String,
    pub email_verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_photo_url: Option<String>,
    pub disabled: bool,
    pub is_teammate: bool,
    /// Only for a teammate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_member_id: Option<String>,
}

/// `users.GetAccountError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum GetAccountError {
    NoAccount,
    #[serde(other)]
    Other,
}

/// `users.GetAccountBatchArg`: at least one id, no id twice (at most 300 per request).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct GetAccountBatchArg {
    pub account_ids: Vec<String>,
}

/// `users.GetAccountBatchResult`: one account per id, in order.
pub type GetAccountBatchResult = Vec<BasicAccount>;

/// `users.GetAccountBatchError`: the first id that names no account.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum GetAccountBatchError {
    NoAccount {
        no_account: String,
    },
    #[serde(other)]
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};

    /// Decodes `v` as a `T` and checks that it encodes back to `v` exactly.
    fn round_trip<T: Serialize + DeserializeOwned>(v: Value) -> T {
        let t: T = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&t).unwrap(), v);
        t
    }

    /// `SharedFolderMetadata`'s default example in Stone, with every field set.
    fn metadata_json() -> Value {
        json!({
            "access_type": {".tag": "owner"},
            "is_inside_team_folder": false,
            "is_team_folder": false,
            "owner_display_names": ["Jane Doe"],
            "owner_team": {"id": "dbtid:AAFdgehTzw7WlXhZJsbGCLePe8RvQGYDr-I", "name": "Acme, Inc."},
            "parent_shared_folder_id": "84528192420",
            "path_display": "/Dir",
            "path_lower": "/dir",
            "parent_folder_name": "Parent Shared Folder",
            "link_metadata": {
                "audience_options": [{".tag": "public"}, {".tag": "team"}, {".tag": "members"}],
                "current_audience": {".tag": "public"},
                "link_permissions": [{"action": {".tag": "change_audience"}, "allow": true}],
                "password_protected": false,
                "url": ""
            },
            "name": "dir",
            "permissions": [
                {"action": {".tag": "edit_contents"}, "allow": true},
                {
                    "action": {".tag": "invite_editor"},
                    "allow": false,
                    "reason": {".tag": "user_not_same_team_as_owner"}
                },
                {
                    "action": {".tag": "set_access_inheritance"},
                    "allow": false,
                    "reason": {
                        ".tag": "insufficient_plan",
                        "message": "Upgrade",
                        "upsell_url": "https://www.dropbox.com/plans"
                    }
                }
            ],
            "policy": {
                "member_policy": {".tag": "anyone"},
                "resolved_member_policy": {".tag": "team"},
                "acl_update_policy": {".tag": "owner"},
                "shared_link_policy": {".tag": "anyone"},
                "viewer_info_policy": {".tag": "enabled"}
            },
            "preview_url": "https://www.dropbox.com/scl/fo/fir9vjelf",
            "shared_folder_id": "84528192421",
            "time_invited": "2016-01-20T00:00:00Z",
            "access_inheritance": {".tag": "inherit"},
            "folder_id": "id:a4ayc_80_OEAAAAAAAAAXw"
        })
    }

    #[test]
    fn shared_folder_metadata_round_trips() {
        let m: SharedFolderMetadata = round_trip(metadata_json());
        assert_eq!(m.access_type, AccessLevel::Owner);
        assert_eq!(m.policy.resolved_member_policy, Some(MemberPolicy::Team));
        let perms = m.permissions.unwrap();
        assert_eq!(
            perms[1].reason,
            Some(PermissionDeniedReason::UserNotSameTeamAsOwner)
        );
        assert!(matches!(
            &perms[2].reason,
            Some(PermissionDeniedReason::InsufficientPlan(p)) if p.message == "Upgrade"
        ));
        // The least Dropbox sends: access_inheritance defaults to inherit.
        let least = json!({
            "access_type": {".tag": "editor"},
            "is_inside_team_folder": false,
            "is_team_folder": false,
            "name": "dir",
            "policy": {
                "acl_update_policy": {".tag": "editors"},
                "shared_link_policy": {".tag": "members"}
            },
            "preview_url": "https://www.dropbox.com/scl/fo/x",
            "shared_folder_id": "1",
            "time_invited": "2016-01-20T00:00:00Z"
        });
        let m: SharedFolderMetadata = serde_json::from_value(least).unwrap();
        assert_eq!(m.access_inheritance, AccessInheritance::Inherit);
        assert_eq!(m.path_lower, None);
    }

    #[test]
    fn share_folder_launch_both_arms() {
        let l: ShareFolderLaunch =
            round_trip(json!({".tag": "async_job_id", "async_job_id": "34g93hh34h04y384084"}));
        assert!(
            matches!(l, Launch::AsyncJobId { async_job_id } if async_job_id == "34g93hh34h04y384084")
        );
        let mut complete = metadata_json();
        complete[".tag"] = json!("complete");
        let l: ShareFolderLaunch = round_trip(complete);
        assert!(matches!(l, Launch::Complete(m) if m.shared_folder_id == "84528192421"));
    }

    #[test]
    fn share_folder_job_status() {
        let s: ShareFolderJobStatus = round_trip(json!({".tag": "in_progress"}));
        assert_eq!(s, ShareFolderJobStatus::InProgress);
        let mut complete = metadata_json();
        complete[".tag"] = json!("complete");
        let s: ShareFolderJobStatus = round_trip(complete);
        assert!(matches!(s, ShareFolderJobStatus::Complete(m) if m.name == "dir"));

        let mut shared = metadata_json();
        shared[".tag"] = json!("already_shared");
        let v = json!({
            ".tag": "failed",
            "failed": {".tag": "bad_path", "bad_path": shared}
        });
        let s: ShareFolderJobStatus = round_trip(v);
        let ShareFolderJobStatus::Failed {
            failed:
                ShareFolderError::BadPath {
                    bad_path: SharePathError::AlreadyShared(m),
                },
        } = s
        else {
            panic!("{s:?}");
        };
        assert_eq!(m.shared_folder_id, "84528192421");

        let v = json!({".tag": "bad_path", "bad_path": {".tag": "inside_shared_folder"}});
        assert_eq!(
            crate::wire::error_summary(&v),
            "bad_path/inside_shared_folder/"
        );
        let e: ShareFolderError = round_trip(v);
        assert_eq!(
            e,
            ShareFolderError::BadPath {
                bad_path: SharePathError::InsideSharedFolder
            }
        );
    }

    #[test]
    fn launch_empty_and_base() {
        let l: LaunchEmptyResult = round_trip(json!({".tag": "complete"}));
        assert!(matches!(l, Launch::Complete(Void)));
        let l: LaunchEmptyResult = round_trip(json!({".tag": "async_job_id", "async_job_id": "j"}));
        assert!(matches!(l, Launch::AsyncJobId { .. }));
        let l: LaunchResultBase = round_trip(json!({".tag": "async_job_id", "async_job_id": "j"}));
        assert_eq!(
            l,
            LaunchResultBase::AsyncJobId {
                async_job_id: "j".into()
            }
        );
    }

    #[test]
    fn add_folder_member_bad_member() {
        let v = json!({
            ".tag": "bad_member",
            "bad_member": {".tag": "invalid_email", "invalid_email": "not-an-email"}
        });
        let e: AddFolderMemberError = round_trip(v.clone());
        assert_eq!(
            e,
            AddFolderMemberError::BadMember {
                bad_member: AddMemberSelectorError::InvalidEmail {
                    invalid_email: "not-an-email".into()
                }
            }
        );
        assert_eq!(crate::wire::error_summary(&v), "bad_member/invalid_email/");
        let e: AddFolderMemberError =
            round_trip(json!({".tag": "too_many_members", "too_many_members": 1000}));
        assert_eq!(
            e,
            AddFolderMemberError::TooManyMembers {
                too_many_members: 1000
            }
        );
        let e: AddFolderMemberError = round_trip(json!({
            ".tag": "access_error",
            "access_error": {".tag": "invalid_id"}
        }));
        assert_eq!(
            e,
            AddFolderMemberError::AccessError {
                access_error: SharedFolderAccessError::InvalidId
            }
        );
    }

    #[test]
    fn mount_folder_insufficient_quota() {
        let e: MountFolderError = round_trip(json!({
            ".tag": "insufficient_quota",
            "space_needed": 100,
            "space_shortage": 40,
            "space_left": 60
        }));
        assert_eq!(
            e,
            MountFolderError::InsufficientQuota(InsufficientQuotaAmounts {
                space_needed: 100,
                space_shortage: 40,
                space_left: 60
            })
        );
    }

    #[test]
    fn member_selector_and_add_member() {
        let s: MemberSelector = round_trip(json!({".tag": "email", "email": "justin@example.com"}));
        assert_eq!(
            s,
            MemberSelector::Email {
                email: "justin@example.com".into()
            }
        );
        let s: MemberSelector = round_trip(json!({
            ".tag": "dropbox_id",
            "dropbox_id": "dbid:AAEufNrMPSPe0dMQijRP0N_aZtBJRm26W4Q"
        }));
        assert!(matches!(s, MemberSelector::DropboxId { .. }));

        // No access level (or null) is viewer; a bare string is read like a tagged one.
        let member = json!({".tag": "email", "email": "justin@example.com"});
        for v in [
            json!({"member": member}),
            json!({"member": member, "access_level": null}),
        ] {
            let a: AddMember = serde_json::from_value(v).unwrap();
            assert_eq!(a.access_level, AccessLevel::Viewer);
        }
        let a: AddMember =
            serde_json::from_value(json!({"member": member, "access_level": "editor"})).unwrap();
        assert_eq!(a.access_level, AccessLevel::Editor);
        let a: AddMember =
            round_trip(json!({"member": member, "access_level": {".tag": "editor"}}));
        assert_eq!(a.access_level, AccessLevel::Editor);

        let arg: AddFolderMemberArg = serde_json::from_value(json!({
            "shared_folder_id": "84528192421",
            "members": [{"member": member, "access_level": "editor"}, {"member": member}],
            "custom_message": "Documentation for launch day"
        }))
        .unwrap();
        assert!(!arg.quiet);
        assert_eq!(arg.members[1].access_level, AccessLevel::Viewer);
    }

    #[test]
    fn arguments_read_bare_and_tagged_unions() {
        // Dropbox's own example for share_folder sends the policies as bare strings.
        let a: ShareFolderArg = serde_json::from_value(json!({
            "access_inheritance": "inherit",
            "acl_update_policy": "editors",
            "force_async": false,
            "member_policy": "team",
            "path": "/example/workspace",
            "shared_link_policy": {".tag": "members"},
            "actions": ["edit_contents", {".tag": "unshare"}, "new_in_2030"],
            "link_settings": {"audience": "public", "expiry": {".tag": "remove_expiry"}}
        }))
        .unwrap();
        assert_eq!(a.acl_update_policy, Some(AclUpdatePolicy::Editors));
        assert_eq!(a.member_policy, Some(MemberPolicy::Team));
        assert_eq!(a.shared_link_policy, Some(SharedLinkPolicy::Members));
        assert_eq!(
            a.actions,
            Some(vec![
                FolderAction::EditContents,
                FolderAction::Unshare,
                FolderAction::Other
            ])
        );
        let ls = a.link_settings.unwrap();
        assert_eq!(ls.audience, Some(LinkAudience::Public));
        assert_eq!(ls.expiry, Some(LinkExpiry::RemoveExpiry));

        let a: ShareFolderArg = serde_json::from_value(json!({"path": "/w"})).unwrap();
        assert_eq!(a.access_inheritance, AccessInheritance::Inherit);
        assert!(!a.force_async && a.actions.is_none());
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            json!({"path": "/w", "access_inheritance": {".tag": "inherit"}})
        );

        let l: ListFoldersArgs = serde_json::from_value(json!({})).unwrap();
        assert_eq!(l.limit, 1000);
        let l: ListFolderMembersArgs =
            serde_json::from_value(json!({"shared_folder_id": "1", "actions": ["make_owner"]}))
                .unwrap();
        assert_eq!(l.limit, 1000);
        assert_eq!(l.actions, Some(vec![MemberAction::MakeOwner]));
        let u: UpdateFolderMemberArg = serde_json::from_value(json!({
            "shared_folder_id": "1",
            "member": {".tag": "dropbox_id", "dropbox_id": "dbid:x"},
            "access_level": "viewer_no_comment"
        }))
        .unwrap();
        assert_eq!(u.access_level, AccessLevel::ViewerNoComment);
    }

    #[test]
    fn remove_member_job_status() {
        let s: RemoveMemberJobStatus = round_trip(json!({".tag": "complete"}));
        assert_eq!(
            s,
            RemoveMemberJobStatus::Complete(MemberAccessLevelResult::default())
        );
        let s: RemoveMemberJobStatus = round_trip(json!({
            ".tag": "complete",
            "access_level": {".tag": "viewer"},
            "warning": "Still a viewer through a parent folder",
            "access_details": [{
                "folder_name": "Shared Folder",
                "shared_folder_id": "84528192421",
                "permissions": [{"action": {".tag": "remove"}, "allow": false, "reason": {".tag": "target_is_indirect_member"}}],
                "path": "/Shared Folder"
            }]
        }));
        let RemoveMemberJobStatus::Complete(r) = s else {
            panic!("{s:?}");
        };
        assert_eq!(r.access_level, Some(AccessLevel::Viewer));
        let s: RemoveMemberJobStatus = round_trip(json!({
            ".tag": "failed",
            "failed": {".tag": "member_error", "member_error": {".tag": "not_a_member"}}
        }));
        assert_eq!(
            s,
            RemoveMemberJobStatus::Failed {
                failed: RemoveFolderMemberError::MemberError {
                    member_error: SharedFolderMemberError::NotAMember
                }
            }
        );
        let e: SharedFolderMemberError =
            round_trip(json!({".tag": "no_explicit_access", "access_level": {".tag": "editor"}}));
        assert!(
            matches!(e, SharedFolderMemberError::NoExplicitAccess(r) if r.access_level == Some(AccessLevel::Editor))
        );
    }

    #[test]
    fn sharing_job_status() {
        let s: SharingJobStatus = round_trip(json!({".tag": "complete"}));
        assert_eq!(s, SharingJobStatus::Complete);
        let v = json!({
            ".tag": "failed",
            "failed": {
                ".tag": "unshare_folder_error",
                "unshare_folder_error": {
                    ".tag": "access_error",
                    "access_error": {".tag": "not_a_member"}
                }
            }
        });
        assert_eq!(
            crate::wire::error_summary(&v),
            "failed/unshare_folder_error/access_error/not_a_member/"
        );
        let s: SharingJobStatus = round_trip(v);
        assert_eq!(
            s,
            SharingJobStatus::Failed {
                failed: JobError::UnshareFolderError {
                    unshare_folder_error: UnshareFolderError::AccessError {
                        access_error: SharedFolderAccessError::NotAMember
                    }
                }
            }
        );
        let s: SharingJobStatus = round_trip(json!({
            ".tag": "failed",
            "failed": {
                ".tag": "relinquish_folder_membership_error",
                "relinquish_folder_membership_error": {".tag": "folder_owner"}
            }
        }));
        assert!(matches!(
            s,
            SharingJobStatus::Failed {
                failed: JobError::RelinquishFolderMembershipError { .. }
            }
        ));
    }

    #[test]
    fn unknown_members_read_as_other() {
        let tag = json!({".tag": "new_in_2030", "new_in_2030": {"x": 1}});
        let e: MountFolderError = serde_json::from_value(tag.clone()).unwrap();
        assert_eq!(e, MountFolderError::Other);
        let e: SharedFolderAccessError = serde_json::from_value(tag.clone()).unwrap();
        assert_eq!(e, SharedFolderAccessError::Other);
        let e: AccessLevel = serde_json::from_value(tag.clone()).unwrap();
        assert_eq!(e, AccessLevel::Other);
        let e: SharePathError = serde_json::from_value(tag.clone()).unwrap();
        assert_eq!(e, SharePathError::Other);
        let e: UpdateFolderMemberError = serde_json::from_value(json!({
            ".tag": "access_error",
            "access_error": {".tag": "new_in_2030"}
        }))
        .unwrap();
        assert_eq!(
            e,
            UpdateFolderMemberError::AccessError {
                access_error: SharedFolderAccessError::Other
            }
        );
    }

    #[test]
    fn members_listing() {
        let m: SharedFolderMembers = round_trip(json!({
            "users": [{
                "access_type": {".tag": "owner"},
                "permissions": [],
                "is_inherited": false,
                "user": {
                    "account_id": "dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc",
                    "email": "bob@example.com",
                    "display_name": "Robert Smith",
                    "same_team": true,
                    "team_member_id": "dbmid:abcd1234"
                }
            }],
            "groups": [],
            "invitees": [{
                "access_type": {".tag": "viewer"},
                "is_inherited": false,
                "invitee": {".tag": "email", "email": "jessica@example.com"}
            }],
            "cursor": "ZtkX9_EHj3x7PMkVuFIhwKYXEpwpLwyxp9vMKomUhllil9q7eWiAu"
        }));
        assert_eq!(m.users[0].user.display_name, "Robert Smith");
        assert_eq!(
            m.invitees[0].invitee,
            InviteeInfo::Email {
                email: "jessica@example.com".into()
            }
        );
        let e: ListFolderMembersContinueError = round_trip(json!({".tag": "invalid_cursor"}));
        assert_eq!(e, ListFolderMembersContinueError::InvalidCursor);
    }

    #[test]
    fn sharing_info() {
        let f: FileSharingInfo = round_trip(json!({
            "read_only": true,
            "parent_shared_folder_id": "84528192421",
            "modified_by": "dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc"
        }));
        assert!(f.read_only);
        let d: FolderSharingInfo = serde_json::from_value(json!({
            "read_only": true,
            "shared_folder_id": "84528192421"
        }))
        .unwrap();
        assert!(!d.traverse_only && !d.no_access);
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            json!({
                "read_only": true,
                "shared_folder_id": "84528192421",
                "traverse_only": false,
                "no_access": false
            })
        );
    }

    #[test]
    fn basic_account_and_its_errors() {
        let a: BasicAccount = round_trip(json!({
            "account_id": "dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc",
            "name": {
                "given_name": "Franz",
                "surname": "Ferdinand",
                "familiar_name": "Franz",
                "display_name": "Franz Ferdinand (Personal)",
                "abbreviated_name": "FF"
            },
            "email": "franz@dropbox.com",
            "email_verified": true,
            "profile_photo_url": "https://dl-web.dropbox.com/account_photo/get/dbaphid%3AAAHWGmIXV3sUuOmBfTz0wPsiqHUpBWvv3ZA?vers=1556069330102&size=128x128",
            "disabled": false,
            "is_teammate": true,
            "team_member_id": "dbmid:AAHhy7WsR0x-u4ZCqiDl5Fz5zvuL3kmspwU"
        }));
        assert_eq!(a.name.display_name, "Franz Ferdinand (Personal)");
        let accounts: GetAccountBatchResult =
            serde_json::from_value(json!([serde_json::to_value(&a).unwrap()])).unwrap();
        assert_eq!(accounts.len(), 1);
        let e: GetAccountError = round_trip(json!({".tag": "no_account"}));
        assert_eq!(e, GetAccountError::NoAccount);
        let e: GetAccountBatchError =
            round_trip(json!({".tag": "no_account", "no_account": "dbid:x"}));
        assert_eq!(
            e,
            GetAccountBatchError::NoAccount {
                no_account: "dbid:x".into()
            }
        );
    }
}
