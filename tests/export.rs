//! `tandem export` on a real recording: a participant plays CartPole (a
//! policy acting while they give feedback) and MountainCar, and answers a
//! survey, against the real binary. The Minari datasets it writes open with
//! real `minari.load_dataset` and hold what the store holds; every Parquet
//! table reads with pandas, polars and DuckDB; the filters filter.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Client, ServeProcess, visit_addr};
use serde_json::{Value, json};

const STUDY: &str = r#"
id = "export"
title = "Export"

[[scene]]
kind = "game"
id = "balance"
title = "Balance"
env = "CartPole-v1"
fps = 60
episodes = 2
max_steps = 30
seed = 11

[[scene.seat]]
human = true
input = "feedback"
policy = "scripted"
[scene.seat.feedback]
ArrowUp = 1

[[scene]]
kind = "game"
id = "drive"
title = "Drive"
env = "MountainCar-v0"
fps = 60
episodes = 1
max_steps = 20
default_action = 1
[scene.keys]
ArrowLeft = 0
ArrowRight = 2

[[scene]]
kind = "survey"
id = "after"
title = "After"

[[scene.question]]
id = "fun"
kind = "likert"
prompt = "Was it fun?"

[[scene]]
kind = "end"
id = "end"
title = "Done"
markdown = "Thanks."
"#;

/// What Python finds in the exports, as JSON.
const CHECK: &str = r#"
import json, os, sys
import numpy as np
import duckdb, minari, pandas as pd, polars as pl
from tandem.recording import Recording

db, datasets, tables = sys.argv[1], sys.argv[2], sys.argv[3]
os.environ["MINARI_DATASETS_PATH"] = datasets
out = {"datasets": {}, "tables": {}}
with Recording(db) as rec:
    for name in sorted(minari.list_local_datasets()):
        d = minari.load_dataset(name)
        episodes = []
        for ep in d.iterate_episodes():
            eid = int(ep.infos["tandem_episode_id"][0])
            stored = next(iter(rec.episode(eid).agents.values()))
            episodes.append({
                "steps": len(ep.actions),
                "obs_rows": len(ep.observations),
                "same_observations": bool(np.array_equal(ep.observations, stored.observations)),
                "same_actions": bool(np.array_equal(ep.actions, stored.actions.reshape(ep.actions.shape))),
                "same_rewards": bool(np.array_equal(ep.rewards, stored.rewards)),
                "ends": bool(ep.terminations[-1] or ep.truncations[-1]),
                "actors": sorted({a.decode() for a in ep.infos["actor"][1:]}),
                "sources": sorted({s.decode() for s in ep.infos["source"][1:]}),
                "feedback": [float(f) for f in ep.infos["feedback"] if not np.isnan(f)],
            })
        out["datasets"][name] = {"episodes": episodes, "total_steps": int(d.total_steps),
                                 "spaces": [str(d.observation_space), str(d.action_space)]}
for file in sorted(os.listdir(tables)):
    path = os.path.join(tables, file)
    pandas_rows = len(pd.read_parquet(path))
    polars_rows = pl.read_parquet(path).height
    duck_rows = duckdb.sql(f"SELECT COUNT(*) FROM read_parquet('{path}')").fetchall()[0][0]
    assert pandas_rows == polars_rows == duck_rows, (file, pandas_rows, polars_rows, duck_rows)
    out["tables"][file] = pandas_rows
steps = pd.read_parquet(os.path.join(tables, "steps.parquet"))
out["step_columns"] = sorted(steps.columns)
out["step_scenes"] = sorted(set(steps["scene_id"]))
out["participants_with_steps"] = int(steps["participant"].notna().sum())
participants = pd.read_parquet(os.path.join(tables, "participants.parquet"))
out["participant_plans"] = [json.loads(p) for p in participants["scene_plan"]]
print(json.dumps(out))
"#;

fn tandem_export(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("export")
        .args(args)
        .output()
        .expect("tandem export runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check(db: &Path, datasets: &Path, tables: &Path) -> Value {
    let out = Command::new(".venv/bin/python")
        .args(["-c", CHECK])
        .args([db, datasets, tables])
        .env("PYTHONPATH", "python")
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from Python")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_load_in_minari_pandas_polars_and_duckdb() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, db) = ServeProcess::with_study(dir.path(), STUDY, "export.db").await;
    // Someone who plays a little and leaves: not in a --completed export.
    let quitter = visit_addr(server.addr, "?PROLIFIC_PID=quitter", None).await;
    let mut q = Client::connect_addr(server.addr, &quitter).await;
    assert_eq!(q.expect_scene().await["scene"]["id"], "balance");
    for _ in 0..5 {
        q.expect("frame").await;
    }
    drop(q);
    let cookie = visit_addr(server.addr, "?PROLIFIC_PID=exporter", None).await;
    let mut p = Client::connect_addr(server.addr, &cookie).await;
    assert_eq!(p.expect_scene().await["scene"]["id"], "balance");
    for _ in 0..5 {
        p.expect("frame").await;
    }
    p.hold(&["ArrowUp"]).await;
    p.hold(&[]).await;
    assert_eq!(p.expect_scene().await["scene"]["id"], "drive");
    p.hold(&["ArrowRight"]).await;
    let survey = p.expect_scene().await;
    let index = survey["index"].as_u64().expect("scene index") as usize;
    p.submit(index, json!({"fun": 6})).await;
    assert_eq!(p.expect_scene().await["scene"]["id"], "end");
    assert!(server.signal("TERM").await.success());

    let datasets = dir.path().join("minari");
    let tables = dir.path().join("parquet");
    let db_arg = db.to_str().expect("UTF-8 path");
    let (code, stdout, stderr) = tandem_export(&[
        "--format",
        "minari",
        db_arg,
        datasets.to_str().expect("UTF-8 path"),
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("tandem/export-balance-agent_0-v0")
            && stdout.contains("tandem/export-drive-agent_0-v0"),
        "{stdout}"
    );
    let (code, stdout, stderr) = tandem_export(&[
        "--format",
        "parquet",
        "--completed",
        db_arg,
        tables.to_str().expect("UTF-8 path"),
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");

    let found = check(&db, &datasets, &tables);
    eprintln!("{found:#}");
    let balance = &found["datasets"]["tandem/export-balance-agent_0-v0"];
    let episodes = balance["episodes"].as_array().expect("episodes");
    assert_eq!(episodes.len(), 2);
    for e in episodes {
        assert_eq!(e["steps"], 30);
        assert_eq!(e["obs_rows"], 31, "observations N + 1");
        for same in ["same_observations", "same_actions", "same_rewards", "ends"] {
            assert_eq!(e[same], true, "{same}: {e}");
        }
        assert_eq!(e["actors"], json!(["policy:scripted"]));
        assert_eq!(e["sources"], json!(["policy"]));
    }
    let feedback: Vec<&Value> = episodes
        .iter()
        .flat_map(|e| e["feedback"].as_array().expect("feedback").iter())
        .collect();
    assert_eq!(feedback, vec![&json!(1.0)], "the one press, once");
    let drive = &found["datasets"]["tandem/export-drive-agent_0-v0"]["episodes"];
    assert_eq!(drive[0]["steps"], 20);
    assert_eq!(drive[0]["sources"], json!(["keys"]));
    assert_eq!(drive[0]["same_observations"], true);

    let tables_found = &found["tables"];
    assert_eq!(tables_found["steps.parquet"], 80, "2 × 30 + 20 steps");
    assert_eq!(tables_found["episodes.parquet"], 3);
    assert_eq!(tables_found["responses.parquet"], 1);
    assert_eq!(tables_found["participants.parquet"], 1);
    let plans = found["participant_plans"]
        .as_array()
        .expect("plans exported");
    assert_eq!(plans.len(), 1);
    assert!(
        plans[0].as_array().is_some_and(|p| p.len() >= 2),
        "the scene ids they were shown: {plans:?}"
    );
    assert!(
        tables_found["inputs.parquet"].as_u64() >= Some(2),
        "the held keys and the feedback press are inputs"
    );
    assert!(tables_found["clock_samples.parquet"].as_u64() >= Some(1));
    for column in [
        "participant",
        "scene_id",
        "actor",
        "source",
        "server_us",
        "client_ts",
    ] {
        assert!(
            found["step_columns"]
                .as_array()
                .is_some_and(|c| c.contains(&json!(column))),
            "steps has no {column}"
        );
    }
    assert!(
        !found["step_columns"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("token"))),
        "the secret token is never exported"
    );
    assert_eq!(found["participants_with_steps"], 80);

    // Filters: one scene; a time range with nothing in it.
    let only_drive = dir.path().join("minari-drive");
    let (code, stdout, _) = tandem_export(&[
        "--format",
        "minari",
        "--scene",
        "drive",
        db_arg,
        only_drive.to_str().expect("UTF-8 path"),
    ]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains("export-drive") && !stdout.contains("export-balance"),
        "{stdout}"
    );
    let future = dir.path().join("parquet-future");
    let (code, _, _) = tandem_export(&[
        "--format",
        "parquet",
        "--since",
        "2100-01-01T00:00:00",
        db_arg,
        future.to_str().expect("UTF-8 path"),
    ]);
    assert_eq!(code, Some(0));
    let found = check(&db, &only_drive, &future);
    assert_eq!(found["tables"]["steps.parquet"], 0);
    assert_eq!(
        found["datasets"]
            .as_object()
            .map(|d| d.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["tandem/export-drive-agent_0-v0".to_string()])
    );

    // Without --completed, the participant who left is there too.
    let everyone = dir.path().join("parquet-everyone");
    let (code, _, _) = tandem_export(&[
        "--format",
        "parquet",
        db_arg,
        everyone.to_str().expect("UTF-8 path"),
    ]);
    assert_eq!(code, Some(0));
    let found = check(&db, &only_drive, &everyone);
    assert_eq!(found["tables"]["participants.parquet"], 2);
    assert!(found["tables"]["steps.parquet"].as_u64() > Some(80));

    let (code, _, stderr) = tandem_export(&["--format", "parquet", "nothing.db", "out"]);
    assert_eq!(code, Some(2), "{stderr}");
}
