//! Bearer-token authentication with two roles.
//!
//! `GET`/`HEAD` need either token; every other method needs the admin token. Tokens are
//! compared in constant time so that response timing does not reveal a prefix.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{header, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{config::AdminConfig, error::ApiError};

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Read,
    Admin,
}

/// The accepted tokens, resolved from [`AdminConfig`] (env already applied).
#[derive(Debug, Clone)]
pub struct Tokens {
    admin: Option<Vec<u8>>,
    read: Option<Vec<u8>>,
}

impl Tokens {
    pub fn from_config(config: &AdminConfig) -> Self {
        let bytes = |t: &Option<String>| t.as_ref().map(|s| s.as_bytes().to_vec());
        Self {
            admin: bytes(&config.admin_token),
            read: bytes(&config.read_token),
        }
    }

    fn none_configured(&self) -> bool {
        self.admin.is_none() && self.read.is_none()
    }

    /// The role a presented token grants, if any. Both tokens are always compared.
    pub fn role_of(&self, presented: &[u8]) -> Option<Role> {
        let admin = self
            .admin
            .as_deref()
            .is_some_and(|t| constant_time_eq(t, presented));
        let read = self
            .read
            .as_deref()
            .is_some_and(|t| constant_time_eq(t, presented));
        if admin {
            Some(Role::Admin)
        } else if read {
            Some(Role::Read)
        } else {
            None
        }
    }
}

/// Compares without an early exit; the length is not secret (tokens have fixed length).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

const CHALLENGE: &str = "Bearer realm=\"shoal-admin\"";
const CHALLENGE_INVALID: &str = "Bearer realm=\"shoal-admin\", error=\"invalid_token\"";

fn unauthorized(detail: &str, challenge: &'static str) -> Response {
    let mut e = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail);
    e.www_authenticate = Some(challenge);
    e.into_response()
}

/// Middleware guarding every data route.
pub async fn require_token(
    State(tokens): State<Arc<Tokens>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    if tokens.none_configured() {
        return unauthorized(
            "this node has no admin token configured: set `admin_token` (and optionally \
             `read_token`) in the [admin] section of its config, or SHOAL_ADMIN_TOKEN, and restart it",
            CHALLENGE,
        );
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let Some(presented) = presented else {
        return unauthorized(
            "send `Authorization: Bearer <token>` with the node's admin or read token",
            CHALLENGE,
        );
    };
    let Some(role) = tokens.role_of(presented.trim().as_bytes()) else {
        return unauthorized(
            "the bearer token is not this node's admin or read token; check SHOAL_ADMIN_TOKEN / --token",
            CHALLENGE_INVALID,
        );
    };
    let needed = if matches!(*req.method(), Method::GET | Method::HEAD) {
        Role::Read
    } else {
        Role::Admin
    };
    if role < needed {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("{} {path} changes the cluster and needs the admin token; the read-only token may only GET", req.method()),
        )
        .at(&path)
        .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_from_tokens() {
        let config = AdminConfig {
            admin_token: Some("a".repeat(20)),
            read_token: Some("r".repeat(20)),
            ..AdminConfig::default()
        };
        let tokens = Tokens::from_config(&config);
        assert_eq!(tokens.role_of("a".repeat(20).as_bytes()), Some(Role::Admin));
        assert_eq!(tokens.role_of("r".repeat(20).as_bytes()), Some(Role::Read));
        assert_eq!(tokens.role_of("a".repeat(19).as_bytes()), None);
        assert_eq!(tokens.role_of(b""), None);
    }
}
