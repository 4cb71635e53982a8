//! `rules test`: the tests written beside rules. Each test offers a sample event (or several, in
//! order) to the rules of its own file, with an in-memory firing state, and checks which rules
//! fire on the last one, with which key and which rendered step parameters.

use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Map, Value};

use super::compile::FileTests;
use super::eval::{self, EventContext, MemoryState};
use super::model::{RawExpect, RawTest, RawTestEvent};
use super::{Rule, RuleSet, ENV};
use crate::actions::spec::ParamKind;
use crate::api::PullRequest;
use crate::store::{EventRecord, EventSource};
use crate::template::{eval_bool, render_value};
use crate::yaml::Location;

/// Where test events happen unless they say: a Monday morning, UTC.
fn default_at(index: usize) -> DateTime<Utc> {
    let base = Utc
        .with_ymd_and_hms(2025, 1, 6, 9, 0, 0)
        .single()
        .unwrap_or_default();
    base + chrono::Duration::minutes(index as i64)
}

/// The result of one test.
#[derive(Debug, Clone)]
pub struct TestResult {
    pub file: std::path::PathBuf,
    pub location: Location,
    pub name: String,
    /// Empty when the test passed.
    pub failures: Vec<String>,
}

impl TestResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs every test of `tests` against the rules of `set`; `vars` are the config's, if any.
pub fn run_tests(
    set: &RuleSet,
    tests: &[FileTests],
    vars: Option<&Map<String, Value>>,
) -> Vec<TestResult> {
    let mut results = Vec::new();
    for file in tests {
        let rules: Vec<&Rule> = file
            .rules
            .iter()
            .filter_map(|name| set.rule(name).map(|r| r.as_ref()))
            .collect();
        for (test, location) in &file.tests {
            let failures = match run_one(&file.file, &rules, test, vars) {
                Ok(failures) => failures,
                Err(problem) => vec![problem],
            };
            results.push(TestResult {
                file: file.file.clone(),
                location: *location,
                name: test.name.clone(),
                failures,
            });
        }
    }
    results
}

fn run_one(
    file: &Path,
    rules: &[&Rule],
    test: &RawTest,
    config_vars: Option<&Map<String, Value>>,
) -> Result<Vec<String>, String> {
    let events = test_events(file, test)?;
    let vars = test
        .vars
        .clone()
        .or_else(|| config_vars.cloned())
        .unwrap_or_default();
    // Tests have no silences.
    let mut memory = MemoryState::default();
    let mut last = Vec::new();
    for (i, raw) in events.iter().enumerate() {
        let event = event_record(file, test, raw, i)?;
        let ctx = EventContext::new(&event, &vars, event.at);
        last.clear();
        for rule in rules.iter().filter(|r| offered(r, &event, raw)) {
            let decision = memory.decide(rule, &ctx, event.at);
            last.push((*rule, decision));
        }
        if i + 1 == events.len() {
            return Ok(compare(&ctx, test, &last));
        }
    }
    Ok(Vec::new())
}

fn offered(rule: &Rule, event: &EventRecord, raw: &RawTestEvent) -> bool {
    if event.kind == "schedule" {
        rule.schedule().is_some() && raw.rule.as_deref().is_none_or(|name| name == rule.name)
    } else {
        rule.matches_kind(&event.kind)
    }
}

fn test_events(file: &Path, test: &RawTest) -> Result<Vec<RawTestEvent>, String> {
    match (&test.event, &test.events, &test.fixture) {
        (Some(event), None, None) => Ok(vec![event.clone()]),
        (None, Some(events), None) if !events.is_empty() => Ok(events.clone()),
        (None, None, Some(fixture)) => {
            let value = read_data(file, fixture)?;
            serde_json::from_value(value).map_err(|e| format!("fixture {}: {e}", fixture.display()))
        }
        _ => Err("a test needs exactly one of `event`, `events` (not empty) or `fixture`".into()),
    }
}

/// Reads a JSON or YAML file named relative to the rule file.
fn read_data(rule_file: &Path, name: &Path) -> Result<Value, String> {
    let path = rule_file.parent().unwrap_or(Path::new(".")).join(name);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_yaml::from_str(&text).map_err(|e| format!("cannot parse {}: {e}", path.display()))
}

fn event_record(
    file: &Path,
    test: &RawTest,
    raw: &RawTestEvent,
    index: usize,
) -> Result<EventRecord, String> {
    let at = match &raw.at {
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|e| format!("event `at` {text:?}: {e}"))?
            .with_timezone(&Utc),
        None => default_at(index),
    };
    let source = match raw.source.as_deref() {
        None if raw.kind.starts_with("github.") => EventSource::Webhook,
        None if raw.kind == "schedule" => EventSource::Schedule,
        None => EventSource::Poll,
        Some(text) => serde_json::from_value(json!(text)).map_err(|_| {
            format!("event `source` {text:?}: one of poll, webhook, schedule, startup")
        })?,
    };
    let payload = match (&raw.payload, &raw.payload_file) {
        (_, Some(name)) => read_data(file, name)?,
        (Some(payload), None) => payload.clone(),
        (None, None) => Value::Null,
    };
    let pr = raw
        .pr
        .clone()
        .or_else(|| first_pr(raw.run.as_ref()))
        .unwrap_or(Value::Null);
    let run = raw.run.clone().unwrap_or(Value::Null);
    let data = json!({
        "run": run,
        "from": raw.from,
        "to": raw.to.clone().or_else(|| run.get("status").and_then(Value::as_str).map(str::to_owned)),
        "pr": pr,
        "payload": payload,
        "action": raw.action.clone().or_else(|| payload.get("action").and_then(Value::as_str).map(str::to_owned)),
        "summary": raw.summary,
        "rule": raw.rule,
    });
    Ok(EventRecord {
        seq: index as u64 + 1,
        id: raw
            .id
            .clone()
            .unwrap_or_else(|| format!("test/{}/{index}", test.name)),
        kind: raw.kind.clone(),
        at,
        source,
        org_id: run.get("organization_id").and_then(Value::as_i64),
        run_id: run.get("id").and_then(Value::as_i64),
        data,
    })
}

/// The `pr` context of the run's first pull request, as the poller would give it.
fn first_pr(run: Option<&Value>) -> Option<Value> {
    let first = run?.get("github_pull_requests")?.get(0)?.clone();
    let pr: PullRequest = serde_json::from_value(first).ok()?;
    Some(crate::events::pr_context(&pr))
}

fn compare(
    ctx: &EventContext,
    test: &RawTest,
    decisions: &[(&Rule, eval::Decision)],
) -> Vec<String> {
    let mut failures = Vec::new();
    for (rule, decision) in decisions {
        let expected = test.expect.iter().any(|e| e.rule == rule.name);
        if decision.outcome.fired() && !expected {
            failures.push(format!(
                "`{}` fired ({}) but is not expected",
                rule.name,
                decision.reason.clone().unwrap_or_default()
            ));
        }
    }
    for expect in &test.expect {
        let Some((rule, decision)) = decisions.iter().find(|(r, _)| r.name == expect.rule) else {
            failures.push(format!(
                "`{}` is expected to fire but no rule of this file by that name sees the event",
                expect.rule
            ));
            continue;
        };
        if !decision.outcome.fired() {
            failures.push(format!(
                "`{}` did not fire: {} ({})",
                rule.name,
                decision.outcome.as_str(),
                decision.reason.clone().unwrap_or_default()
            ));
            continue;
        }
        failures.extend(check_expect(ctx, test, rule, decision, expect));
    }
    failures
}

fn check_expect(
    ctx: &EventContext,
    test: &RawTest,
    rule: &Rule,
    decision: &eval::Decision,
    expect: &RawExpect,
) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(key) = &expect.key {
        if decision.key.as_ref() != Some(key) {
            failures.push(format!(
                "`{}` key: expected {key:?}, got {:?}",
                rule.name,
                decision.key.clone().unwrap_or_default()
            ));
        }
    }
    let Some(steps) = &expect.steps else {
        return failures;
    };
    if steps.len() != rule.steps.len() {
        failures.push(format!(
            "`{}` has {} steps, the test expects {}",
            rule.name,
            rule.steps.len(),
            steps.len()
        ));
    }
    let mut context = ctx.job_context(rule);
    context["steps"] = Value::Object(test.outputs.clone().unwrap_or_default());
    for (i, (step, expected)) in rule.steps.iter().zip(steps).enumerate() {
        let label = format!("`{}` step {} ({})", rule.name, i + 1, step.action.name);
        if let Some(action) = &expected.action {
            if action != step.action.name {
                failures.push(format!("{label}: expected action `{action}`"));
            }
        }
        let skipped = match &step.when {
            Some(when) => match eval_bool(&ENV, when, &context) {
                Ok(run) => !run,
                Err(e) => {
                    failures.push(format!("{label}: `when` failed: {e}"));
                    continue;
                }
            },
            None => false,
        };
        if expected.skipped.unwrap_or(false) != skipped {
            let what = if skipped { "skipped" } else { "not skipped" };
            failures.push(format!("{label}: {what}, the test expects otherwise"));
        }
        let Some(want) = &expected.with else { continue };
        let rendered = match render_value(&ENV, &Value::Object(step.with.clone()), &context) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{label}: rendering `with` failed: {e}"));
                continue;
            }
        };
        for (name, want_value) in want {
            let got = rendered.get(name).cloned().unwrap_or(Value::Null);
            let kind = step.action.param(name).map_or(ParamKind::Any, |p| p.kind);
            let got = coerce(kind, got);
            if &got != want_value {
                failures.push(format!("{label}: `{name}` is {got}, expected {want_value}"));
            }
        }
    }
    failures
}

/// A rendered parameter as the executor passes it on (templates render to text).
pub fn coerce(kind: ParamKind, value: Value) -> Value {
    let Value::String(text) = &value else {
        return value;
    };
    match kind {
        ParamKind::Int => text.trim().parse::<i64>().map_or(value, |n| json!(n)),
        ParamKind::Bool => match text.trim() {
            "true" => json!(true),
            "false" => json!(false),
            _ => value,
        },
        ParamKind::StringList => Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| json!(s))
                .collect(),
        ),
        ParamKind::Object => match serde_json::from_str::<Value>(text) {
            Ok(object @ Value::Object(_)) => object,
            _ => value,
        },
        ParamKind::String | ParamKind::Duration | ParamKind::Any => value,
    }
}
