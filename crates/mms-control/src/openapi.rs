//! The OpenAPI 3.1 document, generated from the handlers' annotations and served at
//! `/openapi.json`. Every route of [`crate::router`] is listed here; a test checks both agree.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{admin, bulk, config, directory, domains, events, health, jobs, migrations};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "MMS control plane",
        description = "Meeting Migration Service: the vendor's meeting-migration cmdlets as resources. \
                       Authenticate with `Authorization: Bearer <token>` (operator or tenant admin).",
    ),
    paths(
        health::healthz, health::readyz, admin::openapi_json, admin::create_tenant, admin::list_tenants, domains::list_domains, domains::assign_domains, domains::release_domain, admin::create_token, admin::list_tokens, admin::revoke_token,
        config::get_migration, config::set_migration, config::get_dialin, config::set_dialin,
        directory::list_users, directory::get_user, directory::put_user, directory::delete_user,
        directory::import_users, directory::list_bridges, directory::get_bridge, directory::put_bridge,
        events::post_event, jobs::get_job, jobs::list_jobs,
        migrations::start, bulk::bulk_start, migrations::preview, migrations::list, migrations::summary, migrations::get_one, migrations::undo, migrations::history,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the document's `security` refers to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
