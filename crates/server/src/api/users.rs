//! Account routes: users/get_current_account, users/get_space_usage and check/user.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiResult, Ctx, json_response};

/// The allocation reported without a quota when the disk's free space cannot be read
/// (clients divide by the allocation, so it is never 0): 1 TiB.
const FALLBACK_ALLOCATION: u64 = 1 << 40;

type Reply = ApiResult<axum::response::Response>;

pub(crate) async fn get_current_account(ctx: &Ctx) -> Reply {
    let a = &ctx.auth().account;
    let ns = a.ns.to_string();
    let abbreviated: String = a.name.chars().take(2).collect::<String>().to_uppercase();
    let body = json!({
        "account_id": a.account_id,
        "name": {
            "given_name": a.name,
            "surname": "",
            "familiar_name": a.name,
            "display_name": a.name,
            "abbreviated_name": abbreviated,
        },
        "email": a.email,
        "email_verified": true,
        "disabled": a.disabled,
        "locale": "en",
        "referral_link": "",
        "is_paired": false,
        "account_type": {".tag": "basic"},
        "root_info": {".tag": "user", "root_namespace_id": ns, "home_namespace_id": ns},
    });
    Ok(json_response(axum::http::StatusCode::OK, &body))
}

pub(crate) async fn get_space_usage(ctx: &Ctx) -> Reply {
    let used = ctx.store().space_used(ctx.ns()).await?;
    // Without a quota an account may fill the disk: what it uses plus what is free there.
    let allocated = ctx.auth().account.quota.unwrap_or_else(|| {
        ctx.store()
            .free_space()
            .map_or(FALLBACK_ALLOCATION, |free| used.saturating_add(free))
    });
    let body = json!({
        "used": used,
        "allocation": {".tag": "individual", "allocated": allocated},
    });
    Ok(json_response(axum::http::StatusCode::OK, &body))
}

#[derive(Deserialize)]
struct EchoArg {
    #[serde(default)]
    query: String,
}

pub(crate) async fn check_user(ctx: &Ctx, arg: Value) -> Reply {
    let a: EchoArg = if arg.is_null() {
        EchoArg {
            query: String::new(),
        }
    } else {
        ctx.arg(arg)?
    };
    if a.query.chars().count() > 500 {
        return Err(ctx.bad_input("request body: query: longer than 500 characters"));
    }
    Ok(json_response(
        axum::http::StatusCode::OK,
        &json!({"result": a.query}),
    ))
}

/// `auth/token/revoke`: disables the calling token and the family it belongs to.
pub(crate) async fn revoke(ctx: &Ctx) -> Reply {
    ctx.store().revoke_token(ctx.auth().token_id).await?;
    Ok(json_response(axum::http::StatusCode::OK, &Value::Null))
}
