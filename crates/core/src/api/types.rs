//! Dropbox's arguments and results, as Rust types both sides use: the server serializes them,
//! the client deserializes them (from Cubby or from Dropbox: unknown fields are ignored and
//! optional ones default).
//!
//! Names follow the Stone spec (`dropbox/dropbox-api-spec`), so a reader can look a type up.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use super::folders::*;

/// Stone's `Void`: `null` on the wire. Read leniently (anything is accepted and ignored), as
/// clients send `null`, `{}` or nothing for routes without an argument.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Void;

impl Serialize for Void {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de> Deserialize<'de> for Void {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Void)
    }
}

fn yes() -> bool {
    true
}

fn is_false(b: &bool) -> bool {
    !*b
}

// ---- metadata ----------------------------------------------------------------------------

/// `Metadata`: a file, a folder or a deleted entry (a union tagged by `.tag`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum Metadata {
    File(FileMetadata),
    Folder(FolderMetadata),
    Deleted(DeletedMetadata),
}

impl Metadata {
    pub fn name(&self) -> &str {
        match self {
            Metadata::File(f) => &f.name,
            Metadata::Folder(f) => &f.name,
            Metadata::Deleted(d) => &d.name,
        }
    }

    pub fn path_display(&self) -> &str {
        match self {
            Metadata::File(f) => f.path_display.as_deref().unwrap_or(&f.name),
            Metadata::Folder(f) => f.path_display.as_deref().unwrap_or(&f.name),
            Metadata::Deleted(d) => d.path_display.as_deref().unwrap_or(&d.name),
        }
    }

    pub fn path_lower(&self) -> Option<&str> {
        match self {
            Metadata::File(f) => f.path_lower.as_deref(),
            Metadata::Folder(f) => f.path_lower.as_deref(),
            Metadata::Deleted(d) => d.path_lower.as_deref(),
        }
    }
}

/// `FileMetadata`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct FileMetadata {
    pub name: String,
    pub id: String,
    pub client_modified: String,
    pub server_modified: String,
    pub rev: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_lower: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_display: Option<String>,
    #[serde(default = "yes")]
    pub is_downloadable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    /// Set only where asked for (`include_media_info`, thumbnails), for images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_info: Option<Box<MediaInfo>>,
    /// Set for a file in a shared folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharing_info: Option<FileSharingInfo>,
    /// The shared folder holding the file (deprecated by Dropbox, still sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_shared_folder_id: Option<String>,
}

/// `FolderMetadata`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct FolderMetadata {
    pub name: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_lower: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_display: Option<String>,
    /// Set for a shared folder's mount point, and for a folder inside a shared folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharing_info: Option<FolderSharingInfo>,
    /// The shared folder this folder is (deprecated by Dropbox, still sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_folder_id: Option<String>,
    /// The shared folder holding this folder (deprecated by Dropbox, still sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_shared_folder_id: Option<String>,
}

/// `DeletedMetadata`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct DeletedMetadata {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_lower: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_display: Option<String>,
}

// ---- files: arguments --------------------------------------------------------------------

/// `GetMetadataArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct GetMetadataArg {
    pub path: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub include_deleted: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub include_media_info: bool,
}

/// `ListFolderArg`. `shared_link` (a `SharedLink`) lists a link's folder instead.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ListFolderArg {
    pub path: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub recursive: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub include_deleted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_link: Option<SharedLinkArg>,
}

/// `SharedLink`: a link's URL and, when it has one, its password.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct SharedLinkArg {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// Any argument that is one `cursor`: `ListFolderContinueArg`, `SearchV2ContinueArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct CursorArg {
    pub cursor: String,
}

/// `ListFolderLongpollArg`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct LongpollArg {
    pub cursor: String,
    /// Seconds, 30 to 480.
    #[serde(default = "default_longpoll_timeout")]
    pub timeout: u64,
}

fn default_longpoll_timeout() -> u64 {
    30
}

/// `CreateFolderArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct CreateFolderArg {
    pub path: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub autorename: bool,
}

/// `DeleteArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct DeleteArg {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_rev: Option<String>,
}

/// `RelocationPath`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct RelocationPath {
    pub from_path: String,
    pub to_path: String,
}

/// `RelocationArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct RelocationArg {
    #[serde(flatten)]
    pub paths: RelocationPath,
    #[serde(default, skip_serializing_if = "is_false")]
    pub autorename: bool,
}

/// `EchoArg` of `check/user` and `check/app`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct EchoArg {
    #[serde(default)]
    pub query: String,
}

/// `CommitInfo`: where and how an upload becomes a file. `mode` is the union `WriteMode`
/// (`add`, `overwrite`, `update` with a rev), read as JSON because clients send `"add"` as
/// well as `{".tag": "add"}`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct CommitInfo {
    pub path: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub mode: serde_json::Value,
    #[serde(default, skip_serializing_if = "is_false")]
    pub autorename: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_modified: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub mute: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub strict_conflict: bool,
}

/// `UploadArg`: a `CommitInfo` and, optionally, the body's `content_hash` to check.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct UploadArg {
    #[serde(flatten)]
    pub commit: CommitInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
}

/// `DownloadArg`. `rev` is deprecated: it names a revision as a `rev:` path does.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct DownloadArg {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rev: Option<String>,
}

/// `UploadSessionCursor`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct SessionCursor {
    pub session_id: String,
    pub offset: u64,
}

/// `UploadSessionStartArg`. `session_type` is the union `UploadSessionType` (`sequential` or
/// `concurrent`), read as JSON because clients send it as a string or as a tagged object.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct SessionStartArg {
    #[serde(default, skip_serializing_if = "is_false")]
    pub close: bool,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub session_type: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
}

/// `UploadSessionAppendArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct SessionAppendArg {
    pub cursor: SessionCursor,
    #[serde(default, skip_serializing_if = "is_false")]
    pub close: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
}

/// `UploadSessionFinishArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct SessionFinishArg {
    pub cursor: SessionCursor,
    pub commit: CommitInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
}

/// `UploadSessionStartBatchArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct SessionStartBatchArg {
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub session_type: serde_json::Value,
    pub num_sessions: u64,
}

/// `UploadSessionFinishBatchArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct SessionFinishBatchArg {
    pub entries: Vec<SessionFinishArg>,
}

/// `UploadSessionFinishBatchResult`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct SessionFinishBatchResult {
    pub entries: Vec<SessionFinishBatchEntry>,
}

/// `UploadSessionFinishBatchResultEntry`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum SessionFinishBatchEntry {
    Success(FileMetadata),
    Failure {
        failure: crate::api::errors::SessionFinishError,
    },
}

/// `UploadSessionFinishBatchLaunch` (and `UploadSessionFinishBatchJobStatus`): Cubby finishes
/// a batch before it answers, so the launch is always `complete`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum SessionFinishBatchLaunch {
    AsyncJobId { async_job_id: String },
    Complete(SessionFinishBatchResult),
    InProgress,
}

/// Any argument that is one `async_job_id` (`PollArg`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct PollArg {
    pub async_job_id: String,
}

// ---- batches: arguments, launches, job statuses ------------------------------------------

/// `RelocationBatchArgBase` (copy_batch_v2, move_batch_v2).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct RelocationBatchArg {
    pub entries: Vec<RelocationPath>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub autorename: bool,
}

/// `DeleteBatchArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct DeleteBatchArg {
    pub entries: Vec<DeleteArg>,
}

/// `CreateFolderBatchArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct CreateFolderBatchArg {
    pub paths: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub autorename: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub force_async: bool,
}

/// A batch's result: one entry per argument entry, in order (`RelocationBatchV2Result`,
/// `DeleteBatchResult`, `CreateFolderBatchResult`).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct BatchResult<E> {
    pub entries: Vec<E>,
}

/// A batch's launch: a job to poll, or the result at once (`RelocationBatchV2Launch`,
/// `DeleteBatchLaunch`, `CreateFolderBatchLaunch`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum Launch<T> {
    AsyncJobId { async_job_id: String },
    Complete(T),
}

/// A batch job's status (`RelocationBatchV2JobStatus`, `DeleteBatchJobStatus`,
/// `CreateFolderBatchJobStatus`). Cubby reports a job that failed as a whole with the
/// check's `internal_error`, so no `failed` member is sent.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum JobStatus<T> {
    InProgress,
    Complete(T),
}

/// `RelocationBatchResultEntry`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum RelocationBatchEntry {
    Success {
        success: Metadata,
    },
    Failure {
        failure: crate::api::errors::RelocationBatchErrorEntry,
    },
}

/// `DeleteBatchResultEntry` (its success is `DeleteBatchResultData`, a struct).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum DeleteBatchEntry {
    Success {
        metadata: Metadata,
    },
    Failure {
        failure: crate::api::errors::DeleteError,
    },
}

/// `CreateFolderBatchResultEntry`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum CreateFolderBatchEntry {
    Success {
        metadata: FolderMetadata,
    },
    Failure {
        failure: crate::api::errors::CreateFolderError,
    },
}

/// The launch and status types of each batch route.
pub type RelocationLaunch = Launch<BatchResult<RelocationBatchEntry>>;
pub type RelocationStatus = JobStatus<BatchResult<RelocationBatchEntry>>;
pub type DeleteLaunch = Launch<BatchResult<DeleteBatchEntry>>;
pub type DeleteStatus = JobStatus<BatchResult<DeleteBatchEntry>>;
pub type CreateFolderLaunch = Launch<BatchResult<CreateFolderBatchEntry>>;
pub type CreateFolderStatus = JobStatus<BatchResult<CreateFolderBatchEntry>>;

/// `GetTemporaryUploadLinkArg`. `duration` is in seconds, 60 to 14,400.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct TemporaryUploadLinkArg {
    pub commit_info: CommitInfo,
    #[serde(default = "default_upload_link_duration")]
    pub duration: f64,
}

fn default_upload_link_duration() -> f64 {
    14_400.0
}

/// `DownloadZipResult`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct DownloadZipResult {
    pub metadata: FolderMetadata,
}

// ---- files: results ----------------------------------------------------------------------

/// `ListFolderResult`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ListFolderResult {
    pub entries: Vec<Metadata>,
    pub cursor: String,
    pub has_more: bool,
}

/// `ListFolderGetLatestCursorResult`, and any result that is one `cursor`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct CursorResult {
    pub cursor: String,
}

/// `ListFolderLongpollResult`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct LongpollResult {
    pub changes: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<u64>,
}

/// `CreateFolderResult`: its `metadata` is a `FolderMetadata`, not the tagged union.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct FolderResult {
    pub metadata: FolderMetadata,
}

/// `RelocationResult` and `DeleteResult`: one tagged `metadata` field.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct MetadataResult {
    pub metadata: Metadata,
}

/// `EchoResult`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct EchoResult {
    pub result: String,
}

/// `ListRevisionsArg`. `mode` is the union `ListRevisionsMode` (`path` or `id`), read as
/// JSON because clients send it both as `{".tag": "id"}` and as `"id"`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ListRevisionsArg {
    pub path: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub mode: serde_json::Value,
    #[serde(default = "default_revisions_limit")]
    pub limit: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_rev: Option<String>,
}

fn default_revisions_limit() -> u32 {
    10
}

/// `RestoreArg`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct RestoreArg {
    pub path: String,
    pub rev: String,
}

/// Any argument that is one `path`: `DeleteArg` without a rev, `GetTemporaryLinkArg`,
/// `GetCopyReferenceArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct PathArg {
    pub path: String,
}

/// `ListRevisionsResult`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ListRevisionsResult {
    pub is_deleted: bool,
    /// When the file was deleted, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_deleted: Option<String>,
    pub entries: Vec<FileMetadata>,
    #[serde(default)]
    pub has_more: bool,
}

/// `UploadSessionStartResult`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct SessionStart {
    pub session_id: String,
}

/// `SaveCopyReferenceArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct SaveCopyReferenceArg {
    pub copy_reference: String,
    pub path: String,
}

/// `SaveUrlArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct SaveUrlArg {
    pub path: String,
    pub url: String,
}

/// `GetCopyReferenceResult`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct CopyReference {
    pub copy_reference: String,
    pub expires: String,
    pub metadata: Metadata,
}

/// `SaveCopyReferenceResult`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct SavedReference {
    pub metadata: Metadata,
}

/// `SaveUrlResult` and `SaveUrlJobStatus`, as one union.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum SaveUrlStatus {
    AsyncJobId {
        async_job_id: String,
    },
    Complete(FileMetadata),
    InProgress,
    Failed {
        failed: crate::api::errors::SaveUrlError,
    },
}

// ---- users -------------------------------------------------------------------------------

/// `FullAccount`. The fields past `email` default, so that accounts from servers that leave
/// them out still read.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct FullAccount {
    pub account_id: String,
    pub name: AccountName,
    pub email: String,
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub locale: String,
    #[serde(default)]
    pub referral_link: String,
    #[serde(default)]
    pub is_paired: bool,
    #[serde(default)]
    pub account_type: Tag,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_info: Option<RootInfo>,
}

/// `Name`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct AccountName {
    #[serde(default)]
    pub given_name: String,
    #[serde(default)]
    pub surname: String,
    #[serde(default)]
    pub familiar_name: String,
    pub display_name: String,
    #[serde(default)]
    pub abbreviated_name: String,
}

/// `RootInfo` (the `user` member: a single-namespace account).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct RootInfo {
    #[serde(rename = ".tag")]
    pub tag: String,
    pub root_namespace_id: String,
    pub home_namespace_id: String,
}

/// A union member without a value (`{".tag": "basic"}`), for unions the client only shows.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Tag {
    #[serde(rename = ".tag")]
    pub tag: String,
}

impl Tag {
    pub fn new(tag: &str) -> Self {
        Self {
            tag: tag.to_owned(),
        }
    }
}

/// `SpaceUsage`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct SpaceUsage {
    pub used: u64,
    pub allocation: Allocation,
}

/// `SpaceAllocation`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum Allocation {
    Individual {
        allocated: u64,
    },
    Team {
        allocated: u64,
    },
    #[serde(other)]
    Other,
}

impl Allocation {
    pub fn allocated(&self) -> Option<u64> {
        match self {
            Allocation::Individual { allocated } | Allocation::Team { allocated } => {
                Some(*allocated)
            }
            Allocation::Other => None,
        }
    }
}

// ---- search, links -----------------------------------------------------------------------

/// `SearchOptions`. The unions (`order_by`, `file_status`, `file_categories`) are read as
/// JSON because clients send them as strings or as tagged objects.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct SearchOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default = "default_max_results")]
    pub max_results: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_by: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_status: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_extensions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_categories: Option<Vec<serde_json::Value>>,
}

/// The `max_results` of a search that names none.
pub fn default_max_results() -> u64 {
    100
}

/// `SearchV2Arg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct SearchArg {
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<SearchOptions>,
}

/// `SearchV2Result`: the matching entries, in order.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct SearchResult {
    pub matches: Vec<SearchMatch>,
    pub has_more: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `SearchMatchV2`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct SearchMatch {
    pub metadata: MetadataV2,
    /// `SearchMatchTypeV2`: Cubby matches file names only (`filename`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_type: Option<Tag>,
}

/// `MetadataV2`: a union whose one known member is the metadata.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum MetadataV2 {
    Metadata {
        metadata: Metadata,
    },
    #[serde(other)]
    Other,
}

impl MetadataV2 {
    /// The metadata, if the member is one this code knows.
    pub fn metadata(&self) -> Option<&Metadata> {
        match self {
            MetadataV2::Metadata { metadata } => Some(metadata),
            MetadataV2::Other => None,
        }
    }
}

/// `GetTemporaryLinkResult`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct TemporaryLink {
    pub metadata: FileMetadata,
    pub link: String,
}

/// `GetTemporaryUploadLinkResult`, and any result that is one `link`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Link {
    pub link: String,
}

/// `UploadSessionStartBatchResult`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct SessionStartBatch {
    pub session_ids: Vec<String>,
}

// ---- shared links ------------------------------------------------------------------------

/// `SharedLinkSettings`. Unknown fields are refused, as Dropbox does. The unions
/// (`audience`, `access`, `requested_visibility`) are read as JSON because clients send them
/// as strings or as tagged objects.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SharedLinkSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_password: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_visibility: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_download: Option<bool>,
}

impl SharedLinkSettings {
    /// Whether no setting is given.
    pub fn is_empty(&self) -> bool {
        self.require_password.is_none()
            && self.link_password.is_none()
            && self.expires.is_none()
            && self.audience.is_none()
            && self.access.is_none()
            && self.requested_visibility.is_none()
            && self.allow_download.is_none()
    }
}

/// `CreateSharedLinkWithSettingsArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct CreateSharedLinkArg {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<SharedLinkSettings>,
}

/// `ListSharedLinksArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ListSharedLinksArg {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub direct_only: bool,
}

/// `ModifySharedLinkSettingsArgs`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ModifySharedLinkArg {
    pub url: String,
    pub settings: SharedLinkSettings,
    #[serde(default, skip_serializing_if = "is_false")]
    pub remove_expiration: bool,
}

/// `RevokeSharedLinkArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct UrlArg {
    pub url: String,
}

/// `GetSharedLinkMetadataArg` and `GetSharedLinkFileArg`: a link, and a path inside a
/// linked folder.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct SharedLinkReadArg {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_password: Option<String>,
}

/// `SharedLinkMetadata`: a linked file or folder as anyone with the link sees it.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum SharedLinkMetadata {
    File(FileLinkMetadata),
    Folder(LinkCommon),
}

impl SharedLinkMetadata {
    pub fn common(&self) -> &LinkCommon {
        match self {
            SharedLinkMetadata::File(f) => &f.common,
            SharedLinkMetadata::Folder(f) => f,
        }
    }
}

/// What every `SharedLinkMetadata` member has. `id` and `path_lower` are shown only to the
/// link's owner.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct LinkCommon {
    pub url: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_lower: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    pub link_permissions: LinkPermissions,
}

/// `FileLinkMetadata`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct FileLinkMetadata {
    #[serde(flatten)]
    pub common: LinkCommon,
    pub client_modified: String,
    pub server_modified: String,
    pub rev: String,
    pub size: u64,
}

/// `LinkPermissions`: what a link grants, and what the caller may change about it.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct LinkPermissions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_visibility: Option<Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_visibility: Option<Tag>,
    pub can_revoke: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_failure_reason: Option<Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_audience: Option<Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_access_level: Option<Tag>,
    #[serde(default)]
    pub visibility_policies: Vec<VisibilityPolicy>,
    #[serde(default)]
    pub can_set_expiry: bool,
    #[serde(default)]
    pub can_remove_expiry: bool,
    #[serde(default)]
    pub allow_download: bool,
    #[serde(default)]
    pub can_allow_download: bool,
    #[serde(default)]
    pub can_disallow_download: bool,
    #[serde(default)]
    pub allow_comments: bool,
    #[serde(default)]
    pub team_restricts_comments: bool,
    #[serde(default)]
    pub audience_options: Vec<AudienceOption>,
    #[serde(default)]
    pub can_set_password: bool,
    #[serde(default)]
    pub can_remove_password: bool,
    #[serde(default)]
    pub require_password: bool,
    #[serde(default)]
    pub can_use_extended_sharing_controls: bool,
}

/// `VisibilityPolicy`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct VisibilityPolicy {
    pub policy: Tag,
    pub resolved_policy: Tag,
    pub allowed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disallowed_reason: Option<Tag>,
}

/// `LinkAudienceOption`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct AudienceOption {
    pub audience: Tag,
    pub allowed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disallowed_reason: Option<Tag>,
}

/// `ListSharedLinksResult`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct SharedLinks {
    pub links: Vec<SharedLinkMetadata>,
    pub has_more: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

// ---- thumbnails and previews -------------------------------------------------------------

/// A union whose members carry nothing, read from `"name"` as well as `{".tag": "name"}`
/// (clients send both), written as `{".tag": "name"}`; an unknown member is an error.
macro_rules! void_union {
    ($(#[$doc:meta])* $name:ident { $($(#[$va:meta])* $variant:ident = $tag:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$va])* $variant,)*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            pub fn tag(self) -> &'static str {
                match self {
                    $($name::$variant => $tag,)*
                }
            }

            pub fn from_tag(t: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.tag() == t)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                Tag::new(self.tag()).serialize(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = serde_json::Value::deserialize(d)?;
                let t = match &v {
                    serde_json::Value::String(t) => Some(t.as_str()),
                    serde_json::Value::Object(m) => m.get(".tag").and_then(|t| t.as_str()),
                    _ => None,
                };
                t.and_then($name::from_tag).ok_or_else(|| {
                    serde::de::Error::custom(format!("unknown {} {v}", stringify!($name)))
                })
            }
        }
    };
}

void_union! {
    /// `ThumbnailFormat`.
    ThumbnailFormat {
        #[default]
        Jpeg = "jpeg",
        Png = "png",
        Webp = "webp",
    }
}

void_union! {
    /// `ThumbnailSize`: the box a thumbnail must fit (or cover, by its mode).
    ThumbnailSize {
        W32h32 = "w32h32",
        #[default]
        W64h64 = "w64h64",
        W128h128 = "w128h128",
        W256h256 = "w256h256",
        W480h320 = "w480h320",
        W640h480 = "w640h480",
        W960h640 = "w960h640",
        W1024h768 = "w1024h768",
        W2048h1536 = "w2048h1536",
    }
}

void_union! {
    /// `ThumbnailMode`: `strict` fits the box; `bestfit` fits the box or its transpose,
    /// whichever keeps more of the image; `fitone_bestfit` covers the box or its transpose;
    /// `original` keeps the image's size (a conversion only).
    ThumbnailMode {
        #[default]
        Strict = "strict",
        Bestfit = "bestfit",
        FitoneBestfit = "fitone_bestfit",
        Original = "original",
    }
}

impl ThumbnailSize {
    /// Width and height of the box.
    pub fn dims(self) -> (u32, u32) {
        match self {
            ThumbnailSize::W32h32 => (32, 32),
            ThumbnailSize::W64h64 => (64, 64),
            ThumbnailSize::W128h128 => (128, 128),
            ThumbnailSize::W256h256 => (256, 256),
            ThumbnailSize::W480h320 => (480, 320),
            ThumbnailSize::W640h480 => (640, 480),
            ThumbnailSize::W960h640 => (960, 640),
            ThumbnailSize::W1024h768 => (1024, 768),
            ThumbnailSize::W2048h1536 => (2048, 1536),
        }
    }
}

impl ThumbnailFormat {
    /// The media type of the encoded image.
    pub fn mime(self) -> &'static str {
        match self {
            ThumbnailFormat::Jpeg => "image/jpeg",
            ThumbnailFormat::Png => "image/png",
            ThumbnailFormat::Webp => "image/webp",
        }
    }
}

/// `SharedLinkFileInfo`: a file reached through a shared link (`path` inside a linked folder).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct SharedLinkFileInfo {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// `PathOrLink`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum PathOrLink {
    Path { path: String },
    Link(SharedLinkFileInfo),
}

/// `ThumbnailV2Arg`. `preserve_transparency` is sent by newer SDKs (and refused with JPEG).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ThumbnailV2Arg {
    pub resource: PathOrLink,
    #[serde(default)]
    pub format: ThumbnailFormat,
    #[serde(default)]
    pub size: ThumbnailSize,
    #[serde(default)]
    pub mode: ThumbnailMode,
    #[serde(default, skip_serializing_if = "is_false")]
    pub exclude_media_info: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub preserve_transparency: bool,
}

/// `ThumbnailArg` (`get_thumbnail` and each entry of `get_thumbnail_batch`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ThumbnailArg {
    pub path: String,
    #[serde(default)]
    pub format: ThumbnailFormat,
    #[serde(default)]
    pub size: ThumbnailSize,
    #[serde(default)]
    pub mode: ThumbnailMode,
    #[serde(default, skip_serializing_if = "is_false")]
    pub exclude_media_info: bool,
}

/// `MinimalFileLinkMetadata`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct MinimalFileLinkMetadata {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub rev: String,
}

/// `PreviewResult`: the file a thumbnail was made of, as its caller may see it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct PreviewResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_metadata: Option<FileMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_metadata: Option<MinimalFileLinkMetadata>,
}

/// `GetThumbnailBatchArg` (at most 25 entries).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct GetThumbnailBatchArg {
    pub entries: Vec<ThumbnailArg>,
}

/// `GetThumbnailBatchResult`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct GetThumbnailBatchResult {
    pub entries: Vec<GetThumbnailBatchResultEntry>,
}

/// `GetThumbnailBatchResultEntry`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum GetThumbnailBatchResultEntry {
    Success(Box<GetThumbnailBatchResultData>),
    Failure {
        failure: crate::api::errors::ThumbnailError,
    },
    #[serde(other)]
    Other,
}

/// `GetThumbnailBatchResultData`: the thumbnail in base64.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct GetThumbnailBatchResultData {
    pub metadata: FileMetadata,
    pub thumbnail: String,
}

/// `PreviewArg`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct PreviewArg {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rev: Option<String>,
}

/// `MediaInfo`: `pending`, or the `metadata` of a photo or video.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum MediaInfo {
    Pending,
    Metadata { metadata: MediaMetadata },
}

/// `MediaMetadata`, a struct with subtypes: `.tag` is `photo` or `video`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct MediaMetadata {
    #[serde(rename = ".tag")]
    pub tag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<Dimensions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<GpsCoordinates>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_taken: Option<String>,
    /// Of a video, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
}

/// `Dimensions`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Dimensions {
    pub height: u64,
    pub width: u64,
}

/// `GpsCoordinates`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
pub struct GpsCoordinates {
    pub latitude: f64,
    pub longitude: f64,
}

impl Eq for GpsCoordinates {}
