//! The HTTP client of `mmsctl`: one request to the control API, its body serialized from the
//! API's own request types, its reply as JSON, and every failure as a [`Failure`] that shows the
//! HTTP status, the API's code and its message.

use std::fmt::{self, Write as _};
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::Value;

/// Longest wait for one API reply: a hung connection fails the command instead of hanging it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a reply that starts a background job waits for it to end (well inside
/// [`REQUEST_TIMEOUT`]).
pub const JOB_WAIT_SECS: u64 = 20;

/// Characters left as they are in a path segment or a query value: the unreserved set of
/// RFC 3986 (letters, digits, `-`, `.`, `_`, `~`) plus `@` and `:`, so that `users/ada@x.com`
/// and `users/sip:ada@x.com` read as typed. Everything else, `/`, `?`, `#`, `%`, `+`, `&` and
/// spaces included, is percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@')
    .remove(b':');

/// One path segment or query value, percent-encoded.
pub fn encode(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

/// The query parameters of one of the API's query types (`StatusQuery`, `UserQuery`,
/// `PageQuery`), named as it serializes them; unset (`None`) ones are left out. Serializing the
/// API's own type is what keeps the names in step with the API.
pub fn params(query: &impl Serialize) -> Result<Vec<(String, String)>, Failure> {
    let value = serde_json::to_value(query)
        .map_err(|e| Failure::local("invalid_query", format!("cannot serialize the query: {e}")))?;
    Ok(value
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| !v.is_null())
        .map(|(name, v)| (name.clone(), text_of(v)))
        .collect())
}

/// A failure to report: the API's answer (status, code, message), or a local problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The HTTP status, when the API answered.
    pub status: Option<u16>,
    pub code: String,
    pub message: String,
}

impl Failure {
    /// A problem found before or without an API answer.
    pub fn local(code: &str, message: impl Into<String>) -> Self {
        Failure {
            status: None,
            code: code.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    /// `HTTP 404 user_not_found: no user ...`, or `missing_tenant: ...` for a local problem.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(status) = self.status {
            write!(f, "HTTP {status} ")?;
        }
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// A request body: JSON of one of the API's request types, or raw bytes (an import file).
pub enum Body {
    Json(Value),
    Raw {
        content_type: &'static str,
        bytes: Vec<u8>,
    },
}

impl Body {
    /// The JSON of `value` (one of mms-control's request types).
    pub fn json(value: &impl Serialize) -> Result<Body, Failure> {
        serde_json::to_value(value).map(Body::Json).map_err(|e| {
            Failure::local("invalid_body", format!("cannot serialize the request: {e}"))
        })
    }
}

/// A successful reply: its JSON (or `null` for an empty body) and its headers.
pub struct Reply {
    pub value: Value,
    pub headers: HeaderMap,
}

/// The API at `base`, with the caller's token.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> Result<Client, Failure> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| Failure::local("http_client", format!("cannot set up HTTP: {e}")))?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// `method path` with `body`; the reply's JSON.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
    ) -> Result<Value, Failure> {
        Ok(self.exchange(method, path, &[], body).await?.value)
    }

    /// `GET path?query`; the whole reply (for paging headers).
    pub async fn get_query(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<Reply, Failure> {
        self.exchange(Method::GET, path, query, None).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Value, Failure> {
        self.send(Method::GET, path, None).await
    }

    /// `method path` with `body` as JSON.
    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        body: &impl Serialize,
    ) -> Result<Value, Failure> {
        self.send(method, path, Some(Body::json(body)?)).await
    }

    /// `POST path` with `body` for a route that may answer with a background job: the reply
    /// waits up to [`JOB_WAIT_SECS`] for the job to end (`Prefer: wait`, RFC 7240), so a small
    /// fan-out shows its result and a large one its progress so far.
    pub async fn post_waiting_for_job(&self, path: &str, body: Body) -> Result<Value, Failure> {
        let prefer = format!("wait={JOB_WAIT_SECS}");
        let reply = self
            .exchange_preferring(Method::POST, path, &[], Some(body), Some(&prefer))
            .await?;
        Ok(reply.value)
    }

    /// The whole reply, headers included (for paging).
    pub async fn exchange(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<Body>,
    ) -> Result<Reply, Failure> {
        self.exchange_preferring(method, path, query, body, None)
            .await
    }

    async fn exchange_preferring(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<Body>,
        prefer: Option<&str>,
    ) -> Result<Reply, Failure> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).query(query);
        if let Some(prefer) = prefer {
            request = request.header("prefer", prefer);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request = match body {
            Some(Body::Json(value)) => request.json(&value),
            Some(Body::Raw {
                content_type,
                bytes,
            }) => request.header("content-type", content_type).body(bytes),
            None => request,
        };
        let response = request.send().await.map_err(|e| {
            Failure::local(
                "unreachable",
                format!("{url}: {e} (is MMS running? set --api-url / MMS_API_URL)"),
            )
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .map_err(|e| Failure::local("unreachable", format!("{url}: {e}")))?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            Ok(Reply { value, headers })
        } else {
            Err(api_failure(status, &value))
        }
    }
}

/// The failure an error reply describes: the API's `Code` and `Message` (every rejected import
/// row listed), with a hint where the status says what to check.
pub fn api_failure(status: StatusCode, value: &Value) -> Failure {
    let code = value["Code"]
        .as_str()
        .unwrap_or(status.canonical_reason().unwrap_or("error"))
        .to_string();
    let mut message = value["Message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| text_of(value));
    if let Some(errors) = value["Errors"].as_array() {
        for e in errors {
            let _ = write!(
                message,
                "\n  row {}: {}: {}",
                e["Row"],
                text_of(&e["Field"]),
                text_of(&e["Problem"])
            );
        }
    }
    if status == StatusCode::UNAUTHORIZED {
        message.push_str(" (check --token / MMS_TOKEN)");
    }
    Failure {
        status: Some(status.as_u16()),
        code,
        message,
    }
}

/// A JSON value as a table cell: strings without quotes, null as nothing.
pub fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn segments_and_query_values_are_percent_encoded() {
        assert_eq!(encode("ada@contoso.com"), "ada@contoso.com");
        assert_eq!(encode("sip:ada@x.com"), "sip:ada@x.com");
        assert_eq!(encode("a/b?c#d e%f"), "a%2Fb%3Fc%23d%20e%25f");
    }

    #[test]
    fn query_params_are_the_api_types_names_without_the_unset_ones() {
        let query = mms_control::routes::migrations::StatusQuery {
            identity: Some("a+b@x.com".into()),
            start_time: Some("2025-01-01T00:00:00+01:00".into()),
            ..Default::default()
        };
        let mut pairs = params(&query).unwrap();
        pairs.sort();
        assert_eq!(
            pairs,
            [
                ("identity".to_string(), "a+b@x.com".to_string()),
                (
                    "startTime".to_string(),
                    "2025-01-01T00:00:00+01:00".to_string()
                ),
            ]
        );
    }

    #[test]
    fn an_error_reply_shows_status_code_message_and_every_row() {
        let failure = api_failure(
            StatusCode::BAD_REQUEST,
            &json!({"Code": "invalid_import", "Message": "the import has 1 problem(s)",
                    "Errors": [{"Row": 2, "Field": "Upn", "Problem": "missing"}]}),
        );
        assert_eq!(
            failure.to_string(),
            "HTTP 400 invalid_import: the import has 1 problem(s)\n  row 2: Upn: missing"
        );
        let failure = api_failure(
            StatusCode::UNAUTHORIZED,
            &json!({"Code": "unauthorized", "Message": "no valid bearer token"}),
        );
        let shown = failure.to_string();
        assert!(shown.starts_with("HTTP 401 unauthorized: "), "{shown}");
        assert!(
            shown.contains("MMS_TOKEN") && !shown.contains("api_addr"),
            "{shown}"
        );
        let failure = api_failure(StatusCode::BAD_GATEWAY, &json!("upstream down"));
        assert_eq!(failure.to_string(), "HTTP 502 Bad Gateway: upstream down");
    }
}
