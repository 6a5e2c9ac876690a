//! Operator endpoints (tenants, tokens: mint, list, revoke) and the unauthenticated ones (health, OpenAPI document).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use mms_core::TenantSettings;
use mms_store::directory::{TokenEntry, TokenRole, TOKEN_ID_LEN};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::auth::{new_token, Caller};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json::JsonBody;
use crate::{validate, ApiState};

/// `POST /v1/tenants`: a new tenant with its two switches (both on unless given).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateTenant {
    pub tenant: String,
    #[serde(default)]
    pub meeting_migration_enabled: Option<bool>,
    #[serde(default)]
    pub automatically_migrate_user_meetings: Option<bool>,
    /// The tenant's verified mail domains: only users in these can be migrated (see
    /// `PUT /v1/tenants/{tenant}/domains`). Each domain has one owner.
    #[serde(default)]
    pub domains: Vec<String>,
}

/// `POST /v1/tokens`: mint a tenant-admin token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateToken {
    pub tenant: String,
}

/// A minted token: shown this once, stored only as its SHA-256.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct MintedToken {
    pub tenant: String,
    pub token: String,
    /// The token's public id (not secret): what `GET /v1/tokens` lists and `DELETE /v1/tokens/{id}` revokes.
    pub id: String,
}

/// A stored token as `GET /v1/tokens` lists it: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct TokenInfo {
    /// Public id: the first 12 hex digits of the token's SHA-256.
    pub id: String,
    /// `Operator` or `TenantAdmin`.
    pub role: String,
    /// The tenant of a tenant-admin token; absent for the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

impl From<TokenEntry> for TokenInfo {
    fn from(entry: TokenEntry) -> Self {
        let (role, tenant) = match entry.role {
            TokenRole::Operator => ("Operator", None),
            TokenRole::TenantAdmin { tenant } => ("TenantAdmin", Some(tenant)),
        };
        TokenInfo {
            id: entry.id,
            role: role.to_string(),
            tenant,
        }
    }
}

/// This API's OpenAPI 3.1 document, generated from the code.
#[utoipa::path(get, path = "/openapi.json", tag = "admin", security(()), responses((status = 200, body = Object)))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::ApiDoc::openapi())
}

/// Create a tenant (operator only); 409 when it exists.
#[utoipa::path(post, path = "/v1/tenants", tag = "admin", request_body = CreateTenant,
    responses((status = 201, body = TenantSettings), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
               (status = 409, body = ErrorBody)))]
pub async fn create_tenant(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateTenant>,
) -> ApiResult<(StatusCode, Json<TenantSettings>)> {
    caller.require_operator()?;
    let tenant = validate::tenant_id(&body.tenant)?;
    let mut settings = TenantSettings::defaults(&tenant);
    settings.meeting_migration_enabled = body.meeting_migration_enabled.unwrap_or(true);
    settings.automatically_migrate_user_meetings =
        body.automatically_migrate_user_meetings.unwrap_or(true);
    let domains = crate::routes::domains::parse_domains(&body.domains)?;
    for domain in &domains {
        if let Some(owner) = state.store.domain_owner(domain).await? {
            return Err(ApiError::conflict(
                "domain_taken",
                format!("mail domain {domain} belongs to another tenant ({owner}): a domain has one owner"),
            ));
        }
    }
    if !state.store.create_tenant(&settings).await? {
        return Err(ApiError::conflict("tenant_exists", format!("tenant {tenant:?} already exists: change its switches with PUT /v1/tenants/{tenant}/configuration/...")));
    }
    crate::routes::domains::claim(&state, &tenant, &domains).await?;
    Ok((StatusCode::CREATED, Json(settings)))
}

/// The tenants the caller may see: all for the operator, its own for a tenant admin.
#[utoipa::path(get, path = "/v1/tenants", tag = "admin", responses((status = 200, body = Vec<String>)))]
pub async fn list_tenants(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<Json<Vec<String>>> {
    let mut visible = Vec::new();
    for tenant in state.store.tenants().await? {
        if caller.require_tenant(&tenant).is_ok()
            && state.store.tenant_settings(&tenant).await?.is_some()
        {
            visible.push(tenant);
        }
    }
    Ok(Json(visible))
}

/// Mint a tenant-admin token (operator only). The token is in this response and nowhere else.
#[utoipa::path(post, path = "/v1/tokens", tag = "admin", request_body = CreateToken,
    responses((status = 201, body = MintedToken), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_token(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateToken>,
) -> ApiResult<(StatusCode, Json<MintedToken>)> {
    caller.require_operator()?;
    let tenant = validate::tenant_id(&body.tenant)?;
    if state.store.tenant_settings(&tenant).await?.is_none() {
        return Err(ApiError::unknown_tenant(&tenant));
    }
    let token = new_token();
    let id = state
        .store
        .put_token(
            &token,
            &TokenRole::TenantAdmin {
                tenant: tenant.clone(),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(MintedToken { tenant, token, id })))
}

/// Every stored token by id, role and tenant (operator only); the tokens themselves are not
/// stored, so they cannot be listed.
#[utoipa::path(get, path = "/v1/tokens", tag = "admin",
    responses((status = 200, body = Vec<TokenInfo>), (status = 403, body = ErrorBody)))]
pub async fn list_tokens(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<Json<Vec<TokenInfo>>> {
    caller.require_operator()?;
    let tokens = state.store.tokens().await?;
    Ok(Json(tokens.into_iter().map(TokenInfo::from).collect()))
}

/// Revoke a token by its id (operator only): it stops working at once. The operator token from
/// the configuration is installed again at every start; rotate it by changing the configuration.
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "admin", params(("id" = String, Path)),
    responses((status = 200, body = TokenInfo), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<TokenInfo>> {
    caller.require_operator()?;
    let id = id.trim().to_ascii_lowercase();
    if id.len() != TOKEN_ID_LEN || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(
            "malformed_token_id",
            format!("token id {id:?} is not {TOKEN_ID_LEN} hex digits: take the Id from GET /v1/tokens (mmsctl list-tokens)"),
        ));
    }
    match state.store.revoke_token(&id).await? {
        Some(entry) => Ok(Json(entry.into())),
        None => Err(ApiError::not_found(
            "token_not_found",
            format!("no token has id {id}: list them with GET /v1/tokens (mmsctl list-tokens)"),
        )),
    }
}
