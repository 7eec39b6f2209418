//! Reading typed fields out of a span-keeping TOML document.
//!
//! Experiment files are read by walking a `toml_edit` document rather than by
//! deriving `Deserialize`, for three reasons: every item keeps its byte span, so a
//! semantic problem (an unknown env, an action out of range) points at the exact
//! line and column just like a syntax error; reading does not stop at the first
//! bad field, so one run reports every problem; and the fields a scene may have
//! depend on its `kind`, which an unknown-field message can then name ("`checkbox`
//! belongs to info scenes"). The price is this small module of typed getters.
//!
//! Getters return `Result<_, Reported>`: `Err` means the problem is already
//! recorded, and the caller keeps reading other fields.

use std::ops::{Range, RangeInclusive};

use toml_edit::{Item, TableLike, Value};

use crate::error::{Problems, Reported};
use crate::suggest::did_you_mean;

pub(crate) type Span = Range<usize>;

/// A table being read: its items, its field path and where it starts.
pub(crate) struct Table<'d> {
    table: &'d dyn TableLike,
    /// `""` for the document root, else a path such as `scene[2].keys`.
    path: String,
    /// The table's header (`[[scene]]`) or inline braces; for the root and for
    /// tables made implicitly by dotted keys, the best place nearby. Problems
    /// about a missing field point here.
    span: Span,
}

/// One `key = value` of a table.
#[derive(Clone)]
pub(crate) struct Field<'d> {
    pub(crate) key: &'d str,
    pub(crate) item: &'d Item,
    /// The full path of this field, such as `scene[2].keys.ArrowLeft`.
    pub(crate) path: String,
    /// Where the key is written (for problems about the key itself).
    pub(crate) key_span: Span,
    /// Where the value is written (for problems about the value).
    pub(crate) span: Span,
}

impl<'d> Table<'d> {
    /// The document's top-level table.
    pub(crate) fn root(table: &'d toml_edit::Table) -> Self {
        Table {
            table,
            path: String::new(),
            span: 0..0,
        }
    }

    /// A table built rather than read (a scene with a condition's fields put
    /// in): its items keep the spans they were read with, and problems about
    /// missing fields point at `span`.
    pub(crate) fn built(table: &'d toml_edit::Table, path: String, span: Span) -> Self {
        Table { table, path, span }
    }

    /// The path problems in this table are reported under.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// The path of `key` inside this table.
    pub(crate) fn child_path(&self, key: &str) -> String {
        let key = quote_key(key);
        if self.path.is_empty() {
            key
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The field `key`, if present.
    pub(crate) fn field(&self, key: &str) -> Option<Field<'d>> {
        let (k, item) = self.table.get_key_value(key)?;
        Some(self.make_field(k.get(), k.span(), item))
    }

    /// Every field, in file order.
    pub(crate) fn fields(&self) -> Vec<Field<'d>> {
        self.table
            .iter()
            .filter_map(|(key, _)| self.field(key))
            .collect()
    }

    fn make_field(&self, key: &'d str, key_span: Option<Span>, item: &'d Item) -> Field<'d> {
        let key_span = key_span.unwrap_or_else(|| self.span.clone());
        let span = item.span().unwrap_or_else(|| key_span.clone());
        Field {
            key,
            item,
            path: self.child_path(key),
            key_span,
            span,
        }
    }

    /// Reports every field not in `allowed`, with a suggestion when one is close;
    /// `elsewhere` may explain a field that is valid in another context.
    pub(crate) fn deny_unknown(
        &self,
        problems: &mut Problems,
        what: &str,
        allowed: &[&str],
        elsewhere: impl Fn(&str) -> Option<String>,
    ) {
        for field in self.fields() {
            if allowed.contains(&field.key) {
                continue;
            }
            let hint = did_you_mean(field.key, allowed);
            let message = if !hint.is_empty() {
                format!("unknown field {:?}{hint}", field.key)
            } else if let Some(explanation) = elsewhere(field.key) {
                format!("unknown field {:?}: {explanation}", field.key)
            } else {
                format!(
                    "unknown field {:?}; {what} may have: {}",
                    field.key,
                    allowed.join(", ")
                )
            };
            problems.report(&field.key_span, field.path, message);
        }
    }

    /// Reports a required field that is absent.
    /// `hint`, if not empty, follows the message and starts with `": "`.
    pub(crate) fn missing(&self, problems: &mut Problems, key: &str, hint: &str) -> Reported {
        problems.report(
            &self.span,
            self.child_path(key),
            format!("missing required field {key:?}{hint}"),
        )
    }

    /// A required, non-empty string.
    pub(crate) fn req_str(&self, problems: &mut Problems, key: &str) -> Result<String, Reported> {
        match self.field(key) {
            Some(field) => field.text(problems),
            None => Err(self.missing(problems, key, "")),
        }
    }

    /// An optional, non-empty string.
    pub(crate) fn opt_str(
        &self,
        problems: &mut Problems,
        key: &str,
    ) -> Result<Option<String>, Reported> {
        self.field(key).map(|f| f.text(problems)).transpose()
    }

    /// An optional integer within `range`.
    pub(crate) fn opt_int(
        &self,
        problems: &mut Problems,
        key: &str,
        range: RangeInclusive<i64>,
    ) -> Result<Option<i64>, Reported> {
        self.field(key)
            .map(|f| f.int_in(problems, range))
            .transpose()
    }

    /// An optional boolean.
    pub(crate) fn opt_bool(
        &self,
        problems: &mut Problems,
        key: &str,
    ) -> Result<Option<bool>, Reported> {
        self.field(key).map(|f| f.bool(problems)).transpose()
    }
}

impl<'d> Field<'d> {
    /// The value, or a problem if this is a table.
    pub(crate) fn value(
        &self,
        problems: &mut Problems,
        expected: &str,
    ) -> Result<&'d Value, Reported> {
        match self.item {
            Item::Value(value) => Ok(value),
            other => Err(self.wrong_type(problems, expected, other.type_name())),
        }
    }

    /// Reports that the value has the wrong type.
    pub(crate) fn wrong_type(
        &self,
        problems: &mut Problems,
        expected: &str,
        found: &str,
    ) -> Reported {
        problems.report(
            &self.span,
            self.path.clone(),
            format!("expected {expected}, found {}", article(found)),
        )
    }

    /// Reports a problem with the value.
    pub(crate) fn report(&self, problems: &mut Problems, message: impl Into<String>) -> Reported {
        problems.report(&self.span, self.path.clone(), message)
    }

    /// Reports a problem with the key.
    pub(crate) fn report_key(
        &self,
        problems: &mut Problems,
        message: impl Into<String>,
    ) -> Reported {
        problems.report(&self.key_span, self.path.clone(), message)
    }

    /// Any string.
    pub(crate) fn string(&self, problems: &mut Problems) -> Result<&'d str, Reported> {
        match self.value(problems, "a string")? {
            Value::String(s) => Ok(s.value()),
            other => Err(self.wrong_type(problems, "a string", other.type_name())),
        }
    }

    /// A string with something other than white space in it.
    pub(crate) fn text(&self, problems: &mut Problems) -> Result<String, Reported> {
        let s = self.string(problems)?;
        if s.trim().is_empty() {
            return Err(self.report(problems, "must not be empty"));
        }
        Ok(s.to_string())
    }

    pub(crate) fn int(&self, problems: &mut Problems) -> Result<i64, Reported> {
        match self.value(problems, "an integer")? {
            Value::Integer(i) => Ok(*i.value()),
            other => Err(self.wrong_type(problems, "an integer", other.type_name())),
        }
    }

    pub(crate) fn int_in(
        &self,
        problems: &mut Problems,
        range: RangeInclusive<i64>,
    ) -> Result<i64, Reported> {
        let i = self.int(problems)?;
        if range.contains(&i) {
            return Ok(i);
        }
        let message = if *range.end() == i64::MAX {
            format!("must be at least {}, not {i}", range.start())
        } else {
            format!(
                "must be between {} and {}, not {i}",
                range.start(),
                range.end()
            )
        };
        Err(self.report(problems, message))
    }

    pub(crate) fn bool(&self, problems: &mut Problems) -> Result<bool, Reported> {
        match self.value(problems, "true or false")? {
            Value::Boolean(b) => Ok(*b.value()),
            other => Err(self.wrong_type(problems, "true or false", other.type_name())),
        }
    }

    pub(crate) fn array(&self, problems: &mut Problems) -> Result<&'d toml_edit::Array, Reported> {
        match self.value(problems, "an array")? {
            Value::Array(a) => Ok(a),
            other => Err(self.wrong_type(problems, "an array", other.type_name())),
        }
    }

    /// A table, written as `[a.b]`, as `{ ... }` or through dotted keys.
    pub(crate) fn table(&self, problems: &mut Problems) -> Result<Table<'d>, Reported> {
        match self.item.as_table_like() {
            Some(table) => Ok(Table {
                table,
                path: self.path.clone(),
                span: self.span.clone(),
            }),
            None => Err(self.wrong_type(problems, "a table", self.item.type_name())),
        }
    }

    /// An array of tables, written as `[[a]]` sections or as an array of inline
    /// tables. Element `i` gets the path `a[i]`. Elements that are not tables are
    /// reported and left out, so the others are still checked.
    pub(crate) fn tables(&self, problems: &mut Problems) -> Result<Vec<Table<'d>>, Reported> {
        let element = |i: usize, table: &'d dyn TableLike, span: Option<Span>| Table {
            table,
            path: format!("{}[{i}]", self.path),
            span: span.unwrap_or_else(|| self.span.clone()),
        };
        match self.item {
            Item::ArrayOfTables(array) => Ok(array
                .iter()
                .enumerate()
                .map(|(i, t)| element(i, t, t.span()))
                .collect()),
            Item::Value(Value::Array(array)) => {
                let mut tables = Vec::with_capacity(array.len());
                for (i, value) in array.iter().enumerate() {
                    match value {
                        Value::InlineTable(t) => tables.push(element(i, t, t.span())),
                        other => {
                            let span = other.span().unwrap_or_else(|| self.span.clone());
                            problems.report(
                                &span,
                                format!("{}[{i}]", self.path),
                                format!("expected a table, found {}", article(other.type_name())),
                            );
                        }
                    }
                }
                Ok(tables)
            }
            Item::Table(_) => {
                // `[scene]` for `[[scene]]`: the commonest slip with arrays of tables.
                let header: String = self
                    .path
                    .split('.')
                    .map(|part| part.split('[').next().unwrap_or(part))
                    .collect::<Vec<_>>()
                    .join(".");
                Err(self.report(
                    problems,
                    format!(
                        "write [[{header}]] with double brackets: each [[{header}]] section \
                         adds one element, and this [{header}] is a single table"
                    ),
                ))
            }
            other => Err(self.wrong_type(
                problems,
                "an array of tables ([[...]] sections)",
                other.type_name(),
            )),
        }
    }
}

/// `"an integer"`, `"a string"`: a type name with its article.
/// A TOML number (integer or float) as `f64`.
pub(crate) fn as_number(value: &toml_edit::Value) -> Option<f64> {
    value
        .as_float()
        .or_else(|| value.as_integer().map(|i| i as f64))
}

/// A TOML array of numbers as `f32`s, if every element is a number.
pub(crate) fn as_f32s(item: &Item) -> Option<Vec<f32>> {
    item.as_array()?
        .iter()
        .map(|v| as_number(v).map(|f| f as f32))
        .collect()
}

pub(crate) fn article(type_name: &str) -> String {
    let vowel = type_name.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {type_name}", if vowel { "an" } else { "a" })
}

/// A key as it would be written in a path: bare when TOML allows, else quoted.
pub(crate) fn quote_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// Checks an identifier (experiment, scene or question id): lower-case letters,
/// digits, `_` and `-`, starting with a letter or digit, at most 64 characters.
/// Ids end up in URLs, file names and export column names, where anything else
/// would need escaping; the leading character rule keeps `_` free for the
/// "not about one question" key of survey errors.
pub(crate) fn check_id(problems: &mut Problems, field: &Field, id: &str) -> Result<(), Reported> {
    let valid_chars = id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    let valid_start = id
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if valid_chars && valid_start && id.len() <= 64 {
        return Ok(());
    }
    let suggestion: String = id
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches(['_', '-'])
        .chars()
        .take(64)
        .collect();
    let hint = if suggestion.is_empty() || suggestion == id {
        String::new()
    } else {
        format!(" (such as {suggestion:?})")
    };
    Err(field.report(
        problems,
        format!(
            "{id:?} is not a valid id: use lower-case letters, digits, \"_\" and \"-\", \
             starting with a letter or digit, at most 64 characters{hint}"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paths quote keys that are not bare TOML keys.
    #[test]
    fn keys_are_quoted_only_when_needed() {
        assert_eq!(quote_key("ArrowLeft"), "ArrowLeft");
        assert_eq!(quote_key("ArrowLeft+Space"), "\"ArrowLeft+Space\"");
        assert_eq!(quote_key("/"), "\"/\"");
    }
}
