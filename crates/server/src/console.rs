//! The researcher console's door: log in, log out, the signed-in page the
//! dashboard will grow on, and its first controls (pausing admissions, a cap
//! on participants), each in the audit log with the researcher's name.
//!
//! Shaped around what a stranger can and cannot do. No console route answers
//! before a user exists (`tandem admin add-user`), so there is no default
//! password to guess. A login is a random token in an HttpOnly, SameSite=Strict
//! cookie scoped to `/console` (Secure behind HTTPS); the database keeps only
//! its SHA-256, and the session ends after [`SESSION_HOURS`] whatever happens.
//! Every request that changes something carries the session's CSRF token in
//! its form, compared in constant time. Failed logins are counted per address:
//! past [`MAX_FAILED_LOGINS`] in [`FAILED_LOGIN_WINDOW`], that address gets 429
//! even with the right password. A participant's cookie opens nothing here.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use sha2::{Digest, Sha256};
use tandem_store::{ConsoleSession, now_us};
use tracing::{error, info, warn};

use crate::accounts;
use crate::state::AppState;
use crate::sync::lock;

/// The console login cookie.
pub const CONSOLE_COOKIE: &str = "tandem_console";
/// How long a login lasts.
pub const SESSION_HOURS: i64 = 8;
/// Failed logins an address may make in [`FAILED_LOGIN_WINDOW`].
pub const MAX_FAILED_LOGINS: usize = 5;
pub const FAILED_LOGIN_WINDOW: Duration = Duration::from_secs(300);
/// Addresses whose failures are remembered; past it the oldest are forgotten.
const REMEMBERED_ADDRESSES: usize = 10_000;

/// Every console route, with whether it changes something (and so needs the
/// CSRF token). The router is built from this list, and the tests walk it.
pub const ROUTES: &[(&str, bool)] = &[
    ("/console", false),
    ("/console/login", false),
    ("/console/logout", true),
    ("/console/admissions", true),
    ("/console/cap", true),
];

/// The console's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(home))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/admissions", post(admissions))
        .route("/console/cap", post(participant_cap))
}

/// Failed logins per address, recent ones only.
#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<IpAddr, Vec<Instant>>>,
}

impl LoginLimiter {
    fn is_blocked(&self, address: IpAddr) -> bool {
        let mut failures = lock(&self.failures);
        let recent = failures.entry(address).or_default();
        recent.retain(|at| at.elapsed() < FAILED_LOGIN_WINDOW);
        let blocked = recent.len() >= MAX_FAILED_LOGINS;
        if recent.is_empty() {
            failures.remove(&address);
        }
        blocked
    }

    fn failed(&self, address: IpAddr) {
        let mut failures = lock(&self.failures);
        if failures.len() >= REMEMBERED_ADDRESSES && !failures.contains_key(&address) {
            failures.retain(|_, at| at.iter().any(|t| t.elapsed() < FAILED_LOGIN_WINDOW));
            if failures.len() >= REMEMBERED_ADDRESSES {
                return;
            }
        }
        failures.entry(address).or_default().push(Instant::now());
    }
}

/// The hex SHA-256 of a cookie token: what the database keeps.
fn token_hash(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

/// A fresh random token, hex.
fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal strings, in time that depends only on their lengths.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Tandem console</title>\
         <link rel=\"stylesheet\" href=\"/static/style.css\"></head>\
         <body><main id=\"console\"><h1>{title}</h1>{body}</main></body></html>"
    );
    let mut response = (status, Html(html)).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The console is closed until a user exists: the refusal to send until then.
async fn require_users(state: &AppState) -> Result<(), Response> {
    match state.store.count_console_users().await {
        Ok(n) if n > 0 => Ok(()),
        Ok(_) => Err(no_users()),
        Err(e) => {
            error!(cause = %e, "could not count console users");
            Err(page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Console unavailable",
                "<p>The database could not be read.</p>",
            ))
        }
    }
}

fn no_users() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "No console users",
        "<p>The console has no users yet. On the server, run \
         <code>tandem admin add-user NAME</code>.</p>",
    )
}

/// The session the request's cookie opens, if any.
async fn session_of(state: &AppState, jar: &CookieJar) -> Option<ConsoleSession> {
    let token = jar.get(CONSOLE_COOKIE)?.value().to_string();
    match state.store.console_session(&token_hash(&token)).await {
        Ok(session) => session,
        Err(e) => {
            error!(cause = %e, "could not read a console session");
            None
        }
    }
}

async fn home(State(state): State<AppState>, jar: CookieJar) -> Response {
    if let Err(closed) = require_users(&state).await {
        return closed;
    }
    let Some(session) = session_of(&state, &jar).await else {
        return Redirect::to("/console/login").into_response();
    };
    let paused = state.admissions_paused.load(Ordering::SeqCst);
    let (admissions, toggle, label) = if paused {
        (
            "paused: new arrivals are turned away",
            "false",
            "Resume admissions",
        )
    } else {
        ("open", "true", "Pause admissions")
    };
    let csrf = escape(&session.csrf);
    let participants = state.admission.participants();
    let cap_now = state.admission.cap();
    let cap = cap_now.map_or_else(|| "none".to_string(), |c| c.to_string());
    let cap_value = cap_now.map_or_else(String::new, |c| c.to_string());
    let body = format!(
        "<p>Signed in as <strong id=\"console-user\">{}</strong>. Study: {}.</p>\
         <p>Admissions: <strong id=\"admissions\">{admissions}</strong></p>\
         <form method=\"post\" action=\"/console/admissions\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"paused\" value=\"{toggle}\">\
         <button type=\"submit\">{label}</button></form>\
         <p>Participants: <strong id=\"participants\">{participants}</strong> \
         (cap: <strong id=\"cap\">{cap}</strong>)</p>\
         <form method=\"post\" action=\"/console/cap\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label>Cap <input name=\"cap\" inputmode=\"numeric\" value=\"{cap_value}\"></label>\
         <button type=\"submit\">Set the cap</button> (empty: no cap)</form>\
         <form method=\"post\" action=\"/console/logout\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\">Log out</button></form>",
        escape(&session.user_name),
        escape(&state.experiment.title),
    );
    page(StatusCode::OK, "Console", &body)
}

fn login_form(message: Option<&str>) -> String {
    let message = message.map_or_else(String::new, |m| {
        format!("<p role=\"alert\" id=\"login-error\">{}</p>", escape(m))
    });
    format!(
        "{message}<form method=\"post\" action=\"/console/login\">\
         <label>Name <input name=\"name\" autocomplete=\"username\" required></label>\
         <label>Password <input name=\"password\" type=\"password\" \
         autocomplete=\"current-password\" required></label>\
         <button type=\"submit\">Log in</button></form>"
    )
}

async fn login_page(State(state): State<AppState>) -> Response {
    match require_users(&state).await {
        Ok(()) => page(StatusCode::OK, "Log in", &login_form(None)),
        Err(closed) => closed,
    }
}

#[derive(serde::Deserialize)]
struct Login {
    name: String,
    password: String,
}

/// A hash checked when the name is unknown, so that a wrong name takes as
/// long as a wrong password (made once, of a password nobody has).
fn decoy_hash() -> String {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY
        .get_or_init(|| accounts::hash_password(&random_token()).unwrap_or_default())
        .clone()
}

async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<Login>,
) -> Response {
    if let Err(closed) = require_users(&state).await {
        return closed;
    }
    let address = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.0.0.ip());
    if state.console_logins.is_blocked(address) {
        warn!(%address, "console login refused: too many failures from this address");
        return page(
            StatusCode::TOO_MANY_REQUESTS,
            "Log in",
            &login_form(Some(
                "Too many failed logins from this address. Wait a few minutes.",
            )),
        );
    }
    let user = match state.store.console_user(&form.name).await {
        Ok(user) => user,
        Err(e) => {
            error!(cause = %e, "could not read a console user");
            return page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Log in",
                &login_form(Some("The database could not be read.")),
            );
        }
    };
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let password = form.password;
    // Argon2 takes tens of milliseconds on purpose: off the async runtime.
    let matches = tokio::task::spawn_blocking(move || {
        let hash = hash.unwrap_or_else(decoy_hash);
        accounts::verify_password(&password, &hash)
    })
    .await
    .unwrap_or(false);
    let Some(user) = user.filter(|_| matches) else {
        state.console_logins.failed(address);
        // The name is not logged: it may be a password typed in the wrong box.
        warn!(%address, "console login failed");
        return page(
            StatusCode::UNAUTHORIZED,
            "Log in",
            &login_form(Some("Wrong name or password.")),
        );
    };
    let token = random_token();
    let csrf = random_token();
    let expires_us = now_us() + SESSION_HOURS * 3_600_000_000;
    if let Err(e) = state
        .store
        .create_console_session(&token_hash(&token), user.id, &csrf, expires_us)
        .await
    {
        error!(cause = %e, "could not store a console session");
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Log in",
            &login_form(Some("The database could not be written.")),
        );
    }
    info!(user = user.name, %address, "console login");
    let https = state.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie = Cookie::build((CONSOLE_COOKIE, token))
        .path("/console")
        .http_only(true)
        .secure(https)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::hours(SESSION_HOURS))
        .build();
    (jar.add(cookie), Redirect::to("/console")).into_response()
}

#[derive(serde::Deserialize)]
struct Change {
    #[serde(default)]
    csrf: String,
}

/// The signed-in session of a request that changes something, with its CSRF
/// token checked; else the refusal to send.
async fn authorized(
    state: &AppState,
    jar: &CookieJar,
    csrf: &str,
) -> Result<ConsoleSession, Response> {
    require_users(state).await?;
    let Some(session) = session_of(state, jar).await else {
        return Err(page(
            StatusCode::FORBIDDEN,
            "Not signed in",
            "<p><a href=\"/console/login\">Log in</a>.</p>",
        ));
    };
    if !same(csrf, &session.csrf) {
        warn!(
            user = session.user_name,
            "a console request without its CSRF token was refused"
        );
        return Err(page(
            StatusCode::FORBIDDEN,
            "Refused",
            "<p>This form is out of date. Reload the page and try again.</p>",
        ));
    }
    Ok(session)
}

#[derive(serde::Deserialize)]
struct Admissions {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    paused: String,
}

#[derive(serde::Deserialize)]
struct Cap {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    cap: String,
}

/// Sets or clears the participant cap, recorded in the audit log with who did
/// it. A cap below the participants already in admits nobody new; nobody is
/// turned out.
async fn participant_cap(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<Cap>,
) -> Response {
    let session = match authorized(&state, &jar, &form.csrf).await {
        Ok(session) => session,
        Err(refusal) => return refusal,
    };
    let cap = match form.cap.trim() {
        "" => None,
        text => match text.parse::<u64>() {
            Ok(cap) => Some(cap),
            Err(_) => {
                return page(
                    StatusCode::BAD_REQUEST,
                    "Refused",
                    "<p>The cap is a whole number of participants, or empty for none.</p>",
                );
            }
        },
    };
    if let Err(e) = state
        .store
        .set_participant_cap(&state.experiment.id, cap, &session.user_name)
        .await
    {
        error!(cause = %e, "could not record the participant cap");
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Not changed",
            "<p>The database could not be written; nothing changed.</p>",
        );
    }
    state.admission.set_cap(cap);
    info!(
        user = session.user_name,
        ?cap,
        "participant cap changed from the console"
    );
    Redirect::to("/console").into_response()
}

/// Pauses or resumes admissions, recorded in the audit log with who did it.
async fn admissions(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<Admissions>,
) -> Response {
    let session = match authorized(&state, &jar, &form.csrf).await {
        Ok(session) => session,
        Err(refusal) => return refusal,
    };
    let paused = match form.paused.as_str() {
        "true" => true,
        "false" => false,
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                "Refused",
                "<p>paused must be true or false.</p>",
            );
        }
    };
    if let Err(e) = state
        .store
        .set_admissions_paused(&state.experiment.id, paused, &session.user_name)
        .await
    {
        error!(cause = %e, "could not record pausing admissions");
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Not changed",
            "<p>The database could not be written; nothing changed.</p>",
        );
    }
    state.admissions_paused.store(paused, Ordering::SeqCst);
    info!(
        user = session.user_name,
        paused, "admissions changed from the console"
    );
    Redirect::to("/console").into_response()
}

async fn logout(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<Change>,
) -> Response {
    let session = match authorized(&state, &jar, &form.csrf).await {
        Ok(session) => session,
        Err(refusal) => return refusal,
    };
    if let Some(token) = jar.get(CONSOLE_COOKIE).map(|c| c.value().to_string())
        && let Err(e) = state
            .store
            .delete_console_session(&token_hash(&token))
            .await
    {
        error!(cause = %e, "could not end a console session");
    }
    info!(user = session.user_name, "console logout");
    let gone = Cookie::build((CONSOLE_COOKIE, "")).path("/console").build();
    (jar.remove(gone), Redirect::to("/console/login")).into_response()
}

#[cfg(test)]
#[path = "console_tests.rs"]
mod tests;
