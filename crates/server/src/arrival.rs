//! `GET /`: where a browser becomes a participant, or is recognised as one.
//!
//! A browser is its participant's by the cookie this page sets (HttpOnly, a
//! random token). Without the cookie, a study link's recruiting ids do not
//! make anyone a participant they name: a Prolific id or an MTurk worker id
//! shows on profiles, in redirect URLs and in logs, so it is not a password.
//! Only the full set of ids the platform gives for one submission —
//! Prolific's `PROLIFIC_PID`, `STUDY_ID` and `SESSION_ID`, MTurk's
//! `workerId`, `assignmentId` and `hitId` — resumes that participant in
//! another browser; that is the link the platform itself opens for them. A
//! link that names a participant who started without proving the submission
//! gets a page that says so, and nobody is created twice.
//!
//! MTurk shows a study in a frame on its own site, where the cookie is not
//! sent (SameSite) or not kept (third-party cookies blocked). An MTurk
//! participant's page therefore also carries their key in a `<meta>` tag; the
//! page keeps it in its own URL's fragment (never sent to a server, kept across
//! reloads of the frame) and offers it in its socket's handshake. A reload without a
//! cookie gets the page without a key, which works only with the fragment:
//! the link MTurk gives (worker, assignment and HIT ids) is not a credential,
//! so a stolen link lets nobody act as the worker. A HIT preview
//! (`assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE`) shows a preview and creates
//! nobody.
//!
//! New participants are created only by a real page load (`HEAD`, which link
//! previews and scanners send, creates nobody), within the per-address and
//! per-study limits of `admission`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Extension;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use tandem_store::{Assigned, ExternalKey, NewParticipant, Participant, RecruitIds};
use tracing::{info, warn};

use crate::admission::{Refused, retry_after};
use crate::app_error::AppError;
use crate::assets::page_html;
use crate::state::AppState;

/// The cookie that identifies a participant's browser (with `_ID` after it
/// for each study on a server with several).
pub const PARTICIPANT_COOKIE: &str = "tandem_participant";

/// External ids longer than this are cut: no real id is this long.
const MAX_ID_LEN: usize = 128;

/// The page a browser gets when its link names a participant it cannot prove
/// to be (409).
const TAKEN: &str = "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
<title>Study</title><h1>This study was started in another browser</h1>\
<p>Your participant id has already started this study, in another browser or \
with a different link. Please continue in the browser where you started, or open \
the study again from the recruiting platform's own link.</p></html>";

/// The page for an address that created too many participants lately (429).
const TOO_FAST: &str = "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
<title>Study</title><h1>Please wait a moment</h1>\
<p>Many participants have joined from your network in the last minute. Please \
reload this page in a minute.</p></html>";

/// The page for a study that has all its participants (503).
const FULL: &str = "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
<title>Study</title><h1>This study is full</h1>\
<p>This study has all the participants it needs. Thank you for your interest.</p></html>";

/// For a new arrival while a researcher has paused admissions (503).
const PAUSED: &str = "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
<title>Study</title><h1>Not taking participants now</h1>\
<p>This study is not taking new participants at the moment. Please try again later.</p></html>";

/// For someone who has already taken part in this study, arriving again
/// without being able to resume (403).
const ALREADY_TOOK_PART: &str = "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
<title>Study</title><h1 id=\"already\">You have already taken part</h1>\
<p>Our records show you have already completed this study. Each person may take \
part once. Thank you for your interest.</p></html>";

/// For someone who has started another study of this study's lockout group
/// (403).
const LOCKED_OUT: &str = "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
<title>Study</title><h1 id=\"locked-out\">You cannot take part in this study</h1>\
<p>Our records show you have already taken part in a related study, and each \
person may take part in only one of them. Thank you for your interest; please \
return this study on the recruiting platform.</p></html>";

/// For a new arrival once a researcher has closed the study (410).
const CLOSED: &str = "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
<title>Study</title><h1>This study has ended</h1>\
<p>This study is no longer taking participants. Thank you for your interest.</p></html>";

/// The `assignmentId` MTurk puts on the link of a HIT being previewed.
const MTURK_PREVIEW: &str = "ASSIGNMENT_ID_NOT_AVAILABLE";

/// The page an MTurk worker previewing the HIT sees (200): nobody is created.
fn preview_page(title: &str) -> Response {
    let title = crate::console::escape(title);
    let html = format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
         <title>{title}</title><h1 id=\"preview\">{title}</h1>\
         <p>This is a preview. Accept the HIT to take part; the study starts here once you have.</p></html>"
    );
    ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

/// `GET /` (and `HEAD /`).
pub async fn participant_page(
    State(state): State<AppState>,
    method: Method,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    jar: CookieJar,
) -> Result<Response, AppError> {
    if state.is_shutting_down() {
        return Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            "The study server is restarting; please reload in a minute.",
        )
            .into_response());
    }
    if method == Method::HEAD {
        // A link preview or a scanner: show the page, make nobody.
        return Ok(page(&state, None, &headers, false));
    }
    if query.get("assignmentId").map(String::as_str) == Some(MTURK_PREVIEW) {
        return Ok(preview_page(&state.experiment.title));
    }
    let link = recruit_ids(&query, &state.mturk_submit_to);
    let participant = match identify(&state, &link, &jar).await? {
        Identified::Participant(p) => *p,
        Identified::NeedsKey => return Ok(page(&state, None, &headers, true)),
        Identified::AlreadyDone => {
            info!("a participant who finished arrived again without their cookie");
            return Ok((StatusCode::FORBIDDEN, Html(ALREADY_TOOK_PART)).into_response());
        }
        Identified::Taken => {
            warn!("a link named a participant it could not prove to be");
            return Ok((StatusCode::CONFLICT, Html(TAKEN)).into_response());
        }
        Identified::Nobody => {
            if state.study_closed.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok((StatusCode::GONE, Html(CLOSED)).into_response());
            }
            if let Some(other) = started_elsewhere(&state, &link).await? {
                info!(
                    other,
                    "refused someone who started another study of the lockout group"
                );
                return Ok((StatusCode::FORBIDDEN, Html(LOCKED_OUT)).into_response());
            }
            if state
                .admissions_paused
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                return Ok((StatusCode::SERVICE_UNAVAILABLE, Html(PAUSED)).into_response());
            }
            let address = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.0.0.ip());
            match state.admission.admit(address) {
                Ok(()) => {}
                Err(Refused::TooFast) => {
                    warn!(%address, "refused a new participant: too many from this address");
                    let wait = retry_after(&state.admission_limits).as_secs().to_string();
                    let retry =
                        HeaderValue::from_str(&wait).unwrap_or(HeaderValue::from_static("60"));
                    return Ok((
                        StatusCode::TOO_MANY_REQUESTS,
                        [(header::RETRY_AFTER, retry)],
                        Html(TOO_FAST),
                    )
                        .into_response());
                }
                Err(Refused::Full) => {
                    return Ok((StatusCode::SERVICE_UNAVAILABLE, Html(FULL)).into_response());
                }
            }
            match create_participant(&state, link, &headers).await {
                Ok(p) => p,
                Err(e) => {
                    state.admission.cancel();
                    return Err(e);
                }
            }
        }
    };
    Ok(page(&state, Some(&participant), &headers, false))
}

/// Who a browser is.
enum Identified {
    Participant(Box<Participant>),
    /// The link names a participant this browser cannot prove to be.
    Taken,
    /// The link names an MTurk worker who has started, and this browser sent
    /// no cookie: only the key their page keeps can resume them.
    NeedsKey,
    /// The link names someone who finished the study, and cannot prove to be
    /// them: a second attempt.
    AlreadyDone,
    /// Nobody yet: a new participant.
    Nobody,
}

async fn identify(
    state: &AppState,
    link: &RecruitIds,
    jar: &CookieJar,
) -> Result<Identified, AppError> {
    let experiment_id = &state.experiment.id;
    if let Some(cookie) = jar.get(&state.cookie_name)
        && let Some(p) = state.store.participant_by_token(cookie.value()).await?
        && &p.experiment_id == experiment_id
        && link_fits(link, &p)
    {
        return Ok(Identified::Participant(Box::new(p)));
    }
    let key = match (&link.prolific_pid, &link.worker_id) {
        (Some(pid), _) => ExternalKey::Prolific(pid),
        (None, Some(worker)) => ExternalKey::MTurk(worker),
        (None, None) => return Ok(Identified::Nobody),
    };
    Ok(
        match state
            .store
            .participant_by_external(experiment_id, key)
            .await?
        {
            Some(p) if proves_submission(link, &p) => Identified::Participant(Box::new(p)),
            // MTurk's ids are the link itself: never enough alone, but the
            // worker's own page (reloaded, even after the end, before its
            // post went through) resumes with the key it keeps.
            Some(_) if link.prolific_pid.is_none() => Identified::NeedsKey,
            Some(p) if p.finished_us.is_some() => Identified::AlreadyDone,
            Some(_) => Identified::Taken,
            None => Identified::Nobody,
        },
    )
}

/// Another study of this one's lockout group that the link's Prolific or
/// MTurk id has started, if any.
async fn started_elsewhere(
    state: &AppState,
    link: &RecruitIds,
) -> Result<Option<String>, AppError> {
    let Some(group) = &state.experiment.lockout_group else {
        return Ok(None);
    };
    let mut keys = Vec::new();
    if let Some(pid) = &link.prolific_pid {
        keys.push(ExternalKey::Prolific(pid));
    }
    if let Some(worker) = &link.worker_id {
        keys.push(ExternalKey::MTurk(worker));
    }
    for key in keys {
        if let Some(other) = state
            .store
            .started_in_group(group, &state.experiment.id, key)
            .await?
        {
            return Ok(Some(other));
        }
    }
    Ok(None)
}

/// Whether `id` looks like a platform's id: letters, digits, `-` and `_`.
/// Anything else (a comma, a newline) would let an id inject lines into the
/// files researchers upload (bonuses), so it is not kept.
pub fn plausible_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The recruiting platform's ids from the study link's query string (only
/// plausible ones); `turkSubmitTo` only when it is one of `submit_origins`.
fn recruit_ids(query: &HashMap<String, String>, submit_origins: &[String]) -> RecruitIds {
    let get = |key: &str| {
        let value = query.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())?;
        if plausible_id(value) {
            Some(value.to_string())
        } else {
            warn!(
                field = key,
                "a link's id has characters no platform uses; it is ignored"
            );
            None
        }
    };
    let raw = |key: &str| {
        query
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(|v| v.chars().take(2 * MAX_ID_LEN).collect::<String>())
    };
    RecruitIds {
        prolific_pid: get("PROLIFIC_PID"),
        study_id: get("STUDY_ID"),
        session_id: get("SESSION_ID"),
        worker_id: get("workerId"),
        assignment_id: get("assignmentId"),
        hit_id: get("hitId"),
        turk_submit_to: raw("turkSubmitTo").and_then(|to| {
            let to = to.trim_end_matches('/');
            let allowed = submit_origins.iter().any(|o| o == to);
            if !allowed {
                warn!("a link's turkSubmitTo is not an allowed origin; it is ignored");
            }
            allowed.then(|| to.to_string())
        }),
    }
}

/// Whether `p` may be the person a link names: a link with a Prolific or MTurk
/// id belongs only to the participant with that id.
fn link_fits(link: &RecruitIds, p: &Participant) -> bool {
    let same = |link: &Option<String>, stored: &Option<String>| link.is_none() || link == stored;
    same(&link.prolific_pid, &p.recruit.prolific_pid) && same(&link.worker_id, &p.recruit.worker_id)
}

/// Whether `link` carries every id Prolific gives for one submission, each
/// equal to what `p` arrived with: what only the participant (and Prolific)
/// knows, not just who they are. MTurk's ids never prove anything: they are
/// the link every reload of the HIT's frame carries (see the module docs).
fn proves_submission(link: &RecruitIds, p: &Participant) -> bool {
    let known = |link: &Option<String>, stored: &Option<String>| link.is_some() && link == stored;
    let r = &p.recruit;
    link.prolific_pid.is_some()
        && known(&link.prolific_pid, &r.prolific_pid)
        && known(&link.study_id, &r.study_id)
        && known(&link.session_id, &r.session_id)
}

async fn create_participant(
    state: &AppState,
    recruit: RecruitIds,
    headers: &HeaderMap,
) -> Result<Participant, AppError> {
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(512).collect());
    let new = NewParticipant {
        token: uuid::Uuid::new_v4().simple().to_string(),
        public_id: uuid::Uuid::now_v7().to_string(),
        experiment_id: state.experiment.id.clone(),
        recruit,
        user_agent,
    };
    let experiment = &state.experiment;
    let participant = state
        .store
        .create_assigned_participant(&new, |counts| {
            let assignment = experiment.design.assign(counts, &mut rand::rng());
            let first = assignment.plan.first().copied().unwrap_or(0);
            let first_id = experiment.scenes.get(first).map_or("", |s| s.id());
            Assigned {
                scene_plan: experiment.plan_ids(&assignment.plan),
                condition: assignment.condition,
                first: (first as u32, first_id.to_string()),
            }
        })
        .await?;
    info!(
        participant = participant.id,
        public_id = %participant.public_id,
        condition = participant.condition.as_deref().unwrap_or("-"),
        "new participant"
    );
    Ok(participant)
}

/// The participant page, with the cookie of `participant` when there is one
/// and, for an MTurk participant, their key (see the module docs);
/// `needs_key` marks a page that only a kept key can resume.
fn page(
    state: &AppState,
    participant: Option<&Participant>,
    headers: &HeaderMap,
    needs_key: bool,
) -> Response {
    let meta = match participant {
        Some(p) if p.recruit.worker_id.is_some() => {
            format!(
                "<meta name=\"tandem-key\" content=\"{}\">",
                key_text(&p.token)
            )
        }
        _ if needs_key => "<meta name=\"tandem-needs-key\" content=\"1\">".to_string(),
        _ => String::new(),
    };
    let html = if meta.is_empty() {
        page_html().to_string()
    } else {
        page_html().replacen("</head>", &format!("{meta}</head>"), 1)
    };
    let mut response = ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response();
    if let Some(p) = participant {
        // Behind HTTPS (said by the proxy, or by the operator) the cookie is
        // never sent over plain HTTP.
        let https = state.secure_cookies
            || headers
                .get("x-forwarded-proto")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
        // Scoped to the study's folder, so studies on one server keep apart.
        let cookie = Cookie::build((state.cookie_name.clone(), p.token.clone()))
            .path(state.base_path.clone())
            .http_only(true)
            .max_age(cookie::time::Duration::days(60));
        // In MTurk's cross-site frame a Lax cookie is never sent. Over HTTPS
        // an MTurk participant's cookie is also sent there, partitioned
        // (CHIPS): kept for MTurk's site only, it resumes the worker when the
        // HIT is reopened in a new frame, which has no key in its fragment.
        let cookie = if https && p.recruit.worker_id.is_some() {
            cookie
                .secure(true)
                .same_site(SameSite::None)
                .partitioned(true)
        } else {
            cookie.secure(https).same_site(SameSite::Lax)
        }
        .build();
        if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// A token as it may appear in the page: tokens are hex, and anything else
/// is dropped rather than written into HTML.
fn key_text(token: &str) -> String {
    token.chars().filter(char::is_ascii_alphanumeric).collect()
}

#[cfg(test)]
mod tests {
    use tandem_store::RecruitIds;

    use super::*;

    fn participant(recruit: RecruitIds) -> Participant {
        Participant {
            id: 1,
            token: "t".into(),
            public_id: "p".into(),
            experiment_id: "e".into(),
            recruit,
            user_agent: None,
            created_us: 0,
            scene_index: 0,
            scene_entered_us: None,
            finished_us: None,
            completion_code: None,
            condition: None,
            scene_plan: None,
        }
    }

    fn prolific(pid: &str, study: Option<&str>, session: Option<&str>) -> RecruitIds {
        RecruitIds {
            prolific_pid: Some(pid.into()),
            study_id: study.map(Into::into),
            session_id: session.map(Into::into),
            ..RecruitIds::default()
        }
    }

    /// Only the whole set of a submission's ids proves it; an id alone, or
    /// the set of another submission, does not.
    #[test]
    fn only_the_full_set_proves_a_submission() {
        let stored = participant(prolific("P", Some("S"), Some("X")));
        assert!(proves_submission(
            &prolific("P", Some("S"), Some("X")),
            &stored
        ));
        assert!(!proves_submission(&prolific("P", None, None), &stored));
        assert!(!proves_submission(&prolific("P", Some("S"), None), &stored));
        assert!(!proves_submission(
            &prolific("P", Some("S"), Some("Y")),
            &stored
        ));
        let without_session = participant(prolific("P", Some("S"), None));
        assert!(
            !proves_submission(&prolific("P", Some("S"), None), &without_session),
            "a participant who arrived without a session id can resume only with the cookie"
        );
        let worker = |a: &str| RecruitIds {
            worker_id: Some("W".into()),
            assignment_id: Some(a.into()),
            hit_id: Some("H".into()),
            ..RecruitIds::default()
        };
        let mturk = participant(worker("A"));
        assert!(
            !proves_submission(&worker("A"), &mturk),
            "MTurk's link is no proof"
        );
        assert!(!proves_submission(&worker("B"), &mturk));
    }
}
