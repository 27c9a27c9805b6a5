//! The wire contract of the Dropbox API v2 as Cubby serves it: every route declared once, in
//! [`routes!`] below, with its name, style, host, who may call it, the scope it needs, and
//! its argument, result and error types; and Dropbox's wire types ([`types`], [`errors`]).
//!
//! The server dispatches on [`Route`] with a `match` that has no wildcard, so a route declared
//! here without a handler does not compile; it decodes the argument as the route's `Arg`,
//! encodes the result as its `Ok` and a route error as its `Err`. The client calls a route
//! through the same [`Endpoint`] types, so both sides read one declaration.

pub mod errors;
pub mod folders;
pub mod types;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// How a route takes its argument and returns its result.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Style {
    /// JSON argument in the body, JSON result in the body.
    Rpc,
    /// Argument in `Dropbox-API-Arg`, bytes in the body, JSON result in the body.
    Upload,
    /// Argument in `Dropbox-API-Arg`, result in `Dropbox-API-Result`, bytes in the body.
    Download,
}

/// Which of Dropbox's host names a client sends a route to (Cubby serves every route on every
/// host name; the client keeps Dropbox's split so it works against Dropbox too).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Host {
    Api,
    Content,
    Notify,
}

/// Who may call a route.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Auth {
    /// A user's bearer token; `scope` is the one the token must hold (`None`: any token).
    User { scope: Option<&'static str> },
    /// The app's key and secret over HTTP Basic.
    App,
    /// Either a user's token holding `scope` or the app's key and secret (what such a call
    /// may reach without a user is the handler's to decide: shared links only).
    AppOrUser { scope: &'static str },
    /// No authentication (the longpoll: its cursor is the credential).
    Anonymous,
}

/// A user's token holding `scope`.
const fn user(scope: &'static str) -> Auth {
    Auth::User { scope: Some(scope) }
}

/// A user's token holding `scope`, or the app's key and secret.
const fn app_or_user(scope: &'static str) -> Auth {
    Auth::AppOrUser { scope }
}

/// A user's token, whatever its scopes.
const USER_ANY: Auth = Auth::User { scope: None };
const APP: Auth = Auth::App;
const ANONYMOUS: Auth = Auth::Anonymous;

/// What the table says of one route.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub style: Style,
    pub host: Host,
    pub auth: Auth,
}

/// One route, as a type: its [`Route`] and its argument, result and error types.
pub trait Endpoint {
    const ROUTE: Route;
    type Arg: Serialize + DeserializeOwned + Send;
    type Ok: Serialize + DeserializeOwned + Send;
    type Err: Serialize + DeserializeOwned + Send;
}

macro_rules! routes {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $name:literal, $style:ident, $host:ident, $auth:expr,
            $arg:ty => $ok:ty, $err:ty;
    )*) => {
        /// Every route of the API v2 Cubby serves.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub enum Route {
            $($(#[$doc])* $variant,)*
        }

        impl Route {
            /// Every route, in the table's order.
            pub const ALL: &'static [Route] = &[$(Route::$variant,)*];

            /// The route's name, as in `/2/{name}`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Route::$variant => $name,)*
                }
            }

            /// The route with this name.
            pub fn from_name(name: &str) -> Option<Route> {
                match name {
                    $($name => Some(Route::$variant),)*
                    _ => None,
                }
            }

            pub const fn spec(self) -> Spec {
                match self {
                    $(Route::$variant => Spec {
                        style: Style::$style,
                        host: Host::$host,
                        auth: $auth,
                    },)*
                }
            }
        }

        /// One type per route, for typed calls: `Endpoint::Arg`, `Ok` and `Err`.
        pub mod endpoint {
            use super::errors::*;
            use super::types::*;
            use super::{Endpoint, Route};
            $(
                $(#[$doc])*
                pub struct $variant;
                impl Endpoint for $variant {
                    const ROUTE: Route = Route::$variant;
                    type Arg = $arg;
                    type Ok = $ok;
                    type Err = $err;
                }
            )*
        }
    };
}

routes! {
    // ---- users, check, auth
    GetCurrentAccount = "users/get_current_account", Rpc, Api, user("account_info.read"),
        Void => FullAccount, NoError;
    GetSpaceUsage = "users/get_space_usage", Rpc, Api, user("account_info.read"),
        Void => SpaceUsage, NoError;
    CheckUser = "check/user", Rpc, Api, user("account_info.read"),
        EchoArg => EchoResult, NoError;
    CheckApp = "check/app", Rpc, Api, APP,
        EchoArg => EchoResult, NoError;
    TokenRevoke = "auth/token/revoke", Rpc, Api, USER_ANY,
        Void => Void, NoError;

    // ---- metadata and listings
    GetMetadata = "files/get_metadata", Rpc, Api, user("files.metadata.read"),
        GetMetadataArg => Metadata, PathLookupError;
    ListFolder = "files/list_folder", Rpc, Api, user("files.metadata.read"),
        ListFolderArg => ListFolderResult, PathLookupError;
    ListFolderContinue = "files/list_folder/continue", Rpc, Api, user("files.metadata.read"),
        CursorArg => ListFolderResult, ListFolderContinueError;
    GetLatestCursor = "files/list_folder/get_latest_cursor", Rpc, Api,
        user("files.metadata.read"),
        ListFolderArg => CursorResult, PathLookupError;
    Longpoll = "files/list_folder/longpoll", Rpc, Notify, ANONYMOUS,
        LongpollArg => LongpollResult, LongpollError;
    ListRevisions = "files/list_revisions", Rpc, Api, user("files.metadata.read"),
        ListRevisionsArg => ListRevisionsResult, ListRevisionsError;
    SearchV2 = "files/search_v2", Rpc, Api, user("files.metadata.read"),
        SearchArg => SearchResult, SearchError;
    SearchContinueV2 = "files/search/continue_v2", Rpc, Api, user("files.metadata.read"),
        CursorArg => SearchResult, SearchError;

    // ---- namespace changes
    CreateFolderV2 = "files/create_folder_v2", Rpc, Api, user("files.content.write"),
        CreateFolderArg => FolderResult, CreateFolderError;
    /// The older form: the metadata alone.
    CreateFolder = "files/create_folder", Rpc, Api, user("files.content.write"),
        CreateFolderArg => FolderMetadata, CreateFolderError;
    DeleteV2 = "files/delete_v2", Rpc, Api, user("files.content.write"),
        DeleteArg => MetadataResult, DeleteError;
    Delete = "files/delete", Rpc, Api, user("files.content.write"),
        DeleteArg => Metadata, DeleteError;
    MoveV2 = "files/move_v2", Rpc, Api, user("files.content.write"),
        RelocationArg => MetadataResult, RelocationError;
    Move = "files/move", Rpc, Api, user("files.content.write"),
        RelocationArg => Metadata, RelocationError;
    CopyV2 = "files/copy_v2", Rpc, Api, user("files.content.write"),
        RelocationArg => MetadataResult, RelocationError;
    Copy = "files/copy", Rpc, Api, user("files.content.write"),
        RelocationArg => Metadata, RelocationError;
    Restore = "files/restore", Rpc, Api, user("files.content.write"),
        RestoreArg => FileMetadata, RestoreError;
    PermanentlyDelete = "files/permanently_delete", Rpc, Api, user("files.permanent_delete"),
        PathArg => Void, DeleteError;

    // ---- batches (async jobs; statuses are unions)
    CopyBatchV2 = "files/copy_batch_v2", Rpc, Api, user("files.content.write"),
        RelocationBatchArg => RelocationLaunch, NoError;
    CopyBatchCheckV2 = "files/copy_batch/check_v2", Rpc, Api, user("files.content.write"),
        PollArg => RelocationStatus, PollError;
    MoveBatchV2 = "files/move_batch_v2", Rpc, Api, user("files.content.write"),
        RelocationBatchArg => RelocationLaunch, NoError;
    MoveBatchCheckV2 = "files/move_batch/check_v2", Rpc, Api, user("files.content.write"),
        PollArg => RelocationStatus, PollError;
    DeleteBatch = "files/delete_batch", Rpc, Api, user("files.content.write"),
        DeleteBatchArg => DeleteLaunch, NoError;
    DeleteBatchCheck = "files/delete_batch/check", Rpc, Api, user("files.content.write"),
        PollArg => DeleteStatus, PollError;
    CreateFolderBatch = "files/create_folder_batch", Rpc, Api, user("files.content.write"),
        CreateFolderBatchArg => CreateFolderLaunch, NoError;
    CreateFolderBatchCheck = "files/create_folder_batch/check", Rpc, Api,
        user("files.content.write"),
        PollArg => CreateFolderStatus, PollError;

    // ---- content
    Upload = "files/upload", Upload, Content, user("files.content.write"),
        UploadArg => FileMetadata, UploadError;
    Download = "files/download", Download, Content, user("files.content.read"),
        DownloadArg => FileMetadata, DownloadError;
    DownloadZip = "files/download_zip", Download, Content, user("files.content.read"),
        PathArg => DownloadZipResult, DownloadZipError;
    UploadSessionStart = "files/upload_session/start", Upload, Content,
        user("files.content.write"),
        SessionStartArg => SessionStart, SessionStartError;
    UploadSessionAppendV2 = "files/upload_session/append_v2", Upload, Content,
        user("files.content.write"),
        SessionAppendArg => Void, SessionLookupError;
    /// The older form (the cursor is the whole argument).
    UploadSessionAppend = "files/upload_session/append", Upload, Content,
        user("files.content.write"),
        SessionCursor => Void, SessionLookupError;
    UploadSessionFinish = "files/upload_session/finish", Upload, Content,
        user("files.content.write"),
        SessionFinishArg => FileMetadata, SessionFinishError;
    UploadSessionStartBatch = "files/upload_session/start_batch", Rpc, Api,
        user("files.content.write"),
        SessionStartBatchArg => SessionStartBatch, NoError;
    UploadSessionFinishBatchV2 = "files/upload_session/finish_batch_v2", Rpc, Api,
        user("files.content.write"),
        SessionFinishBatchArg => SessionFinishBatchResult, NoError;
    /// The older form: an async job (which Cubby completes before it answers).
    UploadSessionFinishBatch = "files/upload_session/finish_batch", Rpc, Api,
        user("files.content.write"),
        SessionFinishBatchArg => SessionFinishBatchLaunch, NoError;
    UploadSessionFinishBatchCheck = "files/upload_session/finish_batch/check", Rpc, Api,
        user("files.content.write"),
        PollArg => SessionFinishBatchLaunch, PollError;

    // ---- thumbnails and previews
    GetThumbnailV2 = "files/get_thumbnail_v2", Download, Content,
        app_or_user("files.content.read"),
        ThumbnailV2Arg => PreviewResult, ThumbnailV2Error;
    /// The older form: a path only, the file's metadata as the result.
    GetThumbnail = "files/get_thumbnail", Download, Content, user("files.content.read"),
        ThumbnailArg => FileMetadata, ThumbnailError;
    /// An RPC route on the content host: the thumbnails travel in base64.
    GetThumbnailBatch = "files/get_thumbnail_batch", Rpc, Content,
        user("files.content.read"),
        GetThumbnailBatchArg => GetThumbnailBatchResult, GetThumbnailBatchError;
    GetPreview = "files/get_preview", Download, Content, user("files.content.read"),
        PreviewArg => FileMetadata, PreviewError;

    // ---- links, references, fetches
    GetTemporaryLink = "files/get_temporary_link", Rpc, Api, user("files.content.read"),
        PathArg => TemporaryLink, TemporaryLinkError;
    GetTemporaryUploadLink = "files/get_temporary_upload_link", Rpc, Api,
        user("files.content.write"),
        TemporaryUploadLinkArg => Link, NoError;
    CopyReferenceGet = "files/copy_reference/get", Rpc, Api, user("files.content.write"),
        PathArg => CopyReference, PathLookupError;
    CopyReferenceSave = "files/copy_reference/save", Rpc, Api, user("files.content.write"),
        SaveCopyReferenceArg => SavedReference, SaveCopyReferenceError;
    SaveUrl = "files/save_url", Rpc, Api, user("files.content.write"),
        SaveUrlArg => SaveUrlStatus, SaveUrlError;
    SaveUrlCheckJobStatus = "files/save_url/check_job_status", Rpc, Api,
        user("files.content.write"),
        PollArg => SaveUrlStatus, PollError;

    // ---- shared links
    CreateSharedLinkWithSettings = "sharing/create_shared_link_with_settings", Rpc, Api,
        user("sharing.write"),
        CreateSharedLinkArg => SharedLinkMetadata, CreateSharedLinkError;
    ListSharedLinks = "sharing/list_shared_links", Rpc, Api, user("sharing.read"),
        ListSharedLinksArg => SharedLinks, ListSharedLinksError;
    ModifySharedLinkSettings = "sharing/modify_shared_link_settings", Rpc, Api,
        user("sharing.write"),
        ModifySharedLinkArg => SharedLinkMetadata, SharedLinkError;
    RevokeSharedLink = "sharing/revoke_shared_link", Rpc, Api, user("sharing.write"),
        UrlArg => Void, SharedLinkError;
    GetSharedLinkMetadata = "sharing/get_shared_link_metadata", Rpc, Api, user("sharing.read"),
        SharedLinkReadArg => SharedLinkMetadata, SharedLinkError;
    GetSharedLinkFile = "sharing/get_shared_link_file", Download, Content, user("sharing.read"),
        SharedLinkReadArg => SharedLinkMetadata, SharedLinkError;

    // ---- shared folders (jobs finish before the launch answers; checks read the result)
    ShareFolder = "sharing/share_folder", Rpc, Api, user("sharing.write"),
        ShareFolderArg => ShareFolderLaunch, ShareFolderError;
    CheckShareJobStatus = "sharing/check_share_job_status", Rpc, Api, user("sharing.write"),
        PollArg => ShareFolderJobStatus, PollError;
    CheckJobStatus = "sharing/check_job_status", Rpc, Api, user("sharing.write"),
        PollArg => SharingJobStatus, PollError;
    CheckRemoveMemberJobStatus = "sharing/check_remove_member_job_status", Rpc, Api,
        user("sharing.write"),
        PollArg => RemoveMemberJobStatus, PollError;
    GetFolderMetadata = "sharing/get_folder_metadata", Rpc, Api, user("sharing.read"),
        GetMetadataArgs => SharedFolderMetadata, SharedFolderAccessError;
    ListFolders = "sharing/list_folders", Rpc, Api, user("sharing.read"),
        ListFoldersArgs => ListFoldersResult, NoError;
    ListFoldersContinue = "sharing/list_folders/continue", Rpc, Api, user("sharing.read"),
        ListFoldersContinueArg => ListFoldersResult, ListFoldersContinueError;
    ListMountableFolders = "sharing/list_mountable_folders", Rpc, Api, user("sharing.read"),
        ListFoldersArgs => ListFoldersResult, NoError;
    ListMountableFoldersContinue = "sharing/list_mountable_folders/continue", Rpc, Api,
        user("sharing.read"),
        ListFoldersContinueArg => ListFoldersResult, ListFoldersContinueError;
    AddFolderMember = "sharing/add_folder_member", Rpc, Api, user("sharing.write"),
        AddFolderMemberArg => Void, AddFolderMemberError;
    UpdateFolderMember = "sharing/update_folder_member", Rpc, Api, user("sharing.write"),
        UpdateFolderMemberArg => MemberAccessLevelResult, UpdateFolderMemberError;
    RemoveFolderMember = "sharing/remove_folder_member", Rpc, Api, user("sharing.write"),
        RemoveFolderMemberArg => LaunchResultBase, RemoveFolderMemberError;
    ListFolderMembers = "sharing/list_folder_members", Rpc, Api, user("sharing.read"),
        ListFolderMembersArgs => SharedFolderMembers, SharedFolderAccessError;
    ListFolderMembersContinue = "sharing/list_folder_members/continue", Rpc, Api,
        user("sharing.read"),
        ListFolderMembersContinueArg => SharedFolderMembers, ListFolderMembersContinueError;
    RelinquishFolderMembership = "sharing/relinquish_folder_membership", Rpc, Api,
        user("sharing.write"),
        RelinquishFolderMembershipArg => LaunchEmptyResult, RelinquishFolderMembershipError;
    MountFolder = "sharing/mount_folder", Rpc, Api, user("sharing.write"),
        MountFolderArg => SharedFolderMetadata, MountFolderError;
    UnmountFolder = "sharing/unmount_folder", Rpc, Api, user("sharing.write"),
        UnmountFolderArg => Void, UnmountFolderError;
    UnshareFolder = "sharing/unshare_folder", Rpc, Api, user("sharing.write"),
        UnshareFolderArg => LaunchEmptyResult, UnshareFolderError;
    TransferFolder = "sharing/transfer_folder", Rpc, Api, user("sharing.write"),
        TransferFolderArg => Void, TransferFolderError;
    UpdateFolderPolicy = "sharing/update_folder_policy", Rpc, Api, user("sharing.write"),
        UpdateFolderPolicyArg => SharedFolderMetadata, UpdateFolderPolicyError;
    GetAccount = "users/get_account", Rpc, Api, user("sharing.read"),
        GetAccountArg => BasicAccount, GetAccountError;
    GetAccountBatch = "users/get_account_batch", Rpc, Api, user("sharing.read"),
        GetAccountBatchArg => GetAccountBatchResult, GetAccountBatchError;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        let mut seen = std::collections::HashSet::new();
        for r in Route::ALL {
            assert!(seen.insert(r.name()), "{} twice", r.name());
            assert_eq!(Route::from_name(r.name()), Some(*r));
        }
        assert_eq!(Route::from_name("files/nope"), None);
    }

    #[test]
    fn content_routes_go_to_the_content_host() {
        for r in Route::ALL {
            let s = r.spec();
            let content_rpc = *r == Route::GetThumbnailBatch;
            assert_eq!(
                s.host == Host::Content,
                s.style != Style::Rpc || content_rpc,
                "{}",
                r.name()
            );
        }
    }
}
