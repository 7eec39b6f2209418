//! What one socket's page reports about timing, turned into records: every
//! input message (not only the latest per tick), when frames were drawn, clock
//! samples relating the page's clock to the server's, and the page becoming
//! hidden or losing focus.
//!
//! Each kind of report has a budget per socket (a token bucket), because a
//! hostile page could otherwise send thousands a second and every one becomes
//! a row: a person changes keys a few times a second and the page reports
//! frames twice a second, so the budgets are far above honest use. Inputs over
//! budget still play; they are only not recorded one by one, and the number
//! left out is logged when the socket closes. Clock answers count only for a
//! probe this session sent and has not heard back from.

use std::collections::VecDeque;

use serde_json::json;
use tandem_store::{ClockSample, DisplayRecord, InputRecord, Recorder, TimingRecord, now_us};
use tandem_wire::{ClockProbe, Input, PageState, ServerMessage};
use tokio::time::Instant;

use crate::connection::Connection;
use crate::sync::lock;
use crate::token_bucket::TokenBucket;

/// Inputs recorded one by one per second (a burst of twice as many).
const INPUTS_PER_SECOND: f64 = 60.0;
/// `shown` reports per second: the page sends about two.
const SHOWN_PER_SECOND: f64 = 4.0;
/// Visibility and focus changes per second.
const PAGE_EVENTS_PER_SECOND: f64 = 2.0;
/// Clock probes awaiting an answer; an older one is forgotten.
const OUTSTANDING_PROBES: usize = 4;
/// Probes sent a second apart when a socket opens: the page may be busy
/// loading when it reads the first, and the estimate to trust is the one
/// with the shortest round trip.
const PROBES_AT_OPEN: u32 = 3;
/// Between probes after that.
const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(15);
/// Between probes when round trips are being measured (a screening scene).
const PROBE_RAPIDLY: std::time::Duration = std::time::Duration::from_millis(200);
/// Round trips kept, the newest.
const RTTS_KEPT: usize = 16;

/// A token bucket of `per_second`, with a burst of two seconds' worth.
struct Budget {
    bucket: TokenBucket,
    per_second: f64,
}

impl Budget {
    fn new(per_second: f64) -> Budget {
        Budget {
            bucket: TokenBucket::full(2.0 * per_second, Instant::now()),
            per_second,
        }
    }

    fn take(&mut self) -> bool {
        self.bucket
            .take(Instant::now(), self.per_second, 2.0 * self.per_second)
    }
}

struct Probe {
    id: u64,
    sent: Instant,
    sent_us: i64,
}

/// One socket's timing reports.
pub(crate) struct PageTiming {
    inputs: Budget,
    shown: Budget,
    page_events: Budget,
    probes: VecDeque<Probe>,
    next_probe: u64,
    /// When the session should send the next probe.
    pub(crate) probe_at: Instant,
    /// Probes still to send rapidly, for a measurement.
    rapid: u32,
    /// The latest round trips, in milliseconds.
    rtts_ms: VecDeque<f64>,
    /// The first probe of the measurement under way: answers to older
    /// probes do not count in it.
    measuring_from: Option<u64>,
    /// Reports over budget, not recorded.
    pub(crate) left_out: u64,
}

impl PageTiming {
    pub(crate) fn new() -> PageTiming {
        PageTiming {
            inputs: Budget::new(INPUTS_PER_SECOND),
            shown: Budget::new(SHOWN_PER_SECOND),
            page_events: Budget::new(PAGE_EVENTS_PER_SECOND),
            probes: VecDeque::with_capacity(OUTSTANDING_PROBES),
            next_probe: 1,
            // The session sends the first probe as the socket opens.
            probe_at: Instant::now(),
            rapid: 0,
            rtts_ms: VecDeque::with_capacity(RTTS_KEPT),
            measuring_from: None,
            left_out: 0,
        }
    }

    /// Sends a clock probe, remembering when, and schedules the next: three a
    /// second apart as the socket opens, then one every 15 s.
    pub(crate) fn probe(&mut self, connection: &Connection) {
        // During a measurement slow answers must not be forgotten (that
        // would leave only the fast ones): room for every measurement probe.
        let room = OUTSTANDING_PROBES
            + if self.measuring_from.is_some() {
                RTTS_KEPT
            } else {
                0
            };
        while self.probes.len() >= room {
            self.probes.pop_front();
        }
        let id = self.next_probe;
        self.next_probe += 1;
        let gap = if self.rapid > 0 {
            self.rapid -= 1;
            PROBE_RAPIDLY
        } else if id < u64::from(PROBES_AT_OPEN) {
            std::time::Duration::from_secs(1)
        } else {
            PROBE_EVERY
        };
        self.probe_at = Instant::now() + gap;
        self.probes.push_back(Probe {
            id,
            sent: Instant::now(),
            sent_us: now_us(),
        });
        connection.send(ServerMessage::Clock(ClockProbe { id }));
    }

    /// Starts measuring `count` fresh round trips: probes go out now and every
    /// 200 ms until that many were sent; [`PageTiming::rtts_ms`] fills as the
    /// page answers.
    pub(crate) fn measure_rtts(&mut self, count: u32) {
        self.rtts_ms.clear();
        self.rapid = count.min(RTTS_KEPT as u32);
        self.measuring_from = Some(self.next_probe);
        self.probe_at = Instant::now();
    }

    /// The round trips measured since [`PageTiming::measure_rtts`] (or since
    /// the socket opened), in milliseconds, oldest first.
    pub(crate) fn rtts_ms(&self) -> Vec<f64> {
        self.rtts_ms.iter().copied().collect()
    }

    /// Records an input the socket accepted, with where its keys went
    /// (`place`, read under the same lock that applied them).
    pub(crate) fn input(
        &mut self,
        recorder: &Recorder,
        connection: &Connection,
        input: &Input,
        place: Option<(i64, Option<i64>)>,
    ) {
        if !self.inputs.take() {
            self.left_out += 1;
            return;
        }
        recorder.record_timing(TimingRecord::Input(InputRecord {
            participant_id: connection.participant_id,
            game_id: place.map(|(game, _)| game),
            episode_id: place.and_then(|(_, episode)| episode),
            seq: input.seq,
            keys: input.keys.clone(),
            client_ts: input.ts.filter(|t| t.is_finite()),
            client_frame: input.frame,
            tick: input.tick,
            server_us: now_us(),
        }));
    }

    /// Records when the page drew frames.
    pub(crate) fn shown(
        &mut self,
        recorder: &Recorder,
        connection: &Connection,
        frames: Vec<(u64, f64)>,
    ) {
        if !self.shown.take() {
            self.left_out += 1;
            return;
        }
        let frames: Vec<(u64, f64)> = frames.into_iter().filter(|(_, t)| t.is_finite()).collect();
        if frames.is_empty() {
            return;
        }
        let place = lock(&connection.input).place;
        recorder.record_timing(TimingRecord::Displays(DisplayRecord {
            participant_id: connection.participant_id,
            game_id: place.map(|(game, _)| game),
            frames,
            server_us: now_us(),
        }));
    }

    /// Records a clock sample from the answer to probe `id`; an answer to no
    /// probe of this session's is ignored.
    pub(crate) fn clock(&mut self, recorder: &Recorder, connection: &Connection, id: u64, t: f64) {
        let Some(at) = self.probes.iter().position(|p| p.id == id) else {
            return;
        };
        let Some(probe) = self.probes.remove(at) else {
            return;
        };
        if !t.is_finite() {
            return;
        }
        let rtt_us = i64::try_from(probe.sent.elapsed().as_micros()).unwrap_or(i64::MAX);
        if self.measuring_from.is_none_or(|first| id >= first) {
            if self.rtts_ms.len() == RTTS_KEPT {
                self.rtts_ms.pop_front();
            }
            self.rtts_ms.push_back(rtt_us as f64 / 1000.0);
        }
        // The page read the probe halfway through the round trip.
        let server_at_answer = probe.sent_us.saturating_add(rtt_us / 2);
        let page_us = (t * 1000.0) as i64;
        recorder.record_timing(TimingRecord::Clock(ClockSample {
            participant_id: connection.participant_id,
            server_us: probe.sent_us.saturating_add(rtt_us),
            rtt_us,
            offset_us: server_at_answer.saturating_sub(page_us),
        }));
    }

    /// Records the page becoming visible or hidden, or gaining or losing focus.
    pub(crate) fn page(
        &mut self,
        recorder: &Recorder,
        connection: &Connection,
        state: PageState,
        t: Option<f64>,
    ) {
        if !self.page_events.take() {
            self.left_out += 1;
            return;
        }
        let game_id = lock(&connection.input).place.map(|(game, _)| game);
        recorder.record_event(
            Some(connection.participant_id),
            game_id,
            "page",
            json!({"state": state.as_str(), "t": t.filter(|t| t.is_finite())}),
        );
    }
}
