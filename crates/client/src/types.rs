//! The parts of Dropbox's results the client reads. Unknown fields are ignored, so the same
//! types read Cubby's and Dropbox's answers.

use serde::{Deserialize, Serialize};

/// `Metadata`: a file, a folder or a deleted entry (Stone union tagged by `.tag`).
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

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct FileMetadata {
    pub name: String,
    pub id: String,
    pub client_modified: String,
    pub server_modified: String,
    pub rev: String,
    pub size: u64,
    #[serde(default)]
    pub path_lower: Option<String>,
    #[serde(default)]
    pub path_display: Option<String>,
    #[serde(default)]
    pub content_hash: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct FolderMetadata {
    pub name: String,
    pub id: String,
    #[serde(default)]
    pub path_lower: Option<String>,
    #[serde(default)]
    pub path_display: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct DeletedMetadata {
    pub name: String,
    #[serde(default)]
    pub path_lower: Option<String>,
    #[serde(default)]
    pub path_display: Option<String>,
}

/// `ListFolderResult`.
#[derive(Clone, Debug, Deserialize)]
pub struct ListFolderResult {
    pub entries: Vec<Metadata>,
    pub cursor: String,
    pub has_more: bool,
}

/// `ListFolderLongpollResult`.
#[derive(Clone, Debug, Deserialize)]
pub struct LongpollResult {
    pub changes: bool,
    #[serde(default)]
    pub backoff: Option<u64>,
}

/// `ListRevisionsResult`.
#[derive(Clone, Debug, Deserialize)]
pub struct ListRevisionsResult {
    pub is_deleted: bool,
    /// When the file was deleted, if it is.
    #[serde(default)]
    pub server_deleted: Option<String>,
    pub entries: Vec<FileMetadata>,
}

/// The parts of `FullAccount` the client shows.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Account {
    pub account_id: String,
    pub email: String,
    pub name: AccountName,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct AccountName {
    pub display_name: String,
}

/// `SpaceUsage`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct SpaceUsage {
    pub used: u64,
    pub allocation: Allocation,
}

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

/// `UploadSessionStartResult`.
#[derive(Clone, Debug, Deserialize)]
pub struct SessionStart {
    pub session_id: String,
}

/// `GetCopyReferenceResult`.
#[derive(Clone, Debug, Deserialize)]
pub struct CopyReference {
    pub copy_reference: String,
    pub expires: String,
    pub metadata: Metadata,
}

/// `SaveCopyReferenceResult`.
#[derive(Clone, Debug, Deserialize)]
pub struct SavedReference {
    pub metadata: Metadata,
}

/// `RelocationResult` and `DeleteResult`: one tagged `metadata` field.
#[derive(Clone, Debug, Deserialize)]
pub struct MetadataResult {
    pub metadata: Metadata,
}

/// `CreateFolderResult`: its `metadata` is a `FolderMetadata`, not the tagged union.
#[derive(Clone, Debug, Deserialize)]
pub struct FolderResult {
    pub metadata: FolderMetadata,
}

/// `SaveUrlResult` and `SaveUrlJobStatus`, as one union.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum SaveUrlStatus {
    AsyncJobId { async_job_id: String },
    Complete(FileMetadata),
    InProgress,
    Failed(serde_json::Value),
}
