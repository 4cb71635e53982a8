//! The reconciling poller against the simulator: exact event sequences, exactly-once transitions
//! across repeated polls and restarts, stalls, and changes made while the daemon was stopped.

mod common;

use std::sync::Arc;
use std::time::Duration;

use codegen_sentinel::api::{OrgId, RateBudget};
use codegen_sentinel::clock::{Clock, ManualClock};
use codegen_sentinel::events::NoSink;
use codegen_sentinel::sim::{Fault, RunPlan, Simulator};
use codegen_sentinel::sources::poller::{Poller, PollerConfig};
use codegen_sentinel::store::{EventSource, Store, StoreOptions};
use common::*;

struct Rig {
    server: codegen_sentinel::sim::SimServer,
    dir: tempfile::TempDir,
    clock: ManualClock,
}

impl Rig {
    async fn new() -> Rig {
        let sim = seeded_sim();
        let clock = ManualClock::new(sim.now());
        Rig {
            server: serve(sim).await,
            dir: tempfile::tempdir().unwrap(),
            clock,
        }
    }

    fn sim(&self) -> &Simulator {
        &self.server.sim
    }

    /// Moves the simulator's clock and the poller's together.
    fn advance(&self, by: Duration) {
        self.sim().advance(by);
        self.clock.advance(by);
    }

    fn store(&self) -> Store {
        Store::open(StoreOptions::new(self.dir.path())).unwrap()
    }

    fn poller(&self, store: &Store) -> Poller {
        let config = PollerConfig::defaults(OrgId(ORG));
        let client = client_with(
            &self.server.base_url,
            Arc::new(RateBudget::unlimited()),
            fast_retry(),
        );
        let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
        Poller::new(config, client, store.clone(), clock, Arc::new(NoSink)).unwrap()
    }
}

/// (type, from, to) of the events of one run, in order.
fn events_of(store: &Store, run: i64) -> Vec<(String, Option<String>, Option<String>)> {
    store
        .events_of_run(ORG, run)
        .unwrap()
        .into_iter()
        .map(|e| {
            let text = |k: &str| e.data[k].as_str().map(str::to_owned);
            (e.kind.clone(), text("from"), text("to"))
        })
        .collect()
}

fn kinds(store: &Store, run: i64) -> Vec<String> {
    events_of(store, run)
        .into_iter()
        .map(|(k, _, _)| k)
        .collect()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

#[tokio::test]
async fn a_completed_lifecycle_yields_the_exact_event_sequence() {
    let rig = Rig::new().await;
    let store = rig.store();
    let mut poller = rig.poller(&store);
    poller.poll_once().await.unwrap(); // empty org: baseline of nothing

    let run = rig.sim().create_run(
        ORG,
        RunPlan::steps(vec![
            (Some("ACTIVE"), Duration::from_secs(60)),
            (Some("EVALUATION"), Duration::from_secs(60)),
            (Some("COMPLETE"), Duration::ZERO),
        ]),
    );
    for _ in 0..10 {
        poller.poll_once().await.unwrap();
        rig.advance(Duration::from_secs(30));
    }
    assert_eq!(
        events_of(&store, run),
        vec![
            ("run.created".into(), None, s("ACTIVE")),
            ("run.status_changed".into(), s("ACTIVE"), s("EVALUATION")),
            ("run.status_changed".into(), s("EVALUATION"), s("COMPLETE")),
            ("run.finished".into(), s("EVALUATION"), s("COMPLETE")),
            ("run.pr_opened".into(), s("COMPLETE"), s("COMPLETE")),
        ]
    );
    let transitions = store.transitions_of_run(ORG, run).unwrap();
    let tos: Vec<_> = transitions.iter().map(|t| t.to.clone()).collect();
    assert_eq!(tos, vec![s("ACTIVE"), s("EVALUATION"), s("COMPLETE")]);
    assert_eq!(transitions[0].from, None);
    assert!(transitions[0].first_sight);
    let pr = &store.events_of_run(ORG, run).unwrap()[4].data["pr"];
    assert!(pr["url"].as_str().unwrap().contains("/pull/"));
    assert!(pr["number"].is_u64());
}

#[tokio::test]
async fn resume_after_complete_unknown_and_null_statuses_and_a_late_pr() {
    let rig = Rig::new().await;
    let store = rig.store();
    let mut poller = rig.poller(&store);
    poller.poll_once().await.unwrap();
    let run = rig.sim().create_run(ORG, RunPlan::ends("FAILED"));
    poller.poll_once().await.unwrap();
    rig.advance(Duration::from_secs(3600));
    poller.poll_once().await.unwrap();
    assert_eq!(
        kinds(&store, run),
        vec!["run.created", "run.status_changed", "run.finished"]
    );

    rig.sim().set_status(ORG, run, Some("WARMING_UP"));
    poller.poll_once().await.unwrap();
    rig.sim().set_status(ORG, run, None);
    poller.poll_once().await.unwrap();
    rig.sim().set_status(ORG, run, Some("ACTIVE"));
    poller.poll_once().await.unwrap();
    let pr = rig.sim().add_pr(ORG, run);
    poller.poll_once().await.unwrap();

    let tail: Vec<_> = events_of(&store, run).into_iter().skip(3).collect();
    assert_eq!(
        tail,
        vec![
            ("run.status_changed".into(), s("FAILED"), s("WARMING_UP")),
            ("run.status_changed".into(), s("WARMING_UP"), None),
            ("run.status_changed".into(), None, s("ACTIVE")),
            ("run.pr_opened".into(), s("ACTIVE"), s("ACTIVE")),
        ]
    );
    let events = store.events_of_run(ORG, run).unwrap();
    assert_eq!(events.last().unwrap().data["pr"]["id"], pr);

    // A resume straight from a terminal status is reported as such.
    rig.sim().set_status(ORG, run, Some("COMPLETE"));
    poller.poll_once().await.unwrap();
    rig.sim().set_status(ORG, run, Some("ACTIVE"));
    poller.poll_once().await.unwrap();
    let last: Vec<_> = kinds(&store, run).into_iter().rev().take(2).collect();
    assert_eq!(last, vec!["run.resumed", "run.status_changed"]);
}

#[tokio::test]
async fn a_stall_is_reported_once_per_stalled_status() {
    let rig = Rig::new().await;
    let store = rig.store();
    let mut poller = rig.poller(&store);
    poller.poll_once().await.unwrap();
    let run = rig.sim().create_run(ORG, RunPlan::completes());
    rig.sim().set_status(ORG, run, Some("PAUSED"));
    poller.poll_once().await.unwrap();
    rig.clock.advance(Duration::from_secs(29 * 60));
    poller.poll_once().await.unwrap();
    assert!(!kinds(&store, run).contains(&"run.stalled".to_string()));
    rig.clock.advance(Duration::from_secs(2 * 60));
    poller.poll_once().await.unwrap();
    rig.clock.advance(Duration::from_secs(60 * 60));
    poller.poll_once().await.unwrap();
    let stalls = kinds(&store, run)
        .iter()
        .filter(|k| *k == "run.stalled")
        .count();
    assert_eq!(stalls, 1);
}

#[tokio::test]
async fn repeated_polls_and_restarts_never_record_a_transition_twice() {
    let rig = Rig::new().await;
    let runs: Vec<i64> = (0..30)
        .map(|i| {
            let plan = if i % 3 == 0 {
                RunPlan::ends("ERROR")
            } else {
                RunPlan::completes()
            };
            rig.sim().create_run(ORG, plan)
        })
        .collect();
    for round in 0..12 {
        // A fresh process each round: reopen the store, build a new poller.
        let store = rig.store();
        let mut poller = rig.poller(&store);
        for _ in 0..3 {
            poller.poll_once().await.unwrap();
        }
        store.flush().await.unwrap();
        drop(poller);
        drop(store);
        if round % 2 == 0 {
            rig.advance(Duration::from_secs(40));
        }
    }
    let store = rig.store();
    for run in runs {
        let transitions = store.transitions_of_run(ORG, run).unwrap();
        for pair in transitions.windows(2) {
            assert_ne!(pair[0].to, pair[1].to, "run {run}: a repeated transition");
            assert_eq!(pair[0].to, pair[1].from, "run {run}: a gap");
        }
        let seqs: Vec<u32> = transitions.iter().map(|t| t.seq).collect();
        assert_eq!(seqs, (1..=transitions.len() as u32).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn changes_made_while_stopped_are_recorded_with_source_startup() {
    let rig = Rig::new().await;
    let early = rig.sim().create_run(ORG, RunPlan::completes());
    {
        let store = rig.store();
        let mut poller = rig.poller(&store);
        poller.poll_once().await.unwrap(); // baseline: recorded, no events
        assert!(store.events_of_run(ORG, early).unwrap().is_empty());
        poller.poll_once().await.unwrap();
        store.flush().await.unwrap();
    }
    // While the daemon is down: a run finishes and a new one appears.
    rig.advance(Duration::from_secs(3600));
    let late = rig.sim().create_run(ORG, RunPlan::ends("TIMEOUT"));
    let store = rig.store();
    let mut poller = rig.poller(&store);
    let report = poller.poll_once().await.unwrap();
    assert!(report
        .events
        .iter()
        .all(|e| e.source == EventSource::Startup));
    assert_eq!(
        kinds(&store, early),
        vec!["run.status_changed", "run.finished", "run.pr_opened"]
    );
    assert_eq!(kinds(&store, late), vec!["run.created"]);
    let later = store.transitions_of_run(ORG, early).unwrap();
    assert_eq!(later.last().unwrap().source, EventSource::Startup);

    rig.advance(Duration::from_secs(3600));
    let report = poller.poll_once().await.unwrap();
    assert!(report.events.iter().all(|e| e.source == EventSource::Poll));
    assert!(kinds(&store, late).contains(&"run.finished".to_string()));
}

#[tokio::test]
async fn tracked_runs_far_down_the_list_are_fetched_one_by_one() {
    let rig = Rig::new().await;
    let paused = rig.sim().create_run(ORG, RunPlan::completes());
    rig.sim().set_status(ORG, paused, Some("PAUSED"));
    for _ in 0..250 {
        rig.sim().create_run(ORG, RunPlan::ends("COMPLETE"));
    }
    rig.advance(Duration::from_secs(3600));
    let store = rig.store();
    let mut poller = rig.poller(&store);
    poller.poll_once().await.unwrap();
    assert_eq!(poller.tracked_open(), 1);

    rig.sim().create_run(ORG, RunPlan::completes());
    rig.sim().set_status(ORG, paused, Some("ACTIVE"));
    let report = poller.poll_once().await.unwrap();
    assert_eq!((report.pages, report.single_gets), (1, 1));
    assert!(kinds(&store, paused).contains(&"run.resumed".to_string()));
}

#[tokio::test(start_paused = true)]
async fn two_hundred_active_runs_polled_every_15s_stay_inside_the_budget() {
    let rig = Rig::new().await;
    for _ in 0..200 {
        let id = rig.sim().create_run(ORG, RunPlan::completes());
        rig.sim().set_status(ORG, id, Some("ACTIVE"));
    }
    let store = rig.store();
    let config = PollerConfig::defaults(OrgId(ORG));
    let client = client_with(
        &rig.server.base_url,
        Arc::new(RateBudget::published()),
        fast_retry(),
    );
    let clock: Arc<dyn Clock> = Arc::new(rig.clock.clone());
    let mut poller = Poller::new(config, client, store, clock, Arc::new(NoSink)).unwrap();
    // Ten minutes of ticks every 15 s (as the run loop does), with a deep resync each minute,
    // new runs arriving and some finishing.
    let mut most = 0;
    for tick in 0..40 {
        if tick % 4 == 0 {
            rig.sim().create_run(ORG, RunPlan::completes());
            most = most.max(poller.deep_resync().await.unwrap().requests());
        } else {
            most = most.max(poller.poll_once().await.unwrap().requests());
        }
        tokio::time::sleep(Duration::from_secs(15)).await;
        rig.advance(Duration::from_secs(15));
    }
    assert!(most <= 3, "a tick spent {most} requests");

    let log = rig.sim().requests();
    assert!(log.iter().all(|r| r.status == 200), "a request was refused");
    assert!(log.len() >= 40, "it polled: {}", log.len());
    for (i, first) in log.iter().enumerate() {
        let in_window = log[i..]
            .iter()
            .take_while(|r| r.at.duration_since(first.at) < Duration::from_secs(30))
            .count();
        assert!(in_window <= 60, "{in_window} requests within 30 s");
    }
}

#[tokio::test]
async fn a_failed_tick_reports_the_error_and_the_next_one_recovers() {
    let rig = Rig::new().await;
    let store = rig.store();
    let mut poller = rig.poller(&store);
    // As many failures as the client has attempts: the tick fails, the next one is served.
    rig.sim()
        .inject(Fault::Status(503), fast_retry().max_attempts as usize, None);
    assert!(poller.poll_once().await.is_err());
    let run = rig.sim().create_run(ORG, RunPlan::completes());
    poller.poll_once().await.unwrap();
    // The failed tick did not count as the startup reconcile: the first good one did.
    let first = &store.transitions_of_run(ORG, run).unwrap()[0];
    assert_eq!(first.source, EventSource::Startup);
}

#[tokio::test]
async fn overlapping_pollers_on_one_store_record_each_change_once() {
    let rig = Rig::new().await;
    let store = rig.store();
    let runs: Vec<i64> = (0..20)
        .map(|_| rig.sim().create_run(ORG, RunPlan::completes()))
        .collect();
    let mut a = rig.poller(&store);
    let mut b = rig.poller(&store);
    for _ in 0..8 {
        let (ra, rb) = tokio::join!(a.poll_once(), b.poll_once());
        ra.unwrap();
        rb.unwrap();
        rig.advance(Duration::from_secs(20));
    }
    for run in runs {
        let tos: Vec<_> = store
            .transitions_of_run(ORG, run)
            .unwrap()
            .into_iter()
            .map(|t| t.to)
            .collect();
        assert_eq!(
            tos,
            vec![s("ACTIVE"), s("EVALUATION"), s("COMPLETE")],
            "run {run}"
        );
        let finished = kinds(&store, run)
            .iter()
            .filter(|k| *k == "run.finished")
            .count();
        assert!(finished <= 1);
    }
}

#[tokio::test]
async fn a_stalled_run_far_down_the_list_is_rechecked_every_fourth_interval() {
    let rig = Rig::new().await;
    let paused = rig.sim().create_run(ORG, RunPlan::completes());
    rig.sim().set_status(ORG, paused, Some("PAUSED"));
    for _ in 0..150 {
        rig.sim().create_run(ORG, RunPlan::ends("COMPLETE"));
    }
    rig.advance(Duration::from_secs(3600));
    let store = rig.store();
    let mut poller = rig.poller(&store);
    poller.poll_once().await.unwrap();
    rig.clock.advance(Duration::from_secs(31 * 60));
    let report = poller.poll_once().await.unwrap();
    assert_eq!(report.single_gets, 1);
    assert!(kinds(&store, paused).contains(&"run.stalled".to_string()));

    let mut singles = Vec::new();
    for _ in 0..8 {
        rig.clock.advance(Duration::from_secs(15));
        singles.push(poller.poll_once().await.unwrap().single_gets);
    }
    assert_eq!(singles, vec![0, 0, 0, 1, 0, 0, 0, 1]);

    // Once it moves again it is polled every tick.
    rig.sim().set_status(ORG, paused, Some("ACTIVE"));
    rig.clock.advance(Duration::from_secs(60));
    poller.poll_once().await.unwrap();
    rig.clock.advance(Duration::from_secs(15));
    assert_eq!(poller.poll_once().await.unwrap().single_gets, 1);
}
