//! Conditions and blocks through a real server and database: assignment
//! stays balanced over 200 arrivals with a restart in the middle, a
//! Latin-square block rotates within each condition, and participants walk
//! exactly the plan recorded for them, across a restart, with a condition's
//! version of a scene.

mod common;

use std::collections::HashMap;

use common::{Client, TestServer, visit};
use sqlx::Row;

/// Three conditions, one with its own title for the first page, one that
/// skips the last block scene's partner page; a Latin-square block of three.
const BALANCED: &str = r#"
id = "balanced"
title = "Balanced"

[[scene]]
kind = "info"
id = "hello"
title = "Hello"
markdown = "x"

[[scene]]
kind = "info"
id = "one"
title = "One"
markdown = "x"

[[scene]]
kind = "info"
id = "two"
title = "Two"
markdown = "x"

[[scene]]
kind = "info"
id = "three"
title = "Three"
markdown = "x"

[[scene]]
kind = "end"
id = "end"
title = "Thanks"
markdown = "x"

[[block]]
id = "tasks"
scenes = ["one", "two", "three"]
order = "latin_square"

[[condition]]
id = "red"
[condition.override.hello]
title = "Hello, red"

[[condition]]
id = "green"

[[condition]]
id = "blue"
"#;

async fn arrivals(server: &TestServer, n: usize) {
    for chunk in 0..n / 10 {
        let visits = (0..10).map(|i| {
            let query = format!("?PROLIFIC_PID=p{}x{chunk}x{i}", server.addr.port());
            async move { visit(server, &query, None).await }
        });
        futures::future::join_all(visits).await;
    }
}

/// A server without the per-address arrival limit: every arrival here comes
/// from 127.0.0.1.
async fn unlimited(db_path: &std::path::Path) -> TestServer {
    let options = tandem_server::Options {
        admission: tandem_server::AdmissionLimits {
            per_address_per_minute: 0,
            max_participants: None,
        },
        ..tandem_server::Options::default()
    };
    TestServer::start_with_options(BALANCED, db_path, options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignment_stays_balanced_over_200_arrivals_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("t.db");
    let mut server = unlimited(&db_path).await;
    arrivals(&server, 100).await;
    server.stop().await;
    let mut server = unlimited(&db_path).await;
    arrivals(&server, 100).await;
    let db = server.db().await;

    let rows =
        sqlx::query("SELECT condition, scene_plan, scene_index FROM participants ORDER BY id")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(rows.len(), 200);
    let mut per_condition: HashMap<String, u64> = HashMap::new();
    // (condition, scene, position in the block) → participants.
    let mut positions: HashMap<(String, String, usize), u64> = HashMap::new();
    for row in &rows {
        let condition: String = row.get("condition");
        let plan: Vec<String> = serde_json::from_str(row.get::<&str, _>("scene_plan")).unwrap();
        // The file's scenes come first (0–4); red's own first page after them.
        let (hello, first) = if condition == "red" {
            ("hello-red", 5)
        } else {
            ("hello", 0)
        };
        assert_eq!(
            row.get::<i64, _>("scene_index"),
            first,
            "at their plan's first scene"
        );
        assert_eq!(plan[0], hello, "{condition}: {plan:?}");
        assert_eq!(plan[4], "end");
        let mut block = plan[1..4].to_vec();
        for (position, scene) in block.iter().enumerate() {
            *positions
                .entry((condition.clone(), scene.clone(), position))
                .or_default() += 1;
        }
        block.sort();
        assert_eq!(block, ["one", "three", "two"]);
        *per_condition.entry(condition).or_default() += 1;
    }
    let (lo, hi) = (
        per_condition.values().min().unwrap(),
        per_condition.values().max().unwrap(),
    );
    println!("participants per condition: {per_condition:?}");
    assert_eq!(per_condition.len(), 3, "{per_condition:?}");
    assert!(
        hi - lo <= 1,
        "assigned counts within one: {per_condition:?}"
    );
    // About 67 per condition over 6 Latin-square rows: each scene at each
    // position 22 times, give or take the last partial round.
    for condition in ["red", "green", "blue"] {
        let counts: Vec<u64> = ["one", "two", "three"]
            .iter()
            .flat_map(|s| (0..3).map(move |p| (s, p)))
            .map(|(s, p)| positions[&(condition.to_string(), s.to_string(), p)])
            .collect();
        let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(hi - lo <= 2, "{condition}: positions {counts:?}");
    }
    server.stop().await;
}

/// Conditions that choose their scenes, and a random block shown twice.
const WALK: &str = r#"
id = "walk"
title = "Walk"

[[scene]]
kind = "info"
id = "hello"
title = "Hello"
markdown = "x"

[[scene]]
kind = "info"
id = "a"
title = "A"
markdown = "x"

[[scene]]
kind = "info"
id = "b"
title = "B"
markdown = "x"

[[scene]]
kind = "info"
id = "extra"
title = "Extra"
markdown = "x"

[[scene]]
kind = "end"
id = "end"
title = "Thanks"
markdown = "x"

[[block]]
id = "ab"
scenes = ["a", "b"]
repeat = 2

[[condition]]
id = "short"
scenes = ["hello", "a", "b", "end"]
[condition.override.a]
title = "A (short)"

[[condition]]
id = "long"
scenes = ["hello", "a", "b", "extra", "end"]
"#;

/// Follows the scenes shown until the end, advancing each info page; stops
/// after `limit` pages. Returns (index, step, count, title) of each.
async fn walk(client: &mut Client, limit: usize) -> Vec<(usize, usize, usize, String)> {
    let mut seen = Vec::new();
    loop {
        let message = client.expect_scene().await;
        let index = message["index"].as_u64().unwrap() as usize;
        let step = message["step"].as_u64().unwrap() as usize;
        let count = message["count"].as_u64().unwrap() as usize;
        let scene = &message["scene"];
        seen.push((
            index,
            step,
            count,
            scene["title"].as_str().unwrap_or("").to_string(),
        ));
        if scene["kind"] == "end" || seen.len() == limit {
            return seen;
        }
        client.advance(index, true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_walk_their_recorded_plan_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("t.db");
    let mut server = TestServer::start_at(WALK, &db_path).await;
    let mut clients = Vec::new();
    let mut walked: Vec<Vec<(usize, usize, usize, String)>> = Vec::new();
    for _ in 0..4 {
        let mut client = Client::arrive(&server, "").await;
        walked.push(walk(&mut client, 3).await);
        clients.push(client.cookie.clone());
    }
    server.stop().await;
    let mut server = TestServer::start_at(WALK, &db_path).await;
    for (cookie, seen) in clients.iter().zip(&mut walked) {
        let mut client = Client::connect(&server, cookie).await;
        // The page they left is shown again, then the rest of their plan.
        let rest = walk(&mut client, 20).await;
        assert_eq!(rest[0], *seen.last().unwrap(), "resumed where they were");
        seen.extend(rest.into_iter().skip(1));
    }
    let db = server.db().await;
    let rows = sqlx::query("SELECT id, condition, scene_plan FROM participants ORDER BY id")
        .fetch_all(&db)
        .await
        .unwrap();
    let mut conditions = Vec::new();
    for (row, seen) in rows.iter().zip(&walked) {
        let id: i64 = row.get("id");
        let condition: String = row.get("condition");
        let plan: Vec<String> = serde_json::from_str(row.get::<&str, _>("scene_plan")).unwrap();
        let entered: Vec<String> = sqlx::query_scalar(
            "SELECT scene_id FROM scene_events WHERE participant_id = ? AND event = 'entered'
             ORDER BY id",
        )
        .bind(id)
        .fetch_all(&db)
        .await
        .unwrap();
        assert_eq!(
            entered, plan,
            "participant {id} entered their plan's scenes in order"
        );
        let steps: Vec<usize> = seen.iter().map(|s| s.1).collect();
        assert_eq!(steps, (0..plan.len()).collect::<Vec<_>>(), "{seen:?}");
        assert!(seen.iter().all(|s| s.2 == plan.len()), "{seen:?}");
        let expected_len = if condition == "short" { 6 } else { 7 };
        assert_eq!(plan.len(), expected_len, "{condition}: {plan:?}");
        let mut block: Vec<&str> = plan[1..5].iter().map(String::as_str).collect();
        block.sort();
        if condition == "short" {
            assert_eq!(block, ["a-short", "a-short-r2", "b", "b-r2"]);
            assert!(seen.iter().any(|s| s.3 == "A (short)"), "{seen:?}");
        } else {
            assert_eq!(block, ["a", "a-r2", "b", "b-r2"]);
            assert_eq!(plan[5], "extra");
        }
        let finished: Option<i64> =
            sqlx::query_scalar("SELECT finished_us FROM participants WHERE id = ?")
                .bind(id)
                .fetch_one(&db)
                .await
                .unwrap();
        assert!(finished.is_some(), "participant {id} finished");
        conditions.push(condition);
    }
    conditions.sort();
    assert_eq!(conditions, ["long", "long", "short", "short"]);
    server.stop().await;
}
