//! Conditions and blocks: the scenes they derive, the plans they draw, and
//! the problems a researcher is told about.

use std::collections::HashMap;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tandem_experiment::{BlockOrder, Experiment, Scene, parse, williams_row};

const HEAD: &str = "id = \"t\"\ntitle = \"T\"\n";

/// Four games and an end scene; `design` is appended.
fn study(design: &str) -> Result<Experiment, String> {
    let mut source = HEAD.to_string();
    for id in ["a", "b", "c", "d"] {
        source.push_str(&format!(
            "[[scene]]\nkind = \"game\"\nid = \"{id}\"\ntitle = \"{id}\"\nenv = \"CartPole-v1\"\n\
             fps = 30\nepisodes = 1\ndefault_action = 0\n[scene.keys]\nArrowLeft = 0\n\n"
        ));
    }
    source.push_str("[[scene]]\nkind = \"end\"\nid = \"end\"\ntitle = \"E\"\nmarkdown = \"x\"\n\n");
    source.push_str(design);
    parse(&source, "t.toml").map_err(|e| e.to_string())
}

fn ids(e: &Experiment, plan: &[usize]) -> Vec<String> {
    e.plan_ids(plan)
}

fn rng() -> SmallRng {
    SmallRng::seed_from_u64(7)
}

#[test]
fn a_file_without_a_design_is_one_plan_in_file_order() {
    let e = study("").unwrap();
    assert!(!e.design.has_conditions());
    let a = e.design.assign(&HashMap::new(), &mut rng());
    assert_eq!(a.condition, None);
    assert_eq!(ids(&e, &a.plan), ["a", "b", "c", "d", "end"]);
    assert_eq!(e.design.file_scene_count(), 5);
}

#[test]
fn a_condition_overrides_fields_as_a_scene_of_its_own() {
    let e = study(
        "[[condition]]\nid = \"slow\"\n[condition.override.b]\nfps = 15\ntitle = \"Slow b\"\n\
         [[condition]]\nid = \"fast\"\n",
    )
    .unwrap();
    let slow = e.scene_index("b-slow").expect("the slow condition's b");
    let game = e.scenes[slow].as_game().unwrap();
    assert_eq!((game.fps, game.title.as_str()), (15, "Slow b"));
    assert_eq!(
        e.scenes[1].as_game().unwrap().fps,
        30,
        "the file's b is unchanged"
    );
    assert_eq!(e.design.origins[slow], 1);
    let slow_plan = e.design.plan(0, 0, &mut rng());
    let fast_plan = e.design.plan(1, 0, &mut rng());
    assert_eq!(ids(&e, &slow_plan), ["a", "b-slow", "c", "d", "end"]);
    assert_eq!(ids(&e, &fast_plan), ["a", "b", "c", "d", "end"]);
}

#[test]
fn assignment_keeps_counts_within_one_and_breaks_ties_at_random() {
    let e =
        study("[[condition]]\nid = \"x\"\n[[condition]]\nid = \"y\"\n[[condition]]\nid = \"z\"\n")
            .unwrap();
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut r = rng();
    let mut firsts = HashMap::new();
    for n in 0..200 {
        let a = e.design.assign(&counts, &mut r);
        let c = a.condition.expect("named");
        if n % 3 == 0 {
            *firsts.entry(c.clone()).or_insert(0) += 1;
        }
        *counts.entry(c).or_default() += 1;
        let (lo, hi) = (
            counts.values().min().unwrap(),
            counts.values().max().unwrap(),
        );
        assert!(hi - lo <= 1 && counts.len() <= 3, "{counts:?}");
    }
    assert_eq!(counts.values().sum::<u64>(), 200);
    assert!(
        firsts.len() > 1,
        "ties are not always broken the same way: {firsts:?}"
    );
}

#[test]
fn a_latin_square_block_puts_each_scene_at_each_position_equally() {
    let e = study("[[block]]\nid = \"games\"\nscenes = [\"a\", \"b\", \"c\", \"d\"]\norder = \"latin_square\"\n")
        .unwrap();
    assert_eq!(e.design.blocks[0].order, BlockOrder::LatinSquare);
    let mut at: HashMap<(String, usize), u32> = HashMap::new();
    let mut follows: HashMap<(String, String), u32> = HashMap::new();
    for ordinal in 0..8 {
        let plan = ids(&e, &e.design.plan(0, ordinal, &mut rng()));
        assert_eq!(plan.last().map(String::as_str), Some("end"));
        for (position, id) in plan[..4].iter().enumerate() {
            *at.entry((id.clone(), position)).or_default() += 1;
        }
        for pair in plan[..4].windows(2) {
            *follows
                .entry((pair[0].clone(), pair[1].clone()))
                .or_default() += 1;
        }
    }
    assert_eq!(at.len(), 16);
    assert!(at.values().all(|&n| n == 2), "{at:?}");
    // Williams: each ordered pair directly follows equally often.
    assert_eq!(follows.len(), 12);
    assert!(follows.values().all(|&n| n == 2), "{follows:?}");
    for n in 1..7 {
        let rows = if n % 2 == 0 { n } else { 2 * n };
        for r in 0..rows {
            let mut row = williams_row(n, r as u64);
            row.sort();
            assert_eq!(row, (0..n).collect::<Vec<_>>());
        }
    }
}

#[test]
fn a_repeated_random_block_gets_scenes_of_its_own_per_repetition() {
    let e = study("[[block]]\nid = \"games\"\nscenes = [\"b\", \"c\"]\nrepeat = 3\n").unwrap();
    for id in ["b-r2", "c-r2", "b-r3", "c-r3"] {
        let i = e.scene_index(id).unwrap_or_else(|| panic!("{id}"));
        assert!(e.scenes[i].as_game().is_some());
    }
    let mut orders = std::collections::HashSet::new();
    let mut r = rng();
    for _ in 0..30 {
        let plan = ids(&e, &e.design.plan(0, 0, &mut r));
        assert_eq!(plan.len(), 9);
        assert_eq!(
            (plan[0].as_str(), plan[7].as_str(), plan[8].as_str()),
            ("a", "d", "end")
        );
        let mut rep2 = plan[3..5].to_vec();
        rep2.sort();
        assert_eq!(rep2, ["b-r2", "c-r2"]);
        orders.insert(plan[1..7].join(","));
    }
    assert!(orders.len() > 1, "random order varies: {orders:?}");
}

#[test]
fn conditions_may_choose_their_scenes_and_their_own_end() {
    let source = format!(
        "{HEAD}[[scene]]\nkind = \"info\"\nid = \"hi\"\ntitle = \"H\"\nmarkdown = \"x\"\n\
         [[scene]]\nkind = \"game\"\nid = \"solo\"\ntitle = \"S\"\nenv = \"CartPole-v1\"\nepisodes = 1\ndefault_action = 0\n[scene.keys]\nArrowLeft = 0\n\
         [[scene]]\nkind = \"end\"\nid = \"end-solo\"\ntitle = \"E\"\nmarkdown = \"x\"\ncompletion_code = \"SOLO\"\n\
         [[scene]]\nkind = \"end\"\nid = \"end-none\"\ntitle = \"E\"\nmarkdown = \"x\"\ncompletion_code = \"NONE\"\n\
         [[condition]]\nid = \"play\"\nscenes = [\"hi\", \"solo\", \"end-solo\"]\n\
         [[condition]]\nid = \"read\"\nscenes = [\"hi\", \"end-none\"]\n"
    );
    let e = parse(&source, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ids(&e, &e.design.plan(1, 0, &mut rng())),
        ["hi", "end-none"]
    );
    let stored = vec!["hi".to_string(), "end-none".to_string()];
    assert_eq!(e.plan_of(Some(&stored)), vec![0, 3]);
    assert_eq!(
        e.plan_of(None),
        vec![0, 1, 2, 3],
        "no plan stored: the file's order"
    );
}

#[test]
fn a_score_scene_shows_the_condition_s_version_of_its_game() {
    let source = format!(
        "{HEAD}[[scene]]\nkind = \"game\"\nid = \"g\"\ntitle = \"G\"\nenv = \"CartPole-v1\"\nepisodes = 1\ndefault_action = 0\n[scene.keys]\nArrowLeft = 0\n\
         [[scene]]\nkind = \"score\"\nid = \"s\"\ntitle = \"S\"\ngame = \"g\"\n\
         [[scene]]\nkind = \"end\"\nid = \"end\"\ntitle = \"E\"\nmarkdown = \"x\"\n\
         [bonus]\nper_point = 0.01\nmax = 1\nscenes = [\"g\"]\n\
         [[condition]]\nid = \"x\"\n[condition.override.g]\nfps = 10\n"
    );
    let e = parse(&source, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    let plan = e.design.plan(0, 0, &mut rng());
    assert_eq!(e.score_game(&plan, 1), Some("g-x"));
    let bonus_scenes = e.bonus.as_ref().and_then(|b| b.scenes.clone()).unwrap();
    assert_eq!(bonus_scenes, ["g", "g-x"]);
}

/// Each problem is reported at its line with a message that says what to do.
#[test]
fn design_problems_are_reported_where_they_are() {
    let cases: &[(&str, &str)] = &[
        (
            "[[condition]]\nid = \"x\"\n[condition.override.bb]\nfps = 10\n",
            "no scene has id \"bb\" (did you mean \"b\"?)",
        ),
        (
            "[[condition]]\nid = \"x\"\n[condition.override.b]\nkind = \"info\"\n",
            "not its kind or id",
        ),
        (
            "[[condition]]\nid = \"x\"\n[condition.override.b]\nfps = 0\n",
            "fps",
        ),
        (
            "[[condition]]\nid = \"x\"\n[[condition]]\nid = \"x\"\n",
            "declared twice",
        ),
        (
            "[[condition]]\nid = \"x\"\nscenes = [\"a\", \"b\"]\n",
            "must end with one end scene",
        ),
        (
            "[[condition]]\nid = \"x\"\nscenes = [\"a\", \"a\", \"end\"]\n",
            "listed twice",
        ),
        (
            "[[condition]]\nid = \"x\"\nscenes = [\"a\", \"c\", \"b\", \"end\"]\n[[block]]\nid = \"k\"\nscenes = [\"b\", \"d\"]\n",
            "must all be shown, one after another",
        ),
        (
            "[[block]]\nid = \"k\"\nscenes = [\"a\", \"c\"]\n",
            "must all be shown, one after another",
        ),
        (
            "[[block]]\nid = \"k\"\nscenes = [\"a\", \"end\"]\n",
            "an end scene cannot be in a block",
        ),
        (
            "[[block]]\nid = \"k\"\nscenes = [\"a\"]\norder = \"latin\"\n",
            "unknown order \"latin\"",
        ),
        (
            "[[block]]\nid = \"k\"\nscenes = [\"a\"]\nrepeat = 0\n",
            "between 1 and 100",
        ),
        (
            "[[block]]\nid = \"k\"\nscenes = [\"a\"]\n[[block]]\nid = \"l\"\nscenes = [\"a\"]\n",
            "already in a block",
        ),
        (
            "[[condition]]\nid = \"x\"\nsenes = [\"a\"]\n",
            "(did you mean \"scenes\"?)",
        ),
    ];
    for (design, expected) in cases {
        let error = study(design).expect_err(design);
        assert!(
            error.contains(expected),
            "{design}\n→ {error}\n(expected {expected:?})"
        );
        assert!(error.contains("t.toml:"), "{error}");
    }
}

#[test]
fn derived_scenes_are_whole_scenes_of_their_kind() {
    let e = study("[[condition]]\nid = \"x\"\n[condition.override.a]\nenv = \"MountainCar-v0\"\ndefault_action = 1\n").unwrap();
    let i = e.scene_index("a-x").unwrap();
    match &e.scenes[i] {
        Scene::Game(g) => assert_eq!((g.env.as_str(), g.episodes), ("MountainCar-v0", Some(1))),
        other => panic!("{other:?}"),
    }
}

/// The partner policy is a seat's field: a condition replaces the seats, and
/// a policy name in them is checked like any other (at its own line).
#[test]
fn a_condition_may_give_a_game_another_partner() {
    let game = "[[scene]]\nkind = \"game\"\nid = \"rally\"\ntitle = \"R\"\nenv = \"Paddles-v0\"\n\
                time_limit_s = 30\ndefault_action = 0\n[scene.keys]\nArrowUp = 1\n\
                [[scene.seat]]\nagent = \"left\"\nhuman = true\n\
                [[scene.seat]]\nagent = \"right\"\nai = \"scripted\"\n\
                [[scene]]\nkind = \"end\"\nid = \"end\"\ntitle = \"E\"\nmarkdown = \"x\"\n";
    let partner = |name: &str| {
        format!(
            "{HEAD}{game}[[condition]]\nid = \"other\"\n\
             [[condition.override.rally.seat]]\nagent = \"left\"\nhuman = true\n\
             [[condition.override.rally.seat]]\nagent = \"right\"\nai = \"{name}\"\n\
             [[condition]]\nid = \"same\"\n"
        )
    };
    let e = parse(&partner("random"), "t.toml").unwrap_or_else(|e| panic!("{e}"));
    let policy = |id: &str| {
        let game = e.scenes[e.scene_index(id).unwrap()].as_game().unwrap();
        match &game.seats[1].role {
            tandem_experiment::SeatRole::Ai(ai) => ai.policy.name.clone(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(policy("rally"), "scripted");
    assert_eq!(policy("rally-other"), "random");
    let uses: Vec<&str> = e
        .policy_uses()
        .iter()
        .map(|(_, _, p)| p.name.as_str())
        .collect();
    assert!(
        uses.contains(&"random"),
        "checked like the file's own: {uses:?}"
    );
    let error = parse(&partner("scriptd"), "t.toml")
        .unwrap_err()
        .to_string();
    assert!(error.contains("scriptd"), "{error}");
    assert!(error.contains("t.toml:"), "{error}");
}

/// Orders that vary and conditions that differ may not separate what must
/// come together: a score scene from its game, a lasting group from itself.
#[test]
fn designs_that_would_strand_a_score_or_a_group_are_refused() {
    let score = format!(
        "{HEAD}[[scene]]\nkind = \"game\"\nid = \"g\"\ntitle = \"G\"\nenv = \"CartPole-v1\"\nepisodes = 1\ndefault_action = 0\n[scene.keys]\nArrowLeft = 0\n\
         [[scene]]\nkind = \"score\"\nid = \"s\"\ntitle = \"S\"\ngame = \"g\"\n\
         [[scene]]\nkind = \"end\"\nid = \"end\"\ntitle = \"E\"\nmarkdown = \"x\"\n\
         [[block]]\nid = \"k\"\nscenes = [\"g\", \"s\"]\norder = \"latin_square\"\n"
    );
    let error = parse(&score, "t.toml").unwrap_err().to_string();
    assert!(error.contains("could come before its game"), "{error}");
    assert!(parse(&score.replace("latin_square", "fixed"), "t.toml").is_ok());

    let kitchen = |id: &str, extra: &str| {
        format!(
            "[[scene]]\nkind = \"game\"\nid = \"{id}\"\ntitle = \"K\"\nenv = \"Kitchen-v0\"\n\
             time_limit_s = 10\ndefault_action = 0\nhuman_timeout_s = 30\n{extra}\
             [scene.keys]\nSpace = 5\n[[scene.seat]]\nagent = \"chef_0\"\nhuman = true\n\
             [[scene.seat]]\nagent = \"chef_1\"\nhuman = true\n"
        )
    };
    let teams = format!(
        "{HEAD}{}{}{}[[scene]]\nkind = \"end\"\nid = \"end\"\ntitle = \"E\"\nmarkdown = \"x\"\n",
        kitchen("first", ""),
        kitchen("again", "group = \"same\"\n"),
        kitchen("third", ""),
    );
    parse(&teams, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    let cases = [
        (
            "[[condition]]\nid = \"x\"\n[condition.override.again]\nfps = 10\n",
            "changes scene \"again\"",
        ),
        (
            "[[condition]]\nid = \"x\"\nscenes = [\"first\", \"again\", \"end\"]\n",
            "may not choose their scenes",
        ),
        (
            "[[block]]\nid = \"k\"\nscenes = [\"again\", \"third\"]\n",
            "members of one group would reach it at different times",
        ),
    ];
    for (design, expected) in cases {
        let error = parse(&format!("{teams}{design}"), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{design}\n→ {error}");
    }
}
