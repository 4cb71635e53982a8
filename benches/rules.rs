//! Rule figures: one event evaluated against 100 rules (target p50 ≤ 50 µs) and 100 rule files
//! compiled (target ≤ 200 ms). `cargo bench --bench rules` prints criterion's estimates and the
//! percentiles written in docs/rules.md; without `--bench` (as under `cargo test --all-targets`)
//! every benchmark runs once, as a smoke test.

use std::collections::HashMap;
use std::convert::Infallible;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use codegen_sentinel::rules::eval::{decide, EventContext, State};
use codegen_sentinel::rules::{compile_sources, CompileEnv, RuleSet};
use codegen_sentinel::store::{EventRecord, EventSource, FiringRecord, SilenceRecord};
use criterion::{criterion_group, Criterion};
use serde_json::{json, Map};

const TRIGGERS: [&str; 8] = [
    "run.created",
    "run.status_changed",
    "run.finished",
    "run.resumed",
    "run.pr_opened",
    "run.stalled",
    "github.check_suite",
    "run.*",
];

/// Rule file `i`: a realistic rule (condition, key, three steps with templates), its trigger
/// taken in turn from `TRIGGERS` (or always `run.finished` when `all_match`).
fn rule_file(i: usize, all_match: bool) -> (PathBuf, String) {
    let trigger = if all_match {
        "run.finished"
    } else {
        TRIGGERS[i % TRIGGERS.len()]
    };
    let when = if trigger.starts_with("github.") {
        r#"event.action == "completed" and payload.check_suite.conclusion == "failure""#
    } else {
        r#"run.status in ["FAILED", "ERROR"] and run.source_type == "API""#
    };
    let text = format!(
        r#"rules:
  - name: rule-{i}
    description: Benchmark rule {i}.
    trigger: {trigger}
    when: {when}
    key: "{{{{ run.id }}}}/{i}"
    cooldown: 1h
    steps:
      - id: logs
        action: codegen.fetch_logs
        with: {{ limit: 50, reverse: true }}
      - id: analysis
        action: codegen.analyze_logs
        with: {{ sandbox_id: "{{{{ run.metadata.sandbox_id | default(42) }}}}" }}
      - action: notify
        when: steps.logs.total > 0
        with:
          to: ops
          text: "Run {{{{ run.id }}}} ended {{{{ run.status }}}} ({{{{ steps.analysis.agent_run_id }}}})"
"#
    );
    (PathBuf::from(format!("rule-{i}.yaml")), text)
}

fn env() -> CompileEnv {
    CompileEnv {
        notifiers: Some(["ops".to_owned()].into()),
        vars: None,
    }
}

fn compile(all_match: bool) -> RuleSet {
    let files: Vec<_> = (0..100).map(|i| rule_file(i, all_match)).collect();
    compile_sources(&files, &env())
        .into_result()
        .expect("bench rules compile")
}

fn event() -> EventRecord {
    EventRecord {
        seq: 1,
        id: "run/7/123/4/finished".into(),
        kind: "run.finished".into(),
        at: Utc.with_ymd_and_hms(2025, 1, 6, 9, 0, 0).unwrap(),
        source: EventSource::Poll,
        org_id: Some(7),
        run_id: Some(123),
        data: json!({
            "run": {
                "id": 123, "organization_id": 7, "status": "FAILED", "source_type": "API",
                "created_at": "2025-01-06T08:00:00Z", "web_url": "https://codegen.com/agent/trace/123",
                "result": null, "summary": "Tests failed", "metadata": {"sandbox_id": 42},
                "github_pull_requests": [{"id": 9, "url": "https://github.com/acme/widgets/pull/12", "title": "Fix", "head_branch_name": "codegen/fix"}],
            },
            "from": "ACTIVE", "to": "FAILED",
            "pr": {"id": 9, "url": "https://github.com/acme/widgets/pull/12", "title": "Fix", "head_branch": "codegen/fix", "repo": "acme/widgets", "number": 12},
        }),
    }
}

/// No firing yet, no silence: every matching rule goes through every check.
struct Fresh;

impl State for Fresh {
    type Error = Infallible;
    fn firing(&self, _: &str, _: &str) -> Result<Option<FiringRecord>, Infallible> {
        Ok(None)
    }
    fn silences(&self, _: &str) -> Result<Vec<SilenceRecord>, Infallible> {
        Ok(Vec::new())
    }
}

/// Everything the engine does for one event, minus the store writes.
fn evaluate(set: &RuleSet, event: &EventRecord, vars: &Map<String, serde_json::Value>) -> usize {
    let ctx = EventContext::new(event, vars, event.at);
    let mut fired = 0;
    for rule in set.candidates(&event.kind, None) {
        let Ok(decision) = decide(rule, &ctx, &Fresh, event.at);
        fired += usize::from(decision.outcome.fired());
    }
    fired
}

fn percentiles(mut samples: Vec<Duration>) -> HashMap<u8, Duration> {
    samples.sort();
    [50u8, 90, 99]
        .into_iter()
        .map(|p| {
            (
                p,
                samples[(samples.len() * p as usize / 100).min(samples.len() - 1)],
            )
        })
        .collect()
}

fn report(label: &str, samples: Vec<Duration>) {
    let p = percentiles(samples);
    println!(
        "{label}: p50 {:?}, p90 {:?}, p99 {:?}",
        p[&50], p[&90], p[&99]
    );
}

fn benches(c: &mut Criterion) {
    let full = std::env::args().any(|a| a == "--bench");
    let vars = Map::new();
    let event = event();
    let mixed = compile(false);
    let all = compile(true);
    assert_eq!(evaluate(&mixed, &event, &vars), 25);
    assert_eq!(evaluate(&all, &event, &vars), 100);

    c.bench_function(
        "evaluate one event against 100 rules (mixed triggers)",
        |b| b.iter(|| evaluate(black_box(&mixed), black_box(&event), &vars)),
    );
    c.bench_function("evaluate one event against 100 rules (all matching)", |b| {
        b.iter(|| evaluate(black_box(&all), black_box(&event), &vars))
    });
    let files: Vec<_> = (0..100).map(|i| rule_file(i, false)).collect();
    c.bench_function("compile 100 rule files", |b| {
        b.iter(|| compile_sources(black_box(&files), &env()).set.is_some())
    });

    if full {
        let rounds = 10_000;
        let time = |set: &RuleSet| {
            (0..rounds)
                .map(|_| {
                    let start = Instant::now();
                    black_box(evaluate(set, &event, &vars));
                    start.elapsed()
                })
                .collect::<Vec<_>>()
        };
        report(
            "evaluate, mixed triggers (25 of 100 rules match)",
            time(&mixed),
        );
        report("evaluate, all 100 rules match", time(&all));
        let compiles = (0..50)
            .map(|_| {
                let start = Instant::now();
                black_box(compile_sources(&files, &env()).set.is_some());
                start.elapsed()
            })
            .collect();
        report("compile 100 rule files", compiles);
    }
}

criterion_group!(rules, benches);

fn main() {
    rules();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
