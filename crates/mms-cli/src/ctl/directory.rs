//! Directory commands: import users from a file, list / show / set / remove one user, and the
//! audio-conferencing bridges.

use std::path::Path;

use mms_control::import::UserRecord;
use mms_control::routes::directory::{BridgeRecord, UserQuery};
use mms_control::routes::{PageQuery, NEXT_OFFSET_HEADER};
use mms_core::DialInNumber;
use reqwest::Method;

use super::args::{ListUsersArgs, SetUserArgs};
use super::client::{encode, params, text_of, Body, Failure};
use super::render::View;
use super::{Ctx, Shown};

/// `import-users --file`: CSV, or JSON for a `.json` file; sent as is, checked by the API.
pub async fn import(ctx: &Ctx, file: &Path) -> Result<Shown, Failure> {
    let bytes = std::fs::read(file)
        .map_err(|e| Failure::local("unreadable_file", format!("{}: {e}", file.display())))?;
    let is_json = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let content_type = if is_json {
        "application/json"
    } else {
        "text/csv"
    };
    let value = ctx
        .client
        .send(
            Method::POST,
            &ctx.tenant_path("/users:import")?,
            Some(Body::Raw {
                content_type,
                bytes,
            }),
        )
        .await?;
    Shown::reply(value, View::Fields)
}

/// `list-users`: one page, filtered; when more users match, stderr says which `--offset` shows
/// the next page.
pub async fn list_users(ctx: &Ctx, args: ListUsersArgs) -> Result<Shown, Failure> {
    let mut query = params(&UserQuery {
        home: args.home,
        mailbox: args.mailbox,
        teams_upgrade_mode: args.teams_upgrade_mode,
        bridge: args.bridge,
        audio_enabled: args.audio_enabled,
    })?;
    query.extend(params(&PageQuery {
        limit: args.limit,
        offset: args.offset,
    })?);
    let reply = ctx
        .client
        .get_query(&ctx.tenant_path("/users")?, &query)
        .await?;
    let note = reply
        .headers
        .get(NEXT_OFFSET_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|next| format!("more users match: list the next page with --offset {next}"));
    Ok(Shown::Reply {
        value: reply.value,
        view: View::Users,
        note,
    })
}

/// `get-user --identity`.
pub async fn get_user(ctx: &Ctx, identity: &str) -> Result<Shown, Failure> {
    let path = ctx.tenant_path(&format!("/users/{}", encode(identity)))?;
    Shown::reply(ctx.client.get(&path).await?, View::Fields)
}

/// `set-user`: the user's current record (if any) with the given fields changed, `PUT` back.
/// Reading first is what makes "change only what is given" possible over a create-or-replace
/// API; a user changed by someone else in between is overwritten with what was read.
pub async fn set_user(ctx: &Ctx, args: SetUserArgs) -> Result<Shown, Failure> {
    let path = ctx.tenant_path(&format!("/users/{}", encode(&args.identity)))?;
    let mut record = match ctx.client.get(&path).await {
        Ok(current) => {
            let profile: mms_core::UserProfile = serde_json::from_value(current).map_err(|e| {
                Failure::local(
                    "unexpected_reply",
                    format!("the API's user record does not decode: {e}"),
                )
            })?;
            UserRecord::from(&profile)
        }
        Err(failure) if failure.status == Some(404) => UserRecord::default(),
        Err(failure) => return Err(failure),
    };
    record.upn = None; // the path's
    if let Some(sip) = args.sip_address {
        record.sip_address = Some(sip);
    }
    if let Some(id) = args.user_id {
        record.user_id = Some(id);
    }
    if let Some(home) = args.home {
        record.home = Some(name(&home));
    }
    if let Some(mailbox) = args.mailbox {
        record.mailbox = Some(name(&mailbox));
    }
    if let Some(mode) = args.teams_upgrade_mode {
        record.teams_upgrade_mode = Some(name(&mode));
    }
    if let Some(enabled) = args.audio_enabled {
        record.audio_enabled = Some(enabled.to_string());
    }
    if let Some(provider) = args.audio_provider {
        record.audio_provider = Some(name(&provider));
    }
    if let Some(bridge) = args.bridge {
        record.bridge = Some(bridge);
    }
    if let Some(id) = args.conference_id {
        record.conference_id = Some(id);
    }
    if let Some(number) = args.default_toll_number {
        record.default_toll_number = Some(number);
    }
    Shown::reply(
        ctx.client.send_json(Method::PUT, &path, &record).await?,
        View::Fields,
    )
}

/// The API's spelling of a directory enum value (its serde name, e.g. `OnPremises`).
fn name(value: &impl serde::Serialize) -> String {
    text_of(&serde_json::to_value(value).unwrap_or_default())
}

/// `remove-user --identity`.
pub async fn remove_user(ctx: &Ctx, identity: &str) -> Result<Shown, Failure> {
    let path = ctx.tenant_path(&format!("/users/{}", encode(identity)))?;
    ctx.client.send(Method::DELETE, &path, None).await?;
    Shown::reply(
        serde_json::json!({ "Removed": identity, "Tenant": ctx.tenant()? }),
        View::Fields,
    )
}

/// `set-bridge --id --name --number ...`.
pub async fn set_bridge(
    ctx: &Ctx,
    id: &str,
    name: String,
    numbers: &[String],
) -> Result<Shown, Failure> {
    let numbers = numbers
        .iter()
        .map(|text| dial_in_number(text))
        .collect::<Result<Vec<_>, Failure>>()?;
    let path = ctx.tenant_path(&format!("/bridges/{}", encode(id)))?;
    let body = BridgeRecord { name, numbers };
    Shown::reply(
        ctx.client.send_json(Method::PUT, &path, &body).await?,
        View::Bridges,
    )
}

/// `get-bridge [--id]`.
pub async fn get_bridge(ctx: &Ctx, id: Option<&str>) -> Result<Shown, Failure> {
    let path = match id {
        Some(id) => ctx.tenant_path(&format!("/bridges/{}", encode(id)))?,
        None => ctx.tenant_path("/bridges")?,
    };
    Shown::reply(ctx.client.get(&path).await?, View::Bridges)
}

/// One `--number` of set-bridge: `NUMBER|LABEL` or `NUMBER|LABEL|tollfree`.
pub fn dial_in_number(text: &str) -> Result<DialInNumber, Failure> {
    let bad = |why: &str| {
        Failure::local(
            "malformed_number",
            format!("--number {text:?}: {why}; write NUMBER|LABEL or NUMBER|LABEL|tollfree, e.g. \"+1 206-555-0100|United States, Seattle (Toll)\""),
        )
    };
    let mut parts = text.split('|').map(str::trim);
    let number = parts
        .next()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("the number is empty"))?;
    let label = parts
        .next()
        .filter(|l| !l.is_empty())
        .ok_or_else(|| bad("the label is missing"))?;
    let toll_free = match parts.next() {
        None => false,
        Some(flag)
            if flag.eq_ignore_ascii_case("tollfree") || flag.eq_ignore_ascii_case("toll-free") =>
        {
            true
        }
        Some(other) => return Err(bad(&format!("the third part is {other:?}, not tollfree"))),
    };
    if parts.next().is_some() {
        return Err(bad("too many '|'-separated parts"));
    }
    Ok(DialInNumber {
        number: number.to_string(),
        label: label.to_string(),
        toll_free,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_numbers_parse_with_an_optional_toll_free_flag() {
        let number = dial_in_number("+1 206-555-0100|United States, Seattle (Toll)").unwrap();
        assert_eq!(
            (
                number.number.as_str(),
                number.label.as_str(),
                number.toll_free
            ),
            ("+1 206-555-0100", "United States, Seattle (Toll)", false)
        );
        assert!(
            dial_in_number("+1 866-555-0199 | US | TollFree")
                .unwrap()
                .toll_free
        );
        for bad in ["", "+1 206", "|label", "+1|US|free", "+1|US|tollfree|x"] {
            let failure = dial_in_number(bad).unwrap_err();
            assert_eq!(failure.code, "malformed_number", "{bad}");
            assert!(
                failure.message.contains("NUMBER|LABEL"),
                "{}",
                failure.message
            );
        }
    }
}
