//! The replay viewer: any recorded episode, step by step, with what each
//! agent did, who chose it and why, its reward, feedback and input timing.
//!
//! The page fetches one JSON document ([`data`]) and plays it with the
//! participant page's renderer, so a replay looks as the game did. Frames are
//! not recorded (observations are), so they are rebuilt here: pixel
//! observations (`[height, width, 3]` or `[height, width]` bytes, as Atari's)
//! are decoded straight from the record, exactly what the agent saw; anything
//! else is re-simulated from the episode's seed and recorded actions in a
//! fresh environment from the catalog, rendered after every step, as
//! `tandem verify` does. Re-simulating runs user code (a Python worker), so it
//! runs off the async runtime, and an episode longer than
//! [`MAX_REPLAY_FRAMES`] shows its first steps' frames only.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use tandem_env::{Action, Env, Frame, Image, Observation};
use tandem_experiment::{GameScene, RenderMode, Scene};
use tandem_store::{ConsoleSession, Episode, Outcome, StoredEpisodeAgent, StoredStep};
use tandem_wire::{PixelHeader, encode_pixel_frame};
use tracing::{error, warn};

use super::watch::scene_json;
use super::{escape, page, page_with};
use crate::frames::encode_png;
use crate::studies::Studies;

/// Frames rebuilt for one replay at most (about ten minutes at 30 fps).
pub const MAX_REPLAY_FRAMES: usize = 18_000;

pub(super) async fn show(
    State(studies): State<Studies>,
    Path(episode_id): Path<i64>,
    Extension(_session): Extension<ConsoleSession>,
) -> Response {
    match studies.store().episode(episode_id).await {
        Ok(Some(episode)) => {
            let body = format!(
                "<p><a href=\"/console\">Dashboard</a> · game {game}, episode {idx} \
                 (<code>{env}</code>) · <span id=\"replay-status\">loading…</span></p>\
                 <div id=\"replay\" data-episode=\"{episode_id}\">\
                 <div id=\"stage\" class=\"stage\"></div>\
                 <div class=\"replay-controls\">\
                 <button type=\"button\" id=\"play\">Play</button>\
                 <input type=\"range\" id=\"scrub\" min=\"0\" max=\"0\" value=\"0\" \
                 aria-label=\"Step\">\
                 <output id=\"step-label\">step 0</output>\
                 <label>Speed <select id=\"speed\"><option value=\"0.25\">¼×</option>\
                 <option value=\"0.5\">½×</option><option value=\"1\" selected>1×</option>\
                 <option value=\"2\">2×</option><option value=\"4\">4×</option></select></label>\
                 </div><table id=\"step-detail\"></table></div>",
                game = episode.game_id,
                idx = episode.idx,
                env = escape(&episode.env_id),
            );
            page_with(
                StatusCode::OK,
                &format!("Episode {episode_id}"),
                &body,
                Some("console-replay.js"),
            )
        }
        Ok(None) => page(
            StatusCode::NOT_FOUND,
            "No such episode",
            "<p>Not recorded here.</p>",
        ),
        Err(e) => {
            error!(cause = %e, "could not read an episode to replay");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Replay unavailable",
                "<p>The database could not be read.</p>",
            )
        }
    }
}

/// The episode as one JSON document: its facts, its agents, every step, and
/// the frames to draw (`frames[0]` after reset, `frames[t]` after step `t`).
pub(super) async fn data(State(studies): State<Studies>, Path(episode_id): Path<i64>) -> Response {
    match replay(&studies, episode_id).await {
        Ok(Some(document)) => axum::Json(document).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, "no such episode").into_response(),
        Err(e) => {
            error!(cause = %e, episode = episode_id, "could not build a replay");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the database could not be read",
            )
                .into_response()
        }
    }
}

async fn replay(
    studies: &Studies,
    episode_id: i64,
) -> Result<Option<Value>, tandem_store::StoreError> {
    let store = studies.store();
    let Some(episode) = store.episode(episode_id).await? else {
        return Ok(None);
    };
    let game = store.game(episode.game_id).await?;
    let agents = store.episode_agents(episode_id).await?;
    // At most what the viewer shows: a long episode is replayed in part.
    let last_t = u32::try_from(MAX_REPLAY_FRAMES - 1).unwrap_or(u32::MAX);
    let steps = store.steps_for_episode_until(episode_id, last_t).await?;
    // The study that recorded it, and its scene as this server knows it, if
    // they are still here.
    let study = game
        .as_ref()
        .and_then(|g| studies.get(&g.experiment_id))
        .unwrap_or(studies.first());
    let scene =
        game.as_ref().and_then(
            |g| match study.experiment.scenes.get(g.scene_index as usize) {
                Some(Scene::Game(s))
                    if s.id == g.scene_id && g.experiment_id == study.experiment.id =>
                {
                    Some(s.clone())
                }
                _ => None,
            },
        );
    let step_rows: Vec<Value> = steps.chunk_by(|a, b| a.t == b.t).map(step_json).collect();
    let envs = study.games.envs.clone();
    let frames_for = {
        let episode = episode.clone();
        let agents = agents.clone();
        let scene = scene.clone();
        move || rebuild_frames(&envs, scene.as_ref(), &episode, &agents, &steps)
    };
    let (source, frames, note) = match tokio::task::spawn_blocking(frames_for).await {
        Ok(rebuilt) => rebuilt,
        Err(e) => {
            warn!(cause = %e, episode = episode_id, "rebuilding a replay's frames panicked");
            (
                "none",
                Vec::new(),
                Some("the environment failed while replaying".to_string()),
            )
        }
    };
    let render = if source == "sprites" {
        "sprites"
    } else {
        "pixels"
    };
    let mut scene_view = scene.as_ref().map_or_else(
        || json!({"title": episode.env_id, "canvas": {}}),
        scene_json,
    );
    scene_view["render"] = json!(render);
    Ok(Some(json!({
        "episode": {
            "id": episode.id, "game": episode.game_id, "idx": episode.idx,
            "seed": episode.seed.to_string(), "env": episode.env_id,
            "started_us": episode.started_us, "ended_us": episode.ended_us,
            "steps": episode.steps, "return": episode.total_return,
            "outcome": match &episode.outcome {
                None => "running".to_string(),
                Some(Outcome::Complete) => "complete".to_string(),
                Some(Outcome::Interrupted { reason }) => format!("interrupted: {reason}"),
            },
        },
        "scene": scene_view,
        "agents": agents.iter().map(|a| json!({"agent": a.agent, "name": a.agent_name,
            "actor": a.actor, "return": a.episode_return})).collect::<Vec<_>>(),
        "steps": step_rows,
        "frame_source": source,
        "frames_note": note,
        "frames": frames,
    })))
}

fn step_json(rows: &[StoredStep]) -> Value {
    let first = &rows[0];
    json!({
        "t": first.t,
        "server_us": first.server_us,
        "agents": rows.iter().map(|r| json!({
            "agent": r.agent,
            "action": r.action,
            "actor": r.actor,
            "source": r.source,
            "keys": r.keys,
            "reward": r.reward,
            "feedback": r.feedback,
            "terminated": r.terminated,
            "truncated": r.truncated,
            "input_seq": r.input_seq,
            "client_frame": r.client_frame,
            "client_ts": r.client_ts,
        })).collect::<Vec<_>>(),
    })
}

/// The frames of a replay, what they were made from (`"observations"`,
/// `"sprites"`, `"pixels"` or `"none"`), and a note when something is missing.
fn rebuild_frames(
    envs: &tandem_envs::Catalog,
    scene: Option<&GameScene>,
    episode: &Episode,
    agents: &[StoredEpisodeAgent],
    steps: &[StoredStep],
) -> (&'static str, Vec<Value>, Option<String>) {
    let rows: Vec<&[StoredStep]> = steps.chunk_by(|a, b| a.t == b.t).collect();
    let cut = (rows.len() + 1 > MAX_REPLAY_FRAMES)
        .then(|| format!("frames are shown for the first {MAX_REPLAY_FRAMES} steps only"));
    // Pixel observations: the record itself.
    if let Some(first) = agents.first()
        && as_image(&first.reset_obs).is_some()
    {
        let frames = std::iter::once(&first.reset_obs)
            .chain(rows.iter().filter_map(|r| r.first().map(|s| &s.obs)))
            .take(MAX_REPLAY_FRAMES)
            .enumerate()
            .map(|(t, obs)| as_image(obs).map_or(Value::Null, |image| pixel_frame(&image, t)))
            .collect();
        return ("observations", frames, cut);
    }
    let Some(scene) = scene else {
        return (
            "none",
            Vec::new(),
            Some("this server's experiment no longer has the episode's scene".to_string()),
        );
    };
    let mut env = match envs.make(&scene.env) {
        Ok(env) => env,
        Err(e) => {
            return (
                "none",
                Vec::new(),
                Some(format!("no environment to replay in: {e}")),
            );
        }
    };
    let pixels = scene.render == RenderMode::Pixels;
    let (width, height) = scene.canvas();
    let draw = |env: &dyn Env, t: usize| match env.render() {
        Frame::Sprites(sprites) if pixels => pixel_frame(
            &tandem_envs::rasterize(&sprites, width, height, [255, 255, 255]),
            t,
        ),
        Frame::Sprites(sprites) => json!({"sprites": sprites}),
        Frame::Pixels(image) => pixel_frame(&image, t),
    };
    if let Err(e) = env.reset(episode.seed) {
        return (
            "none",
            Vec::new(),
            Some(format!("the environment's reset failed: {e}")),
        );
    }
    let mut frames = vec![draw(env.as_ref(), 0)];
    let mut note = cut;
    for (index, rows) in rows.iter().enumerate().take(MAX_REPLAY_FRAMES - 1) {
        let actions: Vec<Action> = rows.iter().map(|r| r.action.clone()).collect();
        if let Err(e) = env.step(&actions) {
            note = Some(format!("the environment refused step {}: {e}", index + 1));
            break;
        }
        frames.push(draw(env.as_ref(), index + 1));
    }
    let source = if pixels || matches!(frames.first(), Some(f) if f.get("pixels").is_some()) {
        "pixels"
    } else {
        "sprites"
    };
    (source, frames, note)
}

/// An observation that is an image: `[height, width, 3]` RGB or
/// `[height, width]` / `[height, width, 1]` grey bytes.
fn as_image(obs: &Observation) -> Option<Image> {
    let Observation::U8 { shape, data } = obs else {
        return None;
    };
    let (height, width, channels) = match shape.as_slice() {
        [h, w, 3] => (*h, *w, 3),
        [h, w] | [h, w, 1] => (*h, *w, 1),
        _ => return None,
    };
    if height < 8 || width < 8 || data.len() != height * width * channels {
        return None;
    }
    let rgb = if channels == 3 {
        data.clone()
    } else {
        data.iter().flat_map(|&g| [g, g, g]).collect()
    };
    Some(Image {
        width: u32::try_from(width).ok()?,
        height: u32::try_from(height).ok()?,
        rgb,
    })
}

/// A pixel frame in the participant socket's binary form, base64-encoded, so
/// the page's renderer takes it as it takes a live one.
fn pixel_frame(image: &Image, t: usize) -> Value {
    let header = PixelHeader {
        tick: t as u64,
        episode: 0,
        step: u32::try_from(t).unwrap_or(u32::MAX),
        ack: None,
        width: image.width,
        height: image.height,
        reward: 0.0,
        episode_return: 0.0,
        base: None,
    };
    match encode_png(image)
        .ok()
        .and_then(|png| encode_pixel_frame(&header, &png).ok())
    {
        Some(bytes) => json!({"pixels": BASE64.encode(bytes)}),
        None => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixels(shade: u8) -> Observation {
        Observation::U8 {
            shape: vec![12, 16, 3],
            data: vec![shade; 12 * 16 * 3],
        }
    }

    fn step(t: u32, obs: Observation) -> StoredStep {
        StoredStep {
            episode_id: 1,
            t,
            agent: 0,
            action: Action::Discrete(1),
            actor: "participant:1".into(),
            source: "keys".into(),
            keys: Some("[\"ArrowLeft\"]".into()),
            reward: 0.0,
            terminated: false,
            truncated: false,
            obs,
            input_seq: None,
            client_frame: None,
            client_ts: None,
            server_us: 0,
            feedback: None,
        }
    }

    /// Pixel observations replay from the record itself, one decoded frame per
    /// step after the reset frame, with no environment needed.
    #[test]
    fn pixel_observations_are_decoded_from_the_record() {
        let episode = Episode {
            id: 1,
            game_id: 1,
            idx: 0,
            seed: 7,
            env_id: "ALE/Breakout-v5".into(),
            env_version: 5,
            started_us: 0,
            ended_us: None,
            steps: Some(2),
            outcome: None,
            total_return: None,
        };
        let agents = [StoredEpisodeAgent {
            agent: 0,
            agent_name: "player".into(),
            actor: "participant:1".into(),
            reset_obs: pixels(0),
            episode_return: None,
        }];
        let steps = [step(1, pixels(100)), step(2, pixels(200))];
        let envs = tandem_envs::Catalog::empty();
        let (source, frames, note) = rebuild_frames(&envs, None, &episode, &agents, &steps);
        assert_eq!(source, "observations");
        assert_eq!(note, None);
        assert_eq!(frames.len(), 3);
        let decoded: Vec<Vec<u8>> = frames
            .iter()
            .map(|f| {
                let b64 = f["pixels"].as_str().unwrap_or_default();
                BASE64.decode(b64).unwrap_or_default()
            })
            .collect();
        for bytes in &decoded {
            let frame = tandem_wire::decode_pixel_frame(bytes);
            assert!(frame.is_ok(), "a pixel frame the page's parser takes");
        }
        assert_ne!(decoded[1], decoded[2], "each step its own picture");
    }

    /// Anything but an image is not mistaken for one.
    #[test]
    fn only_images_are_images() {
        assert!(as_image(&pixels(1)).is_some());
        let grey = Observation::U8 {
            shape: vec![84, 84],
            data: vec![3; 84 * 84],
        };
        assert_eq!(as_image(&grey).map(|i| i.rgb.len()), Some(84 * 84 * 3));
        assert!(as_image(&Observation::vector(vec![0.0; 4])).is_none());
        let short = Observation::U8 {
            shape: vec![12, 16, 3],
            data: vec![0; 10],
        };
        assert!(as_image(&short).is_none());
    }
}
