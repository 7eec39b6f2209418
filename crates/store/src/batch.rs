//! What the writer buffers between commits, in the form every backend writes:
//! episode starts, steps and the rest (episode ends, events), with observations
//! already encoded into `obs_codec` blobs and actions into JSON.
//!
//! Encoding happens here, as records arrive, rather than in a backend: the blob
//! format is the same whatever database stores it, and the delta chain (each
//! large observation stored against the agent's previous one) depends on the
//! order records arrive in, which only the writer sees.

use std::collections::HashMap;

use tandem_env::Observation;
use tracing::warn;

use crate::columns::client_u64;
use crate::obs_codec::{DELTA_MIN_LEN, KEYFRAME_INTERVAL, ObsEncoder, payload_len};
use crate::queue::QueuedEvent;
use crate::{EpisodeEnd, EpisodeStart, StepRecord};

/// Bookkeeping bytes counted per buffered row besides its blobs and strings.
const ROW_OVERHEAD: usize = 96;

/// Records not yet committed, each list in arrival order.
#[derive(Default)]
pub(crate) struct Batch {
    /// Episode starts: written first, so that their steps find them.
    pub(crate) starts: Vec<PendingStart>,
    pub(crate) steps: Vec<EncodedStep>,
    /// Episode ends and events: written after `steps`, so that an end is never
    /// stored without the steps sent before it.
    pub(crate) ops: Vec<Op>,
}

impl Batch {
    pub(crate) fn is_empty(&self) -> bool {
        self.starts.is_empty() && self.steps.is_empty() && self.ops.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.starts.clear();
        self.steps.clear();
        self.ops.clear();
    }
}

/// A buffered episode start, with the id the recorder gave it.
pub(crate) struct PendingStart {
    pub(crate) id: i64,
    /// The start as recorded, its reset observations emptied (see `blobs`).
    pub(crate) start: EpisodeStart,
    /// The agents' reset observations, encoded, in agent order.
    pub(crate) blobs: Vec<Vec<u8>>,
}

impl PendingStart {
    /// Approximate memory held, for the writer's cap.
    pub(crate) fn bytes(&self) -> usize {
        ROW_OVERHEAD + self.blobs.iter().map(Vec::len).sum::<usize>()
    }
}

/// A step whose observations are encoded and actions serialized, ready to bind.
pub(crate) struct EncodedStep {
    pub(crate) episode_id: i64,
    pub(crate) t: i64,
    pub(crate) server_us: i64,
    pub(crate) tick: Option<i64>,
    /// In agent order: an agent's index is its position here.
    pub(crate) agents: Vec<EncodedAgent>,
}

impl EncodedStep {
    /// Approximate memory held, for the writer's cap.
    pub(crate) fn bytes(&self) -> usize {
        self.agents
            .iter()
            .map(|a| {
                ROW_OVERHEAD
                    + a.obs.len()
                    + a.action.len()
                    + a.actor.len()
                    + a.keys.as_ref().map_or(0, String::len)
            })
            .sum()
    }
}

/// One agent's row of an [`EncodedStep`].
pub(crate) struct EncodedAgent {
    /// The action as JSON.
    pub(crate) action: String,
    pub(crate) actor: String,
    pub(crate) source: &'static str,
    pub(crate) keys: Option<String>,
    pub(crate) reward: f64,
    pub(crate) terminated: bool,
    pub(crate) truncated: bool,
    /// The observation in the `obs_codec` format.
    pub(crate) obs: Vec<u8>,
    /// Client values that do not fit a signed 64-bit integer are `None`.
    pub(crate) input_seq: Option<i64>,
    pub(crate) client_frame: Option<i64>,
    pub(crate) client_ts: Option<f64>,
    pub(crate) feedback: Option<f64>,
}

/// A buffered write other than an episode start or a step.
pub(crate) enum Op {
    EndEpisode { episode_id: i64, end: EpisodeEnd },
    Event(QueuedEvent),
    Timing(crate::TimingRecord),
}

impl Op {
    /// Approximate memory held, for the writer's cap.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            Op::Timing(record) => ROW_OVERHEAD * record.rows(),
            _ => ROW_OVERHEAD,
        }
    }
}

/// Turns records into rows. Keeps, per (episode, agent), the last large
/// observation encoded, which the next one is stored as a delta against (see
/// `obs_codec`).
pub(crate) struct Encoder {
    obs: ObsEncoder,
    previous_obs: HashMap<(i64, usize), Observation>,
}

impl Encoder {
    pub(crate) fn new() -> Self {
        Encoder {
            obs: ObsEncoder::new(),
            previous_obs: HashMap::new(),
        }
    }

    /// Encodes an episode's reset observations; a large one becomes the base of
    /// the agent's first step's delta.
    pub(crate) fn start(&mut self, id: i64, mut start: EpisodeStart) -> PendingStart {
        let blobs: Vec<Vec<u8>> = start
            .agents
            .iter()
            .map(|a| self.obs.encode(&a.reset_obs))
            .collect();
        for (agent, a) in start.agents.iter_mut().enumerate() {
            // The encoded blob is all the insert needs; the observation itself is
            // kept only as a delta base.
            let obs = std::mem::replace(&mut a.reset_obs, Observation::vector(Vec::new()));
            if payload_len(&obs) >= DELTA_MIN_LEN {
                self.previous_obs.insert((id, agent), obs);
            }
        }
        PendingStart { id, start, blobs }
    }

    /// Encodes a step: a large observation as a delta against the agent's
    /// previous one, except at key frames.
    pub(crate) fn step(&mut self, step: StepRecord) -> EncodedStep {
        let episode_id = step.episode_id;
        let keyframe = step.t.is_multiple_of(KEYFRAME_INTERVAL);
        let agents = step
            .agents
            .into_iter()
            .enumerate()
            .map(|(agent, a)| EncodedAgent {
                action: serde_json::to_string(&a.action).unwrap_or_else(|e| {
                    warn!(cause = %e, "an action could not be serialized; storing null");
                    "null".to_owned()
                }),
                actor: a.actor,
                source: a.source.as_str(),
                keys: a.keys,
                reward: a.reward,
                terminated: a.terminated,
                truncated: a.truncated,
                obs: {
                    // Small observations (most) never delta: skip the map for them.
                    let key = (episode_id, agent);
                    let large = payload_len(&a.obs) >= DELTA_MIN_LEN;
                    let previous = if large && !keyframe {
                        self.previous_obs.get(&key)
                    } else {
                        None
                    };
                    let blob = self.obs.encode_after(&a.obs, previous);
                    if large {
                        self.previous_obs.insert(key, a.obs);
                    }
                    blob
                },
                input_seq: client_u64(a.input_seq),
                client_frame: client_u64(a.client_frame),
                client_ts: a.client_ts,
                feedback: a.feedback,
            })
            .collect();
        EncodedStep {
            episode_id,
            t: i64::from(step.t),
            server_us: step.server_us,
            tick: step.tick.and_then(|t| i64::try_from(t).ok()),
            agents,
        }
    }

    /// Drops the episode's delta bases: at its end, or when one of its steps is
    /// dropped (the chain would break, so the next large observation is whole).
    pub(crate) fn forget(&mut self, episode_id: i64) {
        self.previous_obs
            .retain(|(episode, _), _| *episode != episode_id);
    }
}
