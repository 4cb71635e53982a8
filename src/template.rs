//! The one template language of rules: Jinja expressions and templates (minijinja), shared by
//! rule conditions, keys, step `with` parameters and the executor that renders them at run time.
//!
//! Chained lookups on missing values are allowed (`run.metadata.sandbox_id` when `metadata` is
//! null gives an undefined that `default(...)` replaces); names that do not exist for a rule's
//! trigger are caught when the rule loads, not here.

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

/// A template or expression that failed to compile or render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub message: String,
}

impl From<minijinja::Error> for TemplateError {
    fn from(err: minijinja::Error) -> Self {
        let mut message = err.kind().to_string();
        if let Some(detail) = err.detail() {
            message.push_str(": ");
            message.push_str(detail);
        }
        TemplateError { message }
    }
}

/// The environment every rule template and expression is compiled in.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_keep_trailing_newline(true);
    env
}

/// Whether a string holds template syntax (otherwise it is used as is).
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// Renders one template string against a JSON context.
pub fn render_str(
    env: &Environment<'_>,
    template: &str,
    ctx: &Value,
) -> Result<String, TemplateError> {
    if !is_template(template) {
        return Ok(template.to_owned());
    }
    Ok(env.render_str(template, minijinja::Value::from_serialize(ctx))?)
}

/// Renders every string inside `value` (objects and lists are walked); other values are kept.
pub fn render_value(
    env: &Environment<'_>,
    value: &Value,
    ctx: &Value,
) -> Result<Value, TemplateError> {
    Ok(match value {
        Value::String(text) => Value::String(render_str(env, text, ctx)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_value(env, v, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_value(env, v, ctx)?)))
                .collect::<Result<_, TemplateError>>()?,
        ),
        other => other.clone(),
    })
}

/// Evaluates a condition; an undefined or none result is false.
pub fn eval_bool(env: &Environment<'_>, expr: &str, ctx: &Value) -> Result<bool, TemplateError> {
    let compiled = env.compile_expression(expr)?;
    let result = compiled.eval(minijinja::Value::from_serialize(ctx))?;
    Ok(result.is_true())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_design_examples_render() {
        let env = environment();
        let ctx = json!({
            "run": {"id": 5, "status": "FAILED", "metadata": null, "web_url": "https://x/5"},
            "vars": {"default_sandbox_id": 42},
            "steps": {"analysis": {"agent_run_id": 9}},
        });
        assert!(eval_bool(&env, r#"run.status in ["FAILED", "ERROR"]"#, &ctx).unwrap());
        assert_eq!(
            render_str(
                &env,
                "{{ run.metadata.sandbox_id | default(vars.default_sandbox_id) }}",
                &ctx
            )
            .unwrap(),
            "42"
        );
        let with = json!({"text": "Run {{ run.id }} ended {{ run.status }} ({{ steps.analysis.agent_run_id }})", "limit": 50});
        assert_eq!(
            render_value(&env, &with, &ctx).unwrap(),
            json!({"text": "Run 5 ended FAILED (9)", "limit": 50})
        );
        assert!(!eval_bool(&env, "run.nothing", &ctx).unwrap());
    }

    #[test]
    fn syntax_errors_are_reported() {
        let env = environment();
        let err = eval_bool(&env, "run.status ==", &json!({})).unwrap_err();
        assert!(err.message.contains("syntax"), "{err}");
    }
}
