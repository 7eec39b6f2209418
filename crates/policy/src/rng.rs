//! The random generator policies sample with: ChaCha8, keyed by the episode
//! seed and set to a stream chosen by the seat.
//!
//! Keying by the episode seed makes a sampled episode replayable from its seed,
//! which is how Tandem re-simulates recordings. The seat picks the ChaCha
//! stream so that two AI seats in one game, which get the same episode seed,
//! do not draw the same numbers and mirror each other.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The generator for seat `agent` in the episode started from `seed`.
pub(crate) fn episode_rng(seed: u64, agent: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(agent as u64);
    rng
}

#[cfg(test)]
mod tests {
    use rand::RngExt;

    use super::*;

    /// Same seed and seat, same numbers; another seat, other numbers.
    #[test]
    fn seeded_per_episode_and_seat() {
        let draw = |seed, agent| -> Vec<u64> {
            let mut rng = episode_rng(seed, agent);
            (0..4).map(|_| rng.random()).collect()
        };
        assert_eq!(draw(7, 0), draw(7, 0));
        assert_ne!(draw(7, 0), draw(7, 1));
        assert_ne!(draw(7, 0), draw(8, 0));
    }
}
