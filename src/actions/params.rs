//! Step parameters: rendered `with` values coerced to the kind the catalogue declares ("42" → 42
//! for an Int), required ones checked, and the values some parameters allow. The rules check
//! literal values with [`check_literal`] when a file loads; the executor runs [`prepare`] on the
//! rendered values just before a step, so both apply the same rules.

use serde_json::{Map, Value};

use super::spec::{ActionSpec, ParamKind};

/// A parameter that cannot be used as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{param}`: {message}")]
pub struct ParamError {
    pub param: String,
    pub message: String,
}

impl ParamError {
    fn new(param: &str, message: impl Into<String>) -> ParamError {
        ParamError {
            param: param.to_owned(),
            message: message.into(),
        }
    }
}

/// States GitHub accepts for a commit status.
pub const COMMIT_STATES: &[&str] = &["error", "failure", "pending", "success"];
/// States Codegen accepts for a PR edit.
pub const PR_STATES: &[&str] = &["open", "closed", "draft", "ready_for_review"];
/// Agents a created run can use.
pub const AGENT_TYPES: &[&str] = &["codegen", "claude_code"];
/// Levels of the `log` action.
pub const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug"];

/// Coerces every rendered parameter of `action`: unknown names and missing required ones are
/// errors; `null` and (for non-string kinds) `""` count as not given.
pub fn prepare(
    action: &ActionSpec,
    with: &Map<String, Value>,
) -> Result<Map<String, Value>, ParamError> {
    let mut out = Map::new();
    for (name, value) in with {
        let Some(spec) = action.param(name) else {
            return Err(ParamError::new(
                name,
                format!("{} has no parameter of this name", action.name),
            ));
        };
        let value = coerce(spec.kind, value.clone()).map_err(|m| ParamError::new(name, m))?;
        if let Some(value) = value {
            check_value(action.name, name, &value).map_err(|m| ParamError::new(name, m))?;
            out.insert(name.clone(), value);
        }
    }
    for spec in action.params.iter().filter(|p| p.required) {
        if !out.contains_key(spec.name) {
            return Err(ParamError::new(spec.name, "is required"));
        }
    }
    Ok(out)
}

/// Checks a literal (non-template) value of a rule file against the parameter's kind and allowed
/// values; templates are checked only once rendered.
pub fn check_literal(action: &ActionSpec, name: &str, value: &Value) -> Result<(), String> {
    let spec = action
        .param(name)
        .ok_or_else(|| format!("{} has no parameter `{name}`", action.name))?;
    if let Value::String(text) = value {
        if crate::template::is_template(text) {
            return Ok(());
        }
    }
    match coerce(spec.kind, value.clone())? {
        Some(value) => check_value(action.name, name, &value),
        None => Ok(()),
    }
}

/// Turns a rendered value into the declared kind; `Ok(None)` means "not given".
pub fn coerce(kind: ParamKind, value: Value) -> Result<Option<Value>, String> {
    if value.is_null() {
        return Ok(None);
    }
    if kind != ParamKind::String && kind != ParamKind::Any && value.as_str() == Some("") {
        return Ok(None);
    }
    let wrong = |value: &Value| format!("expected {}, got {}", kind.describe(), short(value));
    let coerced = match (kind, value) {
        (ParamKind::Any, v) => v,
        (ParamKind::String, Value::String(s)) => Value::String(s),
        (ParamKind::String, v @ (Value::Number(_) | Value::Bool(_))) => {
            Value::String(v.to_string())
        }
        (ParamKind::Int, Value::Number(n)) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
                _ => return Err(wrong(&Value::Number(n))),
            },
        },
        (ParamKind::Int, Value::String(s)) => match s.trim().parse::<i64>() {
            Ok(i) => Value::from(i),
            Err(_) => return Err(wrong(&Value::String(s))),
        },
        (ParamKind::Bool, Value::Bool(b)) => Value::Bool(b),
        (ParamKind::Bool, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Value::Bool(true),
            "false" | "no" | "0" => Value::Bool(false),
            _ => return Err(wrong(&Value::String(s))),
        },
        (ParamKind::StringList, Value::Array(items)) => {
            let mut list = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) if !s.trim().is_empty() => list.push(Value::String(s)),
                    Value::String(_) | Value::Null => {}
                    Value::Number(_) | Value::Bool(_) => list.push(Value::String(item.to_string())),
                    other => return Err(wrong(&other)),
                }
            }
            Value::Array(list)
        }
        (ParamKind::StringList, Value::String(s)) => Value::Array(
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| Value::String(p.to_owned()))
                .collect(),
        ),
        (ParamKind::Object, Value::Object(map)) => Value::Object(map),
        (ParamKind::Object, Value::String(s)) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Object(map)) => Value::Object(map),
            _ => return Err(wrong(&Value::String(s))),
        },
        (ParamKind::Duration, Value::String(s)) => match humantime::parse_duration(s.trim()) {
            Ok(_) => Value::String(s.trim().to_owned()),
            Err(_) => return Err(wrong(&Value::String(s))),
        },
        (ParamKind::Duration, Value::Number(n)) => match n.as_u64() {
            Some(secs) => Value::String(format!("{secs}s")),
            None => return Err(wrong(&Value::Number(n))),
        },
        (_, other) => return Err(wrong(&other)),
    };
    Ok(Some(coerced))
}

/// The values particular parameters allow beyond their kind.
fn check_value(action: &str, param: &str, value: &Value) -> Result<(), String> {
    let one_of = |allowed: &[&str]| {
        let text = value.as_str().unwrap_or_default();
        if allowed.contains(&text) {
            Ok(())
        } else {
            Err(format!(
                "must be one of {}, got {}",
                allowed.join(", "),
                short(value)
            ))
        }
    };
    match (action, param) {
        ("github.commit_status", "state") => one_of(COMMIT_STATES),
        ("codegen.edit_pr", "state") => one_of(PR_STATES),
        ("codegen.create_run", "agent_type") => one_of(AGENT_TYPES),
        ("log", "level") => one_of(LOG_LEVELS),
        ("codegen.fetch_logs", "limit") => match value.as_i64() {
            Some(1..=100) => Ok(()),
            _ => Err(format!("must be between 1 and 100, got {}", short(value))),
        },
        (_, "run_id" | "org_id" | "sandbox_id" | "pr_id" | "repo_id") => match value.as_i64() {
            Some(id) if id > 0 => Ok(()),
            _ => Err(format!("must be a positive id, got {}", short(value))),
        },
        (
            "github.comment"
            | "github.add_labels"
            | "github.remove_labels"
            | "github.request_reviewers",
            "pr",
        ) => super::github::PrRef::parse(value.as_str().unwrap_or_default()).map(|_| ()),
        ("github.commit_status", "repo") => {
            super::github::RepoRef::parse(value.as_str().unwrap_or_default()).map(|_| ())
        }
        _ => Ok(()),
    }
}

/// A value for an error message, cut short.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.len() <= 60 {
        return text;
    }
    let mut end = 57;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::actions::spec::action;

    fn with(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn rendered_strings_become_the_declared_kinds() {
        let analyze = action("codegen.analyze_logs").unwrap();
        let out = prepare(analyze, &with(json!({"sandbox_id": "42"}))).unwrap();
        assert_eq!(out["sandbox_id"], json!(42));

        let logs = action("codegen.fetch_logs").unwrap();
        let out = prepare(
            logs,
            &with(json!({"limit": 50.0, "reverse": "True", "all": ""})),
        )
        .unwrap();
        assert_eq!(out, with(json!({"limit": 50, "reverse": true})));

        let labels = action("github.add_labels").unwrap();
        let out = prepare(
            labels,
            &with(json!({"pr": "acme/w#1", "labels": "bug, ops,"})),
        )
        .unwrap();
        assert_eq!(out["labels"], json!(["bug", "ops"]));

        let create = action("codegen.create_run").unwrap();
        let out = prepare(create, &with(json!({"prompt": 5, "metadata": "{\"a\":1}"}))).unwrap();
        assert_eq!(out["prompt"], json!("5"));
        assert_eq!(out["metadata"], json!({"a": 1}));
    }

    #[test]
    fn bad_missing_and_unknown_parameters_are_named() {
        let analyze = action("codegen.analyze_logs").unwrap();
        let err = prepare(analyze, &with(json!({"sandbox_id": "forty"}))).unwrap_err();
        assert_eq!(err.param, "sandbox_id");
        assert!(err.message.contains("an integer"), "{err}");
        let err = prepare(analyze, &with(json!({}))).unwrap_err();
        assert_eq!(err.to_string(), "`sandbox_id`: is required");
        let err = prepare(analyze, &with(json!({"sandbox_id": 1, "nope": 1}))).unwrap_err();
        assert_eq!(err.param, "nope");
        let status = action("github.commit_status").unwrap();
        let err = prepare(
            status,
            &with(json!({"repo": "acme/w", "sha": "abc", "state": "green"})),
        )
        .unwrap_err();
        assert!(err.message.contains("one of error, failure"), "{err}");
        let comment = action("github.comment").unwrap();
        assert!(prepare(comment, &with(json!({"pr": "nope", "body": "x"}))).is_err());
    }

    #[test]
    fn literals_are_checked_and_templates_left_for_later() {
        let logs = action("codegen.fetch_logs").unwrap();
        assert!(check_literal(logs, "limit", &json!(500)).is_err());
        assert!(check_literal(logs, "limit", &json!("{{ vars.limit }}")).is_ok());
        assert!(check_literal(logs, "limit", &json!(50)).is_ok());
        assert!(check_literal(logs, "bogus", &json!(1)).is_err());
        let wait = action("codegen.wait_for_run").unwrap();
        assert!(check_literal(wait, "timeout", &json!("30m")).is_ok());
        assert!(check_literal(wait, "timeout", &json!("soon")).is_err());
    }
}
