//! The store outside the hot path: opening and migrating, participants, scene
//! moves, answers, games and events, each on its own fresh database file.

mod common;

use common::{EXPERIMENT, db_path, game, raw, temp_store};
use serde_json::json;
use sqlx::Row;
use tandem_store::{
    Durability, ExternalKey, NewParticipant, Participant, RecruitIds, Store, StoreError,
};

fn new_participant(n: u32) -> NewParticipant {
    NewParticipant {
        token: format!("secret-token-{n}"),
        public_id: format!("P{n}"),
        experiment_id: EXPERIMENT.into(),
        recruit: RecruitIds::default(),
        user_agent: Some("test-agent/1.0".into()),
    }
}

async fn participant(store: &Store, n: u32) -> Participant {
    store
        .create_participant(&new_participant(n))
        .await
        .expect("create participant")
}

/// Migrations build every table on a fresh file; re-opening the file applies
/// nothing twice and keeps the data; the durability pragmas are in force.
#[tokio::test]
async fn migrations_run_on_fresh_file_and_reopen_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested.db");
    let path = path.to_str().unwrap();
    let store = Store::open(path).await.unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&mut raw(std::path::Path::new(path)).await)
            .await
            .unwrap();
    for table in [
        "episode_agents",
        "episodes",
        "events",
        "experiment_configs",
        "experiments",
        "game_seats",
        "games",
        "participants",
        "responses",
        "scene_events",
        "steps",
        "matches",
        "lobby_waits",
        "id_blocks",
    ] {
        assert!(
            tables.iter().any(|t| t == table),
            "{table} missing: {tables:?}"
        );
    }
    store.upsert_experiment("e", "E", "text").await.unwrap();
    store.close().await;

    let store = Store::open(&format!("sqlite://{path}")).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&mut raw(std::path::Path::new(path)).await)
        .await
        .unwrap();
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count() as i64;
    assert_eq!(applied, migrations);
    assert!(store.experiment("e").await.unwrap().is_some());

    assert_eq!(
        store.durability().await.unwrap(),
        Durability {
            write_ahead_log: true,
            synced_commits: true,
            foreign_keys: true,
        },
        "WAL, FULL, foreign keys"
    );
}

/// A PostgreSQL URL is refused with a clear message rather than misread as a path.
#[tokio::test]
async fn postgres_url_is_unsupported() {
    let err = Store::open("postgres://localhost/tandem")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Unsupported(m) if m.contains("PostgreSQL")),
        "{err}"
    );
}

/// Experiments upsert: the text is updated in place and every distinct text is
/// kept in the history.
#[tokio::test]
async fn experiment_upsert_keeps_config_history() {
    let (dir, store) = temp_store().await;
    store.upsert_experiment("e", "One", "v1").await.unwrap();
    store.upsert_experiment("e", "One", "v1").await.unwrap();
    store.upsert_experiment("e", "Two", "v2").await.unwrap();
    let e = store.experiment("e").await.unwrap().unwrap();
    assert_eq!((e.title.as_str(), e.config.as_str()), ("Two", "v2"));
    let history: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM experiment_configs WHERE experiment_id = 'e'")
            .fetch_one(&mut raw(&db_path(&dir)).await)
            .await
            .unwrap();
    assert_eq!(history, 2);
}

/// Participants are found again by cookie token and by Prolific or MTurk id, a
/// second participant with the same Prolific id is refused as a duplicate, and
/// the token never shows in Debug output.
#[tokio::test]
async fn participant_create_and_lookup() {
    let (_dir, store) = temp_store().await;
    let mut new = new_participant(1);
    new.recruit.prolific_pid = Some("PROLIFIC123".into());
    new.recruit.study_id = Some("STUDY".into());
    let created = store.create_participant(&new).await.unwrap();
    assert_eq!(created.scene_index, 0);
    assert_eq!(created.scene_entered_us, None);
    assert_eq!(created.recruit.study_id.as_deref(), Some("STUDY"));

    let by_token = store.participant_by_token("secret-token-1").await.unwrap();
    assert_eq!(by_token.as_ref(), Some(&created));
    assert_eq!(store.participant_by_token("nope").await.unwrap(), None);
    let by_pid = store
        .participant_by_external(EXPERIMENT, ExternalKey::Prolific("PROLIFIC123"))
        .await
        .unwrap();
    assert_eq!(by_pid.as_ref(), Some(&created));
    let other_experiment = store
        .participant_by_external("other", ExternalKey::Prolific("PROLIFIC123"))
        .await
        .unwrap();
    assert_eq!(other_experiment, None);

    let mut mturk = new_participant(2);
    mturk.recruit.worker_id = Some("W1".into());
    let mturk = store.create_participant(&mturk).await.unwrap();
    let found = store
        .participant_by_external(EXPERIMENT, ExternalKey::MTurk("W1"))
        .await
        .unwrap();
    assert_eq!(found.map(|p| p.id), Some(mturk.id));

    let mut again = new_participant(3);
    again.recruit.prolific_pid = Some("PROLIFIC123".into());
    let err = store.create_participant(&again).await.unwrap_err();
    assert!(matches!(err, StoreError::Duplicate(_)), "{err}");

    let debug = format!("{created:?} {new:?}");
    assert!(!debug.contains("secret-token"), "{debug}");
}

/// Scene moves are a compare-and-set: a second advance from the same scene (a
/// second socket, a double click) does nothing and records nothing.
#[tokio::test]
async fn enter_scene_guards_double_advances() {
    let (_dir, store) = temp_store().await;
    let p = participant(&store, 1).await;

    assert!(store.enter_scene(p.id, None, (0, "consent")).await.unwrap());
    assert!(!store.enter_scene(p.id, None, (0, "consent")).await.unwrap());
    assert!(
        store
            .enter_scene(p.id, Some((0, "consent")), (1, "play"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .enter_scene(p.id, Some((0, "consent")), (1, "play"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .enter_scene(p.id, Some((5, "x")), (6, "y"))
            .await
            .unwrap()
    );

    let now = store.participant_by_id(p.id).await.unwrap().unwrap();
    assert_eq!(now.scene_index, 1);
    assert!(now.scene_entered_us.is_some());
    let path: Vec<(u32, String, String)> = store
        .scene_events_for(p.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.scene_index, e.scene_id, e.event))
        .collect();
    assert_eq!(
        path,
        [
            (0, "consent".into(), "entered".into()),
            (0, "consent".into(), "left".into()),
            (1, "play".into(), "entered".into()),
        ]
    );
}

/// Submitting a survey stores its answers and advances once; a second submission
/// of the same scene stores nothing.
#[tokio::test]
async fn submit_scene_stores_answers_once() {
    let (_dir, store) = temp_store().await;
    let p = participant(&store, 1).await;
    store.enter_scene(p.id, None, (0, "survey")).await.unwrap();
    let answers = vec![
        ("age".to_string(), json!(31)),
        ("likes".to_string(), json!(["a", "b"])),
    ];
    assert!(
        store
            .submit_scene(p.id, (0, "survey"), &answers, (1, "end"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .submit_scene(p.id, (0, "survey"), &answers, (1, "end"))
            .await
            .unwrap()
    );
    let stored = store.responses_for(p.id).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1].answer, json!(["a", "b"]));

    store
        .save_responses(p.id, 1, "end", &[("comment".into(), json!("fine"))])
        .await
        .unwrap();
    assert_eq!(store.responses_for(p.id).await.unwrap().len(), 3);

    assert!(store.finish_participant(p.id, Some("C0DE")).await.unwrap());
    assert!(!store.finish_participant(p.id, Some("OTHER")).await.unwrap());
    let done = store.participant_by_id(p.id).await.unwrap().unwrap();
    assert_eq!(done.completion_code.as_deref(), Some("C0DE"));
    assert!(done.finished_us.is_some());
}

/// A participant's open game is found by seat and scene, and no longer once ended.
#[tokio::test]
async fn open_game_is_found_until_it_ends() {
    let (_dir, store) = temp_store().await;
    let p = participant(&store, 1).await;
    let _ai_only = game(&store, 1).await;
    let seats = [
        tandem_store::Seat {
            agent: 0,
            agent_name: "left".into(),
            participant_id: Some(p.id),
            policy: Some("random".into()),
        },
        tandem_store::Seat {
            agent: 1,
            agent_name: "right".into(),
            participant_id: None,
            policy: Some("scripted".into()),
        },
    ];
    let id = store
        .create_game(&common::new_game(), &seats)
        .await
        .unwrap();

    let open = store.open_game_for(p.id, 1).await.unwrap().unwrap();
    assert_eq!(open.id, id);
    assert_eq!(open.seats, seats);
    assert_eq!(open.config, json!({"episodes": 3}));
    assert_eq!(store.open_game_for(p.id, 2).await.unwrap(), None);
    assert_eq!(store.next_episode_index(id).await.unwrap(), 0);
    assert_eq!(store.episodes_completed(id).await.unwrap(), 0);

    assert!(store.end_game(id, "episodes done").await.unwrap());
    assert!(!store.end_game(id, "again").await.unwrap());
    assert_eq!(store.open_game_for(p.id, 1).await.unwrap(), None);
    let ended = store.game(id).await.unwrap().unwrap();
    assert_eq!(ended.end_reason.as_deref(), Some("episodes done"));
}

/// Events written directly are read back by participant and by game.
#[tokio::test]
async fn events_are_recorded_directly() {
    let (dir, store) = temp_store().await;
    let p = participant(&store, 1).await;
    let g = game(&store, 1).await;
    store
        .record_event(Some(p.id), Some(g), "disconnect", json!({"code": 1006}))
        .await
        .unwrap();
    store
        .record_event(None, None, "server_start", json!({}))
        .await
        .unwrap();
    let by_p = store.events_for_participant(p.id).await.unwrap();
    assert_eq!(by_p.len(), 1);
    assert_eq!(by_p[0].detail["code"], 1006);
    assert_eq!(store.events_for_game(g).await.unwrap(), by_p);
    let all: i64 = sqlx::query("SELECT COUNT(*) AS n FROM events")
        .fetch_one(&mut raw(&db_path(&dir)).await)
        .await
        .unwrap()
        .get("n");
    assert_eq!(all, 2);
}
