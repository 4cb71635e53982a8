//! Scheduled rules: a mark is set on first sight, each tick fires once (also across restarts),
//! missed ticks fire once with source `startup`, the summary counts stored runs, and shadow
//! rules are journaled without a job. Time is a manual clock; nothing sleeps.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::{DateTime, Duration, TimeZone, Utc};
use codegen_sentinel::clock::{Clock, ManualClock};
use codegen_sentinel::engine::Engine;
use codegen_sentinel::events::EventSink;
use codegen_sentinel::rules::{compile_sources, CompileEnv, RuleSet};
use codegen_sentinel::sources::scheduler::{tick_id, Scheduler};
use codegen_sentinel::store::{EventSource, NewTransition, RunRecord, Store, StoreOptions};
use serde_json::json;

const RULES: &str = r#"
rules:
  - name: weekday-digest
    schedule: "0 0 9 * * Mon-Fri"
    mode: shadow
    steps:
      - action: notify
        with: { to: ops, text: "{{ summary.failed }} runs failed in the last 24h" }
  - name: hourly-report
    schedule: "0 0 * * * *"
    when: summary.total > 0
    steps:
      - action: log
        with: { message: "{{ summary.failed }} of {{ summary.total }} runs failed" }
"#;

fn rules(text: &str) -> Arc<ArcSwap<RuleSet>> {
    let compiled = compile_sources(
        &[(PathBuf::from("s.yaml"), text.to_owned())],
        &CompileEnv::default(),
    );
    Arc::new(ArcSwap::from_pointee(compiled.into_result().unwrap()))
}

/// Monday 2025-01-06 at `h:m` UTC.
fn monday(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 6, h, m, 0).unwrap()
}

struct Rig {
    dir: tempfile::TempDir,
    clock: ManualClock,
    rules: Arc<ArcSwap<RuleSet>>,
}

impl Rig {
    fn new(start: DateTime<Utc>) -> Rig {
        Rig {
            dir: tempfile::tempdir().unwrap(),
            clock: ManualClock::new(start),
            rules: rules(RULES),
        }
    }

    fn store(&self) -> Store {
        Store::open(StoreOptions::new(self.dir.path())).unwrap()
    }

    fn scheduler(&self, store: &Store) -> Scheduler {
        let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
        let engine: Arc<dyn EventSink> = Arc::new(Engine::new(
            store.clone(),
            self.rules.clone(),
            serde_json::Map::new(),
            clock.clone(),
        ));
        Scheduler::new(store.clone(), self.rules.clone(), engine, clock)
    }
}

fn ids(store: &Store) -> Vec<(String, EventSource)> {
    store
        .events_after(0)
        .map(|e| e.unwrap())
        .map(|e| (e.id, e.source))
        .collect()
}

#[tokio::test]
async fn a_tick_fires_once_when_due_and_the_first_sight_only_sets_the_mark() {
    let rig = Rig::new(monday(8, 59));
    let store = rig.store();
    let mut scheduler = rig.scheduler(&store);
    let report = scheduler.pass().await.unwrap();
    assert!(report.events.is_empty());
    assert_eq!(report.next, Some(monday(9, 0)));
    assert_eq!(
        store
            .schedule_mark("weekday-digest")
            .unwrap()
            .unwrap()
            .next_fire,
        monday(9, 0)
    );

    rig.clock.set(monday(9, 0));
    let report = scheduler.pass().await.unwrap();
    let fired: Vec<&str> = report.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        fired,
        vec![
            tick_id("weekday-digest", monday(9, 0)),
            tick_id("hourly-report", monday(9, 0))
        ]
    );
    assert!(report
        .events
        .iter()
        .all(|e| e.source == EventSource::Schedule && e.kind == "schedule"));
    let mark = store.schedule_mark("weekday-digest").unwrap().unwrap();
    assert_eq!(
        (mark.next_fire, mark.last_fired),
        (monday(9, 0) + Duration::days(1), Some(monday(9, 0)))
    );
    assert_eq!(report.next, Some(monday(10, 0)));

    // Same instant again, and a restarted scheduler: nothing more.
    assert!(scheduler.pass().await.unwrap().events.is_empty());
    assert!(rig
        .scheduler(&store)
        .pass()
        .await
        .unwrap()
        .events
        .is_empty());
    assert_eq!(ids(&store).len(), 2);
}

#[tokio::test]
async fn ticks_missed_while_down_fire_once_with_source_startup() {
    let rig = Rig::new(monday(8, 0));
    {
        let store = rig.store();
        rig.scheduler(&store).pass().await.unwrap();
    }
    // Down from Monday 08:00 to Wednesday 10:30: three digests and 49 hourly ticks missed.
    rig.clock.set(monday(10, 30) + Duration::days(2));
    let store = rig.store();
    let mut scheduler = rig.scheduler(&store);
    let report = scheduler.pass().await.unwrap();
    let fired: Vec<(String, EventSource)> = report
        .events
        .iter()
        .map(|e| (e.id.clone(), e.source))
        .collect();
    assert_eq!(
        fired,
        vec![
            (
                tick_id("weekday-digest", monday(9, 0)),
                EventSource::Startup
            ),
            (tick_id("hourly-report", monday(9, 0)), EventSource::Startup),
        ]
    );
    let thursday_nine = monday(9, 0) + Duration::days(3);
    assert_eq!(
        store
            .schedule_mark("weekday-digest")
            .unwrap()
            .unwrap()
            .next_fire,
        thursday_nine
    );
    assert!(scheduler.pass().await.unwrap().events.is_empty());
}

#[tokio::test]
async fn a_shadow_schedule_is_journaled_and_an_enforced_one_writes_a_job_with_the_summary() {
    let rig = Rig::new(monday(8, 59));
    let store = rig.store();
    // Two runs in the last day: one failed, one still active.
    store
        .transaction(|tx| {
            for (id, statuses) in [(1, vec!["ACTIVE", "FAILED"]), (2, vec!["ACTIVE"])] {
                let mut run = RunRecord {
                    org_id: 7,
                    run_id: id,
                    status: statuses.last().map(|s| s.to_string()),
                    raw: json!({"id": id, "web_url": format!("https://codegen.com/agent/trace/{id}")}),
                    pr_ids: vec![],
                    last_seq: 0,
                    status_since: monday(8, 0),
                    stalled_reported: false,
                    first_seen: monday(8, 0),
                    last_seen: monday(8, 30),
                };
                let mut from = None;
                for (i, status) in statuses.iter().enumerate() {
                    let change = NewTransition {
                        from: from.clone(),
                        to: Some(status.to_string()),
                        first_sight: i == 0,
                        at: monday(8, 10 * i as u32),
                        source: EventSource::Poll,
                    };
                    tx.append_transition(&mut run, change)?;
                    from = Some(status.to_string());
                }
            }
            Ok(())
        })
        .unwrap();
    let mut scheduler = rig.scheduler(&store);
    scheduler.pass().await.unwrap();
    rig.clock.set(monday(9, 0));
    let report = scheduler.pass().await.unwrap();
    let digest = report
        .events
        .iter()
        .find(|e| e.id.contains("weekday-digest"))
        .unwrap();
    let summary = &digest.data["summary"];
    assert_eq!(summary["total"], 2);
    assert_eq!(summary["created"], 2);
    assert_eq!(summary["failed"], 1);
    assert_eq!(summary["finished"], 1);
    assert_eq!(summary["by_status"], json!({"ACTIVE": 1, "FAILED": 1}));
    assert_eq!(summary["failed_runs"][0]["id"], 1);
    assert_eq!(
        summary["failed_runs"][0]["web_url"],
        "https://codegen.com/agent/trace/1"
    );
    assert_eq!(summary["since"], "2025-01-05T09:00:00Z");

    let journal = store.journal_of_event(digest.seq).unwrap();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].outcome, "shadow");
    let firing = store.firing("weekday-digest#shadow", &digest.id).unwrap();
    assert!(
        firing.is_some_and(|f| f.by_event),
        "keyed by its tick event: retention forgets it with the event"
    );
    let jobs: Vec<_> = store.jobs().map(Result::unwrap).collect();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].rule, "hourly-report");
    assert_eq!(jobs[0].data["context"]["summary"]["failed"], 1);
    assert_eq!(jobs[0].data["context"]["event"]["type"], "schedule");
}

#[tokio::test]
async fn a_changed_schedule_starts_afresh_without_firing() {
    let rig = Rig::new(monday(8, 0));
    let store = rig.store();
    rig.scheduler(&store).pass().await.unwrap();
    rig.rules.store(Arc::new(
        compile_sources(
            &[(
                PathBuf::from("s.yaml"),
                RULES.replace("0 0 9 * * Mon-Fri", "0 30 7 * * *"),
            )],
            &CompileEnv::default(),
        )
        .into_result()
        .unwrap(),
    ));
    rig.clock.set(monday(9, 30));
    let report = rig.scheduler(&store).pass().await.unwrap();
    assert!(report
        .events
        .iter()
        .all(|e| !e.id.contains("weekday-digest")));
    let mark = store.schedule_mark("weekday-digest").unwrap().unwrap();
    assert_eq!(mark.next_fire, monday(7, 30) + Duration::days(1));
}
