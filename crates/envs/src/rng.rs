//! The random numbers behind `reset(seed)`: NumPy's `SeedSequence` feeding a
//! `PCG64` generator, which is what Gymnasium's `env.np_random` is.
//!
//! Reproducing NumPy rather than using any good PRNG means that a Tandem episode
//! started with seed `s` begins in exactly the state Gymnasium's
//! `env.reset(seed=s)` gives, so a researcher can replay it in Python. The code
//! follows NumPy's `bit_generator.pyx` (SeedSequence) and `pcg64.h`
//! (PCG XSL-RR 128/64); the parity test in `python/tests` checks it against
//! NumPy itself. All arithmetic is integer, so it is the same on every target.

/// SeedSequence's hashing constants (NumPy `bit_generator.pyx`).
const INIT_A: u32 = 0x43b0_d7e5;
const MULT_A: u32 = 0x931e_8875;
const INIT_B: u32 = 0x8b51_f9dd;
const MULT_B: u32 = 0x58f3_8ded;
const MIX_MULT_L: u32 = 0xca01_f9dd;
const MIX_MULT_R: u32 = 0x4973_f715;
const XSHIFT: u32 = 16;
/// SeedSequence's default pool size, in 32-bit words.
const POOL_SIZE: usize = 4;

/// PCG's default 128-bit multiplier.
const PCG_MULTIPLIER: u128 = 0x2360_ed05_1fc6_5da4_4385_df64_9fcc_f645;

/// `numpy.random.Generator(PCG64(SeedSequence(seed)))`, reduced to the draws the
/// built-in environments make.
#[derive(Clone, Debug)]
pub(crate) struct GymRng {
    state: u128,
    inc: u128,
}

impl GymRng {
    /// The generator Gymnasium builds for `reset(seed=seed)`.
    pub(crate) fn from_seed(seed: u64) -> Self {
        let pool = seed_pool(seed);
        let words = generate_state(&pool);
        let initstate = (u128::from(words[0]) << 64) | u128::from(words[1]);
        let initseq = (u128::from(words[2]) << 64) | u128::from(words[3]);
        // pcg_setseq_128_srandom_r
        let mut rng = GymRng {
            state: 0,
            inc: (initseq << 1) | 1,
        };
        rng.advance();
        rng.state = rng.state.wrapping_add(initstate);
        rng.advance();
        rng
    }

    fn advance(&mut self) {
        self.state = self
            .state
            .wrapping_mul(PCG_MULTIPLIER)
            .wrapping_add(self.inc);
    }

    /// PCG64's next 64-bit output (XSL-RR of the advanced state).
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.advance();
        let hi = (self.state >> 64) as u64;
        let lo = self.state as u64;
        (hi ^ lo).rotate_right((hi >> 58) as u32)
    }

    /// A double in `[0, 1)` with 53 random bits, as NumPy's `random()`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// NumPy's `uniform(low, high)`: `low + (high - low) * random()`, in that order
    /// so the rounding matches too.
    pub(crate) fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.next_f64()
    }
}

/// SeedSequence's entropy pool for an integer seed (`mix_entropy`).
fn seed_pool(seed: u64) -> [u32; POOL_SIZE] {
    // NumPy splits an integer into little-endian 32-bit words, dropping high zero
    // words but keeping at least one.
    let entropy: Vec<u32> = if seed >> 32 == 0 {
        vec![seed as u32]
    } else {
        vec![seed as u32, (seed >> 32) as u32]
    };
    let mut hash_const = INIT_A;
    let mut hashmix = |value: u32| {
        let mut value = value ^ hash_const;
        hash_const = hash_const.wrapping_mul(MULT_A);
        value = value.wrapping_mul(hash_const);
        value ^ (value >> XSHIFT)
    };
    let mut pool = [0u32; POOL_SIZE];
    for (i, slot) in pool.iter_mut().enumerate() {
        *slot = hashmix(entropy.get(i).copied().unwrap_or(0));
    }
    for src in 0..POOL_SIZE {
        for dst in 0..POOL_SIZE {
            if src != dst {
                let hashed = hashmix(pool[src]);
                pool[dst] = mix(pool[dst], hashed);
            }
        }
    }
    // A u64 seed has at most two words, so never more than the pool holds: NumPy's
    // loop over surplus entropy words has nothing to do here.
    pool
}

fn mix(x: u32, y: u32) -> u32 {
    let result = MIX_MULT_L
        .wrapping_mul(x)
        .wrapping_sub(MIX_MULT_R.wrapping_mul(y));
    result ^ (result >> XSHIFT)
}

/// `SeedSequence.generate_state(4, uint64)`: eight 32-bit words viewed as four
/// little-endian 64-bit ones.
fn generate_state(pool: &[u32; POOL_SIZE]) -> [u64; 4] {
    let mut hash_const = INIT_B;
    let mut words = [0u32; 8];
    for (word, src) in words.iter_mut().zip(pool.iter().cycle()) {
        let mut value = *src ^ hash_const;
        hash_const = hash_const.wrapping_mul(MULT_B);
        value = value.wrapping_mul(hash_const);
        *word = value ^ (value >> XSHIFT);
    }
    let mut out = [0u64; 4];
    for (i, pair) in words.chunks_exact(2).enumerate() {
        out[i] = u64::from(pair[0]) | (u64::from(pair[1]) << 32);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed words match `SeedSequence(0).generate_state(4, np.uint64)`.
    #[test]
    fn seed_sequence_matches_numpy() {
        assert_eq!(
            generate_state(&seed_pool(0)),
            [
                0xdb2c_d7e7_b0f4_78be,
                0xabf4_641a_2c71_ba49,
                0x20c6_ed6d_9d7b_8d41,
                0x2c40_99de_223c_39d4
            ]
        );
    }

    /// The doubles match `np.random.Generator(np.random.PCG64(0)).random(3)`.
    #[test]
    fn doubles_match_numpy() {
        let mut rng = GymRng::from_seed(0);
        let draws = [rng.next_f64(), rng.next_f64(), rng.next_f64()];
        assert_eq!(
            draws,
            [0.6369616873214543, 0.2697867137638703, 0.04097352393619469]
        );
    }

    /// Two-word seeds (above 2^32) and `uniform` match NumPy as well.
    #[test]
    fn wide_seeds_and_uniform_match_numpy() {
        let mut rng = GymRng::from_seed((1 << 40) + 5);
        assert_eq!(
            [rng.next_f64(), rng.next_f64()],
            [0.004739459374490829, 0.3725845824112115]
        );
        let mut rng = GymRng::from_seed(u64::MAX);
        assert_eq!(
            [rng.next_f64(), rng.next_f64()],
            [0.6800266789616931, 0.8453117585624743]
        );
        let mut rng = GymRng::from_seed(42);
        let draws: Vec<f64> = (0..4).map(|_| rng.uniform(-0.05, 0.05)).collect();
        assert_eq!(
            draws,
            [
                0.027395604855596334,
                -0.006112156024794771,
                0.03585979199113824,
                0.019736802905936393
            ]
        );
    }
}
