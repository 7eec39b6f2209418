//! The bonus rule: what each participant who finished earns on top of the
//! base pay, from their score in the study's games.
//!
//! A participant's score is the sum of the rewards of the steps they chose
//! themselves (not those a fallback AI chose in their seat) in complete
//! episodes of the game scenes the rule names (all by default). The bonus is
//! `base + per_point × score`, clamped to `[min, max]` and rounded to the
//! cent. It is a table of numbers, not an expression: nothing in the file is
//! evaluated. `tandem export --format bonus` writes it in the form Prolific's
//! bulk bonus takes (`id,amount`).

use crate::design::Design;
use crate::error::{Problems, Reported};
use crate::reader::Table;
use crate::scene::Scene;

/// Fields of the `[bonus]` table.
const FIELDS: &[&str] = &["per_point", "base", "min", "max", "scenes"];

#[derive(Clone, Debug, PartialEq)]
pub struct BonusRule {
    pub per_point: f64,
    pub base: f64,
    pub min: f64,
    pub max: f64,
    /// The game scenes whose returns count; `None`: every game scene.
    pub scenes: Option<Vec<String>>,
}

impl BonusRule {
    /// The bonus for `score`, rounded to the cent.
    pub fn amount(&self, score: f64) -> f64 {
        let raw = self.base + self.per_point * score;
        let clamped = if raw.is_finite() {
            raw.clamp(self.min, self.max)
        } else {
            self.min
        };
        (clamped * 100.0).round() / 100.0
    }
}

impl BonusRule {
    /// The rule with every scene derived from a scene it names (a condition's
    /// version, a block's repetition) named too: a study's conditions pay
    /// by one rule.
    pub(crate) fn with_derived_scenes(mut self, scenes: &[Scene], design: &Design) -> BonusRule {
        if let Some(names) = &mut self.scenes {
            for (index, scene) in scenes.iter().enumerate() {
                let origin = design.origins.get(index).and_then(|&o| scenes.get(o));
                if origin.is_some_and(|o| names.iter().any(|n| n == o.id()))
                    && !names.iter().any(|n| n == scene.id())
                {
                    names.push(scene.id().to_string());
                }
            }
        }
        self
    }
}

/// Reads the `[bonus]` table; with `scenes`, checks that each scene it names
/// is a game scene.
pub(crate) fn read(
    problems: &mut Problems,
    root: &Table,
    scenes: Option<&[Scene]>,
) -> Result<Option<BonusRule>, Reported> {
    let Some(field) = root.field("bonus") else {
        return Ok(None);
    };
    let table = field.table(problems)?;
    table.deny_unknown(problems, "the [bonus] table", FIELDS, |_| None);
    let number =
        |problems: &mut Problems, key: &str, default: Option<f64>| -> Result<f64, Reported> {
            match table.field(key) {
                None => default.ok_or_else(|| table.missing(problems, key, "")),
                Some(f) => match f.item.as_value().and_then(crate::reader::as_number) {
                    Some(v) if v.is_finite() && v >= 0.0 => Ok(v),
                    _ => Err(f.report(problems, format!("{key} must be a number, 0 or more"))),
                },
            }
        };
    let per_point = number(problems, "per_point", None);
    let base = number(problems, "base", Some(0.0));
    let min = number(problems, "min", Some(0.0));
    let max = number(problems, "max", None);
    let names = match table.field("scenes") {
        None => Ok(None),
        Some(f) => {
            let array = f.array(problems)?;
            let mut names = Vec::new();
            for value in array.iter() {
                let name = value.as_str().unwrap_or_default();
                let known = scenes.is_none_or(|scenes| {
                    scenes
                        .iter()
                        .any(|s| matches!(s, Scene::Game(g) if g.id == name))
                });
                if !known {
                    return Err(f.report(
                        problems,
                        format!("{name:?} is not a game scene of this experiment"),
                    ));
                }
                names.push(name.to_string());
            }
            Ok(Some(names))
        }
    };
    let (per_point, base, min, max, scenes) = (per_point?, base?, min?, max?, names?);
    if min > max {
        return Err(field.report(problems, "the bonus's min is above its max"));
    }
    Ok(Some(BonusRule {
        per_point,
        base,
        min,
        max,
        scenes,
    }))
}

/// The bonus rule of a recorded experiment's file text, and the ids of its
/// end scenes (with those its conditions derive), without the environments
/// its games name: for exporting bonuses from a recording on any machine.
/// The rule's scenes include the scenes derived from them.
pub fn bonus_of(source: &str) -> Result<Option<(BonusRule, Vec<String>)>, crate::ConfigError> {
    let mut problems = Problems::new("the recorded experiment", source);
    let document = match toml_edit::Document::parse(source) {
        Ok(document) => document,
        Err(error) => {
            problems.report(
                &error.span().unwrap_or(0..0),
                "",
                error.message().to_string(),
            );
            return Err(problems.into_error());
        }
    };
    let root = Table::root(document.as_table());
    let derived = crate::design::derived_ids(document.as_table());
    let with_derived = |ids: Vec<String>| -> Vec<String> {
        let mut all = ids.clone();
        for (origin, id) in &derived {
            if ids.contains(origin) && !all.contains(id) {
                all.push(id.clone());
            }
        }
        all
    };
    let scenes = document.get("scene").and_then(|s| s.as_array_of_tables());
    let ends: Vec<String> = scenes
        .iter()
        .flat_map(|a| a.iter())
        .filter(|t| t.get("kind").and_then(|k| k.as_str()) == Some("end"))
        .filter_map(|t| t.get("id").and_then(|i| i.as_str()).map(str::to_string))
        .collect();
    match read(&mut problems, &root, None) {
        Ok(rule) if problems.is_empty() => Ok(rule.map(|mut r| {
            r.scenes = r.scenes.map(with_derived);
            (r, with_derived(ends))
        })),
        _ => Err(problems.into_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_clamped_and_rounded() {
        let rule = BonusRule {
            per_point: 0.01,
            base: 0.1,
            min: 0.0,
            max: 1.0,
            scenes: None,
        };
        assert_eq!(rule.amount(0.0), 0.1);
        assert_eq!(rule.amount(12.345), 0.22);
        assert_eq!(rule.amount(1000.0), 1.0);
        assert_eq!(rule.amount(-500.0), 0.0);
        assert_eq!(rule.amount(f64::NAN), 0.0);
    }

    fn parse(bonus: &str) -> Result<crate::Experiment, String> {
        let text = format!(
            "id = \"b\"\ntitle = \"B\"\n{bonus}\n[[scene]]\nkind = \"game\"\nid = \"pole\"\n\
             title = \"P\"\nenv = \"CartPole-v1\"\nepisodes = 1\ndefault_action = 0\n[scene.keys]\nArrowLeft = 0\n\
             [[scene]]\nkind = \"end\"\nid = \"end\"\ntitle = \"E\"\nmarkdown = \"D.\"\n"
        );
        crate::parse(&text, "b.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn the_rule_is_read_and_checked() {
        let e = parse("[bonus]\nper_point = 0.02\nmax = 3\nscenes = [\"pole\"]")
            .unwrap_or_else(|e| panic!("{e}"));
        let rule = e.bonus.unwrap_or_else(|| panic!("a rule"));
        assert_eq!(
            (rule.per_point, rule.base, rule.min, rule.max),
            (0.02, 0.0, 0.0, 3.0)
        );
        assert_eq!(rule.scenes, Some(vec!["pole".to_string()]));
        for (bad, says) in [
            ("[bonus]\nmax = 3", "per_point"),
            (
                "[bonus]\nper_point = 1\nmax = 1\nmin = 2",
                "min is above its max",
            ),
            ("[bonus]\nper_point = -1\nmax = 1", "0 or more"),
            (
                "[bonus]\nper_point = 1\nmax = 1\nscenes = [\"end\"]",
                "not a game scene",
            ),
            (
                "[bonus]\nper_point = 1\nmax = 1\nformula = \"x\"",
                "formula",
            ),
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
