//! The `tandem` binary itself: `check` reports problems with file, line and column,
//! and `serve` on the default experiment records a game and, on SIGTERM, stops
//! with the running episode stored as interrupted and every step flushed.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Client, ServeProcess, count, visit_addr};

fn tandem() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
}

/// `tandem check` accepts every shipped example (models loaded) and exits 0.
#[test]
fn check_accepts_the_examples() {
    let mut files: Vec<_> = std::fs::read_dir("examples")
        .expect("examples folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    for file in files {
        let file = file.display().to_string();
        let file = file.as_str();
        let out = tandem()
            .args(["check", file])
            .output()
            .expect("tandem runs");
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
    }
}

/// A policy that cannot serve its seat (a model for another environment's
/// observations) or cannot load is a `check` error at the seat's line, not a
/// failure mid-game.
#[test]
fn check_loads_models_and_fits_them_to_their_seats() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    std::fs::copy(
        "examples/models/cartpole_mlp.onnx",
        models.join("cartpole_mlp.onnx"),
    )
    .unwrap();
    let example = std::fs::read_to_string("examples/assisted_cartpole.toml").unwrap();
    let wrong_env = dir.path().join("wrong_env.toml");
    std::fs::write(
        &wrong_env,
        example
            .replace("env = \"CartPole-v1\"", "env = \"MountainCar-v0\"")
            .replace("ArrowRight = 1", "ArrowRight = 2"),
    )
    .unwrap();
    let missing = dir.path().join("missing.toml");
    std::fs::write(
        &missing,
        example.replace("cartpole_mlp.onnx", "nothing.onnx"),
    )
    .unwrap();
    for (path, expected) in [
        (
            &wrong_env,
            ": scene[1].seat[0].policy: policy \"balancer\" cannot play agent_0 of MountainCar-v0",
        ),
        (
            &missing,
            ": policy.balancer: policy \"balancer\": cannot load the policy model",
        ),
    ] {
        let out = tandem()
            .arg("check")
            .arg(path)
            .output()
            .expect("tandem runs");
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(expected),
            "expected {expected:?} in:\n{stderr}"
        );
        assert!(stderr.starts_with(&path.display().to_string()), "{stderr}");
    }
}

/// `tandem check` on a bad file exits 2 and names file, line, column and field.
#[test]
fn check_reports_file_line_column_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "id = \"bad\"\ntitle = \"Bad\"\n\n[[scene]]\nkind = \"game\"\nid = \"g\"\ntitle = \"G\"\nenv = \"CartPole-v9\"\nepisodes = 1\ndefault_action = 0\n[scene.keys]\nArrowLeft = 0\n\n[[scene]]\nkind = \"end\"\nid = \"end\"\ntitle = \"End\"\nmarkdown = \"Bye\"\n",
    )
    .unwrap();
    let out = tandem()
        .arg("check")
        .arg(&path)
        .output()
        .expect("tandem runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!("{}:8:7: scene[0].env:", path.display());
    assert!(
        stderr.contains(&expected),
        "expected {expected:?} in:\n{stderr}"
    );
    assert!(
        stderr.contains("CartPole-v1"),
        "suggests the known env:\n{stderr}"
    );
}

/// `tandem serve` runs the built-in default experiment; SIGTERM stops it cleanly
/// with the running episode recorded as interrupted and all its steps stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_default_experiment_and_stop_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("served.db");
    let server = ServeProcess::start(&db, &[]).await;
    let addr = server.addr;

    let cookie = visit_addr(addr, "?PROLIFIC_PID=cli", None).await;
    let mut p = Client::connect_addr(addr, &cookie).await;
    let consent = p.expect_scene().await;
    assert_eq!(consent["scene"]["kind"], "info");
    p.advance(0, true).await;
    p.expect_scene().await;
    p.advance(1, false).await;
    assert_eq!(p.expect_scene().await["scene"]["kind"], "game");
    p.hold(&["ArrowLeft"]).await;
    for _ in 0..10 {
        p.expect("frame").await;
    }
    // Stop early in an episode, so that one is surely running (a pole pushed
    // one way falls in about ten steps).
    loop {
        let step = p.expect("frame").await["step"].as_u64();
        if step.is_some_and(|s| (1..=3).contains(&s)) {
            break;
        }
    }

    let exit = server.signal("TERM").await;
    assert!(exit.success(), "serve exits 0 on SIGTERM: {exit:?}");
    assert_eq!(p.expect("closed").await["code"], 1012);

    tokio::time::sleep(Duration::from_millis(50)).await;
    let pool = sqlx::sqlite::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    // Holding one key topples the pole in a few steps, so several episodes may
    // have completed; the one running at SIGTERM is interrupted.
    let (outcome, reason): (String, Option<String>) =
        sqlx::query_as("SELECT outcome, reason FROM episodes ORDER BY id DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (outcome.as_str(), reason.as_deref()),
        ("interrupted", Some("server_shutdown"))
    );
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM episodes WHERE outcome IS NULL").await,
        0
    );
    let promised = count(&pool, "SELECT SUM(steps) FROM episodes").await;
    assert!(promised >= 8, "{promised} steps recorded");
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM steps").await, promised);
    assert!(count(&pool, "SELECT COUNT(*) FROM steps WHERE keys = 'ArrowLeft'").await > 0);
}

/// A database that cannot be written stops `serve` before it says it is
/// serving, with a message that says why; `verify` still reads it.
#[test]
fn serve_refuses_a_read_only_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("ro.db");
    // A first run creates the file (and is stopped at once).
    let mut first = tandem()
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(&db)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("serve starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !db.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let _ = first.kill();
    let _ = first.wait();
    // Root ignores file permissions, so the read-only case is SQLite's own.
    let read_only = format!("sqlite://{}?mode=ro", db.display());
    let out = tandem()
        .args(["serve", "--addr", "127.0.0.1:0", "--db", &read_only])
        .output()
        .expect("tandem runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("cannot be written") && !stdout.contains("serving"),
        "{stdout}{stderr}"
    );
    let out = tandem()
        .args(["verify", &read_only])
        .output()
        .expect("tandem runs");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("0 episodes"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `tandem admin add-user` stores an argon2id hash of a password read from
/// standard input (never the password), refuses a taken name, a weak
/// password and a bad name, and changes nothing when it refuses.
#[test]
fn admin_add_user_stores_only_a_hash() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("users.db");
    let add = |name: &str, password: &str| {
        let mut child = tandem()
            .args(["admin", "add-user", name, "--db"])
            .arg(&db)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("tandem runs");
        if let Some(mut stdin) = child.stdin.take() {
            let _ = writeln!(stdin, "{password}");
        }
        let out = child.wait_with_output().expect("tandem ends");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let password = "a long enough passphrase";
    let (code, stderr) = add("ada", password);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = add("ada", "another long passphrase");
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("already a console user called \"ada\""),
        "{stderr}"
    );
    let (code, stderr) = add("grace", "admin123");
    assert_eq!(code, Some(2));
    assert!(stderr.contains("at least 12 characters"), "{stderr}");
    let (code, stderr) = add("grace hopper", password);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("a user name is"), "{stderr}");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (hashes, users) = runtime.block_on(async {
        let store = tandem_store::Store::open(db.to_str().expect("UTF-8 path"))
            .await
            .expect("store opens");
        let user = store.console_user("ada").await.expect("read");
        (user, store.count_console_users().await.expect("count"))
    });
    let user = hashes.expect("ada is stored");
    assert_eq!(users, 1, "nothing stored for the refused ones");
    assert!(user.password_hash.starts_with("$argon2id$"));
    assert!(!user.password_hash.contains(password));
    assert!(tandem_server::accounts::verify_password(
        password,
        &user.password_hash
    ));
    let file = std::fs::read(&db).expect("database file");
    assert!(
        !file
            .windows(password.len())
            .any(|w| w == password.as_bytes()),
        "the password is nowhere in the file"
    );
}

/// `tandem serve` takes a folder of experiment files: each is a study at
/// `/s/ID/`, listed with its link at start; SIGTERM stops them all cleanly.
/// A folder with no experiment file, or two files with one id, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_a_folder_of_studies() {
    let dir = tempfile::tempdir().unwrap();
    let studies = dir.path().join("studies");
    std::fs::create_dir(&studies).unwrap();
    for id in ["first", "second"] {
        let text = format!(
            "id = \"{id}\"\ntitle = \"Study {id}\"\n\n[[scene]]\nkind = \"info\"\nid = \"hello\"\n\
             title = \"Hello\"\nmarkdown = \"Hi.\"\n\n[[scene]]\nkind = \"end\"\nid = \"end\"\n\
             title = \"Thanks\"\nmarkdown = \"Done.\"\n"
        );
        std::fs::write(studies.join(format!("{id}.toml")), text).unwrap();
    }
    std::fs::write(studies.join("notes.txt"), "not a study").unwrap();
    let db = dir.path().join("studies.db");
    let server = ServeProcess::start(&db, &[studies.to_str().unwrap()]).await;
    let addr = server.addr;
    let client = reqwest::Client::new();
    for id in ["first", "second"] {
        let page = client
            .get(format!("http://{addr}/s/{id}/?PROLIFIC_PID=folder"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status().as_u16(), 200, "{id}");
    }
    let status = server.signal("TERM").await;
    assert!(status.success(), "{status:?}");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM participants").await, 2);
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM experiments").await, 2);

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = tandem()
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("other.db"))
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("holds no experiment file"), "{stderr}");

    let twin = dir.path().join("twin.toml");
    std::fs::copy(studies.join("first.toml"), &twin).unwrap();
    let out = tandem()
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("other.db"))
        .arg(studies.join("first.toml"))
        .arg(&twin)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("two experiment files have the id \"first\""),
        "{stderr}"
    );
}
