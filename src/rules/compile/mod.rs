//! Rule files → a checked [`RuleSet`]: every error of every file is collected, each located as
//! `file:line:col: rule › field: message`, and warnings are kept apart. A set is built only
//! when there is no error at all.

mod rule;
mod steps;
mod templates;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::model::{RawRule, RawTest};
use super::shape::Names;
use super::{files, sort_diagnostics, Rule, RuleSet};
use crate::config::Settings;
use crate::yaml::{Diagnostic, Document, Limits, Location, YamlPath};

pub(crate) use templates::Checker;

/// What compiling needs besides the files: the names the config defines.
#[derive(Debug, Clone, Default)]
pub struct CompileEnv {
    /// Configured notifiers (`notify` `to:`); `None` skips that check (no config given).
    pub notifiers: Option<BTreeSet<String>>,
    /// Configured `vars`; `None` lets any `vars.*` through (no config given).
    pub vars: Option<Map<String, Value>>,
}

impl CompileEnv {
    /// Notifier names and vars of a loaded config.
    pub fn from_settings(settings: &Settings) -> CompileEnv {
        CompileEnv {
            notifiers: Some(settings.notifiers.keys().cloned().collect()),
            vars: Some(settings.vars.clone()),
        }
    }

    /// Whether the config-dependent checks run.
    pub fn has_config(&self) -> bool {
        self.notifiers.is_some()
    }
}

/// The tests written in one rule file.
#[derive(Debug, Clone)]
pub struct FileTests {
    pub file: PathBuf,
    /// The rules of the file, in order: the ones its tests evaluate.
    pub rules: Vec<String>,
    /// Each test with where it starts.
    pub tests: Vec<(RawTest, Location)>,
}

/// The result of compiling a set of rule files.
#[derive(Debug)]
pub struct Compiled {
    /// The rule set, when nothing was wrong.
    pub set: Option<RuleSet>,
    /// Errors then warnings, by file and position.
    pub diagnostics: Vec<Diagnostic>,
    /// Tests found beside the rules.
    pub tests: Vec<FileTests>,
    /// The rule files read.
    pub files: Vec<PathBuf>,
}

impl Compiled {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }

    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }

    /// Every error, one per line (for a command's refusal).
    pub fn errors_text(&self) -> String {
        let lines: Vec<String> = self.errors().map(ToString::to_string).collect();
        lines.join("\n")
    }

    /// The set, or every error.
    pub fn into_result(self) -> Result<RuleSet, Vec<Diagnostic>> {
        match self.set {
            Some(set) => Ok(set),
            None => Err(self
                .diagnostics
                .into_iter()
                .filter(Diagnostic::is_error)
                .collect()),
        }
    }
}

/// Compiles every `.yaml`/`.yml` file under `paths` (files or directories, searched
/// recursively; hidden entries skipped) as one set.
pub fn compile_paths(paths: &[PathBuf], env: &CompileEnv) -> Compiled {
    let limits = Limits::default();
    let mut acc = Accumulator::new(env);
    let found = files::find(paths);
    acc.diagnostics.extend(found.diagnostics);
    for file in &found.files {
        match crate::yaml::read_file(file, &limits) {
            Ok(text) => acc.file(file, &text, &limits),
            Err(diagnostics) => acc.diagnostics.extend(diagnostics),
        }
    }
    acc.finish(found.files)
}

/// The text of every rule file under `paths`, as [`compile_paths`] would read them; files that
/// cannot be read are left out (compiling the paths says why).
pub fn read_sources(paths: &[PathBuf]) -> Vec<(PathBuf, String)> {
    let limits = Limits::default();
    files::find(paths)
        .files
        .into_iter()
        .filter_map(|file| {
            let text = crate::yaml::read_file(&file, &limits).ok()?;
            Some((file, text))
        })
        .collect()
}

/// Compiles rule files given as text (tests, benches, `rules replay` of a candidate set).
pub fn compile_sources(sources: &[(PathBuf, String)], env: &CompileEnv) -> Compiled {
    let limits = Limits::default();
    let mut acc = Accumulator::new(env);
    for (file, text) in sources {
        acc.file(file, text, &limits);
    }
    acc.finish(sources.iter().map(|(f, _)| f.clone()).collect())
}

/// The top level of a rule file before each rule is looked at.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    rules: Vec<serde_yaml::Value>,
    #[serde(default)]
    tests: Vec<serde_yaml::Value>,
}

struct Accumulator<'e> {
    env: &'e CompileEnv,
    names: Names,
    rules: Vec<Rule>,
    raw: Vec<RawRule>,
    /// Where each rule name was first defined.
    seen: HashMap<String, (PathBuf, Location)>,
    diagnostics: Vec<Diagnostic>,
    tests: Vec<FileTests>,
}

impl<'e> Accumulator<'e> {
    fn new(env: &'e CompileEnv) -> Self {
        Accumulator {
            env,
            names: Names {
                vars: env.vars.clone(),
            },
            rules: Vec::new(),
            raw: Vec::new(),
            seen: HashMap::new(),
            diagnostics: Vec::new(),
            tests: Vec::new(),
        }
    }

    fn file(&mut self, file: &Path, text: &str, limits: &Limits) {
        let doc = match Document::parse(file, text, limits) {
            Ok(doc) => doc,
            Err(diagnostics) => return self.diagnostics.extend(diagnostics),
        };
        let root = match doc.root() {
            serde_yaml::Value::Null => {
                let warning = Diagnostic::file_error(file, "no rules in this file").into_warning();
                return self.diagnostics.push(warning);
            }
            serde_yaml::Value::Mapping(_) => doc.root().clone(),
            _ => {
                let error =
                    Diagnostic::file_error(file, "a rule file is a mapping with a `rules:` list")
                        .with_hint(
                            "start the file with `rules:` and indent the list of rules under it",
                        );
                return self.diagnostics.push(error);
            }
        };
        let partial = doc.deserialize_value::<FileShape>(root, &YamlPath::root());
        self.diagnostics.extend(partial.diagnostics);
        let shape = partial.value.unwrap_or_default();
        let mut names = Vec::new();
        for (i, value) in shape.rules.into_iter().enumerate() {
            if let Some(name) = self.rule(&doc, i, value) {
                names.push(name);
            }
        }
        self.tests(&doc, names, shape.tests);
    }

    /// Checks one rule; returns its name when it has one.
    fn rule(&mut self, doc: &Document, index: usize, value: serde_yaml::Value) -> Option<String> {
        let base = YamlPath::root().key("rules").index(index);
        let subject = match value.get("name").and_then(serde_yaml::Value::as_str) {
            Some(name) if !name.trim().is_empty() => name.to_owned(),
            _ => base.to_string(),
        };
        let partial = doc.deserialize_value::<RawRule>(value, &base);
        let prefix = base.to_string();
        for diagnostic in partial.diagnostics {
            let relative = diagnostic
                .path
                .as_deref()
                .and_then(|p| p.strip_prefix(prefix.as_str()))
                .map(|p| p.trim_start_matches('.').to_owned())
                .unwrap_or_default();
            let subject = if relative.is_empty() {
                subject.clone()
            } else {
                format!("{subject} › {relative}")
            };
            let diagnostic = with_variant_hint(diagnostic);
            self.diagnostics.push(diagnostic.with_subject(subject));
        }
        let raw = partial.value?;
        let mut checker = Checker::new(doc, base.clone(), subject, self.env, &self.names);
        let location = doc
            .source_map()
            .locate_key(&base)
            .unwrap_or(Location::START);
        if let Some((first_file, first_at)) = self.seen.get(&raw.name) {
            checker.error(
                YamlPath::root().key("name"),
                format!("duplicate rule name `{}`", raw.name),
                Some(format!(
                    "it is first defined at {}:{}:{}",
                    first_file.display(),
                    first_at.line,
                    first_at.col
                )),
            );
        } else {
            self.seen
                .insert(raw.name.clone(), (doc.file().to_path_buf(), location));
        }
        let compiled = checker.rule(&raw, location);
        self.diagnostics.extend(checker.into_diagnostics());
        if let Some(rule) = compiled {
            self.rules.push(rule);
            self.raw.push(raw.clone());
        }
        Some(raw.name)
    }

    fn tests(&mut self, doc: &Document, rules: Vec<String>, tests: Vec<serde_yaml::Value>) {
        let mut parsed = Vec::new();
        for (i, value) in tests.into_iter().enumerate() {
            let path = YamlPath::root().key("tests").index(i);
            let partial = doc.deserialize_value::<RawTest>(value, &path);
            self.diagnostics.extend(partial.diagnostics);
            if let Some(test) = partial.value {
                let at = doc
                    .source_map()
                    .locate_key(&path)
                    .unwrap_or(Location::START);
                parsed.push((test, at));
            }
        }
        if !parsed.is_empty() {
            self.tests.push(FileTests {
                file: doc.file().to_path_buf(),
                rules,
                tests: parsed,
            });
        }
    }

    fn finish(mut self, files: Vec<PathBuf>) -> Compiled {
        sort_diagnostics(&mut self.diagnostics);
        let failed = self.diagnostics.iter().any(Diagnostic::is_error);
        let set = (!failed).then(|| RuleSet::new(self.rules, &self.raw, files.clone()));
        Compiled {
            set,
            diagnostics: self.diagnostics,
            tests: self.tests,
            files,
        }
    }
}

/// Adds a did-you-mean to serde's "unknown variant" messages (`mode: shadw`).
fn with_variant_hint(diagnostic: Diagnostic) -> Diagnostic {
    if diagnostic.hint.is_some() {
        return diagnostic;
    }
    let Some(rest) = diagnostic.message.strip_prefix("unknown variant `") else {
        return diagnostic;
    };
    let Some((given, expected)) = rest.split_once('`') else {
        return diagnostic;
    };
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    match super::did_you_mean(given, candidates.iter().copied()) {
        Some(hint) => diagnostic.with_hint(hint),
        None => diagnostic,
    }
}

#[cfg(test)]
mod tests;
