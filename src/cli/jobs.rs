//! `codegen-sentinel jobs list|show|retry|drop`: the durable jobs and their dead letters.
//!
//! They work on the store when no daemon runs, and through the running daemon's admin socket
//! when it holds the store.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::target::Target;
use super::{config_source, Failure};
use crate::executor::admin::{self, JobSummary};

#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Config file [default: $SENTINEL_CONFIG, then ./sentinel.yaml].
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub what: JobsCmd,
}

#[derive(Debug, Subcommand)]
pub enum JobsCmd {
    /// Open jobs (pending, running, waiting), or with --dead the dead letters.
    List {
        /// The dead letters instead of the open jobs.
        #[arg(long)]
        dead: bool,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One job in full as JSON: its context, steps, rendered parameters, attempts, outputs.
    Show {
        /// The job id.
        id: u64,
    },
    /// Send a dead letter back to the queue: the step it died on starts over (same parameters
    /// and idempotency key) when the daemon next runs.
    Retry {
        /// The job id.
        id: u64,
    },
    /// Delete a job, whatever its state.
    Drop {
        /// The job id.
        id: u64,
    },
}

pub async fn run(args: JobsArgs) -> Result<(), Failure> {
    let settings = config_source::required(args.config.as_deref())?;
    let target = Target::open(&settings)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.what {
        JobsCmd::List { dead, json } => {
            let jobs = target.jobs(dead).await?;
            let summaries: Vec<JobSummary> = jobs.iter().map(admin::summarize).collect();
            print_list(&mut out, &summaries, json).context("writing to stdout")?;
        }
        JobsCmd::Show { id } => {
            let job = target
                .job(id)
                .await?
                .ok_or_else(|| Failure::Usage(format!("no job {id}")))?;
            let shown = serde_json::json!({
                "summary": admin::summarize(&job),
                "event_id": job.event_id,
                "data": job.data,
            });
            let text = serde_json::to_string_pretty(&shown).context("encoding the job")?;
            writeln!(out, "{text}").context("writing to stdout")?;
        }
        JobsCmd::Retry { id } => {
            let job = target.retry(id).await?;
            writeln!(out, "job {} ({}) is queued again", job.id, job.rule)
                .context("writing to stdout")?;
        }
        JobsCmd::Drop { id } => {
            let job = target.drop_job(id).await?;
            writeln!(
                out,
                "job {} ({}, {:?}) dropped",
                job.id, job.rule, job.state
            )
            .context("writing to stdout")?;
        }
    }
    Ok(())
}

fn print_list(out: &mut impl Write, jobs: &[JobSummary], as_json: bool) -> std::io::Result<()> {
    if as_json {
        for job in jobs {
            let line = serde_json::to_string(job).map_err(std::io::Error::other)?;
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    let header = [
        "ID",
        "STATE",
        "RULE",
        "KEY",
        "STEP",
        "ACTION",
        "ATTEMPTS",
        "NEXT / ERROR",
    ];
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            let next = match (&j.error, j.next_attempt_at, &j.waiting_for) {
                (Some(error), _, _) if j.state == crate::store::JobState::Dead => error.clone(),
                (_, Some(at), _) => format!("retry at {}", at.format("%Y-%m-%d %H:%M:%S")),
                (_, _, Some(run)) => format!("waiting for run {run}"),
                (Some(error), _, _) => error.clone(),
                _ => String::new(),
            };
            vec![
                j.id.to_string(),
                format!("{:?}", j.state).to_lowercase(),
                j.rule.clone(),
                j.key.clone(),
                format!("{}/{}", j.step.min(j.steps), j.steps),
                j.action.clone().unwrap_or_default(),
                j.attempts.to_string(),
                next,
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in &rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}
