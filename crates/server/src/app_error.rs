//! [`AppError`]: what a handler returns when something on the server's side
//! failed: logged in full, told to the browser in one plain sentence.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tandem_store::StoreError;
use tracing::error;

/// An error inside a handler: logged in full, reported to the browser briefly.
pub struct AppError(String);

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError(format!("database: {e}"))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        error!(cause = %self.0, "request failed");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side. Please reload the page in a moment.",
        )
            .into_response()
    }
}
