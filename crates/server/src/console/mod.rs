//! The researcher console: log in, watch the study live, step in.
//!
//! Shaped around what a stranger can and cannot do. No console route answers
//! before a user exists (`tandem admin add-user`), so there is no default
//! password to guess. Every route is declared once in [`routes`], with its
//! [`Kind`], and the router is built from that list behind one guard: the
//! login page is the only route open without a session; a page without one
//! redirects to the login, anything else is refused. A route that changes
//! something also checks the session's CSRF token from its form. The tests
//! walk the same list, so a route added here is tested by construction.
//!
//! Layout:
//! - `auth`: logins, sessions, CSRF, the failed-login limit.
//! - `controls`: pausing admissions, the participant cap, ending a game,
//!   closing the study; each in the audit log with the researcher's name.
//! - `dashboard`: the signed-in page and its live feed (server-sent events).
//! - `watch`: one running game, live, read-only, over a socket.
//! - `replay`: a recorded episode, re-simulated into frames, with every step's
//!   choices, rewards, feedback and timing.
//! - `metrics`: the Prometheus text at `/metrics`.

mod auth;
mod controls;
mod dashboard;
pub mod metrics;
mod replay;
mod watch;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use axum_extra::extract::cookie::CookieJar;

use crate::studies::Studies;

pub use auth::{
    CONSOLE_COOKIE, FAILED_LOGIN_WINDOW, LoginLimiter, MAX_FAILED_LOGINS, SESSION_HOURS,
};

/// What a console route is, which decides how a request without a session is
/// refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The login page and form: the only route open without a session.
    Login,
    /// An HTML page: without a session, a redirect to the login page.
    Page,
    /// Data for a signed-in page (JSON, a live feed, a socket): 403 without a
    /// session.
    Data,
    /// A form that changes something: 403 without a session or its CSRF token.
    Change,
}

/// One console route.
pub struct ConsoleRoute {
    pub path: &'static str,
    /// The path with its parameters filled in, for the tests.
    pub example: &'static str,
    pub kind: Kind,
    pub handler: MethodRouter<Studies>,
}

fn route(
    path: &'static str,
    example: &'static str,
    kind: Kind,
    handler: MethodRouter<Studies>,
) -> ConsoleRoute {
    ConsoleRoute {
        path,
        example,
        kind,
        handler,
    }
}

/// Every console route: the router is built from this list, and the tests
/// walk it.
pub fn routes() -> Vec<ConsoleRoute> {
    use Kind::*;
    vec![
        route(
            "/console/login",
            "/console/login",
            Login,
            get(auth::login_page).post(auth::login),
        ),
        route("/console", "/console", Page, get(dashboard::home)),
        route(
            "/console/games/{game_id}",
            "/console/games/1",
            Page,
            get(watch::show),
        ),
        route(
            "/console/episodes/{episode_id}",
            "/console/episodes/1",
            Page,
            get(replay::show),
        ),
        route("/console/live", "/console/live", Data, get(dashboard::live)),
        route(
            "/console/games/{game_id}/frames",
            "/console/games/1/frames",
            Data,
            get(watch::frames),
        ),
        route(
            "/console/episodes/{episode_id}/data",
            "/console/episodes/1/data",
            Data,
            get(replay::data),
        ),
        route(
            "/console/metrics",
            "/console/metrics",
            Data,
            get(metrics::signed_in),
        ),
        route(
            "/console/logout",
            "/console/logout",
            Change,
            post(auth::logout),
        ),
        route(
            "/console/admissions",
            "/console/admissions",
            Change,
            post(controls::admissions),
        ),
        route(
            "/console/cap",
            "/console/cap",
            Change,
            post(controls::participant_cap),
        ),
        route(
            "/console/games/{game_id}/end",
            "/console/games/1/end",
            Change,
            post(controls::end_game),
        ),
        route(
            "/console/close",
            "/console/close",
            Change,
            post(controls::close_study),
        ),
    ]
}

/// The console's routes, each behind the guard its kind asks for.
pub fn router(studies: &Studies) -> Router<Studies> {
    routes().into_iter().fold(Router::new(), |router, r| {
        let guarded = r
            .handler
            .route_layer(from_fn_with_state((studies.clone(), r.kind), guard));
        router.route(r.path, guarded)
    })
}

/// Lets a request through to its handler only as its route's kind allows,
/// handing the handler the signed-in session.
async fn guard(
    State((studies, kind)): State<(Studies, Kind)>,
    jar: CookieJar,
    mut request: Request,
    next: Next,
) -> Response {
    if let Err(closed) = auth::require_users(studies.store()).await {
        return closed;
    }
    if kind == Kind::Login {
        return next.run(request).await;
    }
    let Some(session) = auth::session_of(studies.store(), &jar).await else {
        return match kind {
            Kind::Page => Redirect::to("/console/login").into_response(),
            _ => page(
                StatusCode::FORBIDDEN,
                "Not signed in",
                "<p><a href=\"/console/login\">Log in</a>.</p>",
            ),
        };
    };
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// A console page around `body`, never cached. `script` names a module under
/// `/static/` the page runs (the CSP allows no inline script).
fn page_with(status: StatusCode, title: &str, body: &str, script: Option<&str>) -> Response {
    let script = script.map_or_else(String::new, |s| {
        format!("<script type=\"module\" src=\"/static/{s}\"></script>")
    });
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Tandem console</title>\
         <link rel=\"stylesheet\" href=\"/static/style.css\">\
         <link rel=\"stylesheet\" href=\"/static/console.css\">{script}</head>\
         <body><main id=\"console\"><h1>{title}</h1>{body}</main></body></html>"
    );
    let mut response = (status, Html(html)).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    page_with(status, title, body, None)
}

/// A refusal page for a request the console cannot carry out.
fn refused(status: StatusCode, message: &str) -> Response {
    page(status, "Refused", &format!("<p>{}</p>", escape(message)))
}

/// `text` made safe inside HTML text and attribute values.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests;
