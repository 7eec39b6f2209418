//! MTurk, over real HTTP and sockets: a HIT preview creates nobody; an MTurk
//! participant's page carries a key that opens their socket without a cookie
//! (offered in the handshake's subprotocols, never in a URL)
//! (what a cross-site frame sends); the link itself (worker, assignment and
//! HIT ids) is no credential, so a stolen link resumes nobody; keys open only
//! MTurk participants; and the end scene tells the page where to post the
//! assignment, only for an allowed `turkSubmitTo`.

mod common;

use common::{Client, TestServer, WAIT, count};
use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;

const STUDY: &str = r#"
id = "hit"
title = "A HIT"

[[scene]]
kind = "info"
id = "hello"
title = "Hello"
markdown = "Read this."

[[scene]]
kind = "end"
id = "end"
title = "Thanks"
markdown = "Done."
completion_code = "HIT-DONE"
"#;

const LINK: &str =
    "/?workerId=W1&assignmentId=A1&hitId=H1&turkSubmitTo=https%3A%2F%2Fworkersandbox.mturk.com";

async fn get(server: &TestServer, path: &str) -> (u16, Option<String>, String) {
    let response = reqwest::get(server.url(path)).await.expect("answers");
    let status = response.status().as_u16();
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tandem_participant="))
        .map(|v| v.split(';').next().unwrap_or_default().to_string());
    (status, cookie, response.text().await.unwrap_or_default())
}

fn meta(body: &str, name: &str) -> Option<String> {
    let tag = format!("<meta name=\"{name}\" content=\"");
    let start = body.find(&tag)? + tag.len();
    body[start..].split('"').next().map(str::to_string)
}

/// Opens the socket with no cookie, offering `KEY` in the handshake's
/// subprotocols as the page does; a client for it, or how it closed.
async fn with_key(server: &TestServer, key: &str) -> Result<Client, String> {
    let protocols = format!("tandem.v1, tandem.key.{key}");
    let mut ws = common::open_socket_at(server.addr, "/ws", None, Some(&protocols)).await;
    // The server greets a participant with `hello`; it closes an unknown one.
    match tokio::time::timeout(WAIT, ws.next()).await {
        Ok(Some(Ok(Message::Close(frame)))) => {
            Err(format!("closed {}", frame.map_or(0, |f| u16::from(f.code))))
        }
        Ok(Some(Ok(Message::Text(text)))) if text.contains("\"hello\"") => {
            Ok(Client::from_socket(ws))
        }
        other => Err(format!("{other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mturk_keys_previews_and_stolen_links() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(STUDY, &dir.path().join("hit.db")).await;
    let db = server.db().await;

    // A preview shows the study and makes nobody.
    let (status, cookie, body) = get(
        &server,
        "/?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=H1",
    )
    .await;
    assert_eq!(status, 200);
    assert!(cookie.is_none());
    assert!(body.contains("This is a preview"), "{body}");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM participants").await, 0);

    // The worker accepts: their page carries a key, and the key alone (no
    // cookie, as in MTurk's cross-site frame) opens their socket.
    let (status, _, body) = get(&server, LINK).await;
    assert_eq!(status, 200);
    let key = meta(&body, "tandem-key").expect("an MTurk page carries its key");
    assert_eq!(key.len(), 32, "{key}");
    let mut worker = with_key(&server, &key)
        .await
        .expect("the key opens the socket");
    let scene = worker.expect_scene().await;
    assert_eq!(scene["scene"]["id"], "hello");
    worker.advance(0, false).await;
    let end = worker.expect_scene().await;
    assert_eq!(end["scene"]["kind"], "end");
    assert_eq!(
        end["scene"]["mturk_submit"],
        serde_json::json!({
            "action": "https://workersandbox.mturk.com/mturk/externalSubmit",
            "assignment_id": "A1"
        })
    );

    // The same link again, without cookie or key (a reload in a frame that
    // kept no cookie, or someone who found the link): a page without a key,
    // and nobody new.
    let (status, cookie, body) = get(&server, LINK).await;
    assert_eq!(status, 200);
    assert!(cookie.is_none(), "no cookie for a link alone");
    assert!(
        meta(&body, "tandem-key").is_none(),
        "a stolen link gets no key"
    );
    assert_eq!(meta(&body, "tandem-needs-key").as_deref(), Some("1"));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM participants").await, 1);
    assert_eq!(
        with_key(&server, &"0".repeat(32)).await.err().as_deref(),
        Some("closed 4001")
    );

    // A turkSubmitTo that is not MTurk's is ignored: no post at the end.
    let (_, _, body) = get(
        &server,
        "/?workerId=W2&assignmentId=A2&hitId=H2&turkSubmitTo=https%3A%2F%2Fevil.example",
    )
    .await;
    let other = meta(&body, "tandem-key").expect("key");
    let mut w2 = with_key(&server, &other).await.expect("opens");
    w2.expect_scene().await;
    w2.advance(0, false).await;
    let end = w2.expect_scene().await;
    assert!(end["scene"].get("mturk_submit").is_none(), "{end}");

    // Keys open only MTurk participants' sockets: a Prolific participant's
    // page has none, and their token is no key.
    let (_, cookie, body) = get(&server, "/?PROLIFIC_PID=P1&STUDY_ID=S&SESSION_ID=X").await;
    assert!(meta(&body, "tandem-key").is_none());
    let token = cookie
        .expect("a cookie")
        .split_once('=')
        .map(|(_, t)| t.to_string())
        .unwrap_or_default();
    assert_eq!(
        with_key(&server, &token).await.err().as_deref(),
        Some("closed 4001")
    );
    server.stop().await;
}

/// Over HTTPS an MTurk participant's cookie is also usable in MTurk's frame:
/// SameSite=None, Secure and Partitioned (CHIPS), so reopening the HIT in a
/// new frame resumes them; anyone else's stays Lax.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mturk_cookie_over_https_is_partitioned() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(STUDY, &dir.path().join("chips.db")).await;
    let client = reqwest::Client::new();
    let set_cookie = |path: &'static str| {
        let client = client.clone();
        let url = server.url(path);
        async move {
            let response = client
                .get(url)
                .header("x-forwarded-proto", "https")
                .send()
                .await
                .expect("answers");
            response
                .headers()
                .get("set-cookie")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        }
    };
    let mturk = set_cookie("/?workerId=W5&assignmentId=A5&hitId=H5").await;
    for attribute in ["SameSite=None", "Secure", "Partitioned", "HttpOnly"] {
        assert!(mturk.contains(attribute), "{mturk}");
    }
    let prolific = set_cookie("/?PROLIFIC_PID=P5&STUDY_ID=S&SESSION_ID=X").await;
    assert!(
        prolific.contains("SameSite=Lax") && !prolific.contains("Partitioned"),
        "{prolific}"
    );
    server.stop().await;
}
