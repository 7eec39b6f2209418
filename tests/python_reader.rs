//! The Python reader (`tandem.recording`, in the project's `.venv`) on a real
//! recording: a participant plays two episodes of MountainCar and
//! answers a survey against the real binary; Python opens the file and gives
//! back every episode's arrays and the answers as a DataFrame, which must
//! agree with what the Rust store reads from the same file.

mod common;

use std::process::Command;

use common::{Client, ServeProcess, visit_addr};
use serde_json::{Value, json};

const STUDY: &str = r#"
id = "reader"
title = "Reader"

[[scene]]
kind = "game"
id = "drive"
title = "Drive"
env = "MountainCar-v0"
fps = 60
episodes = 2
max_steps = 25
default_action = 1
[scene.keys]
ArrowLeft = 0
ArrowRight = 2

[[scene]]
kind = "survey"
id = "after"
title = "After"

[[scene.question]]
id = "difficulty"
kind = "likert"
prompt = "How difficult was it?"

[[scene.question]]
id = "tried"
kind = "multiple"
prompt = "What did you try?"
options = ["Left", "Right"]

[[scene]]
kind = "end"
id = "end"
title = "Done"
markdown = "Thanks."
"#;

/// What Python reads, as JSON.
const READ: &str = r#"
import json, sys
import numpy as np
from tandem.recording import Recording

with Recording(sys.argv[1]) as rec:
    out = {"episodes": []}
    for info in rec.episodes(outcome="complete", scene="drive"):
        e = rec.episode(info["id"])
        (a,) = e.agents.values()
        assert a.observations.shape[0] == len(a.actions) + 1
        out["episodes"].append({
            "id": e.id, "seed": str(e.seed), "obs_shape": list(a.observations.shape),
            "first_obs": a.observations[0].tolist(), "last_obs": a.observations[-1].tolist(),
            "actions": a.actions.tolist(), "rewards": float(a.rewards.sum()),
            "truncated_last": bool(a.truncations[-1]), "sources": sorted(set(a.sources)),
            "actors": sorted(set(a.actors)), "feedback_nan": bool(np.isnan(a.feedback).all()),
        })
    answers = rec.responses()
    out["answers"] = answers[["participant", "scene_id", "question_id", "answer"]].to_dict("records")
    print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_reads_back_episodes_and_answers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, db) = ServeProcess::with_study(dir.path(), STUDY, "reader.db").await;
    let cookie = visit_addr(server.addr, "?PROLIFIC_PID=reader", None).await;
    let mut p = Client::connect_addr(server.addr, &cookie).await;
    assert_eq!(p.expect_scene().await["scene"]["id"], "drive");
    p.hold(&["ArrowRight"]).await;
    let survey = p.expect_scene().await;
    assert_eq!(survey["scene"]["id"], "after");
    let index = survey["index"].as_u64().expect("scene index") as usize;
    p.submit(index, json!({"difficulty": 2, "tried": ["Left"]}))
        .await;
    assert_eq!(p.expect_scene().await["scene"]["id"], "end");
    assert!(server.signal("TERM").await.success());

    let out = Command::new(".venv/bin/python")
        .args(["-c", READ])
        .arg(&db)
        .env("PYTHONPATH", "python")
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).expect("JSON from Python");
    eprintln!("Python read: {read}");

    let store = tandem_store::Store::open(db.to_str().expect("UTF-8 path"))
        .await
        .expect("store opens");
    let episodes = read["episodes"].as_array().expect("episodes");
    assert_eq!(episodes.len(), 2, "{read}");
    for episode in episodes {
        let id = episode["id"].as_i64().expect("id");
        let stored = store.episode(id).await.expect("read").expect("episode");
        let steps = store.steps_for_episode(id).await.expect("steps");
        let agents = store.episode_agents(id).await.expect("agents");
        assert_eq!(episode["seed"], stored.seed.to_string());
        assert_eq!(episode["obs_shape"], json!([steps.len() + 1, 2]));
        let floats = |o: &tandem_env::Observation| match o {
            tandem_env::Observation::F32 { data, .. } => json!(data),
            other => panic!("{other:?}"),
        };
        assert_eq!(episode["first_obs"], floats(&agents[0].reset_obs));
        assert_eq!(episode["last_obs"], floats(&steps[steps.len() - 1].obs));
        let actions: Vec<Value> = steps
            .iter()
            .map(|s| serde_json::to_value(&s.action).expect("action"))
            .collect();
        assert_eq!(episode["actions"], json!(actions));
        assert_eq!(
            episode["rewards"],
            json!(stored.total_return.expect("return"))
        );
        assert_eq!(episode["truncated_last"], true, "the step cap truncates");
        assert_eq!(episode["sources"], json!(["keys"]));
        assert_eq!(episode["feedback_nan"], true);
    }
    let answers = read["answers"].as_array().expect("answers");
    assert_eq!(answers.len(), 2, "{read}");
    assert!(answers.iter().all(|a| a["scene_id"] == "after"));
    let answer = |q: &str| {
        answers
            .iter()
            .find(|a| a["question_id"] == q)
            .map(|a| a["answer"].clone())
    };
    assert_eq!(answer("difficulty"), Some(json!(2)));
    assert_eq!(answer("tried"), Some(json!(["Left"])));
}
