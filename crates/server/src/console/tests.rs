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

use super::auth::token_hash;
use super::*;
use crate::state::AppState;
use crate::web::app;
use tandem_store::now_us;

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

    let routes = routes();
    assert!(routes.len() >= 13, "every console route is listed");
    // No user: nothing answers, whatever is sent.
    for route in &routes {
        let method = if route.kind == Kind::Change {
            "POST"
        } else {
            "GET"
        };
        let (status, _, body) =
            send(&state, method, route.example, &[], Some("csrf=x"), HOME).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{}", route.path);
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
        for route in &routes {
            let (path, headers) = (route.example, cookie_header(cookie));
            match route.kind {
                // The login page is for people without a session.
                Kind::Login => {}
                Kind::Change => {
                    let form = Some("csrf=old-csrf");
                    let (status, _, _) = send(&state, "POST", path, &headers, form, HOME).await;
                    assert_eq!(status, StatusCode::FORBIDDEN, "{path} with {cookie:?}");
                }
                Kind::Data => {
                    let (status, _, _) = send(&state, "GET", path, &headers, None, HOME).await;
                    assert_eq!(status, StatusCode::FORBIDDEN, "{path} with {cookie:?}");
                }
                Kind::Page => {
                    let (status, headers, _) =
                        send(&state, "GET", path, &headers, None, HOME).await;
                    assert_eq!(status, StatusCode::SEE_OTHER, "{path} with {cookie:?}");
                    assert_eq!(headers[header::LOCATION], "/console/login");
                }
            }
        }
        // Nor do they open /metrics.
        let (status, _, _) = send(
            &state,
            "GET",
            "/metrics",
            &cookie_header(cookie),
            None,
            HOME,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "/metrics with {cookie:?}");
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
    for route in routes.iter().filter(|r| r.kind == Kind::Change) {
        for form in ["", "csrf=", "csrf=forged", zeros.as_str()] {
            let path = route.example;
            let (status, _, _) = send(&state, "POST", path, &signed_in, Some(form), HOME).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path} with {form:?}");
        }
    }
    // Signed in, pages and data answer (a game or episode that is not there
    // is a 404, not a refusal); the socket route wants an upgrade.
    for route in routes
        .iter()
        .filter(|r| matches!(r.kind, Kind::Page | Kind::Data))
    {
        if route.path.ends_with("/live") || route.path.ends_with("/frames") {
            continue; // a stream, tested on its own below
        }
        let (status, _, _) = send(&state, "GET", route.example, &signed_in, None, HOME).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::NOT_FOUND,
            "{} answered {status}",
            route.path
        );
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

/// Closing the study turns new arrivals away for good with their own page,
/// lets those already in go on, survives a restart (it is in the database)
/// and is audited; the form must say so in words.
#[tokio::test]
async fn closing_the_study() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (state, _stop, _writer) =
        crate::test_support::state(&dir, tandem_experiment::default_experiment()).await;
    with_ada(&state).await;
    let (_, arrived, _) = send(&state, "GET", "/?PROLIFIC_PID=in", &[], None, HOME).await;
    let inside = set_cookie(&arrived);
    let set = log_in(&state).await;
    let signed_in = cookie_header(Some(set.split(';').next().unwrap_or_default()));
    let (_, _, body) = send(&state, "GET", "/console", &signed_in, None, HOME).await;
    let csrf = csrf_in(&body);
    let unconfirmed = format!("csrf={csrf}&confirm=yes");
    let (status, _, _) = send(
        &state,
        "POST",
        "/console/close",
        &signed_in,
        Some(&unconfirmed),
        HOME,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = send(&state, "GET", "/?PROLIFIC_PID=before", &[], None, HOME).await;
    assert_eq!(status, StatusCode::OK, "still open");

    let close = format!("csrf={csrf}&confirm=close");
    let (status, _, _) = send(
        &state,
        "POST",
        "/console/close",
        &signed_in,
        Some(&close),
        HOME,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, headers, body) =
        send(&state, "GET", "/?PROLIFIC_PID=after", &[], None, HOME).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(body.contains("This study has ended"), "{body}");
    assert!(headers.get(header::SET_COOKIE).is_none(), "nobody was made");
    let (status, _, _) = send(
        &state,
        "GET",
        "/",
        &cookie_header(Some(&inside)),
        None,
        HOME,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "a participant already in goes on");
    assert!(matches!(
        state.store.study_closed("tandem-demo").await,
        Ok(Some(_))
    ));
    let audit = state.store.console_audit().await.unwrap_or_default();
    assert!(
        audit
            .iter()
            .any(|a| a.user_name == "ada" && a.action == "close_study")
    );
    let (_, _, body) = send(&state, "GET", "/console", &signed_in, None, HOME).await;
    assert!(body.contains("closed: the study has ended"), "{body}");
}

/// `/metrics` is Prometheus text that a Prometheus parser reads, with the
/// families the dashboard's operators scrape; it answers the scrape token or
/// a console login and nothing else.
#[tokio::test]
async fn metrics_are_prometheus_text_behind_a_token() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let token = "a-scrape-token-of-some-length";
    let options = crate::Options {
        metrics_token: Some(token.to_string()),
        ..crate::Options::default()
    };
    let (state, _stop, _writer) =
        crate::test_support::state_with(&dir, tandem_experiment::default_experiment(), options)
            .await;
    let (_, _, _) = send(&state, "GET", "/?PROLIFIC_PID=one", &[], None, HOME).await;
    for headers in [
        vec![],
        vec![("authorization", "Bearer wrong-token-wrong-token")],
        vec![("authorization", token)],
    ] {
        let (status, _, _) = send(&state, "GET", "/metrics", &headers, None, HOME).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}");
    }
    let bearer = format!("Bearer {token}");
    let (status, headers, body) = send(
        &state,
        "GET",
        "/metrics",
        &[("authorization", &bearer)],
        None,
        HOME,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/plain")
    );
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("not Prometheus text: {e}\n{body}"));
    let names: std::collections::BTreeSet<&str> =
        scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    for family in [
        "tandem_sockets",
        "tandem_participants",
        "tandem_games_running",
        "tandem_lobby_waiting",
        "tandem_tick_lag_seconds",
        "tandem_frame_send_seconds",
        "tandem_recorder_queue_steps",
        "tandem_recorder_flush_seconds_sum",
    ] {
        assert!(names.contains(family), "{family} missing from {names:?}");
    }
    let histograms = scrape
        .samples
        .iter()
        .filter(|s| matches!(s.value, prometheus_parse::Value::Histogram(_)))
        .count();
    assert_eq!(histograms, 2, "tick lag and frame send are histograms");
    let at_first_scene = scrape
        .samples
        .iter()
        .find(|s| s.metric == "tandem_participants" && s.labels.get("scene") == Some("consent"));
    assert!(
        matches!(at_first_scene.map(|s| &s.value), Some(prometheus_parse::Value::Gauge(n)) if *n == 1.0),
        "{body}"
    );
    // A console login reads it too, there and under /console.
    with_ada(&state).await;
    let set = log_in(&state).await;
    let signed_in = cookie_header(Some(set.split(';').next().unwrap_or_default()));
    let (status, _, _) = send(&state, "GET", "/console/metrics", &signed_in, None, HOME).await;
    assert_eq!(status, StatusCode::OK);
}

/// A study with conditions: the overview counts participants per condition,
/// and "reached" follows each participant's own plan.
#[tokio::test]
async fn the_overview_counts_conditions_and_follows_plans() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let experiment = tandem_experiment::parse(
        "id = \"c\"\ntitle = \"C\"\n\
         [[scene]]\nkind = \"info\"\nid = \"hi\"\ntitle = \"Hi\"\nmarkdown = \"x\"\n\
         [[scene]]\nkind = \"end\"\nid = \"end\"\ntitle = \"E\"\nmarkdown = \"x\"\n\
         [[condition]]\nid = \"a\"\n[condition.override.hi]\ntitle = \"Hi, a\"\n\
         [[condition]]\nid = \"b\"\n",
        "c.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (state, _stop, _writer) = crate::test_support::state(&dir, experiment).await;
    for pid in ["one", "two", "three"] {
        let path = format!("/?PROLIFIC_PID={pid}");
        let (_, _, _) = send(&state, "GET", &path, &[], None, HOME).await;
    }
    let overview = dashboard::overview(&state)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let counts: Vec<i64> = ["a", "b"]
        .iter()
        .map(|id| {
            let list = overview["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let entry = list.iter().find(|c| c["id"] == *id).cloned();
            entry.and_then(|c| c["participants"].as_i64()).unwrap_or(-1)
        })
        .collect();
    let mut sorted = counts.clone();
    sorted.sort();
    assert_eq!(sorted, [1, 2], "{overview}");
    // Scene 0 is "hi" (condition b), scene 2 is "hi-a" (condition a).
    assert_eq!(overview["scenes"][0]["reached"], counts[1], "{overview}");
    assert_eq!(overview["scenes"][2]["id"], "hi-a");
    assert_eq!(overview["scenes"][2]["reached"], counts[0], "{overview}");
    assert_eq!(overview["scenes"][1]["reached"], 0);
}

/// The live feed sends the dashboard's overview as server-sent events, and
/// ends once the login is gone.
#[tokio::test]
async fn the_live_feed_streams_the_overview() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (state, _stop, _writer) =
        crate::test_support::state(&dir, tandem_experiment::default_experiment()).await;
    with_ada(&state).await;
    let (_, _, _) = send(&state, "GET", "/?PROLIFIC_PID=one", &[], None, HOME).await;
    let overview = dashboard::overview(&state)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(overview["study"]["participants"], 1);
    assert_eq!(overview["scenes"][0]["at"], 1);
    assert_eq!(overview["scenes"][0]["reached"], 1);
    assert_eq!(overview["scenes"][1]["reached"], 0);

    let set = log_in(&state).await;
    let cookie = set.split(';').next().unwrap_or_default().to_string();
    let mut request = Request::builder()
        .uri("/console/live")
        .header("cookie", &cookie)
        .body(Body::empty())
        .unwrap_or_else(|e| panic!("{e}"));
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((HOME, 40000))));
    let response = match app(state.clone()).oneshot(request).await {
        Ok(response) => response,
        Err(e) => match e {},
    };
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body().into_data_stream();
    let first = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        futures::StreamExt::next(&mut body),
    )
    .await
    .ok()
    .flatten()
    .and_then(Result::ok)
    .unwrap_or_default();
    let text = String::from_utf8_lossy(&first);
    assert!(text.starts_with("event: overview\ndata: {"), "{text}");
    // Signed out (the session deleted), the feed ends at its next check.
    let token = cookie.split_once('=').map(|(_, t)| t).unwrap_or_default();
    assert!(
        state
            .store
            .delete_console_session(&token_hash(token))
            .await
            .is_ok()
    );
    let ended = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        while let Some(Ok(_)) = futures::StreamExt::next(&mut body).await {}
    })
    .await;
    assert!(ended.is_ok(), "the feed outlived its login");
}
