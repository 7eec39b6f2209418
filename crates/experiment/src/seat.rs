//! Seats: who plays each agent of a game scene's environment.
//!
//! A seat is human (a participant, matched by the lobby) or AI (a policy from
//! the registry). A human seat says what the participant's keys do (`input`):
//! choose the action, give scalar feedback while a policy acts, or correct a
//! policy by overriding it. A `fallback` policy takes a human seat whose
//! participant never arrived (after `human_timeout_s`) or left; on an AI seat it
//! replaces a policy that fails mid-game.
//!
//! Policy names are checked here against the built-ins and the experiment's
//! `[policy.NAME]` tables; whether a policy suits the seat's spaces is checked
//! by whoever builds the registry (`tandem check` and `tandem serve`), because
//! loading ONNX models is not this crate's job.

use serde_json::{Value, json};
use tandem_env::{Action, DefaultKey, EnvSpec, Space};
use tandem_wire::SeatView;

use crate::error::{Problems, Reported};
use crate::keymap::{KeyBinding, KeyMap, read_action, read_keys};
use crate::keys::parse_chord;
use crate::reader::{Field, Table, as_number};
use crate::suggest::did_you_mean;

/// Fields of a `[[scene.seat]]` table.
pub(crate) const SEAT_FIELDS: &[&str] = &[
    "agent",
    "human",
    "ai",
    "input",
    "policy",
    "fallback",
    "keys",
    "default_action",
    "feedback",
];

/// What a human seat's keys do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// Keys choose the action through the key map.
    Action,
    /// A policy acts; keys give a scalar reward signal recorded beside the
    /// environment's reward (TAMER-style).
    Feedback,
    /// A policy acts unless a mapped key is held, in which case the key map's
    /// action is applied and recorded as a correction.
    Correction,
}

impl InputKind {
    pub fn name(self) -> &'static str {
        match self {
            InputKind::Action => "action",
            InputKind::Feedback => "feedback",
            InputKind::Correction => "correction",
        }
    }
}

impl From<InputKind> for tandem_wire::InputKind {
    fn from(kind: InputKind) -> Self {
        match kind {
            InputKind::Action => tandem_wire::InputKind::Action,
            InputKind::Feedback => tandem_wire::InputKind::Feedback,
            InputKind::Correction => tandem_wire::InputKind::Correction,
        }
    }
}

/// A policy named by a seat, with where the name is written, so that a policy
/// that cannot serve the seat is reported at `file:line:column`.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyRef {
    pub name: String,
    /// `file:line:column: field` of the name in the experiment file.
    pub location: String,
}

/// A feedback key and the value one press of it gives.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedbackKey {
    pub key: String,
    pub value: f64,
}

/// A seat a participant plays.
#[derive(Clone, Debug, PartialEq)]
pub struct HumanSeat {
    pub input: InputKind,
    /// The key map (inputs `action` and `correction`).
    pub keys: Option<KeyMap>,
    /// The policy that acts for the seat (inputs `feedback` and `correction`).
    pub policy: Option<PolicyRef>,
    /// Takes the seat when its participant never arrives or leaves.
    pub fallback: Option<PolicyRef>,
    /// Keys that give feedback (input `feedback`).
    pub feedback_keys: Vec<FeedbackKey>,
}

impl HumanSeat {
    /// The feedback keys, as the participant is told them and as they are
    /// recorded with each game (`[{"key", "value"}]`).
    fn feedback_views(&self) -> Vec<tandem_wire::FeedbackKey> {
        self.feedback_keys
            .iter()
            .map(|f| tandem_wire::FeedbackKey {
                key: f.key.clone(),
                value: f.value,
            })
            .collect()
    }
}

/// A seat a policy plays.
#[derive(Clone, Debug, PartialEq)]
pub struct AiSeat {
    pub policy: PolicyRef,
    /// Replaces `policy` if it fails mid-game.
    pub fallback: Option<PolicyRef>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SeatRole {
    Human(HumanSeat),
    Ai(AiSeat),
}

/// One agent's seat.
#[derive(Clone, Debug, PartialEq)]
pub struct SeatConfig {
    /// The agent's index in the environment's spec.
    pub agent: usize,
    pub agent_name: String,
    pub role: SeatRole,
}

impl SeatConfig {
    pub fn human(&self) -> Option<&HumanSeat> {
        match &self.role {
            SeatRole::Human(h) => Some(h),
            SeatRole::Ai(_) => None,
        }
    }

    /// The policy that takes this seat when its holder is gone or failed.
    pub fn fallback(&self) -> Option<&PolicyRef> {
        match &self.role {
            SeatRole::Human(h) => h.fallback.as_ref(),
            SeatRole::Ai(a) => a.fallback.as_ref(),
        }
    }

    /// Every policy the seat names, for checking that each can serve it.
    pub fn policies(&self) -> Vec<&PolicyRef> {
        match &self.role {
            SeatRole::Human(h) => h.policy.iter().chain(&h.fallback).collect(),
            SeatRole::Ai(a) => std::iter::once(&a.policy).chain(&a.fallback).collect(),
        }
    }

    /// Every key name the seat's participant may press, in order of first use.
    pub fn key_names(&self) -> Vec<String> {
        let Some(human) = self.human() else {
            return Vec::new();
        };
        let mut names: Vec<String> = human
            .keys
            .iter()
            .flat_map(|k| k.key_names().iter().cloned())
            .collect();
        for f in &human.feedback_keys {
            if !names.contains(&f.key) {
                names.push(f.key.clone());
            }
        }
        names
    }

    /// The seat as recorded with each game.
    pub fn to_json(&self) -> Value {
        let policy = |p: Option<&PolicyRef>| p.map(|p| p.name.clone());
        match &self.role {
            SeatRole::Human(h) => json!({
                "agent": self.agent_name,
                "human": true,
                "input": h.input.name(),
                "policy": policy(h.policy.as_ref()),
                "fallback": policy(h.fallback.as_ref()),
                "keys": h.keys.as_ref().map(KeyMap::to_json),
                "feedback": crate::scene::to_json(&h.feedback_views()),
            }),
            SeatRole::Ai(a) => json!({
                "agent": self.agent_name,
                "ai": a.policy.name,
                "fallback": policy(a.fallback.as_ref()),
            }),
        }
    }

    /// What the participant in this seat is told about it.
    pub fn view(&self) -> SeatView {
        let human = self.human();
        SeatView {
            agent: self.agent,
            agent_name: self.agent_name.clone(),
            input: human.map(|h| h.input.into()),
            keys: self.key_names(),
            feedback: human.map(HumanSeat::feedback_views),
        }
    }

    /// [`SeatConfig::view`] as JSON.
    pub fn client_json(&self) -> Value {
        crate::scene::to_json(&self.view())
    }
}

/// What reading a scene's seats needs from the scene and the experiment.
pub(crate) struct SeatContext<'a> {
    pub(crate) env: &'a EnvSpec,
    /// The environment's own key map (Gymnasium's `get_keys_to_action`), used
    /// when the file gives none.
    pub(crate) default_keys: Option<&'a [DefaultKey]>,
    /// The scene-level `keys` field: the default key map of human seats.
    pub(crate) scene_keys: Option<Field<'a>>,
    /// The scene-level `default_action` field.
    pub(crate) scene_default: Option<Field<'a>>,
    /// Names of the experiment's `[policy.NAME]` tables.
    pub(crate) policy_names: &'a [String],
}

/// The seat of a one-agent environment in a scene without `[[scene.seat]]`: a
/// human choosing actions with the scene's key map.
pub(crate) fn read_single(
    problems: &mut Problems,
    scene: &Table,
    ctx: &SeatContext,
) -> Result<Vec<SeatConfig>, Reported> {
    let agent = &ctx.env.agents[0];
    let keys = read_keymap(problems, scene, None, ctx, 0)?;
    Ok(vec![SeatConfig {
        agent: 0,
        agent_name: agent.name.clone(),
        role: SeatRole::Human(HumanSeat {
            input: InputKind::Action,
            keys: Some(keys),
            policy: None,
            fallback: None,
            feedback_keys: Vec::new(),
        }),
    }])
}

/// Reads `[[scene.seat]]` tables: exactly one per agent of the environment.
pub(crate) fn read_seats(
    problems: &mut Problems,
    field: &Field,
    ctx: &SeatContext,
) -> Result<Vec<SeatConfig>, Reported> {
    let tables = field.tables(problems)?;
    let names: Vec<&str> = ctx.env.agents.iter().map(|a| a.name.as_str()).collect();
    let mut seats: Vec<Option<SeatConfig>> = vec![None; names.len()];
    let mut result = Ok(());
    for table in &tables {
        table.deny_unknown(problems, "a seat", SEAT_FIELDS, |_| None);
        match read_seat(problems, table, ctx, &names) {
            Ok(seat) => {
                let agent = seat.agent;
                if seats[agent].is_some() {
                    let at = table.field("agent");
                    let message = format!("agent {:?} already has a seat", names[agent]);
                    result = Err(match at {
                        Some(at) => at.report(problems, message),
                        None => problems.report(table.span(), table.child_path("agent"), message),
                    });
                } else {
                    seats[agent] = Some(seat);
                }
            }
            Err(r) => result = Err(r),
        }
    }
    result?;
    let missing: Vec<&str> = seats
        .iter()
        .zip(&names)
        .filter(|(s, _)| s.is_none())
        .map(|(_, n)| *n)
        .collect();
    if !missing.is_empty() {
        return Err(field.report(
            problems,
            format!(
                "{} has agents {}; give each a [[scene.seat]] (missing: {})",
                ctx.env.id,
                names.join(", "),
                missing.join(", ")
            ),
        ));
    }
    Ok(seats.into_iter().flatten().collect())
}

fn read_seat(
    problems: &mut Problems,
    table: &Table,
    ctx: &SeatContext,
    names: &[&str],
) -> Result<SeatConfig, Reported> {
    let agent = match table.field("agent") {
        None if names.len() == 1 => Ok(0),
        None => Err(table.missing(
            problems,
            "agent",
            &format!(": the agent this seat plays, one of {}", names.join(", ")),
        )),
        Some(field) => {
            let name = field.string(problems)?;
            names.iter().position(|n| *n == name).ok_or_else(|| {
                field.report(
                    problems,
                    format!(
                        "{} has no agent {name:?}{}; its agents are {}",
                        ctx.env.id,
                        did_you_mean(name, names),
                        names.join(", ")
                    ),
                )
            })
        }
    }?;
    let human = table.opt_bool(problems, "human")?;
    let ai = read_policy(problems, table, "ai", ctx)?;
    let fallback = read_policy(problems, table, "fallback", ctx)?;
    let agent_name = names[agent].to_string();
    let role = match (human, ai) {
        (Some(true), None) => SeatRole::Human(read_human(problems, table, ctx, agent, fallback)?),
        (None | Some(false), Some(policy)) => {
            for key in ["input", "policy", "keys", "default_action", "feedback"] {
                if let Some(field) = table.field(key) {
                    return Err(field.report(
                        problems,
                        format!("{key:?} belongs to human seats; this seat is played by ai"),
                    ));
                }
            }
            SeatRole::Ai(AiSeat { policy, fallback })
        }
        _ => {
            return Err(problems.report(
                table.span(),
                table.child_path("human"),
                "a seat needs exactly one of human = true or ai = \"<policy>\"",
            ));
        }
    };
    Ok(SeatConfig {
        agent,
        agent_name,
        role,
    })
}

fn read_human(
    problems: &mut Problems,
    table: &Table,
    ctx: &SeatContext,
    agent: usize,
    fallback: Option<PolicyRef>,
) -> Result<HumanSeat, Reported> {
    let input = match table.field("input") {
        None => InputKind::Action,
        Some(field) => match field.string(problems)? {
            "action" => InputKind::Action,
            "feedback" => InputKind::Feedback,
            "correction" => InputKind::Correction,
            other => {
                return Err(field.report(
                    problems,
                    format!(
                        "input must be \"action\", \"feedback\" or \"correction\", not {other:?}{}",
                        did_you_mean(other, &["action", "feedback", "correction"])
                    ),
                ));
            }
        },
    };
    let policy = read_policy(problems, table, "policy", ctx)?;
    match (input, &policy) {
        (InputKind::Action, Some(_)) => {
            if let Some(field) = table.field("policy") {
                return Err(field.report(
                    problems,
                    "policy acts for feedback and correction seats; with input = \"action\" \
                     the participant's keys choose every action",
                ));
            }
        }
        (InputKind::Feedback | InputKind::Correction, None) => {
            return Err(table.missing(
                problems,
                "policy",
                &format!(
                    ": the policy that acts while the participant gives {}",
                    input.name()
                ),
            ));
        }
        _ => {}
    }
    let keys = match input {
        InputKind::Feedback => {
            if let Some(field) = table.field("keys") {
                return Err(field.report(
                    problems,
                    "a feedback seat's keys give feedback: map them in [scene.seat.feedback]",
                ));
            }
            None
        }
        _ => Some(read_keymap(problems, table, Some(table), ctx, agent)?),
    };
    let feedback_keys = match (input, table.field("feedback")) {
        (InputKind::Feedback, Some(field)) => read_feedback(problems, &field)?,
        (InputKind::Feedback, None) => vec![
            FeedbackKey {
                key: "ArrowUp".into(),
                value: 1.0,
            },
            FeedbackKey {
                key: "ArrowDown".into(),
                value: -1.0,
            },
        ],
        (_, Some(field)) => {
            return Err(field.report(
                problems,
                "feedback keys belong to seats with input = \"feedback\"",
            ));
        }
        (_, None) => Vec::new(),
    };
    Ok(HumanSeat {
        input,
        keys,
        policy,
        fallback,
        feedback_keys,
    })
}

/// Reads the key map of agent `agent`: the seat's own `keys` and
/// `default_action` if it has them, else the scene's. Missing fields are
/// reported at `at`.
fn read_keymap(
    problems: &mut Problems,
    at: &Table,
    seat: Option<&Table>,
    ctx: &SeatContext,
    agent: usize,
) -> Result<KeyMap, Reported> {
    let env_id = ctx.env.id.as_str();
    let space = &ctx.env.agents[agent].action_space;
    let keys = seat
        .and_then(|s| s.field("keys"))
        .or_else(|| ctx.scene_keys.clone());
    let default = seat
        .and_then(|s| s.field("default_action"))
        .or_else(|| ctx.scene_default.clone());
    // The environment's own key map stands in for a missing table, for the
    // first agent (the one Gymnasium's map is for), with the space's first
    // action (Atari's NOOP) while nothing is held.
    let env_keys = ctx.default_keys.filter(|_| agent == 0 && keys.is_none());
    let bindings = match (keys, env_keys) {
        (Some(field), _) => read_keys(problems, &field, Ok((env_id, space))),
        (None, Some(env_keys)) => Ok(env_bindings(env_keys, space)),
        (None, None) => Err(at.missing(
            problems,
            "keys",
            ": a keys table mapping key names to actions, such as ArrowLeft = 0",
        )),
    };
    let default_action = match default {
        None if env_keys.is_some() => Ok(first_action(space)),
        None => Err(at.missing(
            problems,
            "default_action",
            ": the action played while no mapped key is held",
        )),
        Some(field) => read_action(problems, &field, env_id, space),
    };
    Ok(KeyMap::new(bindings?, default_action?))
}

/// An environment's own key map as bindings: entries whose action is not in
/// the agent's space are left out, so a running game never meets one.
fn env_bindings(keys: &[DefaultKey], space: &Space) -> Vec<KeyBinding> {
    keys.iter()
        .filter(|k| space.contains(&k.action))
        .map(|k| KeyBinding {
            chord: k.keys.join("+"),
            keys: k.keys.clone(),
            action: k.action.clone(),
        })
        .collect()
}

/// The first action of a space: 0 (or `start`) of a discrete one, the low
/// corner of a box.
fn first_action(space: &Space) -> Action {
    match space {
        Space::Discrete { start, .. } => Action::Discrete(*start),
        Space::MultiDiscrete { start, .. } => Action::MultiDiscrete(start.clone()),
        Space::Box { low, .. } => Action::Continuous(low.iter().map(|&v| v as f32).collect()),
    }
}

fn read_feedback(problems: &mut Problems, field: &Field) -> Result<Vec<FeedbackKey>, Reported> {
    let table = field.table(problems)?;
    let mut keys = Ok(Vec::new());
    for entry in table.fields() {
        let key = match parse_chord(entry.key) {
            Ok(chord) if chord.len() == 1 => Ok(chord[0].clone()),
            Ok(_) => Err(entry.report_key(problems, "a feedback key is one key, not a chord")),
            Err(e) => Err(entry.report_key(problems, e.message())),
        };
        let value = entry.item.as_value().and_then(as_number).ok_or_else(|| {
            entry.report(problems, "a feedback value is a number, such as 1 or -0.5")
        });
        match (&mut keys, key, value) {
            (Ok(keys), Ok(key), Ok(value)) => keys.push(FeedbackKey { key, value }),
            (_, Err(r), _) | (_, _, Err(r)) => keys = Err(r),
            _ => {}
        }
    }
    let keys = keys?;
    if keys.is_empty() {
        return Err(field.report(
            problems,
            "the feedback map is empty: map at least one key, such as ArrowUp = 1",
        ));
    }
    Ok(keys)
}

/// Reads a policy name: a built-in or one of the experiment's `[policy.NAME]`.
fn read_policy(
    problems: &mut Problems,
    table: &Table,
    key: &str,
    ctx: &SeatContext,
) -> Result<Option<PolicyRef>, Reported> {
    let Some(field) = table.field(key) else {
        return Ok(None);
    };
    let name = field.string(problems)?;
    let known: Vec<&str> = tandem_policy::BUILTIN_NAMES
        .iter()
        .copied()
        .chain(ctx.policy_names.iter().map(String::as_str))
        .collect();
    if !known.contains(&name) {
        return Err(field.report(
            problems,
            format!(
                "unknown policy {name:?}{}; known policies: {} (define others in [policy.NAME] tables)",
                did_you_mean(name, &known),
                known.join(", ")
            ),
        ));
    }
    let (line, column) = problems.lines().position(field.span.start);
    Ok(Some(PolicyRef {
        name: name.to_string(),
        location: format!("{}:{line}:{column}: {}", problems.file(), field.path),
    }))
}
