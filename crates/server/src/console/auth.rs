//! Who may use the console: logins, sessions and their CSRF tokens, and the
//! limit on failed logins.
//!
//! A login is a random token in an HttpOnly, SameSite=Strict cookie scoped to
//! `/console` (Secure behind HTTPS); the database keeps only its SHA-256, and
//! the session ends after [`SESSION_HOURS`] whatever happens. Every request
//! that changes something carries the session's CSRF token in its form,
//! compared in constant time ([`csrf_refusal`]). Failed logins are counted per
//! address: past [`MAX_FAILED_LOGINS`] in [`FAILED_LOGIN_WINDOW`], that address
//! gets 429 even with the right password. A participant's cookie opens nothing.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::{ConnectInfo, Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use sha2::{Digest, Sha256};
use tandem_store::{ConsoleSession, Store, now_us};
use tracing::{error, info, warn};

use super::{escape, page, refused};
use crate::accounts;
use crate::studies::Studies;
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
pub(super) fn token_hash(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

/// A fresh random token, hex.
pub(super) fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal strings, in time that depends only on their lengths.
pub(super) fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The console is closed until a user exists: the refusal to send until then.
pub(super) async fn require_users(store: &Store) -> Result<(), Response> {
    match store.count_console_users().await {
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
/// The stored hash of the login a request's cookie carries (empty without
/// one): what a long-lived feed or socket re-checks with [`still_signed_in`].
pub(super) fn login_hash(jar: &CookieJar) -> String {
    jar.get(CONSOLE_COOKIE)
        .map(|c| token_hash(c.value()))
        .unwrap_or_default()
}

/// Whether the login whose hash is `hash` still holds (not expired, not
/// logged out).
pub(super) async fn still_signed_in(store: &Store, hash: &str) -> bool {
    matches!(store.console_session(hash).await, Ok(Some(_)))
}

pub(super) async fn session_of(store: &Store, jar: &CookieJar) -> Option<ConsoleSession> {
    let token = jar.get(CONSOLE_COOKIE)?.value().to_string();
    match store.console_session(&token_hash(&token)).await {
        Ok(session) => session,
        Err(e) => {
            error!(cause = %e, "could not read a console session");
            None
        }
    }
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

pub(super) async fn login_page() -> Response {
    page(StatusCode::OK, "Log in", &login_form(None))
}

#[derive(serde::Deserialize)]
pub(super) struct Login {
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

pub(super) async fn login(
    State(studies): State<Studies>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<Login>,
) -> Response {
    let address = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.0.0.ip());
    if studies.first().console_logins.is_blocked(address) {
        warn!(%address, "console login refused: too many failures from this address");
        return page(
            StatusCode::TOO_MANY_REQUESTS,
            "Log in",
            &login_form(Some(
                "Too many failed logins from this address. Wait a few minutes.",
            )),
        );
    }
    let user = match studies.store().console_user(&form.name).await {
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
        studies.first().console_logins.failed(address);
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
    if let Err(e) = studies
        .store()
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
    let https = studies.first().secure_cookies
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
pub(super) struct Change {
    #[serde(default)]
    pub(super) csrf: String,
}

/// The refusal for a change whose form does not carry the session's CSRF
/// token; `None` when it does.
pub(super) fn csrf_refusal(session: &ConsoleSession, csrf: &str) -> Option<Response> {
    if same(csrf, &session.csrf) {
        return None;
    }
    warn!(
        user = session.user_name,
        "a console request without its CSRF token was refused"
    );
    Some(refused(
        StatusCode::FORBIDDEN,
        "This form is out of date. Reload the page and try again.",
    ))
}

pub(super) async fn logout(
    State(studies): State<Studies>,
    Extension(session): Extension<ConsoleSession>,
    jar: CookieJar,
    Form(form): Form<Change>,
) -> Response {
    if let Some(refusal) = csrf_refusal(&session, &form.csrf) {
        return refusal;
    }
    if let Some(token) = jar.get(CONSOLE_COOKIE).map(|c| c.value().to_string())
        && let Err(e) = studies
            .store()
            .delete_console_session(&token_hash(&token))
            .await
    {
        error!(cause = %e, "could not end a console session");
    }
    info!(user = session.user_name, "console logout");
    let gone = Cookie::build((CONSOLE_COOKIE, "")).path("/console").build();
    (jar.remove(gone), Redirect::to("/console/login")).into_response()
}
