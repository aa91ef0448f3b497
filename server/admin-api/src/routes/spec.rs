//! The OpenAPI document's fixed parts and the post-processing that adds, to every operation,
//! the security requirement and the error responses common to all (401, 403, 400, 404, 422),
//! so that each handler only declares what is specific to it.

use utoipa::openapi::{
    path::{Operation, ParameterIn},
    security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme},
    ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder,
};

use crate::error::{ApiError, PROBLEM_JSON};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "shoal admin API",
        version = "1.0.0",
        description = "Administration of a shoal cluster node. Every data endpoint needs \
            `Authorization: Bearer <token>`: the read-only token for GET, the admin token for \
            everything else. `/api/v1/health`, `/api/v1/ready`, this document and the UI need none. \
            Errors are `application/problem+json` (RFC 9457).",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    components(schemas(ApiError)),
    tags(
        (name = "cluster", description = "Members of the cluster"),
        (name = "probes", description = "Health and readiness for balancers (no token)"),
        (name = "contexts", description = "Contexts, pipelines, manager statistics"),
        (name = "sessions", description = "Browse, inspect and expire sessions"),
        (name = "channel", description = "Interceptor stack, send options, traffic"),
        (name = "plugins", description = "Wasm plugins, applied on every node"),
        (name = "deployments", description = "Farm deployment of artifacts"),
        (name = "events", description = "Server-sent events of cluster changes"),
        (name = "metrics", description = "Prometheus metrics"),
    )
)]
pub struct ApiDoc;

const BEARER: &str = "bearer";

/// Adds the bearer scheme and the common responses. Operations that declare their own
/// `security` (the probes) are left as they are.
pub(crate) fn finish(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    for item in doc.paths.paths.values_mut() {
        let ops = [
            (&mut item.get, false),
            (&mut item.put, true),
            (&mut item.post, true),
            (&mut item.delete, true),
            (&mut item.patch, true),
        ];
        for (op, mutating) in ops {
            if let Some(op) = op.as_mut() {
                finish_operation(op, mutating);
            }
        }
    }
}

fn finish_operation(op: &mut Operation, mutating: bool) {
    if op.security.is_some() {
        return;
    }
    op.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
    let params = op.parameters.as_deref().unwrap_or_default();
    let has_path = params.iter().any(|p| p.parameter_in == ParameterIn::Path);
    let has_query = params.iter().any(|p| p.parameter_in == ParameterIn::Query);
    let has_body = op.request_body.is_some();
    let json_body = op
        .request_body
        .as_ref()
        .is_some_and(|b| b.content.contains_key("application/json"));
    let mut add = |code: &str, description: &str| {
        op.responses
            .responses
            .entry(code.to_owned())
            .or_insert_with(|| problem(description));
    };
    add("401", "No or unknown bearer token");
    if mutating {
        add("403", "The read-only token cannot change anything");
    }
    if has_path || has_query || has_body {
        add("400", "Malformed request: the detail says which part");
    }
    if has_path {
        add("404", "No such resource: the detail names it");
    }
    if has_body {
        add(
            "422",
            "The body does not fit the schema or the current state",
        );
    }
    if json_body {
        add("415", "Send the body with `Content-Type: application/json`");
    }
}

fn problem(description: &str) -> RefOr<Response> {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ApiError")))
        .build();
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(PROBLEM_JSON, content)
            .build(),
    )
}
