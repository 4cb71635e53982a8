//! `codegen-sentinel state runs|transitions`: what the store holds, as a table or JSON lines.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::json;

use super::target::Target;
use super::{config_source, Failure};
use crate::store::{RunRecord, TransitionRecord};

#[derive(Debug, Args)]
pub struct StateArgs {
    /// Config file [default: $SENTINEL_CONFIG, then ./sentinel.yaml].
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// One JSON object per line instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub what: StateCmd,
}

#[derive(Debug, Subcommand)]
pub enum StateCmd {
    /// The last stored snapshot of every run.
    Runs {
        /// Only this organization.
        #[arg(long)]
        org: Option<i64>,
    },
    /// The recorded status transitions, oldest first per run.
    Transitions {
        /// Only this run.
        #[arg(long)]
        run: Option<i64>,
        /// Only this organization.
        #[arg(long)]
        org: Option<i64>,
    },
}

pub async fn run(args: StateArgs) -> Result<(), Failure> {
    let settings = config_source::required(args.config.as_deref())?;
    let target = Target::open(&settings)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = match args.what {
        StateCmd::Runs { org } => {
            let runs = target.runs(org).await?;
            print_runs(&mut out, &runs, args.json)
        }
        StateCmd::Transitions { run, org } => {
            let transitions = target.transitions(run, org).await?;
            print_transitions(&mut out, &transitions, args.json)
        }
    };
    result
        .context("writing to stdout")
        .map_err(Failure::Runtime)
}

fn text(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("-")
}

fn print_runs(out: &mut impl Write, runs: &[RunRecord], as_json: bool) -> std::io::Result<()> {
    if as_json {
        for r in runs {
            let line = json!({
                "org_id": r.org_id, "run_id": r.run_id, "status": r.status,
                "status_since": r.status_since, "first_seen": r.first_seen,
                "last_seen": r.last_seen, "transitions": r.last_seq, "pr_ids": r.pr_ids,
                "web_url": r.raw.get("web_url"),
            });
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    let rows: Vec<[String; 6]> = runs
        .iter()
        .map(|r| {
            [
                r.org_id.to_string(),
                r.run_id.to_string(),
                text(&r.status).to_owned(),
                r.status_since.format("%Y-%m-%d %H:%M:%S").to_string(),
                r.last_seq.to_string(),
                r.pr_ids.len().to_string(),
            ]
        })
        .collect();
    table(
        out,
        ["ORG", "RUN", "STATUS", "SINCE (UTC)", "TRANSITIONS", "PRS"],
        &rows,
    )
}

fn print_transitions(
    out: &mut impl Write,
    transitions: &[TransitionRecord],
    as_json: bool,
) -> std::io::Result<()> {
    if as_json {
        for t in transitions {
            let line = json!({
                "org_id": t.org_id, "run_id": t.run_id, "seq": t.seq,
                "from": t.from, "to": t.to, "at": t.at, "source": t.source.as_str(),
                "first_sight": t.first_sight,
            });
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    let rows: Vec<[String; 7]> = transitions
        .iter()
        .map(|t| {
            let from = if t.first_sight {
                "(new)"
            } else {
                text(&t.from)
            };
            [
                t.org_id.to_string(),
                t.run_id.to_string(),
                t.seq.to_string(),
                from.to_owned(),
                text(&t.to).to_owned(),
                t.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                t.source.as_str().to_owned(),
            ]
        })
        .collect();
    table(
        out,
        ["ORG", "RUN", "SEQ", "FROM", "TO", "AT (UTC)", "SOURCE"],
        &rows,
    )
}

/// Left-aligned columns separated by two spaces.
fn table<const N: usize>(
    out: &mut impl Write,
    header: [&str; N],
    rows: &[[String; N]],
) -> std::io::Result<()> {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}
