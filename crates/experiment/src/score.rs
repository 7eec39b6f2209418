//! Score scenes: after a game, the participant's result against everyone's so
//! far, then a button on.
//!
//! The score is the sum of the rewards of the steps the participant chose
//! themselves in the named game scene's complete episodes (the rule bonuses
//! use); the server computes it and the distribution when it shows the
//! scene, so the page only draws.

use tandem_wire::{ScoreHistogram, ScoreView};

use crate::error::{Problems, Reported};
use crate::markdown;
use crate::reader::Table;
use crate::scene::Head;

/// Fields of a score scene besides `kind`, `id` and `title`.
pub(crate) const FIELDS: &[&str] = &["game", "markdown", "button"];

/// Bars in the distribution the page draws.
pub const BINS: usize = 10;

#[derive(Clone, Debug, PartialEq)]
pub struct ScoreScene {
    pub id: String,
    pub title: String,
    /// The game scene whose score is shown (an earlier one).
    pub game: String,
    pub html: String,
    pub button: String,
}

impl ScoreScene {
    /// The scene for a participant whose score is `own` (`None`: they played
    /// no complete episode), among everyone's `all` (theirs included).
    pub fn view(&self, own: Option<f64>, all: &[f64]) -> ScoreView {
        let others = all.len();
        let below = own.map(|s| all.iter().filter(|&&o| o < s).count());
        ScoreView {
            id: self.id.clone(),
            title: self.title.clone(),
            html: self.html.clone(),
            button: self.button.clone(),
            score: own,
            players: others as u32,
            better_than: below
                .filter(|_| others > 1)
                .map(|b| b as f64 / (others - 1) as f64),
            histogram: histogram(all),
        }
    }
}

/// `BINS` equal bars from the lowest score to the highest.
fn histogram(all: &[f64]) -> Option<ScoreHistogram> {
    let lo = all.iter().copied().reduce(f64::min)?;
    let hi = all.iter().copied().reduce(f64::max)?;
    let width = if hi > lo {
        (hi - lo) / BINS as f64
    } else {
        1.0
    };
    let mut counts = vec![0u32; BINS];
    for &s in all {
        let bin = (((s - lo) / width) as usize).min(BINS - 1);
        counts[bin] += 1;
    }
    Some(ScoreHistogram { lo, hi, counts })
}

pub(crate) fn read(
    problems: &mut Problems,
    table: &Table,
    head: Result<Head, Reported>,
    earlier_games: &[String],
) -> Result<ScoreScene, Reported> {
    let game = match table.field("game") {
        None => Err(table.missing(problems, "game", ": the id of an earlier game scene")),
        Some(field) => field.text(problems).and_then(|game| {
            if earlier_games.contains(&game) {
                Ok(game)
            } else {
                Err(field.report(
                    problems,
                    format!("{game:?} is not a game scene before this one"),
                ))
            }
        }),
    };
    let markdown = table.opt_str(problems, "markdown");
    let button = table.opt_str(problems, "button");
    let head = head?;
    Ok(ScoreScene {
        id: head.id,
        title: head.title,
        game: game?,
        html: markdown::to_html(&markdown?.unwrap_or_default()),
        button: button?.unwrap_or_else(|| "Continue".to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scene() -> ScoreScene {
        ScoreScene {
            id: "s".into(),
            title: "S".into(),
            game: "g".into(),
            html: String::new(),
            button: "Continue".into(),
        }
    }

    #[test]
    fn place_among_everyone() {
        let view = scene().view(Some(30.0), &[10.0, 20.0, 30.0, 40.0, 50.0]);
        assert_eq!(view.players, 5);
        assert_eq!(view.better_than, Some(0.5));
        let h = view.histogram.unwrap_or_else(|| panic!("a histogram"));
        assert_eq!((h.lo, h.hi), (10.0, 50.0));
        assert_eq!(h.counts.iter().sum::<u32>(), 5);
        assert_eq!(
            h.counts[BINS - 1],
            1,
            "the highest score is in the last bar"
        );
        let alone = scene().view(Some(7.0), &[7.0]);
        assert_eq!((alone.players, alone.better_than), (1, None));
        let none = scene().view(None, &[]);
        assert!(none.histogram.is_none());
    }

    #[test]
    fn the_game_must_come_before() {
        let game = "[[scene]]\nkind = \"game\"\nid = \"pole\"\ntitle = \"P\"\n\
                    env = \"CartPole-v1\"\nepisodes = 1\ndefault_action = 0\n\
                    [scene.keys]\nArrowLeft = 0\n";
        let score = "[[scene]]\nkind = \"score\"\nid = \"how\"\ntitle = \"H\"\ngame = \"pole\"\n";
        let end = "[[scene]]\nkind = \"end\"\nid = \"end\"\ntitle = \"E\"\nmarkdown = \"D.\"\n";
        let head = "id = \"x\"\ntitle = \"X\"\n";
        let after = format!("{head}{game}{score}{end}");
        assert!(crate::parse(&after, "x.toml").is_ok());
        let before = format!("{head}{score}{game}{end}");
        let e = crate::parse(&before, "x.toml").expect_err("the game comes after");
        assert!(
            e.to_string().contains("not a game scene before this one"),
            "{e}"
        );
    }
}
