//! What the bots play: a built-in scenario or a researcher's experiment file.
//!
//! The built-in scenarios are experiment files kept beside this crate
//! (`scenarios/*.toml`) and compiled in, so a run needs no files and every run
//! of a scenario plays the same thing: a consent page, then a game for a day
//! (longer than any run), then the end scene. The game is CartPole-v1 at 30 fps
//! for one player (`sprites`, `pixels`), or Kitchen-v0 at 15 fps for two players
//! paired by the lobby (`pairs`). Either way the file is
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
const PAIRS: &str = include_str!("../scenarios/pairs.toml");
const SLOW: &str = include_str!("../scenarios/slow.toml");

/// The experiment a run uses.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// `sprites`, `pixels`, `pairs`, or the file's path.
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
    /// Participants the lobby puts in one game (1: no lobby).
    pub humans: u32,
    /// Seconds a lobby waits for a full group before filling seats with AI.
    pub human_timeout_s: Option<u32>,
}

impl Scenario {
    pub fn builtin(name: ScenarioName) -> Scenario {
        let text = match name {
            ScenarioName::Sprites => SPRITES,
            ScenarioName::Pixels => PIXELS,
            ScenarioName::Pairs => PAIRS,
            ScenarioName::Slow => SLOW,
        };
        // The built-in files are tested to parse (see the tests below), so a
        // failure here is a broken build, not a user's mistake.
        let envs = crate::diagnostic::catalog_with_diagnostics();
        let experiment =
            tandem_experiment::parse_with(text, &format!("{}.toml", name.name()), &envs)
                .unwrap_or_else(|e| {
                    panic!("built-in scenario {} does not parse: {e}", name.name())
                });
        Scenario {
            name: name.name().to_string(),
            source: Source::Builtin(text),
            experiment_id: experiment.id.clone(),
            game: first_game(&experiment),
        }
    }

    pub fn from_file(path: &Path) -> Result<Scenario, String> {
        let mut envs = crate::diagnostic::catalog_with_diagnostics();
        // Python environments are made once here, by a worker of the default
        // interpreter, to read the file; the server starts its own.
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let hosted = tandem_experiment::hosted_envs(&text);
        if !hosted.is_empty() {
            let config = tandem_workers::WorkerConfig::install(&tandem_workers::default_cache())
                .map_err(|e| format!("could not write the worker's Python package: {e}"))?;
            let pool = tandem_workers::Pool::new(config, 0);
            tandem_workers::host(&mut envs, &pool, &hosted);
        }
        let experiment = tandem_experiment::load_with(path, &envs).map_err(|e| e.to_string())?;
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

    /// Why some bots may wait in the lobby for the whole run, if they may: a
    /// group needs more bots than the run has, or an incomplete group waits
    /// longer than the run lasts.
    pub fn lobby_warning(&self, sessions: usize, run_seconds: f64) -> Option<String> {
        let game = self.game?;
        let humans = game.humans as usize;
        if humans <= 1 || sessions.is_multiple_of(humans) {
            return None;
        }
        let left_over = sessions % humans;
        match game.human_timeout_s {
            Some(timeout) if f64::from(timeout) < run_seconds => None,
            Some(timeout) => Some(format!(
                "{left_over} of {sessions} sessions make no full group of {humans} and the \
                 lobby fills their game only after {timeout} s, longer than ramp-up + duration \
                 ({run_seconds:.0} s): they may wait in the lobby the whole run"
            )),
            None => Some(format!(
                "{left_over} of {sessions} sessions make no full group of {humans} and the \
                 lobby has no human_timeout_s: they wait in the lobby the whole run"
            )),
        }
    }
}

fn first_game(experiment: &Experiment) -> Option<GameFacts> {
    experiment.scenes.iter().find_map(|scene| match scene {
        Scene::Game(g) => Some(GameFacts {
            fps: g.fps,
            time_limit_s: g.time_limit_s,
            episodes: g.episodes,
            humans: g.humans,
            human_timeout_s: g.human_timeout_s,
        }),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both CartPole scenarios parse, play at 30 fps with the intended
    /// rendering, for one player, and last longer than any run.
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
            assert_eq!(game.humans, 1);
            assert!(s.lobby_warning(3, 10.0).is_none());
            assert!(s.early_end(3600.0).is_none());
            let Source::Builtin(text) = s.source else {
                panic!("built in")
            };
            assert!(text.contains(&format!("render = \"{render}\"")));
        }
    }

    /// The pairs scenario puts two players in a game that lasts longer than any
    /// run, and fills a lone player's game within a run of ordinary length.
    #[test]
    fn pairs_parses() {
        let s = Scenario::builtin(ScenarioName::Pairs);
        let game = s.game.expect("a game scene");
        assert_eq!((game.fps, game.humans), (15, 2));
        assert_eq!(game.human_timeout_s, Some(20));
        assert!(s.early_end(3600.0).is_none());
        assert!(s.lobby_warning(4, 10.0).is_none());
        assert!(s.lobby_warning(5, 30.0).is_none());
        let warning = s.lobby_warning(5, 10.0).expect("an odd bot may wait");
        assert!(warning.contains("1 of 5"), "{warning}");
    }

    /// The diagnostic MountainCar file shipped beside the built-ins is valid.
    #[test]
    fn mountaincar_file_loads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/mountaincar.toml");
        let s = Scenario::from_file(Path::new(path)).expect("loads");
        assert_eq!(s.game.map(|g| g.fps), Some(30));
    }
}
