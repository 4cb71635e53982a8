//! `codegen-sentinel silence add|list|expire`: pause a rule (or one key of a rule) until a time,
//! with a reason; list silences; lift one early.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use super::target::Target;
use super::{config_source, Failure};
use crate::rules::eval::rfc3339;
use crate::rules::{compile_paths, did_you_mean, CompileEnv};
use crate::store::{NewSilence, SilenceRecord};
use crate::yaml::parse_duration;

#[derive(Debug, Args)]
pub struct SilenceArgs {
    /// Config file [default: $SENTINEL_CONFIG, then ./sentinel.yaml].
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub what: SilenceCmd,
}

#[derive(Debug, Subcommand)]
pub enum SilenceCmd {
    /// Silence a rule, or one key of it, until a time.
    Add {
        /// The rule.
        rule: String,
        /// Only this key (as the rule renders it).
        #[arg(long)]
        key: Option<String>,
        /// End: an RFC 3339 time, or a duration from now (e.g. 2h, 3d).
        #[arg(long)]
        until: String,
        /// Why (shown in `explain`, `/status` and the journal).
        #[arg(long)]
        reason: String,
        /// Who [default: $USER].
        #[arg(long)]
        by: Option<String>,
    },
    /// List silences in force (all of them with --all).
    List {
        #[arg(long)]
        all: bool,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// End a silence now.
    Expire {
        /// The silence id (see `silence list`).
        id: u64,
    },
}

pub async fn run(args: SilenceArgs) -> Result<(), Failure> {
    let settings = config_source::required(args.config.as_deref())?;
    let now = Utc::now();
    match args.what {
        SilenceCmd::Add {
            rule,
            key,
            until,
            reason,
            by,
        } => {
            let until = parse_until(&until, now)?;
            check_rule(&settings, &rule)?;
            let target = Target::open(&settings)?;
            let by = by.or_else(|| std::env::var("USER").ok());
            let silence = NewSilence {
                rule,
                key,
                until,
                reason,
                created_at: now,
                created_by: by,
            };
            let record = target.add_silence(silence).await?;
            println!(
                "silence {} on {} until {}",
                record.id,
                record.rule,
                rfc3339(record.until)
            );
            Ok(())
        }
        SilenceCmd::List { all, json } => {
            let silences = Target::open(&settings)?.silences().await?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            for silence in silences.iter().filter(|s| all || s.is_active_at(now)) {
                let line = if json {
                    serde_json::to_string(silence).unwrap_or_default()
                } else {
                    describe(silence, now)
                };
                writeln!(out, "{line}").context("writing to stdout")?;
            }
            Ok(())
        }
        SilenceCmd::Expire { id } => {
            let found = Target::open(&settings)?.expire_silence(id).await?;
            match found {
                Some(s) => {
                    println!("silence {} on {} expired", s.id, s.rule);
                    Ok(())
                }
                None => Err(Failure::Usage(format!("no silence with id {id}"))),
            }
        }
    }
}

/// An RFC 3339 time, or a duration from `now`.
fn parse_until(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, Failure> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let duration = parse_duration(text).map_err(|e| {
        Failure::Usage(format!(
            "--until {text:?}: not an RFC 3339 time, and {}",
            e.message
        ))
    })?;
    Ok(now + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX))
}

/// Refuses a rule name the configured rules do not have (when they load).
fn check_rule(settings: &crate::config::Settings, rule: &str) -> Result<(), Failure> {
    let compiled = compile_paths(&settings.rules.paths, &CompileEnv::from_settings(settings));
    let Some(set) = compiled.set else {
        eprintln!("warning: the rule files have errors; rule name {rule:?} not checked");
        return Ok(());
    };
    if set.rule(rule).is_some() {
        return Ok(());
    }
    let hint = did_you_mean(rule, set.rules().iter().map(|r| r.name.as_str()))
        .map(|h| format!(" ({h})"))
        .unwrap_or_default();
    Err(Failure::Usage(format!(
        "no rule named {rule:?} in the configured rules{hint}"
    )))
}

fn describe(s: &SilenceRecord, now: DateTime<Utc>) -> String {
    let state = if s.expired {
        "expired"
    } else if s.is_active_at(now) {
        "active"
    } else {
        "ended"
    };
    format!(
        "{:>6}  {:8} {}{}  until {}  by {}  {}",
        s.id,
        state,
        s.rule,
        s.key
            .as_ref()
            .map(|k| format!(" [key {k:?}]"))
            .unwrap_or_default(),
        rfc3339(s.until),
        s.created_by.as_deref().unwrap_or("-"),
        s.reason
    )
}
