//! search_v2 and search/continue_v2: file-name search.
//!
//! The query is split on spaces; every token must occur in the item's name (case-insensitive),
//! and a name that starts with the last token ranks higher, as Dropbox's filename search
//! treats the last token as a prefix. The store narrows candidates with the longest token;
//! ranking, filters and paging happen here. Pages continue through a sealed cursor.

use cubby_core::api::endpoint as ep;
use cubby_core::api::errors::{LookupError, SearchError};
use cubby_core::api::types::{
    CursorArg, MetadataV2, SearchArg, SearchMatch, SearchOptions, SearchResult, Tag,
    default_max_results,
};
use cubby_core::path::{Pattern, is_within, lower, name_of};
use cubby_store::{Entry, Kind};
use serde::{Deserialize, Serialize};

use crate::api::{Answer, Ctx, Fail, Resolved};

/// Most matches a search reports over all its pages, as on Dropbox.
const MAX_MATCHES: usize = 10_000;

/// The kind tag of sealed search cursors.
const CURSOR_KIND: &str = "s1";

/// Where a search stands, sealed into its cursor.
#[derive(Serialize, Deserialize)]
struct SearchCursor {
    account: i64,
    query: String,
    options: SearchOptions,
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

pub(crate) async fn search(ctx: &Ctx, a: SearchArg) -> Answer<ep::SearchV2> {
    if a.query.chars().count() > 1000 {
        return Err(ctx
            .bad_input("request body: query: longer than 1000 characters")
            .into());
    }
    let cursor = SearchCursor {
        account: ctx.auth().account.id,
        query: a.query,
        options: a.options.unwrap_or(SearchOptions {
            max_results: default_max_results(),
            ..SearchOptions::default()
        }),
        offset: 0,
    };
    page(ctx, cursor).await
}

pub(crate) async fn search_continue(ctx: &Ctx, a: CursorArg) -> Answer<ep::SearchContinueV2> {
    let c: SearchCursor =
        cubby_core::cursor::open(ctx.store().cursor_key(), CURSOR_KIND, &a.cursor)
            .filter(|c: &SearchCursor| c.account == ctx.auth().account.id)
            .ok_or(Fail::Route(SearchError::InvalidArgument {
                invalid_argument: Some("invalid cursor".into()),
            }))?;
    page(ctx, c).await
}

async fn page(ctx: &Ctx, mut c: SearchCursor) -> Answer<ep::SearchV2> {
    let o = &c.options;
    if !(1..=1000).contains(&o.max_results) {
        return Err(ctx
            .bad_input("request body: options.max_results: must be within 1..1000")
            .into());
    }
    let deleted = match o
        .file_status
        .as_ref()
        .and_then(|v| cubby_core::wire::union_tag(v))
    {
        None | Some(("active", _)) => false,
        Some(("deleted", _)) => true,
        _ => {
            return Err(ctx
                .bad_input("request body: options.file_status: expected 'active' or 'deleted'")
                .into());
        }
    };
    let by_time = matches!(
        o.order_by
            .as_ref()
            .and_then(|v| cubby_core::wire::union_tag(v)),
        Some(("last_modified_time", _))
    );
    let path_err = |l: LookupError| Fail::Route(SearchError::Path { path: l });
    let (ns, scope) = match &o.path {
        None => (ctx.home_ns(), ctx.root_lower()),
        Some(p) => match ctx.resolve("options.path", p, Pattern::PathROrId).await? {
            Resolved::Path { ns, lower, .. } => ctx.inside(ns, lower),
            Resolved::Malformed => return Err(path_err(LookupError::MalformedPath)),
            _ => return Err(path_err(LookupError::NotFound)),
        },
    };
    // The scope must be an existing folder (the namespace root always is).
    if !scope.is_empty() {
        match ctx.store().entry(ns, &scope).await? {
            Some(e) if e.kind == Kind::Folder => {}
            Some(e) if e.kind == Kind::File => return Err(path_err(LookupError::NotFolder)),
            _ => return Err(path_err(LookupError::NotFound)),
        }
    }
    let tokens: Vec<String> = lower(&c.query)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let Some(needle) = tokens.iter().max_by_key(|t| t.len()).cloned() else {
        return Err(Fail::Route(SearchError::InvalidArgument {
            invalid_argument: Some("empty query".into()),
        }));
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
    let mut candidates = ctx
        .store()
        .search_candidates(ns, &scope, &needle, deleted)
        .await?;
    // A scope in the home takes in the shared folders mounted below it.
    if ns == ctx.home_ns() {
        for m in ctx.mounts().await? {
            if is_within(&m.lower, &scope) {
                candidates.extend(
                    ctx.store()
                        .search_candidates(m.ns, "", &needle, deleted)
                        .await?,
                );
            }
        }
    }
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
    let matches: Vec<SearchMatch> = hits[c.offset.min(end)..end]
        .iter()
        .map(|(_, e)| SearchMatch {
            metadata: MetadataV2::Metadata {
                metadata: ctx.metadata(e),
            },
            match_type: Some(Tag::new("filename")),
        })
        .collect();
    let has_more = end < hits.len();
    c.offset = end;
    Ok(SearchResult {
        matches,
        has_more,
        cursor: has_more
            .then(|| cubby_core::cursor::seal(ctx.store().cursor_key(), CURSOR_KIND, &c)),
    })
}
