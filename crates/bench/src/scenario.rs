//! What the bots play: a built-in scenario or a researcher's experiment file.
//!
//! The built-in scenarios are experiment files kept beside this crate
//! (`scenarios/*.toml`) and compiled in, so a run needs no files and every run
//! of a scenario plays the same thing: a consent page, then CartPole-v1 at 30 fps
//! for a day (longer than any run), then the end scene. Either way the file is
//! parsed here with the server's own reader, so a bad file is refused before a
//! server starts, and the run knows the game it should see (its fps, whether it
//! can end before the measurement does).
//!
//! The bots themselves learn everything from the wire; this is only for checks
//! and for the child server's command line.

use std::path::{Path, PathBuf};

use tandem_experiment::{Experiment, Scene};

use crate::options::ScenarioName;

const SPRITES: &str = include_str!("../scenarios/sprites.toml");
const PIXELS: &str = include_str!("../scenarios/pixels.toml");

/// The experiment a run uses.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// `sprites`, `pixels`, or the file's path.
    pub name: String,
    pub source: Source,
    pub experiment_id: String,
    /// The first game scene, if the experiment has one.
    pub game: Option<GameFacts>,
}

/// Where the experiment's text comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// Compiled in: written to the run's temporary folder for the child server.
    Builtin(&'static str),
    File(PathBuf),
}

/// What a run needs to know about the game scene it measures.
#[derive(Clone, Copy, Debug)]
pub struct GameFacts {
    pub fps: u32,
    pub time_limit_s: Option<u32>,
    pub episodes: Option<u32>,
}

impl Scenario {
    pub fn builtin(name: ScenarioName) -> Scenario {
        let text = match name {
            ScenarioName::Sprites => SPRITES,
            ScenarioName::Pixels => PIXELS,
        };
        // The built-in files are tested to parse (see the tests below), so a
        // failure here is a broken build, not a user's mistake.
        let experiment = tandem_experiment::parse(text, &format!("{}.toml", name.name()))
            .unwrap_or_else(|e| panic!("built-in scenario {} does not parse: {e}", name.name()));
        Scenario {
            name: name.name().to_string(),
            source: Source::Builtin(text),
            experiment_id: experiment.id.clone(),
            game: first_game(&experiment),
        }
    }

    pub fn from_file(path: &Path) -> Result<Scenario, String> {
        let experiment = tandem_experiment::load(path).map_err(|e| e.to_string())?;
        let game = first_game(&experiment);
        if game.is_none() {
            return Err("the experiment has no game scene to measure".to_string());
        }
        Ok(Scenario {
            name: path.display().to_string(),
            source: Source::File(path.to_path_buf()),
            experiment_id: experiment.id.clone(),
            game,
        })
    }

    /// Why this game may stop before the measurement does, if it may.
    pub fn early_end(&self, run_seconds: f64) -> Option<String> {
        let game = self.game?;
        if let Some(limit) = game.time_limit_s
            && f64::from(limit) < run_seconds
        {
            return Some(format!(
                "the game's time_limit_s ({limit} s) is shorter than ramp-up + duration \
                 ({run_seconds:.0} s): late sessions will have left the game"
            ));
        }
        game.episodes.map(|n| {
            format!(
                "the game ends after {n} episode(s): bots that finish early leave the game \
                 and stop receiving frames"
            )
        })
    }
}

fn first_game(experiment: &Experiment) -> Option<GameFacts> {
    experiment.scenes.iter().find_map(|scene| match scene {
        Scene::Game(g) => Some(GameFacts {
            fps: g.fps,
            time_limit_s: g.time_limit_s,
            episodes: g.episodes,
        }),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both built-in scenarios parse, play CartPole at 30 fps with the intended
    /// rendering, and last longer than any run.
    #[test]
    fn builtins_parse() {
        for (name, render) in [
            (ScenarioName::Sprites, "sprites"),
            (ScenarioName::Pixels, "pixels"),
        ] {
            let s = Scenario::builtin(name);
            let game = s.game.expect("a game scene");
            assert_eq!(game.fps, 30);
            assert_eq!(game.episodes, None);
            assert!(s.early_end(3600.0).is_none());
            let Source::Builtin(text) = s.source else {
                panic!("built in")
            };
            assert!(text.contains(&format!("render = \"{render}\"")));
        }
    }

    /// The diagnostic MountainCar file shipped beside the built-ins is valid.
    #[test]
    fn mountaincar_file_loads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/mountaincar.toml");
        let s = Scenario::from_file(Path::new(path)).expect("loads");
        assert_eq!(s.game.map(|g| g.fps), Some(30));
    }
}
