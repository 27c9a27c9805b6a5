//! One typed method per route of the API, for programs that use this crate as a library.
//!
//! Arguments are the route's fields as parameters (optional ones with Dropbox's defaults;
//! [`Client::rpc`] takes any argument for the rest); results are the types of [`crate::types`].
//! Job statuses and shared-link metadata are unions with many members, so those come back as
//! JSON values. Uploads and downloads of whole files are in [`crate::transfer`].

use bytes::Bytes;
use serde_json::{Value, json};

use crate::types::{
    Account, CopyReference, FileMetadata, FolderResult, ListFolderResult, ListRevisionsResult,
    LongpollResult, Metadata, MetadataResult, SaveUrlStatus, SavedReference, SessionStart,
    SpaceUsage,
};
use crate::{Client, Result};

/// A listing's options.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub recursive: bool,
    pub include_deleted: bool,
    pub limit: Option<u32>,
}

/// A search's answer (`SearchV2Result`): the matching entries, in order.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct SearchResult {
    pub matches: Vec<SearchMatch>,
    pub has_more: bool,
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Clone, Debug, serde::Deserialize)]
pub struct SearchMatch {
    pub metadata: SearchMetadata,
}

/// `MetadataV2`: a union whose only member is the metadata.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct SearchMetadata {
    pub metadata: Metadata,
}

/// `GetTemporaryLinkResult`.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct TemporaryLink {
    pub metadata: FileMetadata,
    pub link: String,
}

/// `GetTemporaryUploadLinkResult`, and any result that is one `link`.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Link {
    pub link: String,
}

/// A result that is one `cursor`.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Cursor {
    pub cursor: String,
}

/// `ListSharedLinksResult`; each link is `SharedLinkMetadata` (a union) as JSON.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct SharedLinks {
    pub links: Vec<Value>,
    pub has_more: bool,
    #[serde(default)]
    pub cursor: Option<String>,
}

impl Client {
    // ---- users, check, auth ----

    pub async fn get_current_account(&self) -> Result<Account> {
        self.rpc("users/get_current_account", &Value::Null).await
    }

    pub async fn get_space_usage(&self) -> Result<SpaceUsage> {
        self.rpc("users/get_space_usage", &Value::Null).await
    }

    /// `check/user`: echoes `query`.
    pub async fn check_user(&self, query: &str) -> Result<String> {
        let v: Value = self.rpc("check/user", &json!({"query": query})).await?;
        Ok(v["result"].as_str().unwrap_or_default().to_owned())
    }

    /// `check/app`: echoes `query`, authenticated as the app (HTTP Basic with its key and
    /// secret), not as a user.
    pub async fn check_app(&self, query: &str) -> Result<String> {
        let resp = self
            .http()
            .post(format!("{}/2/check/app", self.hosts().api))
            .basic_auth(&self.app.key, self.app.secret.as_deref())
            .json(&json!({"query": query}))
            .send()
            .await?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await?;
        if status != 200 {
            return Err(crate::error_from(status, &body));
        }
        let v: Value =
            serde_json::from_slice(&body).map_err(|e| crate::Error::Protocol(e.to_string()))?;
        Ok(v["result"].as_str().unwrap_or_default().to_owned())
    }

    /// Revokes this client's token (and its refresh family).
    pub async fn revoke_token(&self) -> Result<()> {
        let _: Value = self.rpc("auth/token/revoke", &Value::Null).await?;
        Ok(())
    }

    // ---- metadata and listing ----

    pub async fn get_metadata(&self, path: &str, include_deleted: bool) -> Result<Metadata> {
        self.rpc(
            "files/get_metadata",
            &json!({"path": path, "include_deleted": include_deleted}),
        )
        .await
    }

    pub async fn list_folder(&self, path: &str, opts: &ListOptions) -> Result<ListFolderResult> {
        let mut arg = json!({
            "path": path,
            "recursive": opts.recursive,
            "include_deleted": opts.include_deleted,
        });
        if let Some(l) = opts.limit {
            arg["limit"] = json!(l);
        }
        self.rpc("files/list_folder", &arg).await
    }

    pub async fn get_latest_cursor(&self, path: &str, recursive: bool) -> Result<String> {
        let c: Cursor = self
            .rpc(
                "files/list_folder/get_latest_cursor",
                &json!({"path": path, "recursive": recursive}),
            )
            .await?;
        Ok(c.cursor)
    }

    pub async fn search(&self, query: &str, path: Option<&str>) -> Result<SearchResult> {
        let mut arg = json!({"query": query});
        if let Some(p) = path {
            arg["options"] = json!({"path": p});
        }
        self.rpc("files/search_v2", &arg).await
    }

    pub async fn search_continue(&self, cursor: &str) -> Result<SearchResult> {
        self.rpc("files/search/continue_v2", &json!({"cursor": cursor}))
            .await
    }

    pub async fn list_revisions(&self, path: &str, limit: u32) -> Result<ListRevisionsResult> {
        self.rpc(
            "files/list_revisions",
            &json!({"path": path, "limit": limit}),
        )
        .await
    }

    /// Waits for changes after `cursor` (the notify host; at most `timeout` seconds, 30–480).
    pub async fn wait_for_changes(&self, cursor: &str, timeout: u64) -> Result<LongpollResult> {
        self.longpoll(cursor, timeout).await
    }

    // ---- namespace changes ----

    pub async fn create_folder(&self, path: &str, autorename: bool) -> Result<FolderResult> {
        self.rpc(
            "files/create_folder_v2",
            &json!({"path": path, "autorename": autorename}),
        )
        .await
    }

    pub async fn delete(&self, path: &str, parent_rev: Option<&str>) -> Result<MetadataResult> {
        let mut arg = json!({"path": path});
        if let Some(r) = parent_rev {
            arg["parent_rev"] = json!(r);
        }
        self.rpc("files/delete_v2", &arg).await
    }

    pub async fn permanently_delete(&self, path: &str) -> Result<()> {
        let _: Value = self
            .rpc("files/permanently_delete", &json!({"path": path}))
            .await?;
        Ok(())
    }

    pub async fn move_item(
        &self,
        from: &str,
        to: &str,
        autorename: bool,
    ) -> Result<MetadataResult> {
        self.relocate("files/move_v2", from, to, autorename).await
    }

    pub async fn copy_item(
        &self,
        from: &str,
        to: &str,
        autorename: bool,
    ) -> Result<MetadataResult> {
        self.relocate("files/copy_v2", from, to, autorename).await
    }

    async fn relocate(
        &self,
        route: &str,
        from: &str,
        to: &str,
        autorename: bool,
    ) -> Result<MetadataResult> {
        self.rpc(
            route,
            &json!({"from_path": from, "to_path": to, "autorename": autorename}),
        )
        .await
    }

    pub async fn restore(&self, path: &str, rev: &str) -> Result<FileMetadata> {
        self.rpc("files/restore", &json!({"path": path, "rev": rev}))
            .await
    }

    // ---- batches: each starts a job (or finishes at once); statuses are unions ----

    /// `(from, to)` pairs.
    pub async fn copy_batch(&self, pairs: &[(&str, &str)], autorename: bool) -> Result<Value> {
        self.rpc("files/copy_batch_v2", &relocations(pairs, autorename))
            .await
    }

    pub async fn copy_batch_check(&self, job: &str) -> Result<Value> {
        self.check("files/copy_batch/check_v2", job).await
    }

    pub async fn move_batch(&self, pairs: &[(&str, &str)], autorename: bool) -> Result<Value> {
        self.rpc("files/move_batch_v2", &relocations(pairs, autorename))
            .await
    }

    pub async fn move_batch_check(&self, job: &str) -> Result<Value> {
        self.check("files/move_batch/check_v2", job).await
    }

    pub async fn delete_batch(&self, paths: &[&str]) -> Result<Value> {
        let entries: Vec<Value> = paths.iter().map(|p| json!({"path": p})).collect();
        self.rpc("files/delete_batch", &json!({"entries": entries}))
            .await
    }

    pub async fn delete_batch_check(&self, job: &str) -> Result<Value> {
        self.check("files/delete_batch/check", job).await
    }

    pub async fn create_folder_batch(&self, paths: &[&str], autorename: bool) -> Result<Value> {
        self.rpc(
            "files/create_folder_batch",
            &json!({"paths": paths, "autorename": autorename, "force_async": false}),
        )
        .await
    }

    pub async fn create_folder_batch_check(&self, job: &str) -> Result<Value> {
        self.check("files/create_folder_batch/check", job).await
    }

    async fn check(&self, route: &str, job: &str) -> Result<Value> {
        self.rpc(route, &json!({"async_job_id": job})).await
    }

    // ---- upload sessions ----

    /// Starts a session (`concurrent` for out-of-order 4 MiB-aligned appends) with `data`.
    pub async fn session_start(
        &self,
        data: Bytes,
        concurrent: bool,
        close: bool,
    ) -> Result<String> {
        let arg = json!({
            "close": close,
            "session_type": if concurrent { "concurrent" } else { "sequential" },
        });
        let s: SessionStart = self
            .upload_route("files/upload_session/start", &arg, data)
            .await?;
        Ok(s.session_id)
    }

    /// Starts `n` empty sessions at once.
    pub async fn session_start_batch(&self, n: u32, concurrent: bool) -> Result<Vec<String>> {
        let arg = json!({
            "num_sessions": n,
            "session_type": if concurrent { "concurrent" } else { "sequential" },
        });
        let v: Value = self.rpc("files/upload_session/start_batch", &arg).await?;
        Ok(v["session_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    pub async fn session_append(
        &self,
        session: &str,
        offset: u64,
        data: Bytes,
        close: bool,
    ) -> Result<()> {
        let arg = json!({"cursor": {"session_id": session, "offset": offset}, "close": close});
        let _: Value = self
            .upload_route("files/upload_session/append_v2", &arg, data)
            .await?;
        Ok(())
    }

    /// Finishes a session as a file; `commit` is a `CommitInfo` (`{"path": …, "mode": …}`).
    pub async fn session_finish(
        &self,
        session: &str,
        offset: u64,
        commit: Value,
    ) -> Result<FileMetadata> {
        let arg = json!({"cursor": {"session_id": session, "offset": offset}, "commit": commit});
        self.upload_route("files/upload_session/finish", &arg, Bytes::new())
            .await
    }

    /// Commits up to 1,000 closed sessions (`(session, offset, CommitInfo)`); the result's
    /// `entries` are `UploadSessionFinishBatchResultEntry` unions.
    pub async fn session_finish_batch(&self, entries: &[(&str, u64, Value)]) -> Result<Value> {
        let entries: Vec<Value> = entries
            .iter()
            .map(|(s, o, c)| json!({"cursor": {"session_id": s, "offset": o}, "commit": c}))
            .collect();
        self.rpc(
            "files/upload_session/finish_batch_v2",
            &json!({"entries": entries}),
        )
        .await
    }

    // ---- links, references, fetches ----

    pub async fn get_temporary_link(&self, path: &str) -> Result<TemporaryLink> {
        self.rpc("files/get_temporary_link", &json!({"path": path}))
            .await
    }

    /// A one-time link that takes a POST of the bytes of `path` (a `CommitInfo`'s path, added).
    pub async fn get_temporary_upload_link(&self, path: &str) -> Result<String> {
        let l: Link = self
            .rpc(
                "files/get_temporary_upload_link",
                &json!({"commit_info": {"path": path}}),
            )
            .await?;
        Ok(l.link)
    }

    pub async fn copy_reference_get(&self, path: &str) -> Result<CopyReference> {
        self.rpc("files/copy_reference/get", &json!({"path": path}))
            .await
    }

    pub async fn copy_reference_save(&self, reference: &str, path: &str) -> Result<SavedReference> {
        self.rpc(
            "files/copy_reference/save",
            &json!({"copy_reference": reference, "path": path}),
        )
        .await
    }

    pub async fn save_url_check(&self, job: &str) -> Result<SaveUrlStatus> {
        self.rpc(
            "files/save_url/check_job_status",
            &json!({"async_job_id": job}),
        )
        .await
    }

    /// Creates a shared link; `settings` is `SharedLinkSettings` (`{}` for the defaults).
    pub async fn create_shared_link(&self, path: &str, settings: Value) -> Result<Value> {
        self.rpc(
            "sharing/create_shared_link_with_settings",
            &json!({"path": path, "settings": settings}),
        )
        .await
    }

    pub async fn list_shared_links(&self, path: Option<&str>) -> Result<SharedLinks> {
        let mut arg = json!({});
        if let Some(p) = path {
            arg["path"] = json!(p);
        }
        self.rpc("sharing/list_shared_links", &arg).await
    }

    pub async fn get_shared_link_metadata(
        &self,
        url: &str,
        password: Option<&str>,
    ) -> Result<Value> {
        let mut arg = json!({"url": url});
        if let Some(p) = password {
            arg["link_password"] = json!(p);
        }
        self.rpc("sharing/get_shared_link_metadata", &arg).await
    }

    pub async fn modify_shared_link(&self, url: &str, settings: Value) -> Result<Value> {
        self.rpc(
            "sharing/modify_shared_link_settings",
            &json!({"url": url, "settings": settings}),
        )
        .await
    }

    pub async fn revoke_shared_link(&self, url: &str) -> Result<()> {
        let _: Value = self
            .rpc("sharing/revoke_shared_link", &json!({"url": url}))
            .await?;
        Ok(())
    }

    // ---- downloads as bytes (small files; large ones: `download_file`) ----

    /// The bytes of a file (or of `range`), held in memory: for small files.
    pub async fn download_bytes(
        &self,
        path: &str,
        range: Option<(u64, u64)>,
    ) -> Result<(FileMetadata, Bytes)> {
        let (meta, resp): (FileMetadata, _) = self
            .download_route("files/download", &json!({"path": path}), range)
            .await?;
        Ok((meta, resp.bytes().await?))
    }

    /// A folder as a ZIP archive, in memory: for small folders.
    pub async fn download_zip_bytes(&self, path: &str) -> Result<Bytes> {
        let (_, resp): (Value, _) = self
            .download_route("files/download_zip", &json!({"path": path}), None)
            .await?;
        Ok(resp.bytes().await?)
    }

    /// A shared link's file (or a file below a folder link).
    pub async fn get_shared_link_file(
        &self,
        url: &str,
        path: Option<&str>,
    ) -> Result<(Value, Bytes)> {
        let mut arg = json!({"url": url});
        if let Some(p) = path {
            arg["path"] = json!(p);
        }
        let (meta, resp): (Value, _) = self
            .download_route("sharing/get_shared_link_file", &arg, None)
            .await?;
        Ok((meta, resp.bytes().await?))
    }
}

fn relocations(pairs: &[(&str, &str)], autorename: bool) -> Value {
    let entries: Vec<Value> = pairs
        .iter()
        .map(|(f, t)| json!({"from_path": f, "to_path": t}))
        .collect();
    json!({"entries": entries, "autorename": autorename})
}
