//! Extractors that answer bad input in the API's JSON error shape instead of axum's plain text.

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::Json;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `Json<T>` whose rejections (bad JSON, wrong content type, body over the limit) are [`ApiError`]s.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(JsonBody(value))
    }
}

/// `Query<T>` whose rejections are [`ApiError`]s with code `invalid_query`.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(value) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
        Ok(QueryParams(value))
    }
}

/// The parameter names of a request's query string, to refuse the ones a route does not know:
/// `?Identity=x` (a misspelled `identity`) would otherwise be ignored and the filter silently
/// dropped, answering with every row.
pub struct QueryNames(pub Vec<String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryNames {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
        Ok(QueryNames(
            pairs.into_iter().map(|(name, _)| name).collect(),
        ))
    }
}

impl QueryNames {
    /// 400 `unknown_parameter` naming the first parameter that is in none of `known`, and
    /// listing the known ones.
    pub fn only(&self, known: &[&[&str]]) -> Result<(), ApiError> {
        match self
            .0
            .iter()
            .find(|given| !known.iter().any(|group| group.contains(&given.as_str())))
        {
            None => Ok(()),
            Some(unknown) => Err(ApiError::bad_request(
                "unknown_parameter",
                format!(
                    "query parameter {unknown:?} is not known here (names are case-sensitive): use {}",
                    known.concat().join(", ")
                ),
            )),
        }
    }
}
