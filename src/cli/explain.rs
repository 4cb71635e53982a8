//! `codegen-sentinel explain RUN_ID`: every recorded event of a run and, for each rule, what it
//! decided and why (from the journal), with the jobs that firings created. Read from the store,
//! or, while a running daemon holds it, asked of that daemon on its admin socket.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use serde_json::json;

use super::target::Target;
use super::{config_source, Failure};
use crate::rules::eval::rfc3339;
use crate::rules::{compile_paths, CompileEnv, RuleSet};
use crate::store::{EventRecord, JobRecord, JournalRecord};

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The agent run.
    pub run_id: i64,
    /// Config file [default: $SENTINEL_CONFIG, then ./sentinel.yaml].
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Only this organization [default: every configured one].
    #[arg(long)]
    pub org: Option<i64>,
    /// One JSON object per event.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: ExplainArgs) -> Result<(), Failure> {
    let settings = config_source::required(args.config.as_deref())?;
    let orgs: Vec<i64> = match args.org {
        Some(org) => vec![org],
        None => settings
            .org_ids()
            .iter()
            .filter_map(|o| i64::try_from(*o).ok())
            .collect(),
    };
    let events = Target::open(&settings)?
        .explain(&orgs, args.org, args.run_id)
        .await?;
    if events.is_empty() {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "no events recorded for run {}",
            args.run_id
        )));
    }
    // The rules in force now, to say why the others were not offered an event.
    let current = compile_paths(&settings.rules.paths, &CompileEnv::from_settings(&settings)).set;
    if current.is_none() {
        eprintln!(
            "note: the rule files have errors (see `check`); only recorded decisions are shown"
        );
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for explained in &events {
        let (event, journal, jobs) = (&explained.event, &explained.decisions, &explained.jobs);
        let written = if args.json {
            writeln!(out, "{}", event_json(event, journal, jobs))
        } else {
            write_event(&mut out, event, journal, jobs, current.as_ref())
        };
        written.context("writing to stdout")?;
    }
    Ok(())
}

fn event_json(
    event: &EventRecord,
    journal: &[JournalRecord],
    jobs: &[JobRecord],
) -> serde_json::Value {
    json!({
        "seq": event.seq,
        "id": event.id,
        "type": event.kind,
        "at": rfc3339(event.at),
        "source": event.source.as_str(),
        "from": event.data.get("from"),
        "to": event.data.get("to"),
        "decisions": journal.iter().map(|j| json!({
            "rule": j.rule, "outcome": j.outcome, "reason": j.reason, "rules_hash": j.rules_hash,
        })).collect::<Vec<_>>(),
        "jobs": jobs.iter().filter(|j| j.event_id == event.id).map(|j| json!({
            "id": j.id, "rule": j.rule, "key": j.key, "state": j.state,
        })).collect::<Vec<_>>(),
    })
}

fn write_event(
    out: &mut impl Write,
    event: &EventRecord,
    journal: &[JournalRecord],
    jobs: &[JobRecord],
    current: Option<&RuleSet>,
) -> std::io::Result<()> {
    let text = |k: &str| {
        event
            .data
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("-")
            .to_owned()
    };
    writeln!(
        out,
        "{} {} ({}) {}  {} -> {}",
        rfc3339(event.at),
        event.kind,
        event.source.as_str(),
        event.id,
        text("from"),
        text("to")
    )?;
    let width = journal
        .iter()
        .map(|j| j.rule.len())
        .max()
        .unwrap_or(0)
        .max(12);
    for entry in journal {
        let job = jobs
            .iter()
            .find(|j| j.event_id == event.id && j.rule == entry.rule)
            .map(|j| format!(" [job {} {:?}]", j.id, j.state).to_lowercase())
            .unwrap_or_default();
        writeln!(
            out,
            "    {:width$}  {:11}  {}{job}  (rules {})",
            entry.rule,
            entry.outcome,
            entry.reason.as_deref().unwrap_or(""),
            entry.rules_hash
        )?;
    }
    if let Some(set) = current {
        for rule in set.rules() {
            if journal.iter().any(|j| j.rule == rule.name) {
                continue;
            }
            let why = if rule.schedule().is_some() {
                "scheduled rule: sees only its own ticks".to_owned()
            } else if rule.matches_kind(&event.kind) {
                "not evaluated (the rule is newer than the event)".to_owned()
            } else {
                format!(
                    "trigger {} does not match {}",
                    rule.trigger_text(),
                    event.kind
                )
            };
            writeln!(out, "    {:width$}  {:11}  {why}", rule.name, "-")?;
        }
    }
    Ok(())
}
