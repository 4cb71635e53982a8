//! `Diagnostic`: one located problem in a YAML file, printed as `file:line:col: path: message`.

use std::fmt;
use std::path::{Path, PathBuf};

/// A 1-based line and column (columns count characters, as editors do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// Line, starting at 1.
    pub line: usize,
    /// Column, starting at 1.
    pub col: usize,
}

impl Location {
    /// The first character of a file: where whole-file problems are reported.
    pub const START: Location = Location { line: 1, col: 1 };
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The file is rejected.
    Error,
    /// The file is accepted, but probably not as its author meant.
    Warning,
}

/// One problem, located in a file.
///
/// Displays as `file:line:col: path: message (hint: ...)`. Callers that know better what the
/// path means (a rule's name, say) set [`Diagnostic::subject`], which is printed in its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as the user named it.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// Key path of the offending value, e.g. `codegen.poll_interval`; `None` for the whole file.
    pub path: Option<String>,
    /// Printed instead of `path` when set, e.g. `diagnose-failed-runs › steps[0].with`.
    pub subject: Option<String>,
    /// What is wrong. Never contains a secret value.
    pub message: String,
    /// How to fix it, when we can tell.
    pub hint: Option<String>,
    /// Error or warning.
    pub severity: Severity,
}

impl Diagnostic {
    /// An error at `location` in `file`; `path` is omitted from the output when it is empty.
    pub fn error(
        file: &Path,
        location: Location,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let path = path.into();
        Self {
            file: file.to_path_buf(),
            line: location.line,
            col: location.col,
            path: (!path.is_empty()).then_some(path),
            subject: None,
            message: message.into(),
            hint: None,
            severity: Severity::Error,
        }
    }

    /// An error about the file as a whole (unreadable, too big), reported at 1:1.
    pub fn file_error(file: &Path, message: impl Into<String>) -> Self {
        Self::error(file, Location::START, "", message)
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Turns the diagnostic into a warning.
    pub fn into_warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// Replaces what is printed before the message (the path by default).
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Where in the file the problem is.
    pub fn location(&self) -> Location {
        Location {
            line: self.line,
            col: self.col,
        }
    }

    /// Whether this is an error (not a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.col)?;
        if let Some(subject) = self.subject.as_deref().or(self.path.as_deref()) {
            write!(f, "{subject}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

const HINT_OPEN: &str = " (hint: ";

/// Builds a serde error message that carries a hint; [`split_hint`] takes it apart again.
/// Serde errors are plain strings, so this is how a `Deserialize` impl passes a hint on.
pub fn message_with_hint(message: impl fmt::Display, hint: impl fmt::Display) -> String {
    format!("{message}{HINT_OPEN}{hint})")
}

/// Splits a message built by [`message_with_hint`] into message and hint.
pub fn split_hint(message: &str) -> (String, Option<String>) {
    if let Some(body) = message.strip_suffix(')') {
        if let Some(at) = body.rfind(HINT_OPEN) {
            let hint = &body[at + HINT_OPEN.len()..];
            return (body[..at].to_owned(), Some(hint.to_owned()));
        }
    }
    (message.to_owned(), None)
}

/// "did you mean `x`?" for the name in backticks in `expected` closest to `field`.
pub(super) fn did_you_mean_expected(field: &str, expected: &str) -> Option<String> {
    did_you_mean(field, expected.split('`').skip(1).step_by(2))
}

/// "did you mean `x`?" for the candidate closest to `word`, when one is close enough (a third
/// of its characters) and is not `word` itself.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let best = candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .min()?;
    let close_enough = best.0 <= (word.chars().count() / 3).max(1);
    (close_enough && best.0 > 0).then(|| format!("did you mean `{}`?", best.1))
}

/// Levenshtein distance over characters.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_file_line_col_path_message_hint() {
        let d = Diagnostic::error(
            Path::new("sentinel.yaml"),
            Location { line: 4, col: 18 },
            "codegen.poll_interval",
            "invalid duration \"15\"",
        )
        .with_hint("add a unit, e.g. 15s");
        assert_eq!(
            d.to_string(),
            "sentinel.yaml:4:18: codegen.poll_interval: invalid duration \"15\" (hint: add a unit, e.g. 15s)"
        );
    }

    #[test]
    fn subject_replaces_path_and_empty_path_is_omitted() {
        let d = Diagnostic::error(Path::new("r.yaml"), Location::START, "", "bad");
        assert_eq!(d.to_string(), "r.yaml:1:1: bad");
        let d = d.with_subject("my-rule › when");
        assert_eq!(d.to_string(), "r.yaml:1:1: my-rule › when: bad");
    }

    #[test]
    fn hints_round_trip_through_serde_messages() {
        let text = message_with_hint("invalid duration \"15\": no unit", "add a unit, e.g. 15s");
        assert_eq!(
            split_hint(&text),
            (
                "invalid duration \"15\": no unit".to_owned(),
                Some("add a unit, e.g. 15s".to_owned())
            )
        );
        assert_eq!(
            split_hint("plain (not a hint)"),
            ("plain (not a hint)".into(), None)
        );
    }
}
