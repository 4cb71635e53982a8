//! Unit tests of evaluation: outcomes, keys, dedupe, cooldown, throttle, silences, modes.

use std::path::PathBuf;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::rules::{compile_sources, CompileEnv, RuleSet};
use crate::store::EventSource;

fn set(yaml: &str) -> RuleSet {
    let compiled = compile_sources(
        &[(PathBuf::from("t.yaml"), yaml.to_owned())],
        &CompileEnv::default(),
    );
    let errors: Vec<String> = compiled.errors().map(ToString::to_string).collect();
    assert!(errors.is_empty(), "{errors:?}");
    compiled.set.unwrap()
}

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 6, 9, 0, 0).unwrap() + Duration::minutes(minutes)
}

fn event(id: &str, kind: &str, data: serde_json::Value, when: DateTime<Utc>) -> EventRecord {
    EventRecord {
        seq: 1,
        id: id.into(),
        kind: kind.into(),
        at: when,
        source: EventSource::Poll,
        org_id: Some(7),
        run_id: Some(1),
        data,
    }
}

type Mem = MemoryState;

/// Decides with no variables, at the event's own time.
fn decide_event(mem: &mut Mem, rule: &Rule, event: &EventRecord) -> Decision {
    let ctx = EventContext::new(event, &Map::new(), event.at);
    mem.decide(rule, &ctx, event.at)
}

const PR_RULE: &str = r#"
rules:
  - name: pr
    trigger: run.pr_opened
    when: run.source_type == "API"
    key: "{{ pr.url }}"
    cooldown: 1h
    steps: [{ action: codegen.ban_checks }]
"#;

fn pr_event(id: &str, source_type: &str, minutes: i64) -> EventRecord {
    let data = json!({"run": {"id": 1, "source_type": source_type}, "pr": {"url": "https://github.com/a/b/pull/1"}});
    event(id, "run.pr_opened", data, at(minutes))
}

#[test]
fn when_false_says_why_with_the_values_read() {
    let set = set(PR_RULE);
    let rule = set.rule("pr").unwrap();
    let d = decide_event(&mut Mem::default(), rule, &pr_event("e1", "LOCAL", 0));
    assert_eq!(d.outcome, Outcome::NotMatched);
    assert_eq!(
        d.reason.as_deref(),
        Some(r#"`when` is false: run.source_type == "API" (run.source_type = "LOCAL")"#)
    );
}

#[test]
fn cooldown_is_per_key_and_ends() {
    let set = set(PR_RULE);
    let rule = set.rule("pr").unwrap();
    let mut mem = Mem::default();
    let first = decide_event(&mut mem, rule, &pr_event("e1", "API", 0));
    assert_eq!(first.outcome, Outcome::Fired);
    assert_eq!(first.key.as_deref(), Some("https://github.com/a/b/pull/1"));
    let second = decide_event(&mut mem, rule, &pr_event("e2", "API", 30));
    assert_eq!(second.outcome, Outcome::Cooldown);
    assert!(second
        .reason
        .unwrap()
        .contains("again from 2025-01-06T10:00:00Z"));
    assert_eq!(
        decide_event(&mut mem, rule, &pr_event("e3", "API", 60)).outcome,
        Outcome::Fired
    );
}

#[test]
fn without_cooldown_or_throttle_a_key_fires_once() {
    let set = set(&PR_RULE.replace("    cooldown: 1h\n", ""));
    let rule = set.rule("pr").unwrap();
    let mut mem = Mem::default();
    let first = decide_event(&mut mem, rule, &pr_event("e1", "API", 0));
    assert_eq!(first.outcome, Outcome::Fired);
    assert!(
        first.firing.is_some_and(|f| !f.by_event),
        "a rule's own key is never forgotten"
    );
    let again = decide_event(&mut mem, rule, &pr_event("e2", "API", 600));
    assert_eq!(again.outcome, Outcome::Duplicate);
}

#[test]
fn throttle_counts_per_window() {
    let set = set(&PR_RULE.replace("cooldown: 1h", "throttle: { limit: 2, per: 1h }"));
    let rule = set.rule("pr").unwrap();
    let mut mem = Mem::default();
    let outcomes: Vec<Outcome> = [0, 10, 20, 59, 60, 61, 62]
        .iter()
        .enumerate()
        .map(|(i, m)| decide_event(&mut mem, rule, &pr_event(&format!("e{i}"), "API", *m)).outcome)
        .collect();
    use Outcome::*;
    assert_eq!(
        outcomes,
        vec![Fired, Fired, Throttled, Throttled, Fired, Fired, Throttled]
    );
}

#[test]
fn silences_cover_a_rule_or_one_key_until_their_end() {
    let set = set(PR_RULE);
    let rule = set.rule("pr").unwrap();
    let silence = |key: Option<&str>, until| SilenceRecord {
        id: 9,
        rule: "pr".into(),
        key: key.map(Into::into),
        until,
        reason: "deploy freeze".into(),
        created_at: at(0),
        created_by: None,
        expired: false,
    };
    let mut mem = Mem {
        silences: vec![silence(Some("other"), at(100))],
        ..Mem::default()
    };
    assert_eq!(
        decide_event(&mut mem, rule, &pr_event("e1", "API", 0)).outcome,
        Outcome::Fired
    );
    let mut mem = Mem {
        silences: vec![silence(None, at(30))],
        ..Mem::default()
    };
    let d = decide_event(&mut mem, rule, &pr_event("e1", "API", 0));
    assert_eq!(d.outcome, Outcome::Silenced);
    assert_eq!(
        d.reason.as_deref(),
        Some("silence #9 until 2025-01-06T09:30:00Z: deploy freeze")
    );
    assert_eq!(
        decide_event(&mut mem, rule, &pr_event("e2", "API", 30)).outcome,
        Outcome::Fired
    );
}

#[test]
fn shadow_and_off_rules_write_nothing_real() {
    let shadow = set(&PR_RULE.replace("cooldown: 1h", "cooldown: 1h\n    mode: shadow"));
    let rule = shadow.rule("pr").unwrap();
    let mut mem = Mem::default();
    let d = decide_event(&mut mem, rule, &pr_event("e1", "API", 0));
    assert_eq!(d.outcome, Outcome::Shadow);
    assert_eq!(firing_name(rule), "pr#shadow");
    assert_eq!(
        decide_event(&mut mem, rule, &pr_event("e2", "API", 1)).outcome,
        Outcome::Cooldown
    );
    let off = set(&PR_RULE.replace("cooldown: 1h", "cooldown: 1h\n    mode: off"));
    let d = decide_event(
        &mut Mem::default(),
        off.rule("pr").unwrap(),
        &pr_event("e1", "API", 0),
    );
    assert_eq!((d.outcome, d.firing), (Outcome::Off, None));
}

#[test]
fn a_key_that_renders_empty_is_an_error_not_a_firing() {
    let set = set(PR_RULE);
    let rule = set.rule("pr").unwrap();
    let data = json!({"run": {"source_type": "API"}, "pr": null});
    let d = decide_event(
        &mut Mem::default(),
        rule,
        &event("e1", "run.pr_opened", data, at(0)),
    );
    assert_eq!(d.outcome, Outcome::Error);
    assert_eq!(
        d.reason.as_deref(),
        Some("`key` rendered empty: {{ pr.url }}")
    );
}

#[test]
fn the_default_key_is_the_event_id_and_the_context_has_every_name() {
    let set = set(r#"
rules:
  - name: all
    trigger: [run.finished, "github.*"]
    when: event.type == "run.finished" and rule.name == "all" and now and vars is defined
    steps: [{ action: log, with: { message: "{{ event.type }} {{ event.id }}" } }]
"#);
    let rule = set.rule("all").unwrap();
    let data = json!({"run": {"id": 1}, "from": "ACTIVE", "to": "FAILED"});
    let ev = event("run/7/1/2/finished", "run.finished", data, at(0));
    let ctx = EventContext::new(&ev, &Map::new(), at(0));
    let Ok(d) = decide(rule, &ctx, &Mem::default(), at(0));
    assert_eq!(d.outcome, Outcome::Fired);
    assert_eq!(d.key.as_deref(), Some("run/7/1/2/finished"));
    assert!(
        d.firing.as_ref().is_some_and(|f| f.by_event),
        "keyed by event: retention may forget it with its event"
    );
    let job = ctx.job_context(rule);
    assert_eq!(job["event"]["from"], "ACTIVE");
    assert_eq!(job["rule"]["name"], "all");
    assert_eq!(job["now"], "2025-01-06T09:00:00Z");
    assert_eq!(set.candidates("github.push", None).len(), 1);
    assert!(set.candidates("run.created", None).is_empty());
}
