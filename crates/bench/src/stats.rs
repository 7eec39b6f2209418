//! Pooling the bots' samples into the run's figures: percentiles, rates, sums.
//!
//! Samples are kept exactly (microseconds as `u32`, one per frame interval or
//! input) and sorted once at the end: 2,000 sessions × 30 fps × 30 s is under two
//! million intervals, 7 MB, which is cheaper and simpler than a histogram and
//! gives exact percentiles. Percentiles use the nearest-rank definition, so p99
//! is a value that was actually observed.

use std::collections::BTreeMap;

use crate::bot::{BotReport, Trouble};

/// Frames, latencies and sizes pooled over all bots.
#[derive(Debug, Default)]
pub struct Pooled {
    pub connected: u64,
    pub reached_game: u64,
    pub finished: u64,
    pub connect_errors: u64,
    pub disconnects: u64,
    /// Up to a few distinct causes of connect errors and disconnects, for the table.
    pub trouble_samples: Vec<String>,
    pub server_errors: u64,
    /// The fps most bots played at.
    pub target_fps: Option<u32>,
    pub session_seconds: f64,
    pub frames: u64,
    pub reset_frames: u64,
    pub skipped_frames: u64,
    pub expected_frames: f64,
    /// Per-session frame rates (sessions in a game for at least `min_seconds`).
    pub rate_mean: Option<f64>,
    pub rate_min: Option<f64>,
    /// Sessions whose rate was under 99 % of the target fps, and how many
    /// sessions had a rate: one slow game among normal ones shows here.
    pub sessions_under_99pct: Option<u64>,
    pub rated_sessions: u64,
    pub intervals: Percentiles,
    pub latencies: Percentiles,
    /// Input-to-frame latency of inputs that waited over an episode's end.
    pub boundary_latencies: Percentiles,
    pub inputs_sent: u64,
    pub inputs_unacked: u64,
    pub sprite_frames: u64,
    pub sprite_bytes: u64,
    pub pixel_frames: u64,
    pub pixel_bytes: u64,
    /// Bots that reached a multiplayer scene, were seated in one, or were still
    /// in its lobby when told to stop.
    pub multiplayer: u64,
    pub seated: u64,
    pub waiting_at_end: u64,
    pub seated_with_ai: u64,
    pub reseats: u64,
    /// Lobby waits (scene to seat) of every seated bot.
    pub lobby_waits: Percentiles,
    pub lobby_messages: u64,
    pub notices: BTreeMap<String, u64>,
}

/// p50, p99 and max of a sample, in milliseconds.
#[derive(Debug, Default, Clone, Copy)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl Percentiles {
    pub fn of_micros(mut samples: Vec<u32>) -> Percentiles {
        samples.sort_unstable();
        let ms = |us: Option<u32>| us.map(|v| f64::from(v) / 1000.0);
        Percentiles {
            count: samples.len() as u64,
            p50_ms: ms(nearest_rank(&samples, 50.0)),
            p99_ms: ms(nearest_rank(&samples, 99.0)),
            max_ms: ms(samples.last().copied()),
        }
    }
}

/// The nearest-rank percentile `p` of sorted `samples`.
fn nearest_rank(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// How many distinct trouble causes the table lists.
const TROUBLE_SAMPLES: usize = 5;

impl Pooled {
    /// Pools `reports`; a session's own frame rate counts only if it sat in a
    /// game for at least `min_seconds` of the window (a few frames say little).
    pub fn from_reports(reports: Vec<BotReport>, min_seconds: f64) -> Pooled {
        let mut p = Pooled::default();
        let mut intervals = Vec::with_capacity(reports.iter().map(|r| r.intervals_us.len()).sum());
        let mut latencies = Vec::with_capacity(reports.iter().map(|r| r.latencies_us.len()).sum());
        let mut boundary_latencies = Vec::new();
        let mut lobby_waits = Vec::new();
        let mut rates = Vec::new();
        let mut fps_counts: std::collections::BTreeMap<u32, u64> = Default::default();
        for r in reports {
            p.connected += u64::from(r.connected);
            p.reached_game += u64::from(r.reached_game);
            p.finished += u64::from(r.finished);
            if let Some(trouble) = &r.trouble {
                let text = match trouble {
                    Trouble::Connect(cause) => {
                        p.connect_errors += 1;
                        format!("connect: {cause}")
                    }
                    Trouble::Disconnect(cause) => {
                        p.disconnects += 1;
                        format!("disconnect: {cause}")
                    }
                };
                if p.trouble_samples.len() < TROUBLE_SAMPLES && !p.trouble_samples.contains(&text) {
                    p.trouble_samples.push(text);
                }
            }
            p.server_errors += r.server_errors;
            if let Some(fps) = r.fps {
                *fps_counts.entry(fps).or_default() += 1;
            }
            p.session_seconds += r.game_seconds;
            p.expected_frames += r.expected_frames;
            p.frames += r.frames;
            p.reset_frames += r.reset_frames;
            p.skipped_frames += r.skipped_frames;
            if r.game_seconds >= min_seconds {
                rates.push(r.frames as f64 / r.game_seconds);
            }
            intervals.extend_from_slice(&r.intervals_us);
            latencies.extend_from_slice(&r.latencies_us);
            boundary_latencies.extend_from_slice(&r.boundary_latencies_us);
            p.inputs_sent += r.inputs_sent;
            p.inputs_unacked += r.inputs_unacked;
            p.sprite_frames += r.sprite_frames;
            p.sprite_bytes += r.sprite_bytes;
            p.pixel_frames += r.pixel_frames;
            p.pixel_bytes += r.pixel_bytes;
            p.multiplayer += u64::from(r.multiplayer);
            p.seated += u64::from(r.multiplayer && !r.lobby_waits_us.is_empty());
            p.waiting_at_end += u64::from(r.waiting_at_end);
            p.seated_with_ai += u64::from(r.seated_with_ai);
            p.reseats += r.reseats;
            lobby_waits.extend_from_slice(&r.lobby_waits_us);
            p.lobby_messages += r.lobby_messages;
            for (code, n) in r.notices {
                *p.notices.entry(code).or_default() += n;
            }
        }
        p.target_fps = fps_counts
            .into_iter()
            .max_by_key(|&(_, n)| n)
            .map(|(fps, _)| fps);
        if !rates.is_empty() {
            p.rate_mean = Some(rates.iter().sum::<f64>() / rates.len() as f64);
            p.rate_min = rates.iter().copied().reduce(f64::min);
            p.rated_sessions = rates.len() as u64;
            p.sessions_under_99pct = p.target_fps.map(|fps| {
                let floor = 0.99 * f64::from(fps);
                rates.iter().filter(|&&r| r < floor).count() as u64
            });
        }
        p.intervals = Percentiles::of_micros(intervals);
        p.latencies = Percentiles::of_micros(latencies);
        p.boundary_latencies = Percentiles::of_micros(boundary_latencies);
        p.lobby_waits = Percentiles::of_micros(lobby_waits);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nearest-rank percentiles pick observed values.
    #[test]
    fn percentiles() {
        let p = Percentiles::of_micros((1..=100).rev().map(|v| v * 1000).collect());
        assert_eq!(p.count, 100);
        assert_eq!(p.p50_ms, Some(50.0));
        assert_eq!(p.p99_ms, Some(99.0));
        assert_eq!(p.max_ms, Some(100.0));
        let one = Percentiles::of_micros(vec![33_000]);
        assert_eq!((one.p50_ms, one.p99_ms), (Some(33.0), Some(33.0)));
        assert_eq!(Percentiles::of_micros(vec![]).p99_ms, None);
    }

    /// Frames, expectations and trouble add up across bots.
    #[test]
    fn pools_reports() {
        let a = BotReport {
            connected: true,
            reached_game: true,
            fps: Some(30),
            game_seconds: 2.0,
            expected_frames: 60.0,
            frames: 60,
            reset_frames: 1,
            intervals_us: vec![33_000; 59],
            ..BotReport::default()
        };
        let b = BotReport {
            trouble: Some(Trouble::Connect("refused".into())),
            ..BotReport::default()
        };
        let p = Pooled::from_reports(vec![a, b], 1.0);
        assert_eq!((p.connected, p.connect_errors, p.frames), (1, 1, 60));
        assert_eq!(p.target_fps, Some(30));
        assert_eq!(p.rate_mean, Some(30.0));
        assert_eq!(p.intervals.p99_ms, Some(33.0));
        assert_eq!(p.trouble_samples, vec!["connect: refused".to_string()]);
    }

    /// Lobby waits, seated and waiting bots, and notices add up across bots.
    #[test]
    fn pools_lobby_figures() {
        let seated = BotReport {
            multiplayer: true,
            lobby_waits_us: vec![20_000],
            notices: [("partner_left".to_string(), 1)].into(),
            ..BotReport::default()
        };
        let waiting = BotReport {
            multiplayer: true,
            waiting_at_end: true,
            notices: [("partner_left".to_string(), 2)].into(),
            ..BotReport::default()
        };
        let p = Pooled::from_reports(vec![seated, waiting, BotReport::default()], 1.0);
        assert_eq!((p.multiplayer, p.seated, p.waiting_at_end), (2, 1, 1));
        assert_eq!(p.lobby_waits.count, 1);
        assert_eq!(p.lobby_waits.max_ms, Some(20.0));
        assert_eq!(p.notices.get("partner_left"), Some(&3));
    }
}
