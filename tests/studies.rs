//! Several studies on one server, through real HTTP and real sockets: each has
//! its own link and cookie, a participant of one cannot act in another, the
//! console lists them all and controls each on its own, and two files with
//! one id are refused.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

fn study(id: &str, title: &str) -> tandem_server::Study {
    let text = format!(
        r#"
id = "{id}"
title = "{title}"

[[scene]]
kind = "info"
id = "welcome-{id}"
title = "Welcome to {title}"
markdown = "Hello."

[[scene]]
kind = "end"
id = "end"
title = "Thanks"
markdown = "Done."
"#
    );
    tandem_server::Study {
        experiment: tandem_experiment::parse_with(
            &text,
            "test.toml",
            &tandem_envs::Catalog::builtin(),
        )
        .expect("the study parses"),
        policies: tandem_policy::Registry::builtin(),
    }
}

struct Served {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn serve(studies: Vec<tandem_server::Study>, db: &std::path::Path) -> Served {
    let store = tandem_store::Store::open(db.to_str().unwrap())
        .await
        .unwrap();
    let hash = tandem_server::accounts::hash_password("a long enough passphrase").unwrap();
    let _ = store.add_console_user("ada", &hash).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(tandem_server::run_studies(
        listener,
        studies,
        store,
        tandem_server::Options::default(),
        async {
            let _ = stopped.await;
        },
    ));
    Served {
        addr,
        stop: Some(stop),
        handle,
    }
}

impl Served {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("stops")
            .expect("no panic")
            .expect("exits cleanly");
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `GET path`: status, the participant cookie's `name=value` and its Path.
async fn arrive(addr: SocketAddr, path: &str) -> (u16, Option<(String, String)>) {
    let response = client()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .expect("answers");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tandem_participant"))
        .map(|v| {
            let pair = v.split(';').next().unwrap_or_default().to_string();
            let path = v
                .split(';')
                .map(str::trim)
                .find_map(|a| a.strip_prefix("Path="))
                .unwrap_or_default()
                .to_string();
            (pair, path)
        });
    (response.status().as_u16(), cookie)
}

/// The first message a socket at `path` with `cookie` gets, or how it closed.
async fn first_message(addr: SocketAddr, path: &str, cookie: &str) -> String {
    let mut ws = common::open_socket_at(addr, path, Some(cookie), None).await;
    loop {
        match tokio::time::timeout(common::WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) if text.contains("\"scene\"") => {
                return text.to_string();
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                return format!("closed {}", frame.map_or(0, |f| u16::from(f.code)));
            }
            Ok(Some(Ok(_))) => {}
            other => return format!("ended: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_study_has_its_own_link_cookie_and_controls() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(
        vec![study("alpha", "Alpha"), study("beta", "Beta")],
        &dir.path().join("two.db"),
    )
    .await;
    let addr = served.addr;

    let (status, cookie) = arrive(addr, "/s/alpha/?PROLIFIC_PID=p1").await;
    assert_eq!(status, 200);
    let (alpha, path) = cookie.expect("a cookie for alpha");
    assert_eq!(path, "/s/alpha/", "scoped to its study");
    assert!(
        alpha.starts_with("tandem_participant_alpha="),
        "its own name: {alpha}"
    );
    let (status, cookie) = arrive(addr, "/s/beta/?PROLIFIC_PID=p1").await;
    assert_eq!(status, 200);
    let (beta, path) = cookie.expect("a cookie for beta");
    assert_eq!(path, "/s/beta/");
    assert_ne!(alpha, beta, "one participant per study");
    // No study at the root when there are several; a link without its slash
    // is sent to the folder, query kept.
    let (status, _) = arrive(addr, "/").await;
    assert_eq!(status, 404);
    let response = client()
        .get(format!("http://{addr}/s/beta?PROLIFIC_PID=p2"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 308);
    assert_eq!(response.headers()["location"], "/s/beta/?PROLIFIC_PID=p2");

    // Each socket is its study's; a cookie of one opens nothing in the other.
    let scene = first_message(addr, "/s/alpha/ws", &alpha).await;
    assert!(scene.contains("welcome-alpha"), "{scene}");
    let scene = first_message(addr, "/s/beta/ws", &beta).await;
    assert!(scene.contains("welcome-beta"), "{scene}");
    let refused = first_message(addr, "/s/beta/ws", &alpha).await;
    assert_eq!(refused, "closed 4001");
    // A cookie left at `/` by a one-study run does not stand in for the
    // study's own.
    let both = format!("tandem_participant=stale; {alpha}");
    let scene = first_message(addr, "/s/alpha/ws", &both).await;
    assert!(scene.contains("welcome-alpha"), "{scene}");

    // The console lists both and controls each on its own.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = http
        .post(format!("http://{addr}/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=ada&password=a+long+enough+passphrase")
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 303);
    let console = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = |query: &'static str| {
        let http = http.clone();
        let console = console.clone();
        async move {
            http.get(format!("http://{addr}/console{query}"))
                .header("cookie", console)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let home = page("?study=beta").await;
    assert!(home.contains("href=\"/console?study=alpha\""), "{home}");
    assert!(
        home.contains("href=\"/console?study=beta\" aria-current=\"page\""),
        "{home}"
    );
    assert!(home.contains("<code>/s/beta/</code>"), "{home}");
    let csrf = home
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let paused = http
        .post(format!("http://{addr}/console/admissions"))
        .header("cookie", &console)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&study=beta&paused=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(paused.status().as_u16(), 303);
    assert_eq!(paused.headers()["location"], "/console?study=beta");
    let (status, _) = arrive(addr, "/s/beta/?PROLIFIC_PID=p3").await;
    assert_eq!(status, 503, "beta is paused");
    let (status, _) = arrive(addr, "/s/alpha/?PROLIFIC_PID=p3").await;
    assert_eq!(status, 200, "alpha is not");
    let missing = page("?study=gamma").await;
    assert!(missing.contains("No such study"), "{missing}");

    // /metrics counts participants per study.
    let metrics = http
        .get(format!("http://{addr}/console/metrics"))
        .header("cookie", &console)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tandem_participants{study=\"alpha\",scene=\"welcome-alpha\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tandem_participants{study=\"beta\",scene=\"welcome-beta\"} 1"),
        "{metrics}"
    );
    served.stop().await;
}

#[tokio::test]
async fn two_files_with_one_id_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(
        vec![study("same", "One"), study("same", "Two")],
        &dir.path().join("dup.db"),
    )
    .await;
    let result = tokio::time::timeout(Duration::from_secs(10), served.handle)
        .await
        .expect("returns at once")
        .expect("no panic");
    let error = result.expect_err("refused").to_string();
    assert!(
        error.contains("two experiment files have the id \"same\""),
        "{error}"
    );
}

/// An open dashboard does not hold the server's shutdown: its live feed ends
/// when the server stops, and the server exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_dashboard_does_not_hold_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(vec![study("solo", "Solo")], &dir.path().join("solo.db")).await;
    let addr = served.addr;
    let http = client();
    let login = http
        .post(format!("http://{addr}/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=ada&password=a+long+enough+passphrase")
        .send()
        .await
        .unwrap();
    let console = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let mut feed = http
        .get(format!("http://{addr}/console/live"))
        .header("cookie", &console)
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status().as_u16(), 200);
    let first = tokio::time::timeout(common::WAIT, feed.chunk())
        .await
        .expect("an event within the wait")
        .unwrap()
        .unwrap_or_default();
    assert!(String::from_utf8_lossy(&first).contains("event: overview"));
    // Still reading the feed, stop the server: it must exit (Served::stop
    // fails after 30 s), and the feed must end.
    let reader = tokio::spawn(async move { while let Ok(Some(_)) = feed.chunk().await {} });
    served.stop().await;
    tokio::time::timeout(common::WAIT, reader)
        .await
        .expect("the feed ended")
        .unwrap();
}

/// Studies of one lockout group take each person once: a Prolific or MTurk
/// id that started one is refused by the others with a clear page, also
/// after a restart; a study outside the group takes them; and someone who
/// finished a study and comes back with a new submission is told so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lockout_group_takes_each_person_once() {
    let grouped = |id: &str| {
        let mut s = study(id, id);
        s.experiment.lockout_group = Some("series".into());
        s
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("series.db");
    let served = serve(
        vec![grouped("one"), grouped("two"), study("other", "Other")],
        &db,
    )
    .await;
    let addr = served.addr;
    let (status, _) = arrive(addr, "/s/one/?PROLIFIC_PID=P9&STUDY_ID=S1&SESSION_ID=X1").await;
    assert_eq!(status, 200);
    let (status, _) = arrive(addr, "/s/one/?workerId=W9&assignmentId=A&hitId=H").await;
    assert_eq!(status, 200);
    for link in [
        "/s/two/?PROLIFIC_PID=P9&STUDY_ID=S2&SESSION_ID=X2",
        "/s/two/?workerId=W9&assignmentId=B&hitId=H2",
    ] {
        let response = client()
            .get(format!("http://{addr}{link}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 403, "{link}");
        let body = response.text().await.unwrap();
        assert!(
            body.contains("already taken part in a related study"),
            "{body}"
        );
    }
    let (status, _) = arrive(addr, "/s/other/?PROLIFIC_PID=P9&STUDY_ID=S3&SESSION_ID=X3").await;
    assert_eq!(status, 200, "outside the group");
    served.stop().await;

    // After a restart, still refused.
    let served = serve(
        vec![grouped("one"), grouped("two"), study("other", "Other")],
        &db,
    )
    .await;
    let (status, _) = arrive(
        served.addr,
        "/s/two/?PROLIFIC_PID=P9&STUDY_ID=S2&SESSION_ID=X2",
    )
    .await;
    assert_eq!(status, 403);
    // Someone who finished, back with another submission of the same study.
    let store = tandem_store::Store::open(db.to_str().unwrap())
        .await
        .unwrap();
    let p = store
        .participant_by_external("one", tandem_store::ExternalKey::Prolific("P9"))
        .await
        .unwrap()
        .expect("P9 is in study one");
    store.finish_participant(p.id, None).await.unwrap();
    let response = client()
        .get(format!(
            "http://{}/s/one/?PROLIFIC_PID=P9&STUDY_ID=S1&SESSION_ID=OTHER",
            served.addr
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("You have already taken part")
    );
    served.stop().await;
}
