//! `files/copy_reference/get` and `files/copy_reference/save`: content moves between
//! accounts by reference, without its bytes (the store binds a reference to a revision).

use cubby_core::api::endpoint as ep;
use cubby_core::api::errors::{LookupError, PathLookupError, SaveCopyReferenceError, WriteError};
use cubby_core::api::types::{CopyReference, PathArg, SaveCopyReferenceArg, SavedReference};
use cubby_core::path::Pattern;
use cubby_store::Kind;
use cubby_store::copyref::SaveRefError;

use crate::api::{Answer, Ctx, Fail, Resolved, unexpected, write_error};

pub(crate) async fn get(ctx: &Ctx, a: PathArg) -> Answer<ep::CopyReferenceGet> {
    let lookup = |l: LookupError| Fail::Route(PathLookupError::Path { path: l });
    let entry = match ctx.resolve("path", &a.path, Pattern::ReadPath).await? {
        Resolved::Path { ns, lower, .. } => ctx.store().entry(ns, &lower).await?,
        Resolved::Revision(e) => Some(*e),
        Resolved::Malformed => return Err(lookup(LookupError::MalformedPath)),
        Resolved::NotFolder => return Err(lookup(LookupError::NotFolder)),
        Resolved::NotFound => None,
    };
    // The caller's own root has no id to bind to; everything else live can be referenced.
    let entry = match entry {
        Some(e) if e.kind != Kind::Deleted && !ctx.is_top(ctx.ns_of(&e), &e.path_lower) => e,
        _ => return Err(lookup(LookupError::NotFound)),
    };
    let (reference, expires) = ctx
        .store()
        .mint_copy_ref(ctx.ns_of(&entry), ctx.auth().account.id, &entry)
        .await?;
    Ok(CopyReference {
        metadata: ctx.metadata(&entry),
        copy_reference: reference,
        expires: cubby_core::time::format(expires),
    })
}

pub(crate) async fn save(ctx: &Ctx, a: SaveCopyReferenceArg) -> Answer<ep::CopyReferenceSave> {
    use SaveCopyReferenceError as E;
    let path_err = |w: WriteError| Fail::Route(E::Path { path: w });
    let (ns, display) = match ctx.resolve("path", &a.path, Pattern::Path).await? {
        Resolved::Path { ns, lower, .. } if ctx.is_top(ns, &lower) => {
            return Err(path_err(WriteError::MalformedPath));
        }
        Resolved::Path {
            read_only: true, ..
        }
        | Resolved::NotFound => return Err(path_err(WriteError::NoWritePermission)),
        Resolved::Path { ns, display, .. } => (ns, display),
        _ => return Err(path_err(WriteError::MalformedPath)),
    };
    match ctx
        .store()
        .save_copy_ref(&a.copy_reference, ns, &display)
        .await
    {
        Ok(e) => Ok(SavedReference {
            metadata: ctx.metadata(&e),
        }),
        Err(SaveRefError::Invalid) => Err(Fail::Route(E::InvalidCopyReference)),
        Err(SaveRefError::NoPermission) => Err(Fail::Route(E::NoPermission)),
        Err(SaveRefError::NotFound) => Err(Fail::Route(E::NotFound)),
        Err(SaveRefError::TooManyFiles) => Err(Fail::Route(E::TooManyFiles)),
        Err(SaveRefError::Write(e)) => Err(match write_error(&e) {
            Some(w) => path_err(w),
            None => unexpected(e).into(),
        }),
    }
}
