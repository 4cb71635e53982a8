//! The demo's live feed (each event, the rules' decisions on it, each step's outcome) and its
//! closing summary, counted from the store.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio_util::sync::CancellationToken;

use crate::executor::job::{Progress, StepStatus};
use crate::executor::{StepOutcome, StepReport};
use crate::store::{EventRecord, JobState, Store};

/// Where the lines under an event start (decisions, steps, effects).
const INDENT: &str = "          ";
/// The longest error shown on a step line.
const MAX_ERROR: usize = 120;

/// Prints events and step reports as they come until `done`, then what is still buffered.
/// `done` is cancelled once the daemon has stopped, so every step the executor saved before
/// stopping is printed.
pub async fn print_feed(
    mut events: broadcast::Receiver<Arc<EventRecord>>,
    mut steps: broadcast::Receiver<StepReport>,
    store: Store,
    done: CancellationToken,
) {
    let (mut events_open, mut steps_open) = (true, true);
    while events_open || steps_open {
        tokio::select! {
            // Events first: a step line then follows the event whose rule made its job.
            biased;
            event = events.recv(), if events_open => events_open = print_event(event, &store),
            report = steps.recv(), if steps_open => steps_open = print_step(report),
            _ = done.cancelled() => break,
        }
        let _ = std::io::stdout().flush();
    }
    while events_open {
        events_open = match events.try_recv() {
            Err(TryRecvError::Empty) => false,
            received => print_event(received.map_err(try_to_recv), &store),
        };
    }
    while steps_open {
        steps_open = match steps.try_recv() {
            Err(TryRecvError::Empty) => false,
            received => print_step(received.map_err(try_to_recv)),
        };
    }
    let _ = std::io::stdout().flush();
}

/// A `try_recv` error other than `Empty` as the `recv` error it stands for.
fn try_to_recv(e: TryRecvError) -> RecvError {
    match e {
        TryRecvError::Lagged(n) => RecvError::Lagged(n),
        TryRecvError::Empty | TryRecvError::Closed => RecvError::Closed,
    }
}

/// Prints an event and the decisions of the rules on it; false once the feed is closed.
fn print_event(event: Result<Arc<EventRecord>, RecvError>, store: &Store) -> bool {
    match event {
        Ok(event) => {
            println!("{}", event_line(&event));
            for decision in store.journal_of_event(event.seq).unwrap_or_default() {
                let reason = decision
                    .reason
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                println!(
                    "{INDENT}rule {:<26} {}{reason}",
                    decision.rule, decision.outcome
                );
            }
            true
        }
        Err(RecvError::Lagged(n)) => {
            println!("  … {n} events not shown");
            true
        }
        Err(RecvError::Closed) => false,
    }
}

/// Prints a step report; false once the feed is closed.
fn print_step(report: Result<StepReport, RecvError>) -> bool {
    match report {
        Ok(report) => {
            println!("{}", step_line(&report));
            true
        }
        Err(RecvError::Lagged(n)) => {
            println!("{INDENT}… {n} step outcomes not shown");
            true
        }
        Err(RecvError::Closed) => false,
    }
}

/// One line of the live feed for an event.
fn event_line(event: &EventRecord) -> String {
    let time = event.at.format("%H:%M:%S");
    let run = event
        .run_id
        .map_or_else(String::new, |r| format!("run {r}"));
    let text = |k: &str| event.data[k].as_str().unwrap_or("null").to_owned();
    let detail = match event.kind.as_str() {
        "run.created" => {
            let prompt = event.data["run"]["source_type"].as_str().unwrap_or("?");
            format!("new, {} (from {prompt})", text("to"))
        }
        "run.status_changed" => format!("{} → {}", text("from"), text("to")),
        "run.finished" => format!("finished {}", text("to")),
        "run.resumed" => format!("resumed ({} → {})", text("from"), text("to")),
        "run.pr_opened" => {
            let pr = &event.data["pr"];
            match (pr["repo"].as_str(), pr["number"].as_u64()) {
                (Some(repo), Some(n)) => format!("opened PR {repo}#{n}"),
                _ => format!("opened PR {}", pr["url"].as_str().unwrap_or("?")),
            }
        }
        "run.stalled" => format!("stalled in {}", text("to")),
        other => other.to_owned(),
    };
    format!("{time}  {run:<10} {:<20} {detail}", event.kind)
}

/// One line of the live feed for a step outcome, e.g.
/// `✓ job 3    diagnose-failed-runs       step 1/3 codegen.fetch_logs     done (34 ms)`.
pub fn step_line(report: &StepReport) -> String {
    let (mark, outcome) = match &report.outcome {
        StepOutcome::Done => {
            let took = report
                .duration
                .map(|d| format!(" ({})", short(d)))
                .unwrap_or_default();
            ("✓", format!("done{took}"))
        }
        StepOutcome::Skipped => ("–", "skipped (`when` is false)".to_owned()),
        StepOutcome::Retrying {
            error,
            max_attempts,
            retry_in,
            ..
        } => (
            "↻",
            format!(
                "failed: {} (attempt {}/{max_attempts}, retrying in {})",
                clip(error),
                report.attempts,
                short(*retry_in)
            ),
        ),
        StepOutcome::Failed { error, dead } => {
            let then = if *dead {
                "gave up, job dead-lettered"
            } else {
                "gave up, job goes on"
            };
            ("✗", format!("failed: {} ({then})", clip(error)))
        }
        StepOutcome::Waiting { org, run, until } => (
            "⏸",
            format!(
                "waiting for run {org}/{run} (until {})",
                until.format("%H:%M:%S")
            ),
        ),
    };
    let job = format!("job {}", report.job_id);
    let step = format!("step {}/{}", report.index + 1, report.total);
    format!(
        "{INDENT}{mark} {job:<8} {:<26} {step:<9} {:<22} {outcome}",
        report.rule, report.action
    )
}

/// `34 ms`, `1.5 s`, `2m 30s`: a duration as a person reads it.
fn short(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        "<1 ms".to_owned()
    } else if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d < Duration::from_secs(60) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
    }
}

/// The first line of an error, cut to fit a feed line.
fn clip(error: &str) -> String {
    let line = error.lines().next().unwrap_or_default();
    match line.char_indices().nth(MAX_ERROR) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

/// What the executor did, from the jobs in the store.
#[derive(Debug, Default, PartialEq)]
struct JobTally {
    jobs: usize,
    done: usize,
    dead: usize,
    /// Steps done: each matches one `✓` line of the feed.
    actions_done: usize,
    /// Steps that gave up: each matches one `✗` line of the feed.
    failures: usize,
}

fn tally_jobs(store: &Store) -> anyhow::Result<JobTally> {
    let mut tally = JobTally::default();
    for job in store.jobs() {
        let job = job?;
        tally.jobs += 1;
        match job.state {
            JobState::Done => tally.done += 1,
            JobState::Dead => tally.dead += 1,
            _ => {}
        }
        for step in Progress::of(&job.data).unwrap_or_default().steps {
            match step.status {
                StepStatus::Done => tally.actions_done += 1,
                StepStatus::Failed => tally.failures += 1,
                _ => {}
            }
        }
    }
    Ok(tally)
}

/// The closing summary, counted from the store.
pub fn print_summary(store: &Store, elapsed: Duration) -> anyhow::Result<()> {
    let runs = store.runs().count();
    let transitions = store.transitions(None).count();
    let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
    for event in store.events_after(0) {
        *by_type.entry(event?.kind).or_default() += 1;
    }
    let events: usize = by_type.values().sum();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut fired_rules: BTreeMap<String, usize> = BTreeMap::new();
    for event in store.events_after(0) {
        for decision in store.journal_of_event(event?.seq)? {
            if decision.outcome == "fired" {
                *fired_rules.entry(decision.rule.clone()).or_default() += 1;
            }
            *outcomes.entry(decision.outcome).or_default() += 1;
        }
    }
    let jobs = tally_jobs(store)?;
    println!();
    println!(
        "Summary after {}",
        humantime::format_duration(Duration::from_secs(elapsed.as_secs()))
    );
    println!("  runs seen      {runs}");
    println!("  transitions    {transitions}");
    println!("  events         {events}");
    for (kind, count) in by_type {
        println!("    {kind:<20} {count}");
    }
    let fired: usize = fired_rules.values().sum();
    println!("  rules fired    {fired}");
    for (rule, count) in fired_rules {
        println!("    {rule:<26} {count}");
    }
    let other: Vec<String> = outcomes
        .iter()
        .filter(|(o, _)| *o != "fired")
        .map(|(o, n)| format!("{o} {n}"))
        .collect();
    if !other.is_empty() {
        println!("  other decisions  {}", other.join(", "));
    }
    let open = jobs.jobs - jobs.done - jobs.dead;
    println!(
        "  jobs           {} ({} done, {} dead-lettered, {open} still open)",
        jobs.jobs, jobs.done, jobs.dead
    );
    println!("  actions done   {}", jobs.actions_done);
    println!("  failures       {} (steps given up)", jobs.failures);
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn report(outcome: StepOutcome, attempts: u32, duration: Option<Duration>) -> StepReport {
        StepReport {
            job_id: 12,
            rule: "diagnose-failed-runs".to_owned(),
            event_id: "run/7/123/2/finished".to_owned(),
            index: 1,
            total: 3,
            step_id: Some("analysis".to_owned()),
            action: "codegen.analyze_logs".to_owned(),
            attempts,
            outcome,
            duration,
            at: Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap(),
        }
    }

    #[test]
    fn step_lines_name_the_job_rule_step_and_outcome() {
        let done = report(StepOutcome::Done, 1, Some(Duration::from_millis(34)));
        assert_eq!(
            step_line(&done),
            "          ✓ job 12   diagnose-failed-runs       step 2/3  codegen.analyze_logs   done (34 ms)"
        );
        let retrying = StepOutcome::Retrying {
            error: "503 from the API\nbody".to_owned(),
            max_attempts: 5,
            retry_at: Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 7).unwrap(),
            retry_in: Duration::from_millis(1500),
        };
        let line = step_line(&report(retrying, 1, Some(Duration::from_millis(8))));
        assert!(line.contains("↻ job 12"), "{line}");
        assert!(
            line.ends_with("failed: 503 from the API (attempt 1/5, retrying in 1.5 s)"),
            "{line}"
        );
        let dead = StepOutcome::Failed {
            error: "x".repeat(200),
            dead: true,
        };
        let line = step_line(&report(dead, 5, None));
        assert!(line.contains("✗ job 12"), "{line}");
        assert!(
            line.ends_with(&format!(
                "failed: {}… (gave up, job dead-lettered)",
                "x".repeat(120)
            )),
            "{line}"
        );
        let waiting = StepOutcome::Waiting {
            org: 7,
            run: 123,
            until: Utc.with_ymd_and_hms(2025, 1, 2, 4, 4, 5).unwrap(),
        };
        let line = step_line(&report(waiting, 0, None));
        assert!(
            line.ends_with("waiting for run 7/123 (until 04:04:05)"),
            "{line}"
        );
        let line = step_line(&report(StepOutcome::Skipped, 0, None));
        assert!(line.ends_with("skipped (`when` is false)"), "{line}");
    }

    #[test]
    fn durations_read_short() {
        assert_eq!(short(Duration::from_micros(400)), "<1 ms");
        assert_eq!(short(Duration::from_millis(999)), "999 ms");
        assert_eq!(short(Duration::from_millis(2_340)), "2.3 s");
        assert_eq!(short(Duration::from_secs(150)), "2m 30s");
    }
}
