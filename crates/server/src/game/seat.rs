//! One agent's seat in a running game: who holds it and how it chooses an
//! action each tick.
//!
//! A human seat belongs to one participant for the whole game. While their
//! socket is attached, their keys count as the seat's `input` kind says:
//! choosing the action, giving feedback while the seat's policy acts, or
//! overriding the policy. While they are away, or if nobody was matched to the
//! seat, its fallback policy plays. An AI seat's policy plays throughout; if it
//! fails, its fallback replaces it for the rest of the game.
//!
//! Policies are created once per game and reset every episode, so a policy's
//! state (frame stacks, sampling generator) never leaks between games. After
//! every step each of the seat's policies that learns is shown what happened
//! (the action taken, whoever took it, the reward and the participant's
//! feedback).

/// Why a seat could not act, or could not be set up. Either ends the game:
/// no fallback is left to absorb it.
#[derive(Debug, thiserror::Error)]
pub enum SeatError {
    #[error("policy {name:?} for {agent}: {reason}")]
    Policy {
        name: String,
        agent: String,
        reason: String,
    },
    #[error("{env} has no agent {agent}")]
    NoAgent { env: String, agent: usize },
    #[error("seat {0} is not a human seat")]
    NotHuman(String),
    #[error("seat {0} has no key map")]
    NoKeyMap(String),
    #[error("seat {0} has no policy to act")]
    NoPolicy(String),
    #[error("seat {agent}: {why}")]
    NothingCanPlay { agent: String, why: String },
    #[error("seat {agent}: fallback policy {name:?} failed: {reason}")]
    FallbackFailed {
        agent: String,
        name: String,
        reason: String,
    },
    #[error("no observation for agent {0}")]
    NoObservation(usize),
}

use tandem_env::{Action, Observation, Space};
use tandem_experiment::{InputKind, SeatConfig, SeatRole};
use tandem_policy::{Registry, Transition};
use tandem_store::ActionSource;
use tokio::time::Instant;

use super::policy_host::PolicyRunner;
use crate::connection::{Connection, take_input};

/// A policy and the name it was created from.
struct NamedPolicy {
    name: String,
    policy: PolicyRunner,
}

impl NamedPolicy {
    fn create(
        registry: &Registry,
        name: &str,
        seat: &SeatConfig,
        env: &tandem_env::EnvSpec,
    ) -> Result<Self, SeatError> {
        let failed = |reason: String| SeatError::Policy {
            name: name.to_string(),
            agent: seat.agent_name.clone(),
            reason,
        };
        let policy = registry
            .create(name, env, seat.agent)
            .map_err(|e| failed(e.to_string()))?;
        let policy =
            PolicyRunner::start(policy, registry.acts_inline(name), name).map_err(failed)?;
        Ok(NamedPolicy {
            name: name.to_string(),
            policy,
        })
    }

    fn actor(&self) -> String {
        format!("policy:{}", self.name)
    }

    /// The policy's action, which must be in the seat's action space: a
    /// model's NaN or out-of-range output counts as the policy failing, not as
    /// the environment's error.
    async fn act(&mut self, obs: &Observation, space: &Space) -> Result<Action, String> {
        match self.policy.act(obs).await {
            Ok(action) if space.contains(&action) => Ok(action),
            Ok(action) => Err(format!("action {action:?} is outside the action space")),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// What a seat chose this tick, ready to record.
pub(super) struct Choice {
    pub(super) action: Action,
    pub(super) actor: String,
    pub(super) source: ActionSource,
    pub(super) keys: Option<String>,
    pub(super) feedback: Option<f64>,
    pub(super) input_seq: Option<u64>,
    pub(super) client_frame: Option<u64>,
    pub(super) client_ts: Option<f64>,
    /// A policy that failed this tick and was replaced by the fallback:
    /// `(failed policy, reason)`, for the event log.
    pub(super) replaced: Option<(String, String)>,
}

impl Choice {
    fn by_policy(action: Action, policy: &NamedPolicy, source: ActionSource) -> Choice {
        Choice {
            action,
            actor: policy.actor(),
            source,
            keys: None,
            feedback: None,
            input_seq: None,
            client_frame: None,
            client_ts: None,
            replaced: None,
        }
    }
}

pub(super) struct SeatRuntime {
    pub(super) config: SeatConfig,
    /// The participant the seat belongs to; `None` for AI seats and for human
    /// seats the lobby filled with their fallback.
    pub(super) participant_id: Option<i64>,
    /// Their socket, while attached.
    pub(super) occupant: Option<Connection>,
    /// Since when the participant has been away (never attached counts).
    pub(super) away_since: Option<Instant>,
    /// Whether the participant's socket has been attached in this task.
    pub(super) attached_once: bool,
    /// The participant stayed away past the grace period: the fallback holds
    /// the seat for good, and the participant has moved on.
    pub(super) forfeited: bool,
    /// The policy that acts for AI, feedback and correction seats.
    policy: Option<NamedPolicy>,
    fallback: Option<NamedPolicy>,
    /// The acting policy failed; the fallback acts instead from now on.
    policy_failed: bool,
    /// The agent's action space, which every policy action is checked against.
    action_space: Space,
}

impl SeatRuntime {
    /// The seat of `config`, owned by `participant_id` if a person holds it.
    pub(super) fn new(
        config: &SeatConfig,
        participant_id: Option<i64>,
        registry: &Registry,
        env: &tandem_env::EnvSpec,
    ) -> Result<SeatRuntime, SeatError> {
        let (acting, fallback) = match &config.role {
            SeatRole::Ai(ai) => (Some(&ai.policy), ai.fallback.as_ref()),
            SeatRole::Human(h) => (h.policy.as_ref(), h.fallback.as_ref()),
        };
        let create = |p: Option<&tandem_experiment::PolicyRef>| {
            p.map(|p| NamedPolicy::create(registry, &p.name, config, env))
                .transpose()
        };
        Ok(SeatRuntime {
            participant_id,
            occupant: None,
            away_since: participant_id.map(|_| Instant::now()),
            attached_once: false,
            forfeited: false,
            policy: create(acting)?,
            fallback: create(fallback)?,
            policy_failed: false,
            action_space: env
                .agents
                .get(config.agent)
                .map(|a| a.action_space.clone())
                .ok_or_else(|| SeatError::NoAgent {
                    env: env.id.clone(),
                    agent: config.agent,
                })?,
            config: config.clone(),
        })
    }

    pub(super) fn agent(&self) -> usize {
        self.config.agent
    }

    pub(super) fn name(&self) -> &str {
        &self.config.agent_name
    }

    /// The participant who plays here now (attached, not forfeited).
    pub(super) fn present(&self) -> Option<&Connection> {
        self.occupant.as_ref().filter(|_| !self.forfeited)
    }

    /// A participant's seat they may still come back to.
    pub(super) fn is_awaited(&self) -> bool {
        self.participant_id.is_some() && !self.forfeited
    }

    /// Whether the seat can act without its participant.
    pub(super) fn has_fallback(&self) -> bool {
        self.fallback.is_some()
    }

    /// The seat's participant is away and nothing can play for them: the game
    /// must wait.
    pub(super) fn blocks_play(&self) -> bool {
        self.is_awaited() && self.occupant.is_none() && self.fallback.is_none()
    }

    /// Who acts for the seat now, as recorded in `actor` columns.
    pub(super) fn actor(&self) -> String {
        if let Some(o) = self.present() {
            return match (&self.config.role, &self.policy) {
                (SeatRole::Human(h), Some(p)) if h.input == InputKind::Feedback => p.actor(),
                _ => format!("participant:{}", o.participant_id),
            };
        }
        match (&self.config.role, &self.policy, &self.fallback) {
            (SeatRole::Ai(_), Some(p), _) if !self.policy_failed => p.actor(),
            (_, _, Some(f)) => f.actor(),
            _ => "nobody".to_string(),
        }
    }

    /// Resets the seat's policies for an episode of seed `seed`.
    pub(super) fn reset(&mut self, seed: u64) {
        // Each seat's policies draw from their own stream.
        let seed = seed ^ (self.config.agent as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for p in self.policy.iter_mut().chain(self.fallback.iter_mut()) {
            p.policy.reset(seed);
        }
    }

    /// Shows the seat's learning policies what followed this tick's action.
    /// A failed policy is shown nothing more.
    pub(super) fn observe(&mut self, transition: impl FnOnce() -> Transition) {
        let acting = self.policy.as_mut().filter(|_| !self.policy_failed);
        let mut learners = acting
            .into_iter()
            .chain(self.fallback.iter_mut())
            .filter(|p| p.policy.observes())
            .peekable();
        if learners.peek().is_none() {
            return;
        }
        let transition = transition();
        for learner in learners {
            learner.policy.observe(transition.clone());
        }
    }

    /// Chooses the seat's action for this tick from its observation. `Err` is a
    /// failure no fallback can absorb; the game must end.
    /// `place`: the game and episode, noted on the participant's socket so
    /// that the inputs it reads are recorded with them.
    pub(super) async fn choose(
        &mut self,
        obs: &Observation,
        place: (i64, Option<i64>),
    ) -> Result<Choice, SeatError> {
        let (participant, input) = match (&self.config.role, self.present()) {
            (SeatRole::Human(_), Some(o)) => (
                format!("participant:{}", o.participant_id),
                take_input(&o.input, place),
            ),
            _ => return self.act_without_human(obs).await,
        };
        let mut held = input.keys.clone();
        held.extend(input.pressed.iter().cloned());
        // The acting policy (feedback and correction seats) decides every tick,
        // even when overridden, so its own state (frame stacks) stays current.
        let policy_choice = if self.policy.is_none() {
            None
        } else if self.policy_failed {
            Some(self.act_fallback(obs, None).await?)
        } else {
            Some(self.act_policy(obs).await?)
        };
        let replaced = policy_choice.as_ref().and_then(|c| c.replaced.clone());
        // Borrowed again only now: the policies above needed `self` mutably.
        let SeatRole::Human(human) = &self.config.role else {
            return Err(SeatError::NotHuman(self.name().to_string()));
        };
        let with_input = |mut c: Choice| {
            c.replaced = replaced;
            c.input_seq = input.seq;
            c.client_frame = input.frame;
            c.client_ts = input.ts;
            c
        };
        let choice = match human.input {
            InputKind::Action | InputKind::Correction => {
                let resolved = match &human.keys {
                    Some(keys) => keys.action_for(&held),
                    None => return Err(SeatError::NoKeyMap(self.name().to_string())),
                };
                match (human.input, resolved.chord, policy_choice) {
                    (InputKind::Correction, None, Some(policy)) => policy,
                    (input_kind, chord, _) => Choice {
                        action: resolved.action,
                        actor: participant,
                        source: match (input_kind, &chord) {
                            (_, None) => ActionSource::Default,
                            (InputKind::Correction, Some(_)) => ActionSource::Correction,
                            _ => ActionSource::Keys,
                        },
                        keys: chord,
                        feedback: None,
                        input_seq: None,
                        client_frame: None,
                        client_ts: None,
                        replaced: None,
                    },
                }
            }
            InputKind::Feedback => {
                let Some(mut choice) = policy_choice else {
                    return Err(SeatError::NoPolicy(self.name().to_string()));
                };
                let mut total = 0.0;
                let mut given = false;
                for key in &input.pressed {
                    if let Some(f) = human
                        .feedback_keys
                        .iter()
                        .find(|f| tandem_experiment::key_matches(&f.key, key))
                    {
                        total += f.value;
                        given = true;
                    }
                }
                choice.feedback = given.then_some(total);
                choice
            }
        };
        Ok(with_input(choice))
    }

    /// The acting policy's action; if it fails, the fallback's (recording the
    /// replacement), else an error.
    async fn act_policy(&mut self, obs: &Observation) -> Result<Choice, SeatError> {
        let Some(policy) = self.policy.as_mut() else {
            return Err(SeatError::NoPolicy(self.config.agent_name.clone()));
        };
        match policy.act(obs, &self.action_space).await {
            Ok(action) => Ok(Choice::by_policy(action, policy, ActionSource::Policy)),
            Err(e) => {
                let failed = (policy.name.clone(), e);
                self.policy_failed = true;
                self.act_fallback(obs, Some(failed)).await
            }
        }
    }

    async fn act_fallback(
        &mut self,
        obs: &Observation,
        replaced: Option<(String, String)>,
    ) -> Result<Choice, SeatError> {
        let Some(fallback) = self.fallback.as_mut() else {
            let why = replaced.map_or_else(
                || "nothing can play it".to_string(),
                |(name, reason)| {
                    format!("policy {name:?} failed ({reason}) and there is no fallback")
                },
            );
            return Err(SeatError::NothingCanPlay {
                agent: self.config.agent_name.clone(),
                why,
            });
        };
        match fallback.act(obs, &self.action_space).await {
            Ok(action) => {
                let mut choice = Choice::by_policy(action, fallback, ActionSource::Fallback);
                choice.replaced = replaced;
                Ok(choice)
            }
            Err(reason) => Err(SeatError::FallbackFailed {
                agent: self.config.agent_name.clone(),
                name: fallback.name.clone(),
                reason,
            }),
        }
    }

    async fn act_without_human(&mut self, obs: &Observation) -> Result<Choice, SeatError> {
        match (&self.config.role, self.policy_failed) {
            (SeatRole::Ai(_), false) => self.act_policy(obs).await,
            _ => self.act_fallback(obs, None).await,
        }
    }
}
