//! The console's door, through the router with `oneshot` on a real database:
//! nothing answers before a user exists; every route refuses a request with
//! no session, an expired one, a forged one or a participant's cookie; every
//! route that changes something refuses a missing or forged CSRF token; logins
//! are rate-limited per address; the login cookie is HttpOnly, SameSite=Strict,
//! scoped to the console, and Secure behind HTTPS.

use std::net::SocketAddr;

use axum::body::{Body, to_bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

use super::*;
use crate::web::app;

const HOME: [u8; 4] = [10, 0, 0, 1];
const PASSWORD: &str = "a long enough passphrase";

/// One request through the whole router, from address `from`.
async fn send(
    state: &AppState,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    form: Option<&str>,
    from: [u8; 4],
) -> (StatusCode, header::HeaderMap, String) {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if form.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let mut request = request
        .body(Body::from(form.unwrap_or_default().to_string()))
        .unwrap_or_else(|e| panic!("{e}"));
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((from, 40000))));
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

fn cookie_header(cookie: Option<&str>) -> Vec<(&str, &str)> {
    cookie.map(|c| vec![("cookie", c)]).unwrap_or_default()
}

/// The `name=value` part of a response's Set-Cookie.
fn set_cookie(headers: &header::HeaderMap) -> String {
    headers[header::SET_COOKIE]
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Logs ada in from `HOME`; returns the whole Set-Cookie line.
async fn log_in(state: &AppState) -> String {
    let (status, headers, body) = send(
        state,
        "POST",
        "/console/login",
        &[],
        Some(&login_form()),
        HOME,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    headers[header::SET_COOKIE]
        .to_str()
        .unwrap_or_default()
        .to_string()
}

fn login_form() -> String {
    format!("name=ada&password={}", PASSWORD.replace(' ', "+"))
}

/// The value of the form's hidden CSRF field in a page.
fn csrf_in(body: &str) -> String {
    body.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_string()
}

async fn with_ada(state: &AppState) {
    let hash = crate::accounts::hash_password(PASSWORD).unwrap_or_else(|e| panic!("{e}"));
    assert!(state.store.add_console_user("ada", &hash).await.is_ok());
}

#[tokio::test]
async fn the_console_is_closed_until_a_user_exists_then_guarded() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (state, _stop, _writer) =
        crate::test_support::state(&dir, tandem_experiment::default_experiment()).await;

    // No user: nothing answers, whatever is sent.
    for (route, changes) in ROUTES {
        let method = if *changes { "POST" } else { "GET" };
        let (status, _, body) = send(&state, method, route, &[], Some("csrf=x"), HOME).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{route}");
        assert!(body.contains("tandem admin add-user"), "{body}");
    }
    with_ada(&state).await;

    // A participant's cookie, a forged console cookie, an expired session:
    // none opens a page or changes anything.
    let (_, arrived, _) = send(&state, "GET", "/", &[], None, HOME).await;
    let participant = set_cookie(&arrived);
    let expired_token = "e".repeat(64);
    let ada = state.store.console_user("ada").await.ok().flatten();
    let stored = state
        .store
        .create_console_session(
            &token_hash(&expired_token),
            ada.map_or(0, |u| u.id),
            "old-csrf",
            now_us() - 1,
        )
        .await;
    assert!(stored.is_ok());
    let forged = format!("{CONSOLE_COOKIE}={}", "f".repeat(64));
    let expired = format!("{CONSOLE_COOKIE}={expired_token}");
    for cookie in [
        None,
        Some(participant.as_str()),
        Some(forged.as_str()),
        Some(expired.as_str()),
    ] {
        for (route, changes) in ROUTES {
            if *route == "/console/login" {
                continue; // the login page is for people without a session
            }
            let headers = cookie_header(cookie);
            if *changes {
                let form = Some("csrf=old-csrf");
                let (status, _, _) = send(&state, "POST", route, &headers, form, HOME).await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{route} with {cookie:?}");
            } else {
                let (status, headers, _) = send(&state, "GET", route, &headers, None, HOME).await;
                assert_eq!(status, StatusCode::SEE_OTHER, "{route} with {cookie:?}");
                assert_eq!(headers[header::LOCATION], "/console/login");
            }
        }
    }

    // A real login: the cookie's attributes, the page, and CSRF on changes.
    let set = log_in(&state).await;
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age="] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: {set}");
    let cookie = set.split(';').next().unwrap_or_default().to_string();
    let signed_in = cookie_header(Some(&cookie));
    let (status, _, body) = send(&state, "GET", "/console", &signed_in, None, HOME).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("Signed in as <strong id=\"console-user\">ada</strong>"),
        "{body}"
    );
    let csrf = csrf_in(&body);
    assert_eq!(csrf.len(), 64, "{body}");
    let zeros = format!("csrf={}", "0".repeat(64));
    for (route, _) in ROUTES.iter().filter(|(_, changes)| *changes) {
        for form in ["", "csrf=", "csrf=forged", zeros.as_str()] {
            let (status, _, _) = send(&state, "POST", route, &signed_in, Some(form), HOME).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{route} with {form:?}");
        }
    }
    let right = format!("csrf={csrf}");
    let (status, _, _) = send(
        &state,
        "POST",
        "/console/logout",
        &signed_in,
        Some(&right),
        HOME,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = send(&state, "GET", "/console", &signed_in, None, HOME).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "logged out");
}

#[tokio::test]
async fn logins_are_rate_limited_per_address() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (state, _stop, _writer) =
        crate::test_support::state(&dir, tandem_experiment::default_experiment()).await;
    with_ada(&state).await;
    let attacker = [192, 0, 2, 7];
    let wrong = Some("name=ada&password=admin123");
    for _ in 0..MAX_FAILED_LOGINS {
        let (status, _, body) = send(&state, "POST", "/console/login", &[], wrong, attacker).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body.contains("Wrong name or password."));
    }
    let unknown = Some("name=nobody&password=admin123");
    let (status, _, _) = send(&state, "POST", "/console/login", &[], unknown, attacker).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Even the right password, from that address, waits.
    let form = login_form();
    let (status, _, _) = send(&state, "POST", "/console/login", &[], Some(&form), attacker).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Another address is not held up; behind HTTPS the cookie is Secure.
    let https = [("x-forwarded-proto", "https")];
    let (status, headers, _) =
        send(&state, "POST", "/console/login", &https, Some(&form), HOME).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let set = headers[header::SET_COOKIE].to_str().unwrap_or_default();
    assert!(set.contains("Secure"), "{set}");
}

/// Pausing admissions from the console turns new arrivals away with a clear
/// page while participants already in go on; it is in the audit log with the
/// researcher's name, and resuming lets people in again.
#[tokio::test]
async fn pausing_admissions_turns_new_arrivals_away() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (state, _stop, _writer) =
        crate::test_support::state(&dir, tandem_experiment::default_experiment()).await;
    with_ada(&state).await;
    let (_, arrived, _) = send(&state, "GET", "/?PROLIFIC_PID=early", &[], None, HOME).await;
    let early = set_cookie(&arrived);
    let set = log_in(&state).await;
    let cookie = set.split(';').next().unwrap_or_default().to_string();
    let signed_in = cookie_header(Some(&cookie));
    let (_, _, body) = send(&state, "GET", "/console", &signed_in, None, HOME).await;
    assert!(
        body.contains("<strong id=\"admissions\">open</strong>"),
        "{body}"
    );
    let csrf = csrf_in(&body);

    let pause = format!("csrf={csrf}&paused=true");
    let (status, _, _) = send(
        &state,
        "POST",
        "/console/admissions",
        &signed_in,
        Some(&pause),
        HOME,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, body) = send(&state, "GET", "/?PROLIFIC_PID=late", &[], None, HOME).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("not taking new participants"), "{body}");
    let (status, _, _) = send(&state, "GET", "/", &cookie_header(Some(&early)), None, HOME).await;
    assert_eq!(status, StatusCode::OK, "a participant already in goes on");
    assert_eq!(
        state.store.admissions_paused("tandem-demo").await.ok(),
        Some(true),
        "kept for a restart"
    );

    let resume = format!("csrf={csrf}&paused=false");
    let (status, _, _) = send(
        &state,
        "POST",
        "/console/admissions",
        &signed_in,
        Some(&resume),
        HOME,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = send(&state, "GET", "/?PROLIFIC_PID=later", &[], None, HOME).await;
    assert_eq!(status, StatusCode::OK);
    let audit = state.store.console_audit().await.unwrap_or_default();
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|a| (a.user_name.as_str(), a.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        [("ada", "pause_admissions"), ("ada", "resume_admissions")]
    );
}

/// A cap set from the console turns new arrivals away once the study holds
/// that many (those already in go on), is kept for a restart and audited;
/// clearing it lets people in again.
#[tokio::test]
async fn a_participant_cap_from_the_console() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (state, _stop, _writer) =
        crate::test_support::state(&dir, tandem_experiment::default_experiment()).await;
    with_ada(&state).await;
    let (status, _, _) = send(&state, "GET", "/?PROLIFIC_PID=one", &[], None, HOME).await;
    assert_eq!(status, StatusCode::OK);
    let set = log_in(&state).await;
    let signed_in = cookie_header(Some(set.split(';').next().unwrap_or_default()));
    let (_, _, body) = send(&state, "GET", "/console", &signed_in, None, HOME).await;
    assert!(body.contains("<strong id=\"cap\">none</strong>"), "{body}");
    let csrf = csrf_in(&body);

    let (status, _, _) = send(
        &state,
        "POST",
        "/console/cap",
        &signed_in,
        Some(&format!("csrf={csrf}&cap=2")),
        HOME,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = send(&state, "GET", "/?PROLIFIC_PID=two", &[], None, HOME).await;
    assert_eq!(status, StatusCode::OK, "the second of two");
    let (status, _, body) = send(&state, "GET", "/?PROLIFIC_PID=three", &[], None, HOME).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "the third is one too many"
    );
    assert!(body.contains("This study is full"), "{body}");
    assert_eq!(
        state.store.participant_cap("tandem-demo").await.ok(),
        Some(Some(2))
    );
    let (_, _, body) = send(&state, "GET", "/console", &signed_in, None, HOME).await;
    assert!(
        body.contains("<strong id=\"participants\">2</strong>"),
        "{body}"
    );

    let (status, _, _) = send(
        &state,
        "POST",
        "/console/cap",
        &signed_in,
        Some(&format!("csrf={csrf}&cap=many")),
        HOME,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = send(
        &state,
        "POST",
        "/console/cap",
        &signed_in,
        Some(&format!("csrf={csrf}&cap=")),
        HOME,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = send(&state, "GET", "/?PROLIFIC_PID=three", &[], None, HOME).await;
    assert_eq!(status, StatusCode::OK, "no cap again");
    let audit = state.store.console_audit().await.unwrap_or_default();
    let caps: Vec<serde_json::Value> = audit
        .iter()
        .filter(|a| a.user_name == "ada" && a.action == "set_participant_cap")
        .map(|a| a.detail["cap"].clone())
        .collect();
    assert_eq!(caps, [serde_json::json!(2), serde_json::Value::Null]);
}
