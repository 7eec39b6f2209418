//! The cost of the built-in environments in the game loop: one `step`, one `step`
//! plus `render` to sprites (what a sprite game does every tick), and rasterizing
//! a CartPole frame to 600 × 400 pixels (what a pixel scene of a sprite env adds).
//!
//! Episodes are reset when they end, inside the measured loop, as a game does;
//! controllers keep them long, so resets are rare.
//!
//! ```text
//! cargo bench -p tandem-envs --bench env_step
//! ```
//!
//! Warm-up and measurement times are set below (1 s and 3 s), short enough for a
//! shared 2-core machine; criterion's flags after `--` override them.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tandem_env::{Action, Env, Frame};
use tandem_envs::{CartPole, MountainCar, rasterize};

/// Keeps the pole up (a linear controller), so episodes run to the 500-step limit.
fn balance(env: &CartPole) -> i64 {
    let [x, x_dot, theta, theta_dot] = env.state();
    i64::from(0.1 * x + 0.5 * x_dot + 10.0 * theta + 2.0 * theta_dot > 0.0)
}

/// Pushes with the car's velocity, which rocks it up the hill.
fn pump(env: &MountainCar) -> i64 {
    if env.state()[1] >= 0.0 { 2 } else { 0 }
}

/// Steps `env` with `action`, resetting after the last step of an episode.
fn step_or_reset<E: Env>(env: &mut E, seed: &mut u64, action: i64) {
    let step = env
        .step(&[Action::Discrete(action)])
        .expect("a running episode takes a valid action");
    if step.is_done() {
        *seed += 1;
        env.reset(*seed).expect("reset");
    }
    black_box(step);
}

fn cartpole(c: &mut Criterion) {
    let mut group = c.benchmark_group("cartpole");
    group.throughput(Throughput::Elements(1));
    let mut env = CartPole::new();
    let mut seed = 0;
    env.reset(seed).expect("reset");
    group.bench_function("step", |b| {
        b.iter(|| {
            let action = balance(&env);
            step_or_reset(&mut env, &mut seed, action);
        })
    });
    group.bench_function("step+render", |b| {
        b.iter(|| {
            let action = balance(&env);
            step_or_reset(&mut env, &mut seed, action);
            black_box(env.render());
        })
    });
    let Frame::Sprites(sprites) = env.render() else {
        panic!("CartPole draws sprites");
    };
    group.bench_function("rasterize_600x400", |b| {
        b.iter(|| black_box(rasterize(black_box(&sprites), 600, 400, [255, 255, 255])))
    });
    group.finish();
}

fn mountain_car(c: &mut Criterion) {
    let mut group = c.benchmark_group("mountain_car");
    group.throughput(Throughput::Elements(1));
    let mut env = MountainCar::new();
    let mut seed = 0;
    env.reset(seed).expect("reset");
    group.bench_function("step", |b| {
        b.iter(|| {
            let action = pump(&env);
            step_or_reset(&mut env, &mut seed, action);
        })
    });
    group.bench_function("step+render", |b| {
        b.iter(|| {
            let action = pump(&env);
            step_or_reset(&mut env, &mut seed, action);
            black_box(env.render());
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = cartpole, mountain_car
}
criterion_main!(benches);
