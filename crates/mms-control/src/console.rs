//! The web console (issue 9, item 1): a status page for admins, served by the control API from
//! assets compiled into the binary.
//!
//! The page is plain HTML, one CSS file and one vanilla JavaScript module under
//! `crates/mms-control/console/`, embedded with `include_str!`: no build step, no CDN, nothing
//! fetched from the internet, so the page works on an air-gapped host exactly as the API does.
//! The script calls the same JSON API that `mmsctl` calls (`/v1/...`) with the bearer token the
//! admin typed into its sign-in form, so the console has no authority of its own: a tenant admin
//! sees only their tenant because the API says 403 for any other (M1, M2, M3, M4).
//!
//! The page and its assets need no token (they hold no data, only the code that asks for it).
//! They are deliberately not in the OpenAPI document: they are not part of the JSON API that
//! scripts program against.
//!
//! Every response carries a strict Content-Security-Policy: scripts, styles and API calls from this
//! origin only, no inline code, no frames, no form posts, so that text the API returns (a meeting
//! summary an organizer wrote, say) cannot run as code even if the script had a bug.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::ApiError;
use crate::ApiState;

/// Where the console's page is served.
pub const CONSOLE_PATH: &str = "/console";

/// The policy every console response carries: only this origin's script, style and API; nothing
/// inline, no plugins, no frames around the page, no form submissions, no `<base>` rewriting.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'none'; \
     frame-ancestors 'none'; base-uri 'none'";

/// The page itself: the skeleton the script fills in.
const INDEX_HTML: &str = include_str!("../console/index.html");

/// One file the page loads from `/console/assets/{file}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    /// The script (an ES module): sign-in, API calls, rendering, refresh.
    Script,
    /// The style sheet: layout (one column on a phone), contrast, focus rings.
    StyleSheet,
}

impl Asset {
    /// Every asset, for lookups and tests.
    pub const ALL: [Asset; 2] = [Asset::Script, Asset::StyleSheet];

    /// The file name under `/console/assets/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Asset::Script => "console.js",
            Asset::StyleSheet => "console.css",
        }
    }

    /// The `Content-Type` it is served with (a script must be a JavaScript MIME type for the
    /// browser to run it as a module, and `nosniff` makes the browser hold us to it).
    pub fn content_type(self) -> &'static str {
        match self {
            Asset::Script => "text/javascript; charset=utf-8",
            Asset::StyleSheet => "text/css; charset=utf-8",
        }
    }

    /// The embedded bytes.
    pub fn body(self) -> &'static str {
        match self {
            Asset::Script => include_str!("../console/console.js"),
            Asset::StyleSheet => include_str!("../console/console.css"),
        }
    }

    /// The asset named `file`, if there is one.
    pub fn named(file: &str) -> Option<Asset> {
        Asset::ALL.into_iter().find(|a| a.file_name() == file)
    }
}

/// The console's routes, to merge into the API's router (they share its layers: request
/// metrics, tracing).
pub fn router() -> Router<ApiState> {
    Router::new()
        .route(CONSOLE_PATH, get(page))
        .route("/console/assets/{file}", get(asset))
}

/// `GET /console`: the page.
async fn page() -> Response {
    served("text/html; charset=utf-8", INDEX_HTML)
}

/// `GET /console/assets/{file}`: an embedded asset, or 404 naming the ones there are.
async fn asset(Path(file): Path<String>) -> Response {
    match Asset::named(&file) {
        Some(asset) => served(asset.content_type(), asset.body()),
        None => {
            let known: Vec<&str> = Asset::ALL.iter().map(|a| a.file_name()).collect();
            ApiError::not_found(
                "console_asset_not_found",
                format!(
                    "the console has no asset {file:?}: it serves {} under /console/assets/ \
                     (open {CONSOLE_PATH} for the page)",
                    known.join(" and ")
                ),
            )
            .into_response()
        }
    }
}

/// `body` with its type and the console's security headers. `no-store`: a new binary's page
/// and script are never mixed with a cached older copy.
fn served(content_type: &'static str, body: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_loads_is_embedded() {
        for asset in Asset::ALL {
            let url = format!("/console/assets/{}", asset.file_name());
            assert!(INDEX_HTML.contains(&url), "the page loads {url}");
            assert!(!asset.body().is_empty());
            assert_eq!(Asset::named(asset.file_name()), Some(asset));
        }
        assert_eq!(Asset::named("../lib.rs"), None);
    }

    #[test]
    fn nothing_is_loaded_from_elsewhere_or_inline() {
        for text in [INDEX_HTML, Asset::Script.body(), Asset::StyleSheet.body()] {
            assert!(!text.contains("http://") && !text.contains("https://"));
        }
        // The policy forbids inline code; the page must not rely on it.
        assert!(!INDEX_HTML.contains("<script>") && !INDEX_HTML.contains(" style="));
        assert!(!INDEX_HTML.contains("onclick") && !INDEX_HTML.contains("<style"));
    }
}
