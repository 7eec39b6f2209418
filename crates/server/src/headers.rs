//! Security headers on every response: what the browser may load and run on
//! the participant page, who may frame it, and no MIME sniffing.
//!
//! The page is served from the binary and loads only its own modules, styles
//! and the socket, so the Content-Security-Policy allows `'self'` and nothing
//! else for scripts and styles (no inline code: an experiment's markdown
//! cannot run script). Images may also come from `https:` (a researcher's
//! instructions may show one). Framing is denied except to the study itself
//! and the crowd platforms that show studies in a frame: MTurk's worker sites
//! by default, configurable (`tandem serve --frame-ancestors`).

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

/// Checks one `--frame-ancestors` origin: `https://host[:port]` (a `*.`
/// wildcard allowed in the host), as CSP writes them.
pub fn frame_ancestor(value: &str) -> Result<String, String> {
    let host = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or_else(|| format!("{value:?} is not an origin such as https://example.org"))?;
    let fine = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'*'));
    if fine {
        Ok(value.to_string())
    } else {
        Err(format!(
            "{value:?} is not an origin such as https://example.org"
        ))
    }
}

/// Adds the security headers to a response.
pub async fn add(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // The socket's origin, for `connect-src`: `'self'` covers ws: and wss: in
    // current browsers, naming them covers older ones.
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
        })
        .map(str::to_string);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    let connect = match &host {
        Some(host) => format!("'self' ws://{host} wss://{host}"),
        None => "'self'".to_string(),
    };
    // Forms go to the study itself, to HTTPS sites, and to MTurk's submit
    // origins (which a test or a proxy may serve over plain HTTP).
    let submit_to: String = state
        .mturk_submit_to
        .iter()
        .filter(|o| o.starts_with("http://"))
        .map(|o| format!(" {o}"))
        .collect();
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: https:; \
         connect-src {connect}; object-src 'none'; base-uri 'none'; form-action 'self' https:{submit_to}; \
         frame-ancestors {}",
        state.frame_ancestors
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}
