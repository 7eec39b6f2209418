//! `tandem test FILE --bots N`: the dry run passes on every example file (its
//! bots walk the real study, games at their real lengths) and fails, naming
//! the scene, on a file with a scene no bot can finish in time.

use std::process::Command;

fn dry_run(file: &std::path::Path, bots: &str, timeout: &str) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("test")
        .arg(file)
        .args(["--bots", bots, "--timeout", timeout])
        .env("RUST_LOG", "warn")
        .output()
        .expect("tandem runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

fn example(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

fn passes(name: &str) {
    let (code, text) = dry_run(&example(name), "2", "400");
    assert_eq!(code, Some(0), "{name}:\n{text}");
    assert!(text.contains("ok: 2 bots walked the study"), "{text}");
    assert!(text.contains("2/2"), "every scene reached by both: {text}");
}

#[test]
fn the_cartpole_example_passes() {
    passes("cartpole_prolific.toml");
}

#[test]
fn the_kitchen_example_passes() {
    passes("kitchen_pairs.toml");
}

#[test]
fn the_mountaincar_example_passes() {
    passes("mountaincar_mturk.toml");
}

#[test]
fn the_assisted_example_passes() {
    passes("assisted_cartpole.toml");
}

#[test]
fn the_conditions_example_passes_and_reaches_every_condition() {
    passes("conditions.toml");
    let (_, text) = dry_run(&example("conditions.toml"), "2", "400");
    assert!(
        text.contains("bots per condition: slow 1 · normal 1"),
        "{text}"
    );
}

#[test]
fn too_few_bots_for_the_conditions_fail() {
    let (code, text) = dry_run(&example("conditions.toml"), "1", "400");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("1 bots cannot reach the study's 2 conditions; use --bots 2 or more"),
        "{text}"
    );
}

#[test]
fn a_scene_no_bot_can_finish_fails() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("endless.toml");
    std::fs::write(
        &file,
        r#"
id = "endless"
title = "Endless"

[[scene]]
kind = "info"
id = "hello"
title = "Hello"
markdown = "Hi."

[[scene]]
kind = "game"
id = "forever"
title = "Forever"
env = "CartPole-v1"
fps = 30
time_limit_s = 3600
default_action = 0
[scene.keys]
ArrowLeft = 0
ArrowRight = 1

[[scene]]
kind = "end"
id = "end"
title = "Thanks"
markdown = "Done."
"#,
    )
    .unwrap();
    let (code, text) = dry_run(&file, "2", "4");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("2 of 2 bots did not finish"), "{text}");
    assert!(
        text.contains("did not finish (stopped at scene 1)"),
        "{text}"
    );
}

/// Bots shown a screened-out page did not walk the study: the dry run says
/// so and fails, rather than counting the early end page as an end.
#[test]
fn bots_screened_out_fail_the_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("picky.toml");
    std::fs::write(
        &file,
        r#"
id = "picky"
title = "Picky"

[[scene]]
kind = "screening"
id = "check"
title = "Check"
browsers = ["firefox"]
screened_out_code = "NOPE"

[[scene]]
kind = "end"
id = "end"
title = "Thanks"
markdown = "Done."
"#,
    )
    .unwrap();
    let (code, text) = dry_run(&file, "2", "30");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("2 bots were screened out"), "{text}");
    assert!(
        text.contains("finished early, at scene 0 (screened out)"),
        "{text}"
    );
}
