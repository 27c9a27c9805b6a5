//! Account routes: users/get_current_account, users/get_space_usage, check/user and
//! check/app, and auth/token/revoke.

use cubby_core::api::endpoint as ep;
use cubby_core::api::types::{
    AccountName, Allocation, EchoArg, EchoResult, FullAccount, RootInfo, SpaceUsage, Tag, Void,
};

use crate::api::{Answer, Ctx};

/// The allocation reported without a quota when the disk's free space cannot be read
/// (clients divide by the allocation, so it is never 0): 1 TiB.
const FALLBACK_ALLOCATION: u64 = 1 << 40;

/// Longest `query` the check routes echo, as Dropbox's spec allows.
const MAX_ECHO_CHARS: usize = 500;

/// An account's `Name`: Cubby knows one name per account.
pub(crate) fn account_name(name: &str) -> AccountName {
    AccountName {
        given_name: name.to_owned(),
        surname: String::new(),
        familiar_name: name.to_owned(),
        display_name: name.to_owned(),
        abbreviated_name: name.chars().take(2).collect::<String>().to_uppercase(),
    }
}

pub(crate) async fn get_current_account(ctx: &Ctx) -> Answer<ep::GetCurrentAccount> {
    let a = &ctx.auth().account;
    let ns = a.ns.to_string();
    Ok(FullAccount {
        account_id: a.account_id.clone(),
        name: account_name(&a.name),
        email: a.email.clone(),
        email_verified: true,
        disabled: a.disabled,
        locale: "en".into(),
        referral_link: String::new(),
        is_paired: false,
        account_type: Tag::new("basic"),
        root_info: Some(RootInfo {
            tag: "user".into(),
            root_namespace_id: ns.clone(),
            home_namespace_id: ns,
        }),
    })
}

pub(crate) async fn get_space_usage(ctx: &Ctx) -> Answer<ep::GetSpaceUsage> {
    // A mounted shared folder counts against each member's space, as Dropbox counts it.
    let used = crate::api::space_used_by(ctx.store(), &ctx.auth().account).await?;
    // Without a quota an account may fill the disk: what it uses plus what is free there.
    let allocated = ctx.auth().account.quota.unwrap_or_else(|| {
        ctx.store()
            .free_space()
            .map_or(FALLBACK_ALLOCATION, |free| used.saturating_add(free))
    });
    Ok(SpaceUsage {
        used,
        allocation: Allocation::Individual { allocated },
    })
}

/// `check/user` and `check/app`: echoes the query.
pub(crate) async fn check(ctx: &Ctx, a: EchoArg) -> Answer<ep::CheckUser> {
    if a.query.chars().count() > MAX_ECHO_CHARS {
        return Err(ctx
            .bad_input(&format!(
                "request body: query: longer than {MAX_ECHO_CHARS} characters"
            ))
            .into());
    }
    Ok(EchoResult { result: a.query })
}

/// `auth/token/revoke`: disables the calling token and the family it belongs to.
pub(crate) async fn revoke(ctx: &Ctx) -> Answer<ep::TokenRevoke> {
    ctx.store().revoke_token(ctx.auth().token_id).await?;
    Ok(Void)
}
