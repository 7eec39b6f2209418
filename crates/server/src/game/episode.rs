//! The episode loop: episodes until the scene's count or time limit, and in
//! each, one tick at the scene's rate: every seat chooses, the environment
//! steps, the step is recorded, the frame published.
//!
//! A late tick is skipped, not made up in a burst, and nothing in a tick waits
//! for a browser or the disk: steps, episode starts and ends and events are
//! queued to the recorder in order. When a seat has nobody to play it, the
//! running episode is recorded as interrupted and the game pauses until it can
//! play again.

use std::ops::Range;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use tandem_env::{Action, Step};
use tandem_experiment::GameScene;
use tandem_policy::Transition;
use tandem_store::{
    AgentStep, EPISODE_INDEX_BLOCK, EpisodeAgent, EpisodeEnd, EpisodeStart, Outcome, StepRecord,
    now_us,
};
use tandem_wire::{GameState, NoticeCode};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{error, info, warn};

use super::exit::GameExit;
use super::publish::{FrameFacts, Progress, status};
use super::seat::Choice;
use super::task::{At, BETWEEN_EPISODES, GameTask};
use super::{GameContext, GameError, GameReport, IDLE_LIMIT};
use crate::sync::stopped;

/// How an episode ended.
enum EpisodeExit {
    Complete {
        time_up: bool,
        total: f64,
    },
    /// The game cannot go on playing now (a participant left with no fallback,
    /// or nobody is connected); the episode was interrupted.
    Paused,
    Ended(GameExit),
}

/// Per-agent running figures of one episode.
struct Tally {
    returns: Vec<f64>,
    rewards: Vec<f64>,
    acks: Vec<Option<u64>>,
}

impl GameTask<'_> {
    /// Plays episodes until the scene's episode count or time limit is reached.
    ///
    /// Episode indices come from blocks reserved in the database (see
    /// `tandem_store::EpisodeIndices`): a new game owns its first block, a game
    /// coming back reserves one, and a task that stops before its game is over
    /// gives the unused rest back, so only a crash skips indices.
    pub(super) async fn play(&mut self, fresh: bool) -> GameExit {
        let (mut progress, mut indices) = if fresh {
            (Progress::default(), 0..EPISODE_INDEX_BLOCK)
        } else {
            match resume_progress(self.context, self.game_id).await {
                Ok(resumed) => resumed,
                Err(e) => return GameExit::Failed(e),
            }
        };
        let exit = self.play_from(&mut progress, &mut indices).await;
        if matches!(exit, GameExit::Shutdown | GameExit::Retired) {
            let released = self
                .context
                .store
                .release_episode_indices(self.game_id, progress.episode, indices.end)
                .await;
            if let Err(e) = released {
                warn!(game = self.game_id, %e, "could not give back unused episode indices");
            }
        }
        exit
    }

    async fn play_from(&mut self, progress: &mut Progress, indices: &mut Range<u32>) -> GameExit {
        let mut waiting_shown = false;
        loop {
            let time_up = self.deadline_us.is_some_and(|d| now_us() >= d);
            if time_up || self.scene.episodes.is_some_and(|n| progress.done >= n) {
                return GameExit::Finished;
            }
            while let Ok(command) = self.commands.try_recv() {
                self.apply(command, BETWEEN_EPISODES);
            }
            if let Some((_, exit)) = self.ended_by_researcher() {
                return exit;
            }
            if let Some(exit) = self.expire_grace(BETWEEN_EPISODES) {
                return exit;
            }
            if !self.roster.is_ready() {
                if !waiting_shown {
                    self.show_status(GameState::Waiting, *progress);
                    waiting_shown = true;
                }
                let wake = self.next_wake();
                tokio::select! {
                    command = self.commands.recv() => match command {
                        Some(command) => self.apply(command, BETWEEN_EPISODES),
                        None => return self.closed(),
                    },
                    _ = stopped(&mut self.shutdown) => return GameExit::Shutdown,
                    _ = tokio::time::sleep_until(wake) => self.report_if_idle(),
                }
                continue;
            }
            waiting_shown = false;
            if progress.episode >= indices.end {
                match reserve_indices(self.context, self.game_id).await {
                    Ok(more) => *indices = more,
                    Err(e) => return GameExit::Failed(e),
                }
                progress.episode = indices.start;
            }
            self.show_status(GameState::Playing, *progress);
            let exit = self.play_episode(progress.episode).await;
            progress.episode += 1;
            match exit {
                EpisodeExit::Complete { time_up, total } => {
                    progress.done += 1;
                    progress.last_return = Some(total);
                    let finished =
                        time_up || self.scene.episodes.is_some_and(|n| progress.done >= n);
                    // Leave the episode's last frame on screen for one tick: the
                    // next reset frame would otherwise replace it before any
                    // socket sent it, and nobody would see the pole fall.
                    if !finished {
                        tokio::time::sleep(tick_period(self.scene)).await;
                    }
                    let state = if finished {
                        GameState::Ended
                    } else {
                        GameState::Playing
                    };
                    self.show_status(state, *progress);
                }
                EpisodeExit::Paused => self.publisher.clear(),
                EpisodeExit::Ended(exit) => return exit,
            }
        }
    }

    fn show_status(&self, name: GameState, progress: Progress) {
        self.roster
            .broadcast(&status(name, progress, self.scene, self.deadline_us));
    }

    /// When a paused game must look again: a grace period expiring, the time
    /// limit, or the idle limit.
    fn next_wake(&self) -> Instant {
        let mut wake = self.roster.next_wake();
        if let Some(deadline) = self.deadline_us {
            let left = Duration::from_micros((deadline - now_us()).max(0) as u64);
            wake = wake.min(Instant::now() + left);
        }
        // Never spin: a deadline already passed is handled by the caller's loop.
        wake.max(Instant::now() + Duration::from_millis(10))
    }

    /// Tells the flow when nobody has been connected for [`IDLE_LIMIT`]; if
    /// still nobody is, placement retires this task by closing its commands.
    fn report_if_idle(&mut self) {
        if self.roster.is_empty() && self.roster.idle_since.elapsed() >= IDLE_LIMIT {
            let _ = self.context.reports.send(GameReport::Idle {
                game_id: self.game_id,
                generation: self.generation,
            });
            self.roster.idle_since = Instant::now();
        }
    }

    async fn play_episode(&mut self, index: u32) -> EpisodeExit {
        let recorder = self.context.recorder.clone();
        let seed = episode_seed(self.scene.seed, self.game_id, index);
        // An environment off the runtime may hang: shutdown does not wait for it.
        let reset = tokio::select! {
            reset = self.env.reset(seed) => reset,
            _ = stopped(&mut self.shutdown) => return EpisodeExit::Ended(GameExit::Shutdown),
        };
        let (observations, frame) = match reset {
            Ok(reset) => reset,
            Err(e) => return EpisodeExit::Ended(GameExit::Failed(e)),
        };
        for seat in &mut self.roster.seats {
            seat.reset(seed);
        }
        let spec = self.env.spec().clone();
        let agents = spec
            .agents
            .iter()
            .zip(&observations)
            .zip(&self.roster.seats)
            .map(|((a, obs), seat)| EpisodeAgent {
                agent_name: a.name.clone(),
                actor: seat.actor(),
                reset_obs: obs.clone(),
            })
            .collect();
        self.obs = observations;
        let started = EpisodeStart {
            game_id: self.game_id,
            idx: index,
            seed,
            env_id: spec.id.clone(),
            env_version: spec.version,
            started_us: now_us(),
            agents,
        };
        let episode_id = match recorder.start_episode(started).await {
            Ok(id) => id,
            Err(e) => return EpisodeExit::Ended(GameExit::Failed(GameError::Recorder(e))),
        };
        let agent_count = spec.agents.len();
        let mut tally = Tally {
            returns: vec![0.0; agent_count],
            rewards: vec![0.0; agent_count],
            acks: vec![None; agent_count],
        };
        let max_steps = self.scene.max_steps.or(spec.max_episode_steps);
        let mut t: u32 = 0;
        self.publish(frame, index, t, &tally);

        // Every way out of the loop but completion records the episode as
        // interrupted, queued behind its steps.
        let interrupt = |reason: &str, t: u32, tally: &Tally| {
            let end = EpisodeEnd {
                ended_us: now_us(),
                steps: t,
                final_info: None,
                outcome: Outcome::Interrupted {
                    reason: reason.to_string(),
                },
                returns: tally.returns.clone(),
            };
            let _ = recorder.record_episode_end(episode_id, end);
        };

        let mut clock = tokio::time::interval(tick_period(self.scene));
        clock.set_missed_tick_behavior(MissedTickBehavior::Skip);
        clock.tick().await;
        loop {
            let at = At {
                episode_id: Some(episode_id),
                step: t,
            };
            tokio::select! {
                biased;
                _ = stopped(&mut self.shutdown) => {
                    // Queued: the recorder's final flush at shutdown writes it.
                    interrupt("server_shutdown", t, &tally);
                    return EpisodeExit::Ended(GameExit::Shutdown);
                }
                command = self.commands.recv() => {
                    let Some(command) = command else {
                        interrupt("game_closed", t, &tally);
                        return EpisodeExit::Ended(self.closed());
                    };
                    self.apply(command, at);
                    if let Some((reason, exit)) = self.ended_by_researcher() {
                        interrupt(&reason, t, &tally);
                        return EpisodeExit::Ended(exit);
                    }
                    if self.is_stopping() {
                        interrupt("server_shutdown", t, &tally);
                        return EpisodeExit::Ended(GameExit::Shutdown);
                    }
                    if !self.roster.is_ready() {
                        info!(game = self.game_id, episode = episode_id, "episode interrupted: a seat has nobody to play it");
                        interrupt("disconnected", t, &tally);
                        return EpisodeExit::Paused;
                    }
                    continue;
                }
                scheduled = clock.tick() => {
                    let late = scheduled.elapsed().as_micros() as u64;
                    self.context.telemetry.tick_lag.observe_us(late);
                }
            }
            if let Some(exit) = self.expire_grace(at) {
                interrupt("game_ended_early", t, &tally);
                return EpisodeExit::Ended(exit);
            }
            let choices = match self.choose(at).await {
                Ok(choices) => choices,
                Err(exit) => {
                    interrupt("policy_failed", t, &tally);
                    return EpisodeExit::Ended(exit);
                }
            };
            let actions: Vec<Action> = choices.iter().map(|c| c.action.clone()).collect();
            let stepped = tokio::select! {
                stepped = self.env.step(&actions) => stepped,
                _ = stopped(&mut self.shutdown) => {
                    interrupt("server_shutdown", t, &tally);
                    return EpisodeExit::Ended(GameExit::Shutdown);
                }
            };
            let (step, frame, info) = match stepped {
                Ok(stepped) => stepped,
                Err(e) => {
                    warn!(game = self.game_id, cause = %e, "environment step failed");
                    interrupt("env_error", t, &tally);
                    return EpisodeExit::Ended(GameExit::Failed(e));
                }
            };
            t += 1;
            let server_us = now_us();
            let time_up = self.deadline_us.is_some_and(|d| server_us >= d);
            let capped = max_steps.is_some_and(|m| t >= m);
            let (agents, done) = self.settle(step, choices, time_up || capped, &mut tally);
            self.context.steps_played.fetch_add(1, Ordering::Relaxed);
            recorder.record_step(StepRecord {
                episode_id,
                t,
                server_us,
                // The frame published next, just below.
                tick: Some(self.publisher.tick() + 1),
                agents,
            });
            self.publish(frame, index, t, &tally);
            if done {
                let end = EpisodeEnd {
                    ended_us: now_us(),
                    steps: t,
                    outcome: Outcome::Complete,
                    returns: tally.returns.clone(),
                    final_info: info,
                };
                // Queued behind the steps, not awaited: a game never waits for
                // the disk between episodes.
                if let Err(e) = recorder.record_episode_end(episode_id, end) {
                    error!(game = self.game_id, cause = %e, "could not end episode");
                }
                let total = tally.returns.iter().sum();
                return EpisodeExit::Complete { time_up, total };
            }
        }
    }

    /// Every seat's choice for this tick. A seat that cannot act, with no
    /// fallback to absorb it, ends the game early for everyone.
    async fn choose(&mut self, at: At) -> Result<Vec<Choice>, GameExit> {
        let mut choices = Vec::with_capacity(self.roster.seats.len());
        for index in 0..self.roster.seats.len() {
            let agent = self.roster.seats[index].agent();
            let choice = match self.obs.get(agent) {
                Some(obs) => {
                    let place = (self.game_id, at.episode_id);
                    self.roster.seats[index].choose(obs, place).await
                }
                None => Err(super::seat::SeatError::NoObservation(agent)),
            };
            let choice = match choice {
                Ok(choice) => choice,
                Err(reason) => {
                    warn!(game = self.game_id, %reason, "a seat could not act");
                    let detail =
                        json!({"agent": agent, "reason": reason.to_string(), "replaced_by": null});
                    self.event(None, "policy_failed", detail, at);
                    return Err(GameExit::EndedEarly {
                        reason: format!("policy_failed: {reason}"),
                        code: NoticeCode::PolicyFailed,
                        notice:
                            "An AI player in this game stopped working, so the game has ended. \
                                 Thank you for playing; the study continues."
                                .to_string(),
                    });
                }
            };
            if let Some((policy, reason)) = &choice.replaced {
                warn!(
                    game = self.game_id,
                    policy, reason, "a policy failed; its fallback takes over"
                );
                let detail = json!({"agent": agent, "policy": policy, "reason": reason, "replaced_by": choice.actor});
                self.event(None, "policy_failed", detail, at);
                let from = format!("policy:{policy}");
                self.roster
                    .seat_change(index, &from, &choice.actor, "policy_failed");
                self.roster_events(at);
            }
            choices.push(choice);
        }
        Ok(choices)
    }

    /// Records the roster's pending events (a seat change made outside an
    /// attach or detach).
    fn roster_events(&mut self, at: At) {
        for e in self.roster.take_events() {
            self.event(e.participant, e.kind, e.detail, at);
        }
    }

    /// Turns a step into each agent's record, updating the tally; `true` when
    /// the episode is over for every agent. `cut`: the time limit or the step
    /// cap truncates every agent not terminated.
    fn settle(
        &mut self,
        step: Step,
        choices: Vec<Choice>,
        cut: bool,
        tally: &mut Tally,
    ) -> (Vec<AgentStep>, bool) {
        let mut done = true;
        let mut agents = Vec::with_capacity(choices.len());
        for ((i, obs), choice) in step.observations.into_iter().enumerate().zip(choices) {
            let terminated = step.terminated.get(i).copied().unwrap_or(false);
            let truncated = step.truncated.get(i).copied().unwrap_or(false) || (cut && !terminated);
            done &= terminated || truncated;
            let reward = step.rewards.get(i).copied().unwrap_or(0.0);
            tally.rewards[i] = reward;
            tally.returns[i] += reward;
            if choice.input_seq.is_some() {
                tally.acks[i] = choice.input_seq;
            }
            if let Some(slot) = self.obs.get_mut(i) {
                let before = std::mem::replace(slot, obs.clone());
                if let Some(seat) = self.roster.seats.get_mut(i) {
                    seat.observe(|| Transition {
                        observation: before,
                        action: choice.action.clone(),
                        reward,
                        feedback: choice.feedback,
                        done: terminated || truncated,
                    });
                }
            }
            agents.push(AgentStep {
                action: choice.action,
                actor: choice.actor,
                source: choice.source,
                keys: choice.keys,
                reward,
                terminated,
                truncated,
                obs,
                input_seq: choice.input_seq,
                client_frame: choice.client_frame,
                client_ts: choice.client_ts,
                feedback: choice.feedback,
            });
        }
        (agents, done)
    }

    fn publish(&mut self, frame: tandem_env::Frame, episode: u32, step: u32, tally: &Tally) {
        self.publisher.publish(
            frame,
            FrameFacts {
                episode,
                step,
                acks: &tally.acks,
                rewards: &tally.rewards,
                returns: &tally.returns,
            },
        );
    }
}

/// Where a game coming back (after a restart, or a retired task) stands, and
/// the episode indices it may use. A free function, not a method: a task's
/// environment and policies are `Send` but not `Sync`, so the task must not be
/// borrowed across an `.await`.
async fn resume_progress(
    context: &GameContext,
    game_id: i64,
) -> Result<(Progress, Range<u32>), GameError> {
    // Episode ends are written in batches, so commit any still queued for it
    // (a task that retired moments ago) before counting. Only a game coming
    // back waits here, never a new one.
    context
        .recorder
        .flush()
        .await
        .map_err(GameError::Recorder)?;
    let indices = reserve_indices(context, game_id).await?;
    let progress = Progress {
        done: context.store.episodes_completed(game_id).await?,
        episode: indices.start,
        last_return: None,
    };
    Ok((progress, indices))
}

/// Reserves the game's next block of episode indices. Indices reserved before
/// and never recorded (a crash cut their episodes off before their start
/// reached the disk) are recorded as skipped, so the gap is explained.
async fn reserve_indices(context: &GameContext, game_id: i64) -> Result<Range<u32>, GameError> {
    let reserved = context
        .store
        .reserve_episode_indices(game_id, EPISODE_INDEX_BLOCK)
        .await?;
    if let Some(skipped) = reserved.skipped {
        warn!(
            game = game_id,
            from = skipped.start,
            to = skipped.end,
            "episode indices reserved before a crash were never recorded; skipping them"
        );
        context.recorder.record_event(
            None,
            Some(game_id),
            "episode_indices_skipped",
            json!({"from": skipped.start, "to": skipped.end}),
        );
    }
    Ok(reserved.block)
}

/// The time between two ticks of a scene's game.
fn tick_period(scene: &GameScene) -> Duration {
    Duration::from_secs_f64(1.0 / f64::from(scene.fps.max(1)))
}

/// A seed for episode `index` of `game_id`: derived from the scene's base seed
/// when it has one (so a study's episodes are reproducible), else random. Either
/// way it is recorded with the episode.
fn episode_seed(base: Option<u64>, game_id: i64, index: u32) -> u64 {
    match base {
        Some(base) => tandem_experiment::episode_seed(base, game_id as u64, u64::from(index)),
        None => rand::random::<u64>() >> 1,
    }
}
