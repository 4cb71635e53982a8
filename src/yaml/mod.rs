//! The YAML loader shared by configuration and rule files: size and alias limits, a position
//! for every key path, and deserialization errors reported as `file:line:col: path: message`.
//!
//! Loading runs in three passes over the text, each bounded by [`Limits`]:
//! 1. a size check, before anything is parsed;
//! 2. a scan of saphyr-parser's spanned events that builds the [`SourceMap`] and rejects alias
//!    bombs and duplicate keys before any value is built;
//! 3. serde_yaml into a `Value`, then serde_path_to_error into the target type, so every error
//!    names its key path, and the source map turns that path into a line and column.
//!
//! A failed field is removed and deserialization retried, so one pass reports every bad field
//! of a file rather than only the first (see [`Document::deserialize_value`]).

mod diagnostic;
mod path;
mod source_map;
mod units;
mod value;

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_yaml::Value;

pub use diagnostic::{did_you_mean, message_with_hint, split_hint, Diagnostic, Location, Severity};
pub use path::{Segment, YamlPath};
pub use source_map::{Entry, SourceMap};
pub use units::{parse_duration, parse_size, ByteSize, DurationStr, UnitError};

use diagnostic::did_you_mean_expected;
use value::{child, remove};

/// Bounds on what a file may make us parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted file, in bytes.
    pub max_bytes: u64,
    /// Most alias uses (`*name`) in one document.
    pub max_aliases: usize,
    /// Most values a document may expand to once aliases are substituted. Counting alias uses
    /// alone is not enough: 63 uses nested three deep expand to 3^21 values. The default is far
    /// above what a hand-written file under `max_bytes` holds, so in practice only alias bombs
    /// meet it.
    pub max_nodes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 1 << 20,
            max_aliases: 64,
            max_nodes: 1_000_000,
        }
    }
}

/// Most errors collected from one deserialization before giving up.
const MAX_ERRORS: usize = 100;

/// Reads a file for [`Document::parse`], refusing it when over `limits.max_bytes`.
pub fn read_file(file: &Path, limits: &Limits) -> Result<String, Vec<Diagnostic>> {
    let cannot_read =
        |err: std::io::Error| vec![Diagnostic::file_error(file, format!("cannot read: {err}"))];
    let handle = std::fs::File::open(file).map_err(cannot_read)?;
    let mut bytes = Vec::new();
    // Read one byte past the limit: enough to know the file is too big, without reading it all.
    handle
        .take(limits.max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(cannot_read)?;
    if bytes.len() as u64 > limits.max_bytes {
        let size = std::fs::metadata(file).map_or(bytes.len() as u64, |m| m.len());
        return Err(vec![too_big(file, size, limits)]);
    }
    String::from_utf8(bytes).map_err(|err| {
        let at = err.utf8_error().valid_up_to();
        vec![Diagnostic::file_error(
            file,
            format!("not valid UTF-8 (at byte {at})"),
        )]
    })
}

fn too_big(file: &Path, size: u64, limits: &Limits) -> Diagnostic {
    Diagnostic::file_error(
        file,
        format!(
            "file is {size} bytes, over the limit of {} bytes",
            limits.max_bytes
        ),
    )
}

/// Parses `text` and deserializes the whole document into `T`; every problem is reported.
pub fn load<T: DeserializeOwned>(
    file: &Path,
    text: &str,
    limits: &Limits,
) -> Result<(T, SourceMap), Vec<Diagnostic>> {
    let document = Document::parse(file, text, limits)?;
    let value = document.deserialize::<T>()?;
    Ok((value, document.map))
}

/// The result of a lenient deserialization: the value when one could be built, and every
/// problem met on the way.
#[derive(Debug)]
pub struct Partial<T> {
    /// The value, built without the `rejected` entries; `None` when that was not possible.
    pub value: Option<T>,
    /// One diagnostic per bad entry.
    pub diagnostics: Vec<Diagnostic>,
    /// Entries removed because they failed; later checks should not complain they are missing.
    pub rejected: Vec<YamlPath>,
}

/// A parsed YAML file: its values, and where each one sits.
#[derive(Debug, Clone)]
pub struct Document {
    file: PathBuf,
    map: SourceMap,
    root: Value,
}

impl Document {
    /// Checks limits, builds the source map and parses `text` into a `Value`.
    pub fn parse(file: &Path, text: &str, limits: &Limits) -> Result<Self, Vec<Diagnostic>> {
        if text.len() as u64 > limits.max_bytes {
            return Err(vec![too_big(file, text.len() as u64, limits)]);
        }
        let map = source_map::scan(text, limits).map_err(|problems| {
            problems
                .into_iter()
                .map(|p| {
                    if p.syntax {
                        return syntax_error(file, text, p.location, &p.message);
                    }
                    let diagnostic =
                        Diagnostic::error(file, p.location, p.path.to_string(), p.message);
                    match p.hint {
                        Some(hint) => diagnostic.with_hint(hint),
                        None => diagnostic,
                    }
                })
                .collect::<Vec<_>>()
        })?;
        let root = serde_yaml::from_str::<Value>(text).map_err(|err| {
            let at = err.location().map(|l| Location {
                line: l.line(),
                col: l.column(),
            });
            vec![serde_yaml_error(file, at.unwrap_or(Location::START), &err)]
        })?;
        Ok(Self {
            file: file.to_path_buf(),
            map,
            root,
        })
    }

    /// The file as the user named it.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Positions of every node.
    pub fn source_map(&self) -> &SourceMap {
        &self.map
    }

    /// The whole document (`Null` when empty).
    pub fn root(&self) -> &Value {
        &self.root
    }

    /// The node at `path`, if it exists.
    pub fn node(&self, path: &YamlPath) -> Option<&Value> {
        path.segments()
            .iter()
            .try_fold(&self.root, |node, segment| child(node, segment))
    }

    /// Deserializes the whole document; any problem fails it.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, Vec<Diagnostic>> {
        let partial = self.deserialize_value::<T>(self.root.clone(), &YamlPath::root());
        match partial.value {
            Some(value) if partial.diagnostics.is_empty() => Ok(value),
            _ => Err(partial.diagnostics),
        }
    }

    /// Deserializes `value`, found at `base` in this document, collecting every error.
    ///
    /// When a field fails, the innermost mapping entry holding it is removed and the value
    /// deserialized again, until it succeeds or cannot: one run reports every bad field, and
    /// the value built from what was left lets the caller run its own checks too.
    pub fn deserialize_value<T: DeserializeOwned>(
        &self,
        value: Value,
        base: &YamlPath,
    ) -> Partial<T> {
        let mut value = value;
        let mut partial = Partial {
            value: None,
            diagnostics: Vec::new(),
            rejected: Vec::new(),
        };
        while partial.diagnostics.len() < MAX_ERRORS {
            let err = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
                Ok(built) => {
                    partial.value = Some(built);
                    break;
                }
                Err(err) => err,
            };
            let relative = YamlPath::from_serde(err.path());
            let path = join(base, &relative);
            let message = err.inner().to_string();
            if let Some(field) = quoted_after(&message, "missing field `") {
                if partial.rejected.contains(&path.key(field)) {
                    // Only missing because we removed it: already reported.
                    break;
                }
            }
            partial.diagnostics.push(self.serde_error(&path, &message));
            let Some(entry) = relative.innermost_key_entry() else {
                break;
            };
            if !remove(&mut value, &entry) {
                break;
            }
            partial.rejected.push(join(base, &entry));
        }
        partial
    }

    /// An error about the value at `path` (pointing at the value).
    pub fn error(&self, path: &YamlPath, message: impl Into<String>) -> Diagnostic {
        let at = self.map.locate(path).unwrap_or(Location::START);
        Diagnostic::error(&self.file, at, path.to_string(), message)
    }

    /// An error about the entry at `path` as a whole (pointing at its key).
    pub fn key_error(&self, path: &YamlPath, message: impl Into<String>) -> Diagnostic {
        let at = self.map.locate_key(path).unwrap_or(Location::START);
        Diagnostic::error(&self.file, at, path.to_string(), message)
    }

    fn serde_error(&self, path: &YamlPath, message: &str) -> Diagnostic {
        let (message, hint) = split_hint(message);
        if let Some(field) = quoted_after(&message, "unknown field `") {
            let expected = message
                .split_once(", ")
                .map(|(_, rest)| rest.to_owned())
                .unwrap_or_default();
            let hint = did_you_mean_expected(field, &expected).unwrap_or(expected);
            let diagnostic = self.key_error(path, format!("unknown field `{field}`"));
            return if hint.is_empty() {
                diagnostic
            } else {
                diagnostic.with_hint(hint)
            };
        }
        let diagnostic = if message.starts_with("missing field") {
            self.key_error(path, message)
        } else {
            self.error(path, message)
        };
        match hint {
            Some(hint) => diagnostic.with_hint(hint),
            None => diagnostic,
        }
    }
}

/// A syntax error, in serde_yaml's words where it agrees the text is broken.
fn syntax_error(file: &Path, text: &str, at: Location, fallback: &str) -> Diagnostic {
    // Deserializing into IgnoredAny builds nothing, and serde_yaml bounds alias expansion itself.
    let checked = serde_yaml::from_str::<serde::de::IgnoredAny>(text);
    match checked {
        Err(err) => match err.location() {
            Some(l) => {
                let at = Location {
                    line: l.line(),
                    col: l.column(),
                };
                serde_yaml_error(file, at, &err)
            }
            None => Diagnostic::error(file, at, "", fallback),
        },
        Ok(_) => Diagnostic::error(file, at, "", fallback),
    }
}

/// serde_yaml's message without the position it appends (the diagnostic carries it).
fn serde_yaml_error(file: &Path, at: Location, err: &serde_yaml::Error) -> Diagnostic {
    let position = format!(" at line {} column {}", at.line, at.col);
    let message = err.to_string().replacen(&position, "", 1);
    Diagnostic::error(file, at, "", message)
}

fn join(base: &YamlPath, relative: &YamlPath) -> YamlPath {
    relative
        .segments()
        .iter()
        .fold(base.clone(), |path, segment| path.child(segment.clone()))
}

/// The text between `prefix` and the next backtick, when `message` starts with `prefix`.
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split_once('`').map(|(field, _)| field)
}

#[cfg(test)]
mod tests;
