//! The shape of the context a rule sees, per event type (DESIGN §4), and the check that every
//! name a condition or template uses exists in it: `run.stauts` is a load error, not a silent
//! false at run time.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::actions::spec::ActionSpec;

/// What a name in the context holds, as far as checks go.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Anything: fields below are not checked (`run.metadata`, `payload`, `vars` without config).
    Any,
    /// A scalar, described for messages (`a string`).
    Scalar(&'static str),
    /// An object with exactly these fields.
    Object(BTreeMap<String, Shape>),
    /// A list of items of one shape.
    List(Box<Shape>),
}

impl Shape {
    fn object<const N: usize>(fields: [(&str, Shape); N]) -> Shape {
        Shape::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    fn describe(&self) -> &'static str {
        match self {
            Shape::Any => "any value",
            Shape::Scalar(what) => what,
            Shape::Object(_) => "an object",
            Shape::List(_) => "a list",
        }
    }
}

const STRING: Shape = Shape::Scalar("a string");
const INT: Shape = Shape::Scalar("an integer");

/// The families of event types, whose contexts differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// `run.*`: a run and its transition.
    Run,
    /// `github.*`: a verified delivery.
    Github,
    /// `schedule`: a cron tick.
    Schedule,
}

impl Family {
    /// How the family is named in messages.
    pub fn describe(self) -> &'static str {
        match self {
            Family::Run => "run.* events",
            Family::Github => "github.* events",
            Family::Schedule => "schedules",
        }
    }
}

fn pr_shape() -> Shape {
    Shape::object([
        ("id", INT),
        ("url", STRING),
        ("title", STRING),
        ("head_branch", STRING),
        ("repo", STRING),
        ("number", INT),
    ])
}

/// An agent run as the API returns it (`AgentRunResponse`).
pub fn run_shape() -> Shape {
    let api_pr = Shape::object([
        ("id", INT),
        ("created_at", STRING),
        ("title", STRING),
        ("url", STRING),
        ("head_branch_name", STRING),
    ]);
    Shape::object([
        ("id", INT),
        ("organization_id", INT),
        ("status", STRING),
        ("created_at", STRING),
        ("web_url", STRING),
        ("result", STRING),
        ("summary", STRING),
        ("source_type", STRING),
        ("github_pull_requests", Shape::List(Box::new(api_pr))),
        ("metadata", Shape::Any),
    ])
}

/// The `summary` of a schedule tick (see `sources::scheduler`).
fn summary_shape() -> Shape {
    let failed_run = Shape::object([
        ("id", INT),
        ("org_id", INT),
        ("status", STRING),
        ("web_url", STRING),
        ("at", STRING),
    ]);
    Shape::object([
        ("since", STRING),
        ("until", STRING),
        ("total", INT),
        ("created", INT),
        ("finished", INT),
        ("failed", INT),
        ("by_status", Shape::Any),
        ("failed_runs", Shape::List(Box::new(failed_run))),
    ])
}

fn event_shape(family: Family) -> Shape {
    let mut fields = vec![
        ("id", STRING),
        ("type", STRING),
        ("at", STRING),
        ("source", STRING),
    ];
    match family {
        Family::Run => fields.extend([("from", STRING), ("to", STRING)]),
        Family::Github => fields.push(("action", STRING)),
        Family::Schedule => {}
    }
    Shape::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// Where in a rule a name is used: what `steps` holds there.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// The rule's `when` and `key`: no steps yet.
    Rule,
    /// A step's `with` or `when`: the outputs of the steps before it.
    Step(&'a [(String, &'static ActionSpec)]),
}

/// Everything the checks need to know besides the rule: the configured vars, when known.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// `vars` of the config; `None` when rules are checked without one.
    pub vars: Option<Map<String, Value>>,
}

/// Why a name does not fit the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    pub message: String,
    pub hint: Option<String>,
}

impl NameError {
    fn new(message: String, hint: Option<String>) -> Self {
        Self { message, hint }
    }
}

/// Root names every context has, whatever the family.
const COMMON_ROOTS: [&str; 3] = ["vars", "rule", "now"];
/// Functions of the template environment (not context names).
const GLOBALS: [&str; 4] = ["range", "dict", "namespace", "debug"];

/// The shape of root name `root` for `family`, or `None` when that family does not have it.
fn root_shape(root: &str, family: Family, scope: Scope<'_>, names: &Names) -> Option<Shape> {
    Some(match (root, family) {
        ("event", _) => event_shape(family),
        ("run", Family::Run | Family::Github) => run_shape(),
        ("pr", Family::Run | Family::Github) => pr_shape(),
        ("payload", Family::Github) => Shape::Any,
        ("summary", Family::Schedule) => summary_shape(),
        ("vars", _) => match &names.vars {
            Some(vars) => Shape::Object(vars.keys().map(|k| (k.clone(), Shape::Any)).collect()),
            None => Shape::Any,
        },
        ("rule", _) => Shape::object([("name", STRING), ("description", STRING)]),
        ("now", _) => STRING,
        ("steps", _) => match scope {
            Scope::Rule => return None,
            Scope::Step(before) => Shape::Object(
                before
                    .iter()
                    .map(|(id, action)| (id.clone(), output_shape(action)))
                    .collect(),
            ),
        },
        _ => return None,
    })
}

/// What a step of `action` outputs.
pub fn output_shape(action: &ActionSpec) -> Shape {
    match action.outputs {
        Some(fields) => Shape::Object(
            fields
                .iter()
                .map(|f| ((*f).to_owned(), Shape::Any))
                .collect(),
        ),
        None => Shape::Any,
    }
}

fn roots_of(family: Family, scope: Scope<'_>) -> Vec<&'static str> {
    let mut roots = vec!["event"];
    match family {
        Family::Run => roots.extend(["run", "pr"]),
        Family::Github => roots.extend(["run", "pr", "payload"]),
        Family::Schedule => roots.push("summary"),
    }
    if matches!(scope, Scope::Step(_)) {
        roots.push("steps");
    }
    roots.extend(COMMON_ROOTS);
    roots
}

/// Checks one dotted name (`run.status`, `steps.logs.total`) against every family the rule's
/// trigger can match.
pub fn check_name(
    dotted: &str,
    families: &[Family],
    scope: Scope<'_>,
    names: &Names,
) -> Result<(), NameError> {
    let mut parts = dotted.split('.');
    let root = parts.next().unwrap_or_default();
    if GLOBALS.contains(&root) {
        return Ok(());
    }
    let fields: Vec<&str> = parts.collect();
    for &family in families {
        let Some(shape) = root_shape(root, family, scope, names) else {
            return Err(missing_root(root, family, families, scope));
        };
        walk(root, &shape, &fields, scope, family)?;
    }
    Ok(())
}

fn missing_root(root: &str, family: Family, families: &[Family], scope: Scope<'_>) -> NameError {
    if root == "steps" {
        return NameError::new(
            "`steps` is not available here".into(),
            Some("step outputs can be used in a later step's `with` and `when`".into()),
        );
    }
    let known_elsewhere = [Family::Run, Family::Github, Family::Schedule]
        .into_iter()
        .filter(|f| roots_of(*f, Scope::Rule).contains(&root))
        .map(Family::describe)
        .collect::<Vec<_>>();
    if !known_elsewhere.is_empty() {
        let on = if families.len() > 1 {
            format!("on {} (this trigger can match them)", family.describe())
        } else {
            format!("on {}", family.describe())
        };
        return NameError::new(
            format!("`{root}` is not available {on}"),
            Some(format!("it is set on {}", known_elsewhere.join(" and "))),
        );
    }
    let candidates = roots_of(family, scope);
    let hint = super::did_you_mean(root, candidates.iter().copied())
        .unwrap_or_else(|| format!("the context holds {}", quoted_list(&candidates)));
    NameError::new(format!("unknown name `{root}`"), Some(hint))
}

fn walk(
    root: &str,
    shape: &Shape,
    fields: &[&str],
    scope: Scope<'_>,
    family: Family,
) -> Result<(), NameError> {
    let mut shape = shape;
    let mut path = root.to_owned();
    for field in fields {
        shape = match shape {
            Shape::Any => return Ok(()),
            Shape::Object(map) => match map.get(*field) {
                Some(inner) => inner,
                None => return Err(no_field(root, &path, field, map, scope, family)),
            },
            Shape::List(item) if field.parse::<usize>().is_ok() => item,
            other => {
                let hint = if other == &STRING {
                    Some(format!("filters work on strings, e.g. `{path} | lower`"))
                } else {
                    None
                };
                return Err(NameError::new(
                    format!(
                        "`{path}` is {}: it has no field `{field}`",
                        other.describe()
                    ),
                    hint,
                ));
            }
        };
        path.push('.');
        path.push_str(field);
    }
    Ok(())
}

fn no_field(
    root: &str,
    path: &str,
    field: &str,
    map: &BTreeMap<String, Shape>,
    scope: Scope<'_>,
    family: Family,
) -> NameError {
    if path == "steps" {
        if let Scope::Step(before) = scope {
            let hint = if before.is_empty() {
                "no step with an id runs before this one".to_owned()
            } else {
                let ids: Vec<&str> = before.iter().map(|(id, _)| id.as_str()).collect();
                super::did_you_mean(field, ids.iter().copied())
                    .unwrap_or_else(|| format!("steps before this one: {}", quoted_list(&ids)))
            };
            return NameError::new(
                format!("`steps.{field}` is not a step before this one"),
                Some(hint),
            );
        }
    }
    if path == "event" {
        let families: Vec<&str> = [Family::Run, Family::Github, Family::Schedule]
            .into_iter()
            .filter(|f| matches!(event_shape(*f), Shape::Object(m) if m.contains_key(field)))
            .map(Family::describe)
            .collect();
        if !families.is_empty() {
            return NameError::new(
                format!("`event.{field}` is not set on {}", family.describe()),
                Some(format!("it is set on {}", families.join(" and "))),
            );
        }
    }
    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
    let hint = super::did_you_mean(field, keys.iter().copied()).or_else(|| {
        if keys.is_empty() {
            None
        } else {
            Some(format!("`{path}` has {}", quoted_list(&keys)))
        }
    });
    let what = if root == "steps" && path.matches('.').count() == 1 {
        format!(
            "step `{}` outputs no field `{field}`",
            &path["steps.".len()..]
        )
    } else if root == "vars" && path == "vars" {
        format!("`vars.{field}` is not set in the config")
    } else {
        format!("`{path}` has no field `{field}`")
    };
    NameError::new(what, hint)
}

/// `a`, `b` and `c` as "`a`, `b`, `c`".
pub fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, families: &[Family]) -> Result<(), NameError> {
        check_name(name, families, Scope::Rule, &Names::default())
    }

    #[test]
    fn run_fields_are_checked_with_a_hint() {
        assert!(check("run.status", &[Family::Run]).is_ok());
        assert!(check("run.metadata.sandbox_id.deep", &[Family::Run]).is_ok());
        let err = check("run.stauts", &[Family::Run]).unwrap_err();
        assert_eq!(err.message, "`run` has no field `stauts`");
        assert_eq!(err.hint.as_deref(), Some("did you mean `status`?"));
    }

    #[test]
    fn names_of_other_families_are_refused() {
        let err = check("payload.action", &[Family::Run]).unwrap_err();
        assert_eq!(err.message, "`payload` is not available on run.* events");
        let err = check("run.id", &[Family::Schedule]).unwrap_err();
        assert_eq!(err.message, "`run` is not available on schedules");
        assert!(check("summary.failed", &[Family::Schedule]).is_ok());
        assert!(check("event.from", &[Family::Run, Family::Github]).is_err());
    }

    #[test]
    fn scalars_have_no_fields_and_lists_take_indexes() {
        let err = check("run.status.lower", &[Family::Run]).unwrap_err();
        assert_eq!(
            err.message,
            "`run.status` is a string: it has no field `lower`"
        );
        assert!(check("run.github_pull_requests.0.url", &[Family::Run]).is_ok());
        assert!(check("range", &[Family::Run]).is_ok());
    }
}
