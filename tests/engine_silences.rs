//! Silences as the engine sees them inside an event's transaction (the per-rule index the store
//! keeps for it), and the journal entries of silenced, off and failing rules.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::{DateTime, Duration, TimeZone, Utc};
use codegen_sentinel::clock::{Clock, ManualClock};
use codegen_sentinel::engine::Engine;
use codegen_sentinel::events::EventSink;
use codegen_sentinel::rules::{compile_sources, CompileEnv};
use codegen_sentinel::store::{EventSource, NewEvent, NewSilence, Store, StoreOptions};
use serde_json::json;

const RULES: &str = r#"
rules:
  - name: per-pr
    trigger: run.pr_opened
    key: "{{ pr.url }}"
    cooldown: 1m
    steps: [{ action: codegen.ban_checks }]
  - name: quiet
    trigger: run.pr_opened
    mode: off
    steps: [{ action: log, with: { message: off } }]
  - name: broken-key
    trigger: run.pr_opened
    key: "{{ pr.title | int(strict=true) }}"
    steps: [{ action: log, with: { message: never } }]
"#;

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 6, 9, 0, 0).unwrap() + Duration::minutes(minutes)
}

struct Rig {
    _dir: tempfile::TempDir,
    store: Store,
    clock: ManualClock,
    engine: Engine,
}

impl Rig {
    fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreOptions::new(dir.path())).unwrap();
        let set = compile_sources(
            &[(PathBuf::from("r.yaml"), RULES.to_owned())],
            &CompileEnv::default(),
        )
        .into_result()
        .unwrap();
        let clock = ManualClock::new(t(0));
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        let engine = Engine::new(
            store.clone(),
            Arc::new(ArcSwap::from_pointee(set)),
            serde_json::Map::new(),
            shared,
        );
        Rig {
            _dir: dir,
            store,
            clock,
            engine,
        }
    }

    /// Records a `run.pr_opened` event for `pr` now and returns (rule, outcome) decisions.
    fn event(&self, id: &str, pr: &str) -> Vec<(String, String)> {
        let at = self.clock.now();
        let seq = self
            .store
            .transaction(|tx| {
                let new = NewEvent {
                    id: id.to_owned(),
                    kind: "run.pr_opened".into(),
                    at,
                    source: EventSource::Poll,
                    org_id: Some(7),
                    run_id: Some(1),
                    data: json!({"run": {"id": 1}, "pr": {"url": pr, "title": "not a number"}}),
                };
                let seq = tx.insert_event(new)?.unwrap();
                let record = tx.get_event(seq)?.unwrap();
                self.engine.on_event(tx, &record)?;
                Ok(seq)
            })
            .unwrap();
        self.store
            .journal_of_event(seq)
            .unwrap()
            .into_iter()
            .map(|j| (j.rule, j.outcome))
            .collect()
    }

    fn silence(&self, rule: &str, key: Option<&str>, until: DateTime<Utc>) -> u64 {
        let now = self.clock.now();
        self.store
            .transaction(|tx| {
                tx.insert_silence(NewSilence {
                    rule: rule.into(),
                    key: key.map(Into::into),
                    until,
                    reason: "maintenance".into(),
                    created_at: now,
                    created_by: Some("ops".into()),
                })
            })
            .unwrap()
            .id
    }
}

fn outcome_of(decisions: &[(String, String)], rule: &str) -> String {
    decisions.iter().find(|(r, _)| r == rule).unwrap().1.clone()
}

#[test]
fn a_rule_silence_mutes_every_key_until_it_ends_or_is_expired() {
    let rig = Rig::new();
    let id = rig.silence("per-pr", None, t(30));
    assert_eq!(
        outcome_of(&rig.event("e1", "https://x/pull/1"), "per-pr"),
        "silenced"
    );
    rig.clock.set(t(31));
    assert_eq!(
        outcome_of(&rig.event("e2", "https://x/pull/1"), "per-pr"),
        "fired"
    );

    let again = rig.silence("per-pr", None, t(120));
    rig.clock.set(t(40));
    assert_eq!(
        outcome_of(&rig.event("e3", "https://x/pull/2"), "per-pr"),
        "silenced"
    );
    rig.store
        .transaction(|tx| {
            let mut s = tx.get_silence(again)?.unwrap();
            s.expired = true;
            tx.put_silence(&s)
        })
        .unwrap();
    assert_eq!(
        outcome_of(&rig.event("e4", "https://x/pull/2"), "per-pr"),
        "fired"
    );
    // The index only lists live silences: the ended and the expired ones have left it.
    rig.silence("per-pr", None, t(200));
    let live = rig
        .store
        .transaction(|tx| tx.silences_of_rule("per-pr"))
        .unwrap();
    assert_eq!(live.len(), 1);
    assert!(live.iter().all(|s| s.id != id && s.id != again));
}

#[test]
fn a_key_silence_mutes_only_that_key() {
    let rig = Rig::new();
    rig.silence("per-pr", Some("https://x/pull/1"), t(60));
    assert_eq!(
        outcome_of(&rig.event("e1", "https://x/pull/1"), "per-pr"),
        "silenced"
    );
    assert_eq!(
        outcome_of(&rig.event("e2", "https://x/pull/2"), "per-pr"),
        "fired"
    );
    let jobs: Vec<_> = rig.store.jobs().map(Result::unwrap).collect();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].key, "https://x/pull/2");
}

#[test]
fn off_and_failing_rules_are_journaled_and_write_no_job() {
    let rig = Rig::new();
    let decisions = rig.event("e1", "https://x/pull/1");
    assert_eq!(outcome_of(&decisions, "quiet"), "off");
    assert_eq!(outcome_of(&decisions, "broken-key"), "error");
    let seq = rig.store.event_by_id("e1").unwrap().unwrap().seq;
    let reason = rig
        .store
        .journal_of_event(seq)
        .unwrap()
        .into_iter()
        .find(|j| j.rule == "broken-key")
        .unwrap()
        .reason
        .unwrap();
    assert!(reason.starts_with("`key` failed:"), "{reason}");
    let jobs: Vec<_> = rig.store.jobs().map(Result::unwrap).collect();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].rule, "per-pr");
}
