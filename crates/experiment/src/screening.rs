//! Screening scenes: checks the server makes before a participant starts,
//! so that nobody whose connection, keyboard, window or browser cannot run
//! the study plays it badly (or not at all) and is paid for it.
//!
//! The page reports its window size and whether a real key was pressed; the
//! server measures the round trip itself (the median of several probes over
//! the participant's socket), and reads the browser from the request that
//! made the participant. Who fails sees the scene's own "screened out" page,
//! with its own completion code or redirect (Prolific has one for screened
//! out), and is finished there. What was measured is recorded either way.

use tandem_wire::{EndView, ScreeningView};

use crate::end::{self, EarlyEnd, ExternalIds};
use crate::error::{Problems, Reported};
use crate::markdown;
use crate::reader::Table;
use crate::scene::Head;

/// Fields of a screening scene besides `kind`, `id` and `title`.
pub(crate) const FIELDS: &[&str] = &[
    "markdown",
    "max_rtt_ms",
    "pings",
    "min_width",
    "min_height",
    "keyboard",
    "browsers",
    "screened_out_markdown",
    "screened_out_code",
    "screened_out_redirect",
];

/// Browsers a screening scene may name.
pub const BROWSERS: &[&str] = &["chrome", "edge", "firefox", "safari", "opera", "other"];

/// Round-trip probes by default.
const DEFAULT_PINGS: u32 = 5;

const DEFAULT_SCREENED_OUT: &str = "Thank you for your interest. Unfortunately your \
     setup does not meet this study's requirements, so you cannot take part.";

/// A check before the study starts.
#[derive(Clone, Debug, PartialEq)]
pub struct ScreeningScene {
    pub id: String,
    pub title: String,
    /// What the page says while it checks.
    pub html: String,
    /// The slowest median round trip over the socket that passes.
    pub max_rtt_ms: Option<u32>,
    /// Probes the median is taken over.
    pub pings: u32,
    /// The smallest window (CSS pixels) that passes.
    pub min_width: Option<u32>,
    pub min_height: Option<u32>,
    /// A key must be pressed on a keyboard to pass.
    pub keyboard: bool,
    /// The browsers that pass (see [`BROWSERS`]); any when `None`.
    pub browsers: Option<Vec<String>>,
    /// The page for those who do not pass.
    pub screened_out: EarlyEnd,
}

/// What was measured for one participant.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// Round trips over the socket, in milliseconds, in the order measured.
    pub rtts_ms: Vec<f64>,
    pub width: u32,
    pub height: u32,
    /// A key was pressed (a trusted key event, not a script's).
    pub key: bool,
    /// The browser, one of [`BROWSERS`].
    pub browser: String,
}

impl Measured {
    /// The median round trip, if any was measured.
    pub fn median_rtt_ms(&self) -> Option<f64> {
        let mut sorted = self.rtts_ms.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some(sorted[n / 2]),
            _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
        }
    }
}

impl ScreeningScene {
    /// The scene as the participant page receives it.
    pub fn view(&self) -> ScreeningView {
        ScreeningView {
            id: self.id.clone(),
            title: self.title.clone(),
            html: self.html.clone(),
            keyboard: self.keyboard,
            min_width: self.min_width,
            min_height: self.min_height,
        }
    }

    /// Why `m` does not pass, one reason per failed check; empty when it does.
    pub fn failures(&self, m: &Measured) -> Vec<String> {
        let mut reasons = Vec::new();
        if let Some(max) = self.max_rtt_ms {
            match m.median_rtt_ms() {
                None => reasons.push("no round trip could be measured".to_string()),
                Some(rtt) if rtt > f64::from(max) => {
                    reasons.push(format!("round trip {rtt:.0} ms is over {max} ms"))
                }
                Some(_) => {}
            }
        }
        if self.min_width.is_some_and(|w| m.width < w)
            || self.min_height.is_some_and(|h| m.height < h)
        {
            reasons.push(format!(
                "window {}×{} is smaller than {}×{}",
                m.width,
                m.height,
                self.min_width.unwrap_or(0),
                self.min_height.unwrap_or(0)
            ));
        }
        if self.keyboard && !m.key {
            reasons.push("no key was pressed on a keyboard".to_string());
        }
        if let Some(allowed) = &self.browsers
            && !allowed.contains(&m.browser)
        {
            reasons.push(format!(
                "browser {} is not one of {}",
                m.browser,
                allowed.join(", ")
            ));
        }
        reasons
    }

    /// The page a participant who did not pass sees: an end page with the
    /// scene's screened-out text, code and redirect.
    pub fn screened_out_view(&self, ids: &ExternalIds) -> EndView {
        self.screened_out.view(&self.id, "screened-out", ids)
    }
}

/// The browser a User-Agent names, as one of [`BROWSERS`].
pub fn browser_of(user_agent: &str) -> &'static str {
    let ua = user_agent;
    if ua.contains("Edg/") || ua.contains("Edge/") {
        "edge"
    } else if ua.contains("OPR/") || ua.contains("Opera") {
        "opera"
    } else if ua.contains("Firefox/") || ua.contains("FxiOS/") {
        "firefox"
    } else if ua.contains("Chrome/") || ua.contains("Chromium/") || ua.contains("CriOS/") {
        "chrome"
    } else if ua.contains("Safari/") {
        "safari"
    } else {
        "other"
    }
}

pub(crate) fn read(
    problems: &mut Problems,
    table: &Table,
    head: Result<Head, Reported>,
) -> Result<ScreeningScene, Reported> {
    let markdown = table.opt_str(problems, "markdown");
    let max_rtt_ms = table.opt_int(problems, "max_rtt_ms", 1..=60_000);
    let pings = table.opt_int(problems, "pings", 1..=20);
    let min_width = table.opt_int(problems, "min_width", 1..=10_000);
    let min_height = table.opt_int(problems, "min_height", 1..=10_000);
    let keyboard = table.opt_bool(problems, "keyboard");
    let browsers = read_browsers(problems, table);
    let screened_out =
        end::read_early_end(problems, table, "screened_out", DEFAULT_SCREENED_OUT, true);
    let head = head?;
    let markdown = markdown?.unwrap_or_else(|| {
        "We check your connection, window and keyboard before you start.".to_string()
    });
    let as_u32 = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
    Ok(ScreeningScene {
        id: head.id,
        title: head.title,
        html: markdown::to_html(&markdown),
        max_rtt_ms: as_u32(max_rtt_ms?),
        pings: as_u32(pings?).unwrap_or(DEFAULT_PINGS),
        min_width: as_u32(min_width?),
        min_height: as_u32(min_height?),
        keyboard: keyboard?.unwrap_or(false),
        browsers: browsers?,
        screened_out: screened_out?.unwrap_or_else(|| EarlyEnd {
            html: markdown::to_html(DEFAULT_SCREENED_OUT),
            code: None,
            redirect: None,
        }),
    })
}

fn read_browsers(problems: &mut Problems, table: &Table) -> Result<Option<Vec<String>>, Reported> {
    let Some(field) = table.field("browsers") else {
        return Ok(None);
    };
    let array = field.array(problems)?;
    let mut names = Vec::new();
    for value in array.iter() {
        match value.as_str() {
            Some(name) if BROWSERS.contains(&name) => names.push(name.to_string()),
            _ => {
                return Err(field.report(
                    problems,
                    format!("browsers are names from {}", BROWSERS.join(", ")),
                ));
            }
        }
    }
    if names.is_empty() {
        return Err(field.report(problems, "browsers must name at least one browser"));
    }
    Ok(Some(names))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scene;

    fn scene(fields: &str) -> Result<ScreeningScene, String> {
        let text = format!(
            "id = \"s\"\ntitle = \"S\"\n[[scene]]\nkind = \"screening\"\nid = \"check\"\n\
             title = \"Check\"\n{fields}\n[[scene]]\nkind = \"end\"\nid = \"end\"\n\
             title = \"End\"\nmarkdown = \"Done.\"\n"
        );
        match crate::parse(&text, "t.toml") {
            Ok(e) => match e.scenes.into_iter().next() {
                Some(Scene::Screening(s)) => Ok(s),
                other => Err(format!("{other:?}")),
            },
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn defaults_and_checks() {
        let s = scene("").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.pings, s.keyboard, s.max_rtt_ms), (5, false, None));
        let everyone = Measured {
            rtts_ms: vec![],
            width: 1,
            height: 1,
            key: false,
            browser: "other".into(),
        };
        assert!(
            s.failures(&everyone).is_empty(),
            "no thresholds, nobody fails"
        );

        let strict = scene(
            "max_rtt_ms = 100\nmin_width = 800\nmin_height = 600\nkeyboard = true\n\
             browsers = [\"chrome\", \"firefox\"]",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let good = Measured {
            rtts_ms: vec![400.0, 20.0, 30.0],
            width: 1024,
            height: 768,
            key: true,
            browser: "firefox".into(),
        };
        assert_eq!(
            good.median_rtt_ms(),
            Some(30.0),
            "one slow probe does not decide"
        );
        assert!(strict.failures(&good).is_empty());
        let bad = Measured {
            rtts_ms: vec![],
            width: 1024,
            height: 500,
            key: false,
            browser: "safari".into(),
        };
        assert_eq!(
            strict.failures(&bad).len(),
            4,
            "{:?}",
            strict.failures(&bad)
        );
    }

    #[test]
    fn mistakes_are_reported() {
        let e = scene("browsers = [\"netscape\"]").expect_err("unknown browser");
        assert!(e.contains("browsers are names from"), "{e}");
        let e = scene("screened_out_redirect = \"https://x.org/?cc={completion_code}\"")
            .expect_err("a code placeholder without a code");
        assert!(e.contains("no screened_out_code"), "{e}");
        let e = scene("max_rtt_ms = 0").expect_err("out of range");
        assert!(e.contains("max_rtt_ms"), "{e}");
        let e = scene("max_rtt = 100").expect_err("unknown field");
        assert!(e.contains("max_rtt"), "{e}");
    }

    #[test]
    fn browsers_from_user_agents() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/131.0.0.0 Safari/537.36";
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like \
                    Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
        let safari = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, \
                      like Gecko) Version/18.1 Safari/605.1.15";
        assert_eq!(browser_of(chrome), "chrome");
        assert_eq!(browser_of(edge), "edge");
        assert_eq!(browser_of(firefox), "firefox");
        assert_eq!(browser_of(safari), "safari");
        assert_eq!(browser_of("curl/8"), "other");
    }
}
