//! The per-rule checker: located diagnostics (`rule › field`), and the checks of conditions and
//! templates: syntax, names against the trigger's context, unknown filters and tests.

use std::collections::BTreeSet;

use serde_json::Value;

use super::CompileEnv;
use crate::rules::shape::{check_name, Family, Names, Scope};
use crate::rules::{Condition, ENV};
use crate::template::{is_template, TemplateError};
use crate::yaml::{Diagnostic, Document, Location, Segment, YamlPath};

/// Checks one rule, collecting its diagnostics.
pub(crate) struct Checker<'a> {
    pub(super) doc: &'a Document,
    /// The rule's path in the file (`rules[2]`).
    base: YamlPath,
    /// The rule's name (or its path when it has none), printed before each field.
    subject: String,
    pub(super) env: &'a CompileEnv,
    pub(super) names: &'a Names,
    diagnostics: Vec<Diagnostic>,
}

fn join(base: &YamlPath, relative: &YamlPath) -> YamlPath {
    relative
        .segments()
        .iter()
        .fold(base.clone(), |path, segment| path.child(segment.clone()))
}

impl<'a> Checker<'a> {
    pub(crate) fn new(
        doc: &'a Document,
        base: YamlPath,
        subject: String,
        env: &'a CompileEnv,
        names: &'a Names,
    ) -> Self {
        Checker {
            doc,
            base,
            subject,
            env,
            names,
            diagnostics: Vec::new(),
        }
    }

    pub(crate) fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.diagnostics
    }

    pub(super) fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    fn make(
        &self,
        relative: &YamlPath,
        at_key: bool,
        message: String,
        hint: Option<String>,
    ) -> Diagnostic {
        let path = join(&self.base, relative);
        let map = self.doc.source_map();
        let at = if at_key {
            map.locate_key(&path)
        } else {
            map.locate(&path)
        };
        let subject = if relative.is_root() {
            self.subject.clone()
        } else {
            format!("{} › {relative}", self.subject)
        };
        let diagnostic = Diagnostic::error(
            self.doc.file(),
            at.unwrap_or(Location::START),
            path.to_string(),
            message,
        )
        .with_subject(subject);
        match hint {
            Some(hint) => diagnostic.with_hint(hint),
            None => diagnostic,
        }
    }

    /// An error about the value at `relative` (relative to the rule).
    pub(crate) fn error(
        &mut self,
        relative: YamlPath,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let d = self.make(&relative, false, message.into(), hint);
        self.diagnostics.push(d);
    }

    /// An error about the entry at `relative` as a whole (pointing at its key).
    pub(super) fn key_error(
        &mut self,
        relative: YamlPath,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let d = self.make(&relative, true, message.into(), hint);
        self.diagnostics.push(d);
    }

    /// A warning about the value at `relative`.
    pub(super) fn warn(
        &mut self,
        relative: YamlPath,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let d = self
            .make(&relative, false, message.into(), hint)
            .into_warning();
        self.diagnostics.push(d);
    }

    /// Checks every name used against the context of `families` in `scope`.
    fn names_used(
        &mut self,
        at: &YamlPath,
        used: BTreeSet<String>,
        families: &[Family],
        scope: Scope<'_>,
    ) -> bool {
        let mut ok = true;
        for name in used {
            if let Err(e) = check_name(&name, families, scope, self.names) {
                self.error(at.clone(), e.message, e.hint);
                ok = false;
            }
        }
        ok
    }

    /// Compiles and checks a condition.
    pub(super) fn condition(
        &mut self,
        at: YamlPath,
        source: &str,
        families: &[Family],
        scope: Scope<'_>,
    ) -> Option<Condition> {
        if source.trim().is_empty() {
            self.error(
                at,
                "empty condition",
                Some("remove `when` to always match".into()),
            );
            return None;
        }
        let condition = match Condition::compile(source) {
            Ok(c) => c,
            Err(err) => {
                let hint = is_template(source).then(|| {
                    "`when` is an expression: write it without `{{ }}`, e.g. `run.status == \"FAILED\"`".to_owned()
                });
                self.error(at, TemplateError::from(err).message, hint);
                return None;
            }
        };
        if !self.names_used(&at, condition.names(), families, scope) {
            return None;
        }
        let dry = condition.eval(&minijinja::Value::from(()));
        if let Err(err) = dry {
            if is_unknown_callable(&err) {
                let (message, hint) = unknown_callable(&err);
                self.error(at, message, hint);
                return None;
            }
        }
        Some(condition)
    }

    /// Checks one template string (syntax, names, filters).
    pub(super) fn template(
        &mut self,
        at: YamlPath,
        text: &str,
        families: &[Family],
        scope: Scope<'_>,
    ) -> bool {
        if !is_template(text) {
            return true;
        }
        let template = match ENV.template_from_str(text) {
            Ok(t) => t,
            Err(err) => {
                self.error(at, TemplateError::from(err).message, None);
                return false;
            }
        };
        let used: BTreeSet<String> = template.undeclared_variables(true).into_iter().collect();
        if !self.names_used(&at, used, families, scope) {
            return false;
        }
        if let Err(err) = template.render(minijinja::Value::from(())) {
            if is_unknown_callable(&err) {
                let (message, hint) = unknown_callable(&err);
                self.error(at, message, hint);
                return false;
            }
        }
        true
    }

    /// Checks every template string inside a JSON value (`with` values, nested).
    pub(super) fn templates_in(
        &mut self,
        at: YamlPath,
        value: &Value,
        families: &[Family],
        scope: Scope<'_>,
    ) -> bool {
        match value {
            Value::String(text) => self.template(at, text, families, scope),
            Value::Array(items) => items.iter().enumerate().fold(true, |ok, (i, v)| {
                self.templates_in(at.child(Segment::Index(i)), v, families, scope) && ok
            }),
            Value::Object(map) => map.iter().fold(true, |ok, (k, v)| {
                self.templates_in(at.key(k.clone()), v, families, scope) && ok
            }),
            _ => true,
        }
    }
}

/// The filters and tests of the template environment, for hints.
const FILTERS: &[&str] = &[
    "abs",
    "attr",
    "batch",
    "bool",
    "capitalize",
    "count",
    "default",
    "dictsort",
    "escape",
    "first",
    "float",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lines",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "pprint",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "safe",
    "select",
    "selectattr",
    "slice",
    "sort",
    "split",
    "string",
    "sum",
    "title",
    "tojson",
    "trim",
    "unique",
    "upper",
    "urlencode",
];
const TESTS: &[&str] = &[
    "boolean",
    "defined",
    "divisibleby",
    "endingwith",
    "eq",
    "even",
    "false",
    "filter",
    "float",
    "ge",
    "gt",
    "in",
    "integer",
    "iterable",
    "le",
    "lower",
    "lt",
    "mapping",
    "ne",
    "none",
    "number",
    "odd",
    "safe",
    "sameas",
    "sequence",
    "startingwith",
    "string",
    "test",
    "true",
    "undefined",
    "upper",
];

/// "unknown filter `x`" with a hint, from minijinja's "filter x is unknown".
pub(super) fn unknown_callable(err: &minijinja::Error) -> (String, Option<String>) {
    use minijinja::ErrorKind as K;
    let detail = err.detail().unwrap_or_default();
    let name = detail.split_whitespace().nth(1).unwrap_or_default();
    let (what, known): (&str, &[&str]) = match err.kind() {
        K::UnknownFilter => ("filter", FILTERS),
        K::UnknownTest => ("test", TESTS),
        K::UnknownFunction => ("function", &["range", "dict", "namespace", "debug"]),
        _ => ("method", &[]),
    };
    let hint = crate::rules::did_you_mean(name, known.iter().copied());
    (format!("unknown {what} `{name}`"), hint)
}

/// Errors a dry evaluation finds that no context could fix.
fn is_unknown_callable(err: &minijinja::Error) -> bool {
    use minijinja::ErrorKind as K;
    matches!(
        err.kind(),
        K::UnknownFilter | K::UnknownTest | K::UnknownFunction | K::UnknownMethod
    )
}
