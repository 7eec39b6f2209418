//! The participant front end (`web/` at the repository root), compiled into
//! the binary so that the server needs no files beside it: the page itself
//! and its static modules.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use include_dir::{Dir, include_dir};

/// The participant front end, embedded at build time.
static WEB: Dir = include_dir!("$CARGO_MANIFEST_DIR/../../web");

/// The participant page, embedded at build time.
pub fn page_html() -> &'static str {
    WEB.get_file("index.html")
        .and_then(|f| f.contents_utf8())
        .unwrap_or("<!doctype html><p>The participant page is missing from this build.</p>")
}

pub async fn static_file(axum::extract::Path(path): axum::extract::Path<String>) -> Response {
    let Some(file) = WEB.get_file(&path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let content_type = match path.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        file.contents(),
    )
        .into_response()
}
