//! Step checks against the action catalogue: known action, `with` parameters (unknown, missing,
//! literal of the wrong type, unknown notifier), templates and `steps.<id>` references, retry.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::Checker;
use crate::actions::spec::{self, ActionSpec, ParamKind, ParamSpec};
use crate::config::{DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_CAP, DEFAULT_MAX_ATTEMPTS};
use crate::rules::model::RawStep;
use crate::rules::shape::{quoted_list, Family, Scope};
use crate::rules::{did_you_mean, Retry, Step};
use crate::template::is_template;
use crate::yaml::{parse_duration, YamlPath};

/// Literal values some parameters must take, when not a template.
const CHOICES: &[(&str, &str, &[&str])] = &[
    ("log", "level", &["error", "warn", "info", "debug"]),
    (
        "github.commit_status",
        "state",
        &["error", "failure", "pending", "success"],
    ),
    (
        "codegen.edit_pr",
        "state",
        &["open", "closed", "draft", "ready_for_review"],
    ),
    (
        "codegen.create_run",
        "agent_type",
        &["codegen", "claude_code"],
    ),
];

fn step_at(index: usize) -> YamlPath {
    YamlPath::root().key("steps").index(index)
}

fn is_identifier(id: &str) -> bool {
    let mut chars = id.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Checker<'_> {
    /// Checks every step; `None` when one is wrong.
    pub(super) fn steps(&mut self, raw: &[RawStep], families: &[Family]) -> Option<Vec<Step>> {
        if raw.is_empty() {
            self.key_error(
                YamlPath::root().key("steps"),
                "a rule needs at least one step",
                Some("e.g. `steps: [{action: log, with: {message: \"...\"}}]`".into()),
            );
            return None;
        }
        let mut before: Vec<(String, &'static ActionSpec)> = Vec::new();
        let mut first_use: HashMap<String, usize> = HashMap::new();
        let mut steps = Vec::new();
        let mut ok = true;
        for (i, step) in raw.iter().enumerate() {
            if let Some(id) = &step.id {
                if !is_identifier(id) {
                    self.error(
                        step_at(i).key("id"),
                        format!("step id {id:?} cannot be used as `steps.{id}`"),
                        Some("use letters, digits and `_`, starting with a letter".into()),
                    );
                    ok = false;
                } else if let Some(first) = first_use.insert(id.clone(), i) {
                    self.error(
                        step_at(i).key("id"),
                        format!("duplicate step id `{id}`"),
                        Some(format!("steps[{first}] already uses it")),
                    );
                    ok = false;
                }
            }
            match self.step(i, step, families, &before) {
                Some(checked) => {
                    if let Some(id) = &checked.id {
                        before.push((id.clone(), checked.action));
                    }
                    steps.push(checked);
                }
                None => ok = false,
            }
        }
        ok.then_some(steps)
    }

    fn step(
        &mut self,
        i: usize,
        raw: &RawStep,
        families: &[Family],
        before: &[(String, &'static ActionSpec)],
    ) -> Option<Step> {
        let Some(action) = spec::action(&raw.action) else {
            let names = spec::ACTIONS.iter().map(|a| a.name);
            let hint = did_you_mean(&raw.action, names).unwrap_or_else(|| {
                let all: Vec<&str> = spec::ACTIONS.iter().map(|a| a.name).collect();
                format!("actions: {}", all.join(", "))
            });
            self.error(
                step_at(i).key("action"),
                format!("unknown action `{}`", raw.action),
                Some(hint),
            );
            return None;
        };
        let with = raw.with.clone().unwrap_or_default();
        let scope = Scope::Step(before);
        let mut ok = self.params(i, action, &with, raw.with.is_some(), families);
        for (name, value) in &with {
            let at = step_at(i).key("with").key(name.clone());
            ok &= self.templates_in(at, value, families, scope);
        }
        if let Some(when) = &raw.when {
            ok &= self
                .condition(step_at(i).key("when"), when, families, scope)
                .is_some();
        }
        let retry = self.retry(i, raw);
        ok &= retry.is_ok();
        ok.then(|| Step {
            id: raw.id.clone(),
            action,
            with,
            when: raw.when.clone(),
            continue_on_error: raw.continue_on_error.unwrap_or(false),
            retry: retry.ok().flatten(),
        })
    }

    /// Checks `with` against the action's parameters.
    fn params(
        &mut self,
        i: usize,
        action: &'static ActionSpec,
        with: &Map<String, Value>,
        written: bool,
        families: &[Family],
    ) -> bool {
        let mut ok = true;
        let with_at = step_at(i).key("with");
        for (name, value) in with {
            let at = with_at.key(name.clone());
            let Some(param) = action.param(name) else {
                let names: Vec<&str> = action.params.iter().map(|p| p.name).collect();
                let hint = did_you_mean(name, names.iter().copied()).unwrap_or_else(|| {
                    if names.is_empty() {
                        "it takes no parameters".to_owned()
                    } else {
                        format!("its parameters: {}", quoted_list(&names))
                    }
                });
                self.key_error(
                    at,
                    format!("`{}` has no parameter `{name}`", action.name),
                    Some(hint),
                );
                ok = false;
                continue;
            };
            ok &= self.literal(at, action, param, value);
        }
        let missing_at = if written {
            with_at
        } else {
            step_at(i).key("action")
        };
        for param in action.params.iter().filter(|p| p.required) {
            if !with.contains_key(param.name) {
                self.key_error(
                    missing_at.clone(),
                    format!("missing parameter `{}` of `{}`", param.name, action.name),
                    Some(format!("`{}`: {}", param.name, param.doc)),
                );
                ok = false;
            }
        }
        if action.name == "notify" && !with.contains_key("text") && !with.contains_key("payload") {
            self.key_error(
                missing_at.clone(),
                "`notify` needs `text` or `payload`",
                None,
            );
            ok = false;
        }
        if families.contains(&Family::Schedule) && action.name.starts_with("codegen.") {
            let needed: Vec<&str> = ["run_id", "org_id"]
                .into_iter()
                .filter(|p| action.param(p).is_some() && !with.contains_key(*p))
                .collect();
            if !needed.is_empty() {
                self.key_error(
                    missing_at,
                    format!(
                        "`{}` needs {} here: a schedule has no run to take them from",
                        action.name,
                        quoted_list(&needed)
                    ),
                    None,
                );
                ok = false;
            }
        }
        ok
    }

    /// Checks a literal (non-template) value against its parameter's kind.
    fn literal(
        &mut self,
        at: YamlPath,
        action: &ActionSpec,
        param: &ParamSpec,
        value: &Value,
    ) -> bool {
        if let Value::String(text) = value {
            if is_template(text) {
                return true;
            }
        }
        let fits = match (param.kind, value) {
            (_, Value::Null) => false,
            (ParamKind::Any, _) => true,
            (ParamKind::String, v) => !v.is_array() && !v.is_object(),
            (ParamKind::Int, Value::Number(n)) => n.is_i64() || n.is_u64(),
            (ParamKind::Int, Value::String(s)) => s.trim().parse::<i64>().is_ok(),
            (ParamKind::Bool, Value::Bool(_)) => true,
            (ParamKind::Bool, Value::String(s)) => matches!(s.as_str(), "true" | "false"),
            (ParamKind::StringList, Value::String(_)) => true,
            (ParamKind::StringList, Value::Array(items)) => items.iter().all(Value::is_string),
            (ParamKind::Object, Value::Object(_)) => true,
            (ParamKind::Duration, Value::String(s)) => {
                if let Err(e) = parse_duration(s) {
                    self.error(at, e.message, e.hint);
                    return false;
                }
                true
            }
            _ => false,
        };
        if !fits {
            let hint =
                matches!(value, Value::Null).then(|| "remove it to use the default".to_owned());
            self.error(
                at,
                format!(
                    "`{}` must be {}, not {}",
                    param.name,
                    param.kind.describe(),
                    describe(value)
                ),
                hint,
            );
            return false;
        }
        self.choice(at, action, param, value)
    }

    fn choice(
        &mut self,
        at: YamlPath,
        action: &ActionSpec,
        param: &ParamSpec,
        value: &Value,
    ) -> bool {
        if action.name == "codegen.fetch_logs" && param.name == "limit" {
            let n = value
                .as_i64()
                .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()));
            if n.is_some_and(|n| !(1..=100).contains(&n)) {
                self.error(
                    at,
                    "`limit` must be between 1 and 100",
                    Some("use `all: true` to walk every page".into()),
                );
                return false;
            }
        }
        if action.name == "notify" && param.name == "to" {
            return self.notifier(at, value);
        }
        let Some((_, _, allowed)) = CHOICES
            .iter()
            .find(|(a, p, _)| *a == action.name && *p == param.name)
        else {
            return true;
        };
        let given = value.as_str().unwrap_or_default();
        if allowed.contains(&given) {
            return true;
        }
        let hint = did_you_mean(given, allowed.iter().copied());
        self.error(
            at,
            format!(
                "`{}` must be one of {}, not {:?}",
                param.name,
                quoted_list(allowed),
                given
            ),
            hint,
        );
        false
    }

    fn notifier(&mut self, at: YamlPath, value: &Value) -> bool {
        let (Some(known), Some(name)) = (&self.env.notifiers, value.as_str()) else {
            return true;
        };
        if known.contains(name) {
            return true;
        }
        let names: Vec<&str> = known.iter().map(String::as_str).collect();
        let hint = did_you_mean(name, names.iter().copied()).unwrap_or_else(|| {
            if names.is_empty() {
                "the config defines no notifiers".to_owned()
            } else {
                format!("configured notifiers: {}", quoted_list(&names))
            }
        });
        self.error(at, format!("unknown notifier `{name}`"), Some(hint));
        false
    }

    fn retry(&mut self, i: usize, raw: &RawStep) -> Result<Option<Retry>, ()> {
        let Some(r) = &raw.retry else { return Ok(None) };
        let at = step_at(i).key("retry");
        let retry = Retry {
            max_attempts: r.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
            backoff: r.backoff.map_or(DEFAULT_BACKOFF_BASE, |d| d.get()),
            cap: r.cap.map_or(DEFAULT_BACKOFF_CAP, |d| d.get()),
        };
        let mut ok = true;
        if retry.max_attempts == 0 {
            self.error(
                at.key("max_attempts"),
                "`max_attempts` must be at least 1",
                Some("1 means no retry".into()),
            );
            ok = false;
        }
        if retry.cap < retry.backoff {
            let place = if r.cap.is_some() {
                at.key("cap")
            } else {
                at.key("backoff")
            };
            self.error(
                place,
                format!(
                    "retry cap ({}) is shorter than its backoff ({})",
                    humantime::format_duration(retry.cap),
                    humantime::format_duration(retry.backoff)
                ),
                None,
            );
            ok = false;
        }
        if ok {
            Ok(Some(retry))
        } else {
            Err(())
        }
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// The steps in the job contract's shape (contracts.md), copied into every job of the rule.
pub(crate) fn steps_json(steps: &[Step]) -> Value {
    Value::Array(
        steps
            .iter()
            .map(|s| {
                json!({
                    "id": s.id,
                    "action": s.action.name,
                    "with": s.with,
                    "when": s.when,
                    "continue_on_error": s.continue_on_error,
                    "retry": s.retry.map(|r| json!({
                        "max_attempts": r.max_attempts,
                        "backoff": humantime::format_duration(r.backoff).to_string(),
                        "cap": humantime::format_duration(r.cap).to_string(),
                    })),
                })
            })
            .collect(),
    )
}
