//! Key names and chords: what a researcher may write on the left of a key map.
//!
//! Names are the browser's `KeyboardEvent.key` values, because that is what the
//! participant page reports, with the one exception the wire makes: the space bar
//! is `"Space"`, not `" "`. Letters are written lower-case; the page may report
//! `"A"` while Shift or Caps Lock is on, and a held key matches its binding either
//! way. A chord joins names with `+` (`"ArrowLeft+Space"`) and fires when all of its
//! keys are held. The list is deliberately closed: a typo in a key name would
//! otherwise be a key the participant can never press, found only after the study.

use crate::suggest::closest;

/// Every key name an experiment may bind, besides `a`–`z` and `0`–`9`.
const NAMED: &[&str] = &[
    "ArrowLeft",
    "ArrowRight",
    "ArrowUp",
    "ArrowDown",
    "Space",
    "Enter",
    "Shift",
    "Control",
    "Alt",
    "Escape",
    "Tab",
    "Backspace",
    "Delete",
    "Home",
    "End",
    "PageUp",
    "PageDown",
    "-",
    "=",
    "+",
    "[",
    "]",
    "\\",
    ";",
    "'",
    ",",
    ".",
    "/",
    "`",
];

/// Common names for keys whose `KeyboardEvent.key` is spelt differently.
const ALIASES: &[(&str, &str)] = &[
    ("Left", "ArrowLeft"),
    ("Right", "ArrowRight"),
    ("Up", "ArrowUp"),
    ("Down", "ArrowDown"),
    (" ", "Space"),
    ("Spacebar", "Space"),
    ("Return", "Enter"),
    ("Ctrl", "Control"),
    ("Esc", "Escape"),
    ("Option", "Alt"),
    ("Del", "Delete"),
    ("Plus", "+"),
    ("Minus", "-"),
];

/// Whether `name` is a key name an experiment may bind.
pub(crate) fn is_known(name: &str) -> bool {
    is_letter_or_digit(name) || NAMED.contains(&name)
}

fn is_letter_or_digit(name: &str) -> bool {
    let mut chars = name.chars();
    matches!((chars.next(), chars.next()), (Some(c), None) if c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// The known name a misspelt `name` most likely meant.
pub(crate) fn suggest(name: &str) -> Option<String> {
    let mut chars = name.chars();
    if let (Some(c), None) = (chars.next(), chars.next())
        && c.is_ascii_uppercase()
    {
        return Some(c.to_ascii_lowercase().to_string());
    }
    if let Some((_, to)) = ALIASES
        .iter()
        .find(|(from, _)| from.eq_ignore_ascii_case(name))
    {
        return Some((*to).to_string());
    }
    if name.chars().count() < 3 {
        // One- and two-letter names are too short to guess from.
        return None;
    }
    closest(name, NAMED).map(str::to_string)
}

/// Why a chord string is not a valid chord.
pub(crate) enum ChordError {
    /// A part is empty, as in `"a+"` or `"a++b"`.
    Empty,
    /// A part is not a known key name.
    Unknown { name: String, hint: Option<String> },
    /// The same key appears twice.
    Repeated(String),
}

impl ChordError {
    pub(crate) fn message(&self) -> String {
        match self {
            ChordError::Empty => "a chord joins key names with \"+\", as in \"ArrowLeft+Space\"; \
                 one of its parts is empty"
                .to_string(),
            ChordError::Unknown { name, hint } => {
                let hint = hint
                    .as_ref()
                    .map(|h| format!(" (did you mean {h:?}?)"))
                    .unwrap_or_default();
                format!(
                    "unknown key name {name:?}{hint}; key names are KeyboardEvent.key values \
                     such as \"ArrowLeft\", \"a\", \"1\", \"Enter\" or \"Space\""
                )
            }
            ChordError::Repeated(name) => format!("the key {name:?} appears twice in this chord"),
        }
    }
}

/// Splits a key-map entry into its key names, checking each. `"+"` alone is the
/// plus key; inside a chord it would be ambiguous, so it is not allowed there.
pub(crate) fn parse_chord(chord: &str) -> Result<Vec<String>, ChordError> {
    if chord == "+" {
        return Ok(vec!["+".to_string()]);
    }
    let mut keys: Vec<String> = Vec::new();
    for part in chord.split('+') {
        if part.is_empty() {
            return Err(ChordError::Empty);
        }
        if !is_known(part) {
            return Err(ChordError::Unknown {
                name: part.to_string(),
                hint: suggest(part),
            });
        }
        if keys.iter().any(|k| k == part) {
            return Err(ChordError::Repeated(part.to_string()));
        }
        keys.push(part.to_string());
    }
    Ok(keys)
}

/// Whether the browser-reported `held` names include binding key `key`, allowing
/// for the shifted form of a letter and the literal `" "` for Space.
pub(crate) fn is_held(key: &str, held: &[String]) -> bool {
    held.iter().any(|h| key_matches(key, h))
}

/// Whether the browser's key name `reported` is binding key `key`, allowing for
/// the shifted form of a letter and the literal `" "` for Space.
pub fn key_matches(key: &str, reported: &str) -> bool {
    reported == key
        || (key.len() == 1 && reported.len() == 1 && reported.eq_ignore_ascii_case(key))
        || (key == "Space" && reported == " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known names pass; case slips and common aliases get the right suggestion.
    #[test]
    fn names_and_suggestions() {
        for name in ["a", "z", "0", "ArrowLeft", "Space", "Enter", "/", "+"] {
            assert!(is_known(name), "{name}");
        }
        for name in ["A", "arrowleft", "Left", " ", "F1", "Ctrl"] {
            assert!(!is_known(name), "{name}");
        }
        assert_eq!(suggest("arrowleft").as_deref(), Some("ArrowLeft"));
        assert_eq!(suggest("ArowLeft").as_deref(), Some("ArrowLeft"));
        assert_eq!(suggest("A").as_deref(), Some("a"));
        assert_eq!(suggest("Left").as_deref(), Some("ArrowLeft"));
        assert_eq!(suggest("ctrl").as_deref(), Some("Control"));
        assert_eq!(suggest(" ").as_deref(), Some("Space"));
        assert_eq!(suggest("F1"), None);
    }

    /// Chords split on "+", and empty, unknown or repeated parts are refused.
    #[test]
    fn chords() {
        assert_eq!(
            parse_chord("ArrowLeft+Space").ok(),
            Some(vec!["ArrowLeft".to_string(), "Space".to_string()])
        );
        assert_eq!(parse_chord("+").ok(), Some(vec!["+".to_string()]));
        assert!(matches!(parse_chord("a+"), Err(ChordError::Empty)));
        assert!(matches!(parse_chord("a+a"), Err(ChordError::Repeated(_))));
        assert!(matches!(
            parse_chord("a+Spce"),
            Err(ChordError::Unknown { hint: Some(h), .. }) if h == "Space"
        ));
    }
}
