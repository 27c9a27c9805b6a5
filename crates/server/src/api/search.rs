//! search_v2 and search/continue_v2: file-name search.
//!
//! The query is split on spaces; every token must occur in the item's name (case-insensitive),
//! and a name that starts with the last token ranks higher, as Dropbox's filename search
//! treats the last token as a prefix. The store narrows candidates with the longest token;
//! ranking, filters and paging happen here. Pages continue through a sealed cursor.

use cubby_core::path::{Pattern, lower, name_of};
use cubby_store::{Entry, Kind};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::{ApiError, ApiResult, Ctx, Resolved, json_response};

type Reply = ApiResult<axum::response::Response>;

/// Most matches a search reports over all its pages, as on Dropbox.
const MAX_MATCHES: usize = 10_000;

/// The kind tag of sealed search cursors.
const CURSOR_KIND: &str = "s1";

#[derive(Clone, Deserialize, Serialize, Default)]
struct Options {
    path: Option<String>,
    #[serde(default = "default_max")]
    max_results: u64,
    order_by: Option<Value>,
    file_status: Option<Value>,
    file_extensions: Option<Vec<String>>,
    file_categories: Option<Vec<Value>>,
}

fn default_max() -> u64 {
    100
}

#[derive(Deserialize)]
struct SearchArg {
    query: String,
    #[serde(default)]
    options: Option<Options>,
}

#[derive(Deserialize)]
struct ContinueArg {
    cursor: String,
}

/// Where a search stands, sealed into its cursor.
#[derive(Serialize, Deserialize)]
struct SearchCursor {
    account: i64,
    query: String,
    options: Options,
    offset: usize,
}

fn category_extensions(category: &str) -> &'static [&'static str] {
    match category {
        "image" => &[
            "jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "webp", "heic", "svg", "raw",
        ],
        "document" => &["doc", "docx", "odt", "rtf", "txt", "md", "pages"],
        "pdf" => &["pdf"],
        "spreadsheet" => &["xls", "xlsx", "ods", "csv", "numbers"],
        "presentation" => &["ppt", "pptx", "odp", "key"],
        "audio" => &["mp3", "wav", "flac", "aac", "ogg", "m4a", "aiff"],
        "video" => &["mp4", "mov", "avi", "mkv", "webm", "m4v", "wmv"],
        "paper" => &["paper"],
        _ => &[],
    }
}

pub(crate) async fn search(ctx: &Ctx, arg: Value) -> Reply {
    let a: SearchArg = ctx.arg(arg)?;
    if a.query.chars().count() > 1000 {
        return Err(ctx.bad_input("request body: query: longer than 1000 characters"));
    }
    let cursor = SearchCursor {
        account: ctx.auth().account.id,
        query: a.query,
        options: a.options.unwrap_or(Options {
            max_results: default_max(),
            ..Options::default()
        }),
        offset: 0,
    };
    page(ctx, cursor).await
}

pub(crate) async fn search_continue(ctx: &Ctx, arg: Value) -> Reply {
    let a: ContinueArg = ctx.arg(arg)?;
    let c: SearchCursor =
        cubby_core::cursor::open(ctx.store().cursor_key(), CURSOR_KIND, &a.cursor)
            .filter(|c: &SearchCursor| c.account == ctx.auth().account.id)
            .ok_or_else(|| {
                ApiError::Route(
                    json!({".tag": "invalid_argument", "invalid_argument": "invalid cursor"}),
                )
            })?;
    page(ctx, c).await
}

async fn page(ctx: &Ctx, mut c: SearchCursor) -> Reply {
    let o = &c.options;
    if !(1..=1000).contains(&o.max_results) {
        return Err(ctx.bad_input("request body: options.max_results: must be within 1..1000"));
    }
    let deleted = match o
        .file_status
        .as_ref()
        .and_then(|v| cubby_core::wire::union_tag(v))
    {
        None | Some(("active", _)) => false,
        Some(("deleted", _)) => true,
        _ => {
            return Err(
                ctx.bad_input("request body: options.file_status: expected 'active' or 'deleted'")
            );
        }
    };
    let by_time = matches!(
        o.order_by
            .as_ref()
            .and_then(|v| cubby_core::wire::union_tag(v)),
        Some(("last_modified_time", _))
    );
    let path_err = |l: &str| ApiError::Route(json!({".tag": "path", "path": {".tag": l}}));
    let scope = match &o.path {
        None => ctx.root_lower(),
        Some(p) => match ctx.resolve("options.path", p, Pattern::PathROrId).await? {
            Resolved::Path { lower, .. } => lower,
            Resolved::Malformed => return Err(path_err("malformed_path")),
            _ => return Err(path_err("not_found")),
        },
    };
    // The scope must be an existing folder (the namespace root always is).
    if !scope.is_empty() {
        match ctx.store().entry(ctx.ns(), &scope).await? {
            Some(e) if e.kind == Kind::Folder => {}
            Some(e) if e.kind == Kind::File => return Err(path_err("not_folder")),
            _ => return Err(path_err("not_found")),
        }
    }
    let tokens: Vec<String> = lower(&c.query)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let Some(needle) = tokens.iter().max_by_key(|t| t.len()).cloned() else {
        return Err(ApiError::Route(
            json!({".tag": "invalid_argument", "invalid_argument": "empty query"}),
        ));
    };
    let mut extensions: Vec<String> = o
        .file_extensions
        .iter()
        .flatten()
        .map(|e| lower(e.trim_start_matches('.')))
        .collect();
    let mut folders_wanted = false;
    for cat in o.file_categories.iter().flatten() {
        match cubby_core::wire::union_tag(cat) {
            Some(("folder", _)) => folders_wanted = true,
            Some((name, _)) => {
                extensions.extend(category_extensions(name).iter().map(|e| e.to_string()))
            }
            None => {}
        }
    }
    let filter_by_type = !extensions.is_empty() || folders_wanted;
    let candidates = ctx
        .store()
        .search_candidates(ctx.ns(), &scope, &needle, deleted)
        .await?;
    let last = tokens.last().expect("a token").clone();
    let mut hits: Vec<(u8, Entry)> = candidates
        .into_iter()
        .filter_map(|e| {
            let name = name_of(&e.path_lower).to_owned();
            if !tokens.iter().all(|t| name.contains(t.as_str())) {
                return None;
            }
            if filter_by_type {
                let ext = name.rsplit_once('.').map(|(_, x)| x).unwrap_or("");
                let type_ok = match e.kind {
                    Kind::Folder => folders_wanted,
                    _ => extensions.iter().any(|x| x == ext),
                };
                if !type_ok {
                    return None;
                }
            }
            let rank = if name == last {
                0
            } else if name.starts_with(last.as_str()) {
                1
            } else {
                2
            };
            Some((rank, e))
        })
        .collect();
    if by_time {
        hits.sort_by_key(|h| std::cmp::Reverse(h.1.server_modified));
    } else {
        hits.sort_by_key(|h| h.0);
    }
    hits.truncate(MAX_MATCHES);
    let max = o.max_results as usize;
    let end = (c.offset + max).min(hits.len());
    let matches: Vec<Value> = hits[c.offset.min(end)..end]
        .iter()
        .map(|(_, e)| {
            json!({
                "metadata": {".tag": "metadata", "metadata": ctx.metadata_json(e, true)},
                "match_type": {".tag": "filename"},
            })
        })
        .collect();
    let has_more = end < hits.len();
    c.offset = end;
    let mut body = json!({"matches": matches, "has_more": has_more});
    if has_more {
        body["cursor"] = json!(cubby_core::cursor::seal(
            ctx.store().cursor_key(),
            CURSOR_KIND,
            &c
        ));
    }
    Ok(json_response(axum::http::StatusCode::OK, &body))
}
