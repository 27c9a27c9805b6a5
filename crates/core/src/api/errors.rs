//! Dropbox's error unions, as Rust types both sides use. Each is an open union: a member this
//! code does not know reads as `Other`, as the official SDKs do.

use serde::{Deserialize, Serialize};

/// The body of every error answer with a JSON shape (409 route errors, 401, 422, 429):
/// `error_summary` for people and logs (clients must not parse it), `error` for programs.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct ErrorBody<E> {
    pub error_summary: String,
    pub error: E,
}

/// `LookupError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum LookupError {
    MalformedPath,
    NotFound,
    NotFile,
    NotFolder,
    RestrictedContent,
    UnsupportedContentType,
    Locked,
    #[serde(other)]
    Other,
}

/// `WriteConflictError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum WriteConflictError {
    File,
    Folder,
    FileAncestor,
    #[serde(other)]
    Other,
}

/// `WriteError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum WriteError {
    MalformedPath,
    Conflict {
        conflict: WriteConflictError,
    },
    NoWritePermission,
    InsufficientSpace,
    DisallowedName,
    TeamFolder,
    OperationSuppressed,
    TooManyWriteOperations,
    #[serde(other)]
    Other,
}

/// `GetMetadataError`, and every error whose one member is `path: LookupError`
/// (`ListFolderError`, `DownloadError`'s first member, `ListRevisionsError`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum PathLookupError {
    Path {
        path: LookupError,
    },
    #[serde(other)]
    Other,
}

/// `ListFolderContinueError`, and `ListSharedLinksError`, which has the same members.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum ListFolderContinueError {
    Path {
        path: LookupError,
    },
    /// The cursor is no longer valid: list the folder again.
    Reset,
    #[serde(other)]
    Other,
}

/// `ListSharedLinksError`: a path that cannot be looked up, or a spent cursor.
pub type ListSharedLinksError = ListFolderContinueError;

/// `ListFolderLongpollError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum LongpollError {
    Reset,
    #[serde(other)]
    Other,
}

/// `CreateFolderError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum CreateFolderError {
    Path {
        path: WriteError,
    },
    #[serde(other)]
    Other,
}

/// `DeleteError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum DeleteError {
    PathLookup {
        path_lookup: LookupError,
    },
    PathWrite {
        path_write: WriteError,
    },
    TooManyWriteOperations,
    TooManyFiles,
    #[serde(other)]
    Other,
}

/// `RelocationError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum RelocationError {
    FromLookup {
        from_lookup: LookupError,
    },
    FromWrite {
        from_write: WriteError,
    },
    To {
        to: WriteError,
    },
    CantCopySharedFolder,
    CantNestSharedFolder,
    CantMoveFolderIntoItself,
    TooManyFiles,
    DuplicatedOrNestedPaths,
    CantTransferOwnership,
    InsufficientQuota,
    InternalError,
    CantMoveSharedFolder,
    #[serde(other)]
    Other,
}

/// `ListRevisionsError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum ListRevisionsError {
    Path {
        path: LookupError,
    },
    InvalidBeforeRev,
    BeforeRevNotSupported,
    #[serde(other)]
    Other,
}

/// `RestoreError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum RestoreError {
    PathLookup {
        path_lookup: LookupError,
    },
    PathWrite {
        path_write: WriteError,
    },
    InvalidRevision,
    InProgress,
    #[serde(other)]
    Other,
}

/// `GetTemporaryLinkError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum TemporaryLinkError {
    Path {
        path: LookupError,
    },
    EmailNotVerified,
    UnsupportedFile,
    NotAllowed,
    #[serde(other)]
    Other,
}

/// `UploadError`. Its `path` member is `UploadWriteFailed`, a struct, so its fields sit
/// beside the tag.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum UploadError {
    Path {
        reason: WriteError,
        #[serde(default)]
        upload_session_id: String,
    },
    PropertiesError,
    PayloadTooLarge,
    ContentHashMismatch,
    #[serde(other)]
    Other,
}

/// `DownloadError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum DownloadError {
    Path {
        path: LookupError,
    },
    UnsupportedFile,
    #[serde(other)]
    Other,
}

/// `SaveCopyReferenceError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum SaveCopyReferenceError {
    Path {
        path: WriteError,
    },
    InvalidCopyReference,
    NoPermission,
    NotFound,
    TooManyFiles,
    #[serde(other)]
    Other,
}

/// `SaveUrlError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum SaveUrlError {
    Path {
        path: WriteError,
    },
    DownloadFailed,
    InvalidUrl,
    NotFound,
    #[serde(other)]
    Other,
}

/// `UploadSessionLookupError`, and `UploadSessionAppendError` (which adds
/// `content_hash_mismatch`): one type, as the second extends the first.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum SessionLookupError {
    NotFound,
    IncorrectOffset {
        correct_offset: u64,
    },
    Closed,
    NotClosed,
    TooLarge,
    ConcurrentSessionInvalidOffset,
    ConcurrentSessionInvalidDataSize,
    ConcurrentSessionNotClosed,
    ConcurrentSessionMissingData,
    PayloadTooLarge,
    ContentHashMismatch,
    #[serde(other)]
    Other,
}

/// `UploadSessionStartError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum SessionStartError {
    ConcurrentSessionDataNotAllowed,
    ConcurrentSessionCloseNotAllowed,
    PayloadTooLarge,
    ContentHashMismatch,
    #[serde(other)]
    Other,
}

/// `UploadSessionFinishError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum SessionFinishError {
    LookupFailed {
        lookup_failed: SessionLookupError,
    },
    Path {
        path: WriteError,
    },
    PropertiesError,
    TooManyWriteOperations,
    ConcurrentSessionDataNotAllowed,
    ConcurrentSessionNotClosed,
    ConcurrentSessionMissingData,
    PayloadTooLarge,
    ContentHashMismatch,
    #[serde(other)]
    Other,
}

/// `UploadSessionFinishBatchError` and other `PollError`s.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum PollError {
    InvalidAsyncJobId,
    InternalError,
    #[serde(other)]
    Other,
}

/// `RelocationBatchErrorEntry`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum RelocationBatchErrorEntry {
    RelocationError {
        relocation_error: RelocationError,
    },
    InternalError,
    TooManyWriteOperations,
    #[serde(other)]
    Other,
}

/// `SearchError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum SearchError {
    Path {
        path: LookupError,
    },
    InvalidArgument {
        #[serde(default)]
        invalid_argument: Option<String>,
    },
    InternalError,
    #[serde(other)]
    Other,
}

/// `DownloadZipError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum DownloadZipError {
    Path {
        path: LookupError,
    },
    TooLarge,
    TooManyFiles,
    #[serde(other)]
    Other,
}

/// `AuthError`: why a request's credentials were refused (401).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum AuthError {
    InvalidAccessToken,
    ExpiredAccessToken,
    /// `TokenScopeError`: the token lacks the route's scope.
    MissingScope {
        required_scope: String,
    },
    UserSuspended,
    RouteAccessDenied,
    #[serde(other)]
    Other,
}

/// `PathRootError` (422): a `Dropbox-API-Path-Root` the caller may not use.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum PathRootError {
    InvalidRoot {
        invalid_root: crate::api::types::RootInfo,
    },
    NoPermission,
    #[serde(other)]
    Other,
}

/// `RateLimitError` (429): why, and how many seconds to wait.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct RateLimitError {
    pub reason: crate::api::types::Tag,
    pub retry_after: u64,
}

/// `SharedLinkSettingsError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum LinkSettingsError {
    InvalidSettings,
    NotAuthorized,
    #[serde(other)]
    Other,
}

/// `SharedLinkAlreadyExistsMetadata`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum LinkExists {
    Metadata {
        metadata: crate::api::types::SharedLinkMetadata,
    },
    #[serde(other)]
    Other,
}

/// `CreateSharedLinkWithSettingsError`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum CreateSharedLinkError {
    Path {
        path: LookupError,
    },
    EmailNotVerified,
    /// The link exists; its metadata comes along when its settings are the ones asked for.
    SharedLinkAlreadyExists {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shared_link_already_exists: Option<LinkExists>,
    },
    SettingsError {
        settings_error: LinkSettingsError,
    },
    AccessDenied,
    #[serde(other)]
    Other,
}

/// `SharedLinkError`, and the members `ModifySharedLinkSettingsError`,
/// `RevokeSharedLinkError` and `GetSharedLinkFileError` add to it: one type, as each of
/// those extends it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum SharedLinkError {
    SharedLinkNotFound,
    SharedLinkAccessDenied,
    UnsupportedLinkType,
    SharedLinkMalformed,
    SharedLinkIsDirectory,
    SettingsError {
        settings_error: LinkSettingsError,
    },
    EmailNotVerified,
    #[serde(other)]
    Other,
}

/// `ThumbnailV2Error`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum ThumbnailV2Error {
    Path {
        path: LookupError,
    },
    UnsupportedExtension,
    UnsupportedImage,
    EncryptedContent,
    ConversionError,
    /// The shared link refuses the caller (expired, password, audience).
    AccessDenied,
    /// The shared link does not exist.
    NotFound,
    UnsupportedOutputFormat,
    #[serde(other)]
    Other,
}

/// `ThumbnailError` (`get_thumbnail` and the entries of `get_thumbnail_batch`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum ThumbnailError {
    Path {
        path: LookupError,
    },
    UnsupportedExtension,
    UnsupportedImage,
    EncryptedContent,
    ConversionError,
    #[serde(other)]
    Other,
}

/// `GetThumbnailBatchError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum GetThumbnailBatchError {
    TooManyFiles,
    #[serde(other)]
    Other,
}

/// `PreviewError`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum PreviewError {
    Path {
        path: LookupError,
    },
    InProgress,
    UnsupportedExtension,
    UnsupportedContent,
    #[serde(other)]
    Other,
}

/// A route whose error union has no members (Stone's `Void` error): never sent.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum NoError {
    #[serde(other)]
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unions_are_tagged_as_dropbox_sends_them() {
        let e = RelocationError::To {
            to: WriteError::Conflict {
                conflict: WriteConflictError::Folder,
            },
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            json!({".tag": "to", "to": {".tag": "conflict", "conflict": {".tag": "folder"}}})
        );
        assert_eq!(crate::wire::error_summary(&v), "to/conflict/folder/");
        let back: RelocationError = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
        // A member this code does not know is `Other`, not a decoding failure.
        let unknown: DeleteError =
            serde_json::from_value(json!({".tag": "new_in_2030", "x": 1})).unwrap();
        assert_eq!(unknown, DeleteError::Other);
    }
}
