//! `POST /v1/tenants/{tenant}/migrations:bulk`: start migrations (T4) for many users, or every
//! user of the tenant, as one background job (issue 11.6; see [`crate::jobs`]).
//!
//! The request is checked whole before anything is queued: the meeting types, and every listed
//! identity well formed (400), a user of the tenant (404) and in one of its mail domains (403);
//! each error names the identities at fault, so a typo in one line of a long list does not
//! start the others. Each user is then decided exactly as a
//! single start decides it (X1 and X2 refuse, the tenant switch is overridden and said so).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::jobs::{submit_and_reply, JobView};
use super::migrations::parse_meeting_types;
use super::{resolve_identity, tenant_settings};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::jobs::{BulkUsers, JobSpec};
use crate::json::JsonBody;
use crate::ApiState;

/// Identities listed in one bulk start at most; start every user with `AllUsers` instead.
pub const MAX_LISTED_IDENTITIES: usize = 100_000;
/// Identities named in an error at most (the count says how many there were).
const NAMED: usize = 20;

/// A bulk start: `Identities` or `AllUsers: true`, and the meeting types of a single start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct BulkStart {
    /// UPNs or SIP addresses (`sip:` optional) of the users to migrate.
    #[serde(default)]
    pub identities: Option<Vec<String>>,
    /// Every user of the tenant when the job runs.
    #[serde(default)]
    pub all_users: bool,
    /// `All` (default), `SfB` or `Teams`.
    #[serde(default)]
    pub source_meeting_type: Option<String>,
    /// `Current` (default) or `Teams`.
    #[serde(default)]
    pub target_meeting_type: Option<String>,
}

/// Start migrations for many users as one job: 202 with the job (`Location` names it) at once,
/// or 200 with the ended job under `Prefer: wait=N`. Follow it with `GET .../jobs/{id}`; each
/// user's history says what happened to them.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/migrations:bulk", tag = "migrations",
    params(("tenant" = String, Path),
           ("Prefer" = Option<String>, Header, description = "`wait=N`: wait up to N seconds (at most 60) for the job to end")),
    request_body = BulkStart,
    responses((status = 202, body = JobView, description = "stored as a job",
               headers(("Location" = String, description = "the job: /v1/tenants/{tenant}/jobs/{id}"))),
              (status = 200, body = JobView, description = "the job ended within `Prefer: wait`"),
              (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn bulk_start(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<BulkStart>,
) -> ApiResult<Response> {
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    let tenant = settings.tenant.clone();
    let (source, target) = parse_meeting_types(
        body.source_meeting_type.as_deref(),
        body.target_meeting_type.as_deref(),
    )?;
    let users = match (body.identities, body.all_users) {
        (None, true) => BulkUsers::All,
        (Some(identities), false) => {
            BulkUsers::Listed(resolve_all(&state, &tenant, &identities).await?)
        }
        (Some(_), true) => {
            return Err(ApiError::bad_request(
                "ambiguous_bulk_start",
                "give either Identities or AllUsers: true, not both",
            ))
        }
        (None, false) => return Err(ApiError::bad_request(
            "empty_bulk_start",
            "say whom to migrate: Identities (a list of UPNs or SIP addresses) or AllUsers: true",
        )),
    };
    let spec = JobSpec::Start {
        users,
        source,
        target,
    };
    submit_and_reply(&state, &tenant, &spec, &headers).await
}

/// Every identity's UPN, sorted and without repeats, or a 404 naming the unknown ones.
async fn resolve_all(
    state: &ApiState,
    tenant: &str,
    identities: &[String],
) -> ApiResult<Vec<String>> {
    if identities.is_empty() {
        return Err(ApiError::bad_request(
            "empty_bulk_start",
            "Identities is empty: list at least one user, or say AllUsers: true",
        ));
    }
    if identities.len() > MAX_LISTED_IDENTITIES {
        return Err(ApiError::bad_request(
            "too_many_identities",
            format!(
                "{} identities listed; at most {MAX_LISTED_IDENTITIES} per bulk start: split the list, or say AllUsers: true",
                identities.len()
            ),
        ));
    }
    let mut upns = Vec::with_capacity(identities.len());
    let mut unknown = Vec::new();
    let mut malformed = Vec::new();
    for identity in identities {
        match resolve_identity(state, tenant, identity).await {
            Ok(user) => upns.push(user.upn),
            Err(error) if error.status == StatusCode::NOT_FOUND => unknown.push(identity.as_str()),
            Err(error) if error.status == StatusCode::BAD_REQUEST => {
                malformed.push(identity.as_str())
            }
            Err(error) => return Err(error),
        }
    }
    let named = |list: &[&str]| {
        let shown: Vec<&str> = list.iter().take(NAMED).copied().collect();
        let more = if list.len() > shown.len() {
            ", ..."
        } else {
            ""
        };
        format!("{}{more}", shown.join(", "))
    };
    if !malformed.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_identity",
            format!(
                "{} of the {} identities are neither a UPN nor a SIP address (nothing was started): {}; write each as user@domain or sip:user@domain",
                malformed.len(),
                identities.len(),
                named(&malformed)
            ),
        ));
    }
    if !unknown.is_empty() {
        return Err(ApiError::not_found(
            crate::error::codes::USER_NOT_FOUND,
            format!(
                "{} of the {} identities are no user of tenant {tenant} (nothing was started): {}; add them (mmsctl set-user, import-users) or take them off the list",
                unknown.len(),
                identities.len(),
                named(&unknown)
            ),
        ));
    }
    upns.sort();
    upns.dedup();
    let mut outside = Vec::new();
    for upn in &upns {
        if !state.store.owns_upn(tenant, upn).await? {
            outside.push(upn.as_str());
        }
    }
    if !outside.is_empty() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "domain_not_owned",
            format!(
                "{} of the {} users are not in a mail domain of tenant {tenant} (nothing was started): {}; MMS opens only mailboxes in the tenant's own domains, which the operator assigns (mmsctl set-tenant-domains)",
                outside.len(),
                upns.len(),
                named(&outside)
            ),
        ));
    }
    Ok(upns)
}
