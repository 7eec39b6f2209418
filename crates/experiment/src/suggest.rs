//! "Did you mean …?": the closest known name to a misspelt one.
//!
//! Researchers mistype field names, key names and environment ids; pointing at the
//! likely intended name saves a trip to the documentation. Candidates are few (tens),
//! so a plain edit distance is fast enough and needs no dependency.

/// The candidate closest to `word`, if one is close enough to be a plausible typo:
/// an exact case-insensitive match first, then the smallest edit distance within a
/// third of the word's length (at least 1, at most 3).
pub(crate) fn closest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    if let Some(same) = candidates.iter().find(|c| c.eq_ignore_ascii_case(word)) {
        return Some(same);
    }
    let lower = word.to_lowercase();
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .iter()
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `" (did you mean \"x\"?)"` when a close candidate exists, else empty.
pub(crate) fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    closest(word, candidates)
        .map(|c| format!(" (did you mean {c:?}?)"))
        .unwrap_or_default()
}

/// Levenshtein distance, counting transposed neighbours as one edit
/// (optimal string alignment), since swapped letters are the commonest typo.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Case slips, typos and swaps find their target; unrelated words find nothing.
    #[test]
    fn finds_plausible_typos_only() {
        let fields = ["episodes", "time_limit_s", "default_action", "fps"];
        assert_eq!(closest("Episodes", &fields), Some("episodes"));
        assert_eq!(closest("epsiodes", &fields), Some("episodes"));
        assert_eq!(closest("time_limit", &fields), Some("time_limit_s"));
        assert_eq!(closest("defualt_action", &fields), Some("default_action"));
        assert_eq!(closest("colour", &fields), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
