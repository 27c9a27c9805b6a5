//! `files/get_thumbnail_v2`, `get_thumbnail`, `get_thumbnail_batch` and `get_preview`, over
//! the thumbnail service (`crate::thumb`).

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use cubby_core::api::endpoint as ep;
use cubby_core::api::errors::{
    GetThumbnailBatchError, LookupError, PreviewError, SharedLinkError, ThumbnailError,
    ThumbnailV2Error,
};
use cubby_core::api::types::{
    Dimensions, FileMetadata, GetThumbnailBatchArg, GetThumbnailBatchResult,
    GetThumbnailBatchResultData, GetThumbnailBatchResultEntry, GpsCoordinates, MediaInfo,
    MediaMetadata, MinimalFileLinkMetadata, PathOrLink, PreviewArg, PreviewResult,
    SharedLinkReadArg, ThumbnailArg, ThumbnailFormat, ThumbnailMode, ThumbnailSize, ThumbnailV2Arg,
};
use cubby_store::Entry;
use cubby_store::thumbs::MediaRow;

use crate::api::{Answer, ApiError, Ctx, Fail};
use crate::thumb::{Failure, Refused, Want};

/// Entries of one `get_thumbnail_batch` (Dropbox's limit).
const BATCH_MAX: usize = 25;

/// Entries of a batch worked on at once: cached ones are answered while others decode (the
/// decoding pool bounds the rest).
const BATCH_IN_FLIGHT: usize = 4;

/// The box of `get_preview`'s image previews.
const PREVIEW: Want = Want {
    size: ThumbnailSize::W1024h768,
    mode: ThumbnailMode::Bestfit,
    format: ThumbnailFormat::Jpeg,
};

/// What a thumbnail failure is in the route's union.
enum Why {
    Extension,
    Image,
    Conversion,
}

/// The same three members, in both thumbnail unions.
macro_rules! from_why {
    ($($union:ident),*) => {$(
        impl From<Why> for $union {
            fn from(w: Why) -> Self {
                match w {
                    Why::Extension => $union::UnsupportedExtension,
                    Why::Image => $union::UnsupportedImage,
                    Why::Conversion => $union::ConversionError,
                }
            }
        }
    )*};
}
from_why!(ThumbnailV2Error, ThumbnailError);

fn why(f: Failure) -> Result<Why, ApiError> {
    match f {
        Failure::Extension => Ok(Why::Extension),
        Failure::Refused(Refused::Unsupported(_)) => Ok(Why::Image),
        Failure::Refused(Refused::Conversion(_)) => Ok(Why::Conversion),
        Failure::Store(e) => Err(e.into()),
    }
}

/// The thumbnail of `entry` as an HTTP body.
fn image_response(bytes: Bytes, format: ThumbnailFormat) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, format.mime()),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        Body::from(bytes),
    )
        .into_response()
}

/// `media_info` as Dropbox writes it for a photo.
pub(crate) fn media_info(m: MediaRow) -> MediaInfo {
    MediaInfo::Metadata {
        metadata: MediaMetadata {
            tag: "photo".into(),
            dimensions: Some(Dimensions {
                height: m.height,
                width: m.width,
            }),
            location: m.location.map(|(lat, lon)| GpsCoordinates {
                latitude: lat as f64 / 1e6,
                longitude: lon as f64 / 1e6,
            }),
            time_taken: m.taken.map(cubby_core::time::format),
            duration: None,
        },
    }
}

/// Makes (or finds) the thumbnail of a file the caller reached.
async fn make(
    ctx: &Ctx,
    entry: &Entry,
    want: Want,
) -> Result<Result<(Bytes, Option<MediaRow>), Why>, ApiError> {
    match ctx
        .state
        .thumbs
        .thumbnail(ctx.store(), entry, entry.name(), want)
        .await
    {
        Ok(v) => Ok(Ok(v)),
        Err(f) => why(f).map(Err),
    }
}

fn with_media(mut md: FileMetadata, media: Option<MediaRow>, exclude: bool) -> FileMetadata {
    if !exclude {
        md.media_info = media.map(|m| Box::new(media_info(m)));
    }
    md
}

pub(crate) async fn get_thumbnail_v2(
    ctx: &Ctx,
    a: ThumbnailV2Arg,
    headers: &HeaderMap,
) -> Result<(PreviewResult, Response), Fail<ThumbnailV2Error>> {
    use ThumbnailV2Error as E;
    if a.preserve_transparency && a.format == ThumbnailFormat::Jpeg {
        return Err(Fail::Route(E::UnsupportedOutputFormat));
    }
    let want = Want {
        size: a.size,
        mode: a.mode,
        format: a.format,
    };
    let why_err = |w: Why| Fail::Route(E::from(w));
    match a.resource {
        PathOrLink::Path { path } => {
            if ctx.auth.is_none() {
                return Err(ctx
                    .bad_input("a path resource needs a user's access token; the app's key and secret reach shared links only")
                    .into());
            }
            let entry = ctx
                .read_file(&path)
                .await?
                .map_err(|l| Fail::Route(E::Path { path: l }))?;
            let (bytes, media) = make(ctx, &entry, want).await?.map_err(why_err)?;
            let md = crate::api::history::file_metadata(ctx, &entry)?;
            let result = PreviewResult {
                file_metadata: Some(with_media(md, media, a.exclude_media_info)),
                link_metadata: None,
            };
            Ok((result, image_response(bytes, a.format)))
        }
        PathOrLink::Link(info) => {
            let read = SharedLinkReadArg {
                url: info.url.clone(),
                path: info.path.clone(),
                link_password: info.password.clone(),
            };
            let (url, owner, entry) =
                match crate::api::links::read_file_through(ctx, &read, headers).await {
                    Ok(v) => v,
                    Err(Fail::Route(SharedLinkError::SharedLinkAccessDenied)) => {
                        return Err(Fail::Route(E::AccessDenied));
                    }
                    Err(Fail::Route(SharedLinkError::SharedLinkIsDirectory)) => {
                        return Err(Fail::Route(E::Path {
                            path: LookupError::NotFile,
                        }));
                    }
                    Err(Fail::Route(_)) => return Err(Fail::Route(E::NotFound)),
                    Err(Fail::Api(e)) => return Err(Fail::Api(e)),
                };
            let (bytes, _) = make(ctx, &entry, want).await?.map_err(why_err)?;
            let result = PreviewResult {
                file_metadata: None,
                link_metadata: Some(MinimalFileLinkMetadata {
                    url,
                    id: owner.then(|| entry.id.clone()).flatten(),
                    path: owner.then(|| ctx.metadata(&entry).path_display().to_owned()),
                    rev: entry.rev.clone().unwrap_or_default(),
                }),
            };
            Ok((result, image_response(bytes, a.format)))
        }
    }
}

/// One `ThumbnailArg`: the file's metadata and its thumbnail.
async fn thumbnail_of(
    ctx: &Ctx,
    a: &ThumbnailArg,
) -> Result<(FileMetadata, Bytes), Fail<ThumbnailError>> {
    use ThumbnailError as E;
    let entry = ctx
        .read_file(&a.path)
        .await?
        .map_err(|l| Fail::Route(E::Path { path: l }))?;
    let want = Want {
        size: a.size,
        mode: a.mode,
        format: a.format,
    };
    let (bytes, media) = make(ctx, &entry, want)
        .await?
        .map_err(|w| Fail::Route(E::from(w)))?;
    let md = crate::api::history::file_metadata(ctx, &entry)?;
    Ok((with_media(md, media, a.exclude_media_info), bytes))
}

pub(crate) async fn get_thumbnail(
    ctx: &Ctx,
    a: ThumbnailArg,
) -> Result<(FileMetadata, Response), Fail<ThumbnailError>> {
    let (md, bytes) = thumbnail_of(ctx, &a).await?;
    Ok((md, image_response(bytes, a.format)))
}

pub(crate) async fn get_thumbnail_batch(
    ctx: &Ctx,
    a: GetThumbnailBatchArg,
) -> Answer<ep::GetThumbnailBatch> {
    if a.entries.len() > BATCH_MAX {
        return Err(Fail::Route(GetThumbnailBatchError::TooManyFiles));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut results = Vec::with_capacity(a.entries.len());
    for part in a.entries.chunks(BATCH_IN_FLIGHT) {
        let futures: Vec<_> = part.iter().map(|e| thumbnail_of(ctx, e)).collect();
        results.extend(futures_util::future::join_all(futures).await);
    }
    let mut entries = Vec::with_capacity(results.len());
    for r in results {
        entries.push(match r {
            Ok((metadata, bytes)) => {
                GetThumbnailBatchResultEntry::Success(Box::new(GetThumbnailBatchResultData {
                    metadata,
                    thumbnail: b64.encode(&bytes),
                }))
            }
            Err(Fail::Route(failure)) => GetThumbnailBatchResultEntry::Failure { failure },
            // A malformed entry fails the whole call, as its argument would.
            Err(Fail::Api(e)) => return Err(Fail::Api(e)),
        });
    }
    Ok(GetThumbnailBatchResult { entries })
}

/// Extensions `get_preview` serves as they are, with their media type.
const AS_IS: &[(&str, &str)] = &[("pdf", "application/pdf")];

pub(crate) async fn get_preview(
    ctx: &Ctx,
    a: PreviewArg,
    headers: &HeaderMap,
) -> Result<(FileMetadata, Response), Fail<PreviewError>> {
    use PreviewError as E;
    let path = ctx.path_or_rev(&a.path, a.rev.as_deref())?;
    let entry = ctx
        .read_file(&path)
        .await?
        .map_err(|l| Fail::Route(E::Path { path: l }))?;
    let md = crate::api::history::file_metadata(ctx, &entry)?;
    let ext = entry
        .name()
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    if let Some((_, mime)) = AS_IS.iter().find(|(e, _)| *e == ext) {
        let resp =
            crate::api::transfer::serve_file(&ctx.state, &entry, None, mime, headers).await?;
        return Ok((md, resp));
    }
    match make(ctx, &entry, PREVIEW).await? {
        Ok((bytes, _)) => Ok((md, image_response(bytes, PREVIEW.format))),
        Err(Why::Extension) => Err(Fail::Route(E::UnsupportedExtension)),
        Err(Why::Image | Why::Conversion) => Err(Fail::Route(E::UnsupportedContent)),
    }
}
