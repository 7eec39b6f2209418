//! What a game shows: each tick's frame, published once for every viewer,
//! and the `game` status message.
//!
//! A frame goes into the game's `watch` channel, so each socket reads the
//! newest one and a slow browser skips frames instead of queueing them (each
//! socket diffs and encodes for itself: see `frames`). For pixel frames the
//! delta from the frame before is encoded here, once per tick, since every
//! viewer that holds that frame gets the same bytes; a sprite environment
//! shown as pixels is rasterized first.

use std::sync::Arc;

use tandem_env::{Frame, Image};
use tandem_experiment::{GameScene, RenderMode};
use tandem_store::now_us;
use tandem_wire::{GameState, GameStatus, ServerMessage};
use tracing::warn;

use crate::frames::{FrameContent, FrameSender, PixelContent, PublishedFrame};
use crate::pixel_delta::PixelDeltaEncoder;

/// Publishes a game's frames.
pub(super) struct Publisher {
    frames: FrameSender,
    /// Frames published so far: the `tick` every frame carries.
    tick: u64,
    render: RenderMode,
    canvas: (u32, u32),
    game_id: i64,
    /// The last pixel frame published, which the next one's delta is from.
    previous_image: Option<Arc<Image>>,
    deltas: PixelDeltaEncoder,
}

/// Where a frame is in the game, and each agent's figures at it.
pub(super) struct FrameFacts<'a> {
    pub(super) episode: u32,
    pub(super) step: u32,
    pub(super) acks: &'a [Option<u64>],
    pub(super) rewards: &'a [f64],
    pub(super) returns: &'a [f64],
}

impl Publisher {
    pub(super) fn new(frames: FrameSender, scene: &GameScene, game_id: i64) -> Self {
        Publisher {
            frames,
            tick: 0,
            render: scene.render,
            canvas: scene.canvas(),
            game_id,
            previous_image: None,
            deltas: PixelDeltaEncoder::default(),
        }
    }

    /// Frames published so far.
    pub(super) fn tick(&self) -> u64 {
        self.tick
    }

    /// Publishes `frame` to every viewer.
    pub(super) fn publish(&mut self, frame: Frame, facts: FrameFacts<'_>) {
        self.tick += 1;
        let content = match (frame, self.render) {
            (Frame::Sprites(sprites), RenderMode::Sprites) => FrameContent::Sprites(sprites),
            (Frame::Sprites(sprites), RenderMode::Pixels) => {
                let (width, height) = self.canvas;
                let image = tandem_envs::rasterize(&sprites, width, height, [255, 255, 255]);
                FrameContent::Pixels(self.pixels(image))
            }
            (Frame::Pixels(image), _) => FrameContent::Pixels(self.pixels(image)),
        };
        self.frames.send_replace(Some(Arc::new(PublishedFrame {
            tick: self.tick,
            episode: facts.episode,
            step: facts.step,
            acks: facts.acks.to_vec(),
            rewards: facts.rewards.to_vec(),
            returns: facts.returns.to_vec(),
            content,
        })));
    }

    /// A pixel frame, with its delta from the one published before.
    fn pixels(&mut self, image: Image) -> PixelContent {
        let image = Arc::new(image);
        let delta = self
            .previous_image
            .as_ref()
            .and_then(|previous| self.deltas.encode(previous, &image));
        if delta.is_none() && self.previous_image.is_some() {
            warn!(
                game = self.game_id,
                "a pixel frame changed size; sending it whole"
            );
        }
        self.previous_image = Some(Arc::clone(&image));
        PixelContent::new(image, delta)
    }

    /// Takes the last frame down: whoever plays next must not be shown an
    /// interrupted episode's last frame as if it were the new one.
    pub(super) fn clear(&self) {
        self.frames.send_replace(None);
    }
}

/// Where a game stands, for its `game` status message.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Progress {
    /// The index of the episode playing or next.
    pub(super) episode: u32,
    pub(super) done: u32,
    pub(super) last_return: Option<f64>,
}

/// The `game` status message for the heads-up display.
pub(super) fn status(
    status: GameState,
    progress: Progress,
    scene: &GameScene,
    deadline_us: Option<i64>,
) -> ServerMessage {
    ServerMessage::Game(GameStatus {
        status,
        episode: progress.episode,
        episodes_done: progress.done,
        episodes_total: scene.episodes,
        time_left_s: deadline_us.map(|d| ((d - now_us()).max(0) as f64) / 1e6),
        last_return: progress.last_return,
    })
}
