//! Bearer tokens (issue part 4): who is calling and which tenants they may see and change.
//!
//! The operator token comes from the configuration and is stored hashed at start-up; tenant-admin
//! tokens are minted through the API and returned once. Redis holds only `sha256(token)`, and no
//! type here implements `Debug` over a token, so a token cannot end up in a log line.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use mms_store::directory::TokenRole;
use rand::RngCore;

use crate::error::ApiError;
use crate::ApiState;

/// Prefix of every token MMS mints, so that a leaked one is recognisable in a secret scanner.
const TOKEN_PREFIX: &str = "mms_";

/// A fresh random token: 32 bytes from the OS generator, hex-encoded.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// The authenticated caller of a request.
pub struct Caller {
    role: TokenRole,
}

impl Caller {
    /// Allow operators only.
    pub fn require_operator(&self) -> Result<(), ApiError> {
        match self.role {
            TokenRole::Operator => Ok(()),
            TokenRole::TenantAdmin { .. } => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this needs the operator token; a tenant-admin token manages only its own tenant",
            )),
        }
    }

    /// Allow operators and the admins of `tenant`.
    pub fn require_tenant(&self, tenant: &str) -> Result<(), ApiError> {
        match &self.role {
            TokenRole::Operator => Ok(()),
            TokenRole::TenantAdmin { tenant: own } if own == tenant => Ok(()),
            TokenRole::TenantAdmin { .. } => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this token is not allowed on tenant {tenant:?}: use that tenant's admin token or the operator token"),
            )),
        }
    }
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized =
            |message: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("no Authorization header: send `Authorization: Bearer <token>` (mmsctl --token / MMS_TOKEN)"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(bearer_token)
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
        match state.store.token_role(token).await? {
            Some(role) => Ok(Caller { role }),
            None => Err(unauthorized(
                "unknown token: ask the operator for a tenant-admin token (mmsctl create-token)",
            )),
        }
    }
}

/// The token of an `Authorization` value in the `Bearer` scheme. The scheme name is matched
/// case-insensitively, as RFC 7235 (section 2.1) requires: `bearer x` and `BEARER x` are accepted.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("Bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_matches_in_any_case() {
        for value in ["Bearer abc", "bearer abc", "BEARER  abc ", "BeArEr abc"] {
            assert_eq!(bearer_token(value), Some("abc"), "{value:?}");
        }
        for value in ["Basic abc", "Bearer", "Bearer   ", "Bearerabc", ""] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
    }
}
