//! The router's HTTP handlers, called with `oneshot` on a real database and
//! no listening socket (axum's `examples/testing`).

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use tandem_store::RecorderHandle;
use tokio::sync::watch;
use tower::ServiceExt;

use super::*;
use crate::Options;

/// A state on a fresh database for the built-in experiment, and the stop
/// signal's sender (kept alive by the caller).
async fn state(dir: &tempfile::TempDir) -> (AppState, watch::Sender<bool>, RecorderHandle) {
    crate::test_support::state(dir, tandem_experiment::default_experiment()).await
}

async fn get(state: &AppState, uri: &str) -> (StatusCode, header::HeaderMap, String) {
    let request = match Request::builder().uri(uri).body(Body::empty()) {
        Ok(request) => request,
        Err(e) => panic!("request: {e}"),
    };
    let response = match app(state.clone()).oneshot(request).await {
        Ok(response) => response,
        Err(e) => match e {},
    };
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), 1 << 20)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    (status, headers, body)
}

/// The health check answers without touching anything else.
#[tokio::test]
async fn health_check_answers_ok() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (state, _stop, _writer) = state(&dir).await;
    let (status, _, body) = get(&state, "/healthz").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
}

/// `GET /` creates a participant at the first scene and sets an HttpOnly
/// cookie; the page is the embedded one and is never cached.
#[tokio::test]
async fn the_page_creates_a_participant_and_sets_the_cookie() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (state, _stop, _writer) = state(&dir).await;
    let (status, headers, body) = get(&state, "/?PROLIFIC_PID=p1&STUDY_ID=s1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("<html") || body.contains("<!doctype"));
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let cookie = headers[header::SET_COOKIE].to_str().unwrap_or_default();
    assert!(
        cookie.starts_with(crate::arrival::PARTICIPANT_COOKIE),
        "{cookie}"
    );
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let token = cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap_or_default();
    let stored = state
        .store
        .participant_by_token(&token)
        .await
        .ok()
        .flatten();
    let stored = stored.unwrap_or_else(|| panic!("participant {token:?} stored"));
    assert_eq!(stored.scene_index, 0);
    assert_eq!(stored.recruit.prolific_pid.as_deref(), Some("p1"));
    assert_eq!(stored.recruit.study_id.as_deref(), Some("s1"));
}

/// Static files come with their content type; unknown paths are 404.
#[tokio::test]
async fn static_files_and_missing_ones() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (state, _stop, _writer) = state(&dir).await;
    let (status, headers, body) = get(&state, "/static/app.js").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert!(!body.is_empty());
    let (status, _, _) = get(&state, "/static/../Cargo.toml").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = get(&state, "/static/nope.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The socket route only upgrades: a plain GET is refused by the upgrade
/// extractor before any handler code runs.
#[tokio::test]
async fn the_socket_route_needs_an_upgrade() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (state, _stop, _writer) = state(&dir).await;
    let (status, _, _) = get(&state, "/ws").await;
    assert!(status.is_client_error(), "{status}");
    assert_eq!(state.placement.counts(), (0, 0, 0));
}

/// While the server stops, new arrivals are told to come back; nobody is created.
#[tokio::test]
async fn arrivals_during_shutdown_are_told_to_wait() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (state, stop, _writer) = state(&dir).await;
    let _ = stop.send(true);
    let (status, headers, body) = get(&state, "/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.get(header::SET_COOKIE).is_none());
    assert!(body.contains("restarting"), "{body}");
}

/// `GET /` from `address`, returning the status and whether a cookie was set.
async fn arrive_from(state: &AppState, address: [u8; 4]) -> (StatusCode, bool) {
    let mut request = match Request::builder().uri("/").body(Body::empty()) {
        Ok(request) => request,
        Err(e) => panic!("request: {e}"),
    };
    let peer = std::net::SocketAddr::from((address, 40_000));
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    let response = match app(state.clone()).oneshot(request).await {
        Ok(response) => response,
        Err(e) => match e {},
    };
    let cookie = response.headers().contains_key(header::SET_COOKIE);
    (response.status(), cookie)
}

/// `HEAD /` (link previews, scanners) shows the page but creates nobody.
#[tokio::test]
async fn head_creates_nobody() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (state, _stop, _writer) = state(&dir).await;
    let request = Request::builder()
        .method("HEAD")
        .uri("/?PROLIFIC_PID=preview")
        .body(Body::empty())
        .unwrap_or_else(|e| panic!("{e}"));
    let response = match app(state.clone()).oneshot(request).await {
        Ok(response) => response,
        Err(e) => match e {},
    };
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!response.headers().contains_key(header::SET_COOKIE));
    let count = state.store.count_participants(&state.experiment.id).await;
    assert_eq!(count.ok(), Some(0));
}

/// One address gets its per-minute allowance of new participants and then a
/// 429 with `Retry-After`; another address is not held back.
#[tokio::test]
async fn new_participants_are_rate_limited_per_address() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let options = Options {
        admission: crate::AdmissionLimits {
            per_address_per_minute: 10,
            max_participants: None,
        },
        ..Options::default()
    };
    let experiment = tandem_experiment::default_experiment();
    let (state, _stop, _writer) = crate::test_support::state_with(&dir, experiment, options).await;
    let mut created = 0;
    let mut refused = 0;
    for _ in 0..100 {
        match arrive_from(&state, [10, 0, 0, 1]).await {
            (StatusCode::OK, true) => created += 1,
            (StatusCode::TOO_MANY_REQUESTS, false) => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    println!(
        "100 arrivals from one address in a moment: {created} created, {refused} refused (429)"
    );
    assert_eq!((created, refused), (10, 90));
    assert_eq!(
        arrive_from(&state, [10, 0, 0, 2]).await,
        (StatusCode::OK, true)
    );
    let stored = state.store.count_participants(&state.experiment.id).await;
    assert_eq!(stored.ok(), Some(11));
}

/// A study with a cap takes that many participants, and then says it is full.
#[tokio::test]
async fn the_study_cap_is_kept() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let options = Options {
        admission: crate::AdmissionLimits {
            per_address_per_minute: 0,
            max_participants: Some(3),
        },
        ..Options::default()
    };
    let experiment = tandem_experiment::default_experiment();
    let (state, _stop, _writer) = crate::test_support::state_with(&dir, experiment, options).await;
    for i in 0..3 {
        assert_eq!(
            arrive_from(&state, [10, 0, 0, i]).await,
            (StatusCode::OK, true)
        );
    }
    let (status, cookie) = arrive_from(&state, [10, 0, 0, 9]).await;
    assert_eq!((status, cookie), (StatusCode::SERVICE_UNAVAILABLE, false));
    let (_, _, body) = get(&state, "/").await;
    assert!(body.contains("This study is full"), "{body}");
}

/// Every response says nosniff; the page says which scripts and styles may
/// run (its own only), and that only the study itself and MTurk's worker
/// sites may frame it.
#[tokio::test]
async fn security_headers_allow_crowd_platforms_to_frame_only() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (state, _stop, _writer) = state(&dir).await;
    let (_, headers, _) = get(&state, "/").await;
    let csp = headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap_or_default()
        .to_string();
    println!("Content-Security-Policy: {csp}");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(csp.contains("style-src 'self';"), "{csp}");
    assert!(
        csp.contains(
            "frame-ancestors 'self' https://worker.mturk.com https://workersandbox.mturk.com"
        ),
        "{csp}"
    );
    assert!(!csp.contains('*'), "no wildcard source: {csp}");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let (_, headers, _) = get(&state, "/static/app.js").await;
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
}

/// Behind a proxy that says the request came over HTTPS, the cookie is
/// `Secure`; over plain HTTP it is not.
#[tokio::test]
async fn the_cookie_is_secure_behind_https() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (state, _stop, _writer) = state(&dir).await;
    let cookie_of = |forwarded: Option<&'static str>| {
        let state = state.clone();
        async move {
            let mut builder = Request::builder().uri("/");
            if let Some(proto) = forwarded {
                builder = builder.header("x-forwarded-proto", proto);
            }
            let request = builder
                .body(Body::empty())
                .unwrap_or_else(|e| panic!("{e}"));
            let response = match app(state).oneshot(request).await {
                Ok(response) => response,
                Err(e) => match e {},
            };
            response.headers()[header::SET_COOKIE]
                .to_str()
                .unwrap_or_default()
                .to_string()
        }
    };
    assert!(cookie_of(Some("https")).await.contains("Secure"));
    assert!(!cookie_of(None).await.contains("Secure"));
}
