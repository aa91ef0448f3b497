//! REST admin API (axum + utoipa), serves the admin UI
