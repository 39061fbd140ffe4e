//! The settings file of `camseal run --config FILE` (docs/CONFIG.md), as text to settings.
//!
//! The file is one flat TOML table: `key = value` lines, no sections. This module only reads
//! the text: it knows no key. Which keys exist and what their values mean is the command
//! line's business (each key is a `run` flag), so a setting here is a key, a value in the
//! form a flag would take it, and where it was written, for an error that names the line.
//! No I/O: the caller reads the file.

use std::borrow::Cow;

use toml::de::{DeTable, DeValue};

/// One `key = value` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The key as written.
    pub key: String,
    /// The value, as a flag would take it.
    pub value: SettingValue,
    /// Where the key is.
    pub at: Position,
}

/// A setting's value, in the shape of a command-line value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettingValue {
    /// `true` or `false`: a switch.
    Bool(bool),
    /// An array: a flag given once per element.
    List(Vec<String>),
    /// A string or a number, as text (integers in decimal, floats as written).
    Text(String),
}

/// A line and column in the file, both from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

/// Why a settings file is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not TOML.
    #[error("{at}: not valid TOML: {message}")]
    Syntax {
        /// Where the parser stopped.
        at: Position,
        /// The parser's words.
        message: String,
    },
    /// A value that no flag can take: a table, a date, an array of non-scalars.
    #[error(
        "{at}: `{key}`: {found} is not a setting value (use a string, number, boolean or array of strings)"
    )]
    Shape {
        /// Where the value is.
        at: Position,
        /// Its key.
        key: String,
        /// What was found.
        found: &'static str,
    },
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Reads a settings file's text into its settings, in the order of the file.
///
/// Duplicate keys are a TOML error. Sections (`[table]`) and inline tables are refused: the
/// settings are flat.
pub fn parse(text: &str) -> Result<Vec<Setting>, ConfigError> {
    let table = DeTable::parse(text).map_err(|e| ConfigError::Syntax {
        at: position(text, e.span().map_or(0, |s| s.start)),
        message: e.message().trim().to_owned(),
    })?;
    let mut settings = Vec::new();
    for (key, value) in table.get_ref() {
        let at = position(text, key.span().start);
        let key_text = key.get_ref().to_string();
        let shape = |found| ConfigError::Shape {
            at: position(text, value.span().start),
            key: key_text.clone(),
            found,
        };
        let value = match value.get_ref() {
            DeValue::Boolean(b) => SettingValue::Bool(*b),
            DeValue::Array(items) => {
                let mut list = Vec::with_capacity(items.len());
                for item in items {
                    list.push(scalar(item.get_ref()).ok_or_else(|| ConfigError::Shape {
                        at: position(text, item.span().start),
                        key: key_text.clone(),
                        found: kind(item.get_ref()),
                    })?);
                }
                SettingValue::List(list)
            }
            other => SettingValue::Text(scalar(other).ok_or_else(|| shape(kind(other)))?),
        };
        settings.push(Setting {
            key: key_text,
            value,
            at,
        });
    }
    // The table keeps keys sorted; errors and the flags made from them follow the file.
    settings.sort_by_key(|s| (s.at.line, s.at.column));
    Ok(settings)
}

/// A string or number as a flag's text.
fn scalar(value: &DeValue<'_>) -> Option<String> {
    match value {
        DeValue::String(s) => Some(Cow::clone(s).into_owned()),
        // Decimal, whatever base the file used (0x10 is 16): the flags take decimal.
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
            .ok()
            .map(|n| n.to_string()),
        DeValue::Float(f) => Some(f.as_str().to_owned()),
        DeValue::Boolean(_) | DeValue::Datetime(_) | DeValue::Array(_) | DeValue::Table(_) => None,
    }
}

fn kind(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::Array(_) => "an array",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date or time",
        DeValue::Float(_) => "a float",
        DeValue::Integer(_) => "an integer",
        DeValue::String(_) => "a string",
        DeValue::Table(_) => "a table",
    }
}

/// The line and column of a byte offset (clamped to the text, and to a char boundary).
fn position(text: &str, offset: usize) -> Position {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Position {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize, column: usize) -> Position {
        Position { line, column }
    }

    #[test]
    fn settings_come_in_file_order_with_their_lines() {
        let text = "# comment\nsource = \"soft\"\nrealtime = true\n\nsink = [\"dir:/a\", \"s3://b/c\"]\nbitrate = 0x10\nsegment_seconds = 2.5\n";
        let settings = parse(text).unwrap();
        let got: Vec<_> = settings
            .iter()
            .map(|s| (s.key.as_str(), s.value.clone(), s.at))
            .collect();
        assert_eq!(
            got,
            vec![
                ("source", SettingValue::Text("soft".into()), at(2, 1)),
                ("realtime", SettingValue::Bool(true), at(3, 1)),
                (
                    "sink",
                    SettingValue::List(vec!["dir:/a".into(), "s3://b/c".into()]),
                    at(5, 1)
                ),
                ("bitrate", SettingValue::Text("16".into()), at(6, 1)),
                (
                    "segment_seconds",
                    SettingValue::Text("2.5".into()),
                    at(7, 1)
                ),
            ]
        );
    }

    #[test]
    fn sections_dates_and_nested_arrays_are_refused_where_they_are() {
        let e = parse("a = 1\n[run]\nb = 2\n").unwrap_err();
        assert!(
            matches!(e, ConfigError::Shape { ref key, found: "a table", .. } if key == "run"),
            "{e}"
        );
        let e = parse("a = 1\nwhen = 1979-05-27\n").unwrap_err();
        assert_eq!(
            e.to_string().split(':').take(2).collect::<Vec<_>>(),
            ["2", "8"]
        );
        let e = parse("sink = [\"x\", [1]]\n").unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::Shape {
                    at: Position {
                        line: 1,
                        column: 14
                    },
                    found: "an array",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn syntax_errors_and_duplicates_name_their_line() {
        for (text, line) in [
            ("a = 1\nb = \n", 2),
            ("a = 1\na = 2\n", 2),
            ("a = 1\n\n\"unterminated = 3\n", 3),
        ] {
            match parse(text) {
                Err(ConfigError::Syntax { at, .. }) => assert_eq!(at.line, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn positions_count_characters_and_survive_odd_offsets() {
        assert_eq!(position("é = 1\nab", 8), at(2, 2));
        assert_eq!(position("é", 1), at(1, 1));
        assert_eq!(position("x", 99), at(1, 2));
    }
}
