//! What goes wrong in an experiment file, and where.
//!
//! A researcher fixes a file by jumping to a line, so every [`Problem`] carries a
//! file, a 1-based line and column, and the dotted path of the field it concerns
//! (`scene[2].keys.ArrowLeft`), printed in the `file:line:column: field: message`
//! form editors and terminals turn into links. Validation collects every problem
//! it can find before giving up, so one run of `tandem check` lists them all.

use std::fmt;
use std::ops::Range;

/// One thing wrong with an experiment file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file name as given to [`parse`](crate::parse) or [`load`](crate::load).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters (not bytes).
    pub column: usize,
    /// The field the problem concerns, as a path such as `scene[2].keys.ArrowLeft`
    /// (scene and question indices count from 0); empty for syntax errors, which
    /// happen before there are fields.
    pub field: String,
    /// What is wrong and, where we can tell, how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Why an experiment could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{file}: cannot read the experiment file: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid experiment: one or more problems, in
    /// the order they appear in the file.
    #[error("{}", DisplayProblems(problems))]
    Invalid { problems: Vec<Problem> },
}

impl ConfigError {
    /// The problems found; empty when the file could not be read.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid { problems } => problems,
        }
    }
}

/// Displays problems one per line.
struct DisplayProblems<'a>(&'a [Problem]);

impl fmt::Display for DisplayProblems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// Turns byte offsets into 1-based line and column numbers.
pub(crate) struct LineIndex<'s> {
    source: &'s str,
    /// Byte offset at which each line starts; `line_starts[0] == 0`.
    line_starts: Vec<usize>,
}

impl<'s> LineIndex<'s> {
    pub(crate) fn new(source: &'s str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex {
            source,
            line_starts,
        }
    }

    /// The 1-based line and character column of byte `offset` (clamped to the
    /// source).
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.source.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self.line_starts[line - 1];
        // Count characters, so a column is right after non-ASCII text; a span
        // that somehow starts inside a character counts up to it.
        let column = self
            .source
            .get(start..offset)
            .map_or(offset - start, |text| text.chars().count());
        (line, column + 1)
    }

    /// The text of the line holding byte `offset`, without its line break.
    pub(crate) fn line_text(&self, offset: usize) -> &'s str {
        let (line, _) = self.position(offset);
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .map_or(self.source.len(), |next| next - 1);
        self.source
            .get(start..end)
            .unwrap_or("")
            .trim_end_matches('\r')
    }
}

/// Collects problems while a file is validated.
pub(crate) struct Problems<'s> {
    file: &'s str,
    lines: LineIndex<'s>,
    found: Vec<(Range<usize>, Problem)>,
}

/// Marks a value that could not be read because a problem was already reported
/// for it; callers carry on to find more problems and give up at the end.
///
/// Only [`Problems::report`] makes one, so an `Err(Reported)` always has a
/// problem behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reported(());

impl<'s> Problems<'s> {
    pub(crate) fn new(file: &'s str, source: &'s str) -> Self {
        Problems {
            file,
            lines: LineIndex::new(source),
            found: Vec::new(),
        }
    }

    /// Records a problem with `field` starting at byte span `span`.
    pub(crate) fn report(
        &mut self,
        span: &Range<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Reported {
        let (line, column) = self.lines.position(span.start);
        let problem = Problem {
            file: self.file.to_string(),
            line,
            column,
            field: field.into(),
            message: message.into(),
        };
        self.found.push((span.clone(), problem));
        Reported(())
    }

    /// The file name problems are reported against.
    pub(crate) fn file(&self) -> &'s str {
        self.file
    }

    pub(crate) fn lines(&self) -> &LineIndex<'s> {
        &self.lines
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// The error holding every problem found, in file order.
    pub(crate) fn into_error(self) -> ConfigError {
        let mut found = self.found;
        if found.is_empty() {
            // Unreachable while only `report` makes `Reported`; kept so that a
            // bug here is an error message, not a panic or a silent success.
            let problem = Problem {
                file: self.file.to_string(),
                line: 1,
                column: 1,
                field: String::new(),
                message: "internal error: validation failed without saying why".into(),
            };
            found.push((0..0, problem));
        }
        // Stable: problems at the same place keep the order they were found in.
        found.sort_by_key(|(span, _)| span.start);
        found.dedup_by(|a, b| a.1 == b.1);
        ConfigError::Invalid {
            problems: found.into_iter().map(|(_, p)| p).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offsets map to 1-based lines and character columns, non-ASCII included.
    #[test]
    fn positions_are_one_based_in_characters() {
        let index = LineIndex::new("ab\nçd = 1\n\nx");
        assert_eq!(index.position(0), (1, 1));
        assert_eq!(index.position(1), (1, 2));
        assert_eq!(index.position(3), (2, 1));
        assert_eq!(index.position(5), (2, 2)); // after the two-byte ç
        assert_eq!(index.position(11), (3, 1));
        assert_eq!(index.position(12), (4, 1));
        assert_eq!(index.position(99), (4, 2));
        assert_eq!(index.line_text(6), "çd = 1");
    }
}
