//! API errors: an HTTP status, a stable machine code and a human message that says what is wrong
//! and what to do about it.
//!
//! Scripts branch on `Code` (it never changes once published); people read `Message`. Every
//! failure of a handler, including the extractor rejections axum would otherwise answer in plain
//! text (bad JSON, a body over the limit), goes out in this one JSON shape.

use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mms_store::directory::DirectoryConflict;
use mms_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::import::RowError;

/// The JSON body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorBody {
    /// Stable code, e.g. `user_not_found`, `unknown_meeting_type`, `forbidden`.
    pub code: String,
    /// What is wrong and what to fix.
    pub message: String,
    /// Every problem of a rejected import (row, field, what is wrong); absent otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<RowError>,
}

/// An error a handler returns; rendered as [`ErrorBody`] with `status`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub errors: Vec<RowError>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            errors: Vec::new(),
        }
    }

    /// 400 for an import with bad rows, listing every one.
    pub fn invalid_import(errors: Vec<RowError>) -> Self {
        let message = format!(
            "the import has {} problem(s); nothing was imported: fix the rows listed in Errors",
            errors.len()
        );
        ApiError {
            errors,
            ..Self::bad_request("invalid_import", message)
        }
    }

    /// 400: the request itself is wrong (a bad value, a malformed id).
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404: the addressed resource does not exist.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 409: the request conflicts with what is stored (a tenant that exists, a refused migration).
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 404 `tenant_not_found`: the path's tenant does not exist.
    pub fn unknown_tenant(tenant: &str) -> Self {
        Self::not_found(
            codes::TENANT_NOT_FOUND,
            format!("tenant {tenant:?} does not exist: create it first with POST /v1/tenants (mmsctl create-tenant)"),
        )
    }

    /// 404 `user_not_found`: no user of the tenant has this UPN or SIP address.
    pub fn unknown_user(tenant: &str, identity: &str) -> Self {
        Self::not_found(
            codes::USER_NOT_FOUND,
            format!(
                "no user {identity:?} in tenant {tenant:?} (looked up as UPN and as SIP address): \
                 add it with PUT /v1/tenants/{tenant}/users/{{upn}} or an import (mmsctl set-user, import-users)"
            ),
        )
    }

    /// 404 `bridge_not_found`: the tenant has no bridge with this id.
    pub fn unknown_bridge(tenant: &str, id: &str) -> Self {
        Self::not_found(
            codes::BRIDGE_NOT_FOUND,
            format!("no bridge {id:?} in tenant {tenant}: create it with PUT /v1/tenants/{tenant}/bridges/{id} (mmsctl set-bridge)"),
        )
    }

    /// 404 `migration_not_found`: the tenant has no migration with this correlation id.
    pub fn unknown_migration(tenant: &str, correlation_id: &str) -> Self {
        Self::not_found(
            codes::MIGRATION_NOT_FOUND,
            format!("no migration {correlation_id:?} in tenant {tenant}: list them with GET /v1/tenants/{tenant}/migrations (mmsctl get-meeting-migration-status)"),
        )
    }
}

/// The codes of "not found": one rule across the API, a 404 whose code names what is missing.
pub mod codes {
    pub const TENANT_NOT_FOUND: &str = "tenant_not_found";
    pub const USER_NOT_FOUND: &str = "user_not_found";
    pub const BRIDGE_NOT_FOUND: &str = "bridge_not_found";
    pub const MIGRATION_NOT_FOUND: &str = "migration_not_found";
    pub const TOKEN_NOT_FOUND: &str = "token_not_found";
}

impl From<DirectoryConflict> for ApiError {
    /// 409 `sip_in_use` / `user_id_in_use`, naming the user who holds the address or id.
    fn from(conflict: DirectoryConflict) -> Self {
        let code = match conflict {
            DirectoryConflict::SipInUse { .. } => "sip_in_use",
            DirectoryConflict::UserIdInUse { .. } => "user_id_in_use",
        };
        ApiError::conflict(code, conflict.to_string())
    }
}

impl From<StoreError> for ApiError {
    /// Each store failure as what it means to a client: only an unreachable Redis is "retry
    /// later" (503); a corrupt record is the server's fault and names the key (500); a
    /// contradictory request is the client's (400); a lost lease, a migration a live worker is
    /// running and a queued request that kept changing are conflicts (409). The store's message
    /// names the key or the Redis failure; nothing secret is in it.
    fn from(e: StoreError) -> Self {
        let (status, code, message) = match &e {
            StoreError::Redis(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                format!("the Redis store failed ({e}); retry when Redis is reachable"),
            ),
            StoreError::Corrupt(_) | StoreError::CorruptRecord { .. } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "store_corrupt",
                format!("{e}: an operator must repair or delete that record with redis-cli"),
            ),
            StoreError::Encode { .. } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "store_encode",
                format!("{e}: this is a bug in MMS; please report it"),
            ),
            StoreError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request", e.to_string()),
            StoreError::LeaseLost { .. } => (StatusCode::CONFLICT, "lease_lost", e.to_string()),
            StoreError::JobClaimLost { .. } => {
                (StatusCode::CONFLICT, "job_claim_lost", e.to_string())
            }
            StoreError::InProgress { .. } => {
                (StatusCode::CONFLICT, "migration_in_progress", e.to_string())
            }
            StoreError::Contention { .. } => (StatusCode::CONFLICT, "contention", e.to_string()),
            StoreError::NotMergeable { .. } => {
                (StatusCode::CONFLICT, "request_queued", e.to_string())
            }
        };
        if status.is_server_error() {
            tracing::error!(error = %e, code, "store error");
        } else {
            tracing::warn!(error = %e, code, "store refused the request");
        }
        ApiError::new(status, code, message)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return too_large();
        }
        // axum answers a well-formed body of the wrong shape with 422; to clients it is bad input
        // like any other, so it gets the same 400 (415, a missing JSON content type, is kept).
        let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
            StatusCode::BAD_REQUEST
        } else {
            status
        };
        ApiError::new(
            status,
            "invalid_body",
            format!(
                "the request body is not the expected JSON: {}",
                rejection.body_text()
            ),
        )
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return too_large();
        }
        ApiError::new(status, "invalid_body", rejection.body_text())
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the request body is larger than the configured limit (api.body_limit_bytes): split the import into smaller files",
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code.to_string(),
            message: self.message,
            errors: self.errors,
        };
        (self.status, Json(body)).into_response()
    }
}

/// The result type of every handler.
pub type ApiResult<T> = Result<T, ApiError>;
