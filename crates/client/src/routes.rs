//! One typed method per route of the wire contract (`cubby_core::api`), for the CLI, backup,
//! restore, import and sync, and for programs that use this crate as a library.
//!
//! Each method names its route's [`Endpoint`](cubby_core::api::Endpoint) type (`ep::…`), so its
//! argument and result are the route's own; a test below checks that every route the table
//! declares has a method here or in [`crate::transfer`]. Arguments are the route's fields as
//! parameters (optional ones with Dropbox's defaults). Job statuses and shared-link metadata
//! are unions with many members, so those come back as JSON values. Uploads and downloads of
//! whole files are in [`crate::transfer`].

use bytes::Bytes;
use cubby_core::api::endpoint as ep;
use cubby_core::api::folders as f;
use serde_json::{Value, json};

use crate::types::{
    Account, CommitInfo, CopyReference, CreateFolderArg, CreateFolderBatchArg, CreateFolderLaunch,
    CreateFolderStatus, CreateSharedLinkArg, CursorArg, DeleteArg, DeleteBatchArg, DeleteLaunch,
    DeleteStatus, DownloadArg, EchoArg, FileMetadata, FolderMetadata, FolderResult, GetMetadataArg,
    JobStatus, Launch, ListFolderArg, ListFolderResult, ListRevisionsArg, ListRevisionsResult,
    ListSharedLinksArg, LongpollResult, Metadata, MetadataResult, ModifySharedLinkArg, PathArg,
    PollArg, RelocationArg, RelocationBatchArg, RelocationLaunch, RelocationPath, RelocationStatus,
    RestoreArg, SaveCopyReferenceArg, SaveUrlStatus, SavedReference, SearchArg, SearchOptions,
    SessionAppendArg, SessionCursor, SessionFinishArg, SessionFinishBatchArg,
    SessionFinishBatchLaunch, SessionFinishBatchResult, SessionStartArg, SessionStartBatchArg,
    SharedLinkMetadata, SharedLinkReadArg, SharedLinkSettings, SpaceUsage, TemporaryUploadLinkArg,
    UrlArg, Void, default_max_results,
};
pub use crate::types::{
    GetThumbnailBatchArg, GetThumbnailBatchResult, PreviewArg, PreviewResult, ThumbnailArg,
    ThumbnailV2Arg,
};
pub use crate::types::{Link, SearchResult, SharedLinks, TemporaryLink};
use crate::{Client, Result};

/// A listing's options.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub recursive: bool,
    pub include_deleted: bool,
    pub limit: Option<u32>,
}

impl Client {
    // ---- users, check, auth ----

    pub async fn get_current_account(&self) -> Result<Account> {
        self.call::<ep::GetCurrentAccount>(&Void).await
    }

    pub async fn get_space_usage(&self) -> Result<SpaceUsage> {
        self.call::<ep::GetSpaceUsage>(&Void).await
    }

    /// `check/user`: echoes `query`.
    pub async fn check_user(&self, query: &str) -> Result<String> {
        let arg = EchoArg {
            query: query.to_owned(),
        };
        Ok(self.call::<ep::CheckUser>(&arg).await?.result)
    }

    /// `check/app`: echoes `query`, authenticated as the app (HTTP Basic with its key and
    /// secret), not as a user.
    pub async fn check_app(&self, query: &str) -> Result<String> {
        use cubby_core::api::Endpoint;
        let resp = self
            .http()
            .post(format!(
                "{}/2/{}",
                self.hosts().api,
                ep::CheckApp::ROUTE.name()
            ))
            .basic_auth(&self.app.key, self.app.secret.as_deref())
            .json(&EchoArg {
                query: query.to_owned(),
            })
            .send()
            .await?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await?;
        if status != 200 {
            return Err(crate::error_from(status, &body));
        }
        let r: <ep::CheckApp as Endpoint>::Ok =
            serde_json::from_slice(&body).map_err(|e| crate::Error::Protocol(e.to_string()))?;
        Ok(r.result)
    }

    /// Revokes this client's token (and its refresh family).
    pub async fn revoke_token(&self) -> Result<()> {
        self.call::<ep::TokenRevoke>(&Void).await?;
        Ok(())
    }

    // ---- metadata and listing ----

    pub async fn get_metadata(&self, path: &str, include_deleted: bool) -> Result<Metadata> {
        let arg = GetMetadataArg {
            path: path.to_owned(),
            include_deleted,
            include_media_info: false,
        };
        self.call::<ep::GetMetadata>(&arg).await
    }

    pub async fn list_folder(&self, path: &str, opts: &ListOptions) -> Result<ListFolderResult> {
        self.call::<ep::ListFolder>(&list_arg(path, opts)).await
    }

    pub async fn get_latest_cursor(&self, path: &str, recursive: bool) -> Result<String> {
        let opts = ListOptions {
            recursive,
            ..ListOptions::default()
        };
        let c = self
            .call::<ep::GetLatestCursor>(&list_arg(path, &opts))
            .await?;
        Ok(c.cursor)
    }

    pub async fn search(&self, query: &str, path: Option<&str>) -> Result<SearchResult> {
        let arg = SearchArg {
            query: query.to_owned(),
            options: path.map(|p| SearchOptions {
                path: Some(p.to_owned()),
                max_results: default_max_results(),
                ..SearchOptions::default()
            }),
        };
        self.call::<ep::SearchV2>(&arg).await
    }

    pub async fn search_continue(&self, cursor: &str) -> Result<SearchResult> {
        self.call::<ep::SearchContinueV2>(&CursorArg {
            cursor: cursor.to_owned(),
        })
        .await
    }

    /// The revisions written at `path` (`mode: path`), newest first.
    pub async fn list_revisions(&self, path: &str, limit: u32) -> Result<ListRevisionsResult> {
        self.call::<ep::ListRevisions>(&ListRevisionsArg {
            path: path.to_owned(),
            mode: Value::Null,
            limit,
            before_rev: None,
        })
        .await
    }

    /// The revisions of the file at `path` wherever they were written (`mode: id`: the
    /// history follows the file across moves).
    pub async fn list_revisions_by_id(
        &self,
        path: &str,
        limit: u32,
    ) -> Result<ListRevisionsResult> {
        self.call::<ep::ListRevisions>(&ListRevisionsArg {
            path: path.to_owned(),
            mode: json!("id"),
            limit,
            before_rev: None,
        })
        .await
    }

    /// Waits for changes after `cursor` (the notify host; at most `timeout` seconds, 30–480).
    pub async fn wait_for_changes(&self, cursor: &str, timeout: u64) -> Result<LongpollResult> {
        self.longpoll(cursor, timeout).await
    }

    // ---- namespace changes ----

    pub async fn create_folder(&self, path: &str, autorename: bool) -> Result<FolderResult> {
        let arg = CreateFolderArg {
            path: path.to_owned(),
            autorename,
        };
        self.call::<ep::CreateFolderV2>(&arg).await
    }

    pub async fn delete(&self, path: &str, parent_rev: Option<&str>) -> Result<MetadataResult> {
        let arg = DeleteArg {
            path: path.to_owned(),
            parent_rev: parent_rev.map(str::to_owned),
        };
        self.call::<ep::DeleteV2>(&arg).await
    }

    pub async fn permanently_delete(&self, path: &str) -> Result<()> {
        self.call::<ep::PermanentlyDelete>(&path_arg(path)).await?;
        Ok(())
    }

    pub async fn move_item(
        &self,
        from: &str,
        to: &str,
        autorename: bool,
    ) -> Result<MetadataResult> {
        self.call::<ep::MoveV2>(&relocation(from, to, autorename))
            .await
    }

    pub async fn copy_item(
        &self,
        from: &str,
        to: &str,
        autorename: bool,
    ) -> Result<MetadataResult> {
        self.call::<ep::CopyV2>(&relocation(from, to, autorename))
            .await
    }

    // The older forms of the four calls above, which answer the metadata alone.

    pub async fn create_folder_v1(&self, path: &str, autorename: bool) -> Result<FolderMetadata> {
        let arg = CreateFolderArg {
            path: path.to_owned(),
            autorename,
        };
        self.call::<ep::CreateFolder>(&arg).await
    }

    pub async fn delete_v1(&self, path: &str) -> Result<Metadata> {
        let arg = DeleteArg {
            path: path.to_owned(),
            parent_rev: None,
        };
        self.call::<ep::Delete>(&arg).await
    }

    pub async fn move_v1(&self, from: &str, to: &str) -> Result<Metadata> {
        self.call::<ep::Move>(&relocation(from, to, false)).await
    }

    pub async fn copy_v1(&self, from: &str, to: &str) -> Result<Metadata> {
        self.call::<ep::Copy>(&relocation(from, to, false)).await
    }

    pub async fn restore(&self, path: &str, rev: &str) -> Result<FileMetadata> {
        self.call::<ep::Restore>(&RestoreArg {
            path: path.to_owned(),
            rev: rev.to_owned(),
        })
        .await
    }

    // ---- batches: each starts a job (or finishes at once); [`settle`] waits for it ----

    /// `(from, to)` pairs.
    pub async fn copy_batch(
        &self,
        pairs: &[(&str, &str)],
        autorename: bool,
    ) -> Result<RelocationLaunch> {
        self.call::<ep::CopyBatchV2>(&relocations(pairs, autorename))
            .await
    }

    pub async fn copy_batch_check(&self, job: &str) -> Result<RelocationStatus> {
        self.call::<ep::CopyBatchCheckV2>(&job_arg(job)).await
    }

    pub async fn move_batch(
        &self,
        pairs: &[(&str, &str)],
        autorename: bool,
    ) -> Result<RelocationLaunch> {
        self.call::<ep::MoveBatchV2>(&relocations(pairs, autorename))
            .await
    }

    pub async fn move_batch_check(&self, job: &str) -> Result<RelocationStatus> {
        self.call::<ep::MoveBatchCheckV2>(&job_arg(job)).await
    }

    pub async fn delete_batch(&self, paths: &[&str]) -> Result<DeleteLaunch> {
        let entries = paths
            .iter()
            .map(|p| DeleteArg {
                path: (*p).to_owned(),
                parent_rev: None,
            })
            .collect();
        self.call::<ep::DeleteBatch>(&DeleteBatchArg { entries })
            .await
    }

    pub async fn delete_batch_check(&self, job: &str) -> Result<DeleteStatus> {
        self.call::<ep::DeleteBatchCheck>(&job_arg(job)).await
    }

    pub async fn create_folder_batch(
        &self,
        paths: &[&str],
        autorename: bool,
    ) -> Result<CreateFolderLaunch> {
        let arg = CreateFolderBatchArg {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            autorename,
            force_async: false,
        };
        self.call::<ep::CreateFolderBatch>(&arg).await
    }

    pub async fn create_folder_batch_check(&self, job: &str) -> Result<CreateFolderStatus> {
        self.call::<ep::CreateFolderBatchCheck>(&job_arg(job)).await
    }

    // ---- upload sessions ----

    /// Starts a session (`concurrent` for out-of-order 4 MiB-aligned appends) with `data`.
    pub async fn session_start(
        &self,
        data: Bytes,
        concurrent: bool,
        close: bool,
    ) -> Result<String> {
        let arg = SessionStartArg {
            close,
            session_type: session_type(concurrent),
            content_hash: None,
        };
        let s = self
            .call_upload::<ep::UploadSessionStart>(&arg, data)
            .await?;
        Ok(s.session_id)
    }

    /// Starts a closed session holding all of a small file, `data`, with its content hash
    /// for the server to check (commit it with [`Self::session_finish_batch`]). Returns the
    /// session and the hash, to compare with what the commit reports.
    pub async fn session_start_file(&self, data: Bytes) -> Result<(String, String)> {
        let mut hasher = cubby_core::hash::ContentHasher::new();
        hasher.update(&data);
        let hash = hasher.finish();
        let arg = SessionStartArg {
            close: true,
            session_type: session_type(false),
            content_hash: Some(hash.clone()),
        };
        let s = self
            .call_upload::<ep::UploadSessionStart>(&arg, data)
            .await?;
        Ok((s.session_id, hash))
    }

    /// Starts `n` empty sessions at once.
    pub async fn session_start_batch(&self, n: u32, concurrent: bool) -> Result<Vec<String>> {
        let arg = SessionStartBatchArg {
            session_type: session_type(concurrent),
            num_sessions: n.into(),
        };
        let r = self.call::<ep::UploadSessionStartBatch>(&arg).await?;
        Ok(r.session_ids)
    }

    pub async fn session_append(
        &self,
        session: &str,
        offset: u64,
        data: Bytes,
        close: bool,
    ) -> Result<()> {
        let arg = SessionAppendArg {
            cursor: cursor(session, offset),
            close,
            content_hash: None,
        };
        self.call_upload::<ep::UploadSessionAppendV2>(&arg, data)
            .await?;
        Ok(())
    }

    /// The older append (the cursor is the whole argument; it cannot close the session).
    pub async fn session_append_v1(&self, session: &str, offset: u64, data: Bytes) -> Result<()> {
        self.call_upload::<ep::UploadSessionAppend>(&cursor(session, offset), data)
            .await?;
        Ok(())
    }

    /// Finishes a session as a file (`UploadOptions::commit_info` makes a `CommitInfo`).
    pub async fn session_finish(
        &self,
        session: &str,
        offset: u64,
        commit: CommitInfo,
    ) -> Result<FileMetadata> {
        let arg = SessionFinishArg {
            cursor: cursor(session, offset),
            commit,
            content_hash: None,
        };
        self.call_upload::<ep::UploadSessionFinish>(&arg, Bytes::new())
            .await
    }

    /// Commits up to 1,000 closed sessions (`(session, offset, CommitInfo)`), in one
    /// transaction; one result entry per session, in order.
    pub async fn session_finish_batch(
        &self,
        entries: &[(&str, u64, CommitInfo)],
    ) -> Result<SessionFinishBatchResult> {
        self.call::<ep::UploadSessionFinishBatchV2>(&finish_entries(entries))
            .await
    }

    /// The older batch finish: an async job (poll with [`Self::session_finish_batch_check`]).
    pub async fn session_finish_batch_v1(
        &self,
        entries: &[(&str, u64, CommitInfo)],
    ) -> Result<SessionFinishBatchLaunch> {
        self.call::<ep::UploadSessionFinishBatch>(&finish_entries(entries))
            .await
    }

    pub async fn session_finish_batch_check(&self, job: &str) -> Result<SessionFinishBatchLaunch> {
        self.call::<ep::UploadSessionFinishBatchCheck>(&PollArg {
            async_job_id: job.to_owned(),
        })
        .await
    }

    // ---- links, references, fetches ----

    pub async fn get_temporary_link(&self, path: &str) -> Result<TemporaryLink> {
        self.call::<ep::GetTemporaryLink>(&path_arg(path)).await
    }

    /// A one-time link that takes a POST of the bytes of `path` (a `CommitInfo`'s path, added).
    pub async fn get_temporary_upload_link(&self, path: &str) -> Result<String> {
        let l = self
            .call::<ep::GetTemporaryUploadLink>(&TemporaryUploadLinkArg {
                commit_info: CommitInfo {
                    path: path.to_owned(),
                    ..CommitInfo::default()
                },
                duration: 14_400.0,
            })
            .await?;
        Ok(l.link)
    }

    pub async fn copy_reference_get(&self, path: &str) -> Result<CopyReference> {
        self.call::<ep::CopyReferenceGet>(&path_arg(path)).await
    }

    pub async fn copy_reference_save(&self, reference: &str, path: &str) -> Result<SavedReference> {
        self.call::<ep::CopyReferenceSave>(&SaveCopyReferenceArg {
            copy_reference: reference.to_owned(),
            path: path.to_owned(),
        })
        .await
    }

    pub async fn save_url_check(&self, job: &str) -> Result<SaveUrlStatus> {
        self.call::<ep::SaveUrlCheckJobStatus>(&job_arg(job)).await
    }

    /// Creates a shared link (`SharedLinkSettings::default()` for the defaults).
    pub async fn create_shared_link(
        &self,
        path: &str,
        settings: SharedLinkSettings,
    ) -> Result<SharedLinkMetadata> {
        let arg = CreateSharedLinkArg {
            path: path.to_owned(),
            settings: Some(settings),
        };
        self.call::<ep::CreateSharedLinkWithSettings>(&arg).await
    }

    /// The caller's links, or those of `path` (with `direct_only`, not its parents' links).
    pub async fn list_shared_links(
        &self,
        path: Option<&str>,
        direct_only: bool,
    ) -> Result<SharedLinks> {
        let arg = ListSharedLinksArg {
            path: path.map(str::to_owned),
            cursor: None,
            direct_only: path.is_some() && direct_only,
        };
        self.call::<ep::ListSharedLinks>(&arg).await
    }

    pub async fn get_shared_link_metadata(
        &self,
        url: &str,
        password: Option<&str>,
    ) -> Result<SharedLinkMetadata> {
        let arg = SharedLinkReadArg {
            url: url.to_owned(),
            path: None,
            link_password: password.map(str::to_owned),
        };
        self.call::<ep::GetSharedLinkMetadata>(&arg).await
    }

    pub async fn modify_shared_link(
        &self,
        url: &str,
        settings: SharedLinkSettings,
    ) -> Result<SharedLinkMetadata> {
        let arg = ModifySharedLinkArg {
            url: url.to_owned(),
            settings,
            remove_expiration: false,
        };
        self.call::<ep::ModifySharedLinkSettings>(&arg).await
    }

    pub async fn revoke_shared_link(&self, url: &str) -> Result<()> {
        self.call::<ep::RevokeSharedLink>(&UrlArg {
            url: url.to_owned(),
        })
        .await?;
        Ok(())
    }

    // ---- shared folders ----

    /// Shares the folder at `path` (Cubby completes the share before it answers).
    pub async fn share_folder(&self, path: &str) -> Result<f::ShareFolderLaunch> {
        let arg: f::ShareFolderArg = built(json!({ "path": path }));
        self.call::<ep::ShareFolder>(&arg).await
    }

    pub async fn check_share_job_status(&self, job: &str) -> Result<f::ShareFolderJobStatus> {
        self.call::<ep::CheckShareJobStatus>(&poll(job)).await
    }

    pub async fn check_job_status(&self, job: &str) -> Result<f::SharingJobStatus> {
        self.call::<ep::CheckJobStatus>(&poll(job)).await
    }

    pub async fn check_remove_member_job_status(
        &self,
        job: &str,
    ) -> Result<f::RemoveMemberJobStatus> {
        self.call::<ep::CheckRemoveMemberJobStatus>(&poll(job))
            .await
    }

    pub async fn get_folder_metadata(&self, id: &str) -> Result<f::SharedFolderMetadata> {
        let arg: f::GetMetadataArgs = built(json!({ "shared_folder_id": id }));
        self.call::<ep::GetFolderMetadata>(&arg).await
    }

    /// The folders shared with this account (`mountable`: only those not mounted yet).
    pub async fn list_folders(&self, mountable: bool) -> Result<f::ListFoldersResult> {
        let arg: f::ListFoldersArgs = built(json!({}));
        if mountable {
            self.call::<ep::ListMountableFolders>(&arg).await
        } else {
            self.call::<ep::ListFolders>(&arg).await
        }
    }

    pub async fn list_folders_continue(
        &self,
        cursor: &str,
        mountable: bool,
    ) -> Result<f::ListFoldersResult> {
        let arg = f::ListFoldersContinueArg {
            cursor: cursor.to_owned(),
        };
        if mountable {
            self.call::<ep::ListMountableFoldersContinue>(&arg).await
        } else {
            self.call::<ep::ListFoldersContinue>(&arg).await
        }
    }

    /// Adds members by account id or e-mail address (a Cubby server also takes a user
    /// name), as editors or viewers.
    pub async fn add_folder_member(&self, id: &str, members: Vec<f::AddMember>) -> Result<()> {
        let arg = f::AddFolderMemberArg {
            shared_folder_id: id.to_owned(),
            members,
            quiet: false,
            custom_message: None,
        };
        self.call::<ep::AddFolderMember>(&arg).await?;
        Ok(())
    }

    pub async fn update_folder_member(
        &self,
        id: &str,
        member: f::MemberSelector,
        access_level: f::AccessLevel,
    ) -> Result<f::MemberAccessLevelResult> {
        let arg = f::UpdateFolderMemberArg {
            shared_folder_id: id.to_owned(),
            member,
            access_level,
        };
        self.call::<ep::UpdateFolderMember>(&arg).await
    }

    pub async fn remove_folder_member(
        &self,
        id: &str,
        member: f::MemberSelector,
        leave_a_copy: bool,
    ) -> Result<f::LaunchResultBase> {
        let arg = f::RemoveFolderMemberArg {
            shared_folder_id: id.to_owned(),
            member,
            leave_a_copy,
        };
        self.call::<ep::RemoveFolderMember>(&arg).await
    }

    pub async fn list_folder_members(&self, id: &str) -> Result<f::SharedFolderMembers> {
        let arg: f::ListFolderMembersArgs = built(json!({ "shared_folder_id": id }));
        self.call::<ep::ListFolderMembers>(&arg).await
    }

    pub async fn list_folder_members_continue(
        &self,
        cursor: &str,
    ) -> Result<f::SharedFolderMembers> {
        let arg = f::ListFolderMembersContinueArg {
            cursor: cursor.to_owned(),
        };
        self.call::<ep::ListFolderMembersContinue>(&arg).await
    }

    pub async fn relinquish_folder_membership(
        &self,
        id: &str,
        leave_a_copy: bool,
    ) -> Result<f::LaunchEmptyResult> {
        let arg = f::RelinquishFolderMembershipArg {
            shared_folder_id: id.to_owned(),
            leave_a_copy,
        };
        self.call::<ep::RelinquishFolderMembership>(&arg).await
    }

    pub async fn mount_folder(&self, id: &str) -> Result<f::SharedFolderMetadata> {
        let arg = f::MountFolderArg {
            shared_folder_id: id.to_owned(),
        };
        self.call::<ep::MountFolder>(&arg).await
    }

    pub async fn unmount_folder(&self, id: &str) -> Result<()> {
        let arg = f::UnmountFolderArg {
            shared_folder_id: id.to_owned(),
        };
        self.call::<ep::UnmountFolder>(&arg).await?;
        Ok(())
    }

    pub async fn unshare_folder(
        &self,
        id: &str,
        leave_a_copy: bool,
    ) -> Result<f::LaunchEmptyResult> {
        let arg = f::UnshareFolderArg {
            shared_folder_id: id.to_owned(),
            leave_a_copy,
        };
        self.call::<ep::UnshareFolder>(&arg).await
    }

    pub async fn transfer_folder(&self, id: &str, to_account_id: &str) -> Result<()> {
        let arg = f::TransferFolderArg {
            shared_folder_id: id.to_owned(),
            to_dropbox_id: to_account_id.to_owned(),
        };
        self.call::<ep::TransferFolder>(&arg).await?;
        Ok(())
    }

    /// Sets a folder's policies from their wire words (`None` leaves one as it is).
    pub async fn update_folder_policy(
        &self,
        id: &str,
        member_policy: Option<&str>,
        acl_update_policy: Option<&str>,
    ) -> Result<f::SharedFolderMetadata> {
        let mut arg = json!({ "shared_folder_id": id });
        if let Some(p) = member_policy {
            arg["member_policy"] = json!({ ".tag": p });
        }
        if let Some(p) = acl_update_policy {
            arg["acl_update_policy"] = json!({ ".tag": p });
        }
        let arg: f::UpdateFolderPolicyArg = built(arg);
        self.call::<ep::UpdateFolderPolicy>(&arg).await
    }

    pub async fn get_account(&self, account_id: &str) -> Result<f::BasicAccount> {
        let arg = f::GetAccountArg {
            account_id: account_id.to_owned(),
        };
        self.call::<ep::GetAccount>(&arg).await
    }

    pub async fn get_account_batch(&self, account_ids: &[String]) -> Result<Vec<f::BasicAccount>> {
        let arg = f::GetAccountBatchArg {
            account_ids: account_ids.to_vec(),
        };
        self.call::<ep::GetAccountBatch>(&arg).await
    }

    // ---- downloads as bytes (small files; large ones: `download_file`) ----

    /// The bytes of a file (or of `range`), held in memory: for small files.
    pub async fn download_bytes(
        &self,
        path: &str,
        range: Option<(u64, u64)>,
    ) -> Result<(FileMetadata, Bytes)> {
        let (meta, resp) = self
            .call_download::<ep::Download>(
                &DownloadArg {
                    path: path.to_owned(),
                    rev: None,
                },
                range,
            )
            .await?;
        Ok((meta, resp.bytes().await?))
    }

    /// A folder as a ZIP archive, in memory: for small folders.
    pub async fn download_zip_bytes(&self, path: &str) -> Result<Bytes> {
        let (_, resp) = self
            .call_download::<ep::DownloadZip>(&path_arg(path), None)
            .await?;
        Ok(resp.bytes().await?)
    }

    /// A shared link's file (or a file below a folder link).
    pub async fn get_shared_link_file(
        &self,
        url: &str,
        path: Option<&str>,
    ) -> Result<(SharedLinkMetadata, Bytes)> {
        let arg = SharedLinkReadArg {
            url: url.to_owned(),
            path: path.map(str::to_owned),
            link_password: None,
        };
        let (meta, resp) = self
            .call_download::<ep::GetSharedLinkFile>(&arg, None)
            .await?;
        Ok((meta, resp.bytes().await?))
    }

    /// The thumbnail of a file or of a shared link's file (`get_thumbnail_v2`).
    pub async fn get_thumbnail_v2(&self, arg: &ThumbnailV2Arg) -> Result<(PreviewResult, Bytes)> {
        let (meta, resp) = self.call_download::<ep::GetThumbnailV2>(arg, None).await?;
        Ok((meta, resp.bytes().await?))
    }

    /// The thumbnail of a file, with its metadata (the older `get_thumbnail`).
    pub async fn get_thumbnail(&self, arg: &ThumbnailArg) -> Result<(FileMetadata, Bytes)> {
        let (meta, resp) = self.call_download::<ep::GetThumbnail>(arg, None).await?;
        Ok((meta, resp.bytes().await?))
    }

    /// Up to 25 thumbnails in one call, each a success (base64) or a failure.
    pub async fn get_thumbnail_batch(
        &self,
        entries: Vec<ThumbnailArg>,
    ) -> Result<GetThumbnailBatchResult> {
        self.call::<ep::GetThumbnailBatch>(&GetThumbnailBatchArg { entries })
            .await
    }

    /// A preview of a file (images as JPEG, PDFs as they are).
    pub async fn get_preview(&self, path: &str) -> Result<(FileMetadata, Bytes)> {
        let arg = PreviewArg {
            path: path.to_owned(),
            rev: None,
        };
        let (meta, resp) = self.call_download::<ep::GetPreview>(&arg, None).await?;
        Ok((meta, resp.bytes().await?))
    }
}

fn path_arg(path: &str) -> PathArg {
    PathArg {
        path: path.to_owned(),
    }
}

fn list_arg(path: &str, opts: &ListOptions) -> ListFolderArg {
    ListFolderArg {
        path: path.to_owned(),
        recursive: opts.recursive,
        include_deleted: opts.include_deleted,
        limit: opts.limit,
        shared_link: None,
    }
}

fn relocation(from: &str, to: &str, autorename: bool) -> RelocationArg {
    RelocationArg {
        paths: RelocationPath {
            from_path: from.to_owned(),
            to_path: to.to_owned(),
        },
        autorename,
    }
}

fn relocations(pairs: &[(&str, &str)], autorename: bool) -> RelocationBatchArg {
    RelocationBatchArg {
        entries: pairs
            .iter()
            .map(|(f, t)| RelocationPath {
                from_path: (*f).to_owned(),
                to_path: (*t).to_owned(),
            })
            .collect(),
        autorename,
    }
}

fn job_arg(job: &str) -> PollArg {
    PollArg {
        async_job_id: job.to_owned(),
    }
}

/// Waits for a batch launched as a job: polls `check` (with the job's id) until the job is
/// complete, at most `tries` times, `every` apart. A launch that completed at once is its
/// own result.
pub async fn settle<T, F, Fut>(
    launch: Launch<T>,
    check: F,
    every: std::time::Duration,
    tries: u32,
) -> Result<T>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<JobStatus<T>>>,
{
    let job = match launch {
        Launch::Complete(r) => return Ok(r),
        Launch::AsyncJobId { async_job_id } => async_job_id,
    };
    for _ in 0..tries {
        tokio::time::sleep(every).await;
        if let JobStatus::Complete(r) = check(job.clone()).await? {
            return Ok(r);
        }
    }
    Err(crate::Error::Protocol(format!(
        "job {job} did not finish after {tries} checks"
    )))
}

fn session_type(concurrent: bool) -> Value {
    json!(if concurrent {
        "concurrent"
    } else {
        "sequential"
    })
}

fn cursor(session: &str, offset: u64) -> SessionCursor {
    SessionCursor {
        session_id: session.to_owned(),
        offset,
    }
}

fn finish_entries(entries: &[(&str, u64, CommitInfo)]) -> SessionFinishBatchArg {
    let entries = entries
        .iter()
        .map(|(s, o, c)| SessionFinishArg {
            cursor: cursor(s, *o),
            commit: c.clone(),
            content_hash: None,
        })
        .collect();
    SessionFinishBatchArg { entries }
}

/// A route argument built here from its JSON form (so its optional fields take Dropbox's
/// defaults); the JSON is this file's own, so it always decodes.
fn built<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("an argument built in routes.rs decodes")
}

fn poll(job: &str) -> PollArg {
    PollArg {
        async_job_id: job.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use cubby_core::api::Route;

    /// Every route the wire contract declares has a typed client method: its endpoint type is
    /// named in this file or in `transfer.rs` (or, for the longpoll, in `lib.rs`). A route
    /// added to the table without a client method fails here.
    #[test]
    fn every_route_has_a_client_method() {
        let sources = [
            include_str!("routes.rs"),
            include_str!("transfer.rs"),
            include_str!("lib.rs"),
        ]
        .concat();
        // This test's own text is not a client method.
        let sources = sources.replace(
            include_str!("routes.rs")
                .split("#[cfg(test)]")
                .nth(1)
                .unwrap(),
            "",
        );
        let named = |r: &Route| {
            let needle = format!("ep::{r:?}");
            sources.match_indices(&needle).any(|(at, _)| {
                let next = sources[at + needle.len()..].chars().next();
                !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            })
        };
        let missing: Vec<&str> = Route::ALL
            .iter()
            .filter(|r| !named(r))
            .map(|r| r.name())
            .collect();
        assert!(
            missing.is_empty(),
            "routes without a client method: {missing:?}"
        );
    }
}
