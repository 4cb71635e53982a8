//! The rule language (DESIGN §4): YAML files → raw serde structs ([`model`]) → a compiled,
//! checked [`RuleSet`] ([`compile`]) → pure evaluation of events against it ([`eval`]).
//!
//! Every mistake a rule author can make is reported when the files load, located as
//! `file:line:col: rule › field: message`, and a set with errors is never swapped in
//! ([`reload`]). Rule files also carry their own tests ([`testing`]).

pub mod compile;
mod files;
pub mod model;
pub mod reload;
pub mod schema;
pub mod shape;
pub mod testing;
pub mod trigger;

pub mod eval;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use minijinja::Environment;
use serde_json::{Map, Value};

use crate::actions::spec::ActionSpec;
use crate::yaml::{Diagnostic, Location};

pub use compile::{compile_paths, compile_sources, CompileEnv, Compiled};
pub use model::Mode;
pub use reload::{run_reload, Rules, RulesStatus};
pub use shape::Family;
pub use trigger::Pattern;

/// The one template environment of rules (see [`crate::template`]), shared so compiled
/// conditions can be kept in the rule set.
pub(crate) static ENV: LazyLock<Environment<'static>> = LazyLock::new(crate::template::environment);

/// Most names a failed condition shows the values of.
const EXPLAINED_NAMES: usize = 4;
/// Longest value shown when explaining a condition.
const EXPLAINED_VALUE_CHARS: usize = 80;

/// A compiled condition (`when`).
pub struct Condition {
    /// As written.
    pub source: String,
    expr: minijinja::Expression<'static, 'static>,
    /// The names it reads, each compiled, to show their values when it is false.
    parts: Vec<(String, minijinja::Expression<'static, 'static>)>,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Condition").field(&self.source).finish()
    }
}

impl Condition {
    /// Compiles an expression in the shared environment.
    pub fn compile(source: &str) -> Result<Condition, minijinja::Error> {
        let expr = ENV.compile_expression_owned(source.to_owned())?;
        let mut names: Vec<String> = expr.undeclared_variables(true).into_iter().collect();
        names.sort();
        let parts = names
            .into_iter()
            .take(EXPLAINED_NAMES)
            .filter_map(|n| ENV.compile_expression_owned(n.clone()).ok().map(|e| (n, e)))
            .collect();
        Ok(Condition {
            source: source.to_owned(),
            expr,
            parts,
        })
    }

    /// Evaluates it; undefined and none are false.
    pub fn eval(&self, ctx: &minijinja::Value) -> Result<bool, minijinja::Error> {
        Ok(self.expr.eval(ctx)?.is_true())
    }

    /// Dotted names it reads (`run.status`).
    pub fn names(&self) -> BTreeSet<String> {
        self.expr.undeclared_variables(true).into_iter().collect()
    }

    /// The values of the names it reads, as ` (run.status = "COMPLETE")`.
    pub fn explain(&self, ctx: &minijinja::Value) -> String {
        let shown: Vec<String> = self
            .parts
            .iter()
            .filter_map(|(name, expr)| {
                let value = expr.eval(ctx).ok()?;
                let text = if value.is_undefined() {
                    "undefined".to_owned()
                } else {
                    serde_json::to_string(&value).unwrap_or_else(|_| value.to_string())
                };
                let text: String = if text.chars().count() > EXPLAINED_VALUE_CHARS {
                    text.chars()
                        .take(EXPLAINED_VALUE_CHARS)
                        .chain("…".chars())
                        .collect()
                } else {
                    text
                };
                Some(format!("{name} = {text}"))
            })
            .collect();
        if shown.is_empty() {
            String::new()
        } else {
            format!(" ({})", shown.join(", "))
        }
    }
}

/// A key template, compiled once: keys are rendered for every matching event.
pub(crate) struct KeyTemplate {
    env: Environment<'static>,
}

impl std::fmt::Debug for KeyTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyTemplate")
    }
}

impl KeyTemplate {
    const NAME: &'static str = "key";

    /// Compiles `source` in an environment configured like the shared one.
    pub(crate) fn compile(source: &str) -> Result<KeyTemplate, minijinja::Error> {
        let mut env = crate::template::environment();
        env.add_template_owned(Self::NAME, source.to_owned())?;
        Ok(KeyTemplate { env })
    }

    pub(crate) fn render(&self, ctx: &minijinja::Value) -> Result<String, minijinja::Error> {
        self.env.get_template(Self::NAME)?.render(ctx)
    }
}

/// When a scheduled rule fires.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// As written.
    pub text: String,
    pub cron: cron::Schedule,
    /// `None` is UTC.
    pub timezone: Option<chrono_tz::Tz>,
}

impl Schedule {
    /// The first tick strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.timezone {
            Some(tz) => self
                .cron
                .after(&t.with_timezone(&tz))
                .next()
                .map(|d| d.with_timezone(&Utc)),
            None => self.cron.after(&t).next(),
        }
    }

    /// Whether `t` is one of its ticks.
    pub fn is_tick(&self, t: DateTime<Utc>) -> bool {
        self.next_after(t - chrono::Duration::seconds(1)) == Some(t)
    }
}

/// What starts a rule.
#[derive(Debug)]
pub enum Trigger {
    /// Events whose type matches one of the patterns.
    Events(Vec<Pattern>),
    /// Cron ticks.
    Schedule(Box<Schedule>),
}

/// `throttle: {limit, per}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    pub limit: u32,
    pub per: Duration,
}

/// `retry:` of a step, defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub max_attempts: u32,
    pub backoff: Duration,
    pub cap: Duration,
}

/// One checked step.
#[derive(Debug, Clone)]
pub struct Step {
    pub id: Option<String>,
    pub action: &'static ActionSpec,
    /// As written; strings may be templates, rendered by the executor.
    pub with: Map<String, Value>,
    pub when: Option<String>,
    pub continue_on_error: bool,
    pub retry: Option<Retry>,
}

/// One checked rule.
#[derive(Debug)]
pub struct Rule {
    pub name: String,
    pub description: Option<String>,
    /// The file it was loaded from and where its entry starts.
    pub file: PathBuf,
    pub location: Location,
    pub trigger: Trigger,
    /// The families of event types it can see (for context checks and docs).
    pub families: Vec<Family>,
    pub when: Option<Condition>,
    /// A template; `None` keys firings by event id.
    pub key: Option<String>,
    /// `key`, compiled once (templates only).
    pub(crate) key_template: Option<KeyTemplate>,
    /// `{name, description}` as the context's `rule`, built once.
    pub(crate) context: minijinja::Value,
    pub cooldown: Option<Duration>,
    pub throttle: Option<Throttle>,
    pub mode: Mode,
    pub steps: Vec<Step>,
    /// The steps in the job contract's shape, copied into every job.
    pub steps_json: Value,
}

impl Rule {
    /// Whether the rule reacts to events of type `kind` (scheduled rules react to their own ticks).
    pub fn matches_kind(&self, kind: &str) -> bool {
        match &self.trigger {
            Trigger::Events(patterns) => patterns.iter().any(|p| p.matches(kind)),
            Trigger::Schedule(_) => false,
        }
    }

    /// The schedule, for scheduled rules.
    pub fn schedule(&self) -> Option<&Schedule> {
        match &self.trigger {
            Trigger::Schedule(s) => Some(s),
            Trigger::Events(_) => None,
        }
    }

    /// `{name, description}` as the context's `rule`.
    pub fn context_value(&self) -> Value {
        serde_json::json!({"name": self.name, "description": self.description})
    }

    /// The trigger as written, for messages.
    pub fn trigger_text(&self) -> String {
        match &self.trigger {
            Trigger::Events(patterns) => patterns
                .iter()
                .map(|p| p.text.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            Trigger::Schedule(s) => format!("schedule {:?}", s.text),
        }
    }
}

/// A compiled, checked set of rules: immutable, swapped whole on reload.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Arc<Rule>>,
    /// Rules by exact event type.
    by_type: HashMap<String, Vec<usize>>,
    /// Rules with at least one glob.
    globbed: Vec<usize>,
    hash: String,
    files: Vec<PathBuf>,
}

impl RuleSet {
    /// A set without rules (what runs before the first load).
    pub fn empty() -> RuleSet {
        RuleSet {
            hash: hash_rules(&[]),
            ..RuleSet::default()
        }
    }

    pub(crate) fn new(rules: Vec<Rule>, raw: &[model::RawRule], files: Vec<PathBuf>) -> RuleSet {
        let rules: Vec<Arc<Rule>> = rules.into_iter().map(Arc::new).collect();
        let mut by_type: HashMap<String, Vec<usize>> = HashMap::new();
        let mut globbed = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            if let Trigger::Events(patterns) = &rule.trigger {
                let mut glob = false;
                for pattern in patterns {
                    match pattern.exact_type() {
                        Some(kind) => by_type.entry(kind.to_owned()).or_default().push(i),
                        None => glob = true,
                    }
                }
                if glob {
                    globbed.push(i);
                }
            }
        }
        RuleSet {
            rules,
            by_type,
            globbed,
            hash: hash_rules(raw),
            files,
        }
    }

    /// Identifies this version of the rules in journal entries and jobs.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Every rule, in file order.
    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    /// The files the rules came from.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule called `name`.
    pub fn rule(&self, name: &str) -> Option<&Arc<Rule>> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// The rules an event of type `kind` is offered to, in file order; `schedule` events go
    /// only to the rule whose tick they are (`schedule_rule`).
    pub fn candidates(&self, kind: &str, schedule_rule: Option<&str>) -> Vec<&Arc<Rule>> {
        if kind == "schedule" {
            return schedule_rule
                .and_then(|name| self.rule(name))
                .filter(|r| r.schedule().is_some())
                .into_iter()
                .collect();
        }
        let mut picked: Vec<usize> = self.by_type.get(kind).cloned().unwrap_or_default();
        picked.extend(
            self.globbed
                .iter()
                .copied()
                .filter(|&i| self.rules[i].matches_kind(kind)),
        );
        picked.sort_unstable();
        picked.dedup();
        picked.into_iter().map(|i| &self.rules[i]).collect()
    }

    /// The scheduled rules.
    pub fn scheduled(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.rules.iter().filter(|r| r.schedule().is_some())
    }
}

/// A short hash of the rules as written (comments and file layout do not change it).
fn hash_rules(raw: &[model::RawRule]) -> String {
    use sha2::{Digest, Sha256};
    let mut sorted: Vec<&model::RawRule> = raw.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut hasher = Sha256::new();
    for rule in sorted {
        // Serializing our own plain structs cannot fail.
        let bytes = serde_json::to_vec(rule).unwrap_or_default();
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(&bytes);
    }
    hex::encode(&hasher.finalize()[..8])
}

pub use crate::yaml::did_you_mean;

/// The diagnostics of a load, errors first, each group in file and position order.
pub fn sort_diagnostics(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (!a.is_error(), &a.file, a.line, a.col).cmp(&(!b.is_error(), &b.file, b.line, b.col))
    });
}
